/*
 * The rule IR: the contract between the Sigma compiler (sigma.c, which produces it) and the pack
 * writer (pack.c, which serialises it). Nothing here is trusted at load time: the agent sees only
 * pack bytes, which the verifier checks from scratch.
 *
 * A rule is a set of atoms (one predicate on one event field each) and a jump-free postfix boolean
 * program over the atoms' match bits. Its running time is bounded by its length by construction.
 *
 * Atom semantics (what the interpreter computes for one event):
 *   - A predicate on a field the event does not carry is false (so `not` of it is true), except
 *     RF_OP_EXISTS (false when absent) and RF_OP_NULL (true when absent or empty).
 *   - Patterns are in glob syntax: '*' matches any run of bytes (also empty), '?' exactly one
 *     byte, '\' makes the next byte literal ("\*", "\?", "\\"); a '\' before any other byte
 *     or at the end stands for itself. Matching is over bytes; case-insensitive (ASCII) unless
 *     RF_ATOM_CASED.
 *       RF_OP_EQ(p)         the whole value matches p
 *       RF_OP_CONTAINS(p)   the value matches *p*
 *       RF_OP_STARTSWITH(p) the value matches p*
 *       RF_OP_ENDSWITH(p)   the value matches *p
 *   - RF_OP_KEYWORD(p): field is NULL; true if any string field of the event matches *p*
 *     (Sigma keyword search over the whole event).
 *   - RF_OP_REGEX(p), string fields only: p is a regular expression (Vectorscan's PCRE subset,
 *     searched anywhere in the value, bytes not code points); case-sensitive if RF_ATOM_CASED
 *     else ASCII case-insensitive; RF_ATOM_MULTILINE: ^/$ also match at line ends;
 *     RF_ATOM_DOTALL: '.' also matches '\n'. Constructs that cannot run in linear time
 *     (back-references, lookaround, atomic groups, conditionals, recursion, possessive
 *     quantifiers) are rejected (rf__pack_regex_problem names them).
 *   - On an int field: RF_OP_EQ, RF_OP_GT, RF_OP_GTE, RF_OP_LT, RF_OP_LTE with a decimal pattern
 *     ("-"? digits), compared as int64 (field OP pattern). On an ip field: RF_OP_EQ with an
 *     IPv4/IPv6 literal, compared as an address, or RF_OP_CIDR with a prefix ("10.0.0.0/8",
 *     "2001:db8::/32"; host bits are ignored). A value that does not parse as the field's type
 *     makes these atoms false. RF_OP_CIDR is also allowed on a string field: its value is
 *     parsed as an address, and the atom is false when it is not one. The verifier rejects
 *     anything else.
 *   - RF_OP_EXISTS / RF_OP_NULL take no pattern (pattern_len 0).
 *   - RF_OP_FIELDREF(p), string fields only: p is the name of another string field of the same
 *     event (Sigma |fieldref); true when the event carries both and their values are equal,
 *     byte for byte with RF_ATOM_CASED, else ASCII case-insensitive.
 *
 * Program: an array of 32-bit instructions RF_INSN(op, arg), evaluated with a stack of bits.
 *   RF_I_ATOM  arg = index into the rule's atoms: push its match bit
 *   RF_I_TRUE / RF_I_FALSE: push a constant (arg 0)
 *   RF_I_NOT: pop 1, push its negation;  RF_I_AND / RF_I_OR: pop 2, push the result (arg 0)
 * A valid program leaves exactly one bit, never underflows, and stays within
 * RF_RULE_STACK_MAX; the rule fires when the final bit is 1.
 */
#ifndef RF_CONTENT_IR_H
#define RF_CONTENT_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"

enum rf_ftype {
	RF_FT_STRING = 1,
	RF_FT_INT = 2,
	RF_FT_IP = 3,
};

enum rf_atom_op {
	RF_OP_EQ = 1,
	RF_OP_CONTAINS = 2,
	RF_OP_STARTSWITH = 3,
	RF_OP_ENDSWITH = 4,
	RF_OP_KEYWORD = 5,
	RF_OP_EXISTS = 6,
	RF_OP_NULL = 7,
	/* Added by issue 12; an agent built before it rejects a pack using them ("unknown
	 * operator"), so a pack needing them never loads where they mean nothing. */
	RF_OP_REGEX = 8,
	RF_OP_CIDR = 9,
	RF_OP_GT = 10,
	RF_OP_GTE = 11,
	RF_OP_LT = 12,
	RF_OP_LTE = 13,
	RF_OP_FIELDREF = 14,
};
#define RF_OP_MAX RF_OP_FIELDREF

#define RF_ATOM_CASED 0x1u     /* case-sensitive match (Sigma |cased; every |re without |i) */
#define RF_ATOM_MULTILINE 0x2u /* RF_OP_REGEX only: Sigma |re|m */
#define RF_ATOM_DOTALL 0x4u    /* RF_OP_REGEX only: Sigma |re|s */
#define RF_ATOM_FLAGS_KNOWN (RF_ATOM_CASED | RF_ATOM_MULTILINE | RF_ATOM_DOTALL)

enum rf_insn_op {
	RF_I_ATOM = 1,
	RF_I_TRUE = 2,
	RF_I_FALSE = 3,
	RF_I_NOT = 4,
	RF_I_AND = 5,
	RF_I_OR = 6,
};

#define RF_INSN(op, arg) ((uint32_t)(op) << 24 | ((uint32_t)(arg) & 0xffffffu))
#define RF_INSN_OP(i) ((uint32_t)(i) >> 24)
#define RF_INSN_ARG(i) ((uint32_t)(i) & 0xffffffu)

struct rf_ir_atom {
	const char *field;    /* NUL-terminated field name; NULL for RF_OP_KEYWORD */
	enum rf_ftype type;   /* the type this rule expects the field to have */
	enum rf_atom_op op;
	uint32_t flags;       /* RF_ATOM_* */
	const uint8_t *pattern;
	size_t pattern_len;
};

struct rf_ir_rule {
	const char *id;     /* Sigma id (usually a UUID); required */
	const char *title;  /* required */
	const char *level;  /* informational|low|medium|high|critical; "" if absent */
	const char *author; /* "" if absent; shown with every alert (DRL licence) */
	const char *event;  /* event type the rule applies to, e.g. "process_creation" */
	const struct rf_ir_atom *atoms;
	size_t n_atoms;
	const uint32_t *code;
	size_t n_code;
};

/*
 * Pack writer (implemented in pack.c). Builds a pack from IR rules: strings, fields and atoms
 * are de-duplicated across rules. Limits from ringfence/limits.h apply; going over one returns
 * -E2BIG with a diagnostic naming the rule.
 */
struct rf_pack_builder;
int rf_pack_builder_new(struct rf_pack_builder **ret) RF_WUR;
/* Copies everything it needs out of r. -EINVAL/-E2BIG with a diagnostic if r is malformed. */
int rf_pack_builder_add(struct rf_pack_builder *b, const struct rf_ir_rule *r, struct rf_diag *reterr) RF_WUR;
/* The same, recording the Sigma logsource product the rule was written for (product NULL or "":
 * none, as rf_pack_builder_add). The verifier then refuses the rule for an agent whose manifest
 * supplies another product for its event (docs/pack-format.md, rules). Same returns. */
int rf_pack_builder_add_product(struct rf_pack_builder *b, const struct rf_ir_rule *r,
				const char *product, struct rf_diag *reterr) RF_WUR;
size_t rf_pack_builder_count(const struct rf_pack_builder *b);
/* Serialise with content sequence number seq; *ret_buf is malloc'd, caller frees. */
int rf_pack_builder_finish(struct rf_pack_builder *b, uint64_t seq, uint8_t **ret_buf, size_t *ret_len) RF_WUR;
void rf_pack_builder_free(struct rf_pack_builder *b);

/*
 * A correlation rule (Sigma correlations, docs/sigma.md "Correlation rules"): it counts the
 * matches of other rules (or correlations) per group of events that share their group-by
 * values, over a sliding time window, and fires when the count meets its condition. Produced by
 * sigma_corr.c with every reference resolved to an index; serialised by pack.c (pack format 2).
 *
 *   event_count       matches of the referred rules in the window
 *   value_count       distinct values of `field` among those matches
 *   temporal          referred rules that matched in the window (default: all of them)
 *   temporal_ordered  all referred rules matched in the window, in the order listed
 *
 * The condition is the inclusive range [lo, hi] of that count (gt n is lo n+1, lt n is hi n-1;
 * hi RF_CORR_NO_MAX: no upper bound).
 */
enum rf_corr_type {
	RF_CORR_EVENT_COUNT = 1,
	RF_CORR_VALUE_COUNT = 2,
	RF_CORR_TEMPORAL = 3,
	RF_CORR_TEMPORAL_ORDERED = 4,
};
#define RF_CORR_NO_MAX 0xffffffffu
/* A reference to correlation i (earlier in the pack) rather than to rule i. */
#define RF_CORR_REF_CORR 0x80000000u
#define RF_CORR_F_GENERATE 0x1u /* the referred rules also alert on their own */

struct rf_ir_corr {
	const char *id, *title, *level, *author; /* as for rules; level and author may be "" */
	enum rf_corr_type type;
	uint32_t flags;	     /* RF_CORR_F_* */
	uint32_t timespan_s; /* 1..RF_CORR_TIMESPAN_MAX */
	uint32_t lo, hi;
	const char *field; /* value_count: the field whose distinct values are counted; else NULL */
	const uint32_t *refs; /* rule index, or RF_CORR_REF_CORR | index of an earlier correlation */
	size_t n_refs;
	const char *const *group; /* group-by names (alias names where aliases are used) */
	size_t n_group;
	/* group_fields[g * n_refs + r]: what group-by g reads from a match of refs[r]: a field of
	 * the rule's event, or, for a correlation, the name of one of its own group-by entries. */
	const char *const *group_fields;
};

/* Add correlation c after every rule it refers to (and every correlation before it). -EINVAL or
 * -E2BIG with a diagnostic naming the correlation if c is malformed or over a limit. */
int rf_pack_builder_add_corr(struct rf_pack_builder *b, const struct rf_ir_corr *c,
			     struct rf_diag *reterr) RF_WUR;
size_t rf_pack_builder_corr_count(const struct rf_pack_builder *b);

/*
 * Agent manifest (implemented in manifest.c): which event types and fields an agent build
 * supplies, parsed from JSON such as manifests/ringfence-agent-1.1.0.json.
 */
struct rf_manifest;
int rf_manifest_parse(const uint8_t *json, size_t n, struct rf_manifest **ret, struct rf_diag *reterr) RF_WUR;
void rf_manifest_free(struct rf_manifest *m);
const char *rf_manifest_agent(const struct rf_manifest *m);   /* e.g. "ringfence-agent" */
const char *rf_manifest_version(const struct rf_manifest *m); /* e.g. "1.0.0" */
bool rf_manifest_has_event(const struct rf_manifest *m, const char *event);
/* The type of event.field, or -ENOENT if the manifest does not supply it. */
int rf_manifest_field_type(const struct rf_manifest *m, const char *event, const char *field);
/* Number of fields the manifest supplies for event (0 if the event is unknown). */
size_t rf_manifest_event_nfields(const struct rf_manifest *m, const char *event);

#endif
