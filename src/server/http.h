/*
 * The HTTP transport of ringfenced: libmicrohttpd in epoll mode with an internal thread pool,
 * feeding every request to rf_server_handle() (server.h). It enforces the transport rules and
 * limits and nothing else (every protocol rule lives in the server core): body size per path
 * before the body is read, connection count in all and per client address, idle timeout; a
 * request that a proxy in front could read differently (more than one Content-Length or Host,
 * Content-Length with Transfer-Encoding, HTTP/1.1 without Host) is refused with 400; the path
 * is %-decoded here, and one that decodes to a NUL byte or has a broken escape is refused with
 * 400, so the core never sees a path cut short by a NUL; a transfer coding other than chunked
 * is refused at once (400/501); HEAD reaches the core as GET (libmicrohttpd drops the body).
 */
#ifndef RF_SERVER_HTTP_H
#define RF_SERVER_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "server/server.h"

struct rf_http;

struct rf_http_opts {
	const char *addr;	  /* "IP:PORT", IPv4 (port 0 picks a free port), or "unix:PATH" */
	bool have_fd;		  /* serve listen_fd instead of binding addr */
	int listen_fd;		  /* rf_http_listen's; rf_http_start owns it */
	unsigned threads;	  /* worker threads; 0: one per CPU */
	unsigned max_connections; /* 0: RF_SRV_CONNECTIONS_MAX */
	unsigned per_ip_connections; /* connections from one address; 0: no such limit */
};

/*
 * Bind and listen on addr and return the socket in *ret_fd, so that a program can take its
 * address before it creates anything else. addr is "IP:PORT" (IPv4; port 0 picks a free port)
 * or "unix:PATH" (a unix socket, mode 0660, for a proxy on the same host: no TCP between the
 * two; a stale socket file at PATH is replaced, anything else there is refused with -EEXIST,
 * a socket someone serves with -EADDRINUSE; no client addresses, so no per-address limit).
 * Returns 0; -EINVAL bad address; the negative errno of socket(), bind() or listen()
 * (-EADDRINUSE, -EACCES, -EADDRNOTAVAIL...) with diag naming the address and the reason.
 */
int rf_http_listen(const char *addr, struct rf_diag *diag, int *ret_fd) RF_WUR;

/*
 * Serve s (which must outlive the listener) on o->listen_fd, or on o->addr (bound here as
 * rf_http_listen does). Returns 0 and *ret; the errors of rf_http_listen; -EIO when
 * libmicrohttpd cannot start; -ENOMEM.
 */
int rf_http_start(struct rf_server *s, const struct rf_http_opts *o, struct rf_diag *diag,
		  struct rf_http **ret) RF_WUR;

/* Whether addr is a unix socket address ("unix:PATH"). */
bool rf_http_is_unix(const char *addr);

/* The port actually bound (useful with port 0); 0 for a unix socket. */
uint16_t rf_http_port(const struct rf_http *h);

/* Stop accepting, finish in-flight requests, remove the unix socket file this listener made
 * (if it is still that one), free (NULL ok). */
void rf_http_stop(struct rf_http *h);

#endif
