/*
 * The TUF tests' fixture: a repository made by the real writer (rf_tuf_repo_*) and served by
 * the test HTTP server on 127.0.0.1, a client metadata directory initialised with its root, and
 * the tools the attack tests use - re-signing forged metadata with the repository's own key
 * files, delegations, and byte-for-byte snapshots of the client's trusted state.
 */
#ifndef RF_TESTS_TRUST_TUF_FIXTURE_H
#define RF_TESTS_TRUST_TUF_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "trust/tuf-internal.h"

#define PACK	  "rules pack v1: 0123456789"
#define PACK_NAME "packs/a.rfp"
#define CUSTOM	  "{\"ramp\":[{\"ring\":0,\"at\":0,\"pct\":5}],\"note\":\"\xc3\xa9\"}"

struct fx {
	char base[256], repo[320], md[320], tdir[320], meta[400];
	char murl[128], turl[128];
	struct test_httpd *h;
	uint16_t port;
};

struct keys {
	EVP_PKEY *k[16];
	char id[16][65];
	size_t n;
};

enum { SIGN_DUP_FIRST = 1, SIGN_ONLY_FIRST = 2, SIGN_GARBAGE_EXTRA = 4 };

/* A diag emitter that prints to stderr (the test log). */
void diag_print(void *ud, int code, const char *msg);

/* A repository (threshold keys per role of type kt) holding PACK as PACK_NAME with CUSTOM,
 * published and served; a client directory initialised with root v1. */
struct fx *fx_new(unsigned threshold, enum rf_tuf_keytype kt);
void fx_free(struct fx *f);

/* One client run: refresh (at now; 0 the system clock), or refresh + look up + download name
 * (*ret, optional, gets the target record). Return the first error. */
int refresh_at(struct fx *f, int64_t now);
int refresh(struct fx *f);
int download(struct fx *f, const char *name, struct rf_tuf_target **ret);

/* sha256 over the sorted (name, bytes) of every file in dir; of one trusted file ("-" absent) */
void dir_state(const char *dir, char out[65]);
void file_state(struct fx *f, const char *name, char out[65]);
void assert_file(struct fx *f, const char *name, const char *before);
void assert_state(struct fx *f, const char *before);

void put_file(const char *dir, const char *name, const void *p, size_t n);
void copy_file(const char *dir, const char *from, const char *to);

/* The "signed" object of a published metadata file (new reference); its version. */
json_t *read_signed(struct fx *f, const char *file);
uint64_t version(json_t *s);
void bump(json_t *s);

/* The private keys of a top-level role, as the newest root lists them. */
void role_keys(struct fx *f, const char *role, struct keys *ks);
void keys_free(struct keys *ks);

/* Sign `signed` (borrowed) with ks and write it to DIR/repository/metadata/file. */
void write_md(struct fx *f, const char *file, json_t *s, const struct keys *ks, int flags);
/* A new timestamp (version current+1, or v if nonzero) naming snapshot version sv. */
void write_timestamp(struct fx *f, uint64_t sv, uint64_t v, int flags);
/* A new snapshot (current+1) whose meta is `meta` (stolen), and a timestamp naming it. */
void write_snapshot(struct fx *f, json_t *meta);
/* root (borrowed) with its version bumped, signed by signers, as N.root.json. */
void new_root(struct fx *f, json_t *root, const struct keys *signers);

/* Targets v(N+1) delegating through `field` (roles / succinct_roles: value, stolen) to key dk;
 * delegated role i written as 1.<quoted names[i]>.json signed by dk holding dtargets[i]
 * (stolen); a snapshot listing them all. delegate: the same for an explicit roles array. */
void delegate_ex(struct fx *f, EVP_PKEY *dk, const char *field, json_t *value,
		 const char *const *names, json_t **dtargets, size_t n);
void delegate(struct fx *f, EVP_PKEY *dk, json_t *roles, json_t **dtargets, size_t n);
/* A target entry for bytes p (NUL-terminated), with its file placed on the server. */
json_t *target_entry(struct fx *f, const char *name, const char *p);
/* A delegated role entry: exactly one of paths / prefixes (stolen) is given. */
json_t *drole(const char *name, bool term, json_t *paths, json_t *prefixes, const char *keyid);

#endif
