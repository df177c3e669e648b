/*
 * The correlation evaluator (include/ringfence/correlate.h; semantics in docs/sigma.md
 * "Correlation rules"): setup, the heap of open bounded windows, the pools, distinct values, the
 * stream's clock and the API. One match of one correlation (the group it falls in, each type's
 * decision, firing and chains) is in corr_feed.c; reading an event's fields and time in
 * corr_time.c; their shared shapes in corr_int.h. Design:
 *
 *   A group is one correlation's state for one set of group-by values: its window entries (match
 *   times, with the value's hash for value_count) kept in time order, or, for the temporal types,
 *   one time per referred rule. Groups live in one pool (indices, never pointers across an
 *   allocation), found through a hash table keyed by a keyed SipHash of (correlation, values) and
 *   compared byte for byte; entries live in a second pool as per-group sorted lists. Both pools
 *   grow by doubling up to RF_CORR_GROUPS_MAX / RF_CORR_ENTRIES_MAX; at a cap the least recently
 *   active group (a global LRU list) is dropped and counted; one group holds at most
 *   RF_CORR_WINDOW_MAX entries (its oldest dropped and counted).
 *
 *   Time. Events arrive out of time order, and their times may be forged. The stream's clock is
 *   the newest accepted time; an event more than RF_CORR_LATE_MS older is dropped (late), one
 *   more than RF_CORR_SKEW_MS beyond the caller's clock is dropped (future), and one far ahead of
 *   the clock moves it only when the next such event confirms it (admit). Within that tolerance
 *   every decision depends only on the times, not on the arrival order:
 *
 *   A condition with only a lower bound (gte/gt, and the temporal types) is decided when a match
 *   arrives at t: the most matches in one window [a, a + timespan] that holds t (both ends
 *   included); when it fires the group is reset, so a burst alerts once. Entries older than
 *   clock - RF_CORR_LATE_MS - timespan can share no window with an acceptable event and expire.
 *   A condition with an upper bound (lt, lte, eq, a range) can only be decided when the window
 *   has closed: a window opens at the group's earliest match, holds the matches in [start,
 *   start + timespan] and is decided when the clock passes its end by RF_CORR_LATE_MS (no event
 *   that could still fall in it is acceptable then; rf_corr_idle moves a quiet stream's clock on
 *   with the caller's), or at rf_corr_flush; the matches after it
 *   open the group's next window. Open windows are found through one min-heap by end, so each
 *   group is decided on its own, whatever the others' times.
 *
 *   Chains. When correlation j fires, each correlation referring to j gets a match carrying j's
 *   group values; references only go to earlier correlations and chains are at most
 *   RF_CORR_CHAIN_MAX deep (verified), which bounds the recursion.
 *
 * Invariants: every group is in the hash table and the LRU list, and in the heap (hpos) if its
 * correlation is bounded; every entry is in exactly one group's list, in time order, or the free
 * list.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "content/corr_int.h"
#include "content/pack.h"
#include "ringfence/correlate.h"
#include "ringfence/limits.h"

const char *const type_names[] = {"?", "event_count", "value_count", "temporal",
				  "temporal_ordered"};

/* ---- setup ---------------------------------------------------------------------------------- */

void rf_corr_free(struct rf_corr *c)
{
	if (!c)
		return;
	free(c->ci);
	free(c->rule_off);
	free(c->corr_off);
	free(c->rule_uses);
	free(c->corr_uses);
	free(c->rule_flags);
	free(c->g);
	free(c->e);
	free(c->bucket);
	free(c->cstamp);
	free(c->rstamp);
	free(c->cand);
	free(c->heap);
	free(c->times);
	free(c->vhs);
	free(c->eidx);
	free(c->vtab);
	free(c->vused);
	free(c);
}

/* Fill the CSR index of who refers to what (one pass to count, one to place). */
static int build_uses(struct rf_corr *c)
{
	const struct rf_pack *pk = c->pk;
	uint32_t nr = pk->n_rules, total_r = 0, total_c = 0;

	c->rule_off = calloc((size_t)nr + 2, sizeof(uint32_t));
	c->corr_off = calloc((size_t)c->n + 2, sizeof(uint32_t));
	c->rule_flags = calloc((size_t)nr + 1, 1);
	if (!c->rule_off || !c->corr_off || !c->rule_flags)
		return -ENOMEM;
	for (uint32_t k = 0; k < c->n; k++)
		for (uint32_t r = 0; r < c->ci[k].pc->n_refs; r++) {
			uint32_t ref = c->ci[k].pc->refs[r];
			if (ref & RF_CORR_REF_CORR) {
				c->corr_off[(ref & ~RF_CORR_REF_CORR) + 2]++;
				total_c++;
			} else {
				c->rule_off[ref + 2]++;
				total_r++;
			}
		}
	for (uint32_t i = 2; i < nr + 2; i++)
		c->rule_off[i] += c->rule_off[i - 1];
	for (uint32_t i = 2; i < c->n + 2; i++)
		c->corr_off[i] += c->corr_off[i - 1];
	c->rule_uses = malloc((total_r ? total_r : 1) * sizeof(struct use));
	c->corr_uses = malloc((total_c ? total_c : 1) * sizeof(struct use));
	if (!c->rule_uses || !c->corr_uses)
		return -ENOMEM;
	/* rule_off[i + 1] is the next free slot of i while placing; afterwards, the end of i. */
	for (uint32_t k = 0; k < c->n; k++) {
		const struct rf_pcorr *pc = c->ci[k].pc;
		for (uint32_t r = 0; r < pc->n_refs; r++) {
			uint32_t ref = pc->refs[r];
			struct use u = {k, r};
			if (ref & RF_CORR_REF_CORR)
				c->corr_uses[c->corr_off[(ref & ~RF_CORR_REF_CORR) + 1]++] = u;
			else {
				c->rule_uses[c->rule_off[ref + 1]++] = u;
				c->rule_flags[ref] |= 1 | (pc->flags & RF_CORR_F_GENERATE ? 2 : 0);
			}
		}
	}
	/* A correlation is silent when correlations refer to it and none generates. */
	for (uint32_t j = 0; j < c->n; j++) {
		bool gen = false;
		for (uint32_t u = c->corr_off[j]; u < c->corr_off[j + 1]; u++)
			gen |= c->ci[c->corr_uses[u].corr].pc->flags & RF_CORR_F_GENERATE;
		c->ci[j].silent = c->corr_off[j] < c->corr_off[j + 1] && !gen;
	}
	return 0;
}

int rf_corr_new(const struct rf_pack *pk, const uint8_t key[16], struct rf_corr **ret)
{
	struct rf_corr *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->pk = pk;
	memcpy(c->key, key, 16);
	c->n = pk->n_corr;
	c->lru_head = c->lru_tail = c->g_free = c->e_free = NIL;
	c->clock = c->pending = c->ref = c->clock_at = c->pending_at = NONE_TS;
	if (c->n == 0) {
		*ret = c;
		return 0;
	}
	c->ci = calloc(c->n, sizeof(*c->ci));
	c->bucket = malloc(BUCKETS * sizeof(uint32_t));
	c->cstamp = calloc(c->n, sizeof(uint32_t));
	c->cand = calloc(c->n, sizeof(uint32_t));
	c->heap = malloc(RF_CORR_GROUPS_MAX * sizeof(uint32_t));
	c->rstamp = calloc(pk->n_rules ? pk->n_rules : 1, sizeof(uint32_t));
	c->times = malloc(RF_CORR_WINDOW_MAX * sizeof(int64_t));
	c->vhs = malloc(RF_CORR_WINDOW_MAX * sizeof(uint64_t));
	c->eidx = malloc(RF_CORR_WINDOW_MAX * sizeof(uint32_t));
	c->vtab = calloc(VTAB, sizeof(struct vslot));
	c->vused = malloc(VTAB * sizeof(uint32_t));
	if (!c->ci || !c->bucket || !c->cstamp || !c->cand || !c->rstamp || !c->heap || !c->times ||
	    !c->vhs || !c->eidx || !c->vtab || !c->vused)
		goto oom;
	for (uint32_t i = 0; i < BUCKETS; i++)
		c->bucket[i] = NIL;
	for (uint32_t k = 0; k < c->n; k++) {
		const struct rf_pcorr *pc = &pk->corrs[k];
		c->ci[k] = (struct cinfo){.pc = pc,
					  .span_ms = (int64_t)pc->timespan_s * 1000,
					  .bounded = pc->hi != RF_CORR_NO_MAX};
	}
	if (build_uses(c) < 0)
		goto oom;
	*ret = c;
	return 0;
oom:
	rf_corr_free(c);
	return -ENOMEM;
}

size_t rf_corr_count(const struct rf_corr *c)
{
	return c->n;
}

bool rf_corr_rule_used(const struct rf_corr *c, size_t i)
{
	return c->n && i < c->pk->n_rules && (c->rule_flags[i] & 1);
}

bool rf_corr_rule_silent(const struct rf_corr *c, size_t i)
{
	return rf_corr_rule_used(c, i) && !(c->rule_flags[i] & 2);
}

void rf_corr_stats(const struct rf_corr *c, struct rf_corr_stats *ret)
{
	*ret = c->st;
}

int rf_pack_corr(const struct rf_pack *pk, size_t i, struct rf_corr_info *ret)
{
	if (i >= pk->n_corr)
		return -ERANGE;
	const struct rf_pcorr *pc = &pk->corrs[i];
	*ret = (struct rf_corr_info){rf__pack_str(pk, pc->id),
				     rf__pack_str(pk, pc->title),
				     rf__pack_str(pk, pc->level),
				     type_names[pc->type],
				     pc->n_refs,
				     pc->n_group,
				     pc->timespan_s,
				     pc->flags & RF_CORR_F_GENERATE};
	return 0;
}

/* ---- the heap of open bounded windows, by end ------------------------------------------------ */

static int64_t window_end(const struct rf_corr *c, uint32_t gi)
{
	return sat_add(c->g[gi].start, c->ci[c->g[gi].corr].span_ms);
}

static void heap_set(struct rf_corr *c, uint32_t at, uint32_t gi)
{
	c->heap[at] = gi;
	c->g[gi].hpos = at;
}

/* Restore the heap order around position at (its key went up or down). */
void heap_fix(struct rf_corr *c, uint32_t at)
{
	uint32_t gi = c->heap[at];
	int64_t key = window_end(c, gi);

	while (at > 0 && window_end(c, c->heap[(at - 1) / 2]) > key) {
		heap_set(c, at, c->heap[(at - 1) / 2]);
		at = (at - 1) / 2;
	}
	for (;;) {
		uint32_t l = 2 * at + 1, m = at;
		int64_t mk = key;
		if (l < c->n_heap && window_end(c, c->heap[l]) < mk)
			m = l, mk = window_end(c, c->heap[l]);
		if (l + 1 < c->n_heap && window_end(c, c->heap[l + 1]) < mk)
			m = l + 1;
		if (m == at)
			break;
		heap_set(c, at, c->heap[m]);
		at = m;
	}
	heap_set(c, at, gi);
}

void heap_push(struct rf_corr *c, uint32_t gi)
{
	heap_set(c, c->n_heap++, gi);
	heap_fix(c, c->n_heap - 1);
}

static void heap_remove(struct rf_corr *c, uint32_t gi)
{
	uint32_t at = c->g[gi].hpos, last = c->heap[--c->n_heap];

	c->g[gi].hpos = NIL;
	if (at == c->n_heap)
		return;
	heap_set(c, at, last);
	heap_fix(c, at);
}

/* ---- pools ---------------------------------------------------------------------------------- */

void lru_unlink(struct rf_corr *c, uint32_t gi)
{
	struct group *g = &c->g[gi];

	if (g->lprev != NIL)
		c->g[g->lprev].lnext = g->lnext;
	else
		c->lru_head = g->lnext;
	if (g->lnext != NIL)
		c->g[g->lnext].lprev = g->lprev;
	else
		c->lru_tail = g->lprev;
}

void lru_append(struct rf_corr *c, uint32_t gi)
{
	struct group *g = &c->g[gi];

	g->lprev = c->lru_tail;
	g->lnext = NIL;
	if (c->lru_tail != NIL)
		c->g[c->lru_tail].lnext = gi;
	else
		c->lru_head = gi;
	c->lru_tail = gi;
}

static void entries_release(struct rf_corr *c, struct group *g)
{
	if (g->e_head != NIL) {
		c->e[g->e_tail].next = c->e_free;
		c->e_free = g->e_head;
		c->used_e -= g->n_e;
	}
	g->e_head = g->e_tail = NIL;
	g->n_e = 0;
}

/* Remove group gi from every list and return it and its entries to the pools. */
void group_release(struct rf_corr *c, uint32_t gi)
{
	struct group *g = &c->g[gi];
	uint32_t *pp = &c->bucket[g->h & (BUCKETS - 1)];

	while (*pp != gi)
		pp = &c->g[*pp].hnext;
	*pp = g->hnext;
	lru_unlink(c, gi);
	if (g->hpos != NIL)
		heap_remove(c, gi);
	entries_release(c, g);
	g->hnext = c->g_free;
	c->g_free = gi;
	c->used_g--;
}

/* A free group slot: from the free list, by growing the pool, or by dropping the least recently
 * active group (counted). Never fails once one group exists; NIL only when out of memory with
 * no group to drop. */
uint32_t group_alloc(struct rf_corr *c)
{
	if (c->g_free == NIL && c->cap_g < RF_CORR_GROUPS_MAX) {
		uint32_t nc = c->cap_g ? c->cap_g * 2 : 16;
		if (nc > RF_CORR_GROUPS_MAX)
			nc = RF_CORR_GROUPS_MAX;
		struct group *ng = realloc(c->g, (size_t)nc * sizeof(*ng));
		if (ng) {
			c->g = ng;
			for (uint32_t i = nc; i-- > c->cap_g;) {
				c->g[i].hnext = c->g_free;
				c->g_free = i;
			}
			c->cap_g = nc;
		}
	}
	if (c->g_free == NIL) {
		if (c->lru_head == NIL)
			return NIL;
		group_release(c, c->lru_head);
		c->st.groups_dropped++;
	}
	uint32_t gi = c->g_free;
	c->g_free = c->g[gi].hnext;
	c->used_g++;
	return gi;
}

/* Unlink and free gi's first entry. */
static void entry_drop_head(struct rf_corr *c, struct group *g)
{
	uint32_t ei = g->e_head;

	g->e_head = c->e[ei].next;
	if (g->e_head == NIL)
		g->e_tail = NIL;
	g->n_e--;
	c->used_e--;
	c->e[ei].next = c->e_free;
	c->e_free = ei;
}

/* A free entry for group keep: from the free list, by growing, by dropping the least recently
 * active other group, or (keep holds every entry) keep's own oldest entry. NIL: out of memory. */
static uint32_t entry_alloc(struct rf_corr *c, uint32_t keep)
{
	while (c->e_free == NIL) {
		if (c->cap_e < RF_CORR_ENTRIES_MAX) {
			uint32_t nc = c->cap_e ? c->cap_e * 2 : 256;
			if (nc > RF_CORR_ENTRIES_MAX)
				nc = RF_CORR_ENTRIES_MAX;
			struct entry *ne = realloc(c->e, (size_t)nc * sizeof(*ne));
			if (ne) {
				c->e = ne;
				for (uint32_t i = nc; i-- > c->cap_e;) {
					c->e[i].next = c->e_free;
					c->e_free = i;
				}
				c->cap_e = nc;
				break;
			}
		}
		uint32_t victim = c->lru_head;
		while (victim != NIL && (victim == keep || c->g[victim].n_e == 0))
			victim = c->g[victim].lnext;
		if (victim != NIL) {
			group_release(c, victim);
			c->st.groups_dropped++;
			continue;
		}
		struct group *g = &c->g[keep];
		if (g->n_e == 0)
			return NIL;
		entry_drop_head(c, g);
		c->st.entries_dropped++;
	}
	uint32_t ei = c->e_free;
	c->e_free = c->e[ei].next;
	c->used_e++;
	return ei;
}

/*
 * Insert (ts, vh) into gi's entries, which are kept in time order (equal times in arrival
 * order). A group holds at most RF_CORR_WINDOW_MAX entries: past that its oldest is dropped
 * (counted), or the new one when it is the oldest. In-order arrival appends in O(1); a late
 * one walks the list. False: not stored.
 */
bool entry_insert(struct rf_corr *c, uint32_t gi, int64_t ts, uint64_t vh)
{
	struct group *g = &c->g[gi];

	if (g->n_e >= RF_CORR_WINDOW_MAX) {
		c->st.entries_dropped++;
		if (ts < c->e[g->e_head].ts)
			return false;
		entry_drop_head(c, g);
	}
	uint32_t ei = entry_alloc(c, gi);
	if (ei == NIL)
		return false;
	g = &c->g[gi];
	c->e[ei] = (struct entry){ts, vh, NIL};
	if (g->e_tail == NIL) {
		g->e_head = g->e_tail = ei;
	} else if (c->e[g->e_tail].ts <= ts) {
		c->e[g->e_tail].next = ei;
		g->e_tail = ei;
	} else if (ts < c->e[g->e_head].ts) {
		c->e[ei].next = g->e_head;
		g->e_head = ei;
	} else {
		uint32_t at = g->e_head;
		while (c->e[at].next != NIL && c->e[c->e[at].next].ts <= ts)
			at = c->e[at].next;
		c->e[ei].next = c->e[at].next;
		c->e[at].next = ei;
	}
	g->n_e++;
	return true;
}

/* Drop a group's entries older than cutoff (its list is in time order). */
void entries_expire(struct rf_corr *c, struct group *g, int64_t cutoff)
{
	while (g->e_head != NIL && c->e[g->e_head].ts < cutoff)
		entry_drop_head(c, g);
}

/* Copy a group's entries (times, values, indices) into the scratch arrays; returns how many. */
uint32_t entries_load(struct rf_corr *c, const struct group *g)
{
	uint32_t n = 0;

	for (uint32_t ei = g->e_head; ei != NIL && n < RF_CORR_WINDOW_MAX; ei = c->e[ei].next) {
		c->times[n] = c->e[ei].ts;
		c->vhs[n] = c->e[ei].vh;
		c->eidx[n++] = ei;
	}
	return n;
}

/* ---- distinct values, for value_count ------------------------------------------------------- */

static struct vslot *vslot(struct rf_corr *c, uint64_t vh)
{
	uint32_t i = (uint32_t)vh & (VTAB - 1);

	while (c->vtab[i].n && c->vtab[i].vh != vh)
		i = (i + 1) & (VTAB - 1);
	if (!c->vtab[i].n) {
		c->vtab[i].vh = vh;
		c->vused[c->n_vused++] = i;
	}
	return &c->vtab[i];
}

/* Zero every slot used (slots keep n >= 1 while in use, so a lookup never stops early). */
static void vtab_clear(struct rf_corr *c)
{
	for (uint32_t i = 0; i < c->n_vused; i++)
		c->vtab[c->vused[i]] = (struct vslot){0, 0};
	c->n_vused = 0;
}

/*
 * The largest count, over the windows [a, a + span] that contain t, of the loaded entries in it
 * (distinct values when distinct). A best window starts at an entry, so the candidates are the
 * entries in [t - span, t]; two pointers make it linear in the entries.
 */
uint32_t best_window(struct rf_corr *c, uint32_t n, int64_t t, int64_t span, bool distinct)
{
	uint32_t best = 0, i = 0, j = 0, d = 0;

	while (i < n && c->times[i] < sat_add(t, -span))
		i++;
	j = i;
	for (; i < n && c->times[i] <= t; i++) {
		int64_t end = sat_add(c->times[i], span);
		while (j < n && c->times[j] <= end) {
			/* a slot holds count + 1, so that a used slot is never 0 */
			struct vslot *v = distinct ? vslot(c, c->vhs[j]) : NULL;
			if (v && v->n++ == 0)
				v->n++;
			if (v && v->n == 2)
				d++;
			j++;
		}
		uint32_t cnt = distinct ? d : j - i;
		if (cnt > best)
			best = cnt;
		if (distinct) {
			struct vslot *v = vslot(c, c->vhs[i]);
			if (--v->n == 1)
				d--;
		}
	}
	if (distinct)
		vtab_clear(c);
	return best;
}

/* value_count without an upper bound: an occurrence of a value is redundant when the value's
 * previous and next kept occurrences are within span of each other (every window holding it
 * holds one of them), so each value keeps at most 2 occurrences in any window and a flood of
 * one value cannot push others out. One pass over the n loaded entries of gi. */
void prune_repeats(struct rf_corr *c, uint32_t gi, uint32_t n, int64_t span)
{
	struct group *g = &c->g[gi];
	uint32_t prev = NIL;
	bool any = false;

	_Static_assert(RF_CORR_WINDOW_MAX < 0xffffu, "two entry indices fit a slot's count");
	for (uint32_t k = 0; k < n; k++) {
		/* the slot holds 1 + the last kept occurrence (low half), 1 + the one before */
		struct vslot *v = vslot(c, c->vhs[k]);
		uint32_t p1 = v->n ? (v->n & 0xffffu) - 1 : NIL;
		uint32_t p2 = v->n >> 16 ? (v->n >> 16) - 1 : NIL;
		if (p2 != NIL && c->times[k] - c->times[p2] <= span) {
			c->times[p1] = NONE_TS; /* p1 lies between p2 and k: redundant */
			any = true;
			v->n = (v->n & 0xffff0000u) | (k + 1);
		} else {
			v->n = (v->n & 0xffffu) << 16 | (k + 1);
		}
	}
	vtab_clear(c);
	if (!any)
		return;
	g->e_head = g->e_tail = NIL;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t ei = c->eidx[k];
		if (c->times[k] == NONE_TS) {
			c->e[ei].next = c->e_free;
			c->e_free = ei;
			g->n_e--;
			c->used_e--;
			continue;
		}
		if (prev == NIL)
			g->e_head = ei;
		else
			c->e[prev].next = ei;
		prev = ei;
	}
	c->e[prev].next = NIL;
	g->e_tail = prev;
}

/* ---- the API --------------------------------------------------------------------------------- */

/*
 * Decide the bounded window of group gi: the matches in [start, start + timespan]. They are
 * counted and removed; later matches stay and open the group's next window (start = the
 * earliest of them), or the group is released when none is left.
 */
static int close_window(struct rf_corr *c, uint32_t gi, rf_corr_alert_fn fn, void *ud)
{
	struct group *g = &c->g[gi];
	uint32_t k = g->corr;
	const struct cinfo *ci = &c->ci[k];
	const struct rf_pcorr *pc = ci->pc;
	int64_t end = window_end(c, gi);
	uint32_t n;

	if (pc->type == RF_CORR_EVENT_COUNT || pc->type == RF_CORR_VALUE_COUNT) {
		uint32_t m = entries_load(c, g);
		n = best_window(c, m, g->start, ci->span_ms, pc->type == RF_CORR_VALUE_COUNT);
		while (g->e_head != NIL && c->e[g->e_head].ts <= end)
			entry_drop_head(c, g);
	} else {
		n = 0;
		for (uint32_t r = 0; r < pc->n_refs; r++)
			n += g->ts[r] != NONE_TS && g->ts[r] >= g->start && g->ts[r] <= end;
		for (uint32_t r = 0; r < pc->n_refs; r++)
			g->ts[r] = NONE_TS;
	}
	bool keep = g->e_head != NIL;
	if (keep) {
		g->start = c->e[g->e_head].ts;
		heap_fix(c, g->hpos);
	}
	if (n >= pc->lo && n <= pc->hi)
		return fire(c, k, gi, n, end, keep, fn, ud);
	if (!keep)
		group_release(c, gi);
	return 0;
}

/* Close the bounded windows that no accepted event can still reach: those that ended more than
 * RF_CORR_LATE_MS before the clock (all with flush). */
static int close_due(struct rf_corr *c, bool flush, rf_corr_alert_fn fn, void *ud)
{
	int alerts = 0;

	while (c->n_heap) {
		uint32_t gi = c->heap[0];
		if (!flush && (c->clock == NONE_TS ||
			       sat_add(window_end(c, gi), RF_CORR_LATE_MS) >= c->clock))
			break;
		alerts += close_window(c, gi, fn, ud);
	}
	return alerts;
}

/* Keep times where their differences cannot overflow (about +-146,000 years). */
static int64_t clamp_time(int64_t t)
{
	const int64_t lim = INT64_C(1) << 62;

	return t > lim ? lim : t < -lim ? -lim : t;
}

void rf_corr_set_clock(struct rf_corr *c, int64_t now_ms)
{
	c->ref = clamp_time(now_ms);
}

int rf_corr_advance(struct rf_corr *c, int64_t now, rf_corr_alert_fn fn, void *ud)
{
	now = clamp_time(now);
	if (c->clock == NONE_TS || now > c->clock)
		c->clock = now;
	return close_due(c, false, fn, ud);
}

int rf_corr_idle(struct rf_corr *c, int64_t now, rf_corr_alert_fn fn, void *ud)
{
	/* No confirmed clock yet: the one event seen so far is all the stream has said. */
	bool first = c->clock == NONE_TS;
	int64_t base = first ? c->pending : c->clock, at = first ? c->pending_at : c->clock_at;

	if (c->n == 0 || base == NONE_TS || at == NONE_TS)
		return 0;
	now = clamp_time(now);
	int64_t est = now > at ? sat_add(base, now - at) : base;
	if (est > now)
		est = now;
	if (est <= base)
		return 0;
	if (first)
		c->pending = NONE_TS;
	c->clock = est;
	c->clock_at = now;
	return close_due(c, false, fn, ud);
}

bool rf_corr_waiting(const struct rf_corr *c)
{
	return c->n_heap > 0;
}

int rf_corr_flush(struct rf_corr *c, rf_corr_alert_fn fn, void *ud)
{
	return close_due(c, true, fn, ud);
}

/*
 * Admit an event's time t, moving the stream's clock; false (counted) drops the event. Beyond
 * the caller's clock by more than RF_CORR_SKEW_MS: in the future, dropped. Older than the clock
 * by more than RF_CORR_LATE_MS: too late to place (its windows may be decided), dropped. A time
 * more than RF_CORR_SKEW_MS ahead of the clock (or the first one) counts in its own group's
 * windows but moves the clock only once the next such time confirms it (is not earlier than it
 * by more than RF_CORR_SKEW_MS), so one bad timestamp can neither close every window early nor
 * make every later event late; a sparse stream's clock lags one event.
 */
static bool admit(struct rf_corr *c, int64_t t)
{
	if (c->ref != NONE_TS && t > c->ref + RF_CORR_SKEW_MS) {
		c->st.future++;
		return false;
	}
	if (c->clock != NONE_TS && t < c->clock - RF_CORR_LATE_MS) {
		c->st.late++;
		return false;
	}
	if (c->clock == NONE_TS || t > c->clock + RF_CORR_SKEW_MS) {
		if (c->pending == NONE_TS || c->pending > t + RF_CORR_SKEW_MS) {
			c->pending = t;
			c->pending_at = c->ref;
			return true;
		}
		if (c->clock == NONE_TS || c->pending > c->clock) {
			c->clock = c->pending;
			c->clock_at = c->pending_at;
		}
		c->pending = NONE_TS;
		if (t > c->clock + RF_CORR_SKEW_MS) {
			c->pending = t;
			c->pending_at = c->ref;
			return true;
		}
	}
	if (t > c->clock) {
		c->clock = t;
		c->clock_at = c->ref;
	}
	return true;
}

int rf_corr_event(struct rf_corr *c, const struct rf_event *ev, int64_t ts, const size_t *rules,
		  size_t n, rf_corr_alert_fn fn, void *ud)
{
	const struct rf_pack *pk = c->pk;
	uint32_t n_cand = 0;
	int alerts;

	if (c->n == 0)
		return 0;
	ts = clamp_time(ts);
	if (!admit(c, ts))
		return 0;
	alerts = close_due(c, false, fn, ud);
	if (++c->seq == 0) { /* stamps wrapped: forget them all */
		memset(c->cstamp, 0, c->n * sizeof(uint32_t));
		memset(c->rstamp, 0, (pk->n_rules ? pk->n_rules : 1) * sizeof(uint32_t));
		c->seq = 1;
	}
	for (size_t i = 0; i < n; i++) {
		size_t ri = rules[i];
		if (ri >= pk->n_rules || !(c->rule_flags[ri] & 1))
			continue;
		c->rstamp[ri] = c->seq;
		for (uint32_t u = c->rule_off[ri]; u < c->rule_off[ri + 1]; u++) {
			uint32_t k = c->rule_uses[u].corr;
			if (c->cstamp[k] != c->seq) {
				c->cstamp[k] = c->seq;
				c->cand[n_cand++] = k;
			}
		}
	}
	for (uint32_t i = 0; i < n_cand; i++) {
		const struct rf_pcorr *pc = c->ci[c->cand[i]].pc;
		struct src s = {.ev = ev};
		for (uint32_t r = pc->n_refs; r-- > 0;) {
			uint32_t ref = pc->refs[r];
			if (!(ref & RF_CORR_REF_CORR) && c->rstamp[ref] == c->seq)
				alerts += feed(c, c->cand[i], r, &s, ts, fn, ud);
		}
	}
	return alerts;
}
