/*
 * Policy search (see sweep.h). The grid varies what a vendor chooses: how big the canary is and
 * how much of it takes a release first, the shape of the broad ring's ramp (exponential, all at
 * once, or the default's hours-long steps), the bake time of each step, and how often agents
 * poll. Everything else (the guard, the statistical gates, backoff) comes from the base policy.
 * The sweep only runs rf_sim_run and compares numbers; it decides nothing about releases.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "ringfence/limits.h"
#include "sim/sweep.h"

struct canary {
	const char *name;
	double share;
	uint32_t min_devices;
};

struct ramp {
	const char *name;
	unsigned n;
	int64_t after[4];
	uint32_t bp[4];
};

static const struct canary canaries[] = {
    {"c50", 0.000005, 50}, {"c100", 0.00001, 100}, {"c1000", 0.001, 1000}};
static const uint32_t first_bp[] = {1000, 10000};
static const struct ramp ramps[] = {
    {"exp", 3, {0, 300, 600}, {100, 1000, 10000}},
    {"once", 1, {0}, {10000}},
    {"hours", 4, {0, 3600, 7200, 10800}, {500, 2500, 5000, 10000}},
};
static const int64_t bakes[] = {120, 300, 600};
static const uint32_t polls[] = {60, 300};

static void grid_policy(const struct rf_sim_policy *base, const struct canary *c, uint32_t first,
			const struct ramp *rp, int64_t bake, uint32_t poll,
			struct rf_sim_sweep_point *out)
{
	struct rf_sim_policy *p = &out->pol;
	*p = *base;
	snprintf(out->name, sizeof(out->name), "%s/%u%%-%s-bake%lld-poll%u", c->name, first / 100,
		 rp->name, (long long)bake, poll);
	snprintf(p->name, sizeof(p->name), "%s", out->name);
	p->nrings = 2;
	memset(p->rings, 0, sizeof(p->rings));
	snprintf(p->rings[0].name, sizeof(p->rings[0].name), "canary");
	p->rings[0].share = c->share;
	p->rings[0].min_devices = c->min_devices;
	p->rings[0].nsteps = 1;
	p->rings[0].steps[0] = (struct rf_rollout_step){.after = 0, .percent_bp = first};
	if (first < 10000) {
		p->rings[0].nsteps = 2;
		p->rings[0].steps[1] = (struct rf_rollout_step){.after = 300, .percent_bp = 10000};
	}
	snprintf(p->rings[1].name, sizeof(p->rings[1].name), "broad");
	p->rings[1].share = 1.0 - c->share;
	p->rings[1].nsteps = rp->n;
	for (unsigned k = 0; k < rp->n; k++)
		p->rings[1].steps[k] =
		    (struct rf_rollout_step){.after = rp->after[k], .percent_bp = rp->bp[k]};
	p->gates_enabled = true;
	p->gates.min_bake_s = bake;
	out->poll_s = poll;
}

static void with_poll(const struct rf_sim_scenario *sc, uint32_t poll, struct rf_sim_scenario *out)
{
	*out = *sc;
	if (poll) {
		out->poll_s = poll;
		out->poll_jitter_s = poll / 5;
	}
}

static int run_point(const struct rf_sim_scenario *sc, struct rf_sim_sweep_point *pt,
		     const struct rf_sim_options *opt, bool velocity, struct rf_diag *reterr,
		     struct rf_sim_result **ret)
{
	struct rf_sim_scenario *s = malloc(sizeof(*s));
	struct rf_sim_options o = *opt;
	if (!s)
		return -ENOMEM;
	with_poll(sc, pt->poll_s, s);
	o.velocity = velocity;
	o.progress = NULL;
	if (!o.duration_s)
		o.duration_s = 12 * 3600;
	if (o.devices > s->devices)
		o.devices = s->devices;
	int r = rf_sim_run(s, &pt->pol, &o, reterr, ret);
	free(s);
	return r;
}

/* a dominates b: no worse on both, better on one ("never" is worse than any time). */
static bool dominates(const struct rf_sim_sweep_point *a, const struct rf_sim_sweep_point *b)
{
	double ta = a->good99_s < 0 ? INFINITY : (double)a->good99_s;
	double tb = b->good99_s < 0 ? INFINITY : (double)b->good99_s;
	return ta <= tb && a->crashed <= b->crashed && (ta < tb || a->crashed < b->crashed);
}

int rf_sim_sweep_run(const struct rf_sim_scenario *sc, const struct rf_sim_policy *base,
		     const struct rf_sim_policy *named, size_t nnamed,
		     const struct rf_sim_scenario *others, size_t nothers,
		     const struct rf_sim_options *opt, struct rf_diag *reterr,
		     struct rf_sim_sweep **ret)
{
	static const struct rf_sim_options none = {0};
	struct rf_sim_sweep *w = calloc(1, sizeof(*w));
	if (!opt)
		opt = &none;
	if (!w)
		return -ENOMEM;
	snprintf(w->scenario, sizeof(w->scenario), "%s", sc->name);
	w->devices = opt->devices && opt->devices < sc->devices ? opt->devices : sc->devices;
	for (size_t a = 0; a < sizeof(canaries) / sizeof(canaries[0]); a++)
		for (size_t b = 0; b < sizeof(first_bp) / sizeof(first_bp[0]); b++)
			for (size_t c = 0; c < sizeof(ramps) / sizeof(ramps[0]); c++)
				for (size_t e = 0; e < sizeof(bakes) / sizeof(bakes[0]); e++)
					for (size_t f = 0; f < sizeof(polls) / sizeof(polls[0]);
					     f++)
						grid_policy(base, &canaries[a], first_bp[b],
							    &ramps[c], bakes[e], polls[f],
							    &w->p[w->n++]);
	for (size_t k = 0; k < nnamed && w->n < RF_SIM_SWEEP_MAX; k++) {
		struct rf_sim_sweep_point *pt = &w->p[w->n++];
		pt->pol = named[k];
		snprintf(pt->name, sizeof(pt->name), "%s", named[k].name);
	}
	int r = 0;
	size_t total = w->n + 8 * nothers, done = 0;
	for (size_t k = 0; k < w->n && r == 0; k++, done++) {
		struct rf_sim_result *res = NULL;
		if (opt->progress)
			opt->progress(opt->userdata, (double)done / total);
		r = run_point(sc, &w->p[k], opt, true, reterr, &res);
		if (r < 0)
			break;
		w->p[k].good99_s = res->good_s[RF_SIM_REACH_N - 1];
		w->p[k].crashed = res->crashed;
		rf_sim_result_free(res);
	}
	for (size_t k = 0; k < w->n && r == 0; k++) {
		w->p[k].front = w->p[k].good99_s >= 0;
		for (size_t j = 0; j < w->n && w->p[k].front; j++)
			if (j != k && dominates(&w->p[j], &w->p[k]))
				w->p[k].front = false;
	}
	/* The front's members on the other scenarios: is the trade-off safe elsewhere too? */
	for (size_t k = 0; k < w->n && r == 0; k++) {
		struct rf_sim_sweep_point *pt = &w->p[k];
		if (!pt->front)
			continue;
		pt->harm_known = true;
		for (size_t q = 0; q < nothers && r == 0; q++, done++) {
			struct rf_sim_result *res = NULL;
			if (opt->progress)
				opt->progress(opt->userdata, (double)done / total);
			r = run_point(&others[q], pt, opt, false, reterr, &res);
			if (r < 0)
				break;
			uint64_t harm = others[q].failure == RF_SIM_FAIL_ALERT_STORM ? res->exposed
										     : res->crashed;
			double share = (double)harm / (double)res->devices;
			if (share >= pt->harm_max) {
				pt->harm_max = share;
				snprintf(pt->harm_worst, sizeof(pt->harm_worst), "%s",
					 others[q].name);
			}
			rf_sim_result_free(res);
		}
	}
	if (opt->progress)
		opt->progress(opt->userdata, 1.0);
	if (r < 0) {
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

static int by_time(const void *a, const void *b)
{
	const struct rf_sim_sweep_point *x = *(const struct rf_sim_sweep_point *const *)a;
	const struct rf_sim_sweep_point *y = *(const struct rf_sim_sweep_point *const *)b;
	double tx = x->good99_s < 0 ? INFINITY : (double)x->good99_s;
	double ty = y->good99_s < 0 ? INFINITY : (double)y->good99_s;
	if (tx != ty)
		return tx < ty ? -1 : 1;
	return x->crashed < y->crashed ? -1 : x->crashed > y->crashed;
}

static void dur(char *out, size_t n, int64_t s)
{
	if (s < 0)
		snprintf(out, n, "never");
	else if (s < 3600)
		snprintf(out, n, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(out, n, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
}

int rf_sim_render_sweep(const struct rf_sim_sweep *w, char **ret, size_t *ret_len)
{
	struct rf_buf b = RF_BUF_INIT(RF_FILE_MAX);
	const struct rf_sim_sweep_point *v[RF_SIM_SWEEP_MAX];
	uint8_t *p;
	for (size_t k = 0; k < w->n; k++)
		v[k] = &w->p[k];
	qsort(v, w->n, sizeof(v[0]), by_time);
	int r = rf_buf_printf(&b,
			      "policy sweep on %s, %llu devices: time to 99%% of the fleet on a "
			      "good release vs devices crashed by the bad one ('*': Pareto front)\n"
			      "  %-36s %8s %8s  %s\n",
			      w->scenario, (unsigned long long)w->devices, "policy", "good-99",
			      "crashed", "front: worst harm on the other scenarios");
	for (size_t k = 0; k < w->n && r == 0; k++) {
		char t[32], harm[96] = "";
		dur(t, sizeof(t), v[k]->good99_s);
		if (v[k]->harm_known)
			snprintf(harm, sizeof(harm), "%.3f%% (%s)", 100 * v[k]->harm_max,
				 v[k]->harm_worst);
		r = rf_buf_printf(&b, "%c %-36s %8s %8llu  %s\n", v[k]->front ? '*' : ' ',
				  v[k]->name, t, (unsigned long long)v[k]->crashed, harm);
	}
	if (r == 0)
		r = rf_buf_steal(&b, &p, ret_len);
	if (r < 0) {
		rf_buf_free(&b);
		return r;
	}
	*ret = (char *)p;
	return 0;
}

static int xml_name(struct rf_buf *b, const char *s)
{
	int r = 0;
	for (; *s && r == 0; s++)
		r = (*s == '<' || *s == '>' || *s == '&') ? rf_buf_printf(b, "_")
							  : rf_buf_printf(b, "%c", *s);
	return r;
}

int rf_sim_render_sweep_svg(const struct rf_sim_sweep *w, char **ret, size_t *ret_len)
{
	struct rf_buf b = RF_BUF_INIT(RF_FILE_MAX);
	const double W = 900, H = 520, L = 80, R = 40, T = 50, B = 60;
	const double pw = W - L - R, ph = H - T - B;
	const struct rf_sim_sweep_point *v[RF_SIM_SWEEP_MAX];
	double tmax = 60, cmax = 10;
	uint8_t *p;
	size_t nf = 0;
	for (size_t k = 0; k < w->n; k++) {
		if (w->p[k].good99_s > 0 && w->p[k].good99_s / 60.0 > tmax)
			tmax = w->p[k].good99_s / 60.0;
		if ((double)w->p[k].crashed > cmax)
			cmax = (double)w->p[k].crashed;
		if (w->p[k].front)
			v[nf++] = &w->p[k];
	}
	qsort(v, nf, sizeof(v[0]), by_time);
	/* log scales: minutes from 1 to tmax, devices crashed + 1 from 1 to cmax + 1 */
	double lx = log10(tmax * 1.5), ly = log10(cmax * 2 + 1);
#define X(m) (L + pw * log10((m) < 1 ? 1 : (m)) / lx)
#define Y(c) (T + ph - ph * log10((double)(c) + 1) / ly)
	int r = rf_buf_printf(
	    &b,
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 "
	    "0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" "
	    "height=\"100%%\" fill=\"white\"/>\n<text x=\"%.0f\" y=\"24\" font-size=\"15\">Policy "
	    "sweep on %s (%llu devices): time to 99%% vs devices crashed</text>\n",
	    W, H, W, H, L, w->scenario, (unsigned long long)w->devices);
	static const double tticks[] = {1, 5, 15, 30, 60, 120, 360, 720, 1440};
	for (size_t k = 0; k < sizeof(tticks) / sizeof(tticks[0]) && r == 0; k++)
		if (tticks[k] <= tmax * 1.5)
			r = rf_buf_printf(&b,
					  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
					  "stroke=\"#eee\"/><text x=\"%.1f\" y=\"%.1f\" "
					  "text-anchor=\"middle\">%gm</text>\n",
					  X(tticks[k]), T, X(tticks[k]), T + ph, X(tticks[k]),
					  T + ph + 18, tticks[k]);
	for (double c = 0; c <= cmax * 2 && r == 0; c = c > 0 ? c * 10 : 10)
		r = rf_buf_printf(&b,
				  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
				  "stroke=\"#eee\"/><text x=\"%.1f\" y=\"%.1f\" "
				  "text-anchor=\"end\">%g</text>\n",
				  L, Y(c), L + pw, Y(c), L - 6, Y(c) + 4, c);
	if (r == 0)
		r = rf_buf_printf(
		    &b,
		    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">good release: "
		    "publish to 99%% of the fleet (minutes, log)</text>\n<text "
		    "transform=\"translate(18,%.1f) rotate(-90)\" "
		    "text-anchor=\"middle\">devices crashed by the bad release (log, "
		    "+1)</text>\n",
		    L + pw / 2, H - 14, T + ph / 2);
	for (size_t k = 0; k < w->n && r == 0; k++) {
		const struct rf_sim_sweep_point *pt = &w->p[k];
		double t = pt->good99_s < 0 ? tmax * 1.4 : pt->good99_s / 60.0;
		bool named = strchr(pt->name, '/') == NULL;
		r = rf_buf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\"/>\n",
				  X(t), Y(pt->crashed), named ? "5" : "3",
				  pt->front ? "#d62828" : (named ? "#1d3557" : "#aaa"));
		if (r == 0 && named) {
			/* Named policies at the same point are labelled one under the other. */
			unsigned same = 0;
			for (size_t j = 0; j < k; j++)
				same += strchr(w->p[j].name, '/') == NULL &&
					w->p[j].good99_s == pt->good99_s &&
					w->p[j].crashed == pt->crashed;
			r = rf_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#1d3557\">",
					  X(t) + 7, Y(pt->crashed) - 6 + 14.0 * same);
			if (r == 0)
				r = xml_name(&b, pt->name);
			if (r == 0)
				r = rf_buf_printf(&b, "%s</text>\n",
						  pt->good99_s < 0 ? " (never)" : "");
		}
	}
	if (r == 0 && nf) {
		r = rf_buf_printf(&b, "<polyline fill=\"none\" stroke=\"#d62828\" "
				      "stroke-width=\"1.5\" points=\"");
		for (size_t k = 0; k < nf && r == 0; k++)
			r = rf_buf_printf(&b, "%.1f,%.1f ", X(v[k]->good99_s / 60.0),
					  Y(v[k]->crashed));
		if (r == 0)
			r = rf_buf_printf(&b,
					  "\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
					  "fill=\"#d62828\">Pareto front</text>\n",
					  L + pw - 120, T + 14);
	}
#undef X
#undef Y
	if (r == 0)
		r = rf_buf_printf(&b, "</svg>\n");
	if (r == 0)
		r = rf_buf_steal(&b, &p, ret_len);
	if (r < 0) {
		rf_buf_free(&b);
		return r;
	}
	*ret = (char *)p;
	return 0;
}
