/*
 * agent/ store internals shared by store.c (the directory, durable writes, the API) and
 * store_json.c (the state.json format). Not installed; only those two files include it.
 *
 * struct rf__store_state is everything state.json holds, nothing else: store.c keeps one in
 * its struct rf_store and changes it through the API; store_json.c turns it into state.json
 * text and back. A state rf__store_state_load accepted has every count within its array, every
 * string NUL-terminated within its field and a guard state rf_guard_state_valid accepts, so
 * store.c uses what it read as it is.
 */
#ifndef RF_AGENT_STORE_INTERNAL_H
#define RF_AGENT_STORE_INTERNAL_H

#include "agent/store.h"
#include "ringfence/limits.h"

#define NAMES_MAX 8 /* target names kept: trial, LKG and a candidate or two */

/* The target name a pack was released under, by its hash. */
struct rf__store_name {
	uint8_t hash[RF_GUARD_HASH_LEN];
	char target[RF_STORE_TARGET_MAX + 1];
};

struct rf__store_state {
	struct rf_guard_state g;
	char device_id[RF_STORE_TARGET_MAX + 1];
	char ring[RF_STORE_TARGET_MAX + 1];
	struct rf__store_name names[NAMES_MAX];
	unsigned nnames;
	struct rf_store_quarantine q[RF_AGENT_QUARANTINE_MAX];
	size_t nq;
	struct rf_store_report out[RF_AGENT_OUTBOX_MAX];
	size_t nout;
	uint64_t next_report;
	uint64_t events, alerts;
	uint64_t dropped; /* events the sources could not deliver (absent in older stores: 0) */
	uint64_t corr_dropped; /* correlation state dropped at its caps (absent: 0) */
	uint64_t transit;      /* releases whose delivery failed, each attempt (absent: 0) */
	uint64_t alerts_lost;  /* alerts the --alerts destination refused (absent: 0) */
	uint64_t time_unparsed; /* events whose time field did not parse (absent: 0) */
	uint64_t counts[RF_STORE_COUNT_N]; /* enum rf_store_count (each absent: 0) */
};

/* s := the state of a new store (no content, no records, next report id 1). */
void rf__store_state_reset(struct rf__store_state *s);

/*
 * Parse state.json bytes (p, n) into s, which the caller has reset: fields that later versions
 * of format 1 added are optional and keep their reset value when absent. 0, or -EBADMSG with d
 * saying which field is wrong; on an error s is partly written and must be reset again.
 */
int rf__store_state_load(struct rf__store_state *s, const uint8_t *p, size_t n,
			 struct rf_diag *d) RF_WUR;

/* *ret_text := s as state.json text (NUL-terminated, keys sorted; the caller frees it).
 * 0 or -ENOMEM. */
int rf__store_state_dump(const struct rf__store_state *s, char **ret_text) RF_WUR;

#endif
