/*
 * The Sigma specification's own examples, end to end: each rule is compiled against the shipped
 * Windows manifest (manifests/ringfence-agent-windows-1.2.0.json, the real one, so field types
 * are Sysmon's and the event log's), packed, verified and loaded into the real engine, and events
 * are run through it: "+" events must alert, "-" events must not. Each test names the section of
 * SigmaHQ's sigma-specification it takes its examples from (specification/
 * sigma-rules-specification.md v2.0.0 "Detection", and specification/sigma-appendix-modifiers.md
 * v2.1.0); where an example needs a field the Windows sources do not carry (the specification's
 * `EventLog`), the test says which field stands in. Rules the specification forbids, and
 * contradictory modifier sets, must be rejected with a reason naming the construct and the rule.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "content/sigma.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

static struct rf_manifest *win;

static int setup(void **state)
{
	char path[4096];
	const char *root = getenv("RF_SOURCE_ROOT");
	struct rf_diag d = {0};
	uint8_t *buf;
	size_t n;

	snprintf(path, sizeof(path), "%s/manifests/ringfence-agent-windows-1.2.0.json",
		 root ? root : ".");
	assert_int_equal(rf_file_read(path, 4u << 20, &buf, &n), 0);
	assert_int_equal(rf_manifest_parse(buf, n, &win, &d), 0);
	free(buf);
	return 0;
}

static int teardown(void **state)
{
	rf_manifest_free(win);
	return 0;
}

/* ---- compile -> pack -> load -> evaluate ------------------------------------------------- */

struct eng {
	struct rf_engine *e;
	struct rf_engine_scratch *s;
	char src[4096];
};

static void count_alert(void *ud, size_t rule_index, const struct rf_rule_info *rule)
{
	(*(int *)ud)++;
	(void)rule_index;
	(void)rule;
}

/* "title/id/logsource for category or product_service" + detection. */
static void rule_text(char *out, size_t sz, const char *logsource, const char *detection)
{
	int k =
	    snprintf(out, sz, "title: Spec Example\nid: 5bec-0001\nlogsource:\n%sdetection:\n%s",
		     logsource, detection);
	assert_true(k > 0 && (size_t)k < sz);
}

static void eng_new(struct eng *g, const char *logsource, const char *detection,
		    const struct rf_sigma_placeholders *ph)
{
	struct rf_diag d = {0};
	struct rf_sigma_rule *r = NULL;
	struct rf_pack_builder *b = NULL;
	uint8_t *pack = NULL;
	size_t plen;

	rule_text(g->src, sizeof(g->src), logsource, detection);
	if (rf_sigma_compile_with((const uint8_t *)g->src, strlen(g->src), "spec.yml", win, ph, &r,
				  &d) != 0)
		fail_msg("compile: %s\n%s", d.first, g->src);
	assert_int_equal(rf_pack_builder_new(&b), 0);
	assert_int_equal(rf_pack_builder_add(b, rf_sigma_rule_ir(r), &d), 0);
	assert_int_equal(rf_pack_builder_finish(b, 1, &pack, &plen), 0);
	if (rf_engine_load(pack, plen, win, &g->e, &d) != 0)
		fail_msg("load: %s", d.first);
	assert_int_equal(rf_engine_scratch_new(g->e, &g->s), 0);
	free(pack);
	rf_pack_builder_free(b);
	rf_sigma_rule_free(r);
}

static void eng_free(struct eng *g)
{
	rf_engine_scratch_free(g->s);
	rf_engine_free(g->e);
}

static bool eng_fires(struct eng *g, const char *json)
{
	static struct rf_event ev;
	static uint8_t scratch[8192];
	struct rf_diag d = {0};
	bool refused = false;
	int alerts = 0;

	if (rf_event_parse((const uint8_t *)json, strlen(json), scratch, sizeof(scratch), &ev, &d))
		fail_msg("event: %s: %s", json, d.first);
	int n = rf_engine_eval(g->e, &ev, g->s, count_alert, &alerts, &refused);
	assert_true(n >= 0);
	assert_false(refused);
	assert_int_equal(n, alerts);
	return alerts > 0;
}

/* Each event: '+' or '-' then a JSON line. */
static void check_ph(const char *logsource, const char *detection,
		     const struct rf_sigma_placeholders *ph, const char *const *events)
{
	struct eng g = {0};

	eng_new(&g, logsource, detection, ph);
	for (; *events; events++) {
		bool want = (*events)[0] == '+';
		if (eng_fires(&g, *events + 1) != want)
			fail_msg("rule:\n%s\nevent %s: expected %s", g.src, *events + 1,
				 want ? "an alert" : "no alert");
	}
	eng_free(&g);
}

#define PC_LS  "  category: process_creation\n  product: windows\n"
#define NC_LS  "  category: network_connection\n  product: windows\n"
#define SEC_LS "  product: windows\n  service: security\n"
#define PC     "{\"event\":\"process_creation\","
#define NC     "{\"event\":\"network_connection\","
#define SEC    "{\"event\":\"windows_security\","

static void check(const char *logsource, const char *detection, const char *const *events)
{
	check_ph(logsource, detection, NULL, events);
}

/* One field's raw values (no JSON escaping to get wrong): '+'/'-' then the value. */
static void check_values(const char *detection, const char *field, const char *const *values)
{
	struct eng g = {0};
	char json[1024];

	eng_new(&g, PC_LS, detection, NULL);
	for (; *values; values++) {
		size_t o = (size_t)snprintf(json, sizeof(json), PC "\"%s\":\"", field);
		for (const char *v = *values + 1; *v; v++) {
			if (*v == '\\' || *v == '"')
				json[o++] = '\\';
			json[o++] = *v;
			assert_true(o + 4 < sizeof(json));
		}
		memcpy(json + o, "\"}", 3);
		bool want = (*values)[0] == '+';
		if (eng_fires(&g, json) != want)
			fail_msg("rule:\n%s\nvalue [%s]: expected %s", g.src, *values + 1,
				 want ? "an alert" : "no alert");
	}
	eng_free(&g);
}

/* The rule must be rejected with code, and the message must name the rule and hold each needle. */
static void reject_ph(const char *logsource, const char *detection,
		      const struct rf_sigma_placeholders *ph, int code, ...)
{
	char src[4096];
	struct rf_diag d = {0};
	struct rf_sigma_rule *r = NULL;
	va_list ap;

	rule_text(src, sizeof(src), logsource, detection);
	int rc =
	    rf_sigma_compile_with((const uint8_t *)src, strlen(src), "spec.yml", win, ph, &r, &d);
	if (rc != code)
		fail_msg("expected %d, got %d (%s) for:\n%s", code, rc, d.first, src);
	assert_null(r);
	if (!strstr(d.first, "spec.yml: rule 5bec-0001 \"Spec Example\": "))
		fail_msg("message '%s' does not name the rule", d.first);
	va_start(ap, code);
	for (const char *n; (n = va_arg(ap, const char *));)
		if (!strstr(d.first, n))
			fail_msg("message '%s' lacks '%s'", d.first, n);
	va_end(ap);
}

#define reject(ls, det, code, ...) reject_ph(ls, det, NULL, code, __VA_ARGS__, NULL)

/* ---- sigma-rules-specification.md, "Detection" ------------------------------------------- */

/* "String Wildcard": ? is one mandatory character, * any run; "Escaping": the five cases. */
static void test_wildcards_and_escaping(void **state)
{
	check_values(
	    "  s:\n    Image: 'prog?.exe'\n  condition: s\n", "Image",
	    (const char *const[]){"+progA.exe", "+PROGB.EXE", "-prog.exe", "-progAB.exe", NULL});
	check_values("  s:\n    Image: 'antivirus_V*.exe'\n  condition: s\n", "Image",
		     (const char *const[]){"+antivirus_V1.exe", "+antivirus_V21.2.1.exe",
					   "+antivirus_V.exe", "-antivirus_V1.exe.bak", NULL});
	/* "Plain backslash not followed by a wildcard can be expressed as single \ or double
	 * backslash \\." */
	check_values("  s:\n    Image: 'C:\\Windows\\System32\\cmd.exe'\n  condition: s\n", "Image",
		     (const char *const[]){"+C:\\Windows\\System32\\cmd.exe",
					   "-C:\\\\Windows\\\\System32\\\\cmd.exe", NULL});
	check_values("  s:\n    Image: 'C:\\\\Windows\\\\System32\\\\cmd.exe'\n  condition: s\n",
		     "Image",
		     (const char *const[]){"+C:\\Windows\\System32\\cmd.exe",
					   "-C:\\\\Windows\\\\System32\\\\cmd.exe", NULL});
	/* "A wildcard has to be escaped to be handled as a plain character: \*, \?." */
	check_values("  s:\n    CommandLine: 'a\\*b\\?'\n  condition: s\n", "CommandLine",
		     (const char *const[]){"+a*b?", "-axbx", "-a*bx", "-axb?", NULL});
	/* "The backslash before a wildcard has to be escaped to handle the value as a backslash
	 * followed by a wildcard: \\*." */
	check_values("  s:\n    Image: 'C:\\\\*'\n  condition: s\n", "Image",
		     (const char *const[]){"+C:\\", "+C:\\Windows\\x.exe", "-C:x", NULL});
	/* "Three backslashes are necessary to escape both ... and handle them as plain values:
	 * \\\*." */
	check_values("  s:\n    Image: 'C:\\\\\\*'\n  condition: s\n", "Image",
		     (const char *const[]){"+C:\\*", "-C:\\x", "-C:\\", NULL});
	/* "Three or four backslashes are handled as double backslash ... \\\\ results in the plain
	 * value \\." */
	check_values("  s:\n    CommandLine: '\\\\\\\\srv\\\\\\\\'\n  condition: s\n",
		     "CommandLine", (const char *const[]){"+\\\\srv\\\\", "-\\srv\\", NULL});
	check_values("  s:\n    CommandLine: '\\\\\\srv\\\\\\'\n  condition: s\n", "CommandLine",
		     (const char *const[]){"+\\\\srv\\\\", "-\\srv\\", NULL});
	/* "Sigma has special modifiers": startswith is 'adm*', endswith '*\cmd.exe', contains
	 * '*...*' (sigma-appendix-modifiers.md "Generic Modifiers"). */
	static const char *const adm[] = {"+adm_bob", "+ADMIN", "-xadm", NULL};
	check_values("  s:\n    User: 'adm*'\n  condition: s\n", "User", adm);
	check_values("  s:\n    User|startswith: 'adm'\n  condition: s\n", "User", adm);
	static const char *const cmd[] = {"+C:\\Windows\\cmd.exe", "-C:\\Windows\\cmd.exe.bak",
					  "-C:\\Windows\\xcmd.exe", NULL};
	check_values("  s:\n    Image: '*\\cmd.exe'\n  condition: s\n", "Image", cmd);
	check_values("  s:\n    Image|endswith: '\\cmd.exe'\n  condition: s\n", "Image", cmd);
	static const char *const enc[] = {"+x -enc y", "+-ENC", "-x -en y", NULL};
	check_values("  s:\n    CommandLine: '*-enc*'\n  condition: s\n", "CommandLine", enc);
	check_values("  s:\n    CommandLine|contains: '-enc'\n  condition: s\n", "CommandLine",
		     enc);
}

/* "Lists", "Maps", "Keywords search"; "General": values are case-insensitive strings. */
static void test_lists_maps_keywords(void **state)
{
	/* "Example for list of strings: Matches on 'EvilService' or 'svchost.exe -n evil'" */
	check(PC_LS,
	      "  keywords:\n    - 'EVILSERVICE'\n    - 'svchost.exe -n evil'\n"
	      "  condition: keywords\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"svchost.exe -n evil\"}",
				    "+" PC "\"Description\":\"an EvilService here\"}",
				    "-" PC "\"CommandLine\":\"svchost.exe -k netsvcs\"}", NULL});
	/* "Example for list of maps": an image ending with example.exe or a description holding
	 * 'Test executable' */
	check(PC_LS,
	      "  selection:\n    - Image|endswith: '\\\\example.exe'\n"
	      "    - Description|contains: 'Test executable'\n  condition: selection\n",
	      (const char *const[]){"+" PC "\"Image\":\"C:\\\\x\\\\example.exe\"}",
				    "+" PC "\"Description\":\"A test executable\"}",
				    "-" PC "\"Image\":\"C:\\\\x\\\\other.exe\"}", NULL});
	/* "Maps": EventLog 'Security' and (Event ID 517 or 1102). The event log's name is the
	 * System field Channel in ringfence's Windows events (the specification's EventLog). */
	check(SEC_LS,
	      "  selection:\n    Channel: Security\n    EventID:\n      - 517\n      - 1102\n"
	      "  condition: selection\n",
	      (const char *const[]){"+" SEC "\"Channel\":\"Security\",\"EventID\":1102}",
				    "+" SEC "\"Channel\":\"security\",\"EventID\":517}",
				    "-" SEC "\"Channel\":\"Security\",\"EventID\":4624}",
				    "-" SEC "\"Channel\":\"System\",\"EventID\":517}", NULL});
	/* Event ID 4769, TicketOptions '0x40810000', TicketEncryption '0x17' (quoted: text) */
	check(SEC_LS,
	      "  selection:\n    Channel: Security\n    EventID: 4769\n"
	      "    TicketOptions: '0x40810000'\n    TicketEncryptionType: '0x17'\n"
	      "  condition: selection\n",
	      (const char *const[]){"+" SEC "\"Channel\":\"Security\",\"EventID\":4769,"
				    "\"TicketOptions\":\"0x40810000\",\"TicketEncryptionType\":"
				    "\"0x17\"}",
				    "-" SEC "\"Channel\":\"Security\",\"EventID\":4769,"
				    "\"TicketOptions\":\"0x40810000\",\"TicketEncryptionType\":"
				    "\"0x12\"}",
				    NULL});
	/* "Keywords search" with '|all': OabVirtualDirectory and ' -ExternalUrl ' */
	check(PC_LS,
	      "  keywords_cmdlet:\n    '|all':\n      - 'OabVirtualDirectory'\n"
	      "      - ' -ExternalUrl '\n  condition: keywords_cmdlet\n",
	      (const char *const[]){
		  "+" PC "\"CommandLine\":\"Set-OabVirtualDirectory -ExternalUrl "
		  "'http://x'\"}",
		  "+" PC "\"CommandLine\":\"x -externalurl y\",\"ParentCommandLine\":"
		  "\"Get-OABVirtualDirectory\"}",
		  "-" PC "\"CommandLine\":\"Set-OabVirtualDirectory -InternalUrl x\"}", NULL});
	/* The map's integer EventID is a number on the manifest's int field; quoted it is the same
	 * number, as the event carries it. */
	check(
	    SEC_LS, "  s:\n    EventID: '4738'\n  condition: s\n",
	    (const char *const[]){"+" SEC "\"EventID\":4738}", "-" SEC "\"EventID\":47380}", NULL});
}

/* "Special Field Values" and "Field Existence"; the modifiers appendix on exists: "this check
 * only verifies the presence of a field, not its value, be it empty or null". */
static void test_null_empty_exists(void **state)
{
	/* "To get an expression that say `not null` ... negate it in the condition." */
	check(SEC_LS,
	      "  selection:\n    EventID: 4738\n  filter:\n    PasswordLastSet: null\n"
	      "  condition: selection and not filter\n",
	      (const char *const[]){"+" SEC "\"EventID\":4738,\"PasswordLastSet\":\"%%1794\"}",
				    "-" SEC "\"EventID\":4738}",
				    "-" SEC "\"EventID\":4738,\"PasswordLastSet\":null}",
				    "-" SEC "\"EventID\":4738,\"PasswordLastSet\":\"\"}",
				    "-" SEC "\"EventID\":4624,\"PasswordLastSet\":\"x\"}", NULL});
	check(SEC_LS,
	      "  selection:\n    EventID: 4738\n    PasswordLastSet|exists: true\n"
	      "  condition: selection\n",
	      (const char *const[]){"+" SEC "\"EventID\":4738,\"PasswordLastSet\":\"%%1794\"}",
				    "+" SEC "\"EventID\":4738,\"PasswordLastSet\":\"\"}",
				    "-" SEC "\"EventID\":4738}", NULL});
	check(SEC_LS, "  s:\n    PasswordLastSet|exists: false\n  condition: s\n",
	      (const char *const[]){"+" SEC "\"EventID\":4738}",
				    "-" SEC "\"PasswordLastSet\":\"\"}", NULL});
	/* "An empty value is defined with ''" */
	check(SEC_LS, "  s:\n    PasswordLastSet: ''\n  condition: s\n",
	      (const char *const[]){"+" SEC "\"PasswordLastSet\":\"\"}",
				    "-" SEC "\"PasswordLastSet\":\"-\"}", "-" SEC "\"EventID\":1}",
				    NULL});
	/* exists takes a boolean, and nothing else */
	reject(SEC_LS, "  s:\n    PasswordLastSet|exists: 'yes'\n  condition: s\n", -EBADMSG,
	       "'exists' needs true or false");
	reject(SEC_LS, "  s:\n    EventID|exists: true\n  condition: s\n", -EINVAL,
	       "'exists' on int field 'EventID'");
}

/* "Condition": and/or, 1/all of them (not identifiers starting with '_'), 1/all of a pattern,
 * not, brackets, precedence (or < and < not < x of < brackets), a list of conditions is OR. */
static void test_conditions(void **state)
{
	static const char *const ids = "  selection1: {Image|endswith: '\\a.exe'}\n"
				       "  selection2: {Image|endswith: '\\b.exe'}\n"
				       "  keywords: ['evil']\n"
				       "  filter_x: {User: 'svc'}\n"
				       "  _example: {User: 'never'}\n";
	char det[1024];

	snprintf(det, sizeof(det), "%s  condition: 1 of selection* and keywords\n", ids);
	check(PC_LS, det,
	      (const char *const[]){"+" PC "\"Image\":\"C:\\\\b.exe\",\"CommandLine\":\"evil\"}",
				    "-" PC "\"Image\":\"C:\\\\b.exe\"}",
				    "-" PC "\"Image\":\"C:\\\\c.exe\",\"CommandLine\":\"evil\"}",
				    NULL});
	snprintf(det, sizeof(det), "%s  condition: 1 of selection* and not 1 of filter*\n", ids);
	check(PC_LS, det,
	      (const char *const[]){"+" PC "\"Image\":\"C:\\\\a.exe\"}",
				    "-" PC "\"Image\":\"C:\\\\a.exe\",\"User\":\"SVC\"}", NULL});
	snprintf(det, sizeof(det), "%s  condition: all of selection*\n", ids);
	check(PC_LS, det, (const char *const[]){"-" PC "\"Image\":\"C:\\\\a.exe\"}", NULL});
	/* "A search identifier _example wouldn't be included" in them */
	snprintf(det, sizeof(det), "%s  condition: 1 of them\n", ids);
	check(
	    PC_LS, det,
	    (const char *const[]){"+" PC "\"User\":\"svc\"}", "-" PC "\"User\":\"never\"}", NULL});
	snprintf(det, sizeof(det), "%s  condition: selection1 and (keywords or filter_x)\n", ids);
	check(PC_LS, det,
	      (const char *const[]){"+" PC "\"Image\":\"C:\\\\a.exe\",\"User\":\"svc\"}",
				    "+" PC "\"Image\":\"C:\\\\a.exe\",\"CommandLine\":\"evil\"}",
				    "-" PC "\"Image\":\"C:\\\\a.exe\"}", "-" PC "\"User\":\"svc\"}",
				    NULL});
	/* precedence: not binds tighter than and, and tighter than or */
	snprintf(det, sizeof(det), "%s  condition: keywords or selection1 and not filter_x\n", ids);
	check(PC_LS, det,
	      (const char *const[]){"+" PC "\"CommandLine\":\"evil\",\"User\":\"svc\"}",
				    "-" PC "\"Image\":\"C:\\\\a.exe\",\"User\":\"svc\"}",
				    "+" PC "\"Image\":\"C:\\\\a.exe\"}", NULL});
	/* "The condition can be a list ... logically linked with OR." */
	snprintf(det, sizeof(det), "%s  condition:\n    - selection1\n    - selection2\n", ids);
	check(PC_LS, det,
	      (const char *const[]){"+" PC "\"Image\":\"C:\\\\a.exe\"}",
				    "+" PC "\"Image\":\"C:\\\\b.exe\"}",
				    "-" PC "\"Image\":\"C:\\\\c.exe\"}", NULL});
}

/* ---- sigma-appendix-modifiers.md --------------------------------------------------------- */

/* "Generic Modifiers": all, cased; and the null and boolean values of the rules
 * specification, read as PyYAML (pySigma) reads them. */
static void test_generic_all_cased_booleans(void **state)
{
	check(PC_LS,
	      "  s:\n    CommandLine|contains|all:\n      - ' -w hidden'\n      - ' -enc'\n"
	      "  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"ps -ENC x -W Hidden\"}",
				    "-" PC "\"CommandLine\":\"ps -enc x\"}", NULL});
	check(PC_LS, "  s:\n    OriginalFileName|cased: 'PsExec.exe'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"OriginalFileName\":\"PsExec.exe\"}",
				    "-" PC "\"OriginalFileName\":\"psexec.exe\"}", NULL});
	/* An unquoted `true` is a YAML boolean: Sysmon writes Initiated as the text "true". */
	static const char *const initiated[] = {
	    "+" NC "\"Initiated\":\"true\"}",  "+" NC "\"Initiated\":true}",
	    "+" NC "\"Initiated\":\"True\"}",  "-" NC "\"Initiated\":\"false\"}",
	    "-" NC "\"DestinationPort\":443}", NULL};
	check(NC_LS, "  s:\n    Initiated: true\n  condition: s\n", initiated);
	check(NC_LS, "  s:\n    Initiated: 'true'\n  condition: s\n", initiated);
	check(NC_LS, "  s:\n    Initiated: yes\n  condition: s\n", initiated); /* YAML 1.1 */
	check(NC_LS, "  s:\n    Initiated: False\n  condition: s\n",
	      (const char *const[]){"+" NC "\"Initiated\":false}", "-" NC "\"Initiated\":true}",
				    NULL});
	/* a boolean is not a number nor an address, nor text to search inside */
	reject(NC_LS, "  s:\n    DestinationPort: true\n  condition: s\n", -EINVAL,
	       "boolean value on int field 'DestinationPort'");
	reject(NC_LS, "  s:\n    DestinationIp: false\n  condition: s\n", -EINVAL,
	       "boolean value on ip field 'DestinationIp'");
	reject(NC_LS, "  s:\n    Initiated|contains: true\n  condition: s\n", -EBADMSG,
	       "boolean value 'true' with a modifier");
	/* null: on a string field only */
	reject(NC_LS, "  s:\n    DestinationPort: null\n  condition: s\n", -EINVAL,
	       "null test on int field 'DestinationPort'");
}

/* "String Modifiers": windash, "Creates all possible permutations of the -, /, – (en dash), —
 * (em dash), and ― (horizontal bar) characters." */
static void test_windash(void **state)
{
	static const char *const ev[] = {
	    "+" PC "\"CommandLine\":\"net user /add bob\"}",
	    "+" PC "\"CommandLine\":\"net user -add bob\"}",
	    "+" PC "\"CommandLine\":\"net user \u2013add bob\"}",
	    "+" PC "\"CommandLine\":\"net user \u2014add bob\"}",
	    "+" PC "\"CommandLine\":\"net user \u2015add bob\"}",
	    "-" PC "\"CommandLine\":\"net user add bob\"}",
	    "-" PC "\"CommandLine\":\"net user \u2012add bob\"}", /* figure dash: not in the list */
	    NULL,
	};
	check(PC_LS, "  s:\n    CommandLine|windash|contains: ' /add'\n  condition: s\n", ev);
	check(PC_LS, "  s:\n    CommandLine|windash|contains: ' \u2014add'\n  condition: s\n", ev);
	/* every combination of two flags */
	check(PC_LS, "  s:\n    CommandLine|windash|contains: ' -s -p'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"x /s \u2013p\"}",
				    "+" PC "\"CommandLine\":\"x \u2015s /p\"}",
				    "-" PC "\"CommandLine\":\"x /s p\"}", NULL});
}

/* "Regular Expression": re, case-sensitive by default; the PCRE metacharacters the
 * specification lists (. ^ $ * + ? {n,m} [a-z] [^a-z] () |); sub-modifiers i, m, s. */
static void test_re(void **state)
{
	check(PC_LS, "  s:\n    CommandLine|re: '^ping [^ ]+ -n [0-9]{2,4}$'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"ping host -n 100\"}",
				    "-" PC "\"CommandLine\":\"ping host -n 1\"}",
				    "-" PC "\"CommandLine\":\"PING host -n 100\"}",
				    "-" PC "\"CommandLine\":\"x ping host -n 100\"}", NULL});
	check(PC_LS,
	      "  s:\n    CommandLine|re: '(cmd|powershell)\\.exe.+-e(nc)?\\b'\n"
	      "  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"powershell.exe -nop -enc AA\"}",
				    "+" PC "\"CommandLine\":\"x cmd.exe /c y -e\"}",
				    "-" PC "\"CommandLine\":\"cmd.exe-e\"}", NULL});
	check(PC_LS, "  s:\n    CommandLine|re|i: '^PING'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"ping x\"}",
				    "-" PC "\"CommandLine\":\"x ping\"}", NULL});
	check(PC_LS, "  s:\n    CommandLine|re|m: '^whoami$'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"a\\nwhoami\\nb\"}",
				    "-" PC "\"CommandLine\":\"a whoami b\"}", NULL});
	check(PC_LS, "  s:\n    CommandLine|re|s: 'begin.end'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"begin\\nend\"}", NULL});
	check(PC_LS, "  s:\n    CommandLine|re|i|m|s: '^A.B$'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"x\\na\\nb\\ny\"}", NULL});
	/* "Other metacharacters are unsupported": those that cannot run in linear time are
	 * refused naming the construct, the key and the rule. */
	reject(PC_LS, "  s:\n    CommandLine|re: '(\\w+) \\1'\n  condition: s\n", -EBADMSG,
	       "back-reference", "CommandLine|re");
	reject(PC_LS, "  s:\n    CommandLine|re: 'a(?=b)'\n  condition: s\n", -EBADMSG, "lookahead",
	       "CommandLine|re");
	reject(PC_LS, "  s:\n    CommandLine|re: '(?<!x)y'\n  condition: s\n", -EBADMSG,
	       "lookbehind", "CommandLine|re");
}

/* "Encoding": base64, base64offset, utf16le ("cmd > 63 00 6d 00 64 00"), utf16be ("cmd > 00 63
 * 00 6d 00 64"), utf16 ("cmd > FF FE 63 00 6d 00 64 00"), wide (utf16le). The Base64 texts
 * below are those byte strings encoded: YwBtAGQA, AGMAbQBk, //5jAG0AZAA=. */
static void test_encodings(void **state)
{
	check(PC_LS, "  s:\n    CommandLine|base64|contains: 'cmd'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"x Y21k\"}",
				    "-" PC "\"CommandLine\":\"x cmd\"}", NULL});
	check(PC_LS, "  s:\n    CommandLine|utf16le|base64|contains: 'cmd'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"-e YwBtAGQA\"}",
				    "-" PC "\"CommandLine\":\"-e AGMAbQBk\"}", NULL});
	check(PC_LS, "  s:\n    CommandLine|wide|base64|contains: 'cmd'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"-e YwBtAGQA\"}", NULL});
	check(PC_LS, "  s:\n    CommandLine|utf16be|base64|contains: 'cmd'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"-e AGMAbQBk\"}",
				    "-" PC "\"CommandLine\":\"-e YwBtAGQA\"}", NULL});
	check(PC_LS, "  s:\n    CommandLine|utf16|base64|contains: 'cmd'\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"-e //5jAG0AZAA=\"}",
				    "-" PC "\"CommandLine\":\"-e YwBtAGQA\"}", NULL});
	/* base64offset: "three variants for shifts by zero to two bytes": 'cmd /c' placed at each
	 * offset of a longer text, encoded (x + 'cmd /c' + y for every shift). */
	static const char *const shifts[] = {
	    "+" PC "\"CommandLine\":\"Y21kIC9jIHdob2FtaQ==\"}", /* "cmd /c whoami" */
	    "+" PC "\"CommandLine\":\"IGNtZCAvYyB3aG9hbWk=\"}", /* " cmd /c whoami" */
	    "+" PC "\"CommandLine\":\"ICBjbWQgL2Mgd2hvYW1p\"}", /* "  cmd /c whoami" */
	    "-" PC "\"CommandLine\":\"Y21kIC9rIHdob2FtaQ==\"}", /* "cmd /k whoami" */
	    NULL,
	};
	check(PC_LS, "  s:\n    CommandLine|base64offset|contains: 'cmd /c'\n  condition: s\n",
	      shifts);
	/* wide|base64offset, the form of PowerShell's -EncodedCommand: "IEX (" in UTF-16LE at
	 * each offset (SQBFAFgAIAAoAA== is "IEX (" alone, the others have 1 or 2 bytes before) */
	check(PC_LS, "  s:\n    CommandLine|wide|base64offset|contains: 'IEX ('\n  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"-enc SQBFAFgAIAAoAA==\"}",
				    "+" PC "\"CommandLine\":\"-enc IABJAEUAWAAgACgA\"}",
				    "+" PC "\"CommandLine\":\"-enc IAAgAEkARQBYACAAKAA=\"}",
				    "-" PC "\"CommandLine\":\"-enc SQBFAFgA\"}", NULL});
	check(PC_LS,
	      "  s:\n    CommandLine|utf16be|base64offset|contains: 'cmd'\n"
	      "  condition: s\n",
	      (const char *const[]){"+" PC "\"CommandLine\":\"AGMAbQBk\"}", NULL});
}

/* "Numeric Modifiers": lt, lte, gt, gte on numbers. */
static void test_numeric(void **state)
{
	check(SEC_LS, "  s:\n    LogonType|gt: 3\n  condition: s\n",
	      (const char *const[]){"+" SEC "\"LogonType\":10}", "-" SEC "\"LogonType\":3}",
				    "-" SEC "\"EventID\":4624}", NULL});
	check(SEC_LS, "  s:\n    LogonType|gte: 3\n  condition: s\n",
	      (const char *const[]){"+" SEC "\"LogonType\":3}", "-" SEC "\"LogonType\":2}", NULL});
	check(SEC_LS, "  s:\n    LogonType|lt: 3\n  condition: s\n",
	      (const char *const[]){"+" SEC "\"LogonType\":2}", "-" SEC "\"LogonType\":3}", NULL});
	check(SEC_LS, "  s:\n    LogonType|lte: 3\n  condition: s\n",
	      (const char *const[]){"+" SEC "\"LogonType\":3}", "-" SEC "\"LogonType\":4}", NULL});
	/* a range is two selections (or all) */
	check(NC_LS,
	      "  s:\n    DestinationPort|gte|all: [1024]\n  r:\n    DestinationPort|lt: 49152\n"
	      "  condition: s and r\n",
	      (const char *const[]){"+" NC "\"DestinationPort\":8080}",
				    "-" NC "\"DestinationPort\":80}",
				    "-" NC "\"DestinationPort\":50000}", NULL});
	reject(SEC_LS, "  s:\n    LogonType|gt: '3'\n  condition: s\n", -EINVAL,
	       "value '3' is not an integer");
	reject(SEC_LS, "  s:\n    TargetUserName|gt: 3\n  condition: s\n", -EINVAL,
	       "gt/gte/lt/lte on string field 'TargetUserName'");
}

/* "IP Modifiers": cidr, "Supports both IPv4 and IPv6 notations. Example: DestinationIp|cidr:
 * 10.0.0.0/8". */
static void test_cidr(void **state)
{
	check(NC_LS, "  s:\n    DestinationIp|cidr: 10.0.0.0/8\n  condition: s\n",
	      (const char *const[]){"+" NC "\"DestinationIp\":\"10.1.2.3\"}",
				    "-" NC "\"DestinationIp\":\"11.1.2.3\"}",
				    "-" NC "\"DestinationPort\":1}", NULL});
	check(NC_LS,
	      "  s:\n    DestinationIp|cidr:\n      - '2001:db8::/32'\n      - '::1/128'\n"
	      "  condition: s\n",
	      (const char *const[]){"+" NC "\"DestinationIp\":\"2001:db8:1::5\"}",
				    "+" NC "\"DestinationIp\":\"::1\"}",
				    "-" NC "\"DestinationIp\":\"2001:db9::1\"}",
				    "-" NC "\"DestinationIp\":\"10.0.0.1\"}", NULL});
	/* Windows writes IpAddress as text ("-" when there is none): parsed when evaluated */
	check(SEC_LS, "  f:\n    IpAddress|cidr: [127.0.0.0/8, '::1/128']\n  condition: not f\n",
	      (const char *const[]){
		  "+" SEC "\"IpAddress\":\"8.8.8.8\"}", "+" SEC "\"IpAddress\":\"-\"}",
		  "-" SEC "\"IpAddress\":\"127.0.0.1\"}", "-" SEC "\"IpAddress\":\"::1\"}", NULL});
	reject(NC_LS, "  s:\n    DestinationIp|cidr: 10.0.0.0/40\n  condition: s\n", -EINVAL,
	       "not an IPv4/IPv6 CIDR prefix");
	reject(NC_LS, "  s:\n    DestinationPort|cidr: 10.0.0.0/8\n  condition: s\n", -EINVAL,
	       "'cidr' on int field 'DestinationPort'");
}

/* "Specific Modifiers": fieldref ("compare fields of matched events directly at matching
 * time") and expand, with the rules specification's "Placeholders" examples. */
static void test_fieldref(void **state)
{
	check(
	    SEC_LS, "  s:\n    TargetUserName|fieldref: SubjectUserName\n  condition: s\n",
	    (const char *const[]){"+" SEC "\"TargetUserName\":\"Bob\",\"SubjectUserName\":\"bob\"}",
				  "-" SEC "\"TargetUserName\":\"bob\",\"SubjectUserName\":\"ann\"}",
				  "-" SEC "\"TargetUserName\":\"bob\"}", NULL});
	reject(SEC_LS, "  s:\n    TargetUserName|fieldref: NoSuchField\n  condition: s\n", -ENOENT,
	       "field 'NoSuchField' (referenced by fieldref) is not supplied");
}

static struct rf_sigma_placeholders *ph_new(const char *json)
{
	struct rf_sigma_placeholders *ph = NULL;
	struct rf_diag d = {0};

	if (rf_sigma_placeholders_parse((const uint8_t *)json, strlen(json), &ph, &d) != 0)
		fail_msg("placeholders: %s", d.first);
	return ph;
}

static void test_expand(void **state)
{
	struct rf_sigma_placeholders *ph =
	    ph_new("{\"Administrators\": [\"adm_*\", \"root\"], \"name\": [\"x\", \"y\"], "
		   "\"Servers\": \"srv*\"}");

	/* "field: %name% handles %name% as literal value." */
	check_ph(
	    PC_LS, "  s:\n    User: '%name%'\n  condition: s\n", ph,
	    (const char *const[]){"+" PC "\"User\":\"%name%\"}", "-" PC "\"User\":\"x\"}", NULL});
	/* "field|expand: %name% handles %name% as placeholder." */
	check_ph(PC_LS, "  s:\n    User|expand: '%name%'\n  condition: s\n", ph,
		 (const char *const[]){"+" PC "\"User\":\"x\"}", "+" PC "\"User\":\"Y\"}",
				       "-" PC "\"User\":\"%name%\"}", NULL});
	/* "field|expand: \%plain%name% handles %plain as plain value and %name% as placeholder." */
	check_ph(PC_LS, "  s:\n    User|expand: '\\%plain%name%'\n  condition: s\n", ph,
		 (const char *const[]){"+" PC "\"User\":\"%plainx\"}",
				       "+" PC "\"User\":\"%plainy\"}",
				       "-" PC "\"User\":\"\\\\%plainx\"}",
				       "-" PC "\"User\":\"%plain%name%\"}", NULL});
	/* An escaped backslash before a placeholder: the backslash, then the values. */
	check_ph(PC_LS, "  s:\n    User|expand: 'CORP\\\\%Administrators%'\n  condition: s\n", ph,
		 (const char *const[]){"+" PC "\"User\":\"CORP\\\\adm_bob\"}",
				       "+" PC "\"User\":\"corp\\\\root\"}",
				       "-" PC "\"User\":\"CORP\\\\bob\"}", NULL});
	/* The standard placeholders; "%Servers% is replaced with the pattern srv*" */
	check_ph(PC_LS, "  s:\n    Computer|expand: '%Servers%'\n  condition: s\n", ph,
		 (const char *const[]){"+" PC "\"Computer\":\"SRV-01\"}",
				       "-" PC "\"Computer\":\"ws-01\"}", NULL});
	/* "If the tool isn't able to handle placeholders, it must reject the rule." */
	reject_ph(PC_LS, "  s:\n    User|expand: '%Workstations%'\n  condition: s\n", ph, -EINVAL,
		  "placeholder '%Workstations%' is not defined", NULL);
	reject_ph(PC_LS, "  s:\n    User|expand: '%name%'\n  condition: s\n", NULL, -ENOTSUP,
		  "'expand' needs placeholder values", NULL);
	rf_sigma_placeholders_free(ph);
}

/* Modifiers that contradict each other, or that the specification puts on other value types,
 * are rejected with a reason naming the key and the rule, never approximated. */
static void test_contradictions(void **state)
{
	static const struct {
		const char *key, *why;
		int code;
	} cases[] = {
	    {"CommandLine|contains|startswith", "conflicting modifiers", -EBADMSG},
	    {"CommandLine|contains|contains", "modifier 'contains' repeated", -EBADMSG},
	    {"CommandLine|re|contains", "'re' can only be combined with 'i', 'm', 's', 'all'",
	     -EBADMSG},
	    {"CommandLine|re|windash", "'re' can only be combined", -EBADMSG},
	    {"CommandLine|re|base64", "'re' can only be combined", -EBADMSG},
	    {"CommandLine|m", "'i', 'm' and 's' are sub-modifiers of 're'", -EBADMSG},
	    {"CommandLine|re|i|cased", "contradicts 'cased'", -EBADMSG},
	    {"CommandLine|exists|contains", "'exists' cannot be combined", -EBADMSG},
	    {"CommandLine|base64|base64offset", "'base64' and 'base64offset' together", -EBADMSG},
	    {"CommandLine|utf16le|utf16be|base64", "more than one of utf16le", -EBADMSG},
	    {"CommandLine|wide|contains", "must be followed by base64 or base64offset", -EBADMSG},
	    {"CommandLine|base64|wide", "must come before base64/base64offset", -EBADMSG},
	    {"CommandLine|windash|base64offset", "'windash' with 'base64'", -EBADMSG},
	    {"CommandLine|base64offset", "'base64offset' needs 'contains'", -EBADMSG},
	    {"CommandLine|wide|base64offset|endswith", "'base64offset' needs 'contains'", -EBADMSG},
	    {"CommandLine|cidr|contains", "'cidr' can only be combined with 'all'", -EBADMSG},
	    {"CommandLine|gt|lte", "more than one of gt, gte, lt, lte", -EBADMSG},
	    {"CommandLine|gt|contains", "can only be combined with 'all'", -EBADMSG},
	    {"CommandLine|fieldref|endswith",
	     "'fieldref' can only be combined with 'all' and 'cased'", -EBADMSG},
	    {"CommandLine|expand|re", "'re' can only be combined", -EBADMSG},
	    {"CommandLine|expand|fieldref", "'expand' works on text matching", -EBADMSG},
	    {"CommandLine|neq", "modifier 'neq' is not supported", -ENOTSUP},
	    {"CommandLine|hour", "time modifiers are not supported", -ENOTSUP},
	    {"CommandLine|sha256", "unknown modifier 'sha256'", -ENOTSUP},
	};
	char det[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(det, sizeof(det), "  s:\n    %s: x1\n  condition: s\n", cases[i].key);
		reject(PC_LS, det, cases[i].code, cases[i].why, cases[i].key);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wildcards_and_escaping),
	    cmocka_unit_test(test_lists_maps_keywords),
	    cmocka_unit_test(test_null_empty_exists),
	    cmocka_unit_test(test_conditions),
	    cmocka_unit_test(test_generic_all_cased_booleans),
	    cmocka_unit_test(test_windash),
	    cmocka_unit_test(test_re),
	    cmocka_unit_test(test_encodings),
	    cmocka_unit_test(test_numeric),
	    cmocka_unit_test(test_cidr),
	    cmocka_unit_test(test_fieldref),
	    cmocka_unit_test(test_expand),
	    cmocka_unit_test(test_contradictions),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
