/*
 * Release state, health gates and the check-in decision (see rollout.h for the contract and
 * docs/rollout.md for the model and the statistics).
 *
 * Invariants kept here: the effective percent of a ring is min(signed ramp evaluated from
 * max(opened_at, not_before), the step the gates allowed), so no state the server stores, even
 * a corrupt one, can admit a bucket before the signed schedule does (P6); a ring opens only
 * after the previous one completed; a gate failure in any ring halts the whole release; the
 * decision never moves a device backwards except away from a halted or rolled-back release,
 * and does that at any time of day. Nothing here allocates, reads a clock or keeps state.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rollout/rollout.h"

#define DAY	 86400
#define NMETRICS 5 /* crash, rollback, reject, silent, alert (rate tests) */
#define NTESTS	 6 /* ... and the floor's proportion test: the Bonferroni divisor */

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void set_reason(struct rf_rollout_state *st, const char *reason)
{
	size_t n = reason ? strnlen(reason, RF_ROLLOUT_REASON_MAX - 1) : 0;

	memset(st->halt_reason, 0, sizeof(st->halt_reason));
	if (n)
		memcpy(st->halt_reason, reason, n);
}

void rf_rollout_state_init(const struct rf_rollout_schedule *s, struct rf_rollout_state *ret)
{
	(void)s;
	memset(ret, 0, sizeof(*ret));
	ret->status = RF_ROLLOUT_ACTIVE;
	ret->halt_ring = -1;
}

int rf_rollout_hold(struct rf_rollout_state *st, int64_t now, const char *reason)
{
	if (st->status == RF_ROLLOUT_HELD)
		return -EALREADY;
	if (st->status != RF_ROLLOUT_ACTIVE)
		return -EPERM;
	st->status = RF_ROLLOUT_HELD;
	set_reason(st, reason);
	(void)now;
	return 0;
}

int rf_rollout_resume(struct rf_rollout_state *st, int64_t now)
{
	if (st->status == RF_ROLLOUT_ACTIVE)
		return -EALREADY;
	if (st->status == RF_ROLLOUT_ROLLED_BACK)
		return -EPERM;
	/* The step clock restarts: bake time before the next step counts from the resume. */
	for (unsigned i = 0; i < RF_ROLLOUT_RINGS_MAX; i++)
		if (st->rings[i].phase == RF_ROLLOUT_RAMPING && st->rings[i].step_at < now)
			st->rings[i].step_at = now;
	st->status = RF_ROLLOUT_ACTIVE;
	st->halt_metric = RF_ROLLOUT_M_NONE;
	st->halt_ring = -1;
	set_reason(st, NULL);
	return 0;
}

int rf_rollout_halt(struct rf_rollout_state *st, int64_t now, const char *reason)
{
	if (st->status == RF_ROLLOUT_HALTED)
		return -EALREADY;
	if (st->status == RF_ROLLOUT_ROLLED_BACK)
		return -EPERM;
	st->status = RF_ROLLOUT_HALTED;
	st->halt_metric = RF_ROLLOUT_M_OPERATOR;
	st->halt_ring = -1;
	st->halted_at = now;
	set_reason(st, reason ? reason : "halted by operator");
	return 0;
}

int rf_rollout_rollback(struct rf_rollout_state *st, int64_t now, const char *reason)
{
	const char *why = reason ? reason : "rolled back by operator";

	if (st->status == RF_ROLLOUT_ROLLED_BACK)
		return -EALREADY;
	if (st->status == RF_ROLLOUT_HALTED && st->halt_metric != RF_ROLLOUT_M_OPERATOR &&
	    st->halt_metric != RF_ROLLOUT_M_NONE) {
		/* A gate halted it: its evidence (metric, ring, figures) stays in the history,
		 * the operator's reason follows it. */
		char buf[RF_ROLLOUT_REASON_MAX];

		if (snprintf(buf, sizeof(buf), "%s; then rolled back: %s", st->halt_reason, why) >=
		    (int)sizeof(buf))
			buf[sizeof(buf) - 1] = 0; /* cut: the gate's evidence comes first */
		st->status = RF_ROLLOUT_ROLLED_BACK;
		set_reason(st, buf);
		return 0;
	}
	if (st->status != RF_ROLLOUT_HALTED) {
		st->halted_at = now;
		st->halt_ring = -1;
	}
	st->status = RF_ROLLOUT_ROLLED_BACK;
	st->halt_metric = RF_ROLLOUT_M_OPERATOR;
	set_reason(st, why);
	return 0;
}

/* Index of the highest step of ring rs whose signed time has come (from open), or -1. */
static int signed_step(const struct rf_rollout_ring_schedule *rs, int64_t open, int64_t now)
{
	int j = -1;

	for (unsigned k = 0; k < rs->nsteps && k < RF_ROLLOUT_STEPS_MAX; k++)
		if (now - open >= rs->steps[k].after)
			j = (int)k;
	return j;
}

/* Percent admitted by an open ring, ignoring the release status (HELD still counts here). */
static uint32_t ring_bp(const struct rf_rollout_schedule *s, const struct rf_rollout_state *st,
			int ring, int64_t now)
{
	const struct rf_rollout_ring_schedule *rs = &s->rings[ring];
	const struct rf_rollout_ring_state *rst = &st->rings[ring];
	int64_t open;
	int j;

	if (rst->phase == RF_ROLLOUT_NOT_STARTED || rs->nsteps == 0)
		return 0;
	open = max64(rst->opened_at, rs->not_before);
	j = signed_step(rs, open, now);
	if (j < 0)
		return 0;
	if (rst->phase != RF_ROLLOUT_COMPLETE && rst->step < j)
		j = rst->step;
	return rs->steps[j].percent_bp;
}

uint32_t rf_rollout_effective_bp(const struct rf_rollout_schedule *s,
				 const struct rf_rollout_state *st, int ring, int64_t now)
{
	if (ring < 0 || (unsigned)ring >= s->nrings || (unsigned)ring >= RF_ROLLOUT_RINGS_MAX ||
	    st->status != RF_ROLLOUT_ACTIVE)
		return 0;
	return ring_bp(s, st, ring, now);
}

bool rf_rollout_is_silent(const struct rf_rollout_gates *g, int64_t intent_at, int64_t last_seen,
			  int64_t now)
{
	int64_t seen = max64(intent_at, last_seen);

	return now - seen >= g->silence_s;
}

/* ---- statistics ------------------------------------------------------------------------- */

/* Work bound for one tail sum: beyond it the remainder is bounded geometrically (see below). */
#define SF_TERMS_MAX 200000
/* Above this standard deviation the normal approximation is used (see rf_rollout_binom_sf). */
#define SF_NORMAL_SD 1000.0

static double log_pmf(uint64_t k, uint64_t n, double p)
{
	double lk, lnk, ln;

	ln = lgamma_r((double)n + 1.0, &(int){0});
	lk = lgamma_r((double)k + 1.0, &(int){0});
	lnk = lgamma_r((double)(n - k) + 1.0, &(int){0});
	return ln - lk - lnk + (double)k * log(p) + (double)(n - k) * log1p(-p);
}

/*
 * Sum of pmf(j) from j = k while moving away from the mode in direction dir (+1 up, -1 down).
 * Terms then decrease with a ratio that itself decreases, so once a ratio r < 1 is seen the rest
 * is at most term * r / (1 - r); that bound is added when the work cap stops the sum early, so
 * the result never understates the tail. With sd <= SF_NORMAL_SD (the only case summed) the
 * sum converges in well under SF_TERMS_MAX terms; the cap is a guard, not a working limit.
 */
static double tail_sum(uint64_t k, uint64_t n, double p, int dir)
{
	double q = 1.0 - p, t = exp(log_pmf(k, n, p)), sum = t, r = 0.0;
	uint64_t j = k;

	for (int i = 0; i < SF_TERMS_MAX; i++) {
		if (dir > 0) {
			if (j >= n)
				return sum;
			r = ((double)(n - j) / (double)(j + 1)) * (p / q);
			j++;
		} else {
			if (j == 0)
				return sum;
			r = ((double)j / (double)(n - j + 1)) * (q / p);
			j--;
		}
		t *= r;
		sum += t;
		if (t <= sum * 1e-17 || t < DBL_MIN)
			return sum;
	}
	if (r < 1.0)
		sum += t * r / (1.0 - r);
	return sum;
}

double rf_rollout_binom_sf(uint64_t k, uint64_t n, double p)
{
	double mean, sd, z, v;

	if (k == 0 || p >= 1.0)
		return 1.0;
	if (k > n || p <= 0.0 || !(p == p))
		return 0.0;
	mean = (double)n * p;
	sd = sqrt(mean * (1.0 - p));
	z = ((double)k - 0.5 - mean) / sd;
	/* Huge counts (in practice only alert totals): the exact sum would need ~sd/|z| * 40
	 * terms; the normal approximation with continuity correction is accurate to about
	 * skewness * z^3 / 6 relative (skewness < 1/sd): < 1 % at the decision threshold
	 * (z ~ 3.6), and it stays far below alpha for the far tails it underestimates. O(1). */
	if (sd > SF_NORMAL_SD)
		return 0.5 * erfc(z / sqrt(2.0));
	if ((double)k > mean) {
		v = tail_sum(k, n, p, +1);
	} else {
		/* k at or below the mean: 1 - P(X <= k-1); not significant in any case. */
		v = 1.0 - tail_sum(k - 1, n, p, -1);
	}
	return v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
}

/* One-sided conditional test of "rate1 > margin * rate2": p-value, or 1.0 if not testable. */
static double rate_test(uint64_t x1, double t1, uint64_t x2, double t2, double margin,
			uint64_t min_events)
{
	double p0;

	if (x1 < min_events || t1 <= 0.0 || t2 <= 0.0)
		return 1.0;
	p0 = margin * t1 / (margin * t1 + t2);
	return rf_rollout_binom_sf(x1, x1 + x2, p0);
}

void rf_rollout_check_health(const struct rf_rollout_gates *g, const struct rf_rollout_health *h,
			     const struct rf_rollout_health *b, int64_t step_at,
			     uint32_t percent_bp, int64_t now, struct rf_rollout_check *ret)
{
	struct rf_rollout_check c = {
	    .verdict = RF_ROLLOUT_V_PASS, .metric = RF_ROLLOUT_M_NONE, .p_value = 1.0};
	bool have_base = b && b->exposure_s > 0;
	double fail_frac = h->devices ? (double)h->failed / (double)h->devices : 0.0;
	double limit = g->alpha / NTESTS;

	/* Absolute floor: a crash loop halts with or without a baseline. With a baseline, the
	 * failed devices per device-second must also be significantly worse than margin x the
	 * baseline's (the same conditional test), so baseline noise near the floor cannot trip
	 * it. Per device-second, not per device: a device that ever crashed on a release stays
	 * failed, so a release's failed share grows with its age; a good release that has run
	 * for hours on a fleet whose devices left the baseline early would otherwise cross the
	 * floor on background crashes alone (issue 14, the gates judged as a classifier). A
	 * caller that measured no exposure for the release (devices that failed at once and
	 * left) is judged per device, as before. */
	if (h->failed >= g->floor_devices && fail_frac >= g->floor_fraction) {
		bool by_exp = h->exposure_s > 0;
		double t1 = by_exp ? (double)h->exposure_s : (double)h->devices;
		double t2 = !have_base ? 0.0 : by_exp ? (double)b->exposure_s : (double)b->devices;

		if (t2 <= 0.0 ||
		    rate_test(h->failed, t1, b->failed, t2, g->margin, g->min_events) < limit) {
			c.verdict = RF_ROLLOUT_V_FAIL;
			c.metric = RF_ROLLOUT_M_FLOOR;
			c.p_value = 0.0;
			goto out;
		}
	}
	/* Absolute alert ceiling: a rule that matches everything is an outage too. */
	if (h->exposure_s > 0 && (int64_t)h->exposure_s >= g->alert_floor_min_exposure_s &&
	    (double)h->alerts / ((double)h->exposure_s / 3600.0) > g->alert_floor_per_h) {
		c.verdict = RF_ROLLOUT_V_FAIL;
		c.metric = RF_ROLLOUT_M_ALERT;
		c.p_value = 0.0;
		goto out;
	}
	if (have_base && h->exposure_s > 0) {
		const uint64_t x1[NMETRICS] = {h->crashes, h->rollbacks, h->rejections, h->silent,
					       h->alerts};
		const uint64_t x2[NMETRICS] = {b->crashes, b->rollbacks, b->rejections, b->silent,
					       b->alerts};
		const uint8_t m[NMETRICS] = {RF_ROLLOUT_M_CRASH, RF_ROLLOUT_M_ROLLBACK,
					     RF_ROLLOUT_M_REJECT, RF_ROLLOUT_M_SILENT,
					     RF_ROLLOUT_M_ALERT};

		for (int i = 0; i < NMETRICS; i++) {
			double margin = m[i] == RF_ROLLOUT_M_ALERT ? g->alert_margin : g->margin;
			double pv = rate_test(x1[i], (double)h->exposure_s, x2[i],
					      (double)b->exposure_s, margin, g->min_events);

			if (pv < c.p_value) {
				c.p_value = pv;
				c.metric = m[i];
			}
		}
		if (c.p_value < limit) {
			c.verdict = RF_ROLLOUT_V_FAIL;
			goto out;
		}
	}
	/* Enough evidence to take the next step? No more healthy devices than the step actually
	 * admits can ever exist: cap by that count when the caller knows it (0 admitted: nobody is
	 * exposed, the step passes on bake time alone; the next step is gated on its own
	 * evidence). Otherwise estimate it from the population (an expected value: a ring whose
	 * step admits fewer devices than expected can stall, see docs/rollout.md). */
	c.required_healthy = g->min_healthy;
	if (h->admitted_known) {
		if (h->admitted < c.required_healthy)
			c.required_healthy = h->admitted;
	} else if (h->population > 0) {
		uint64_t cap =
		    (h->population * percent_bp + RF_ROLLOUT_BUCKETS - 1) / RF_ROLLOUT_BUCKETS;

		if (cap < 1)
			cap = 1;
		if (cap < c.required_healthy)
			c.required_healthy = cap;
	}
	if (h->healthy < c.required_healthy || now - step_at < g->min_bake_s)
		c.verdict = RF_ROLLOUT_V_WAIT;
out:
	*ret = c;
}

/* ---- evaluate --------------------------------------------------------------------------- */

static void halt_text(struct rf_rollout_state *st, const struct rf_rollout_schedule *s, int ring,
		      const struct rf_rollout_check *c, const struct rf_rollout_health *h,
		      const struct rf_rollout_health *b)
{
	char buf[RF_ROLLOUT_REASON_MAX];
	uint64_t x1 = 0, x2 = 0;

	switch (c->metric) {
	case RF_ROLLOUT_M_CRASH:
		x1 = h->crashes, x2 = b ? b->crashes : 0;
		break;
	case RF_ROLLOUT_M_ROLLBACK:
		x1 = h->rollbacks, x2 = b ? b->rollbacks : 0;
		break;
	case RF_ROLLOUT_M_REJECT:
		x1 = h->rejections, x2 = b ? b->rejections : 0;
		break;
	case RF_ROLLOUT_M_SILENT:
		x1 = h->silent, x2 = b ? b->silent : 0;
		break;
	case RF_ROLLOUT_M_ALERT:
		x1 = h->alerts, x2 = b ? b->alerts : 0;
		break;
	default:
		break;
	}
	if (c->metric == RF_ROLLOUT_M_FLOOR)
		snprintf(buf, sizeof(buf),
			 "gate failed in ring '%s': %llu of %llu devices failed (floor %.3g)",
			 s->rings[ring].name, (unsigned long long)h->failed,
			 (unsigned long long)h->devices, s->gates.floor_fraction);
	else if (c->p_value == 0.0)
		snprintf(buf, sizeof(buf),
			 "gate failed in ring '%s': %s %llu in %llu device-s over the absolute "
			 "ceiling",
			 s->rings[ring].name, rf_rollout_metric_name(c->metric),
			 (unsigned long long)x1, (unsigned long long)h->exposure_s);
	else
		snprintf(buf, sizeof(buf),
			 "gate failed in ring '%s': %s %llu in %llu device-s vs baseline %llu in "
			 "%llu (p=%.2g)",
			 s->rings[ring].name, rf_rollout_metric_name(c->metric),
			 (unsigned long long)x1, (unsigned long long)h->exposure_s,
			 (unsigned long long)x2, (unsigned long long)(b ? b->exposure_s : 0),
			 c->p_value);
	set_reason(st, buf);
}

static bool state_ok(const struct rf_rollout_schedule *s, const struct rf_rollout_state *st)
{
	if (s->nrings == 0 || s->nrings > RF_ROLLOUT_RINGS_MAX ||
	    st->status > RF_ROLLOUT_ROLLED_BACK)
		return false;
	for (unsigned i = 0; i < s->nrings; i++) {
		const struct rf_rollout_ring_state *r = &st->rings[i];

		if (s->rings[i].nsteps == 0 || s->rings[i].nsteps > RF_ROLLOUT_STEPS_MAX ||
		    r->phase > RF_ROLLOUT_COMPLETE || r->step >= s->rings[i].nsteps)
			return false;
	}
	return true;
}

int rf_rollout_evaluate(const struct rf_rollout_schedule *s, const struct rf_rollout_state *cur,
			const struct rf_rollout_health *health,
			const struct rf_rollout_health *baseline, int64_t now,
			struct rf_rollout_state *ret_state, struct rf_rollout_eval *ret_eval)
{
	struct rf_rollout_state st;
	struct rf_rollout_eval ev;

	if (!s || !cur || !health || !ret_state || !state_ok(s, cur))
		return -EINVAL;
	memcpy(&st, cur, sizeof(st));
	memset(&ev, 0, sizeof(ev));
	ev.opened = ev.stepped = ev.completed = -1;
	ev.next_eval = INT64_MAX;
	for (unsigned i = 0; i < RF_ROLLOUT_RINGS_MAX; i++)
		ev.checks[i].p_value = 1.0;

	if (st.status == RF_ROLLOUT_HALTED || st.status == RF_ROLLOUT_ROLLED_BACK)
		goto out;

	/* Health first, in every open ring: one failure halts the release everywhere. */
	for (unsigned i = 0; i < s->nrings; i++) {
		const struct rf_rollout_ring_state *r = &st.rings[i];
		const struct rf_rollout_health *b = baseline ? &baseline[i] : NULL;

		if (r->phase == RF_ROLLOUT_NOT_STARTED)
			continue;
		rf_rollout_check_health(&s->gates, &health[i], b, r->step_at,
					s->rings[i].steps[r->step].percent_bp, now, &ev.checks[i]);
		if (ev.checks[i].verdict == RF_ROLLOUT_V_FAIL) {
			st.status = RF_ROLLOUT_HALTED;
			st.halt_metric = ev.checks[i].metric;
			st.halt_ring = (int8_t)i;
			st.halted_at = now;
			halt_text(&st, s, (int)i, &ev.checks[i], &health[i], b);
			ev.halted = true;
			goto out;
		}
	}
	if (st.status != RF_ROLLOUT_ACTIVE)
		goto out; /* HELD: nothing advances */

	/* Progress: rings in order; at most one step per ring per call. */
	for (unsigned i = 0; i < s->nrings; i++) {
		const struct rf_rollout_ring_schedule *rs = &s->rings[i];
		struct rf_rollout_ring_state *r = &st.rings[i];
		const struct rf_rollout_check *c = &ev.checks[i];

		if (r->phase == RF_ROLLOUT_COMPLETE)
			continue;
		if (r->phase == RF_ROLLOUT_NOT_STARTED) {
			int64_t open = rs->not_before;

			if (i > 0 && st.rings[i - 1].phase != RF_ROLLOUT_COMPLETE)
				break;
			if (i > 0)
				open = max64(open, st.rings[i - 1].completed_at);
			if (now < open) {
				ev.next_eval = min64(ev.next_eval, open);
				break;
			}
			r->phase = RF_ROLLOUT_RAMPING;
			r->step = 0;
			r->opened_at = open;
			/* Bake time counts from when the engine actually opened the ring. */
			r->step_at = max64(open + rs->steps[0].after, now);
			ev.opened = (int)i;
			ev.next_eval = min64(ev.next_eval, r->step_at + s->gates.min_bake_s);
			break;
		}
		/* RAMPING */
		if (c->verdict == RF_ROLLOUT_V_PASS) {
			if (r->step + 1u < rs->nsteps) {
				int64_t t_sig = max64(r->opened_at, rs->not_before) +
						rs->steps[r->step + 1].after;

				if (now >= t_sig) {
					r->step++;
					r->step_at = now;
					ev.stepped = (int)i;
					ev.next_eval =
					    min64(ev.next_eval, now + s->gates.min_bake_s);
				} else {
					ev.next_eval = min64(ev.next_eval, t_sig);
				}
				break;
			}
			r->phase = RF_ROLLOUT_COMPLETE;
			r->completed_at = now;
			ev.completed = (int)i;
			continue; /* the next ring may open in this same call */
		}
		/* WAIT: on bake time alone, the time is known; on healthy devices, a report. */
		if (health[i].healthy >= c->required_healthy)
			ev.next_eval = min64(ev.next_eval, r->step_at + s->gates.min_bake_s);
		break;
	}
out:
	if (ev.next_eval <= now)
		ev.next_eval = now + 1;
	ev.changed = memcmp(&st, cur, sizeof(st)) != 0;
	memcpy(ret_state, &st, sizeof(st));
	if (ret_eval)
		*ret_eval = ev;
	return 0;
}

/* ---- decision --------------------------------------------------------------------------- */

bool rf_rollout_in_window(const struct rf_rollout_policy *pol, int64_t now, int64_t *ret_next)
{
	int64_t sod, off;
	bool inside;

	if (pol->window_len_s == 0 || pol->window_len_s >= DAY) {
		if (ret_next)
			*ret_next = INT64_MAX;
		return true;
	}
	sod = ((now % DAY) + DAY) % DAY;
	off = ((sod - (int64_t)(pol->window_start_s % DAY)) % DAY + DAY) % DAY;
	inside = off < (int64_t)pol->window_len_s;
	if (ret_next)
		*ret_next = now + (inside ? (int64_t)pol->window_len_s - off : DAY - off);
	return inside;
}

struct view {
	int ring;      /* index in the release's schedule, -1: not scheduled for this ring */
	bool open;     /* ring opened and release ACTIVE or HELD */
	bool admitted; /* ACTIVE, open, bucket < effective percent */
	int64_t next;  /* time-driven change of `admitted`, or INT64_MAX */
};

/* Fill v->ring and v->open (cheap), and with `admit` also v->admitted and v->next (one hash). */
static void view_of(const struct rf_rollout_release *rel, const struct rf_rollout_device *dev,
		    int64_t now, bool admit, struct view *v)
{
	const struct rf_rollout_schedule *s = rel->schedule;
	const struct rf_rollout_state *st = &rel->state;
	const struct rf_rollout_ring_state *rst;
	uint32_t bucket, bp;

	v->ring = rf_rollout_ring_index(s, dev->ring);
	v->open = v->admitted = false;
	v->next = INT64_MAX;
	if (v->ring < 0)
		return;
	rst = &st->rings[v->ring];
	if (rst->phase == RF_ROLLOUT_NOT_STARTED || rst->step >= s->rings[v->ring].nsteps ||
	    (st->status != RF_ROLLOUT_ACTIVE && st->status != RF_ROLLOUT_HELD))
		return;
	v->open = true;
	if (st->status != RF_ROLLOUT_ACTIVE || !admit)
		return;
	bucket = rf_rollout_bucket(s->bucket_key, dev->id, dev->id_len);
	bp = ring_bp(s, st, v->ring, now);
	v->admitted = bucket < bp;
	if (!v->admitted) {
		/* Steps the gates already allowed whose signed time is still ahead. */
		const struct rf_rollout_ring_schedule *rs = &s->rings[v->ring];
		int64_t open = max64(rst->opened_at, rs->not_before);
		unsigned last = rst->phase == RF_ROLLOUT_COMPLETE ? rs->nsteps - 1 : rst->step;

		for (unsigned j = 0; j <= last; j++)
			if (bucket < rs->steps[j].percent_bp && open + rs->steps[j].after > now) {
				v->next = open + rs->steps[j].after;
				break;
			}
	}
}

int rf_rollout_decide(const struct rf_rollout_device *dev, const struct rf_rollout_policy *pol,
		      const struct rf_rollout_release *releases, size_t n, int64_t now,
		      struct rf_rollout_answer *ret)
{
	struct view v[RF_ROLLOUT_DECIDE_MAX];
	struct rf_rollout_answer a = {
	    .action = RF_ROLLOUT_STAY, .release = -1, .next_change = INT64_MAX};
	int cur, target = -1, newest_open = -1, limit;
	int64_t wnext;

	if (!dev || !pol || !ret || (!releases && n) || n > RF_ROLLOUT_DECIDE_MAX || !dev->ring ||
	    (!dev->id && dev->id_len) || dev->current < -1 || dev->current >= (int)n ||
	    pol->window_start_s >= DAY || pol->window_len_s > DAY)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!releases[i].schedule)
			return -EINVAL;
	cur = dev->current;
	a.release = cur;

	/* Views are computed lazily, newest first, so a call touches only the few releases near
	 * the device's current one however long the list is. */
	if (pol->pin == RF_ROLLOUT_PIN_N1)
		for (int i = (int)n - 1; i >= 0; i--) {
			view_of(&releases[i], dev, now, false, &v[i]);
			if (v[i].open) {
				newest_open = i;
				break;
			}
		}

	/* 1. Away from a halted or rolled-back release, whatever the window says: forward to the
	 * fix, else back to an older release, else to the device's own last known good, else
	 * wait for the fix (never an endless go-back with nowhere to go). */
	if (cur >= 0 && (releases[cur].state.status == RF_ROLLOUT_HALTED ||
			 releases[cur].state.status == RF_ROLLOUT_ROLLED_BACK)) {
		limit = (int)n;
		if (pol->pin == RF_ROLLOUT_PIN_N1 && newest_open >= 0)
			limit = newest_open;
		for (int i = limit - 1; i > cur; i--) {
			view_of(&releases[i], dev, now, true, &v[i]);
			if (v[i].admitted) {
				a.action = RF_ROLLOUT_INSTALL;
				a.reason = RF_ROLLOUT_R_FIX;
				a.release = i;
				goto out;
			}
			a.next_change = min64(a.next_change, v[i].next);
		}
		a.action = RF_ROLLOUT_GO_BACK;
		a.reason = releases[cur].state.status == RF_ROLLOUT_HALTED
			       ? RF_ROLLOUT_R_HALTED
			       : RF_ROLLOUT_R_ROLLED_BACK;
		a.release = -1;
		for (int i = cur - 1; i >= 0; i--) {
			view_of(&releases[i], dev, now, true, &v[i]);
			if (v[i].admitted) {
				a.release = i;
				goto out;
			}
			a.next_change = min64(a.next_change, v[i].next);
		}
		if (!dev->fallback) {
			a.action = RF_ROLLOUT_STAY;
			a.reason = RF_ROLLOUT_R_WAITING_FIX;
			a.release = cur;
		}
		goto out;
	}

	/* 2. The newest release admitted (pin N-1: below the newest open in this ring). */
	limit = (int)n;
	if (pol->pin == RF_ROLLOUT_PIN_N1 && newest_open >= 0)
		limit = newest_open;
	for (int i = limit - 1; i > cur; i--) {
		view_of(&releases[i], dev, now, true, &v[i]);
		if (v[i].admitted) {
			target = i;
			break;
		}
		a.next_change = min64(a.next_change, v[i].next);
	}

	if (target < 0) {
		/* Stay; say why, from the next newer release the device could get. */
		a.reason = cur >= 0 ? RF_ROLLOUT_R_UP_TO_DATE : RF_ROLLOUT_R_NONE;
		if (pol->pin == RF_ROLLOUT_PIN_N1 && newest_open > cur)
			a.reason = RF_ROLLOUT_R_PINNED;
		else
			for (int i = cur + 1; i < (int)n; i++) {
				view_of(&releases[i], dev, now, false, &v[i]);
				if (v[i].ring < 0)
					continue;
				if (releases[i].state.status == RF_ROLLOUT_HELD && v[i].open) {
					a.reason = RF_ROLLOUT_R_HELD;
					break;
				}
				if (releases[i].state.status == RF_ROLLOUT_ACTIVE) {
					a.reason = RF_ROLLOUT_R_NOT_YET;
					break;
				}
			}
		goto out;
	}

	/* 3. Upgrades only inside the maintenance window. */
	if (rf_rollout_in_window(pol, now, &wnext)) {
		a.action = RF_ROLLOUT_INSTALL;
		a.reason = RF_ROLLOUT_R_NEW;
		a.release = target;
	} else {
		a.reason = RF_ROLLOUT_R_WINDOW;
	}
	a.next_change = min64(a.next_change, wnext);
out:
	if (a.next_change <= now)
		a.next_change = now + 1;
	*ret = a;
	return 0;
}

/* ---- names ------------------------------------------------------------------------------ */

#define NAME(tab, i) ((i) >= 0 && (size_t)(i) < sizeof(tab) / sizeof(tab[0]) ? tab[i] : "unknown")

const char *rf_rollout_phase_name(int phase)
{
	static const char *const t[] = {"not-started", "ramping", "complete"};
	return NAME(t, phase);
}

const char *rf_rollout_status_name(int status)
{
	static const char *const t[] = {"active", "held", "halted", "rolled-back"};
	return NAME(t, status);
}

const char *rf_rollout_metric_name(int metric)
{
	static const char *const t[] = {"none",	  "crash", "rollback", "reject",
					"silent", "alert", "floor",    "operator"};
	return NAME(t, metric);
}

const char *rf_rollout_action_name(int action)
{
	static const char *const t[] = {"stay", "install", "go-back"};
	return NAME(t, action);
}

const char *rf_rollout_reason_name(int reason)
{
	static const char *const t[] = {"up-to-date",	  "new-release", "not-yet",
					"outside-window", "pinned-n-1",	 "held",
					"halted",	  "rolled-back", "no-release",
					"fix",		  "waiting-for-fix"};
	return NAME(t, reason);
}
