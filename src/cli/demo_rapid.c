/*
 * `ringfence demo`, Act 4: rapid content with the real processes (issue 14). Rapid-response
 * content exists to reach every host within minutes of a new threat; that is why the content
 * of 2024-07-19 skipped canaries. The rapid policy keeps the canaries and gets its speed from the
 * ramp instead (docs/sim.md, "The rapid policy"). This act signs two releases with the rapid
 * schedule, scaled like Act 1's (rf__demo_rapid_ramp): a good one, timed from its creation to
 * 50, 90 and 100 % of the agents running it, and a bad one (valid content whose load crashes
 * the agent's evaluation process, through the agent's fault-injection knob), which the gate
 * must halt after the handful of crashes of the canary's first step while every agent heals
 * itself.
 *
 * Invariants: as the other acts, every number printed is read back from real state (each
 * agent's store and log, the server's release status), and which canary agents the first step
 * admits is computed with the rollout engine's own cohort buckets, as the server and the agents
 * compute it. Every wait is bounded.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/guard.h"
#include "cli/demo.h"
#include "common/util.h"
#include "rollout/rollout.h"

/* Per agent, when its store first showed the good rapid release running (monotonic ms; 0 not
 * yet). The wait's condition fills it in: one act at a time, so file scope is enough. */
static uint64_t *first_on_ms;

static bool runs(const struct demo *d, const struct astate *s, int k)
{
	char hex[65];

	if (!s->ok || !s->has_cur)
		return false;
	rf_hex_encode(s->cur, 32, hex);
	return !strcmp(hex, d->pk[k].hex);
}

/* Note the agents that run the release now; true once every agent runs it as its last known
 * good and the server counts them all healthy (rf__demo_everyone_on_good). */
static bool rollout_done(struct demo *d, struct pack *pk)
{
	uint64_t t = rf__demo_now_ms();

	for (unsigned i = 0; i < d->n; i++) {
		struct astate s;

		if (first_on_ms[i])
			continue;
		rf__demo_agent_read(d, &d->ag[i], &s);
		if (runs(d, &s, PACK_RAPID_GOOD))
			first_on_ms[i] = t;
	}
	return rf__demo_everyone_on_good(d, pk);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Seconds from t0 until `want` agents ran it (-1: never). sorted: first_on_ms sorted, 0s last. */
static double time_to(const uint64_t *sorted, unsigned n, unsigned want, uint64_t t0)
{
	if (want == 0 || want > n || !sorted[want - 1])
		return -1;
	return (double)(sorted[want - 1] - t0) / 1000.0;
}

static bool rapid_good(struct demo *d)
{
	struct pack *pk = &d->pk[PACK_RAPID_GOOD];
	uint64_t *sorted = NULL, t0;
	unsigned want[3] = {(d->n + 1) / 2, (d->n * 9 + 9) / 10, d->n}, on = 0;
	double tt[3];
	bool ok;

	rf__demo_say(d, "Publishing %s (the example rules, next version) with the rapid schedule:",
		     pk->target);
	first_on_ms = calloc(d->n, sizeof(*first_on_ms));
	if (!first_on_ms || rf__demo_publish(d, pk) < 0) {
		free(first_on_ms);
		first_on_ms = NULL;
		rf__demo_check(d, false, "publishing %s", pk->target);
		return false;
	}
	t0 = rf__demo_now_ms();
	/* What every agent must settle on now, and fall back to from the bad release. */
	d->good = PACK_RAPID_GOOD;
	rf__demo_say(d, "Release %lld created. Timing it from now to every agent:", pk->id);
	ok = rf__demo_wait_for(d, 120 + d->n / 2, pk, rollout_done);
	rf__demo_show_rings(d, pk);
	sorted = malloc(d->n * sizeof(*sorted));
	if (sorted) {
		for (unsigned i = 0; i < d->n; i++) {
			sorted[i] = first_on_ms[i] ? first_on_ms[i] : UINT64_MAX;
			on += first_on_ms[i] != 0;
		}
		qsort(sorted, d->n, sizeof(*sorted), cmp_u64);
		for (unsigned i = 0; i < d->n; i++)
			if (sorted[i] == UINT64_MAX)
				sorted[i] = 0;
	}
	for (int i = 0; i < 3; i++)
		tt[i] = sorted ? time_to(sorted, d->n, want[i], t0) : -1;
	free(sorted);
	free(first_on_ms);
	first_on_ms = NULL;
	printf("   time from the release's creation to agents running it (from their stores):\n"
	       "     50 %% (%u agents) %5.1f s    90 %% (%u) %5.1f s    100 %% (%u) %5.1f s\n",
	       want[0], tt[0], want[1], tt[1], want[2], tt[2]);
	printf("   (a real fleet under rapid: 99 %% of 8.5 M devices in 39 min, docs/sim.md; here\n"
	       "   each ring costs the agents' 5 s probation and a check-in: Act 1 took about as "
	       "long)\n");
	fflush(stdout);
	rf__demo_check(d, ok && on == d->n && tt[2] >= 0,
		       "every agent runs %s as its last known good, every ring complete: 100 %% of "
		       "the agents %.1f s after the release was created",
		       pk->target, tt[2]);
	rf__demo_check(d, pk->snapshots > 0 && pk->order_breaches == 0,
		       "in all %u snapshots of the server's status, no ring had devices on it "
		       "before the ring before it was complete (P6)",
		       pk->snapshots);
	return ok;
}

/* Every agent that loaded the bad release runs the good one again as its last known good, and
 * quarantined the bad one if it used up its attempts. */
static bool loaders_healed(struct demo *d, struct pack *pk)
{
	(void)pk;
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		struct astate s;

		if (a->offline || !rf__demo_loads_of(d, a, PACK_RAPID_BAD))
			continue;
		rf__demo_agent_read(d, a, &s);
		if (!rf__demo_on_good(d, &s) || (rf__demo_crashes_of(d, a, PACK_RAPID_BAD) >= 3 &&
						 !s.quarantined[PACK_RAPID_BAD]))
			return false;
	}
	return true;
}

bool rf__demo_act_rapid_bad(struct demo *d)
{
	struct pack *pk = &d->pk[PACK_RAPID_BAD];
	char ramp[160], words[160];
	unsigned first, admitted = 0, loaders = 0, crashed = 0, crashes = 0, healed = 0;
	unsigned quarantined = 0, exhausted = 0, on = 0, up = 0, beyond = 0;
	uint8_t key[16];
	json_t *rel;
	long long canary_devices;
	bool got;

	/* Which canary agents its first step admits: the cohort buckets the server and the agents
	 * compute (rollout engine), from the release id and the device id. */
	first = rf__demo_rapid_ramp(0, d->nring[0], ramp, sizeof(ramp), words, sizeof(words));
	rf_rollout_bucket_key(pk->release, strlen(pk->release), key);
	for (unsigned i = 0; i < d->n; i++)
		if (d->ag[i].ring == 0 && !d->ag[i].offline)
			admitted +=
			    rf_rollout_bucket(key, d->ag[i].id, strlen(d->ag[i].id)) < first * 100u;
	rf__demo_say(d, "%s is valid, signed content, but loading it crashes the agent's",
		     pk->target);
	rf__demo_say(d, "evaluation process (the fault-injection knob "
			"RINGFENCE_FAULT_WORKER_CRASH_ON_LOAD):");
	rf__demo_say(d,
		     "content that crashes what runs it. Its first canary step (%u %%) admits %u",
		     first, admitted);
	rf__demo_say(d, "of the %u canary agents (their cohort buckets for this release).",
		     d->nring[0]);
	if (rf__demo_publish(d, pk) < 0) {
		rf__demo_check(d, false, "publishing %s", pk->target);
		return false;
	}
	rf__demo_watch_gate(d, pk, 90, ". Watching the crashes and the gate:");
	rf__demo_say(d, "Waiting for every agent that crashed to heal itself:");
	bool healed_all = rf__demo_wait_for(d, 120, NULL, loaders_healed);
	rf__demo_nap(d, 2000 + 2000 * d->poll); /* every agent checks in again after the halt */
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		struct astate s;
		unsigned l = rf__demo_loads_of(d, a, PACK_RAPID_BAD);
		unsigned c = rf__demo_crashes_of(d, a, PACK_RAPID_BAD);

		rf__demo_agent_read(d, a, &s);
		if (!a->offline) {
			up++;
			on += rf__demo_on_good(d, &s);
		}
		if (!l)
			continue;
		loaders++;
		beyond += a->ring != 0;
		crashed += c > 0;
		crashes += c;
		healed += c > 0 && rf__demo_on_good(d, &s);
		quarantined += s.quarantined[PACK_RAPID_BAD] && rf__demo_on_good(d, &s);
		exhausted += c >= 3;
	}
	rel = rf__demo_release_get(d, pk);
	got = rel != NULL;
	canary_devices = rf__demo_ring_health(rel, 0, "devices");
	json_decref(rel);
	printf("   agents that crashed on it before the gate halted it: %u (%u crashes in all)\n",
	       crashed, crashes);
	fflush(stdout);
	rf__demo_check(d, crashed > 0 && loaders <= admitted && beyond == 0 && got,
		       "a handful crashed: %u agents, all in the canary's first step (%u admitted; "
		       "the server counts %lld canary devices on it), none beyond it",
		       crashed, admitted, canary_devices);
	rf__demo_check(d, healed_all && healed == crashed,
		       "every agent that crashed healed itself, no human (P4): %u of %u run %s as "
		       "their last known good again",
		       healed, crashed, d->pk[PACK_RAPID_GOOD].target);
	rf__demo_check(d, quarantined == exhausted,
		       "the %u that crashed 3 times quarantined it by hash (%u)", exhausted,
		       quarantined);
	rf__demo_check(d, on == up, "every agent runs %s: %u of %u", d->pk[PACK_RAPID_GOOD].target,
		       on, up);
	rf__demo_check_contained(d, PACK_RAPID_BAD);
	return true;
}

bool rf__demo_act_rapid(struct demo *d)
{
	char ramp[NRINGS][160], words[NRINGS][160];

	for (int i = 0; i < NRINGS; i++)
		rf__demo_rapid_ramp(i, d->nring[i], ramp[i], sizeof(ramp[i]), words[i],
				    sizeof(words[i]));
	rf__demo_act(d,
		     "Act 4: rapid content: every agent fast, a bad release stopped at a handful");
	rf__demo_say(d, "Rapid-response content must reach every host within the hour; the rapid "
			"policy does");
	rf__demo_say(d, "it with canaries (examples/schedules/rapid.json): canary 10%% then 100%%, "
			"broad 1 -> 10");
	rf__demo_say(d,
		     "-> 100%%, 5 minutes apart, each step after %d devices are healthy and 5 "
		     "minutes of bake.",
		     DEMO_RAPID_MIN_HEALTHY);
	rf__demo_say(d,
		     "Scaled as Act 1 (10 min of probation = 4 s), 5 minutes are %d s. The "
		     "demo's early and",
		     DEMO_RAPID_BAKE_S);
	rf__demo_say(d,
		     "broad rings both take the broad ramp, and no step is smaller than %d of "
		     "its agents:",
		     DEMO_RAPID_MIN_HEALTHY);
	rf__demo_say(d, "  canary %s; early %s; broad %s.", words[0], words[1], words[2]);
	return rapid_good(d);
}
