/*
 * Tests of the verifier child (src/agent/verifier.h, issue 16): real packs are accepted or
 * rejected with the verifier's words; a verifier that hangs, spins, eats memory or crashes
 * (the test-only faults that stand in for a pack that does that) is a rejection that says so,
 * the call returns (a hang is killed at the deadline instead of blocking the caller), and no
 * child is left behind. No assertion is on wall-clock time: the deadlines only bound the waits.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "agent/verifier.h"
#include "content/ir.h"

#define A(f, t, o, fl, p)                                                                          \
	{                                                                                          \
		f, t, o, fl, (const uint8_t *)(p), sizeof(p) - 1                                   \
	}

struct packs {
	uint8_t *good, *field21;
	size_t ngood, nfield21;
};

static void build(const char *field, uint8_t **ret, size_t *ret_len)
{
	struct rf_ir_atom a[] = {A(field, RF_FT_STRING, RF_OP_ENDSWITH, 0, "\\cmd.exe")};
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0)};
	struct rf_ir_rule r = {"4e1c0a1b-0000-4000-8000-000000000016",
			       "Verifier Test",
			       "high",
			       "",
			       "process_creation",
			       a,
			       1,
			       code,
			       1};
	struct rf_pack_builder *b;
	struct rf_diag d = {0};

	assert_int_equal(rf_pack_builder_new(&b), 0);
	assert_int_equal(rf_pack_builder_add(b, &r, &d), 0);
	assert_int_equal(rf_pack_builder_finish(b, 1, ret, ret_len), 0);
	rf_pack_builder_free(b);
}

static int setup(void **state)
{
	struct packs *p = calloc(1, sizeof(*p));

	build("Image", &p->good, &p->ngood);
	build("ChannelField21", &p->field21, &p->nfield21);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct packs *p = *state;

	free(p->good);
	free(p->field21);
	free(p);
	return 0;
}

/* The child was reaped: nothing of it is left for anyone to wait for. */
static void assert_no_child(void)
{
	int st;

	assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void assert_contains(const char *s, const char *want)
{
	if (!strstr(s, want))
		fail_msg("'%s' does not contain '%s'", s, want);
}

static void test_real_packs(void **state)
{
	struct packs *p = *state;
	struct rf_verifier_limits l;
	char why[512];
	static const uint8_t junk[] = "not a pack at all";

	rf_verifier_limits_default(&l);
	assert_int_equal(rf_verifier_run(p->good, p->ngood, &l, why, sizeof(why)), 0);
	assert_no_child();
	assert_int_equal(rf_verifier_run(p->field21, p->nfield21, &l, why, sizeof(why)), -ENOEXEC);
	assert_contains(why, "ChannelField21");
	assert_no_child();
	assert_int_equal(rf_verifier_run(junk, sizeof(junk), &l, why, sizeof(why)), -ENOEXEC);
	assert_true(why[0] != 0);
	/* a message cut to a small buffer stays a NUL-terminated string */
	assert_int_equal(rf_verifier_run(p->field21, p->nfield21, &l, why, 8), -ENOEXEC);
	assert_int_equal(strlen(why), 7);
	assert_no_child();
}

/* Issue 16: a verifier that never returns must not block its caller (the supervisor, whose
 * check-ins stop meanwhile). Before the fix the caller sat in read() for ever. */
static void test_hang_is_killed_at_the_deadline(void **state)
{
	struct packs *p = *state;
	struct rf_verifier_limits l;
	char why[512];

	rf_verifier_limits_default(&l);
	l.fault = RF_VERIFIER_FAULT_HANG;
	l.timeout_ms = 300;
	assert_int_equal(rf_verifier_run(p->good, p->ngood, &l, why, sizeof(why)), -ENOEXEC);
	assert_string_equal(why, "the verifier timed out after 300 ms on this pack (killed)");
	assert_no_child();
	l.timeout_ms = 1000;
	assert_int_equal(rf_verifier_run(p->good, p->ngood, &l, why, sizeof(why)), -ENOEXEC);
	assert_string_equal(why, "the verifier timed out after 1 s on this pack (killed)");
	assert_no_child();
}

static void test_spin_hits_the_cpu_limit(void **state)
{
	struct packs *p = *state;
	struct rf_verifier_limits l;
	char why[512];

	rf_verifier_limits_default(&l);
	l.fault = RF_VERIFIER_FAULT_SPIN;
	l.cpu_s = 1;
	l.timeout_ms = 120000; /* far longer: the CPU limit must end it first */
	assert_int_equal(rf_verifier_run(p->good, p->ngood, &l, why, sizeof(why)), -ENOEXEC);
	assert_string_equal(why, "the verifier went over its CPU time (1 s) on this pack");
	assert_no_child();
}

static void test_memory_is_limited(void **state)
{
	struct packs *p = *state;
	struct rf_verifier_limits l;
	char why[512];

	rf_verifier_limits_default(&l);
	l.fault = RF_VERIFIER_FAULT_OOM;
	l.mem_bytes = 64u << 20; /* the fault maps up to twice this, then says the limit failed */
	l.timeout_ms = 120000;
	assert_int_equal(rf_verifier_run(p->good, p->ngood, &l, why, sizeof(why)), -ENOEXEC);
	assert_string_equal(why, "the verifier ran out of memory (limit 64 MiB) on this pack");
	assert_no_child();
}

static void test_crash_is_a_rejection(void **state)
{
	struct packs *p = *state;
	struct rf_verifier_limits l;
	char why[512];

	rf_verifier_limits_default(&l);
	l.fault = RF_VERIFIER_FAULT_CRASH;
	assert_int_equal(rf_verifier_run(p->good, p->ngood, &l, why, sizeof(why)), -ENOEXEC);
	assert_string_equal(why, "the verifier died (signal 11) on this pack");
	assert_no_child();
}

static void test_arguments(void **state)
{
	struct packs *p = *state;
	struct rf_verifier_limits l;
	enum rf_verifier_fault f = RF_VERIFIER_FAULT_NONE;
	char why[16];

	rf_verifier_limits_default(&l);
	assert_int_equal(rf_verifier_run(NULL, 0, &l, why, sizeof(why)), -EINVAL);
	assert_int_equal(rf_verifier_run(p->good, p->ngood, NULL, why, sizeof(why)), -EINVAL);
	assert_int_equal(rf_verifier_run(p->good, p->ngood, &l, why, 1), -EINVAL);
	l.timeout_ms = 0;
	assert_int_equal(rf_verifier_run(p->good, p->ngood, &l, why, sizeof(why)), -EINVAL);
	assert_int_equal(rf_verifier_fault_parse("hang", &f), 0);
	assert_int_equal(f, RF_VERIFIER_FAULT_HANG);
	assert_int_equal(rf_verifier_fault_parse("oom", &f), 0);
	assert_int_equal(f, RF_VERIFIER_FAULT_OOM);
	assert_int_equal(rf_verifier_fault_parse("hangs", &f), -EINVAL);
	assert_int_equal(rf_verifier_fault_parse("", &f), -EINVAL);
	assert_int_equal(f, RF_VERIFIER_FAULT_OOM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_real_packs),
	    cmocka_unit_test(test_hang_is_killed_at_the_deadline),
	    cmocka_unit_test(test_spin_hits_the_cpu_limit),
	    cmocka_unit_test(test_memory_is_limited),
	    cmocka_unit_test(test_crash_is_a_rejection),
	    cmocka_unit_test(test_arguments),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
