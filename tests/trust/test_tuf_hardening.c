/*
 * The TUF client's hardening (issue 16), over real HTTP on 127.0.0.1 with the fixture of
 * tuf-fixture.h: recovery from a fast-forwarded targets version after a snapshot key rotation
 * (spec 5.3.11), a delegated role reached from two delegators verified against each, per-role
 * size limits that a length in the referring metadata can lower but never raise, and the
 * snapshot rollback check in one merge (its work counted, never timed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "tests/trust/tuf-fixture.h"

/* The version of one trusted file of the client. */
static uint64_t trusted_version(struct fx *f, const char *file, enum rf__tuf_type t)
{
	char path[1024];
	uint8_t *b = NULL;
	size_t n = 0;
	struct rf__tuf_md *md = NULL;
	uint64_t v;

	snprintf(path, sizeof(path), "%s/%s", f->md, file);
	assert_int_equal(rf_file_read(path, RF_FILE_MAX, &b, &n), 0);
	assert_int_equal(rf__tuf_md_parse(b, n, t, &md, NULL), 0);
	v = md->version;
	rf__tuf_md_free(md);
	free(b);
	return v;
}

static EVP_PKEY *new_key(char keyid[65], json_t **ret_pub)
{
	EVP_PKEY *k = NULL;
	json_t *pub = NULL;

	assert_int_equal(rf__tuf_key_generate(RF_TUF_KEY_ED25519, &k), 0);
	assert_int_equal(rf__tuf_key_public_json(k, &pub, keyid), 0);
	if (ret_pub)
		*ret_pub = pub;
	else
		json_decref(pub);
	return k;
}

/*
 * TUF conformance test_targets_fast_forward_recovery: the repository had targets v100 and a
 * delegated role; it rotates the snapshot key (new root) and publishes targets v1 and a
 * snapshot that no longer lists the delegated role. 5.3.11 deletes the trusted timestamp and
 * snapshot, the only rollback references for targets (5.5.5), so the client takes v1.
 */
static void test_targets_fast_forward_recovery(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	struct rf_diag d = {.emit = diag_print};
	char keyid[65];
	EVP_PKEY *dk = new_key(keyid, NULL);
	json_t *dt[1], *tg;
	struct keys tk;

	dt[0] = json_pack("{s:o}", "rel/x", target_entry(f, "rel/x", "in release"));
	delegate(f, dk,
		 json_pack("[o]", drole("release", false, json_pack("[s]", "rel/*"), NULL, keyid)),
		 dt, 1); /* targets v3 */
	EVP_PKEY_free(dk);
	/* fast-forward: targets v100 (validly signed), named by the snapshot */
	role_keys(f, "targets", &tk);
	tg = read_signed(f, "3.targets.json");
	json_object_set_new(tg, "version", json_integer(100));
	write_md(f, "100.targets.json", tg, &tk, 0);
	json_decref(tg);
	write_snapshot(f, json_pack("{s:{s:i},s:{s:i}}", "targets.json", "version", 100,
				    "release.json", "version", 1));
	assert_int_equal(download(f, "rel/x", NULL), 0);
	assert_int_equal(trusted_version(f, "targets.json", RF__TUF_TARGETS), 100);

	/* targets v1 without a key rotation: the trusted snapshot calls it a rollback */
	tg = read_signed(f, "2.targets.json"); /* the repository's release: PACK_NAME */
	json_object_set_new(tg, "version", json_integer(1));
	write_md(f, "1.targets.json", tg, &tk, 0);
	json_decref(tg);
	write_snapshot(f, json_pack("{s:{s:i}}", "targets.json", "version", 1));
	assert_int_equal(refresh(f), -ESTALE);
	assert_int_equal(trusted_version(f, "targets.json", RF__TUF_TARGETS), 100);

	/* recovery: rotate the snapshot key (root v2), then targets v1 and a snapshot by the new
	 * key that no longer lists 'release' */
	assert_int_equal(rf_tuf_repo_rotate(f->repo, RF_TUF_SNAPSHOT, rf_now_wall(), &d), 0);
	write_snapshot(f, json_pack("{s:{s:i}}", "targets.json", "version", 1));
	assert_int_equal(refresh(f), 0);
	assert_int_equal(trusted_version(f, "root.json", RF__TUF_ROOT), 2);
	assert_int_equal(trusted_version(f, "targets.json", RF__TUF_TARGETS), 1);
	assert_int_equal(download(f, PACK_NAME, NULL), 0);
	assert_int_equal(download(f, "rel/x", NULL), -ENOENT); /* no longer delegated */
	/* after the recovery the ordinary rollback protection holds again: v2, then v1 refused */
	tg = read_signed(f, "1.targets.json");
	json_object_set_new(tg, "version", json_integer(2));
	write_md(f, "2.targets.json", tg, &tk, 0);
	write_snapshot(f, json_pack("{s:{s:i}}", "targets.json", "version", 2));
	assert_int_equal(refresh(f), 0);
	write_snapshot(f, json_pack("{s:{s:i}}", "targets.json", "version", 1));
	assert_int_equal(refresh(f), -ESTALE);
	json_decref(tg);
	keys_free(&tk);
	fx_free(f);
}

/* Delegated targets metadata v`v` for role name, signed by every key of signers, holding
 * targets (stolen) and delegations (stolen, may be NULL), as v.<quoted name>.json. */
static void write_role(struct fx *f, const char *name, uint64_t v, EVP_PKEY *const *signers,
		       size_t nsigners, json_t *targets, json_t *delegations)
{
	json_t *s = json_pack("{s:s,s:s,s:I,s:s,s:o}", "_type", "targets", "spec_version", "1.0.34",
			      "version", (json_int_t)v, "expires", "2099-01-01T00:00:00Z",
			      "targets", targets);
	struct keys ks = {.n = nsigners};
	char q[512], file[600];

	if (delegations)
		json_object_set_new(s, "delegations", delegations);
	for (size_t i = 0; i < nsigners; i++) {
		json_t *pub = NULL;
		ks.k[i] = signers[i];
		assert_int_equal(rf__tuf_key_public_json(signers[i], &pub, ks.id[i]), 0);
		json_decref(pub);
	}
	assert_int_equal(rf_tuf_quote_name(name, q, sizeof(q)), 0);
	snprintf(file, sizeof(file), "%llu.%s.json", (unsigned long long)v, q);
	write_md(f, file, s, &ks, 0);
	json_decref(s);
}

/* One delegation of `name` covering `glob` to the single key k. */
static json_t *delegation_to(EVP_PKEY *k, const char *name, const char *glob)
{
	char keyid[65];
	json_t *pub = NULL;

	assert_int_equal(rf__tuf_key_public_json(k, &pub, keyid), 0);
	return json_pack("{s:{s:o},s:[o]}", "keys", keyid, pub, "roles",
			 drole(name, false, json_pack("[s]", glob), NULL, keyid));
}

/* release.json v`v`, signed by signers, listing a/ok and b/evil; a snapshot naming it with
 * targets v3, A v1 and B v1. */
static void publish_release(struct fx *f, uint64_t v, EVP_PKEY *const *signers, size_t n)
{
	write_role(f, "release", v, signers, n,
		   json_pack("{s:o,s:o}", "a/ok", target_entry(f, "a/ok", "for A"), "b/evil",
			     target_entry(f, "b/evil", "only kb may allow this")),
		   NULL);
	write_snapshot(f, json_pack("{s:{s:i},s:{s:i},s:{s:i},s:{s:I}}", "targets.json", "version",
				    3, "A.json", "version", 1, "B.json", "version", 1,
				    "release.json", "version", (json_int_t)v));
}

/*
 * Two parents, A (paths a/x) and B (paths b/x), each delegate a role named "release", A to
 * key ka and B to key kb. release.json is signed by ka only and lists a/ok and b/evil. Following A
 * it is trusted for a/ok; following B (in the same client, after A loaded it) it must be verified
 * against kb and refused: b/evil is never downloaded.
 */
static void test_cached_role_is_verified_against_current_delegator(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	struct rf_diag d = {.emit = diag_print};
	char k0id[65], path[1024];
	EVP_PKEY *k0 = new_key(k0id, NULL), *ka = new_key(path, NULL), *kb = new_key(path, NULL);
	EVP_PKEY *both[2] = {ka, kb};
	json_t *dt[2] = {json_object(), json_object()};
	struct rf_tuf_client_opts o = {
	    .metadata_dir = f->md, .metadata_url = f->murl, .target_base_url = f->turl};
	struct rf_tuf_client *c = NULL;
	struct rf_tuf_target *t = NULL;
	struct stat sb;

	delegate(f, k0,
		 json_pack("[o,o]", drole("A", false, json_pack("[s]", "a/*"), NULL, k0id),
			   drole("B", false, json_pack("[s]", "b/*"), NULL, k0id)),
		 dt, 2); /* targets v3, A and B v1 (no delegations yet) */
	write_role(f, "A", 1, &k0, 1, json_object(), delegation_to(ka, "release", "a/*"));
	write_role(f, "B", 1, &k0, 1, json_object(), delegation_to(kb, "release", "b/*"));
	publish_release(f, 1, &ka, 1);

	assert_int_equal(rf_tuf_client_new(&o, &c, &d), 0);
	assert_int_equal(rf_tuf_client_refresh(c, &d), 0);
	assert_int_equal(rf_tuf_client_get_target(c, "a/ok", &t, &d), 0);
	assert_string_equal(t->role, "release");
	assert_int_equal(rf_tuf_client_download_target(c, t, f->tdir, NULL, &d), 0);
	rf_tuf_target_free(t);
	t = NULL;
	/* through B, release (already loaded through A) is not signed by kb */
	assert_int_equal(rf_tuf_client_get_target(c, "b/evil", &t, &d), -EKEYREJECTED);
	assert_null(t);
	rf_tuf_client_free(c);
	snprintf(path, sizeof(path), "%s/b%%2Fevil", f->tdir);
	assert_int_not_equal(stat(path, &sb), 0);
	/* a fresh client following B first refuses it too (loaded from disk, verified by kb) */
	assert_int_equal(download(f, "b/evil", NULL), -EKEYREJECTED);
	assert_int_not_equal(stat(path, &sb), 0);

	/* release v2 signed by both keys: trusted through either parent, in one client */
	publish_release(f, 2, both, 2);
	assert_int_equal(rf_tuf_client_new(&o, &c, &d), 0);
	assert_int_equal(rf_tuf_client_refresh(c, &d), 0);
	assert_int_equal(rf_tuf_client_get_target(c, "a/ok", &t, &d), 0);
	rf_tuf_target_free(t);
	assert_int_equal(rf_tuf_client_get_target(c, "b/evil", &t, &d), 0);
	assert_int_equal(rf_tuf_client_download_target(c, t, f->tdir, NULL, &d), 0);
	rf_tuf_target_free(t);
	rf_tuf_client_free(c);
	assert_int_equal(stat(path, &sb), 0);
	EVP_PKEY_free(k0);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
	fx_free(f);
}

/* A file of n junk bytes (not JSON) on the server. */
static void put_junk(struct fx *f, const char *file, size_t n)
{
	char *p = malloc(n);

	assert_non_null(p);
	memset(p, '[', n);
	put_file(f->meta, file, p, n);
	free(p);
}

/*
 * Per-role limits hold when the referring metadata gives a length: a snapshot naming a
 * 5 MiB + 4 KiB targets.json, or a timestamp naming a 2 MiB + 4 KiB snapshot, is refused with
 * -E2BIG at the role's limit, before the whole file is read and parsed.
 */
static void test_role_limit_with_length(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	const size_t tlen = RF_TUF_TARGETS_MAX + 4096, slen = RF_TUF_SNAPSHOT_MAX + 4096;
	char st[65], file[64];
	json_t *ts;
	uint64_t sv;

	assert_int_equal(refresh(f), 0);
	file_state(f, "targets.json", st);
	put_junk(f, "9.targets.json", tlen);
	write_snapshot(f, json_pack("{s:{s:i,s:I}}", "targets.json", "version", 9, "length",
				    (json_int_t)tlen));
	assert_int_equal(refresh(f), -E2BIG);
	assert_file(f, "targets.json", st);

	file_state(f, "snapshot.json", st);
	ts = read_signed(f, "timestamp.json");
	sv = (uint64_t)json_integer_value(json_object_get(
	    json_object_get(json_object_get(ts, "meta"), "snapshot.json"), "version"));
	json_decref(ts);
	snprintf(file, sizeof(file), "%llu.snapshot.json", (unsigned long long)sv + 1);
	put_junk(f, file, slen);
	write_timestamp(f, sv + 1, 0, 0); /* with the junk's exact length and hash */
	assert_int_equal(refresh(f), -E2BIG);
	assert_file(f, "snapshot.json", st);
	fx_free(f);
}

/* An unsigned snapshot (parse does not check signatures) with n meta entries. */
static struct rf__tuf_md *snapshot_of(size_t n, size_t skip, uint64_t low, uint64_t v)
{
	json_t *meta = json_object(), *doc;
	struct rf__tuf_md *md = NULL;
	char *text;

	/* inserted in descending order: the parser must sort them */
	for (size_t i = n; i-- > 0;) {
		char name[64];
		if (i == skip)
			continue;
		snprintf(name, sizeof(name), "role-%07zu.json", i);
		json_object_set_new(meta, name,
				    json_pack("{s:I}", "version", (json_int_t)(i == low ? 1 : v)));
	}
	doc = json_pack("{s:[],s:{s:s,s:s,s:i,s:s,s:o}}", "signatures", "signed", "_type",
			"snapshot", "spec_version", "1.0.34", "version", 1, "expires",
			"2099-01-01T00:00:00Z", "meta", meta);
	text = json_dumps(doc, JSON_COMPACT);
	assert_int_equal(
	    rf__tuf_md_parse((const uint8_t *)text, strlen(text), RF__TUF_SNAPSHOT, &md, NULL), 0);
	free(text);
	json_decref(doc);
	return md;
}

/*
 * The snapshot rollback check is one merge: comparing a trusted snapshot of N entries with a
 * new one of 2N costs at most 3N name comparisons (a linear search per entry cost N^2/2).
 */
static void test_snapshot_compare_is_linear(void **state)
{
	const size_t n = 100000;
	struct rf__tuf_md *old = snapshot_of(n, SIZE_MAX, SIZE_MAX, 2);
	struct rf__tuf_md *grown = snapshot_of(2 * n, SIZE_MAX, SIZE_MAX, 3);
	struct rf__tuf_md *dropped = snapshot_of(n, n - 1, SIZE_MAX, 3);
	struct rf__tuf_md *lowered = snapshot_of(n, SIZE_MAX, n / 2, 3);
	uint64_t work = 0;

	assert_non_null(rf__tuf_md_file(grown, "role-0000000.json"));
	assert_non_null(rf__tuf_md_file(grown, "role-0199999.json"));
	assert_null(rf__tuf_md_file(grown, "role-0200000.json"));
	assert_int_equal(rf__tuf_snapshot_check(old, grown, &work, NULL), 0);
	assert_in_range(work, n, 3 * n);
	assert_int_equal(rf__tuf_snapshot_check(old, dropped, &work, NULL), -ESTALE);
	assert_in_range(work, 1, 2 * n);
	assert_int_equal(rf__tuf_snapshot_check(old, lowered, &work, NULL), -ESTALE);
	assert_in_range(work, 1, 2 * n);
	assert_int_equal(rf__tuf_snapshot_check(grown, old, &work, NULL), -ESTALE); /* drops n */
	rf__tuf_md_free(old);
	rf__tuf_md_free(grown);
	rf__tuf_md_free(dropped);
	rf__tuf_md_free(lowered);
}

/* The same through the client: a snapshot of 25,000 delegated roles, then one that drops the
 * last of them (in name order) is refused, and the trusted snapshot stays. */
static void test_large_snapshot_through_client(void **state)
{
	struct fx *f = fx_new(1, RF_TUF_KEY_ED25519);
	const size_t n = 25000;
	json_t *meta = json_pack("{s:{s:i}}", "targets.json", "version", 2), *less;
	char name[64], st[65];

	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "r%05zu.json", i);
		json_object_set_new(meta, name, json_pack("{s:i}", "version", 1));
	}
	less = json_deep_copy(meta);
	snprintf(name, sizeof(name), "r%05zu.json", n - 1);
	json_object_del(less, name);
	write_snapshot(f, meta);
	assert_int_equal(download(f, PACK_NAME, NULL), 0);
	file_state(f, "snapshot.json", st);
	write_snapshot(f, less);
	assert_int_equal(refresh(f), -ESTALE);
	assert_file(f, "snapshot.json", st);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_targets_fast_forward_recovery),
	    cmocka_unit_test(test_cached_role_is_verified_against_current_delegator),
	    cmocka_unit_test(test_role_limit_with_length),
	    cmocka_unit_test(test_snapshot_compare_is_linear),
	    cmocka_unit_test(test_large_snapshot_through_client),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
