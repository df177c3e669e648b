/*
 * Tests of the rollout engine through its public API (src/rollout/rollout.h): the schedule
 * parser (good and bad input), cohort buckets (reference SipHash vectors, stability and
 * independence by counting), the gates and their statistics (baseline noise must not halt, a
 * regression must, a first release's crash loop must, silence after intent counts as failure),
 * release progression through rings, and the check-in decision by table (schedule not reached,
 * ramping, held, halted, rolled back, pinned to N-1, inside/outside the maintenance window),
 * and the integer-only schedule encoding ("bp" steps, "_ppm" gates) against the TUF
 * canonicaliser of src/trust (what is formatted must be signable).
 * Nothing here reads a clock: all times are fixed constants.
 */
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "rollout/rollout.h"
#include "trust/tuf.h"

#define T0 1764000000LL /* 2025-11-24 16:00:00 UTC: the first ring's not_before */

/* Two rings, canary 1% -> 10% -> 100%, broad 5% -> 100%. */
static const char sched_json[] =
    "{\"ringfence\":{\"release\":\"rel-2\",\"schedule\":["
    "{\"ring\":\"canary\",\"not_before\":1764000000,\"ramp\":[{\"after\":0,\"percent\":1},"
    "{\"after\":600,\"percent\":10},{\"after\":1200,\"percent\":100}]},"
    "{\"ring\":\"broad\",\"not_before\":1764003600,\"ramp\":[{\"after\":0,\"percent\":5},"
    "{\"after\":3600,\"percent\":100}]}],"
    "\"gates\":{\"min_healthy\":5,\"min_bake_s\":300}},\"other\":{\"ignored\":true}}";

static void parse_ok(const char *json, struct rf_rollout_schedule *s)
{
	struct rf_diag d = {0};
	int r = rf_rollout_schedule_parse((const uint8_t *)json, strlen(json), s, &d);

	if (r != 0)
		fail_msg("parse failed: %d %s", r, d.first);
}

/* A schedule for release `id` with one ring of one 100% step (a "completed" old release). */
static void simple_schedule(const char *id, struct rf_rollout_schedule *s)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
		 "{\"release\":\"%s\",\"schedule\":[{\"ring\":\"canary\",\"not_before\":0,"
		 "\"ramp\":[{\"after\":0,\"percent\":100}]},{\"ring\":\"broad\",\"not_before\":0,"
		 "\"ramp\":[{\"after\":0,\"percent\":100}]}]}",
		 id);
	parse_ok(buf, s);
}

/* ---- schedule parser ---------------------------------------------------------------------- */

static void test_parse_good_and_roundtrip(void **state)
{
	struct rf_rollout_schedule s, s2;
	char out[RF_ROLLOUT_SCHEDULE_JSON_MAX];
	struct rf_diag d = {0};
	int len;

	parse_ok(sched_json, &s);
	assert_string_equal(s.release, "rel-2");
	assert_int_equal(s.nrings, 2);
	assert_string_equal(s.rings[1].name, "broad");
	assert_int_equal(s.rings[0].nsteps, 3);
	assert_int_equal(s.rings[0].steps[0].percent_bp, 100);
	assert_int_equal(s.rings[0].steps[2].percent_bp, 10000);
	assert_int_equal(s.rings[1].not_before, T0 + 3600);
	assert_int_equal(s.gates.min_healthy, 5);
	assert_int_equal(s.gates.min_bake_s, 300);
	assert_int_equal(s.gates.probation_s, 600); /* default */
	assert_int_equal(rf_rollout_ring_index(&s, "broad"), 1);
	assert_int_equal(rf_rollout_ring_index(&s, "nope"), -1);

	len = rf_rollout_schedule_format(&s, out, sizeof(out));
	assert_true(len > 0);
	assert_int_equal(rf_rollout_schedule_parse((const uint8_t *)out, (size_t)len, &s2, &d), 0);
	assert_memory_equal(&s, &s2, sizeof(s));
	assert_int_equal(rf_rollout_schedule_format(&s, out, 20), -E2BIG);

	/* Fractional percent at 0.01 granularity. */
	parse_ok("{\"release\":\"r\",\"schedule\":[{\"ring\":\"a\",\"not_before\":0,\"ramp\":"
		 "[{\"after\":0,\"percent\":0.25},{\"after\":1,\"percent\":12.34}]}]}",
		 &s);
	assert_int_equal(s.rings[0].steps[0].percent_bp, 25);
	assert_int_equal(s.rings[0].steps[1].percent_bp, 1234);
	len = rf_rollout_schedule_format(&s, out, sizeof(out));
	assert_true(len > 0);
	assert_int_equal(rf_rollout_schedule_parse((const uint8_t *)out, (size_t)len, &s2, &d), 0);
	assert_memory_equal(&s, &s2, sizeof(s));
}

struct bad_case {
	const char *json;
	int code;
	const char *needle; /* must appear in the diagnostic */
};

#define RING(body) "{\"release\":\"r\",\"schedule\":[" body "]}"
#define STEP(a, p) "{\"after\":" #a ",\"percent\":" #p "}"

static void test_parse_bad_input(void **state)
{
	static const struct bad_case cases[] = {
	    {"", -EBADMSG, "byte"},
	    {"{\"release\":", -EBADMSG, "byte"},
	    {"[]", -EBADMSG, "top level"},
	    {"{\"release\":\"r\",\"release\":\"s\",\"schedule\":[]}", -EBADMSG, "duplicate"},
	    {"{\"release\":\"r\"}", -EBADMSG, "schedule: missing"},
	    {"{\"release\":\"r\",\"schedule\":[],\"x\":1}", -EBADMSG, "unknown key \"x\""},
	    {"{\"release\":\"\",\"schedule\":[]}", -EBADMSG, "release"},
	    {"{\"release\":\"a b\",\"schedule\":[]}", -EBADMSG, "printable"},
	    {"{\"ringfence\":7}", -EBADMSG, "ringfence: must be an object"},
	    {RING("{\"ring\":\"Canary\",\"not_before\":0,\"ramp\":[" STEP(0, 1) "]}"), -EBADMSG,
	     "schedule[0].ring"},
	    {RING("{\"ring\":\"c\",\"not_before\":-5,\"ramp\":[" STEP(0, 1) "]}"), -EBADMSG,
	     "schedule[0].not_before: -5 out of range"},
	    {RING("{\"ring\":\"c\",\"not_before\":\"0\",\"ramp\":[" STEP(0, 1) "]}"), -EBADMSG,
	     "must be an integer"},
	    {RING("{\"ring\":\"c\",\"not_before\":0}"), -EBADMSG, "schedule[0].ramp: missing"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[]}"), -EBADMSG, "non-empty"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[" STEP(0, 0) "]}"), -EBADMSG,
	     "schedule[0].ramp[0].percent: 0 out of range"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[" STEP(0, 101) "]}"), -EBADMSG,
	     "out of range"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[" STEP(0, 0.001) "]}"), -EBADMSG,
	     "finer than"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[" STEP(0, 50) "," STEP(10, 20) "]}"),
	     -EBADMSG, "schedule[0].ramp[1].percent: must be >= the previous step's (50.00)"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[" STEP(10, 5) "," STEP(10, 20) "]}"),
	     -EBADMSG, "schedule[0].ramp[1].after"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[{\"after\":0}]}"), -EBADMSG,
	     "percent: missing"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[" STEP(
		 0, 5) "]},"
		       "{\"ring\":\"c\",\"not_before\":0,\"ramp\":[" STEP(0, 5) "]}"),
	     -EBADMSG, "already listed"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"percent\":5}]}],\"gates\":{\"alpha\":0.9}}",
	     -EBADMSG, "gates.alpha"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"percent\":5}]}],\"gates\":{\"min_healthy\":-1}}",
	     -EBADMSG, "gates.min_healthy"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"percent\":5}]}],\"gates\":{\"loose\":1}}",
	     -EBADMSG, "gates: unknown key"},
	    /* Integer encodings: basis-point steps, ppm gates. */
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[{\"after\":0,\"bp\":5,"
		  "\"percent\":1}]}"),
	     -EBADMSG, "schedule[0].ramp[0].bp: given together with schedule[0].ramp[0].percent"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[{\"after\":0,\"bp\":0}]}"),
	     -EBADMSG, "schedule[0].ramp[0].bp: 0 out of range 1..10000"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[{\"after\":0,\"bp\":1},"
		  "{\"after\":5,\"bp\":10001}]}"),
	     -EBADMSG, "schedule[0].ramp[1].bp: 10001 out of range 1..10000"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[{\"after\":0,\"bp\":-3}]}"),
	     -EBADMSG, "schedule[0].ramp[0].bp: -3 out of range"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[{\"after\":0,\"bp\":1.5}]}"),
	     -EBADMSG, "schedule[0].ramp[0].bp: must be an integer"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[{\"after\":0,\"bp\":\"1\"}]}"),
	     -EBADMSG, "schedule[0].ramp[0].bp: must be an integer"},
	    {RING("{\"ring\":\"c\",\"not_before\":0,\"ramp\":[{\"after\":0,\"bp\":500},"
		  "{\"after\":5,\"percent\":1}]}"),
	     -EBADMSG, "schedule[0].ramp[1].percent: must be >= the previous step's (5.00)"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"bp\":5}]}],\"gates\":{\"alpha\":0.001,\"alpha_ppm\":1000}}",
	     -EBADMSG, "gates.alpha_ppm: given together with gates.alpha"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"bp\":5}]}],\"gates\":{\"alpha_ppm\":0}}",
	     -EBADMSG, "gates.alpha_ppm: 0 out of range 1..500000"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"bp\":5}]}],\"gates\":{\"alpha_ppm\":500001}}",
	     -EBADMSG, "gates.alpha_ppm: 500001 out of range"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"bp\":5}]}],\"gates\":{\"alpha_ppm\":1000.0}}",
	     -EBADMSG, "gates.alpha_ppm: must be an integer"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"bp\":5}]}],\"gates\":{\"margin_ppm\":999999}}",
	     -EBADMSG, "gates.margin_ppm: 999999 out of range 1000000..1000000000000"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"bp\":5}]}],\"gates\":{\"floor_fraction_ppm\":1000001}}",
	     -EBADMSG, "gates.floor_fraction_ppm: 1000001 out of range"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"bp\":5}]}],\"gates\":{\"alert_margin_ppm\":0}}",
	     -EBADMSG, "gates.alert_margin_ppm: 0 out of range"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"bp\":5}]}],\"gates\":{\"alert_floor_per_h_ppm\":1000000000000001}}",
	     -EBADMSG, "gates.alert_floor_per_h_ppm: 1000000000000001 out of range"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"bp\":5}]}],\"gates\":{\"floor_fraction\":0.0000015}}",
	     -EBADMSG, "gates.floor_fraction: 1.5e-06 is finer than 1 ppm"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"bp\":5}]}],\"gates\":{\"alert_floor_per_h\":1e10}}",
	     -EBADMSG, "gates.alert_floor_per_h: 1e+10 out of range"},
	    {"{\"release\":\"r\",\"schedule\":[{\"ring\":\"c\",\"not_before\":0,\"ramp\":["
	     "{\"after\":0,\"bp\":5}]}],\"gates\":{\"margin_ppm\":\"1500000\"}}",
	     -EBADMSG, "gates.margin_ppm: must be an integer"},
	};
	struct rf_rollout_schedule s, keep;
	char big[RF_ROLLOUT_SCHEDULE_JSON_MAX + 2];

	memset(&keep, 0xa5, sizeof(keep));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rf_diag d = {0};
		int r;

		memcpy(&s, &keep, sizeof(s));
		r = rf_rollout_schedule_parse((const uint8_t *)cases[i].json, strlen(cases[i].json),
					      &s, &d);
		if (r != cases[i].code || !strstr(d.first, cases[i].needle))
			fail_msg("case %zu (%s): got %d \"%s\", want %d containing \"%s\"", i,
				 cases[i].json, r, d.first, cases[i].code, cases[i].needle);
		assert_memory_equal(&s, &keep, sizeof(s)); /* output untouched on failure */
	}

	/* Over the size limit, too many rings, too many steps, overlong release id: -E2BIG. */
	memset(big, ' ', sizeof(big));
	{
		struct rf_diag d = {0};
		assert_int_equal(
		    rf_rollout_schedule_parse((const uint8_t *)big, sizeof(big), &s, &d), -E2BIG);
	}
	{
		char j[4096];
		size_t o = 0;
		struct rf_diag d = {0};

		o += (size_t)snprintf(j + o, sizeof(j) - o, "{\"release\":\"r\",\"schedule\":[");
		for (int i = 0; i < RF_ROLLOUT_RINGS_MAX + 1; i++)
			o += (size_t)snprintf(j + o, sizeof(j) - o,
					      "%s{\"ring\":\"r%d\",\"not_before\":0,\"ramp\":["
					      "{\"after\":0,\"percent\":5}]}",
					      i ? "," : "", i);
		snprintf(j + o, sizeof(j) - o, "]}");
		assert_int_equal(rf_rollout_schedule_parse((const uint8_t *)j, strlen(j), &s, &d),
				 -E2BIG);
		assert_non_null(strstr(d.first, "rings"));
	}
	{
		char j[4096];
		size_t o = 0;
		struct rf_diag d = {0};

		o += (size_t)snprintf(j + o, sizeof(j) - o,
				      "{\"release\":\"r\",\"schedule\":[{\"ring\":\"a\","
				      "\"not_before\":0,\"ramp\":[");
		for (int i = 0; i < RF_ROLLOUT_STEPS_MAX + 1; i++)
			o += (size_t)snprintf(j + o, sizeof(j) - o,
					      "%s{\"after\":%d,\"percent\":5}", i ? "," : "", i);
		snprintf(j + o, sizeof(j) - o, "]}]}");
		assert_int_equal(rf_rollout_schedule_parse((const uint8_t *)j, strlen(j), &s, &d),
				 -E2BIG);
		assert_non_null(strstr(d.first, "steps"));
	}
	{
		char j[512];
		char id[RF_ROLLOUT_RELEASE_ID_MAX + 1];
		struct rf_diag d = {0};

		memset(id, 'x', sizeof(id) - 1);
		id[sizeof(id) - 1] = 0;
		snprintf(j, sizeof(j), "{\"release\":\"%s\",\"schedule\":[]}", id);
		assert_int_equal(rf_rollout_schedule_parse((const uint8_t *)j, strlen(j), &s, &d),
				 -E2BIG);
	}
	/* Embedded NUL in a string is not an id. */
	{
		static const char j[] = "{\"release\":\"a\\u0000b\",\"schedule\":[]}";
		struct rf_diag d = {0};

		assert_int_equal(
		    rf_rollout_schedule_parse((const uint8_t *)j, sizeof(j) - 1, &s, &d), -EBADMSG);
	}
}

/* No JSON real anywhere in v (TUF canonical JSON has integers only); counts the integers. */
static size_t assert_no_reals(const json_t *v)
{
	const char *k;
	json_t *c;
	size_t i, n = 0;

	if (json_is_real(v))
		fail_msg("formatted schedule contains a real number (%.17g)", json_real_value(v));
	if (json_is_integer(v))
		return 1;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, c)
		{
			n += assert_no_reals(c);
		}
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, c)
		{
			n += assert_no_reals(c);
		}
	}
	return n;
}

/* Format s, check the output is integers only and parses back to the identical struct. */
static int format_roundtrip(const struct rf_rollout_schedule *s, char *out, size_t outsz)
{
	struct rf_rollout_schedule s2;
	struct rf_diag d = {0};
	json_t *j;
	int len = rf_rollout_schedule_format(s, out, outsz);

	assert_true(len > 0);
	j = json_loadb(out, (size_t)len, 0, NULL);
	assert_non_null(j);
	assert_true(assert_no_reals(j) > 0);
	json_decref(j);
	memset(&s2, 0x5a, sizeof(s2));
	if (rf_rollout_schedule_parse((const uint8_t *)out, (size_t)len, &s2, &d) != 0)
		fail_msg("formatted output does not parse: %s (%s)", d.first, out);
	assert_memory_equal(s, &s2, sizeof(s2));
	return len;
}

/* A 0.01 % canary (850 of 8.5 M hosts), then 0.5 %, 10 %, 100 %. */
static const char bp_sched_json[] =
    "{\"release\":\"rel-bp\",\"schedule\":[{\"ring\":\"canary\",\"not_before\":1764000000,"
    "\"ramp\":[{\"after\":0,\"bp\":1},{\"after\":600,\"bp\":50},{\"after\":1200,\"percent\":10},"
    "{\"after\":1800,\"bp\":10000}]}],"
    "\"gates\":{\"alpha_ppm\":500,\"margin_ppm\":1250000,\"floor_fraction_ppm\":20000,"
    "\"alert_margin_ppm\":4000000,\"alert_floor_per_h_ppm\":1500,\"min_healthy\":3}}";

static void test_parse_bp_steps_and_ppm_gates(void **state)
{
	struct rf_rollout_schedule s, legacy;
	char out[RF_ROLLOUT_SCHEDULE_JSON_MAX];

	parse_ok(bp_sched_json, &s);
	assert_int_equal(s.rings[0].nsteps, 4);
	assert_int_equal(s.rings[0].steps[0].percent_bp, 1);
	assert_int_equal(s.rings[0].steps[1].percent_bp, 50);
	assert_int_equal(s.rings[0].steps[2].percent_bp, 1000);
	assert_int_equal(s.rings[0].steps[3].percent_bp, 10000);
	/* The ppm gates are exactly the doubles a decimal literal would give. */
	assert_true(s.gates.alpha == 0.0005);
	assert_true(s.gates.margin == 1.25);
	assert_true(s.gates.floor_fraction == 0.02);
	assert_true(s.gates.alert_margin == 4.0);
	assert_true(s.gates.alert_floor_per_h == 0.0015);
	assert_int_equal(s.gates.min_healthy, 3);

	/* Bucket 0 is admitted at the canary step, bucket 1 only from the 0.5 % step. */
	assert_int_equal(rf_rollout_admit_time(&s, 0, 0), T0);
	assert_int_equal(rf_rollout_admit_time(&s, 0, 1), T0 + 600);
	assert_int_equal(rf_rollout_admit_time(&s, 0, 49), T0 + 600);
	assert_int_equal(rf_rollout_admit_time(&s, 0, 50), T0 + 1200);

	/* The same schedule written with reals (unsigned, hand-written input) is the same struct. */
	parse_ok("{\"release\":\"rel-bp\",\"schedule\":[{\"ring\":\"canary\",\"not_before\":"
		 "1764000000,\"ramp\":[{\"after\":0,\"percent\":0.01},{\"after\":600,\"percent\":"
		 "0.5},{\"after\":1200,\"percent\":10},{\"after\":1800,\"percent\":100}]}],"
		 "\"gates\":{\"alpha\":0.0005,\"margin\":1.25,\"floor_fraction\":0.02,"
		 "\"alert_margin\":4,\"alert_floor_per_h\":1.5e-3,\"min_healthy\":3}}",
		 &legacy);
	assert_memory_equal(&s, &legacy, sizeof(s));

	/* Formatted: integers only, whole percents stay "percent", finer steps are "bp", the
	 * fractional gates are "_ppm", and it parses back to the identical struct. */
	format_roundtrip(&s, out, sizeof(out));
	assert_non_null(strstr(out, "{\"after\":0,\"bp\":1}"));
	assert_non_null(strstr(out, "{\"after\":600,\"bp\":50}"));
	assert_non_null(strstr(out, "{\"after\":1200,\"percent\":10}"));
	assert_non_null(strstr(out, "{\"after\":1800,\"percent\":100}"));
	assert_non_null(strstr(out, "\"alpha_ppm\":500,"));
	assert_non_null(strstr(out, "\"alert_floor_per_h_ppm\":1500,"));
	assert_non_null(strstr(out, "\"margin_ppm\":1250000,"));
	assert_null(strstr(out, "\"alpha\""));
	assert_null(strstr(out, "."));

	/* The defaults and the existing fixtures round-trip the same way. */
	parse_ok(sched_json, &s);
	format_roundtrip(&s, out, sizeof(out));
	assert_non_null(strstr(out, "\"alpha_ppm\":1000,"));
	assert_non_null(strstr(out, "\"floor_fraction_ppm\":50000,"));
	assert_non_null(strstr(out, "\"alert_floor_per_h_ppm\":3600000000,"));
}

/* Every ppm value a gate can take survives format -> parse exactly, up to the largest. */
static void test_ppm_roundtrip_exact(void **state)
{
	struct rf_rollout_schedule s;
	char out[RF_ROLLOUT_SCHEDULE_JSON_MAX];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t checked = 0;

	simple_schedule("ppm", &s);
	for (int i = 0; i < 3000; i++) {
		long long k;

		if (i < 1000) /* the small end, where alpha and fractions live */
			k = i + 1;
		else if (i < 1100) /* the top end */
			k = 1000000000000000LL - (i - 1000);
		else { /* spread over 1..10^15 (xorshift, fixed seed) */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			k = (long long)(x % 1000000000000000ull) + 1;
		}
		s.gates.alert_floor_per_h = (double)k / 1e6;
		s.gates.floor_fraction = (double)(k % 1000000 + 1) / 1e6;
		s.gates.alpha = (double)(k % 500000 + 1) / 1e6;
		s.gates.margin = (double)(1000000 + k % 999000000000LL) / 1e6;
		format_roundtrip(&s, out, sizeof(out));
		checked++;
	}
	assert_int_equal(checked, 3000);

	/* A value off the 1 ppm grid, or out of range, has no exact integer form: format refuses
	 * it instead of writing something that parses to a different struct. */
	s.gates.alpha = 1.0 / 3.0;
	assert_int_equal(rf_rollout_schedule_format(&s, out, sizeof(out)), -EINVAL);
	s.gates.alpha = 0.001;
	s.gates.alert_floor_per_h = 1e300;
	assert_int_equal(rf_rollout_schedule_format(&s, out, sizeof(out)), -EINVAL);
	s.gates.alert_floor_per_h = 3600;
	s.rings[0].steps[0].percent_bp = 0;
	assert_int_equal(rf_rollout_schedule_format(&s, out, sizeof(out)), -EINVAL);
	s.rings[0].steps[0].percent_bp = 10001;
	assert_int_equal(rf_rollout_schedule_format(&s, out, sizeof(out)), -EINVAL);
	s.rings[0].steps[0].percent_bp = 10000;
	assert_true(rf_rollout_schedule_format(&s, out, sizeof(out)) > 0);
}

/* End to end with the trust code: a schedule with a 0.01 % canary step, formatted, is TUF
 * canonical JSON as it stands (the canonicaliser accepts it and changes nothing), alone and as
 * the target's custom object; the real-number form it replaces is refused. */
static void test_formatted_schedule_is_tuf_canonical(void **state)
{
	struct rf_rollout_schedule s, s2;
	char out[RF_ROLLOUT_SCHEDULE_JSON_MAX], custom[RF_ROLLOUT_SCHEDULE_JSON_MAX + 32];
	struct rf_diag d = {0};
	char *canon = NULL;
	size_t clen = 0;
	int len;

	parse_ok(bp_sched_json, &s);
	assert_int_equal(s.rings[0].steps[0].percent_bp, 1);
	len = format_roundtrip(&s, out, sizeof(out));

	assert_int_equal(rf_tuf_canonicalize((const uint8_t *)out, (size_t)len, &canon, &clen, &d),
			 0);
	assert_int_equal(clen, (size_t)len);
	assert_memory_equal(canon, out, clen);
	free(canon);
	canon = NULL;

	snprintf(custom, sizeof(custom), "{\"ringfence\":%s}", out);
	assert_int_equal(rf_tuf_canonicalize((const uint8_t *)custom, strlen(custom), &canon,
					     &clen, &d),
			 0);
	/* What the agent reads back from the signed targets metadata is the same schedule. */
	assert_int_equal(rf_rollout_schedule_parse((const uint8_t *)canon, clen, &s2, &d), 0);
	assert_memory_equal(&s, &s2, sizeof(s));
	free(canon);
	canon = NULL;

	/* Before: the 0.01 % step could only be written as a real, which TUF cannot sign. */
	{
		static const char old[] =
		    "{\"ringfence\":{\"release\":\"rel-bp\",\"schedule\":[{\"ring\":\"canary\","
		    "\"not_before\":1764000000,\"ramp\":[{\"after\":0,\"percent\":0.01}]}]}}";
		struct rf_diag d2 = {0};

		assert_int_equal(rf_tuf_canonicalize((const uint8_t *)old, sizeof(old) - 1, &canon,
						     &clen, &d2),
				 -EBADMSG);
		assert_non_null(strstr(d2.first, "real number"));
		assert_null(canon);
	}
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The same through the repository writer: the formatted schedule with the 0.01 % canary is
 * signed into a real (temporary) TUF repository as a target's custom metadata, and the signed
 * targets metadata carries back exactly that schedule; the real-number form is refused. */
static void test_formatted_schedule_signs_into_tuf_repo(void **state)
{
	struct rf_rollout_schedule s, s2;
	char out[RF_ROLLOUT_SCHEDULE_JSON_MAX], custom[RF_ROLLOUT_SCHEDULE_JSON_MAX + 32];
	char dir[512], repo[600], staged[700];
	const char *tmp = getenv("TMPDIR");
	struct rf_tuf_repo_opts o = {0};
	struct rf_diag d = {0};
	json_t *targets, *c;

	snprintf(dir, sizeof(dir), "%s/rf-rollout-tuf-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(dir));
	snprintf(repo, sizeof(repo), "%s/repo", dir);
	snprintf(staged, sizeof(staged), "%s/staged/targets.json", repo);
	o.keytype = RF_TUF_KEY_ED25519;
	if (rf_tuf_repo_init(repo, &o, T0, &d) != 0)
		fail_msg("repo init: %s", d.first);

	parse_ok(bp_sched_json, &s);
	assert_true(format_roundtrip(&s, out, sizeof(out)) > 0);
	snprintf(custom, sizeof(custom), "{\"ringfence\":%s}", out);
	if (rf_tuf_repo_add(repo, "packs/canary.rfp", (const uint8_t *)"pack", 4, custom, T0, &d) !=
	    0)
		fail_msg("repo add: %s", d.first);

	targets = json_load_file(staged, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(targets);
	c = json_object_get(
	    json_object_get(json_object_get(json_object_get(targets, "signed"), "targets"),
			    "packs/canary.rfp"),
	    "custom");
	assert_non_null(c);
	if (rf_rollout_schedule_from_json(c, &s2, &d) != 0)
		fail_msg("signed custom does not parse: %s", d.first);
	assert_memory_equal(&s, &s2, sizeof(s));
	assert_int_equal(s2.rings[0].steps[0].percent_bp, 1);
	json_decref(targets);

	/* Before: the only way to write 0.01 % was a real, and the writer cannot sign it. */
	{
		static const char old[] =
		    "{\"ringfence\":{\"release\":\"rel-old\",\"schedule\":[{\"ring\":\"canary\","
		    "\"not_before\":1764000000,\"ramp\":[{\"after\":0,\"percent\":0.01}]}]}}";
		struct rf_diag d2 = {0};

		assert_true(rf_tuf_repo_add(repo, "packs/old.rfp", (const uint8_t *)"pack", 4, old,
					    T0, &d2) < 0);
	}
	assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* ---- cohorts ------------------------------------------------------------------------------ */

static void test_siphash_reference_vectors(void **state)
{
	uint8_t key[16], msg[64];

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	/* From the SipHash paper / reference implementation (vectors.h, k = 00..0f, m = 00..). */
	assert_int_equal(rf_rollout_siphash24(key, msg, 0), 0x726fdb47dd0e0e31ULL);
	assert_int_equal(rf_rollout_siphash24(key, msg, 1), 0x74f839c593dc67fdULL);
	assert_int_equal(rf_rollout_siphash24(key, msg, 15), 0xa129ca6149be45e5ULL);
}

static void test_bucket_stable_and_independent(void **state)
{
	enum { N = 100000 };
	uint8_t ka[16], kb[16], ka2[16];
	unsigned decile[10] = {0}, both = 0, in_a = 0, canary_subset_ok = 1;
	char id[32];

	rf_rollout_bucket_key("rel-a", 5, ka);
	rf_rollout_bucket_key("rel-a", 5, ka2);
	rf_rollout_bucket_key("rel-b", 5, kb);
	assert_memory_equal(ka, ka2, 16);
	assert_memory_not_equal(ka, kb, 16);
	for (int i = 0; i < N; i++) {
		int n = snprintf(id, sizeof(id), "device-%08d", i);
		uint32_t a = rf_rollout_bucket(ka, id, (size_t)n);
		uint32_t b = rf_rollout_bucket(kb, id, (size_t)n);

		assert_true(a < RF_ROLLOUT_BUCKETS);
		assert_int_equal(a, rf_rollout_bucket(ka2, id, (size_t)n)); /* stable */
		decile[a / 1000]++;
		if (a < 1000) {
			in_a++;
			if (b < 1000)
				both++;
		}
		/* 1 % admitted is a subset of 5 % admitted: a ramp only ever adds devices. */
		if (a < 100 && !(a < 500))
			canary_subset_ok = 0;
	}
	assert_true(canary_subset_ok);
	/* Uniform: each decile 10,000 +- 5 sigma (sigma ~ 95). */
	for (int i = 0; i < 10; i++)
		if (decile[i] < 9525 || decile[i] > 10475)
			fail_msg("decile %d holds %u of %d", i, decile[i], N);
	/* Independent: of the ~10,000 in release A's first 10 %, ~1,000 are in B's (sigma ~30). */
	if (both < 850 || both > 1150)
		fail_msg("%u of %u devices in A's first 10%% are in B's first 10%%", both, in_a);
}

static void test_agent_side_admits(void **state)
{
	struct rf_rollout_schedule s;

	parse_ok(sched_json, &s);
	/* Bucket 50 < 1 %: from not_before. Bucket 500 needs the 10 % step (600 s later). */
	assert_false(rf_rollout_schedule_admits(&s, "canary", 50, T0 - 1));
	assert_true(rf_rollout_schedule_admits(&s, "canary", 50, T0));
	assert_false(rf_rollout_schedule_admits(&s, "canary", 500, T0 + 599));
	assert_true(rf_rollout_schedule_admits(&s, "canary", 500, T0 + 600));
	assert_false(rf_rollout_schedule_admits(&s, "canary", 9999, T0 + 1199));
	assert_true(rf_rollout_schedule_admits(&s, "canary", 9999, T0 + 1200));
	assert_false(rf_rollout_schedule_admits(&s, "broad", 0, T0 + 3599));
	assert_true(rf_rollout_schedule_admits(&s, "broad", 0, T0 + 3600));
	assert_false(rf_rollout_schedule_admits(&s, "other", 0, INT64_MAX - 1));
	assert_int_equal(rf_rollout_admit_time(&s, 1, 600), T0 + 7200);
	assert_int_equal(rf_rollout_admit_time(&s, 5, 0), INT64_MAX);
}

/* ---- statistics and gates ----------------------------------------------------------------- */

static double brute_sf(uint64_t k, uint64_t n, double p)
{
	double s = 0.0;

	for (uint64_t j = k; j <= n; j++)
		s += exp(lgamma((double)n + 1) - lgamma((double)j + 1) -
			 lgamma((double)(n - j) + 1) + (double)j * log(p) +
			 (double)(n - j) * log1p(-p));
	return s;
}

static void test_binomial_tail(void **state)
{
	assert_true(fabs(rf_rollout_binom_sf(8, 10, 0.5) - 56.0 / 1024.0) < 1e-12);
	assert_true(rf_rollout_binom_sf(0, 10, 0.5) == 1.0);
	assert_true(rf_rollout_binom_sf(11, 10, 0.5) == 0.0);
	for (uint64_t n = 1; n < 200; n += 37)
		for (uint64_t k = 0; k <= n; k += 3)
			for (double p = 0.01; p < 1.0; p += 0.17) {
				double a = rf_rollout_binom_sf(k, n, p), b = brute_sf(k, n, p);

				if (fabs(a - b) > 1e-9 * (b > 1e-3 ? 1.0 : 0.0) + 1e-6 * b + 1e-300)
					fail_msg("sf(%lu,%lu,%g) = %.17g, brute %.17g",
						 (unsigned long)k, (unsigned long)n, p, a, b);
			}
	/* Large n stays bounded in work and sane. */
	assert_true(rf_rollout_binom_sf(600000, 1000000, 0.5) < 1e-100);
	assert_true(rf_rollout_binom_sf(500000, 1000000, 0.5) > 0.4);
}

static struct rf_rollout_gates gates(void)
{
	struct rf_rollout_gates g;

	rf_rollout_gates_default(&g);
	return g;
}

/* Deterministic Poisson draws (Knuth for small means, normal approximation above 50). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static double urand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static uint64_t poisson(double mean)
{
	if (mean > 50) {
		double z = sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand());
		double x = floor(mean + sqrt(mean) * z + 0.5);
		return x < 0 ? 0 : (uint64_t)x;
	}
	uint64_t k = 0;
	double l = exp(-mean), p = 1.0;

	do {
		k++;
		p *= urand();
	} while (p > l);
	return k - 1;
}

static void test_baseline_noise_does_not_halt(void **state)
{
	struct rf_rollout_gates g = gates();
	unsigned halts = 0, trials = 2000, by_metric[RF_ROLLOUT_M_COUNT_] = {0};

	/* Both releases have the same true rates; the new one has 1/10 the exposure (a ramp). */
	for (unsigned t = 0; t < trials; t++) {
		struct rf_rollout_health h = {
		    .devices = 200, .healthy = 190, .exposure_s = 200 * 3600, .population = 2000};
		struct rf_rollout_health b = {
		    .devices = 2000, .healthy = 2000, .exposure_s = 2000 * 3600};
		struct rf_rollout_check c;

		h.crashes = poisson(200 * 0.02);
		b.crashes = poisson(2000 * 0.02);
		h.rollbacks = poisson(200 * 0.005);
		b.rollbacks = poisson(2000 * 0.005);
		h.silent = poisson(200 * 0.01);
		b.silent = poisson(2000 * 0.01);
		h.alerts = poisson(200 * 30.0);
		b.alerts = poisson(2000 * 30.0);
		h.failed = h.crashes / 2 + h.rollbacks + h.silent;
		b.failed = b.crashes / 2 + b.rollbacks + b.silent;
		rf_rollout_check_health(&g, &h, &b, T0, 10000, T0 + 3600, &c);
		if (c.verdict == RF_ROLLOUT_V_FAIL) {
			halts++;
			by_metric[c.metric]++;
		}
	}
	/* alpha = 0.001 family-wise, margin 1.5: expect ~0 halts in 2000; allow 4. */
	if (halts > 4)
		fail_msg("baseline noise halted %u of %u times (floor %u, crash %u, silent %u)",
			 halts, trials, by_metric[RF_ROLLOUT_M_FLOOR],
			 by_metric[RF_ROLLOUT_M_CRASH], by_metric[RF_ROLLOUT_M_SILENT]);
}

/* The gates are evaluated again at every report: repeated looks at accumulating data. Under the
 * margin the p-value of an equal-rate release drifts towards 1, so looking often must not turn
 * noise into halts. 300 releases x 48 looks each (a ramp from 20 to 2000 devices). */
static void test_repeated_looks_do_not_halt(void **state)
{
	struct rf_rollout_gates g = gates();
	unsigned halted_releases = 0;

	for (unsigned rel = 0; rel < 300; rel++) {
		struct rf_rollout_health h = {0}, b = {0};
		bool halted = false;

		for (unsigned look = 1; look <= 48 && !halted; look++) {
			uint64_t dev = 20 + (2000 - 20) * look / 48, dt = 600;
			struct rf_rollout_check c;

			h.devices = dev;
			h.healthy = dev * 9 / 10;
			h.exposure_s += dev * dt;
			h.crashes += poisson((double)dev * dt / 3600.0 * 0.05);
			h.silent += poisson((double)dev * dt / 3600.0 * 0.002);
			b.devices = 20000;
			b.healthy = 20000;
			b.exposure_s += 20000 * dt;
			b.crashes += poisson(20000.0 * dt / 3600.0 * 0.05);
			b.silent += poisson(20000.0 * dt / 3600.0 * 0.002);
			h.failed = h.silent + h.crashes / 4;
			b.failed = b.silent + b.crashes / 4;
			rf_rollout_check_health(&g, &h, &b, 0, 10000, 1000000, &c);
			halted = c.verdict == RF_ROLLOUT_V_FAIL;
		}
		halted_releases += halted;
	}
	if (halted_releases > 1)
		fail_msg("%u of 300 equal-rate releases halted over 48 looks", halted_releases);
}

static void test_real_regression_halts(void **state)
{
	struct rf_rollout_gates g = gates();
	struct rf_rollout_check c;
	/* Baseline: 40 crashes in 2000 device-hours. New: 25 crashes in 200 device-hours (6x). */
	struct rf_rollout_health b = {.devices = 2000,
				      .healthy = 2000,
				      .crashes = 40,
				      .failed = 30,
				      .exposure_s = 2000 * 3600};
	struct rf_rollout_health h = {
	    .devices = 200, .healthy = 180, .crashes = 25, .failed = 8, .exposure_s = 200 * 3600};

	rf_rollout_check_health(&g, &h, &b, T0, 100, T0 + 3600, &c);
	assert_int_equal(c.verdict, RF_ROLLOUT_V_FAIL);
	assert_int_equal(c.metric, RF_ROLLOUT_M_CRASH);
	assert_true(c.p_value < g.alpha / 6);

	/* The same counts at baseline rate (4 in 200 device-hours) pass. */
	h.crashes = 4;
	rf_rollout_check_health(&g, &h, &b, T0, 100, T0 + 3600, &c);
	assert_int_equal(c.verdict, RF_ROLLOUT_V_PASS);
	assert_true(c.p_value > 0.01);

	/* Two crashes where the baseline had none: under min_events, not a halt on its own. */
	b.crashes = 0;
	h.crashes = 2;
	rf_rollout_check_health(&g, &h, &b, T0, 100, T0 + 3600, &c);
	assert_int_not_equal(c.verdict, RF_ROLLOUT_V_FAIL);

	/* Verifier rejections on devices are a regression too. */
	h.crashes = 0;
	h.rejections = 6;
	rf_rollout_check_health(&g, &h, &b, T0, 100, T0 + 3600, &c);
	assert_int_equal(c.verdict, RF_ROLLOUT_V_FAIL);
	assert_int_equal(c.metric, RF_ROLLOUT_M_REJECT);

	/* An alert storm: 100x the baseline's alert rate. */
	h.rejections = 0;
	b.alerts = 2000 * 30;
	h.alerts = 200 * 3000;
	rf_rollout_check_health(&g, &h, &b, T0, 100, T0 + 3600, &c);
	assert_int_equal(c.verdict, RF_ROLLOUT_V_FAIL);
	assert_int_equal(c.metric, RF_ROLLOUT_M_ALERT);
}

static void test_silent_after_intent_fails(void **state)
{
	struct rf_rollout_gates g = gates();
	struct rf_rollout_check c;
	struct rf_rollout_health b = {
	    .devices = 5000, .healthy = 5000, .silent = 3, .failed = 3, .exposure_s = 5000 * 3600};
	/* 100 devices took it; 4 went silent (4 %: under the 5 % floor) - still a regression. */
	struct rf_rollout_health h = {
	    .devices = 100, .healthy = 90, .silent = 4, .failed = 4, .exposure_s = 100 * 1800};

	assert_false(rf_rollout_is_silent(&g, T0, T0 + 10, T0 + 10 + g.silence_s - 1));
	assert_true(rf_rollout_is_silent(&g, T0, T0 + 10, T0 + 10 + g.silence_s));
	assert_true(
	    rf_rollout_is_silent(&g, T0, 0, T0 + g.silence_s)); /* never seen after intent */

	rf_rollout_check_health(&g, &h, &b, T0, 100, T0 + 3600, &c);
	assert_int_equal(c.verdict, RF_ROLLOUT_V_FAIL);
	assert_int_equal(c.metric, RF_ROLLOUT_M_SILENT);
}

static void test_first_release_crash_loop_halts(void **state)
{
	struct rf_rollout_gates g = gates();
	struct rf_rollout_check c;
	/* No baseline at all: 9 of 20 canary devices crash-looped into rollback. */
	struct rf_rollout_health h = {.devices = 20,
				      .healthy = 0,
				      .crashes = 27,
				      .rollbacks = 9,
				      .failed = 9,
				      .exposure_s = 20 * 300};

	rf_rollout_check_health(&g, &h, NULL, T0, 100, T0 + 300, &c);
	assert_int_equal(c.verdict, RF_ROLLOUT_V_FAIL);
	assert_int_equal(c.metric, RF_ROLLOUT_M_FLOOR);

	/* One unlucky device of 20 is not a crash loop (floor needs 3 devices and 5 %). */
	h.failed = 1;
	h.crashes = 3;
	h.rollbacks = 1;
	h.healthy = 19;
	rf_rollout_check_health(&g, &h, NULL, T0, 100, T0 + 3600, &c);
	assert_int_equal(c.verdict, RF_ROLLOUT_V_PASS);
}

/* A good release's failed share grows with its age (a device that crashed once for unrelated
 * reasons stays failed): after 6 h at 1 % of hosts crashing an hour, 6 % of its devices
 * failed, while the baseline's devices left it after 40 minutes (7 of 1,000 failed). The same
 * rate per device-hour is not a regression. Compared per device (before issue 14) the floor
 * halted it: 60/1000 vs 7/1000. A crash loop still halts at once against the same baseline. */
static void test_floor_compares_by_exposure(void **state)
{
	struct rf_rollout_gates g = gates();
	struct rf_rollout_check c;
	struct rf_rollout_health h = {.devices = 1000,
				      .healthy = 990,
				      .failed = 60,
				      .crashes = 60,
				      .exposure_s = 1000 * 6 * 3600,
				      .population = 1000};
	struct rf_rollout_health b = {
	    .devices = 1000, .healthy = 1000, .failed = 7, .crashes = 7, .exposure_s = 1000 * 2400};

	rf_rollout_check_health(&g, &h, &b, T0, 10000, T0 + 6 * 3600, &c);
	assert_int_not_equal(c.verdict, RF_ROLLOUT_V_FAIL);

	struct rf_rollout_health loop = {
	    .devices = 20, .failed = 9, .crashes = 27, .rollbacks = 9, .exposure_s = 20 * 300};
	rf_rollout_check_health(&g, &loop, &b, T0, 100, T0 + 300, &c);
	assert_int_equal(c.verdict, RF_ROLLOUT_V_FAIL);
	assert_int_equal(c.metric, RF_ROLLOUT_M_FLOOR);
}

/* ---- release progression ------------------------------------------------------------------ */

static void test_evaluate_progression_and_halt(void **state)
{
	struct rf_rollout_schedule s;
	struct rf_rollout_state st, st2;
	struct rf_rollout_eval ev;
	struct rf_rollout_health h[2] = {{0}}, b[2] = {{0}};

	parse_ok(sched_json, &s);
	rf_rollout_state_init(&s, &st);

	/* Before not_before nothing opens; next_eval says when to look again. */
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0 - 100, &st2, &ev), 0);
	assert_false(ev.changed);
	assert_int_equal(ev.next_eval, T0);
	assert_int_equal(rf_rollout_effective_bp(&s, &st2, 0, T0 - 100), 0);

	/* Evaluated late (T0+50): opened_at is still not_before, bake counts from now. */
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0 + 50, &st, &ev), 0);
	assert_true(ev.changed);
	assert_int_equal(ev.opened, 0);
	assert_int_equal(st.rings[0].phase, RF_ROLLOUT_RAMPING);
	assert_int_equal(st.rings[0].opened_at, T0);
	assert_int_equal(st.rings[0].step_at, T0 + 50);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0 + 50), 100);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 1, T0 + 50), 0);

	/* Signed time for 10 % has come (T0+600) but no healthy devices: WAIT, 1 % holds. */
	h[0] = (struct rf_rollout_health){.devices = 10, .healthy = 2, .exposure_s = 6000};
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0 + 700, &st, &ev), 0);
	assert_int_equal(ev.checks[0].verdict, RF_ROLLOUT_V_WAIT);
	assert_int_equal(ev.stepped, -1);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0 + 700), 100);

	/* Enough healthy: step to 10 %. */
	h[0].healthy = 6;
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0 + 800, &st, &ev), 0);
	assert_int_equal(ev.stepped, 0);
	assert_int_equal(st.rings[0].step, 1);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0 + 800), 1000);
	/* Bake time (300 s from T0+800) before the 100 % step; then its signed time (T0+1200). */
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0 + 1000, &st, &ev), 0);
	assert_int_equal(ev.checks[0].verdict, RF_ROLLOUT_V_WAIT);
	assert_int_equal(ev.next_eval, T0 + 1100);
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0 + 1100, &st, &ev), 0);
	assert_int_equal(ev.stepped, -1);
	assert_int_equal(ev.next_eval, T0 + 1200);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0 + 1199), 1000);
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0 + 1250, &st, &ev), 0);
	assert_int_equal(ev.stepped, 0);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0 + 1250), 10000);

	/* Canary completes after bake; broad opens at max(not_before, completed_at). */
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0 + 1600, &st, &ev), 0);
	assert_int_equal(ev.completed, 0);
	assert_int_equal(st.rings[0].completed_at, T0 + 1600);
	assert_int_equal(st.rings[1].phase, RF_ROLLOUT_NOT_STARTED);
	assert_int_equal(ev.next_eval, T0 + 3600);
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0 + 3600, &st, &ev), 0);
	assert_int_equal(ev.opened, 1);
	assert_int_equal(st.rings[1].opened_at, T0 + 3600);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 1, T0 + 3600), 500);

	/* A crash loop in broad halts the release in every ring. */
	h[1] = (struct rf_rollout_health){
	    .devices = 50, .failed = 30, .crashes = 90, .exposure_s = 50 * 600};
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0 + 4200, &st, &ev), 0);
	assert_true(ev.halted);
	assert_int_equal(st.status, RF_ROLLOUT_HALTED);
	assert_int_equal(st.halt_ring, 1);
	assert_int_equal(st.halt_metric, RF_ROLLOUT_M_FLOOR);
	assert_non_null(strstr(st.halt_reason, "ring 'broad'"));
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0 + 4200), 0);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 1, T0 + 4200), 0);
	/* A halted release never advances by itself, even with good health. */
	memset(h, 0, sizeof(h));
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0 + 90000, &st2, &ev), 0);
	assert_false(ev.changed);

	/* Operator transitions. */
	assert_int_equal(rf_rollout_halt(&st, T0, "x"), -EALREADY);
	assert_int_equal(rf_rollout_hold(&st, T0, "x"), -EPERM);
	assert_int_equal(rf_rollout_resume(&st, T0 + 5000), 0);
	assert_int_equal(st.status, RF_ROLLOUT_ACTIVE);
	assert_int_equal(rf_rollout_resume(&st, T0 + 5000), -EALREADY);
	assert_int_equal(rf_rollout_hold(&st, T0 + 5000, "investigating"), 0);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0 + 5000), 0);
	assert_int_equal(rf_rollout_rollback(&st, T0 + 5100, NULL), 0);
	assert_int_equal(rf_rollout_resume(&st, T0 + 5200), -EPERM);
	assert_int_equal(rf_rollout_rollback(&st, T0 + 5200, NULL), -EALREADY);

	/* A corrupt state is refused. */
	st.rings[0].step = 9;
	assert_int_equal(rf_rollout_evaluate(&s, &st, h, b, T0, &st2, &ev), -EINVAL);
}

/*
 * The healthy devices required before a step are capped by the devices the step ACTUALLY
 * admits when the caller knows that count (admitted_known), else by the population-based
 * expectation (the old behaviour, kept for callers that leave the new fields zero). Default
 * gates: min_healthy 10, min_bake_s 600. The 1% step of a 1,000-device ring is expected to
 * admit 10 devices but bucket sampling can admit 8: with the population cap it needs 10
 * healthy that can never exist and stalls for ever; with admitted = 8 it steps after 8 healthy.
 */
static void test_admitted_caps_required_healthy(void **state)
{
	static const struct {
		uint64_t population, admitted;
		bool known;
		uint64_t healthy;
		int64_t baked; /* seconds since the step was taken */
		uint32_t percent_bp;
		uint8_t verdict;
		uint64_t required;
	} t[] = {
	    /* 8 of 1,000 admitted at 1%: steps after 8 healthy and the bake time. */
	    {1000, 8, true, 8, 600, 100, RF_ROLLOUT_V_PASS, 8},
	    {1000, 8, true, 7, 600, 100, RF_ROLLOUT_V_WAIT, 8},
	    {1000, 8, true, 8, 599, 100, RF_ROLLOUT_V_WAIT, 8},
	    /* Nobody admitted: no exposure, passes on bake time alone. */
	    {1000, 0, true, 0, 600, 100, RF_ROLLOUT_V_PASS, 0},
	    {1000, 0, true, 0, 599, 100, RF_ROLLOUT_V_WAIT, 0},
	    {10, 0, true, 0, 600, 100, RF_ROLLOUT_V_PASS, 0},
	    /* More admitted than min_healthy: min_healthy still applies. */
	    {1000, 12, true, 9, 600, 100, RF_ROLLOUT_V_WAIT, 10},
	    {1000, 12, true, 10, 600, 100, RF_ROLLOUT_V_PASS, 10},
	    {0, 500, true, 10, 600, 100, RF_ROLLOUT_V_PASS, 10},
	    /* Unknown: the old population-based cap (the stall this change fixes). */
	    {1000, 0, false, 8, 600, 100, RF_ROLLOUT_V_WAIT, 10},
	    {1000, 8, false, 8, 600, 100, RF_ROLLOUT_V_WAIT, 10}, /* ignored when !known */
	    {1000, 0, false, 10, 600, 100, RF_ROLLOUT_V_PASS, 10},
	    {10, 0, false, 0, 600, 100, RF_ROLLOUT_V_WAIT, 1},
	    {10, 0, false, 1, 600, 100, RF_ROLLOUT_V_PASS, 1},
	    {300, 0, false, 3, 600, 100, RF_ROLLOUT_V_PASS, 3},
	    {0, 0, false, 9, 600, 100, RF_ROLLOUT_V_WAIT, 10},
	};
	struct rf_rollout_gates g;

	rf_rollout_gates_default(&g);
	assert_int_equal(g.min_healthy, 10);
	assert_int_equal(g.min_bake_s, 600);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct rf_rollout_health h = {.devices = t[i].healthy,
					      .healthy = t[i].healthy,
					      .exposure_s = t[i].healthy * 600,
					      .population = t[i].population,
					      .admitted = t[i].admitted,
					      .admitted_known = t[i].known};
		struct rf_rollout_check c;

		rf_rollout_check_health(&g, &h, NULL, T0, t[i].percent_bp, T0 + t[i].baked, &c);
		if (c.verdict != t[i].verdict || c.required_healthy != t[i].required)
			fail_msg("row %zu: verdict %d required %llu, want %d and %llu", i,
				 c.verdict, (unsigned long long)c.required_healthy, t[i].verdict,
				 (unsigned long long)t[i].required);
	}

	/* A failure still halts whatever the step admits. */
	{
		struct rf_rollout_health h = {.devices = 8,
					      .healthy = 0,
					      .failed = 8,
					      .crashes = 8,
					      .exposure_s = 800,
					      .population = 1000,
					      .admitted = 8,
					      .admitted_known = true};
		struct rf_rollout_check c;

		rf_rollout_check_health(&g, &h, NULL, T0, 100, T0 + 600, &c);
		assert_int_equal(c.verdict, RF_ROLLOUT_V_FAIL);
		assert_int_equal(c.metric, RF_ROLLOUT_M_FLOOR);
	}

	/* Through rf_rollout_evaluate: a 1,000-device canary, 1% -> 10% at 30 min -> 100% at
	 * 1 h (the simulator's default policy). Its 1% step admits 8 devices, all healthy. */
	{
		static const char js[] =
		    "{\"release\":\"adm-1\",\"schedule\":[{\"ring\":\"canary\",\"not_before\":"
		    "1764000000,\"ramp\":[{\"after\":0,\"percent\":1},{\"after\":1800,"
		    "\"percent\":10},{\"after\":3600,\"percent\":100}]},{\"ring\":\"broad\","
		    "\"not_before\":1764000000,\"ramp\":[{\"after\":0,\"percent\":0.01},"
		    "{\"after\":600,\"percent\":100}]}]}";
		struct rf_rollout_schedule s;
		struct rf_rollout_state st, old;
		struct rf_rollout_eval ev;
		struct rf_rollout_health h[2] = {{0}};

		parse_ok(js, &s);
		rf_rollout_state_init(&s, &st);
		assert_int_equal(rf_rollout_evaluate(&s, &st, h, NULL, T0, &st, &ev), 0);
		assert_int_equal(ev.opened, 0);
		h[0] = (struct rf_rollout_health){
		    .devices = 8, .healthy = 8, .exposure_s = 8 * 1800, .population = 1000};
		/* Unknown admitted count: the old rule needs 10 and the ramp stalls for hours. */
		old = st;
		for (int64_t now = T0 + 1800; now <= T0 + 6 * 3600; now += 60) {
			assert_int_equal(rf_rollout_evaluate(&s, &old, h, NULL, now, &old, &ev), 0);
			assert_int_equal(ev.checks[0].verdict, RF_ROLLOUT_V_WAIT);
			assert_int_equal(old.rings[0].step, 0);
		}
		/* Known: steps at the 10% step's signed time. */
		h[0].admitted = 8;
		h[0].admitted_known = true;
		assert_int_equal(rf_rollout_evaluate(&s, &st, h, NULL, T0 + 1799, &st, &ev), 0);
		assert_int_equal(ev.stepped, -1);
		assert_int_equal(ev.next_eval, T0 + 1800);
		assert_int_equal(rf_rollout_evaluate(&s, &st, h, NULL, T0 + 1800, &st, &ev), 0);
		assert_int_equal(ev.stepped, 0);
		assert_int_equal(st.rings[0].step, 1);
		/* Now 10% admits 97: it needs 10 healthy again. */
		h[0].admitted = 97;
		assert_int_equal(rf_rollout_evaluate(&s, &st, h, NULL, T0 + 3600, &st, &ev), 0);
		assert_int_equal(ev.checks[0].required_healthy, 10);
		assert_int_equal(ev.checks[0].verdict, RF_ROLLOUT_V_WAIT);
		h[0].healthy = 10;
		assert_int_equal(rf_rollout_evaluate(&s, &st, h, NULL, T0 + 3600, &st, &ev), 0);
		assert_int_equal(ev.stepped, 0);
		h[0].admitted = 1000;
		assert_int_equal(rf_rollout_evaluate(&s, &st, h, NULL, T0 + 4200, &st, &ev), 0);
		assert_int_equal(ev.completed, 0);
		assert_int_equal(ev.opened, 1);
		/* broad's 0.01% step admits nobody: it passes on bake time alone (600 s) ... */
		h[1] = (struct rf_rollout_health){.population = 50, .admitted_known = true};
		assert_int_equal(rf_rollout_evaluate(&s, &st, h, NULL, T0 + 4799, &st, &ev), 0);
		assert_int_equal(ev.checks[1].verdict, RF_ROLLOUT_V_WAIT);
		assert_int_equal(ev.next_eval, T0 + 4800);
		assert_int_equal(rf_rollout_evaluate(&s, &st, h, NULL, T0 + 4800, &st, &ev), 0);
		assert_int_equal(ev.checks[1].verdict, RF_ROLLOUT_V_PASS);
		assert_int_equal(ev.stepped, 1);
		assert_int_equal(rf_rollout_effective_bp(&s, &st, 1, T0 + 4800), 10000);
		/* ... where the old rule (population 50: expected 0.005, cap 1) waits for ever. */
		h[1].admitted_known = false;
		old = st;
		old.rings[1].step = 0;
		old.rings[1].step_at = T0 + 4200;
		assert_int_equal(rf_rollout_evaluate(&s, &old, h, NULL, T0 + 86400, &old, &ev), 0);
		assert_int_equal(ev.checks[1].verdict, RF_ROLLOUT_V_WAIT);
		assert_int_equal(ev.checks[1].required_healthy, 1);
		assert_int_equal(ev.stepped, -1);
	}
}

static void test_p6_forged_state_cannot_speed_up(void **state)
{
	struct rf_rollout_schedule s;
	struct rf_rollout_state st;

	parse_ok(sched_json, &s);
	rf_rollout_state_init(&s, &st);
	/* A state claiming canary opened long ago at its last step. */
	st.rings[0].phase = RF_ROLLOUT_COMPLETE;
	st.rings[0].opened_at = 1000;
	st.rings[0].step = 2;
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0 - 1), 0);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0), 100);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0 + 599), 100);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0 + 600), 1000);
	assert_int_equal(rf_rollout_effective_bp(&s, &st, 0, T0 + 1200), 10000);
}

/* ---- decision table ----------------------------------------------------------------------- */

struct fleet {
	struct rf_rollout_schedule s[3];
	struct rf_rollout_release rel[3];
};

/* rel-1 complete everywhere (index 0), rel-2 per sched_json (index 1), rel-3 not scheduled yet
 * (index 2, same shape as rel-2 but a day later). */
static void fleet_init(struct fleet *f)
{
	char j[sizeof(sched_json) + 64];

	simple_schedule("rel-1", &f->s[0]);
	parse_ok(sched_json, &f->s[1]);
	snprintf(j, sizeof(j), "%s", sched_json);
	memcpy(strstr(j, "rel-2"), "rel-3", 5);
	memcpy(strstr(j, "1764000000"), "1764086400", 10);
	memcpy(strstr(j, "1764003600"), "1764090000", 10);
	parse_ok(j, &f->s[2]);
	for (int i = 0; i < 3; i++) {
		f->rel[i].schedule = &f->s[i];
		rf_rollout_state_init(&f->s[i], &f->rel[i].state);
	}
	/* rel-1: both rings complete. */
	for (int r = 0; r < 2; r++) {
		f->rel[0].state.rings[r].phase = RF_ROLLOUT_COMPLETE;
		f->rel[0].state.rings[r].opened_at = 0;
		f->rel[0].state.rings[r].completed_at = 1;
	}
}

/* Find a device id of the given ring whose bucket for release s is in [lo, hi). */
static void pick_device(const struct rf_rollout_schedule *s, uint32_t lo, uint32_t hi, char *id,
			size_t idsz)
{
	for (int i = 0; i < 1000000; i++) {
		int n = snprintf(id, idsz, "dev-%d", i);
		uint32_t b = rf_rollout_bucket(s->bucket_key, id, (size_t)n);

		if (b >= lo && b < hi)
			return;
	}
	fail_msg("no device in bucket range");
}

static struct rf_rollout_answer decide_fb(const struct fleet *f, size_t n, const char *id,
					  const char *ring, int current, bool fallback,
					  const struct rf_rollout_policy *pol, int64_t now)
{
	struct rf_rollout_device dev = {.id = id,
					.id_len = strlen(id),
					.ring = ring,
					.current = current,
					.fallback = fallback};
	struct rf_rollout_answer a;

	assert_int_equal(rf_rollout_decide(&dev, pol, f->rel, n, now, &a), 0);
	assert_true(a.next_change > now);
	return a;
}

static struct rf_rollout_answer decide(const struct fleet *f, size_t n, const char *id,
				       const char *ring, int current,
				       const struct rf_rollout_policy *pol, int64_t now)
{
	return decide_fb(f, n, id, ring, current, false, pol, now);
}

static void open_canary(struct fleet *f, int rel, int step, int64_t opened)
{
	struct rf_rollout_ring_state *r = &f->rel[rel].state.rings[0];

	r->phase = RF_ROLLOUT_RAMPING;
	r->opened_at = opened;
	r->step = (uint8_t)step;
	r->step_at = opened;
}

static void test_decision_table(void **state)
{
	struct fleet f;
	struct rf_rollout_policy any = {0};
	/* Window 02:00-04:00 UTC. T0 is 16:00 UTC. */
	struct rf_rollout_policy win = {.window_start_s = 2 * 3600, .window_len_s = 2 * 3600};
	char lucky[32], later[32];
	struct rf_rollout_answer a;

	fleet_init(&f);
	pick_device(&f.s[1], 0, 100, lucky, sizeof(lucky));	/* in rel-2's first 1 % */
	pick_device(&f.s[1], 5000, 6000, later, sizeof(later)); /* only at 100 % */

	/* A new device gets the newest admitted release: rel-1. */
	a = decide(&f, 3, lucky, "canary", -1, &any, T0 - 10);
	assert_int_equal(a.action, RF_ROLLOUT_INSTALL);
	assert_int_equal(a.release, 0);

	/* Schedule not reached: rel-2 exists but canary has not opened. */
	a = decide(&f, 3, lucky, "canary", 0, &any, T0 - 10);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.reason, RF_ROLLOUT_R_NOT_YET);
	assert_int_equal(a.release, 0);

	/* Ramping at 1 %: lucky gets it, later does not. */
	open_canary(&f, 1, 0, T0);
	a = decide(&f, 3, lucky, "canary", 0, &any, T0 + 10);
	assert_int_equal(a.action, RF_ROLLOUT_INSTALL);
	assert_int_equal(a.release, 1);
	assert_int_equal(a.reason, RF_ROLLOUT_R_NEW);
	a = decide(&f, 3, later, "canary", 0, &any, T0 + 10);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.reason, RF_ROLLOUT_R_NOT_YET);
	/* Broad has not opened: same device id in broad stays. */
	a = decide(&f, 3, lucky, "broad", 0, &any, T0 + 10);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	/* Already on rel-2: up to date (rel-3 is scheduled later: "not yet" while it exists). */
	a = decide(&f, 2, lucky, "canary", 1, &any, T0 + 10);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.reason, RF_ROLLOUT_R_UP_TO_DATE);
	assert_int_equal(a.next_change, INT64_MAX);
	a = decide(&f, 3, lucky, "canary", 1, &any, T0 + 10);
	assert_int_equal(a.reason, RF_ROLLOUT_R_NOT_YET);
	/* Gate allowed the 100 % step but its signed time is ahead: next_change says when. */
	open_canary(&f, 1, 2, T0);
	f.rel[1].state.rings[0].phase = RF_ROLLOUT_RAMPING;
	a = decide(&f, 3, later, "canary", 0, &any, T0 + 10);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.next_change, T0 + 1200);
	a = decide(&f, 3, later, "canary", 0, &any, T0 + 1200);
	assert_int_equal(a.action, RF_ROLLOUT_INSTALL);
	open_canary(&f, 1, 0, T0);

	/* Maintenance window: outside -> stay until it opens; inside -> install. */
	a = decide(&f, 3, lucky, "canary", 0, &win, T0 + 10);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.reason, RF_ROLLOUT_R_WINDOW);
	assert_int_equal(a.next_change, T0 + 10 * 3600); /* 16:00 -> 02:00 next day */
	a = decide(&f, 3, lucky, "canary", 0, &win, T0 + 10 * 3600 + 60);
	assert_int_equal(a.action, RF_ROLLOUT_INSTALL);
	assert_int_equal(a.release, 1);
	assert_int_equal(a.next_change, T0 + 12 * 3600); /* window closes at 04:00 */

	/* Held: no new device takes it; those on it stay. */
	assert_int_equal(rf_rollout_hold(&f.rel[1].state, T0 + 20, "look"), 0);
	a = decide(&f, 3, lucky, "canary", 0, &any, T0 + 30);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.reason, RF_ROLLOUT_R_HELD);
	a = decide(&f, 3, lucky, "canary", 1, &any, T0 + 30);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.release, 1);
	assert_int_equal(rf_rollout_resume(&f.rel[1].state, T0 + 40), 0);

	/* Halted: devices on it go back to rel-1, even outside their window. */
	assert_int_equal(rf_rollout_halt(&f.rel[1].state, T0 + 50, NULL), 0);
	a = decide(&f, 3, lucky, "canary", 1, &win, T0 + 60);
	assert_int_equal(a.action, RF_ROLLOUT_GO_BACK);
	assert_int_equal(a.release, 0);
	assert_int_equal(a.reason, RF_ROLLOUT_R_HALTED);
	/* ... and nobody else takes it. */
	a = decide(&f, 3, lucky, "canary", 0, &any, T0 + 60);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.release, 0);
	a = decide(&f, 2, lucky, "canary", 1, &any, T0 + 60);
	assert_int_equal(a.action, RF_ROLLOUT_GO_BACK);
	assert_int_equal(a.release, 0);
	/* Halted first release (nothing older): back to the device's own last known good when
	 * it has one; else it stays and waits for the fix (never an endless go-back). */
	f.rel[0].state.status = RF_ROLLOUT_HALTED;
	a = decide_fb(&f, 2, lucky, "canary", 0, true, &any, T0 + 60);
	assert_int_equal(a.action, RF_ROLLOUT_GO_BACK);
	assert_int_equal(a.release, -1);
	a = decide(&f, 2, lucky, "canary", 0, &any, T0 + 60);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.reason, RF_ROLLOUT_R_WAITING_FIX);
	assert_int_equal(a.release, 0);
	assert_string_equal(rf_rollout_reason_name(a.reason), "waiting-for-fix");
	/* The fix: rel-2 (index 1) is admitted for lucky, so a device on the halted rel-1 is
	 * offered it first, outside its window too, with or without a fallback of its own. */
	a = decide(&f, 2, lucky, "canary", 0, &win, T0 + 60);
	assert_int_equal(a.action, RF_ROLLOUT_STAY); /* rel-2 is halted too: nothing yet */
	assert_int_equal(rf_rollout_resume(&f.rel[1].state, T0 + 61), 0);
	a = decide(&f, 2, lucky, "canary", 0, &win, T0 + 62);
	assert_int_equal(a.action, RF_ROLLOUT_INSTALL);
	assert_int_equal(a.reason, RF_ROLLOUT_R_FIX);
	assert_int_equal(a.release, 1);
	a = decide_fb(&f, 2, lucky, "canary", 0, true, &any, T0 + 62);
	assert_int_equal(a.action, RF_ROLLOUT_INSTALL);
	assert_int_equal(a.release, 1);
	/* A device the fix does not admit yet waits for it (and is told when that can change). */
	a = decide(&f, 2, later, "canary", 0, &any, T0 + 62);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.reason, RF_ROLLOUT_R_WAITING_FIX);
	assert_int_equal(rf_rollout_halt(&f.rel[1].state, T0 + 63, NULL), 0);
	f.rel[0].state.status = RF_ROLLOUT_ACTIVE;

	/* Rolled back. */
	assert_int_equal(rf_rollout_rollback(&f.rel[1].state, T0 + 70, "bad"), 0);
	a = decide(&f, 3, lucky, "canary", 1, &any, T0 + 80);
	assert_int_equal(a.action, RF_ROLLOUT_GO_BACK);
	assert_int_equal(a.reason, RF_ROLLOUT_R_ROLLED_BACK);
	assert_int_equal(a.release, 0);
}

static void test_decision_pinned_n1(void **state)
{
	struct fleet f;
	struct rf_rollout_policy n1 = {.pin = RF_ROLLOUT_PIN_N1};
	struct rf_rollout_answer a;
	char id[32];

	fleet_init(&f);
	pick_device(&f.s[1], 0, 100, id, sizeof(id));
	/* rel-2 at 100 % in canary, complete. */
	f.rel[1].state.rings[0] = (struct rf_rollout_ring_state){
	    .phase = RF_ROLLOUT_COMPLETE, .step = 2, .opened_at = T0, .completed_at = T0 + 2000};
	a = decide(&f, 3, id, "canary", 0, &n1, T0 + 3000);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.reason, RF_ROLLOUT_R_PINNED);
	assert_int_equal(a.release, 0);
	/* rel-3 opens in canary: N-1 is now rel-2. */
	open_canary(&f, 2, 0, T0 + 86400);
	a = decide(&f, 3, id, "canary", 0, &n1, T0 + 86400 + 10);
	assert_int_equal(a.action, RF_ROLLOUT_INSTALL);
	assert_int_equal(a.release, 1);
	/* A pinned device already on N-1 stays there. */
	a = decide(&f, 3, id, "canary", 1, &n1, T0 + 86400 + 10);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.reason, RF_ROLLOUT_R_PINNED);
	/* rel-3 halts: N is rel-2 again, N-1 is rel-1; a device on rel-2 is never moved back. */
	assert_int_equal(rf_rollout_halt(&f.rel[2].state, T0 + 86400 + 20, NULL), 0);
	a = decide(&f, 3, id, "canary", 1, &n1, T0 + 86400 + 30);
	assert_int_equal(a.action, RF_ROLLOUT_STAY);
	assert_int_equal(a.release, 1);
}

static void test_decision_rejects_bad_args(void **state)
{
	struct fleet f;
	struct rf_rollout_policy pol = {0};
	struct rf_rollout_device dev = {.id = "d", .id_len = 1, .ring = "canary", .current = 3};
	struct rf_rollout_answer a;

	fleet_init(&f);
	assert_int_equal(rf_rollout_decide(&dev, &pol, f.rel, 3, T0, &a), -EINVAL);
	dev.current = 0;
	pol.window_start_s = 86400;
	assert_int_equal(rf_rollout_decide(&dev, &pol, f.rel, 3, T0, &a), -EINVAL);
	pol.window_start_s = 0;
	assert_int_equal(rf_rollout_decide(&dev, &pol, f.rel, RF_ROLLOUT_DECIDE_MAX + 1, T0, &a),
			 -EINVAL);
	assert_int_equal(rf_rollout_decide(&dev, &pol, f.rel, 3, T0, NULL), -EINVAL);
	/* No releases at all. */
	dev.current = -1;
	assert_int_equal(rf_rollout_decide(&dev, &pol, NULL, 0, T0, &a), 0);
	assert_int_equal(a.reason, RF_ROLLOUT_R_NONE);
	assert_int_equal(a.next_change, INT64_MAX);
}

/* P6 as a property: over random schedules, random (even forged) states, devices, policies and
 * times, an INSTALL is always one the signed schedule admits (the agent-side check agrees), a
 * device never moves backwards except away from a halted/rolled-back release, and
 * next_change is in the future. */
static void test_property_never_faster_than_signed(void **state)
{
	enum { NREL = 4 };
	struct rf_rollout_schedule sc[NREL];
	struct rf_rollout_release rel[NREL];
	static const char *const rings[] = {"canary", "broad", "none"};
	unsigned installs = 0, backs = 0;

	for (unsigned iter = 0; iter < 20000; iter++) {
		struct rf_rollout_policy pol = {
		    .pin = (uint8_t)(urand() < 0.3),
		    .window_start_s = (uint32_t)(urand() * 86400),
		    .window_len_s = urand() < 0.5 ? 0 : (uint32_t)(urand() * 86400),
		};
		char id[24];
		int idn = snprintf(id, sizeof(id), "d%u", (unsigned)(urand() * 1e6));
		struct rf_rollout_device dev = {.id = id,
						.id_len = (size_t)idn,
						.ring = rings[(int)(urand() * 3)],
						.current = (int)(urand() * (NREL + 1)) - 1,
						.fallback = urand() < 0.5};
		int64_t now = T0 + (int64_t)(urand() * 86400 * 3);
		struct rf_rollout_answer a;

		if (iter % 500 == 0) {
			for (int r = 0; r < NREL; r++) {
				char j[512];
				unsigned p1 = 1 + (unsigned)(urand() * 50);

				snprintf(
				    j, sizeof(j),
				    "{\"release\":\"p%u-%d\",\"schedule\":[{\"ring\":\"canary\","
				    "\"not_before\":%lld,\"ramp\":[{\"after\":0,\"percent\":%u},"
				    "{\"after\":%u,\"percent\":100}]},{\"ring\":\"broad\","
				    "\"not_before\":%lld,\"ramp\":[{\"after\":%u,\"percent\":%u},"
				    "{\"after\":86400,\"percent\":100}]}]}",
				    iter, r, (long long)(T0 + r * 40000), p1,
				    1 + (unsigned)(urand() * 7200),
				    (long long)(T0 + r * 40000 + 3600), (unsigned)(urand() * 600),
				    p1);
				parse_ok(j, &sc[r]);
				rel[r].schedule = &sc[r];
			}
		}
		for (int r = 0; r < NREL; r++) {
			struct rf_rollout_state *st = &rel[r].state;

			rf_rollout_state_init(&sc[r], st);
			st->status = (uint8_t)(urand() < 0.7 ? RF_ROLLOUT_ACTIVE : urand() * 4);
			for (int k = 0; k < 2; k++) {
				st->rings[k].phase = (uint8_t)(urand() * 3);
				st->rings[k].step = (uint8_t)(urand() * 2);
				/* forged: open times anywhere, including before not_before */
				st->rings[k].opened_at =
				    T0 - 86400 + (int64_t)(urand() * 86400 * 4);
			}
		}
		assert_int_equal(rf_rollout_decide(&dev, &pol, rel, NREL, now, &a), 0);
		assert_true(a.next_change > now);
		if (a.action == RF_ROLLOUT_INSTALL) {
			const struct rf_rollout_schedule *t = &sc[a.release];
			uint32_t b = rf_rollout_bucket(t->bucket_key, id, (size_t)idn);

			installs++;
			assert_true(a.release > dev.current);
			assert_int_equal(rel[a.release].state.status, RF_ROLLOUT_ACTIVE);
			if (!rf_rollout_schedule_admits(t, dev.ring, b, now))
				fail_msg("iter %u: install of %s for ring %s bucket %u at %lld "
					 "before the signed schedule allows",
					 iter, t->release, dev.ring, b, (long long)now);
			/* Leaving bad content (the fix) ignores the window; upgrades do not. */
			if (a.reason == RF_ROLLOUT_R_FIX)
				assert_true(rel[dev.current].state.status == RF_ROLLOUT_HALTED ||
					    rel[dev.current].state.status ==
						RF_ROLLOUT_ROLLED_BACK);
			else
				assert_true(rf_rollout_in_window(&pol, now, NULL));
		} else if (a.action == RF_ROLLOUT_GO_BACK) {
			backs++;
			assert_true(dev.current >= 0);
			assert_true(rel[dev.current].state.status == RF_ROLLOUT_HALTED ||
				    rel[dev.current].state.status == RF_ROLLOUT_ROLLED_BACK);
			assert_true(a.release < dev.current);
			assert_true(a.release >= 0 || dev.fallback);
		} else {
			assert_int_equal(a.release, dev.current);
		}
	}
	/* The property was exercised, not vacuous. */
	assert_true(installs > 500);
	assert_true(backs > 500);
}

/* Mutated schedules (bytes flipped, truncated, duplicated) never crash the parser and either
 * parse to something valid or fail with -EBADMSG / -E2BIG and a message. */
static void test_parser_mutations(void **state)
{
	size_t n = sizeof(sched_json) - 1;
	uint8_t buf[sizeof(sched_json) * 2];
	unsigned ok = 0, bad = 0;

	for (unsigned iter = 0; iter < 5000; iter++) {
		struct rf_rollout_schedule s;
		struct rf_diag d = {0};
		size_t len = n;
		int r;

		memcpy(buf, sched_json, n);
		for (int k = 0, m = 1 + (int)(urand() * 4); k < m; k++) {
			size_t at = (size_t)(urand() * (double)len);

			switch ((int)(urand() * 4)) {
			case 0:
				buf[at] = (uint8_t)(urand() * 256);
				break;
			case 1:
				len = at;
				break;
			case 2:
				buf[at] = "{}[]\",:0-.e9"[(int)(urand() * 12)];
				break;
			default:
				if (len + 8 < sizeof(buf)) {
					memmove(buf + at + 8, buf + at, len - at);
					len += 8;
				}
			}
		}
		r = rf_rollout_schedule_parse(buf, len, &s, &d);
		if (r == 0) {
			ok++;
			assert_true(s.nrings >= 1 && s.nrings <= RF_ROLLOUT_RINGS_MAX);
		} else {
			bad++;
			assert_true(r == -EBADMSG || r == -E2BIG);
			assert_true(d.count >= 1 && d.first[0] != '\0');
		}
	}
	assert_true(bad > 1000);
	(void)ok;
}

/* ---- end to end: a small fleet driven through the engine ---------------------------------- */

/*
 * 5,000 devices in three rings poll every 5 minutes; the server side evaluates every minute.
 * rel-1 runs everywhere; rel-2 is either good or crashes on load (the guard rolls back after 3
 * attempts and the device reports). Everything the devices do goes through rf_rollout_decide,
 * everything the server does through rf_rollout_evaluate. In the "late" mode rel-2 passes
 * probation, then crashes the device every 5 minutes from 15 minutes after load (the guard has
 * already marked it good, so only the server's gates can get the device off it).
 */
struct e2e {
	struct rf_rollout_schedule s[2];
	struct rf_rollout_release rel[2];
	struct rf_rollout_health h[3], b[3];
	int cur[5000];
	int64_t intent_at[5000];
	unsigned exposed, exposed_broad, went_back;
	int64_t first_crash, halted_at;
};

static const char *e2e_ring(unsigned i)
{
	return i % 100 < 2 ? "canary" : (i % 100 < 20 ? "early" : "broad");
}

enum { E2E_GOOD, E2E_CRASH_ON_LOAD, E2E_CRASH_LATE };

static void e2e_run(struct e2e *e, int mode)
{
	static const char j2[] =
	    "{\"release\":\"rel-2\",\"schedule\":["
	    "{\"ring\":\"canary\",\"not_before\":1764000000,\"ramp\":[{\"after\":0,\"percent\":10},"
	    "{\"after\":900,\"percent\":100}]},"
	    "{\"ring\":\"early\",\"not_before\":1764003600,\"ramp\":[{\"after\":0,\"percent\":10},"
	    "{\"after\":1800,\"percent\":100}]},"
	    "{\"ring\":\"broad\",\"not_before\":1764007200,\"ramp\":[{\"after\":0,\"percent\":5},"
	    "{\"after\":3600,\"percent\":50},{\"after\":7200,\"percent\":100}]}],"
	    "\"gates\":{\"min_healthy\":5,\"min_bake_s\":900,\"probation_s\":600}}";
	struct rf_rollout_policy pol = {0};
	char id[16];

	memset(e, 0, sizeof(*e));
	e->first_crash = e->halted_at = -1;
	simple_schedule("rel-1", &e->s[0]);
	{
		static const char j1[] =
		    "{\"release\":\"rel-1\",\"schedule\":[{\"ring\":\"canary\",\"not_before\":0,"
		    "\"ramp\":[{\"after\":0,\"percent\":100}]},{\"ring\":\"early\",\"not_before\":"
		    "0,"
		    "\"ramp\":[{\"after\":0,\"percent\":100}]},{\"ring\":\"broad\",\"not_before\":"
		    "0,"
		    "\"ramp\":[{\"after\":0,\"percent\":100}]}]}";
		parse_ok(j1, &e->s[0]);
	}
	parse_ok(j2, &e->s[1]);
	for (int r = 0; r < 2; r++) {
		e->rel[r].schedule = &e->s[r];
		rf_rollout_state_init(&e->s[r], &e->rel[r].state);
	}
	for (int k = 0; k < 3; k++)
		e->rel[0].state.rings[k] =
		    (struct rf_rollout_ring_state){.phase = RF_ROLLOUT_COMPLETE, .completed_at = 1};
	for (unsigned i = 0; i < 5000; i++)
		e->cur[i] = 0;

	for (int64_t t = T0 - 600; t < T0 + 86400; t += 60) {
		/* Devices whose poll falls in this minute. */
		for (unsigned i = 0; i < 5000; i++) {
			int ri = (int)(i % 100 < 2 ? 0 : (i % 100 < 20 ? 1 : 2));
			int n = snprintf(id, sizeof(id), "e2e-%u", i);
			struct rf_rollout_device dev = {.id = id,
							.id_len = (size_t)n,
							.ring = e2e_ring(i),
							.current = e->cur[i],
							.fallback = e->cur[i] == 1};
			struct rf_rollout_answer a;

			/* Baseline exposure: every device on rel-1 adds a minute. */
			if (e->cur[i] == 0)
				e->b[ri].exposure_s += 60;
			else
				e->h[ri].exposure_s += 60;
			if (e->cur[i] == 1 && t - e->intent_at[i] == 600)
				e->h[ri].healthy++;
			if (e->cur[i] == 1 && mode == E2E_CRASH_LATE &&
			    t - e->intent_at[i] >= 900 && (t - e->intent_at[i]) % 300 == 0) {
				e->h[ri].crashes++;
				if (t - e->intent_at[i] == 900)
					e->h[ri].failed++;
				if (e->first_crash < 0)
					e->first_crash = t;
			}
			if ((t / 60) % 5 != i % 5)
				continue;
			assert_int_equal(rf_rollout_decide(&dev, &pol, e->rel, 2, t, &a), 0);
			if (a.action == RF_ROLLOUT_GO_BACK) {
				e->cur[i] = a.release < 0 ? 0 : a.release;
				e->went_back++;
			} else if (a.action == RF_ROLLOUT_INSTALL && a.release == 1) {
				uint32_t bk = rf_rollout_bucket(e->s[1].bucket_key, id, (size_t)n);

				/* The agent-side P6 check agrees with every offer. */
				assert_true(rf_rollout_schedule_admits(&e->s[1], dev.ring, bk, t));
				e->exposed++;
				e->exposed_broad += ri == 2;
				e->h[ri].devices++;
				e->intent_at[i] = t;
				if (mode == E2E_CRASH_ON_LOAD) {
					/* Crash on load, 3 attempts, guard rolls back, device
					 * reports. */
					e->h[ri].crashes += 3;
					e->h[ri].rollbacks++;
					e->h[ri].failed++;
					if (e->first_crash < 0)
						e->first_crash = t;
					e->cur[i] = 0;
				} else {
					e->cur[i] = 1;
				}
			}
		}
		for (int k = 0; k < 3; k++) {
			e->b[k].devices = 5000;
			e->b[k].healthy = 5000;
			e->h[k].population = k == 0 ? 100 : (k == 1 ? 900 : 4000);
		}
		struct rf_rollout_eval ev;
		assert_int_equal(rf_rollout_evaluate(&e->s[1], &e->rel[1].state, e->h, e->b, t,
						     &e->rel[1].state, &ev),
				 0);
		if (ev.halted)
			e->halted_at = t;
	}
}

static void test_e2e_bad_release_halts_in_canary(void **state)
{
	struct e2e *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e2e_run(e, E2E_CRASH_ON_LOAD);
	print_message("bad release: first crash T0%+lld, halted T0%+lld, %u devices exposed\n",
		      (long long)(e->first_crash - T0), (long long)(e->halted_at - T0), e->exposed);
	assert_int_equal(e->rel[1].state.status, RF_ROLLOUT_HALTED);
	assert_int_equal(e->rel[1].state.halt_ring, 0);
	/* Halted within 5 minutes of the first crash, having reached only canary's first step. */
	assert_true(e->halted_at >= e->first_crash && e->halted_at - e->first_crash <= 300);
	assert_int_equal(e->exposed_broad, 0);
	if (e->exposed > 20)
		fail_msg("%u devices took the bad release", e->exposed);
	assert_int_equal(e->rel[1].state.rings[1].phase, RF_ROLLOUT_NOT_STARTED);
	for (unsigned i = 0; i < 5000; i++)
		assert_int_equal(e->cur[i], 0);
	free(e);
}

static void test_e2e_late_crash_sends_devices_back(void **state)
{
	struct e2e *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e2e_run(e, E2E_CRASH_LATE);
	print_message("late crash: first crash T0%+lld, halted T0%+lld, %u exposed, %u told to go "
		      "back\n",
		      (long long)(e->first_crash - T0), (long long)(e->halted_at - T0), e->exposed,
		      e->went_back);
	assert_int_equal(e->rel[1].state.status, RF_ROLLOUT_HALTED);
	assert_true(e->halted_at - e->first_crash <= 600);
	assert_int_equal(e->exposed_broad, 0);
	/* Every device that took it was told to go back, outside any window, and did. */
	assert_int_equal(e->went_back, e->exposed);
	for (unsigned i = 0; i < 5000; i++)
		assert_int_equal(e->cur[i], 0);
	free(e);
}

static void test_e2e_good_release_reaches_everyone(void **state)
{
	struct e2e *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e2e_run(e, E2E_GOOD);
	for (int k = 0; k < 3; k++)
		print_message("good release: ring %s opened T0%+lld, completed T0%+lld\n",
			      e->s[1].rings[k].name,
			      (long long)(e->rel[1].state.rings[k].opened_at - T0),
			      (long long)(e->rel[1].state.rings[k].completed_at - T0));
	assert_int_equal(e->rel[1].state.status, RF_ROLLOUT_ACTIVE);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(e->rel[1].state.rings[k].phase, RF_ROLLOUT_COMPLETE);
		assert_true(e->rel[1].state.rings[k].opened_at >= e->s[1].rings[k].not_before);
		if (k > 0)
			assert_true(e->rel[1].state.rings[k].opened_at >=
				    e->rel[1].state.rings[k - 1].completed_at);
	}
	assert_int_equal(e->exposed, 5000);
	assert_int_equal(e->went_back, 0);
	for (unsigned i = 0; i < 5000; i++)
		assert_int_equal(e->cur[i], 1);
	free(e);
}

static void test_names(void **state)
{
	assert_string_equal(rf_rollout_status_name(RF_ROLLOUT_HALTED), "halted");
	assert_string_equal(rf_rollout_metric_name(RF_ROLLOUT_M_SILENT), "silent");
	assert_string_equal(rf_rollout_reason_name(RF_ROLLOUT_R_PINNED), "pinned-n-1");
	assert_string_equal(rf_rollout_reason_name(RF_ROLLOUT_R_COUNT_), "unknown");
	assert_string_equal(rf_rollout_phase_name(-1), "unknown");
	assert_string_equal(rf_rollout_action_name(RF_ROLLOUT_GO_BACK), "go-back");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good_and_roundtrip),
	    cmocka_unit_test(test_parse_bad_input),
	    cmocka_unit_test(test_parse_bp_steps_and_ppm_gates),
	    cmocka_unit_test(test_ppm_roundtrip_exact),
	    cmocka_unit_test(test_formatted_schedule_is_tuf_canonical),
	    cmocka_unit_test(test_formatted_schedule_signs_into_tuf_repo),
	    cmocka_unit_test(test_siphash_reference_vectors),
	    cmocka_unit_test(test_bucket_stable_and_independent),
	    cmocka_unit_test(test_agent_side_admits),
	    cmocka_unit_test(test_binomial_tail),
	    cmocka_unit_test(test_baseline_noise_does_not_halt),
	    cmocka_unit_test(test_floor_compares_by_exposure),
	    cmocka_unit_test(test_repeated_looks_do_not_halt),
	    cmocka_unit_test(test_real_regression_halts),
	    cmocka_unit_test(test_silent_after_intent_fails),
	    cmocka_unit_test(test_first_release_crash_loop_halts),
	    cmocka_unit_test(test_evaluate_progression_and_halt),
	    cmocka_unit_test(test_admitted_caps_required_healthy),
	    cmocka_unit_test(test_p6_forged_state_cannot_speed_up),
	    cmocka_unit_test(test_decision_table),
	    cmocka_unit_test(test_decision_pinned_n1),
	    cmocka_unit_test(test_decision_rejects_bad_args),
	    cmocka_unit_test(test_property_never_faster_than_signed),
	    cmocka_unit_test(test_parser_mutations),
	    cmocka_unit_test(test_e2e_bad_release_halts_in_canary),
	    cmocka_unit_test(test_e2e_late_crash_sends_devices_back),
	    cmocka_unit_test(test_e2e_good_release_reaches_everyone),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
