/*
 * The ringfence-agent program's shared state and the seams between its files (docs/agent.md):
 *
 *   main.c        options, start-up (store, TUF root, identity), status and manifest commands
 *   supervisor.c  the loop: signals, the guard's steps, the worker child, its status lines
 *   release.c     the update channel: enrollment, check-ins, reports, taking a release (TUF,
 *                 signed schedule, verifier child) and rollback orders
 *   http.c        one POST to the server
 *   events.c      the event sources the worker reads (files, FIFOs, sockets, the kernel's
 *                 process connector and audit records through a source child, source.h)
 *   alerts.c      the --alerts destination: opened, and reopened after a rotation
 *   manifests.c   which embedded manifest the run verifies and loads packs against (follows
 *                 --events; --manifest names one)
 *
 * Everything here runs in the supervisor, which never loads content (P5). Internal to the
 * program: not a library API.
 */
#ifndef RF_AGENT_AGENT_H
#define RF_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/checkin.h"
#include "agent/guard.h"
#include "agent/manifests.h"
#include "agent/refused.h"
#include "agent/store.h"
#include "agent/verifier.h"
#include "common/util.h"
#include "ringfence/limits.h"

struct opts {
	const char *server, *store, *events, *alerts, *device_id, *enroll_token, *tuf_root,
	    *repo_url, *manifest;
	/* --ring or RINGFENCE_RING: the operator's ring, the one the signed schedule is checked
	 * against whatever a server says (P6); NULL: the server's ring is trusted */
	const char *ring;
	uint32_t poll;
	struct rf_guard_config gcfg;
	struct rf_verifier_limits vlim;
	char vfault_hash[65]; /* RINGFENCE_FAULT_VERIFY=MODE:<sha256>: only that pack; "" all */
};

struct agent {
	struct opts o;
	char server_url[1024], repo_url[1024]; /* o.server, o.repo_url without trailing slashes */
	struct rf_store *st;
	struct rf_agent_identity id;
	char device_id[RF_STORE_TARGET_MAX + 1];
	char ring[RF_STORE_TARGET_MAX + 1];
	const struct rf_agent_manifest *manifest; /* what packs are verified and loaded against */
	char manifest_hash[65];
	char credential[RF_AGENT_CREDENTIAL_MAX + 1];
	uint64_t rng;
	/* check-in timing */
	uint32_t poll;
	unsigned failures;
	uint32_t retry_after_s; /* the last reply's Retry-After (0: none) */
	char net_err[160];	/* why the last request got no HTTP answer (libcurl's words) */
	bool checked_in;	/* a check-in of this run was answered 200 */
	int exit_code;		/* set: the loop stops and the program exits with it */
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
	uint64_t worker_events, worker_alerts, worker_corr_dropped;
	/* event lines the worker dropped (malformed, over a limit): its count as last said, and
	 * the warning's rate limit (at most one per RF_AGENT_SOURCE_WARN_EVERY_MS) */
	uint64_t worker_bad, worker_warned_at_ms, worker_unwarned;
	uint64_t worker_alerts_lost, alerts_lost_warned_at_ms, alerts_lost_unwarned;
	/* events whose time field did not parse (correlations used arrival time): the worker's
	 * count as last said, and the warning's rate limit */
	uint64_t worker_time_unparsed, time_warned_at_ms, time_unwarned;
	/* what the correlations passed over (enum rf_store_count): the worker's counts as last
	 * said, those not yet warned about, and the warning's rate limit */
	uint64_t worker_counts[RF_STORE_COUNT_N], counts_unwarned[RF_STORE_COUNT_N];
	uint64_t counts_warned_at_ms;
	int events_fd, alerts_fd;
	/* --alerts FILE rotation (alerts.c): when to look next, the new file not yet passed to the
	 * worker, the rate limit of the warning that it cannot be opened */
	uint64_t alerts_check_at_ms, alerts_warned_at_ms;
	bool alerts_send_pending;
	bool events_follow;
	/* the event source child (--events proc|audit|proc,audit, events.c): it writes event lines into the pipe
	 * whose read end is events_fd, and its counters as lines on source_status_fd */
	pid_t source;
	int source_out_fd, source_status_fd;
	char source_buf[256];
	size_t source_len;
	uint64_t source_lost;	       /* this child's dropped + kernel_lost, as last said */
	uint64_t source_restart_at_ms; /* 0: no restart due */
	uint64_t source_warned_at_ms, source_unwarned;
	/* packs refused in this run (not re-downloaded at every check-in) */
	struct rf_refused refused;
	/* releases whose delivery failed: retried with backoff, never refused (refused.h) */
	struct rf_transit transit;
	/* said once: a rollback order with nothing to go back to; the last "stay" reason */
	bool rollback_idle;
	char stay_reason[RF_AGENT_REASON_MAX + 1];
};

static inline uint64_t now_ms(void)
{
	return rf_now_mono_ns() / 1000000u;
}

static inline uint64_t rnd(struct agent *ag)
{
	/* xorshift64*: jitter only, not security */
	ag->rng ^= ag->rng >> 12;
	ag->rng ^= ag->rng << 25;
	ag->rng ^= ag->rng >> 27;
	return ag->rng * 2685821657736338717ull;
}

/* A uniformly random value in [lo, hi) milliseconds. */
static inline uint64_t rnd_between(struct agent *ag, uint64_t lo, uint64_t hi)
{
	return hi <= lo ? lo : lo + rnd(ag) % (hi - lo);
}

static inline void hex32(const uint8_t *h, char out[65])
{
	rf_hex_encode(h, 32, out);
}

/* http.c: POST json to server+path with a bearer token. Returns the HTTP status (>0) and the
 * body in *ret (caller frees), or a negative errno when no HTTP answer came (its reason, e.g.
 * "Couldn't connect to server", then in ag->net_err). */
int rf__agent_http_post(struct agent *ag, const char *path, const char *token, const char *json,
			uint8_t **ret, size_t *ret_len);

/* supervisor.c: feed one event to the guard, make it durable, then do what it says. Exits the
 * process if the store cannot be written: loading without the write-ahead record would break
 * P4. */
void rf__agent_feed(struct agent *ag, enum rf_guard_event_type t, const uint8_t *hash,
		    uint64_t events);

/* supervisor.c: install the signal handlers, boot the guard and run the loop until SIGTERM or
 * SIGINT. Returns 0, or 1 if the loop could not start. rf__agent_shutdown then stops the worker
 * and makes the final state durable. */
int rf__agent_supervise(struct agent *ag);
void rf__agent_shutdown(struct agent *ag);

/* release.c: deliver queued reports; check in (enrolling first if needed) and act on the
 * reply, then schedule the next check-in. */
void rf__agent_flush_reports(struct agent *ag);
void rf__agent_checkin(struct agent *ag);

/* events.c: open --events (ag->o.events) into ag->events_fd; "proc" starts the source child.
 * Returns 0 or a negative errno; reterr may say why (unix:PATH whose path is taken: only a
 * stale socket is replaced). */
int rf__agent_events_open(struct agent *ag, struct rf_diag *reterr);
/* events.c, the source child: start it (again), read its counter lines into the store, notice
 * its death (a restart is then due at source_restart_at_ms), stop it. */
int rf__agent_source_start(struct agent *ag);
void rf__agent_source_read(struct agent *ag);
void rf__agent_source_reap(struct agent *ag);
void rf__agent_source_stop(struct agent *ag);

/* alerts.c: open --alerts (ag->o.alerts: FILE, or "-" for stdout) into ag->alerts_fd (0 or a
 * negative errno); look whether FILE was rotated (now: at once, e.g. at SIGHUP; else at most
 * every RF_AGENT_ALERTS_CHECK_MS) and if so reopen it and pass it to the worker
 * (rf__agent_alerts_send: SCM_RIGHTS over its status socket; -EAGAIN: tried again later). */
int rf__agent_alerts_open(struct agent *ag);
void rf__agent_alerts_check(struct agent *ag, bool now);
int rf__agent_alerts_send(struct agent *ag);

/* status.c: `ringfence-agent status`. Returns the exit code. */
int rf__agent_cmd_status(int argc, char **argv);

#endif
