/*
 * Scenario and policy files of the fleet simulator.
 *
 * A scenario (scenarios/<name>.json) describes a fleet and a bad release taken from a real
 * incident: fleet size, poll interval and jitter, offline share, reboot/restart times, the
 * release(s) and the failure mode, when the vendor reverted in reality, and how fast people
 * repaired machines that could not heal themselves. A policy (scenarios/policies/<name>.json)
 * describes how releases reach that fleet: rings and their shares of the fleet, the signed ramp,
 * the health gates (fed to the real rollout engine), whether the crash-loop guard runs on the
 * devices (the real guard state machine), and how agents retry a busy server.
 *
 * Both are untrusted JSON read with a bound (RF_SIM_FILE_MAX); every problem is reported through
 * struct rf_diag naming the field. Parsed structs are plain values (no pointers): copy freely.
 * docs/sim.md documents every field.
 */
#ifndef RF_SIM_SCENARIO_H
#define RF_SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"
#include "ringfence/limits.h"
#include "rollout/rollout.h"

/* How a bad release hurts a device that loads it. */
enum rf_sim_failure {
	RF_SIM_FAIL_NONE = 0,	 /* a good release */
	RF_SIM_FAIL_CRASH,	 /* crash delay_s after every load (0: on load; >0: after it looked
				    healthy, as Azure Front Door 2025) */
	RF_SIM_FAIL_CRASH_RATE,	 /* crash at rate_per_hour while loaded (Poisson) */
	RF_SIM_FAIL_HANG,	 /* the host stays up but stops answering (CPU exhaustion) */
	RF_SIM_FAIL_ALERT_STORM, /* nothing crashes; alerts at alerts_per_hour per device */
};

/* What a crash takes down. */
enum rf_sim_crash_kind {
	RF_SIM_CRASH_MACHINE = 0, /* kernel crash: the whole host reboots (boot_s) and the update
				     channel is down until content has loaded (CrowdStrike 2024) */
	RF_SIM_CRASH_PROCESS,	  /* one process dies and restarts (restart_s); the host, and the
				     agent's update channel, keep running */
};

struct rf_sim_release_spec {
	uint32_t at_s; /* published this many seconds after the scenario start */
	bool bad;
	uint32_t halt_s;     /* an operator halts it at this time (0 = never) */
	uint32_t rollback_s; /* an operator rolls it back at this time (0 = never) */
};

struct rf_sim_repair_point {
	uint32_t t_s;	 /* seconds after the scenario start */
	double fraction; /* cumulative share of stuck devices repaired by a person by then */
};

struct rf_sim_scenario {
	char name[64];
	char title[160];
	int64_t start;	     /* unix seconds of the scenario start (the first bad publish) */
	uint32_t duration_s; /* simulated span */
	uint64_t devices;    /* default fleet size */
	/* fleet */
	uint32_t poll_s, poll_jitter_s; /* check-in interval and uniform jitter added to each */
	double offline_fraction;	/* share of devices off at the start ... */
	uint32_t offline_mean_s;	/* ... coming online after an exponential time (mean) */
	uint32_t boot_s, boot_jitter_s; /* machine reboot: boot_s + uniform jitter */
	uint32_t restart_s;		/* process restart after a process crash */
	uint32_t checkin_after_boot_s;	/* first check-in this long after (re)start */
	double events_per_s;		/* events a device evaluates per second (guard probation) */
	double background_crash_per_hour; /* crashes unrelated to content, per device-hour */
	double base_alerts_per_hour;	  /* alerts per device-hour on good content */
	uint32_t tenants;		  /* tenants the fleet is spread over */
	double tenant_pin_n1_fraction;	  /* share of tenants pinned to N-1 */
	/* the bad content */
	enum rf_sim_failure failure;
	enum rf_sim_crash_kind crash_kind;
	uint32_t fail_delay_s;	   /* CRASH: delay after load; HANG: time to stop answering */
	double fail_rate_per_hour; /* CRASH_RATE */
	double alerts_per_hour;	   /* ALERT_STORM */
	uint32_t nreleases; /* 1..RF_SIM_RELEASES_MAX-1 (release 0 is the running baseline) */
	struct rf_sim_release_spec releases[RF_SIM_RELEASES_MAX];
	/* people */
	uint32_t vendor_fix_s; /* when the vendor rolled the bad release(s) back in reality
				  (0 = never within the scenario) */
	uint32_t baseline_rollback_s; /* an operator rolls back release 0, the content every
					 device runs at the start (0 = never): the fleet's only
					 release, so devices have nothing to go back to */
	unsigned nrepair;      /* manual repair curve; 0 = nobody repairs */
	struct rf_sim_repair_point repair[RF_SIM_REPAIR_POINTS_MAX];
	/* server */
	uint32_t server_capacity_per_s; /* check-ins the server can answer per second (0 = any) */
};

enum rf_sim_retry {
	RF_SIM_RETRY_FIXED = 0,	  /* retry after retry_base_s, always (no backoff) */
	RF_SIM_RETRY_EXPONENTIAL, /* randomized exponential backoff: uniform in [0, min(max,
				     base*2^k)] */
};

struct rf_sim_ring_spec {
	char name[RF_ROLLOUT_RING_NAME_MAX];
	double share;	       /* share of the fleet in this ring (shares are normalised) */
	uint32_t min_devices;  /* ... but at least this many (a canary ring is a set of machines) */
	uint32_t not_before_s; /* signed: earliest open, seconds after the release is published */
	unsigned nsteps;
	struct rf_rollout_step steps[RF_SIM_RAMP_MAX];
};

struct rf_sim_policy {
	char name[64];
	unsigned nrings;
	struct rf_sim_ring_spec rings[RF_SIM_RINGS_MAX];
	bool gates_enabled;	       /* false: the release is never halted by health */
	struct rf_rollout_gates gates; /* rf_rollout_gates_default() + overrides */
	uint32_t evaluate_s;	       /* the server evaluates gates this often */
	bool guard_enabled;	       /* the crash-loop guard runs on devices */
	uint8_t guard_attempt_limit;
	uint32_t guard_probation_s;
	uint64_t guard_probation_events;
	uint32_t watchdog_s; /* a worker that stops answering is killed after this (guard only) */
	enum rf_sim_retry retry;
	uint32_t retry_base_s, retry_max_s;
};

/*
 * Parse a scenario from JSON bytes p[0..n). Returns 0 and fills *ret; -EBADMSG for malformed
 * input or a field out of range (reterr names the field); -E2BIG when n > RF_SIM_FILE_MAX or a
 * list is longer than its limit. *ret is written only on success.
 */
int rf_sim_scenario_parse(const uint8_t *p, size_t n, struct rf_sim_scenario *ret,
			  struct rf_diag *reterr) RF_WUR;

/* The same for a policy. */
int rf_sim_policy_parse(const uint8_t *p, size_t n, struct rf_sim_policy *ret,
			struct rf_diag *reterr) RF_WUR;

/* The directory holding the scenario files (<name>.json) and policies/ in the source tree. */
const char *rf_sim_data_dir(void);

/* Stable names for the failure mode ("crash", "crash-rate", "hang", "alert-storm", "none"). */
const char *rf_sim_failure_name(enum rf_sim_failure f);

#endif
