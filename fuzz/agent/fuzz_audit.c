/*
 * Fuzz target: the audit source's record reader (src/agent/source_audit.c). Records come from
 * the kernel, but their text holds what processes chose (file names, arguments, the msg='...'
 * of user-space records from anything with CAP_AUDIT_WRITE). The first two bytes are the record
 * type, the rest the record as the kernel sends it; the whole input is also read as one line of
 * auditd's log. Whatever the bytes, every line the reader makes must be one event
 * rf_event_parse accepts, of type linux_auditd.
 */
#include <stdint.h>
#include <stdlib.h>

#include "agent/source_audit.h"
#include "line_sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rf_source_audit *s;
	const struct rf_source_sink sink = rf_fuzz_line_sink("linux_auditd");

	if (!s && rf_source_audit_new(&s) != 0)
		abort();
	if (size >= 2)
		(void)rf_source_audit_put(s, (uint16_t)(data[0] | data[1] << 8), data + 2, size - 2,
					  &sink);
	(void)rf_source_audit_put_line(s, data, size, &sink);
	return 0;
}
