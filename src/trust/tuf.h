/*
 * trust/: The Update Framework (TUF, specification v1.0.34) for ringfence - the public API.
 *
 * Two sides share one metadata model:
 *  - the client (the agent, ringfence-tuf-client) keeps a metadata directory of trusted
 *    metadata, each file the exact bytes once received and verified, and refreshes it over HTTP
 *    with the spec's detailed client workflow (5.1-5.7): root chain, timestamp, snapshot,
 *    targets, delegations; every download has a size limit;
 *  - the repository writer (`ringfence repo`, the rollout server) keeps keys in files and writes
 *    a static, consistent-snapshot repository directory that any HTTP server can serve.
 * Invariants: nothing is trusted unless a threshold of distinct keys of the role signed the
 * canonical JSON of its `signed` object; trusted state on disk changes only by atomic
 * replacement with verified bytes, so a failed refresh leaves it as it was. Library functions
 * never print; problems are reported through struct rf_diag. Signatures: ed25519,
 * ecdsa-sha2-nistp256 and rsassa-pss-sha256 through OpenSSL 3.
 */
#ifndef RF_TRUST_TUF_H
#define RF_TRUST_TUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"

/* ---- canonical JSON ------------------------------------------------------------------------ */

/*
 * Canonicalise the JSON text p[0..n) the way securesystemslib does (sorted keys, no whitespace,
 * only '"' and '\' escaped, other bytes raw, integers only). Duplicate object keys, reals and
 * nesting deeper than RF_TUF_JSON_DEPTH_MAX are rejected.
 * Returns 0 and *ret (NUL-terminated, malloc'd, caller frees) / *ret_len; -EBADMSG on malformed
 * input or a value canonical JSON cannot express, -E2BIG over a limit, -ENOMEM.
 */
int rf_tuf_canonicalize(const uint8_t *p, size_t n, char **ret, size_t *ret_len,
			struct rf_diag *d) RF_WUR;

/* ---- client ------------------------------------------------------------------------------- */

/* A client; use it from one thread at a time (several clients may share a process). */
struct rf_tuf_client;

struct rf_tuf_client_opts {
	const char *metadata_dir;    /* trusted metadata (root.json, ...); must exist */
	const char *metadata_url;    /* base URL of the metadata, e.g. http://h/repo/metadata/ */
	const char *target_base_url; /* base URL of target files (may be NULL: no downloads) */
	int64_t now;		     /* Unix seconds to check expiry against; 0: system clock */
	/* Fault injection for crash tests (NULL in production): called just before each durable
	 * change of the trusted state - a metadata file stored or deleted, a target written -
	 * with step = 1, 2, ... counted over the client's life and what = the role name or
	 * "target". The hook may stop the process (ringfence-tuf-client: RF_TUF_FAULT_KILL_AT). */
	void (*before_durable_step)(void *ud, unsigned step, const char *what);
	void *step_ud;
};

/*
 * Install a trusted root (the out-of-band step): check that p[0..n) is root metadata signed by
 * a threshold of its own root keys, then write it as metadata_dir/root.json (exact bytes,
 * atomically, creating metadata_dir if needed). No network. Expiry is not checked here
 * (refresh updates an expired root first).
 * Returns 0; -EBADMSG malformed, -EKEYREJECTED not self-signed, -errno on I/O.
 */
int rf_tuf_client_init(const char *metadata_dir, const uint8_t *p, size_t n,
		       struct rf_diag *d) RF_WUR;

/* Create a client over opts (strings are copied). Loads and verifies metadata_dir/root.json.
 * Returns 0; -ENOENT no trusted root; -EBADMSG / -EKEYREJECTED it does not verify; -ENOMEM. */
int rf_tuf_client_new(const struct rf_tuf_client_opts *opts, struct rf_tuf_client **ret,
		      struct rf_diag *d) RF_WUR;
void rf_tuf_client_free(struct rf_tuf_client *c);

/*
 * Run the top-level update (spec 5.3-5.6): root chain, timestamp, snapshot, targets. On success
 * metadata_dir holds the new trusted metadata. On failure nothing trusted is weakened (files
 * verified before the failure stay, e.g. a newer root) and a later refresh starts over.
 * Returns 0; -EKEYREJECTED signatures below threshold; -ESTALE rollback (version lower than
 * trusted, or not the version the referring metadata names); -ETIMEDOUT expired metadata
 * (freeze attack); -E2BIG a download over its limit; -EBADMSG malformed or hash/length mismatch;
 * -ENOENT HTTP 403/404; -EIO other network failures, network timeouts included; -ENOMEM.
 */
int rf_tuf_client_refresh(struct rf_tuf_client *c, struct rf_diag *d) RF_WUR;

/* What the trusted metadata says about one target. Owned by the caller: rf_tuf_target_free. */
struct rf_tuf_target {
	char *path;	   /* target path as in the metadata, e.g. "packs/rules-42.rfp" */
	uint64_t length;   /* exact length in bytes */
	char sha256[65];   /* lower-case hex; "" if the metadata gives no sha256 */
	char sha512[129];  /* lower-case hex; "" if the metadata gives no sha512 */
	char *url_hash;	   /* the first hash listed: the file name prefix under consistent
			      snapshots (as python-tuf and tuf-js pick it) */
	char *custom_json; /* canonical JSON of the target's "custom" object, NULL if absent */
	char *role;	   /* the (possibly delegated) role that signed this target */
};
void rf_tuf_target_free(struct rf_tuf_target *t);

/*
 * Find target path in the trusted metadata after a successful refresh: targets, then
 * delegations pre-order depth first (terminating roles stop the search, glob paths where '*'
 * does not cross '/', path_hash_prefixes, succinct hash bins), visiting at most
 * RF_TUF_DELEGATIONS_MAX roles;
 * delegated metadata is downloaded and verified on demand.
 * Returns 0 and *ret; -ENOENT no such target; the codes of rf_tuf_client_refresh for a
 * delegated role that fails; -EINVAL refresh has not succeeded yet.
 */
int rf_tuf_client_get_target(struct rf_tuf_client *c, const char *path, struct rf_tuf_target **ret,
			     struct rf_diag *d) RF_WUR;

/*
 * Make dir/<file name> hold the verified bytes of target t (from rf_tuf_client_get_target).
 * The file name is the URL-quoted target path (no '/' in it: the same target always gets the
 * same file name). A cached copy with the right length and hashes is kept without download;
 * otherwise the file is fetched (consistent snapshots: HASH.basename), checked for length and
 * every hash, and written atomically. *ret_path (optional, caller frees) is the file's path.
 * Returns 0; -E2BIG longer than t->length; -EBADMSG length or hash mismatch; network codes.
 */
int rf_tuf_client_download_target(struct rf_tuf_client *c, const struct rf_tuf_target *t,
				  const char *dir, char **ret_path, struct rf_diag *d) RF_WUR;

/* The file name (URL-quoted: unreserved bytes kept, others %XX, "." and ".." quoted) used for
 * a role or target name; into out (size outsz). Returns 0 or -E2BIG. */
int rf_tuf_quote_name(const char *name, char *out, size_t outsz) RF_WUR;

/* ---- repository writer -------------------------------------------------------------------- */

/* Layout of a repository directory DIR (all written by these calls):
 *   DIR/config.json                  key type, threshold, expiry periods
 *   DIR/keys/<keyid>.pem             private keys, mode 0600 (never logged)
 *   DIR/staged/targets.json          the newest signed targets, published or not
 *   DIR/repository/metadata/         what clients fetch: N.root.json, root.json,
 *                                    N.targets.json, N.snapshot.json, timestamp.json
 *   DIR/repository/targets/          target files as <dir>/<sha256>.<basename>
 * Serve DIR/repository read-only; metadata URL <base>/metadata/, targets <base>/targets/. */

enum rf_tuf_keytype { RF_TUF_KEY_ED25519 = 0, RF_TUF_KEY_ECDSA_P256, RF_TUF_KEY_RSA_PSS };

enum rf_tuf_role { RF_TUF_ROOT = 0, RF_TUF_TIMESTAMP, RF_TUF_SNAPSHOT, RF_TUF_TARGETS };

struct rf_tuf_repo_opts {
	enum rf_tuf_keytype keytype;
	unsigned threshold; /* keys per top-level role and signatures needed; 0 means 1 */
	/* Expiry periods in seconds, indexed by enum rf_tuf_role; 0 means the default:
	 * root 365 days, timestamp 1 day, snapshot 7 days, targets 90 days. */
	int64_t expiry[4];
};

/* Create DIR (must not hold a repository yet): keys, root v1, empty targets v1, snapshot and
 * timestamp v1, all published. Returns 0; -EEXIST; -EINVAL bad opts; -errno on I/O. */
int rf_tuf_repo_init(const char *dir, const struct rf_tuf_repo_opts *opts, int64_t now,
		     struct rf_diag *d) RF_WUR;

/*
 * Stage a new targets version that adds target name with bytes p[0..n) and the optional custom
 * metadata custom_json (a JSON object, carried verbatim; NULL for none). The file is written
 * under repository/targets/; clients see it after rf_tuf_repo_publish.
 * name: '/'-separated components of [A-Za-z0-9._-], none "." or "..", at most RF_TUF_NAME_MAX.
 * A target of that name already staged or published with other bytes is refused (-EEXIST, with
 * the reason in d): a release is identified by its target's name and hash, so a device not yet
 * on a live release of it would refuse the new bytes; publish a fixed pack under a new name.
 * The same bytes with the same custom metadata change nothing (0, nothing staged); the same
 * bytes with other custom metadata stage the new metadata.
 * Returns 0; -EINVAL bad name or custom JSON; -EEXIST other bytes under name; -ENOENT no
 * repository; -errno on I/O.
 */
int rf_tuf_repo_add(const char *dir, const char *name, const uint8_t *p, size_t n,
		    const char *custom_json, int64_t now, struct rf_diag *d) RF_WUR;

/* rf_tuf_repo_add with flags: RF_TUF_ADD_REPLACE replaces a target of that name whose bytes
 * differ (the operator's explicit choice: releases of the old bytes become undeliverable).
 * *ret_unchanged (optional) tells, on success, whether nothing was staged (same bytes and
 * custom metadata already there). */
#define RF_TUF_ADD_REPLACE 1u
int rf_tuf_repo_add_flags(const char *dir, const char *name, const uint8_t *p, size_t n,
			  const char *custom_json, unsigned flags, int64_t now, bool *ret_unchanged,
			  struct rf_diag *d) RF_WUR;

/* Publish the staged targets: a new snapshot and timestamp (written in that order, after the
 * files they name). Returns 0 or a negative errno. */
int rf_tuf_repo_publish(const char *dir, int64_t now, struct rf_diag *d) RF_WUR;

/*
 * Re-sign what is about to expire before now + within seconds, with new versions: the root
 * (same keys, signed by the root keys), the published targets (a staged, unpublished targets
 * version stays unpublished, re-signed above it), the snapshot (also whenever targets changed)
 * and the timestamp (whenever anything changed). Call it periodically with a window larger than the
 * polling period. *ret_changed (optional) tells whether anything was written.
 * Returns 0 or a negative errno.
 */
int rf_tuf_repo_refresh(const char *dir, int64_t now, int64_t within, bool *ret_changed,
			struct rf_diag *d) RF_WUR;

/*
 * Replace the keys of role with fresh ones (same count and threshold): a new root version
 * signed by the old root keys and by the new root keys, old key files moved to
 * DIR/keys/retired/; then the role's metadata is re-signed and published with new versions.
 * Returns 0 or a negative errno.
 */
int rf_tuf_repo_rotate(const char *dir, enum rf_tuf_role role, int64_t now,
		       struct rf_diag *d) RF_WUR;

/* "root", "timestamp", "snapshot", "targets" <-> enum rf_tuf_role. -EINVAL if unknown. */
int rf_tuf_role_from_name(const char *name, enum rf_tuf_role *ret) RF_WUR;
const char *rf_tuf_role_name(enum rf_tuf_role role);

#endif
