/*
 * trust/ internals shared by the canonical-JSON, key, metadata, client, fetch and repository
 * files. Not installed; only src/trust, its tests and fuzz targets include it.
 *
 * The metadata model: struct rf__tuf_md is one parsed, structurally validated metadata file.
 * Parsing checks every field the client later reads (types, ranges, counts against limits.h),
 * so code past rf__tuf_md_parse never re-validates shapes; it still checks signatures,
 * versions, expiry, lengths and hashes, which depend on other metadata.
 */
#ifndef RF_TRUST_TUF_INTERNAL_H
#define RF_TRUST_TUF_INTERNAL_H

#include <jansson.h>
#include <openssl/evp.h>

#include "trust/tuf.h"

/* Parse JSON text strictly (duplicate keys rejected, whole input). */
int rf__tuf_json_parse(const uint8_t *p, size_t n, json_t **ret, struct rf_diag *d) RF_WUR;
/* Canonical JSON of a parsed value (see rf_tuf_canonicalize). */
int rf__tuf_canonical(const json_t *v, char **ret, size_t *ret_len, struct rf_diag *d) RF_WUR;

enum rf__tuf_alg {
	RF__TUF_ALG_NONE = 0,
	RF__TUF_ALG_ED25519,
	RF__TUF_ALG_ECDSA,
	RF__TUF_ALG_RSAPSS
};

/* One key from a "keys" object. pkey is NULL when the key cannot be used (unknown or
 * mismatched type/scheme, bad key material): its signatures never count. */
struct rf__tuf_key {
	const char *keyid; /* points into the owning document */
	enum rf__tuf_alg alg;
	EVP_PKEY *pkey;
	const char *pubval; /* keyval.public, for de-duplicating identical keys */
};

struct rf__tuf_keyring {
	struct rf__tuf_key *keys;
	size_t n;
};

/* A role's keys and threshold (top-level or delegated). */
struct rf__tuf_role {
	const char *name;
	const char **keyids;
	size_t nkeyids;
	uint64_t threshold;
	/* delegated roles only */
	bool terminating;
	const char **paths;
	size_t npaths;
	const char **prefixes;
	size_t nprefixes;
};

/* A "meta" entry (timestamp, snapshot) or a "targets" entry. */
struct rf__tuf_file {
	const char *name;
	uint64_t version; /* meta only; 0 if absent */
	bool has_length;
	uint64_t length;
	bool has_sha256, has_sha512;
	uint8_t sha256[32];
	uint8_t sha512[64];
	const char *first_hash_hex; /* the first hash listed (consistent-snapshot target URLs) */
	json_t *custom;		    /* borrowed from the document; NULL if absent */
};

enum rf__tuf_type { RF__TUF_ROOT = 0, RF__TUF_TIMESTAMP, RF__TUF_SNAPSHOT, RF__TUF_TARGETS };

struct rf__tuf_sig {
	const char *keyid;
	uint8_t *sig;
	size_t len;
};

struct rf__tuf_md {
	enum rf__tuf_type type;
	uint64_t version;
	int64_t expires;
	json_t *doc; /* owns every borrowed string below */
	uint8_t *raw;
	size_t rawlen; /* exact bytes received */
	char *canon;
	size_t canonlen; /* canonical JSON of "signed": what signatures cover */
	struct rf__tuf_sig *sigs;
	size_t nsigs;
	/* root */
	bool consistent_snapshot;
	struct rf__tuf_keyring keys;  /* root keys, or targets' delegation keys */
	struct rf__tuf_role roles[4]; /* root: indexed by enum rf__tuf_type */
	/* timestamp, snapshot: meta; targets: targets (sorted by name) */
	struct rf__tuf_file *files;
	size_t nfiles;
	/* targets: delegations */
	bool has_delegations;
	struct rf__tuf_role *dels;
	size_t ndels;
	/* succinct hash-bin delegation (TAP 15): succinct_bits != 0; succinct.name is the
	 * name prefix, bins are "<prefix>-<hex>" */
	struct rf__tuf_role succinct;
	unsigned succinct_bits;
};

/* Parse p[0..n) as metadata of the given type (copying the bytes). -EBADMSG with a diagnostic
 * naming the field on any structural problem; -E2BIG over a count limit. */
int rf__tuf_md_parse(const uint8_t *p, size_t n, enum rf__tuf_type type, struct rf__tuf_md **ret,
		     struct rf_diag *d) RF_WUR;
void rf__tuf_md_free(struct rf__tuf_md *md);

/* Count distinct keys of role (looked up in keyring) with a valid signature on md; 0 when the
 * threshold is met, else -EKEYREJECTED with a diagnostic naming what (role) and the count. */
int rf__tuf_md_verify(const struct rf__tuf_keyring *keyring, const struct rf__tuf_role *role,
		      const struct rf__tuf_md *md, const char *what, struct rf_diag *d) RF_WUR;

bool rf__tuf_md_expired(const struct rf__tuf_md *md, int64_t now);
/* The meta or targets entry called name, or NULL (binary search: files are sorted by name). */
const struct rf__tuf_file *rf__tuf_md_file(const struct rf__tuf_md *md, const char *name);
/* Snapshot rollback check (spec 5.5.5): every entry of the trusted snapshot old is still listed
 * in md, at a version not lower. One merge of the two name-sorted lists: at most
 * old->nfiles + md->nfiles name comparisons, counted into *ret_work (optional) for tests.
 * Returns 0 or -ESTALE naming the first entry (in name order) dropped or lowered. */
int rf__tuf_snapshot_check(const struct rf__tuf_md *old, const struct rf__tuf_md *md,
			   uint64_t *ret_work, struct rf_diag *d) RF_WUR;
const struct rf__tuf_role *rf__tuf_md_delegation(const struct rf__tuf_md *md, const char *name);
/* The succinct-delegation bin name for path: "<prefix>-<top bit_length bits of sha256(path),
 * hex, zero-padded to ceil(bit_length/4) digits>" (as python-tuf). -E2BIG if it does not fit. */
int rf__tuf_succinct_bin(const struct rf__tuf_md *md, const char *path, char *out,
			 size_t outsz) RF_WUR;
/* Does delegated role r cover target path? (glob per '/'-component, or hash prefixes) */
bool rf__tuf_role_matches(const struct rf__tuf_role *r, const char *path);
/* Component glob: '*' and '?' never match '/', [...] classes; the whole string must match. */
bool rf__tuf_glob(const char *pat, const char *s);

/* Check data against a file entry's length (if given) and every hash it lists; -EBADMSG. */
int rf__tuf_file_check(const struct rf__tuf_file *f, const uint8_t *p, size_t n, const char *what,
		       struct rf_diag *d) RF_WUR;

/* "2030-01-01T00:00:00Z" <-> Unix seconds. */
int rf__tuf_time_parse(const char *s, int64_t *ret) RF_WUR;
void rf__tuf_time_format(int64_t t, char out[21]);

/* Keys (keys.c). */
int rf__tuf_key_from_json(const json_t *key, enum rf__tuf_alg *ret_alg, EVP_PKEY **ret_pkey);
bool rf__tuf_key_verify(enum rf__tuf_alg alg, EVP_PKEY *pkey, const uint8_t *sig, size_t siglen,
			const void *msg, size_t msglen);
/* Generate a private key; its public JSON object ({"keytype","scheme","keyval"}) and key id. */
int rf__tuf_key_generate(enum rf_tuf_keytype type, EVP_PKEY **ret) RF_WUR;
int rf__tuf_key_public_json(EVP_PKEY *pkey, json_t **ret_key, char ret_keyid[65]) RF_WUR;
/* Sign msg; hex signature (malloc'd) into *ret. */
int rf__tuf_key_sign(EVP_PKEY *pkey, const void *msg, size_t msglen, char **ret) RF_WUR;

/* HTTP GET url into memory, at most max bytes (-E2BIG beyond). -ENOENT for 403/404. */
int rf__tuf_fetch(const char *url, size_t max, uint8_t **ret, size_t *ret_len,
		  struct rf_diag *d) RF_WUR;

#endif
