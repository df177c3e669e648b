/*
 * Canonical JSON vectors (securesystemslib flavour), byte for byte: sorted keys by UTF-8
 * bytes, no whitespace, only '"' and '\' escaped, control characters and non-ASCII raw,
 * integers only; and the inputs canonical JSON must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringfence/limits.h"
#include "trust/tuf.h"

static void expect_canon(const char *in, const char *want, size_t wantlen)
{
	struct rf_diag d = {0};
	char *out = NULL;
	size_t n = 0;
	int r = rf_tuf_canonicalize((const uint8_t *)in, strlen(in), &out, &n, &d);

	if (r != 0)
		fail_msg("canonicalize(%s) = %d (%s)", in, r, d.first);
	assert_int_equal(n, wantlen);
	assert_memory_equal(out, want, wantlen);
	free(out);
}

static void expect_reject(const char *in, size_t n, int code)
{
	struct rf_diag d = {0};
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(rf_tuf_canonicalize((const uint8_t *)in, n, &out, &len, &d), code);
	assert_null(out);
	assert_true(d.count >= 1 || code == -ENOMEM);
}

static void test_issue_vector(void **state)
{
	/* the issue's example: control characters raw, only quote and backslash escaped */
	static const char in[] = "{\"\":0,\"a\":{\"Z\":-3,\"\xc3\xa9\":\"\xc3\xbc\\u0001\\n\"},"
				 "\"b\":[1,true,null,\"q\\\"\\\\x\"]}";
	static const char want[] = "{\"\":0,\"a\":{\"Z\":-3,\"\xc3\xa9\":\"\xc3\xbc\x01\n\"},"
				   "\"b\":[1,true,null,\"q\\\"\\\\x\"]}";
	expect_canon(in, want, sizeof(want) - 1);
}

static void test_whitespace_and_order(void **state)
{
	static const char want[] = "{\"\":[],\"B\":{},\"a\":1,\"aa\":false,\"\xc3\xa9\":\"/\"}";
	expect_canon(" { \"aa\" : false ,\n\"\\u00e9\":\"\\/\", \"a\" :1, \"B\":{ }, \"\":[ ] } ",
		     want, sizeof(want) - 1);
}

static void test_integers_and_unicode(void **state)
{
	static const char want[] = "[-9223372036854775808,9223372036854775807,0,-1,"
				   "\"\xf0\x9f\x98\x80\x7f\t\"]";
	expect_canon(
	    "[-9223372036854775808, 9223372036854775807, 0, -1, \"\\ud83d\\ude00\x7f\\t\"]", want,
	    sizeof(want) - 1);
	expect_canon("\"x\"", "\"x\"", 3); /* scalars at top level are canonicalisable too */
}

static void test_metadata_shape(void **state)
{
	/* what a signed TUF object looks like after canonicalisation (python-tuf output) */
	static const char want[] =
	    "{\"_type\":\"timestamp\",\"expires\":\"2030-01-01T00:00:00Z\",\"meta\":{"
	    "\"snapshot.json\":{\"version\":1}},\"spec_version\":\"1.0.31\",\"version\":1}";
	expect_canon("{\"version\": 1, \"spec_version\": \"1.0.31\", \"meta\": {\"snapshot.json\": "
		     "{\"version\": 1}}, \"expires\": \"2030-01-01T00:00:00Z\", \"_type\": "
		     "\"timestamp\"}",
		     want, sizeof(want) - 1);
}

static void test_rejects(void **state)
{
	char deep[2 * (RF_TUF_JSON_DEPTH_MAX + 8) + 1];
	size_t i;

	expect_reject("1.5", 3, -EBADMSG);
	expect_reject("[1e3]", 5, -EBADMSG);
	expect_reject("{\"a\":1,\"a\":2}", 13, -EBADMSG); /* duplicate keys */
	expect_reject("[1,]", 4, -EBADMSG);
	expect_reject("\"\\u0000\"", 8, -EBADMSG);
	expect_reject("\"\xff\"", 3, -EBADMSG);	   /* invalid UTF-8 */
	expect_reject("{\"a\":1} x", 9, -EBADMSG); /* trailing garbage */
	expect_reject("{\"a\":1}\0", 8, -EBADMSG); /* NUL after the value */
	expect_reject("", 0, -EBADMSG);
	expect_reject("[99999999999999999999]", 22, -EBADMSG); /* integer overflow */
	for (i = 0; i < RF_TUF_JSON_DEPTH_MAX + 8; i++)
		deep[i] = '[';
	for (; i < 2 * (RF_TUF_JSON_DEPTH_MAX + 8); i++)
		deep[i] = ']';
	deep[i] = '\0';
	expect_reject(deep, strlen(deep), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_issue_vector),
	    cmocka_unit_test(test_whitespace_and_order),
	    cmocka_unit_test(test_integers_and_unicode),
	    cmocka_unit_test(test_metadata_shape),
	    cmocka_unit_test(test_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
