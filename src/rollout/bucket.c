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

#include "rollout/rollout.h"

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = rotl(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = rotl(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = rotl(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = rotl(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = rotl(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = rotl(v2, 32);                                                                 \
	} while (0)

uint64_t rf_rollout_siphash24(const uint8_t key[16], const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t k0 = le64(key), k1 = le64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t m, b = (uint64_t)n << 56;
	size_t left = n & 7, end = n - left;

	for (size_t i = 0; i < end; i += 8) {
		m = le64(p + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t i = 0; i < left; i++)
		b |= (uint64_t)p[end + i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

uint32_t rf_rollout_bucket(const uint8_t key[16], const void *device_id, size_t len)
{
	return (uint32_t)(rf_rollout_siphash24(key, device_id, len) % RF_ROLLOUT_BUCKETS);
}
