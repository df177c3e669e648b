/*
 * The packs this agent refused in this run (a content verdict: the pack fails the verifier, is
 * quarantined, or has no valid signed schedule), so an offer the server repeats at every
 * check-in is not downloaded and verified again each time.
 *
 * A bounded set in a ring of RF_AGENT_REFUSED_MAX hashes: whatever the server offers, the count
 * never exceeds the capacity and nothing is read or written outside the ring; past it the
 * oldest refusal is forgotten (an old bad offer that comes back is fetched and verified again:
 * it costs a download, never a load). Memory only: a restart forgets it; the store's quarantine
 * is the durable verdict. The server is untrusted here: it chooses how many distinct hashes it
 * offers.
 */
#ifndef RF_AGENT_REFUSED_H
#define RF_AGENT_REFUSED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/limits.h"

struct rf_refused {
	uint8_t hash[RF_AGENT_REFUSED_MAX][32];
	unsigned n;    /* hashes held, <= RF_AGENT_REFUSED_MAX */
	unsigned next; /* ring slot the next new refusal goes to (the oldest once full) */
};

/* An empty set. */
void rf_refused_init(struct rf_refused *t);

/* hash (32 bytes) was refused in this run and is still held. */
bool rf_refused_has(const struct rf_refused *t, const uint8_t hash[32]);

/* Remember hash (32 bytes); a hash already held is not added twice. When the set is full the
 * oldest refusal is forgotten. */
void rf_refused_add(struct rf_refused *t, const uint8_t hash[32]);

/* Hashes held (never more than RF_AGENT_REFUSED_MAX). */
size_t rf_refused_count(const struct rf_refused *t);

/*
 * Releases whose delivery failed in this run ("transit": TUF metadata that does not verify or is
 * stale, a server hash that is not the signed one, a download that does not match). A transit
 * failure says nothing about the pack (a stale mirror, a repository being repaired, a bad
 * download), so it is never a refusal: the release is tried again, backed off so a broken
 * mirror is not hammered at every check-in, and reported again only when the reason changes or
 * RF_AGENT_BACKOFF_MAX_S after the last report. Same ring and bounds as rf_refused: past
 * RF_AGENT_REFUSED_MAX releases the oldest entry is forgotten (its next failure counts as a
 * first one). Memory only.
 */
struct rf_transit_entry {
	uint8_t hash[32];
	unsigned failures;	 /* in a row, since the last success or forget */
	uint64_t retry_at_ms;	 /* monotonic: no new attempt before */
	uint64_t reported_at_ms; /* monotonic: when the last failure was reported */
	uint64_t why;		 /* fingerprint of the last reported reason */
};

struct rf_transit {
	struct rf_transit_entry e[RF_AGENT_REFUSED_MAX];
	unsigned n, next;
};

/* An empty table. */
void rf_transit_init(struct rf_transit *t);

/* hash's delivery failed and its backoff has not run out at now_ms: do not try it yet. */
bool rf_transit_waiting(const struct rf_transit *t, const uint8_t hash[32], uint64_t now_ms);

/* Record a delivery failure of hash for reason why at now_ms; the next attempt waits
 * wait_ms(failures) (failures in a row, from 1) milliseconds. Returns true when the failure is
 * to be reported: the first one, a reason other than the last reported, or one
 * RF_AGENT_BACKOFF_MAX_S or more after the last report. *ret_failures (may be NULL) gets the
 * failures in a row and *ret_wait_ms (may be NULL) the wait. */
bool rf_transit_failed(struct rf_transit *t, const uint8_t hash[32], const char *why,
		       uint64_t now_ms, uint64_t (*wait_ms)(void *ud, unsigned failures), void *ud,
		       unsigned *ret_failures, uint64_t *ret_wait_ms);

/* hash was delivered (or its delivery was not the problem): forget its failures. */
void rf_transit_forget(struct rf_transit *t, const uint8_t hash[32]);

#endif
