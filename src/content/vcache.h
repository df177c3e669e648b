/*
 * The value cache (vcache.c; docs/engine.md "Value cache"): a bounded map, per engine scratch,
 * from (pack field, value bytes) to the atoms and factors that the field's matchers report for
 * that value. Those atoms are a pure function of the engine, the field and the value's bytes, so
 * an entry found for the same field and the same bytes gives exactly the answer the matchers
 * would. Entries are found by a keyed hash and confirmed by comparing the whole value, so a
 * collision only costs a miss. Fixed memory allocated once; nothing allocated per value.
 */
#ifndef RF_CONTENT_VCACHE_H
#define RF_CONTENT_VCACHE_H

#include <stddef.h>
#include <stdint.h>

struct rf_vcache;

/* A cache of `entries` index entries (rounded up to a power of two, at least 4) over a ring of
 * `arena` bytes, hashing under a fresh random key; hash values are and-ed with hmask (tests pass
 * 0 to make every value collide; the engine passes UINT64_MAX). 0 or -ENOMEM. */
int rf__vcache_new(uint32_t entries, size_t arena, uint64_t hmask, struct rf_vcache **ret);
void rf__vcache_free(struct rf_vcache *c);
/* The bytes of cache memory (index + ring). */
size_t rf__vcache_bytes(const struct rf_vcache *c);

/* The keyed hash of (field, v[0..n)). */
uint64_t rf__vcache_hash(const struct rf_vcache *c, uint32_t field, const uint8_t *v, size_t n);

/* The atoms remembered for field and exactly v[0..n) (h its hash), *ret_n of them, and the split
 * stored with them; NULL if none. The pointer is valid until the next rf__vcache_put. */
const uint32_t *rf__vcache_find(const struct rf_vcache *c, uint64_t h, uint32_t field,
				const uint8_t *v, size_t n, uint32_t *ret_n, uint32_t *ret_split);

/* Remember atoms[0..na) (na < 65536) and split (< 65536: the engine stores how many of them its
 * phase 1 reports) for (field, v[0..n)), evicting the oldest entry of its set and the records the
 * ring overwrites. Does nothing if the record does not fit the ring or the value is there. */
void rf__vcache_put(struct rf_vcache *c, uint64_t h, uint32_t field, const uint8_t *v, size_t n,
		    const uint32_t *atoms, uint32_t na, uint32_t split);

#endif
