/*
 * Tests of the HTTP client call (rf_http_fetch, src/common/http.h) against a real HTTP server
 * on 127.0.0.1 (tests/trust/httpd.c: files, an endless chunked stream, and an echo of any
 * request that is not a GET): replies of any status, the byte cap both when the server
 * announces the length and when it streams without one, the largest cap, request bodies
 * (binary, with NUL bytes) and headers, methods, a reused handle, only http(s), and the
 * failures with no answer (refused, a server that never answers, within the caller's timeout).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/http.h"
#include "common/util.h"
#include "tests/trust/httpd.h"

#define BIG_LEN (100u * 1024)

struct env {
	char dir[64];
	struct test_httpd *h;
	uint16_t port;
	uint8_t big[BIG_LEN];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char path[128];

	if (!e)
		return -1;
	snprintf(e->dir, sizeof(e->dir), "/tmp/rf-test-http-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	for (size_t i = 0; i < BIG_LEN; i++)
		e->big[i] = (uint8_t)(i * 131 + (i >> 8));
	snprintf(path, sizeof(path), "%s/big.bin", e->dir);
	if (rf_file_write_atomic(path, e->big, BIG_LEN, 0644) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/small.txt", e->dir);
	if (rf_file_write_atomic(path, "hello, world\n", 13, 0644) < 0)
		return -1;
	if (test_httpd_start(e->dir, &e->h, &e->port) < 0)
		return -1;
	test_httpd_set_endless(e->h, "/endless");
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char path[128];

	test_httpd_stop(e->h);
	snprintf(path, sizeof(path), "%s/big.bin", e->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/small.txt", e->dir);
	unlink(path);
	rmdir(e->dir);
	free(e);
	return 0;
}

static const char *url(const struct env *e, const char *path)
{
	static char u[256];
	snprintf(u, sizeof(u), "http://127.0.0.1:%u%s", e->port, path);
	return u;
}

static void test_get_any_status(void **state)
{
	struct env *e = *state;
	struct rf_http_reply rep;
	struct rf_diag d = {0};
	struct rf_http_request q = {.url = url(e, "/small.txt"), .max = 1024};

	assert_int_equal(rf_http_fetch(&q, &rep, &d), 0);
	assert_int_equal(rep.status, 200);
	assert_int_equal(rep.len, 13);
	assert_memory_equal(rep.body, "hello, world\n", 14); /* NUL-terminated */
	free(rep.body);

	q.url = url(e, "/big.bin");
	q.max = BIG_LEN;
	assert_int_equal(rf_http_fetch(&q, &rep, &d), 0);
	assert_int_equal(rep.len, BIG_LEN);
	assert_memory_equal(rep.body, e->big, BIG_LEN);
	assert_int_equal(rep.body[BIG_LEN], 0);
	free(rep.body);

	/* A 404 is an answer: 0, with its status and body. */
	q.url = url(e, "/no-such-file");
	assert_int_equal(rf_http_fetch(&q, &rep, &d), 0);
	assert_int_equal(rep.status, 404);
	assert_memory_equal(rep.body, "not found", 9);
	free(rep.body);
	assert_int_equal(d.count, 0);
}

static void test_cap(void **state)
{
	struct env *e = *state;
	struct rf_http_reply rep = {.status = -7};
	struct rf_diag d = {0};
	struct rf_http_request q = {.url = url(e, "/big.bin"), .max = BIG_LEN - 1};

	/* Announced (Content-Length) one byte over the cap: refused. */
	assert_int_equal(rf_http_fetch(&q, &rep, &d), -E2BIG);
	assert_int_equal(d.count, 1);
	assert_non_null(strstr(d.first, "limit of 102399 bytes"));
	assert_int_equal(rep.status, -7); /* ret untouched on failure */
	/* Streamed without a length (chunked, endless): cut at the cap. */
	q.url = url(e, "/endless");
	q.max = 256 * 1024;
	assert_int_equal(rf_http_fetch(&q, &rep, &d), -E2BIG);
	assert_int_equal(d.first_code, -E2BIG);
	/* A cap of 0 allows only an empty body. */
	q.url = url(e, "/small.txt");
	q.max = 0;
	assert_int_equal(rf_http_fetch(&q, &rep, &d), -E2BIG);
	/* The largest cap (no CURLOPT_MAXFILESIZE, the buffer's own overflow checks). */
	q.max = SIZE_MAX;
	assert_int_equal(rf_http_fetch(&q, &rep, &d), 0);
	assert_int_equal(rep.len, 13);
	free(rep.body);
	assert_int_equal(d.count, 3);
}

static void test_post_body_and_headers(void **state)
{
	struct env *e = *state;
	static const uint8_t body[] = {'{', '"', 'a', '"', ':', 0, 1, 0xff, '}'};
	const char *const headers[] = {"X-Test: hello there", "Content-Type: application/json",
				       NULL};
	struct rf_http_reply rep;
	struct rf_diag d = {0};
	struct rf_http_request q = {.url = url(e, "/echo"),
				    .headers = headers,
				    .body = body,
				    .body_len = sizeof(body),
				    .max = 4096};
	const char head[] = "POST\nX-Test: hello there\nContent-Type: application/json\n\n";

	assert_int_equal(rf_http_fetch(&q, &rep, &d), 0);
	assert_int_equal(rep.status, 200);
	assert_int_equal(rep.len, sizeof(head) - 1 + sizeof(body));
	assert_memory_equal(rep.body, head, sizeof(head) - 1);
	assert_memory_equal(rep.body + sizeof(head) - 1, body, sizeof(body));
	free(rep.body);

	/* Another method with a body, one without, and an empty body. */
	q.method = "PUT";
	assert_int_equal(rf_http_fetch(&q, &rep, &d), 0);
	assert_memory_equal(rep.body, "PUT\n", 4);
	free(rep.body);
	q.method = "DELETE";
	q.body = NULL;
	q.headers = NULL;
	assert_int_equal(rf_http_fetch(&q, &rep, &d), 0);
	assert_string_equal((char *)rep.body, "DELETE\nX-Test: \nContent-Type: \n\n");
	free(rep.body);
	q.method = NULL;
	q.body = "";
	q.body_len = 0;
	assert_int_equal(rf_http_fetch(&q, &rep, &d), 0);
	assert_memory_equal(rep.body, "POST\n", 5);
	free(rep.body);
	/* The reply cap applies to echoes too. */
	q.body = body;
	q.body_len = sizeof(body);
	q.max = 20;
	assert_int_equal(rf_http_fetch(&q, &rep, &d), -E2BIG);
}

static void test_reused_handle(void **state)
{
	struct env *e = *state;
	CURL *c = curl_easy_init();
	struct rf_http_reply rep;
	struct rf_diag d = {0};
	struct rf_http_request q = {.url = url(e, "/small.txt"), .max = 64, .handle = c};
	unsigned before = test_httpd_requests(e->h);

	assert_non_null(c);
	for (int i = 0; i < 3; i++) {
		q.url = url(e, i == 1 ? "/echo" : "/small.txt");
		q.body = i == 1 ? "x" : NULL;
		q.body_len = 1;
		assert_int_equal(rf_http_fetch(&q, &rep, &d), 0);
		assert_int_equal(rep.status, 200);
		assert_memory_equal(rep.body, i == 1 ? "POST\n" : "hello", 5);
		free(rep.body);
	}
	assert_int_equal(test_httpd_requests(e->h) - before, 3);
	curl_easy_cleanup(c);
}

static void test_no_answer(void **state)
{
	struct env *e = *state;
	struct rf_http_reply rep;
	struct rf_diag d = {0};
	struct rf_http_request q = {.max = 64};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	char u[128];
	int s = socket(AF_INET, SOCK_STREAM, 0);

	(void)e;
	/* A port nobody listens on: bind one, read its number, close it. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	close(s);
	snprintf(u, sizeof(u), "http://127.0.0.1:%u/", ntohs(sa.sin_port));
	q.url = u;
	assert_int_equal(rf_http_fetch(&q, &rep, &d), -EIO);
	assert_int_equal(d.count, 1);
	assert_null(strstr(d.first, "127.0.0.1")); /* the URL is never in the diagnostic */

	/* A server that accepts the connection and never answers: the caller's timeout. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_port = 0;
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s, 4), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	snprintf(u, sizeof(u), "http://127.0.0.1:%u/", ntohs(sa.sin_port));
	q.timeout_s = 1;
	assert_int_equal(rf_http_fetch(&q, &rep, &d), -EIO);
	close(s);

	/* Only http and https. */
	q.url = "file:///etc/hostname";
	assert_int_equal(rf_http_fetch(&q, &rep, &d), -EIO);
	q.url = NULL;
	assert_int_equal(rf_http_fetch(&q, &rep, &d), -EINVAL);
	assert_int_equal(d.count, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_any_status),
	    cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_post_body_and_headers),
	    cmocka_unit_test(test_reused_handle),
	    cmocka_unit_test(test_no_answer),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
