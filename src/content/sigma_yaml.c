/*
 * The Sigma compiler's YAML layer (see sigma_int.h for the compiler's files): the arena that owns
 * every string and node of one compile, libyaml's event stream -> our own tree (aliases refused,
 * so the tree is never larger than the text; plain scalars resolved as YAML 1.1 / PyYAML resolves
 * them, since pySigma reads rules through PyYAML), and the helpers that read the tree.
 */
#include <stdalign.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "content/sigma_int.h"

/* ---- arena: every string and tree node of one compile, freed at once ------------------- */

#define ARENA_BLOCK (64u * 1024)

void *arena_alloc(struct arena *a, size_t n)
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
char *arena_strndup(struct arena *a, const void *p, size_t n)
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

void arena_free(struct arena *a)
{
	struct block *b = a->head;

	while (b) {
		struct block *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
}

/* ---- scalar resolution (no locale: attacker bytes) ------------------------------------- */

bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

bool eq_any(const char *s, size_t n, const char *const *words)
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
bool is_plain_decimal(const char *s, size_t n)
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

int yaml_load(struct ctx *c, const uint8_t *p, size_t n, struct node **ret)
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

bool scalar_is(const struct node *n, const char *s)
{
	return n->kind == N_SCALAR && n->len == strlen(s) && !memcmp(n->s, s, n->len);
}

/* Value of key in map m (NULL if absent). Keys are checked for duplicates in check_map. */
const struct node *map_get(const struct node *m, const char *key)
{
	for (size_t i = 0; i + 1 < m->nkids; i += 2)
		if (scalar_is(m->kids[i], key))
			return m->kids[i + 1];
	return NULL;
}

/* Every key a scalar, no key twice (YAML forbids it; PyYAML would keep the last silently). */
int check_map(struct ctx *c, const struct node *m, const char *what)
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
bool has_nul(const struct node *n)
{
	return memchr(n->s, '\0', n->len) != NULL;
}

bool has_ctl(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}
