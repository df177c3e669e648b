/*
 * The agent's durable store: one directory (default /var/lib/ringfence) that survives kill -9
 * and power loss at any instant (docs/design.md P8). docs/durability.md explains the choice.
 *
 *   DIR/state.json         the single commit point: guard state, target names of the packs it
 *                          references, quarantine (full hashes, reasons), report outbox,
 *                          device id, report counter. Replaced atomically (temp, fsync,
 *                          rename, fsync DIR) by rf_store_commit().
 *   DIR/packs/<sha256>.rfp content generations by hash, written durably BEFORE any state that
 *                          references them is committed; deleted only after a committed state
 *                          stopped referencing them. Read back only through rf_store_pack_read,
 *                          which checks the hash.
 *   DIR/credential         the device credential (0600), atomic like state.json.
 *   DIR/tuf/               trusted TUF metadata, owned by the TUF client (this module only
 *                          creates it).
 *   DIR/lock               flock()ed by the one process that has the store open.
 *   DIR/downloads/         TUF downloads in progress (the agent's; deleted once read).
 *
 * Invariants after any crash: state.json is the old or the new state; every pack a committed
 * state references is present and hashes to its name (so the last known good always loads).
 *
 * Every file-system call that changes something goes through an ops table (in the manner of
 * SQLite's VFS) so tests can fail or kill the process at each durable step.
 */
#ifndef RF_AGENT_STORE_H
#define RF_AGENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/guard.h"
#include "ringfence/error.h"

#define RF_STORE_DIR_DEFAULT "/var/lib/ringfence"

/* File-system operations. Each returns 0 (open: a file descriptor >= 0) or a negative errno. */
struct rf_store_ops {
	void *userdata;
	int (*open)(void *ud, const char *path, int flags, mode_t mode);
	int (*write)(void *ud, int fd, const void *p, size_t n); /* all n bytes or an error */
	int (*fsync)(void *ud, int fd);
	int (*close)(void *ud, int fd);
	int (*rename)(void *ud, const char *from, const char *to);
	int (*unlink)(void *ud, const char *path);
	int (*mkdir)(void *ud, const char *path, mode_t mode); /* -EEXIST if it exists */
	int (*fsync_dir)(void *ud, const char *path);
};

/* The real POSIX operations (the default when NULL is passed). */
const struct rf_store_ops *rf_store_ops_posix(void);

struct rf_store;

/* One quarantined pack. */
struct rf_store_quarantine {
	uint8_t hash[RF_GUARD_HASH_LEN];
	char reason[32]; /* rf_guard_reason_name() */
	int64_t time;	 /* Unix seconds */
};

/* One report waiting for the server (docs/protocol.md "Report"). */
struct rf_store_report {
	uint64_t id;	/* per-device counter; report_id = "<device_id>-<id>" */
	char event[24]; /* rf_guard_report_name() */
	uint8_t hash[RF_GUARD_HASH_LEN];
	bool has_hash;
	char target[RF_STORE_TARGET_MAX + 1];
	char detail[RF_STORE_DETAIL_MAX + 1];
	int64_t time;
	/* Who caused a failure report (docs/protocol.md, Report): "content", "local", "transit",
	 * "server", or "" (not said: the server decides). Persisted with the report. */
	char cause[12];
};

/*
 * Open (creating it if needed, mode 0700) the store in dir, take its lock, remove temporary
 * files a crash left behind and read state.json. ops NULL means rf_store_ops_posix().
 * Returns 0; -EBUSY another process holds the store; -EBADMSG state.json is not a valid state
 * (d says where; the caller decides: rf_store_open_reset() starts from an empty state keeping
 * the bad file as state.json.bad); -ENOTDIR, -EISDIR or -EINVAL when DIR or one of the paths
 * above exists as the wrong kind of file (a packs/ that is a file, a state.json that is a
 * directory: d names the path and what it is; checked before anything is created or changed,
 * so the recorded last known good is kept); -errno on I/O errors. *ret is owned by the caller.
 */
int rf_store_open(const char *dir, const struct rf_store_ops *ops, struct rf_store **ret,
		  struct rf_diag *d) RF_WUR;
/* Same, but a state.json that does not parse is renamed to state.json.bad and a fresh empty
 * state is used (committed before returning). */
int rf_store_open_reset(const char *dir, const struct rf_store_ops *ops, struct rf_store **ret,
			struct rf_diag *d) RF_WUR;
/* Read a store without locking or changing it (for `status`). A state.json of the wrong kind
 * is named as rf_store_open does. */
int rf_store_open_readonly(const char *dir, struct rf_store **ret, struct rf_diag *d) RF_WUR;
void rf_store_free(struct rf_store *st);

const char *rf_store_dir(const struct rf_store *st);

/* The committed (or pending, if changed since) guard state. */
const struct rf_guard_state *rf_store_guard(const struct rf_store *st);
/* Replace the guard state in memory (made durable by rf_store_commit). -EINVAL if invalid. */
int rf_store_set_guard(struct rf_store *st, const struct rf_guard_state *g) RF_WUR;

/*
 * Write pack bytes durably as packs/<sha256>.rfp (idempotent: an existing file with the right
 * hash is kept) and remember target as its name. Must be called, and succeed, before a state
 * that references the pack is committed. *ret_hash gets the SHA-256 (may be NULL).
 */
int rf_store_pack_put(struct rf_store *st, const uint8_t *p, size_t n, const char *target,
		      uint8_t ret_hash[RF_GUARD_HASH_LEN]) RF_WUR;
/* Read a pack back; -ENOENT if absent, -EBADMSG if its bytes do not hash to its name.
 * *ret is malloc'ed (caller frees). */
int rf_store_pack_read(const struct rf_store *st, const uint8_t hash[RF_GUARD_HASH_LEN],
		       uint8_t **ret, size_t *ret_len) RF_WUR;
bool rf_store_pack_exists(const struct rf_store *st, const uint8_t hash[RF_GUARD_HASH_LEN]);
/* The TUF target name recorded for a pack, or "" if unknown. Never NULL. */
const char *rf_store_pack_name(const struct rf_store *st, const uint8_t hash[RF_GUARD_HASH_LEN]);

/* Quarantine (in memory until commit). Adding a hash already there keeps the first reason.
 * Past RF_AGENT_QUARANTINE_MAX the oldest entry is dropped. */
int rf_store_quarantine_add(struct rf_store *st, const uint8_t hash[RF_GUARD_HASH_LEN],
			    const char *reason, int64_t time) RF_WUR;
bool rf_store_is_quarantined(const struct rf_store *st, const uint8_t hash[RF_GUARD_HASH_LEN]);
size_t rf_store_quarantine_count(const struct rf_store *st);
const struct rf_store_quarantine *rf_store_quarantine_at(const struct rf_store *st, size_t i);

/* Reports (in memory until commit). hash may be NULL; target/detail NULL means "". Past
 * RF_AGENT_OUTBOX_MAX the oldest is dropped. *ret_id (may be NULL) gets the report's id. */
/* Set the cause of queued report id (see struct rf_store_report). 0, -ENOENT (no such
 * report queued), -EINVAL (cause too long). */
int rf_store_report_cause(struct rf_store *st, uint64_t id, const char *cause);

int rf_store_report_add(struct rf_store *st, const char *event, const uint8_t *hash,
			const char *target, const char *detail, int64_t time,
			uint64_t *ret_id) RF_WUR;
/* Remove a delivered report from the outbox (in memory until commit). -ENOENT if absent. */
int rf_store_report_done(struct rf_store *st, uint64_t id) RF_WUR;
size_t rf_store_report_count(const struct rf_store *st);
const struct rf_store_report *rf_store_report_at(const struct rf_store *st, size_t i);

/* Device identity: id in state.json (commit), credential in DIR/credential (written at once). */
const char *rf_store_device_id(const struct rf_store *st); /* "" when not enrolled */
int rf_store_set_device_id(struct rf_store *st, const char *id) RF_WUR;
/* The ring the server put this device in (enroll reply), "" if unknown; committed with state. */
const char *rf_store_ring(const struct rf_store *st);
int rf_store_set_ring(struct rf_store *st, const char *ring) RF_WUR;
int rf_store_credential_get(const struct rf_store *st, char *out, size_t outsz) RF_WUR;
int rf_store_credential_set(struct rf_store *st, const char *cred) RF_WUR;

/* Health counters that are not the guard's (events evaluated, alerts), committed with state. */
void rf_store_counters(const struct rf_store *st, uint64_t *ret_events, uint64_t *ret_alerts);
void rf_store_set_counters(struct rf_store *st, uint64_t events, uint64_t alerts);
/* Events the event sources could not deliver (dropped when the queue was full, lost by the
 * kernel), since the store was made; not reset when content changes (they are the host's).
 * Committed with state. */
uint64_t rf_store_dropped(const struct rf_store *st);
void rf_store_add_dropped(struct rf_store *st, uint64_t n);
/* Correlation state (groups, window entries) the worker dropped at its caps (RF_CORR_GROUPS_MAX,
 * RF_CORR_ENTRIES_MAX), cumulative like events_dropped; durable with the next write. */
uint64_t rf_store_corr_dropped(const struct rf_store *st);
void rf_store_add_corr_dropped(struct rf_store *st, uint64_t n);
/* Attempts to take a release whose delivery failed ("transit": TUF metadata, a hash or a
 * download that does not match; retried, never a verdict on the pack), since the store was
 * made. Committed with state. */
uint64_t rf_store_transit_failures(const struct rf_store *st);
void rf_store_add_transit_failure(struct rf_store *st);
/* Alerts the --alerts destination refused (a full disk, a closed pipe: lost), and events fed to
 * correlations whose time field did not parse (they took their arrival time, docs/sigma.md
 * "Time"), since the store was made; not reset when content changes. Committed with state. */
uint64_t rf_store_alerts_lost(const struct rf_store *st);
void rf_store_add_alerts_lost(struct rf_store *st, uint64_t n);
uint64_t rf_store_time_unparsed(const struct rf_store *st);
void rf_store_add_time_unparsed(struct rf_store *st, uint64_t n);

/* What the worker's correlations passed over (docs/sigma.md "Time"), since the store was made;
 * not reset when content changes. Committed with state (state.json: rf_store_count_name). */
enum rf_store_count {
	RF_STORE_CORR_LATE,    /* events older than the stream's clock by over RF_CORR_LATE_MS */
	RF_STORE_CORR_FUTURE,  /* events later than the host's clock by over RF_CORR_SKEW_MS */
	RF_STORE_CORR_SKIPPED, /* matches without a group-by or value_count field */
	RF_STORE_TIME_MISSING, /* matches of events without a time field: arrival time used */
	RF_STORE_COUNT_N
};
uint64_t rf_store_count(const struct rf_store *st, enum rf_store_count c);
void rf_store_add_count(struct rf_store *st, enum rf_store_count c, uint64_t n);
/* Its key in state.json and status --json: "correlation_late", "correlation_future",
 * "correlation_skipped", "time_missing". */
const char *rf_store_count_name(enum rf_store_count c);

/*
 * Make everything changed since the last commit durable, atomically: after a crash at any
 * instant the store holds all of it or none of it. Then deletes packs no committed state
 * references any more (best effort: a crash there leaves garbage that the next commit removes).
 * Returns 0 or -errno (the in-memory state is kept; the on-disk state is the old one).
 */
int rf_store_commit(struct rf_store *st) RF_WUR;

/*
 * Carry out the durable part of a guard step: g is the state rf_guard_step produced, acts its
 * actions. REPORT actions go to the outbox (with the pack's target name and "attempt n/limit"
 * or the reason as detail), QUARANTINE to the quarantine list, PERSIST commits g with them (so
 * the write-ahead order of the guard is kept). Records added after the last PERSIST are
 * committed at the end. LOAD and SAFE_MODE are left to the caller, to be done after this
 * returns 0; on an error nothing may be loaded (the disk holds the previous state).
 */
int rf_store_apply(struct rf_store *st, const struct rf_guard_state *g,
		   const struct rf_guard_actions *acts, int64_t now) RF_WUR;

/* Internal, for the fuzz target (store_json.c): parse state.json bytes into a throw-away state
 * (no I/O). 0 or -EBADMSG with d saying where. */
int rf__store_state_parse(const uint8_t *p, size_t n, struct rf_diag *d) RF_WUR;

/* Check the committed invariants on disk: every referenced pack present with the right hash,
 * guard state valid, LKG not quarantined. 0, or -EBADMSG with d saying what is wrong. */
int rf_store_check(const struct rf_store *st, struct rf_diag *d) RF_WUR;

#endif
