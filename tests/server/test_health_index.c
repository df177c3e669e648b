/*
 * The incremental health of ringfenced (src/server/gates.c) equals the health recounted from
 * every device, after every step of a random workload. The server keeps per (release, ring)
 * counts that change only when a device changes (enrolment, check-in, report, a silence
 * deadline passing) and never recounts the fleet in its tick; rf__srv_health_verify recounts
 * from scratch with rf_rollout_health_add (the one definition of health) and compares every
 * count, the admitted devices of each step, the waiting-for-fix counts and the ring
 * populations.
 *
 * The workload drives the server core as the transport does (rf_server_handle with real
 * request bodies, server.h) on a real SQLite database and a real TUF repository in a temp dir,
 * with a test clock: random enrolments and re-enrolments, check-ins running random releases
 * with or without a last known good, reports of every event and cause, halts, resumes, holds,
 * tenant ring and pin changes, new releases, ticks, and time jumps past probation and silence
 * deadlines; then a restart (the counts rebuilt from the database) and more steps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/util.h"
#include "server/server-internal.h"
#include "testsrv.h"

#define ADMIN RF_TESTSRV_ADMIN
#define NREL  4	 /* releases in the repository (the last created mid-run) */
#define NDEV  48 /* device ids (re-enrolled at random) */
#define STEPS 2500

struct env {
	struct rf_testsrv t;
	int64_t now;
	uint64_t rng;
	char tok[2][80]; /* tenants' enrollment tokens */
	char cred[NDEV][80];
	int tenant_of[NDEV]; /* -1 not enrolled */
	char sha[NREL][65];
	int nrel_created;
	uint64_t seen_silent, seen_healthy, seen_failed, seen_devices; /* max over the steps */
};

static int64_t test_clock(void *ud)
{
	return ((struct env *)ud)->now;
}

static uint64_t rnd(struct env *e, uint64_t n)
{
	e->rng ^= e->rng << 13;
	e->rng ^= e->rng >> 7;
	e->rng ^= e->rng << 17;
	return e->rng % n;
}

static int call(struct env *e, const char *method, const char *path, const char *auth,
		const char *body, json_t **ret)
{
	return rf_testsrv_call(&e->t, method, path, auth, body, ret);
}

static void verify(struct env *e, int step, const char *what)
{
	char at[100];

	snprintf(at, sizeof(at), "step %d (%s)", step, what);
	rf_testsrv_verify_health(e->t.s, at);
	for (size_t i = 0; i < e->t.s->nrels; i++)
		for (unsigned k = 0; k < e->t.s->rels[i].sched.nrings; k++) {
			const struct rf_rollout_health *h = &e->t.s->rels[i].health[k];
#define MAX_OF(a, b) a = (a) > (b) ? (a) : (b)
			MAX_OF(e->seen_silent, h->silent);
			MAX_OF(e->seen_healthy, h->healthy);
			MAX_OF(e->seen_failed, h->failed);
			MAX_OF(e->seen_devices, h->devices);
		}
}

static void start(struct env *e, bool init)
{
	struct rf_server_opts o = {.init = init, .clock = test_clock, .clock_ud = e};

	rf_testsrv_start(&e->t, &o);
}

static void create_release(struct env *e)
{
	rf_testsrv_create_release(&e->t, e->nrel_created + 1);
	e->nrel_created++;
}

/* Pack i (1..NREL): canary at once, early ramping in steps (admitted devices change with the
 * step), broad later; short probation and silence so the clock crosses them. Also notes the
 * pack's sha256 (its bytes are the example pack with sequence number i, testsrv.h). */
static void schedule_of(void *ud, int i, char *buf, size_t n)
{
	struct env *e = ud;

	snprintf(buf, n,
		 "{\"ringfence\":{\"release\":\"rel-%d\",\"schedule\":["
		 "{\"ring\":\"canary\",\"not_before\":0,\"ramp\":[{\"after\":0,"
		 "\"percent\":100}]},"
		 "{\"ring\":\"early\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":"
		 "10},{\"after\":600,\"percent\":50},{\"after\":1200,\"percent\":100}]},"
		 "{\"ring\":\"broad\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":"
		 "30},{\"after\":900,\"percent\":100}]}],"
		 "\"gates\":{\"probation_s\":%d,\"silence_s\":%d,\"min_bake_s\":60,"
		 "\"min_healthy\":2}}}",
		 i, 120 + 60 * (i - 1), 300 + 100 * (i - 1));
	rf_testsrv_pack_sha(i, e->sha[i - 1]);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	const char *seed = getenv("RF_TEST_SEED");

	assert_non_null(e);
	e->now = 1800000000;
	e->rng = seed ? strtoull(seed, NULL, 0) | 1 : 0x9e3779b97f4a7c15ull;
	rf_testsrv_prepare(&e->t, "health-index", NREL, schedule_of, e);
	start(e, true);
	static const char *const tenants[2] = {"{\"name\":\"a\"}", "{\"name\":\"b\"}"};
	for (int t = 0; t < 2; t++)
		rf_testsrv_tenant(&e->t, tenants[t], e->tok[t], sizeof(e->tok[t]));
	for (int i = 0; i < NDEV; i++)
		e->tenant_of[i] = -1;
	for (int i = 0; i < NREL - 1; i++)
		create_release(e);
	*state = e;
	return 0;
}

static void enroll(struct env *e, int dev)
{
	static const char *const rings[] = {"canary", "early", "broad", "nowhere"};
	int t = e->tenant_of[dev] >= 0 ? e->tenant_of[dev] : (int)rnd(e, 2);
	char body[200];

	snprintf(body, sizeof(body),
		 "{\"device_id\":\"dev-%d\",\"ring\":\"%s\",\"agent_version\":\"1.%d\"}", dev,
		 rings[rnd(e, 4)], (int)rnd(e, 3));
	rf_testsrv_enroll(&e->t, e->tok[t], body, e->cred[dev], sizeof(e->cred[dev]));
	e->tenant_of[dev] = t;
}

static void checkin(struct env *e, int dev)
{
	char body[600], cur[120] = "null", lg[120] = "null";
	int c = (int)rnd(e, NREL + 1), l = (int)rnd(e, NREL + 1);

	if (c < NREL)
		snprintf(cur, sizeof(cur), "{\"sha256\":\"%s\"}", e->sha[c]);
	if (l < NREL)
		snprintf(lg, sizeof(lg), "{\"sha256\":\"%s\"}", e->sha[l]);
	snprintf(body, sizeof(body),
		 "{\"device_id\":\"dev-%d\",\"state\":{\"current\":%s,\"last_good\":%s},"
		 "\"health\":{\"crashes\":%d,\"rollbacks\":0,\"events\":%d,\"alerts\":%d}}",
		 dev, cur, lg, (int)rnd(e, 3), (int)rnd(e, 1000), (int)rnd(e, 50));
	assert_int_equal(call(e, "POST", "/v1/checkin", e->cred[dev], body, NULL), 200);
}

static void report(struct env *e, int dev, int step)
{
	static const char *const causes[] = {"", "content", "local", "transit", "server"};
	const char *cause = causes[rnd(e, 5)];
	int rel = (int)rnd(e, NREL), ev = (int)rnd(e, 8), st;
	char body[600], cz[40] = "";

	if (*cause)
		snprintf(cz, sizeof(cz), ",\"cause\":\"%s\"", cause);
	snprintf(body, sizeof(body),
		 "{\"device_id\":\"dev-%d\",\"report_id\":\"r-%d\",\"event\":\"%s\","
		 "\"sha256\":\"%s\",\"time\":%lld%s}",
		 dev, step, rf__srv_events[ev], e->sha[rel], (long long)e->now, cz);
	st = call(e, "POST", "/v1/report", e->cred[dev], body, NULL);
	if (st != 201)
		fail_msg("report %s: status %d", body, st);
}

static void admin_action(struct env *e)
{
	static const char *const acts[] = {"halt", "resume", "hold", "rollback"};
	char path[100];
	int rel = 1 + (int)rnd(e, (uint64_t)e->nrel_created), a = (int)rnd(e, 4);

	/* Rollback is final: rarely. Forced (devices may have nowhere to go). */
	if (a == 3 && rnd(e, 4))
		a = 0;
	snprintf(path, sizeof(path), "/v1/admin/releases/%d/%s", rel, acts[a]);
	(void)call(e, "POST", path, ADMIN, "{\"force\":true}", NULL);
}

static void tenant_policy(struct env *e)
{
	static const char *const bodies[] = {"{\"ring\":\"early\"}", "{\"ring\":null}",
					     "{\"pin\":\"n-1\"}", "{\"pin\":\"latest\"}",
					     "{\"ring\":\"canary\",\"pin\":\"latest\"}"};
	char path[100];

	snprintf(path, sizeof(path), "/v1/admin/tenants/%s", rnd(e, 2) ? "a" : "b");
	assert_int_equal(call(e, "PUT", path, ADMIN, bodies[rnd(e, 5)], NULL), 200);
}

static void run(struct env *e, int from, int steps)
{
	for (int step = from; step < from + steps; step++) {
		int dev = (int)rnd(e, NDEV), k = (int)rnd(e, 100);
		const char *what;

		if (e->tenant_of[dev] < 0 || k < 5) {
			what = "enroll";
			enroll(e, dev);
		} else if (k < 45) {
			what = "checkin";
			checkin(e, dev);
		} else if (k < 80) {
			what = "report";
			report(e, dev, step);
		} else if (k < 93) {
			/* Time: seconds, or a jump past probation and silence deadlines. */
			what = "tick";
			e->now += rnd(e, 4) ? (int64_t)rnd(e, 60) : (int64_t)rnd(e, 900);
			(void)rf_server_tick(e->t.s, false);
		} else if (k < 97) {
			what = "admin";
			admin_action(e);
		} else if (k < 99) {
			what = "tenant";
			tenant_policy(e);
		} else {
			what = "release";
			if (e->nrel_created < NREL)
				create_release(e);
			(void)rf_server_tick(e->t.s, false);
		}
		verify(e, step, what);
	}
}

/* After every step of a random workload, and across a restart, the counts equal the recount. */
static void test_incremental_equals_recount(void **state)
{
	struct env *e = *state;
	json_t *j;

	run(e, 0, STEPS);
	/* The workload did reach the states the counts distinguish (not only zeros). */
	if (!e->seen_silent || !e->seen_healthy || !e->seen_failed || e->seen_devices < 3)
		fail_msg("workload too narrow: silent %llu healthy %llu failed %llu devices %llu",
			 (unsigned long long)e->seen_silent, (unsigned long long)e->seen_healthy,
			 (unsigned long long)e->seen_failed, (unsigned long long)e->seen_devices);
	/* A restart rebuilds the counts from the database; they still agree, and keep agreeing.
	 * Each device's records come back exactly (persist.c's reader of its own format). */
	size_t ndevs = e->t.s->ndevs;
	struct rf__srv_devrel(*hist)[RF__SRV_HIST] = calloc(NDEV, sizeof(*hist));
	assert_non_null(hist);
	for (int i = 0; i < NDEV; i++) {
		char id[32];
		snprintf(id, sizeof(id), "dev-%d", i);
		struct rf__srv_dev *d = rf__srv_dev_find(e->t.s, id, NULL);
		if (d)
			memcpy(hist[i], d->hist, sizeof(d->hist));
	}
	rf_server_free(e->t.s);
	start(e, false);
	assert_int_equal(e->t.s->ndevs, ndevs);
	for (int i = 0; i < NDEV; i++) {
		char id[32];
		snprintf(id, sizeof(id), "dev-%d", i);
		struct rf__srv_dev *d = rf__srv_dev_find(e->t.s, id, NULL);
		if (d && memcmp(hist[i], d->hist, sizeof(d->hist)))
			fail_msg("%s: per-release records differ after the restart", id);
	}
	free(hist);
	verify(e, STEPS, "restart");
	run(e, STEPS + 1, STEPS / 2);
	assert_int_equal(call(e, "GET", "/v1/admin/releases", ADMIN, NULL, &j), 200);
	json_decref(j);
}

/* Silence after intent is found by its deadline, with no device activity: one device takes a
 * release, goes quiet, and the tick after its silence window counts it silent and failed. */
static void test_silence_deadline(void **state)
{
	struct env *e = *state;
	char body[300];
	const struct rf__srv_release *rel;
	int64_t silence;

	enroll(e, 0);
	snprintf(body, sizeof(body),
		 "{\"device_id\":\"dev-0\",\"report_id\":\"x\",\"event\":\"intent\",\"sha256\":"
		 "\"%s\",\"time\":1}",
		 e->sha[0]);
	assert_int_equal(call(e, "POST", "/v1/report", e->cred[0], body, NULL), 201);
	rel = &e->t.s->rels[0];
	silence = rel->sched.gates.silence_s;
	e->now += silence - 1;
	assert_int_equal(rf_server_tick(e->t.s, false), 0);
	uint64_t before = 0, after = 0;
	for (unsigned k = 0; k < rel->sched.nrings; k++)
		before += rel->health[k].silent;
	e->now += 1;
	assert_int_equal(rf_server_tick(e->t.s, false), 0);
	for (unsigned k = 0; k < rel->sched.nrings; k++)
		after += rel->health[k].silent;
	assert_int_equal(before, 0);
	assert_int_equal(after, 1);
	verify(e, 0, "silence");
	/* A check-in ends the silence (the device is heard from again). */
	e->now += 1;
	checkin(e, 0);
	assert_int_equal(rf_server_tick(e->t.s, false), 0);
	after = 0;
	for (unsigned k = 0; k < rel->sched.nrings; k++)
		after += rel->health[k].silent;
	assert_int_equal(after, 0);
	verify(e, 1, "heard from");
}

/* The check itself can fail: a count off by one is found. */
static void test_verify_detects(void **state)
{
	struct env *e = *state;
	char msg[256];

	run(e, 0, 200);
	pthread_mutex_lock(&e->t.s->lock);
	e->t.s->rels[0].acc[0].h.devices++;
	assert_int_equal(rf__srv_health_verify(e->t.s, msg, sizeof(msg)), -EUCLEAN);
	e->t.s->rels[0].acc[0].h.devices--;
	assert_int_equal(rf__srv_health_verify(e->t.s, msg, sizeof(msg)), 0);
	pthread_mutex_unlock(&e->t.s->lock);
}

/* ---- the write path with several threads (group commit, flush without the lock) ---------- */

struct worker {
	struct env *e;
	pthread_t th;
	int id;
	uint64_t rng;
	unsigned acked, bad;
};

/* One request from a worker thread (no cmocka asserts off the main thread). */
static int wcall(struct env *e, const char *path, const char *cred, const char *body)
{
	char hdr[100];
	struct rf_server_request q = {
	    "POST", path, hdr, "application/json", (const uint8_t *)body, strlen(body), NULL};
	struct rf_server_reply r;

	snprintf(hdr, sizeof(hdr), "Bearer %s", cred);
	if (rf_server_handle(e->t.s, &q, &r) < 0)
		return -1;
	int st = r.status;
	rf_server_reply_free(&r);
	return st;
}

static void *worker_run(void *ud)
{
	struct worker *w = ud;
	struct env *e = w->e;
	static const char *const causes[] = {"", ",\"cause\":\"content\"", ",\"cause\":\"local\"",
					     ",\"cause\":\"server\""};

	for (int i = 0; i < 400; i++) {
		char body[600];
		w->rng ^= w->rng << 13;
		w->rng ^= w->rng >> 7;
		w->rng ^= w->rng << 17;
		/* Every worker on every device: reports of one device from several threads at
		 * once, check-ins of a device whose report is being written. */
		int dev = (int)(w->rng % NDEV), rel = (int)((w->rng >> 8) % NREL);
		int ev = (int)((w->rng >> 16) % 8);
		if ((w->rng >> 24) % 2) {
			snprintf(
			    body, sizeof(body),
			    "{\"device_id\":\"dev-%d\",\"report_id\":\"w%d-%d\",\"event\":\"%s\","
			    "\"sha256\":\"%s\",\"time\":%lld%s}",
			    dev, w->id, i, rf__srv_events[ev], e->sha[rel], (long long)e->now,
			    causes[(w->rng >> 32) % 4]);
			int st = wcall(e, "/v1/report", e->cred[dev], body);
			if (st == 201)
				w->acked++;
			else
				w->bad++;
		} else {
			snprintf(body, sizeof(body),
				 "{\"device_id\":\"dev-%d\",\"agent_version\":\"2.%d\",\"state\":{"
				 "\"current\":{\"sha256\":\"%s\"}},\"health\":{\"crashes\":0,"
				 "\"rollbacks\":0,\"events\":%d,\"alerts\":1}}",
				 dev, i % 3, e->sha[rel], i);
			if (wcall(e, "/v1/checkin", e->cred[dev], body) != 200)
				w->bad++;
		}
	}
	return NULL;
}

static void *ticker_run(void *ud)
{
	struct worker *w = ud;

	for (int i = 0; i < 200; i++)
		if (rf_server_tick(w->e->t.s, false) < 0)
			w->bad++;
	return NULL;
}

struct rowcmp {
	struct env *e;
	unsigned rows, differ;
	char first[64];
};

static int row_cmp(void *ud, const struct rf_db_device *x)
{
	struct rowcmp *c = ud;
	struct rf__srv_dev row = {0};
	const struct rf__srv_dev *d = rf__srv_dev_find(c->e->t.s, x->id, NULL);

	c->rows++;
	rf__srv_hist_from_string(x->history, &row);
	if (!d || memcmp(row.hist, d->hist, sizeof(d->hist)) || x->release_id != d->release_id ||
	    strcmp(x->state, rf__srv_state_name(d->state))) {
		if (!c->differ++)
			snprintf(c->first, sizeof(c->first), "%s", x->id);
	}
	return 0;
}

/* Reports and check-ins from 4 threads on the same devices while a fifth ticks (the flush
 * writes without the lock): every report acknowledged is stored, none is lost or counted
 * twice, the incremental health equals the recount, and after a restart every device's records
 * are what memory held (memory and the database agree). */
static void test_concurrent_writes(void **state)
{
	struct env *e = *state;
	struct worker w[5];
	uint64_t stored = 0;

	for (int i = 0; i < NDEV; i++)
		enroll(e, i);
	for (int i = 0; i < 5; i++) {
		w[i] = (struct worker){.e = e, .id = i, .rng = 0x9e3779b97f4a7c15ull * (i + 1) | 1};
		assert_int_equal(
		    pthread_create(&w[i].th, NULL, i < 4 ? worker_run : ticker_run, &w[i]), 0);
	}
	unsigned acked = 0;
	for (int i = 0; i < 5; i++) {
		pthread_join(w[i].th, NULL);
		assert_int_equal(w[i].bad, 0);
		acked += w[i].acked;
	}
	assert_true(acked > 100);
	verify(e, 0, "concurrent");
	assert_int_equal(rf_db_reports_count(e->t.s->db, NULL, &stored), 0);
	assert_int_equal(stored, acked);
	/* After one ordinary tick (no shutdown flush), every device's row in the database holds
	 * what memory holds: its release, state and per-release records. */
	assert_int_equal(rf_server_tick(e->t.s, false), 0);
	struct rowcmp rc = {.e = e};
	const struct rf_db_visitor v = {.device = row_cmp};
	assert_int_equal(rf_db_load(e->t.s->db, &v, &rc), 0);
	assert_int_equal(rc.rows, NDEV);
	if (rc.differ)
		fail_msg("%u device rows differ from memory, e.g. %s", rc.differ, rc.first);
	/* And the same after a restart. */
	struct rf__srv_dev *before = calloc(NDEV, sizeof(*before));
	assert_non_null(before);
	for (int i = 0; i < NDEV; i++) {
		char id[32];
		snprintf(id, sizeof(id), "dev-%d", i);
		before[i] = *rf__srv_dev_find(e->t.s, id, NULL);
	}
	rf_server_free(e->t.s);
	start(e, false);
	for (int i = 0; i < NDEV; i++) {
		char id[32];
		snprintf(id, sizeof(id), "dev-%d", i);
		struct rf__srv_dev *d = rf__srv_dev_find(e->t.s, id, NULL);
		assert_non_null(d);
		if (memcmp(before[i].hist, d->hist, sizeof(d->hist)) ||
		    before[i].state != d->state || before[i].release_id != d->release_id)
			fail_msg("%s: the database differs from memory after concurrent writes",
				 id);
	}
	free(before);
	verify(e, 1, "restart");
}

/* The flush writes in chunks of RF_SRV_FLUSH_CHUNK devices, one transaction each (the lock is
 * released between them): 5,000 changed devices are 2 transactions, all 5,000 rows. */
static void test_flush_chunks(void **state)
{
	struct env *e = *state;
	enum { N = 5000 };
	struct rf_db_device *recs = calloc(N, sizeof(*recs));
	char(*ids)[16] = calloc(N, sizeof(*ids));
	char(*creds)[72] = calloc(N, sizeof(*creds));

	assert_true(RF_SRV_FLUSH_CHUNK < N && N <= 2 * RF_SRV_FLUSH_CHUNK);
	assert_non_null(recs);
	assert_non_null(ids);
	assert_non_null(creds);
	for (int i = 0; i < N; i++) {
		uint8_t raw[32] = {0};
		memcpy(raw, &i, sizeof(i));
		snprintf(creds[i], sizeof(creds[i]), "rfd_");
		rf_hex_encode(raw, 32, creds[i] + 4);
		snprintf(ids[i], sizeof(ids[i]), "bulk-%d", i);
		recs[i] = (struct rf_db_device){.id = ids[i],
						.tenant = "a",
						.ring = "broad",
						.agent_version = "1.0",
						.manifest_hash = "",
						.enrolled_at = e->now,
						.last_seen = e->now,
						.state = "enrolled",
						.history = ""};
		rf_sha256(creds[i], strlen(creds[i]), recs[i].cred_hash);
	}
	assert_int_equal(rf_db_devices_put(e->t.s->db, recs, N), 0);
	rf_server_free(e->t.s);
	start(e, false);
	assert_int_equal(rf_server_tick(e->t.s, false), 0);
	for (int i = 0; i < N; i++) { /* a new agent version: a change to write */
		char body[200];
		snprintf(body, sizeof(body), "{\"device_id\":\"%s\",\"agent_version\":\"1.1\"}",
			 ids[i]);
		assert_int_equal(call(e, "POST", "/v1/checkin", creds[i], body, NULL), 200);
	}
	uint64_t f0 = atomic_load(&e->t.s->m_flushes), r0 = atomic_load(&e->t.s->m_flushed_rows);
	assert_int_equal(rf_server_tick(e->t.s, false), 0);
	assert_int_equal(atomic_load(&e->t.s->m_flushes) - f0, 2);
	assert_int_equal(atomic_load(&e->t.s->m_flushed_rows) - r0, N);
	assert_int_equal(e->t.s->ndirty, 0);
	rf_server_free(e->t.s);
	start(e, false);
	assert_string_equal(
	    rf__srv_str(e->t.s, rf__srv_dev_find(e->t.s, ids[N - 1], NULL)->agent_version), "1.1");
	assert_string_equal(
	    rf__srv_str(e->t.s, rf__srv_dev_find(e->t.s, ids[0], NULL)->agent_version), "1.1");
	verify(e, 0, "flush");
	free(recs);
	free(ids);
	free(creds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_incremental_equals_recount, setup,
					    rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_silence_deadline, setup, rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_verify_detects, setup, rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_writes, setup, rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_flush_chunks, setup, rf_testsrv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
