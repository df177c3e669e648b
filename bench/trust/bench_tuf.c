/*
 * Benchmarks of the trust part (figures only, no assertions): what a client pays to accept
 * metadata. (1) parse + canonicalise + verify a targets file with 10,000 targets (ed25519);
 * (2) signature verifications per second for each scheme over a 1 KiB canonical message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "trust/tuf-internal.h"

#define NTARGETS 10000

static double secs_since(uint64_t t0)
{
	return (double)(rf_now_mono_ns() - t0) / 1e9;
}

static int bench_targets(void)
{
	EVP_PKEY *k = NULL;
	json_t *pub = NULL, *targets = json_object(), *s, *doc;
	char keyid[65], *canon = NULL, *sig = NULL, *text;
	size_t cl;
	struct rf__tuf_role role = {.name = "targets", .nkeyids = 1, .threshold = 1};
	struct rf__tuf_keyring kr = {0};
	struct rf__tuf_key key = {0};
	const char *ids[1];

	if (rf__tuf_key_generate(RF_TUF_KEY_ED25519, &k) < 0 ||
	    rf__tuf_key_public_json(k, &pub, keyid) < 0)
		return 1;
	for (int i = 0; i < NTARGETS; i++) {
		char name[64], hex[65];
		snprintf(name, sizeof(name), "packs/rules-%06d.rfp", i);
		rf_sha256_hex(name, strlen(name), hex);
		json_object_set_new(targets, name,
				    json_pack("{s:I,s:{s:s},s:{s:[{s:i,s:i}]}}", "length",
					      (json_int_t)(1000 + i), "hashes", "sha256", hex,
					      "custom", "ramp", "ring", i % 4, "pct", 5));
	}
	s = json_pack("{s:s,s:s,s:i,s:s,s:o}", "_type", "targets", "spec_version", "1.0.34",
		      "version", 7, "expires", "2099-01-01T00:00:00Z", "targets", targets);
	if (rf__tuf_canonical(s, &canon, &cl, NULL) < 0 || rf__tuf_key_sign(k, canon, cl, &sig) < 0)
		return 1;
	doc =
	    json_pack("{s:[{s:s,s:s}],s:o}", "signatures", "keyid", keyid, "sig", sig, "signed", s);
	text = json_dumps(doc, JSON_INDENT(1));
	free(canon);
	free(sig);
	json_decref(doc);

	ids[0] = keyid;
	role.keyids = ids;
	key.keyid = keyid;
	key.alg = RF__TUF_ALG_ED25519;
	key.pkey = k;
	key.pubval = json_string_value(json_object_get(json_object_get(pub, "keyval"), "public"));
	kr.keys = &key;
	kr.n = 1;
	int iters = 20;
	uint64_t t0 = rf_now_mono_ns();
	for (int i = 0; i < iters; i++) {
		struct rf__tuf_md *md = NULL;
		if (rf__tuf_md_parse((const uint8_t *)text, strlen(text), RF__TUF_TARGETS, &md,
				     NULL) < 0 ||
		    rf__tuf_md_verify(&kr, &role, md, "bench", NULL) < 0)
			return 1;
		rf__tuf_md_free(md);
	}
	double dt = secs_since(t0) / iters;
	printf("targets metadata, %d targets, %zu bytes: parse+canonicalise+verify %.1f ms "
	       "(%.1f MB/s)\n",
	       NTARGETS, strlen(text), dt * 1e3, (double)strlen(text) / dt / 1e6);
	free(text);
	json_decref(pub);
	EVP_PKEY_free(k);
	return 0;
}

static int bench_verify(enum rf_tuf_keytype type, const char *label)
{
	EVP_PKEY *k = NULL;
	json_t *pub = NULL;
	char keyid[65], *sighex = NULL, msg[1024];
	uint8_t sig[1024];
	enum rf__tuf_alg alg;
	EVP_PKEY *vk = NULL;
	int n = 0;

	memset(msg, 'm', sizeof(msg));
	if (rf__tuf_key_generate(type, &k) < 0 || rf__tuf_key_public_json(k, &pub, keyid) < 0 ||
	    rf__tuf_key_from_json(pub, &alg, &vk) < 0 || !vk ||
	    rf__tuf_key_sign(k, msg, sizeof(msg), &sighex) < 0)
		return 1;
	size_t sl = strlen(sighex) / 2;
	if (rf_hex_decode(sighex, sl * 2, sig, sl) < 0)
		return 1;
	uint64_t t0 = rf_now_mono_ns();
	while (secs_since(t0) < 0.5) {
		for (int i = 0; i < 50; i++)
			if (!rf__tuf_key_verify(alg, vk, sig, sl, msg, sizeof(msg)))
				return 1;
		n += 50;
	}
	printf("%-22s %8.0f verifications/s\n", label, n / secs_since(t0));
	free(sighex);
	json_decref(pub);
	EVP_PKEY_free(vk);
	EVP_PKEY_free(k);
	return 0;
}

int main(void)
{
	return bench_targets() || bench_verify(RF_TUF_KEY_ED25519, "ed25519") ||
	       bench_verify(RF_TUF_KEY_ECDSA_P256, "ecdsa-sha2-nistp256") ||
	       bench_verify(RF_TUF_KEY_RSA_PSS, "rsassa-pss-sha256/3072");
}
