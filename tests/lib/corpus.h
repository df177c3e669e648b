/*
 * Lists of rule files for the tests that read a Sigma corpus (test_sigma_corpus.c,
 * test_sigma_selftest.c): a growable list of owned paths, filled from a directory tree and
 * sorted, so every test walks the corpus the same way and in the same order. Failures of
 * allocation end the test (cmocka assertions).
 */
#ifndef RF_TESTS_CORPUS_H
#define RF_TESTS_CORPUS_H

#include <stddef.h>

struct rf_corpus_list {
	char **v;
	size_t n, cap;
};

/* Append s (owned by the list from now on). */
void rf_corpus_list_add(struct rf_corpus_list *l, char *s);
void rf_corpus_list_free(struct rf_corpus_list *l);
/* "a/b", malloc'd. */
char *rf_corpus_join(const char *a, const char *b);
/* Every *.yml below dir, recursively (at most 8 levels; dot entries skipped). */
void rf_corpus_add_tree(struct rf_corpus_list *out, const char *dir);
/* The *.yml directly in dir (not below it). */
void rf_corpus_add_dir(struct rf_corpus_list *out, const char *dir);
/* Sort by path (byte order), so counts and reports come out in one order everywhere. */
void rf_corpus_sort(struct rf_corpus_list *l);

#endif
