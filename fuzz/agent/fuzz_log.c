/*
 * Fuzz target: the log-file source's line parser (src/agent/source_log.c). Log lines hold what
 * anyone chose to write (a URL, a user name, a CloudTrail request's parameters). The first byte
 * picks the format (JSON, text, access log, key=value), the rest is one line. Whatever the
 * bytes, every line the parser makes must be strict JSON (jansson, duplicate keys refused)
 * and one event rf_event_parse accepts, of the type the line was read as (line_sink.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/source_log.h"
#include "line_sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const pick[] = {"aws_cloudtrail", "linux_sshd", "webserver",
					   "fortigate_event"};
	static struct rf_source_log *s;
	const char *name, *want;
	size_t ei = 0;

	if (!s && rf_source_log_new(&s) != 0)
		abort();
	if (size < 1)
		return 0;
	want = pick[data[0] % 4];
	const struct rf_source_sink sink = rf_fuzz_line_sink(want);
	while ((name = rf_source_log_event(ei, NULL)) && strcmp(name, want))
		ei++;
	if (!name)
		abort();
	(void)rf_source_log_put(s, ei, data + 1, size - 1, &sink);
	return 0;
}
