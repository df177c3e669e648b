/*
 * The log source's line formats (docs/agent.md): one log line of an event type in, one event
 * line out, built in place in the caller's struct rf__source_log_line (source_log_parse.h) with
 * rf_line_put, which never cuts (a line that does not fit is refused whole). JSON goes through
 * jansson (one parse per line, freed at once; a number jansson cannot hold is carried as
 * written; bytes that are not UTF-8 and lone surrogate escapes, which jansson refuses, are
 * first repaired to U+FFFD so the engine never sees them); the flattening recurses over
 * jansson's tree, whose depth jansson bounds. Text, access-log and key=value lines are scanned
 * by hand, every index checked against n. No I/O: source_log.c reads the files and hands the
 * lines over.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

#include "agent/source_log_parse.h"
#include "ringfence/limits.h"

/* ---- building one event line --------------------------------------------------------------- */

/* p[0..n) escaped as inside a JSON string, without the quotes. */
static void out_escaped(struct rf__source_log_line *s, const uint8_t *p, size_t n)
{
	size_t before = s->out_len;

	rf_line_json_str(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, p, n);
	if (!s->full) {
		memmove(s->out + before, s->out + before + 1, s->out_len - before - 2);
		s->out_len -= 2;
	}
}

static void out_reset(struct rf__source_log_line *s, const char *event)
{
	s->out_len = 0;
	s->full = false;
	s->nfields = 0;
	rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, "{\"event\":\"", 10);
	rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, event, strlen(event));
	rf_line_put(s->out, RF_EVENT_LINE_MAX, &s->out_len, &s->full, "\"", 1);
}

/*
 * Start field name (the pieces a[0..na) joined by '.'): 1 (nothing written, counted in
 * fields_lost) for a name that is empty or longer than RF_NAME_MAX, or past RF_EVENT_FIELDS_MAX
 * fields (the event keeps its first ones: refusing it whole let one more label of a Kubernetes
 * pod hide the whole event from every rule); -EBADMSG for a name that repeats one already written
 * or is "event" (the member that names the event type). Names are compared as written (escaped) in
 * out.
 */
static int out_name(struct rf__source_log_line *s, const char *const *a, const size_t *al,
		    size_t na)
{
	size_t at, dl = na ? na - 1 : 0;

	for (size_t i = 0; i < na; i++) {
		dl += al[i];
		if (memchr(a[i], '\0', al[i])) /* a key with "\u0000": no rule can name it */
			dl = RF_NAME_MAX + 1;
	}
	if (dl == 0 || dl > RF_NAME_MAX) { /* no event carries it, no rule can name it */
		s->st->fields_lost++;
		return 1;
	}
	if (s->nfields == RF_EVENT_FIELDS_MAX) { /* the event is kept with the fields so far */
		s->st->fields_lost++;
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

static int out_str(struct rf__source_log_line *s, const char *name, const uint8_t *v, size_t n)
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
	struct rf__source_log_line *s;
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
	struct rf__source_log_line *s = ud;

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
	struct rf__source_log_line *s = fl->s;
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

/* Whether p[i..n) starts with a "\uXXXX" escape; its value in *ret. */
static bool u_escape(const uint8_t *p, size_t n, size_t i, unsigned *ret)
{
	unsigned v = 0;

	if (n - i < 6 || p[i] != '\\' || p[i + 1] != 'u')
		return false;
	for (size_t k = 2; k < 6; k++) {
		int h = rf_hex_digit(p[i + k]);
		if (h < 0)
			return false;
		v = v << 4 | (unsigned)h;
	}
	*ret = v;
	return true;
}

/*
 * p[0..n) (n <= RF_SOURCE_LOG_LINE_MAX) repaired as a text line is (docs/agent.md): each byte
 * that does not start a valid UTF-8 sequence becomes U+FFFD, and inside a string each "\uXXXX"
 * escape of a surrogate that is not half of a high-low pair becomes "\ufffd". jansson refuses
 * the whole line for either (it has no flag to repair), so one byte an attacker puts in one
 * value would hide the event from every rule. Returns 0 when nothing needs repair (*ret
 * untouched), the length of the repaired copy in *ret (malloc'd, at most 3 n bytes), or -ENOMEM.
 */
static ssize_t json_repair(const uint8_t *p, size_t n, uint8_t **ret)
{
	uint8_t *q = NULL;
	size_t i = 0, from = 0, o = 0;
	bool in_str = false;
	unsigned hi, lo;

	while (i < n) {
		size_t sl = rf_utf8_seq(p + i, n - i, NULL);
		const char *with = "\xef\xbf\xbd"; /* U+FFFD */
		size_t wl = 3;

		if (sl == 0) {
			sl = 1; /* a byte that is not UTF-8 */
		} else if (p[i] == '"') {
			in_str = !in_str;
			i++;
			continue;
		} else if (in_str && p[i] == '\\') {
			if (!u_escape(p, n, i, &hi) || hi < 0xd800 || hi > 0xdfff) {
				/* \" and \\ neither end the string nor start an escape */
				i += i + 1 < n && (p[i + 1] == '"' || p[i + 1] == '\\') ? 2 : 1;
				continue;
			}
			if (hi <= 0xdbff && u_escape(p, n, i + 6, &lo) && lo >= 0xdc00 &&
			    lo <= 0xdfff) {
				i += 12; /* a high-low pair: one code point */
				continue;
			}
			sl = 6; /* a lone surrogate */
			with = "\\ufffd";
			wl = 6;
		} else {
			i += sl;
			continue;
		}
		if (!q && !(q = malloc(3 * n))) /* each byte at most 3: n is small */
			return -ENOMEM;
		memcpy(q + o, p + from, i - from);
		o += i - from;
		memcpy(q + o, with, wl);
		o += wl;
		i += sl;
		from = i;
	}
	if (!q)
		return 0;
	memcpy(q + o, p + from, n - from);
	o += n - from;
	*ret = q;
	return (ssize_t)o;
}

/* A line without bytes that are not UTF-8 and without lone surrogate escapes (json_repair). */
static int put_json_valid(struct rf__source_log_line *s, const uint8_t *p, size_t n, size_t flags)
{
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

static int put_json(struct rf__source_log_line *s, const uint8_t *p, size_t n)
{
	uint8_t *fixed = NULL;
	ssize_t fn = json_repair(p, n, &fixed);

	if (fn < 0)
		return (int)fn;
	if (fn > 0) {
		p = fixed;
		n = (size_t)fn;
	}
	/* JSON_ALLOW_NUL: a string with "\u0000" is carried whole, as rf_event_parse takes it */
	int r = put_json_valid(s, p, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL);
	/* Two keys that differed only where the repair wrote U+FFFD ("h\ud800", "h\udbff") are
	 * equal now: that must not hide the event either, so a repaired line is read again with
	 * the last of such keys kept (review 6-3). A line that is not repaired keeps refusing a
	 * duplicate key. */
	if (r == -EBADMSG && fixed)
		r = put_json_valid(s, p, n, JSON_ALLOW_NUL);
	if (r == 0 && fixed) /* its event is kept, with U+FFFD where the bytes were */
		s->st->repaired++;
	free(fixed);
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
static void put_number(struct rf__source_log_line *s, const uint8_t *p, size_t n)
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
static int put_access(struct rf__source_log_line *s, const uint8_t *p, size_t n)
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
	/* request: METHOD URI VERSION, the method the first word, the version the last one when it
	 * is "HTTP/...", the URI everything between, spaces included: a server logs a request
	 * line as received, and splitting at the second space put the rest of a URI with a space
	 * ("GET /x?a b=../../etc/passwd HTTP/1.1") into cs-version, out of a query rule's reach */
	const uint8_t *q = p + t[4][0];
	size_t qn = t[4][1] - t[4][0], a = 0, sp1, lw;
	for (sp1 = 0; sp1 < qn && q[sp1] != ' '; sp1++)
		;
	if (sp1 < qn && sp1 > 0) {
		if ((r = out_str(s, "cs-method", q, sp1)) < 0)
			return r;
		a = sp1 + 1;
		for (lw = qn; lw > a && q[lw - 1] != ' '; lw--) /* the last word: q[lw..qn) */
			;
		bool version = lw > a && qn - lw >= 5 && !memcmp(q + lw, "HTTP/", 5);
		size_t ue = version ? lw - 1 : qn, qm = a;
		while (qm < ue && q[qm] != '?')
			qm++;
		if ((r = out_str(s, "cs-uri-stem", q + a, qm - a)) < 0)
			return r;
		if (qm < ue && (r = out_str(s, "cs-uri-query", q + qm + 1, ue - qm - 1)) < 0)
			return r;
		if (version && (r = out_str(s, "cs-version", q + lw, qn - lw)) < 0)
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
static int put_kv(struct rf__source_log_line *s, const uint8_t *p, size_t n)
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
			s->st->fields_lost++;
			continue;
		}
		memcpy(key, p + k, kl);
		key[kl] = '\0';
		size_t save = s->out_len, savef = s->nfields;
		int r = out_str(s, key, p + a, b - a);
		if (r == -EBADMSG) { /* repeated key */
			s->out_len = save;
			s->nfields = savef;
			s->st->fields_lost++;
			continue;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int rf__source_log_line(struct rf__source_log_line *s, const char *event,
			enum rf__source_log_format f, const uint8_t *p, size_t n)
{
	int r;

	out_reset(s, event);
	switch (f) {
	case F_JSON:
		r = put_json(s, p, n);
		break;
	case F_ACCESS:
		r = out_str(s, "message", p, n);
		if (r >= 0 && (r = put_access(s, p, n)) == 1) {
			s->st->partial++;
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
	return r;
}
