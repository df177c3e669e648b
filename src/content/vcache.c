/*
 * The value cache (vcache.h). An index of sets of VC_WAYS entries, each a 64-bit keyed hash and
 * the position of its record in a ring; the record holds the field, the value's length, the
 * number of atoms and the split (16 bits each), the atoms and the value's bytes. Positions only
 * grow (64 bits: they never wrap), so a record is intact exactly when no byte was written at or
 * past its start plus the ring's size: an index entry whose record the ring has overwritten is
 * invalid, found as such by arithmetic, never by reading overwritten bytes. A record never
 * straddles the ring's end (the head skips to the next lap). A lookup confirms field, length and
 * every byte of the value, so the hash only decides where to look: a crafted stream can make values
 * collide (the key is random per cache, so it would have to guess), which costs misses, never a
 * wrong answer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "content/pack.h"
#include "content/vcache.h"

#define VC_WAYS	 4u
#define VC_EMPTY UINT64_MAX
#define VC_HDR	 12u /* field, length, number of atoms: 3 x u32 */

struct ventry {
	uint64_t h, pos;
};

struct rf_vcache {
	struct ventry *idx;
	uint32_t sets; /* a power of two */
	uint8_t *ring;
	size_t size;
	uint64_t head; /* where the next record goes (mod size); only grows */
	uint64_t k0, k1, hmask;
};

int rf__vcache_new(uint32_t entries, size_t arena, uint64_t hmask, struct rf_vcache **ret)
{
	struct rf_vcache *c = calloc(1, sizeof(*c));
	uint8_t key[16];

	if (!c)
		return -ENOMEM;
	c->sets = 1;
	while ((uint64_t)c->sets * VC_WAYS < entries && c->sets < (1u << 24))
		c->sets *= 2;
	c->size = arena & ~(size_t)3;
	c->idx = malloc((size_t)c->sets * VC_WAYS * sizeof(*c->idx));
	c->ring = malloc(c->size ? c->size : 1);
	if (!c->idx || !c->ring) {
		rf__vcache_free(c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < (size_t)c->sets * VC_WAYS; i++)
		c->idx[i] = (struct ventry){0, VC_EMPTY};
	rf__pack_table_key(key);
	memcpy(&c->k0, key, 8);
	memcpy(&c->k1, key + 8, 8);
	c->k1 |= 1;
	c->hmask = hmask;
	*ret = c;
	return 0;
}

void rf__vcache_free(struct rf_vcache *c)
{
	if (!c)
		return;
	free(c->idx);
	free(c->ring);
	free(c);
}

size_t rf__vcache_bytes(const struct rf_vcache *c)
{
	return (size_t)c->sets * VC_WAYS * sizeof(*c->idx) + c->size;
}

static inline uint64_t mix(uint64_t h, uint64_t w, uint64_t k)
{
	h = (h ^ w) * k;
	return h ^ (h >> 29);
}

/* 8 bytes a step, a multiply and a shift each (the value is hashed on every lookup, so this is
 * the miss path's main cost); the key enters the start state and every multiplier. */
uint64_t rf__vcache_hash(const struct rf_vcache *c, uint32_t field, const uint8_t *v, size_t n)
{
	uint64_t h = c->k0 ^ ((uint64_t)field << 32 | (uint32_t)n), w = 0;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, v + i, 8);
		h = mix(h, w, c->k1);
	}
	if (n >= 8 && i < n) { /* the last 8 bytes, overlapping */
		memcpy(&w, v + n - 8, 8);
		h = mix(h, w, c->k1);
	} else if (i < n) {
		w = 0;
		for (size_t j = 0; i + j < n; j++)
			w |= (uint64_t)v[i + j] << (8 * j);
		h = mix(h, w, c->k1);
	}
	h = mix(h, c->k0, 0x9e3779b97f4a7c15ull);
	return (h ^ (h >> 32)) & c->hmask;
}

static inline bool intact(const struct rf_vcache *c, uint64_t pos)
{
	return pos != VC_EMPTY && c->head - pos <= c->size;
}

static inline const struct ventry *set_of(const struct rf_vcache *c, uint64_t h)
{
	return c->idx + (size_t)((h ^ (h >> 40)) & (c->sets - 1)) * VC_WAYS;
}

const uint32_t *rf__vcache_find(const struct rf_vcache *c, uint64_t h, uint32_t field,
				const uint8_t *v, size_t n, uint32_t *ret_n, uint32_t *ret_split)
{
	const struct ventry *set = set_of(c, h);

	for (uint32_t w = 0; w < VC_WAYS; w++) {
		if (set[w].h != h || !intact(c, set[w].pos))
			continue;
		const uint8_t *r = c->ring + (size_t)(set[w].pos % c->size);
		uint32_t hd[3];
		memcpy(hd, r, sizeof(hd));
		if (hd[0] != field || hd[1] != n)
			continue;
		const uint8_t *val = r + VC_HDR + (size_t)(hd[2] & 0xffff) * 4;
		if (n && memcmp(val, v, n))
			continue;
		*ret_n = hd[2] & 0xffff;
		*ret_split = hd[2] >> 16;
		return (const uint32_t *)(const void *)(r + VC_HDR);
	}
	return NULL;
}

void rf__vcache_put(struct rf_vcache *c, uint64_t h, uint32_t field, const uint8_t *v, size_t n,
		    const uint32_t *atoms, uint32_t na, uint32_t split)
{
	uint32_t dummy, dsplit;
	size_t need = VC_HDR + (size_t)na * 4 + ((n + 3) & ~(size_t)3);

	if (need > c->size || n > UINT32_MAX || na > 0xffff || split > 0xffff ||
	    rf__vcache_find(c, h, field, v, n, &dummy, &dsplit))
		return;
	if (c->head % c->size + need > c->size) /* do not straddle the end: next lap */
		c->head += c->size - c->head % c->size;
	struct ventry *set = (struct ventry *)set_of(c, h), *victim = set;
	for (uint32_t w = 0; w < VC_WAYS; w++) {
		if (!intact(c, set[w].pos)) {
			victim = &set[w];
			break;
		}
		if (set[w].pos < victim->pos)
			victim = &set[w];
	}
	uint8_t *r = c->ring + (size_t)(c->head % c->size);
	uint32_t hd[3] = {field, (uint32_t)n, na | split << 16};
	memcpy(r, hd, sizeof(hd));
	if (na)
		memcpy(r + VC_HDR, atoms, (size_t)na * 4);
	if (n)
		memcpy(r + VC_HDR + (size_t)na * 4, v, n);
	victim->h = h;
	victim->pos = c->head;
	c->head += need;
}
