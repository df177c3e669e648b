/*
 * The correlation evaluator's internals, shared by its files (not a public API: programs use
 * include/ringfence/correlate.h).
 *
 *   correlate.c   setup, the heap of open bounded windows, the group and entry pools, distinct
 *                 values, the stream's clock, the API (its opening comment: the design and the
 *                 invariants)
 *   corr_feed.c   one match of one correlation: its group, each type's decision, firing and
 *                 passing the match on to the correlations that refer to it
 *   corr_time.c   what it reads from an event: a field by name, the event time
 *
 * The functions below keep inside the evaluator the short names they had when it was one file;
 * the macros give them the rf__corr_ prefix of non-static internals at link time. Include this
 * header only from the evaluator's own files.
 */
#ifndef RF_CONTENT_CORR_INT_H
#define RF_CONTENT_CORR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content/pack.h"
#include "ringfence/content.h"
#include "ringfence/correlate.h"
#include "ringfence/limits.h"

#define best_window    rf__corr_best_window
#define entries_expire rf__corr_entries_expire
#define entries_load   rf__corr_entries_load
#define entry_insert   rf__corr_entry_insert
#define event_field    rf__corr_event_field
#define feed	       rf__corr_feed
#define fire	       rf__corr_fire
#define group_alloc    rf__corr_group_alloc
#define group_release  rf__corr_group_release
#define heap_fix       rf__corr_heap_fix
#define heap_push      rf__corr_heap_push
#define lru_append     rf__corr_lru_append
#define lru_unlink     rf__corr_lru_unlink
#define prune_repeats  rf__corr_prune_repeats
#define type_names     rf__corr_type_names

/* The evaluator's state (correlate.c's opening comment: the design and the invariants). */
#define NIL	UINT32_MAX
#define NONE_TS INT64_MIN
#define BUCKETS (2 * RF_CORR_GROUPS_MAX)
#define VTAB	(2 * RF_CORR_WINDOW_MAX) /* distinct values among one group's entries, half full */
_Static_assert((BUCKETS & (BUCKETS - 1)) == 0, "bucket count must be a power of two");
_Static_assert((VTAB & (VTAB - 1)) == 0, "value table size must be a power of two");

struct entry {
	int64_t ts;
	uint64_t vh; /* value_count: the value's keyed hash */
	uint32_t next;
};

struct group {
	uint64_t h;
	uint32_t corr, hnext, lprev, lnext, hpos;
	uint32_t e_head, e_tail, n_e;
	int64_t start; /* bounded: the open window's start (its earliest match) */
	int64_t ts[RF_CORR_REFS_MAX];
	int64_t last[RF_CORR_REFS_MAX]; /* temporal_ordered: each step's latest match time */
	int64_t end[RF_CORR_REFS_MAX];	/* temporal_ordered: step i's time in the chain ts[i] */
	uint16_t key_len;
	uint8_t key[RF_CORR_KEY_MAX];
};

struct use {
	uint32_t corr, ref;
};

struct cinfo {
	const struct rf_pcorr *pc;
	int64_t span_ms;
	bool bounded, silent;
};

struct vslot {
	uint64_t vh;
	uint32_t n;
};

struct rf_corr {
	const struct rf_pack *pk;
	uint8_t key[16];
	uint32_t n;
	struct cinfo *ci;
	uint32_t *rule_off, *corr_off; /* CSR: who refers to rule i / correlation j */
	struct use *rule_uses, *corr_uses;
	uint8_t *rule_flags; /* 1 used, 2 some referrer generates */
	struct group *g;
	uint32_t cap_g, used_g, g_free;
	struct entry *e;
	uint32_t cap_e, used_e, e_free;
	uint32_t *bucket;
	uint32_t lru_head, lru_tail;
	uint32_t *cstamp, *rstamp, *cand, seq;
	uint32_t *heap, n_heap; /* groups of bounded correlations, a min-heap by window end */
	int64_t *times;		/* scratch: one group's entry times, in order */
	uint64_t *vhs;		/* scratch: their values */
	uint32_t *eidx;		/* scratch: their entry indices */
	struct vslot *vtab;	/* scratch: distinct-value counts (VTAB slots) */
	uint32_t *vused, n_vused;
	int64_t clock;	 /* the stream's time: the newest accepted event time (NONE_TS: none) */
	int64_t pending; /* a time far from the clock, not yet confirmed by a second event */
	int64_t ref;	 /* the caller's clock (rf_corr_set_clock), NONE_TS if never given */
	int64_t clock_at, pending_at; /* the caller's clock when clock / pending were set */
	struct rf_corr_stats st;
};

static inline int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN + 1;
	return r;
}

/* Where a match's values come from: an event, or the group of a correlation that fired. */
struct src {
	const struct rf_event *ev;
	const uint8_t *const *vals;
	const size_t *lens;
};

/* The correlation types' names, by enum rf_corr_type (the alert's type). */
extern const char *const type_names[];

/* correlate.c: the heap of open bounded windows */
void heap_push(struct rf_corr *c, uint32_t gi);
/* Restore the heap order around position at (its key went up or down). */
void heap_fix(struct rf_corr *c, uint32_t at);

/* correlate.c: the pools */
void lru_unlink(struct rf_corr *c, uint32_t gi);
void lru_append(struct rf_corr *c, uint32_t gi);
/* Remove group gi from every list and return it and its entries to the pools. */
void group_release(struct rf_corr *c, uint32_t gi);
/* A free group slot (NIL only when out of memory with no group to drop). */
uint32_t group_alloc(struct rf_corr *c);
/* Insert (ts, vh) into gi's entries, in time order; false: not stored. */
bool entry_insert(struct rf_corr *c, uint32_t gi, int64_t ts, uint64_t vh);
/* Drop a group's entries older than cutoff. */
void entries_expire(struct rf_corr *c, struct group *g, int64_t cutoff);
/* Copy a group's entries into the scratch arrays; returns how many. */
uint32_t entries_load(struct rf_corr *c, const struct group *g);

/* correlate.c: distinct values, for value_count */
/* The largest count of loaded entries in one window [a, a + span] that contains t (distinct
 * values when distinct). */
uint32_t best_window(struct rf_corr *c, uint32_t n, int64_t t, int64_t span, bool distinct);
/* value_count without an upper bound: drop the occurrences of a value no window needs. */
void prune_repeats(struct rf_corr *c, uint32_t gi, uint32_t n, int64_t span);

/* corr_feed.c: a match of rule (or correlation) r, the r-th reference of correlation k, from s
 * at ts; returns the alerts it led to (fn called for each that is not silent). */
int feed(struct rf_corr *c, uint32_t k, uint32_t r, const struct src *s, int64_t ts,
	 rf_corr_alert_fn fn, void *ud);
/* corr_feed.c: correlation k fired for group gi with count: report, release the group (unless
 * keep), pass the match on; returns the alerts. */
int fire(struct rf_corr *c, uint32_t k, uint32_t gi, uint32_t count, int64_t ts, bool keep,
	 rf_corr_alert_fn fn, void *ud);

/* corr_time.c */
/* The field of ev named name (NUL-terminated): true with its value in *ret (*ret_len bytes);
 * false when ev has no such field. */
bool event_field(const struct rf_event *ev, const char *name, const uint8_t **ret, size_t *ret_len);

#endif
