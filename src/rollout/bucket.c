/*
 * Cohort buckets: SipHash-2-4 (Aumasson & Bernstein, the reference algorithm) of the device id,
 * keyed by the first 16 bytes of SHA-256(release id), reduced mod RF_ROLLOUT_BUCKETS.
 *
 * Why keyed by the release: a device's bucket must be stable for one release (so a ramp only
 * ever adds devices) and independent across releases (so the same unlucky 1 % is not the
 * canary of every release). SipHash is a PRF, so buckets under different keys behave as
 * independent uniform draws; it is also cheap (no allocation, ~20 ns for a short id), which the
 * simulator needs at millions of calls. The mod-10000 bias is below 2^-50.
 */
#include <string.h>

#include "common/util.h"
#include "rollout/rollout.h"

uint64_t rf_rollout_siphash24(const uint8_t key[16], const void *data, size_t n)
{
	return rf_siphash24(key, data, n);
}

uint32_t rf_rollout_bucket(const uint8_t key[16], const void *device_id, size_t len)
{
	return (uint32_t)(rf_rollout_siphash24(key, device_id, len) % RF_ROLLOUT_BUCKETS);
}
