/*
 * Tests of the event parser's UTF-8 checks (rf_event_parse, include/ringfence/content.h): a
 * table of invalid sequences (overlong, surrogate, above U+10FFFF, truncated, stray bytes) in
 * names and values, on the in-place path and after an escape, each rejected with a diagnostic
 * that names the byte offset; the boundary scalars accepted; and a differential test against
 * jansson (which validates UTF-8 itself) over every two-byte sequence, the edges of the three-
 * and four-byte forms and tens of thousands of deterministic mutations of real event lines:
 * both must accept or reject the same lines (jansson's verdict narrowed to what an event is:
 * a flat object with a non-empty "event" string), and where both accept, every string they
 * decode must be the same bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ringfence/content.h"
#include "ringfence/limits.h"

/* Parse a copy of p[0..n) in an exact-size heap buffer (so ASan sees any read past the end). */
static int parse_n(const void *p, size_t n, struct rf_event *ev, uint8_t **ret_copy,
		   uint8_t **ret_scratch, struct rf_diag *d)
{
	uint8_t *copy = malloc(n ? n : 1), *scratch = malloc(n ? n : 1);

	assert_non_null(copy);
	assert_non_null(scratch);
	memcpy(copy, p, n);
	int r = rf_event_parse(copy, n, scratch, n, ev, d);
	*ret_copy = copy;
	*ret_scratch = scratch;
	return r;
}

static int parse(const char *js, size_t *ret_count, char *first, size_t first_len)
{
	static struct rf_event ev;
	struct rf_diag d = {0};
	uint8_t *c, *s;
	int r = parse_n(js, strlen(js), &ev, &c, &s, &d);

	free(c);
	free(s);
	*ret_count = d.count;
	snprintf(first, first_len, "%s", d.first);
	return r;
}

static void test_invalid_utf8_rejected_with_offset(void **state)
{
	/* at: the byte offset the diagnostic must name. */
	static const struct {
		const char *js, *why;
		size_t at;
	} bad[] = {
	    /* In a value, on the in-place path. Offset 18 is the first byte of the value. */
	    {"{\"event\":\"e\",\"X\":\"\xc0\xaf\"}", "overlong", 18},
	    {"{\"event\":\"e\",\"X\":\"\xc1\xbf\"}", "overlong", 18},
	    {"{\"event\":\"e\",\"X\":\"\xe0\x80\xaf\"}", "overlong", 18},
	    {"{\"event\":\"e\",\"X\":\"\xe0\x9f\xbf\"}", "overlong", 18},
	    {"{\"event\":\"e\",\"X\":\"\xf0\x80\x80\xaf\"}", "overlong", 18},
	    {"{\"event\":\"e\",\"X\":\"\xf0\x8f\xbf\xbf\"}", "overlong", 18},
	    {"{\"event\":\"e\",\"X\":\"\xed\xa0\x80\"}", "surrogate", 18},
	    {"{\"event\":\"e\",\"X\":\"\xed\xbf\xbf\"}", "surrogate", 18},
	    {"{\"event\":\"e\",\"X\":\"\xf4\x90\x80\x80\"}", "above U+10FFFF", 18},
	    {"{\"event\":\"e\",\"X\":\"\xf7\xbf\xbf\xbf\"}", "above U+10FFFF", 18},
	    {"{\"event\":\"e\",\"X\":\"\xf8\x88\x80\x80\x80\"}", "lead byte", 18},
	    {"{\"event\":\"e\",\"X\":\"\xff\"}", "lead byte", 18},
	    {"{\"event\":\"e\",\"X\":\"\x80\"}", "continuation", 18},
	    {"{\"event\":\"e\",\"X\":\"ab\xbf\"}", "continuation", 20},
	    {"{\"event\":\"e\",\"X\":\"\xc3\"}", "truncated", 18},
	    {"{\"event\":\"e\",\"X\":\"\xe2\x82\"}", "truncated", 18},
	    {"{\"event\":\"e\",\"X\":\"\xf0\x9f\x98\"}", "truncated", 18},
	    {"{\"event\":\"e\",\"X\":\"\xe2\x82x\"}", "truncated", 18},
	    {"{\"event\":\"e\",\"X\":\"abcdefgh\xc3\xa9ijklmnop\xe9\"}", "truncated", 36},
	    /* A sequence cut by the closing quote or an escape. */
	    {"{\"event\":\"e\",\"X\":\"\xe2\x82\\n\"}", "truncated", 18},
	    /* In a value, after an escape (the scratch path). */
	    {"{\"event\":\"e\",\"X\":\"\\n\xed\xa0\x80\"}", "surrogate", 20},
	    {"{\"event\":\"e\",\"X\":\"\\u00e9abcdefghijk\xc0\x80\"}", "overlong", 35},
	    {"{\"event\":\"e\",\"X\":\"\\\"\xf4\x90\x80\x80\\\"\"}", "above U+10FFFF", 20},
	    /* In a member name, in place and after an escape. */
	    {"{\"event\":\"e\",\"\xc0\xaf\":\"x\"}", "overlong", 14},
	    {"{\"event\":\"e\",\"a\\tb\xed\xb0\x80\":\"x\"}", "surrogate", 18},
	    {"{\"\xf0\x9f\x98\":\"x\",\"event\":\"e\"}", "truncated", 2},
	    /* In the event type. */
	    {"{\"event\":\"proc\xe9ss\"}", "truncated", 14},
	    /* Unpaired surrogates as \u escapes: the offset is the backslash. */
	    {"{\"event\":\"e\",\"X\":\"\\ud800\"}", "surrogate", 18},
	    {"{\"event\":\"e\",\"X\":\"ab\\udbff\"}", "surrogate", 20},
	    {"{\"event\":\"e\",\"X\":\"\\udc00\"}", "surrogate", 18},
	    {"{\"event\":\"e\",\"X\":\"\\udfff\\ud800\"}", "surrogate", 18},
	    {"{\"event\":\"e\",\"X\":\"\\ud800\\u0041\"}", "surrogate", 18},
	    {"{\"event\":\"e\",\"X\":\"\\ud800\\ud800\"}", "surrogate", 18},
	    {"{\"event\":\"e\",\"X\":\"\\ud800x\"}", "surrogate", 18},
	    {"{\"event\":\"e\",\"\\udc00\":1}", "surrogate", 14},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char first[256], want[32];
		size_t count;
		int r = parse(bad[i].js, &count, first, sizeof(first));

		snprintf(want, sizeof(want), "byte %zu:", bad[i].at);
		if (r != -EBADMSG || count == 0 || strncmp(first, want, strlen(want)) ||
		    !strstr(first, bad[i].why))
			fail_msg("case %zu: got %d '%s', want -EBADMSG '%s ... %s ...'", i, r,
				 first, want, bad[i].why);
	}
}

static void test_valid_utf8_boundaries_accepted(void **state)
{
	/* The first and last scalar of each length, the edges around the surrogates, and the
	 * same through escapes: each must come back as exactly these bytes. */
	static const struct {
		const char *raw, *dec;
	} ok[] = {
	    {"\xc2\x80", "\xc2\x80"},
	    {"\xdf\xbf", "\xdf\xbf"},
	    {"\xe0\xa0\x80", "\xe0\xa0\x80"},
	    {"\xed\x9f\xbf", "\xed\x9f\xbf"},
	    {"\xee\x80\x80", "\xee\x80\x80"},
	    {"\xef\xbf\xbf", "\xef\xbf\xbf"},
	    {"\xf0\x90\x80\x80", "\xf0\x90\x80\x80"},
	    {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},
	    {"\\u0080", "\xc2\x80"},
	    {"\\u07ff", "\xdf\xbf"},
	    {"\\ud7ff", "\xed\x9f\xbf"},
	    {"\\ue000", "\xee\x80\x80"},
	    {"\\uffff", "\xef\xbf\xbf"},
	    {"\\ud800\\udc00", "\xf0\x90\x80\x80"},
	    {"\\udbff\\udfff", "\xf4\x8f\xbf\xbf"},
	    {"a\\n\xc3\xa9\\u00e9\xf0\x9f\x98\x80", "a\n\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80"},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		static struct rf_event ev;
		char js[128];
		struct rf_diag d = {0};
		uint8_t *c, *s;

		/* As a value and as a member name. */
		snprintf(js, sizeof(js), "{\"event\":\"e\",\"X\":\"%s\",\"%s\":1}", ok[i].raw,
			 ok[i].raw);
		int r = parse_n(js, strlen(js), &ev, &c, &s, &d);
		if (r != 0)
			fail_msg("case %zu: got %d (%s) on %s", i, r, d.first, js);
		size_t dl = strlen(ok[i].dec);
		assert_int_equal(ev.n_fields, 2);
		assert_int_equal(ev.fields[0].value_len, dl);
		assert_memory_equal(ev.fields[0].value, ok[i].dec, dl);
		assert_int_equal(ev.fields[1].name_len, dl);
		assert_memory_equal(ev.fields[1].name, ok[i].dec, dl);
		free(c);
		free(s);
	}
}

/* ---- differential test against jansson --------------------------------------------------- */

/* Does jansson refuse this for a reason that is not about JSON: a number too large for its
 * types, or a "\u0000" in a member name (its keys are C strings)? */
static bool jansson_own_limit(const json_error_t *e)
{
	return strstr(e->text, "too big") || strstr(e->text, "overflow") ||
	       strstr(e->text, "NUL byte in object key");
}

/* Is a document jansson accepted an event: a flat object, names 1..RF_NAME_MAX bytes, values
 * scalars, a non-empty string "event", at most RF_EVENT_FIELDS_MAX non-null fields and as many
 * null members? */
static bool is_event(json_t *j)
{
	const char *k;
	json_t *v;
	size_t fields = 0, nulls = 0;
	bool type = false;

	if (!json_is_object(j))
		return false;
	json_object_foreach(j, k, v)
	{
		size_t kl = strlen(k);
		if (kl == 0 || kl > RF_NAME_MAX || json_is_object(v) || json_is_array(v))
			return false;
		if (!strcmp(k, "event")) {
			if (!json_is_string(v) || json_string_length(v) == 0)
				return false;
			type = true;
		} else if (json_is_null(v)) {
			nulls++;
		} else {
			fields++;
		}
	}
	return type && fields <= RF_EVENT_FIELDS_MAX && nulls <= RF_EVENT_FIELDS_MAX;
}

/* Both accepted: every string must decode to the same bytes. */
static void same_strings(const struct rf_event *ev, json_t *j, const char *doc, size_t n)
{
	json_t *t = json_object_get(j, "event");

	if (ev->type_len != json_string_length(t) ||
	    memcmp(ev->type, json_string_value(t), ev->type_len))
		fail_msg("event type differs from jansson's on: %.*s", (int)n, doc);
	for (size_t i = 0; i < ev->n_fields; i++) {
		const struct rf_event_field *f = &ev->fields[i];
		char key[RF_NAME_MAX + 1];
		memcpy(key, f->name, f->name_len);
		key[f->name_len] = '\0';
		json_t *v = json_object_get(j, key);
		if (!v || json_is_string(v) != f->is_string ||
		    (f->is_string && (f->value_len != json_string_length(v) ||
				      memcmp(f->value, json_string_value(v), f->value_len))))
			fail_msg("field %zu differs from jansson's on: %.*s", i, (int)n, doc);
	}
}

struct tally {
	unsigned agree, accepted, skipped;
};

static void compare(const char *doc, size_t n, struct tally *t)
{
	static struct rf_event ev;
	struct rf_diag d = {0};
	json_error_t je;
	uint8_t *c, *s;
	int r = parse_n(doc, n, &ev, &c, &s, &d);
	json_t *j = json_loadb(doc, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	bool ours = r == 0, theirs = j && is_event(j);

	if (!j && jansson_own_limit(&je)) {
		t->skipped++;
	} else if (ours != theirs) {
		fail_msg("rf_event_parse %s (%d: %s), jansson %s (%s) on: %.*s",
			 ours ? "accepts" : "rejects", r, ours ? "" : d.first,
			 theirs ? "accepts" : "rejects", j ? "not an event" : je.text, (int)n, doc);
	} else {
		if (!ours && d.count == 0)
			fail_msg("rejected without a diagnostic: %.*s", (int)n, doc);
		if (ours)
			same_strings(&ev, j, doc, n);
		t->agree++;
		t->accepted += ours;
	}
	json_decref(j);
	free(c);
	free(s);
}

/* Hand-picked lines: duplicates through null members and escapes, limits, structure. */
static void test_differential_edge_cases(void **state)
{
	static const char *const docs[] = {
	    "{\"event\":\"e\",\"x\":null,\"x\":1}",
	    "{\"event\":\"e\",\"x\":1,\"x\":null}",
	    "{\"event\":\"e\",\"x\":null,\"x\":null}",
	    "{\"x\":null,\"event\":\"e\",\"\\u0078\":\"y\"}",
	    "{\"event\":null,\"event\":\"e\"}",
	    "{\"event\":\"e\",\"\\u0065vent\":\"f\"}",
	    "{\"event\":\"e\",\"\\u00e9\":1,\"\xc3\xa9\":2}",
	    "{\"event\":\"e\",\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":null}",
	    "{\"event\":\"e\",\"x\":null}",
	    "{\"event\":\"\"}",
	    "{\"event\":\"\\u0000\"}",
	    "{\"event\":\"e\",\"x\":\"a\\u0000b\"}",
	    "{\"event\":\"e\",\"x\":-0.0e-0}",
	    "{\"event\":\"e\",\"x\":1E+2}",
	    "{\"event\":\"e\",\"x\":false}",
	    " \t\r\n{ \"event\" : \"e\" } \n",
	    "{\"event\":\"e\"}\x00",
	    "\xef\xbb\xbf{\"event\":\"e\"}",
	    "{\"event\":\"e\",\"x\":\"\x7f\"}",
	};
	struct tally t = {0};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		compare(docs[i], strlen(docs[i]), &t);
	/* 128 fields and 128 null members are an event; one more of either is not. */
	char *big = malloc(64 * 1024);
	assert_non_null(big);
	for (unsigned extra_field = 0; extra_field < 2; extra_field++)
		for (unsigned extra_null = 0; extra_null < 2; extra_null++) {
			int o = sprintf(big, "{\"event\":\"a\"");
			for (unsigned i = 0; i < RF_EVENT_FIELDS_MAX + extra_field; i++)
				o += sprintf(big + o, ",\"f%u\":1", i);
			for (unsigned i = 0; i < RF_EVENT_FIELDS_MAX + extra_null; i++)
				o += sprintf(big + o, ",\"n%u\":null", i);
			strcpy(big + o, "}");
			compare(big, strlen(big), &t);
		}
	free(big);
	assert_int_equal(t.agree, sizeof(docs) / sizeof(docs[0]) + 4);
}

/* Every byte pair, and the edges of the longer forms, inside a value and inside a name. */
static void test_differential_sequences(void **state)
{
	static const uint8_t edge[] = {0x00, 0x22, 0x41, 0x5c, 0x7f, 0x80, 0x8f, 0x90,
				       0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff};
	struct tally t = {0};
	char doc[64];

	for (unsigned a = 0; a < 256; a++)
		for (unsigned b = 0; b < 256; b++) {
			int n =
			    snprintf(doc, sizeof(doc), "{\"event\":\"e\",\"X\":\"%c%c\"}", a, b);
			/* snprintf stops at NUL bytes, so write the pair by hand. */
			doc[18] = (char)a;
			doc[19] = (char)b;
			compare(doc, (size_t)n, &t);
			n = snprintf(doc, sizeof(doc), "{\"event\":\"e\",\"a\\t%c%c\":1}", a, b);
			doc[17] = (char)a;
			doc[18] = (char)b;
			compare(doc, (size_t)n, &t);
		}
	for (unsigned a = 0xe0; a < 0x100; a++)
		for (unsigned b = 0x80; b < 0xc0; b++)
			for (size_t k = 0; k < sizeof(edge); k++)
				for (size_t l = 0; l < sizeof(edge); l += 5) {
					int n = snprintf(doc, sizeof(doc),
							 "{\"event\":\"e\",\"X\":\"....\"}");
					doc[18] = (char)a;
					doc[19] = (char)b;
					doc[20] = (char)edge[k];
					doc[21] = (char)edge[l];
					compare(doc, (size_t)n, &t);
				}
	print_message("rf_event_parse and jansson agree on %u byte sequences (%u accepted, %u "
		      "skipped)\n",
		      t.agree, t.accepted, t.skipped);
	/* The valid two-byte forms alone are 30 x 64 per position. */
	assert_true(t.accepted > 3000);
	assert_true(t.agree > 150000);
}

/* Long runs: the parser searches and copies 16 bytes at a time (SSE2) and 8 at a time after
 * that, so every special byte or sequence (a quote, an escape, a control character, valid and
 * invalid UTF-8) is put at every offset of a 40-byte value and of a 40-byte name, after a plain
 * run or after an escape, with every length of the line's tail, and compared with jansson. The
 * buffers are exactly the line's length, so a store past the scratch is caught by ASan. */
static void test_differential_positions(void **state)
{
	static const char *const special[] = {"\"",
					      "\\\\",
					      "\\n",
					      "\\u00e9",
					      "\x01",
					      "\x1f",
					      "\x7f",
					      "\xc3\xa9",
					      "\xe2\x82\xac",
					      "\xc3",
					      "\x80",
					      "\xed\xa0\x80",
					      "\xf0\x9f\x98\x80",
					      " "};
	static const char *const lead[] = {"", "\\\\", "\xc3\xa9"};
	struct tally t = {0};
	char doc[256], val[128];

	for (size_t l = 0; l < sizeof(lead) / sizeof(lead[0]); l++)
		for (size_t k = 0; k < sizeof(special) / sizeof(special[0]); k++)
			for (int pos = 0; pos <= 40; pos++)
				for (int tail = 0; tail < 3; tail++) {
					int m = snprintf(
					    val, sizeof(val), "%s%.*s%s%.*s", lead[l], pos,
					    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", special[k],
					    40 - pos, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
					int n = snprintf(doc, sizeof(doc),
							 "{\"event\":\"e\",\"X\":\"%s\"%.*s}", val,
							 tail * 7, ",\"Y\":1 ,\"Z\":22");
					compare(doc, (size_t)n, &t);
					n = snprintf(doc, sizeof(doc),
						     "{\"event\":\"e\",\"N%s\":\"v\"%.*s}", val,
						     tail * 7, ",\"Y\":1 ,\"Z\":22");
					compare(doc, (size_t)n, &t);
					assert_true(m > 0);
				}
	print_message("rf_event_parse and jansson agree on %u long runs (%u accepted)\n", t.agree,
		      t.accepted);
	assert_true(t.accepted > 1000);
	assert_int_equal(t.agree + t.skipped, 2 * 3 * 14 * 41 * 3);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_differential_mutations(void **state)
{
	static const char *const seeds[] = {
	    "{\"event\":\"process_creation\",\"Image\":\"C:\\\\Windows\\\\System32\\\\cmd.exe\","
	    "\"CommandLine\":\"cmd /c echo h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\","
	    "\"ProcessId\":4242,\"User\":null,\"Elevated\":true,\"Score\":-0.5e3}",
	    "{\"event\":\"network_connection\",\"DestinationIp\":\"10.1.2.3\","
	    "\"DestinationPort\":445,\"d\\u00e9j\\u00e0\":\"\\ud83d\\ude00\\\"\\\\\\/"
	    "\\b\\f\\n\\r\\t\"}",
	    "{\"\xe6\x97\xa5\xe6\x9c\xac\":\"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\","
	    "\"event\":\"file_event\",\"TargetFilename\":\"C:\\\\Users\\\\\xc3\xa9t\xc3\xa9.txt\"}",
	};
	/* Single bytes and whole tokens: valid and invalid sequences, escapes, structure. */
	static const char *const tokens[] = {
	    "{",
	    "}",
	    "[",
	    "]",
	    ":",
	    ",",
	    "\"",
	    "\\",
	    " ",
	    "0",
	    "1",
	    "-",
	    ".",
	    "e",
	    "t",
	    "n",
	    "u",
	    "a",
	    "\x01",
	    "\x7f",
	    "\x80",
	    "\xbf",
	    "\xc0",
	    "\xc1",
	    "\xc2",
	    "\xdf",
	    "\xe0",
	    "\xed",
	    "\xef",
	    "\xf0",
	    "\xf4",
	    "\xf5",
	    "\xff",
	    "\xc3\xa9",
	    "\xe2\x82\xac",
	    "\xf0\x9f\x98\x80",
	    "\xf4\x8f\xbf\xbf",
	    "\xc0\xaf",
	    "\xe0\x80\xaf",
	    "\xed\xa0\x80",
	    "\xed\xbf\xbf",
	    "\xf4\x90\x80\x80",
	    "\xf8\x88\x80\x80\x80",
	    "\xe2\x82",
	    "\xf0\x9f\x98",
	    "\\ud800",
	    "\\udc00",
	    "\\udbff",
	    "\\ud83d\\ude00",
	    "\\u00e9",
	    "\\u0000",
	    "\\u",
	    "\\n",
	    "null",
	    "true",
	    "\"x\":1,",
	    ",\"X\":\"y\"",
	};
	struct tally t = {0};

	for (int iter = 0; iter < 60000; iter++) {
		const char *seed = seeds[iter % 3];
		size_t n = strlen(seed);
		char buf[1024];
		memcpy(buf, seed, n);
		int edits = 1 + (int)(rnd() % 3);
		for (int k = 0; k < edits; k++) {
			size_t pos = (size_t)(rnd() % (n ? n : 1));
			const char *tok = tokens[rnd() % (sizeof(tokens) / sizeof(tokens[0]))];
			size_t tl = strlen(tok);
			switch (rnd() % 4) {
			case 0: /* replace one byte */
				buf[pos] = tok[0];
				break;
			case 1: /* delete one byte */
				if (n > 1) {
					memmove(buf + pos, buf + pos + 1, n - pos - 1);
					n--;
				}
				break;
			case 2: /* replace a byte with a token */
				if (n + tl < sizeof(buf)) {
					memmove(buf + pos + tl, buf + pos + 1, n - pos - 1);
					memcpy(buf + pos, tok, tl);
					n += tl - 1;
				}
				break;
			default: /* insert a token */
				if (n + tl < sizeof(buf)) {
					memmove(buf + pos + tl, buf + pos, n - pos);
					memcpy(buf + pos, tok, tl);
					n += tl;
				}
			}
		}
		compare(buf, n, &t);
	}
	print_message("rf_event_parse and jansson agree on %u mutated lines (%u accepted, %u "
		      "skipped: jansson's number and key limits)\n",
		      t.agree, t.accepted, t.skipped);
	assert_true(t.agree > 59000);
	assert_true(t.accepted > 5000);
	assert_true(t.agree - t.accepted > 5000);
}

/* Member names take one of two paths: the usual ones (ASCII, no escape, under 32 bytes, 16 bytes
 * of line after them) are found and hashed for the duplicate check from one or two 16-byte loads,
 * the others through the general string parser and name_hash. Both must give one hash for one
 * name, or a duplicate written once each way slips through. For every name length 1-40, with the
 * name near the end of the line and far from it: a duplicate written the same way twice, with its
 * last or first byte as a \u escape (the other path) before or after the plain one, and names
 * that differ only in their last or first byte. Each is compared with jansson, and the
 * duplicates must be rejected. */
static void test_name_paths_agree_on_duplicates(void **state)
{
	struct tally t = {0};
	unsigned dups = 0;

	(void)state;
	for (size_t len = 1; len <= 40; len++) {
		char plain[64], esc_last[80], esc_first[80], other_last[64], other_first[64];
		for (size_t k = 0; k < len; k++)
			plain[k] = (char)('A' + (k * 7) % 26);
		plain[len] = '\0';
		memcpy(other_last, plain, len + 1);
		other_last[len - 1] = other_last[len - 1] == 'z' ? 'y' : 'z';
		memcpy(other_first, plain, len + 1);
		other_first[0] = 'z';
		snprintf(esc_last, sizeof(esc_last), "%.*s\\u%04x", (int)(len - 1), plain,
			 (unsigned)(unsigned char)plain[len - 1]);
		snprintf(esc_first, sizeof(esc_first), "\\u%04x%s", (unsigned)(unsigned char)plain[0],
			 plain + 1);
		const char *pairs[][2] = {
		    {plain, plain},	  {plain, esc_last},	   {esc_last, plain},
		    {plain, esc_first},	  {esc_first, plain},	   {plain, other_last},
		    {plain, other_first}, {other_last, plain},
		};
		for (size_t pi = 0; pi < sizeof(pairs) / sizeof(pairs[0]); pi++) {
			for (int far = 0; far < 2; far++) {
				char doc[512];
				int n = snprintf(doc, sizeof(doc),
						 "{\"event\":\"x\",\"%s\":\"1\",\"%s\":2%s}",
						 pairs[pi][0], pairs[pi][1],
						 far ? ",\"pad\":\"0123456789012345678901234567890123456789\""
						     : "");
				assert_true(n > 0 && (size_t)n < sizeof(doc));
				compare(doc, (size_t)n, &t);
				if (pi < 5) {
					char first[256];
					size_t count;
					assert_int_equal(parse(doc, &count, first, sizeof(first)),
							 -EBADMSG);
					if (!strstr(first, "duplicate member"))
						fail_msg("%s: %s", doc, first);
					dups++;
				}
			}
		}
	}
	assert_int_equal(dups, 40 * 5 * 2);
	assert_int_equal(t.agree, 40 * 8 * 2);
	assert_int_equal(t.accepted, 40 * 3 * 2);
}

/* Strings with escapes are unescaped on a fast path (a one-byte escape and the 16-byte blocks of
 * the run after it) while 16 bytes of line and scratch are left, and by the general loop near the
 * end. Runs of every length 0-40 between "\\" escapes, with a two-byte UTF-8 character, a stray
 * byte 0xff or a raw control character at each place of the run, the value near the end of the
 * line and far from it: each is compared with jansson (both must accept or reject, and decode to
 * the same bytes). */
static void test_escaped_runs(void **state)
{
	struct tally t = {0};

	(void)state;
	for (size_t run = 0; run <= 40; run++) {
		for (size_t at = 0; at <= run; at++) {
			for (int kind = 0; kind < 4; kind++) {
				for (int far = 0; far < 2; far++) {
					char v[256], doc[512];
					size_t o = 0;
					for (int e = 0; e < 3; e++) {
						v[o++] = '\\';
						v[o++] = '\\';
						for (size_t k = 0; k < run; k++) {
							if (k == at && kind == 1) {
								v[o++] = (char)0xc3;
								v[o++] = (char)0xa9;
							} else if (k == at && kind == 2) {
								v[o++] = (char)0xff;
							} else if (k == at && kind == 3 && e == 1) {
								v[o++] = '\x01';
							} else {
								v[o++] = (char)('a' + (k + e) % 26);
							}
						}
					}
					int n = snprintf(doc, sizeof(doc),
							 "{\"event\":\"x\",%s\"v\":\"%.*s\"}",
							 far ? "" : "\"pad\":\"0123456789abcdefghij\",",
							 (int)o, v);
					assert_true(n > 0 && (size_t)n < sizeof(doc));
					if (far) { /* the value first: the line goes on after it */
						n = snprintf(doc, sizeof(doc),
							     "{\"v\":\"%.*s\",\"event\":\"x\",\"pad\":"
							     "\"0123456789abcdefghij0123456789\"}",
							     (int)o, v);
						assert_true(n > 0 && (size_t)n < sizeof(doc));
					}
					compare(doc, (size_t)n, &t);
				}
			}
		}
	}
	print_message("escaped runs: %u lines agree with jansson, %u accepted\n", t.agree,
		      t.accepted);
	assert_int_equal(t.skipped, 0);
	assert_true(t.accepted > 1000);
	assert_true(t.agree - t.accepted > 1000);
}

/* The parser looks for the expected byte (a name's quote, ':', ',') before it skips whitespace.
 * Each whitespace byte JSON allows, and two bytes it does not ('\v', 'x'), inserted at every
 * place of a line with every kind of value: compared with jansson (both must accept or reject,
 * and decode the same strings). */
static void test_whitespace_everywhere(void **state)
{
	static const char base[] = "{\"event\":\"e\",\"a\":\"x\\\\y\",\"b\":-1.5e3,\"c\":true,"
				   "\"d\":null,\"e\":false,\"f\":\"\"}";
	static const char ins[] = {' ', '\t', '\r', '\n', '\v', 'x'};
	struct tally t = {0};
	size_t bl = sizeof(base) - 1;

	(void)state;
	for (size_t at = 0; at <= bl; at++) {
		for (size_t k = 0; k < sizeof(ins); k++) {
			for (size_t twice = 1; twice <= 2; twice++) {
				char doc[128];
				memcpy(doc, base, at);
				memset(doc + at, ins[k], twice);
				memcpy(doc + at + twice, base + at, bl - at);
				compare(doc, bl + twice, &t);
			}
		}
	}
	print_message("whitespace: %u lines agree with jansson, %u accepted\n", t.agree,
		      t.accepted);
	assert_int_equal(t.agree, (bl + 1) * sizeof(ins) * 2);
	assert_true(t.accepted > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_invalid_utf8_rejected_with_offset),
	    cmocka_unit_test(test_valid_utf8_boundaries_accepted),
	    cmocka_unit_test(test_differential_edge_cases),
	    cmocka_unit_test(test_differential_sequences),
	    cmocka_unit_test(test_differential_positions),
	    cmocka_unit_test(test_differential_mutations),
	    cmocka_unit_test(test_name_paths_agree_on_duplicates),
	    cmocka_unit_test(test_escaped_runs),
	    cmocka_unit_test(test_whitespace_everywhere),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
