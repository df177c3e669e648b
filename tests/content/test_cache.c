/*
 * Tests of the matcher cache (rf_engine_load_cached, src/content/cache.c) through its public API,
 * on packs compiled from Sigma rules by the real compiler: the first load compiles and writes the
 * cache, the next loads from it and matches exactly the same events; a cache that is damaged,
 * for another pack, forged for this pack's hash with another pack's databases, or unwritable is
 * never used (the engine compiles, and is right); a pack that does not verify is refused whatever
 * the cache holds.
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

#include "common/util.h"
#include "content/ir.h"
#include "content/sigma.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"
#include "testmanifest.h"

static struct rf_manifest *m11, *m10;
static char dir[] = "/tmp/rf-test-cache-XXXXXX";

#define RULE(id, det)                                                                              \
	"title: T " id "\nid: " id "\nlogsource: {category: process_creation}\ndetection:\n" det

/* A pack of the given Sigma rules (NULL-terminated). */
static uint8_t *pack_of(const char *const *rules, size_t *len)
{
	struct rf_pack_builder *b = NULL;
	uint8_t *p = NULL;

	assert_int_equal(rf_pack_builder_new(&b), 0);
	for (size_t i = 0; rules[i]; i++) {
		struct rf_sigma_rule *r = NULL;
		struct rf_diag d = {0};
		if (rf_sigma_compile((const uint8_t *)rules[i], strlen(rules[i]), "t.yml", m11, &r,
				     &d) != 0)
			fail_msg("compile: %s", d.first);
		assert_int_equal(rf_pack_builder_add(b, rf_sigma_rule_ir(r), &d), 0);
		rf_sigma_rule_free(r);
	}
	assert_int_equal(rf_pack_builder_finish(b, 1, &p, len), 0);
	rf_pack_builder_free(b);
	return p;
}

static const char *const rules_a[] = {
    RULE("a1", "  s:\n    CommandLine|contains|all: [' -enc ', 'powershell']\n  condition: s\n"),
    RULE("a2", "  s:\n    Image|endswith: '\\certutil.exe'\n    CommandLine|re: 'url[a-z]+'\n"
	       "  condition: s\n"),
    RULE("a3", "  k:\n    - mimikatz\n  condition: k\n"),
    NULL,
};
static const char *const rules_b[] = {
    RULE("b1", "  s:\n    CommandLine|contains: whoami\n  condition: s\n"),
    RULE("b2", "  s:\n    Image|endswith: '\\certutil.exe'\n  condition: s\n"),
    RULE("b3", "  k:\n    - kiwi\n  condition: k\n"),
    NULL,
};

static const char *const events[] = {
    "{\"event\":\"process_creation\",\"CommandLine\":\"powershell -nop -enc AAAA\"}",
    "{\"event\":\"process_creation\",\"Image\":\"C:\\\\w\\\\certutil.exe\",\"CommandLine\":"
    "\"certutil -urlcache -f x\"}",
    "{\"event\":\"process_creation\",\"Image\":\"C:\\\\w\\\\certutil.exe\",\"CommandLine\":"
    "\"certutil -URLcache\"}",
    "{\"event\":\"process_creation\",\"CommandLine\":\"whoami /all\",\"User\":\"mimikatz\"}",
    "{\"event\":\"process_creation\",\"CommandLine\":\"kiwi\"}",
};

static void count(void *ud, size_t idx, const struct rf_rule_info *r)
{
	char *out = ud;
	size_t l = strlen(out);

	snprintf(out + l, 256 - l, "%s%s", l ? "," : "", r->id);
}

/* The rule ids each event fires, "|"-separated per event. */
static void fired(const struct rf_engine *e, char *out, size_t cap)
{
	struct rf_engine_scratch *s = NULL;
	static struct rf_event ev;
	uint8_t scratch[4096];

	out[0] = '\0';
	assert_int_equal(rf_engine_scratch_new(e, &s), 0);
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		char one[256] = "";
		struct rf_diag d = {0};
		assert_int_equal(rf_event_parse((const uint8_t *)events[i], strlen(events[i]),
						scratch, sizeof(scratch), &ev, &d),
				 0);
		assert_true(rf_engine_eval(e, &ev, s, count, one, NULL) >= 0);
		size_t l = strlen(out);
		snprintf(out + l, cap - l, "%s%s", i ? "|" : "", one);
	}
	rf_engine_scratch_free(s);
}

/* Load p through the cache at path; returns what *ret_cache said, writes the firing pattern. */
static int load(const uint8_t *p, size_t n, const char *path, char *got, size_t cap)
{
	struct rf_engine *e = NULL;
	struct rf_diag d = {0};
	int c = 99;

	if (rf_engine_load_cached(p, n, m11, path, &e, &c, &d) != 0)
		fail_msg("load: %s", d.first);
	fired(e, got, cap);
	rf_engine_free(e);
	return c;
}

static void test_cache(void **state)
{
	char pa[512], pb[512], want_a[1024], want_b[1024], got[1024];
	size_t la, lb, n;
	uint8_t *a = pack_of(rules_a, &la), *b = pack_of(rules_b, &lb), *buf;
	struct rf_engine *e = NULL;
	struct rf_diag d = {0};

	snprintf(pa, sizeof(pa), "%s/a.hsdb", dir);
	snprintf(pb, sizeof(pb), "%s/b.hsdb", dir);
	/* Without a cache: what each pack must fire. */
	assert_int_equal(rf_engine_load(a, la, m11, &e, &d), 0);
	fired(e, want_a, sizeof(want_a));
	rf_engine_free(e);
	assert_int_equal(rf_engine_load(b, lb, m11, &e, &d), 0);
	fired(e, want_b, sizeof(want_b));
	rf_engine_free(e);
	assert_string_equal(want_a, "a1|a2||a3|");
	assert_string_equal(want_b, "|b2|b2|b1|b3");

	/* First load compiles and writes; the second loads from the cache, same answers. */
	assert_int_equal(load(a, la, pa, got, sizeof(got)), 0);
	assert_string_equal(got, want_a);
	assert_int_equal(access(pa, F_OK), 0);
	assert_int_equal(load(a, la, pa, got, sizeof(got)), 1);
	assert_string_equal(got, want_a);

	/* Another pack's cache under this pack's name: keyed by the pack's hash, not used. */
	assert_int_equal(load(b, lb, pb, got, sizeof(got)), 0);
	assert_int_equal(rf_file_read(pb, RF_ENGINE_CACHE_MAX, &buf, &n), 0);
	assert_int_equal(rf_file_write_atomic(pa, buf, n, 0600), 0);
	assert_int_equal(load(a, la, pa, got, sizeof(got)), 0);
	assert_string_equal(got, want_a);
	assert_int_equal(load(a, la, pa, got, sizeof(got)), 1); /* rewritten for a */

	/* Forged: b's databases under a's hash with a correct checksum. The digest of each
	 * database's expressions does not match a's, so they are not used. */
	uint8_t ha[32];
	rf_sha256(a, la, ha);
	memcpy(buf + 8, ha, 32);
	rf_sha256(buf + 80, n - 80, buf + 48);
	assert_int_equal(rf_file_write_atomic(pa, buf, n, 0600), 0);
	assert_int_equal(load(a, la, pa, got, sizeof(got)), 0);
	assert_string_equal(got, want_a);
	free(buf);

	/* Damaged: a flipped byte anywhere (checksum), a truncation, a wrong version. */
	assert_int_equal(rf_file_read(pa, RF_ENGINE_CACHE_MAX, &buf, &n), 0);
	size_t at[] = {0, 4, 8, 40, 48, 80, 84, 100, n / 2, n - 1};
	for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
		buf[at[k]] ^= 0x20;
		assert_int_equal(rf_file_write_atomic(pa, buf, n, 0600), 0);
		buf[at[k]] ^= 0x20;
		assert_int_equal(load(a, la, pa, got, sizeof(got)), 0);
		assert_string_equal(got, want_a);
	}
	assert_int_equal(rf_file_write_atomic(pa, buf, n / 3, 0600), 0);
	assert_int_equal(load(a, la, pa, got, sizeof(got)), 0);
	assert_string_equal(got, want_a);
	free(buf);

	/* Unwritable cache: the engine is built all the same and says why. */
	char nodir[600];
	int c = 99;
	snprintf(nodir, sizeof(nodir), "%s/missing/a.hsdb", dir);
	assert_int_equal(rf_engine_load_cached(a, la, m11, nodir, &e, &c, &d), 0);
	assert_true(c < 0);
	rf_engine_free(e);

	/* A pack the manifest refuses is refused with a valid cache beside it: pack a uses only
	 * 1.0.0 fields, so take a rule on ParentUser (1.1.0 only) and load it for 1.0.0. */
	static const char *const rules_c[] = {
	    RULE("c1", "  s:\n    ParentUser|contains: SYSTEM\n  condition: s\n"), NULL};
	uint8_t *cp;
	size_t lc;
	char pc[512];
	cp = pack_of(rules_c, &lc);
	snprintf(pc, sizeof(pc), "%s/c.hsdb", dir);
	assert_int_equal(rf_engine_load_cached(cp, lc, m11, pc, &e, &c, &d), 0);
	assert_int_equal(c, 0);
	rf_engine_free(e);
	struct rf_diag d10 = {0};
	assert_int_equal(rf_engine_load_cached(cp, lc, m10, pc, &e, &c, &d10), -ENOEXEC);
	assert_non_null(strstr(d10.first, "ParentUser"));
	free(cp);
	unlink(pc);

	unlink(pa);
	unlink(pb);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cache),
	};
	int rc;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	m11 = rf_test_manifest("ringfence-agent-1.1.0.json");
	m10 = rf_test_manifest("ringfence-agent-1.0.0.json");
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rf_manifest_free(m11);
	rf_manifest_free(m10);
	rmdir(dir);
	return rc;
}
