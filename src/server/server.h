/*
 * The ringfenced core: every HTTP request of docs/protocol.md as one function call, with the
 * transport (http.c, libmicrohttpd) kept outside so the fuzz target and the tests can drive the
 * same code without sockets.
 *
 * Model: the working set (rings, tenants, releases with their signed schedule and rollout
 * state, devices with the per-release outcomes the gates need) lives in memory behind one
 * mutex; the store (store.h) is the durable record. A request that changes state writes it to
 * the store, and only once that write returned 0 is the change applied in memory and the 2xx
 * reply built (P8). A check-in that changes nothing writes nothing: its heartbeat and health
 * counters are kept in memory and flushed by rf_server_tick(). Every decision is H4's rollout
 * engine (rollout.h); the server only gathers its inputs. Bad requests get a 4xx JSON error
 * and change nothing.
 */
#ifndef RF_SERVER_SERVER_H
#define RF_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"

struct rf_server;

struct rf_server_opts {
	const char *db_path;	  /* SQLite database (created only when init is set) */
	bool init;		  /* create a new database: refused if one exists (-EEXIST) */
	const char *repo_dir;	  /* TUF repository directory (trust/tuf.h layout); NULL: none */
	uint8_t admin_hash[32];	  /* SHA-256 of the admin token */
	/* PostgreSQL only: no token file was given: take the admin token's hash from the
	 * database (written there by the instance that ran --init). Otherwise, on PostgreSQL,
	 * admin_hash is written there with init (or when none is stored) and must match it. */
	bool admin_from_db;
	unsigned poll_interval_s; /* told to devices; 0 means 300 */
	/* Clock (unix seconds). NULL: the system clock. Tests use it to move time. */
	int64_t (*clock)(void *ud);
	void *clock_ud;
	/* Where the audit trail's log lines go (one line each, no newline; priority as syslog(3):
	 * 3 error, 4 warning, 5 notice). NULL: not logged (they are still stored). */
	void (*log)(void *ud, int priority, const char *line);
	void *log_ud;
};

/*
 * Open the store (rf_db_open_sqlite: with init, RF_DB_CREATE | RF_DB_EXCL), load the
 * working set and parse every release's signed schedule. Returns 0 and *ret; -ENOENT the
 * database is missing or empty and init is not set; -EEXIST init is set and a database exists;
 * -EBADMSG the database is damaged or a stored schedule no longer parses; -EIO/-EPROTO from
 * the store (diag says why); -EKEYREJECTED admin_hash differs from the one a shared
 * (PostgreSQL) database holds; -ENOKEY admin_from_db and the database holds none; -ENOMEM.
 */
int rf_server_new(const struct rf_server_opts *opts, struct rf_diag *diag,
		  struct rf_server **ret) RF_WUR;

/* Flush what is pending (rf_server_tick with force) and free everything (NULL ok). */
void rf_server_free(struct rf_server *s);

/* A reply. Exactly one of body (malloc'd, owned by the reply) or fd (>= 0, an open regular file
 * of fd_len bytes to send whole, owned by the reply) carries the content. */
struct rf_server_reply {
	int status;
	const char *content_type; /* static string */
	char *body;
	size_t len;
	int fd;
	uint64_t fd_len;
};

struct rf_server_request {
	const char *method;	   /* "GET", "POST", "PUT", "DELETE" */
	const char *path;	   /* decoded path without query, e.g. "/v1/checkin" */
	const char *authorization; /* the Authorization header, NULL if absent */
	const char *content_type;  /* the Content-Type header, NULL if absent */
	const uint8_t *body;	   /* untrusted; not NUL-terminated */
	size_t body_len;
	const char *query; /* decoded query "k=v&k=v" (untrusted), NULL or "" if none */
};

/*
 * Answer one request. Always fills *ret (status, content); returns 0, or -ENOMEM when even
 * the error reply could not be allocated (the transport then sends a bare 503).
 * Thread-safe. Release the reply with rf_server_reply_free().
 */
int rf_server_handle(struct rf_server *s, const struct rf_server_request *req,
		     struct rf_server_reply *ret);

/*
 * Answer one request without holding the caller's thread while it waits for a commit (a
 * report: its group commit). As rf_server_handle(), or returns 1 with *ret_pending and
 * nothing in *ret: the request is queued; wake(ud) is called once, from another thread, with
 * the server's lock held (it must not call into the server: it resumes the connection), when
 * it can go on; then rf_server_resume() gives the answer. A transport that gives up on a
 * pending request (its connection closes, it stops) calls rf_server_abandon(): no answer is
 * made, wake is not called after it returns, and the report is acknowledged to nobody even if
 * its commit completes (P8: only committed reports are acknowledged, never the reverse).
 */
struct rf_server_pending;
int rf_server_handle_async(struct rf_server *s, const struct rf_server_request *req,
			   void (*wake)(void *ud), void *ud, struct rf_server_pending **ret_pending,
			   struct rf_server_reply *ret);
/* After wake: 0 with *ret filled (p is freed), or 1: queued again (another instance wrote
 * the device meanwhile), wake comes again. */
int rf_server_resume(struct rf_server *s, struct rf_server_pending *p, struct rf_server_reply *ret);
void rf_server_abandon(struct rf_server *s, struct rf_server_pending *p);

void rf_server_reply_free(struct rf_server_reply *r);

/* Largest body accepted on path (device or operator limit, limits.h); the transport refuses
 * longer bodies with 413 before reading them. */
size_t rf_server_body_max(const char *path);

/*
 * Periodic work, called about once a second by ringfenced: flush changed device state (and,
 * when force, as at shutdown, the heartbeats), evaluate every release's gates with the rollout
 * engine (a failed gate halts it durably), and keep the TUF timestamp fresh.
 * Returns 0 or the first storage error (work that failed is retried at the next tick).
 */
int rf_server_tick(struct rf_server *s, bool force);

/*
 * Waits up to ms milliseconds between ticks, in the tick's thread. With several instances
 * (PostgreSQL) it wakes when PostgreSQL sends something on the control connection (another
 * instance's NOTIFY) and reads the announcement at once (the cluster part of the tick), so an
 * operator change shows on every instance in milliseconds instead of up to a tick later; at
 * most one such early read every RF_SRV_NOTIFY_GAP_MS. Returns early on a signal. Returns 1
 * when it read announcements, else 0, or the store's error from that read.
 */
int rf_server_wait(struct rf_server *s, unsigned ms);

/*
 * The server's working set: the bytes it holds for its devices (device records, ids, the id
 * index, silence deadlines, the dirty list) and in all (plus releases with their health and
 * cohort bucket counts, tenants, interned strings), as allocated (capacity, not only what is
 * in use). docs/server.md "Scale": at most about 200 bytes a device.
 */
struct rf_server_stats {
	uint64_t devices;
	uint64_t device_bytes;
	uint64_t bytes;
};
void rf_server_stats(struct rf_server *s, struct rf_server_stats *ret);

#endif
