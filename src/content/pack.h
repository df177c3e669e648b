/*
 * The pack format (docs/pack-format.md) and the in-memory form of a structurally verified pack,
 * shared by the writer (pack.c), the loader/verifier (verify.c) and the engine (engine.c).
 *
 * Invariant of struct rf_pack: every table has been decoded from little-endian bytes and every
 * index in it checked against its table (strings, fields, atoms, code ranges), every program's
 * stack discipline proved, every string is NUL-free valid UTF-8 (NUL-terminated here), every atom's
 * op/flags/pattern is valid for its field type. Code that holds a struct rf_pack may rely on it;
 * the interpreter still re-checks indices and stack at run time (defence in depth).
 */
#ifndef RF_CONTENT_PACK_H
#define RF_CONTENT_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content/ir.h"
#include "ringfence/content.h"

#define RF_PACK_MAGIC	     "RFPK"
/* Version 1: five sections. Version 2 (written only when the pack has correlation rules, so a
 * pack without them is byte-identical to version 1 and loads on older agents): a sixth section,
 * the correlations. This build reads both. */
#define RF_PACK_VERSION	     1u
#define RF_PACK_VERSION_CORR 2u
#define RF_PACK_HEADER_SIZE  24u
#define RF_PACK_NSECTIONS    5u
#define RF_PACK_NSECTIONS_V2 6u
#define RF_PACK_SECTENT_SIZE 16u
#define RF_PACK_PREAMBLE     (RF_PACK_HEADER_SIZE + RF_PACK_NSECTIONS * RF_PACK_SECTENT_SIZE)
#define RF_PACK_PREAMBLE_V2  (RF_PACK_HEADER_SIZE + RF_PACK_NSECTIONS_V2 * RF_PACK_SECTENT_SIZE)

enum rf_pack_section {
	RF_SEC_STRINGS = 1,
	RF_SEC_FIELDS = 2,
	RF_SEC_ATOMS = 3,
	RF_SEC_RULES = 4,
	RF_SEC_CODE = 5,
	RF_SEC_CORR = 6, /* version 2 */
};

#define RF_PACK_STRENT_SIZE 8u	/* u32 offset, u32 length (into the string data) */
#define RF_PACK_FIELD_SIZE  12u /* u32 event, u32 name, u8 type, u8[3] zero */
#define RF_PACK_ATOM_SIZE   12u /* u32 field|NONE, u8 op, u8 flags, u16 zero, u32 pattern */
#define RF_PACK_RULE_SIZE   32u /* u32 id,title,level,author,event,code_off,code_len,product+1 */
#define RF_PACK_INSN_SIZE   4u
/* u32 id,title,level,author; u8 type, flags, n_refs, n_group; u32 timespan_s, lo, hi, field|NONE,
 * word_off, word_len, zero. The words (u32, after the records) of correlation i are its refs,
 * its group-by names, then group fields (g-major), contiguous and in order. */
#define RF_PACK_CORR_SIZE   48u
#define RF_PACK_NONE	    0xffffffffu /* atom field of a keyword atom */

struct rf_pstr {
	const char *s; /* NUL-terminated copy */
	uint32_t len;
};

struct rf_pfield {
	uint32_t event, name; /* string indices */
	uint8_t type;	      /* enum rf_ftype */
};

struct rf_patom {
	uint32_t field; /* field index, or RF_PACK_NONE for RF_OP_KEYWORD */
	uint8_t op, flags;
	uint32_t pattern; /* string index */
	uint32_t ref;	  /* RF_OP_FIELDREF: index of the field the pattern names (resolved and
			   * checked at load: same event, string type); else RF_PACK_NONE */
};

struct rf_prule {
	uint32_t id, title, level, author, event; /* string indices */
	uint32_t code_off, code_len;		  /* range in the code table */
	uint32_t product; /* logsource product (string index), or RF_PACK_NONE: none */
};

/* A decoded correlation. refs/group/gfield point into rf_pack.corr_words; refs and string indices
 * are checked. For a ref to a correlation, gfield[g * n_refs + r] has been resolved to the index
 * of that correlation's group-by entry it names (gmap). */
struct rf_pcorr {
	uint32_t id, title, level, author;
	uint8_t type, flags, n_refs, n_group;
	uint32_t timespan_s, lo, hi, field;
	const uint32_t *refs, *group, *gfield;
	uint8_t gmap[RF_CORR_GROUP_MAX * RF_CORR_REFS_MAX];
};

struct rf_pack {
	uint32_t version;
	uint64_t seq;
	size_t total_len;
	char *arena; /* NUL-terminated copies of every string */
	uint32_t n_strings, n_fields, n_atoms, n_rules, n_code;
	struct rf_pstr *strings;
	struct rf_pfield *fields;
	struct rf_patom *atoms;
	struct rf_prule *rules;
	uint32_t *code;
	uint32_t n_corr, n_corr_words; /* 0 in a version 1 pack */
	struct rf_pcorr *corrs;
	uint32_t *corr_words;
};

static inline const char *rf__pack_str(const struct rf_pack *pk, uint32_t i)
{
	return i < pk->n_strings ? pk->strings[i].s : "";
}

/* Append the regex for a glob atom (op EQ/CONTAINS/STARTSWITH/ENDSWITH/KEYWORD) to out (size
 * cap); every literal byte is written as \xNN. For RF_OP_REGEX the pattern itself. Returns the
 * length or -E2BIG. */
int rf__pack_glob_regex(uint8_t op, const char *pat, size_t n, char *out, size_t cap);
/* Largest regex rf__pack_glob_regex can produce for a pattern of n bytes. */
#define RF_GLOB_REGEX_MAX(n) ((n)*4 + 8)

/* The Vectorscan flags of a string atom (op, RF_ATOM_* flags): one rule for the verifier, the
 * engine and the compiler. */
unsigned rf__pack_hs_flags(unsigned op, unsigned flags);
/* Why regular expression p[0..n) is refused (NULL if not): the constructs Vectorscan cannot run
 * in linear time, named (back-reference, lookahead, lookbehind, atomic group, conditional,
 * recursion, possessive quantifier), an empty expression or a NUL byte. */
const char *rf__pack_regex_problem(const uint8_t *p, size_t n);
/* Parse a CIDR prefix "a.b.c.d/N" (N <= 32) or "v6/N" (N <= 128) into a 16-byte network (host
 * bits cleared; IPv4 as ::ffff:a.b.c.d with N + 96 bits); is ip inside net/bits? */
bool rf__pack_parse_cidr(const char *s, size_t n, uint8_t ret[16], unsigned *ret_bits);
bool rf__pack_ip_in(const uint8_t ip[16], const uint8_t net[16], unsigned bits);
/* Parse a decimal int pattern ("-"? digits, no overflow) / an IPv4 or IPv6 literal into a
 * 16-byte address (IPv4 as ::ffff:a.b.c.d). */
bool rf__pack_parse_int(const char *s, size_t n, int64_t *ret);
bool rf__pack_parse_ip(const char *s, size_t n, uint8_t ret[16]);

/* Why an atom is invalid for a field of type t (NULL if valid); t is 0 for a keyword atom. The
 * one rule shared by the compiler, the builder and the verifier, so they cannot disagree. */
const char *rf__pack_atom_problem(unsigned t, unsigned op, unsigned flags, const uint8_t *pat,
				  size_t n);
/* Why a correlation's condition [lo, hi] is refused for its type (NULL if valid): empty range,
 * a count the window cannot hold (RF_CORR_WINDOW_MAX), a temporal count outside 1..n_refs, a
 * temporal_ordered condition other than "all". Shared by the builder and the verifier. */
const char *rf__pack_corr_cond_problem(unsigned type, unsigned n_refs, uint32_t lo, uint32_t hi);
/* Is s[0..n) valid UTF-8? */
bool rf__pack_utf8_ok(const uint8_t *s, size_t n);

/* canon[i] = the smallest index of a string of pk equal to string i (*ret, caller frees), found
 * with a table keyed by SipHash under a fresh random key: expected linear time whatever the
 * strings. *ret_probes (optional) counts the table slots examined (tests). 0 or -ENOMEM. */
int rf__pack_canon_strings(const struct rf_pack *pk, uint32_t **ret, uint64_t *ret_probes);

/* A fresh random key for a hash table keyed against crafted input (from getrandom; should the
 * entropy pool not be ready, the clocks, the process id and a stack address). */
void rf__pack_table_key(uint8_t k[16]);

/* Verify the structure of p (everything independent of a manifest) and decode it. */
int rf__pack_decode(const uint8_t *p, size_t n, struct rf_pack **ret, struct rf_diag *reterr);

/* The correlations section (verify_corr.c): decode and check p[0..size) holding count records
 * and their words into pk (whose strings, rules and canonical string map canon are decoded):
 * string indices in range, type/flags known, refs in range (a correlation only to an earlier one,
 * chains at most RF_CORR_CHAIN_MAX deep), counts and timespan within limits.h, word ranges
 * contiguous. Every problem is reported; returns 0, -EBADMSG, -E2BIG, -ENOMEM. */
int rf__pack_decode_corrs(struct rf_pack *pk, const uint8_t *p, uint32_t size, uint32_t count,
			  const uint32_t *canon, struct rf_diag *reterr);
/* Against a manifest: every field a correlation reads from a rule's match (group-by, value_count
 * field) is supplied for that rule's event. Returns 0 or -ENOEXEC (every problem reported). */
int rf__pack_check_corrs(const struct rf_pack *pk, const struct rf_manifest *m,
			 struct rf_diag *reterr);

/* Lookup used by the verifier and the engine (manifest.c). */
struct rf_manifest;
const char *rf__manifest_field_name(const struct rf_manifest *m, size_t ev, size_t i);
int rf__manifest_event_index(const struct rf_manifest *m, const char *event);
size_t rf__manifest_nevents(const struct rf_manifest *m);
const char *rf__manifest_event_name(const struct rf_manifest *m, size_t ev);
size_t rf__manifest_event_nfields_at(const struct rf_manifest *m, size_t ev);
enum rf_ftype rf__manifest_field_type_at(const struct rf_manifest *m, size_t ev, size_t i);
/* Whether event ev has "other_fields": "string". */
bool rf__manifest_event_open_at(const struct rf_manifest *m, size_t ev);
/* Whether m supplies Sigma logsource product `product` for `event`: when the event declares its
 * logsources, one of them names that product; otherwise the manifest names that product or none
 * (any). On false, *ret_has is the product m supplies there (NULL: none named). */
bool rf__manifest_supplies_product(const struct rf_manifest *m, const char *event,
				   const char *product, const char **ret_has);
/* For the engine: a copy of m in which each open event also lists, as strings, the fields the
 * pack's rules read from it (verified: every such name is a valid name), so its lookup table has
 * a slot for each. *ret NULL (use m) when m has no open event. Returns 0 or -ENOMEM. */
int rf__manifest_with_pack_fields(const struct rf_manifest *m, const struct rf_pack *pk,
				  struct rf_manifest **ret);

#endif
