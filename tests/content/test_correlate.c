/*
 * Tests of Sigma correlation rules end to end: compiled from YAML (sigma_corr.c, the documents
 * split as `ringfence content compile` splits them), written to a pack (format 2), loaded by the
 * engine, and evaluated with the real engine's matches (correlate.c). Each correlation type runs
 * on the specification's own examples with the events written here; then the window's edges,
 * group-by separation, the caps (a flood of groups stays within RF_CORR_GROUPS_MAX and counts its
 * drops), the compiler's named rejections, the verifier on hand-corrupted packs, and
 * `ringfence content eval` (argv[1]) on a file of events.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "content/pack.h"
#include "content/sigma.h"
#include "content/sigma_corr.h"
#include "ringfence/content.h"
#include "ringfence/correlate.h"

static const char *rf_exe;

/* One manifest for every test: Windows security log events and a generic "net" event. */
static const char manifest_json[] =
    "{\"agent\":\"test-agent\",\"version\":\"1.0.0\",\"events\":["
    "{\"name\":\"windows_security\",\"fields\":[{\"name\":\"EventID\",\"type\":\"int\"},"
    "{\"name\":\"User\",\"type\":\"string\"},{\"name\":\"UtcTime\",\"type\":\"string\"},"
    "{\"name\":\"ComputerName\",\"type\":\"string\"},"
    "{\"name\":\"WorkstationName\",\"type\":\"string\"}]},"
    "{\"name\":\"process_creation\",\"fields\":[{\"name\":\"Image\",\"type\":\"string\"},"
    "{\"name\":\"User\",\"type\":\"string\"},{\"name\":\"ComputerName\",\"type\":\"string\"},"
    "{\"name\":\"UtcTime\",\"type\":\"string\"}]},"
    "{\"name\":\"webserver\",\"fields\":[{\"name\":\"status\",\"type\":\"int\"},"
    "{\"name\":\"src_ip\",\"type\":\"string\"},{\"name\":\"dst_ip\",\"type\":\"string\"},"
    "{\"name\":\"UtcTime\",\"type\":\"string\"}]},"
    "{\"name\":\"network_connection\",\"fields\":[{\"name\":\"outcome\",\"type\":\"string\"},"
    "{\"name\":\"src_ip\",\"type\":\"string\"},{\"name\":\"dst_ip\",\"type\":\"string\"},"
    "{\"name\":\"UtcTime\",\"type\":\"string\"}]}]}";

static struct rf_manifest *man;

/* ---- compiling, as `ringfence content compile` does ---------------------------------------- */

struct diagbuf {
	char text[8192];
	size_t len;
};

static void collect(void *ud, int code, const char *msg)
{
	struct diagbuf *b = ud;
	(void)code;
	int n = snprintf(b->text + b->len, sizeof(b->text) - b->len, "%s\n", msg);
	if (n > 0 && b->len + (size_t)n < sizeof(b->text))
		b->len += (size_t)n;
}

/* Compile the multi-document yaml into a pack; *ret_corr the correlations added, *ret_rejected
 * the documents rejected; the messages land in db. */
static void compile_yaml(const char *yaml, uint8_t **pack, size_t *plen, size_t *ret_corr,
			 size_t *ret_rejected, struct diagbuf *db)
{
	const uint8_t *p = (const uint8_t *)yaml;
	struct rf_sigma_doc *docs = NULL;
	struct rf_pack_builder *b = NULL;
	struct rf_sigma_corrset *cs = NULL;
	struct rf_diag d = {.emit = collect, .userdata = db};
	size_t nd = 0, rejected = 0, added = 0, crej = 0;

	assert_int_equal(rf_sigma_docs(p, strlen(yaml), "t.yml", &docs, &nd, &d), 0);
	assert_int_equal(rf_pack_builder_new(&b), 0);
	assert_int_equal(rf_sigma_corrset_new(&cs), 0);
	for (size_t i = 0; i < nd; i++) {
		if (docs[i].correlation) {
			if (rf_sigma_corrset_parse(cs, p + docs[i].off, docs[i].len, "t.yml", &d) <
			    0) {
				rejected++;
				assert_int_equal(rf_sigma_corrset_rule(cs, docs[i].id, docs[i].name,
								       "", UINT32_MAX),
						 0);
			}
			continue;
		}
		struct rf_sigma_rule *r = NULL;
		if (rf_sigma_compile(p + docs[i].off, docs[i].len, "t.yml", man, &r, &d) < 0) {
			rejected++;
			continue;
		}
		const struct rf_ir_rule *ir = rf_sigma_rule_ir(r);
		uint32_t idx = (uint32_t)rf_pack_builder_count(b);
		assert_int_equal(rf_pack_builder_add(b, ir, &d), 0);
		assert_int_equal(rf_sigma_corrset_rule(cs, ir->id, docs[i].name, ir->event, idx),
				 0);
		rf_sigma_rule_free(r);
	}
	assert_int_equal(rf_sigma_corrset_finish(cs, b, man, &added, &crej, &d), 0);
	assert_int_equal(rf_pack_builder_finish(b, 1, pack, plen), 0);
	*ret_corr = added;
	*ret_rejected = rejected + crej;
	rf_sigma_corrset_free(cs);
	rf_pack_builder_free(b);
	free(docs);
}

/* ---- evaluating ---------------------------------------------------------------------------- */

struct run {
	struct rf_engine *e;
	struct rf_engine_scratch *s;
	struct rf_corr *c;
	size_t hits[64], n_hits;
	unsigned rule_alerts, corr_alerts;
	char last_group[256];
	uint32_t last_count;
	char last_id[128];
};

static void on_rule(void *ud, size_t rule_index, const struct rf_rule_info *ri)
{
	struct run *r = ud;
	(void)ri;
	if (r->n_hits < 64)
		r->hits[r->n_hits++] = rule_index;
	if (!rf_corr_rule_silent(r->c, rule_index))
		r->rule_alerts++;
}

static void on_corr(void *ud, const struct rf_corr_alert *a)
{
	struct run *r = ud;
	size_t at = 0;

	r->corr_alerts++;
	r->last_count = a->count;
	snprintf(r->last_id, sizeof(r->last_id), "%s", a->id);
	r->last_group[0] = 0;
	for (size_t g = 0; g < a->n_group; g++) {
		int n = snprintf(r->last_group + at, sizeof(r->last_group) - at, "%s%s=%.*s",
				 g ? "," : "", a->group_names[g], (int)a->group_lens[g],
				 (const char *)a->group_values[g]);
		if (n > 0 && at + (size_t)n < sizeof(r->last_group))
			at += (size_t)n;
	}
}

static void run_open(struct run *r, const char *yaml, size_t want_corr)
{
	uint8_t *pack = NULL, key[16] = {1, 2, 3};
	size_t plen, nc, rej;
	struct diagbuf db = {0};
	struct rf_diag d = {.emit = collect, .userdata = &db};

	memset(r, 0, sizeof(*r));
	compile_yaml(yaml, &pack, &plen, &nc, &rej, &db);
	if (rej || nc != want_corr)
		print_message("compile messages:\n%s", db.text);
	assert_int_equal(rej, 0);
	assert_int_equal(nc, want_corr);
	assert_int_equal(rf_engine_load(pack, plen, man, &r->e, &d), 0);
	free(pack);
	assert_int_equal(rf_engine_scratch_new(r->e, &r->s), 0);
	assert_int_equal(rf_corr_new(rf_engine_pack(r->e), key, &r->c), 0);
}

static void run_close(struct run *r)
{
	rf_corr_free(r->c);
	rf_engine_scratch_free(r->s);
	rf_engine_free(r->e);
}

/* Feed one JSON event line at time t_ms (its own UtcTime wins if it has one). */
static void feed(struct run *r, int64_t t_ms, const char *fmt, ...)
{
	char line[2048];
	uint8_t scratch[2048];
	struct rf_event ev;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	assert_int_equal(rf_event_parse((const uint8_t *)line, strlen(line), scratch,
					sizeof(scratch), &ev, NULL),
			 0);
	r->n_hits = 0;
	assert_true(rf_engine_eval(r->e, &ev, r->s, on_rule, r, NULL) >= 0);
	int64_t t = t_ms;
	if (rf_corr_event_time(&ev, &t) < 0)
		t = t_ms;
	assert_true(rf_corr_event(r->c, &ev, t, r->hits, r->n_hits, on_corr, r) >= 0);
}

/* ---- the specification's examples ----------------------------------------------------------- */

#define FAILED_LOGIN                                                                               \
	"title: Single failed login\n"                                                             \
	"id: 53ba33fd-3a50-4468-a5ef-c583635cfa92\n"                                               \
	"name: failed_login\n"                                                                     \
	"logsource:\n  product: windows\n  service: security\n"                                    \
	"detection:\n  selection:\n    EventID:\n      - 529\n      - 4625\n"                      \
	"  condition: selection\n"

#define SUCCESS_LOGIN                                                                              \
	"title: Successful login\n"                                                                \
	"id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8\n"                                               \
	"name: successful_login\n"                                                                 \
	"logsource:\n  product: windows\n  service: security\n"                                    \
	"detection:\n  selection:\n    EventID:\n      - 528\n      - 4624\n"                      \
	"  condition: selection\n"

/* "Failed Logins Followed by Successful Login": a temporal_ordered over an event_count chain. */
static const char spec_chain[] =
    "title: Correlation - Multiple Failed Logins Followed by Successful Login\n"
    "id: b180ead8-d58f-40b2-ae54-c8940995b9b6\n"
    "status: experimental\n"
    "author: Florian Roth (Nextron Systems)\n"
    "correlation:\n"
    "    type: temporal_ordered\n"
    "    rules:\n        - multiple_failed_login\n        - successful_login\n"
    "    group-by:\n        - User\n"
    "    timespan: 10m\n"
    "level: high\n"
    "---\n"
    "title: Multiple failed logons\n"
    "id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41\n"
    "name: multiple_failed_login\n"
    "correlation:\n"
    "    type: event_count\n"
    "    rules:\n        - failed_login\n"
    "    group-by:\n        - User\n"
    "    timespan: 10m\n"
    "    condition:\n        gte: 10\n"
    "---\n" FAILED_LOGIN "---\n" SUCCESS_LOGIN;

#define SEC "{\"event\":\"windows_security\",\"EventID\":%d,\"User\":\"%s\",\"UtcTime\":\"%s\"}"

static void test_spec_failed_then_success(void **state)
{
	struct run r;
	char ts[32];

	(void)state;
	run_open(&r, spec_chain, 2);
	/* Nine failures for bob, a success: not yet. */
	for (int i = 0; i < 9; i++) {
		snprintf(ts, sizeof(ts), "2024-07-19 04:00:%02d", i);
		feed(&r, 0, SEC, 4625, "bob", ts);
	}
	feed(&r, 0, SEC, 4624, "bob", "2024-07-19 04:00:20");
	assert_int_equal(r.corr_alerts, 0);
	/* The base rules are silent: the correlation does not say generate. */
	assert_int_equal(r.rule_alerts, 0);
	/* The tenth failure, alice's success (another user), then bob's success. */
	feed(&r, 0, SEC, 4625, "bob", "2024-07-19 04:00:30");
	feed(&r, 0, SEC, 4624, "alice", "2024-07-19 04:00:31");
	assert_int_equal(r.corr_alerts, 0);
	feed(&r, 0, SEC, 4624, "bob", "2024-07-19 04:00:40");
	assert_int_equal(r.corr_alerts, 1);
	assert_string_equal(r.last_id, "b180ead8-d58f-40b2-ae54-c8940995b9b6");
	assert_string_equal(r.last_group, "User=bob");
	run_close(&r);

	/* Ordered: the success before the failures does not count. */
	run_open(&r, spec_chain, 2);
	feed(&r, 0, SEC, 4624, "carol", "2024-07-19 05:00:00");
	for (int i = 0; i < 10; i++) {
		snprintf(ts, sizeof(ts), "2024-07-19 05:00:%02d", i + 1);
		feed(&r, 0, SEC, 4625, "carol", ts);
	}
	assert_int_equal(r.corr_alerts, 0);
	/* ... nor a success more than 10 minutes after the burst completed (the event_count fired
	 * at the tenth failure, 05:00:10: that is its match time). */
	feed(&r, 0, SEC, 4624, "carol", "2024-07-19 05:10:11");
	assert_int_equal(r.corr_alerts, 0);
	run_close(&r);
}

/* "Many failed logins": event_count, gte 100 per ComputerName in 1h. */
static const char spec_event_count[] = "title: Many failed logins\n"
				       "id: 0e95725d-7320-415d-80f7-004da920fc11\n"
				       "correlation:\n"
				       "    type: event_count\n"
				       "    rules:\n"
				       "        - 5638f7c0-ac70-491d-8465-2a65075e0d86\n"
				       "    group-by:\n        - ComputerName\n"
				       "    timespan: 1h\n"
				       "    condition:\n        gte: 100\n"
				       "---\n"
				       "title: Failed logon\n"
				       "id: 5638f7c0-ac70-491d-8465-2a65075e0d86\n"
				       "logsource:\n  product: windows\n  service: security\n"
				       "detection:\n  selection:\n    EventID: 4625\n"
				       "  condition: selection\n";

#define SECC                                                                                       \
	"{\"event\":\"windows_security\",\"EventID\":4625,\"ComputerName\":\"%s\",\"User\":\"%"    \
	"s\"}"

static void test_spec_event_count(void **state)
{
	struct run r;

	(void)state;
	run_open(&r, spec_event_count, 1);
	for (int i = 0; i < 99; i++)
		feed(&r, (int64_t)i * 30000, SECC, "dc1", "u"); /* 99 in 49.5 minutes */
	assert_int_equal(r.corr_alerts, 0);
	feed(&r, 99 * 30000, SECC, "dc1", "u");
	assert_int_equal(r.corr_alerts, 1);
	assert_int_equal(r.last_count, 100);
	assert_string_equal(r.last_group, "ComputerName=dc1");
	/* The group was reset by the alert: one more is not another alert. */
	feed(&r, 100 * 30000, SECC, "dc1", "u");
	assert_int_equal(r.corr_alerts, 1);
	run_close(&r);

	/* 100 events over more than an hour: never 100 in one window. */
	run_open(&r, spec_event_count, 1);
	for (int i = 0; i < 100; i++)
		feed(&r, (int64_t)i * 37000, SECC, "dc1", "u");
	assert_int_equal(r.corr_alerts, 0);
	run_close(&r);
}

/* "Failed login": value_count, >= 100 distinct User per ComputerName+WorkstationName in 1d. */
static const char spec_value_count[] =
    "title: Failed login\n"
    "id: 0e95725d-7320-415d-80f7-004da920fc12\n"
    "correlation:\n"
    "    type: value_count\n"
    "    rules:\n"
    "        - 5638f7c0-ac70-491d-8465-2a65075e0d86\n"
    "    group-by:\n        - ComputerName\n        - WorkstationName\n"
    "    timespan: 1d\n"
    "    condition:\n        field: User\n        gte: 100\n"
    "---\n"
    "title: Failed logon\n"
    "id: 5638f7c0-ac70-491d-8465-2a65075e0d86\n"
    "logsource:\n  product: windows\n  service: security\n"
    "detection:\n  selection:\n    EventID: 4625\n"
    "  condition: selection\n";

#define SECW                                                                                       \
	"{\"event\":\"windows_security\",\"EventID\":4625,\"ComputerName\":\"dc1\","               \
	"\"WorkstationName\":\"%s\",\"User\":\"user%d\"}"

static void test_spec_value_count(void **state)
{
	struct run r;

	(void)state;
	run_open(&r, spec_value_count, 1);
	/* 200 failures but only 50 distinct users: no alert. */
	for (int i = 0; i < 200; i++)
		feed(&r, (int64_t)i * 1000, SECW, "ws1", i % 50);
	assert_int_equal(r.corr_alerts, 0);
	/* Another workstation is another group: its 99 users do not add to ws1's 50. */
	for (int i = 0; i < 99; i++)
		feed(&r, 300000 + (int64_t)i, SECW, "ws2", 1000 + i);
	assert_int_equal(r.corr_alerts, 0);
	/* The 100th distinct user on ws2. */
	feed(&r, 400000, SECW, "ws2", 5000);
	assert_int_equal(r.corr_alerts, 1);
	assert_int_equal(r.last_count, 100);
	assert_string_equal(r.last_group, "ComputerName=dc1,WorkstationName=ws2");
	run_close(&r);
}

/* "Reconnaissance commands ... in arbitrary order within 5 minutes", temporal. */
static const char spec_temporal[] =
    "title: Recon\nid: recon-corr\n"
    "correlation:\n"
    "    type: temporal\n"
    "    rules:\n        - recon_cmd_a\n        - recon_cmd_b\n        - recon_cmd_c\n"
    "    group-by:\n        - ComputerName\n        - User\n"
    "    timespan: 5m\n"
    "---\n"
    "title: whoami\nid: r-a\nname: recon_cmd_a\nlogsource:\n  category: process_creation\n"
    "detection:\n  s:\n    Image|endswith: '\\whoami.exe'\n  condition: s\n"
    "---\n"
    "title: net\nid: r-b\nname: recon_cmd_b\nlogsource:\n  category: process_creation\n"
    "detection:\n  s:\n    Image|endswith: '\\net.exe'\n  condition: s\n"
    "---\n"
    "title: ipconfig\nid: r-c\nname: recon_cmd_c\nlogsource:\n  category: process_creation\n"
    "detection:\n  s:\n    Image|endswith: '\\ipconfig.exe'\n  condition: s\n";

#define PROC                                                                                       \
	"{\"event\":\"process_creation\",\"Image\":\"C:\\\\Windows\\\\%s.exe\",\"User\":\"%s\","   \
	"\"ComputerName\":\"pc1\"}"

static void test_spec_temporal(void **state)
{
	struct run r;

	(void)state;
	run_open(&r, spec_temporal, 1);
	/* Any order: c, a, then b (another user's b in between does not count). */
	feed(&r, 0, PROC, "ipconfig", "bob");
	feed(&r, 60000, PROC, "whoami", "bob");
	feed(&r, 70000, PROC, "net", "eve");
	assert_int_equal(r.corr_alerts, 0);
	feed(&r, 120000, PROC, "net", "bob");
	assert_int_equal(r.corr_alerts, 1);
	assert_int_equal(r.last_count, 3);
	assert_string_equal(r.last_group, "ComputerName=pc1,User=bob");
	/* eve's three spread over more than 5 minutes: no alert. */
	feed(&r, 400000, PROC, "whoami", "eve");
	feed(&r, 450000, PROC, "ipconfig", "eve");
	assert_int_equal(r.corr_alerts, 1);
	run_close(&r);
}

/* The specification's field name aliases example (temporal over two event types). */
static const char spec_aliases[] =
    "title: internal error then connection\nid: alias-corr\n"
    "correlation:\n"
    "    type: temporal\n"
    "    rules:\n        - internal_error\n        - new_network_connection\n"
    "    group-by:\n        - internal_ip\n        - remote_ip\n"
    "    timespan: 10s\n"
    "    aliases:\n"
    "        internal_ip:\n"
    "            internal_error: dst_ip\n"
    "            new_network_connection: src_ip\n"
    "        remote_ip:\n"
    "            internal_error: src_ip\n"
    "            new_network_connection: dst_ip\n"
    "---\n"
    "title: internal error\nid: ie\nname: internal_error\nlogsource:\n  category: webserver\n"
    "detection:\n  s:\n    status: 500\n  condition: s\n"
    "---\n"
    "title: new connection\nid: nc\nname: new_network_connection\n"
    "logsource:\n  category: network_connection\n"
    "detection:\n  s:\n    outcome: success\n  condition: s\n";

static void test_spec_aliases(void **state)
{
	struct run r;

	(void)state;
	run_open(&r, spec_aliases, 1);
	feed(&r, 0,
	     "{\"event\":\"webserver\",\"status\":500,\"src_ip\":\"203.0.113.5\","
	     "\"dst_ip\":\"10.0.0.1\"}");
	/* The connection with the addresses the other way round is not this one's pair... */
	feed(&r, 1000,
	     "{\"event\":\"network_connection\",\"outcome\":\"success\",\"src_ip\":\"203.0.113.5\","
	     "\"dst_ip\":\"10.0.0.1\"}");
	assert_int_equal(r.corr_alerts, 0);
	/* ... this one is: its source is the web server's destination. */
	feed(&r, 2000,
	     "{\"event\":\"network_connection\",\"outcome\":\"success\",\"src_ip\":\"10.0.0.1\","
	     "\"dst_ip\":\"203.0.113.5\"}");
	assert_int_equal(r.corr_alerts, 1);
	assert_string_equal(r.last_group, "internal_ip=10.0.0.1,remote_ip=203.0.113.5");
	run_close(&r);
}

/* ---- windows, groups, caps ------------------------------------------------------------------ */

/* The rule the correlations below count: one failed logon (Windows security event 4625). */
#define BASE_RULE                                                                                  \
	"title: base\nid: base\nlogsource:\n  product: windows\n  service: security\n"             \
	"detection:\n  s:\n    EventID: 4625\n  condition: s\n"

static const char two_in_10s[] = "title: two\nid: two-corr\n"
				 "correlation:\n  type: event_count\n  rules: [base]\n"
				 "  group-by: [User]\n  timespan: 10s\n  condition:\n    gte: 2\n"
				 "---\n" BASE_RULE;

#define U "{\"event\":\"windows_security\",\"EventID\":4625,\"User\":\"%s\"}"

static void test_window_edges(void **state)
{
	struct run r;

	(void)state;
	/* Exactly timespan apart: both ends are in the window. */
	run_open(&r, two_in_10s, 1);
	feed(&r, 1000000, U, "a");
	feed(&r, 1010000, U, "a");
	assert_int_equal(r.corr_alerts, 1);
	run_close(&r);
	/* One millisecond more: not. */
	run_open(&r, two_in_10s, 1);
	feed(&r, 1000000, U, "a");
	feed(&r, 1010001, U, "a");
	assert_int_equal(r.corr_alerts, 0);
	/* ... but the second starts a new window that the third completes. */
	feed(&r, 1020001, U, "a");
	assert_int_equal(r.corr_alerts, 1);
	run_close(&r);
}

static void test_group_separation(void **state)
{
	struct run r;

	(void)state;
	run_open(&r, two_in_10s, 1);
	feed(&r, 0, U, "a");
	feed(&r, 1, U, "b");
	feed(&r, 2, U, "c");
	assert_int_equal(r.corr_alerts, 0);
	feed(&r, 3, U, "b");
	assert_int_equal(r.corr_alerts, 1);
	assert_string_equal(r.last_group, "User=b");
	/* An event without the group-by field is not counted in any group. */
	feed(&r, 4, "{\"event\":\"windows_security\",\"EventID\":4625}");
	feed(&r, 5, "{\"event\":\"windows_security\",\"EventID\":4625}");
	assert_int_equal(r.corr_alerts, 1);
	struct rf_corr_stats st;
	rf_corr_stats(r.c, &st);
	assert_int_equal(st.skipped, 2);
	run_close(&r);
}

static void test_caps_flood(void **state)
{
	struct run r;
	char u[32];
	const unsigned extra = 1000;

	(void)state;
	run_open(&r, two_in_10s, 1);
	/* One event each for more distinct users than the group cap. */
	for (unsigned i = 0; i < RF_CORR_GROUPS_MAX + extra; i++) {
		snprintf(u, sizeof(u), "flood%u", i);
		feed(&r, i, U, u);
	}
	struct rf_corr_stats st;
	rf_corr_stats(r.c, &st);
	/* Each group past the cap dropped exactly the least recently active one. */
	assert_int_equal(st.groups_dropped, extra);
	assert_int_equal(r.corr_alerts, 0);
	/* The oldest groups are gone (flood0's second event starts over), the newest are kept. */
	feed(&r, 6000, U, "flood0");
	assert_int_equal(r.corr_alerts, 0);
	snprintf(u, sizeof(u), "flood%u", RF_CORR_GROUPS_MAX + extra - 1);
	feed(&r, 6001, U, u);
	assert_int_equal(r.corr_alerts, 1);
	run_close(&r);
}

/* A bounded condition is decided when its window closes. */
static const char at_most_2[] = "title: few\nid: few-corr\n"
				"correlation:\n  type: event_count\n  rules: [base]\n"
				"  group-by: [User]\n  timespan: 10s\n  condition:\n"
				"    gt: 0\n    lte: 2\n"
				"---\n" BASE_RULE;

static void test_bounded_condition(void **state)
{
	struct run r;

	(void)state;
	run_open(&r, at_most_2, 1);
	feed(&r, 0, U, "a");
	feed(&r, 5000, U, "a");
	feed(&r, 0, U, "b");
	feed(&r, 1000, U, "b");
	feed(&r, 2000, U, "b");
	assert_int_equal(r.corr_alerts, 0);
	/* Time passes the windows' end (10 s after their first event) by more than the lateness
	 * tolerance: a had 2, b had 3. A jump of more than RF_CORR_SKEW_MS moves the clock only
	 * when the next event confirms it. */
	feed(&r, 10000 + RF_CORR_LATE_MS, U, "c");
	assert_int_equal(r.corr_alerts, 0);
	feed(&r, 10001 + RF_CORR_LATE_MS, U, "c");
	assert_int_equal(r.corr_alerts, 1);
	assert_string_equal(r.last_group, "User=a");
	assert_int_equal(r.last_count, 2);
	/* c's window is still open; the end of input closes it. */
	assert_int_equal(rf_corr_flush(r.c, on_corr, &r), 1);
	assert_string_equal(r.last_group, "User=c");
	run_close(&r);
}

/* A quiet stream (review 4-1): rf_corr_idle moves the stream's clock on with the caller's clock
 * and decides a bounded window without another event; never past the caller's clock. */
static void test_bounded_quiet(void **state)
{
	/* the caller's clock at the event; when a window is decided, after its first match */
	const int64_t w0 = INT64_C(1796320800000), decided = 10000 + RF_CORR_LATE_MS + 1;
	struct rf_corr_stats st;
	struct run r;

	(void)state;
	run_open(&r, at_most_2, 1);
	assert_false(rf_corr_waiting(r.c));
	assert_int_equal(rf_corr_idle(r.c, w0, on_corr, &r), 0); /* nothing seen: nothing */
	/* A line written 20 minutes ago, read now: the stream's pace, not the wall clock. */
	rf_corr_set_clock(r.c, w0);
	feed(&r, w0 - 1200000, U, "a");
	assert_true(rf_corr_waiting(r.c));
	assert_int_equal(rf_corr_idle(r.c, w0 + decided - 1, on_corr, &r), 0);
	assert_int_equal(rf_corr_idle(r.c, w0 + decided, on_corr, &r), 1);
	assert_int_equal(r.corr_alerts, 1);
	assert_string_equal(r.last_group, "User=a");
	assert_int_equal(r.last_count, 1);
	assert_false(rf_corr_waiting(r.c));
	/* The clock moved: an event older than it by more than the tolerance is late. */
	feed(&r, w0 - 1200000, U, "b");
	rf_corr_stats(r.c, &st);
	assert_int_equal(st.late, 1);
	run_close(&r);

	/* A source 4 minutes ahead of the caller's clock: the stream's clock never passes the
	 * caller's, so its window waits for the caller's clock to reach it. */
	run_open(&r, at_most_2, 1);
	rf_corr_set_clock(r.c, w0);
	feed(&r, w0 + 240000, U, "c");
	assert_int_equal(rf_corr_idle(r.c, w0 + decided, on_corr, &r), 0);
	assert_int_equal(rf_corr_idle(r.c, w0 + 240000 + decided - 1, on_corr, &r), 0);
	assert_int_equal(rf_corr_idle(r.c, w0 + 240000 + decided, on_corr, &r), 1);
	assert_string_equal(r.last_group, "User=c");
	run_close(&r);
}

static const char generate_yes[] = "title: two\nid: two-corr\n"
				   "correlation:\n  type: event_count\n  rules: [base]\n"
				   "  group-by: [User]\n  timespan: 10s\n  condition:\n    gte: 2\n"
				   "  generate: true\n"
				   "---\n" BASE_RULE;

static void test_generate(void **state)
{
	struct run r;

	(void)state;
	run_open(&r, generate_yes, 1);
	feed(&r, 0, U, "a");
	feed(&r, 1, U, "a");
	assert_int_equal(r.rule_alerts, 2);
	assert_int_equal(r.corr_alerts, 1);
	run_close(&r);
	run_open(&r, two_in_10s, 1);
	feed(&r, 0, U, "a");
	assert_int_equal(r.rule_alerts, 0);
	run_close(&r);
}

/* ---- rejections ----------------------------------------------------------------------------- */

static void expect_rejected(const char *corr_doc, const char *why)
{
	char yaml[4096];
	uint8_t *pack = NULL;
	size_t plen, nc, rej;
	struct diagbuf db = {0};

	snprintf(yaml, sizeof(yaml),
		 "%s---\ntitle: base\nid: base\nname: base_rule\nlogsource:\n  product: windows\n"
		 "  service: security\ndetection:\n  s:\n    EventID: 4625\n  condition: s\n",
		 corr_doc);
	compile_yaml(yaml, &pack, &plen, &nc, &rej, &db);
	free(pack);
	if (nc != 0 || rej != 1 || !strstr(db.text, why))
		print_message("want '%s', got (%zu added, %zu rejected):\n%s", why, nc, rej,
			      db.text);
	assert_int_equal(nc, 0);
	assert_int_equal(rej, 1);
	assert_non_null(strstr(db.text, why));
}

static void test_rejections(void **state)
{
	(void)state;
	expect_rejected("title: c\nid: c1\ncorrelation:\n  type: event_count\n  rules: [nope]\n"
			"  timespan: 1m\n  condition: {gte: 2}\n",
			"unknown rule reference 'nope'");
	expect_rejected("title: c\nid: c1\ncorrelation:\n  type: event_count\n  rules: [base]\n"
			"  condition: {gte: 2}\n",
			"missing 'timespan'");
	expect_rejected("title: c\nid: c1\ncorrelation:\n  type: value_sum\n  rules: [base]\n"
			"  timespan: 1m\n  condition: {gte: 2}\n",
			"correlation type 'value_sum' is not supported");
	expect_rejected("title: c\nid: c1\ncorrelation:\n  type: event_count\n  rules: [base]\n"
			"  timespan: 1m\n  condition: {gte: 5000}\n",
			"window cap");
	expect_rejected("title: c\nid: c1\ncorrelation:\n  type: event_count\n  rules: [base]\n"
			"  timespan: 31d\n  condition: {gte: 2}\n",
			"outside 1 s");
	expect_rejected("title: c\nid: c1\ncorrelation:\n  type: event_count\n  rules: [base]\n"
			"  timespan: 1m\n  group-by: [a, b, c, d, e, f, g, h, i]\n"
			"  condition: {gte: 2}\n",
			"9 group-by fields (cap 8)");
	expect_rejected("title: c\nid: c1\ncorrelation:\n  type: event_count\n"
			"  rules: [base_rule]\n  group-by: [NoSuchField]\n  timespan: 1m\n"
			"  condition: {gte: 2}\n",
			"group-by field 'NoSuchField' is not supplied");
	expect_rejected("title: c\nid: c1\ncorrelation:\n  type: value_count\n  rules: [base]\n"
			"  timespan: 1m\n  condition: {gte: 2}\n",
			"value_count needs the condition's 'field'");
	expect_rejected("title: c\nid: c1\ncorrelation:\n  type: event_count\n  rules: [base]\n"
			"  timespan: 1m\n  condition: {gte: 5, lt: 3}\n",
			"empty range");
	/* A name two base rules carry: the correlation would count only the first one's events
	 * (it used to compile, silently); rejected, naming both. */
	expect_rejected("title: c\nid: c1\ncorrelation:\n  type: event_count\n"
			"  rules: [base_rule]\n  timespan: 1m\n  condition: {gte: 2}\n---\n"
			"title: base2\nid: base2\nname: base_rule\nlogsource:\n  product: windows\n"
			"  service: security\ndetection:\n  s:\n    EventID: 4624\n  condition: s\n",
			"'base_rule' is the name of two rules (ids 'base");
	/* Two correlations referring to each other: both rejected, as a cycle. */
	{
		uint8_t *pack = NULL;
		size_t plen, nc, rej;
		struct diagbuf db = {0};
		compile_yaml("title: x\nid: x\ncorrelation:\n  type: temporal\n  rules: [y, base]\n"
			     "  timespan: 1m\n---\n"
			     "title: y\nid: y\ncorrelation:\n  type: temporal\n  rules: [x, base]\n"
			     "  timespan: 1m\n---\n" BASE_RULE,
			     &pack, &plen, &nc, &rej, &db);
		free(pack);
		assert_int_equal(nc, 0);
		assert_int_equal(rej, 2);
		assert_non_null(strstr(db.text, "cycle"));
	}
}

/* ---- the verifier ---------------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Offset of correlation record i in a version 2 pack. */
static size_t corr_rec(const uint8_t *p, unsigned i)
{
	return get32(p + RF_PACK_HEADER_SIZE + 5 * RF_PACK_SECTENT_SIZE + 4) +
	       i * RF_PACK_CORR_SIZE;
}

static void expect_bad_pack(const uint8_t *p, size_t n, int code, const char *why)
{
	struct diagbuf db = {0};
	struct rf_diag d = {.emit = collect, .userdata = &db};
	struct rf_pack *pk = NULL;

	int r = rf_pack_open(p, n, &pk, &d);
	rf_pack_free(pk);
	if (r != code || !strstr(db.text, why))
		print_message("want %d '%s', got %d:\n%s", code, why, r, db.text);
	assert_int_equal(r, code);
	assert_non_null(strstr(db.text, why));
}

static void test_verifier(void **state)
{
	uint8_t *pack = NULL, *p;
	size_t n, nc, rej;
	struct diagbuf db = {0};
	struct rf_pack *pk = NULL;

	(void)state;
	compile_yaml(spec_chain, &pack, &n, &nc, &rej, &db);
	assert_int_equal(nc, 2);
	assert_int_equal(pack[4], RF_PACK_VERSION_CORR);
	assert_int_equal(rf_pack_open(pack, n, &pk, NULL), 0);
	struct rf_pack_summary s;
	rf_pack_summary(pk, &s);
	assert_int_equal(s.n_corr, 2);
	assert_int_equal(s.format_version, 2);
	rf_pack_free(pk);
	/* Correlation 0 is the event_count (the other refers to it, so it comes first). */
	p = malloc(n);

	/* A rule reference out of range. */
	memcpy(p, pack, n);
	size_t rec0 = corr_rec(p, 0), words = corr_rec(p, 2);
	put32(p + words + 4 * get32(p + rec0 + 36), 7);
	expect_bad_pack(p, n, -EBADMSG, "reference 0 to rule 7 out of range");
	/* A correlation referring to itself (not an earlier one). */
	memcpy(p, pack, n);
	size_t rec1 = corr_rec(p, 1);
	put32(p + words + 4 * get32(p + rec1 + 36), RF_CORR_REF_CORR | 1);
	expect_bad_pack(p, n, -EBADMSG, "may refer only to earlier ones");
	/* Timespan 0 and over the cap. */
	memcpy(p, pack, n);
	put32(p + rec0 + 20, 0);
	expect_bad_pack(p, n, -E2BIG, "timespan 0 s");
	memcpy(p, pack, n);
	put32(p + rec0 + 20, RF_CORR_TIMESPAN_MAX + 1);
	expect_bad_pack(p, n, -E2BIG, "timespan");
	/* More group-by fields than the cap. */
	memcpy(p, pack, n);
	p[rec0 + 19] = RF_CORR_GROUP_MAX + 1;
	expect_bad_pack(p, n, -E2BIG, "group-by fields (at most 8)");
	/* A threshold over the window cap. */
	memcpy(p, pack, n);
	put32(p + rec0 + 24, RF_CORR_WINDOW_MAX + 1);
	expect_bad_pack(p, n, -E2BIG, "window cap");
	/* An unknown type. */
	memcpy(p, pack, n);
	p[rec0 + 16] = 9;
	expect_bad_pack(p, n, -EBADMSG, "unknown type 9");
	/* A group-by string index out of range. */
	memcpy(p, pack, n);
	put32(p + words + 4 * (get32(p + rec0 + 36) + 1), 0xfffffff0u);
	expect_bad_pack(p, n, -EBADMSG, "bad name");
	free(p);
	free(pack);

	/* A pack without correlations is still version 1 (older agents load it). */
	compile_yaml(FAILED_LOGIN, &pack, &n, &nc, &rej, &db);
	assert_int_equal(pack[4], RF_PACK_VERSION);
	assert_int_equal(rf_pack_open(pack, n, &pk, NULL), 0);
	rf_pack_free(pk);
	free(pack);
}

/* ---- event time ------------------------------------------------------------------------------ */

static void test_event_time(void **state)
{
	static const struct {
		const char *line;
		int64_t want;
	} cases[] = {
	    {"{\"event\":\"x\",\"UtcTime\":\"1970-01-01 00:00:01.500\"}", 1500},
	    {"{\"event\":\"x\",\"UtcTime\":\"2024-07-19 04:09:00.000\"}", 1721362140000},
	    {"{\"event\":\"x\",\"@timestamp\":\"2024-07-19T04:09:00Z\"}", 1721362140000},
	    {"{\"event\":\"x\",\"timestamp\":1721362140123}", 1721362140123},
	    {"{\"event\":\"x\",\"TimeCreated\":\"2000-02-29T23:59:59.9+00:00\"}", 951868799900},
	    /* offsets are taken off (only +00:00 was read), epoch seconds are seconds */
	    {"{\"event\":\"x\",\"@timestamp\":\"2024-07-19T06:09:00+02:00\"}", 1721362140000},
	    {"{\"event\":\"x\",\"@timestamp\":\"2024-07-18T23:39:00.5-04:30\"}", 1721362140500},
	    {"{\"event\":\"x\",\"@timestamp\":\"2024-07-19T06:09:00+0200\"}", 1721362140000},
	    {"{\"event\":\"x\",\"@timestamp\":\"2024-07-19T05:09:00+01\"}", 1721362140000},
	    {"{\"event\":\"x\",\"timestamp\":1721362140}", 1721362140000},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t scratch[256];
		struct rf_event ev;
		int64_t t = 0;
		assert_int_equal(rf_event_parse((const uint8_t *)cases[i].line,
						strlen(cases[i].line), scratch, sizeof(scratch),
						&ev, NULL),
				 0);
		assert_int_equal(rf_corr_event_time(&ev, &t), 0);
		assert_int_equal(t, cases[i].want);
	}
	uint8_t scratch[256];
	struct rf_event ev;
	int64_t t;
	static const char *const bad[] = {"{\"event\":\"x\",\"UtcTime\":\"yesterday\"}",
					  "{\"event\":\"x\",\"UtcTime\":\"2024-07-19 04:09:00+2:00\"}",
					  "{\"event\":\"x\",\"UtcTime\":\"2024-07-19 04:09:00+02:60\"}",
					  "{\"event\":\"x\",\"UtcTime\":\"2024-07-19 04:09:00+02:0\"}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(rf_event_parse((const uint8_t *)bad[i], strlen(bad[i]), scratch,
						sizeof(scratch), &ev, NULL),
				 0);
		/* present but unreadable: -EINVAL, not the -ENOENT of no time at all (the caller
		 * counts these: their correlations ran on arrival time) */
		assert_int_equal(rf_corr_event_time(&ev, &t), -EINVAL);
		const char *fname = NULL;
		const uint8_t *fv = NULL;
		size_t fn = 0;
		assert_int_equal(rf_corr_event_time_field(&ev, &fname, &fv, &fn), 0);
		assert_string_equal(fname, "UtcTime");
		assert_true(fn > 0 && memmem(bad[i], strlen(bad[i]), fv, fn) != NULL);
	}
	static const char *const none = "{\"event\":\"x\",\"Image\":\"a\"}";
	assert_int_equal(
	    rf_event_parse((const uint8_t *)none, strlen(none), scratch, sizeof(scratch), &ev, NULL),
	    0);
	assert_int_equal(rf_corr_event_time(&ev, &t), -ENOENT);
	{
		const char *fname;
		const uint8_t *fv;
		size_t fn;
		assert_int_equal(rf_corr_event_time_field(&ev, &fname, &fv, &fn), -ENOENT);
	}
	/* one unreadable field, a later one that reads: the time is that one */
	static const char *const mixed =
	    "{\"event\":\"x\",\"UtcTime\":\"03/12/2026 10:00\",\"timestamp\":1721362140}";
	assert_int_equal(rf_event_parse((const uint8_t *)mixed, strlen(mixed), scratch,
					sizeof(scratch), &ev, NULL),
			 0);
	assert_int_equal(rf_corr_event_time(&ev, &t), 0);
	assert_int_equal(t, 1721362140000);
}

/* The time field the manifest names for an event type is read first (review 5-2: Okta's
 * "published", zeek's "ts" were never read, so their events took the arrival time); RFC 3339's
 * lower-case t/z and epoch seconds with a fraction parse. */
static void test_event_time_field(void **state)
{
	static const struct {
		const char *line, *field;
		int r;
		int64_t want;
	} cases[] = {
	    {"{\"event\":\"okta\",\"published\":\"2024-07-19T04:09:00.000Z\"}", "published", 0,
	     1721362140000},
	    /* without the manifest's field the event has no time (as before) */
	    {"{\"event\":\"okta\",\"published\":\"2024-07-19T04:09:00.000Z\"}", NULL, -ENOENT, 0},
	    /* the named field first, then the usual ones: a shipper's @timestamp still serves */
	    {"{\"event\":\"okta\",\"published\":\"2024-07-19T04:09:00Z\",\"@timestamp\":"
	     "\"2024-07-19T05:00:00Z\"}",
	     "published", 0, 1721362140000},
	    {"{\"event\":\"okta\",\"@timestamp\":\"2024-07-19T05:00:00Z\"}", "published", 0,
	     1721365200000},
	    {"{\"event\":\"okta\",\"published\":\"soon\"}", "published", -EINVAL, 0},
	    /* zeek's ts: epoch seconds with a microsecond fraction */
	    {"{\"event\":\"zeek_dns\",\"ts\":1721362140.305988}", "ts", 0, 1721362140305},
	    {"{\"event\":\"zeek_dns\",\"ts\":\"1721362140.5\"}", "ts", 0, 1721362140500},
	    {"{\"event\":\"x\",\"timestamp\":1721362140.25}", NULL, 0, 1721362140250},
	    /* 13 digits are milliseconds, a fraction of them is dropped */
	    {"{\"event\":\"x\",\"timestamp\":\"1721362140123.9\"}", NULL, 0, 1721362140123},
	    {"{\"event\":\"x\",\"@timestamp\":\"2024-07-19t04:09:00.5z\"}", NULL, 0, 1721362140500},
	    {"{\"event\":\"x\",\"timestamp\":\"1721362140.\"}", NULL, -EINVAL, 0},
	    {"{\"event\":\"x\",\"timestamp\":\"1721362140.5.1\"}", NULL, -EINVAL, 0},
	    /* 15-17 digits are microseconds, 18-19 nanoseconds (before, 16 digits were read as
	     * milliseconds: the year 54,000, dropped as "future"); 20 digits or past INT64_MAX do
	     * not parse */
	    {"{\"event\":\"x\",\"timestamp\":1721362140123456}", NULL, 0, 1721362140123},
	    {"{\"event\":\"x\",\"timestamp\":\"17213621401234567.5\"}", NULL, 0, 17213621401234},
	    {"{\"event\":\"x\",\"timestamp\":1721362140123456789}", NULL, 0, 1721362140123},
	    {"{\"event\":\"x\",\"timestamp\":\"9223372036854775807\"}", NULL, 0, 9223372036854},
	    {"{\"event\":\"x\",\"timestamp\":\"9223372036854775808\"}", NULL, -EINVAL, 0},
	    /* a day the month does not have is not a time (2026-02-31 read as March 3) */
	    {"{\"event\":\"x\",\"timestamp\":\"2026-02-31T00:00:00Z\"}", NULL, -EINVAL, 0},
	    {"{\"event\":\"x\",\"timestamp\":\"2026-04-31T00:00:00Z\"}", NULL, -EINVAL, 0},
	    {"{\"event\":\"x\",\"timestamp\":\"2026-02-29T00:00:00Z\"}", NULL, -EINVAL, 0},
	    {"{\"event\":\"x\",\"timestamp\":\"1900-02-29T00:00:00Z\"}", NULL, -EINVAL, 0},
	    {"{\"event\":\"x\",\"timestamp\":\"2024-02-29T00:00:00Z\"}", NULL, 0, 1709164800000},
	    {"{\"event\":\"x\",\"timestamp\":\"2000-02-29T00:00:00Z\"}", NULL, 0, 951782400000},
	    {"{\"event\":\"x\",\"timestamp\":\"17213621401234567890\"}", NULL, -EINVAL, 0},
	    {"{\"event\":\"x\",\"timestamp\":\"-1721362140\"}", NULL, -EINVAL, 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t scratch[256];
		struct rf_event ev;
		int64_t t = 0;
		assert_int_equal(rf_event_parse((const uint8_t *)cases[i].line,
						strlen(cases[i].line), scratch, sizeof(scratch),
						&ev, NULL),
				 0);
		assert_int_equal(rf_corr_event_time_in(&ev, cases[i].field, &t), cases[i].r);
		if (cases[i].r == 0)
			assert_int_equal(t, cases[i].want);
		const char *name = NULL;
		const uint8_t *v;
		size_t n;
		if (cases[i].r == -EINVAL) {
			assert_int_equal(
			    rf_corr_event_time_field_in(&ev, cases[i].field, &name, &v, &n), 0);
			assert_string_equal(name, cases[i].field ? cases[i].field : "timestamp");
		}
	}

	/* The manifest's "time": read back per event type; a closed event must supply it. */
	static const char mj[] =
	    "{\"agent\":\"a\",\"version\":\"1.0.0\",\"events\":["
	    "{\"name\":\"okta\",\"time\":\"published\",\"fields\":[],\"other_fields\":\"string\"},"
	    "{\"name\":\"proc\",\"time\":\"UtcTime\",\"fields\":[{\"name\":\"UtcTime\","
	    "\"type\":\"string\"}]},{\"name\":\"dns\",\"fields\":[]}]}";
	struct rf_manifest *m = NULL;
	struct rf_diag d = {0};
	assert_int_equal(rf_manifest_parse((const uint8_t *)mj, strlen(mj), &m, &d), 0);
	assert_string_equal(rf_manifest_event_time(m, (const uint8_t *)"okta", 4), "published");
	assert_string_equal(rf_manifest_event_time(m, (const uint8_t *)"proc", 4), "UtcTime");
	assert_null(rf_manifest_event_time(m, (const uint8_t *)"dns", 3));
	assert_null(rf_manifest_event_time(m, (const uint8_t *)"okt", 3));
	assert_null(rf_manifest_event_time(m, (const uint8_t *)"nope", 4));
	rf_manifest_free(m);
	static const char *const bad[] = {
	    "{\"agent\":\"a\",\"version\":\"1\",\"events\":[{\"name\":\"p\",\"time\":\"When\","
	    "\"fields\":[{\"name\":\"UtcTime\",\"type\":\"string\"}]}]}",
	    "{\"agent\":\"a\",\"version\":\"1\",\"events\":[{\"name\":\"p\",\"time\":3,"
	    "\"fields\":[],\"other_fields\":\"string\"}]}",
	    "{\"agent\":\"a\",\"version\":\"1\",\"events\":[{\"name\":\"p\",\"time\":\"a b\","
	    "\"fields\":[],\"other_fields\":\"string\"}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = NULL;
		assert_int_equal(rf_manifest_parse((const uint8_t *)bad[i], strlen(bad[i]), &m, &d),
				 -EBADMSG);
		assert_null(m);
	}
}

/* ---- out-of-order and forged event times (docs/sigma.md "Time") ----------------------------- */

#define EVIL_RULES                                                                                 \
	"title: base\nid: 9a1c7a52-0000-4000-8000-00000000ba5e\nname: base_rule\n"                 \
	"logsource:\n  category: process_creation\n  product: windows\n"                           \
	"detection:\n  selection:\n    Image|endswith: '\\evil.exe'\n  condition: selection\n"
#define EVIL_GTE3                                                                                  \
	"title: three in a minute\nid: corr-gte3\ncorrelation:\n  type: event_count\n"             \
	"  rules: [base_rule]\n  group-by: [User]\n  timespan: 1m\n  condition:\n    gte: 3\n"
#define EVIL_RANGE                                                                                 \
	"title: two or three\nid: corr-range\ncorrelation:\n  type: event_count\n"                 \
	"  rules: [base_rule]\n  group-by: [User]\n  timespan: 1m\n  condition:\n    gte: 2\n"     \
	"    lte: 3\n"

static const char evil_both[] = EVIL_GTE3 "---\n" EVIL_RANGE "---\n" EVIL_RULES;

#define PC_EV(img, user, time)                                                                     \
	"{\"event\":\"process_creation\",\"Image\":\"C:\\\\" img "\",\"User\":\"" user             \
	"\",\"UtcTime\":\"" time "\"}"

/* Alerts of one run, in order: correlation id, group, count, line (feed's counter). */
struct alog {
	struct run r;
	unsigned n, line;
	struct {
		char id[32], group[32];
		uint32_t count;
		unsigned line;
		int64_t t;
	} a[64];
};

static void on_alog(void *ud, const struct rf_corr_alert *a)
{
	struct alog *l = ud;

	if (l->n >= 64)
		return;
	snprintf(l->a[l->n].id, sizeof(l->a[l->n].id), "%s", a->id);
	snprintf(l->a[l->n].group, sizeof(l->a[l->n].group), "%.*s",
		 a->n_group ? (int)a->group_lens[0] : 0,
		 a->n_group ? (const char *)a->group_values[0] : "");
	l->a[l->n].count = a->count;
	l->a[l->n].line = l->line;
	l->a[l->n].t = a->time_ms;
	l->n++;
}

/* One JSON line with its own UtcTime into the log's run. */
static void feed_log(struct alog *l, const char *line)
{
	uint8_t scratch[2048];
	struct rf_event ev;
	int64_t t;

	l->line++;
	assert_int_equal(rf_event_parse((const uint8_t *)line, strlen(line), scratch,
					sizeof(scratch), &ev, NULL),
			 0);
	l->r.n_hits = 0;
	assert_true(rf_engine_eval(l->r.e, &ev, l->r.s, on_rule, &l->r, NULL) >= 0);
	assert_int_equal(rf_corr_event_time(&ev, &t), 0);
	assert_true(rf_corr_event(l->r.c, &ev, t, l->r.hits, l->r.n_hits, on_alog, l) >= 0);
}

static unsigned alerts_of(const struct alog *l, const char *id)
{
	unsigned n = 0;

	for (unsigned i = 0; i < l->n; i++)
		n += !strcmp(l->a[i].id, id);
	return n;
}

/* The review's case 1: a late event and a far-future one never make a wrong count. */
static void test_review_out_of_order(void **state)
{
	struct alog l;
	struct rf_corr_stats st;

	(void)state;
	for (int with_clock = 0; with_clock < 2; with_clock++) {
		memset(&l, 0, sizeof(l));
		run_open(&l.r, evil_both, 2);
		if (with_clock) /* the agent's clock, as rf_corr_set_clock gets it */
			rf_corr_set_clock(l.r.c, INT64_C(1796320800000)); /* 2026-12-03 17:20 */
		feed_log(&l, PC_EV("evil.exe", "bob", "2026-12-03 10:00:00"));
		feed_log(&l, PC_EV("evil.exe", "bob", "2026-12-01 10:00:00"));
		feed_log(&l, PC_EV("evil.exe", "bob", "2026-12-03 10:00:10"));
		/* Two events within [t - 60 s, t]: no "3 within a minute". */
		assert_int_equal(alerts_of(&l, "corr-gte3"), 0);
		assert_int_equal(rf_corr_flush(l.r.c, on_alog, &l), 1);
		assert_int_equal(alerts_of(&l, "corr-range"), 1);
		assert_int_equal(l.a[l.n - 1].count, 2);
		run_close(&l.r);

		memset(&l, 0, sizeof(l));
		run_open(&l.r, evil_both, 2);
		if (with_clock)
			rf_corr_set_clock(l.r.c, INT64_C(1796320800000));
		feed_log(&l, PC_EV("evil.exe", "bob", "2099-01-01 00:00:00"));
		feed_log(&l, PC_EV("evil.exe", "bob", "2026-12-03 10:00:00"));
		feed_log(&l, PC_EV("evil.exe", "bob", "2026-12-03 11:00:00"));
		assert_int_equal(alerts_of(&l, "corr-gte3"), 0);
		rf_corr_stats(l.r.c, &st);
		assert_int_equal(st.future, with_clock ? 1 : 0);
		run_close(&l.r);
	}
}

/* The review's case 2: one event far in the future (matching or not, any group) neither
 * silences nor delays another group's bounded decision. */
static void test_review_future_event(void **state)
{
	static const char *const first[] = {NULL, PC_EV("good.exe", "bob", "2099-01-01 00:00:00"),
					    PC_EV("evil.exe", "alice", "2099-01-01 00:00:00")};
	struct alog l;

	(void)state;
	for (int with_clock = 0; with_clock < 2; with_clock++)
		for (unsigned i = 0; i < RF_ARRAY_SIZE(first); i++) {
			memset(&l, 0, sizeof(l));
			run_open(&l.r, evil_both, 2);
			if (with_clock)
				rf_corr_set_clock(l.r.c, INT64_C(1796320800000));
			if (first[i])
				feed_log(&l, first[i]);
			unsigned base = l.line;
			feed_log(&l, PC_EV("evil.exe", "bob", "2026-12-03 10:00:00"));
			feed_log(&l, PC_EV("evil.exe", "bob", "2026-12-03 10:00:10"));
			feed_log(&l, PC_EV("good.exe", "bob", "2026-12-03 10:05:00"));
			assert_int_equal(l.n, 0);
			/* bob's window [10:00:00, 10:01:00] is decided once time passes its end
			 * by the lateness tolerance (5 minutes), without waiting for the end of
			 * input (an agent never flushes). */
			feed_log(&l, PC_EV("good.exe", "bob", "2026-12-03 10:06:01"));
			if (l.n != 1)
				fail_msg("first line %u, clock %d: %u alerts", i, with_clock, l.n);
			assert_string_equal(l.a[0].id, "corr-range");
			assert_string_equal(l.a[0].group, "bob");
			assert_int_equal(l.a[0].count, 2);
			assert_int_equal(l.a[0].line, base + 4);
			run_close(&l.r);
		}
}

/* A burst delivered in reverse time order is still "3 within a minute" (a window holds the
 * match whatever the arrival order); an event too late to place is dropped and counted. */
static void test_late_and_reversed(void **state)
{
	struct alog l;
	struct rf_corr_stats st;

	(void)state;
	memset(&l, 0, sizeof(l));
	run_open(&l.r, evil_both, 2);
	feed_log(&l, PC_EV("evil.exe", "bob", "2026-12-03 10:00:50"));
	feed_log(&l, PC_EV("evil.exe", "bob", "2026-12-03 10:00:20"));
	assert_int_equal(alerts_of(&l, "corr-gte3"), 0);
	feed_log(&l, PC_EV("evil.exe", "bob", "2026-12-03 09:59:55"));
	assert_int_equal(alerts_of(&l, "corr-gte3"), 1);
	/* the clock is 10:00:50: 6 minutes older is too late */
	feed_log(&l, PC_EV("evil.exe", "carol", "2026-12-03 09:54:49"));
	rf_corr_stats(l.r.c, &st);
	assert_int_equal(st.late, 1);
	run_close(&l.r);
}

/* temporal_ordered, failure then success within a minute (review 4-2): the sequence counts by
 * its event times, also when the success is delivered first. */
static const char fail_then_ok[] = "title: fail then ok\nid: fail-ok\n"
				   "correlation:\n  type: temporal_ordered\n"
				   "  rules: [failed_login, successful_login]\n"
				   "  group-by: [User]\n  timespan: 1m\n"
				   "---\n" FAILED_LOGIN "---\n" SUCCESS_LOGIN;

#define LOGOFF                                                                                     \
	"title: logoff\nid: logoff\nname: logoff\n"                                                  \
	"logsource:\n  product: windows\n  service: security\n"                                    \
	"detection:\n  selection:\n    EventID: 4634\n  condition: selection\n"

static const char abc[] = "title: fail ok logoff\nid: fail-ok-off\n"
			  "correlation:\n  type: temporal_ordered\n"
			  "  rules: [failed_login, successful_login, logoff]\n"
			  "  group-by: [User]\n  timespan: 1m\n"
			  "---\n" FAILED_LOGIN "---\n" SUCCESS_LOGIN "---\n" LOGOFF;

static void test_ordered_newest_first(void **state)
{
	struct run r;

	(void)state;
	/* In file order, then newest first: one alert each, at the success's time. */
	for (int reversed = 0; reversed < 2; reversed++) {
		run_open(&r, fail_then_ok, 1);
		if (!reversed)
			feed(&r, 0, SEC, 4625, "bob", "2026-07-19 08:00:05");
		feed(&r, 0, SEC, 4624, "bob", "2026-07-19 08:00:10");
		if (reversed)
			feed(&r, 0, SEC, 4625, "bob", "2026-07-19 08:00:05");
		assert_int_equal(r.corr_alerts, 1);
		assert_string_equal(r.last_group, "User=bob");
		run_close(&r);
	}
	/* Newest first but out of order in time (success before failure), or farther apart than
	 * the timespan, or another user's failure: no sequence. */
	run_open(&r, fail_then_ok, 1);
	feed(&r, 0, SEC, 4624, "carol", "2026-07-19 08:00:00");
	feed(&r, 0, SEC, 4625, "carol", "2026-07-19 08:00:05");
	feed(&r, 0, SEC, 4624, "dave", "2026-07-19 08:02:00");
	feed(&r, 0, SEC, 4625, "dave", "2026-07-19 08:00:59");
	feed(&r, 0, SEC, 4624, "erin", "2026-07-19 08:02:10");
	feed(&r, 0, SEC, 4625, "frank", "2026-07-19 08:02:05");
	assert_int_equal(r.corr_alerts, 0);
	/* dave's failure exactly a minute before: in one window (both ends included). */
	feed(&r, 0, SEC, 4625, "dave", "2026-07-19 08:01:00");
	assert_int_equal(r.corr_alerts, 1);
	assert_string_equal(r.last_group, "User=dave");
	run_close(&r);

	/* Three steps: A at :01, B at :05, C at :03 (in that arrival order) is no sequence, C
	 * comes before B; A at :01, C at :04, B at :02 is one, whatever the arrival order. */
	run_open(&r, abc, 1);
	feed(&r, 0, SEC, 4625, "gail", "2026-07-19 08:00:01");
	feed(&r, 0, SEC, 4624, "gail", "2026-07-19 08:00:05");
	feed(&r, 0, SEC, 4634, "gail", "2026-07-19 08:00:03");
	assert_int_equal(r.corr_alerts, 0);
	feed(&r, 0, SEC, 4625, "hugo", "2026-07-19 08:00:01");
	feed(&r, 0, SEC, 4634, "hugo", "2026-07-19 08:00:04");
	assert_int_equal(r.corr_alerts, 0);
	feed(&r, 0, SEC, 4624, "hugo", "2026-07-19 08:00:02");
	assert_int_equal(r.corr_alerts, 1);
	assert_string_equal(r.last_group, "User=hugo");
	run_close(&r);
}

/* ---- random arrival order against a brute-force reference ----------------------------------- */

struct pev {
	int64_t t;
	unsigned user, value;
};

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(rng_state >> 33) % n;
}

/* The most matches (distinct values) in one window [a, a + span] holding t, among ev[0..n). */
static unsigned ref_best(const struct pev *ev, const bool *in, size_t n, int64_t t, int64_t span,
			 bool distinct)
{
	unsigned best = 0;

	for (size_t i = 0; i < n; i++) {
		if (!in[i] || ev[i].t < t - span || ev[i].t > t)
			continue;
		unsigned cnt = 0;
		bool seen[64] = {false};
		for (size_t j = 0; j < n; j++)
			if (in[j] && ev[j].t >= ev[i].t && ev[j].t <= ev[i].t + span) {
				if (!distinct)
					cnt++;
				else if (!seen[ev[j].value]) {
					seen[ev[j].value] = true;
					cnt++;
				}
			}
		if (cnt > best)
			best = cnt;
	}
	return best;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_alert(const void *a, const void *b)
{
	const int64_t *x = a, *y = b; /* user, end, count */
	for (int i = 0; i < 3; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

struct prun {
	struct run r;
	int64_t got[512][3];
	unsigned n;
};

static void on_prop(void *ud, const struct rf_corr_alert *a)
{
	struct prun *p = ud;

	assert_true(p->n < 512);
	int64_t u = 0; /* "u<N>", not NUL-terminated */
	for (size_t i = 1; i < a->group_lens[0]; i++)
		u = u * 10 + (a->group_values[0][i] - '0');
	p->got[p->n][0] = u;
	p->got[p->n][1] = a->time_ms;
	p->got[p->n][2] = a->count;
	p->n++;
}

static void prop_feed(struct prun *p, const struct pev *e)
{
	char line[256];
	uint8_t scratch[512];
	struct rf_event ev;

	snprintf(line, sizeof(line),
		 "{\"event\":\"windows_security\",\"EventID\":4625,\"ComputerName\":\"u%u\","
		 "\"WorkstationName\":\"v%u\"}",
		 e->user, e->value);
	assert_int_equal(rf_event_parse((const uint8_t *)line, strlen(line), scratch,
					sizeof(scratch), &ev, NULL),
			 0);
	p->r.n_hits = 0;
	assert_true(rf_engine_eval(p->r.e, &ev, p->r.s, on_rule, &p->r, NULL) >= 0);
	assert_true(rf_corr_event(p->r.c, &ev, e->t, p->r.hits, p->r.n_hits, on_prop, p) >= 0);
}

/*
 * Events of a few groups at random times, delivered in an order where each is at most 2 minutes
 * (< RF_CORR_LATE_MS) older than the newest before it and none jumps more than RF_CORR_SKEW_MS
 * ahead: nothing is dropped, so every alert must be the reference's. Unbounded conditions are
 * decided at each arrival (the most matches in a window holding it; fire resets the group);
 * bounded ones over the greedy windows of each group's sorted times (opening at the earliest).
 */
static void test_random_order_property(void **state)
{
	static const char *const kinds[] = {"event_count", "value_count"};
	char yaml[1024];

	(void)state;
	for (unsigned seed = 1; seed <= 200; seed++) {
		rng_state = seed;
		unsigned kind = seed % 2, bounded = (seed / 2) % 2;
		int64_t span = 1000 * (int64_t)(5 + rnd(56));
		unsigned lo = 2 + rnd(4), hi = lo + rnd(3), users = 1 + rnd(3), vals = 1 + rnd(6);
		size_t n = 30 + rnd(120);
		struct pev ev[160], arr[160];
		int64_t key[160];
		struct prun *p = calloc(1, sizeof(*p));

		if (bounded)
			snprintf(yaml, sizeof(yaml),
				 "title: p\nid: p\ncorrelation:\n  type: %s\n  rules: [base]\n"
				 "  group-by: [ComputerName]\n  timespan: %llds\n  condition:\n"
				 "%s    gte: %u\n    lte: %u\n---\n" BASE_RULE,
				 kinds[kind], (long long)span / 1000,
				 kind ? "    field: WorkstationName\n" : "", lo, hi);
		else
			snprintf(yaml, sizeof(yaml),
				 "title: p\nid: p\ncorrelation:\n  type: %s\n  rules: [base]\n"
				 "  group-by: [ComputerName]\n  timespan: %llds\n  condition:\n"
				 "%s    gte: %u\n---\n" BASE_RULE,
				 kinds[kind], (long long)span / 1000,
				 kind ? "    field: WorkstationName\n" : "", lo);
		int64_t t = INT64_C(1700000000000);
		for (size_t i = 0; i < n; i++) {
			t += rnd(8000); /* steps up to 8 s, so windows see 1 to ~15 events */
			ev[i] = (struct pev){t, rnd(users), rnd(vals)};
			key[i] = t + rnd(120000); /* arrival: time plus up to 2 minutes' delay */
		}
		/* arrival order: by t + delay (insertion sort on the small array) */
		for (size_t i = 0; i < n; i++)
			arr[i] = ev[i];
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0 && key[j - 1] > key[j]; j--) {
				int64_t k = key[j];
				key[j] = key[j - 1];
				key[j - 1] = k;
				struct pev x = arr[j];
				arr[j] = arr[j - 1];
				arr[j - 1] = x;
			}
		run_open(&p->r, yaml, 1);
		for (size_t i = 0; i < n; i++)
			prop_feed(p, &arr[i]);
		(void)rf_corr_flush(p->r.c, on_prop, p);
		struct rf_corr_stats st;
		rf_corr_stats(p->r.c, &st);
		assert_int_equal(st.late + st.future + st.entries_dropped + st.groups_dropped, 0);
		run_close(&p->r);

		/* the reference */
		int64_t want[512][3];
		unsigned nw = 0;
		bool in[160] = {false};
		if (!bounded) {
			for (size_t i = 0; i < n; i++) {
				bool mine[160];
				in[i] = true;
				for (size_t j = 0; j < n; j++)
					mine[j] = in[j] && arr[j].user == arr[i].user;
				unsigned b = ref_best(arr, mine, i + 1, arr[i].t, span, kind);
				if (b < lo)
					continue;
				want[nw][0] = arr[i].user, want[nw][1] = arr[i].t, want[nw][2] = b;
				nw++;
				for (size_t j = 0; j <= i; j++)
					in[j] = in[j] && arr[j].user != arr[i].user;
			}
		} else {
			for (unsigned u = 0; u < users; u++) {
				int64_t ts[160];
				size_t m = 0, at = 0;
				for (size_t i = 0; i < n; i++)
					if (ev[i].user == u)
						ts[m++] = ev[i].t;
				qsort(ts, m, sizeof(ts[0]), cmp_i64);
				while (at < m) {
					int64_t end = ts[at] + span;
					unsigned cnt = 0;
					bool seen[64] = {false};
					for (size_t i = 0; i < n; i++)
						if (ev[i].user == u && ev[i].t >= ts[at] &&
						    ev[i].t <= end &&
						    (!kind || !seen[ev[i].value])) {
							seen[ev[i].value] = true;
							cnt++;
						}
					if (cnt >= lo && cnt <= hi) {
						want[nw][0] = u, want[nw][1] = end,
						want[nw][2] = cnt;
						nw++;
					}
					while (at < m && ts[at] <= end)
						at++;
				}
			}
			qsort(want, nw, sizeof(want[0]), cmp_alert);
			qsort(p->got, p->n, sizeof(p->got[0]), cmp_alert);
		}
		if (getenv("RF_PROP_DEBUG") &&
		    (nw != p->n || memcmp(want, p->got, nw * sizeof(want[0]))))
			for (unsigned i = 0; i < (nw > p->n ? nw : p->n); i++)
				print_message("got u%lld t%lld n%lld   want u%lld t%lld n%lld\n",
					      i < p->n ? (long long)p->got[i][0] : -1,
					      i < p->n ? (long long)p->got[i][1] : -1,
					      i < p->n ? (long long)p->got[i][2] : -1,
					      i < nw ? (long long)want[i][0] : -1,
					      i < nw ? (long long)want[i][1] : -1,
					      i < nw ? (long long)want[i][2] : -1);
		if (nw != p->n || memcmp(want, p->got, nw * sizeof(want[0])))
			fail_msg(
			    "seed %u (%s, %s, span %llds, lo %u hi %u, %zu events): %u alerts, "
			    "reference %u; first got u%lld t%lld n%lld, want u%lld t%lld n%lld",
			    seed, kinds[kind], bounded ? "bounded" : "gte", (long long)span / 1000,
			    lo, hi, n, p->n, nw, p->n ? (long long)p->got[0][0] : -1,
			    p->n ? (long long)p->got[0][1] : -1,
			    p->n ? (long long)p->got[0][2] : -1, nw ? (long long)want[0][0] : -1,
			    nw ? (long long)want[0][1] : -1, nw ? (long long)want[0][2] : -1);
		free(p);
	}
}

/* ---- `ringfence content compile` and `content eval` ----------------------------------------- */

static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *text)
{
	assert_int_equal(rf_file_write_atomic(path, text, strlen(text), 0644), 0);
}

static bool file_contains(const char *path, const char *s, bool want)
{
	uint8_t *b = NULL;
	size_t n;
	assert_int_equal(rf_file_read(path, 1 << 20, &b, &n), 0);
	bool r = memmem(b, n, s, strlen(s)) != NULL;
	if (r != want)
		print_message("'%s' %s %s:\n%.*s\n", s, want ? "not in" : "in", path, (int)n,
			      (const char *)b);
	free(b);
	return r;
}

static bool file_has(const char *path, const char *s)
{
	return file_contains(path, s, true);
}

static void test_cli_eval(void **state)
{
	char dir[] = "/tmp/rf-corr-XXXXXX", f[512], evs[4096];
	size_t at = 0;

	(void)state;
	if (!rf_exe) {
		skip();
	}
	assert_non_null(mkdtemp(dir));
	snprintf(f, sizeof(f), "%s/m.json", dir);
	write_file(f, manifest_json);
	/* The correlations in one file and their rules in another, as the spec allows. */
	const char *corr = strstr(spec_chain, "title: Single failed login");
	char *corr_only = strndup(spec_chain, (size_t)(corr - spec_chain) - 4);
	snprintf(f, sizeof(f), "%s/mr_login.yml", dir);
	write_file(f, corr_only);
	free(corr_only);
	snprintf(f, sizeof(f), "%s/rules.yml", dir);
	write_file(f, FAILED_LOGIN "---\n" SUCCESS_LOGIN);
	for (int i = 0; i < 10; i++)
		at += (size_t)snprintf(evs + at, sizeof(evs) - at,
				       "{\"event\":\"windows_security\",\"EventID\":4625,"
				       "\"User\":\"bob\",\"UtcTime\":\"2024-07-19 04:00:%02d\"}\n",
				       i);
	snprintf(evs + at, sizeof(evs) - at,
		 "{\"event\":\"windows_security\",\"EventID\":4624,\"User\":\"bob\","
		 "\"UtcTime\":\"2024-07-19 04:01:00\"}\n");
	snprintf(f, sizeof(f), "%s/ev.jsonl", dir);
	write_file(f, evs);
	assert_int_equal(sh("'%s' content compile '%s/mr_login.yml' '%s/rules.yml' -o '%s/p.rfp' "
			    "--manifest '%s/m.json' 2>'%s/compile.err'",
			    rf_exe, dir, dir, dir, dir, dir),
			 0);
	snprintf(f, sizeof(f), "%s/compile.err", dir);
	assert_true(file_has(f, "compiled 2 rules and 2 correlations, rejected 0"));
	assert_int_equal(sh("'%s' content inspect '%s/p.rfp' >'%s/inspect.out'", rf_exe, dir, dir),
			 0);
	snprintf(f, sizeof(f), "%s/inspect.out", dir);
	assert_true(file_has(f, "format version 2"));
	assert_true(file_has(f, "correlation temporal_ordered of 2 rules"));
	assert_int_equal(sh("'%s' content eval '%s/p.rfp' --manifest '%s/m.json' '%s/ev.jsonl' "
			    ">'%s/eval.out' 2>'%s/eval.err'",
			    rf_exe, dir, dir, dir, dir, dir),
			 0);
	snprintf(f, sizeof(f), "%s/eval.out", dir);
	assert_true(file_has(f, "{\"line\":11,\"correlation\":\"b180ead8-d58f-40b2-ae54-"
				"c8940995b9b6\""));
	assert_true(file_has(f, "\"group\":{\"User\":\"bob\"}"));
	assert_false(file_contains(f, "\"rule\":", false)); /* the base rules are silent */
	snprintf(f, sizeof(f), "%s/eval.err", dir);
	assert_true(file_has(f, "2 correlations: 1 alerts"));
	/* The silent rules' 11 matches are no alerts in the summary (they were counted as such). */
	assert_true(file_has(f, " 0 alerts, "));
	assert_true(file_has(f, "11 matches of silent rules (fed to their correlations)"));
	/* A line over the limit first: reported with its whole length, read through (not held:
	 * a 300 MB line took 300 MB), and the lines after it evaluated as before. */
	assert_int_equal(sh("{ head -c 300000 /dev/zero | tr '\\0' x; echo; cat '%s/ev.jsonl'; } "
			    ">'%s/ev2.jsonl' && '%s' content eval '%s/p.rfp' --manifest '%s/m.json' "
			    "'%s/ev2.jsonl' >'%s/eval.out' 2>'%s/eval.err'",
			    dir, dir, rf_exe, dir, dir, dir, dir, dir),
			 0);
	assert_true(file_has(f, ":1: line of 300000 bytes (limit "));
	assert_true(file_has(f, "2 correlations: 1 alerts"));
	snprintf(f, sizeof(f), "%s/eval.out", dir);
	assert_true(file_has(f, "{\"line\":12,\"correlation\":\"b180ead8-"));
	/* A correlation whose rule is in no input: rejected by name, exit 1. */
	assert_int_equal(sh("'%s' content compile '%s/mr_login.yml' -o '%s/q.rfp' 2>'%s/c2.err'",
			    rf_exe, dir, dir, dir),
			 1);
	snprintf(f, sizeof(f), "%s/c2.err", dir);
	assert_true(file_has(f, "unknown rule reference 'failed_login'"));
	sh("rm -rf '%s'", dir);
}

/* The review's cases through `ringfence content eval`, compiled against the shipped agent
 * manifest: eval gives its wall clock, so the 2099 lines are dropped as in the future. */
static void eval_case(const char *dir, const char *lines, const char *must, const char *must_not)
{
	char f[512];

	snprintf(f, sizeof(f), "%s/ev.jsonl", dir);
	write_file(f, lines);
	assert_int_equal(sh("'%s' content eval '%s/p.rfp' --manifest '%s' '%s/ev.jsonl' "
			    ">'%s/eval.out' 2>'%s/eval.err'",
			    rf_exe, dir, getenv("RF_MANIFEST_11"), dir, dir, dir),
			 0);
	snprintf(f, sizeof(f), "%s/eval.out", dir);
	if (must)
		assert_true(file_has(f, must));
	if (must_not)
		assert_false(file_contains(f, must_not, false));
}

static void test_cli_review_cases(void **state)
{
	char dir[] = "/tmp/rf-corr-XXXXXX", f[512], m[512];
	const char *root = getenv("RF_SOURCE_ROOT");

	(void)state;
	if (!rf_exe || !root) {
		skip();
	}
	snprintf(m, sizeof(m), "%s/manifests/ringfence-agent-1.1.0.json", root);
	setenv("RF_MANIFEST_11", m, 1);
	assert_non_null(mkdtemp(dir));
	snprintf(f, sizeof(f), "%s/evil.yml", dir);
	write_file(f, evil_both);
	assert_int_equal(sh("'%s' content compile '%s/evil.yml' -o '%s/p.rfp' --manifest '%s' "
			    "2>'%s/compile.err'",
			    rf_exe, dir, dir, m, dir),
			 0);
	/* case 1: a late event and a future one: never "3 within 1 minute" */
	eval_case(
	    dir,
	    PC_EV("evil.exe", "bob", "2026-12-03 10:00:00") "\n" PC_EV(
		"evil.exe", "bob", "2026-12-01 10:00:00") "\n" PC_EV("evil.exe", "bob",
								     "2026-12-03 10:00:10") "\n",
	    NULL, "\"correlation\":\"corr-gte3\"");
	eval_case(
	    dir,
	    PC_EV("evil.exe", "bob", "2099-01-01 00:00:00") "\n" PC_EV(
		"evil.exe", "bob", "2026-12-03 10:00:00") "\n" PC_EV("evil.exe", "bob",
								     "2026-12-03 11:00:00") "\n",
	    NULL, "\"correlation\":\"corr-gte3\"");
	snprintf(f, sizeof(f), "%s/eval.err", dir);
	assert_true(file_has(f, "1 in the future dropped"));
	/* case 2: after a non-matching 2099 event bob's {gte 2, lte 3} window is decided (here
	 * at the end of input); after a matching one of another group, on the line that takes
	 * time past its end (plus the lateness tolerance), not at the end of input. */
	eval_case(
	    dir,
	    PC_EV("good.exe", "bob", "2099-01-01 00:00:00") "\n" PC_EV(
		"evil.exe", "bob",
		"2026-12-03 10:00:00") "\n" PC_EV("evil.exe", "bob",
						  "2026-12-03 10:00:10") "\n" PC_EV("good.exe",
										    "bob",
										    "2026-12-03 "
										    "10:05:00") "\n",
	    "\"correlation\":\"corr-range\"", NULL);
	snprintf(f, sizeof(f), "%s/eval.out", dir);
	assert_true(file_has(f, "\"count\":2,"));
	eval_case(
	    dir,
	    PC_EV("evil.exe", "alice", "2099-01-01 00:00:00") "\n" PC_EV("evil.exe", "bob", "2026-12-03 10:00:00") "\n" PC_EV(
		"evil.exe", "bob",
		"2026-12-03 10:00:10") "\n" PC_EV("good.exe", "bob",
						  "2026-12-03 10:05:00") "\n" PC_EV("good.exe",
										    "bob",
										    "2026-12-03 "
										    "10:06:01") "\n" PC_EV("good.exe",
													   "bob",
													   "2026-12-03 10:07:00") "\n",
	    "{\"line\":5,\"correlation\":\"corr-range\"", "\"alice\"");
	/* case 3: times that do not parse are said per line and counted, not taken silently */
	eval_case(dir,
		  PC_EV("evil.exe", "bob", "2026-12-03 10:00:00") "\n" PC_EV(
		      "evil.exe", "bob", "03/12/2026 10:00") "\n" PC_EV("evil.exe", "carol",
									 "03/12/2026 \\u0001") "\n",
		  NULL, NULL);
	snprintf(f, sizeof(f), "%s/eval.err", dir);
	assert_true(file_has(f, "ev.jsonl:2: UtcTime \"03/12/2026 10:00\" does not parse as a "
				"time: correlations use the previous event's time"));
	assert_true(file_has(f, "ev.jsonl:3: UtcTime \"03/12/2026 \\x01\" does not parse"));
	assert_false(file_contains(f, "ev.jsonl:1:", false));
	assert_true(file_has(f, ", 2 events with a time that does not parse"));
	sh("rm -rf '%s'", dir);
}

/* The review's 5-2 case through `ringfence content eval` and the shipped log manifest: Okta keeps
 * its time in "published" (the manifest's "time"), so three failures ten minutes apart are not
 * "3 in 1 minute", while three in one minute are; an event without any time is counted. */
static void test_cli_log_time(void **state)
{
	char dir[] = "/tmp/rf-corr-XXXXXX", f[512], m[512], evs[2048];
	const char *root = getenv("RF_SOURCE_ROOT");
	static const char rules[] =
	    "title: okta failed login\nid: 53535353-0000-0000-0000-000000000001\nname: okta_fail\n"
	    "logsource: {product: okta, service: okta}\ndetection:\n  sel:\n"
	    "    eventType: user.session.start\n    outcome.result: FAILURE\n  condition: sel\n"
	    "---\ntitle: 3 failed Okta logins in 1 minute\n"
	    "id: 53535353-0000-0000-0000-000000000002\ncorrelation:\n  type: event_count\n"
	    "  rules: [okta_fail]\n  group-by: [actor.alternateId]\n  timespan: 1m\n"
	    "  condition: {gte: 3}\nlevel: high\n"
	    "---\ntitle: okta admin app\nid: 53535353-0000-0000-0000-000000000003\n"
	    "logsource: {product: okta, service: okta}\ndetection:\n  sel:\n"
	    "    eventType: app.admin.access\n  condition: sel\n";
	static const char *const apart[] = {"08:00:00", "08:10:00", "08:20:00"};
	static const char *const close[] = {"09:00:00", "09:00:20", "09:00:40"};

	(void)state;
	if (!rf_exe || !root) {
		skip();
	}
	snprintf(m, sizeof(m), "%s/manifests/ringfence-agent-logs-1.0.0.json", root);
	assert_non_null(mkdtemp(dir));
	snprintf(f, sizeof(f), "%s/r.yml", dir);
	write_file(f, rules);
	assert_int_equal(sh("'%s' content compile '%s/r.yml' -o '%s/p.rfp' --manifest '%s' "
			    "2>'%s/compile.err'",
			    rf_exe, dir, dir, m, dir),
			 0);
	size_t at = 0;
	for (int i = 0; i < 3; i++)
		at +=
		    (size_t)snprintf(evs + at, sizeof(evs) - at,
				     "{\"event\":\"okta\",\"eventType\":\"user.session.start\","
				     "\"outcome.result\":\"FAILURE\",\"actor.alternateId\":\"bob\","
				     "\"published\":\"2024-12-01T%s.000Z\"}\n",
				     apart[i]);
	snprintf(f, sizeof(f), "%s/ev.jsonl", dir);
	write_file(f, evs);
	assert_int_equal(sh("'%s' content eval '%s/p.rfp' --manifest '%s' '%s/ev.jsonl' "
			    ">'%s/eval.out' 2>'%s/eval.err'",
			    rf_exe, dir, m, dir, dir, dir),
			 0);
	snprintf(f, sizeof(f), "%s/eval.out", dir);
	assert_false(file_contains(f, "\"correlation\":", false));
	snprintf(f, sizeof(f), "%s/eval.err", dir);
	assert_true(file_has(f, "1 correlations: 0 alerts"));
	assert_true(file_has(f, " 0 matched for a correlation without a time field"));

	/* Three within a minute fire, at the third one's time; a fourth failure without any
	 * time field is counted (it took the previous event's time). */
	at = 0;
	for (int i = 0; i < 3; i++)
		at +=
		    (size_t)snprintf(evs + at, sizeof(evs) - at,
				     "{\"event\":\"okta\",\"eventType\":\"user.session.start\","
				     "\"outcome.result\":\"FAILURE\",\"actor.alternateId\":\"bob\","
				     "\"published\":\"2024-12-01t%sz\"}\n",
				     close[i]);
	/* review 6-1: a timeless event that matches only a rule no correlation uses is not
	 * counted (the agent's worker does not count it either) */
	at += (size_t)snprintf(evs + at, sizeof(evs) - at,
			       "{\"event\":\"okta\",\"eventType\":\"app.admin.access\","
			       "\"actor.alternateId\":\"dave\"}\n");
	snprintf(evs + at, sizeof(evs) - at,
		 "{\"event\":\"okta\",\"eventType\":\"user.session.start\","
		 "\"outcome.result\":\"FAILURE\",\"actor.alternateId\":\"carol\"}\n");
	snprintf(f, sizeof(f), "%s/ev.jsonl", dir);
	write_file(f, evs);
	assert_int_equal(sh("'%s' content eval '%s/p.rfp' --manifest '%s' '%s/ev.jsonl' "
			    ">'%s/eval.out' 2>'%s/eval.err'",
			    rf_exe, dir, m, dir, dir, dir),
			 0);
	snprintf(f, sizeof(f), "%s/eval.out", dir);
	assert_true(file_has(f, "{\"line\":3,\"correlation\":\"53535353-0000-0000-0000-"
				"000000000002\""));
	assert_true(file_has(f, "\"time_ms\":1733043640000,"));
	snprintf(f, sizeof(f), "%s/eval.err", dir);
	assert_true(file_has(f, "1 correlations: 1 alerts"));
	assert_true(file_has(f, " 1 matched for a correlation without a time field"));
	snprintf(f, sizeof(f), "%s/eval.out", dir);
	assert_true(file_has(f, "53535353-0000-0000-0000-000000000003")); /* it did alert */
	sh("rm -rf '%s'", dir);
}

/* ---- SigmaHQ's correlation rules, when the corpus is there ---------------------------------- */

static size_t find_corr_files(const char *dir, unsigned depth, char ***list, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d || depth > 12) {
		if (d)
			closedir(d);
		return *n;
	}
	while ((de = readdir(d))) {
		char path[4096];
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			find_corr_files(path, depth + 1, list, n);
			continue;
		}
		size_t l = strlen(path);
		if (!S_ISREG(st.st_mode) || l < 4 || strcmp(path + l - 4, ".yml"))
			continue;
		uint8_t *b = NULL;
		size_t bl;
		if (rf_file_read(path, RF_SIGMA_FILE_MAX, &b, &bl) < 0)
			continue;
		if (memmem(b, bl, "\ncorrelation:", 13) ||
		    (bl > 12 && !memcmp(b, "correlation:", 12))) {
			*list = realloc(*list, (*n + 1) * sizeof(char *));
			(*list)[(*n)++] = strdup(path);
		}
		free(b);
	}
	closedir(d);
	return *n;
}

static void test_shared_corpus(void **state)
{
	const char *shared = getenv("RF_SHARED_DIR");
	char root[4096], **list = NULL;
	size_t n = 0, failed = 0;

	(void)state;
	if (!shared)
		skip();
	snprintf(root, sizeof(root), "%s/sigma", shared);
	if (find_corr_files(root, 0, &list, &n) == 0) {
		print_message("SKIP: no correlation rules under %s\n", root);
		skip();
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t *b = NULL, *pack = NULL;
		size_t bl, plen, nc, rej;
		struct diagbuf db = {0};
		assert_int_equal(rf_file_read(list[i], RF_SIGMA_FILE_MAX, &b, &bl), 0);
		char *text = strndup((const char *)b, bl);
		struct rf_manifest *keep = man;
		man = NULL; /* the corpus's own fields, no manifest */
		compile_yaml(text, &pack, &plen, &nc, &rej, &db);
		man = keep;
		if (nc == 0 || rej) {
			print_message("%s: %zu correlations, %zu rejected:\n%s", list[i], nc, rej,
				      db.text);
			failed++;
		}
		free(text);
		free(pack);
		free(b);
		free(list[i]);
	}
	free(list);
	assert_int_equal(failed, 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_failed_then_success),
	    cmocka_unit_test(test_spec_event_count),
	    cmocka_unit_test(test_spec_value_count),
	    cmocka_unit_test(test_spec_temporal),
	    cmocka_unit_test(test_spec_aliases),
	    cmocka_unit_test(test_window_edges),
	    cmocka_unit_test(test_group_separation),
	    cmocka_unit_test(test_caps_flood),
	    cmocka_unit_test(test_bounded_condition),
	    cmocka_unit_test(test_bounded_quiet),
	    cmocka_unit_test(test_generate),
	    cmocka_unit_test(test_rejections),
	    cmocka_unit_test(test_verifier),
	    cmocka_unit_test(test_event_time),
	    cmocka_unit_test(test_event_time_field),
	    cmocka_unit_test(test_review_out_of_order),
	    cmocka_unit_test(test_review_future_event),
	    cmocka_unit_test(test_late_and_reversed),
	    cmocka_unit_test(test_ordered_newest_first),
	    cmocka_unit_test(test_random_order_property),
	    cmocka_unit_test(test_cli_eval),
	    cmocka_unit_test(test_cli_review_cases),
	    cmocka_unit_test(test_cli_log_time),
	    cmocka_unit_test(test_shared_corpus),
	};
	struct rf_diag d = {0};
	int rc;

	rf_exe = argc > 1 ? argv[1] : NULL;
	if (rf_manifest_parse((const uint8_t *)manifest_json, sizeof(manifest_json) - 1, &man, &d) <
	    0) {
		fprintf(stderr, "manifest: %s\n", d.first);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rf_manifest_free(man);
	return rc;
}
