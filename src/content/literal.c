/*
 * Anchored literal atoms matched by walking tries (see literal.h for the model). Invariants: every
 * edge is reachable from its home slot of the edge table within ls->probes probes; the node
 * reached from a root by bytes b1..bk (folded) is the one every literal whose folded bytes are
 * b1..bk ends at, so reporting its atoms is exact for caseless atoms, and cased atoms are
 * compared byte for byte before they are reported.
 *
 * Also here, the factor readers the prefilter uses for wildcard and regex atoms: pure functions
 * of the pattern text, conservative by construction (a byte is taken as required only when the
 * reader is sure every match contains it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "content/literal.h"
#include "content/pack.h"

/* ASCII case folding by table: one load per byte on the tries' walks (callgrind on the SigmaHQ
 * process_creation bench: the comparisons cost ~1,000 instructions an event). */
static const uint8_t fold_tab[256] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
    0x40, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
    0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
    0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
    0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
    0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
    0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
    0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
    0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
    0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
    0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
};

static inline uint8_t fold(uint8_t c)
{
	return fold_tab[c];
}

static inline uint32_t ehome(const struct rf_litset *ls, uint64_t k)
{
	return (uint32_t)(((k ^ ls->key) * 0x9e3779b97f4a7c15ull) >> (64 - ls->ebits));
}

/* The child of node by byte c (folded), or UINT32_MAX. */
static inline uint32_t child(const struct rf_litset *ls, uint32_t node, uint8_t c)
{
	uint64_t k = ((uint64_t)node << 8 | c) + 1;
	uint32_t h = ehome(ls, k);

	for (uint32_t p = 0; p < ls->probes && ls->edges[h].key; p++, h = (h + 1) & ls->emask)
		if (ls->edges[h].key == k)
			return ls->edges[h].val;
	return UINT32_MAX;
}

int rf__glob_literal(const char *p, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '*' || c == '?')
			return -1;
		if (c == '\\' && i + 1 < n &&
		    (p[i + 1] == '*' || p[i + 1] == '?' || p[i + 1] == '\\'))
			c = p[++i];
		out[o++] = c;
	}
	return (int)o;
}

void rf__litset_free(struct rf_litset *ls)
{
	if (!ls)
		return;
	free(ls->nodes);
	free(ls->spans);
	free(ls->atoms);
	free(ls->edges);
	free(ls->arena);
	memset(ls, 0, sizeof(*ls));
}

/* Insert the edge node -c-> (a new node), or follow it if present. */
static uint32_t add_edge(struct rf_litset *ls, uint32_t node, uint8_t c)
{
	uint64_t k = ((uint64_t)node << 8 | c) + 1;
	uint32_t h = ehome(ls, k), p = 1;

	for (; ls->edges[h].key; p++, h = (h + 1) & ls->emask)
		if (ls->edges[h].key == k)
			return ls->edges[h].val;
	ls->edges[h].key = k;
	ls->edges[h].val = ls->n_nodes;
	if (p > ls->probes)
		ls->probes = p;
	struct rf_lit_node *nd = &ls->nodes[node];
	if (nd->nkids++ == 0) {
		nd->next = ls->n_nodes;
		nd->c = c;
	} else {
		nd->nkids = 2;
	}
	return ls->n_nodes++;
}

int rf__litset_build(struct rf_litset *ls, const struct rf_lit_src *src, uint32_t n)
{
	size_t total = 0, ns = 16, maxnodes = 2;
	unsigned ebits = 4;
	uint8_t key[16];
	uint32_t *term = NULL;
	int r = -ENOMEM;

	memset(ls, 0, sizeof(*ls));
	for (uint32_t i = 0; i < n; i++) {
		if (src[i].len > RF_PATTERN_MAX || src[i].kind >= RF_LIT_NKINDS)
			return -E2BIG;
		total += src[i].len;
	}
	maxnodes += total;
	while (ns < maxnodes * 2)
		ns *= 2, ebits++;
	rf__pack_table_key(key);
	memcpy(&ls->key, key, sizeof(ls->key));
	ls->ebits = (uint8_t)ebits;
	ls->emask = (uint32_t)ns - 1;
	ls->edges = calloc(ns, sizeof(*ls->edges));
	ls->nodes = calloc(maxnodes, sizeof(*ls->nodes));
	ls->spans = calloc(maxnodes, sizeof(*ls->spans));
	ls->atoms = malloc(((size_t)n + 1) * sizeof(*ls->atoms));
	ls->arena = malloc(total + 1);
	term = malloc(((size_t)n + 1) * sizeof(*term));
	if (!ls->edges || !ls->nodes || !ls->spans || !ls->atoms || !ls->arena || !term)
		goto out;
	ls->root[0] = ls->n_nodes++;
	ls->root[1] = ls->n_nodes++;
	/* Insert every literal (folded; suffixes reversed), remember its end node. */
	char *a = ls->arena;
	for (uint32_t i = 0; i < n; i++) {
		const struct rf_lit_src *s = &src[i];
		bool back = s->kind == RF_LIT_SUFFIX;
		uint32_t node = ls->root[back];
		memcpy(a, s->lit, s->len);
		for (uint32_t j = 0; j < s->len; j++)
			node = add_edge(ls, node, fold((uint8_t)a[back ? s->len - 1 - j : j]));
		term[i] = node;
		ls->spans[node].len[s->kind]++;
		ls->nodes[node].atoms = true;
		a += s->len;
	}
	/* Atom lists per (node, kind), by counting sort. */
	uint32_t off = 0;
	for (uint32_t v = 0; v < ls->n_nodes; v++)
		for (int k = 0; k < RF_LIT_NKINDS; k++) {
			ls->spans[v].off[k] = off;
			off += ls->spans[v].len[k];
			ls->spans[v].len[k] = 0;
		}
	a = ls->arena;
	for (uint32_t i = 0; i < n; i++) {
		struct rf_lit_span *nd = &ls->spans[term[i]];
		ls->atoms[nd->off[src[i].kind] + nd->len[src[i].kind]++] =
		    (struct rf_lit_atom){a, src[i].atom, src[i].cased};
		a += src[i].len;
	}
	ls->n = n;
	r = 0;
out:
	free(term);
	if (r < 0)
		rf__litset_free(ls);
	return r;
}

/* Report the atoms of kind at node: the literal is v[0..len) folded; a cased one must equal it
 * byte for byte. */
static inline void report(const struct rf_litset *ls, uint32_t node, unsigned kind,
			  const uint8_t *v, size_t len, void (*hit)(void *ctx, uint32_t atom),
			  void *ctx)
{
	const struct rf_lit_span *nd = &ls->spans[node];

	for (uint32_t k = 0; k < nd->len[kind]; k++) {
		const struct rf_lit_atom *at = &ls->atoms[nd->off[kind] + k];
		if (!at->cased || memcmp(at->lit, v, len) == 0)
			hit(ctx, at->atom);
	}
}

/* The node after node by byte c, or UINT32_MAX. */
static inline uint32_t step(const struct rf_litset *ls, const struct rf_lit_node *nd, uint32_t node,
			    uint8_t c)
{
	if (nd->nkids == 1)
		return nd->c == c ? nd->next : UINT32_MAX;
	return nd->nkids ? child(ls, node, c) : UINT32_MAX;
}

void rf__litset_match(const struct rf_litset *ls, const uint8_t *v, size_t n,
		      void (*hit)(void *ctx, uint32_t atom), void *ctx)
{
	uint32_t node;
	size_t i;

	if (!ls->n)
		return;
	/* Forwards: every prefix of v a literal ends at, and v whole for eq. */
	node = ls->root[0];
	for (i = 0;; i++) {
		const struct rf_lit_node *nd = &ls->nodes[node];
		if (nd->atoms) {
			report(ls, node, RF_LIT_PREFIX, v, i, hit, ctx);
			if (i == n)
				report(ls, node, RF_LIT_EQ, v, i, hit, ctx);
		}
		if (i == n || (node = step(ls, nd, node, fold(v[i]))) == UINT32_MAX)
			break;
	}
	/* Backwards: every suffix. */
	node = ls->root[1];
	for (i = 0;; i++) {
		const struct rf_lit_node *nd = &ls->nodes[node];
		if (nd->atoms)
			report(ls, node, RF_LIT_SUFFIX, v + n - i, i, hit, ctx);
		if (i == n || (node = step(ls, nd, node, fold(v[n - 1 - i]))) == UINT32_MAX)
			break;
	}
}

/* ---- small contains sets: Shift-And (see literal.h) ---------------------------------- */

int rf__shiftset_build(struct rf_shiftset *ss, const struct rf_lit_src *src, uint32_t n)
{
	uint32_t bits = 0;

	memset(ss, 0, sizeof(*ss));
	for (uint32_t i = 0; i < n; i++) {
		if (src[i].len == 0 || src[i].len > 64 - bits)
			return -E2BIG;
		bits += src[i].len;
	}
	ss->mask = calloc(256, sizeof(*ss->mask));
	if (!ss->mask)
		return -ENOMEM;
	ss->n = n;
	bits = 0;
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < src[i].len; j++, bits++) {
			uint8_t c = (uint8_t)src[i].lit[j];
			uint64_t b = 1ull << bits;
			ss->mask[c] |= b;
			if (!src[i].cased) {
				ss->mask[fold(c)] |= b;
				if (c >= 'a' && c <= 'z')
					ss->mask[c & ~0x20] |= b;
			}
			if (j == 0)
				ss->start |= b;
		}
		ss->end |= 1ull << (bits - 1);
		ss->atom[bits - 1] = src[i].atom;
	}
	return 0;
}

void rf__shiftset_free(struct rf_shiftset *ss)
{
	if (!ss)
		return;
	free(ss->mask);
	memset(ss, 0, sizeof(*ss));
}

void rf__shiftset_match(const struct rf_shiftset *ss, const uint8_t *v, size_t n,
			void (*hit)(void *ctx, uint32_t atom), void *ctx)
{
	uint64_t d = 0, end = ss->end, start = ss->start;
	const uint64_t *mask = ss->mask;

	if (!ss->n)
		return;
	for (size_t i = 0; i < n; i++) {
		d = (d << 1 | start) & mask[v[i]];
		if (!(d & end))
			continue;
		/* Literals found: report each once (their end bits leave the set). */
		for (uint64_t x = d & end; x; x &= x - 1) {
			uint32_t j = (uint32_t)__builtin_ctzll(x);
			hit(ctx, ss->atom[j]);
		}
		end &= ~d;
		if (!end)
			return;
	}
}

/* ---- factors: a literal every match of a pattern contains --------------------------- */

/* The longest literal run of glob p[0..n) (escapes resolved) written to out: its length, 0 if
 * the glob is only wildcards. */
uint32_t rf__glob_factor(const char *p, size_t n, char *out)
{
	uint32_t best = 0, cur = 0;
	char run[RF_PATTERN_MAX];

	for (size_t i = 0; i < n && i < RF_PATTERN_MAX; i++) {
		char c = p[i];
		if (c == '*' || c == '?') {
			cur = 0;
			continue;
		}
		if (c == '\\' && i + 1 < n &&
		    (p[i + 1] == '*' || p[i + 1] == '?' || p[i + 1] == '\\'))
			c = p[++i];
		run[cur++] = c;
		if (cur > best) {
			best = cur;
			memcpy(out, run, cur);
		}
	}
	return best;
}

/* The length of the group or class starting at p[i] ('(' or '['), escapes and nested classes
 * and groups included; 0 if it does not end. */
static size_t skip_group(const char *p, size_t n, size_t i)
{
	size_t j = i + 1;
	int depth = 1;

	if (p[i] == '[') {
		if (j < n && p[j] == '^')
			j++;
		if (j < n && p[j] == ']')
			j++;
		for (; j < n && p[j] != ']'; j++)
			if (p[j] == '\\')
				j++;
		return j < n ? j - i + 1 : 0;
	}
	for (; j < n; j++) {
		if (p[j] == '\\') {
			j++;
		} else if (p[j] == '[') {
			size_t k = skip_group(p, n, j);
			if (!k)
				return 0;
			j += k - 1;
		} else if (p[j] == '(') {
			depth++;
		} else if (p[j] == ')' && --depth == 0) {
			return j - i + 1;
		}
	}
	return 0;
}

/* The last byte of the escape whose letter or digit is p[i] (\\xHH, \\x{...}, \\cX, \\pL,
 * \\p{..}, \\k<..>, \\g{..}, \\g-1, \\123, \\o{..}, \\N{..}): what follows it is read as
 * part of it, so none of it is taken for a literal byte. */
static size_t skip_escape(const char *p, size_t n, size_t i)
{
	char c = p[i];
	size_t j = i + 1;

	if (j < n && (p[j] == '{' || ((c == 'k' || c == 'g') && (p[j] == '<' || p[j] == '\'')))) {
		char close = p[j] == '{' ? '}' : p[j] == '<' ? '>' : '\'';
		for (j++; j < n && p[j] != close; j++)
			;
		j = j < n ? j + 1 : n;
	} else if (c == 'x')
		while (j < n && j < i + 3 &&
		       ((p[j] >= '0' && p[j] <= '9') || (p[j] >= 'a' && p[j] <= 'f') ||
			(p[j] >= 'A' && p[j] <= 'F')))
			j++;
	else if (c == 'c' || c == 'p' || c == 'P')
		j = j < n ? j + 1 : j;
	else if ((c >= '0' && c <= '9') || c == 'g')
		while (j < n && ((p[j] >= '0' && p[j] <= '9') || p[j] == '-'))
			j++;
	return j - 1;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* The byte the escape whose letter is p[i] stands for when it is exactly one byte whatever the
 * mode (\n \t \r \f \e \a, and \xHH with two hex digits below 0x80), else -1. \v and
 * \h are classes in PCRE, \x{..} and \xH may be longer or shorter: not decoded. */
static int escaped_byte(const char *p, size_t n, size_t i)
{
	switch (p[i]) {
	case 'n':
		return '\n';
	case 't':
		return '\t';
	case 'r':
		return '\r';
	case 'f':
		return '\f';
	case 'e':
		return 0x1b;
	case 'a':
		return 0x07;
	case 'x':
		if (i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 1]) < 8 &&
		    hexval(p[i + 2]) >= 0)
			return hexval(p[i + 1]) * 16 + hexval(p[i + 2]);
		return -1;
	default:
		return -1;
	}
}

/* A run of required bytes ends: keep it in out if it is the longest so far. Returns 0 (the new
 * run's length). */
static uint32_t commit(const char *run, uint32_t cur, char *out, uint32_t *best)
{
	if (cur > *best) {
		*best = cur;
		memcpy(out, run, cur);
	}
	return 0;
}

/* A literal every match of regular expression p[0..n) contains (written to out; its length, 0
 * if none is found). Conservative: the expression is read at top level as a sequence of items,
 * each a byte it requires (a plain byte, or an escaped one that is not a letter or digit) or
 * something else (a group, a class, '.', an anchor, another escape); a quantifier turns the byte
 * before it into something else ('+' keeps it but ends the run); a top-level '|' gives up. The
 * factor is the longest run of required bytes, matched caselessly (inline flags may make any
 * part of the expression caseless). */
/* Does regex p[0..n) turn on extended mode ((?x) or (?x:...), alone or among other flags)
 * anywhere? There white space and '#' comments are not bytes to match, so no literal run read
 * off the text is required: the factor reader gives up (a conservative test: a "(?" inside a
 * class or after a backslash counts too). */
static bool extended_mode(const char *p, size_t n)
{
	for (size_t i = 0; i + 2 < n; i++) {
		if (p[i] != '(' || p[i + 1] != '?' || (i && p[i - 1] == '\\'))
			continue;
		for (size_t j = i + 2; j < n && p[j] != ')' && p[j] != ':'; j++) {
			if (p[j] == 'x')
				return true;
			if (!((p[j] >= 'a' && p[j] <= 'z') || (p[j] >= 'A' && p[j] <= 'Z') ||
			      p[j] == '-' || p[j] == '^'))
				break;
		}
	}
	return false;
}

uint32_t rf__regex_factor(const char *p, size_t n, char *out)
{
	uint32_t best = 0, cur = 0;
	char run[RF_PATTERN_MAX];
	bool prev_lit = false;

	if (n > RF_PATTERN_MAX || extended_mode(p, n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		bool lit = false;
		if (c == '?' || c == '*' || c == '+' || c == '{') {
			size_t j = i + 1;
			if (c == '{') {
				while (j < n && ((p[j] >= '0' && p[j] <= '9') || p[j] == ','))
					j++;
				if (j >= n || p[j] != '}') { /* a literal '{': not required here */
					cur = commit(run, cur, out, &best);
					prev_lit = false;
					continue;
				}
				j++;
			}
			if (prev_lit && c != '+')
				cur--; /* the byte before is optional */
			if (j < n && (p[j] == '?' || p[j] == '+'))
				j++; /* lazy or possessive modifier */
			i = j - 1;
			/* End the run (after the byte a '+' repeats). */
			cur = commit(run, cur, out, &best);
			prev_lit = false;
			continue;
		}
		if (c == '|')
			return 0;
		if (c == '(' || c == '[') {
			size_t k = skip_group(p, n, i);
			if (!k)
				return 0;
			i += k - 1;
		} else if (c == '\\') {
			if (i + 1 >= n)
				return 0;
			c = p[++i];
			if (c == 'Q')
				return 0;
			lit = !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
				(c >= 'A' && c <= 'Z') || (unsigned char)c >= 0x80);
			int esc = lit ? -1 : escaped_byte(p, n, i);
			if (esc >= 0) { /* \n, \t, \r, \f, \e, \a, \xHH: one byte */
				lit = true;
				c = (char)esc;
				if (p[i] == 'x')
					i += 2;
			} else if (!lit) {
				i = skip_escape(p, n, i);
			}
		} else {
			lit = c != '.' && c != '^' && c != '$' && c != ')' && c != ']' && c != '}';
		}
		if (!lit) {
			cur = commit(run, cur, out, &best);
			prev_lit = false;
			continue;
		}
		run[cur++] = c;
		prev_lit = true;
	}
	commit(run, cur, out, &best);
	return best;
}
