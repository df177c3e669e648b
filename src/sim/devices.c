/*
 * The fleet simulator's devices (sim-internal.h): a compact struct per device (timers, flags,
 * ring, the release it runs) and, for devices whose content state ever differed from the
 * fleet's common one, a slot holding the real struct rf_guard_state, fed with simulated boots,
 * loads, crashes and probation ticks through rf_guard_step(); its actions (load trial / last
 * known good, safe mode, reports) are what the device then does. Devices that share the
 * fleet's initial state share one guard state, so memory grows with the devices a release
 * actually touched. Every check-in is answered by the real rf_rollout_decide().
 *
 * Invariant: a device's timers only move forward through its own events or rf__sim_wake, and
 * rf__sim_resched keeps at most one live queue entry per device.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim-internal.h"

static uint32_t online_at(const struct sim *s, uint32_t i)
{
	if (s->sc->offline_fraction <= 0 ||
	    rf__sim_unit(draw(s, i, S_OFFLINE, 0)) >= s->sc->offline_fraction)
		return 0;
	return tadd(0, rf__sim_exp(draw(s, i, S_ONLINE, 0), s->sc->offline_mean_s));
}

/* The device's first scheduled check-in at or after t (NEVER past the horizon). Slots are
 * phase + k*poll + jitter_k: fixed per device, so skipping polls never changes when it polls. */
uint32_t rf__sim_next_slot(const struct sim *s, uint32_t i, uint32_t t)
{
	uint32_t on = online_at(s, i);
	if (on > 0 && t <= on)
		return on > s->horizon ? NEVER : on;
	uint32_t P = s->sc->poll_s, J = s->sc->poll_jitter_s;
	uint32_t phase = rf__sim_below(draw(s, i, S_PHASE, 0), P);
	uint64_t k = (uint64_t)t > (uint64_t)phase + J ? ((uint64_t)t - phase - J) / P : 0;
	for (unsigned it = 0; it < 3 + J / P; it++, k++) {
		uint64_t st = phase + k * P + rf__sim_below(draw(s, i, S_JITTER, k), J + 1);
		if (st >= t)
			return st > s->horizon ? NEVER : (uint32_t)st;
	}
	return NEVER;
}

static void set_state(struct sim *s, struct dev *d, uint8_t st, uint32_t t)
{
	if (d->state == st)
		return;
	s->nstate[d->state]--;
	s->nstate[st]++;
	d->state = st;
}

/* A bad-release episode (first crash .. up again on content that is not bad) ends: record
 * how long it took. t_first holds the episode's start while F_EPISODE is set. */
static void check_heal(struct sim *s, struct dev *d, uint32_t t)
{
	if (!(d->flags & F_EPISODE) || d->state != D_UP || rel_bad(s, d->rel))
		return;
	d->flags &= (uint16_t)~F_EPISODE;
	if (!(d->flags & F_HUMAN)) {
		int64_t dur = (int64_t)t - d->t_first;
		if (dur > s->res->max_heal_s)
			s->res->max_heal_s = dur;
	}
	if ((int64_t)t > s->last_heal)
		s->last_heal = t;
}

static void episode(struct sim *s, struct dev *d, uint32_t t)
{
	if (!(d->flags & F_CRASHED)) {
		d->flags |= F_CRASHED;
		if (s->res->first_crash_s < 0)
			s->res->first_crash_s = t;
	}
	if (!(d->flags & F_EPISODE)) {
		d->flags |= F_EPISODE;
		d->t_first = t;
	}
}

/* Change the release whose content the device runs (exposure and gauges follow). */
static void set_rel(struct sim *s, struct dev *d, uint16_t r, uint32_t t)
{
	if (d->rel == r)
		return;
	if (d->rel != NOREL) {
		struct health_cell *c = &s->rel[d->rel].hc[d->ring];
		cell_sync(c, t);
		c->on--;
		if (s->rel[d->rel].bad)
			s->on_bad--;
	}
	if (r != NOREL) {
		struct health_cell *c = &s->rel[r].hc[d->ring];
		cell_sync(c, t);
		c->on++;
		if (s->rel[r].bad) {
			s->on_bad++;
			if (!(d->flags & F_EXPOSED)) {
				d->flags |= F_EXPOSED;
				s->exposed++;
			}
		}
	}
	d->rel = r;
}

static struct rf_guard_state *guard_of(struct sim *s, struct dev *d)
{
	if (d->gslot != NOSLOT)
		return &s->gslots[d->gslot];
	if (s->ngslots == s->capgslots) {
		size_t ncap = s->capgslots ? s->capgslots * 2 : 1024;
		struct rf_guard_state *ns = realloc(s->gslots, ncap * sizeof(*ns));
		if (!ns) {
			s->err = -ENOMEM;
			return NULL;
		}
		s->gslots = ns;
		s->capgslots = ncap;
	}
	s->gslots[s->ngslots] = s->gbase;
	d->gslot = (uint32_t)s->ngslots++;
	return &s->gslots[d->gslot];
}

static uint16_t rel_of_hash(const uint8_t *h)
{
	return (uint16_t)(h[0] | h[1] << 8);
}

/* ---- the failure model --------------------------------------------------------------------- */

static uint32_t boot_time(struct sim *s, uint32_t i, struct dev *d, uint32_t t)
{
	uint64_t r = draw(s, i, S_BOOT, d->nfail++);
	if (s->sc->crash_kind == RF_SIM_CRASH_PROCESS)
		return tadd(t, s->sc->restart_s);
	return tadd(t, s->sc->boot_s + rf__sim_below(r, s->sc->boot_jitter_s + 1));
}

/* Content r starts running on the device at t: arm the failure and the probation tick. */
static void started(struct sim *s, uint32_t i, struct dev *d, uint16_t r, uint32_t t)
{
	const struct rf_sim_scenario *sc = s->sc;
	set_rel(s, d, r, t);
	d->t_fail = NEVER;
	d->t_prob = NEVER;
	if (rel_bad(s, r)) {
		switch (sc->failure) {
		case RF_SIM_FAIL_CRASH:
		case RF_SIM_FAIL_HANG:
			d->t_fail = tadd(t, sc->fail_delay_s);
			break;
		case RF_SIM_FAIL_CRASH_RATE:
			d->t_fail = tadd(t, rf__sim_exp(draw(s, i, S_FAIL, d->nfail++),
							3600.0 / sc->fail_rate_per_hour));
			break;
		default:
			break;
		}
	}
	if (r == NOREL)
		return;
	if (s->pol->guard_enabled) {
		double need = (double)s->pol->guard_probation_s;
		if (sc->events_per_s > 0 &&
		    (double)s->pol->guard_probation_events / sc->events_per_s > need)
			need = ceil((double)s->pol->guard_probation_events / sc->events_per_s);
		d->t_prob = tadd(t, need + 1);
	} else if ((d->flags & F_INTENT) && d->trel == r && !(d->flags & F_PEND_HEALTHY)) {
		d->t_prob = tadd(t, (double)s->pol->gates.probation_s);
	}
}

static void feed_guard(struct sim *s, uint32_t i, struct dev *d, enum rf_guard_event_type type,
		       const uint8_t *hash, uint64_t events, uint32_t t);

/* Carry out the guard's actions in order, as an agent would. */
static void do_actions(struct sim *s, uint32_t i, struct dev *d, const struct rf_guard_actions *a,
		       uint32_t t)
{
	for (unsigned k = 0; k < a->n; k++) {
		const struct rf_guard_action *x = &a->a[k];
		switch (x->type) {
		case RF_GUARD_ACT_REPORT:
			switch (x->report) {
			case RF_GUARD_REPORT_INTENT: {
				uint16_t r = rel_of_hash(x->hash);
				if (r < s->nrel) {
					/* Intent goes to the server before the load (protocol). */
					d->trel = r;
					d->flags = (uint16_t)((d->flags & ~(F_FAILED | F_SILENT |
									    F_PEND_HEALTHY)) |
							      F_INTENT);
					d->pend_crash = d->pend_rb = 0;
					d->t_intent = t;
					s->rel[r].hc[d->ring].h.devices++;
					d->t_sil = s->pol->gates_enabled
						       ? tadd(t, (double)s->pol->gates.silence_s)
						       : NEVER;
				}
				break;
			}
			case RF_GUARD_REPORT_HEALTHY:
				if ((d->flags & F_INTENT) && rel_of_hash(x->hash) == d->trel)
					d->flags |= F_PEND_HEALTHY;
				break;
			case RF_GUARD_REPORT_CRASHED:
				if (d->pend_crash < 255)
					d->pend_crash++;
				break;
			case RF_GUARD_REPORT_ROLLED_BACK:
				/* Going back because the server said so is obeying a halt, not a
				 * failure of the content (rf_rollout_devrec.obeyed). */
				if (x->reason == RF_GUARD_REASON_SERVER)
					s->res->obeyed++;
				else if (d->pend_rb < 255)
					d->pend_rb++;
				break;
			default:
				break;
			}
			break;
		case RF_GUARD_ACT_LOAD: {
			uint16_t r = rel_of_hash(x->hash);
			if (r >= s->nrel) {
				s->err = rf_diag_report(s->diag, -EINVAL,
							"guard asked to load an unknown pack");
				return;
			}
			started(s, i, d, r, t);
			feed_guard(s, i, d, RF_GUARD_EV_LOADED, NULL, 0, t);
			break;
		}
		case RF_GUARD_ACT_SAFE_MODE:
			started(s, i, d, NOREL, t);
			break;
		case RF_GUARD_ACT_QUARANTINE:
		case RF_GUARD_ACT_PERSIST:
			/* The simulated store is the state itself: durable by construction. */
			break;
		}
	}
}

static void feed_guard(struct sim *s, uint32_t i, struct dev *d, enum rf_guard_event_type type,
		       const uint8_t *hash, uint64_t events, uint32_t t)
{
	struct rf_guard_state *g = guard_of(s, d);
	struct rf_guard_event ev = {
	    .type = type, .now_ms = (uint64_t)t * 1000 + 1000, .events = events};
	struct rf_guard_actions a;
	if (!g)
		return;
	if (hash)
		memcpy(ev.hash, hash, RF_GUARD_HASH_LEN);
	int r = rf_guard_step(&s->gcfg, g, &ev, &a);
	if (r < 0) {
		s->err = rf_diag_report(s->diag, r, "device %u: guard refused event %s: %s", i,
					rf_guard_event_name(type), rf_strerror(r));
		return;
	}
	do_actions(s, i, d, &a, t);
}

/* A person repairs a device stuck in a boot loop at a time drawn from the scenario's curve. */
static uint32_t repair_time(struct sim *s, uint32_t i, uint32_t t)
{
	const struct rf_sim_scenario *sc = s->sc;
	if (sc->nrepair == 0)
		return NEVER;
	double u = rf__sim_unit(draw(s, i, S_REPAIR, 0));
	double pt = 0, pf = 0;
	for (unsigned k = 0; k < sc->nrepair; k++) {
		double ct = sc->repair[k].t_s, cf = sc->repair[k].fraction;
		if (u <= cf) {
			double x = cf > pf ? pt + (u - pf) / (cf - pf) * (ct - pt) : ct;
			uint32_t rt = tadd(0, x);
			return rt > t ? rt : tadd(t, sc->boot_s);
		}
		pt = ct;
		pf = cf;
	}
	return NEVER;
}

/* The device goes down at t because of what it runs (bad = the bad release's fault). */
static void crash(struct sim *s, uint32_t i, struct dev *d, uint32_t t, bool bad)
{
	const struct rf_sim_scenario *sc = s->sc;
	if (bad)
		episode(s, d, t);
	d->flags = (uint16_t)(bad ? d->flags & ~F_BG_DOWN : d->flags | F_BG_DOWN);
	d->t_fail = NEVER;
	d->t_prob = NEVER;
	if (s->pol->guard_enabled) {
		/* The guard gets the crash at restart (machine: BOOT; process: CRASH). */
		set_state(s, d, D_DOWN_AUTO, t);
		d->t_boot = boot_time(s, i, d, t);
		return;
	}
	/* The incident's own agent: no attempt counting, no last known good. */
	bool every_load = bad && sc->failure == RF_SIM_FAIL_CRASH;
	if (!every_load) {
		set_state(s, d, D_DOWN_AUTO, t);
		d->t_boot = boot_time(s, i, d, t);
	} else if (sc->crash_kind == RF_SIM_CRASH_PROCESS) {
		/* Crash loop of one process; its update channel still works. */
		set_state(s, d, D_DOWN_WAIT, t);
		d->t_boot = NEVER;
	} else {
		/* Boot loop before the network is up: only a person gets it out. */
		set_state(s, d, D_STUCK, t);
		d->t_boot = repair_time(s, i, t);
		d->t_poll = NEVER;
	}
}

/* ---- device events ------------------------------------------------------------------------- */

static void on_boot(struct sim *s, uint32_t i, struct dev *d, uint32_t t)
{
	d->t_boot = NEVER;
	d->flags &= (uint16_t)~F_BG_DOWN;
	if (d->state == D_STUCK) {
		/* A person boots it in safe mode and deletes the bad file. */
		d->flags |= F_HUMAN;
		s->res->needed_human++;
		started(s, i, d, 0, t);
		set_state(s, d, D_UP, t);
		d->t_poll = tadd(t, s->sc->checkin_after_boot_s);
		return;
	}
	set_state(s, d, D_UP, t);
	if (s->pol->guard_enabled) {
		bool process = s->sc->crash_kind == RF_SIM_CRASH_PROCESS;
		feed_guard(s, i, d, process ? RF_GUARD_EV_CRASH : RF_GUARD_EV_BOOT, NULL, 0, t);
	} else {
		uint16_t r = d->rel;
		d->rel = NOREL;
		if (r != NOREL) {
			/* Keep exposure accounting exact: re-enter the same release. */
			struct health_cell *c = &s->rel[r].hc[d->ring];
			cell_sync(c, t);
			c->on--;
			if (s->rel[r].bad)
				s->on_bad--;
		}
		started(s, i, d, r, t);
	}
	d->flags |= F_STARTING;
	uint32_t ci = tadd(t, s->sc->checkin_after_boot_s);
	if (ci < d->t_poll)
		d->t_poll = ci;
}

static void on_fail(struct sim *s, uint32_t i, struct dev *d, uint32_t t)
{
	d->t_fail = NEVER;
	if (d->state == D_HUNG) {
		/* The guard's supervisor kills the worker that stopped answering. */
		crash(s, i, d, t, true);
		return;
	}
	if (d->state != D_UP || !rel_bad(s, d->rel))
		return;
	if (s->sc->failure == RF_SIM_FAIL_HANG) {
		episode(s, d, t);
		set_state(s, d, D_HUNG, t);
		d->t_prob = NEVER;
		if (s->pol->guard_enabled)
			d->t_fail = tadd(t, s->pol->watchdog_s);
		return;
	}
	crash(s, i, d, t, true);
}

static void on_bg(struct sim *s, uint32_t i, struct dev *d, uint32_t t)
{
	d->t_bg = NEVER;
	/* The next one strictly later: a draw under a second would land on this same second,
	 * whose counter gives the same draw again, for ever (a device fired its timers 64
	 * times and then queued an event in the past; issue 14's noisy fleets found it). */
	if (s->sc->background_crash_per_hour > 0) {
		d->t_bg = tadd(
		    t, rf__sim_exp(draw(s, i, S_BG, t), 3600.0 / s->sc->background_crash_per_hour));
		if (d->t_bg <= t)
			d->t_bg = t + 1;
	}
	if (d->state != D_UP)
		return;
	s->res->background_crashes++;
	crash(s, i, d, t, false);
}

static void on_prob(struct sim *s, uint32_t i, struct dev *d, uint32_t t)
{
	d->t_prob = NEVER;
	if (d->state != D_UP)
		return;
	if (s->pol->guard_enabled) {
		const struct rf_guard_state *g =
		    d->gslot == NOSLOT ? &s->gbase : &s->gslots[d->gslot];
		uint64_t since = g->run_since_ms / 1000;
		double ev = s->sc->events_per_s * (double)((uint64_t)t + 1 - since);
		feed_guard(s, i, d, RF_GUARD_EV_TICK, NULL, ev > 0 ? (uint64_t)ev : 0, t);
	} else if ((d->flags & F_INTENT) && d->rel == d->trel) {
		d->flags |= F_PEND_HEALTHY;
	}
	uint32_t ci = rf__sim_next_slot(s, i, t);
	if (ci < d->t_poll)
		d->t_poll = ci;
}

bool rf__sim_can_checkin(const struct sim *s, const struct dev *d)
{
	if (d->state == D_UP)
		return true;
	if (d->state == D_STUCK)
		return false;
	return s->sc->crash_kind == RF_SIM_CRASH_PROCESS;
}

static void on_silence(struct sim *s, uint32_t i, struct dev *d, uint32_t t)
{
	d->t_sil = NEVER;
	/* A device that could have checked in since its intent is not silent: the simulation
	 * skips its polls only because their answers could not change. */
	if (!(d->flags & F_INTENT) || (d->flags & F_SILENT) || rf__sim_can_checkin(s, d))
		return;
	/* Rebooting after a crash that had nothing to do with content: it polled (in reality;
	 * the simulation skipped those polls) until it went down, and is back within a reboot,
	 * so the server heard from it within silence_s (docs/sim.md). Look again then. */
	if ((d->flags & F_BG_DOWN) && d->t_boot != NEVER) {
		d->t_sil = tadd(d->t_boot, s->sc->checkin_after_boot_s + 1);
		return;
	}
	struct rf_rollout_health *h = &s->rel[d->trel].hc[d->ring].h;
	h->silent++;
	d->flags |= F_SILENT;
	if (!(d->flags & F_FAILED)) {
		d->flags |= F_FAILED;
		h->failed++;
	}
}

static uint32_t backoff(struct sim *s, uint32_t i, struct dev *d, uint32_t t)
{
	const struct rf_sim_policy *p = s->pol;
	uint32_t k = d->retry < 30 ? d->retry : 30;
	if (d->retry < 255)
		d->retry++;
	if (p->retry == RF_SIM_RETRY_FIXED)
		return tadd(t, p->retry_base_s);
	uint64_t cap = (uint64_t)p->retry_base_s << k;
	if (cap > p->retry_max_s)
		cap = p->retry_max_s;
	return tadd(t, 1 + rf__sim_below(draw(s, i, S_RETRY, t), (uint32_t)cap));
}

/* The server answers a check-in only as far as its capacity goes; past it, goodput collapses
 * (capacity * capacity/offered per second: the overloaded server spends its time on requests
 * that time out), which is what turns a restart stampede into a long outage. */
static bool server_accepts(struct sim *s, uint32_t i, uint32_t t)
{
	uint32_t cap = s->sc->server_capacity_per_s;
	if (cap == 0)
		return true;
	if (t != s->sec) {
		s->offered_prev = t == s->sec + 1 ? s->offered_cur : 0;
		s->offered_cur = 0;
		s->sec = t;
	}
	s->offered_cur++;
	uint32_t load = s->offered_prev > s->offered_cur ? s->offered_prev : s->offered_cur;
	if (load <= cap)
		return true;
	double x = (double)cap / load;
	return rf__sim_unit(draw(s, i, S_SERVER, t)) < x * x;
}

static void deliver_reports(struct sim *s, struct dev *d)
{
	if (!(d->flags & F_INTENT))
		return;
	struct rf_rollout_health *h = &s->rel[d->trel].hc[d->ring].h;
	h->crashes += d->pend_crash;
	h->rollbacks += d->pend_rb;
	if ((d->pend_crash || d->pend_rb) && !(d->flags & F_FAILED)) {
		d->flags |= F_FAILED;
		h->failed++;
	}
	if (d->flags & F_PEND_HEALTHY) {
		h->healthy++;
		d->flags &= (uint16_t)~F_PEND_HEALTHY;
	}
	d->pend_crash = d->pend_rb = 0;
}

int rf__sim_decide(struct sim *s, uint32_t i, const struct dev *d, uint32_t t,
		   struct rf_rollout_answer *ans)
{
	uint64_t id = dev_id(s, i);
	struct rf_rollout_device dv = {
	    .id = &id,
	    .id_len = sizeof(id),
	    .ring = s->pol->rings[d->ring].name,
	    .current = d->rel == NOREL ? -1 : (int)d->rel,
	};
	if (d->rel != NOREL && d->rel >= s->npub)
		dv.current = -1;
	/* A last known good other than what it runs: the guard's, or (no guard) release 0, which
	 * every device ran before the scenario. */
	if (s->pol->guard_enabled) {
		const struct rf_guard_state *g =
		    d->gslot == NOSLOT ? &s->gbase : &s->gslots[d->gslot];
		dv.fallback = g->has_lkg && (d->rel == NOREL || memcmp(g->lkg, s->rel[d->rel].hash,
								       RF_GUARD_HASH_LEN) != 0);
	} else {
		dv.fallback = d->rel != 0;
	}
	return rf_rollout_decide(&dv, &s->tpol[d->tenant], s->rr, s->npub, s->sc->start + t, ans);
}

/* Act on the server's answer. Returns false when the device refuses it (the guard has the
 * pack quarantined, or there is no last known good to go back to): then nothing changes
 * until the answer does. */
static bool install(struct sim *s, uint32_t i, struct dev *d, int r, bool back, uint32_t t)
{
	if (s->pol->guard_enabled) {
		struct rf_guard_state *g = d->gslot == NOSLOT ? &s->gbase : &s->gslots[d->gslot];
		const uint8_t *h = r >= 0 ? s->rel[r].hash : g->lkg;
		if (r < 0 && !g->has_lkg)
			return false;
		if (rf_guard_is_quarantined(g, h))
			return false;
		if (back && g->has_lkg && !memcmp(h, g->lkg, RF_GUARD_HASH_LEN))
			feed_guard(s, i, d, RF_GUARD_EV_ROLLBACK, NULL, 0, t);
		else
			feed_guard(s, i, d, RF_GUARD_EV_CANDIDATE, h, 0, t);
		return true;
	}
	uint16_t nr = r >= 0 ? (uint16_t)r : 0;
	if (!back) {
		d->trel = nr;
		d->flags =
		    (uint16_t)((d->flags & ~(F_FAILED | F_SILENT | F_PEND_HEALTHY)) | F_INTENT);
		d->pend_crash = d->pend_rb = 0;
		d->t_intent = t;
		s->rel[nr].hc[d->ring].h.devices++;
		d->t_sil = s->pol->gates_enabled ? tadd(t, (double)s->pol->gates.silence_s) : NEVER;
	}
	started(s, i, d, nr, t);
	if (d->state != D_UP)
		set_state(s, d, D_UP, t);
	return true;
}

static void on_poll(struct sim *s, uint32_t i, struct dev *d, uint32_t t)
{
	d->t_poll = NEVER;
	if (!rf__sim_can_checkin(s, d))
		return;
	/* Steady-state polls are the load the server is sized for; what can overload it is
	 * devices that (re)start or crash-loop and all fetch their state at once. */
	bool surge = d->state != D_UP || (d->flags & F_STARTING);
	if (surge && !server_accepts(s, i, t)) {
		s->res->checkins_refused++;
		d->t_poll = backoff(s, i, d, t);
		return;
	}
	d->retry = 0;
	d->flags &= (uint16_t)~F_STARTING;
	s->res->checkins++;
	deliver_reports(s, d);

	struct rf_rollout_answer ans;
	int r = rf__sim_decide(s, i, d, t, &ans);
	if (r < 0) {
		s->err = rf_diag_report(s->diag, r, "device %u: rf_rollout_decide: %s", i,
					rf_strerror(r));
		return;
	}
	bool acted = false;
	if (ans.action != RF_ROLLOUT_STAY)
		acted = install(s, i, d, ans.release, ans.action == RF_ROLLOUT_GO_BACK, t);

	/* Next check-in: when the answer can change, or sooner if reports wait or it acted. */
	uint32_t at = NEVER;
	if (acted || d->pend_crash || d->pend_rb || (d->flags & F_PEND_HEALTHY) || d->state != D_UP)
		at = t + 1;
	else if (ans.next_change != INT64_MAX) {
		int64_t rel_t = ans.next_change - s->sc->start;
		at = rel_t <= (int64_t)t	    ? t + 1
		     : rel_t >= (int64_t)s->horizon ? NEVER
						    : (uint32_t)rel_t;
	}
	if (at != NEVER) {
		uint32_t slot = rf__sim_next_slot(s, i, at);
		if (slot < d->t_poll)
			d->t_poll = slot;
	}
}

static uint32_t dev_min(const struct dev *d)
{
	uint32_t m = d->t_poll;
	m = d->t_fail < m ? d->t_fail : m;
	m = d->t_boot < m ? d->t_boot : m;
	m = d->t_prob < m ? d->t_prob : m;
	m = d->t_sil < m ? d->t_sil : m;
	m = d->t_bg < m ? d->t_bg : m;
	return m;
}

void rf__sim_resched(struct sim *s, uint32_t i, struct dev *d)
{
	uint32_t m = dev_min(d);
	if (m > s->horizon)
		m = NEVER;
	if (m == d->t_next)
		return;
	d->t_next = m;
	if (m != NEVER) {
		int r = rf__sim_queue_push(&s->q, m, i);
		if (r < 0)
			s->err = r;
	}
}

void rf__sim_dev_event(struct sim *s, uint32_t i, uint32_t t)
{
	struct dev *d = &s->d[i];
	s->res->events++;
	/* Fire every due timer, in a fixed order; handlers may arm timers due now. */
	for (unsigned guard = 0; guard < 64 && !s->err; guard++) {
		if (d->t_boot <= t)
			on_boot(s, i, d, t);
		else if (d->t_fail <= t)
			on_fail(s, i, d, t);
		else if (d->t_bg <= t)
			on_bg(s, i, d, t);
		else if (d->t_prob <= t)
			on_prob(s, i, d, t);
		else if (d->t_sil <= t)
			on_silence(s, i, d, t);
		else if (d->t_poll <= t)
			on_poll(s, i, d, t);
		else
			break;
	}
	check_heal(s, d, t);
	d->t_next = NEVER;
	rf__sim_resched(s, i, d);
}
void rf__sim_wake(struct sim *s, uint32_t i, uint32_t at)
{
	struct dev *d = &s->d[i];
	uint32_t slot = rf__sim_next_slot(s, i, at);
	if (slot < d->t_poll) {
		d->t_poll = slot;
		rf__sim_resched(s, i, d);
	}
}
