/*
 * Fuzz target: the pack loader and verifier (untrusted bytes from the update channel). Each input
 * is opened, verified against both shipped manifests, loaded as the agent would, and, if it
 * loads, used to evaluate a fixed event. Nothing may crash, leak or trip a run-time check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ringfence/content.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char event[] =
    "{\"event\":\"process_creation\",\"Image\":\"C:\\\\Windows\\\\cmd.exe\","
    "\"CommandLine\":\"cmd /c whoami\",\"ProcessId\":4,\"User\":\"\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rf_manifest *m;
	static struct rf_event ev;
	static uint8_t scratch[sizeof(event)];
	struct rf_diag d = {0};
	struct rf_engine *e = NULL;
	struct rf_engine_scratch *s = NULL;

	if (!m) {
		size_t n;
		const uint8_t *mb = rf_content_builtin_manifest(&n);
		if (rf_manifest_parse(mb, n, &m, &d) < 0)
			abort();
	}
	const struct rf_manifest *ms[] = {m};
	int verified = rf_pack_verify(data, size, ms, 1, &d);
	int loaded = rf_engine_load(data, size, m, &e, &d);
	if ((verified == 0) != (loaded == 0))
		abort(); /* publisher and agent must agree */
	if (loaded < 0)
		return 0;
	if (rf_engine_scratch_new(e, &s) == 0 &&
	    rf_event_parse((const uint8_t *)event, sizeof(event) - 1, scratch, sizeof(scratch), &ev,
			   &d) == 0) {
		struct rf_engine_stats st;
		if (rf_engine_eval(e, &ev, s, NULL, NULL, NULL) < 0)
			abort();
		rf_engine_scratch_stats(s, &st);
		if (st.violations)
			abort(); /* the verifier let through something the interpreter caught */
	}
	rf_engine_scratch_free(s);
	rf_engine_free(e);
	return 0;
}
