/*
 * Tests of the log-file source (src/agent/source_log.h) on real files in a temporary directory:
 * it starts at a file's end, reads appended lines exactly once (a line without its newline only
 * when the newline comes), follows a rename-and-create rotation (finishing the old file first),
 * a truncation (also one refilled past the old offset before the next look) and a file that
 * appears later, refuses an over-long line whole (and reads the next one), counts malformed
 * JSON, and stops for a full sink without losing a line. The line parser: JSON flattened to
 * dotted keys (containers also as their text, one-element arrays unwrapped, null absent,
 * repeated flattened keys and a top-level "event" refused, a "\u0000" in a string and an integer
 * outside int64 kept, bytes not UTF-8 and lone surrogate escapes repaired to U+FFFD and counted),
 * access logs into W3C fields (the request's version its last word, the URI everything before
 * it), key=value lines. Every line it makes is one rf_event_parse accepts. And the source's event
 * table agrees with manifests/ringfence-agent-logs-1.0.0.json. Run under ASan and UBSan.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/source_log.h"
#include "content/ir.h"
#include "content/sigma.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

/* A sink that keeps every line (up to 64) and counts them; room is settable. */
struct cap {
	char *line[64];
	size_t lines, room;
};

static size_t cap_room(void *ud)
{
	return ((struct cap *)ud)->room;
}

static void cap_put(void *ud, const uint8_t *p, size_t n)
{
	struct cap *c = ud;

	json_error_t err;
	json_t *j;

	assert_true(n > 0 && n <= RF_EVENT_LINE_MAX && p[n - 1] == '\n');
	assert_true(c->lines < 64);
	/* strict JSON, not only what the engine's lenient event parser takes (a "\u0000" in a
	 * string and an integer outside int64 are JSON: jansson needs telling) */
	j = json_loadb((const char *)p, n,
		       JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
	/* a number past a double's range (1e400) is JSON too, but past jansson's */
	if (!j && json_error_code(&err) != json_error_numeric_overflow)
		fail_msg("not valid JSON (%s): %.*s", err.text, (int)n, (const char *)p);
	json_decref(j);
	c->line[c->lines] = strndup((const char *)p, n);
	c->lines++;
}

static void cap_clear(struct cap *c)
{
	for (size_t i = 0; i < c->lines; i++)
		free(c->line[i]);
	c->lines = 0;
}

static struct cap cap = {.room = SIZE_MAX};
static struct rf_source_sink sink = {.room = cap_room, .put = cap_put, .ud = &cap};
static char dir[256];

static size_t ev_index(const char *name)
{
	const char *n;

	for (size_t i = 0; (n = rf_source_log_event(i, NULL)); i++)
		if (!strcmp(n, name))
			return i;
	fail_msg("no event %s", name);
	return 0;
}

/* Parse line (ends in \n) as the worker does and return the value of field name, or NULL. */
static uint8_t scratch[RF_EVENT_LINE_MAX];
static struct rf_event evt;
static size_t field_n; /* the length of the value field() returned last */

static const char *field(const char *line, const char *name, bool *ret_is_string)
{
	static char val[4096];
	struct rf_diag d = {0};
	size_t n = strlen(line);

	if (rf_event_parse((const uint8_t *)line, n - 1, scratch, sizeof(scratch), &evt, &d) != 0)
		fail_msg("not an event line (%s): %s", d.first, line);
	for (size_t i = 0; i < evt.n_fields; i++)
		if (evt.fields[i].name_len == strlen(name) &&
		    !memcmp(evt.fields[i].name, name, strlen(name))) {
			size_t l = evt.fields[i].value_len < sizeof(val) - 1
				       ? evt.fields[i].value_len
				       : sizeof(val) - 1;
			memcpy(val, evt.fields[i].value, l);
			val[l] = '\0';
			field_n = l;
			if (ret_is_string)
				*ret_is_string = evt.fields[i].is_string;
			return val;
		}
	return NULL;
}

static void put(struct rf_source_log *s, const char *ev, const char *line, int want)
{
	int r = rf_source_log_put(s, ev_index(ev), (const uint8_t *)line, strlen(line), &sink);
	if (r != want)
		fail_msg("%s: put returned %d, want %d: %s", ev, r, want, line);
}

static void test_json(void **state)
{
	struct rf_source_log *s;
	struct rf_source_stats st;
	bool str;

	(void)state;
	assert_int_equal(rf_source_log_new(&s), 0);
	put(s, "aws_cloudtrail",
	    "{\"eventSource\":\"s3.amazonaws.com\",\"userIdentity\":{\"type\":\"IAMUser\","
	    "\"arn\":\"arn:aws:iam::1:user/x\"},\"requestParameters\":{\"b\":\"Suspended\"},"
	    "\"resources\":[{\"ARN\":\"a\"}],\"tags\":[\"x\",\"y\"],\"one\":[\"only\"],"
	    "\"n\":7,\"r\":1.5,\"t\":true,\"z\":null,\"q\":\"a\\\"b\"}",
	    0);
	assert_int_equal(cap.lines, 1);
	const char *l = cap.line[0];
	assert_string_equal(field(l, "eventSource", &str), "s3.amazonaws.com");
	assert_true(str);
	assert_string_equal(field(l, "userIdentity.arn", NULL), "arn:aws:iam::1:user/x");
	assert_string_equal(field(l, "userIdentity", NULL),
			    "{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::1:user/x\"}");
	assert_string_equal(field(l, "requestParameters", NULL), "{\"b\":\"Suspended\"}");
	assert_string_equal(field(l, "requestParameters.b", NULL), "Suspended");
	assert_string_equal(field(l, "resources.ARN", NULL), "a");    /* one element: unwrapped */
	assert_string_equal(field(l, "tags", NULL), "[\"x\",\"y\"]"); /* several: the text */
	assert_null(field(l, "tags.0", NULL));
	assert_string_equal(field(l, "one", NULL), "only");
	assert_string_equal(field(l, "n", &str), "7");
	assert_false(str);
	assert_string_equal(field(l, "r", NULL), "1.5");
	assert_string_equal(field(l, "t", NULL), "true");
	assert_null(field(l, "z", NULL));
	assert_string_equal(field(l, "q", NULL), "a\"b");
	cap_clear(&cap);
	/* reals: the shortest text that reads back as the same double, so a rule's '0.1' matches
	 * (%.17g wrote 0.10000000000000001) */
	put(s, "aws_cloudtrail",
	    "{\"a\":0.1,\"b\":1.50,\"c\":1e300,\"d\":0.30000000000000004,\"e\":-2.5e-7,"
	    "\"f\":3.141592653589793}",
	    0);
	l = cap.line[0];
	assert_string_equal(field(l, "a", &str), "0.1");
	assert_false(str);
	assert_string_equal(field(l, "b", NULL), "1.5");
	assert_string_equal(field(l, "c", NULL), "1e+300");
	assert_string_equal(field(l, "d", NULL), "0.30000000000000004"); /* not 0.1 + 0.2 */
	assert_string_equal(field(l, "e", NULL), "-2.5e-07");
	assert_string_equal(field(l, "f", NULL), "3.141592653589793");
	cap_clear(&cap);

	/* a key no event can carry (empty, or longer than RF_NAME_MAX once flattened): that field
	 * is left out and counted, the rest is the event */
	char longkey[512];
	snprintf(longkey, sizeof(longkey), "{\"\":1,\"a\":{\"%0*d\":2},\"b\":3}", RF_NAME_MAX,
		 0);
	put(s, "aws_cloudtrail", longkey, 0);
	assert_string_equal(field(cap.line[0], "b", NULL), "3");
	assert_int_equal(evt.n_fields, 2); /* a (its text) and b */
	rf_source_log_stats(s, &st);
	assert_int_equal(st.fields_lost, 2);
	cap_clear(&cap);

	/* malformed: not JSON, not an object, a flattened key twice, the key "event" */
	put(s, "aws_cloudtrail", "{\"a\":", -EBADMSG);
	put(s, "aws_cloudtrail", "[1,2]", -EBADMSG);
	put(s, "aws_cloudtrail", "{\"a.b\":1,\"a\":{\"b\":2}}", -EBADMSG);
	put(s, "aws_cloudtrail", "{\"event\":\"x\"}", -EBADMSG);
	put(s, "aws_cloudtrail", "{\"a\":1,\"a\":2}", -EBADMSG);
	put(s, "aws_cloudtrail", "", 1); /* empty: no event, not an error */
	assert_int_equal(cap.lines, 0);
	/* more fields than an event can carry: the event is kept with its first
	 * RF_EVENT_FIELDS_MAX, the rest counted in fields_lost (it was refused whole: one more
	 * label on a Kubernetes pod hid the whole audit event from every rule) */
	char big[8192];
	uint64_t lost0;
	rf_source_log_stats(s, &st);
	lost0 = st.fields_lost;
	size_t o = (size_t)snprintf(big, sizeof(big), "{\"k0\":0");
	for (unsigned i = 1; i <= RF_EVENT_FIELDS_MAX + 1; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, ",\"k%u\":%u", i, i);
	snprintf(big + o, sizeof(big) - o, "}");
	put(s, "aws_cloudtrail", big, 0);
	assert_int_equal(cap.lines, 1);
	char last[32];
	snprintf(last, sizeof(last), "\"k%u\":%u}", RF_EVENT_FIELDS_MAX - 1,
		 RF_EVENT_FIELDS_MAX - 1);
	assert_non_null(strstr(cap.line[0], last));
	cap_clear(&cap);
	rf_source_log_stats(s, &st);
	assert_int_equal(st.fields_lost - lost0, 2);
	assert_int_equal(st.malformed, 5);
	assert_int_equal(st.oversize, 0);
	assert_int_equal(st.emitted, 4);
	rf_source_log_free(s);
}

/*
 * A valid JSON line with "\u0000" in a string or an integer outside int64 is an event, as
 * rf_event_parse (content eval, --events FILE) takes it: jansson refused both whole, so whoever
 * wrote one value of a logged record could hide the event from every rule. The string keeps its
 * NUL; the integer is its text as written.
 */
static void test_json_nul_bigint(void **state)
{
	struct rf_source_log *s;
	struct rf_source_stats st;
	bool str;
	const char *l;

	(void)state;
	assert_int_equal(rf_source_log_new(&s), 0);
	put(s, "okta", "{\"id\":2,\"actor\":{\"alternateId\":\"bob\\u0000\"},\"o\":\"FAILURE\"}",
	    0);
	assert_int_equal(cap.lines, 1);
	l = cap.line[0];
	const char *v = field(l, "actor.alternateId", &str);
	assert_non_null(v);
	assert_true(str);
	assert_int_equal(field_n, 4); /* "bob" and its NUL */
	assert_memory_equal(v, "bob\0", 4);
	assert_string_equal(field(l, "o", NULL), "FAILURE");
	cap_clear(&cap);

	put(s, "okta",
	    "{\"id\":3,\"n\":18446744073709551615,\"m\":-9223372036854775809,"
	    "\"k\":9223372036854775807,\"r\":[1,2.5,99999999999999999999],\"x\":{\"y\":2,"
	    "\"z\":1234567890123456789012345678901234567890},\"w\":[7],\"f\":0.5,"
	    "\"e\":1e400,\"g\":-2.5E+999,\"o\":\"FAILURE\"}",
	    0);
	assert_int_equal(cap.lines, 1);
	l = cap.line[0];
	assert_string_equal(field(l, "n", &str), "18446744073709551615");
	assert_false(str);
	assert_string_equal(field(l, "m", NULL), "-9223372036854775809");
	assert_string_equal(field(l, "k", NULL), "9223372036854775807");
	assert_string_equal(field(l, "id", NULL), "3");
	/* the numbers after a container the walk does not go into stay in step */
	assert_string_equal(field(l, "x.y", NULL), "2");
	assert_string_equal(field(l, "x.z", NULL), "1234567890123456789012345678901234567890");
	assert_string_equal(field(l, "w", NULL), "7");
	assert_string_equal(field(l, "f", NULL), "0.5");
	assert_string_equal(field(l, "e", NULL), "1e400"); /* past a double's range: as written */
	assert_string_equal(field(l, "g", NULL), "-2.5E+999");
	assert_string_equal(field(l, "o", NULL), "FAILURE");
	cap_clear(&cap);

	/* still malformed: a big integer in a line that is not JSON for another reason */
	put(s, "okta", "{\"n\":18446744073709551615,}", -EBADMSG);
	put(s, "okta", "{\"n\":18446744073709551615", -EBADMSG);
	put(s, "okta", "[18446744073709551615]", -EBADMSG);
	rf_source_log_stats(s, &st);
	assert_int_equal(st.malformed, 3);
	assert_int_equal(st.emitted, 2);
	rf_source_log_free(s);
}

/* Review 5-1: a byte that is not UTF-8 or a lone surrogate escape in one string of a JSON line
 * is repaired as a text line is (U+FFFD), not a reason to refuse the whole event. */
static void test_json_repair(void **state)
{
	struct rf_source_log *s;
	struct rf_source_stats st;
	const char *l;

	(void)state;
	cap_clear(&cap);
	assert_int_equal(rf_source_log_new(&s), 0);
	put(s, "okta", "{\"eventType\":\"user.session.start\",\"actor\":\"plain\"}", 0);
	put(s, "okta", "{\"eventType\":\"user.session.start\",\"actor\":\"bob\xff\"}", 0);
	put(s, "okta", "{\"eventType\":\"user.session.start\",\"actor\":\"bob\\ud800\"}", 0);
	/* a lone low surrogate, a high one before another escape, one in a key, an overlong form
	 * and an encoded surrogate (both not UTF-8); a pair and escaped text stay as they are */
	put(s, "okta",
	    "{\"a\":\"\\udc00x\",\"b\":\"\\udbff\\u0041\",\"k\\ud800\":1,\"c\":\"\xc0\xaf\","
	    "\"d\":\"\xed\xa0\x80\",\"e\":\"\\ud83d\\ude00\",\"f\":\"\\\\ud800\\\"\\ud800\","
	    "\"n\":18446744073709551615,\"g\":\"\xfe\"}",
	    0);
	assert_int_equal(cap.lines, 4);
	assert_string_equal(field(cap.line[0], "actor", NULL), "plain");
	assert_string_equal(field(cap.line[1], "actor", NULL), "bob\xef\xbf\xbd");
	assert_string_equal(field(cap.line[1], "eventType", NULL), "user.session.start");
	assert_string_equal(field(cap.line[2], "actor", NULL), "bob\xef\xbf\xbd");
	l = cap.line[3];
	assert_string_equal(field(l, "a", NULL), "\xef\xbf\xbdx");
	assert_string_equal(field(l, "b", NULL), "\xef\xbf\xbd"
						 "A");
	assert_string_equal(field(l, "k\xef\xbf\xbd", NULL), "1");
	assert_string_equal(field(l, "c", NULL), "\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(field(l, "d", NULL), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(field(l, "e", NULL), "\xf0\x9f\x98\x80"); /* U+1F600 */
	assert_string_equal(field(l, "f", NULL), "\\ud800\"\xef\xbf\xbd");
	assert_string_equal(field(l, "n", NULL), "18446744073709551615");
	assert_string_equal(field(l, "g", NULL), "\xef\xbf\xbd");
	/* review 6-3: keys that differ only where the repair writes U+FFFD become equal; the
	 * event is kept with the last of them (a line that needs no repair still refuses a
	 * duplicate key) */
	put(s, "okta", "{\"h\\ud800\":\"one\",\"h\\udbff\":\"two\",\"x\":\"y\"}", 0);
	assert_string_equal(field(cap.line[4], "h\xef\xbf\xbd", NULL), "two");
	assert_string_equal(field(cap.line[4], "x", NULL), "y");
	put(s, "okta", "{\"h\xff\":\"one\",\"h\xfe\":\"two\"}", 0);
	assert_string_equal(field(cap.line[5], "h\xef\xbf\xbd", NULL), "two");
	put(s, "okta", "{\"h\":\"one\",\"h\":\"two\"}", -EBADMSG);
	/* still malformed: not JSON for another reason; a bad byte outside a string */
	put(s, "okta", "{\"a\":\"\xff\"", -EBADMSG);
	put(s, "okta", "{\"a\":1\xff}", -EBADMSG);
	rf_source_log_stats(s, &st);
	assert_int_equal(st.emitted, 6);
	assert_int_equal(st.repaired, 5);
	assert_int_equal(st.malformed, 3);
	cap_clear(&cap);
	rf_source_log_free(s);
}

/* The request "METHOD URI VERSION" of an access line (review 5-5): the version is the last word
 * (when it is HTTP/...), the URI everything between, spaces included. */
static void test_access_request(struct rf_source_log *s)
{
#define ACC(req) "203.0.113.5 - - [04/Dec/2026:02:00:00 +0000] \"" req "\" 400 12 \"-\" \"c\""
	const char *l;

	cap_clear(&cap);
	put(s, "webserver", ACC("GET /x?a b=../../../etc/passwd HTTP/1.1"), 0);
	l = cap.line[0];
	assert_string_equal(field(l, "cs-method", NULL), "GET");
	assert_string_equal(field(l, "cs-uri-stem", NULL), "/x");
	assert_string_equal(field(l, "cs-uri-query", NULL), "a b=../../../etc/passwd");
	assert_string_equal(field(l, "cs-version", NULL), "HTTP/1.1");
	put(s, "webserver", ACC("GET /a b/c d HTTP/1.0"), 0); /* spaces in the stem */
	assert_string_equal(field(cap.line[1], "cs-uri-stem", NULL), "/a b/c d");
	assert_null(field(cap.line[1], "cs-uri-query", NULL));
	assert_string_equal(field(cap.line[1], "cs-version", NULL), "HTTP/1.0");
	put(s, "webserver", ACC("GET /x?q=1 junk"), 0); /* no version: the rest is the URI */
	assert_string_equal(field(cap.line[2], "cs-uri-query", NULL), "q=1 junk");
	assert_null(field(cap.line[2], "cs-version", NULL));
	put(s, "webserver", ACC("GET /only"), 0);
	assert_string_equal(field(cap.line[3], "cs-uri-stem", NULL), "/only");
	assert_null(field(cap.line[3], "cs-version", NULL));
	put(s, "webserver", ACC("GET HTTP/1.1"), 0); /* two words: a URI, not a version */
	assert_string_equal(field(cap.line[4], "cs-uri-stem", NULL), "HTTP/1.1");
	assert_null(field(cap.line[4], "cs-version", NULL));
	put(s, "webserver", ACC("GET /a\\\"b?c=\\\"d e\\\" HTTP/2.0"), 0); /* escaped quotes */
	assert_string_equal(field(cap.line[5], "cs-uri-stem", NULL), "/a\\\"b");
	assert_string_equal(field(cap.line[5], "cs-uri-query", NULL), "c=\\\"d e\\\"");
	assert_string_equal(field(cap.line[5], "cs-version", NULL), "HTTP/2.0");
	put(s, "webserver", ACC("-"), 0); /* no request (a closed connection) */
	assert_null(field(cap.line[6], "cs-method", NULL));
	assert_null(field(cap.line[6], "cs-version", NULL));
	put(s, "webserver", ACC("\\x16\\x03\\x01\\x00\\xA5\\x01"), 0); /* TLS to a plain port */
	assert_null(field(cap.line[7], "cs-method", NULL));
	assert_string_equal(field(cap.line[7], "sc-status", NULL), "400");
	assert_int_equal(cap.lines, 8);
	cap_clear(&cap);
#undef ACC
}

static void test_text_access_kv(void **state)
{
	struct rf_source_log *s;
	struct rf_source_stats st;
	bool str;

	(void)state;
	assert_int_equal(rf_source_log_new(&s), 0);
	put(s, "linux_sshd", "Dec  3 13:00:01 host sshd[42]: error: Bad \"x\" \xff\r",
	    0); /* \r dropped */
	assert_string_equal(field(cap.line[0], "message", NULL),
			    "Dec  3 13:00:01 host sshd[42]: error: Bad \"x\" \xef\xbf\xbd");
	assert_int_equal(evt.n_fields, 1);
	put(s, "webserver",
	    "10.0.0.1 - bob [10/Oct/2000:13:55:36 -0700] \"GET /a.php?x=../../etc HTTP/1.1\" "
	    "404 - \"-\" \"curl/8\"",
	    0);
	const char *l = cap.line[1];
	assert_string_equal(field(l, "c-ip", NULL), "10.0.0.1");
	assert_string_equal(field(l, "cs-username", NULL), "bob");
	assert_string_equal(field(l, "cs-method", NULL), "GET");
	assert_string_equal(field(l, "cs-uri-stem", NULL), "/a.php");
	assert_string_equal(field(l, "cs-uri-query", NULL), "x=../../etc");
	assert_string_equal(field(l, "cs-version", NULL), "HTTP/1.1");
	assert_string_equal(field(l, "sc-status", &str), "404");
	assert_false(str);
	assert_null(field(l, "sc-bytes", NULL));   /* "-" */
	assert_null(field(l, "cs-referer", NULL)); /* "-" */
	assert_string_equal(field(l, "cs-user-agent", NULL), "curl/8");
	put(s, "webserver", "not an access log line", 0); /* message only, counted partial */
	assert_string_equal(field(cap.line[2], "message", NULL), "not an access log line");
	assert_int_equal(evt.n_fields, 1);
	put(s, "fortigate_event",
	    "date=2024-01-01 devname=\"FG 1\" action=\"Edit\" cfgpath=\"user.local\" action=x "
	    "junk",
	    0);
	l = cap.line[3];
	assert_string_equal(field(l, "devname", NULL), "FG 1");
	assert_string_equal(field(l, "action", NULL), "Edit"); /* the first of two */
	assert_string_equal(field(l, "cfgpath", NULL), "user.local");
	assert_non_null(field(l, "message", NULL));
	rf_source_log_stats(s, &st);
	assert_int_equal(st.partial, 1);
	assert_int_equal(st.fields_lost, 1);
	assert_int_equal(st.emitted, 4);
	cap_clear(&cap);
	/* leading zeros: JSON numbers have none ("0200" is not JSON; cap_put checks) */
	put(s, "webserver", "10.0.0.2 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 0200 007",
	    0);
	assert_string_equal(field(cap.line[0], "sc-status", &str), "200");
	assert_false(str);
	assert_string_equal(field(cap.line[0], "sc-bytes", &str), "7");
	assert_false(str);
	put(s, "webserver", "10.0.0.2 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 000 0",
	    0);
	assert_string_equal(field(cap.line[1], "sc-status", NULL), "0");
	assert_string_equal(field(cap.line[1], "sc-bytes", NULL), "0");
	cap_clear(&cap);
	test_access_request(s);
	rf_source_log_free(s);
}

static void append(const char *name, const char *text, size_t n)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
}

static void appends(const char *name, const char *text)
{
	append(name, text, strlen(text));
}

static char *path_of(const char *name)
{
	static char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static void test_follow(void **state)
{
	struct rf_source_log *s;
	struct rf_source_stats st;
	struct rf_diag d = {0};
	char spec[1200], p2[512];

	(void)state;
	cap_clear(&cap);
	appends("auth.log", "old line, before the source started\n");
	snprintf(spec, sizeof(spec), "log:linux_sshd=%s/auth.log,log:aws_cloudtrail=%s/ct.jsonl",
		 dir, dir);
	assert_true(rf_source_log_known(spec));
	assert_int_equal(rf_source_log_open(spec, &s, &d), 0);
	assert_true(rf_source_log_fd(s) >= 0);
	assert_non_null(rf_source_log_warning(s)); /* ct.jsonl: not there yet, said at start */
	assert_non_null(strstr(rf_source_log_warning(s), "ct.jsonl: does not exist yet"));
	assert_int_equal(rf_source_log_read(s, &sink, 256), 0); /* from the end */
	assert_int_equal(cap.lines, 0);

	/* appends, exactly once; a line without its newline waits for it */
	appends("auth.log", "one\ntwo\nthr");
	assert_int_equal(rf_source_log_read(s, &sink, 256), 2);
	assert_int_equal(rf_source_log_read(s, &sink, 256), 0);
	appends("auth.log", "ee\n");
	assert_int_equal(rf_source_log_read(s, &sink, 256), 1);
	assert_int_equal(cap.lines, 3);
	assert_string_equal(field(cap.line[2], "message", NULL), "three");
	cap_clear(&cap);

	/* the file that did not exist at open: read from its beginning when it appears */
	appends("ct.jsonl", "{\"eventName\":\"A\"}\nnot json\n");
	assert_int_equal(rf_source_log_read(s, &sink, 256), 2);
	assert_int_equal(cap.lines, 1);
	assert_string_equal(field(cap.line[0], "eventName", NULL), "A");
	cap_clear(&cap);

	/* an over-long line is refused whole; the next one is read */
	size_t big = RF_SOURCE_LOG_LINE_MAX + 100;
	char *b = malloc(big + 1);
	memset(b, 'x', big);
	b[big] = '\n';
	append("auth.log", b, big + 1);
	free(b);
	appends("auth.log", "after the long one\n");
	for (int i = 0; i < 4; i++)
		(void)rf_source_log_read(s, &sink, 256);
	assert_int_equal(cap.lines, 1);
	assert_string_equal(field(cap.line[0], "message", NULL), "after the long one");
	cap_clear(&cap);

	/* rotation: renamed, the writer adds one more line to the old file, a new file appears */
	snprintf(p2, sizeof(p2), "%s/auth.log.1", dir);
	assert_int_equal(rename(path_of("auth.log"), p2), 0);
	appends("auth.log.1", "late line in the old file\n");
	appends("auth.log", "first line of the new file\n");
	for (int i = 0; i < 3; i++)
		(void)rf_source_log_read(s, &sink, 256);
	assert_int_equal(cap.lines, 2);
	assert_string_equal(field(cap.line[0], "message", NULL), "late line in the old file");
	assert_string_equal(field(cap.line[1], "message", NULL), "first line of the new file");
	cap_clear(&cap);

	/* truncation (copytruncate): read again from the beginning */
	assert_int_equal(truncate(path_of("auth.log"), 0), 0);
	appends("auth.log", "after truncate\n");
	for (int i = 0; i < 3; i++)
		(void)rf_source_log_read(s, &sink, 256);
	assert_int_equal(cap.lines, 1);
	assert_string_equal(field(cap.line[0], "message", NULL), "after truncate");
	cap_clear(&cap);

	/* a full sink stops the source; nothing is lost, nothing dropped */
	appends("auth.log", "a\nb\nc\n");
	cap.room = 10;
	assert_int_equal(rf_source_log_read(s, &sink, 256), 0);
	cap.room = SIZE_MAX;
	assert_int_equal(rf_source_log_read(s, &sink, 1), 1); /* max lines: one at a time */
	assert_int_equal(rf_source_log_read(s, &sink, 256), 2);
	assert_int_equal(cap.lines, 3);
	cap_clear(&cap);

	rf_source_log_stats(s, &st);
	assert_int_equal(st.oversize, 1);
	assert_int_equal(st.malformed, 1);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.emitted, 11);
	assert_true(st.reopened >= 3); /* ct.jsonl appeared, the rotation, the truncation */
	rf_source_log_free(s);
}

/* Review 5-4: truncated in place and written past the old offset again before the next look
 * (copytruncate on a busy log): the file did not shrink, but its content was replaced. */
static void test_copytruncate_regrow(void **state)
{
	struct rf_source_log *s;
	struct rf_source_stats st;
	struct rf_diag d = {0};
	char spec[600], line[64];

	(void)state;
	cap_clear(&cap);
	for (int i = 0; i < 5; i++)
		appends("busy.log", "a line from before the source started\n");
	snprintf(spec, sizeof(spec), "log:linux_sshd=%s/busy.log", dir);
	assert_int_equal(rf_source_log_open(spec, &s, &d), 0);
	assert_int_equal(rf_source_log_read(s, &sink, 256), 0); /* from the end */

	/* before anything was read: the bytes before the start offset are the fingerprint */
	assert_int_equal(truncate(path_of("busy.log"), 0), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(line, sizeof(line), "after the first truncation %d\n", i);
		appends("busy.log", line);
	}
	assert_int_equal(rf_source_log_read(s, &sink, 256), 20);
	assert_string_equal(field(cap.line[0], "message", NULL), "after the first truncation 0");
	cap_clear(&cap);

	/* after reading: 10 lines read, then truncated and 20 longer lines written at once */
	for (int i = 0; i < 10; i++) {
		snprintf(line, sizeof(line), "before %d\n", i);
		appends("busy.log", line);
	}
	assert_int_equal(rf_source_log_read(s, &sink, 256), 10);
	cap_clear(&cap);
	rf_source_log_stats(s, &st);
	uint64_t reopened = st.reopened;
	assert_int_equal(truncate(path_of("busy.log"), 0), 0);
	for (int i = 0; i < 30; i++) {
		snprintf(line, sizeof(line), "after the second truncation %d\n", i);
		appends("busy.log", line);
	}
	assert_int_equal(rf_source_log_read(s, &sink, 256), 30);
	assert_int_equal(cap.lines, 30);
	assert_string_equal(field(cap.line[0], "message", NULL), "after the second truncation 0");
	assert_string_equal(field(cap.line[29], "message", NULL), "after the second truncation 29");
	cap_clear(&cap);

	/* plain appends are not taken for a truncation: read once, from where it stopped */
	appends("busy.log", "one more\n");
	assert_int_equal(rf_source_log_read(s, &sink, 256), 1);
	assert_string_equal(field(cap.line[0], "message", NULL), "one more");
	cap_clear(&cap);
	rf_source_log_stats(s, &st);
	assert_int_equal(st.reopened - reopened, 1);
	assert_int_equal(st.malformed, 0);
	assert_int_equal(st.emitted, 61);
	rf_source_log_free(s);
}

static void test_spec(void **state)
{
	struct rf_source_log *s = NULL;
	struct rf_diag d = {0};

	(void)state;
	assert_false(rf_source_log_known("log:"));
	assert_false(rf_source_log_known("log:nosuch=/x"));
	assert_false(rf_source_log_known("log:linux_sshd=relative"));
	assert_false(rf_source_log_known("log:linux_sshd"));
	assert_false(rf_source_log_known("proc"));
	assert_true(rf_source_log_known("log:linux_sshd=/a,b,log:webserver=/c"));
	assert_int_equal(rf_source_log_open("log:nosuch=/x", &s, &d), -EINVAL);
	assert_non_null(strstr(d.first, "unknown event type"));
	assert_null(s);
	/* the reason, for the usage error (the 2026-12 review: it was "not found") */
	memset(&d, 0, sizeof(d));
	assert_int_equal(rf_source_log_check("log:webserver=/a,log:websrver=/x", &d), -EINVAL);
	assert_non_null(strstr(d.first, "unknown event type 'websrver'"));
	memset(&d, 0, sizeof(d));
	assert_int_equal(rf_source_log_check("log:webserver=relative/x", &d), -EINVAL);
	assert_non_null(strstr(d.first, "each PATH must be absolute"));
	assert_int_equal(rf_source_log_check("log:webserver=/var/log/x", NULL), 0);

	/* the review 4-5: a trailing comma was taken into PATH ("/x,": followed for ever) */
	memset(&d, 0, sizeof(d));
	assert_false(rf_source_log_known("log:okta=/x.log,"));
	assert_int_equal(rf_source_log_check("log:okta=/x.log,", &d), -EINVAL);
	assert_non_null(strstr(d.first, "a PATH ends with ','"));

	/* one file twice for an EVENT: each line was that many events (a count correlation fired
	 * on one line); by the same path up to "." and '/', or by another path to its inode */
	char spec[4 * 300];
	const char *same[][2] = {
	    {"dup.log", "dup.log"},	 {"dup.log", "./dup.log"},   {"dup.log", "/dup.log"},
	    {"dup.log", "dup-link.log"}, {"none.log", "./none.log"},
	};
	appends("dup.log", "");
	(void)unlink(path_of("dup-link.log"));
	char target[512];
	snprintf(target, sizeof(target), "%s", path_of("dup.log"));
	assert_int_equal(link(target, path_of("dup-link.log")), 0);
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		snprintf(spec, sizeof(spec), "log:okta=%s/%s,log:linux_sshd=%s/x,log:okta=%s/%s",
			 dir, same[i][0], dir, dir, same[i][1]);
		memset(&d, 0, sizeof(d));
		if (rf_source_log_check(spec, &d) != -EINVAL)
			fail_msg("not refused: %s", spec);
		assert_non_null(strstr(d.first, "are the same file for event okta"));
		memset(&d, 0, sizeof(d));
		assert_int_equal(rf_source_log_open(spec, &s, &d), -EINVAL);
		assert_null(s);
	}
	/* one file for two EVENTs is two readings of it (linux_log and linux_sshd on auth.log) */
	snprintf(spec, sizeof(spec), "log:linux_log=%s/dup.log,log:linux_sshd=%s/dup.log", dir,
		 dir);
	assert_int_equal(rf_source_log_check(spec, NULL), 0);
	snprintf(spec, sizeof(spec), "log:okta=%s/dup.log,log:okta=%s/dup.log2", dir, dir);
	assert_int_equal(rf_source_log_check(spec, NULL), 0);

	/* a directory or a FIFO as PATH was followed as nothing, without a word */
	snprintf(spec, sizeof(spec), "log:linux_sshd=%s", dir);
	memset(&d, 0, sizeof(d));
	assert_int_equal(rf_source_log_check(spec, &d), -EINVAL);
	assert_non_null(strstr(d.first, "is a directory"));
	assert_int_equal(rf_source_log_open(spec, &s, &d), -EINVAL);
	(void)unlink(path_of("fifo"));
	assert_int_equal(mkfifo(path_of("fifo"), 0600), 0);
	snprintf(spec, sizeof(spec), "log:linux_sshd=%s/fifo", dir);
	memset(&d, 0, sizeof(d));
	assert_int_equal(rf_source_log_check(spec, &d), -EINVAL);
	assert_non_null(strstr(d.first, "is not a regular file"));
	assert_int_equal(rf_source_log_open(spec, &s, &d), -EINVAL);
	assert_null(s);
}

/* The source's table and manifests/ringfence-agent-logs-1.0.0.json name the same events; JSON
 * ones are open with no listed fields, the others list exactly the parser's fields. */
static void test_manifest_agrees(void **state)
{
	const char *root = getenv("RF_SOURCE_ROOT"), *name, *fmt;
	char path[4096];
	uint8_t *b = NULL;
	size_t n = 0, count = 0;
	struct rf_manifest *m = NULL;
	struct rf_diag d = {0};

	(void)state;
	snprintf(path, sizeof(path), "%s/manifests/ringfence-agent-logs-1.0.0.json",
		 root ? root : ".");
	assert_int_equal(rf_file_read(path, RF_MANIFEST_MAX, &b, &n), 0);
	assert_int_equal(rf_manifest_parse(b, n, &m, &d), 0);
	free(b);
	for (size_t i = 0; (name = rf_source_log_event(i, &fmt)); i++, count++) {
		if (!rf_manifest_has_event(m, name))
			fail_msg("event %s is not in the manifest", name);
		bool json = !strcmp(fmt, "json"), kv = !strcmp(fmt, "kv");
		assert_int_equal(rf_manifest_event_open(m, name), json || kv);
		size_t nf = 0;
		bool is_int;
		const char *f;
		for (; (f = rf_source_log_field(i, nf, &is_int)); nf++)
			assert_int_equal(rf_manifest_field_type(m, name, f),
					 is_int ? RF_FT_INT : RF_FT_STRING);
		assert_int_equal(rf_manifest_event_nfields(m, name), nf);
	}
	assert_int_equal(count, 55);
	rf_manifest_free(m);
}

static void count_alert(void *ud, size_t rule_index, const struct rf_rule_info *rule)
{
	(void)rule_index;
	(void)rule;
	(*(int *)ud)++;
}

/*
 * Schemaless events through the engine: a rule on a field the manifest does not list (open
 * event) compiles, verifies and loads, and fires on the source's line; a keyword rule on an
 * open event searches every string the line carries, listed or not (docs/sigma.md, Manifests).
 */
static void test_engine_open(void **state)
{
	static const char *const rules[] = {
	    "title: t1\nid: r1\nlogsource: {product: azure, service: activitylogs}\n"
	    "detection:\n  sel:\n    properties.message|contains: 'Delete'\n  condition: sel\n",
	    "title: t2\nid: r2\nlogsource: {product: azure, service: activitylogs}\n"
	    "detection:\n  keywords:\n    - 'Microsoft.Network/firewallPolicies/delete'\n"
	    "  condition: keywords\n",
	    "title: t3\nid: r3\nlogsource: {product: kubernetes, category: application, service: "
	    "audit}\ndetection:\n  sel:\n    verb: create\n    objectRef.resource: pods\n"
	    "  condition: sel\n",
	};
	const char *root = getenv("RF_SOURCE_ROOT");
	char path[4096];
	uint8_t *b = NULL, *pack = NULL;
	size_t n = 0, plen;
	struct rf_manifest *m = NULL;
	struct rf_diag d = {0};
	struct rf_pack_builder *pb = NULL;
	struct rf_source_log *s;
	struct rf_engine *e = NULL;
	struct rf_engine_scratch *sc = NULL;

	(void)state;
	snprintf(path, sizeof(path), "%s/manifests/ringfence-agent-logs-1.0.0.json",
		 root ? root : ".");
	assert_int_equal(rf_file_read(path, RF_MANIFEST_MAX, &b, &n), 0);
	assert_int_equal(rf_manifest_parse(b, n, &m, &d), 0);
	free(b);
	assert_int_equal(rf_pack_builder_new(&pb), 0);
	for (size_t i = 0; i < 3; i++) {
		struct rf_sigma_rule *r = NULL;
		if (rf_sigma_compile((const uint8_t *)rules[i], strlen(rules[i]), "t", m, &r, &d))
			fail_msg("rule %zu: %s", i, d.first);
		assert_int_equal(rf_pack_builder_add(pb, rf_sigma_rule_ir(r), &d), 0);
		rf_sigma_rule_free(r);
	}
	assert_int_equal(rf_pack_builder_finish(pb, 1, &pack, &plen), 0);
	if (rf_engine_load(pack, plen, m, &e, &d) != 0)
		fail_msg("load: %s", d.first);
	assert_int_equal(rf_engine_scratch_new(e, &sc), 0);
	assert_int_equal(rf_source_log_new(&s), 0);
	cap_clear(&cap);
	put(s, "azure_activitylogs",
	    "{\"operationName\":\"x\",\"properties\":{\"message\":\"Delete policy\","
	    "\"entity\":\"/subscriptions/1/Microsoft.Network/firewallPolicies/delete\"}}",
	    0);
	put(s, "azure_activitylogs", "{\"operationName\":\"y\",\"other\":\"nothing here\"}", 0);
	put(s, "kubernetes_audit",
	    "{\"verb\":\"create\",\"objectRef\":{\"resource\":\"pods\",\"namespace\":\"x\"}}", 0);
	int want[3] = {2, 0, 1};
	for (size_t i = 0; i < 3; i++) {
		int alerts = 0;
		struct rf_diag pd = {0};
		assert_int_equal(rf_event_parse((const uint8_t *)cap.line[i],
						strlen(cap.line[i]) - 1, scratch, sizeof(scratch),
						&evt, &pd),
				 0);
		int r = rf_engine_eval(e, &evt, sc, count_alert, &alerts, NULL);
		if (r != want[i] || alerts != want[i])
			fail_msg("line %zu: %d alerts, want %d: %s", i, r, want[i], cap.line[i]);
	}
	cap_clear(&cap);
	rf_source_log_free(s);
	rf_engine_scratch_free(sc);
	rf_engine_free(e);
	rf_pack_builder_free(pb);
	free(pack);
	rf_manifest_free(m);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/rf-source-log-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	const char *names[] = {"auth.log", "auth.log.1", "ct.jsonl"};

	(void)state;
	for (size_t i = 0; i < 3; i++)
		unlink(path_of(names[i]));
	rmdir(dir);
	cap_clear(&cap);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_json_nul_bigint),
	    cmocka_unit_test(test_json_repair),
	    cmocka_unit_test(test_text_access_kv),
	    cmocka_unit_test(test_follow),
	    cmocka_unit_test(test_copytruncate_regrow),
	    cmocka_unit_test(test_spec),
	    cmocka_unit_test(test_manifest_agrees),
	    cmocka_unit_test(test_engine_open),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
