/*
 * The crash-loop guard: a pure state machine that decides which content an agent runs.
 *
 * No I/O, no allocation, no clock, no randomness: time is a parameter and every effect is an
 * action the caller carries out in order. The state is a small fixed-size plain struct (no
 * pointers) so the fleet simulator can hold millions of them and the store can persist it.
 *
 * Model (docs/design.md P4, P5, P1):
 *   - A verified candidate becomes the trial pack. Before EVERY load of a pack the guard
 *     increments that pack's attempt counter and emits PERSIST ahead of LOAD (write-ahead): a
 *     death of the whole agent at any instant is therefore already counted at the next BOOT.
 *   - A trial pack that survives probation (cfg->probation_ms of run time AND
 *     cfg->probation_events evaluated, in one run) is promoted: it becomes the last known good
 *     (LKG). That is the only way a pack becomes the LKG.
 *   - A trial pack whose attempts reach cfg->attempt_limit without surviving probation is
 *     quarantined by content hash, the LKG is loaded (attempts counted the same way) and
 *     reports are queued. If the LKG reaches the limit too the agent gives it up (it is not
 *     quarantined: it proved itself before, and repeated power loss looks the same) and enters
 *     safe mode: no content, but the caller keeps checking in and takes a fix. Offered again,
 *     the old LKG comes back as a trial, whose crash loop does quarantine it.
 *   - A quarantined hash is never loaded again, whatever version it arrives under.
 *   - A server rollback abandons a trial for the LKG. With no distinct LKG it changes nothing
 *     (the trial keeps running; the fix arrives as a new candidate): it never drops the agent
 *     into safe mode or a state a repeated order would act on again.
 *
 * Invariants (tests/agent/test_guard.c checks them after every step and every crash):
 *   I1 the LKG is never a quarantined hash;
 *   I2 no LOAD action names a quarantined hash;
 *   I3 every LOAD is preceded, in the same action list, by a PERSIST of a state whose attempt
 *      counter for that pack already includes this load;
 *   I4 a pack that crashes at every load is loaded exactly cfg->attempt_limit times, then
 *      quarantined.
 *
 * Quarantine fingerprints: the state keeps the first 8 bytes of the SHA-256 of the last
 * RF_GUARD_QUARANTINE_MAX quarantined packs (the store keeps every full hash and its reason).
 * A fingerprint collision can only make the guard refuse a pack, never load a quarantined one.
 */
#ifndef RF_AGENT_GUARD_H
#define RF_AGENT_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"
#include "ringfence/limits.h"

#define RF_GUARD_HASH_LEN 32

/* What the agent runs. */
enum rf_guard_mode {
	RF_GUARD_MODE_EMPTY = 0, /* never had content (fresh install); nothing to load */
	RF_GUARD_MODE_TRIAL = 1, /* running (or about to load) the trial pack */
	RF_GUARD_MODE_LKG = 2,	 /* running (or about to load) the last known good */
	RF_GUARD_MODE_SAFE = 3,	 /* safe mode: content failed, nothing loaded, still checking in */
};

/* Inputs. Only the members noted are read for each type. */
enum rf_guard_event_type {
	RF_GUARD_EV_BOOT = 1,	     /* the agent (re)started; whatever was loaded before is gone */
	RF_GUARD_EV_CANDIDATE = 2,   /* hash: downloaded, TUF-verified, manifest-verified pack */
	RF_GUARD_EV_REJECTED = 3,    /* hash: a pack that failed TUF or manifest verification */
	RF_GUARD_EV_LOADED = 4,	     /* the pack of the last LOAD action is loaded and running */
	RF_GUARD_EV_LOAD_FAILED = 5, /* the last LOAD failed (counted like a crash of that pack) */
	RF_GUARD_EV_CRASH = 6,	     /* the worker running the current content died */
	RF_GUARD_EV_TICK = 7,	     /* events: events evaluated since the previous tick */
	RF_GUARD_EV_ROLLBACK = 8,    /* the server ordered a rollback: abandon the trial for the
				      * LKG; a no-op unless a trial runs and a distinct LKG exists */
	RF_GUARD_EV_SHUTDOWN = 9,    /* clean stop: the current load is refunded (not a crash) */
};
#define RF_GUARD_EV_FIRST RF_GUARD_EV_BOOT
#define RF_GUARD_EV_LAST  RF_GUARD_EV_SHUTDOWN

struct rf_guard_event {
	enum rf_guard_event_type type;
	uint64_t now_ms; /* caller's monotonic clock in ms (only compared within one run) */
	uint64_t events; /* RF_GUARD_EV_TICK */
	uint8_t hash[RF_GUARD_HASH_LEN]; /* RF_GUARD_EV_CANDIDATE, RF_GUARD_EV_REJECTED */
};

/* Reports, named as docs/protocol.md "Report" events. */
enum rf_guard_report {
	RF_GUARD_REPORT_INTENT = 1,	   /* about to load a new pack on trial (write-ahead) */
	RF_GUARD_REPORT_TRIAL_STARTED = 2, /* trial pack loaded and evaluating */
	RF_GUARD_REPORT_HEALTHY = 3,	   /* survived probation: now the LKG */
	RF_GUARD_REPORT_CRASHED = 4,	   /* attempt/limit say which */
	RF_GUARD_REPORT_ROLLED_BACK = 5,   /* went back to the LKG (or to nothing: safe mode) */
	RF_GUARD_REPORT_REJECTED = 6,	 /* failed verification, or is quarantined; never loaded */
	RF_GUARD_REPORT_QUARANTINED = 7, /* attempts reached the limit */
};

enum rf_guard_reason {
	RF_GUARD_REASON_NONE = 0,
	RF_GUARD_REASON_CRASH_LOOP = 1,	    /* trial reached the attempt limit */
	RF_GUARD_REASON_LKG_CRASH_LOOP = 2, /* the LKG reached the attempt limit: given up */
	RF_GUARD_REASON_VERIFY = 3,	    /* failed TUF or manifest verification */
	RF_GUARD_REASON_QUARANTINED = 4,    /* candidate is already quarantined */
	RF_GUARD_REASON_SERVER = 5,	    /* the server ordered a rollback */
	RF_GUARD_REASON_SAFE_MODE = 6,	    /* rolled back to nothing: safe mode */
};

/* Outputs, carried out IN ORDER. A PERSIST must be durable before the next action runs. */
enum rf_guard_action_type {
	RF_GUARD_ACT_REPORT = 1,     /* queue report (report, hash, reason, attempt, limit) */
	RF_GUARD_ACT_QUARANTINE = 2, /* record hash as quarantined with reason (full hash) */
	RF_GUARD_ACT_PERSIST = 3,    /* make the current state (and queued records) durable */
	RF_GUARD_ACT_LOAD = 4,	     /* stop what runs, load pack hash (mode says trial or LKG) */
	RF_GUARD_ACT_SAFE_MODE = 5,  /* stop what runs; run no content */
};

struct rf_guard_action {
	enum rf_guard_action_type type;
	enum rf_guard_report report; /* RF_GUARD_ACT_REPORT */
	enum rf_guard_reason reason; /* RF_GUARD_ACT_REPORT, RF_GUARD_ACT_QUARANTINE */
	enum rf_guard_mode mode;     /* RF_GUARD_ACT_LOAD: RF_GUARD_MODE_TRIAL or _LKG */
	uint8_t attempt;	     /* RF_GUARD_ACT_LOAD, RF_GUARD_ACT_REPORT (crashed) */
	uint8_t limit;		     /* the configured attempt limit */
	uint8_t hash[RF_GUARD_HASH_LEN];
};

#define RF_GUARD_ACTIONS_MAX 12
struct rf_guard_actions {
	unsigned n;
	struct rf_guard_action a[RF_GUARD_ACTIONS_MAX];
};

/* Policy; not part of the state (the simulator shares one per fleet). */
struct rf_guard_config {
	uint8_t attempt_limit;	   /* loads a pack gets without surviving probation (default 3) */
	uint64_t probation_ms;	   /* run time a pack must survive in one run */
	uint64_t probation_events; /* events it must evaluate in that run */
};

/* Plain data: copy, compare and persist it freely. Read it through the helpers below. */
struct rf_guard_state {
	uint8_t trial[RF_GUARD_HASH_LEN];
	uint8_t lkg[RF_GUARD_HASH_LEN];
	uint64_t quarantine[RF_GUARD_QUARANTINE_MAX]; /* fingerprints, ring buffer */
	uint64_t run_since_ms; /* when the current load was reported LOADED (this run) */
	uint64_t run_events;   /* events evaluated since then */
	uint32_t crashes;      /* of the current content (reset when current changes) */
	uint32_t rollbacks;    /* rollbacks that led to the current content (same reset) */
	uint8_t mode;	       /* enum rf_guard_mode */
	uint8_t has_trial;
	uint8_t has_lkg;
	uint8_t trial_attempts; /* loads of the trial pack so far (counted before each load) */
	uint8_t lkg_attempts;	/* loads of the LKG since it last survived probation */
	uint8_t loaded;		/* the current pack reported LOADED in this run */
	uint8_t clean;		/* the last run ended with SHUTDOWN, not a crash */
	uint8_t nquarantine;	/* fingerprints held (<= RF_GUARD_QUARANTINE_MAX) */
	uint8_t qnext;		/* next ring slot */
	uint8_t reserved[7];	/* zero; makes the struct padding-free, so memcmp compares it */
};

/* Defaults: attempt limit RF_GUARD_ATTEMPTS_DEFAULT, probation RF_GUARD_PROBATION_*. */
void rf_guard_config_default(struct rf_guard_config *cfg);

/* A fresh state: EMPTY, nothing quarantined. */
void rf_guard_init(struct rf_guard_state *st);

/*
 * Feed one event. On success the new state is in *st and the actions to carry out, in order,
 * are in *ret (ret->n may be 0). Returns 0; -EINVAL for a NULL argument, an unknown event
 * type, an invalid config (attempt_limit 0) or a state that fails rf_guard_state_valid(); then
 * neither *st nor *ret is changed. Events that do not apply to the current state (a TICK in
 * safe mode, a LOADED nobody asked for) change nothing and return 0 with no actions.
 */
int rf_guard_step(const struct rf_guard_config *cfg, struct rf_guard_state *st,
		  const struct rf_guard_event *ev, struct rf_guard_actions *ret) RF_WUR;

/* A state read back from disk is consistent (mode and flags agree, counters within the
 * limit, quarantine ring in range, LKG not quarantined). */
bool rf_guard_state_valid(const struct rf_guard_config *cfg, const struct rf_guard_state *st);

/* hash has a quarantine fingerprint in st. */
bool rf_guard_is_quarantined(const struct rf_guard_state *st,
			     const uint8_t hash[RF_GUARD_HASH_LEN]);

/* The quarantine fingerprint of a hash: its first 8 bytes, big-endian. */
uint64_t rf_guard_fingerprint(const uint8_t hash[RF_GUARD_HASH_LEN]);

/* The pack that runs (or is about to load) in st: true and *ret filled, false in EMPTY/SAFE. */
bool rf_guard_current(const struct rf_guard_state *st, uint8_t ret[RF_GUARD_HASH_LEN]);

/* Stable lower-case names (protocol strings for reports); "?" for unknown values. */
const char *rf_guard_mode_name(enum rf_guard_mode m);
const char *rf_guard_event_name(enum rf_guard_event_type t);
const char *rf_guard_action_name(enum rf_guard_action_type t);
const char *rf_guard_report_name(enum rf_guard_report r);
const char *rf_guard_reason_name(enum rf_guard_reason r);

#endif
