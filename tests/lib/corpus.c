/* Rule-file lists for the corpus tests (corpus.h). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "corpus.h"

void rf_corpus_list_add(struct rf_corpus_list *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->n++] = s;
}

void rf_corpus_list_free(struct rf_corpus_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

char *rf_corpus_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);

	assert_non_null(s);
	snprintf(s, n, "%s/%s", a, b);
	return s;
}

static int is_yml(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && !strcmp(name + n - 4, ".yml");
}

static void add_tree(struct rf_corpus_list *out, const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d || depth > 8) {
		if (d)
			closedir(d);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		char *path = rf_corpus_join(dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			add_tree(out, path, depth + 1);
			free(path);
		} else if (is_yml(de->d_name)) {
			rf_corpus_list_add(out, path);
		} else {
			free(path);
		}
	}
	closedir(d);
}

void rf_corpus_add_tree(struct rf_corpus_list *out, const char *dir)
{
	add_tree(out, dir, 0);
}

void rf_corpus_add_dir(struct rf_corpus_list *out, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (is_yml(de->d_name))
			rf_corpus_list_add(out, rf_corpus_join(dir, de->d_name));
	closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void rf_corpus_sort(struct rf_corpus_list *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_str);
}
