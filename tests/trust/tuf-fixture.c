/* The TUF tests' fixture (see tuf-fixture.h). */
#include <dirent.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "tests/trust/httpd.h"
#include "tests/trust/tuf-fixture.h"

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void diag_print(void *ud, int code, const char *msg)
{
	(void)ud;
	fprintf(stderr, "  diag: %s (%s)\n", msg, rf_strerror(code));
}

struct fx *fx_new(unsigned threshold, enum rf_tuf_keytype kt)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct rf_tuf_repo_opts o = {.keytype = kt, .threshold = threshold};
	struct rf_diag d = {.emit = diag_print};
	uint8_t *root = NULL;
	size_t n = 0;
	char path[512];

	assert_non_null(f);
	snprintf(f->base, sizeof(f->base), "%s/rf-tuf-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(f->base));
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->base);
	snprintf(f->md, sizeof(f->md), "%s/md", f->base);
	snprintf(f->tdir, sizeof(f->tdir), "%s/targets", f->base);
	snprintf(f->meta, sizeof(f->meta), "%s/repository/metadata", f->repo);
	assert_int_equal(rf_tuf_repo_init(f->repo, &o, rf_now_wall(), &d), 0);
	assert_int_equal(rf_tuf_repo_add(f->repo, PACK_NAME, (const uint8_t *)PACK, strlen(PACK),
					 CUSTOM, rf_now_wall(), &d),
			 0);
	assert_int_equal(rf_tuf_repo_publish(f->repo, rf_now_wall(), &d), 0);
	snprintf(path, sizeof(path), "%s/repository", f->repo);
	assert_int_equal(test_httpd_start(path, &f->h, &f->port), 0);
	snprintf(f->murl, sizeof(f->murl), "http://127.0.0.1:%u/metadata/", f->port);
	snprintf(f->turl, sizeof(f->turl), "http://127.0.0.1:%u/targets/", f->port);
	snprintf(path, sizeof(path), "%s/1.root.json", f->meta);
	assert_int_equal(rf_file_read(path, RF_TUF_ROOT_MAX, &root, &n), 0);
	assert_int_equal(rf_tuf_client_init(f->md, root, n, &d), 0);
	free(root);
	return f;
}

void fx_free(struct fx *f)
{
	test_httpd_stop(f->h);
	nftw(f->base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
}

int refresh_at(struct fx *f, int64_t now)
{
	struct rf_tuf_client_opts o = {
	    .metadata_dir = f->md, .metadata_url = f->murl, .target_base_url = f->turl, .now = now};
	struct rf_diag d = {.emit = diag_print};
	struct rf_tuf_client *c = NULL;
	int r = rf_tuf_client_new(&o, &c, &d);

	if (r == 0)
		r = rf_tuf_client_refresh(c, &d);
	rf_tuf_client_free(c);
	return r;
}

int refresh(struct fx *f)
{
	return refresh_at(f, 0);
}

/* refresh, look up and download name; *ret (optional) the target record */
int download(struct fx *f, const char *name, struct rf_tuf_target **ret)
{
	struct rf_tuf_client_opts o = {
	    .metadata_dir = f->md, .metadata_url = f->murl, .target_base_url = f->turl};
	struct rf_diag d = {.emit = diag_print};
	struct rf_tuf_client *c = NULL;
	struct rf_tuf_target *t = NULL;
	int r = rf_tuf_client_new(&o, &c, &d);

	if (r == 0)
		r = rf_tuf_client_refresh(c, &d);
	if (r == 0)
		r = rf_tuf_client_get_target(c, name, &t, &d);
	if (r == 0)
		r = rf_tuf_client_download_target(c, t, f->tdir, NULL, &d);
	if (r == 0 && ret)
		*ret = t;
	else
		rf_tuf_target_free(t);
	rf_tuf_client_free(c);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sha256 over the sorted (name, bytes) of every file in dir: the trusted state */
void dir_state(const char *dir, char out[65])
{
	char *names[256], *acc = NULL;
	size_t n = 0, alen = 0;
	DIR *dp = opendir(dir);
	struct dirent *e;

	assert_non_null(dp);
	while ((e = readdir(dp)) && n < 256)
		if (e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..")))
			names[n++] = strdup(e->d_name);
	closedir(dp);
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char p[1024];
		uint8_t *b = NULL;
		size_t bl = 0;
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		assert_int_equal(rf_file_read(p, RF_FILE_MAX, &b, &bl), 0);
		acc = realloc(acc, alen + strlen(names[i]) + 1 + bl);
		memcpy(acc + alen, names[i], strlen(names[i]) + 1);
		alen += strlen(names[i]) + 1;
		memcpy(acc + alen, b, bl);
		alen += bl;
		free(b);
		free(names[i]);
	}
	rf_sha256_hex(acc ? acc : "", alen, out);
	free(acc);
}

void put_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[2048];
	assert_true(snprintf(path, sizeof(path), "%s/%s", dir, name) < (int)sizeof(path));
	assert_int_equal(rf_file_write_atomic(path, p, n, 0644), 0);
}

void copy_file(const char *dir, const char *from, const char *to)
{
	char path[1024];
	uint8_t *b = NULL;
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, from);
	assert_int_equal(rf_file_read(path, RF_FILE_MAX, &b, &n), 0);
	put_file(dir, to, b, n);
	free(b);
}

/* The "signed" object of a published metadata file. */
json_t *read_signed(struct fx *f, const char *file)
{
	char path[1024];
	uint8_t *b = NULL;
	size_t n = 0;
	json_t *doc = NULL, *s;
	snprintf(path, sizeof(path), "%s/%s", f->meta, file);
	assert_int_equal(rf_file_read(path, RF_FILE_MAX, &b, &n), 0);
	assert_int_equal(rf__tuf_json_parse(b, n, &doc, NULL), 0);
	free(b);
	s = json_incref(json_object_get(doc, "signed"));
	json_decref(doc);
	return s;
}

uint64_t version(json_t *s)
{
	return (uint64_t)json_integer_value(json_object_get(s, "version"));
}

void keys_free(struct keys *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		EVP_PKEY_free(ks->k[i]);
	ks->n = 0;
}

/* The private keys of a top-level role, as the newest root lists them. */
void role_keys(struct fx *f, const char *role, struct keys *ks)
{
	json_t *root = read_signed(f, "root.json"), *id;
	size_t i;

	ks->n = 0;
	json_array_foreach(
	    json_object_get(json_object_get(json_object_get(root, "roles"), role), "keyids"), i, id)
	{
		char path[1024];
		FILE *fp;
		snprintf(path, sizeof(path), "%s/keys/%s.pem", f->repo, json_string_value(id));
		fp = fopen(path, "r");
		assert_non_null(fp);
		ks->k[ks->n] = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
		fclose(fp);
		assert_non_null(ks->k[ks->n]);
		snprintf(ks->id[ks->n], 65, "%s", json_string_value(id));
		ks->n++;
	}
	json_decref(root);
}

/* Sign `signed` (borrowed) with ks and write it to DIR/repository/metadata/file. */
void write_md(struct fx *f, const char *file, json_t *s, const struct keys *ks, int flags)
{
	json_t *sigs = json_array(), *doc;
	char *canon = NULL, *text;
	size_t cl;

	assert_int_equal(rf__tuf_canonical(s, &canon, &cl, NULL), 0);
	for (size_t i = 0; i < ks->n; i++) {
		char *sig = NULL;
		assert_int_equal(rf__tuf_key_sign(ks->k[i], canon, cl, &sig), 0);
		json_array_append_new(sigs, json_pack("{s:s,s:s}", "keyid", ks->id[i], "sig", sig));
		if (i == 0 && (flags & SIGN_DUP_FIRST))
			json_array_append_new(
			    sigs, json_pack("{s:s,s:s}", "keyid", ks->id[i], "sig", sig));
		free(sig);
		if (flags & SIGN_ONLY_FIRST)
			break;
	}
	if (flags & SIGN_GARBAGE_EXTRA) {
		json_array_append_new(sigs, json_pack("{s:s,s:s}", "keyid", "00ff", "sig", "abcd"));
		json_array_append_new(sigs, json_pack("{s:s,s:s}", "keyid", "nothex", "sig", "zz"));
	}
	doc = json_pack("{s:o,s:O}", "signatures", sigs, "signed", s);
	text = json_dumps(doc, JSON_INDENT(2));
	put_file(f->meta, file, text, strlen(text));
	free(text);
	free(canon);
	json_decref(doc);
}

void bump(json_t *s)
{
	json_object_set_new(s, "version", json_integer((json_int_t)version(s) + 1));
}

/* A new timestamp (version current+1, or `v` if nonzero) naming snapshot version sv. */
void write_timestamp(struct fx *f, uint64_t sv, uint64_t v, int flags)
{
	json_t *ts = read_signed(f, "timestamp.json");
	char file[64], path[1024], hex[65];
	uint8_t *b = NULL;
	size_t n = 0;
	struct keys ks;

	snprintf(file, sizeof(file), "%llu.snapshot.json", (unsigned long long)sv);
	snprintf(path, sizeof(path), "%s/%s", f->meta, file);
	assert_int_equal(rf_file_read(path, RF_FILE_MAX, &b, &n), 0);
	rf_sha256_hex(b, n, hex);
	free(b);
	json_object_set_new(ts, "meta",
			    json_pack("{s:{s:I,s:I,s:{s:s}}}", "snapshot.json", "version",
				      (json_int_t)sv, "length", (json_int_t)n, "hashes", "sha256",
				      hex));
	if (v)
		json_object_set_new(ts, "version", json_integer((json_int_t)v));
	else
		bump(ts);
	role_keys(f, "timestamp", &ks);
	write_md(f, "timestamp.json", ts, &ks, flags);
	keys_free(&ks);
	json_decref(ts);
}

/* A new snapshot (current+1) whose meta is `meta` (stolen), and a timestamp naming it. */
void write_snapshot(struct fx *f, json_t *meta)
{
	json_t *ts = read_signed(f, "timestamp.json");
	uint64_t sv = (uint64_t)json_integer_value(json_object_get(
	    json_object_get(json_object_get(ts, "meta"), "snapshot.json"), "version"));
	char file[64];
	json_t *snap;
	struct keys ks;

	snprintf(file, sizeof(file), "%llu.snapshot.json", (unsigned long long)sv);
	snap = read_signed(f, file);
	json_object_set_new(snap, "meta", meta);
	bump(snap);
	snprintf(file, sizeof(file), "%llu.snapshot.json", (unsigned long long)sv + 1);
	role_keys(f, "snapshot", &ks);
	write_md(f, file, snap, &ks, 0);
	keys_free(&ks);
	json_decref(snap);
	json_decref(ts);
	write_timestamp(f, sv + 1, 0, 0);
}

void new_root(struct fx *f, json_t *root, const struct keys *signers)
{
	char file[64];
	bump(root);
	snprintf(file, sizeof(file), "%llu.root.json", (unsigned long long)version(root));
	write_md(f, file, root, signers, 0);
}

/* sha256 of one trusted file ("-" when absent) */
void file_state(struct fx *f, const char *name, char out[65])
{
	char path[1024];
	uint8_t *b = NULL;
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/%s", f->md, name);
	if (rf_file_read(path, RF_FILE_MAX, &b, &n) < 0) {
		snprintf(out, 65, "-");
		return;
	}
	rf_sha256_hex(b, n, out);
	free(b);
}

void assert_file(struct fx *f, const char *name, const char *before)
{
	char after[65];
	file_state(f, name, after);
	assert_string_equal(before, after);
}

void assert_state(struct fx *f, const char *before)
{
	char after[65];
	dir_state(f->md, after);
	assert_string_equal(before, after);
}

/* Targets v(N+1) with delegations to `roles` (stolen), each delegated role's metadata written
 * as 1.<quoted>.json signed by dk and holding `dtargets[i]` (stolen), and a snapshot listing
 * them all. */
void delegate_ex(struct fx *f, EVP_PKEY *dk, const char *field, json_t *value,
		 const char *const *names, json_t **dtargets, size_t n)
{
	json_t *tg = read_signed(f, "targets.json"), *pub = NULL, *meta;
	struct keys ks = {.n = 1}, tkeys;
	char keyid[65], file[1024], q[512];

	assert_int_equal(rf__tuf_key_public_json(dk, &pub, keyid), 0);
	json_object_set_new(tg, "delegations",
			    json_pack("{s:{s:o},s:o}", "keys", keyid, pub, field, value));
	bump(tg);
	role_keys(f, "targets", &tkeys);
	snprintf(file, sizeof(file), "%llu.targets.json", (unsigned long long)version(tg));
	write_md(f, file, tg, &tkeys, 0);
	meta = json_pack("{s:{s:I}}", "targets.json", "version", (json_int_t)version(tg));
	ks.k[0] = dk;
	snprintf(ks.id[0], 65, "%s", keyid);
	for (size_t i = 0; i < n; i++) {
		const char *name = names[i];
		json_t *dt = json_pack("{s:s,s:s,s:I,s:s,s:o}", "_type", "targets", "spec_version",
				       "1.0.34", "version", (json_int_t)1, "expires",
				       "2099-01-01T00:00:00Z", "targets", dtargets[i]);
		char jn[1024];
		assert_int_equal(rf_tuf_quote_name(name, q, sizeof(q)), 0);
		snprintf(file, sizeof(file), "1.%s.json", q);
		write_md(f, file, dt, &ks, 0);
		json_decref(dt);
		snprintf(jn, sizeof(jn), "%s.json", name);
		json_object_set_new(meta, jn, json_pack("{s:I}", "version", (json_int_t)1));
	}
	keys_free(&tkeys);
	json_decref(tg);
	write_snapshot(f, meta);
}

void delegate(struct fx *f, EVP_PKEY *dk, json_t *roles, json_t **dtargets, size_t n)
{
	const char *names[16];
	json_t *keep = json_incref(roles); /* names point into roles */

	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++)
		names[i] = json_string_value(json_object_get(json_array_get(roles, i), "name"));
	delegate_ex(f, dk, "roles", roles, names, dtargets, n);
	json_decref(keep);
}

/* A target entry for bytes p, with its file placed on the server. */
json_t *target_entry(struct fx *f, const char *name, const char *p)
{
	char hex[65], dir[1024], file[512];
	const char *slash = strrchr(name, '/');
	rf_sha256_hex(p, strlen(p), hex);
	snprintf(dir, sizeof(dir), "%s/repository/targets/%.*s", f->repo,
		 slash ? (int)(slash - name) : 0, name);
	assert_int_equal(rf_mkdir_p(dir, 0755), 0);
	snprintf(file, sizeof(file), "%s.%s", hex, slash ? slash + 1 : name);
	put_file(dir, file, p, strlen(p));
	return json_pack("{s:I,s:{s:s}}", "length", (json_int_t)strlen(p), "hashes", "sha256", hex);
}

/* A delegated role entry: exactly one of paths / prefixes (stolen) is given. */
json_t *drole(const char *name, bool term, json_t *paths, json_t *prefixes, const char *keyid)
{
	return json_pack("{s:s,s:[s],s:i,s:b,s:o}", "name", name, "keyids", keyid, "threshold", 1,
			 "terminating", term, paths ? "paths" : "path_hash_prefixes",
			 paths ? paths : prefixes);
}
