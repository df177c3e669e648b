/*
 * The verifier's string table against strings built to collide (docs/engine.md, "Verification
 * cost"): a pack whose 8,192 distinct strings all share the low 16 bits of their 32-bit FNV-1a
 * hash - the unkeyed hash the table used before, which put them all in one slot and cost
 * n^2/2 = 33 million probes - is decoded, and the keyed table must examine at most 4 slots per
 * string. Work is counted (slots examined), never timed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "content/pack.h"

#define BITS	 13 /* 2^13 colliding strings, each BITS three-byte blocks */
#define NCOLL	 (1u << BITS)
#define NDUP	 3 /* copies of string 5 appended: the table must still find duplicates */
#define NSTRINGS (NCOLL + NDUP)

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* The low 16 bits of FNV-1a's state depend only on the low 16 bits before it (xor and a
 * product modulo 2^32), so from any state two printable 3-byte blocks that lead to the same
 * next state are found among a few thousand; chaining BITS such pairs gives 2^BITS strings
 * that agree on the low 16 bits of their hash. */
static void colliding_blocks(uint8_t blocks[BITS][2][3])
{
	static uint32_t seen[1u << 16];
	uint32_t s = 2166136261u & 0xffff;

	for (unsigned i = 0; i < BITS; i++) {
		bool found = false;
		memset(seen, 0, sizeof(seen));
		for (uint32_t code = 0; code < 94u * 94 * 94 && !found; code++) {
			uint8_t c[3] = {(uint8_t)(0x21 + code / (94 * 94)),
					(uint8_t)(0x21 + code / 94 % 94),
					(uint8_t)(0x21 + code % 94)};
			uint32_t t = s;
			for (int k = 0; k < 3; k++)
				t = ((t ^ c[k]) * 16777619u) & 0xffff;
			if (seen[t]) {
				uint32_t o = seen[t] - 1;
				blocks[i][0][0] = (uint8_t)(0x21 + o / (94 * 94));
				blocks[i][0][1] = (uint8_t)(0x21 + o / 94 % 94);
				blocks[i][0][2] = (uint8_t)(0x21 + o % 94);
				memcpy(blocks[i][1], c, 3);
				s = t;
				found = true;
			}
			seen[t] = code + 1;
		}
		assert_true(found);
	}
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
	p[3] = (uint8_t)(v >> 24);
}

/* A pack of only strings: string i < NCOLL is block (bit j of i) for j = 0..BITS-1. */
static uint8_t *colliding_pack(size_t *ret_len)
{
	uint8_t blocks[BITS][2][3];
	const uint32_t slen = 3 * BITS, data = NSTRINGS * slen;
	const uint32_t size = NSTRINGS * RF_PACK_STRENT_SIZE + data + (4 - data % 4) % 4;
	const size_t n = RF_PACK_PREAMBLE + size;
	uint8_t *p = calloc(1, n), *idx, *str;

	assert_non_null(p);
	colliding_blocks(blocks);
	memcpy(p, RF_PACK_MAGIC, 4);
	p[4] = RF_PACK_VERSION, p[6] = RF_PACK_NSECTIONS;
	put32(p + 8, (uint32_t)n);
	for (uint32_t s = 0; s < RF_PACK_NSECTIONS; s++) {
		uint8_t *e = p + RF_PACK_HEADER_SIZE + s * RF_PACK_SECTENT_SIZE;
		put32(e, s + 1);
		put32(e + 4, RF_PACK_PREAMBLE + (s ? size : 0));
		put32(e + 8, s ? 0 : size);
		put32(e + 12, s ? 0 : NSTRINGS);
	}
	idx = p + RF_PACK_PREAMBLE;
	str = idx + NSTRINGS * RF_PACK_STRENT_SIZE;
	for (uint32_t i = 0; i < NSTRINGS; i++) {
		uint32_t v = i < NCOLL ? i : 5;
		put32(idx + i * 8, i * slen);
		put32(idx + i * 8 + 4, slen);
		for (unsigned j = 0; j < BITS; j++)
			memcpy(str + i * slen + 3 * j, blocks[j][(v >> j) & 1], 3);
	}
	/* the input is adversarial for the old table: one FNV slot for every string */
	for (uint32_t i = 1; i < NCOLL; i++)
		assert_int_equal(fnv1a(str + i * slen, slen) & 0xffff, fnv1a(str, slen) & 0xffff);
	*ret_len = n;
	return p;
}

static void test_colliding_strings_stay_linear(void **state)
{
	struct rf_diag d = {0};
	struct rf_pack *pk = NULL;
	uint32_t *canon = NULL;
	uint64_t probes = 0;
	size_t n = 0;
	uint8_t *p = colliding_pack(&n);

	(void)state;
	assert_int_equal(rf__pack_decode(p, n, &pk, &d), 0);
	assert_int_equal(pk->n_strings, NSTRINGS);
	for (int run = 0; run < 4; run++) { /* a fresh key each time */
		assert_int_equal(rf__pack_canon_strings(pk, &canon, &probes), 0);
		assert_in_range(probes, NSTRINGS, 4 * NSTRINGS);
		for (uint32_t i = 0; i < NCOLL; i++)
			assert_int_equal(canon[i], i);
		for (uint32_t i = NCOLL; i < NSTRINGS; i++)
			assert_int_equal(canon[i], 5);
		free(canon);
	}
	rf_pack_free(pk);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_colliding_strings_stay_linear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
