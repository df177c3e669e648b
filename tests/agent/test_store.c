/*
 * Tests of the agent store (src/agent/store.h), including its crash consistency.
 *
 * The scenario drives the real guard and the real store through install -> trial -> promote ->
 * a second pack that crash-loops -> quarantine -> back on the last known good, the way the
 * daemon does (rf_guard_step, rf_store_apply, then load). A recording run counts every
 * file-system call of the ops table and keeps a copy of state.json after each commit. Then:
 *   - kill: for every step N a child process runs the scenario and SIGKILLs itself just before
 *     step N; the parent checks that state.json is byte-for-byte the last commit renamed
 *     before N, that the store opens, its invariants hold, the last known good loads, and a
 *     restart (guard BOOT) loads nothing quarantined;
 *   - fail: the same with step N returning -EIO in-process;
 *   - random: a child runs the scenario on plain POSIX ops and the parent kill -9s it after a
 *     random delay, many times; state.json must be one of the recorded commits.
 */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/store.h"
#include "common/util.h"

/* ---- fault-injecting ops ---------------------------------------------------------------- */

#define SNAP_MAX 64
struct fault {
	unsigned step;
	unsigned kill_at; /* 0: never */
	unsigned fail_at; /* 0: never */
	bool record;
	char dir[256];
	unsigned nsnap;
	unsigned snap_step[SNAP_MAX]; /* step number of the rename that committed it */
	char *snap[SNAP_MAX];
};

static int tick(struct fault *f)
{
	f->step++;
	if (f->kill_at && f->step == f->kill_at)
		raise(SIGKILL);
	if (f->fail_at && f->step == f->fail_at)
		return -EIO;
	return 0;
}

static int f_open(void *ud, const char *path, int flags, mode_t mode)
{
	int r = tick(ud);
	return r < 0 ? r : rf_store_ops_posix()->open(NULL, path, flags, mode);
}

static int f_write(void *ud, int fd, const void *p, size_t n)
{
	int r = tick(ud);
	return r < 0 ? r : rf_store_ops_posix()->write(NULL, fd, p, n);
}

static int f_fsync(void *ud, int fd)
{
	int r = tick(ud);
	return r < 0 ? r : rf_store_ops_posix()->fsync(NULL, fd);
}

static int f_close(void *ud, int fd)
{
	int r = tick(ud);
	int c = rf_store_ops_posix()->close(NULL, fd); /* never leak the fd */
	return r < 0 ? r : c;
}

static int f_rename(void *ud, const char *from, const char *to)
{
	struct fault *f = ud;
	int r = tick(f);
	size_t l = strlen(to);

	if (r < 0)
		return r;
	r = rf_store_ops_posix()->rename(NULL, from, to);
	if (r == 0 && f->record && l >= 11 && strcmp(to + l - 11, "/state.json") == 0 &&
	    f->nsnap < SNAP_MAX) {
		uint8_t *buf;
		size_t n;
		if (rf_file_read(to, 1 << 20, &buf, &n) == 0) {
			f->snap[f->nsnap] = (char *)buf;
			f->snap_step[f->nsnap++] = f->step;
		}
	}
	return r;
}

static int f_unlink(void *ud, const char *path)
{
	int r = tick(ud);
	return r < 0 ? r : rf_store_ops_posix()->unlink(NULL, path);
}

static int f_mkdir(void *ud, const char *path, mode_t mode)
{
	int r = tick(ud);
	return r < 0 ? r : rf_store_ops_posix()->mkdir(NULL, path, mode);
}

static int f_fsync_dir(void *ud, const char *path)
{
	int r = tick(ud);
	return r < 0 ? r : rf_store_ops_posix()->fsync_dir(NULL, path);
}

static struct rf_store_ops fault_ops(struct fault *f)
{
	struct rf_store_ops o = {.userdata = f,
				 .open = f_open,
				 .write = f_write,
				 .fsync = f_fsync,
				 .close = f_close,
				 .rename = f_rename,
				 .unlink = f_unlink,
				 .mkdir = f_mkdir,
				 .fsync_dir = f_fsync_dir};
	return o;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void new_dir(char *out, size_t n)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	snprintf(out, n, "%s/rf-store-test-XXXXXX", base);
	assert_non_null(mkdtemp(out));
	rm_rf(out); /* the store creates it */
}

static const char PACK_A[] = "pack A: the good rules, version 1";
static const char PACK_B[] = "pack B: crashes the agent on load, version 2";

static struct rf_guard_config gcfg(void)
{
	struct rf_guard_config c = {.attempt_limit = 3, .probation_ms = 10, .probation_events = 1};
	return c;
}

/* One guard step applied the daemon's way; the LOAD at the end must read its pack. */
static int step(struct rf_store *st, struct rf_guard_state *g, enum rf_guard_event_type t,
		const uint8_t *hash, uint64_t now)
{
	struct rf_guard_config c = gcfg();
	struct rf_guard_event ev = {.type = t, .now_ms = now, .events = 5};
	struct rf_guard_actions acts;
	int r;

	if (hash)
		memcpy(ev.hash, hash, RF_GUARD_HASH_LEN);
	if ((r = rf_guard_step(&c, g, &ev, &acts)) < 0)
		return r;
	if ((r = rf_store_apply(st, g, &acts, 1764000000)) < 0)
		return r;
	for (unsigned i = 0; i < acts.n; i++) {
		if (acts.a[i].type == RF_GUARD_ACT_LOAD) {
			uint8_t *p;
			size_t n;
			if (rf_store_is_quarantined(st, acts.a[i].hash))
				return -EPERM;
			if ((r = rf_store_pack_read(st, acts.a[i].hash, &p, &n)) < 0)
				return r;
			free(p);
		}
	}
	return 0;
}

/* install -> trial -> promote -> crash-looping trial -> quarantine -> LKG. */
static int scenario(const char *dir, const struct rf_store_ops *ops)
{
	struct rf_store *st = NULL;
	struct rf_guard_state g;
	uint8_t ha[RF_GUARD_HASH_LEN], hb[RF_GUARD_HASH_LEN];
	int r;

	if ((r = rf_store_open(dir, ops, &st, NULL)) < 0)
		return r;
	g = *rf_store_guard(st);
	if ((r = step(st, &g, RF_GUARD_EV_BOOT, NULL, 0)) < 0)
		goto out;
	if ((r = rf_store_set_device_id(st, "host-0042")) < 0 ||
	    (r = rf_store_credential_set(st, "rfd_secret")) < 0)
		goto out;
	/* install A, trial, promote */
	if ((r = rf_store_pack_put(st, (const uint8_t *)PACK_A, sizeof(PACK_A), "packs/a-1.rfp",
				   ha)) < 0 ||
	    (r = step(st, &g, RF_GUARD_EV_CANDIDATE, ha, 0)) < 0 ||
	    (r = step(st, &g, RF_GUARD_EV_LOADED, NULL, 100)) < 0 ||
	    (r = step(st, &g, RF_GUARD_EV_TICK, NULL, 200)) < 0)
		goto out;
	/* deliver the first report */
	if (rf_store_report_count(st) > 0 &&
	    ((r = rf_store_report_done(st, rf_store_report_at(st, 0)->id)) < 0 ||
	     (r = rf_store_commit(st)) < 0))
		goto out;
	/* install B: it crashes at every load */
	if ((r = rf_store_pack_put(st, (const uint8_t *)PACK_B, sizeof(PACK_B), "packs/b-2.rfp",
				   hb)) < 0 ||
	    (r = step(st, &g, RF_GUARD_EV_CANDIDATE, hb, 0)) < 0)
		goto out;
	for (unsigned i = 0; i < 3; i++)
		if ((r = step(st, &g, RF_GUARD_EV_CRASH, NULL, 0)) < 0)
			goto out;
	/* back on A; promote it again so the LKG attempt counter resets */
	if ((r = step(st, &g, RF_GUARD_EV_LOADED, NULL, 300)) < 0 ||
	    (r = step(st, &g, RF_GUARD_EV_TICK, NULL, 400)) < 0)
		goto out;
out:
	rf_store_free(st);
	return r;
}

/* What must hold after any crash, and that a restart loads only what it may. */
static void check_after_crash(const char *dir)
{
	struct rf_store *st = NULL;
	struct rf_diag d = {0};
	struct rf_guard_state g;
	uint8_t hb[RF_GUARD_HASH_LEN];
	int r;

	r = rf_store_open(dir, NULL, &st, &d);
	if (r < 0)
		fail_msg("reopen %s: %s (%s)", dir, rf_strerror(r), d.first);
	r = rf_store_check(st, &d);
	if (r < 0)
		fail_msg("store invariants: %s", d.first);
	g = *rf_store_guard(st);
	rf_sha256(PACK_B, sizeof(PACK_B), hb);
	if (g.has_lkg) {
		uint8_t *p;
		size_t n;
		assert_int_equal(rf_store_pack_read(st, g.lkg, &p, &n), 0); /* the LKG loads */
		assert_memory_equal(p, PACK_A, sizeof(PACK_A));
		free(p);
	}
	assert_false(g.has_lkg && memcmp(g.lkg, hb, sizeof(hb)) == 0);
	/* restart: whatever the guard loads is present and not quarantined (step checks) */
	assert_int_equal(step(st, &g, RF_GUARD_EV_BOOT, NULL, 0), 0);
	assert_int_equal(rf_store_check(st, &d), 0);
	rf_store_free(st);
}

static struct fault recording;

static void record_run(void)
{
	char dir[256];
	struct rf_store_ops o;

	if (recording.nsnap)
		return;
	new_dir(dir, sizeof(dir));
	recording.record = true;
	o = fault_ops(&recording);
	assert_int_equal(scenario(dir, &o), 0);
	check_after_crash(dir);
	rm_rf(dir);
	assert_true(recording.nsnap >= 8);
	print_message("store scenario: %u file-system steps, %u commits\n", recording.step,
		      recording.nsnap);
}

static char *read_state_text(const char *dir)
{
	char path[512];
	uint8_t *buf = NULL;
	size_t n;

	snprintf(path, sizeof(path), "%s/state.json", dir);
	if (rf_file_read(path, 1 << 20, &buf, &n) < 0)
		return NULL;
	return (char *)buf;
}

/* The state.json text that must be on disk if the process stopped just before step n. */
static const char *expected_before(unsigned n)
{
	const char *e = NULL;

	for (unsigned i = 0; i < recording.nsnap; i++)
		if (recording.snap_step[i] < n)
			e = recording.snap[i];
	return e;
}

static void test_kill_at_every_step(void **unused)
{
	record_run();
	for (unsigned n = 1; n <= recording.step; n++) {
		char dir[256];
		struct fault f = {.kill_at = n};
		int status;
		pid_t pid;

		new_dir(dir, sizeof(dir));
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct rf_store_ops o = fault_ops(&f);
			int r = scenario(dir, &o);
			_exit(r == 0 ? 3 : 4); /* not reached: killed first */
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);
		{
			char *got = read_state_text(dir);
			const char *want = expected_before(n);
			if (!want)
				assert_null(got);
			else if (!got || strcmp(got, want) != 0)
				fail_msg("killed before step %u: state.json is not the last commit",
					 n);
			free(got);
		}
		check_after_crash(dir);
		rm_rf(dir);
	}
}

static void test_fail_at_every_step(void **unused)
{
	record_run();
	for (unsigned n = 1; n <= recording.step; n++) {
		char dir[256];
		struct fault f = {.fail_at = n};
		struct rf_store_ops o = fault_ops(&f);

		new_dir(dir, sizeof(dir));
		(void)scenario(dir,
			       &o); /* an error somewhere, or none if only a GC unlink failed */
		{
			char *got = read_state_text(dir);
			const char *want = expected_before(n);
			bool ok = want ? (got && strcmp(got, want) == 0) : got == NULL;

			/* a failed unlink (temp cleanup, garbage collection) stops nothing */
			if (!ok && got && strcmp(got, recording.snap[recording.nsnap - 1]) == 0)
				ok = true;
			if (!ok)
				fail_msg("failed at step %u: state.json is neither the last commit "
					 "nor final",
					 n);
			free(got);
		}
		check_after_crash(dir);
		rm_rf(dir);
	}
}

static void test_kill_at_random_points(void **unused)
{
	unsigned seed = (unsigned)time(NULL);
	uint64_t t0, dur_us;
	char dir[256];
	unsigned iters = 60, mid = 0;

	record_run();
	/* how long one uninterrupted run takes here (to spread the kills over it) */
	new_dir(dir, sizeof(dir));
	t0 = rf_now_mono_ns();
	assert_int_equal(scenario(dir, NULL), 0);
	dur_us = (rf_now_mono_ns() - t0) / 1000 + 1;
	rm_rf(dir);
	print_message("random kills: seed %u, scenario takes ~%llu us\n", seed,
		      (unsigned long long)dur_us);
	srand(seed);
	for (unsigned it = 0; it < iters; it++) {
		int status;
		pid_t pid;
		char *got;
		bool known = false;

		new_dir(dir, sizeof(dir));
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(scenario(dir, NULL) == 0 ? 0 : 4);
		usleep((useconds_t)((uint64_t)rand() % (dur_us + dur_us / 4 + 1)));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status))
			assert_int_equal(WEXITSTATUS(status), 0);
		got = read_state_text(dir);
		for (unsigned i = 0; got && i < recording.nsnap; i++)
			if (strcmp(got, recording.snap[i]) == 0) {
				known = true;
				if (i > 0 && i + 1 < recording.nsnap)
					mid++;
			}
		if (got && !known)
			fail_msg("random kill %u: state.json is not one of the committed states",
				 it);
		free(got);
		check_after_crash(dir);
		rm_rf(dir);
	}
	print_message("random kills: %u of %u stopped between the first and last commit\n", mid,
		      iters);
}

/* ---- plain behaviour -------------------------------------------------------------------- */

static void test_roundtrip_and_reopen(void **unused)
{
	char dir[256], cred[128];
	struct rf_store *st = NULL, *st2 = NULL;
	struct rf_diag d = {0};
	uint8_t h[RF_GUARD_HASH_LEN];
	struct rf_guard_state g;
	uint64_t ev, al, id;

	new_dir(dir, sizeof(dir));
	assert_int_equal(rf_store_open(dir, NULL, &st, &d), 0);
	/* one process at a time */
	assert_int_equal(rf_store_open(dir, NULL, &st2, &d), -EBUSY);
	assert_int_equal(
	    rf_store_pack_put(st, (const uint8_t *)PACK_A, sizeof(PACK_A), "packs/a-1.rfp", h), 0);
	rf_guard_init(&g);
	g.mode = RF_GUARD_MODE_LKG;
	g.has_lkg = 1;
	memcpy(g.lkg, h, sizeof(h));
	assert_int_equal(rf_store_set_guard(st, &g), 0);
	assert_int_equal(
	    rf_store_quarantine_add(st, (const uint8_t *)"0123456789abcdef0123456789abcdef",
				    "crash-loop", 5),
	    0);
	assert_int_equal(rf_store_report_add(st, "healthy", h, "packs/a-1.rfp", "x", 7, &id), 0);
	assert_int_equal(rf_store_set_device_id(st, "host-1"), 0);
	assert_int_equal(rf_store_set_ring(st, "canary"), 0);
	assert_int_equal(rf_store_credential_set(st, "rfd_abc"), 0);
	rf_store_set_counters(st, 12, 3);
	rf_store_add_corr_dropped(st, 7); /* correlation state dropped at the caps: durable too */
	rf_store_add_corr_dropped(st, 2);
	rf_store_add_alerts_lost(st, 5); /* alerts --alerts refused, and unreadable event times */
	rf_store_add_time_unparsed(st, 11);
	for (int c = 0; c < RF_STORE_COUNT_N; c++) /* the correlations' drops: durable too */
		rf_store_add_count(st, c, (uint64_t)(20 + c));
	rf_store_add_count(st, RF_STORE_CORR_LATE, 1);
	assert_int_equal(rf_store_commit(st), 0);
	rf_store_free(st);

	assert_int_equal(rf_store_open_readonly(dir, &st, &d), 0);
	assert_memory_equal(rf_store_guard(st), &g, sizeof(g));
	assert_string_equal(rf_store_pack_name(st, h), "packs/a-1.rfp");
	assert_int_equal(rf_store_quarantine_count(st), 1);
	assert_string_equal(rf_store_quarantine_at(st, 0)->reason, "crash-loop");
	assert_int_equal(rf_store_report_count(st), 1);
	assert_int_equal(rf_store_report_at(st, 0)->id, id);
	assert_string_equal(rf_store_report_at(st, 0)->event, "healthy");
	assert_string_equal(rf_store_device_id(st), "host-1");
	assert_string_equal(rf_store_ring(st), "canary");
	assert_int_equal(rf_store_credential_get(st, cred, sizeof(cred)), 0);
	assert_string_equal(cred, "rfd_abc");
	rf_store_counters(st, &ev, &al);
	assert_int_equal(ev, 12);
	assert_int_equal(al, 3);
	assert_int_equal(rf_store_corr_dropped(st), 9);
	assert_int_equal(rf_store_alerts_lost(st), 5);
	assert_int_equal(rf_store_time_unparsed(st), 11);
	assert_int_equal(rf_store_count(st, RF_STORE_CORR_LATE), 21);
	assert_int_equal(rf_store_count(st, RF_STORE_CORR_FUTURE), 21);
	assert_int_equal(rf_store_count(st, RF_STORE_CORR_SKIPPED), 22);
	assert_int_equal(rf_store_count(st, RF_STORE_TIME_MISSING), 23);
	assert_string_equal(rf_store_count_name(RF_STORE_TIME_MISSING), "time_missing");
	assert_int_equal(rf_store_check(st, &d), 0);
	assert_int_equal(rf_store_commit(st), -EROFS);
	rf_store_free(st);
	rm_rf(dir);
}

/* Garbage collection removes an unreferenced pack and the worker's matcher cache beside it
 * (packs/<hash>.hsdb, rf_engine_load_cached), keeps the referenced pack's, and nothing else. */
static void test_gc_removes_matcher_cache(void **unused)
{
	char dir[256], path[512], hex[2 * RF_GUARD_HASH_LEN + 1];
	struct rf_store *st = NULL;
	struct rf_diag d = {0};
	uint8_t ha[RF_GUARD_HASH_LEN], hb[RF_GUARD_HASH_LEN];
	struct rf_guard_state g;
	const uint8_t *hs[2] = {ha, hb};

	new_dir(dir, sizeof(dir));
	assert_int_equal(rf_store_open(dir, NULL, &st, &d), 0);
	assert_int_equal(
	    rf_store_pack_put(st, (const uint8_t *)PACK_A, sizeof(PACK_A), "packs/a-1.rfp", ha), 0);
	assert_int_equal(rf_store_pack_put(st, (const uint8_t *)"other", 5, "packs/b-1.rfp", hb),
			 0);
	for (int i = 0; i < 2; i++) {
		rf_hex_encode(hs[i], RF_GUARD_HASH_LEN, hex);
		snprintf(path, sizeof(path), "%s/packs/%s.hsdb", dir, hex);
		assert_int_equal(rf_file_write_atomic(path, "cache", 5, 0600), 0);
	}
	snprintf(path, sizeof(path), "%s/packs/notes.hsdb", dir);
	assert_int_equal(rf_file_write_atomic(path, "x", 1, 0600), 0);
	rf_guard_init(&g);
	g.mode = RF_GUARD_MODE_LKG;
	g.has_lkg = 1;
	memcpy(g.lkg, ha, sizeof(ha));
	assert_int_equal(rf_store_set_guard(st, &g), 0);
	assert_int_equal(rf_store_commit(st), 0);
	rf_store_free(st);
	for (int i = 0; i < 2; i++) {
		rf_hex_encode(hs[i], RF_GUARD_HASH_LEN, hex);
		snprintf(path, sizeof(path), "%s/packs/%s.hsdb", dir, hex);
		assert_int_equal(access(path, F_OK), i == 0 ? 0 : -1);
		snprintf(path, sizeof(path), "%s/packs/%s.rfp", dir, hex);
		assert_int_equal(access(path, F_OK), i == 0 ? 0 : -1);
	}
	snprintf(path, sizeof(path), "%s/packs/notes.hsdb", dir);
	assert_int_equal(access(path, F_OK), 0);
	rm_rf(dir);
}

static void test_corruption_is_detected(void **unused)
{
	char dir[256], path[512], hex[65];
	struct rf_store *st = NULL;
	struct rf_diag d = {0};
	uint8_t h[RF_GUARD_HASH_LEN], *p;
	size_t n;
	struct rf_guard_state g;
	FILE *fp;

	new_dir(dir, sizeof(dir));
	assert_int_equal(rf_store_open(dir, NULL, &st, &d), 0);
	assert_int_equal(
	    rf_store_pack_put(st, (const uint8_t *)PACK_A, sizeof(PACK_A), "packs/a-1.rfp", h), 0);
	rf_guard_init(&g);
	g.mode = RF_GUARD_MODE_LKG;
	g.has_lkg = 1;
	memcpy(g.lkg, h, sizeof(h));
	assert_int_equal(rf_store_set_guard(st, &g), 0);
	assert_int_equal(rf_store_commit(st), 0);
	/* flip a byte of the pack on disk: reading it back refuses it */
	rf_hex_encode(h, sizeof(h), hex);
	snprintf(path, sizeof(path), "%s/packs/%s.rfp", dir, hex);
	fp = fopen(path, "r+b");
	assert_non_null(fp);
	fputc('X', fp);
	fclose(fp);
	assert_int_equal(rf_store_pack_read(st, h, &p, &n), -EBADMSG);
	assert_int_equal(rf_store_check(st, &d), -EBADMSG);
	assert_non_null(strstr(d.first, "missing or corrupt"));
	rf_store_free(st);
	/* a state.json that is not a state */
	snprintf(path, sizeof(path), "%s/state.json", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("{\"format\": 1, \"guard\": 7}", fp);
	fclose(fp);
	memset(&d, 0, sizeof(d));
	assert_int_equal(rf_store_open(dir, NULL, &st, &d), -EBADMSG);
	assert_non_null(strstr(d.first, "state.json"));
	assert_int_equal(rf_store_open_reset(dir, NULL, &st, &d), 0);
	assert_int_equal(rf_store_guard(st)->mode, RF_GUARD_MODE_EMPTY);
	rf_store_free(st);
	snprintf(path, sizeof(path), "%s/state.json.bad", dir);
	assert_int_equal(access(path, F_OK), 0);
	rm_rf(dir);
}

static void assert_contains(const char *s, const char *want)
{
	if (!strstr(s, want))
		fail_msg("'%s' does not contain '%s'", s, want);
}

/* The store holds the last known good A (the scenario's end state); its LKG loads. */
static void assert_lkg_is_a(const char *dir)
{
	struct rf_store *st = NULL;
	struct rf_diag d = {0};
	uint8_t ha[RF_GUARD_HASH_LEN], *p;
	size_t n;
	int r = rf_store_open(dir, NULL, &st, &d);

	if (r < 0)
		fail_msg("open %s: %s (%s)", dir, rf_strerror(r), d.first);
	rf_sha256(PACK_A, sizeof(PACK_A), ha);
	assert_int_equal(rf_store_guard(st)->mode, RF_GUARD_MODE_LKG);
	assert_memory_equal(rf_store_guard(st)->lkg, ha, sizeof(ha));
	assert_int_equal(rf_store_pack_read(st, ha, &p, &n), 0);
	free(p);
	assert_int_equal(rf_store_check(st, &d), 0);
	rf_store_free(st);
}

/* Issue 16: a state.json that is a directory gave "unknown error"; a packs/ that is a file
 * opened, and the agent then lost its last known good (every load failed). Now both are named
 * with their path and what is wrong, the store refuses to open, and nothing in it changes. */
static void test_wrong_kinds_are_named_and_change_nothing(void **unused)
{
	char dir[256], packs[512], moved[512], state[512], bad[512], file[512];
	struct rf_store *st = NULL;
	struct rf_diag d = {0};
	char *before, *after;
	FILE *fp;

	new_dir(dir, sizeof(dir));
	assert_int_equal(scenario(dir, NULL), 0);
	assert_lkg_is_a(dir);
	before = read_state_text(dir);
	assert_non_null(before);

	/* packs/ is a file */
	snprintf(packs, sizeof(packs), "%s/packs", dir);
	snprintf(moved, sizeof(moved), "%s/packs.moved", dir);
	assert_int_equal(rename(packs, moved), 0);
	fp = fopen(packs, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(rf_store_open_reset(dir, NULL, &st, &d), -ENOTDIR);
	assert_null(st);
	assert_contains(d.first, packs);
	assert_contains(d.first, "is a file, not a directory");
	after = read_state_text(dir);
	assert_non_null(after);
	assert_string_equal(after, before); /* the last known good is still recorded */
	free(after);
	/* status still reads it */
	assert_int_equal(rf_store_open_readonly(dir, &st, &d), 0);
	assert_int_equal(rf_store_guard(st)->mode, RF_GUARD_MODE_LKG);
	rf_store_free(st);
	st = NULL;
	/* the operator moves it away: the last known good is there and loads */
	assert_int_equal(unlink(packs), 0);
	assert_int_equal(rename(moved, packs), 0);
	assert_lkg_is_a(dir);

	/* state.json is a directory */
	free(before);
	before = read_state_text(dir);
	assert_non_null(before);
	snprintf(state, sizeof(state), "%s/state.json", dir);
	snprintf(moved, sizeof(moved), "%s/state.json.moved", dir);
	snprintf(bad, sizeof(bad), "%s/state.json.bad", dir);
	assert_int_equal(rename(state, moved), 0);
	assert_int_equal(mkdir(state, 0700), 0);
	memset(&d, 0, sizeof(d));
	assert_int_equal(rf_store_open_reset(dir, NULL, &st, &d), -EISDIR);
	assert_null(st);
	assert_contains(d.first, state);
	assert_contains(d.first, "is a directory, not a file");
	assert_int_equal(access(bad, F_OK), -1); /* not "reset" over it */
	memset(&d, 0, sizeof(d));
	assert_int_equal(rf_store_open_readonly(dir, &st, &d), -EISDIR);
	assert_contains(d.first, "is a directory, not a file");
	assert_int_equal(rmdir(state), 0);
	assert_int_equal(rename(moved, state), 0);
	after = read_state_text(dir);
	assert_string_equal(after, before);
	free(after);
	free(before);
	assert_lkg_is_a(dir);
	rm_rf(dir);

	/* the store directory itself is a file */
	new_dir(file, sizeof(file));
	fp = fopen(file, "w");
	assert_non_null(fp);
	fclose(fp);
	memset(&d, 0, sizeof(d));
	assert_int_equal(rf_store_open(file, NULL, &st, &d), -ENOTDIR);
	assert_contains(d.first, "is a file, not a directory");
	assert_int_equal(unlink(file), 0);
}

static void test_limits(void **unused)
{
	char dir[256];
	struct rf_store *st = NULL;
	uint8_t h[RF_GUARD_HASH_LEN] = {0};
	char longname[RF_STORE_TARGET_MAX + 2];

	new_dir(dir, sizeof(dir));
	assert_int_equal(rf_store_open(dir, NULL, &st, NULL), 0);
	for (unsigned i = 0; i < RF_AGENT_QUARANTINE_MAX + 5; i++) {
		h[0] = (uint8_t)i;
		h[1] = (uint8_t)(i >> 8);
		assert_int_equal(rf_store_quarantine_add(st, h, "crash-loop", i), 0);
	}
	assert_int_equal(rf_store_quarantine_count(st), RF_AGENT_QUARANTINE_MAX);
	assert_int_equal(rf_store_quarantine_at(st, 0)->time, 5); /* oldest dropped */
	for (unsigned i = 0; i < RF_AGENT_OUTBOX_MAX + 3; i++)
		assert_int_equal(rf_store_report_add(st, "crashed", NULL, NULL, NULL, i, NULL), 0);
	assert_int_equal(rf_store_report_count(st), RF_AGENT_OUTBOX_MAX);
	assert_int_equal(rf_store_report_done(st, 999999), -ENOENT);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(rf_store_pack_put(st, (const uint8_t *)"x", 1, longname, NULL), -EINVAL);
	assert_int_equal(rf_store_set_device_id(st, longname), -EINVAL);
	assert_int_equal(rf_store_commit(st), 0);
	rf_store_free(st);
	assert_int_equal(rf_store_open(dir, NULL, &st, NULL), 0);
	assert_int_equal(rf_store_quarantine_count(st), RF_AGENT_QUARANTINE_MAX);
	rf_store_free(st);
	rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_and_reopen),
	    cmocka_unit_test(test_gc_removes_matcher_cache),
	    cmocka_unit_test(test_corruption_is_detected),
	    cmocka_unit_test(test_wrong_kinds_are_named_and_change_nothing),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_kill_at_every_step),
	    cmocka_unit_test(test_fail_at_every_step),
	    cmocka_unit_test(test_kill_at_random_points),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	for (unsigned i = 0; i < recording.nsnap; i++)
		free(recording.snap[i]);
	return r;
}
