/* Tests of the common helpers: diagnostics, quoting, hex, atomic files, number parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"

static void collect(void *ud, int code, const char *msg)
{
	int *n = ud;
	(*n)++;
	(void)code;
	(void)msg;
}

static void test_diag_counts_and_keeps_first(void **state)
{
	int emitted = 0;
	struct rf_diag d = {.emit = collect, .userdata = &emitted};

	assert_int_equal(rf_diag_report(&d, -EBADMSG, "first %d", 1), -EBADMSG);
	assert_int_equal(rf_diag_report(&d, -E2BIG, "second"), -E2BIG);
	assert_int_equal(d.count, 2);
	assert_int_equal(emitted, 2);
	assert_int_equal(d.first_code, -EBADMSG);
	assert_string_equal(d.first, "first 1");
	assert_int_equal(rf_diag_report(NULL, -EIO, "nowhere"), -EIO);
}

static void test_quote_escapes_and_truncates(void **state)
{
	char out[16];

	assert_string_equal(rf_diag_quote(out, sizeof(out), "a\x01\\b", 4), "a\\x01\\\\b");
	assert_string_equal(rf_diag_quote(out, sizeof(out), "0123456789abcdefghij", 20), "0123456789ab...");
	assert_true(strlen(out) < sizeof(out));
}

static void test_hex_roundtrip(void **state)
{
	uint8_t in[3] = {0x00, 0xab, 0xff}, back[3];
	char hex[7];

	rf_hex_encode(in, 3, hex);
	assert_string_equal(hex, "00abff");
	assert_int_equal(rf_hex_decode("00ABff", 6, back, 3), 0);
	assert_memory_equal(in, back, 3);
	assert_int_equal(rf_hex_decode("00abf", 5, back, 3), -EBADMSG);
	assert_int_equal(rf_hex_decode("00abfg", 6, back, 3), -EBADMSG);
}

static void test_sha256_known_vector(void **state)
{
	char hex[65];

	rf_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_parse_u64(void **state)
{
	uint64_t v = 7;

	assert_int_equal(rf_parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(rf_parse_u64("18446744073709551616", &v), -ERANGE);
	assert_int_equal(rf_parse_u64("", &v), -EINVAL);
	assert_int_equal(rf_parse_u64("-1", &v), -EINVAL);
	assert_int_equal(rf_parse_u64("1 ", &v), -EINVAL);
}

static void test_atomic_write_and_bounded_read(void **state)
{
	char dir[] = "/tmp/rf-test-common-XXXXXX", path[64];
	uint8_t *buf = NULL;
	size_t n = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(rf_file_write_atomic(path, "old", 3, 0600), 0);
	assert_int_equal(rf_file_write_atomic(path, "newer", 5, 0600), 0);
	assert_int_equal(rf_file_read(path, 100, &buf, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "newer", 5);
	assert_int_equal(buf[5], 0);
	free(buf);
	buf = NULL;
	assert_int_equal(rf_file_read(path, 4, &buf, &n), -E2BIG);
	assert_null(buf);
	assert_int_equal(rf_file_read(dir, 100, &buf, &n), -EISDIR);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diag_counts_and_keeps_first),
		cmocka_unit_test(test_quote_escapes_and_truncates),
		cmocka_unit_test(test_hex_roundtrip),
		cmocka_unit_test(test_sha256_known_vector),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_atomic_write_and_bounded_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
