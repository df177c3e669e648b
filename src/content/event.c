/*
 * The event parser: one JSON line, a flat object of string/number/boolean/null members, into a
 * struct rf_event that points into the caller's line and scratch. It is hand-written because it
 * sits on the hot path (jansson allocates per value; this allocates nothing) and because events
 * are untrusted: it reads each byte of the line at most three times, never past n, bounds the
 * line length and the field count, and rejects nesting instead of recursing. A string without
 * escapes is returned in place (pointing into the line); one with escapes is unescaped into
 * scratch, and an unescaped string is never longer than its escaped form, so n bytes of scratch
 * always suffice. Numbers keep their JSON text (the engine parses int fields itself). Every
 * name and string value is valid UTF-8 (RFC 3629) when it is returned: raw bytes are checked
 * (only runs that hold a byte >= 0x80), and a \u escape can only produce a scalar value, because
 * a surrogate escape must be a high one followed by a low one.
 */
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/util.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

/* The duplicate-name table below has 512 slots for at most 1 + 2 x RF_EVENT_FIELDS_MAX names
 * (the type, the fields, the null members), so it is never more than half full, and stores field
 * index + 1, or NULL_SLOT + null member index, in 16 bits. */
_Static_assert(RF_EVENT_FIELDS_MAX < 256, "event name table too small for RF_EVENT_FIELDS_MAX");
#define NULL_SLOT 0x8000u
#define TYPE_SLOT 0xffffu

struct pstate {
	const uint8_t *p;
	size_t n, i;
	uint8_t *out;
	size_t outcap, o;
	struct rf_diag *d;
};

static int fail(struct pstate *s, const char *why)
{
	return rf_diag_report(s->d, -EBADMSG, "byte %zu: %s", s->i, why);
}

static void skip_ws(struct pstate *s)
{
	if (s->i < s->n && s->p[s->i] > ' ') /* the usual case: no whitespace */
		return;
	while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t' || s->p[s->i] == '\r' ||
			       s->p[s->i] == '\n'))
		s->i++;
}

/* Whether the next byte, after any whitespace, is c; the usual line has no whitespace, so c is
 * looked for first. Leaves s->i at that byte either way. */
static inline bool next_is(struct pstate *s, uint8_t c)
{
	if (s->i < s->n && s->p[s->i] == c)
		return true;
	skip_ws(s);
	return s->i < s->n && s->p[s->i] == c;
}

static int read_u4(struct pstate *s, uint32_t *ret)
{
	uint32_t v = 0;

	if (s->n - s->i < 4)
		return fail(s, "truncated \\u escape");
	for (int k = 0; k < 4; k++) {
		int h = rf_hex_digit(s->p[s->i + k]);
		if (h < 0)
			return fail(s, "bad \\u escape");
		v = v << 4 | (uint32_t)h;
	}
	s->i += 4;
	*ret = v;
	return 0;
}

/* Whether any of the 8 bytes in x is '"', '\\' or a control character (< 0x20): the classic
 * SWAR tests "has a zero byte" (after XOR) and "has a byte less than n", which are exact about
 * presence. */
static bool has_special(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');

	return (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x)) & highs;
}

/* The end of the run of plain bytes (not '"', '\\' or a control character) that starts at i,
 * found 16 bytes at a time with SSE2 where the target has it (every x86-64), then 8 at a time;
 * *ret_high says whether any byte of the run is >= 0x80, so that only such runs are checked for
 * UTF-8. Measured with callgrind on the content benchmark's realistic mix (1,065-byte lines;
 * Windows paths are full of escaped backslashes, so runs are short): 20,090 instructions a parse
 * with the 8-byte loop alone, 12,270 with this, copy_run, and the cheaper skip_ws and name_hash. */
#if defined(__SSE2__)
/* The bytes of x that end a plain run ('"', '\\', control characters), one bit each. */
static inline unsigned special_mask(__m128i x)
{
	const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), c1f = _mm_set1_epi8(0x1f);
	/* max(x, 0x1f) == 0x1f iff x <= 0x1f (unsigned) */
	__m128i sp = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, bs)),
				  _mm_cmpeq_epi8(_mm_max_epu8(x, c1f), c1f));
	return (unsigned)_mm_movemask_epi8(sp);
}
#endif

static size_t plain_run(const uint8_t *p, size_t n, size_t i, bool *ret_high)
{
	uint64_t acc = 0;
	uint8_t acc1 = 0;

#if defined(__SSE2__)
	const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), c1f = _mm_set1_epi8(0x1f);
	__m128i hi = _mm_setzero_si128();
	while (n - i >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		/* max(x, 0x1f) == 0x1f iff x <= 0x1f (unsigned) */
		__m128i sp = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, bs)),
					  _mm_cmpeq_epi8(_mm_max_epu8(x, c1f), c1f));
		unsigned m = (unsigned)_mm_movemask_epi8(sp);
		if (m) {
			unsigned k = (unsigned)__builtin_ctz(m);
			*ret_high = ((unsigned)_mm_movemask_epi8(x) & ((1u << k) - 1)) ||
				    _mm_movemask_epi8(hi);
			return i + k;
		}
		hi = _mm_or_si128(hi, x);
		i += 16;
	}
	acc1 = _mm_movemask_epi8(hi) ? 0x80 : 0;
#endif
	while (n - i >= 8) {
		uint64_t x;
		memcpy(&x, p + i, 8);
		if (has_special(x))
			break;
		acc |= x;
		i += 8;
	}
	while (i < n && p[i] != '"' && p[i] != '\\' && p[i] >= 0x20)
		acc1 |= p[i++];
	*ret_high = (acc & 0x8080808080808080ull) || (acc1 & 0x80);
	return i;
}

/* The run p[from..to) must be valid UTF-8 on its own: a run ends at an ASCII byte, and no ASCII
 * byte can continue a multi-byte sequence. The diagnostic names the first bad byte. */
static int check_utf8(struct pstate *s, size_t from, size_t to)
{
	const char *why = "invalid";
	size_t ok = rf_utf8_prefix(s->p + from, to - from, &why);

	if (ok == to - from)
		return 0;
	return rf_diag_report(s->d, -EBADMSG, "byte %zu: invalid UTF-8 (%s)", from + ok, why);
}

/* Copy the run of plain bytes at s->i to the scratch (checked as UTF-8 if it has a byte >= 0x80),
 * leaving s->i at the byte that ends it (or at n). With SSE2 the copy and the search are one
 * pass, 16 bytes at a time, while the scratch has 16 bytes left (the bytes stored past the run
 * are overwritten by what follows it). 0 or -EBADMSG. */
static inline int copy_run(struct pstate *s)
{
	size_t from = s->i, end;
	bool high = false, h;

#if defined(__SSE2__)
	const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), c1f = _mm_set1_epi8(0x1f);
	while (s->n - s->i >= 16 && s->outcap - s->o >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s->p + s->i));
		_mm_storeu_si128((__m128i *)(void *)(s->out + s->o), x);
		__m128i sp = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, bs)),
					  _mm_cmpeq_epi8(_mm_max_epu8(x, c1f), c1f));
		unsigned m = (unsigned)_mm_movemask_epi8(sp), hm = (unsigned)_mm_movemask_epi8(x);
		if (m) {
			unsigned k = (unsigned)__builtin_ctz(m);
			high |= (hm & ((1u << k) - 1)) != 0;
			s->i += k;
			s->o += k;
			goto done;
		}
		high |= hm != 0;
		s->i += 16;
		s->o += 16;
	}
#endif
	end = plain_run(s->p, s->n, s->i, &h);
	high |= h;
	if (end - s->i > s->outcap - s->o)
		return fail(s, "scratch too small");
	memcpy(s->out + s->o, s->p + s->i, end - s->i);
	s->o += end - s->i;
	s->i = end;
#if defined(__SSE2__)
done:
#endif
	if (high && check_utf8(s, from, s->i) < 0)
		return -EBADMSG;
	return 0;
}

/* The byte each one-byte escape (\" \\ \/ \b \f \n \r \t) stands for, by the letter after the
 * backslash; 0 for every other byte (\u is read apart, anything else is an error). */
static const uint8_t one_byte_escape[256] = {
    ['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b',
    ['f'] = '\f', ['n'] = '\n',   ['r'] = '\r', ['t'] = '\t',
};

static int unescape(struct pstate *s, size_t end, size_t start, const uint8_t **ret,
		    size_t *ret_len);

/* Parse a string starting at the opening quote; write its bytes to scratch. */
static inline int parse_string(struct pstate *s, const uint8_t **ret, size_t *ret_len)
{
	size_t start = s->o, end;
	bool high;

	s->i++; /* opening quote */
	/* Most strings have no escape: return them in place, without a copy. Most are also shorter
	 * than 16 bytes, so the first 16 are looked at here, without a call (callgrind: a call to
	 * plain_run cost ~60 instructions a string, most of them its set-up). */
#if defined(__SSE2__)
	if (s->n - s->i >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s->p + s->i));
		unsigned m = special_mask(x), hm = (unsigned)_mm_movemask_epi8(x);
		if (m) {
			unsigned k = (unsigned)__builtin_ctz(m);
			end = s->i + k;
			high = (hm & ((1u << k) - 1)) != 0;
		} else {
			/* a longer string (GUIDs, times, hashes): on 16 at a time, inline */
			size_t i = s->i + 16;
			while (s->n - i >= 16) {
				x = _mm_loadu_si128((const __m128i *)(const void *)(s->p + i));
				m = special_mask(x);
				unsigned h2 = (unsigned)_mm_movemask_epi8(x);
				if (m) {
					unsigned k = (unsigned)__builtin_ctz(m);
					hm |= h2 & ((1u << k) - 1);
					i += k;
					break;
				}
				hm |= h2;
				i += 16;
			}
			if (m) {
				end = i;
				high = hm != 0;
			} else {
				end = plain_run(s->p, s->n, i, &high);
				high |= hm != 0;
			}
		}
	} else
#endif
		end = plain_run(s->p, s->n, s->i, &high);
	if (high && check_utf8(s, s->i, end) < 0)
		return -EBADMSG;
	if (end < s->n && s->p[end] == '"') {
		*ret = s->p + s->i;
		*ret_len = end - s->i;
		s->i = end + 1;
		return 0;
	}
	return unescape(s, end, start, ret, ret_len);
}

/* The rest of parse_string for a string with an escape (or an error): s->i is at the string's
 * first byte, end at the first byte that is not plain; [s->i, end) is checked already. Apart, so
 * that parse_string's usual case inlines into its callers without this loop. */
static __attribute__((noinline)) int unescape(struct pstate *s, size_t end, size_t start,
					      const uint8_t **ret, size_t *ret_len)
{
	/* Copy the first run, then alternate escapes and runs. */
	if (end - s->i > s->outcap - s->o)
		return fail(s, "scratch too small");
	memcpy(s->out + s->o, s->p + s->i, end - s->i);
	s->o += end - s->i;
	s->i = end;
	for (;;) {
#if defined(__SSE2__)
		/* The usual case, a one-byte escape ("\\" in Windows paths) and the run after it, on
		 * locals while 16 bytes of line and scratch are left (a store to the scratch may alias
		 * *s; callgrind: ~-35 instructions an escape); anything else goes on below. */
		const uint8_t *p = s->p;
		uint8_t *out = s->out;
		size_t i = s->i, o = s->o, n = s->n, cap = s->outcap;
		while (n - i >= 18 && cap - o >= 17 && p[i] == '\\' && one_byte_escape[p[i + 1]]) {
			out[o++] = one_byte_escape[p[i + 1]];
			i += 2;
			size_t from = i, ofrom = o;
			unsigned m, hi = 0;
			for (;;) {
				__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
				_mm_storeu_si128((__m128i *)(void *)(out + o), x);
				unsigned hm = (unsigned)_mm_movemask_epi8(x);
				m = special_mask(x);
				if (m) {
					unsigned k = (unsigned)__builtin_ctz(m);
					hi |= hm & ((1u << k) - 1);
					i += k;
					o += k;
					break;
				}
				hi |= hm;
				i += 16;
				o += 16;
				if (n - i < 16 || cap - o < 16)
					break;
			}
			if (!m) { /* near the end: copy_run does the whole run again */
				s->i = from;
				s->o = ofrom;
				if (copy_run(s) < 0)
					return -EBADMSG;
				i = s->i;
				o = s->o;
			} else if (hi && check_utf8(s, from, i) < 0) {
				return -EBADMSG;
			}
		}
		s->i = i;
		s->o = o;
#endif
		if (s->i >= s->n)
			return fail(s, "unterminated string");
		uint8_t c = s->p[s->i];
		if (c == '"') {
			s->i++;
			break;
		}
		if (c < 0x20)
			return fail(s, "control character in string");
		size_t esc_at = s->i; /* c is '\\' */
		if (++s->i >= s->n)
			return fail(s, "unterminated escape");
		uint8_t e = s->p[s->i++], b[4];
		size_t bl = 1;
		uint32_t cp;
		if (one_byte_escape[e]) { /* the usual case: "\\" in Windows paths */
			b[0] = one_byte_escape[e];
		} else if (e == 'u') {
			if (read_u4(s, &cp) < 0)
				return -EBADMSG;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				s->i = esc_at;
				return fail(s, "lone low surrogate");
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				uint32_t lo;
				if (s->n - s->i < 2 || s->p[s->i] != '\\' ||
				    s->p[s->i + 1] != 'u') {
					s->i = esc_at;
					return fail(s, "high surrogate without low surrogate");
				}
				s->i += 2;
				if (read_u4(s, &lo) < 0)
					return -EBADMSG;
				if (lo < 0xdc00 || lo > 0xdfff) {
					s->i = esc_at;
					return fail(s, "high surrogate without low surrogate");
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp < 0x80) {
				b[0] = (uint8_t)cp;
			} else if (cp < 0x800) {
				b[0] = (uint8_t)(0xc0 | cp >> 6);
				b[1] = (uint8_t)(0x80 | (cp & 0x3f));
				bl = 2;
			} else if (cp < 0x10000) {
				b[0] = (uint8_t)(0xe0 | cp >> 12);
				b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
				b[2] = (uint8_t)(0x80 | (cp & 0x3f));
				bl = 3;
			} else {
				b[0] = (uint8_t)(0xf0 | cp >> 18);
				b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
				b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
				b[3] = (uint8_t)(0x80 | (cp & 0x3f));
				bl = 4;
			}
		} else {
			return fail(s, "unknown escape");
		}
		if (bl > s->outcap - s->o)
			return fail(s, "scratch too small");
		for (size_t k = 0; k < bl; k++) /* at most 4: cheaper than a call to memcpy */
			s->out[s->o + k] = b[k];
		s->o += bl;
		if (copy_run(s) < 0)
			return -EBADMSG;
	}
	*ret = s->out + start;
	*ret_len = s->o - start;
	return 0;
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(struct pstate *s)
{
	size_t i = s->i;
	const uint8_t *p = s->p;

#define DIGIT(k) ((k) < s->n && p[k] >= '0' && p[k] <= '9')
	if (i < s->n && p[i] == '-')
		i++;
	if (!DIGIT(i))
		return fail(s, "bad number");
	if (p[i] == '0')
		i++;
	else
		while (DIGIT(i))
			i++;
	if (i < s->n && p[i] == '.') {
		i++;
		if (!DIGIT(i))
			return fail(s, "bad number");
		while (DIGIT(i))
			i++;
	}
	if (i < s->n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < s->n && (p[i] == '+' || p[i] == '-'))
			i++;
		if (!DIGIT(i))
			return fail(s, "bad number");
		while (DIGIT(i))
			i++;
	}
#undef DIGIT
	s->i = i;
	return 0;
}

static bool lit(struct pstate *s, const char *w, size_t wl)
{
	if (s->n - s->i < wl || memcmp(s->p + s->i, w, wl))
		return false;
	s->i += wl;
	return true;
}

/* The duplicate-name table's hash of a name (1 to RF_NAME_MAX bytes): its first 16 bytes (fewer,
 * zero-padded, if it is shorter) and its length, mixed by multiplication. Cheaper than a
 * byte-wise hash, and the parser's fast path for names (rf_event_parse) computes it from the 16
 * bytes it has loaded anyway; enough: names that share a slot only cost probes, and the table is
 * never more than half full, so a line cannot make the check worse than quadratic in
 * RF_EVENT_FIELDS_MAX, as with any hash. */
static uint32_t block_hash(uint64_t a, uint64_t b, size_t n)
{
	uint64_t h = (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full) ^ n;
	return (uint32_t)((h ^ h >> 29) * 0xbf58476d1ce4e5b9ull >> 32);
}

static uint32_t name_hash(const uint8_t *p, size_t n)
{
	uint8_t blk[16] = {0};
	uint64_t a, b;

	memcpy(blk, p, n < 16 ? n : 16);
	memcpy(&a, blk, 8);
	memcpy(&b, blk + 8, 8);
	return block_hash(a, b, n);
}

#if defined(__SSE2__)
/* name_hash of the name x holds in its first k (< 16) bytes. Little-endian, as every SSE2 target
 * is, so a and b are what name_hash reads. */
static uint32_t name_hash_sse(__m128i x, unsigned k)
{
	const __m128i idx = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	__m128i z = _mm_and_si128(x, _mm_cmplt_epi8(idx, _mm_set1_epi8((char)k)));

	return block_hash((uint64_t)_mm_cvtsi128_si64(z),
			  (uint64_t)_mm_cvtsi128_si64(_mm_srli_si128(z, 8)), k);
}
#endif

/* Parse the member name starting at the opening quote: *ret_hash is its name_hash. The usual
 * name (ASCII, no escape, under 32 bytes, 16 bytes of line after it) is found, and hashed,
 * from one 16-byte load (two if it has 16 to 31 bytes); any other goes through parse_string. 0 or
 * -EBADMSG. */
static int parse_name(struct pstate *s, const uint8_t **ret, size_t *ret_len, uint32_t *ret_hash)
{
	int r;

#if defined(__SSE2__)
	if (s->n - s->i > 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s->p + s->i + 1));
		unsigned m = special_mask(x);
		if (m) {
			unsigned k = (unsigned)__builtin_ctz(m);
			if (s->p[s->i + 1 + k] == '"' &&
			    !((unsigned)_mm_movemask_epi8(x) & ((1u << k) - 1))) {
				*ret = s->p + s->i + 1;
				*ret_len = k;
				*ret_hash = name_hash_sse(x, k);
				s->i += k + 2;
				return 0;
			}
		} else if (s->n - s->i > 32 && !_mm_movemask_epi8(x)) {
			/* 16 to 31 bytes ("ParentCommandLine"): the hash reads only the first 16 */
			__m128i y = _mm_loadu_si128((const __m128i *)(const void *)(s->p + s->i + 17));
			unsigned m2 = special_mask(y);
			if (m2) {
				unsigned k = (unsigned)__builtin_ctz(m2);
				if (s->p[s->i + 17 + k] == '"' &&
				    !((unsigned)_mm_movemask_epi8(y) & ((1u << k) - 1))) {
					*ret = s->p + s->i + 1;
					*ret_len = 16 + k;
					*ret_hash = block_hash(
					    (uint64_t)_mm_cvtsi128_si64(x),
					    (uint64_t)_mm_cvtsi128_si64(_mm_srli_si128(x, 8)), 16 + k);
					s->i += 16 + k + 2;
					return 0;
				}
			}
		}
	}
#endif
	if ((r = parse_string(s, ret, ret_len)) < 0)
		return r;
	*ret_hash = name_hash(*ret, *ret_len);
	return 0;
}

int rf_event_parse(const uint8_t *line, size_t n, uint8_t *scratch, size_t scratch_len,
		   struct rf_event *ev, struct rf_diag *d)
{
	struct pstate s = {line, n, 0, scratch, scratch_len, 0, d};
	/* Names seen (for duplicates): slots hold field index + 1, NULL_SLOT + the index of a
	 * member whose value is null (dropped from ev, but its name still counts), or TYPE_SLOT. */
	uint16_t slots[512] = {0};
	struct {
		const uint8_t *name;
		size_t len;
	} nulls[RF_EVENT_FIELDS_MAX];
	size_t n_nulls = 0;
	bool have_type = false;
	int r;

	if (n > RF_EVENT_LINE_MAX)
		return rf_diag_report(d, -E2BIG, "line of %zu bytes (limit %u)", n,
				      RF_EVENT_LINE_MAX);
	ev->n_fields = 0;
	ev->type = NULL;
	ev->type_len = 0;
	skip_ws(&s);
	if (s.i >= n || line[s.i] != '{')
		return fail(&s, "expected '{'");
	s.i++;
	skip_ws(&s);
	if (s.i < n && line[s.i] == '}') {
		s.i++;
		goto done;
	}
	for (;;) {
		const uint8_t *name, *val;
		size_t nlen, vlen;
		bool is_str = false, is_null = false;

		if (!next_is(&s, '"'))
			return fail(&s, "expected a member name");
		size_t name_at = s.i;
		uint32_t h;
		if ((r = parse_name(&s, &name, &nlen, &h)) < 0)
			return r;
		if (nlen == 0 || nlen > RF_NAME_MAX) {
			s.i = name_at;
			return fail(&s, "member name empty or longer than RF_NAME_MAX");
		}
		if (!next_is(&s, ':'))
			return fail(&s, "expected ':'");
		s.i++;
		skip_ws(&s);
		if (s.i >= n)
			return fail(&s, "expected a value");
		uint8_t c = line[s.i];
		size_t vat = s.i;
		if (c == '"') {
			if ((r = parse_string(&s, &val, &vlen)) < 0)
				return r;
			is_str = true;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			if ((r = parse_number(&s)) < 0)
				return r;
			val = line + vat;
			vlen = s.i - vat;
		} else if (lit(&s, "true", 4) || lit(&s, "false", 5)) {
			val = line + vat;
			vlen = s.i - vat;
		} else if (lit(&s, "null", 4)) {
			val = NULL;
			vlen = 0;
			is_null = true;
		} else if (c == '{' || c == '[') {
			char q[64];
			return rf_diag_report(d, -EBADMSG,
					      "byte %zu: member '%s' is an object or array (only "
					      "strings, numbers, booleans and null are allowed)",
					      vat, rf_diag_quote(q, sizeof(q), name, nlen));
		} else {
			return fail(&s, "expected a value");
		}
		/* Duplicate names. */
		h &= 511;
		for (;;) {
			uint16_t v = slots[h];
			if (!v)
				break;
			const uint8_t *on;
			size_t ol;
			if (v == TYPE_SLOT) {
				on = (const uint8_t *)"event";
				ol = 5;
			} else if (v & NULL_SLOT) {
				on = nulls[v & ~NULL_SLOT].name;
				ol = nulls[v & ~NULL_SLOT].len;
			} else {
				on = ev->fields[v - 1].name;
				ol = ev->fields[v - 1].name_len;
			}
			if (ol == nlen && !memcmp(on, name, nlen)) {
				char q[64];
				return rf_diag_report(d, -EBADMSG,
						      "byte %zu: duplicate member '%s'", name_at,
						      rf_diag_quote(q, sizeof(q), name, nlen));
			}
			h = (h + 1) & 511;
		}
		if (nlen == 5 && !memcmp(name, "event", 5)) {
			if (!is_str || vlen == 0)
				return rf_diag_report(
				    d, -EBADMSG, "byte %zu: \"event\" must be a non-empty string",
				    vat);
			ev->type = val;
			ev->type_len = vlen;
			have_type = true;
			slots[h] = TYPE_SLOT;
		} else if (is_null) {
			if (n_nulls >= RF_EVENT_FIELDS_MAX)
				return rf_diag_report(
				    d, -E2BIG, "byte %zu: more than %u members with null values",
				    name_at, RF_EVENT_FIELDS_MAX);
			nulls[n_nulls].name = name;
			nulls[n_nulls].len = nlen;
			slots[h] = (uint16_t)(NULL_SLOT | n_nulls++);
		} else {
			if (ev->n_fields >= RF_EVENT_FIELDS_MAX)
				return rf_diag_report(d, -E2BIG, "byte %zu: more than %u fields",
						      name_at, RF_EVENT_FIELDS_MAX);
			ev->fields[ev->n_fields] =
			    (struct rf_event_field){name, nlen, val, vlen, is_str};
			slots[h] = (uint16_t)++ev->n_fields;
		}
		if (next_is(&s, ',')) {
			s.i++;
			continue;
		}
		if (s.i < n && line[s.i] == '}') {
			s.i++;
			break;
		}
		return fail(&s, "expected ',' or '}'");
	}
done:
	skip_ws(&s);
	if (s.i != n)
		return fail(&s, "bytes after the object");
	if (!have_type)
		return rf_diag_report(d, -EBADMSG, "no \"event\" member");
	return 0;
}
