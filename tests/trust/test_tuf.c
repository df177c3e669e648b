/*
 * The TUF client against the attacks the specification names, over real HTTP on 127.0.0.1.
 *
 * Each test builds a repository with the real writer (rf_tuf_repo_*), serves it with a real
 * HTTP server (httpd.c), lets a client reach a trusted state, then plays one attack by
 * rewriting files on the server - signing forged metadata with the repository's own key
 * files where the attack assumes a compromised or misused key - and checks both the error and
 * that the client's trusted metadata directory is byte for byte what it was before.
 */
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

/* ---- tests -------------------------------------------------------------------------------- */

static void test_download_custom_and_cache(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	struct rf_tuf_target *t = NULL;
	char path[1024];
	uint8_t *b = NULL;
	size_t n = 0;

	assert_int_equal(download(f, PACK_NAME, &t), 0);
	assert_int_equal(t->length, strlen(PACK));
	assert_string_equal(t->role, "targets");
	/* custom metadata carried verbatim (canonical form of the object given to repo add) */
	assert_string_equal(t->custom_json,
			    "{\"note\":\"\xc3\xa9\",\"ramp\":[{\"at\":0,\"pct\":5,\"ring\":0}]}");
	rf_tuf_target_free(t);
	snprintf(path, sizeof(path), "%s/packs%%2Fa.rfp", f->tdir);
	assert_int_equal(rf_file_read(path, 1024, &b, &n), 0);
	assert_memory_equal(b, PACK, strlen(PACK));
	free(b);
	/* cached copy is kept: only timestamp + root probe are fetched the second time */
	unsigned before = test_httpd_requests(f->h);
	assert_int_equal(download(f, PACK_NAME, NULL), 0);
	assert_int_equal(test_httpd_requests(f->h) - before, 2);
	assert_int_equal(download(f, "packs/none", NULL), -ENOENT);
	fx_free(f);
}

static void test_arbitrary_software(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	char st[65], hex[65], name[512], path[1024];
	struct stat sb;

	assert_int_equal(refresh(f), 0);
	dir_state(f->md, st);
	rf_sha256_hex(PACK, strlen(PACK), hex);
	snprintf(name, sizeof(name), "%s/repository/targets/packs", f->repo);
	snprintf(path, sizeof(path), "%s.a.rfp", hex);
	put_file(name, path, "rules pack v1: EVIL!EVIL!", strlen(PACK)); /* same length */
	assert_int_equal(download(f, PACK_NAME, NULL), -EBADMSG);
	snprintf(path, sizeof(path), "%s/packs%%2Fa.rfp", f->tdir);
	assert_int_not_equal(stat(path, &sb), 0);
	assert_state(f, st);
	fx_free(f);
}

static void test_rollback(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	struct rf_diag d = {0};
	char st[65];

	copy_file(f->meta, "timestamp.json", "old-timestamp");
	assert_int_equal(rf_tuf_repo_publish(f->repo, rf_now_wall(), &d), 0);
	assert_int_equal(refresh(f), 0);
	dir_state(f->md, st);
	/* a replayed older timestamp */
	copy_file(f->meta, "timestamp.json", "legit");
	copy_file(f->meta, "old-timestamp", "timestamp.json");
	assert_int_equal(refresh(f), -ESTALE);
	assert_state(f, st);
	/* a newer timestamp naming an older snapshot (compromised timestamp key) */
	write_timestamp(f, 1, 100, 0);
	assert_int_equal(refresh(f), -ESTALE);
	assert_state(f, st);
	copy_file(f->meta, "legit", "timestamp.json");
	/* a newer snapshot naming an older targets version (compromised snapshot key) */
	assert_int_equal(rf_tuf_repo_publish(f->repo, rf_now_wall(), &d), 0);
	assert_int_equal(refresh(f), 0);
	file_state(f, "snapshot.json", st);
	write_snapshot(f, json_pack("{s:{s:I}}", "targets.json", "version", (json_int_t)1));
	assert_int_equal(refresh(f), -ESTALE);
	assert_file(f, "snapshot.json", st); /* (the valid new timestamp is kept) */
	fx_free(f);
}

static void test_freeze(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	char st[65];

	assert_int_equal(refresh(f), 0);
	dir_state(f->md, st);
	/* the server keeps serving the same, now expired, timestamp */
	assert_int_equal(refresh_at(f, rf_now_wall() + 2 * 86400), -ETIMEDOUT);
	assert_state(f, st);
	/* ... and an expired root stops everything */
	assert_int_equal(refresh_at(f, rf_now_wall() + 400 * 86400), -ETIMEDOUT);
	assert_state(f, st);
	fx_free(f);
}

static void test_endless_data(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	char st[65], hex[65], dir[512], name[128];
	char big[4096];

	assert_int_equal(refresh(f), 0);
	dir_state(f->md, st);
	test_httpd_set_endless(f->h, "/metadata/timestamp.json");
	assert_int_equal(refresh(f), -E2BIG);
	assert_state(f, st);
	test_httpd_set_endless(f->h, "/metadata/2.root.json");
	assert_int_equal(refresh(f), -E2BIG);
	assert_state(f, st);
	test_httpd_set_endless(f->h, NULL);
	/* a target longer than its signed length */
	memset(big, 'x', sizeof(big));
	memcpy(big, PACK, strlen(PACK));
	rf_sha256_hex(PACK, strlen(PACK), hex);
	snprintf(dir, sizeof(dir), "%s/repository/targets/packs", f->repo);
	snprintf(name, sizeof(name), "%s.a.rfp", hex);
	put_file(dir, name, big, sizeof(big));
	assert_int_equal(download(f, PACK_NAME, NULL), -E2BIG);
	assert_state(f, st);
	fx_free(f);
}

static void test_mix_and_match(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	struct rf_diag d = {.emit = diag_print};
	char st[65];

	assert_int_equal(refresh(f), 0);
	assert_int_equal(rf_tuf_repo_add(f->repo, "packs/b.rfp", (const uint8_t *)"b", 1, NULL,
					 rf_now_wall(), &d),
			 0);
	assert_int_equal(rf_tuf_repo_publish(f->repo, rf_now_wall(), &d), 0);
	/* targets v3 is current; serve the validly signed targets v2 under its name */
	file_state(f, "targets.json", st);
	copy_file(f->meta, "3.targets.json", "saved");
	copy_file(f->meta, "2.targets.json", "3.targets.json");
	assert_int_equal(refresh(f), -ESTALE);
	assert_file(f, "targets.json", st);
	copy_file(f->meta, "saved", "3.targets.json");
	/* serve the validly signed snapshot v3 as v4: the timestamp's hash catches it */
	assert_int_equal(rf_tuf_repo_publish(f->repo, rf_now_wall(), &d), 0);
	file_state(f, "snapshot.json", st);
	copy_file(f->meta, "4.snapshot.json", "saved");
	copy_file(f->meta, "3.snapshot.json", "4.snapshot.json");
	assert_int_equal(refresh(f), -EBADMSG);
	assert_file(f, "snapshot.json", st);
	copy_file(f->meta, "saved", "4.snapshot.json");
	assert_int_equal(download(f, "packs/b.rfp", NULL), 0);
	fx_free(f);
}

static void test_fast_forward(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	struct rf_diag d = {0};
	json_t *ts;
	char path[1024];
	uint8_t *b = NULL;
	size_t n = 0;
	struct rf__tuf_md *md = NULL;

	assert_int_equal(refresh(f), 0);
	/* an attacker with the timestamp key serves version 1000 */
	copy_file(f->meta, "timestamp.json", "legit");
	write_timestamp(f, 2, 1000, 0);
	assert_int_equal(refresh(f), 0);
	copy_file(f->meta, "legit", "timestamp.json");
	/* the repository's next timestamp is now "older": clients are stuck */
	assert_int_equal(rf_tuf_repo_publish(f->repo, rf_now_wall(), &d), 0);
	assert_int_equal(refresh(f), -ESTALE);
	/* recovery: rotate the timestamp key; the client drops its timestamp and snapshot */
	assert_int_equal(rf_tuf_repo_rotate(f->repo, RF_TUF_TIMESTAMP, rf_now_wall(), &d), 0);
	assert_int_equal(refresh(f), 0);
	snprintf(path, sizeof(path), "%s/timestamp.json", f->md);
	assert_int_equal(rf_file_read(path, RF_FILE_MAX, &b, &n), 0);
	assert_int_equal(rf__tuf_md_parse(b, n, RF__TUF_TIMESTAMP, &md, NULL), 0);
	assert_true(md->version < 1000);
	rf__tuf_md_free(md);
	free(b);
	ts = read_signed(f, "timestamp.json");
	assert_true(version(ts) < 1000);
	json_decref(ts);
	assert_int_equal(download(f, PACK_NAME, NULL), 0);
	fx_free(f);
}

/* The spec's wording: snapshot metadata whose version numbers jump far ahead. */
static void test_fast_forward_snapshot(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	struct rf_diag d = {.emit = diag_print};

	assert_int_equal(refresh(f), 0);
	/* attacker with the snapshot and timestamp keys: targets.json "version 1000" */
	copy_file(f->meta, "timestamp.json", "legit");
	write_snapshot(f, json_pack("{s:{s:I}}", "targets.json", "version", (json_int_t)1000));
	assert_int_not_equal(refresh(f), 0); /* 1000.targets.json does not exist... */
	copy_file(f->meta, "legit", "timestamp.json");
	/* ... but the snapshot was valid and is trusted: every real release now looks like a
	 * targets rollback (two publishes: the first only reaches the attacker's version) */
	assert_int_equal(rf_tuf_repo_publish(f->repo, rf_now_wall(), &d), 0);
	assert_int_equal(rf_tuf_repo_publish(f->repo, rf_now_wall(), &d), 0);
	assert_int_equal(refresh(f), -ESTALE);
	/* recovery: rotate the snapshot key; the client drops its snapshot and timestamp */
	assert_int_equal(rf_tuf_repo_rotate(f->repo, RF_TUF_SNAPSHOT, rf_now_wall(), &d), 0);
	assert_int_equal(download(f, PACK_NAME, NULL), 0);
	fx_free(f);
}

static void test_threshold(void **state)
{
	struct fx *f = fx_new(2, RF_TUF_KEY_ECDSA_P256);
	struct keys ks;
	json_t *ts;
	char st[65];

	assert_int_equal(refresh(f), 0);
	dir_state(f->md, st);
	ts = read_signed(f, "timestamp.json");
	bump(ts);
	role_keys(f, "timestamp", &ks);
	assert_int_equal(ks.n, 2);
	/* one of two */
	write_md(f, "timestamp.json", ts, &ks, SIGN_ONLY_FIRST);
	assert_int_equal(refresh(f), -EKEYREJECTED);
	assert_state(f, st);
	/* one of two, signature listed twice: malformed, never counted twice */
	write_md(f, "timestamp.json", ts, &ks, SIGN_ONLY_FIRST | SIGN_DUP_FIRST);
	assert_int_equal(refresh(f), -EBADMSG);
	assert_state(f, st);
	/* both, plus unknown key ids and junk signatures: still reaches the threshold */
	write_md(f, "timestamp.json", ts, &ks, SIGN_GARBAGE_EXTRA);
	assert_int_equal(refresh(f), 0);
	keys_free(&ks);
	json_decref(ts);
	fx_free(f);
}

static void test_duplicate_key_ids(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	struct keys rk, tk, two;
	json_t *root, *keys, *ts;
	char st[65];

	assert_int_equal(refresh(f), 0);
	dir_state(f->md, st);
	/* root v2 lists the one timestamp key under a second key id and asks for 2 */
	role_keys(f, "root", &rk);
	role_keys(f, "timestamp", &tk);
	root = read_signed(f, "root.json");
	keys = json_object_get(root, "keys");
	json_object_set(keys, "aaaa", json_object_get(keys, tk.id[0]));
	json_object_set_new(json_object_get(json_object_get(root, "roles"), "timestamp"), "keyids",
			    json_pack("[s,s]", tk.id[0], "aaaa"));
	json_object_set_new(json_object_get(json_object_get(root, "roles"), "timestamp"),
			    "threshold", json_integer(2));
	new_root(f, root, &rk);
	/* the timestamp signed "by both" (the same key under two ids) */
	ts = read_signed(f, "timestamp.json");
	bump(ts);
	two.n = 2;
	two.k[0] = tk.k[0];
	two.k[1] = tk.k[0];
	snprintf(two.id[0], 65, "%s", tk.id[0]);
	snprintf(two.id[1], 65, "aaaa");
	write_md(f, "timestamp.json", ts, &two, 0);
	assert_int_equal(refresh(f), -EKEYREJECTED);
	/* root v2 itself was valid and is now trusted; timestamp and snapshot were dropped
	 * because the timestamp role changed - nothing unverified was stored */
	{
		char path[1024];
		struct stat sb;
		snprintf(path, sizeof(path), "%s/timestamp.json", f->md);
		assert_int_not_equal(stat(path, &sb), 0);
	}
	keys_free(&rk);
	keys_free(&tk);
	json_decref(root);
	json_decref(ts);
	/* a root whose role lists one key id twice is malformed */
	role_keys(f, "root", &rk);
	root = read_signed(f, "2.root.json");
	dir_state(f->md, st);
	json_object_set_new(json_object_get(json_object_get(root, "roles"), "targets"), "keyids",
			    json_pack("[s,s]", rk.id[0], rk.id[0]));
	new_root(f, root, &rk);
	assert_int_equal(refresh(f), -EBADMSG);
	assert_state(f, st);
	keys_free(&rk);
	json_decref(root);
	fx_free(f);
}

static void test_wrong_key_type_or_scheme(void **state)
{
	static const char *const variants[][2] = {
	    {"ecdsa", "ecdsa-sha2-nistp256"}, /* ed25519 hex under an ecdsa label */
	    {"ed25519", "rsassa-pss-sha256"}, /* scheme does not match type */
	    {"rsa", "rsassa-pss-sha256"},
	    {"ed25519", "ed25519-ph"},
	};
	for (size_t v = 0; v < RF_ARRAY_SIZE(variants); v++) {
		struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
		struct keys rk, tk;
		json_t *root, *key, *ts;
		char st[65];

		assert_int_equal(refresh(f), 0);
		role_keys(f, "root", &rk);
		role_keys(f, "timestamp", &tk);
		root = read_signed(f, "root.json");
		key = json_object_get(json_object_get(root, "keys"), tk.id[0]);
		json_object_set_new(key, "keytype", json_string(variants[v][0]));
		json_object_set_new(key, "scheme", json_string(variants[v][1]));
		new_root(f, root, &rk);
		assert_int_equal(refresh(f), -EKEYREJECTED); /* timestamp no longer verifies */
		dir_state(f->md, st);
		ts = read_signed(f, "timestamp.json");
		bump(ts);
		write_md(f, "timestamp.json", ts, &tk, 0);
		assert_int_equal(refresh(f), -EKEYREJECTED);
		assert_state(f, st);
		keys_free(&rk);
		keys_free(&tk);
		json_decref(root);
		json_decref(ts);
		fx_free(f);
	}
	/* a PEM where ed25519 wants hex: unusable */
	struct fx *f = fx_new(1, RF_TUF_KEY_ECDSA_P256);
	struct keys rk, tk;
	json_t *root, *key;
	assert_int_equal(refresh(f), 0);
	role_keys(f, "root", &rk);
	role_keys(f, "timestamp", &tk);
	root = read_signed(f, "root.json");
	key = json_object_get(json_object_get(root, "keys"), tk.id[0]);
	json_object_set_new(key, "keytype", json_string("ed25519"));
	json_object_set_new(key, "scheme", json_string("ed25519"));
	new_root(f, root, &rk);
	assert_int_equal(refresh(f), -EKEYREJECTED);
	keys_free(&rk);
	keys_free(&tk);
	json_decref(root);
	fx_free(f);
}

static void test_delegations(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	EVP_PKEY *dk = NULL;
	json_t *pub = NULL, *dt[2];
	char keyid[65];
	struct rf_tuf_target *t = NULL;

	assert_int_equal(rf__tuf_key_generate(RF_TUF_KEY_ED25519, &dk), 0);
	assert_int_equal(rf__tuf_key_public_json(dk, &pub, keyid), 0);
	json_decref(pub);
	dt[0] = json_pack("{s:o}", "packs/x.rfp", target_entry(f, "packs/x.rfp", "from a"));
	dt[1] = json_pack("{s:o,s:o,s:o}", "packs/x.rfp", target_entry(f, "packs/x.rfp", "from b"),
			  "packs/y.rfp", target_entry(f, "packs/y.rfp", "y from b"),
			  "other/evil.rfp", target_entry(f, "other/evil.rfp", "evil"));
	delegate(
	    f, dk,
	    json_pack("[o,o]", drole("a", false, json_pack("[s]", "packs/*.rfp"), NULL, keyid),
		      drole("b", false, json_pack("[s,s]", "packs/*", "other/x*"), NULL, keyid)),
	    dt, 2);
	EVP_PKEY_free(dk);
	/* pre-order: 'a' is searched before 'b' */
	assert_int_equal(download(f, "packs/x.rfp", &t), 0);
	assert_string_equal(t->role, "a");
	rf_tuf_target_free(t);
	assert_int_equal(download(f, "packs/y.rfp", &t), 0);
	assert_string_equal(t->role, "b");
	rf_tuf_target_free(t);
	/* extraneous: 'b' lists a target outside the paths delegated to it */
	assert_int_equal(download(f, "other/evil.rfp", NULL), -ENOENT);
	/* '*' does not cross '/' */
	assert_int_equal(download(f, "packs/sub/x.rfp", NULL), -ENOENT);
	fx_free(f);
}

static void test_delegation_terminating_and_prefixes(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	EVP_PKEY *dk = NULL;
	json_t *pub = NULL, *dt[3];
	char keyid[65], hex[65], pfx[5];
	struct rf_tuf_target *t = NULL;

	assert_int_equal(rf__tuf_key_generate(RF_TUF_KEY_ED25519, &dk), 0);
	assert_int_equal(rf__tuf_key_public_json(dk, &pub, keyid), 0);
	json_decref(pub);
	rf_sha256_hex("hashed/h.rfp", strlen("hashed/h.rfp"), hex);
	snprintf(pfx, sizeof(pfx), "%.4s", hex);
	dt[0] = json_pack("{}"); /* terminating, covers packs/z*, lists nothing */
	dt[1] = json_pack("{s:o}", "packs/z.rfp", target_entry(f, "packs/z.rfp", "z after term"));
	dt[2] = json_pack("{s:o}", "hashed/h.rfp", target_entry(f, "hashed/h.rfp", "hashed"));
	delegate(f, dk,
		 json_pack("[o,o,o]",
			   drole("term", true, json_pack("[s]", "packs/z*"), NULL, keyid),
			   drole("late", false, json_pack("[s]", "packs/*"), NULL, keyid),
			   drole("byhash", false, NULL, json_pack("[s]", pfx), keyid)),
		 dt, 3);
	assert_int_equal(download(f, "packs/z.rfp", NULL), -ENOENT); /* 'late' never searched */
	assert_int_equal(download(f, "hashed/h.rfp", &t), 0);
	assert_string_equal(t->role, "byhash");
	rf_tuf_target_free(t);
	EVP_PKEY_free(dk);
	fx_free(f);
}

/* TAP 15 succinct hash bins: 3 bits -> bins bin-0 .. bin-7, terminating. */
static void test_succinct_delegation(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	EVP_PKEY *dk = NULL;
	json_t *pub = NULL, *dt[2];
	char keyid[65], right[16], wrong[16];
	const char *names[2] = {right, wrong};
	struct rf_tuf_target *t = NULL;

	assert_int_equal(rf__tuf_key_generate(RF_TUF_KEY_ED25519, &dk), 0);
	assert_int_equal(rf__tuf_key_public_json(dk, &pub, keyid), 0);
	json_decref(pub);
	/* the bin of a path: the top 3 bits of its sha256 */
	uint8_t hs[32], hw[32];
	unsigned bs, bw, bx = 0;
	rf_sha256("packs/s.rfp", strlen("packs/s.rfp"), hs);
	rf_sha256("packs/w.rfp", strlen("packs/w.rfp"), hw);
	bs = hs[0] >> 5;
	bw = hw[0] >> 5;
	while (bx == bs || bx == bw)
		bx++;
	snprintf(right, sizeof(right), "bin-%x", bs);
	snprintf(wrong, sizeof(wrong), "bin-%x", bx);
	dt[0] = json_pack("{s:o}", "packs/s.rfp", target_entry(f, "packs/s.rfp", "in its bin"));
	/* a bin that lists a target hashing to another bin is not trusted for it */
	dt[1] = json_pack("{s:o}", "packs/w.rfp", target_entry(f, "packs/w.rfp", "wrong bin"));
	delegate_ex(f, dk, "succinct_roles",
		    json_pack("{s:[s],s:i,s:i,s:s}", "keyids", keyid, "threshold", 1, "bit_length",
			      3, "name_prefix", "bin"),
		    names, dt, 2);
	assert_int_equal(download(f, "packs/s.rfp", &t), 0);
	assert_string_equal(t->role, right);
	rf_tuf_target_free(t);
	assert_int_equal(download(f, "packs/w.rfp", NULL), -ENOENT);
	EVP_PKEY_free(dk);
	fx_free(f);
}

static void test_role_name_traversal(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	EVP_PKEY *dk = NULL;
	json_t *pub = NULL, *dt[2];
	char keyid[65], path[1024];
	struct rf_tuf_target *t = NULL;
	struct stat sb;

	assert_int_equal(rf__tuf_key_generate(RF_TUF_KEY_ED25519, &dk), 0);
	assert_int_equal(rf__tuf_key_public_json(dk, &pub, keyid), 0);
	json_decref(pub);
	dt[0] = json_pack("{s:o}", "a/one", target_entry(f, "a/one", "one"));
	dt[1] = json_pack("{s:o}", "b/two", target_entry(f, "b/two", "two"));
	delegate(f, dk,
		 json_pack("[o,o]",
			   drole("../../escape", false, json_pack("[s]", "a/*"), NULL, keyid),
			   drole("..", false, json_pack("[s]", "b/*"), NULL, keyid)),
		 dt, 2);
	assert_int_equal(download(f, "a/one", &t), 0);
	assert_string_equal(t->role, "../../escape");
	rf_tuf_target_free(t);
	assert_int_equal(download(f, "b/two", NULL), 0);
	snprintf(path, sizeof(path), "%s/..%%2F..%%2Fescape.json", f->md);
	assert_int_equal(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/%%2E%%2E.json", f->md);
	assert_int_equal(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/../escape.json", f->base);
	assert_int_not_equal(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/escape.json", f->base);
	assert_int_not_equal(stat(path, &sb), 0);
	EVP_PKEY_free(dk);
	fx_free(f);
}

static void test_malformed_every_level(void **state)
{
	static const char *const junk[] = {"{not json", "{\"signed\":1,\"signatures\":[]}", "[]",
					   "{\"signed\":{\"_type\":\"x\"},\"signatures\":[]}"};
	for (size_t j = 0; j < RF_ARRAY_SIZE(junk); j++) {
		struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
		char st[65];
		json_t *snapm;

		assert_int_equal(refresh(f), 0);
		dir_state(f->md, st);
		/* root */
		put_file(f->meta, "2.root.json", junk[j], strlen(junk[j]));
		assert_int_equal(refresh(f), -EBADMSG);
		assert_state(f, st);
		{
			char p[1024];
			snprintf(p, sizeof(p), "%s/2.root.json", f->meta);
			unlink(p);
		}
		/* timestamp */
		copy_file(f->meta, "timestamp.json", "saved");
		put_file(f->meta, "timestamp.json", junk[j], strlen(junk[j]));
		assert_int_equal(refresh(f), -EBADMSG);
		assert_state(f, st);
		copy_file(f->meta, "saved", "timestamp.json");
		/* targets (the snapshot gives only a version) */
		file_state(f, "targets.json", st);
		put_file(f->meta, "9.targets.json", junk[j], strlen(junk[j]));
		snapm = json_pack("{s:{s:I}}", "targets.json", "version", (json_int_t)9);
		write_snapshot(f, snapm); /* snapshot v3, timestamp v3 */
		assert_int_equal(refresh(f), -EBADMSG);
		assert_file(f, "targets.json", st);
		/* snapshot (the timestamp names its exact length and hash) */
		file_state(f, "snapshot.json", st);
		put_file(f->meta, "4.snapshot.json", junk[j], strlen(junk[j]));
		write_timestamp(f, 4, 0, 0);
		assert_int_equal(refresh(f), -EBADMSG);
		assert_file(f, "snapshot.json", st);
		fx_free(f);
	}
	/* a delegated role */
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	EVP_PKEY *dk = NULL;
	json_t *pub = NULL, *dt[1];
	char keyid[65], st[65];
	assert_int_equal(rf__tuf_key_generate(RF_TUF_KEY_ED25519, &dk), 0);
	assert_int_equal(rf__tuf_key_public_json(dk, &pub, keyid), 0);
	json_decref(pub);
	dt[0] = json_pack("{}");
	delegate(f, dk, json_pack("[o]", drole("d", false, json_pack("[s]", "d/*"), NULL, keyid)),
		 dt, 1);
	assert_int_equal(refresh(f), 0);
	dir_state(f->md, st);
	put_file(f->meta, "1.d.json", junk[0], strlen(junk[0]));
	assert_int_equal(download(f, "d/x", NULL), -EBADMSG);
	assert_state(f, st);
	EVP_PKEY_free(dk);
	fx_free(f);
}

static void test_root_rotation(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	struct rf_diag d = {.emit = diag_print};
	struct keys rk, tk;
	json_t *root;
	char st[65], path[1024];
	uint8_t *b = NULL;
	size_t n = 0;
	struct rf__tuf_md *md = NULL;

	assert_int_equal(refresh(f), 0);
	assert_int_equal(rf_tuf_repo_rotate(f->repo, RF_TUF_ROOT, rf_now_wall(), &d), 0);
	assert_int_equal(rf_tuf_repo_rotate(f->repo, RF_TUF_ROOT, rf_now_wall(), &d), 0);
	assert_int_equal(rf_tuf_repo_rotate(f->repo, RF_TUF_TARGETS, rf_now_wall(), &d), 0);
	assert_int_equal(rf_tuf_repo_rotate(f->repo, RF_TUF_SNAPSHOT, rf_now_wall(), &d), 0);
	assert_int_equal(download(f, PACK_NAME, NULL), 0);
	snprintf(path, sizeof(path), "%s/root.json", f->md);
	assert_int_equal(rf_file_read(path, RF_FILE_MAX, &b, &n), 0);
	assert_int_equal(rf__tuf_md_parse(b, n, RF__TUF_ROOT, &md, NULL), 0);
	assert_int_equal(md->version, 5);
	rf__tuf_md_free(md);
	free(b);
	dir_state(f->md, st);
	/* a root v6 signed only by keys the trusted root does not know */
	role_keys(f, "targets", &tk); /* any key that is not a root key */
	root = read_signed(f, "root.json");
	json_object_set_new(json_object_get(json_object_get(root, "roles"), "root"), "keyids",
			    json_pack("[s]", tk.id[0]));
	new_root(f, root, &tk);
	assert_int_equal(refresh(f), -EKEYREJECTED);
	assert_state(f, st);
	json_decref(root);
	/* a root signed correctly but with the wrong version inside */
	role_keys(f, "root", &rk);
	root = read_signed(f, "root.json");
	json_object_set_new(root, "version", json_integer(7));
	write_md(f, "6.root.json", root, &rk, 0);
	assert_int_equal(refresh(f), -ESTALE);
	assert_state(f, st);
	keys_free(&rk);
	keys_free(&tk);
	json_decref(root);
	fx_free(f);
}

static void test_rsa_and_refresh(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_RSA_PSS);
	struct rf_diag d = {.emit = diag_print};
	bool changed = true;

	assert_int_equal(download(f, PACK_NAME, NULL), 0);
	assert_int_equal(rf_tuf_repo_refresh(f->repo, rf_now_wall(), 3600, &changed, &d), 0);
	assert_false(changed);
	/* 36 hours on, the 1-day timestamp has expired: a client refuses it */
	assert_int_equal(refresh_at(f, rf_now_wall() + 36 * 3600), -ETIMEDOUT);
	/* the server's refresh at +30h (12h window) re-signs it; the client accepts that */
	assert_int_equal(
	    rf_tuf_repo_refresh(f->repo, rf_now_wall() + 30 * 3600, 12 * 3600, &changed, &d), 0);
	assert_true(changed);
	assert_int_equal(refresh_at(f, rf_now_wall() + 36 * 3600), 0);
	fx_free(f);
}

/* consistent_snapshot false: unversioned snapshot/targets names, target paths as they are. */
static void test_no_consistent_snapshot(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	struct keys rk;
	json_t *root;
	char hex[65], dir[512], from[128], path[1024];
	struct rf_tuf_target *t = NULL;

	role_keys(f, "root", &rk);
	root = read_signed(f, "root.json");
	json_object_set_new(root, "consistent_snapshot", json_false());
	new_root(f, root, &rk);
	/* only the unversioned files remain: a client asking for N.snapshot.json would fail */
	for (int v = 1; v <= 2; v++) {
		snprintf(path, sizeof(path), "%s/%d.snapshot.json", f->meta, v);
		assert_int_equal(unlink(path), 0);
		snprintf(path, sizeof(path), "%s/%d.targets.json", f->meta, v);
		assert_int_equal(unlink(path), 0);
	}
	rf_sha256_hex(PACK, strlen(PACK), hex);
	snprintf(dir, sizeof(dir), "%s/repository/targets/packs", f->repo);
	snprintf(from, sizeof(from), "%s.a.rfp", hex);
	copy_file(dir, from, "a.rfp");
	snprintf(path, sizeof(path), "%s/%s", dir, from);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(download(f, PACK_NAME, &t), 0);
	assert_int_equal(t->length, strlen(PACK));
	rf_tuf_target_free(t);
	keys_free(&rk);
	json_decref(root);
	fx_free(f);
}

/* A server that only calls rf_tuf_repo_refresh keeps every role fresh for over a year. */
static void test_refresh_long_horizon(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	struct rf_diag d = {.emit = diag_print};
	const int64_t day = 86400, t0 = rf_now_wall();
	bool changed = false;
	char path[1024];
	uint8_t *b = NULL;
	size_t n = 0;
	struct rf__tuf_md *md = NULL;

	assert_int_equal(refresh(f), 0);
	/* day 89: targets (90 days) are due within 2 days; a client on day 90.5 needs that */
	assert_int_equal(rf_tuf_repo_refresh(f->repo, t0 + 89 * day, 2 * day, &changed, &d), 0);
	assert_true(changed);
	assert_int_equal(
	    rf_tuf_repo_refresh(f->repo, t0 + 90 * day + 5 * 3600, day / 2, &changed, &d), 0);
	assert_true(changed);
	assert_int_equal(refresh_at(f, t0 + 90 * day + 12 * 3600), 0);
	/* day 364: the root (365 days) is due: root v2, same keys */
	assert_int_equal(rf_tuf_repo_refresh(f->repo, t0 + 364 * day, 2 * day, &changed, &d), 0);
	assert_int_equal(rf_tuf_repo_refresh(f->repo, t0 + 365 * day + 3600, day / 2, &changed, &d),
			 0);
	assert_int_equal(refresh_at(f, t0 + 365 * day + 4 * 3600), 0);
	snprintf(path, sizeof(path), "%s/root.json", f->md);
	assert_int_equal(rf_file_read(path, RF_FILE_MAX, &b, &n), 0);
	assert_int_equal(rf__tuf_md_parse(b, n, RF__TUF_ROOT, &md, NULL), 0);
	assert_int_equal(md->version, 2);
	rf__tuf_md_free(md);
	free(b);
	/* nothing due: nothing written */
	assert_int_equal(rf_tuf_repo_refresh(f->repo, t0 + 365 * day + 3600, 3600, &changed, &d),
			 0);
	assert_false(changed);
	/* a staged, unpublished release is not published by a refresh */
	assert_int_equal(rf_tuf_repo_add(f->repo, "packs/unpublished", (const uint8_t *)"u", 1,
					 NULL, t0 + 365 * day + 3600, &d),
			 0);
	assert_int_equal(rf_tuf_repo_refresh(f->repo, t0 + 460 * day, 2 * day, &changed, &d), 0);
	assert_int_equal(refresh_at(f, t0 + 460 * day + 3600), 0);
	assert_int_equal(download(f, "packs/unpublished", NULL), -ENOENT); /* clock: real now */
	assert_int_equal(download(f, PACK_NAME, NULL), 0);
	/* ... and publishing it later still works (its version was re-based above) */
	assert_int_equal(rf_tuf_repo_publish(f->repo, t0 + 460 * day + 7200, &d), 0);
	assert_int_equal(download(f, "packs/unpublished", NULL), 0);
	fx_free(f);
}

static void test_glob_and_quote(void **state)
{
	char q[64];

	assert_true(rf__tuf_glob("packs/*.rfp", "packs/a.rfp"));
	assert_false(rf__tuf_glob("packs/*.rfp", "packs/a/b.rfp"));
	assert_false(rf__tuf_glob("*", "a/b"));
	assert_true(rf__tuf_glob("*/*", "a/b"));
	assert_true(rf__tuf_glob("a?c", "abc"));
	assert_false(rf__tuf_glob("a?c", "a/c"));
	assert_true(rf__tuf_glob("[ab]x[!0-9]", "bxz"));
	assert_false(rf__tuf_glob("[ab]x[!0-9]", "bx5"));
	assert_true(rf__tuf_glob("a[", "a["));
	assert_true(rf__tuf_glob("**", ""));
	assert_true(rf__tuf_glob("*a*b*c", "xxaxxbxxc"));
	assert_int_equal(rf_tuf_quote_name("../a b/é", q, sizeof(q)), 0);
	assert_string_equal(q, "..%2Fa%20b%2F%C3%A9");
	assert_int_equal(rf_tuf_quote_name("..", q, sizeof(q)), 0);
	assert_string_equal(q, "%2E%2E");
	assert_int_equal(rf_tuf_quote_name("a.b-c_d~", q, sizeof(q)), 0);
	assert_string_equal(q, "a.b-c_d~");
	assert_int_equal(rf_tuf_quote_name("////////////////////////", q, sizeof(q)), -E2BIG);
}

static void test_time(void **state)
{
	int64_t t;
	char s[21];

	assert_int_equal(rf__tuf_time_parse("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(rf__tuf_time_parse("2030-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 1893456000);
	rf__tuf_time_format(t, s);
	assert_string_equal(s, "2030-01-01T00:00:00Z");
	assert_int_equal(rf__tuf_time_parse("2024-02-29T23:59:59Z", &t), 0);
	assert_int_equal(rf__tuf_time_parse("2023-02-29T00:00:00Z", &t), -EBADMSG);
	assert_int_equal(rf__tuf_time_parse("2030-01-01T00:00:00.000Z", &t), -EBADMSG);
	assert_int_equal(rf__tuf_time_parse("2030-01-01 00:00:00Z", &t), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_glob_and_quote),
	    cmocka_unit_test(test_time),
	    cmocka_unit_test(test_download_custom_and_cache),
	    cmocka_unit_test(test_arbitrary_software),
	    cmocka_unit_test(test_rollback),
	    cmocka_unit_test(test_freeze),
	    cmocka_unit_test(test_endless_data),
	    cmocka_unit_test(test_mix_and_match),
	    cmocka_unit_test(test_fast_forward),
	    cmocka_unit_test(test_fast_forward_snapshot),
	    cmocka_unit_test(test_threshold),
	    cmocka_unit_test(test_duplicate_key_ids),
	    cmocka_unit_test(test_wrong_key_type_or_scheme),
	    cmocka_unit_test(test_delegations),
	    cmocka_unit_test(test_delegation_terminating_and_prefixes),
	    cmocka_unit_test(test_succinct_delegation),
	    cmocka_unit_test(test_role_name_traversal),
	    cmocka_unit_test(test_malformed_every_level),
	    cmocka_unit_test(test_root_rotation),
	    cmocka_unit_test(test_rsa_and_refresh),
	    cmocka_unit_test(test_refresh_long_horizon),
	    cmocka_unit_test(test_no_consistent_snapshot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
