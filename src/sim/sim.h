/*
 * The fleet simulator: millions of simulated devices driven by the REAL rollout engine
 * (src/rollout/rollout.h: schedule, buckets, gates, the check-in decision) and the REAL
 * crash-loop guard (src/agent/guard.h), to replay incidents and compare rollout policies.
 *
 * Discrete-event and deterministic for a seed: every random draw is a pure function of
 * (seed, device, stream, counter) (rng.h), and events at the same second are taken in device
 * order. A device is only visited when something can happen to it: the decision function says
 * when its answer can next change, so idle devices are not polled poll by poll; a change of a
 * release's state (a ring opens, a step, a halt) wakes exactly the devices it can affect.
 * docs/sim.md describes the model, its simplifications and every scenario.
 */
#ifndef RF_SIM_SIM_H
#define RF_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"
#include "sim/scenario.h"

struct rf_sim_options {
	uint64_t devices;    /* 0 = the scenario's fleet size */
	uint64_t seed;	     /* any value; the same seed gives the same result */
	uint32_t duration_s; /* 0 = the scenario's duration */
	/* Also run the scenario's good twin (rf_sim_good_twin: the same fleet and policy, one
	 * good release at the start) and report how fast it reaches the fleet (good_s[], the
	 * samples' `good`), over duration_s when given, else the twin's own (at least a day).
	 * Doubles the work at most. */
	bool velocity;
	/* Called now and then with the share of simulated time done (0..1); may be NULL. */
	void (*progress)(void *userdata, double done);
	void *userdata;
};

/* One timeline row: the fleet at time t_s (seconds after the scenario start). */
struct rf_sim_sample {
	uint32_t t_s;
	uint32_t healthy; /* up and doing its job (good content, last known good or safe mode) */
	uint32_t crashed; /* down or hung with no automatic way out (waits for a fix or a person) */
	uint32_t recovering; /* down, and the guard will bring it back by itself (reboot in a loop
				that the attempt limit ends) */
	uint32_t on_bad;     /* running a bad release right now */
	uint32_t exposed;    /* ever loaded a bad release (cumulative) */
	uint32_t halted;     /* bad releases halted or rolled back so far */
	uint32_t on_first;   /* running the scenario's first release right now */
	uint32_t good;	     /* with options.velocity: devices of the good twin running its
				release at (about) this time; 0 otherwise */
};

/* What became of one scenario release (index 1.. in the scenario's order; 0 is the fleet's
 * running content), for judging the gates as a classifier. */
struct rf_sim_release_outcome {
	bool bad;	      /* the scenario made it bad */
	bool published;	      /* its publish time came within the run */
	bool gate_halted;     /* a health gate halted it (not the vendor, not an operator) */
	bool left_first_ring; /* its second ring opened before it was halted (or the run ended) */
	uint8_t metric;	      /* enum rf_rollout_metric that halted it */
	int64_t halt_s;	      /* its publish -> its gate halt; -1 none */
};

/* The velocity milestones: 50 %, 90 % and 99 % of the fleet. */
#define RF_SIM_REACH_N 3
extern const double rf_sim_reach_fraction[RF_SIM_REACH_N];

struct rf_sim_result {
	char scenario[64];
	char policy[64];
	uint64_t devices, seed;
	uint32_t duration_s;
	/* the summary */
	uint64_t exposed;      /* devices that ever loaded a bad release */
	uint64_t crashed;      /* devices that ever crashed or hung because of a bad release */
	uint64_t healed_auto;  /* of those, back to healthy without a person */
	uint64_t needed_human; /* of those, brought back only by a person's repair */
	uint64_t still_down;   /* of those, still down when the simulation ended */
	int64_t halt_s;	       /* publish -> first halt/rollback of a bad release; -1 never */
	int64_t first_crash_s; /* publish -> first crash caused by a bad release; -1 never */
	int64_t recovery_s;    /* publish -> the last crashed device is healthy; -1 never
				  (some still down at the end, or none crashed: then 0) */
	int64_t max_heal_s;    /* longest first-crash -> healthy of a device healed without a
				  person; -1 when none */
	uint64_t crashes_outside_first_ring; /* devices outside the first ring that ever crashed */
	uint64_t
	    background_crashes;	   /* crashes unrelated to content (noise the gates must ignore) */
	uint64_t checkins;	   /* check-ins simulated (work done) */
	uint64_t events;	   /* device events processed (work done) */
	uint64_t checkins_refused; /* check-ins the server was too busy to answer */
	/* Where the fleet ends: the newest published release that is not halted or rolled back
	 * (-1: none) and how many devices run it at the end ("every device ends on the fix"). */
	int final_release;
	uint64_t on_final;
	uint64_t obeyed; /* go-backs ordered by the server: never counted as failures */
	char halt_reason[160];
	/* Velocity: publish of the first release -> the moment at least rf_sim_reach_fraction[k]
	 * of the fleet runs it at once; -1 never (halted, or too slow for the run). */
	int64_t reach_s[RF_SIM_REACH_N];
	/* The same milestones of the good twin (options.velocity; else all -1): how fast a good
	 * release reaches this fleet under this policy. */
	bool velocity;
	int64_t good_s[RF_SIM_REACH_N];
	/* per release (index 0 unused) */
	unsigned nreleases; /* the scenario's releases + 1 */
	struct rf_sim_release_outcome rel[RF_SIM_RELEASES_MAX];
	/* the timeline */
	size_t nsamples;
	struct rf_sim_sample *samples;
};

/*
 * Run scenario sc under policy pol. Returns 0 and a new result in *ret (free it with
 * rf_sim_result_free); -EINVAL for inconsistent input (reterr says what: a scenario release
 * the engine refuses, more devices than RF_SIM_DEVICES_MAX, ...); -ENOMEM. Pure apart from
 * memory: no I/O, no clock, no global state; two runs with the same inputs give equal results.
 */
int rf_sim_run(const struct rf_sim_scenario *sc, const struct rf_sim_policy *pol,
	       const struct rf_sim_options *opt, struct rf_diag *reterr,
	       struct rf_sim_result **ret) RF_WUR;

void rf_sim_result_free(struct rf_sim_result *r);

/*
 * The good twin of scenario sc: the same fleet (size, polls, reboots, background crash and
 * alert noise, offline devices, server capacity), one good release published at the start,
 * no failure, no vendor fix, no operator action, and at least 24 simulated hours, so that the
 * velocity of a policy is measured on the fleet its safety was measured on.
 */
void rf_sim_good_twin(const struct rf_sim_scenario *sc, struct rf_sim_scenario *ret);

/*
 * Renderers (pure: they build text in a new NUL-terminated buffer *ret of *ret_len bytes; the
 * caller frees it). 0 or -ENOMEM.
 *  - csv: the timeline, one header line then one row per sample.
 *  - svg: a line chart of healthy, crashed, recovering, exposed and halted over time: the
 *    share of the fleet (linear) above, device counts (log scale, peaks labelled) below.
 *  - summary: the table header (when header is true) and one row for r.
 */
int rf_sim_render_csv(const struct rf_sim_result *r, char **ret, size_t *ret_len) RF_WUR;
int rf_sim_render_svg(const struct rf_sim_result *r, char **ret, size_t *ret_len) RF_WUR;
int rf_sim_render_summary(const struct rf_sim_result *r, bool header, char **ret,
			  size_t *ret_len) RF_WUR;

#endif
