/*
 * HTTP downloads for the TUF client, into memory, through the project's one HTTP call
 * (rf_http_fetch, common/http.h), which enforces the cap, the protocols and the timeouts.
 *
 * Invariants: at most max bytes are ever buffered (the write callback aborts the transfer at
 * the first byte over the limit: the "endless data" attack costs the client max+1 bytes); only
 * http and https, no redirects (a mirror that redirects is a configuration error, and following
 * redirects would let a server pick another origin); connect and whole-transfer timeouts and a
 * low-speed cut-off (slow retrieval). The URL itself is never logged by the library.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/http.h"
#include "ringfence/limits.h"
#include "trust/tuf-internal.h"

int rf__tuf_fetch(const char *url, size_t max, uint8_t **ret, size_t *ret_len, struct rf_diag *d)
{
	const struct rf_http_request q = {
	    .url = url,
	    .max = max,
	    .connect_timeout_s = RF_TUF_CONNECT_TIMEOUT_S,
	    .timeout_s = RF_TUF_TRANSFER_TIMEOUT_S,
	    .low_speed_s = 30,
	    .user_agent = "ringfence-tuf/1",
	};
	struct rf_http_reply rep;
	struct rf_diag hd = {0};
	int r = rf_http_fetch(&q, &rep, &hd);

	if (r == -E2BIG)
		return rf_diag_report(d, -E2BIG, "download longer than its limit of %zu bytes",
				      max);
	if (r == -EIO) /* also for network timeouts: -ETIMEDOUT means expired metadata */
		return rf_diag_report(d, -EIO, "download failed: %s", hd.first);
	if (r < 0)
		return rf_diag_report(d, r, "download failed: %s", hd.first);
	if (rep.status == 404 || rep.status == 403)
		r = rf_diag_report(d, -ENOENT, "download failed: HTTP %ld", rep.status);
	else if (rep.status != 200)
		r = rf_diag_report(d, -EIO, "download failed: HTTP %ld", rep.status);
	if (r < 0) {
		free(rep.body);
		return r;
	}
	*ret = rep.body;
	*ret_len = rep.len;
	return 0;
}
