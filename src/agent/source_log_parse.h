/*
 * agent/ log source internals shared by source_log.c (the spec, following files, the API) and
 * source_log_parse.c (the line formats: one log line in, one event line out). Not installed;
 * only those two files include it.
 *
 * struct rf__source_log_line is the event line being built: source_log.c keeps one in its
 * struct rf_source_log (with out allocated RF_EVENT_LINE_MAX bytes and st pointing at the
 * source's counters) and hands each log line to rf__source_log_line, which writes only into it.
 */
#ifndef RF_AGENT_SOURCE_LOG_PARSE_H
#define RF_AGENT_SOURCE_LOG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/source_log.h"
#include "ringfence/limits.h"

/* How an event type's lines are written (docs/agent.md): a JSON object, free text, the
 * Common/Combined Log Format, key=value pairs. */
enum rf__source_log_format { F_JSON, F_TEXT, F_ACCESS, F_KV };

struct rf__source_log_line {
	uint8_t *out; /* RF_EVENT_LINE_MAX */
	size_t out_len;
	bool full;
	size_t nfields;
	struct {
		size_t off, len; /* the field name in out (without quotes) */
	} names[RF_EVENT_FIELDS_MAX];
	struct rf_source_stats *st; /* counts fields_lost and partial; the caller counts the rest */
};

/*
 * The event line of the log line p[0..n) (n >= 1, no newline, at most RF_SOURCE_LOG_LINE_MAX
 * bytes) for the event type named event, whose lines are in format f: 0 with the line, ending
 * "}\n", in l->out[0..l->out_len); -E2BIG when it does not fit in RF_EVENT_LINE_MAX bytes;
 * -EBADMSG when the line is malformed for its format (a JSON line that is not an object, a
 * repeated field name); -ENOMEM. A field that cannot be kept is counted in l->st->fields_lost,
 * an access line not in that format (written as message alone) in l->st->partial.
 */
int rf__source_log_line(struct rf__source_log_line *l, const char *event,
			enum rf__source_log_format f, const uint8_t *p, size_t n);

#endif
