/*
 * The Sigma compiler on the real SigmaHQ corpus: every rule under
 * $RF_SHARED_DIR/sigma/rules/<product>/process_creation (1,372 files in the snapshot the project
 * uses) is compiled, without a manifest and against manifests/ringfence-agent-1.1.0.json. None
 * may crash (ASan/UBSan), each either compiles or is rejected with exactly one reason, every
 * compiled program is well formed (atom indices in range, stack discipline, within limits), and
 * the rules compiled against the manifest must all go into one pack that verifies against that
 * manifest and loads into the engine (so a rule the compiler accepts is never one the verifier or
 * the agent's Vectorscan compile rejects). Then the whole corpus (3,141 files, every category)
 * against the same manifest, and against manifests/ringfence-agent-windows-1.2.0.json (the Sysmon
 * categories and Windows event-log channels): per event type, rules and compiled counts, and the
 * share of rules whose logsource the manifest supplies that compile. Prints the counts and the
 * tables of rejection reasons that docs/sigma.md reproduces, and pins the counts (issue 12 item
 * 7). Skips (77) with one line without the data.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/util.h"
#include "corpus.h"
#include "content/ir.h"
#include "content/sigma.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"
#include "testmanifest.h"

/* rules/<product>/process_creation for every product. */
static size_t find_rules(const char *root, struct rf_corpus_list *out)
{
	DIR *d = opendir(root);
	struct dirent *de;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *prod = rf_corpus_join(root, de->d_name);
		char *pc = rf_corpus_join(prod, "process_creation");
		rf_corpus_add_dir(out, pc);
		free(pc);
		free(prod);
	}
	closedir(d);
	rf_corpus_sort(out);
	return out->n;
}

/* Rejection reasons grouped by class: the reason with the rule prefix and "(...)" details cut. */
struct reasons {
	char cls[64][160];
	size_t count[64], n, other;
};

static void reason_add(struct reasons *rs, const char *msg)
{
	const char *p = strstr(msg, "\": "); /* after the rule's title */
	char cls[160];
	size_t o = 0;
	int paren = 0;

	p = p ? p + 3 : msg;
	for (; *p && o + 1 < sizeof(cls); p++) {
		if (*p == '(')
			paren++;
		else if (*p == ')' && paren)
			paren--;
		else if (!paren)
			cls[o++] = *p;
	}
	while (o && cls[o - 1] == ' ')
		o--;
	cls[o] = '\0';
	for (size_t i = 0; i < rs->n; i++)
		if (!strcmp(rs->cls[i], cls)) {
			rs->count[i]++;
			return;
		}
	if (rs->n == 64) {
		rs->other++;
		return;
	}
	memcpy(rs->cls[rs->n], cls, o + 1);
	rs->count[rs->n++] = 1;
}

static void reasons_print(const struct reasons *rs)
{
	bool done[64] = {false};

	printf("| rejections | reason |\n|---:|---|\n");
	for (size_t k = 0; k < rs->n; k++) {
		size_t best = SIZE_MAX;
		for (size_t i = 0; i < rs->n; i++)
			if (!done[i] && (best == SIZE_MAX || rs->count[i] > rs->count[best]))
				best = i;
		done[best] = true;
		printf("| %zu | %s |\n", rs->count[best], rs->cls[best]);
	}
	if (rs->other)
		printf("| %zu | (other reasons) |\n", rs->other);
}

/* The IR invariants ir.h promises, checked independently of the compiler's own check. */
static void check_ir(const struct rf_ir_rule *ir, const char *path)
{
	size_t depth = 0, max = 0;

	if (!ir->id[0] || !ir->title[0] || !ir->event[0] || ir->n_code == 0)
		fail_msg("%s: empty id/title/event/program", path);
	if (ir->n_code > RF_RULE_CODE_MAX || ir->n_atoms > RF_SIGMA_ATOMS_MAX)
		fail_msg("%s: over a limit", path);
	for (size_t i = 0; i < ir->n_atoms; i++) {
		const struct rf_ir_atom *a = &ir->atoms[i];
		if ((a->op == RF_OP_KEYWORD) != (a->field == NULL))
			fail_msg("%s: atom %zu: keyword/field mismatch", path, i);
		if (a->pattern_len > RF_SIGMA_PATTERN_MAX || (a->flags & ~RF_ATOM_FLAGS_KNOWN))
			fail_msg("%s: atom %zu: bad pattern or flags", path, i);
	}
	for (size_t i = 0; i < ir->n_code; i++) {
		uint32_t op = RF_INSN_OP(ir->code[i]), arg = RF_INSN_ARG(ir->code[i]);
		switch (op) {
		case RF_I_ATOM:
			if (arg >= ir->n_atoms)
				fail_msg("%s: insn %zu: atom %u out of range", path, i, arg);
			depth++;
			break;
		case RF_I_NOT:
			if (depth < 1)
				fail_msg("%s: insn %zu: underflow", path, i);
			break;
		case RF_I_AND:
		case RF_I_OR:
			if (depth < 2)
				fail_msg("%s: insn %zu: underflow", path, i);
			depth--;
			break;
		default:
			fail_msg("%s: insn %zu: opcode %u", path, i, op);
		}
		if (depth > max)
			max = depth;
	}
	if (depth != 1 || max > RF_RULE_STACK_MAX)
		fail_msg("%s: program leaves %zu bits, needs stack %zu", path, depth, max);
}

struct capture {
	char msg[RF_DIAG_MSG_MAX];
};

static size_t run(const struct rf_corpus_list *files, const struct rf_manifest *m, const char *label,
		  struct rf_pack_builder *b)
{
	struct reasons rs = {0};
	size_t ok = 0, bad = 0, atoms = 0, code = 0;

	for (size_t i = 0; i < files->n; i++) {
		uint8_t *p = NULL;
		size_t n;
		struct rf_diag d = {0};
		struct rf_sigma_rule *r = NULL;

		assert_int_equal(rf_file_read(files->v[i], RF_SIGMA_FILE_MAX, &p, &n), 0);
		int rc = rf_sigma_compile(p, n, files->v[i], m, &r, &d);
		free(p);
		if (rc == 0) {
			const struct rf_ir_rule *ir = rf_sigma_rule_ir(r);
			check_ir(ir, files->v[i]);
			atoms += ir->n_atoms;
			code += ir->n_code;
			if (b) {
				struct rf_diag bd = {0};
				if (rf_pack_builder_add(b, ir, &bd) != 0)
					fail_msg("%s: the pack builder refused a compiled rule: %s",
						 files->v[i], bd.first);
			}
			rf_sigma_rule_free(r);
			ok++;
		} else {
			if (rc >= 0 || r || d.count != 1 || rc == -ENOMEM)
				fail_msg("%s: rc %d with %u messages", files->v[i], rc, d.count);
			reason_add(&rs, d.first);
			bad++;
		}
	}
	printf("\n%s: %zu rule files, compiled %zu, rejected %zu (%zu atoms, %zu instructions)\n\n",
	       label, files->n, ok, bad, atoms, code);
	reasons_print(&rs);
	assert_int_equal(ok + bad, files->n);
	assert_true(ok > 0);
	return ok;
}

static struct rf_corpus_list files;

static void test_corpus(void **state)
{
	const char *src = getenv("RF_SOURCE_ROOT");

	/* Pinned (issue 12 item 7): a change to the compiler or the corpus that moves these must
	 * update them and docs/sigma.md's tables together. */
	assert_int_equal(files.n, 1372);
	assert_int_equal(run(&files, NULL, "without a manifest", NULL), 1372);

	/* Against this build's agent manifest: whatever compiles must also verify. */
	char *mpath = rf_corpus_join(src ? src : ".", "manifests/ringfence-agent-1.1.0.json");
	uint8_t *mj = NULL, *pack = NULL;
	size_t mn, plen;
	struct rf_manifest *m = NULL;
	struct rf_diag d = {0};
	struct rf_pack_builder *b = NULL;

	assert_int_equal(rf_file_read(mpath, RF_MANIFEST_MAX, &mj, &mn), 0);
	assert_int_equal(rf_manifest_parse(mj, mn, &m, &d), 0);
	assert_int_equal(rf_pack_builder_new(&b), 0);
	assert_int_equal(run(&files, m, "against manifests/ringfence-agent-1.1.0.json", b), 1371);
	assert_int_equal(rf_pack_builder_finish(b, 1, &pack, &plen), 0);
	const struct rf_manifest *ms[] = {m};
	struct rf_diag vd = {0};
	int rc = rf_pack_verify(pack, plen, ms, 1, &vd);
	if (rc != 0)
		fail_msg("pack of %zu compiled rules does not verify (%u problems), first: %s",
			 rf_pack_builder_count(b), vd.count, vd.first);
	printf("\npack of %zu rules, %zu bytes, verifies against %s %s\n", rf_pack_builder_count(b),
	       plen, rf_manifest_agent(m), rf_manifest_version(m));
	/* ...and loads: the agent compiles every pattern (regular expressions included) for real. */
	struct rf_engine *e = NULL;
	if (rf_engine_load(pack, plen, m, &e, &vd) != 0)
		fail_msg("pack of %zu compiled rules does not load: %s", rf_pack_builder_count(b),
			 vd.first);
	rf_engine_free(e);
	free(pack);
	rf_pack_builder_free(b);
	rf_manifest_free(m);
	free(mj);
	free(mpath);
}

/* The whole corpus (every category) against this build's manifest: counts pinned. */
static void test_whole_corpus(void **state)
{
	const char *src = getenv("RF_SOURCE_ROOT"), *shared = getenv("RF_SHARED_DIR");
	char *mpath = rf_corpus_join(src ? src : ".", "manifests/ringfence-agent-1.1.0.json");
	char *root = rf_corpus_join(shared, "sigma/rules");
	struct rf_corpus_list all = {0};
	uint8_t *mj = NULL;
	size_t mn;
	struct rf_manifest *m = NULL;
	struct rf_diag d = {0};

	rf_corpus_add_tree(&all, root);
	rf_corpus_sort(&all);
	assert_int_equal(rf_file_read(mpath, RF_MANIFEST_MAX, &mj, &mn), 0);
	assert_int_equal(rf_manifest_parse(mj, mn, &m, &d), 0);
	assert_int_equal(all.n, 3141);
	assert_int_equal(run(&all, m, "whole corpus against manifests/ringfence-agent-1.1.0.json",
			     NULL),
			 1440);
	rf_manifest_free(m);
	free(mj);
	free(mpath);
	free(root);
	rf_corpus_list_free(&all);
}

/* The logsource of a SigmaHQ rule file, read from its text (SigmaHQ writes `logsource:` then
 * indented `key: value` lines): the event type the compiler derives (sigma.c rule_logsource), or
 * "product:X" for a product alone, and the product ("" if none). For tables only: the compiler is
 * what is being measured. */
static void logsource_keys(const uint8_t *p, size_t n, char cat[64], char svc[64], char prod[64])
{
	const char *s = (const char *)p, *end = s + n;

	cat[0] = svc[0] = '\0';

	prod[0] = '\0';
	const char *ls = NULL;

	for (const char *l = s; l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t len = nl ? (size_t)(nl - l) : (size_t)(end - l);
		if (!ls) {
			if (len >= 10 && !memcmp(l, "logsource:", 10))
				ls = l;
		} else if (len && l[0] != ' ') {
			break;
		} else {
			const char *k = l;
			while (k < l + len && *k == ' ')
				k++;
			char *dst = NULL;
			size_t kl = 0;
			if (!strncmp(k, "category:", 9))
				dst = cat, kl = 9;
			else if (!strncmp(k, "service:", 8))
				dst = svc, kl = 8;
			else if (!strncmp(k, "product:", 8))
				dst = prod, kl = 8;
			if (dst) {
				const char *v = k + kl, *ve = l + len;
				while (v < ve && *v == ' ')
					v++;
				size_t vl = 0;
				while (v + vl < ve && v[vl] != ' ' && v[vl] != '#' && vl < 63)
					vl++;
				memcpy(dst, v, vl);
				dst[vl] = '\0';
			}
		}
		l = nl ? nl + 1 : end;
	}
}

static void logsource_of(const uint8_t *p, size_t n, char *out, size_t sz, char prod[64])
{
	char cat[64], svc[64];

	logsource_keys(p, n, cat, svc, prod);
	if (cat[0])
		snprintf(out, sz, "%s", cat);
	else if (svc[0] && prod[0])
		snprintf(out, sz, "%s_%s", prod, svc);
	else if (svc[0])
		snprintf(out, sz, "%s", svc);
	else
		snprintf(out, sz, "product:%s", prod);
}

/* Per event type: rules, compiled. */
struct evrow {
	char ev[80];
	size_t rules, ok;
};

struct evtab {
	struct evrow row[256];
	size_t n;
};

static struct evrow *evtab_get(struct evtab *t, const char *ev)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->row[i].ev, ev))
			return &t->row[i];
	assert_true(t->n < 256);
	snprintf(t->row[t->n].ev, sizeof(t->row[t->n].ev), "%s", ev);
	return &t->row[t->n++];
}

/* A pinned event type: rules in the corpus whose logsource it is, and how many compile. */
struct pin {
	const char *ev;
	size_t rules, ok;
};

/*
 * Every row of pins must match its row of tab and be an event of m; returns the rules they
 * pin. A change that moves these must update them and docs/sigma.md together.
 */
static size_t check_pinned(struct evtab *tab, const struct pin *pins, size_t n,
			   const struct rf_manifest *m)
{
	size_t pinned_rules = 0;

	for (size_t k = 0; k < n; k++) {
		struct evrow *row = evtab_get(tab, pins[k].ev);
		if (row->rules != pins[k].rules || row->ok != pins[k].ok)
			fail_msg("event %s: %zu rules, %zu compile; pinned %zu, %zu", pins[k].ev,
				 row->rules, row->ok, pins[k].rules, pins[k].ok);
		if (!rf_manifest_has_event(m, row->ev))
			fail_msg("pinned event %s is not in the manifest", row->ev);
		pinned_rules += row->rules;
	}
	return pinned_rules;
}

/* The pack of the rules compiled into b (n of them) verifies against and loads for m; b is
 * freed. */
static void pack_loads(struct rf_pack_builder *b, size_t n, const struct rf_manifest *m)
{
	uint8_t *pack = NULL;
	size_t plen = 0;
	struct rf_diag d = {0};
	struct rf_engine *e = NULL;

	assert_int_equal(rf_pack_builder_finish(b, 1, &pack, &plen), 0);
	if (rf_engine_load(pack, plen, m, &e, &d) != 0)
		fail_msg("pack of %zu compiled rules does not load: %s", n, d.first);
	printf("\npack of %zu rules, %zu bytes, verifies against and loads for %s %s\n", n, plen,
	       rf_manifest_agent(m), rf_manifest_version(m));
	rf_engine_free(e);
	free(pack);
	rf_pack_builder_free(b);
}

/* Pinned per event type: rules in the corpus and how many compile against the Windows manifest
 * (issue 12 item 7). Every event type the manifest supplies that SigmaHQ uses is listed. */
static const struct pin windows_pinned[] = {
    {"process_creation", 1183, 1183},
    {"registry_set", 204, 204},
    {"file_event", 166, 166},
    {"ps_script", 162, 162},
    {"windows_security", 145, 145},
    {"image_load", 100, 100},
    {"windows_system", 63, 63},
    {"network_connection", 51, 51},
    {"ps_module", 33, 33},
    {"registry_event", 32, 32},
    {"windows_application", 23, 23},
    {"process_access", 23, 23},
    {"dns_query", 22, 22},
    {"pipe_created", 17, 17},
    {"windows_windefend", 16, 16},
    {"file_delete", 12, 12},
    {"create_remote_thread", 11, 11},
    {"windows_codeintegrity-operational", 10, 10},
    {"driver_load", 10, 9},
    {"registry_delete", 10, 10},
    {"create_stream_hash", 9, 9},
    {"windows_appxdeployment-server", 9, 9},
    {"ps_classic_start", 9, 9},
    {"windows_firewall-as", 8, 8},
    {"file_access", 7, 7},
    {"windows_bits-client", 7, 7},
    {"windows_msexchange-management", 7, 7},
    {"windows_dns-client", 6, 6},
    {"windows_sysmon", 4, 4},
    {"windows_iis-configuration", 4, 4},
    {"windows_taskscheduler", 3, 3},
    {"windows_ntlm", 3, 3},
    {"windows_powershell-classic", 3, 3},
    {"wmi_event", 3, 3},
    {"windows_security-mitigations", 2, 2},
    {"windows_wmi", 2, 2},
    {"windows_applocker", 2, 2},
    {"windows_dns-server", 2, 2},
    {"windows_appxpackaging-om", 1, 1},
    {"windows_microsoft-servicebus-client", 1, 1},
    {"windows_terminalservices-localsessionmanager", 1, 1},
    {"windows_shell-core", 1, 1},
    {"windows_certificateservicesclient-lifecycle-system", 1, 1},
    {"windows_driver-framework", 1, 1},
    {"windows_ldap", 1, 1},
    {"windows_appmodel-runtime", 1, 1},
    {"windows_smbclient-security", 1, 1},
    {"windows_smbserver-connectivity", 1, 1},
    {"windows_diagnosis-scripted", 1, 1},
    {"windows_lsa-server", 1, 1},
    {"windows_openssh", 1, 1},
    {"windows_capi2", 1, 1},
    {"file_rename", 1, 1},
    {"file_executable_detected", 1, 1},
    {"file_change", 1, 1},
    {"sysmon_error", 1, 1},
    {"sysmon_status", 1, 1},
    {"process_tampering", 1, 1},
    {"raw_access_thread", 1, 1},
    {"registry_add", 1, 1},
    {"ps_classic_provider_start", 1, 1},
};

/*
 * The whole corpus against manifests/ringfence-agent-windows-1.2.0.json (issue 12 items 2 and
 * 7): per event type, how many rules there are and how many compile, pinned; the share of rules
 * whose logsource the manifest supplies that compile (goal >= 98 %); and every compiled rule goes
 * into one pack that verifies and loads (every pattern built by Vectorscan).
 */
static void test_windows_sources(void **state)
{
	const char *src = getenv("RF_SOURCE_ROOT"), *shared = getenv("RF_SHARED_DIR");
	char *mpath = rf_corpus_join(src ? src : ".", "manifests/ringfence-agent-windows-1.2.0.json");
	char *root = rf_corpus_join(shared, "sigma/rules");
	struct rf_corpus_list all = {0};
	struct evtab tab = {0};
	struct reasons supplied_rs = {0}, other_rs = {0};
	uint8_t *mj = NULL;
	size_t mn, ok = 0, sup = 0, sup_ok = 0;
	struct rf_manifest *m = NULL;
	struct rf_pack_builder *b = NULL;
	struct rf_diag d = {0};

	rf_corpus_add_tree(&all, root);
	rf_corpus_sort(&all);
	assert_int_equal(all.n, 3141);
	assert_int_equal(rf_file_read(mpath, RF_MANIFEST_MAX, &mj, &mn), 0);
	assert_int_equal(rf_manifest_parse(mj, mn, &m, &d), 0);
	assert_int_equal(rf_pack_builder_new(&b), 0);
	for (size_t i = 0; i < all.n; i++) {
		uint8_t *p = NULL;
		size_t n;
		char ev[80], prod[64], key[80];
		struct rf_diag cd = {0};
		struct rf_sigma_rule *r = NULL;

		assert_int_equal(rf_file_read(all.v[i], RF_SIGMA_FILE_MAX, &p, &n), 0);
		logsource_of(p, n, ev, sizeof(ev), prod);
		int rc = rf_sigma_compile(p, n, all.v[i], m, &r, &cd);
		free(p);
		/* Supplied: the manifest has the event type, for the rule's product (if it names
		 * one). Rules for other products are tabled by product. */
		bool supplied = rf_manifest_has_event(m, ev) &&
				(!prod[0] || !strcmp(prod, rf_manifest_product(m)));
		snprintf(key, sizeof(key), "%s%s", supplied || !prod[0] ? "" : "product:",
			 supplied || !prod[0] ? ev : prod);
		struct evrow *row = evtab_get(&tab, key);
		row->rules++;
		sup += supplied;
		if (rc == 0) {
			check_ir(rf_sigma_rule_ir(r), all.v[i]);
			struct rf_diag bd = {0};
			if (rf_pack_builder_add(b, rf_sigma_rule_ir(r), &bd) != 0)
				fail_msg("%s: the pack builder refused a compiled rule: %s",
					 all.v[i], bd.first);
			rf_sigma_rule_free(r);
			if (!supplied)
				fail_msg("%s compiled for event '%s' the manifest lacks", all.v[i],
					 ev);
			row->ok++;
			ok++;
			sup_ok++;
		} else {
			if (rc >= 0 || r || cd.count != 1 || rc == -ENOMEM)
				fail_msg("%s: rc %d with %u messages", all.v[i], rc, cd.count);
			reason_add(supplied ? &supplied_rs : &other_rs, cd.first);
		}
	}
	printf("\nwhole corpus against manifests/ringfence-agent-windows-1.2.0.json: %zu rule "
	       "files, compiled %zu; the manifest supplies the logsource of %zu, of which %zu "
	       "compile (%.1f %%)\n\n| event type | rules | compiled |\n|---|---:|---:|\n",
	       all.n, ok, sup, sup_ok, 100.0 * (double)sup_ok / (double)(sup ? sup : 1));
	for (size_t i = 0; i < tab.n; i++)
		if (rf_manifest_has_event(m, tab.row[i].ev))
			printf("| %s | %zu | %zu |\n", tab.row[i].ev, tab.row[i].rules,
			       tab.row[i].ok);
	printf("\nRejected, logsource supplied:\n\n");
	reasons_print(&supplied_rs);
	printf("\nRejected, logsource not supplied (by product / event type):\n\n");
	reasons_print(&other_rs);

	size_t pinned_rules = check_pinned(&tab, windows_pinned, sizeof(windows_pinned) / sizeof(windows_pinned[0]), m);
	assert_int_equal(pinned_rules, sup); /* every supplied event type is pinned */
	assert_int_equal(sup, 2406);
	assert_int_equal(sup_ok, 2405);
	assert_true(sup_ok * 100 >= sup * 98);

	pack_loads(b, ok, m);
	rf_manifest_free(m);
	free(mj);
	free(mpath);
	free(root);
	rf_corpus_list_free(&all);
}

/*
 * The whole corpus against manifests/ringfence-agent-linux-1.3.0.json (issue 12 item 2, Linux):
 * the process connector's process_creation and the audit source's linux_auditd. Per event type,
 * rules and compiled counts, pinned; the Linux rules it does not supply (product alone, other
 * services, file_event, network_connection) tabled by logsource; every compiled rule goes into
 * one pack that verifies against the manifest and loads.
 */
static void test_linux_sources(void **state)
{
	const char *src = getenv("RF_SOURCE_ROOT"), *shared = getenv("RF_SHARED_DIR");
	char *mpath = rf_corpus_join(src ? src : ".", "manifests/ringfence-agent-linux-1.3.0.json");
	char *root = rf_corpus_join(shared, "sigma/rules");
	struct rf_corpus_list all = {0};
	struct evtab tab = {0}, linux_other = {0};
	struct reasons rs = {0};
	uint8_t *mj = NULL;
	size_t mn, ok = 0, sup = 0, sup_ok = 0, lnx = 0;
	struct rf_manifest *m = NULL;
	struct rf_pack_builder *b = NULL;
	struct rf_diag d = {0};

	(void)state;
	rf_corpus_add_tree(&all, root);
	rf_corpus_sort(&all);
	assert_int_equal(all.n, 3141);
	assert_int_equal(rf_file_read(mpath, RF_MANIFEST_MAX, &mj, &mn), 0);
	assert_int_equal(rf_manifest_parse(mj, mn, &m, &d), 0);
	assert_string_equal(rf_manifest_product(m), "linux");
	assert_int_equal(rf_pack_builder_new(&b), 0);
	for (size_t i = 0; i < all.n; i++) {
		uint8_t *p = NULL;
		size_t n;
		char ev[80], prod[64];
		struct rf_diag cd = {0};
		struct rf_sigma_rule *r = NULL;

		assert_int_equal(rf_file_read(all.v[i], RF_SIGMA_FILE_MAX, &p, &n), 0);
		logsource_of(p, n, ev, sizeof(ev), prod);
		int rc = rf_sigma_compile(p, n, all.v[i], m, &r, &cd);
		free(p);
		bool supplied = rf_manifest_has_event(m, ev) && (!prod[0] || !strcmp(prod, "linux"));
		lnx += !strcmp(prod, "linux");
		if (supplied) {
			sup++;
			evtab_get(&tab, ev)->rules++;
		} else if (!strcmp(prod, "linux")) {
			evtab_get(&linux_other, ev)->rules++;
		}
		if (rc == 0) {
			check_ir(rf_sigma_rule_ir(r), all.v[i]);
			struct rf_diag bd = {0};
			if (rf_pack_builder_add(b, rf_sigma_rule_ir(r), &bd) != 0)
				fail_msg("%s: the pack builder refused a compiled rule: %s",
					 all.v[i], bd.first);
			rf_sigma_rule_free(r);
			if (!supplied)
				fail_msg("%s compiled for event '%s' the manifest lacks", all.v[i],
					 ev);
			evtab_get(&tab, ev)->ok++;
			ok++;
			sup_ok++;
		} else {
			if (rc >= 0 || r || cd.count != 1 || rc == -ENOMEM)
				fail_msg("%s: rc %d with %u messages", all.v[i], rc, cd.count);
			if (supplied)
				reason_add(&rs, cd.first);
		}
	}
	printf("\nwhole corpus against manifests/ringfence-agent-linux-1.3.0.json: %zu rule files "
	       "(%zu with product linux), compiled %zu; the manifest supplies the logsource of "
	       "%zu, of which %zu compile\n\n| event type | rules | compiled |\n|---|---:|---:|\n",
	       all.n, lnx, ok, sup, sup_ok);
	for (size_t i = 0; i < tab.n; i++)
		printf("| %s | %zu | %zu |\n", tab.row[i].ev, tab.row[i].rules, tab.row[i].ok);
	printf("\nproduct linux, not supplied:\n\n| logsource | rules |\n|---|---:|\n");
	for (size_t i = 0; i < linux_other.n; i++)
		printf("| %s | %zu |\n", linux_other.row[i].ev, linux_other.row[i].rules);
	if (rs.n) {
		printf("\nRejected, logsource supplied:\n\n");
		reasons_print(&rs);
	}

	/* Pinned: a change that moves these must update them and docs/sigma.md together. */
	assert_int_equal(tab.n, 2);
	assert_int_equal(evtab_get(&tab, "process_creation")->rules, 122);
	assert_int_equal(evtab_get(&tab, "process_creation")->ok, 122);
	assert_int_equal(evtab_get(&tab, "linux_auditd")->rules, 53);
	assert_int_equal(evtab_get(&tab, "linux_auditd")->ok, 53);
	assert_int_equal(sup, 175);
	assert_int_equal(sup_ok, 175);
	assert_int_equal(lnx, 210);
	assert_int_equal(evtab_get(&linux_other, "file_event")->rules, 8);
	assert_int_equal(evtab_get(&linux_other, "network_connection")->rules, 5);

	pack_loads(b, ok, m);
	rf_manifest_free(m);
	free(mj);
	free(mpath);
	free(root);
	rf_corpus_list_free(&all);
}

/* Whether m supplies the logsource of the rule text p[0..n): the event it declares for it, or the
 * name the compiler derives when no event declares it (sigma.c rule_logsource); *ev the event. */
static bool supplied_by(const struct rf_manifest *m, const uint8_t *p, size_t n, char ev[80])
{
	char cat[64], svc[64], prod[64];
	const char *dev, *mp = rf_manifest_product(m);

	logsource_keys(p, n, cat, svc, prod);
	if (rf_manifest_logsource_event(m, prod[0] ? prod : NULL, strlen(prod), cat[0] ? cat : NULL,
					strlen(cat), svc[0] ? svc : NULL, strlen(svc), &dev) > 0) {
		snprintf(ev, 80, "%s", dev);
		return true;
	}
	logsource_of(p, n, ev, 80, prod);
	return rf_manifest_has_event(m, ev) && !rf_manifest_event_declared(m, ev) &&
	       (!prod[0] || !mp || !strcmp(prod, mp));
}

/* Pinned per event type for manifests/ringfence-agent-logs-1.0.0.json: rules, compiled. */
static const struct pin logs_pinned[] = {
    {"bitbucket_audit", 14, 14},
    {"django_application", 1, 1},
    {"github_audit", 15, 15},
    {"jvm_application", 5, 5},
    {"kubernetes_audit", 16, 16},
    {"nodejs_application", 1, 1},
    {"opencanary", 24, 24},
    {"python_application", 1, 1},
    {"ruby_on_rails_application", 1, 1},
    {"spring_application", 2, 2},
    {"sql_application", 1, 1},
    {"velocity_application", 1, 1},
    {"database", 1, 1},
    {"aws_cloudtrail", 57, 57},
    {"azure_activitylogs", 35, 35},
    {"azure_auditlogs", 44, 44},
    {"azure_riskdetection", 19, 19},
    {"azure_pim", 7, 7},
    {"azure_signinlogs", 18, 18},
    {"gcp_audit", 16, 16},
    {"gcp_google_workspace_admin", 7, 7},
    {"gcp_google_workspace_login", 3, 3},
    {"m365_audit", 4, 4},
    {"m365_exchange", 1, 1},
    {"m365_threat_detection", 1, 1},
    {"m365_threat_management", 13, 13},
    {"cisco_duo", 1, 1},
    {"okta", 21, 21},
    {"onelogin_events", 2, 2},
    {"linux_clamav", 1, 1},
    {"linux_cron", 1, 1},
    {"linux_guacamole", 1, 1},
    {"linux_log", 15, 15},
    {"linux_sshd", 1, 1},
    {"linux_syslog", 2, 2},
    {"linux_vsftpd", 1, 1},
    {"cisco_aaa", 13, 13},
    {"cisco_bgp", 1, 1},
    {"cisco_ldp", 1, 1},
    {"dns", 7, 7},
    {"firewall", 1, 1},
    {"fortigate_event", 7, 7},
    {"huawei_bgp", 1, 1},
    {"juniper_bgp", 1, 1},
    {"zeek_dce_rpc", 3, 3},
    {"zeek_smb_files", 7, 7},
    {"zeek_x509", 1, 1},
    {"zeek_dns", 5, 5},
    {"zeek_http", 3, 3},
    {"zeek_rdp", 1, 1},
    {"zeek_kerberos", 1, 1},
    {"apache", 2, 2},
    {"nginx", 1, 1},
    {"proxy", 29, 29},
    {"webserver", 13, 13},
};

/*
 * The whole corpus against manifests/ringfence-agent-logs-1.0.0.json (the log-file source,
 * docs/agent.md): per event type, rules and compiled counts, pinned; every compiled rule goes
 * into one pack that verifies against the manifest and loads.
 */
static void test_log_sources(void **state)
{
	const char *shared = getenv("RF_SHARED_DIR");
	char *root = rf_corpus_join(shared, "sigma/rules");
	struct rf_corpus_list all = {0};
	struct evtab tab = {0};
	struct reasons rs = {0};
	size_t sup = 0, sup_ok = 0;
	struct rf_manifest *m = rf_test_manifest("ringfence-agent-logs-1.0.0.json");
	struct rf_pack_builder *b = NULL;

	(void)state;
	rf_corpus_add_tree(&all, root);
	rf_corpus_sort(&all);
	assert_int_equal(all.n, 3141);
	assert_int_equal(rf_pack_builder_new(&b), 0);
	for (size_t i = 0; i < all.n; i++) {
		uint8_t *p = NULL;
		size_t n;
		char ev[80];
		struct rf_diag cd = {0};
		struct rf_sigma_rule *r = NULL;

		assert_int_equal(rf_file_read(all.v[i], RF_SIGMA_FILE_MAX, &p, &n), 0);
		bool supplied = supplied_by(m, p, n, ev);
		int rc = rf_sigma_compile(p, n, all.v[i], m, &r, &cd);
		free(p);
		if (supplied) {
			sup++;
			evtab_get(&tab, ev)->rules++;
		}
		if (rc == 0) {
			check_ir(rf_sigma_rule_ir(r), all.v[i]);
			if (!supplied || strcmp(rf_sigma_rule_ir(r)->event, ev))
				fail_msg("%s compiled for event '%s', not the supplied '%s'",
					 all.v[i], rf_sigma_rule_ir(r)->event, ev);
			struct rf_diag bd = {0};
			if (rf_pack_builder_add(b, rf_sigma_rule_ir(r), &bd) != 0)
				fail_msg("%s: the pack builder refused a compiled rule: %s",
					 all.v[i], bd.first);
			rf_sigma_rule_free(r);
			evtab_get(&tab, ev)->ok++;
			sup_ok++;
		} else {
			if (rc >= 0 || r || cd.count != 1 || rc == -ENOMEM)
				fail_msg("%s: rc %d with %u messages", all.v[i], rc, cd.count);
			if (supplied)
				reason_add(&rs, cd.first);
		}
	}
	printf("\nwhole corpus against manifests/ringfence-agent-logs-1.0.0.json: %zu rule files; "
	       "the manifest supplies the logsource of %zu, of which %zu compile (%.1f %%)\n\n"
	       "| event type | rules | compiled |\n|---|---:|---:|\n",
	       all.n, sup, sup_ok, 100.0 * (double)sup_ok / (double)(sup ? sup : 1));
	for (size_t i = 0; i < tab.n; i++)
		printf("| %s | %zu | %zu |\n", tab.row[i].ev, tab.row[i].rules, tab.row[i].ok);
	if (rs.n) {
		printf("\nRejected, logsource supplied:\n\n");
		reasons_print(&rs);
	}

	size_t pinned_rules = check_pinned(&tab, logs_pinned, sizeof(logs_pinned) / sizeof(logs_pinned[0]), m);
	assert_int_equal(pinned_rules, sup); /* every supplied event type is pinned */
	assert_int_equal(sup, 452);
	assert_int_equal(sup_ok, 452);
	assert_true(sup_ok * 100 >= sup * 98);

	pack_loads(b, sup_ok, m);
	rf_manifest_free(m);
	free(root);
	rf_corpus_list_free(&all);
}

/*
 * The goal of issue 12 across every shipped manifest a SigmaHQ rule can run on (Windows, Linux,
 * log files): the share of all rules whose logsource one of them supplies (goal >= 95 %), and of
 * those the share that compile against it (goal >= 98 %). The rest tabled by logsource.
 */
static void test_coverage(void **state)
{
	static const char *const names[] = {"ringfence-agent-windows-1.2.0.json",
					    "ringfence-agent-linux-1.3.0.json",
					    "ringfence-agent-logs-1.0.0.json"};
	const char *shared = getenv("RF_SHARED_DIR");
	char *root = rf_corpus_join(shared, "sigma/rules");
	struct rf_corpus_list all = {0};
	struct rf_manifest *ms[3];
	struct evtab other = {0};
	size_t per[3] = {0}, sup = 0, sup_ok = 0;

	(void)state;
	for (size_t k = 0; k < 3; k++)
		ms[k] = rf_test_manifest(names[k]);
	rf_corpus_add_tree(&all, root);
	rf_corpus_sort(&all);
	assert_int_equal(all.n, 3141);
	for (size_t i = 0; i < all.n; i++) {
		uint8_t *p = NULL;
		size_t n;
		char ev[80], prod[64];
		bool s = false, ok = false;

		assert_int_equal(rf_file_read(all.v[i], RF_SIGMA_FILE_MAX, &p, &n), 0);
		for (size_t k = 0; k < 3; k++) {
			if (!supplied_by(ms[k], p, n, ev))
				continue;
			struct rf_diag cd = {0};
			struct rf_sigma_rule *r = NULL;
			s = true;
			per[k]++;
			if (rf_sigma_compile(p, n, all.v[i], ms[k], &r, &cd) == 0)
				ok = true;
			rf_sigma_rule_free(r);
		}
		if (!s) {
			char key[160];
			logsource_of(p, n, ev, sizeof(ev), prod);
			snprintf(key, sizeof(key), "%s%s%s", prod, prod[0] ? " " : "", ev);
			evtab_get(&other, key)->rules++;
		}
		free(p);
		sup += s;
		sup_ok += ok;
	}
	printf(
	    "\nshipped manifests: %zu rule files; supplied %zu (%.1f %%: windows %zu, linux %zu, "
	    "logs %zu), of which %zu compile (%.1f %%)\n\nnot supplied:\n\n"
	    "| product logsource | rules |\n|---|---:|\n",
	    all.n, sup, 100.0 * (double)sup / (double)all.n, per[0], per[1], per[2], sup_ok,
	    100.0 * (double)sup_ok / (double)(sup ? sup : 1));
	for (size_t i = 0; i < other.n; i++)
		printf("| %s | %zu |\n", other.row[i].ev, other.row[i].rules);
	assert_int_equal(sup, 3033);
	assert_int_equal(sup_ok, 3032);
	assert_true(sup * 100 >= all.n * 95);
	assert_true(sup_ok * 100 >= sup * 98);
	for (size_t k = 0; k < 3; k++)
		rf_manifest_free(ms[k]);
	free(root);
	rf_corpus_list_free(&all);
}

int main(void)
{
	const char *shared = getenv("RF_SHARED_DIR");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_corpus),	    cmocka_unit_test(test_whole_corpus),
	    cmocka_unit_test(test_windows_sources), cmocka_unit_test(test_linux_sources),
	    cmocka_unit_test(test_log_sources),	    cmocka_unit_test(test_coverage),
	};
	int rc;

	if (!shared) {
		printf("SKIP: RF_SHARED_DIR is not set, so the SigmaHQ corpus is not available\n");
		return 77;
	}
	char *root = rf_corpus_join(shared, "sigma/rules");
	if (find_rules(root, &files) == 0) {
		printf("SKIP: no */process_creation/*.yml under %s (SigmaHQ corpus absent)\n",
		       root);
		free(root);
		return 77;
	}
	free(root);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rf_corpus_list_free(&files);
	return rc;
}
