/*
 * Renderers of a simulation result: the timeline CSV, an SVG line chart and the summary table
 * (see sim.h). Pure text building into a growing buffer; nothing here does I/O, so the CLI
 * decides where the bytes go and tests can compare them.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "ringfence/limits.h"
#include "sim/sim.h"

/* Text built with rf_buf; the first error sticks, so renderers check once at the end. */
struct buf {
	struct rf_buf b;
	int err;
};

static void RF_PRINTF(2, 3) bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	if (b->err)
		return;
	va_start(ap, fmt);
	b->err = rf_buf_vprintf(&b->b, fmt, ap);
	va_end(ap);
}

static int done(struct buf *b, char **ret, size_t *ret_len)
{
	uint8_t *p;

	if (!b->err)
		b->err = rf_buf_steal(&b->b, &p, ret_len);
	if (b->err) {
		rf_buf_free(&b->b);
		return b->err;
	}
	*ret = (char *)p;
	return 0;
}

int rf_sim_render_csv(const struct rf_sim_result *r, char **ret, size_t *ret_len)
{
	struct buf b = {RF_BUF_INIT(RF_FILE_MAX), 0};
	bprintf(&b, "t_s,healthy,crashed,recovering,on_bad,exposed,halted,on_first%s\n",
		r->velocity ? ",good" : "");
	for (size_t i = 0; i < r->nsamples; i++) {
		const struct rf_sim_sample *x = &r->samples[i];
		bprintf(&b, "%u,%u,%u,%u,%u,%u,%u,%u", x->t_s, x->healthy, x->crashed,
			x->recovering, x->on_bad, x->exposed, x->halted, x->on_first);
		if (r->velocity)
			bprintf(&b, ",%u", x->good);
		bprintf(&b, "\n");
	}
	return done(&b, ret, ret_len);
}

/* "1h18m", "4m30s", "6d02h", "never", "-" */
static void fmt_dur(char *out, size_t n, int64_t s, const char *none)
{
	if (s < 0)
		snprintf(out, n, "%s", none);
	else if (s < 3600)
		snprintf(out, n, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else if (s < 86400)
		snprintf(out, n, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		snprintf(out, n, "%lldd%02lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
}

int rf_sim_render_summary(const struct rf_sim_result *r, bool header, char **ret, size_t *ret_len)
{
	struct buf b = {RF_BUF_INIT(RF_FILE_MAX), 0};
	char halt[24], c2h[24], rec[24], heal[24], good[RF_SIM_REACH_N][24];
	if (header) {
		bprintf(&b, "%-28s %-11s %8s %8s %8s %8s %8s %8s %8s %10s %9s %9s", "scenario",
			"policy", "devices", "exposed", "crashed", "no-human", "human", "down-end",
			"to-halt", "crash-halt", "recovery", "max-heal");
		if (r->velocity)
			bprintf(&b, " %8s %8s %8s", "good-50", "good-90", "good-99");
		bprintf(&b, "\n");
	}
	for (unsigned k = 0; k < RF_SIM_REACH_N; k++)
		fmt_dur(good[k], sizeof(good[k]), r->good_s[k], "never");
	fmt_dur(halt, sizeof(halt), r->halt_s, "never");
	fmt_dur(c2h, sizeof(c2h),
		r->halt_s >= 0 && r->first_crash_s >= 0 && r->halt_s >= r->first_crash_s
		    ? r->halt_s - r->first_crash_s
		    : -1,
		"-");
	fmt_dur(rec, sizeof(rec), r->recovery_s, "not-yet");
	fmt_dur(heal, sizeof(heal), r->max_heal_s, "-");
	bprintf(&b, "%-28s %-11s %8llu %8llu %8llu %8llu %8llu %8llu %8s %10s %9s %9s", r->scenario,
		r->policy, (unsigned long long)r->devices, (unsigned long long)r->exposed,
		(unsigned long long)r->crashed, (unsigned long long)r->healed_auto,
		(unsigned long long)r->needed_human, (unsigned long long)r->still_down, halt, c2h,
		rec, heal);
	if (r->velocity)
		bprintf(&b, " %8s %8s %8s", good[0], good[1], good[2]);
	bprintf(&b, "\n");
	return done(&b, ret, ret_len);
}

static void xml_text(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			bprintf(b, "&lt;");
		else if (*s == '>')
			bprintf(b, "&gt;");
		else if (*s == '&')
			bprintf(b, "&amp;");
		else if ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f)
			bprintf(b, "%c", *s);
	}
}

/* The time axis: linear up to a day; beyond, logarithmic in minutes (log(1 + t/60)), so that
 * the first minutes (crash, halt, self-healing) and the following days (people repairing)
 * are both visible on one chart. */
static double xfrac(double t, double tmax, bool logx)
{
	if (!logx)
		return t / tmax;
	return log1p(t / 60) / log1p(tmax / 60);
}

/* The count axis of the lower panel: log10(1 + v) / log10(1 + vmax), so 0 sits on the axis
 * and 72 devices of 8.5 million are a third of the way up instead of a hair above zero. */
static double yfrac_log(double v, double vmax)
{
	return v <= 0 ? 0 : log10(1 + v) / log10(1 + vmax);
}

/* A count for a label: exact below 10,000, else three digits: 12.3k, 100k, 8.5M. */
static void fmt_count(char *out, size_t n, uint64_t v)
{
	if (v < 10000)
		snprintf(out, n, "%llu", (unsigned long long)v);
	else if (v < 1000000)
		snprintf(out, n, "%.3gk", (double)v / 1e3);
	else
		snprintf(out, n, "%.3gM", (double)v / 1e6);
}

/*
 * The lower panel: the same series as devices on a logarithmic count axis (decades 1, 10,
 * 100, ... up to the fleet), with each series' peak count written beside it, so that a
 * handful of crashed devices in a fleet of millions is visible and can be read off.
 */
static void svg_count_panel(struct buf *b, const struct rf_sim_result *r, double L, double pw,
			    double top, double ph, double tmax, bool logx, const char *const *names,
			    const char *const *colors, const size_t *offs, size_t nseries,
			    double legend_x)
{
	double vmax = r->devices ? (double)r->devices : 1;

	bprintf(b, "<text x=\"%.1f\" y=\"%.1f\">devices (log scale)</text>\n", L, top - 6);
	for (double d = 1;; d *= 10) {
		double v = d == 1 ? 0 : d; /* 0, 10, 100, ... (1 would sit on top of 0) */
		char lab[24];
		if (v > vmax)
			break;
		double y = top + ph - ph * yfrac_log(v, vmax);
		fmt_count(lab, sizeof(lab), (uint64_t)v);
		bprintf(b,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			L, y, L + pw, y, L - 6, y + 4, lab);
	}
	bprintf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">peak</text>\n", legend_x,
		top + 10);
	for (size_t k = 0; k < nseries; k++) {
		uint32_t peak = 0;
		bprintf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" points=\"",
			colors[k]);
		for (size_t i = 0; i < r->nsamples; i++) {
			uint32_t v;
			memcpy(&v, (const char *)&r->samples[i] + offs[k], sizeof(v));
			if (v > peak)
				peak = v;
			bprintf(b, "%.1f,%.1f ", L + pw * xfrac(r->samples[i].t_s, tmax, logx),
				top + ph - ph * yfrac_log(v, vmax));
		}
		char lab[24];
		fmt_count(lab, sizeof(lab), peak);
		bprintf(b,
			"\"/>\n<text class=\"peak\" data-series=\"%s\" data-peak=\"%u\" "
			"x=\"%.1f\" y=\"%.1f\" fill=\"%s\" font-size=\"11\">%s %s</text>\n",
			names[k], peak, legend_x, top + 26 + 16.0 * k, colors[k], names[k], lab);
	}
}

int rf_sim_render_svg(const struct rf_sim_result *r, char **ret, size_t *ret_len)
{
	struct buf b = {RF_BUF_INIT(RF_FILE_MAX), 0};
	/* Upper panel: share of the fleet, linear; lower panel (CT..CT+CH): counts, log scale. */
	const double W = 900, H = 640, L = 70, R = 150, T = 40, B = 270, CT = 420, CH = 170;
	const double pw = W - L - R, ph = H - T - B;
	double tmax = r->nsamples ? r->samples[r->nsamples - 1].t_s : 1;
	double ymax = (double)r->devices;
	if (tmax <= 0)
		tmax = 1;
	bool logx = tmax > 86400;
	if (ymax <= 0)
		ymax = 1;
	static const struct {
		const char *name, *color;
		size_t off;
	} series[] = {
	    {"healthy", "#2a9d3f", offsetof(struct rf_sim_sample, healthy)},
	    {"crashed", "#d62828", offsetof(struct rf_sim_sample, crashed)},
	    {"recovering", "#f4a261", offsetof(struct rf_sim_sample, recovering)},
	    {"exposed", "#6a4c93", offsetof(struct rf_sim_sample, exposed)},
	    {"good twin", "#1d3557", offsetof(struct rf_sim_sample, good)},
	};
	size_t nseries = sizeof(series) / sizeof(series[0]) - (r->velocity ? 0 : 1);

	bprintf(&b,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		"viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
		W, H, W, H);
	bprintf(
	    &b,
	    "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%.0f\" y=\"22\" "
	    "font-size=\"15\">",
	    L);
	xml_text(&b, r->scenario);
	bprintf(&b, " under ");
	xml_text(&b, r->policy);
	bprintf(&b, " (%llu devices, seed %llu)</text>\n", (unsigned long long)r->devices,
		(unsigned long long)r->seed);
	/* axes and grid */
	for (int k = 0; k <= 4; k++) {
		double y = T + ph - ph * k / 4.0;
		bprintf(&b,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f%%</text>\n",
			L, y, L + pw, y, L - 6, y + 4, 25.0 * k);
	}
	static const struct {
		double t;
		const char *label;
	} logticks[] = {{0, "0"},	    {60, "1m"},	       {600, "10m"},
			{3600, "1h"},	    {6 * 3600, "6h"},  {86400, "1d"},
			{3 * 86400, "3d"},  {7 * 86400, "7d"}, {14 * 86400, "14d"},
			{30 * 86400, "30d"}};
	for (int k = 0; k <= 9; k++) {
		double ts;
		char lab[24];
		if (logx) {
			if (logticks[k].t > tmax)
				break;
			ts = logticks[k].t;
			snprintf(lab, sizeof(lab), "%s", logticks[k].label);
		} else {
			if (k > 6)
				break;
			ts = tmax * k / 6.0;
			if (tmax >= 4 * 3600)
				snprintf(lab, sizeof(lab), "%.1fh", ts / 3600);
			else
				snprintf(lab, sizeof(lab), "%.0fm", ts / 60);
		}
		double x = L + pw * xfrac(ts, tmax, logx);
		bprintf(&b,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
			x, T, x, T + ph, x, T + ph + 18, lab);
		bprintf(&b,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
			x, CT, x, CT + CH, x, CT + CH + 18, lab);
	}
	bprintf(&b,
		"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time since publish%s</text>\n",
		L + pw / 2, H - 10, logx ? " (log scale)" : "");
	/* the halt: a shaded band from the first halt to the end */
	for (size_t i = 0; i < r->nsamples; i++)
		if (r->samples[i].halted) {
			double x = L + pw * xfrac(r->samples[i].t_s, tmax, logx);
			bprintf(
			    &b,
			    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
			    "fill=\"#457b9d\" fill-opacity=\"0.08\"/><text x=\"%.1f\" y=\"%.1f\" "
			    "fill=\"#457b9d\">halted</text>\n",
			    x, T, L + pw - x, ph, x + 3, T + 12);
			break;
		}
	for (size_t k = 0; k < nseries; k++) {
		bprintf(&b,
			"<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s points=\"",
			series[k].color, k == 4 ? " stroke-dasharray=\"6 3\"" : "");
		for (size_t i = 0; i < r->nsamples; i++) {
			uint32_t v;
			memcpy(&v, (const char *)&r->samples[i] + series[k].off, sizeof(v));
			bprintf(&b, "%.1f,%.1f ", L + pw * xfrac(r->samples[i].t_s, tmax, logx),
				T + ph - ph * (double)v / ymax);
		}
		bprintf(&b,
			"\"/>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
			"<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
			W - R + 12, T + 20.0 * k, series[k].color, W - R + 30, T + 20.0 * k + 10,
			series[k].name);
	}
	bprintf(&b,
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"#457b9d\" "
		"fill-opacity=\"0.3\"/><text x=\"%.1f\" y=\"%.1f\">halted</text>\n",
		W - R + 12, T + 20.0 * nseries, W - R + 30, T + 20.0 * nseries + 10);
	{
		enum { NSERIES = sizeof(series) / sizeof(series[0]) };
		const char *names[NSERIES], *colors[NSERIES];
		size_t offs[NSERIES];
		for (size_t k = 0; k < NSERIES; k++) {
			names[k] = series[k].name;
			colors[k] = series[k].color;
			offs[k] = series[k].off;
		}
		svg_count_panel(&b, r, L, pw, CT, CH, tmax, logx, names, colors, offs, nseries,
				W - R + 12);
	}
	bprintf(&b, "</svg>\n");
	return done(&b, ret, ret_len);
}
