/*
 * The HTTP transport of ringfenced: libmicrohttpd in epoll mode with an internal thread pool,
 * feeding every request to rf_server_handle() (server.h). It enforces the transport rules and
 * limits and nothing else (every protocol rule lives in the server core): body size per path
 * before the body is read, connection count in all and per client address, idle timeout; a
 * request that a proxy in front could read differently (more than one Content-Length or Host,
 * Content-Length with Transfer-Encoding, HTTP/1.1 without Host) is refused with 400; the path
 * is %-decoded here, and one that decodes to a NUL byte or has a broken escape is refused with
 * 400, so the core never sees a path cut short by a NUL.
 */
#ifndef RF_SERVER_HTTP_H
#define RF_SERVER_HTTP_H

#include <stdint.h>

#include "server/server.h"

struct rf_http;

struct rf_http_opts {
	const char *addr;	     /* "IP:PORT", IPv4; port 0 picks a free port */
	unsigned threads;	     /* worker threads; 0: one per CPU */
	unsigned max_connections;    /* 0: RF_SRV_CONNECTIONS_MAX */
	unsigned per_ip_connections; /* connections from one address; 0: no such limit */
};

/*
 * Listen as o says and serve s (which must outlive the listener). Returns 0 and *ret;
 * -EINVAL bad address; -EADDRINUSE when libmicrohttpd cannot start; -ENOMEM.
 */
int rf_http_start(struct rf_server *s, const struct rf_http_opts *o, struct rf_diag *diag,
		  struct rf_http **ret) RF_WUR;

/* The port actually bound (useful with port 0). */
uint16_t rf_http_port(const struct rf_http *h);

/* Stop accepting, finish in-flight requests, free (NULL ok). */
void rf_http_stop(struct rf_http *h);

#endif
