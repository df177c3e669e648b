/*
 * The agent manifests of manifests/ for the content tests (test_engine.c, test_cache.c,
 * test_sigma_corpus.c), read from $RF_SOURCE_ROOT/manifests (the current directory's when it
 * is unset) and parsed by the real parser. A manifest that cannot be read or parsed ends the
 * test (a cmocka failure that names the path and the parser's message).
 */
#ifndef RF_TESTS_TESTMANIFEST_H
#define RF_TESTS_TESTMANIFEST_H

struct rf_manifest;

/* manifests/NAME, parsed; the caller frees it with rf_manifest_free(). */
struct rf_manifest *rf_test_manifest(const char *name);

#endif
