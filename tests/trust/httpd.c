/* The trust tests' static file server (see httpd.h). Loopback only; stopped by its owner. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "common/util.h"
#include "tests/trust/httpd.h"

#define ENDLESS_CAP (256ull * 1024 * 1024)

struct test_httpd {
	struct MHD_Daemon *mhd;
	char root[2048];
	char endless[512];
	atomic_uint requests;
};

static ssize_t endless_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	if (pos >= ENDLESS_CAP)
		return MHD_CONTENT_READER_END_OF_STREAM;
	memset(buf, '{', max);
	return (ssize_t)max;
}

/* A literal "/.." path segment (paths are not unescaped, so %2E%2E is a file name). */
static bool has_dotdot_segment(const char *url)
{
	for (const char *p = strstr(url, "/.."); p; p = strstr(p + 1, "/.."))
		if (p[3] == '/' || p[3] == '\0')
			return true;
	return false;
}

/* Any other method (POST, PUT, DELETE...) is echoed back (status 200, text/plain):
 * "METHOD\nX-Test: value\nContent-Type: value\n\n" and then the request body, collected in
 * *con_cls over the calls MHD makes while the body arrives (capped at ECHO_MAX: 413 beyond). */
#define ECHO_MAX (1u * 1024 * 1024)
struct echo_body {
	size_t n;
	bool over;
	char p[];
};

static enum MHD_Result echo(struct MHD_Connection *conn, const char *method, const char *upload,
			    size_t *upload_size, void **con_cls, atomic_uint *requests)
{
	struct echo_body *e = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!e) {
		if (!(e = malloc(sizeof(*e) + ECHO_MAX)))
			return MHD_NO;
		e->n = 0;
		e->over = false;
		*con_cls = e;
		atomic_fetch_add(requests, 1);
		return MHD_YES;
	}
	if (*upload_size) {
		if (*upload_size > ECHO_MAX - e->n)
			e->over = true;
		else
			memcpy(e->p + e->n, upload, *upload_size), e->n += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	const char *xt = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Test");
	const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	size_t cap = 256 + strlen(method) + (xt ? strlen(xt) : 0) + (ct ? strlen(ct) : 0) + e->n;
	char *out = malloc(cap);
	if (!out)
		return MHD_NO;
	int k = snprintf(out, cap, "%s\nX-Test: %s\nContent-Type: %s\n\n", method, xt ? xt : "",
			 ct ? ct : "");
	memcpy(out + k, e->p, e->n);
	resp = MHD_create_response_from_buffer((size_t)k + e->n, out, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(out);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, e->over ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct test_httpd *h = cls;
	struct MHD_Response *resp;
	char path[4096];
	uint8_t *buf = NULL;
	size_t n = 0;
	unsigned status = MHD_HTTP_OK;
	enum MHD_Result ret;

	(void)version;
	if (strcmp(method, "GET") != 0)
		return echo(conn, method, upload, upload_size, con_cls, &h->requests);
	atomic_fetch_add(&h->requests, 1);
	if (h->endless[0] && !strcmp(url, h->endless)) {
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, endless_cb,
							 NULL, NULL);
		goto send;
	}
	if (has_dotdot_segment(url) ||
	    snprintf(path, sizeof(path), "%s%s", h->root, url) >= (int)sizeof(path) ||
	    rf_file_read(path, 256u * 1024 * 1024, &buf, &n) < 0) {
		static const char nf[] = "not found";
		status = MHD_HTTP_NOT_FOUND;
		resp = MHD_create_response_from_buffer(sizeof(nf) - 1, (void *)nf,
						       MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_buffer(n, buf, MHD_RESPMEM_MUST_FREE);
		buf = NULL;
	}
send:
	free(buf);
	if (!resp)
		return MHD_NO;
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Keep %XX in paths as they are: files of URL-quoted role names are stored quoted. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *uri)
{
	(void)cls;
	(void)c;
	return strlen(uri);
}

int test_httpd_start(const char *root, struct test_httpd **ret, uint16_t *ret_port)
{
	struct test_httpd *h = calloc(1, sizeof(*h));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	const union MHD_DaemonInfo *info;

	if (!h)
		return -ENOMEM;
	snprintf(h->root, sizeof(h->root), "%s", root);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
				  NULL, answer, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				  MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
				  MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
	if (!h->mhd) {
		free(h);
		return -EADDRNOTAVAIL;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port) {
		test_httpd_stop(h);
		return -EADDRNOTAVAIL;
	}
	*ret_port = info->port;
	*ret = h;
	return 0;
}

void test_httpd_set_endless(struct test_httpd *h, const char *url_path)
{
	snprintf(h->endless, sizeof(h->endless), "%s", url_path ? url_path : "");
}

unsigned test_httpd_requests(const struct test_httpd *h)
{
	return atomic_load(&((struct test_httpd *)h)->requests);
}

void test_httpd_stop(struct test_httpd *h)
{
	if (!h)
		return;
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	free(h);
}
