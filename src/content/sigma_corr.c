/*
 * The Sigma correlation compiler (see sigma_corr.h; docs/sigma.md "Correlation rules").
 *
 * Model. rf_sigma_docs walks a file's YAML events once to find each document's byte range and its
 * top-level 'correlation', 'id' and 'name' keys, so the caller can hand base-rule documents to
 * the rule compiler (sigma.c) unchanged. A correlation document is parsed here into a small tree
 * of its own (scalars, sequences, mappings; aliases and tags refused, nodes and depth bounded)
 * and checked against the specification: title, type, rules, group-by, timespan, condition,
 * aliases, generate, level. References stay names until rf_sigma_corrset_finish resolves them,
 * after every file of the compile is read (a correlation may sit in another file than its
 * rules, or refer to a correlation further down): rules first, then correlations in dependency
 * order, so that each correlation in the pack refers only to rules and earlier correlations.
 *
 * Invariants. Nothing is approximated: an unknown key inside 'correlation', a type outside the
 * four, a timespan unit outside s/m/h/d, a count over the window cap are rejected with a reason.
 * Every size is bounded by limits.h before the work it bounds.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "content/pack.h"
#include "content/sigma_corr.h"
#include "ringfence/limits.h"

/* ---- documents ------------------------------------------------------------------------------- */

static void copy_short(char *dst, const yaml_event_t *ev)
{
	size_t n = ev->data.scalar.length;

	if (n > RF_NAME_MAX || memchr(ev->data.scalar.value, 0, n))
		return;
	memcpy(dst, ev->data.scalar.value, n);
	dst[n] = 0;
}

int rf_sigma_docs(const uint8_t *p, size_t n, const char *origin, struct rf_sigma_doc **ret,
		  size_t *ret_n, struct rf_diag *d)
{
	const char *o = origin ? origin : "<input>";
	struct rf_sigma_doc *docs = NULL, *cur = NULL;
	size_t nd = 0, depth = 0;
	bool want_key = false, done = false;
	char key[16] = "";
	yaml_parser_t ps;
	yaml_event_t ev;
	int r = 0;

	if (n > RF_SIGMA_FILE_MAX)
		return rf_diag_report(d, -E2BIG, "%s: rule file larger than %u bytes", o,
				      RF_SIGMA_FILE_MAX);
	if (!yaml_parser_initialize(&ps))
		return -ENOMEM;
	yaml_parser_set_input_string(&ps, p, n);
	while (!done) {
		if (!yaml_parser_parse(&ps, &ev)) {
			r = ps.error == YAML_MEMORY_ERROR
				? -ENOMEM
				: rf_diag_report(d, -EBADMSG,
						 "%s: not valid YAML: %s at line %zu column %zu", o,
						 ps.problem ? ps.problem : "parse error",
						 (size_t)ps.problem_mark.line + 1,
						 (size_t)ps.problem_mark.column + 1);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (nd == RF_SIGMA_DOCS_MAX) {
				r = rf_diag_report(d, -E2BIG, "%s: more than %u YAML documents", o,
						   RF_SIGMA_DOCS_MAX);
				break;
			}
			cur = realloc(docs, (nd + 1) * sizeof(*docs));
			if (!cur) {
				r = -ENOMEM;
				break;
			}
			docs = cur;
			cur = &docs[nd++];
			memset(cur, 0, sizeof(*cur));
			cur->off = ev.start_mark.index;
			cur->line = (unsigned)ev.start_mark.line + 1;
			depth = 0;
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (cur)
				cur->len = ev.end_mark.index - cur->off;
			break;
		case YAML_ALIAS_EVENT:
			r = rf_diag_report(d, -ENOTSUP,
					   "%s: YAML aliases are not supported (line %zu)", o,
					   (size_t)ev.start_mark.line + 1);
			break;
		case YAML_SCALAR_EVENT:
			if (depth == 1 && cur) {
				if (want_key) {
					size_t kl = ev.data.scalar.length;
					key[0] = 0;
					if (kl < sizeof(key)) {
						memcpy(key, ev.data.scalar.value, kl);
						key[kl] = 0;
					}
					if (!strcmp(key, "correlation"))
						cur->correlation = true;
				} else if (!strcmp(key, "id")) {
					copy_short(cur->id, &ev);
				} else if (!strcmp(key, "name")) {
					copy_short(cur->name, &ev);
				}
				want_key = !want_key;
			}
			break;
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (depth == 1 && !want_key && !strcmp(key, "correlation") && cur)
				cur->correlation = true;
			if (++depth > RF_SIGMA_YAML_DEPTH_MAX) {
				r = rf_diag_report(d, -E2BIG, "%s: YAML nesting deeper than %u", o,
						   RF_SIGMA_YAML_DEPTH_MAX);
				break;
			}
			if (depth == 1)
				want_key = ev.type == YAML_MAPPING_START_EVENT;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			if (--depth == 1)
				want_key = true; /* a nested value of the root mapping ended */
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (r < 0)
			break;
	}
	yaml_parser_delete(&ps);
	if (r < 0) {
		free(docs);
		return r;
	}
	*ret = docs;
	*ret_n = nd;
	return 0;
}

/* ---- a small YAML tree for one correlation document ----------------------------------------- */

enum nkind { N_SCALAR = 1, N_SEQ, N_MAP };

struct node {
	enum nkind kind;
	unsigned line;
	bool plain;
	char *s; /* scalar, NUL-terminated */
	size_t len;
	struct node **kids; /* seq items; map key, value, ... */
	size_t nkids;
};

static void node_free(struct node *nd)
{
	if (!nd)
		return;
	for (size_t i = 0; i < nd->nkids; i++)
		node_free(nd->kids[i]);
	free(nd->kids);
	free(nd->s);
	free(nd);
}

#define CORR_NODES_MAX 4096u /* a correlation document has a few dozen nodes */

static int tree_load(const uint8_t *p, size_t n, const char *o, struct node **ret,
		     struct rf_diag *d)
{
	struct node *st[RF_SIGMA_YAML_DEPTH_MAX + 1], *root = NULL;
	size_t sp = 0, nodes = 0;
	bool done = false;
	yaml_parser_t ps;
	yaml_event_t ev;
	int r = 0;

	if (!yaml_parser_initialize(&ps))
		return -ENOMEM;
	yaml_parser_set_input_string(&ps, p, n);
	while (!done && r == 0) {
		struct node *nd = NULL;
		if (!yaml_parser_parse(&ps, &ev)) {
			r = ps.error == YAML_MEMORY_ERROR
				? -ENOMEM
				: rf_diag_report(d, -EBADMSG, "%s: not valid YAML: %s at line %zu",
						 o, ps.problem ? ps.problem : "parse error",
						 (size_t)ps.problem_mark.line + 1);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			done = true;
			break;
		case YAML_ALIAS_EVENT:
			r = rf_diag_report(d, -ENOTSUP, "%s: YAML aliases are not supported", o);
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++nodes > CORR_NODES_MAX || sp == RF_SIGMA_YAML_DEPTH_MAX) {
				r = rf_diag_report(d, -E2BIG, "%s: correlation document too large",
						   o);
				break;
			}
			nd = calloc(1, sizeof(*nd));
			if (!nd) {
				r = -ENOMEM;
				break;
			}
			nd->line = (unsigned)ev.start_mark.line + 1;
			if (ev.type == YAML_SCALAR_EVENT) {
				nd->kind = N_SCALAR;
				nd->len = ev.data.scalar.length;
				nd->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
				nd->s = malloc(nd->len + 1);
				if (!nd->s) {
					node_free(nd);
					r = -ENOMEM;
					break;
				}
				memcpy(nd->s, ev.data.scalar.value, nd->len);
				nd->s[nd->len] = 0;
			} else {
				nd->kind = ev.type == YAML_SEQUENCE_START_EVENT ? N_SEQ : N_MAP;
			}
			if (sp > 0) {
				struct node *par = st[sp - 1];
				struct node **k = realloc(par->kids, (par->nkids + 1) * sizeof(*k));
				if (!k) {
					node_free(nd);
					r = -ENOMEM;
					break;
				}
				par->kids = k;
				par->kids[par->nkids++] = nd;
			} else if (!root) {
				root = nd;
			} else {
				node_free(nd);
				r = rf_diag_report(d, -EBADMSG, "%s: several roots", o);
				break;
			}
			if (nd->kind != N_SCALAR)
				st[sp++] = nd;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			sp--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&ps);
	if (r == 0 && (!root || root->kind != N_MAP))
		r = rf_diag_report(d, -EBADMSG, "%s: a correlation rule must be a YAML mapping", o);
	if (r < 0) {
		node_free(root);
		return r;
	}
	*ret = root;
	return 0;
}

static const struct node *map_get(const struct node *m, const char *key)
{
	if (!m || m->kind != N_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < m->nkids; i += 2)
		if (m->kids[i]->kind == N_SCALAR && !strcmp(m->kids[i]->s, key))
			return m->kids[i + 1];
	return NULL;
}

/* ---- one correlation ------------------------------------------------------------------------ */

struct alias {
	char *name;
	size_t n;
	char **rule, **field; /* rule name -> field name */
};

struct corr {
	char *origin;
	char *id, *title, *name, *level, *author, *field;
	enum rf_corr_type type;
	uint32_t flags, timespan_s, lo, hi;
	char *refs[RF_CORR_REFS_MAX];
	size_t n_refs;
	char *group[RF_CORR_GROUP_MAX];
	size_t n_group;
	struct alias *aliases;
	size_t n_aliases;
	int state;	/* 0 pending, 1 added, -1 rejected */
	uint32_t index; /* in the pack, when added */
};

struct base {
	char *id, *name, *event;
	uint32_t index; /* UINT32_MAX: rejected */
};

struct rf_sigma_corrset {
	struct corr *c;
	size_t n;
	struct base *b;
	size_t nb;
};

static void corr_clear(struct corr *c)
{
	free(c->origin);
	free(c->id);
	free(c->title);
	free(c->name);
	free(c->level);
	free(c->author);
	free(c->field);
	for (size_t i = 0; i < c->n_refs; i++)
		free(c->refs[i]);
	for (size_t i = 0; i < c->n_group; i++)
		free(c->group[i]);
	for (size_t i = 0; i < c->n_aliases; i++) {
		for (size_t k = 0; k < c->aliases[i].n; k++) {
			free(c->aliases[i].rule[k]);
			free(c->aliases[i].field[k]);
		}
		free(c->aliases[i].rule);
		free(c->aliases[i].field);
		free(c->aliases[i].name);
	}
	free(c->aliases);
}

int rf_sigma_corrset_new(struct rf_sigma_corrset **ret)
{
	struct rf_sigma_corrset *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

void rf_sigma_corrset_free(struct rf_sigma_corrset *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		corr_clear(&s->c[i]);
	for (size_t i = 0; i < s->nb; i++) {
		free(s->b[i].id);
		free(s->b[i].name);
		free(s->b[i].event);
	}
	free(s->c);
	free(s->b);
	free(s);
}

int rf_sigma_corrset_rule(struct rf_sigma_corrset *s, const char *id, const char *name,
			  const char *event, uint32_t rule_index)
{
	struct base *nb = realloc(s->b, (s->nb + 1) * sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	s->b = nb;
	struct base *b = &s->b[s->nb];
	*b = (struct base){strdup(id ? id : ""), strdup(name ? name : ""),
			   strdup(event ? event : ""), rule_index};
	if (!b->id || !b->name || !b->event) {
		free(b->id);
		free(b->name);
		free(b->event);
		return -ENOMEM;
	}
	s->nb++;
	return 0;
}

struct pctx {
	const char *origin;
	struct rf_diag *d;
	struct corr *c;
	char qid[96], qtitle[160];
};

static int fail(struct pctx *x, int code, const char *fmt, ...) RF_PRINTF(3, 4);

static int fail(struct pctx *x, int code, const char *fmt, ...)
{
	char reason[RF_DIAG_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return rf_diag_report(x->d, code, "%s: correlation %s \"%s\": %s",
			      x->origin ? x->origin : "<input>", x->qid[0] ? x->qid : "?",
			      x->qtitle[0] ? x->qtitle : "?", reason);
}

static bool is_str(const struct node *n)
{
	return n && n->kind == N_SCALAR && n->len > 0 && !memchr(n->s, 0, n->len);
}

/* A short text attribute (id, name, field): a non-empty scalar of at most max bytes. */
static int text(struct pctx *x, const struct node *n, const char *what, size_t max, char **ret)
{
	if (!is_str(n))
		return fail(x, -EBADMSG, "'%s' must be a non-empty string", what);
	if (n->len > max)
		return fail(x, -E2BIG, "'%s' is %zu bytes (limit %zu)", what, n->len, max);
	if (!rf__pack_utf8_ok((const uint8_t *)n->s, n->len))
		return fail(x, -EBADMSG, "'%s' is not valid UTF-8", what);
	*ret = strdup(n->s);
	return *ret ? 0 : -ENOMEM;
}

/* A plain non-negative decimal count (YAML int), at most max. */
static int count(struct pctx *x, const struct node *n, const char *what, uint32_t max,
		 uint32_t *ret)
{
	uint64_t v = 0;

	if (!n || n->kind != N_SCALAR || !n->plain || n->len == 0 || n->len > 10 ||
	    (n->len > 1 && n->s[0] == '0'))
		return fail(x, -EBADMSG, "%s must be a non-negative integer", what);
	for (size_t i = 0; i < n->len; i++) {
		if (n->s[i] < '0' || n->s[i] > '9')
			return fail(x, -EBADMSG, "%s must be a non-negative integer", what);
		v = v * 10 + (uint64_t)(n->s[i] - '0');
	}
	if (v > max)
		return fail(x, -E2BIG, "%s %llu is over the cap %u", what, (unsigned long long)v,
			    max);
	*ret = (uint32_t)v;
	return 0;
}

static int parse_timespan(struct pctx *x, const struct node *n, uint32_t *ret)
{
	static const struct {
		char unit;
		uint32_t s;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	uint64_t v = 0;

	if (!n)
		return fail(x, -EBADMSG,
			    "missing 'timespan' (required: a number and s, m, h or d)");
	if (n->kind != N_SCALAR || n->len < 2 || n->len > 12)
		return fail(x, -EBADMSG, "timespan must be a number followed by s, m, h or d");
	for (size_t i = 0; i + 1 < n->len; i++) {
		if (n->s[i] < '0' || n->s[i] > '9')
			return fail(x, -EBADMSG,
				    "timespan '%.16s' must be a number followed by s, m, h or d",
				    n->s);
		v = v * 10 + (uint64_t)(n->s[i] - '0');
	}
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		if (n->s[n->len - 1] != units[u].unit)
			continue;
		v *= units[u].s;
		if (v == 0 || v > RF_CORR_TIMESPAN_MAX)
			return fail(x, -E2BIG, "timespan '%.16s' is outside 1 s .. %u s (30 days)",
				    n->s, RF_CORR_TIMESPAN_MAX);
		*ret = (uint32_t)v;
		return 0;
	}
	return fail(x, -ENOTSUP, "timespan unit '%c' is not supported (s, m, h or d)",
		    n->s[n->len - 1]);
}

static int parse_condition(struct pctx *x, const struct node *n)
{
	struct corr *c = x->c;
	bool any = false;
	int r;

	c->lo = 0;
	c->hi = RF_CORR_NO_MAX;
	if (!n) {
		if (c->type == RF_CORR_TEMPORAL || c->type == RF_CORR_TEMPORAL_ORDERED) {
			c->lo = (uint32_t)c->n_refs;
			return 0;
		}
		return fail(x, -EBADMSG, "missing 'condition' (required by %s)",
			    c->type == RF_CORR_EVENT_COUNT ? "event_count" : "value_count");
	}
	if (n->kind != N_MAP)
		return fail(x, -EBADMSG, "'condition' must be a mapping (gt, gte, lt, lte, eq)");
	for (size_t i = 0; i + 1 < n->nkids; i += 2) {
		const char *k = n->kids[i]->kind == N_SCALAR ? n->kids[i]->s : "";
		const struct node *v = n->kids[i + 1];
		uint32_t val;
		if (!strcmp(k, "field")) {
			if (c->type != RF_CORR_VALUE_COUNT)
				return fail(x, -EBADMSG,
					    "condition 'field' is for value_count only");
			if (c->field)
				return fail(x, -EBADMSG, "condition 'field' given twice");
			if ((r = text(x, v, "condition field", RF_NAME_MAX, &c->field)) < 0)
				return r;
			continue;
		}
		if (strcmp(k, "gt") && strcmp(k, "gte") && strcmp(k, "lt") && strcmp(k, "lte") &&
		    strcmp(k, "eq"))
			return fail(x, -ENOTSUP,
				    "condition '%.32s' is not supported (gt, gte, lt, lte, eq, "
				    "and field for value_count)",
				    k);
		if ((r = count(x, v, "a condition's value", UINT32_MAX - 1, &val)) < 0)
			return r;
		any = true;
		if (!strcmp(k, "gt") && val + 1 > c->lo)
			c->lo = val + 1;
		else if (!strcmp(k, "gte") && val > c->lo)
			c->lo = val;
		else if (!strcmp(k, "lt")) {
			if (val == 0)
				return fail(x, -EBADMSG, "condition lt: 0 can never hold");
			if (val - 1 < c->hi)
				c->hi = val - 1;
		} else if (!strcmp(k, "lte") && val < c->hi)
			c->hi = val;
		else if (!strcmp(k, "eq")) {
			if (val > c->lo)
				c->lo = val;
			if (val < c->hi)
				c->hi = val;
		}
	}
	if (c->type == RF_CORR_VALUE_COUNT && !c->field)
		return fail(x, -EBADMSG, "value_count needs the condition's 'field'");
	if (!any) {
		if (c->type != RF_CORR_TEMPORAL && c->type != RF_CORR_TEMPORAL_ORDERED)
			return fail(x, -EBADMSG, "'condition' has no gt, gte, lt, lte or eq");
		c->lo = (uint32_t)c->n_refs;
	}
	const char *why = rf__pack_corr_cond_problem(c->type, (unsigned)c->n_refs, c->lo, c->hi);
	if (why)
		return fail(x, -E2BIG, "%s", why);
	return 0;
}

static int parse_aliases(struct pctx *x, const struct node *n)
{
	struct corr *c = x->c;
	int r;

	if (!n)
		return 0;
	if (n->kind != N_MAP || n->nkids / 2 > RF_CORR_GROUP_MAX)
		return fail(x, -EBADMSG, "'aliases' must map at most %u names to {rule: field}",
			    RF_CORR_GROUP_MAX);
	c->aliases = calloc(n->nkids / 2 + 1, sizeof(*c->aliases));
	if (!c->aliases)
		return -ENOMEM;
	for (size_t i = 0; i + 1 < n->nkids; i += 2) {
		struct alias *a = &c->aliases[c->n_aliases++];
		const struct node *m = n->kids[i + 1];
		if ((r = text(x, n->kids[i], "alias name", RF_NAME_MAX, &a->name)) < 0)
			return r;
		if (m->kind != N_MAP || m->nkids / 2 > RF_CORR_REFS_MAX)
			return fail(x, -EBADMSG, "alias '%.64s' must map rule names to fields",
				    a->name);
		a->rule = calloc(m->nkids / 2 + 1, sizeof(char *));
		a->field = calloc(m->nkids / 2 + 1, sizeof(char *));
		if (!a->rule || !a->field)
			return -ENOMEM;
		for (size_t k = 0; k + 1 < m->nkids; k += 2) {
			if ((r = text(x, m->kids[k], "alias rule", RF_NAME_MAX, &a->rule[a->n])) <
			    0)
				return r;
			a->n++;
			if ((r = text(x, m->kids[k + 1], "alias field", RF_NAME_MAX,
				      &a->field[a->n - 1])) < 0)
				return r;
		}
	}
	return 0;
}

static int parse_bool(struct pctx *x, const struct node *n, const char *what, bool *ret)
{
	static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes",
					"YES",	"on",	"On",	"ON"};
	static const char *const f[] = {"false", "False", "FALSE", "no", "No",
					"NO",	 "off",	  "Off",   "OFF"};

	if (n && n->kind == N_SCALAR && n->plain)
		for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
			if (!strcmp(n->s, t[i]))
				return *ret = true, 0;
			if (!strcmp(n->s, f[i]))
				return *ret = false, 0;
		}
	return fail(x, -EBADMSG, "'%s' must be true or false", what);
}

static int parse_corr(struct pctx *x, const struct node *root)
{
	static const char *const types[] = {"event_count", "value_count", "temporal",
					    "temporal_ordered"};
	static const char *const known[] = {"type",	 "rules",   "group-by", "timespan",
					    "condition", "aliases", "generate"};
	static const char *const levels[] = {"informational", "low", "medium", "high", "critical"};
	struct corr *c = x->c;
	const struct node *cs = map_get(root, "correlation"), *n;
	bool gen = false;
	int r;

	if ((n = map_get(root, "id")) && is_str(n))
		rf_diag_quote(x->qid, sizeof(x->qid), n->s, n->len);
	if ((n = map_get(root, "title")) && is_str(n))
		rf_diag_quote(x->qtitle, sizeof(x->qtitle), n->s, n->len);
	if (!(n = map_get(root, "title")))
		return fail(x, -EBADMSG, "missing required 'title'");
	if ((r = text(x, n, "title", RF_PACK_STRING_MAX, &c->title)) < 0)
		return r;
	if ((n = map_get(root, "name")) && (r = text(x, n, "name", RF_NAME_MAX, &c->name)) < 0)
		return r;
	if ((n = map_get(root, "id"))) {
		if ((r = text(x, n, "id", RF_NAME_MAX, &c->id)) < 0)
			return r;
	} else if (c->name) { /* the id is optional for correlations: the name stands in */
		if (!(c->id = strdup(c->name)))
			return -ENOMEM;
		rf_diag_quote(x->qid, sizeof(x->qid), c->id, strlen(c->id));
	} else {
		return fail(x, -EBADMSG, "needs an 'id' or a 'name'");
	}
	for (const char *s = c->id; *s; s++)
		if (*s == ' ' || (unsigned char)*s > 0x7e)
			return fail(x, -EBADMSG, "'id' is not printable ASCII without spaces");
	if ((n = map_get(root, "level")) && n->kind == N_SCALAR && n->len) {
		size_t i = 0;
		while (i < 5 && strcmp(n->s, levels[i]))
			i++;
		if (i == 5)
			return fail(x, -EBADMSG,
				    "level '%.32s' is not informational, low, medium, high or "
				    "critical",
				    n->s);
		if (!(c->level = strdup(n->s)))
			return -ENOMEM;
	}
	if ((n = map_get(root, "author")) && n->kind == N_SCALAR &&
	    (r = text(x, n, "author", RF_PACK_STRING_MAX, &c->author)) < 0)
		return r;
	if (map_get(root, "detection") || map_get(root, "logsource"))
		return fail(x, -EBADMSG, "a correlation has no 'detection' or 'logsource'");
	if (!cs || cs->kind != N_MAP)
		return fail(x, -EBADMSG, "'correlation' must be a mapping");
	for (size_t i = 0; i + 1 < cs->nkids; i += 2) {
		const char *k = cs->kids[i]->kind == N_SCALAR ? cs->kids[i]->s : "";
		size_t j = 0;
		while (j < sizeof(known) / sizeof(known[0]) && strcmp(k, known[j]))
			j++;
		if (j == sizeof(known) / sizeof(known[0]))
			return fail(x, -ENOTSUP, "correlation key '%.32s' is not supported", k);
	}
	if (!(n = map_get(cs, "type")) || n->kind != N_SCALAR)
		return fail(x, -EBADMSG,
			    "missing 'type' (event_count, value_count, temporal, "
			    "temporal_ordered)");
	c->type = 0;
	for (size_t i = 0; i < 4; i++)
		if (!strcmp(n->s, types[i]))
			c->type = (enum rf_corr_type)(i + 1);
	if (!c->type)
		return fail(x, -ENOTSUP,
			    "correlation type '%.32s' is not supported (event_count, value_count, "
			    "temporal, temporal_ordered)",
			    n->s);
	n = map_get(cs, "rules");
	if (is_str(n)) { /* one rule, as a scalar */
		if ((r = text(x, n, "rules", RF_NAME_MAX, &c->refs[0])) < 0)
			return r;
		c->n_refs = 1;
	} else if (n && n->kind == N_SEQ && n->nkids > 0) {
		if (n->nkids > RF_CORR_REFS_MAX)
			return fail(x, -E2BIG, "%zu rules referred to (cap %u)", n->nkids,
				    RF_CORR_REFS_MAX);
		for (size_t i = 0; i < n->nkids; i++) {
			if ((r = text(x, n->kids[i], "rules", RF_NAME_MAX, &c->refs[i])) < 0)
				return r;
			c->n_refs++;
			for (size_t k = 0; k < i; k++)
				if (!strcmp(c->refs[k], c->refs[i]))
					return fail(x, -EBADMSG, "rule '%.64s' listed twice",
						    c->refs[i]);
		}
	} else {
		return fail(x, -EBADMSG, "missing 'rules' (the ids or names of the rules)");
	}
	n = map_get(cs, "group-by");
	if (is_str(n)) {
		if ((r = text(x, n, "group-by", RF_NAME_MAX, &c->group[0])) < 0)
			return r;
		c->n_group = 1;
	} else if (n && n->kind == N_SEQ) {
		if (n->nkids > RF_CORR_GROUP_MAX)
			return fail(x, -E2BIG, "%zu group-by fields (cap %u)", n->nkids,
				    RF_CORR_GROUP_MAX);
		for (size_t i = 0; i < n->nkids; i++) {
			if ((r = text(x, n->kids[i], "group-by", RF_NAME_MAX, &c->group[i])) < 0)
				return r;
			c->n_group++;
		}
	} else if (n && !(n->kind == N_SCALAR && n->plain && n->len == 0)) {
		return fail(x, -EBADMSG, "'group-by' must be a list of field names");
	}
	if ((r = parse_timespan(x, map_get(cs, "timespan"), &c->timespan_s)) < 0 ||
	    (r = parse_condition(x, map_get(cs, "condition"))) < 0 ||
	    (r = parse_aliases(x, map_get(cs, "aliases"))) < 0)
		return r;
	if ((n = map_get(cs, "generate")) || (n = map_get(root, "generate"))) {
		if ((r = parse_bool(x, n, "generate", &gen)) < 0)
			return r;
	}
	c->flags = gen ? RF_CORR_F_GENERATE : 0;
	return 0;
}

int rf_sigma_corrset_parse(struct rf_sigma_corrset *s, const uint8_t *yaml, size_t n,
			   const char *origin, struct rf_diag *d)
{
	struct corr c = {0};
	struct pctx x = {.origin = origin, .d = d, .c = &c};
	struct node *root = NULL;
	int r;

	if (s->n >= RF_CORR_MAX)
		return fail(&x, -E2BIG, "more than %u correlations", RF_CORR_MAX);
	if (n > RF_SIGMA_FILE_MAX)
		return fail(&x, -E2BIG, "larger than %u bytes", RF_SIGMA_FILE_MAX);
	r = tree_load(yaml, n, origin ? origin : "<input>", &root, d);
	if (r == 0)
		r = parse_corr(&x, root);
	node_free(root);
	if (r == 0 && !(c.origin = strdup(origin ? origin : "<input>")))
		r = -ENOMEM;
	if (r == 0) {
		struct corr *nc = realloc(s->c, (s->n + 1) * sizeof(*nc));
		if (!nc)
			r = -ENOMEM;
		else {
			s->c = nc;
			s->c[s->n++] = c;
			return 0;
		}
	}
	corr_clear(&c);
	return r;
}

/* ---- resolution ----------------------------------------------------------------------------- */

/* The base rule ref names (by id, else by name), or NULL. */
static const struct base *find_base(const struct rf_sigma_corrset *s, const char *ref)
{
	for (size_t i = 0; i < s->nb; i++)
		if (!strcmp(s->b[i].id, ref))
			return &s->b[i];
	for (size_t i = 0; i < s->nb; i++)
		if (s->b[i].name[0] && !strcmp(s->b[i].name, ref))
			return &s->b[i];
	return NULL;
}

static struct corr *find_corr(struct rf_sigma_corrset *s, const char *ref)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->c[i].id, ref) || (s->c[i].name && !strcmp(s->c[i].name, ref)))
			return &s->c[i];
	return NULL;
}

/* The field group-by g reads from refs[r]: an alias's entry for that rule, else the name. */
static const char *group_field(const struct corr *c, size_t g, size_t r, const char *ref_name,
			       const char *ref_id, bool *ret_missing)
{
	*ret_missing = false;
	for (size_t i = 0; i < c->n_aliases; i++) {
		const struct alias *a = &c->aliases[i];
		if (strcmp(a->name, c->group[g]))
			continue;
		for (size_t k = 0; k < a->n; k++)
			if (!strcmp(a->rule[k], c->refs[r]) ||
			    (ref_name && *ref_name && !strcmp(a->rule[k], ref_name)) ||
			    (ref_id && !strcmp(a->rule[k], ref_id)))
				return a->field[k];
		*ret_missing = true;
		return NULL;
	}
	return c->group[g];
}

/* Resolve c (its correlation references are all settled) and add it. 0 added, -ENOMEM, or another
 * negative errno: rejected (reported). */
static int resolve(struct rf_sigma_corrset *s, struct corr *c, struct rf_pack_builder *b,
		   const struct rf_manifest *m, uint32_t next_index, struct rf_diag *d)
{
	struct pctx x = {.origin = c->origin, .d = d, .c = c};
	uint32_t refs[RF_CORR_REFS_MAX];
	const char *gf[RF_CORR_GROUP_MAX * RF_CORR_REFS_MAX];
	int r;

	rf_diag_quote(x.qid, sizeof(x.qid), c->id, strlen(c->id));
	rf_diag_quote(x.qtitle, sizeof(x.qtitle), c->title, strlen(c->title));
	for (size_t i = 0; i < c->n_refs; i++) {
		const struct base *bs = find_base(s, c->refs[i]);
		struct corr *in = bs ? NULL : find_corr(s, c->refs[i]);
		const char *rname = bs ? bs->name : in ? in->name : NULL;
		const char *rid = bs ? bs->id : in ? in->id : NULL;
		if (bs && bs->index == UINT32_MAX)
			return fail(&x, -EINVAL, "refers to rule '%.64s', which was rejected",
				    c->refs[i]);
		if (!bs && !in)
			return fail(&x, -EINVAL,
				    "unknown rule reference '%.64s' (no rule or "
				    "correlation has that id or name)",
				    c->refs[i]);
		if (in && in->state < 0)
			return fail(&x, -EINVAL,
				    "refers to correlation '%.64s', which was rejected",
				    c->refs[i]);
		refs[i] = bs ? bs->index : RF_CORR_REF_CORR | in->index;
		for (size_t k = 0; k < i; k++)
			if (refs[k] == refs[i])
				return fail(&x, -EINVAL, "refers to '%.64s' twice", c->refs[i]);
		for (size_t g = 0; g < c->n_group; g++) {
			bool missing;
			const char *f = group_field(c, g, i, rname, rid, &missing);
			if (missing)
				return fail(&x, -EINVAL,
					    "alias '%.64s' does not name a field of rule '%.64s'",
					    c->group[g], c->refs[i]);
			gf[g * c->n_refs + i] = f;
			if (in) {
				size_t k = 0;
				while (k < in->n_group && strcmp(in->group[k], f))
					k++;
				if (k == in->n_group)
					return fail(
					    &x, -EINVAL,
					    "group-by '%.64s': correlation '%.64s' does not "
					    "group by it",
					    f, c->refs[i]);
			} else if (m && rf_manifest_field_type(m, bs->event, f) < 0) {
				return fail(
				    &x, -ENOENT,
				    "group-by field '%.64s' is not supplied for event %.64s "
				    "(rule '%.64s') by %s %s",
				    f, bs->event, c->refs[i], rf_manifest_agent(m),
				    rf_manifest_version(m));
			}
		}
		if (c->field && in)
			return fail(&x, -ENOTSUP,
				    "value_count over a correlation is not supported");
		if (c->field && m && rf_manifest_field_type(m, bs->event, c->field) < 0)
			return fail(&x, -ENOENT,
				    "value_count field '%.64s' is not supplied for event %.64s by "
				    "%s %s",
				    c->field, bs->event, rf_manifest_agent(m),
				    rf_manifest_version(m));
	}
	struct rf_ir_corr ir = {.id = c->id,
				.title = c->title,
				.level = c->level ? c->level : "",
				.author = c->author ? c->author : "",
				.type = c->type,
				.flags = c->flags,
				.timespan_s = c->timespan_s,
				.lo = c->lo,
				.hi = c->hi,
				.field = c->field,
				.refs = refs,
				.n_refs = c->n_refs,
				.group = (const char *const *)c->group,
				.n_group = c->n_group,
				.group_fields = gf};
	struct rf_diag sub = {0};
	r = rf_pack_builder_add_corr(b, &ir, &sub);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return fail(&x, r, "%s", sub.first[0] ? sub.first : rf_strerror(r));
	c->index = next_index;
	return 0;
}

int rf_sigma_corrset_finish(struct rf_sigma_corrset *s, struct rf_pack_builder *b,
			    const struct rf_manifest *m, size_t *ret_added, size_t *ret_rejected,
			    struct rf_diag *d)
{
	size_t added = 0, rejected = 0;
	bool progress = true;

	/* Names and ids must say one thing: a duplicate is rejected (the first keeps it). */
	for (size_t i = 0; i < s->n; i++) {
		struct corr *c = &s->c[i];
		struct pctx x = {.origin = c->origin, .d = d, .c = c};
		const struct base *bs = find_base(s, c->id);
		rf_diag_quote(x.qid, sizeof(x.qid), c->id, strlen(c->id));
		rf_diag_quote(x.qtitle, sizeof(x.qtitle), c->title, strlen(c->title));
		if (!bs && c->name)
			bs = find_base(s, c->name);
		if (bs || find_corr(s, c->id) != c || (c->name && find_corr(s, c->name) != c)) {
			fail(&x, -EINVAL, "id or name already used by another rule or correlation");
			c->state = -1;
			rejected++;
			continue;
		}
		/* A reference by a name two rules carry would count only the first one's events:
		 * ambiguous, rejected with both named. */
		for (size_t k = 0; k < c->n_refs && c->state == 0; k++) {
			const struct base *b1 = find_base(s, c->refs[k]), *b2 = NULL;
			if (!b1 || !strcmp(b1->id, c->refs[k]))
				continue;
			for (size_t j = 0; j < s->nb && !b2; j++)
				if (&s->b[j] != b1 && !strcmp(s->b[j].name, c->refs[k]))
					b2 = &s->b[j];
			if (!b2)
				continue;
			char qn[96], q1[96], q2[96];
			rf_diag_quote(qn, sizeof(qn), c->refs[k], strlen(c->refs[k]));
			rf_diag_quote(q1, sizeof(q1), b1->id, strlen(b1->id));
			rf_diag_quote(q2, sizeof(q2), b2->id, strlen(b2->id));
			fail(&x, -EINVAL,
			     "rules: '%s' is the name of two rules (ids '%s' and '%s'): names must be "
			     "unique; rename one or refer by id",
			     qn, q1, q2);
			c->state = -1;
			rejected++;
		}
	}
	while (progress) {
		progress = false;
		for (size_t i = 0; i < s->n; i++) {
			struct corr *c = &s->c[i];
			bool ready = true;
			if (c->state != 0)
				continue;
			for (size_t k = 0; k < c->n_refs && ready; k++) {
				struct corr *in =
				    find_base(s, c->refs[k]) ? NULL : find_corr(s, c->refs[k]);
				ready = !in || in->state != 0;
			}
			if (!ready)
				continue;
			int r = resolve(s, c, b, m, (uint32_t)added, d);
			if (r == -ENOMEM)
				return r;
			c->state = r == 0 ? 1 : -1;
			if (r == 0)
				added++;
			else
				rejected++;
			progress = true;
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		struct corr *c = &s->c[i];
		struct pctx x = {.origin = c->origin, .d = d, .c = c};
		if (c->state != 0)
			continue;
		rf_diag_quote(x.qid, sizeof(x.qid), c->id, strlen(c->id));
		rf_diag_quote(x.qtitle, sizeof(x.qtitle), c->title, strlen(c->title));
		fail(&x, -EINVAL, "its references form a cycle");
		c->state = -1;
		rejected++;
	}
	*ret_added = added;
	*ret_rejected = rejected;
	return 0;
}
