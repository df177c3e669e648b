/*
 * The PostgreSQL backend of struct rf_db (store.h), over libpq.
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
 * ready()), at once, then with a doubling backoff (RF_PG_RESET_BACKOFF_*), so the server serves
 * from memory meanwhile and uses the database again by itself when it is back. A write whose COMMIT
 * got no answer may or may not have been committed; every write is idempotent (upserts, reports by
 * id), so the client's retry is safe.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/rand.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "server/store.h"

struct pg_store {
	struct rf_db base;
	PGconn *conn;
	uint64_t next_reset_ns; /* no reconnect attempt before this (monotonic) */
	uint64_t backoff_ms;	/* 0: the connection is (believed) good */
	bool resetting;		/* a non-blocking reconnect is under way */
	uint64_t reset_deadline_ns;
	/* Several instances (store.h): this process's instance id (the session setting
	 * ringfence.instance, written into every device row it writes), the cursor of
	 * devices_changed (the previous read's snapshot, pg_snapshot as text; malloc'd), the
	 * control connection (LISTEN and the leader's session advisory lock) and whether this
	 * instance holds that lock. */
	char instance[33];
	char *cursor;
	char *uri;
	PGconn *ctl;
	bool leader;
	int64_t epoch; /* the lease's epoch this instance took it with (0: not leader) */
	uint64_t ctl_next_ns;
};

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
};

#define STR_(x) #x
#define STR(x)	STR_(x)

/* Advisory lock key held while the schema is created or migrated ("rfdb"). */
#define SCHEMA_LOCK_KEY "1919312994"

#define DEV_COLS                                                                                   \
	"id, tenant, ring, cred_hash, agent_version, manifest_hash, enrolled_at, last_seen,"       \
	" release_id, state, state_at, crashes, rollbacks, events, alerts, history, version"
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
#define DEV_NPARAMS 17

/* Parameters of one statement: text values (NULL is SQL NULL), or 32-byte binary for bytea. */
struct params {
	const char **val;
	int *len, *fmt;
	char (*num)[24]; /* storage for integers as text, one slot a parameter */
	int n;
};

static int params_init(struct params *p, int max)
{
	p->val = calloc((size_t)max, sizeof(*p->val));
	p->len = calloc((size_t)max, sizeof(*p->len));
	p->fmt = calloc((size_t)max, sizeof(*p->fmt));
	p->num = calloc((size_t)max, sizeof(*p->num));
	p->n = 0;
	if (!p->val || !p->len || !p->fmt || !p->num)
		return -ENOMEM;
	return 0;
}

static void params_free(struct params *p)
{
	free(p->val);
	free(p->len);
	free(p->fmt);
	free(p->num);
}

static void p_text(struct params *p, const char *s)
{
	p->val[p->n++] = s;
}

static void p_int(struct params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%" PRId64, v);
	p->val[p->n] = p->num[p->n];
	p->n++;
}

static void p_blob32(struct params *p, const uint8_t *b)
{
	p->val[p->n] = (const char *)b;
	p->len[p->n] = 32;
	p->fmt[p->n] = 1;
	p->n++;
}

static void p_device(struct params *p, const struct rf_db_device *d)
{
	p_text(p, d->id);
	p_text(p, d->tenant);
	p_text(p, d->ring);
	p_blob32(p, d->cred_hash);
	p_text(p, d->agent_version ? d->agent_version : "");
	p_text(p, d->manifest_hash ? d->manifest_hash : "");
	p_int(p, d->enrolled_at);
	p_int(p, d->last_seen);
	p_int(p, d->release_id);
	p_text(p, d->state ? d->state : "");
	p_int(p, d->state_at);
	p_int(p, (int64_t)d->crashes);
	p_int(p, (int64_t)d->rollbacks);
	p_int(p, (int64_t)d->events);
	p_int(p, (int64_t)d->alerts);
	p_text(p, d->history ? d->history : "");
	p_int(p, d->version + 1);
}

static void broken(struct pg_store *s)
{
	if (!s->backoff_ms) {
		s->backoff_ms = RF_PG_RESET_BACKOFF_MIN_MS;
		s->next_reset_ns = 0; /* the first reconnect is tried at once */
	}
}

static int reconnect_failed(struct pg_store *s, uint64_t now, const char *why)
{
	char m[256];

	snprintf(m, sizeof(m), "%s", why);
	m[strcspn(m, "\n")] = 0;
	s->resetting = false;
	s->next_reset_ns = now + s->backoff_ms * 1000000u;
	s->backoff_ms = s->backoff_ms * 2 > RF_PG_RESET_BACKOFF_MAX_MS ? RF_PG_RESET_BACKOFF_MAX_MS
								       : s->backoff_ms * 2;
	return rf_diag_report(s->base.diag, -EIO, "postgresql: cannot reconnect: %s", m);
}

/* The session setting the device rows' instance column takes its default from. */
static void set_instance(struct pg_store *s, PGconn *c)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SET ringfence.instance = '%s'", s->instance);
	PQclear(PQexec(c, sql));
}

/* Whether the connection's socket became ready for what st waits for within ms. */
static bool socket_ready(PGconn *c, PostgresPollingStatusType st, int ms)
{
	struct pollfd p = {.fd = PQsocket(c),
			   .events = st == PGRES_POLLING_WRITING ? POLLOUT : POLLIN};

	return p.fd >= 0 && poll(&p, 1, ms) > 0;
}

/*
 * Make sure the connection is usable, reconnecting if it broke and the backoff allows. The
 * reconnect is non-blocking (PQresetStart/PQresetPoll): each call advances it for at most
 * ~100 ms and otherwise fails with -EIO at once, so a caller holding the server's lock never
 * waits on a database that is not there; the whole attempt is abandoned after
 * RF_PG_CONNECT_TIMEOUT_S.
 */
static int ready(struct pg_store *s)
{
	uint64_t now = rf_now_mono_ns();

	if (PQstatus(s->conn) == CONNECTION_OK && !s->backoff_ms)
		return 0;
	broken(s);
	if (!s->resetting) {
		if (now < s->next_reset_ns)
			return rf_diag_report(s->base.diag, -EIO,
					      "postgresql: not connected (reconnecting)");
		if (!PQresetStart(s->conn))
			return reconnect_failed(s, now, PQerrorMessage(s->conn));
		s->resetting = true;
		s->reset_deadline_ns = now + RF_PG_CONNECT_TIMEOUT_S * 1000000000ull;
	}
	for (int i = 0; i < 5; i++) {
		PostgresPollingStatusType st = PQresetPoll(s->conn);

		if (st == PGRES_POLLING_OK) {
			s->resetting = false;
			s->backoff_ms = 0;
			PQclear(PQexec(s->conn, "SET client_min_messages = warning"));
			set_instance(s, s->conn);
			return 0;
		}
		if (st == PGRES_POLLING_FAILED)
			return reconnect_failed(s, now, PQerrorMessage(s->conn));
		if (!socket_ready(s->conn, st, 20))
			break;
	}
	if (now >= s->reset_deadline_ns)
		return reconnect_failed(s, now, "timed out");
	return rf_diag_report(s->base.diag, -EIO, "postgresql: not connected (reconnecting)");
}

/* Describe a failed result (or a failed send) and map it to an error code. Consumes res. */
static int fail(struct pg_store *s, PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : "";
	int r = state && !strcmp(state, "23505") ? -EEXIST : -EIO;
	char m[512];

	snprintf(m, sizeof(m), "%s", msg && *msg ? msg : PQerrorMessage(s->conn));
	m[strcspn(m, "\n")] = 0;
	PQclear(res);
	if (PQstatus(s->conn) != CONNECTION_OK)
		broken(s);
	if (r == -EIO)
		rf_diag_report(s->base.diag, r, "postgresql: %s: %s", what, m);
	return r;
}

/* Run sql with params (p may be NULL); 0 and *ret (may be NULL: cleared) when it succeeded. */
static int run(struct pg_store *s, const char *sql, const struct params *p, const char *what,
	       PGresult **ret)
{
	PGresult *res;
	ExecStatusType st;
	int r = ready(s);

	if (r < 0)
		return r;
	/* Without parameters, the simple protocol: the schema's migrations are several
	 * statements, which the extended protocol refuses. */
	res = p ? PQexecParams(s->conn, sql, p->n, NULL, p->val, p->len, p->fmt, 0)
		: PQexec(s->conn, sql);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return fail(s, res, what);
	if (ret)
		*ret = res;
	else
		PQclear(res);
	return 0;
}

static int exec(struct pg_store *s, const char *sql, const char *what)
{
	return run(s, sql, NULL, what, NULL);
}

/* End the transaction open on the connection: COMMIT when r is 0, else ROLLBACK. */
static int finish(struct pg_store *s, int r)
{
	if (r == 0)
		return exec(s, "COMMIT", "commit");
	if (PQstatus(s->conn) == CONNECTION_OK)
		PQclear(PQexec(s->conn, "ROLLBACK"));
	return r;
}

static int64_t col_int(PGresult *res, int row, int col)
{
	const char *t = PQgetvalue(res, row, col);

	/* PostgreSQL's own bigint text (digits, optional '-'): never out of range. */
	return t ? (int64_t)strtoll(t, NULL, 10) : 0;
}

static void col_blob32(PGresult *res, int row, int col, uint8_t out[32])
{
	const char *t = PQgetvalue(res, row, col); /* encode(x, 'hex') */

	if (!t || rf_hex_decode(t, strlen(t), out, 32) < 0)
		memset(out, 0, 32);
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
		struct rf_db_ring x = {PQgetvalue(res, 0, 0), col_int(res, 0, 1)};
		return v->ring(ud, &x);
	}
	if (i == 1 && v->tenant) {
		struct rf_db_tenant x = {.name = PQgetvalue(res, 0, 0)};
		col_blob32(res, 0, 1, x.token_hash);
		x.ring = PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2);
		x.pin = PQgetvalue(res, 0, 3);
		x.win_start_min = col_int(res, 0, 4);
		x.win_end_min = col_int(res, 0, 5);
		return v->tenant(ud, &x);
	}
	if (i == 2 && v->release) {
		struct rf_db_release x = {.id = col_int(res, 0, 0),
					  .target = PQgetvalue(res, 0, 1)};
		col_blob32(res, 0, 2, x.sha256);
		x.length = (uint64_t)col_int(res, 0, 3);
		x.version = col_int(res, 0, 4);
		x.custom_json = PQgetvalue(res, 0, 5);
		x.created_at = col_int(res, 0, 6);
		x.state_json = PQgetvalue(res, 0, 7);
		return v->release(ud, &x);
	}
	if (i == 3 && v->device) {
		struct rf_db_device x = {.id = PQgetvalue(res, 0, 0),
					 .tenant = PQgetvalue(res, 0, 1),
					 .ring = PQgetvalue(res, 0, 2)};
		col_blob32(res, 0, 3, x.cred_hash);
		x.agent_version = PQgetvalue(res, 0, 4);
		x.manifest_hash = PQgetvalue(res, 0, 5);
		x.enrolled_at = col_int(res, 0, 6);
		x.last_seen = col_int(res, 0, 7);
		x.release_id = col_int(res, 0, 8);
		x.state = PQgetvalue(res, 0, 9);
		x.state_at = col_int(res, 0, 10);
		x.crashes = (uint64_t)col_int(res, 0, 11);
		x.rollbacks = (uint64_t)col_int(res, 0, 12);
		x.events = (uint64_t)col_int(res, 0, 13);
		x.alerts = (uint64_t)col_int(res, 0, 14);
		x.history = PQgetvalue(res, 0, 15);
		x.version = col_int(res, 0, 16);
		return v->device(ud, &x);
	}
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
		return fail(s, NULL, "load");
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
			int e = fail(s, res, "load");
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
	    "SELECT id, tenant, ring, encode(cred_hash, 'hex'), agent_version, manifest_hash,"
	    " enrolled_at, last_seen, release_id, state, state_at, crashes, rollbacks, events,"
	    " alerts, history, version FROM devices",
	};
	int r = exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "load");

	/* With devices: the cursor of devices_changed is this snapshot (store.h). Without (the
	 * other instances' re-read of the small tables): the devices are not read and the cursor
	 * is left alone. */
	if (r == 0 && v->device) {
		PGresult *res = NULL;
		char *snap = NULL;
		r = run(s, "SELECT pg_current_snapshot()::text", NULL, "load", &res);
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
		return finish(s, 0);
	finish(s, -EIO);
	return r;
}

static int pg_ring_put(struct rf_db *base, const struct rf_db_ring *x)
{
	struct pg_store *s = (struct pg_store *)base;
	struct params p;
	int r = params_init(&p, 2);

	if (r == 0) {
		p_text(&p, x->name);
		p_int(&p, x->position);
		r = run(s,
			"INSERT INTO rings VALUES ($1, $2)"
			" ON CONFLICT (name) DO UPDATE SET position = excluded.position",
			&p, "ring_put", NULL);
	}
	params_free(&p);
	return r;
}

static int pg_ring_delete(struct rf_db *base, const char *name)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = params_init(&p, 1);

	if (r == 0) {
		p_text(&p, name);
		r = run(s, "DELETE FROM rings WHERE name = $1", &p, "ring_delete", &res);
	}
	if (r == 0 && !strcmp(PQcmdTuples(res), "0"))
		r = -ENOENT;
	PQclear(res);
	params_free(&p);
	return r;
}

static int pg_tenant_put(struct rf_db *base, const struct rf_db_tenant *x)
{
	struct pg_store *s = (struct pg_store *)base;
	struct params p;
	int r = params_init(&p, 6);

	if (r == 0) {
		p_text(&p, x->name);
		p_blob32(&p, x->token_hash);
		p_text(&p, x->ring);
		p_text(&p, x->pin);
		p_int(&p, x->win_start_min);
		p_int(&p, x->win_end_min);
		r = run(s,
			"INSERT INTO tenants VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name)"
			" DO UPDATE SET token_hash = excluded.token_hash, ring = excluded.ring,"
			" pin = excluded.pin, win_start = excluded.win_start,"
			" win_end = excluded.win_end",
			&p, "tenant_put", NULL);
	}
	params_free(&p);
	return r;
}

static int pg_release_put(struct rf_db *base, const struct rf_db_release *x)
{
	struct pg_store *s = (struct pg_store *)base;
	struct params p;
	int r = params_init(&p, 8);

	if (r == 0) {
		p_int(&p, x->id);
		p_text(&p, x->target);
		p_blob32(&p, x->sha256);
		p_int(&p, (int64_t)x->length);
		p_int(&p, x->version);
		p_text(&p, x->custom_json ? x->custom_json : "");
		p_int(&p, x->created_at);
		p_text(&p, x->state_json ? x->state_json : "");
		if (x->prev_state && *x->prev_state) {
			PGresult *res = NULL;
			/* Compare-and-set: another instance (the gate leader, an operator there)
			 * may have changed it since this one read it. A gate's decision also needs
			 * the lease still to be the one this instance took (fencing token). */
			p.n = 0;
			memset(p.len, 0, 3 * sizeof(*p.len)); /* no longer the sha256 (binary) */
			memset(p.fmt, 0, 3 * sizeof(*p.fmt));
			p_int(&p, x->id);
			p_text(&p, x->state_json ? x->state_json : "");
			p_text(&p, x->prev_state);
			if (x->fenced)
				p_int(&p, s->epoch);
			r = x->fenced && !s->epoch ? -ESTALE : 0; /* not leader (any more) */
			if (r == 0)
				r = run(s,
					x->fenced
					    ? "UPDATE releases SET state = $2 WHERE id = $1 AND"
					      " state = $3 AND EXISTS (SELECT 1 FROM rf_lease"
					      " WHERE name = 'gate' AND epoch = $4::bigint)"
					    : "UPDATE releases SET state = $2 WHERE id = $1 AND"
					      " state = $3",
					&p, "release_put", &res);
			if (r == 0 && !strcmp(PQcmdTuples(res), "0"))
				r = -ESTALE;
			PQclear(res);
		} else {
			r = run(s,
				x->prev_state
				    ? "INSERT INTO releases VALUES ($1, $2, $3, $4, $5, $6,"
				      " $7, $8)"
				    : "INSERT INTO releases VALUES ($1, $2, $3, $4, $5, $6,"
				      " $7, $8) ON CONFLICT (id) DO UPDATE SET state ="
				      " excluded.state",
				&p, "release_put", NULL);
		}
	}
	params_free(&p);
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

/* The rows of d[0..n) that res (RETURNING id: the rows written) names get their new version,
 * the others 0 (compare-and-set failed). RETURNING follows the VALUES order in practice: the
 * search starts where the previous one ended, so it is linear then, and correct in any case. */
static void devices_written(PGresult *res, const struct rf_db_device *d, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < n; i++)
		if (d[i].ret_version)
			*d[i].ret_version = 0;
	for (int k = 0; k < PQntuples(res) && n; k++) {
		const char *id = PQgetvalue(res, k, 0);
		for (size_t tries = 0; tries < n; tries++, j = (j + 1) % n)
			if (!strcmp(d[j].id, id)) {
				if (d[j].ret_version)
					*d[j].ret_version = d[j].version + 1;
				j = (j + 1) % n;
				break;
			}
	}
}

static int pg_devices_put(struct rf_db *base, const struct rf_db_device *d, size_t n)
{
	struct pg_store *s = (struct pg_store *)base;
	size_t per = RF_PG_DEVICES_PER_STATEMENT;
	struct params p = {0};
	char *sql = NULL;
	size_t sql_rows = 0;
	int r;

	if (n == 0)
		return 0;
	r = params_init(&p, (int)((n < per ? n : per) * DEV_NPARAMS));
	if (r == 0 && n > per)
		r = exec(s, "BEGIN", "devices_put");
	for (size_t i = 0; r == 0 && i < n; i += per) {
		size_t rows = n - i < per ? n - i : per;

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
		p.n = 0;
		for (size_t j = 0; j < rows; j++)
			p_device(&p, &d[i + j]);
		r = run(s, sql, &p, "devices_put", &res);
		if (r == 0)
			devices_written(res, d + i, rows);
		PQclear(res);
	}
	if (n > per)
		r = finish(s, r);
	free(sql);
	params_free(&p);
	return r;
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
	 * transaction around them: one COMMIT, one flush of the WAL. */
	static const char cas[] =
	    "WITH cur AS (SELECT version FROM devices WHERE id = $10::text FOR UPDATE),"
	    " ok AS (SELECT 1 FROM cur WHERE version = $26::bigint - 1), ";
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
	static const char count[] = " SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM ok)";
	char sql[sizeof(cas) + sizeof(ins) + 64 + sizeof(ins_end) + sizeof(up) + sizeof(count)];
	struct params p = {0};
	bool *dup = calloc(n, sizeof(*dup));
	int e = dup ? params_init(&p, 9 + DEV_NPARAMS) : -ENOMEM;

	if (e < 0) {
		free(dup);
		params_free(&p);
		return e;
	}
	if (dev)
		snprintf(sql, sizeof(sql), "%s%s WHERE EXISTS (SELECT 1 FROM ok)%s%s%s", cas, ins,
			 ins_end, up, count);
	else
		snprintf(sql, sizeof(sql), "WITH %s%s SELECT count(*), 1 FROM ins", ins, ins_end);
	if (n > 1)
		e = exec(s, "BEGIN", "report_add");
	for (size_t i = 0; i < n && e == 0; i++) {
		const struct rf_db_report *x = &r[i];
		PGresult *res = NULL;
		p.n = 0;
		p_text(&p, x->device_id);
		p_text(&p, x->report_id);
		p_text(&p, x->event);
		p_text(&p, x->target ? x->target : "");
		p_text(&p, x->sha256_hex ? x->sha256_hex : "");
		p_int(&p, x->release_id);
		p_int(&p, x->time);
		p_int(&p, x->received_at);
		p_text(&p, x->detail ? x->detail : "");
		if (dev)
			p_device(&p, &dev[i]);
		e = run(s, sql, &p, "report_add", &res);
		if (e == 0 && PQntuples(res) != 1)
			e = rf_diag_report(s->base.diag, -EIO, "postgresql: report_add: no count");
		if (e == 0 && col_int(res, 0, 1) == 0) {
			/* the device row changed since the caller read it: nothing written */
			if (dev[i].ret_version)
				*dev[i].ret_version = 0;
		} else if (e == 0) {
			dup[i] = col_int(res, 0, 0) == 0;
			if (dev && dev[i].ret_version)
				*dev[i].ret_version = dup[i] ? dev[i].version : dev[i].version + 1;
		}
		PQclear(res);
	}
	if (n > 1)
		e = finish(s, e);
	if (e == 0)
		memcpy(ret_duplicate, dup, n * sizeof(*dup));
	free(dup);
	params_free(&p);
	return e;
}

static int pg_reports_count(struct rf_db *base, const char *device_id, uint64_t *ret)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = params_init(&p, 1);

	if (r == 0 && device_id)
		p_text(&p, device_id);
	if (r == 0)
		r = run(s,
			device_id ? "SELECT count(*) FROM reports WHERE device_id = $1"
				  : "SELECT count(*) FROM reports",
			&p, "reports_count", &res);
	if (r == 0 && PQntuples(res) != 1)
		r = rf_diag_report(s->base.diag, -EIO, "postgresql: reports_count: no row");
	if (r == 0)
		*ret = (uint64_t)col_int(res, 0, 0);
	PQclear(res);
	params_free(&p);
	return r;
}

static int pg_audit_add(struct rf_db *base, const struct rf_db_audit *a, int64_t *ret_id)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = params_init(&p, 6);

	if (r == 0) {
		p_int(&p, a->time);
		p_text(&p, a->actor ? a->actor : "");
		p_text(&p, a->action ? a->action : "");
		p_int(&p, a->release_id);
		p_text(&p, a->subject ? a->subject : "");
		p_text(&p, a->detail ? a->detail : "");
		r = run(s,
			"INSERT INTO audit (time, actor, action, release_id, subject, detail)"
			" VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
			&p, "audit_add", &res);
	}
	if (r == 0 && PQntuples(res) != 1)
		r = rf_diag_report(s->base.diag, -EIO, "postgresql: audit_add: no id");
	if (r == 0 && ret_id)
		*ret_id = col_int(res, 0, 0);
	PQclear(res);
	params_free(&p);
	return r;
}

static int pg_audit_list(struct rf_db *base, int64_t release_id, int64_t before_id, unsigned limit,
			 int (*fn)(void *ud, const struct rf_db_audit *a), void *ud)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = params_init(&p, 3);

	if (r == 0) {
		p_int(&p, release_id);
		p_int(&p, before_id);
		p_int(&p, limit);
		r = run(s,
			"SELECT id, time, actor, action, release_id, subject, detail FROM audit"
			" WHERE ($1::bigint <= 0 OR release_id = $1::bigint)"
			" AND ($2::bigint <= 0 OR id < $2::bigint)"
			" ORDER BY id DESC LIMIT $3::bigint",
			&p, "audit_list", &res);
	}
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct rf_db_audit a = {
		    .id = col_int(res, i, 0),
		    .time = col_int(res, i, 1),
		    .actor = PQgetvalue(res, i, 2),
		    .action = PQgetvalue(res, i, 3),
		    .release_id = col_int(res, i, 4),
		    .subject = PQgetvalue(res, i, 5),
		    .detail = PQgetvalue(res, i, 6),
		};
		r = fn(ud, &a);
	}
	PQclear(res);
	params_free(&p);
	return r;
}

#define ADMIN_KEY "admin_token_sha256"

static int pg_admin_hash(struct rf_db *base, uint8_t hash[32], bool put)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = params_init(&p, 1);

	if (r == 0 && put) {
		p_blob32(&p, hash);
		r = run(s,
			"INSERT INTO rf_meta VALUES ('" ADMIN_KEY "', $1)"
			" ON CONFLICT (key) DO UPDATE SET value = excluded.value",
			&p, "admin_hash", NULL);
	} else if (r == 0) {
		r = run(s, "SELECT encode(value, 'hex') FROM rf_meta WHERE key = '" ADMIN_KEY "'",
			NULL, "admin_hash", &res);
		if (r == 0 && PQntuples(res) != 1)
			r = -ENOENT;
		if (r == 0)
			col_blob32(res, 0, 0, hash);
	}
	PQclear(res);
	params_free(&p);
	return r;
}

#define DEV_SELECT                                                                                 \
	"SELECT id, tenant, ring, encode(cred_hash, 'hex'), agent_version, manifest_hash,"         \
	" enrolled_at, last_seen, release_id, state, state_at, crashes, rollbacks, events,"        \
	" alerts, history, version FROM devices"

/* Every row of res to v->device. */
static int visit_devices(PGresult *res, const struct rf_db_visitor *v, void *ud)
{
	int r = 0;

	for (int i = 0; i < PQntuples(res) && r == 0; i++) {
		struct rf_db_device x = {.id = PQgetvalue(res, i, 0),
					 .tenant = PQgetvalue(res, i, 1),
					 .ring = PQgetvalue(res, i, 2)};
		col_blob32(res, i, 3, x.cred_hash);
		x.agent_version = PQgetvalue(res, i, 4);
		x.manifest_hash = PQgetvalue(res, i, 5);
		x.enrolled_at = col_int(res, i, 6);
		x.last_seen = col_int(res, i, 7);
		x.release_id = col_int(res, i, 8);
		x.state = PQgetvalue(res, i, 9);
		x.state_at = col_int(res, i, 10);
		x.crashes = (uint64_t)col_int(res, i, 11);
		x.rollbacks = (uint64_t)col_int(res, i, 12);
		x.events = (uint64_t)col_int(res, i, 13);
		x.alerts = (uint64_t)col_int(res, i, 14);
		x.history = PQgetvalue(res, i, 15);
		x.version = col_int(res, i, 16);
		r = v->device(ud, &x);
	}
	return r;
}

static int pg_device_get(struct rf_db *base, const char *id, const struct rf_db_visitor *v,
			 void *ud)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = params_init(&p, 1);

	if (r == 0) {
		p_text(&p, id);
		r = run(s, DEV_SELECT " WHERE id = $1", &p, "device_get", &res);
	}
	if (r == 0 && PQntuples(res) != 1)
		r = -ENOENT;
	if (r == 0)
		r = visit_devices(res, v, ud);
	PQclear(res);
	params_free(&p);
	return r;
}

/*
 * The rows other instances wrote since the cursor, the previous call's snapshot. Each row
 * carries the id of the transaction that last wrote it (txid). A row version the previous
 * snapshot could not see was written by a transaction that had not started then (txid >= its
 * xmax) or was still running (txid in its xip list): exactly those are read, whatever order
 * the commits came in (transaction ids are not committed in order), each once, and both
 * conditions are index scans on txid. So a long transaction (one that holds an id: a long
 * write, a session idle in a transaction) costs nothing more than its own row when it ends;
 * with the snapshot's xmin as the cursor, every tick read again every row changed since it
 * began.
 */
static int pg_devices_changed(struct rf_db *base, const struct rf_db_visitor *v, void *ud)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL, *rows = NULL;
	char *next = NULL;
	struct params p;
	int r = params_init(&p, 2);

	if (r == 0)
		r = exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "devices_changed");
	if (r == 0)
		r = run(s, "SELECT pg_current_snapshot()::text", NULL, "devices_changed", &res);
	if (r == 0 && !(next = strdup(PQgetvalue(res, 0, 0))))
		r = -ENOMEM;
	if (r == 0) {
		/* No cursor yet (no rf_db_load with devices): every row. */
		p_text(&p, s->cursor ? s->cursor : "1:1:");
		p_text(&p, s->instance);
		r = run(s,
			DEV_SELECT " WHERE (txid >= pg_snapshot_xmax($1::pg_snapshot) OR txid = ANY"
				   " (ARRAY(SELECT pg_snapshot_xip($1::pg_snapshot))))"
				   " AND instance <> $2",
			&p, "devices_changed", &rows);
	}
	r = finish(s, r);
	if (r == 0)
		r = visit_devices(rows, v, ud);
	if (r == 0) {
		free(s->cursor);
		s->cursor = next;
		next = NULL;
	}
	free(next);
	PQclear(res);
	PQclear(rows);
	params_free(&p);
	return r;
}

static int pg_notify(struct rf_db *base, const char *what)
{
	struct pg_store *s = (struct pg_store *)base;
	struct params p;
	int r = params_init(&p, 1);

	if (r == 0) {
		p_text(&p, what);
		r = run(s, "SELECT pg_notify('ringfence', $1)", &p, "notify", NULL);
	}
	params_free(&p);
	return r;
}

static void quiet(void *ud, const char *msg)
{
}

/* Advisory lock key of the gate leader ("rfgl"). */
#define LEADER_LOCK_KEY "1919313772"

static void ctl_drop(struct pg_store *s)
{
	PQfinish(s->ctl);
	s->ctl = NULL;
	s->leader = false;
	s->epoch = 0;
	s->ctl_next_ns = rf_now_mono_ns() + 1000000000ull;
}

static int pg_cluster_fd(struct rf_db *base)
{
	struct pg_store *s = (struct pg_store *)base;

	return s->ctl && PQstatus(s->ctl) == CONNECTION_OK ? PQsocket(s->ctl) : -1;
}

/* Called by the tick without the server's lock, so it reports nothing to the diag (which
 * request threads write under that lock): -EIO says the control connection is down. */
static int pg_cluster_poll(struct rf_db *base, unsigned *ret_changed, bool *ret_leader)
{
	struct pg_store *s = (struct pg_store *)base;
	PGnotify *n;
	PGresult *res;

	*ret_leader = false;
	if (s->ctl && (PQstatus(s->ctl) != CONNECTION_OK || !PQconsumeInput(s->ctl)))
		ctl_drop(s);
	if (!s->ctl) {
		char timeout[16];
		/* As the main connection: a vanished database host is noticed within
		 * RF_PG_TCP_DEAD_MS (a unix socket ignores these). */
		const char *keys[] = {"connect_timeout",
				      "keepalives_idle",
				      "keepalives_interval",
				      "keepalives_count",
				      "tcp_user_timeout",
				      "dbname",
				      NULL};
		const char *vals[] = {timeout, "5", "2", "3", STR(RF_PG_TCP_DEAD_MS), s->uri, NULL};

		if (rf_now_mono_ns() < s->ctl_next_ns)
			return -EIO;
		snprintf(timeout, sizeof(timeout), "%u", RF_PG_CONNECT_TIMEOUT_S);
		s->ctl = PQconnectdbParams(keys, vals, 1);
		/* The server's messages (the idle timeout's FATAL) are not ours to print. */
		if (s->ctl)
			PQsetNoticeProcessor(s->ctl, quiet, NULL);
		res = s->ctl && PQstatus(s->ctl) == CONNECTION_OK
			  ? PQexec(s->ctl, "LISTEN ringfence")
			  : NULL;
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			PQclear(res);
			ctl_drop(s);
			return -EIO;
		}
		PQclear(res);
		/* The server's side: a leader whose host vanishes (no FIN, no RST) loses its
		 * session, and so the lease, within about RF_PG_TCP_DEAD_MS rather than the
		 * kernel's hours (ignored on a unix socket; a process that dies closes its
		 * socket and PostgreSQL drops the lock at once). */
		PQclear(PQexec(s->ctl,
			       "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;"
			       " SET tcp_keepalives_count = 3;"
			       " SET tcp_user_timeout = " STR(RF_PG_TCP_DEAD_MS)));
		/* A leader that hangs (stopped, a stuck disk) keeps its connection open: PostgreSQL
		 * ends the session, and so the lease, once it has been idle this long; a leader
		 * that runs touches it every second (below). */
		res = PQexec(s->ctl, "SET idle_session_timeout = " STR(RF_PG_LEASE_IDLE_MS));
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			PQclear(res);
			ctl_drop(s);
			return -EIO;
		}
		PQclear(res);
		/* Notifications sent while not listening are lost: re-read everything. */
		*ret_changed |= RF_DB_CHANGED_CONFIG;
	}
	while ((n = PQnotifies(s->ctl))) {
		*ret_changed |= RF_DB_CHANGED_CONFIG;
		PQfreemem(n);
	}
	if (s->leader) {
		/* Still ours? A session PostgreSQL ended while this process hung fails here (the
		 * lease is gone: another instance may lead, with a newer epoch). */
		res = PQexec(s->ctl, "SELECT epoch FROM rf_lease WHERE name = 'gate'");
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
		    col_int(res, 0, 0) != s->epoch) {
			PQclear(res);
			ctl_drop(s);
			return -EIO;
		}
		PQclear(res);
	} else {
		res = PQexec(s->ctl, "SELECT pg_try_advisory_lock(" LEADER_LOCK_KEY ")");
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			PQclear(res);
			ctl_drop(s);
			return -EIO;
		}
		bool got = !strcmp(PQgetvalue(res, 0, 0), "t");
		PQclear(res);
		if (got) {
			/* A new epoch: what the previous holder writes from now on is refused. */
			res = PQexec(s->ctl, "INSERT INTO rf_lease VALUES ('gate', 1) ON CONFLICT"
					     " (name) DO UPDATE SET epoch = rf_lease.epoch + 1"
					     " RETURNING epoch");
			if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
				PQclear(res);
				ctl_drop(s); /* the lock goes with the session */
				return -EIO;
			}
			s->epoch = col_int(res, 0, 0);
			s->leader = true;
			PQclear(res);
		}
	}
	*ret_leader = s->leader;
	return 0;
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
    .audit_add = pg_audit_add,
    .audit_list = pg_audit_list,
    .admin_hash = pg_admin_hash,
    .device_get = pg_device_get,
    .devices_changed = pg_devices_changed,
    .notify = pg_notify,
    .cluster_poll = pg_cluster_poll,
    .cluster_fd = pg_cluster_fd,
};

/* Inside one transaction holding the schema lock: find the version (-1: no schema), apply
 * the flags' rules, create or migrate. */
static int migrate(struct pg_store *s, unsigned flags, const char *name)
{
	PGresult *res = NULL;
	int64_t v = -1;
	int r;

	r = exec(s, "BEGIN", "schema");
	if (r == 0)
		r = exec(s, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")", "schema lock");
	if (r == 0)
		r = run(s, "SELECT to_regclass('rf_schema') IS NOT NULL", NULL, "schema", &res);
	if (r == 0 && !strcmp(PQgetvalue(res, 0, 0), "t")) {
		PQclear(res);
		res = NULL;
		r = run(s, "SELECT max(version) FROM rf_schema", NULL, "schema version", &res);
		if (r == 0)
			v = PQgetisnull(res, 0, 0) ? 0 : col_int(res, 0, 0);
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
		r = exec(s,
			 "CREATE TABLE rf_schema (version integer NOT NULL);"
			 "INSERT INTO rf_schema VALUES (0)",
			 "schema");
		v = 0;
	}
	for (; r == 0 && v < RF_DB_SCHEMA_VERSION; v++) {
		char sql[64];

		r = exec(s, migrations[v], "migration");
		snprintf(sql, sizeof(sql), "UPDATE rf_schema SET version = %lld", (long long)v + 1);
		if (r == 0)
			r = exec(s, sql, "migration");
	}
	return finish(s, r);
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
	PQsetNoticeProcessor(s->conn, quiet, NULL);
	r = exec(s, "SET client_min_messages = warning", "session");
	if (r == 0)
		set_instance(s, s->conn);
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
