/*
 * Policy search (issue 14): `ringfence sim --sweep` runs a grid of policies (canary size and
 * first step, broad ramp shape, bake time, the agents' poll interval) plus the named policies
 * on the 2024-07-19 fleet, each with its good twin, and finds the Pareto front of time to 99 %
 * of the fleet on a good release against devices crashed by the bad one: the policies no
 * other policy beats on both. Every run is rf_sim_run (the real rollout engine and guard);
 * the members of the front are then checked on the other scenarios (harm: the largest share
 * of a fleet crashed, or for an alert storm exposed, on any of them).
 */
#ifndef RF_SIM_SWEEP_H
#define RF_SIM_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"
#include "sim/scenario.h"
#include "sim/sim.h"

/* Points of one sweep: the grid (3 canaries x 2 first steps x 3 broad ramps x 3 bakes x 2
 * polls = 108) and up to 12 named policies. */
#define RF_SIM_SWEEP_MAX 120u

struct rf_sim_sweep_point {
	char name[64];
	struct rf_sim_policy pol;
	uint32_t poll_s;  /* the agents' poll interval (0: the scenario's) */
	int64_t good99_s; /* good twin: publish -> 99 % of the fleet on it; -1 never */
	uint64_t crashed; /* devices crashed by the bad release */
	bool front;	  /* on the Pareto front */
	bool harm_known;  /* harm_max was measured (front members only) */
	double harm_max;  /* largest share of a fleet harmed on the other scenarios */
	char harm_worst[64];
};

struct rf_sim_sweep {
	char scenario[64];
	uint64_t devices;
	size_t n;
	struct rf_sim_sweep_point p[RF_SIM_SWEEP_MAX];
};

/*
 * Run the sweep: the grid built on `base` (the guard, gates and agent settings of the rapid
 * policy, say) plus named[0..nnamed), on scenario sc (its bad release and good twin), then the
 * front members on others[0..nothers) (at most opt->devices each). opt: devices (0: sc's),
 * seed, duration_s (0: 12 h, so that the default policy's 6.5 h show). progress (may be
 * NULL) is called with the share done.
 * Returns 0 and a new sweep in *ret (free()); -EINVAL/-ENOMEM as rf_sim_run.
 */
int rf_sim_sweep_run(const struct rf_sim_scenario *sc, const struct rf_sim_policy *base,
		     const struct rf_sim_policy *named, size_t nnamed,
		     const struct rf_sim_scenario *others, size_t nothers,
		     const struct rf_sim_options *opt, struct rf_diag *reterr,
		     struct rf_sim_sweep **ret) RF_WUR;

/* The table (every point, sorted by time to 99 %, front marked '*') and the SVG chart (log
 * scales, the front as a line, the named policies labelled). New buffers; 0 or -ENOMEM. */
int rf_sim_render_sweep(const struct rf_sim_sweep *w, char **ret, size_t *ret_len) RF_WUR;
int rf_sim_render_sweep_svg(const struct rf_sim_sweep *w, char **ret, size_t *ret_len) RF_WUR;

#endif
