/*
 * The server's storage, behind one interface with two backends, SQLite (store_sqlite.c, a file
 * on one machine) and PostgreSQL (store_pg.c, a database server): struct rf_db is an ops table
 * (like SQLite's VFS) and every backend fills it in. (Named rf_db, not rf_store, so that a file
 * may include this and the agent's src/agent/store.h.)
 *
 * Model: ringfenced keeps its whole working set (rings, tenants, releases, devices) in memory
 * and uses the store as the durable record. At start it loads everything through
 * rf_db_load(); afterwards it writes through: every call below that changes something is one
 * transaction, committed durably (SQLite: WAL, synchronous=FULL; PostgreSQL: COMMIT) before it
 * returns 0, so the server may acknowledge the change as soon as the call returns (P8).
 * Reports are an audit trail, idempotent by (device_id, report_id), bounded per device and
 * release (struct rf_db_report.limit) and deleted after a retention time (rf_db_reports_purge);
 * the gates never read them (a device's outcomes per release are its row's history).
 *
 * Strings in the records are NUL-terminated and owned by the caller; the store copies what it
 * keeps. Hashes are raw 32-byte SHA-256 values. Every function returns 0 or a negative errno:
 * -EIO storage failure (details in the rf_diag given to rf_db_open_*), -ENOENT no such
 * record, -EEXIST on a unique-key clash where noted, -ENOMEM.
 */
#ifndef RF_SERVER_STORE_H
#define RF_SERVER_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"

/* Schema version this build writes; older databases are migrated at open. */
#define RF_DB_SCHEMA_VERSION 5

struct rf_db_ring {
	const char *name;
	int64_t position; /* order: lower first (canary before broad) */
};

struct rf_db_tenant {
	const char *name;
	uint8_t token_hash[32]; /* SHA-256 of the enrollment token */
	const char *ring;	/* NULL: devices keep the ring they enroll with */
	const char *pin;	/* "latest" or "n-1" */
	int64_t win_start_min;	/* maintenance window in minutes after 00:00 UTC; -1 none */
	int64_t win_end_min;
};

struct rf_db_release {
	int64_t id; /* assigned by the server, > 0 */
	const char *target;
	uint8_t sha256[32];
	uint64_t length;
	int64_t version;
	const char
	    *custom_json; /* the signed custom metadata (schedule), as read from targets.json */
	int64_t created_at;
	const char
	    *state_json; /* the rollout state (status, halt, ring progress), server's format */
	/* rf_db_release_put on an existing id: when not NULL, the state is replaced only if the
	 * stored one is exactly this text (compare-and-set; several instances on one database),
	 * else -ESTALE. SQLite (one instance) ignores it. */
	const char *prev_state;
	/* A gate's decision (with prev_state): written only while the gate lease this store took
	 * is still the current one (its epoch in rf_lease, a fencing token: a leader that hung and
	 * was replaced writes nothing when it resumes), else -ESTALE. SQLite ignores it. */
	bool fenced;
};

/* A device as last recorded. release_id is the release the device is counted on (0: none);
 * state is one of the report events in docs/protocol.md ("offered" before any report).
 *
 * Every write of a device row is a compare-and-set on its version (schema 4): the writer gives
 * the version it read (0: the row must be new) and the store writes the row with version + 1
 * only if the stored version is still that one, so an instance never overwrites a newer row
 * another instance wrote from a copy it had not seen (it re-reads the row and applies its
 * change again: docs/server.md "Several instances and dist/"). */
struct rf_db_device {
	const char *id;
	const char *tenant;
	const char *ring;
	uint8_t cred_hash[32];
	const char *agent_version;
	const char *manifest_hash; /* hex, "" unknown */
	int64_t enrolled_at; /* written: 0 keeps the stored value (only an enrolment sets it) */
	int64_t last_seen;
	int64_t release_id;
	const char *state;
	int64_t state_at;
	uint64_t crashes, rollbacks, events, alerts;
	const char *history; /* per-release outcomes the gates need, server's format ("" none) */
	/* Read: the stored version (>= 1). Written: the version the writer read, 0 for a new row;
	 * the store writes version + 1. */
	int64_t version;
	/* Written (may be NULL): where rf_db_devices_put() and rf_db_report_add() put the row's
	 * new version, or (devices_put) 0 when the compare-and-set failed and the row was not
	 * written; untouched by a duplicate report. */
	int64_t *ret_version;
};

struct rf_db_report {
	const char *device_id;
	const char *report_id;
	const char *event;
	const char *target;
	const char *sha256_hex; /* "" when absent */
	int64_t release_id;	/* 0 when the target is not a known release */
	int64_t time;		/* the device's clock */
	int64_t received_at;	/* the server's clock */
	const char *detail;
	/* The bound on the reports of (device_id, release_id) (0: none). A new report that
	 * would make more than limit of them is not recorded, nor its device state written:
	 * *ret_full (may be NULL) is set true and the rest of a batch goes on; unless keep (it
	 * carries evidence the gates need): then the oldest of them (received first) are deleted
	 * to make room, in the same transaction. Only with a device state (dev below). */
	uint32_t limit;
	bool keep;
	bool *ret_full;
};

/*
 * One entry of the audit trail (docs/server.md, "Audit trail"): an operator action or a gate
 * decision that changed a release's state. Entries are only ever appended; id is assigned by the
 * store, strictly increasing in the order of rf_db_audit_add() calls (the page cursor).
 * Schema (any backend): audit(id integer primary key, time, actor, action, release_id, subject,
 * detail), with an index on (release_id, id).
 */
struct rf_db_audit {
	int64_t id;	     /* > 0; ignored by rf_db_audit_add */
	int64_t time;	     /* server clock, unix s */
	const char *actor;   /* who: "admin:<token id>" or "gate" */
	const char *action;  /* what: "release.halt", "gate.halt", "tenant.create", ... */
	int64_t release_id;  /* the release it is about, 0 none */
	const char *subject; /* what it acted on: a release target, ring or tenant name */
	const char *detail;  /* why, and the evidence (free text, may be "") */
};

/* Callbacks for rf_db_load(); each may be NULL. Returning non-zero stops the load and
 * rf_db_load() returns that value. Records are only valid during the call. */
struct rf_db_visitor {
	int (*ring)(void *ud, const struct rf_db_ring *r);
	int (*tenant)(void *ud, const struct rf_db_tenant *t);
	int (*release)(void *ud, const struct rf_db_release *r);
	int (*device)(void *ud, const struct rf_db_device *d);
};

struct rf_db;

struct rf_db_ops {
	void (*close)(struct rf_db *st);
	int (*load)(struct rf_db *st, const struct rf_db_visitor *v, void *ud);
	int (*ring_put)(struct rf_db *st, const struct rf_db_ring *r);
	int (*ring_delete)(struct rf_db *st, const char *name);
	int (*tenant_put)(struct rf_db *st, const struct rf_db_tenant *t);
	int (*release_put)(struct rf_db *st, const struct rf_db_release *r);
	int (*devices_put)(struct rf_db *st, const struct rf_db_device *d, size_t n);
	int (*report_add)(struct rf_db *st, const struct rf_db_report *r,
			  const struct rf_db_device *dev, size_t n, bool *ret_duplicate);
	int (*reports_count)(struct rf_db *st, const char *device_id, uint64_t *ret);
	int (*reports_purge)(struct rf_db *st, int64_t before, unsigned max, uint64_t *ret);
	int (*audit_add)(struct rf_db *st, const struct rf_db_audit *a, int64_t *ret_id);
	int (*audit_list)(struct rf_db *st, int64_t release_id, int64_t before_id, unsigned limit,
			  int (*fn)(void *ud, const struct rf_db_audit *a), void *ud);
	/* Several instances on one database (PostgreSQL only; NULL in SQLite): see the
	 * rf_db_cluster_* functions below. */
	int (*admin_hash)(struct rf_db *st, uint8_t hash[32], bool put);
	int (*device_get)(struct rf_db *st, const char *id, const struct rf_db_visitor *v,
			  void *ud);
	int (*devices_changed)(struct rf_db *st, const struct rf_db_visitor *v, void *ud);
	int (*notify)(struct rf_db *st, const char *what, int64_t *ret_seq);
	int (*cluster_poll)(struct rf_db *st, unsigned *ret_changed, bool *ret_leader,
			    int64_t *ret_seq);
	int (*cluster_fd)(struct rf_db *st);
	int (*cluster_heartbeat)(struct rf_db *st, int64_t applied);
	int (*cluster_instances)(struct rf_db *st, int64_t seq,
				 int (*fn)(void *ud, const char *name, bool applied, bool live),
				 void *ud);
};

struct rf_db {
	const struct rf_db_ops *ops;
	struct rf_diag *diag; /* where backend errors are described; may be NULL */
	/* Where the backend counts write transactions it ran again after the database aborted
	 * them for a deadlock or a serialization failure (PostgreSQL: RF_PG_TX_TRIES; the
	 * ringfence_store_retries_total metric); may be NULL. */
	atomic_uint_fast64_t *retries;
};

/* Flags of rf_db_open_sqlite(), as O_CREAT and O_EXCL are to open(2). */
enum {
	RF_DB_CREATE = 1, /* a missing or empty database may be created */
	RF_DB_EXCL = 2,   /* with RF_DB_CREATE: only a missing or empty one (-EEXIST) */
};

/*
 * Open the SQLite database at path: WAL, synchronous=FULL, schema created or migrated to
 * RF_DB_SCHEMA_VERSION in one transaction. A database that exists is checked first
 * (PRAGMA quick_check: every page and record well-formed) and nothing is written to one that
 * fails. A missing or empty (zero-byte, or no schema) database is created only with
 * RF_DB_CREATE: a server whose database was lost must not start as a brand-new server.
 * diag (may be NULL, must outlive the store) receives a description of every storage error.
 * Returns 0 and *ret; -ENOENT missing or empty database without RF_DB_CREATE; -EEXIST a
 * database exists and RF_DB_EXCL was given; -EBADMSG damaged (not a database, or the
 * integrity check failed: diag says what it found); -EIO if it cannot be opened or migrated;
 * -EPROTO if it was written by a newer schema than this build knows; -ENOMEM.
 */
int rf_db_open_sqlite(const char *path, unsigned flags, struct rf_diag *diag,
			 struct rf_db **ret) RF_WUR;

/*
 * Copy the SQLite database at path into a new file dest, consistent to one committed
 * transaction (the SQLite online backup API: safe while ringfenced runs and writes), check the
 * copy (quick_check) and move it into place atomically: dest is either its old content or the
 * whole new backup. Returns 0; -EINVAL dest (or dest.tmp, where the copy is made) is the
 * database itself or its -wal, -shm or -journal file, by name, through a symbolic link or a hard
 * link (nothing is written); -ENOENT no database at path; -EBADMSG the copy fails the check;
 * -EIO on any other storage error (diag says which).
 */
int rf_db_sqlite_backup(const char *path, const char *dest, struct rf_diag *diag) RF_WUR;

/*
 * Open the PostgreSQL database named by uri (a libpq connection URI, postgresql:// or
 * postgres://), with the same flags and the same rules as rf_db_open_sqlite(): the schema
 * (versioned, RF_DB_SCHEMA_VERSION, in table rf_schema) is created only with RF_DB_CREATE and
 * migrated forward in one transaction; a newer one is refused. diag never receives the
 * password of the URI. Returns 0 and *ret; -ENOENT no ringfence schema and no RF_DB_CREATE;
 * -EEXIST a schema exists and RF_DB_EXCL was given; -EIO cannot connect or a statement failed
 * (diag says which); -EPROTO newer schema; -ENOMEM. The store reconnects by itself after the
 * connection is lost (calls fail with -EIO meanwhile).
 */
int rf_db_open_pg(const char *uri, unsigned flags, struct rf_diag *diag, struct rf_db **ret) RF_WUR;

/* Whether spec names a PostgreSQL database (postgresql:// or postgres://) rather than a file. */
bool rf_db_is_pg(const char *spec);

/* spec for messages and logs: a PostgreSQL URI without its password and query parameters (a
 * password may also be given there); anything else unchanged. Truncated to n - 1 bytes. */
void rf_db_pg_redact(const char *spec, char *out, size_t n);

/* rf_db_open_pg() for a PostgreSQL URI, rf_db_open_sqlite() for anything else (a path). */
int rf_db_open(const char *spec, unsigned flags, struct rf_diag *diag, struct rf_db **ret) RF_WUR;

/* Close a store (NULL ok). */
static inline void rf_db_close(struct rf_db *st)
{
	if (st)
		st->ops->close(st);
}

/* Read every ring, tenant, release and device, in that order, into v's callbacks. */
static inline int rf_db_load(struct rf_db *st, const struct rf_db_visitor *v, void *ud)
{
	return st->ops->load(st, v, ud);
}

/* Insert or replace by name. */
static inline int rf_db_ring_put(struct rf_db *st, const struct rf_db_ring *r)
{
	return st->ops->ring_put(st, r);
}

/* Delete a ring; -ENOENT if there is none. */
static inline int rf_db_ring_delete(struct rf_db *st, const char *name)
{
	return st->ops->ring_delete(st, name);
}

/* Insert or replace a tenant by name. */
static inline int rf_db_tenant_put(struct rf_db *st, const struct rf_db_tenant *t)
{
	return st->ops->tenant_put(st, t);
}

/* Insert a release, or update its state_json when the id exists; -EEXIST if another release
 * has the same target. */
static inline int rf_db_release_put(struct rf_db *st, const struct rf_db_release *r)
{
	return st->ops->release_put(st, r);
}

/* Insert or replace n devices by id, all in one transaction (enrollment: n = 1; the heartbeat
 * flush: every device whose state changed since the last flush), each by compare-and-set on
 * its version (struct rf_db_device): a row whose stored version is not d[i].version is left
 * as it is and gets *d[i].ret_version = 0, the others are written; returns 0 either way. */
static inline int rf_db_devices_put(struct rf_db *st, const struct rf_db_device *d,
				       size_t n)
{
	return st->ops->devices_put(st, d, n);
}

/*
 * Record a report and, in the same transaction, the device state it leads to (dev; may be
 * NULL). If (device_id, report_id) is already recorded nothing is changed and
 * *ret_duplicate is true. Returns 0 once committed; -ESTALE, nothing written, when the device
 * row's stored version is not dev->version or there is no such row (compare-and-set: re-read
 * it and apply the report again); -ENOSPC, nothing written, when the report is over its
 * bound (struct rf_db_report.limit).
 */
static inline int rf_db_report_add(struct rf_db *st, const struct rf_db_report *r,
				      const struct rf_db_device *dev, bool *ret_duplicate)
{
	int64_t v = -1;
	struct rf_db_device d;

	if (!dev)
		return st->ops->report_add(st, r, NULL, 1, ret_duplicate);
	d = *dev;
	if (!d.ret_version)
		d.ret_version = &v;
	bool full = false;
	struct rf_db_report x = *r;
	x.ret_full = &full;
	int e = st->ops->report_add(st, &x, &d, 1, ret_duplicate);
	if (e == 0 && full) {
		if (r->ret_full)
			*r->ret_full = true;
		return -ENOSPC;
	}
	return e == 0 && *d.ret_version == 0 ? -ESTALE : e;
}

/*
 * Group commit: n reports r[0..n) with their device states dev[0..n) (dev may be NULL), as
 * rf_db_report_add() each, in ONE transaction (one durable commit for the lot, in order: a
 * report whose (device_id, report_id) came earlier in the batch is a duplicate too).
 * ret_duplicate[i] tells which were already recorded; written only when the whole batch
 * committed. On error nothing of the batch is recorded. With devices, each report is a
 * compare-and-set on its device's version as in rf_db_report_add(): a stale one is not
 * written and gets *dev[i].ret_version = 0 (the others are written; the batch returns 0); a
 * written one gets the new version, a duplicate or one over its bound (*r[i].ret_full) the
 * version as it was.
 */
static inline int rf_db_reports_add(struct rf_db *st, const struct rf_db_report *r,
				    const struct rf_db_device *dev, size_t n, bool *ret_duplicate)
{
	return n ? st->ops->report_add(st, r, dev, n, ret_duplicate) : 0;
}

/* Number of reports recorded for device_id (NULL: for every device). */
static inline int rf_db_reports_count(struct rf_db *st, const char *device_id, uint64_t *ret)
{
	return st->ops->reports_count(st, device_id, ret);
}

/* Retention: delete at most max reports received before the time before (server clock), the
 * oldest first, in one transaction; *ret (may be NULL) is how many were deleted. */
static inline int rf_db_reports_purge(struct rf_db *st, int64_t before, unsigned max, uint64_t *ret)
{
	uint64_t n = 0;
	int e = st->ops->reports_purge(st, before, max, &n);

	if (e == 0 && ret)
		*ret = n;
	return e;
}

/* Append one audit entry, committed durably before it returns 0; *ret_id (may be NULL) is its
 * id. */
static inline int rf_db_audit_add(struct rf_db *st, const struct rf_db_audit *a, int64_t *ret_id)
{
	return st->ops->audit_add(st, a, ret_id);
}

/*
 * The audit entries newest first: only those about release_id when it is > 0, only those with
 * id < before_id when it is > 0, at most limit of them, each passed to fn (valid during the call
 * only; a non-zero return stops the walk and is returned). Returns 0 or -EIO.
 */
static inline int rf_db_audit_list(struct rf_db *st, int64_t release_id, int64_t before_id,
				   unsigned limit, int (*fn)(void *ud, const struct rf_db_audit *a),
				   void *ud)
{
	return st->ops->audit_list(st, release_id, before_id, limit, fn, ud);
}

/* ---- several instances on one database (PostgreSQL) -------------------------------------
 *
 * Each ringfenced keeps its own working set in memory; the database is the one truth they
 * share. Every instance writes under its own instance id (random, per process). What one
 * instance changes reaches the others three ways: operator changes are announced with
 * rf_db_cluster_notify() after they are committed and every instance re-reads the small tables
 * (rings, tenants, releases) when rf_db_cluster_poll() says so (or every few seconds anyway);
 * device rows written by other instances (enrolments, reports with the outcomes they lead to,
 * flushed check-in changes) are read with rf_db_devices_changed(); a device an instance has
 * never seen is read with rf_db_device_get(). Gates are run by one leader: the holder of a
 * session advisory lock on the control connection, which PostgreSQL releases when that
 * connection dies, or when the session stays idle for RF_PG_LEASE_IDLE_MS (a leader that hangs:
 * the leader's poll touches the session every second). Taking the lock increments the lease's
 * epoch (table rf_lease), and a gate's decision is written only while the epoch is still the
 * one this instance took (struct rf_db_release, fenced).
 */

/* Whether the store is shared by several instances (PostgreSQL). */
static inline bool rf_db_is_shared(const struct rf_db *st)
{
	return st->ops->cluster_poll != NULL;
}

/* The admin token's SHA-256 stored in the database: read (put false; -ENOENT none stored) or
 * written (put true; replaces). -EOPNOTSUPP for SQLite, whose token lives in a file. */
static inline int rf_db_admin_hash(struct rf_db *st, uint8_t hash[32], bool put)
{
	return st->ops->admin_hash ? st->ops->admin_hash(st, hash, put) : -EOPNOTSUPP;
}

/* Read one device into v->device; -ENOENT if there is none. */
static inline int rf_db_device_get(struct rf_db *st, const char *id, const struct rf_db_visitor *v,
				   void *ud)
{
	return st->ops->device_get ? st->ops->device_get(st, id, v, ud) : -ENOENT;
}

/*
 * Every device row that another instance wrote since the last call (the first call: since
 * rf_db_load()), each in its current version, into v->device. Each row version once, none
 * written by another instance missed: the cursor is the previous call's snapshot, and the
 * rows read are those written by transactions it could not see (not started yet, or still
 * running: see store_pg_cluster.c), so a transaction that committed late is still read.
 */
static inline int rf_db_devices_changed(struct rf_db *st, const struct rf_db_visitor *v, void *ud)
{
	return st->ops->devices_changed ? st->ops->devices_changed(st, v, ud) : 0;
}

/* Announce a committed change to the other instances. what: "config" (rings, tenants,
 * releases). Best effort: a lost notification is covered by the periodic re-read. */
static inline int rf_db_cluster_notify(struct rf_db *st, const char *what)
{
	return st->ops->notify ? st->ops->notify(st, what, NULL) : 0;
}

/*
 * The same, and *ret_seq: the change's number. Every announcement first increments the one
 * change counter (table rf_change), after the change was committed; an instance that read the
 * counter at N or more and then re-read the small tables has applied the change (its
 * heartbeat says so, rf_db_cluster_heartbeat()), whether or not the notification reached it.
 * *ret_seq is 0 for SQLite (one instance: nothing to wait for). Returns 0 or -EIO.
 */
static inline int rf_db_cluster_announce(struct rf_db *st, const char *what, int64_t *ret_seq)
{
	*ret_seq = 0;
	return st->ops->notify ? st->ops->notify(st, what, ret_seq) : 0;
}

/*
 * This instance's heartbeat in table rf_instances (its id, its name "HOST pid PID", the change
 * counter it has applied, the database's clock), on the control connection: the tick's thread
 * only, after rf_db_cluster_poll() and the re-read it called for. Rows of instances silent for
 * RF_SRV_INSTANCE_FORGET_S are deleted. Returns 0 or -EIO.
 */
static inline int rf_db_cluster_heartbeat(struct rf_db *st, int64_t applied)
{
	return st->ops->cluster_heartbeat ? st->ops->cluster_heartbeat(st, applied) : 0;
}

/*
 * Every other instance (not this one) of rf_instances, by name, to fn: whether it has applied
 * change seq (applied) and whether its heartbeat is fresh (live: within RF_SRV_LIVE_MS by the
 * database's clock). fn returns 0 or an error that stops the walk. Returns 0, fn's error or
 * -EIO (described nowhere, and no reconnect: any thread may call it without the server's
 * lock). SQLite: no other instance.
 */
static inline int rf_db_cluster_instances(struct rf_db *st, int64_t seq,
					  int (*fn)(void *ud, const char *name, bool applied,
						    bool live),
					  void *ud)
{
	return st->ops->cluster_instances ? st->ops->cluster_instances(st, seq, fn, ud) : 0;
}

/* Bits of *ret_changed of rf_db_cluster_poll(). */
enum { RF_DB_CHANGED_CONFIG = 1 };

/*
 * The control connection's periodic work (called about once a second): (re)connect and LISTEN,
 * collect notifications (*ret_changed: RF_DB_CHANGED_*; also set after a reconnect, since
 * notifications may have been missed), and try to become the gate leader when not leader
 * (pg_try_advisory_lock, a session lock, then the lease's epoch incremented), or, when leader,
 * check that the lease is still this instance's (which also keeps the session from idling out).
 * *ret_seq: the change counter (rf_db_cluster_announce()) as read now, before any re-read.
 * *ret_leader: whether this instance holds the lock now (false while the control connection is
 * down). Never blocks for long: a reconnect is bounded by RF_PG_CONNECT_TIMEOUT_S. Returns 0 or
 * -EIO. Called by one thread only (the tick's), which also makes the fenced writes.
 */
static inline int rf_db_cluster_poll(struct rf_db *st, unsigned *ret_changed, bool *ret_leader,
				     int64_t *ret_seq)
{
	*ret_changed = 0;
	*ret_leader = true;
	*ret_seq = 0;
	return st->ops->cluster_poll ? st->ops->cluster_poll(st, ret_changed, ret_leader, ret_seq)
				     : 0;
}

/*
 * The control connection's socket, or -1 (SQLite; the control connection is down). It turns
 * readable when an announcement (or anything else from PostgreSQL) arrives, so the tick's
 * thread waits on it between ticks and calls rf_db_cluster_poll() at once: another instance's
 * change then shows here in milliseconds rather than at the next tick. Same thread only.
 */
static inline int rf_db_cluster_fd(struct rf_db *st)
{
	return st->ops->cluster_fd ? st->ops->cluster_fd(st) : -1;
}

#endif
