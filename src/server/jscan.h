/*
 * A strict, allocation-free JSON scanner for the check-in hot path (28,000 check-ins/s is the
 * goal; a general JSON library spends most of a check-in's CPU in malloc). It validates the
 * whole document against RFC 8259 (grammar, string escapes, UTF-8, no control characters, no
 * trailing bytes, duplicate keys in an object rejected like jansson's JSON_REJECT_DUPLICATES
 * on the raw key bytes) and records a flat array of tokens in document order in a caller
 * buffer, with each token's subtree end so members can be skipped in O(1).
 * Invariants: never reads outside p[0..n); never writes outside toks[0..maxtok); depth and
 * token count are bounded by the caller.
 */
#ifndef RF_SERVER_JSCAN_H
#define RF_SERVER_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"

enum rf_jtype { RF_J_OBJ = 1, RF_J_ARR, RF_J_STR, RF_J_NUM, RF_J_TRUE, RF_J_FALSE, RF_J_NULL };

struct rf_jtok {
	uint8_t type;	/* enum rf_jtype */
	uint32_t start; /* first byte (for strings: after the opening quote) */
	uint32_t end;	/* one past the last byte (for strings: the closing quote) */
	uint32_t next;	/* index of the token after this one's subtree */
	uint32_t size;	/* objects: members; arrays: elements */
	bool escaped;	/* strings: contains a backslash escape */
};

/*
 * Scan p[0..n) (n < 4 GiB). Returns 0 and *ret_ntok; -EBADMSG malformed (*ret_off: the byte
 * where it went wrong), -ELOOP nested deeper than maxdepth, -E2BIG more than maxtok tokens.
 */
int rf_jscan(const uint8_t *p, size_t n, struct rf_jtok *toks, size_t maxtok, unsigned maxdepth,
	     size_t *ret_ntok, size_t *ret_off) RF_WUR;

/* The value token of member key (NUL-terminated, compared to the raw key bytes) of object
 * token obj, or -1. */
int rf_jget(const uint8_t *p, const struct rf_jtok *toks, int obj, const char *key);

/*
 * Decode string token t into out (cap bytes incl. the NUL). Returns the length, -E2BIG if it
 * does not fit, -EBADMSG if it decodes to a NUL byte.
 */
int rf_jstr(const uint8_t *p, const struct rf_jtok *t, char *out, size_t cap) RF_WUR;

/* Number token t as a non-negative integer (no sign, fraction or exponent) that fits uint64.
 * Returns 0 or -ERANGE / -EINVAL. */
int rf_ju64(const uint8_t *p, const struct rf_jtok *t, uint64_t *ret) RF_WUR;

#endif
