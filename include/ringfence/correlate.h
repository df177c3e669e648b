/*
 * Sigma correlation rules, evaluated (docs/sigma.md "Correlation rules"): the state that turns the
 * engine's per-event matches into correlation alerts. Pure: no I/O, no clock, no randomness of its
 * own (time is each event's timestamp, the hash key is a parameter), so the agent's worker,
 * `ringfence content eval` and the tests run the same code.
 *
 * Bounded: the state holds at most RF_CORR_GROUPS_MAX groups and RF_CORR_ENTRIES_MAX window
 * entries (limits.h), allocated as it grows. When a cap is reached the least recently active group
 * is dropped and counted (groups_dropped), never unbounded memory. The work per event is bounded
 * by the matches it has, the correlations that refer to them (each touches one group, found by a
 * hash table, and at most RF_CORR_WINDOW_MAX window entries) and the chain depth.
 *
 * Threads: one state per event stream; not shared.
 */
#ifndef RINGFENCE_CORRELATE_H
#define RINGFENCE_CORRELATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/content.h"

struct rf_corr;

struct rf_corr_stats {
	uint64_t fired;		  /* correlations that fired (silent ones in chains included) */
	uint64_t groups_dropped;  /* groups dropped at a cap (RF_CORR_GROUPS_MAX/ENTRIES_MAX) */
	uint64_t entries_dropped; /* window entries dropped from a group at the entries cap */
	uint64_t skipped;	  /* matches not counted: a group-by or value_count field absent
				   * from the event, or group-by values over RF_CORR_KEY_MAX */
	uint64_t late;		  /* events dropped: older than the stream's clock by more
				   * than RF_CORR_LATE_MS */
	uint64_t future;	  /* events dropped: later than the caller's clock by more
				   * than RF_CORR_SKEW_MS */
};

/* A correlation that fired. Strings belong to the pack (or the state); valid during the call. */
struct rf_corr_alert {
	size_t index;				 /* the correlation's position in the pack */
	const char *id, *title, *level, *author; /* level/author may be "" */
	const char *type;			 /* "event_count", "value_count", ... */
	int64_t time_ms;			 /* the time of the match that completed it, or the
						  * end of its window for a bounded count */
	uint32_t count;				 /* the count that met the condition */
	size_t n_group;
	const char *const *group_names;	    /* its group-by names */
	const uint8_t *const *group_values; /* their values in this group (not NUL-terminated) */
	const size_t *group_lens;
};

typedef void (*rf_corr_alert_fn)(void *userdata, const struct rf_corr_alert *alert);

/*
 * New state for the correlations of pk (which must outlive it; rf_engine_pack() gives the
 * engine's). key: 16 bytes for the keyed hash of group values (random in the agent, so no event
 * source can pick values that collide). A pack without correlations gives a state that does
 * nothing. Returns 0 or -ENOMEM.
 */
int rf_corr_new(const struct rf_pack *pk, const uint8_t key[16], struct rf_corr **ret) RF_WUR;
void rf_corr_free(struct rf_corr *c);

/* Correlations in the pack (0: nothing to do). */
size_t rf_corr_count(const struct rf_corr *c);

/* Does rule i feed a correlation? Is it silent: referred to only by correlations without
 * `generate: true`, so that its own matches are not alerts (Sigma's default)? */
bool rf_corr_rule_used(const struct rf_corr *c, size_t rule_index);
bool rf_corr_rule_silent(const struct rf_corr *c, size_t rule_index);

/*
 * The caller's clock (milliseconds since the epoch: the agent's wall clock at arrival; content
 * eval's at start). Optional, and may be called before each event: once given, an event more
 * than RF_CORR_SKEW_MS after it is dropped and counted (stats: future), so a forged far-future
 * time cannot become the stream's clock.
 */
void rf_corr_set_clock(struct rf_corr *c, int64_t now_ms);

/*
 * Feed one event: ev, its time (milliseconds), and the indices of the rules that matched it
 * (from rf_engine_eval's callback, any order, n at most RF_PACK_RULES_MAX). Events may arrive
 * out of time order (docs/sigma.md "Time"): a match counts with the matches of its group whose
 * times lie in one window with it, whatever their arrival order, while it is at most
 * RF_CORR_LATE_MS older than the stream's clock (the newest accepted time); older ones, and
 * ones beyond the caller's clock (rf_corr_set_clock), are dropped and counted. A time far ahead
 * of the clock moves it only when the next such event confirms it. Windows whose bounded count
 * is due are closed first (see rf_corr_advance). fn is called for each correlation alert (silent
 * correlations, referred to by another without generate, feed the chain but are not reported).
 * Returns the number of alerts reported (>= 0).
 */
int rf_corr_event(struct rf_corr *c, const struct rf_event *ev, int64_t time_ms,
		  const size_t *rules, size_t n, rf_corr_alert_fn fn, void *userdata);

/* Time has reached now_ms: close the windows of bounded conditions (lt, lte, eq, or a range) that
 * ended more than RF_CORR_LATE_MS before it, and report those whose count is in range. Returns
 * the alerts reported. */
int rf_corr_advance(struct rf_corr *c, int64_t now_ms, rf_corr_alert_fn fn, void *userdata);

/*
 * The caller's clock is now (the same clock as rf_corr_set_clock, which must have been given
 * before the events) and the stream may have gone quiet: the stream's clock moves on by the time
 * that passed on the caller's clock since an event last moved it (since the first event when no
 * second one has confirmed it yet), never past now, and the bounded windows that are then due
 * are closed as in rf_corr_advance. So a quiet stream's windows are decided RF_CORR_LATE_MS after
 * their end, as they would have been had events kept coming, while a stream that replays the past
 * keeps its own pace. An event older than the moved clock by more than RF_CORR_LATE_MS is then
 * late. A no-op without events or without the caller's clock. Cost: O(1) plus the windows
 * closed. Returns the alerts reported (>= 0).
 */
int rf_corr_idle(struct rf_corr *c, int64_t now_ms, rf_corr_alert_fn fn, void *userdata);

/* Is a window of a bounded condition open (one that rf_corr_idle may close as time passes)? */
bool rf_corr_waiting(const struct rf_corr *c);

/* End of input: close every window of a bounded condition (as if time had passed them). */
int rf_corr_flush(struct rf_corr *c, rf_corr_alert_fn fn, void *userdata);

void rf_corr_stats(const struct rf_corr *c, struct rf_corr_stats *ret);

/* What inspect shows about correlation i of a pack (strings point into the pack). */
struct rf_corr_info {
	const char *id, *title, *level, *type;
	size_t n_refs, n_group;
	uint32_t timespan_s;
	bool generate;
};
/* Correlation i (0 <= i < rf_pack_summary's n_corr); -ERANGE otherwise. */
int rf_pack_corr(const struct rf_pack *pk, size_t i, struct rf_corr_info *ret) RF_WUR;

/*
 * The time of an event in milliseconds since the epoch, from the first field present among
 * field (the agent manifest's "time" of the event type, rf_manifest_event_time; NULL: none) and
 * "UtcTime" (Sysmon: "2024-07-19 04:09:00.123"), "TimeCreated", "@timestamp", "timestamp". Read
 * as: ISO 8601 / RFC 3339 date and time, 'T', 't' or ' ' between, optional fraction
 * (milliseconds kept), optional 'Z'/'z' or offset from UTC (taken off); or epoch digits, whose
 * count decides the unit: up to 11 are seconds, with an optional fraction ("1591367999.305988",
 * zeek's ts), 12 to 16 are milliseconds. The first of them that parses is taken. Returns 0;
 * -ENOENT when the event carries none of these fields; -EINVAL when it carries at least one but
 * none parses (e.g. "03/12/2026 10:00"). Either way the caller uses its own clock: count both
 * (-EINVAL: the author's timespans silently run on that clock; rf_corr_event_time_field_in names
 * the field and its value; -ENOENT: the manifest may lack the source's time field).
 */
int rf_corr_event_time_in(const struct rf_event *ev, const char *field, int64_t *ret_ms) RF_WUR;
/* rf_corr_event_time_in without a manifest field. */
int rf_corr_event_time(const struct rf_event *ev, int64_t *ret_ms) RF_WUR;

/*
 * The first of those time fields the event carries, parsed or not: its name (field, or a static
 * string) and value (in the event, not NUL-terminated: quote it before showing it). For the
 * message about a time rf_corr_event_time_in could not read. Returns 0 or -ENOENT (none present).
 */
int rf_corr_event_time_field_in(const struct rf_event *ev, const char *field, const char **ret_name,
				const uint8_t **ret_v, size_t *ret_n) RF_WUR;
int rf_corr_event_time_field(const struct rf_event *ev, const char **ret_name,
			     const uint8_t **ret_v, size_t *ret_n) RF_WUR;

#endif
