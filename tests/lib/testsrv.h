/*
 * The server core driven the way its transport drives it (rf_server_handle, src/server/server.h),
 * for test programs that look at the core's internals between requests: a temp dir holding a
 * real TUF repository of packs and a real database (testdb.h: SQLite, or PostgreSQL under
 * pg.sh), the core started on them with a known admin token, and one request at a time.
 * Everything here fails the running cmocka test on error, so callers need no checks.
 */
#ifndef RF_TESTS_TESTSRV_H
#define RF_TESTS_TESTSRV_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "server/server.h"

/* The admin token every test server accepts (its hash is the server's admin_hash). */
#define RF_TESTSRV_ADMIN "rfa_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

struct rf_testsrv {
	char dir[256], repo[300], db[300];
	struct rf_server *s; /* NULL until rf_testsrv_start */
};

/* Writes pack i's TUF custom metadata (the "ringfence" release and schedule) to buf[n]. */
typedef void (*rf_testsrv_custom_fn)(void *ud, int i, char *buf, size_t n);

/*
 * A new temp dir /tmp/rf-test-<name>-XXXXXX holding a TUF repository (dir/repo) with npacks
 * packs "packs/rules-<i>.rfp", i = 1..npacks, whose bytes are the example pack with sequence
 * number i (testpack.h: release create accepts only packs) and whose custom
 * metadata custom() writes, signed and published at the wall clock; and a new empty test
 * database (rf_testdb_new: dir/rf.db for SQLite).
 */
void rf_testsrv_prepare(struct rf_testsrv *t, const char *name, int npacks,
			rf_testsrv_custom_fn custom, void *ud);

/* Start the core on t's database and repository with the options in o (o's db_path, repo_dir
 * and admin_hash are filled in here). */
void rf_testsrv_start(struct rf_testsrv *t, struct rf_server_opts *o);

/* One request (body JSON, or NULL for none; auth the bearer token or NULL). Returns the HTTP
 * status; *ret, when ret is not NULL, the parsed reply (NULL if it is not JSON; the caller
 * decrefs it). */
int rf_testsrv_call(struct rf_testsrv *t, const char *method, const char *path, const char *auth,
		    const char *body, json_t **ret);

/* Free the core (if started) and remove the temp dir. */
void rf_testsrv_cleanup(struct rf_testsrv *t);

/* A cmocka teardown for a test state allocated with malloc whose first member is its struct
 * rf_testsrv: rf_testsrv_cleanup, then free. */
int rf_testsrv_teardown(void **state);

/* The sha256 (hex) of pack i's bytes as rf_testsrv_prepare writes them (rf_testpack(i)). */
void rf_testsrv_pack_sha(int i, char ret_hex[65]);

/* A new tenant (body: the POST /v1/admin/tenants JSON); its enrollment token in ret_tok[n]. */
void rf_testsrv_tenant(struct rf_testsrv *t, const char *body, char *ret_tok, size_t n);

/* Enroll a device with token tok (body: the POST /v1/enroll JSON); its credential in
 * ret_cred[n]. */
void rf_testsrv_enroll(struct rf_testsrv *t, const char *tok, const char *body, char *ret_cred,
		       size_t n);

/* Create the release of pack i ("packs/rules-<i>.rfp"): 201. */
void rf_testsrv_create_release(struct rf_testsrv *t, int i);

/* The incremental health of s equals the recount (rf__srv_health_verify, under the lock), or
 * the test fails with "<what>: incremental health differs from the recount: <why>". */
void rf_testsrv_verify_health(struct rf_server *s, const char *what);

#endif
