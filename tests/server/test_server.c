/*
 * API tests of ringfenced over real HTTP: each test starts the real ringfenced program on
 * 127.0.0.1 (a free port, chosen by the kernel and read back from --port-file) with SQLite (or,
 * as server-api-pg under tests/lib/pg.sh, a new PostgreSQL database per test) and a
 * real TUF repository (trust/ repository writer) in a temp dir, and talks to it with libcurl as an
 * agent and an operator would. Covers enroll, check-in, report idempotency, halt, resume,
 * rollback, a gate that halts by itself, cross-tenant denial, malformed / oversized / deeply
 * nested bodies, /repo/ path traversal, metrics and dashboard, and kill -9 with reports in flight
 * (no acknowledged report lost, state consistent after restart); on PostgreSQL also the
 * database stopped and started under a running server.
 * Every wait is bounded in count and time; servers are stopped by the test.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "server/store.h"
#include "testdb.h"
#include "testpack.h"
#include "trust/tuf.h"

static const char *ringfenced_path, *ringfence_path;

struct env {
	char dir[256], db[300], repo[300], token_file[300], port_file[300];
	char admin[80];
	pid_t pid;
	unsigned port;
	bool created;	   /* the database exists: later starts go without --init */
	const char *extra[8]; /* more options for the next starts, NULL-terminated */
};

/* ---- helpers ------------------------------------------------------------------------------ */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

struct buf {
	char *p;
	size_t n;
};

static size_t on_data(char *p, size_t sz, size_t nm, void *ud)
{
	struct buf *b = ud;
	size_t n = sz * nm;
	char *q = realloc(b->p, b->n + n + 1);

	if (!q)
		return 0;
	memcpy(q + b->n, p, n);
	b->p = q;
	b->n += n;
	b->p[b->n] = 0;
	return n;
}

/* The Retry-After header of the last reply (empty if it had none). */
static char last_retry_after[16];

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
	size_t n = sz * nm;

	if (n > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		size_t k = n - 12;
		const char *v = p + 12;
		while (k && *v == ' ')
			v++, k--;
		while (k && (v[k - 1] == '\r' || v[k - 1] == '\n'))
			k--;
		snprintf(last_retry_after, sizeof(last_retry_after), "%.*s", (int)k, v);
	}
	return n;
}

/* One HTTP request; returns the status (0 on transport failure), *ret_body (malloc'd text). */
static long http_raw(struct env *e, const char *method, const char *path, const char *auth,
		     const char *body, size_t len, char **ret_body)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct buf b = {0};
	char url[512], hdr[200];
	long status = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", e->port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	last_retry_after[0] = 0;
	if (auth) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", auth);
		h = curl_slist_append(h, hdr);
	}
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (ret_body)
		*ret_body = b.p ? b.p : strdup("");
	else
		free(b.p);
	return status;
}

/* Request with a JSON body (or none) and a JSON reply parsed into *ret (may be NULL). */
static long http(struct env *e, const char *method, const char *path, const char *auth,
		 json_t **ret, const char *fmt, ...)
{
	char body[8192], *reply = NULL;
	long st;

	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(body, sizeof(body), fmt, ap);
		va_end(ap);
	}
	st = http_raw(e, method, path, auth, fmt ? body : NULL, fmt ? strlen(body) : 0, &reply);
	if (ret)
		*ret = json_loads(reply, 0, NULL);
	free(reply);
	return st;
}

static const char *jstr(json_t *j, const char *a, const char *b)
{
	json_t *v = json_object_get(j, a);
	if (b)
		v = json_object_get(v, b);
	return json_string_value(v) ? json_string_value(v) : "";
}

#define EXPECT_STATUS(want, got)                                                                   \
	do {                                                                                       \
		long g_ = (got);                                                                   \
		if (g_ != (want))                                                                  \
			fail_msg("%s:%d: HTTP status %ld, want %d", __FILE__, __LINE__, g_,        \
				 (want));                                                          \
	} while (0)

static void start_server(struct env *e)
{
	unlink(e->port_file);
	e->pid = fork();
	assert_true(e->pid >= 0);
	if (e->pid == 0) {
		/* The server's log, with journald's priority prefixes (JOURNAL_STREAM set), so
		 * tests can read the audit trail's lines. */
		char log[320];
		snprintf(log, sizeof(log), "%s/server.log", e->dir);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0 && !getenv("RF_TEST_VERBOSE"))
			dup2(fd, 2);
		setenv("JOURNAL_STREAM", "0:0", 1);
		const char *argv[24] = {"ringfenced", "--listen",	   "127.0.0.1:0",
					"--db",	      e->db,		   "--repo",
					e->repo,      "--admin-token-file", e->token_file,
					"--port-file", e->port_file,	   "--threads",
					"2",	      "--poll-interval",   "60"};
		int n = 15;
		if (!e->created)
			argv[n++] = "--init";
		for (int i = 0; i < 7 && e->extra[i]; i++)
			argv[n++] = e->extra[i];
		execv(ringfenced_path, (char *const *)argv);
		_exit(127);
	}
	e->created = true;
	for (int i = 0; i < 400; i++) { /* up to 20 s (ASan start-up on a busy machine) */
		uint8_t *p;
		size_t n;
		uint64_t port;
		if (rf_file_read(e->port_file, 64, &p, &n) == 0) {
			while (n && p[n - 1] == '\n')
				p[--n] = 0;
			int ok = rf_parse_u64((char *)p, &port) == 0;
			free(p);
			if (ok && port > 0 && port < 65536) {
				e->port = (unsigned)port;
				break;
			}
		}
		int st;
		if (waitpid(e->pid, &st, WNOHANG) == e->pid)
			fail_msg("ringfenced exited during start-up (status %d)", st);
		sleep_ms(50);
	}
	assert_true(e->port > 0);
	if (!e->admin[0]) {
		uint8_t *p;
		size_t n;
		assert_int_equal(rf_file_read(e->token_file, 256, &p, &n), 0);
		snprintf(e->admin, sizeof(e->admin), "%.68s", (char *)p);
		free(p);
	}
}

static void stop_server(struct env *e, int sig)
{
	int st;

	if (e->pid <= 0)
		return;
	kill(e->pid, sig);
	for (int i = 0; i < 400 && waitpid(e->pid, &st, WNOHANG) != e->pid; i++)
		sleep_ms(50);
	e->pid = 0;
	e->port = 0;
}

/* Sign target name (the example pack with a sequence number of its own, testpack.h) with the
 * custom metadata custom into the repository, and publish. */
static void add_pack(struct env *e, const char *name, const char *custom, int64_t now)
{
	struct rf_diag d = {0};
	uint8_t *pack;
	size_t n;

	if (rf_testpack(rf_testpack_seq(name), &pack, &n) < 0)
		fail_msg("the example pack ($RF_TEST_PACK) is not readable");
	if (rf_tuf_repo_add(e->repo, name, pack, n, custom, now, &d) < 0 ||
	    rf_tuf_repo_publish(e->repo, now, &d) < 0)
		fail_msg("repository: %s", d.first);
	free(pack);
}

/* Add target name with a schedule (every ring open now at 100 %) and gates, and publish. */
static void add_target(struct env *e, const char *name, const char *release, const char *gates)
{
	char custom[2048];
	int64_t now = rf_now_wall();

	snprintf(custom, sizeof(custom),
		 "{\"ringfence\":{\"release\":\"%s\",\"schedule\":["
		 "{\"ring\":\"canary\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]},"
		 "{\"ring\":\"broad\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]}],"
		 "\"gates\":{%s}}}",
		 release, gates);
	add_pack(e, name, custom, now);
}

static int setup_with(void **state, int64_t timestamp_expiry)
{
	struct env *e = calloc(1, sizeof(*e));
	struct rf_tuf_repo_opts o = {.keytype = RF_TUF_KEY_ED25519};
	struct rf_diag d = {0};

	snprintf(e->dir, sizeof(e->dir), "/tmp/rf-test-server-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	if (rf_testdb_new(e->dir, "ringfenced.db", e->db, sizeof(e->db)) < 0)
		return -1;
	snprintf(e->repo, sizeof(e->repo), "%s/repo", e->dir);
	snprintf(e->token_file, sizeof(e->token_file), "%s/admin-token", e->dir);
	snprintf(e->port_file, sizeof(e->port_file), "%s/port", e->dir);
	o.expiry[RF_TUF_TIMESTAMP] = timestamp_expiry;
	if (rf_tuf_repo_init(e->repo, &o, rf_now_wall(), &d) < 0) {
		fprintf(stderr, "repo init: %s\n", d.first);
		return -1;
	}
	start_server(e);
	*state = e;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 0);
}

/* A timestamp that expires in 30 minutes: inside the server's one-hour refresh margin. */
static int setup_short_timestamp(void **state)
{
	return setup_with(state, 1800);
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[400];

	stop_server(e, SIGTERM);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", e->dir);
	free(e);
	return 0;
}

/* Create tenant name (ring or NULL) and return its enrollment token in tok. */
static void tenant(struct env *e, const char *name, const char *ring, char tok[80])
{
	json_t *j;
	char ringj[80];

	snprintf(ringj, sizeof(ringj), ring ? "\"%s\"" : "null", ring);
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/tenants", e->admin, &j,
				"{\"name\":\"%s\",\"ring\":%s}", name, ringj));
	snprintf(tok, 80, "%s", jstr(j, "enrollment_token", NULL));
	assert_int_equal(strncmp(tok, "rfe_", 4), 0);
	json_decref(j);
}

static void enroll(struct env *e, const char *tok, const char *dev, char cred[80])
{
	json_t *j;

	EXPECT_STATUS(201, http(e, "POST", "/v1/enroll", tok, &j,
				"{\"device_id\":\"%s\",\"agent_version\":\"0.1.0\"}", dev));
	snprintf(cred, 80, "%s", jstr(j, "credential", NULL));
	assert_int_equal(strncmp(cred, "rfd_", 4), 0);
	json_decref(j);
}

/* Check in as dev running sha (or nothing); returns the reply. */
static json_t *checkin(struct env *e, const char *cred, const char *dev, const char *sha,
		       unsigned crashes)
{
	json_t *j;
	char cur[200];

	snprintf(cur, sizeof(cur), sha ? "{\"target\":\"x\",\"sha256\":\"%s\"}" : "null", sha);
	EXPECT_STATUS(
	    200, http(e, "POST", "/v1/checkin", cred, &j,
		      "{\"device_id\":\"%s\",\"ring\":\"canary\",\"agent_version\":\"0.1.0\","
		      "\"state\":{\"current\":%s,\"last_good\":null,\"trial\":null,"
		      "\"quarantine\":[],\"safe_mode\":false},"
		      "\"health\":{\"crashes\":%u,\"rollbacks\":0,\"events\":10,\"alerts\":0}}",
		      dev, cur, crashes));
	assert_non_null(j);
	return j;
}

/* Check in as dev running sha with lg (another pack's hash) as its own last known good. */
static json_t *checkin_lg(struct env *e, const char *cred, const char *dev, const char *sha,
			  const char *lg)
{
	json_t *j;

	EXPECT_STATUS(
	    200, http(e, "POST", "/v1/checkin", cred, &j,
		      "{\"device_id\":\"%s\",\"state\":{\"current\":{\"target\":\"x\","
		      "\"sha256\":\"%s\"},\"last_good\":{\"target\":\"y\",\"sha256\":\"%s\"}}}",
		      dev, sha, lg));
	assert_non_null(j);
	return j;
}

/* A device on a halted release with nothing to go to: told to stay and wait for the fix
 * (issue 10: it used to be told "rollback" with nowhere to go, forever). */
static void expect_waiting(json_t *j)
{
	assert_string_equal(jstr(j, "action", NULL), "stay");
	assert_string_equal(jstr(j, "reason", NULL), "waiting-for-fix");
	json_decref(j);
}

static long report(struct env *e, const char *cred, const char *dev, const char *rid,
		   const char *event, const char *sha)
{
	return http(e, "POST", "/v1/report", cred, NULL,
		    "{\"report_id\":\"%s\",\"device_id\":\"%s\",\"event\":\"%s\",\"sha256\":\"%s\","
		    "\"time\":1764000000,\"detail\":\"test\"}",
		    rid, dev, event, sha);
}

/* Wait (bounded: 15 s) until release id has status want. */
static void wait_status(struct env *e, int id, const char *want)
{
	char path[64];
	snprintf(path, sizeof(path), "/v1/admin/releases/%d", id);
	for (int i = 0; i < 150; i++) {
		json_t *j;
		EXPECT_STATUS(200, http(e, "GET", path, e->admin, &j, NULL));
		int ok = !strcmp(jstr(j, "status", NULL), want);
		json_decref(j);
		if (ok)
			return;
		sleep_ms(100);
	}
	fail_msg("release %d never became %s", id, want);
}

/* A TCP connection to the server from source address src (any of 127.0.0.0/8: Linux routes the
 * whole block to lo), with 10 s send and receive timeouts; -1 on failure. */
static int raw_connect(struct env *e, const char *src)
{
	struct sockaddr_in a = {.sin_family = AF_INET}, b = {.sin_family = AF_INET};
	struct timeval tv = {10, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	inet_pton(AF_INET, src, &a.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &b.sin_addr);
	b.sin_port = htons((uint16_t)e->port);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    connect(fd, (struct sockaddr *)&b, sizeof(b)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send req as is from src and read the reply until the server closes the connection (or 10 s
 * pass). Returns the HTTP status (0: no reply); *ret_body (may be NULL) is the body. */
static long raw_http(struct env *e, const char *src, const char *req, char **ret_body)
{
	char buf[16384];
	size_t n = 0;
	long status = 0;
	int fd = raw_connect(e, src);

	if (ret_body)
		*ret_body = NULL;
	if (fd < 0)
		return 0;
	if (write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
		ssize_t k;
		while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
			n += (size_t)k;
	}
	close(fd);
	buf[n] = 0;
	if (n > 12 && !strncmp(buf, "HTTP/1.", 7))
		status = strtol(buf + 9, NULL, 10);
	if (ret_body) {
		char *b = strstr(buf, "\r\n\r\n");
		*ret_body = strdup(b ? b + 4 : "");
	}
	return status;
}

/* POST body to path with the given Content-Type header (NULL: none). */
static long http_ctype(struct env *e, const char *path, const char *auth, const char *ctype,
		       const char *body)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[512], hdr[200];
	long status = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", e->port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	struct buf b = {0};
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", auth);
	h = curl_slist_append(h, hdr);
	snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype ? ctype : "");
	h = curl_slist_append(h, ctype ? hdr : "Content-Type:");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(b.p);
	return status;
}

/* Run ringfenced with args (NULL-terminated, after the program name) to its end, its output
 * into errfile. Returns its exit status, or -1 if it was still running after 20 s (it was serving:
 * killed). */
static int run_ringfenced(const char *errfile, const char *const *args)
{
	const char *argv[16] = {"ringfenced"};
	pid_t pid;
	int st, n = 1;

	for (; args[n - 1] && n < 15; n++)
		argv[n] = args[n - 1];
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(ringfenced_path, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 400; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		sleep_ms(50);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static bool file_has(const char *path, const char *needle)
{
	uint8_t *p;
	size_t n;
	bool found;

	if (rf_file_read(path, 1 << 20, &p, &n) < 0)
		return false;
	char *t = strndup((char *)p, n);
	found = t && strstr(t, needle);
	free(t);
	free(p);
	return found;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_enroll_checkin_report_halt_resume(void **state)
{
	struct env *e = *state;
	char tok[80], cred[80], cred2[80], sha[65];
	json_t *j;

	tenant(e, "acme", "canary", tok);
	enroll(e, tok, "host-1", cred);
	enroll(e, tok, "host-2", cred2);

	/* No release yet: stay. */
	j = checkin(e, cred, "host-1", NULL, 0);
	assert_string_equal(jstr(j, "action", NULL), "stay");
	json_decref(j);

	add_target(e, "packs/rules-1.rfp", "rules-1", "\"min_healthy\":1");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-1.rfp\"}"));
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 1);
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	assert_int_equal(strlen(sha), 64);
	json_decref(j);
	/* The same target twice is a conflict; an unknown target a 400. */
	EXPECT_STATUS(409, http(e, "POST", "/v1/admin/releases", e->admin, NULL,
				"{\"target\":\"packs/rules-1.rfp\"}"));
	EXPECT_STATUS(400, http(e, "POST", "/v1/admin/releases", e->admin, NULL,
				"{\"target\":\"packs/nope.rfp\"}"));

	/* The schedule admits every canary device now: install. */
	j = checkin(e, cred, "host-1", NULL, 0);
	assert_string_equal(jstr(j, "action", NULL), "install");
	assert_string_equal(jstr(j, "release", "target"), "packs/rules-1.rfp");
	assert_string_equal(jstr(j, "release", "sha256"), sha);
	json_decref(j);

	/* Reports: new -> 201, the same id again -> 200 duplicate. */
	EXPECT_STATUS(201, report(e, cred, "host-1", "host-1-1", "intent", sha));
	EXPECT_STATUS(200, report(e, cred, "host-1", "host-1-1", "intent", sha));
	EXPECT_STATUS(201, report(e, cred, "host-1", "host-1-2", "trial_started", sha));
	EXPECT_STATUS(201, report(e, cred, "host-1", "host-1-3", "healthy", sha));
	j = checkin(e, cred, "host-1", sha, 0);
	assert_string_equal(jstr(j, "action", NULL), "stay");
	json_decref(j);

	/* Halt: host-1 runs it as its only good content, so the halt needs force (it would
	 * have nowhere to go); a refused halt changes nothing. */
	EXPECT_STATUS(409, http(e, "POST", "/v1/admin/releases/1/halt", e->admin, &j,
				"{\"reason\":\"looks wrong\"}"));
	assert_string_equal(jstr(j, "error", "field"), "force");
	assert_non_null(strstr(jstr(j, "error", "message"),
			       "1 device runs release 1 as its only good content and would have "
			       "nowhere to go: it would keep"));
	json_decref(j);
	EXPECT_STATUS(400, http(e, "POST", "/v1/admin/releases/1/halt", e->admin, NULL,
				"{\"force\":\"yes\"}"));
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases/1", e->admin, &j, NULL));
	assert_string_equal(jstr(j, "status", NULL), "active");
	json_decref(j);
	/* A device not on it is not offered it; one on it waits for a fix. */
	EXPECT_STATUS(200, http(e, "POST", "/v1/admin/releases/1/halt", e->admin, &j,
				"{\"reason\":\"looks wrong\",\"force\":true}"));
	assert_int_equal(json_integer_value(json_object_get(j, "stranded")), 1);
	assert_string_equal(jstr(j, "status", NULL), "halted");
	assert_non_null(strstr(jstr(j, "halt_reason", NULL), "looks wrong"));
	json_decref(j);
	EXPECT_STATUS(409, http(e, "POST", "/v1/admin/releases/1/halt", e->admin, NULL, NULL));
	j = checkin(e, cred2, "host-2", NULL, 0);
	assert_string_equal(jstr(j, "action", NULL), "stay");
	assert_int_equal(json_array_size(json_object_get(j, "halted")), 1);
	json_decref(j);
	expect_waiting(checkin(e, cred, "host-1", sha, 0));
	/* With a last known good of its own it is told to go back to it (rollback_to null). */
	char other[65];
	memset(other, 'a', 64);
	other[64] = 0;
	j = checkin_lg(e, cred, "host-1", sha, other);
	assert_string_equal(jstr(j, "action", NULL), "rollback");
	assert_true(json_is_null(json_object_get(j, "rollback_to")));
	json_decref(j);

	/* Resume: offered again. */
	EXPECT_STATUS(200, http(e, "POST", "/v1/admin/releases/1/resume", e->admin, NULL, NULL));
	j = checkin(e, cred2, "host-2", NULL, 0);
	assert_string_equal(jstr(j, "action", NULL), "install");
	json_decref(j);

	/* Status per ring is there, and survives a restart (state is durable). */
	stop_server(e, SIGTERM);
	start_server(e);
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases/1", e->admin, &j, NULL));
	assert_string_equal(jstr(j, "status", NULL), "active");
	assert_true(json_array_size(json_object_get(j, "rings")) == 2);
	json_decref(j);
	EXPECT_STATUS(200, report(e, cred, "host-1", "host-1-3", "healthy", sha));

	/* Rollback is final (forced: host-1 has nowhere to go). */
	EXPECT_STATUS(200, http(e, "POST", "/v1/admin/releases/1/rollback", e->admin, NULL,
				"{\"reason\":\"bad\",\"force\":true}"));
	EXPECT_STATUS(409, http(e, "POST", "/v1/admin/releases/1/resume", e->admin, NULL, NULL));
	expect_waiting(checkin(e, cred, "host-1", sha, 0));
}

static void test_cross_tenant_denied(void **state)
{
	struct env *e = *state;
	char ta[80], tb[80], ca[80], cb[80];
	json_t *j;

	tenant(e, "alpha", NULL, ta);
	tenant(e, "beta", NULL, tb);
	enroll(e, ta, "a-1", ca);
	enroll(e, tb, "b-1", cb);
	/* b's credential cannot speak for a's device, nor report for it: it is not a-1's
	 * credential (401, as any credential a-1 no longer has: its agent would enrol again). */
	EXPECT_STATUS(401, http(e, "POST", "/v1/checkin", cb, NULL, "{\"device_id\":\"a-1\"}"));
	EXPECT_STATUS(401,
		      report(e, cb, "a-1", "x-1", "crashed",
			     "0000000000000000000000000000000000000000000000000000000000000000"));
	/* b's enrollment token cannot take over a's device id. */
	EXPECT_STATUS(409, http(e, "POST", "/v1/enroll", tb, NULL, "{\"device_id\":\"a-1\"}"));
	/* The old credential still works (nothing changed), and it is a's. */
	j = checkin(e, ca, "a-1", NULL, 0);
	json_decref(j);
	/* Device and enrollment tokens are not operator tokens, and vice versa. */
	EXPECT_STATUS(401, http(e, "GET", "/v1/admin/tenants", ca, NULL, NULL));
	EXPECT_STATUS(401, http(e, "GET", "/v1/admin/tenants", ta, NULL, NULL));
	EXPECT_STATUS(401,
		      http(e, "POST", "/v1/checkin", e->admin, NULL, "{\"device_id\":\"a-1\"}"));
	EXPECT_STATUS(401,
		      http(e, "POST", "/v1/enroll",
			   "rfe_0000000000000000000000000000000000000000000000000000000000000000",
			   NULL, "{\"device_id\":\"z\"}"));
	EXPECT_STATUS(401, http(e, "POST", "/v1/checkin", NULL, NULL, "{\"device_id\":\"a-1\"}"));
	/* A token of the wrong kind is told apart from no token at all (it is not "missing"). */
	json_t *err = NULL;
	EXPECT_STATUS(401, http(e, "POST", "/v1/enroll", e->admin, &err, "{\"device_id\":\"z\"}"));
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(err, "error"),
								  "message")),
			       "not an enrollment token"));
	json_decref(err);
	/* Re-enrolling with the right tenant rotates the credential: the old one stops working. */
	char ca2[80];
	enroll(e, ta, "a-1", ca2);
	EXPECT_STATUS(401, http(e, "POST", "/v1/checkin", ca, NULL, "{\"device_id\":\"a-1\"}"));
	j = checkin(e, ca2, "a-1", NULL, 0);
	json_decref(j);
}

/* Enrol device id with the tenant token tok asking for ring (NULL: none); returns the ring the
 * server put it in, and its credential in cred. */
static void enroll_ring(struct env *e, const char *tok, const char *dev, const char *ring,
			char cred[80], char ret_ring[40])
{
	char rj[60] = "";
	json_t *j;

	if (ring)
		snprintf(rj, sizeof(rj), ",\"ring\":\"%s\"", ring);
	EXPECT_STATUS(201, http(e, "POST", "/v1/enroll", tok, &j,
				"{\"device_id\":\"%s\",\"agent_version\":\"0.1.0\"%s}", dev, rj));
	snprintf(cred, 80, "%s", jstr(j, "credential", NULL));
	snprintf(ret_ring, 40, "%s", jstr(j, "ring", NULL));
	json_decref(j);
}

/* P5: every agent host holds its tenant's enrollment token, so anyone there can enrol a known
 * device id again. That revokes the device's credential; the device is answered 401 (it was
 * 403 for good: locked out), so it enrols again, and a re-enrolment that names no ring keeps
 * the device in its ring (it moved lab-1 from canary to broad). */
static void test_reenrolment_does_not_lock_out(void **state)
{
	struct env *e = *state;
	char tok[80], cred[80], cred2[80], cred3[80], ring[40];
	json_t *j;

	tenant(e, "lab", NULL, tok);
	enroll_ring(e, tok, "lab-1", "canary", cred, ring);
	assert_string_equal(ring, "canary");
	json_decref(checkin(e, cred, "lab-1", NULL, 0));
	/* Someone else with the token: a new credential, the ring kept. */
	enroll_ring(e, tok, "lab-1", NULL, cred2, ring);
	assert_string_equal(ring, "canary");
	/* The device's own credential is not its current one any more: 401, on check-in and
	 * report alike, with the reason. */
	EXPECT_STATUS(401, http(e, "POST", "/v1/checkin", cred, &j, "{\"device_id\":\"lab-1\"}"));
	assert_string_equal(jstr(j, "error", "code"), "unauthorized");
	assert_non_null(strstr(jstr(j, "error", "message"), "enroll again"));
	json_decref(j);
	EXPECT_STATUS(401,
		      report(e, cred, "lab-1", "l-1", "installed",
			     "0000000000000000000000000000000000000000000000000000000000000000"));
	/* The agent enrols again, naming the ring the server gave it, and is back. */
	enroll_ring(e, tok, "lab-1", "canary", cred3, ring);
	assert_string_equal(ring, "canary");
	j = checkin(e, cred3, "lab-1", NULL, 0);
	json_decref(j);
	EXPECT_STATUS(401,
		      http(e, "POST", "/v1/checkin", cred2, NULL, "{\"device_id\":\"lab-1\"}"));
	/* Naming a ring follows the rules of a first enrolment (the requested ring if it exists),
	 * and the ring the device is in survives a restart. */
	enroll_ring(e, tok, "lab-1", "broad", cred3, ring);
	assert_string_equal(ring, "broad");
	stop_server(e, SIGTERM);
	start_server(e);
	enroll_ring(e, tok, "lab-1", NULL, cred3, ring);
	assert_string_equal(ring, "broad");
	enroll_ring(e, tok, "lab-1", "nowhere", cred3, ring);
	assert_string_equal(ring, "broad");
	/* A new device naming no ring still goes to the last (broadest) ring. */
	enroll_ring(e, tok, "lab-2", NULL, cred3, ring);
	assert_string_equal(ring, "broad");
}

static void test_bad_requests_rejected(void **state)
{
	struct env *e = *state;
	char tok[80], cred[80], *big, deep[512], *reply;
	json_t *j;
	uint64_t before, after;

	tenant(e, "gamma", NULL, tok);
	enroll(e, tok, "g-1", cred);
	/* Count reports now; no bad request may add one. */
	EXPECT_STATUS(201,
		      report(e, cred, "g-1", "g-ok", "installed",
			     "0000000000000000000000000000000000000000000000000000000000000000"));

	static const struct {
		const char *body;
		long status;
		const char *code;
	} cases[] = {
	    {"{", 400, "malformed_json"},
	    {"[1,2]", 400, "malformed_json"},
	    {"{\"device_id\":\"g-1\",\"device_id\":\"g-1\"}", 400, "malformed_json"},
	    {"{\"device_id\":5}", 400, "invalid_field"},
	    {"{\"device_id\":\"../etc\"}", 400, "invalid_field"},
	    {"{\"device_id\":\"g\\u00001\"}", 400, "malformed_json"},
	    {"{\"device_id\":\"g-1\",\"report_id\":\"r\",\"event\":\"exploded\"}", 400,
	     "invalid_field"},
	    {"{\"device_id\":\"g-1\",\"report_id\":\"r\",\"event\":\"crashed\",\"sha256\":\"zz\"}",
	     400, "invalid_field"},
	    {"{\"device_id\":\"g-1\",\"report_id\":\"r\",\"event\":\"crashed\",\"time\":-1}", 400,
	     "invalid_field"},
	    {"{\"report_id\":\"r\",\"event\":\"crashed\"}", 400, "invalid_field"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long st = http_raw(e, "POST", "/v1/report", cred, cases[i].body,
				   strlen(cases[i].body), &reply);
		j = json_loads(reply, 0, NULL);
		if (st != cases[i].status || strcmp(jstr(j, "error", "code"), cases[i].code))
			fail_msg("case %zu %s: got %ld %s, want %ld %s", i, cases[i].body, st,
				 reply, cases[i].status, cases[i].code);
		assert_true(strlen(jstr(j, "error", "message")) > 0);
		json_decref(j);
		free(reply);
	}
	/* A check-in with a wrong type deep inside. */
	EXPECT_STATUS(400, http(e, "POST", "/v1/checkin", cred, &j,
				"{\"device_id\":\"g-1\",\"health\":{\"crashes\":\"many\"}}"));
	assert_string_equal(jstr(j, "error", "field"), "crashes");
	json_decref(j);

	/* Oversized body: 413 (refused before it is read whole). */
	size_t n = 20000;
	big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "{\"device_id\":\"g-1\",\"detail\":\"", 29);
	big[n - 2] = '"';
	big[n - 1] = '}';
	big[n] = 0;
	EXPECT_STATUS(413, http_raw(e, "POST", "/v1/report", cred, big, n, &reply));
	j = json_loads(reply, 0, NULL);
	assert_string_equal(jstr(j, "error", "code"), "too_large");
	json_decref(j);
	free(reply);
	free(big);

	/* Deeply nested: refused before parsing. */
	size_t o = 0;
	o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{\"device_id\":\"g-1\",\"x\":");
	for (int i = 0; i < 100; i++)
		deep[o++] = '[';
	for (int i = 0; i < 100; i++)
		deep[o++] = ']';
	deep[o++] = '}';
	deep[o] = 0;
	EXPECT_STATUS(400, http_raw(e, "POST", "/v1/checkin", cred, deep, o, &reply));
	j = json_loads(reply, 0, NULL);
	assert_string_equal(jstr(j, "error", "code"), "too_deep");
	json_decref(j);
	free(reply);

	/* Wrong content type, unknown path, wrong method. */
	EXPECT_STATUS(404, http(e, "GET", "/v1/nothing", NULL, NULL, NULL));
	EXPECT_STATUS(405, http(e, "GET", "/v1/checkin", cred, NULL, NULL));
	EXPECT_STATUS(404, http(e, "GET", "/v1/admin/releases/99", e->admin, NULL, NULL));
	EXPECT_STATUS(400, http(e, "PUT", "/v1/admin/tenants/gamma", e->admin, NULL,
				"{\"window\":{\"start\":\"25:00\",\"end\":\"03:00\"}}"));
	EXPECT_STATUS(
	    400, http(e, "PUT", "/v1/admin/tenants/gamma", e->admin, NULL, "{\"pin\":\"n-7\"}"));
	EXPECT_STATUS(200,
		      http(e, "PUT", "/v1/admin/tenants/gamma", e->admin, &j,
			   "{\"pin\":\"n-1\",\"window\":{\"start\":\"22:00\",\"end\":\"02:00\"}}"));
	assert_string_equal(jstr(j, "pin", NULL), "n-1");
	assert_string_equal(jstr(j, "window", "start"), "22:00");
	json_decref(j);
	/* The tenant's ring policy moves its enrolled device (enrolled without one: last ring). */
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/rings", e->admin, &j, NULL));
	assert_string_equal(jstr(json_array_get(json_object_get(j, "rings"), 2), "name", NULL),
			    "broad");
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(j, "rings"), 2), "devices")),
			 1);
	json_decref(j);
	EXPECT_STATUS(200, http(e, "PUT", "/v1/admin/tenants/gamma", e->admin, NULL,
				"{\"ring\":\"canary\"}"));
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/rings", e->admin, &j, NULL));
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(j, "rings"), 0), "devices")),
			 1);
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(j, "rings"), 2), "devices")),
			 0);
	json_decref(j);
	EXPECT_STATUS(400, http(e, "PUT", "/v1/admin/tenants/gamma", e->admin, NULL,
				"{\"ring\":\"nowhere\"}"));

	/* Nothing above was recorded: the one good report is the only one (a retry of it is a
	 * duplicate, a new id is new). The store is read after the server stops. */
	stop_server(e, SIGTERM);
	struct rf_db *st;
	assert_int_equal(rf_db_open(e->db, 0, NULL, &st), 0);
	assert_int_equal(rf_db_reports_count(st, "g-1", &before), 0);
	rf_db_close(st);
	assert_int_equal(before, 1);
	start_server(e);
	EXPECT_STATUS(200,
		      report(e, cred, "g-1", "g-ok", "installed",
			     "0000000000000000000000000000000000000000000000000000000000000000"));
	stop_server(e, SIGTERM);
	assert_int_equal(rf_db_open(e->db, 0, NULL, &st), 0);
	assert_int_equal(rf_db_reports_count(st, "g-1", &after), 0);
	rf_db_close(st);
	assert_int_equal(after, 1);
	start_server(e);
}

/* Request bytes that are not UTF-8 get a 4xx with the bytes escaped in the message (they used to
 * make the error reply itself fail: "503 out of memory"). */
static void test_non_utf8_path_gets_4xx(void **state)
{
	struct env *e = *state;
	char *reply;
	json_t *j;

	static const struct {
		const char *method, *path;
		long status;
		bool quoted; /* the message quotes the bytes (else it names no request bytes) */
	} cases[] = {
	    {"DELETE", "/v1/admin/rings/%FFx", 404, true},
	    {"GET", "/v1/admin/tenants/%C3%28", 404, false},
	    {"%FF", "/v1/admin/rings", 405, true},
	    {"GET", "/v1/%FF", 404, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char req[512];
		const char *method = strcmp(cases[i].method, "%FF") ? cases[i].method : "\xff";
		snprintf(req, sizeof(req),
			 "%s %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
			 "Content-Length: 0\r\nConnection: close\r\n\r\n",
			 method, cases[i].path, e->admin);
		long st = raw_http(e, "127.0.0.1", req, &reply);
		j = json_loads(reply, 0, NULL);
		if (st != cases[i].status || !j ||
		    !strstr(jstr(j, "error", "message"), cases[i].quoted ? "\\x" : ""))
			fail_msg("%s %s: got %ld %s, want %ld with the bytes escaped", cases[i].method,
				 cases[i].path, st, reply, cases[i].status);
		json_decref(j);
		free(reply);
	}
	/* An action name that is not UTF-8, on a release that exists. */
	add_target(e, "packs/rules-u.rfp", "rules-u", "");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, NULL,
				"{\"target\":\"packs/rules-u.rfp\"}"));
	EXPECT_STATUS(404, http_raw(e, "POST", "/v1/admin/releases/1/%FE%FF", e->admin, "{}", 2,
				    &reply));
	j = json_loads(reply, 0, NULL);
	assert_non_null(j);
	assert_non_null(strstr(jstr(j, "error", "message"), "\\xfe\\xff"));
	json_decref(j);
	free(reply);
	/* Nothing was counted as a server error. */
	EXPECT_STATUS(200, http_raw(e, "GET", "/metrics", NULL, NULL, 0, &reply));
	assert_non_null(strstr(reply, "ringfence_http_errors_total{class=\"5xx\"} 0\n"));
	free(reply);
}

/* The transport refuses what a proxy in front could read differently, and paths with NUL. */
static void test_transport_refuses_ambiguous_requests(void **state)
{
	struct env *e = *state;
	char *reply, tok[80], cred[80], req[1024];
	json_t *j;

	tenant(e, "tango", NULL, tok);
	enroll(e, tok, "t-1", cred);
	static const struct {
		const char *req;
		long status;
	} cases[] = {
	    /* A NUL byte in the path: "root.json%00.txt" must not be served as root.json. */
	    {"GET /repo/metadata/timestamp.json%00.txt HTTP/1.1\r\nHost: t\r\n\r\n", 400},
	    {"GET /repo/metadata/1.root.json%00 HTTP/1.1\r\nHost: t\r\n\r\n", 400},
	    {"GET /repo/metadata/timestamp.json%0 HTTP/1.1\r\nHost: t\r\n\r\n", 400},
	    {"GET /metrics%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400},
	    /* Request smuggling: two Content-Length, both CL and TE, no or two Host. */
	    {"POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	     "Authorization: Bearer CRED\r\nContent-Length: 20\r\nContent-Length: 19\r\n\r\n"
	     "{\"device_id\":\"t-1\"}",
	     400},
	    {"POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	     "Authorization: Bearer CRED\r\nContent-Length: 19\r\ncontent-length: 19\r\n\r\n"
	     "{\"device_id\":\"t-1\"}",
	     400},
	    {"POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	     "Authorization: Bearer CRED\r\nContent-Length: 24\r\nTransfer-Encoding: "
	     "chunked\r\n\r\n"
	     "13\r\n{\"device_id\":\"t-1\"}\r\n0\r\n\r\n",
	     400},
	    {"GET /metrics HTTP/1.1\r\n\r\n", 400},
	    {"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
	    /* A transfer coding other than chunked cannot be framed: answered at once (it used
	     * to get no reply until the idle timeout), 501 when chunked ends the list, 400 when
	     * it does not (the length cannot be known). */
	    {"POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	     "Authorization: Bearer CRED\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	     "13\r\n{\"device_id\":\"t-1\"}\r\n0\r\n\r\n",
	     501},
	    {"POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	     "Authorization: Bearer CRED\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
	     "13\r\n{\"device_id\":\"t-1\"}\r\n0\r\n\r\n",
	     400},
	    {"POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	     "Authorization: Bearer CRED\r\nTransfer-Encoding: gzip\r\n\r\n{}",
	     400},
	    /* HEAD is GET without the body wherever GET is allowed (it used to be 404 on /repo/
	     * and 405 on /); where GET is not allowed, HEAD is not either. */
	    {"HEAD /repo/metadata/timestamp.json HTTP/1.1\r\nHost: t\r\n\r\n", 200},
	    {"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n", 200},
	    {"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 200},
	    {"HEAD /repo/metadata/none.json HTTP/1.1\r\nHost: t\r\n\r\n", 404},
	    {"HEAD /v1/checkin HTTP/1.1\r\nHost: t\r\n\r\n", 405},
	    /* The Authorization scheme is case-insensitive, one or more spaces after it (RFC 9110
	     * 11.1, 11.4); the credential itself is exact. */
	    {"POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	     "Authorization: bearer CRED\r\nContent-Length: 19\r\n\r\n{\"device_id\":\"t-1\"}",
	     200},
	    {"POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	     "Authorization: BEARER  CRED\r\nContent-Length: 19\r\n\r\n{\"device_id\":\"t-1\"}",
	     200},
	    {"POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	     "Authorization: BearerCRED\r\nContent-Length: 19\r\n\r\n{\"device_id\":\"t-1\"}",
	     401},
	    /* The same requests, well-formed, are served. */
	    {"GET /repo/metadata/timestamp.json HTTP/1.1\r\nHost: t\r\n\r\n", 200},
	    {"POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	     "Authorization: Bearer CRED\r\nContent-Length: 19\r\n\r\n{\"device_id\":\"t-1\"}",
	     200},
	    {"POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	     "Authorization: Bearer CRED\r\nTransfer-Encoding: chunked\r\n\r\n"
	     "13\r\n{\"device_id\":\"t-1\"}\r\n0\r\n\r\n",
	     200},
	    {"GET /metrics HTTP/1.0\r\n\r\n", 200},
	    {"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 200},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* Every request closes its connection: no second request can hide in it. */
		char *hdr_end, *at;
		snprintf(req, sizeof(req), "%s", cases[i].req);
		if ((at = strstr(req, "CRED"))) { /* the device credential */
			memmove(at + 68, at + 4, strlen(at + 4) + 1);
			memcpy(at, cred, 68);
		}
		hdr_end = strstr(req, "\r\n\r\n");
		memmove(hdr_end + 19, hdr_end, strlen(hdr_end) + 1);
		memcpy(hdr_end, "\r\nConnection: close", 19);
		long st = raw_http(e, "127.0.0.1", req, &reply);
		if (st != cases[i].status)
			fail_msg("case %zu: got %ld %s, want %ld:\n%s", i, st, reply,
				 cases[i].status, req);
		if (!strncmp(req, "HEAD ", 5) && *reply)
			fail_msg("case %zu: HEAD answered with a body:\n%s", i, reply);
		if (st == 400 || st == 501) {
			j = json_loads(reply, 0, NULL);
			assert_string_equal(jstr(j, "error", "code"),
					    st == 400 ? "malformed_request" : "not_implemented");
			json_decref(j);
		}
		free(reply);
	}
}

/* A request line with the longest path and RF_SRV_HEADERS_MAX of headers: "GET PATH" and headers
 * X-Pad-N: bbb... up to hdr_bytes, the connection closed after it. */
static char *big_request(size_t path_len, size_t hdr_bytes)
{
	size_t cap = path_len + hdr_bytes + 4096, n;
	char *r = malloc(cap);

	assert_non_null(r);
	n = (size_t)snprintf(r, cap, "GET /repo/");
	memset(r + n, 'a', path_len - 6);
	n += path_len - 6;
	n += (size_t)snprintf(r + n, cap - n, " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
	for (size_t k = 0, have = 0; have < hdr_bytes; k++) {
		size_t v = hdr_bytes - have > 900 ? 900 : hdr_bytes - have;
		int m = snprintf(r + n, cap - n, "X-Pad-%zu: ", k);
		memset(r + n + (size_t)m, 'b', v);
		memcpy(r + n + (size_t)m + v, "\r\n", 2);
		n += (size_t)m + v + 2;
		have += (size_t)m + v + 2;
	}
	memcpy(r + n, "\r\n", 3);
	return r;
}

/* libmicrohttpd's per-connection pool is RF_SRV_CONN_MEMORY (limits.h), smaller than its default
 * (it zeroes the pool after every request): a request with the longest path and
 * RF_SRV_HEADERS_MAX of headers is still read and answered, one with far more headers is refused
 * (431, or the connection closed) without harm to the next request. */
static void test_request_header_capacity(void **state)
{
	struct env *e = *state;
	char *req, *reply;
	long st;

	req = big_request(RF_SRV_PATH_MAX, RF_SRV_HEADERS_MAX);
	st = raw_http(e, "127.0.0.1", req, &reply);
	if (st != 404) /* read whole: the path names no file */
		fail_msg("path of %u bytes and %u bytes of headers: got %ld %s, want 404",
			 RF_SRV_PATH_MAX, RF_SRV_HEADERS_MAX, st, reply);
	free(reply);
	free(req);
	/* 20 KiB of headers: over the pool (the default pool of 32 KiB would serve it). */
	req = big_request(RF_SRV_PATH_MAX, 20 * 1024);
	st = raw_http(e, "127.0.0.1", req, &reply);
	if (st != 431 && st != 0)
		fail_msg("20 KiB of headers: got %ld %s, want 431 or the connection closed", st,
			 reply);
	free(reply);
	free(req);
	st = raw_http(e, "127.0.0.1",
		      "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &reply);
	assert_int_equal(st, 200);
	free(reply);
}

/* Content-Type is application/json, with or without parameters, in any case; nothing else. */
static void test_content_type_exact(void **state)
{
	struct env *e = *state;
	char tok[80], cred[80], body[200];

	tenant(e, "charlie", NULL, tok);
	enroll(e, tok, "c-1", cred);
	static const struct {
		const char *ctype;
		long status;
	} cases[] = {
	    {"application/jsonxyz", 415},
	    {"application/json-seq", 415},
	    {"application/json+x", 415},
	    {"application/jso", 415},
	    {"text/plain", 415},
	    {"application/json", 200},
	    {"Application/JSON", 200},
	    {"application/json; charset=utf-8", 200},
	    {"application/json;charset=UTF-8", 200},
	    {NULL, 200},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long st = http_ctype(e, "/v1/checkin", cred, cases[i].ctype,
				     "{\"device_id\":\"c-1\"}");
		if (st != cases[i].status)
			fail_msg("check-in, Content-Type %s: %ld, want %ld",
				 cases[i].ctype ? cases[i].ctype : "(none)", st, cases[i].status);
		snprintf(body, sizeof(body),
			 "{\"device_id\":\"c-1\",\"report_id\":\"ct-%zu\",\"event\":\"installed\"}", i);
		st = http_ctype(e, "/v1/report", cred, cases[i].ctype, body);
		if (st != (cases[i].status == 200 ? 201 : cases[i].status))
			fail_msg("report, Content-Type %s: %ld, want %ld",
				 cases[i].ctype ? cases[i].ctype : "(none)", st,
				 cases[i].status == 200 ? 201 : cases[i].status);
	}
}

/* A known member with the wrong type is 400 invalid_field naming the member (protocol.md). */
static void test_known_members_typed(void **state)
{
	struct env *e = *state;
	char tok[80], cred[80], *reply;
	json_t *j;

	tenant(e, "mike", NULL, tok);
	enroll(e, tok, "m-1", cred);
	static const char *const bad_attempts[] = {"\"5\"", "true", "[]", "{}", "1e999999",
						   "-1",    "1.5",  "1e2", "18446744073709551616"};
	for (size_t i = 0; i < sizeof(bad_attempts) / sizeof(bad_attempts[0]); i++) {
		j = NULL;
		long st = http(e, "POST", "/v1/checkin", cred, &j,
			       "{\"device_id\":\"m-1\",\"state\":{\"trial\":{\"target\":\"x\","
			       "\"attempts\":%s}}}",
			       bad_attempts[i]);
		if (st != 400 || strcmp(jstr(j, "error", "field"), "attempts"))
			fail_msg("attempts %s: %ld field '%s', want 400 'attempts'", bad_attempts[i],
				 st, jstr(j, "error", "field"));
		json_decref(j);
	}
	EXPECT_STATUS(200, http(e, "POST", "/v1/checkin", cred, NULL,
				"{\"device_id\":\"m-1\",\"state\":{\"trial\":{\"target\":\"x\","
				"\"attempts\":3}}}"));
	EXPECT_STATUS(200, http(e, "POST", "/v1/checkin", cred, NULL,
				"{\"device_id\":\"m-1\",\"state\":{\"trial\":{\"attempts\":null}}}"));

	/* Every other known member of the three device bodies, each with a wrong type. */
	static const struct {
		const char *path, *body, *field;
	} cases[] = {
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"ring\":7}", "ring"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"agent_version\":[]}", "agent_version"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"manifest_hash\":true}", "manifest_hash"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"state\":5}", "state"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"health\":\"ok\"}", "health"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"state\":{\"current\":[]}}", "current"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"state\":{\"last_good\":1}}", "last_good"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"state\":{\"trial\":\"t\"}}", "trial"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"state\":{\"current\":{\"target\":1}}}",
	     "target"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"state\":{\"trial\":{\"sha256\":{}}}}",
	     "sha256"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"state\":{\"quarantine\":\"x\"}}",
	     "quarantine"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"state\":{\"quarantine\":[1]}}",
	     "quarantine"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"state\":{\"safe_mode\":\"no\"}}",
	     "safe_mode"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"health\":{\"crashes\":\"5\"}}", "crashes"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"health\":{\"rollbacks\":true}}", "rollbacks"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"health\":{\"events\":1e999999}}", "events"},
	    {"/v1/checkin", "{\"device_id\":\"m-1\",\"health\":{\"alerts\":-3}}", "alerts"},
	    {"/v1/report",
	     "{\"device_id\":\"m-1\",\"report_id\":\"r\",\"event\":\"installed\",\"time\":\"5\"}",
	     "time"},
	    {"/v1/report",
	     "{\"device_id\":\"m-1\",\"report_id\":\"r\",\"event\":\"installed\",\"time\":true}",
	     "time"},
	    {"/v1/report",
	     "{\"device_id\":\"m-1\",\"report_id\":\"r\",\"event\":\"installed\",\"time\":1.5}",
	     "time"},
	    {"/v1/report",
	     "{\"device_id\":\"m-1\",\"report_id\":\"r\",\"event\":\"installed\",\"detail\":[]}",
	     "detail"},
	    {"/v1/report",
	     "{\"device_id\":\"m-1\",\"report_id\":\"r\",\"event\":\"installed\",\"target\":{}}",
	     "target"},
	    {"/v1/report", "{\"device_id\":\"m-1\",\"report_id\":5,\"event\":\"installed\"}",
	     "report_id"},
	    {"/v1/report", "{\"device_id\":\"m-1\",\"report_id\":\"r\",\"event\":false}", "event"},
	    {"/v1/enroll", "{\"device_id\":\"m-2\",\"agent_version\":1}", "agent_version"},
	    {"/v1/enroll", "{\"device_id\":\"m-2\",\"ring\":[]}", "ring"},
	    {"/v1/enroll", "{\"device_id\":\"m-2\",\"manifest_hash\":0}", "manifest_hash"},
	    {"/v1/enroll", "{\"device_id\":[\"m-2\"]}", "device_id"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *auth = strcmp(cases[i].path, "/v1/enroll") ? cred : tok;
		long st = http_raw(e, "POST", cases[i].path, auth, cases[i].body,
				   strlen(cases[i].body), &reply);
		j = json_loads(reply, 0, NULL);
		if (st != 400 || strcmp(jstr(j, "error", "code"), "invalid_field") ||
		    strcmp(jstr(j, "error", "field"), cases[i].field))
			fail_msg("%s %s: got %ld %s, want 400 invalid_field '%s'", cases[i].path,
				 cases[i].body, st, reply, cases[i].field);
		json_decref(j);
		free(reply);
	}
}

/* Slowloris: connections from one address that never finish their request fill only that
 * address's share; every other client is still served. Bounded: at most 80 connections, each
 * wait at most 10 s. */
static int open_slow(struct env *e, int *fds, int n)
{
	int opened = 0;

	for (int i = 0; i < n; i++) {
		fds[i] = raw_connect(e, "127.0.0.1");
		if (fds[i] >= 0 && write(fds[i], "GET /metrics HTTP/1.1\r\nHo", 25) == 25)
			opened++;
	}
	return opened;
}

/* How many of fds the server still holds open, once it has dealt with all of them (it closes
 * the ones over the limit at once): polled for at most 10 s until the count stops changing
 * at or under want. */
static int still_open(int *fds, int n, int want)
{
	int open = n;

	for (int round = 0; round < 100; round++) {
		open = 0;
		for (int i = 0; i < n; i++) {
			char c;
			if (fds[i] < 0)
				continue;
			ssize_t k = recv(fds[i], &c, 1, MSG_DONTWAIT);
			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
				close(fds[i]);
				fds[i] = -1;
				continue;
			}
			open++;
		}
		if (open <= want)
			break;
		sleep_ms(100);
	}
	return open;
}

static void test_slow_clients_do_not_lock_out_others(void **state)
{
	struct env *e = *state;
	int fds[80], n;
	char *reply;

	/* The default per-address limit (64) holds with the default total (4096). */
	n = open_slow(e, fds, 80);
	assert_true(n > 64);
	n = still_open(fds, 80, 64);
	if (n > 64)
		fail_msg("%d slow connections from one address held open, limit 64", n);
	for (int i = 0; i < 80; i++)
		if (fds[i] >= 0)
			close(fds[i]);

	/* A server whose every connection slot one address could take: 48 in all, 8 each. */
	stop_server(e, SIGTERM);
	e->extra[0] = "--max-connections";
	e->extra[1] = "48";
	e->extra[2] = "--per-ip-connections";
	e->extra[3] = "8";
	start_server(e);
	open_slow(e, fds, 48);
	n = still_open(fds, 48, 8);
	if (n > 8)
		fail_msg("%d slow connections from 127.0.0.1 held open, limit 8", n);
	/* Another client (127.0.0.2 is loopback too) is served while they hang on. */
	long st = raw_http(e, "127.0.0.2",
			   "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &reply);
	if (st != 200)
		fail_msg("a second client got %ld while 127.0.0.1 held its connections", st);
	assert_non_null(strstr(reply, "ringfence_checkins_total"));
	free(reply);
	/* And the slow ones are still there: the limit refused new ones, it cut none. */
	assert_int_equal(still_open(fds, 48, 8), n);
	for (int i = 0; i < 48; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* The database: created only by --init; a missing, empty or damaged one stops the start with
 * a message that says how to restore; --backup makes a copy that restores. */
static void pg_database_lost_or_refused(struct env *e);

static void test_database_lost_or_damaged_refused(void **state)
{
	struct env *e = *state;
	char tok[80], err[400], bak[400], cmd[1600];
	json_t *j;

	if (rf_testdb_pg()) {
		pg_database_lost_or_refused(e);
		return;
	}
	snprintf(err, sizeof(err), "%s/stderr", e->dir);
	snprintf(bak, sizeof(bak), "%s/backup.db", e->dir);
	const char *version[] = {"--version", NULL};
	assert_int_equal(run_ringfenced(err, version), 0);
	assert_true(file_has(err, "ringfenced "));
	tenant(e, "delta", NULL, tok);
	/* A backup while the server runs. */
	const char *backup[] = {"--db", e->db, "--backup", bak, NULL};
	assert_int_equal(run_ringfenced(err, backup), 0);
	stop_server(e, SIGTERM);

	const char *with_init[] = {"--db",	  e->db, "--init", "--listen", "127.0.0.1:0",
				   "--repo", e->repo, NULL};
	const char *plain[] = {"--db", e->db, "--listen", "127.0.0.1:0", "--repo", e->repo, NULL};
	/* --init on a database that exists: refused, nothing changed. */
	assert_int_equal(run_ringfenced(err, with_init), 2);
	assert_true(file_has(err, "exists already"));

	/* Truncated to 0 bytes: not a new server. */
	assert_int_equal(truncate(e->db, 0), 0);
	assert_int_equal(run_ringfenced(err, plain), 2);
	assert_true(file_has(err, "is empty"));
	assert_true(file_has(err, "--init"));
	assert_true(file_has(err, "Backup and restore"));
	/* Missing. */
	assert_int_equal(unlink(e->db), 0);
	assert_int_equal(run_ringfenced(err, plain), 2);
	assert_true(file_has(err, "does not exist"));
	/* Not a database at all. */
	assert_int_equal(rf_file_write_atomic(e->db, "this is not SQLite, it is 48 bytes of text.\n",
					      44, 0644),
			 0);
	assert_int_equal(run_ringfenced(err, plain), 1);
	assert_true(file_has(err, "damaged"));
	assert_true(file_has(err, "Backup and restore"));

	/* Damaged inside: the backup with one b-tree page's type byte broken. The page header is
	 * at the start of every page after the first (4096-byte pages). */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", bak, e->db);
	assert_int_equal(system(cmd), 0);
	{
		int fd = open(e->db, O_WRONLY);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, "\x42", 1, 4096), 1);
		close(fd);
	}
	assert_int_equal(run_ringfenced(err, plain), 1);
	assert_true(file_has(err, "damaged"));
	assert_true(file_has(err, "restore"));

	/* Restore the backup: the server starts with everything it had. */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && rm -f '%s-wal' '%s-shm'", bak, e->db, e->db,
		 e->db);
	assert_int_equal(system(cmd), 0);
	start_server(e);
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/tenants/delta", e->admin, &j, NULL));
	assert_string_equal(jstr(j, "name", NULL), "delta");
	json_decref(j);

	/* A backup of a database that is not there fails, and leaves nothing behind. */
	char nodb[400], nobak[400];
	snprintf(nodb, sizeof(nodb), "%s/none.db", e->dir);
	snprintf(nobak, sizeof(nobak), "%s/none-backup.db", e->dir);
	const char *backup_none[] = {"--db", nodb, "--backup", nobak, NULL};
	assert_int_equal(run_ringfenced(err, backup_none), 2);
	assert_int_equal(access(nobak, F_OK), -1);
	assert_int_equal(access(nodb, F_OK), -1);
}

/* --backup onto the live database (by its own name, another path to it, a symbolic or hard
 * link, its -wal or -shm file, or a name whose dest.tmp is the database) is refused with exit 2
 * and touches nothing: the database keeps its file, and the server restarts on it after more
 * writes. (It used to say "written", exit 0, and leave the database damaged.) */
static void test_backup_onto_database_refused(void **state)
{
	struct env *e = *state;
	char tok[80], err[400], dup[5][400], cmd[1000], base[400];
	struct stat before, after;
	json_t *j;

	if (rf_testdb_pg()) {
		print_message("SQLite only (PostgreSQL: --backup refused, see pg_dump)\n");
		return;
	}
	snprintf(err, sizeof(err), "%s/stderr", e->dir);
	tenant(e, "before", NULL, tok);
	assert_int_equal(stat(e->db, &before), 0);
	snprintf(dup[0], sizeof(dup[0]), "%s/../%s/ringfenced.db", e->dir,
		 strrchr(e->dir, '/') + 1);
	snprintf(dup[1], sizeof(dup[1]), "%s/symlink.db", e->dir);
	snprintf(dup[2], sizeof(dup[2]), "%s/hardlink.db", e->dir);
	snprintf(dup[3], sizeof(dup[3]), "%s-wal", e->db);
	snprintf(dup[4], sizeof(dup[4]), "%s-shm", e->db);
	assert_int_equal(symlink(e->db, dup[1]), 0);
	assert_int_equal(link(e->db, dup[2]), 0);
	const char *self[] = {"--db", e->db, "--backup", e->db, NULL};
	assert_int_equal(run_ringfenced(err, self), 2);
	assert_true(file_has(err, "is the database itself"));
	assert_false(file_has(err, "written"));
	for (int i = 0; i < 5; i++) {
		const char *other[] = {"--db", e->db, "--backup", dup[i], NULL};
		assert_int_equal(run_ringfenced(err, other), 2);
		assert_true(file_has(err, "is the database"));
	}
	assert_int_equal(stat(e->db, &after), 0);
	assert_true(before.st_ino == after.st_ino && before.st_dev == after.st_dev);
	snprintf(cmd, sizeof(cmd), "%s.tmp", e->db);
	assert_int_equal(access(cmd, F_OK), -1);

	/* More writes and a restart: the database is whole. */
	tenant(e, "after", NULL, tok);
	stop_server(e, SIGTERM);
	start_server(e);
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/tenants/before", e->admin, &j, NULL));
	json_decref(j);
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/tenants/after", e->admin, &j, NULL));
	json_decref(j);
	/* A backup to another file still works. */
	snprintf(cmd, sizeof(cmd), "%s/backup.db", e->dir);
	const char *good[] = {"--db", e->db, "--backup", cmd, NULL};
	assert_int_equal(run_ringfenced(err, good), 0);
	/* A directory as the destination: refused, named, and no copy left beside it (it used
	 * to say "cannot start: cannot rename ... Is a directory", exit 1, and leave DIR.tmp). */
	snprintf(base, sizeof(base), "%s/bkdir", e->dir);
	assert_int_equal(mkdir(base, 0755), 0);
	const char *todir[] = {"--db", e->db, "--backup", base, NULL};
	assert_int_equal(run_ringfenced(err, todir), 2);
	assert_true(file_has(err, "is a directory"));
	assert_false(file_has(err, "cannot start"));
	snprintf(cmd, sizeof(cmd), "%s/bkdir.tmp", e->dir);
	assert_int_equal(access(cmd, F_OK), -1);
	/* A database named "x.tmp" backed up to "x": the copy, made in x.tmp, would replace it. */
	snprintf(base, sizeof(base), "%s/copy", e->dir);
	snprintf(cmd, sizeof(cmd), "%s/copy.tmp", e->dir);
	const char *totmp[] = {"--db", e->db, "--backup", cmd, NULL};
	assert_int_equal(run_ringfenced(err, totmp), 0);
	assert_int_equal(stat(cmd, &before), 0);
	const char *viatmp[] = {"--db", cmd, "--backup", base, NULL};
	assert_int_equal(run_ringfenced(err, viatmp), 2);
	assert_true(file_has(err, "is the database itself"));
	assert_int_equal(access(base, F_OK), -1);
	assert_int_equal(stat(cmd, &after), 0);
	assert_true(before.st_ino == after.st_ino);
	/* A file there that is no database (the admin token beside the database): refused and
	 * left as it was; it used to become a world-readable copy the server then refused. */
	snprintf(cmd, sizeof(cmd), "%s.admin-token", e->db);
	if (access(cmd, F_OK) != 0) {
		FILE *f = fopen(cmd, "w");
		assert_non_null(f);
		fputs("not a database\n", f);
		fclose(f);
	}
	assert_int_equal(stat(cmd, &before), 0);
	const char *totok[] = {"--db", e->db, "--backup", cmd, NULL};
	assert_int_equal(run_ringfenced(err, totok), 2);
	assert_true(file_has(err, "is not a SQLite database"));
	assert_int_equal(stat(cmd, &after), 0);
	assert_true(before.st_ino == after.st_ino && before.st_size == after.st_size);
	/* An earlier backup is a database: replacing it still works. */
	snprintf(cmd, sizeof(cmd), "%s/backup.db", e->dir);
	assert_int_equal(run_ringfenced(err, good), 0);
}

/* Add and publish target name with the given schedule array (rings at 100 % from the start). */
static void add_target_rings(struct env *e, const char *name, const char *const *rings)
{
	char custom[2048];
	int64_t now = rf_now_wall();
	size_t n = (size_t)snprintf(custom, sizeof(custom),
				    "{\"ringfence\":{\"release\":\"%s\",\"schedule\":[", name);

	for (int i = 0; rings[i]; i++)
		n += (size_t)snprintf(custom + n, sizeof(custom) - n,
				      "%s{\"ring\":\"%s\",\"not_before\":0,"
				      "\"ramp\":[{\"after\":0,\"percent\":100}]}",
				      i ? "," : "", rings[i]);
	snprintf(custom + n, sizeof(custom) - n, "]}}");
	add_pack(e, name, custom, now);
}

/* A signed schedule must list rings this server has, in ring order: rings out of order (broad
 * before canary: broad used to open first), a schedule naming only rings that do not exist
 * (it used to be created active and reach no device) and one with a misspelt ring among real
 * ones are refused at release create with the reason, and nothing is created. A ring added
 * under its name makes the same signed schedule acceptable. */
static void test_schedule_rings_checked(void **state)
{
	struct env *e = *state;
	json_t *j;
	static const struct {
		const char *target, *rings[4], *why;
	} bad[] = {
	    {"packs/order.rfp", {"broad", "canary"}, "listed in ring order"},
	    {"packs/order3.rfp",
	     {"canary", "broad", "early"},
	     "'early' (position 1) is listed "
	     "after 'broad' (position 2)"},
	    {"packs/none.rfp", {"nowhere", "elsewhere"}, "ring 'nowhere', which this server"},
	    {"packs/typo.rfp", {"canry", "broad"}, "rings: canary, early, broad"},
	    {"packs/pilot.rfp", {"canary", "pilot", "broad"}, "ring 'pilot'"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char body[128];
		add_target_rings(e, bad[i].target, bad[i].rings);
		snprintf(body, sizeof(body), "{\"target\":\"%s\"}", bad[i].target);
		EXPECT_STATUS(400, http(e, "POST", "/v1/admin/releases", e->admin, &j, body));
		const char *msg = jstr(j, "error", "message");
		if (!strstr(msg, bad[i].why))
			fail_msg("%s: '%s' does not say '%s'", bad[i].target, msg, bad[i].why);
		json_decref(j);
	}
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases", e->admin, &j, NULL));
	assert_int_equal(json_array_size(json_object_get(j, "releases")), 0);
	json_decref(j);
	/* The ring added between canary and broad: the signed schedule fits now. */
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/rings", e->admin, NULL,
				"{\"name\":\"pilot\",\"position\":1}"));
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, NULL,
				"{\"target\":\"packs/pilot.rfp\"}"));
	/* Rings of one position may come in either order; skipping a ring is allowed. */
	const char *skip[] = {"early", "pilot", "broad", NULL};
	add_target_rings(e, "packs/skip.rfp", skip);
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, NULL,
				"{\"target\":\"packs/skip.rfp\"}"));
}

/* The schedule every ring open now at 100 %, for target name. */
static void sched_all(const char *name, char *out, size_t n)
{
	snprintf(out, n,
		 "{\"ringfence\":{\"release\":\"%s\",\"schedule\":["
		 "{\"ring\":\"canary\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]}]}}",
		 name);
}

/* Sign target name with bytes that are not a pack (as `repo add --raw` would) and a schedule
 * every ring's devices take at once, and publish. */
static void add_garbage(struct env *e, const char *name)
{
	static const char garbage[] = "twenty-two bytes, no!\n";
	char custom[512];
	struct rf_diag d = {0};
	int64_t now = rf_now_wall();

	sched_all(name, custom, sizeof(custom));
	if (rf_tuf_repo_add(e->repo, name, (const uint8_t *)garbage, strlen(garbage), custom, now,
			    &d) < 0 ||
	    rf_tuf_repo_publish(e->repo, now, &d) < 0)
		fail_msg("repository: %s", d.first);
}

/* POST /v1/admin/releases for target with the extra members more (or ""); 400 or 409 wanted,
 * with why in the message. */
static void create_refused(struct env *e, const char *target, const char *more, int want,
			   const char *why)
{
	char *body = malloc(256 + strlen(more));
	json_t *j;

	assert_non_null(body);
	sprintf(body, "{\"target\":\"%s\"%s}", target, more);
	EXPECT_STATUS(want, http(e, "POST", "/v1/admin/releases", e->admin, &j, body));
	const char *msg = jstr(j, "error", "message");
	if (!strstr(msg, why))
		fail_msg("%s: '%s' does not say '%s'", target, msg, why);
	json_decref(j);
	free(body);
}

/* ,"manifests":[the JSON of manifests/NAME.json] (malloc'd). */
static char *manifests_member(const char *name)
{
	char path[512];
	const char *src = getenv("RF_SOURCE_ROOT");
	uint8_t *p;
	size_t n;

	snprintf(path, sizeof(path), "%s/manifests/%s.json", src ? src : ".", name);
	assert_int_equal(rf_file_read(path, 1 << 20, &p, &n), 0);
	char *out = malloc(n + 32);
	assert_non_null(out);
	snprintf(out, n + 32, ",\"manifests\":[%.*s]", (int)n, (const char *)p);
	free(p);
	return out;
}

/* Release create reads the target's bytes from the repository and refuses, with the reason and
 * storing nothing, bytes that are not a pack any agent accepts (here: signed with `repo add
 * --raw`'s equivalent), a pack the manifests the request names refuse, and a repository file
 * that is not the signed bytes; the example pack is accepted, with which manifests accept it in
 * the reply. Before, the server never read a target's bytes: every agent refused such a
 * release, one by one. */
static void test_release_pack_checked(void **state)
{
	struct env *e = *state;
	char custom[512], path[1024], hex[65];
	int64_t now = rf_now_wall();
	uint8_t h[32];
	json_t *j;

	add_garbage(e, "packs/garbage.rfp");
	create_refused(e, "packs/garbage.rfp", "", 400, "is not a pack any agent accepts");
	create_refused(e, "packs/garbage.rfp", "", 400, "ringfence-agent-1.1.0");
	/* A real pack (Windows rules) that the Linux proc manifest, named by the request, refuses. */
	sched_all("windows", custom, sizeof(custom));
	add_pack(e, "packs/windows.rfp", custom, now);
	char *linux_m = manifests_member("ringfence-agent-linux-1.2.0");
	create_refused(e, "packs/windows.rfp", linux_m, 400,
		       "not a pack the manifests given accept (refused by "
		       "ringfence-agent-linux-1.2.0; nothing stored): ");
	free(linux_m);
	create_refused(e, "packs/windows.rfp", ",\"manifests\":[{\"agent\":1}]", 400,
		       "manifests[0] is not an agent manifest");
	create_refused(e, "packs/windows.rfp", ",\"manifests\":[]", 400, "'manifests' must be");
	/* The repository's file is not what was signed (same length, other bytes). */
	sched_all("tampered", custom, sizeof(custom));
	add_pack(e, "packs/tampered.rfp", custom, now);
	uint8_t *pack;
	size_t n;
	assert_int_equal(rf_testpack(rf_testpack_seq("packs/tampered.rfp"), &pack, &n), 0);
	rf_sha256(pack, n, h);
	rf_hex_encode(h, 32, hex);
	snprintf(path, sizeof(path), "%s/repository/targets/packs/%s.tampered.rfp", e->repo, hex);
	pack[n - 1] ^= 1;
	assert_int_equal(rf_file_write_atomic(path, pack, n, 0644), 0);
	free(pack);
	create_refused(e, "packs/tampered.rfp", "", 409, "does not hash to the signed sha256");
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases", e->admin, &j, NULL));
	assert_int_equal(json_array_size(json_object_get(j, "releases")), 0);
	json_decref(j);

	/* The real pack is accepted; the reply says which agent manifests accept it. */
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/windows.rfp\"}"));
	json_t *pk = json_object_get(j, "pack"), *m;
	size_t i;
	bool general = false;
	assert_string_equal(jstr(pk, "manifests_from", NULL), "agent");
	json_array_foreach(json_object_get(pk, "manifests"), i, m)
	{
		if (!strcmp(jstr(m, "manifest", NULL), "ringfence-agent-1.1.0"))
			general = json_is_true(json_object_get(m, "accepted"));
		if (!strcmp(jstr(m, "manifest", NULL), "ringfence-agent-linux-1.2.0"))
			assert_true(json_is_false(json_object_get(m, "accepted")));
	}
	assert_true(general);
	json_decref(j);
	/* Named manifests that accept it. */
	sched_all("general", custom, sizeof(custom));
	add_pack(e, "packs/general.rfp", custom, now);
	char *gen_m = manifests_member("ringfence-agent-1.1.0");
	char body[64 * 1024];
	snprintf(body, sizeof(body), "{\"target\":\"packs/general.rfp\"%s}", gen_m);
	free(gen_m);
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j, body));
	assert_string_equal(jstr(json_object_get(j, "pack"), "manifests_from", NULL), "request");
	json_decref(j);
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases", e->admin, &j, NULL));
	assert_int_equal(json_array_size(json_object_get(j, "releases")), 2);
	json_decref(j);
}

/* A first start that fails leaves nothing behind, says why, and the same --init works once the
 * cause is fixed: the port in use (named with its address and reason; it used to say "Failed
 * to bind to port 0" after creating the database, so the retry was refused as "exists
 * already"), a --repo that is no repository (it used to end with backup advice), and a start
 * on a missing database (it used to leave a stray DB.admin-token each time). */
static void test_failed_first_start_leaves_nothing(void **state)
{
	struct env *e = *state;
	char err[400], db[280], tokf[300], nope[400], addr[64];
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);

	if (rf_testdb_pg()) {
		print_message("SQLite only (the files a start creates)\n");
		return;
	}
	snprintf(err, sizeof(err), "%s/stderr", e->dir);
	snprintf(db, sizeof(db), "%s/first.db", e->dir);
	snprintf(tokf, sizeof(tokf), "%s.admin-token", db);
	snprintf(nope, sizeof(nope), "%s/not-a-repo", e->dir);
	/* Another program holds the port. */
	int blocker = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(blocker >= 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(bind(blocker, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(blocker, 1), 0);
	assert_int_equal(getsockname(blocker, (struct sockaddr *)&a, &alen), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));

	const char *busy[] = {"--db", db, "--init", "--listen", addr, "--repo", e->repo, NULL};
	assert_int_equal(run_ringfenced(err, busy), 1);
	if (!file_has(err, addr) || !file_has(err, "Address already in use"))
		fail_msg("the refusal does not name %s and the reason", addr);
	assert_false(file_has(err, "port 0"));
	assert_int_equal(access(db, F_OK), -1);
	assert_int_equal(access(tokf, F_OK), -1);
	close(blocker);

	assert_int_equal(mkdir(nope, 0755), 0);
	const char *badrepo[] = {"--db",	db,	  "--init", "--listen",
				 "127.0.0.1:0", "--repo", nope,	    NULL};
	assert_int_equal(run_ringfenced(err, badrepo), 2);
	assert_true(file_has(err, "not a TUF repository"));
	assert_true(file_has(err, "ringfence repo init"));
	assert_false(file_has(err, "backup"));
	assert_int_equal(access(db, F_OK), -1);
	assert_int_equal(access(tokf, F_OK), -1);

	const char *missing[] = {"--db", db, "--listen", "127.0.0.1:0", NULL};
	assert_int_equal(run_ringfenced(err, missing), 2);
	assert_true(file_has(err, "does not exist"));
	assert_int_equal(access(db, F_OK), -1);
	assert_int_equal(access(tokf, F_OK), -1);

	/* The cause fixed, the same --init starts a new server; its token file is made then. */
	stop_server(e, SIGTERM);
	snprintf(e->db, sizeof(e->db), "%s", db);
	snprintf(e->token_file, sizeof(e->token_file), "%s", tokf);
	e->created = false;
	e->admin[0] = 0;
	start_server(e);
	assert_int_equal(access(tokf, F_OK), 0);
	json_t *j;
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases", e->admin, &j, NULL));
	json_decref(j);
}

/* The same rules on PostgreSQL: --backup names pg_dump; --init on a database with a schema is
 * refused; a database without the schema is not a new server (exit 2, says --init); no server
 * at the URI or a newer schema: exit 1 with the reason, never the password. */
static void pg_database_lost_or_refused(struct env *e)
{
	char tok[80], err[400], empty[300];
	json_t *j;

	snprintf(err, sizeof(err), "%s/stderr", e->dir);
	tenant(e, "delta", NULL, tok);
	const char *backup[] = {"--db", e->db, "--backup", "/tmp/x", NULL};
	assert_int_equal(run_ringfenced(err, backup), 2);
	assert_true(file_has(err, "pg_dump"));
	/* The admin token is shared through the database: --init needs the file (its hash is
	 * stored); another instance may go without one (it reads the hash), but a file with
	 * another token is refused. */
	const char *no_token[] = {"--db", e->db, "--init", "--listen", "127.0.0.1:0", NULL};
	assert_int_equal(run_ringfenced(err, no_token), 2);
	assert_true(file_has(err, "--admin-token-file"));
	char wrong[300];
	snprintf(wrong, sizeof(wrong), "%s/wrong-token", e->dir);
	FILE *wf = fopen(wrong, "w");
	assert_non_null(wf);
	fprintf(wf, "rfa_%064d\n", 0);
	fclose(wf);
	const char *wrong_token[] = {"--db", e->db, "--listen", "127.0.0.1:0", "--admin-token-file",
				     wrong,  NULL};
	assert_int_equal(run_ringfenced(err, wrong_token), 2);
	assert_true(file_has(err, "does not hold the token of this database"));
	stop_server(e, SIGTERM);

	const char *with_init[] = {"--db",     e->db,	      "--init",		  "--listen",
				   "127.0.0.1:0", "--repo", e->repo, "--admin-token-file",
				   e->token_file, NULL};
	assert_int_equal(run_ringfenced(err, with_init), 2);
	assert_true(file_has(err, "already"));
	assert_int_equal(rf_testdb_new(e->dir, "x", empty, sizeof(empty)), 0);
	const char *plain[] = {"--db",	       empty, "--listen", "127.0.0.1:0", "--repo", e->repo,
			       "--admin-token-file", e->token_file, NULL};
	assert_int_equal(run_ringfenced(err, plain), 2);
	assert_true(file_has(err, "no ringfence schema"));
	assert_true(file_has(err, "--init"));
	const char *nowhere[] = {"--db",
				 "postgresql://u:hunter2@/x?host=/nonexistent-rf-dir",
				 "--listen",
				 "127.0.0.1:0",
				 "--admin-token-file",
				 e->token_file,
				 NULL};
	assert_int_equal(run_ringfenced(err, nowhere), 1);
	assert_true(file_has(err, "cannot connect"));
	assert_false(file_has(err, "hunter2"));
	assert_int_equal(rf_testdb_sql(e->db, "UPDATE rf_schema SET version = version + 1"), 0);
	const char *newer[] = {"--db",	       e->db, "--listen", "127.0.0.1:0", "--repo", e->repo,
			       "--admin-token-file", e->token_file, NULL};
	assert_int_equal(run_ringfenced(err, newer), 1);
	assert_true(file_has(err, "newer"));
	assert_int_equal(rf_testdb_sql(e->db, "UPDATE rf_schema SET version = version - 1"), 0);
	start_server(e); /* everything it had */
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/tenants/delta", e->admin, &j, NULL));
	assert_string_equal(jstr(j, "name", NULL), "delta");
	json_decref(j);
}

/* PostgreSQL stopped under a running server, then started again: check-ins that need no write
 * are answered from memory; writes (a report, an operator change) get 503 with Retry-After and
 * change nothing; the server reconnects by itself (no restart) and the retried report is
 * stored once; nothing acknowledged before or after is lost (checked in the database after a
 * kill -9). */
static void test_postgresql_down_and_back(void **state)
{
	struct env *e = *state;
	char tok[80], cred[80], sha[65];
	json_t *j;
	long st = 0;

	if (!rf_testdb_pg())
		skip();
	tenant(e, "pgd", "canary", tok);
	enroll(e, tok, "p-1", cred);
	add_target(e, "packs/rules-p.rfp", "rules-p", "");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-p.rfp\"}"));
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	json_decref(checkin(e, cred, "p-1", sha, 0));
	EXPECT_STATUS(201, report(e, cred, "p-1", "p-r1", "intent", sha));

	assert_int_equal(rf_testdb_server(false), 0);
	for (int i = 0; i < 5; i++) {
		j = checkin(e, cred, "p-1", sha, 0); /* 200 or the test fails */
		assert_string_equal(jstr(j, "action", NULL), "stay");
		json_decref(j);
	}
	EXPECT_STATUS(503, report(e, cred, "p-1", "p-r2", "trial_started", sha));
	assert_string_equal(last_retry_after, "5");
	EXPECT_STATUS(503, http(e, "POST", "/v1/admin/tenants", e->admin, NULL,
				"{\"name\":\"during\",\"ring\":null}"));
	assert_string_equal(last_retry_after, "5");
	/* Nothing of the refused writes is in memory either. */
	EXPECT_STATUS(404, http(e, "GET", "/v1/admin/tenants/during", e->admin, NULL, NULL));
	/* Why they were refused is in the log: a warning naming the database's error. */
	{
		char path[320];
		uint8_t *p;
		size_t len;
		snprintf(path, sizeof(path), "%s/server.log", e->dir);
		assert_int_equal(rf_file_read(path, 1 << 20, &p, &len), 0);
		const char *at = strstr((char *)p, "storage: postgresql: ");
		if (!at)
			fail_msg("no storage error in the log:\n%s", (char *)p);
		while (at > (char *)p && at[-1] != '\n')
			at--;
		assert_memory_equal(at, "<4>", 3);
		free(p);
	}

	assert_int_equal(rf_testdb_server(true), 0);
	for (int i = 0; i < 200 && st != 201; i++) { /* bounded: 20 s (backoff is at most 5 s) */
		st = report(e, cred, "p-1", "p-r2", "trial_started", sha);
		if (st != 201) {
			EXPECT_STATUS(503, st);
			sleep_ms(100);
		}
	}
	EXPECT_STATUS(201, st);
	EXPECT_STATUS(200, report(e, cred, "p-1", "p-r2", "trial_started", sha)); /* duplicate */
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/tenants", e->admin, NULL,
				"{\"name\":\"after\",\"ring\":null}"));

	stop_server(e, SIGKILL);
	struct rf_db *db;
	uint64_t n = 0;
	assert_int_equal(rf_db_open(e->db, 0, NULL, &db), 0);
	assert_int_equal(rf_db_reports_count(db, "p-1", &n), 0);
	rf_db_close(db);
	assert_int_equal(n, 2);
	start_server(e);
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/tenants/after", e->admin, NULL, NULL));
	EXPECT_STATUS(404, http(e, "GET", "/v1/admin/tenants/during", e->admin, NULL, NULL));
	EXPECT_STATUS(200, report(e, cred, "p-1", "p-r1", "intent", sha)); /* known */
}

static void test_repo_metrics_dashboard(void **state)
{
	struct env *e = *state;
	char *body;

	EXPECT_STATUS(200,
		      http_raw(e, "GET", "/repo/metadata/timestamp.json", NULL, NULL, 0, &body));
	assert_non_null(strstr(body, "\"signed\""));
	free(body);
	EXPECT_STATUS(200, http_raw(e, "GET", "/repo/metadata/1.root.json", NULL, NULL, 0, &body));
	free(body);
	/* Traversal and anything outside repository/ (the keys!) is 404. */
	static const char *const bad[] = {
	    "/repo/../keys",
	    "/repo/metadata/../../config.json",
	    "/repo/%2e%2e/config.json",
	    "/repo/.hidden",
	    "/repo/metadata//timestamp.json",
	    "/repo/",
	    "/repo/metadata",
	    "/repo/..%2fconfig.json",
	    "/repo/metadata/%2e%2e/%2e%2e/config.json",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long st = http_raw(e, "GET", bad[i], NULL, NULL, 0, &body);
		if (st != 404)
			fail_msg("%s: status %ld, want 404 (%s)", bad[i], st, body);
		assert_null(strstr(body, "PRIVATE"));
		free(body);
	}
	EXPECT_STATUS(200, http_raw(e, "GET", "/metrics", NULL, NULL, 0, &body));
	assert_non_null(strstr(body, "ringfence_checkins_total"));
	assert_non_null(strstr(body, "# TYPE ringfence_devices gauge"));
	/* Every family has its help text (promtool refused ringfence_flushed_rows_total). */
	for (const char *t = strstr(body, "# TYPE "); t; t = strstr(t + 1, "# TYPE ")) {
		char help[128];
		size_t n = strcspn(t + 7, " ");
		snprintf(help, sizeof(help), "# HELP %.*s ", (int)n, t + 7);
		if (!strstr(body, help))
			fail_msg("no '%s' in /metrics", help);
	}
	assert_non_null(strstr(body, "ringfence_build_info{version=\""));
	assert_non_null(strstr(body, "# TYPE ringfence_checkin_duration_seconds histogram"));
	free(body);
	EXPECT_STATUS(200, http_raw(e, "GET", "/", NULL, NULL, 0, &body));
	assert_non_null(strstr(body, "<!DOCTYPE html>"));
	/* No external assets: the one script is inline, nothing is fetched from elsewhere. */
	assert_null(strstr(body, "<script src"));
	assert_null(strstr(body, "<link"));
	assert_null(strstr(body, "http://"));
	assert_null(strstr(body, "https://"));
	/* Readable without JavaScript: it reloads itself, and times are UTC ISO 8601. */
	assert_non_null(strstr(body, "<noscript><meta http-equiv=\"refresh\""));
	assert_non_null(strstr(body, "Server time <time datetime=\"20"));
	free(body);
}

/* A release whose canary devices crash: the gate halts it by itself, and devices on it are
 * told to go back at their next check-in. */
static void test_gate_halts_release(void **state)
{
	struct env *e = *state;
	char tok[80], cred[6][80], dev[16], rid[32], sha[65];
	json_t *j;

	tenant(e, "delta", "canary", tok);
	for (int i = 0; i < 6; i++) {
		snprintf(dev, sizeof(dev), "d-%d", i);
		enroll(e, tok, dev, cred[i]);
	}
	add_target(e, "packs/rules-bad.rfp", "rules-bad",
		   "\"min_healthy\":5"); /* default floor: 3 failed and 5 %% of devices */
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-bad.rfp\"}"));
	int id = (int)json_integer_value(json_object_get(j, "id"));
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	for (int i = 0; i < 6; i++) {
		snprintf(dev, sizeof(dev), "d-%d", i);
		j = checkin(e, cred[i], dev, NULL, 0);
		assert_string_equal(jstr(j, "action", NULL), "install");
		json_decref(j);
		snprintf(rid, sizeof(rid), "%s-intent", dev);
		EXPECT_STATUS(201, report(e, cred[i], dev, rid, "intent", sha));
	}
	/* Three of six crash on it and quarantine it. */
	for (int i = 0; i < 3; i++) {
		snprintf(dev, sizeof(dev), "d-%d", i);
		for (int k = 0; k < 3; k++) {
			snprintf(rid, sizeof(rid), "%s-crash-%d", dev, k);
			EXPECT_STATUS(201, report(e, cred[i], dev, rid, "crashed", sha));
		}
		snprintf(rid, sizeof(rid), "%s-q", dev);
		EXPECT_STATUS(201, report(e, cred[i], dev, rid, "quarantined", sha));
	}
	wait_status(e, id, "halted");
	char path[64];
	snprintf(path, sizeof(path), "/v1/admin/releases/%d", id);
	EXPECT_STATUS(200, http(e, "GET", path, e->admin, &j, NULL));
	assert_int_equal(strncmp(jstr(j, "halt_reason", NULL), "", 1) != 0, 1);
	json_decref(j);
	/* A healthy device still on it waits for a fix (nothing older admits it). */
	expect_waiting(checkin(e, cred[5], "d-5", sha, 0));
	/* The gate's evidence stays when an operator then rolls it back, and the ring row that
	 * failed agrees with the reason. */
	char act[80];
	snprintf(act, sizeof(act), "/v1/admin/releases/%d/rollback", id);
	EXPECT_STATUS(200, http(e, "POST", act, e->admin, &j, "{\"reason\":\"bad\",\"force\":true}"));
	assert_string_equal(jstr(j, "status", NULL), "rolled-back");
	assert_string_equal(jstr(j, "halt_metric", NULL), "floor");
	assert_non_null(strstr(jstr(j, "halt_reason", NULL), "gate failed in ring 'canary'"));
	assert_non_null(strstr(jstr(j, "halt_reason", NULL), "then rolled back: operator: bad"));
	json_t *ring = json_array_get(json_object_get(j, "rings"), 0);
	assert_string_equal(jstr(json_object_get(ring, "gate"), "verdict", NULL), "fail");
	json_decref(j);
	/* The audit trail keeps the gate's decision with its evidence, then the operator's
	 * rollback, each with who did it; after a restart too (stored, not in memory). */
	stop_server(e, SIGKILL);
	start_server(e);
	snprintf(path, sizeof(path), "/v1/admin/audit?release=%d", id);
	EXPECT_STATUS(200, http(e, "GET", path, e->admin, &j, NULL));
	json_t *ent = json_object_get(j, "entries");
	assert_int_equal(json_array_size(ent), 4);
	assert_string_equal(jstr(json_array_get(ent, 0), "action", NULL), "release.rollback");
	assert_string_equal(jstr(json_array_get(ent, 1), "action", NULL), "gate.halt");
	assert_string_equal(jstr(json_array_get(ent, 1), "actor", NULL), "gate");
	const char *ev = jstr(json_array_get(ent, 1), "detail", NULL);
	if (!strstr(ev, "ring canary, floor gate") || !strstr(ev, "failed 3 of 6"))
		fail_msg("gate.halt evidence: '%s'", ev);
	assert_string_equal(jstr(json_array_get(ent, 2), "action", NULL), "gate.open");
	assert_string_equal(jstr(json_array_get(ent, 3), "action", NULL), "release.create");
	json_decref(j);
	/* The dashboard tells it was a gate, and keeps the evidence in the release's timeline. */
	char *page;
	EXPECT_STATUS(200, http_raw(e, "GET", "/", NULL, NULL, 0, &page));
	assert_non_null(strstr(page, "Halted by the <b>floor</b> gate in ring canary"));
	assert_non_null(strstr(page, "<b>gate.halt</b> by gate: ring canary, floor gate"));
	assert_null(strstr(page, "Halted by an operator"));
	free(page);
}

/* The first 8 hex digits of SHA-256(admin token): how the audit trail names the operator. */
static void admin_id(const struct env *e, char out[32])
{
	char hex[65];

	rf_sha256_hex(e->admin, strlen(e->admin), hex);
	snprintf(out, 32, "admin:%.8s", hex);
}

/* Every operator action is in the audit trail (who, what, why, when), newest first, durable,
 * paged and filtered by release, and logged as one line with its journald priority. */
static void test_audit_trail(void **state)
{
	struct env *e = *state;
	char tok[80], who[32], path[320], *log;
	json_t *j, *ent;
	size_t n;

	admin_id(e, who);
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/rings", e->admin, NULL,
				"{\"name\":\"labs\",\"position\":7}"));
	EXPECT_STATUS(200, http(e, "DELETE", "/v1/admin/rings/labs", e->admin, NULL, NULL));
	tenant(e, "acme", "canary", tok);
	EXPECT_STATUS(
	    200, http(e, "PUT", "/v1/admin/tenants/acme", e->admin, NULL, "{\"pin\":\"n-1\"}"));
	EXPECT_STATUS(200, http(e, "POST", "/v1/admin/tenants/acme/token", e->admin, &j, "{}"));
	char tok2[80];
	snprintf(tok2, sizeof(tok2), "%s", jstr(j, "enrollment_token", NULL));
	assert_int_equal(strlen(tok2), 68);
	json_decref(j);
	add_target(e, "packs/a.rfp", "rel-a", "");
	add_target(e, "packs/b.rfp", "rel-b", "");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, NULL,
				"{\"target\":\"packs/a.rfp\"}"));
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, NULL,
				"{\"target\":\"packs/b.rfp\"}"));
	EXPECT_STATUS(200, http(e, "POST", "/v1/admin/releases/2/hold", e->admin, NULL,
				"{\"reason\":\"wait for\\nmonday\"}"));
	EXPECT_STATUS(200, http(e, "POST", "/v1/admin/releases/2/resume", e->admin, NULL, NULL));
	EXPECT_STATUS(200, http(e, "POST", "/v1/admin/releases/2/halt", e->admin, NULL,
				"{\"reason\":\"bad rule 7\"}"));
	/* A refused action leaves no entry. */
	EXPECT_STATUS(409, http(e, "POST", "/v1/admin/releases/2/halt", e->admin, NULL, NULL));

	/* Durable: a kill -9 loses nothing that was acknowledged. */
	stop_server(e, SIGKILL);
	start_server(e);
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/audit", e->admin, &j, NULL));
	ent = json_object_get(j, "entries");
	static const char *const want[] = {
	    "release.halt", "release.resume", "release.hold",  "release.create", "release.create",
	    "tenant.token", "tenant.update",  "tenant.create", "ring.delete",	 "ring.create"};
	/* Gate decisions (a ring opened) are interleaved: compare the operator's entries. */
	n = 0;
	for (size_t i = 0; i < json_array_size(ent); i++) {
		json_t *x = json_array_get(ent, i);
		const char *act = jstr(x, "action", NULL);
		if (!strncmp(act, "gate.", 5)) {
			assert_string_equal(jstr(x, "actor", NULL), "gate");
			continue;
		}
		if (n >= 10)
			fail_msg("unexpected entry %s", act);
		if (strcmp(act, want[n]))
			fail_msg("entry %zu: %s, want %s", n, act, want[n]);
		assert_string_equal(jstr(x, "actor", NULL), who);
		assert_true(json_integer_value(json_object_get(x, "time")) > 0);
		assert_int_equal(strlen(jstr(x, "time_utc", NULL)), 20);
		n++;
	}
	assert_int_equal(n, 10);
	json_t *halt = json_array_get(ent, 0);
	assert_int_equal(json_integer_value(json_object_get(halt, "release")), 2);
	assert_string_equal(jstr(halt, "subject", NULL), "packs/b.rfp");
	assert_string_equal(jstr(halt, "detail", NULL), "operator: bad rule 7");
	assert_true(json_is_null(json_object_get(j, "next_before")));
	json_decref(j);

	/* Paged: two at a time, following next_before, the same entries in the same order. */
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/audit", e->admin, &j, NULL));
	size_t total = json_array_size(json_object_get(j, "entries")), seen = 0;
	json_int_t before = 0;
	for (int page = 0; page < 50; page++) {
		json_t *p;
		if (before)
			snprintf(path, sizeof(path), "/v1/admin/audit?limit=2&before=%lld",
				 (long long)before);
		else
			snprintf(path, sizeof(path), "/v1/admin/audit?limit=2");
		EXPECT_STATUS(200, http(e, "GET", path, e->admin, &p, NULL));
		json_t *pe = json_object_get(p, "entries");
		for (size_t i = 0; i < json_array_size(pe); i++, seen++)
			assert_int_equal(
			    json_integer_value(json_object_get(json_array_get(pe, i), "id")),
			    json_integer_value(json_object_get(
				json_array_get(json_object_get(j, "entries"), seen), "id")));
		json_t *nb = json_object_get(p, "next_before");
		before = json_is_integer(nb) ? json_integer_value(nb) : 0;
		json_decref(p);
		if (!before)
			break;
	}
	assert_int_equal(seen, total);
	json_decref(j);

	/* Filtered by release: release 1 has its create (and gate decisions) only. */
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/audit?release=1", e->admin, &j, NULL));
	ent = json_object_get(j, "entries");
	assert_true(json_array_size(ent) >= 1);
	for (size_t i = 0; i < json_array_size(ent); i++)
		assert_int_equal(
		    json_integer_value(json_object_get(json_array_get(ent, i), "release")), 1);
	assert_string_equal(jstr(json_array_get(ent, json_array_size(ent) - 1), "action", NULL),
			    "release.create");
	json_decref(j);

	/* Bad queries and no token are refused. */
	EXPECT_STATUS(400, http(e, "GET", "/v1/admin/audit?limit=0", e->admin, NULL, NULL));
	EXPECT_STATUS(400, http(e, "GET", "/v1/admin/audit?limit=501", e->admin, NULL, NULL));
	EXPECT_STATUS(400, http(e, "GET", "/v1/admin/audit?release=x", e->admin, NULL, NULL));
	EXPECT_STATUS(400, http(e, "GET", "/v1/admin/audit?sort=asc", e->admin, NULL, NULL));
	EXPECT_STATUS(405, http(e, "POST", "/v1/admin/audit", e->admin, NULL, "{}"));
	EXPECT_STATUS(401, http(e, "GET", "/v1/admin/audit", NULL, NULL, NULL));

	/* One log line per entry, with its priority: <5> notice for operator actions; the
	 * newline in the hold reason does not split the line. */
	snprintf(path, sizeof(path), "%s/server.log", e->dir);
	uint8_t *p;
	size_t len;
	assert_int_equal(rf_file_read(path, 1 << 20, &p, &len), 0);
	log = (char *)p;
	char line[200];
	snprintf(line, sizeof(line), "<5>ringfenced: audit #");
	assert_non_null(strstr(log, line));
	snprintf(line, sizeof(line),
		 "%s release.halt release 2 'packs/b.rfp': operator: bad rule 7\n", who);
	if (!strstr(log, line))
		fail_msg("no line '%s' in the log:\n%s", line, log);
	snprintf(line, sizeof(line),
		 "%s release.hold release 2 'packs/b.rfp': operator: wait for?monday\n", who);
	if (!strstr(log, line))
		fail_msg("no line '%s' in the log:\n%s", line, log);
	assert_null(strstr(log, e->admin)); /* never the token itself */
	assert_null(strstr(log, tok));
	assert_null(strstr(log, tok2));
	free(log);
}

/* kill -9 during a rollout while reports are in flight: every acknowledged report survives,
 * the device state committed with each report agrees with the report log after restart (the
 * release's crash count is exactly the stored crash reports), and the server serves again. */
static void test_kill9_keeps_acknowledged_reports(void **state)
{
	struct env *e = *state;
	char tok[80], cred[4][80], dev[16];
	char sha[65];
	int acked[4] = {0};
	const int per = (int)RF_SRV_REPORTS_PER_RELEASE; /* within the bound on reports */
	json_t *j;

	tenant(e, "kilo", NULL, tok); /* no ring: the devices are in the last ring, broad */
	for (int i = 0; i < 4; i++) {
		snprintf(dev, sizeof(dev), "k-%d", i);
		enroll(e, tok, dev, cred[i]);
	}
	add_target(e, "packs/rules-k.rfp", "rules-k", "");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-k.rfp\"}"));
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	/* Four writer processes report as fast as they can; each writes the number of reports
	 * acknowledged so far to a file before sending the next (so the file never over-claims). */
	pid_t kids[4];
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			char f[400], rid[32], num[16];
			snprintf(dev, sizeof(dev), "k-%d", i);
			snprintf(f, sizeof(f), "%s/acked-%d", e->dir, i);
			for (int k = 0; k < per; k++) {
				snprintf(rid, sizeof(rid), "%s-%d", dev, k);
				/* intent first (the device took the release), then crashes and
				 * restarts alternating */
				long st = report(e, cred[i], dev, rid,
						 k == 0	 ? "intent"
						 : k % 2 ? "crashed"
							 : "trial_started",
						 sha);
				if (st != 201)
					_exit(st == 0 ? 0
						      : 3); /* 0: connection refused, server gone */
				int n = snprintf(num, sizeof(num), "%d", k + 1);
				if (rf_file_write_atomic(f, num, (size_t)n, 0644) < 0)
					_exit(4);
			}
			_exit(0);
		}
	}
	/* Let some reports through, then kill -9 the server mid-stream. */
	char f0[400];
	snprintf(f0, sizeof(f0), "%s/acked-0", e->dir);
	for (int i = 0; i < 400; i++) {
		uint8_t *p;
		size_t n;
		uint64_t v = 0;
		if (rf_file_read(f0, 32, &p, &n) == 0) {
			if (rf_parse_u64((char *)p, &v) < 0)
				v = 0;
			free(p);
		}
		if (v >= 20)
			break;
		sleep_ms(25);
	}
	stop_server(e, SIGKILL);
	for (int i = 0; i < 4; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	uint64_t total_acked = 0;
	for (int i = 0; i < 4; i++) {
		char f[400];
		uint8_t *p;
		size_t n;
		uint64_t v = 0;
		snprintf(f, sizeof(f), "%s/acked-%d", e->dir, i);
		if (rf_file_read(f, 32, &p, &n) == 0) {
			if (rf_parse_u64((char *)p, &v) < 0)
				v = 0;
			free(p);
		}
		acked[i] = (int)v;
		total_acked += v;
	}
	assert_true(acked[0] >= 20);
	assert_true(total_acked < 4u * per); /* the kill really hit mid-stream */

	/* The database opens (WAL recovered) and holds at least every acknowledged report. */
	struct rf_db *st;
	uint64_t stored = 0, crashes = 0;
	assert_int_equal(rf_db_open(e->db, 0, NULL, &st), 0);
	for (int i = 0; i < 4; i++) {
		uint64_t c;
		snprintf(dev, sizeof(dev), "k-%d", i);
		assert_int_equal(rf_db_reports_count(st, dev, &c), 0);
		if (c < (uint64_t)acked[i])
			fail_msg("device %s: %d reports acknowledged, %llu stored", dev, acked[i],
				 (unsigned long long)c);
		assert_true(c <= (uint64_t)acked[i] + 1); /* at most the one in flight */
		stored += c;
		crashes += c / 2; /* reports 1, 3, 5, ... are crashes */
	}
	rf_db_close(st);
	/* After restart each acknowledged report is known (a retry is a duplicate), and the
	 * server works. */
	start_server(e);
	for (int i = 0; i < 4; i++) {
		char rid[32];
		snprintf(dev, sizeof(dev), "k-%d", i);
		for (int k = 0; k < acked[i]; k += 7) {
			snprintf(rid, sizeof(rid), "%s-%d", dev, k);
			EXPECT_STATUS(200, report(e, cred[i], dev, rid,
						  k == 0  ? "intent"
						  : k % 2 ? "crashed"
							  : "trial_started",
						  sha));
		}
		j = checkin(e, cred[i], dev, NULL, 0);
		json_decref(j);
	}
	/* The rollout state rebuilt from the committed device records matches the report log. */
	long long seen_crashes = -1, seen_devices = -1;
	for (int i = 0; i < 100 && seen_crashes != (long long)crashes; i++) { /* next tick */
		EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases/1", e->admin, &j, NULL));
		json_t *broad = json_array_get(json_object_get(j, "rings"), 1);
		json_t *h = json_object_get(broad, "health");
		assert_string_equal(jstr(broad, "ring", NULL), "broad");
		seen_crashes = (long long)json_integer_value(json_object_get(h, "crashes"));
		seen_devices = (long long)json_integer_value(json_object_get(h, "devices"));
		json_decref(j);
		if (seen_crashes != (long long)crashes)
			sleep_ms(100);
	}
	if (seen_crashes != (long long)crashes)
		fail_msg("release health counts %lld crashes, the report log %llu", seen_crashes,
			 (unsigned long long)crashes);
	assert_true(seen_devices >= 1 && seen_devices <= 4);
	assert_true(stored >= total_acked);
}

/* P7 over HTTP: devices that recorded intent and then stopped checking in count as failed;
 * three silent of six trip the absolute floor and the release halts by itself. The three that
 * keep checking in are not counted silent. */
static void test_silence_after_intent_halts(void **state)
{
	struct env *e = *state;
	char tok[80], cred[6][80], dev[16], rid[32], sha[65], path[64];
	json_t *j;

	tenant(e, "echo", "canary", tok);
	for (int i = 0; i < 6; i++) {
		snprintf(dev, sizeof(dev), "s-%d", i);
		enroll(e, tok, dev, cred[i]);
	}
	add_target(e, "packs/rules-quiet.rfp", "rules-quiet", "\"silence_s\":2,\"min_healthy\":5");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-quiet.rfp\"}"));
	int id = (int)json_integer_value(json_object_get(j, "id"));
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	for (int i = 0; i < 6; i++) {
		snprintf(dev, sizeof(dev), "s-%d", i);
		snprintf(rid, sizeof(rid), "%s-intent", dev);
		EXPECT_STATUS(201, report(e, cred[i], dev, rid, "intent", sha));
	}
	snprintf(path, sizeof(path), "/v1/admin/releases/%d", id);
	bool halted = false;
	for (int round = 0; round < 60 && !halted; round++) { /* bounded: 60 x 250 ms */
		for (int i = 3; i < 6; i++) {
			snprintf(dev, sizeof(dev), "s-%d", i);
			json_decref(checkin(e, cred[i], dev, sha, 0));
		}
		EXPECT_STATUS(200, http(e, "GET", path, e->admin, &j, NULL));
		halted = !strcmp(jstr(j, "status", NULL), "halted");
		if (halted) {
			json_t *canary = json_array_get(json_object_get(j, "rings"), 0);
			json_t *h = json_object_get(canary, "health");
			assert_int_equal(json_integer_value(json_object_get(h, "devices")), 6);
			assert_int_equal(json_integer_value(json_object_get(h, "silent")), 3);
			assert_non_null(strstr(jstr(j, "halt_reason", NULL), ""));
		}
		json_decref(j);
		sleep_ms(250);
	}
	assert_true(halted);
	expect_waiting(checkin(e, cred[4], "s-4", sha, 0));
}

/* The server re-signs a timestamp that is about to expire (it holds the timestamp key). */
static void test_timestamp_kept_fresh(void **state)
{
	struct env *e = *state;
	long long version = 0;

	for (int i = 0; i < 100 && version < 2; i++) { /* bounded: 100 x 100 ms */
		json_t *j;
		EXPECT_STATUS(200, http(e, "GET", "/repo/metadata/timestamp.json", NULL, &j, NULL));
		version = (long long)json_integer_value(
		    json_object_get(json_object_get(j, "signed"), "version"));
		json_decref(j);
		if (version < 2)
			sleep_ms(100);
	}
	if (version < 2)
		fail_msg("timestamp.json still version %lld: not refreshed", version);
}

/* P6/P7 end to end: the broad ring opens only after the canary devices were healthy after
 * probation and the bake time passed; until then a broad device is told to wait. */
static void test_ring_opens_after_canary_healthy(void **state)
{
	struct env *e = *state;
	char tc[80], tb[80], c1[80], c2[80], b1[80], sha[65], path[64];
	json_t *j;

	tenant(e, "india", "canary", tc);
	tenant(e, "juliet", "broad", tb);
	enroll(e, tc, "i-1", c1);
	enroll(e, tc, "i-2", c2);
	enroll(e, tb, "j-1", b1);
	add_target(e, "packs/rules-ring.rfp", "rules-ring",
		   "\"probation_s\":1,\"min_bake_s\":1,\"min_healthy\":2");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-ring.rfp\"}"));
	int id = (int)json_integer_value(json_object_get(j, "id"));
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/admin/releases/%d", id);

	j = checkin(e, b1, "j-1", NULL, 0);
	assert_string_equal(jstr(j, "action", NULL), "stay");
	assert_string_equal(jstr(j, "reason", NULL), "not-yet");
	json_decref(j);
	j = checkin(e, c1, "i-1", NULL, 0);
	assert_string_equal(jstr(j, "action", NULL), "install");
	json_decref(j);
	EXPECT_STATUS(201, report(e, c1, "i-1", "i-1-a", "intent", sha));
	EXPECT_STATUS(201, report(e, c2, "i-2", "i-2-a", "intent", sha));
	sleep_ms(1500); /* probation 1 s */
	EXPECT_STATUS(201, report(e, c1, "i-1", "i-1-b", "healthy", sha));
	EXPECT_STATUS(201, report(e, c2, "i-2", "i-2-b", "healthy", sha));
	bool open = false;
	for (int i = 0; i < 100 && !open; i++) { /* bounded: 100 x 100 ms */
		json_decref(checkin(e, c1, "i-1", sha, 0));
		json_decref(checkin(e, c2, "i-2", sha, 0));
		j = checkin(e, b1, "j-1", NULL, 0);
		open = !strcmp(jstr(j, "action", NULL), "install");
		json_decref(j);
		if (!open)
			sleep_ms(100);
	}
	assert_true(open);
	EXPECT_STATUS(200, http(e, "GET", path, e->admin, &j, NULL));
	json_t *canary = json_array_get(json_object_get(j, "rings"), 0);
	assert_string_equal(jstr(canary, "phase", NULL), "complete");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(canary, "health"), "healthy")), 2);
	json_decref(j);
}

/* A ramp step that admits none of the ring's devices (1 % of a 2-device canary)
 * advances on bake time alone: the server counts the devices each step actually admits, so the
 * gate never waits for healthy devices that cannot exist (before, the release stalled there). */
static void test_step_admitting_nobody_advances(void **state)
{
	struct env *e = *state;
	char tc[80], c1[80], c2[80], custom[1024];
	int64_t now = rf_now_wall();
	json_t *j;

	tenant(e, "kestrel", "canary", tc);
	enroll(e, tc, "k-1", c1);
	enroll(e, tc, "k-2", c2);
	snprintf(custom, sizeof(custom),
		 "{\"ringfence\":{\"release\":\"rules-tiny-step\",\"schedule\":["
		 "{\"ring\":\"canary\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":1},"
		 "{\"after\":1,\"percent\":100}]},"
		 "{\"ring\":\"broad\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]}],"
		 "\"gates\":{\"probation_s\":1,\"min_bake_s\":1,\"min_healthy\":2}}}");
	add_pack(e, "packs/tiny-step.rfp", custom, now);
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/tiny-step.rfp\"}"));
	json_decref(j);
	/* At 1 % neither device is admitted (their buckets for this release are above 100: the
	 * first answers check it), so only the bake time can move the ramp. */
	j = checkin(e, c1, "k-1", NULL, 0);
	assert_string_equal(jstr(j, "action", NULL), "stay");
	json_decref(j);
	j = checkin(e, c2, "k-2", NULL, 0);
	assert_string_equal(jstr(j, "action", NULL), "stay");
	json_decref(j);
	bool installed = false;
	for (int i = 0; i < 100 && !installed; i++) { /* bounded: 100 x 100 ms */
		j = checkin(e, c2, "k-2", NULL, 0);
		installed = !strcmp(jstr(j, "action", NULL), "install");
		json_decref(j);
		if (!installed)
			sleep_ms(100);
	}
	assert_true(installed);
}

/* A rollback report counts against the release the device left, whether the agent names that
 * release (protocol.md) or the last known good it went back to. */
static void test_rollback_counts_against_release_left(void **state)
{
	struct env *e = *state;
	char tok[80], ca[80], cb[80], sha1[65], sha2[65];
	json_t *j;

	tenant(e, "kilo2", "canary", tok);
	enroll(e, tok, "r-a", ca);
	enroll(e, tok, "r-b", cb);
	add_target(e, "packs/rules-r1.rfp", "rules-r1", "");
	add_target(e, "packs/rules-r2.rfp", "rules-r2", "");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-r1.rfp\"}"));
	snprintf(sha1, sizeof(sha1), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	json_decref(checkin(e, ca, "r-a", sha1, 0)); /* both run release 1 */
	json_decref(checkin(e, cb, "r-b", sha1, 0));
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-r2.rfp\"}"));
	snprintf(sha2, sizeof(sha2), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	EXPECT_STATUS(201, report(e, ca, "r-a", "a-1", "intent", sha2));
	EXPECT_STATUS(201, report(e, cb, "r-b", "b-1", "intent", sha2));
	EXPECT_STATUS(201, report(e, ca, "r-a", "a-2", "rolled_back", sha1)); /* names the LKG */
	EXPECT_STATUS(201, report(e, cb, "r-b", "b-2", "rolled_back", sha2)); /* names the left */
	json_decref(checkin(e, ca, "r-a", sha1, 0)); /* back on release 1 */
	json_decref(checkin(e, cb, "r-b", sha1, 0));
	long long rb2 = -1, rb1 = -1;
	for (int i = 0; i < 100 && rb2 != 2; i++) { /* bounded: next tick */
		EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases/2", e->admin, &j, NULL));
		rb2 = (long long)json_integer_value(json_object_get(
		    json_object_get(json_array_get(json_object_get(j, "rings"), 0), "health"),
		    "rollbacks"));
		json_decref(j);
		if (rb2 != 2)
			sleep_ms(100);
	}
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases/1", e->admin, &j, NULL));
	rb1 = (long long)json_integer_value(json_object_get(
	    json_object_get(json_array_get(json_object_get(j, "rings"), 0), "health"),
	    "rollbacks"));
	json_t *h1 = json_object_get(json_array_get(json_object_get(j, "rings"), 0), "health");
	assert_int_equal(json_integer_value(json_object_get(h1, "failed")), 0);
	json_decref(j);
	assert_int_equal(rb2, 2);
	assert_int_equal(rb1, 0);
}

static json_t *canary_row_health(struct env *e, int id)
{
	char path[64];
	json_t *j, *h;

	snprintf(path, sizeof(path), "/v1/admin/releases/%d", id);
	EXPECT_STATUS(200, http(e, "GET", path, e->admin, &j, NULL));
	h = json_object_get(json_array_get(json_object_get(j, "rings"), 0), "health");
	json_incref(h);
	json_decref(j);
	return h;
}

/* The reports of the store for device dev (the server stopped while counting). */
static uint64_t stored_reports(struct env *e, const char *dev)
{
	struct rf_db *st;
	uint64_t n = 0;

	stop_server(e, SIGTERM);
	assert_int_equal(rf_db_open(e->db, 0, NULL, &st), 0);
	assert_int_equal(rf_db_reports_count(st, dev, &n), 0);
	rf_db_close(st);
	start_server(e);
	return n;
}

static long long metric(struct env *e, const char *name);

/* Reports posted at once with curl's multi interface, one a device (devs[i], creds[i], id
 * "<prefix>-<i>"): started here, driven by drive_reports(). */
struct report_batch {
	CURLM *m;
	CURL *h[32];
	struct curl_slist *hdr[32];
	char body[32][256];
	long status[32];
	int n;
};

static void start_reports(struct env *e, struct report_batch *b, int n, char devs[][16],
			  char creds[][80], const char *prefix)
{
	char url[128], auth[128];

	memset(b, 0, sizeof(*b));
	b->m = curl_multi_init();
	b->n = n;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/report", e->port);
	for (int i = 0; i < n; i++) {
		CURL *c = curl_easy_init();
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", creds[i]);
		b->hdr[i] = curl_slist_append(NULL, auth);
		b->hdr[i] = curl_slist_append(b->hdr[i], "Content-Type: application/json");
		b->hdr[i] = curl_slist_append(b->hdr[i], "Expect:");
		snprintf(b->body[i], sizeof(b->body[i]),
			 "{\"report_id\":\"%s-%d\",\"device_id\":\"%s\",\"event\":\"installed\","
			 "\"time\":1764000000}",
			 prefix, i, devs[i]);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, b->hdr[i]);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, b->body[i]);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
		struct buf *sink = calloc(1, sizeof(*sink));
		curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
		curl_easy_setopt(c, CURLOPT_PRIVATE, sink);
		b->h[i] = c;
		curl_multi_add_handle(b->m, c);
	}
}

/* Drive the batch for at most ms milliseconds (0: once, without waiting); returns how many
 * requests are still waiting for their answer. Answers are recorded in b->status (0 none). */
static int drive_reports(struct report_batch *b, int ms)
{
	int running = 0, left;
	uint64_t end = rf_now_mono_ns() + (uint64_t)ms * 1000000u;

	do {
		curl_multi_perform(b->m, &running);
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(b->m, &left)))
			for (int i = 0; msg->msg == CURLMSG_DONE && i < b->n; i++)
				if (b->h[i] == msg->easy_handle && msg->data.result == CURLE_OK)
					curl_easy_getinfo(b->h[i], CURLINFO_RESPONSE_CODE,
							  &b->status[i]);
		if (running && ms)
			curl_multi_poll(b->m, NULL, 0, 50, NULL);
	} while (running && ms && rf_now_mono_ns() < end);
	return running;
}

static void end_reports(struct report_batch *b)
{
	for (int i = 0; i < b->n; i++) {
		struct buf *sink;
		curl_easy_getinfo(b->h[i], CURLINFO_PRIVATE, (char **)&sink);
		free(sink->p);
		free(sink);
		curl_multi_remove_handle(b->m, b->h[i]);
		curl_easy_cleanup(b->h[i]);
		curl_slist_free_all(b->hdr[i]);
	}
	curl_multi_cleanup(b->m);
}

/* A report waiting for its commit gives its HTTP thread back (libmicrohttpd suspend/resume;
 * review: each held its thread for its group commit, so with the default one thread a CPU,
 * check-ins queued behind waiting reports). With ONE HTTP thread: reports from many devices
 * at once are all acknowledged and all stored; while their commit cannot proceed (SQLite:
 * this test holds the database's write lock) a check-in is still answered, before any of
 * them; and a server stopped while reports wait neither crashes nor acknowledges one that
 * was not committed. */
static void test_reports_wait_without_a_thread(void **state)
{
	struct env *e = *state;
	enum { N = 24 };
	char tok[80], devs[N][16], creds[N][80];
	struct report_batch b;
	bool sqlite = !rf_testdb_pg();
	sqlite3 *lockdb = NULL;

	stop_server(e, SIGTERM);
	e->extra[0] = "--threads";
	e->extra[1] = "1";
	start_server(e);
	tenant(e, "mike", "canary", tok);
	for (int i = 0; i < N; i++) {
		snprintf(devs[i], sizeof(devs[i]), "w-%d", i);
		enroll(e, tok, devs[i], creds[i]);
	}
	if (sqlite) { /* the commit waits (busy) until this transaction ends */
		assert_int_equal(sqlite3_open(e->db, &lockdb), SQLITE_OK);
		assert_int_equal(sqlite3_exec(lockdb, "BEGIN IMMEDIATE", NULL, NULL, NULL),
				 SQLITE_OK);
	}
	start_reports(e, &b, N, devs, creds, "a");
	(void)drive_reports(&b, 300); /* sent: each now waits for its commit */
	if (sqlite) {
		/* The one thread answers a check-in while every report waits. */
		json_decref(checkin(e, creds[0], devs[0], NULL, 0));
		assert_int_equal(drive_reports(&b, 0), N);
		for (int i = 0; i < N; i++)
			assert_int_equal(b.status[i], 0);
		assert_int_equal(sqlite3_exec(lockdb, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	}
	assert_int_equal(drive_reports(&b, 30000), 0);
	for (int i = 0; i < N; i++)
		if (b.status[i] != 201)
			fail_msg("report %d: HTTP %ld, want 201", i, b.status[i]);
	end_reports(&b);
	/* They waited together, so they shared transactions (one thread: before, one each). */
	long long commits = metric(e, "ringfence_report_commits_total");
	assert_true(commits >= 1);
	if (sqlite && commits >= N)
		fail_msg("%lld commits for %d reports that waited together", commits, (int)N);
	for (int i = 0; i < N; i++)
		assert_int_equal(stored_reports(e, devs[i]), 1);

	/* Stop while reports wait for a commit that cannot happen (SQLite: the lock again). */
	if (sqlite) {
		assert_int_equal(sqlite3_exec(lockdb, "BEGIN IMMEDIATE", NULL, NULL, NULL),
				 SQLITE_OK);
		start_reports(e, &b, N, devs, creds, "b");
		(void)drive_reports(&b, 300);
		int st = -1;
		kill(e->pid, SIGTERM);
		for (int i = 0; i < 600 && drive_reports(&b, 50) > 0; i++)
			;
		for (int i = 0; i < 600 && waitpid(e->pid, &st, WNOHANG) != e->pid; i++)
			sleep_ms(50);
		e->pid = 0;
		e->port = 0;
		assert_true(WIFEXITED(st)); /* no crash (a sanitizer's report exits non-zero) */
		for (int i = 0; i < N; i++)
			if (b.status[i] >= 200 && b.status[i] < 300)
				fail_msg("report %d acknowledged (HTTP %ld) without a commit", i,
					 b.status[i]);
		end_reports(&b);
		assert_int_equal(sqlite3_exec(lockdb, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(lockdb);
		struct rf_db *st2;
		uint64_t n = 0;
		assert_int_equal(rf_db_open(e->db, 0, NULL, &st2), 0);
		assert_int_equal(rf_db_reports_count(st2, NULL, &n), 0);
		rf_db_close(st2);
		assert_int_equal(n, N); /* the first round only */
		start_server(e);
	}
}

/* The bound on reports (review: any one device credential could fill the database by posting
 * reports with fresh ids): a device has at most RF_SRV_REPORTS_PER_RELEASE reports of a
 * release stored; the next is refused with 409 report_limit (a permanent answer: the agent
 * drops it) and the table does not grow, while a report the gates need (a crash) is still
 * taken, in place of the oldest, and counted. Retries of stored ones stay duplicates, other
 * devices and other releases are unaffected, and old reports go by retention. */
static void test_reports_bounded_per_device(void **state)
{
	struct env *e = *state;
	const unsigned max = RF_SRV_REPORTS_PER_RELEASE;
	char tok[80], ca[80], cb[80], sha[65], rid[32];
	json_t *j;

	tenant(e, "lima", "canary", tok);
	enroll(e, tok, "l-a", ca);
	enroll(e, tok, "l-b", cb);
	add_target(e, "packs/rules-l.rfp", "rules-l", "");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-l.rfp\"}"));
	int id = (int)json_integer_value(json_object_get(j, "id"));
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	EXPECT_STATUS(201, report(e, ca, "l-a", "a-0", "intent", sha));
	for (unsigned i = 1; i < max; i++) {
		snprintf(rid, sizeof(rid), "a-%u", i);
		EXPECT_STATUS(201, report(e, ca, "l-a", rid, "installed", sha));
	}
	assert_int_equal(stored_reports(e, "l-a"), max);
	/* One more: refused, permanently, and not stored. */
	char *reply = NULL;
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"report_id\":\"a-x\",\"device_id\":\"l-a\",\"event\":\"installed\","
		 "\"sha256\":\"%s\",\"time\":1764000000}",
		 sha);
	EXPECT_STATUS(409, http_raw(e, "POST", "/v1/report", ca, body, strlen(body), &reply));
	j = json_loads(reply, 0, NULL);
	free(reply);
	assert_string_equal(jstr(j, "error", "code"), "report_limit");
	json_decref(j);
	EXPECT_STATUS(409, report(e, ca, "l-a", "a-y", "trial_started", sha));
	EXPECT_STATUS(200, report(e, ca, "l-a", "a-5", "installed", sha)); /* a retry */
	assert_int_equal(metric(e, "ringfence_reports_refused_total"), 2);
	assert_int_equal(stored_reports(e, "l-a"), max);
	/* The gates' evidence is taken even at the bound, and counted. */
	EXPECT_STATUS(201, report(e, ca, "l-a", "a-crash", "crashed", sha));
	assert_int_equal(stored_reports(e, "l-a"), max);
	json_t *h = NULL;
	for (int i = 0; i < 100; i++) { /* bounded: the next tick */
		h = canary_row_health(e, id);
		if (json_integer_value(json_object_get(h, "crashes")) == 1)
			break;
		json_decref(h);
		h = NULL;
		sleep_ms(100);
	}
	assert_non_null(h);
	assert_int_equal(json_integer_value(json_object_get(h, "failed")), 1);
	json_decref(h);
	/* The same crash again is a duplicate; the oldest report made room for it. */
	EXPECT_STATUS(200, report(e, ca, "l-a", "a-crash", "crashed", sha));
	/* Another device, and reports naming no known release, have their own allowance. */
	EXPECT_STATUS(201, report(e, cb, "l-b", "b-0", "intent", sha));
	EXPECT_STATUS(201, report(e, cb, "l-b", "b-1", "installed", sha));
	EXPECT_STATUS(201,
		      report(e, ca, "l-a", "a-other", "installed",
			     "1111111111111111111111111111111111111111111111111111111111111111"));
	assert_int_equal(stored_reports(e, "l-b"), 2);
	assert_int_equal(stored_reports(e, "l-a"), max + 1);

	/* Retention: a report received longer ago than RF_SRV_REPORTS_RETENTION_S is deleted by
	 * the server's tick; the newer ones stay. */
	stop_server(e, SIGTERM);
	struct rf_db *st;
	bool dup = true;
	int64_t now = (int64_t)time(NULL);
	struct rf_db_report old = {.device_id = "l-b",
				   .report_id = "b-old",
				   .event = "installed",
				   .target = "",
				   .sha256_hex = "",
				   .time = 1,
				   .received_at = now - RF_SRV_REPORTS_RETENTION_S - 60,
				   .detail = ""};
	assert_int_equal(rf_db_open(e->db, 0, NULL, &st), 0);
	assert_int_equal(rf_db_report_add(st, &old, NULL, &dup), 0);
	assert_false(dup);
	rf_db_close(st);
	start_server(e);
	for (int i = 0; i < 100 && metric(e, "ringfence_reports_purged_total") < 1; i++)
		sleep_ms(100);
	assert_int_equal(metric(e, "ringfence_reports_purged_total"), 1);
	assert_int_equal(stored_reports(e, "l-b"), 2);
}

/* Failure attribution (issue 10): reports say who caused a failure. A corrupt store, a bad
 * mirror or a bad signature (cause local or transit) is counted apart and never against the
 * release; a go-back the server ordered (cause server, or an old agent's rolled_back of a
 * halted release) is an obeyed halt, not a failure. Only content failures halt. */
static void test_failure_attribution(void **state)
{
	struct env *e = *state;
	char tok[80], cred[6][80], dev[16], rid[40], sha[65];
	json_t *j, *h = NULL;

	tenant(e, "attr", "canary", tok);
	add_target(e, "packs/rules-at.rfp", "rules-at", "\"min_healthy\":5");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-at.rfp\"}"));
	int id = (int)json_integer_value(json_object_get(j, "id"));
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	for (int i = 0; i < 6; i++) {
		snprintf(dev, sizeof(dev), "at-%d", i);
		enroll(e, tok, dev, cred[i]);
		json_decref(checkin(e, cred[i], dev, NULL, 0));
		snprintf(rid, sizeof(rid), "%s-intent", dev);
		EXPECT_STATUS(201, report(e, cred[i], dev, rid, "intent", sha));
	}
	/* Four devices fail three times each, none by the content's doing: enough to trip the
	 * floor (3 devices, 5 %) if they counted. */
	static const char *const causes[] = {"local", "transit"};
	for (int i = 0; i < 4; i++) {
		snprintf(dev, sizeof(dev), "at-%d", i);
		for (int k = 0; k < 3; k++) {
			snprintf(rid, sizeof(rid), "%s-c%d", dev, k);
			EXPECT_STATUS(201, http(e, "POST", "/v1/report", cred[i], NULL,
						"{\"report_id\":\"%s\",\"device_id\":\"%s\","
						"\"event\":\"%s\",\"sha256\":\"%s\",\"cause\":\"%s\"}",
						rid, dev, k == 2 ? "rejected" : "crashed", sha,
						causes[i % 2]));
		}
	}
	/* An unknown cause is a 400 and records nothing. */
	EXPECT_STATUS(400, http(e, "POST", "/v1/report", cred[4], &j,
				"{\"report_id\":\"x-1\",\"device_id\":\"at-4\",\"event\":\"crashed\","
				"\"sha256\":\"%s\",\"cause\":\"cosmic-rays\"}",
				sha));
	assert_string_equal(jstr(j, "error", "field"), "cause");
	json_decref(j);
	for (int i = 0; i < 100; i++) { /* bounded: the next tick aggregates */
		json_decref(h);
		h = canary_row_health(e, id);
		if (json_integer_value(json_object_get(h, "local_failures")) == 12)
			break;
		sleep_ms(100);
	}
	assert_int_equal(json_integer_value(json_object_get(h, "local_failures")), 12);
	assert_int_equal(json_integer_value(json_object_get(h, "failed")), 0);
	assert_int_equal(json_integer_value(json_object_get(h, "crashes")), 0);
	assert_int_equal(json_integer_value(json_object_get(h, "rejections")), 0);
	json_decref(h);
	sleep_ms(1200); /* a tick has judged it with that evidence */
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases/1", e->admin, &j, NULL));
	assert_string_equal(jstr(j, "status", NULL), "active");
	json_decref(j);

	/* An operator halts it; two devices obey (one says so, one is an older agent that does
	 * not): obeyed, not failed. */
	char path[64];
	snprintf(path, sizeof(path), "/v1/admin/releases/%d/halt", id);
	EXPECT_STATUS(200, http(e, "POST", path, e->admin, NULL, "{\"force\":true}"));
	EXPECT_STATUS(201, http(e, "POST", "/v1/report", cred[4], NULL,
				"{\"report_id\":\"o-4\",\"device_id\":\"at-4\",\"event\":"
				"\"rolled_back\",\"sha256\":\"%s\",\"cause\":\"server\"}",
				sha));
	EXPECT_STATUS(201, report(e, cred[5], "at-5", "o-5", "rolled_back", sha));
	h = NULL;
	for (int i = 0; i < 100; i++) {
		json_decref(h);
		h = canary_row_health(e, id);
		if (json_integer_value(json_object_get(h, "obeyed_halt")) == 2)
			break;
		sleep_ms(100);
	}
	assert_int_equal(json_integer_value(json_object_get(h, "obeyed_halt")), 2);
	assert_int_equal(json_integer_value(json_object_get(h, "failed")), 0);
	assert_int_equal(json_integer_value(json_object_get(h, "rollbacks")), 0);
	json_decref(h);
	/* The attribution survives a restart (it is part of each device's stored history). */
	stop_server(e, SIGKILL);
	start_server(e);
	h = canary_row_health(e, id);
	assert_int_equal(json_integer_value(json_object_get(h, "local_failures")), 12);
	assert_int_equal(json_integer_value(json_object_get(h, "obeyed_halt")), 2);
	assert_int_equal(json_integer_value(json_object_get(h, "failed")), 0);
	json_decref(h);
}

/* A device that leaves a halted release by taking another one (the older release it is told to
 * go back to), without ever reporting "rolled_back", obeyed the halt: the release's health
 * counts it as obeyed_halt, not failed (the dashboard painted only devices that reported a
 * server-caused rollback as having left, so most of a halted canary looked still on it). */
static void test_leaving_halted_release_is_obeying(void **state)
{
	struct env *e = *state;
	char tok[80], cred[80], sha1[65], sha2[65];
	json_t *j, *h = NULL;

	tenant(e, "mover", "canary", tok);
	enroll(e, tok, "mv-1", cred);
	add_target(e, "packs/mv-1.rfp", "mv-1", "");
	add_target(e, "packs/mv-2.rfp", "mv-2", "");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/mv-1.rfp\"}"));
	snprintf(sha1, sizeof(sha1), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/mv-2.rfp\"}"));
	snprintf(sha2, sizeof(sha2), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	EXPECT_STATUS(201, report(e, cred, "mv-1", "mv-i2", "intent", sha2));
	EXPECT_STATUS(200, http(e, "POST", "/v1/admin/releases/2/halt", e->admin, NULL,
				"{\"reason\":\"operator test\"}"));
	/* Told to go back to release 1; it takes it. */
	j = checkin(e, cred, "mv-1", sha2, 0);
	assert_string_equal(jstr(j, "action", NULL), "rollback");
	assert_string_equal(jstr(j, "rollback_to", "target"), "packs/mv-1.rfp");
	json_decref(j);
	EXPECT_STATUS(201, report(e, cred, "mv-1", "mv-i1", "intent", sha1));
	for (int i = 0; i < 100; i++) { /* bounded: the next tick aggregates */
		json_decref(h);
		h = canary_row_health(e, 2);
		if (json_integer_value(json_object_get(h, "obeyed_halt")) == 1)
			break;
		sleep_ms(100);
	}
	assert_int_equal(json_integer_value(json_object_get(h, "devices")), 1);
	assert_int_equal(json_integer_value(json_object_get(h, "obeyed_halt")), 1);
	assert_int_equal(json_integer_value(json_object_get(h, "failed")), 0);
	json_decref(h);
}

/* The server's own downtime is not the devices' silence: after a restart longer than the
 * silence window, devices that took a release are not counted silent at once. */
static void test_downtime_is_not_silence(void **state)
{
	struct env *e = *state;
	char tok[80], cred[3][80], dev[16], rid[32], sha[65];
	json_t *j;

	tenant(e, "lima", "canary", tok);
	add_target(e, "packs/rules-down.rfp", "rules-down", "\"silence_s\":6");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-down.rfp\"}"));
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	for (int i = 0; i < 3; i++) {
		snprintf(dev, sizeof(dev), "l-%d", i);
		enroll(e, tok, dev, cred[i]);
		snprintf(rid, sizeof(rid), "%s-intent", dev);
		EXPECT_STATUS(201, report(e, cred[i], dev, rid, "intent", sha));
	}
	stop_server(e, SIGTERM);
	sleep_ms(7000); /* down longer than the silence window */
	start_server(e);
	sleep_ms(2000); /* two ticks */
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases/1", e->admin, &j, NULL));
	json_t *h = json_object_get(json_array_get(json_object_get(j, "rings"), 0), "health");
	assert_int_equal(json_integer_value(json_object_get(h, "devices")), 3);
	assert_int_equal(json_integer_value(json_object_get(h, "silent")), 0);
	assert_string_equal(jstr(j, "status", NULL), "active");
	json_decref(j);
}

/* The canary ring's health of release id, as the operator status shows it. */
struct ring_health {
	long long devices, healthy, failed, crashes, rollbacks;
	char verdict[16], status[16];
};

static void canary_health(struct env *e, int id, struct ring_health *ret)
{
	char path[64];
	json_t *j;

	snprintf(path, sizeof(path), "/v1/admin/releases/%d", id);
	EXPECT_STATUS(200, http(e, "GET", path, e->admin, &j, NULL));
	json_t *canary = json_array_get(json_object_get(j, "rings"), 0);
	json_t *h = json_object_get(canary, "health");
	assert_string_equal(jstr(canary, "ring", NULL), "canary");
	ret->devices = (long long)json_integer_value(json_object_get(h, "devices"));
	ret->healthy = (long long)json_integer_value(json_object_get(h, "healthy"));
	ret->failed = (long long)json_integer_value(json_object_get(h, "failed"));
	ret->crashes = (long long)json_integer_value(json_object_get(h, "crashes"));
	ret->rollbacks = (long long)json_integer_value(json_object_get(h, "rollbacks"));
	snprintf(ret->verdict, sizeof(ret->verdict), "%s", jstr(canary, "gate", "verdict"));
	snprintf(ret->status, sizeof(ret->status), "%s", jstr(j, "status", NULL));
	json_decref(j);
}

/* P7 across kill -9 of the server: the health a release gathered before the kill is the health
 * it has after the restart, from the first request on (not only after the first tick), and it
 * still counts toward the gates. Ten canary devices took a release whose gate halts at 3 failed
 * devices (the absolute floor; a first release has no baseline); two crashed before the kill.
 * After the restart the status shows the same devices, failed and crashes, and exactly one more
 * crash (a third failed device) halts it. After a second kill -9 the halted release still shows
 * its devices and failures at once (the end-to-end test saw 0 devices, 0 failed). */
static void test_health_survives_kill9(void **state)
{
	struct env *e = *state;
	char tok[80], cred[10][80], dev[16], rid[32], sha[65];
	struct ring_health before = {0}, after, halted;
	json_t *j;

	tenant(e, "mike", "canary", tok);
	for (int i = 0; i < 10; i++) {
		snprintf(dev, sizeof(dev), "m-%d", i);
		enroll(e, tok, dev, cred[i]);
	}
	/* The canary keeps ramping (never complete: its gate keeps being checked). */
	add_target(e, "packs/rules-m.rfp", "rules-m", "\"min_healthy\":50,\"min_bake_s\":100000");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-m.rfp\"}"));
	int id = (int)json_integer_value(json_object_get(j, "id"));
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	for (int i = 0; i < 10; i++) {
		snprintf(dev, sizeof(dev), "m-%d", i);
		snprintf(rid, sizeof(rid), "%s-intent", dev);
		EXPECT_STATUS(201, report(e, cred[i], dev, rid, "intent", sha));
	}
	/* m-0 crashes twice, m-1 once: 2 failed devices, 3 crashes; the others report healthy. */
	EXPECT_STATUS(201, report(e, cred[0], "m-0", "m-0-c1", "crashed", sha));
	EXPECT_STATUS(201, report(e, cred[0], "m-0", "m-0-c2", "crashed", sha));
	EXPECT_STATUS(201, report(e, cred[1], "m-1", "m-1-c1", "crashed", sha));
	for (int i = 2; i < 10; i++) {
		snprintf(dev, sizeof(dev), "m-%d", i);
		snprintf(rid, sizeof(rid), "%s-ok", dev);
		EXPECT_STATUS(201, report(e, cred[i], dev, rid, "healthy", sha));
	}
	for (int i = 0; i < 100; i++) { /* bounded: the next tick aggregates them */
		canary_health(e, id, &before);
		if (before.devices == 10 && before.failed == 2 && before.crashes == 3)
			break;
		sleep_ms(100);
	}
	assert_int_equal(before.devices, 10);
	assert_int_equal(before.failed, 2);
	assert_int_equal(before.crashes, 3);
	assert_string_equal(before.status, "active"); /* 2 failed: under the floor of 3 */

	stop_server(e, SIGKILL);
	start_server(e);
	/* The first request after the restart sees the same health and gate verdict. */
	canary_health(e, id, &after);
	assert_int_equal(after.devices, before.devices);
	assert_int_equal(after.healthy, before.healthy);
	assert_int_equal(after.failed, before.failed);
	assert_int_equal(after.crashes, before.crashes);
	assert_int_equal(after.rollbacks, before.rollbacks);
	assert_string_equal(after.verdict, before.verdict);
	assert_string_equal(after.status, "active");
	sleep_ms(1500); /* a tick or two: the restart alone halts nothing */
	canary_health(e, id, &after);
	assert_string_equal(after.status, "active");
	assert_int_equal(after.failed, 2);

	/* One more crash, on a third device: with the evidence from before the restart that is
	 * 3 failed of 10 and the gate halts the release; without it, 1 failed would not. */
	EXPECT_STATUS(201, report(e, cred[2], "m-2", "m-2-c1", "crashed", sha));
	wait_status(e, id, "halted");
	canary_health(e, id, &halted);
	assert_int_equal(halted.failed, 3);
	assert_int_equal(halted.crashes, 4);
	char path[64];
	snprintf(path, sizeof(path), "/v1/admin/releases/%d", id);
	EXPECT_STATUS(200, http(e, "GET", path, e->admin, &j, NULL));
	assert_int_equal(strncmp(jstr(j, "halt_reason", NULL), "gate failed in ring 'canary'", 28),
			 0);
	json_decref(j);

	/* A halted release after another kill -9: its health is shown at once, not 0 devices. */
	stop_server(e, SIGKILL);
	start_server(e);
	canary_health(e, id, &after);
	assert_string_equal(after.status, "halted");
	assert_int_equal(after.devices, 10);
	assert_int_equal(after.failed, 3);
	assert_int_equal(after.crashes, 4);
	expect_waiting(checkin(e, cred[5], "m-5", sha, 0));
}

static long long metric(struct env *e, const char *name)
{
	char *body, *p;
	long long v = -1;

	EXPECT_STATUS(200, http_raw(e, "GET", "/metrics", NULL, NULL, 0, &body));
	for (p = body; (p = strstr(p, name)); p++)
		if ((p == body || p[-1] == '\n') && p[strlen(name)] == ' ') {
			v = strtoll(p + strlen(name) + 1, NULL, 10);
			break;
		}
	free(body);
	return v;
}

/* A check-in that changes nothing writes nothing: the database (its WAL) does not grow and no
 * flush happens while 300 check-ins of a device on its release are answered (100 of them with
 * changed health counters, which are kept in memory); they are all counted. */
static void test_unchanged_checkins_write_nothing(void **state)
{
	struct env *e = *state;
	char tok[80], cred[80], sha[65], wal[400];
	struct stat st0, st1;
	json_t *j;

	tenant(e, "hotel", "canary", tok);
	enroll(e, tok, "h-1", cred);
	add_target(e, "packs/rules-h.rfp", "rules-h", "");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-h.rfp\"}"));
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	json_decref(checkin(e, cred, "h-1", sha, 0)); /* a change: now on the release */
	long long flushed = 0;
	for (int i = 0; i < 100 && flushed < 1; i++) { /* bounded: the next tick flushes it */
		sleep_ms(100);
		flushed = metric(e, "ringfence_flushed_rows_total");
	}
	assert_true(flushed >= 1);
	long long checkins0 = metric(e, "ringfence_checkins_total");
	/* SQLite: the WAL file does not change. (PostgreSQL: the flush counter says it.) */
	bool sqlite = !rf_testdb_pg();
	snprintf(wal, sizeof(wal), "%s-wal", e->db);
	assert_int_equal(sqlite ? stat(wal, &st0) : 0, 0);
	for (int i = 0; i < 300; i++) {
		/* the health counters may change (they are cumulative, re-sent every time) */
		j = checkin(e, cred, "h-1", sha, i < 200 ? 0 : (unsigned)i);
		assert_string_equal(jstr(j, "action", NULL), "stay");
		json_decref(j);
	}
	assert_int_equal(metric(e, "ringfence_flushed_rows_total"), flushed);
	assert_int_equal(metric(e, "ringfence_checkins_total"), checkins0 + 300);
	if (sqlite) {
		assert_int_equal(stat(wal, &st1), 0);
		assert_true(st1.st_size == st0.st_size && st1.st_mtime == st0.st_mtime);
	}
}

/* Run `ringfence ARGS...` with the server and token in the environment; returns the exit code
 * and the output (stdout + stderr) in out. */
static int run_cli(struct env *e, char *out, size_t cap, const char *const *args)
{
	int fds[2];
	pid_t pid;
	size_t n = 0;
	int st;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char url[64];
		const char *argv[16] = {"ringfence"};
		int k = 1;
		snprintf(url, sizeof(url), "http://127.0.0.1:%u", e->port);
		setenv("RINGFENCE_SERVER", url, 1);
		setenv("RINGFENCE_ADMIN_TOKEN_FILE", e->token_file, 1);
		for (; args[k - 1] && k < 15; k++)
			argv[k] = args[k - 1];
		argv[k] = NULL;
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		execv(ringfence_path, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t k = read(fds[0], out + n, cap - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		if (n == cap - 1)
			break;
	}
	out[n] = 0;
	close(fds[0]);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define CLI(want, ...)                                                                             \
	do {                                                                                       \
		const char *const a_[] = {__VA_ARGS__, NULL};                                      \
		int rc_ = run_cli(e, out, sizeof(out), a_);                                        \
		if (rc_ != (want))                                                                 \
			fail_msg("%s:%d: ringfence exit %d, want %d; output:\n%s", __FILE__,       \
				 __LINE__, rc_, (want), out);                                      \
	} while (0)

/* A device's "rejected" report with cause transit (the bytes failed delivery) is counted per ring
 * of the release in its status (transit_rejections: per ring and in all), once per report id,
 * apart from the content's rejections, and `release status` says so on a line of its own.
 * Before, they showed only in /metrics (ringfence_reports_total{event="rejected"}), for no
 * release in particular. */
static void test_transit_rejections_in_status(void **state)
{
	struct env *e = *state;
	char tc[80], tb[80], ca[80], cb[80], cc[80], sha[65], out[16384];
	json_t *j;

	tenant(e, "tr-canary", "canary", tc);
	tenant(e, "tr-broad", "broad", tb);
	add_target(e, "packs/rules-tr.rfp", "rules-tr", "");
	EXPECT_STATUS(201, http(e, "POST", "/v1/admin/releases", e->admin, &j,
				"{\"target\":\"packs/rules-tr.rfp\"}"));
	int id = (int)json_integer_value(json_object_get(j, "id"));
	snprintf(sha, sizeof(sha), "%s", jstr(j, "sha256", NULL));
	json_decref(j);
	enroll(e, tc, "tr-a", ca);
	enroll(e, tc, "tr-b", cb);
	enroll(e, tb, "tr-c", cc);
	json_decref(checkin(e, ca, "tr-a", NULL, 0));
	json_decref(checkin(e, cb, "tr-b", NULL, 0));
	json_decref(checkin(e, cc, "tr-c", NULL, 0));
	static const char fmt[] = "{\"report_id\":\"%s\",\"device_id\":\"%s\",\"event\":\"rejected\","
				  "\"sha256\":\"%s\",\"cause\":\"%s\",\"detail\":\"hash mismatch\"}";
	EXPECT_STATUS(201, http(e, "POST", "/v1/report", ca, NULL, fmt, "a-1", "tr-a", sha,
				"transit"));
	EXPECT_STATUS(200, http(e, "POST", "/v1/report", ca, NULL, fmt, "a-1", "tr-a", sha,
				"transit")); /* a retry: counted once */
	EXPECT_STATUS(201, http(e, "POST", "/v1/report", cb, NULL, fmt, "b-1", "tr-b", sha,
				"content"));
	EXPECT_STATUS(201, http(e, "POST", "/v1/report", cc, NULL, fmt, "c-1", "tr-c", sha,
				"transit"));
	char path[64];
	snprintf(path, sizeof(path), "/v1/admin/releases/%d", id);
	EXPECT_STATUS(200, http(e, "GET", path, e->admin, &j, NULL));
	assert_int_equal(json_integer_value(json_object_get(j, "transit_rejections")), 2);
	json_t *rings = json_object_get(j, "rings");
	assert_string_equal(jstr(json_array_get(rings, 0), "ring", NULL), "canary");
	assert_int_equal(json_integer_value(
			     json_object_get(json_array_get(rings, 0), "transit_rejections")),
			 1);
	assert_string_equal(jstr(json_array_get(rings, 1), "ring", NULL), "broad");
	assert_int_equal(json_integer_value(
			     json_object_get(json_array_get(rings, 1), "transit_rejections")),
			 1);
	json_decref(j);
	EXPECT_STATUS(200, http(e, "GET", "/v1/admin/releases", e->admin, &j, NULL));
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(json_object_get(j, "releases"), 0), "transit_rejections")),
			 2);
	json_decref(j);
	char ids[16];
	snprintf(ids, sizeof(ids), "%d", id);
	CLI(0, "release", "status", ids);
	if (!strstr(out, "  transit: 2 rejection reports: the bytes failed delivery") ||
	    !strstr(out, "  canary     transit rejections 1\n") ||
	    !strstr(out, "  broad      transit rejections 1\n"))
		fail_msg("release status does not show the transit rejections:\n%s", out);
}

/* `ringfence release|ring|tenant` against the real server: every command, --help, and the
 * documented exit codes (0 done, 1 refused by the server, 2 usage). */
static void test_cli_operator_commands(void **state)
{
	struct env *e = *state;
	char out[16384];

	CLI(0, "release", "--help");
	assert_non_null(strstr(out, "ringfence release create TARGET"));
	CLI(0, "ring", "--help");
	CLI(0, "tenant", "--help");
	CLI(2, "release");
	CLI(2, "release", "status", "abc");
	CLI(2, "release", "frobnicate", "1");
	CLI(2, "tenant", "create", "x", "--window", "2am");

	CLI(0, "tenant", "create", "foxtrot", "--ring", "canary", "--pin", "n-1", "--window",
	    "22:00-02:00");
	assert_non_null(strstr(out, "enrollment token"));
	assert_non_null(strstr(out, "rfe_"));
	CLI(1, "tenant", "create", "foxtrot");
	assert_non_null(strstr(out, "exists"));
	CLI(0, "tenant", "show", "foxtrot");
	assert_non_null(strstr(out, "pin n-1, window 22:00-02:00"));
	CLI(0, "tenant", "set", "foxtrot", "--pin", "latest", "--window", "none");
	assert_non_null(strstr(out, "pin latest, window any time"));
	CLI(0, "tenant", "list");
	CLI(0, "tenant", "token", "foxtrot");
	assert_non_null(strstr(out, "rfe_"));

	CLI(0, "ring", "add", "pilot", "--position", "1");
	CLI(0, "ring", "list");
	assert_non_null(strstr(out, "pilot"));
	CLI(1, "ring", "delete", "canary"); /* the tenant uses it */
	CLI(0, "ring", "delete", "pilot");

	add_target(e, "packs/rules-cli.rfp", "rules-cli", "");
	/* More manifests than fit the server's body limit: refused before the request is sent,
	 * saying which limit and how many fit (it was a bare 413 from the server). */
	{
		char wm[512];
		const char *src = getenv("RF_SOURCE_ROOT");
		snprintf(wm, sizeof(wm), "%s/manifests/ringfence-agent-windows-1.2.0.json",
			 src ? src : ".");
		/* 5 x its ~60 KB: over 256 KiB (run_cli passes at most 14 arguments) */
		CLI(2, "release", "create", "packs/rules-cli.rfp", "--manifest", wm, "--manifest",
		    wm, "--manifest", wm, "--manifest", wm, "--manifest", wm);
		assert_non_null(strstr(out, "the request with 5 manifests is "));
		assert_non_null(strstr(out, "over the server's limit for an operator request"));
		assert_non_null(strstr(out, "RF_SRV_ADMIN_BODY_MAX); the first "));
	}
	CLI(0, "release", "create", "packs/rules-cli.rfp");
	assert_non_null(strstr(out, "release 1  packs/rules-cli.rfp  active"));
	/* One line per manifest; a refusal with the server's reason (the example pack's Windows
	 * rules read fields the Linux proc manifest lacks). */
	assert_non_null(strstr(out, "pack verified against the agent's manifests:\n"));
	assert_non_null(strstr(out, "\nmanifest ringfence-agent-1.1.0: accepts\n"));
	if (!strstr(out, "\nmanifest ringfence-agent-linux-1.2.0: refuses: rule "))
		fail_msg("no refusal with its reason on its own line:\n%s", out);
	CLI(1, "release", "create", "packs/missing.rfp");
	assert_non_null(strstr(out, "not published"));
	add_garbage(e, "packs/garbage-cli.rfp");
	CLI(1, "release", "create", "packs/garbage-cli.rfp");
	assert_non_null(strstr(out, "is not a pack any agent accepts"));
	CLI(2, "release", "create", "packs/rules-cli.rfp", "--manifest", "/nonexistent.json");
	CLI(0, "release", "status", "1");
	assert_non_null(strstr(out, "canary"));
	CLI(0, "release", "halt", "1", "--reason", "cli test");
	assert_non_null(strstr(out, "halted"));
	assert_non_null(strstr(out, "cli test"));
	CLI(1, "release", "halt", "1");
	CLI(0, "release", "resume", "1");
	/* A reason with terminal escapes, a newline and a C1 CSI (U+009B): the human output
	 * shows them escaped on one line, --json keeps the exact string. */
	CLI(0, "release", "halt", "1", "--reason", "bad\x1b[2J\nline2\xc2\x9bX \xc3\xbc");
	assert_null(strchr(out, 0x1b));
	assert_null(strstr(out, "\xc2\x9b"));
	if (!strstr(out, "  halt: operator: bad\\x1b[2J\\x0aline2\\u009bX \xc3\xbc\n"))
		fail_msg("halt reason not escaped on one line:\n%s", out);
	CLI(0, "release", "list");
	assert_null(strchr(out, 0x1b));
	assert_non_null(strstr(out, "bad\\x1b[2J\\x0aline2"));
	CLI(0, "release", "status", "1", "--json");
	assert_non_null(strstr(out, "\"halt_reason\": \"operator: bad\\u001B[2J\\nline2"));
	CLI(0, "release", "resume", "1");
	CLI(0, "release", "hold", "1", "--reason", "weekend");
	assert_non_null(strstr(out, "held"));
	CLI(0, "release", "resume", "1");
	CLI(0, "release", "list");
	assert_non_null(strstr(out, "packs/rules-cli.rfp"));
	CLI(0, "release", "rollback", "1", "--json");
	assert_non_null(strstr(out, "\"status\": \"rolled-back\""));
	CLI(1, "release", "status", "7");

	/* The audit trail from the CLI: newest first, who did what and why, paged, filtered. */
	char who[32], want[160];
	admin_id(e, who);
	CLI(0, "audit", "--help");
	assert_non_null(strstr(out, "usage: ringfence audit"));
	CLI(2, "audit", "--limit", "0");
	CLI(2, "audit", "--release", "x");
	CLI(0, "audit", "--release", "1");
	snprintf(want, sizeof(want), "Z  %s  release.rollback release 1 'packs/rules-cli.rfp'",
		 who);
	if (!strstr(out, want))
		fail_msg("no '%s' in:\n%s", want, out);
	snprintf(want, sizeof(want),
		 "Z  %s  release.halt     release 1 'packs/rules-cli.rfp': operator: cli test",
		 who);
	if (!strstr(out, want))
		fail_msg("no '%s' in:\n%s", want, out);
	assert_null(strstr(out, "tenant.create")); /* not about release 1 */
	CLI(0, "audit", "--limit", "2");
	assert_non_null(strstr(out, "(older entries: ringfence audit --before "));
	CLI(0, "audit", "--json");
	assert_non_null(strstr(out, "\"action\": \"tenant.create\""));
	assert_non_null(strstr(out, "\"subject\": \"foxtrot\""));

	/* A wrong token is refused; an unreachable server is exit 2. */
	char bad[400];
	snprintf(bad, sizeof(bad), "%s/bad-token", e->dir);
	assert_int_equal(rf_file_write_atomic(bad,
					      "rfa_00000000000000000000000000000000000000000000"
					      "00000000000000000000\n",
					      69, 0600),
			 0);
	CLI(1, "release", "list", "--token-file", bad);
	CLI(2, "release", "list", "--server", "http://127.0.0.1:1");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_enroll_checkin_report_halt_resume, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_cross_tenant_denied, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_pack_checked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transit_rejections_in_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reports_bounded_per_device, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reports_wait_without_a_thread, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reenrolment_does_not_lock_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_requests_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_repo_metrics_dashboard, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gate_halts_release, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit_trail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_leaving_halted_release_is_obeying, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_kill9_keeps_acknowledged_reports, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silence_after_intent_halts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timestamp_kept_fresh, setup_short_timestamp,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_cli_operator_commands, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unchanged_checkins_write_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ring_opens_after_canary_healthy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_step_admitting_nobody_advances, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_counts_against_release_left, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_downtime_is_not_silence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failure_attribution, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_health_survives_kill9, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_non_utf8_path_gets_4xx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transport_refuses_ambiguous_requests, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_request_header_capacity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_content_type_exact, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_known_members_typed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_clients_do_not_lock_out_others, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_postgresql_down_and_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup_onto_database_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schedule_rings_checked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_first_start_leaves_nothing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_database_lost_or_damaged_refused, setup, teardown),
	};

	if (argc < 3) {
		fprintf(stderr, "usage: test-server PATH-TO-ringfenced PATH-TO-ringfence\n");
		return 2;
	}
	ringfenced_path = argv[1];
	ringfence_path = argv[2];
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (getenv("RF_TEST_FILTER")) /* e.g. RF_TEST_FILTER='test_backup*': one test by hand */
		cmocka_set_test_filter(getenv("RF_TEST_FILTER"));
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return r;
}
