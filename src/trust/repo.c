/*
 * The TUF repository writer behind `ringfence repo` and the rollout server.
 *
 * A repository directory (layout in tuf.h) holds private keys in files (keys/<keyid>.pem,
 * PKCS#8 PEM, mode 0600 in a 0700 directory; key bytes pass through OpenSSL secure-heap BIOs
 * and are never printed), the newest signed targets in staged/, and the files clients fetch in
 * repository/. Invariants: every write is atomic and durable (rf_file_write_atomic); files are
 * written before the metadata that names them (target file, then N.targets.json, then
 * N.snapshot.json, then timestamp.json), so a client polling at any instant sees either the old
 * or the new release, never a timestamp naming a snapshot that is not there yet; versions only
 * grow; consistent snapshots are always on (versioned metadata and hash-prefixed targets are
 * never overwritten with other bytes). Every mutating call holds an exclusive flock on
 * DIR/.lock, so the CLI and the server can share a repository. Metadata is written indented
 * (not canonical): signatures are over the canonical form of `signed`, as the spec requires.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "trust/tuf-internal.h"

#define SPEC_VERSION "1.0.34"

static const char *const role_names[] = {"root", "timestamp", "snapshot", "targets"};
static const int64_t default_expiry[] = {365 * 86400, 86400, 7 * 86400, 90 * 86400};

const char *rf_tuf_role_name(enum rf_tuf_role role)
{
	return (unsigned)role < 4 ? role_names[role] : "?";
}

int rf_tuf_role_from_name(const char *name, enum rf_tuf_role *ret)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(name, role_names[i])) {
			*ret = (enum rf_tuf_role)i;
			return 0;
		}
	return -EINVAL;
}

struct repo {
	const char *dir;
	int lockfd;
	json_t *config;
	json_t *root; /* signed part of the newest root */
};

static int pathf(char *out, size_t outsz, const char *dir, const char *rel)
{
	int n = snprintf(out, outsz, "%s/%s", dir, rel);
	return n < 0 || (size_t)n >= outsz ? -E2BIG : 0;
}

/* DIR/keys/<keyid>.pem, or DIR/keys/retired/<keyid>.pem */
static int keypath(char *out, size_t outsz, const char *dir, bool retired, const char *keyid)
{
	int n = snprintf(out, outsz, "%s/keys/%s%s.pem", dir, retired ? "retired/" : "", keyid);
	return n < 0 || (size_t)n >= outsz ? -E2BIG : 0;
}

static const char *str_or(const json_t *v, const char *dflt)
{
	return json_is_string(v) ? json_string_value(v) : dflt;
}

static int load_json(const char *dir, const char *rel, json_t **ret, struct rf_diag *d)
{
	char path[4096];
	uint8_t *buf = NULL;
	size_t n = 0;
	int r = pathf(path, sizeof(path), dir, rel);

	if (r == 0)
		r = rf_file_read(path, RF_FILE_MAX, &buf, &n);
	if (r < 0)
		return rf_diag_report(d, r, "%s: %s", path, rf_strerror(r));
	r = rf__tuf_json_parse(buf, n, ret, d);
	free(buf);
	return r;
}

/* The "signed" object of a metadata file under repository/metadata/ (new reference). */
static int load_signed(const char *dir, const char *file, json_t **ret, struct rf_diag *d)
{
	char rel[512];
	json_t *doc = NULL, *s;
	int r;

	snprintf(rel, sizeof(rel), "repository/metadata/%s", file);
	if ((r = load_json(dir, rel, &doc, d)) < 0)
		return r;
	s = json_object_get(doc, "signed");
	if (!json_is_object(s)) {
		json_decref(doc);
		return rf_diag_report(d, -EBADMSG, "%s: no signed object", file);
	}
	*ret = json_incref(s);
	json_decref(doc);
	return 0;
}

static uint64_t version_of(const json_t *s)
{
	json_int_t v = json_integer_value(json_object_get(s, "version"));
	return v > 0 ? (uint64_t)v : 0;
}

static int64_t expiry_of(const struct repo *rp, enum rf_tuf_role role)
{
	json_int_t v = json_integer_value(
	    json_object_get(json_object_get(rp->config, "expiry"), role_names[role]));
	return v > 0 ? (int64_t)v : default_expiry[role];
}

static int set_header(json_t *s, const char *type, uint64_t version, int64_t expires)
{
	char t[21];

	rf__tuf_time_format(expires, t);
	if (json_object_set_new(s, "_type", json_string(type)) ||
	    json_object_set_new(s, "spec_version", json_string(SPEC_VERSION)) ||
	    json_object_set_new(s, "version", json_integer((json_int_t)version)) ||
	    json_object_set_new(s, "expires", json_string(t)))
		return -ENOMEM;
	return 0;
}

static int write_key(const char *dir, EVP_PKEY *pk, const char *keyid, struct rf_diag *d)
{
	char path[4096];
	BIO *bio = BIO_new(BIO_s_secmem());
	char *data;
	long n;
	int r = -ENOMEM;

	if (!bio)
		return -ENOMEM;
	if (PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0) {
		r = keypath(path, sizeof(path), dir, false, keyid);
		if (r == 0)
			r = rf_file_write_atomic(path, data, (size_t)n, 0600);
		if (r < 0)
			rf_diag_report(d, r, "cannot write key file for key %.16s: %s", keyid,
				       rf_strerror(r));
	}
	BIO_free(bio);
	return r;
}

static int read_key(const char *dir, const char *keyid, EVP_PKEY **ret, struct rf_diag *d)
{
	char path[4096];
	FILE *f;
	EVP_PKEY *pk;
	int r;

	for (const char *p = keyid; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return rf_diag_report(d, -EBADMSG, "key id is not lower-case hex");
	if ((r = keypath(path, sizeof(path), dir, false, keyid)) < 0)
		return r;
	f = fopen(path, "re");
	if (!f)
		return rf_diag_report(d, -errno, "private key %.16s...: %s", keyid,
				      rf_strerror(-errno));
	pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!pk)
		return rf_diag_report(d, -EBADMSG, "private key %.16s...: unreadable PEM", keyid);
	*ret = pk;
	return 0;
}

struct keyset {
	EVP_PKEY *k[64];
	size_t n;
};

static void keyset_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		EVP_PKEY_free(ks->k[i]);
	ks->n = 0;
}

/* Load the private keys of a role as the root lists them. */
static int role_keys(const struct repo *rp, const json_t *root, const char *role, struct keyset *ks,
		     struct rf_diag *d)
{
	const json_t *ids =
	    json_object_get(json_object_get(json_object_get(root, "roles"), role), "keyids");
	size_t i;
	json_t *id;

	if (!json_is_array(ids))
		return rf_diag_report(d, -EBADMSG, "root lists no keys for role %s", role);
	json_array_foreach(ids, i, id)
	{
		int r;
		if (!json_is_string(id) || ks->n >= RF_ARRAY_SIZE(ks->k))
			return rf_diag_report(d, -EBADMSG, "bad key list for role %s", role);
		if ((r = read_key(rp->dir, json_string_value(id), &ks->k[ks->n], d)) < 0)
			return r;
		ks->n++;
	}
	return 0;
}

/* Sign `signed` with every key and write the metadata to each of the files (relative paths). */
static int sign_write(const struct repo *rp, json_t *s, const struct keyset *ks,
		      const char *const *files, size_t nfiles, struct rf_diag *d)
{
	char *canon = NULL, *text = NULL;
	size_t canonlen;
	json_t *sigs = json_array(), *doc = NULL;
	int r;

	if (!sigs)
		return -ENOMEM;
	if ((r = rf__tuf_canonical(s, &canon, &canonlen, d)) < 0)
		goto out;
	for (size_t i = 0; i < ks->n; i++) {
		json_t *pub = NULL;
		char keyid[65], *sig = NULL;
		if ((r = rf__tuf_key_public_json(ks->k[i], &pub, keyid)) < 0)
			goto out;
		json_decref(pub);
		if ((r = rf__tuf_key_sign(ks->k[i], canon, canonlen, &sig)) < 0)
			goto out;
		r = json_array_append_new(sigs,
					  json_pack("{s:s, s:s}", "keyid", keyid, "sig", sig));
		free(sig);
		if (r) {
			r = -ENOMEM;
			goto out;
		}
	}
	doc = json_pack("{s:O, s:O}", "signatures", sigs, "signed", s);
	r = -ENOMEM;
	if (!doc || !(text = json_dumps(doc, JSON_INDENT(1))))
		goto out;
	for (size_t i = 0; i < nfiles; i++) {
		char path[4096];
		if ((r = pathf(path, sizeof(path), rp->dir, files[i])) < 0 ||
		    (r = rf_file_write_atomic(path, text, strlen(text), 0644)) < 0) {
			rf_diag_report(d, r, "cannot write %s: %s", files[i], rf_strerror(r));
			goto out;
		}
	}
	r = 0;
out:
	free(canon);
	free(text);
	json_decref(doc);
	json_decref(sigs);
	return r;
}

static void repo_close(struct repo *rp)
{
	json_decref(rp->config);
	json_decref(rp->root);
	if (rp->lockfd >= 0)
		close(rp->lockfd); /* releases the flock */
}

static int repo_open(const char *dir, struct repo *rp, struct rf_diag *d)
{
	char path[4096];
	int r;

	*rp = (struct repo){.dir = dir, .lockfd = -1};
	if ((r = pathf(path, sizeof(path), dir, ".lock")) < 0)
		return r;
	rp->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (rp->lockfd < 0)
		return rf_diag_report(d, -errno, "%s: not a repository (%s)", dir,
				      rf_strerror(-errno));
	if (flock(rp->lockfd, LOCK_EX) < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = load_json(dir, "config.json", &rp->config, d)) < 0 ||
	    (r = load_signed(dir, "root.json", &rp->root, d)) < 0)
		goto fail;
	return 0;
fail:
	repo_close(rp);
	return r;
}

static int write_file_rel(const char *dir, const char *rel, const void *p, size_t n, mode_t mode)
{
	char path[4096];
	int r = pathf(path, sizeof(path), dir, rel);
	return r < 0 ? r : rf_file_write_atomic(path, p, n, mode);
}

/* Snapshot (if snapshot_too) and timestamp, from the staged targets (publish) or as is. */
static int write_snapshot_timestamp(const struct repo *rp, int64_t now, bool snapshot_too,
				    struct rf_diag *d)
{
	json_t *ts_old = NULL, *snap = NULL, *ts = NULL;
	struct keyset sk = {0}, tk = {0};
	uint64_t sv, tv = 1;
	char file[64], *files[2], rel[128];
	uint8_t *buf = NULL;
	size_t n = 0;
	int r;

	if (load_signed(rp->dir, "timestamp.json", &ts_old, NULL) == 0)
		tv = version_of(ts_old) + 1;
	sv = ts_old ? version_of(json_object_get(json_object_get(ts_old, "meta"), "snapshot.json"))
		    : 0;
	if (snapshot_too) {
		json_t *targets = NULL;
		if ((r = load_signed(rp->dir, "targets.json", &targets, d)) < 0)
			goto out;
		sv++;
		snap = json_object();
		r = -ENOMEM;
		if (!snap ||
		    set_header(snap, "snapshot", sv, now + expiry_of(rp, RF_TUF_SNAPSHOT)) ||
		    json_object_set_new(snap, "meta",
					json_pack("{s:{s:I}}", "targets.json", "version",
						  (json_int_t)version_of(targets)))) {
			json_decref(targets);
			goto out;
		}
		json_decref(targets);
		if ((r = role_keys(rp, rp->root, "snapshot", &sk, d)) < 0)
			goto out;
		snprintf(file, sizeof(file), "repository/metadata/%llu.snapshot.json",
			 (unsigned long long)sv);
		files[0] = file;
		files[1] = "repository/metadata/snapshot.json";
		if ((r = sign_write(rp, snap, &sk, (const char *const *)files, 2, d)) < 0)
			goto out;
	}
	snprintf(rel, sizeof(rel), "repository/metadata/%llu.snapshot.json",
		 (unsigned long long)sv);
	{
		char path[4096];
		if ((r = pathf(path, sizeof(path), rp->dir, rel)) < 0 ||
		    (r = rf_file_read(path, RF_TUF_SNAPSHOT_MAX, &buf, &n)) < 0) {
			rf_diag_report(d, r, "%s: %s", rel, rf_strerror(r));
			goto out;
		}
	}
	{
		char hex[65];
		rf_sha256_hex(buf, n, hex);
		ts = json_object();
		r = -ENOMEM;
		if (!ts || set_header(ts, "timestamp", tv, now + expiry_of(rp, RF_TUF_TIMESTAMP)) ||
		    json_object_set_new(ts, "meta",
					json_pack("{s:{s:I, s:I, s:{s:s}}}", "snapshot.json",
						  "version", (json_int_t)sv, "length",
						  (json_int_t)n, "hashes", "sha256", hex)))
			goto out;
	}
	if ((r = role_keys(rp, rp->root, "timestamp", &tk, d)) < 0)
		goto out;
	files[0] = "repository/metadata/timestamp.json";
	r = sign_write(rp, ts, &tk, (const char *const *)files, 1, d);
out:
	free(buf);
	keyset_free(&sk);
	keyset_free(&tk);
	json_decref(ts_old);
	json_decref(snap);
	json_decref(ts);
	return r;
}

/* Copy the staged targets to repository/metadata/N.targets.json and targets.json. */
static int publish_targets(const struct repo *rp, struct rf_diag *d)
{
	char path[4096], rel[128];
	uint8_t *buf = NULL;
	size_t n = 0;
	json_t *doc = NULL;
	int r;

	if ((r = pathf(path, sizeof(path), rp->dir, "staged/targets.json")) < 0 ||
	    (r = rf_file_read(path, RF_TUF_TARGETS_MAX, &buf, &n)) < 0)
		return rf_diag_report(d, r, "staged targets: %s", rf_strerror(r));
	if ((r = rf__tuf_json_parse(buf, n, &doc, d)) == 0) {
		snprintf(rel, sizeof(rel), "repository/metadata/%llu.targets.json",
			 (unsigned long long)version_of(json_object_get(doc, "signed")));
		r = write_file_rel(rp->dir, rel, buf, n, 0644);
		if (r == 0)
			r = write_file_rel(rp->dir, "repository/metadata/targets.json", buf, n,
					   0644);
		if (r < 0)
			rf_diag_report(d, r, "cannot publish targets: %s", rf_strerror(r));
	}
	json_decref(doc);
	free(buf);
	return r;
}

int rf_tuf_repo_publish(const char *dir, int64_t now, struct rf_diag *d)
{
	struct repo rp;
	int r = repo_open(dir, &rp, d);

	if (r < 0)
		return r;
	r = publish_targets(&rp, d);
	if (r == 0)
		r = write_snapshot_timestamp(&rp, now, true, d);
	repo_close(&rp);
	return r;
}

static int new_keys(const struct repo *rp, enum rf_tuf_keytype type, unsigned count, json_t *keys,
		    json_t *ids, struct keyset *ks, struct rf_diag *d)
{
	for (unsigned i = 0; i < count; i++) {
		EVP_PKEY *pk = NULL;
		json_t *pub = NULL;
		char keyid[65];
		int r;

		if (ks->n >= RF_ARRAY_SIZE(ks->k))
			return -E2BIG;
		if ((r = rf__tuf_key_generate(type, &pk)) < 0)
			return rf_diag_report(d, r, "key generation failed");
		ks->k[ks->n++] = pk;
		if ((r = rf__tuf_key_public_json(pk, &pub, keyid)) < 0)
			return r;
		if (json_object_set_new(keys, keyid, pub) ||
		    json_array_append_new(ids, json_string(keyid)))
			return -ENOMEM;
		if ((r = write_key(rp->dir, pk, keyid, d)) < 0)
			return r;
	}
	return 0;
}

int rf_tuf_repo_init(const char *dir, const struct rf_tuf_repo_opts *o, int64_t now,
		     struct rf_diag *d)
{
	static const char *const subdirs[] = {"keys", "keys/retired", "staged",
					      "repository/metadata", "repository/targets"};
	unsigned th = o && o->threshold ? o->threshold : 1;
	struct repo rp = {.dir = dir, .lockfd = -1};
	struct keyset all = {0}, rootk = {0}, tk = {0};
	json_t *root = NULL, *keys = NULL, *roles = NULL, *targets = NULL, *exp = NULL;
	char path[4096];
	struct stat st;
	int r;

	if (!o || th > 16 || (unsigned)o->keytype > RF_TUF_KEY_RSA_PSS)
		return rf_diag_report(d, -EINVAL, "bad repository options (threshold 1..16)");
	if ((r = pathf(path, sizeof(path), dir, "config.json")) < 0)
		return r;
	if (stat(path, &st) == 0)
		return rf_diag_report(d, -EEXIST, "%s already holds a repository", dir);
	for (size_t i = 0; i < RF_ARRAY_SIZE(subdirs); i++) {
		if ((r = pathf(path, sizeof(path), dir, subdirs[i])) < 0 ||
		    (r = rf_mkdir_p(path, i < 2 ? 0700 : 0755)) < 0)
			return rf_diag_report(d, r, "cannot create %s: %s", path, rf_strerror(r));
	}
	exp = json_object();
	rp.config = json_pack("{s:s, s:I, s:o}", "keytype",
			      o->keytype == RF_TUF_KEY_ED25519	    ? "ed25519"
			      : o->keytype == RF_TUF_KEY_ECDSA_P256 ? "ecdsa"
								    : "rsa",
			      "threshold", (json_int_t)th, "expiry", exp);
	r = -ENOMEM;
	if (!exp || !rp.config)
		goto out;
	for (int i = 0; i < 4; i++)
		if (json_object_set_new(
			exp, role_names[i],
			json_integer(o->expiry[i] > 0 ? o->expiry[i] : default_expiry[i])))
			goto out;

	root = json_object();
	keys = json_object();
	roles = json_object();
	if (!root || !keys || !roles ||
	    set_header(root, "root", 1, now + expiry_of(&rp, RF_TUF_ROOT)))
		goto out;
	for (int i = 0; i < 4; i++) {
		json_t *ids = json_array();
		struct keyset *ks = i == 0 ? &rootk : i == 3 ? &tk : &all;
		if (!ids || json_object_set_new(roles, role_names[i],
						json_pack("{s:o, s:I}", "keyids", ids, "threshold",
							  (json_int_t)th)))
			goto out;
		if ((r = new_keys(&rp, o->keytype, th, keys, ids, ks, d)) < 0)
			goto out;
		r = -ENOMEM;
	}
	if (json_object_set_new(root, "consistent_snapshot", json_true()) ||
	    json_object_set(root, "keys", keys) || json_object_set(root, "roles", roles))
		goto out;
	{
		const char *files[] = {"repository/metadata/1.root.json",
				       "repository/metadata/root.json"};
		if ((r = sign_write(&rp, root, &rootk, files, 2, d)) < 0)
			goto out;
	}
	r = -ENOMEM;
	targets = json_object();
	if (!targets || set_header(targets, "targets", 1, now + expiry_of(&rp, RF_TUF_TARGETS)) ||
	    json_object_set_new(targets, "targets", json_object()))
		goto out;
	{
		const char *files[] = {"staged/targets.json"};
		if ((r = sign_write(&rp, targets, &tk, files, 1, d)) < 0)
			goto out;
	}
	{
		char *text = json_dumps(rp.config, JSON_INDENT(2));
		r = text ? write_file_rel(dir, "config.json", text, strlen(text), 0644) : -ENOMEM;
		free(text);
		if (r < 0)
			goto out;
	}
	rp.root = json_incref(root);
	if ((r = publish_targets(&rp, d)) == 0)
		r = write_snapshot_timestamp(&rp, now, true, d);
out:
	keyset_free(&all);
	keyset_free(&rootk);
	keyset_free(&tk);
	json_decref(root);
	json_decref(keys);
	json_decref(roles);
	json_decref(targets);
	json_decref(rp.config);
	json_decref(rp.root);
	return r;
}

static bool name_ok(const char *name)
{
	size_t n = strlen(name), comp = 0;

	if (n == 0 || n > RF_TUF_NAME_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = name[i];
		if (c == '/' || c == '\0') {
			if (comp == 0 || (comp == 1 && name[i - 1] == '.') ||
			    (comp == 2 && name[i - 1] == '.' && name[i - 2] == '.'))
				return false;
			comp = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
		comp++;
	}
	return true;
}

/* Re-sign the staged targets as a new version after edit() changed its "signed" object. */
static int stage_targets(const struct repo *rp, int64_t now, json_t *s, struct rf_diag *d)
{
	struct keyset tk = {0};
	const char *files[] = {"staged/targets.json"};
	char t[21];
	int r;

	rf__tuf_time_format(now + expiry_of(rp, RF_TUF_TARGETS), t);
	if (json_object_set_new(s, "version", json_integer((json_int_t)(version_of(s) + 1))) ||
	    json_object_set_new(s, "expires", json_string(t)))
		return -ENOMEM;
	if ((r = role_keys(rp, rp->root, "targets", &tk, d)) == 0)
		r = sign_write(rp, s, &tk, files, 1, d);
	keyset_free(&tk);
	return r;
}

static int load_staged(const struct repo *rp, json_t **ret, struct rf_diag *d)
{
	json_t *doc = NULL;
	int r = load_json(rp->dir, "staged/targets.json", &doc, d);

	if (r < 0)
		return r;
	*ret = json_incref(json_object_get(doc, "signed"));
	json_decref(doc);
	if (!json_is_object(*ret) || !json_is_object(json_object_get(*ret, "targets"))) {
		json_decref(*ret);
		return rf_diag_report(d, -EBADMSG, "staged targets are malformed");
	}
	return 0;
}

/*
 * Is staging (p, n, custom) as name a change of the staged targets? A target already there with
 * other bytes is refused unless RF_TUF_ADD_REPLACE: a release is identified by its target's name
 * and hash, so devices not yet on a live release would refuse the new bytes (-EEXIST). Returns 1
 * to stage, 0 when the same bytes and custom metadata are there already (nothing to do), or the
 * refusal.
 */
static int add_changes(const json_t *s, const char *name, const char *hex, size_t n,
		       const json_t *custom, unsigned flags, struct rf_diag *d)
{
	const json_t *old = json_object_get(json_object_get(s, "targets"), name);
	const char *old_hex = json_string_value(json_object_get(json_object_get(old, "hashes"),
								"sha256"));
	const json_t *old_len = json_object_get(old, "length");
	const json_t *old_custom = json_object_get(old, "custom");
	char q[80];

	if (!old)
		return 1;
	if (old_hex && !strcmp(old_hex, hex) && json_is_integer(old_len) &&
	    json_integer_value(old_len) == (json_int_t)n)
		return (old_custom == custom || (old_custom && custom && json_equal(old_custom, custom)))
			   ? 0
			   : 1;
	if (flags & RF_TUF_ADD_REPLACE)
		return 1;
	return rf_diag_report(
	    d, -EEXIST,
	    "target '%s' already exists with other bytes (sha256 %.16s..., new %.16s...): a release "
	    "is identified by its target name and hash, so devices not yet on a release of it would "
	    "refuse the new bytes. Publish the fixed file under a new name; replace it only if no "
	    "release uses it (--replace)",
	    rf_diag_quote(q, sizeof(q), name, strlen(name)), old_hex ? old_hex : "?", hex);
}

int rf_tuf_repo_add(const char *dir, const char *name, const uint8_t *p, size_t n,
		    const char *custom_json, int64_t now, struct rf_diag *d)
{
	return rf_tuf_repo_add_flags(dir, name, p, n, custom_json, 0, now, NULL, d);
}

int rf_tuf_repo_add_flags(const char *dir, const char *name, const uint8_t *p, size_t n,
			  const char *custom_json, unsigned flags, int64_t now, bool *ret_unchanged,
			  struct rf_diag *d)
{
	json_t *custom = NULL, *s = NULL, *entry = NULL;
	char hex[65], rel[4096], q[80];
	const char *slash;
	struct repo rp;
	int r;

	if (!name_ok(name))
		return rf_diag_report(
		    d, -EINVAL,
		    "target name '%s' must be '/'-separated [A-Za-z0-9._-] parts, "
		    "none '.' or '..'",
		    rf_diag_quote(q, sizeof(q), name, strlen(name)));
	if (custom_json) {
		if ((r = rf__tuf_json_parse((const uint8_t *)custom_json, strlen(custom_json),
					    &custom, d)) < 0)
			return -EINVAL;
		if (!json_is_object(custom)) {
			json_decref(custom);
			return rf_diag_report(d, -EINVAL, "custom metadata must be a JSON object");
		}
		char *canon = NULL;
		size_t cl;
		if ((r = rf__tuf_canonical(custom, &canon, &cl, d)) < 0) { /* e.g. reals */
			json_decref(custom);
			return -EINVAL;
		}
		free(canon);
	}
	if ((r = repo_open(dir, &rp, d)) < 0) {
		json_decref(custom);
		return r;
	}
	rf_sha256_hex(p, n, hex);
	slash = strrchr(name, '/');
	{
		int dl = slash ? (int)(slash - name + 1) : 0;
		char sub[4096];
		snprintf(sub, sizeof(sub), "%s/repository/targets/%.*s", dir, dl, name);
		if ((r = rf_mkdir_p(sub, 0755)) < 0)
			goto out;
		snprintf(rel, sizeof(rel), "repository/targets/%.*s%s.%s", dl, name, hex,
			 name + dl);
	}
	if ((r = load_staged(&rp, &s, d)) < 0)
		goto out;
	if ((r = add_changes(s, name, hex, n, custom, flags, d)) <= 0) {
		if (r == 0 && ret_unchanged)
			*ret_unchanged = true;
		goto out;
	}
	if ((r = write_file_rel(dir, rel, p, n, 0644)) < 0) {
		rf_diag_report(d, r, "cannot write target file: %s", rf_strerror(r));
		goto out;
	}
	r = -ENOMEM;
	entry = json_pack("{s:I, s:{s:s}}", "length", (json_int_t)n, "hashes", "sha256", hex);
	if (!entry || (custom && json_object_set(entry, "custom", custom)) ||
	    json_object_set(json_object_get(s, "targets"), name, entry))
		goto out;
	r = stage_targets(&rp, now, s, d);
	if (r == 0 && ret_unchanged)
		*ret_unchanged = false;
out:
	json_decref(entry);
	json_decref(s);
	json_decref(custom);
	repo_close(&rp);
	return r;
}

static int expiry_field(const json_t *s, int64_t *ret, struct rf_diag *d)
{
	if (rf__tuf_time_parse(str_or(json_object_get(s, "expires"), ""), ret) < 0)
		return rf_diag_report(d, -EBADMSG, "published metadata has a malformed expiry");
	return 0;
}

/* Root v+1 with the same keys and a new expiry, signed by the root keys. */
static int resign_root(struct repo *rp, int64_t now, struct rf_diag *d)
{
	struct keyset rk = {0};
	json_t *root = json_deep_copy(rp->root);
	char file[128];
	int r = -ENOMEM;

	if (!root ||
	    set_header(root, "root", version_of(rp->root) + 1, now + expiry_of(rp, RF_TUF_ROOT)))
		goto out;
	if ((r = role_keys(rp, rp->root, "root", &rk, d)) < 0)
		goto out;
	snprintf(file, sizeof(file), "repository/metadata/%llu.root.json",
		 (unsigned long long)version_of(root));
	{
		const char *files[] = {file, "repository/metadata/root.json"};
		if ((r = sign_write(rp, root, &rk, files, 2, d)) < 0)
			goto out;
	}
	json_decref(rp->root);
	rp->root = root;
	root = NULL;
out:
	keyset_free(&rk);
	json_decref(root);
	return r;
}

int rf_tuf_repo_refresh(const char *dir, int64_t now, int64_t within, bool *ret_changed,
			struct rf_diag *d)
{
	json_t *ts = NULL, *snap = NULL, *tg = NULL, *staged = NULL;
	struct repo rp;
	int64_t tex = 0, sex = 0, gex = 0, rex = 0, limit;
	bool changed = false, snapshot_due, targets_due;
	char file[64];
	int r = repo_open(dir, &rp, d);

	if (r < 0)
		return r;
	if (__builtin_add_overflow(now, within < 0 ? 0 : within, &limit))
		limit = INT64_MAX;
	if ((r = load_signed(dir, "timestamp.json", &ts, d)) < 0)
		goto out;
	snprintf(file, sizeof(file), "%llu.snapshot.json",
		 (unsigned long long)version_of(
		     json_object_get(json_object_get(ts, "meta"), "snapshot.json")));
	if ((r = load_signed(dir, file, &snap, d)) < 0 ||
	    (r = load_signed(dir, "targets.json", &tg, d)) < 0 ||
	    (r = load_staged(&rp, &staged, d)) < 0)
		goto out;
	if ((r = expiry_field(ts, &tex, d)) < 0 || (r = expiry_field(snap, &sex, d)) < 0 ||
	    (r = expiry_field(tg, &gex, d)) < 0 || (r = expiry_field(rp.root, &rex, d)) < 0)
		goto out;
	/* root: a new version with the same keys */
	if (rex <= limit) {
		if ((r = resign_root(&rp, now, d)) < 0)
			goto out;
		changed = true;
	}
	/* targets: the published content as a new version; a staged, unpublished version stays
	 * staged (unpublished), re-based above it so versions keep growing */
	targets_due = gex <= limit;
	if (targets_due) {
		uint64_t sv = version_of(staged);
		bool pending = sv != version_of(tg);
		json_t *pub = pending ? json_deep_copy(tg) : json_incref(staged);
		if (!pub ||
		    (pending && json_object_set_new(pub, "version", json_integer((json_int_t)sv))))
			r = -ENOMEM;
		else if ((r = stage_targets(&rp, now, pub, d)) == 0)
			r = publish_targets(&rp, d);
		json_decref(pub);
		if (r == 0 && pending) {
			if (json_object_set_new(staged, "version",
						json_integer((json_int_t)sv + 1)))
				r = -ENOMEM;
			else
				r = stage_targets(&rp, now, staged, d);
		}
		if (r < 0)
			goto out;
	}
	snapshot_due = sex <= limit || targets_due;
	if (tex <= limit || snapshot_due) {
		if ((r = write_snapshot_timestamp(&rp, now, snapshot_due, d)) < 0)
			goto out;
		changed = true;
	}
out:
	if (r == 0 && ret_changed)
		*ret_changed = changed;
	json_decref(ts);
	json_decref(snap);
	json_decref(tg);
	json_decref(staged);
	repo_close(&rp);
	return r;
}

static bool key_in_use(const json_t *roles, const char *keyid)
{
	const char *name;
	json_t *ro, *id;
	size_t i;

	json_object_foreach((json_t *)roles, name, ro)
	{
		json_array_foreach(json_object_get(ro, "keyids"), i,
				   id) if (!strcmp(str_or(id, ""), keyid)) return true;
	}
	return false;
}

int rf_tuf_repo_rotate(const char *dir, enum rf_tuf_role role, int64_t now, struct rf_diag *d)
{
	struct keyset oldroot = {0}, fresh = {0}, signers = {0};
	json_t *root = NULL, *oldids = NULL, *ids = NULL, *s = NULL;
	const char *rn = rf_tuf_role_name(role);
	char file[128];
	struct repo rp;
	unsigned count;
	size_t i;
	json_t *id;
	int r;

	if ((unsigned)role > RF_TUF_TARGETS)
		return -EINVAL;
	if ((r = repo_open(dir, &rp, d)) < 0)
		return r;
	if ((r = role_keys(&rp, rp.root, "root", &oldroot, d)) < 0)
		goto out;
	r = -ENOMEM;
	if (!(root = json_deep_copy(rp.root)) || !(ids = json_array()))
		goto out;
	json_t *roles = json_object_get(root, "roles"), *keys = json_object_get(root, "keys");
	json_t *ro = json_object_get(roles, rn);
	oldids = json_incref(json_object_get(ro, "keyids"));
	count = (unsigned)json_array_size(oldids);
	if (!json_is_object(keys) || !json_is_object(ro) || count == 0 || count > 16) {
		r = rf_diag_report(d, -EBADMSG, "root has no usable entry for role %s", rn);
		goto out;
	}
	{
		enum rf_tuf_keytype kt = RF_TUF_KEY_ED25519;
		const char *kts = str_or(json_object_get(rp.config, "keytype"), "");
		if (!strcmp(kts, "ecdsa"))
			kt = RF_TUF_KEY_ECDSA_P256;
		else if (!strcmp(kts, "rsa"))
			kt = RF_TUF_KEY_RSA_PSS;
		if ((r = new_keys(&rp, kt, count, keys, ids, &fresh, d)) < 0)
			goto out;
	}
	r = -ENOMEM;
	if (json_object_set(ro, "keyids", ids))
		goto out;
	json_array_foreach(oldids, i, id)
	{
		const char *k = json_string_value(id);
		char from[4096], to[4096];
		if (!k || key_in_use(roles, k))
			continue;
		json_object_del(keys, k);
		if (keypath(from, sizeof(from), dir, false, k) == 0 &&
		    keypath(to, sizeof(to), dir, true, k) == 0)
			(void)rename(from, to);
	}
	if (set_header(root, "root", version_of(rp.root) + 1, now + expiry_of(&rp, RF_TUF_ROOT)))
		goto out;
	/* signed by the old root keys and, for a root rotation, by the new ones too */
	for (i = 0; i < oldroot.n; i++) {
		signers.k[signers.n++] = oldroot.k[i];
		EVP_PKEY_up_ref(oldroot.k[i]);
	}
	for (i = 0; role == RF_TUF_ROOT && i < fresh.n && signers.n < RF_ARRAY_SIZE(signers.k);
	     i++) {
		signers.k[signers.n++] = fresh.k[i];
		EVP_PKEY_up_ref(fresh.k[i]);
	}
	snprintf(file, sizeof(file), "repository/metadata/%llu.root.json",
		 (unsigned long long)version_of(root));
	{
		const char *files[] = {file, "repository/metadata/root.json"};
		if ((r = sign_write(&rp, root, &signers, files, 2, d)) < 0)
			goto out;
	}
	json_decref(rp.root);
	rp.root = json_incref(root);
	if (role == RF_TUF_TARGETS) {
		if ((r = load_staged(&rp, &s, d)) < 0 || (r = stage_targets(&rp, now, s, d)) < 0 ||
		    (r = publish_targets(&rp, d)) < 0)
			goto out;
	}
	if (role != RF_TUF_ROOT)
		r = write_snapshot_timestamp(&rp, now, role != RF_TUF_TIMESTAMP, d);
out:
	keyset_free(&oldroot);
	keyset_free(&fresh);
	keyset_free(&signers);
	json_decref(root);
	json_decref(oldids);
	json_decref(ids);
	json_decref(s);
	repo_close(&rp);
	return r;
}
