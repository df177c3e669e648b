/*
 * Fuzz target: the store's state.json parser (src/agent/store.c). The file is the agent's own,
 * but it lives on disk where bit rot, a crash-truncated copy from elsewhere or a hand edit can
 * reach it; whatever it holds, reading it must fail cleanly or give a state the guard accepts.
 */
#include <stdint.h>
#include <stdlib.h>

#include "agent/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rf_diag d = {0};

	if (rf__store_state_parse(data, size, &d) == -EFAULT)
		abort(); /* parsed into a state the guard rejects */
	return 0;
}
