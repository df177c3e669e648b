/*
 * Internals shared by the files of the server core (server.c: state, lookups, loading, dispatch,
 * tick; request.c; device.c, checkin.c, report.c: device API; admin.c: operator API; persist.c;
 * gates.c; web.c: dashboard, metrics, the TUF repository). Not a public interface: everything here
 * is guarded by rf_server.lock unless a field says otherwise.
 */
#ifndef RF_SERVER_INTERNAL_H
#define RF_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>

#include "ringfence/limits.h"
#include "rollout/rollout.h"
#include "server/server.h"
#include "server/store.h"

/*
 * The working set is sized for millions of devices (docs/server.md "Scale": at most about 200
 * bytes a device): times are unsigned 32-bit seconds (Unix time fits until 2106; 0 is "never"),
 * strings that many devices share (ring, agent version, manifest hash) are interned as 16-bit
 * indexes of s->strs, ids live in one arena (s->ids), per-release counts saturate.
 */

/* Per-device outcomes on the releases it took: the inputs of the gates (docs/design.md P7). */
#define RF__SRV_HIST 4

struct rf__srv_devrel {
	uint32_t release;    /* release id; 0 unused slot */
	uint32_t intent_at;  /* server time it took the release (intent, or first seen on it) */
	uint32_t healthy_at; /* server time it reported healthy; 0 not yet */
	uint32_t left_at;    /* server time it moved to another release; 0 still on it */
	/* Alerts on the release: the agent's count while it ran it, less the device's
	 * alerts_base (the count at a resume it stayed on the release across), saturating. */
	uint32_t alerts;
	uint8_t crashes, rollbacks, rejects; /* content failure reports on it, saturating at 255 */
	uint8_t lqo; /* bits 0-5: local failures (device or transit, never the content's;
			saturating at 63); bit 6: quarantined; bit 7: obeyed (left it because the
			server said so, a halt: not a failure) */
};
#define RF__SRV_LOCAL_MAX   63u
#define RF__SRV_QUARANTINED 0x40u
#define RF__SRV_OBEYED	    0x80u

enum {
	DEV_DIRTY = 1,	  /* state to flush */
	DEV_SEEN = 2,	  /* heartbeat to flush (at shutdown) */
	DEV_FALLBACK = 4, /* its last check-in named a last known good other than its current */
	DEV_QUEUED = 8,	  /* in s->dirty */
	DEV_PHASE = 16,	  /* its tenant's phase it is indexed with (struct rf__srv_tenant) */
	DEV_BUSY = 32,	  /* a write of its row is in flight without the lock (group commit, flush):
			     no other write of it starts until it is cleared (s->wcv) */
	/* What a check-in changed and the store does not have yet (cleared with DEV_DIRTY): the
	 * release it runs; its agent version or manifest (rf__srv_dev_reapply). */
	DEV_TOOK = 64,
	DEV_VER = 128,
};

/* Device state names: 0 "enrolled", 1 + EV_* the last report's event. */
#define RF__SRV_STATES 9

#define RF__SRV_LAT_BUCKETS 11

struct rf__srv_dev {
	uint8_t cred[32];
	uint32_t id_off; /* its id, NUL-terminated, at s->ids + id_off */
	/* The version of its store row this copy is (struct rf_db_device: every write is a
	 * compare-and-set on it). The enrolment time is not kept: only the store needs it. */
	uint32_t version;
	uint32_t last_seen, state_at;
	uint32_t release_id;
	uint32_t events, alerts; /* cumulative, as last reported (saturating) */
	/* The agent's alert count when its record of release_id was renewed after a resume that
	 * it stayed on the release across (its count went on): the record counts the alerts
	 * above it. 0 otherwise; reset when it takes a release (the agent's count starts again). */
	uint32_t alerts_base;
	uint16_t crashes, rollbacks; /* cumulative, as last reported (saturating at 65535) */
	uint32_t hpos;	 /* 1 + its position in s->heap (its next silence deadline); 0 none */
	uint16_t tenant; /* index in s->tenants */
	uint16_t ring, agent_version, manifest; /* s->strs indexes (0 is "") */
	uint8_t id_len, state, flags;
	/* The reason of the answer of its last check-in (enum rf_rollout_reason; memory only, a
	 * restart forgets it until the next check-in), so status can count devices waiting for a
	 * fix. */
	uint8_t answer_reason;
	struct rf__srv_devrel hist[RF__SRV_HIST];
};

/* The working set's goal is at most 200 bytes a device (docs/server.md, "Scale"): the device
 * itself, its id in the arena and its share of the id index. */
_Static_assert(sizeof(struct rf__srv_dev) <= 180, "a device must fit in 180 bytes");

/* Devices live in chunks of this many (stable addresses, no copy when the table grows). */
#define RF__SRV_CHUNK_SHIFT 12
#define RF__SRV_CHUNK	    (1u << RF__SRV_CHUNK_SHIFT)

/* A queued silence deadline (s->heap, a binary min-heap indexed by the devices' hpos, so a
 * check-in moves its device's deadline in place). */
struct rf__srv_deadline {
	uint32_t at;
	uint32_t dev;
};

/* Incremental health of one release in one of its rings (gates.c): the counts of
 * rf_rollout_health_apply over the records that count, plus what the exposure of the records
 * still on the release needs (open records, the sum of their intent_at). */
struct rf__srv_hacc {
	struct rf_rollout_health h;
	uint64_t open_n, open_sum;
};

struct rf__srv_tenant {
	char name[RF_SRV_ID_MAX + 1];
	uint8_t token_hash[32];
	char ring[RF_SRV_ID_MAX + 1]; /* "" none */
	struct rf_rollout_policy policy;
	int64_t win_start_min, win_end_min; /* as stored; -1 none */
	uint64_t ndevices;
	/* A change of ring or pin moves every device of the tenant in the indexes, a slice at a
	 * time (admin.c): while moving, a device whose DEV_PHASE bit differs from phase is still
	 * indexed (and routed) with old_ring / old_pin. */
	bool moving;
	uint8_t phase, old_pin;
	char old_ring[RF_SRV_ID_MAX + 1];
};

struct rf__srv_ring {
	char name[RF_SRV_ID_MAX + 1];
	int64_t position;
	uint64_t ndevices;
	/* Its devices by the reason of the answer to their last check-in (enum
	 * rf_rollout_reason), kept as devices change (gates.c), for the dashboard. */
	uint64_t why[RF_ROLLOUT_R_COUNT_];
};

struct rf__srv_release {
	int64_t id;
	char target[RF_SRV_ID_MAX + 1];
	uint8_t sha[32];
	char sha_hex[65];
	uint64_t length;
	int64_t version;
	char *custom;
	int64_t created_at;
	int64_t resumed_at; /* failures before this do not count (an operator resumed it) */
	struct rf_rollout_schedule sched;
	struct rf_rollout_state st;
	struct rf_rollout_eval eval; /* last evaluation */
	struct rf_rollout_health health[RF_ROLLOUT_RINGS_MAX], base[RF_ROLLOUT_RINGS_MAX];
	int64_t next_eval;
	uint32_t gen;	  /* bumped at every change of st (admin.c's sliced count sees it) */
	uint64_t waiting; /* devices on it (halted/rolled back) told to wait for a fix */
	/* Kept as devices change (gates.c), never recounted per tick: */
	struct rf__srv_hacc acc[RF_ROLLOUT_RINGS_MAX];
	uint64_t waiting_n; /* devices on it whose last answer was "wait for a fix" */
	/* Devices running it, by their ring's index in its schedule (the last slot: a ring its
	 * schedule does not name): the dashboard's "what the fleet runs now". */
	uint64_t on[RF_ROLLOUT_RINGS_MAX + 1];
	/* Transit rejections of it (report.c): "rejected" reports with cause transit (the bytes
	 * failed delivery: hash, signature, mirror; docs/protocol.md), by the reporting device's
	 * ring's index in its schedule (the last slot: a ring it does not name), counted once a
	 * report is committed and not a duplicate. Since this instance started and of the reports it
	 * took, as /metrics counts them: the reports table keeps no cause to count them again from
	 * (docs/server.md). Per release, never per device. */
	uint64_t transit[RF_ROLLOUT_RINGS_MAX + 1];
	/* Cohort buckets of the ring's devices (tenants pinned to N-1 left out), so the devices a
	 * step admits are a prefix sum: bhist[k][b] devices of ring k have bucket b. Filled for
	 * devices [0, bdone) (a new release is filled a slice per tick, admitted unknown until
	 * done). admitted[k] is the prefix sum below abp[k]. */
	uint32_t *bhist[RF_ROLLOUT_RINGS_MAX];
	uint64_t btotal[RF_ROLLOUT_RINGS_MAX], admitted[RF_ROLLOUT_RINGS_MAX];
	uint32_t abp[RF_ROLLOUT_RINGS_MAX];
	uint32_t bdone;
	/* The state text as last read from or written to the store (malloc'd; NULL for a
	 * release not stored yet): what a change must find there (compare-and-set, several
	 * instances), and what tells a re-read that another instance changed it. */
	char *dbstate;
};

struct rf_server {
	pthread_mutex_t lock;
	struct rf_db *db;
	struct rf_diag diag;
	char *repo_dir;
	int repo_fd; /* O_PATH dir of repo_dir/repository, -1 none */
	uint8_t admin_hash[32];
	unsigned poll_interval;
	int64_t (*clock)(void *ud);
	void *clock_ud;
	uint8_t hash_key[16]; /* random SipHash key of the device table (no hash flooding) */

	struct rf__srv_ring rings[RF_SRV_RINGS_MAX];
	size_t nrings;
	struct rf__srv_tenant *tenants;
	size_t ntenants, captenants;
	struct rf__srv_release *rels; /* oldest first (ascending id) */
	size_t nrels, caprels;
	struct rf_rollout_release *rr; /* parallel to rels, for rf_rollout_decide */
	/* Releases by sha256 and by target: open addressing over rels indexes + 1. */
	uint32_t *relsha, *reltgt;
	size_t caprelidx;
	/* Devices: chunks of RF__SRV_CHUNK, found by id through devtab (open addressing over
	 * device indexes + 1, 0 empty). */
	struct rf__srv_dev **chunks;
	size_t nchunks;
	uint32_t *devtab;
	size_t ndevs, capdevs;
	bool loading; /* rf_server_new: devices appended, devtab built after */
	char *ids;    /* arena of device ids */
	size_t nids, capids;
	/* Interned strings (ring, agent version, manifest hash); strs[0] is "". */
	char **strs;
	size_t nstrs;
	uint16_t *strtab; /* open addressing over strs indexes (0 empty), RF__SRV_STRTAB slots */
	/* Group commit of reports (report.c): reports waiting for a transaction (a list of the
	 * waiting requests' entries), the committer thread that writes them (wqcv: it waits for
	 * work; wstop: it drains the queue and ends), and the condition every waiter (and every
	 * write waiting for a DEV_BUSY device) waits on. */
	struct rf__srv_wentry *wq_head, **wq_tail;
	pthread_cond_t wcv, wqcv;
	pthread_t wthread;
	bool wthread_on, wstop;
	/* Devices whose state changed since the last flush (DEV_QUEUED). */
	uint32_t *dirty;
	size_t ndirty, capdirty;
	/* Silence deadlines (min-heap on at) and the health clock: health counts are those at
	 * hnow, which never goes back. */
	struct rf__srv_deadline *heap;
	size_t nheap, capheap;
	int64_t hnow;

	unsigned ticks;
	int64_t last_refresh;
	int64_t purge_at; /* the server's clock when retention runs next (rf_server_tick) */
	/* Several instances on one database (cluster.c): shared is set for PostgreSQL; leader
	 * whether this one holds the gate lease (always true when not shared); a re-read of the
	 * rings, tenants and releases is due when reread is set or at last_reread + 10 s. */
	bool shared, leader, reread;
	int64_t last_reread;
	/* The change counter (store.h, rf_db_cluster_announce) up to which every operator change
	 * is in memory here; written into this instance's heartbeat. The tick thread's, under the
	 * lock. */
	int64_t applied_seq;
	/* Device rows other instances wrote, read without the lock and not applied yet (an apply
	 * failed: they are applied first at the next tick). The tick thread's only. */
	struct rf__srv_trow **tail;
	size_t ntail, captail;
	uint64_t notified_ns; /* the last early read of announcements (rf_server_wait) */
	int64_t started_at;   /* silence is never counted across the server's own downtime */

	/* The audit trail (audit.c): where its lines are logged, and who is acting during an
	 * operator request ("admin:" and the first 8 hex digits of the admin token's SHA-256). */
	void (*log)(void *ud, int priority, const char *line);
	void *log_ud;
	char actor[32];
	/* Storage errors (the store's diag, server.c store_log): each logged once as it happens,
	 * at most RF_SRV_STORE_LOG_BURST lines a window of RF_SRV_STORE_LOG_WINDOW_S, the rest
	 * counted and summarised when the next window opens. Its own mutex: the store reports
	 * with or without the server's lock held. */
	pthread_mutex_t store_log_mu;
	int64_t store_log_window; /* the server's clock (rf__srv_now) when the window opened */
	unsigned store_log_lines;
	uint64_t store_log_dropped;

	/* Metrics (atomics: updated outside the lock too). */
	atomic_uint_fast64_t m_checkins, m_enrolls, m_reports_dup, m_http_4xx, m_http_5xx;
	atomic_uint_fast64_t m_reports[8];
	atomic_uint_fast64_t m_flushes, m_flushed_rows, m_halts;
	atomic_uint_fast64_t m_dev_conflicts; /* device rows' compare-and-set failures */
	atomic_uint_fast64_t m_audit_failures;
	atomic_uint_fast64_t m_group_commits; /* report transactions (group commit batches) */
	atomic_uint_fast64_t m_reports_refused; /* over RF_SRV_REPORTS_PER_RELEASE: 409 */
	atomic_uint_fast64_t m_reports_purged;	/* deleted by retention */
	atomic_uint_fast64_t m_store_errors;  /* errors the store reported (its diag) */
	atomic_uint_fast64_t m_store_retries; /* transactions the store ran again (store.h) */
	/* Check-in latency histogram (web.c, rf__srv_observe_checkin): counts per upper bound of
	 * rf__srv_latency_bounds plus +Inf, and the sum in nanoseconds. */
	atomic_uint_fast64_t m_lat[RF__SRV_LAT_BUCKETS + 1], m_lat_sum_ns;
};

/* Report events, indexes of rf__srv_events. */
enum {
	EV_INSTALLED,
	EV_INTENT,
	EV_TRIAL,
	EV_HEALTHY,
	EV_CRASHED,
	EV_ROLLED_BACK,
	EV_REJECTED,
	EV_QUARANTINED
};

/* Kinds of string members (rf__srv_get_str, checkin.c's jfield). */
enum { S_ID = 1, S_TEXT, S_HEX };

int64_t rf__srv_now(struct rf_server *s);
/* Fill r with a JSON body (takes ownership of j) / an error. */
int rf__srv_reply_json(struct rf_server_reply *r, int status, json_t *j);
int rf__srv_reply_error(struct rf_server_reply *r, int status, const char *code, const char *field,
			const char *fmt, ...) RF_PRINTF(5, 6);
/* server.c: error reply (returns -1, so handlers can "return rf__srv_err(...)"), lookups,
 * loading */
int rf__srv_err(struct rf_server_reply *r, int status, const char *code, const char *field,
		const char *fmt, ...) RF_PRINTF(5, 6);
/* The device with this id and its index (ret_idx may be NULL), or NULL. */
struct rf__srv_dev *rf__srv_dev_find(struct rf_server *s, const char *id, uint32_t *ret_idx);
int rf__srv_tenant_find(struct rf_server *s, const char *name);
int rf__srv_ring_find(struct rf_server *s, const char *name);
struct rf__srv_release *rf__srv_rel_by_id(struct rf_server *s, int64_t id);
struct rf__srv_release *rf__srv_rel_by_target(struct rf_server *s, const char *t);
struct rf__srv_release *rf__srv_rel_by_sha(struct rf_server *s, const uint8_t sha[32]);
static inline struct rf__srv_dev *rf__srv_dev_at(const struct rf_server *s, size_t i)
{
	return &s->chunks[i >> RF__SRV_CHUNK_SHIFT][i & (RF__SRV_CHUNK - 1)];
}
static inline const char *rf__srv_dev_id(const struct rf_server *s, const struct rf__srv_dev *d)
{
	return s->ids + d->id_off;
}
static inline const char *rf__srv_str(const struct rf_server *s, uint16_t i)
{
	return s->strs[i];
}
/* Intern a string (NUL-terminated, at most RF_SRV_ID_MAX + 1 bytes); -E2BIG when the table is
 * full (RF_SRV_STRINGS_MAX). */
int rf__srv_intern(struct rf_server *s, const char *str, uint16_t *ret);
/* Add a device (copied; id from the arena) at the next index. */
int rf__srv_dev_add(struct rf_server *s, const struct rf__srv_dev *d, const char *id,
		    uint32_t *ret);
const char *rf__srv_dev_ring(const struct rf_server *s, const struct rf__srv_dev *d);
/* Whether the device's tenant pins it to N-1 (as indexed: see struct rf__srv_tenant). */
bool rf__srv_dev_pin_n1(const struct rf_server *s, const struct rf__srv_dev *d);
const char *rf__srv_state_name(unsigned state);
/* Mark device idx's state for the next flush. */
int rf__srv_dev_dirty(struct rf_server *s, uint32_t idx);
static inline uint32_t rf__srv_t32(int64_t t)
{
	return t <= 0 ? 0 : t >= (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}
void rf__srv_rr_rebuild(struct rf_server *s);
void rf__srv_policy_from(struct rf__srv_tenant *t, const char *pin, int64_t ws, int64_t we);
int rf__srv_tenant_add(struct rf_server *s, struct rf__srv_tenant **ret);
int rf__srv_release_add(struct rf_server *s, struct rf__srv_release **ret);
/* request.c */
bool rf__srv_json_ctype(const char *ct);
int rf__srv_parse_body(const struct rf_server_request *q, size_t max, struct rf_server_reply *r,
		       json_t **ret);
bool rf__srv_id_valid(const char *v, size_t n);
int rf__srv_get_str(struct rf_server_reply *r, json_t *o, const char *key, int kind, bool required,
		    const char **ret);
int rf__srv_get_u64(struct rf_server_reply *r, json_t *o, const char *key, uint64_t *ret);
void rf__srv_hash_token(const char *tok, uint8_t out[32]);
const char *rf__srv_bearer(const char *h, const char *prefix);
int rf__srv_new_token(const char *prefix, char out[69], uint8_t hash[32]);
void rf__srv_copy_str(char *dst, size_t cap, const char *src);
/* persist.c */
int rf__srv_state_from_json(const char *text, struct rf__srv_release *rel);
void rf__srv_hist_from_string(const char *text, struct rf__srv_dev *d);
int rf__srv_dev_record(const struct rf__srv_dev *d, const struct rf_server *s, const char *id,
		       struct rf_db_device *rec, char **hist);
/* Write rel's state (a copy of the release in memory, or a new release): compare-and-set on
 * rel->dbstate. On success rel->dbstate is the new text: install it in the release in memory
 * with rf__srv_release_install_state(orig, rel). -ESTALE: another instance changed it (a
 * re-read is then due). */
/* Write rel's state (compare-and-set on the state read, rel->dbstate). gate: a gate's decision,
 * written only while this instance holds the gate lease it took (store.h, fenced). */
int rf__srv_release_persist(struct rf_server *s, struct rf__srv_release *rel, bool gate);
void rf__srv_release_install_state(struct rf__srv_release *rel, struct rf__srv_release *nr);
int rf__srv_flush_devices(struct rf_server *s, bool heartbeats);
/* dbserial.c: the store st behind a mutex of its own (several threads write without the
 * server's lock); *ret owns st. Several instances (PostgreSQL): a second connection to spec
 * serves the reads of single devices. */
int rf__srv_db_serial(struct rf_db *st, const char *spec, struct rf_db **ret);
/* Wait until device idx has no write in flight (DEV_BUSY). Lock held (released meanwhile: the
 * caller must look up anything it found before again). */
void rf__srv_dev_wait(struct rf_server *s, uint32_t idx);
/* device.c: a device's records, its authentication, enrolment */
int rf__srv_handle_enroll(struct rf_server *s, const struct rf_server_request *q,
			  struct rf_server_reply *r);
/* Device d's record of release rel; created at now (in the slot of its oldest release) when
 * create, else NULL when it has none. */
struct rf__srv_devrel *rf__srv_hist_get(struct rf__srv_dev *d, int64_t rel, bool create,
					int64_t now);
/* Start record h afresh if it dates from before its release was resumed (its clock from since);
 * returns whether it did. */
bool rf__srv_hist_renew(struct rf_server *s, struct rf__srv_dev *d, struct rf__srv_devrel *h,
			int64_t since, int64_t now);
/* Device d took release rel at now: it leaves every other release it was on. */
void rf__srv_dev_take(struct rf_server *s, struct rf__srv_dev *d, int64_t rel, int64_t now);
/* The SHA-256 of a device request's credential into h (outside the lock). Returns 0, or -1
 * with the 401 reply written. */
int rf__srv_dev_cred_hash(const struct rf_server_request *q, struct rf_server_reply *r,
			  uint8_t h[32]);
/* The device dev_id (its index in *ret_idx) if h is its current credential's hash, else NULL
 * with the reply written; fresh: read it from the store first (several instances). Lock held. */
struct rf__srv_dev *rf__srv_dev_auth(struct rf_server *s, const uint8_t h[32], const char *dev_id,
				     struct rf_server_reply *r, uint32_t *ret_idx, bool fresh);
/* checkin.c */
int rf__srv_handle_checkin(struct rf_server *s, const struct rf_server_request *q,
			   struct rf_server_reply *r);
/* report.c */
int rf__srv_handle_report(struct rf_server *s, const struct rf_server_request *q,
			  struct rf_server_reply *r);
/* report.c: the asynchronous report (rf_server_handle_async) and the committer thread. */
int rf__srv_report_async(struct rf_server *s, const struct rf_server_request *q,
			 void (*wake)(void *ud), void *ud, struct rf_server_pending **ret_pending,
			 struct rf_server_reply *r);
int rf__srv_report_resume(struct rf_server *s, struct rf_server_pending *p,
			  struct rf_server_reply *r);
void rf__srv_report_abandon(struct rf_server *s, struct rf_server_pending *p);
int rf__srv_committer_start(struct rf_server *s);
void rf__srv_committer_stop(struct rf_server *s);
/* Apply again onto row (a newer store row of the device, read after another instance wrote it)
 * what this instance's check-ins changed in local and had not written yet (agent version,
 * manifest, the release it runs, its health counters), if they are newer than the row (local's
 * last check-in after the row's last_seen). Returns whether row differs from what is stored. */
bool rf__srv_dev_reapply(struct rf_server *s, struct rf__srv_dev *row,
			 const struct rf__srv_dev *local);
/* admin.c */
int rf__srv_handle_admin(struct rf_server *s, const struct rf_server_request *q, const char *rest,
			 struct rf_server_reply *r);
/* gates.c: incremental health. Before a device changes: now = rf__srv_health_advance(s, now)
 * (processes the silence deadlines due, returns the health clock to stamp the change with),
 * rf__srv_dev_unindex(s, d); after: rf__srv_dev_index(s, d). */
int64_t rf__srv_health_advance(struct rf_server *s, int64_t now);
void rf__srv_dev_unindex(struct rf_server *s, uint32_t idx);
void rf__srv_dev_index(struct rf_server *s, uint32_t idx);
/* Release rel was resumed at resumed_at (read from the store: another instance resumed it):
 * set it, and move the records of its devices in or out of the counts to match (a record
 * counts when taken after the resume). A pass over the devices: resumes are rare. */
void rf__srv_health_resumed(struct rf_server *s, struct rf__srv_release *rel, int64_t resumed_at);
/* After a resume: the health and the gates' evaluation the status shows, computed again from the
 * counts at now (the tick would, later). */
void rf__srv_health_refresh(struct rf_server *s, struct rf__srv_release *rel, int64_t now);
/* The device's cohort buckets in every release (its ring changed): sign +1/-1. */
void rf__srv_dev_buckets(struct rf_server *s, uint32_t idx, int sign);
/* Recompute every index from the devices (at start, and after a tenant's ring or pin changed:
 * an operator action that moves all the tenant's devices at once). */
int rf__srv_index_rebuild(struct rf_server *s);
/* server.c: a new release rel (to become s->rels[s->nrels]): room in the release indexes and
 * its empty health and cohort buckets (filled by the tick); may fail. Then, once it is
 * s->rels[s->nrels - 1]: commit (cannot fail). */
int rf__srv_release_prepare(struct rf_server *s, struct rf__srv_release *rel);
void rf__srv_release_commit(struct rf_server *s);
/* The tick's share of filling new releases' cohort buckets. */
int rf__srv_buckets_fill(struct rf_server *s, size_t budget);
int rf__srv_evaluate(struct rf_server *s, int64_t now);
/* Test and debug only (never in the tick): the health of every release and ring recounted
 * from every device, compared with the incremental counts. Returns 0, or -EUCLEAN with what
 * differs in msg. */
int rf__srv_health_verify(struct rf_server *s, char *msg, size_t n);
int rf__srv_release_load(struct rf_server *s, const struct rf_db_release *x);
int rf__srv_dev_from_record(struct rf_server *s, const struct rf_db_device *x,
			    struct rf__srv_dev *ret);
/* admin.c: apply a stored change of tenant ti's policy t (a copy) to memory, moving its
 * devices in the indexes when its ring or pin changed. */
void rf__srv_tenant_move(struct rf_server *s, int ti, const struct rf__srv_tenant *t);
/* cluster.c: several instances on one database (store.h). The tick's share: announcements,
 * the leader lease, re-reads and the rows other instances wrote (lock NOT held; takes it). */
int rf__srv_cluster_poll(struct rf_server *s, int64_t now);
/* After an operator change announced as change seq (announced: the announcement's result; seq
 * 0 for SQLite), wait (lock NOT held) until every other live instance has applied it, at most
 * RF_SRV_PROPAGATE_MS, looking every RF_SRV_PROPAGATE_POLL_MS. Returns the reply's
 * "propagation" member: {"complete": bool, "pending_instances": [names of live instances that
 * have not applied it], "not_live_instances": [those whose heartbeat is stale, not waited for],
 * "error": text when the announcement or the look failed}; NULL without memory. */
json_t *rf__srv_cluster_wait(struct rf_server *s, int64_t seq, int announced);
/* Re-read the device id from the store into memory (lock held). 0, -ENOENT none, -EIO. */
int rf__srv_cluster_fetch(struct rf_server *s, const char *id);
/* Apply one device row read from the store (lock held), as a re-read does. */
int rf__srv_cluster_apply(struct rf_server *s, const struct rf_db_device *x);
/* Re-read the rings, tenants and releases and apply what changed (lock held). */
int rf__srv_cluster_reread(struct rf_server *s);
/* packcheck.c: release create's check of the target's bytes, without the lock: the repository's
 * file of target is len bytes hashing to sha, and a pack the agents accept (manifests: the
 * request's "manifests" member, NULL or null for this build's agent manifests). 0 and *ret
 * (the verdicts, for the reply), or -1 with the error reply written. */
int rf__srv_pack_check(struct rf_server *s, const char *target, uint64_t len,
		       const uint8_t sha[32], json_t *manifests, struct rf_server_reply *r,
		       json_t **ret);
/* web.c */
int rf__srv_dashboard(struct rf_server *s, struct rf_server_reply *r);
int rf__srv_metrics(struct rf_server *s, struct rf_server_reply *r);
int rf__srv_repo_file(struct rf_server *s, const char *rel, struct rf_server_reply *r);
/* Record one check-in's handling time (monotonic nanoseconds) in the latency histogram. */
void rf__srv_observe_checkin(struct rf_server *s, uint64_t ns);
/* t (unix s) as "2026-12-03T07:21:31Z" (out holds at least 21 bytes; 32 is safe). */
void rf__srv_iso8601(int64_t t, char out[32]);
/* audit.c: append one entry (actor, action, release 0 none, subject, printf detail) to the store
 * and log it at priority prio (5 notice for operator actions, 4 warning for a gate halt).
 * Returns 0 or the store's error (the change it records stands either way). Lock held. */
int rf__srv_audit(struct rf_server *s, int prio, const char *actor, const char *action,
		  int64_t release_id, const char *subject, const char *fmt, ...) RF_PRINTF(7, 8);
/* The entries of one operator action on a release (after it was stored), of a tenant change
 * (pin NULL: a new enrollment token) and of a gate decision that changed rel's state to *ns
 * (ring opened, step taken, ring completed, halt with its evidence). Lock held. */
void rf__srv_audit_action(struct rf_server *s, const struct rf__srv_release *rel, const char *act,
			  const char *reason, bool force, uint64_t stranded);
void rf__srv_audit_tenant(struct rf_server *s, const char *action, const struct rf__srv_tenant *t,
			  const char *pin);
void rf__srv_audit_gate(struct rf_server *s, const struct rf__srv_release *rel,
			const struct rf_rollout_eval *ev, const struct rf_rollout_state *ns);
/* Set s->actor from the hash of the admin token of the request being handled (lock held). */
void rf__srv_set_actor(struct rf_server *s, const uint8_t token_hash[32]);
/* GET /v1/admin/audit?release=ID&before=ID&limit=N (lock held). */
int rf__srv_admin_audit(struct rf_server *s, const struct rf_server_request *q,
			struct rf_server_reply *r);
json_t *rf__srv_audit_json(const struct rf_db_audit *a);
/* status of one release as JSON (operator API and dashboard); lock held */
json_t *rf__srv_release_json(struct rf_server *s, const struct rf__srv_release *rel, bool full);
extern const char *const rf__srv_events[8];

#endif
