/*
 * ringfenced: the rollout server program. Thin: parses options, binds its listen address, reads
 * or makes the admin token, starts the server core and the HTTP transport (the token file,
 * mode 0600, is written only then), then ticks once a second (heartbeat flush, gates, TUF
 * timestamp) until SIGINT or SIGTERM, and flushes before it exits. The database is created
 * only by --init: a start that finds it missing, empty or damaged stops and says how to
 * restore it; a start that fails creates nothing (a SQLite --init removes what it made).
 * --backup copies the database. See docs/server.md and docs/operators.md.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "common/opt.h"
#include "common/util.h"
#include "ringfence/limits.h"
#include "server/http.h"
#include "server/server.h"
#include "server/store.h"

#ifndef RF_VERSION
#define RF_VERSION "0.0.0"
#endif

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

/* The audit trail's lines (server.h, rf_server_opts.log): one log line each, at its priority. */
static void audit_log(void *ud, int priority, const char *line)
{
	(void)ud;
	rf_log((enum rf_log_level)priority, "%s", line);
}

static void usage(FILE *f)
{
	fputs(
	    "usage: ringfenced --db PATH|URI [--init] [--listen IP:PORT|unix:PATH] [--repo DIR]\n"
	    "                  [--admin-token-file F] [--threads N] [--poll-interval S]\n"
	    "                  [--max-connections N] [--per-ip-connections N] [--port-file F]\n"
	    "       ringfenced --db PATH --backup FILE\n"
	    "       ringfenced --version\n"
	    "\n"
	    "  --db PATH               SQLite database (checked at every start; migrated)\n"
	    "  --db postgresql://...   PostgreSQL database (libpq URI; postgres:// too): several\n"
	    "                          ringfenced may share it; --init needs\n"
	    "                          --admin-token-file, other instances read the token's\n"
	    "                          hash from the database (a file given must match it)\n"
	    "  --init                  create a new database (first start only: refused\n"
	    "                          when one exists; later starts need no flag)\n"
	    "  --backup FILE           copy the database to FILE (safe while a server runs on\n"
	    "                          it) and exit (SQLite; PostgreSQL: use pg_dump)\n"
	    "  --listen IP:PORT        address to serve (default 127.0.0.1:8440; port 0: any "
	    "free)\n"
	    "  --listen unix:PATH      a unix socket (mode 0660) for a proxy on this host, e.g.\n"
	    "                          nginx: cheaper than TCP; a stale socket file is replaced,\n"
	    "                          no per-address limit (the proxy's applies)\n"
	    "  --repo DIR              TUF repository (ringfence repo init); served at /repo/\n"
	    "  --admin-token-file F    operator token; created (mode 0600) if missing\n"
	    "                          (default: admin-token next to the database)\n"
	    "  --threads N             HTTP worker threads (default: one per CPU)\n"
	    "  --poll-interval S       check-in interval told to devices (default 300)\n"
	    "  --max-connections N     concurrent connections in all (default 4096)\n"
	    "  --per-ip-connections N  concurrent connections from one address (default 64;\n"
	    "                          0: no limit, e.g. behind a reverse proxy)\n"
	    "  --port-file F           write the bound port to F once listening\n"
	    "\nThe protocol is docs/protocol.md; operating it is docs/server.md.\n",
	    f);
}

/* Raise the soft descriptor limit so that max connections (plus the database, the repository
 * and a margin) fit; returns the connections that fit when the hard limit is lower. */
static unsigned fit_descriptors(unsigned conns)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)conns + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return conns;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return conns;
	if (rl.rlim_cur >= want)
		return conns;
	rf_log_warn("descriptor limit %llu: serving at most %llu connections",
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)(rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64));
	return rl.rlim_cur > 128 ? (unsigned)(rl.rlim_cur - 64) : 64;
}

/* Print why the database cannot be used and what to do. Returns the exit status. */
static int db_refused(const char *spec, int r, const struct rf_diag *d)
{
	const char *why = d->count ? d->first : rf_strerror(r);
	char db[256];

	rf_db_pg_redact(spec, db, sizeof(db));
	if (r == -ENOENT) {
		rf_log_error("%s", why);
		rf_log_error(
		    "ringfenced never starts on a missing or empty database as if it were a "
		    "new server. A new server: start it once with --init. A server that had "
		    "data: restore the newest backup to %s (docs/operators.md, \"Backup and "
		    "restore\").",
		    db);
		return 2;
	}
	if (r == -EEXIST) {
		rf_log_error("%s: --init creates a new database only; start without --init to use "
			     "it",
			     why);
		return 2;
	}
	if (r == -EKEYREJECTED || r == -ENOKEY) {
		rf_log_error("%s", why);
		return 2;
	}
	rf_log_error("cannot start: %s", why);
	return 1;
}

/* Read the admin token from path into tok (68 characters and a newline, NUL-terminated), or,
 * when path does not exist, make a new one and set *fresh (written by write_token() once the
 * server has started on its database: a failed start leaves no token file behind). Writes its
 * SHA-256 to hash. */
static int admin_token(const char *path, char tok[70], bool *fresh, uint8_t hash[32])
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int r = rf_file_read(path, 4096, &buf, &n);

	*fresh = false;
	if (r == -ENOENT) {
		uint8_t raw[32];

		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return -EIO;
		memcpy(tok, "rfa_", 4);
		rf_hex_encode(raw, sizeof(raw), tok + 4);
		tok[68] = '\n';
		tok[69] = 0;
		rf_sha256(tok, 68, hash);
		OPENSSL_cleanse(raw, sizeof(raw));
		*fresh = true;
		return 0;
	}
	if (r < 0)
		return r;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n != 68 || memcmp(buf, "rfa_", 4) != 0) {
		OPENSSL_cleanse(buf, n);
		free(buf);
		return -EBADMSG;
	}
	rf_sha256(buf, n, hash);
	OPENSSL_cleanse(buf, n);
	free(buf);
	return 0;
}

/* Write the new admin token tok (admin_token) to path, mode 0600; logs the outcome. */
static int write_token(const char *path, const char tok[70])
{
	int r = rf_file_write_atomic(path, tok, 69, 0600);

	if (r < 0)
		rf_log_error("cannot write the admin token file %s: %s", path, rf_strerror(r));
	else
		rf_log_notice("created admin token in %s", path);
	return r;
}

/* The SQLite files a failed --init created (db did not exist before it): removed, so that the
 * same command can simply be run again. */
static void undo_init(const char *db)
{
	static const char *const side[] = {"", "-wal", "-shm", "-journal"};
	char path[4200];

	for (size_t i = 0; i < 4; i++)
		if ((size_t)snprintf(path, sizeof(path), "%s%s", db, side[i]) < sizeof(path))
			unlink(path);
	rf_log_notice("removed %s, which this failed --init had created: run it again once the "
		      "cause is fixed",
		      db);
}

int main(int argc, char **argv)
{
	const char *listen = "127.0.0.1:8440", *db = NULL, *repo = NULL, *tokfile = NULL;
	const char *portfile = NULL, *backup = NULL;
	uint64_t threads = 0, poll = 300, maxconn = RF_SRV_CONNECTIONS_MAX,
		 perip = RF_SRV_PER_IP_CONNECTIONS;
	bool init = false, perip_given = false;
	struct rf_server_opts o = {0};
	struct rf_server *s = NULL;
	struct rf_http *h = NULL;
	struct rf_diag d = {0};
	char deftok[4096];
	int r, c;
	static const struct option lo[] = {{"listen", required_argument, NULL, 'l'},
					   {"db", required_argument, NULL, 'd'},
					   {"repo", required_argument, NULL, 'r'},
					   {"admin-token-file", required_argument, NULL, 'a'},
					   {"port-file", required_argument, NULL, 'p'},
					   {"threads", required_argument, NULL, 't'},
					   {"poll-interval", required_argument, NULL, 'i'},
					   {"backup", required_argument, NULL, 'b'},
					   {"max-connections", required_argument, NULL, 'm'},
					   {"per-ip-connections", required_argument, NULL, 'P'},
					   {"init", no_argument, NULL, 'I'},
					   {"version", no_argument, NULL, 'V'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};

	rf_log_init("ringfenced", RF_LOG_INFO);
	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfenced")) != -1) {
		const char *v = optarg;

		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == 'V') {
			printf("ringfenced %s\n", RF_VERSION);
			return 0;
		}
		if (c == 'I') {
			init = true;
			continue;
		}
		if (c == 'l')
			listen = v;
		else if (c == 'd')
			db = v;
		else if (c == 'r')
			repo = v;
		else if (c == 'a')
			tokfile = v;
		else if (c == 'p')
			portfile = v;
		else if (c == 'b')
			backup = v;
		else if (c == 'm') {
			if (rf_parse_u64(v, &maxconn) < 0 || maxconn < 1 || maxconn > 1000000) {
				fprintf(stderr,
					"ringfenced: --max-connections must be 1..1000000\n");
				return 2;
			}
		} else if (c == 'P') {
			perip_given = true;
			if (rf_parse_u64(v, &perip) < 0 || perip > 1000000) {
				fprintf(stderr,
					"ringfenced: --per-ip-connections must be 0..1000000\n");
				return 2;
			}
		} else if (c == 't') {
			if (rf_parse_u64(v, &threads) < 0 || threads > 256) {
				fprintf(stderr, "ringfenced: --threads must be 0..256\n");
				return 2;
			}
		} else if (c == 'i') {
			if (rf_parse_u64(v, &poll) < 0 || poll < 1 || poll > 86400) {
				fprintf(stderr,
					"ringfenced: --poll-interval must be 1..86400 seconds\n");
				return 2;
			}
		} else {
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringfenced: unexpected argument '%s' (try 'ringfenced --help')\n",
			argv[optind]);
		return 2;
	}
	if (!db) {
		fprintf(stderr, "ringfenced: --db PATH is required\n\n");
		usage(stderr);
		return 2;
	}
	if (backup) {
		if (init) {
			fprintf(stderr, "ringfenced: --backup and --init do not go together\n");
			return 2;
		}
		if (rf_db_is_pg(db)) {
			fputs("ringfenced: --backup copies SQLite databases; back up a PostgreSQL "
			      "database with pg_dump (pg_dump -Fc -f FILE URI; restore with "
			      "pg_restore), see docs/server.md\n",
			      stderr);
			return 2;
		}
		r = rf_db_sqlite_backup(db, backup, &d);
		/* A destination that cannot be one (the database itself, a directory): nothing
		 * written. */
		if (r == -EINVAL) {
			rf_log_error("%s", d.count ? d.first : rf_strerror(r));
			return 2;
		}
		if (r == -ENOENT) /* no database there: what to do about it */
			return db_refused(db, r, &d);
		/* A damaged database, or writing the copy failed (disk full, permissions): an I/O
		 * error, nothing left behind. */
		if (r < 0) {
			rf_log_error("backup of %s to %s failed: %s", db, backup,
				     d.count ? d.first : rf_strerror(r));
			return 2;
		}
		rf_log_info("backup of %s written to %s", db, backup);
		return 0;
	}
	if (rf_http_is_unix(listen)) {
		/* No client addresses on a unix socket: the proxy in front limits per address. */
		if (perip_given && perip) {
			fprintf(stderr,
				"ringfenced: --per-ip-connections does not apply to --listen "
				"unix:PATH (no client addresses; limit them in the proxy)\n");
			return 2;
		}
		perip = 0;
		if (portfile) {
			fprintf(stderr,
				"ringfenced: --port-file is for --listen IP:PORT; with unix:PATH "
				"the socket file appears once ringfenced listens\n");
			return 2;
		}
	} else {
		/* The listen address is checked before anything is created on disk. */
		const char *colon = strrchr(listen, ':');
		char ip[64];
		uint64_t port;
		struct in_addr a4;
		if (!colon || (size_t)(colon - listen) >= sizeof(ip) ||
		    rf_parse_u64(colon + 1, &port) < 0 || port > 65535) {
			fprintf(stderr,
				"ringfenced: --listen must be IPv4:PORT or unix:PATH, not '%s'\n",
				listen);
			return 2;
		}
		memcpy(ip, listen, (size_t)(colon - listen));
		ip[colon - listen] = 0;
		if (inet_pton(AF_INET, ip, &a4) != 1) {
			fprintf(stderr,
				"ringfenced: --listen must be IPv4:PORT or unix:PATH, not '%s'\n",
				listen);
			return 2;
		}
	}
	if (!tokfile && rf_db_is_pg(db) && init) {
		fprintf(stderr,
			"ringfenced: --init on a PostgreSQL database needs "
			"--admin-token-file (its hash is stored in the database, where every "
			"instance reads it)\n");
		return 2;
	}
	/* Take the address first: a start that cannot serve creates nothing (no database, no
	 * token file), so that the same command works once the port is free. */
	int lfd = -1;
	r = rf_http_listen(listen, &d, &lfd);
	if (r < 0) {
		rf_log_error("%s", d.count ? d.first : rf_strerror(r));
		return 1;
	}
	if (repo) {
		char rdir[4200];
		struct stat rst;
		snprintf(rdir, sizeof(rdir), "%s/repository", repo);
		if (stat(rdir, &rst) < 0 || !S_ISDIR(rst.st_mode)) {
			rf_log_error("--repo %s is not a TUF repository (no %s): make one with "
				     "'ringfence repo init %s', or give the right directory",
				     repo, rdir, repo);
			close(lfd);
			return 2;
		}
	}
	/* PostgreSQL without a token file: the token's hash comes from the database. */
	o.admin_from_db = !tokfile && rf_db_is_pg(db);
	if (!tokfile) {
		snprintf(deftok, sizeof(deftok), "%s.admin-token", db);
		tokfile = deftok;
	}
	char tok[70];
	bool fresh_tok = false;
	r = o.admin_from_db ? 0 : admin_token(tokfile, tok, &fresh_tok, o.admin_hash);
	if (r < 0) {
		rf_log_error("admin token file %s: %s", tokfile,
			     r == -EBADMSG ? "must hold one token 'rfa_' + 64 hex digits"
					   : rf_strerror(r));
		close(lfd);
		return 2;
	}
	/* A SQLite --init that fails removes what it created (undo_init). A new token is written
	 * once the server runs; on PostgreSQL before, since --init stores its hash there and
	 * the hash of a token nobody holds would lock the operator out. A failed start removes
	 * the token file it wrote. */
	bool new_file = init && !rf_db_is_pg(db) && access(db, F_OK) < 0;
	bool tok_written = false;
	if (fresh_tok && rf_db_is_pg(db)) {
		r = write_token(tokfile, tok);
		if (r < 0) {
			OPENSSL_cleanse(tok, sizeof(tok));
			close(lfd);
			return 2;
		}
		tok_written = true;
	}
	o.db_path = db;
	o.init = init;
	o.repo_dir = repo;
	o.poll_interval_s = (unsigned)poll;
	o.log = audit_log;
	uint64_t t0 = rf_now_mono_ns();
	clock_t c0 = clock();
	r = rf_server_new(&o, &d, &s);
	if (r < 0) {
		OPENSSL_cleanse(tok, sizeof(tok));
		close(lfd);
		int st = db_refused(db, r, &d);
		if (new_file && access(db, F_OK) == 0)
			undo_init(db);
		if (tok_written)
			unlink(tokfile);
		return st;
	}
	struct rf_server_stats st;
	rf_server_stats(s, &st);
	rf_log_info("loaded %llu devices in %.2f s (%.2f s CPU); working set %.1f MiB, %llu bytes "
		    "a device (devices: %llu bytes a device)",
		    (unsigned long long)st.devices, (double)(rf_now_mono_ns() - t0) / 1e9,
		    (double)(clock() - c0) / CLOCKS_PER_SEC, (double)st.bytes / 1048576,
		    (unsigned long long)(st.devices ? st.bytes / st.devices : 0),
		    (unsigned long long)(st.devices ? st.device_bytes / st.devices : 0));
	char dbname[256];
	rf_db_pg_redact(db, dbname, sizeof(dbname));
	struct rf_http_opts ho = {
	    .addr = listen,
	    .have_fd = true,
	    .listen_fd = lfd,
	    .threads = (unsigned)threads,
	    .max_connections = fit_descriptors((unsigned)maxconn),
	    .per_ip_connections = (unsigned)perip,
	};
	struct rf_diag hd = {0};
	r = rf_http_start(s, &ho, &hd, &h);
	if (r < 0)
		rf_log_error("%s", hd.count ? hd.first : rf_strerror(r));
	if (r == 0 && fresh_tok && !tok_written) {
		r = write_token(tokfile, tok);
		tok_written = r == 0;
	}
	OPENSSL_cleanse(tok, sizeof(tok));
	if (r < 0) {
		rf_http_stop(h);
		rf_server_free(s);
		if (new_file)
			undo_init(db);
		if (tok_written && !rf_db_is_pg(db)) /* PostgreSQL keeps its hash: keep it */
			unlink(tokfile);
		return 1;
	}
	if (init)
		rf_log_notice("created a new database %s", dbname);
	if (portfile) {
		char buf[16];
		int n = snprintf(buf, sizeof(buf), "%u\n", rf_http_port(h));
		if (rf_file_write_atomic(portfile, buf, (size_t)n, 0644) < 0)
			rf_log_warn("cannot write %s", portfile);
	}
	if (rf_http_is_unix(listen))
		rf_log_info("listening on %s, database %s%s%s", listen, dbname,
			    repo ? ", repository " : "", repo ? repo : "");
	else
		rf_log_info("listening on %s (port %u), database %s%s%s", listen, rf_http_port(h),
			    dbname, repo ? ", repository " : "", repo ? repo : "");

	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A tick a second; between ticks, announcements from other instances are read as they
	 * arrive (rf_server_wait). */
	uint64_t next = rf_now_mono_ns() + 1000000000ull;
	while (!stop) {
		uint64_t now = rf_now_mono_ns();
		if (now < next) {
			r = rf_server_wait(s, (unsigned)((next - now + 999999u) / 1000000u));
			if (r < 0)
				rf_log_warn(
				    "reading another instance's announcement failed (retried "
				    "at the next tick): %s",
				    rf_strerror(r));
			continue;
		}
		/* Late (a slow tick, a stopped process): the next one a second from now. */
		next = next + 1000000000ull > now ? next + 1000000000ull : now + 1000000000ull;
		r = rf_server_tick(s, false);
		if (r < 0)
			rf_log_warn("periodic work failed (retried next second): %s",
				    rf_strerror(r));
	}
	rf_log_info("stopping");
	rf_http_stop(h);
	rf_server_free(s);
	return 0;
}
