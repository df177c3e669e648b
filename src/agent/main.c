/*
 * ringfence-agent: the endpoint agent (docs/agent.md).
 *
 *   run       the supervisor: guard + store, the evaluation worker, check-ins
 *   status    what the store says (current, last known good, trial attempts, quarantine, safe)
 *   manifest  the agent manifest of this build
 *
 * The supervisor never loads content itself: packs are verified in a short-lived child bounded
 * in time and memory (verifier.c) and evaluated in the worker child (worker.c), so content can
 * neither kill nor stall the supervisor and its update channel (P5). Every decision about what
 * runs is the guard's (guard.c); every guard step is made durable by rf_store_apply BEFORE the
 * load it asks for (write-ahead, P4/P8).
 * Content arrives only through the TUF client (P9) and is checked against the signed schedule
 * (P6) and this build's manifest (P1) before the guard ever sees it.
 */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "agent/checkin.h"
#include "agent/guard.h"
#include "agent/refused.h"
#include "agent/store.h"
#include "agent/verifier.h"
#include "agent/worker.h"
#include "common/http.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/util.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"
#include "rollout/rollout.h"
#include "trust/tuf.h"

#ifndef RF_VERSION
#define RF_VERSION "0.0.0"
#endif

struct opts {
	const char *server, *store, *ring, *events, *alerts, *device_id, *enroll_token, *tuf_root,
	    *repo_url;
	uint32_t poll;
	struct rf_guard_config gcfg;
	struct rf_verifier_limits vlim;
	char vfault_hash[65]; /* RINGFENCE_FAULT_VERIFY=MODE:<sha256>: only that pack; "" all */
};

struct agent {
	struct opts o;
	struct rf_store *st;
	struct rf_agent_identity id;
	char device_id[RF_STORE_TARGET_MAX + 1];
	char ring[RF_STORE_TARGET_MAX + 1];
	char manifest_hash[65];
	char credential[RF_AGENT_CREDENTIAL_MAX + 1];
	uint64_t rng;
	/* check-in timing */
	uint32_t poll;
	unsigned failures;
	uint32_t retry_after_s; /* the last reply's Retry-After (0: none) */
	uint64_t next_checkin_ms;
	/* the worker */
	pid_t worker;
	int status_fd;
	char status_buf[1024];
	size_t status_len;
	bool worker_loaded;
	bool worker_local; /* the worker said its pack's file is unreadable or corrupt */
	bool local_next;   /* the next guard step's failure reports are the device's fault */
	uint8_t cur[32];
	bool has_cur;
	bool start_pending;
	uint64_t start_at_ms;
	uint8_t start_hash[32];
	uint64_t worker_events, worker_alerts;
	int events_fd, alerts_fd;
	bool events_follow;
	/* packs refused in this run (not re-downloaded at every check-in) */
	struct rf_refused refused;
	/* said once: a rollback order with nothing to go back to; the last "stay" reason */
	bool rollback_idle;
	char stay_reason[RF_AGENT_REASON_MAX + 1];
};

static volatile sig_atomic_t got_term;
static int sigpipe_w = -1;

static uint64_t now_ms(void)
{
	return rf_now_mono_ns() / 1000000u;
}

static uint64_t rnd(struct agent *ag)
{
	/* xorshift64*: jitter only, not security */
	ag->rng ^= ag->rng >> 12;
	ag->rng ^= ag->rng << 25;
	ag->rng ^= ag->rng >> 27;
	return ag->rng * 2685821657736338717ull;
}

/* A uniformly random value in [lo, hi) milliseconds. */
static uint64_t rnd_between(struct agent *ag, uint64_t lo, uint64_t hi)
{
	return hi <= lo ? lo : lo + rnd(ag) % (hi - lo);
}

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (sig == SIGTERM || sig == SIGINT)
		got_term = 1;
	if (sigpipe_w >= 0 && write(sigpipe_w, &c, 1) < 0) {
		/* full pipe: a wakeup is already pending */
	}
	errno = saved;
}

static void hex32(const uint8_t *h, char out[65])
{
	rf_hex_encode(h, 32, out);
}

/* ---- fault injection: kill at a store step (tests) ---------------------------------------- */

/* RINGFENCE_FAULT_KILL_AT_STEP=N: SIGKILL this process just before the N-th file-system call
 * of the store that changes something (docs/agent.md). The crash test walks N over every step
 * of a run. It bypasses no check: the call is simply never made. */
static unsigned long long kill_at_step, store_steps;

static void step_tick(void)
{
	store_steps++;
	if (kill_at_step && store_steps == kill_at_step)
		raise(SIGKILL);
}

static int k_open(void *ud, const char *p, int f, mode_t m)
{
	step_tick();
	return rf_store_ops_posix()->open(NULL, p, f, m);
}

static int k_write(void *ud, int fd, const void *p, size_t n)
{
	step_tick();
	return rf_store_ops_posix()->write(NULL, fd, p, n);
}

static int k_fsync(void *ud, int fd)
{
	step_tick();
	return rf_store_ops_posix()->fsync(NULL, fd);
}

static int k_close(void *ud, int fd)
{
	step_tick();
	return rf_store_ops_posix()->close(NULL, fd);
}

static int k_rename(void *ud, const char *a, const char *b)
{
	step_tick();
	return rf_store_ops_posix()->rename(NULL, a, b);
}

static int k_unlink(void *ud, const char *p)
{
	step_tick();
	return rf_store_ops_posix()->unlink(NULL, p);
}

static int k_mkdir(void *ud, const char *p, mode_t m)
{
	step_tick();
	return rf_store_ops_posix()->mkdir(NULL, p, m);
}

static int k_fsync_dir(void *ud, const char *p)
{
	step_tick();
	return rf_store_ops_posix()->fsync_dir(NULL, p);
}

static const struct rf_store_ops killing_ops = {
    .open = k_open,
    .write = k_write,
    .fsync = k_fsync,
    .close = k_close,
    .rename = k_rename,
    .unlink = k_unlink,
    .mkdir = k_mkdir,
    .fsync_dir = k_fsync_dir,
};

/* ---- HTTP -------------------------------------------------------------------------------- */

/* POST json to server+path with a bearer token. Returns the HTTP status (>0) and the body in
 * *ret (caller frees), or a negative errno when no HTTP answer came. */
static int http_post(struct agent *ag, const char *path, const char *token, const char *json,
		     uint8_t **ret, size_t *ret_len)
{
	char url[1024], auth[RF_AGENT_CREDENTIAL_MAX + 32];
	const char *const headers[] = {"Content-Type: application/json", auth, NULL};
	struct rf_http_request q = {
	    .url = url,
	    .headers = headers,
	    .body = json,
	    .body_len = strlen(json),
	    .max = RF_AGENT_REPLY_MAX,
	    .timeout_s = RF_AGENT_HTTP_TIMEOUT_S,
	    .connect_timeout_s = 10,
	};
	struct rf_http_reply rep;
	struct rf_diag d = {0};
	int r;

	if (snprintf(url, sizeof(url), "%s%s", ag->o.server, path) >= (int)sizeof(url))
		return -ENAMETOOLONG;
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token ? token : "");
	r = rf_http_fetch(&q, &rep, &d);
	if (r < 0) {
		rf_log_debug("POST %s: %s", url, d.first);
		return r == -E2BIG || r == -ENOMEM ? r : -EIO;
	}
	if (rep.retry_after_s)
		ag->retry_after_s = rep.retry_after_s;
	*ret = rep.body;
	*ret_len = rep.len;
	return (int)rep.status;
}

/* ---- the worker -------------------------------------------------------------------------- */

static void worker_stop(struct agent *ag)
{
	int status;

	ag->start_pending = false;
	if (ag->worker <= 0)
		return;
	kill(ag->worker, SIGTERM);
	for (unsigned i = 0; i < 200; i++) { /* 2 s, then SIGKILL */
		if (waitpid(ag->worker, &status, WNOHANG) == ag->worker)
			goto gone;
		usleep(10000);
	}
	kill(ag->worker, SIGKILL);
	waitpid(ag->worker, &status, 0);
gone:
	ag->worker = 0;
	if (ag->status_fd >= 0)
		close(ag->status_fd);
	ag->status_fd = -1;
	ag->status_len = 0;
	ag->worker_loaded = false;
}

static int worker_start(struct agent *ag, const uint8_t *hash)
{
	char hex[65], path[PATH_MAX];
	int p[2];
	pid_t pid;

	worker_stop(ag);
	hex32(hash, hex);
	snprintf(path, sizeof(path), "%s/packs/%s.rfp", rf_store_dir(ag->st), hex);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		struct rf_worker_args wa = {.pack_path = path,
					    .hash = hash,
					    .events_fd = ag->events_fd,
					    .events_follow = ag->events_follow,
					    .alerts_fd = ag->alerts_fd,
					    .status_fd = p[1]};
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the supervisor (store lock) */
		close(p[0]);
		rf__agent_worker_main(&wa);
	}
	close(p[1]);
	ag->worker = pid;
	ag->status_fd = p[0];
	ag->worker_loaded = false;
	ag->worker_events = ag->worker_alerts = 0;
	rf_log_info("worker %d: loading %s (%s)", (int)pid, hex, rf_store_pack_name(ag->st, hash));
	return 0;
}

/* ---- guard steps ------------------------------------------------------------------------- */

static void flush_reports(struct agent *ag);

static void log_action(struct agent *ag, const struct rf_guard_action *a)
{
	char hex[65];

	static const uint8_t zero[32];

	if (memcmp(a->hash, zero, 32) == 0)
		snprintf(hex, sizeof(hex), "(no content)");
	else
		hex32(a->hash, hex);
	switch (a->type) {
	case RF_GUARD_ACT_REPORT:
		if (a->report == RF_GUARD_REPORT_REJECTED)
			break; /* reject() logs it with the verifier's words */
		rf_log(a->report == RF_GUARD_REPORT_QUARANTINED ||
			       a->report == RF_GUARD_REPORT_CRASHED ||
			       a->report == RF_GUARD_REPORT_ROLLED_BACK ||
			       a->report == RF_GUARD_REPORT_REJECTED
			   ? RF_LOG_WARNING
			   : RF_LOG_INFO,
		       "report %s: %s %s (%s, attempt %u/%u)", rf_guard_report_name(a->report), hex,
		       rf_store_pack_name(ag->st, a->hash), rf_guard_reason_name(a->reason),
		       a->attempt, a->limit);
		break;
	case RF_GUARD_ACT_QUARANTINE:
		rf_log_warn("quarantine %s: %s", hex, rf_guard_reason_name(a->reason));
		break;
	case RF_GUARD_ACT_LOAD:
		rf_log_info("load %s %s (attempt %u/%u)", rf_guard_mode_name(a->mode), hex,
			    a->attempt, a->limit);
		break;
	case RF_GUARD_ACT_SAFE_MODE:
		rf_log_warn("safe mode: no content loaded; still checking in for a fix");
		break;
	default:
		break;
	}
}

/* Feed one event to the guard, make it durable, then do what it says. Exits the process if the
 * store cannot be written: loading without the write-ahead record would break P4. */
static void feed(struct agent *ag, enum rf_guard_event_type t, const uint8_t *hash, uint64_t events)
{
	struct rf_guard_state g = *rf_store_guard(ag->st);
	struct rf_guard_event ev = {.type = t, .now_ms = now_ms(), .events = events};
	struct rf_guard_actions acts;
	uint8_t cur[32];
	bool has_cur, intent = false;
	int r;

	if (hash)
		memcpy(ev.hash, hash, 32);
	r = rf_guard_step(&ag->o.gcfg, &g, &ev, &acts);
	if (r < 0) {
		rf_log_error("guard: %s: %s", rf_guard_event_name(t), rf_strerror(r));
		return;
	}
	for (unsigned i = 0; i < acts.n; i++) {
		log_action(ag, &acts.a[i]);
		if (acts.a[i].type == RF_GUARD_ACT_REPORT &&
		    acts.a[i].report == RF_GUARD_REPORT_INTENT)
			intent = true;
	}
	size_t nrep = rf_store_report_count(ag->st);
	r = rf_store_apply(ag->st, &g, &acts, rf_now_wall());
	if (r == 0)
		r = rf_store_set_guard(ag->st, &g); /* volatile fields (loaded, run time) too */
	if (r == 0 && ag->local_next) {
		/* The pack's file in the store is unreadable or corrupt (a bit flip on disk): the
		 * failure is the device's, not the content's (docs/protocol.md, Report cause). */
		for (size_t k = nrep; k < rf_store_report_count(ag->st); k++) {
			const struct rf_store_report *rp = rf_store_report_at(ag->st, k);
			if (strcmp(rp->event, "crashed") == 0 ||
			    strcmp(rp->event, "rolled_back") == 0 ||
			    strcmp(rp->event, "quarantined") == 0)
				(void)rf_store_report_cause(ag->st, rp->id, "local");
		}
		r = rf_store_commit(ag->st);
	}
	if (r < 0) {
		rf_log_error("store %s: cannot record the guard's state: %s; stopping (the last "
			     "committed state stays valid)",
			     rf_store_dir(ag->st), rf_strerror(r));
		worker_stop(ag);
		exit(1);
	}
	has_cur = rf_guard_current(&g, cur);
	if (has_cur != ag->has_cur || (has_cur && memcmp(cur, ag->cur, 32) != 0)) {
		rf_store_set_counters(ag->st, 0, 0); /* health belongs to the current content */
		memcpy(ag->cur, cur, 32);
		ag->has_cur = has_cur;
	}
	if (intent)
		flush_reports(ag); /* the server hears "intent" before the load (P7) */
	if (acts.n == 0)
		return;
	const struct rf_guard_action *last = &acts.a[acts.n - 1];
	if (last->type == RF_GUARD_ACT_LOAD) {
		worker_stop(ag);
		ag->start_pending = true;
		memcpy(ag->start_hash, last->hash, 32);
		/* a reload after a crash waits a little (doubling): a crash loop must not spin */
		ag->start_at_ms = now_ms();
		if (t == RF_GUARD_EV_CRASH || t == RF_GUARD_EV_LOAD_FAILED)
			ag->start_at_ms += (uint64_t)RF_AGENT_RESTART_DELAY_MS
					   << (last->attempt > 1 ? last->attempt - 1 : 0);
	} else if (last->type == RF_GUARD_ACT_SAFE_MODE) {
		worker_stop(ag);
	}
}

/* ---- reports and check-ins ---------------------------------------------------------------- */

static bool permanent_4xx(int status)
{
	return status >= 400 && status < 500 && status != 401 && status != 408 && status != 429;
}

static void flush_reports(struct agent *ag)
{
	bool changed = false;

	if (!ag->credential[0])
		return;
	while (rf_store_report_count(ag->st) > 0) {
		const struct rf_store_report *r = rf_store_report_at(ag->st, 0);
		uint64_t id = r->id;
		char *body = NULL;
		uint8_t *reply = NULL;
		size_t n;
		int s;

		if (rf_checkin_body_report(&ag->id, r, &body) < 0)
			break;
		s = http_post(ag, "/v1/report", ag->credential, body, &reply, &n);
		free(body);
		free(reply);
		if (s < 0 || s >= 500 || (s >= 400 && !permanent_4xx(s))) {
			rf_log_debug("report %llu not delivered (%d); kept", (unsigned long long)id,
				     s);
			break;
		}
		if (s >= 400)
			rf_log_warn("report %llu refused by the server (HTTP %d); dropped",
				    (unsigned long long)id, s);
		else
			rf_log_info("report %llu delivered: %s %s", (unsigned long long)id,
				    r->event, r->target);
		if (rf_store_report_done(ag->st, id) < 0)
			break;
		changed = true;
	}
	if (changed && rf_store_commit(ag->st) < 0)
		rf_log_warn("store: cannot record delivered reports (they may be sent again)");
}

static int enroll(struct agent *ag)
{
	struct rf_enroll_reply er;
	struct rf_diag d = {0};
	char *body = NULL;
	uint8_t *reply = NULL;
	size_t n;
	int s, r;

	if (!ag->o.enroll_token) {
		rf_log_error("not enrolled and no enrollment token (--enroll-token or "
			     "RINGFENCE_ENROLL_TOKEN)");
		return -ENOKEY;
	}
	if ((r = rf_checkin_body_enroll(&ag->id, &body)) < 0)
		return r;
	s = http_post(ag, "/v1/enroll", ag->o.enroll_token, body, &reply, &n);
	free(body);
	if (s != 201 && s != 200) {
		rf_log_warn("enroll: %s", s < 0 ? rf_strerror(s) : (const char *)reply);
		free(reply);
		return s < 0 ? s : -EACCES;
	}
	r = rf_checkin_enroll_parse(reply, n, &er, &d);
	free(reply);
	if (r < 0) {
		rf_log_warn("enroll: %s", d.first);
		return r;
	}
	if ((r = rf_store_credential_set(ag->st, er.credential)) < 0 ||
	    (r = rf_store_set_device_id(ag->st, er.device_id)) < 0 ||
	    (er.ring[0] && (r = rf_store_set_ring(ag->st, er.ring)) < 0) ||
	    (r = rf_store_commit(ag->st)) < 0) {
		rf_log_error("store: cannot save the credential: %s", rf_strerror(r));
		return r;
	}
	snprintf(ag->credential, sizeof(ag->credential), "%s", er.credential);
	snprintf(ag->device_id, sizeof(ag->device_id), "%s", er.device_id);
	if (er.ring[0])
		snprintf(ag->ring, sizeof(ag->ring), "%s", er.ring);
	if (er.poll_interval)
		ag->poll = er.poll_interval;
	rf_log_notice("enrolled as %s (ring %s)", ag->device_id, ag->ring[0] ? ag->ring : "?");
	return 0;
}

/* cause: "content" (the pack fails this agent's checks) or "transit" (delivery: TUF metadata,
 * signatures, a hash or a download that does not match), so a bad mirror never halts a good
 * release (docs/protocol.md, Report). */
static void reject(struct agent *ag, const uint8_t *h, const char *target, const char *why,
		   const char *cause)
{
	uint64_t rid;
	char hex[65];
	size_t n;

	hex32(h, hex);
	rf_log_warn("rejected %s %s: %s", target, hex, why);
	rf_refused_add(&ag->refused, h);
	feed(ag, RF_GUARD_EV_REJECTED, h, 0);
	/* the guard queued "rejected" with its reason class: replace it with the precise words */
	n = rf_store_report_count(ag->st);
	if (n > 0) {
		const struct rf_store_report *last = rf_store_report_at(ag->st, n - 1);
		if (strcmp(last->event, "rejected") == 0 && last->has_hash &&
		    memcmp(last->hash, h, 32) == 0 && rf_store_report_done(ag->st, last->id) < 0)
			rf_log_debug("report queue changed under us");
	}
	if (rf_store_report_add(ag->st, "rejected", h, target, why, rf_now_wall(), &rid) < 0 ||
	    rf_store_report_cause(ag->st, rid, cause) < 0 || rf_store_commit(ag->st) < 0)
		rf_log_warn("store: cannot record the rejection report");
}

/* Fetch a release through TUF, check schedule, quarantine and manifest; hand it to the guard. */
static void take_release(struct agent *ag, const struct rf_checkin_release *rel)
{
	struct rf_tuf_client_opts to = {0};
	struct rf_tuf_client *tc = NULL;
	struct rf_tuf_target *t = NULL;
	struct rf_diag d = {0};
	char mdir[PATH_MAX], murl[1024], turl[1024], ddir[PATH_MAX], hex[65], why[512];
	char *file = NULL;
	uint8_t *p = NULL, h[32];
	size_t n = 0;
	int r;

	hex32(rel->sha256, hex);
	if (rf_refused_has(&ag->refused, rel->sha256))
		return;
	if (rf_store_is_quarantined(ag->st, rel->sha256)) {
		reject(ag, rel->sha256, rel->target, "quarantined on this device", "content");
		return;
	}
	snprintf(mdir, sizeof(mdir), "%s/tuf", rf_store_dir(ag->st));
	snprintf(ddir, sizeof(ddir), "%s/downloads", rf_store_dir(ag->st));
	snprintf(murl, sizeof(murl), "%s/metadata/", ag->o.repo_url);
	snprintf(turl, sizeof(turl), "%s/targets/", ag->o.repo_url);
	to.metadata_dir = mdir;
	to.metadata_url = murl;
	to.target_base_url = turl;
	to.now = rf_now_wall();
	if ((r = rf_tuf_client_new(&to, &tc, &d)) < 0 || (r = rf_tuf_client_refresh(tc, &d)) < 0 ||
	    (r = rf_tuf_client_get_target(tc, rel->target, &t, &d)) < 0) {
		rf_log_warn("TUF: %s: %s (%s)", rel->target, rf_strerror(r), d.first);
		if (r == -EKEYREJECTED || r == -ESTALE || r == -EBADMSG)
			reject(ag, rel->sha256, rel->target, d.first[0] ? d.first : rf_strerror(r),
			       "transit");
		goto out;
	}
	if (strcmp(t->sha256, hex) != 0) {
		reject(ag, rel->sha256, rel->target, "the server's hash is not the signed one", "transit");
		goto out;
	}
	/* P6: the signed schedule must admit this device now, whatever the server says */
	{
		struct rf_rollout_schedule s;
		bool ok = false;
		int64_t now = rf_now_wall();

		if (!t->custom_json ||
		    rf_rollout_schedule_parse((const uint8_t *)t->custom_json,
					      strlen(t->custom_json), &s, &d) < 0) {
			reject(ag, rel->sha256, rel->target,
			       "no valid signed schedule in the target's metadata", "content");
			goto out;
		}
		uint32_t b = rf_rollout_bucket(s.bucket_key, ag->device_id, strlen(ag->device_id));
		if (ag->ring[0]) {
			ok = rf_rollout_schedule_admits(&s, ag->ring, b, now);
		} else {
			for (unsigned i = 0; i < s.nrings && !ok; i++)
				ok = rf_rollout_admit_time(&s, (int)i, b) <= now;
		}
		if (!ok) {
			rf_log_warn(
			    "offer of %s refused: the signed schedule does not admit this device "
			    "(ring %s, bucket %u) yet",
			    rel->target, ag->ring[0] ? ag->ring : "?", b);
			goto out; /* not a verdict on the pack: it may be taken later */
		}
	}
	if (rf_mkdir_p(ddir, 0700) < 0 ||
	    (r = rf_tuf_client_download_target(tc, t, ddir, &file, &d)) < 0) {
		rf_log_warn("TUF: download %s: %s (%s)", rel->target, rf_strerror(r), d.first);
		if (r == -EBADMSG || r == -E2BIG)
			reject(ag, rel->sha256, rel->target, d.first, "transit");
		goto out;
	}
	r = rf_file_read(file, RF_FILE_MAX, &p, &n);
	unlink(file);
	if (r < 0) {
		rf_log_warn("%s: %s", file, rf_strerror(r));
		goto out;
	}
	rf_sha256(p, n, h);
	if (memcmp(h, rel->sha256, 32) != 0) {
		reject(ag, rel->sha256, rel->target,
		       "downloaded bytes do not match the signed hash", "transit");
		goto out;
	}
	struct rf_verifier_limits vl = ag->o.vlim;
	if (ag->o.vfault_hash[0] && strcmp(ag->o.vfault_hash, hex) != 0)
		vl.fault = RF_VERIFIER_FAULT_NONE;
	r = rf_verifier_run(p, n, &vl, why, sizeof(why));
	if (r == -ENOEXEC) {
		reject(ag, h, rel->target, why, "content");
		goto out;
	}
	if (r < 0) {
		rf_log_warn("cannot run the verifier: %s", rf_strerror(r));
		goto out;
	}
	if ((r = rf_store_pack_put(ag->st, p, n, rel->target, NULL)) < 0 ||
	    (r = rf_store_report_add(ag->st, "installed", h, rel->target, "", rf_now_wall(),
				     NULL)) < 0) {
		rf_log_error("store: cannot save %s: %s", rel->target, rf_strerror(r));
		goto out;
	}
	rf_log_notice("installed %s %s (TUF-verified, manifest-verified)", rel->target, hex);
	feed(ag, RF_GUARD_EV_CANDIDATE, h, 0);
out:
	free(p);
	free(file);
	rf_tuf_target_free(t);
	rf_tuf_client_free(tc);
}

/* The server's rollback order. The guard abandons a trial for a distinct last known good, and
 * the release rollback_to names (if it is not what runs, nor refused here) is taken like an
 * install. With neither there is nothing to go back to (issue 10): the agent keeps running what
 * it runs (or its safe mode), keeps checking in and takes the fix when it is offered; it says
 * so once, not at every check-in that repeats the order. */
static void on_rollback(struct agent *ag, const struct rf_checkin_reply *rep)
{
	const struct rf_guard_state *g = rf_store_guard(ag->st);
	const char *why = rep->reason[0] ? rep->reason : "no reason given";
	uint8_t cur[32];
	char hex[65];
	bool has_cur = rf_guard_current(g, cur);
	bool to_lkg = g->mode == RF_GUARD_MODE_TRIAL && g->has_lkg && memcmp(g->lkg, g->trial, 32);
	bool to_named = rep->has_rollback_to &&
			!rf_refused_has(&ag->refused, rep->rollback_to.sha256) &&
			!(has_cur && memcmp(cur, rep->rollback_to.sha256, 32) == 0);

	if (!to_lkg && !to_named) {
		if (!ag->rollback_idle) {
			if (has_cur)
				hex32(cur, hex);
			rf_log_warn(
			    "server: roll back (%s), but there is nothing to go back to other "
			    "than what runs (%s%s%s): keeping it, checking in for a fix",
			    why,
			    has_cur ? rf_store_pack_name(ag->st, cur) : rf_guard_mode_name(g->mode),
			    has_cur ? " " : "", has_cur ? hex : "");
			ag->rollback_idle = true;
		}
		return;
	}
	ag->rollback_idle = false;
	rf_log_warn("server: roll back (%s) to %s", why,
		    to_lkg ? "the last known good" : rep->rollback_to.target);
	if (to_lkg)
		feed(ag, RF_GUARD_EV_ROLLBACK, NULL, 0);
	if (rep->has_rollback_to) {
		g = rf_store_guard(ag->st);
		if (!(rf_guard_current(g, cur) && memcmp(cur, rep->rollback_to.sha256, 32) == 0))
			take_release(ag, &rep->rollback_to);
	}
}

static void checkin(struct agent *ag)
{
	struct rf_checkin_reply rep;
	struct rf_diag d = {0};
	char *body = NULL;
	uint8_t *reply = NULL;
	size_t n;
	int s, r;
	uint8_t cur[32];
	const struct rf_guard_state *g;
	uint64_t wait;

	ag->retry_after_s = 0;
	if (!ag->credential[0] && enroll(ag) < 0)
		goto failed;
	flush_reports(ag);
	if ((r = rf_checkin_body_checkin(&ag->id, ag->st, &body)) < 0) {
		rf_log_error("check-in body: %s", rf_strerror(r));
		goto failed;
	}
	s = http_post(ag, "/v1/checkin", ag->credential, body, &reply, &n);
	free(body);
	if (s != 200) {
		rf_log_warn("check-in: %s", s < 0 ? rf_strerror(s) : "server refused");
		if (s == 401) { /* credential revoked: enroll again next time */
			ag->credential[0] = 0;
		}
		free(reply);
		goto failed;
	}
	r = rf_checkin_reply_parse(reply, n, &rep, &d);
	free(reply);
	if (r < 0) {
		rf_log_warn("check-in reply: %s", d.first);
		goto failed;
	}
	ag->failures = 0;
	if (rep.poll_interval)
		ag->poll = rep.poll_interval;
	g = rf_store_guard(ag->st);
	bool has_cur = rf_guard_current(g, cur);
	if (rep.action != RF_CHECKIN_ROLLBACK)
		ag->rollback_idle = false;
	if (rep.action != RF_CHECKIN_STAY)
		ag->stay_reason[0] = 0;
	switch (rep.action) {
	case RF_CHECKIN_INSTALL:
		if (!(has_cur && memcmp(cur, rep.release.sha256, 32) == 0))
			take_release(ag, &rep.release);
		break;
	case RF_CHECKIN_ROLLBACK:
		on_rollback(ag, &rep);
		break;
	default: {
		/* said once per reason: "waiting-for-fix" repeats at every check-in */
		const char *why = rep.reason[0] ? rep.reason : "no reason given";
		if (strcmp(ag->stay_reason, why) != 0) {
			rf_log_info("server: stay (%s)", why);
			snprintf(ag->stay_reason, sizeof(ag->stay_reason), "%s", why);
		}
		break;
	}
	}
	flush_reports(ag);
	ag->next_checkin_ms = now_ms() + rf_checkin_delay_ms(ag->poll, rnd(ag));
	return;
failed:
	/* randomized exponential backoff (rf_checkin_backoff_ms) */
	wait = rf_checkin_backoff_ms(ag->failures, ag->poll, rnd(ag));
	/* A server that said when to come back (503 Retry-After: its database is away) is not
	 * asked again sooner; the backoff still grows while it keeps failing. */
	if (wait < (uint64_t)ag->retry_after_s * 1000) {
		wait = (uint64_t)ag->retry_after_s * 1000;
		rf_log_info("server asked to retry after %u s", ag->retry_after_s);
	}
	ag->next_checkin_ms = now_ms() + wait;
	ag->failures++;
	rf_log_info("next check-in in %llu ms (failure %u)",
		    (unsigned long long)(ag->next_checkin_ms - now_ms()), ag->failures);
}

/* ---- worker status lines ------------------------------------------------------------------ */

static void worker_line(struct agent *ag, char *line)
{
	if (strcmp(line, "loaded") == 0) {
		ag->worker_loaded = true;
		rf_log_info("worker %d: loaded", (int)ag->worker);
		feed(ag, RF_GUARD_EV_LOADED, NULL, 0);
	} else if (strncmp(line, "stats ", 6) == 0) {
		char *sp = strchr(line + 6, ' ');
		uint64_t e, a;
		if (!sp)
			return;
		*sp = 0;
		if (rf_parse_u64(line + 6, &e) < 0 || rf_parse_u64(sp + 1, &a) < 0 ||
		    e < ag->worker_events || a < ag->worker_alerts)
			return;
		uint64_t de = e - ag->worker_events, da = a - ag->worker_alerts, te, ta;
		ag->worker_events = e;
		ag->worker_alerts = a;
		rf_store_counters(ag->st, &te, &ta);
		rf_store_set_counters(ag->st, te + de, ta + da);
		feed(ag, RF_GUARD_EV_TICK, NULL, de);
	} else if (strncmp(line, "load-failed", 11) == 0) {
		rf_log_error("worker %d: %s", (int)ag->worker, line);
		if (strncmp(line, "load-failed-local", 17) == 0)
			ag->worker_local = true;
	}
}

static void worker_read(struct agent *ag)
{
	ssize_t n = read(ag->status_fd, ag->status_buf + ag->status_len,
			 sizeof(ag->status_buf) - 1 - ag->status_len);
	char *nl;

	if (n <= 0)
		return;
	ag->status_len += (size_t)n;
	ag->status_buf[ag->status_len] = 0;
	while ((nl = memchr(ag->status_buf, '\n', ag->status_len))) {
		*nl = 0;
		worker_line(ag, ag->status_buf);
		if (ag->status_fd < 0)
			return; /* the line made us stop the worker */
		size_t used = (size_t)(nl + 1 - ag->status_buf);
		memmove(ag->status_buf, nl + 1, ag->status_len - used);
		ag->status_len -= used;
	}
	if (ag->status_len == sizeof(ag->status_buf) - 1)
		ag->status_len = 0; /* a line too long: drop it */
}

static void reap(struct agent *ag)
{
	int status;

	if (ag->worker <= 0 || waitpid(ag->worker, &status, WNOHANG) != ag->worker)
		return;
	/* drain what it said before dying (e.g. "loaded") */
	if (ag->status_fd >= 0) {
		worker_read(ag);
		close(ag->status_fd);
		ag->status_fd = -1;
	}
	if (WIFSIGNALED(status))
		rf_log_warn("worker %d died: signal %d", (int)ag->worker, WTERMSIG(status));
	else
		rf_log_warn("worker %d exited with status %d", (int)ag->worker,
			    WEXITSTATUS(status));
	ag->worker = 0;
	ag->status_len = 0;
	ag->local_next = ag->worker_local;
	ag->worker_local = false;
	feed(ag, ag->worker_loaded ? RF_GUARD_EV_CRASH : RF_GUARD_EV_LOAD_FAILED, NULL, 0);
	ag->local_next = false;
	ag->worker_loaded = false;
}

/* ---- run ---------------------------------------------------------------------------------- */

static void usage_run(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringfence-agent run --server URL [--store DIR] [--ring NAME]\n"
	    "                           [--events SOCKET|FILE|-] [--alerts FILE|-] [options]\n"
	    "\n"
	    "Run the agent: check in with the server, take releases through TUF, run content on\n"
	    "trial under the crash-loop guard, evaluate events in a supervised worker.\n"
	    "\n"
	    "  --server URL          ringfenced base URL (e.g. http://127.0.0.1:8440)\n"
	    "  --store DIR           durable store (default " RF_STORE_DIR_DEFAULT ")\n"
	    "  --ring NAME           ring to ask for at enrollment\n"
	    "  --events SRC          JSON event lines: FILE (followed as it grows), a FIFO, '-' "
	    "for\n"
	    "                        stdin, or unix:PATH to listen on a unix stream socket\n"
	    "  --alerts DST          alerts as JSON lines: FILE (appended) or '-' for stdout\n"
	    "  --device-id ID        device id (default: the store's, else /etc/machine-id)\n"
	    "  --enroll-token TOKEN  tenant enrollment token (or env RINGFENCE_ENROLL_TOKEN)\n"
	    "  --tuf-root FILE       trusted TUF root.json, installed on first start\n"
	    "  --repo-url URL        TUF repository base (default SERVER/repo)\n"
	    "  --poll SECONDS        check-in interval until the server sets one (default 300)\n"
	    "  --attempts N          loads a pack gets without surviving probation (default 3)\n"
	    "  --probation SECONDS   run time a pack must survive (default 600)\n"
	    "  --probation-events N  events it must evaluate (default 1000)\n"
	    "  -v, --verbose         debug logging\n"
	    "\n"
	    "Fault injection (tests, demo; see docs/agent.md):\n"
	    "  RINGFENCE_FAULT_CRASH_ON_LOAD=<sha256>         kill the whole agent right after\n"
	    "                                                 that pack loads\n"
	    "  RINGFENCE_FAULT_WORKER_CRASH_ON_LOAD=<sha256>  kill only the worker\n"
	    "  RINGFENCE_FAULT_KILL_AT_STEP=N                 kill the agent before its N-th\n"
	    "                                                 durable store step\n"
	    "  RINGFENCE_FAULT_VERIFY=MODE[:<sha256>]         the verifier child hangs, spins,\n"
	    "                                                 eats memory or crashes (hang, spin,\n"
	    "                                                 oom, crash) instead of verifying\n");
}

static int parse_uint_opt(const char *name, const char *v, uint64_t max, uint64_t *ret)
{
	uint64_t x;

	if (rf_parse_u64(v, &x) < 0 || x > max) {
		fprintf(stderr, "ringfence-agent: %s: '%s' is not a number in 0..%llu\n", name, v,
			(unsigned long long)max);
		return -EINVAL;
	}
	*ret = x;
	return 0;
}

static int open_events(struct agent *ag)
{
	const char *e = ag->o.events;
	struct stat sb;

	ag->events_fd = -1;
	if (!e)
		return 0;
	if (strcmp(e, "-") == 0) {
		ag->events_fd = dup(0);
		return ag->events_fd < 0 ? -errno : 0;
	}
	if (strncmp(e, "unix:", 5) == 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int fd;
		if (strlen(e + 5) >= sizeof(sa.sun_path))
			return -ENAMETOOLONG;
		strncpy(sa.sun_path, e + 5, sizeof(sa.sun_path) - 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		unlink(sa.sun_path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
			int r = -errno;
			close(fd);
			return r;
		}
		ag->events_fd = fd;
		return 0;
	}
	/* a FIFO is opened read-write so it never reports end of input between producers */
	if (stat(e, &sb) == 0 && S_ISFIFO(sb.st_mode))
		ag->events_fd = open(e, O_RDWR | O_CLOEXEC);
	else {
		ag->events_fd = open(e, O_RDONLY | O_CLOEXEC);
		ag->events_follow = true;
	}
	return ag->events_fd < 0 ? -errno : 0;
}

/* RINGFENCE_FAULT_VERIFY=MODE[:SHA256] (docs/agent.md, tests only): the verifier child plays
 * MODE (hang, spin, oom, crash) instead of verifying, for every pack or only the one with that
 * hash. It can only make a pack rejected, never accepted. */
static int parse_verify_fault(struct opts *o, const char *v)
{
	char mode[16];
	const char *colon = strchr(v, ':');
	size_t ml = colon ? (size_t)(colon - v) : strlen(v);

	if (ml >= sizeof(mode))
		goto bad;
	memcpy(mode, v, ml);
	mode[ml] = 0;
	if (rf_verifier_fault_parse(mode, &o->vlim.fault) < 0)
		goto bad;
	if (colon) {
		uint8_t h[32];
		if (strlen(colon + 1) != 64 || rf_hex_decode(colon + 1, 64, h, sizeof(h)) < 0)
			goto bad;
		hex32(h, o->vfault_hash);
	}
	rf_log_warn("fault injection: the verifier will %s instead of verifying %s%s", mode,
		    colon ? "pack " : "any pack", colon ? o->vfault_hash : "");
	return 0;
bad:
	fprintf(stderr,
		"ringfence-agent: RINGFENCE_FAULT_VERIFY='%s': want hang, spin, oom or crash, "
		"optionally followed by :SHA256\n",
		v);
	return -EINVAL;
}

static void pick_device_id(struct agent *ag)
{
	uint8_t *buf = NULL;
	size_t n = 0;

	if (ag->o.device_id)
		snprintf(ag->device_id, sizeof(ag->device_id), "%s", ag->o.device_id);
	else if (rf_store_device_id(ag->st)[0])
		snprintf(ag->device_id, sizeof(ag->device_id), "%s", rf_store_device_id(ag->st));
	else if (rf_file_read("/etc/machine-id", 256, &buf, &n) == 0) {
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
			n--;
		snprintf(ag->device_id, sizeof(ag->device_id), "%.*s", (int)n, (const char *)buf);
	}
	free(buf);
	if (!ag->device_id[0] && gethostname(ag->device_id, sizeof(ag->device_id) - 1) < 0)
		ag->device_id[0] = 0;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"server", required_argument, NULL, 's'},
	    {"store", required_argument, NULL, 'd'},
	    {"ring", required_argument, NULL, 'r'},
	    {"events", required_argument, NULL, 'e'},
	    {"alerts", required_argument, NULL, 'a'},
	    {"device-id", required_argument, NULL, 'i'},
	    {"enroll-token", required_argument, NULL, 't'},
	    {"tuf-root", required_argument, NULL, 'R'},
	    {"repo-url", required_argument, NULL, 'u'},
	    {"poll", required_argument, NULL, 'p'},
	    {"attempts", required_argument, NULL, 'n'},
	    {"probation", required_argument, NULL, 'P'},
	    {"probation-events", required_argument, NULL, 'E'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct agent ag;
	struct rf_diag d = {0};
	char repo_url[1024];
	uint64_t v;
	int c, r;

	memset(&ag, 0, sizeof(ag));
	rf_refused_init(&ag.refused);
	ag.o.store = RF_STORE_DIR_DEFAULT;
	ag.o.poll = RF_AGENT_POLL_DEFAULT_S;
	ag.o.enroll_token = getenv("RINGFENCE_ENROLL_TOKEN");
	rf_guard_config_default(&ag.o.gcfg);
	rf_verifier_limits_default(&ag.o.vlim);
	ag.status_fd = -1;
	optind = 1;
	while ((c = rf_getopt(argc, argv, "vh", lo, "ringfence-agent run")) != -1) {
		switch (c) {
		case 's':
			ag.o.server = optarg;
			break;
		case 'd':
			ag.o.store = optarg;
			break;
		case 'r':
			ag.o.ring = optarg;
			break;
		case 'e':
			ag.o.events = optarg;
			break;
		case 'a':
			ag.o.alerts = optarg;
			break;
		case 'i':
			ag.o.device_id = optarg;
			break;
		case 't':
			ag.o.enroll_token = optarg;
			break;
		case 'R':
			ag.o.tuf_root = optarg;
			break;
		case 'u':
			ag.o.repo_url = optarg;
			break;
		case 'p':
			if (parse_uint_opt("--poll", optarg, RF_AGENT_POLL_MAX_S, &v) < 0 || v == 0)
				return 2;
			ag.o.poll = (uint32_t)v;
			break;
		case 'n':
			if (parse_uint_opt("--attempts", optarg, 255, &v) < 0 || v == 0)
				return 2;
			ag.o.gcfg.attempt_limit = (uint8_t)v;
			break;
		case 'P':
			if (parse_uint_opt("--probation", optarg, UINT32_MAX, &v) < 0)
				return 2;
			ag.o.gcfg.probation_ms = v * 1000;
			break;
		case 'E':
			if (parse_uint_opt("--probation-events", optarg, UINT64_MAX, &v) < 0)
				return 2;
			ag.o.gcfg.probation_events = v;
			break;
		case 'v':
			rf_log_init("ringfence-agent", RF_LOG_DEBUG);
			break;
		case 'h':
			usage_run(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc || !ag.o.server) {
		fprintf(stderr, "ringfence-agent run: %s\n\n",
			!ag.o.server ? "--server URL is required" : "unexpected argument");
		usage_run(stderr);
		return 2;
	}
	if (strncmp(ag.o.server, "http://", 7) != 0 && strncmp(ag.o.server, "https://", 8) != 0) {
		fprintf(stderr,
			"ringfence-agent run: --server must be an http:// or https:// URL\n");
		return 2;
	}
	if (!ag.o.repo_url) {
		snprintf(repo_url, sizeof(repo_url), "%s/repo", ag.o.server);
		ag.o.repo_url = repo_url;
	}
	ag.poll = ag.o.poll;
	if (getrandom(&ag.rng, sizeof(ag.rng), 0) != sizeof(ag.rng) || ag.rng == 0)
		ag.rng = rf_now_mono_ns() | 1;

	if (getenv("RINGFENCE_FAULT_KILL_AT_STEP") &&
	    rf_parse_u64(getenv("RINGFENCE_FAULT_KILL_AT_STEP"), &v) == 0 && v > 0) {
		kill_at_step = v;
		rf_log_warn("fault injection: killing this process at store step %llu",
			    kill_at_step);
	}
	const char *vf = getenv("RINGFENCE_FAULT_VERIFY"); /* empty: unset, like the others */
	if (vf && *vf && parse_verify_fault(&ag.o, vf) < 0)
		return 2;
	/* the store: another agent may still be dying (its worker holds the lock for a moment) */
	for (unsigned i = 0;; i++) {
		memset(&d, 0, sizeof(d));
		r = rf_store_open_reset(ag.o.store, kill_at_step ? &killing_ops : NULL, &ag.st, &d);
		if (r != -EBUSY || i == 50)
			break;
		usleep(100000);
	}
	if (r < 0) {
		rf_log_error("store %s: %s", ag.o.store, d.first[0] ? d.first : rf_strerror(r));
		return 1;
	}
	if (d.count)
		rf_log_warn("store %s: %s (kept as state.json.bad; starting empty)", ag.o.store,
			    d.first);
	{
		char root_path[PATH_MAX];
		snprintf(root_path, sizeof(root_path), "%s/tuf/root.json", rf_store_dir(ag.st));
		if (access(root_path, F_OK) != 0) {
			uint8_t *p = NULL;
			size_t n;
			struct rf_diag td = {0};
			if (!ag.o.tuf_root) {
				rf_log_error("no trusted TUF root in %s: pass --tuf-root FILE once",
					     root_path);
				rf_store_free(ag.st);
				return 1;
			}
			char tuf_dir[PATH_MAX];
			snprintf(tuf_dir, sizeof(tuf_dir), "%s/tuf", rf_store_dir(ag.st));
			if ((r = rf_file_read(ag.o.tuf_root, RF_FILE_MAX, &p, &n)) < 0 ||
			    (r = rf_tuf_client_init(tuf_dir, p, n, &td)) < 0) {
				rf_log_error("--tuf-root %s: %s %s", ag.o.tuf_root, rf_strerror(r),
					     td.first);
				free(p);
				rf_store_free(ag.st);
				return 1;
			}
			free(p);
		}
	}
	{
		char cred[RF_AGENT_CREDENTIAL_MAX + 1];
		if (rf_store_credential_get(ag.st, cred, sizeof(cred)) == 0)
			snprintf(ag.credential, sizeof(ag.credential), "%s", cred);
	}
	if (!ag.credential[0] && !ag.o.enroll_token) { /* would retry enrolling for ever */
		rf_log_error("not enrolled yet (%s holds no credential) and no enrollment token: "
			     "give --enroll-token TOKEN or RINGFENCE_ENROLL_TOKEN (`ringfence "
			     "tenant create` or `ringfence tenant token` prints one)",
			     ag.o.store);
		rf_store_free(ag.st);
		return 2;
	}
	pick_device_id(&ag);
	if (!rf_checkin_id_valid(ag.device_id, strlen(ag.device_id))) {
		rf_log_error("device id '%s' is not a valid identifier ([A-Za-z0-9._:/-], 1..128)",
			     ag.device_id);
		rf_store_free(ag.st);
		return 1;
	}
	/* the ring the server gave at enrollment wins over the one asked for */
	if (rf_store_ring(ag.st)[0])
		snprintf(ag.ring, sizeof(ag.ring), "%s", rf_store_ring(ag.st));
	else if (ag.o.ring)
		snprintf(ag.ring, sizeof(ag.ring), "%s", ag.o.ring);
	{
		size_t ml;
		const uint8_t *mb = rf_content_builtin_manifest(&ml);
		rf_sha256_hex(mb, ml, ag.manifest_hash);
	}
	ag.id = (struct rf_agent_identity){.device_id = ag.device_id,
					   .ring = ag.ring,
					   .agent_version = RF_VERSION,
					   .manifest_hash = ag.manifest_hash};
	if ((r = open_events(&ag)) < 0) {
		rf_log_error("--events %s: %s", ag.o.events, rf_strerror(r));
		rf_store_free(ag.st);
		return 1;
	}
	ag.alerts_fd = -1;
	if (ag.o.alerts) {
		ag.alerts_fd =
		    strcmp(ag.o.alerts, "-") == 0
			? dup(1)
			: open(ag.o.alerts, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (ag.alerts_fd < 0) {
			rf_log_error("--alerts %s: %s", ag.o.alerts, rf_strerror(-errno));
			rf_store_free(ag.st);
			return 1;
		}
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);

	int sp[2];
	if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) < 0) {
		rf_log_error("pipe: %s", rf_strerror(-errno));
		return 1;
	}
	sigpipe_w = sp[1];
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rf_log_notice("starting: device %s, store %s, server %s, manifest %.12s", ag.device_id,
		      rf_store_dir(ag.st), ag.o.server, ag.manifest_hash);
	ag.has_cur = rf_guard_current(rf_store_guard(ag.st), ag.cur);
	feed(&ag, RF_GUARD_EV_BOOT, NULL, 0);
	/* the first check-in soon, jittered so a fleet restarting together spreads out */
	ag.next_checkin_ms =
	    now_ms() + rnd_between(&ag, 0, (uint64_t)(ag.poll < 10 ? ag.poll : 10) * 500);

	while (!got_term) {
		struct pollfd pf[2];
		nfds_t n = 0;
		uint64_t t = now_ms(), wake = ag.next_checkin_ms;
		const struct rf_guard_state *g = rf_store_guard(ag.st);
		bool probation =
		    ag.worker_loaded && (g->mode == RF_GUARD_MODE_TRIAL ||
					 (g->mode == RF_GUARD_MODE_LKG && g->lkg_attempts > 0));

		if (ag.start_pending && ag.start_at_ms < wake)
			wake = ag.start_at_ms;
		if (probation && g->run_events >= ag.o.gcfg.probation_events) {
			/* the probation clock runs out even without new events */
			uint64_t due = g->run_since_ms + ag.o.gcfg.probation_ms;
			if (due < wake)
				wake = due;
		}
		pf[n++] = (struct pollfd){.fd = sp[0], .events = POLLIN};
		if (ag.status_fd >= 0)
			pf[n++] = (struct pollfd){.fd = ag.status_fd, .events = POLLIN};
		r = poll(pf, n, wake > t ? (int)(wake - t > 600000 ? 600000 : wake - t) : 0);
		if (r > 0 && (pf[0].revents & POLLIN)) {
			char buf[64];
			while (read(sp[0], buf, sizeof(buf)) > 0)
				;
		}
		if (got_term)
			break;
		if (ag.status_fd >= 0 && n > 1 && (pf[1].revents & (POLLIN | POLLHUP)))
			worker_read(&ag);
		reap(&ag);
		t = now_ms();
		if (probation && g->run_events >= ag.o.gcfg.probation_events &&
		    t >= g->run_since_ms + ag.o.gcfg.probation_ms)
			feed(&ag, RF_GUARD_EV_TICK, NULL, 0);
		if (ag.start_pending && t >= ag.start_at_ms) {
			ag.start_pending = false;
			if ((r = worker_start(&ag, ag.start_hash)) < 0) {
				rf_log_error("cannot start the worker: %s", rf_strerror(r));
				feed(&ag, RF_GUARD_EV_LOAD_FAILED, NULL, 0);
			}
		}
		if (t >= ag.next_checkin_ms)
			checkin(&ag);
	}
	rf_log_notice("stopping");
	if (kill_at_step)
		rf_log_notice("fault injection: %llu store steps in this run", store_steps);
	feed(&ag, RF_GUARD_EV_SHUTDOWN, NULL, 0);
	worker_stop(&ag);
	if (rf_store_commit(ag.st) < 0)
		rf_log_warn("store: final commit failed");
	rf_store_free(ag.st);
	curl_global_cleanup();
	return 0;
}

/* ---- status / manifest ---------------------------------------------------------------------- */

static void usage_status(FILE *f)
{
	fprintf(f, "usage: ringfence-agent status [--store DIR] [--json]\n\n"
		   "Show what the store holds: current pack, last known good, trial attempts,\n"
		   "quarantine (with reasons), safe mode, reports not yet delivered.\n");
}

static json_t *ref_json(const struct rf_store *st, const uint8_t *h, bool has)
{
	char hex[65];

	if (!has)
		return json_null();
	rf_hex_encode(h, 32, hex);
	return json_pack("{s:s, s:s}", "sha256", hex, "target", rf_store_pack_name(st, h));
}

static int cmd_status(int argc, char **argv)
{
	static const struct option lo[] = {{"store", required_argument, NULL, 'd'},
					   {"json", no_argument, NULL, 'j'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	const char *dir = RF_STORE_DIR_DEFAULT;
	bool as_json = false;
	struct rf_store *st = NULL;
	struct rf_diag d = {0};
	const struct rf_guard_state *g;
	uint8_t cur[32];
	json_t *q, *o;
	int c, r;

	optind = 1;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence-agent status")) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'j':
			as_json = true;
			break;
		case 'h':
			usage_status(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		usage_status(stderr);
		return 2;
	}
	r = rf_store_open_readonly(dir, &st, &d);
	if (r < 0) {
		fprintf(stderr, "ringfence-agent status: %s\n",
			d.first[0] ? d.first : rf_strerror(r));
		return 1;
	}
	g = rf_store_guard(st);
	q = json_array();
	for (size_t i = 0; i < rf_store_quarantine_count(st); i++) {
		const struct rf_store_quarantine *e = rf_store_quarantine_at(st, i);
		char hex[65];
		rf_hex_encode(e->hash, 32, hex);
		json_array_append_new(q, json_pack("{s:s, s:s, s:I}", "sha256", hex, "reason",
						   e->reason, "time", (json_int_t)e->time));
	}
	bool has_cur = rf_guard_current(g, cur);
	o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:i, s:i, s:o, s:b, s:I, s:I, s:I}", "device_id",
		      rf_store_device_id(st), "mode", rf_guard_mode_name(g->mode), "current",
		      ref_json(st, cur, has_cur), "last_good", ref_json(st, g->lkg, g->has_lkg),
		      "trial", ref_json(st, g->trial, g->has_trial), "trial_attempts",
		      (int)g->trial_attempts, "last_good_attempts", (int)g->lkg_attempts,
		      "quarantine", q, "safe_mode", g->mode == RF_GUARD_MODE_SAFE, "crashes",
		      (json_int_t)g->crashes, "rollbacks", (json_int_t)g->rollbacks,
		      "reports_pending", (json_int_t)rf_store_report_count(st));
	if (as_json) {
		char *t = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (t)
			printf("%s\n", t);
		free(t);
	} else {
		char hex[65];
		printf("store:          %s\n", dir);
		printf("device:         %s\n",
		       rf_store_device_id(st)[0] ? rf_store_device_id(st) : "(not enrolled)");
		printf("mode:           %s%s\n", rf_guard_mode_name(g->mode),
		       g->mode == RF_GUARD_MODE_SAFE ? " (SAFE MODE: no content; still checking in)"
						     : "");
		if (has_cur) {
			rf_hex_encode(cur, 32, hex);
			printf("current:        %s %s\n", rf_store_pack_name(st, cur), hex);
		} else
			printf("current:        (none)\n");
		if (g->has_lkg) {
			rf_hex_encode(g->lkg, 32, hex);
			printf("last known good: %s %s\n", rf_store_pack_name(st, g->lkg), hex);
		} else
			printf("last known good: (none)\n");
		if (g->has_trial) {
			rf_hex_encode(g->trial, 32, hex);
			printf("trial:          %s %s, attempt %u\n",
			       rf_store_pack_name(st, g->trial), hex, g->trial_attempts);
		}
		printf("quarantine:     %zu\n", rf_store_quarantine_count(st));
		for (size_t i = 0; i < rf_store_quarantine_count(st); i++) {
			const struct rf_store_quarantine *e = rf_store_quarantine_at(st, i);
			rf_hex_encode(e->hash, 32, hex);
			printf("  %s  %s\n", hex, e->reason);
		}
		printf("crashes:        %u, rollbacks: %u\n", g->crashes, g->rollbacks);
		printf("reports queued: %zu\n", rf_store_report_count(st));
	}
	json_decref(o);
	rf_store_free(st);
	return 0;
}

static int cmd_manifest(int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {0}};
	size_t n;
	const uint8_t *m;
	int c;

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence-agent manifest")) != -1) {
		if (c != 'h')
			return 2;
		printf("usage: ringfence-agent manifest\n\nPrint the agent manifest of this build: "
		       "the event "
		       "types and fields it supplies (packs are verified against it).\n");
		return 0;
	}
	if (optind < argc) {
		fprintf(stderr, "ringfence-agent manifest: unexpected argument '%s'\n",
			argv[optind]);
		return 2;
	}
	m = rf_content_builtin_manifest(&n);
	if (fwrite(m, 1, n, stdout) != n)
		return 1;
	if (n > 0 && m[n - 1] != '\n')
		putchar('\n');
	return 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringfence-agent COMMAND [ARGS...]\n\n"
	    "commands:\n"
	    "  run       run the agent (check-ins, content under the crash-loop guard)\n"
	    "  status    show the store: current, last known good, trial, quarantine, safe mode\n"
	    "  manifest  print the agent manifest of this build\n"
	    "\n'ringfence-agent COMMAND --help' shows a command's usage.\n");
}

int main(int argc, char **argv)
{
	rf_log_init("ringfence-agent", RF_LOG_INFO);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("ringfence-agent %s\n", RF_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "manifest"))
		return cmd_manifest(argc - 1, argv + 1);
	if (argv[1][0] == '-') {
		fprintf(stderr,
			"ringfence-agent: unknown option '%s' (try 'ringfence-agent --help')\n",
			argv[1]);
		return 2;
	}
	fprintf(stderr, "ringfence-agent: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
