/*
 * The SQLite backend of struct rf_db (store.h).
 *
 * Invariants: the database runs in WAL mode with synchronous=FULL, so a transaction that
 * returned from COMMIT survives kill -9 and power loss; every write entry point is exactly one
 * transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on any error), so the database is always
 * either the old or the new state. The schema version is PRAGMA user_version; open() migrates
 * older versions forward inside one transaction and refuses newer ones. Calls are serialised by
 * the caller (ringfenced holds its store lock); the connection is also opened FULLMUTEX.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/util.h"
#include "server/store.h"

struct sqlite_store {
	struct rf_db base;
	sqlite3 *db;
	sqlite3_stmt *dev_put, *rep_add;
	sqlite3_stmt *rep_exists, *rep_count, *rep_trim; /* the bound on reports */
};

/* Schema migrations: migrations[i] takes the schema from version i to i + 1. */
static const char *const migrations[] = {
    "CREATE TABLE rings (name TEXT PRIMARY KEY, position INTEGER NOT NULL);"
    "CREATE TABLE tenants (name TEXT PRIMARY KEY, token_hash BLOB NOT NULL, ring TEXT,"
    "  pin TEXT NOT NULL, win_start INTEGER NOT NULL, win_end INTEGER NOT NULL);"
    "CREATE TABLE releases (id INTEGER PRIMARY KEY, target TEXT NOT NULL UNIQUE,"
    "  sha256 BLOB NOT NULL, length INTEGER NOT NULL, version INTEGER NOT NULL,"
    "  custom TEXT NOT NULL, created_at INTEGER NOT NULL, state TEXT NOT NULL);"
    "CREATE TABLE devices (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, ring TEXT NOT NULL,"
    "  cred_hash BLOB NOT NULL, agent_version TEXT NOT NULL, manifest_hash TEXT NOT NULL,"
    "  enrolled_at INTEGER NOT NULL, last_seen INTEGER NOT NULL, release_id INTEGER NOT NULL,"
    "  state TEXT NOT NULL, state_at INTEGER NOT NULL, crashes INTEGER NOT NULL,"
    "  rollbacks INTEGER NOT NULL, events INTEGER NOT NULL, alerts INTEGER NOT NULL,"
    "  history TEXT NOT NULL);"
    "CREATE TABLE reports (device_id TEXT NOT NULL, report_id TEXT NOT NULL,"
    "  event TEXT NOT NULL, target TEXT NOT NULL, sha256 TEXT NOT NULL,"
    "  release_id INTEGER NOT NULL, time INTEGER NOT NULL, received_at INTEGER NOT NULL,"
    "  detail TEXT NOT NULL, PRIMARY KEY (device_id, report_id)) WITHOUT ROWID;"
    "INSERT INTO rings VALUES ('canary', 0), ('early', 1), ('broad', 2);",
    /* 1 -> 2: the audit trail (store.h, struct rf_db_audit). */
    "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
    "  actor TEXT NOT NULL, action TEXT NOT NULL, release_id INTEGER NOT NULL,"
    "  subject TEXT NOT NULL, detail TEXT NOT NULL);"
    "CREATE INDEX audit_release ON audit (release_id, id);",
    /* 2 -> 3: PostgreSQL's step shares the admin token and tags device rows for several
     * instances; one SQLite database has one instance, whose token is in a file: the same
     * table, unused, so both backends keep one version number. */
    "CREATE TABLE IF NOT EXISTS rf_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
    /* 3 -> 4: a version on every device row, each write a compare-and-set on it (store.h,
     * struct rf_db_device); rows written before start at 1. */
    "ALTER TABLE devices ADD COLUMN version INTEGER NOT NULL DEFAULT 1;"
    /* PostgreSQL's gate lease (several instances); unused here, so both keep one version. */
    "CREATE TABLE IF NOT EXISTS rf_lease (name TEXT PRIMARY KEY, epoch INTEGER NOT NULL);",
    /* 4 -> 5: retention deletes the oldest reports first (rf_db_reports_purge). */
    "CREATE INDEX IF NOT EXISTS reports_received ON reports (received_at);",
};

static int fail(struct sqlite_store *s, const char *what)
{
	rf_diag_report(s->base.diag, -EIO, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
	return -EIO;
}

static int exec(struct sqlite_store *s, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		rf_diag_report(s->base.diag, -EIO, "sqlite: %.40s: %s", sql, msg ? msg : "error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static int begin(struct sqlite_store *s)
{
	return exec(s, "BEGIN IMMEDIATE");
}

static int commit(struct sqlite_store *s, int r)
{
	if (r == 0 && exec(s, "COMMIT") == 0)
		return 0;
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return r ? r : -EIO;
}

static int prepare(struct sqlite_store *s, const char *sql, sqlite3_stmt **ret)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, ret, NULL) != SQLITE_OK)
		return fail(s, "prepare");
	return 0;
}

/* Run a prepared statement with no result rows, then reset it for the next use. */
static int step_done(struct sqlite_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		if (rc == SQLITE_CONSTRAINT)
			return -EEXIST;
		return fail(s, what);
	}
	return 0;
}

static const char *text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? (const char *)t : "";
}

static void blob32(sqlite3_stmt *st, int col, uint8_t out[32])
{
	const void *b = sqlite3_column_blob(st, col);

	memset(out, 0, 32);
	if (b && sqlite3_column_bytes(st, col) == 32)
		memcpy(out, b, 32);
}

static void sq_close(struct rf_db *base)
{
	struct sqlite_store *s = (struct sqlite_store *)base;

	sqlite3_finalize(s->dev_put);
	sqlite3_finalize(s->rep_add);
	sqlite3_finalize(s->rep_exists);
	sqlite3_finalize(s->rep_count);
	sqlite3_finalize(s->rep_trim);
	sqlite3_close(s->db);
	free(s);
}

static int sq_load(struct rf_db *base, const struct rf_db_visitor *v, void *ud)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	static const char *const q[] = {
	    "SELECT name, position FROM rings ORDER BY position, name",
	    "SELECT name, token_hash, ring, pin, win_start, win_end FROM tenants ORDER BY name",
	    "SELECT id, target, sha256, length, version, custom, created_at, state"
	    " FROM releases ORDER BY id",
	    "SELECT id, tenant, ring, cred_hash, agent_version, manifest_hash, enrolled_at,"
	    " last_seen, release_id, state, state_at, crashes, rollbacks, events, alerts,"
	    " history, version FROM devices",
	};
	int r = 0;

	for (size_t i = 0; i < 4 && r == 0; i++) {
		sqlite3_stmt *st;
		int rc;

		r = prepare(s, q[i], &st);
		if (r < 0)
			return r;
		while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (i == 0 && v->ring) {
				struct rf_db_ring x = {text(st, 0), sqlite3_column_int64(st, 1)};
				r = v->ring(ud, &x);
			} else if (i == 1 && v->tenant) {
				struct rf_db_tenant x = {.name = text(st, 0)};
				blob32(st, 1, x.token_hash);
				x.ring =
				    sqlite3_column_type(st, 2) == SQLITE_NULL ? NULL : text(st, 2);
				x.pin = text(st, 3);
				x.win_start_min = sqlite3_column_int64(st, 4);
				x.win_end_min = sqlite3_column_int64(st, 5);
				r = v->tenant(ud, &x);
			} else if (i == 2 && v->release) {
				struct rf_db_release x = {.id = sqlite3_column_int64(st, 0),
							  .target = text(st, 1)};
				blob32(st, 2, x.sha256);
				x.length = (uint64_t)sqlite3_column_int64(st, 3);
				x.version = sqlite3_column_int64(st, 4);
				x.custom_json = text(st, 5);
				x.created_at = sqlite3_column_int64(st, 6);
				x.state_json = text(st, 7);
				r = v->release(ud, &x);
			} else if (i == 3 && v->device) {
				struct rf_db_device x = {
				    .id = text(st, 0), .tenant = text(st, 1), .ring = text(st, 2)};
				blob32(st, 3, x.cred_hash);
				x.agent_version = text(st, 4);
				x.manifest_hash = text(st, 5);
				x.enrolled_at = sqlite3_column_int64(st, 6);
				x.last_seen = sqlite3_column_int64(st, 7);
				x.release_id = sqlite3_column_int64(st, 8);
				x.state = text(st, 9);
				x.state_at = sqlite3_column_int64(st, 10);
				x.crashes = (uint64_t)sqlite3_column_int64(st, 11);
				x.rollbacks = (uint64_t)sqlite3_column_int64(st, 12);
				x.events = (uint64_t)sqlite3_column_int64(st, 13);
				x.alerts = (uint64_t)sqlite3_column_int64(st, 14);
				x.history = text(st, 15);
				x.version = sqlite3_column_int64(st, 16);
				r = v->device(ud, &x);
			}
		}
		if (r == 0 && rc != SQLITE_DONE)
			r = fail(s, "load");
		sqlite3_finalize(st);
	}
	return r;
}

static int sq_ring_put(struct rf_db *base, const struct rf_db_ring *x)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st;
	int r = prepare(s, "INSERT OR REPLACE INTO rings VALUES (?, ?)", &st);

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, x->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, x->position);
	r = begin(s);
	if (r == 0)
		r = commit(s, step_done(s, st, "ring_put"));
	sqlite3_finalize(st);
	return r;
}

static int sq_ring_delete(struct rf_db *base, const char *name)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st;
	int r = prepare(s, "DELETE FROM rings WHERE name = ?", &st);

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = begin(s);
	if (r == 0) {
		r = step_done(s, st, "ring_delete");
		if (r == 0 && sqlite3_changes(s->db) == 0)
			r = -ENOENT;
		r = commit(s, r);
	}
	sqlite3_finalize(st);
	return r;
}

static int sq_tenant_put(struct rf_db *base, const struct rf_db_tenant *x)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st;
	int r = prepare(s, "INSERT OR REPLACE INTO tenants VALUES (?, ?, ?, ?, ?, ?)", &st);

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, x->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, x->token_hash, 32, SQLITE_STATIC);
	if (x->ring)
		sqlite3_bind_text(st, 3, x->ring, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_text(st, 4, x->pin, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, x->win_start_min);
	sqlite3_bind_int64(st, 6, x->win_end_min);
	r = begin(s);
	if (r == 0)
		r = commit(s, step_done(s, st, "tenant_put"));
	sqlite3_finalize(st);
	return r;
}

static int sq_release_put(struct rf_db *base, const struct rf_db_release *x)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st;
	int r = prepare(s,
			"INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
			" ON CONFLICT(id) DO UPDATE SET state = excluded.state",
			&st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, x->id);
	sqlite3_bind_text(st, 2, x->target, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, x->sha256, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)x->length);
	sqlite3_bind_int64(st, 5, x->version);
	sqlite3_bind_text(st, 6, x->custom_json ? x->custom_json : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, x->created_at);
	sqlite3_bind_text(st, 8, x->state_json ? x->state_json : "", -1, SQLITE_STATIC);
	r = begin(s);
	if (r == 0)
		r = commit(s, step_done(s, st, "release_put"));
	sqlite3_finalize(st);
	return r;
}

static int bind_device(struct sqlite_store *s, const struct rf_db_device *d)
{
	sqlite3_stmt *st = s->dev_put;

	sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, d->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, d->ring, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, d->cred_hash, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, d->agent_version ? d->agent_version : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, d->manifest_hash ? d->manifest_hash : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, d->enrolled_at);
	sqlite3_bind_int64(st, 8, d->last_seen);
	sqlite3_bind_int64(st, 9, d->release_id);
	sqlite3_bind_text(st, 10, d->state ? d->state : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, d->state_at);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)d->crashes);
	sqlite3_bind_int64(st, 13, (sqlite3_int64)d->rollbacks);
	sqlite3_bind_int64(st, 14, (sqlite3_int64)d->events);
	sqlite3_bind_int64(st, 15, (sqlite3_int64)d->alerts);
	sqlite3_bind_text(st, 16, d->history ? d->history : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 17, d->version);
	int r = step_done(s, st, "device_put");
	/* Not written (compare-and-set failed): no row changed. */
	if (r == 0 && d->ret_version)
		*d->ret_version = sqlite3_changes(s->db) ? d->version + 1 : 0;
	return r;
}

/* The stored version of device id is still expected (report_add's compare-and-set). */
static int version_is(struct sqlite_store *s, const char *id, int64_t expected)
{
	sqlite3_stmt *st;
	int r = prepare(s, "SELECT version FROM devices WHERE id = ?", &st);

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = sqlite3_column_int64(st, 0) == expected ? 0 : -ESTALE;
	else if (rc == SQLITE_DONE)
		r = -ESTALE; /* a report of a device that has no row: as PostgreSQL */
	else
		r = fail(s, "report_add");
	sqlite3_finalize(st);
	return r;
}

static int sq_devices_put(struct rf_db *base, const struct rf_db_device *d, size_t n)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	int r = begin(s);

	for (size_t i = 0; r == 0 && i < n; i++)
		r = bind_device(s, &d[i]);
	return commit(s, r);
}

/* The bound on the reports of x's device and release (store.h, struct rf_db_report.limit):
 * *ret_dup when x is recorded already; otherwise, at the bound, *ret_full (nothing to write)
 * or, when x must be kept, the oldest deleted to make room. In the caller's transaction. */
static int over_limit(struct sqlite_store *s, const struct rf_db_report *x, bool *ret_dup,
		      bool *ret_full)
{
	sqlite3_stmt *q = s->rep_exists;
	int64_t n;
	int rc;

	sqlite3_bind_text(q, 1, x->device_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, x->report_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(s, "report_add: exists");
	if ((*ret_dup = rc == SQLITE_ROW))
		return 0;
	q = s->rep_count;
	sqlite3_bind_text(q, 1, x->device_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, x->release_id);
	rc = sqlite3_step(q);
	n = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_ROW)
		return fail(s, "report_add: count");
	if (n < (int64_t)x->limit)
		return 0;
	if (!x->keep) {
		*ret_full = true;
		return 0;
	}
	q = s->rep_trim;
	sqlite3_bind_text(q, 1, x->device_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, x->release_id);
	sqlite3_bind_int64(q, 3, n - (int64_t)x->limit + 1);
	return step_done(s, q, "report_add: trim");
}

static int sq_reports_purge(struct rf_db *base, int64_t before, unsigned max, uint64_t *ret)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *q = NULL;
	int e = prepare(s,
			"DELETE FROM reports WHERE (device_id, report_id) IN (SELECT device_id,"
			" report_id FROM reports WHERE received_at < ?1 ORDER BY received_at"
			" LIMIT ?2)",
			&q);

	if (e == 0)
		e = begin(s);
	if (e == 0) {
		sqlite3_bind_int64(q, 1, before);
		sqlite3_bind_int64(q, 2, max);
		e = step_done(s, q, "reports_purge");
		if (e == 0)
			*ret = (uint64_t)sqlite3_changes(s->db);
		e = commit(s, e);
	}
	sqlite3_finalize(q);
	return e;
}

static int sq_report_add(struct rf_db *base, const struct rf_db_report *r,
			 const struct rf_db_device *dev, size_t n, bool *ret_duplicate)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st = s->rep_add;
	bool *dup = calloc(n, sizeof(*dup));
	int e = dup ? begin(s) : -ENOMEM;

	if (e < 0) {
		free(dup);
		return e;
	}
	for (size_t i = 0; i < n && e == 0; i++) {
		const struct rf_db_report *x = &r[i];
		/* The device's compare-and-set first: a report whose device row changed since it
		 * was read is not written (*ret_version = 0); the others in the batch are. */
		if (dev && (e = version_is(s, dev[i].id, dev[i].version)) == -ESTALE) {
			e = 0;
			if (dev[i].ret_version)
				*dev[i].ret_version = 0;
			continue;
		}
		if (e < 0)
			break;
		if (dev && x->limit) {
			bool full = false;
			e = over_limit(s, x, &dup[i], &full);
			if (e < 0)
				break;
			if (dup[i] || full) {
				if (x->ret_full)
					*x->ret_full = full;
				if (dev[i].ret_version)
					*dev[i].ret_version = dev[i].version; /* the row as it is */
				continue;
			}
		}
		sqlite3_bind_text(st, 1, x->device_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, x->report_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, x->event, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, x->target ? x->target : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, x->sha256_hex ? x->sha256_hex : "", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, x->release_id);
		sqlite3_bind_int64(st, 7, x->time);
		sqlite3_bind_int64(st, 8, x->received_at);
		sqlite3_bind_text(st, 9, x->detail ? x->detail : "", -1, SQLITE_STATIC);
		e = step_done(s, st, "report_add");
		if (e < 0)
			break;
		dup[i] = sqlite3_changes(s->db) == 0;
		if (!dup[i] && dev)
			e = bind_device(s, &dev[i]);
		else if (dev && dev[i].ret_version)
			*dev[i].ret_version = dev[i].version; /* a duplicate: the row as it is */
	}
	e = commit(s, e);
	if (e == 0)
		memcpy(ret_duplicate, dup, n * sizeof(*dup));
	free(dup);
	return e;
}

static int sq_reports_count(struct rf_db *base, const char *device_id, uint64_t *ret)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st;
	int r = prepare(s,
			device_id ? "SELECT count(*) FROM reports WHERE device_id = ?"
				  : "SELECT count(*) FROM reports",
			&st);

	if (r < 0)
		return r;
	if (device_id)
		sqlite3_bind_text(st, 1, device_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*ret = (uint64_t)sqlite3_column_int64(st, 0);
	else
		r = fail(s, "reports_count");
	sqlite3_finalize(st);
	return r;
}

static int sq_audit_add(struct rf_db *base, const struct rf_db_audit *a, int64_t *ret_id)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st;
	int64_t id = 0;
	int r = prepare(s,
			"INSERT INTO audit (time, actor, action, release_id, subject, detail)"
			" VALUES (?, ?, ?, ?, ?, ?)",
			&st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, a->time);
	sqlite3_bind_text(st, 2, a->actor ? a->actor : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->action ? a->action : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, a->release_id);
	sqlite3_bind_text(st, 5, a->subject ? a->subject : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, a->detail ? a->detail : "", -1, SQLITE_STATIC);
	r = begin(s);
	if (r == 0) {
		r = step_done(s, st, "audit_add");
		id = sqlite3_last_insert_rowid(s->db);
		r = commit(s, r);
	}
	sqlite3_finalize(st);
	if (r == 0 && ret_id)
		*ret_id = id;
	return r;
}

static int sq_audit_list(struct rf_db *base, int64_t release_id, int64_t before_id, unsigned limit,
			 int (*fn)(void *ud, const struct rf_db_audit *a), void *ud)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite3_stmt *st;
	int r = prepare(s,
			"SELECT id, time, actor, action, release_id, subject, detail FROM audit"
			" WHERE (?1 <= 0 OR release_id = ?1) AND (?2 <= 0 OR id < ?2)"
			" ORDER BY id DESC LIMIT ?3",
			&st);
	int rc;

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, release_id);
	sqlite3_bind_int64(st, 2, before_id);
	sqlite3_bind_int64(st, 3, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct rf_db_audit a = {
		    .id = sqlite3_column_int64(st, 0),
		    .time = sqlite3_column_int64(st, 1),
		    .actor = text(st, 2),
		    .action = text(st, 3),
		    .release_id = sqlite3_column_int64(st, 4),
		    .subject = text(st, 5),
		    .detail = text(st, 6),
		};
		r = fn(ud, &a);
		if (r)
			break;
	}
	if (!r && rc != SQLITE_DONE)
		r = fail(s, "audit_list");
	sqlite3_finalize(st);
	return r;
}

static const struct rf_db_ops sqlite_ops = {
    .close = sq_close,
    .load = sq_load,
    .ring_put = sq_ring_put,
    .ring_delete = sq_ring_delete,
    .tenant_put = sq_tenant_put,
    .release_put = sq_release_put,
    .devices_put = sq_devices_put,
    .report_add = sq_report_add,
    .reports_count = sq_reports_count,
    .reports_purge = sq_reports_purge,
    .audit_add = sq_audit_add,
    .audit_list = sq_audit_list,
};

static int migrate(struct sqlite_store *s)
{
	sqlite3_stmt *st;
	int64_t v = -1;
	int r;

	r = begin(s);
	if (r < 0)
		return r;
	r = prepare(s, "PRAGMA user_version", &st);
	if (r == 0) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (r == 0 && v < 0)
		r = fail(s, "user_version");
	if (r == 0 && v > RF_DB_SCHEMA_VERSION)
		r = rf_diag_report(
		    s->base.diag, -EPROTO,
		    "sqlite: database schema version %lld is newer than this build (%d)",
		    (long long)v, RF_DB_SCHEMA_VERSION);
	for (; r == 0 && v < RF_DB_SCHEMA_VERSION; v++) {
		char sql[64];

		r = exec(s, migrations[v]);
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld", (long long)v + 1);
		if (r == 0)
			r = exec(s, sql);
	}
	return commit(s, r);
}

static int damaged(struct rf_diag *diag, const char *path, const char *what)
{
	return rf_diag_report(diag, -EBADMSG,
			      "database %s is damaged (%s): restore the newest backup "
			      "(docs/operators.md, \"Backup and restore\")",
			      path, what);
}

/* Whether db holds a schema (*ret_empty false) and, if it does, passes quick_check. Reads
 * only: a database that fails is left exactly as it was found. */
static int check_db(sqlite3 *db, const char *path, struct rf_diag *diag, bool *ret_empty)
{
	sqlite3_stmt *st = NULL;
	int64_t tables = -1;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		tables = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (tables < 0) {
		if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
			return damaged(diag, path, sqlite3_errstr(rc));
		return rf_diag_report(diag, -EIO, "sqlite: %s: %s", path, sqlite3_errmsg(db));
	}
	*ret_empty = tables == 0;
	if (tables == 0)
		return 0;
	/* quick_check: O(database size), every page and record but not index contents; a few
	 * seconds for millions of devices, once per start. It answers "ok" or what is wrong. */
	rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		char what[200];

		if (t && !strcmp(t, "ok")) {
			sqlite3_finalize(st);
			return 0;
		}
		snprintf(what, sizeof(what), "quick_check: %s", t ? t : "no answer");
		sqlite3_finalize(st);
		return damaged(diag, path, what);
	}
	sqlite3_finalize(st);
	return damaged(diag, path, sqlite3_errstr(rc));
}

int rf_db_open_sqlite(const char *path, unsigned flags, struct rf_diag *diag, struct rf_db **ret)
{
	struct sqlite_store *s = calloc(1, sizeof(*s));
	bool empty = false;
	int r;

	if (!s)
		return -ENOMEM;
	s->base.ops = &sqlite_ops;
	s->base.diag = diag;
	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX |
				(flags & RF_DB_CREATE ? SQLITE_OPEN_CREATE : 0),
			    NULL) != SQLITE_OK) {
		if (!(flags & RF_DB_CREATE) && access(path, F_OK) < 0 && errno == ENOENT)
			r = rf_diag_report(diag, -ENOENT, "database %s does not exist", path);
		else
			r = fail(s, path);
		goto undo_open;
	}
	sqlite3_busy_timeout(s->db, 5000);
	r = check_db(s->db, path, diag, &empty);
	if (r == 0 && empty && !(flags & RF_DB_CREATE))
		r = rf_diag_report(diag, -ENOENT, "database %s is empty (no tables)", path);
	if (r == 0 && !empty && (flags & RF_DB_EXCL))
		r = rf_diag_report(diag, -EEXIST, "database %s exists already", path);
	if (r < 0)
		goto undo_open;
	r = exec(s, "PRAGMA journal_mode = WAL");
	if (r == 0)
		r = exec(s, "PRAGMA synchronous = FULL");
	if (r == 0)
		r = migrate(s);
	if (r == 0)
		r = prepare(s,
			    "INSERT INTO devices VALUES"
			    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?17 + 1)"
			    " ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant,"
			    " ring = excluded.ring, cred_hash = excluded.cred_hash,"
			    " agent_version = excluded.agent_version,"
			    " manifest_hash = excluded.manifest_hash,"
			    " enrolled_at = CASE WHEN excluded.enrolled_at > 0"
			    " THEN excluded.enrolled_at ELSE devices.enrolled_at END,"
			    " last_seen = excluded.last_seen, release_id = excluded.release_id,"
			    " state = excluded.state, state_at = excluded.state_at,"
			    " crashes = excluded.crashes, rollbacks = excluded.rollbacks,"
			    " events = excluded.events, alerts = excluded.alerts,"
			    " history = excluded.history, version = excluded.version"
			    " WHERE devices.version = ?17",
			    &s->dev_put);
	if (r == 0)
		r = prepare(s, "INSERT OR IGNORE INTO reports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			    &s->rep_add);
	if (r == 0)
		r = prepare(s, "SELECT 1 FROM reports WHERE device_id = ? AND report_id = ?",
			    &s->rep_exists);
	if (r == 0)
		r = prepare(s,
			    "SELECT count(*) FROM reports WHERE device_id = ? AND release_id = ?",
			    &s->rep_count);
	if (r == 0)
		r = prepare(s,
			    "DELETE FROM reports WHERE device_id = ?1 AND report_id IN (SELECT"
			    " report_id FROM reports WHERE device_id = ?1 AND release_id = ?2"
			    " ORDER BY received_at, report_id LIMIT ?3)",
			    &s->rep_trim);
	if (r < 0)
		goto undo_open;
	*ret = &s->base;
	return 0;

undo_open:
	sqlite3_finalize(s->dev_put);
	sqlite3_finalize(s->rep_add);
	sqlite3_finalize(s->rep_exists);
	sqlite3_finalize(s->rep_count);
	sqlite3_finalize(s->rep_trim);
	sqlite3_close(s->db);
	free(s);
	return r;
}

/* The files SQLite keeps beside a database: a backup must never write one of the source's. */
static const char *const side_files[] = {"", "-wal", "-shm", "-journal"};

/* The absolute name of path without following its last component (which may not exist):
 * realpath() of its directory plus its base name. Returns 0 or -errno. */
static int name_of(const char *path, char out[PATH_MAX])
{
	char dir[PATH_MAX], *real;
	const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;

	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return -EISDIR;
	if (!slash) {
		memcpy(dir, ".", 2);
	} else if (slash == path) {
		memcpy(dir, "/", 2);
	} else {
		if ((size_t)(slash - path) >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = 0;
	}
	real = realpath(dir, NULL);
	if (!real)
		return -errno;
	int n = snprintf(out, PATH_MAX, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base);
	free(real);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* Whether name (absolute form mine) is the database src's file with suffix side: the same
 * name, or the same device and inode. */
static bool same_file(const char *name, const char *mine, const char *src, const char *side)
{
	char theirs[PATH_MAX + 16];
	struct stat a, b;

	snprintf(theirs, sizeof(theirs), "%s%s", src, side);
	return !strcmp(mine, theirs) || (stat(name, &a) == 0 && stat(theirs, &b) == 0 &&
					 a.st_dev == b.st_dev && a.st_ino == b.st_ino);
}

/*
 * Refuse a backup whose files (dest, its temporary dest.tmp and the journal SQLite writes
 * beside that) would be the source database or one of its -wal / -shm / -journal files, by
 * name (symbolic links resolved, the way SQLite names the source's side files) or by device
 * and inode (a hard link, a bind mount). Writing there would replace the live database under
 * a running server and damage it. 0 when the paths are apart; -EINVAL with diag otherwise.
 */
static int backup_apart(const char *path, const char *dest, const char *tmp, struct rf_diag *diag)
{
	char src[PATH_MAX], mine[PATH_MAX], name[PATH_MAX + 16];
	const char *const ours[] = {dest, tmp};
	char *real = realpath(path, NULL);
	int r;

	if (!real)
		return 0; /* no source: the caller reports it */
	r = snprintf(src, sizeof(src), "%s", real) >= (int)sizeof(src) ? -ENAMETOOLONG : 0;
	free(real);
	if (r < 0)
		return rf_diag_report(diag, -EINVAL, "backup: %s: path too long", path);
	for (size_t i = 0; i < 2; i++) {
		for (size_t j = 0; j < (i ? 4 : 1); j++) {
			/* dest itself, and dest.tmp with the side files SQLite makes for it. */
			snprintf(name, sizeof(name), "%s%s", ours[i], side_files[j]);
			r = name_of(name, mine);
			if (r < 0)
				return rf_diag_report(diag, -EINVAL, "backup: %s: %s", name,
						      rf_strerror(r));
			for (size_t k = 0; k < 4; k++)
				if (same_file(name, mine, src, side_files[k]))
					return rf_diag_report(
					    diag, -EINVAL,
					    "cannot back up %s to %s: %s is the database%s%s%s, "
					    "which the backup would replace under a running "
					    "server; write the backup to another file",
					    path, dest, name, k ? "'s " : " itself", side_files[k],
					    k ? " file" : "");
		}
	}
	return 0;
}

int rf_db_sqlite_backup(const char *path, const char *dest, struct rf_diag *diag)
{
	char tmp[4096];
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b;
	bool empty = false;
	int r, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", dest) >= sizeof(tmp))
		return rf_diag_report(diag, -EINVAL, "backup path too long");
	r = backup_apart(path, dest, tmp, diag);
	if (r < 0)
		return r;
	struct stat dst_st;
	if (stat(dest, &dst_st) == 0 && S_ISDIR(dst_st.st_mode))
		return rf_diag_report(
		    diag, -EINVAL,
		    "cannot back up %s to %s: it is a directory; give the backup's "
		    "file name (e.g. %s/ringfenced.db)",
		    path, dest, dest);
	/* A file that is there and is no SQLite database (the admin token beside the database,
	 * say) is not a backup the operator means to replace: refused, left as it was. */
	if (stat(dest, &dst_st) == 0 && S_ISREG(dst_st.st_mode) && dst_st.st_size > 0) {
		char head[16] = {0};
		int fd = open(dest, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		ssize_t got = fd < 0 ? -1 : read(fd, head, sizeof(head));

		if (fd >= 0)
			close(fd);
		if (got != (ssize_t)sizeof(head) || memcmp(head, "SQLite format 3", 16) != 0)
			return rf_diag_report(diag, -EINVAL,
					      "cannot back up %s to %s: that file is there and is "
					      "not a SQLite database; the backup would replace it. "
					      "Give another file name, or remove it first",
					      path, dest);
	}
	if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
	    SQLITE_OK) {
		r = access(path, F_OK) < 0 && errno == ENOENT
			? rf_diag_report(diag, -ENOENT, "database %s does not exist", path)
			: rf_diag_report(diag, -EIO, "sqlite: %s: %s", path, sqlite3_errmsg(src));
		goto out;
	}
	sqlite3_busy_timeout(src, 5000);
	/* The source is only read: a backup of a damaged database would just hide the damage. */
	r = check_db(src, path, diag, &empty);
	if (r == 0 && empty)
		r = rf_diag_report(diag, -ENOENT, "database %s is empty (no tables)", path);
	if (r < 0)
		goto out;
	unlink(tmp);
	if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		r = rf_diag_report(diag, -EIO, "sqlite: %s: %s", tmp, sqlite3_errmsg(dst));
		goto out;
	}
	/* One step copies every page inside one read transaction of the source: the copy is
	 * one committed state, whatever ringfenced writes meanwhile (WAL readers never block). */
	b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		r = rf_diag_report(diag, -EIO, "sqlite: backup: %s", sqlite3_errmsg(dst));
		goto out;
	}
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		r = rf_diag_report(diag, -EIO, "sqlite: backup: %s", sqlite3_errstr(rc));
		goto out;
	}
	r = check_db(dst, tmp, diag, &empty);
	if (r < 0)
		goto out;
	/* Leave the copy as one self-contained file (no -wal beside it) before it is moved. */
	if (sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_close(dst) != SQLITE_OK) {
		r = rf_diag_report(diag, -EIO, "sqlite: %s: %s", tmp, sqlite3_errmsg(dst));
		goto out;
	}
	dst = NULL;
	if (rename(tmp, dest) < 0) {
		r = rf_diag_report(diag, -EIO, "cannot rename %s to %s: %s", tmp, dest,
				   strerror(errno));
		unlink(tmp); /* never a full copy of the database left behind */
		goto out;
	}
	/* dest is shorter than tmp: its directory fits. */
	memcpy(tmp, dest, strlen(dest) + 1);
	char *slash = strrchr(tmp, '/');
	if (!slash)
		memcpy(tmp, ".", 2);
	else
		slash[slash == tmp] = 0; /* "/x" -> "/", "a/x" -> "a" */
	r = rf_dir_sync(tmp);
	if (r < 0)
		rf_diag_report(diag, r, "cannot sync directory %s", tmp);
out:
	if (dst) {
		sqlite3_close(dst);
		unlink(tmp);
	}
	sqlite3_close(src);
	return r;
}
