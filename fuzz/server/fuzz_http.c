/*
 * Fuzz target: HTTP request bodies of ringfenced (the device API and the operator API), through
 * the same rf_server_handle() the transport calls. Input: byte 0 picks the endpoint, byte 1 the
 * credential (right device, other device, admin, none, garbage), the rest is the body. One
 * server on an in-memory SQLite database lives across inputs, with a tenant and two enrolled
 * devices, so the fuzzer reaches the code behind authentication. Invariants checked: the reply
 * always has a status in 200..599 and a JSON body for /v1/ paths; no crash, leak or UB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "server/server.h"

#define ADMIN "rfa_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static struct rf_server *srv;
static char cred_a[80], cred_b[80];

static int64_t fixed_clock(void *ud)
{
	return 1764000000;
}

static json_t *call(const char *method, const char *path, const char *auth, const char *body)
{
	char hdr[100];
	struct rf_server_request q = {method,
				      path,
				      NULL,
				      "application/json",
				      (const uint8_t *)(body ? body : ""),
				      body ? strlen(body) : 0,
				      NULL};
	struct rf_server_reply r;
	json_t *j;

	if (auth) {
		snprintf(hdr, sizeof(hdr), "Bearer %s", auth);
		q.authorization = hdr;
	}
	if (rf_server_handle(srv, &q, &r) < 0)
		abort();
	j = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
	rf_server_reply_free(&r);
	return j;
}

static void init(void)
{
	struct rf_server_opts o = {.db_path = ":memory:", .init = true, .clock = fixed_clock};
	json_t *j;
	char tok[80];

	rf_sha256(ADMIN, strlen(ADMIN), o.admin_hash);
	if (rf_server_new(&o, NULL, &srv) < 0)
		abort();
	j = call("POST", "/v1/admin/tenants", ADMIN, "{\"name\":\"fz\",\"ring\":\"canary\"}");
	snprintf(tok, sizeof(tok), "%s", json_string_value(json_object_get(j, "enrollment_token")));
	json_decref(j);
	j = call("POST", "/v1/enroll", tok, "{\"device_id\":\"dev-a\"}");
	snprintf(cred_a, sizeof(cred_a), "%s", json_string_value(json_object_get(j, "credential")));
	json_decref(j);
	j = call("POST", "/v1/enroll", tok, "{\"device_id\":\"dev-b\"}");
	snprintf(cred_b, sizeof(cred_b), "%s", json_string_value(json_object_get(j, "credential")));
	json_decref(j);
	if (strncmp(cred_a, "rfd_", 4) || strncmp(cred_b, "rfd_", 4))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		const char *method, *path;
	} ep[] = {
	    {"POST", "/v1/checkin"},	     {"POST", "/v1/report"},
	    {"POST", "/v1/enroll"},	     {"POST", "/v1/admin/tenants"},
	    {"PUT", "/v1/admin/tenants/fz"}, {"POST", "/v1/admin/rings"},
	    {"POST", "/v1/admin/releases"},  {"POST", "/v1/admin/releases/1/halt"},
	};
	const char *auth[] = {cred_a, cred_b, ADMIN, NULL, "rfd_zz", "Bearer"};
	struct rf_server_reply r;

	if (!srv)
		init();
	if (size < 2)
		return 0;
	unsigned e = data[0] % (sizeof(ep) / sizeof(ep[0]));
	const char *a = auth[data[1] % (sizeof(auth) / sizeof(auth[0]))];
	char hdr[100];
	/* Operator endpoints get the admin token unless byte 1 says otherwise. */
	if (e >= 3 && data[1] < 128)
		a = ADMIN;
	struct rf_server_request q = {ep[e].method, ep[e].path, NULL, "application/json",
				      data + 2,	    size - 2,	NULL};
	if (a) {
		snprintf(hdr, sizeof(hdr), "Bearer %s", a);
		q.authorization = hdr;
	}
	/* 0xfe: the rest is the query string of GET /v1/admin/audit (the transport hands the core
	 * a NUL-terminated "k=v&k=v" of at most RF_SRV_PATH_MAX bytes). */
	char query[RF_SRV_PATH_MAX + 1];
	if (data[0] == 0xfe) {
		size_t qn = size - 2 < RF_SRV_PATH_MAX ? size - 2 : RF_SRV_PATH_MAX;
		memcpy(query, data + 2, qn);
		query[qn] = 0;
		q.method = "GET";
		q.path = "/v1/admin/audit";
		q.query = query;
		q.body_len = 0;
	}
	if (rf_server_handle(srv, &q, &r) < 0)
		return 0;
	if (r.status < 200 || r.status > 599 || !r.body)
		abort();
	json_t *j = json_loadb(r.body, r.len, 0, NULL);
	if (!j)
		abort();
	json_decref(j);
	rf_server_reply_free(&r);
	if (data[0] == 0xff)
		(void)rf_server_tick(srv, true);
	return 0;
}
