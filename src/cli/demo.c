/*
 * `ringfence demo`: the whole system on one machine, narrated (issue 7). It starts the real
 * ringfenced (SQLite in a temp dir, a fresh TUF repository), N real ringfence-agent processes
 * that enroll over HTTP into the rings canary, early and broad, and then drives three releases
 * through the operator API: a good one that must reach every agent, the 2024-07-19 replay (a
 * pack needing a field no agent supplies, published with the publisher's check skipped) that
 * must be rejected and halted in canary, and an unknown bug (a pack that kills the host on load,
 * through the agent's fault-injection knob) that canary must heal from without a human while
 * early and broad never see it. With --chaos it also kills ringfenced and random agents with
 * SIGKILL mid-rollout and keeps one canary host offline while the bad release is live.
 *
 * Invariants: every claim printed as "ok" is read back from real state (the server's operator
 * API, each agent's durable store and its log), never from what this program intended; any
 * broken promise makes the exit code 1. Every child runs in its own process group with
 * PR_SET_PDEATHSIG, and every exit path (including SIGINT/SIGTERM) kills all of those groups
 * and reaps them, so nothing is left running. Only 127.0.0.1 is used; every wait is bounded.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/guard.h"
#include "agent/store.h"
#include "cli/cli.h"
#include "common/http.h"
#include "common/opt.h"
#include "common/util.h"
#include "ringfence/limits.h"

#define DEMO_AGENTS_MAX RF_DEMO_AGENTS_MAX
#define DEMO_PATH	512
#define DEMO_DIR_MAX	RF_DEMO_DIR_MAX
#define NRINGS		3
#define NPACKS		3

enum { PACK_GOOD, PACK_291, PACK_BUG };

static const char *const ring_names[NRINGS] = {"canary", "early", "broad"};

struct agent {
	pid_t pid;	     /* 0 while not running */
	int ring;	     /* index into ring_names */
	bool offline;	     /* --chaos: a host that is switched off, not restarted */
	unsigned deaths;     /* deaths the orchestrator saw (host crashes and chaos kills) */
	unsigned killed;     /* of which chaos kills */
	uint64_t restart_ms; /* a pending reboot, monotonic ms; 0 none */
	char id[32];
	char dir[DEMO_PATH];
};

struct pack {
	const char *target;
	const char *release;
	char file[DEMO_PATH];
	char hex[65];
	long long id;	      /* server release id */
	long long created_at; /* server time */
	long long halted_at;
	unsigned snapshots;	 /* server status snapshots watched while it rolled out */
	unsigned order_breaches; /* of which showed a ring with devices before the previous ring
				  * completed: the signed ring order broken (P6) */
	char halt_reason[256];
};

struct demo {
	unsigned n;
	unsigned seed;
	unsigned poll;
	bool keep, chaos, quiet;
	const char *workdir_opt;
	char self[DEMO_PATH], agent_bin[DEMO_PATH], server_bin[DEMO_PATH], examples[DEMO_PATH];
	char work[DEMO_PATH], repo[DEMO_PATH], db[DEMO_PATH];
	char url[64];
	char admin[80], enroll[80];
	unsigned port;
	pid_t server;
	bool server_db_created; /* the first start ran with --init; restarts reuse the database */
	bool server_expected_down;
	struct agent *ag;
	unsigned nring[NRINGS];
	struct pack pk[NPACKS];
	unsigned broken;
	uint64_t t0_ms, last_event_ms, last_status_ms;
	unsigned event_line;
	char **events;
	size_t nevents;
	CURL *curl;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* snprintf that reports truncation as -ENAMETOOLONG (paths are checked once at setup: the
 * work dir is at most DEMO_DIR_MAX bytes, so the composed paths below always fit). */
static int pathf(char *out, size_t outsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int pathf(char *out, size_t outsz, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

static uint64_t now_ms(void)
{
	return rf_now_mono_ns() / 1000000u;
}

/* ---- narration -------------------------------------------------------------------------- */

static void say(struct demo *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct demo *d, const char *fmt, ...)
{
	va_list ap;
	uint64_t t = now_ms() - d->t0_ms;

	printf("[%3u:%02u] ", (unsigned)(t / 60000), (unsigned)(t / 1000 % 60));
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void act(struct demo *d, const char *title)
{
	printf("\n== %s ==\n", title);
	fflush(stdout);
	(void)d;
}

/* A promise checked against real state: "ok" or "BROKEN" (which makes the exit code 1). */
static bool check(struct demo *d, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool check(struct demo *d, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("   %s ", ok ? "ok    " : "BROKEN");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!ok)
		d->broken++;
	return ok;
}

/* ---- processes --------------------------------------------------------------------------- */

/* Start argv in its own process group, output appended to logpath. extra_env may be NULL. */
static pid_t spawn(char *const argv[], const char *logpath, const char *extra_env)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd;

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, 0);
		fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (extra_env)
			putenv((char *)extra_env);
		execv(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	return pid;
}

static void kill_group(pid_t pid, int sig)
{
	if (pid > 0) {
		kill(-pid, sig);
		kill(pid, sig);
	}
}

/* Run a tool to completion (bounded: 120 s); 0 when it exited 0. */
static int run_tool(struct demo *d, char *const argv[], const char *logname)
{
	char log[DEMO_PATH];
	int st;
	pid_t pid;
	uint64_t deadline = now_ms() + 120000;

	pathf(log, sizeof(log), "%s/%s", d->work, logname);
	pid = spawn(argv, log, NULL);
	if (pid < 0)
		return (int)pid;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (stop_signal || now_ms() > deadline) {
			kill_group(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -ETIMEDOUT;
		}
		usleep(20000);
	}
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static void agent_paths(const struct agent *a, const char *leaf, char *out, size_t outsz)
{
	pathf(out, outsz, "%s/%s", a->dir, leaf);
}

static int agent_start(struct demo *d, struct agent *a)
{
	char store[DEMO_PATH], events[DEMO_PATH], alerts[DEMO_PATH], log[DEMO_PATH],
	    root[DEMO_PATH];
	char poll[16], probation[16];
	static char fault[128];
	pid_t pid;

	agent_paths(a, "store", store, sizeof(store));
	agent_paths(a, "events.jsonl", events, sizeof(events));
	agent_paths(a, "alerts.jsonl", alerts, sizeof(alerts));
	agent_paths(a, "agent.log", log, sizeof(log));
	pathf(root, sizeof(root), "%s/repository/metadata/1.root.json", d->repo);
	pathf(poll, sizeof(poll), "%u", d->poll);
	pathf(probation, sizeof(probation), "%u", 5u);
	/* The unknown bug: every host carries it; only hosts that load the bad pack hit it. */
	pathf(fault, sizeof(fault), "RINGFENCE_FAULT_CRASH_ON_LOAD=%s", d->pk[PACK_BUG].hex);
	char *argv[] = {d->agent_bin,
			"run",
			"--server",
			d->url,
			"--store",
			store,
			"--ring",
			(char *)ring_names[a->ring],
			"--enroll-token",
			d->enroll,
			"--device-id",
			a->id,
			"--tuf-root",
			root,
			"--poll",
			poll,
			"--probation",
			probation,
			"--probation-events",
			"0",
			"--events",
			events,
			"--alerts",
			alerts,
			NULL};
	pid = spawn(argv, log, fault);
	if (pid < 0)
		return (int)pid;
	a->pid = pid;
	a->restart_ms = 0;
	return 0;
}

static int server_start(struct demo *d)
{
	char listen[64], poll[16], portfile[DEMO_PATH], log[DEMO_PATH];
	uint64_t deadline;
	pid_t pid;

	if (d->port)
		pathf(listen, sizeof(listen), "127.0.0.1:%u", d->port);
	else
		pathf(listen, sizeof(listen), "127.0.0.1:0");
	pathf(poll, sizeof(poll), "%u", d->poll);
	pathf(portfile, sizeof(portfile), "%s/port", d->work);
	pathf(log, sizeof(log), "%s/ringfenced.log", d->work);
	unlink(portfile);
	/* The demo's own new database: created by the first start (ringfenced never creates one
	 * unasked), kept by every restart. The whole simulated fleet is on one address, 127.0.0.1:
	 * no per-address connection limit. */
	char *argv[] = {d->server_bin, "--listen",
			listen,	       "--db",
			d->db,	       "--repo",
			d->repo,       "--poll-interval",
			poll,	       "--threads",
			"2",	       "--port-file",
			portfile,      "--per-ip-connections",
			"0",	       d->server_db_created ? NULL : "--init",
			NULL};
	pid = spawn(argv, log, NULL);
	if (pid < 0)
		return (int)pid;
	d->server = pid;
	d->server_db_created = true;
	deadline = now_ms() + 15000;
	while (now_ms() < deadline && !stop_signal) {
		uint8_t *p = NULL;
		size_t n = 0;
		uint64_t port;

		if (waitpid(pid, NULL, WNOHANG) == pid) {
			d->server = 0;
			return -EIO;
		}
		if (rf_file_read(portfile, 64, &p, &n) == 0 && n > 0) {
			char buf[16] = {0};
			memcpy(buf, p, n < 15 ? n : 15);
			buf[strcspn(buf, "\r\n")] = 0;
			free(p);
			if (rf_parse_u64(buf, &port) == 0 && port > 0 && port < 65536) {
				d->port = (unsigned)port;
				pathf(d->url, sizeof(d->url), "http://127.0.0.1:%u", d->port);
				return 0;
			}
		}
		free(p);
		usleep(50000);
	}
	return -ETIMEDOUT;
}

static void stop_all(struct demo *d)
{
	uint64_t deadline;

	for (unsigned i = 0; d->ag && i < d->n; i++)
		if (d->ag[i].pid > 0)
			kill_group(d->ag[i].pid, SIGKILL);
	if (d->server > 0)
		kill_group(d->server, SIGTERM);
	deadline = now_ms() + 5000;
	for (unsigned i = 0; d->ag && i < d->n; i++)
		if (d->ag[i].pid > 0) {
			waitpid(d->ag[i].pid, NULL, 0);
			d->ag[i].pid = 0;
		}
	while (d->server > 0) {
		if (waitpid(d->server, NULL, WNOHANG) == d->server) {
			d->server = 0;
			break;
		}
		if (now_ms() > deadline) {
			kill_group(d->server, SIGKILL);
			waitpid(d->server, NULL, 0);
			d->server = 0;
			break;
		}
		usleep(20000);
	}
	/* Workers of killed agents die with their group; reap anything else that is ours. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* ---- the event streams -------------------------------------------------------------------- */

static int load_events(struct demo *d)
{
	char path[DEMO_PATH];
	uint8_t *p;
	size_t n;
	int r;

	pathf(path, sizeof(path), "%s/events/sample.jsonl", d->examples);
	r = rf_file_read(path, 1 << 20, &p, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && p[j] != '\n')
			j++;
		if (j > i) {
			char **e = realloc(d->events, (d->nevents + 1) * sizeof(*e));
			if (e)
				d->events = e;
			if (!e || !(e[d->nevents] = strndup((const char *)p + i, j - i))) {
				free(p);
				return -ENOMEM;
			}
			d->nevents++;
		}
		i = j + 1;
	}
	free(p);
	return d->nevents ? 0 : -ENOENT;
}

/* Append one event line to every agent's stream (files the agents follow as they grow). */
static void feed_events(struct demo *d)
{
	const char *line = d->events[d->event_line++ % d->nevents];

	for (unsigned i = 0; i < d->n; i++) {
		char path[DEMO_PATH];
		FILE *f;

		agent_paths(&d->ag[i], "events.jsonl", path, sizeof(path));
		f = fopen(path, "a");
		if (!f)
			continue;
		fprintf(f, "%s\n", line);
		fclose(f);
	}
}

/* ---- supervision: the hosts ------------------------------------------------------------------ */

/* Reap children, reboot hosts whose agent died, feed events. Called by every wait loop. */
static void tick(struct demo *d)
{
	int st;
	pid_t pid;
	uint64_t t = now_ms();

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == d->server) {
			d->server = 0;
			if (!d->server_expected_down)
				check(d, false, "ringfenced exited by itself (status %d)", st);
			continue;
		}
		for (unsigned i = 0; i < d->n; i++) {
			struct agent *a = &d->ag[i];
			if (a->pid != pid)
				continue;
			/* The agent's own process group may hold a worker: take it down with the
			 * host. */
			kill_group(pid, SIGKILL);
			a->pid = 0;
			a->deaths++;
			if (!a->offline)
				a->restart_ms = t + 300; /* the host reboots */
			break;
		}
	}
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		if (!a->pid && a->restart_ms && t >= a->restart_ms && !a->offline)
			if (agent_start(d, a) < 0)
				a->restart_ms = t + 1000;
	}
	if (t - d->last_event_ms >= 5000) {
		d->last_event_ms = t;
		feed_events(d);
	}
}

static void nap(struct demo *d, unsigned ms)
{
	uint64_t until = now_ms() + ms;

	while (now_ms() < until && !stop_signal) {
		tick(d);
		usleep(50000);
	}
}

/* ---- the operator API ------------------------------------------------------------------------ */

/* One operator (or public) request. *ret gets the parsed JSON body (caller frees). Returns the
 * HTTP status, or a negative errno when the server could not be reached. */
static long api(struct demo *d, const char *method, const char *path, json_t *body, json_t **ret)
{
	char url[DEMO_PATH], auth[128];
	const char *const headers[] = {auth, body ? "Content-Type: application/json" : NULL, NULL};
	struct rf_http_request q = {.url = url,
				    .method = method,
				    .headers = headers,
				    .max = RF_DEMO_REPLY_MAX,
				    .timeout_s = 10};
	struct rf_http_reply rep;
	char *text = NULL;
	long status;

	if (ret)
		*ret = NULL;
	if (!d->curl && !(d->curl = curl_easy_init()))
		return -ENOMEM;
	q.handle = d->curl; /* one connection for the whole demo */
	pathf(url, sizeof(url), "%s%s", d->url, path);
	pathf(auth, sizeof(auth), "Authorization: Bearer %s", d->admin);
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		q.body = text ? text : "{}";
		q.body_len = strlen(q.body);
	}
	if (rf_http_fetch(&q, &rep, NULL) < 0) {
		free(text);
		return -ECONNREFUSED;
	}
	status = rep.status;
	free(text);
	if (ret && rep.len)
		*ret = json_loadb((const char *)rep.body, rep.len, 0, NULL);
	free(rep.body);
	return status;
}

static long long jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static json_t *release_get(struct demo *d, const struct pack *pk)
{
	char path[64];
	json_t *j = NULL;

	pathf(path, sizeof(path), "/v1/admin/releases/%lld", pk->id);
	if (api(d, "GET", path, NULL, &j) != 200) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *ring_of(json_t *rel, int ring)
{
	json_t *rings = json_object_get(rel, "rings"), *r;
	size_t i;

	json_array_foreach(rings, i, r) if (!strcmp(jstr(r, "ring"), ring_names[ring])) return r;
	return NULL;
}

static long long ring_health(json_t *rel, int ring, const char *k)
{
	json_t *r = ring_of(rel, ring);
	return r ? jint(json_object_get(r, "health"), k) : 0;
}

/* ---- agents' real state -----------------------------------------------------------------------
 */

struct astate {
	bool ok; /* the store could be read */
	int mode;
	bool has_cur, has_lkg;
	uint8_t cur[32], lkg[32];
	bool quarantined[NPACKS], stored[NPACKS];
	size_t pending;
};

static void agent_read(struct demo *d, const struct agent *a, struct astate *s)
{
	char store[DEMO_PATH];
	struct rf_store *st = NULL;
	struct rf_diag dg = {0};
	const struct rf_guard_state *g;

	memset(s, 0, sizeof(*s));
	agent_paths(a, "store", store, sizeof(store));
	if (access(store, F_OK) < 0 || rf_store_open_readonly(store, &st, &dg) < 0)
		return;
	g = rf_store_guard(st);
	s->ok = true;
	s->mode = g->mode;
	s->has_cur = rf_guard_current(g, s->cur);
	s->has_lkg = g->has_lkg;
	memcpy(s->lkg, g->lkg, 32);
	for (int k = 0; k < NPACKS; k++) {
		uint8_t h[32];
		if (rf_hex_decode(d->pk[k].hex, 64, h, 32) < 0)
			continue;
		s->quarantined[k] = rf_store_is_quarantined(st, h);
		s->stored[k] = rf_store_pack_exists(st, h);
	}
	s->pending = rf_store_report_count(st);
	rf_store_free(st);
}

static bool is_pack(struct demo *d, const uint8_t h[32], int k)
{
	char hex[65];

	rf_hex_encode(h, 32, hex);
	return !strcmp(hex, d->pk[k].hex);
}

/* Settled on the good release: running it as its last known good. */
static bool on_good(struct demo *d, const struct astate *s)
{
	return s->ok && s->mode == RF_GUARD_MODE_LKG && s->has_cur &&
	       is_pack(d, s->cur, PACK_GOOD) && s->has_lkg && is_pack(d, s->lkg, PACK_GOOD);
}

/* Occurrences of needle in the agent's log (its own words about what it did). */
static unsigned log_count(const struct agent *a, const char *needle)
{
	char path[DEMO_PATH];
	uint8_t *p = NULL;
	size_t n = 0;
	unsigned c = 0;

	agent_paths(a, "agent.log", path, sizeof(path));
	if (rf_file_read(path, 64u << 20, &p, &n) < 0)
		return 0;
	for (const char *q = (const char *)p;
	     (q = memmem(q, n - (size_t)(q - (const char *)p), needle, strlen(needle))); q++)
		c++;
	free(p);
	return c;
}

static unsigned loads_of(struct demo *d, const struct agent *a, int k)
{
	char needle[96];

	pathf(needle, sizeof(needle), "load trial %s", d->pk[k].hex);
	return log_count(a, needle);
}

/* Crashes of pack k the agent counted and reported (the guard's own record, one per attempt). */
static unsigned crashes_of(struct demo *d, const struct agent *a, int k)
{
	char needle[96];

	pathf(needle, sizeof(needle), "report crashed: %s", d->pk[k].hex);
	return log_count(a, needle);
}

/* The agent's log names the pack at all: it was offered it and fetched (or tried to). */
static bool saw(struct demo *d, const struct agent *a, int k)
{
	char n1[160], n2[160];

	pathf(n1, sizeof(n1), "installed %s", d->pk[k].target);
	pathf(n2, sizeof(n2), "rejected %s", d->pk[k].target);
	return log_count(a, n1) > 0 || log_count(a, n2) > 0 || loads_of(d, a, k) > 0;
}

/* ---- publishing ---------------------------------------------------------------------------------
 */

static int compile_pack(struct demo *d, const char *rules, struct pack *pk, const char *seq)
{
	uint8_t *p;
	size_t n;
	int r;
	char *argv[] = {d->self,  "content", "compile",	  (char *)rules, "-o",
			pk->file, "--seq",   (char *)seq, NULL};

	if ((r = run_tool(d, argv, "publisher.log")) < 0)
		return r;
	if ((r = rf_file_read(pk->file, 64u << 20, &p, &n)) < 0)
		return r;
	rf_sha256_hex(p, n, pk->hex);
	free(p);
	return 0;
}

/* Sign the pack into the TUF repository with its demo-scaled schedule and create the release. */
static int publish(struct demo *d, struct pack *pk)
{
	char custom[1024];
	json_t *req, *rep = NULL;
	long st;
	int r;

	/* In a ring under 20 agents a partial step may admit nobody (cohort buckets) and show
	 * nothing: such rings get a single 100 % step. */
	const char *early = d->nring[1] >= 20
				? "{\"after\":0,\"percent\":50},{\"after\":6,\"percent\":100}"
				: "{\"after\":0,\"percent\":100}";
	const char *broad = d->nring[2] >= 20
				? "{\"after\":0,\"percent\":25},{\"after\":6,\"percent\":50},"
				  "{\"after\":12,\"percent\":100}"
				: "{\"after\":0,\"percent\":100}";
	pathf(custom, sizeof(custom),
	      "{\"ringfence\":{\"release\":\"%s\",\"schedule\":["
	      "{\"ring\":\"canary\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]},"
	      "{\"ring\":\"early\",\"not_before\":0,\"ramp\":[%s]},"
	      "{\"ring\":\"broad\",\"not_before\":0,\"ramp\":[%s]}],"
	      "\"gates\":{\"probation_s\":4,\"silence_s\":30,\"min_bake_s\":5,\"min_healthy\":3}}}",
	      pk->release, early, broad);
	char *add[] = {d->self,	   "repo", "add", d->repo, pk->file, "--name", (char *)pk->target,
		       "--custom", custom, NULL};
	char *pub[] = {d->self, "repo", "publish", d->repo, NULL};
	if ((r = run_tool(d, add, "publisher.log")) < 0 ||
	    (r = run_tool(d, pub, "publisher.log")) < 0)
		return r;
	req = json_pack("{s:s}", "target", pk->target);
	st = api(d, "POST", "/v1/admin/releases", req, &rep);
	json_decref(req);
	if (st != 201) {
		json_decref(rep);
		return -EIO;
	}
	pk->id = jint(rep, "id");
	pk->created_at = jint(rep, "created_at");
	json_decref(rep);
	return 0;
}

/* ---- progress lines
 * -------------------------------------------------------------------------------- */

static void show_rings(struct demo *d, struct pack *pk)
{
	json_t *rel = release_get(d, pk);
	char line[512];
	size_t o = 0;

	if (!rel) {
		say(d, "  (server not answering)");
		return;
	}
	for (int r = 0; r < NRINGS; r++) {
		json_t *ring = ring_of(rel, r);
		int w = snprintf(line + o, sizeof(line) - o,
				 "%s%s %s took %lld healthy %lld failed %lld", r ? " | " : "",
				 ring_names[r], ring ? jstr(ring, "phase") : "?",
				 ring_health(rel, r, "devices"), ring_health(rel, r, "healthy"),
				 ring_health(rel, r, "failed"));
		if (w > 0 && (size_t)w < sizeof(line) - o)
			o += (size_t)w;
	}
	say(d, "  %s: %s  [%s]", pk->target, jstr(rel, "status"), line);
	json_decref(rel);
}

/* Wait until pred holds (bounded), printing the release's rings every few seconds. */
/* P6 from the server's own status: in every snapshot, a ring that has devices on the release
 * comes after a ring that completed it (a ring opens only when the one before is complete). */
static void watch_order(struct demo *d, struct pack *pk)
{
	json_t *rel = release_get(d, pk);

	if (!rel)
		return;
	pk->snapshots++;
	for (int r = 1; r < NRINGS; r++) {
		json_t *prev = ring_of(rel, r - 1);
		if (ring_health(rel, r, "devices") > 0 &&
		    (!prev || strcmp(jstr(prev, "phase"), "complete"))) {
			pk->order_breaches++;
			say(d, "  P6: %s has devices in %s while %s is %s", pk->target,
			    ring_names[r], ring_names[r - 1], prev ? jstr(prev, "phase") : "?");
		}
	}
	json_decref(rel);
}

static bool wait_for(struct demo *d, unsigned timeout_s, struct pack *pk,
		     bool (*pred)(struct demo *, struct pack *))
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_s * 1000;

	while (!stop_signal) {
		tick(d);
		if (pk)
			watch_order(d, pk);
		if (pred(d, pk))
			return true;
		if (now_ms() > deadline)
			return false;
		if (pk && !d->quiet && now_ms() >= d->last_status_ms + 4000) {
			show_rings(d, pk);
			d->last_status_ms = now_ms();
		}
		usleep(250000);
	}
	return false;
}

static bool all_enrolled(struct demo *d, struct pack *pk)
{
	json_t *t = NULL;
	bool ok;

	(void)pk;
	ok = api(d, "GET", "/v1/admin/tenants/demo", NULL, &t) == 200 &&
	     jint(t, "devices") >= (long long)d->n;
	json_decref(t);
	return ok;
}

static bool everyone_on_good(struct demo *d, struct pack *pk)
{
	json_t *rel;
	bool ok = true;

	for (unsigned i = 0; i < d->n && ok; i++) {
		struct astate s;
		if (d->ag[i].offline)
			continue;
		agent_read(d, &d->ag[i], &s);
		ok = on_good(d, &s);
	}
	if (!ok || !(rel = release_get(d, pk)))
		return false;
	long long healthy = 0, want = 0;
	for (unsigned i = 0; i < d->n; i++)
		want += !d->ag[i].offline;
	for (int r = 0; r < NRINGS; r++) {
		json_t *ring = ring_of(rel, r);
		if (!ring || strcmp(jstr(ring, "phase"), "complete"))
			ok = false;
		healthy += ring_health(rel, r, "healthy");
	}
	/* The server's own count, so that "healthy" is its verdict after probation too (P7). */
	ok = ok && healthy >= want;
	json_decref(rel);
	return ok;
}

static bool halted(struct demo *d, struct pack *pk)
{
	json_t *rel = release_get(d, pk);
	bool ok;

	if (!rel)
		return false;
	ok = !strcmp(jstr(rel, "status"), "halted");
	if (ok) {
		pk->halted_at = jint(rel, "halted_at");
		pathf(pk->halt_reason, sizeof(pk->halt_reason), "%s", jstr(rel, "halt_reason"));
	}
	json_decref(rel);
	return ok;
}

/* Every canary agent that loaded the bad pack runs the good one again as its last known good,
 * and quarantined the bad one if it used up its attempts (a host the server's halt reached
 * first leaves it on the rollback order instead: a halt is not a verdict on that device). */
static bool canary_healed(struct demo *d, struct pack *pk)
{
	(void)pk;
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		struct astate s;
		if (a->offline || !loads_of(d, a, PACK_BUG))
			continue;
		agent_read(d, a, &s);
		if (!on_good(d, &s) ||
		    (crashes_of(d, a, PACK_BUG) >= 3 && !s.quarantined[PACK_BUG]))
			return false;
	}
	return true;
}

/* ---- the acts -------------------------------------------------------------------------------- */

struct tally {
	unsigned exposed, loaded, crashed, healed, human;
};

/* deaths0/deaths1: each agent's crash count when pack k was published and when the next act
 * began, so "crashed" counts the host crashes while k was the newest release. */
static void tally_pack(struct demo *d, int k, const unsigned *deaths0, const unsigned *deaths1,
		       struct tally *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		struct astate s;
		bool exposed = saw(d, a, k), loaded = loads_of(d, a, k) > 0;
		unsigned now_deaths = deaths1 ? deaths1[i] : a->deaths - a->killed;
		bool crashed = loaded && now_deaths > deaths0[i];

		if (!exposed)
			continue;
		agent_read(d, a, &s);
		t->exposed++;
		t->loaded += loaded;
		t->crashed += crashed;
		if (k == PACK_GOOD) {
			if (!on_good(d, &s) && !a->offline)
				t->human++;
			continue;
		}
		if (on_good(d, &s))
			t->healed += crashed;
		else if (!a->offline)
			t->human++;
	}
}

static unsigned *snapshot_deaths(struct demo *d)
{
	unsigned *v = calloc(d->n ? d->n : 1, sizeof(*v));

	for (unsigned i = 0; v && i < d->n; i++)
		v[i] = d->ag[i].deaths - d->ag[i].killed;
	return v;
}

/* Nothing outside canary ever saw pack k: agents' logs and stores, and the server's rings. */
static void check_contained(struct demo *d, int k)
{
	unsigned seen = 0, stored = 0, outside = 0;
	json_t *rel = release_get(d, &d->pk[k]);
	long long srv = 0;

	for (unsigned i = 0; i < d->n; i++) {
		struct astate s;
		if (d->ag[i].ring == 0)
			continue;
		outside++;
		agent_read(d, &d->ag[i], &s);
		seen += saw(d, &d->ag[i], k);
		stored += s.stored[k];
	}
	for (int r = 1; r < NRINGS; r++)
		srv += ring_health(rel, r, "devices") + ring_health(rel, r, "rejections");
	check(d, seen == 0 && stored == 0 && srv == 0 && rel,
	      "early and broad never saw %s: %u of %u agents there fetched it, %u stored it; the "
	      "server counts %lld devices on it outside canary",
	      d->pk[k].target, seen, outside, stored, srv);
	json_decref(rel);
}

/* kill -9 hosts in the middle of taking the release, chosen with the seed: agents of the ring
 * being rolled out whose store has the release on trial (loaded, in probation), else ones not
 * yet settled on it, else any. */
static void chaos_kill_agents(struct demo *d, int ring, unsigned how_many)
{
	unsigned done = 0;

	for (int pass = 0; pass < 3 && done < how_many; pass++)
		for (unsigned tries = 0; tries < 20u * d->n && done < how_many; tries++) {
			struct agent *a = &d->ag[(unsigned)rand_r(&d->seed) % d->n];
			struct astate s;

			if (a->pid <= 0 || a->offline)
				continue;
			agent_read(d, a, &s);
			if (pass == 0 &&
			    (a->ring != ring || !s.ok || s.mode != RF_GUARD_MODE_TRIAL))
				continue;
			if (pass == 1 && (a->ring != ring || on_good(d, &s)))
				continue;
			kill_group(a->pid, SIGKILL);
			waitpid(a->pid, NULL, 0);
			a->pid = 0;
			a->deaths++;
			a->killed++;
			a->restart_ms = now_ms() + 300; /* the host reboots */
			done++;
			say(d,
			    "  chaos: kill -9 %s (%s, store mode %s) while the release installs; "
			    "it "
			    "reboots",
			    a->id, ring_names[a->ring], s.ok ? rf_guard_mode_name(s.mode) : "new");
		}
}

static bool act_good(struct demo *d)
{
	struct pack *pk = &d->pk[PACK_GOOD];
	unsigned tmo = 120 + d->n / 2;
	bool chaos_server = d->chaos, chaos_agents = d->chaos;

	act(d, "Act 1: a good release rolls through canary -> early -> broad");
	say(d, "Publishing %s (14 example Sigma rules) with a demo-scaled signed schedule:",
	    pk->target);
	say(d, "  canary 100%% at once; early %s; broad %s;",
	    d->nring[1] >= 20 ? "50% then 100% after 6 s" : "100% (a small ring: one step)",
	    d->nring[2] >= 20 ? "25/50/100% at 0/6/12 s" : "100% (a small ring: one step)");
	say(d, "  each step also waits for 3 devices healthy after 4 s probation and a 5 s bake.");
	if (publish(d, pk) < 0) {
		check(d, false, "publishing %s", pk->target);
		return false;
	}
	say(d, "Release %lld created. The server opens each ring only as the gates pass:", pk->id);
	uint64_t deadline = now_ms() + (uint64_t)tmo * 1000;
	while (!stop_signal && now_ms() < deadline) {
		json_t *rel;
		if (wait_for(d, 1, pk, everyone_on_good))
			break;
		if (!(chaos_server || chaos_agents) || !(rel = release_get(d, pk)))
			continue;
		bool early_taking = ring_health(rel, 1, "devices") > 0;
		json_decref(rel);
		if (chaos_agents && early_taking) {
			chaos_agents = false;
			/* Two: a host killed during trial is a crash of the release, and 3 crashed
			 * devices would rightly halt it (the gates' floor_devices and min_events).
			 */
			chaos_kill_agents(d, 1, 2);
		} else if (chaos_server && !chaos_agents) {
			chaos_server = false;
			say(d, "  chaos: kill -9 ringfenced in the middle of the rollout");
			d->server_expected_down = true;
			kill_group(d->server, SIGKILL);
			waitpid(d->server, NULL, 0);
			d->server = 0;
			nap(d, 1500);
			int r = -EIO;
			for (int i = 0; i < 20 && r < 0 && !stop_signal; i++) {
				r = server_start(d);
				if (r < 0)
					nap(d, 500);
			}
			d->server_expected_down = false;
			if (!check(d, r == 0, "ringfenced restarted on the same port and database"))
				return false;
			say(d,
			    "  ringfenced is back; the agents reconnect with randomized backoff");
		}
	}
	show_rings(d, pk);
	bool ok = everyone_on_good(d, pk);
	unsigned on = 0, up = 0;
	for (unsigned i = 0; i < d->n; i++) {
		struct astate s;
		if (d->ag[i].offline)
			continue;
		up++;
		agent_read(d, &d->ag[i], &s);
		on += on_good(d, &s);
	}
	json_t *rel = release_get(d, pk);
	long long healthy = 0;
	for (int r = 0; r < NRINGS; r++)
		healthy += ring_health(rel, r, "healthy");
	json_decref(rel);
	check(d, ok,
	      "every agent runs %s as its last known good (%u/%u stores), every ring complete",
	      pk->target, on, up);
	unsigned alerting = 0;
	for (unsigned i = 0; i < d->n; i++) {
		char path[DEMO_PATH];
		struct stat sb;
		agent_paths(&d->ag[i], "alerts.jsonl", path, sizeof(path));
		alerting += stat(path, &sb) == 0 && sb.st_size > 0;
	}
	check(d, alerting >= on, "%u agents evaluate their event streams with it and raise alerts",
	      alerting);
	check(d, pk->snapshots > 0 && pk->order_breaches == 0,
	      "in all %u snapshots of the server's status, no ring had devices on it before the "
	      "ring before it was complete (P6)",
	      pk->snapshots);
	check(d, healthy >= (long long)up,
	      "the server counts %lld devices healthy after probation on it (P7: installed is not "
	      "healthy until probation is survived)",
	      healthy);
	return ok;
}

static bool act_291(struct demo *d)
{
	struct pack *pk = &d->pk[PACK_291];
	unsigned *d0 = snapshot_deaths(d);
	unsigned rejected = 0, offered = 0, bad = 0, stored = 0, loaded = 0, died = 0;

	act(d, "Act 2: 2024-07-19 replayed: a pack that needs a field no agent supplies");
	say(d,
	    "%s has a rule on ChannelField21, a field no agent manifest has (the 21st-field bug).",
	    pk->target);
	say(d, "It was compiled without --manifest: the publisher-side verify is skipped, as the");
	say(d,
	    "vendor's validator was broken that day. It is signed and published like any release.");
	if (!d0 || publish(d, pk) < 0) {
		free(d0);
		check(d, false, "publishing %s", pk->target);
		return false;
	}
	say(d, "Release %lld created; canary may take it at once. Watching the gate:", pk->id);
	bool h = wait_for(d, 90, pk, halted);
	show_rings(d, pk);
	check(d, h, "the server halted release %lld by itself: \"%s\"", pk->id, pk->halt_reason);
	nap(d, 2000 + 2000 * d->poll); /* let every agent check in again after the halt */
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		struct astate s;
		char n1[160];
		if (!saw(d, a, PACK_291))
			continue;
		offered++;
		pathf(n1, sizeof(n1), "rejected %s", pk->target);
		rejected += log_count(a, n1) > 0 && log_count(a, "ChannelField21") > 0;
		agent_read(d, a, &s);
		stored += s.stored[PACK_291];
		loaded += loads_of(d, a, PACK_291) > 0;
		bad += !on_good(d, &s);
	}
	for (unsigned i = 0; i < d->n; i++)
		died += d->ag[i].deaths - d->ag[i].killed - d0[i];
	free(d0);
	check(d, offered > 0 && rejected == offered,
	      "every agent offered it rejected it, naming ChannelField21 (P1): %u of %u", rejected,
	      offered);
	check(d, loaded == 0 && stored == 0, "none loaded it or kept it in its store (%u, %u)",
	      loaded, stored);
	check(d, died == 0 && bad == 0,
	      "nothing crashed (%u deaths) and all %u still run the good release as before", died,
	      offered - bad);
	check_contained(d, PACK_291);
	return true;
}

static bool act_bug(struct demo *d)
{
	struct pack *pk = &d->pk[PACK_BUG];
	unsigned *d0 = snapshot_deaths(d);
	struct agent *off = NULL;
	unsigned loaders = 0, maxloads = 0, healed = 0, died = 0, safe = 0, quarantined = 0;
	unsigned exhausted = 0;

	act(d, "Act 3: an unknown bug: a release that crashes the host on load");
	say(d, "%s is valid, signed content, but every host carries a bug that kills it when this",
	    pk->target);
	say(d, "pack loads (the agent's fault-injection knob RINGFENCE_FAULT_CRASH_ON_LOAD). The");
	say(d, "orchestrator reboots a dead host after 0.3 s, as a machine would come back up.");
	if (d->chaos) {
		for (unsigned i = 0; i < d->n && !off; i++)
			if (d->ag[i].ring == 0 && d->ag[i].pid > 0)
				off = &d->ag[i];
		if (off) {
			off->offline = true;
			off->killed++; /* a power-off, not a crash: the reaper counts it as a death
					*/
			kill_group(off->pid, SIGTERM);
			say(d, "  chaos: %s (canary) is switched off while the bad release is live",
			    off->id);
		}
	}
	if (!d0 || publish(d, pk) < 0) {
		free(d0);
		check(d, false, "publishing %s", pk->target);
		return false;
	}
	say(d, "Release %lld created. Watching canary crash and the gate:", pk->id);
	bool h = wait_for(d, 120, pk, halted);
	show_rings(d, pk);
	check(d, h,
	      "the server halted release %lld by itself: \"%s\" (%lld s after it was created)",
	      pk->id, pk->halt_reason, pk->halted_at - pk->created_at);
	say(d, "Waiting for every crashed canary host to heal itself:");
	bool healed_all = wait_for(d, 120, NULL, canary_healed);
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		struct astate s;
		unsigned l = loads_of(d, a, PACK_BUG);
		agent_read(d, a, &s);
		safe += s.ok && s.mode == RF_GUARD_MODE_SAFE;
		died += a->deaths - a->killed - d0[i];
		if (!l)
			continue;
		loaders++;
		maxloads = l > maxloads ? l : maxloads;
		healed += on_good(d, &s);
		quarantined += s.quarantined[PACK_BUG] && on_good(d, &s);
		exhausted += crashes_of(d, a, PACK_BUG) >= 3;
	}
	free(d0);
	check(d, loaders > 0 && died >= loaders,
	      "%u canary hosts loaded it and crashed (%u host crashes in all)", loaders, died);
	check(d, healed_all && healed == loaders,
	      "all %u run the last known good again with no human (P4): %u", loaders, healed);
	check(d, quarantined == exhausted && (exhausted > 0 || loaders == 0),
	      "the %u that crashed 3 times quarantined it by hash (%u); %u left it on the halt's "
	      "rollback order before their 3 attempts were used up",
	      exhausted, quarantined, loaders - exhausted);
	check(d, maxloads <= 3, "no host loaded it more than the 3 attempts (most: %u)", maxloads);
	check(d, safe == 0, "no host is left in safe mode (%u)", safe);
	check_contained(d, PACK_BUG);
	if (off) {
		say(d, "  chaos: %s comes back after the halt and checks in", off->id);
		off->offline = false;
		if (agent_start(d, off) == 0)
			nap(d, 3000 + 3000 * d->poll);
		struct astate s;
		agent_read(d, off, &s);
		check(d,
		      !saw(d, off, PACK_BUG) && !s.stored[PACK_BUG] && on_good(d, &s) &&
			  off->pid > 0,
		      "the host that was offline never takes the halted release and runs the good "
		      "one");
	}
	return true;
}

static void summary(struct demo *d, unsigned *const deaths0[NPACKS])
{
	act(d, "Summary (from the agents' stores and logs, and the server's release status)");
	bool good_halted = false;

	printf("  %-18s %-8s %8s %8s %8s %9s %9s %s\n", "release", "status", "exposed", "loaded",
	       "crashed", "healed", "human", "time to halt");
	for (int k = 0; k < NPACKS; k++) {
		struct pack *pk = &d->pk[k];
		struct tally t;
		json_t *rel;
		char tth[32] = "-";

		if (!pk->id || !deaths0[k])
			continue;
		tally_pack(d, k, deaths0[k], k + 1 < NPACKS ? deaths0[k + 1] : NULL, &t);
		rel = release_get(d, pk);
		if (rel && jint(rel, "halted_at"))
			pathf(tth, sizeof(tth), "%lld s",
			      jint(rel, "halted_at") - jint(rel, "created_at"));
		printf("  %-18s %-8s %8u %8u %8u %9u %9u %s\n", pk->target,
		       rel ? jstr(rel, "status") : "?", t.exposed, t.loaded, t.crashed, t.healed,
		       t.human, tth);
		if (rel && jint(rel, "halted_at"))
			printf("  %-18s halted: %s\n", "", jstr(rel, "halt_reason"));
		if (k == PACK_GOOD && rel && strcmp(jstr(rel, "status"), "active"))
			good_halted = true;
		json_decref(rel);
	}
	printf(
	    "  exposed: agents that fetched it; crashed: hosts that died while it was the newest\n"
	    "  release; healed: crashed, then back on the last known good with no human; human:\n"
	    "  exposed agents not running the good release by themselves.\n");
	printf("\n");
	check(d, !good_halted,
	      "the good release was not halted by the failures of the releases after it (it is the "
	      "last known good the crashed hosts went back to)");
}

/* ---- setup --------------------------------------------------------------------------------------
 */

static void dir_of(const char *path, char *out, size_t outsz)
{
	pathf(out, outsz, "%s", path);
	char *s = strrchr(out, '/');
	if (s)
		*s = 0;
}

/* The programs: next to this one in the build tree (src/cli -> src/agent, src/server), next to
 * it when installed, or on PATH. */
static int find_program(const char *self_dir, const char *sub, const char *name, char *out,
			size_t outsz)
{
	const char *path = getenv("PATH");

	pathf(out, outsz, "%s/../%s/%s", self_dir, sub, name);
	if (access(out, X_OK) == 0)
		return 0;
	pathf(out, outsz, "%s/%s", self_dir, name);
	if (access(out, X_OK) == 0)
		return 0;
	while (path && *path) {
		size_t l = strcspn(path, ":");
		pathf(out, outsz, "%.*s/%s", (int)l, path, name);
		if (l && access(out, X_OK) == 0)
			return 0;
		path += l + (path[l] == ':');
	}
	return -ENOENT;
}

static int find_examples(const char *self_dir, char *out, size_t outsz)
{
	char dir[DEMO_PATH], probe[DEMO_PATH + 32];
	const char *env = getenv("RF_SOURCE_ROOT");

	if (env) {
		pathf(out, outsz, "%s/examples", env);
		return 0;
	}
	pathf(dir, sizeof(dir), "%s", self_dir);
	for (int up = 0; up < 6; up++) {
		pathf(probe, sizeof(probe), "%s/examples/rules", dir);
		if (access(probe, R_OK) == 0) {
			pathf(out, outsz, "%s/examples", dir);
			return 0;
		}
		size_t l = strlen(dir);
		if (l + 4 >= sizeof(dir))
			break;
		memcpy(dir + l, "/..", 4);
	}
	if (access("examples/rules", R_OK) == 0) {
		pathf(out, outsz, "examples");
		return 0;
	}
	/* Installed: the packages put them in the data directory. */
	pathf(probe, sizeof(probe), "%s/examples/rules", rf_cli_data_dir());
	if (access(probe, R_OK) == 0) {
		pathf(out, outsz, "%s/examples", rf_cli_data_dir());
		return 0;
	}
	return -ENOENT;
}

static int read_token(const char *path, char out[80])
{
	uint8_t *p;
	size_t n;
	int r = rf_file_read(path, 200, &p, &n);

	if (r < 0)
		return r;
	while (n && (p[n - 1] == '\n' || p[n - 1] == ' '))
		n--;
	if (n == 0 || n >= 80) {
		free(p);
		return -EBADMSG;
	}
	memcpy(out, p, n);
	out[n] = 0;
	free(p);
	return 0;
}

static const char rule_291[] =
    "title: Needs A Field This Agent Does Not Supply\n"
    "id: 3f0c2a51-5d1e-4c7e-9a55-000000000291\n"
    "description: the 2024-07-19 replay - a 21st input field the agent never supplies\n"
    "logsource:\n  category: process_creation\n  product: windows\n"
    "detection:\n  selection:\n    ChannelField21|contains: 'pipe'\n  condition: selection\n"
    "level: high\n";

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -EIO;
}

static int setup(struct demo *d)
{
	char self_dir[DEMO_PATH], path[DEMO_PATH], src[DEMO_PATH];
	ssize_t l;
	int r;

	l = readlink("/proc/self/exe", d->self, sizeof(d->self) - 1);
	if (l <= 0)
		return -errno;
	d->self[l] = 0;
	dir_of(d->self, self_dir, sizeof(self_dir));
	if (find_program(self_dir, "agent", "ringfence-agent", d->agent_bin, sizeof(d->agent_bin)) <
		0 ||
	    find_program(self_dir, "server", "ringfenced", d->server_bin, sizeof(d->server_bin)) <
		0) {
		fprintf(stderr,
			"ringfence demo: ringfence-agent and ringfenced must be next to ringfence "
			"(build tree or install) or on PATH\n");
		return -ENOENT;
	}
	char *real = find_examples(self_dir, path, sizeof(path)) < 0 ? NULL : realpath(path, NULL);
	r = real ? pathf(d->examples, sizeof(d->examples), "%s", real) : -ENOENT;
	free(real);
	if (r < 0) {
		fprintf(stderr,
			"ringfence demo: examples/ not found (set RF_SOURCE_ROOT to the source "
			"tree)\n");
		return -ENOENT;
	}
	if ((r = load_events(d)) < 0) {
		fprintf(stderr, "ringfence demo: %s/events/sample.jsonl: %s\n", d->examples,
			rf_strerror(r));
		return r;
	}
	if (strlen(d->examples) > DEMO_DIR_MAX ||
	    (d->workdir_opt && strlen(d->workdir_opt) > DEMO_DIR_MAX) ||
	    strlen(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") > DEMO_DIR_MAX - 32) {
		fprintf(stderr, "ringfence demo: paths over %d bytes are not supported\n",
			DEMO_DIR_MAX);
		return -ENAMETOOLONG;
	}
	if (d->workdir_opt) {
		pathf(d->work, sizeof(d->work), "%s", d->workdir_opt);
		if ((r = rf_mkdir_p(d->work, 0755)) < 0 && r != -EEXIST)
			return r;
	} else {
		const char *tmp = getenv("TMPDIR");
		pathf(d->work, sizeof(d->work), "%s/ringfence-demo-XXXXXX",
		      tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(d->work))
			return -errno;
	}
	pathf(d->repo, sizeof(d->repo), "%s/repo", d->work);
	pathf(d->db, sizeof(d->db), "%s/ringfenced.db", d->work);

	/* The packs: compiled from the project's example rules, by the real compiler. */
	d->pk[PACK_GOOD] = (struct pack){.target = "packs/rules-1.rfp", .release = "demo-1-good"};
	d->pk[PACK_291] = (struct pack){.target = "packs/rules-2.rfp", .release = "demo-2-field21"};
	d->pk[PACK_BUG] = (struct pack){.target = "packs/rules-3.rfp", .release = "demo-3-crash"};
	for (int k = 0; k < NPACKS; k++)
		pathf(d->pk[k].file, sizeof(d->pk[k].file), "%s/rules-%d.rfp", d->work, k + 1);
	char *init[] = {d->self, "repo", "init", d->repo, NULL};
	if ((r = run_tool(d, init, "publisher.log")) < 0)
		return r;
	pathf(src, sizeof(src), "%s/rules", d->examples);
	if ((r = compile_pack(d, src, &d->pk[PACK_GOOD], "1")) < 0)
		return r;
	pathf(path, sizeof(path), "%s/rules-291", d->work);
	if ((r = rf_mkdir_p(path, 0755)) < 0 && r != -EEXIST)
		return r;
	pathf(path, sizeof(path), "%s/rules-291/channel_field_21.yml", d->work);
	if ((r = write_file(path, rule_291)) < 0)
		return r;
	pathf(path, sizeof(path), "%s/rules-291", d->work);
	if ((r = compile_pack(d, path, &d->pk[PACK_291], "2")) < 0)
		return r;
	/* The buggy release is ordinary, valid content: the example rules as the next version. */
	if ((r = compile_pack(d, src, &d->pk[PACK_BUG], "3")) < 0)
		return r;
	if (!strcmp(d->pk[PACK_BUG].hex, d->pk[PACK_GOOD].hex))
		return -EEXIST;
	return 0;
}

static int start_fleet(struct demo *d)
{
	json_t *req, *rep = NULL;
	char path[DEMO_PATH];
	long st;
	int r;

	pathf(path, sizeof(path), "%s.admin-token", d->db);
	if ((r = read_token(path, d->admin)) < 0)
		return r;
	req = json_pack("{s:s, s:n, s:s, s:n}", "name", "demo", "ring", "pin", "latest", "window");
	st = api(d, "POST", "/v1/admin/tenants", req, &rep);
	json_decref(req);
	if (st != 201 || strlen(jstr(rep, "enrollment_token")) >= sizeof(d->enroll)) {
		json_decref(rep);
		return -EIO;
	}
	pathf(d->enroll, sizeof(d->enroll), "%s", jstr(rep, "enrollment_token"));
	json_decref(rep);

	/* Rings: a fifth of the fleet (at least 4) in canary, then 40 % early, the rest broad. */
	d->nring[0] = d->n / 5 > 4 ? d->n / 5 : 4;
	d->nring[1] = (d->n - d->nring[0]) * 2 / 5;
	d->nring[2] = d->n - d->nring[0] - d->nring[1];
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		char events[DEMO_PATH];
		a->ring = i < d->nring[0] ? 0 : i < d->nring[0] + d->nring[1] ? 1 : 2;
		pathf(a->id, sizeof(a->id), "host-%s-%04u", ring_names[a->ring], i);
		pathf(a->dir, sizeof(a->dir), "%s/agents/%s", d->work, a->id);
		if ((r = rf_mkdir_p(a->dir, 0755)) < 0 && r != -EEXIST)
			return r;
		agent_paths(a, "events.jsonl", events, sizeof(events));
		FILE *f = fopen(events, "w");
		if (!f)
			return -errno;
		for (size_t e = 0; e < 3; e++)
			fprintf(f, "%s\n", d->events[(i + e) % d->nevents]);
		fclose(f);
	}
	for (unsigned i = 0; i < d->n && !stop_signal; i++) {
		if ((r = agent_start(d, &d->ag[i])) < 0)
			return r;
		if (i % 50 == 49)
			nap(d, 200);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringfence demo [--agents N] [--keep] [--seed S] [--chaos] [--poll S]\n"
	    "                      [--workdir DIR] [--quiet]\n\n"
	    "Run the whole system on this machine: ringfenced on 127.0.0.1 (SQLite in a temp "
	    "dir),\n"
	    "a fresh signed TUF repository, N real ringfence-agent processes in the rings canary,\n"
	    "early and broad, and three releases: a good one rolled out to every agent, the\n"
	    "2024-07-19 replay (a pack needing a field no agent supplies, publisher check "
	    "skipped)\n"
	    "and a pack that crashes the host on load. Every promise is checked against the\n"
	    "server's API and the agents' stores; the summary gives per release the devices\n"
	    "exposed, crashed, healed without a human, needing a human, and the time to halt.\n\n"
	    "  --agents N     agents to run (default 100, 1..%d)\n"
	    "  --keep         leave the server and agents up after the summary, until Ctrl-C\n"
	    "  --seed S       seed for the chaos choices (default 1)\n"
	    "  --chaos        also kill -9 ringfenced and random agents mid-rollout, and keep one\n"
	    "                 canary host offline while the bad release is live\n"
	    "  --poll S       agents' check-in interval in seconds (default 2)\n"
	    "  --workdir DIR  keep everything (logs, stores, database) in DIR instead of a temp\n"
	    "                 dir that is removed at the end\n"
	    "  --quiet        fewer progress lines\n\n"
	    "exit: 0 every promise held, 1 a promise was broken, 2 usage or setup error,\n"
	    "130 interrupted\n",
	    DEMO_AGENTS_MAX);
}

static int rm_rf(const char *dir)
{
	char *argv[] = {"/bin/rm", "-rf", (char *)dir, NULL};
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	return 0;
}

int rf_cli_demo(int argc, char **argv)
{
	static const struct option lo[] = {{"agents", required_argument, NULL, 'n'},
					   {"keep", no_argument, NULL, 'k'},
					   {"seed", required_argument, NULL, 's'},
					   {"chaos", no_argument, NULL, 'c'},
					   {"poll", required_argument, NULL, 'p'},
					   {"workdir", required_argument, NULL, 'w'},
					   {"quiet", no_argument, NULL, 'q'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	struct demo d = {.n = 100, .seed = 1, .poll = 2};
	bool finished = false;
	unsigned *deaths0[NPACKS] = {0};
	struct sigaction sa = {0};
	uint64_t v;
	int c, r, rc = 2;

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence demo")) != -1) {
		switch (c) {
		case 'n':
			if (rf_parse_u64(optarg, &v) < 0 || v < 1 || v > DEMO_AGENTS_MAX) {
				fprintf(stderr, "ringfence demo: --agents: '%s' is not in 1..%d\n",
					optarg, DEMO_AGENTS_MAX);
				return 2;
			}
			d.n = (unsigned)v;
			break;
		case 's':
			if (rf_parse_u64(optarg, &v) < 0 || v > UINT32_MAX) {
				fprintf(stderr, "ringfence demo: --seed: '%s' is not a number\n",
					optarg);
				return 2;
			}
			d.seed = (unsigned)v;
			break;
		case 'p':
			if (rf_parse_u64(optarg, &v) < 0 || v < 1 || v > 60) {
				fprintf(stderr, "ringfence demo: --poll: '%s' is not in 1..60\n",
					optarg);
				return 2;
			}
			d.poll = (unsigned)v;
			break;
		case 'k':
			d.keep = true;
			break;
		case 'c':
			d.chaos = true;
			break;
		case 'q':
			d.quiet = true;
			break;
		case 'w':
			d.workdir_opt = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ringfence demo: unexpected argument '%s'\n\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (d.chaos && d.n < 8) {
		fprintf(stderr, "ringfence demo: --chaos needs at least 8 agents\n");
		return 2;
	}
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	d.t0_ms = d.last_event_ms = now_ms();
	d.ag = calloc(d.n, sizeof(*d.ag));
	if (!d.ag)
		goto out;

	act(&d, "Act 0: a publisher, a server, a fleet");
	if ((r = setup(&d)) < 0) {
		fprintf(stderr, "ringfence demo: setup failed: %s (logs in %s)\n", rf_strerror(r),
			d.work[0] ? d.work : "-");
		goto out;
	}
	say(&d, "Work dir %s: a fresh TUF repository (new keys), three packs compiled from",
	    d.work);
	say(&d, "%s/rules: %s (good), %s (needs a 21st field), %s (crashes hosts).", d.examples,
	    d.pk[0].target, d.pk[1].target, d.pk[2].target);
	if ((r = server_start(&d)) < 0) {
		fprintf(stderr,
			"ringfence demo: ringfenced did not start: %s (see %s/ringfenced.log)\n",
			rf_strerror(r), d.work);
		goto out;
	}
	say(&d, "ringfenced listens on %s (SQLite %s).", d.url, d.db);
	say(&d, "Dashboard: %s/   metrics: %s/metrics", d.url, d.url);
	if ((r = start_fleet(&d)) < 0) {
		fprintf(stderr, "ringfence demo: starting the fleet failed: %s\n", rf_strerror(r));
		goto out;
	}
	say(&d,
	    "Started %u ringfence-agent processes (canary %u, early %u, broad %u), each with its",
	    d.n, d.nring[0], d.nring[1], d.nring[2]);
	say(&d, "own store and event stream; they enroll over HTTP with the tenant's token.");
	rc = 1;
	if (!check(&d, wait_for(&d, 60 + d.n / 4, NULL, all_enrolled),
		   "all %u agents enrolled (the server's tenant record says so)", d.n))
		goto out;

	deaths0[0] = snapshot_deaths(&d);
	if (!stop_signal && act_good(&d)) {
		deaths0[1] = snapshot_deaths(&d);
		if (!stop_signal)
			act_291(&d);
		deaths0[2] = snapshot_deaths(&d);
		if (!stop_signal)
			act_bug(&d);
	}
	if (!stop_signal)
		summary(&d, deaths0);
	if (stop_signal)
		goto out;
	rc = d.broken ? 1 : 0;
	printf("\n%s\n",
	       d.broken ? "Some promises were BROKEN (see above)." : "Every promise held.");
	if (d.keep) {
		printf(
		    "Dashboard: %s/  (--keep: the server and agents stay up; Ctrl-C stops them)\n",
		    d.url);
		fflush(stdout);
		while (!stop_signal) {
			tick(&d);
			usleep(200000);
		}
		finished =
		    true; /* Ctrl-C is the expected end here: the exit code stays the verdict */
		printf("\nstopping ringfenced and the agents\n");
	}
out:
	if (stop_signal && !finished) {
		printf("\ninterrupted: stopping ringfenced and the agents\n");
		rc = 130;
	}
	stop_all(&d);
	fflush(stdout);
	if (d.work[0] && !d.workdir_opt) {
		if (rc == 0 || rc == 130)
			rm_rf(d.work);
		else
			printf("logs kept in %s\n", d.work);
	}
	for (int k = 0; k < NPACKS; k++)
		free(deaths0[k]);
	for (size_t i = 0; i < d.nevents; i++)
		free(d.events[i]);
	free(d.events);
	free(d.ag);
	if (d.curl)
		curl_easy_cleanup(d.curl);
	curl_global_cleanup();
	return rc;
}
