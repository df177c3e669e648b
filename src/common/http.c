/*
 * rf_http_fetch (http.h) over libcurl's easy interface. The write callback appends to a capped
 * rf_buf, so the byte count is overflow-checked and the cap holds even when the server lies
 * about (or omits) Content-Length; CURLOPT_MAXFILESIZE refuses an announced oversize body first.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/http.h"
#include "ringfence/limits.h"

struct sink {
	struct rf_buf b;
	bool over;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n;
	int r;

	if (__builtin_mul_overflow(size, nmemb, &n)) {
		s->over = true;
		return 0;
	}
	r = rf_buf_append(&s->b, ptr, n);
	if (r == -E2BIG)
		s->over = true;
	return r < 0 ? 0 : n; /* anything but n aborts the transfer */
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Retry-After of the last reply on c in delta-seconds, capped; 0 absent or not digits (an HTTP
 * date is not worth a date parser: the caller's own backoff applies). */
static uint32_t retry_after(CURL *c)
{
	struct curl_header *h;
	uint64_t v = 0;

	if (curl_easy_header(c, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h->value)
		return 0;
	for (const char *p = h->value; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > RF_HTTP_RETRY_AFTER_MAX_S)
			v = RF_HTTP_RETRY_AFTER_MAX_S;
	}
	return (uint32_t)v;
}

int rf_http_fetch(const struct rf_http_request *q, struct rf_http_reply *ret, struct rf_diag *d)
{
	struct sink s = {.b = RF_BUF_INIT(q->max)};
	struct curl_slist *h = NULL;
	CURL *c = q->handle;
	CURLcode cr;
	long status = 0;
	int r;

	if (!q->url)
		return rf_diag_report(d, -EINVAL, "HTTP request without a URL");
	pthread_once(&curl_once, curl_init_once);
	if (c)
		curl_easy_reset(c);
	else if (!(c = curl_easy_init()))
		return rf_diag_report(d, -ENOMEM, "cannot start an HTTP request");
	for (const char *const *x = q->headers; x && *x; x++) {
		struct curl_slist *nh = curl_slist_append(h, *x);
		if (!nh) {
			r = rf_diag_report(d, -ENOMEM, "out of memory for the request");
			goto out;
		}
		h = nh;
	}
	if (q->body) {
		/* No "Expect: 100-continue" round trip: our bodies are small. */
		struct curl_slist *nh = curl_slist_append(h, "Expect:");
		if (!nh) {
			r = rf_diag_report(d, -ENOMEM, "out of memory for the request");
			goto out;
		}
		h = nh;
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
	}
	if (q->method)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	curl_easy_setopt(c, CURLOPT_URL, q->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(
	    c, CURLOPT_CONNECTTIMEOUT,
	    (long)(q->connect_timeout_s ? q->connect_timeout_s : RF_HTTP_CONNECT_TIMEOUT_S));
	curl_easy_setopt(c, CURLOPT_TIMEOUT,
			 (long)(q->timeout_s ? q->timeout_s : RF_HTTP_TIMEOUT_S));
	if (q->low_speed_s) {
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)q->low_speed_s);
	}
	if (q->user_agent)
		curl_easy_setopt(c, CURLOPT_USERAGENT, q->user_agent);
	if (h)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	/* Refuse early when the server announces more than we accept (0 would mean no limit). */
	if (q->max > 0 && (uint64_t)q->max < (uint64_t)INT64_MAX)
		curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)q->max);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);

	if (s.over || cr == CURLE_FILESIZE_EXCEEDED) {
		r = rf_diag_report(d, -E2BIG, "reply longer than its limit of %zu bytes", q->max);
	} else if (cr == CURLE_OUT_OF_MEMORY || (cr == CURLE_WRITE_ERROR && !s.over)) {
		r = rf_diag_report(d, -ENOMEM, "out of memory for the reply");
	} else if (cr != CURLE_OK || status <= 0) {
		r = rf_diag_report(d, -EIO, "%s",
				   cr != CURLE_OK ? curl_easy_strerror(cr) : "no HTTP status");
	} else {
		uint32_t ra = retry_after(c);
		r = rf_buf_steal(&s.b, &ret->body, &ret->len);
		if (r == 0) {
			ret->status = status;
			ret->retry_after_s = ra;
		}
	}
out:
	rf_buf_free(&s.b);
	curl_slist_free_all(h);
	if (q->handle)
		curl_easy_reset(c); /* no pointer into this call's stack or headers survives it */
	else
		curl_easy_cleanup(c);
	return r;
}
