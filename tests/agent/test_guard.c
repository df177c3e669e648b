/*
 * Tests of the crash-loop guard (src/agent/guard.h).
 *
 * The model check explores every state reachable from a fresh agent with three pack hashes,
 * feeds every event to every state, and after every step also simulates a death of the whole
 * agent after each action (restart = BOOT from the last PERSISTed state). After each it checks
 * the invariants of guard.h: the LKG is never quarantined and only a trial that survived
 * probation becomes it, no quarantined hash is ever loaded, every LOAD is preceded by a PERSIST
 * that already counts it, every durable change is persisted, quarantine only grows, safe mode
 * still takes a fix. Scenario tests then follow the stories step by step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/guard.h"

#define NHASH 3
static uint8_t H[NHASH + 1][RF_GUARD_HASH_LEN];

static void make_hashes(void)
{
	for (unsigned i = 0; i <= NHASH; i++) {
		memset(H[i], 0, RF_GUARD_HASH_LEN);
		H[i][0] = (uint8_t)(0xa0 + i);
		H[i][31] = (uint8_t)i;
	}
}

static struct rf_guard_config cfg(void)
{
	struct rf_guard_config c = {.attempt_limit = 3, .probation_ms = 50, .probation_events = 10};
	return c;
}

/* ---- the event alphabet ---------------------------------------------------------------- */

#define NEV 13
static struct rf_guard_event event_n(unsigned i)
{
	struct rf_guard_event e;

	memset(&e, 0, sizeof(e));
	switch (i) {
	case 0:
		e.type = RF_GUARD_EV_BOOT;
		break;
	case 1:
	case 2:
	case 3:
		e.type = RF_GUARD_EV_CANDIDATE;
		memcpy(e.hash, H[i - 1], RF_GUARD_HASH_LEN);
		break;
	case 4:
		e.type = RF_GUARD_EV_REJECTED;
		memcpy(e.hash, H[NHASH], RF_GUARD_HASH_LEN);
		break;
	case 5:
		e.type = RF_GUARD_EV_LOADED;
		e.now_ms = 0;
		break;
	case 6:
		e.type = RF_GUARD_EV_LOAD_FAILED;
		break;
	case 7:
		e.type = RF_GUARD_EV_CRASH;
		break;
	case 8:
		e.type = RF_GUARD_EV_TICK;
		e.now_ms = 10;
		e.events = 0;
		break; /* too early */
	case 9:
		e.type = RF_GUARD_EV_TICK;
		e.now_ms = 100;
		e.events = 5;
		break; /* too few */
	case 10:
		e.type = RF_GUARD_EV_TICK;
		e.now_ms = 100;
		e.events = 100;
		break; /* survived */
	case 11:
		e.type = RF_GUARD_EV_ROLLBACK;
		break;
	default:
		e.type = RF_GUARD_EV_SHUTDOWN;
		break;
	}
	return e;
}

/* ---- visited set over the durable, bounded part of the state ---------------------------- */

static void key_of(const struct rf_guard_state *s, struct rf_guard_state *k)
{
	*k = *s;
	k->crashes = k->crashes > 2 ? 2 : k->crashes; /* unbounded counters: bucket them */
	k->rollbacks = k->rollbacks > 2 ? 2 : k->rollbacks;
	k->run_since_ms = 0;
	k->run_events = k->run_events > 0;
}

#define SETCAP (1u << 20)
struct vset {
	struct rf_guard_state *slot;
	uint8_t *used;
	size_t n;
};

static uint64_t hash_key(const struct rf_guard_state *k)
{
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 1469598103934665603u;

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 1099511628211u;
	return h;
}

/* true if newly added */
static bool vset_add(struct vset *v, const struct rf_guard_state *s)
{
	struct rf_guard_state k;
	size_t i;

	memset(&k, 0, sizeof(k));
	key_of(s, &k);
	for (i = hash_key(&k) & (SETCAP - 1);; i = (i + 1) & (SETCAP - 1)) {
		if (!v->used[i]) {
			v->used[i] = 1;
			v->slot[i] = k;
			v->n++;
			return true;
		}
		if (memcmp(&v->slot[i], &k, sizeof(k)) == 0)
			return false;
	}
}

/* ---- invariants ------------------------------------------------------------------------- */

static bool same_hash(const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, RF_GUARD_HASH_LEN) == 0;
}

/* old and new differ only in what need not survive a restart. */
static bool only_volatile_changed(const struct rf_guard_state *a, const struct rf_guard_state *b)
{
	struct rf_guard_state x = *a, y = *b;

	x.loaded = y.loaded = 0;
	x.run_since_ms = y.run_since_ms = 0;
	x.run_events = y.run_events = 0;
	return memcmp(&x, &y, sizeof(x)) == 0;
}

static unsigned n_loads, n_persists, n_checked;

static void check_step(const struct rf_guard_state *old, const struct rf_guard_event *ev,
		       const struct rf_guard_state *now, const struct rf_guard_actions *acts)
{
	struct rf_guard_config c = cfg();
	bool persisted = false;

	n_checked++;
	assert_true(rf_guard_state_valid(&c, now));
	/* I1 + "only probation makes an LKG" */
	if (now->has_lkg) {
		assert_false(rf_guard_is_quarantined(now, now->lkg));
		if (!old->has_lkg || !same_hash(old->lkg, now->lkg)) {
			assert_int_equal(ev->type, RF_GUARD_EV_TICK);
			assert_int_equal(old->mode, RF_GUARD_MODE_TRIAL);
			assert_true(same_hash(old->trial, now->lkg));
		}
	}
	/* quarantine only grows (no eviction with NHASH < RF_GUARD_QUARANTINE_MAX) */
	for (unsigned i = 0; i <= NHASH; i++)
		if (rf_guard_is_quarantined(old, H[i]))
			assert_true(rf_guard_is_quarantined(now, H[i]));
	for (unsigned i = 0; i < acts->n; i++) {
		const struct rf_guard_action *a = &acts->a[i];

		switch (a->type) {
		case RF_GUARD_ACT_PERSIST:
			persisted = true;
			n_persists++;
			break;
		case RF_GUARD_ACT_LOAD:
			n_loads++;
			/* I2 */
			assert_false(rf_guard_is_quarantined(old, a->hash));
			assert_false(rf_guard_is_quarantined(now, a->hash));
			/* I3: write-ahead, and the persisted state counts this very load */
			assert_true(persisted);
			assert_int_equal(a->mode, now->mode);
			if (a->mode == RF_GUARD_MODE_TRIAL) {
				assert_true(same_hash(a->hash, now->trial));
				assert_int_equal(a->attempt, now->trial_attempts);
			} else {
				assert_int_equal(a->mode, RF_GUARD_MODE_LKG);
				assert_true(same_hash(a->hash, now->lkg));
				assert_int_equal(a->attempt, now->lkg_attempts);
			}
			assert_true(a->attempt >= 1 && a->attempt <= c.attempt_limit);
			assert_int_equal(i, acts->n - 1); /* a LOAD is the last thing done */
			break;
		case RF_GUARD_ACT_SAFE_MODE:
			assert_int_equal(now->mode, RF_GUARD_MODE_SAFE);
			assert_int_equal(i, acts->n - 1);
			break;
		case RF_GUARD_ACT_QUARANTINE:
			assert_true(rf_guard_is_quarantined(now, a->hash));
			assert_false(persisted); /* recorded before the state that drops it */
			break;
		case RF_GUARD_ACT_REPORT:
			assert_true(a->report >= RF_GUARD_REPORT_INTENT &&
				    a->report <= RF_GUARD_REPORT_QUARANTINED);
			break;
		default:
			fail_msg("unknown action %d", a->type);
		}
	}
	/* every durable change is persisted */
	if (!persisted)
		assert_true(only_volatile_changed(old, now));
	/* safe mode and a fresh agent still take a fix (P5) */
	if (now->mode == RF_GUARD_MODE_SAFE)
		assert_false(now->has_lkg);
}

/* The disk image after the agent died after executing actions [0, k). */
static struct rf_guard_state disk_after(const struct rf_guard_state *old,
					const struct rf_guard_state *now,
					const struct rf_guard_actions *acts, unsigned k)
{
	for (unsigned i = 0; i < k && i < acts->n; i++)
		if (acts->a[i].type == RF_GUARD_ACT_PERSIST)
			return *now;
	return *old;
}

static void test_model_check(void **unused)
{
	struct rf_guard_config c = cfg();
	struct vset v = {calloc(SETCAP, sizeof(struct rf_guard_state)), calloc(SETCAP, 1), 0};
	size_t qcap = 1u << 20, qh = 0, qt = 0;
	struct rf_guard_state *queue = calloc(qcap, sizeof(*queue));
	struct rf_guard_state s0;
	unsigned modes_seen = 0, boots = 0;

	assert_non_null(v.slot);
	assert_non_null(v.used);
	assert_non_null(queue);
	make_hashes();
	rf_guard_init(&s0);
	vset_add(&v, &s0);
	queue[qt++] = s0;
	while (qh < qt) {
		struct rf_guard_state cur = queue[qh++];

		modes_seen |= 1u << cur.mode;
		for (unsigned e = 0; e < NEV; e++) {
			struct rf_guard_event ev = event_n(e);
			struct rf_guard_state next = cur;
			struct rf_guard_actions acts;

			assert_int_equal(rf_guard_step(&c, &next, &ev, &acts), 0);
			check_step(&cur, &ev, &next, &acts);
			if (vset_add(&v, &next)) {
				assert_true(qt < qcap);
				queue[qt++] = next;
			}
			/* the whole agent dies after each action: restart from disk */
			for (unsigned k = 0; k <= acts.n; k++) {
				struct rf_guard_state disk = disk_after(&cur, &next, &acts, k),
						      rb = disk;
				struct rf_guard_event boot = event_n(0);
				struct rf_guard_actions bacts;

				assert_int_equal(rf_guard_step(&c, &rb, &boot, &bacts), 0);
				check_step(&disk, &boot, &rb, &bacts);
				boots++;
				if (vset_add(&v, &rb)) {
					assert_true(qt < qcap);
					queue[qt++] = rb;
				}
			}
		}
	}
	print_message(
	    "guard model check: %zu states, %u steps checked, %u restarts, %u loads, %u persists\n",
	    v.n, n_checked, boots, n_loads, n_persists);
	assert_int_equal(modes_seen, 0xf); /* every mode reached */
	assert_true(v.n > 1000);
	free(queue);
	free(v.slot);
	free(v.used);
}

/* ---- scenarios -------------------------------------------------------------------------- */

struct agent {
	struct rf_guard_config cfg;
	struct rf_guard_state mem, disk;
	struct rf_guard_actions last;
	unsigned loads[NHASH + 1];
	unsigned reports[RF_GUARD_REPORT_QUARANTINED + 1];
	bool safe;
	int loaded; /* index of the loaded hash, -1 none */
};

static int hidx(const uint8_t *h)
{
	for (int i = 0; i <= NHASH; i++)
		if (same_hash(h, H[i]))
			return i;
	return -1;
}

static void feed(struct agent *a, struct rf_guard_event ev)
{
	struct rf_guard_state old = a->mem;

	assert_int_equal(rf_guard_step(&a->cfg, &a->mem, &ev, &a->last), 0);
	check_step(&old, &ev, &a->mem, &a->last);
	for (unsigned i = 0; i < a->last.n; i++) {
		const struct rf_guard_action *x = &a->last.a[i];
		if (x->type == RF_GUARD_ACT_PERSIST)
			a->disk = a->mem;
		if (x->type == RF_GUARD_ACT_LOAD) {
			a->loaded = hidx(x->hash);
			a->loads[a->loaded]++;
			a->safe = false;
		}
		if (x->type == RF_GUARD_ACT_SAFE_MODE) {
			a->safe = true;
			a->loaded = -1;
		}
		if (x->type == RF_GUARD_ACT_REPORT)
			a->reports[x->report]++;
	}
}

static struct rf_guard_event ev_of(enum rf_guard_event_type t, int h, uint64_t now, uint64_t events)
{
	struct rf_guard_event e;

	memset(&e, 0, sizeof(e));
	e.type = t;
	e.now_ms = now;
	e.events = events;
	if (h >= 0)
		memcpy(e.hash, H[h], RF_GUARD_HASH_LEN);
	return e;
}

/* kill -9 of the whole agent: memory is lost, the next start reads the disk. */
static void kill_and_boot(struct agent *a)
{
	a->mem = a->disk;
	a->loaded = -1;
	feed(a, ev_of(RF_GUARD_EV_BOOT, -1, 0, 0));
}

static void agent_init(struct agent *a)
{
	memset(a, 0, sizeof(*a));
	make_hashes();
	a->cfg = cfg();
	rf_guard_init(&a->mem);
	a->disk = a->mem;
	a->loaded = -1;
}

/* Install A and let it survive probation: A is the LKG. */
static void install_good(struct agent *a, int h)
{
	feed(a, ev_of(RF_GUARD_EV_CANDIDATE, h, 0, 0));
	assert_int_equal(a->loaded, h);
	feed(a, ev_of(RF_GUARD_EV_LOADED, -1, 1000, 0));
	feed(a, ev_of(RF_GUARD_EV_TICK, -1, 1100, 100));
	assert_int_equal(a->mem.mode, RF_GUARD_MODE_LKG);
	assert_true(same_hash(a->mem.lkg, H[h]));
}

static void test_boot_loop_quarantines_after_exactly_limit(void **unused)
{
	/* every combination of "worker crash" and "whole agent killed" for the 3 attempts */
	for (unsigned mask = 0; mask < 8; mask++) {
		struct agent a;

		agent_init(&a);
		install_good(&a, 0);
		memset(a.loads, 0, sizeof(a.loads));
		feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 1, 0, 0));
		assert_int_equal(a.reports[RF_GUARD_REPORT_INTENT], 2);
		for (unsigned i = 0; i < 3; i++) {
			assert_int_equal(a.loaded, 1);
			assert_int_equal(a.disk.trial_attempts, i + 1); /* write-ahead */
			if (mask & (1u << i))
				kill_and_boot(&a);
			else
				feed(&a, ev_of(RF_GUARD_EV_CRASH, -1, 0, 0));
		}
		assert_int_equal(a.loads[1], 3);
		assert_int_equal(a.loaded, 0); /* back on the LKG */
		assert_int_equal(a.mem.mode, RF_GUARD_MODE_LKG);
		assert_true(rf_guard_is_quarantined(&a.disk, H[1]));
		assert_int_equal(a.reports[RF_GUARD_REPORT_QUARANTINED], 1);
		assert_int_equal(a.reports[RF_GUARD_REPORT_ROLLED_BACK], 1);
		assert_int_equal(a.reports[RF_GUARD_REPORT_CRASHED], 3);
		/* the same bytes under any version: never loaded again */
		feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 1, 0, 0));
		assert_int_equal(a.loads[1], 3);
		assert_int_equal(a.reports[RF_GUARD_REPORT_REJECTED], 1);
		assert_int_equal(a.last.a[0].reason, RF_GUARD_REASON_QUARANTINED);
	}
}

static void test_lkg_failing_too_is_safe_mode_then_fix(void **unused)
{
	struct agent a;

	agent_init(&a);
	install_good(&a, 0);
	feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 1, 0, 0));
	for (unsigned i = 0; i < 3; i++)
		kill_and_boot(&a);
	assert_int_equal(a.loaded, 0);
	for (unsigned i = 0; i < 3; i++)
		kill_and_boot(&a); /* the LKG crashes too */
	assert_true(a.safe);
	assert_int_equal(a.mem.mode, RF_GUARD_MODE_SAFE);
	assert_false(a.mem.has_lkg);
	assert_false(rf_guard_is_quarantined(&a.mem, H[0])); /* given up, not condemned */
	assert_int_equal(a.loads[0], 1 + 3);
	kill_and_boot(&a); /* safe mode survives restarts */
	assert_true(a.safe);
	/* the old LKG offered again is a trial: its crash loop quarantines it */
	feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 0, 0, 0));
	assert_int_equal(a.loaded, 0);
	for (unsigned i = 0; i < 3; i++)
		kill_and_boot(&a);
	assert_true(a.safe);
	assert_true(rf_guard_is_quarantined(&a.mem, H[0]));
	assert_int_equal(a.loads[0], 1 + 3 + 3);
	/* the fix arrives and is taken */
	feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 2, 0, 0));
	assert_int_equal(a.loaded, 2);
	feed(&a, ev_of(RF_GUARD_EV_LOADED, -1, 0, 0));
	feed(&a, ev_of(RF_GUARD_EV_TICK, -1, 100, 100));
	assert_int_equal(a.mem.mode, RF_GUARD_MODE_LKG);
	assert_true(same_hash(a.mem.lkg, H[2]));
}

static void test_probation_needs_time_and_events(void **unused)
{
	struct agent a;

	agent_init(&a);
	feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 0, 0, 0));
	feed(&a, ev_of(RF_GUARD_EV_TICK, -1, 500, 500)); /* not loaded yet: nothing */
	assert_int_equal(a.mem.mode, RF_GUARD_MODE_TRIAL);
	feed(&a, ev_of(RF_GUARD_EV_LOADED, -1, 1000, 0));
	assert_int_equal(a.reports[RF_GUARD_REPORT_TRIAL_STARTED], 1);
	feed(&a, ev_of(RF_GUARD_EV_TICK, -1, 1020, 50)); /* events enough, time not */
	assert_int_equal(a.mem.mode, RF_GUARD_MODE_TRIAL);
	feed(&a, ev_of(RF_GUARD_EV_TICK, -1, 1060, 0)); /* now both */
	assert_int_equal(a.mem.mode, RF_GUARD_MODE_LKG);
	assert_int_equal(a.reports[RF_GUARD_REPORT_HEALTHY], 1);
	assert_int_equal(a.disk.mode, RF_GUARD_MODE_LKG); /* persisted */

	agent_init(&a);
	feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 0, 0, 0));
	feed(&a, ev_of(RF_GUARD_EV_LOADED, -1, 0, 0));
	feed(&a, ev_of(RF_GUARD_EV_TICK, -1, 100000, 9)); /* time enough, events not */
	assert_int_equal(a.mem.mode, RF_GUARD_MODE_TRIAL);
}

static void test_clean_restarts_do_not_count(void **unused)
{
	struct agent a;

	agent_init(&a);
	install_good(&a, 0);
	feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 1, 0, 0));
	for (unsigned i = 0; i < 10; i++) {
		feed(&a, ev_of(RF_GUARD_EV_LOADED, -1, 0, 0));
		feed(&a, ev_of(RF_GUARD_EV_SHUTDOWN, -1, 1, 0));
		kill_and_boot(&a);
		assert_int_equal(a.loaded, 1);
		assert_int_equal(a.mem.trial_attempts, 1);
	}
	assert_int_equal(a.reports[RF_GUARD_REPORT_CRASHED], 0);
	/* a stop during a load that never completed is not refunded */
	feed(&a, ev_of(RF_GUARD_EV_SHUTDOWN, -1, 1, 0));
	kill_and_boot(&a);
	assert_int_equal(a.mem.trial_attempts, 2);
}

static void test_rejected_and_rollback(void **unused)
{
	struct agent a;

	agent_init(&a);
	feed(&a, ev_of(RF_GUARD_EV_REJECTED, 1, 0, 0));
	assert_int_equal(a.last.n, 1);
	assert_int_equal(a.last.a[0].report, RF_GUARD_REPORT_REJECTED);
	assert_int_equal(a.last.a[0].reason, RF_GUARD_REASON_VERIFY);
	assert_int_equal(a.loads[1], 0);
	install_good(&a, 0);
	feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 1, 0, 0));
	feed(&a, ev_of(RF_GUARD_EV_ROLLBACK, -1, 0, 0));
	assert_int_equal(a.loaded, 0);
	assert_int_equal(a.mem.rollbacks, 1);
	assert_false(rf_guard_is_quarantined(&a.mem, H[1])); /* a halt is not a verdict */
	assert_int_equal(a.reports[RF_GUARD_REPORT_ROLLED_BACK], 1);
}

/* Issue 10: the server rolls back the release a device runs on trial, with no release to go
 * back to, and the device has no last known good. The order changes nothing, however often it
 * is repeated (no loop, no safe mode, no report, no write); the trial keeps running and its
 * crash counting still works; the fix, a newer release, is taken; a rollback in modes with
 * nothing to abandon changes nothing either. */
static void test_rollback_without_last_good_is_a_no_op(void **unused)
{
	struct agent a;
	struct rf_guard_state before;

	agent_init(&a);
	feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 1, 0, 0));
	feed(&a, ev_of(RF_GUARD_EV_LOADED, -1, 1000, 0));
	assert_int_equal(a.mem.mode, RF_GUARD_MODE_TRIAL);
	assert_false(a.mem.has_lkg);
	before = a.mem;
	for (unsigned i = 0; i < 5; i++) { /* one order per check-in */
		feed(&a, ev_of(RF_GUARD_EV_ROLLBACK, -1, 1000 + i, 0));
		assert_int_equal(a.last.n, 0);
		assert_memory_equal(&a.mem, &before, sizeof(before));
	}
	assert_false(a.safe);
	assert_int_equal(a.loaded, 1); /* what it ran, it runs */
	assert_int_equal(a.loads[1], 1);
	assert_int_equal(a.reports[RF_GUARD_REPORT_ROLLED_BACK], 0);
	/* the fix arrives: a newer release is taken as the new trial and can become the LKG */
	feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 2, 0, 0));
	assert_int_equal(a.loaded, 2);
	assert_int_equal(a.mem.mode, RF_GUARD_MODE_TRIAL);
	assert_true(same_hash(a.mem.trial, H[2]));
	feed(&a, ev_of(RF_GUARD_EV_LOADED, -1, 2000, 0));
	feed(&a, ev_of(RF_GUARD_EV_TICK, -1, 2100, 100));
	assert_int_equal(a.mem.mode, RF_GUARD_MODE_LKG);
	assert_true(same_hash(a.mem.lkg, H[2]));
	/* now running the LKG: a repeated rollback has nothing to abandon */
	before = a.mem;
	feed(&a, ev_of(RF_GUARD_EV_ROLLBACK, -1, 2200, 0));
	assert_int_equal(a.last.n, 0);
	assert_memory_equal(&a.mem, &before, sizeof(before));

	/* a trial rolled back with no LKG still quarantines itself if it crash-loops */
	agent_init(&a);
	feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 1, 0, 0));
	for (unsigned i = 0; i < 3; i++) {
		feed(&a, ev_of(RF_GUARD_EV_ROLLBACK, -1, 0, 0));
		assert_int_equal(a.last.n, 0);
		feed(&a, ev_of(RF_GUARD_EV_CRASH, -1, 0, 0));
	}
	assert_true(rf_guard_is_quarantined(&a.mem, H[1]));
	assert_true(a.safe); /* nothing else to run: the guard, not the rollback, says so */
	feed(&a, ev_of(RF_GUARD_EV_ROLLBACK, -1, 0, 0));
	assert_int_equal(a.last.n, 0);
	feed(&a, ev_of(RF_GUARD_EV_CANDIDATE, 2, 0, 0)); /* safe mode still takes the fix */
	assert_int_equal(a.loaded, 2);

	/* a fresh agent (nothing ever installed): a rollback changes nothing */
	agent_init(&a);
	feed(&a, ev_of(RF_GUARD_EV_BOOT, -1, 0, 0));
	before = a.mem;
	feed(&a, ev_of(RF_GUARD_EV_ROLLBACK, -1, 0, 0));
	assert_int_equal(a.last.n, 0);
	assert_memory_equal(&a.mem, &before, sizeof(before));
}

static void test_lkg_reboots_reset_its_attempts(void **unused)
{
	struct agent a;

	agent_init(&a);
	install_good(&a, 0);
	for (unsigned i = 0; i < 10; i++) { /* power cuts, each after a healthy run */
		kill_and_boot(&a);
		assert_int_equal(a.loaded, 0);
		feed(&a, ev_of(RF_GUARD_EV_LOADED, -1, 0, 0));
		feed(&a, ev_of(RF_GUARD_EV_TICK, -1, 100, 100));
		assert_int_equal(a.disk.lkg_attempts, 0);
	}
	assert_int_equal(a.mem.mode, RF_GUARD_MODE_LKG);
}

static void test_quarantine_ring_evicts_oldest(void **unused)
{
	struct rf_guard_state s;
	struct rf_guard_config c = cfg();
	uint8_t h[RF_GUARD_HASH_LEN] = {0};

	rf_guard_init(&s);
	for (unsigned i = 0; i < RF_GUARD_QUARANTINE_MAX + 2; i++) {
		struct rf_guard_event ev = {.type = RF_GUARD_EV_CANDIDATE};
		struct rf_guard_actions acts;

		h[0] = (uint8_t)i;
		memcpy(ev.hash, h, sizeof(h));
		assert_int_equal(rf_guard_step(&c, &s, &ev, &acts), 0);
		for (unsigned k = 0; k < 3; k++) {
			struct rf_guard_event crash = {.type = RF_GUARD_EV_CRASH};
			assert_int_equal(rf_guard_step(&c, &s, &crash, &acts), 0);
		}
		assert_true(rf_guard_is_quarantined(&s, h));
		assert_int_equal(s.mode, RF_GUARD_MODE_SAFE);
	}
	assert_int_equal(s.nquarantine, RF_GUARD_QUARANTINE_MAX);
	h[0] = 0;
	assert_false(rf_guard_is_quarantined(&s, h)); /* the store's full list covers it */
	assert_true(rf_guard_state_valid(&c, &s));
}

static void test_bad_input_changes_nothing(void **unused)
{
	struct rf_guard_config c = cfg(), zero = cfg();
	struct rf_guard_state s, before;
	struct rf_guard_actions acts = {.n = 77};
	struct rf_guard_event ev = {.type = RF_GUARD_EV_LAST + 1};

	rf_guard_init(&s);
	before = s;
	assert_int_equal(rf_guard_step(&c, &s, &ev, &acts), -EINVAL);
	ev.type = 0;
	assert_int_equal(rf_guard_step(&c, &s, &ev, &acts), -EINVAL);
	ev.type = RF_GUARD_EV_BOOT;
	zero.attempt_limit = 0;
	assert_int_equal(rf_guard_step(&zero, &s, &ev, &acts), -EINVAL);
	assert_int_equal(rf_guard_step(NULL, &s, &ev, &acts), -EINVAL);
	s.mode = 9;
	assert_int_equal(rf_guard_step(&c, &s, &ev, &acts), -EINVAL);
	s = before;
	s.mode = RF_GUARD_MODE_TRIAL; /* trial mode without a trial */
	assert_int_equal(rf_guard_step(&c, &s, &ev, &acts), -EINVAL);
	s = before;
	s.has_lkg = 1; /* an LKG in EMPTY mode */
	assert_false(rf_guard_state_valid(&c, &s));
	assert_int_equal(acts.n, 77);
	assert_string_equal(rf_guard_report_name(RF_GUARD_REPORT_ROLLED_BACK), "rolled_back");
	assert_string_equal(rf_guard_mode_name(RF_GUARD_MODE_SAFE), "safe");
	assert_string_equal(rf_guard_mode_name((enum rf_guard_mode)42), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_model_check),
	    cmocka_unit_test(test_boot_loop_quarantines_after_exactly_limit),
	    cmocka_unit_test(test_lkg_failing_too_is_safe_mode_then_fix),
	    cmocka_unit_test(test_probation_needs_time_and_events),
	    cmocka_unit_test(test_clean_restarts_do_not_count),
	    cmocka_unit_test(test_rejected_and_rollback),
	    cmocka_unit_test(test_rollback_without_last_good_is_a_no_op),
	    cmocka_unit_test(test_lkg_reboots_reset_its_attempts),
	    cmocka_unit_test(test_quarantine_ring_evicts_oldest),
	    cmocka_unit_test(test_bad_input_changes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
