/*
 * The matcher cache (cache.c) and the engine hooks it uses (engine.c). A worker that restarts
 * loads the same pack again; compiling its Vectorscan databases takes seconds, so the agent keeps
 * them serialised in a file of its own beside the pack, keyed and checked by the pack's SHA-256.
 * The cache is never shipped and never trusted for more than speed: the pack is verified against
 * the manifest on every load exactly as without a cache, and a cache that is missing, for other
 * content, for another Vectorscan or CPU, or damaged (its own SHA-256) is ignored and rewritten.
 */
#ifndef RF_CONTENT_CACHE_H
#define RF_CONTENT_CACHE_H

#include <stdint.h>

#include <hs/hs.h>

#include "ringfence/content.h"

/* rf_engine_load with the databases taken from pre[0..npre) instead of compiled, in db order:
 * the fields that have string atoms in ascending field index, then the keyword database. A
 * database is used only if pre_digests[i] equals the digest of the expressions the engine would
 * compile for it (SHA-256 over expressions, flags and ids); each one used is owned by the engine
 * and its slot set to NULL, the caller frees the rest. -ESTALE when pre does not hold exactly
 * the databases the pack needs, built from exactly those expressions. */
int rf__engine_load_with(const uint8_t *p, size_t n, const struct rf_manifest *m,
			 hs_database_t **pre, const uint8_t (*pre_digests)[32], uint32_t npre,
			 struct rf_engine **ret, struct rf_diag *reterr);
/* The engine's databases, in the same order (i < rf__engine_ndbs), and each one's digest. */
uint32_t rf__engine_ndbs(const struct rf_engine *e);
const hs_database_t *rf__engine_db(const struct rf_engine *e, uint32_t i, const uint8_t **digest);

#endif
