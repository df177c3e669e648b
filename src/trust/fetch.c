/*
 * HTTP downloads for the TUF client, through libcurl, into memory.
 *
 * Invariants: at most max bytes are ever buffered (the write callback aborts the transfer at
 * the first byte over the limit: the "endless data" attack costs the client max+1 bytes); only
 * http and https, no redirects (a mirror that redirects is a configuration error, and following
 * redirects would let a server pick another origin); connect and whole-transfer timeouts and a
 * low-speed cut-off (slow retrieval). The URL itself is never logged by the library.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ringfence/limits.h"
#include "trust/tuf-internal.h"

struct sink {
	uint8_t *p;
	size_t n, cap, max;
	bool over;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb, need;

	if (__builtin_add_overflow(s->n, n, &need) || need > s->max) {
		s->over = true;
		return 0; /* abort the transfer */
	}
	if (need > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < need)
			cap *= 2;
		if (cap > s->max)
			cap = s->max;
		uint8_t *np = realloc(s->p, cap ? cap : 1);
		if (!np)
			return 0;
		s->p = np;
		s->cap = cap;
	}
	memcpy(s->p + s->n, ptr, n);
	s->n = need;
	return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int rf__tuf_fetch(const char *url, size_t max, uint8_t **ret, size_t *ret_len, struct rf_diag *d)
{
	struct sink s = {.max = max};
	CURL *c;
	CURLcode cr;
	long status = 0;
	int r;

	pthread_once(&curl_once, curl_init_once);
	c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)RF_TUF_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)RF_TUF_TRANSFER_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "ringfence-tuf/1");
	/* Refuse early when the server announces more than we accept. */
	if (max < (size_t)INT64_MAX)
		curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
	cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);

	if (s.over || cr == CURLE_FILESIZE_EXCEEDED) {
		r = rf_diag_report(d, -E2BIG, "download longer than its limit of %zu bytes", max);
	} else if (cr != CURLE_OK) {
		/* -EIO also for network timeouts: -ETIMEDOUT means expired metadata */
		r = rf_diag_report(d, -EIO, "download failed: %s", curl_easy_strerror(cr));
	} else if (status == 404 || status == 403) {
		r = rf_diag_report(d, -ENOENT, "download failed: HTTP %ld", status);
	} else if (status != 200) {
		r = rf_diag_report(d, -EIO, "download failed: HTTP %ld", status);
	} else {
		if (!s.p && !(s.p = malloc(1)))
			return -ENOMEM;
		*ret = s.p;
		*ret_len = s.n;
		return 0;
	}
	free(s.p);
	return r;
}
