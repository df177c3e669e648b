/*
 * ringfence-agent's supervisor loop. It owns the guard's steps (every one made durable by
 * rf_store_apply BEFORE the load it asks for: write-ahead, P4/P8), the worker child that
 * evaluates content (worker.c) and its status lines, and the timing of check-ins. It never
 * loads content itself, so content can neither kill nor stall it and its update channel (P5).
 * One thread; it sleeps in poll() on the signal pipe and the worker's status socket until the
 * next check-in, start or probation deadline, or the next look at a rotated --alerts FILE
 * (alerts.c: once a second, and at SIGHUP).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/worker.h"
#include "common/log.h"

static volatile sig_atomic_t got_term, got_hup;
static int sigpipe_r = -1, sigpipe_w = -1;

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (sig == SIGTERM || sig == SIGINT)
		got_term = 1;
	if (sig == SIGHUP)
		got_hup = 1;
	if (sigpipe_w >= 0 && write(sigpipe_w, &c, 1) < 0) {
		/* full pipe: a wakeup is already pending */
	}
	errno = saved;
}

/* ---- the worker -------------------------------------------------------------------------- */

static void worker_stop(struct agent *ag)
{
	int status;

	ag->start_pending = false;
	if (ag->worker <= 0)
		return;
	kill(ag->worker, SIGTERM);
	for (unsigned i = 0; i < 200; i++) { /* 2 s, then SIGKILL */
		if (waitpid(ag->worker, &status, WNOHANG) == ag->worker)
			goto gone;
		usleep(10000);
	}
	kill(ag->worker, SIGKILL);
	waitpid(ag->worker, &status, 0);
gone:
	ag->worker = 0;
	if (ag->status_fd >= 0)
		close(ag->status_fd);
	ag->status_fd = -1;
	ag->status_len = 0;
	ag->worker_loaded = false;
}

static int worker_start(struct agent *ag, const uint8_t *hash)
{
	char hex[65], path[PATH_MAX];
	int p[2];
	pid_t pid;

	worker_stop(ag);
	hex32(hash, hex);
	snprintf(path, sizeof(path), "%s/packs/%s.rfp", rf_store_dir(ag->st), hex);
	/* The status channel: lines from the worker; to it, a new --alerts file's descriptor
	 * after a rotation (alerts.c): a socket, as only a socket carries descriptors. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		size_t ml;
		const uint8_t *mb = ag->manifest->bytes(&ml);
		struct rf_worker_args wa = {.pack_path = path,
					    .hash = hash,
					    .manifest = mb,
					    .manifest_len = ml,
					    .events_fd = ag->events_fd,
					    .events_follow = ag->events_follow,
					    .events_path = ag->o.events,
					    .alerts_fd = ag->alerts_fd,
					    .status_fd = p[1]};
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the supervisor (store lock) */
		close(p[0]);
		rf__agent_worker_main(&wa);
	}
	close(p[1]);
	ag->alerts_send_pending = false; /* it has the current --alerts file */
	ag->worker = pid;
	ag->status_fd = p[0];
	ag->worker_loaded = false;
	ag->worker_events = ag->worker_alerts = ag->worker_corr_dropped = ag->worker_bad = 0;
	ag->worker_alerts_lost = ag->worker_time_unparsed = 0;
	memset(ag->worker_counts, 0, sizeof(ag->worker_counts));
	rf_log_info("worker %d: loading %s (%s)", (int)pid, hex, rf_store_pack_name(ag->st, hash));
	return 0;
}

/* ---- guard steps ------------------------------------------------------------------------- */

static void log_action(struct agent *ag, const struct rf_guard_action *a)
{
	char hex[65];

	static const uint8_t zero[32];

	if (memcmp(a->hash, zero, 32) == 0)
		snprintf(hex, sizeof(hex), "(no content)");
	else
		hex32(a->hash, hex);
	switch (a->type) {
	case RF_GUARD_ACT_REPORT:
		if (a->report == RF_GUARD_REPORT_REJECTED)
			break; /* reject() logs it with the verifier's words */
		rf_log(a->report == RF_GUARD_REPORT_QUARANTINED ||
			       a->report == RF_GUARD_REPORT_CRASHED ||
			       a->report == RF_GUARD_REPORT_ROLLED_BACK ||
			       a->report == RF_GUARD_REPORT_REJECTED
			   ? RF_LOG_WARNING
			   : RF_LOG_INFO,
		       "report %s: %s %s (%s, attempt %u/%u)", rf_guard_report_name(a->report), hex,
		       rf_store_pack_name(ag->st, a->hash), rf_guard_reason_name(a->reason),
		       a->attempt, a->limit);
		break;
	case RF_GUARD_ACT_QUARANTINE:
		rf_log_warn("quarantine %s: %s", hex, rf_guard_reason_name(a->reason));
		break;
	case RF_GUARD_ACT_LOAD:
		rf_log_info("load %s %s (attempt %u/%u)", rf_guard_mode_name(a->mode), hex,
			    a->attempt, a->limit);
		break;
	case RF_GUARD_ACT_SAFE_MODE:
		rf_log_warn("safe mode: no content loaded; still checking in for a fix");
		break;
	default:
		break;
	}
}

/* Feed one event to the guard, make it durable, then do what it says. Exits the process if the
 * store cannot be written: loading without the write-ahead record would break P4. */
void rf__agent_feed(struct agent *ag, enum rf_guard_event_type t, const uint8_t *hash,
		    uint64_t events)
{
	struct rf_guard_state g = *rf_store_guard(ag->st);
	struct rf_guard_event ev = {.type = t, .now_ms = now_ms(), .events = events};
	struct rf_guard_actions acts;
	uint8_t cur[32];
	bool has_cur, intent = false;
	int r;

	if (hash)
		memcpy(ev.hash, hash, 32);
	r = rf_guard_step(&ag->o.gcfg, &g, &ev, &acts);
	if (r < 0) {
		rf_log_error("guard: %s: %s", rf_guard_event_name(t), rf_strerror(r));
		return;
	}
	for (unsigned i = 0; i < acts.n; i++) {
		log_action(ag, &acts.a[i]);
		if (acts.a[i].type == RF_GUARD_ACT_REPORT &&
		    acts.a[i].report == RF_GUARD_REPORT_INTENT)
			intent = true;
	}
	size_t nrep = rf_store_report_count(ag->st);
	r = rf_store_apply(ag->st, &g, &acts, rf_now_wall());
	if (r == 0)
		r = rf_store_set_guard(ag->st, &g); /* volatile fields (loaded, run time) too */
	if (r == 0 && ag->local_next) {
		/* The pack's file in the store is unreadable or corrupt (a bit flip on disk): the
		 * failure is the device's, not the content's (docs/protocol.md, Report cause). */
		for (size_t k = nrep; k < rf_store_report_count(ag->st); k++) {
			const struct rf_store_report *rp = rf_store_report_at(ag->st, k);
			if (strcmp(rp->event, "crashed") == 0 ||
			    strcmp(rp->event, "rolled_back") == 0 ||
			    strcmp(rp->event, "quarantined") == 0)
				(void)rf_store_report_cause(ag->st, rp->id, "local");
		}
		r = rf_store_commit(ag->st);
	}
	if (r < 0) {
		rf_log_error("store %s: cannot record the guard's state: %s; stopping (the last "
			     "committed state stays valid)",
			     rf_store_dir(ag->st), rf_strerror(r));
		worker_stop(ag);
		exit(1);
	}
	has_cur = rf_guard_current(&g, cur);
	if (has_cur != ag->has_cur || (has_cur && memcmp(cur, ag->cur, 32) != 0)) {
		rf_store_set_counters(ag->st, 0, 0); /* health belongs to the current content */
		memcpy(ag->cur, cur, 32);
		ag->has_cur = has_cur;
	}
	if (intent)
		rf__agent_flush_reports(ag); /* the server hears "intent" before the load (P7) */
	if (acts.n == 0)
		return;
	const struct rf_guard_action *last = &acts.a[acts.n - 1];
	if (last->type == RF_GUARD_ACT_LOAD) {
		worker_stop(ag);
		ag->start_pending = true;
		memcpy(ag->start_hash, last->hash, 32);
		/* a reload after a crash waits a little (doubling): a crash loop must not spin */
		ag->start_at_ms = now_ms();
		if (t == RF_GUARD_EV_CRASH || t == RF_GUARD_EV_LOAD_FAILED)
			ag->start_at_ms += (uint64_t)RF_AGENT_RESTART_DELAY_MS
					   << (last->attempt > 1 ? last->attempt - 1 : 0);
	} else if (last->type == RF_GUARD_ACT_SAFE_MODE) {
		worker_stop(ag);
	}
}
/* ---- worker status lines ------------------------------------------------------------------ */

/* n more event lines the worker could not evaluate (total: this worker's count): added to the
 * store's events_dropped (status, check-in health); warned at most once a minute, and made
 * durable with the warning (one write a minute, not one per line). */
static void worker_dropped(struct agent *ag, uint64_t n, uint64_t total)
{
	uint64_t t = now_ms();

	rf_store_add_dropped(ag->st, n);
	ag->worker_unwarned += n;
	if (ag->worker_warned_at_ms && t - ag->worker_warned_at_ms < RF_AGENT_SOURCE_WARN_EVERY_MS)
		return;
	rf_log_warn("worker %d: %llu event lines not evaluated since the last warning (malformed "
		    "JSON, or a line or value over its limit); %llu by this worker",
		    (int)ag->worker, (unsigned long long)ag->worker_unwarned,
		    (unsigned long long)total);
	ag->worker_warned_at_ms = t;
	ag->worker_unwarned = 0;
	if (rf_store_commit(ag->st) < 0)
		rf_log_warn("store: cannot record events_dropped");
}

/* "time-unparsed N FIELD SAMPLE" (after the keyword): N events of this worker carried a time
 * FIELD that does not parse, so their correlations ran on arrival time (docs/sigma.md "Time");
 * SAMPLE, one such value, quoted by the worker. Warned at most once a minute. */
static void worker_time_unparsed(struct agent *ag, char *p)
{
	char *field = strchr(p, ' '), *sample;
	uint64_t n, t = now_ms();

	if (!field)
		return;
	*field++ = 0;
	sample = strchr(field, ' ');
	if (!sample)
		return;
	*sample++ = 0;
	if (rf_parse_u64(p, &n) < 0 || n <= ag->worker_time_unparsed)
		return;
	rf_store_add_time_unparsed(ag->st, n - ag->worker_time_unparsed);
	ag->time_unwarned += n - ag->worker_time_unparsed;
	ag->worker_time_unparsed = n;
	if (ag->time_warned_at_ms && t - ag->time_warned_at_ms < RF_AGENT_SOURCE_WARN_EVERY_MS)
		return; /* durable with the next write (status, like correlation_dropped) */
	rf_log_warn("worker %d: %llu events since the last warning have a time that does not parse "
		    "(e.g. %s \"%s\"): their correlations used the arrival time instead; %llu by "
		    "this worker (docs/sigma.md, Time)",
		    (int)ag->worker, (unsigned long long)ag->time_unwarned, field, sample,
		    (unsigned long long)n);
	ag->time_warned_at_ms = t;
	ag->time_unwarned = 0;
	if (rf_store_commit(ag->st) < 0)
		rf_log_warn("store: cannot record time_unparsed");
}

/* "corr-counts LATE FUTURE SKIPPED MISSING" (after the keyword), cumulative per worker: the
 * events its correlations dropped as late or in the future, the matches they did not count (no
 * group-by field), and the matches of events without a time field (docs/sigma.md "Time"). Kept
 * in the store; the drops are warned at most once a minute (a log's clock or time zone wrong
 * makes its correlations dead: this says so). Events without a time are shown by status only:
 * a live source without one is timed rightly by its arrival. */
static void worker_counts(struct agent *ag, char *p)
{
	uint64_t n[RF_STORE_COUNT_N], t = now_ms();
	bool news = false;

	for (int c = 0; c < RF_STORE_COUNT_N; c++) {
		char *sp = strchr(p, ' ');
		if (sp)
			*sp = 0;
		if ((!sp && c + 1 < RF_STORE_COUNT_N) || rf_parse_u64(p, &n[c]) < 0)
			return;
		p = sp ? sp + 1 : p;
	}
	for (int c = 0; c < RF_STORE_COUNT_N; c++) {
		if (n[c] <= ag->worker_counts[c])
			continue;
		rf_store_add_count(ag->st, c, n[c] - ag->worker_counts[c]);
		if (c != RF_STORE_TIME_MISSING) {
			ag->counts_unwarned[c] += n[c] - ag->worker_counts[c];
			news = true;
		}
		ag->worker_counts[c] = n[c];
	}
	if (!news || (ag->counts_warned_at_ms &&
		      t - ag->counts_warned_at_ms < RF_AGENT_SOURCE_WARN_EVERY_MS))
		return; /* durable with the next write (status, like correlation_dropped) */
	uint64_t *u = ag->counts_unwarned;
	if (!u[RF_STORE_CORR_LATE] && !u[RF_STORE_CORR_FUTURE] && !u[RF_STORE_CORR_SKIPPED])
		return;
	rf_log_warn(
	    "worker %d: since the last warning correlations dropped %llu events too late "
	    "(older than the log's newest time by over %u s) and %llu in the future (past "
	    "this host's clock by over %u s: a log's clock or time zone wrong?), and did "
	    "not count %llu matches without their group-by field; %llu, %llu and %llu by "
	    "this worker (docs/sigma.md, Time)",
	    (int)ag->worker, (unsigned long long)u[RF_STORE_CORR_LATE],
	    (unsigned)(RF_CORR_LATE_MS / 1000), (unsigned long long)u[RF_STORE_CORR_FUTURE],
	    (unsigned)(RF_CORR_SKEW_MS / 1000), (unsigned long long)u[RF_STORE_CORR_SKIPPED],
	    (unsigned long long)n[RF_STORE_CORR_LATE], (unsigned long long)n[RF_STORE_CORR_FUTURE],
	    (unsigned long long)n[RF_STORE_CORR_SKIPPED]);
	ag->counts_warned_at_ms = t;
	memset(ag->counts_unwarned, 0, sizeof(ag->counts_unwarned));
	if (rf_store_commit(ag->st) < 0)
		rf_log_warn("store: cannot record the correlations' counts");
}

static void worker_line(struct agent *ag, char *line)
{
	if (strcmp(line, "loaded") == 0) {
		ag->worker_loaded = true;
		rf_log_info("worker %d: loaded", (int)ag->worker);
		rf__agent_feed(ag, RF_GUARD_EV_LOADED, NULL, 0);
	} else if (strncmp(line, "stats ", 6) == 0) {
		char *sp = strchr(line + 6, ' '), *sp2, *sp3;
		uint64_t e, a, cd, bad;
		if (!sp)
			return;
		*sp = 0;
		/* "stats E A [C [B]]": C, the correlation state dropped, and B, the event lines the
		 * worker dropped (malformed, over a limit), are cumulative per worker. */
		if ((sp2 = strchr(sp + 1, ' '))) {
			*sp2 = 0;
			if ((sp3 = strchr(sp2 + 1, ' '))) {
				*sp3 = 0;
				if (rf_parse_u64(sp3 + 1, &bad) == 0 && bad > ag->worker_bad) {
					worker_dropped(ag, bad - ag->worker_bad, bad);
					ag->worker_bad = bad;
				}
			}
			if (rf_parse_u64(sp2 + 1, &cd) == 0 && cd > ag->worker_corr_dropped) {
				rf_store_add_corr_dropped(ag->st, cd - ag->worker_corr_dropped);
				ag->worker_corr_dropped = cd;
			}
		}
		if (rf_parse_u64(line + 6, &e) < 0 || rf_parse_u64(sp + 1, &a) < 0 ||
		    e < ag->worker_events || a < ag->worker_alerts)
			return;
		uint64_t de = e - ag->worker_events, da = a - ag->worker_alerts, te, ta;
		ag->worker_events = e;
		ag->worker_alerts = a;
		rf_store_counters(ag->st, &te, &ta);
		rf_store_set_counters(ag->st, te + de, ta + da);
		rf__agent_feed(ag, RF_GUARD_EV_TICK, NULL, de);
	} else if (strncmp(line, "events-file ", 12) == 0) {
		/* the followed --events FILE was truncated (read again from its start) or replaced */
		rf_log_warn("worker %d: --events %s: %s", (int)ag->worker, ag->o.events, line + 12);
	} else if (strncmp(line, "alerts-lost ", 12) == 0) {
		/* "alerts-lost N REASON": cumulative per worker; warned at most once a minute */
		char *sp = strchr(line + 12, ' ');
		uint64_t n, t = now_ms();
		if (!sp)
			return;
		*sp = 0;
		if (rf_parse_u64(line + 12, &n) < 0 || n <= ag->worker_alerts_lost)
			return;
		rf_store_add_alerts_lost(ag->st, n - ag->worker_alerts_lost);
		ag->alerts_lost_unwarned += n - ag->worker_alerts_lost;
		ag->worker_alerts_lost = n;
		if (ag->alerts_lost_warned_at_ms &&
		    t - ag->alerts_lost_warned_at_ms < RF_AGENT_SOURCE_WARN_EVERY_MS)
			return;
		rf_log_warn("worker %d: %llu alerts could not be written to --alerts since the last "
			    "warning (%s); %llu by this worker",
			    (int)ag->worker, (unsigned long long)ag->alerts_lost_unwarned, sp + 1,
			    (unsigned long long)n);
		ag->alerts_lost_warned_at_ms = t;
		ag->alerts_lost_unwarned = 0;
		if (rf_store_commit(ag->st) < 0) /* made durable with the warning */
			rf_log_warn("store: cannot record alerts_lost");
	} else if (strcmp(line, "alerts-reopened") == 0) {
		rf_log_info("worker %d: writing alerts to the new --alerts %s", (int)ag->worker,
			    ag->o.alerts);
	} else if (strncmp(line, "time-unparsed ", 14) == 0) {
		worker_time_unparsed(ag, line + 14);
	} else if (strncmp(line, "corr-counts ", 12) == 0) {
		worker_counts(ag, line + 12);
	} else if (strncmp(line, "load-failed", 11) == 0) {
		rf_log_error("worker %d: %s", (int)ag->worker, line);
		if (strncmp(line, "load-failed-local", 17) == 0)
			ag->worker_local = true;
	}
}

static void worker_read(struct agent *ag)
{
	ssize_t n = read(ag->status_fd, ag->status_buf + ag->status_len,
			 sizeof(ag->status_buf) - 1 - ag->status_len);
	char *nl;

	if (n <= 0)
		return;
	ag->status_len += (size_t)n;
	ag->status_buf[ag->status_len] = 0;
	while ((nl = memchr(ag->status_buf, '\n', ag->status_len))) {
		*nl = 0;
		worker_line(ag, ag->status_buf);
		if (ag->status_fd < 0)
			return; /* the line made us stop the worker */
		size_t used = (size_t)(nl + 1 - ag->status_buf);
		memmove(ag->status_buf, nl + 1, ag->status_len - used);
		ag->status_len -= used;
	}
	if (ag->status_len == sizeof(ag->status_buf) - 1)
		ag->status_len = 0; /* a line too long: drop it */
}

static void reap(struct agent *ag)
{
	int status;

	if (ag->worker <= 0 || waitpid(ag->worker, &status, WNOHANG) != ag->worker)
		return;
	/* drain what it said before dying (e.g. "loaded") */
	if (ag->status_fd >= 0) {
		worker_read(ag);
		close(ag->status_fd);
		ag->status_fd = -1;
	}
	if (WIFSIGNALED(status))
		rf_log_warn("worker %d died: signal %d", (int)ag->worker, WTERMSIG(status));
	else
		rf_log_warn("worker %d exited with status %d", (int)ag->worker,
			    WEXITSTATUS(status));
	ag->worker = 0;
	ag->status_len = 0;
	ag->local_next = ag->worker_local;
	ag->worker_local = false;
	rf__agent_feed(ag, ag->worker_loaded ? RF_GUARD_EV_CRASH : RF_GUARD_EV_LOAD_FAILED, NULL,
		       0);
	ag->local_next = false;
	ag->worker_loaded = false;
}
/* ---- the loop ----------------------------------------------------------------------------- */

int rf__agent_supervise(struct agent *ag)
{
	int sp[2], r;

	if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) < 0) {
		rf_log_error("pipe: %s", rf_strerror(-errno));
		return 1;
	}
	sigpipe_r = sp[0];
	sigpipe_w = sp[1];
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* logrotate's postrotate: look at --alerts FILE now */
	signal(SIGPIPE, SIG_IGN);

	rf_log_notice("starting: device %s, store %s, server %s, manifest %s (%.12s)",
		      ag->device_id, rf_store_dir(ag->st), ag->o.server, ag->manifest->name,
		      ag->manifest_hash);
	ag->has_cur = rf_guard_current(rf_store_guard(ag->st), ag->cur);
	rf__agent_feed(ag, RF_GUARD_EV_BOOT, NULL, 0);
	/* the first check-in soon, jittered so a fleet restarting together spreads out */
	ag->next_checkin_ms =
	    now_ms() + rnd_between(ag, 0, (uint64_t)(ag->poll < 10 ? ag->poll : 10) * 500);

	while (!got_term && !ag->exit_code) {
		struct pollfd pf[3];
		nfds_t n = 0, wi = 0, si = 0;
		uint64_t t = now_ms(), wake = ag->next_checkin_ms;
		const struct rf_guard_state *g = rf_store_guard(ag->st);
		bool probation =
		    ag->worker_loaded && (g->mode == RF_GUARD_MODE_TRIAL ||
					  (g->mode == RF_GUARD_MODE_LKG && g->lkg_attempts > 0));

		if (ag->start_pending && ag->start_at_ms < wake)
			wake = ag->start_at_ms;
		if (ag->source_restart_at_ms && ag->source_restart_at_ms < wake)
			wake = ag->source_restart_at_ms;
		if (ag->alerts_check_at_ms && ag->alerts_check_at_ms < wake)
			wake = ag->alerts_check_at_ms; /* --alerts FILE: rotated? */
		if (probation && g->run_events >= ag->o.gcfg.probation_events) {
			/* the probation clock runs out even without new events */
			uint64_t due = g->run_since_ms + ag->o.gcfg.probation_ms;
			if (due < wake)
				wake = due;
		}
		pf[n++] = (struct pollfd){.fd = sigpipe_r, .events = POLLIN};
		if (ag->status_fd >= 0) {
			wi = n;
			pf[n++] = (struct pollfd){.fd = ag->status_fd, .events = POLLIN};
		}
		if (ag->source_status_fd >= 0) {
			si = n;
			pf[n++] = (struct pollfd){.fd = ag->source_status_fd, .events = POLLIN};
		}
		r = poll(pf, n, wake > t ? (int)(wake - t > 600000 ? 600000 : wake - t) : 0);
		if (r > 0 && (pf[0].revents & POLLIN)) {
			char buf[64];
			while (read(sigpipe_r, buf, sizeof(buf)) > 0)
				;
		}
		if (got_term)
			break;
		if (wi && ag->status_fd >= 0 && (pf[wi].revents & (POLLIN | POLLHUP)))
			worker_read(ag);
		reap(ag);
		if (si && (pf[si].revents & (POLLIN | POLLHUP)))
			rf__agent_source_read(ag);
		rf__agent_source_reap(ag);
		t = now_ms();
		if (ag->source_restart_at_ms && t >= ag->source_restart_at_ms) {
			ag->source_restart_at_ms = 0;
			if (rf__agent_source_start(ag) < 0) /* logged; try again later */
				ag->source_restart_at_ms = now_ms() + RF_AGENT_SOURCE_RETRY_MS;
		}
		if (got_hup) {
			got_hup = 0;
			rf__agent_alerts_check(ag, true);
		} else {
			rf__agent_alerts_check(ag, false);
		}
		if (probation && g->run_events >= ag->o.gcfg.probation_events &&
		    t >= g->run_since_ms + ag->o.gcfg.probation_ms)
			rf__agent_feed(ag, RF_GUARD_EV_TICK, NULL, 0);
		if (ag->start_pending && t >= ag->start_at_ms) {
			ag->start_pending = false;
			if ((r = worker_start(ag, ag->start_hash)) < 0) {
				rf_log_error("cannot start the worker: %s", rf_strerror(r));
				rf__agent_feed(ag, RF_GUARD_EV_LOAD_FAILED, NULL, 0);
			}
		}
		if (t >= ag->next_checkin_ms)
			rf__agent_checkin(ag);
	}
	return 0;
}

void rf__agent_shutdown(struct agent *ag)
{
	rf__agent_feed(ag, RF_GUARD_EV_SHUTDOWN, NULL, 0);
	worker_stop(ag);
	rf__agent_source_stop(ag);
	if (rf_store_commit(ag->st) < 0)
		rf_log_warn("store: final commit failed");
}
