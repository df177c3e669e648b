/*
 * Tests of the common helpers: diagnostics, quoting, hex, UTF-8, the growable buffer (cap and
 * overflow), the hash, atomic files, bounded reads, number parsing. The HTTP call has its own
 * program (test_http.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
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

/* Encode cp in exactly len bytes (len may be longer than needed: an overlong form). */
static void utf8_encode(uint32_t cp, size_t len, uint8_t *out)
{
	static const uint8_t lead[5] = {0, 0, 0xc0, 0xe0, 0xf0};

	for (size_t k = len - 1; k > 0; k--, cp >>= 6)
		out[k] = (uint8_t)(0x80 | (cp & 0x3f));
	out[0] = len == 1 ? (uint8_t)cp : (uint8_t)(lead[len] | cp);
}

static void test_utf8_every_code_point(void **state)
{
	uint8_t b[4];
	const char *why;

	/* Every code point in its shortest form is valid except the surrogates; every longer form
	 * (overlong) and every truncation of it is not. */
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		size_t len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
		bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
		utf8_encode(cp, len, b);
		why = NULL;
		size_t got = rf_utf8_seq(b, len, &why);
		if (got != (surrogate ? 0 : len) ||
		    (surrogate && strcmp(why, "surrogate code point")))
			fail_msg("U+%04X: got %zu (%s)", (unsigned)cp, got, why ? why : "");
		for (size_t cut = 1; cut < len; cut++)
			if (rf_utf8_seq(b, cut, NULL) != 0)
				fail_msg("U+%04X cut to %zu bytes accepted", (unsigned)cp, cut);
		for (size_t longer = len + 1; longer <= 4; longer++) {
			utf8_encode(cp, longer, b);
			if (rf_utf8_seq(b, longer, &why) != 0 || strcmp(why, "overlong encoding"))
				fail_msg("U+%04X in %zu bytes accepted", (unsigned)cp, longer);
		}
	}
	utf8_encode(0x110000, 4, b);
	assert_int_equal(rf_utf8_seq(b, 4, &why), 0);
	assert_string_equal(why, "code point above U+10FFFF");
	assert_int_equal(rf_utf8_seq((const uint8_t *)"\xf8\x88\x80\x80\x80", 5, &why), 0);
	assert_string_equal(why, "invalid lead byte");
	assert_int_equal(rf_utf8_seq((const uint8_t *)"\x80", 1, &why), 0);
	assert_string_equal(why, "continuation byte without a lead byte");
	assert_int_equal(rf_utf8_seq((const uint8_t *)"\xe2\x82x", 3, &why), 0);
	assert_string_equal(why, "truncated sequence");
	assert_int_equal(rf_utf8_seq(b, 0, NULL), 0);
}

static void test_utf8_prefix(void **state)
{
	/* ASCII runs are skipped 8 bytes at a time: put the bad byte at every position. */
	uint8_t s[40];
	const char *why;

	for (size_t at = 0; at < 24; at++) {
		memset(s, 'a', sizeof(s));
		assert_int_equal(rf_utf8_prefix(s, sizeof(s), NULL), sizeof(s));
		s[at] = 0xc3;
		s[at + 1] = 0xa9;
		assert_int_equal(rf_utf8_prefix(s, sizeof(s), NULL), sizeof(s));
		s[at + 1] = 'x';
		assert_int_equal(rf_utf8_prefix(s, sizeof(s), &why), at);
		assert_string_equal(why, "truncated sequence");
		assert_int_equal(rf_utf8_prefix(s, at + 1, NULL), at); /* cut at the end */
	}
	assert_int_equal(rf_utf8_prefix(s, 0, NULL), 0);
	assert_int_equal(rf_utf8_prefix((const uint8_t *)"a\0b", 3, NULL), 3); /* NUL is UTF-8 */
}

static void test_buf_cap_and_overflow(void **state)
{
	struct rf_buf b = RF_BUF_INIT(10);
	uint8_t *p;
	size_t n;

	assert_int_equal(rf_buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(b.n, 10);
	assert_int_equal(b.p[10], 0);
	assert_true(b.cap <= 11); /* the allocation never exceeds the cap + NUL */
	assert_int_equal(rf_buf_append(&b, "x", 1), -E2BIG);
	assert_int_equal(rf_buf_printf(&b, "%s", "x"), -E2BIG);
	assert_int_equal(rf_buf_append(&b, "", 0), 0);
	assert_int_equal(b.n, 10); /* a refused append changes nothing */
	assert_string_equal((char *)b.p, "0123456789");
	rf_buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.max, 10);

	/* n + len overflowing size_t is -E2BIG before anything is touched, whatever the cap
	 * (SIZE_MAX means as much as memory allows, one byte kept for the NUL). */
	uint8_t small[4] = "abc";
	struct rf_buf f = {.p = small, .n = SIZE_MAX - 4, .cap = SIZE_MAX, .max = SIZE_MAX};
	assert_int_equal(rf_buf_append(&f, "0123456789", 10), -E2BIG);
	assert_int_equal(rf_buf_append(&f, "0123", 4), -E2BIG); /* n == SIZE_MAX: no NUL room */
	assert_true(f.n == SIZE_MAX - 4 && f.p == small && !strcmp((char *)small, "abc"));

	/* A zeroed buffer holds nothing; printf grows like append. */
	struct rf_buf z = {0};
	assert_int_equal(rf_buf_append(&z, "a", 1), -E2BIG);
	struct rf_buf t = RF_BUF_INIT(1 << 20);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(rf_buf_printf(&t, "%d,", i), 0);
	assert_int_equal(t.n, 3890);
	assert_memory_equal(t.p + t.n - 4, "999,", 5);
	assert_int_equal(rf_buf_steal(&t, &p, &n), 0);
	assert_int_equal(n, 3890);
	assert_null(t.p);
	free(p);
	/* An empty buffer is stolen as an allocated "". */
	assert_int_equal(rf_buf_steal(&t, &p, &n), 0);
	assert_int_equal(n, 0);
	assert_string_equal((char *)p, "");
	free(p);
}

static void test_fnv1a32(void **state)
{
	/* Reference values of FNV-1a 32 (Fowler, Noll, Vo; draft-eastlake-fnv test vectors). */
	assert_true(rf_fnv1a32("", 0, RF_FNV1A32_INIT) == 0x811c9dc5u);
	assert_true(rf_fnv1a32("a", 1, RF_FNV1A32_INIT) == 0xe40c292cu);
	assert_true(rf_fnv1a32("foobar", 6, RF_FNV1A32_INIT) == 0xbf9cf968u);
	/* Hashing in pieces is hashing the whole. */
	assert_true(rf_fnv1a32("bar", 3, rf_fnv1a32("foo", 3, RF_FNV1A32_INIT)) == 0xbf9cf968u);
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
	    cmocka_unit_test(test_utf8_every_code_point),
	    cmocka_unit_test(test_utf8_prefix),
	    cmocka_unit_test(test_buf_cap_and_overflow),
	    cmocka_unit_test(test_fnv1a32),
	    cmocka_unit_test(test_atomic_write_and_bounded_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
