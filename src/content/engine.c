/*
 * The engine's evaluation half: the interpreter that evaluates events with the matchers
 * engine_build.c made of a verified pack (the shared shapes are in engine.h).
 *
 * Model. Each atom is one predicate on one field; each rule is a jump-free postfix program over
 * atom bits, so its cost is bounded by its length (P3). Per event the engine
 *   0. refuses the event as a whole if a field value is longer than RF_EVENT_VALUE_MAX or all
 *      values together are longer than RF_EVENT_LINE_MAX (counted as oversize): every value
 *      that is matched is matched whole, never cut, and the scan cost stays linear;
 *   1. looks up each field the event carries (only fields the manifest supplies count), matches
 *      its eq/startswith/endswith literals in the field's tries (literal.c), compares int and ip
 *      atoms natively, and sets EXISTS/NULL atoms from presence;
 *   2. scans each string field with its Vectorscan databases that are not lazy (engine_build.c
 *      compiles them from the verified pattern text, never deserialised from the pack: literal
 *      contains plus the factors of wildcard and regex atoms; the wildcard and regex atoms that
 *      trigger rules themselves), and every string field with the keyword database;
 *   3. each atom or factor that matches marks the rules in its trigger list as candidates (the
 *      prefilter: a rule's trigger set is a set of atoms at least one of which must match for
 *      the rule to be true, computed at load; a factor stands for its atom); rules without a
 *      trigger set always run;
 *   4. runs the candidate programs, re-checking every atom index and the stack at run time
 *      (defence in depth: a violation is counted and the rule is false, never a fault). A rule
 *      that reads a lazy database (the other wildcard and regex atoms) or short contains
 *      literals that trigger no rule (RF_DB_DIRECT, in no database) runs first with those atoms
 *      unknown (three-valued logic); only if its value depends on them are the literals
 *      searched for in their field's value, then, if it still does, the databases scanned, each
 *      once per event, and the rule run again.
 * Events are evaluated in batches (rf_engine_eval is a batch of one): step 1 per event, step 2
 * per field database over the whole batch (each database enters the cache once per batch),
 * steps 3-4 per event. Cost per event is docs/engine.md's bound. Nothing is allocated per event:
 * all per-event state lives in the caller's scratch, reset by stamps rather than by clearing.
 */
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/util.h"
#include "content/engine.h"
#include "content/pack.h"
#include "content/vcache.h"
#include "ringfence/limits.h"

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

struct rf_engine_scratch {
	const struct rf_engine *e;
	uint64_t serial; /* e->serial */
	hs_scratch_t *hs;
	size_t words;	  /* 64-bit words of one event's atom bit set */
	uint64_t *bits;	  /* RF_ENGINE_BATCH_MAX bit sets */
	uint64_t *cur;	  /* the bit set Vectorscan matches go to */
	uint64_t *sum;	  /* per bit set, one bit per word of it that has a bit set */
	uint64_t *cursum; /* cur's */
	size_t sumwords;
	uint32_t *field_stamp; /* [slot * n_fields + f] == stamp: field f present in event slot */
	const char **fval;     /* [slot * n_fields + f]: its value (whole: see oversize()) */
	uint32_t *flen;
	uint32_t *rule_stamp, *cand, *matches, *lazy_stamp;
	uint32_t *direct_stamp; /* [i] == rstamp: e->directs[i] searched for in this event */
	uint32_t n_cand, n_matches, stamp, rstamp;
	uint32_t ev_type[RF_ENGINE_BATCH_MAX];
	/* Events from one source list their fields in the same order: remember which lookup slot
	 * field i of the last event resolved to and try it first (its name is still compared). */
	uint32_t layout[RF_EVENT_FIELDS_MAX];
	struct rf_engine_stats st;
	/* The value cache (vcache.h; NULL if disabled): vok[f] field f's matchers are worth
	 * caching; vf[f] its adaptive counters; vwhat[slot * n_fields + f] (valid where
	 * field_stamp is) VC_NONE, VC_HIT | i (its atoms came from the cache: phase 1's were set,
	 * phase 2's are hit[i], set instead of scanning) or the index of its entry in pend, the
	 * values of this batch that missed and collect the atoms their matchers report (curpend:
	 * the one being matched) until they are cached after phase 2. An entry keeps phase 1's
	 * atoms apart from phase 2's because phase 2 matches only the last value of a field that
	 * an event carries twice. */
	struct rf_vcache *vc;
	uint8_t *vok;
	struct vfield {
		uint32_t look, hit, next; /* next: the pause after another failed window */
		uint64_t until;		  /* paused: until st.events reaches this */
	} * vf;
	uint64_t wake; /* the earliest until of a paused field, UINT64_MAX if none */
	uint32_t *vwhat;
	struct vhit {
		const uint32_t *atoms; /* in the cache: no put before phase 2 ends */
		uint32_t b, n;
	} * hit;
	uint32_t n_hit;
	struct vpend {
		uint64_t h;
		const uint8_t *v;
		uint32_t len, pf, n, n1; /* n1: of the n atoms, those phase 1 reported */
		bool over; /* more atoms than an entry holds, or a later value of the same field
			    * in the same event took its phase-2 scans: not cached */
		uint32_t atoms[RF_VCACHE_ATOMS_MAX];
	} * pend, *curpend;
	uint32_t n_pend, max_pend;
};

#define VC_HIT	0x80000000u
#define VC_NONE UINT32_MAX
enum { VC_OFF = 0, VC_ON = 1, VC_PAUSED = 2 }; /* vok[f] */

int rf__engine_scratch_new_cache(const struct rf_engine *e, uint32_t entries, size_t arena,
				 uint64_t hmask, struct rf_engine_scratch **ret)
{
	const struct rf_pack *pk = e->pk;
	struct rf_engine_scratch *s = calloc(1, sizeof(*s));
	size_t nf = (size_t)pk->n_fields + 1, B = RF_ENGINE_BATCH_MAX;

	if (!s)
		return -ENOMEM;
	s->e = e;
	s->serial = e->serial;
	memset(s->layout, 0xff, sizeof(s->layout));
	s->words = e->n_bits / 64 + 1;
	s->bits = calloc(s->words * B, sizeof(*s->bits));
	s->sumwords = s->words / 64 + 1;
	s->sum = calloc(s->sumwords * B, sizeof(*s->sum));
	s->field_stamp = calloc(nf * B, sizeof(*s->field_stamp));
	s->fval = calloc(nf * B, sizeof(*s->fval));
	s->flen = calloc(nf * B, sizeof(*s->flen));
	s->rule_stamp = calloc(pk->n_rules + 1, sizeof(*s->rule_stamp));
	s->cand = calloc(pk->n_rules + 1, sizeof(*s->cand));
	s->matches = calloc(pk->n_rules + 1, sizeof(*s->matches));
	s->lazy_stamp = calloc(nf * RF_NDB, sizeof(*s->lazy_stamp));
	s->direct_stamp = calloc((size_t)e->n_directs + 1, sizeof(*s->direct_stamp));
	if (!s->bits || !s->sum || !s->field_stamp || !s->fval || !s->flen || !s->rule_stamp ||
	    !s->cand || !s->matches || !s->lazy_stamp || !s->direct_stamp)
		goto fail;
	for (uint32_t f = 0; f < pk->n_fields; f++)
		for (int c = 0; c < RF_NDB; c++)
			if (e->pf[f].db[c] &&
			    hs_alloc_scratch(e->pf[f].db[c], &s->hs) != HS_SUCCESS)
				goto fail;
	if (e->kwdb && hs_alloc_scratch(e->kwdb, &s->hs) != HS_SUCCESS)
		goto fail;
	if (entries && arena) {
		s->max_pend =
		    nf * B < RF_VCACHE_PENDING_MAX ? (uint32_t)(nf * B) : RF_VCACHE_PENDING_MAX;
		s->vok = calloc(nf, sizeof(*s->vok));
		s->vf = calloc(nf, sizeof(*s->vf));
		s->vwhat = calloc(nf * B, sizeof(*s->vwhat));
		s->pend = calloc(s->max_pend, sizeof(*s->pend));
		s->hit = calloc(s->max_pend, sizeof(*s->hit));
		s->wake = UINT64_MAX;
		if (!s->vok || !s->vf || !s->vwhat || !s->pend || !s->hit ||
		    rf__vcache_new(entries, arena, hmask, &s->vc) < 0)
			goto fail;
		/* Worth caching: a field some matcher of phases 1-2 reads (the keyword database
		 * reads every string field). */
		for (uint32_t f = 0; f < pk->n_fields; f++) {
			const struct pfield_rt *rt = &e->pf[f];
			bool any = e->kwdb || rt->lits.n || rt->shift.n;
			for (int c = 0; c < RF_NDB; c++)
				any |= rt->db[c] && !rt->lazy[c];
			s->vok[f] = any && pk->fields[f].type == RF_FT_STRING ? VC_ON : VC_OFF;
		}
	}
	*ret = s;
	return 0;
fail:
	rf_engine_scratch_free(s);
	return -ENOMEM;
}

int rf_engine_scratch_new(const struct rf_engine *e, struct rf_engine_scratch **ret)
{
	return rf__engine_scratch_new_cache(e, RF_VCACHE_ENTRIES, RF_VCACHE_ARENA, UINT64_MAX, ret);
}

void rf_engine_scratch_free(struct rf_engine_scratch *s)
{
	if (!s)
		return;
	rf__vcache_free(s->vc);
	free(s->vok);
	free(s->vf);
	free(s->vwhat);
	free(s->pend);
	free(s->hit);
	hs_free_scratch(s->hs);
	free(s->bits);
	free(s->sum);
	free(s->field_stamp);
	free(s->fval);
	free(s->flen);
	free(s->rule_stamp);
	free(s->cand);
	free(s->matches);
	free(s->lazy_stamp);
	free(s->direct_stamp);
	free(s);
}

void rf_engine_scratch_stats(const struct rf_engine_scratch *s, struct rf_engine_stats *ret)
{
	*ret = s->st;
}

/* Set atom (or factor) a's bit in the current event's set (a is re-checked: defence in
 * depth). Only atoms count in the stats. */
static void set_bit(struct rf_engine_scratch *s, uint32_t a)
{
	uint64_t bit = 1ull << (a & 63);

	if (a >= s->e->n_bits) {
		s->st.violations++;
		return;
	}
	if (!(s->cur[a >> 6] & bit)) {
		s->cur[a >> 6] |= bit;
		s->cursum[a >> 12] |= 1ull << (a >> 6 & 63);
		s->st.atoms += a < s->e->pk->n_atoms;
	}
}

/* Note atom a for the value being matched, if it is to be cached: every atom or factor the
 * matchers report, once, whether or not its bit was already set (by another field). */
static void vc_note(struct vpend *p, uint32_t a)
{
	if (p->over)
		return;
	for (uint32_t k = 0; k < p->n; k++)
		if (p->atoms[k] == a)
			return;
	if (p->n == RF_VCACHE_ATOMS_MAX)
		p->over = true;
	else
		p->atoms[p->n++] = a;
}

static void lit_hit(void *ctx, uint32_t atom)
{
	struct rf_engine_scratch *s = ctx;

	if (s->curpend)
		vc_note(s->curpend, atom);
	set_bit(s, atom);
}

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
		    unsigned int flags, void *ctx)
{
	struct rf_engine_scratch *s = ctx;

	if (s->curpend)
		vc_note(s->curpend, id);
	set_bit(s, id);
	return 0;
}

/* The paused fields whose pause is over are looked up again (at the start of a batch, when
 * st.events has reached wake). */
static void vc_wake(struct rf_engine_scratch *s)
{
	s->wake = UINT64_MAX;
	for (uint32_t f = 0; f < s->e->pk->n_fields; f++) {
		if (s->vok[f] != VC_PAUSED)
			continue;
		if (s->vf[f].until <= s->st.events)
			s->vok[f] = VC_ON;
		else if (s->vf[f].until < s->wake)
			s->wake = s->vf[f].until;
	}
}

/* Look value v[0..n) of pack field pf of event slot b up in the value cache (a field in its
 * pause is not looked up: vok). Returns what vwhat is to say: a hit (VC_HIT | i)
 * has set the atoms phase 1 reported for it and left phase 2's in hit[i]; a miss is VC_NONE or
 * the entry in pend that collects its atoms to be cached after phase 2. */
static uint32_t vc_lookup(struct rf_engine_scratch *s, size_t b, uint32_t pf, const uint8_t *v,
			  size_t n)
{
	struct vfield *vf = &s->vf[pf];
	uint32_t na = 0, n1 = 0;

	if (s->n_hit == s->max_pend || s->n_pend == s->max_pend)
		return VC_NONE; /* (a batch of events that carry fields many times over) */
	uint64_t h = rf__vcache_hash(s->vc, pf, v, n);
	const uint32_t *at = rf__vcache_find(s->vc, h, pf, v, n, &na, &n1);
	vf->hit += at != NULL;
	if (++vf->look == RF_VCACHE_WINDOW) {
		if (vf->hit < RF_VCACHE_WINDOW_HITS) {
			uint32_t pause = vf->next < RF_VCACHE_PAUSE ? RF_VCACHE_PAUSE : vf->next;
			vf->next =
			    pause < RF_VCACHE_PAUSE_MAX / 2 ? pause * 2 : RF_VCACHE_PAUSE_MAX;
			vf->until = s->st.events + pause;
			s->vok[pf] = VC_PAUSED;
			if (vf->until < s->wake)
				s->wake = vf->until;
		} else {
			vf->next = RF_VCACHE_PAUSE;
		}
		vf->look = vf->hit = 0;
	}
	if (at && n1 <= na) {
		s->st.cache_hits++;
		for (uint32_t k = 0; k < n1; k++)
			set_bit(s, at[k]);
		s->hit[s->n_hit] = (struct vhit){at + n1, (uint32_t)b, na - n1};
		return VC_HIT | s->n_hit++;
	}
	s->st.cache_misses++;
	struct vpend *p = &s->pend[s->n_pend];
	p->h = h;
	p->v = v;
	p->len = (uint32_t)n;
	p->pf = pf;
	p->n = 0;
	p->over = false;
	return s->n_pend++;
}

/* Value list l (engine.h) over bits: ANY (some atom true) or ALL. Decided at the first group
 * that settles it. Returns -1 on a violation. */
static int run_list(const struct rf_engine_scratch *s, const uint64_t *bits, uint32_t l, bool any)
{
	const struct rf_engine *e = s->e;

	if (l >= e->n_xlists)
		return -1;
	const struct xlist *x = &e->xlists[l];
	const struct xgroup *g = e->xgroups + x->goff;
	for (uint32_t k = 0; k < x->glen; k++) {
		if (g[k].word >= s->words)
			return -1;
		uint64_t w = bits[g[k].word] & g[k].mask;
		if (any ? w != 0 : w != g[k].mask)
			return any;
	}
	return !any;
}

/* Run rule ri's program (its run-time form, engine.h) over bits; every index and the stack are
 * re-checked (violations count, the rule is then false). */
static bool run_rule(struct rf_engine_scratch *s, const uint64_t *bits, uint32_t ri)
{
	const struct rf_engine *e = s->e;
	const struct rf_pack *pk = e->pk;
	uint64_t stack = 0;
	uint32_t depth = 0, off = e->xr[ri].off, len = e->xr[ri].len;
	int x;

	if (off > e->n_xcode || len > e->n_xcode - off)
		goto violation;
	const uint32_t *code = e->xcode + off;
	for (uint32_t k = 0; k < len; k++) {
		uint32_t in = code[k], arg = RF_INSN_ARG(in);
		switch (RF_INSN_OP(in)) {
		case RF_I_ATOM:
			if (arg >= pk->n_atoms || depth >= 64)
				goto violation;
			stack = stack << 1 | (bits[arg >> 6] >> (arg & 63) & 1);
			depth++;
			break;
		case RF_X_ANY:
		case RF_X_ALL:
			if (depth >= 64 ||
			    (x = run_list(s, bits, arg, RF_INSN_OP(in) == RF_X_ANY)) < 0)
				goto violation;
			stack = stack << 1 | (uint64_t)x;
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
		case RF_X_REQ: /* a top-level conjunct: false ends the rule */
			if (depth < 1)
				goto violation;
			if (!(stack & 1))
				return false;
			stack >>= 1;
			depth--;
			break;
		case RF_I_AND:
		case RF_I_OR:
			if (depth < 2)
				goto violation;
			x = RF_INSN_OP(in) == RF_I_AND ? (int)(stack & (stack >> 1) & 1)
						       : (int)((stack | (stack >> 1)) & 1);
			stack = (stack >> 2) << 1 | (uint64_t)x;
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

/* Scan the lazy databases rule r reads that event slot b has not been scanned with yet. */
static int lazy_scan(const struct rf_engine *e, size_t b, struct rf_engine_scratch *s, uint32_t r)
{
	const struct rf_pack *pk = e->pk;
	size_t nf = pk->n_fields + 1;

	for (uint32_t j = 0; j < e->lazy_len[r]; j++) {
		uint32_t x = e->lazy_fields[e->lazy_off[r] + j], f = x / RF_NDB;
		if (f >= pk->n_fields || !e->pf[f].db[x % RF_NDB]) {
			s->st.violations++;
			continue;
		}
		if (s->lazy_stamp[x] == s->rstamp)
			continue;
		s->lazy_stamp[x] = s->rstamp;
		if (s->field_stamp[b * nf + f] != s->stamp)
			continue;
		s->cur = s->bits + b * s->words;
		s->cursum = s->sum + b * s->sumwords;
		if (hs_scan(e->pf[f].db[x % RF_NDB], s->fval[b * nf + f], s->flen[b * nf + f], 0,
			    s->hs, on_match, s) != HS_SUCCESS)
			return -EIO;
	}
	return 0;
}

/* Whether value v[0..n) contains direct atom d's literal (engine.h; ASCII case as d->lo/up say),
 * 16 positions at a time with SSE2 where the target has it. O(n). */
static bool direct_find(const struct direct *d, const uint8_t *v, size_t n)
{
	size_t L = d->len, i = 0;

	if (L == 0 || L > RF_DIRECT_MAX || n < L)
		return false;
#if defined(__SSE2__)
	__m128i lo[RF_DIRECT_MAX], up[RF_DIRECT_MAX];
	for (size_t j = 0; j < L; j++) {
		lo[j] = _mm_set1_epi8((char)d->lo[j]);
		up[j] = _mm_set1_epi8((char)d->up[j]);
	}
	for (; n - i >= 16 + L - 1; i += 16) {
		__m128i m = _mm_set1_epi8(-1);
		for (size_t j = 0; j < L; j++) {
			__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(v + i + j));
			m = _mm_and_si128(
			    m, _mm_or_si128(_mm_cmpeq_epi8(x, lo[j]), _mm_cmpeq_epi8(x, up[j])));
		}
		if (_mm_movemask_epi8(m))
			return true;
	}
#endif
	for (; i + L <= n; i++) {
		size_t j = 0;
		while (j < L && (v[i + j] == d->lo[j] || v[i + j] == d->up[j]))
			j++;
		if (j == L)
			return true;
	}
	return false;
}

/* Search event slot b's values for the direct atoms rule r reads that are not searched yet. */
static void direct_eval(const struct rf_engine *e, size_t b, struct rf_engine_scratch *s,
			uint32_t r)
{
	const struct rf_pack *pk = e->pk;
	size_t nf = pk->n_fields + 1;

	for (uint32_t j = 0; j < e->dir_len[r]; j++) {
		uint32_t x = e->dir_list[e->dir_off[r] + j];
		if (x >= e->n_directs || e->directs[x].field >= pk->n_fields) {
			s->st.violations++;
			continue;
		}
		if (s->direct_stamp[x] == s->rstamp)
			continue;
		s->direct_stamp[x] = s->rstamp;
		const struct direct *d = &e->directs[x];
		size_t fi = b * nf + d->field;
		if (s->field_stamp[fi] != s->stamp)
			continue;
		if (direct_find(d, (const uint8_t *)s->fval[fi], s->flen[fi])) {
			s->cur = s->bits + b * s->words;
			s->cursum = s->sum + b * s->sumwords;
			set_bit(s, d->atom);
		}
	}
}

/* Is atom a's bit for event slot b not known yet (its field is present and its database is
 * lazy and not scanned yet)? It is known (false) when its factor, searched in a matcher that ran
 * in phase 1 or 2, is not in the value: the atom cannot match a value its factor is not in.
 * On the SigmaHQ pack this spares most scans of CommandLine's lazy database. */
static bool unknown(const struct rf_engine *e, const struct rf_engine_scratch *s, size_t b,
		    uint32_t a)
{
	const struct rf_pack *pk = e->pk;

	if (a >= pk->n_atoms || !e->mayunk[a])
		return false;
	uint32_t c = e->acls[a], f = pk->atoms[a].field, fb = e->factor[a];
	if (c == RF_DB_DIRECT)
		return e->didx[a] < e->n_directs && s->direct_stamp[e->didx[a]] != s->rstamp &&
		       f < pk->n_fields && s->field_stamp[b * (pk->n_fields + 1) + f] == s->stamp;
	if (c >= RF_NDB || f >= pk->n_fields || !e->pf[f].lazy[c])
		return false;
	if (fb < e->n_bits && !e->pf[f].lazy[RF_DB_CONTAINS] &&
	    !(s->bits[b * s->words + (fb >> 6)] >> (fb & 63) & 1))
		return false;
	return s->lazy_stamp[f * RF_NDB + c] != s->rstamp &&
	       s->field_stamp[b * (pk->n_fields + 1) + f] == s->stamp;
}

/* Rule ri in three-valued (Kleene) logic, the atoms of lazy databases not scanned yet unknown:
 * 0 or 1 when that is the rule's value whatever they turn out to be, 2 when it depends on them.
 * Checks as run_rule (a violation makes the rule 0). */
static int run_rule3(struct rf_engine_scratch *s, const uint64_t *bits, size_t b, uint32_t ri)
{
	const struct rf_engine *e = s->e;
	const struct rf_pack *pk = e->pk;
	uint64_t val = 0, kn = 0; /* value and known bits, top of stack in bit 0 */
	uint32_t depth = 0, off = e->xr[ri].off, len = e->xr[ri].len;
	bool undecided = false; /* a conjunct popped by REQ was unknown */

	if (off > e->n_xcode || len > e->n_xcode - off)
		goto violation;
	for (uint32_t k = 0; k < len; k++) {
		uint32_t in = e->xcode[off + k], arg = RF_INSN_ARG(in);
		uint64_t v, q, fa, fb;
		int x;
		switch (RF_INSN_OP(in)) {
		case RF_I_ATOM:
			if (arg >= pk->n_atoms || depth >= 64)
				goto violation;
			q = !unknown(e, s, b, arg);
			val = val << 1 | (q & (bits[arg >> 6] >> (arg & 63)));
			kn = kn << 1 | q;
			depth++;
			break;
		case RF_X_ANY:
		case RF_X_ALL:
			if (depth >= 64 || arg >= e->n_xlists)
				goto violation;
			/* Known when the known atoms decide it (one true for ANY, one false for
			 * ALL) or when none is unknown. */
			q = 1;
			if (!e->xlists[arg].lazy) {
				x = run_list(s, bits, arg, RF_INSN_OP(in) == RF_X_ANY);
				if (x < 0)
					goto violation;
			} else {
				const struct xlist *l = &e->xlists[arg];
				bool any = RF_INSN_OP(in) == RF_X_ANY, unk = false, dec = false;
				if (l->aoff > e->n_xatoms || l->alen > e->n_xatoms - l->aoff)
					goto violation;
				for (uint32_t t = 0; t < l->alen && !dec; t++) {
					uint32_t a = e->xatoms[l->aoff + t];
					if (unknown(e, s, b, a))
						unk = true;
					else if ((bits[a >> 6] >> (a & 63) & 1) == any)
						dec = true;
				}
				x = dec ? any : !any;
				q = dec || !unk;
			}
			val = val << 1 | (q & (uint64_t)x);
			kn = kn << 1 | q;
			depth++;
			break;
		case RF_I_TRUE:
		case RF_I_FALSE:
			if (depth >= 64)
				goto violation;
			val = val << 1 | (uint64_t)(RF_INSN_OP(in) == RF_I_TRUE);
			kn = kn << 1 | 1;
			depth++;
			break;
		case RF_I_NOT:
			if (depth < 1)
				goto violation;
			val ^= kn & 1;
			break;
		case RF_X_REQ: /* a top-level conjunct: known false ends the rule, unknown leaves
				* it undecided unless a later one is known false */
			if (depth < 1)
				goto violation;
			if ((kn & 1) && !(val & 1))
				return 0;
			undecided |= !(kn & 1);
			val >>= 1, kn >>= 1;
			depth--;
			break;
		case RF_I_AND:
		case RF_I_OR:
			if (depth < 2)
				goto violation;
			/* AND is known when both are, or either is known false; OR likewise with
			 * true. */
			fa = RF_INSN_OP(in) == RF_I_AND ? ~val : val; /* the deciding value */
			fb = kn & fa & 1, fa = (kn >> 1) & (fa >> 1) & 1;
			q = ((kn & (kn >> 1)) | fa | fb) & 1;
			v = RF_INSN_OP(in) == RF_I_AND ? (val & (val >> 1) & 1)
						       : ((val | (val >> 1)) & 1);
			v &= q;
			val = (val >> 2) << 1 | v;
			kn = (kn >> 2) << 1 | q;
			depth--;
			break;
		default:
			goto violation;
		}
	}
	if (depth != 1)
		goto violation;
	if ((kn & 1) && !(val & 1))
		return 0;
	return (kn & 1) && !undecided ? 1 : 2;
violation:
	s->st.violations++;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* a[0..n) == b[0..n), for field and event-type names (1 to RF_NAME_MAX bytes): 8 bytes at a time,
 * the last 8 (or 4) overlapping, inline. memcmp was a library call per field of every event
 * (callgrind on the content benchmark: ~400 instructions an event for 22 names). */
static inline bool name_eq(const void *pa, const void *pb, size_t n)
{
	const uint8_t *a = pa, *b = pb;
	uint64_t x, y;
	uint32_t u, w;

	if (n >= 8) {
		for (size_t k = 0; k + 8 < n; k += 8) {
			memcpy(&x, a + k, 8);
			memcpy(&y, b + k, 8);
			if (x != y)
				return false;
		}
		memcpy(&x, a + n - 8, 8);
		memcpy(&y, b + n - 8, 8);
		return x == y;
	}
	if (n >= 4) {
		memcpy(&u, a, 4);
		memcpy(&w, b, 4);
		if (u != w)
			return false;
		memcpy(&u, a + n - 4, 4);
		memcpy(&w, b + n - 4, 4);
		return u == w;
	}
	for (size_t k = 0; k < n; k++)
		if (a[k] != b[k])
			return false;
	return true;
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
	const uint8_t *vok = s->vok;

	for (v = 0; v < e->n_ev; v++)
		if (e->evs[v].name_len == ev->type_len &&
		    !memcmp(e->evs[v].name, ev->type, ev->type_len))
			break;
	s->ev_type[b] = (uint32_t)v;
	if (v == e->n_ev)
		return 1;
	s->cur = bits;
	s->cursum = s->sum + b * s->sumwords;
	for (size_t i = 0; i < s->sumwords; i++) /* clear only the words that were set */
		for (uint64_t x = s->cursum[i]; x; x &= x - 1)
			bits[i * 64 + (size_t)__builtin_ctzll(x)] = 0;
	memset(s->cursum, 0, s->sumwords * sizeof(*s->cursum));
	size_t nfields = ev->n_fields < RF_EVENT_FIELDS_MAX ? ev->n_fields : RF_EVENT_FIELDS_MAX;
	for (size_t i = 0; i < nfields; i++) {
		const struct rf_event_field *f = &ev->fields[i];
		const struct fslot *sl = NULL;
		uint32_t h = s->layout[i];
		if (h < e->nslots && e->slots[h].ev == v && e->slots[h].name_len == f->name_len &&
		    name_eq(e->slots[h].name, f->name, f->name_len)) {
			sl = &e->slots[h];
		} else {
			h = slot_hash((uint32_t)v, f->name, f->name_len) & (e->nslots - 1);
			while (e->slots[h].name) {
				if (e->slots[h].ev == v && e->slots[h].name_len == f->name_len &&
				    name_eq(e->slots[h].name, f->name, f->name_len)) {
					sl = &e->slots[h];
					s->layout[i] = h;
					break;
				}
				h = (h + 1) & (e->nslots - 1);
			}
		}
		if (!sl) { /* not supplied by this agent: invisible to rules, except that */
			/* keywords search every string of a schemaless (open) event */
			if (e->evs[v].open && f->is_string && e->kwdb &&
			    hs_scan(e->kwdb, f->value ? (const char *)f->value : "",
				    (unsigned)f->value_len, 0, s->hs, on_match, s) != HS_SUCCESS)
				return -EIO;
			continue;
		}
		size_t len = f->value_len; /* <= RF_EVENT_VALUE_MAX: oversize() ran first */
		const char *val = (const char *)f->value;
		if (!val)
			len = 0, val = "";
		/* The value cache: a hit stands for the keyword database, the tries, the Shift-And
		 * set here and the field's databases in phase 2. */
		uint32_t vw = VC_NONE;
		uint8_t vs =
		    vok && sl->pf >= 0 && (uint32_t)sl->pf < pk->n_fields ? vok[sl->pf] : VC_OFF;
		if (vs == VC_ON && sl->type == RF_FT_STRING && len <= RF_VCACHE_VALUE_MAX)
			vw = vc_lookup(s, b, (uint32_t)sl->pf, (const uint8_t *)val, len);
		else if (vs == VC_PAUSED)
			s->st.cache_paused++;
		bool hit = vw != VC_NONE && (vw & VC_HIT);
		s->curpend = vw < s->n_pend ? &s->pend[vw] : NULL;
		if (!hit && sl->type == RF_FT_STRING && e->kwdb &&
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
		if (s->vc) {
			/* The same field twice in one event: phase 2 scans the last value only, so
			 * an earlier value's entry would lack its databases' atoms, and an earlier
			 * hit's phase-2 atoms are not this event's. */
			uint32_t w = s->vwhat[b * nf + pf];
			if (s->field_stamp[b * nf + pf] == s->stamp && w != VC_NONE) {
				if (!(w & VC_HIT) && w < s->n_pend)
					s->pend[w].over = true;
				else if ((w & VC_HIT) && (w & ~VC_HIT) < s->n_hit)
					s->hit[w & ~VC_HIT].n = 0;
			}
			s->vwhat[b * nf + pf] = vw;
		}
		s->field_stamp[b * nf + pf] = s->stamp;
		s->fval[b * nf + pf] = val;
		s->flen[b * nf + pf] = (uint32_t)len;
		if (!hit && rt->lits.n)
			rf__litset_match(&rt->lits, (const uint8_t *)val, len, lit_hit, s);
		if (!hit && rt->shift.n)
			rf__shiftset_match(&rt->shift, (const uint8_t *)val, len, lit_hit, s);
		if (s->curpend)
			s->curpend->n1 = s->curpend->n;
		s->curpend = NULL;
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
					set_bit(s, nm->atom);
			}
		}
		for (uint32_t k = 0; k < rt->pres_len; k++)
			set_bit(s, e->pres[rt->pres_off + k]);
		if (len == 0)
			for (uint32_t k = 0; k < rt->null_len; k++)
				set_bit(s, e->nulls[rt->null_off + k]);
	}
	/* NULL atoms of absent fields. */
	const struct evtype *et = &e->evs[v];
	for (uint32_t k = 0; k < et->nf_len; k++) {
		uint32_t pf = e->nullfields[et->nf_off + k];
		if (s->field_stamp[b * nf + pf] == s->stamp)
			continue;
		const struct pfield_rt *rt = &e->pf[pf];
		for (uint32_t j = 0; j < rt->null_len; j++)
			set_bit(s, e->nulls[rt->null_off + j]);
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
			set_bit(s, a);
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
		memset(s->lazy_stamp, 0, (pk->n_fields + 1) * RF_NDB * sizeof(*s->lazy_stamp));
		memset(s->direct_stamp, 0, e->n_directs * sizeof(*s->direct_stamp));
		s->rstamp = 1;
	}
	s->n_cand = 0;
	s->n_matches = 0;
	const uint64_t *sum = s->sum + b * s->sumwords;
	for (size_t i = 0; i < s->sumwords; i++)
		for (uint64_t y = sum[i]; y; y &= y - 1) {
			size_t w = i * 64 + (size_t)__builtin_ctzll(y);
			if (w >= s->words) {
				s->st.violations++;
				continue;
			}
			for (uint64_t x = bits[w]; x; x &= x - 1) {
				uint32_t a = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(x));
				if (a >= e->n_bits) {
					s->st.violations++;
					continue;
				}
				for (uint32_t k = e->trig_off[a]; k < e->trig_off[a + 1]; k++) {
					uint32_t r = e->trig_rules[k];
					if (s->rule_stamp[r] != s->rstamp && e->xr[r].ev == v) {
						s->rule_stamp[r] = s->rstamp;
						s->cand[s->n_cand++] = r;
					}
				}
			}
		}
	/* Run the rules. One that reads a lazy database not yet scanned for this event is first
	 * run with those atoms unknown (run_rule3): most candidates are decided by their other
	 * atoms; only the rest scan the databases they read, then run as usual. */
	for (uint32_t k = 0; k < s->n_cand + et->always_len; k++) {
		uint32_t r = k < s->n_cand ? s->cand[k] : e->always[et->always_off + k - s->n_cand];
		uint8_t needs = e->xr[r].needs;
		int res = needs ? run_rule3(s, bits, b, r) : 2;
		if (res == 2 && (needs & RF_NEEDS_DIRECT)) {
			/* The short literals first: a search costs far less than a database scan,
			 * and they often decide the rule. */
			direct_eval(e, b, s, r);
			res =
			    needs & RF_NEEDS_LAZY ? run_rule3(s, bits, b, r) : run_rule(s, bits, r);
		}
		if (res == 2) {
			if (lazy_scan(e, b, s, r) < 0)
				return -EIO;
			res = run_rule(s, bits, r);
		}
		s->st.rules_run++;
		if (res == 1)
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

	if (s->e != e || s->serial != e->serial || n > RF_ENGINE_BATCH_MAX)
		return -EINVAL;
	if (++s->stamp == 0) { /* wrapped: forget every stamp */
		memset(s->field_stamp, 0, nf * RF_ENGINE_BATCH_MAX * sizeof(*s->field_stamp));
		s->stamp = 1;
	}
	s->n_pend = 0;
	s->n_hit = 0;
	s->curpend = NULL;
	if (s->vc && s->st.events >= s->wake)
		vc_wake(s);
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
		for (int c = 0; c < RF_NDB; c++) {
			const hs_database_t *db = e->pf[f].db[c];
			if (!db || e->pf[f].lazy[c])
				continue;
			for (size_t b = 0; b < n; b++) {
				if (s->field_stamp[b * nf + f] != s->stamp ||
				    s->ev_type[b] == e->n_ev)
					continue;
				uint32_t w = s->vc ? s->vwhat[b * nf + f] : VC_NONE;
				if (w != VC_NONE && (w & VC_HIT))
					continue;
				s->curpend = w < s->n_pend ? &s->pend[w] : NULL;
				s->cur = s->bits + b * s->words;
				s->cursum = s->sum + b * s->sumwords;
				if (hs_scan(db, s->fval[b * nf + f], s->flen[b * nf + f], 0, s->hs,
					    on_match, s) != HS_SUCCESS)
					return -EIO;
			}
		}
	}
	s->curpend = NULL;
	/* The hits' phase-2 atoms (the cache is unchanged since phase 1 found them); then the
	 * values that missed, which now hold every atom their matchers report, are cached. */
	for (uint32_t k = 0; k < s->n_hit; k++) {
		const struct vhit *h = &s->hit[k];
		s->cur = s->bits + (size_t)h->b * s->words;
		s->cursum = s->sum + (size_t)h->b * s->sumwords;
		for (uint32_t j = 0; j < h->n; j++)
			set_bit(s, h->atoms[j]);
	}
	for (uint32_t k = 0; k < s->n_pend; k++) {
		const struct vpend *p = &s->pend[k];
		if (!p->over)
			rf__vcache_put(s->vc, p->h, p->pf, p->v, p->len, p->atoms, p->n, p->n1);
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
		rf_diag_report(
		    d, -ENOENT, "event type '%s' is not supplied by %s %s: no rule can match it",
		    rf_diag_quote(q, sizeof(q), ev->type, ev->type_len), e->agent, e->version);
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
