/*
 * The line-checking sink of the event-source fuzz targets (line_sink.h): one definition of
 * "a line a source made is strict JSON and an event of the expected type", so the targets cannot
 * drift apart.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "line_sink.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

static uint8_t *scratch;
static struct rf_event ev;
static const char *want;

static size_t room(void *ud)
{
	(void)ud;
	return RF_EVENT_LINE_MAX;
}

static void put(void *ud, const uint8_t *p, size_t n)
{
	struct rf_diag d = {0};
	json_error_t err;
	json_t *j;

	(void)ud;
	if (n == 0 || p[n - 1] != '\n' || rf_event_parse(p, n, scratch, RF_EVENT_LINE_MAX, &ev, &d))
		abort();
	/* Strict JSON too (the engine's parser is lenient about some things a consumer of the
	 * events, content eval included, is not): duplicate keys refused. A "\u0000" in a string
	 * and an integer outside int64 are JSON (the log source keeps both): jansson needs telling.
	 * A number past a double's range is JSON too but past jansson's: only rf_event_parse's
	 * check holds for such a line. */
	j = json_loadb((const char *)p, n,
		       JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
	if (!j && json_error_code(&err) != json_error_numeric_overflow)
		abort();
	json_decref(j);
	if (ev.type_len != strlen(want) || memcmp(ev.type, want, ev.type_len))
		abort();
}

struct rf_source_sink rf_fuzz_line_sink(const char *type)
{
	if (!scratch && !(scratch = malloc(RF_EVENT_LINE_MAX)))
		abort();
	want = type;
	return (struct rf_source_sink){.room = room, .put = put, .ud = NULL};
}
