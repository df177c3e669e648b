/*
 * The log-file source (see source_log.h for the contract, docs/agent.md for the formats). Per
 * file: a descriptor, its (device, inode) and read offset, and one buffer of at most
 * RF_SOURCE_LOG_LINE_MAX + 1 bytes holding the unread part of the current line; a line that
 * does not fit is skipped up to its newline and counted. Per source: one output buffer of
 * RF_EVENT_LINE_MAX bytes into which each event line is built (rf_line_put never cuts: a line
 * that does not fit is refused whole). JSON goes through jansson (one parse per line, freed at
 * once); the flattening recurses over jansson's tree, whose depth jansson bounds.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/source_log.h"
#include "ringfence/limits.h"

enum format { F_JSON, F_TEXT, F_ACCESS, F_KV };

static const char *const format_names[] = {"json", "text", "access", "kv"};

/* The event types of manifests/ringfence-agent-logs-1.0.0.json, each with its line format (a
 * test checks that the two agree). */
static const struct {
	const char *name;
	enum format f;
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
	size_t start, len;
	uint8_t *buf; /* RF_SOURCE_LOG_LINE_MAX + 1 */
};

struct rf_source_log {
	size_t n;
	struct lfile f[RF_SOURCE_LOG_FILES_MAX];
	int tfd;
	struct rf_source_stats st;
	uint8_t *out; /* RF_EVENT_LINE_MAX */
	size_t out_len;
	bool full;
	size_t nfields;
	struct {
		size_t off, len; /* the field name in out (without quotes) */
	} names[RF_EVENT_FIELDS_MAX];
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

/* ---- building one event line --------------------------------------------------------------- */

/* p[0..n) escaped as inside a JSON string, without the quotes. */
static void out_escaped(struct rf_source_log *s, const uint8_t *p, size_t n)
{
	size_t before = s->out_len;

	rf_line_json_str(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, p, n);
	if (!s->full) {
		memmove(s->out + before, s->out + before + 1, s->out_len - before - 2);
		s->out_len -= 2;
	}
}

static void out_reset(struct rf_source_log *s, size_t ev)
{
	s->out_len = 0;
	s->full = false;
	s->nfields = 0;
	rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, "{\"event\":\"", 10);
	rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, events[ev].name,
		    strlen(events[ev].name));
	rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, "\"", 1);
}

/*
 * Start field name (the pieces a[0..na) joined by '.'): 1 (nothing written, counted in
 * fields_lost) for a name that is empty or longer than RF_NAME_MAX, or past RF_EVENT_FIELDS_MAX
 * fields (the event keeps its first ones: refusing it whole let one more label of a Kubernetes
 * pod hide the whole event from every rule); -EBADMSG for a name that repeats one already written or is "event" (the
 * member that names the event type). Names are compared as written (escaped) in out.
 */
static int out_name(struct rf_source_log *s, const char *const *a, const size_t *al, size_t na)
{
	size_t at, dl = na ? na - 1 : 0;

	for (size_t i = 0; i < na; i++) {
		dl += al[i];
		if (memchr(a[i], '\0', al[i])) /* a key with "\u0000": no rule can name it */
			dl = RF_NAME_MAX + 1;
	}
	if (dl == 0 || dl > RF_NAME_MAX) { /* no event carries it, no rule can name it */
		s->st.fields_lost++;
		return 1;
	}
	if (s->nfields == RF_EVENT_FIELDS_MAX) { /* the event is kept with the fields so far */
		s->st.fields_lost++;
		return 1;
	}
	rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, ",", 1);
	at = s->out_len;
	rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, "\"", 1);
	for (size_t i = 0; i < na; i++) {
		if (i)
			rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, ".", 1);
		out_escaped(s, (const uint8_t *)a[i], al[i]);
	}
	rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, "\"", 1);
	if (s->full)
		return -E2BIG;
	size_t off = at + 1, len = s->out_len - at - 2;
	if (len == 5 && !memcmp(s->out + off, "event", 5))
		return -EBADMSG;
	for (size_t i = 0; i < s->nfields; i++)
		if (s->names[i].len == len && !memcmp(s->out + s->names[i].off, s->out + off, len))
			return -EBADMSG;
	s->names[s->nfields].off = off;
	s->names[s->nfields].len = len;
	s->nfields++;
	rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, ":", 1);
	return 0;
}

static int out_str(struct rf_source_log *s, const char *name, const uint8_t *v, size_t n)
{
	size_t nl = strlen(name);
	int r = out_name(s, &name, &nl, 1);

	if (r != 0)
		return r < 0 ? r : 0;
	rf_line_json_str(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, v, n);
	return s->full ? -E2BIG : 0;
}

/* ---- JSON lines ------------------------------------------------------------------------------ */

#define FLAT_DEPTH_MAX 64 /* key pieces kept; jansson's own parser depth limit is 2048 */

/* A key's length: jansson 2.14 keeps keys with "\u0000" whole (JSON_ALLOW_NUL). */
#if JANSSON_VERSION_HEX >= 0x020e00
#define KEY_LEN(k) json_object_iter_key_len(json_object_key_to_iter(k))
#else
#define KEY_LEN(k) strlen(k)
#endif

/* A number of the line as written: [off, off + len) of the line; big: one jansson cannot hold
 * (an integer outside int64, a real past a double's range). */
struct numtok {
	size_t off, len;
	bool big;
};

struct flat {
	struct rf_source_log *s;
	const char *key[FLAT_DEPTH_MAX];
	size_t keylen[FLAT_DEPTH_MAX];
	size_t depth;
	/* Only for a line with a big integer (see put_json): its numbers in document order, the
	 * line's text, and the next number the walk meets. NULL otherwise. */
	const struct numtok *num;
	size_t nnum, cur;
	const uint8_t *line;
};

/* The numbers in v (their count), for a walk that does not visit them one by one. */
static size_t count_numbers(json_t *v)
{
	size_t c = 0, i;
	const char *k;
	json_t *e;

	if (json_is_number(v))
		return 1;
	if (json_is_array(v))
		json_array_foreach(v, i, e) c += count_numbers(e);
	else if (json_is_object(v))
		json_object_foreach(v, k, e) c += count_numbers(e);
	return c;
}

/* The walk skips v's numbers (a container it does not go into). */
static void skip_numbers(struct flat *fl, json_t *v)
{
	if (fl->num)
		fl->cur += count_numbers(v);
}

static int dump_cb(const char *buf, size_t size, void *ud)
{
	struct rf_source_log *s = ud;

	out_escaped(s, (const uint8_t *)buf, size);
	return s->full ? -1 : 0;
}

/* A real as the shortest text that reads back as the same double (0.1 is "0.1", not %.17g's
 * "0.10000000000000001", so a rule's '0.1' matches what the log says). 17 significant digits
 * always round-trip. Returns the length, as snprintf. */
static int shortest_real(double d, char *out, size_t cap)
{
	int n = 0;

	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(out, cap, "%.*g", prec, d);
		if (n > 0 && (size_t)n < cap && strtod(out, NULL) == d)
			break;
	}
	return n;
}

/* The value v under the current key (depth >= 1). */
static int flat_value(struct flat *fl, json_t *v)
{
	struct rf_source_log *s = fl->s;
	char num[40];
	int r, n;

	/* an array of one element is that element */
	while (json_is_array(v) && json_array_size(v) == 1)
		v = json_array_get(v, 0);
	switch (json_typeof(v)) {
	case JSON_NULL:
		return 0; /* absent, as in rf_event_parse */
	case JSON_STRING:
		r = out_name(s, fl->key, fl->keylen, fl->depth);
		if (r != 0)
			return r < 0 ? r : 0;
		rf_line_json_str(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full,
				 (const uint8_t *)json_string_value(v), json_string_length(v));
		return s->full ? -E2BIG : 0;
	case JSON_INTEGER:
	case JSON_REAL:
	case JSON_TRUE:
	case JSON_FALSE:
		if (json_is_number(v) && fl->num) {
			const struct numtok *t;
			if (fl->cur >= fl->nnum)
				return -EBADMSG; /* cannot happen: jansson parsed these numbers */
			t = &fl->num[fl->cur++];
			if (t->big) { /* as written, as rf_event_parse keeps it */
				r = out_name(s, fl->key, fl->keylen, fl->depth);
				if (r != 0)
					return r < 0 ? r : 0;
				rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full,
					    fl->line + t->off, t->len);
				return s->full ? -E2BIG : 0;
			}
		}
		if (json_is_integer(v))
			n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
				     json_integer_value(v));
		else if (json_is_real(v))
			n = shortest_real(json_real_value(v), num, sizeof(num));
		else
			n = snprintf(num, sizeof(num), "%s", json_is_true(v) ? "true" : "false");
		r = out_name(s, fl->key, fl->keylen, fl->depth);
		if (r != 0)
			return r < 0 ? r : 0;
		rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, num, (size_t)n);
		return s->full ? -E2BIG : 0;
	case JSON_OBJECT:
	case JSON_ARRAY:
		/* the container's own text, for rules that search it whole */
		r = out_name(s, fl->key, fl->keylen, fl->depth);
		if (r != 0) {
			skip_numbers(fl, v);
			return r < 0 ? r : 0;
		}
		rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, "\"", 1);
		if (json_dump_callback(v, dump_cb, s, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0 ||
		    s->full)
			return -E2BIG;
		rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, "\"", 1);
		if (s->full)
			return -E2BIG;
		if (json_is_array(v) || fl->depth == FLAT_DEPTH_MAX) {
			/* several elements: only the text (docs/agent.md) */
			skip_numbers(fl, v);
			return 0;
		}
		const char *k;
		json_t *c;
		json_object_foreach(v, k, c)
		{
			fl->key[fl->depth] = k;
			fl->keylen[fl->depth] = KEY_LEN(k);
			fl->depth++;
			r = flat_value(fl, c);
			fl->depth--;
			if (r < 0)
				return r;
		}
		return 0;
	}
	return -EBADMSG;
}

/* Whether the integer text p[0..n) (an optional '-', then digits) is outside int64. */
static bool int_is_big(const uint8_t *p, size_t n)
{
	bool neg = n && p[0] == '-';
	const char *lim = neg ? "9223372036854775808" : "9223372036854775807";

	if (neg) {
		p++;
		n--;
	}
	return n > 19 || (n == 19 && memcmp(p, lim, 19) > 0);
}

/* The value of the number text p[0..n) (a JSON number: strtod reads all of it), or NAN when out
 * of memory for a copy of a very long one. */
static double token_value(const uint8_t *p, size_t n)
{
	char buf[64], *c = n < sizeof(buf) ? buf : malloc(n + 1);
	double d;

	if (!c)
		return NAN;
	memcpy(c, p, n);
	c[n] = '\0';
	d = strtod(c, NULL);
	if (c != buf)
		free(c);
	return d;
}

/* The numbers of p[0..n) as written, in document order (strings skipped), into *ret (malloc'd;
 * at most n / 2 + 1 of them: each is followed by a separator). Returns the count, with *nbig the
 * integers outside int64, or -ENOMEM. Only meaningful for a line jansson parses (or would, but
 * for those integers). */
static ssize_t lex_numbers(const uint8_t *p, size_t n, struct numtok **ret, size_t *nbig)
{
	struct numtok *t = malloc((n / 2 + 1) * sizeof(*t));
	size_t c = 0, i = 0;

	if (!t)
		return -ENOMEM;
	*nbig = 0;
	while (i < n) {
		if (p[i] == '"') {
			for (i++; i < n && p[i] != '"'; i++)
				if (p[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (p[i] != '-' && (p[i] < '0' || p[i] > '9')) {
			i++;
			continue;
		}
		size_t a = i;
		bool is_int = true;
		for (; i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '+' ||
				 p[i] == '.' || p[i] == 'e' || p[i] == 'E');
		     i++)
			if (p[i] == '.' || p[i] == 'e' || p[i] == 'E')
				is_int = false;
		if (c == n / 2 + 1)
			break; /* not JSON: jansson refuses it */
		/* a real past the range of a double (1e400) fails jansson's parse too */
		t[c] = (struct numtok){
		    a, i - a, is_int ? int_is_big(p + a, i - a) : isinf(token_value(p + a, i - a))};
		*nbig += t[c].big;
		c++;
	}
	*ret = t;
	return (ssize_t)c;
}

/*
 * p[0..n) with each integer outside int64 and each real past a double's range (jansson refuses
 * the whole line for one) written as a real of about its value, so jansson parses it; the walk
 * then writes those numbers from the line's own text. Returns the copy (malloc'd, *ret_n bytes)
 * or NULL (out of memory).
 */
static char *bigints_as_reals(const uint8_t *p, size_t n, const struct numtok *t, size_t nt,
			      size_t nbig, size_t *ret_n)
{
	char *q = malloc(n + 24 * nbig + 1), real[40];
	size_t o = 0, from = 0;

	if (!q)
		return NULL;
	for (size_t i = 0; i < nt; i++) {
		if (!t[i].big)
			continue;
		memcpy(q + o, p + from, t[i].off - from);
		o += t[i].off - from;
		/* about its value (the walk writes the text), in range: past a double's range,
		 * the largest one */
		double d = token_value(p + t[i].off, t[i].len);
		if (isinf(d) || isnan(d))
			snprintf(real, sizeof(real), "%s", p[t[i].off] == '-' ? "-1e308" : "1e308");
		else
			snprintf(real, sizeof(real), "%.17g", d);
		size_t rl = strlen(real);
		memcpy(q + o, real, rl);
		o += rl;
		from = t[i].off + t[i].len;
	}
	memcpy(q + o, p + from, n - from);
	o += n - from;
	*ret_n = o;
	return q;
}

static int put_json(struct rf_source_log *s, const uint8_t *p, size_t n)
{
	/* JSON_ALLOW_NUL: a string with "\u0000" is carried whole, as rf_event_parse takes it */
	const size_t flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL;
	json_error_t jerr;
	json_t *root = json_loadb((const char *)p, n, flags, &jerr);
	struct flat fl = {.s = s};
	struct numtok *num = NULL;
	const char *k;
	json_t *v;
	int r = 0;

	if (!root) {
		/* An integer outside int64 (or a real past a double's range) fails jansson's whole
		 * parse: rf_event_parse keeps any number as its text, so one attacker-chosen number
		 * must not hide the event. */
		size_t nbig, qn;
		ssize_t nt = lex_numbers(p, n, &num, &nbig);
		char *q;
		if (nt < 0)
			return (int)nt;
		if (nbig == 0) {
			free(num);
			return -EBADMSG;
		}
		if (!(q = bigints_as_reals(p, n, num, (size_t)nt, nbig, &qn))) {
			free(num);
			return -ENOMEM;
		}
		root = json_loadb(q, qn, flags, &jerr);
		free(q);
		fl.num = num;
		fl.nnum = (size_t)nt;
		fl.line = p;
	}
	if (!root || !json_is_object(root)) {
		json_decref(root);
		free(num);
		return -EBADMSG;
	}
	json_object_foreach(root, k, v)
	{
		fl.key[0] = k;
		fl.keylen[0] = KEY_LEN(k);
		fl.depth = 1;
		if ((r = flat_value(&fl, v)) < 0)
			break;
	}
	json_decref(root);
	free(num);
	return r;
}

/* ---- text lines ---------------------------------------------------------------------------- */

/* The next space-separated token of p[*i..n) (a bracketed or quoted one whole, quotes and
 * brackets off, a backslash escaping the next byte inside quotes). false at the end or when a
 * quote or bracket is not closed. */
static bool token(const uint8_t *p, size_t n, size_t *i, size_t *ret_a, size_t *ret_b)
{
	size_t j = *i;

	while (j < n && p[j] == ' ')
		j++;
	if (j == n)
		return false;
	if (p[j] == '"' || p[j] == '[') {
		uint8_t close = p[j] == '"' ? '"' : ']';
		size_t a = ++j;
		while (j < n && p[j] != close) {
			if (close == '"' && p[j] == '\\' && j + 1 < n)
				j++;
			j++;
		}
		if (j == n)
			return false;
		*ret_a = a;
		*ret_b = j;
		*i = j + 1;
		return true;
	}
	*ret_a = j;
	while (j < n && p[j] != ' ')
		j++;
	*ret_b = j;
	*i = j;
	return true;
}

static bool is_number(const uint8_t *p, size_t n)
{
	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

/* A run of digits (is_number) written as a JSON number: JSON has no leading zeros ("0200" is
 * not a number), so they are dropped; "000" is 0. */
static void put_number(struct rf_source_log *s, const uint8_t *p, size_t n)
{
	while (n > 1 && p[0] == '0') {
		p++;
		n--;
	}
	rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, p, n);
}

/*
 * Common/Combined Log Format: host ident authuser [date] "request" status bytes ["referer"
 * "user-agent"]. Returns 0 with the fields written, or 1 when the line is not in that format
 * (then only message is written; counted as partial). "-" is an absent value.
 */
static int put_access(struct rf_source_log *s, const uint8_t *p, size_t n)
{
	size_t t[9][2], i = 0, k = 0;
	int r;

	while (k < 9 && token(p, n, &i, &t[k][0], &t[k][1]))
		k++;
	if (k != 7 && k != 9)
		return 1;
	if (p[t[3][0] - 1] != '[' || p[t[4][0] - 1] != '"')
		return 1;
	if (!is_number(p + t[5][0], t[5][1] - t[5][0]))
		return 1;
#define TOK(j)	(p + t[j][0]), (t[j][1] - t[j][0])
#define DASH(j) (t[j][1] - t[j][0] == 1 && p[t[j][0]] == '-')
	if ((r = out_str(s, "c-ip", TOK(0))) < 0)
		return r;
	if (!DASH(2) && (r = out_str(s, "cs-username", TOK(2))) < 0)
		return r;
	/* request: METHOD URI VERSION */
	const uint8_t *q = p + t[4][0];
	size_t qn = t[4][1] - t[4][0], a = 0, sp1, sp2;
	for (sp1 = 0; sp1 < qn && q[sp1] != ' '; sp1++)
		;
	for (sp2 = sp1 + 1; sp2 < qn && q[sp2] != ' '; sp2++)
		;
	if (sp1 < qn && sp1 > 0) {
		if ((r = out_str(s, "cs-method", q, sp1)) < 0)
			return r;
		a = sp1 + 1;
		size_t ue = sp2 < qn ? sp2 : qn, qm = a;
		while (qm < ue && q[qm] != '?')
			qm++;
		if ((r = out_str(s, "cs-uri-stem", q + a, qm - a)) < 0)
			return r;
		if (qm < ue && (r = out_str(s, "cs-uri-query", q + qm + 1, ue - qm - 1)) < 0)
			return r;
		if (sp2 < qn && (r = out_str(s, "cs-version", q + sp2 + 1, qn - sp2 - 1)) < 0)
			return r;
	}
	const char *name = "sc-status";
	size_t nl = strlen(name);
	if ((r = out_name(s, &name, &nl, 1)) < 0)
		return r;
	if (r == 0)
		put_number(s, TOK(5));
	if (is_number(TOK(6))) {
		name = "sc-bytes";
		nl = strlen(name);
		if ((r = out_name(s, &name, &nl, 1)) < 0)
			return r;
		if (r == 0)
			put_number(s, TOK(6));
	}
	if (k == 9) {
		if (!DASH(7) && (r = out_str(s, "cs-referer", TOK(7))) < 0)
			return r;
		if (!DASH(8) && (r = out_str(s, "cs-user-agent", TOK(8))) < 0)
			return r;
	}
#undef TOK
#undef DASH
	return s->full ? -E2BIG : 0;
}

/* key=value pairs (FortiGate): key [A-Za-z0-9_.-]+, value a "quoted" or bare token. A token
 * without '=' is skipped; a key seen twice keeps its first value (the second is a lost field). */
static int put_kv(struct rf_source_log *s, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		while (i < n && p[i] == ' ')
			i++;
		size_t k = i;
		while (i < n &&
		       ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
			(p[i] >= '0' && p[i] <= '9') || p[i] == '_' || p[i] == '.' || p[i] == '-'))
			i++;
		if (i == k || i >= n || p[i] != '=') { /* not a pair: skip the token */
			while (i < n && p[i] != ' ')
				i++;
			continue;
		}
		size_t kl = i - k, a, b;
		i++;
		if (i < n && p[i] == '"') {
			if (!token(p, n, &i, &a, &b))
				return 0; /* unclosed quote: the rest is not pairs */
		} else {
			a = i;
			while (i < n && p[i] != ' ')
				i++;
			b = i;
		}
		if (kl == 7 && !memcmp(p + k, "message", 7))
			continue; /* the line itself is message */
		char key[RF_NAME_MAX + 1];
		if (kl > RF_NAME_MAX) {
			s->st.fields_lost++;
			continue;
		}
		memcpy(key, p + k, kl);
		key[kl] = '\0';
		size_t save = s->out_len, savef = s->nfields;
		int r = out_str(s, key, p + a, b - a);
		if (r == -EBADMSG) { /* repeated key */
			s->out_len = save;
			s->nfields = savef;
			s->st.fields_lost++;
			continue;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

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
	out_reset(s, ev);
	switch (events[ev].f) {
	case F_JSON:
		r = put_json(s, p, n);
		break;
	case F_ACCESS:
		r = out_str(s, "message", p, n);
		if (r >= 0 && (r = put_access(s, p, n)) == 1) {
			s->st.partial++;
			r = 0;
		}
		break;
	case F_KV:
		r = out_str(s, "message", p, n);
		if (r >= 0)
			r = put_kv(s, p, n);
		break;
	default:
		r = out_str(s, "message", p, n);
		break;
	}
	if (r >= 0) {
		rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, "}\n", 2);
		if (s->full)
			r = -E2BIG;
	}
	if (r == -E2BIG) {
		s->st.oversize++;
		return r;
	}
	if (r < 0) {
		s->st.malformed++;
		return -EBADMSG;
	}
	if (sink->room(sink->ud) < s->out_len) {
		s->st.dropped++;
		return -ENOSPC;
	}
	sink->put(sink->ud, s->out, s->out_len);
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
		f->len += (size_t)got;
		f->off += got;
		budget -= (size_t)got;
	}
	return (int)lines;
}

/* Rotation and truncation: whether f's path now names another file, or f shrank. */
static int check_file(struct rf_source_log *s, struct lfile *f, const struct rf_source_sink *sink,
		      size_t max, size_t *lines)
{
	struct stat now, cur;
	int r;

	if (f->fd < 0)
		return open_file(s, f, false);
	if (fstat(f->fd, &cur) == 0 && cur.st_size < f->off) {
		/* truncated in place: whatever was buffered belonged to the old content */
		f->start = f->len = 0;
		f->skipping = false;
		f->off = 0;
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
	if (!(s->out = malloc(RF_EVENT_LINE_MAX))) {
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
	free(s->out);
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
