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
 *
 * Files. This one holds the rule (header, logsource, detection and condition put together) and
 * the API; sigma_yaml.c the YAML layer, sigma_detect.c the search identifiers and modifiers,
 * sigma_pattern.c the value transformations, sigma_cond.c the condition (sigma_int.h lists them).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content/pack.h"
#include "content/sigma_int.h"

/* ---- messages ----------------------------------------------------------------------------- */

int fail(struct ctx *c, int code, const char *fmt, ...)
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

int oom(struct ctx *c)
{
	return fail(c, -ENOMEM, "out of memory");
}

/* Quote a scalar for a message (safe on any bytes). */
const char *qs(char *buf, size_t sz, const struct node *n)
{
	return rf_diag_quote(buf, sz, n->s, n->len);
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
 * The event type a rule runs on, from its logsource (docs/sigma.md "Event sources"): the event
 * the manifest declares for exactly this product/category/service when it declares one (log
 * sources: kubernetes audit, opencanary's application log, Linux logs with a product alone), else
 * the category when there is one (process_creation), else "<product>_<service>" (windows_security),
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
	if (prod) { /* recorded in the pack: the verifier checks it against each manifest */
		char *pc = arena_alloc(&c->r->arena, prod->len + 1);
		if (!pc)
			return oom(c);
		memcpy(pc, prod->s, prod->len);
		pc[prod->len] = '\0';
		c->r->product = pc;
	}
	if (c->m) {
		const char *dev;
		if (rf_manifest_logsource_event(
			c->m, prod ? prod->s : NULL, prod ? prod->len : 0, cat ? cat->s : NULL,
			cat ? cat->len : 0, svc ? svc->s : NULL, svc ? svc->len : 0, &dev) > 0) {
			size_t dl = strlen(dev);
			char *ev = arena_alloc(&c->r->arena, dl + 1);
			if (!ev)
				return oom(c);
			memcpy(ev, dev, dl + 1); /* the rule may outlive the manifest */
			c->event = ev;
			c->r->ir.event = ev;
			return 0;
		}
	}
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
	/* An event that declares its logsources is reached only through them (above). */
	if (c->m && (!rf_manifest_has_event(c->m, c->event) ||
		     rf_manifest_event_declared(c->m, c->event))) {
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

const char *rf_sigma_rule_product(const struct rf_sigma_rule *r)
{
	return r->product;
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
