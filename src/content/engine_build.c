/*
 * The engine's load half: a pack verified against the agent's manifest turned into matchers.
 * It builds the field lookup table over every manifest field, groups the pack's atoms per field
 * and kind (string atoms into one Vectorscan database per field, compiled here from the
 * verified pattern text or taken from the matcher cache when its digest matches; int/ip atoms
 * into native comparisons; EXISTS/NULL/FIELDREF atoms by presence), computes each rule's trigger
 * set (the prefilter) and the lazily scanned fields. Everything is read-only once loaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>

#include "common/buf.h"
#include "common/util.h"
#include "content/cache.h"
#include "content/engine.h"
#include "content/pack.h"
#include "ringfence/limits.h"

void rf_engine_free(struct rf_engine *e)
{
	if (!e)
		return;
	if (e->pf)
		for (uint32_t i = 0; i < e->pk->n_fields; i++) {
			rf__litset_free(&e->pf[i].lits);
			rf__shiftset_free(&e->pf[i].shift);
			for (int c = 0; c < RF_NDB; c++)
				hs_free_database(e->pf[i].db[c]);
		}
	hs_free_database(e->kwdb);
	if (e->evs)
		for (size_t i = 0; i < e->n_ev; i++)
			free(e->evs[i].name);
	free(e->evs);
	free(e->slots);
	free(e->names);
	free(e->pf);
	free(e->nums);
	free(e->pres);
	free(e->nulls);
	free(e->nullfields);
	free(e->frefs);
	free(e->always);
	free(e->trig_off);
	free(e->trig_rules);
	free(e->rule_ev);
	free(e->lazy_off);
	free(e->lazy_len);
	free(e->lazy_fields);
	free(e->factor);
	free(e->factors);
	free(e->factor_arena);
	free(e->acls);
	free(e->directs);
	free(e->didx);
	free(e->dir_off);
	free(e->dir_len);
	free(e->dir_list);
	free(e->xr);
	free(e->mayunk);
	free(e->xcode);
	free(e->xlists);
	free(e->xgroups);
	free(e->xatoms);
	free(e->agent);
	free(e->version);
	free(e->digests);
	rf_pack_free(e->pk);
	free(e);
}

const struct rf_pack *rf_engine_pack(const struct rf_engine *e)
{
	return e->pk;
}

/* Engines loaded by this process so far: each one's serial (engine.h). */
static uint64_t engine_serial;

/* The expressions of the string atoms in atoms[0..n) (Vectorscan's input), and their digest:
 * SHA-256 over every expression, its flags and its id, so a cached database is used only for
 * exactly the expressions it was compiled from (whatever changed: the pack, or how this build
 * turns patterns into expressions). lit: the atoms are literal contains, compiled as literals
 * (hs_compile_lit_multi: the unescaped bytes, lens[i] long), else as regular expressions. */
static int make_exprs(const struct rf_engine *e, const uint32_t *atoms, uint32_t n, bool lit,
		      char **exprs, size_t *lens, unsigned *flags, unsigned *ids,
		      uint8_t digest[32], struct rf_diag *d)
{
	const struct rf_pack *pk = e->pk;
	struct rf_buf b = RF_BUF_INIT(SIZE_MAX - 1);
	int r = 0;

	for (uint32_t i = 0; i < n; i++) {
		bool fac = atoms[i] >= pk->n_atoms; /* a factor (literal database only) */
		const struct rf_patom *a =
		    &pk->atoms[fac ? e->factors[atoms[i] - pk->n_atoms].atom : atoms[i]];
		const struct rf_pstr *p = &pk->strings[a->pattern];
		size_t cap = RF_GLOB_REGEX_MAX(p->len) + 1;
		int len;
		exprs[i] = malloc(cap);
		if (!exprs[i]) {
			r = -ENOMEM;
			goto out;
		}
		if (fac) {
			len = (int)e->factors[atoms[i] - pk->n_atoms].len;
			memcpy(exprs[i], e->factors[atoms[i] - pk->n_atoms].lit, (size_t)len);
		} else {
			len = lit ? rf__glob_literal(p->s, p->len, exprs[i])
				  : rf__pack_glob_regex(a->op, p->s, p->len, exprs[i], cap);
		}
		if (len < 0) {
			r = rf_diag_report(d, -E2BIG, "engine: atom %u: pattern too long",
					   atoms[i]);
			goto out;
		}
		lens[i] = (size_t)len;
		/* A regex's factor is searched caselessly: inline flags ((?i)) may make any
		 * part of a cased expression caseless. */
		bool cased = (a->flags & RF_ATOM_CASED) && a->op != RF_OP_REGEX;
		flags[i] = lit ? HS_FLAG_SINGLEMATCH | (cased ? 0 : HS_FLAG_CASELESS)
			       : rf__pack_hs_flags(a->op, a->flags);
		ids[i] = atoms[i];
		uint32_t tail[4] = {flags[i], ids[i], lit, (uint32_t)len};
		if ((r = rf_buf_append(&b, exprs[i], (size_t)len)) < 0 ||
		    (r = rf_buf_append(&b, tail, sizeof(tail))) < 0)
			goto out;
	}
	rf_sha256(b.p, b.n, digest);
out:
	rf_buf_free(&b);
	return r;
}

/* Build the database of the string atoms in atoms[0..n) (lit: literal contains atoms): taken
 * from the cache when it holds one for exactly these expressions, else compiled. */
static int compile_db(struct rf_engine *e, const uint32_t *atoms, uint32_t n, bool lit,
		      const char *what, hs_database_t **ret, struct rf_diag *d)
{
	char **exprs = calloc(n, sizeof(*exprs));
	size_t *lens = calloc(n, sizeof(*lens));
	unsigned *flags = calloc(n, sizeof(*flags)), *ids = calloc(n, sizeof(*ids));
	hs_compile_error_t *err = NULL;
	uint8_t *digest = e->digests[e->ndigests];
	int r = 0;

	if (!exprs || !lens || !flags || !ids) {
		r = -ENOMEM;
		goto out;
	}
	r = make_exprs(e, atoms, n, lit, exprs, lens, flags, ids, digest, d);
	if (r < 0)
		goto out;
	e->ndigests++;
	if (e->pre) {
		/* The cache's next database, if it was built from these very expressions. */
		if (e->ipre >= e->npre || !e->pre[e->ipre] ||
		    memcmp(e->pre_digests[e->ipre], digest, 32) != 0) {
			r = -ESTALE;
			goto out;
		}
		*ret = e->pre[e->ipre];
		e->pre[e->ipre++] = NULL;
		goto out;
	}
	/* Tune the database for the CPU it runs on (the agent compiles on its own host). */
	hs_platform_info_t plat;
	bool have_plat = hs_populate_platform(&plat) == HS_SUCCESS;
	hs_error_t he =
	    lit ? hs_compile_lit_multi((const char *const *)exprs, flags, ids, lens, n,
				       HS_MODE_BLOCK, have_plat ? &plat : NULL, ret, &err)
		: hs_compile_multi((const char *const *)exprs, flags, ids, n, HS_MODE_BLOCK,
				   have_plat ? &plat : NULL, ret, &err);
	if (he != HS_SUCCESS) {
		r = rf_diag_report(d, -ENOEXEC,
				   "engine: Vectorscan rejected %s (expression %d): %s", what,
				   err ? err->expression : -1, err ? err->message : "?");
		hs_free_compile_error(err);
	}
out:
	if (exprs)
		for (uint32_t i = 0; i < n; i++)
			free(exprs[i]);
	free(exprs);
	free(lens);
	free(flags);
	free(ids);
	return r;
}

/*
 * Trigger sets, computed symbolically over the program: ATOM a -> {a} (a NULL atom, true when
 * the field is absent, -> "all": no set); TRUE -> all; FALSE -> {} (never true); NOT x -> all;
 * x AND y -> the smaller of the two sets (either must match), preferring the one with fewer
 * "heavy" atoms (regular expressions and globs without a factor: they keep their field's
 * RF_DB_OTHER database from being lazy); x OR y -> their union (all if either is all). A glob
 * with a factor is represented by its factor (see struct rf_engine). Sets are trees of union nodes
 * (one node per instruction, each used once), flattened at the end, so the cost is linear in the
 * program length.
 */
struct tnode {
	uint32_t left, right; /* children for a union; left = atom for a leaf */
	uint32_t size;	      /* upper bound of the set's size */
	uint8_t kind;	      /* 0 all, 1 leaf, 2 union, 3 empty */
	uint32_t heavy;	      /* heavy atoms in the set */
	double p;	      /* estimated chance that some atom of the set is true */
};

/*
 * The estimated chance that atom (or factor) bit is true on an event, for choosing the side of
 * an AND that triggers the rule less often (either side is a correct trigger set): a contains
 * literal of up to 3 bytes as likely as not, each byte beyond halving it; an endswith or
 * startswith 1/20 (values are paths and programs: a name recurs); an eq 1/50; anything else
 * (EXISTS, numbers, a regex or glob, with a factor or not: a rule it triggers mostly has to
 * scan the lazy database too) 1/2. A rough order, not a measure. Measured on the SigmaHQ
 * process_creation bench (callgrind): the smaller set alone ran 15.2 rules per event; with this
 * order 10.5 (-1,800 instructions per event); contains at 4^-(L-1) ran 17.4, endswith at 1/10
 * 13.3, factors ranked as contains literals 11.0.
 */
static double atom_p(const struct rf_engine *e, uint32_t bit)
{
	const struct rf_pack *pk = e->pk;
	uint32_t len;

	if (bit >= pk->n_atoms)
		return 0.5;
	else if (e->acls[bit] == RF_DB_CONTAINS)
		len = pk->strings[pk->atoms[bit].pattern].len;
	else if (pk->atoms[bit].op == RF_OP_EQ && e->acls[bit] == RF_NDB)
		return 0.02;
	else if ((pk->atoms[bit].op == RF_OP_STARTSWITH || pk->atoms[bit].op == RF_OP_ENDSWITH) &&
		 e->acls[bit] == RF_NDB)
		return 0.05;
	else
		return 0.5;
	double p = 1;
	for (uint32_t k = 3; k < len && p > 1e-9; k++)
		p *= 0.5;
	return p;
}

/* Returns the number of atoms written to out (at most code_len), or -1 for "all". */
static int trigger_set(const struct rf_engine *e, const struct rf_prule *r, struct tnode *nodes,
		       uint32_t *st, uint32_t *walk, uint32_t *out)
{
	const struct rf_pack *pk = e->pk;
	uint32_t top = 0, nn = 0;

	for (uint32_t k = 0; k < r->code_len; k++) {
		uint32_t in = pk->code[r->code_off + k], op = RF_INSN_OP(in), a, b;
		switch (op) {
		case RF_I_ATOM:
			a = RF_INSN_ARG(in);
			if (pk->atoms[a].op == RF_OP_NULL)
				nodes[nn] = (struct tnode){0, 0, 0, 0, 0, 1};
			else if (e->factor[a] != UINT32_MAX)
				nodes[nn] = (struct tnode){e->factor[a],	   0, 1, 1, 0,
							   atom_p(e, e->factor[a])};
			else
				nodes[nn] = (struct tnode){
				    a, 0, 1, 1, e->acls[a] == RF_DB_OTHER, atom_p(e, a)};
			st[top++] = nn++;
			break;
		case RF_I_TRUE:
			nodes[nn] = (struct tnode){0, 0, 0, 0, 0, 1};
			st[top++] = nn++;
			break;
		case RF_I_FALSE:
			nodes[nn] = (struct tnode){0, 0, 0, 3, 0, 0};
			st[top++] = nn++;
			break;
		case RF_I_NOT:
			nodes[nn] = (struct tnode){0, 0, 0, 0, 0, 1};
			st[top - 1] = nn++;
			break;
		case RF_I_AND:
			b = st[--top];
			a = st[top - 1];
			if (nodes[a].kind == 0 ||
			    (nodes[b].kind != 0 &&
			     (nodes[b].heavy < nodes[a].heavy ||
			      (nodes[b].heavy == nodes[a].heavy &&
			       (nodes[b].p < nodes[a].p ||
				(nodes[b].p == nodes[a].p && nodes[b].size < nodes[a].size))))))
				st[top - 1] = b;
			break;
		case RF_I_OR:
			b = st[--top];
			a = st[top - 1];
			if (nodes[a].kind == 0 || nodes[b].kind == 0)
				nodes[nn] = (struct tnode){0, 0, 0, 0, 0, 1};
			else
				nodes[nn] = (struct tnode){a,
							   b,
							   nodes[a].size + nodes[b].size,
							   2,
							   nodes[a].heavy + nodes[b].heavy,
							   nodes[a].p + nodes[b].p};
			st[top - 1] = nn++;
			break;
		}
	}
	uint32_t root = st[0], n = 0, w = 0;
	if (nodes[root].kind == 0 || nodes[root].size > RF_TRIGGER_SET_MAX)
		return -1;
	walk[w++] = root;
	while (w) {
		const struct tnode *t = &nodes[walk[--w]];
		if (t->kind == 1)
			out[n++] = t->left;
		else if (t->kind == 2) {
			walk[w++] = t->left;
			walk[w++] = t->right;
		}
	}
	return (int)n;
}

static int build_triggers(struct rf_engine *e, struct rf_diag *d)
{
	const struct rf_pack *pk = e->pk;
	uint32_t maxlen = 1, *pool = NULL, *cnt = NULL, *rs_start = NULL, *rs_len = NULL;
	uint32_t *st = NULL, *walk = NULL;
	struct tnode *nodes = NULL;
	uint32_t *always_cnt = NULL;
	size_t total = 0;
	int r = -ENOMEM;

	for (uint32_t i = 0; i < pk->n_rules; i++)
		if (pk->rules[i].code_len > maxlen)
			maxlen = pk->rules[i].code_len;
	/* Every rule's final set is kept in sets[] (at most one entry per ATOM instruction). */
	pool = malloc(((size_t)maxlen + 1) * sizeof(*pool));
	walk = malloc(((size_t)maxlen + 1) * sizeof(*walk));
	nodes = malloc(((size_t)maxlen + 1) * sizeof(*nodes));
	st = malloc((RF_RULE_STACK_MAX + 1) * sizeof(*st));
	uint32_t *sets = malloc(((size_t)pk->n_code + 1) * sizeof(*sets));
	rs_start = calloc(pk->n_rules + 1, sizeof(*rs_start));
	rs_len = calloc(pk->n_rules + 1, sizeof(*rs_len));
	cnt = calloc((size_t)e->n_bits + 1, sizeof(*cnt));
	always_cnt = calloc(e->n_ev + 1, sizeof(*always_cnt));
	e->trig_off = calloc((size_t)e->n_bits + 1, sizeof(*e->trig_off));
	e->always = malloc((pk->n_rules + 1) * sizeof(*e->always));
	if (!pool || !walk || !nodes || !st || !sets || !rs_start || !rs_len || !cnt ||
	    !always_cnt || !e->trig_off || !e->always)
		goto out;
	size_t nsets = 0;
	for (uint32_t i = 0; i < pk->n_rules; i++) {
		int t = trigger_set(e, &pk->rules[i], nodes, st, walk, pool);
		if (t < 0) {
			rs_len[i] = UINT32_MAX;
			always_cnt[e->rule_ev[i]]++;
			continue;
		}
		rs_start[i] = (uint32_t)nsets;
		rs_len[i] = (uint32_t)t;
		memcpy(sets + nsets, pool, (size_t)t * sizeof(*sets));
		nsets += (size_t)t;
		for (int k = 0; k < t; k++)
			cnt[pool[k]]++;
	}
	for (uint32_t a = 0; a < e->n_bits; a++) {
		e->trig_off[a] = (uint32_t)total;
		total += cnt[a];
	}
	e->trig_off[e->n_bits] = (uint32_t)total;
	e->trig_rules = malloc((total + 1) * sizeof(*e->trig_rules));
	if (!e->trig_rules)
		goto out;
	memset(cnt, 0, ((size_t)e->n_bits + 1) * sizeof(*cnt));
	for (uint32_t i = 0; i < pk->n_rules; i++) {
		if (rs_len[i] == UINT32_MAX)
			continue;
		for (uint32_t k = 0; k < rs_len[i]; k++) {
			uint32_t a = sets[rs_start[i] + k];
			e->trig_rules[e->trig_off[a] + cnt[a]++] = i;
		}
	}
	uint32_t off = 0;
	for (size_t v = 0; v < e->n_ev; v++) {
		e->evs[v].always_off = off;
		e->evs[v].always_len = 0;
		off += always_cnt[v];
	}
	for (uint32_t i = 0; i < pk->n_rules; i++)
		if (rs_len[i] == UINT32_MAX) {
			struct evtype *et = &e->evs[e->rule_ev[i]];
			e->always[et->always_off + et->always_len++] = i;
		}
	r = 0;
out:
	free(pool);
	free(walk);
	free(nodes);
	free(st);
	free(sets);
	free(rs_start);
	free(rs_len);
	free(cnt);
	free(always_cnt);
	(void)d;
	return r;
}

/* Which matcher a string atom of a field goes to: RF_DB_CONTAINS (a literal contains),
 * RF_DB_OTHER (wildcards, a regular expression), or RF_NDB + kind for the literal set (eq,
 * startswith, endswith literals; a contains of the empty literal is a prefix of length 0: every
 * value). -1 for atoms no string matcher handles (EXISTS, NULL, FIELDREF, CIDR). lit receives
 * the unescaped literal (RF_PATTERN_MAX bytes), *ret_len its length. */
static int atom_class(const struct rf_pack *pk, const struct rf_patom *at, char *lit,
		      uint32_t *ret_len)
{
	const struct rf_pstr *p = &pk->strings[at->pattern];
	int len;

	if (at->op == RF_OP_EXISTS || at->op == RF_OP_NULL || at->op == RF_OP_FIELDREF ||
	    at->op == RF_OP_CIDR)
		return -1;
	if (at->op == RF_OP_REGEX || at->op > RF_OP_ENDSWITH || p->len > RF_PATTERN_MAX ||
	    (len = rf__glob_literal(p->s, p->len, lit)) < 0)
		return RF_DB_OTHER;
	*ret_len = (uint32_t)len;
	switch (at->op) {
	case RF_OP_EQ:
		return RF_NDB + RF_LIT_EQ;
	case RF_OP_STARTSWITH:
		return RF_NDB + RF_LIT_PREFIX;
	case RF_OP_ENDSWITH:
		return RF_NDB + RF_LIT_SUFFIX;
	default:
		return len ? RF_DB_CONTAINS : RF_NDB + RF_LIT_PREFIX;
	}
}

/* Every atom's class (e->acls) and every factor (e->factor, e->factors, e->n_bits). */
static int classify(struct rf_engine *e)
{
	const struct rf_pack *pk = e->pk;
	char lit[RF_PATTERN_MAX + 1];
	uint32_t na = pk->n_atoms, nfac = 0, len;
	size_t alen = 0;

	e->acls = malloc((size_t)na + 1);
	e->factor = malloc(((size_t)na + 1) * sizeof(*e->factor));
	if (!e->acls || !e->factor)
		return -ENOMEM;
	for (uint32_t a = 0; a < na; a++) {
		const struct rf_patom *at = &pk->atoms[a];
		const struct rf_pstr *p = &pk->strings[at->pattern];
		bool str = at->field != RF_PACK_NONE && pk->fields[at->field].type == RF_FT_STRING;
		int c = str ? atom_class(pk, at, lit, &len) : -1;
		e->acls[a] = c < 0 || c >= RF_NDB ? RF_NDB : (uint8_t)c;
		e->factor[a] = UINT32_MAX;
		len = c != RF_DB_OTHER	      ? 0
		      : at->op == RF_OP_REGEX ? rf__regex_factor(p->s, p->len, lit)
					      : rf__glob_factor(p->s, p->len, lit);
		if (len >= (at->op == RF_OP_REGEX ? 3u : 1u)) {
			e->factor[a] = na + nfac++;
			alen += len;
		}
	}
	e->n_bits = na + nfac;
	e->factors = malloc(((size_t)nfac + 1) * sizeof(*e->factors));
	e->factor_arena = malloc(alen + 1);
	if (!e->factors || !e->factor_arena)
		return -ENOMEM;
	alen = 0;
	for (uint32_t a = 0; a < na; a++) {
		if (e->factor[a] == UINT32_MAX)
			continue;
		const struct rf_pstr *p = &pk->strings[pk->atoms[a].pattern];
		len = pk->atoms[a].op == RF_OP_REGEX
			  ? rf__regex_factor(p->s, p->len, e->factor_arena + alen)
			  : rf__glob_factor(p->s, p->len, e->factor_arena + alen);
		e->factors[e->factor[a] - na].atom = a;
		e->factors[e->factor[a] - na].len = len;
		e->factors[e->factor[a] - na].lit = e->factor_arena + alen;
		alen += len;
	}
	return 0;
}

/* The contains literals and factors tmp[0..k) of field f in a Shift-And set (literal.h) when
 * their bytes fit in it: 0, -E2BIG (they do not: use a database), -ENOMEM. Case as in
 * make_exprs. */
static int small_contains(struct rf_engine *e, uint32_t f, const uint32_t *tmp, uint32_t k)
{
	const struct rf_pack *pk = e->pk;
	struct rf_lit_src src[64];
	char arena[64 + RF_PATTERN_MAX + 1];
	uint32_t total = 0;

	if (k > 64)
		return -E2BIG;
	for (uint32_t i = 0; i < k; i++) {
		bool fac = tmp[i] >= pk->n_atoms;
		const struct rf_patom *a =
		    &pk->atoms[fac ? e->factors[tmp[i] - pk->n_atoms].atom : tmp[i]];
		const struct rf_pstr *p = &pk->strings[a->pattern];
		int len;
		if (fac) {
			len = (int)e->factors[tmp[i] - pk->n_atoms].len;
			if ((uint32_t)len > 64 - total)
				return -E2BIG;
			memcpy(arena + total, e->factors[tmp[i] - pk->n_atoms].lit, (size_t)len);
		} else {
			if (p->len > RF_PATTERN_MAX)
				return -E2BIG;
			len = rf__glob_literal(p->s, p->len, arena + total); /* <= p->len bytes */
			if (len < 0 || (uint32_t)len > 64 - total)
				return -E2BIG;
		}
		src[i] = (struct rf_lit_src){arena + total, (uint32_t)len, tmp[i], 0,
					     (a->flags & RF_ATOM_CASED) && a->op != RF_OP_REGEX};
		total += (uint32_t)len;
	}
	return rf__shiftset_build(&e->pf[f].shift, src, k);
}

/*
 * The string matchers of field f: its eq/startswith/endswith literals in a literal set (hashing,
 * literal.c), its literal contains in a pure-literal Vectorscan database, everything else
 * (wildcards, regular expressions) in a regular one. Measured on the SigmaHQ process_creation
 * pack with callgrind: CommandLine cost 25,600 instructions per event in one database, 9,800
 * (contains literals) + 10,300 (wildcards, regex) + ~500 (literal set) split; a field with only
 * eq literals (IntegrityLevel, LogonId) needs no scan at all. tmp holds n_atoms entries.
 */
static int field_matchers(struct rf_engine *e, uint32_t f, uint32_t *tmp, struct rf_diag *d)
{
	const struct rf_pack *pk = e->pk;
	struct rf_lit_src *src = malloc(((size_t)pk->n_atoms + 1) * sizeof(*src));
	char *arena = NULL, lit[RF_PATTERN_MAX + 1];
	uint32_t nsrc = 0, k, len = 0;
	size_t alen = 0;
	int r = -ENOMEM;

	if (!src)
		return -ENOMEM;
	for (uint32_t a = 0; a < pk->n_atoms; a++)
		if (pk->atoms[a].field == f && atom_class(pk, &pk->atoms[a], lit, &len) >= RF_NDB)
			alen += len;
	if (!(arena = malloc(alen + 1)))
		goto out;
	alen = 0;
	for (uint32_t a = 0; a < pk->n_atoms; a++) {
		const struct rf_patom *at = &pk->atoms[a];
		int c = at->field == f ? atom_class(pk, at, lit, &len) : -1;
		if (c < RF_NDB)
			continue;
		memcpy(arena + alen, lit, len);
		src[nsrc++] = (struct rf_lit_src){arena + alen, len, a, (uint8_t)(c - RF_NDB),
						  (at->flags & RF_ATOM_CASED) != 0};
		alen += len;
	}
	if ((r = rf__litset_build(&e->pf[f].lits, src, nsrc)) < 0)
		goto out;
	for (int db = 0; db < RF_NDB; db++) {
		k = 0;
		for (uint32_t a = 0; a < pk->n_atoms; a++)
			if (pk->atoms[a].field == f && e->acls[a] == db)
				tmp[k++] = a;
		for (uint32_t j = 0; db == RF_DB_CONTAINS && j < e->n_bits - pk->n_atoms; j++)
			if (pk->atoms[e->factors[j].atom].field == f)
				tmp[k++] = pk->n_atoms + j;
		if (!k)
			continue;
		if (db == RF_DB_CONTAINS && (r = small_contains(e, f, tmp, k)) != -E2BIG) {
			if (r < 0)
				goto out;
			continue; /* matched by Shift-And, no database */
		}
		char what[RF_NAME_MAX + 64];
		snprintf(what, sizeof(what), "the %s patterns of field '%s'",
			 db == RF_DB_CONTAINS ? "literal" : "wildcard and regex",
			 rf__pack_str(pk, pk->fields[f].name));
		if ((r = compile_db(e, tmp, k, db == RF_DB_CONTAINS, what, &e->pf[f].db[db], d)) <
		    0)
			goto out;
	}
	r = 0;
out:
	free(src);
	free(arena);
	return r;
}

/*
 * RF_DB_DIRECT (engine.h): contains literals of 1 to RF_DIRECT_MAX bytes that trigger no rule
 * leave their field's literal database and are searched for directly when a rule that runs needs
 * them. Measured with callgrind on the SigmaHQ process_creation pack: the CommandLine
 * database's 1- and 2-byte literals ("/c", "-e", digits, homoglyphs) cost ~3,900 instructions an
 * event and its 3-byte ones ~1,300, because they match at most positions; most rules that read
 * them are decided by other atoms first. Needs the trigger index (build_triggers).
 */
static int directs(struct rf_engine *e)
{
	const struct rf_pack *pk = e->pk;
	char lit[RF_PATTERN_MAX + 1];
	uint32_t n = 0;

	e->didx = malloc(((size_t)pk->n_atoms + 1) * sizeof(*e->didx));
	e->directs = malloc(((size_t)pk->n_atoms + 1) * sizeof(*e->directs));
	if (!e->didx || !e->directs)
		return -ENOMEM;
	for (uint32_t a = 0; a < pk->n_atoms; a++) {
		const struct rf_patom *at = &pk->atoms[a];
		const struct rf_pstr *p = &pk->strings[at->pattern];
		int len;
		e->didx[a] = UINT32_MAX;
		if (e->acls[a] != RF_DB_CONTAINS || e->trig_off[a + 1] > e->trig_off[a] ||
		    p->len > RF_PATTERN_MAX || (len = rf__glob_literal(p->s, p->len, lit)) < 1 ||
		    len > RF_DIRECT_MAX)
			continue;
		struct direct *d = &e->directs[n];
		bool cased = (at->flags & RF_ATOM_CASED) != 0;
		d->atom = a;
		d->field = at->field;
		d->len = (uint32_t)len;
		for (int j = 0; j < len; j++) {
			uint8_t c = (uint8_t)lit[j];
			bool letter = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
			d->lo[j] = !cased && letter ? (uint8_t)(c | 0x20) : c;
			d->up[j] = !cased && letter ? (uint8_t)(c & ~0x20) : c;
		}
		e->didx[a] = n++;
		e->acls[a] = RF_DB_DIRECT;
	}
	e->n_directs = n;
	return 0;
}

/*
 * The run-time programs (engine.h): each rule's pack program with every value list of two or more
 * atoms, ATOM (ATOM OR)* or ATOM (ATOM AND)*, replaced by one RF_X_ANY/RF_X_ALL over its atoms'
 * words and masks. Measured on the SigmaHQ process_creation pack with callgrind: the
 * interpreter folded lists atom by atom for ~5,500 instructions per event. Needs e->acls and the
 * lazy flags (a list is marked lazy if an atom of it may be unknown). An atom index the pack
 * check let through out of range (it never does) is left as a plain ATOM for the interpreter to
 * refuse. Linear in the code size (sorting aside).
 */
static int cmp_atom(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * Short-circuit of top-level conjunctions (engine.h RF_X_REQ). Rule i's run-time program
 * code[0..len), already of list form, is c1 AND c2 AND ... ck at its top level (any nesting of
 * ANDs): it becomes c1 REQ c2 REQ ... ck, in the same order, so the first conjunct that is false
 * ends the rule (a rule that runs is almost always false: on the SigmaHQ process_creation bench
 * 417 alerts in 43,000 rules run). Same length (each AND becomes one REQ). Ordering the conjuncts
 * (known before lazy, positive before negated, those holding the rule's trigger atoms last) was
 * measured and gained at most 0.1 %: Sigma conditions already put the selection first and the
 * filters after it. A program that is not well formed (the verifier refused those) is left as it
 * is, for the interpreter's checks to refuse. tmp holds 4 * len + 4 words, cj len + 1.
 */
struct conj {
	uint32_t s, len;
};

static void split_conjuncts(uint32_t *code, uint32_t len, uint32_t *tmp, struct conj *cj)
{
	uint32_t *start = tmp, *stk = tmp + len + 1, *work = tmp + 2 * len + 2, depth = 0, nw = 0,
		 nc = 0;

	if (len < 3 || RF_INSN_OP(code[len - 1]) != RF_I_AND)
		return;
	/* start[k]: where the subprogram ending at k begins. */
	for (uint32_t k = 0; k < len; k++) {
		uint32_t op = RF_INSN_OP(code[k]);
		if (op == RF_I_AND || op == RF_I_OR) {
			if (depth < 2)
				return;
			depth--;
			start[k] = stk[depth - 1];
		} else if (op == RF_I_NOT) {
			if (depth < 1)
				return;
			start[k] = stk[depth - 1];
		} else if (op == RF_I_ATOM || op == RF_I_TRUE || op == RF_I_FALSE ||
			   op == RF_X_ANY || op == RF_X_ALL) {
			stk[depth++] = k;
			start[k] = k;
		} else {
			return;
		}
	}
	if (depth != 1)
		return;
	/* The conjuncts, left to right (work is a stack of subprogram ends, pushed right first). */
	work[nw++] = len - 1;
	while (nw) {
		uint32_t end = work[--nw], s = start[end];
		if (RF_INSN_OP(code[end]) == RF_I_AND) {
			uint32_t rs = start[end - 1];
			work[nw++] = end - 1;
			work[nw++] = rs - 1;
			continue;
		}
		cj[nc++] = (struct conj){s, end - s + 1};
	}
	uint32_t o = 0;
	for (uint32_t k = 0; k < nc; k++) {
		memcpy(stk + o, code + cj[k].s, cj[k].len * sizeof(*code));
		o += cj[k].len;
		if (k + 1 < nc)
			stk[o++] = RF_INSN(RF_X_REQ, 0);
	}
	if (o == len)
		memcpy(code, stk, len * sizeof(*code));
}

static int build_programs(struct rf_engine *e)
{
	const struct rf_pack *pk = e->pk;
	size_t nc = (size_t)pk->n_code + 1;
	uint32_t nx = 0, nl = 0, ng = 0, na = 0, maxlen = 1;
	int ret = -ENOMEM;

	for (uint32_t i = 0; i < pk->n_rules; i++)
		if (pk->rules[i].code_len <= pk->n_code && pk->rules[i].code_len > maxlen)
			maxlen = pk->rules[i].code_len;
	uint32_t *tmp = malloc(((size_t)maxlen * 4 + 4) * sizeof(*tmp));
	struct conj *cj = malloc(((size_t)maxlen + 1) * sizeof(*cj));
	e->xcode = malloc(nc * sizeof(*e->xcode));
	e->xlists = malloc((nc / 2 + 1) * sizeof(*e->xlists));
	e->xgroups = malloc(nc * sizeof(*e->xgroups));
	e->xatoms = malloc(nc * sizeof(*e->xatoms));
	if (!tmp || !cj || !e->xcode || !e->xlists || !e->xgroups || !e->xatoms)
		goto out;
	for (uint32_t i = 0; i < pk->n_rules; i++) {
		const struct rf_prule *r = &pk->rules[i];
		if (r->code_off > pk->n_code || r->code_len > pk->n_code - r->code_off) {
			e->xr[i].off = 0;
			e->xr[i].len = UINT32_MAX; /* the interpreter refuses it */
			continue;
		}
		const uint32_t *code = pk->code + r->code_off;
		e->xr[i].off = nx;
		for (uint32_t k = 0; k < r->code_len; k++) {
			uint32_t in = code[k], op = 0, j = k + 1;
			if (RF_INSN_OP(in) == RF_I_ATOM && RF_INSN_ARG(in) < pk->n_atoms &&
			    k + 2 < r->code_len && RF_INSN_OP(code[k + 1]) == RF_I_ATOM &&
			    RF_INSN_ARG(code[k + 1]) < pk->n_atoms &&
			    (code[k + 2] == RF_INSN(RF_I_OR, 0) ||
			     code[k + 2] == RF_INSN(RF_I_AND, 0)))
				op = code[k + 2];
			if (!op) {
				e->xcode[nx++] = in;
				continue;
			}
			/* The list: code[k], then pairs (ATOM op) from j on. */
			uint32_t a0 = na;
			e->xatoms[na++] = RF_INSN_ARG(in);
			while (j + 1 < r->code_len && RF_INSN_OP(code[j]) == RF_I_ATOM &&
			       RF_INSN_ARG(code[j]) < pk->n_atoms && code[j + 1] == op) {
				e->xatoms[na++] = RF_INSN_ARG(code[j]);
				j += 2;
			}
			qsort(e->xatoms + a0, na - a0, sizeof(*e->xatoms), cmp_atom);
			uint32_t n = 0;
			for (uint32_t t = a0; t < na; t++)
				if (n == 0 || e->xatoms[a0 + n - 1] != e->xatoms[t])
					e->xatoms[a0 + n++] = e->xatoms[t];
			na = a0 + n;
			struct xlist *l = &e->xlists[nl];
			l->aoff = a0, l->alen = n, l->goff = ng, l->lazy = false;
			for (uint32_t t = a0; t < na; t++) {
				uint32_t a = e->xatoms[t], c = e->acls[a], f = pk->atoms[a].field;
				if (ng == l->goff || e->xgroups[ng - 1].word != a >> 6)
					e->xgroups[ng++] = (struct xgroup){a >> 6, 0};
				e->xgroups[ng - 1].mask |= 1ull << (a & 63);
				if ((c < RF_NDB && f < pk->n_fields && e->pf[f].lazy[c]) ||
				    c == RF_DB_DIRECT)
					l->lazy = true;
			}
			l->glen = ng - l->goff;
			e->xcode[nx++] =
			    RF_INSN(op == RF_INSN(RF_I_OR, 0) ? RF_X_ANY : RF_X_ALL, nl);
			nl++;
			k = j - 1;
		}
		e->xr[i].len = nx - e->xr[i].off;
		split_conjuncts(e->xcode + e->xr[i].off, e->xr[i].len, tmp, cj);
	}
	e->n_xcode = nx;
	e->n_xlists = nl;
	e->n_xatoms = na;
	ret = 0;
out:
	free(tmp);
	free(cj);
	return ret;
}

static int build(struct rf_engine *e, const struct rf_manifest *m, struct rf_diag *d)
{
	const struct rf_pack *pk = e->pk;
	size_t nmf = 0, names_len = 0;
	uint32_t *tmp = NULL, *seen = NULL, *dseen = NULL;
	int r = -ENOMEM;

	e->n_ev = rf__manifest_nevents(m);
	e->evs = calloc(e->n_ev + 1, sizeof(*e->evs));
	if (!e->evs)
		return -ENOMEM;
	for (size_t v = 0; v < e->n_ev; v++) {
		const char *nm = rf__manifest_event_name(m, v);
		e->evs[v].name_len = strlen(nm);
		e->evs[v].open = rf__manifest_event_open_at(m, v);
		if (!(e->evs[v].name = strdup(nm)))
			return -ENOMEM;
		nmf += rf__manifest_event_nfields_at(m, v);
		for (size_t f = 0; f < rf__manifest_event_nfields_at(m, v); f++)
			names_len += strlen(rf__manifest_field_name(m, v, f)) + 1;
	}
	/* Field lookup table over every manifest field. */
	e->nslots = 16;
	while (e->nslots < nmf * 2)
		e->nslots *= 2;
	e->slots = calloc(e->nslots, sizeof(*e->slots));
	e->names = malloc(names_len + 1);
	e->pf = calloc(pk->n_fields + 1, sizeof(*e->pf));
	e->rule_ev = calloc(pk->n_rules + 1, sizeof(*e->rule_ev));
	if (!e->slots || !e->names || !e->pf || !e->rule_ev)
		return -ENOMEM;
	char *np = e->names;
	for (size_t v = 0; v < e->n_ev; v++)
		for (size_t f = 0; f < rf__manifest_event_nfields_at(m, v); f++) {
			const char *fn = rf__manifest_field_name(m, v, f);
			size_t l = strlen(fn);
			memcpy(np, fn, l + 1);
			uint32_t h = slot_hash((uint32_t)v, fn, l) & (e->nslots - 1);
			while (e->slots[h].name)
				h = (h + 1) & (e->nslots - 1);
			e->slots[h] = (struct fslot){(uint32_t)v, np, (uint32_t)l, -1,
						     (uint8_t)rf__manifest_field_type_at(m, v, f)};
			np += l + 1;
		}
	/* Resolve pack fields (all verified to be supplied with the same type). */
	for (uint32_t i = 0; i < pk->n_fields; i++) {
		const char *ev = rf__pack_str(pk, pk->fields[i].event);
		const char *fn = rf__pack_str(pk, pk->fields[i].name);
		int v = rf__manifest_event_index(m, ev);
		if (v < 0)
			continue; /* no rule uses it (verified), so it needs no matcher */
		uint32_t h = slot_hash((uint32_t)v, fn, strlen(fn)) & (e->nslots - 1);
		while (e->slots[h].name) {
			if (e->slots[h].ev == (uint32_t)v && !strcmp(e->slots[h].name, fn)) {
				e->slots[h].pf = (int32_t)i;
				break;
			}
			h = (h + 1) & (e->nslots - 1);
		}
		e->pf[i].ev = (uint32_t)v;
		e->pf[i].ev_ok = true;
	}
	for (uint32_t i = 0; i < pk->n_rules; i++)
		e->rule_ev[i] =
		    (uint32_t)rf__manifest_event_index(m, rf__pack_str(pk, pk->rules[i].event));
	/* Group atoms per field and kind (counting sort by field). */
	uint32_t na = pk->n_atoms, nf = pk->n_fields;
	uint32_t *cs = calloc(nf + 1, sizeof(*cs)), *cn = calloc(nf + 1, sizeof(*cn));
	uint32_t *ce = calloc(nf + 1, sizeof(*ce)), *cu = calloc(nf + 1, sizeof(*cu));
	uint32_t nkw = 0;
	tmp = malloc((na + 1) * sizeof(*tmp));
	e->nums = malloc((na + 1) * sizeof(*e->nums));
	e->pres = malloc((na + 1) * sizeof(*e->pres));
	e->nulls = malloc((na + 1) * sizeof(*e->nulls));
	e->nullfields = malloc((nf + 1) * sizeof(*e->nullfields));
	if (!cs || !cn || !ce || !cu || !tmp || !e->nums || !e->pres || !e->nulls || !e->nullfields)
		goto out;
	for (uint32_t a = 0; a < na; a++) {
		const struct rf_patom *at = &pk->atoms[a];
		if (at->field == RF_PACK_NONE)
			continue;
		if (at->op == RF_OP_EXISTS)
			ce[at->field]++;
		else if (at->op == RF_OP_NULL)
			cu[at->field]++;
		else if (at->op == RF_OP_FIELDREF)
			continue; /* compared in prepare_event, no database */
		else if (pk->fields[at->field].type == RF_FT_STRING && at->op != RF_OP_CIDR)
			cs[at->field]++;
		else
			cn[at->field]++;
	}
	uint32_t on = 0, oe = 0, ou = 0;
	for (uint32_t f = 0; f < nf; f++) {
		e->pf[f].num_off = on;
		on += cn[f];
		e->pf[f].pres_off = oe;
		oe += ce[f];
		e->pf[f].null_off = ou;
		ou += cu[f];
	}
	for (uint32_t a = 0; a < na; a++) {
		const struct rf_patom *at = &pk->atoms[a];
		const struct rf_pstr *p = &pk->strings[at->pattern];
		if (at->field == RF_PACK_NONE) {
			nkw++;
			continue;
		}
		struct pfield_rt *f = &e->pf[at->field];
		uint8_t t = pk->fields[at->field].type;
		if (at->op == RF_OP_EXISTS) {
			e->pres[f->pres_off + f->pres_len++] = a;
		} else if (at->op == RF_OP_NULL) {
			e->nulls[f->null_off + f->null_len++] = a;
		} else if (at->op == RF_OP_FIELDREF) {
			continue;
		} else if (t != RF_FT_STRING || at->op == RF_OP_CIDR) {
			struct numatom *nm = &e->nums[f->num_off + f->num_len++];
			memset(nm, 0, sizeof(*nm));
			nm->atom = a;
			nm->op = at->op;
			if (t == RF_FT_INT) {
				(void)rf__pack_parse_int(p->s, p->len, &nm->iv);
			} else if (at->op == RF_OP_CIDR) {
				unsigned bits = 0;
				(void)rf__pack_parse_cidr(p->s, p->len, nm->ip, &bits);
				nm->bits = (uint8_t)bits;
			} else {
				(void)rf__pack_parse_ip(p->s, p->len, nm->ip);
			}
		}
	}
	/* Per-field string matchers, by pattern class (classify, field_matchers). */
	if ((r = classify(e)) < 0)
		goto out;
	/* FIELDREF atoms, grouped per event type (both fields are of the atom's event; the
	 * verifier proved it), by counting sort: linear in atoms + events. */
	e->frefs = malloc((na + 1) * sizeof(*e->frefs));
	if (!e->frefs) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t a = 0; a < na; a++) {
		const struct rf_patom *at = &pk->atoms[a];
		if (at->op == RF_OP_FIELDREF && at->field < nf && at->ref < nf &&
		    e->pf[at->field].ev_ok)
			e->evs[e->pf[at->field].ev].fr_len++;
	}
	uint32_t nfr = 0;
	for (size_t v = 0; v < e->n_ev; v++) {
		e->evs[v].fr_off = nfr;
		nfr += e->evs[v].fr_len;
		e->evs[v].fr_len = 0;
	}
	for (uint32_t a = 0; a < na; a++) {
		const struct rf_patom *at = &pk->atoms[a];
		if (at->op == RF_OP_FIELDREF && at->field < nf && at->ref < nf &&
		    e->pf[at->field].ev_ok) {
			struct evtype *et = &e->evs[e->pf[at->field].ev];
			e->frefs[et->fr_off + et->fr_len++] = a;
		}
	}
	/* Fields with NULL atoms, grouped per event (absent fields make them true). */
	uint32_t nfo = 0;
	for (size_t v = 0; v < e->n_ev; v++) {
		e->evs[v].nf_off = nfo;
		for (uint32_t f = 0; f < nf; f++)
			if (e->pf[f].null_len && e->pf[f].ev == v &&
			    rf__manifest_event_index(m, rf__pack_str(pk, pk->fields[f].event)) ==
				(int)v)
				e->nullfields[nfo++] = f;
		e->evs[v].nf_len = nfo - e->evs[v].nf_off;
	}
	r = build_triggers(e, d);
	if (r < 0)
		goto out;
	/* Wildcard and regex atoms that trigger rules themselves (no factor) go to the field's
	 * RF_DB_HEAVY database, scanned for every event; the rest stay in RF_DB_OTHER, which can
	 * then be lazy. */
	for (uint32_t a = 0; a < na; a++)
		if (e->acls[a] == RF_DB_OTHER && e->trig_off[a + 1] > e->trig_off[a])
			e->acls[a] = RF_DB_HEAVY;
		else if (e->acls[a] == RF_DB_OTHER && e->factor[a] == UINT32_MAX)
			e->acls[a] = RF_DB_BARE;
	if ((r = directs(e)) < 0)
		goto out;
	e->digests = calloc((size_t)nf * RF_NDB + 2, sizeof(*e->digests));
	if (!e->digests)
		goto out;
	for (uint32_t f = 0; f < nf; f++)
		if (cs[f] && (r = field_matchers(e, f, tmp, d)) < 0)
			goto out;
	if (nkw) {
		uint32_t k = 0;
		for (uint32_t a = 0; a < na; a++)
			if (pk->atoms[a].field == RF_PACK_NONE)
				tmp[k++] = a;
		r = compile_db(e, tmp, k, false, "the keyword patterns", &e->kwdb, d);
		if (r < 0)
			goto out;
	}
	if (e->pre && e->ipre != e->npre) {
		r = -ESTALE;
		goto out;
	}
	/* Lazy databases: none of their atoms triggers a rule (factors stand in for globs). */
	seen = calloc((size_t)nf * RF_NDB + 1, sizeof(*seen));
	e->lazy_off = calloc(pk->n_rules + 1, sizeof(*e->lazy_off));
	e->lazy_len = calloc(pk->n_rules + 1, sizeof(*e->lazy_len));
	e->lazy_fields = malloc(((size_t)pk->n_code + 1) * sizeof(*e->lazy_fields));
	if (!seen || !e->lazy_off || !e->lazy_len || !e->lazy_fields) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t f = 0; f < nf; f++)
		for (int k = 0; k < RF_NDB; k++)
			e->pf[f].lazy[k] = e->pf[f].db[k] != NULL;
	for (uint32_t a = 0; a < e->n_bits; a++) {
		if (e->trig_off[a + 1] == e->trig_off[a])
			continue;
		uint32_t at = a < na ? a : e->factors[a - na].atom;
		uint8_t c = a < na ? e->acls[a] : RF_DB_CONTAINS;
		if (c < RF_NDB)
			e->pf[pk->atoms[at].field].lazy[c] = false;
	}
	e->dir_off = calloc(pk->n_rules + 1, sizeof(*e->dir_off));
	e->dir_len = calloc(pk->n_rules + 1, sizeof(*e->dir_len));
	e->dir_list = malloc(((size_t)pk->n_code + 1) * sizeof(*e->dir_list));
	dseen = calloc((size_t)e->n_directs + 1, sizeof(*dseen));
	e->xr = calloc(pk->n_rules + 1, sizeof(*e->xr));
	e->mayunk = calloc(pk->n_atoms + 1, sizeof(*e->mayunk));
	if (!e->dir_off || !e->dir_len || !e->dir_list || !dseen || !e->xr || !e->mayunk) {
		r = -ENOMEM;
		goto out;
	}
	uint32_t nl = 0, nd = 0;
	for (uint32_t i = 0; i < pk->n_rules; i++) {
		const struct rf_prule *ru = &pk->rules[i];
		e->lazy_off[i] = nl;
		e->dir_off[i] = nd;
		for (uint32_t k = 0; k < ru->code_len; k++) {
			uint32_t in = pk->code[ru->code_off + k], a = RF_INSN_ARG(in);
			if (RF_INSN_OP(in) != RF_I_ATOM || e->acls[a] == RF_NDB)
				continue;
			if (e->acls[a] == RF_DB_DIRECT) {
				uint32_t x = e->didx[a];
				if (dseen[x] != i + 1) {
					dseen[x] = i + 1;
					e->dir_list[nd++] = x;
				}
				continue;
			}
			uint32_t f = pk->atoms[a].field, x = f * RF_NDB + e->acls[a];
			if (!e->pf[f].lazy[e->acls[a]] || seen[x] == i + 1)
				continue;
			seen[x] = i + 1;
			e->lazy_fields[nl++] = x;
		}
		e->lazy_len[i] = nl - e->lazy_off[i];
		e->dir_len[i] = nd - e->dir_off[i];
		e->xr[i].ev = e->rule_ev[i];
		e->xr[i].needs = (uint8_t)((e->lazy_len[i] ? RF_NEEDS_LAZY : 0) |
					   (e->dir_len[i] ? RF_NEEDS_DIRECT : 0));
	}
	for (uint32_t a = 0; a < pk->n_atoms; a++) {
		uint32_t c = e->acls[a], f = pk->atoms[a].field;
		e->mayunk[a] =
		    c == RF_DB_DIRECT || (c < RF_NDB && f < pk->n_fields && e->pf[f].lazy[c]);
	}
	r = build_programs(e);
out:
	free(seen);
	free(dseen);
	free(cs);
	free(cn);
	free(ce);
	free(cu);
	free(tmp);
	return r;
}

int rf_engine_load(const uint8_t *p, size_t n, const struct rf_manifest *m, struct rf_engine **ret,
		   struct rf_diag *d)
{
	return rf__engine_load_with(p, n, m, NULL, NULL, 0, ret, d);
}

uint32_t rf__engine_ndbs(const struct rf_engine *e)
{
	uint32_t k = e->kwdb != NULL;

	for (uint32_t f = 0; f < e->pk->n_fields; f++)
		for (int c = 0; c < RF_NDB; c++)
			k += e->pf[f].db[c] != NULL;
	return k;
}

const hs_database_t *rf__engine_db(const struct rf_engine *e, uint32_t i, const uint8_t **digest)
{
	*digest = i < e->ndigests ? e->digests[i] : NULL;
	for (uint32_t f = 0; f < e->pk->n_fields; f++)
		for (int c = 0; c < RF_NDB; c++)
			if (e->pf[f].db[c] && i-- == 0)
				return e->pf[f].db[c];
	return i == 0 ? e->kwdb : NULL;
}

int rf__engine_load_with(const uint8_t *p, size_t n, const struct rf_manifest *m,
			 hs_database_t **pre, const uint8_t (*pre_digests)[32], uint32_t npre,
			 struct rf_engine **ret, struct rf_diag *d)
{
	struct rf_engine *e;
	struct rf_pack *pk = NULL;
	int r = rf_pack_open(p, n, &pk, d);

	if (r < 0)
		return r;
	r = rf_pack_check(pk, m, d);
	if (r < 0) {
		rf_pack_free(pk);
		return r;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		rf_pack_free(pk);
		return -ENOMEM;
	}
	e->pk = pk;
	e->serial = __atomic_add_fetch(&engine_serial, 1, __ATOMIC_RELAXED);
	e->pre = pre;
	e->pre_digests = pre_digests;
	e->npre = npre;
	e->agent = strdup(rf_manifest_agent(m));
	e->version = strdup(rf_manifest_version(m));
	/* Open events (schemaless logs): a lookup slot for each field a rule reads from them. */
	struct rf_manifest *mm = NULL;
	r = e->agent && e->version ? rf__manifest_with_pack_fields(m, pk, &mm) : -ENOMEM;
	if (r >= 0)
		r = build(e, mm ? mm : m, d);
	rf_manifest_free(mm);
	e->pre = NULL;
	if (r < 0) {
		rf_engine_free(e);
		return r;
	}
	*ret = e;
	return 0;
}
