/*
 * What counts as a device's evidence on a release (src/server/device.c, checkin.c, report.c,
 * gates.c; docs/server.md "Health and gates"), through the server core as the transport drives it
 * (rf_server_handle: real request bodies), on a real database (SQLite, or PostgreSQL as
 * server-evidence-pg) and a real TUF repository, with a test clock:
 *
 * - after an operator resume, a device that takes the release again, or that stayed on it and
 *   reports again, counts again from its new evidence (it used to count never again: its old
 *   record, from before the resume, was reused); and the status shows that health right after
 *   the resume, on the instance that resumed it and on another (PostgreSQL), not the evidence
 *   that halted it until the next tick;
 * - a report about a release the device never took (a transit rejection, a healthy report
 *   without intent) counts nothing and starts no silence clock: a bad mirror and an offline
 *   device do not halt a good release; a content rejection before intent still fails it.
 *
 * After every step the incremental health equals the recount (rf__srv_health_verify), and a
 * restart (the records read back from the database) counts the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/util.h"
#include "server/server-internal.h"
#include "testdb.h"
#include "testsrv.h"

#define ADMIN RF_TESTSRV_ADMIN
#define NREL  2
#define NDEV  3

struct env {
	struct rf_testsrv t;
	int64_t now;
	char tok[80];
	char cred[NDEV][80];
	char sha[NREL][65];
};

static const char *const dev_name[NDEV] = {"d-a", "d-b", "d-c"};

static int64_t test_clock(void *ud)
{
	return ((struct env *)ud)->now;
}

static int call(struct env *e, const char *method, const char *path, const char *auth,
		const char *body, json_t **ret)
{
	return rf_testsrv_call(&e->t, method, path, auth, body, ret);
}

static void verify(struct env *e, const char *what)
{
	rf_testsrv_verify_health(e->t.s, what);
}

/* Packs 1 and 2: canary and broad open now at 100 %; probation and silence 60 s, a floor of 2
 * failed devices (10 %), at least 1 healthy device. */
static void schedule_of(void *ud, int i, char *buf, size_t n)
{
	struct env *e = ud;

	snprintf(buf, n,
		 "{\"ringfence\":{\"release\":\"rel-%d\",\"schedule\":["
		 "{\"ring\":\"canary\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]},"
		 "{\"ring\":\"broad\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]}],"
		 "\"gates\":{\"probation_s\":60,\"silence_s\":60,\"min_bake_s\":0,"
		 "\"min_healthy\":1,\"floor_devices\":2,\"floor_fraction_ppm\":100000}}}",
		 i);
	rf_testsrv_pack_sha(i, e->sha[i - 1]);
}

static void start(struct env *e, bool init)
{
	struct rf_server_opts o = {.init = init, .clock = test_clock, .clock_ud = e};

	rf_testsrv_start(&e->t, &o);
}

/* A tenant in canary, releases 1..nrel, and the three devices enrolled. */
static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->now = 1800000000;
	rf_testsrv_prepare(&e->t, "evidence", NREL, schedule_of, e);
	start(e, true);
	rf_testsrv_tenant(&e->t, "{\"name\":\"lab\",\"ring\":\"canary\"}", e->tok, sizeof(e->tok));
	for (int i = 0; i < NDEV; i++) {
		char body[100];
		snprintf(body, sizeof(body), "{\"device_id\":\"%s\"}", dev_name[i]);
		rf_testsrv_enroll(&e->t, e->tok, body, e->cred[i], sizeof(e->cred[i]));
	}
	*state = e;
	return 0;
}

static void create_release(struct env *e, int i)
{
	rf_testsrv_create_release(&e->t, i);
}

static void action(struct env *e, int rel, const char *act)
{
	char path[100];

	json_t *j = NULL;
	snprintf(path, sizeof(path), "/v1/admin/releases/%d/%s", rel, act);
	int st = call(e, "POST", path, ADMIN, "{\"reason\":\"test\",\"force\":true}", &j);
	if (st != 200) {
		char *t = j ? json_dumps(j, 0) : NULL;
		fail_msg("%s: status %d %s", path, st, t ? t : "");
	}
	json_decref(j);
	verify(e, act);
}

/* Device dev reports event about pack rel (1-based), with cause (or none). */
static void report(struct env *e, int dev, int rel, const char *event, const char *cause)
{
	static unsigned seq;
	char body[600], cz[40] = "";

	if (cause)
		snprintf(cz, sizeof(cz), ",\"cause\":\"%s\"", cause);
	snprintf(body, sizeof(body),
		 "{\"device_id\":\"%s\",\"report_id\":\"r-%u\",\"event\":\"%s\","
		 "\"sha256\":\"%s\",\"time\":%lld%s}",
		 dev_name[dev], ++seq, event, e->sha[rel - 1], (long long)e->now, cz);
	int st = call(e, "POST", "/v1/report", e->cred[dev], body, NULL);
	if (st != 201)
		fail_msg("report %s: status %d", body, st);
	verify(e, event);
}

/* Device dev checks in running pack rel (1-based; 0: nothing), with pack lg as its last known
 * good (0: none). */
static void checkin_lg(struct env *e, int dev, int rel, int lg)
{
	char body[400], cur[120] = "null", good[120] = "null";

	if (rel)
		snprintf(cur, sizeof(cur), "{\"sha256\":\"%s\"}", e->sha[rel - 1]);
	if (lg)
		snprintf(good, sizeof(good), "{\"sha256\":\"%s\"}", e->sha[lg - 1]);
	snprintf(body, sizeof(body),
		 "{\"device_id\":\"%s\",\"state\":{\"current\":%s,\"last_good\":%s}}",
		 dev_name[dev], cur, good);
	assert_int_equal(call(e, "POST", "/v1/checkin", e->cred[dev], body, NULL), 200);
	verify(e, "checkin");
}

static void checkin(struct env *e, int dev, int rel)
{
	checkin_lg(e, dev, rel, 0);
}

static void tick(struct env *e, int64_t seconds)
{
	e->now += seconds;
	assert_int_equal(rf_server_tick(e->t.s, false), 0);
	verify(e, "tick");
}

/* Every device takes release rel (1-based): intent, then trial_started. */
static void take_all(struct env *e, int rel)
{
	for (int i = 0; i < NDEV; i++) {
		report(e, i, rel, "intent", NULL);
		report(e, i, rel, "trial_started", NULL);
	}
}

/* Every device on release rel survives its probation (60 s): seen on it half-way through, then
 * reports healthy once it is over. */
static void healthy_all(struct env *e, int rel)
{
	tick(e, 30);
	for (int i = 0; i < NDEV; i++)
		checkin(e, i, rel);
	tick(e, 31);
	for (int i = 0; i < NDEV; i++)
		report(e, i, rel, "healthy", NULL);
}

/* The health of release rel (1-based) in canary, as the gates read it. */
static struct rf_rollout_health canary(struct env *e, int rel)
{
	const struct rf__srv_release *r = rf__srv_rel_by_id(e->t.s, rel);

	assert_non_null(r);
	int k = rf_rollout_ring_index(&r->sched, "canary");
	assert_true(k >= 0);
	return r->health[k];
}

static const char *status(struct env *e, int rel)
{
	return rf_rollout_status_name(rf__srv_rel_by_id(e->t.s, rel)->st.status);
}

static void restart(struct env *e)
{
	rf_server_free(e->t.s);
	start(e, false);
	verify(e, "restart");
}

/* Held and resumed while its devices run it: their crashes and quarantines after the resume
 * count, and halt it (they were not counted at all: the release stayed active). */
static void test_stayed_on_reports_after_resume(void **state)
{
	struct env *e = *state;

	create_release(e, 1);
	take_all(e, 1);
	tick(e, 1);
	assert_int_equal(canary(e, 1).devices, NDEV);
	action(e, 1, "hold");
	tick(e, 1);
	action(e, 1, "resume");
	tick(e, 0);
	assert_int_equal(canary(e, 1).devices, 0); /* the evidence from before is dropped */
	tick(e, 2);
	/* A restart in between: the records come back from the database as they were. */
	restart(e);
	for (int i = 0; i < NDEV; i++) {
		for (int c = 0; c < 3; c++)
			report(e, i, 1, "crashed", "content");
		report(e, i, 1, "quarantined", "content");
	}
	assert_int_equal(canary(e, 1).devices, NDEV);
	assert_int_equal(canary(e, 1).failed, NDEV);
	assert_int_equal(canary(e, 1).crashes, 3 * NDEV);
	tick(e, 1);
	assert_string_equal(status(e, 1), "halted");
	restart(e);
	assert_int_equal(canary(e, 1).failed, NDEV);
}

/* Halted, its devices went back to release 1, resumed: they take it again and report intent,
 * trial and healthy after probation, and count healthy (they counted never again: took 0
 * healthy 0 in every ring, the ring waiting for min_healthy for ever). A device back on it only
 * by a check-in counts too. Evidence from the second of the resume does not count. */
static void test_retaken_after_resume(void **state)
{
	struct env *e = *state;

	create_release(e, 1);
	take_all(e, 1);
	healthy_all(e, 1);
	assert_string_equal(status(e, 1), "active");
	create_release(e, 2);
	take_all(e, 2);
	tick(e, 1);
	report(e, 0, 2, "crashed", "content"); /* evidence that will not count again */
	action(e, 2, "halt");
	for (int i = 0; i < NDEV; i++) {
		report(e, i, 2, "rolled_back", "server");
		checkin(e, i, 1);
	}
	tick(e, 5);
	action(e, 2, "resume");
	/* The second of the resume: d-a's intent there cannot be told from one before it. */
	report(e, 0, 2, "intent", NULL);
	assert_int_equal(canary(e, 2).devices, 0);
	tick(e, 1);
	report(e, 0, 2, "intent", NULL);
	report(e, 0, 2, "trial_started", NULL);
	report(e, 1, 2, "intent", NULL);
	report(e, 1, 2, "trial_started", NULL);
	checkin(e, 2, 2); /* d-c: back on it, said only by its check-in */
	struct rf_rollout_health h = canary(e, 2);
	assert_int_equal(h.devices, NDEV);
	assert_int_equal(h.failed, 0);
	assert_int_equal(h.crashes, 0);
	assert_int_equal(h.obeyed, 0);
	restart(e);
	healthy_all(e, 2);
	h = canary(e, 2);
	assert_int_equal(h.devices, NDEV);
	assert_int_equal(h.healthy, NDEV);
	assert_int_equal(h.failed, 0);
	assert_int_equal(h.silent, 0);
	assert_string_equal(status(e, 2), "active");
	tick(e, 1);
	assert_string_equal(status(e, 2), "active");
}

/* Devices that run the release as their own last known good (they survived the agent's
 * probation on it) never report healthy again. After a resume they count again from their
 * check-ins, and healthy once seen on it for probation_s since the resume (they never counted
 * again: a resumed ring waited for min_healthy for ever). A device on trial does not count
 * from its check-ins alone; one whose healthy report came too early counts once its check-ins
 * show the release as its last known good probation_s after it took it. */
static void test_own_good_counts_after_resume(void **state)
{
	struct env *e = *state;

	create_release(e, 1);
	take_all(e, 1);
	healthy_all(e, 1);
	assert_int_equal(canary(e, 1).healthy, NDEV);
	assert_string_equal(status(e, 1), "active");
	/* Halted with nowhere to go (forced): they stay on it, waiting for a fix. */
	action(e, 1, "halt");
	tick(e, 1);
	action(e, 1, "resume");
	tick(e, 1);
	assert_int_equal(canary(e, 1).healthy, 0);
	for (int k = 0; k < 3; k++) {
		checkin_lg(e, 0, 1, 1);
		checkin_lg(e, 1, 1, 1);
		checkin_lg(e, 2, 1, k ? 1 : 0);
		if (k == 0) {
			/* d-c was on trial across the resume: its check-ins alone do not count it.
			 * It reports healthy now, too early to count (not probation_s after the
			 * resume); then it runs the release as its last known good. */
			assert_int_equal(canary(e, 1).devices, 2);
			report(e, 2, 1, "healthy", NULL);
			assert_int_equal(canary(e, 1).devices, 3);
			assert_int_equal(canary(e, 1).healthy, 0);
		}
		if (k < 2)
			tick(e, 30);
	}
	/* 61 s after the resume: seen on it since, as their last known good. */
	struct rf_rollout_health h = canary(e, 1);
	assert_int_equal(h.devices, 3);
	assert_int_equal(h.healthy, 3);
	assert_int_equal(h.failed, 0);
	restart(e);
	assert_int_equal(canary(e, 1).healthy, 3);
}

/* A transit rejection, then the device goes offline: no silence clock (it never took the
 * release), so a good release is not halted (it was: "2 of 3 devices failed", silent 2). */
static void test_transit_rejection_no_silence(void **state)
{
	struct env *e = *state;

	create_release(e, 1);
	report(e, 0, 1, "intent", NULL);
	report(e, 0, 1, "trial_started", NULL);
	report(e, 1, 1, "rejected", "transit");
	report(e, 2, 1, "rejected", "transit");
	tick(e, 30);
	checkin(e, 0, 1);
	tick(e, 31);
	report(e, 0, 1, "healthy", NULL);
	tick(e, 10);
	checkin(e, 0, 1);
	tick(e, 30);
	struct rf_rollout_health h = canary(e, 1);
	assert_int_equal(h.devices, 1);
	assert_int_equal(h.healthy, 1);
	assert_int_equal(h.silent, 0);
	assert_int_equal(h.failed, 0);
	assert_string_equal(status(e, 1), "active");
	restart(e);
	tick(e, 120);
	checkin(e, 0, 1);
	tick(e, 1);
	h = canary(e, 1);
	assert_int_equal(h.silent, 0);
	assert_int_equal(h.failed, 0);
	assert_string_equal(status(e, 1), "active");
}

/* Reports about a release the device never took count nothing (healthy, a local, transit or
 * server-caused failure: each used to count the device, and silent once quiet), except a
 * failure of the content: a rejection against the device's manifest comes before intent and
 * fails the release. */
static void test_no_intent_no_clock(void **state)
{
	struct env *e = *state;

	create_release(e, 1);
	report(e, 0, 1, "healthy", NULL);
	report(e, 1, 1, "crashed", "local");
	report(e, 1, 1, "rolled_back", "server");
	report(e, 1, 1, "quarantined", "transit");
	report(e, 2, 1, "rejected", "content");
	tick(e, 200);
	struct rf_rollout_health h = canary(e, 1);
	assert_int_equal(h.devices, 1);
	assert_int_equal(h.rejections, 1);
	assert_int_equal(h.failed, 1);
	assert_int_equal(h.healthy, 0);
	assert_int_equal(h.local_failures, 0);
	assert_int_equal(h.obeyed, 0);
	restart(e);
	assert_int_equal(canary(e, 1).devices, 1);
}

/* Several instances (PostgreSQL): instance A resumes the release; before instance B has read
 * the resume, a device takes the release through B, after the second of the resume. When B
 * reads the resume, its counts follow the records (that device counts, the others not): they
 * were emptied, and differed from the recount. */
static void test_resume_read_by_another_instance(void **state)
{
	struct env *e = *state;
	struct rf_testsrv b;
	struct rf_server_opts o = {.clock = test_clock, .clock_ud = e};
	char body[300];

	if (!rf_testdb_pg())
		skip();
	create_release(e, 1);
	report(e, 1, 1, "intent", NULL);
	report(e, 2, 1, "intent", NULL);
	b = e->t;
	b.s = NULL;
	rf_testsrv_start(&b, &o);
	assert_int_equal(rf_server_tick(b.s, false), 0);
	action(e, 1, "hold");
	tick(e, 1);
	action(e, 1, "resume");
	int64_t resumed = rf__srv_rel_by_id(e->t.s, 1)->resumed_at;
	e->now += 1;
	snprintf(body, sizeof(body),
		 "{\"device_id\":\"d-a\",\"report_id\":\"b-1\",\"event\":\"intent\","
		 "\"sha256\":\"%s\",\"time\":1}",
		 e->sha[0]);
	assert_int_equal(rf_testsrv_call(&b, "POST", "/v1/report", e->cred[0], body, NULL), 201);
	rf_testsrv_verify_health(b.s, "report on b");
	/* B reads the resume when told (NOTIFY), or at its periodic re-read: bounded. */
	for (int i = 0; i < 100 && rf__srv_rel_by_id(b.s, 1)->resumed_at != resumed; i++) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
		/* -EIO once: B ran no tick while A's hold and resume each waited for B to apply
		 * them (RF_SRV_PROPAGATE_MS), longer than RF_PG_LEASE_IDLE_MS, so PostgreSQL ended
		 * B's control session; B connects again and re-reads. */
		int r = rf_server_tick(b.s, false);
		assert_true(r == 0 || r == -EIO);
	}
	assert_int_equal(rf__srv_rel_by_id(b.s, 1)->resumed_at, resumed);
	rf_testsrv_verify_health(b.s, "resume read by b");
	pthread_mutex_lock(&b.s->lock);
	const struct rf__srv_release *r = rf__srv_rel_by_id(b.s, 1);
	uint64_t devices = r->health[rf_rollout_ring_index(&r->sched, "canary")].devices;
	pthread_mutex_unlock(&b.s->lock);
	assert_int_equal(devices, 1);
	rf_server_free(b.s);
	tick(e, 1);
	assert_int_equal(canary(e, 1).devices, 1);
}

/* Field f of the canary ring's health in release rel's status as an operator reads it
 * (GET /v1/admin/releases/<rel>: `ringfence release status`) from instance t; and its gate
 * verdict in *ret_verdict (when not NULL: "none", "pass", "fail", "wait", "halted"). */
static long long shown(struct rf_testsrv *t, int rel, const char *f, char ret_verdict[16])
{
	char path[64];
	json_t *j = NULL, *ring;
	size_t i;
	long long v = -1;

	snprintf(path, sizeof(path), "/v1/admin/releases/%d", rel);
	assert_int_equal(rf_testsrv_call(t, "GET", path, ADMIN, NULL, &j), 200);
	json_array_foreach(json_object_get(j, "rings"), i, ring)
	{
		if (strcmp(json_string_value(json_object_get(ring, "ring")), "canary"))
			continue;
		v = json_integer_value(json_object_get(json_object_get(ring, "health"), f));
		if (ret_verdict)
			snprintf(ret_verdict, 16, "%s",
				 json_string_value(
				     json_object_get(json_object_get(ring, "gate"), "verdict")));
	}
	json_decref(j);
	return v;
}

/* Right after an operator resume the status shows the health the gates will use: the counts
 * from after the resume (none yet), not the evidence that halted it; it showed those until the
 * next tick. So does another instance (PostgreSQL) as soon as it has read the resume. */
static void test_status_after_resume(void **state)
{
	struct env *e = *state;
	struct rf_testsrv b = {0};
	struct rf_server_opts o = {.clock = test_clock, .clock_ud = e};
	char verdict[16] = "";

	create_release(e, 1);
	for (int i = 0; i < NDEV; i++) {
		report(e, i, 1, "intent", NULL);
		report(e, i, 1, "trial_started", NULL);
		for (int c = 0; c < 3; c++)
			report(e, i, 1, "crashed", "content");
		report(e, i, 1, "quarantined", "content");
	}
	tick(e, 1);
	assert_string_equal(status(e, 1), "halted");
	assert_int_equal(shown(&e->t, 1, "devices", verdict), NDEV);
	assert_int_equal(shown(&e->t, 1, "failed", NULL), NDEV);
	assert_string_equal(verdict, "fail");
	if (rf_testdb_pg()) {
		/* Instance B has read the halt and the devices' records. */
		b = e->t;
		b.s = NULL;
		rf_testsrv_start(&b, &o);
		for (int i = 0; i < 100 && shown(&b, 1, "failed", NULL) != NDEV; i++) {
			struct timespec ts = {0, 50 * 1000000L};
			nanosleep(&ts, NULL);
			assert_int_equal(rf_server_tick(b.s, false), 0);
		}
		assert_int_equal(shown(&b, 1, "failed", NULL), NDEV);
	}
	e->now += 5;
	/* Not action(): its check reads the health again, as the tick would. */
	assert_int_equal(call(e, "POST", "/v1/admin/releases/1/resume", ADMIN, NULL, NULL), 200);
	assert_string_equal(status(e, 1), "active");
	assert_int_equal(shown(&e->t, 1, "devices", verdict), 0);
	assert_int_equal(shown(&e->t, 1, "failed", NULL), 0);
	assert_int_equal(shown(&e->t, 1, "crashes", NULL), 0);
	assert_string_not_equal(verdict, "fail");
	verify(e, "resume");
	if (b.s) {
		/* B reads the resume (as it does when told, or when a device row names a release
		 * it must read again), before any tick of its own. */
		pthread_mutex_lock(&b.s->lock);
		int r = rf__srv_cluster_reread(b.s);
		pthread_mutex_unlock(&b.s->lock);
		assert_int_equal(r, 0);
		assert_int_equal(shown(&b, 1, "devices", verdict), 0);
		assert_int_equal(shown(&b, 1, "failed", NULL), 0);
		assert_string_not_equal(verdict, "fail");
		rf_testsrv_verify_health(b.s, "resume read by b"); /* (it reads the health again) */
		rf_server_free(b.s);
	}
	/* The tick agrees: what was shown is what the gates use. */
	tick(e, 0);
	assert_string_equal(status(e, 1), "active");
	assert_int_equal(shown(&e->t, 1, "devices", NULL), 0);
}

/* Device dev checks in running pack rel with pack lg as its last known good (0: none) and the
 * agent's alert count on its current content (it counts afresh when its content changes). */
static void checkin_alerts(struct env *e, int dev, int rel, int lg, unsigned alerts)
{
	char body[500], good[120] = "null";

	if (lg)
		snprintf(good, sizeof(good), "{\"sha256\":\"%s\"}", e->sha[lg - 1]);
	snprintf(body, sizeof(body),
		 "{\"device_id\":\"%s\",\"state\":{\"current\":{\"sha256\":\"%s\"},"
		 "\"last_good\":%s},\"health\":{\"crashes\":0,\"rollbacks\":0,\"events\":0,"
		 "\"alerts\":%u}}",
		 dev_name[dev], e->sha[rel - 1], good, alerts);
	assert_int_equal(call(e, "POST", "/v1/checkin", e->cred[dev], body, NULL), 200);
	verify(e, "checkin");
}

/* After a resume a device's alerts count from the resume, like the rest of its evidence: a
 * device that stayed on the release goes on counting (the agent resets its count only when its
 * content changes), so the alerts from before the resume (the storm that halted it) counted
 * again at once. One that takes it again counts from 0. A restart counts the same. */
static void test_alerts_after_resume(void **state)
{
	struct env *e = *state;

	create_release(e, 1);
	take_all(e, 1);
	checkin_alerts(e, 0, 1, 0, 500);
	checkin_alerts(e, 1, 1, 0, 40);
	assert_int_equal(canary(e, 1).alerts, 540);
	action(e, 1, "hold");
	tick(e, 1);
	action(e, 1, "resume");
	tick(e, 1);
	assert_int_equal(canary(e, 1).alerts, 0);
	/* d-a stayed on it (its last known good now): its count goes on from 500. */
	checkin_alerts(e, 0, 1, 1, 500);
	assert_int_equal(canary(e, 1).devices, 1);
	assert_int_equal(canary(e, 1).alerts, 0);
	checkin_alerts(e, 0, 1, 1, 503);
	assert_int_equal(canary(e, 1).alerts, 3);
	/* d-b left for nothing and takes it again: the agent counts afresh. */
	checkin_lg(e, 1, 0, 0);
	report(e, 1, 1, "intent", NULL);
	checkin_alerts(e, 1, 1, 0, 2);
	assert_int_equal(canary(e, 1).alerts, 5);
	restart(e);
	assert_int_equal(canary(e, 1).alerts, 5);
	checkin_alerts(e, 0, 1, 1, 510);
	assert_int_equal(canary(e, 1).alerts, 12);
	assert_int_equal(shown(&e->t, 1, "alerts", NULL), 12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stayed_on_reports_after_resume, setup,
					    rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_retaken_after_resume, setup, rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_own_good_counts_after_resume, setup,
					    rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_transit_rejection_no_silence, setup,
					    rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_no_intent_no_clock, setup, rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_resume_read_by_another_instance, setup,
					    rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_status_after_resume, setup, rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_alerts_after_resume, setup, rf_testsrv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
