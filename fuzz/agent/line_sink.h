/*
 * The sink the event-source fuzz targets (fuzz_audit.c, fuzz_log.c) hand their source: every
 * line the source makes must be one newline-ended event that rf_event_parse accepts, of the
 * type the target expects; anything else aborts, which the fuzzer reports as a crash.
 */
#ifndef RF_FUZZ_LINE_SINK_H
#define RF_FUZZ_LINE_SINK_H

#include "agent/source_proc.h"

/* The sink, checking lines against event type want (a static string, kept; it may be changed
 * before each input). Its scratch buffer is allocated at the first call (abort if it cannot). */
struct rf_source_sink rf_fuzz_line_sink(const char *want);

#endif
