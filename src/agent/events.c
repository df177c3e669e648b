/*
 * ringfence-agent's event sources: what --events names, opened into the file descriptor the
 * worker reads JSON event lines from (a file followed as it grows, a FIFO, stdin, a listening
 * unix socket, or a host source: "proc" this host's process creation, "audit" its kernel audit
 * records, "proc,audit" both, "log:EVENT=PATH,..." log files it follows). The supervisor opens it
 * once; each worker it starts inherits it, so a worker restart loses no source.
 *
 * A host source runs in its own child (source.h): it reads the kernel (the process connector,
 * enriched from /proc; the audit read-log group) and writes event lines through a bounded queue
 * into a pipe the worker reads. A child, so that neither a check-in (which can hold the
 * supervisor's loop for up to RF_AGENT_HTTP_TIMEOUT_S) nor a worker restart makes the kernel drop
 * events, and so that the source's work never delays the supervisor. It evaluates no content (only
 * the worker does) and says its counters once a second at most; the supervisor adds what was
 * dropped or lost to the store's events_dropped (status, check-in health), restarts a source that
 * died, and warns about drops at most once a minute.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/source.h"
#include "common/log.h"
#include "common/util.h"

#define RF_AGENT_SOURCE_READY_TIMEOUT_MS 5000 /* the child subscribes in < 2 s (its ack timeout)   \
					       */
#define RF_AGENT_SOURCE_RESTART_DELAY_MS 1000
#define RF_AGENT_SOURCE_WARN_EVERY_MS	 60000

/* What is at a unix socket's path before bind: nothing, or a socket nobody listens on (a stale
 * one a previous run left: removed). Anything else is refused, never deleted: a regular file, a
 * directory, a socket another process serves. */
static int unix_path_free(const struct sockaddr_un *sa, struct rf_diag *reterr)
{
	struct stat sb;
	int fd, r;

	if (lstat(sa->sun_path, &sb) < 0)
		return errno == ENOENT ? 0
				       : rf_diag_report(reterr, -errno, "unix:%s: %s", sa->sun_path,
							rf_strerror(-errno));
	if (!S_ISSOCK(sb.st_mode))
		return rf_diag_report(reterr, -EEXIST,
				      "unix:%s: the path exists and is not a socket (%s): not "
				      "replaced; name a path that is free or a stale socket",
				      sa->sun_path,
				      S_ISREG(sb.st_mode)   ? "a regular file"
				      : S_ISDIR(sb.st_mode) ? "a directory"
				      : S_ISLNK(sb.st_mode) ? "a symbolic link"
							    : "a device or FIFO");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? 0 : -errno;
	close(fd);
	if (r == 0)
		return rf_diag_report(reterr, -EADDRINUSE,
				      "unix:%s: another process listens on this socket (another "
				      "agent?): not replaced",
				      sa->sun_path);
	if (r != -ECONNREFUSED)
		return rf_diag_report(reterr, r,
				      "unix:%s: cannot tell whether the socket is in use: %s",
				      sa->sun_path, rf_strerror(r));
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return rf_diag_report(reterr, -errno, "unix:%s: cannot remove the stale socket: %s",
				      sa->sun_path, rf_strerror(-errno));
	return 0;
}

int rf__agent_events_open(struct agent *ag, struct rf_diag *reterr)
{
	const char *e = ag->o.events;
	struct stat sb;

	ag->events_fd = -1;
	ag->source_out_fd = ag->source_status_fd = -1;
	if (!e)
		return 0;
	if (rf_source_known(e)) {
		int p[2], r;
		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		ag->events_fd = p[0];
		ag->source_out_fd = p[1];
		if ((r = rf__agent_source_start(ag)) < 0) {
			close(p[0]);
			close(p[1]);
			ag->events_fd = ag->source_out_fd = -1;
		}
		return r;
	}
	if (strcmp(e, "-") == 0) {
		ag->events_fd = dup(0);
		return ag->events_fd < 0 ? -errno : 0;
	}
	if (strncmp(e, "unix:", 5) == 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int fd, r;
		if (strlen(e + 5) >= sizeof(sa.sun_path))
			return -ENAMETOOLONG;
		strncpy(sa.sun_path, e + 5, sizeof(sa.sun_path) - 1);
		if ((r = unix_path_free(&sa, reterr)) < 0)
			return r;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		ag->events_fd = fd;
		return 0;
	}
	/* a FIFO is opened read-write so it never reports end of input between producers */
	if (stat(e, &sb) == 0 && S_ISFIFO(sb.st_mode))
		ag->events_fd = open(e, O_RDWR | O_CLOEXEC);
	else {
		ag->events_fd = open(e, O_RDONLY | O_CLOEXEC);
		ag->events_follow = true;
	}
	return ag->events_fd < 0 ? -errno : 0;
}
/* ---- the source child ------------------------------------------------------------------------ */

/* Close every descriptor but a and b (the store's lock, the server's sockets, ...). */
static void close_others(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	for (int fd = 3; fd < lo; fd++)
		close(fd);
	for (int fd = lo + 1; fd < hi; fd++)
		close(fd);
	(void)close_range((unsigned)hi + 1, ~0u, 0);
}

static void say_stats(int fd, const struct rf_source_stats *st)
{
	rf_fd_say(fd, "stats %llu %llu %llu %llu %llu %llu %llu %llu", (unsigned long long)st->seen,
		  (unsigned long long)st->emitted, (unsigned long long)st->dropped,
		  (unsigned long long)st->kernel_lost, (unsigned long long)st->partial,
		  (unsigned long long)st->fields_lost, (unsigned long long)st->malformed,
		  (unsigned long long)st->oversize);
}

static _Noreturn void source_main(const char *names, int out, int status)
{
	struct rf_source *sp = NULL;
	struct rf_source_queue *q = NULL;
	struct rf_source_stats st, said = {0};
	struct rf_diag d = {0};
	uint64_t said_at = 0;
	int r, fds[RF_SOURCE_MEMBERS_MAX];
	size_t nfds;

	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	close_others(out, status);
	if ((r = rf_source_open(names, &sp, &d)) < 0) {
		rf_fd_say(status, "failed %d %s", -r, d.first[0] ? d.first : rf_strerror(r));
		_exit(3);
	}
	if (rf_source_queue_new(RF_SOURCE_QUEUE_MAX, &q) < 0) {
		rf_fd_say(status, "failed %d out of memory", ENOMEM);
		_exit(3);
	}
	(void)fcntl(out, F_SETFL, fcntl(out, F_GETFL) | O_NONBLOCK);
	if (rf_source_warning(sp))
		rf_fd_say(status, "warning %s", rf_source_warning(sp));
	rf_fd_say(status, "ready");
	nfds = rf_source_fds(sp, fds);
	struct rf_source_sink sink = rf_source_queue_sink(q);
	for (;;) {
		struct pollfd pf[RF_SOURCE_MEMBERS_MAX + 1];
		uint64_t now;

		for (size_t i = 0; i < nfds; i++)
			pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
		pf[nfds] = (struct pollfd){.fd = out, .events = POLLOUT};
		rf_source_stats(sp, &st);
		bool owe = memcmp(&st, &said, sizeof(st)) != 0;
		if (poll(pf, nfds + (rf_source_queue_len(q) ? 1 : 0), owe ? 1000 : -1) < 0 &&
		    errno != EINTR)
			_exit(4);
		if ((r = rf_source_read(sp, &sink, 256)) < 0) {
			rf_fd_say(status, "failed %d reading %s: %s", -r, rf_source_describe(sp),
			    rf_strerror(r));
			_exit(4);
		}
		if (rf_source_queue_flush(q, out) < 0)
			_exit(4);
		now = rf_now_mono_ns();
		rf_source_stats(sp, &st);
		if (memcmp(&st, &said, sizeof(st)) != 0 && now - said_at >= 1000000000u) {
			say_stats(status, &st);
			said = st;
			said_at = now;
		}
	}
}

int rf__agent_source_start(struct agent *ag)
{
	char line[600];
	size_t len = 0;
	int p[2], r = -ETIMEDOUT;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the supervisor */
		close(p[0]);
		source_main(ag->o.events, ag->source_out_fd, p[1]);
	}
	close(p[1]);
	/* its first line: "ready", or "failed ERRNO why" (no root, no connector, ...) */
	uint64_t until = now_ms() + RF_AGENT_SOURCE_READY_TIMEOUT_MS;
	for (uint64_t t = now_ms(); t < until; t = now_ms()) {
		char *w = memchr(line, '\n', len);
		if (w && len > 8 && !memcmp(line, "warning ", 8)) { /* said before "ready" */
			*w = 0;
			rf_log_warn("event source: %s", line + 8);
			len -= (size_t)(w + 1 - line);
			memmove(line, w + 1, len);
			continue;
		}
		if (w)
			break;
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		if (poll(&pf, 1, (int)(until - t)) <= 0)
			continue;
		ssize_t n = read(p[0], line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	line[len] = 0;
	char *nl = strchr(line, '\n');
	if (nl && strncmp(line, "ready\n", 6) == 0) {
		ag->source = pid;
		ag->source_status_fd = p[0];
		ag->source_lost = 0;
		ag->source_len = len - 6; /* a stats line may follow at once */
		memcpy(ag->source_buf, line + 6, ag->source_len);
		(void)fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
		rf_log_info("event source %d: %s", (int)pid,
			    strcmp(ag->o.events, "proc") == 0
				? "process creation (the kernel's process connector)"
			    : strcmp(ag->o.events, "audit") == 0
				? "audit records (the kernel's audit read-log group)"
			    : strncmp(ag->o.events, "log:", 4) == 0
				? ag->o.events
				: "process creation and audit records");
		return 0;
	}
	if (nl && strncmp(line, "failed ", 7) == 0) {
		char *why = NULL;
		long e = strtol(line + 7, &why, 10);
		*nl = 0;
		r = e > 0 && e < 4096 ? -(int)e : -EIO;
		rf_log_error("event source: %s", why && *why == ' ' ? why + 1 : line);
	} else
		rf_log_error("event source: no answer from the source child in %d ms",
			     RF_AGENT_SOURCE_READY_TIMEOUT_MS);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(p[0]);
	return r;
}

static void source_line(struct agent *ag, const char *line)
{
	uint64_t v[8] = {0};
	const char *p = line + 6;

	if (strncmp(line, "stats ", 6) != 0)
		return;
	for (unsigned i = 0; i < 8; i++) {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(p, &end, 10);
		if (errno || end == p) {
			if (i < 6)
				return;
			break;
		}
		v[i] = x;
		p = end;
	}
	/* dropped + kernel_lost + malformed + oversize: every event that was not evaluated */
	uint64_t lost = v[2] + v[3] + v[6] + v[7];
	if (lost <= ag->source_lost)
		return;
	rf_store_add_dropped(ag->st, lost - ag->source_lost);
	ag->source_unwarned += lost - ag->source_lost;
	ag->source_lost = lost;
	uint64_t t = now_ms();
	if (!ag->source_warned_at_ms ||
	    t - ag->source_warned_at_ms >= RF_AGENT_SOURCE_WARN_EVERY_MS) {
		rf_log_warn(
		    "event source: %llu events not evaluated since the last warning (queue "
		    "full: the evaluator is behind or no content runs; lost by the kernel; or "
		    "lines refused); this source: %llu seen, %llu dropped, %llu lost by the "
		    "kernel, %llu malformed, %llu over a size limit",
		    (unsigned long long)ag->source_unwarned, (unsigned long long)v[0],
		    (unsigned long long)v[2], (unsigned long long)v[3], (unsigned long long)v[6],
		    (unsigned long long)v[7]);
		ag->source_warned_at_ms = t;
		ag->source_unwarned = 0;
		/* durable (and in `status`) with the warning: one write a minute, not per event */
		if (rf_store_commit(ag->st) < 0)
			rf_log_warn("store: cannot record events_dropped");
	}
}

void rf__agent_source_read(struct agent *ag)
{
	char *nl;

	if (ag->source_status_fd < 0)
		return;
	for (;;) {
		ssize_t n = read(ag->source_status_fd, ag->source_buf + ag->source_len,
				 sizeof(ag->source_buf) - 1 - ag->source_len);
		if (n <= 0)
			break;
		ag->source_len += (size_t)n;
		ag->source_buf[ag->source_len] = 0;
		while ((nl = memchr(ag->source_buf, '\n', ag->source_len))) {
			*nl = 0;
			source_line(ag, ag->source_buf);
			size_t used = (size_t)(nl + 1 - ag->source_buf);
			memmove(ag->source_buf, nl + 1, ag->source_len - used);
			ag->source_len -= used;
		}
		if (ag->source_len == sizeof(ag->source_buf) - 1)
			ag->source_len = 0; /* a line too long: drop it */
	}
}

void rf__agent_source_reap(struct agent *ag)
{
	int status;

	if (ag->source <= 0 || waitpid(ag->source, &status, WNOHANG) != ag->source)
		return;
	rf__agent_source_read(ag); /* its last words */
	close(ag->source_status_fd);
	ag->source_status_fd = -1;
	ag->source_len = 0;
	if (WIFSIGNALED(status))
		rf_log_error("event source %d died: signal %d; restarting", (int)ag->source,
			     WTERMSIG(status));
	else
		rf_log_error("event source %d exited with status %d; restarting", (int)ag->source,
			     WEXITSTATUS(status));
	ag->source = 0;
	ag->source_restart_at_ms = now_ms() + RF_AGENT_SOURCE_RESTART_DELAY_MS;
}

void rf__agent_source_stop(struct agent *ag)
{
	if (ag->source > 0) {
		kill(ag->source, SIGTERM);
		waitpid(ag->source, NULL, 0);
		ag->source = 0;
	}
	if (ag->source_status_fd >= 0)
		close(ag->source_status_fd);
	ag->source_status_fd = -1;
}
