/*
 * The Sigma compiler's value transformations (see sigma_int.h for the compiler's files): the
 * modifiers that turn one value into other bytes or into several values before they become
 * atoms: windash (dash variants), utf16le/utf16be/utf16 and base64/base64offset, re (checked for
 * linear time and built by Vectorscan at compile time), and expand with its placeholder file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>
#include <jansson.h>

#include "content/pack.h"

#include "content/sigma_int.h"

/* ---- value transformations (windash, utf16, base64) -------------------------------------- */

/* The five characters windash makes interchangeable (the specification's list; pySigma's). */
static const char *const windash_chars[] = {"-", "/", "\xe2\x80\x93", "\xe2\x80\x94",
					    "\xe2\x80\x95"};
#define WINDASH_N 5u

/* A word byte for windash's \B[-/]\b (pySigma's regex on a str: \w is Unicode, so every byte
 * of a multi-byte character counts as a word byte; close enough for letters, exact for ASCII). */
static bool word_byte(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit((char)ch) ||
	       ch == '_' || ch >= 0x80;
}

/* The length of the windash character at p[i..n) (1 for '-' and '/', 3 for the UTF-8 dashes), or
 * 0 if there is none. */
static size_t windash_at(const uint8_t *p, size_t n, size_t i)
{
	for (size_t d = 0; d < WINDASH_N; d++) {
		size_t l = strlen(windash_chars[d]);
		if (n - i >= l && !memcmp(p + i, windash_chars[d], l))
			return l;
	}
	return 0;
}

/* Emit the OR of every windash variant of p[0..n) (pySigma: each '-' or '/' that starts a word,
 * i.e. follows a non-word byte or the start and precedes a word byte, becomes each of the five
 * dashes, every combination). The specification makes all five interchangeable, so an en dash,
 * em dash or horizontal bar that starts a word in the rule's value varies too. */
int emit_windash(struct ctx *c, struct vec *v, const struct field_spec *fs, enum rf_atom_op op,
		 uint32_t flags, const uint8_t *p, size_t n, const char *where)
{
	size_t pos[RF_SIGMA_WINDASH_MAX], len[RF_SIGMA_WINDASH_MAX], k = 0;

	for (size_t i = 0; i < n; i++) {
		size_t dl = windash_at(p, n, i);
		if (!dl)
			continue;
		if ((i > 0 && word_byte(p[i - 1])) || i + dl >= n || !word_byte(p[i + dl])) {
			i += dl - 1;
			continue;
		}
		if (k == RF_SIGMA_WINDASH_MAX)
			return fail(c, -E2BIG,
				    "windash value with more than %u dashes to vary (%u^%u "
				    "variants; %s)",
				    RF_SIGMA_WINDASH_MAX, WINDASH_N, RF_SIGMA_WINDASH_MAX + 1,
				    where);
		pos[k] = i;
		len[k++] = dl;
		i += dl - 1;
	}
	size_t total = 1;
	for (size_t i = 0; i < k; i++)
		total *= WINDASH_N;
	for (size_t var = 0; var < total; var++) {
		char *out = arena_alloc(&c->r->arena, n + 2 * k + 1);
		size_t o = 0, digits = var, next = 0;
		if (!out)
			return oom(c);
		for (size_t i = 0; i < n; i++) {
			if (next < k && pos[next] == i) {
				const char *d = windash_chars[digits % WINDASH_N];
				digits /= WINDASH_N;
				memcpy(out + o, d, strlen(d));
				o += strlen(d);
				i += len[next++] - 1;
				continue;
			}
			out[o++] = (char)p[i];
		}
		out[o] = '\0';
		int r = emit_atom(c, v, fs->name, RF_FT_STRING, op, flags, (const uint8_t *)out, o);
		if (r >= 0)
			r = join(c, v, var, RF_I_OR);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Decode one UTF-8 character at s[*i] (validated: the YAML parser only yields valid UTF-8). */
static uint32_t utf8_next(const uint8_t *s, size_t n, size_t *i)
{
	uint8_t c0 = s[(*i)++];
	int more = c0 >= 0xf0 ? 3 : c0 >= 0xe0 ? 2 : c0 >= 0xc0 ? 1 : 0;
	uint32_t cp = more == 3 ? c0 & 7u : more == 2 ? c0 & 15u : more == 1 ? c0 & 31u : c0;

	while (more-- > 0 && *i < n)
		cp = cp << 6 | (s[(*i)++] & 0x3fu);
	return cp;
}

/* The bytes base64 encodes: the value's text with Sigma's escapes resolved (\*, \?, \\), as
 * UTF-8 or, with utf16le/utf16be/utf16, UTF-16 (utf16: a little-endian BOM first, as pySigma).
 * Unescaped wildcards cannot be encoded: rejected. Returns the length in *ret_len. */
static int b64_input(struct ctx *c, const struct field_spec *fs, const struct node *val,
		     const char *where, uint8_t **ret, size_t *ret_len)
{
	const uint8_t *s = (const uint8_t *)val->s;
	size_t n = val->len, o = 0;
	uint8_t *plain = arena_alloc(&c->r->arena, n + 1), *out;

	if (!plain)
		return oom(c);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n &&
		    (s[i + 1] == '*' || s[i + 1] == '?' || s[i + 1] == '\\'))
			i++;
		else if (s[i] == '*' || s[i] == '?')
			return fail(c, -EBADMSG,
				    "wildcard in a value to encode with base64 (a wildcard has no "
				    "encoding; escape it as \\%c to encode the character; %s)",
				    s[i], where);
		plain[o++] = s[i];
	}
	if (!(fs->mods & M_UTF)) {
		*ret = plain;
		*ret_len = o;
		return 0;
	}
	out = arena_alloc(&c->r->arena, 2 + 4 * o); /* BOM + <= 4 bytes per byte */
	if (!out)
		return oom(c);
	size_t w = 0;
	bool be = fs->mods & M_UTF16BE;
	if (fs->mods & M_UTF16) {
		out[w++] = 0xff;
		out[w++] = 0xfe;
	}
	for (size_t i = 0; i < o;) {
		uint32_t cp = utf8_next(plain, o, &i), u[2];
		int nu = 1;
		if (cp >= 0x10000) {
			u[0] = 0xd800 + ((cp - 0x10000) >> 10);
			u[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
			nu = 2;
		} else {
			u[0] = cp;
		}
		for (int k = 0; k < nu; k++) {
			out[w++] = (uint8_t)(be ? u[k] >> 8 : u[k] & 0xff);
			out[w++] = (uint8_t)(be ? u[k] & 0xff : u[k] >> 8);
		}
	}
	*ret = out;
	*ret_len = w;
	return 0;
}

static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, i = 0;

	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* base64: one atom of the encoded value. base64offset: the OR of the three encodings of the
 * value at offsets 0, 1 and 2 within a longer Base64 text, without the characters that depend on
 * the neighbouring bytes (pySigma's definition: encode i spaces + value, drop the first 0, 2, 3
 * characters and the last 0, 3, 2 as (len + i) % 3 says). */
int emit_base64(struct ctx *c, struct vec *v, const struct field_spec *fs, enum rf_atom_op op,
		uint32_t flags, const struct node *val, const char *where)
{
	static const size_t start[3] = {0, 2, 3}, end[3] = {0, 3, 2};
	uint8_t *in = NULL, *buf;
	size_t n = 0;
	int r = b64_input(c, fs, val, where, &in, &n);

	if (r < 0)
		return r;
	if (n == 0)
		return fail(c, -EBADMSG, "empty value to encode with base64 (%s)", where);
	if (n > RF_SIGMA_PATTERN_MAX)
		return fail(c, -E2BIG, "value to encode longer than %u bytes (%s)",
			    RF_SIGMA_PATTERN_MAX, where);
	buf = arena_alloc(&c->r->arena, n + 2);
	if (!buf)
		return oom(c);
	if (fs->mods & M_BASE64) {
		char *out = arena_alloc(&c->r->arena, (n + 2) / 3 * 4 + 1);
		if (!out)
			return oom(c);
		size_t o = b64_encode(in, n, out);
		return emit_atom(c, v, fs->name, RF_FT_STRING, op, flags, (const uint8_t *)out, o);
	}
	for (size_t i = 0; i < 3; i++) {
		char *out = arena_alloc(&c->r->arena, (n + i + 2) / 3 * 4 + 1);
		if (!out)
			return oom(c);
		memset(buf, ' ', i);
		memcpy(buf + i, in, n);
		size_t o = b64_encode(buf, n + i, out), e = end[(n + i) % 3];
		if (start[i] + e >= o)
			return fail(c, -EBADMSG,
				    "value too short for base64offset (nothing of it is fixed in "
				    "every offset; %s)",
				    where);
		r = emit_atom(c, v, fs->name, RF_FT_STRING, op, flags,
			      (const uint8_t *)out + start[i], o - start[i] - e);
		if (r >= 0)
			r = join(c, v, i, RF_I_OR);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A regular expression (|re): refused here, at the author's desk, if it uses a construct that
 * cannot run in linear time (named) or if Vectorscan cannot build it (its own message), so that a
 * rule that compiles always loads. */
int check_regex(struct ctx *c, const struct node *val, uint32_t flags, const char *where)
{
	const char *why = rf__pack_regex_problem((const uint8_t *)val->s, val->len);
	hs_database_t *db = NULL;
	hs_compile_error_t *err = NULL;
	char qv[64];

	if (why)
		return fail(c, -EBADMSG, "regular expression '%s': %s (%s)",
			    qs(qv, sizeof(qv), val), why, where);
	if (hs_compile(val->s, rf__pack_hs_flags(RF_OP_REGEX, flags), HS_MODE_BLOCK, NULL, &db,
		       &err) != HS_SUCCESS) {
		int r =
		    fail(c, -EBADMSG, "regular expression '%s' is refused by Vectorscan: %s (%s)",
			 qs(qv, sizeof(qv), val), err ? err->message : "?", where);
		hs_free_compile_error(err);
		return r;
	}
	hs_free_database(db);
	return 0;
}

static const struct placeholder *placeholder_get(const struct rf_sigma_placeholders *ph,
						 const char *s, size_t n)
{
	for (size_t i = 0; ph && i < ph->n; i++)
		if (strlen(ph->p[i].name) == n && !memcmp(ph->p[i].name, s, n))
			return &ph->p[i];
	return NULL;
}

static bool placeholder_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch) || ch == '_' ||
	       ch == '-' || ch == '.';
}

/* Copy the text between placeholders, "\%" as '%' (an escaped backslash stays as it is: the
 * value's own escape, which the matcher reads). Returns the bytes written (<= n). */
static size_t expand_text(char *out, const char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '%' || s[i + 1] == '\\')) {
			if (s[++i] == '\\')
				out[o++] = '\\';
		}
		out[o++] = s[i];
	}
	return o;
}

/*
 * `field|expand: '...%name%...'`: each %name% is replaced by each value the placeholders give
 * it (the product over the placeholders in the value, at most RF_SIGMA_EXPAND_MAX variants),
 * and the variants are matched with the key's other modifiers, OR'd. A '%' that does not start
 * a %name% (letters, digits, '_', '-', '.') is itself. The rules specification's escape: "\%" is a
 * plain '%' that starts no placeholder ("\%plain%name%" is "%plain" then the values of name), and
 * "\\" an escaped backslash, so "\\%name%" is a backslash then the values.
 */
int emit_expand(struct ctx *c, struct vec *v, const struct field_spec *fs, const struct node *val,
		const char *ident, const char *where)
{
	const struct placeholder *use[RF_SIGMA_EXPAND_MAX];
	size_t at[RF_SIGMA_EXPAND_MAX], end[RF_SIGMA_EXPAND_MAX], k = 0, total = 1;
	char qv[64];

	if (val->sk != S_STR && val->sk != S_INT)
		return fail(c, -EBADMSG, "'expand' needs a text value (%s)", where);
	if (!c->ph)
		return fail(c, -ENOTSUP,
			    "'expand' needs placeholder values (ringfence content compile "
			    "--placeholders FILE; %s)",
			    where);
	for (size_t i = 0; i < val->len; i++) {
		size_t j = i + 1;
		if (val->s[i] == '\\' && j < val->len && (val->s[j] == '%' || val->s[j] == '\\')) {
			i = j; /* an escaped '%' or backslash: no placeholder starts here */
			continue;
		}
		if (val->s[i] != '%')
			continue;
		while (j < val->len && placeholder_char(val->s[j]))
			j++;
		if (j >= val->len || val->s[j] != '%' || j == i + 1)
			continue;
		const struct placeholder *p = placeholder_get(c->ph, val->s + i + 1, j - i - 1);
		if (!p) {
			char qn[RF_NAME_MAX + 8];
			return fail(c, -EINVAL, "placeholder '%s' is not defined (%s)",
				    rf_diag_quote(qn, sizeof(qn), val->s + i, j - i + 1), where);
		}
		if (p->n == 0 || total > RF_SIGMA_EXPAND_MAX / p->n || k == RF_SIGMA_EXPAND_MAX)
			return fail(c, -E2BIG,
				    "'expand' of '%s' gives more than %u values (or a placeholder "
				    "has none; %s)",
				    qs(qv, sizeof(qv), val), RF_SIGMA_EXPAND_MAX, where);
		total *= p->n;
		use[k] = p;
		at[k] = i;
		end[k++] = j + 1;
		i = j;
	}
	struct field_spec f2 = *fs;
	f2.mods &= ~M_EXPAND;
	for (size_t var = 0; var < total; var++) {
		size_t len = val->len, digits = var;
		for (size_t q = 0; q < k; q++) {
			len += use[q]->lens[digits % use[q]->n];
			digits /= use[q]->n;
		}
		char *out = arena_alloc(&c->r->arena, len + 1);
		size_t o = 0, from = 0;
		if (!out)
			return oom(c);
		digits = var;
		for (size_t q = 0; q < k; q++) {
			size_t pick = digits % use[q]->n;
			digits /= use[q]->n;
			o += expand_text(out + o, val->s + from, at[q] - from);
			memcpy(out + o, use[q]->vals[pick], use[q]->lens[pick]);
			o += use[q]->lens[pick];
			from = end[q];
		}
		o += expand_text(out + o, val->s + from, val->len - from);
		out[o] = '\0';
		struct node tmp = *val;
		tmp.s = out;
		tmp.len = o;
		tmp.sk = S_STR;
		int r = emit_value(c, v, &f2, &tmp, ident);
		if (r >= 0)
			r = join(c, v, var, RF_I_OR);
		if (r < 0)
			return r;
	}
	return 0;
}

void rf_sigma_placeholders_free(struct rf_sigma_placeholders *ph)
{
	if (!ph)
		return;
	for (size_t i = 0; i < ph->n; i++) {
		for (size_t j = 0; j < ph->p[i].n; j++)
			free(ph->p[i].vals[j]);
		free(ph->p[i].vals);
		free(ph->p[i].lens);
		free(ph->p[i].name);
	}
	free(ph->p);
	free(ph);
}

static int placeholder_parse(const char *key, json_t *jv, struct placeholder *p, struct rf_diag *d)
{
	size_t nv = json_is_array(jv) ? json_array_size(jv) : 1;
	char q[RF_NAME_MAX + 8];

	rf_diag_quote(q, sizeof(q), key, strlen(key));
	if (strlen(key) == 0 || strlen(key) > RF_NAME_MAX)
		return rf_diag_report(d, -EBADMSG, "placeholders: name '%s' is empty or too long",
				      q);
	for (const char *s = key; *s; s++)
		if (!placeholder_char(*s))
			return rf_diag_report(d, -EBADMSG,
					      "placeholders: name '%s' is not [A-Za-z0-9_.-]", q);
	if (nv > RF_SIGMA_EXPAND_MAX)
		return rf_diag_report(d, -E2BIG, "placeholders: '%s' has %zu values (limit %u)", q,
				      nv, RF_SIGMA_EXPAND_MAX);
	if (!(p->name = strdup(key)) || !(p->vals = calloc(nv + 1, sizeof(*p->vals))) ||
	    !(p->lens = calloc(nv + 1, sizeof(*p->lens))))
		return -ENOMEM;
	for (size_t j = 0; j < nv; j++) {
		json_t *e = json_is_array(jv) ? json_array_get(jv, j) : jv;
		if (!json_is_string(e))
			return rf_diag_report(d, -EBADMSG,
					      "placeholders: '%s': values must be strings", q);
		size_t l = json_string_length(e);
		if (l > RF_SIGMA_PATTERN_MAX || memchr(json_string_value(e), 0, l))
			return rf_diag_report(d, -E2BIG,
					      "placeholders: '%s': a value is over %u bytes or "
					      "holds a NUL",
					      q, RF_SIGMA_PATTERN_MAX);
		if (!(p->vals[j] = strdup(json_string_value(e))))
			return -ENOMEM;
		p->lens[j] = l;
		p->n = j + 1;
	}
	return 0;
}

int rf_sigma_placeholders_parse(const uint8_t *json, size_t n, struct rf_sigma_placeholders **ret,
				struct rf_diag *d)
{
	json_error_t jerr;
	struct rf_sigma_placeholders *ph = NULL;
	json_t *root;
	const char *key;
	json_t *jv;
	int r = 0;

	if (n > RF_SIGMA_FILE_MAX)
		return rf_diag_report(d, -E2BIG, "placeholders: %zu bytes (limit %u)", n,
				      RF_SIGMA_FILE_MAX);
	root = json_loadb((const char *)json, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return rf_diag_report(d, -EBADMSG,
				      "placeholders: invalid JSON at line %d column %d: %s",
				      jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		r = rf_diag_report(d, -EBADMSG, "placeholders: top level must be an object");
		goto out;
	}
	if (json_object_size(root) > RF_SIGMA_PLACEHOLDERS_MAX) {
		r = rf_diag_report(d, -E2BIG, "placeholders: %zu names (limit %u)",
				   json_object_size(root), RF_SIGMA_PLACEHOLDERS_MAX);
		goto out;
	}
	if (!(ph = calloc(1, sizeof(*ph))) ||
	    !(ph->p = calloc(json_object_size(root) + 1, sizeof(*ph->p)))) {
		r = -ENOMEM;
		goto out;
	}
	json_object_foreach(root, key, jv)
	{
		r = placeholder_parse(key, jv, &ph->p[ph->n++], d);
		if (r < 0)
			goto out;
	}
	*ret = ph;
	ph = NULL;
out:
	rf_sigma_placeholders_free(ph);
	json_decref(root);
	return r;
}
