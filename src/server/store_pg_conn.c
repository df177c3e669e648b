/*
 * The PostgreSQL backend's connection and query plumbing (store_pg_int.h): statement
 * parameters, the connection made usable again after it broke (non-blocking reconnect with a
 * doubling backoff: see store_pg.c's opening comment), running a statement and mapping its
 * failure to an error code described in the diag, reading columns.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "server/store_pg_int.h"

int rf__pg_params_init(struct params *p, int max)
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

void rf__pg_params_free(struct params *p)
{
	free(p->val);
	free(p->len);
	free(p->fmt);
	free(p->num);
}

void rf__pg_p_text(struct params *p, const char *s)
{
	p->val[p->n++] = s;
}

void rf__pg_p_int(struct params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%" PRId64, v);
	p->val[p->n] = p->num[p->n];
	p->n++;
}

void rf__pg_p_blob32(struct params *p, const uint8_t *b)
{
	p->val[p->n] = (const char *)b;
	p->len[p->n] = 32;
	p->fmt[p->n] = 1;
	p->n++;
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
void rf__pg_set_instance(struct pg_store *s, PGconn *c)
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
			rf__pg_set_instance(s, s->conn);
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
int rf__pg_fail(struct pg_store *s, PGresult *res, const char *what)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : "";
	char m[512], state[6] = "";

	snprintf(m, sizeof(m), "%s", msg && *msg ? msg : PQerrorMessage(s->conn));
	m[strcspn(m, "\n")] = 0;
	if (st)
		snprintf(state, sizeof(state), "%s", st);
	PQclear(res);
	if (PQstatus(s->conn) != CONNECTION_OK)
		broken(s);
	if (!strcmp(state, "23505"))
		return -EEXIST;
	if (s->in_tx && (!strcmp(state, "40P01") || !strcmp(state, "40001"))) {
		/* Deadlock or serialization failure: PostgreSQL rolled the transaction back;
		 * rf__pg_tx() runs it again, and describes it only if every try failed. */
		snprintf(s->tx_err, sizeof(s->tx_err), "%s: %s (SQLSTATE %s)", what, m, state);
		return -EAGAIN;
	}
	if (*state)
		return rf_diag_report(s->base.diag, -EIO, "postgresql: %s: %s (SQLSTATE %s)", what,
				      m, state);
	return rf_diag_report(s->base.diag, -EIO, "postgresql: %s: %s", what, m);
}

int rf__pg_tx(struct pg_store *s, int (*fn)(struct pg_store *s, void *ud), void *ud)
{
	int r = -EAGAIN;

	for (unsigned i = 0; i < RF_PG_TX_TRIES && r == -EAGAIN; i++) {
		if (i && s->base.retries)
			atomic_fetch_add(s->base.retries, 1);
		s->in_tx = true;
		r = fn(s, ud);
		s->in_tx = false;
	}
	if (r == -EAGAIN)
		r = rf_diag_report(s->base.diag, -EIO, "postgresql: %s; %u tries", s->tx_err,
				   RF_PG_TX_TRIES);
	return r;
}

/* Run sql with params (p may be NULL); 0 and *ret (may be NULL: cleared) when it succeeded. */
int rf__pg_run(struct pg_store *s, const char *sql, const struct params *p, const char *what,
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
		return rf__pg_fail(s, res, what);
	if (ret)
		*ret = res;
	else
		PQclear(res);
	return 0;
}

int rf__pg_exec(struct pg_store *s, const char *sql, const char *what)
{
	return rf__pg_run(s, sql, NULL, what, NULL);
}

/* End the transaction open on the connection: COMMIT when r is 0, else ROLLBACK. */
int rf__pg_finish(struct pg_store *s, int r)
{
	if (r == 0)
		return rf__pg_exec(s, "COMMIT", "commit");
	if (PQstatus(s->conn) == CONNECTION_OK)
		PQclear(PQexec(s->conn, "ROLLBACK"));
	return r;
}

int64_t rf__pg_col_int(PGresult *res, int row, int col)
{
	const char *t = PQgetvalue(res, row, col);

	/* PostgreSQL's own bigint text (digits, optional '-'): never out of range. */
	return t ? (int64_t)strtoll(t, NULL, 10) : 0;
}

void rf__pg_col_blob32(PGresult *res, int row, int col, uint8_t out[32])
{
	const char *t = PQgetvalue(res, row, col); /* encode(x, 'hex') */

	if (!t || rf_hex_decode(t, strlen(t), out, 32) < 0)
		memset(out, 0, 32);
}

/* Every row of res to v->device. */
int rf__pg_visit_devices(PGresult *res, const struct rf_db_visitor *v, void *ud)
{
	int r = 0;

	for (int i = 0; i < PQntuples(res) && r == 0; i++) {
		struct rf_db_device x = {.id = PQgetvalue(res, i, 0),
					 .tenant = PQgetvalue(res, i, 1),
					 .ring = PQgetvalue(res, i, 2)};
		rf__pg_col_blob32(res, i, 3, x.cred_hash);
		x.agent_version = PQgetvalue(res, i, 4);
		x.manifest_hash = PQgetvalue(res, i, 5);
		x.enrolled_at = rf__pg_col_int(res, i, 6);
		x.last_seen = rf__pg_col_int(res, i, 7);
		x.release_id = rf__pg_col_int(res, i, 8);
		x.state = PQgetvalue(res, i, 9);
		x.state_at = rf__pg_col_int(res, i, 10);
		x.crashes = (uint64_t)rf__pg_col_int(res, i, 11);
		x.rollbacks = (uint64_t)rf__pg_col_int(res, i, 12);
		x.events = (uint64_t)rf__pg_col_int(res, i, 13);
		x.alerts = (uint64_t)rf__pg_col_int(res, i, 14);
		x.history = PQgetvalue(res, i, 15);
		x.version = rf__pg_col_int(res, i, 16);
		r = v->device(ud, &x);
	}
	return r;
}

void rf__pg_quiet(void *ud, const char *msg)
{
}
