/*
 * Fuzz target: the log-file source's line parser (src/agent/source_log.c). Log lines hold what
 * anyone chose to write (a URL, a user name, a CloudTrail request's parameters). The first byte
 * picks the format (JSON, text, access log, key=value), the rest is one line. Whatever the
 * bytes, every line the parser makes must be one event rf_event_parse accepts, of the type the
 * line was read as, and strict JSON (jansson, duplicate keys refused): the engine's event parser
 * is more lenient than the tools that read the same lines (`ringfence events`).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/source_log.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	if (!(j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &err)))
		abort();
	json_decref(j);
	if (ev.type_len != strlen(want) || memcmp(ev.type, want, ev.type_len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const pick[] = {"aws_cloudtrail", "linux_sshd", "webserver",
					   "fortigate_event"};
	static struct rf_source_log *s;
	const struct rf_source_sink sink = {.room = room, .put = put, .ud = NULL};
	const char *name;
	size_t ei = 0;

	if (!s && (rf_source_log_new(&s) != 0 || !(scratch = malloc(RF_EVENT_LINE_MAX))))
		abort();
	if (size < 1)
		return 0;
	want = pick[data[0] % 4];
	while ((name = rf_source_log_event(ei, NULL)) && strcmp(name, want))
		ei++;
	if (!name)
		abort();
	(void)rf_source_log_put(s, ei, data + 1, size - 1, &sink);
	return 0;
}
