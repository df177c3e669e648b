/*
 * The Sigma compiler's condition (see sigma_int.h for the compiler's files): a recursive-descent
 * parser (not > and > or; `1 of`/`all of` patterns and `them`) that emits the rule's program by
 * splicing the search identifiers' fragments. Nesting is bounded by RF_SIGMA_COND_DEPTH_MAX and
 * pattern matching work by RF_SIGMA_MATCH_STEPS_MAX.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content/sigma_int.h"

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

int compile_condition(struct ctx *c, const struct node *cn, struct vec *v)
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
