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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_many_refusals_stay_bounded),
	    cmocka_unit_test(test_twelve_refusals_are_all_remembered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
