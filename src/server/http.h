/*
 * The HTTP transport of ringfenced: libmicrohttpd in epoll mode with an internal thread pool,
 * feeding every request to rf_server_handle() (server.h). It enforces the transport limits
 * (body size per path before the body is read, connection count, idle timeout) and nothing
 * else: every protocol rule lives in the server core.
 */
#ifndef RF_SERVER_HTTP_H
#define RF_SERVER_HTTP_H

#include <stdint.h>

#include "server/server.h"

struct rf_http;

/*
 * Listen on addr ("IP:PORT", IPv4; port 0 picks a free port) with threads worker threads
 * (0: one per CPU) and serve s (which must outlive the listener). Returns 0 and *ret;
 * -EINVAL bad address; -EADDRINUSE or -EIO when libmicrohttpd cannot start; -ENOMEM.
 */
int rf_http_start(struct rf_server *s, const char *addr, unsigned threads, struct rf_diag *diag,
		  struct rf_http **ret) RF_WUR;

/* The port actually bound (useful with port 0). */
uint16_t rf_http_port(const struct rf_http *h);

/* Stop accepting, finish in-flight requests, free (NULL ok). */
void rf_http_stop(struct rf_http *h);

#endif
