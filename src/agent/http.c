/*
 * ringfence-agent's one request to the server: a JSON POST with a bearer token, capped in size
 * and time through common/http.c. The supervisor calls it from the loop; the timeouts bound how
 * long a check-in can hold the loop (RF_AGENT_HTTP_TIMEOUT_S).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "agent/agent.h"
#include "common/http.h"
#include "common/log.h"

/* libcurl's reason for no answer, in an operator's words where it has a common one (compared
 * with libcurl's own strings, so they follow the installed version). */
static const char *net_reason(const char *m)
{
	if (strcmp(m, curl_easy_strerror(CURLE_COULDNT_CONNECT)) == 0)
		return "connection refused or host unreachable";
	if (strcmp(m, curl_easy_strerror(CURLE_OPERATION_TIMEDOUT)) == 0)
		return "timed out";
	if (strcmp(m, curl_easy_strerror(CURLE_COULDNT_RESOLVE_HOST)) == 0)
		return "cannot resolve the host name";
	return m;
}

int rf__agent_http_post(struct agent *ag, const char *path, const char *token, const char *json,
			uint8_t **ret, size_t *ret_len)
{
	char url[1024], auth[RF_AGENT_CREDENTIAL_MAX + 32];
	const char *const headers[] = {"Content-Type: application/json", auth, NULL};
	struct rf_http_request q = {
	    .url = url,
	    .headers = headers,
	    .body = json,
	    .body_len = strlen(json),
	    .max = RF_AGENT_REPLY_MAX,
	    .timeout_s = RF_AGENT_HTTP_TIMEOUT_S,
	    .connect_timeout_s = 10,
	};
	struct rf_http_reply rep;
	struct rf_diag d = {0};
	int r;

	if (snprintf(url, sizeof(url), "%s%s", ag->o.server, path) >= (int)sizeof(url))
		return -ENAMETOOLONG;
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token ? token : "");
	ag->net_err[0] = 0;
	r = rf_http_fetch(&q, &rep, &d);
	if (r < 0) {
		rf_log_debug("POST %s: %s", url, d.first);
		snprintf(ag->net_err, sizeof(ag->net_err), "%s",
			 d.first[0] ? net_reason(d.first) : rf_strerror(r));
		return r == -E2BIG || r == -ENOMEM ? r : -EIO;
	}
	if (rep.retry_after_s)
		ag->retry_after_s = rep.retry_after_s;
	*ret = rep.body;
	*ret_len = rep.len;
	return (int)rep.status;
}