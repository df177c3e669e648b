/*
 * Request parsing shared by the device and operator APIs: bodies are checked completely (size,
 * JSON depth, content type, identifier charset and lengths) before anything is touched, so a 4xx
 * changes nothing; and the tokens (random, stored only as SHA-256).
 */
#include <string.h>

#include <openssl/rand.h>

#include "common/util.h"
#include "server/server-internal.h"

/* Deepest nesting of p[0..n) outside strings, stopping early past max (jansson has no depth
 * limit of its own, and a deep document is refused before it is parsed at all). */
static bool depth_ok(const uint8_t *p, size_t n, unsigned max)
{
	unsigned depth = 0;
	bool str = false, esc = false;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				str = false;
		} else if (c == '"') {
			str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return false;
		} else if (c == '}' || c == ']') {
			if (depth)
				depth--;
		}
	}
	return true;
}

/* Content-Type is application/json (type and subtype case-insensitive, RFC 9110 8.3.1),
 * alone or followed by parameters ("; charset=utf-8"); absent is taken as JSON. */
bool rf__srv_json_ctype(const char *ct)
{
	static const char want[] = "application/json";

	if (!ct)
		return true;
	for (size_t i = 0; i < sizeof(want) - 1; i++) {
		char c = ct[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != want[i])
			return false;
	}
	ct += sizeof(want) - 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == 0 || *ct == ';';
}

int rf__srv_parse_body(const struct rf_server_request *q, size_t max, struct rf_server_reply *r,
		       json_t **ret)
{
	json_error_t je;
	json_t *j;

	if (q->body_len > max)
		return rf__srv_err(r, 413, "too_large", NULL,
				   "request body of %zu bytes is over the limit of %zu",
				   q->body_len, max);
	if (!rf__srv_json_ctype(q->content_type))
		return rf__srv_err(r, 415, "unsupported_media_type", NULL,
				   "Content-Type must be application/json");
	if (!depth_ok(q->body, q->body_len, RF_SRV_JSON_DEPTH_MAX))
		return rf__srv_err(r, 400, "too_deep", NULL, "JSON nested deeper than %d levels",
				   RF_SRV_JSON_DEPTH_MAX);
	j = json_loadb((const char *)q->body, q->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return rf__srv_err(r, 400, "malformed_json", NULL, "malformed JSON at byte %d: %s",
				   je.position, je.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return rf__srv_err(r, 400, "malformed_json", NULL,
				   "the body must be a JSON object");
	}
	*ret = j;
	return 0;
}

static bool id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == ':' || c == '/';
}

bool rf__srv_id_valid(const char *v, size_t n)
{
	if (n == 0 || n > RF_SRV_ID_MAX || v[0] == '.' || v[0] == '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!id_char(v[i]))
			return false;
	return true;
}

/* Member key of o as a string of kind S_ID / S_TEXT / S_HEX (64 hex digits). *ret is NULL when
 * absent or null and !required. Returns 0 or -1 with the error reply written. */
int rf__srv_get_str(struct rf_server_reply *r, json_t *o, const char *key, int kind, bool required,
		    const char **ret)
{
	json_t *v = json_object_get(o, key);
	const char *t;
	size_t n;

	*ret = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return rf__srv_err(r, 400, "invalid_field", key, "'%s' is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return rf__srv_err(r, 400, "invalid_field", key, "'%s' must be a string", key);
	t = json_string_value(v);
	n = json_string_length(v);
	if (strlen(t) != n)
		return rf__srv_err(r, 400, "invalid_field", key, "'%s' contains a NUL character",
				   key);
	if (kind == S_ID && !rf__srv_id_valid(t, n))
		return rf__srv_err(
		    r, 400, "invalid_field", key,
		    "'%s' must be 1..%d characters of [A-Za-z0-9._:/-], not starting with "
		    "'.' or '/'",
		    key, RF_SRV_ID_MAX);
	if (kind == S_TEXT && n > RF_SRV_TEXT_MAX)
		return rf__srv_err(r, 400, "invalid_field", key, "'%s' is longer than %d bytes",
				   key, RF_SRV_TEXT_MAX);
	if (kind == S_HEX) {
		uint8_t tmp[32];
		if (n != 64 || rf_hex_decode(t, n, tmp, 32) < 0)
			return rf__srv_err(r, 400, "invalid_field", key,
					   "'%s' must be 64 hex digits", key);
	}
	*ret = t;
	return 0;
}

int rf__srv_get_u64(struct rf_server_reply *r, json_t *o, const char *key, uint64_t *ret)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return rf__srv_err(r, 400, "invalid_field", key,
				   "'%s' must be a non-negative integer", key);
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

void rf__srv_hash_token(const char *tok, uint8_t out[32])
{
	rf_sha256(tok, strlen(tok), out);
}

/* The bearer token of kind prefix ("rfd_", ...) from an Authorization header, or NULL. The
 * scheme is case-insensitive and followed by one or more spaces (RFC 9110 11.1, 11.4); the
 * token itself is exact. */
const char *rf__srv_bearer(const char *h, const char *prefix)
{
	static const char scheme[] = "bearer";
	size_t n;

	if (!h)
		return NULL;
	for (size_t i = 0; i < sizeof(scheme) - 1; i++) {
		char c = h[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != scheme[i])
			return NULL;
	}
	h += sizeof(scheme) - 1;
	if (*h != ' ')
		return NULL;
	while (*h == ' ')
		h++;
	n = strlen(h);
	if (n != 68 || strncmp(h, prefix, 4) != 0)
		return NULL;
	for (size_t i = 4; i < n; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return NULL;
	return h;
}

int rf__srv_new_token(const char *prefix, char out[69], uint8_t hash[32])
{
	uint8_t raw[32];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	memcpy(out, prefix, 4);
	rf_hex_encode(raw, sizeof(raw), out + 4);
	OPENSSL_cleanse(raw, sizeof(raw));
	rf__srv_hash_token(out, hash);
	return 0;
}

/* Copy src (NULL: "") into dst[cap], cut to fit: callers pass validated, bounded strings. */
void rf__srv_copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;

	if (n)
		memcpy(dst, src, n);
	dst[n] = 0;
}
