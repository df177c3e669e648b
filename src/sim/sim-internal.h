/*
 * The fleet simulator's private vocabulary, shared by its three engine files and nothing else
 * (the contract is sim.h; docs/sim.md describes the model):
 *  - devices.c:  the simulated device: its timers, the failure model, the real guard fed with
 *                boots, loads, crashes and probation ticks, its check-ins and their answers;
 *  - releases.c: the simulated server's side of each release: admitted counts, the real
 *                gates (rf_rollout_evaluate), halts, the vendor's fix, operator actions, and
 *                waking exactly the devices a change of a release can affect;
 *  - sim.c:      setup, the discrete-event loop, the timeline, the result and the public API.
 *
 * Invariants: every device has at most one live queue entry (t_next; older entries are
 * dropped when popped); a device is only woken when one of its timers is due; all randomness
 * comes from rng.h draws keyed by device, so the result does not depend on visiting order.
 * The short type and constant names below are private to src/sim; functions shared between
 * the files are rf__sim_*.
 */
#ifndef RF_SIM_SIM_INTERNAL_H
#define RF_SIM_SIM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/guard.h"
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

static inline void cell_sync(struct health_cell *c, uint32_t t)
{
	if (t > c->exp_t) {
		c->exp_acc += c->on * (uint64_t)(t - c->exp_t);
		c->exp_t = t;
	}
}

static inline bool rel_bad(const struct sim *s, uint16_t r)
{
	return r != NOREL && s->rel[r].bad;
}

/* ---- devices.c ----------------------------------------------------------------------------- */

/* The device's first scheduled check-in at or after t (NEVER past the horizon). */
uint32_t rf__sim_next_slot(const struct sim *s, uint32_t i, uint32_t t);
/* Queue the device at its earliest timer, unless it is queued there already. */
void rf__sim_resched(struct sim *s, uint32_t i, struct dev *d);
/* Fire every timer of device i due at t, then requeue it. */
void rf__sim_dev_event(struct sim *s, uint32_t i, uint32_t t);
/* Bring device i's next check-in forward to its first slot at or after `at`. */
void rf__sim_wake(struct sim *s, uint32_t i, uint32_t at);
/* Whether the device can reach the server now (up, or a process crash loop). */
bool rf__sim_can_checkin(const struct sim *s, const struct dev *d);
/* The server's answer to device i's check-in at t (rf_rollout_decide). */
int rf__sim_decide(struct sim *s, uint32_t i, const struct dev *d, uint32_t t,
		   struct rf_rollout_answer *ans);

/* ---- releases.c ---------------------------------------------------------------------------- */

/* Release r is published: count its admitted devices per ring and bucket. 0 or -ENOMEM. */
int rf__sim_build_admit(struct sim *s, unsigned r);
/* Run the gates of every published, unfinished release at t; wake whom a change affects. */
void rf__sim_evaluate(struct sim *s, uint32_t t);
/* The vendor's fix at its real time: roll back every bad release. */
void rf__sim_vendor_fix(struct sim *s, uint32_t t);
/* The earliest scenario operator action not yet carried out, or NEVER. */
uint32_t rf__sim_next_op(const struct sim *s);
/* Carry out every operator action due at t. */
void rf__sim_run_ops(struct sim *s, uint32_t t);

#endif
