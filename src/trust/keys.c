/*
 * TUF keys and signatures through OpenSSL 3 libcrypto.
 *
 * Three (keytype, scheme) pairs are accepted, exactly as the spec and securesystemslib spell
 * them: ("ed25519", "ed25519") with a 64-hex-digit raw public key; ("ecdsa" or
 * "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") with a PEM SubjectPublicKeyInfo on P-256 and
 * DER signatures over SHA-256; ("rsa", "rsassa-pss-sha256") with a PEM public key of at least
 * 2048 bits, PSS with MGF1-SHA-256 and any salt length when verifying (salt = digest length
 * when signing, as securesystemslib does). Any other combination, or key material that does
 * not match its declared type, makes the key unusable: its signatures never count, which is
 * the defence against "wrong key type or scheme" confusion. Signatures are lower-case hex.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/util.h"
#include "trust/tuf-internal.h"

static bool str_eq(const json_t *v, const char *s)
{
	return json_is_string(v) && !strcmp(json_string_value(v), s);
}

static EVP_PKEY *pem_public(const char *pem, int want_type)
{
	size_t n = strlen(pem);
	BIO *bio;
	EVP_PKEY *pk;

	if (n > 16384 || strncmp(pem, "-----BEGIN PUBLIC KEY-----", 26) != 0)
		return NULL;
	bio = BIO_new_mem_buf(pem, (int)n);
	if (!bio)
		return NULL;
	pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pk && EVP_PKEY_get_base_id(pk) != want_type) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	return pk;
}

/* Returns 0 with *ret_pkey possibly NULL (unusable key); -EBADMSG if the shape is wrong. */
int rf__tuf_key_from_json(const json_t *key, enum rf__tuf_alg *ret_alg, EVP_PKEY **ret_pkey)
{
	const json_t *type = json_object_get(key, "keytype"),
		     *scheme = json_object_get(key, "scheme");
	const json_t *keyval = json_object_get(key, "keyval");
	const json_t *pub = json_object_get(keyval, "public");
	EVP_PKEY *pk = NULL;
	enum rf__tuf_alg alg = RF__TUF_ALG_NONE;

	if (!json_is_object(key) || !json_is_string(type) || !json_is_string(scheme) ||
	    !json_is_object(keyval))
		return -EBADMSG;
	if (!json_is_string(pub))
		goto unusable;
	if (str_eq(type, "ed25519") && str_eq(scheme, "ed25519")) {
		uint8_t raw[32];
		if (json_string_length(pub) != 64 ||
		    rf_hex_decode(json_string_value(pub), 64, raw, sizeof(raw)) < 0)
			goto unusable;
		pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, sizeof(raw));
		alg = RF__TUF_ALG_ED25519;
	} else if ((str_eq(type, "ecdsa") || str_eq(type, "ecdsa-sha2-nistp256")) &&
		   str_eq(scheme, "ecdsa-sha2-nistp256")) {
		char group[64];
		size_t glen = 0;
		pk = pem_public(json_string_value(pub), EVP_PKEY_EC);
		if (pk && (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
							   sizeof(group), &glen) ||
			   strcmp(group, "prime256v1") != 0)) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
		alg = RF__TUF_ALG_ECDSA;
	} else if (str_eq(type, "rsa") && str_eq(scheme, "rsassa-pss-sha256")) {
		pk = pem_public(json_string_value(pub), EVP_PKEY_RSA);
		if (pk && EVP_PKEY_get_bits(pk) < 2048) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
		alg = RF__TUF_ALG_RSAPSS;
	}
	if (!pk)
		alg = RF__TUF_ALG_NONE;
	*ret_alg = alg;
	*ret_pkey = pk;
	return 0;
unusable:
	*ret_alg = RF__TUF_ALG_NONE;
	*ret_pkey = NULL;
	return 0;
}

bool rf__tuf_key_verify(enum rf__tuf_alg alg, EVP_PKEY *pkey, const uint8_t *sig, size_t siglen,
			const void *msg, size_t msglen)
{
	EVP_MD_CTX *ctx;
	EVP_PKEY_CTX *pctx = NULL;
	bool ok = false;

	if (!pkey || alg == RF__TUF_ALG_NONE || siglen == 0 || siglen > 4096)
		return false;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return false;
	switch (alg) {
	case RF__TUF_ALG_ED25519:
		if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1)
			goto out;
		break;
	case RF__TUF_ALG_ECDSA:
		if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1)
			goto out;
		break;
	case RF__TUF_ALG_RSAPSS:
		if (EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, pkey) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)
			goto out;
		break;
	default:
		goto out;
	}
	ok = EVP_DigestVerify(ctx, sig, siglen, msg, msglen) == 1;
out:
	EVP_MD_CTX_free(ctx);
	return ok;
}

int rf__tuf_key_generate(enum rf_tuf_keytype type, EVP_PKEY **ret)
{
	EVP_PKEY *pk = NULL;

	switch (type) {
	case RF_TUF_KEY_ED25519:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case RF_TUF_KEY_ECDSA_P256:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case RF_TUF_KEY_RSA_PSS:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	default:
		return -EINVAL;
	}
	if (!pk)
		return -ENOMEM;
	*ret = pk;
	return 0;
}

static char *public_pem(EVP_PKEY *pkey)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *s = NULL;
	long n;

	if (!bio)
		return NULL;
	if (PEM_write_bio_PUBKEY(bio, pkey) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0) {
		s = malloc((size_t)n + 1);
		if (s) {
			memcpy(s, data, (size_t)n);
			s[n] = '\0';
		}
	}
	BIO_free(bio);
	return s;
}

int rf__tuf_key_public_json(EVP_PKEY *pkey, json_t **ret_key, char ret_keyid[65])
{
	const char *type, *scheme;
	char pub[65];
	char *pem = NULL, *canon = NULL;
	size_t canonlen;
	json_t *key;
	int r;

	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_ED25519: {
		uint8_t raw[32];
		size_t len = sizeof(raw);
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != 32)
			return -EINVAL;
		rf_hex_encode(raw, 32, pub);
		type = scheme = "ed25519";
		break;
	}
	case EVP_PKEY_EC:
		type = "ecdsa";
		scheme = "ecdsa-sha2-nistp256";
		break;
	case EVP_PKEY_RSA:
		type = "rsa";
		scheme = "rsassa-pss-sha256";
		break;
	default:
		return -EINVAL;
	}
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519 && !(pem = public_pem(pkey)))
		return -ENOMEM;
	key = json_pack("{s:s, s:s, s:{s:s}}", "keytype", type, "scheme", scheme, "keyval",
			"public", pem ? pem : pub);
	free(pem);
	if (!key)
		return -ENOMEM;
	r = rf__tuf_canonical(key, &canon, &canonlen, NULL);
	if (r < 0) {
		json_decref(key);
		return r;
	}
	rf_sha256_hex(canon, canonlen, ret_keyid);
	free(canon);
	*ret_key = key;
	return 0;
}

int rf__tuf_key_sign(EVP_PKEY *pkey, const void *msg, size_t msglen, char **ret)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int id = EVP_PKEY_get_base_id(pkey);
	uint8_t *sig = NULL;
	size_t siglen = 0;
	char *hex = NULL;
	int r = -EINVAL;

	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestSignInit(ctx, &pctx, id == EVP_PKEY_ED25519 ? NULL : EVP_sha256(), NULL,
			       pkey) != 1)
		goto out;
	if (id == EVP_PKEY_RSA &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out;
	if (EVP_DigestSign(ctx, NULL, &siglen, msg, msglen) != 1 || siglen == 0)
		goto out;
	r = -ENOMEM;
	sig = malloc(siglen);
	if (!sig)
		goto out;
	r = -EINVAL;
	if (EVP_DigestSign(ctx, sig, &siglen, msg, msglen) != 1)
		goto out;
	r = -ENOMEM;
	hex = malloc(siglen * 2 + 1);
	if (!hex)
		goto out;
	rf_hex_encode(sig, siglen, hex);
	*ret = hex;
	r = 0;
out:
	free(sig);
	EVP_MD_CTX_free(ctx);
	return r;
}
