/*
 * Tests of the check-in JSON scanner (src/server/jscan.h): token structure, string decoding
 * (escapes, surrogate pairs, UTF-8), integers, a table of malformed documents, and a
 * differential test against jansson (the parser every other endpoint uses) over tens of
 * thousands of deterministic mutations of real check-in bodies: both must accept or reject the
 * same documents, except where jansson refuses a number too large for its types.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "server/jscan.h"

static int scan(const char *s, struct rf_jtok *t, size_t max, size_t *nt)
{
	size_t off;
	return rf_jscan((const uint8_t *)s, strlen(s), t, max, 8, nt, &off);
}

static void test_tokens_and_lookup(void **state)
{
	const char *doc = " {\"a\": [1, 2, {\"x\": null}], \"b\": \"h\\u00e9\\ud83d\\ude00\\n\", "
			  "\"c\": {\"d\": true, \"e\": false}, \"n\": 18446744073709551615} ";
	const uint8_t *p = (const uint8_t *)doc;
	struct rf_jtok t[64];
	size_t nt;
	char out[64];
	uint64_t v;

	assert_int_equal(scan(doc, t, 64, &nt), 0);
	assert_int_equal(t[0].type, RF_J_OBJ);
	assert_int_equal(t[0].size, 4);
	assert_int_equal(t[0].next, nt);
	int a = rf_jget(p, t, 0, "a");
	assert_int_equal(t[a].type, RF_J_ARR);
	assert_int_equal(t[a].size, 3);
	int b = rf_jget(p, t, 0, "b");
	assert_int_equal(rf_jstr(p, &t[b], out, sizeof(out)), 8);
	assert_string_equal(out, "h\xc3\xa9\xf0\x9f\x98\x80\n");
	assert_int_equal(rf_jstr(p, &t[b], out, 5), -E2BIG);
	int c = rf_jget(p, t, 0, "c");
	assert_int_equal(t[rf_jget(p, t, c, "d")].type, RF_J_TRUE);
	assert_int_equal(t[rf_jget(p, t, c, "e")].type, RF_J_FALSE);
	assert_int_equal(rf_jget(p, t, c, "a"), -1); /* members of c only */
	assert_int_equal(rf_jget(p, t, a, "x"), -1); /* not an object */
	assert_int_equal(rf_ju64(p, &t[rf_jget(p, t, 0, "n")], &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(scan("{\"n\":18446744073709551616}", t, 64, &nt), 0);
	assert_int_equal(rf_ju64((const uint8_t *)"{\"n\":18446744073709551616}", &t[2], &v),
			 -ERANGE);
	assert_int_equal(scan("{\"n\":-1}", t, 64, &nt), 0);
	assert_int_equal(rf_ju64((const uint8_t *)"{\"n\":-1}", &t[2], &v), -EINVAL);
	assert_int_equal(scan("{\"n\":1.5}", t, 64, &nt), 0);
	assert_int_equal(rf_ju64((const uint8_t *)"{\"n\":1.5}", &t[2], &v), -EINVAL);
}

static void test_rejects(void **state)
{
	static const char *const bad[] = {
	    "",
	    " ",
	    "{",
	    "}",
	    "{\"a\"}",
	    "{\"a\":}",
	    "{\"a\":1,}",
	    "[1,]",
	    "[,1]",
	    "{a:1}",
	    "{\"a\":1 \"b\":2}",
	    "{\"a\":1}x",
	    "{\"a\":1}{}",
	    "tru",
	    "nul",
	    "01",
	    "1.",
	    ".5",
	    "-",
	    "1e",
	    "1e+",
	    "\"abc",
	    "\"a\\x\"",
	    "\"\\u12\"",
	    "\"\\u0000\"",
	    "\"\\ud800\"",
	    "\"\\udc00\"",
	    "\"\\ud800\\u0041\"",
	    "\"a\x01\"",
	    "\"\xff\"",
	    "\"\xc0\xaf\"",
	    "\"\xed\xa0\x80\"",
	    "\"\xf4\x90\x80\x80\"",
	    "{\"a\":1,\"a\":2}",
	    "{\"a\":{\"b\":1,\"b\":1}}",
	    "[1 2]",
	    "{\"a\"::1}",
	};
	struct rf_jtok t[64];
	size_t nt, off;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = rf_jscan((const uint8_t *)bad[i], strlen(bad[i]), t, 64, 8, &nt, &off);
		if (r != -EBADMSG)
			fail_msg("case %zu '%s': got %d, want -EBADMSG", i, bad[i], r);
		assert_true(off <= strlen(bad[i]));
	}
	/* Depth and token limits. */
	assert_int_equal(rf_jscan((const uint8_t *)"[[[[[[[[[]]]]]]]]]", 18, t, 64, 8, &nt, &off),
			 -ELOOP);
	assert_int_equal(rf_jscan((const uint8_t *)"[[[[[[[[]]]]]]]]", 16, t, 64, 8, &nt, &off), 0);
	assert_int_equal(rf_jscan((const uint8_t *)"[1,2,3,4]", 9, t, 4, 8, &nt, &off), -E2BIG);
	assert_int_equal(rf_jscan((const uint8_t *)"[1,2,3,4]", 9, t, 5, 8, &nt, &off), 0);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Does jansson refuse this only because a number does not fit its types? */
static bool jansson_number_limit(const json_error_t *e)
{
	return strstr(e->text, "too big") || strstr(e->text, "overflow");
}

static void test_differential_vs_jansson(void **state)
{
	static const char *const seeds[] = {
	    "{\"device_id\":\"host-1\",\"ring\":\"canary\",\"agent_version\":\"0.1.0\","
	    "\"manifest_hash\":"
	    "\"abababababababababababababababababababababababababababababababab\","
	    "\"state\":{\"current\":{\"target\":\"packs/r-1.rfp\",\"sha256\":\"00\"},"
	    "\"last_good\":null,\"trial\":{\"target\":\"t\",\"sha256\":\"11\",\"attempts\":2},"
	    "\"quarantine\":[\"aa\",\"bb\"],\"safe_mode\":false},"
	    "\"health\":{\"crashes\":0,\"rollbacks\":1,\"events\":123456,\"alerts\":-0.5e3}}",
	    "{\"a\":\"\\u00e9\\ud83d\\ude00\\\"\\\\\\/"
	    "\\b\\f\\n\\r\\t\",\"b\":[true,false,null,[],{}]}",
	};
	const char alphabet[] =
	    "{}[]:,\"\\ u0123456789abcdefABCDEF.eE+-tnrfl\x01\x7f\xc3\xa9\xed\xa0\xff";
	struct rf_jtok t[512];
	unsigned agree = 0, skipped = 0;

	for (int iter = 0; iter < 40000; iter++) {
		const char *seed = seeds[iter % 2];
		size_t n = strlen(seed);
		char buf[1024];
		memcpy(buf, seed, n);
		int edits = 1 + (int)(rnd() % 4);
		for (int k = 0; k < edits; k++) {
			size_t pos = (size_t)(rnd() % (n ? n : 1));
			switch (rnd() % 3) {
			case 0: /* replace */
				buf[pos] = alphabet[rnd() % (sizeof(alphabet) - 1)];
				break;
			case 1: /* delete */
				if (n > 1) {
					memmove(buf + pos, buf + pos + 1, n - pos - 1);
					n--;
				}
				break;
			default: /* insert */
				if (n + 1 < sizeof(buf)) {
					memmove(buf + pos + 1, buf + pos, n - pos);
					buf[pos] = alphabet[rnd() % (sizeof(alphabet) - 1)];
					n++;
				}
			}
		}
		size_t nt, off;
		json_error_t je;
		int r = rf_jscan((const uint8_t *)buf, n, t, 512, 8, &nt, &off);
		json_t *j = json_loadb(buf, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
		bool ours = r == 0, theirs = j != NULL;
		json_decref(j);
		if (ours && !theirs && jansson_number_limit(&je)) {
			skipped++;
			continue;
		}
		if (ours != theirs)
			fail_msg("iteration %d: jscan %s (%d at %zu), jansson %s (%s) on: %.*s",
				 iter, ours ? "accepts" : "rejects", r, off,
				 theirs ? "accepts" : "rejects", theirs ? "" : je.text, (int)n,
				 buf);
		agree++;
	}
	print_message("jscan and jansson agree on %u mutated documents (%u skipped: jansson number "
		      "limits)\n",
		      agree, skipped);
	assert_true(agree > 39000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tokens_and_lookup),
	    cmocka_unit_test(test_rejects),
	    cmocka_unit_test(test_differential_vs_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
