/*
 * A tiny static file server for the trust tests (libmicrohttpd): serves the files under one
 * directory on 127.0.0.1, on a free port, GET only for files, no directory listings, no ".."
 * in paths.
 * For the "endless data" attack it can also answer one path with an endless stream (bounded
 * at 256 MiB so a broken client cannot make the test run forever). Requests other than GET
 * are echoed back with status 200: "METHOD\nX-Test: v\nContent-Type: v\n\n" then the body
 * (for the tests of the HTTP client call in tests/common).
 */
#ifndef RF_TESTS_TRUST_HTTPD_H
#define RF_TESTS_TRUST_HTTPD_H

#include <stdint.h>

struct test_httpd;

/* Start serving root; *ret_port gets the port. Returns 0 or a negative errno. */
int test_httpd_start(const char *root, struct test_httpd **ret, uint16_t *ret_port);
/* Answer GETs of url_path (e.g. "/metadata/timestamp.json") with endless bytes; NULL: none. */
void test_httpd_set_endless(struct test_httpd *h, const char *url_path);
/* Number of requests served so far (to prove a cached file was not fetched again). */
unsigned test_httpd_requests(const struct test_httpd *h);
void test_httpd_stop(struct test_httpd *h);

#endif
