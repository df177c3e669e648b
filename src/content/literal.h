/*
 * Anchored literal atoms without Vectorscan (literal.c). Most string atoms of real rule sets are
 * plain literals (no '*' or '?'): on the SigmaHQ process_creation pack about 2,000 of 13,000 are
 * `eq`, `startswith` or `endswith` literals. Vectorscan runs anchored patterns with extra engines
 * and costs ~600 instructions per scan even for a handful of patterns; these atoms only need the
 * value's ends. A field's literals are kept in two tries over ASCII-folded bytes: prefixes and
 * whole values forwards, suffixes backwards. Matching walks each trie from its end of the value
 * and stops at the first byte no literal continues with, so the cost is O(min(value, longest
 * literal)) steps and usually a handful, independent of the number of atoms. The answer is exact:
 * a node is reached only by bytes equal (folded) to its literal's, and a cased atom is confirmed
 * byte for byte.
 *
 * Trie edges live in one hash table keyed per engine by a random key (rf__pack_table_key), so no
 * pack can be written to make its edges share slots; the longest probe sequence is measured at
 * build and bounds every lookup.
 */
#ifndef RF_CONTENT_LITERAL_H
#define RF_CONTENT_LITERAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/limits.h"

/* What a literal atom requires of the whole value. */
enum rf_lit_kind {
	RF_LIT_EQ = 0, /* value == literal */
	RF_LIT_PREFIX, /* value starts with literal */
	RF_LIT_SUFFIX, /* value ends with literal */
	RF_LIT_NKINDS,
};

struct rf_lit_atom {
	const char *lit; /* the literal (for a cased atom's confirmation), in the set's arena */
	uint32_t atom;
	bool cased;
};

/* A trie node as the walk reads it: 8 bytes, so that the walks along the long shared path prefixes
 * of a field's literals (Image: ~30,000 nodes on the SigmaHQ pack) touch 8 nodes per cache line;
 * with the atom lists in the node (32 bytes) the tries caused a quarter of the benchmark's L1
 * data misses (docs/engine.md). Nodes of one literal are allocated consecutively. */
struct rf_lit_node {
	uint32_t next; /* the only child, when nkids == 1 (most nodes: no table lookup) */
	uint8_t c;     /* its byte */
	uint8_t nkids; /* 0, 1, or 2 for "two or more" (children in the edge table) */
	bool atoms;    /* any atom ends here (then spans[node] says which) */
};

_Static_assert(sizeof(struct rf_lit_node) == 8, "the walk's node stays 8 bytes (see above)");

struct rf_lit_span {
	uint32_t off[RF_LIT_NKINDS], len[RF_LIT_NKINDS]; /* atoms ending here, in atoms[] */
};

/* An edge of the table: key (node << 8 | byte) + 1 (0: empty) and the child, in one slot so that
 * a probe reads one cache line. */
struct rf_lit_edge {
	uint64_t key;
	uint32_t val;
};

struct rf_litset {
	uint32_t n;	  /* literals */
	uint32_t root[2]; /* forwards (prefix, eq), backwards (suffix) */
	struct rf_lit_node *nodes;
	struct rf_lit_span *spans; /* per node, read only where an atom ends */
	uint32_t n_nodes;
	struct rf_lit_atom *atoms;
	struct rf_lit_edge *edges; /* edge table */
	uint32_t emask, probes;
	uint8_t ebits;
	uint64_t key;
	char *arena;
};

/* One literal to add: bytes lit[0..len) (len <= RF_PATTERN_MAX), already unescaped. */
struct rf_lit_src {
	const char *lit;
	uint32_t len;
	uint32_t atom;
	uint8_t kind;
	bool cased;
};

/* Build ls from src[0..n) (copied). 0, -E2BIG (a literal over RF_PATTERN_MAX), -ENOMEM. */
int rf__litset_build(struct rf_litset *ls, const struct rf_lit_src *src, uint32_t n);
void rf__litset_free(struct rf_litset *ls);

/* Call hit(ctx, atom) for every atom of ls that value v[0..n) satisfies (an atom may be reported
 * twice if its literal is listed twice). */
void rf__litset_match(const struct rf_litset *ls, const uint8_t *v, size_t n,
		      void (*hit)(void *ctx, uint32_t atom), void *ctx);

/*
 * A field's few `contains` literals (and factors) without Vectorscan: bit-parallel Shift-And over
 * the concatenated literals, one bit per literal byte, at most 64 bytes in all. A Vectorscan
 * scan costs ~700 instructions even for a handful of literals (callgrind, SigmaHQ
 * process_creation pack: Company, User, ParentUser, Product hold 2-5 literals each); this costs
 * a few per value byte. Exact: bit j of the state after value byte i is set iff the literal
 * owning bit j has its bytes up to j equal (ASCII-folded unless cased, as Vectorscan's
 * HS_FLAG_CASELESS) to the value bytes ending at i. Cost O(value + literals). (Two to four
 * words, for fields with up to 256 literal bytes, cost more than Vectorscan on the same pack.)
 */
struct rf_shiftset {
	uint32_t n;	   /* literals (0: none) */
	uint64_t *mask;	   /* [256]: bit j set if byte c may stand at bit j */
	uint64_t start;	   /* first bit of each literal */
	uint64_t end;	   /* last bit of each literal */
	uint32_t atom[64]; /* per last bit: the atom (or factor bit) reported */
};

/* Build ss from src[0..n) (kind ignored). 0, -E2BIG if the literals' bytes are more than 64 (or
 * one is empty), -ENOMEM. */
int rf__shiftset_build(struct rf_shiftset *ss, const struct rf_lit_src *src, uint32_t n);
void rf__shiftset_free(struct rf_shiftset *ss);

/* Call hit(ctx, atom) for every literal of ss that value v[0..n) contains (once each). */
void rf__shiftset_match(const struct rf_shiftset *ss, const uint8_t *v, size_t n,
			void (*hit)(void *ctx, uint32_t atom), void *ctx);

/* The literal a glob pattern p[0..n) stands for (escapes as in ir.h resolved) written to out
 * (at least n bytes): its length, or -1 if p has an unescaped '*' or '?'. */
int rf__glob_literal(const char *p, size_t n, char *out);

/* Factors (for the prefilter: a pattern cannot match a value its factor is not in), written to
 * out (RF_PATTERN_MAX bytes); the factor's length, 0 if there is none. rf__glob_factor: the
 * longest literal run of a glob (escapes resolved). rf__regex_factor: the longest run of bytes a
 * regular expression requires at top level, read conservatively (see literal.c); to be searched
 * caselessly. */
uint32_t rf__glob_factor(const char *p, size_t n, char *out);
uint32_t rf__regex_factor(const char *p, size_t n, char *out);

#endif
