/*
 * The Linux audit source: the kernel's audit records, read from the NETLINK_AUDIT multicast
 * group AUDIT_NLGRP_READLOG (read-only: needs CAP_AUDIT_READ), turned into `linux_auditd` JSON
 * event lines the worker and `ringfence content eval` read. It works beside a running auditd
 * (the group is a copy of what auditd receives) and never changes the host's audit
 * configuration: the operator's audit rules decide what is recorded (docs/agent.md).
 *
 * One record is one event, as auditd writes one record per line and as SigmaHQ's auditd rules
 * are written (`type: EXECVE` with `a0`, `type: SYSCALL` with `exe`, `type: PATH` with `name`):
 * the records of one kernel event (same serial) are not joined; each event carries `msg`
 * ("audit(SECONDS.MS:SERIAL)", as auditd logs it) and `serial`, so a consumer can join them.
 * Values are decoded as auditd's interpretation does: an untrusted string the kernel logged in
 * hexadecimal (a path with a space, an argument with a quote) is decoded, a quoted one unquoted;
 * the single-quoted msg='...' of user-space records (USER_*, SERVICE_STOP...) is flattened into
 * its own fields; a SYSCALL record's number also gives its name (SYSCALL=, auditd's enriched
 * field) for this build's architecture.
 *
 * Nothing is lost silently: a gap in the serial numbers is an event the kernel could not deliver
 * to us (socket overrun, the kernel's rate limit): counted as kernel_lost; an event the consumer
 * has no room for is dropped and counted; a field the event could not carry (an int field whose
 * value is not a number, an argument past the manifest's a63, a SYSCALL name for another
 * architecture) is counted in fields_lost. Library code: it prints nothing.
 */
#ifndef RF_AGENT_SOURCE_AUDIT_H
#define RF_AGENT_SOURCE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/source_proc.h" /* struct rf_source_stats, struct rf_source_sink */
#include "common/util.h"

struct rf_source_audit;

/*
 * A source without a socket: records are fed with rf_source_audit_put / _put_line (tests,
 * captured logs). Returns 0 and *ret, or -ENOMEM.
 */
int rf_source_audit_new(struct rf_source_audit **ret) RF_WUR;

/*
 * A source reading the kernel: subscribes to AUDIT_NLGRP_READLOG. Returns 0 and *ret, -EPERM
 * without CAP_AUDIT_READ (reterr names it), -EPROTONOSUPPORT if the kernel has no audit
 * support, -ENOMEM, or another negative errno from the socket.
 */
int rf_source_audit_open(struct rf_source_audit **ret, struct rf_diag *reterr) RF_WUR;
void rf_source_audit_free(struct rf_source_audit *s);

/* The netlink socket (non-blocking), for poll(); -1 for a source made by rf_source_audit_new. */
int rf_source_audit_fd(const struct rf_source_audit *s);

/*
 * Whether the kernel's audit is enabled, as read at open (AUDIT_GET, needs CAP_AUDIT_CONTROL):
 * 0 disabled (no syscall records will come, only user-space ones an auditd would also miss),
 * 1 enabled, 2 enabled and locked, -1 unknown (not asked, or the kernel refused to say).
 */
int rf_source_audit_enabled(const struct rf_source_audit *s);

/*
 * Read what the kernel has queued, at most max messages, without blocking; each record becomes
 * one event line put to sink (or is dropped when sink->room is short). Returns the number of
 * messages read (0: nothing was waiting), or a negative errno if the socket failed.
 */
int rf_source_audit_read(struct rf_source_audit *s, const struct rf_source_sink *sink, size_t max);

/*
 * One record as the kernel sends it: type is the netlink message type (AUDIT_SYSCALL 1300...),
 * p[0..n) the text "audit(SECONDS.MS:SERIAL): key=value ...". Any bytes are accepted: a record
 * without the audit(...) stamp, or one whose event would pass RF_EVENT_LINE_MAX, is counted as
 * seen and skipped (not a crash, not a half line). Returns 0 when a line went to sink, -ENOSPC
 * when it was dropped for room, -EBADMSG when the record was skipped.
 */
int rf_source_audit_put(struct rf_source_audit *s, uint16_t type, const uint8_t *p, size_t n,
			const struct rf_source_sink *sink);

/*
 * One line as auditd logs it: "type=NAME msg=audit(SECONDS.MS:SERIAL): key=value ..." (NAME as
 * auditd names it, or UNKNOWN[NUMBER]), with or without the enriched part after 0x1d. Same
 * returns as rf_source_audit_put.
 */
int rf_source_audit_put_line(struct rf_source_audit *s, const uint8_t *p, size_t n,
			     const struct rf_source_sink *sink);

/* The fields a linux_auditd event can have, in index order i = 0, 1, ... until NULL: the
 * manifest's field list (*ret_int: an int field, else string). */
const char *rf_source_audit_field(size_t i, bool *ret_int);

void rf_source_audit_stats(const struct rf_source_audit *s, struct rf_source_stats *ret);

#endif
