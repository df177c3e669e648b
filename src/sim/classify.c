/*
 * The gates as a classifier (see classify.h): a catalogue of good and bad releases built on
 * one fleet, each run through rf_sim_run (the real rollout engine and guard), and the
 * confusion counts. Severities are stated against the scenarios': crash on load (2024-07-19,
 * Google 2025), a crash 5 minutes after load (Azure Front Door 2025), a hang (Cloudflare
 * 2019), 2 % of hosts an hour (probabilistic-crash), 600 alerts per host-hour
 * (false-positive-storm). Weaker cases are in the catalogue to show where the gates stop
 * seeing, and are not part of the goal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "ringfence/limits.h"
#include "rollout/rollout.h"
#include "sim/classify.h"

struct spec {
	const char *name;
	bool strong;
	enum rf_sim_failure mode;
	enum rf_sim_crash_kind kind;
	uint32_t delay_s;
	double rate, alerts;
	double bg_crash, base_alerts; /* noise (per device-hour) */
	const char *rels;	      /* releases: "g@0 b@300 ..." (good/bad at second) */
};

static const struct spec cat[] = {
    /* good releases, with background noise of increasing strength */
    {"good/quiet", false, RF_SIM_FAIL_NONE, 0, 0, 0, 0, 1e-5, 0.1, "g@0"},
    {"good/crash-noise-1e-3", false, RF_SIM_FAIL_NONE, 0, 0, 0, 0, 1e-3, 0.1, "g@0"},
    {"good/crash-noise-1e-2", false, RF_SIM_FAIL_NONE, 0, 0, 0, 0, 1e-2, 0.1, "g@0"},
    {"good/alert-noise-50", false, RF_SIM_FAIL_NONE, 0, 0, 0, 0, 1e-4, 50, "g@0"},
    {"good/six-in-a-row", false, RF_SIM_FAIL_NONE, 0, 0, 0, 0, 1e-3, 1,
     "g@0 g@600 g@1200 g@1800 g@2400 g@3000"},
    /* bad releases, every failure mode of the scenarios */
    {"crash-on-load/machine", true, RF_SIM_FAIL_CRASH, RF_SIM_CRASH_MACHINE, 5, 0, 0, 1e-4, 0.1,
     "b@0"},
    {"crash-on-load/process", true, RF_SIM_FAIL_CRASH, RF_SIM_CRASH_PROCESS, 0, 0, 0, 1e-4, 0.1,
     "b@0"},
    {"crash-after-60s/process", true, RF_SIM_FAIL_CRASH, RF_SIM_CRASH_PROCESS, 60, 0, 0, 1e-4, 0.1,
     "b@0"},
    {"crash-after-300s/process", true, RF_SIM_FAIL_CRASH, RF_SIM_CRASH_PROCESS, 300, 0, 0, 1e-4,
     0.1, "b@0"},
    {"crash-after-900s/machine", false, RF_SIM_FAIL_CRASH, RF_SIM_CRASH_MACHINE, 900, 0, 0, 1e-4,
     0.1, "b@0"},
    {"hang", true, RF_SIM_FAIL_HANG, RF_SIM_CRASH_PROCESS, 0, 0, 0, 1e-4, 0.1, "b@0"},
    {"crash-rate-50%/h", true, RF_SIM_FAIL_CRASH_RATE, RF_SIM_CRASH_MACHINE, 0, 0.5, 0, 1e-4, 0.1,
     "b@0"},
    {"crash-rate-10%/h", true, RF_SIM_FAIL_CRASH_RATE, RF_SIM_CRASH_MACHINE, 0, 0.1, 0, 1e-4, 0.1,
     "b@0"},
    {"crash-rate-2%/h", true, RF_SIM_FAIL_CRASH_RATE, RF_SIM_CRASH_MACHINE, 0, 0.02, 0, 1e-4, 0.1,
     "b@0"},
    {"crash-rate-2%/h-noisy", true, RF_SIM_FAIL_CRASH_RATE, RF_SIM_CRASH_MACHINE, 0, 0.02, 0, 1e-3,
     0.1, "b@0"},
    {"crash-rate-0.5%/h", false, RF_SIM_FAIL_CRASH_RATE, RF_SIM_CRASH_MACHINE, 0, 0.005, 0, 1e-4,
     0.1, "b@0"},
    {"alert-storm-6000/h", true, RF_SIM_FAIL_ALERT_STORM, 0, 0, 0, 6000, 1e-4, 0.1, "b@0"},
    {"alert-storm-600/h", true, RF_SIM_FAIL_ALERT_STORM, 0, 0, 0, 600, 1e-4, 0.1, "b@0"},
    {"alert-storm-60/h", false, RF_SIM_FAIL_ALERT_STORM, 0, 0, 0, 60, 1e-4, 5, "b@0"},
    {"alert-storm-10/h", false, RF_SIM_FAIL_ALERT_STORM, 0, 0, 0, 10, 1e-4, 0.1, "b@0"},
    /* concurrent: bad releases while a good one rolls out, and the other way round */
    {"good-then-crash-on-load", true, RF_SIM_FAIL_CRASH, RF_SIM_CRASH_MACHINE, 5, 0, 0, 1e-4, 0.1,
     "g@0 b@300"},
    {"crash-rate-then-good", true, RF_SIM_FAIL_CRASH_RATE, RF_SIM_CRASH_MACHINE, 0, 0.02, 0, 1e-4,
     0.1, "b@0 g@900"},
    {"bad-good-bad/process", true, RF_SIM_FAIL_CRASH, RF_SIM_CRASH_PROCESS, 0, 0, 0, 1e-4, 0.1,
     "b@0 g@600 b@1200 g@1800"},
};

_Static_assert(sizeof(cat) / sizeof(cat[0]) <= RF_SIM_CASES_MAX, "catalogue over its limit");

static unsigned parse_rels(const char *p, struct rf_sim_release_spec *out)
{
	unsigned n = 0;
	while (*p && n + 1 < RF_SIM_RELEASES_MAX) {
		char *end;
		bool bad = *p == 'b';
		unsigned long at = strtoul(p + 2, &end, 10);
		out[n++] = (struct rf_sim_release_spec){.at_s = (uint32_t)at, .bad = bad};
		p = *end ? end + 1 : end;
	}
	return n;
}

size_t rf_sim_catalogue(const struct rf_sim_scenario *base, struct rf_sim_case *out)
{
	size_t n = sizeof(cat) / sizeof(cat[0]);
	for (size_t i = 0; i < n; i++) {
		const struct spec *c = &cat[i];
		struct rf_sim_scenario *sc = &out[i].sc;
		snprintf(out[i].name, sizeof(out[i].name), "%s", c->name);
		out[i].strong = c->strong;
		*sc = *base;
		snprintf(sc->name, sizeof(sc->name), "gates-%s", c->name);
		for (char *q = sc->name; *q; q++)
			if (*q == '/' || *q == '%')
				*q = '-';
		sc->failure = c->mode;
		sc->crash_kind = c->kind;
		sc->fail_delay_s = c->delay_s;
		sc->fail_rate_per_hour = c->rate;
		sc->alerts_per_hour = c->alerts;
		sc->background_crash_per_hour = c->bg_crash;
		sc->base_alerts_per_hour = c->base_alerts;
		memset(sc->releases, 0, sizeof(sc->releases));
		sc->nreleases = parse_rels(c->rels, sc->releases);
		sc->vendor_fix_s = 0; /* only the gates may stop anything */
		sc->baseline_rollback_s = 0;
		sc->nrepair = 0;
	}
	return n;
}

static double ratio(unsigned a, unsigned b)
{
	return b ? (double)a / b : 1.0;
}

int rf_sim_classify(const struct rf_sim_scenario *base, const struct rf_sim_policy *pol,
		    const struct rf_sim_options *opt, unsigned seeds, struct rf_diag *reterr,
		    struct rf_sim_classification *ret)
{
	struct rf_sim_case *cases = malloc(RF_SIM_CASES_MAX * sizeof(*cases));
	struct rf_sim_classification *c = calloc(1, sizeof(*c));
	int r = 0;
	if (!cases || !c) {
		free(cases);
		free(c);
		return -ENOMEM;
	}
	snprintf(c->policy, sizeof(c->policy), "%s", pol->name);
	c->nrows = rf_sim_catalogue(base, cases);
	for (size_t i = 0; i < c->nrows && r == 0; i++) {
		struct rf_sim_class_row *row = &c->rows[i];
		snprintf(row->name, sizeof(row->name), "%s", cases[i].name);
		row->strong = cases[i].strong;
		row->halt_max_s = -1;
		for (unsigned k = 0; k < seeds && r == 0; k++) {
			struct rf_sim_options o = {0};
			struct rf_sim_result *res = NULL;
			if (opt)
				o = *opt;
			o.seed += k;
			o.velocity = false;
			o.progress = NULL;
			if (!o.duration_s)
				o.duration_s = 6 * 3600;
			r = rf_sim_run(&cases[i].sc, pol, &o, reterr, &res);
			if (r < 0) {
				if (!reterr || !reterr->count)
					r = rf_diag_report(
					    reterr, r, "case %s, seed %llu: %s", cases[i].name,
					    (unsigned long long)o.seed, rf_strerror(r));
				break;
			}
			row->runs++;
			row->devices = res->devices;
			uint64_t harm = cases[i].sc.failure == RF_SIM_FAIL_ALERT_STORM
					    ? res->exposed
					    : res->crashed;
			if (harm > row->crashed_max)
				row->crashed_max = harm;
			for (unsigned q = 1; q < res->nreleases && q < RF_SIM_RELEASES_MAX; q++) {
				const struct rf_sim_release_outcome *x = &res->rel[q];
				if (!x->published)
					continue;
				if (!x->bad) {
					row->good++;
					row->good_halted += x->gate_halted;
					continue;
				}
				row->bad++;
				if (x->gate_halted) {
					row->bad_halted++;
					row->bad_in_canary += !x->left_first_ring;
					if (x->halt_s > row->halt_max_s)
						row->halt_max_s = x->halt_s;
				}
			}
			rf_sim_result_free(res);
		}
		c->good += row->good;
		c->good_halted += row->good_halted;
		c->bad += row->bad;
		c->bad_halted += row->bad_halted;
		c->bad_in_canary += row->bad_in_canary;
		if (row->strong) {
			c->strong += row->bad;
			c->strong_halted += row->bad_halted;
			c->strong_in_canary += row->bad_in_canary;
		}
	}
	free(cases);
	if (r < 0) {
		free(c);
		return r;
	}
	c->precision = ratio(c->bad_halted, c->bad_halted + c->good_halted);
	c->recall = ratio(c->bad_halted, c->bad);
	c->recall_canary = ratio(c->bad_in_canary, c->bad);
	c->strong_recall = ratio(c->strong_halted, c->strong);
	*ret = *c;
	free(c);
	return 0;
}

int rf_sim_render_classification(const struct rf_sim_classification *c, char **ret, size_t *ret_len)
{
	struct rf_buf b = RF_BUF_INIT(RF_FILE_MAX);
	uint8_t *p;
	int r = rf_buf_printf(&b, "%-26s %-6s %5s %5s %5s %6s %6s %6s %9s %10s\n", "case", "strong",
			      "runs", "good", "bad", "false", "halted", "canary", "max-harm",
			      "slowest");
	for (size_t i = 0; i < c->nrows && r == 0; i++) {
		const struct rf_sim_class_row *x = &c->rows[i];
		char slow[32] = "-";
		if (x->halt_max_s >= 0)
			snprintf(slow, sizeof(slow), "%lldm%02llds",
				 (long long)(x->halt_max_s / 60), (long long)(x->halt_max_s % 60));
		r = rf_buf_printf(&b, "%-26s %-6s %5u %5u %5u %6u %6u %6u %9llu %10s\n", x->name,
				  x->strong ? "yes" : "no", x->runs, x->good, x->bad,
				  x->good_halted, x->bad_halted, x->bad_in_canary,
				  (unsigned long long)x->crashed_max, slow);
	}
	if (r == 0)
		r = rf_buf_printf(
		    &b,
		    "\npolicy %s: %u good releases, %u halted (false halts); %u bad, %u halted, %u "
		    "of them in the canary\n"
		    "precision %.1f%% (halted releases that were bad), recall %.1f%% (bad releases "
		    "halted), %.1f%% in the canary\n"
		    "at least as severe as the scenarios: %u bad, recall %.1f%%, %.1f%% in the "
		    "canary\n",
		    c->policy, c->good, c->good_halted, c->bad, c->bad_halted, c->bad_in_canary,
		    100 * c->precision, 100 * c->recall, 100 * c->recall_canary, c->strong,
		    100 * c->strong_recall, 100 * ratio(c->strong_in_canary, c->strong));
	if (r == 0)
		r = rf_buf_steal(&b, &p, ret_len);
	if (r < 0) {
		rf_buf_free(&b);
		return r;
	}
	*ret = (char *)p;
	return 0;
}
