/*
 * libmicrohttpd glue (http.h). Each connection gets a small request state holding the body as
 * it arrives; a body longer than rf_server_body_max(path) (by Content-Length or as it streams)
 * is answered 413 without being stored, so a client can never make us hold more than the limit.
 * Invariant: exactly one response is queued per request, and the request state is freed by
 * the completion callback whatever happened.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/buf.h"
#include "common/util.h"
#include "ringfence/limits.h"
#include "server/http.h"

struct rf_http {
	struct MHD_Daemon *d;
	struct rf_server *s;
	uint16_t port;
};

struct req {
	struct rf_buf body; /* capped at the route's limit (rf_server_body_max) */
	bool too_large;
};

static const char too_large_json[] = "{\"error\":{\"status\":413,\"code\":\"too_large\","
				     "\"message\":\"request body over the limit\"}}";

static enum MHD_Result queue_static(struct MHD_Connection *c, unsigned status, const char *body)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result r;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct rf_http *h = cls;
	struct req *q = *con_cls;

	if (!q) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		uint64_t n = 0;

		q = calloc(1, sizeof(*q));
		if (!q)
			return MHD_NO;
		q->body.max = rf_server_body_max(url);
		*con_cls = q;
		/* Declared too large: answer now, before a byte of the body is read (MHD then
		 * discards the body and closes the connection). */
		if (cl && (rf_parse_u64(cl, &n) < 0 || n > q->body.max)) {
			q->too_large = true;
			return queue_static(c, 413, too_large_json);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;

		*upload_size = 0;
		int r = q->too_large ? -E2BIG : rf_buf_append(&q->body, upload, n);
		if (r == -E2BIG)
			q->too_large = true;
		return r == -ENOMEM ? MHD_NO : MHD_YES;
	}
	if (q->too_large)
		return queue_static(c, 413, too_large_json);

	struct rf_server_request rq = {
	    .method = method,
	    .path = url,
	    .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
	    .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
	    .body = q->body.p ? q->body.p : (const uint8_t *)"",
	    .body_len = q->body.n,
	};
	struct rf_server_reply rp;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (rf_server_handle(h->s, &rq, &rp) < 0) {
		rf_server_reply_free(&rp);
		return queue_static(c, 503,
				    "{\"error\":{\"status\":503,\"code\":\"unavailable\","
				    "\"message\":\"out of memory\"}}");
	}
	if (rp.fd >= 0) {
		resp = MHD_create_response_from_fd64(rp.fd_len, rp.fd);
		if (resp)
			rp.fd = -1; /* the response owns it now */
	} else {
		resp = MHD_create_response_from_buffer_with_free_callback(rp.len, rp.body, free);
		if (resp)
			rp.body = NULL;
	}
	if (!resp) {
		rf_server_reply_free(&rp);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rp.content_type);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (!strncmp(url, "/v1/", 4))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(c, (unsigned)rp.status, resp);
	MHD_destroy_response(resp);
	rf_server_reply_free(&rp);
	return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct req *q = *con_cls;

	if (q) {
		rf_buf_free(&q->body);
		free(q);
	}
	*con_cls = NULL;
}

int rf_http_start(struct rf_server *s, const char *addr, unsigned threads, struct rf_diag *diag,
		  struct rf_http **ret)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	char ip[64];
	uint64_t port;
	struct rf_http *h;

	if (!colon || (size_t)(colon - addr) >= sizeof(ip) || rf_parse_u64(colon + 1, &port) < 0 ||
	    port > 65535)
		return rf_diag_report(diag, -EINVAL, "listen address '%s' is not IPv4:PORT",
				      addr ? addr : "");
	memcpy(ip, addr, (size_t)(colon - addr));
	ip[colon - addr] = 0;
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return rf_diag_report(diag, -EINVAL, "listen address '%s' is not IPv4:PORT", addr);
	sa.sin_port = htons((uint16_t)port);
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 1;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->s = s;
	h->d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_USE_ERROR_LOG,
				0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &sa,
				MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
				RF_SRV_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
				RF_SRV_CONN_TIMEOUT_S, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024,
				MHD_OPTION_NOTIFY_COMPLETED, on_done, h, MHD_OPTION_END);
	if (!h->d) {
		free(h);
		return rf_diag_report(diag, -EADDRINUSE,
				      "cannot listen on %s (in use or not permitted)", addr);
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : (uint16_t)port;
	*ret = h;
	return 0;
}

uint16_t rf_http_port(const struct rf_http *h)
{
	return h->port;
}

void rf_http_stop(struct rf_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
