/*
 * The fleet simulator's engine (see sim.h for the contract, docs/sim.md for the model).
 *
 * Server side: one struct rf_rollout_schedule + state per release, advanced by the real
 * rf_rollout_evaluate() every policy.evaluate_s with health counters aggregated from what the
 * simulated devices reported; every check-in is answered by the real rf_rollout_decide().
 * Device side: a compact struct per device (timers, flags, ring, the release it runs) and, for
 * devices whose content state ever differed from the fleet's common one, a slot holding the
 * real struct rf_guard_state, fed with simulated boots, loads, crashes and probation ticks
 * through rf_guard_step(); its actions (load trial / last known good, safe mode, reports) are
 * what the device then does. Devices that share the fleet's initial state share one guard
 * state, so memory grows with the devices a release actually touched.
 *
 * Invariants: every device has at most one live queue entry (t_next; older entries are
 * dropped when popped); a device is only woken when one of its timers is due; all randomness
 * comes from rng.h draws keyed by device, so the result does not depend on visiting order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/guard.h"
#include "common/util.h"
#include "rollout/rollout.h"
#include "sim/queue.h"
#include "sim/rng.h"
#include "sim/sim.h"

#define NEVER  UINT32_MAX
#define NOREL  0xffffu
#define NOSLOT UINT32_MAX

/* Device states (what the device does for its owner right now). */
enum {
	D_UP = 0,    /* serving */
	D_HUNG,	     /* alive, not serving, no automatic way out */
	D_DOWN_AUTO, /* down, coming back by itself (reboot/restart under way) */
	D_DOWN_WAIT, /* down in a crash loop nothing local ends; waits for a fix from the server */
	D_STUCK,     /* down, cannot even check in: waits for a person */
	D_NSTATES
};

enum {
	F_EXPOSED = 1u << 0,	  /* ever loaded a bad release */
	F_CRASHED = 1u << 1,	  /* ever crashed/hung because of a bad release */
	F_HUMAN = 1u << 2,	  /* repaired by a person */
	F_FAILED = 1u << 3,	  /* counted in health.failed for trel */
	F_SILENT = 1u << 4,	  /* counted in health.silent for trel */
	F_PEND_HEALTHY = 1u << 5, /* a healthy report for trel waits for the next check-in */
	F_INTENT = 1u << 6,	  /* trel is a release the device recorded intent for */
	F_EPISODE = 1u << 7,	  /* down/hung because of a bad release since t_first, not healed */
	F_STARTING = 1u << 8, /* (re)started: its next check-in fetches its state from the server */
	F_BG_DOWN = 1u << 9,  /* down for a crash unrelated to content, rebooting */
};

/* Random streams (rng.h). */
enum {
	S_PHASE = 1,
	S_JITTER,
	S_OFFLINE,
	S_ONLINE,
	S_BOOT,
	S_FAIL,
	S_BG,
	S_TENANT,
	S_RETRY,
	S_REPAIR,
	S_SERVER,
	S_ID,
};

struct dev {
	uint32_t t_next; /* the live queue entry */
	uint32_t t_poll; /* next check-in */
	uint32_t t_fail; /* the bad content's failure (crash/hang), or the watchdog */
	uint32_t t_boot; /* reboot/restart done, or a person's repair (D_STUCK) */
	uint32_t t_prob; /* probation tick */
	uint32_t t_sil;	 /* server-side silence deadline of the last intent */
	uint32_t t_bg;	 /* next crash unrelated to content */
	uint32_t t_intent;
	uint32_t t_first; /* first crash caused by a bad release */
	uint32_t gslot;	  /* guard state slot, NOSLOT = the fleet's common state */
	uint32_t nfail;	  /* failure draws so far (counter for S_FAIL) */
	uint16_t rel;	  /* release whose content is installed/running; NOREL: none (safe mode) */
	uint16_t trel;	  /* release the pending reports are about */
	uint16_t tenant;
	uint16_t flags;
	uint8_t state, ring, pend_crash, pend_rb, retry;
};

/* Millions of these: keep a device within one cache line (docs/sim.md says 60 bytes). */
_Static_assert(sizeof(struct dev) <= 64, "struct dev grew past 64 bytes");

struct health_cell {
	struct rf_rollout_health h;
	uint64_t on;	  /* devices on the release in the ring now */
	uint64_t exp_acc; /* device-seconds accumulated up to exp_t */
	uint32_t exp_t;
};

/* Per ring, ADMIT_STRIDE counters: admit[ring * ADMIT_STRIDE + bp] = the ring's devices whose
 * bucket for the release is below bp, so the devices a step admits is one lookup. */
#define ADMIT_STRIDE (RF_ROLLOUT_BUCKETS + 1)

struct srel {
	struct rf_rollout_schedule sched;
	bool bad, published, finished;
	bool halt_done, rollback_done; /* the scenario's operator actions on it, carried out */
	uint32_t at;
	uint8_t hash[RF_GUARD_HASH_LEN];
	struct health_cell hc[RF_SIM_RINGS_MAX];
	uint32_t *admit; /* nrings * ADMIT_STRIDE, from publish until finished; NULL otherwise */
};

struct sim {
	const struct rf_sim_scenario *sc;
	const struct rf_sim_policy *pol;
	uint64_t seed;
	uint32_t n, horizon;
	struct dev *d;
	struct rf_sim_queue q;
	/* guard */
	struct rf_guard_config gcfg;
	struct rf_guard_state gbase;
	struct rf_guard_state *gslots;
	size_t ngslots, capgslots;
	/* server */
	unsigned nrel, npub;
	struct srel *rel;
	struct rf_rollout_release *rr; /* for rf_rollout_decide, parallel to rel */
	struct rf_rollout_policy *tpol;
	uint32_t ring_start[RF_SIM_RINGS_MAX + 1];
	uint32_t next_eval;
	bool fixed;
	uint32_t sec, offered_cur, offered_prev;
	/* gauges */
	uint32_t nstate[D_NSTATES];
	uint32_t on_bad, exposed, halted;
	/* velocity: devices needed for each milestone, next milestone */
	uint64_t reach_need[RF_SIM_REACH_N];
	unsigned reach_k;
	/* result */
	struct rf_sim_result *res;
	int64_t last_heal;
	int err;
	struct rf_diag *diag;
};

/* ---- helpers ----------------------------------------------------------------------------- */

static inline uint64_t draw(const struct sim *s, uint32_t i, uint32_t stream, uint64_t ctr)
{
	return rf__sim_draw(s->seed, i, stream, ctr);
}

/* The device's id: the bytes its buckets are computed from (the decision and the gates'
 * admitted counts must see the same ones). */
static inline uint64_t dev_id(const struct sim *s, uint32_t i)
{
	return rf__sim_draw(s->seed, i, S_ID, 0);
}

static inline uint32_t tadd(uint32_t t, double dt)
{
	double x = (double)t + dt;
	return x >= (double)NEVER - 1 ? NEVER - 1 : (uint32_t)x;
}

static uint32_t online_at(const struct sim *s, uint32_t i)
{
	if (s->sc->offline_fraction <= 0 ||
	    rf__sim_unit(draw(s, i, S_OFFLINE, 0)) >= s->sc->offline_fraction)
		return 0;
	return tadd(0, rf__sim_exp(draw(s, i, S_ONLINE, 0), s->sc->offline_mean_s));
}

/* The device's first scheduled check-in at or after t (NEVER past the horizon). Slots are
 * phase + k*poll + jitter_k: fixed per device, so skipping polls never changes when it polls. */
static uint32_t next_slot(const struct sim *s, uint32_t i, uint32_t t)
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

static bool rel_bad(const struct sim *s, uint16_t r);

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

static void cell_sync(struct health_cell *c, uint32_t t)
{
	if (t > c->exp_t) {
		c->exp_acc += c->on * (uint64_t)(t - c->exp_t);
		c->exp_t = t;
	}
}

static bool rel_bad(const struct sim *s, uint16_t r)
{
	return r != NOREL && s->rel[r].bad;
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
	uint32_t ci = next_slot(s, i, t);
	if (ci < d->t_poll)
		d->t_poll = ci;
}

static bool can_checkin(const struct sim *s, const struct dev *d)
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
	if (!(d->flags & F_INTENT) || (d->flags & F_SILENT) || can_checkin(s, d))
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

static int decide(struct sim *s, uint32_t i, const struct dev *d, uint32_t t,
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
		const struct rf_guard_state *g = d->gslot == NOSLOT ? &s->gbase : &s->gslots[d->gslot];
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
	if (!can_checkin(s, d))
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
	int r = decide(s, i, d, t, &ans);
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
		uint32_t slot = next_slot(s, i, at);
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

static void resched(struct sim *s, uint32_t i, struct dev *d)
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

static void dev_event(struct sim *s, uint32_t i, uint32_t t)
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
	resched(s, i, d);
}

/* ---- server ------------------------------------------------------------------------------- */

static void wake(struct sim *s, uint32_t i, uint32_t at)
{
	struct dev *d = &s->d[i];
	uint32_t slot = next_slot(s, i, at);
	if (slot < d->t_poll) {
		d->t_poll = slot;
		resched(s, i, d);
	}
}

/* Ring `ring` of a release opened or stepped: wake its devices that can now take something. */
static void sweep_ring(struct sim *s, unsigned ring, uint32_t t)
{
	for (uint32_t i = s->ring_start[ring]; i < s->ring_start[ring + 1] && !s->err; i++) {
		struct dev *d = &s->d[i];
		struct rf_rollout_answer ans;
		if (!can_checkin(s, d) || d->t_poll <= t + s->sc->poll_s)
			continue;
		if (decide(s, i, d, t, &ans) < 0)
			continue;
		if (ans.action != RF_ROLLOUT_STAY)
			wake(s, i, t);
		else if (ans.next_change != INT64_MAX &&
			 ans.next_change - s->sc->start < s->horizon)
			wake(s, i, (uint32_t)(ans.next_change - s->sc->start));
	}
}

/* Release r was halted or rolled back: wake every device on it. */
static void sweep_release(struct sim *s, unsigned r, uint32_t t)
{
	for (uint32_t i = 0; i < s->n && !s->err; i++)
		if (s->d[i].rel == r)
			wake(s, i, t);
}

/* Release r is published: count, per ring, its devices below each bucket (one real
 * rf_rollout_bucket per device, ~20 ns; 40 KB per ring), so that the gates learn how many
 * devices a step actually admits (rf_rollout_health.admitted) in O(1) per evaluation. */
static int build_admit(struct sim *s, unsigned r)
{
	struct srel *sr = &s->rel[r];
	uint32_t *a = calloc((size_t)s->pol->nrings * ADMIT_STRIDE, sizeof(*a));
	if (!a)
		return -ENOMEM;
	for (unsigned k = 0; k < s->pol->nrings; k++) {
		uint32_t *c = a + (size_t)k * ADMIT_STRIDE;
		for (uint32_t i = s->ring_start[k]; i < s->ring_start[k + 1]; i++) {
			uint64_t id = dev_id(s, i);
			c[rf_rollout_bucket(sr->sched.bucket_key, &id, sizeof(id)) + 1]++;
		}
		for (unsigned b = 1; b < ADMIT_STRIDE; b++)
			c[b] += c[b - 1];
	}
	sr->admit = a;
	return 0;
}

static void finish_release(struct sim *s, unsigned r)
{
	s->rel[r].finished = true;
	free(s->rel[r].admit);
	s->rel[r].admit = NULL;
}

static void fill_health(struct sim *s, unsigned r, uint32_t t, struct rf_rollout_health *out)
{
	const struct srel *sr = &s->rel[r];
	for (unsigned k = 0; k < s->pol->nrings; k++) {
		struct health_cell *c = &s->rel[r].hc[k];
		cell_sync(c, t);
		out[k] = c->h;
		out[k].exposure_s = c->exp_acc;
		double rate = s->rel[r].bad && s->sc->failure == RF_SIM_FAIL_ALERT_STORM
				  ? s->sc->alerts_per_hour
				  : s->sc->base_alerts_per_hour;
		out[k].alerts = (uint64_t)((double)c->exp_acc * rate / 3600.0);
		out[k].population = s->ring_start[k + 1] - s->ring_start[k];
		if (sr->admit) {
			/* The devices the ring's effective percent admits, as the decision sees it.
			 */
			uint32_t bp = rf_rollout_effective_bp(&sr->sched, &s->rr[r].state, (int)k,
							      s->sc->start + (int64_t)t);
			out[k].admitted = sr->admit[(size_t)k * ADMIT_STRIDE + bp];
			out[k].admitted_known = true;
		}
	}
}

static void note_halt(struct sim *s, unsigned r, uint32_t t, const char *why)
{
	if (!s->rel[r].bad)
		return;
	s->halted++;
	if (s->res->halt_s < 0) {
		s->res->halt_s = t;
		snprintf(s->res->halt_reason, sizeof(s->res->halt_reason), "%.159s", why);
	}
}

static void evaluate(struct sim *s, uint32_t t)
{
	struct rf_rollout_health h[RF_ROLLOUT_RINGS_MAX], b[RF_ROLLOUT_RINGS_MAX];
	for (unsigned r = 1; r < s->npub && !s->err; r++) {
		struct srel *sr = &s->rel[r];
		struct rf_rollout_state *st = &s->rr[r].state;
		if (sr->finished)
			continue;
		struct rf_rollout_state old = *st;
		struct rf_rollout_eval ev;
		/* The same baseline as ringfenced: the newest older release not halted. */
		int bi = rf_rollout_baseline(s->rr, s->npub, r);
		if (bi >= 0)
			fill_health(s, (unsigned)bi, t, b);
		fill_health(s, r, t, h);
		int e = rf_rollout_evaluate(&sr->sched, &old, h, bi >= 0 ? b : NULL,
					    s->sc->start + t, st, &ev);
		if (e < 0) {
			s->err = rf_diag_report(s->diag, e, "release %u: rf_rollout_evaluate: %s",
						r, rf_strerror(e));
			return;
		}
		if (st->status != old.status &&
		    (st->status == RF_ROLLOUT_HALTED || st->status == RF_ROLLOUT_ROLLED_BACK)) {
			char why[160];
			struct rf_sim_release_outcome *o = &s->res->rel[r];
			o->gate_halted = true;
			o->metric = st->halt_metric;
			o->halt_s = (int64_t)t - sr->at;
			o->left_first_ring =
			    s->pol->nrings > 1 && old.rings[1].phase != RF_ROLLOUT_NOT_STARTED;
			snprintf(why, sizeof(why), "gate: %.150s", st->halt_reason);
			note_halt(s, r, t, why);
			finish_release(s, r);
			sweep_release(s, r, t);
			continue;
		}
		for (unsigned k = 0; k < s->pol->nrings; k++)
			if (memcmp(&st->rings[k], &old.rings[k], sizeof(old.rings[k])))
				sweep_ring(s, k, t);
	}
}

static void vendor_fix(struct sim *s, uint32_t t)
{
	s->fixed = true;
	for (unsigned r = 1; r < s->npub; r++) {
		struct rf_rollout_state *st = &s->rr[r].state;
		if (!s->rel[r].bad || st->status == RF_ROLLOUT_ROLLED_BACK)
			continue;
		bool was_halted = st->status == RF_ROLLOUT_HALTED;
		if (rf_rollout_rollback(st, s->sc->start + t, "vendor rollback (as in reality)") <
		    0)
			continue;
		if (!was_halted)
			note_halt(s, r, t, "vendor rollback at the incident's real time");
		finish_release(s, r);
		sweep_release(s, r, t);
	}
}

/* The scenario's operator actions (halt_s, rollback_s, baseline_rollback_s): the earliest one
 * not yet carried out, or NEVER. */
static uint32_t next_op(const struct sim *s)
{
	uint32_t t = NEVER;
	if (s->sc->baseline_rollback_s && !s->rel[0].rollback_done)
		t = s->sc->baseline_rollback_s;
	for (unsigned r = 1; r < s->nrel; r++) {
		const struct rf_sim_release_spec *x = &s->sc->releases[r - 1];
		if (x->halt_s && !s->rel[r].halt_done && x->halt_s < t)
			t = x->halt_s;
		if (x->rollback_s && !s->rel[r].rollback_done && x->rollback_s < t)
			t = x->rollback_s;
	}
	return t;
}

/* Carry out every operator action due at t, as `ringfence release halt|rollback --force`. */
static void run_ops(struct sim *s, uint32_t t)
{
	for (unsigned r = 0; r < s->nrel && !s->err; r++) {
		uint32_t halt = r ? s->sc->releases[r - 1].halt_s : 0;
		uint32_t rb = r ? s->sc->releases[r - 1].rollback_s : s->sc->baseline_rollback_s;
		struct rf_rollout_state *st = &s->rr[r].state;
		bool acted = false;
		if (halt && !s->rel[r].halt_done && halt <= t) {
			s->rel[r].halt_done = true;
			acted = rf_rollout_halt(st, s->sc->start + t, "operator halt (scenario)") == 0;
		}
		if (rb && !s->rel[r].rollback_done && rb <= t) {
			s->rel[r].rollback_done = true;
			acted |= rf_rollout_rollback(st, s->sc->start + t,
						     "operator rollback (scenario)") == 0;
		}
		if (!acted)
			continue;
		note_halt(s, r, t, "operator (scenario)");
		if (r && !s->rel[r].finished)
			finish_release(s, r);
		sweep_release(s, r, t);
	}
}

/* ---- setup ---------------------------------------------------------------------------------- */

static void make_hash(const struct rf_sim_scenario *sc, unsigned r, uint8_t out[32])
{
	char buf[96];
	int len = snprintf(buf, sizeof(buf), "ringfence-sim:%s:%u", sc->name, r);
	rf_sha256(buf, (size_t)len, out);
	out[0] = (uint8_t)(r & 0xff);
	out[1] = (uint8_t)(r >> 8);
}

static void make_schedule(const struct sim *s, unsigned r, struct rf_rollout_schedule *out)
{
	const struct rf_sim_policy *p = s->pol;
	memset(out, 0, sizeof(*out));
	snprintf(out->release, sizeof(out->release), "%s-%u", s->sc->name, r);
	rf_rollout_bucket_key(out->release, strlen(out->release), out->bucket_key);
	out->nrings = p->nrings;
	int64_t pub = s->sc->start + (r ? s->sc->releases[r - 1].at_s : 0);
	for (unsigned k = 0; k < p->nrings; k++) {
		struct rf_rollout_ring_schedule *rs = &out->rings[k];
		snprintf(rs->name, sizeof(rs->name), "%s", p->rings[k].name);
		if (r == 0) {
			/* The release every device already runs: complete everywhere. */
			rs->not_before = s->sc->start - 86400;
			rs->nsteps = 1;
			rs->steps[0].after = 0;
			rs->steps[0].percent_bp = 10000;
			continue;
		}
		rs->not_before = pub + p->rings[k].not_before_s;
		rs->nsteps = p->rings[k].nsteps;
		memcpy(rs->steps, p->rings[k].steps, sizeof(rs->steps[0]) * rs->nsteps);
	}
	out->gates = p->gates;
	if (!p->gates_enabled) {
		/* The incident's policy: no health gate can stop or slow the release. */
		out->gates.min_healthy = 0;
		out->gates.min_bake_s = 0;
		out->gates.min_events = UINT64_MAX;
		out->gates.floor_devices = UINT64_MAX;
		out->gates.floor_fraction = 1.0;
		out->gates.alert_floor_per_h = 1e300;
		out->gates.alpha = 0;
	}
}

static int setup(struct sim *s)
{
	const struct rf_sim_scenario *sc = s->sc;
	const struct rf_sim_policy *p = s->pol;

	s->nrel = sc->nreleases + 1;
	s->rel = calloc(s->nrel, sizeof(*s->rel));
	s->rr = calloc(s->nrel, sizeof(*s->rr));
	s->tpol = calloc(sc->tenants, sizeof(*s->tpol));
	s->d = malloc((size_t)s->n * sizeof(*s->d));
	if (!s->rel || !s->rr || !s->tpol || !s->d)
		return -ENOMEM;
	for (unsigned r = 0; r < s->nrel; r++) {
		struct srel *sr = &s->rel[r];
		make_schedule(s, r, &sr->sched);
		make_hash(sc, r, sr->hash);
		sr->bad = r > 0 && sc->releases[r - 1].bad && sc->failure != RF_SIM_FAIL_NONE;
		sr->at = r ? sc->releases[r - 1].at_s : 0;
		s->rr[r].schedule = &sr->sched;
		rf_rollout_state_init(&sr->sched, &s->rr[r].state);
	}
	/* Release 0 has been complete in every ring for a day. */
	for (unsigned k = 0; k < p->nrings; k++) {
		struct rf_rollout_ring_state *rs = &s->rr[0].state.rings[k];
		rs->phase = RF_ROLLOUT_COMPLETE;
		rs->step = 0;
		rs->opened_at = s->rel[0].sched.rings[k].not_before;
		rs->step_at = rs->opened_at;
		rs->completed_at = rs->opened_at + 1;
	}
	s->rel[0].published = true;
	s->rel[0].finished = true;
	s->npub = 1;

	for (uint32_t k = 0; k < sc->tenants; k++) {
		s->tpol[k].pin =
		    rf__sim_unit(rf__sim_draw(s->seed, k, S_TENANT, 1)) < sc->tenant_pin_n1_fraction
			? RF_ROLLOUT_PIN_N1
			: RF_ROLLOUT_PIN_N;
	}
	/* Ring k holds max(share * n, min_devices) devices (what is left, at most); the last ring
	 * takes the rest. */
	s->ring_start[0] = 0;
	for (unsigned k = 0; k < p->nrings; k++) {
		uint32_t left = s->n - s->ring_start[k];
		double want = (double)p->rings[k].share * s->n;
		uint32_t size = want >= left ? left : (uint32_t)llround(want);
		if (size < p->rings[k].min_devices)
			size = p->rings[k].min_devices;
		if (size > left || k + 1 == p->nrings)
			size = left;
		s->ring_start[k + 1] = s->ring_start[k] + size;
	}

	/* The guard state every device starts from: the baseline loaded, survived probation. */
	rf_guard_config_default(&s->gcfg);
	s->gcfg.attempt_limit = p->guard_attempt_limit;
	s->gcfg.probation_ms = (uint64_t)p->guard_probation_s * 1000;
	s->gcfg.probation_events = p->guard_probation_events;
	if (p->guard_enabled) {
		struct rf_guard_event ev = {.type = RF_GUARD_EV_CANDIDATE, .now_ms = 0};
		struct rf_guard_actions a;
		rf_guard_init(&s->gbase);
		memcpy(ev.hash, s->rel[0].hash, RF_GUARD_HASH_LEN);
		int r = rf_guard_step(&s->gcfg, &s->gbase, &ev, &a);
		ev = (struct rf_guard_event){.type = RF_GUARD_EV_LOADED, .now_ms = 0};
		if (r == 0)
			r = rf_guard_step(&s->gcfg, &s->gbase, &ev, &a);
		ev = (struct rf_guard_event){.type = RF_GUARD_EV_TICK,
					     .now_ms = s->gcfg.probation_ms + 1,
					     .events = s->gcfg.probation_events + 1};
		if (r == 0)
			r = rf_guard_step(&s->gcfg, &s->gbase, &ev, &a);
		if (r < 0 || !s->gbase.has_lkg)
			return rf_diag_report(
			    s->diag, -EINVAL,
			    "the guard did not promote the baseline pack to last known good");
		/* The run that promoted it is history: the fleet booted long ago. */
		s->gbase.run_since_ms = 0;
	}

	int r = rf__sim_queue_init(&s->q, s->horizon);
	if (r < 0)
		return r;
	memset(s->nstate, 0, sizeof(s->nstate));
	for (unsigned k = 0; k < p->nrings; k++)
		for (uint32_t i = s->ring_start[k]; i < s->ring_start[k + 1]; i++) {
			struct dev *d = &s->d[i];
			memset(d, 0, sizeof(*d));
			d->t_next = d->t_fail = d->t_boot = d->t_prob = d->t_sil = NEVER;
			d->t_intent = d->t_first = NEVER;
			d->gslot = NOSLOT;
			d->rel = 0;
			d->trel = 0;
			d->ring = (uint8_t)k;
			d->tenant = (uint16_t)rf__sim_below(draw(s, i, S_TENANT, 0), sc->tenants);
			d->state = D_UP;
			/* The fleet took release 0 long ago (intent then): what happens to a device
			 * on it is release 0's health, the baseline of the first release, counted
			 * as ringfenced counts it (rf_rollout_health_add: background crashes too). */
			d->flags = F_INTENT;
			s->rel[0].hc[k].h.devices++;
			d->t_poll = next_slot(s, i, 0);
			d->t_bg = sc->background_crash_per_hour > 0
				      ? tadd(0, rf__sim_exp(draw(s, i, S_BG, 0),
							    3600.0 / sc->background_crash_per_hour))
				      : NEVER;
			s->rel[0].hc[k].on++;
			resched(s, i, d);
		}
	s->nstate[D_UP] = s->n;
	return s->err;
}

/* Devices running release r right now. */
static uint64_t on_release(const struct sim *s, unsigned r)
{
	uint64_t n = 0;
	for (unsigned k = 0; k < s->pol->nrings; k++)
		n += s->rel[r].hc[k].on;
	return n;
}

/* Record the velocity milestones of the first release passed at t (devices only move onto
 * it at device events, so checking after each is exact to the second). */
static void check_reach(struct sim *s, uint32_t t)
{
	if (s->reach_k >= RF_SIM_REACH_N || s->nrel < 2 || !s->rel[1].published)
		return;
	uint64_t on = on_release(s, 1);
	while (s->reach_k < RF_SIM_REACH_N && on >= s->reach_need[s->reach_k])
		s->res->reach_s[s->reach_k++] = (int64_t)t - s->rel[1].at;
}

static void sample(struct sim *s, uint32_t t)
{
	struct rf_sim_result *res = s->res;
	struct rf_sim_sample *x = &res->samples[res->nsamples++];
	x->t_s = t;
	x->healthy = s->nstate[D_UP];
	x->crashed = s->nstate[D_HUNG] + s->nstate[D_DOWN_WAIT] + s->nstate[D_STUCK];
	x->recovering = s->nstate[D_DOWN_AUTO];
	x->on_bad = s->on_bad;
	x->exposed = s->exposed;
	x->halted = s->halted;
	x->on_first = s->nrel > 1 ? (uint32_t)on_release(s, 1) : 0;
}

static void finish(struct sim *s)
{
	struct rf_sim_result *res = s->res;
	for (uint32_t i = 0; i < s->n; i++) {
		const struct dev *d = &s->d[i];
		if (!(d->flags & F_CRASHED))
			continue;
		res->crashed++;
		if (d->ring != 0)
			res->crashes_outside_first_ring++;
		if (d->flags & F_EPISODE)
			res->still_down++;
		else if (!(d->flags & F_HUMAN))
			res->healed_auto++;
	}
	res->final_release = -1;
	for (unsigned r = s->npub; r-- > 0;)
		if (s->rr[r].state.status != RF_ROLLOUT_HALTED &&
		    s->rr[r].state.status != RF_ROLLOUT_ROLLED_BACK) {
			res->final_release = (int)r;
			break;
		}
	for (uint32_t i = 0; i < s->n && res->final_release >= 0; i++)
		res->on_final += s->d[i].rel == (uint16_t)res->final_release;
	res->exposed = s->exposed;
	res->nreleases = s->nrel;
	for (unsigned r = 1; r < s->nrel && r < RF_SIM_RELEASES_MAX; r++) {
		struct rf_sim_release_outcome *o = &res->rel[r];
		o->bad = s->rel[r].bad;
		o->published = s->rel[r].published;
		if (!o->gate_halted) {
			o->halt_s = -1;
			o->left_first_ring =
			    o->published && s->pol->nrings > 1 &&
			    s->rr[r].state.rings[1].phase != RF_ROLLOUT_NOT_STARTED;
		}
	}
	if (res->crashed == 0)
		res->recovery_s = 0;
	else if (res->still_down == 0)
		res->recovery_s = s->last_heal;
	else
		res->recovery_s = -1;
	if (res->healed_auto == 0)
		res->max_heal_s = -1;
}

static void sim_free(struct sim *s)
{
	free(s->d);
	free(s->gslots);
	for (unsigned r = 0; s->rel && r < s->nrel; r++)
		free(s->rel[r].admit);
	free(s->rel);
	free(s->rr);
	free(s->tpol);
	rf__sim_queue_fini(&s->q);
}

static int sim_run(const struct rf_sim_scenario *sc, const struct rf_sim_policy *pol,
		   const struct rf_sim_options *opt, struct rf_diag *reterr,
		   struct rf_sim_result **ret)
{
	static const struct rf_sim_options none = {0};
	if (!opt)
		opt = &none;
	uint64_t n = opt->devices ? opt->devices : sc->devices;
	if (n == 0 || n > RF_SIM_DEVICES_MAX)
		return rf_diag_report(reterr, -EINVAL, "devices: %llu is not in [1, %u]",
				      (unsigned long long)n, RF_SIM_DEVICES_MAX);
	if (sc->nreleases == 0 || sc->nreleases >= RF_SIM_RELEASES_MAX ||
	    sc->nreleases + 1 > RF_ROLLOUT_DECIDE_MAX)
		return rf_diag_report(reterr, -EINVAL, "scenario has %u releases", sc->nreleases);
	if (pol->nrings == 0 || pol->nrings > RF_SIM_RINGS_MAX || sc->tenants == 0 ||
	    sc->tenants > 65536 || sc->poll_s == 0)
		return rf_diag_report(reterr, -EINVAL, "policy or scenario out of range");

	struct sim s = {.sc = sc, .pol = pol, .seed = opt->seed, .n = (uint32_t)n, .diag = reterr};
	s.horizon = opt->duration_s ? opt->duration_s : sc->duration_s;
	if (s.horizon > RF_SIM_DURATION_MAX)
		return rf_diag_report(reterr, -EINVAL, "duration over %u s", RF_SIM_DURATION_MAX);
	struct rf_sim_result *res = calloc(1, sizeof(*res));
	/* The timeline: a row a minute for the first FINE_S (where incidents and halts happen),
	 * then rows spread evenly over the rest, RF_SIM_TIMELINE_MAX in all. */
	const uint32_t FINE_S = 6 * 3600, fine_rows = FINE_S / 60 + 1;
	uint32_t dt = 60;
	if (s.horizon > FINE_S) {
		dt = (s.horizon - FINE_S) / (RF_SIM_TIMELINE_MAX - fine_rows - 2) + 1;
		if (dt < 60)
			dt = 60;
	}
	size_t nsamp = fine_rows + s.horizon / dt + 2;
	if (res)
		res->samples = calloc(nsamp, sizeof(*res->samples));
	if (!res || !res->samples) {
		if (res)
			free(res->samples);
		free(res);
		return -ENOMEM;
	}
	s.res = res;
	res->halt_s = res->first_crash_s = -1;
	res->max_heal_s = -1;
	for (unsigned k = 0; k < RF_SIM_REACH_N; k++) {
		res->reach_s[k] = res->good_s[k] = -1;
		s.reach_need[k] = (uint64_t)ceil(rf_sim_reach_fraction[k] * (double)n);
	}
	s.last_heal = 0;
	snprintf(res->scenario, sizeof(res->scenario), "%s", sc->name);
	snprintf(res->policy, sizeof(res->policy), "%s", pol->name);
	res->devices = n;
	res->seed = opt->seed;
	res->duration_s = s.horizon;

	int r = setup(&s);
	uint32_t next_sample = 0, next_progress = 0;
	unsigned next_pub = 1;
	s.next_eval = 0;
	while (r == 0 && !s.err) {
		uint32_t tq = rf__sim_queue_peek_time(&s.q);
		uint32_t tpub = next_pub < s.nrel ? s.rel[next_pub].at : NEVER;
		uint32_t tfix = sc->vendor_fix_s && !s.fixed ? sc->vendor_fix_s : NEVER;
		uint32_t top = next_op(&s);
		uint32_t tg = s.next_eval;
		tg = tpub < tg ? tpub : tg;
		tg = tfix < tg ? tfix : tg;
		tg = top < tg ? top : tg;
		uint32_t t = tq < tg ? tq : tg;
		if (t > s.horizon)
			t = s.horizon + 1;
		while (next_sample <= t && next_sample <= s.horizon) {
			sample(&s, next_sample);
			next_sample += next_sample < FINE_S ? 60 : dt;
		}
		if (opt->progress && t >= next_progress) {
			opt->progress(opt->userdata,
				      (double)(t > s.horizon ? s.horizon : t) / s.horizon);
			next_progress = t + s.horizon / 200 + 1;
		}
		if (t > s.horizon)
			break;
		if (t == tg) {
			bool changed = false;
			while (next_pub < s.nrel && s.rel[next_pub].at <= t && !s.err) {
				s.err = build_admit(&s, next_pub);
				s.rel[next_pub].published = true;
				s.npub = ++next_pub;
				changed = true;
			}
			if (t == tfix)
				vendor_fix(&s, t);
			if (t >= top)
				run_ops(&s, t);
			if (changed || t >= s.next_eval) {
				evaluate(&s, t);
				s.next_eval = t + pol->evaluate_s;
			}
			continue;
		}
		struct rf_sim_event ev;
		rf__sim_queue_pop(&s.q, &ev);
		if (s.d[ev.dev].t_next != ev.t)
			continue; /* superseded */
		dev_event(&s, ev.dev, ev.t);
		check_reach(&s, ev.t);
	}
	if (r == 0)
		r = s.err;
	if (r == 0) {
		if (res->nsamples == 0 || res->samples[res->nsamples - 1].t_s != s.horizon)
			sample(&s, s.horizon);
		finish(&s);
		*ret = res;
	} else {
		rf_sim_result_free(res);
	}
	sim_free(&s);
	return r;
}

const double rf_sim_reach_fraction[RF_SIM_REACH_N] = {0.50, 0.90, 0.99};

void rf_sim_good_twin(const struct rf_sim_scenario *sc, struct rf_sim_scenario *ret)
{
	*ret = *sc;
	ret->failure = RF_SIM_FAIL_NONE;
	memset(ret->releases, 0, sizeof(ret->releases));
	ret->nreleases = 1;
	ret->vendor_fix_s = 0;
	ret->baseline_rollback_s = 0;
	if (ret->duration_s < 86400)
		ret->duration_s = 86400;
}

int rf_sim_run(const struct rf_sim_scenario *sc, const struct rf_sim_policy *pol,
	       const struct rf_sim_options *opt, struct rf_diag *reterr, struct rf_sim_result **ret)
{
	struct rf_sim_result *res = NULL, *good = NULL;
	int r = sim_run(sc, pol, opt, reterr, &res);
	if (r < 0 || !opt || !opt->velocity) {
		if (r == 0)
			*ret = res;
		return r;
	}
	/* The good twin, on the same fleet, over at least a day (a slow policy needs hours). */
	struct rf_sim_scenario *twin = malloc(sizeof(*twin));
	struct rf_sim_options o = *opt;
	if (!twin) {
		rf_sim_result_free(res);
		return -ENOMEM;
	}
	rf_sim_good_twin(sc, twin);
	o.velocity = false;
	o.progress = NULL;
	/* An explicit duration holds for both runs (a short run then shows a slow policy as
	 * "never"); otherwise the twin's own, at least a day. */
	r = sim_run(twin, pol, &o, reterr, &good);
	free(twin);
	if (r < 0) {
		rf_sim_result_free(res);
		return r;
	}
	res->velocity = true;
	memcpy(res->good_s, good->reach_s, sizeof(res->good_s));
	/* The twin's timeline on the run's time grid: its latest row at or before each. */
	for (size_t i = 0, j = 0; i < res->nsamples; i++) {
		while (j + 1 < good->nsamples && good->samples[j + 1].t_s <= res->samples[i].t_s)
			j++;
		res->samples[i].good = good->nsamples ? good->samples[j].on_first : 0;
	}
	rf_sim_result_free(good);
	*ret = res;
	return 0;
}

void rf_sim_result_free(struct rf_sim_result *r)
{
	if (!r)
		return;
	free(r->samples);
	free(r);
}
