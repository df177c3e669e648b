/*
 * The PostgreSQL backend's internals, shared by its three files: store_pg_conn.c (the connection
 * and query plumbing: struct pg_store, statement parameters, reconnecting, running a statement
 * and reading its columns), store_pg.c (schema, open, load and the writes: the ops of struct
 * rf_db) and store_pg_cluster.c (several instances: one device read, the rows other instances
 * wrote, notifications, the gate lease). Not a public interface: only those files include it.
 */
#ifndef RF_SERVER_STORE_PG_INT_H
#define RF_SERVER_STORE_PG_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

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
	/* rf__pg_tx(): a write transaction is running that may be run again, and why the last
	 * try failed. */
	bool in_tx;
	char tx_err[RF_DIAG_MSG_MAX + 64];
};

#define STR_(x) #x
#define STR(x)	STR_(x)

#define DEV_COLS                                                                                   \
	"id, tenant, ring, cred_hash, agent_version, manifest_hash, enrolled_at, last_seen,"       \
	" release_id, state, state_at, crashes, rollbacks, events, alerts, history, version"
#define DEV_NPARAMS 17

#define DEV_SELECT                                                                                 \
	"SELECT id, tenant, ring, encode(cred_hash, 'hex'), agent_version, manifest_hash,"         \
	" enrolled_at, last_seen, release_id, state, state_at, crashes, rollbacks, events,"        \
	" alerts, history, version FROM devices"

/* Parameters of one statement: text values (NULL is SQL NULL), or 32-byte binary for bytea. */
struct params {
	const char **val;
	int *len, *fmt;
	char (*num)[24]; /* storage for integers as text, one slot a parameter */
	int n;
};

/* Allocate room for max parameters (p->n = 0); -ENOMEM (params_free still safe). */
int rf__pg_params_init(struct params *p, int max);
void rf__pg_params_free(struct params *p);
/* Append a text value (NULL: SQL NULL), an integer, a 32-byte bytea. */
void rf__pg_p_text(struct params *p, const char *s);
void rf__pg_p_int(struct params *p, int64_t v);
void rf__pg_p_blob32(struct params *p, const uint8_t *b);

/* The session setting the device rows' instance column takes its default from. */
void rf__pg_set_instance(struct pg_store *s, PGconn *c);
/* Describe a failed result (or a failed send) and map it to an error code. Consumes res. */
int rf__pg_fail(struct pg_store *s, PGresult *res, const char *what);
/* Run sql with params (p may be NULL); 0 and *ret (may be NULL: cleared) when it succeeded. The
 * connection is made usable first (reconnecting without blocking, see store_pg_conn.c). */
int rf__pg_run(struct pg_store *s, const char *sql, const struct params *p, const char *what,
	       PGresult **ret);
int rf__pg_exec(struct pg_store *s, const char *sql, const char *what);
/*
 * Run the write transaction fn (which BEGINs, writes and ends it with rf__pg_finish(), or is one
 * statement) and, when PostgreSQL aborted it for a deadlock (SQLSTATE 40P01) or a serialization
 * failure (40001), run it again, at most RF_PG_TX_TRIES times in all, each try after the first
 * counted in *s->base.retries. Inside fn such a failure is -EAGAIN and not described; fn must
 * write its outputs afresh on every try. Returns fn's result, or -EIO (described in the diag)
 * when every try failed that way.
 */
int rf__pg_tx(struct pg_store *s, int (*fn)(struct pg_store *s, void *ud), void *ud);
/* End the transaction open on the connection: COMMIT when r is 0, else ROLLBACK. */
int rf__pg_finish(struct pg_store *s, int r);
int64_t rf__pg_col_int(PGresult *res, int row, int col);
void rf__pg_col_blob32(PGresult *res, int row, int col, uint8_t out[32]);
/* Every row of res (DEV_SELECT's columns) to v->device. */
int rf__pg_visit_devices(PGresult *res, const struct rf_db_visitor *v, void *ud);
/* A notice processor that drops the server's messages (they are not ours to print). */
void rf__pg_quiet(void *ud, const char *msg);

/* store_pg_cluster.c: the ops of several instances (store.h). */
int rf__pg_device_get(struct rf_db *base, const char *id, const struct rf_db_visitor *v, void *ud);
int rf__pg_devices_changed(struct rf_db *base, const struct rf_db_visitor *v, void *ud);
int rf__pg_notify(struct rf_db *base, const char *what, int64_t *ret_seq);
int rf__pg_cluster_poll(struct rf_db *base, unsigned *ret_changed, bool *ret_leader,
			int64_t *ret_seq);
int rf__pg_cluster_fd(struct rf_db *base);
int rf__pg_cluster_heartbeat(struct rf_db *base, int64_t applied);
int rf__pg_cluster_instances(struct rf_db *base, int64_t seq,
			     int (*fn)(void *ud, const char *name, bool applied, bool live),
			     void *ud);

#endif
