/*
 * The engine: a verified pack turned into matchers, and the interpreter that evaluates events.
 *
 * Model. Each atom is one predicate on one field; each rule is a jump-free postfix program over
 * atom bits, so its cost is bounded by its length (P3). Per event the engine
 *   0. refuses the event as a whole if a field value is longer than RF_EVENT_VALUE_MAX or all
 *      values together are longer than RF_EVENT_LINE_MAX (counted as oversize): every value
 *      that is matched is matched whole, never cut, and the scan cost stays linear;
 *   1. looks up each field the event carries (only fields the manifest supplies count);
 *   2. scans each string field that has atoms with that field's Vectorscan database (one per
 *      field, compiled here from the verified pattern text, never deserialised from the pack),
 *      and every string field with the keyword database; int and ip atoms are compared natively;
 *      EXISTS/NULL atoms come from presence;
 *   3. each atom that matches marks the rules in its trigger list as candidates (the prefilter:
 *      a rule's trigger set is a set of atoms at least one of which must match for the rule to
 *      be true, computed at load); rules without a trigger set always run;
 *   4. runs the candidate programs, re-checking every atom index and the stack at run time
 *      (defence in depth: a violation is counted and the rule is false, never a fault).
 * Events are evaluated in batches (rf_engine_eval is a batch of one): step 1 per event, step 2
 * per field database over the whole batch (each database enters the cache once per batch),
 * steps 3-4 per event. Cost per event is docs/engine.md's bound. Nothing is allocated per event:
 * all per-event state lives in the caller's scratch, reset by stamps rather than by clearing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>

#include "common/buf.h"
#include "common/util.h"
#include "content/cache.h"
#include "content/pack.h"
#include "ringfence/limits.h"

struct fslot {		  /* one manifest field in the lookup table */
	uint32_t ev;	  /* manifest event index */
	const char *name; /* manifest field name (owned by names arena) */
	uint32_t name_len;
	int32_t pf;   /* pack field index or -1 */
	uint8_t type; /* manifest type */
};

struct numatom {
	uint32_t atom;
	uint8_t op;    /* RF_OP_EQ, RF_OP_GT.. on int fields; RF_OP_EQ, RF_OP_CIDR on ip fields */
	uint8_t bits; /* RF_OP_CIDR: prefix length (0-128) over the 16-byte address */
	int64_t iv;
	uint8_t ip[16];
};

/* Does the field's parsed value (iv for int, ip for ip fields) satisfy the atom? */
static bool num_match(const struct numatom *nm, uint8_t type, int64_t iv, const uint8_t ip[16])
{
	if (type == RF_FT_IP)
		return nm->op == RF_OP_CIDR ? rf__pack_ip_in(ip, nm->ip, nm->bits)
					    : !memcmp(nm->ip, ip, 16);
	switch (nm->op) {
	case RF_OP_GT:
		return iv > nm->iv;
	case RF_OP_GTE:
		return iv >= nm->iv;
	case RF_OP_LT:
		return iv < nm->iv;
	case RF_OP_LTE:
		return iv <= nm->iv;
	default:
		return iv == nm->iv;
	}
}

struct pfield_rt {
	hs_database_t *db; /* string atoms on this field (NULL if none) */
	bool lazy;	   /* none of them triggers a rule: scan only if a rule that runs reads
			    * the field (phase 3), not for every event (phase 2) */
	uint32_t num_off, num_len;   /* int/ip atoms in e->nums */
	uint32_t pres_off, pres_len; /* EXISTS atoms in e->pres */
	uint32_t null_off, null_len; /* NULL atoms in e->nulls */
	uint32_t ev;		     /* manifest event index (if ev_ok) */
	bool ev_ok;		     /* the field's event is one the manifest supplies */
};

struct evtype {
	char *name;
	size_t name_len;
	uint32_t always_off, always_len; /* rules without a trigger set */
	uint32_t nf_off, nf_len;	 /* pack fields of this event that have NULL atoms */
	uint32_t fr_off, fr_len;	 /* FIELDREF atoms on this event's fields, in e->frefs */
};

struct rf_engine {
	struct rf_pack *pk;
	char *agent, *version; /* the manifest's, for diagnostics */
	size_t n_ev;
	struct evtype *evs;
	struct fslot *slots;
	uint32_t nslots;
	char *names;
	struct pfield_rt *pf;
	hs_database_t *kwdb;
	struct numatom *nums;
	uint32_t *pres, *nulls, *nullfields, *always;
	uint32_t *frefs;		 /* FIELDREF atoms, grouped per event type */
	uint32_t *trig_off, *trig_rules; /* CSR: atom -> rules */
	uint32_t *rule_ev;		 /* manifest event of each rule */
	uint32_t *lazy_off, *lazy_len;	 /* per rule: the lazy fields it reads */
	uint32_t *lazy_fields;
	size_t scratch_bytes;
	/* Loading from a cache (cache.c): databases to use instead of compiling, in db order
	 * (fields with string atoms ascending, then keywords); taken ones are set to NULL. */
	hs_database_t **pre;
	const uint8_t (*pre_digests)[32];
	uint32_t npre, ipre;
	uint8_t (*digests)[32]; /* of each database, in db order (make_exprs) */
	uint32_t ndigests;
};

struct rf_engine_scratch {
	const struct rf_engine *e;
	hs_scratch_t *hs;
	size_t words;	       /* 64-bit words of one event's atom bit set */
	uint64_t *bits;	       /* RF_ENGINE_BATCH_MAX bit sets */
	uint64_t *cur;	       /* the bit set Vectorscan matches go to */
	uint32_t *field_stamp; /* [slot * n_fields + f] == stamp: field f present in event slot */
	const char **fval;     /* [slot * n_fields + f]: its value (whole: see oversize()) */
	uint32_t *flen;
	uint32_t *rule_stamp, *cand, *matches, *lazy_stamp;
	uint32_t n_cand, n_matches, stamp, rstamp;
	uint32_t ev_type[RF_ENGINE_BATCH_MAX];
	/* Events from one source list their fields in the same order: remember which lookup slot
	 * field i of the last event resolved to and try it first (its name is still compared). */
	uint32_t layout[RF_EVENT_FIELDS_MAX];
	struct rf_engine_stats st;
};

static uint32_t slot_hash(uint32_t ev, const void *name, size_t n)
{
	return rf_fnv1a32(name, n, RF_FNV1A32_INIT ^ (ev * 2654435761u));
}

void rf_engine_free(struct rf_engine *e)
{
	if (!e)
		return;
	if (e->pf)
		for (uint32_t i = 0; i < e->pk->n_fields; i++)
			hs_free_database(e->pf[i].db);
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

/* The expressions of the string atoms in atoms[0..n) (Vectorscan's input), and their digest:
 * SHA-256 over every expression, its flags and its id, so a cached database is used only for
 * exactly the expressions it was compiled from (whatever changed: the pack, or how this build
 * turns patterns into expressions). */
static int make_exprs(const struct rf_engine *e, const uint32_t *atoms, uint32_t n, char **exprs,
		      unsigned *flags, unsigned *ids, uint8_t digest[32], struct rf_diag *d)
{
	const struct rf_pack *pk = e->pk;
	struct rf_buf b = RF_BUF_INIT(SIZE_MAX - 1);
	int r = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct rf_patom *a = &pk->atoms[atoms[i]];
		const struct rf_pstr *p = &pk->strings[a->pattern];
		size_t cap = RF_GLOB_REGEX_MAX(p->len) + 1;
		int len;
		exprs[i] = malloc(cap);
		if (!exprs[i]) {
			r = -ENOMEM;
			goto out;
		}
		if ((len = rf__pack_glob_regex(a->op, p->s, p->len, exprs[i], cap)) < 0) {
			r = rf_diag_report(d, -E2BIG, "engine: atom %u: pattern too long",
					   atoms[i]);
			goto out;
		}
		flags[i] = rf__pack_hs_flags(a->op, a->flags);
		ids[i] = atoms[i];
		uint32_t tail[2] = {flags[i], ids[i]};
		if ((r = rf_buf_append(&b, exprs[i], (size_t)len + 1)) < 0 ||
		    (r = rf_buf_append(&b, tail, sizeof(tail))) < 0)
			goto out;
	}
	rf_sha256(b.p, b.n, digest);
out:
	rf_buf_free(&b);
	return r;
}

/* Build the database of the string atoms in atoms[0..n): taken from the cache when it holds one
 * for exactly these expressions, else compiled. */
static int compile_db(struct rf_engine *e, const uint32_t *atoms, uint32_t n, const char *what,
		      hs_database_t **ret, struct rf_diag *d)
{
	char **exprs = calloc(n, sizeof(*exprs));
	unsigned *flags = calloc(n, sizeof(*flags)), *ids = calloc(n, sizeof(*ids));
	hs_compile_error_t *err = NULL;
	uint8_t *digest = e->digests[e->ndigests];
	int r = 0;

	if (!exprs || !flags || !ids) {
		r = -ENOMEM;
		goto out;
	}
	r = make_exprs(e, atoms, n, exprs, flags, ids, digest, d);
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
	if (hs_compile_multi((const char *const *)exprs, flags, ids, n, HS_MODE_BLOCK,
			     have_plat ? &plat : NULL, ret, &err) != HS_SUCCESS) {
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
	free(flags);
	free(ids);
	return r;
}

/*
 * Trigger sets, computed symbolically over the program: ATOM a -> {a} (a NULL atom, true when
 * the field is absent, -> "all": no set); TRUE -> all; FALSE -> {} (never true); NOT x -> all;
 * x AND y -> the smaller of the two sets (either must match); x OR y -> their union (all if either
 * is all). Sets are trees of union nodes (one node per instruction, each used once), flattened at
 * the end, so the cost is linear in the program length.
 */
struct tnode {
	uint32_t left, right; /* children for a union; left = atom for a leaf */
	uint32_t size;	      /* upper bound of the set's size */
	uint8_t kind;	      /* 0 all, 1 leaf, 2 union, 3 empty */
};

/* Returns the number of atoms written to out (at most code_len), or -1 for "all". */
static int trigger_set(const struct rf_pack *pk, const struct rf_prule *r, struct tnode *nodes,
		       uint32_t *st, uint32_t *walk, uint32_t *out)
{
	uint32_t top = 0, nn = 0;

	for (uint32_t k = 0; k < r->code_len; k++) {
		uint32_t in = pk->code[r->code_off + k], op = RF_INSN_OP(in), a, b;
		switch (op) {
		case RF_I_ATOM:
			if (pk->atoms[RF_INSN_ARG(in)].op == RF_OP_NULL)
				nodes[nn] = (struct tnode){0, 0, 0, 0};
			else
				nodes[nn] = (struct tnode){RF_INSN_ARG(in), 0, 1, 1};
			st[top++] = nn++;
			break;
		case RF_I_TRUE:
			nodes[nn] = (struct tnode){0, 0, 0, 0};
			st[top++] = nn++;
			break;
		case RF_I_FALSE:
			nodes[nn] = (struct tnode){0, 0, 0, 3};
			st[top++] = nn++;
			break;
		case RF_I_NOT:
			nodes[nn] = (struct tnode){0, 0, 0, 0};
			st[top - 1] = nn++;
			break;
		case RF_I_AND:
			b = st[--top];
			a = st[top - 1];
			if (nodes[a].kind == 0 ||
			    (nodes[b].kind != 0 && nodes[b].size < nodes[a].size))
				st[top - 1] = b;
			break;
		case RF_I_OR:
			b = st[--top];
			a = st[top - 1];
			if (nodes[a].kind == 0 || nodes[b].kind == 0)
				nodes[nn] = (struct tnode){0, 0, 0, 0};
			else
				nodes[nn] = (struct tnode){a, b, nodes[a].size + nodes[b].size, 2};
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
	cnt = calloc((size_t)pk->n_atoms + 1, sizeof(*cnt));
	always_cnt = calloc(e->n_ev + 1, sizeof(*always_cnt));
	e->trig_off = calloc((size_t)pk->n_atoms + 1, sizeof(*e->trig_off));
	e->always = malloc((pk->n_rules + 1) * sizeof(*e->always));
	if (!pool || !walk || !nodes || !st || !sets || !rs_start || !rs_len || !cnt ||
	    !always_cnt || !e->trig_off || !e->always)
		goto out;
	size_t nsets = 0;
	for (uint32_t i = 0; i < pk->n_rules; i++) {
		int t = trigger_set(pk, &pk->rules[i], nodes, st, walk, pool);
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
	for (uint32_t a = 0; a < pk->n_atoms; a++) {
		e->trig_off[a] = (uint32_t)total;
		total += cnt[a];
	}
	e->trig_off[pk->n_atoms] = (uint32_t)total;
	e->trig_rules = malloc((total + 1) * sizeof(*e->trig_rules));
	if (!e->trig_rules)
		goto out;
	memset(cnt, 0, ((size_t)pk->n_atoms + 1) * sizeof(*cnt));
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

static int build(struct rf_engine *e, const struct rf_manifest *m, struct rf_diag *d)
{
	const struct rf_pack *pk = e->pk;
	size_t nmf = 0, names_len = 0;
	uint32_t *tmp = NULL;
	int r = -ENOMEM;

	e->n_ev = rf__manifest_nevents(m);
	e->evs = calloc(e->n_ev + 1, sizeof(*e->evs));
	if (!e->evs)
		return -ENOMEM;
	for (size_t v = 0; v < e->n_ev; v++) {
		const char *nm = rf__manifest_event_name(m, v);
		e->evs[v].name_len = strlen(nm);
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
	/* Per-field string databases. Measured alternatives, both slower on the SigmaHQ set:
	 * splitting a field's patterns into literal / anchored / wildcard databases (no gain), and
	 * scanning non-trigger patterns (filters) in a second database only when a candidate rule
	 * needs them (~25% slower: most events then scan CommandLine twice; Vectorscan's cost here
	 * is dominated by the per-scan overhead, not by the number of patterns). */
	e->digests = calloc((size_t)nf + 2, sizeof(*e->digests));
	if (!e->digests)
		goto out;
	for (uint32_t f = 0; f < nf; f++) {
		uint32_t k = 0;
		if (!cs[f])
			continue;
		for (uint32_t a = 0; a < na; a++) {
			const struct rf_patom *at = &pk->atoms[a];
			if (at->field == f && at->op != RF_OP_EXISTS && at->op != RF_OP_NULL &&
			    at->op != RF_OP_FIELDREF && at->op != RF_OP_CIDR)
				tmp[k++] = a;
		}
		char what[RF_NAME_MAX + 64];
		snprintf(what, sizeof(what), "the patterns of field '%s'",
			 rf__pack_str(pk, pk->fields[f].name));
		r = compile_db(e, tmp, k, what, &e->pf[f].db, d);
		if (r < 0)
			goto out;
	}
	if (nkw) {
		uint32_t k = 0;
		for (uint32_t a = 0; a < na; a++)
			if (pk->atoms[a].field == RF_PACK_NONE)
				tmp[k++] = a;
		r = compile_db(e, tmp, k, "the keyword patterns", &e->kwdb, d);
		if (r < 0)
			goto out;
	}
	if (e->pre && e->ipre != e->npre) {
		r = -ESTALE;
		goto out;
	}
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
	/* Lazy fields: string atoms but no trigger among them. */
	for (uint32_t f = 0; f < nf; f++)
		e->pf[f].lazy = e->pf[f].db != NULL;
	for (uint32_t a = 0; a < na; a++) {
		uint32_t f = pk->atoms[a].field;
		if (f != RF_PACK_NONE && e->trig_off[a + 1] > e->trig_off[a])
			e->pf[f].lazy = false;
	}
	e->lazy_off = calloc(pk->n_rules + 1, sizeof(*e->lazy_off));
	e->lazy_len = calloc(pk->n_rules + 1, sizeof(*e->lazy_len));
	e->lazy_fields = malloc(((size_t)pk->n_code + 1) * sizeof(*e->lazy_fields));
	if (!e->lazy_off || !e->lazy_len || !e->lazy_fields) {
		r = -ENOMEM;
		goto out;
	}
	memset(cu, 0, (nf + 1) * sizeof(*cu)); /* reused: per-field "seen in this rule" stamp */
	uint32_t nl = 0;
	for (uint32_t i = 0; i < pk->n_rules; i++) {
		const struct rf_prule *ru = &pk->rules[i];
		e->lazy_off[i] = nl;
		for (uint32_t k = 0; k < ru->code_len; k++) {
			uint32_t in = pk->code[ru->code_off + k];
			if (RF_INSN_OP(in) != RF_I_ATOM)
				continue;
			uint32_t f = pk->atoms[RF_INSN_ARG(in)].field;
			if (f == RF_PACK_NONE || !e->pf[f].lazy || cu[f] == i + 1)
				continue;
			cu[f] = i + 1;
			e->lazy_fields[nl++] = f;
		}
		e->lazy_len[i] = nl - e->lazy_off[i];
	}
out:
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
		k += e->pf[f].db != NULL;
	return k;
}

const hs_database_t *rf__engine_db(const struct rf_engine *e, uint32_t i, const uint8_t **digest)
{
	*digest = i < e->ndigests ? e->digests[i] : NULL;
	for (uint32_t f = 0; f < e->pk->n_fields; f++)
		if (e->pf[f].db && i-- == 0)
			return e->pf[f].db;
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
	e->pre = pre;
	e->pre_digests = pre_digests;
	e->npre = npre;
	e->agent = strdup(rf_manifest_agent(m));
	e->version = strdup(rf_manifest_version(m));
	r = e->agent && e->version ? build(e, m, d) : -ENOMEM;
	e->pre = NULL;
	if (r < 0) {
		rf_engine_free(e);
		return r;
	}
	*ret = e;
	return 0;
}

int rf_engine_scratch_new(const struct rf_engine *e, struct rf_engine_scratch **ret)
{
	const struct rf_pack *pk = e->pk;
	struct rf_engine_scratch *s = calloc(1, sizeof(*s));
	size_t nf = (size_t)pk->n_fields + 1, B = RF_ENGINE_BATCH_MAX;

	if (!s)
		return -ENOMEM;
	s->e = e;
	memset(s->layout, 0xff, sizeof(s->layout));
	s->words = pk->n_atoms / 64 + 1;
	s->bits = calloc(s->words * B, sizeof(*s->bits));
	s->field_stamp = calloc(nf * B, sizeof(*s->field_stamp));
	s->fval = calloc(nf * B, sizeof(*s->fval));
	s->flen = calloc(nf * B, sizeof(*s->flen));
	s->rule_stamp = calloc(pk->n_rules + 1, sizeof(*s->rule_stamp));
	s->cand = calloc(pk->n_rules + 1, sizeof(*s->cand));
	s->matches = calloc(pk->n_rules + 1, sizeof(*s->matches));
	s->lazy_stamp = calloc(nf, sizeof(*s->lazy_stamp));
	if (!s->bits || !s->field_stamp || !s->fval || !s->flen || !s->rule_stamp || !s->cand ||
	    !s->matches || !s->lazy_stamp)
		goto fail;
	for (uint32_t f = 0; f < pk->n_fields; f++)
		if (e->pf[f].db && hs_alloc_scratch(e->pf[f].db, &s->hs) != HS_SUCCESS)
			goto fail;
	if (e->kwdb && hs_alloc_scratch(e->kwdb, &s->hs) != HS_SUCCESS)
		goto fail;
	*ret = s;
	return 0;
fail:
	rf_engine_scratch_free(s);
	return -ENOMEM;
}

void rf_engine_scratch_free(struct rf_engine_scratch *s)
{
	if (!s)
		return;
	hs_free_scratch(s->hs);
	free(s->bits);
	free(s->field_stamp);
	free(s->fval);
	free(s->flen);
	free(s->rule_stamp);
	free(s->cand);
	free(s->matches);
	free(s->lazy_stamp);
	free(s);
}

void rf_engine_scratch_stats(const struct rf_engine_scratch *s, struct rf_engine_stats *ret)
{
	*ret = s->st;
}

/* Set atom a's bit in the current event's set (a is re-checked: defence in depth). */
static void set_bit(struct rf_engine_scratch *s, uint64_t *bits, uint32_t a)
{
	uint64_t bit = 1ull << (a & 63);

	if (a >= s->e->pk->n_atoms) {
		s->st.violations++;
		return;
	}
	if (!(bits[a >> 6] & bit)) {
		bits[a >> 6] |= bit;
		s->st.atoms++;
	}
}

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
		    unsigned int flags, void *ctx)
{
	struct rf_engine_scratch *s = ctx;

	set_bit(s, s->cur, id);
	return 0;
}

/* Run rule ri's program over bits; every index and the stack are re-checked (violations
 * count, the rule is then false). */
static bool run_rule(struct rf_engine_scratch *s, const uint64_t *bits, uint32_t ri)
{
	const struct rf_pack *pk = s->e->pk;
	const struct rf_prule *r = &pk->rules[ri];
	uint64_t stack = 0;
	uint32_t depth = 0;

	if (r->code_off > pk->n_code || r->code_len > pk->n_code - r->code_off)
		goto violation;
	for (uint32_t k = 0; k < r->code_len; k++) {
		uint32_t in = pk->code[r->code_off + k], arg = RF_INSN_ARG(in);
		uint64_t v;
		switch (RF_INSN_OP(in)) {
		case RF_I_ATOM:
			if (arg >= pk->n_atoms || depth >= 64)
				goto violation;
			stack = stack << 1 | (bits[arg >> 6] >> (arg & 63) & 1);
			depth++;
			break;
		case RF_I_TRUE:
		case RF_I_FALSE:
			if (depth >= 64)
				goto violation;
			stack = stack << 1 | (uint64_t)(RF_INSN_OP(in) == RF_I_TRUE);
			depth++;
			break;
		case RF_I_NOT:
			if (depth < 1)
				goto violation;
			stack ^= 1;
			break;
		case RF_I_AND:
		case RF_I_OR:
			if (depth < 2)
				goto violation;
			v = RF_INSN_OP(in) == RF_I_AND ? (stack & (stack >> 1) & 1)
						       : ((stack | (stack >> 1)) & 1);
			stack = (stack >> 2) << 1 | v;
			depth--;
			break;
		default:
			goto violation;
		}
	}
	if (depth != 1)
		goto violation;
	return stack & 1;
violation:
	s->st.violations++;
	return false;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The lookup slot of field name[0..n) of manifest event v, or NULL if the manifest lacks it. */
static const struct fslot *find_slot(const struct rf_engine *e, size_t v, const uint8_t *name,
				     size_t n)
{
	uint32_t h = slot_hash((uint32_t)v, name, n) & (e->nslots - 1);

	while (e->slots[h].name) {
		if (e->slots[h].ev == v && e->slots[h].name_len == n &&
		    !memcmp(e->slots[h].name, name, n))
			return &e->slots[h];
		h = (h + 1) & (e->nslots - 1);
	}
	return NULL;
}

/* Whether ev must be refused: a value over RF_EVENT_VALUE_MAX, or all values together over
 * RF_EVENT_LINE_MAX (a parsed event never is: its values fit in its line; an event built by a
 * caller could be). Checked before any work, so a refused event costs O(fields). */
static bool oversize(const struct rf_event *ev)
{
	size_t nfields = ev->n_fields < RF_EVENT_FIELDS_MAX ? ev->n_fields : RF_EVENT_FIELDS_MAX;
	size_t total = 0;

	for (size_t i = 0; i < nfields; i++) {
		if (ev->fields[i].value_len > RF_EVENT_VALUE_MAX)
			return true;
		total += ev->fields[i].value_len; /* <= 128 x RF_EVENT_VALUE_MAX: no overflow */
	}
	return total > RF_EVENT_LINE_MAX;
}

/* Equal ignoring ASCII case (the engine's case-insensitive rule: bytes >= 0x80 compare as is). */
static bool ascii_caseeq(const char *x, const char *y, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char a = (unsigned char)x[i], b = (unsigned char)y[i];
		if (a >= 'A' && a <= 'Z')
			a |= 0x20;
		if (b >= 'A' && b <= 'Z')
			b |= 0x20;
		if (a != b)
			return false;
	}
	return true;
}

/* Phase 1 for one event: resolve its fields, set presence/number/keyword atoms, remember the
 * values the field databases will scan. Returns 0, 1 if the event type is unknown, -EIO. */
static int prepare_event(const struct rf_engine *e, const struct rf_event *ev, size_t b,
			 struct rf_engine_scratch *s, bool *mistyped)
{
	const struct rf_pack *pk = e->pk;
	size_t v, nf = pk->n_fields + 1;
	uint64_t *bits = s->bits + b * s->words;

	for (v = 0; v < e->n_ev; v++)
		if (e->evs[v].name_len == ev->type_len &&
		    !memcmp(e->evs[v].name, ev->type, ev->type_len))
			break;
	s->ev_type[b] = (uint32_t)v;
	if (v == e->n_ev)
		return 1;
	memset(bits, 0, s->words * sizeof(*bits));
	s->cur = bits;
	size_t nfields = ev->n_fields < RF_EVENT_FIELDS_MAX ? ev->n_fields : RF_EVENT_FIELDS_MAX;
	for (size_t i = 0; i < nfields; i++) {
		const struct rf_event_field *f = &ev->fields[i];
		const struct fslot *sl = NULL;
		uint32_t h = s->layout[i];
		if (h < e->nslots && e->slots[h].ev == v && e->slots[h].name_len == f->name_len &&
		    !memcmp(e->slots[h].name, f->name, f->name_len)) {
			sl = &e->slots[h];
		} else {
			h = slot_hash((uint32_t)v, f->name, f->name_len) & (e->nslots - 1);
			while (e->slots[h].name) {
				if (e->slots[h].ev == v && e->slots[h].name_len == f->name_len &&
				    !memcmp(e->slots[h].name, f->name, f->name_len)) {
					sl = &e->slots[h];
					s->layout[i] = h;
					break;
				}
				h = (h + 1) & (e->nslots - 1);
			}
		}
		if (!sl)
			continue; /* not supplied by this agent: invisible to rules */
		size_t len = f->value_len; /* <= RF_EVENT_VALUE_MAX: oversize() ran first */
		const char *val = (const char *)f->value;
		if (!val)
			len = 0, val = "";
		if (sl->type == RF_FT_STRING && e->kwdb &&
		    hs_scan(e->kwdb, val, (unsigned)len, 0, s->hs, on_match, s) != HS_SUCCESS)
			return -EIO;
		int64_t iv = 0;
		uint8_t ip[16];
		bool typed = sl->type == RF_FT_STRING ||
			     (sl->type == RF_FT_INT ? rf__pack_parse_int(val, len, &iv)
						    : rf__pack_parse_ip(val, len, ip));
		if (!typed)
			*mistyped = true;
		if (sl->pf < 0)
			continue;
		uint32_t pf = (uint32_t)sl->pf;
		if (pf >= pk->n_fields) {
			s->st.violations++;
			continue;
		}
		const struct pfield_rt *rt = &e->pf[pf];
		s->field_stamp[b * nf + pf] = s->stamp;
		s->fval[b * nf + pf] = val;
		s->flen[b * nf + pf] = (uint32_t)len;
		if (rt->num_len) {
			/* On a string field the only such atoms are CIDR: the value counts if it
			 * is an address (Windows writes IpAddress as "-" when there is none). */
			uint8_t nt = sl->type;
			bool ok = typed;
			if (nt == RF_FT_STRING) {
				nt = RF_FT_IP;
				ok = rf__pack_parse_ip(val, len, ip);
			}
			for (uint32_t k = 0; ok && k < rt->num_len; k++) {
				const struct numatom *nm = &e->nums[rt->num_off + k];
				if (num_match(nm, nt, iv, ip))
					set_bit(s, bits, nm->atom);
			}
		}
		for (uint32_t k = 0; k < rt->pres_len; k++)
			set_bit(s, bits, e->pres[rt->pres_off + k]);
		if (len == 0)
			for (uint32_t k = 0; k < rt->null_len; k++)
				set_bit(s, bits, e->nulls[rt->null_off + k]);
	}
	/* NULL atoms of absent fields. */
	const struct evtype *et = &e->evs[v];
	for (uint32_t k = 0; k < et->nf_len; k++) {
		uint32_t pf = e->nullfields[et->nf_off + k];
		if (s->field_stamp[b * nf + pf] == s->stamp)
			continue;
		const struct pfield_rt *rt = &e->pf[pf];
		for (uint32_t j = 0; j < rt->null_len; j++)
			set_bit(s, bits, e->nulls[rt->null_off + j]);
	}
	/* FIELDREF atoms: both fields present and equal (whole values, so linear in them). */
	for (uint32_t k = 0; k < et->fr_len; k++) {
		uint32_t a = e->frefs[et->fr_off + k];
		const struct rf_patom *at = &pk->atoms[a];
		size_t fa = b * nf + at->field, fb = b * nf + at->ref;
		if (s->field_stamp[fa] != s->stamp || s->field_stamp[fb] != s->stamp ||
		    s->flen[fa] != s->flen[fb])
			continue;
		if ((at->flags & RF_ATOM_CASED)
			? !memcmp(s->fval[fa], s->fval[fb], s->flen[fa])
			: ascii_caseeq(s->fval[fa], s->fval[fb], s->flen[fa]))
			set_bit(s, bits, a);
	}
	return 0;
}

/* Phase 3 for one event: candidates from the matched atoms' trigger lists plus the rules that
 * always run, run them, report matches in pack order. Returns the number of alerts. */
static int finish_event(const struct rf_engine *e, size_t b, struct rf_engine_scratch *s,
			rf_batch_alert_fn fn, void *userdata)
{
	const struct rf_pack *pk = e->pk;
	const uint64_t *bits = s->bits + b * s->words;
	uint32_t v = s->ev_type[b];
	const struct evtype *et = &e->evs[v];

	if (++s->rstamp == 0) {
		memset(s->rule_stamp, 0, pk->n_rules * sizeof(*s->rule_stamp));
		memset(s->lazy_stamp, 0, pk->n_fields * sizeof(*s->lazy_stamp));
		s->rstamp = 1;
	}
	s->n_cand = 0;
	s->n_matches = 0;
	for (size_t w = 0; w < s->words; w++) {
		for (uint64_t x = bits[w]; x; x &= x - 1) {
			uint32_t a = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(x));
			if (a >= pk->n_atoms) {
				s->st.violations++;
				continue;
			}
			for (uint32_t k = e->trig_off[a]; k < e->trig_off[a + 1]; k++) {
				uint32_t r = e->trig_rules[k];
				if (s->rule_stamp[r] != s->rstamp && e->rule_ev[r] == v) {
					s->rule_stamp[r] = s->rstamp;
					s->cand[s->n_cand++] = r;
				}
			}
		}
	}
	/* Lazy fields the rules about to run read. */
	size_t nf = pk->n_fields + 1;
	for (uint32_t k = 0; k < s->n_cand + et->always_len; k++) {
		uint32_t r = k < s->n_cand ? s->cand[k] : e->always[et->always_off + k - s->n_cand];
		for (uint32_t j = 0; j < e->lazy_len[r]; j++) {
			uint32_t f = e->lazy_fields[e->lazy_off[r] + j];
			if (f >= pk->n_fields || !e->pf[f].db) {
				s->st.violations++;
				continue;
			}
			if (s->lazy_stamp[f] == s->rstamp)
				continue;
			s->lazy_stamp[f] = s->rstamp;
			if (s->field_stamp[b * nf + f] != s->stamp)
				continue;
			s->cur = s->bits + b * s->words;
			if (hs_scan(e->pf[f].db, s->fval[b * nf + f], s->flen[b * nf + f], 0, s->hs,
				    on_match, s) != HS_SUCCESS)
				return -EIO;
		}
	}
	for (uint32_t k = 0; k < s->n_cand + et->always_len; k++) {
		uint32_t r = k < s->n_cand ? s->cand[k] : e->always[et->always_off + k - s->n_cand];
		s->st.rules_run++;
		if (run_rule(s, bits, r))
			s->matches[s->n_matches++] = r;
	}
	if (s->n_matches > 1)
		qsort(s->matches, s->n_matches, sizeof(*s->matches), cmp_u32);
	for (uint32_t k = 0; k < s->n_matches; k++) {
		struct rf_rule_info info;
		if (fn && rf_pack_rule(pk, s->matches[k], &info) == 0)
			fn(userdata, b, s->matches[k], &info);
	}
	s->st.matches += s->n_matches;
	return (int)s->n_matches;
}

int rf_engine_eval_batch(const struct rf_engine *e, const struct rf_event *const *evs, size_t n,
			 struct rf_engine_scratch *s, rf_batch_alert_fn fn, void *userdata,
			 bool *ret_refused)
{
	const struct rf_pack *pk = e->pk;
	size_t nf = pk->n_fields + 1;
	bool refused[RF_ENGINE_BATCH_MAX] = {false};
	int total = 0, r;

	if (s->e != e || n > RF_ENGINE_BATCH_MAX)
		return -EINVAL;
	if (++s->stamp == 0) { /* wrapped: forget every stamp */
		memset(s->field_stamp, 0, nf * RF_ENGINE_BATCH_MAX * sizeof(*s->field_stamp));
		s->stamp = 1;
	}
	/* Phase 1: per event. */
	for (size_t b = 0; b < n; b++) {
		s->st.events++;
		if (oversize(evs[b])) {
			refused[b] = true;
			s->ev_type[b] = (uint32_t)e->n_ev; /* nothing of it is scanned or run */
			s->st.oversize++;
			continue;
		}
		bool mistyped = false;
		r = prepare_event(e, evs[b], b, s, &mistyped);
		if (r < 0)
			return r;
		if (mistyped)
			s->st.mistyped++;
		if (r == 1)
			s->st.unknown++;
	}
	/* Phase 2: per field database, over every event of the batch, so that each database is
	 * brought into cache once per batch rather than once per event. */
	for (uint32_t f = 0; f < pk->n_fields; f++) {
		const struct pfield_rt *rt = &e->pf[f];
		if (!rt->db || rt->lazy)
			continue;
		for (size_t b = 0; b < n; b++) {
			if (s->field_stamp[b * nf + f] != s->stamp || s->ev_type[b] == e->n_ev)
				continue;
			s->cur = s->bits + b * s->words;
			if (hs_scan(rt->db, s->fval[b * nf + f], s->flen[b * nf + f], 0, s->hs,
				    on_match, s) != HS_SUCCESS)
				return -EIO;
		}
	}
	/* Phase 3: per event. */
	for (size_t b = 0; b < n; b++) {
		if (ret_refused)
			ret_refused[b] = refused[b];
		if (s->ev_type[b] != e->n_ev) {
			r = finish_event(e, b, s, fn, userdata);
			if (r < 0)
				return r;
			total += r;
		}
	}
	return total;
}

struct single_ctx {
	rf_alert_fn fn;
	void *userdata;
};

static void single_alert(void *ud, size_t event_index, size_t rule_index,
			 const struct rf_rule_info *rule)
{
	const struct single_ctx *c = ud;

	c->fn(c->userdata, rule_index, rule);
}

int rf_engine_eval(const struct rf_engine *e, const struct rf_event *ev,
		   struct rf_engine_scratch *s, rf_alert_fn fn, void *userdata, bool *ret_refused)
{
	struct single_ctx c = {fn, userdata};
	const struct rf_event *evs[1] = {ev};
	bool refused = false;
	int r = rf_engine_eval_batch(e, evs, 1, s, fn ? single_alert : NULL, &c, &refused);

	if (ret_refused)
		*ret_refused = refused;
	return r >= 0 && refused ? -E2BIG : r;
}

int rf_engine_event_problems(const struct rf_engine *e, const struct rf_event *ev,
			     struct rf_diag *d)
{
	size_t v, nfields = ev->n_fields < RF_EVENT_FIELDS_MAX ? ev->n_fields : RF_EVENT_FIELDS_MAX;
	int n = 0;
	char q[RF_NAME_MAX + 8], qv[48];

	for (v = 0; v < e->n_ev; v++)
		if (e->evs[v].name_len == ev->type_len &&
		    !memcmp(e->evs[v].name, ev->type, ev->type_len))
			break;
	if (v == e->n_ev) {
		rf_diag_report(d, -ENOENT,
			       "event type '%s' is not supplied by %s %s: no rule can match it",
			       rf_diag_quote(q, sizeof(q), ev->type, ev->type_len), e->agent,
			       e->version);
		n++;
	}
	for (size_t i = 0; i < nfields; i++) {
		const struct rf_event_field *f = &ev->fields[i];
		const struct fslot *sl = v < e->n_ev ? find_slot(e, v, f->name, f->name_len) : NULL;
		const char *val = f->value ? (const char *)f->value : "";
		int64_t iv;
		uint8_t ip[16];

		if (f->value_len > RF_EVENT_VALUE_MAX) {
			rf_diag_report(d, -E2BIG,
				       "field '%s': value of %zu bytes is over %u "
				       "(RF_EVENT_VALUE_MAX): event refused",
				       rf_diag_quote(q, sizeof(q), f->name, f->name_len),
				       f->value_len, RF_EVENT_VALUE_MAX);
			n++;
			continue;
		}
		if (!sl || sl->type == RF_FT_STRING)
			continue;
		if (sl->type == RF_FT_INT ? rf__pack_parse_int(val, f->value_len, &iv)
					  : rf__pack_parse_ip(val, f->value_len, ip))
			continue;
		rf_diag_report(d, -EINVAL,
			       "field '%s' is %s in %s %s but its value '%s' is not: rules "
			       "comparing it as %s see no match",
			       rf_diag_quote(q, sizeof(q), f->name, f->name_len),
			       sl->type == RF_FT_INT ? "int" : "ip", e->agent, e->version,
			       rf_diag_quote(qv, sizeof(qv), val, f->value_len),
			       sl->type == RF_FT_INT ? "a number" : "an address");
		n++;
	}
	return n;
}
