/*
 * The rollout engine: rings, cohort buckets, the signed ramp schedule, health gates, halt and
 * the check-in decision. Pure logic: no I/O, no clock, no allocation after parsing; time is a
 * parameter (int64_t unix seconds, UTC) so the server, the fleet simulator and the tests run
 * the same code. docs/rollout.md explains the model, the JSON form and the statistics.
 *
 * Invariants (docs/design.md P6, P7):
 *  - A ring never admits a bucket earlier than the signed schedule allows: the effective
 *    percent is the signed ramp evaluated from the ring's actual open time, and the open time
 *    is never before the ring's signed not_before (the engine clamps it even if the state it is
 *    given says otherwise). The server can hold, halt or roll back; it can never speed up.
 *  - A ring opens only after the previous ring (schedule order) completed its gates; a ramp
 *    step is taken only after the gates of the step before it passed.
 *  - A failed gate halts the release in every ring; devices on a halted or rolled-back release
 *    are told to go back, at any time of day (maintenance windows never delay a rollback).
 *  - A device is never moved to an older release except away from a halted/rolled-back one.
 *
 * All structs are plain values (no pointers inside except rf_rollout_release.schedule): the
 * server may store them, the simulator may copy them. Thread-safe: nothing is global.
 *
 * CHANGED: (none yet; incompatible changes are listed here)
 * CHANGED (behaviour, same API): with a baseline, the absolute floor compares failed devices per
 * device-second of exposure, not per device (a good release's failed share grows with its age;
 * per device, hours of background crashes halted it); without exposure, per device as before.
 * ADDED (compatible): rf_rollout_health.admitted / admitted_known (the devices a step actually
 * admits cap the healthy devices it needs; zero-initialised callers keep the old behaviour).
 * ADDED (compatible): rf_rollout_health_apply (health_add without the exposure of records still
 * on the release, and with a sign: incremental health).
 * ADDED (compatible): struct rf_rollout_devrec, rf_rollout_health_add and the devrec
 * predicates, rf_rollout_baseline: the one definition of per-ring health and of the baseline,
 * used by ringfenced and the simulator alike; rf_rollout_health.local_failures and .obeyed.
 * ADDED (compatible): rf_rollout_device.fallback, reasons R_FIX and R_WAITING_FIX: a device on
 * a halted or rolled-back release is offered a newer admitted release (the fix) first, then an
 * older one, then its own last known good, else told to wait for a fix (it was told to go back
 * to a last known good it did not have, forever, and never offered the fix).
 * ADDED (compatible): integer-only schedule JSON, so a schedule can be signed as TUF canonical
 * JSON: ramp steps as "bp" (basis points) besides "percent", each fractional gate X also as
 * "X_ppm" (X * 10^6). rf_rollout_schedule_format now writes only integers ("bp" for
 * non-whole percents, "X_ppm" for the fractional gates) and returns -EINVAL for a value that
 * has no exact integer form. Reals are still parsed when they sit exactly on that grid.
 */
#ifndef RF_ROLLOUT_ROLLOUT_H
#define RF_ROLLOUT_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"
#include "ringfence/limits.h"

struct json_t; /* jansson's json_t, for callers that already hold the parsed custom object */

/* ---- the signed schedule ------------------------------------------------------------------ */

/* One step of a ring's ramp: from `after` seconds past the ring's open time, `percent_bp`
 * basis points (1/100 of a percent, 0..10000) of the ring's buckets are admitted. */
struct rf_rollout_step {
	int64_t after;	     /* seconds after the ring opened; first step may be > 0 */
	uint32_t percent_bp; /* 1..10000; steps are strictly increasing in after and non-decreasing
				in percent_bp */
};

struct rf_rollout_ring_schedule {
	char name[RF_ROLLOUT_RING_NAME_MAX]; /* [a-z0-9_-]{1,RF_ROLLOUT_RING_NAME_MAX-1} */
	int64_t not_before;		     /* unix s: earliest the ring may open (signed) */
	unsigned nsteps;		     /* 1..RF_ROLLOUT_STEPS_MAX */
	struct rf_rollout_step steps[RF_ROLLOUT_STEPS_MAX];
};

/*
 * Gate thresholds. Signed with the schedule (JSON "gates"; every field optional, defaults in
 * docs/rollout.md and from rf_rollout_gates_default()), so a compromised server cannot loosen
 * them either. The double fields travel in JSON as integer parts per million ("alpha_ppm" =
 * alpha * 10^6, ...): a parsed value is always exactly k / 10^6 for an integer k, and
 * rf_rollout_schedule_format refuses (-EINVAL) a value that is not, so that what is signed is
 * exactly what every reader computes with.
 */
struct rf_rollout_gates {
	int64_t probation_s;	  /* a device is healthy after surviving this long on the release */
	int64_t silence_s;	  /* intent to install + no check-in for this long = failed (P7) */
	int64_t min_bake_s;	  /* minimum time at each step before the next step / ring */
	uint64_t min_healthy;	  /* devices healthy after probation needed before each step */
	double alpha;		  /* family-wise one-sided significance of the baseline test */
	double margin;		  /* tolerated rate ratio new/baseline before it is a regression */
	uint64_t min_events;	  /* fewer failure events than this never halt by comparison */
	double floor_fraction;	  /* halt if this fraction of devices on the release failed ... */
	uint64_t floor_devices;	  /* ... and at least this many failed (with or without baseline) */
	double alert_margin;	  /* tolerated alert-rate ratio new/baseline */
	double alert_floor_per_h; /* halt above this many alerts per device-hour (no baseline) */
	int64_t alert_floor_min_exposure_s; /* ... once the release has this much exposure */
};

struct rf_rollout_schedule {
	char release[RF_ROLLOUT_RELEASE_ID_MAX]; /* release id, printable ASCII, NUL-terminated */
	uint8_t bucket_key[16];			 /* SipHash key = SHA-256(release id)[0..16) */
	unsigned nrings;			 /* 1..RF_ROLLOUT_RINGS_MAX, in ring order */
	struct rf_rollout_ring_schedule rings[RF_ROLLOUT_RINGS_MAX];
	struct rf_rollout_gates gates;
};

/* The default gate thresholds (documented in docs/rollout.md). */
void rf_rollout_gates_default(struct rf_rollout_gates *ret);

/*
 * Parse a signed schedule from JSON bytes p[0..n) (untrusted: bounded by
 * RF_ROLLOUT_SCHEDULE_JSON_MAX). Accepts the TUF target's whole custom object
 * ({"ringfence":{...}, ...other keys ignored}) or the inner {"release":...,"schedule":[...],
 * "gates":{...}} object. Also computes bucket_key.
 * Returns 0 and fills *ret; -EBADMSG malformed (diag names the field, e.g.
 * "schedule[1].ramp[2].percent: must be >= previous step (50)"); -E2BIG over a limit.
 * *ret is written only on success. No allocation survives the call.
 */
int rf_rollout_schedule_parse(const uint8_t *p, size_t n, struct rf_rollout_schedule *ret,
			      struct rf_diag *reterr) RF_WUR;

/* The same from an already parsed jansson object (either form above). */
int rf_rollout_schedule_from_json(const struct json_t *obj, struct rf_rollout_schedule *ret,
				  struct rf_diag *reterr) RF_WUR;

/*
 * Serialize s to canonical compact JSON (the inner object, keys sorted) into out[0..outsz)
 * with a NUL. Integers only (steps as "percent" when a whole percent, else "bp"; fractional
 * gates as "X_ppm"), so the output is valid TUF canonical JSON and can be signed as is.
 * Returns the length written (excluding NUL), -E2BIG if it does not fit
 * (RF_ROLLOUT_SCHEDULE_JSON_MAX always fits), -EINVAL if a step's percent_bp is outside
 * 1..10000 or a fractional gate is not exactly k / 10^6 within its parser range (such a struct
 * did not come from the parser; writing it would not round-trip), -ENOMEM.
 * For every s the parser returned: parse(format(s)) == s, byte for byte.
 */
int rf_rollout_schedule_format(const struct rf_rollout_schedule *s, char *out, size_t outsz);

/* Index of ring `name` (NUL-terminated) in s, or -1 when the release is not scheduled for it
 * (then it never reaches that ring). */
int rf_rollout_ring_index(const struct rf_rollout_schedule *s, const char *name);

/* ---- cohorts ------------------------------------------------------------------------------ */

/* Key for rf_rollout_bucket: SHA-256 of the release id, first 16 bytes. */
void rf_rollout_bucket_key(const char *release, size_t len, uint8_t ret_key[16]);

/*
 * The device's bucket for a release: SipHash-2-4(key, device id) mod RF_ROLLOUT_BUCKETS
 * (0..9999). Stable for a (device, release), independent across releases. ~20 ns, no
 * allocation. Bucket b is admitted by a ring at percent_bp p iff b < p.
 */
uint32_t rf_rollout_bucket(const uint8_t key[16], const void *device_id, size_t len);

/* SipHash-2-4 itself (exposed for tests against the reference vectors). */
uint64_t rf_rollout_siphash24(const uint8_t key[16], const void *p, size_t n);

/*
 * Agent-side P6 check, from signed data only: may ring `ring` admit `bucket` at `now`?
 * True iff the ring is in the schedule, now >= not_before + after of the first step whose
 * percent exceeds bucket. This is the fastest the release can ever reach the device; the
 * server's answer may only be slower. An agent refuses an offer for which this is false.
 */
bool rf_rollout_schedule_admits(const struct rf_rollout_schedule *s, const char *ring,
				uint32_t bucket, int64_t now);

/* Earliest unix time at which ring index `ring` may admit `bucket` (P6 bound, from
 * not_before), or INT64_MAX if no step ever admits it / ring out of range. */
int64_t rf_rollout_admit_time(const struct rf_rollout_schedule *s, int ring, uint32_t bucket);

struct rf_rollout_release;

/* ---- release state ------------------------------------------------------------------------ */

enum rf_rollout_phase {
	RF_ROLLOUT_NOT_STARTED = 0,
	RF_ROLLOUT_RAMPING,  /* opened; step <= last step */
	RF_ROLLOUT_COMPLETE, /* last step reached and its gates passed */
};

enum rf_rollout_status {
	RF_ROLLOUT_ACTIVE = 0,	/* rings open and ramp as gates pass */
	RF_ROLLOUT_HELD,	/* operator hold: no device newly takes it, nothing advances;
				   devices already on it stay; gates can still halt it */
	RF_ROLLOUT_HALTED,	/* gate failure or operator halt, in every ring: no device takes
				   it, devices on it go back. An operator may resume it. */
	RF_ROLLOUT_ROLLED_BACK, /* operator rollback: like halted, but final */
};

/* What tripped a halt (RF_ROLLOUT_CAUSE_OPERATOR for manual halts and rollbacks). */
enum rf_rollout_metric {
	RF_ROLLOUT_M_NONE = 0,
	RF_ROLLOUT_M_CRASH,
	RF_ROLLOUT_M_ROLLBACK,
	RF_ROLLOUT_M_REJECT,
	RF_ROLLOUT_M_SILENT,
	RF_ROLLOUT_M_ALERT,
	RF_ROLLOUT_M_FLOOR,    /* absolute floor: too many failed devices, baseline or not */
	RF_ROLLOUT_M_OPERATOR, /* a person halted or rolled back */
	RF_ROLLOUT_M_COUNT_
};

struct rf_rollout_ring_state {
	uint8_t phase;	      /* enum rf_rollout_phase */
	uint8_t step;	      /* index of the highest step whose preceding gate passed */
	int64_t opened_at;    /* >= not_before; 0 while NOT_STARTED */
	int64_t step_at;      /* when `step` was taken */
	int64_t completed_at; /* when the ring completed (its gate passed); 0 before */
};

struct rf_rollout_state {
	uint8_t status;	     /* enum rf_rollout_status */
	uint8_t halt_metric; /* enum rf_rollout_metric, when HALTED / ROLLED_BACK */
	int8_t halt_ring;    /* ring whose gate failed, -1 for operator / none */
	int64_t halted_at;   /* unix s, 0 if never */
	char halt_reason[RF_ROLLOUT_REASON_MAX]; /* human text, NUL-terminated */
	struct rf_rollout_ring_state rings[RF_ROLLOUT_RINGS_MAX];
};

/* A fresh state for schedule s: ACTIVE, every ring NOT_STARTED. Call rf_rollout_evaluate to
 * open the first ring once its not_before has come. */
void rf_rollout_state_init(const struct rf_rollout_schedule *s, struct rf_rollout_state *ret);

/*
 * Operator transitions (pure: they only rewrite *st). reason (may be NULL) is copied, cut at
 * RF_ROLLOUT_REASON_MAX-1 bytes.
 *  hold:     ACTIVE -> HELD.                          -EALREADY if HELD, -EPERM if halted/rolled
 * * back. resume:   HELD or HALTED -> ACTIVE (ring progress is kept, the bake clock of ramping rings
 * restarts at now; the caller should reset the health window it feeds the gates, or the same
 * evidence halts it again). -EALREADY if ACTIVE, -EPERM if ROLLED_BACK. halt:     ACTIVE/HELD ->
 * HALTED (metric OPERATOR). -EALREADY if HALTED, -EPERM if ROLLED_BACK. rollback: any ->
 * ROLLED_BACK (final).              -EALREADY if ROLLED_BACK. Return 0 on success.
 * A rollback of a release a gate halted keeps the gate's metric, ring and reason (the evidence)
 * and appends "; then rolled back: <reason>" (cut to fit).
 */
int rf_rollout_hold(struct rf_rollout_state *st, int64_t now, const char *reason);
int rf_rollout_resume(struct rf_rollout_state *st, int64_t now);
int rf_rollout_halt(struct rf_rollout_state *st, int64_t now, const char *reason);
int rf_rollout_rollback(struct rf_rollout_state *st, int64_t now, const char *reason);

/* Effective admitted percent (basis points) of ring index `ring` at now under state st:
 * 0 unless ACTIVE and the ring is open; never above the signed ramp from max(opened_at,
 * not_before). */
uint32_t rf_rollout_effective_bp(const struct rf_rollout_schedule *s,
				 const struct rf_rollout_state *st, int ring, int64_t now);

/* ---- health and gates --------------------------------------------------------------------- */

/*
 * Health of one release in one ring, aggregated by the server or the simulator over the same
 * window for the new release and for its baseline (the previous release in the same ring).
 * Counts of events are treated as Poisson in exposure; devices are distinct devices.
 */
struct rf_rollout_health {
	uint64_t devices;    /* devices that recorded intent to install it (took it) */
	uint64_t healthy;    /* devices that survived gates.probation_s on it (P7) */
	uint64_t failed;     /* distinct devices that crashed, rolled back, rejected it or went
				silent after intent (the absolute floor counts these) */
	uint64_t crashes;    /* crash events while on it */
	uint64_t rollbacks;  /* guard rollbacks away from it (quarantine / last known good) */
	uint64_t rejections; /* verifier rejections of it on devices */
	uint64_t silent;     /* devices silent for gates.silence_s after intent (P7) */
	uint64_t alerts;     /* alerts raised while on it */
	uint64_t exposure_s; /* device-seconds spent on it */
	uint64_t
	    population; /* devices in the ring (0 = unknown): caps min_healthy for small rings */
	/* Appended (compatible: a zero-initialised struct behaves as before). The number of the
	 * ring's devices the step being judged actually admits: those whose bucket for this
	 * release is below the ring's effective percent (rf_rollout_effective_bp at the same
	 * `now`; while ACTIVE that is the current step's percent_bp), online or not; devices
	 * known never to take it (pinned to N-1) may be left out. When admitted_known, the healthy
	 * devices required before the next step are min(min_healthy, admitted) instead of the
	 * population-based estimate, so a step that admits fewer devices than min_healthy can
	 * still advance, and a step that admits nobody advances on bake time alone (nobody is
	 * exposed, so there is no evidence to wait for; see docs/rollout.md). */
	uint64_t admitted;
	bool admitted_known; /* false: admitted is ignored (fallback: the population cap) */
	/* Appended (compatible): failures that were not the content's doing (a corrupt file in
	 * the device's store, a full disk, a stale or rolled-back TUF mirror, a bad signature, a
	 * download whose hash does not match): shown to the operator, never judged by a gate. */
	uint64_t local_failures;
	/* Appended (compatible): devices that left the release because the server told them to
	 * (an operator's or a gate's halt): not failures. */
	uint64_t obeyed;
};

/*
 * One device's record on one release: what the server keeps per device and the simulator per
 * simulated device, and the only input of rf_rollout_health_add. Counts are of the device's
 * reports about this release, already attributed (docs/rollout.md, "One definition of
 * health"): crashes, rollbacks, rejects and quarantined are the content's fault; local are not.
 */
struct rf_rollout_devrec {
	int64_t intent_at;  /* took it: intent recorded, or first seen running it */
	int64_t healthy_at; /* reported healthy (survived probation on the device); 0 not yet */
	int64_t left_at;    /* moved to another release; 0 still on it */
	uint32_t crashes;   /* crashes or hangs on it after load */
	uint32_t rollbacks; /* the device's guard left it for its last known good */
	uint32_t rejects;   /* the device's verifier rejected it against its manifest */
	uint32_t quarantined; /* 0/1: the guard quarantined it */
	uint32_t local;	      /* failures of the device or the transit, not the content */
	bool obeyed;	      /* left it because the server said so (a halt): not a failure */
	uint64_t alerts;      /* alerts raised while on it */
};

/* P7, the one definition. Healthy: reported healthy at least probation_s after it took it.
 * Silent: took it, still on it, not healthy, and not heard from (max(intent_at, seen)) for
 * silence_s. Failed: crashed, rolled back by its guard, rejected, quarantined or silent, all
 * the content's doing (local failures and obeyed halts never count). */
bool rf_rollout_devrec_healthy(const struct rf_rollout_gates *g, const struct rf_rollout_devrec *r);
bool rf_rollout_devrec_silent(const struct rf_rollout_gates *g, const struct rf_rollout_devrec *r,
			      int64_t seen, int64_t now);
bool rf_rollout_devrec_failed(const struct rf_rollout_gates *g, const struct rf_rollout_devrec *r,
			      int64_t seen, int64_t now);

/*
 * Add one device's record r on a release to that release's health h in the device's ring, at
 * now; seen is when the device was last heard from (a server passes max(last check-in, its own
 * start), so its downtime never makes a device silent). Counts the device, healthy, failed,
 * each event, silent, local failures, obeyed halts and exposure (intent_at to left_at or now).
 * The server sums it over its devices; the simulator applies it to each device it changes.
 */
void rf_rollout_health_add(const struct rf_rollout_gates *g, const struct rf_rollout_devrec *r,
			   int64_t seen, int64_t now, struct rf_rollout_health *h);

/*
 * The part of rf_rollout_health_add that does not move with time: everything but the exposure
 * of a record still on the release (left_at 0), which grows with now, with silent given
 * (rf_rollout_devrec_silent at the caller's now). sign +1 adds the record, -1 removes it
 * (counts wrap modulo 2^64, so removing exactly what was added is exact). A server keeps
 * per-ring health incrementally with it: it removes a device's record before the record
 * changes and adds it back after, and adds the exposure of records still on the release
 * (count * now - sum of intent_at) when it reads the health. rf_rollout_health_add is this
 * plus that exposure.
 */
void rf_rollout_health_apply(const struct rf_rollout_gates *g, const struct rf_rollout_devrec *r,
			     bool silent, int sign, struct rf_rollout_health *h);

/*
 * The baseline of releases[i] (oldest first): the newest older release that is not halted or
 * rolled back, so a bad release is never the yardstick of the next one. Returns its index, or
 * -1 when there is none (then only the absolute floors judge releases[i]). Its health in the
 * ring of the same name is the baseline the gates compare against.
 */
int rf_rollout_baseline(const struct rf_rollout_release *releases, size_t n, size_t i);

/* Is a device that recorded intent at intent_at and was last seen at last_seen silent (P7)? */
bool rf_rollout_is_silent(const struct rf_rollout_gates *g, int64_t intent_at, int64_t last_seen,
			  int64_t now);

enum rf_rollout_verdict {
	RF_ROLLOUT_V_PASS = 0, /* healthy and enough evidence: may step */
	RF_ROLLOUT_V_WAIT,     /* healthy so far, not enough bake time / healthy devices yet */
	RF_ROLLOUT_V_FAIL,     /* regression: halt */
};

/* The outcome of one health check, for status pages and tests. */
struct rf_rollout_check {
	uint8_t verdict;	   /* enum rf_rollout_verdict */
	uint8_t metric;		   /* on FAIL: which metric; else the metric with the smallest p */
	double p_value;		   /* that metric's one-sided p-value (1.0 when not tested) */
	uint64_t required_healthy; /* min_healthy after the admitted (or population) cap */
};

/*
 * Judge new-release health h against baseline b (NULL or zero exposure = no baseline: only the
 * absolute floors apply), with gates g, for a step taken at step_at, at now. Pure; the verdict
 * does not depend on the release state. See docs/rollout.md for the test:
 * for each metric m, x1 | x1+x2 ~ Binomial(x1+x2, p0), p0 = margin*t1 / (margin*t1 + t2),
 * FAIL if P(X >= x1) < alpha / 6 (Bonferroni over 5 metrics + the floor) and x1 >= min_events.
 */
void rf_rollout_check_health(const struct rf_rollout_gates *g, const struct rf_rollout_health *h,
			     const struct rf_rollout_health *b, int64_t step_at,
			     uint32_t percent_bp, int64_t now, struct rf_rollout_check *ret);

/* One-sided upper tail P(X >= k) for X ~ Binomial(n, p), accurate to ~1e-12 relative in the
 * range that matters (p-values down to 1e-300); bounded work (exposed for tests). */
double rf_rollout_binom_sf(uint64_t k, uint64_t n, double p);

/* What rf_rollout_evaluate did, for logs and the dashboard. */
struct rf_rollout_eval {
	bool changed;	   /* *ret_state differs from the input state */
	bool halted;	   /* a gate failed in this call: release is now HALTED */
	int opened;	   /* ring index opened in this call, or -1 */
	int stepped;	   /* ring index that took a ramp step in this call, or -1 */
	int completed;	   /* ring index that completed in this call, or -1 */
	int64_t next_eval; /* call again at this time even if no health changed (INT64_MAX:
			      only when health or state changes) */
	struct rf_rollout_check checks[RF_ROLLOUT_RINGS_MAX]; /* per ring (open rings only) */
};

/*
 * Advance a release at now: check health in every open ring (any FAIL halts the release in
 * every ring, with reason), then, if ACTIVE, take at most one ramp step per ring whose gates
 * PASS and whose signed time has come, complete rings, and open the next ring at
 * max(not_before, previous ring's completed_at) once now has reached it.
 * health[] and baseline[] are indexed like s->rings (baseline may be NULL, or have entries of
 * zero exposure). Pure: writes *ret_state (may alias cur) and *ret_eval (may be NULL).
 * Returns 0, or -EINVAL if cur is inconsistent with s (e.g. a step index out of range).
 * Call it whenever health counters change or at ret_eval->next_eval, whichever is first.
 */
int rf_rollout_evaluate(const struct rf_rollout_schedule *s, const struct rf_rollout_state *cur,
			const struct rf_rollout_health *health,
			const struct rf_rollout_health *baseline, int64_t now,
			struct rf_rollout_state *ret_state, struct rf_rollout_eval *ret_eval);

/* ---- tenant policy and the check-in decision ----------------------------------------------- */

enum rf_rollout_pin {
	RF_ROLLOUT_PIN_N = 0, /* newest release the device is admitted to */
	RF_ROLLOUT_PIN_N1,    /* one behind: never the newest release open in its ring */
};

struct rf_rollout_policy {
	uint8_t pin;		 /* enum rf_rollout_pin */
	uint32_t window_start_s; /* daily UTC maintenance window start, seconds of day 0..86399 */
	uint32_t window_len_s;	 /* its length, 1..86400; 0 = no window (updates at any time).
				    Windows may wrap past midnight. Rollbacks ignore the window. */
};

/* A release as the decision sees it: its schedule and current state. */
struct rf_rollout_release {
	const struct rf_rollout_schedule *schedule;
	struct rf_rollout_state state;
};

struct rf_rollout_device {
	const void *id; /* device id bytes (the bucket input) */
	size_t id_len;
	const char *ring; /* the device's ring name (from its tenant policy or enrollment) */
	int current;	  /* index in releases[] of the release it runs, -1 none/unknown */
	/* Appended (compatible): the device holds a last known good other than the content it
	 * runs (it reported one with a different hash), so "go back to your own last known good"
	 * means something. false (zero-initialised): it has nowhere of its own to go back to. */
	bool fallback;
};

enum rf_rollout_action {
	RF_ROLLOUT_STAY = 0, /* keep what you run (release = current, may be -1) */
	RF_ROLLOUT_INSTALL,  /* install releases[release] (newer than current) */
	RF_ROLLOUT_GO_BACK,  /* leave current: install releases[release], or, if release == -1,
				return to your own last known good */
};

enum rf_rollout_reason {
	RF_ROLLOUT_R_UP_TO_DATE = 0, /* on the newest release it is admitted to */
	RF_ROLLOUT_R_NEW,	     /* admitted to a newer release */
	RF_ROLLOUT_R_NOT_YET,	     /* a newer release exists, its ring/bucket is not open yet */
	RF_ROLLOUT_R_WINDOW,	     /* admitted, but outside the tenant's maintenance window */
	RF_ROLLOUT_R_PINNED,	     /* pinned to N-1: newest open release is skipped */
	RF_ROLLOUT_R_HELD,	     /* the newer release is held by an operator */
	RF_ROLLOUT_R_HALTED,	     /* current release is halted: go back */
	RF_ROLLOUT_R_ROLLED_BACK,    /* current release was rolled back: go back */
	RF_ROLLOUT_R_NONE,	     /* no release for this device at all */
	/* Appended (compatible). */
	RF_ROLLOUT_R_FIX,	  /* current release is halted/rolled back: install the newer one */
	RF_ROLLOUT_R_WAITING_FIX, /* current release is halted/rolled back and there is nothing
				     to go to yet (no newer admitted release, no older one, no
				     last known good of its own): stay and keep checking in */
	RF_ROLLOUT_R_COUNT_
};

struct rf_rollout_answer {
	uint8_t action;	     /* enum rf_rollout_action */
	uint8_t reason;	     /* enum rf_rollout_reason */
	int release;	     /* index in releases[] to run, -1 = none / own last known good */
	int64_t next_change; /* earliest time this answer can change if no release state changes
				(hold, halt, resume, rollback, evaluate() stepping/opening);
				INT64_MAX = only on such a change. Always > now. */
};

/*
 * The check-in decision. releases[0..n) are ordered oldest to newest (n <= RF_ROLLOUT_DECIDE_MAX).
 * Pure, no allocation, O(n * rings); computes one bucket per candidate release.
 *  1. current halted/rolled back: the device must leave it, at any time of day (maintenance
 *     windows never delay leaving bad content), in this order:
 *     a. INSTALL (R_FIX) the newest release newer than current the device is admitted to now
 *        (schedule, gates, halts, pin N-1): the fix;
 *     b. else GO_BACK to the newest older release it is admitted to;
 *     c. else, when dev->fallback, GO_BACK with release -1 (its own last known good);
 *     d. else STAY (R_WAITING_FIX): nothing to go to; it keeps checking in and takes the fix
 *        as soon as one is admitted for it. Never an endless go-back with nowhere to go.
 *  2. else target = newest release admitted to the device (ACTIVE, ring open, bucket <
 *     effective percent), skipping with pin N-1 every release at or above the newest one open
 *     in its ring (ACTIVE or HELD). Never older than current.
 *  3. target newer than current: INSTALL inside the window, else STAY (R_WINDOW).
 * Returns 0, or -EINVAL (n too large, current out of range, NULL arguments).
 */
int rf_rollout_decide(const struct rf_rollout_device *dev, const struct rf_rollout_policy *pol,
		      const struct rf_rollout_release *releases, size_t n, int64_t now,
		      struct rf_rollout_answer *ret);

/* Is now inside pol's maintenance window (true when it has none)? If ret_next is not NULL it
 * receives the next time the answer flips (INT64_MAX when there is no window). */
bool rf_rollout_in_window(const struct rf_rollout_policy *pol, int64_t now, int64_t *ret_next);

/* Stable lower-case names for logs, JSON and the dashboard ("ramping", "halted", "crash"...). */
const char *rf_rollout_phase_name(int phase);
const char *rf_rollout_status_name(int status);
const char *rf_rollout_metric_name(int metric);
const char *rf_rollout_action_name(int action);
const char *rf_rollout_reason_name(int reason);

#endif
