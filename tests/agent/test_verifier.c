/*
 * Tests of the verifier child (src/agent/verifier.h, issue 16): real packs are accepted or
 * rejected with the verifier's words; a verifier that hangs, spins, eats memory or crashes
 * (the test-only faults that stand in for a pack that does that) is a rejection that says so,
 * the call returns (a hang is killed at the deadline instead of blocking the caller), and no
 * child is left behind. No assertion is on wall-clock time: the deadlines only bound the waits.
 *
 * The manifest a run verifies against follows its event source (src/agent/manifests.h): for
 * every two manifests the build embeds, a pack that needs a field one supplies and the other
 * does not is accepted against the first and refused against the second, and `--events proc`
 * picks the Linux manifest, so a proc agent refuses a rule on a Windows-only field.
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

#include <jansson.h>

#include "agent/manifests.h"
#include "agent/verifier.h"
#include "content/ir.h"
#include "ringfence/content.h"

/* The general manifest (ringfence-agent-1.1.0), which the packs of most tests are checked
 * against. */
static const uint8_t *gm;
static size_t gml;

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

	gm = rf_content_builtin_manifest(&gml);

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
	assert_int_equal(rf_verifier_run(p->good, p->ngood, gm, gml, &l, why, sizeof(why)), 0);
	assert_no_child();
	assert_int_equal(rf_verifier_run(p->field21, p->nfield21, gm, gml, &l, why, sizeof(why)),
			 -ENOEXEC);
	assert_contains(why, "ChannelField21");
	assert_no_child();
	assert_int_equal(rf_verifier_run(junk, sizeof(junk), gm, gml, &l, why, sizeof(why)),
			 -ENOEXEC);
	assert_true(why[0] != 0);
	/* a message cut to a small buffer stays a NUL-terminated string */
	assert_int_equal(rf_verifier_run(p->field21, p->nfield21, gm, gml, &l, why, 8), -ENOEXEC);
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
	assert_int_equal(rf_verifier_run(p->good, p->ngood, gm, gml, &l, why, sizeof(why)),
			 -ENOEXEC);
	assert_string_equal(why, "the verifier timed out after 300 ms on this pack (killed)");
	assert_no_child();
	l.timeout_ms = 1000;
	assert_int_equal(rf_verifier_run(p->good, p->ngood, gm, gml, &l, why, sizeof(why)),
			 -ENOEXEC);
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
	assert_int_equal(rf_verifier_run(p->good, p->ngood, gm, gml, &l, why, sizeof(why)),
			 -ENOEXEC);
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
	assert_int_equal(rf_verifier_run(p->good, p->ngood, gm, gml, &l, why, sizeof(why)),
			 -ENOEXEC);
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
	assert_int_equal(rf_verifier_run(p->good, p->ngood, gm, gml, &l, why, sizeof(why)),
			 -ENOEXEC);
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
	assert_int_equal(rf_verifier_run(NULL, 0, gm, gml, &l, why, sizeof(why)), -EINVAL);
	assert_int_equal(rf_verifier_run(p->good, p->ngood, NULL, 0, &l, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(rf_verifier_run(p->good, p->ngood, gm, gml, NULL, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(rf_verifier_run(p->good, p->ngood, gm, gml, &l, why, 1), -EINVAL);
	l.timeout_ms = 0;
	assert_int_equal(rf_verifier_run(p->good, p->ngood, gm, gml, &l, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(rf_verifier_fault_parse("hang", &f), 0);
	assert_int_equal(f, RF_VERIFIER_FAULT_HANG);
	assert_int_equal(rf_verifier_fault_parse("oom", &f), 0);
	assert_int_equal(f, RF_VERIFIER_FAULT_OOM);
	assert_int_equal(rf_verifier_fault_parse("hangs", &f), -EINVAL);
	assert_int_equal(rf_verifier_fault_parse("", &f), -EINVAL);
	assert_int_equal(f, RF_VERIFIER_FAULT_OOM);
}

/* A pack of one rule on event `event` that reads `field` (of `type`) with RF_OP_EXISTS. */
static void build_on(const char *event, const char *field, enum rf_ftype type, uint8_t **ret,
		     size_t *ret_len)
{
	struct rf_ir_atom a[] = {{field, type, RF_OP_EXISTS, 0, NULL, 0}};
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0)};
	struct rf_ir_rule r = {"4e1c0a1b-0000-4000-8000-000000000017",
			       "Manifest Choice Test",
			       "high",
			       "",
			       event,
			       a,
			       1,
			       code,
			       1};
	struct rf_pack_builder *b;
	struct rf_diag d = {0};

	assert_int_equal(rf_pack_builder_new(&b), 0);
	if (rf_pack_builder_add(b, &r, &d) < 0)
		fail_msg("pack on %s.%s: %s", event, field, d.first);
	assert_int_equal(rf_pack_builder_finish(b, 1, ret, ret_len), 0);
	rf_pack_builder_free(b);
}

static json_t *load(const struct rf_agent_manifest *m)
{
	size_t n;
	const uint8_t *p = m->bytes(&n);
	json_t *j = json_loadb((const char *)p, n, 0, NULL);

	assert_non_null(j);
	return j;
}

/* Whether manifest j supplies field f of event ev with type ty. */
static bool supplies(json_t *j, const char *ev, const char *f, const char *ty)
{
	size_t i, k;
	json_t *e, *x;

	json_array_foreach(json_object_get(j, "events"), i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "name")), ev))
			continue;
		json_array_foreach(
		    json_object_get(e, "fields"), k,
		    x) if (!strcmp(json_string_value(json_object_get(x, "name")), f) &&
			   !strcmp(json_string_value(json_object_get(x, "type")), ty)) return true;
	}
	return false;
}

static bool has_event(json_t *j, const char *ev)
{
	size_t i;
	json_t *e;

	json_array_foreach(
	    json_object_get(j, "events"), i,
	    e) if (!strcmp(json_string_value(json_object_get(e, "name")), ev)) return true;
	return false;
}

/* For every ordered pair (A, B) of embedded manifests, every field A supplies and B does not:
 * a pack that needs it is accepted against A and refused against B, the field (or the event,
 * when B has none) named. Returns
 * how many such fields A has over B. */
static unsigned check_pair(const struct rf_agent_manifest *A, const struct rf_agent_manifest *B)
{
	json_t *ja = load(A), *jb = load(B), *e, *x;
	size_t i, k, na, nb;
	const uint8_t *ma = A->bytes(&na), *mb = B->bytes(&nb);
	unsigned only = 0;
	struct rf_verifier_limits l;

	rf_verifier_limits_default(&l);
	json_array_foreach(json_object_get(ja, "events"), i, e)
	{
		const char *ev = json_string_value(json_object_get(e, "name"));
		json_array_foreach(json_object_get(e, "fields"), k, x)
		{
			const char *f = json_string_value(json_object_get(x, "name"));
			const char *ty = json_string_value(json_object_get(x, "type"));
			enum rf_ftype t = !strcmp(ty, "int")  ? RF_FT_INT
					  : !strcmp(ty, "ip") ? RF_FT_IP
							      : RF_FT_STRING;
			uint8_t *pk;
			size_t npk;
			char why[512];

			if (supplies(jb, ev, f, ty))
				continue;
			only++;
			build_on(ev, f, t, &pk, &npk);
			if (rf_verifier_run(pk, npk, ma, na, &l, why, sizeof(why)) != 0)
				fail_msg("%s.%s refused by %s, which supplies it: %s", ev, f,
					 A->name, why);
			assert_int_equal(rf_verifier_run(pk, npk, mb, nb, &l, why, sizeof(why)),
					 -ENOEXEC);
			/* the field named, or the event when B has none of it */
			assert_contains(why, has_event(jb, ev) ? f : ev);
			free(pk);
		}
	}
	json_decref(ja);
	json_decref(jb);
	return only;
}

static void test_manifests_pairwise(void **state)
{
	const struct rf_agent_manifest *a, *b, *proc, *general;
	unsigned n = 0;

	(void)state;
	for (size_t i = 0; (a = rf_agent_manifest_at(i)); i++, n++)
		for (size_t j = 0; (b = rf_agent_manifest_at(j)); j++)
			if (i != j)
				(void)check_pair(a, b);
	assert_true(n >= 2);
	/* The case this exists for: the proc source's manifest refuses a rule on a field only
	 * Windows events carry (FileVersion is Sysmon's), which the general one accepts. */
	assert_int_equal(rf_agent_manifest_choose(NULL, "proc", &proc), 0);
	assert_int_equal(rf_agent_manifest_choose(NULL, NULL, &general), 0);
	assert_true(check_pair(general, proc) > 0);
	{
		json_t *jp = load(proc), *jg = load(general);
		assert_false(supplies(jp, "process_creation", "FileVersion", "string"));
		assert_true(supplies(jg, "process_creation", "FileVersion", "string"));
		json_decref(jp);
		json_decref(jg);
	}
	/* And the audit source's: linux_auditd is Linux-only, so a pack on it is accepted by the
	 * audit manifest and refused by the general one. */
	{
		const struct rf_agent_manifest *audit;
		assert_int_equal(rf_agent_manifest_choose(NULL, "audit", &audit), 0);
		assert_true(check_pair(audit, general) > 0);
		json_t *ja = load(audit), *jg = load(general);
		assert_true(supplies(ja, "linux_auditd", "exe", "string"));
		assert_false(supplies(jg, "linux_auditd", "exe", "string"));
		json_decref(ja);
		json_decref(jg);
	}
}

/* The choice: --events proc -> the Linux manifest, anything else -> the general one, and an
 * explicit name wins over the source. */
static void test_manifest_choice(void **state)
{
	const struct rf_agent_manifest *m;

	(void)state;
	assert_int_equal(rf_agent_manifest_choose(NULL, "proc", &m), 0);
	assert_string_equal(m->name, "ringfence-agent-linux-1.2.0");
	assert_int_equal(rf_agent_manifest_choose(NULL, "audit", &m), 0);
	assert_string_equal(m->name, "ringfence-agent-linux-1.3.0");
	assert_int_equal(rf_agent_manifest_choose(NULL, "proc,audit", &m), 0);
	assert_string_equal(m->name, "ringfence-agent-linux-1.3.0");
	assert_int_equal(rf_agent_manifest_choose(NULL, NULL, &m), 0);
	assert_string_equal(m->name, "ringfence-agent-1.1.0");
	assert_int_equal(rf_agent_manifest_choose(NULL, "/var/log/events.jsonl", &m), 0);
	assert_string_equal(m->name, "ringfence-agent-1.1.0");
	assert_int_equal(rf_agent_manifest_choose(NULL, "./proc", &m), 0); /* a file named proc */
	assert_string_equal(m->name, "ringfence-agent-1.1.0");
	assert_int_equal(rf_agent_manifest_choose("ringfence-agent-1.1.0", "proc", &m), 0);
	assert_string_equal(m->name, "ringfence-agent-1.1.0");
	assert_int_equal(rf_agent_manifest_choose("ringfence-agent-linux-1.2.0", NULL, &m), 0);
	assert_string_equal(m->name, "ringfence-agent-linux-1.2.0");
	m = NULL;
	assert_int_equal(rf_agent_manifest_choose("ringfence-agent-9.9.9", "proc", &m), -ENOENT);
	assert_null(m);
	/* The general one is the build's own (rf_content_builtin_manifest). */
	assert_int_equal(rf_agent_manifest_choose(NULL, NULL, &m), 0);
	{
		size_t n;
		const uint8_t *p = m->bytes(&n);
		assert_ptr_equal(p, gm);
		assert_int_equal(n, gml);
	}
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
	    cmocka_unit_test(test_manifest_choice),
	    cmocka_unit_test(test_manifests_pairwise),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
