/*
 * Device API bodies and reply parsers (see checkin.h). Bodies are built with jansson from
 * trusted local state; replies are parsed with jansson under a size limit and then checked
 * member by member: types, ranges, identifier alphabet, hex hashes. Unknown members are
 * ignored (protocol.md "General rules"), a known member of the wrong type is an error.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/checkin.h"
#include "common/util.h"

bool rf_checkin_id_valid(const char *s, size_t n)
{
	if (!s || n == 0 || n > RF_STORE_TARGET_MAX || s[0] == '.' || s[0] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '/' ||
			  c == '-';
		if (!ok)
			return false;
	}
	return true;
}

static bool hex64_valid(const char *s)
{
	uint8_t b[32];
	return s && rf_hex_decode(s, strlen(s), b, 32) == 0;
}

static int dump(json_t *root, char **ret)
{
	char *t;

	if (!root)
		return -ENOMEM;
	t = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!t)
		return -ENOMEM;
	*ret = t;
	return 0;
}

static bool identity_valid(const struct rf_agent_identity *id)
{
	return id && id->device_id && rf_checkin_id_valid(id->device_id, strlen(id->device_id)) &&
	       id->agent_version && hex64_valid(id->manifest_hash) &&
	       (!id->ring || !*id->ring || rf_checkin_id_valid(id->ring, strlen(id->ring)));
}

int rf_checkin_body_enroll(const struct rf_agent_identity *id, char **ret)
{
	json_t *o;

	if (!identity_valid(id) || !ret)
		return -EINVAL;
	o = json_pack("{s:s, s:s, s:s}", "device_id", id->device_id, "agent_version",
		      id->agent_version, "manifest_hash", id->manifest_hash);
	if (o && id->ring && *id->ring)
		json_object_set_new(o, "ring", json_string(id->ring));
	return dump(o, ret);
}

static json_t *pack_ref(const struct rf_store *st, const uint8_t *h, int attempts)
{
	char hex[65];
	json_t *o;

	rf_hex_encode(h, 32, hex);
	o = json_pack("{s:s, s:s}", "target", rf_store_pack_name(st, h), "sha256", hex);
	if (o && attempts >= 0)
		json_object_set_new(o, "attempts", json_integer(attempts));
	return o;
}

int rf_checkin_body_checkin(const struct rf_agent_identity *id, const struct rf_store *st,
			    char **ret)
{
	const struct rf_guard_state *g;
	uint8_t cur[32];
	json_t *state, *q, *o;
	uint64_t events, alerts;
	size_t nq, first;

	if (!identity_valid(id) || !st || !ret)
		return -EINVAL;
	g = rf_store_guard(st);
	q = json_array();
	nq = rf_store_quarantine_count(st);
	first = nq > RF_AGENT_QUARANTINE_MAX ? nq - RF_AGENT_QUARANTINE_MAX : 0;
	for (size_t i = first; i < nq; i++) {
		char hex[65];
		rf_hex_encode(rf_store_quarantine_at(st, i)->hash, 32, hex);
		json_array_append_new(q, json_string(hex));
	}
	state = json_pack("{s:o, s:o, s:o, s:o, s:b}", "current",
			  rf_guard_current(g, cur) ? pack_ref(st, cur, -1) : json_null(),
			  "last_good", g->has_lkg ? pack_ref(st, g->lkg, -1) : json_null(), "trial",
			  g->has_trial ? pack_ref(st, g->trial, g->trial_attempts) : json_null(),
			  "quarantine", q, "safe_mode", g->mode == RF_GUARD_MODE_SAFE);
	rf_store_counters(st, &events, &alerts);
	o = json_pack("{s:s, s:s, s:s, s:o, s:{s:I, s:I, s:I, s:I}}", "device_id", id->device_id,
		      "agent_version", id->agent_version, "manifest_hash", id->manifest_hash,
		      "state", state, "health", "crashes", (json_int_t)g->crashes, "rollbacks",
		      (json_int_t)g->rollbacks, "events",
		      (json_int_t)(events > INT64_MAX ? INT64_MAX : events), "alerts",
		      (json_int_t)(alerts > INT64_MAX ? INT64_MAX : alerts));
	if (o && id->ring && *id->ring)
		json_object_set_new(o, "ring", json_string(id->ring));
	if (o && rf_store_dropped(st)) {
		uint64_t dr = rf_store_dropped(st);
		json_object_set_new(json_object_get(o, "health"), "events_dropped",
				    json_integer((json_int_t)(dr > INT64_MAX ? INT64_MAX : dr)));
	}
	if (o && rf_store_corr_dropped(st)) {
		uint64_t dr = rf_store_corr_dropped(st);
		json_object_set_new(json_object_get(o, "health"), "correlation_dropped",
				    json_integer((json_int_t)(dr > INT64_MAX ? INT64_MAX : dr)));
	}
	return dump(o, ret);
}

int rf_checkin_body_report(const struct rf_agent_identity *id, const struct rf_store_report *r,
			   char **ret)
{
	char rid[2 * RF_STORE_TARGET_MAX], hex[65];
	json_t *o;

	if (!identity_valid(id) || !r || !ret)
		return -EINVAL;
	snprintf(rid, sizeof(rid), "%s-%06llu", id->device_id, (unsigned long long)r->id);
	o = json_pack("{s:s, s:s, s:s, s:I}", "report_id", rid, "device_id", id->device_id, "event",
		      r->event, "time", (json_int_t)r->time);
	if (!o)
		return -ENOMEM;
	if (r->target[0])
		json_object_set_new(o, "target", json_string(r->target));
	if (r->has_hash) {
		rf_hex_encode(r->hash, 32, hex);
		json_object_set_new(o, "sha256", json_string(hex));
	}
	if (r->detail[0])
		json_object_set_new(o, "detail", json_string(r->detail));
	if (r->cause[0])
		json_object_set_new(o, "cause", json_string(r->cause));
	return dump(o, ret);
}

/* ---- reply parsing ---------------------------------------------------------------------- */

static json_t *load(const uint8_t *p, size_t n, struct rf_diag *d, const char *what, int *code)
{
	json_error_t e;
	json_t *root;

	*code = -EBADMSG;
	if (n > RF_AGENT_REPLY_MAX) {
		*code = -E2BIG;
		rf_diag_report(d, -E2BIG, "%s reply: %zu bytes, over the limit of %u", what, n,
			       (unsigned)RF_AGENT_REPLY_MAX);
		return NULL;
	}
	root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &e);
	if (!root) {
		rf_diag_report(d, -EBADMSG, "%s reply: byte %d: %s", what, e.position, e.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		rf_diag_report(d, -EBADMSG, "%s reply: not a JSON object", what);
		return NULL;
	}
	return root;
}

/* Optional unsigned member: absent/null -> *ret untouched and 0. */
static int opt_uint(json_t *o, const char *key, uint64_t max, uint64_t *ret, struct rf_diag *d,
		    const char *where)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return rf_diag_report(d, -EBADMSG, "%s.%s: must be an integer in 0..%llu", where,
				      key, (unsigned long long)max);
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_id(json_t *o, const char *key, char *out, size_t outsz, bool required,
		  struct rf_diag *d, const char *where)
{
	json_t *v = json_object_get(o, key);
	char q[64];

	if (!v || json_is_null(v)) {
		if (required)
			return rf_diag_report(d, -EBADMSG, "%s.%s: missing", where, key);
		out[0] = 0;
		return 0;
	}
	if (!json_is_string(v))
		return rf_diag_report(d, -EBADMSG, "%s.%s: must be a string", where, key);
	if (!rf_checkin_id_valid(json_string_value(v), json_string_length(v)) ||
	    json_string_length(v) >= outsz)
		return rf_diag_report(
		    d, -EBADMSG, "%s.%s: '%s' is not a valid identifier", where, key,
		    rf_diag_quote(q, sizeof(q), json_string_value(v), json_string_length(v)));
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int parse_release(json_t *v, struct rf_checkin_release *r, struct rf_diag *d,
			 const char *where)
{
	json_t *h;
	int e;

	if (!json_is_object(v))
		return rf_diag_report(d, -EBADMSG, "%s: must be an object or null", where);
	memset(r, 0, sizeof(*r));
	if ((e = get_id(v, "target", r->target, sizeof(r->target), true, d, where)) < 0)
		return e;
	h = json_object_get(v, "sha256");
	if (!json_is_string(h) ||
	    rf_hex_decode(json_string_value(h), json_string_length(h), r->sha256, 32) < 0)
		return rf_diag_report(d, -EBADMSG, "%s.sha256: must be 64 hex digits", where);
	if ((e = opt_uint(v, "id", INT64_MAX, &r->id, d, where)) < 0 ||
	    (e = opt_uint(v, "version", INT64_MAX, &r->version, d, where)) < 0 ||
	    (e = opt_uint(v, "length", INT64_MAX, &r->length, d, where)) < 0)
		return e;
	return 0;
}

int rf_checkin_reply_parse(const uint8_t *p, size_t n, struct rf_checkin_reply *ret,
			   struct rf_diag *d)
{
	struct rf_checkin_reply r;
	json_t *root, *v;
	uint64_t u;
	int e = 0;

	if (!p || !ret)
		return -EINVAL;
	if (!(root = load(p, n, d, "check-in", &e)))
		return e;
	memset(&r, 0, sizeof(r));
	v = json_object_get(root, "action");
	if (!json_is_string(v)) {
		e = rf_diag_report(d, -EBADMSG, "checkin.action: must be a string");
		goto out;
	}
	if (strcmp(json_string_value(v), "stay") == 0)
		r.action = RF_CHECKIN_STAY;
	else if (strcmp(json_string_value(v), "install") == 0)
		r.action = RF_CHECKIN_INSTALL;
	else if (strcmp(json_string_value(v), "rollback") == 0)
		r.action = RF_CHECKIN_ROLLBACK;
	else {
		char q[40];
		e = rf_diag_report(
		    d, -EBADMSG, "checkin.action: unknown action '%s'",
		    rf_diag_quote(q, sizeof(q), json_string_value(v), json_string_length(v)));
		goto out;
	}
	v = json_object_get(root, "release");
	if (v && !json_is_null(v)) {
		if ((e = parse_release(v, &r.release, d, "checkin.release")) < 0)
			goto out;
		r.has_release = true;
	}
	if (r.action == RF_CHECKIN_INSTALL && !r.has_release) {
		e = rf_diag_report(d, -EBADMSG, "checkin.release: required with action 'install'");
		goto out;
	}
	v = json_object_get(root, "rollback_to");
	if (v && !json_is_null(v)) {
		if ((e = parse_release(v, &r.rollback_to, d, "checkin.rollback_to")) < 0)
			goto out;
		r.has_rollback_to = true;
	}
	/* why: shown, never acted on; any reason (one this agent does not know yet, a malformed
	 * one) is accepted, a name outside [a-z0-9_-] or too long is kept as "" */
	v = json_object_get(root, "reason");
	if (json_is_string(v) && json_string_length(v) < sizeof(r.reason)) {
		const char *t = json_string_value(v);
		size_t i, l = json_string_length(v);
		for (i = 0; i < l; i++)
			if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') ||
			      t[i] == '-' || t[i] == '_'))
				break;
		if (i == l)
			memcpy(r.reason, t, l + 1);
	}
	u = 0;
	if ((e = opt_uint(root, "poll_interval", RF_AGENT_POLL_MAX_S, &u, d, "checkin")) < 0)
		goto out;
	r.poll_interval = (uint32_t)u;
	v = json_object_get(root, "server_time");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v)) {
			e = rf_diag_report(d, -EBADMSG, "checkin.server_time: must be an integer");
			goto out;
		}
		r.server_time = (int64_t)json_integer_value(v);
	}
	*ret = r;
out:
	json_decref(root);
	return e;
}

void rf_checkin_error_message(const uint8_t *p, size_t n, char *out, size_t cap)
{
	json_t *root =
	    p && n <= RF_AGENT_REPLY_MAX ? json_loadb((const char *)p, n, 0, NULL) : NULL;
	const char *m =
	    json_string_value(json_object_get(json_object_get(root, "error"), "message"));
	size_t k = 0;

	if (!cap)
		return;
	if (m) {
		for (; m[k] && k + 1 < cap; k++)
			out[k] = (unsigned char)m[k] < 0x20 || m[k] == 0x7f ? '?' : m[k];
	} else {
		for (; p && k < n && k + 1 < cap; k++)
			out[k] = p[k] < 0x20 || p[k] == 0x7f ? '?' : (char)p[k];
	}
	out[k] = 0;
	json_decref(root);
}

bool rf_checkin_credential_rejected(int status, const uint8_t *p, size_t n)
{
	json_t *root, *err;
	const char *field, *msg;
	bool yes;

	if (status == 401)
		return true;
	if (status != 403 || !p || n > RF_AGENT_REPLY_MAX)
		return false;
	root = json_loadb((const char *)p, n, 0, NULL);
	err = json_object_get(root, "error");
	field = json_string_value(json_object_get(err, "field"));
	msg = json_string_value(json_object_get(err, "message"));
	yes = (field && strcmp(field, "device_id") == 0) ||
	      (msg && strstr(msg, "credential") && strstr(msg, "device"));
	json_decref(root);
	return yes;
}

int rf_checkin_enroll_parse(const uint8_t *p, size_t n, struct rf_enroll_reply *ret,
			    struct rf_diag *d)
{
	struct rf_enroll_reply r;
	json_t *root, *v;
	uint64_t u = 0;
	int e;

	if (!p || !ret)
		return -EINVAL;
	if (!(root = load(p, n, d, "enroll", &e)))
		return e;
	memset(&r, 0, sizeof(r));
	if ((e = get_id(root, "device_id", r.device_id, sizeof(r.device_id), true, d, "enroll")) <
		0 ||
	    (e = get_id(root, "ring", r.ring, sizeof(r.ring), false, d, "enroll")) < 0)
		goto out;
	v = json_object_get(root, "credential");
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > RF_AGENT_CREDENTIAL_MAX ||
	    !rf_checkin_id_valid(json_string_value(v), json_string_length(v))) {
		e = rf_diag_report(d, -EBADMSG, "enroll.credential: must be a token string");
		goto out;
	}
	memcpy(r.credential, json_string_value(v), json_string_length(v) + 1);
	if ((e = opt_uint(root, "poll_interval", RF_AGENT_POLL_MAX_S, &u, d, "enroll")) < 0)
		goto out;
	r.poll_interval = (uint32_t)u;
	*ret = r;
out:
	json_decref(root);
	return e;
}

/* ---- timing ----------------------------------------------------------------------------- */

uint64_t rf_checkin_delay_ms(uint32_t poll_s, uint64_t r)
{
	uint64_t base = (uint64_t)(poll_s ? poll_s : RF_AGENT_POLL_DEFAULT_S) * 1000;
	uint64_t lo = base - base / 5, span = 2 * (base / 5) + 1;

	return lo + r % span;
}

uint64_t rf_checkin_backoff_ms(unsigned failures, uint32_t poll_s, uint64_t r)
{
	uint64_t base = RF_AGENT_BACKOFF_MIN_S;

	for (unsigned i = 0; i < failures && base < RF_AGENT_BACKOFF_MAX_S; i++)
		base *= 2;
	if (base > RF_AGENT_BACKOFF_MAX_S)
		base = RF_AGENT_BACKOFF_MAX_S;
	if (failures == 0 && poll_s && base > poll_s)
		base = poll_s;
	return base * 500 + r % (base * 1000); /* [0.5, 1.5) * base seconds, in ms */
}
