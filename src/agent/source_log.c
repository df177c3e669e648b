/*
 * The log-file source (see source_log.h for the contract, docs/agent.md for the formats): the
 * spec (log:EVENT=PATH parts, checked against the files at start), the event types with their
 * line formats, and following the files. Per file: a descriptor, its (device, inode) and read
 * offset, and one buffer of at most RF_SOURCE_LOG_LINE_MAX + 1 bytes holding the unread part of
 * the current line; a line that does not fit is skipped up to its newline and counted. Per
 * source: one output buffer of RF_EVENT_LINE_MAX bytes into which source_log_parse.c builds
 * each event line; this file counts it and hands it to the sink.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "agent/source_log.h"
#include "agent/source_log_parse.h"
#include "ringfence/limits.h"

static const char *const format_names[] = {"json", "text", "access", "kv"};

/* The event types of manifests/ringfence-agent-logs-1.0.0.json, each with its line format (a
 * test checks that the two agree). */
static const struct {
	const char *name;
	enum rf__source_log_format f;
} events[] = {
    {"aws_cloudtrail", F_JSON},
    {"azure_activitylogs", F_JSON},
    {"azure_auditlogs", F_JSON},
    {"azure_pim", F_JSON},
    {"azure_riskdetection", F_JSON},
    {"azure_signinlogs", F_JSON},
    {"gcp_audit", F_JSON},
    {"gcp_google_workspace_admin", F_JSON},
    {"gcp_google_workspace_login", F_JSON},
    {"okta", F_JSON},
    {"m365_audit", F_JSON},
    {"m365_exchange", F_JSON},
    {"m365_threat_detection", F_JSON},
    {"m365_threat_management", F_JSON},
    {"github_audit", F_JSON},
    {"bitbucket_audit", F_JSON},
    {"onelogin_events", F_JSON},
    {"kubernetes_audit", F_JSON},
    {"cisco_duo", F_JSON},
    {"zeek_dce_rpc", F_JSON},
    {"zeek_dns", F_JSON},
    {"zeek_http", F_JSON},
    {"zeek_kerberos", F_JSON},
    {"zeek_rdp", F_JSON},
    {"zeek_smb_files", F_JSON},
    {"zeek_x509", F_JSON},
    {"proxy", F_JSON},
    {"dns", F_JSON},
    {"firewall", F_JSON},
    {"opencanary", F_JSON},
    {"fortigate_event", F_KV},
    {"linux_log", F_TEXT},
    {"linux_clamav", F_TEXT},
    {"linux_cron", F_TEXT},
    {"linux_guacamole", F_TEXT},
    {"linux_sshd", F_TEXT},
    {"linux_syslog", F_TEXT},
    {"linux_vsftpd", F_TEXT},
    {"cisco_aaa", F_TEXT},
    {"cisco_bgp", F_TEXT},
    {"cisco_ldp", F_TEXT},
    {"huawei_bgp", F_TEXT},
    {"juniper_bgp", F_TEXT},
    {"django_application", F_TEXT},
    {"jvm_application", F_TEXT},
    {"nodejs_application", F_TEXT},
    {"python_application", F_TEXT},
    {"ruby_on_rails_application", F_TEXT},
    {"spring_application", F_TEXT},
    {"sql_application", F_TEXT},
    {"velocity_application", F_TEXT},
    {"database", F_TEXT},
    {"apache", F_TEXT},
    {"nginx", F_TEXT},
    {"webserver", F_ACCESS},
};
#define N_EVENTS (sizeof(events) / sizeof(events[0]))

/* The access-log fields, in the order of the Combined Log Format (W3C extended names, as the
 * Sigma webserver taxonomy names them). */
static const struct {
	const char *name;
	bool is_int;
} access_fields[] = {
    {"message", false},	    {"c-ip", false},	     {"cs-username", false},   {"cs-method", false},
    {"cs-uri-stem", false}, {"cs-uri-query", false}, {"cs-version", false},    {"sc-status", true},
    {"sc-bytes", true},	    {"cs-referer", false},   {"cs-user-agent", false},
};

struct lfile {
	size_t ev;
	char *path;
	int fd;
	dev_t dev;
	ino_t ino;
	off_t off;
	bool skipping; /* inside a line over the limit: discard up to its newline */
	bool pending;  /* stopped with more to read */
	bool blocked;  /* ...because the sink had no room */
	int open_err;  /* why the last open failed (0: it did not) */
	/* the last tail_len bytes read, the file's [off - tail_len, off): read again when the file
	 * has grown, to notice content replaced in place (check_file) */
	uint8_t tail[RF_SOURCE_LOG_FINGERPRINT];
	size_t tail_len;
	size_t start, len;
	uint8_t *buf; /* RF_SOURCE_LOG_LINE_MAX + 1 */
};

struct rf_source_log {
	size_t n;
	struct lfile f[RF_SOURCE_LOG_FILES_MAX];
	int tfd;
	struct rf_source_stats st;
	struct rf__source_log_line line; /* the event line being built (source_log_parse.c) */
	char *describe;
	char warning[4200];
};

const char *rf_source_log_event(size_t i, const char **ret_format)
{
	if (i >= N_EVENTS)
		return NULL;
	if (ret_format)
		*ret_format = format_names[events[i].f];
	return events[i].name;
}

const char *rf_source_log_field(size_t ev, size_t i, bool *ret_int)
{
	if (ev >= N_EVENTS || events[ev].f == F_JSON)
		return NULL;
	if (events[ev].f != F_ACCESS) {
		if (i)
			return NULL;
		*ret_int = false;
		return "message";
	}
	if (i >= sizeof(access_fields) / sizeof(access_fields[0]))
		return NULL;
	*ret_int = access_fields[i].is_int;
	return access_fields[i].name;
}

static int event_index(const char *p, size_t n)
{
	for (size_t i = 0; i < N_EVENTS; i++)
		if (strlen(events[i].name) == n && !memcmp(events[i].name, p, n))
			return (int)i;
	return -1;
}

/* ---- the spec ------------------------------------------------------------------------------ */

/* Calls fn(ud, event index, path, path length) per part; returns 0, or -EINVAL/-E2BIG with the
 * reason in *why. */
static int parse_spec(const char *spec, int (*fn)(void *, size_t, const char *, size_t), void *ud,
		      const char **why)
{
	const char *p = spec;
	size_t count = 0;

	if (!spec || strncmp(spec, "log:", 4)) {
		*why = "a log source is log:EVENT=PATH";
		return -EINVAL;
	}
	while (p) {
		const char *eq, *end, *next;
		int ev;

		p += 4; /* "log:" */
		next = strstr(p, ",log:");
		end = next ? next : p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (!eq) {
			*why = "each part is log:EVENT=PATH";
			return -EINVAL;
		}
		if ((ev = event_index(p, (size_t)(eq - p))) < 0) {
			*why = "unknown event type";
			return -EINVAL;
		}
		if (end - (eq + 1) < 2 || eq[1] != '/' || (size_t)(end - (eq + 1)) >= 4096) {
			*why = "each PATH must be absolute";
			return -EINVAL;
		}
		if (end[-1] == ',') { /* "log:a=/x," would follow "/x," for ever */
			*why = "a PATH ends with ',' (parts are joined with ',log:')";
			return -EINVAL;
		}
		if (++count > RF_SOURCE_LOG_FILES_MAX) {
			*why = "too many files (limit RF_SOURCE_LOG_FILES_MAX)";
			return -E2BIG;
		}
		if (fn) {
			int r = fn(ud, (size_t)ev, eq + 1, (size_t)(end - (eq + 1)));
			if (r < 0) {
				*why = "out of memory";
				return r;
			}
		}
		p = next ? next + 1 : NULL;
	}
	return 0;
}

/* The parts of a spec, for the checks that look at the files. */
struct parts {
	size_t n;
	struct {
		size_t ev;
		char path[4096];
		char norm[4096]; /* without "." pieces, repeated and trailing '/' */
		bool exists;
		dev_t dev;
		ino_t ino;
	} a[RF_SOURCE_LOG_FILES_MAX];
};

static int add_checked(void *ud, size_t ev, const char *path, size_t n)
{
	struct parts *ps = ud;
	char *o = ps->a[ps->n].norm;
	size_t i = 0, k = 0;

	ps->a[ps->n].ev = ev;
	memcpy(ps->a[ps->n].path, path, n); /* n < 4096: parse_spec */
	ps->a[ps->n].path[n] = '\0';
	while (i < n) {
		size_t j = i;
		while (j < n && path[j] != '/')
			j++;
		if (j > i && !(j - i == 1 && path[i] == '.')) {
			o[k++] = '/';
			memcpy(o + k, path + i, j - i);
			k += j - i;
		}
		i = j + 1;
	}
	if (k == 0)
		o[k++] = '/';
	o[k] = '\0';
	ps->n++;
	return 0;
}

/*
 * What the files of a well-formed spec say, at start: a PATH that is a directory, a FIFO, a
 * socket or a device is refused (the source follows regular files by offset, rotation and
 * truncation; it skipped anything else without a word, so a typo like log:linux_sshd=/var/log
 * followed nothing); so is one file named twice for the same EVENT (by the same path up to "."
 * pieces and repeated '/', or by another path to the same device and inode): each line would be
 * that many events, and a count correlation would fire on one. A file that does not exist yet
 * is fine (it is followed from when it appears). Returns 0 or -EINVAL with the reason.
 */
static int check_files(const char *spec, struct rf_diag *reterr)
{
	struct parts *ps = calloc(1, sizeof(*ps));
	const char *why = NULL;
	struct stat sb;
	int r;

	if (!ps)
		return rf_diag_report(reterr, -ENOMEM, "event source: out of memory");
	if ((r = parse_spec(spec, add_checked, ps, &why)) < 0)
		goto out; /* cannot happen: the callers parsed it already */
	for (size_t i = 0; i < ps->n && r == 0; i++) {
		ps->a[i].exists = stat(ps->a[i].path, &sb) == 0;
		if (ps->a[i].exists && S_ISDIR(sb.st_mode))
			r = rf_diag_report(
			    reterr, -EINVAL,
			    "event source '%s': '%s' is a directory (a PATH names one log file)",
			    spec, ps->a[i].path);
		else if (ps->a[i].exists && !S_ISREG(sb.st_mode))
			r = rf_diag_report(reterr, -EINVAL,
					   "event source '%s': '%s' is not a regular file (a FIFO, "
					   "socket or device): the source follows regular files",
					   spec, ps->a[i].path);
		if (ps->a[i].exists) {
			ps->a[i].dev = sb.st_dev;
			ps->a[i].ino = sb.st_ino;
		}
		for (size_t j = 0; j < i && r == 0; j++)
			if (ps->a[j].ev == ps->a[i].ev &&
			    (!strcmp(ps->a[j].norm, ps->a[i].norm) ||
			     (ps->a[j].exists && ps->a[i].exists && ps->a[j].dev == ps->a[i].dev &&
			      ps->a[j].ino == ps->a[i].ino)))
				r = rf_diag_report(
				    reterr, -EINVAL,
				    "event source '%s': '%s' and '%s' are the same file "
				    "for event %s (each line would be two events)",
				    spec, ps->a[j].path, ps->a[i].path, events[ps->a[i].ev].name);
	}
out:
	free(ps);
	return r;
}

bool rf_source_log_known(const char *spec)
{
	const char *why;

	return parse_spec(spec, NULL, NULL, &why) == 0;
}

int rf_source_log_check(const char *spec, struct rf_diag *reterr)
{
	const char *why = NULL, *p;
	int r = parse_spec(spec, NULL, NULL, &why);

	if (r == 0)
		return check_files(spec, reterr);
	if (strcmp(why, "unknown event type") != 0)
		return rf_diag_report(reterr, r, "event source '%s': %s", spec ? spec : "", why);
	/* name the part: the first whose EVENT this source does not have */
	for (p = spec; p; p = strstr(p, ",log:") ? strstr(p, ",log:") + 1 : NULL) {
		const char *eq = strchr(p + 4, '=');
		size_t n = eq ? (size_t)(eq - (p + 4)) : 0;
		if (eq && event_index(p + 4, n) < 0)
			return rf_diag_report(
			    reterr, r,
			    "event source '%s': unknown event type '%.*s' (the types are those of "
			    "the manifest ringfence-agent-logs-1.0.0: `ringfence-agent manifest "
			    "--manifest ringfence-agent-logs-1.0.0`)",
			    spec, (int)(n > 64 ? 64 : n), p + 4);
	}
	return rf_diag_report(reterr, r, "event source '%s': %s", spec, why);
}

/* ---- one line ------------------------------------------------------------------------------ */

int rf_source_log_put(struct rf_source_log *s, size_t ev, const uint8_t *p, size_t n,
		      const struct rf_source_sink *sink)
{
	int r;

	s->st.seen++;
	if (n && p[n - 1] == '\r')
		n--;
	if (n == 0)
		return 1;
	if (n > RF_SOURCE_LOG_LINE_MAX) {
		s->st.oversize++;
		return -E2BIG;
	}
	r = rf__source_log_line(&s->line, events[ev].name, events[ev].f, p, n);
	if (r == -E2BIG) {
		s->st.oversize++;
		return r;
	}
	if (r < 0) {
		s->st.malformed++;
		return -EBADMSG;
	}
	if (sink->room(sink->ud) < s->line.out_len) {
		s->st.dropped++;
		return -ENOSPC;
	}
	sink->put(sink->ud, s->line.out, s->line.out_len);
	s->st.emitted++;
	return 0;
}

/* ---- following files ----------------------------------------------------------------------- */

static void close_file(struct lfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	f->start = f->len = 0;
	f->skipping = false;
	f->tail_len = 0;
}

/* The bytes p[0..n) were read at f->off - n: the fingerprint's last bytes. */
static void tail_add(struct lfile *f, const uint8_t *p, size_t n)
{
	size_t keep;

	if (n >= RF_SOURCE_LOG_FINGERPRINT) {
		memcpy(f->tail, p + n - RF_SOURCE_LOG_FINGERPRINT, RF_SOURCE_LOG_FINGERPRINT);
		f->tail_len = RF_SOURCE_LOG_FINGERPRINT;
		return;
	}
	keep = f->tail_len < RF_SOURCE_LOG_FINGERPRINT - n ? f->tail_len
							   : RF_SOURCE_LOG_FINGERPRINT - n;
	memmove(f->tail, f->tail + f->tail_len - keep, keep);
	memcpy(f->tail + keep, p, n);
	f->tail_len = keep + n;
}

/* Whether the bytes before f->off are still those read there (or none were remembered). A read
 * error says nothing: the next look tries again. */
static bool tail_same(const struct lfile *f)
{
	uint8_t now[RF_SOURCE_LOG_FINGERPRINT];
	ssize_t got;

	if (f->tail_len == 0)
		return true;
	got = pread(f->fd, now, f->tail_len, f->off - (off_t)f->tail_len);
	if (got < 0)
		return true;
	return (size_t)got == f->tail_len && !memcmp(now, f->tail, f->tail_len);
}

/* open_err for a path that names something other than a regular file (not an errno) */
#define EFTYPE_NOTREG (-1)

/* Open f->path if it exists; from_end: start at its end (the source's first look). */
static int open_file(struct rf_source_log *s, struct lfile *f, bool from_end)
{
	struct stat sb;
	int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		f->open_err = errno;
		return errno == ENOENT || errno == EACCES || errno == ENOTDIR ? 0 : -errno;
	}
	f->open_err = 0;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		f->open_err = EFTYPE_NOTREG; /* said by rf_source_log_warning */
		return 0; /* not a regular file (yet): looked at again next time */
	}
	f->fd = fd;
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	f->off = from_end ? sb.st_size : 0;
	if (from_end && lseek(fd, f->off, SEEK_SET) < 0)
		f->off = 0;
	f->tail_len = 0;
	if (f->off > 0) { /* the bytes before the offset, for tail_same */
		size_t k = f->off < (off_t)RF_SOURCE_LOG_FINGERPRINT ? (size_t)f->off
								     : RF_SOURCE_LOG_FINGERPRINT;
		if (pread(fd, f->tail, k, f->off - (off_t)k) == (ssize_t)k)
			f->tail_len = k;
	}
	if (!from_end)
		s->st.reopened++;
	return 0;
}

static int sink_room_ok(const struct rf_source_sink *sink)
{
	return sink->room(sink->ud) >= RF_EVENT_LINE_MAX;
}

/*
 * Read f to its current end (or until max lines or the byte budget): each complete line to
 * rf_source_log_put. Returns lines read, or a negative errno from read().
 */
static int drain(struct rf_source_log *s, struct lfile *f, const struct rf_source_sink *sink,
		 size_t max)
{
	size_t lines = 0, budget = RF_SOURCE_LOG_READ_MAX;

	f->pending = f->blocked = false;
	while (f->fd >= 0) {
		uint8_t *nl = memchr(f->buf + f->start, '\n', f->len - f->start);
		if (nl) {
			size_t ln = (size_t)(nl - (f->buf + f->start));
			if (lines == max || !sink_room_ok(sink)) {
				f->pending = true;
				f->blocked = lines < max;
				break;
			}
			if (f->skipping)
				f->skipping = false; /* the end of a refused line */
			else
				(void)rf_source_log_put(s, f->ev, f->buf + f->start, ln, sink);
			f->start += ln + 1;
			lines++;
			continue;
		}
		/* no newline in what is buffered: compact, then read more */
		if (f->start) {
			memmove(f->buf, f->buf + f->start, f->len - f->start);
			f->len -= f->start;
			f->start = 0;
		}
		if (f->len == RF_SOURCE_LOG_LINE_MAX + 1) {
			/* over the limit without a newline: refuse it whole */
			if (!f->skipping) {
				s->st.seen++;
				s->st.oversize++;
			}
			f->skipping = true;
			f->len = 0;
		}
		if (budget == 0) {
			f->pending = true;
			break;
		}
		size_t want = RF_SOURCE_LOG_LINE_MAX + 1 - f->len;
		if (want > budget)
			want = budget;
		ssize_t got = read(f->fd, f->buf + f->len, want);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		if (got == 0)
			break;
		tail_add(f, f->buf + f->len, (size_t)got);
		f->len += (size_t)got;
		f->off += got;
		budget -= (size_t)got;
	}
	return (int)lines;
}

/* Rotation and truncation: whether f's path now names another file, or f shrank, or has grown
 * but no longer holds the bytes read just before its offset (truncated and written past the
 * offset again since the last look: copytruncate on a busy log). */
static int check_file(struct rf_source_log *s, struct lfile *f, const struct rf_source_sink *sink,
		      size_t max, size_t *lines)
{
	struct stat now, cur;
	int r;

	if (f->fd < 0)
		return open_file(s, f, false);
	if (fstat(f->fd, &cur) == 0 &&
	    (cur.st_size < f->off || (cur.st_size > f->off && !tail_same(f)))) {
		/* truncated in place: whatever was buffered belonged to the old content */
		f->start = f->len = 0;
		f->skipping = false;
		f->off = 0;
		f->tail_len = 0;
		if (lseek(f->fd, 0, SEEK_SET) < 0)
			return -errno;
		s->st.reopened++;
		return 0;
	}
	if (f->pending)
		return 0; /* the current file first */
	if (stat(f->path, &now) == 0 && now.st_dev == f->dev && now.st_ino == f->ino)
		return 0;
	/* renamed or deleted (and maybe already replaced): finish the old file, then switch */
	r = drain(s, f, sink, max - *lines);
	if (r < 0)
		return r;
	*lines += (size_t)r;
	if (f->pending)
		return 0;
	if (f->len > f->start && !f->skipping) /* a last line without its newline */
		(void)rf_source_log_put(s, f->ev, f->buf + f->start, f->len - f->start, sink);
	close_file(f);
	return open_file(s, f, false);
}

/* The next look: at once (more to read), soon (the sink was full: let the consumer drain it
 * rather than spin), or after the poll interval. */
enum next { NEXT_NOW, NEXT_SOON, NEXT_POLL };

static void arm(struct rf_source_log *s, enum next when)
{
	struct itimerspec it = {0};

	if (s->tfd < 0)
		return;
	if (when == NEXT_NOW)
		it.it_value.tv_nsec = 1;
	else if (when == NEXT_SOON)
		it.it_value.tv_nsec = 10 * 1000000L;
	else {
		it.it_value.tv_sec = RF_SOURCE_LOG_POLL_MS / 1000;
		it.it_value.tv_nsec = (long)(RF_SOURCE_LOG_POLL_MS % 1000) * 1000000L;
	}
	(void)timerfd_settime(s->tfd, 0, &it, NULL);
}

int rf_source_log_read(struct rf_source_log *s, const struct rf_source_sink *sink, size_t max)
{
	uint64_t ticks;
	size_t lines = 0;
	bool more = false, blocked = false;
	int r;

	if (s->tfd >= 0)
		(void)!read(s->tfd, &ticks, sizeof(ticks));
	for (size_t i = 0; i < s->n; i++) {
		struct lfile *f = &s->f[i];
		if ((r = check_file(s, f, sink, max, &lines)) < 0)
			return r;
		if (lines < max && (r = drain(s, f, sink, max - lines)) < 0)
			return r;
		lines += (size_t)(r > 0 ? r : 0);
		more |= f->pending && !f->blocked;
		blocked |= f->blocked;
	}
	arm(s, more ? NEXT_NOW : blocked ? NEXT_SOON : NEXT_POLL);
	return lines > INT32_MAX ? INT32_MAX : (int)lines;
}

/* ---- lifetime ------------------------------------------------------------------------------ */

int rf_source_log_new(struct rf_source_log **ret)
{
	struct rf_source_log *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->tfd = -1;
	s->line.st = &s->st;
	if (!(s->line.out = malloc(RF_EVENT_LINE_MAX))) {
		free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

static int add_part(void *ud, size_t ev, const char *path, size_t n)
{
	struct rf_source_log *s = ud;
	struct lfile *f = &s->f[s->n];

	f->fd = -1;
	f->ev = ev;
	if (!(f->path = strndup(path, n)) || !(f->buf = malloc(RF_SOURCE_LOG_LINE_MAX + 1)))
		return -ENOMEM;
	s->n++;
	return 0;
}

int rf_source_log_open(const char *spec, struct rf_source_log **ret, struct rf_diag *reterr)
{
	struct rf_source_log *s;
	const char *why = NULL;
	int r = rf_source_log_new(&s);

	if (r < 0)
		return r;
	if ((r = parse_spec(spec, add_part, s, &why)) < 0) {
		rf_source_log_free(s);
		return rf_diag_report(reterr, r, "event source '%s': %s", spec ? spec : "", why);
	}
	if ((r = check_files(spec, reterr)) < 0) {
		rf_source_log_free(s);
		return r;
	}
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->tfd < 0) {
		r = -errno;
		rf_source_log_free(s);
		return rf_diag_report(reterr, r, "event source '%s': timerfd: %s", spec,
				      strerror(-r));
	}
	for (size_t i = 0; i < s->n; i++)
		if ((r = open_file(s, &s->f[i], true)) < 0) {
			rf_diag_report(reterr, r, "event source: %s: %s", s->f[i].path,
				       strerror(-r));
			rf_source_log_free(s);
			return r;
		}
	size_t dl = 64;
	for (size_t i = 0; i < s->n; i++)
		dl += strlen(events[s->f[i].ev].name) + strlen(s->f[i].path) + 4;
	if ((s->describe = malloc(dl))) {
		size_t o = (size_t)snprintf(s->describe, dl, "log files:");
		for (size_t i = 0; i < s->n && o < dl; i++)
			o += (size_t)snprintf(s->describe + o, dl - o, "%s %s %s", i ? "," : "",
					      events[s->f[i].ev].name, s->f[i].path);
	}
	arm(s, NEXT_NOW);
	*ret = s;
	return 0;
}

void rf_source_log_free(struct rf_source_log *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		close_file(&s->f[i]);
		free(s->f[i].path);
		free(s->f[i].buf);
	}
	if (s->tfd >= 0)
		close(s->tfd);
	free(s->describe);
	free(s->line.out);
	free(s);
}

const char *rf_source_log_warning(struct rf_source_log *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct lfile *f = &s->f[i];
		if (f->fd >= 0 || !f->open_err)
			continue;
		snprintf(s->warning, sizeof(s->warning),
			 "%s: %s (it is followed from when it can be read)", f->path,
			 f->open_err == ENOENT		? "does not exist yet"
			 : f->open_err == EFTYPE_NOTREG ? "not a regular file"
							: strerror(f->open_err));
		return s->warning;
	}
	return NULL;
}

int rf_source_log_fd(const struct rf_source_log *s)
{
	return s->tfd;
}

void rf_source_log_stats(const struct rf_source_log *s, struct rf_source_stats *ret)
{
	*ret = s->st;
}

const char *rf_source_log_describe(const struct rf_source_log *s)
{
	return s->describe ? s->describe : "log files";
}
