/*
 * Storage errors are logged, rate-limited (server.c, store_log; docs/server.md "PostgreSQL"):
 * with PostgreSQL stopped under the core, every write request is answered 503 and each error
 * the store reports is counted (ringfence_store_errors_total); the first RF_SRV_STORE_LOG_BURST
 * are logged as warnings with the database's message, the rest are not, and when the next
 * error comes after RF_SRV_STORE_LOG_WINDOW_S seconds (the core's clock, a test clock here)
 * one line says how many were left out. Runs under tests/lib/pg.sh (server-store-log-pg).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ringfence/limits.h"
#include "server/server-internal.h"
#include "testdb.h"
#include "testsrv.h"

#define ADMIN RF_TESTSRV_ADMIN

struct env {
	struct rf_testsrv t;
	int64_t now;
	unsigned lines, summaries;
	unsigned long long left_out;
	char last[600];
};

static int64_t test_clock(void *ud)
{
	return ((struct env *)ud)->now;
}

static void capture(void *ud, int priority, const char *line)
{
	struct env *e = ud;

	if (strncmp(line, "storage: ", 9) != 0)
		return;
	assert_int_equal(priority, 4); /* a warning */
	if (sscanf(line, "storage: %llu more errors not logged", &e->left_out) == 1)
		e->summaries++;
	else
		e->lines++;
	snprintf(e->last, sizeof(e->last), "%s", line);
}

static uint64_t store_errors(struct env *e)
{
	return atomic_load(&e->t.s->m_store_errors);
}

static void test_storage_errors_logged_rate_limited(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char body[80];

	if (!rf_testdb_pg()) {
		free(e);
		skip();
	}
	assert_non_null(e);
	e->now = 1800000000;
	rf_testsrv_prepare(&e->t, "store-log", 0, NULL, NULL);
	struct rf_server_opts o = {
	    .init = true, .clock = test_clock, .clock_ud = e, .log = capture, .log_ud = e};
	rf_testsrv_start(&e->t, &o);
	assert_int_equal(rf_testsrv_call(&e->t, "POST", "/v1/admin/tenants", ADMIN,
					 "{\"name\":\"before\",\"ring\":null}", NULL),
			 201);
	assert_int_equal(e->lines, 0);

	assert_int_equal(rf_testdb_server(false), 0);
	enum { N = RF_SRV_STORE_LOG_BURST + 5 };
	for (int i = 0; i < N; i++) {
		snprintf(body, sizeof(body), "{\"name\":\"during-%d\",\"ring\":null}", i);
		assert_int_equal(
		    rf_testsrv_call(&e->t, "POST", "/v1/admin/tenants", ADMIN, body, NULL), 503);
	}
	uint64_t errors = store_errors(e);
	assert_true(errors >= N); /* each 503 had a store error behind it */
	assert_int_equal(e->lines, RF_SRV_STORE_LOG_BURST);
	assert_int_equal(e->summaries, 0);
	assert_non_null(strstr(e->last, "storage: postgresql: "));

	/* The window is over: the next error is logged, after a line counting those left out. */
	e->now += RF_SRV_STORE_LOG_WINDOW_S;
	assert_int_equal(rf_testsrv_call(&e->t, "POST", "/v1/admin/tenants", ADMIN,
					 "{\"name\":\"later\",\"ring\":null}", NULL),
			 503);
	assert_int_equal(e->summaries, 1);
	assert_int_equal(e->left_out, errors - RF_SRV_STORE_LOG_BURST);
	assert_int_equal(e->lines, RF_SRV_STORE_LOG_BURST + 1);

	assert_int_equal(rf_testdb_server(true), 0);
	rf_testsrv_cleanup(&e->t);
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_storage_errors_logged_rate_limited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
