/*
 * `ringfence demo`: the acts and the summary. Each act publishes one release, waits (bounded)
 * for what must happen, and checks every promise against real state: the server's release
 * status and each agent's store and log.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/guard.h"
#include "agent/store.h"
#include "cli/cli.h"
#include "cli/demo.h"
#include "common/http.h"
#include "common/opt.h"
#include "common/util.h"
#include "ringfence/limits.h"

/* ---- the acts -------------------------------------------------------------------------------- */

struct tally {
	unsigned exposed, loaded, crashed, healed, human;
};

/* deaths0/deaths1: each agent's crash count when pack k was published and when the next act
 * began, so "crashed" counts the host crashes while k was the newest release. */
static void tally_pack(struct demo *d, int k, const unsigned *deaths0, const unsigned *deaths1,
		       struct tally *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		struct astate s;
		bool exposed = rf__demo_saw(d, a, k), loaded = rf__demo_loads_of(d, a, k) > 0;
		unsigned now_deaths = deaths1 ? deaths1[i] : a->deaths - a->killed;
		/* a host that died; for a pack that crashes the agent's process, not the host, an
		 * agent that reported crashing on it */
		bool crashed =
		    loaded && (now_deaths > deaths0[i] ||
			       (d->pk[k].crashes_worker && rf__demo_crashes_of(d, a, k) > 0));

		if (!exposed)
			continue;
		rf__demo_agent_read(d, a, &s);
		t->exposed++;
		t->loaded += loaded;
		t->crashed += crashed;
		if (k == PACK_GOOD || k == PACK_RAPID_GOOD) {
			if (!rf__demo_on_good(d, &s) && !a->offline)
				t->human++;
			continue;
		}
		if (rf__demo_on_good(d, &s))
			t->healed += crashed;
		else if (!a->offline)
			t->human++;
	}
}

unsigned *rf__demo_snapshot_deaths(struct demo *d)
{
	unsigned *v = calloc(d->n ? d->n : 1, sizeof(*v));

	for (unsigned i = 0; v && i < d->n; i++)
		v[i] = d->ag[i].deaths - d->ag[i].killed;
	return v;
}

void rf__demo_check_contained(struct demo *d, int k)
{
	unsigned seen = 0, stored = 0, outside = 0;
	json_t *rel = rf__demo_release_get(d, &d->pk[k]);
	long long srv = 0;

	for (unsigned i = 0; i < d->n; i++) {
		struct astate s;
		if (d->ag[i].ring == 0)
			continue;
		outside++;
		rf__demo_agent_read(d, &d->ag[i], &s);
		seen += rf__demo_saw(d, &d->ag[i], k);
		stored += s.stored[k];
	}
	for (int r = 1; r < NRINGS; r++)
		srv += rf__demo_ring_health(rel, r, "devices") +
		       rf__demo_ring_health(rel, r, "rejections");
	rf__demo_check(
	    d, seen == 0 && stored == 0 && srv == 0 && rel,
	    "early and broad never saw %s: %u of %u agents there fetched it, %u stored it; the "
	    "server counts %lld devices on it outside canary",
	    d->pk[k].target, seen, outside, stored, srv);
	json_decref(rel);
}

/* kill -9 hosts in the middle of taking the release, chosen with the seed: agents of the ring
 * being rolled out whose store has the release on trial (loaded, in probation), else ones not
 * yet settled on it, else any. */
static void chaos_kill_agents(struct demo *d, int ring, unsigned how_many)
{
	unsigned done = 0;

	for (int pass = 0; pass < 3 && done < how_many; pass++)
		for (unsigned tries = 0; tries < 20u * d->n && done < how_many; tries++) {
			struct agent *a = &d->ag[(unsigned)rand_r(&d->seed) % d->n];
			struct astate s;

			if (a->pid <= 0 || a->offline)
				continue;
			rf__demo_agent_read(d, a, &s);
			if (pass == 0 &&
			    (a->ring != ring || !s.ok || s.mode != RF_GUARD_MODE_TRIAL))
				continue;
			if (pass == 1 && (a->ring != ring || rf__demo_on_good(d, &s)))
				continue;
			rf__demo_kill_group(a->pid, SIGKILL);
			waitpid(a->pid, NULL, 0);
			a->pid = 0;
			a->deaths++;
			a->killed++;
			a->restart_ms = rf__demo_now_ms() + 300; /* the host reboots */
			done++;
			rf__demo_say(
			    d,
			    "  chaos: kill -9 %s (%s, store mode %s) while the release installs; "
			    "it "
			    "reboots",
			    a->id, rf__demo_ring_names[a->ring],
			    s.ok ? rf_guard_mode_name(s.mode) : "new");
		}
}

bool rf__demo_act_good(struct demo *d)
{
	struct pack *pk = &d->pk[PACK_GOOD];
	unsigned tmo = 120 + d->n / 2;
	bool chaos_server = d->chaos, chaos_agents = d->chaos;

	rf__demo_act(d, "Act 1: a good release rolls through canary -> early -> broad");
	rf__demo_say(d,
		     "Publishing %s (14 example Sigma rules) with a demo-scaled signed schedule:",
		     pk->target);
	rf__demo_say(
	    d, "  canary 100%% at once; early %s; broad %s;",
	    d->nring[1] >= 20 ? "50% then 100% after 6 s" : "100% (a small ring: one step)",
	    d->nring[2] >= 20 ? "25/50/100% at 0/6/12 s" : "100% (a small ring: one step)");
	rf__demo_say(
	    d, "  each step also waits for 3 devices healthy after 4 s probation and a 5 s bake.");
	if (rf__demo_publish(d, pk) < 0) {
		rf__demo_check(d, false, "publishing %s", pk->target);
		return false;
	}
	rf__demo_say(
	    d, "Release %lld created. The server opens each ring only as the gates pass:", pk->id);
	uint64_t deadline = rf__demo_now_ms() + (uint64_t)tmo * 1000;
	while (!rf__demo_stop_signal && rf__demo_now_ms() < deadline) {
		json_t *rel;
		if (rf__demo_wait_for(d, 1, pk, rf__demo_everyone_on_good))
			break;
		if (!(chaos_server || chaos_agents) || !(rel = rf__demo_release_get(d, pk)))
			continue;
		bool early_taking = rf__demo_ring_health(rel, 1, "devices") > 0;
		json_decref(rel);
		if (chaos_agents && early_taking) {
			chaos_agents = false;
			/* Two: a host killed during trial is a crash of the release, and 3 crashed
			 * devices would rightly halt it (the gates' floor_devices and min_events).
			 */
			chaos_kill_agents(d, 1, 2);
		} else if (chaos_server && !chaos_agents) {
			chaos_server = false;
			rf__demo_say(d, "  chaos: kill -9 ringfenced in the middle of the rollout");
			d->server_expected_down = true;
			rf__demo_kill_group(d->server, SIGKILL);
			waitpid(d->server, NULL, 0);
			d->server = 0;
			rf__demo_nap(d, 1500);
			int r = -EIO;
			for (int i = 0; i < 20 && r < 0 && !rf__demo_stop_signal; i++) {
				r = rf__demo_server_start(d);
				if (r < 0)
					rf__demo_nap(d, 500);
			}
			d->server_expected_down = false;
			if (!rf__demo_check(d, r == 0,
					    "ringfenced restarted on the same port and database"))
				return false;
			rf__demo_say(
			    d,
			    "  ringfenced is back; the agents reconnect with randomized backoff");
		}
	}
	rf__demo_show_rings(d, pk);
	bool ok = rf__demo_everyone_on_good(d, pk);
	unsigned on = 0, up = 0;
	for (unsigned i = 0; i < d->n; i++) {
		struct astate s;
		if (d->ag[i].offline)
			continue;
		up++;
		rf__demo_agent_read(d, &d->ag[i], &s);
		on += rf__demo_on_good(d, &s);
	}
	json_t *rel = rf__demo_release_get(d, pk);
	long long healthy = 0;
	for (int r = 0; r < NRINGS; r++)
		healthy += rf__demo_ring_health(rel, r, "healthy");
	json_decref(rel);
	rf__demo_check(
	    d, ok, "every agent runs %s as its last known good (%u/%u stores), every ring complete",
	    pk->target, on, up);
	unsigned alerting = 0;
	for (unsigned i = 0; i < d->n; i++) {
		char path[DEMO_PATH];
		struct stat sb;
		rf__demo_agent_paths(&d->ag[i], "alerts.jsonl", path, sizeof(path));
		alerting += stat(path, &sb) == 0 && sb.st_size > 0;
	}
	rf__demo_check(d, alerting >= on,
		       "%u agents evaluate their event streams with it and raise alerts", alerting);
	rf__demo_check(
	    d, pk->snapshots > 0 && pk->order_breaches == 0,
	    "in all %u snapshots of the server's status, no ring had devices on it before the "
	    "ring before it was complete (P6)",
	    pk->snapshots);
	rf__demo_check(
	    d, healthy >= (long long)up,
	    "the server counts %lld devices healthy after probation on it (P7: installed is not "
	    "healthy until probation is survived)",
	    healthy);
	return ok;
}

bool rf__demo_act_291(struct demo *d)
{
	struct pack *pk = &d->pk[PACK_291];
	unsigned *d0 = rf__demo_snapshot_deaths(d);
	unsigned rejected = 0, offered = 0, bad = 0, stored = 0, loaded = 0, died = 0;

	rf__demo_act(d, "Act 2: 2024-07-19 replayed: a pack that needs a field no agent supplies");
	rf__demo_say(
	    d,
	    "%s has a rule on ChannelField21, a field no agent manifest has (the 21st-field bug).",
	    pk->target);
	rf__demo_say(
	    d, "It was compiled without --manifest and released against a validator's manifest that");
	rf__demo_say(
	    d, "wrongly lists the field, as the vendor's validator was broken that day. It is signed");
	rf__demo_say(d, "and published like any release.");
	if (!d0 || rf__demo_publish(d, pk) < 0) {
		free(d0);
		rf__demo_check(d, false, "publishing %s", pk->target);
		return false;
	}
	/* (A bound, not the expected time: about 2 s. 128 s was seen once on a loaded CI
	 * machine, cause not found; 180 s keeps that a slow halt rather than a broken one.) */
	rf__demo_watch_gate(d, pk, 180, "; canary may take it at once. Watching the gate:");
	rf__demo_nap(d, 2000 + 2000 * d->poll); /* let every agent check in again after the halt */
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		struct astate s;
		char n1[160];
		if (!rf__demo_saw(d, a, PACK_291))
			continue;
		offered++;
		rf__demo_pathf(n1, sizeof(n1), "rejected %s", pk->target);
		rejected +=
		    rf__demo_log_count(a, n1) > 0 && rf__demo_log_count(a, "ChannelField21") > 0;
		rf__demo_agent_read(d, a, &s);
		stored += s.stored[PACK_291];
		loaded += rf__demo_loads_of(d, a, PACK_291) > 0;
		bad += !rf__demo_on_good(d, &s);
	}
	for (unsigned i = 0; i < d->n; i++)
		died += d->ag[i].deaths - d->ag[i].killed - d0[i];
	free(d0);
	rf__demo_check(d, offered > 0 && rejected == offered,
		       "every agent offered it rejected it, naming ChannelField21 (P1): %u of %u",
		       rejected, offered);
	rf__demo_check(d, loaded == 0 && stored == 0,
		       "none loaded it or kept it in its store (%u, %u)", loaded, stored);
	rf__demo_check(
	    d, died == 0 && bad == 0,
	    "nothing crashed (%u deaths) and all %u still run the good release as before", died,
	    offered - bad);
	rf__demo_check_contained(d, PACK_291);
	return true;
}

bool rf__demo_act_bug(struct demo *d)
{
	struct pack *pk = &d->pk[PACK_BUG];
	unsigned *d0 = rf__demo_snapshot_deaths(d);
	struct agent *off = NULL;
	unsigned loaders = 0, maxloads = 0, healed = 0, died = 0, safe = 0, quarantined = 0;
	unsigned exhausted = 0;

	rf__demo_act(d, "Act 3: an unknown bug: a release that crashes the host on load");
	rf__demo_say(
	    d, "%s is valid, signed content, but every host carries a bug that kills it when this",
	    pk->target);
	rf__demo_say(
	    d, "pack loads (the agent's fault-injection knob RINGFENCE_FAULT_CRASH_ON_LOAD). The");
	rf__demo_say(
	    d, "orchestrator reboots a dead host after 0.3 s, as a machine would come back up.");
	if (d->chaos) {
		for (unsigned i = 0; i < d->n && !off; i++)
			if (d->ag[i].ring == 0 && d->ag[i].pid > 0)
				off = &d->ag[i];
		if (off) {
			off->offline = true;
			off->killed++; /* a power-off, not a crash: the reaper counts it as a death
					*/
			rf__demo_kill_group(off->pid, SIGTERM);
			rf__demo_say(
			    d, "  chaos: %s (canary) is switched off while the bad release is live",
			    off->id);
		}
	}
	if (!d0 || rf__demo_publish(d, pk) < 0) {
		free(d0);
		rf__demo_check(d, false, "publishing %s", pk->target);
		return false;
	}
	rf__demo_watch_gate(d, pk, 120, ". Watching canary crash and the gate:");
	rf__demo_say(d, "Waiting for every crashed canary host to heal itself:");
	bool healed_all = rf__demo_wait_for(d, 120, NULL, rf__demo_canary_healed);
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		struct astate s;
		unsigned l = rf__demo_loads_of(d, a, PACK_BUG);
		rf__demo_agent_read(d, a, &s);
		safe += s.ok && s.mode == RF_GUARD_MODE_SAFE;
		died += a->deaths - a->killed - d0[i];
		if (!l)
			continue;
		loaders++;
		maxloads = l > maxloads ? l : maxloads;
		healed += rf__demo_on_good(d, &s);
		quarantined += s.quarantined[PACK_BUG] && rf__demo_on_good(d, &s);
		exhausted += rf__demo_crashes_of(d, a, PACK_BUG) >= 3;
	}
	free(d0);
	rf__demo_check(d, loaders > 0 && died >= loaders,
		       "%u canary hosts loaded it and crashed (%u host crashes in all)", loaders,
		       died);
	rf__demo_check(d, healed_all && healed == loaders,
		       "all %u run the last known good again with no human (P4): %u", loaders,
		       healed);
	rf__demo_check(
	    d, quarantined == exhausted && (exhausted > 0 || loaders == 0),
	    "the %u that crashed 3 times quarantined it by hash (%u); %u left it on the halt's "
	    "rollback order before their 3 attempts were used up",
	    exhausted, quarantined, loaders - exhausted);
	rf__demo_check(d, maxloads <= 3, "no host loaded it more than the 3 attempts (most: %u)",
		       maxloads);
	rf__demo_check(d, safe == 0, "no host is left in safe mode (%u)", safe);
	rf__demo_check_contained(d, PACK_BUG);
	if (off) {
		rf__demo_say(d, "  chaos: %s comes back after the halt and checks in", off->id);
		off->offline = false;
		if (rf__demo_agent_start(d, off) == 0)
			rf__demo_nap(d, 3000 + 3000 * d->poll);
		struct astate s;
		rf__demo_agent_read(d, off, &s);
		rf__demo_check(
		    d,
		    !rf__demo_saw(d, off, PACK_BUG) && !s.stored[PACK_BUG] &&
			rf__demo_on_good(d, &s) && off->pid > 0,
		    "the host that was offline never takes the halted release and runs the good "
		    "one");
	}
	return true;
}

void rf__demo_summary(struct demo *d, unsigned *const deaths0[NPACKS])
{
	rf__demo_act(d,
		     "Summary (from the agents' stores and logs, and the server's release status)");
	bool good_halted = false;

	printf("  %-18s %-8s %8s %8s %8s %9s %9s %s\n", "release", "status", "exposed", "loaded",
	       "crashed", "healed", "human", "time to halt");
	for (int k = 0; k < NPACKS; k++) {
		struct pack *pk = &d->pk[k];
		struct tally t;
		json_t *rel;
		char tth[32] = "-";

		if (!pk->id || !deaths0[k])
			continue;
		tally_pack(d, k, deaths0[k], k + 1 < NPACKS ? deaths0[k + 1] : NULL, &t);
		rel = rf__demo_release_get(d, pk);
		if (rel && rf__demo_jint(rel, "halted_at"))
			rf__demo_pathf(tth, sizeof(tth), "%lld s",
				       rf__demo_jint(rel, "halted_at") -
					   rf__demo_jint(rel, "created_at"));
		printf("  %-18s %-8s %8u %8u %8u %9u %9u %s\n", pk->target,
		       rel ? rf__demo_jstr(rel, "status") : "?", t.exposed, t.loaded, t.crashed,
		       t.healed, t.human, tth);
		if (rel && rf__demo_jint(rel, "halted_at"))
			printf("  %-18s halted: %s\n", "", rf__demo_jstr(rel, "halt_reason"));
		if ((k == PACK_GOOD || k == PACK_RAPID_GOOD) && rel &&
		    strcmp(rf__demo_jstr(rel, "status"), "active"))
			good_halted = true;
		json_decref(rel);
	}
	printf(
	    "  exposed: agents that fetched it; crashed: hosts that died while it was the newest\n"
	    "  release, or agents whose process it crashed; healed: crashed, then back on the\n"
	    "  last known good with no human; human: exposed agents not running a good release\n"
	    "  by themselves.\n");
	printf("\n");
	rf__demo_check(
	    d, !good_halted,
	    "the good releases were not halted by the failures of the releases after them (they "
	    "are the last known good the crashed hosts went back to)");
}
