/*
 * The Sigma rule compiler (see sigma.h for the contract, docs/sigma.md for the subset).
 *
 * Model. The YAML text is parsed with libyaml's event API into a small tree of our own (aliases
 * are refused, so the tree is never larger than the text: no "billion laughs"), with every
 * plain scalar resolved the way YAML 1.1 / PyYAML resolves it (null, bool, int, other numbers,
 * string), because pySigma, the reference implementation, reads rules through PyYAML: a value
 * means here what it means there, or the rule is rejected. Each search identifier is compiled
 * to a postfix fragment over atoms (maps AND, lists OR, value lists OR or AND with |all); the
 * condition is parsed by recursive descent (not > and > or) and emits the final program by
 * splicing the fragments. Atoms are de-duplicated within a rule.
 *
 * Invariants. A rule is either compiled with its exact Sigma meaning or rejected with a reason:
 * unknown or unsupported constructs are never skipped. Every count is bounded by a Sigma limit
 * of ringfence/limits.h checked before the work it bounds (nodes, nesting, map size, atoms,
 * program length, pattern length, condition depth, evaluation stack), so time and memory are
 * linear in the file size. Nothing is printed; every failure is one rf_diag message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>
#include <jansson.h>
#include <yaml.h>

#include "common/util.h"
#include "content/pack.h"
#include "content/sigma.h"
#include "ringfence/limits.h"

/* ---- arena: every string and tree node of one compile, freed at once ------------------- */

struct block {
	struct block *next;
	size_t used, cap;
	max_align_t data[];
};

struct arena {
	struct block *head;
};

#define ARENA_BLOCK (64u * 1024)

static void *arena_alloc(struct arena *a, size_t n)
{
	const size_t al = alignof(max_align_t);
	size_t need;

	if (__builtin_add_overflow(n, al - 1, &need))
		return NULL;
	need &= ~(al - 1);
	if (!a->head || a->head->cap - a->head->used < need) {
		size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK, total;
		struct block *b;

		if (__builtin_add_overflow(cap, sizeof(struct block), &total))
			return NULL;
		b = malloc(total);
		if (!b)
			return NULL;
		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
	}
	void *p = (unsigned char *)a->head->data + a->head->used;
	a->head->used += need;
	return p;
}

/* A NUL-terminated copy of p[0..n). */
static char *arena_strndup(struct arena *a, const void *p, size_t n)
{
	size_t sz;
	char *s;

	if (__builtin_add_overflow(n, 1, &sz))
		return NULL;
	s = arena_alloc(a, sz);
	if (!s)
		return NULL;
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void arena_free(struct arena *a)
{
	struct block *b = a->head;

	while (b) {
		struct block *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
}

/* ---- the YAML tree ------------------------------------------------------------------------ */

enum nkind { N_SCALAR = 1, N_SEQ, N_MAP };

/* How a scalar resolves (YAML 1.1 as PyYAML reads it; quoted or !!str scalars are S_STR). */
enum skind {
	S_STR = 1,
	S_NULL, /* plain "", "~", "null" */
	S_BOOL, /* plain true/false/yes/no/on/off in any case PyYAML accepts */
	S_INT,	/* plain decimal integer without leading zeros */
	S_NUMX, /* any other YAML 1.1 number: 0x1f, 017, 1_000, 1:30, 1.5, .inf: ambiguous */
};

struct node {
	enum nkind kind;
	unsigned line;	    /* 1-based line in the file, for messages */
	enum skind sk;	    /* N_SCALAR */
	bool bval;	    /* S_BOOL */
	bool plain;	    /* N_SCALAR: unquoted and untagged */
	const char *s;	    /* N_SCALAR: NUL-terminated copy */
	size_t len;	    /* N_SCALAR: length without the NUL (may hold NUL bytes) */
	struct node **kids; /* N_SEQ items; N_MAP key, value, key, value, ... */
	size_t nkids;
};

/* ---- the compiled rule -------------------------------------------------------------------- */

struct vec {
	uint32_t *v;
	size_t n, cap;
};

struct rf_sigma_rule {
	struct rf_ir_rule ir;
	struct arena arena;
	struct rf_ir_atom *atoms;
	size_t n_atoms, cap_atoms;
	struct vec code;
};

struct ident {
	const struct node *name;
	struct vec code;
};

/* Atom de-duplication: open addressing over atom indices (+1, 0 = empty). */
#define ATOM_HASH_SLOTS 4096u
_Static_assert(ATOM_HASH_SLOTS >= 2 * RF_SIGMA_ATOMS_MAX, "atom hash must stay half empty");

struct ctx {
	const char *origin;
	struct rf_diag *d;
	const struct rf_manifest *m;
	struct rf_sigma_rule *r;
	size_t nodes;
	char qid[96], qtitle[160]; /* quoted for messages; "" until known */
	const char *event;
	struct ident *ids;
	size_t nids;
	uint32_t *atom_hash;
	unsigned cond_depth;
	size_t match_steps; /* ident_match work, bounded by RF_SIGMA_MATCH_STEPS_MAX */
	const struct rf_sigma_placeholders *ph;
};

/* Placeholder values for `expand` (rf_sigma_placeholders_parse). */
struct placeholder {
	char *name;
	size_t n;
	char **vals;
	size_t *lens;
};

struct rf_sigma_placeholders {
	size_t n;
	struct placeholder *p;
};

static int fail(struct ctx *c, int code, const char *fmt, ...) RF_PRINTF(3, 4);

static int fail(struct ctx *c, int code, const char *fmt, ...)
{
	char reason[RF_DIAG_MSG_MAX];
	const char *o = c->origin ? c->origin : "<input>";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (c->qid[0] && c->qtitle[0])
		return rf_diag_report(c->d, code, "%s: rule %s \"%s\": %s", o, c->qid, c->qtitle,
				      reason);
	if (c->qid[0])
		return rf_diag_report(c->d, code, "%s: rule %s: %s", o, c->qid, reason);
	if (c->qtitle[0])
		return rf_diag_report(c->d, code, "%s: rule \"%s\": %s", o, c->qtitle, reason);
	return rf_diag_report(c->d, code, "%s: %s", o, reason);
}

static int oom(struct ctx *c)
{
	return fail(c, -ENOMEM, "out of memory");
}

/* Quote a scalar for a message (safe on any bytes). */
static const char *qs(char *buf, size_t sz, const struct node *n)
{
	return rf_diag_quote(buf, sz, n->s, n->len);
}

/* ---- scalar resolution (no locale: attacker bytes) ------------------------------------- */

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool eq_any(const char *s, size_t n, const char *const *words)
{
	for (; *words; words++)
		if (strlen(*words) == n && !memcmp(s, *words, n))
			return true;
	return false;
}

/* YAML 1.1 int forms other than plain decimal, and floats (PyYAML's resolver regexps). */
static bool is_yaml11_number(const char *s, size_t n)
{
	static const char *const special[] = {".inf",  ".Inf",	".INF",	 ".nan",  ".NaN",
					      ".NAN",  "+.inf", "+.Inf", "+.INF", "-.inf",
					      "-.Inf", "-.INF", NULL};
	size_t i = 0;

	if (eq_any(s, n, special))
		return true;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	if (i == n)
		return false;
	if (n - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'b')) {
		bool hex = s[i + 1] == 'x';
		for (i += 2; i < n; i++) {
			char ch = s[i];
			bool ok = ch == '_' || (hex ? (is_digit(ch) || (ch >= 'a' && ch <= 'f') ||
						       (ch >= 'A' && ch <= 'F'))
						    : (ch == '0' || ch == '1'));
			if (!ok)
				return false;
		}
		return true;
	}
	/* [0-9][0-9_]* then optionally (:[0-5]?[0-9])+ (sexagesimal) or .[0-9_]*([eE][-+][0-9]+)?
	 */
	size_t start = i;
	if (s[i] == '.') {
		/* \.[0-9_]+([eE][-+][0-9]+)? */
		i++;
		size_t d = i;
		while (i < n && (is_digit(s[i]) || s[i] == '_'))
			i++;
		if (i == d)
			return false;
		goto exponent;
	}
	while (i < n && (is_digit(s[i]) || s[i] == '_'))
		i++;
	if (i == start || !is_digit(s[start]))
		return false;
	if (i == n) { /* octal 0[0-7_]+, or decimal [1-9][0-9_]* with underscores */
		if (s[start] != '0')
			return true;
		for (size_t j = start; j < n; j++)
			if (s[j] == '8' || s[j] == '9')
				return false; /* "00000429" is a string to PyYAML */
		return true;
	}
	if (s[i] == ':') { /* sexagesimal [1-9][0-9_]*(:[0-5]?[0-9])+, float if .[0-9_]* follows */
		if (s[start] == '0')
			return false;
		while (i < n && s[i] == ':') {
			size_t d = ++i;
			while (i < n && is_digit(s[i]))
				i++;
			if (i - d < 1 || i - d > 2 || (i - d == 2 && s[d] > '5'))
				return false;
		}
		if (i == n)
			return true;
		if (s[i] != '.')
			return false;
		for (i++; i < n; i++)
			if (!is_digit(s[i]) && s[i] != '_')
				return false;
		return true;
	}
	if (s[i] != '.')
		return false;
	i++;
	while (i < n && (is_digit(s[i]) || s[i] == '_'))
		i++;
exponent:
	if (i == n)
		return true;
	if (s[i] != 'e' && s[i] != 'E')
		return false;
	i++;
	if (i == n || (s[i] != '-' && s[i] != '+'))
		return false;
	i++;
	if (i == n)
		return false;
	while (i < n && is_digit(s[i]))
		i++;
	return i == n;
}

/* [-+]?(0|[1-9][0-9]*) */
static bool is_plain_decimal(const char *s, size_t n)
{
	size_t i = 0;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	if (i == n)
		return false;
	if (s[i] == '0')
		return i + 1 == n;
	for (; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

static void resolve_plain(struct node *nd)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
					  "YES",  "on",	  "On",	  "ON",	 NULL};
	static const char *const no[] = {"false", "False", "FALSE", "no",  "No",
					 "NO",	  "off",   "Off",   "OFF", NULL};

	if (eq_any(nd->s, nd->len, nulls))
		nd->sk = S_NULL;
	else if (eq_any(nd->s, nd->len, yes))
		nd->sk = S_BOOL, nd->bval = true;
	else if (eq_any(nd->s, nd->len, no))
		nd->sk = S_BOOL, nd->bval = false;
	else if (is_plain_decimal(nd->s, nd->len))
		nd->sk = S_INT;
	else if (is_yaml11_number(nd->s, nd->len))
		nd->sk = S_NUMX;
	else
		nd->sk = S_STR;
}

/* ---- YAML -> tree -------------------------------------------------------------------------- */

struct open {
	struct node *node;
	struct node **kids;
	size_t n, cap;
};

static bool tag_ok(const yaml_char_t *tag, const char *want)
{
	if (!tag)
		return true;
	const char *t = (const char *)tag;
	return !strcmp(t, "!") || !strcmp(t, want);
}

static int add_child(struct ctx *c, struct open *o, struct node *kid)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 8;
		struct node **k = realloc(o->kids, cap * sizeof(*k));
		if (!k)
			return oom(c);
		o->kids = k;
		o->cap = cap;
	}
	o->kids[o->n++] = kid;
	return 0;
}

static struct node *new_node(struct ctx *c, enum nkind kind, const yaml_mark_t *mark)
{
	struct node *nd = arena_alloc(&c->r->arena, sizeof(*nd));

	if (!nd)
		return NULL;
	memset(nd, 0, sizeof(*nd));
	nd->kind = kind;
	nd->line = mark->line < UINT32_MAX ? (unsigned)mark->line + 1 : UINT32_MAX;
	return nd;
}

static int yaml_load(struct ctx *c, const uint8_t *p, size_t n, struct node **ret)
{
	struct open st[RF_SIGMA_YAML_DEPTH_MAX];
	size_t sp = 0;
	unsigned docs = 0;
	struct node *root = NULL;
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return oom(c);
	yaml_parser_set_input_string(&parser, p, n);
	while (!done) {
		struct node *nd = NULL;

		if (!yaml_parser_parse(&parser, &ev)) {
			if (parser.error == YAML_MEMORY_ERROR)
				r = oom(c);
			else
				r = fail(c, -EBADMSG, "not valid YAML: %s at line %zu column %zu",
					 parser.problem ? parser.problem : "parse error",
					 (size_t)parser.problem_mark.line + 1,
					 (size_t)parser.problem_mark.column + 1);
			goto out;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				r = fail(c, -ENOTSUP,
					 "multi-document rule files are not supported "
					 "(second YAML document at line %zu)",
					 (size_t)ev.start_mark.line + 1);
				goto out_event;
			}
			break;
		case YAML_ALIAS_EVENT:
			r = fail(c, -ENOTSUP, "YAML aliases are not supported (line %zu)",
				 (size_t)ev.start_mark.line + 1);
			goto out_event;
		case YAML_SCALAR_EVENT:
			if (!tag_ok(ev.data.scalar.tag, "tag:yaml.org,2002:str")) {
				r = fail(c, -ENOTSUP,
					 "YAML tag '%.64s' is not supported (line %zu)",
					 (const char *)ev.data.scalar.tag,
					 (size_t)ev.start_mark.line + 1);
				goto out_event;
			}
			nd = new_node(c, N_SCALAR, &ev.start_mark);
			if (!nd || !(nd->s = arena_strndup(&c->r->arena, ev.data.scalar.value,
							   ev.data.scalar.length))) {
				r = oom(c);
				goto out_event;
			}
			nd->len = ev.data.scalar.length;
			nd->plain =
			    ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev.data.scalar.tag;
			if (nd->plain)
				resolve_plain(nd);
			else
				nd->sk = S_STR;
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			bool seq = ev.type == YAML_SEQUENCE_START_EVENT;
			const yaml_char_t *tag =
			    seq ? ev.data.sequence_start.tag : ev.data.mapping_start.tag;

			if (!tag_ok(tag, seq ? "tag:yaml.org,2002:seq" : "tag:yaml.org,2002:map")) {
				r = fail(c, -ENOTSUP,
					 "YAML tag '%.64s' is not supported (line %zu)",
					 (const char *)tag, (size_t)ev.start_mark.line + 1);
				goto out_event;
			}
			if (sp == RF_SIGMA_YAML_DEPTH_MAX) {
				r = fail(c, -E2BIG, "YAML nesting deeper than %u (line %zu)",
					 RF_SIGMA_YAML_DEPTH_MAX, (size_t)ev.start_mark.line + 1);
				goto out_event;
			}
			if (++c->nodes > RF_SIGMA_NODES_MAX) {
				r = fail(c, -E2BIG, "more than %u YAML nodes", RF_SIGMA_NODES_MAX);
				goto out_event;
			}
			nd = new_node(c, seq ? N_SEQ : N_MAP, &ev.start_mark);
			if (!nd) {
				r = oom(c);
				goto out_event;
			}
			st[sp++] = (struct open){.node = nd};
			nd = NULL; /* attached to its parent when it ends */
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT: {
			struct open *o = &st[--sp];

			nd = o->node;
			if (nd->kind == N_MAP && o->n / 2 > RF_SIGMA_MAP_MAX) {
				r = fail(c, -E2BIG, "mapping at line %u has more than %u entries",
					 nd->line, RF_SIGMA_MAP_MAX);
				free(o->kids);
				goto out_event;
			}
			if (o->n) {
				nd->kids = arena_alloc(&c->r->arena, o->n * sizeof(*nd->kids));
				if (!nd->kids) {
					free(o->kids);
					r = oom(c);
					goto out_event;
				}
				memcpy(nd->kids, o->kids, o->n * sizeof(*nd->kids));
			}
			nd->nkids = o->n;
			free(o->kids);
			break;
		}
		default:
			break;
		}
		if (nd && ev.type == YAML_SCALAR_EVENT && ++c->nodes > RF_SIGMA_NODES_MAX) {
			r = fail(c, -E2BIG, "more than %u YAML nodes", RF_SIGMA_NODES_MAX);
			goto out_event;
		}
		if (nd) {
			if (sp > 0) {
				r = add_child(c, &st[sp - 1], nd);
				if (r < 0)
					goto out_event;
			} else {
				root = nd;
			}
		}
		yaml_event_delete(&ev);
	}
	if (!root || root->kind != N_MAP) {
		r = fail(c, -EBADMSG, "not a Sigma rule (the document is not a YAML mapping)");
		goto out;
	}
	*ret = root;
	goto out;
out_event:
	yaml_event_delete(&ev);
out:
	while (sp > 0)
		free(st[--sp].kids);
	yaml_parser_delete(&parser);
	return r;
}

/* ---- tree helpers ------------------------------------------------------------------------ */

static bool scalar_is(const struct node *n, const char *s)
{
	return n->kind == N_SCALAR && n->len == strlen(s) && !memcmp(n->s, s, n->len);
}

/* Value of key in map m (NULL if absent). Keys are checked for duplicates in check_map. */
static const struct node *map_get(const struct node *m, const char *key)
{
	for (size_t i = 0; i + 1 < m->nkids; i += 2)
		if (scalar_is(m->kids[i], key))
			return m->kids[i + 1];
	return NULL;
}

/* Every key a scalar, no key twice (YAML forbids it; PyYAML would keep the last silently). */
static int check_map(struct ctx *c, const struct node *m, const char *what)
{
	char q[96];

	for (size_t i = 0; i + 1 < m->nkids; i += 2) {
		const struct node *k = m->kids[i];

		if (k->kind != N_SCALAR)
			return fail(c, -EBADMSG, "%s: a key at line %u is not a string", what,
				    k->line);
		if (k->plain && k->len == 2 && !memcmp(k->s, "<<", 2))
			return fail(c, -ENOTSUP,
				    "%s: YAML merge keys ('<<') are not supported (line %u)", what,
				    k->line);
		for (size_t j = 0; j < i; j += 2) {
			const struct node *k2 = m->kids[j];
			if (k2->len == k->len && !memcmp(k2->s, k->s, k->len))
				return fail(c, -EBADMSG, "%s: duplicate key '%s' (line %u)", what,
					    qs(q, sizeof(q), k), k->line);
		}
	}
	return 0;
}

/* Bytes a message may quote but a C string must not hold, and the printable test for names. */
static bool has_nul(const struct node *n)
{
	return memchr(n->s, '\0', n->len) != NULL;
}

static bool has_ctl(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/* ---- atoms and code ---------------------------------------------------------------------- */

static int vec_push(struct ctx *c, struct vec *v, uint32_t insn)
{
	if (v->n >= RF_RULE_CODE_MAX)
		return fail(c, -E2BIG, "program longer than %u instructions", RF_RULE_CODE_MAX);
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 32;
		if (cap > RF_RULE_CODE_MAX)
			cap = RF_RULE_CODE_MAX;
		uint32_t *nv = realloc(v->v, cap * sizeof(*nv));
		if (!nv)
			return oom(c);
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = insn;
	return 0;
}

static int vec_append(struct ctx *c, struct vec *dst, const struct vec *src)
{
	for (size_t i = 0; i < src->n; i++) {
		int r = vec_push(c, dst, src->v[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Joining the i-th operand of an n-ary AND/OR (left fold keeps the stack shallow). */
static int join(struct ctx *c, struct vec *v, size_t i, enum rf_insn_op op)
{
	return i > 0 ? vec_push(c, v, RF_INSN(op, 0)) : 0;
}

static uint32_t atom_hash(const char *field, enum rf_ftype t, enum rf_atom_op op, uint32_t flags,
			  const uint8_t *p, size_t n)
{
	const uint8_t kind[4] = {0xff, (uint8_t)t, (uint8_t)op, (uint8_t)flags};
	uint32_t h = rf_fnv1a32(field, field ? strlen(field) : 0, RF_FNV1A32_INIT);

	h = rf_fnv1a32(kind, sizeof(kind), h);
	return rf_fnv1a32(p, n, h);
}

static bool atom_same(const struct rf_ir_atom *a, const char *field, enum rf_ftype t,
		      enum rf_atom_op op, uint32_t flags, const uint8_t *p, size_t n)
{
	if (a->type != t || a->op != op || a->flags != flags || a->pattern_len != n)
		return false;
	if (!a->field != !field || (field && strcmp(a->field, field)))
		return false;
	return n == 0 || !memcmp(a->pattern, p, n);
}

/* Push ATOM(index) for this predicate, adding the atom unless the rule already has it. */
static int emit_atom(struct ctx *c, struct vec *v, const char *field, enum rf_ftype t,
		     enum rf_atom_op op, uint32_t flags, const uint8_t *p, size_t n)
{
	struct rf_sigma_rule *r = c->r;
	uint32_t slot = atom_hash(field, t, op, flags, p, n) & (ATOM_HASH_SLOTS - 1);

	for (;;) {
		uint32_t idx = c->atom_hash[slot];
		if (!idx)
			break;
		if (atom_same(&r->atoms[idx - 1], field, t, op, flags, p, n))
			return vec_push(c, v, RF_INSN(RF_I_ATOM, idx - 1));
		slot = (slot + 1) & (ATOM_HASH_SLOTS - 1);
	}
	if (r->n_atoms >= RF_SIGMA_ATOMS_MAX)
		return fail(c, -E2BIG, "more than %u atoms (field predicates)", RF_SIGMA_ATOMS_MAX);
	/* The pack's own rule for atoms (limits, types), so a rule that compiles always packs. */
	const char *why = rf__pack_atom_problem(op == RF_OP_KEYWORD ? 0 : (unsigned)t, op, flags, p, n);
	if (why)
		return fail(c, -E2BIG, "%s (field '%s')", why, field ? field : "keyword");
	if (r->n_atoms == r->cap_atoms) {
		size_t cap = r->cap_atoms ? 2 * r->cap_atoms : 16;
		struct rf_ir_atom *na = realloc(r->atoms, cap * sizeof(*na));
		if (!na)
			return oom(c);
		r->atoms = na;
		r->cap_atoms = cap;
	}
	r->atoms[r->n_atoms] = (struct rf_ir_atom){
	    .field = field, .type = t, .op = op, .flags = flags, .pattern = p, .pattern_len = n};
	c->atom_hash[slot] = (uint32_t)++r->n_atoms;
	return vec_push(c, v, RF_INSN(RF_I_ATOM, r->n_atoms - 1));
}

/* ---- search identifiers ------------------------------------------------------------------ */

enum mod {
	M_CONTAINS = 1u << 0,
	M_STARTSWITH = 1u << 1,
	M_ENDSWITH = 1u << 2,
	M_ALL = 1u << 3,
	M_CASED = 1u << 4,
	M_EXISTS = 1u << 5,
	M_WINDASH = 1u << 6,
	M_RE = 1u << 7,
	M_RE_I = 1u << 8,
	M_RE_M = 1u << 9,
	M_RE_S = 1u << 10,
	M_CIDR = 1u << 11,
	M_BASE64 = 1u << 12,
	M_BASE64OFF = 1u << 13,
	M_UTF16LE = 1u << 14,
	M_UTF16BE = 1u << 15,
	M_UTF16 = 1u << 16,
	M_GT = 1u << 17,
	M_GTE = 1u << 18,
	M_LT = 1u << 19,
	M_LTE = 1u << 20,
	M_FIELDREF = 1u << 21,
	M_EXPAND = 1u << 22,
};
#define M_POSITION (M_CONTAINS | M_STARTSWITH | M_ENDSWITH)
#define M_RE_SUB (M_RE_I | M_RE_M | M_RE_S)
#define M_B64 (M_BASE64 | M_BASE64OFF)
#define M_UTF (M_UTF16LE | M_UTF16BE | M_UTF16)
#define M_NUM (M_GT | M_GTE | M_LT | M_LTE)

/* Modifiers of the Sigma specification (and pySigma) that ringfence does not implement yet, each
 * with the reason given to the author. */
static const struct {
	const char *name, *why;
} unsupported_mods[] = {
    {"neq", "not supported yet (write 'not' in the condition)"},
    {"minute", "time modifiers are not supported"},
    {"hour", "time modifiers are not supported"},
    {"day", "time modifiers are not supported"},
    {"week", "time modifiers are not supported"},
    {"month", "time modifiers are not supported"},
    {"year", "time modifiers are not supported"},
};

static const struct {
	const char *name;
	unsigned bit;
} known_mods[] = {
    {"contains", M_CONTAINS},	{"startswith", M_STARTSWITH},
    {"endswith", M_ENDSWITH},	{"all", M_ALL},
    {"cased", M_CASED},		{"exists", M_EXISTS},
    {"windash", M_WINDASH},	{"re", M_RE},
    {"i", M_RE_I},		{"m", M_RE_M},
    {"s", M_RE_S},		{"cidr", M_CIDR},
    {"base64", M_BASE64},	{"base64offset", M_BASE64OFF},
    {"utf16le", M_UTF16LE},	{"wide", M_UTF16LE},
    {"utf16be", M_UTF16BE},	{"utf16", M_UTF16},
    {"gt", M_GT},		{"gte", M_GTE},
    {"lt", M_LT},		{"lte", M_LTE},
    {"fieldref", M_FIELDREF},	{"expand", M_EXPAND},
};

struct field_spec {
	const char *name; /* NUL-terminated, in the arena; NULL for keywords */
	char qname[96];	  /* field|mods as written, quoted for messages */
	unsigned mods;
	enum rf_ftype mtype; /* type from the manifest, 0 without one */
};

static bool field_char_ok(char ch)
{
	return ch > 0x20 && ch < 0x7f && ch != '|';
}

/* Why a set of modifiers (in the order written: utf16* must come before base64*) is
 * contradictory or unsupported together, or NULL. Checked once per key. */
static const char *mods_problem(unsigned m, bool utf_after_b64)
{
	if ((m & M_EXISTS) && m != M_EXISTS)
		return "'exists' cannot be combined with other modifiers";
	if ((m & M_RE_SUB) && !(m & M_RE))
		return "'i', 'm' and 's' are sub-modifiers of 're' and need it";
	if ((m & M_RE) && (m & ~(M_RE | M_RE_SUB | M_ALL | M_CASED)))
		return "'re' can only be combined with 'i', 'm', 's', 'all' (a regular expression "
		       "says itself where it matches)";
	if ((m & M_RE_I) && (m & M_CASED))
		return "'re|i' (case-insensitive) contradicts 'cased'";
	if ((m & M_CIDR) && (m & ~(M_CIDR | M_ALL)))
		return "'cidr' can only be combined with 'all'";
	if (__builtin_popcount(m & M_NUM) > 1)
		return "more than one of gt, gte, lt, lte (write two selections for a range)";
	if ((m & M_NUM) && (m & ~(M_NUM | M_ALL)))
		return "gt, gte, lt and lte can only be combined with 'all'";
	if (__builtin_popcount(m & M_B64) > 1)
		return "'base64' and 'base64offset' together";
	if (__builtin_popcount(m & M_UTF) > 1)
		return "more than one of utf16le (wide), utf16be, utf16";
	if ((m & M_UTF) && !(m & M_B64))
		return "utf16le, utf16be, utf16 and wide must be followed by base64 or base64offset "
		       "(rules match text, and UTF-16 bytes are not text)";
	if (utf_after_b64)
		return "utf16le, utf16be, utf16 and wide must come before base64/base64offset (the "
		       "value is encoded to UTF-16 first, then to Base64)";
	if ((m & M_B64) && (m & M_WINDASH))
		return "'windash' with 'base64'/'base64offset' is not supported";
	if ((m & M_EXPAND) && (m & (M_RE | M_CIDR | M_NUM | M_FIELDREF)))
		return "'expand' works on text matching: not with re, cidr, gt/gte/lt/lte or "
		       "fieldref";
	if ((m & M_FIELDREF) && (m & ~(M_FIELDREF | M_ALL | M_CASED)))
		return "'fieldref' can only be combined with 'all' and 'cased' (it compares two "
		       "whole values)";
	return NULL;
}

static int parse_key(struct ctx *c, const struct node *key, const char *ident,
		     struct field_spec *fs)
{
	const char *s = key->s;
	size_t n = key->len, flen = 0;
	bool utf_after_b64 = false;

	qs(fs->qname, sizeof(fs->qname), key);
	while (flen < n && s[flen] != '|')
		flen++;
	for (size_t i = 0; i < flen; i++)
		if (!field_char_ok(s[i]))
			return fail(c, -EBADMSG,
				    "field name '%s' in '%s' has a character other than "
				    "printable ASCII",
				    fs->qname, ident);
	if (flen > RF_NAME_MAX)
		return fail(c, -E2BIG, "field name longer than %u bytes in '%s'", RF_NAME_MAX,
			    ident);
	fs->name = NULL;
	if (flen) {
		fs->name = arena_strndup(&c->r->arena, s, flen);
		if (!fs->name)
			return oom(c);
	}
	fs->mods = 0;
	for (size_t i = flen; i < n;) {
		size_t j = ++i;
		unsigned bit = 0;
		char qm[48];

		while (j < n && s[j] != '|')
			j++;
		const char *mname = s + i;
		size_t mlen = j - i;
		for (size_t k = 0; k < sizeof(known_mods) / sizeof(known_mods[0]); k++)
			if (strlen(known_mods[k].name) == mlen &&
			    !memcmp(known_mods[k].name, mname, mlen))
				bit = known_mods[k].bit;
		rf_diag_quote(qm, sizeof(qm), mname, mlen);
		if (!bit) {
			for (size_t k = 0; k < sizeof(unsupported_mods) / sizeof(unsupported_mods[0]);
			     k++)
				if (strlen(unsupported_mods[k].name) == mlen &&
				    !memcmp(unsupported_mods[k].name, mname, mlen))
					return fail(c, -ENOTSUP,
						    "modifier '%s' is not supported: %s (key '%s' "
						    "in '%s')",
						    qm, unsupported_mods[k].why, fs->qname, ident);
			return fail(c, -ENOTSUP, "unknown modifier '%s' (key '%s' in '%s')", qm,
				    fs->qname, ident);
		}
		if (fs->mods & bit)
			return fail(c, -EBADMSG, "modifier '%s' repeated (key '%s' in '%s')", qm,
				    fs->qname, ident);
		if ((bit & M_POSITION) && (fs->mods & M_POSITION))
			return fail(c, -EBADMSG, "conflicting modifiers (key '%s' in '%s')",
				    fs->qname, ident);
		if ((bit & M_UTF) && (fs->mods & M_B64))
			utf_after_b64 = true;
		fs->mods |= bit;
		i = j;
	}
	const char *why = mods_problem(fs->mods, utf_after_b64);
	if (why)
		return fail(c, -EBADMSG, "%s (key '%s' in '%s')", why, fs->qname, ident);
	if (!fs->name && (fs->mods & ~(M_ALL | M_CASED)))
		return fail(c, -ENOTSUP,
			    "keyword search with modifiers other than all and cased "
			    "(key '%s' in '%s')",
			    fs->qname, ident);
	fs->mtype = 0;
	if (fs->name && c->m) {
		int t = rf_manifest_field_type(c->m, c->event, fs->name);
		if (t < 0) {
			char qa[64], qv[32];
			return fail(c, -ENOENT,
				    "field '%s' is not supplied by %s %s (event %s supplies "
				    "%zu fields)",
				    fs->name,
				    rf_diag_quote(qa, sizeof(qa), rf_manifest_agent(c->m),
						  strlen(rf_manifest_agent(c->m))),
				    rf_diag_quote(qv, sizeof(qv), rf_manifest_version(c->m),
						  strlen(rf_manifest_version(c->m))),
				    c->event, rf_manifest_event_nfields(c->m, c->event));
		}
		fs->mtype = (enum rf_ftype)t;
	}
	return 0;
}

static const char *type_name(enum rf_ftype t)
{
	return t == RF_FT_INT ? "int" : t == RF_FT_IP ? "ip" : "string";
}

/* Canonical decimal text of a plain YAML integer, range-checked to int64. */
static int canon_int(struct ctx *c, const char *s, size_t n, const char *where, const uint8_t **ret,
		     size_t *ret_len)
{
	bool neg = false;
	uint64_t v = 0;
	size_t i = 0;
	char buf[24];
	char q[48];

	if (s[0] == '-' || s[0] == '+')
		neg = s[i++] == '-';
	for (; i < n; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return fail(c, -EINVAL, "integer '%s' out of range (%s)",
				    rf_diag_quote(q, sizeof(q), s, n), where);
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
		return fail(c, -EINVAL, "integer '%s' out of range (%s)",
			    rf_diag_quote(q, sizeof(q), s, n), where);
	if (v == 0)
		neg = false;
	size_t o = sizeof(buf);
	do {
		buf[--o] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		buf[--o] = '-';
	char *out = arena_strndup(&c->r->arena, buf + o, sizeof(buf) - o);
	if (!out)
		return oom(c);
	*ret = (const uint8_t *)out;
	*ret_len = sizeof(buf) - o;
	return 0;
}

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

/* Emit the OR of every windash variant of p[0..n) (pySigma: each '-' or '/' that starts a word,
 * i.e. follows a non-word byte or the start and precedes a word byte, becomes each of the five
 * dashes, every combination). */
static int emit_windash(struct ctx *c, struct vec *v, const struct field_spec *fs,
			enum rf_atom_op op, uint32_t flags, const uint8_t *p, size_t n,
			const char *where)
{
	size_t pos[RF_SIGMA_WINDASH_MAX], k = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] != '-' && p[i] != '/')
			continue;
		if ((i > 0 && word_byte(p[i - 1])) || i + 1 >= n || !word_byte(p[i + 1]))
			continue;
		if (k == RF_SIGMA_WINDASH_MAX)
			return fail(c, -E2BIG,
				    "windash value with more than %u dashes to vary (%u^%u "
				    "variants; %s)",
				    RF_SIGMA_WINDASH_MAX, WINDASH_N, RF_SIGMA_WINDASH_MAX + 1, where);
		pos[k++] = i;
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
				next++;
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
		if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '*' || s[i + 1] == '?' || s[i + 1] == '\\'))
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
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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
static int emit_base64(struct ctx *c, struct vec *v, const struct field_spec *fs,
		       enum rf_atom_op op, uint32_t flags, const struct node *val, const char *where)
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
static int check_regex(struct ctx *c, const struct node *val, uint32_t flags, const char *where)
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
		int r = fail(c, -EBADMSG, "regular expression '%s' is refused by Vectorscan: %s (%s)",
			     qs(qv, sizeof(qv), val), err ? err->message : "?", where);
		hs_free_compile_error(err);
		return r;
	}
	hs_free_database(db);
	return 0;
}

static int emit_value(struct ctx *c, struct vec *v, const struct field_spec *fs,
		      const struct node *val, const char *ident);

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

/*
 * `field|expand: '...%name%...'`: each %name% is replaced by each value the placeholders give
 * it (the product over the placeholders in the value, at most RF_SIGMA_EXPAND_MAX variants),
 * and the variants are matched with the key's other modifiers, OR'd. A '%' that does not start
 * a %name% (letters, digits, '_', '-', '.') is itself.
 */
static int emit_expand(struct ctx *c, struct vec *v, const struct field_spec *fs,
		       const struct node *val, const char *ident, const char *where)
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
			memcpy(out + o, val->s + from, at[q] - from);
			o += at[q] - from;
			memcpy(out + o, use[q]->vals[pick], use[q]->lens[pick]);
			o += use[q]->lens[pick];
			from = end[q];
		}
		memcpy(out + o, val->s + from, val->len - from);
		o += val->len - from;
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

/* `A|fieldref: B`: true when the event's fields A and B are both present with equal values
 * (case-insensitive unless `cased`). B must be a field of the same event, and both strings. */
static int emit_fieldref(struct ctx *c, struct vec *v, const struct field_spec *fs,
			 const struct node *val, const char *where)
{
	char qv[64];

	if (val->sk != S_STR || val->len == 0 || val->len > RF_NAME_MAX)
		return fail(c, -EBADMSG, "fieldref value '%s' is not a field name (%s)",
			    qs(qv, sizeof(qv), val), where);
	for (size_t i = 0; i < val->len; i++)
		if (!field_char_ok(val->s[i]) || val->s[i] == '"' || val->s[i] == '\\')
			return fail(c, -EBADMSG,
				    "fieldref value '%s' is not a field name (printable ASCII; %s)",
				    qs(qv, sizeof(qv), val), where);
	if (fs->mtype && fs->mtype != RF_FT_STRING)
		return fail(c, -EINVAL, "fieldref on %s field '%s' (only string fields; %s)",
			    type_name(fs->mtype), fs->name, where);
	if (c->m) {
		int t = rf_manifest_field_type(c->m, c->event, val->s);
		char qa[64], qver[32];
		if (t < 0)
			return fail(c, -ENOENT,
				    "field '%s' (referenced by fieldref) is not supplied by %s %s "
				    "(event %s supplies %zu fields; %s)",
				    qs(qv, sizeof(qv), val),
				    rf_diag_quote(qa, sizeof(qa), rf_manifest_agent(c->m),
						  strlen(rf_manifest_agent(c->m))),
				    rf_diag_quote(qver, sizeof(qver), rf_manifest_version(c->m),
						  strlen(rf_manifest_version(c->m))),
				    c->event, rf_manifest_event_nfields(c->m, c->event), where);
		if (t != RF_FT_STRING)
			return fail(c, -EINVAL,
				    "fieldref to %s field '%s' (only string fields; %s)",
				    type_name((enum rf_ftype)t), qs(qv, sizeof(qv), val), where);
	}
	return emit_atom(c, v, fs->name, RF_FT_STRING, RF_OP_FIELDREF,
			 (fs->mods & M_CASED) ? RF_ATOM_CASED : 0, (const uint8_t *)val->s,
			 val->len);
}

/* One value of a field (or keyword) entry: push its atom(s). */
static int emit_value(struct ctx *c, struct vec *v, const struct field_spec *fs,
		      const struct node *val, const char *ident)
{
	char where[224], qv[64];
	enum rf_atom_op op = RF_OP_EQ;
	uint32_t flags = (fs->mods & M_CASED) ? RF_ATOM_CASED : 0;
	const uint8_t *pat;
	size_t plen;
	unsigned m = fs->mods;

	snprintf(where, sizeof(where), "key '%s' in '%s'", fs->qname, ident);
	if (val->kind != N_SCALAR)
		return fail(c, -EBADMSG, "value at line %u is not a scalar (%s)", val->line, where);
	if (m & M_CONTAINS)
		op = RF_OP_CONTAINS;
	else if (m & M_STARTSWITH)
		op = RF_OP_STARTSWITH;
	else if (m & M_ENDSWITH)
		op = RF_OP_ENDSWITH;

	switch (val->sk) {
	case S_BOOL:
		/* pySigma reads an unquoted true/false as a boolean; on a text field it matches the
		 * text the event carries ("true"/"false", any case, as Sysmon writes Initiated). */
		if (!fs->name)
			return fail(c, -EBADMSG,
				    "boolean keyword '%s' (quote it to search it as text; %s)",
				    qs(qv, sizeof(qv), val), where);
		if (m & ~(M_ALL))
			return fail(c, -EBADMSG,
				    "boolean value '%s' with a modifier (quote it to match it as "
				    "text; %s)",
				    qs(qv, sizeof(qv), val), where);
		if (fs->mtype && fs->mtype != RF_FT_STRING)
			return fail(c, -EINVAL, "boolean value on %s field '%s' (%s)",
				    type_name(fs->mtype), fs->name, where);
		pat = (const uint8_t *)(val->bval ? "true" : "false");
		return emit_atom(c, v, fs->name, RF_FT_STRING, RF_OP_EQ, 0, pat,
				 val->bval ? 4 : 5);
	case S_NUMX:
		return fail(c, -ENOTSUP,
			    "number '%s' is not a plain decimal integer (quote it to "
			    "match it as text; %s)",
			    qs(qv, sizeof(qv), val), where);
	case S_NULL:
		if (!fs->name)
			return fail(c, -EBADMSG, "null keyword (%s)", where);
		if (m & ~M_ALL)
			return fail(c, -EBADMSG, "null value with a modifier (%s)", where);
		if (fs->mtype && fs->mtype != RF_FT_STRING)
			return fail(c, -EINVAL,
				    "null test on %s field '%s' (only string fields can "
				    "be null; %s)",
				    type_name(fs->mtype), fs->name, where);
		return emit_atom(c, v, fs->name, RF_FT_STRING, RF_OP_NULL, 0, NULL, 0);
	case S_INT:
	case S_STR:
		break;
	}
	if (m & M_EXPAND)
		return emit_expand(c, v, fs, val, ident, where);
	if (m & M_FIELDREF)
		return emit_fieldref(c, v, fs, val, where);
	if (has_nul(val))
		return fail(c, -EBADMSG, "value at line %u holds a NUL byte (%s)", val->line,
			    where);
	if (val->len > RF_SIGMA_PATTERN_MAX)
		return fail(c, -E2BIG, "value at line %u longer than %u bytes (%s)", val->line,
			    RF_SIGMA_PATTERN_MAX, where);
	pat = (const uint8_t *)val->s;
	plen = val->len;

	if (!fs->name)
		return emit_atom(c, v, NULL, RF_FT_STRING, RF_OP_KEYWORD, flags, pat, plen);

	enum rf_ftype t = fs->mtype;
	if (!t) /* no manifest: cidr means an address, gt.. and a YAML integer a number (pySigma) */
		t = (m & M_CIDR) ? RF_FT_IP
		    : (m & M_NUM) || (val->sk == S_INT && !(m & ~M_ALL)) ? RF_FT_INT
									  : RF_FT_STRING;
	if ((m & M_CIDR) && t == RF_FT_INT)
		return fail(c, -EINVAL,
			    "'cidr' on int field '%s' (cidr needs an ip or string field; %s)",
			    fs->name, where);
	if ((m & M_CIDR) && t == RF_FT_STRING) {
		/* A text field holding an address (Windows' IpAddress: "-" when there is none): the
		 * engine parses the value, and a value that is not an address does not match. */
		unsigned char addr[16];
		unsigned bits;
		if (!rf__pack_parse_cidr(val->s, val->len, addr, &bits))
			return fail(c, -EINVAL,
				    "value '%s' is not an IPv4/IPv6 CIDR prefix such as 10.0.0.0/8 "
				    "(%s)",
				    qs(qv, sizeof(qv), val), where);
		return emit_atom(c, v, fs->name, RF_FT_STRING, RF_OP_CIDR, 0, pat, plen);
	}
	if ((m & M_NUM) && t != RF_FT_INT)
		return fail(c, -EINVAL,
			    "gt/gte/lt/lte on %s field '%s' (they need an int field; %s)",
			    type_name(t), fs->name, where);
	switch (t) {
	case RF_FT_INT: {
		if (m & ~(M_NUM | M_ALL))
			return fail(c, -EINVAL,
				    "modifier on int field '%s' (only numbers and gt, gte, lt, "
				    "lte; %s)",
				    fs->name, where);
		if (!is_plain_decimal(val->s, val->len) || ((m & M_NUM) && val->sk != S_INT))
			return fail(c, -EINVAL,
				    "value '%s' is not an integer but field '%s' is int (%s)",
				    qs(qv, sizeof(qv), val), fs->name, where);
		int r = canon_int(c, val->s, val->len, where, &pat, &plen);
		if (r < 0)
			return r;
		op = (m & M_GT)	   ? RF_OP_GT
		     : (m & M_GTE) ? RF_OP_GTE
		     : (m & M_LT)  ? RF_OP_LT
		     : (m & M_LTE) ? RF_OP_LTE
				   : RF_OP_EQ;
		return emit_atom(c, v, fs->name, RF_FT_INT, op, 0, pat, plen);
	}
	case RF_FT_IP: {
		unsigned char addr[16];
		unsigned bits;
		if (m & M_CIDR) {
			if (!rf__pack_parse_cidr(val->s, val->len, addr, &bits))
				return fail(c, -EINVAL,
					    "value '%s' is not an IPv4/IPv6 CIDR prefix such as "
					    "10.0.0.0/8 (%s)",
					    qs(qv, sizeof(qv), val), where);
			return emit_atom(c, v, fs->name, RF_FT_IP, RF_OP_CIDR, 0, pat, plen);
		}
		if (m & ~M_ALL)
			return fail(c, -EINVAL,
				    "modifier on ip field '%s' (only exact addresses and cidr; %s)",
				    fs->name, where);
		if (inet_pton(AF_INET, val->s, addr) != 1 && inet_pton(AF_INET6, val->s, addr) != 1)
			return fail(c, -EINVAL,
				    "value '%s' is not an IP address but field '%s' is ip "
				    "(%s)",
				    qs(qv, sizeof(qv), val), fs->name, where);
		return emit_atom(c, v, fs->name, RF_FT_IP, RF_OP_EQ, 0, pat, plen);
	}
	default:
		if (m & M_RE) {
			flags = ((m & M_RE_I) ? 0 : RF_ATOM_CASED) |
				((m & M_RE_M) ? RF_ATOM_MULTILINE : 0) |
				((m & M_RE_S) ? RF_ATOM_DOTALL : 0);
			int r = check_regex(c, val, flags, where);
			if (r < 0)
				return r;
			return emit_atom(c, v, fs->name, RF_FT_STRING, RF_OP_REGEX, flags, pat,
					 plen);
		}
		if (m & M_B64)
			return emit_base64(c, v, fs, op, flags, val, where);
		if (m & M_WINDASH)
			return emit_windash(c, v, fs, op, flags, pat, plen, where);
		return emit_atom(c, v, fs->name, RF_FT_STRING, op, flags, pat, plen);
	}
}

/* One `key: value(s)` entry of a search map. */
static int emit_entry(struct ctx *c, struct vec *v, const struct node *key, const struct node *val,
		      const char *ident)
{
	struct field_spec fs;
	int r = parse_key(c, key, ident, &fs);

	if (r < 0)
		return r;
	if (fs.mods & M_EXISTS) {
		if (val->kind != N_SCALAR || val->sk != S_BOOL)
			return fail(c, -EBADMSG, "'exists' needs true or false (key '%s' in '%s')",
				    fs.qname, ident);
		if (fs.mtype && fs.mtype != RF_FT_STRING)
			return fail(c, -EINVAL, "'exists' on %s field '%s' (key '%s' in '%s')",
				    type_name(fs.mtype), fs.name, fs.qname, ident);
		r = emit_atom(c, v, fs.name, RF_FT_STRING, RF_OP_EXISTS, 0, NULL, 0);
		if (r >= 0 && !val->bval)
			r = vec_push(c, v, RF_INSN(RF_I_NOT, 0));
		return r;
	}
	if (val->kind == N_MAP)
		return fail(c, -EBADMSG, "value of '%s' in '%s' is a mapping", fs.qname, ident);
	if (val->kind == N_SCALAR)
		return emit_value(c, v, &fs, val, ident);
	if (val->nkids == 0)
		return fail(c, -EBADMSG, "empty value list (key '%s' in '%s')", fs.qname, ident);
	for (size_t i = 0; i < val->nkids; i++) {
		r = emit_value(c, v, &fs, val->kids[i], ident);
		if (r >= 0)
			r = join(c, v, i, (fs.mods & M_ALL) ? RF_I_AND : RF_I_OR);
		if (r < 0)
			return r;
	}
	return 0;
}

static int emit_map(struct ctx *c, struct vec *v, const struct node *m, const char *ident)
{
	int r = check_map(c, m, ident);

	if (r < 0)
		return r;
	if (m->nkids == 0)
		return fail(c, -EBADMSG, "search identifier '%s' has an empty mapping", ident);
	for (size_t i = 0; i + 1 < m->nkids; i += 2) {
		r = emit_entry(c, v, m->kids[i], m->kids[i + 1], ident);
		if (r >= 0)
			r = join(c, v, i / 2, RF_I_AND);
		if (r < 0)
			return r;
	}
	return 0;
}

static int compile_ident(struct ctx *c, struct ident *id, const struct node *val)
{
	char ident[64];
	struct vec *v = &id->code;
	int r;

	qs(ident, sizeof(ident), id->name);
	if (val->kind == N_MAP)
		return emit_map(c, v, val, ident);
	if (val->kind == N_SCALAR) { /* a single keyword */
		struct field_spec fs = {.name = NULL};
		snprintf(fs.qname, sizeof(fs.qname), "%s", "(keywords)");
		return emit_value(c, v, &fs, val, ident);
	}
	if (val->nkids == 0)
		return fail(c, -EBADMSG, "search identifier '%s' is an empty list", ident);
	bool maps = val->kids[0]->kind == N_MAP;
	for (size_t i = 0; i < val->nkids; i++) {
		const struct node *it = val->kids[i];

		if ((it->kind == N_MAP) != maps || it->kind == N_SEQ)
			return fail(c, -EBADMSG,
				    "search identifier '%s' mixes lists, mappings and "
				    "values (line %u)",
				    ident, it->line);
		if (maps) {
			r = emit_map(c, v, it, ident);
		} else {
			struct field_spec fs = {.name = NULL};
			snprintf(fs.qname, sizeof(fs.qname), "%s", "(keywords)");
			r = emit_value(c, v, &fs, it, ident);
		}
		if (r >= 0)
			r = join(c, v, i, RF_I_OR);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- condition ---------------------------------------------------------------------------- */

enum tok { T_END, T_LP, T_RP, T_PIPE, T_WORD };

struct cond {
	const char *s;
	size_t n, pos; /* pos: start of the next token */
	enum tok t;    /* current token */
	size_t ts, tn; /* its bytes */
	char qcond[128];
};

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Scan the token at *pos (without consuming the current one). */
static enum tok scan(const struct cond *k, size_t *pos, size_t *ts, size_t *tn)
{
	size_t i = *pos;

	while (i < k->n && is_space(k->s[i]))
		i++;
	*ts = i;
	*tn = 0;
	if (i == k->n) {
		*pos = i;
		return T_END;
	}
	char ch = k->s[i];
	if (ch == '(' || ch == ')' || ch == '|') {
		*tn = 1;
		*pos = i + 1;
		return ch == '(' ? T_LP : ch == ')' ? T_RP : T_PIPE;
	}
	while (i < k->n && !is_space(k->s[i]) && k->s[i] != '(' && k->s[i] != ')' && k->s[i] != '|')
		i++;
	*tn = i - *ts;
	*pos = i;
	return T_WORD;
}

static void advance(struct cond *k)
{
	k->t = scan(k, &k->pos, &k->ts, &k->tn);
}

/* Case-insensitive (ASCII) keyword test on the current token. */
static bool word_is(const struct cond *k, size_t ts, size_t tn, const char *w)
{
	if (tn != strlen(w))
		return false;
	for (size_t i = 0; i < tn; i++) {
		char ch = k->s[ts + i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (ch != w[i])
			return false;
	}
	return true;
}

static bool is_reserved(const struct cond *k)
{
	return k->t == T_WORD &&
	       (word_is(k, k->ts, k->tn, "and") || word_is(k, k->ts, k->tn, "or") ||
		word_is(k, k->ts, k->tn, "not") || word_is(k, k->ts, k->tn, "of"));
}

static int cond_err(struct ctx *c, struct cond *k, const char *expected)
{
	char got[48];

	if (k->t == T_END)
		snprintf(got, sizeof(got), "%s", "end of condition");
	else
		rf_diag_quote(got, sizeof(got), k->s + k->ts, k->tn);
	return fail(c, -EBADMSG, "condition '%s': expected %s at offset %zu, got '%s'", k->qcond,
		    expected, k->ts, got);
}

/* '*' wildcards, no escapes (the spec's identifier patterns). Greedy with one backtrack point:
 * O(|p| * |s|) per call, so every step is charged to a budget for the whole rule (a condition of
 * many long patterns against many identifiers must not take quadratic-times-quadratic time).
 * 1 match, 0 no match, -E2BIG over the budget. */
static int ident_match(struct ctx *c, const char *p, size_t pn, const char *s, size_t sn)
{
	size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;

	while (si < sn) {
		if (++c->match_steps > RF_SIGMA_MATCH_STEPS_MAX)
			return fail(c, -E2BIG,
				    "condition patterns need more than %u matching steps",
				    RF_SIGMA_MATCH_STEPS_MAX);
		if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (pi < pn && p[pi] == s[si]) {
			pi++;
			si++;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			si = ++mark;
		} else {
			return 0;
		}
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

static int parse_or(struct ctx *c, struct cond *k, struct vec *v);

/* '1 of X' / 'all of X' / 'N of X' where the quantifier is the current token. */
static int parse_quantified(struct ctx *c, struct cond *k, struct vec *v)
{
	bool all = word_is(k, k->ts, k->tn, "all");
	char q[48];

	if (!all && !(k->tn == 1 && k->s[k->ts] == '1'))
		return fail(c, -ENOTSUP,
			    "condition '%s': '%s of' is not supported (only '1 of' and "
			    "'all of')",
			    k->qcond, rf_diag_quote(q, sizeof(q), k->s + k->ts, k->tn));
	advance(k); /* quantifier */
	advance(k); /* of */
	if (k->t != T_WORD || is_reserved(k))
		return cond_err(c, k, "a search identifier pattern or 'them'");
	if (k->tn > RF_NAME_MAX)
		return fail(c, -E2BIG, "condition '%s': pattern longer than %u bytes", k->qcond,
			    RF_NAME_MAX);
	bool them = word_is(k, k->ts, k->tn, "them");
	size_t matched = 0;
	for (size_t i = 0; i < c->nids; i++) {
		const struct node *nm = c->ids[i].name;
		int r = them ? !(nm->len && nm->s[0] == '_')
			     : ident_match(c, k->s + k->ts, k->tn, nm->s, nm->len);
		if (r < 0)
			return r;
		if (!r)
			continue;
		r = vec_append(c, v, &c->ids[i].code);
		if (r >= 0)
			r = join(c, v, matched, all ? RF_I_AND : RF_I_OR);
		if (r < 0)
			return r;
		matched++;
	}
	if (!matched)
		return fail(c, -EBADMSG, "condition '%s': '%s' matches no search identifier",
			    k->qcond, rf_diag_quote(q, sizeof(q), k->s + k->ts, k->tn));
	advance(k);
	return 0;
}

static int parse_primary(struct ctx *c, struct cond *k, struct vec *v)
{
	int r;

	if (k->t == T_PIPE)
		return fail(c, -ENOTSUP, "condition '%s': aggregation ('|') is not supported",
			    k->qcond);
	if (k->t == T_LP) {
		if (++c->cond_depth > RF_SIGMA_COND_DEPTH_MAX)
			return fail(c, -E2BIG, "condition '%s' nested deeper than %u", k->qcond,
				    RF_SIGMA_COND_DEPTH_MAX);
		advance(k);
		r = parse_or(c, k, v);
		if (r < 0)
			return r;
		if (k->t != T_RP)
			return cond_err(c, k, "')'");
		advance(k);
		c->cond_depth--;
		return 0;
	}
	if (k->t != T_WORD || is_reserved(k))
		return cond_err(c, k, "a search identifier, '(' or 'not'");
	/* Look one token ahead for "X of". */
	size_t pos = k->pos, ts, tn;
	if (scan(k, &pos, &ts, &tn) == T_WORD && word_is(k, ts, tn, "of")) {
		bool number = true;
		for (size_t i = 0; i < k->tn; i++)
			number = number && is_digit(k->s[k->ts + i]);
		if (number || word_is(k, k->ts, k->tn, "all"))
			return parse_quantified(c, k, v);
	}
	for (size_t i = 0; i < c->nids; i++) {
		const struct node *nm = c->ids[i].name;
		if (nm->len == k->tn && !memcmp(nm->s, k->s + k->ts, k->tn)) {
			advance(k);
			return vec_append(c, v, &c->ids[i].code);
		}
	}
	char q[64];
	return fail(c, -EBADMSG, "condition '%s' names unknown search identifier '%s'", k->qcond,
		    rf_diag_quote(q, sizeof(q), k->s + k->ts, k->tn));
}

static int parse_not(struct ctx *c, struct cond *k, struct vec *v)
{
	if (k->t == T_WORD && word_is(k, k->ts, k->tn, "not")) {
		if (++c->cond_depth > RF_SIGMA_COND_DEPTH_MAX)
			return fail(c, -E2BIG, "condition '%s' nested deeper than %u", k->qcond,
				    RF_SIGMA_COND_DEPTH_MAX);
		advance(k);
		int r = parse_not(c, k, v);
		if (r < 0)
			return r;
		c->cond_depth--;
		return vec_push(c, v, RF_INSN(RF_I_NOT, 0));
	}
	return parse_primary(c, k, v);
}

static int parse_and(struct ctx *c, struct cond *k, struct vec *v)
{
	int r = parse_not(c, k, v);

	while (r >= 0 && k->t == T_WORD && word_is(k, k->ts, k->tn, "and")) {
		advance(k);
		r = parse_not(c, k, v);
		if (r >= 0)
			r = vec_push(c, v, RF_INSN(RF_I_AND, 0));
	}
	return r;
}

static int parse_or(struct ctx *c, struct cond *k, struct vec *v)
{
	int r = parse_and(c, k, v);

	while (r >= 0 && k->t == T_WORD && word_is(k, k->ts, k->tn, "or")) {
		advance(k);
		r = parse_and(c, k, v);
		if (r >= 0)
			r = vec_push(c, v, RF_INSN(RF_I_OR, 0));
	}
	return r;
}

static int compile_condition(struct ctx *c, const struct node *cn, struct vec *v)
{
	struct cond k = {.s = cn->s, .n = cn->len};
	int r;

	qs(k.qcond, sizeof(k.qcond), cn);
	if (cn->kind != N_SCALAR || cn->sk != S_STR)
		return fail(c, -EBADMSG, "condition at line %u is not a string", cn->line);
	if (has_nul(cn))
		return fail(c, -EBADMSG, "condition at line %u holds a NUL byte", cn->line);
	c->cond_depth = 0;
	advance(&k);
	r = parse_or(c, &k, v);
	if (r < 0)
		return r;
	if (k.t == T_PIPE)
		return fail(c, -ENOTSUP, "condition '%s': aggregation ('|') is not supported",
			    k.qcond);
	if (k.t != T_END)
		return cond_err(c, &k, "'and', 'or' or the end");
	return 0;
}

/* ---- the rule ----------------------------------------------------------------------------- */

static const char *const levels[] = {"informational", "low", "medium", "high", "critical", NULL};

/* A text attribute (title, author, level...) as a C string in the arena. */
static int text_attr(struct ctx *c, const struct node *n, const char *what, size_t max,
		     const char **ret)
{
	if (n->kind != N_SCALAR || n->sk == S_NULL)
		return fail(c, -EBADMSG, "'%s' is not a text value (line %u)", what, n->line);
	if (n->len == 0)
		return fail(c, -EBADMSG, "'%s' is empty", what);
	if (n->len > max)
		return fail(c, -E2BIG, "'%s' longer than %zu bytes", what, max);
	if (has_ctl(n->s, n->len))
		return fail(c, -EBADMSG, "'%s' holds a control character (line %u)", what, n->line);
	*ret = n->s; /* already NUL-terminated in the arena */
	return 0;
}

static int rule_author(struct ctx *c, const struct node *a, const char **ret)
{
	if (!a || (a->kind == N_SCALAR && a->sk == S_NULL)) {
		*ret = "";
		return 0;
	}
	if (a->kind == N_SCALAR)
		return text_attr(c, a, "author", RF_PACK_STRING_MAX, ret);
	if (a->kind != N_SEQ || a->nkids == 0)
		return fail(c, -EBADMSG, "'author' is not text or a list of names");
	size_t total = 0;
	for (size_t i = 0; i < a->nkids; i++) {
		const char *s;
		int r = text_attr(c, a->kids[i], "author", RF_PACK_STRING_MAX, &s);
		if (r < 0)
			return r;
		total +=
		    a->kids[i]->len + 2; /* bounded: each <= RF_PACK_STRING_MAX, nodes bounded */
	}
	if (total - 2 > RF_PACK_STRING_MAX)
		return fail(c, -E2BIG, "'author' longer than %u bytes", RF_PACK_STRING_MAX);
	char *out = arena_alloc(&c->r->arena, total);
	if (!out)
		return oom(c);
	size_t o = 0;
	for (size_t i = 0; i < a->nkids; i++) {
		if (i) {
			memcpy(out + o, ", ", 2);
			o += 2;
		}
		memcpy(out + o, a->kids[i]->s, a->kids[i]->len);
		o += a->kids[i]->len;
	}
	out[o] = '\0';
	*ret = out;
	return 0;
}

static bool event_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || is_digit(ch) || ch == '_' || ch == '-' || ch == '.';
}

/* One logsource key: absent (NULL), or a short lower-case name. */
static int logsource_key(struct ctx *c, const struct node *ls, const char *key,
			 const struct node **ret)
{
	const struct node *n = map_get(ls, key);

	*ret = NULL;
	if (!n || (n->kind == N_SCALAR && n->sk == S_NULL))
		return 0;
	if (n->kind != N_SCALAR || n->len == 0 || n->len > (RF_NAME_MAX - 1) / 2)
		return fail(c, -EBADMSG, "logsource %s is not a short text value", key);
	for (size_t i = 0; i < n->len; i++)
		if (!event_char_ok(n->s[i])) {
			char q[64];
			return fail(c, -EBADMSG, "logsource %s '%s' is not lower-case [a-z0-9_.-]",
				    key, qs(q, sizeof(q), n));
		}
	*ret = n;
	return 0;
}

/*
 * The event type a rule runs on, from its logsource (docs/sigma.md "Event sources"): the
 * category when there is one (process_creation), else "<product>_<service>" (windows_security),
 * or the service alone when no product is named. A product alone names no event type (the rule
 * would have to run on every one) and is refused, as is a category together with a service (the
 * rule would need both). With a manifest naming a product, a rule for another product is refused
 * naming it, and so is an event type the manifest lacks.
 */
static int rule_logsource(struct ctx *c, const struct node *ls)
{
	const struct node *cat, *svc, *prod;
	char qa[64], qv[32], qp[64], qs2[64];
	int r;

	if (!ls || ls->kind != N_MAP)
		return fail(c, -EBADMSG, "missing required 'logsource' mapping");
	r = check_map(c, ls, "logsource");
	if (r >= 0)
		r = logsource_key(c, ls, "category", &cat);
	if (r >= 0)
		r = logsource_key(c, ls, "service", &svc);
	if (r >= 0)
		r = logsource_key(c, ls, "product", &prod);
	if (r < 0)
		return r;
	if (c->m) {
		const char *agent = rf_manifest_agent(c->m), *ver = rf_manifest_version(c->m);
		const char *mp = rf_manifest_product(c->m);
		rf_diag_quote(qa, sizeof(qa), agent, strlen(agent));
		rf_diag_quote(qv, sizeof(qv), ver, strlen(ver));
		if (prod && mp && (strlen(mp) != prod->len || memcmp(mp, prod->s, prod->len)))
			return fail(c, -ENOENT,
				    "logsource product '%s' is not supplied by %s %s (it supplies "
				    "product '%s')",
				    qs(qp, sizeof(qp), prod), qa, qv,
				    rf_diag_quote(qs2, sizeof(qs2), mp, strlen(mp)));
	}
	if (cat && svc)
		return fail(c, -ENOTSUP,
			    "logsource has both category '%s' and service '%s' (one event type "
			    "per rule)",
			    qs(qp, sizeof(qp), cat), qs(qs2, sizeof(qs2), svc));
	if (cat) {
		c->event = cat->s;
	} else if (svc && prod) {
		char *ev = arena_alloc(&c->r->arena, prod->len + svc->len + 2);
		if (!ev)
			return oom(c);
		memcpy(ev, prod->s, prod->len);
		ev[prod->len] = '_';
		memcpy(ev + prod->len + 1, svc->s, svc->len);
		ev[prod->len + 1 + svc->len] = '\0';
		c->event = ev;
	} else if (svc) {
		c->event = svc->s;
	} else if (prod) {
		return fail(c, -ENOTSUP,
			    "logsource names only product '%s' (a rule needs a category or a "
			    "service: one event type)",
			    qs(qp, sizeof(qp), prod));
	} else {
		return fail(c, -EBADMSG, "logsource has no category, service or product");
	}
	c->r->ir.event = c->event;
	if (c->m && !rf_manifest_has_event(c->m, c->event)) {
		if (svc)
			return fail(c, -ENOENT,
				    "logsource service '%s' (event '%s') is not supplied by %s %s",
				    qs(qs2, sizeof(qs2), svc), c->event, qa, qv);
		return fail(c, -ENOENT, "event '%s' is not supplied by %s %s", c->event, qa, qv);
	}
	return 0;
}

static int rule_header(struct ctx *c, const struct node *root)
{
	struct rf_ir_rule *ir = &c->r->ir;
	const struct node *id = map_get(root, "id"), *title = map_get(root, "title");
	const struct node *n;
	int r;

	/* Name the rule in messages as early as possible, even when its header is wrong. */
	if (id && id->kind == N_SCALAR && id->len)
		qs(c->qid, sizeof(c->qid), id);
	if (title && title->kind == N_SCALAR && title->len)
		qs(c->qtitle, sizeof(c->qtitle), title);
	r = check_map(c, root, "rule");
	if (r < 0)
		return r;
	if (!id)
		return fail(c, -EBADMSG, "missing required 'id'");
	if (!title)
		return fail(c, -EBADMSG, "missing required 'title'");
	r = text_attr(c, id, "id", RF_NAME_MAX, &ir->id);
	if (r < 0)
		return r;
	for (size_t i = 0; i < id->len; i++)
		if (id->s[i] == ' ' || (unsigned char)id->s[i] > 0x7e)
			return fail(c, -EBADMSG, "'id' is not printable ASCII without spaces");
	r = text_attr(c, title, "title", RF_PACK_STRING_MAX, &ir->title);
	if (r < 0)
		return r;
	if (map_get(root, "correlation"))
		return fail(c, -ENOTSUP, "correlation rules are not supported");
	if (map_get(root, "filter"))
		return fail(c, -ENOTSUP, "Sigma filters (meta rules) are not supported");
	if (map_get(root, "action"))
		return fail(c, -ENOTSUP, "rule collections ('action') are not supported");
	r = rule_author(c, map_get(root, "author"), &ir->author);
	if (r < 0)
		return r;
	ir->level = "";
	if ((n = map_get(root, "level")) && !(n->kind == N_SCALAR && n->sk == S_NULL)) {
		char q[48];
		if (n->kind != N_SCALAR || !eq_any(n->s, n->len, levels))
			return fail(c, -EBADMSG,
				    "level '%s' is not informational, low, medium, high "
				    "or critical",
				    n->kind == N_SCALAR ? qs(q, sizeof(q), n) : "?");
		ir->level = n->s;
	}

	return rule_logsource(c, map_get(root, "logsource"));
}

/* The evaluation stack the program needs (and a check that it leaves exactly one bit). */
static int check_stack(struct ctx *c, const struct vec *v)
{
	size_t depth = 0, max = 0;

	for (size_t i = 0; i < v->n; i++) {
		switch (RF_INSN_OP(v->v[i])) {
		case RF_I_ATOM:
		case RF_I_TRUE:
		case RF_I_FALSE:
			depth++;
			break;
		case RF_I_NOT:
			break;
		default:
			depth--; /* AND/OR: the generator never emits one without two operands */
			break;
		}
		if (depth > max)
			max = depth;
	}
	if (depth != 1)
		return fail(c, -EBADMSG, "internal error: program leaves %zu results", depth);
	if (max > RF_RULE_STACK_MAX)
		return fail(c, -E2BIG, "condition needs an evaluation stack of %zu (limit %u)", max,
			    RF_RULE_STACK_MAX);
	return 0;
}

static int compile_rule(struct ctx *c, const struct node *root)
{
	const struct node *det, *cond;
	int r = rule_header(c, root);

	if (r < 0)
		return r;
	det = map_get(root, "detection");
	if (!det || det->kind != N_MAP)
		return fail(c, -EBADMSG, "missing required 'detection' mapping");
	r = check_map(c, det, "detection");
	if (r < 0)
		return r;
	cond = map_get(det, "condition");
	if (!cond)
		return fail(c, -EBADMSG, "detection has no 'condition'");
	if (map_get(det, "timeframe"))
		return fail(c, -ENOTSUP, "'timeframe' (aggregation) is not supported");

	c->ids = calloc(det->nkids / 2 + 1, sizeof(*c->ids));
	if (!c->ids)
		return oom(c);
	for (size_t i = 0; i + 1 < det->nkids; i += 2) {
		if (det->kids[i] == cond || scalar_is(det->kids[i], "condition"))
			continue;
		if (det->kids[i]->len > RF_NAME_MAX) {
			char q[64];
			return fail(c, -E2BIG, "search identifier '%s' longer than %u bytes",
				    qs(q, sizeof(q), det->kids[i]), RF_NAME_MAX);
		}
		struct ident *id = &c->ids[c->nids++];
		id->name = det->kids[i];
		r = compile_ident(c, id, det->kids[i + 1]);
		if (r < 0)
			return r;
	}
	if (c->nids == 0)
		return fail(c, -EBADMSG, "detection has no search identifier");

	struct vec *v = &c->r->code;
	if (cond->kind == N_SEQ) {
		if (cond->nkids == 0)
			return fail(c, -EBADMSG, "empty condition list");
		for (size_t i = 0; i < cond->nkids; i++) {
			r = compile_condition(c, cond->kids[i], v);
			if (r >= 0)
				r = join(c, v, i, RF_I_OR);
			if (r < 0)
				return r;
		}
	} else {
		r = compile_condition(c, cond, v);
		if (r < 0)
			return r;
	}
	return check_stack(c, v);
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

int rf_sigma_compile(const uint8_t *yaml, size_t n, const char *origin, const struct rf_manifest *m,
		     struct rf_sigma_rule **ret, struct rf_diag *reterr)
{
	return rf_sigma_compile_with(yaml, n, origin, m, NULL, ret, reterr);
}

int rf_sigma_compile_with(const uint8_t *yaml, size_t n, const char *origin,
			  const struct rf_manifest *m, const struct rf_sigma_placeholders *ph,
			  struct rf_sigma_rule **ret, struct rf_diag *reterr)
{
	struct ctx c = {.origin = origin, .d = reterr, .m = m, .ph = ph};
	struct node *root = NULL;
	int r;

	if (n > RF_SIGMA_FILE_MAX)
		return fail(&c, -E2BIG, "rule file larger than %u bytes", RF_SIGMA_FILE_MAX);
	c.r = calloc(1, sizeof(*c.r));
	c.atom_hash = calloc(ATOM_HASH_SLOTS, sizeof(*c.atom_hash));
	if (!c.r || !c.atom_hash) {
		r = oom(&c);
		goto out;
	}
	r = yaml_load(&c, yaml, n, &root);
	if (r >= 0)
		r = compile_rule(&c, root);
	if (r >= 0) {
		c.r->ir.atoms = c.r->atoms;
		c.r->ir.n_atoms = c.r->n_atoms;
		c.r->ir.code = c.r->code.v;
		c.r->ir.n_code = c.r->code.n;
		*ret = c.r;
		c.r = NULL;
	}
out:
	for (size_t i = 0; i < c.nids; i++)
		free(c.ids[i].code.v);
	free(c.ids);
	free(c.atom_hash);
	rf_sigma_rule_free(c.r);
	return r;
}

const struct rf_ir_rule *rf_sigma_rule_ir(const struct rf_sigma_rule *r)
{
	return &r->ir;
}

void rf_sigma_rule_free(struct rf_sigma_rule *r)
{
	if (!r)
		return;
	arena_free(&r->arena);
	free(r->atoms);
	free(r->code.v);
	free(r);
}
