/*
 * Real packs for tests that release something through ringfenced: release create refuses bytes
 * that are not a pack an agent accepts (docs/server.md, "What release create checks"). The build
 * compiles the project's example rules once (examples/rules, `ringfence content compile`, the
 * path the demo takes) into the file $RF_TEST_PACK names (tests/lib/meson.build); a test asking
 * for several distinct packs gets that pack with another content sequence number (the header's
 * bytes 16..23, docs/pack-format.md: any value is valid), so each has its own SHA-256.
 */
#ifndef RF_TESTS_TESTPACK_H
#define RF_TESTS_TESTPACK_H

#include <stddef.h>
#include <stdint.h>

/* The example pack with content sequence number seq: 0 and *ret (malloc'd) and *ret_n, or a
 * negative errno (-ENOENT: RF_TEST_PACK is not set; the file's errors; -EBADMSG: not a pack). */
int rf_testpack(uint64_t seq, uint8_t **ret, size_t *ret_n);

/* A sequence number of its own for each name (FNV-1a), for packs made per target name. */
uint64_t rf_testpack_seq(const char *name);

#endif
