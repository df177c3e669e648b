/*
 * The one HTTP client call of every program (libcurl): an agent's check-ins, the TUF client's
 * downloads, the operator CLI and the demo. The reply body is read into a capped buffer
 * (common/buf.h): the transfer stops at the first byte over the cap, and a server that announces
 * a longer body is refused before it sends one. Only http and https, no redirects (a server that
 * redirects is a configuration error, and following one would let it pick another origin), no
 * signals (safe in threads), and always a connect and a whole-transfer timeout.
 */
#ifndef RF_COMMON_HTTP_H
#define RF_COMMON_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "ringfence/error.h"

struct rf_http_request {
	const char *url;
	const char *method;	    /* NULL: GET, or POST when body != NULL */
	const char *const *headers; /* "Name: value" lines, NULL-terminated; or NULL */
	const void *body;	    /* sent as is, body_len bytes; NULL: no body */
	size_t body_len;
	size_t max;		    /* hard cap on the reply body (bytes; 0: no body allowed) */
	unsigned connect_timeout_s; /* 0: RF_HTTP_CONNECT_TIMEOUT_S */
	unsigned timeout_s;	    /* the whole exchange; 0: RF_HTTP_TIMEOUT_S */
	unsigned low_speed_s;	    /* abort when slower than 1 KiB/s for this long; 0: never */
	const char *user_agent;	    /* NULL: none */
	CURL *handle; /* an easy handle to reuse (reset before and after; its connection is
		       * kept for the next request), or NULL: one for this request only */
};

struct rf_http_reply {
	long status;   /* the HTTP status */
	uint8_t *body; /* NUL-terminated (the NUL not counted in len); the caller frees it */
	size_t len;
	/* The reply's Retry-After in seconds (its delta-seconds form, at most
	 * RF_HTTP_RETRY_AFTER_MAX_S); 0 when there is none or it is an HTTP date. */
	uint32_t retry_after_s;
};

/*
 * Perform one request. Returns 0 when the server answered, whatever the status (ret->status,
 * the body in ret); -E2BIG when the reply body is longer than req->max; -EIO when no answer
 * came (refused, timed out, reset, not HTTP); -ENOMEM; -EINVAL (no url). Every
 * failure is reported to reterr (libcurl's reason, never the URL). ret is written only on 0.
 */
int rf_http_fetch(const struct rf_http_request *req, struct rf_http_reply *ret,
		  struct rf_diag *reterr) RF_WUR;

#endif
