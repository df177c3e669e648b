/*
 * The PostgreSQL backend for several instances on one database (store.h, "several instances"):
 * one device read, the device rows other instances wrote since the last look (the snapshot
 * cursor), announcements (NOTIFY) and the control connection: LISTEN, and the gate lease (a
 * session advisory lock, with an epoch in rf_lease as the fencing token).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "server/store_pg_int.h"

int rf__pg_device_get(struct rf_db *base, const char *id, const struct rf_db_visitor *v, void *ud)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = rf__pg_params_init(&p, 1);

	if (r == 0) {
		rf__pg_p_text(&p, id);
		r = rf__pg_run(s, DEV_SELECT " WHERE id = $1", &p, "device_get", &res);
	}
	if (r == 0 && PQntuples(res) != 1)
		r = -ENOENT;
	if (r == 0)
		r = rf__pg_visit_devices(res, v, ud);
	PQclear(res);
	rf__pg_params_free(&p);
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
int rf__pg_devices_changed(struct rf_db *base, const struct rf_db_visitor *v, void *ud)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL, *rows = NULL;
	char *next = NULL;
	struct params p;
	int r = rf__pg_params_init(&p, 2);

	if (r == 0)
		r = rf__pg_exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
				"devices_changed");
	if (r == 0)
		r = rf__pg_run(s, "SELECT pg_current_snapshot()::text", NULL, "devices_changed",
			       &res);
	if (r == 0 && !(next = strdup(PQgetvalue(res, 0, 0))))
		r = -ENOMEM;
	if (r == 0) {
		/* No cursor yet (no rf_db_load with devices): every row. */
		rf__pg_p_text(&p, s->cursor ? s->cursor : "1:1:");
		rf__pg_p_text(&p, s->instance);
		r = rf__pg_run(s,
			       DEV_SELECT
			       " WHERE (txid >= pg_snapshot_xmax($1::pg_snapshot) OR txid = ANY"
			       " (ARRAY(SELECT pg_snapshot_xip($1::pg_snapshot))))"
			       " AND instance <> $2",
			       &p, "devices_changed", &rows);
	}
	r = rf__pg_finish(s, r);
	if (r == 0)
		r = rf__pg_visit_devices(rows, v, ud);
	if (r == 0) {
		free(s->cursor);
		s->cursor = next;
		next = NULL;
	}
	free(next);
	PQclear(res);
	PQclear(rows);
	rf__pg_params_free(&p);
	return r;
}

/* The change counter is incremented in the statement that sends the notification, after the
 * change's own commit: an instance that reads the counter at this value or more, then re-reads,
 * sees the change (store.h, rf_db_cluster_announce). */
int rf__pg_notify(struct rf_db *base, const char *what, int64_t *ret_seq)
{
	struct pg_store *s = (struct pg_store *)base;
	PGresult *res = NULL;
	struct params p;
	int r = rf__pg_params_init(&p, 1);

	if (r == 0) {
		rf__pg_p_text(&p, what);
		r = rf__pg_run(s,
			       "WITH c AS (UPDATE rf_change SET seq = seq + 1 RETURNING seq)"
			       " SELECT seq, pg_notify('ringfence', $1) FROM c",
			       &p, "notify", &res);
	}
	if (r == 0 && PQntuples(res) != 1)
		r = rf_diag_report(s->base.diag, -EIO, "notify: no change counter (rf_change)");
	if (r == 0 && ret_seq)
		*ret_seq = rf__pg_col_int(res, 0, 0);
	PQclear(res);
	rf__pg_params_free(&p);
	return r;
}

int rf__pg_cluster_heartbeat(struct rf_db *base, int64_t applied)
{
	struct pg_store *s = (struct pg_store *)base;
	char host[64] = "", name[96], num[24];
	const char *vals[3] = {s->instance, name, num};
	PGresult *res;

	if (!s->ctl)
		return -EIO;
	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "?");
	snprintf(name, sizeof(name), "%s pid %ld", host, (long)getpid());
	snprintf(num, sizeof(num), "%" PRId64, applied);
	res = PQexecParams(s->ctl,
			   "WITH f AS (DELETE FROM rf_instances WHERE heartbeat < clock_timestamp()"
			   " - interval '" STR(RF_SRV_INSTANCE_FORGET_S) " seconds')"
			   " INSERT INTO rf_instances VALUES ($1, $2, $3::bigint, clock_timestamp())"
			   " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
			   " applied = greatest(rf_instances.applied, excluded.applied),"
			   " heartbeat = excluded.heartbeat",
			   3, NULL, vals, NULL, NULL, 0);
	int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -EIO;
	PQclear(res);
	return r;
}

/* Called by a request thread without the server's lock (the wait of an operator change,
 * cluster.c), so it describes nothing to the diag (which request threads write under that lock)
 * and does not reconnect: -EIO when the connection is not up. */
int rf__pg_cluster_instances(struct rf_db *base, int64_t seq,
			     int (*fn)(void *ud, const char *name, bool applied, bool live),
			     void *ud)
{
	struct pg_store *s = (struct pg_store *)base;
	char num[24];
	const char *vals[2] = {num, s->instance};
	PGresult *res;
	int r = 0;

	if (s->resetting || PQstatus(s->conn) != CONNECTION_OK)
		return -EIO;
	snprintf(num, sizeof(num), "%" PRId64, seq);
	res = PQexecParams(s->conn,
			   "SELECT name, applied >= $1::bigint, heartbeat > clock_timestamp()"
			   " - interval '" STR(RF_SRV_LIVE_MS) " milliseconds'"
			   " FROM rf_instances WHERE id <> $2 ORDER BY name, id",
			   2, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		r = -EIO;
	for (int i = 0; r == 0 && i < PQntuples(res); i++)
		r = fn(ud, PQgetvalue(res, i, 0), !strcmp(PQgetvalue(res, i, 1), "t"),
		       !strcmp(PQgetvalue(res, i, 2), "t"));
	PQclear(res);
	return r;
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

int rf__pg_cluster_fd(struct rf_db *base)
{
	struct pg_store *s = (struct pg_store *)base;

	return s->ctl && PQstatus(s->ctl) == CONNECTION_OK ? PQsocket(s->ctl) : -1;
}

/* Called by the tick without the server's lock, so it reports nothing to the diag (which
 * request threads write under that lock): -EIO says the control connection is down. */
int rf__pg_cluster_poll(struct rf_db *base, unsigned *ret_changed, bool *ret_leader,
			int64_t *ret_seq)
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
			PQsetNoticeProcessor(s->ctl, rf__pg_quiet, NULL);
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
	/* The change counter, read before the re-read the caller makes: what that re-read will
	 * have applied (an announcement lost or not yet here is caught by the counter). */
	res = PQexec(s->ctl, "SELECT seq FROM rf_change");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		PQclear(res);
		ctl_drop(s);
		return -EIO;
	}
	*ret_seq = rf__pg_col_int(res, 0, 0);
	PQclear(res);
	if (s->leader) {
		/* Still ours? A session PostgreSQL ended while this process hung fails here (the
		 * lease is gone: another instance may lead, with a newer epoch). */
		res = PQexec(s->ctl, "SELECT epoch FROM rf_lease WHERE name = 'gate'");
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
		    rf__pg_col_int(res, 0, 0) != s->epoch) {
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
			s->epoch = rf__pg_col_int(res, 0, 0);
			s->leader = true;
			PQclear(res);
		}
	}
	*ret_leader = s->leader;
	return 0;
}
