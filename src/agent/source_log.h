/*
 * The log-file source: follows files that something else writes (a web server's access log,
 * zeek's JSON logs on a sensor, /var/log/auth.log, or cloud and SaaS audit logs that the
 * operator's own shipper exports to JSON-lines files: CloudTrail, Azure diagnostic settings, GCP
 * sinks, Okta or GitHub audit streams) and turns each line into one event line of the event type
 * the operator names, from manifests/ringfence-agent-logs-1.0.0.json. It never fetches anything
 * from a cloud API or the network: it reads files, as Chainsaw hunts over files.
 *
 * The spec is "log:EVENT=PATH", several joined by ",log:" ("log:aws_cloudtrail=/var/log/ct.jsonl,
 * log:linux_sshd=/var/log/auth.log"). Each event type has one line format (docs/agent.md, The
 * log-file source): JSON lines (nested objects flattened to dotted keys; an object or array also
 * its compact JSON text under its own key; an array of one element as that element; a longer
 * array only as its text), plain text (the line as "message"), access logs (Common/Combined Log
 * Format, W3C field names, plus "message") and key=value lines (FortiGate: each pair, plus
 * "message").
 *
 * Following: a file is read from its end as it is when the source opens (a restarted source
 * does not replay the file), a file that appears later and the new file after a rotation
 * (rename and create, or delete and create) from its beginning; before switching to the new file
 * the old one is read to its end. A file that shrinks (truncation, copytruncate), or that has
 * grown but no longer holds the RF_SOURCE_LOG_FINGERPRINT bytes read just before the offset
 * (truncated and refilled past it between two looks), is read again from its beginning. Polled every RF_SOURCE_LOG_POLL_MS (a timer descriptor for poll()), at once
 * again while a file has more to read.
 *
 * Bounded: a line is at most RF_SOURCE_LOG_LINE_MAX bytes; a longer one is refused as a whole and
 * counted (oversize), never cut; so is a line whose event would pass RF_EVENT_LINE_MAX or
 * RF_EVENT_FIELDS_MAX. A line that is not valid JSON (or not an object, or whose flattened keys
 * repeat) for a JSON event type is counted as malformed; bytes that are not UTF-8 and lone
 * surrogate escapes are not a reason: they become U+FFFD, as in text lines, and the line is
 * counted as repaired. Nothing is dropped for room: when the
 * sink is full the source stops reading and the file keeps the rest. Memory is one line buffer
 * per file and one event buffer. Library code: it prints nothing.
 */
#ifndef RF_AGENT_SOURCE_LOG_H
#define RF_AGENT_SOURCE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/source_proc.h" /* struct rf_source_stats, struct rf_source_sink */
#include "common/util.h"

struct rf_source_log;

/* Whether spec is a log spec: "log:EVENT=PATH[,log:EVENT=PATH...]", each EVENT an event type of
 * this source (rf_source_log_event) and each PATH absolute and not ending in ',', at most
 * RF_SOURCE_LOG_FILES_MAX. Looks at no file. */
bool rf_source_log_known(const char *spec);

/* Check spec as rf_source_log_known does, saying why it is not one, then its files: returns 0, or
 * -EINVAL (reterr: "event source 'SPEC': unknown event type 'X' ...", "... each PATH must be
 * absolute", "... a PATH ends with ','", "... 'P' is a directory", "... 'P' is not a regular
 * file", "... 'P' and 'Q' are the same file for event E": one file twice for an EVENT, by path
 * up to "." pieces and repeated '/', or by device and inode), -E2BIG (more than
 * RF_SOURCE_LOG_FILES_MAX files) or -ENOMEM. A file that does not exist yet is fine. */
int rf_source_log_check(const char *spec, struct rf_diag *reterr);

/*
 * Follow the files of spec. A file that does not exist yet is followed from when it appears.
 * Returns 0 and *ret, -EINVAL for a malformed spec or files rf_source_log_check refuses (reterr
 * says which part), -E2BIG for more than RF_SOURCE_LOG_FILES_MAX files, -ENOMEM, or a negative
 * errno from the timer.
 */
int rf_source_log_open(const char *spec, struct rf_source_log **ret, struct rf_diag *reterr) RF_WUR;
void rf_source_log_free(struct rf_source_log *s);

/* Something the operator should know: a file that could not be opened at start (missing,
 * permission denied, not a regular file), or NULL. Valid until the next call. */
const char *rf_source_log_warning(struct rf_source_log *s);

/* A timer descriptor for poll(): readable when the files should be looked at again. */
int rf_source_log_fd(const struct rf_source_log *s);

/*
 * Read what the files have, at most max lines in all, without blocking; each line becomes one
 * event line put to sink. Stops early (and comes back at once) when the sink has no room for
 * the largest event. Returns the number of lines read, or a negative errno if a file failed in
 * a way other than vanishing (which is a rotation).
 */
int rf_source_log_read(struct rf_source_log *s, const struct rf_source_sink *sink, size_t max);

/*
 * One line (without its newline) of event type ev (index into this source's event table) into
 * one event line put to sink; counted in the stats as one line read. The line parser, on its own
 * for tests and the fuzz target. Returns 0 when a line went to sink, 1 for an empty line (no
 * event), -E2BIG refused as too large, -EBADMSG malformed, -ENOSPC no room in sink.
 */
int rf_source_log_put(struct rf_source_log *s, size_t ev, const uint8_t *p, size_t n,
		      const struct rf_source_sink *sink);

/* The event types this source makes, index i = 0, 1, ... until NULL (the manifest's events);
 * *ret_format: "json", "text", "access" or "kv". */
const char *rf_source_log_event(size_t i, const char **ret_format);

/* The fields a non-JSON event type always may carry (text: message; access: message and the W3C
 * fields; kv: message), index i until NULL; *ret_int: an int field. For the manifest test. */
const char *rf_source_log_field(size_t ev, size_t i, bool *ret_int);

/* A source that follows nothing (rf_source_log_put only). Returns 0, -ENOMEM. */
int rf_source_log_new(struct rf_source_log **ret) RF_WUR;

void rf_source_log_stats(const struct rf_source_log *s, struct rf_source_stats *ret);

/* What the source follows, for a log line ("log files: aws_cloudtrail /var/log/ct.jsonl, ..."). */
const char *rf_source_log_describe(const struct rf_source_log *s);

#endif
