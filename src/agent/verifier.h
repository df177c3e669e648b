/*
 * The verifier child of ringfence-agent: checks downloaded pack bytes against the run's
 * manifest (rf_pack_open + rf_pack_check, P1) in a short-lived child process with hard limits,
 * so that no pack can crash, hang or exhaust the supervisor and its update channel (P5).
 *
 * Invariants:
 *   - the supervisor never blocks on the child: it waits with poll() against a wall-clock
 *     deadline and, at the deadline, kills the child with SIGKILL and reaps it;
 *   - the child runs under rlimits (address space, CPU time, no files, no processes, no core
 *     dump: include/ringfence/limits.h, RF_AGENT_VERIFY_*) and dies with the supervisor;
 *   - a child that times out, runs out of memory or dies is a rejection of the pack (it is the
 *     content that made the verifier fail), with words that say which;
 *   - nothing the child says is trusted beyond its exit status: its message is bounded and only
 *     shown (the caller quotes it into a report).
 */
#ifndef RF_AGENT_VERIFIER_H
#define RF_AGENT_VERIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"

/* Test-only faults the child plays instead of verifying (docs/agent.md, RINGFENCE_FAULT_VERIFY):
 * stand-ins for a pack that makes the verifier misbehave. None can make a pack accepted. */
enum rf_verifier_fault {
	RF_VERIFIER_FAULT_NONE = 0,
	RF_VERIFIER_FAULT_HANG = 1,  /* sleep forever: the wall-clock deadline must end it */
	RF_VERIFIER_FAULT_SPIN = 2,  /* burn CPU forever: RLIMIT_CPU or the deadline ends it */
	RF_VERIFIER_FAULT_OOM = 3,   /* allocate and touch memory: RLIMIT_AS must stop it */
	RF_VERIFIER_FAULT_CRASH = 4, /* die on SIGSEGV */
};

struct rf_verifier_limits {
	uint32_t timeout_ms; /* wall clock, enforced by the parent (SIGKILL at expiry) */
	uint32_t cpu_s;	     /* RLIMIT_CPU of the child (soft; the hard limit is one more) */
	uint64_t mem_bytes;  /* address space the child may add to what it inherited (RLIMIT_AS) */
	enum rf_verifier_fault fault;
};

/* The limits of include/ringfence/limits.h (RF_AGENT_VERIFY_*), no fault. */
void rf_verifier_limits_default(struct rf_verifier_limits *l);

/* "hang", "spin", "oom", "crash" -> the fault. 0, or -EINVAL for anything else. */
int rf_verifier_fault_parse(const char *s, enum rf_verifier_fault *ret) RF_WUR;

/*
 * Verify pack bytes (p, n) against the manifest JSON (m, mlen) (the run's, manifests.h) in a
 * child bounded by lim. Returns 0 accepted; -ENOEXEC rejected, with why (NUL-terminated, cut to whysz) saying why: the
 * verifier's first diagnostic, or that the verifier timed out, ran out of memory, went over its
 * CPU time or died on a signal on this pack; -EINVAL bad arguments; another negative errno when
 * the child could not be started (pipe, fork): no verdict on the pack. A manifest that does
 * not parse rejects every pack (why says so). Returns within about lim->timeout_ms whatever
 * the child does.
 */
int rf_verifier_run(const uint8_t *p, size_t n, const uint8_t *m, size_t mlen,
		    const struct rf_verifier_limits *lim, char *why, size_t whysz) RF_WUR;

#endif
