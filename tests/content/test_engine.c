/*
 * Tests of the content engine through its public API (include/ringfence/content.h) and the pack
 * builder of ir.h: manifests, pack round trips, the semantics of every op and flag on hand-written
 * events, the 291 case at the library level, and the run-time checks of the interpreter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "content/engine.h"
#include "content/ir.h"
#include "content/pack.h"
#include "ringfence/content.h"
#include "testmanifest.h"

static struct rf_manifest *m10, *m11;

static int setup(void **state)
{
	m10 = rf_test_manifest("ringfence-agent-1.0.0.json");
	m11 = rf_test_manifest("ringfence-agent-1.1.0.json");
	return 0;
}

static int teardown(void **state)
{
	rf_manifest_free(m10);
	rf_manifest_free(m11);
	return 0;
}

#define A(f, t, o, fl, p)                                                                          \
	{                                                                                          \
		f, t, o, fl, (const uint8_t *)(p), sizeof(p) - 1                                   \
	}
#define S RF_FT_STRING

static uint8_t *build(const struct rf_ir_rule *rules, size_t n, size_t *len)
{
	struct rf_pack_builder *b;
	struct rf_diag d = {0};
	uint8_t *buf;

	assert_int_equal(rf_pack_builder_new(&b), 0);
	for (size_t i = 0; i < n; i++) {
		int r = rf_pack_builder_add(b, &rules[i], &d);
		if (r < 0)
			fail_msg("builder: %s", d.first);
	}
	assert_int_equal(rf_pack_builder_count(b), n);
	assert_int_equal(rf_pack_builder_finish(b, 7, &buf, len), 0);
	rf_pack_builder_free(b);
	return buf;
}

static void count_alert(void *ud, size_t idx, const struct rf_rule_info *r)
{
	(*(int *)ud)++;
}

/* Number of rules of the pack that fire on the JSON event line (against manifest 1.1.0). */
static int eval_line(const uint8_t *pack, size_t len, const char *json, bool *trunc)
{
	struct rf_engine *e = NULL;
	struct rf_engine_scratch *s = NULL;
	struct rf_diag d = {0};
	static struct rf_event ev;
	size_t jl = strlen(json);
	uint8_t *scratch = malloc(jl + 1);
	int hits = 0, r;

	r = rf_engine_load(pack, len, m11, &e, &d);
	if (r < 0)
		fail_msg("load: %s", d.first);
	assert_int_equal(rf_engine_scratch_new(e, &s), 0);
	r = rf_event_parse((const uint8_t *)json, jl, scratch, jl, &ev, &d);
	if (r < 0)
		fail_msg("event: %s", d.first);
	r = rf_engine_eval(e, &ev, s, count_alert, &hits, trunc);
	assert_int_equal(r, hits);
	struct rf_engine_stats st;
	rf_engine_scratch_stats(s, &st);
	assert_int_equal(st.violations, 0);
	rf_engine_scratch_free(s);
	rf_engine_free(e);
	free(scratch);
	return hits;
}

/* One rule with one atom, program ATOM 0 (negated if neg). */
static int one(struct rf_ir_atom a, bool neg, const char *event, const char *json)
{
	uint32_t code[2] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_NOT, 0)};
	struct rf_ir_rule r = {"r1", "t", "high", "me", event, &a, 1, code, neg ? 2 : 1};
	size_t len;
	uint8_t *p = build(&r, 1, &len);
	int hits = eval_line(p, len, json, NULL);

	free(p);
	return hits;
}

#define PC "process_creation"
#define IMG                                                                                        \
	"{\"event\":\"process_creation\",\"Image\":\"C:\\\\Windows\\\\System32\\\\cmd.exe\","      \
	"\"CommandLine\":\"cmd.exe /c whoami & echo a.b*c\",\"ProcessId\":1234,"                   \
	"\"User\":\"\",\"ParentImage\":null}"

static void test_manifest(void **state)
{
	struct rf_manifest *m = NULL;
	struct rf_diag d = {0};
	const char *dup =
	    "{\"agent\":\"a\",\"version\":\"1\",\"events\":[{\"name\":\"e\",\"fields\":"
	    "[{\"name\":\"X\",\"type\":\"string\"},{\"name\":\"X\",\"type\":\"int\"}]}]}";
	const char *dupev =
	    "{\"agent\":\"a\",\"version\":\"1\",\"events\":[{\"name\":\"e\",\"fields\""
	    ":[]},{\"name\":\"e\",\"fields\":[]}]}";
	const char *badtype =
	    "{\"agent\":\"a\",\"version\":\"1\",\"events\":[{\"name\":\"e\",\"fields\":"
	    "[{\"name\":\"X\",\"type\":\"float\"}]}]}";

	assert_string_equal(rf_manifest_version(m11), "1.1.0");
	assert_int_equal(rf_manifest_event_nfields(m11, PC), 22);
	assert_int_equal(rf_manifest_event_nfields(m10, PC), 21);
	assert_int_equal(rf_manifest_field_type(m11, PC, "ParentUser"), RF_FT_STRING);
	assert_int_equal(rf_manifest_field_type(m10, PC, "ParentUser"), -ENOENT);
	assert_int_equal(rf_manifest_field_type(m11, "network_connection", "DestinationIp"),
			 RF_FT_IP);
	assert_int_equal(rf_manifest_field_type(m11, PC, "ProcessId"), RF_FT_INT);
	assert_int_equal(rf_manifest_parse((const uint8_t *)dup, strlen(dup), &m, &d), -EBADMSG);
	assert_non_null(strstr(d.first, "duplicate field X"));
	assert_int_equal(rf_manifest_parse((const uint8_t *)dupev, strlen(dupev), &m, &d),
			 -EBADMSG);
	assert_int_equal(rf_manifest_parse((const uint8_t *)badtype, strlen(badtype), &m, &d),
			 -EBADMSG);
	assert_int_equal(rf_manifest_parse((const uint8_t *)"{", 1, &m, &d), -EBADMSG);
	assert_null(m);
	/* "product" is optional (1.0.0/1.1.0 have none); when present it is a name. */
	assert_null(rf_manifest_product(m11));
	const char *badprod = "{\"agent\":\"a\",\"version\":\"1\",\"product\":7,\"events\":[]}";
	struct rf_diag dp = {0};
	assert_int_equal(rf_manifest_parse((const uint8_t *)badprod, strlen(badprod), &m, &dp),
			 -EBADMSG);
	assert_non_null(strstr(dp.first, "\"product\" must be a string"));
	assert_null(m);
	/* The built-in manifest is 1.1.0. */
	size_t n;
	const uint8_t *b = rf_content_builtin_manifest(&n);
	assert_int_equal(rf_manifest_parse(b, n, &m, &d), 0);
	assert_string_equal(rf_manifest_version(m), "1.1.0");
	rf_manifest_free(m);
}

static void test_roundtrip_dedup(void **state)
{
	struct rf_ir_atom a1[] = {A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
				  A("CommandLine", S, RF_OP_CONTAINS, 0, "whoami")};
	struct rf_ir_atom a2[] = {A("CommandLine", S, RF_OP_CONTAINS, 0, "whoami"),
				  A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe")};
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_AND, 0)};
	struct rf_ir_rule rules[] = {{"id-1", "Rule one", "high", "alice", PC, a1, 2, code, 3},
				     {"id-2", "Rule two", "", "", PC, a2, 2, code, 3}};
	size_t len;
	uint8_t *p = build(rules, 2, &len);
	struct rf_pack *pk;
	struct rf_diag d = {0};
	struct rf_pack_summary s;
	struct rf_rule_info ri;

	assert_int_equal(rf_pack_open(p, len, &pk, &d), 0);
	rf_pack_summary(pk, &s);
	assert_int_equal(s.n_rules, 2);
	assert_int_equal(s.n_atoms, 2); /* shared between the rules */
	assert_int_equal(s.n_fields, 2);
	assert_int_equal(s.n_code, 6);
	assert_int_equal(s.seq, 7);
	assert_int_equal(s.total_len, len);
	assert_int_equal(rf_pack_rule(pk, 1, &ri), 0);
	assert_string_equal(ri.id, "id-2");
	assert_string_equal(ri.title, "Rule two");
	assert_string_equal(ri.event, PC);
	assert_int_equal(rf_pack_rule(pk, 2, &ri), -ERANGE);
	assert_int_equal(rf_pack_check(pk, m10, &d), 0);
	rf_pack_free(pk);
	assert_int_equal(eval_line(p, len, IMG, NULL), 2);
	free(p);
}

static void test_string_ops(void **state)
{
	/* Case-insensitive by default, cased on request. */
	assert_int_equal(
	    one((struct rf_ir_atom)A("Image", S, RF_OP_EQ, 0, "c:\\windows\\system32\\CMD.EXE"),
		false, PC, IMG),
	    1);
	assert_int_equal(one((struct rf_ir_atom)A("Image", S, RF_OP_EQ, RF_ATOM_CASED,
						  "c:\\windows\\system32\\CMD.EXE"),
			     false, PC, IMG),
			 0);
	assert_int_equal(one((struct rf_ir_atom)A("Image", S, RF_OP_EQ, RF_ATOM_CASED,
						  "C:\\\\Windows\\\\System32\\\\cmd.exe"),
			     false, PC, IMG),
			 1);
	/* EQ is anchored both ends. */
	assert_int_equal(
	    one((struct rf_ir_atom)A("Image", S, RF_OP_EQ, 0, "cmd.exe"), false, PC, IMG), 0);
	assert_int_equal(
	    one((struct rf_ir_atom)A("Image", S, RF_OP_STARTSWITH, 0, "c:\\win"), false, PC, IMG),
	    1);
	assert_int_equal(
	    one((struct rf_ir_atom)A("Image", S, RF_OP_STARTSWITH, 0, "\\win"), false, PC, IMG), 0);
	assert_int_equal(
	    one((struct rf_ir_atom)A("Image", S, RF_OP_ENDSWITH, 0, "\\CMD.exe"), false, PC, IMG),
	    1);
	assert_int_equal(
	    one((struct rf_ir_atom)A("Image", S, RF_OP_ENDSWITH, 0, "cmd"), false, PC, IMG), 0);
	assert_int_equal(one((struct rf_ir_atom)A("CommandLine", S, RF_OP_CONTAINS, 0, "WHOAMI"),
			     false, PC, IMG),
			 1);
	assert_int_equal(
	    one((struct rf_ir_atom)A("CommandLine", S, RF_OP_CONTAINS, RF_ATOM_CASED, "WHOAMI"),
		false, PC, IMG),
	    0);
	/* Globs: * any run, ? one byte, \* \? literal; regex metacharacters are literal. */
	assert_int_equal(
	    one((struct rf_ir_atom)A("CommandLine", S, RF_OP_EQ, 0, "cmd*whoami*"), false, PC, IMG),
	    1);
	assert_int_equal(one((struct rf_ir_atom)A("CommandLine", S, RF_OP_CONTAINS, 0, "wh?ami"),
			     false, PC, IMG),
			 1);
	assert_int_equal(one((struct rf_ir_atom)A("CommandLine", S, RF_OP_CONTAINS, 0, "wh??ami"),
			     false, PC, IMG),
			 0);
	assert_int_equal(one((struct rf_ir_atom)A("CommandLine", S, RF_OP_ENDSWITH, 0, "a.b\\*c"),
			     false, PC, IMG),
			 1);
	assert_int_equal(one((struct rf_ir_atom)A("CommandLine", S, RF_OP_ENDSWITH, 0, "a.b\\*d"),
			     false, PC, IMG),
			 0);
	assert_int_equal(
	    one((struct rf_ir_atom)A("CommandLine", S, RF_OP_CONTAINS, 0, "a\\?b"), false, PC, IMG),
	    0);
	assert_int_equal(one((struct rf_ir_atom)A("CommandLine", S, RF_OP_CONTAINS, 0, "echo a?b"),
			     false, PC, IMG),
			 1);
	assert_int_equal(
	    one((struct rf_ir_atom)A("CommandLine", S, RF_OP_CONTAINS, 0, "a.c"), false, PC, IMG),
	    0);
	assert_int_equal(one((struct rf_ir_atom)A("CommandLine", S, RF_OP_CONTAINS, 0, "[a-z]+"),
			     false, PC, IMG),
			 0);
	assert_int_equal(
	    one((struct rf_ir_atom)A("CommandLine", S, RF_OP_CONTAINS, 0, "(a|b)"), false, PC, IMG),
	    0);
	/* Keyword: any string field. */
	assert_int_equal(
	    one((struct rf_ir_atom){NULL, 0, RF_OP_KEYWORD, 0, (const uint8_t *)"SYSTEM32", 8},
		false, PC, IMG),
	    1);
	assert_int_equal(
	    one((struct rf_ir_atom){NULL, 0, RF_OP_KEYWORD, 0, (const uint8_t *)"mimikatz", 8},
		false, PC, IMG),
	    0);
	/* A contains glob of only '*' (SigmaHQ: `AttributeValue|contains: '*'`) or empty matches
	 * every value of a present field, the empty one too, and loads (Vectorscan refuses an
	 * unanchored pattern that matches an empty buffer: the pack used to be rejected at load). */
	assert_int_equal(
	    one((struct rf_ir_atom)A("Image", S, RF_OP_CONTAINS, 0, "*"), false, PC, IMG), 1);
	assert_int_equal(
	    one((struct rf_ir_atom)A("User", S, RF_OP_CONTAINS, 0, "**"), false, PC, IMG), 1);
	assert_int_equal(one((struct rf_ir_atom)A("User", S, RF_OP_CONTAINS, 0, ""), false, PC, IMG),
			 1);
	assert_int_equal(
	    one((struct rf_ir_atom)A("ParentImage", S, RF_OP_CONTAINS, 0, "*"), false, PC, IMG), 0);
	assert_int_equal(
	    one((struct rf_ir_atom){NULL, 0, RF_OP_KEYWORD, 0, (const uint8_t *)"*", 1}, false, PC,
		IMG),
	    1);
}

static void test_absent_exists_null(void **state)
{
	/* Absent field: predicate false, its negation true. ParentImage is null (= absent). */
	assert_int_equal(
	    one((struct rf_ir_atom)A("ParentImage", S, RF_OP_CONTAINS, 0, "x"), false, PC, IMG), 0);
	assert_int_equal(
	    one((struct rf_ir_atom)A("ParentImage", S, RF_OP_CONTAINS, 0, "x"), true, PC, IMG), 1);
	assert_int_equal(
	    one((struct rf_ir_atom)A("OriginalFileName", S, RF_OP_EQ, 0, "*"), false, PC, IMG), 0);
	assert_int_equal(one((struct rf_ir_atom)A("Image", S, RF_OP_EQ, 0, "*"), false, PC, IMG),
			 1);
	assert_int_equal(one((struct rf_ir_atom)A("Image", S, RF_OP_EXISTS, 0, ""), false, PC, IMG),
			 1);
	assert_int_equal(
	    one((struct rf_ir_atom)A("ParentImage", S, RF_OP_EXISTS, 0, ""), false, PC, IMG), 0);
	assert_int_equal(
	    one((struct rf_ir_atom)A("ParentImage", S, RF_OP_EXISTS, 0, ""), true, PC, IMG), 1);
	/* NULL: absent or empty. */
	assert_int_equal(
	    one((struct rf_ir_atom)A("ParentImage", S, RF_OP_NULL, 0, ""), false, PC, IMG), 1);
	assert_int_equal(one((struct rf_ir_atom)A("User", S, RF_OP_NULL, 0, ""), false, PC, IMG),
			 1);
	assert_int_equal(one((struct rf_ir_atom)A("Image", S, RF_OP_NULL, 0, ""), false, PC, IMG),
			 0);
	assert_int_equal(one((struct rf_ir_atom)A("Image", S, RF_OP_NULL, 0, ""), true, PC, IMG),
			 1);
	/* A field the manifest does not supply is absent even if the event carries it. */
	assert_int_equal(one((struct rf_ir_atom)A("Image", S, RF_OP_EXISTS, 0, ""), false, PC,
			     "{\"event\":\"process_creation\",\"image\":\"x\"}"),
			 0);
	/* An event of another type never fires a process_creation rule. */
	assert_int_equal(one((struct rf_ir_atom)A("Image", S, RF_OP_EXISTS, 0, ""), true, PC,
			     "{\"event\":\"pipe_created\",\"Image\":\"x\"}"),
			 0);
}

static void test_int_ip(void **state)
{
	struct rf_ir_atom pid = A("ProcessId", RF_FT_INT, RF_OP_EQ, 0, "1234");
	assert_int_equal(one(pid, false, PC, IMG), 1);
	assert_int_equal(
	    one(pid, false, PC, "{\"event\":\"process_creation\",\"ProcessId\":\"1234\"}"), 1);
	assert_int_equal(
	    one(pid, false, PC, "{\"event\":\"process_creation\",\"ProcessId\":12345}"), 0);
	assert_int_equal(
	    one(pid, false, PC, "{\"event\":\"process_creation\",\"ProcessId\":\"x1234\"}"), 0);
	assert_int_equal(
	    one(pid, false, PC, "{\"event\":\"process_creation\",\"ProcessId\":1234.0}"), 0);
	struct rf_ir_atom neg = A("ProcessId", RF_FT_INT, RF_OP_EQ, 0, "-5");
	assert_int_equal(one(neg, false, PC, "{\"event\":\"process_creation\",\"ProcessId\":-5}"),
			 1);
	const char *NC = "network_connection";
	struct rf_ir_atom ip4 = A("DestinationIp", RF_FT_IP, RF_OP_EQ, 0, "10.0.0.1");
	assert_int_equal(one(ip4, false, NC,
			     "{\"event\":\"network_connection\",\"DestinationIp\":\"10.0.0.1\"}"),
			 1);
	assert_int_equal(one(ip4, false, NC,
			     "{\"event\":\"network_connection\",\"DestinationIp\":\"10.0.0.10\"}"),
			 0);
	assert_int_equal(
	    one(ip4, false, NC,
		"{\"event\":\"network_connection\",\"DestinationIp\":\"::ffff:10.0.0.1\"}"),
	    1);
	struct rf_ir_atom ip6 = A("SourceIp", RF_FT_IP, RF_OP_EQ, 0, "::1");
	assert_int_equal(
	    one(ip6, false, NC, "{\"event\":\"network_connection\",\"SourceIp\":\"0:0:0::1\"}"), 1);
	assert_int_equal(
	    one(ip6, false, NC, "{\"event\":\"network_connection\",\"SourceIp\":\"::2\"}"), 0);
	struct rf_ir_atom port = A("DestinationPort", RF_FT_INT, RF_OP_EQ, 0, "445");
	assert_int_equal(
	    one(port, false, NC, "{\"event\":\"network_connection\",\"DestinationPort\":445}"), 1);
}

/* A pattern at the wildcard limit verifies, compiles and matches. */
static void test_wildcard_limit(void **state)
{
	char wild[RF_PATTERN_WILDCARDS_MAX + 1], json[256];
	memset(wild, '?', sizeof(wild) - 1);
	wild[sizeof(wild) - 1] = '\0';
	struct rf_ir_atom a = {"CommandLine",	S, RF_OP_EQ, 0, (const uint8_t *)wild,
			       sizeof(wild) - 1};
	snprintf(json, sizeof(json), "{\"event\":\"process_creation\",\"CommandLine\":\"%s\"}",
		 wild);
	assert_int_equal(one(a, false, PC, json), 1);
	json[strlen(json) - 3] = '\0';
	strcat(json, "\"}");
	assert_int_equal(one(a, false, PC, json), 0);
}

static void test_builder_rejects(void **state)
{
	struct rf_pack_builder *b;
	struct rf_diag d = {0};
	uint32_t c1[] = {RF_INSN(RF_I_ATOM, 0)},
		 c2[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_AND, 0)},
		 c3[] = {RF_INSN(RF_I_ATOM, 5)}, c4[] = {RF_INSN(9, 0)},
		 c5[] = {RF_INSN(RF_I_TRUE, 0), RF_INSN(RF_I_TRUE, 0)};
	struct rf_ir_atom ok = A("Image", S, RF_OP_EQ, 0, "x");
	struct rf_ir_atom bad_int = A("ProcessId", RF_FT_INT, RF_OP_CONTAINS, 0, "1");
	struct rf_ir_atom bad_int2 = A("ProcessId", RF_FT_INT, RF_OP_EQ, 0, "1x");
	struct rf_ir_atom bad_ip = A("SourceIp", RF_FT_IP, RF_OP_EQ, 0, "300.1.1.1");
	struct rf_ir_atom bad_flag = A("Image", S, RF_OP_EQ, 0x80, "x");
	struct rf_ir_atom bad_ex = A("Image", S, RF_OP_EXISTS, 0, "x");
	char wild[RF_PATTERN_WILDCARDS_MAX + 2];
	memset(wild, '?', sizeof(wild) - 1);
	wild[sizeof(wild) - 1] = '\0';
	struct rf_ir_atom bad_wild = {"Image",	       S, RF_OP_CONTAINS, 0, (const uint8_t *)wild,
				      sizeof(wild) - 1};
	struct {
		struct rf_ir_atom *a;
		const uint32_t *c;
		size_t nc;
	} cases[] = {{&ok, c2, 2},	{&ok, c3, 1},	    {&ok, c4, 1},     {&ok, c5, 2},
		     {&bad_int, c1, 1}, {&bad_int2, c1, 1}, {&bad_ip, c1, 1}, {&bad_flag, c1, 1},
		     {&bad_ex, c1, 1},	{&bad_wild, c1, 1}};

	assert_int_equal(rf_pack_builder_new(&b), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rf_ir_rule r = {"bad",	   "Bad", "",	      "",	  PC,
				       cases[i].a, 1,	  cases[i].c, cases[i].nc};
		unsigned before = d.count;
		assert_int_equal(rf_pack_builder_add(b, &r, &d), -EINVAL);
		assert_int_equal(d.count, before + 1);
	}
	struct rf_ir_rule noid = {NULL, "x", "", "", PC, &ok, 1, c1, 1};
	assert_int_equal(rf_pack_builder_add(b, &noid, &d), -EINVAL);
	assert_int_equal(rf_pack_builder_count(b), 0);
	rf_pack_builder_free(b);
}

/* The 2024-07-19 case: a rule reads ParentUser, which only agent 1.1.0 supplies. */
static void test_field_291(void **state)
{
	struct rf_ir_atom a[] = {A("ParentUser", S, RF_OP_CONTAINS, 0, "SYSTEM"),
				 A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe")};
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_AND, 0)};
	struct rf_ir_rule r = {"4e1c0a1b-0000-4000-8000-000000000291",
			       "Suspicious Parent User",
			       "high",
			       "ringfence",
			       PC,
			       a,
			       2,
			       code,
			       3};
	size_t len;
	uint8_t *p = build(&r, 1, &len);
	struct rf_diag d = {0};
	struct rf_engine *e = NULL;
	const struct rf_manifest *both[] = {m11, m10};

	assert_int_equal(rf_pack_verify(p, len, (const struct rf_manifest *const *)&m11, 1, &d), 0);
	assert_int_equal(d.count, 0);
	assert_int_equal(rf_pack_verify(p, len, both, 2, &d), -ENOEXEC);
	assert_int_equal(d.count, 1);
	assert_string_equal(d.first,
			    "rule 4e1c0a1b-0000-4000-8000-000000000291 \"Suspicious Parent User\": "
			    "field 'ParentUser' (input 1) is not supplied by ringfence-agent 1.0.0 "
			    "(event process_creation supplies 21 fields)");
	/* The agent refuses to load it; with its own manifest 1.1.0 it loads and matches. */
	struct rf_diag d2 = {0};
	assert_int_equal(rf_engine_load(p, len, m10, &e, &d2), -ENOEXEC);
	assert_null(e);
	assert_string_equal(d2.first, d.first);
	assert_int_equal(
	    eval_line(p, len,
		      "{\"event\":\"process_creation\",\"Image\":\"C:\\\\x\\\\cmd.exe\","
		      "\"ParentUser\":\"NT AUTHORITY\\\\SYSTEM\"}",
		      NULL),
	    1);
	free(p);
}

static void test_type_mismatch_and_event(void **state)
{
	/* The rule reads ProcessId as a string: the manifest says int. */
	struct rf_ir_atom a = A("ProcessId", S, RF_OP_CONTAINS, 0, "12");
	struct rf_ir_atom b = A("Foo", S, RF_OP_CONTAINS, 0, "12");
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0)};
	struct rf_ir_rule r[] = {{"r-a", "A", "", "", PC, &a, 1, code, 1},
				 {"r-b", "B", "", "", "registry_event", &b, 1, code, 1}};
	size_t len;
	uint8_t *p = build(r, 2, &len);
	struct rf_diag d = {0};

	assert_int_equal(rf_pack_verify(p, len, (const struct rf_manifest *const *)&m11, 1, &d),
			 -ENOEXEC);
	assert_int_equal(d.count, 2); /* every problem is reported */
	assert_non_null(
	    strstr(d.first, "is int in ringfence-agent 1.1.0 but the rule reads it as string"));
	free(p);
}

static void test_logic_and_prefilter(void **state)
{
	/* (Image endswith cmd.exe AND NOT CommandLine contains "x y z") OR TRUE-less paths. */
	struct rf_ir_atom a[] = {A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
				 A("CommandLine", S, RF_OP_CONTAINS, 0, "x y z"),
				 A("CommandLine", S, RF_OP_CONTAINS, 0, "whoami"),
				 A("ParentImage", S, RF_OP_NULL, 0, "")};
	uint32_t c_and_not[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_NOT, 0),
				RF_INSN(RF_I_AND, 0)};
	uint32_t c_or[] = {RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_ATOM, 2), RF_INSN(RF_I_OR, 0)};
	uint32_t c_false[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_FALSE, 0), RF_INSN(RF_I_AND, 0)};
	uint32_t c_true[] = {RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_TRUE, 0), RF_INSN(RF_I_OR, 0)};
	uint32_t c_null[] = {RF_INSN(RF_I_ATOM, 3), RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_AND, 0)};
	uint32_t c_notor[] = {RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_ATOM, 2), RF_INSN(RF_I_OR, 0),
			      RF_INSN(RF_I_NOT, 0)};
	struct rf_ir_rule r[] = {{"and-not", "t", "", "", PC, a, 4, c_and_not, 4},
				 {"or", "t", "", "", PC, a, 4, c_or, 3},
				 {"false", "t", "", "", PC, a, 4, c_false, 3},
				 {"true", "t", "", "", PC, a, 4, c_true, 3},
				 {"null", "t", "", "", PC, a, 4, c_null, 3},
				 {"not-or", "t", "", "", PC, a, 4, c_notor, 4}};
	size_t len;
	uint8_t *p = build(r, 6, &len);

	/* and-not, or, true, null fire; false and not-or do not. */
	assert_int_equal(eval_line(p, len, IMG, NULL), 4);
	/* Nothing but an unrelated field: only true and not-or fire. */
	assert_int_equal(eval_line(p, len, "{\"event\":\"process_creation\",\"User\":\"u\"}", NULL),
			 2);
	free(p);
}

struct alert_log {
	size_t n;
	uint32_t ev[64], rule[64];
};

static void log_batch(void *ud, size_t ei, size_t ri, const struct rf_rule_info *r)
{
	struct alert_log *l = ud;
	assert_true(l->n < 64);
	l->ev[l->n] = (uint32_t)ei;
	l->rule[l->n++] = (uint32_t)ri;
}

struct single_log {
	struct alert_log *log;
	uint32_t ev;
};

static void log_single(void *ud, size_t ri, const struct rf_rule_info *r)
{
	struct single_log *l = ud;
	log_batch(l->log, l->ev, ri, r);
}

/* A batch gives exactly the alerts of evaluating its events one at a time, in the same order. */
static void test_batch_equals_single(void **state)
{
	struct rf_ir_atom a[] = {A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
				 A("CommandLine", S, RF_OP_CONTAINS, 0, "whoami"),
				 A("ParentImage", S, RF_OP_NULL, 0, ""),
				 A("ProcessId", RF_FT_INT, RF_OP_EQ, 0, "4"),
				 {NULL, 0, RF_OP_KEYWORD, 0, (const uint8_t *)"evil", 4}};
	struct rf_ir_atom n[] = {A("DestinationIp", RF_FT_IP, RF_OP_EQ, 0, "10.0.0.1")};
	uint32_t c1[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_AND, 0)};
	uint32_t c2[] = {RF_INSN(RF_I_ATOM, 2), RF_INSN(RF_I_ATOM, 3), RF_INSN(RF_I_OR, 0)};
	uint32_t c3[] = {RF_INSN(RF_I_ATOM, 4), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_NOT, 0),
			 RF_INSN(RF_I_AND, 0)};
	uint32_t c4[] = {RF_INSN(RF_I_ATOM, 0)};
	struct rf_ir_rule r[] = {{"b1", "t", "", "", PC, a, 5, c1, 3},
				 {"b2", "t", "", "", PC, a, 5, c2, 3},
				 {"b3", "t", "", "", PC, a, 5, c3, 4},
				 {"b4", "t", "", "", "network_connection", n, 1, c4, 1}};
	static const char *const lines[] = {
	    IMG,
	    "{\"event\":\"process_creation\",\"ProcessId\":4,\"ParentImage\":\"x\"}",
	    "{\"event\":\"network_connection\",\"DestinationIp\":\"10.0.0.1\"}",
	    "{\"event\":\"registry_event\",\"Image\":\"evil\"}",
	    "{\"event\":\"process_creation\",\"User\":\"evil\",\"ParentImage\":\"p\"}",
	    "{\"event\":\"process_creation\",\"Image\":\"a\\\\CMD.EXE\",\"CommandLine\":\"WhoAmI "
	    "evil\"}",
	};
	enum { N = sizeof(lines) / sizeof(lines[0]) };
	static struct rf_event ev[N];
	const struct rf_event *evp[N];
	uint8_t scratch[N][512];
	struct alert_log one = {0}, batch = {0};
	struct rf_diag d = {0};
	struct rf_engine *e;
	struct rf_engine_scratch *s;
	size_t len;
	uint8_t *p = build(r, 4, &len);

	assert_int_equal(rf_engine_load(p, len, m11, &e, &d), 0);
	assert_int_equal(rf_engine_scratch_new(e, &s), 0);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(rf_event_parse((const uint8_t *)lines[i], strlen(lines[i]),
						scratch[i], sizeof(scratch[i]), &ev[i], &d),
				 0);
		evp[i] = &ev[i];
		struct single_log sl = {&one, (uint32_t)i};
		assert_true(rf_engine_eval(e, &ev[i], s, log_single, &sl, NULL) >= 0);
	}
	assert_int_equal(rf_engine_eval_batch(e, evp, N, s, log_batch, &batch, NULL), (int)one.n);
	assert_int_equal(batch.n, one.n);
	assert_memory_equal(batch.ev, one.ev, one.n * sizeof(one.ev[0]));
	assert_memory_equal(batch.rule, one.rule, one.n * sizeof(one.rule[0]));
	assert_true(one.n >= 6); /* not vacuous: rules of both event types fire */
	assert_int_equal(rf_engine_eval_batch(e, evp, RF_ENGINE_BATCH_MAX + 1, s, NULL, NULL, NULL),
			 -EINVAL);
	rf_engine_scratch_free(s);
	rf_engine_free(e);
	free(p);
}

/* A field whose patterns only appear in filters (never in a trigger set) is scanned only when a
 * rule that reads it runs: the filter must still apply, and absent stays absent. */
static void test_filter_only_field(void **state)
{
	struct rf_ir_atom a[] = {A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
				 A("CurrentDirectory", S, RF_OP_CONTAINS, 0, "\\temp\\"),
				 A("IntegrityLevel", S, RF_OP_EQ, 0, "system")};
	/* Image AND NOT CurrentDirectory~temp AND NOT IntegrityLevel=System */
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_NOT, 0),
			   RF_INSN(RF_I_AND, 0),  RF_INSN(RF_I_ATOM, 2), RF_INSN(RF_I_NOT, 0),
			   RF_INSN(RF_I_AND, 0)};
	struct rf_ir_rule r = {"lazy", "t", "", "", PC, a, 3, code, 7};
	size_t len;
	uint8_t *p = build(&r, 1, &len);

	assert_int_equal(
	    eval_line(p, len,
		      "{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
		      "\"CurrentDirectory\":\"C:\\\\Temp\\\\\",\"IntegrityLevel\":\"High\"}",
		      NULL),
	    0);
	assert_int_equal(
	    eval_line(p, len,
		      "{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
		      "\"CurrentDirectory\":\"C:\\\\Users\\\\\",\"IntegrityLevel\":\"System\"}",
		      NULL),
	    0);
	assert_int_equal(
	    eval_line(p, len,
		      "{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
		      "\"CurrentDirectory\":\"C:\\\\Users\\\\\",\"IntegrityLevel\":\"High\"}",
		      NULL),
	    1);
	assert_int_equal(
	    eval_line(p, len, "{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\"}", NULL),
	    1);
	assert_int_equal(
	    eval_line(p, len, "{\"event\":\"process_creation\",\"Image\":\"c:\\\\x.exe\"}", NULL),
	    0);
	free(p);
}

/* Build rules r[0..nr), load them against m11 and evaluate each of ev[0..n): hits[i] alerts, and
 * (atoms not NULL) atoms[i] atoms matched, with no violation. */
static void expect_hits(const struct rf_ir_rule *r, size_t nr, const char *const *ev,
			const int *hits, const uint64_t *atoms, size_t n)
{
	size_t len;
	uint8_t *p = build(r, nr, &len);
	struct rf_engine *e;
	struct rf_engine_scratch *s;
	struct rf_diag d = {0};

	if (rf_engine_load(p, len, m11, &e, &d) < 0)
		fail_msg("load: %s", d.first);
	for (size_t i = 0; i < n; i++) {
		struct rf_event pev;
		struct rf_engine_stats st;
		uint8_t buf[256];
		assert_int_equal(rf_engine_scratch_new(e, &s), 0);
		assert_int_equal(rf_event_parse((const uint8_t *)ev[i], strlen(ev[i]), buf,
						sizeof(buf), &pev, &d),
				 0);
		if (rf_engine_eval(e, &pev, s, NULL, NULL, NULL) != hits[i])
			fail_msg("event %zu: want %d alerts", i, hits[i]);
		rf_engine_scratch_stats(s, &st);
		if (atoms)
			assert_int_equal(st.atoms, atoms[i]);
		assert_int_equal(st.violations, 0);
		rf_engine_scratch_free(s);
	}
	rf_engine_free(e);
	free(p);
}

/* A lazily scanned regex whose factor (here "\n\n\n", from one-byte escapes) is not in the value is
 * false without scanning: the rule below is decided without its lazy database, so its atom
 * 'w.o' (no factor) is never matched; on the old engine the database was scanned (2 atoms). */
static void test_lazy_factor(void **state)
{
	struct rf_ir_atom a[] = {A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
				 A("CommandLine", S, RF_OP_REGEX, 0, "\\n\\n\\n"),
				 A("CommandLine", S, RF_OP_REGEX, 0, "w.o")};
	/* Image AND CommandLine~\n\n\n AND NOT CommandLine~w.o */
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_AND, 0),
			   RF_INSN(RF_I_ATOM, 2), RF_INSN(RF_I_NOT, 0),	 RF_INSN(RF_I_AND, 0)};
	struct rf_ir_rule r = {"lnk", "t", "", "", PC, a, 3, code, 6};
	const char *ev[] = {"{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
			    "\"CommandLine\":\"cmd /c whoami\"}",
			    "{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
			    "\"CommandLine\":\"cmd\\n\\n\\nx\"}",
			    "{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
			    "\"CommandLine\":\"cmd\\n\\n\\nwho\"}"};
	const int hits[] = {0, 1, 0};
	const uint64_t atoms[] = {1, 2, 3};

	expect_hits(&r, 1, ev, hits, atoms, 3);
}

/* A regex in extended mode ((?x)): its spaces are not bytes to match, so "mimi katz" is no
 * required literal; the rule must match "mimikatz" (it was decided false without a scan). */
static void test_regex_extended_no_factor(void **state)
{
	struct rf_ir_atom a[] = {A("CommandLine", S, RF_OP_REGEX, 0, "(?x)mimi katz"),
				 A("CommandLine", S, RF_OP_REGEX, 0, "(?ix: m i m i)  ok")};
	uint32_t c1[] = {RF_INSN(RF_I_ATOM, 0)}, c2[] = {RF_INSN(RF_I_ATOM, 0)};
	struct rf_ir_rule r[] = {{"x", "t", "", "", PC, a, 1, c1, 1},
				 {"ix", "t", "", "", PC, a + 1, 1, c2, 1}};
	const char *ev[] = {"{\"event\":\"process_creation\",\"CommandLine\":\"run mimikatz now\"}",
			    "{\"event\":\"process_creation\",\"CommandLine\":\"run mimi katz\"}",
			    "{\"event\":\"process_creation\",\"CommandLine\":\"MIMI  ok\"}"};
	const int hits[] = {1, 0, 1};

	expect_hits(r, 2, ev, hits, NULL, 3);
}

/* A rule that needs a lazy regex without a factor scans only the database of such atoms, not the
 * one of the factored (rule "other" reads 'who.mi', factor "who", never needed here): on the old
 * engine, one lazy database per field, 'who.mi' was matched as well (3 atoms instead of 2). */
static void test_lazy_bare(void **state)
{
	struct rf_ir_atom a[] = {A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
				 A("CommandLine", S, RF_OP_REGEX, 0, "w.o"),
				 A("Image", S, RF_OP_ENDSWITH, 0, "\\x.exe"),
				 A("CommandLine", S, RF_OP_REGEX, 0, "who.mi")};
	uint32_t c1[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_NOT, 0),
			 RF_INSN(RF_I_AND, 0)};
	uint32_t c2[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_AND, 0)};
	struct rf_ir_rule r[] = {{"bare", "t", "", "", PC, a, 2, c1, 4},
				 {"other", "t", "", "", PC, a + 2, 2, c2, 3}};
	const char *ev = "{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
			 "\"CommandLine\":\"cmd /c whoami\"}";
	size_t len;
	uint8_t *p = build(r, 2, &len);
	struct rf_engine *e;
	struct rf_engine_scratch *s;
	struct rf_diag d = {0};
	struct rf_event pev;
	struct rf_engine_stats st;
	uint8_t buf[256];

	if (rf_engine_load(p, len, m11, &e, &d) < 0)
		fail_msg("load: %s", d.first);
	assert_int_equal(rf_engine_scratch_new(e, &s), 0);
	assert_int_equal(
	    rf_event_parse((const uint8_t *)ev, strlen(ev), buf, sizeof(buf), &pev, &d), 0);
	assert_int_equal(rf_engine_eval(e, &pev, s, NULL, NULL, NULL), 0);
	rf_engine_scratch_stats(s, &st);
	assert_int_equal(st.atoms, 2);
	assert_int_equal(st.violations, 0);
	rf_engine_scratch_free(s);
	rf_engine_free(e);
	free(p);
}

/* Evaluate event line ev with engine e: the alerts; *ret_atoms the atoms matched. */
static int eval_with(struct rf_engine *e, const char *ev, uint64_t *ret_atoms)
{
	struct rf_engine_scratch *s;
	struct rf_diag d = {0};
	struct rf_event pev;
	struct rf_engine_stats st;
	uint8_t buf[512];

	assert_int_equal(rf_engine_scratch_new(e, &s), 0);
	if (rf_event_parse((const uint8_t *)ev, strlen(ev), buf, sizeof(buf), &pev, &d) < 0)
		fail_msg("event: %s", d.first);
	int r = rf_engine_eval(e, &pev, s, NULL, NULL, NULL);
	rf_engine_scratch_stats(s, &st);
	assert_int_equal(st.violations, 0);
	*ret_atoms = st.atoms;
	rf_engine_scratch_free(s);
	return r;
}

/* Contains literals of up to RF_DIRECT_MAX bytes that trigger no rule are in no database: they
 * are searched for in their own field's value when a rule that runs needs them (engine.h
 * RF_DB_DIRECT). The literal in another field must not count, case is as the atom says, the
 * literal is found at every offset (across the 16-byte blocks of the SSE2 search), and a rule that
 * does not run does not search (0 atoms: with the literal in the CommandLine database, as before,
 * it was matched for every event). */
static void test_direct_atoms(void **state)
{
	struct rf_ir_atom a[] = {A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
				 A("CommandLine", S, RF_OP_CONTAINS, 0, "/c"),
				 A("CommandLine", S, RF_OP_CONTAINS, RF_ATOM_CASED, "Ab"),
				 A("CommandLine", S, RF_OP_CONTAINS, 0, "z\xc3\xa9q")};
	/* r1: Image AND CL~/c; r2: Image AND CL~Ab (cased); r3: Image AND NOT CL~zéq */
	uint32_t c1[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_AND, 0)};
	struct rf_ir_atom a2[] = {a[0], a[2]}, a3[] = {a[0], a[3]};
	uint32_t c2[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_AND, 0)};
	uint32_t c3[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_NOT, 0),
			 RF_INSN(RF_I_AND, 0)};
	struct rf_ir_rule r[] = {{"r1", "t", "", "", PC, a, 2, c1, 3},
				 {"r2", "t", "", "", PC, a2, 2, c2, 3},
				 {"r3", "t", "", "", PC, a3, 2, c3, 4}};
	size_t len;
	uint8_t *p = build(r, 3, &len);
	struct rf_engine *e;
	struct rf_diag d = {0};
	uint64_t atoms;
	char ev[512];

	if (rf_engine_load(p, len, m11, &e, &d) < 0)
		fail_msg("load: %s", d.first);
#define EV(img, cl, pcl)                                                                           \
	(snprintf(ev, sizeof(ev),                                                                  \
		  "{\"event\":\"process_creation\",\"Image\":\"%s\",\"CommandLine\":\"%s\","       \
		  "\"ParentCommandLine\":\"%s\"}",                                                 \
		  img, cl, pcl),                                                                   \
	 ev)
	/* Not run (Image does not match): nothing searched. */
	assert_int_equal(eval_with(e, EV("c:\\\\x.exe", "cmd /c Ab", "p"), &atoms), 0);
	assert_int_equal(atoms, 0);
	/* r1 and r2 (Ab) and r3 (no zéq). */
	assert_int_equal(eval_with(e, EV("c:\\\\cmd.exe", "cmd /c Ab", "p"), &atoms), 3);
	assert_int_equal(atoms, 3);
	/* Only in ParentCommandLine: not CommandLine's. */
	assert_int_equal(eval_with(e, EV("c:\\\\cmd.exe", "cmd", "x /c Ab z\xc3\xa9q"), &atoms), 1);
	/* Caseless /C; cased Ab is not AB; zéq caseless is ZéQ (bytes >= 0x80 as they are). */
	assert_int_equal(eval_with(e, EV("c:\\\\cmd.exe", "cmd /C AB Z\xc3\xa9Q", "p"), &atoms), 1);
	assert_int_equal(eval_with(e, EV("c:\\\\cmd.exe", "cmd Z\xc3\x89Q", "p"), &atoms), 1);
	/* Every offset of a 45-byte value, across the SSE2 blocks; and the literal cut short. */
	for (int k = 0; k + 2 <= 45; k++) {
		char cl[64];
		memset(cl, 'x', 45);
		cl[45] = '\0';
		cl[k] = '/';
		cl[k + 1] = 'c';
		assert_int_equal(eval_with(e, EV("c:\\\\cmd.exe", cl, "p"), &atoms), 2);
		cl[k + 1] = 'x';
		assert_int_equal(eval_with(e, EV("c:\\\\cmd.exe", cl, "p"), &atoms), 1);
		if (k + 4 <= 45) {
			memcpy(cl + k, "Z\xc3\xa9q", 4);
			assert_int_equal(eval_with(e, EV("c:\\\\cmd.exe", cl, "p"), &atoms), 0);
		}
	}
#undef EV
	rf_engine_free(e);
	free(p);
}

/* A rule still undecided in three-valued evaluation searches its short literals before it scans
 * a lazy database: here "/c" is absent, so the rule is false without scanning the regex 'w.o'
 * (2 atoms matched when the database was scanned first: Image and 'w.o'). */
static void test_direct_before_lazy(void **state)
{
	struct rf_ir_atom a[] = {A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
				 A("CommandLine", S, RF_OP_CONTAINS, 0, "/c"),
				 A("CommandLine", S, RF_OP_REGEX, 0, "w.o")};
	uint32_t c[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_AND, 0),
			RF_INSN(RF_I_ATOM, 2), RF_INSN(RF_I_AND, 0)};
	struct rf_ir_rule r = {"r", "t", "", "", PC, a, 3, c, 5};
	size_t len;
	uint8_t *p = build(&r, 1, &len);
	struct rf_engine *e;
	struct rf_diag d = {0};
	uint64_t atoms;

	if (rf_engine_load(p, len, m11, &e, &d) < 0)
		fail_msg("load: %s", d.first);
	assert_int_equal(eval_with(e,
				   "{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
				   "\"CommandLine\":\"cmd whoami\"}",
				   &atoms),
			 0);
	assert_int_equal(atoms, 1);
	assert_int_equal(eval_with(e,
				   "{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
				   "\"CommandLine\":\"cmd /c whoami\"}",
				   &atoms),
			 1);
	assert_int_equal(atoms, 3);
	rf_engine_free(e);
	free(p);
}

/* Issue 12 item 4: values longer than the old 8 KiB scan window are matched whole. On the old
 * engine (values cut at 8,192 bytes) the first case missed and the second alerted. */
static void test_long_values_exact(void **state)
{
	struct rf_ir_atom a = A("CommandLine", S, RF_OP_ENDSWITH, 0, ".vbs");
	struct rf_ir_atom b = A("CommandLine", S, RF_OP_EQ, 0, "a*b");
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0)};
	struct rf_ir_rule r[] = {{"vbs", "t", "", "", PC, &a, 1, code, 1},
				 {"eq", "t", "", "", PC, &b, 1, code, 1}};
	size_t len, big = 9004;
	uint8_t *p = build(r, 2, &len);
	char *json = malloc(RF_EVENT_VALUE_MAX + 200);
	bool refused = true;

	int o = sprintf(json, "{\"event\":\"process_creation\",\"CommandLine\":\"");
	/* A 9,004-byte value that really ends in .vbs. */
	memset(json + o, 'a', big - 4);
	memcpy(json + o + big - 4, ".vbs\"}", 7);
	assert_int_equal(eval_line(p, len, json, &refused), 1);
	assert_false(refused);
	/* Its first 8,192 bytes end in .vbs, the whole value does not. */
	memcpy(json + o + 8188, ".vbs", 4);
	memcpy(json + o + big - 4, ".txt\"}", 7);
	assert_int_equal(eval_line(p, len, json, &refused), 0);
	/* EQ a*b: only true if the last byte (past 8 KiB) is b. */
	memcpy(json + o + big - 4, "xxxb\"}", 7);
	assert_int_equal(eval_line(p, len, json, &refused), 1);
	/* The documented limit: a value of exactly RF_EVENT_VALUE_MAX bytes is matched whole. */
	memset(json + o, 'a', RF_EVENT_VALUE_MAX - 4);
	memcpy(json + o + RF_EVENT_VALUE_MAX - 4, ".vbs\"}", 7);
	assert_int_equal(eval_line(p, len, json, &refused), 1);
	assert_false(refused);
	free(json);
	free(p);
}

/* One byte past RF_EVENT_VALUE_MAX: the event is refused whole, named and counted, never matched
 * on a cut value (single and batch paths). */
static void test_long_values_refused(void **state)
{
	struct rf_ir_atom a = A("CommandLine", S, RF_OP_STARTSWITH, 0, "aaaa");
	struct rf_ir_atom b = A("Image", S, RF_OP_EXISTS, 0, "");
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0)};
	struct rf_ir_rule r[] = {{"head", "t", "", "", PC, &a, 1, code, 1},
				 {"img", "t", "", "", PC, &b, 1, code, 1}};
	size_t len, big = RF_EVENT_VALUE_MAX + 1;
	uint8_t *p = build(r, 2, &len);
	struct rf_engine *e;
	struct rf_engine_scratch *s;
	struct rf_diag d = {0};
	struct rf_engine_stats st;
	static struct rf_event ev[2];
	char *json = malloc(big + 200);
	uint8_t *scr = malloc(big + 200);
	const char *small = "{\"event\":\"process_creation\",\"Image\":\"x\"}";
	uint8_t scr2[128];
	bool refused = false, flags[2] = {false, false};
	int hits = 0;

	int o = sprintf(json, "{\"event\":\"process_creation\",\"Image\":\"x\",\"CommandLine\":\"");
	memset(json + o, 'a', big);
	strcpy(json + o + big, "\"}");
	assert_int_equal(rf_engine_load(p, len, m11, &e, &d), 0);
	assert_int_equal(rf_engine_scratch_new(e, &s), 0);
	assert_int_equal(rf_event_parse((const uint8_t *)json, strlen(json), scr, big + 200, &ev[0], &d),
			 0);
	assert_int_equal(rf_engine_eval(e, &ev[0], s, count_alert, &hits, &refused), -E2BIG);
	assert_true(refused);
	assert_int_equal(hits, 0);
	/* In a batch the refused event is flagged and the others are evaluated. */
	assert_int_equal(rf_event_parse((const uint8_t *)small, strlen(small), scr2, sizeof(scr2),
					&ev[1], &d),
			 0);
	const struct rf_event *evp[2] = {&ev[0], &ev[1]};
	assert_int_equal(rf_engine_eval_batch(e, evp, 2, s, NULL, NULL, flags), 1);
	assert_true(flags[0]);
	assert_false(flags[1]);
	rf_engine_scratch_stats(s, &st);
	assert_int_equal(st.oversize, 2);
	assert_int_equal(st.matches, 1);
	/* The diagnostic names the field and the limit. */
	struct rf_diag pd = {0};
	assert_int_equal(rf_engine_event_problems(e, &ev[0], &pd), 1);
	assert_non_null(strstr(pd.first, "field 'CommandLine': value of 131073 bytes is over 131072"));
	/* A caller-built event whose values together exceed RF_EVENT_LINE_MAX is refused too. */
	static struct rf_event wide;
	wide.type = (const uint8_t *)"process_creation";
	wide.type_len = strlen("process_creation");
	wide.n_fields = 3;
	for (int i = 0; i < 3; i++)
		wide.fields[i] = (struct rf_event_field){(const uint8_t *)"CommandLine", 11,
							 (const uint8_t *)json + o,
							 RF_EVENT_VALUE_MAX, true};
	assert_int_equal(rf_engine_eval(e, &wide, s, NULL, NULL, NULL), -E2BIG);
	rf_engine_scratch_free(s);
	rf_engine_free(e);
	free(scr);
	free(json);
	free(p);
}

/* content eval's diagnostics: unknown event type, a value not of its manifest type. */
static void test_event_problems(void **state)
{
	struct rf_ir_atom a = A("ProcessId", RF_FT_INT, RF_OP_EQ, 0, "4");
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0)};
	struct rf_ir_rule r = {"pid", "t", "", "", PC, &a, 1, code, 1};
	size_t len;
	uint8_t *p = build(&r, 1, &len);
	struct rf_engine *e;
	struct rf_engine_scratch *s;
	struct rf_diag d = {0};
	struct rf_engine_stats st;
	static struct rf_event ev;
	uint8_t scr[256];
	static const struct {
		const char *json;
		int problems;
		const char *msg;
	} cases[] = {
	    {"{\"event\":\"process_creation\",\"ProcessId\":4}", 0, NULL},
	    {"{\"event\":\"process_creation\",\"ProcessId\":\"4\"}", 0, NULL},
	    {"{\"event\":\"process_creation\",\"ProcessId\":\"four\"}", 1,
	     "field 'ProcessId' is int in ringfence-agent 1.1.0 but its value 'four' is not"},
	    {"{\"event\":\"process_creation\",\"ProcessId\":true}", 1, "value 'true' is not"},
	    {"{\"event\":\"network_connection\",\"DestinationIp\":\"10.0.0.300\"}", 1,
	     "field 'DestinationIp' is ip in ringfence-agent 1.1.0"},
	    {"{\"event\":\"proc_creation\",\"ProcessId\":4}", 1,
	     "event type 'proc_creation' is not supplied by ringfence-agent 1.1.0"},
	};

	assert_int_equal(rf_engine_load(p, len, m11, &e, &d), 0);
	assert_int_equal(rf_engine_scratch_new(e, &s), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rf_diag pd = {0};
		assert_int_equal(rf_event_parse((const uint8_t *)cases[i].json,
						strlen(cases[i].json), scr, sizeof(scr), &ev, &d),
				 0);
		assert_int_equal(rf_engine_event_problems(e, &ev, &pd), cases[i].problems);
		if (cases[i].msg && !strstr(pd.first, cases[i].msg))
			fail_msg("case %zu: '%s' not in '%s'", i, cases[i].msg, pd.first);
		assert_true(rf_engine_eval(e, &ev, s, NULL, NULL, NULL) >= 0);
	}
	rf_engine_scratch_stats(s, &st);
	assert_int_equal(st.mistyped, 3);
	assert_int_equal(st.unknown, 1);
	assert_int_equal(st.matches, 2);
	rf_engine_scratch_free(s);
	rf_engine_free(e);
	free(p);
}

/* Top-level conjunctions run as c1 REQ c2 REQ ... ck (engine.h RF_X_REQ): `not
 * IntegrityLevel=system and Image|endswith and CommandLine|re` becomes IntegrityLevel NOT REQ
 * Image REQ CommandLine~w.o (without the pass it stays ATOM NOT ATOM AND ATOM AND). The truth
 * table is the rule's. Then three-valued evaluation: a conjunct popped while unknown (w.o, lazy
 * and without a factor) keeps the rule undecided even when the conjuncts after it are known true
 * (NOT of abc.x, whose factor "abc" is not in the value), so the database is scanned and the rule
 * is false; taking the known value alone would alert. */
static void test_conjunct_order(void **state)
{
	struct rf_ir_atom a[] = {A("IntegrityLevel", S, RF_OP_EQ, 0, "system"),
				 A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
				 A("CommandLine", S, RF_OP_REGEX, 0, "w.o")};
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_NOT, 0), RF_INSN(RF_I_ATOM, 1),
			   RF_INSN(RF_I_AND, 0),  RF_INSN(RF_I_ATOM, 2), RF_INSN(RF_I_AND, 0)};
	struct rf_ir_rule r = {"req", "t", "", "", PC, a, 3, code, 6};
	size_t len;
	uint8_t *p = build(&r, 1, &len);
	struct rf_engine *e;
	struct rf_diag d = {0};
	uint64_t atoms;
	const uint32_t ops[] = {RF_I_ATOM, RF_I_NOT, RF_X_REQ, RF_I_ATOM, RF_X_REQ, RF_I_ATOM};

	if (rf_engine_load(p, len, m11, &e, &d) < 0)
		fail_msg("load: %s", d.first);
	assert_int_equal(e->xr[0].len, 6);
	for (int k = 0; k < 6; k++)
		assert_int_equal(RF_INSN_OP(e->xcode[e->xr[0].off + k]), ops[k]);
	for (int m = 0; m < 8; m++) {
		char ev[256];
		snprintf(ev, sizeof(ev),
			 "{\"event\":\"process_creation\",\"IntegrityLevel\":\"%s\",\"Image\":"
			 "\"c:\\\\%s.exe\",\"CommandLine\":\"x %s\"}",
			 m & 1 ? "System" : "High", m & 2 ? "cmd" : "net", m & 4 ? "whoami" : "dir");
		assert_int_equal(eval_with(e, ev, &atoms), m == 6);
	}
	rf_engine_free(e);
	free(p);

	struct rf_ir_atom b[] = {A("Image", S, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
				 A("CommandLine", S, RF_OP_REGEX, 0, "w.o"),
				 A("CommandLine", S, RF_OP_REGEX, 0, "abc.x")};
	/* Image AND CommandLine~w.o AND NOT CommandLine~abc.x */
	uint32_t c2[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_AND, 0),
			 RF_INSN(RF_I_ATOM, 2), RF_INSN(RF_I_NOT, 0),  RF_INSN(RF_I_AND, 0)};
	struct rf_ir_rule r2 = {"undecided", "t", "", "", PC, b, 3, c2, 6};
	const char *ev[] = {"{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
			    "\"CommandLine\":\"cmd /c dir\"}",
			    "{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
			    "\"CommandLine\":\"cmd /c whoami\"}",
			    "{\"event\":\"process_creation\",\"Image\":\"c:\\\\cmd.exe\","
			    "\"CommandLine\":\"cmd /c whoami abc-x\"}"};
	const int hits[] = {0, 1, 0};

	expect_hits(&r2, 1, ev, hits, NULL, 3);
}

/* Defence in depth: corrupt the loaded program (the run-time form the interpreter runs,
 * engine.h) behind the verifier's back. */
static void test_runtime_violation(void **state)
{
	struct rf_ir_atom a[] = {A("Image", S, RF_OP_EXISTS, 0, ""),
				 A("CommandLine", S, RF_OP_CONTAINS, 0, "x"),
				 A("CommandLine", S, RF_OP_CONTAINS, 0, "y")};
	/* Image exists and (CommandLine contains x or y): the value list runs as one RF_X_ANY. */
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_ATOM, 2),
			   RF_INSN(RF_I_OR, 0), RF_INSN(RF_I_AND, 0)};
	struct rf_ir_rule r = {"v", "t", "", "", PC, a, 3, code, 5};
	size_t len;
	uint8_t *p = build(&r, 1, &len);
	struct rf_engine *e;
	struct rf_engine_scratch *s;
	struct rf_diag d = {0};
	static struct rf_event ev;
	uint8_t scratch[256];
	struct rf_engine_stats st;
	const char *js = "{\"event\":\"process_creation\",\"Image\":\"x\",\"CommandLine\":\"y\"}";

	assert_int_equal(rf_engine_load(p, len, m11, &e, &d), 0);
	assert_int_equal(rf_engine_scratch_new(e, &s), 0);
	assert_int_equal(
	    rf_event_parse((const uint8_t *)js, strlen(js), scratch, sizeof(scratch), &ev, &d), 0);
	assert_int_equal(rf_engine_eval(e, &ev, s, NULL, NULL, NULL), 1);
	assert_int_equal(e->xr[0].len, 3); /* ATOM, REQ, ANY */
	uint32_t *xc = e->xcode + e->xr[0].off;
	assert_int_equal(RF_INSN_OP(xc[1]), RF_X_REQ);
	assert_int_equal(RF_INSN_OP(xc[2]), RF_X_ANY);
	uint32_t saved = xc[0], saved_list = xc[2];
	xc[0] = RF_INSN(RF_I_ATOM, 99999);
	assert_int_equal(rf_engine_eval(e, &ev, s, NULL, NULL, NULL), 0);
	xc[0] = RF_INSN(RF_I_AND, 0);
	assert_int_equal(rf_engine_eval(e, &ev, s, NULL, NULL, NULL), 0);
	xc[0] = saved;
	xc[2] = RF_INSN(RF_X_ANY, 99999); /* no such list */
	assert_int_equal(rf_engine_eval(e, &ev, s, NULL, NULL, NULL), 0);
	xc[2] = saved_list;
	uint32_t word = e->xgroups[0].word;
	e->xgroups[0].word = 1u << 30; /* past the event's bit set */
	assert_int_equal(rf_engine_eval(e, &ev, s, NULL, NULL, NULL), 0);
	e->xgroups[0].word = word;
	e->xr[0].len = 1000;
	assert_int_equal(rf_engine_eval(e, &ev, s, NULL, NULL, NULL), 0);
	rf_engine_scratch_stats(s, &st);
	assert_int_equal(st.violations, 5);
	e->xr[0].len = 3;
	assert_int_equal(rf_engine_eval(e, &ev, s, NULL, NULL, NULL), 1);
	rf_engine_scratch_free(s);
	rf_engine_free(e);
	free(p);
}

/* Field lookup: the scratch remembers which manifest field the i-th field of the last event was
 * and compares names (engine.c name_eq) before it hashes. An event whose field at that place has
 * a name of the same length that differs in any one byte must not be taken for that field: for
 * names of 4 to 17 bytes (each of name_eq's cases), each byte changed in turn, the event after one
 * with the real name, on one scratch. */
/* The value cache lives in the scratch, which belongs to one engine: a scratch used with another
 * engine is refused (-EINVAL), also when that engine was loaded after the scratch's own was freed
 * and took its address (each engine has a serial number), so a new pack never sees the atoms an
 * old pack's matchers reported for a value. */
static void test_value_cache_engines(void **state)
{
	struct rf_ir_atom aa = A("Image", S, RF_OP_CONTAINS, 0, "abc");
	struct rf_ir_atom ab = A("Image", S, RF_OP_CONTAINS, 0, "xyz");
	uint32_t code[1] = {RF_INSN(RF_I_ATOM, 0)};
	struct rf_ir_rule ra = {"r1", "t", "high", "me", PC, &aa, 1, code, 1};
	struct rf_ir_rule rb = {"r1", "t", "high", "me", PC, &ab, 1, code, 1};
	size_t la, lb;
	uint8_t *pa = build(&ra, 1, &la), *pb = build(&rb, 1, &lb);
	struct rf_engine *ea, *eb, *ec;
	struct rf_engine_scratch *sa, *sb;
	struct rf_engine_stats st;
	struct rf_diag d = {0};
	static struct rf_event ev;
	int hits = 0;

	ev.type = (const uint8_t *)PC;
	ev.type_len = 16;
	ev.n_fields = 1;
	ev.fields[0] = (struct rf_event_field){(const uint8_t *)"Image", 5,
					       (const uint8_t *)"C:\\abc\\x.exe", 13, true};
	assert_int_equal(rf_engine_load(pa, la, m11, &ea, &d), 0);
	assert_int_equal(rf_engine_scratch_new(ea, &sa), 0);
	for (int k = 0; k < 3; k++) /* a miss, then hits */
		assert_int_equal(rf_engine_eval(ea, &ev, sa, count_alert, &hits, NULL), 1);
	rf_engine_scratch_stats(sa, &st);
	assert_int_equal(st.cache_misses, 1);
	assert_int_equal(st.cache_hits, 2);
	assert_int_equal(rf_engine_load(pb, lb, m11, &eb, &d), 0);
	assert_int_equal(rf_engine_eval(eb, &ev, sa, count_alert, &hits, NULL), -EINVAL);
	assert_int_equal(rf_engine_scratch_new(eb, &sb), 0);
	for (int k = 0; k < 3; k++)
		assert_int_equal(rf_engine_eval(eb, &ev, sb, count_alert, &hits, NULL), 0);
	/* Free the scratch's engine and load another: whether or not it gets the same address,
	 * the old scratch is refused. */
	const void *old = ea;
	rf_engine_free(ea);
	assert_int_equal(rf_engine_load(pb, lb, m11, &ec, &d), 0);
	print_message("new engine %s the freed one's address\n",
		      (const void *)ec == old ? "took" : "did not take");
	assert_int_equal(rf_engine_eval(ec, &ev, sa, count_alert, &hits, NULL), -EINVAL);
	assert_int_equal(hits, 3);
	rf_engine_scratch_free(sa);
	rf_engine_scratch_free(sb);
	rf_engine_free(eb);
	rf_engine_free(ec);
	free(pa);
	free(pb);
}

/* The value cache's adaptive rule: a field whose values do not repeat is looked up for one window
 * (RF_VCACHE_WINDOW values), then paused for RF_VCACHE_PAUSE events, then probed again, and
 * cached again once its values repeat; the alerts are the same throughout. */
static void test_value_cache_adaptive(void **state)
{
	struct rf_ir_atom a = A("Image", S, RF_OP_CONTAINS, 0, "abc");
	uint32_t code[1] = {RF_INSN(RF_I_ATOM, 0)};
	struct rf_ir_rule r = {"r1", "t", "high", "me", PC, &a, 1, code, 1};
	size_t len;
	uint8_t *p = build(&r, 1, &len);
	struct rf_engine *e;
	struct rf_engine_scratch *s;
	struct rf_engine_stats st;
	struct rf_diag d = {0};
	static struct rf_event ev;
	char v[64];
	int hits = 0, want = 0;
	const size_t unique = 1000, same = RF_VCACHE_PAUSE + 1000;

	assert_int_equal(rf_engine_load(p, len, m11, &e, &d), 0);
	assert_int_equal(rf_engine_scratch_new(e, &s), 0);
	ev.type = (const uint8_t *)PC;
	ev.type_len = 16;
	ev.n_fields = 1;
	for (size_t k = 0; k < unique + same; k++) {
		/* unique values first (every third one matches), then one value again and again */
		int n = k < unique ? snprintf(v, sizeof(v), "C:\\x%zu\\%s.exe", k,
					      k % 3 ? "y" : "abc")
				   : snprintf(v, sizeof(v), "C:\\abc.exe");
		ev.fields[0] = (struct rf_event_field){(const uint8_t *)"Image", 5,
						       (const uint8_t *)v, (size_t)n, true};
		want += k >= unique || k % 3 == 0;
		assert_true(rf_engine_eval(e, &ev, s, count_alert, &hits, NULL) >= 0);
		if (k == unique - 1) {
			rf_engine_scratch_stats(s, &st);
			assert_int_equal(st.cache_hits, 0);
			assert_int_equal(st.cache_misses, RF_VCACHE_WINDOW);
			assert_int_equal(st.cache_paused, unique - RF_VCACHE_WINDOW);
		}
	}
	assert_int_equal(hits, want);
	rf_engine_scratch_stats(s, &st);
	/* Paused until event RF_VCACHE_WINDOW + RF_VCACHE_PAUSE, then one miss and hits. */
	assert_int_equal(st.cache_paused, RF_VCACHE_PAUSE);
	assert_int_equal(st.cache_misses, RF_VCACHE_WINDOW + 1);
	assert_int_equal(st.cache_hits, unique + same - RF_VCACHE_WINDOW - RF_VCACHE_PAUSE - 1);
	rf_engine_scratch_free(s);
	rf_engine_free(e);
	free(p);
}

static void test_field_lookup_near_names(void **state)
{
	static const char *const names[] = {"User", "Image", "Hashes", "Company", "LogonGuid",
					    "CommandLine", "OriginalFileName", "ParentCommandLine"};

	for (size_t ni = 0; ni < sizeof(names) / sizeof(names[0]); ni++) {
		const char *fname = names[ni];
		size_t fl = strlen(fname);
		struct rf_ir_atom a = {fname, S, RF_OP_EXISTS, 0, (const uint8_t *)"", 0};
		uint32_t code[1] = {RF_INSN(RF_I_ATOM, 0)};
		struct rf_ir_rule r = {"r1", "t", "high", "me", PC, &a, 1, code, 1};
		size_t len;
		uint8_t *p = build(&r, 1, &len);
		struct rf_engine *e;
		struct rf_engine_scratch *sc;
		struct rf_diag d = {0};

		assert_int_equal(rf_engine_load(p, len, m11, &e, &d), 0);
		assert_int_equal(rf_engine_scratch_new(e, &sc), 0);
		for (size_t k = 0; k <= fl; k++) {
			char name[32], line[128];
			uint8_t buf[128];
			struct rf_event ev;
			/* k == fl: the real name again (the cached slot still found) */
			for (int pass = 0; pass < 2; pass++) {
				memcpy(name, fname, fl + 1);
				if (pass == 1 && k < fl)
					name[k] = name[k] == 'q' ? 'r' : 'q';
				int n = snprintf(line, sizeof(line),
						 "{\"event\":\"" PC "\",\"%s\":\"x\"}", name);
				assert_int_equal(rf_event_parse((const uint8_t *)line, (size_t)n,
								buf, sizeof(buf), &ev, &d),
						 0);
				int hits = rf_engine_eval(e, &ev, sc, NULL, NULL, NULL);
				if (hits != (pass == 0 || k == fl))
					fail_msg("field '%s' after '%s': %d alerts", name, fname,
						 hits);
			}
		}
		rf_engine_scratch_free(sc);
		rf_engine_free(e);
		free(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_manifest),
	    cmocka_unit_test(test_roundtrip_dedup),
	    cmocka_unit_test(test_string_ops),
	    cmocka_unit_test(test_absent_exists_null),
	    cmocka_unit_test(test_int_ip),
	    cmocka_unit_test(test_builder_rejects),
	    cmocka_unit_test(test_wildcard_limit),
	    cmocka_unit_test(test_field_291),
	    cmocka_unit_test(test_type_mismatch_and_event),
	    cmocka_unit_test(test_logic_and_prefilter),
	    cmocka_unit_test(test_long_values_exact),
	    cmocka_unit_test(test_long_values_refused),
	    cmocka_unit_test(test_event_problems),
	    cmocka_unit_test(test_batch_equals_single),
	    cmocka_unit_test(test_filter_only_field),
	    cmocka_unit_test(test_lazy_factor),
	    cmocka_unit_test(test_regex_extended_no_factor),
	    cmocka_unit_test(test_lazy_bare),
	    cmocka_unit_test(test_direct_atoms),
	    cmocka_unit_test(test_direct_before_lazy),
	    cmocka_unit_test(test_conjunct_order),
	    cmocka_unit_test(test_runtime_violation),
	    cmocka_unit_test(test_field_lookup_near_names),
	    cmocka_unit_test(test_value_cache_engines),
	    cmocka_unit_test(test_value_cache_adaptive),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
