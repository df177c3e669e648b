/*
 * One match of one correlation (corr_int.h; the design and invariants are in correlate.c's
 * opening comment): the group key from the event's (or the firing correlation's) group-by
 * values, the group found or made, then each type's decision: event_count and value_count count
 * the entries in the best window that holds the match, temporal the referred rules seen in one
 * window, temporal_ordered the steps in order; a bounded correlation only stores the match (its
 * window is decided when it closes). A correlation that fires passes the match on to those that
 * refer to it; chains are at most RF_CORR_CHAIN_MAX deep (verified), which bounds the recursion.
 * Pure: no I/O, times are parameters.
 */
#include <string.h>

#include "common/util.h"
#include "content/corr_int.h"

/* Correlation k fired for group gi with count: report it (unless silent), release the group
 * (unless keep: a bounded group whose later matches open its next window) and pass the match on
 * to the correlations that refer to k. */
int fire(struct rf_corr *c, uint32_t k, uint32_t gi, uint32_t count, int64_t ts, bool keep,
	 rf_corr_alert_fn fn, void *ud)
{
	const struct cinfo *ci = &c->ci[k];
	const struct rf_pcorr *pc = ci->pc;
	const struct rf_pack *pk = c->pk;
	uint8_t key[RF_CORR_KEY_MAX];
	const uint8_t *vals[RF_CORR_GROUP_MAX];
	const char *names[RF_CORR_GROUP_MAX];
	size_t lens[RF_CORR_GROUP_MAX], kl = c->g[gi].key_len, at = 0;
	int alerts = 0;

	memcpy(key, c->g[gi].key, kl);
	if (!keep)
		group_release(c, gi);
	c->st.fired++;
	for (uint32_t g = 0; g < pc->n_group; g++) {
		lens[g] = (size_t)key[at] | (size_t)key[at + 1] << 8;
		vals[g] = key + at + 2;
		names[g] = rf__pack_str(pk, pc->group[g]);
		at += 2 + lens[g];
	}
	if (!ci->silent && fn) {
		struct rf_corr_alert a = {.index = k,
					  .id = rf__pack_str(pk, pc->id),
					  .title = rf__pack_str(pk, pc->title),
					  .level = rf__pack_str(pk, pc->level),
					  .author = rf__pack_str(pk, pc->author),
					  .type = type_names[pc->type],
					  .time_ms = ts,
					  .count = count,
					  .n_group = pc->n_group,
					  .group_names = names,
					  .group_values = vals,
					  .group_lens = lens};
		fn(ud, &a);
	}
	if (!ci->silent)
		alerts++;
	struct src s = {.vals = vals, .lens = lens};
	for (uint32_t u = c->corr_off[k]; u < c->corr_off[k + 1]; u++)
		alerts += feed(c, c->corr_uses[u].corr, c->corr_uses[u].ref, &s, ts, fn, ud);
	return alerts;
}

/* temporal: the most referred rules whose latest match times fit one window that holds t. */
static uint32_t temporal_count(const struct rf_corr *c, const struct group *g, int64_t t)
{
	const struct rf_pcorr *pc = c->ci[g->corr].pc;
	int64_t span = c->ci[g->corr].span_ms;
	uint32_t best = 0;

	for (uint32_t a = 0; a < pc->n_refs; a++) {
		int64_t from = g->ts[a];
		uint32_t n = 0;
		if (from == NONE_TS || from > t || from < t - span)
			continue;
		for (uint32_t r = 0; r < pc->n_refs; r++)
			n += g->ts[r] != NONE_TS && g->ts[r] >= from && g->ts[r] <= from + span;
		if (n > best)
			best = n;
	}
	return best;
}

/* temporal_ordered: do the latest matches of the steps, in the rules' order, rise strictly and
 * fit one window? */
static bool ordered_latest(const struct rf_corr *c, const struct group *g)
{
	const struct rf_pcorr *pc = c->ci[g->corr].pc;

	for (uint32_t r = 0; r < pc->n_refs; r++)
		if (g->last[r] == NONE_TS || (r > 0 && g->last[r] <= g->last[r - 1]))
			return false;
	return g->last[pc->n_refs - 1] - g->last[0] <= c->ci[g->corr].span_ms;
}

/* Build the group key of a match; false (counted as skipped) if a value is absent or too long. */
static bool match_key(struct rf_corr *c, const struct rf_pcorr *pc, uint32_t r, const struct src *s,
		      uint8_t *key, size_t *ret_len)
{
	size_t at = 0;

	for (uint32_t g = 0; g < pc->n_group; g++) {
		const uint8_t *v;
		size_t n;
		if (s->ev) {
			if (!event_field(s->ev, rf__pack_str(c->pk, pc->gfield[g * pc->n_refs + r]),
					 &v, &n))
				return false;
		} else {
			uint8_t idx = pc->gmap[g * pc->n_refs + r];
			v = s->vals[idx];
			n = s->lens[idx];
		}
		if (n > RF_CORR_KEY_MAX - 2 || at + 2 + n > RF_CORR_KEY_MAX)
			return false;
		key[at] = (uint8_t)n;
		key[at + 1] = (uint8_t)(n >> 8);
		if (n)
			memcpy(key + at + 2, v, n);
		at += 2 + n;
	}
	*ret_len = at;
	return true;
}

/* The group of correlation k for key (4 bytes of k, then the values), created if absent and
 * made the most recently active. NIL: none could be had (counted). */
static uint32_t group_get(struct rf_corr *c, uint32_t k, const uint8_t *buf, size_t kl, int64_t ts)
{
	struct cinfo *ci = &c->ci[k];
	uint64_t h = rf_siphash24(c->key, buf, 4 + kl);
	uint32_t gi;

	for (gi = c->bucket[h & (BUCKETS - 1)]; gi != NIL; gi = c->g[gi].hnext) {
		const struct group *g = &c->g[gi];
		if (g->h == h && g->corr == k && g->key_len == kl && !memcmp(g->key, buf + 4, kl))
			break;
	}
	if (gi != NIL) {
		lru_unlink(c, gi);
		lru_append(c, gi);
		return gi;
	}
	gi = group_alloc(c);
	if (gi == NIL) {
		c->st.groups_dropped++;
		return NIL;
	}
	struct group *g = &c->g[gi];
	*g = (struct group){.h = h,
			    .corr = k,
			    .hnext = c->bucket[h & (BUCKETS - 1)],
			    .hpos = NIL,
			    .e_head = NIL,
			    .e_tail = NIL,
			    .start = ts,
			    .key_len = (uint16_t)kl};
	memcpy(g->key, buf + 4, kl);
	for (uint32_t i = 0; i < RF_CORR_REFS_MAX; i++)
		g->ts[i] = g->last[i] = g->end[i] = NONE_TS;
	c->bucket[h & (BUCKETS - 1)] = gi;
	lru_append(c, gi);
	if (ci->bounded)
		heap_push(c, gi);
	return gi;
}

/* A match of a bounded correlation: stored, decided when its window closes (close_due). */
static void feed_bounded(struct rf_corr *c, uint32_t gi, uint32_t r, int64_t ts, uint64_t vh)
{
	struct group *g = &c->g[gi];
	const struct rf_pcorr *pc = c->ci[g->corr].pc;

	if (pc->type == RF_CORR_EVENT_COUNT || pc->type == RF_CORR_VALUE_COUNT) {
		if (!entry_insert(c, gi, ts, vh))
			return;
		g = &c->g[gi];
		if (c->e[g->e_head].ts != g->start) {
			g->start = c->e[g->e_head].ts;
			heap_fix(c, g->hpos);
		}
		return;
	}
	if (g->ts[r] == NONE_TS || ts > g->ts[r])
		g->ts[r] = ts;
	if (ts < g->start) {
		g->start = ts;
		heap_fix(c, g->hpos);
	}
}

int feed(struct rf_corr *c, uint32_t k, uint32_t r, const struct src *s, int64_t ts,
	 rf_corr_alert_fn fn, void *ud)
{
	struct cinfo *ci = &c->ci[k];
	const struct rf_pcorr *pc = ci->pc;
	uint8_t buf[4 + RF_CORR_KEY_MAX];
	size_t kl;
	uint64_t vh = 0;
	uint32_t gi, n;

	if (!match_key(c, pc, r, s, buf + 4, &kl)) {
		c->st.skipped++;
		return 0;
	}
	if (pc->type == RF_CORR_VALUE_COUNT) {
		const uint8_t *v;
		size_t vn;
		if (!s->ev || !event_field(s->ev, rf__pack_str(c->pk, pc->field), &v, &vn)) {
			c->st.skipped++;
			return 0;
		}
		vh = rf_siphash24(c->key, v, vn);
	}
	memcpy(buf, &k, 4);
	gi = group_get(c, k, buf, kl, ts);
	if (gi == NIL)
		return 0;
	if (ci->bounded) {
		feed_bounded(c, gi, r, ts, vh);
		return 0;
	}
	struct group *g = &c->g[gi];
	switch (pc->type) {
	case RF_CORR_EVENT_COUNT:
	case RF_CORR_VALUE_COUNT:
		/* Entries older than any window an accepted event can still open are useless. */
		if (c->clock != NONE_TS)
			entries_expire(c, g, sat_add(c->clock, -(RF_CORR_LATE_MS + ci->span_ms)));
		if (!entry_insert(c, gi, ts, vh))
			return 0;
		n = entries_load(c, &c->g[gi]);
		if (pc->type == RF_CORR_VALUE_COUNT)
			prune_repeats(c, gi, n, ci->span_ms), n = entries_load(c, &c->g[gi]);
		n = best_window(c, n, ts, ci->span_ms, pc->type == RF_CORR_VALUE_COUNT);
		break;
	case RF_CORR_TEMPORAL:
		if (g->ts[r] == NONE_TS || ts > g->ts[r])
			g->ts[r] = ts;
		n = temporal_count(c, g, ts);
		break;
	default: /* RF_CORR_TEMPORAL_ORDERED */
		/* ts[i]: the latest start of a sequence matched up to rule i, still in the window;
		 * end[i]: the time of its step i (the earliest, for one start). The caller feeds
		 * an event's rules last to first, so one event is never two steps; a step counts
		 * only after the one before it in time (end, not start: A at 1, B at 5, C at 3 is
		 * no sequence). */
		if (r == 0) {
			if (g->ts[0] == NONE_TS || ts > g->ts[0])
				g->ts[0] = g->end[0] = ts;
		} else if (g->ts[r - 1] != NONE_TS && g->ts[r - 1] >= ts - ci->span_ms &&
			   g->end[r - 1] <= ts) {
			if (g->ts[r] == NONE_TS || g->ts[r - 1] > g->ts[r] ||
			    (g->ts[r - 1] == g->ts[r] && ts < g->end[r])) {
				g->ts[r] = g->ts[r - 1];
				g->end[r] = ts;
			}
		}
		if (g->ts[pc->n_refs - 1] != NONE_TS && g->ts[pc->n_refs - 1] >= ts - ci->span_ms &&
		    g->ts[pc->n_refs - 1] <= ts)
			return fire(c, k, gi, pc->n_refs, ts, false, fn, ud);
		/* Out of arrival order (a later step delivered before an earlier one): the chain
		 * above only grows forwards, so also look at each step's latest match. They form
		 * the sequence when each is strictly after the one before (so one event is never
		 * two steps) and all lie in one window. */
		if (g->last[r] == NONE_TS || ts > g->last[r])
			g->last[r] = ts;
		if (ordered_latest(c, g))
			return fire(c, k, gi, pc->n_refs, g->last[pc->n_refs - 1], false, fn, ud);
		return 0;
	}
	if (n >= pc->lo)
		return fire(c, k, gi, n, ts, false, fn, ud);
	return 0;
}
