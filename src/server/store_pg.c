/*
 * The PostgreSQL backend of struct rf_db (store.h), over libpq: schema, open, load and writes.
 * The connection and query plumbing is store_pg_conn.c, the several-instances part
 * store_pg_cluster.c (store_pg_int.h between them).
 *
 * Invariants: every write entry point is exactly one transaction, committed before it returns
 * 0 (one statement in autocommit, or one statement whose data-modifying CTEs commit together),
 * so PostgreSQL holds either the old or the new state; with the server's default
 * synchronous_commit=on a commit that returned is on disk. Reports are idempotent by
 * (device_id, report_id): the insert is ON CONFLICT DO NOTHING and the device state that comes
 * with a report is written only when the report was new. The schema version is the one row of
 * rf_schema; open() creates the schema only with RF_DB_CREATE, migrates older versions forward
 * in one transaction under an advisory lock (several ringfenced may start at once) and refuses
 * newer ones, exactly as the SQLite backend does with PRAGMA user_version. rf_db_load() reads
 * in one REPEATABLE READ snapshot, row by row (libpq single-row mode): a fleet of millions is
 * never one result in memory. Calls are serialised by the caller (ringfenced: the store mutex of
 * dbserial.c; several connections are several stores).
 *
 * Connection loss: a call that finds the connection broken (or breaks it) fails with -EIO and
 * the diag says so; the next calls reconnect, without blocking (PQresetStart/PQresetPoll, see
 * ready() in store_pg_conn.c), at once, then with a doubling backoff (RF_PG_RESET_BACKOFF_*), so
 * the server serves from memory meanwhile and uses the database again by itself when it is back. A
 * write whose COMMIT got no answer may or may not have been committed; every write is idempotent
 * (upserts, reports by id), so the client's retry is safe.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/rand.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "server/store_pg_int.h"

/* Schema migrations: migrations[i] takes the schema from version i to i + 1 (store_sqlite.c
 * keeps the same list for SQLite: both backends share RF_DB_SCHEMA_VERSION). reports.seq orders
 * reports for readers that follow the table (other instances). */
static const char *const migrations[] = {
    "CREATE TABLE rings (name text PRIMARY KEY, position bigint NOT NULL);"
    "CREATE TABLE tenants (name text PRIMARY KEY, token_hash bytea NOT NULL, ring text,"
    "  pin text NOT NULL, win_start bigint NOT NULL, win_end bigint NOT NULL);"
    "CREATE TABLE releases (id bigint PRIMARY KEY, target text NOT NULL UNIQUE,"
    "  sha256 bytea NOT NULL, length bigint NOT NULL, version bigint NOT NULL,"
    "  custom text NOT NULL, created_at bigint NOT NULL, state text NOT NULL);"
    "CREATE TABLE devices (id text PRIMARY KEY, tenant text NOT NULL, ring text NOT NULL,"
    "  cred_hash bytea NOT NULL, agent_version text NOT NULL, manifest_hash text NOT NULL,"
    "  enrolled_at bigint NOT NULL, last_seen bigint NOT NULL, release_id bigint NOT NULL,"
    "  state text NOT NULL, state_at bigint NOT NULL, crashes bigint NOT NULL,"
    "  rollbacks bigint NOT NULL, events bigint NOT NULL, alerts bigint NOT NULL,"
    "  history text NOT NULL);"
    "CREATE TABLE reports (seq bigserial NOT NULL UNIQUE, device_id text NOT NULL,"
    "  report_id text NOT NULL, event text NOT NULL, target text NOT NULL,"
    "  sha256 text NOT NULL, release_id bigint NOT NULL, time bigint NOT NULL,"
    "  received_at bigint NOT NULL, detail text NOT NULL, PRIMARY KEY (device_id, report_id));"
    "INSERT INTO rings VALUES ('canary', 0), ('early', 1), ('broad', 2);",
    /* 1 -> 2: the audit trail (store.h, struct rf_db_audit). */
    "CREATE TABLE audit (id bigserial PRIMARY KEY, time bigint NOT NULL, actor text NOT NULL,"
    "  action text NOT NULL, release_id bigint NOT NULL, subject text NOT NULL,"
    "  detail text NOT NULL);"
    "CREATE INDEX audit_release ON audit (release_id, id);",
    /* 2 -> 3: several instances on one database: the admin token's hash shared through the
     * database (rf_meta), and which transaction and instance last wrote each device row (the
     * other instances read the rows written since they last looked, store.h). */
    "CREATE TABLE IF NOT EXISTS rf_meta (key text PRIMARY KEY, value bytea NOT NULL);"
    "ALTER TABLE devices ADD COLUMN IF NOT EXISTS txid xid8 NOT NULL"
    "  DEFAULT pg_current_xact_id(),"
    "  ADD COLUMN IF NOT EXISTS instance text NOT NULL"
    "  DEFAULT coalesce(current_setting('ringfence.instance', true), '');"
    "CREATE INDEX IF NOT EXISTS devices_txid ON devices (txid);",
    /* 3 -> 4: a version on every device row, each write a compare-and-set on it (store.h,
     * struct rf_db_device); rows written before start at 1, ... */
    "ALTER TABLE devices ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 1;"
    /* and the gate lease's epoch, incremented by every instance that takes the lease: a
     * fencing token in every gate decision it writes (store.h). */
    "CREATE TABLE IF NOT EXISTS rf_lease (name text PRIMARY KEY, epoch bigint NOT NULL);",
    /* 4 -> 5: retention deletes the oldest reports first (rf_db_reports_purge). */
    "CREATE INDEX IF NOT EXISTS reports_received ON reports (received_at);",
};

/* Advisory lock key held while the schema is created or migrated ("rfdb"). */
#define SCHEMA_LOCK_KEY "1919312994"

/* The device row's compare-and-set (store.h): the value given for version is the writer's
 * version + 1, and an existing row is replaced only when its version is one less. */
#define DEV_SET                                                                                    \
	" ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, ring = excluded.ring,"          \
	" cred_hash = excluded.cred_hash, agent_version = excluded.agent_version,"                 \
	" manifest_hash = excluded.manifest_hash, enrolled_at = CASE WHEN"                         \
	" excluded.enrolled_at > 0 THEN excluded.enrolled_at ELSE devices.enrolled_at END,"        \
	" last_seen = excluded.last_seen, release_id = excluded.release_id,"                       \
	" state = excluded.state, state_at = excluded.state_at, crashes = excluded.crashes,"       \
	" rollbacks = excluded.rollbacks, events = excluded.events, alerts = excluded.alerts,"     \
	" history = excluded.history, version = excluded.version, txid = pg_current_xact_id(),"    \
	" instance = coalesce(current_setting('ringfence.instance', true), '')"                    \
	" WHERE devices.version = excluded.version - 1"

static void p_device(struct params *p, const struct rf_db_device *d)
{
	rf__pg_p_text(p, d->id);
	rf__pg_p_text(p, d->tenant);
	rf__pg_p_text(p, d->ring);
	rf__pg_p_blob32(p, d->cred_hash);
	rf__pg_p_text(p, d->agent_version ? d->agent_version : "");
	rf__pg_p_text(p, d->manifest_hash ? d->manifest_hash : "");
	rf__pg_p_int(p, d->enrolled_at);
	rf__pg_p_int(p, d->last_seen);
	rf__pg_p_int(p, d->release_id);
	rf__pg_p_text(p, d->state ? d->state : "");
	rf__pg_p_int(p, d->state_at);
	rf__pg_p_int(p, (int64_t)d->crashes);
	rf__pg_p_int(p, (int64_t)d->rollbacks);
	rf__pg_p_int(p, (int64_t)d->events);
	rf__pg_p_int(p, (int64_t)d->alerts);
	rf__pg_p_text(p, d->history ? d->history : "");
	rf__pg_p_int(p, d->version + 1);
}

static void pg_close(struct rf_db *base)
{
	struct pg_store *s = (struct pg_store *)base;

	PQfinish(s->conn);
	PQfinish(s->ctl);
	free(s->cursor);
	free(s->uri);
	free(s);
}

static int visit(int i, PGresult *res, const struct rf_db_visitor *v, void *ud)
{
	if (i == 0 && v->ring) {
		struct rf_db_ring x = {PQgetvalue(res, 0, 0), rf__pg_col_int(res, 0, 1)};
		return v->ring(ud, &x);
	}
	if (i == 1 && v->tenant) {
		struct rf_db_tenant x = {.name = PQgetvalue(res, 0, 0)};
		rf__pg_col_blob32(res, 0, 1, x.token_hash);
		x.ring = PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2);
		x.pin = PQgetvalue(res, 0, 3);
		x.win_start_min = rf__pg_col_int(res, 0, 4);
		x.win_end_min = rf__pg_col_int(res, 0, 5);
		return v->tenant(ud, &x);
	}
	if (i == 2 && v->release) {
		struct rf_db_release x = {.id = rf__pg_col_int(res, 0, 0),
					  .target = PQgetvalue(res, 0, 1)};
		rf__pg_col_blob32(res, 0, 2, x.sha256);
		x.length = (uint64_t)rf__pg_col_int(res, 0, 3);
		x.version = rf__pg_col_int(res, 0, 4);
		x.custom_json = PQgetvalue(res, 0, 5);
		x.created_at = rf__pg_col_int(res, 0, 6);
		x.state_json = PQgetvalue(res, 0, 7);
		return v->release(ud, &x);
	}
	if (i == 3 && v->device) /* single-row mode: one row, DEV_SELECT's columns */
		return rf__pg_visit_devices(res, v, ud);
	return 0;
}

/* One query in single-row mode: every row to visit(); the result is always read to its end so
 * the connection stays usable whatever the visitor returned. */
static int load_one(struct pg_store *s, int i, const char *sql, const struct rf_db_visitor *v,
		    void *ud)
{
	PGresult *res;
	int r = 0, stop = 0;

	if (!PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
		return rf__pg_fail(s, NULL, "load");
	if (!PQsetSingleRowMode(s->conn))
		r = rf_diag_report(s->base.diag, -EIO, "postgresql: single-row mode refused");
	while ((res = PQgetResult(s->conn))) {
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_SINGLE_TUPLE) {
			if (r == 0 && !stop)
				stop = visit(i, res, v, ud);
			PQclear(res);
		} else if (st == PGRES_TUPLES_OK) {
			PQclear(res);
		} else {
			int e = rf__pg_fail(s, res, "load");
			if (r == 0)
				r = e;
		}
	}
	return r ? r : stop;
}

static int pg_load(struct rf_db *base, const struct rf_db_visitor *v, void *ud)
{
	struct pg_store *s = (struct pg_store *)base;
	static const char *const q[] = {
	    "SELECT name, position FROM rings ORDER BY position, name",
	    "SELECT name, encode(token_hash, 'hex'), ring, pin, win_start, win_end FROM tenants"
	    " ORDER BY name",
	    "SELECT id, target, encode(sha256, 'hex'), length, version, custom, created_at, state"
	    " FROM releases ORDER BY id",
	    DEV_SELECT,
	};
	int r = rf__pg_exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "load");

	/* With devices: the cursor of devices_changed is this snapshot (store.h). Without (the
	 * other instances' re-read of the small tables): the devices are not read and the cursor
	 * is left alone. */
	if (r == 0 && v->device) {
		PGresult *res = NULL;
		char *snap = NULL;
		r = rf__pg_run(s, "SELECT pg_current_snapshot()::text", NULL, "load", &res);
		if (r == 0 && !(snap = strdup(PQgetvalue(res, 0, 0))))
			r = -ENOMEM;
		if (r == 0) {
			free(s->cursor);
			s->cursor = snap;
		}
		PQclear(res);
	}
	for (int i = 0; i < 4 && r == 0; i++)
		if (i < 3 || v->device)
			r = load_one(s, i, q[i], v, ud);
	if (r == 0)
		return rf__pg_finish(s, 0);
	rf__pg_finish(s, -EIO);
	return r;
}

static int pg_ring_put(struct rf_db *base, const struct rf_db_ring *x)
{
	struct pg_store *s = (struct pg_store *)base;
	struct params p;
	int r = rf__pg_params_init(&p, 2);

	if (r == 0) {
		rf__pg_p_text(&p, x->name);
		rf__pg_p_int(&p, x->position);
		r = rf__pg_run(s,
			       "INSERT INTO rings VALUES ($1, $2)"
			       " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
			       &p, "ring_put", NULL);
	}
	rf__pg_params_free(&p);
	return r;
}

static int pg_ring_delete(struct rf_db *base, const char *name)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = rf__pg_params_init(&p, 1);

	if (r == 0) {
		rf__pg_p_text(&p, name);
		r = rf__pg_run(s, "DELETE FROM rings WHERE name = $1", &p, "ring_delete", &res);
	}
	if (r == 0 && !strcmp(PQcmdTuples(res), "0"))
		r = -ENOENT;
	PQclear(res);
	rf__pg_params_free(&p);
	return r;
}

static int pg_tenant_put(struct rf_db *base, const struct rf_db_tenant *x)
{
	struct pg_store *s = (struct pg_store *)base;
	struct params p;
	int r = rf__pg_params_init(&p, 6);

	if (r == 0) {
		rf__pg_p_text(&p, x->name);
		rf__pg_p_blob32(&p, x->token_hash);
		rf__pg_p_text(&p, x->ring);
		rf__pg_p_text(&p, x->pin);
		rf__pg_p_int(&p, x->win_start_min);
		rf__pg_p_int(&p, x->win_end_min);
		r = rf__pg_run(
		    s,
		    "INSERT INTO tenants VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name)"
		    " DO UPDATE SET token_hash = excluded.token_hash, ring = excluded.ring,"
		    " pin = excluded.pin, win_start = excluded.win_start,"
		    " win_end = excluded.win_end",
		    &p, "tenant_put", NULL);
	}
	rf__pg_params_free(&p);
	return r;
}

static int pg_release_put(struct rf_db *base, const struct rf_db_release *x)
{
	struct pg_store *s = (struct pg_store *)base;
	struct params p;
	int r = rf__pg_params_init(&p, 8);

	if (r == 0) {
		rf__pg_p_int(&p, x->id);
		rf__pg_p_text(&p, x->target);
		rf__pg_p_blob32(&p, x->sha256);
		rf__pg_p_int(&p, (int64_t)x->length);
		rf__pg_p_int(&p, x->version);
		rf__pg_p_text(&p, x->custom_json ? x->custom_json : "");
		rf__pg_p_int(&p, x->created_at);
		rf__pg_p_text(&p, x->state_json ? x->state_json : "");
		if (x->prev_state && *x->prev_state) {
			PGresult *res = NULL;
			/* Compare-and-set: another instance (the gate leader, an operator there)
			 * may have changed it since this one read it. A gate's decision also needs
			 * the lease still to be the one this instance took (fencing token). */
			p.n = 0;
			memset(p.len, 0, 3 * sizeof(*p.len)); /* no longer the sha256 (binary) */
			memset(p.fmt, 0, 3 * sizeof(*p.fmt));
			rf__pg_p_int(&p, x->id);
			rf__pg_p_text(&p, x->state_json ? x->state_json : "");
			rf__pg_p_text(&p, x->prev_state);
			if (x->fenced)
				rf__pg_p_int(&p, s->epoch);
			r = x->fenced && !s->epoch ? -ESTALE : 0; /* not leader (any more) */
			if (r == 0)
				r = rf__pg_run(
				    s,
				    x->fenced ? "UPDATE releases SET state = $2 WHERE id = $1 AND"
						" state = $3 AND EXISTS (SELECT 1 FROM rf_lease"
						" WHERE name = 'gate' AND epoch = $4::bigint)"
					      : "UPDATE releases SET state = $2 WHERE id = $1 AND"
						" state = $3",
				    &p, "release_put", &res);
			if (r == 0 && !strcmp(PQcmdTuples(res), "0"))
				r = -ESTALE;
			PQclear(res);
		} else {
			r = rf__pg_run(s,
				       x->prev_state
					   ? "INSERT INTO releases VALUES ($1, $2, $3, $4, $5, $6,"
					     " $7, $8)"
					   : "INSERT INTO releases VALUES ($1, $2, $3, $4, $5, $6,"
					     " $7, $8) ON CONFLICT (id) DO UPDATE SET state ="
					     " excluded.state",
				       &p, "release_put", NULL);
		}
	}
	rf__pg_params_free(&p);
	return r;
}

/* "INSERT INTO devices (...) VALUES ($1, ..., $16), ..., ($k, ...) ON CONFLICT ..." for rows
 * rows. Returns a malloc'd string or NULL. */
static char *devices_sql(size_t rows)
{
	size_t cap = 256 + sizeof(DEV_SET) + rows * DEV_NPARAMS * 9, n;
	char *sql = malloc(cap);
	size_t k = 1;

	if (!sql)
		return NULL;
	n = (size_t)snprintf(sql, cap, "INSERT INTO devices (" DEV_COLS ") VALUES ");
	for (size_t i = 0; i < rows; i++) {
		sql[n++] = i ? ',' : ' ';
		sql[n++] = '(';
		for (int c = 0; c < DEV_NPARAMS; c++)
			n += (size_t)snprintf(sql + n, cap - n, "%s$%zu", c ? "," : "", k++);
		sql[n++] = ')';
	}
	snprintf(sql + n, cap - n, "%s RETURNING id", DEV_SET);
	return sql;
}

/* Lock order. Every write transaction that touches several device rows (a group commit of
 * reports, a chunk of the device flush) locks them in ascending order of id (byte order,
 * strcmp), whichever instance runs it: two of them can then wait for each other's rows only
 * one way, never in a cycle, so PostgreSQL never has to abort one of them for a deadlock
 * (rf__pg_tx() still runs a transaction again if it was aborted anyway, by a cycle with some
 * other session). by_id() gives the order: indexes of the records sorted by id, ties kept in
 * their given order (reports of one device in a batch stay in order). */
struct keyed {
	const char *id;
	size_t i;
};

static int keyed_cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* order[0..n) = the indexes 0..n-1 in ascending id order; ids[i] is record i's id. */
static int by_id(const char *const *ids, size_t n, size_t **ret_order)
{
	struct keyed *k = malloc((n ? n : 1) * sizeof(*k));
	size_t *order = malloc((n ? n : 1) * sizeof(*order));

	if (!k || !order) {
		free(k);
		free(order);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		k[i] = (struct keyed){ids[i], i};
	qsort(k, n, sizeof(*k), keyed_cmp);
	for (size_t i = 0; i < n; i++)
		order[i] = k[i].i;
	free(k);
	*ret_order = order;
	return 0;
}

/* The rows of d[0..n) that res (RETURNING id: the rows written) names get their new version,
 * the others 0 (compare-and-set failed). RETURNING follows the VALUES order in practice: the
 * search starts where the previous one ended, so it is linear then, and correct in any case. */
static void devices_written(PGresult *res, const struct rf_db_device *const *d, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < n; i++)
		if (d[i]->ret_version)
			*d[i]->ret_version = 0;
	for (int k = 0; k < PQntuples(res) && n; k++) {
		const char *id = PQgetvalue(res, k, 0);
		for (size_t tries = 0; tries < n; tries++, j = (j + 1) % n)
			if (!strcmp(d[j]->id, id)) {
				if (d[j]->ret_version)
					*d[j]->ret_version = d[j]->version + 1;
				j = (j + 1) % n;
				break;
			}
	}
}

/* One devices_put: the records in lock order, the statement's parameters and text. */
struct put_tx {
	const struct rf_db_device **d; /* sorted by id */
	size_t n;
	struct params p;
};

static int devices_put_tx(struct pg_store *s, void *ud)
{
	struct put_tx *x = ud;
	size_t per = RF_PG_DEVICES_PER_STATEMENT, sql_rows = 0;
	char *sql = NULL;
	int r = 0;

	if (x->n > per)
		r = rf__pg_exec(s, "BEGIN", "devices_put");
	for (size_t i = 0; r == 0 && i < x->n; i += per) {
		size_t rows = x->n - i < per ? x->n - i : per;

		if (rows != sql_rows) {
			free(sql);
			sql = devices_sql(rows);
			sql_rows = rows;
			if (!sql) {
				r = -ENOMEM;
				break;
			}
		}
		PGresult *res = NULL;
		x->p.n = 0;
		for (size_t j = 0; j < rows; j++)
			p_device(&x->p, x->d[i + j]);
		r = rf__pg_run(s, sql, &x->p, "devices_put", &res);
		if (r == 0)
			devices_written(res, x->d + i, rows);
		PQclear(res);
	}
	if (x->n > per)
		r = rf__pg_finish(s, r);
	free(sql);
	return r;
}

static int pg_devices_put(struct rf_db *base, const struct rf_db_device *d, size_t n)
{
	struct pg_store *s = (struct pg_store *)base;
	struct put_tx x = {.n = n};
	const char **ids = NULL;
	size_t *order = NULL;
	int r;

	if (n == 0)
		return 0;
	x.d = calloc(n, sizeof(*x.d));
	ids = calloc(n, sizeof(*ids));
	r = x.d && ids ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++)
		ids[i] = d[i].id;
	if (r == 0)
		r = by_id(ids, n, &order);
	for (size_t i = 0; r == 0 && i < n; i++)
		x.d[i] = &d[order[i]];
	if (r == 0)
		r = rf__pg_params_init(
		    &x.p,
		    (int)((n < RF_PG_DEVICES_PER_STATEMENT ? n : RF_PG_DEVICES_PER_STATEMENT) *
			  DEV_NPARAMS));
	if (r == 0)
		r = rf__pg_tx(s, devices_put_tx, &x);
	rf__pg_params_free(&x.p);
	free(order);
	free(ids);
	free(x.d);
	return r;
}

/* One report_add: the batch, its lock order, the statement and where the results go. */
struct report_tx {
	const struct rf_db_report *r;
	const struct rf_db_device *dev; /* NULL: reports only */
	size_t n;
	const size_t *order;
	const char *sql;
	struct params p;
	bool *dup;
};

static int report_add_tx(struct pg_store *s, void *ud)
{
	struct report_tx *b = ud;
	int e = 0;

	if (b->n > 1)
		e = rf__pg_exec(s, "BEGIN", "report_add");
	for (size_t k = 0; k < b->n && e == 0; k++) {
		size_t i = b->order[k];
		const struct rf_db_report *x = &b->r[i];
		const struct rf_db_device *dev = b->dev ? &b->dev[i] : NULL;
		PGresult *res = NULL;
		b->p.n = 0;
		rf__pg_p_text(&b->p, x->device_id);
		rf__pg_p_text(&b->p, x->report_id);
		rf__pg_p_text(&b->p, x->event);
		rf__pg_p_text(&b->p, x->target ? x->target : "");
		rf__pg_p_text(&b->p, x->sha256_hex ? x->sha256_hex : "");
		rf__pg_p_int(&b->p, x->release_id);
		rf__pg_p_int(&b->p, x->time);
		rf__pg_p_int(&b->p, x->received_at);
		rf__pg_p_text(&b->p, x->detail ? x->detail : "");
		if (dev) {
			p_device(&b->p, dev);
			rf__pg_p_int(&b->p, x->limit);
			rf__pg_p_int(&b->p, x->keep);
		}
		e = rf__pg_run(s, b->sql, &b->p, "report_add", &res);
		if (e == 0 && PQntuples(res) != 1)
			e = rf_diag_report(s->base.diag, -EIO, "postgresql: report_add: no count");
		if (e == 0 && rf__pg_col_int(res, 0, 1) == 0) {
			/* the device row changed since the caller read it: nothing written */
			b->dup[i] = false;
			if (dev->ret_version)
				*dev->ret_version = 0;
		} else if (e == 0) {
			bool ins = rf__pg_col_int(res, 0, 0) != 0;
			/* not inserted: recorded already, or (with a device) over its bound */
			b->dup[i] = !ins && (!dev || rf__pg_col_int(res, 0, 2) != 0);
			if (dev && !ins && !b->dup[i] && x->ret_full)
				*x->ret_full = true;
			if (dev && dev->ret_version)
				*dev->ret_version = ins ? dev->version + 1 : dev->version;
		}
		PQclear(res);
	}
	if (b->n > 1)
		e = rf__pg_finish(s, e);
	return e;
}

static int pg_report_add(struct rf_db *base, const struct rf_db_report *r,
			 const struct rf_db_device *dev, size_t n, bool *ret_duplicate)
{
	struct pg_store *s = (struct pg_store *)base;
	/* One statement per report: the device row is written only when the report row was new
	 * (data-modifying CTEs run to completion whether or not the query reads them). With a
	 * device, the compare-and-set on its version comes first: cur locks the row (FOR UPDATE
	 * returns its newest version, waiting for a writer in progress), and the report is
	 * inserted only if that is the version the caller read (ok), so the report and the device
	 * state it leads to are written together or not at all; a stale one writes nothing and
	 * raises no error, so the rest of a batch goes on. A batch (group commit) is one
	 * transaction around them: one COMMIT, one flush of the WAL; its reports are written in
	 * ascending device id order (the lock order, by_id()). */
	static const char cas[] =
	    "WITH cur AS (SELECT version FROM devices WHERE id = $10::text FOR UPDATE),"
	    " ok AS (SELECT 1 FROM cur WHERE version = $26::bigint - 1), "
	    /* The bound on the device's reports of the release (store.h, struct
	     * rf_db_report.limit $27, keep $28): had, recorded already; n, how many it has;
	     * room, whether one more fits (or must be kept); trim, the oldest deleted to make
	     * room for one that must be kept. */
	    "had AS (SELECT 1 FROM reports WHERE device_id = $1::text AND report_id = $2::text),"
	    " n AS (SELECT count(*) AS c FROM reports WHERE $27::bigint > 0"
	    " AND device_id = $1::text AND release_id = $6::bigint),"
	    " room AS (SELECT 1 FROM n WHERE $27::bigint = 0 OR c < $27::bigint"
	    " OR $28::bigint = 1),"
	    " trim AS (DELETE FROM reports WHERE device_id = $1::text AND report_id IN"
	    " (SELECT report_id FROM reports WHERE device_id = $1::text"
	    " AND release_id = $6::bigint ORDER BY seq"
	    " LIMIT greatest((SELECT c FROM n) - $27::bigint + 1, 0))"
	    " AND $27::bigint > 0 AND $28::bigint = 1 AND EXISTS (SELECT 1 FROM ok)"
	    " AND NOT EXISTS (SELECT 1 FROM had) RETURNING 1), ";
	static const char ins[] =
	    "ins AS (INSERT INTO reports (device_id, report_id, event, target, sha256,"
	    " release_id, time, received_at, detail) SELECT $1::text, $2::text, $3::text,"
	    " $4::text, $5::text, $6::bigint, $7::bigint, $8::bigint, $9::text";
	static const char ins_end[] = " ON CONFLICT (device_id, report_id) DO NOTHING RETURNING 1)";
	static const char up[] =
	    ", up AS (INSERT INTO devices (" DEV_COLS ") SELECT $10::text, $11::text, $12::text,"
	    " $13::bytea, $14::text, $15::text, $16::bigint, $17::bigint, $18::bigint, $19::text,"
	    " $20::bigint, $21::bigint, $22::bigint, $23::bigint, $24::bigint, $25::text,"
	    " $26::bigint WHERE EXISTS (SELECT 1 FROM ins)" DEV_SET " RETURNING 1)";
	static const char count[] = " SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM ok),"
				    " (SELECT count(*) FROM had)";
	char sql[sizeof(cas) + sizeof(ins) + 96 + sizeof(ins_end) + sizeof(up) + sizeof(count)];
	struct report_tx b = {.r = r, .dev = dev, .n = n, .sql = sql};
	const char **ids = calloc(n ? n : 1, sizeof(*ids));
	size_t *order = NULL;
	int e;

	b.dup = calloc(n ? n : 1, sizeof(*b.dup));
	e = ids && b.dup ? rf__pg_params_init(&b.p, 9 + DEV_NPARAMS + 2) : -ENOMEM;
	for (size_t i = 0; e == 0 && i < n; i++)
		ids[i] = r[i].device_id;
	if (e == 0)
		e = by_id(ids, n, &order);
	b.order = order;
	if (dev)
		snprintf(
		    sql, sizeof(sql),
		    "%s%s WHERE EXISTS (SELECT 1 FROM ok) AND EXISTS (SELECT 1 FROM room)%s%s%s",
		    cas, ins, ins_end, up, count);
	else
		snprintf(sql, sizeof(sql), "WITH %s%s SELECT count(*), 1 FROM ins", ins, ins_end);
	if (e == 0)
		e = rf__pg_tx(s, report_add_tx, &b);
	if (e == 0)
		memcpy(ret_duplicate, b.dup, n * sizeof(*b.dup));
	free(order);
	free(ids);
	free(b.dup);
	rf__pg_params_free(&b.p);
	return e;
}

static int pg_reports_count(struct rf_db *base, const char *device_id, uint64_t *ret)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = rf__pg_params_init(&p, 1);

	if (r == 0 && device_id)
		rf__pg_p_text(&p, device_id);
	if (r == 0)
		r = rf__pg_run(s,
			       device_id ? "SELECT count(*) FROM reports WHERE device_id = $1"
					 : "SELECT count(*) FROM reports",
			       &p, "reports_count", &res);
	if (r == 0 && PQntuples(res) != 1)
		r = rf_diag_report(s->base.diag, -EIO, "postgresql: reports_count: no row");
	if (r == 0)
		*ret = (uint64_t)rf__pg_col_int(res, 0, 0);
	PQclear(res);
	rf__pg_params_free(&p);
	return r;
}

static int pg_reports_purge(struct rf_db *base, int64_t before, unsigned max, uint64_t *ret)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = rf__pg_params_init(&p, 2);

	if (r == 0) {
		rf__pg_p_int(&p, before);
		rf__pg_p_int(&p, max);
		r = rf__pg_run(s,
			       "DELETE FROM reports WHERE seq IN (SELECT seq FROM reports"
			       " WHERE received_at < $1::bigint ORDER BY received_at"
			       " LIMIT $2::bigint)",
			       &p, "reports_purge", &res);
	}
	if (r == 0)
		*ret = strtoull(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	rf__pg_params_free(&p);
	return r;
}

static int pg_audit_add(struct rf_db *base, const struct rf_db_audit *a, int64_t *ret_id)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = rf__pg_params_init(&p, 6);

	if (r == 0) {
		rf__pg_p_int(&p, a->time);
		rf__pg_p_text(&p, a->actor ? a->actor : "");
		rf__pg_p_text(&p, a->action ? a->action : "");
		rf__pg_p_int(&p, a->release_id);
		rf__pg_p_text(&p, a->subject ? a->subject : "");
		rf__pg_p_text(&p, a->detail ? a->detail : "");
		r = rf__pg_run(
		    s,
		    "INSERT INTO audit (time, actor, action, release_id, subject, detail)"
		    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
		    &p, "audit_add", &res);
	}
	if (r == 0 && PQntuples(res) != 1)
		r = rf_diag_report(s->base.diag, -EIO, "postgresql: audit_add: no id");
	if (r == 0 && ret_id)
		*ret_id = rf__pg_col_int(res, 0, 0);
	PQclear(res);
	rf__pg_params_free(&p);
	return r;
}

static int pg_audit_list(struct rf_db *base, int64_t release_id, int64_t before_id, unsigned limit,
			 int (*fn)(void *ud, const struct rf_db_audit *a), void *ud)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = rf__pg_params_init(&p, 3);

	if (r == 0) {
		rf__pg_p_int(&p, release_id);
		rf__pg_p_int(&p, before_id);
		rf__pg_p_int(&p, limit);
		r = rf__pg_run(
		    s,
		    "SELECT id, time, actor, action, release_id, subject, detail FROM audit"
		    " WHERE ($1::bigint <= 0 OR release_id = $1::bigint)"
		    " AND ($2::bigint <= 0 OR id < $2::bigint)"
		    " ORDER BY id DESC LIMIT $3::bigint",
		    &p, "audit_list", &res);
	}
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct rf_db_audit a = {
		    .id = rf__pg_col_int(res, i, 0),
		    .time = rf__pg_col_int(res, i, 1),
		    .actor = PQgetvalue(res, i, 2),
		    .action = PQgetvalue(res, i, 3),
		    .release_id = rf__pg_col_int(res, i, 4),
		    .subject = PQgetvalue(res, i, 5),
		    .detail = PQgetvalue(res, i, 6),
		};
		r = fn(ud, &a);
	}
	PQclear(res);
	rf__pg_params_free(&p);
	return r;
}

#define ADMIN_KEY "admin_token_sha256"

static int pg_admin_hash(struct rf_db *base, uint8_t hash[32], bool put)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = rf__pg_params_init(&p, 1);

	if (r == 0 && put) {
		rf__pg_p_blob32(&p, hash);
		r = rf__pg_run(s,
			       "INSERT INTO rf_meta VALUES ('" ADMIN_KEY "', $1)"
			       " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
			       &p, "admin_hash", NULL);
	} else if (r == 0) {
		r = rf__pg_run(
		    s, "SELECT encode(value, 'hex') FROM rf_meta WHERE key = '" ADMIN_KEY "'", NULL,
		    "admin_hash", &res);
		if (r == 0 && PQntuples(res) != 1)
			r = -ENOENT;
		if (r == 0)
			rf__pg_col_blob32(res, 0, 0, hash);
	}
	PQclear(res);
	rf__pg_params_free(&p);
	return r;
}

static const struct rf_db_ops pg_ops = {
    .close = pg_close,
    .load = pg_load,
    .ring_put = pg_ring_put,
    .ring_delete = pg_ring_delete,
    .tenant_put = pg_tenant_put,
    .release_put = pg_release_put,
    .devices_put = pg_devices_put,
    .report_add = pg_report_add,
    .reports_count = pg_reports_count,
    .reports_purge = pg_reports_purge,
    .audit_add = pg_audit_add,
    .audit_list = pg_audit_list,
    .admin_hash = pg_admin_hash,
    .device_get = rf__pg_device_get,
    .devices_changed = rf__pg_devices_changed,
    .notify = rf__pg_notify,
    .cluster_poll = rf__pg_cluster_poll,
    .cluster_fd = rf__pg_cluster_fd,
    .cluster_heartbeat = rf__pg_cluster_heartbeat,
    .cluster_instances = rf__pg_cluster_instances,
};

/* Inside one transaction holding the schema lock: find the version (-1: no schema), apply
 * the flags' rules, create or migrate. */
static int migrate(struct pg_store *s, unsigned flags, const char *name)
{
	PGresult *res = NULL;
	int64_t v = -1;
	int r;

	r = rf__pg_exec(s, "BEGIN", "schema");
	if (r == 0)
		r = rf__pg_exec(s, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")",
				"schema lock");
	if (r == 0)
		r = rf__pg_run(s, "SELECT to_regclass('rf_schema') IS NOT NULL", NULL, "schema",
			       &res);
	if (r == 0 && !strcmp(PQgetvalue(res, 0, 0), "t")) {
		PQclear(res);
		res = NULL;
		r = rf__pg_run(s, "SELECT max(version) FROM rf_schema", NULL, "schema version",
			       &res);
		if (r == 0)
			v = PQgetisnull(res, 0, 0) ? 0 : rf__pg_col_int(res, 0, 0);
	}
	PQclear(res);
	if (r == 0 && v < 0 && !(flags & RF_DB_CREATE))
		r = rf_diag_report(s->base.diag, -ENOENT,
				   "database %s has no ringfence schema (empty)", name);
	if (r == 0 && v >= 0 && (flags & RF_DB_EXCL))
		r = rf_diag_report(s->base.diag, -EEXIST,
				   "database %s holds a ringfence schema already", name);
	if (r == 0 && v > RF_DB_SCHEMA_VERSION)
		r = rf_diag_report(
		    s->base.diag, -EPROTO,
		    "postgresql: database schema version %lld is newer than this build (%d)",
		    (long long)v, RF_DB_SCHEMA_VERSION);
	if (r == 0 && v < 0) {
		r = rf__pg_exec(s,
				"CREATE TABLE rf_schema (version integer NOT NULL);"
				"INSERT INTO rf_schema VALUES (0)",
				"schema");
		v = 0;
	}
	for (; r == 0 && v < RF_DB_SCHEMA_VERSION; v++) {
		char sql[64];

		r = rf__pg_exec(s, migrations[v], "migration");
		snprintf(sql, sizeof(sql), "UPDATE rf_schema SET version = %lld", (long long)v + 1);
		if (r == 0)
			r = rf__pg_exec(s, sql, "migration");
	}
	/* The instances' bookkeeping (store.h, rf_db_cluster_announce): the change counter and
	 * each instance's heartbeat. No data, so outside the versioned schema: made when missing
	 * at every open, under the schema lock. */
	if (r == 0)
		r = rf__pg_exec(s,
				"CREATE TABLE IF NOT EXISTS rf_change (one boolean PRIMARY KEY"
				"  DEFAULT true CHECK (one), seq bigint NOT NULL);"
				"INSERT INTO rf_change VALUES (true, 0) ON CONFLICT DO NOTHING;"
				"CREATE TABLE IF NOT EXISTS rf_instances (id text PRIMARY KEY,"
				"  name text NOT NULL, applied bigint NOT NULL,"
				"  heartbeat timestamptz NOT NULL)",
				"schema");
	return rf__pg_finish(s, r);
}

bool rf_db_is_pg(const char *spec)
{
	return spec && (!strncmp(spec, "postgresql://", 13) || !strncmp(spec, "postgres://", 11));
}

void rf_db_pg_redact(const char *uri, char *out, size_t n)
{
	const char *host = strstr(uri, "://"), *end, *at;
	size_t scheme;

	if (!n)
		return;
	if (!host) {
		snprintf(out, n, "%s", uri);
		return;
	}
	host += 3;
	scheme = (size_t)(host - uri);
	end = host + strcspn(host, "/?");
	at = memchr(host, '@', (size_t)(end - host));
	if (at) {
		const char *colon = memchr(host, ':', (size_t)(at - host));
		if (colon) /* user:password@ -> user:***@ */
			snprintf(out, n, "%.*s%.*s:***%.*s", (int)scheme, uri, (int)(colon - host),
				 host, (int)strcspn(at, "?"), at);
		else
			snprintf(out, n, "%.*s", (int)(scheme + strcspn(host, "?")), uri);
	} else {
		snprintf(out, n, "%.*s", (int)(scheme + strcspn(host, "?")), uri);
	}
}

int rf_db_open_pg(const char *uri, unsigned flags, struct rf_diag *diag, struct rf_db **ret)
{
	struct pg_store *s = calloc(1, sizeof(*s));
	char timeout[16], name[256];
	/* Defaults first: a value in the URI itself overrides them (expand_dbname). The TCP ones
	 * bound how long a statement waits on a database host that vanished without a reset
	 * (RF_PG_TCP_DEAD_MS; the kernel's default is minutes); a unix socket ignores them. */
	const char *keys[] = {"connect_timeout",
			      "keepalives_idle",
			      "keepalives_interval",
			      "keepalives_count",
			      "tcp_user_timeout",
			      "dbname",
			      NULL};
	const char *vals[] = {timeout, "5", "2", "3", STR(RF_PG_TCP_DEAD_MS), uri, NULL};
	int r;

	if (!s)
		return -ENOMEM;
	s->base.ops = &pg_ops;
	s->base.diag = diag;
	rf_db_pg_redact(uri, name, sizeof(name));
	snprintf(timeout, sizeof(timeout), "%u", RF_PG_CONNECT_TIMEOUT_S);
	{
		uint8_t raw[16];
		if (RAND_bytes(raw, sizeof(raw)) != 1) {
			free(s);
			return -EIO;
		}
		rf_hex_encode(raw, sizeof(raw), s->instance);
	}
	s->uri = strdup(uri);
	if (!s->uri) {
		free(s);
		return -ENOMEM;
	}
	s->conn = PQconnectdbParams(keys, vals, 1);
	if (!s->conn) {
		free(s->uri);
		free(s);
		return -ENOMEM;
	}
	if (PQstatus(s->conn) != CONNECTION_OK) {
		char m[512];
		snprintf(m, sizeof(m), "%s", PQerrorMessage(s->conn));
		m[strcspn(m, "\n")] = 0;
		r = rf_diag_report(diag, -EIO, "postgresql: cannot connect to %s: %s", name, m);
		goto undo_connect;
	}
	/* Server-side messages (NOTICEs of CREATE TABLE and the like) are not ours to print. */
	PQsetNoticeProcessor(s->conn, rf__pg_quiet, NULL);
	r = rf__pg_exec(s, "SET client_min_messages = warning", "session");
	if (r == 0)
		rf__pg_set_instance(s, s->conn);
	if (r == 0)
		r = migrate(s, flags, name);
	if (r < 0)
		goto undo_connect;
	*ret = &s->base;
	return 0;

undo_connect:
	PQfinish(s->conn);
	free(s->uri);
	free(s);
	return r;
}

int rf_db_open(const char *spec, unsigned flags, struct rf_diag *diag, struct rf_db **ret)
{
	if (rf_db_is_pg(spec))
		return rf_db_open_pg(spec, flags, diag, ret);
	return rf_db_open_sqlite(spec, flags, diag, ret);
}
