/*
 * The evaluation worker of ringfence-agent: a child process that loads one verified pack and
 * evaluates events with it. Content runs only here, so a content bug that kills the process
 * kills the worker, not the supervisor and its update channel (P5); the supervisor counts the
 * death as a crash of that content (P4).
 *
 * Protocol to the supervisor: text lines on status_fd, a unix stream socket. The other way, the
 * supervisor sends one byte carrying a descriptor (SCM_RIGHTS) when --alerts FILE was rotated:
 * the new file, which the worker writes alerts to from then on (saying "alerts-reopened"). "loaded" once the engine is built,
 * "load-failed <message>" then exit 3 if it cannot be, then "stats <events> <alerts>
 * [<correlation state dropped> [<lines dropped>]]" when the counts changed (at most once a second,
 * never while idle). The optional counts are cumulative for the worker; lines dropped are event
 * lines it could not evaluate (malformed JSON, a line or value over its limit). Beside them, when
 * they changed: "alerts-lost <n> <reason>" (alerts the --alerts destination refused) and
 * "time-unparsed <n> <field> <sample>" (events fed to correlations whose time field did not
 * parse, so their time was the arrival time; sample: one such value, quoted to printable ASCII),
 * both cumulative for the worker.
 */
#ifndef RF_AGENT_WORKER_H
#define RF_AGENT_WORKER_H

#include <stdbool.h>
#include <stdint.h>

struct rf_worker_args {
	const char *pack_path; /* packs/<sha256>.rfp in the store */
	const uint8_t *hash;   /* its SHA-256 (32 bytes), re-checked after reading */
	const uint8_t *manifest; /* the run's manifest JSON (manifests.h), manifest_len bytes */
	size_t manifest_len;
	int events_fd;	       /* -1: none; a listening unix socket; or a stream/file */
	bool events_follow;    /* a regular file: keep reading as it grows (tail -f) */
	const char *events_path; /* that file's path (follow: truncation and rotation seen) */
	int alerts_fd;	       /* -1: none */
	int status_fd;
};

/* Run the worker; never returns (exits). Fault injection (docs/agent.md): when the environment
 * variable RINGFENCE_FAULT_CRASH_ON_LOAD equals the pack's hex SHA-256, the whole agent is
 * killed right after the pack loads (the stand-in for content that crashes the host); with
 * RINGFENCE_FAULT_WORKER_CRASH_ON_LOAD only the worker is. Neither bypasses any check. */
_Noreturn void rf__agent_worker_main(const struct rf_worker_args *a);

#endif
