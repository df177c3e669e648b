/*
 * The host event sources by name, for `ringfence events --source` and `ringfence-agent run
 * --events`: "proc" (process creation, source_proc.h), "audit" (the kernel's audit records,
 * source_audit.h), or both as "proc,audit"; or log files, "log:EVENT=PATH[,log:EVENT=PATH...]"
 * (source_log.h), on their own. One set is polled and read as one source: its
 * counters are the sums of its members'. Library code: it prints nothing.
 */
#ifndef RF_AGENT_SOURCE_H
#define RF_AGENT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/source_audit.h"
#include "agent/source_log.h"
#include "agent/source_proc.h"

#define RF_SOURCE_NAMES	      "proc, audit, proc,audit, log:EVENT=PATH[,log:EVENT=PATH...]"
#define RF_SOURCE_MEMBERS_MAX 2

struct rf_source;

/* Whether names is a source this build has ("proc", "audit", "proc,audit", "audit,proc", or a
 * log spec rf_source_log_known accepts). */
bool rf_source_known(const char *names);

/* Check names as rf_source_known does, saying why it is not a source: returns 0 or -EINVAL /
 * -E2BIG with reterr naming the problem (for a log spec, which part: an unknown event type, a
 * PATH that is not absolute, too many files). */
int rf_source_check(const char *names, struct rf_diag *reterr);

/*
 * Open every member of names. Returns 0 and *ret, -EINVAL for a name this build lacks, or what
 * the member's open returned (reterr says why: a missing capability, no kernel support...).
 */
int rf_source_open(const char *names, struct rf_source **ret, struct rf_diag *reterr) RF_WUR;
void rf_source_free(struct rf_source *s);

/* The members' descriptors for poll() into fds[0..RF_SOURCE_MEMBERS_MAX); returns how many. */
size_t rf_source_fds(const struct rf_source *s, int *fds);

/* Read every member (at most max messages each) into sink. Returns messages read in total, or
 * the first negative errno. */
int rf_source_read(struct rf_source *s, const struct rf_source_sink *sink, size_t max);

void rf_source_stats(const struct rf_source *s, struct rf_source_stats *ret);

/* Something the operator should know about the source as opened (audit disabled in the kernel),
 * or NULL. */
const char *rf_source_warning(const struct rf_source *s);

/* What the source watches, for a log line ("process creation, audit records"). */
const char *rf_source_describe(const struct rf_source *s);

#endif
