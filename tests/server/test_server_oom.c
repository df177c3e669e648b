/*
 * Allocation failure inside the server core, where no HTTP request can cause it on purpose:
 * the release table growing past its capacity. The test links with -Wl,--wrap=realloc, so
 * every realloc of the server library goes through __wrap_realloc below, which fails exactly
 * the call that would grow one chosen array (by its address) and passes every other call on.
 * It drives the core as the transport does (rf_server_handle, server.h) on a real database
 * (SQLite; PostgreSQL as server-oom-pg) and a real TUF repository in a temp dir, and checks
 * that after the failure every release's schedule is still readable (a check-in runs the
 * rollout engine over all of them; ASan reports any read of freed memory), that nothing was
 * written for the failed request (the database and memory agree), and that its retry
 * succeeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/util.h"
#include "server/server-internal.h"
#include "testdb.h"
#include "trust/tuf.h"

#define ADMIN "rfa_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define NREL  17 /* one past the first capacity (16): the 17th release grows the table */

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static void *fail_ptr; /* the next realloc of this block fails */

void *__wrap_realloc(void *p, size_t n)
{
	if (p && p == fail_ptr) {
		fail_ptr = NULL;
		return NULL;
	}
	return __real_realloc(p, n);
}

struct env {
	char dir[256], repo[300], db[300];
	struct rf_server *s;
	char cred[80];
};

/* One request; returns the status, *ret the parsed reply (may be NULL). */
static int call(struct env *e, const char *method, const char *path, const char *auth,
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
	assert_int_equal(rf_server_handle(e->s, &q, &r), 0);
	st = r.status;
	if (ret)
		*ret = json_loadb(r.body, r.len, 0, NULL);
	rf_server_reply_free(&r);
	return st;
}

static int create_release(struct env *e, int i)
{
	char body[100];

	snprintf(body, sizeof(body), "{\"target\":\"packs/rules-%d.rfp\"}", i);
	return call(e, "POST", "/v1/admin/releases", ADMIN, body, NULL);
}

static size_t releases_listed(struct env *e)
{
	json_t *j;
	size_t n;

	assert_int_equal(call(e, "GET", "/v1/admin/releases", ADMIN, NULL, &j), 200);
	n = json_array_size(json_object_get(j, "releases"));
	json_decref(j);
	return n;
}

static int count_release(void *ud, const struct rf_db_release *r)
{
	(*(size_t *)ud)++;
	return 0;
}

/* Releases in the database (a second connection, as a restarted server would read it). */
static size_t releases_stored(struct env *e)
{
	static const struct rf_db_visitor v = {.release = count_release};
	struct rf_db *st;
	size_t n = 0;

	assert_int_equal(rf_db_open(e->db, 0, NULL, &st), 0);
	assert_int_equal(rf_db_load(st, &v, &n), 0);
	rf_db_close(st);
	return n;
}

static void checkin_ok(struct env *e)
{
	json_t *j;

	assert_int_equal(call(e, "POST", "/v1/checkin", e->cred, "{\"device_id\":\"dev-1\"}", &j),
			 200);
	assert_string_equal(json_string_value(json_object_get(j, "action")), "install");
	json_decref(j);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct rf_tuf_repo_opts ro = {.keytype = RF_TUF_KEY_ED25519};
	struct rf_server_opts o = {.init = true};
	struct rf_diag d = {0};
	int64_t now = rf_now_wall();
	json_t *j;
	char tok[80];

	snprintf(e->dir, sizeof(e->dir), "/tmp/rf-test-server-oom-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->repo, sizeof(e->repo), "%s/repo", e->dir);
	assert_int_equal(rf_testdb_new(e->dir, "rf.db", e->db, sizeof(e->db)), 0);
	assert_int_equal(rf_tuf_repo_init(e->repo, &ro, now, &d), 0);
	for (int i = 1; i <= NREL; i++) {
		char name[64], custom[512], content[64];
		snprintf(name, sizeof(name), "packs/rules-%d.rfp", i);
		snprintf(
		    custom, sizeof(custom),
		    "{\"ringfence\":{\"release\":\"rel-%d\",\"schedule\":[{\"ring\":\"canary\","
		    "\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]}]}}",
		    i);
		snprintf(content, sizeof(content), "pack bytes %d", i);
		if (rf_tuf_repo_add(e->repo, name, (const uint8_t *)content, strlen(content),
				    custom, now, &d) < 0)
			fail_msg("repo add: %s", d.first);
	}
	if (rf_tuf_repo_publish(e->repo, now, &d) < 0)
		fail_msg("publish: %s", d.first);
	o.db_path = e->db;
	o.repo_dir = e->repo;
	rf_sha256(ADMIN, strlen(ADMIN), o.admin_hash);
	if (rf_server_new(&o, &d, &e->s) < 0)
		fail_msg("server: %s", d.first);
	assert_int_equal(
	    call(e, "POST", "/v1/admin/tenants", ADMIN, "{\"name\":\"t\",\"ring\":\"canary\"}", &j),
	    201);
	snprintf(tok, sizeof(tok), "%s", json_string_value(json_object_get(j, "enrollment_token")));
	json_decref(j);
	assert_int_equal(call(e, "POST", "/v1/enroll", tok, "{\"device_id\":\"dev-1\"}", &j), 201);
	snprintf(e->cred, sizeof(e->cred), "%s",
		 json_string_value(json_object_get(j, "credential")));
	json_decref(j);
	for (int i = 1; i < NREL; i++)
		assert_int_equal(create_release(e, i), 201);
	assert_int_equal(e->s->caprels, NREL - 1);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[400];

	rf_server_free(e->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", e->dir);
	free(e);
	return 0;
}

/* Growing fails at the array of schedule pointers (rr), the second of the two. */
static void test_rr_realloc_fails(void **state)
{
	struct env *e = *state;

	fail_ptr = e->s->rr;
	assert_int_equal(create_release(e, NREL), 503);
	assert_null(fail_ptr); /* the failure was injected */
	/* Every schedule pointer still points at its release: the check-in reads them all. */
	checkin_ok(e);
	assert_int_equal(releases_listed(e), NREL - 1);
	/* Nothing was stored for the failed request (memory and database agree), and its retry
	 * creates the release. */
	assert_int_equal(releases_stored(e), NREL - 1);
	assert_int_equal(create_release(e, NREL), 201);
	assert_int_equal(releases_listed(e), NREL);
	checkin_ok(e);
}

/* Growing fails at the release array itself. */
static void test_rels_realloc_fails(void **state)
{
	struct env *e = *state;

	fail_ptr = e->s->rels;
	assert_int_equal(create_release(e, NREL), 503);
	assert_null(fail_ptr);
	checkin_ok(e);
	assert_int_equal(releases_listed(e), NREL - 1);
	assert_int_equal(releases_stored(e), NREL - 1);
	assert_int_equal(create_release(e, NREL), 201);
	assert_int_equal(releases_listed(e), NREL);
	checkin_ok(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rr_realloc_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rels_realloc_fails, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
