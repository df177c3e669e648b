/*
 * Process creation from the Linux kernel: the netlink process connector (PROC_EVENT_EXEC),
 * enriched from /proc into Sysmon for Linux's process_creation fields, as JSON event lines the
 * worker and `ringfence content eval` read. No kernel module, no eBPF; needs CAP_NET_ADMIN.
 *
 * Nothing is lost silently. The connector numbers its messages per CPU, so a gap is a message
 * the kernel could not deliver (socket overrun or allocation failure): counted as kernel_lost
 * (messages of any kind: exec, fork, exit). An exec whose process is gone before /proc is read
 * still yields an event with what is known (ProcessId, UtcTime, the ParentProcessId remembered
 * from its fork event, the parent's fields if it lives); each missing field is counted. An
 * event the consumer has no room for is dropped before /proc is read (so dropping is cheap) and
 * counted. Library code: it prints nothing; errors are codes and a diag.
 *
 * Also here: the bounded queue of event lines between a source and its consumer, written to a
 * non-blocking descriptor, so a slow consumer costs drops, never memory or a stalled source.
 */
#ifndef RF_AGENT_SOURCE_PROC_H
#define RF_AGENT_SOURCE_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct rf_source_stats {
	uint64_t seen;	       /* exec events the kernel delivered */
	uint64_t emitted;      /* event lines handed to the sink */
	uint64_t dropped;      /* exec events dropped: the sink had no room */
	uint64_t kernel_lost;  /* connector messages the kernel lost (sequence gaps) */
	uint64_t overruns;     /* times the kernel said the socket buffer overflowed (ENOBUFS) */
	uint64_t partial;      /* events emitted with at least one field missing */
	uint64_t fields_lost;  /* fields missing in those events, in total */
	uint64_t truncated;    /* command lines cut at RF_SOURCE_PROC_CMDLINE_MAX */
	uint64_t table_resets; /* the fork table was full and cleared */
	uint64_t malformed;    /* records that could not be read (the audit and log sources) */
	uint64_t oversize;     /* lines refused whole: over a size or field limit (log source) */
	uint64_t reopened; /* files followed anew: rotated, truncated or appeared (log source) */
	uint64_t repaired; /* JSON lines kept with bytes not UTF-8 or lone surrogates as U+FFFD */
};

/* Where event lines go. room: bytes the sink can take now. put: take one line (ends in '\n'). */
struct rf_source_sink {
	size_t (*room)(void *ud);
	void (*put)(void *ud, const uint8_t *line, size_t n);
	void *ud;
};

struct rf_source_proc;

/*
 * Subscribe to the process connector. Returns 0 and *ret, -EPERM without CAP_NET_ADMIN or
 * CAP_SYS_PTRACE (reterr names the capability; the second reads other users' /proc entries), -EPROTONOSUPPORT if the kernel has no process connector, -ETIMEDOUT if
 * the kernel did not acknowledge the subscription (in a user namespace CAP_NET_ADMIN over the
 * initial namespace is what counts), -ENOMEM, or another negative errno from the socket.
 */
int rf_source_proc_open(struct rf_source_proc **ret, struct rf_diag *reterr) RF_WUR;
void rf_source_proc_free(struct rf_source_proc *s);

/* The netlink socket (non-blocking), for poll(): readable when events wait. */
int rf_source_proc_fd(const struct rf_source_proc *s);

/*
 * Read what the kernel has queued, at most max messages, without blocking; turn each exec into
 * one event line put to sink (or drop it when sink->room is short). Returns the number of
 * messages read (0: nothing was waiting), or a negative errno if the socket failed.
 */
int rf_source_proc_read(struct rf_source_proc *s, const struct rf_source_sink *sink, size_t max);

void rf_source_proc_stats(const struct rf_source_proc *s, struct rf_source_stats *ret);

/* The longest line the source makes (a sink with less room drops the event). */
size_t rf_source_proc_line_max(void);

/* ---- the bounded queue ------------------------------------------------------------------- */

struct rf_source_queue;

/* A queue of at most cap bytes of whole lines. Returns 0, -EINVAL, -ENOMEM. */
int rf_source_queue_new(size_t cap, struct rf_source_queue **ret) RF_WUR;
void rf_source_queue_free(struct rf_source_queue *q);
/* A sink that appends to q (room: free bytes). */
struct rf_source_sink rf_source_queue_sink(struct rf_source_queue *q);
size_t rf_source_queue_len(const struct rf_source_queue *q);
/* Write queued bytes to fd (non-blocking or not). Returns bytes written, 0 when fd would block
 * or q is empty, or a negative errno (-EPIPE: the reader is gone). */
long rf_source_queue_flush(struct rf_source_queue *q, int fd);

#endif
