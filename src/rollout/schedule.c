/*
 * The signed schedule: parse it from the JSON carried in a TUF target's custom metadata into a
 * fixed-size struct, format it back canonically, and answer the agent-side P6 question "may
 * this ring admit this bucket yet?" from signed data alone.
 *
 * The input is untrusted until the TUF layer verified it, and even then a publisher mistake must
 * not crash anyone, so the parser is strict and fails closed: unknown keys, duplicate keys,
 * out-of-range numbers, unordered ramps and duplicate rings are errors with the exact place
 * named in the diagnostic. Everything it accepts fits the struct (limits.h, rollout section),
 * and every time sum it makes later (not_before + after + gate durations) cannot overflow
 * because each term is at most RF_ROLLOUT_TIME_MAX.
 *
 * The schedule is signed as TUF custom metadata, and TUF canonical JSON has integers only, so
 * every fractional quantity has an integer encoding: a ramp step is "bp" (basis points) or an
 * integer "percent", a fractional gate X is "X_ppm" (X times 10^6). Reals ("percent": 0.5,
 * "alpha": 0.001) are still parsed for unsigned, hand-written input, but only when they sit
 * exactly on the integer grid; the formatter writes integers only, so its output is always
 * signable and parses back to the identical struct. Every gate value the parser stores is
 * exactly (double)k / 10^6 for an integer k <= RF_GATE_PPM_MAX, which is what makes the
 * double -> ppm -> double trip exact (see ppm_of()).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/util.h"
#include "rollout/rollout.h"

void rf_rollout_gates_default(struct rf_rollout_gates *ret)
{
	*ret = (struct rf_rollout_gates){
	    .probation_s = 600,
	    .silence_s = 900,
	    .min_bake_s = 600,
	    .min_healthy = 10,
	    .alpha = 0.001,
	    .margin = 1.5,
	    .min_events = 3,
	    .floor_fraction = 0.05,
	    .floor_devices = 3,
	    .alert_margin = 10.0,
	    .alert_floor_per_h = 3600.0,
	    .alert_floor_min_exposure_s = 3600,
	};
}

void rf_rollout_bucket_key(const char *release, size_t len, uint8_t ret_key[16])
{
	uint8_t d[32];

	rf_sha256(release, len, d);
	memcpy(ret_key, d, 16);
}

static bool ring_name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= RF_ROLLOUT_RING_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool release_id_ok(const char *s, size_t n)
{
	if (n == 0 || n >= RF_ROLLOUT_RELEASE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* Reject keys other than those listed (the schedule is signed policy: fail closed on anything
 * this build would silently ignore). */
static int only_keys(const json_t *o, const char *const *keys, const char *where, struct rf_diag *d)
{
	const char *k;
	json_t *v;
	char q[64];

	json_object_foreach((json_t *)o, k, v)
	{
		bool known = false;

		for (size_t i = 0; keys[i]; i++)
			if (strcmp(k, keys[i]) == 0)
				known = true;
		if (!known)
			return rf_diag_report(d, -EBADMSG, "%s: unknown key \"%s\"", where,
					      rf_diag_quote(q, sizeof(q), k, strlen(k)));
	}
	return 0;
}

static int get_time(const json_t *o, const char *key, bool required, int64_t *val,
		    const char *where, struct rf_diag *d)
{
	const json_t *v = json_object_get(o, key);
	json_int_t x;

	if (!v) {
		if (required)
			return rf_diag_report(d, -EBADMSG, "%s.%s: missing", where, key);
		return 0;
	}
	if (!json_is_integer(v))
		return rf_diag_report(d, -EBADMSG, "%s.%s: must be an integer (seconds)", where,
				      key);
	x = json_integer_value(v);
	if (x < 0 || x > RF_ROLLOUT_TIME_MAX)
		return rf_diag_report(d, -EBADMSG, "%s.%s: %lld out of range 0..%lld", where, key,
				      (long long)x, (long long)RF_ROLLOUT_TIME_MAX);
	*val = (int64_t)x;
	return 0;
}

static int get_count(const json_t *o, const char *key, uint64_t *val, const char *where,
		     struct rf_diag *d)
{
	int64_t t = 0; /* set when the key is present; -O3 cannot see that */
	int r = get_time(o, key, false, &t, where, d);

	if (r < 0 || !json_object_get(o, key))
		return r;
	*val = (uint64_t)t;
	return 0;
}

/* The fixed unit of every fractional gate's integer form: "X_ppm" = X * RF_GATE_PPM. */
#define RF_GATE_PPM 1000000.0
/* Largest ppm value any gate may take (alert_floor_per_h 10^9 per device-hour). Below 10^15
 * both roundings of k -> k/10^6 -> *10^6 together err by < 0.25, so llround gives k back and
 * format/parse is exact; above 2^53 not every k is even a double. */
#define RF_GATE_PPM_MAX 1000000000000000LL

/* One fractional gate: its legacy real key, its integer key and its range in ppm. */
struct frac_gate {
	const char *key, *ppm_key;
	long long lo_ppm, hi_ppm;
	size_t off; /* offsetof(struct rf_rollout_gates, field) */
};

static const struct frac_gate frac_gates[] = {
    /* alpha in (0, 0.5]: above 0.5 the one-sided test means nothing */
    {"alpha", "alpha_ppm", 1, 500000, offsetof(struct rf_rollout_gates, alpha)},
    /* rate ratios: below 1 a release is punished for matching its baseline */
    {"margin", "margin_ppm", 1000000, 1000000000000LL, offsetof(struct rf_rollout_gates, margin)},
    {"floor_fraction", "floor_fraction_ppm", 1, 1000000,
     offsetof(struct rf_rollout_gates, floor_fraction)},
    {"alert_margin", "alert_margin_ppm", 1000000, 1000000000000LL,
     offsetof(struct rf_rollout_gates, alert_margin)},
    /* alerts per device-hour: 10^9 is ~280k/s per device, already "never" in practice */
    {"alert_floor_per_h", "alert_floor_per_h_ppm", 1, RF_GATE_PPM_MAX,
     offsetof(struct rf_rollout_gates, alert_floor_per_h)},
};

/* x as an integer count of ppm, when x is exactly k / 10^6 for an integer k in 0..
 * RF_GATE_PPM_MAX (the only values the parser stores); false otherwise. */
static bool ppm_of(double x, long long *ret)
{
	double k;

	if (!isfinite(x) || x < 0.0 || x > (double)RF_GATE_PPM_MAX / RF_GATE_PPM)
		return false;
	k = nearbyint(x * RF_GATE_PPM);
	if (k > (double)RF_GATE_PPM_MAX || k / RF_GATE_PPM != x)
		return false;
	*ret = (long long)k;
	return true;
}

/* A fractional gate from either its real key (any JSON number on the 1 ppm grid) or its
 * integer "_ppm" key, not both. */
static int get_frac(const json_t *o, const struct frac_gate *f, double *val, const char *where,
		    struct rf_diag *d)
{
	const json_t *v = json_object_get(o, f->key), *vp = json_object_get(o, f->ppm_key);
	long long k;

	if (v && vp)
		return rf_diag_report(d, -EBADMSG, "%s.%s: given together with %s.%s (use one)",
				      where, f->ppm_key, where, f->key);
	if (vp) {
		if (!json_is_integer(vp))
			return rf_diag_report(d, -EBADMSG,
					      "%s.%s: must be an integer (parts per million)", where,
					      f->ppm_key);
		k = (long long)json_integer_value(vp);
		if (k < f->lo_ppm || k > f->hi_ppm)
			return rf_diag_report(d, -EBADMSG, "%s.%s: %lld out of range %lld..%lld",
					      where, f->ppm_key, k, f->lo_ppm, f->hi_ppm);
		*val = (double)k / RF_GATE_PPM;
		return 0;
	}
	if (!v)
		return 0;
	if (!json_is_number(v))
		return rf_diag_report(d, -EBADMSG, "%s.%s: must be a number", where, f->key);
	if (!ppm_of(json_number_value(v), &k) || k < f->lo_ppm || k > f->hi_ppm) {
		double x = json_number_value(v);

		if (isfinite(x) && x * RF_GATE_PPM >= (double)f->lo_ppm &&
		    x * RF_GATE_PPM <= (double)f->hi_ppm)
			return rf_diag_report(d, -EBADMSG,
					      "%s.%s: %.12g is finer than 1 ppm (10^-6); give %s "
					      "as an integer instead",
					      where, f->key, x, f->ppm_key);
		return rf_diag_report(d, -EBADMSG, "%s.%s: %g out of range %g..%g", where, f->key,
				      x, (double)f->lo_ppm / RF_GATE_PPM,
				      (double)f->hi_ppm / RF_GATE_PPM);
	}
	*val = (double)k / RF_GATE_PPM;
	return 0;
}

static int parse_gates(const json_t *o, struct rf_rollout_gates *g, struct rf_diag *d)
{
	static const char *const keys[] = {"probation_s",
					   "silence_s",
					   "min_bake_s",
					   "min_healthy",
					   "alpha",
					   "alpha_ppm",
					   "margin",
					   "margin_ppm",
					   "min_events",
					   "floor_fraction",
					   "floor_fraction_ppm",
					   "floor_devices",
					   "alert_margin",
					   "alert_margin_ppm",
					   "alert_floor_per_h",
					   "alert_floor_per_h_ppm",
					   "alert_floor_min_exposure_s",
					   NULL};
	int r;

	rf_rollout_gates_default(g);
	if (!o)
		return 0;
	if (!json_is_object(o))
		return rf_diag_report(d, -EBADMSG, "gates: must be an object");
	if ((r = only_keys(o, keys, "gates", d)) < 0 ||
	    (r = get_time(o, "probation_s", false, &g->probation_s, "gates", d)) < 0 ||
	    (r = get_time(o, "silence_s", false, &g->silence_s, "gates", d)) < 0 ||
	    (r = get_time(o, "min_bake_s", false, &g->min_bake_s, "gates", d)) < 0 ||
	    (r = get_count(o, "min_healthy", &g->min_healthy, "gates", d)) < 0 ||
	    (r = get_count(o, "min_events", &g->min_events, "gates", d)) < 0 ||
	    (r = get_count(o, "floor_devices", &g->floor_devices, "gates", d)) < 0 ||
	    (r = get_time(o, "alert_floor_min_exposure_s", false, &g->alert_floor_min_exposure_s,
			  "gates", d)) < 0)
		return r;
	for (size_t i = 0; i < sizeof(frac_gates) / sizeof(frac_gates[0]); i++) {
		double x;

		memcpy(&x, (char *)g + frac_gates[i].off, sizeof(x));
		if ((r = get_frac(o, &frac_gates[i], &x, "gates", d)) < 0)
			return r;
		memcpy((char *)g + frac_gates[i].off, &x, sizeof(x));
	}
	if (g->min_events == 0)
		return rf_diag_report(d, -EBADMSG, "gates.min_events: must be at least 1");
	if (g->floor_devices == 0)
		return rf_diag_report(d, -EBADMSG, "gates.floor_devices: must be at least 1");
	return 0;
}

static int parse_step(const json_t *o, unsigned ri, unsigned si, struct rf_rollout_step *st,
		      struct rf_diag *d)
{
	static const char *const keys[] = {"after", "bp", "percent", NULL};
	char where[64];
	const json_t *pv, *bv;
	double pct, scaled;
	int r;

	snprintf(where, sizeof(where), "schedule[%u].ramp[%u]", ri, si);
	if (!json_is_object(o))
		return rf_diag_report(d, -EBADMSG, "%s: must be an object", where);
	if ((r = only_keys(o, keys, where, d)) < 0 ||
	    (r = get_time(o, "after", true, &st->after, where, d)) < 0)
		return r;
	pv = json_object_get(o, "percent");
	bv = json_object_get(o, "bp");
	if (pv && bv)
		return rf_diag_report(d, -EBADMSG,
				      "%s.bp: given together with %s.percent (use one)", where,
				      where);
	if (bv) {
		json_int_t b;

		if (!json_is_integer(bv))
			return rf_diag_report(d, -EBADMSG,
					      "%s.bp: must be an integer (basis points, 1..10000)",
					      where);
		b = json_integer_value(bv);
		if (b < 1 || b > RF_ROLLOUT_BUCKETS)
			return rf_diag_report(d, -EBADMSG, "%s.bp: %lld out of range 1..%u", where,
					      (long long)b, RF_ROLLOUT_BUCKETS);
		st->percent_bp = (uint32_t)b;
		return 0;
	}
	if (!pv)
		return rf_diag_report(d, -EBADMSG, "%s.percent: missing (give \"percent\" or \"bp\")",
				      where);
	if (!json_is_number(pv))
		return rf_diag_report(d, -EBADMSG, "%s.percent: must be a number", where);
	pct = json_number_value(pv);
	if (!isfinite(pct) || pct <= 0.0 || pct > 100.0)
		return rf_diag_report(d, -EBADMSG, "%s.percent: %g out of range (0..100]", where,
				      pct);
	scaled = pct * 100.0;
	if (fabs(scaled - nearbyint(scaled)) > 1e-6 || nearbyint(scaled) < 1.0)
		return rf_diag_report(d, -EBADMSG,
				      "%s.percent: %g is finer than the 0.01 %% bucket granularity",
				      where, pct);
	st->percent_bp = (uint32_t)nearbyint(scaled);
	return 0;
}

static int parse_ring(const json_t *o, unsigned ri, struct rf_rollout_ring_schedule *rs,
		      struct rf_diag *d)
{
	static const char *const keys[] = {"ring", "not_before", "ramp", NULL};
	char where[32], q[80];
	const json_t *name, *ramp;
	size_t n;
	int r;

	snprintf(where, sizeof(where), "schedule[%u]", ri);
	if (!json_is_object(o))
		return rf_diag_report(d, -EBADMSG, "%s: must be an object", where);
	if ((r = only_keys(o, keys, where, d)) < 0)
		return r;
	name = json_object_get(o, "ring");
	if (!name || !json_is_string(name))
		return rf_diag_report(d, -EBADMSG, "%s.ring: missing or not a string", where);
	n = json_string_length(name);
	if (!ring_name_ok(json_string_value(name), n))
		return rf_diag_report(d, -EBADMSG, "%s.ring: \"%s\" is not 1..%d of [a-z0-9_-]",
				      where,
				      rf_diag_quote(q, sizeof(q), json_string_value(name), n),
				      RF_ROLLOUT_RING_NAME_MAX - 1);
	memset(rs->name, 0, sizeof(rs->name));
	memcpy(rs->name, json_string_value(name), n);
	if ((r = get_time(o, "not_before", true, &rs->not_before, where, d)) < 0)
		return r;
	ramp = json_object_get(o, "ramp");
	if (!ramp || !json_is_array(ramp) || json_array_size(ramp) == 0)
		return rf_diag_report(d, -EBADMSG, "%s.ramp: missing or not a non-empty array",
				      where);
	if (json_array_size(ramp) > RF_ROLLOUT_STEPS_MAX)
		return rf_diag_report(d, -E2BIG, "%s.ramp: %zu steps, limit %d", where,
				      json_array_size(ramp), RF_ROLLOUT_STEPS_MAX);
	rs->nsteps = (unsigned)json_array_size(ramp);
	for (unsigned si = 0; si < rs->nsteps; si++) {
		struct rf_rollout_step *st = &rs->steps[si];

		if ((r = parse_step(json_array_get(ramp, si), ri, si, st, d)) < 0)
			return r;
		if (si > 0 && st->after <= rs->steps[si - 1].after)
			return rf_diag_report(d, -EBADMSG,
					      "%s.ramp[%u].after: %lld must be greater than the "
					      "previous step's (%lld)",
					      where, si, (long long)st->after,
					      (long long)rs->steps[si - 1].after);
		if (si > 0 && st->percent_bp < rs->steps[si - 1].percent_bp)
			return rf_diag_report(d, -EBADMSG,
					      "%s.ramp[%u].percent: must be >= the previous step's "
					      "(%u.%02u)",
					      where, si, rs->steps[si - 1].percent_bp / 100,
					      rs->steps[si - 1].percent_bp % 100);
	}
	return 0;
}

int rf_rollout_schedule_from_json(const struct json_t *obj, struct rf_rollout_schedule *ret,
				  struct rf_diag *reterr)
{
	static const char *const keys[] = {"release", "schedule", "gates", NULL};
	const json_t *root = obj, *rel, *sched, *inner;
	struct rf_rollout_schedule *s;
	char q[160];
	size_t n;
	int r;

	if (!root || !ret)
		return -EINVAL;
	if (!json_is_object(root))
		return rf_diag_report(reterr, -EBADMSG, "schedule: top level must be an object");
	inner = json_object_get(root, "ringfence");
	if (inner) {
		if (!json_is_object(inner))
			return rf_diag_report(reterr, -EBADMSG, "ringfence: must be an object");
		root = inner;
	}
	if ((r = only_keys(root, keys, "ringfence", reterr)) < 0)
		return r;
	/* Built in a heap copy so *ret is written only on success (the struct is ~4 KiB). */
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rel = json_object_get(root, "release");
	if (!rel || !json_is_string(rel)) {
		r = rf_diag_report(reterr, -EBADMSG, "release: missing or not a string");
		goto out;
	}
	n = json_string_length(rel);
	if (!release_id_ok(json_string_value(rel), n)) {
		r = rf_diag_report(reterr, n >= RF_ROLLOUT_RELEASE_ID_MAX ? -E2BIG : -EBADMSG,
				   "release: \"%s\" must be 1..%d printable ASCII characters",
				   rf_diag_quote(q, sizeof(q), json_string_value(rel), n),
				   RF_ROLLOUT_RELEASE_ID_MAX - 1);
		goto out;
	}
	memcpy(s->release, json_string_value(rel), n);
	rf_rollout_bucket_key(s->release, n, s->bucket_key);

	sched = json_object_get(root, "schedule");
	if (!sched || !json_is_array(sched) || json_array_size(sched) == 0) {
		r = rf_diag_report(reterr, -EBADMSG, "schedule: missing or not a non-empty array");
		goto out;
	}
	if (json_array_size(sched) > RF_ROLLOUT_RINGS_MAX) {
		r = rf_diag_report(reterr, -E2BIG, "schedule: %zu rings, limit %d",
				   json_array_size(sched), RF_ROLLOUT_RINGS_MAX);
		goto out;
	}
	s->nrings = (unsigned)json_array_size(sched);
	for (unsigned i = 0; i < s->nrings; i++) {
		if ((r = parse_ring(json_array_get(sched, i), i, &s->rings[i], reterr)) < 0)
			goto out;
		for (unsigned j = 0; j < i; j++)
			if (strcmp(s->rings[j].name, s->rings[i].name) == 0) {
				r = rf_diag_report(reterr, -EBADMSG,
						   "schedule[%u].ring: \"%s\" already listed as "
						   "schedule[%u]",
						   i, s->rings[i].name, j);
				goto out;
			}
	}
	if ((r = parse_gates(json_object_get(root, "gates"), &s->gates, reterr)) < 0)
		goto out;
	memcpy(ret, s, sizeof(*s));
	r = 0;
out:
	free(s);
	return r;
}

int rf_rollout_schedule_parse(const uint8_t *p, size_t n, struct rf_rollout_schedule *ret,
			      struct rf_diag *reterr)
{
	json_error_t err;
	json_t *root;
	int r;

	if ((!p && n) || !ret)
		return -EINVAL;
	if (n > RF_ROLLOUT_SCHEDULE_JSON_MAX)
		return rf_diag_report(reterr, -E2BIG, "schedule: %zu bytes, limit %u", n,
				      RF_ROLLOUT_SCHEDULE_JSON_MAX);
	root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &err);
	if (!root)
		return rf_diag_report(reterr, -EBADMSG, "schedule: byte %d (line %d): %s",
				      err.position, err.line, err.text);
	r = rf_rollout_schedule_from_json(root, ret, reterr);
	json_decref(root);
	return r;
}

/* A step in integers only: whole percents stay readable as "percent", anything finer is "bp".
 * One encoding per value, so the output is canonical. */
static json_t *step_json(const struct rf_rollout_step *st)
{
	if (st->percent_bp % 100 == 0)
		return json_pack("{s:I,s:I}", "after", (json_int_t)st->after, "percent",
				 (json_int_t)(st->percent_bp / 100));
	return json_pack("{s:I,s:I}", "after", (json_int_t)st->after, "bp",
			 (json_int_t)st->percent_bp);
}

/* The fractional gates as "X_ppm" integers into o; -EINVAL if a value is not one the parser
 * could have produced (off the 1 ppm grid or out of range): writing it would not round-trip. */
static int gates_ppm_json(const struct rf_rollout_gates *g, json_t *o)
{
	for (size_t i = 0; i < sizeof(frac_gates) / sizeof(frac_gates[0]); i++) {
		const struct frac_gate *f = &frac_gates[i];
		double x;
		long long k;

		memcpy(&x, (const char *)g + f->off, sizeof(x));
		if (!ppm_of(x, &k) || k < f->lo_ppm || k > f->hi_ppm)
			return -EINVAL;
		if (json_object_set_new(o, f->ppm_key, json_integer((json_int_t)k)) < 0)
			return -ENOMEM;
	}
	return 0;
}

int rf_rollout_schedule_format(const struct rf_rollout_schedule *s, char *out, size_t outsz)
{
	const struct rf_rollout_gates *g = &s->gates;
	json_t *root, *rings, *gates;
	size_t len;
	int r = -ENOMEM;

	root = json_object();
	rings = json_array();
	gates = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "probation_s",
			  (json_int_t)g->probation_s, "silence_s", (json_int_t)g->silence_s,
			  "min_bake_s", (json_int_t)g->min_bake_s, "min_healthy",
			  (json_int_t)g->min_healthy, "min_events", (json_int_t)g->min_events,
			  "floor_devices", (json_int_t)g->floor_devices,
			  "alert_floor_min_exposure_s", (json_int_t)g->alert_floor_min_exposure_s);
	if (!root || !rings || !gates)
		goto out;
	if ((r = gates_ppm_json(g, gates)) < 0)
		goto out;
	r = -ENOMEM;
	for (unsigned i = 0; i < s->nrings && i < RF_ROLLOUT_RINGS_MAX; i++) {
		const struct rf_rollout_ring_schedule *rs = &s->rings[i];
		json_t *ramp = json_array(), *ring;

		if (!ramp)
			goto out;
		for (unsigned j = 0; j < rs->nsteps && j < RF_ROLLOUT_STEPS_MAX; j++) {
			if (rs->steps[j].percent_bp < 1 ||
			    rs->steps[j].percent_bp > RF_ROLLOUT_BUCKETS) {
				json_decref(ramp);
				r = -EINVAL;
				goto out;
			}
			if (json_array_append_new(ramp, step_json(&rs->steps[j])) < 0) {
				json_decref(ramp);
				goto out;
			}
		}
		ring = json_pack("{s:s,s:I,s:o}", "ring", rs->name, "not_before",
				 (json_int_t)rs->not_before, "ramp", ramp);
		if (!ring || json_array_append_new(rings, ring) < 0)
			goto out;
	}
	if (json_object_set_new(root, "release", json_string(s->release)) < 0 ||
	    json_object_set(root, "schedule", rings) < 0 ||
	    json_object_set(root, "gates", gates) < 0)
		goto out;
	len = json_dumpb(root, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
	if (len == 0)
		goto out;
	if (len >= outsz) {
		r = -E2BIG;
		goto out;
	}
	json_dumpb(root, out, len, JSON_COMPACT | JSON_SORT_KEYS);
	out[len] = '\0';
	r = (int)len;
out:
	json_decref(rings);
	json_decref(gates);
	json_decref(root);
	return r;
}

int rf_rollout_ring_index(const struct rf_rollout_schedule *s, const char *name)
{
	for (unsigned i = 0; i < s->nrings && i < RF_ROLLOUT_RINGS_MAX; i++)
		if (strcmp(s->rings[i].name, name) == 0)
			return (int)i;
	return -1;
}

int64_t rf_rollout_admit_time(const struct rf_rollout_schedule *s, int ring, uint32_t bucket)
{
	const struct rf_rollout_ring_schedule *rs;

	if (ring < 0 || (unsigned)ring >= s->nrings || (unsigned)ring >= RF_ROLLOUT_RINGS_MAX)
		return INT64_MAX;
	rs = &s->rings[ring];
	for (unsigned j = 0; j < rs->nsteps && j < RF_ROLLOUT_STEPS_MAX; j++)
		if (bucket < rs->steps[j].percent_bp)
			return rs->not_before + rs->steps[j].after;
	return INT64_MAX;
}

bool rf_rollout_schedule_admits(const struct rf_rollout_schedule *s, const char *ring,
				uint32_t bucket, int64_t now)
{
	return now >= rf_rollout_admit_time(s, rf_rollout_ring_index(s, ring), bucket);
}
