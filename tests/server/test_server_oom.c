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

#include "server/server-internal.h"
#include "testsrv.h"

#define ADMIN RF_TESTSRV_ADMIN
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
	struct rf_testsrv t;
	char cred[80];
};

/* One request; returns the status, *ret the parsed reply (may be NULL). */
static int call(struct env *e, const char *method, const char *path, const char *auth,
		const char *body, json_t **ret)
{
	return rf_testsrv_call(&e->t, method, path, auth, body, ret);
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

	assert_int_equal(rf_db_open(e->t.db, 0, NULL, &st), 0);
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

/* Pack i: canary only, 100 % at once. */
static void canary_now(void *ud, int i, char *buf, size_t n)
{
	(void)ud;
	snprintf(buf, n,
		 "{\"ringfence\":{\"release\":\"rel-%d\",\"schedule\":[{\"ring\":\"canary\","
		 "\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]}]}}",
		 i);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct rf_server_opts o = {.init = true};
	char tok[80];

	assert_non_null(e);
	rf_testsrv_prepare(&e->t, "server-oom", NREL, canary_now, NULL);
	rf_testsrv_start(&e->t, &o);
	rf_testsrv_tenant(&e->t, "{\"name\":\"t\",\"ring\":\"canary\"}", tok, sizeof(tok));
	rf_testsrv_enroll(&e->t, tok, "{\"device_id\":\"dev-1\"}", e->cred, sizeof(e->cred));
	for (int i = 1; i < NREL; i++)
		assert_int_equal(create_release(e, i), 201);
	assert_int_equal(e->t.s->caprels, NREL - 1);
	*state = e;
	return 0;
}

/* Growing fails at the array of schedule pointers (rr), the second of the two. */
static void test_rr_realloc_fails(void **state)
{
	struct env *e = *state;

	fail_ptr = e->t.s->rr;
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

	fail_ptr = e->t.s->rels;
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
	    cmocka_unit_test_setup_teardown(test_rr_realloc_fails, setup, rf_testsrv_teardown),
	    cmocka_unit_test_setup_teardown(test_rels_realloc_fails, setup, rf_testsrv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
