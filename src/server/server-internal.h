/*
 * Internals shared by the files of the server core (server.c: state, lookups, loading, dispatch,
 * tick; request.c; device.c: device API; admin.c: operator API; persist.c; gates.c; web.c:
 * dashboard, metrics, the TUF repository). Not a public interface: everything here is
 * guarded by rf_server.lock unless a field says otherwise.
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

/* Per-device outcomes on the releases it took: the inputs of the gates (docs/design.md P7). */
#define RF__SRV_HIST 4

struct rf__srv_devrel {
	int64_t release;    /* release id; 0 unused slot */
	int64_t intent_at;  /* server time it took the release (intent, or first seen on it) */
	int64_t healthy_at; /* server time it reported healthy; 0 not yet */
	int64_t left_at;    /* server time it moved to another release; 0 still on it */
	uint32_t crashes, rollbacks, rejects;
	uint32_t quarantined;
	uint64_t alerts;
	uint32_t local; /* failures of the device or the transit, never the content's */
	uint8_t obeyed; /* left it because the server said so (a halt): not a failure */
};

enum { DEV_DIRTY = 1, DEV_SEEN = 2 };

#define RF__SRV_LAT_BUCKETS 11

struct rf__srv_dev {
	char *id;
	size_t id_len;
	int tenant; /* index in s->tenants */
	char ring[RF_SRV_ID_MAX + 1];
	uint8_t cred[32];
	char agent_version[RF_SRV_ID_MAX + 1];
	char manifest[65];
	int64_t enrolled_at, last_seen;
	int64_t release_id;
	char state[24];
	int64_t state_at;
	uint64_t crashes, rollbacks, events, alerts;
	/* From its last check-in (memory only; a restart forgets them until the next one):
	 * whether it reported a last known good other than its current content, and the reason
	 * of the answer it got (enum rf_rollout_reason), so status can count devices waiting for
	 * a fix and a halt can say how many would have nowhere to go. */
	bool fallback;
	uint8_t answer_reason;
	struct rf__srv_devrel hist[RF__SRV_HIST];
	uint8_t flags; /* DEV_DIRTY: state to flush; DEV_SEEN: heartbeat to flush */
};

struct rf__srv_tenant {
	char name[RF_SRV_ID_MAX + 1];
	uint8_t token_hash[32];
	char ring[RF_SRV_ID_MAX + 1]; /* "" none */
	struct rf_rollout_policy policy;
	int64_t win_start_min, win_end_min; /* as stored; -1 none */
	uint64_t ndevices;
};

struct rf__srv_ring {
	char name[RF_SRV_ID_MAX + 1];
	int64_t position;
	uint64_t ndevices;
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
	uint64_t waiting; /* devices on it (halted/rolled back) told to wait for a fix */
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
	struct rf__srv_dev **devtab;   /* open addressing, power-of-two capacity */
	size_t ndevs, capdevs;

	unsigned ticks;
	int64_t last_refresh;
	int64_t started_at; /* silence is never counted across the server's own downtime */

	/* The audit trail (audit.c): where its lines are logged, and who is acting during an
	 * operator request ("admin:" and the first 8 hex digits of the admin token's SHA-256). */
	void (*log)(void *ud, int priority, const char *line);
	void *log_ud;
	char actor[32];

	/* Metrics (atomics: updated outside the lock too). */
	atomic_uint_fast64_t m_checkins, m_enrolls, m_reports_dup, m_http_4xx, m_http_5xx;
	atomic_uint_fast64_t m_reports[8];
	atomic_uint_fast64_t m_flushes, m_flushed_rows, m_halts;
	atomic_uint_fast64_t m_audit_failures;
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

/* Kinds of string members (rf__srv_get_str, device.c's jfield). */
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
struct rf__srv_dev *rf__srv_dev_find(struct rf_server *s, const char *id);
int rf__srv_dev_insert(struct rf_server *s, struct rf__srv_dev *d);
int rf__srv_tenant_find(struct rf_server *s, const char *name);
int rf__srv_ring_find(struct rf_server *s, const char *name);
struct rf__srv_release *rf__srv_rel_by_id(struct rf_server *s, int64_t id);
struct rf__srv_release *rf__srv_rel_by_target(struct rf_server *s, const char *t);
struct rf__srv_release *rf__srv_rel_by_sha(struct rf_server *s, const uint8_t sha[32]);
const char *rf__srv_dev_ring(const struct rf_server *s, const struct rf__srv_dev *d);
void rf__srv_recount_rings(struct rf_server *s);
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
int rf__srv_dev_record(const struct rf__srv_dev *d, const struct rf_server *s,
		       struct rf_db_device *rec, char **hist);
int rf__srv_release_persist(struct rf_server *s, const struct rf__srv_release *rel);
int rf__srv_flush_devices(struct rf_server *s, bool heartbeats);
/* device.c */
int rf__srv_handle_enroll(struct rf_server *s, const struct rf_server_request *q,
			  struct rf_server_reply *r);
int rf__srv_handle_checkin(struct rf_server *s, const struct rf_server_request *q,
			   struct rf_server_reply *r);
int rf__srv_handle_report(struct rf_server *s, const struct rf_server_request *q,
			  struct rf_server_reply *r);
/* admin.c */
int rf__srv_handle_admin(struct rf_server *s, const struct rf_server_request *q, const char *rest,
			 struct rf_server_reply *r);
/* gates.c */
int rf__srv_evaluate(struct rf_server *s, int64_t now);
void rf__srv_aggregate(struct rf_server *s, int64_t now);
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
