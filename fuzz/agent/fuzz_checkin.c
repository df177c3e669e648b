/*
 * Fuzz target: the agent's parsers of server replies (src/agent/checkin.h), the only bytes the
 * network hands the supervisor before TUF verification. The first byte picks the parser
 * (even: check-in reply, odd: enroll reply); the rest is the body. A successful parse must
 * give bounded, NUL-terminated, valid identifiers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/checkin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rf_diag d = {0};

	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0) {
		struct rf_checkin_reply r;
		if (rf_checkin_reply_parse(data + 1, size - 1, &r, &d) == 0) {
			if (r.has_release &&
			    !rf_checkin_id_valid(r.release.target, strlen(r.release.target)))
				abort();
			if (r.has_rollback_to && !rf_checkin_id_valid(r.rollback_to.target,
								      strlen(r.rollback_to.target)))
				abort();
			if (r.action == RF_CHECKIN_INSTALL && !r.has_release)
				abort();
			if (r.poll_interval > RF_AGENT_POLL_MAX_S)
				abort();
		}
	} else {
		struct rf_enroll_reply r;
		if (rf_checkin_enroll_parse(data + 1, size - 1, &r, &d) == 0) {
			if (!rf_checkin_id_valid(r.device_id, strlen(r.device_id)) ||
			    strlen(r.credential) > RF_AGENT_CREDENTIAL_MAX)
				abort();
		}
	}
	return 0;
}
