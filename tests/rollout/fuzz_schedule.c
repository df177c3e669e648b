/*
 * Fuzz target for the signed schedule (untrusted JSON from a TUF target's custom metadata).
 * Anything accepted must format canonically, with integers only (TUF canonical JSON has no
 * reals), and parse back to the identical struct, and the
 * engine must run on it (evaluate, decide, admit checks) without UB. Built as a libFuzzer
 * program with -Dfuzz=true, otherwise as a replay test over tests/rollout/corpus-schedule/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rollout/rollout.h"

/* Does v hold a JSON real anywhere? (The formatter must write integers only.) */
static int has_real(const json_t *v)
{
	const char *k;
	json_t *c;
	size_t i;

	if (json_is_real(v))
		return 1;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, c)
		{
			if (has_real(c))
				return 1;
		}
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, c)
		{
			if (has_real(c))
				return 1;
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[RF_ROLLOUT_SCHEDULE_JSON_MAX];
	struct rf_rollout_schedule s, s2;
	struct rf_rollout_state st;
	struct rf_rollout_health h[RF_ROLLOUT_RINGS_MAX] = {{0}};
	struct rf_rollout_release rel;
	struct rf_rollout_policy pol = {0};
	struct rf_rollout_answer a;
	struct rf_diag d = {0};
	int len;

	if (rf_rollout_schedule_parse(data, size, &s, &d) < 0)
		return 0;
	len = rf_rollout_schedule_format(&s, out, sizeof(out));
	if (len < 0 || rf_rollout_schedule_parse((const uint8_t *)out, (size_t)len, &s2, &d) < 0 ||
	    memcmp(&s, &s2, sizeof(s)) != 0)
		abort(); /* accepted input must round-trip */
	{
		json_t *j = json_loadb(out, (size_t)len, 0, NULL);

		if (!j || has_real(j))
			abort(); /* ... and be signable as TUF canonical JSON */
		json_decref(j);
	}
	rf_rollout_state_init(&s, &st);
	for (int64_t t = s.rings[0].not_before, k = 0; k < 8; k++, t += 3600) {
		if (rf_rollout_evaluate(&s, &st, h, NULL, t, &st, NULL) < 0)
			abort();
		for (unsigned r = 0; r < s.nrings; r++) {
			h[r].devices += 10;
			h[r].healthy += 10;
			h[r].exposure_s += 36000;
			if (rf_rollout_effective_bp(&s, &st, (int)r, t) > 10000)
				abort();
		}
	}
	rel.schedule = &s;
	rel.state = st;
	struct rf_rollout_device dev = {.id = data,
					.id_len = size < 64 ? size : 64,
					.ring = s.rings[s.nrings - 1].name,
					.current = -1};
	if (rf_rollout_decide(&dev, &pol, &rel, 1, s.rings[0].not_before + 86400, &a) < 0)
		abort();
	if (a.action == RF_ROLLOUT_INSTALL &&
	    !rf_rollout_schedule_admits(&s, dev.ring,
					rf_rollout_bucket(s.bucket_key, dev.id, dev.id_len),
					s.rings[0].not_before + 86400))
		abort();
	return 0;
}
