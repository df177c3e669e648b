/*
 * Tests of the refused-release set (src/agent/refused.h, issue 16): a server that offers more
 * distinct bad releases than the set holds never makes it read or write outside its ring (run
 * under ASan and UBSan), the count never exceeds the capacity, the newest refusals are always
 * remembered and the oldest forgotten first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/refused.h"

static void hash_of(unsigned i, uint8_t h[32])
{
	memset(h, 0xa5, 32);
	h[0] = (uint8_t)i;
	h[1] = (uint8_t)(i >> 8);
	h[31] = (uint8_t)(i * 7);
}

/* Issue 16: the 9th refusal made the first version read past its 8 slots. Offer four times the
 * capacity, asking after every refusal, as the supervisor does at every check-in. */
static void test_many_refusals_stay_bounded(void **unused)
{
	struct rf_refused *t = test_malloc(sizeof(*t)); /* on the heap: ASan sees its exact end */
	uint8_t h[32];
	const unsigned offers = 4 * RF_AGENT_REFUSED_MAX + 3;

	rf_refused_init(t);
	for (unsigned i = 0; i < offers; i++) {
		hash_of(i, h);
		assert_false(rf_refused_has(t, h));
		rf_refused_add(t, h);
		assert_true(rf_refused_has(t, h));
		rf_refused_add(t, h); /* the same offer again: not held twice */
		assert_int_equal(rf_refused_count(t),
				 i + 1 < RF_AGENT_REFUSED_MAX ? i + 1 : RF_AGENT_REFUSED_MAX);
		/* every one of the newest refusals (up to the capacity) is still known */
		for (unsigned j = i + 1 > RF_AGENT_REFUSED_MAX ? i + 1 - RF_AGENT_REFUSED_MAX : 0;
		     j <= i; j++) {
			hash_of(j, h);
			assert_true(rf_refused_has(t, h));
		}
	}
	/* the oldest were forgotten, first in first out */
	for (unsigned j = 0; j < offers - RF_AGENT_REFUSED_MAX; j++) {
		hash_of(j, h);
		assert_false(rf_refused_has(t, h));
	}
	test_free(t);
}

static void test_twelve_refusals_are_all_remembered(void **unused)
{
	struct rf_refused *t = test_malloc(sizeof(*t));
	uint8_t h[32];

	rf_refused_init(t);
	for (unsigned i = 0; i < 12; i++) {
		hash_of(i, h);
		rf_refused_add(t, h);
	}
	assert_int_equal(rf_refused_count(t), 12);
	for (unsigned i = 0; i < 12; i++) {
		hash_of(i, h);
		assert_true(rf_refused_has(t, h));
	}
	hash_of(12, h);
	assert_false(rf_refused_has(t, h));
	test_free(t);
}

static uint64_t wait_10s_times(void *ud, unsigned failures)
{
	return 10000u * failures;
}

/* A delivery ("transit") failure is retried, never a refusal: the release is only held back for
 * its backoff, reported again only when the reason changes or after RF_AGENT_BACKOFF_MAX_S, and
 * forgotten once delivered. */
static void test_transit_failure_is_retried_not_refused(void **unused)
{
	struct rf_transit *t = test_malloc(sizeof(*t));
	struct rf_refused *r = test_malloc(sizeof(*r));
	uint8_t h[32], other[32];
	unsigned k;
	uint64_t w, now = 1000;

	rf_transit_init(t);
	rf_refused_init(r);
	hash_of(1, h);
	hash_of(2, other);
	assert_false(rf_transit_waiting(t, h, now));
	/* first failure: reported, waits its backoff, and is not a refusal */
	assert_true(rf_transit_failed(t, h, "the server's hash is not the signed one", now,
				      wait_10s_times, NULL, &k, &w));
	assert_int_equal(k, 1);
	assert_int_equal(w, 10000);
	assert_false(rf_refused_has(r, h));
	assert_true(rf_transit_waiting(t, h, now + 9999));
	assert_false(rf_transit_waiting(t, h, now + 10000));
	assert_false(rf_transit_waiting(t, other, now + 1));
	/* again, same reason: not reported again, the wait grows */
	now += 10000;
	assert_false(rf_transit_failed(t, h, "the server's hash is not the signed one", now,
				       wait_10s_times, NULL, &k, &w));
	assert_int_equal(k, 2);
	assert_int_equal(w, 20000);
	assert_true(rf_transit_waiting(t, h, now + 19999));
	/* another reason: reported */
	now += 20000;
	assert_true(rf_transit_failed(t, h, "downloaded bytes do not match the signed hash", now,
				      wait_10s_times, NULL, &k, NULL));
	assert_int_equal(k, 3);
	/* the same reason long after the last report: reported again */
	now += (uint64_t)RF_AGENT_BACKOFF_MAX_S * 1000;
	assert_true(rf_transit_failed(t, h, "downloaded bytes do not match the signed hash", now,
				      wait_10s_times, NULL, &k, NULL));
	/* delivered: no wait, and the next failure is a first one again */
	rf_transit_forget(t, h);
	assert_false(rf_transit_waiting(t, h, now));
	assert_true(rf_transit_failed(t, h, "downloaded bytes do not match the signed hash",
				      now + 1, wait_10s_times, NULL, &k, NULL));
	assert_int_equal(k, 1);
	test_free(r);
	test_free(t);
}

/* The transit table is a bounded ring like the refused set: more distinct failing releases than
 * it holds never read or write outside it; the oldest is forgotten first. */
static void test_transit_stays_bounded(void **unused)
{
	struct rf_transit *t = test_malloc(sizeof(*t));
	uint8_t h[32];
	const unsigned n = 3 * RF_AGENT_REFUSED_MAX + 1;

	rf_transit_init(t);
	for (unsigned i = 0; i < n; i++) {
		hash_of(i, h);
		assert_true(rf_transit_failed(t, h, "x", 5, wait_10s_times, NULL, NULL, NULL));
		assert_true(rf_transit_waiting(t, h, 6));
	}
	hash_of(0, h);
	assert_false(rf_transit_waiting(t, h, 6));
	hash_of(n - 1, h);
	assert_true(rf_transit_waiting(t, h, 6));
	test_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_many_refusals_stay_bounded),
	    cmocka_unit_test(test_twelve_refusals_are_all_remembered),
	    cmocka_unit_test(test_transit_failure_is_retried_not_refused),
	    cmocka_unit_test(test_transit_stays_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
