/*
 * libmicrohttpd glue (http.h). Each connection gets a small request state holding the decoded
 * path and the body as it arrives; a body longer than rf_server_body_max(path) (by
 * Content-Length or as it streams) is answered 413 without being stored, so a client can never
 * make us hold more than the limit. The transport checks (header counts, path decoding) run at
 * the first call for a request, before a byte of the body is read.
 * Invariant: exactly one response is queued per request, and the request state is freed by
 * the completion callback whatever happened.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>

#include <microhttpd.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "server/http.h"

struct req;

struct rf_http {
	struct MHD_Daemon *d;
	struct rf_server *s;
	uint16_t port;
	/* Reports waiting for their commit without a thread (rf_server_handle_async): their
	 * connections are suspended, in the list suspended; mu guards it, each req's suspended
	 * and ready, and stopping (rf_http_stop resumes them all before MHD stops: libmicrohttpd
	 * must not be stopped with a connection suspended). Lock order: the server's lock (wake
	 * is called with it held), then mu. */
	pthread_mutex_t mu;
	struct req *suspended;
	bool stopping;
	/* unix:PATH: the socket file this listener made (removed at stop if it is still that). */
	char *sock_path;
	dev_t sock_dev;
	ino_t sock_ino;
};

struct req {
	char *path; /* %-decoded, NUL-free */
	uint8_t *body;
	size_t len, cap, max;
	bool refused;	/* an error reply was queued at the first call: the body is discarded */
	bool too_large; /* the body streamed past max: answered 413 when it ends */
	/* A report waiting for its commit (rf_server_handle_async). */
	struct rf_http *h;
	struct MHD_Connection *c;
	struct rf_server_pending *pending;
	struct req *next, **prev; /* in h->suspended while suspended */
	bool suspended;		  /* its connection is suspended (h->mu) */
	bool ready;		  /* woken before it was suspended (h->mu) */
};

static const char too_large_json[] = "{\"error\":{\"status\":413,\"code\":\"too_large\","
				     "\"message\":\"request body over the limit\"}}";

#define STR_(x) #x
#define STR(x)	STR_(x)
/* Retry-After of every 503 (limits.h), as header text. */
#define RETRY_AFTER STR(RF_SRV_RETRY_AFTER_S)

static enum MHD_Result queue_static(struct MHD_Connection *c, unsigned status, const char *body)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result r;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (status == 503)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER);
	r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* A 400 "malformed_request" (or status, code) with a fixed message (no request bytes in it);
 * the connection is closed after it. */
static enum MHD_Result queue_refusal(struct MHD_Connection *c, unsigned status, const char *code,
				     const char *msg)
{
	char body[256];
	int n = snprintf(body, sizeof(body),
			 "{\"error\":{\"status\":%u,\"code\":\"%s\","
			 "\"message\":\"%s\"}}",
			 status, code, msg);
	struct MHD_Response *resp;
	enum MHD_Result r;

	if (n < 0 || (size_t)n >= sizeof(body))
		return MHD_NO;
	resp = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result queue_bad_request(struct MHD_Connection *c, const char *msg)
{
	return queue_refusal(c, MHD_HTTP_BAD_REQUEST, "malformed_request", msg);
}

/* The paths reach us undecoded (see unescape_none): decoding is done in decode_path. */
static size_t unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

/* %-decode raw into out (at least strlen(raw) + 1 bytes). Returns 0; -EBADMSG for a '%' not
 * followed by two hex digits or an escape that decodes to NUL (a C string would end there:
 * "/repo/metadata/root.json%00.txt" must not read as "root.json"). */
static int decode_path(const char *raw, char *out)
{
	size_t o = 0;

	for (size_t i = 0; raw[i]; i++) {
		if (raw[i] != '%') {
			out[o++] = raw[i];
			continue;
		}
		int hi = raw[i + 1] ? rf_hex_digit((uint8_t)raw[i + 1]) : -1;
		int lo = hi >= 0 && raw[i + 2] ? rf_hex_digit((uint8_t)raw[i + 2]) : -1;
		if (lo < 0 || (hi | lo) == 0)
			return -EBADMSG;
		out[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	out[o] = 0;
	return 0;
}

static bool name_is(const char *key, const char *want)
{
	for (; *key && *want; key++, want++) {
		char c = *key;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != *want)
			return false;
	}
	return *key == *want;
}

struct hdr_count {
	unsigned host, content_length, transfer_encoding;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct hdr_count *n = cls;

	if (name_is(key, "host"))
		n->host++;
	else if (name_is(key, "content-length"))
		n->content_length++;
	else if (name_is(key, "transfer-encoding"))
		n->transfer_encoding++;
	return MHD_YES;
}

/* Why the headers could be framed differently by a proxy in front of us (request smuggling,
 * RFC 9112 6.3 and 3.2), or NULL when they are unambiguous. */
static const char *ambiguous_headers(struct MHD_Connection *c, const char *version)
{
	struct hdr_count n = {0};

	MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &n);
	if (n.content_length > 1)
		return "more than one Content-Length header";
	if (n.transfer_encoding > 1)
		return "more than one Transfer-Encoding header";
	if (n.content_length && n.transfer_encoding)
		return "both Content-Length and Transfer-Encoding";
	if (n.host > 1)
		return "more than one Host header";
	if (n.host == 0 && version && strcmp(version, MHD_HTTP_VERSION_1_0) != 0)
		return "an HTTP/1.1 request needs a Host header";
	return NULL;
}

/* Why a Transfer-Encoding value te cannot be read, or NULL when it is exactly "chunked" (any
 * case, optional whitespace around it): the one coding libmicrohttpd decodes. Anything else
 * would leave it waiting for a body it cannot frame until the idle timeout; it is answered at
 * once instead, with *status 400 when chunked is not the final coding (RFC 9112 6.3: the
 * length cannot be determined) and 501 for a coding we do not implement (RFC 9112 6.1). */
static const char *transfer_coding_refused(const char *te, unsigned *status)
{
	static const char chunked[] = "chunked";
	const char *end, *last;

	while (*te == ' ' || *te == '\t')
		te++;
	end = te + strlen(te);
	while (end > te && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	last = end;
	while (last > te && last[-1] != ',')
		last--;
	while (last < end && (*last == ' ' || *last == '\t'))
		last++;
	bool final_chunked = (size_t)(end - last) == sizeof(chunked) - 1;
	for (size_t i = 0; final_chunked && i < sizeof(chunked) - 1; i++) {
		char c = last[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		final_chunked = c == chunked[i];
	}
	if (!final_chunked) {
		*status = 400;
		return "Transfer-Encoding must end in chunked";
	}
	if (last != te) {
		*status = 501;
		return "Transfer-Encoding other than chunked is not implemented";
	}
	return NULL;
}

/* The query arguments re-joined as "k=v&k=v" (decoded by libmicrohttpd) for the server core. A
 * key or value holding '&' or '=', or a query longer than RF_SRV_PATH_MAX, is refused. */
struct query_buf {
	char s[RF_SRV_PATH_MAX + 1];
	size_t n;
	bool bad;
};

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	struct query_buf *b = cls;
	size_t kn = strlen(key), vn = value ? strlen(value) : 0;

	(void)kind;
	if (strpbrk(key, "&=") || (value && strpbrk(value, "&=")) ||
	    b->n + kn + vn + 2 > RF_SRV_PATH_MAX) {
		b->bad = true;
		return MHD_NO;
	}
	if (b->n)
		b->s[b->n++] = '&';
	memcpy(b->s + b->n, key, kn);
	b->n += kn;
	b->s[b->n++] = '=';
	memcpy(b->s + b->n, value ? value : "", vn);
	b->n += vn;
	b->s[b->n] = 0;
	return MHD_YES;
}

/* The first call for a request: transport checks, then the request state. */
static enum MHD_Result on_first_call(struct MHD_Connection *c, const char *url, const char *version,
				     struct req **ret)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
	const char *why = ambiguous_headers(c, version);
	unsigned status = 0;
	size_t ulen = strlen(url);
	struct req *q;
	uint64_t n = 0;

	q = calloc(1, sizeof(*q));
	if (!q)
		return MHD_NO;
	*ret = q;
	if (why) {
		q->refused = true;
		return queue_bad_request(c, why);
	}
	if (te && (why = transfer_coding_refused(te, &status))) {
		q->refused = true;
		return queue_refusal(c, status,
				     status == 501 ? "not_implemented" : "malformed_request", why);
	}
	if (ulen > RF_SRV_PATH_MAX) {
		q->refused = true;
		return queue_bad_request(c, "request path over the limit");
	}
	q->path = malloc(ulen + 1);
	if (!q->path)
		return MHD_NO;
	if (decode_path(url, q->path) < 0) {
		q->refused = true;
		return queue_bad_request(c, "request path has a NUL byte or a broken %-escape");
	}
	q->max = rf_server_body_max(q->path);
	/* Declared too large: answer now, before a byte of the body is read (MHD then
	 * discards the body and closes the connection). */
	if (cl && (rf_parse_u64(cl, &n) < 0 || n > q->max)) {
		q->refused = true;
		return queue_static(c, 413, too_large_json);
	}
	return MHD_YES;
}

/* The committer applied the report of q (called with the server's lock held): resume its
 * connection, or tell on_request, which has not suspended it yet. */
static void wake(void *ud)
{
	struct req *q = ud;
	struct rf_http *h = q->h;

	pthread_mutex_lock(&h->mu);
	if (q->suspended) {
		q->suspended = false;
		*q->prev = q->next;
		if (q->next)
			q->next->prev = q->prev;
		MHD_resume_connection(q->c);
	}
	q->ready = true; /* applied: the answer is there, even if the listener stops now */
	pthread_mutex_unlock(&h->mu);
}

/* The listener stops while q waits for its commit: no answer can be promised, so none is
 * given (503: the agent sends it again, a duplicate if it was committed after all). */
static enum MHD_Result queue_stopping(struct rf_http *h, struct req *q)
{
	rf_server_abandon(h->s, q->pending);
	q->pending = NULL;
	return queue_refusal(q->c, 503, "unavailable", "the server is stopping");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct rf_http *h = cls;
	struct req *q = *con_cls;

	if (!q)
		return on_first_call(c, url, version, (struct req **)con_cls);
	if (q->pending) {
		/* resumed by rf_http_stop rather than by wake: the report is not known to be
		 * committed */
		pthread_mutex_lock(&h->mu);
		bool stopping = h->stopping && !q->ready;
		q->ready = false;
		pthread_mutex_unlock(&h->mu);
		if (stopping)
			return queue_stopping(h, q);
	}
	if (*upload_size) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (q->refused)
			return MHD_YES;
		if (n > q->max - q->len) {
			q->too_large = true;
			return MHD_YES;
		}
		if (q->len + n > q->cap) {
			size_t cap = q->cap ? q->cap : 1024;
			while (cap < q->len + n)
				cap *= 2;
			if (cap > q->max)
				cap = q->max;
			uint8_t *b = realloc(q->body, cap);
			if (!b)
				return MHD_NO;
			q->body = b;
			q->cap = cap;
		}
		memcpy(q->body + q->len, upload, n);
		q->len += n;
		return MHD_YES;
	}
	if (q->refused) /* the reply is queued already */
		return MHD_YES;
	if (q->too_large)
		return queue_static(c, 413, too_large_json);

	static _Thread_local struct query_buf qb;
	qb.n = 0;
	qb.s[0] = 0;
	qb.bad = false;
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &qb);
	if (qb.bad)
		return queue_bad_request(c, "query string over the limit or malformed");

	/* HEAD is GET without the body (RFC 9110 9.3.2): the core answers it as GET (read-only
	 * everywhere it is allowed) and libmicrohttpd sends the headers only. */
	struct rf_server_request rq = {
	    .method = strcmp(method, MHD_HTTP_METHOD_HEAD) ? method : MHD_HTTP_METHOD_GET,
	    .path = q->path,
	    .query = qb.s,
	    .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
	    .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
	    .body = q->body ? q->body : (const uint8_t *)"",
	    .body_len = q->len,
	};
	struct rf_server_reply rp;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int e;

	q->h = h;
	q->c = c;
	if (q->pending) /* resumed: its commit was applied */
		e = rf_server_resume(h->s, q->pending, &rp);
	else
		e = rf_server_handle_async(h->s, &rq, wake, q, &q->pending, &rp);
	while (e == 1) {
		/* Waiting for its commit: give the thread back until wake() resumes it, unless
		 * the wake came first (then the answer is there now) or the listener stops. */
		pthread_mutex_lock(&h->mu);
		if (!q->ready && !h->stopping) {
			MHD_suspend_connection(c);
			q->suspended = true;
			q->next = h->suspended;
			q->prev = &h->suspended;
			if (h->suspended)
				h->suspended->prev = &q->next;
			h->suspended = q;
			pthread_mutex_unlock(&h->mu);
			return MHD_YES;
		}
		bool stopping = !q->ready;
		q->ready = false;
		pthread_mutex_unlock(&h->mu);
		if (stopping)
			return queue_stopping(h, q);
		e = rf_server_resume(h->s, q->pending, &rp);
	}
	q->pending = NULL; /* answered: rf_server_resume freed it */
	if (e < 0) {
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
	if (!strncmp(q->path, "/v1/", 4))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (rp.status == 503) /* storage (e.g. PostgreSQL away) or resources: come back later */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER);
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
		if (q->pending && q->h)
			rf_server_abandon(q->h->s, q->pending);
		free(q->path);
		free(q->body);
		free(q);
	}
	*con_cls = NULL;
}

/*
 * unix:PATH. A socket file left by a server that stopped (nobody accepts on it) is replaced;
 * anything else at PATH (a live server's socket, a file, a directory) is never touched. The
 * socket is made mode 0660 (umask at bind: the program is still single-threaded here), so that
 * a proxy in the socket's group can connect.
 */
static int listen_unix(const char *addr, struct rf_diag *diag, int *ret_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = addr + 5;
	size_t n = strlen(path);
	struct stat st;
	int fd, r;

	if (n == 0 || n >= sizeof(sa.sun_path))
		return rf_diag_report(
		    diag, -EINVAL, "listen address '%s': unix:PATH needs a path of 1 to %zu bytes",
		    addr, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, n);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return rf_diag_report(diag, -EEXIST,
					      "cannot listen on %s: %s exists and is not a socket "
					      "(not replaced)",
					      addr, path);
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return rf_diag_report(diag, -errno, "cannot listen on %s: socket: %s", addr,
					      strerror(errno));
		r = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		int ce = errno;
		close(probe);
		if (r == 0 || ce != ECONNREFUSED)
			return rf_diag_report(diag, -EADDRINUSE,
					      "cannot listen on %s: %s (another ringfenced, or "
					      "another program, serves that socket)",
					      addr,
					      r == 0 ? "it accepts connections" : strerror(ce));
		if (unlink(path) < 0 && errno != ENOENT)
			return rf_diag_report(
			    diag, -errno, "cannot listen on %s: cannot remove the stale socket: %s",
			    addr, strerror(errno));
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rf_diag_report(diag, -errno, "cannot listen on %s: socket: %s", addr,
				      strerror(errno));
	mode_t old = umask(0117);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(old);
	if (r == 0 && listen(fd, 1024) < 0) {
		r = -errno;
		unlink(path);
	}
	if (r < 0) {
		close(fd);
		return rf_diag_report(diag, r, "cannot listen on %s: %s", addr, strerror(-r));
	}
	*ret_fd = fd;
	return 0;
}

bool rf_http_is_unix(const char *addr)
{
	return addr && !strncmp(addr, "unix:", 5);
}

int rf_http_listen(const char *addr, struct rf_diag *diag, int *ret_fd)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	char ip[64];
	uint64_t port;
	int fd, one = 1, r;

	if (rf_http_is_unix(addr))
		return listen_unix(addr, diag, ret_fd);
	if (!colon || (size_t)(colon - addr) >= sizeof(ip) || rf_parse_u64(colon + 1, &port) < 0 ||
	    port > 65535)
		return rf_diag_report(diag, -EINVAL,
				      "listen address '%s' is not IPv4:PORT or unix:PATH",
				      addr ? addr : "");
	memcpy(ip, addr, (size_t)(colon - addr));
	ip[colon - addr] = 0;
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return rf_diag_report(diag, -EINVAL,
				      "listen address '%s' is not IPv4:PORT or unix:PATH", addr);
	sa.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rf_diag_report(diag, -errno, "cannot listen on %s: socket: %s", addr,
				      strerror(errno));
	/* A restart must not wait for the old connections' TIME_WAIT; it never shares a port
	 * with a live listener (that needs SO_REUSEPORT). */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0) {
		r = -errno;
		close(fd);
		return rf_diag_report(diag, r, "cannot listen on %s: %s%s", addr, strerror(-r),
				      r == -EADDRINUSE ? " (another program, or another "
							 "ringfenced, serves that port)"
						       : "");
	}
	*ret_fd = fd;
	return 0;
}

int rf_http_start(struct rf_server *s, const struct rf_http_opts *o, struct rf_diag *diag,
		  struct rf_http **ret)
{
	unsigned threads = o->threads;
	struct rf_http *h;
	int fd = o->listen_fd, r;

	if (!o->have_fd) {
		r = rf_http_listen(o->addr, diag, &fd);
		if (r < 0)
			return r;
	}
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 1;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->s = s;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0 && sa.sin_family == AF_INET)
		h->port = ntohs(sa.sin_port);
	struct stat st;
	if (rf_http_is_unix(o->addr) && stat(o->addr + 5, &st) == 0 && S_ISSOCK(st.st_mode)) {
		h->sock_path = strdup(o->addr + 5);
		h->sock_dev = st.st_dev;
		h->sock_ino = st.st_ino;
	}
	/* The per-address count is kept by the master daemon for the whole thread pool; the
	 * connection limit is shared out among the threads. The daemon owns the socket. */
	pthread_mutex_init(&h->mu, NULL);
	h->d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_USE_ERROR_LOG |
				    MHD_ALLOW_SUSPEND_RESUME,
				0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
				o->max_connections ? o->max_connections : RF_SRV_CONNECTIONS_MAX,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->per_ip_connections,
				MHD_OPTION_CONNECTION_TIMEOUT, RF_SRV_CONN_TIMEOUT_S,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)RF_SRV_CONN_MEMORY,
				MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
				MHD_OPTION_NOTIFY_COMPLETED, on_done, h, MHD_OPTION_END);
	if (!h->d) {
		close(fd);
		pthread_mutex_destroy(&h->mu);
		free(h->sock_path);
		free(h);
		return rf_diag_report(diag, -EIO,
				      "cannot serve %s: the HTTP server did not start (threads?)",
				      o->addr ? o->addr : "");
	}
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
	/* Every connection suspended on a report is resumed first (libmicrohttpd must not be
	 * stopped with one suspended); each is answered 503 or closed, never acknowledged. */
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	while (h->suspended) {
		struct req *q = h->suspended;
		h->suspended = q->next;
		if (q->next)
			q->next->prev = &h->suspended;
		q->suspended = false;
		MHD_resume_connection(q->c);
	}
	pthread_mutex_unlock(&h->mu);
	MHD_stop_daemon(h->d);
	pthread_mutex_destroy(&h->mu);
	struct stat st;
	if (h->sock_path && stat(h->sock_path, &st) == 0 && st.st_dev == h->sock_dev &&
	    st.st_ino == h->sock_ino)
		unlink(h->sock_path);
	free(h->sock_path);
	free(h);
}
