/*
 * Malformed packs: a valid pack truncated at every byte, every header and section-table byte
 * corrupted, indices out of range, huge counts, overlapping sections, random corruption. Every
 * one must be rejected with a diagnostic (or, for random flips that happen to stay valid, load
 * and evaluate safely) under ASan/UBSan. Also the event parser's error handling.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "content/ir.h"
#include "content/pack.h"
#include "ringfence/content.h"

static uint8_t *pack;
static size_t pack_len;
static struct rf_manifest *man;

#define A(f, t, o, fl, p)                                                                          \
	{                                                                                          \
		f, t, o, fl, (const uint8_t *)(p), sizeof(p) - 1                                   \
	}

static int setup(void **state)
{
	struct rf_ir_atom a[] = {A("Image", RF_FT_STRING, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
				 A("CommandLine", RF_FT_STRING, RF_OP_CONTAINS, 0, "whoami"),
				 A("ProcessId", RF_FT_INT, RF_OP_EQ, 0, "4"),
				 {NULL, 0, RF_OP_KEYWORD, 0, (const uint8_t *)"mimikatz", 8}};
	uint32_t c1[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_AND, 0)};
	uint32_t c2[] = {RF_INSN(RF_I_ATOM, 2), RF_INSN(RF_I_NOT, 0), RF_INSN(RF_I_ATOM, 3),
			 RF_INSN(RF_I_OR, 0)};
	struct rf_ir_rule r[] = {{"rule-1", "One", "high", "a", "process_creation", a, 4, c1, 3},
				 {"rule-2", "Two", "low", "b", "process_creation", a, 4, c2, 4}};
	struct rf_pack_builder *b;
	struct rf_diag d = {0};
	size_t n;
	const uint8_t *mb = rf_content_builtin_manifest(&n);

	assert_int_equal(rf_manifest_parse(mb, n, &man, &d), 0);
	assert_int_equal(rf_pack_builder_new(&b), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(rf_pack_builder_add(b, &r[i], &d), 0);
	assert_int_equal(rf_pack_builder_finish(b, 42, &pack, &pack_len), 0);
	rf_pack_builder_free(b);
	return 0;
}

static int teardown(void **state)
{
	free(pack);
	rf_manifest_free(man);
	return 0;
}

/* Load p as the agent would; if it loads, evaluate an event. Returns the load result. */
static int try_load(const uint8_t *p, size_t n, struct rf_diag *d)
{
	struct rf_engine *e = NULL;
	uint8_t *copy = malloc(n ? n : 1);
	int r;

	memcpy(copy, p, n); /* exact-size heap copy: ASan sees any over-read */
	r = rf_engine_load(copy, n, man, &e, d);
	if (r == 0) {
		struct rf_engine_scratch *s;
		static struct rf_event ev;
		uint8_t scratch[256];
		const char *js = "{\"event\":\"process_creation\",\"Image\":\"C:\\\\cmd.exe\","
				 "\"CommandLine\":\"whoami mimikatz\",\"ProcessId\":4}";
		struct rf_engine_stats st;
		assert_int_equal(rf_engine_scratch_new(e, &s), 0);
		assert_int_equal(rf_event_parse((const uint8_t *)js, strlen(js), scratch,
						sizeof(scratch), &ev, d),
				 0);
		assert_true(rf_engine_eval(e, &ev, s, NULL, NULL, NULL) >= 0);
		rf_engine_scratch_stats(s, &st);
		assert_int_equal(st.violations, 0);
		rf_engine_scratch_free(s);
		rf_engine_free(e);
	}
	free(copy);
	return r;
}

static void expect_reject(const uint8_t *p, size_t n, const char *what, size_t at)
{
	struct rf_diag d = {0};
	int r = try_load(p, n, &d);

	if (r == 0 || d.count == 0 || d.first[0] == '\0')
		fail_msg("%s at %zu: accepted (r=%d, %u diagnostics)", what, at, r, d.count);
}

static void test_valid_pack_loads(void **state)
{
	struct rf_diag d = {0};
	assert_int_equal(try_load(pack, pack_len, &d), 0);
	assert_int_equal(d.count, 0);
}

/* rf_pack_verify against no manifest proves nothing: it is refused (-EINVAL, with a message),
 * never a vacuous 0; against one manifest the same pack verifies. */
static void test_verify_needs_a_manifest(void **state)
{
	const struct rf_manifest *ms[] = {man};
	struct rf_diag d = {0};

	assert_int_equal(rf_pack_verify(pack, pack_len, NULL, 0, &d), -EINVAL);
	assert_int_equal(d.count, 1);
	assert_non_null(strstr(d.first, "no agent manifest"));
	memset(&d, 0, sizeof(d));
	assert_int_equal(rf_pack_verify(pack, pack_len, ms, 0, &d), -EINVAL);
	assert_int_equal(rf_pack_verify(pack, pack_len, NULL, 0, NULL), -EINVAL);
	memset(&d, 0, sizeof(d));
	assert_int_equal(rf_pack_verify(pack, pack_len, ms, 1, &d), 0);
	assert_int_equal(d.count, 0);
}

static void test_truncated_everywhere(void **state)
{
	for (size_t n = 0; n < pack_len; n++)
		expect_reject(pack, n, "truncated", n);
	/* And one byte too many. */
	uint8_t *p = calloc(1, pack_len + 1);
	memcpy(p, pack, pack_len);
	expect_reject(p, pack_len + 1, "extended", pack_len);
	free(p);
}

static void test_header_bytes_corrupted(void **state)
{
	uint8_t *p = malloc(pack_len);

	for (size_t i = 0; i < RF_PACK_PREAMBLE; i++) {
		if (i >= 16 && i < 24)
			continue; /* the content sequence number: any value is valid */
		static const uint8_t deltas[] = {0x01, 0x80, 0xff};
		for (size_t k = 0; k < sizeof(deltas); k++) {
			memcpy(p, pack, pack_len);
			p[i] ^= deltas[k];
			expect_reject(p, pack_len, "header byte corrupted", i);
		}
	}
	free(p);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t sec_off(int s)
{
	return rd32(pack + RF_PACK_HEADER_SIZE + (size_t)(s - 1) * RF_PACK_SECTENT_SIZE + 4);
}

/* Overwrite the u32 at off with v and expect a rejection. */
static void poke(size_t off, uint32_t v, const char *what)
{
	uint8_t *p = malloc(pack_len);
	memcpy(p, pack, pack_len);
	wr32(p + off, v);
	expect_reject(p, pack_len, what, off);
	free(p);
}

static void test_indices_out_of_range(void **state)
{
	uint32_t strs = sec_off(RF_SEC_STRINGS), flds = sec_off(RF_SEC_FIELDS);
	uint32_t atoms = sec_off(RF_SEC_ATOMS), rules = sec_off(RF_SEC_RULES),
		 code = sec_off(RF_SEC_CODE);

	poke(flds, 100000, "field event string index");
	poke(flds + 4, 0xffffffff, "field name string index");
	poke(flds + 8, 9, "field type");
	poke(atoms, 77, "atom field index");
	poke(atoms + 8, 0x7fffffff, "atom pattern index");
	poke(atoms + 4, 0x63, "atom op");
	poke(atoms + 4, 0x0201, "atom flags");
	poke(atoms + 4, 0x01000001, "atom reserved");
	for (int k = 0; k < 5; k++)
		poke(rules + (size_t)k * 4, 5000, "rule string index");
	poke(rules + 20, 1, "rule code offset");
	poke(rules + 24, 0, "rule code length");
	poke(rules + 24, 0xffffffff, "rule code length");
	poke(rules + 28, 5000, "rule product string index"); /* index + 1; 0 is none */
	poke(rules + 28, 0xffffffff, "rule product string index");
	poke(code, RF_INSN(RF_I_ATOM, 1000), "insn atom index");
	poke(code, RF_INSN(77, 0), "unknown opcode");
	poke(code + 8, RF_INSN(RF_I_AND, 1), "reserved bits");
	poke(code + 8, RF_INSN(RF_I_NOT, 0), "two results");
	poke(code + 4, RF_INSN(RF_I_OR, 0), "stack underflow");
	poke(strs, 1, "string offset");
	poke(strs + 4, 0xfffffff0, "string length");
}

static void test_huge_counts_and_overlap(void **state)
{
	for (int s = 1; s <= 5; s++) {
		size_t e = RF_PACK_HEADER_SIZE + (size_t)(s - 1) * RF_PACK_SECTENT_SIZE;
		poke(e + 12, 0xffffffff, "huge count");
		poke(e + 12, rd32(pack + e + 12) + 1, "count + 1");
		poke(e + 8, 0xfffffff0, "huge size");
		poke(e + 4, 0xfffffff0, "huge offset");
		if (s > 1)
			poke(e + 4, sec_off(s - 1), "overlapping the previous section");
		poke(e + 4, sec_off(s) + 2, "misaligned");
	}
	poke(8, 0xffffffff, "huge total length");
}

static void test_bad_strings(void **state)
{
	uint32_t strs = sec_off(RF_SEC_STRINGS);
	uint32_t count = rd32(pack + RF_PACK_HEADER_SIZE + 12);
	size_t data = strs + (size_t)count * 8;
	static const uint8_t bad[][2] = {{0x00, 0}, {0xc0, 0x80}, {0xff, 0}, {0xed, 0xa0}};

	for (size_t k = 0; k < 4; k++) {
		uint8_t *p = malloc(pack_len);
		memcpy(p, pack, pack_len);
		memcpy(p + data, bad[k], 2);
		expect_reject(p, pack_len, "invalid UTF-8", k);
		free(p);
	}
}

/* Random corruption: whatever happens, no crash, no violation; most are rejected. */
static void test_random_flips(void **state)
{
	uint8_t *p = malloc(pack_len);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned rejected = 0, total = 3000;

	for (unsigned t = 0; t < total; t++) {
		memcpy(p, pack, pack_len);
		for (int k = 0; k < 3; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			p[x % pack_len] ^= (uint8_t)(1u << (x >> 32) % 8);
		}
		struct rf_diag d = {0};
		if (try_load(p, pack_len, &d) < 0) {
			rejected++;
			assert_true(d.count > 0);
		}
	}
	assert_true(rejected > total / 2);
	free(p);
}

/* Forged fieldref atoms: the verifier resolves the field each one names and refuses one the
 * field table lacks for the atom's own event, or one that is not a string; the semantic check
 * names a referenced field the manifest does not supply (the 291 check through a reference). */
static uint32_t field_named(const struct rf_pack *pk, const char *ev, const char *name)
{
	for (uint32_t i = 0; i < pk->n_fields; i++)
		if (!strcmp(rf__pack_str(pk, pk->fields[i].event), ev) &&
		    !strcmp(rf__pack_str(pk, pk->fields[i].name), name))
			return i;
	fail_msg("no field %s/%s", ev, name);
	return 0;
}

static uint32_t string_named(const struct rf_pack *pk, const char *s)
{
	for (uint32_t i = 0; i < pk->n_strings; i++)
		if (!strcmp(pk->strings[i].s, s))
			return i;
	fail_msg("no string %s", s);
	return 0;
}

static void test_fieldref_forged(void **state)
{
	struct rf_ir_atom a1[] = {A("User", RF_FT_STRING, RF_OP_FIELDREF, 0, "ParentUser"),
				  A("User", RF_FT_STRING, RF_OP_CONTAINS, 0, "cmd")};
	struct rf_ir_atom a2[] = {A("DestinationHostname", RF_FT_STRING, RF_OP_EQ, 0, "x")};
	uint32_t c1[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_OR, 0)};
	uint32_t c2[] = {RF_INSN(RF_I_ATOM, 0)};
	struct rf_ir_rule r[] = {{"fr-1", "One", "high", "a", "process_creation", a1, 2, c1, 3},
				 {"fr-2", "Two", "low", "b", "network_connection", a2, 1, c2, 1}};
	struct rf_pack_builder *b;
	struct rf_pack *pk = NULL;
	struct rf_diag d = {0};
	uint8_t *p, *q;
	size_t n;

	assert_int_equal(rf_pack_builder_new(&b), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(rf_pack_builder_add(b, &r[i], &d), 0);
	assert_int_equal(rf_pack_builder_finish(b, 1, &p, &n), 0);
	rf_pack_builder_free(b);
	assert_int_equal(try_load(p, n, &d), 0);
	assert_int_equal(rf_pack_open(p, n, &pk, &d), 0);
	/* The builder put the referenced field in the table; the verifier resolved it. */
	uint32_t fpu = field_named(pk, "process_creation", "ParentUser");
	assert_int_equal(pk->atoms[0].op, RF_OP_FIELDREF);
	assert_int_equal(pk->atoms[0].ref, fpu);
	uint32_t atoms =
	    rd32(p + RF_PACK_HEADER_SIZE + (RF_SEC_ATOMS - 1) * RF_PACK_SECTENT_SIZE + 4);
	uint32_t flds =
	    rd32(p + RF_PACK_HEADER_SIZE + (RF_SEC_FIELDS - 1) * RF_PACK_SECTENT_SIZE + 4);
	q = malloc(n);
	struct {
		size_t off;
		uint32_t v;
		const char *want;
	} forged[] = {
	    /* the contains atom turned into a fieldref naming "cmd": no such field */
	    {atoms + RF_PACK_ATOM_SIZE + 4, RF_OP_FIELDREF, "field table lacks"},
	    /* the fieldref names a field of the other event */
	    {atoms + 8, string_named(pk, "DestinationHostname"), "field table lacks"},
	    /* the referenced field made an int */
	    {flds + fpu * RF_PACK_FIELD_SIZE + 8, RF_FT_INT, "not a string"},
	    /* a fieldref with the multiline flag */
	    {atoms + 4, RF_OP_FIELDREF | RF_ATOM_MULTILINE << 8, "multiline"},
	};
	for (size_t k = 0; k < sizeof(forged) / sizeof(forged[0]); k++) {
		struct rf_diag fd = {0};
		memcpy(q, p, n);
		wr32(q + forged[k].off, forged[k].v);
		assert_int_not_equal(try_load(q, n, &fd), 0);
		if (!strstr(fd.first, forged[k].want))
			fail_msg("forged %zu: '%s' lacks '%s'", k, fd.first, forged[k].want);
	}
	free(q);
	/* Against 1.0.0 (no ParentUser): the reference is named like any field read. */
	const char *root = getenv("RF_SOURCE_ROOT");
	char path[4096];
	uint8_t *mj;
	size_t mn;
	struct rf_manifest *m10 = NULL;
	snprintf(path, sizeof(path), "%s/manifests/ringfence-agent-1.0.0.json", root ? root : ".");
	assert_int_equal(rf_file_read(path, 1 << 20, &mj, &mn), 0);
	assert_int_equal(rf_manifest_parse(mj, mn, &m10, &d), 0);
	struct rf_diag vd = {0};
	assert_int_equal(rf_pack_check(pk, m10, &vd), -ENOEXEC);
	assert_non_null(strstr(vd.first, "field 'ParentUser'"));
	assert_non_null(strstr(vd.first, "is not supplied by ringfence-agent 1.0.0"));
	rf_manifest_free(m10);
	free(mj);
	rf_pack_free(pk);
	free(p);
}

static int parse(const char *js, struct rf_diag *d)
{
	static struct rf_event ev;
	size_t n = strlen(js);
	uint8_t *copy = malloc(n ? n : 1), *scratch = malloc(n ? n : 1);
	memcpy(copy, js, n);
	int r = rf_event_parse(copy, n, scratch, n, &ev, d);
	free(copy);
	free(scratch);
	return r;
}

static void test_event_parser(void **state)
{
	static struct rf_event ev;
	struct rf_diag d = {0};
	const char *ok = " {\"event\" : \"process_creation\", "
			 "\"CommandLine\":\"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\","
			 "\"ProcessId\":-12.5e3, \"x\":true, \"y\":null} ";
	uint8_t scratch[256];

	assert_int_equal(
	    rf_event_parse((const uint8_t *)ok, strlen(ok), scratch, sizeof(scratch), &ev, &d), 0);
	assert_int_equal(ev.type_len, 16);
	assert_int_equal(ev.n_fields, 3);
	assert_int_equal(ev.fields[0].value_len, 11);
	assert_memory_equal(ev.fields[0].value, "a\"b\\c\xc3\xa9\xf0\x9f\x98\x80", 11);
	assert_true(ev.fields[0].is_string);
	assert_int_equal(ev.fields[1].value_len, 7);
	assert_false(ev.fields[1].is_string);
	static const char *const bad[] = {
	    "",
	    "{",
	    "[]",
	    "{\"event\":\"a\"",
	    "{\"event\":\"a\",}",
	    "{\"event\":1}",
	    "{\"a\":\"b\"}",
	    "{\"event\":\"a\",\"X\":{}}",
	    "{\"event\":\"a\",\"X\":[1]}",
	    "{\"event\":\"a\",\"X\":\"1\",\"X\":\"2\"}",
	    "{\"event\":\"a\",\"event\":\"b\"}",
	    "{\"event\":\"a\",\"X\":\"\\x\"}",
	    "{\"event\":\"a\",\"X\":\"\\ud800\"}",
	    "{\"event\":\"a\",\"X\":\"\\udc00\"}",
	    "{\"event\":\"a\",\"X\":01}",
	    "{\"event\":\"a\",\"X\":1.}",
	    "{\"event\":\"a\",\"X\":tru}",
	    "{\"event\":\"a\"} x",
	    "{\"event\":\"a\",\"X\":\"a\nb\"}",
	    "{\"event\":\"a\",\"\":1}",
	    "{\"event\":\"a\",\"X\":-}",
	    "{\"event\":\"a\",\"X\":\"\\u12\"}",
	    "{\"event\":\"a\" \"X\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rf_diag dd = {0};
		int r = parse(bad[i], &dd);
		if (r >= 0 || dd.count == 0)
			fail_msg("accepted bad event %zu: %s", i, bad[i]);
	}
	/* The parser finds string ends 8 bytes at a time: put a quote, an escape, a control byte
	 * and high bytes at every position of the first chunks. */
	for (size_t at = 0; at < 20; at++) {
		char js[128], val[64];
		uint8_t sc[128];
		static struct rf_event e2;
		memset(val, 'a', sizeof(val));
		val[40] = '\0';
		val[at] = '\x01';
		snprintf(js, sizeof(js), "{\"event\":\"e\",\"X\":\"%s\"}", val);
		struct rf_diag dd = {0};
		assert_int_equal(
		    rf_event_parse((const uint8_t *)js, strlen(js), sc, sizeof(sc), &e2, &dd),
		    -EBADMSG);
		/* A high byte that is not UTF-8 is an error wherever the 8-byte scan meets it. */
		val[at] = '\xe9';
		val[at + 1] = '\xff';
		snprintf(js, sizeof(js), "{\"event\":\"e\",\"X\":\"%s\"}", val);
		assert_int_equal(
		    rf_event_parse((const uint8_t *)js, strlen(js), sc, sizeof(sc), &e2, &dd),
		    -EBADMSG);
		val[at] = '\xc3';
		val[at + 1] = '\xa9';
		snprintf(js, sizeof(js), "{\"event\":\"e\",\"X\":\"%.*s\\\"%s\"}", (int)at, val,
			 val + at);
		assert_int_equal(
		    rf_event_parse((const uint8_t *)js, strlen(js), sc, sizeof(sc), &e2, &dd), 0);
		assert_int_equal(e2.fields[0].value_len, 41);
		assert_int_equal(e2.fields[0].value[at], '"');
		assert_memory_equal(e2.fields[0].value + at + 1, val + at, 40 - at);
		assert_memory_equal(e2.fields[0].value, val, at);
	}
	/* Too many fields. */
	char *big = malloc(64 * 1024);
	int o = sprintf(big, "{\"event\":\"a\"");
	for (unsigned i = 0; i <= RF_EVENT_FIELDS_MAX; i++)
		o += sprintf(big + o, ",\"f%u\":1", i);
	strcpy(big + o, "}");
	assert_int_equal(parse(big, &d), -E2BIG);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_pack_loads),
	    cmocka_unit_test(test_verify_needs_a_manifest),
	    cmocka_unit_test(test_truncated_everywhere),
	    cmocka_unit_test(test_header_bytes_corrupted),
	    cmocka_unit_test(test_indices_out_of_range),
	    cmocka_unit_test(test_huge_counts_and_overlap),
	    cmocka_unit_test(test_bad_strings),
	    cmocka_unit_test(test_random_flips),
	    cmocka_unit_test(test_fieldref_forged),
	    cmocka_unit_test(test_event_parser),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
