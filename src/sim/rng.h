/*
 * Deterministic randomness for the fleet simulator. Nothing here touches rand() or global
 * state: every draw is a pure function of (seed, device, stream, counter), so a device's
 * poll phase, jitter, boot times and failure times do not depend on the order in which the
 * event loop happens to visit devices, and a run is bit-for-bit reproducible for a seed.
 * splitmix64 (Steele, Lea, Flood 2014) is the mixer: cheap, and every output bit depends on
 * every input bit.
 */
#ifndef RF_SIM_RNG_H
#define RF_SIM_RNG_H

#include <math.h>
#include <stdint.h>

/* The splitmix64 finaliser: a bijection on 64 bits with full avalanche. */
static inline uint64_t rf__sim_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A 64-bit draw for (seed, device, stream, counter): independent across all four. */
static inline uint64_t rf__sim_draw(uint64_t seed, uint64_t dev, uint32_t stream, uint64_t ctr)
{
	return rf__sim_mix(rf__sim_mix(seed ^ rf__sim_mix(dev)) ^ ((uint64_t)stream << 40) ^ ctr);
}

/* Uniform in [0, 1) with 53 bits. */
static inline double rf__sim_unit(uint64_t r)
{
	return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n) (n > 0), by the multiply-shift method (bias < n / 2^64). */
static inline uint32_t rf__sim_below(uint64_t r, uint32_t n)
{
	__extension__ typedef unsigned __int128 u128;
	return (uint32_t)(((u128)r * n) >> 64);
}

/* Exponential with the given mean (seconds), never negative, capped to avoid inf. */
static inline double rf__sim_exp(uint64_t r, double mean)
{
	double u = rf__sim_unit(r);
	if (u >= 1.0 - 1e-16)
		u = 1.0 - 1e-16;
	return -log1p(-u) * mean;
}

#endif
