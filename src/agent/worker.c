/*
 * The evaluation worker (see worker.h). It reads the pack from the store, re-checks its hash,
 * loads it with rf_engine_load against the run's manifest (manifests.h) (P1: the verifier runs again
 * here, in the process that will use the result), then evaluates JSON event lines from the
 * events source and writes alerts as JSON lines. The complete lines of each read() are evaluated
 * in batches of up to RF_ENGINE_BATCH_MAX (rf_engine_eval_batch, docs/agent.md "Evaluation"),
 * never waiting for more input to fill one; alerts, correlations and counters come out exactly as
 * one event at a time would give them, in the same order. Idle, it sleeps in poll() with no timeout
 * unless it owes the supervisor a stats line or a correlation window is open (then it wakes each
 * second to decide it as time passes), so an idle agent costs no CPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/worker.h"
#include "common/util.h"
#include "ringfence/content.h"
#include "ringfence/correlate.h"
#include "ringfence/limits.h"

#define CLIENTS_MAX 8

struct reader {
	int fd;
	size_t len;
	bool skipping; /* inside a line longer than the limit: drop until its newline */
	uint8_t *buf;
};

struct worker {
	const struct rf_worker_args *a;
	int alerts_fd; /* a->alerts_fd, then the file the supervisor passed after a rotation */
	struct rf_engine *engine;
	struct rf_engine_scratch *scratch;
	uint8_t *scratch_buf;
	uint64_t events, alerts, bad, reported_events, reported_alerts, reported_at_ns;
	uint64_t reported_corr_dropped, reported_bad;
	uint64_t alerts_lost, reported_lost; /* alerts --alerts could not take (lost_errno why) */
	/* events that reached correlation with a time field that does not parse (their time was
	 * the arrival time): the count, and the first of each report period as a sample */
	uint64_t time_unparsed, reported_time_unparsed;
	const char *time_field;
	char time_sample[RF_AGENT_TIME_SAMPLE_MAX + 1];
	/* The run's manifest, kept for each event type's time field ("time", docs/sigma.md), and
	 * the last type looked up; matches of events without any time field (arrival time used);
	 * the correlations' late, future and skipped counts and that one as last reported. */
	struct rf_manifest *m;
	char tf_type[RF_NAME_MAX];
	size_t tf_len;
	const char *tf_field;
	uint64_t time_missing, reported_counts[4];
	int lost_errno;
	/* The batch being filled (see queue_line): its events, whose strings point into the
	 * reader's buffer or into scratch_buf (the arena, arena_used bytes taken); the alerts of an
	 * evaluated batch, (event, rule) in the engine's order, until they are written. */
	size_t n_ev, batch_max, arena_used;
	struct rf_event *ev; /* [RF_ENGINE_BATCH_MAX] */
	const struct rf_event *evp[RF_ENGINE_BATCH_MAX];
	bool refused[RF_ENGINE_BATCH_MAX];
	uint32_t *bhit_rule;
	uint8_t *bhit_ev;
	size_t n_bhits, max_bhits;
	/* Correlations (docs/sigma.md): the rules that matched this event, fed after it. Events
	 * that carry their own time go to corr; events timed by their arrival (no time field, or
	 * one that does not parse) to corr_arrival, made at the first such event: each has its
	 * own stream clock, so a timeless line at the wall clock never makes a log's own-time
	 * events, minutes behind it, late (review 6-2). */
	struct rf_corr *corr, *corr_arrival;
	uint8_t corr_key[16];
	size_t *hits, n_hits, max_hits;
};

/* The two evaluators' counters together. */
static void corr_stats(const struct worker *w, struct rf_corr_stats *ret)
{
	struct rf_corr_stats b;

	rf_corr_stats(w->corr, ret);
	if (!w->corr_arrival)
		return;
	rf_corr_stats(w->corr_arrival, &b);
	ret->groups_dropped += b.groups_dropped;
	ret->entries_dropped += b.entries_dropped;
	ret->late += b.late;
	ret->future += b.future;
	ret->skipped += b.skipped;
}

static uint64_t corr_dropped(const struct worker *w)
{
	struct rf_corr_stats cs;

	corr_stats(w, &cs);
	return cs.groups_dropped + cs.entries_dropped;
}

/* The field the manifest names for ev's type as its time (NULL: none), the last type's kept. */
static const char *time_field_of(struct worker *w, const struct rf_event *ev)
{
	if (!ev->type || ev->type_len > sizeof(w->tf_type))
		return NULL;
	if (ev->type_len != w->tf_len || memcmp(ev->type, w->tf_type, ev->type_len)) {
		memcpy(w->tf_type, ev->type, ev->type_len);
		w->tf_len = ev->type_len;
		w->tf_field = rf_manifest_event_time(w->m, ev->type, ev->type_len);
	}
	return w->tf_field;
}

static void write_alert(struct worker *w, json_t *o)
{
	char *t;

	if (!o)
		return;
	t = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!t)
		return;
	size_t n = strlen(t);
	t[n] = '\n'; /* replaces the NUL; written with its length */
	for (size_t off = 0; off <= n;) {
		ssize_t wr = write(w->alerts_fd, t + off, n + 1 - off);
		if (wr < 0 && errno == EINTR)
			continue;
		if (wr <= 0) { /* a closed pipe, a full disk: lost, counted and reported */
			w->alerts_lost++;
			w->lost_errno = wr < 0 ? errno : EIO;
			break;
		}
		off += (size_t)wr;
	}
	free(t);
}

static void on_corr_alert(void *ud, const struct rf_corr_alert *a)
{
	struct worker *w = ud;
	json_t *o, *g;

	w->alerts++;
	if (w->alerts_fd < 0)
		return;
	g = json_object();
	for (size_t i = 0; g && i < a->n_group; i++)
		json_object_set_new(g, a->group_names[i],
				    json_stringn((const char *)a->group_values[i], a->group_lens[i]));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "correlation", a->id,
		      "title", a->title, "level", a->level, "author", a->author ? a->author : "",
		      "type", a->type, "count", (json_int_t)a->count,
		      "event_time_ms", (json_int_t)a->time_ms, "time", (json_int_t)rf_now_wall(),
		      "group", g ? g : json_object());
	write_alert(w, o);
}

/* Rule rule_index matched the event being written out: kept for its correlations, written. */
static void on_alert(struct worker *w, size_t rule_index)
{
	struct rf_rule_info ri, *rule = &ri;
	json_t *o;

	if (rf_corr_rule_used(w->corr, rule_index) &&
	    w->n_hits < w->max_hits)
		w->hits[w->n_hits++] = rule_index;
	if (rf_corr_rule_silent(w->corr, rule_index))
		return; /* only its correlations speak for it (Sigma's generate: false) */
	w->alerts++;
	if (w->alerts_fd < 0 || rf_pack_rule(rf_engine_pack(w->engine), rule_index, &ri) < 0)
		return;
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "rule", rule->id ? rule->id : "",
		      "title", rule->title ? rule->title : "", "level", rule->level ? rule->level : "",
		      "author", rule->author ? rule->author : "", "event",
		      rule->event ? rule->event : "", "index", (json_int_t)rule_index,
		      "time", (json_int_t)rf_now_wall());
	write_alert(w, o);
}

/* The event has a time field that does not parse: its correlations run on arrival time. Counted;
 * the first of each report period is kept as the sample the supervisor's warning shows. */
static void time_unparsed(struct worker *w, const struct rf_event *ev)
{
	const uint8_t *v = NULL;
	size_t n = 0;

	if (w->time_unparsed++ != w->reported_time_unparsed)
		return;
	if (rf_corr_event_time_field_in(ev, time_field_of(w, ev), &w->time_field, &v, &n) < 0) {
		w->time_field = "?";
		n = 0;
	}
	rf_diag_quote(w->time_sample, sizeof(w->time_sample), v, n);
}

/* The wall clock in milliseconds (event times and correlation windows are in milliseconds). */
static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The engine's alert for event event_index of the batch: kept, in the engine's order (event, then
 * pack order), until the batch's events are written out in order. A batch holds at most
 * batch_max x rules alerts (a rule matches an event once), the room made at load. */
static void on_batch_alert(void *ud, size_t event_index, size_t rule_index,
			   const struct rf_rule_info *rule)
{
	struct worker *w = ud;

	(void)rule;
	if (w->n_bhits == w->max_bhits)
		return;
	w->bhit_ev[w->n_bhits] = (uint8_t)event_index;
	w->bhit_rule[w->n_bhits++] = (uint32_t)rule_index;
}

/* Feed event ev, evaluated, to the correlations with the rules it matched (w->hits). */
static void correlate(struct worker *w, const struct rf_event *ev)
{
	/* The event's own time when it carries one, else the wall clock at arrival. */
	int64_t t, now = wall_ms();
	struct rf_corr *c = w->corr;

	int tr = rf_corr_event_time_in(ev, time_field_of(w, ev), &t);
	if (tr < 0) {
		if (tr == -EINVAL)
			time_unparsed(w, ev);
		else if (w->n_hits) /* a match timed by its arrival: counted (time_missing) */
			w->time_missing++;
		t = now;
		if (!w->corr_arrival &&
		    rf_corr_new(rf_engine_pack(w->engine), w->corr_key, &w->corr_arrival) < 0)
			w->corr_arrival = NULL; /* out of memory: one clock for both, as before */
		if (w->corr_arrival)
			c = w->corr_arrival;
	}
	rf_corr_set_clock(c, now); /* times far beyond it are dropped */
	(void)rf_corr_event(c, ev, t, w->hits, w->n_hits, on_corr_alert, w);
}

/* Evaluate the batch (rf_engine_eval_batch), then write it out event by event in order, as one
 * event at a time would: its rule alerts (pack order), then its correlations' alerts. A refused
 * event (a value over RF_EVENT_VALUE_MAX) is a dropped line, as before; should the engine fail
 * (-EIO: Vectorscan could not scan), every event of the batch is, and none of its alerts is
 * written. */
static void flush_batch(struct worker *w)
{
	size_t n = w->n_ev, h = 0;
	int r;

	if (n == 0)
		return;
	w->n_ev = 0;
	w->arena_used = 0;
	w->n_bhits = 0;
	r = rf_engine_eval_batch(w->engine, w->evp, n, w->scratch, on_batch_alert, w, w->refused);
	if (r < 0) {
		w->bad += n;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		w->n_hits = 0;
		for (; h < w->n_bhits && w->bhit_ev[h] == i; h++)
			on_alert(w, w->bhit_rule[h]);
		if (w->refused[i]) {
			w->bad++;
			continue;
		}
		w->events++;
		if (rf_corr_count(w->corr))
			correlate(w, &w->ev[i]);
	}
}

/* Parse one complete line into the batch's next event; evaluate the batch when it is full. Its
 * unescaped strings go to the arena, which is as large as the reader's buffer: a line's strings
 * are never longer than the line, so the lines of one read always fit; should they not, the
 * batch is evaluated first. */
static void queue_line(struct worker *w, const uint8_t *line, size_t n)
{
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
		n--;
	if (n == 0)
		return;
	if (n > RF_AGENT_EVENT_LINE_MAX - w->arena_used)
		flush_batch(w);
	if (rf_event_parse(line, n, w->scratch_buf + w->arena_used,
			   RF_AGENT_EVENT_LINE_MAX - w->arena_used, &w->ev[w->n_ev], NULL) < 0) {
		w->bad++;
		return;
	}
	w->arena_used += n;
	if (++w->n_ev == w->batch_max)
		flush_batch(w);
}

/* Read what is available; split into lines, evaluated in batches (queue_line), the last one
 * before the unfinished line moves to the buffer's start. Returns 0, or 1 at end of input. */
static int pump(struct worker *w, struct reader *rd)
{
	ssize_t got;

	if (rd->len == RF_AGENT_EVENT_LINE_MAX) { /* a line over the limit: drop it */
		rd->len = 0;
		rd->skipping = true;
		w->bad++;
	}
	got = read(rd->fd, rd->buf + rd->len, RF_AGENT_EVENT_LINE_MAX - rd->len);
	if (got < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : 1;
	if (got == 0)
		return 1;
	size_t end = rd->len + (size_t)got, start = 0;
	for (size_t i = rd->len; i < end; i++) {
		const uint8_t *nl = memchr(rd->buf + i, '\n', end - i);
		if (!nl)
			break;
		i = (size_t)(nl - rd->buf);
		if (!rd->skipping)
			queue_line(w, rd->buf + start, i - start);
		rd->skipping = false;
		start = i + 1;
	}
	flush_batch(w); /* its events point into rd->buf; and never wait for more input */
	memmove(rd->buf, rd->buf + start, end - start);
	rd->len = end - start;
	return 0;
}

static struct reader *reader_new(int fd)
{
	struct reader *rd = calloc(1, sizeof(*rd));

	if (!rd)
		return NULL;
	rd->buf = malloc(RF_AGENT_EVENT_LINE_MAX);
	if (!rd->buf) {
		free(rd);
		return NULL;
	}
	rd->fd = fd;
	return rd;
}

static void reader_free(struct reader *rd)
{
	if (!rd)
		return;
	if (rd->fd >= 0)
		close(rd->fd);
	free(rd->buf);
	free(rd);
}

static void report_stats(struct worker *w)
{
	uint64_t cd = corr_dropped(w);
	struct rf_corr_stats cs;

	corr_stats(w, &cs);
	uint64_t counts[4] = {cs.late, cs.future, cs.skipped, w->time_missing};
	bool counts_new = memcmp(counts, w->reported_counts, sizeof(counts)) != 0;

	if (!counts_new && w->events == w->reported_events && w->alerts == w->reported_alerts &&
	    cd == w->reported_corr_dropped && w->bad == w->reported_bad &&
	    w->alerts_lost == w->reported_lost && w->time_unparsed == w->reported_time_unparsed)
		return;
	/* "time-unparsed N FIELD SAMPLE": N, the events whose time FIELD did not parse, cumulative;
	 * SAMPLE, one such value (quoted: printable ASCII, to the end of the line) */
	if (w->time_unparsed != w->reported_time_unparsed)
		rf_fd_say(w->a->status_fd, "time-unparsed %llu %s %s",
			  (unsigned long long)w->time_unparsed, w->time_field, w->time_sample);
	w->reported_time_unparsed = w->time_unparsed;
	/* "corr-counts LATE FUTURE SKIPPED MISSING", cumulative: the events the correlations
	 * dropped as late or in the future, the matches without a group-by field, the matches of
	 * events without a time field (docs/sigma.md "Time") */
	if (counts_new)
		rf_fd_say(w->a->status_fd, "corr-counts %llu %llu %llu %llu",
			  (unsigned long long)counts[0], (unsigned long long)counts[1],
			  (unsigned long long)counts[2], (unsigned long long)counts[3]);
	memcpy(w->reported_counts, counts, sizeof(counts));
	/* "alerts-lost N REASON": N, the alerts the --alerts destination refused, cumulative */
	if (w->alerts_lost != w->reported_lost)
		rf_fd_say(w->a->status_fd, "alerts-lost %llu %s", (unsigned long long)w->alerts_lost,
			  strerror(w->lost_errno));
	w->reported_lost = w->alerts_lost;
	w->reported_at_ns = rf_now_mono_ns();
	/* "stats E A [C [B]]": B, the lines dropped here (malformed, over a limit), cumulative */
	if (w->bad)
		rf_fd_say(w->a->status_fd, "stats %llu %llu %llu %llu",
			  (unsigned long long)w->events, (unsigned long long)w->alerts,
			  (unsigned long long)cd, (unsigned long long)w->bad);
	else if (cd)
		rf_fd_say(w->a->status_fd, "stats %llu %llu %llu", (unsigned long long)w->events,
			  (unsigned long long)w->alerts, (unsigned long long)cd);
	else
		rf_fd_say(w->a->status_fd, "stats %llu %llu", (unsigned long long)w->events,
			  (unsigned long long)w->alerts);
	w->reported_events = w->events;
	w->reported_alerts = w->alerts;
	w->reported_corr_dropped = cd;
	w->reported_bad = w->bad;
}

/* A followed --events FILE at its end (a->events_follow): truncated below what was read (a
 * log emptied by `: > FILE` or copytruncate), it is read again from its start; replaced at
 * its path (renamed away, a new file there), the agent says so once per new file: it keeps the
 * file it has open (the log: source follows rotation). Told to the supervisor, which logs it;
 * the rotation check needs events_path. *seen: the file last seen at the path. */
static void follow_check(struct worker *w, struct reader *rd, struct stat *seen)
{
	struct stat fs, ps;
	off_t at = lseek(rd->fd, 0, SEEK_CUR);

	if (fstat(rd->fd, &fs) < 0)
		return;
	if (at > 0 && fs.st_size < at) {
		lseek(rd->fd, 0, SEEK_SET);
		rd->len = 0;
		rd->skipping = false;
		rf_fd_say(w->a->status_fd,
			  "events-file truncated to %lld bytes below the %lld read: reading it "
			  "again from its start",
			  (long long)fs.st_size, (long long)at);
	}
	if (!w->a->events_path || stat(w->a->events_path, &ps) < 0)
		return;
	if ((ps.st_dev != fs.st_dev || ps.st_ino != fs.st_ino) &&
	    (ps.st_dev != seen->st_dev || ps.st_ino != seen->st_ino))
		rf_fd_say(w->a->status_fd,
			  "events-file another file is at this path now (rotated?): still "
			  "reading the one opened at start; restart the agent, or use "
			  "--events log:EVENT=PATH, which follows rotation");
	*seen = ps;
}

/* The supervisor's message on the status socket: a new --alerts file (SCM_RIGHTS) after a
 * rotation, written to from now on; the old one is closed (the rotated file keeps what it has).
 * Returns 1 when the supervisor is gone (the socket closed or broken: not polled again), else 0. */
static int take_alerts_fd(struct worker *w)
{
	char one;
	struct iovec iov = {.iov_base = &one, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t n = recvmsg(w->a->status_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n == 0)
		return 1;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : 1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		int fd;
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len != CMSG_LEN(sizeof(int)))
			continue;
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
		if (w->alerts_fd >= 0)
			close(w->alerts_fd);
		w->alerts_fd = fd;
		rf_fd_say(w->a->status_fd, "alerts-reopened");
	}
	return 0;
}

/* Events per batch: RF_ENGINE_BATCH_MAX, or RINGFENCE_WORKER_BATCH (1..RF_ENGINE_BATCH_MAX),
 * which exists for the benchmark (bench/agent/eval.sh: 1 is one event at a time) and tests. */
static size_t batch_size(void)
{
	const char *v = getenv("RINGFENCE_WORKER_BATCH");
	uint64_t b;

	if (v && rf_parse_u64(v, &b) == 0 && b >= 1 && b <= RF_ENGINE_BATCH_MAX)
		return (size_t)b;
	return RF_ENGINE_BATCH_MAX;
}

static bool is_listening_socket(int fd)
{
	int v = 0;
	socklen_t l = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0 && v;
}

static void fault_check(const char *var, const uint8_t *hash, bool whole_agent)
{
	const char *want = getenv(var);
	char hex[65];

	if (!want)
		return;
	rf_hex_encode(hash, 32, hex);
	if (strcmp(want, hex) != 0)
		return;
	if (whole_agent)
		kill(getppid(), SIGKILL);
	raise(SIGKILL);
}

/*
 * Compiling a pack's matchers touches megabytes of Vectorscan's compiler (code and heap) that the
 * worker never needs again: an idle worker that compiled kept ~4.3 MiB of libhs resident, one
 * that loaded the same pack from the matcher cache ~1.9 MiB (docs/agent.md, figures). So when
 * the cache is missing, a child process compiles the pack and writes the cache, and exits; the
 * worker then loads from the cache like a restart. If the child fails in any way (no cache could
 * be written, it crashed, it could not be started), the worker's own rf_engine_load_cached
 * compiles as it always did: the answer never depends on this step, only the worker's size.
 */
static void compile_in_child(const uint8_t *pack, size_t plen, const struct rf_manifest *m,
			     const char *cache)
{
	struct stat st;
	int status;
	pid_t pid;

	if (stat(cache, &st) == 0)
		return; /* a restart: the cache is there (rf_engine_load_cached checks it) */
	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		struct rf_engine *e = NULL;
		struct rf_diag d = {0};
		int wrote = -1;
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the worker */
		if (getppid() == 1)
			_exit(1);
		int r = rf_engine_load_cached(pack, plen, m, cache, &e, &wrote, &d);
		_exit(r == 0 && wrote == 0 ? 0 : 1); /* no need to free: the process ends */
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

_Noreturn void rf__agent_worker_main(const struct rf_worker_args *a)
{
	struct worker w = {.a = a, .alerts_fd = a->alerts_fd};
	struct rf_manifest *m = NULL;
	struct rf_diag d = {0};
	struct reader *src = NULL, *clients[CLIENTS_MAX] = {0};
	uint8_t *pack = NULL, got[32];
	size_t plen;
	bool listening = false, src_eof = false, supervisor_gone = false;
	struct stat followed = {0}; /* the file last seen at events_path (follow) */
	int r;

	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	r = rf_file_read(a->pack_path, RF_FILE_MAX, &pack, &plen);
	if (r < 0) {
		/* "-local": the device's store failed, not the content (a report's cause) */
		rf_fd_say(a->status_fd, "load-failed-local %s: %s", a->pack_path, rf_strerror(r));
		_exit(3);
	}
	rf_sha256(pack, plen, got);
	if (memcmp(got, a->hash, 32) != 0) {
		rf_fd_say(a->status_fd, "load-failed-local %s: bytes do not match their hash",
		    a->pack_path);
		_exit(3);
	}
	/* The matchers are cached beside the pack (packs/<sha256>.hsdb, the store's garbage
	 * collection removes it with the pack), so a restart does not recompile them. */
	char cache[PATH_MAX];
	size_t pl = strlen(a->pack_path);
	if (pl > 4 && !strcmp(a->pack_path + pl - 4, ".rfp") && pl + 1 < sizeof(cache))
		snprintf(cache, sizeof(cache), "%.*s.hsdb", (int)(pl - 4), a->pack_path);
	else
		snprintf(cache, sizeof(cache), "%s.hsdb", a->pack_path);
	if ((r = rf_manifest_parse(a->manifest, a->manifest_len, &m, &d)) == 0)
		compile_in_child(pack, plen, m, cache);
	if (r < 0 ||
	    (r = rf_engine_load_cached(pack, plen, m, cache, &w.engine, NULL, &d)) < 0 ||
	    (r = rf_engine_scratch_new(w.engine, &w.scratch)) < 0) {
		rf_fd_say(a->status_fd, "load-failed %s (%s)", rf_strerror(r), d.first);
		_exit(3);
	}
	free(pack);
	w.m = m; /* kept: each event type's time field; freed with the process */
	/* Building the matchers needs far more memory than they keep: give the compile-time peak
	 * back to the system so an idle agent stays small (docs/agent.md, figures). */
	malloc_trim(0);
	fault_check("RINGFENCE_FAULT_CRASH_ON_LOAD", a->hash, true);
	fault_check("RINGFENCE_FAULT_WORKER_CRASH_ON_LOAD", a->hash, false);
	w.scratch_buf = malloc(RF_AGENT_EVENT_LINE_MAX);
	uint8_t key[16] = {0};
	if (getrandom(key, sizeof(key), GRND_NONBLOCK) != (ssize_t)sizeof(key)) {
		uint64_t x[2] = {rf_now_mono_ns(), (uint64_t)rf_now_wall() ^ (uint64_t)getpid()};
		memcpy(key, x, sizeof(key));
	}
	memcpy(w.corr_key, key, sizeof(w.corr_key));
	struct rf_pack_summary ps;
	rf_pack_summary(rf_engine_pack(w.engine), &ps);
	w.max_hits = ps.n_rules;
	w.hits = malloc((ps.n_rules ? ps.n_rules : 1) * sizeof(*w.hits));
	/* A batch's alerts: at most one per rule and event (RF_PACK_RULES_MAX x
	 * RF_ENGINE_BATCH_MAX fits a size_t); pages are touched only as alerts come. */
	w.batch_max = batch_size();
	w.max_bhits = (ps.n_rules ? ps.n_rules : 1) * w.batch_max;
	w.bhit_rule = malloc(w.max_bhits * sizeof(*w.bhit_rule));
	w.bhit_ev = malloc(w.max_bhits);
	/* not calloc: zeroing would make its pages resident in an idle worker (rf_event_parse
	 * sets what it uses) */
	w.ev = malloc(RF_ENGINE_BATCH_MAX * sizeof(*w.ev));
	for (size_t i = 0; w.ev && i < RF_ENGINE_BATCH_MAX; i++)
		w.evp[i] = &w.ev[i];
	if (!w.scratch_buf || !w.hits || !w.bhit_rule || !w.bhit_ev || !w.ev ||
	    rf_corr_new(rf_engine_pack(w.engine), key, &w.corr) < 0) {
		rf_fd_say(a->status_fd, "load-failed out of memory");
		_exit(3);
	}
	rf_fd_say(a->status_fd, "loaded");

	if (a->events_fd >= 0) {
		listening = is_listening_socket(a->events_fd);
		if (!listening && !(src = reader_new(a->events_fd)))
			_exit(4);
	}
	for (;;) {
		struct pollfd pf[CLIENTS_MAX + 2];
		nfds_t n = 0, si = 0;
		int timeout = -1;

		if (listening) {
			pf[n++] = (struct pollfd){.fd = a->events_fd, .events = POLLIN};
			for (unsigned i = 0; i < CLIENTS_MAX; i++)
				if (clients[i])
					pf[n++] =
					    (struct pollfd){.fd = clients[i]->fd, .events = POLLIN};
		} else if (src && !src_eof) {
			pf[n++] = (struct pollfd){.fd = src->fd, .events = POLLIN};
		} else if (src && a->events_follow) {
			timeout = 1000; /* a file at EOF: look again in a second */
		}
		if (w.events != w.reported_events || w.alerts != w.reported_alerts ||
		    w.bad != w.reported_bad || rf_corr_waiting(w.corr) ||
		    (w.corr_arrival && rf_corr_waiting(w.corr_arrival)))
			timeout = timeout < 0 || timeout > 1000 ? 1000 : timeout;
		if (!supervisor_gone) { /* last: the other indices stay as they were */
			si = n;
			pf[n++] = (struct pollfd){.fd = a->status_fd, .events = POLLIN};
		}
		r = poll(pf, n, timeout);
		/* A bounded correlation's window is decided when time passes it, also when the
		 * log has gone quiet (docs/sigma.md): at most a second late, O(1) when none is due. */
		if (rf_corr_waiting(w.corr))
			(void)rf_corr_idle(w.corr, wall_ms(), on_corr_alert, &w);
		if (w.corr_arrival && rf_corr_waiting(w.corr_arrival))
			(void)rf_corr_idle(w.corr_arrival, wall_ms(), on_corr_alert, &w);
		if (r > 0 && !supervisor_gone && (pf[si].revents & (POLLIN | POLLHUP | POLLERR))) {
			supervisor_gone = take_alerts_fd(&w) == 1;
			if (--r == 0)
				continue;
		}
		if (r < 0 && errno != EINTR)
			_exit(4);
		if (r <= 0) {
			report_stats(&w);
			if (src && src_eof && a->events_follow) {
				follow_check(&w, src, &followed);
				src_eof = false;
			}
			continue;
		}
		if (listening) {
			unsigned k = 1;
			if (pf[0].revents & POLLIN) {
				int c = accept4(a->events_fd, NULL, NULL, SOCK_CLOEXEC);
				for (unsigned i = 0; c >= 0 && i < CLIENTS_MAX; i++)
					if (!clients[i]) {
						clients[i] = reader_new(c);
						c = clients[i] ? -1 : c;
						break;
					}
				if (c >= 0)
					close(c); /* too many producers */
			}
			for (unsigned i = 0; i < CLIENTS_MAX; i++) {
				if (!clients[i])
					continue;
				if (k < n && pf[k].fd == clients[i]->fd && pf[k].revents) {
					if (pump(&w, clients[i])) {
						reader_free(clients[i]);
						clients[i] = NULL;
					}
				}
				k++;
			}
		} else if (src && !src_eof && (pf[0].revents)) {
			while (!src_eof) {
				if (pump(&w, src))
					src_eof = true;
				else if (!a->events_follow)
					break;
			}
		}
		/* stats at most once a second, also under a steady stream of events */
		if (rf_now_mono_ns() - w.reported_at_ns >= 1000000000u)
			report_stats(&w);
	}
}
