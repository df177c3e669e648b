/*
 * The packs this agent refused in this run (a TUF, schedule-signature, hash or verifier
 * verdict), so an offer the server repeats at every check-in is not downloaded and verified
 * again each time.
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

#endif
