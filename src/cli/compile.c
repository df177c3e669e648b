/*
 * `ringfence content compile RULE.yml|DIR... -o PACK [--manifest M] [--strict] [--seq N]
 *  [--placeholders P]`:
 * Sigma rule files -> one content pack.
 *
 * Directories are searched recursively for *.yml and *.yaml (sorted, so the same inputs give the
 * same pack bytes; symbolic links to directories are not followed). Each rule is compiled by
 * src/content/sigma.c and added with rf_pack_builder_add(); a rule that fails is reported on
 * stderr with its reason and left out, the rest still make the pack (--strict: any rejection
 * means no pack; nor is one written when no rule compiled, so working content is never replaced
 * by an empty pack). The pack is written atomically (rf_file_write_atomic), so PACK is always the
 * old or the new file. Exit: 0 all compiled; 1 some rules rejected; 2 usage or I/O error.
 */
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/opt.h"
#include "common/util.h"
#include "content/ir.h"
#include "content/sigma.h"
#include "content/sigma_corr.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

/* Directory levels searched below each DIR argument (rule trees are 3-4 deep). */
#define COMPILE_DIR_DEPTH_MAX 16

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringfence content compile RULE.yml|DIR... -o PACK [--manifest M] [--strict]\n"
	    "                                 [--seq N] [--placeholders P.json]\n"
	    "\n"
	    "Compile Sigma rules into a content pack. Directories are searched recursively for\n"
	    "*.yml and *.yaml. Rules outside the supported Sigma subset (docs/sigma.md) are\n"
	    "rejected with a reason on stderr; the others are compiled. A file may hold several\n"
	    "YAML documents; correlation rules among them (or in other inputs) refer to rules\n"
	    "by id or name.\n"
	    "\n"
	    "  -o, --output PACK   the pack to write (replaced atomically)\n"
	    "  --manifest M        type fields from agent manifest M and reject rules that use an\n"
	    "                      event or field M does not supply\n"
	    "  --strict            any rejected rule is fatal: no pack is written\n"
	    "  --seq N             content sequence number written in the pack (default 1)\n"
	    "  --placeholders P    values of the %%name%% placeholders of Sigma's expand "
	    "modifier:\n"
	    "                      a JSON object {\"name\": [\"value\", ...], ...}\n"
	    "  -h, --help          this help\n"
	    "\n"
	    "exit status: 0 every rule compiled; 1 some rules rejected; 2 usage or I/O error\n");
}

struct paths {
	char **v;
	size_t n, cap;
};

static int paths_add(struct paths *p, char *s)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		char **v = realloc(p->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = s;
	return 0;
}

static void paths_free(struct paths *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
}

static char *path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *s = malloc(a + b + 2);

	if (!s)
		return NULL;
	memcpy(s, dir, a);
	s[a] = '/';
	memcpy(s + a + 1, name, b + 1);
	return s;
}

static bool is_rule_name(const char *name)
{
	size_t n = strlen(name);

	return (n > 4 && !strcmp(name + n - 4, ".yml")) ||
	       (n > 5 && !strcmp(name + n - 5, ".yaml"));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append the rule files under dir (sorted by name at each level). */
static int walk(const char *dir, unsigned depth, struct paths *out)
{
	struct paths names = {0};
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (depth > COMPILE_DIR_DEPTH_MAX) {
		fprintf(stderr, "ringfence: %s: directories nested deeper than %d\n", dir,
			COMPILE_DIR_DEPTH_MAX);
		return -E2BIG;
	}
	d = opendir(dir);
	if (!d) {
		r = -errno;
		fprintf(stderr, "ringfence: %s: %s\n", dir, strerror(-r));
		return r;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.') /* ., .., and hidden entries such as .git */
			continue;
		char *s = strdup(de->d_name);
		if (!s || paths_add(&names, s) < 0) {
			free(s);
			r = -ENOMEM;
			goto out;
		}
	}
	if (names.n)
		qsort(names.v, names.n, sizeof(*names.v), cmp_str);
	for (size_t i = 0; i < names.n && r >= 0; i++) {
		char *full = path_join(dir, names.v[i]);
		struct stat st;

		if (!full) {
			r = -ENOMEM;
			break;
		}
		if (lstat(full, &st) < 0) {
			r = -errno;
			fprintf(stderr, "ringfence: %s: %s\n", full, strerror(-r));
			free(full);
			break;
		}
		if (S_ISLNK(st.st_mode) && stat(full, &st) < 0) {
			free(full); /* dangling link: not a rule file */
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			bool link = false;
			struct stat lst;
			if (lstat(full, &lst) == 0)
				link = S_ISLNK(lst.st_mode);
			if (!link)
				r = walk(full, depth + 1, out);
			free(full);
		} else if (S_ISREG(st.st_mode) && is_rule_name(names.v[i])) {
			r = paths_add(out, full);
			if (r < 0)
				free(full);
		} else {
			free(full);
		}
	}
out:
	closedir(d);
	paths_free(&names);
	return r;
}

/* Rule ids already in the pack (two rules with one id would make alerts ambiguous). */
struct idset {
	char **ids;
	const char **files;
	size_t n, cap;
};

static const char *idset_find(const struct idset *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++) /* linear: a few thousand rules, compile time only */
		if (!strcmp(s->ids[i], id))
			return s->files[i];
	return NULL;
}

static int idset_add(struct idset *s, const char *id, const char *file)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		char **ids = realloc(s->ids, cap * sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		s->ids = ids;
		const char **files = realloc(s->files, cap * sizeof(*files));
		if (!files)
			return -ENOMEM;
		s->files = files;
		s->cap = cap;
	}
	s->ids[s->n] = strdup(id);
	if (!s->ids[s->n])
		return -ENOMEM;
	s->files[s->n++] = file;
	return 0;
}

static void idset_free(struct idset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->ids[i]);
	free(s->ids);
	free(s->files);
}

static void print_diag(void *userdata, int code, const char *msg)
{
	const char *file = userdata;

	(void)code;
	if (file)
		fprintf(stderr, "%s: %s\n", file, msg);
	else
		fprintf(stderr, "%s\n", msg);
}

static int load_placeholders(const char *path, struct rf_sigma_placeholders **ret)
{
	struct rf_diag d = {.emit = print_diag, .userdata = (void *)path};
	uint8_t *buf = NULL;
	size_t len;
	int r = rf_file_read(path, RF_SIGMA_FILE_MAX, &buf, &len);

	if (r < 0) {
		fprintf(stderr, "ringfence: %s: %s\n", path, rf_strerror(r));
		return r;
	}
	r = rf_sigma_placeholders_parse(buf, len, ret, &d);
	free(buf);
	if (r < 0 && d.count == 0)
		fprintf(stderr, "ringfence: %s: %s\n", path, rf_strerror(r));
	return r;
}

static int load_manifest(const char *path, struct rf_manifest **ret)
{
	struct rf_diag d = {.emit = print_diag, .userdata = (void *)path};
	uint8_t *buf = NULL;
	size_t len;
	int r = rf_file_read(path, RF_MANIFEST_MAX, &buf, &len);

	if (r < 0) {
		fprintf(stderr, "ringfence: %s: %s\n", path, rf_strerror(r));
		return r;
	}
	r = rf_manifest_parse(buf, len, ret, &d);
	free(buf);
	if (r < 0 && d.count == 0)
		fprintf(stderr, "ringfence: %s: %s\n", path, rf_strerror(r));
	return r;
}

/* One compile: the pack being built and what correlations may refer to. */
struct compile_ctx {
	struct rf_pack_builder *b;
	const struct rf_manifest *m;
	const struct rf_sigma_placeholders *ph;
	struct idset *ids;
	struct rf_sigma_corrset *corrs;
	size_t compiled, rejected, corr_compiled;
};

/* Compile one rule document p[0..n) (origin names it in messages; path is its file; doc, if
 * known, gives its id and name) and add it to the pack. Returns 0 (compiled or rejected, counted
 * and reported) or -ENOMEM. */
static int compile_rule(struct compile_ctx *x, const uint8_t *p, size_t n, const char *origin,
			const char *path, const struct rf_sigma_doc *doc)
{
	struct rf_diag d = {.emit = print_diag};
	struct rf_sigma_rule *rule = NULL;
	const char *name = doc ? doc->name : "";
	int r;

	r = rf_sigma_compile_with(p, n, origin, x->m, x->ph, &rule, &d);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		x->rejected++;
		if (doc && (doc->id[0] || doc->name[0]))
			return rf_sigma_corrset_rule(x->corrs, doc->id, name, "", UINT32_MAX);
		return 0;
	}
	const struct rf_ir_rule *ir = rf_sigma_rule_ir(rule);
	const char *other = idset_find(x->ids, ir->id);
	if (other) {
		fprintf(stderr, "%s: rule %s \"%s\": id already used by %s\n", origin, ir->id,
			ir->title, other);
		x->rejected++;
		rf_sigma_rule_free(rule);
		return 0;
	}
	uint32_t index = (uint32_t)rf_pack_builder_count(x->b);
	d.userdata = (void *)path;
	r = rf_pack_builder_add_product(x->b, ir, rf_sigma_rule_product(rule), &d);
	if (r >= 0)
		r = idset_add(x->ids, ir->id, path);
	if (r >= 0)
		r = rf_sigma_corrset_rule(x->corrs, ir->id, name, ir->event, index);
	rf_sigma_rule_free(rule);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		if (d.count == 0)
			fprintf(stderr, "%s: %s\n", path, rf_strerror(r));
		x->rejected++;
		return 0;
	}
	x->compiled++;
	return 0;
}

/* A rule file: one rule, or several YAML documents (rules and correlations; Sigma's
 * multi-document files). A single rule goes to the compiler whole, as always. */
static int compile_file(struct compile_ctx *x, const uint8_t *p, size_t n, const char *path)
{
	struct rf_sigma_doc *docs = NULL;
	size_t nd = 0;
	int r;

	r = rf_sigma_docs(p, n, path, &docs, &nd, NULL);
	if (r == -ENOMEM)
		return r;
	if (r < 0 || nd == 0 || (nd == 1 && !docs[0].correlation)) {
		r = compile_rule(x, p, n, path, path, r < 0 || nd == 0 ? NULL : &docs[0]);
		free(docs);
		return r;
	}
	for (size_t i = 0; i < nd && r >= 0; i++) {
		char origin[PATH_MAX + 64];
		snprintf(origin, sizeof(origin), "%s (document %zu, line %u)", path, i + 1,
			 docs[i].line);
		if (docs[i].correlation) {
			struct rf_diag d = {.emit = print_diag};
			r = rf_sigma_corrset_parse(x->corrs, p + docs[i].off, docs[i].len, origin,
						   &d);
			if (r < 0 && r != -ENOMEM) {
				x->rejected++;
				r = docs[i].id[0] || docs[i].name[0]
					? rf_sigma_corrset_rule(x->corrs, docs[i].id, docs[i].name,
								"", UINT32_MAX)
					: 0;
			}
		} else {
			r = compile_rule(x, p + docs[i].off, docs[i].len, origin, path, &docs[i]);
		}
	}
	free(docs);
	return r;
}

int rf_cli_content_compile(int argc, char **argv)
{
	const char *out = NULL, *manifest_path = NULL, *ph_path = NULL;
	struct rf_sigma_placeholders *ph = NULL;
	bool strict = false;
	uint64_t seq = 1;
	struct paths inputs = {0}, files = {0};
	struct idset ids = {0};
	struct rf_manifest *m = NULL;
	struct rf_pack_builder *b = NULL;
	struct compile_ctx x = {.ids = &ids};
	size_t compiled = 0, rejected = 0;
	uint8_t *pack = NULL;
	size_t pack_len = 0;
	int rc = 2, r, c;
	static const struct option lo[] = {{"output", required_argument, NULL, 'o'},
					   {"manifest", required_argument, NULL, 'm'},
					   {"seq", required_argument, NULL, 'q'},
					   {"strict", no_argument, NULL, 's'},
					   {"placeholders", required_argument, NULL, 'p'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};

	optind = 0;
	while ((c = rf_getopt(argc, argv, "ho:", lo, "ringfence content compile")) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		case 'o':
			out = optarg;
			break;
		case 'm':
			manifest_path = optarg;
			break;
		case 'q':
			if (rf_parse_u64(optarg, &seq) < 0) {
				fprintf(stderr, "ringfence: --seq '%s' is not a number\n", optarg);
				goto usage_error;
			}
			break;
		case 's':
			strict = true;
			break;
		case 'p':
			ph_path = optarg;
			break;
		default:
			goto out; /* rf_getopt said which option and where to look */
		}
	}
	for (int i = optind; i < argc; i++) {
		char *s = strdup(argv[i]);
		if (!s || paths_add(&inputs, s) < 0) {
			free(s);
			fprintf(stderr, "ringfence: out of memory\n");
			goto out;
		}
	}
	if (!out || inputs.n == 0) {
		fprintf(stderr,
			"ringfence: compile needs at least one RULE.yml or DIR and -o PACK\n");
		goto usage_error;
	}
	if (manifest_path && load_manifest(manifest_path, &m) < 0)
		goto out;
	if (ph_path && load_placeholders(ph_path, &ph) < 0)
		goto out;

	for (size_t i = 0; i < inputs.n; i++) {
		struct stat st;

		if (stat(inputs.v[i], &st) < 0) {
			fprintf(stderr, "ringfence: %s: %s\n", inputs.v[i], strerror(errno));
			goto out;
		}
		if (S_ISDIR(st.st_mode)) {
			if (walk(inputs.v[i], 0, &files) < 0)
				goto out;
		} else {
			char *s = strdup(inputs.v[i]);
			if (!s || paths_add(&files, s) < 0) {
				free(s);
				fprintf(stderr, "ringfence: out of memory\n");
				goto out;
			}
		}
	}
	if (files.n == 0) {
		fprintf(stderr, "ringfence: no rule files (*.yml, *.yaml) found\n");
		goto out;
	}
	r = rf_pack_builder_new(&b);
	if (r < 0) {
		fprintf(stderr, "ringfence: %s\n", rf_strerror(r));
		goto out;
	}
	x.b = b;
	x.m = m;
	x.ph = ph;

	if (rf_sigma_corrset_new(&x.corrs) < 0) {
		fprintf(stderr, "ringfence: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < files.n; i++) {
		const char *path = files.v[i];
		uint8_t *buf = NULL;
		size_t len;

		r = rf_file_read(path, RF_SIGMA_FILE_MAX, &buf, &len);
		if (r == -E2BIG) {
			fprintf(stderr, "%s: rule file larger than %u bytes\n", path,
				RF_SIGMA_FILE_MAX);
			x.rejected++;
			continue;
		}
		if (r < 0) {
			fprintf(stderr, "ringfence: %s: %s\n", path, rf_strerror(r));
			goto out;
		}
		r = compile_file(&x, buf, len, path);
		free(buf);
		if (r < 0) {
			fprintf(stderr, "ringfence: out of memory\n");
			goto out;
		}
	}
	{
		struct rf_diag d = {.emit = print_diag};
		size_t added = 0, crej = 0;
		if (rf_sigma_corrset_finish(x.corrs, b, m, &added, &crej, &d) < 0) {
			fprintf(stderr, "ringfence: out of memory\n");
			goto out;
		}
		x.corr_compiled = added;
		x.rejected += crej;
	}
	compiled = x.compiled;
	rejected = x.rejected;

	if (x.corr_compiled)
		fprintf(stderr, "compiled %zu rules and %zu correlations, rejected %zu\n", compiled,
			x.corr_compiled, rejected);
	else
		fprintf(stderr, "compiled %zu rules, rejected %zu\n", compiled, rejected);
	if (strict && rejected) {
		fprintf(stderr, "ringfence: --strict: %zu rule%s rejected, no pack written\n",
			rejected, rejected == 1 ? "" : "s");
		rc = 1;
		goto out;
	}
	if (compiled == 0) { /* an empty pack would silently replace working content */
		fprintf(stderr, "ringfence: no rule compiled, no pack written\n");
		rc = 1;
		goto out;
	}
	r = rf_pack_builder_finish(b, seq, &pack, &pack_len);
	if (r < 0) {
		fprintf(stderr, "ringfence: cannot build the pack: %s\n", rf_strerror(r));
		goto out;
	}
	r = rf_file_write_atomic(out, pack, pack_len, 0644);
	if (r < 0) {
		fprintf(stderr, "ringfence: %s: %s\n", out, rf_strerror(r));
		goto out;
	}
	if (x.corr_compiled)
		fprintf(stderr, "wrote %s (%zu bytes, %zu rules, %zu correlations, seq %llu)\n", out,
			pack_len, compiled, x.corr_compiled, (unsigned long long)seq);
	else
		fprintf(stderr, "wrote %s (%zu bytes, %zu rules, seq %llu)\n", out, pack_len,
			compiled, (unsigned long long)seq);
	rc = rejected ? 1 : 0;
	goto out;

usage_error:
	fprintf(stderr, "\n");
	usage(stderr);
	rc = 2;
out:
	free(pack);
	rf_pack_builder_free(b);
	rf_sigma_corrset_free(x.corrs);
	rf_manifest_free(m);
	rf_sigma_placeholders_free(ph);
	idset_free(&ids);
	paths_free(&files);
	paths_free(&inputs);
	return rc;
}
