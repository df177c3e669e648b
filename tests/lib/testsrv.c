/*
 * The server core under test (testsrv.h): the temp dir, repository, database and request
 * plumbing that the core-level server tests share, so that each test file holds only what it
 * checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "server/server-internal.h"
#include "testdb.h"
#include "testpack.h"
#include "testsrv.h"
#include "trust/tuf.h"

void rf_testsrv_prepare(struct rf_testsrv *t, const char *name, int npacks,
			rf_testsrv_custom_fn custom, void *ud)
{
	struct rf_tuf_repo_opts ro = {.keytype = RF_TUF_KEY_ED25519};
	struct rf_diag d = {0};
	int64_t now = rf_now_wall();

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/rf-test-%s-XXXXXX", name);
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->repo, sizeof(t->repo), "%s/repo", t->dir);
	assert_int_equal(rf_testdb_new(t->dir, "rf.db", t->db, sizeof(t->db)), 0);
	if (rf_tuf_repo_init(t->repo, &ro, now, &d) < 0)
		fail_msg("repo init: %s", d.first);
	for (int i = 1; i <= npacks; i++) {
		char path[64], meta[1024];
		uint8_t *pack;
		size_t n;
		snprintf(path, sizeof(path), "packs/rules-%d.rfp", i);
		if (rf_testpack((uint64_t)i, &pack, &n) < 0)
			fail_msg("the example pack ($RF_TEST_PACK) is not readable");
		custom(ud, i, meta, sizeof(meta));
		if (rf_tuf_repo_add(t->repo, path, pack, n, meta, now, &d) < 0)
			fail_msg("repo add %s: %s", path, d.first);
		free(pack);
	}
	if (rf_tuf_repo_publish(t->repo, now, &d) < 0)
		fail_msg("publish: %s", d.first);
}

void rf_testsrv_start(struct rf_testsrv *t, struct rf_server_opts *o)
{
	struct rf_diag d = {0};

	o->db_path = t->db;
	o->repo_dir = t->repo;
	rf_sha256(RF_TESTSRV_ADMIN, strlen(RF_TESTSRV_ADMIN), o->admin_hash);
	if (rf_server_new(o, &d, &t->s) < 0)
		fail_msg("server: %s", d.first);
}

int rf_testsrv_call(struct rf_testsrv *t, const char *method, const char *path, const char *auth,
		    const char *body, json_t **ret)
{
	char hdr[100];
	struct rf_server_request q = {method,
				      path,
				      NULL,
				      "application/json",
				      (const uint8_t *)(body ? body : ""),
				      body ? strlen(body) : 0,
				      NULL};
	struct rf_server_reply r;
	int st;

	if (auth) {
		snprintf(hdr, sizeof(hdr), "Bearer %s", auth);
		q.authorization = hdr;
	}
	assert_int_equal(rf_server_handle(t->s, &q, &r), 0);
	st = r.status;
	if (ret)
		*ret = json_loadb(r.body, r.len, 0, NULL);
	rf_server_reply_free(&r);
	return st;
}

void rf_testsrv_cleanup(struct rf_testsrv *t)
{
	char cmd[400];

	rf_server_free(t->s);
	t->s = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", t->dir);
}

int rf_testsrv_teardown(void **state)
{
	struct rf_testsrv *t = *state; /* the state's first member */

	rf_testsrv_cleanup(t);
	free(t);
	return 0;
}

void rf_testsrv_pack_sha(int i, char ret_hex[65])
{
	uint8_t h[32], *pack;
	size_t n;

	if (rf_testpack((uint64_t)i, &pack, &n) < 0)
		fail_msg("the example pack ($RF_TEST_PACK) is not readable");
	rf_sha256(pack, n, h);
	free(pack);
	rf_hex_encode(h, 32, ret_hex);
}

/* POST body to path with auth, 201 expected; member key of the reply copied to ret[n]. */
static void post_201(struct rf_testsrv *t, const char *path, const char *auth, const char *body,
		     const char *key, char *ret, size_t n)
{
	json_t *j = NULL;

	assert_int_equal(rf_testsrv_call(t, "POST", path, auth, body, &j), 201);
	snprintf(ret, n, "%s", json_string_value(json_object_get(j, key)));
	json_decref(j);
}

void rf_testsrv_tenant(struct rf_testsrv *t, const char *body, char *ret_tok, size_t n)
{
	post_201(t, "/v1/admin/tenants", RF_TESTSRV_ADMIN, body, "enrollment_token", ret_tok, n);
}

void rf_testsrv_enroll(struct rf_testsrv *t, const char *tok, const char *body, char *ret_cred,
		       size_t n)
{
	post_201(t, "/v1/enroll", tok, body, "credential", ret_cred, n);
}

void rf_testsrv_create_release(struct rf_testsrv *t, int i)
{
	char body[100];

	snprintf(body, sizeof(body), "{\"target\":\"packs/rules-%d.rfp\"}", i);
	assert_int_equal(
	    rf_testsrv_call(t, "POST", "/v1/admin/releases", RF_TESTSRV_ADMIN, body, NULL), 201);
}

void rf_testsrv_verify_health(struct rf_server *s, const char *what)
{
	char msg[256];
	int r;

	pthread_mutex_lock(&s->lock);
	r = rf__srv_health_verify(s, msg, sizeof(msg));
	pthread_mutex_unlock(&s->lock);
	if (r != 0)
		fail_msg("%s: incremental health differs from the recount: %s", what, msg);
}
