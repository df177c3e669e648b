/*
 * Canonical JSON, securesystemslib flavour: what TUF signatures are computed over.
 *
 * Output rules (securesystemslib.formats.encode_canonical, also @tufjs/canonical-json):
 * objects with keys sorted by their UTF-8 bytes (the same order as by code point), no
 * whitespace, strings with only '"' and '\' escaped and every other byte (control characters,
 * non-ASCII) written raw, integers in decimal, true/false/null; reals are refused. The input is
 * parsed with jansson with duplicate keys rejected (JSON_REJECT_DUPLICATES): two readers
 * could otherwise see different values for the same signed bytes. jansson also rejects invalid
 * UTF-8 and "\u0000", so every string is NUL-free UTF-8 and strcmp() orders keys correctly.
 * Recursion is bounded by RF_TUF_JSON_DEPTH_MAX.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "ringfence/limits.h"
#include "trust/tuf-internal.h"

int rf__tuf_json_parse(const uint8_t *p, size_t n, json_t **ret, struct rf_diag *d)
{
	json_error_t err;
	json_t *v = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);

	if (!v) {
		char q[128];
		return rf_diag_report(d, -EBADMSG, "malformed JSON at byte %d (line %d): %s",
				      err.position, err.line,
				      rf_diag_quote(q, sizeof(q), err.text, strlen(err.text)));
	}
	*ret = v;
	return 0;
}

static int put_string(struct rf_buf *b, const char *s, size_t n)
{
	int r = rf_buf_append(b, "\"", 1);
	size_t start = 0;

	for (size_t i = 0; r == 0 && i < n; i++) {
		if (s[i] != '"' && s[i] != '\\')
			continue;
		r = rf_buf_append(b, s + start, i - start);
		if (r == 0)
			r = rf_buf_append(b, "\\", 1);
		start = i; /* the quote or backslash itself is written with the next run */
	}
	if (r == 0)
		r = rf_buf_append(b, s + start, n - start);
	if (r == 0)
		r = rf_buf_append(b, "\"", 1);
	return r;
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int encode(const json_t *v, struct rf_buf *b, unsigned depth, struct rf_diag *d)
{
	int r = 0;

	if (depth > RF_TUF_JSON_DEPTH_MAX)
		return rf_diag_report(d, -E2BIG, "JSON nested deeper than %u",
				      RF_TUF_JSON_DEPTH_MAX);
	switch (json_typeof(v)) {
	case JSON_NULL:
		return rf_buf_append(b, "null", 4);
	case JSON_TRUE:
		return rf_buf_append(b, "true", 4);
	case JSON_FALSE:
		return rf_buf_append(b, "false", 5);
	case JSON_REAL:
		return rf_diag_report(d, -EBADMSG,
				      "a real number cannot be canonical JSON (integers only)");
	case JSON_INTEGER: {
		char num[32];
		json_int_t x = json_integer_value(v);
		unsigned long long u = x < 0 ? 0ull - (unsigned long long)x : (unsigned long long)x;
		size_t i = sizeof(num);
		do {
			num[--i] = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		if (x < 0)
			num[--i] = '-';
		return rf_buf_append(b, num + i, sizeof(num) - i);
	}
	case JSON_STRING:
		return put_string(b, json_string_value(v), json_string_length(v));
	case JSON_ARRAY: {
		size_t n = json_array_size(v);
		r = rf_buf_append(b, "[", 1);
		for (size_t i = 0; r == 0 && i < n; i++) {
			if (i)
				r = rf_buf_append(b, ",", 1);
			if (r == 0)
				r = encode(json_array_get(v, i), b, depth + 1, d);
		}
		return r ? r : rf_buf_append(b, "]", 1);
	}
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		const char **keys = calloc(n ? n : 1, sizeof(*keys));
		const char *k;
		json_t *val;

		if (!keys)
			return -ENOMEM;
		json_object_foreach((json_t *)v, k, val) keys[i++] = k;
		qsort(keys, n, sizeof(*keys), cmp_keys);
		r = rf_buf_append(b, "{", 1);
		for (i = 0; r == 0 && i < n; i++) {
			if (i)
				r = rf_buf_append(b, ",", 1);
			if (r == 0)
				r = put_string(b, keys[i], strlen(keys[i]));
			if (r == 0)
				r = rf_buf_append(b, ":", 1);
			if (r == 0)
				r = encode(json_object_get(v, keys[i]), b, depth + 1, d);
		}
		free(keys);
		return r ? r : rf_buf_append(b, "}", 1);
	}
	}
	return rf_diag_report(d, -EBADMSG, "unknown JSON value type");
}

int rf__tuf_canonical(const json_t *v, char **ret, size_t *ret_len, struct rf_diag *d)
{
	struct rf_buf b = RF_BUF_INIT(RF_FILE_MAX);
	uint8_t *out;
	int r = encode(v, &b, 0, d);

	if (r == 0)
		r = rf_buf_steal(&b, &out, ret_len);
	if (r < 0) {
		rf_buf_free(&b);
		return r;
	}
	*ret = (char *)out;
	return 0;
}

int rf_tuf_canonicalize(const uint8_t *p, size_t n, char **ret, size_t *ret_len, struct rf_diag *d)
{
	json_t *v = NULL;
	int r = rf__tuf_json_parse(p, n, &v, d);

	if (r < 0)
		return r;
	r = rf__tuf_canonical(v, ret, ret_len, d);
	json_decref(v);
	return r;
}
