/*
 * The strict JSON scanner of jscan.h. One pass over the bytes, an explicit stack of open
 * containers (no recursion, so depth costs no C stack), every index checked against n before
 * it is read. It rejects what jansson rejects for the check-in path: bad grammar, bad escapes,
 * lone surrogates, \u0000, invalid UTF-8, control characters in strings, duplicate keys,
 * trailing bytes.
 */
#include <string.h>

#include "common/util.h"
#include "server/jscan.h"

#define STACK_MAX 64

static bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


/* Four hex digits at p[i..i+4), or -1. */
static long hex4(const uint8_t *p, size_t n, size_t i)
{
	long v = 0;

	if (i + 4 > n)
		return -1;
	for (size_t k = 0; k < 4; k++) {
		int h = rf_hex_digit(p[i + k]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* Scan the string whose opening quote is at p[i]; *end = index of the closing quote. */
static int scan_string(const uint8_t *p, size_t n, size_t i, size_t *end, bool *escaped,
		       size_t *bad)
{
	*escaped = false;
	for (i++; i < n;) {
		uint8_t c = p[i];

		if (c == '"') {
			*end = i;
			return 0;
		}
		if (c < 0x20)
			break;
		if (c == '\\') {
			*escaped = true;
			if (i + 1 >= n)
				break;
			c = p[i + 1];
			if (c == 'u') {
				long v = hex4(p, n, i + 2);
				if (v <= 0 || (v >= 0xdc00 && v <= 0xdfff))
					break; /* \u0000, bad hex or lone low surrogate */
				if (v >= 0xd800 && v <= 0xdbff) {
					long lo;
					if (i + 12 > n || p[i + 6] != '\\' || p[i + 7] != 'u')
						break;
					lo = hex4(p, n, i + 8);
					if (lo < 0xdc00 || lo > 0xdfff)
						break;
					i += 12;
				} else {
					i += 6;
				}
				continue;
			}
			if (!strchr("\"\\/bfnrt", c) || c == 0)
				break;
			i += 2;
			continue;
		}
		size_t l = rf_utf8_seq(p + i, n - i, NULL);
		if (!l)
			break;
		i += l;
	}
	*bad = i;
	return -EBADMSG;
}

static size_t scan_number(const uint8_t *p, size_t n, size_t i)
{
	size_t s = i;

	if (i < n && p[i] == '-')
		i++;
	if (i >= n)
		return 0;
	if (p[i] == '0') {
		i++;
	} else if (p[i] >= '1' && p[i] <= '9') {
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
	} else {
		return 0;
	}
	if (i < n && p[i] == '.') {
		size_t d = ++i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == d)
			return 0;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		size_t d = i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == d)
			return 0;
	}
	return i - s;
}

enum want { W_VAL, W_VAL_OR_END, W_KEY_OR_END, W_KEY, W_COLON, W_COMMA_OR_END };

int rf_jscan(const uint8_t *p, size_t n, struct rf_jtok *toks, size_t maxtok, unsigned maxdepth,
	     size_t *ret_ntok, size_t *ret_off)
{
	uint32_t stack[STACK_MAX];
	unsigned depth = 0;
	size_t i = 0, nt = 0, bad = 0;
	enum want want = W_VAL;
	bool done = false;

	if (n >= UINT32_MAX)
		return -E2BIG;
	if (maxdepth > STACK_MAX)
		maxdepth = STACK_MAX;
	for (;;) {
		while (i < n && is_ws(p[i]))
			i++;
		if (done) {
			if (i != n)
				goto malformed;
			break;
		}
		if (i >= n)
			goto malformed;
		uint8_t c = p[i];
		struct rf_jtok *top = depth ? &toks[stack[depth - 1]] : NULL;

		if (want == W_COLON) {
			if (c != ':')
				goto malformed;
			i++;
			want = W_VAL;
			continue;
		}
		if (want == W_COMMA_OR_END) {
			if (c == ',') {
				i++;
				want = top->type == RF_J_OBJ ? W_KEY : W_VAL;
				continue;
			}
			if (c != (top->type == RF_J_OBJ ? '}' : ']'))
				goto malformed;
			goto close;
		}
		if (want == W_KEY_OR_END && c == '}')
			goto close;
		if (want == W_VAL_OR_END && c == ']')
			goto close;
		if (nt == maxtok)
			return -E2BIG;
		if (want == W_KEY_OR_END || want == W_KEY) {
			size_t end;
			bool esc;
			uint32_t obj = stack[depth - 1];

			if (c != '"')
				goto malformed;
			if (scan_string(p, n, i, &end, &esc, &bad) < 0)
				goto malformed_at;
			toks[nt] = (struct rf_jtok){
			    RF_J_STR, (uint32_t)i + 1, (uint32_t)end, (uint32_t)nt + 1, 0, esc};
			/* Duplicate key: compare with the keys before it in this object. */
			size_t k = obj + 1, klen = end - i - 1;
			for (uint32_t m = 0; m < toks[obj].size; m++) {
				const struct rf_jtok *kt = &toks[k];
				if (kt->end - kt->start == klen &&
				    !memcmp(p + kt->start, p + i + 1, klen))
					goto malformed;
				k = toks[k + 1].next;
			}
			toks[obj].size++;
			nt++;
			i = end + 1;
			want = W_COLON;
			continue;
		}
		/* A value. */
		if (top && top->type == RF_J_ARR)
			top->size++;
		struct rf_jtok *t = &toks[nt];
		*t = (struct rf_jtok){0, (uint32_t)i, 0, (uint32_t)nt + 1, 0, false};
		if (c == '{' || c == '[') {
			if (depth == maxdepth)
				return -ELOOP;
			t->type = c == '{' ? RF_J_OBJ : RF_J_ARR;
			stack[depth++] = (uint32_t)nt++;
			i++;
			want = c == '{' ? W_KEY_OR_END : W_VAL_OR_END;
			continue;
		}
		if (c == '"') {
			size_t end;
			if (scan_string(p, n, i, &end, &t->escaped, &bad) < 0)
				goto malformed_at;
			t->type = RF_J_STR;
			t->start = (uint32_t)i + 1;
			t->end = (uint32_t)end;
			i = end + 1;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			size_t l = scan_number(p, n, i);
			if (!l)
				goto malformed;
			t->type = RF_J_NUM;
			i += l;
			t->end = (uint32_t)i;
		} else if (n - i >= 4 && !memcmp(p + i, "true", 4)) {
			t->type = RF_J_TRUE;
			i += 4;
		} else if (n - i >= 5 && !memcmp(p + i, "false", 5)) {
			t->type = RF_J_FALSE;
			i += 5;
		} else if (n - i >= 4 && !memcmp(p + i, "null", 4)) {
			t->type = RF_J_NULL;
			i += 4;
		} else {
			goto malformed;
		}
		if (!t->end)
			t->end = (uint32_t)i;
		nt++;
		if (depth == 0)
			done = true;
		else
			want = W_COMMA_OR_END;
		continue;
	close:
		top->end = (uint32_t)i + 1;
		top->next = (uint32_t)nt;
		depth--;
		i++;
		if (depth == 0)
			done = true;
		else
			want = W_COMMA_OR_END;
	}
	*ret_ntok = nt;
	return 0;
malformed:
	bad = i;
malformed_at:
	if (ret_off)
		*ret_off = bad;
	return -EBADMSG;
}

int rf_jget(const uint8_t *p, const struct rf_jtok *toks, int obj, const char *key)
{
	size_t klen = strlen(key);
	uint32_t k;

	if (obj < 0 || toks[obj].type != RF_J_OBJ)
		return -1;
	k = (uint32_t)obj + 1;
	for (uint32_t m = 0; m < toks[obj].size; m++) {
		const struct rf_jtok *kt = &toks[k];
		if (kt->end - kt->start == klen && !memcmp(p + kt->start, key, klen))
			return (int)k + 1;
		k = toks[k + 1].next;
	}
	return -1;
}

static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

int rf_jstr(const uint8_t *p, const struct rf_jtok *t, char *out, size_t cap)
{
	size_t o = 0;

	if (t->type != RF_J_STR || cap == 0)
		return -EINVAL;
	if (!t->escaped) {
		size_t len = t->end - t->start;
		if (len >= cap)
			return -E2BIG;
		memcpy(out, p + t->start, len);
		out[len] = 0;
		return (int)len;
	}
	for (size_t i = t->start; i < t->end;) {
		char tmp[4];
		size_t l = 1;

		if (p[i] != '\\') {
			tmp[0] = (char)p[i++];
		} else {
			uint8_t c = p[i + 1];
			i += 2;
			switch (c) {
			case 'b':
				tmp[0] = '\b';
				break;
			case 'f':
				tmp[0] = '\f';
				break;
			case 'n':
				tmp[0] = '\n';
				break;
			case 'r':
				tmp[0] = '\r';
				break;
			case 't':
				tmp[0] = '\t';
				break;
			case 'u': {
				/* Validated by rf_jscan: 4 hex digits, pairs complete, not 0. */
				uint32_t cp = (uint32_t)hex4(p, t->end, i);
				i += 4;
				if (cp >= 0xd800 && cp <= 0xdbff) {
					uint32_t lo = (uint32_t)hex4(p, t->end, i + 2);
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					i += 6;
				}
				if (cp == 0)
					return -EBADMSG;
				l = put_utf8(tmp, cp);
				break;
			}
			default:
				tmp[0] = (char)c;
				break;
			}
		}
		if (o + l >= cap)
			return -E2BIG;
		memcpy(out + o, tmp, l);
		o += l;
	}
	out[o] = 0;
	return (int)o;
}

int rf_ju64(const uint8_t *p, const struct rf_jtok *t, uint64_t *ret)
{
	uint64_t v = 0;

	if (t->type != RF_J_NUM)
		return -EINVAL;
	for (uint32_t i = t->start; i < t->end; i++) {
		uint8_t c = p[i];
		if (c < '0' || c > '9')
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(c - '0'), &v))
			return -ERANGE;
	}
	*ret = v;
	return 0;
}
