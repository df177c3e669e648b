/*
 * Scenario and policy parsers (see scenario.h). The input is untrusted JSON: it is bounded in
 * size before jansson sees it, every number is range-checked before it is narrowed, strings are
 * length-checked and quoted in diagnostics, and nothing is written to the caller's struct until
 * the whole document has been accepted. Unknown keys are ignored so that a file can carry
 * documentation ("description", "sources", "notes").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sim/scenario.h"

#define U32_NONE UINT64_MAX

/* Scenario releases, not counting the baseline (release 0): the rollout engine decides among at
 * most RF_ROLLOUT_DECIDE_MAX releases, and the scenario struct holds RF_SIM_RELEASES_MAX. */
#define RELEASES_MAX                                                                               \
	((RF_SIM_RELEASES_MAX < RF_ROLLOUT_DECIDE_MAX ? RF_SIM_RELEASES_MAX                        \
						      : RF_ROLLOUT_DECIDE_MAX) -                   \
	 1)

static int field_err(struct rf_diag *d, const char *where, const char *key, const char *what)
{
	return rf_diag_report(d, -EBADMSG, "%s%s%s: %s", where, *where ? "." : "", key, what);
}

/* An integer field in [lo, hi]; absent -> def (or an error when def == U32_NONE). */
static int get_uint(const json_t *o, const char *where, const char *key, uint64_t lo, uint64_t hi,
		    uint64_t def, uint64_t *ret, struct rf_diag *d)
{
	const json_t *v = json_object_get(o, key);
	if (!v) {
		if (def == U32_NONE)
			return field_err(d, where, key, "missing");
		*ret = def;
		return 0;
	}
	if (!json_is_integer(v))
		return field_err(d, where, key, "must be an integer");
	json_int_t x = json_integer_value(v);
	if (x < 0 || (uint64_t)x < lo || (uint64_t)x > hi) {
		char msg[96];
		snprintf(msg, sizeof(msg), "must be in [%llu, %llu]", (unsigned long long)lo,
			 (unsigned long long)hi);
		return field_err(d, where, key, msg);
	}
	*ret = (uint64_t)x;
	return 0;
}

static int get_u32(const json_t *o, const char *where, const char *key, uint32_t lo, uint32_t hi,
		   uint64_t def, uint32_t *ret, struct rf_diag *d)
{
	uint64_t v;
	int r = get_uint(o, where, key, lo, hi, def, &v, d);
	if (r < 0)
		return r;
	*ret = (uint32_t)v;
	return 0;
}

static int get_real(const json_t *o, const char *where, const char *key, double lo, double hi,
		    double def, double *ret, struct rf_diag *d)
{
	const json_t *v = json_object_get(o, key);
	if (!v) {
		if (isnan(def))
			return field_err(d, where, key, "missing");
		*ret = def;
		return 0;
	}
	if (!json_is_number(v))
		return field_err(d, where, key, "must be a number");
	double x = json_number_value(v);
	if (!(x >= lo && x <= hi)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "must be in [%g, %g]", lo, hi);
		return field_err(d, where, key, msg);
	}
	*ret = x;
	return 0;
}

static int get_bool(const json_t *o, const char *where, const char *key, bool def, bool *ret,
		    struct rf_diag *d)
{
	const json_t *v = json_object_get(o, key);
	if (!v) {
		*ret = def;
		return 0;
	}
	if (!json_is_boolean(v))
		return field_err(d, where, key, "must be true or false");
	*ret = json_is_true(v);
	return 0;
}

/* A string of 1..outsz-1 printable ASCII characters. */
static int get_str(const json_t *o, const char *where, const char *key, bool required, char *out,
		   size_t outsz, struct rf_diag *d)
{
	const json_t *v = json_object_get(o, key);
	if (!v) {
		if (required)
			return field_err(d, where, key, "missing");
		return 0;
	}
	if (!json_is_string(v))
		return field_err(d, where, key, "must be a string");
	size_t len = json_string_length(v);
	const char *s = json_string_value(v);
	if (len == 0 || len >= outsz)
		return field_err(d, where, key, "empty or too long");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return field_err(d, where, key, "must be printable ASCII");
	memcpy(out, s, len);
	out[len] = 0;
	return 0;
}

static int load_json(const uint8_t *p, size_t n, json_t **ret, struct rf_diag *d)
{
	if (n > RF_SIM_FILE_MAX)
		return rf_diag_report(d, -E2BIG, "file is %zu bytes, over the %u byte limit", n,
				      RF_SIM_FILE_MAX);
	json_error_t e;
	json_t *root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &e);
	if (!root)
		return rf_diag_report(d, -EBADMSG, "line %d column %d: %s", e.line, e.column,
				      e.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return rf_diag_report(d, -EBADMSG, "top level must be an object");
	}
	*ret = root;
	return 0;
}

static const json_t *get_obj(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_object(v) ? v : NULL;
}

const char *rf_sim_data_dir(void)
{
	return RF_SIM_DATA_DIR;
}

const char *rf_sim_failure_name(enum rf_sim_failure f)
{
	switch (f) {
	case RF_SIM_FAIL_NONE:
		return "none";
	case RF_SIM_FAIL_CRASH:
		return "crash";
	case RF_SIM_FAIL_CRASH_RATE:
		return "crash-rate";
	case RF_SIM_FAIL_HANG:
		return "hang";
	case RF_SIM_FAIL_ALERT_STORM:
		return "alert-storm";
	}
	return "?";
}

static int parse_failure(const json_t *o, struct rf_sim_scenario *s, struct rf_diag *d)
{
	const char *w = "failure";
	char mode[32] = "", kind[32] = "machine";
	int r;

	if (!o)
		return rf_diag_report(d, -EBADMSG, "failure: missing object");
	if ((r = get_str(o, w, "mode", true, mode, sizeof(mode), d)) < 0 ||
	    (r = get_str(o, w, "crash", false, kind, sizeof(kind), d)) < 0)
		return r;
	if (!strcmp(mode, "crash"))
		s->failure = RF_SIM_FAIL_CRASH;
	else if (!strcmp(mode, "crash-rate"))
		s->failure = RF_SIM_FAIL_CRASH_RATE;
	else if (!strcmp(mode, "hang"))
		s->failure = RF_SIM_FAIL_HANG;
	else if (!strcmp(mode, "alert-storm"))
		s->failure = RF_SIM_FAIL_ALERT_STORM;
	else if (!strcmp(mode, "none")) /* no bad content: the scenario is about the operator */
		s->failure = RF_SIM_FAIL_NONE;
	else
		return field_err(d, w, "mode",
				 "must be crash, crash-rate, hang, alert-storm or none");
	if (!strcmp(kind, "machine"))
		s->crash_kind = RF_SIM_CRASH_MACHINE;
	else if (!strcmp(kind, "process"))
		s->crash_kind = RF_SIM_CRASH_PROCESS;
	else
		return field_err(d, w, "crash", "must be machine or process");
	if ((r = get_u32(o, w, "delay_s", 0, 86400, 0, &s->fail_delay_s, d)) < 0 ||
	    (r = get_real(o, w, "rate_per_hour", 0, 3600, 0, &s->fail_rate_per_hour, d)) < 0 ||
	    (r = get_real(o, w, "alerts_per_hour", 0, 1e7, 0, &s->alerts_per_hour, d)) < 0)
		return r;
	if (s->failure == RF_SIM_FAIL_CRASH_RATE && s->fail_rate_per_hour <= 0)
		return field_err(d, w, "rate_per_hour", "must be > 0 for mode crash-rate");
	if (s->failure == RF_SIM_FAIL_ALERT_STORM && s->alerts_per_hour <= 0)
		return field_err(d, w, "alerts_per_hour", "must be > 0 for mode alert-storm");
	return 0;
}

static int parse_releases(const json_t *root, struct rf_sim_scenario *s, struct rf_diag *d)
{
	const json_t *rels = json_object_get(root, "releases");
	const json_t *flap = get_obj(root, "flapping");
	int r;

	if (rels && flap)
		return rf_diag_report(d, -EBADMSG, "releases and flapping: give one, not both");
	if (flap) {
		/* A file regenerated every period_s, each one bad with probability bad_probability
		 * (drawn from seed), until until_s; the first one is always bad. */
		uint32_t period, count;
		double pbad;
		uint64_t seed;
		if ((r = get_u32(flap, "flapping", "period_s", 1, 86400, U32_NONE, &period, d)) <
			0 ||
		    (r = get_u32(flap, "flapping", "count", 1, RELEASES_MAX - 1, U32_NONE, &count,
				 d)) < 0 ||
		    (r = get_real(flap, "flapping", "bad_probability", 0, 1, 0.5, &pbad, d)) < 0 ||
		    (r = get_uint(flap, "flapping", "seed", 0, UINT32_MAX, 1, &seed, d)) < 0)
			return r;
		uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
		for (uint32_t i = 0; i < count; i++) {
			x ^= x >> 33;
			x *= 0xff51afd7ed558ccdull;
			x ^= x >> 33;
			s->releases[i].at_s = i * period;
			s->releases[i].bad =
			    i == 0 || (double)(x >> 11) / 9007199254740992.0 < pbad;
		}
		/* The fix: a good file after the last one. */
		s->releases[count].at_s = count * period;
		s->releases[count].bad = false;
		s->nreleases = count + 1;
		return 0;
	}
	if (!rels) {
		s->nreleases = 1;
		s->releases[0].at_s = 0;
		s->releases[0].bad = true;
		return 0;
	}
	if (!json_is_array(rels) || json_array_size(rels) == 0)
		return rf_diag_report(d, -EBADMSG, "releases: must be a non-empty array");
	if (json_array_size(rels) > RELEASES_MAX)
		return rf_diag_report(d, -E2BIG, "releases: more than %u", RELEASES_MAX);
	for (size_t i = 0; i < json_array_size(rels); i++) {
		const json_t *e = json_array_get(rels, i);
		char where[32];
		snprintf(where, sizeof(where), "releases[%zu]", i);
		if (!json_is_object(e))
			return rf_diag_report(d, -EBADMSG, "%s: must be an object", where);
		if ((r = get_u32(e, where, "at_s", 0, RF_SIM_DURATION_MAX, U32_NONE,
				 &s->releases[i].at_s, d)) < 0 ||
		    (r = get_bool(e, where, "bad", false, &s->releases[i].bad, d)) < 0 ||
		    (r = get_u32(e, where, "halt_s", 0, RF_SIM_DURATION_MAX, 0,
				 &s->releases[i].halt_s, d)) < 0 ||
		    (r = get_u32(e, where, "rollback_s", 0, RF_SIM_DURATION_MAX, 0,
				 &s->releases[i].rollback_s, d)) < 0)
			return r;
		if (i > 0 && s->releases[i].at_s < s->releases[i - 1].at_s)
			return field_err(d, where, "at_s", "releases must be in time order");
	}
	s->nreleases = (uint32_t)json_array_size(rels);
	return 0;
}

static int parse_repair(const json_t *root, struct rf_sim_scenario *s, struct rf_diag *d)
{
	const json_t *rep = json_object_get(root, "repair");
	if (!rep)
		return 0;
	if (!json_is_array(rep))
		return rf_diag_report(d, -EBADMSG, "repair: must be an array of [t_s, fraction]");
	if (json_array_size(rep) > RF_SIM_REPAIR_POINTS_MAX)
		return rf_diag_report(d, -E2BIG, "repair: more than %u points",
				      RF_SIM_REPAIR_POINTS_MAX);
	for (size_t i = 0; i < json_array_size(rep); i++) {
		const json_t *e = json_array_get(rep, i);
		if (!json_is_array(e) || json_array_size(e) != 2 ||
		    !json_is_integer(json_array_get(e, 0)) || !json_is_number(json_array_get(e, 1)))
			return rf_diag_report(d, -EBADMSG, "repair[%zu]: must be [t_s, fraction]",
					      i);
		json_int_t t = json_integer_value(json_array_get(e, 0));
		double f = json_number_value(json_array_get(e, 1));
		if (t < 0 || t > RF_SIM_DURATION_MAX || !(f >= 0 && f <= 1))
			return rf_diag_report(d, -EBADMSG,
					      "repair[%zu]: t_s or fraction out of range", i);
		if (i > 0 && ((uint32_t)t <= s->repair[i - 1].t_s || f < s->repair[i - 1].fraction))
			return rf_diag_report(
			    d, -EBADMSG, "repair[%zu]: points must increase in time and fraction",
			    i);
		s->repair[i].t_s = (uint32_t)t;
		s->repair[i].fraction = f;
	}
	s->nrepair = (unsigned)json_array_size(rep);
	return 0;
}

int rf_sim_scenario_parse(const uint8_t *p, size_t n, struct rf_sim_scenario *ret,
			  struct rf_diag *d)
{
	json_t *root = NULL;
	int r = load_json(p, n, &root, d);
	if (r < 0)
		return r;

	struct rf_sim_scenario *s = calloc(1, sizeof(*s));
	if (!s) {
		json_decref(root);
		return -ENOMEM;
	}
	const json_t *fleet = get_obj(root, "fleet");
	const json_t *server = get_obj(root, "server");
	const json_t *empty = json_object();
	uint64_t start;
	if (!fleet) {
		r = rf_diag_report(d, -EBADMSG, "fleet: missing object");
		goto out;
	}
	if (!server)
		server = empty;
	if ((r = get_str(root, "", "name", true, s->name, sizeof(s->name), d)) < 0 ||
	    (r = get_str(root, "", "title", false, s->title, sizeof(s->title), d)) < 0 ||
	    (r = get_uint(root, "", "start", 0, RF_ROLLOUT_TIME_MAX - RF_SIM_DURATION_MAX, U32_NONE,
			  &start, d)) < 0 ||
	    (r = get_u32(root, "", "duration_s", 60, RF_SIM_DURATION_MAX, U32_NONE, &s->duration_s,
			 d)) < 0 ||
	    (r = get_uint(fleet, "fleet", "devices", 1, RF_SIM_DEVICES_MAX, U32_NONE, &s->devices,
			  d)) < 0 ||
	    (r = get_u32(fleet, "fleet", "poll_s", 1, 86400, U32_NONE, &s->poll_s, d)) < 0 ||
	    (r = get_u32(fleet, "fleet", "poll_jitter_s", 0, 86400, 0, &s->poll_jitter_s, d)) < 0 ||
	    (r = get_real(fleet, "fleet", "offline_fraction", 0, 1, 0, &s->offline_fraction, d)) <
		0 ||
	    (r = get_u32(fleet, "fleet", "offline_mean_s", 0, RF_SIM_DURATION_MAX, 3600,
			 &s->offline_mean_s, d)) < 0 ||
	    (r = get_u32(fleet, "fleet", "boot_s", 1, 3600, 90, &s->boot_s, d)) < 0 ||
	    (r = get_u32(fleet, "fleet", "boot_jitter_s", 0, 3600, 60, &s->boot_jitter_s, d)) < 0 ||
	    (r = get_u32(fleet, "fleet", "restart_s", 1, 3600, 5, &s->restart_s, d)) < 0 ||
	    (r = get_u32(fleet, "fleet", "checkin_after_boot_s", 0, 3600, 30,
			 &s->checkin_after_boot_s, d)) < 0 ||
	    (r = get_real(fleet, "fleet", "events_per_s", 0, 1e6, 10, &s->events_per_s, d)) < 0 ||
	    (r = get_real(fleet, "fleet", "background_crash_per_hour", 0, 1, 1e-5,
			  &s->background_crash_per_hour, d)) < 0 ||
	    (r = get_real(fleet, "fleet", "base_alerts_per_hour", 0, 1e6, 0.1,
			  &s->base_alerts_per_hour, d)) < 0 ||
	    (r = get_u32(fleet, "fleet", "tenants", 1, 65536, 1000, &s->tenants, d)) < 0 ||
	    (r = get_real(fleet, "fleet", "tenant_pin_n1_fraction", 0, 1, 0,
			  &s->tenant_pin_n1_fraction, d)) < 0 ||
	    (r = parse_failure(get_obj(root, "failure"), s, d)) < 0 ||
	    (r = parse_releases(root, s, d)) < 0 ||
	    (r = get_u32(root, "", "baseline_rollback_s", 0, RF_SIM_DURATION_MAX, 0,
			 &s->baseline_rollback_s, d)) < 0 ||
	    (r = get_u32(root, "", "vendor_fix_s", 0, RF_SIM_DURATION_MAX, 0, &s->vendor_fix_s,
			 d)) < 0 ||
	    (r = parse_repair(root, s, d)) < 0 ||
	    (r = get_u32(server, "server", "capacity_per_s", 0, UINT32_MAX / 2, 0,
			 &s->server_capacity_per_s, d)) < 0)
		goto out;
	s->start = (int64_t)start;
	*ret = *s;
	r = 0;
out:
	free(s);
	json_decref((json_t *)empty);
	json_decref(root);
	return r;
}

static int parse_ring(const json_t *e, size_t i, struct rf_sim_ring_spec *ring, struct rf_diag *d)
{
	char where[32];
	int r;

	snprintf(where, sizeof(where), "rings[%zu]", i);
	if (!json_is_object(e))
		return rf_diag_report(d, -EBADMSG, "%s: must be an object", where);
	if ((r = get_str(e, where, "name", true, ring->name, sizeof(ring->name), d)) < 0 ||
	    (r = get_real(e, where, "share", 0, 1, NAN, &ring->share, d)) < 0 ||
	    (r = get_u32(e, where, "min_devices", 0, RF_SIM_DEVICES_MAX, 0, &ring->min_devices,
			 d)) < 0 ||
	    (r = get_u32(e, where, "not_before_s", 0, RF_SIM_DURATION_MAX, 0, &ring->not_before_s,
			 d)) < 0)
		return r;
	for (const char *c = ring->name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
		      *c == '_'))
			return field_err(d, where, "name", "must be [a-z0-9_-]");
	const json_t *ramp = json_object_get(e, "ramp");
	if (!json_is_array(ramp) || json_array_size(ramp) == 0)
		return field_err(d, where, "ramp", "must be a non-empty array");
	if (json_array_size(ramp) > RF_SIM_RAMP_MAX)
		return rf_diag_report(d, -E2BIG, "%s.ramp: more than %u steps", where,
				      RF_SIM_RAMP_MAX);
	for (size_t k = 0; k < json_array_size(ramp); k++) {
		const json_t *st = json_array_get(ramp, k);
		char w2[64];
		uint32_t after;
		double pct;
		snprintf(w2, sizeof(w2), "%s.ramp[%zu]", where, k);
		if (!json_is_object(st))
			return rf_diag_report(d, -EBADMSG, "%s: must be an object", w2);
		if ((r = get_u32(st, w2, "after_s", 0, RF_SIM_DURATION_MAX, U32_NONE, &after, d)) <
			0 ||
		    (r = get_real(st, w2, "percent", 0.01, 100, NAN, &pct, d)) < 0)
			return r;
		ring->steps[k].after = after;
		ring->steps[k].percent_bp = (uint32_t)lround(pct * 100);
		if (k > 0 && (ring->steps[k].after <= ring->steps[k - 1].after ||
			      ring->steps[k].percent_bp < ring->steps[k - 1].percent_bp))
			return rf_diag_report(
			    d, -EBADMSG,
			    "%s: steps must increase in after_s and not decrease in percent", w2);
	}
	ring->nsteps = (unsigned)json_array_size(ramp);
	return 0;
}

static int parse_gates(const json_t *o, struct rf_rollout_gates *g, struct rf_diag *d)
{
	const char *w = "gates";
	uint64_t v;
	int r;

	if (!o)
		return 0;
#define GATE_INT(key, hi)                                                                          \
	do {                                                                                       \
		if ((r = get_uint(o, w, #key, 0, hi, (uint64_t)g->key, &v, d)) < 0)                \
			return r;                                                                  \
		g->key = (__typeof__(g->key))v;                                                    \
	} while (0)
#define GATE_REAL(key, lo, hi)                                                                     \
	do {                                                                                       \
		if ((r = get_real(o, w, #key, lo, hi, g->key, &g->key, d)) < 0)                    \
			return r;                                                                  \
	} while (0)
	GATE_INT(probation_s, RF_SIM_DURATION_MAX);
	GATE_INT(silence_s, RF_SIM_DURATION_MAX);
	GATE_INT(min_bake_s, RF_SIM_DURATION_MAX);
	GATE_INT(min_healthy, RF_SIM_DEVICES_MAX);
	GATE_REAL(alpha, 0, 1);
	GATE_REAL(margin, 0, 1e6);
	GATE_INT(min_events, RF_SIM_DEVICES_MAX);
	GATE_REAL(floor_fraction, 0, 1);
	GATE_INT(floor_devices, RF_SIM_DEVICES_MAX);
	GATE_REAL(alert_margin, 0, 1e6);
	GATE_REAL(alert_floor_per_h, 0, 1e9);
	GATE_INT(alert_floor_min_exposure_s, UINT32_MAX);
#undef GATE_INT
#undef GATE_REAL
	return 0;
}

int rf_sim_policy_parse(const uint8_t *p, size_t n, struct rf_sim_policy *ret, struct rf_diag *d)
{
	json_t *root = NULL;
	int r = load_json(p, n, &root, d);
	if (r < 0)
		return r;

	struct rf_sim_policy *pol = calloc(1, sizeof(*pol));
	if (!pol) {
		json_decref(root);
		return -ENOMEM;
	}
	const json_t *rings = json_object_get(root, "rings");
	const json_t *guard = get_obj(root, "guard");
	const json_t *agent = get_obj(root, "agent");
	const json_t *empty = json_object();
	char retry[32] = "exponential";
	double total = 0;

	rf_rollout_gates_default(&pol->gates);
	if (!guard)
		guard = empty;
	if (!agent)
		agent = empty;
	if ((r = get_str(root, "", "name", true, pol->name, sizeof(pol->name), d)) < 0)
		goto out;
	if (!json_is_array(rings) || json_array_size(rings) == 0) {
		r = rf_diag_report(d, -EBADMSG, "rings: must be a non-empty array");
		goto out;
	}
	if (json_array_size(rings) > RF_SIM_RINGS_MAX) {
		r = rf_diag_report(d, -E2BIG, "rings: more than %u", RF_SIM_RINGS_MAX);
		goto out;
	}
	for (size_t i = 0; i < json_array_size(rings); i++) {
		if ((r = parse_ring(json_array_get(rings, i), i, &pol->rings[i], d)) < 0)
			goto out;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(pol->rings[i].name, pol->rings[j].name)) {
				r = rf_diag_report(d, -EBADMSG, "rings[%zu].name: duplicate '%s'",
						   i, pol->rings[i].name);
				goto out;
			}
		total += pol->rings[i].share;
	}
	pol->nrings = (unsigned)json_array_size(rings);
	if (!(total > 0)) {
		r = rf_diag_report(d, -EBADMSG, "rings: shares must add up to more than 0");
		goto out;
	}
	for (unsigned i = 0; i < pol->nrings; i++)
		pol->rings[i].share /= total;
	if ((r = get_bool(root, "", "gates_enabled", true, &pol->gates_enabled, d)) < 0 ||
	    (r = parse_gates(get_obj(root, "gates"), &pol->gates, d)) < 0 ||
	    (r = get_u32(root, "", "evaluate_s", 1, 86400, 60, &pol->evaluate_s, d)) < 0 ||
	    (r = get_bool(guard, "guard", "enabled", true, &pol->guard_enabled, d)) < 0)
		goto out;
	uint32_t limit;
	if ((r = get_u32(guard, "guard", "attempt_limit", 1, 255, RF_GUARD_ATTEMPTS_DEFAULT, &limit,
			 d)) < 0 ||
	    (r = get_u32(guard, "guard", "probation_s", 0, 86400, 600, &pol->guard_probation_s,
			 d)) < 0 ||
	    (r = get_uint(guard, "guard", "probation_events", 0, UINT32_MAX, 1000,
			  &pol->guard_probation_events, d)) < 0 ||
	    (r = get_u32(guard, "guard", "watchdog_s", 1, 3600, 10, &pol->watchdog_s, d)) < 0 ||
	    (r = get_str(agent, "agent", "retry", false, retry, sizeof(retry), d)) < 0 ||
	    (r = get_u32(agent, "agent", "retry_base_s", 1, 3600, 1, &pol->retry_base_s, d)) < 0 ||
	    (r = get_u32(agent, "agent", "retry_max_s", 1, 86400, 300, &pol->retry_max_s, d)) < 0)
		goto out;
	pol->guard_attempt_limit = (uint8_t)limit;
	if (!strcmp(retry, "fixed"))
		pol->retry = RF_SIM_RETRY_FIXED;
	else if (!strcmp(retry, "exponential"))
		pol->retry = RF_SIM_RETRY_EXPONENTIAL;
	else {
		r = field_err(d, "agent", "retry", "must be fixed or exponential");
		goto out;
	}
	*ret = *pol;
	r = 0;
out:
	free(pol);
	json_decref((json_t *)empty);
	json_decref(root);
	return r;
}
