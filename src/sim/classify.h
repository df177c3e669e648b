/*
 * The health gates judged as a classifier (issue 14). A false halt of a good release costs
 * speed; a missed bad one costs hosts. rf_sim_classify runs a catalogue of releases on one
 * fleet under one policy: good ones with background crash and alert noise (alone, and several
 * in a row), bad ones of every failure mode of the scenarios at several severities (some
 * weaker than any incident), and bad ones published while a good one is rolling out. Every
 * release is judged by the real gates of the real rollout engine inside rf_sim_run; nothing
 * here decides anything, it only counts.
 *
 * precision = halted releases that were bad / halted releases;
 * recall = bad releases a gate halted / bad releases; recall in the canary = bad releases
 * halted before their second ring opened / bad releases; strong = the bad releases at least
 * as severe as the scenarios' (the goal: recall 100 % for these, precision >= 99 %).
 */
#ifndef RF_SIM_CLASSIFY_H
#define RF_SIM_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"
#include "sim/scenario.h"
#include "sim/sim.h"

/* Cases in the catalogue (each run once per seed). */
#define RF_SIM_CASES_MAX 32u

struct rf_sim_case {
	char name[48];
	bool strong; /* at least as severe as the scenarios' failure of the same kind */
	struct rf_sim_scenario sc;
};

/* Fill out[0..RF_SIM_CASES_MAX) with the catalogue on base's fleet (size, polls, reboots;
 * its releases, failure and noise are replaced). Returns the number of cases. */
size_t rf_sim_catalogue(const struct rf_sim_scenario *base, struct rf_sim_case *out);

struct rf_sim_class_row {
	char name[48];
	bool strong;
	unsigned runs;		/* seeds */
	unsigned good, bad;	/* releases published */
	unsigned good_halted;	/* false halts */
	unsigned bad_halted;	/* halted by a gate */
	unsigned bad_in_canary; /* ... before their second ring opened */
	uint64_t crashed_max;	/* most devices crashed (or, alert storm, exposed) in one run */
	uint64_t devices;
	int64_t halt_max_s; /* slowest gate halt of a bad release after its publish; -1 none */
};

struct rf_sim_classification {
	char policy[64];
	size_t nrows;
	struct rf_sim_class_row rows[RF_SIM_CASES_MAX];
	unsigned good, good_halted, bad, bad_halted, bad_in_canary;
	unsigned strong, strong_halted, strong_in_canary;
	double precision, recall, recall_canary, strong_recall; /* 1.0 when undefined (0/0) */
};

/*
 * Run the catalogue on base's fleet under pol, seeds times (seeds opt->seed, +1, ...), each
 * run opt->duration_s (0: 6 h) with opt->devices (0: base's). Returns 0 and fills *ret (a
 * plain value, ~5 KB); -EINVAL / -ENOMEM as rf_sim_run (reterr names the case).
 */
int rf_sim_classify(const struct rf_sim_scenario *base, const struct rf_sim_policy *pol,
		    const struct rf_sim_options *opt, unsigned seeds, struct rf_diag *reterr,
		    struct rf_sim_classification *ret) RF_WUR;

/* The table: one row per case, then the totals. New buffer in *ret; 0 or -ENOMEM. */
int rf_sim_render_classification(const struct rf_sim_classification *c, char **ret,
				 size_t *ret_len) RF_WUR;

#endif
