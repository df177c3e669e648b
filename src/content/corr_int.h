/*
 * The correlation evaluator's internals, shared by its files (not a public API: programs use
 * include/ringfence/correlate.h).
 *
 *   correlate.c   the evaluator: groups, windows, the stream's clock, the API
 *   corr_time.c   what it reads from an event: a field by name, the event time
 *
 * The functions below keep inside the evaluator the short names they had when it was one file;
 * the macros give them the rf__corr_ prefix of non-static internals at link time. Include this
 * header only from the evaluator's own files.
 */
#ifndef RF_CONTENT_CORR_INT_H
#define RF_CONTENT_CORR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/content.h"

#define event_field rf__corr_event_field

/* The field of ev named name (NUL-terminated): true with its value in *ret (*ret_len bytes);
 * false when ev has no such field. */
bool event_field(const struct rf_event *ev, const char *name, const uint8_t **ret, size_t *ret_len);

#endif
