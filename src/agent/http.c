/*
 * ringfence-agent's one request to the server: a JSON POST with a bearer token, capped in size
 * and time through common/http.c. The supervisor calls it from the loop; the timeouts bound how
 * long a check-in can hold the loop (RF_AGENT_HTTP_TIMEOUT_S).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "common/http.h"
#include "common/log.h"

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
	r = rf_http_fetch(&q, &rep, &d);
	if (r < 0) {
		rf_log_debug("POST %s: %s", url, d.first);
		return r == -E2BIG || r == -ENOMEM ? r : -EIO;
	}
	if (rep.retry_after_s)
		ag->retry_after_s = rep.retry_after_s;
	*ret = rep.body;
	*ret_len = rep.len;
	return (int)rep.status;
}