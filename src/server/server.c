/*
 * The ringfenced core: loading the working set, the device API (enroll, check-in, report), the
 * operator API (rings, tenants, releases: create, status, halt, resume, rollback) and the
 * periodic tick (heartbeat flush, gate evaluation, TUF timestamp refresh). See server.h for
 * the model.
 *
 * Invariants:
 *  - Every state change is written to the store first; memory is updated only after the store
 *    returned 0, and the 2xx reply is built after that. On a store error the request gets 503
 *    and memory is unchanged, so memory never runs ahead of the durable record for anything
 *    that was acknowledged.
 *  - A request body is checked completely (size, JSON depth, types, identifier charset and
 *    lengths, enums) before anything is touched: a 4xx changes nothing.
 *  - Tokens are never stored: only SHA-256 (they are 256-bit random, so a plain hash is
 *    enough), compared with CRYPTO_memcmp. A device credential authenticates one device id; a
 *    device only ever sees releases (global), its own record and its tenant's policy.
 *  - The check-in answer is rf_rollout_decide() and the gates are rf_rollout_evaluate(): the
 *    server only gathers their inputs (P6: it can slow a release, never speed it).
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/util.h"
#include "server/jscan.h"
#include "server/server-internal.h"
#include "trust/tuf.h"

const char *const rf__srv_events[8] = {"installed", "intent",	   "trial_started", "healthy",
				       "crashed",   "rolled_back", "rejected",	    "quarantined"};
enum {
	EV_INSTALLED,
	EV_INTENT,
	EV_TRIAL,
	EV_HEALTHY,
	EV_CRASHED,
	EV_ROLLED_BACK,
	EV_REJECTED,
	EV_QUARANTINED
};

/* ---- small helpers -------------------------------------------------------------------------- */

int64_t rf__srv_now(struct rf_server *s)
{
	return s->clock ? s->clock(s->clock_ud) : rf_now_wall();
}

int rf__srv_reply_json(struct rf_server_reply *r, int status, json_t *j)
{
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!body)
		return -ENOMEM;
	free(r->body);
	r->status = status;
	r->content_type = "application/json";
	r->body = body;
	r->len = strlen(body);
	return 0;
}

int rf__srv_reply_error(struct rf_server_reply *r, int status, const char *code, const char *field,
			const char *fmt, ...)
{
	char msg[RF_DIAG_MSG_MAX];
	va_list ap;
	json_t *e;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages quote request bytes (a path, a method, a name): anything but printable ASCII
	 * is escaped, so the reply is always valid JSON (jansson refuses invalid UTF-8). */
	for (const char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) {
			char raw[sizeof(msg)];
			memcpy(raw, msg, sizeof(raw));
			rf_diag_quote(msg, sizeof(msg), raw, strlen(raw));
			break;
		}
	e = json_pack("{s:i,s:s,s:s}", "status", status, "code", code, "message", msg);
	if (e && field)
		json_object_set_new(e, "field", json_string(field));
	return rf__srv_reply_json(r, status, e ? json_pack("{s:o}", "error", e) : NULL);
}

/* Write an error reply and return -1 (so handlers can "return ERR(...)"). */
RF_PRINTF(5, 6)
static int ERR(struct rf_server_reply *r, int status, const char *code, const char *field,
	       const char *fmt, ...)
{
	char msg[RF_DIAG_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rf__srv_reply_error(r, status, code, field, "%s", msg);
	return -1;
}

/* Deepest nesting of p[0..n) outside strings, stopping early past max (jansson has no depth
 * limit of its own, and a deep document is refused before it is parsed at all). */
static bool depth_ok(const uint8_t *p, size_t n, unsigned max)
{
	unsigned depth = 0;
	bool str = false, esc = false;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				str = false;
		} else if (c == '"') {
			str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return false;
		} else if (c == '}' || c == ']') {
			if (depth)
				depth--;
		}
	}
	return true;
}

/* Content-Type is application/json (type and subtype case-insensitive, RFC 9110 8.3.1),
 * alone or followed by parameters ("; charset=utf-8"); absent is taken as JSON. */
static bool json_ctype(const char *ct)
{
	static const char want[] = "application/json";

	if (!ct)
		return true;
	for (size_t i = 0; i < sizeof(want) - 1; i++) {
		char c = ct[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != want[i])
			return false;
	}
	ct += sizeof(want) - 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == 0 || *ct == ';';
}

static int parse_body(const struct rf_server_request *q, size_t max, struct rf_server_reply *r,
		      json_t **ret)
{
	json_error_t je;
	json_t *j;

	if (q->body_len > max)
		return ERR(r, 413, "too_large", NULL,
			   "request body of %zu bytes is over the limit of %zu", q->body_len, max);
	if (!json_ctype(q->content_type))
		return ERR(r, 415, "unsupported_media_type", NULL,
			   "Content-Type must be application/json");
	if (!depth_ok(q->body, q->body_len, RF_SRV_JSON_DEPTH_MAX))
		return ERR(r, 400, "too_deep", NULL, "JSON nested deeper than %d levels",
			   RF_SRV_JSON_DEPTH_MAX);
	j = json_loadb((const char *)q->body, q->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return ERR(r, 400, "malformed_json", NULL, "malformed JSON at byte %d: %s",
			   je.position, je.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return ERR(r, 400, "malformed_json", NULL, "the body must be a JSON object");
	}
	*ret = j;
	return 0;
}

static bool id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == ':' || c == '/';
}

static bool id_valid(const char *v, size_t n)
{
	if (n == 0 || n > RF_SRV_ID_MAX || v[0] == '.' || v[0] == '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!id_char(v[i]))
			return false;
	return true;
}

enum { S_ID = 1, S_TEXT, S_HEX };

/* Member key of o as a string of kind S_ID / S_TEXT / S_HEX (64 hex digits). *ret is NULL when
 * absent or null and !required. Returns 0 or -1 with the error reply written. */
static int get_str(struct rf_server_reply *r, json_t *o, const char *key, int kind, bool required,
		   const char **ret)
{
	json_t *v = json_object_get(o, key);
	const char *t;
	size_t n;

	*ret = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return ERR(r, 400, "invalid_field", key, "'%s' is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return ERR(r, 400, "invalid_field", key, "'%s' must be a string", key);
	t = json_string_value(v);
	n = json_string_length(v);
	if (strlen(t) != n)
		return ERR(r, 400, "invalid_field", key, "'%s' contains a NUL character", key);
	if (kind == S_ID && !id_valid(t, n))
		return ERR(r, 400, "invalid_field", key,
			   "'%s' must be 1..%d characters of [A-Za-z0-9._:/-], not starting with "
			   "'.' or '/'",
			   key, RF_SRV_ID_MAX);
	if (kind == S_TEXT && n > RF_SRV_TEXT_MAX)
		return ERR(r, 400, "invalid_field", key, "'%s' is longer than %d bytes", key,
			   RF_SRV_TEXT_MAX);
	if (kind == S_HEX) {
		uint8_t tmp[32];
		if (n != 64 || rf_hex_decode(t, n, tmp, 32) < 0)
			return ERR(r, 400, "invalid_field", key, "'%s' must be 64 hex digits", key);
	}
	*ret = t;
	return 0;
}

static int get_u64(struct rf_server_reply *r, json_t *o, const char *key, uint64_t *ret)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return ERR(r, 400, "invalid_field", key, "'%s' must be a non-negative integer",
			   key);
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

static void hash_token(const char *tok, uint8_t out[32])
{
	rf_sha256(tok, strlen(tok), out);
}

/* The bearer token of kind prefix ("rfd_", ...) from an Authorization header, or NULL. */
static const char *bearer(const char *h, const char *prefix)
{
	size_t n;

	if (!h || strncmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	n = strlen(h);
	if (n != 68 || strncmp(h, prefix, 4) != 0)
		return NULL;
	for (size_t i = 4; i < n; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return NULL;
	return h;
}

static int new_token(const char *prefix, char out[69], uint8_t hash[32])
{
	uint8_t raw[32];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	memcpy(out, prefix, 4);
	rf_hex_encode(raw, sizeof(raw), out + 4);
	OPENSSL_cleanse(raw, sizeof(raw));
	hash_token(out, hash);
	return 0;
}

/* Copy src (NULL: "") into dst[cap], cut to fit: callers pass validated, bounded strings. */
static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;

	if (n)
		memcpy(dst, src, n);
	dst[n] = 0;
}

/* ---- lookup tables -------------------------------------------------------------------------- */

static uint64_t dev_hash(struct rf_server *s, const char *id, size_t n)
{
	return rf_rollout_siphash24(s->hash_key, id, n);
}

static struct rf__srv_dev *dev_find(struct rf_server *s, const char *id)
{
	size_t n = strlen(id), mask = s->capdevs - 1;

	if (!s->capdevs)
		return NULL;
	for (size_t i = dev_hash(s, id, n) & mask;; i = (i + 1) & mask) {
		struct rf__srv_dev *d = s->devtab[i];
		if (!d)
			return NULL;
		if (d->id_len == n && !memcmp(d->id, id, n))
			return d;
	}
}

static int dev_insert(struct rf_server *s, struct rf__srv_dev *d)
{
	if ((s->ndevs + 1) * 2 > s->capdevs) {
		size_t cap = s->capdevs ? s->capdevs * 2 : 1024;
		struct rf__srv_dev **t = calloc(cap, sizeof(*t));

		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < s->capdevs; i++) {
			struct rf__srv_dev *x = s->devtab[i];
			if (!x)
				continue;
			size_t j = dev_hash(s, x->id, x->id_len) & (cap - 1);
			while (t[j])
				j = (j + 1) & (cap - 1);
			t[j] = x;
		}
		free(s->devtab);
		s->devtab = t;
		s->capdevs = cap;
	}
	size_t j = dev_hash(s, d->id, d->id_len) & (s->capdevs - 1);
	while (s->devtab[j])
		j = (j + 1) & (s->capdevs - 1);
	s->devtab[j] = d;
	s->ndevs++;
	return 0;
}

static int tenant_find(struct rf_server *s, const char *name)
{
	for (size_t i = 0; i < s->ntenants; i++)
		if (!strcmp(s->tenants[i].name, name))
			return (int)i;
	return -1;
}

static int ring_find(struct rf_server *s, const char *name)
{
	for (size_t i = 0; i < s->nrings; i++)
		if (!strcmp(s->rings[i].name, name))
			return (int)i;
	return -1;
}

static struct rf__srv_release *rel_by_id(struct rf_server *s, int64_t id)
{
	for (size_t i = 0; i < s->nrels; i++)
		if (s->rels[i].id == id)
			return &s->rels[i];
	return NULL;
}

static struct rf__srv_release *rel_by_target(struct rf_server *s, const char *t)
{
	for (size_t i = s->nrels; i-- > 0;)
		if (!strcmp(s->rels[i].target, t))
			return &s->rels[i];
	return NULL;
}

static struct rf__srv_release *rel_by_sha(struct rf_server *s, const uint8_t sha[32])
{
	for (size_t i = s->nrels; i-- > 0;)
		if (!memcmp(s->rels[i].sha, sha, 32))
			return &s->rels[i];
	return NULL;
}

/* A device's ring: its tenant's when the tenant policy sets one (a policy change moves every
 * device of the tenant at once), else the ring it enrolled with. */
static const char *dev_ring(const struct rf_server *s, const struct rf__srv_dev *d)
{
	return s->tenants[d->tenant].ring[0] ? s->tenants[d->tenant].ring : d->ring;
}

static void recount_rings(struct rf_server *s)
{
	for (size_t i = 0; i < s->nrings; i++)
		s->rings[i].ndevices = 0;
	for (size_t i = 0; i < s->capdevs; i++) {
		int ri;
		if (s->devtab[i] && (ri = ring_find(s, dev_ring(s, s->devtab[i]))) >= 0)
			s->rings[ri].ndevices++;
	}
}

/* ---- persistence formats -------------------------------------------------------------------- */

static char *state_to_json(const struct rf__srv_release *rel)
{
	const struct rf_rollout_state *st = &rel->st;
	json_t *rings = json_array();
	json_t *j;
	char *out;

	for (unsigned i = 0; i < rel->sched.nrings; i++) {
		const struct rf_rollout_ring_state *x = &st->rings[i];
		json_array_append_new(
		    rings, json_pack("[i,i,I,I,I]", x->phase, x->step, (json_int_t)x->opened_at,
				     (json_int_t)x->step_at, (json_int_t)x->completed_at));
	}
	j = json_pack("{s:i,s:i,s:i,s:I,s:s,s:I,s:o}", "status", st->status, "metric",
		      st->halt_metric, "ring", st->halt_ring, "halted_at",
		      (json_int_t)st->halted_at, "reason", st->halt_reason, "resumed_at",
		      (json_int_t)rel->resumed_at, "rings", rings);
	out = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return out;
}

static int state_from_json(const char *text, struct rf__srv_release *rel)
{
	json_t *j = json_loads(text, 0, NULL), *rings;
	struct rf_rollout_state st;
	json_int_t status, metric, ring, halted_at, resumed_at = 0;
	const char *reason;
	int r = -EBADMSG;

	rf_rollout_state_init(&rel->sched, &st);
	if (!j || json_unpack(j, "{s:I,s:I,s:I,s:I,s:s,s?I,s:o}", "status", &status, "metric",
			      &metric, "ring", &ring, "halted_at", &halted_at, "reason", &reason,
			      "resumed_at", &resumed_at, "rings", &rings) < 0)
		goto out;
	if (status < 0 || status > RF_ROLLOUT_ROLLED_BACK || metric < 0 ||
	    metric >= RF_ROLLOUT_M_COUNT_ || ring < -1 || ring >= (json_int_t)rel->sched.nrings ||
	    !json_is_array(rings) || json_array_size(rings) != rel->sched.nrings)
		goto out;
	st.status = (uint8_t)status;
	st.halt_metric = (uint8_t)metric;
	st.halt_ring = (int8_t)ring;
	st.halted_at = halted_at;
	copy_str(st.halt_reason, sizeof(st.halt_reason), reason);
	for (unsigned i = 0; i < rel->sched.nrings; i++) {
		json_int_t ph, step, oa, sa, ca;
		if (json_unpack(json_array_get(rings, i), "[IIIII]", &ph, &step, &oa, &sa, &ca) <
			0 ||
		    ph < 0 || ph > RF_ROLLOUT_COMPLETE || step < 0 || step >= RF_ROLLOUT_STEPS_MAX)
			goto out;
		st.rings[i] =
		    (struct rf_rollout_ring_state){(uint8_t)ph, (uint8_t)step, oa, sa, ca};
	}
	rel->st = st;
	rel->resumed_at = resumed_at;
	r = 0;
out:
	json_decref(j);
	return r;
}

static char *hist_to_string(const struct rf__srv_dev *d)
{
	json_t *a = json_array();
	char *out;

	for (int i = 0; i < RF__SRV_HIST; i++) {
		const struct rf__srv_devrel *h = &d->hist[i];
		if (!h->release)
			continue;
		/* Elements 10 and 11 (local failures, obeyed) were appended: a record of 9 reads
		 * as 0 and 0. */
		json_array_append_new(
		    a, json_pack("[I,I,I,I,i,i,i,i,I,I,i]", (json_int_t)h->release,
				 (json_int_t)h->intent_at, (json_int_t)h->healthy_at,
				 (json_int_t)h->left_at, (int)h->crashes, (int)h->rollbacks,
				 (int)h->rejects, (int)h->quarantined, (json_int_t)h->alerts,
				 (json_int_t)h->local, (int)h->obeyed));
	}
	out = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return out;
}

static void hist_from_string(const char *text, struct rf__srv_dev *d)
{
	json_t *a = *text ? json_loads(text, 0, NULL) : NULL;
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
	{
		json_int_t x[11] = {0};
		if (i >= RF__SRV_HIST ||
		    (json_unpack(v, "[IIIIIIIIIII]", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5],
				 &x[6], &x[7], &x[8], &x[9], &x[10]) < 0 &&
		     json_unpack(v, "[IIIIIIIII]", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5], &x[6],
				 &x[7], &x[8]) < 0))
			break;
		d->hist[i] = (struct rf__srv_devrel){
		    .release = x[0],
		    .intent_at = x[1],
		    .healthy_at = x[2],
		    .left_at = x[3],
		    .crashes = (uint32_t)x[4],
		    .rollbacks = (uint32_t)x[5],
		    .rejects = (uint32_t)x[6],
		    .quarantined = (uint32_t)x[7],
		    .alerts = (uint64_t)x[8],
		    .local = (uint32_t)x[9],
		    .obeyed = x[10] != 0,
		};
	}
	json_decref(a);
}

/* The store record of d; strings point into d, *hist must be freed. */
static int dev_record(const struct rf__srv_dev *d, const struct rf_server *s,
		      struct rf_store_device *rec, char **hist)
{
	*hist = hist_to_string(d);
	if (!*hist)
		return -ENOMEM;
	*rec = (struct rf_store_device){
	    .id = d->id,
	    .tenant = s->tenants[d->tenant].name,
	    .ring = d->ring,
	    .agent_version = d->agent_version,
	    .manifest_hash = d->manifest,
	    .enrolled_at = d->enrolled_at,
	    .last_seen = d->last_seen,
	    .release_id = d->release_id,
	    .state = d->state,
	    .state_at = d->state_at,
	    .crashes = d->crashes,
	    .rollbacks = d->rollbacks,
	    .events = d->events,
	    .alerts = d->alerts,
	    .history = *hist,
	};
	memcpy(rec->cred_hash, d->cred, 32);
	return 0;
}

static int release_persist(struct rf_server *s, const struct rf__srv_release *rel)
{
	char *state = state_to_json(rel);
	int r;

	if (!state)
		return -ENOMEM;
	struct rf_store_release rec = {
	    .id = rel->id,
	    .target = rel->target,
	    .length = rel->length,
	    .version = rel->version,
	    .custom_json = rel->custom,
	    .created_at = rel->created_at,
	    .state_json = state,
	};
	memcpy(rec.sha256, rel->sha, 32);
	r = rf_store_release_put(s->store, &rec);
	free(state);
	return r;
}

static void rr_rebuild(struct rf_server *s)
{
	for (size_t i = 0; i < s->nrels; i++) {
		s->rr[i].schedule = &s->rels[i].sched;
		s->rr[i].state = s->rels[i].st;
	}
}

/* ---- loading -------------------------------------------------------------------------------- */

static int evaluate(struct rf_server *s, int64_t now);

static void policy_from(struct rf__srv_tenant *t, const char *pin, int64_t ws, int64_t we)
{
	t->policy.pin = pin && !strcmp(pin, "n-1") ? RF_ROLLOUT_PIN_N1 : RF_ROLLOUT_PIN_N;
	t->win_start_min = ws;
	t->win_end_min = we;
	if (ws < 0 || we < 0 || ws == we) {
		t->policy.window_start_s = 0;
		t->policy.window_len_s = 0;
	} else {
		t->policy.window_start_s = (uint32_t)(ws * 60);
		t->policy.window_len_s = (uint32_t)((((we - ws) % 1440) + 1440) % 1440 * 60);
	}
}

static int load_ring(void *ud, const struct rf_store_ring *x)
{
	struct rf_server *s = ud;

	if (s->nrings == RF_SRV_RINGS_MAX)
		return -E2BIG;
	copy_str(s->rings[s->nrings].name, sizeof(s->rings[0].name), x->name);
	s->rings[s->nrings++].position = x->position;
	return 0;
}

static int tenant_add(struct rf_server *s, struct rf__srv_tenant **ret)
{
	if (s->ntenants == s->captenants) {
		size_t cap = s->captenants ? s->captenants * 2 : 16;
		struct rf__srv_tenant *t;
		if (cap > RF_SRV_TENANTS_MAX)
			return -E2BIG;
		t = realloc(s->tenants, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		s->tenants = t;
		s->captenants = cap;
	}
	*ret = &s->tenants[s->ntenants];
	memset(*ret, 0, sizeof(**ret));
	return 0;
}

static int load_tenant(void *ud, const struct rf_store_tenant *x)
{
	struct rf_server *s = ud;
	struct rf__srv_tenant *t;
	int r = tenant_add(s, &t);

	if (r < 0)
		return r;
	copy_str(t->name, sizeof(t->name), x->name);
	memcpy(t->token_hash, x->token_hash, 32);
	copy_str(t->ring, sizeof(t->ring), x->ring);
	policy_from(t, x->pin, x->win_start_min, x->win_end_min);
	s->ntenants++;
	return 0;
}

static int release_add(struct rf_server *s, struct rf__srv_release **ret)
{
	if (s->nrels == s->caprels) {
		size_t cap = s->caprels ? s->caprels * 2 : 16;
		struct rf__srv_release *t;
		struct rf_rollout_release *rr;

		if (cap > RF_SRV_RELEASES_MAX)
			return -E2BIG;
		/* rr first: nothing points into it, so a failure of either realloc leaves both
		 * arrays consistent (the larger one is just not counted in caprels yet). rels may
		 * move: the schedule pointers in rr follow it at once, before anything can fail. */
		rr = realloc(s->rr, cap * sizeof(*rr));
		if (!rr)
			return -ENOMEM;
		s->rr = rr;
		t = realloc(s->rels, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		s->rels = t;
		s->caprels = cap;
		rr_rebuild(s);
	}
	*ret = &s->rels[s->nrels];
	memset(*ret, 0, sizeof(**ret));
	return 0;
}

static int load_release(void *ud, const struct rf_store_release *x)
{
	struct rf_server *s = ud;
	struct rf__srv_release *rel;
	int r = release_add(s, &rel);

	if (r < 0)
		return r;
	rel->id = x->id;
	copy_str(rel->target, sizeof(rel->target), x->target);
	memcpy(rel->sha, x->sha256, 32);
	rf_hex_encode(rel->sha, 32, rel->sha_hex);
	rel->length = x->length;
	rel->version = x->version;
	rel->created_at = x->created_at;
	rel->custom = strdup(x->custom_json);
	if (!rel->custom)
		return -ENOMEM;
	r = rf_rollout_schedule_parse((const uint8_t *)rel->custom, strlen(rel->custom),
				      &rel->sched, &s->diag);
	if (r == 0)
		r = state_from_json(x->state_json, rel);
	if (r < 0) {
		free(rel->custom);
		return rf_diag_report(&s->diag, -EBADMSG,
				      "release %lld: stored state does not parse",
				      (long long)x->id);
	}
	s->nrels++;
	rr_rebuild(s);
	return 0;
}

static int load_device(void *ud, const struct rf_store_device *x)
{
	struct rf_server *s = ud;
	struct rf__srv_dev *d;
	int t = tenant_find(s, x->tenant), r;

	if (t < 0)
		return rf_diag_report(&s->diag, -EBADMSG, "device %s: unknown tenant", x->id);
	if (s->ndevs >= RF_SRV_DEVICES_MAX)
		return -E2BIG;
	d = calloc(1, sizeof(*d));
	if (!d || !(d->id = strdup(x->id))) {
		free(d);
		return -ENOMEM;
	}
	d->id_len = strlen(d->id);
	d->tenant = t;
	copy_str(d->ring, sizeof(d->ring), x->ring);
	memcpy(d->cred, x->cred_hash, 32);
	copy_str(d->agent_version, sizeof(d->agent_version), x->agent_version);
	copy_str(d->manifest, sizeof(d->manifest), x->manifest_hash);
	d->enrolled_at = x->enrolled_at;
	d->last_seen = x->last_seen;
	d->release_id = x->release_id;
	copy_str(d->state, sizeof(d->state), x->state);
	d->state_at = x->state_at;
	d->crashes = x->crashes;
	d->rollbacks = x->rollbacks;
	d->events = x->events;
	d->alerts = x->alerts;
	hist_from_string(x->history, d);
	r = dev_insert(s, d);
	if (r < 0) {
		free(d->id);
		free(d);
		return r;
	}
	s->tenants[t].ndevices++;
	return 0;
}

int rf_server_new(const struct rf_server_opts *opts, struct rf_diag *diag, struct rf_server **ret)
{
	struct rf_server *s = calloc(1, sizeof(*s));
	static const struct rf_store_visitor v = {load_ring, load_tenant, load_release,
						  load_device};
	int r;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->repo_fd = -1;
	s->clock = opts->clock;
	s->clock_ud = opts->clock_ud;
	s->log = opts->log;
	s->log_ud = opts->log_ud;
	s->poll_interval = opts->poll_interval_s ? opts->poll_interval_s : 300;
	memcpy(s->admin_hash, opts->admin_hash, 32);
	/* Never NULL, so "rr + first" is defined even with no release yet. */
	s->rr = calloc(1, sizeof(*s->rr));
	if (!s->rr) {
		r = -ENOMEM;
		goto undo;
	}
	if (RAND_bytes(s->hash_key, sizeof(s->hash_key)) != 1) {
		r = -EIO;
		goto undo;
	}
	if (opts->repo_dir) {
		char path[4096];

		s->repo_dir = strdup(opts->repo_dir);
		if (!s->repo_dir) {
			r = -ENOMEM;
			goto undo;
		}
		snprintf(path, sizeof(path), "%s/repository", opts->repo_dir);
		s->repo_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (s->repo_fd < 0) {
			r = rf_diag_report(diag, -ENOENT,
					   "%s: not a TUF repository (no repository/)",
					   opts->repo_dir);
			goto undo;
		}
	}
	r = rf_store_open_sqlite(opts->db_path, opts->init ? RF_STORE_CREATE | RF_STORE_EXCL : 0,
				 diag, &s->store);
	if (r < 0)
		goto undo;
	r = rf_store_load(s->store, &v, s);
	if (r < 0) {
		if (s->diag.count && diag)
			rf_diag_report(diag, r, "%s", s->diag.first);
		else
			rf_diag_report(diag, r, "loading %s: %s", opts->db_path, rf_strerror(r));
		goto undo;
	}
	s->store->diag = &s->diag;
	recount_rings(s);
	s->started_at = rf__srv_now(s);
	/* The per-device outcomes came back with the devices (each device row is committed in
	 * the same transaction as every report that changed it); aggregate and judge them now,
	 * before the first request, so a status read at once shows the health the release had
	 * and not the empty aggregates of a fresh start. A halt this finds is written like any
	 * other; if writing fails, the next tick retries (as it does for every evaluation). */
	(void)evaluate(s, s->started_at);
	*ret = s;
	return 0;
undo:
	rf_server_free(s);
	return r;
}

void rf_server_free(struct rf_server *s)
{
	if (!s)
		return;
	if (s->store)
		(void)rf_server_tick(s, true);
	rf_store_close(s->store);
	for (size_t i = 0; i < s->capdevs; i++)
		if (s->devtab[i]) {
			free(s->devtab[i]->id);
			free(s->devtab[i]);
		}
	free(s->devtab);
	for (size_t i = 0; i < s->nrels; i++)
		free(s->rels[i].custom);
	free(s->rels);
	free(s->rr);
	free(s->tenants);
	free(s->repo_dir);
	if (s->repo_fd >= 0)
		close(s->repo_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- device API ----------------------------------------------------------------------------- */

static struct rf__srv_devrel *hist_get(struct rf__srv_dev *d, int64_t rel, bool create, int64_t now)
{
	int oldest = 0;

	for (int i = 0; i < RF__SRV_HIST; i++) {
		if (d->hist[i].release == rel)
			return &d->hist[i];
		if (d->hist[i].release < d->hist[oldest].release)
			oldest = i;
	}
	if (!create)
		return NULL;
	/* Reuse the slot of the oldest release (ids grow with time). */
	d->hist[oldest] = (struct rf__srv_devrel){.release = rel, .intent_at = now};
	return &d->hist[oldest];
}

/* The device took release rel at now: it leaves every other release it was on. */
static void dev_take(struct rf__srv_dev *d, int64_t rel, int64_t now)
{
	for (int i = 0; i < RF__SRV_HIST; i++)
		if (d->hist[i].release && d->hist[i].release != rel && !d->hist[i].left_at)
			d->hist[i].left_at = now;
	/* Back on a release it ran before (its last known good after a rollback): on it again. */
	hist_get(d, rel, true, now)->left_at = 0;
	d->release_id = rel;
}

/* The release a rollback or quarantine report is about. A rollback always goes to an older
 * release, so the release left is the newest one the device took that is not older than the
 * one named: that is the named one when the report names the release left (protocol.md), and
 * the one the device was on when an agent names the release it went back to. */
static int64_t release_left(const struct rf__srv_dev *d, int64_t named)
{
	int64_t newest = named;

	for (int i = 0; i < RF__SRV_HIST; i++)
		if (d->hist[i].release > newest)
			newest = d->hist[i].release;
	return newest;
}

static int handle_enroll(struct rf_server *s, const struct rf_server_request *q,
			 struct rf_server_reply *r)
{
	const char *tok = bearer(q->authorization, "rfe_");
	const char *dev_id, *ring, *ver, *mh;
	uint8_t h[32];
	json_t *j = NULL;
	int t = -1, ret = -1;

	if (!tok)
		return ERR(r, 401, "unauthorized", NULL,
			   "enrollment needs 'Authorization: Bearer rfe_...'");
	if (parse_body(q, RF_SRV_DEVICE_BODY_MAX, r, &j) < 0)
		return -1;
	if (get_str(r, j, "device_id", S_ID, true, &dev_id) < 0 ||
	    get_str(r, j, "ring", S_ID, false, &ring) < 0 ||
	    get_str(r, j, "agent_version", S_ID, false, &ver) < 0 ||
	    get_str(r, j, "manifest_hash", S_HEX, false, &mh) < 0)
		goto out;
	hash_token(tok, h);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->ntenants; i++)
		if (!CRYPTO_memcmp(s->tenants[i].token_hash, h, 32))
			t = (int)i;
	if (t < 0) {
		ERR(r, 401, "unauthorized", NULL, "unknown enrollment token");
		goto unlock;
	}
	struct rf__srv_dev *old = dev_find(s, dev_id);
	if (old && old->tenant != t) {
		ERR(r, 409, "conflict", "device_id", "device id is enrolled under another tenant");
		goto unlock;
	}
	if (!old && s->ndevs >= RF_SRV_DEVICES_MAX) {
		ERR(r, 503, "unavailable", NULL, "device table full");
		goto unlock;
	}
	/* The ring: the tenant's, else the requested one if it exists, else the last (broadest). */
	const char *use_ring = s->tenants[t].ring[0] ? s->tenants[t].ring : NULL;
	if (!use_ring && ring && ring_find(s, ring) >= 0)
		use_ring = ring;
	if (!use_ring && s->nrings)
		use_ring = s->rings[s->nrings - 1].name;
	if (!use_ring) {
		ERR(r, 409, "conflict", NULL, "the server has no rings");
		goto unlock;
	}
	char cred[69];
	struct rf__srv_dev nd, *d;
	if (new_token("rfd_", cred, h) < 0) {
		ERR(r, 503, "unavailable", NULL, "no randomness");
		goto unlock;
	}
	int64_t now = rf__srv_now(s);
	if (old) {
		nd = *old;
	} else {
		memset(&nd, 0, sizeof(nd));
		nd.id = (char *)dev_id;
		nd.id_len = strlen(dev_id);
		nd.tenant = t;
		nd.enrolled_at = now;
		copy_str(nd.state, sizeof(nd.state), "enrolled");
		nd.state_at = now;
	}
	memcpy(nd.cred, h, 32);
	int old_ring = old ? ring_find(s, dev_ring(s, old)) : -1;
	copy_str(nd.ring, sizeof(nd.ring), use_ring);
	if (ver)
		copy_str(nd.agent_version, sizeof(nd.agent_version), ver);
	if (mh)
		copy_str(nd.manifest, sizeof(nd.manifest), mh);
	nd.last_seen = now;
	struct rf_store_device rec;
	char *hist;
	int e = dev_record(&nd, s, &rec, &hist);
	if (e == 0) {
		e = rf_store_devices_put(s->store, &rec, 1);
		free(hist);
	}
	if (e < 0) {
		ERR(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
		goto unlock;
	}
	if (old) {
		char *id = old->id;
		*old = nd;
		old->id = id;
		old->flags &= (uint8_t)~DEV_SEEN;
		if (old_ring >= 0)
			s->rings[old_ring].ndevices--;
	} else {
		d = malloc(sizeof(*d));
		if (d)
			*d = nd;
		if (!d || !(d->id = strdup(dev_id)) || dev_insert(s, d) < 0) {
			/* Durable but not in memory: the next start loads it. Tell the device to
			 * retry. */
			if (d)
				free(d->id);
			free(d);
			ERR(r, 503, "unavailable", NULL, "out of memory");
			goto unlock;
		}
		s->tenants[t].ndevices++;
	}
	int nr = ring_find(s, use_ring);
	if (nr >= 0)
		s->rings[nr].ndevices++;
	atomic_fetch_add(&s->m_enrolls, 1);
	rf__srv_reply_json(r, 201,
			   json_pack("{s:s,s:s,s:s,s:s,s:i}", "device_id", dev_id, "tenant",
				     s->tenants[t].name, "ring", use_ring, "credential", cred,
				     "poll_interval", (int)s->poll_interval));
	OPENSSL_cleanse(cred, sizeof(cred));
	ret = 0;
unlock:
	pthread_mutex_unlock(&s->lock);
out:
	json_decref(j);
	return ret;
}

/* Authenticate a device request: the credential must be that of device_id. Lock held. */
/* Hash the device credential of a request (outside the lock: it is the costly part of
 * authentication). Returns 0, or -1 with the 401 reply written. */
static int dev_cred_hash(const struct rf_server_request *q, struct rf_server_reply *r,
			 uint8_t h[32])
{
	const char *tok = bearer(q->authorization, "rfd_");

	if (!tok)
		return ERR(r, 401, "unauthorized", NULL,
			   "device requests need 'Authorization: Bearer rfd_...'");
	hash_token(tok, h);
	return 0;
}

/* The device dev_id if h is its credential's hash, else NULL with the reply written. Lock held. */
static struct rf__srv_dev *dev_auth(struct rf_server *s, const uint8_t h[32], const char *dev_id,
				    struct rf_server_reply *r)
{
	struct rf__srv_dev *d = dev_find(s, dev_id);

	if (!d) {
		ERR(r, 401, "unauthorized", "device_id", "unknown device: enroll first");
		return NULL;
	}
	if (CRYPTO_memcmp(d->cred, h, 32) != 0) {
		ERR(r, 403, "forbidden", "device_id",
		    "this credential does not belong to this device");
		return NULL;
	}
	return d;
}

/* The check-in is the hot path (one per device every poll interval): its body is read with the
 * allocation-free scanner (jscan.h) and its reply written into one buffer, with the same checks
 * and error replies as the other endpoints. */
struct jctx {
	const uint8_t *p;
	const struct rf_jtok *t;
	struct rf_server_reply *r;
};

/* Member key of object obj as a string of kind S_ID / S_HEX into out (RF_SRV_ID_MAX + 1 bytes);
 * *ret_present false when absent or null. Returns 0 or -1 with the error reply written. */
static int jfield(struct jctx *c, int obj, const char *key, int kind, bool required, char *out,
		  bool *ret_present)
{
	int v = rf_jget(c->p, c->t, obj, key), n;
	uint8_t tmp[32];

	*ret_present = false;
	out[0] = 0;
	if (v < 0 || c->t[v].type == RF_J_NULL) {
		if (required)
			return ERR(c->r, 400, "invalid_field", key, "'%s' is required", key);
		return 0;
	}
	if (c->t[v].type != RF_J_STR)
		return ERR(c->r, 400, "invalid_field", key, "'%s' must be a string", key);
	n = rf_jstr(c->p, &c->t[v], out, RF_SRV_ID_MAX + 1);
	if (kind == S_ID && (n < 0 || !id_valid(out, (size_t)n)))
		return ERR(c->r, 400, "invalid_field", key,
			   "'%s' must be 1..%d characters of [A-Za-z0-9._:/-], not starting with "
			   "'.' or '/'",
			   key, RF_SRV_ID_MAX);
	if (kind == S_HEX && (n != 64 || rf_hex_decode(out, 64, tmp, 32) < 0))
		return ERR(c->r, 400, "invalid_field", key, "'%s' must be 64 hex digits", key);
	*ret_present = true;
	return 0;
}

static int jobj(struct jctx *c, int obj, const char *key, int *ret)
{
	int v = rf_jget(c->p, c->t, obj, key);

	*ret = -1;
	if (v < 0 || c->t[v].type == RF_J_NULL)
		return 0;
	if (c->t[v].type != RF_J_OBJ)
		return ERR(c->r, 400, "invalid_field", key, "'%s' must be an object or null", key);
	*ret = v;
	return 0;
}

static int ju64(struct jctx *c, int obj, const char *key, uint64_t *ret)
{
	int v = rf_jget(c->p, c->t, obj, key);

	if (v < 0 || c->t[v].type == RF_J_NULL)
		return 0;
	if (rf_ju64(c->p, &c->t[v], ret) < 0)
		return ERR(c->r, 400, "invalid_field", key, "'%s' must be a non-negative integer",
			   key);
	return 0;
}

/* A reply being written into one fixed buffer; overflow is remembered, never written. */
struct sb {
	char *p;
	size_t n, cap;
	bool full;
};

RF_PRINTF(2, 3)
static void sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (b->full)
		return;
	va_start(ap, fmt);
	k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= b->cap - b->n)
		b->full = true;
	else
		b->n += (size_t)k;
}

/* s as a JSON string (quotes included); control bytes and quotes escaped. */
static void sb_jstr(struct sb *b, const char *s)
{
	sb_printf(b, "\"");
	for (; *s && !b->full; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			sb_printf(b, "\\%c", ch);
		else if (ch < 0x20)
			sb_printf(b, "\\u%04x", ch);
		else
			sb_printf(b, "%c", ch);
	}
	sb_printf(b, "\"");
}

static int handle_checkin(struct rf_server *s, const struct rf_server_request *q,
			  struct rf_server_reply *r)
{
	struct rf_jtok toks[RF_SRV_CHECKIN_VALUES_MAX];
	struct jctx c = {q->body, toks, r};
	char dev_id[RF_SRV_ID_MAX + 1], x[RF_SRV_ID_MAX + 1], ver[RF_SRV_ID_MAX + 1];
	char mh[RF_SRV_ID_MAX + 1], cur_sha[RF_SRV_ID_MAX + 1], lg_sha[RF_SRV_ID_MAX + 1];
	bool has, has_ver, has_mh, has_cur_sha = false, has_lg_sha = false;
	int state, health, cur = -1;
	uint64_t crashes = 0, rollbacks = 0, events = 0, alerts = 0;
	size_t ntok, off = 0;
	int e;

	if (q->body_len > RF_SRV_DEVICE_BODY_MAX)
		return ERR(r, 413, "too_large", NULL,
			   "request body of %zu bytes is over the limit of %u", q->body_len,
			   RF_SRV_DEVICE_BODY_MAX);
	if (!json_ctype(q->content_type))
		return ERR(r, 415, "unsupported_media_type", NULL,
			   "Content-Type must be application/json");
	e = rf_jscan(q->body, q->body_len, toks, RF_SRV_CHECKIN_VALUES_MAX, RF_SRV_JSON_DEPTH_MAX,
		     &ntok, &off);
	if (e == -ELOOP)
		return ERR(r, 400, "too_deep", NULL, "JSON nested deeper than %d levels",
			   RF_SRV_JSON_DEPTH_MAX);
	if (e == -E2BIG)
		return ERR(r, 400, "invalid_field", NULL, "check-in has more than %d JSON values",
			   RF_SRV_CHECKIN_VALUES_MAX);
	if (e < 0)
		return ERR(r, 400, "malformed_json", NULL, "malformed JSON at byte %zu", off);
	if (toks[0].type != RF_J_OBJ)
		return ERR(r, 400, "malformed_json", NULL, "the body must be a JSON object");
	if (jfield(&c, 0, "device_id", S_ID, true, dev_id, &has) < 0 ||
	    jfield(&c, 0, "ring", S_ID, false, x, &has) < 0 ||
	    jfield(&c, 0, "agent_version", S_ID, false, ver, &has_ver) < 0 ||
	    jfield(&c, 0, "manifest_hash", S_HEX, false, mh, &has_mh) < 0 ||
	    jobj(&c, 0, "state", &state) < 0 || jobj(&c, 0, "health", &health) < 0)
		return -1;
	if (state >= 0) {
		static const char *const sub[] = {"last_good", "trial"};
		uint64_t attempts = 0; /* checked, not used: the agent counts its own attempts */
		int o, qa, sm;

		if (jobj(&c, state, "current", &cur) < 0 ||
		    (cur >= 0 &&
		     (jfield(&c, cur, "target", S_ID, false, x, &has) < 0 ||
		      jfield(&c, cur, "sha256", S_HEX, false, cur_sha, &has_cur_sha) < 0)))
			return -1;
		for (int i = 0; i < 2; i++)
			if (jobj(&c, state, sub[i], &o) < 0 ||
			    (o >= 0 && (jfield(&c, o, "target", S_ID, false, x, &has) < 0 ||
					jfield(&c, o, "sha256", S_HEX, false, i ? x : lg_sha,
					       i ? &has : &has_lg_sha) < 0 ||
					(i == 1 && ju64(&c, o, "attempts", &attempts) < 0))))
				return -1;
		qa = rf_jget(q->body, toks, state, "quarantine");
		if (qa >= 0 && toks[qa].type != RF_J_NULL) {
			if (toks[qa].type != RF_J_ARR)
				return ERR(r, 400, "invalid_field", "quarantine",
					   "'quarantine' must be an array");
			if (toks[qa].size > RF_SRV_QUARANTINE_MAX)
				return ERR(r, 400, "invalid_field", "quarantine",
					   "'quarantine' lists more than %d hashes",
					   RF_SRV_QUARANTINE_MAX);
			for (uint32_t k = (uint32_t)qa + 1; k < toks[qa].next; k = toks[k].next) {
				uint8_t tmp[32];
				if (toks[k].type != RF_J_STR || toks[k].escaped ||
				    toks[k].end - toks[k].start != 64 ||
				    rf_hex_decode((const char *)q->body + toks[k].start, 64, tmp,
						  32) < 0)
					return ERR(r, 400, "invalid_field", "quarantine",
						   "'quarantine' entries must be 64 hex digits");
			}
		}
		sm = rf_jget(q->body, toks, state, "safe_mode");
		if (sm >= 0 && toks[sm].type != RF_J_TRUE && toks[sm].type != RF_J_FALSE &&
		    toks[sm].type != RF_J_NULL)
			return ERR(r, 400, "invalid_field", "safe_mode",
				   "'safe_mode' must be a boolean");
	}
	if (health >= 0 &&
	    (ju64(&c, health, "crashes", &crashes) < 0 ||
	     ju64(&c, health, "rollbacks", &rollbacks) < 0 ||
	     ju64(&c, health, "events", &events) < 0 || ju64(&c, health, "alerts", &alerts) < 0))
		return -1;

	uint8_t cred_h[32];
	if (dev_cred_hash(q, r, cred_h) < 0)
		return -1;

	/* Under the lock only the device update and the decision; what the reply needs is copied
	 * out and formatted after the lock is released. */
	struct brief {
		bool set;
		int64_t id, version;
		uint64_t length;
		char target[RF_SRV_ID_MAX + 1], sha_hex[65];
	} rel_out = {0}, back_out = {0};
	struct {
		int64_t id;
		char target[RF_SRV_ID_MAX + 1], reason[RF_ROLLOUT_REASON_MAX];
	} halted[RF_SRV_HALTED_NOTICES_MAX];
	size_t nhalted = 0;
	struct rf_rollout_answer ans;
	int64_t now;

	pthread_mutex_lock(&s->lock);
	struct rf__srv_dev *d = dev_auth(s, cred_h, dev_id, r);
	if (!d) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	now = rf__srv_now(s);
	d->last_seen = now;
	d->flags |= DEV_SEEN;
	if (has_ver && strcmp(ver, d->agent_version)) {
		copy_str(d->agent_version, sizeof(d->agent_version), ver);
		d->flags |= DEV_DIRTY;
	}
	if (has_mh && strcmp(mh, d->manifest)) {
		copy_str(d->manifest, sizeof(d->manifest), mh);
		d->flags |= DEV_DIRTY;
	}
	/* Which release the device runs: by content hash (the agent's truth). */
	const struct rf__srv_release *cur_rel = NULL;
	if (has_cur_sha) {
		uint8_t sha[32];
		if (rf_hex_decode(cur_sha, 64, sha, 32) == 0)
			cur_rel = rel_by_sha(s, sha);
	}
	if (cur_rel && cur_rel->id != d->release_id) {
		dev_take(d, cur_rel->id, now);
		d->flags |= DEV_DIRTY;
	}
	/* Health counters are cumulative on the agent and sent in every check-in, so losing them
	 * in a crash loses nothing: they are kept in memory and written with the heartbeats (an
	 * active agent's counters change at every check-in; writing them each time would make
	 * every check-in a database write). */
	if (crashes != d->crashes || rollbacks != d->rollbacks || alerts != d->alerts ||
	    events != d->events) {
		d->crashes = crashes;
		d->rollbacks = rollbacks;
		d->alerts = alerts;
		d->events = events;
		if (cur_rel) {
			struct rf__srv_devrel *h = hist_get(d, cur_rel->id, false, now);
			if (h && alerts > h->alerts)
				h->alerts = alerts;
		}
	}

	/* The decision: the rollout engine over at most RF_ROLLOUT_DECIDE_MAX newest releases. */
	size_t first = s->nrels > RF_ROLLOUT_DECIDE_MAX ? s->nrels - RF_ROLLOUT_DECIDE_MAX : 0;
	/* A last known good other than what it runs: the device has somewhere of its own to go
	 * back to, so "roll back to your last known good" (rollback_to null) means something. */
	struct rf_rollout_device rd = {
	    .id = d->id,
	    .id_len = d->id_len,
	    .ring = dev_ring(s, d),
	    .current = -1,
	    .fallback = has_lg_sha};
	if (has_lg_sha && has_cur_sha) {
		uint8_t a[32], b[32];
		rd.fallback = rf_hex_decode(lg_sha, 64, a, 32) < 0 ||
			      rf_hex_decode(cur_sha, 64, b, 32) < 0 || memcmp(a, b, 32) != 0;
	}
	if (cur_rel) {
		size_t idx = (size_t)(cur_rel - s->rels);
		if (idx >= first)
			rd.current = (int)(idx - first);
	}
	e = rf_rollout_decide(&rd, &s->tenants[d->tenant].policy, s->rr + first, s->nrels - first,
			      now, &ans);
	d->fallback = rd.fallback;
	if (e == 0) {
		d->answer_reason = ans.reason;
		const struct rf__srv_release *target =
		    ans.release >= 0 ? &s->rels[first + (size_t)ans.release] : NULL;
		const struct rf__srv_release *rel =
		    ans.action == RF_ROLLOUT_GO_BACK ? cur_rel : target;
		const struct rf__srv_release *back =
		    ans.action == RF_ROLLOUT_GO_BACK ? target : NULL;
		struct brief *out[2] = {&rel_out, &back_out};
		const struct rf__srv_release *in[2] = {rel, back};
		for (int k = 0; k < 2; k++) {
			if (!in[k])
				continue;
			out[k]->set = true;
			out[k]->id = in[k]->id;
			out[k]->version = in[k]->version;
			out[k]->length = in[k]->length;
			memcpy(out[k]->target, in[k]->target, sizeof(out[k]->target));
			memcpy(out[k]->sha_hex, in[k]->sha_hex, sizeof(out[k]->sha_hex));
		}
		for (size_t i = s->nrels; i-- > 0 && nhalted < RF_SRV_HALTED_NOTICES_MAX;) {
			const struct rf__srv_release *hr = &s->rels[i];
			if (hr->st.status != RF_ROLLOUT_HALTED &&
			    hr->st.status != RF_ROLLOUT_ROLLED_BACK)
				continue;
			halted[nhalted].id = hr->id;
			memcpy(halted[nhalted].target, hr->target, sizeof(halted[0].target));
			memcpy(halted[nhalted].reason, hr->st.halt_reason,
			       sizeof(halted[0].reason));
			nhalted++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (e < 0)
		return ERR(r, 503, "unavailable", NULL, "decision failed: %s", rf_strerror(e));

	struct sb b = {.cap = 16384};
	b.p = malloc(b.cap);
	if (!b.p)
		return ERR(r, 503, "unavailable", NULL, "out of memory");
	const char *action = ans.action == RF_ROLLOUT_INSTALL	? "install"
			     : ans.action == RF_ROLLOUT_GO_BACK ? "rollback"
								: "stay";
	sb_printf(&b, "{\"action\":\"%s\",\"reason\":\"%s\"", action,
		  rf_rollout_reason_name(ans.reason));
	const struct brief *br[2] = {&rel_out, &back_out};
	static const char *const key[2] = {"release", "rollback_to"};
	for (int k = 0; k < 2; k++) {
		/* target is an identifier ([A-Za-z0-9._:/-], checked at creation): no escaping. */
		if (!br[k]->set)
			sb_printf(&b, ",\"%s\":null", key[k]);
		else
			sb_printf(&b,
				  ",\"%s\":{\"id\":%lld,\"target\":\"%s\",\"sha256\":\"%s\","
				  "\"length\":%llu,\"version\":%lld}",
				  key[k], (long long)br[k]->id, br[k]->target, br[k]->sha_hex,
				  (unsigned long long)br[k]->length, (long long)br[k]->version);
	}
	sb_printf(&b, ",\"halted\":[");
	for (size_t i = 0; i < nhalted; i++) {
		sb_printf(&b, "%s{\"release\":%lld,\"target\":\"%s\",\"reason\":", i ? "," : "",
			  (long long)halted[i].id, halted[i].target);
		sb_jstr(&b, halted[i].reason);
		sb_printf(&b, "}");
	}
	sb_printf(&b, "],\"poll_interval\":%u,\"server_time\":%lld}", s->poll_interval,
		  (long long)now);
	if (b.full) {
		free(b.p);
		return ERR(r, 503, "unavailable", NULL, "reply too large");
	}
	atomic_fetch_add(&s->m_checkins, 1);
	r->status = 200;
	r->content_type = "application/json";
	r->body = b.p;
	r->len = b.n;
	return 0;
}

/* Who caused a failure report (docs/protocol.md): the content, the device (store, disk), the
 * transit (mirror, signature, hash), or the server (a halt the device obeyed). */
enum { CAUSE_CONTENT, CAUSE_LOCAL, CAUSE_TRANSIT, CAUSE_SERVER, CAUSE_COUNT_ };
static const char *const cause_names[CAUSE_COUNT_] = {"content", "local", "transit", "server"};

static int handle_report(struct rf_server *s, const struct rf_server_request *q,
			 struct rf_server_reply *r)
{
	const char *dev_id, *rep_id, *event, *target, *sha, *detail, *cause = NULL;
	uint64_t t = 0;
	json_t *j = NULL;
	int ev = -1, ret = -1, why = -1;

	if (parse_body(q, RF_SRV_DEVICE_BODY_MAX, r, &j) < 0)
		return -1;
	if (get_str(r, j, "device_id", S_ID, true, &dev_id) < 0 ||
	    get_str(r, j, "report_id", S_ID, true, &rep_id) < 0 ||
	    get_str(r, j, "event", S_ID, true, &event) < 0 ||
	    get_str(r, j, "target", S_ID, false, &target) < 0 ||
	    get_str(r, j, "sha256", S_HEX, false, &sha) < 0 ||
	    get_str(r, j, "detail", S_TEXT, false, &detail) < 0 ||
	    get_str(r, j, "cause", S_ID, false, &cause) < 0 || get_u64(r, j, "time", &t) < 0)
		goto out;
	/* Failure attribution (docs/protocol.md, Report): only the content's failures count
	 * against a release. */
	if (cause) {
		for (int i = 0; i < CAUSE_COUNT_; i++)
			if (!strcmp(cause, cause_names[i]))
				why = i;
		if (why < 0) {
			ERR(r, 400, "invalid_field", "cause",
			    "'cause' must be one of content, local, transit, server");
			goto out;
		}
	}
	for (int i = 0; i < 8; i++)
		if (!strcmp(event, rf__srv_events[i]))
			ev = i;
	if (ev < 0) {
		ERR(r, 400, "invalid_field", "event",
		    "'event' must be one of installed, intent, trial_started, healthy, crashed, "
		    "rolled_back, rejected, quarantined");
		goto out;
	}
	if (t > (uint64_t)RF_ROLLOUT_TIME_MAX) {
		ERR(r, 400, "invalid_field", "time", "'time' is out of range");
		goto out;
	}

	uint8_t cred_h[32];
	if (dev_cred_hash(q, r, cred_h) < 0)
		goto out;
	pthread_mutex_lock(&s->lock);
	struct rf__srv_dev *d = dev_auth(s, cred_h, dev_id, r);
	if (!d)
		goto unlock;
	int64_t now = rf__srv_now(s);
	const struct rf__srv_release *rel = NULL;
	if (sha) {
		uint8_t b[32];
		if (rf_hex_decode(sha, 64, b, 32) == 0)
			rel = rel_by_sha(s, b);
	}
	if (!rel && target)
		rel = rel_by_target(s, target);

	/* The device state the report leads to, computed on a copy: memory changes only after
	 * the store committed it. */
	struct rf__srv_dev nd = *d;
	nd.last_seen = now;
	copy_str(nd.state, sizeof(nd.state), event);
	nd.state_at = now;
	if (rel && (ev == EV_ROLLED_BACK || ev == EV_QUARANTINED)) {
		const struct rf__srv_release *left = rel_by_id(s, release_left(&nd, rel->id));
		if (left)
			rel = left;
	}
	/* An older agent does not say why it rolled back: leaving a release that is halted now
	 * is obeying the halt. */
	if (why < 0)
		why = ev == EV_ROLLED_BACK && rel &&
			      (rel->st.status == RF_ROLLOUT_HALTED ||
			       rel->st.status == RF_ROLLOUT_ROLLED_BACK)
			  ? CAUSE_SERVER
			  : CAUSE_CONTENT;
	bool content = why == CAUSE_CONTENT;
	if (rel) {
		struct rf__srv_devrel *h;
		if (ev == EV_INTENT || ev == EV_TRIAL) {
			if (nd.release_id != rel->id || !hist_get(&nd, rel->id, false, now))
				dev_take(&nd, rel->id, now);
		}
		h = hist_get(&nd, rel->id, ev != EV_INSTALLED, now);
		switch (ev) {
		case EV_HEALTHY:
			if (h && !h->healthy_at)
				h->healthy_at = now;
			break;
		case EV_CRASHED:
			if (h && content)
				h->crashes++;
			else if (h && why != CAUSE_SERVER)
				h->local++;
			break;
		case EV_ROLLED_BACK:
			if (h) {
				if (content)
					h->rollbacks++;
				else if (why == CAUSE_SERVER)
					h->obeyed = 1;
				else
					h->local++;
				if (!h->left_at)
					h->left_at = now;
			}
			break;
		case EV_REJECTED:
			if (h && content)
				h->rejects++;
			else if (h && why != CAUSE_SERVER)
				h->local++;
			break;
		case EV_QUARANTINED:
			if (h && content)
				h->quarantined = 1;
			else if (h && why != CAUSE_SERVER)
				h->local++;
			break;
		default:
			break;
		}
	}
	struct rf_store_report rep = {
	    .device_id = dev_id,
	    .report_id = rep_id,
	    .event = event,
	    .target = target ? target : "",
	    .sha256_hex = sha ? sha : "",
	    .release_id = rel ? rel->id : 0,
	    .time = (int64_t)t,
	    .received_at = now,
	    .detail = detail ? detail : "",
	};
	struct rf_store_device rec;
	char *hist;
	bool dup = false;
	int e = dev_record(&nd, s, &rec, &hist);
	if (e == 0) {
		e = rf_store_report_add(s->store, &rep, &rec, &dup);
		free(hist);
	}
	if (e < 0) {
		ERR(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
		goto unlock;
	}
	if (dup) {
		atomic_fetch_add(&s->m_reports_dup, 1);
		rf__srv_reply_json(r, 200, json_pack("{s:b,s:b}", "recorded", 0, "duplicate", 1));
	} else {
		nd.flags &= (uint8_t) ~(DEV_DIRTY | DEV_SEEN);
		*d = nd;
		atomic_fetch_add(&s->m_reports[ev], 1);
		rf__srv_reply_json(r, 201, json_pack("{s:b}", "recorded", 1));
	}
	ret = 0;
unlock:
	pthread_mutex_unlock(&s->lock);
out:
	json_decref(j);
	return ret;
}

/* ---- operator API --------------------------------------------------------------------------- */

static bool admin_ok(struct rf_server *s, const struct rf_server_request *q,
		     struct rf_server_reply *r)
{
	const char *tok = bearer(q->authorization, "rfa_");
	uint8_t h[32];

	if (!tok) {
		ERR(r, 401, "unauthorized", NULL,
		    "operator requests need 'Authorization: Bearer rfa_...'");
		return false;
	}
	hash_token(tok, h);
	if (CRYPTO_memcmp(h, s->admin_hash, 32) != 0) {
		ERR(r, 401, "unauthorized", NULL, "wrong admin token");
		return false;
	}
	return true;
}

static json_t *rings_json(struct rf_server *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->nrings; i++)
		json_array_append_new(a, json_pack("{s:s,s:I,s:I}", "name", s->rings[i].name,
						   "position", (json_int_t)s->rings[i].position,
						   "devices", (json_int_t)s->rings[i].ndevices));
	return json_pack("{s:o}", "rings", a);
}

static int cmp_ring(const void *a, const void *b)
{
	const struct rf__srv_ring *x = a, *y = b;
	return x->position < y->position ? -1 : x->position > y->position;
}

static int admin_rings(struct rf_server *s, const struct rf_server_request *q, const char *rest,
		       struct rf_server_reply *r)
{
	if (!strcmp(q->method, "GET") && !*rest)
		return rf__srv_reply_json(r, 200, rings_json(s));
	if (!strcmp(q->method, "POST") && !*rest) {
		json_t *j;
		const char *name;
		uint64_t pos = s->nrings;
		int e = -1;

		if (parse_body(q, RF_SRV_ADMIN_BODY_MAX, r, &j) < 0)
			return -1;
		if (get_str(r, j, "name", S_ID, true, &name) < 0 ||
		    get_u64(r, j, "position", &pos) < 0)
			goto done;
		if (strlen(name) >= RF_ROLLOUT_RING_NAME_MAX) {
			e = ERR(r, 400, "invalid_field", "name",
				"ring names are at most %d characters",
				RF_ROLLOUT_RING_NAME_MAX - 1);
			goto done;
		}
		if (ring_find(s, name) >= 0) {
			e = ERR(r, 409, "conflict", "name", "ring '%s' exists", name);
			goto done;
		}
		if (s->nrings == RF_SRV_RINGS_MAX) {
			e = ERR(r, 409, "conflict", NULL, "at most %d rings", RF_SRV_RINGS_MAX);
			goto done;
		}
		struct rf_store_ring rec = {name, (int64_t)pos};
		e = rf_store_ring_put(s->store, &rec);
		if (e < 0) {
			e = ERR(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
			goto done;
		}
		copy_str(s->rings[s->nrings].name, sizeof(s->rings[0].name), name);
		s->rings[s->nrings].position = (int64_t)pos;
		s->rings[s->nrings++].ndevices = 0;
		qsort(s->rings, s->nrings, sizeof(s->rings[0]), cmp_ring);
		rf__srv_audit(s, 5, s->actor, "ring.create", 0, name, "position %llu",
			      (unsigned long long)pos);
		e = rf__srv_reply_json(r, 201, rings_json(s));
	done:
		json_decref(j);
		return e;
	}
	if (!strcmp(q->method, "DELETE") && *rest) {
		int i = ring_find(s, rest), e;
		if (i < 0)
			return ERR(r, 404, "not_found", NULL, "no ring '%s'", rest);
		bool used = s->rings[i].ndevices > 0;
		for (size_t t = 0; t < s->ntenants; t++)
			used |= !strcmp(s->tenants[t].ring, rest);
		if (used)
			return ERR(r, 409, "conflict", NULL,
				   "ring '%s' is used by devices or tenants", rest);
		e = rf_store_ring_delete(s->store, rest);
		if (e < 0)
			return ERR(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
		memmove(&s->rings[i], &s->rings[i + 1],
			(s->nrings - (size_t)i - 1) * sizeof(s->rings[0]));
		s->nrings--;
		rf__srv_audit(s, 5, s->actor, "ring.delete", 0, rest, "%s", "");
		return rf__srv_reply_json(r, 200, rings_json(s));
	}
	return ERR(r, 405, "method_not_allowed", NULL, "%s not allowed here", q->method);
}

static json_t *tenant_json(const struct rf__srv_tenant *t)
{
	json_t *win = json_null();

	if (t->win_start_min >= 0 && t->win_end_min >= 0 && t->win_start_min != t->win_end_min) {
		char a[8], b[8];
		snprintf(a, sizeof(a), "%02d:%02d", (int)(t->win_start_min / 60),
			 (int)(t->win_start_min % 60));
		snprintf(b, sizeof(b), "%02d:%02d", (int)(t->win_end_min / 60),
			 (int)(t->win_end_min % 60));
		win = json_pack("{s:s,s:s}", "start", a, "end", b);
	}
	return json_pack("{s:s,s:o,s:s,s:o,s:I}", "name", t->name, "ring",
			 t->ring[0] ? json_string(t->ring) : json_null(), "pin",
			 t->policy.pin == RF_ROLLOUT_PIN_N1 ? "n-1" : "latest", "window", win,
			 "devices", (json_int_t)t->ndevices);
}

/* "HH:MM" -> minutes after midnight, -1 if malformed. */
static int64_t hhmm(const char *v)
{
	if (!v || strlen(v) != 5 || v[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (v[i] < '0' || v[i] > '9'))
			return -1;
	int h = (v[0] - '0') * 10 + (v[1] - '0'), m = (v[3] - '0') * 10 + (v[4] - '0');
	return h < 24 && m < 60 ? h * 60 + m : -1;
}

/* Apply the policy members present in j to t (a copy). Returns 0 or -1 with the error reply. */
static int tenant_policy(struct rf_server *s, json_t *j, struct rf__srv_tenant *t,
			 struct rf_server_reply *r, const char **ret_pin)
{
	const char *ring, *pin;
	json_t *win, *rv = json_object_get(j, "ring");

	if (get_str(r, j, "ring", S_ID, false, &ring) < 0 ||
	    get_str(r, j, "pin", S_ID, false, &pin) < 0)
		return -1;
	if (ring && ring_find(s, ring) < 0)
		return ERR(r, 400, "invalid_field", "ring", "no ring '%s'", ring);
	if (ring)
		copy_str(t->ring, sizeof(t->ring), ring);
	else if (rv && json_is_null(rv))
		t->ring[0] = 0;
	if (pin && strcmp(pin, "latest") && strcmp(pin, "n-1"))
		return ERR(r, 400, "invalid_field", "pin", "'pin' must be \"latest\" or \"n-1\"");
	*ret_pin = pin ? pin : t->policy.pin == RF_ROLLOUT_PIN_N1 ? "n-1" : "latest";
	win = json_object_get(j, "window");
	int64_t ws = t->win_start_min, we = t->win_end_min;
	if (win && json_is_null(win)) {
		ws = we = -1;
	} else if (win) {
		const char *a, *b;
		if (!json_is_object(win) || get_str(r, win, "start", S_ID, true, &a) < 0 ||
		    get_str(r, win, "end", S_ID, true, &b) < 0)
			return json_is_object(win) ? -1
						   : ERR(r, 400, "invalid_field", "window",
							 "'window' must be null or "
							 "{\"start\":\"HH:MM\",\"end\":\"HH:MM\"}");
		ws = hhmm(a);
		we = hhmm(b);
		if (ws < 0 || we < 0 || ws == we)
			return ERR(r, 400, "invalid_field", "window",
				   "window start and end must be distinct HH:MM (UTC)");
	}
	policy_from(t, *ret_pin, ws, we);
	return 0;
}

static int tenant_store(struct rf_server *s, const struct rf__srv_tenant *t, const char *pin)
{
	struct rf_store_tenant rec = {
	    .name = t->name,
	    .ring = t->ring[0] ? t->ring : NULL,
	    .pin = pin,
	    .win_start_min = t->win_start_min,
	    .win_end_min = t->win_end_min,
	};
	memcpy(rec.token_hash, t->token_hash, 32);
	return rf_store_tenant_put(s->store, &rec);
}

static int admin_tenants(struct rf_server *s, const struct rf_server_request *q, const char *rest,
			 struct rf_server_reply *r)
{
	char name[RF_SRV_ID_MAX + 1] = "";
	const char *sub = NULL, *slash = strchr(rest, '/');
	int ti = -1, e;

	if (*rest) {
		size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
		if (!id_valid(rest, n))
			return ERR(r, 404, "not_found", NULL, "no such tenant");
		memcpy(name, rest, n);
		name[n] = 0;
		sub = slash ? slash + 1 : "";
		ti = tenant_find(s, name);
		if (ti < 0)
			return ERR(r, 404, "not_found", NULL, "no tenant '%s'", name);
	}
	if (!strcmp(q->method, "GET")) {
		if (ti >= 0 && !*sub)
			return rf__srv_reply_json(r, 200, tenant_json(&s->tenants[ti]));
		if (ti < 0) {
			json_t *a = json_array();
			for (size_t i = 0; i < s->ntenants; i++)
				json_array_append_new(a, tenant_json(&s->tenants[i]));
			return rf__srv_reply_json(r, 200, json_pack("{s:o}", "tenants", a));
		}
	}
	json_t *j = NULL;
	if (q->body_len || strcmp(q->method, "POST") || ti < 0) {
		if (parse_body(q, RF_SRV_ADMIN_BODY_MAX, r, &j) < 0)
			return -1;
	}
	e = -1;
	if (!strcmp(q->method, "POST") && ti < 0) {
		const char *tname, *pin;
		char tok[69];
		struct rf__srv_tenant t = {.win_start_min = -1, .win_end_min = -1}, *nt;

		if (get_str(r, j, "name", S_ID, true, &tname) < 0)
			goto done;
		if (tenant_find(s, tname) >= 0) {
			e = ERR(r, 409, "conflict", "name", "tenant '%s' exists", tname);
			goto done;
		}
		copy_str(t.name, sizeof(t.name), tname);
		if (tenant_policy(s, j, &t, r, &pin) < 0)
			goto done;
		if (new_token("rfe_", tok, t.token_hash) < 0 || tenant_add(s, &nt) < 0) {
			e = ERR(r, 503, "unavailable", NULL, "out of resources");
			goto done;
		}
		e = tenant_store(s, &t, pin);
		if (e < 0) {
			e = ERR(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
			goto done;
		}
		*nt = t;
		s->ntenants++;
		rf__srv_audit_tenant(s, "tenant.create", nt, pin);
		json_t *o = tenant_json(nt);
		json_object_set_new(o, "enrollment_token", json_string(tok));
		OPENSSL_cleanse(tok, sizeof(tok));
		e = rf__srv_reply_json(r, 201, o);
	} else if (!strcmp(q->method, "PUT") && ti >= 0 && !*sub) {
		struct rf__srv_tenant t = s->tenants[ti];
		const char *pin;
		if (tenant_policy(s, j, &t, r, &pin) < 0)
			goto done;
		e = tenant_store(s, &t, pin);
		if (e < 0) {
			e = ERR(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
			goto done;
		}
		s->tenants[ti] = t;
		recount_rings(s);
		rf__srv_audit_tenant(s, "tenant.update", &t, pin);
		e = rf__srv_reply_json(r, 200, tenant_json(&t));
	} else if (!strcmp(q->method, "POST") && ti >= 0 && !strcmp(sub, "token")) {
		struct rf__srv_tenant t = s->tenants[ti];
		char tok[69];
		if (new_token("rfe_", tok, t.token_hash) < 0) {
			e = ERR(r, 503, "unavailable", NULL, "no randomness");
			goto done;
		}
		e = tenant_store(s, &t, t.policy.pin == RF_ROLLOUT_PIN_N1 ? "n-1" : "latest");
		if (e < 0) {
			e = ERR(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
			goto done;
		}
		s->tenants[ti] = t;
		rf__srv_audit_tenant(s, "tenant.token", &t, NULL);
		e = rf__srv_reply_json(
		    r, 200, json_pack("{s:s,s:s}", "name", t.name, "enrollment_token", tok));
		OPENSSL_cleanse(tok, sizeof(tok));
	} else {
		e = ERR(r, 405, "method_not_allowed", NULL, "%s not allowed here", q->method);
	}
done:
	json_decref(j);
	return e;
}

json_t *rf__srv_release_json(struct rf_server *s, const struct rf__srv_release *rel, bool full)
{
	int64_t now = rf__srv_now(s);
	json_t *o =
	    json_pack("{s:I,s:s,s:s,s:I,s:I,s:s,s:s,s:I,s:s}", "id", (json_int_t)rel->id, "target",
		      rel->target, "sha256", rel->sha_hex, "length", (json_int_t)rel->length,
		      "version", (json_int_t)rel->version, "release", rel->sched.release, "status",
		      rf_rollout_status_name(rel->st.status), "created_at",
		      (json_int_t)rel->created_at, "halt_reason", rel->st.halt_reason);
	if (o)
		json_object_set_new(o, "waiting_for_fix", json_integer((json_int_t)rel->waiting));
	if (!full || !o)
		return o;
	json_t *rings = json_array();
	for (unsigned i = 0; i < rel->sched.nrings; i++) {
		const struct rf_rollout_health *h = &rel->health[i], *b = &rel->base[i];
		const struct rf_rollout_check *c = &rel->eval.checks[i];
		json_t *hj = json_pack(
		    "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "devices",
		    (json_int_t)h->devices, "healthy", (json_int_t)h->healthy, "failed",
		    (json_int_t)h->failed, "crashes", (json_int_t)h->crashes, "rollbacks",
		    (json_int_t)h->rollbacks, "rejections", (json_int_t)h->rejections, "silent",
		    (json_int_t)h->silent, "alerts", (json_int_t)h->alerts, "exposure_s",
		    (json_int_t)h->exposure_s, "local_failures", (json_int_t)h->local_failures,
		    "obeyed_halt", (json_int_t)h->obeyed);
		json_t *bj = json_pack(
		    "{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "devices", (json_int_t)b->devices, "failed",
		    (json_int_t)b->failed, "crashes", (json_int_t)b->crashes, "rollbacks",
		    (json_int_t)b->rollbacks, "rejections", (json_int_t)b->rejections, "silent",
		    (json_int_t)b->silent, "exposure_s", (json_int_t)b->exposure_s);
		const char *verdict = rel->st.rings[i].phase == RF_ROLLOUT_NOT_STARTED ? "none"
				      : c->verdict == RF_ROLLOUT_V_PASS		       ? "pass"
				      : c->verdict == RF_ROLLOUT_V_FAIL		       ? "fail"
										       : "wait";
		/* A halted release's rings say so, and agree with its reason: the ring whose
		 * gate failed says "fail" (with its evidence, kept from the last evaluation), the
		 * others "halted" (nothing is judged while it is halted). */
		if (rel->st.status == RF_ROLLOUT_HALTED || rel->st.status == RF_ROLLOUT_ROLLED_BACK)
			verdict = rel->st.halt_ring == (int)i ? "fail" : "halted";
		json_array_append_new(
		    rings,
		    json_pack("{s:s,s:s,s:i,s:f,s:I,s:o,s:o,s:{s:s,s:s,s:f}}", "ring",
			      rel->sched.rings[i].name, "phase",
			      rf_rollout_phase_name(rel->st.rings[i].phase), "step",
			      rel->st.rings[i].step, "percent",
			      rf_rollout_effective_bp(&rel->sched, &rel->st, (int)i, now) / 100.0,
			      "not_before", (json_int_t)rel->sched.rings[i].not_before, "health",
			      hj, "baseline", bj, "gate", "verdict", verdict, "metric",
			      rf_rollout_metric_name(c->metric), "p_value", c->p_value));
	}
	json_object_set_new(o, "rings", rings);
	json_object_set_new(o, "halt_metric",
			    json_string(rf_rollout_metric_name(rel->st.halt_metric)));
	json_object_set_new(o, "halted_at", json_integer(rel->st.halted_at));
	return o;
}

/* Find the target in the published TUF metadata of the repository: timestamp -> snapshot ->
 * targets (the server's own repository: it signed it; devices verify it themselves). */
static int repo_target(struct rf_server *s, const char *target, json_t **ret_custom,
		       uint64_t *ret_len, uint8_t ret_sha[32], struct rf_server_reply *r)
{
	char path[4096];
	json_t *ts = NULL, *snap = NULL, *tg = NULL, *t;
	json_int_t sv = 0, tv = 0;
	const char *sha = NULL;
	int e = -1;

	if (!s->repo_dir)
		return ERR(r, 409, "conflict", NULL, "the server was started without --repo");
	snprintf(path, sizeof(path), "%s/repository/metadata/timestamp.json", s->repo_dir);
	ts = json_load_file(path, 0, NULL);
	if (!ts || json_unpack(json_object_get(json_object_get(ts, "signed"), "meta"), "{s:{s:I}}",
			       "snapshot.json", "version", &sv) < 0) {
		e = ERR(r, 409, "conflict", NULL, "repository has no readable timestamp.json");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/repository/metadata/%lld.snapshot.json", s->repo_dir,
		 (long long)sv);
	snap = json_load_file(path, 0, NULL);
	if (!snap || json_unpack(json_object_get(json_object_get(snap, "signed"), "meta"),
				 "{s:{s:I}}", "targets.json", "version", &tv) < 0) {
		e = ERR(r, 409, "conflict", NULL, "repository snapshot %lld unreadable",
			(long long)sv);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/repository/metadata/%lld.targets.json", s->repo_dir,
		 (long long)tv);
	tg = json_load_file(path, 0, NULL);
	t = json_object_get(json_object_get(json_object_get(tg, "signed"), "targets"), target);
	if (!t) {
		e = ERR(r, 400, "invalid_field", "target",
			"target '%s' is not published in the repository", target);
		goto out;
	}
	json_t *len = json_object_get(t, "length");
	sha = json_string_value(json_object_get(json_object_get(t, "hashes"), "sha256"));
	if (!json_is_integer(len) || json_integer_value(len) < 0 || !sha || strlen(sha) != 64 ||
	    rf_hex_decode(sha, 64, ret_sha, 32) < 0) {
		e = ERR(r, 400, "invalid_field", "target", "target '%s' has no length or sha256",
			target);
		goto out;
	}
	json_t *custom = json_object_get(t, "custom");
	if (!json_is_object(custom)) {
		e = ERR(r, 400, "invalid_field", "target",
			"target '%s' has no custom metadata (the signed schedule)", target);
		goto out;
	}
	*ret_len = (uint64_t)json_integer_value(len);
	*ret_custom = json_incref(custom);
	e = 0;
out:
	json_decref(ts);
	json_decref(snap);
	json_decref(tg);
	return e;
}

static int release_create(struct rf_server *s, const struct rf_server_request *q,
			  struct rf_server_reply *r)
{
	json_t *j, *custom = NULL;
	const char *target;
	struct rf_diag d = {0};
	struct rf__srv_release nr = {0}, *slot;
	int e = -1;

	if (parse_body(q, RF_SRV_ADMIN_BODY_MAX, r, &j) < 0)
		return -1;
	if (get_str(r, j, "target", S_ID, true, &target) < 0)
		goto out;
	if (rel_by_target(s, target)) {
		e = ERR(r, 409, "conflict", "target", "a release of '%s' exists", target);
		goto out;
	}
	if (repo_target(s, target, &custom, &nr.length, nr.sha, r) < 0)
		goto out;
	if (rf_rollout_schedule_from_json(custom, &nr.sched, &d) < 0) {
		e = ERR(r, 400, "invalid_field", "target", "signed schedule of '%s': %s", target,
			d.first);
		goto out;
	}
	nr.custom = json_dumps(custom, JSON_COMPACT | JSON_SORT_KEYS);
	if (!nr.custom) {
		e = ERR(r, 503, "unavailable", NULL, "out of memory");
		goto out;
	}
	nr.id = s->nrels ? s->rels[s->nrels - 1].id + 1 : 1;
	copy_str(nr.target, sizeof(nr.target), target);
	rf_hex_encode(nr.sha, 32, nr.sha_hex);
	json_int_t ver = nr.id;
	(void)json_unpack(custom, "{s:{s:I}}", "ringfence", "version", &ver);
	nr.version = ver;
	nr.created_at = rf__srv_now(s);
	rf_rollout_state_init(&nr.sched, &nr.st);
	(void)rf_rollout_evaluate(&nr.sched, &nr.st, nr.health, NULL, nr.created_at, &nr.st,
				  &nr.eval);
	/* The slot first: a release written to the store but not in memory would answer its
	 * retry with 409 while no status shows it. */
	if (release_add(s, &slot) < 0) {
		free(nr.custom);
		e = ERR(r, 503, "unavailable", NULL, "out of memory");
		goto out;
	}
	e = release_persist(s, &nr);
	if (e < 0) {
		free(nr.custom);
		e = e == -EEXIST
			? ERR(r, 409, "conflict", "target", "a release of '%s' exists", target)
			: ERR(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
		goto out;
	}
	*slot = nr;
	s->nrels++;
	rr_rebuild(s);
	rf__srv_audit(s, 5, s->actor, "release.create", slot->id, slot->target,
		      "release '%s' version %lld, sha256 %.16s..., %llu bytes", slot->sched.release,
		      (long long)slot->version, slot->sha_hex, (unsigned long long)slot->length);
	e = rf__srv_reply_json(r, 201, rf__srv_release_json(s, slot, true));
out:
	json_decref(custom);
	json_decref(j);
	return e;
}

/*
 * How many devices running rel would have nowhere to go if its state became *st: the rollout
 * engine's own answer for each of them (with what each reported at its last check-in) is
 * "wait for a fix". Operator actions only: O(devices) under the lock, once per action.
 */
static uint64_t count_stranded(struct rf_server *s, struct rf__srv_release *rel,
			       const struct rf_rollout_state *st, int64_t now)
{
	size_t first = s->nrels > RF_ROLLOUT_DECIDE_MAX ? s->nrels - RF_ROLLOUT_DECIDE_MAX : 0;
	size_t idx = (size_t)(rel - s->rels);
	struct rf_rollout_state saved;
	uint64_t n = 0;

	if (idx < first)
		return 0;
	saved = s->rr[idx].state;
	s->rr[idx].state = *st;
	for (size_t i = 0; i < s->capdevs; i++) {
		const struct rf__srv_dev *d = s->devtab[i];
		struct rf_rollout_answer a;

		if (!d || d->release_id != rel->id)
			continue;
		struct rf_rollout_device rd = {.id = d->id,
					       .id_len = d->id_len,
					       .ring = dev_ring(s, d),
					       .current = (int)(idx - first),
					       .fallback = d->fallback};
		if (rf_rollout_decide(&rd, &s->tenants[d->tenant].policy, s->rr + first,
				      s->nrels - first, now, &a) == 0 &&
		    a.reason == RF_ROLLOUT_R_WAITING_FIX)
			n++;
	}
	s->rr[idx].state = saved;
	return n;
}

static int release_action(struct rf_server *s, const struct rf_server_request *q,
			  struct rf__srv_release *rel, const char *act, struct rf_server_reply *r)
{
	json_t *j = NULL;
	bool force = false;
	const char *reason = NULL;
	struct rf__srv_release nr = *rel;
	int64_t now = rf__srv_now(s);
	int e;

	if (q->body_len) {
		if (parse_body(q, RF_SRV_ADMIN_BODY_MAX, r, &j) < 0)
			return -1;
		if (get_str(r, j, "reason", S_TEXT, false, &reason) < 0) {
			json_decref(j);
			return -1;
		}
		json_t *f = json_object_get(j, "force");
		if (f && !json_is_boolean(f) && !json_is_null(f)) {
			json_decref(j);
			return ERR(r, 400, "invalid_field", "force", "'force' must be a boolean");
		}
		force = json_is_true(f);
	}
	char why[RF_ROLLOUT_REASON_MAX];
	snprintf(why, sizeof(why), "operator: %s", reason && *reason ? reason : act);
	if (!strcmp(act, "halt"))
		e = rf_rollout_halt(&nr.st, now, why);
	else if (!strcmp(act, "resume")) {
		e = rf_rollout_resume(&nr.st, now);
		nr.resumed_at = now; /* the evidence that halted it does not halt it again */
	} else if (!strcmp(act, "rollback"))
		e = rf_rollout_rollback(&nr.st, now, why);
	else if (!strcmp(act, "hold"))
		e = rf_rollout_hold(&nr.st, now, why);
	else {
		json_decref(j);
		return ERR(r, 404, "not_found", NULL,
			   "no action '%s' (halt, resume, rollback, hold)", act);
	}
	json_decref(j);
	if (e == -EALREADY || e == -EPERM)
		return ERR(r, 409, "conflict", NULL, "release %lld is %s: cannot %s",
			   (long long)rel->id, rf_rollout_status_name(rel->st.status), act);
	if (e < 0)
		return ERR(r, 400, "invalid_field", NULL, "%s: %s", act, rf_strerror(e));
	/* Guard rail: devices that run it as their only good content have nowhere to go. They
	 * keep running it and wait for a fix; the operator must know and say so. */
	uint64_t stranded = 0;
	if (!strcmp(act, "halt") || !strcmp(act, "rollback")) {
		stranded = count_stranded(s, rel, &nr.st, now);
		if (stranded && !force)
			return ERR(r, 409, "conflict", "force",
				   "%llu device%s run release %lld as their only good content and "
				   "would have nowhere to go: they would keep running it, waiting "
				   "for a fix. Publish a fixed release first, or repeat with force "
				   "(CLI: --force) to %s anyway",
				   (unsigned long long)stranded, stranded == 1 ? "" : "s",
				   (long long)rel->id, act);
	}
	e = release_persist(s, &nr);
	if (e < 0)
		return ERR(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
	*rel = nr;
	rr_rebuild(s);
	rf__srv_audit_action(s, rel, act, why, force, stranded);
	json_t *out = rf__srv_release_json(s, rel, true);
	if (out && (!strcmp(act, "halt") || !strcmp(act, "rollback")))
		json_object_set_new(out, "stranded", json_integer((json_int_t)stranded));
	return rf__srv_reply_json(r, 200, out);
}

static int admin_releases(struct rf_server *s, const struct rf_server_request *q, const char *rest,
			  struct rf_server_reply *r)
{
	if (!*rest) {
		if (!strcmp(q->method, "POST"))
			return release_create(s, q, r);
		if (!strcmp(q->method, "GET")) {
			json_t *a = json_array();
			for (size_t i = s->nrels; i-- > 0;)
				json_array_append_new(a,
						      rf__srv_release_json(s, &s->rels[i], false));
			return rf__srv_reply_json(r, 200, json_pack("{s:o}", "releases", a));
		}
		return ERR(r, 405, "method_not_allowed", NULL, "%s not allowed here", q->method);
	}
	char num[24];
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	uint64_t id;
	struct rf__srv_release *rel = NULL;

	if (n && n < sizeof(num)) {
		memcpy(num, rest, n);
		num[n] = 0;
		if (rf_parse_u64(num, &id) == 0 && id <= INT64_MAX)
			rel = rel_by_id(s, (int64_t)id);
	}
	if (!rel)
		return ERR(r, 404, "not_found", NULL, "no such release");
	if (!slash) {
		if (strcmp(q->method, "GET"))
			return ERR(r, 405, "method_not_allowed", NULL, "%s not allowed here",
				   q->method);
		return rf__srv_reply_json(r, 200, rf__srv_release_json(s, rel, true));
	}
	if (strcmp(q->method, "POST"))
		return ERR(r, 405, "method_not_allowed", NULL, "%s not allowed here", q->method);
	return release_action(s, q, rel, slash + 1, r);
}

static int handle_admin(struct rf_server *s, const struct rf_server_request *q, const char *rest,
			struct rf_server_reply *r)
{
	int e;

	uint8_t who[32];

	if (!admin_ok(s, q, r))
		return -1;
	hash_token(bearer(q->authorization, "rfa_"), who);
	pthread_mutex_lock(&s->lock);
	rf__srv_set_actor(s, who);
	if (!strcmp(rest, "audit"))
		e = rf__srv_admin_audit(s, q, r);
	else if (!strncmp(rest, "rings", 5) && (rest[5] == 0 || rest[5] == '/'))
		e = admin_rings(s, q, rest[5] ? rest + 6 : "", r);
	else if (!strncmp(rest, "tenants", 7) && (rest[7] == 0 || rest[7] == '/'))
		e = admin_tenants(s, q, rest[7] ? rest + 8 : "", r);
	else if (!strncmp(rest, "releases", 8) && (rest[8] == 0 || rest[8] == '/'))
		e = admin_releases(s, q, rest[8] ? rest + 9 : "", r);
	else
		e = ERR(r, 404, "not_found", NULL, "no such operator resource");
	pthread_mutex_unlock(&s->lock);
	return e;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

size_t rf_server_body_max(const char *path)
{
	return path && !strncmp(path, "/v1/admin/", 10) ? RF_SRV_ADMIN_BODY_MAX
							: RF_SRV_DEVICE_BODY_MAX;
}

int rf_server_handle(struct rf_server *s, const struct rf_server_request *q,
		     struct rf_server_reply *r)
{
	const char *p = q->path;
	bool get = !strcmp(q->method, "GET"), post = !strcmp(q->method, "POST");

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (!strcmp(p, "/v1/checkin") && post) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		handle_checkin(s, q, r);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		rf__srv_observe_checkin(s, (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
					       (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec);
	}
	else if (!strcmp(p, "/v1/report") && post)
		handle_report(s, q, r);
	else if (!strcmp(p, "/v1/enroll") && post)
		handle_enroll(s, q, r);
	else if (!strncmp(p, "/v1/admin/", 10))
		handle_admin(s, q, p + 10, r);
	else if (!strncmp(p, "/repo/", 6) && get)
		rf__srv_repo_file(s, p + 6, r);
	else if (!strcmp(p, "/metrics") && get)
		rf__srv_metrics(s, r);
	else if (!strcmp(p, "/") && get)
		rf__srv_dashboard(s, r);
	else if (!strcmp(p, "/v1/checkin") || !strcmp(p, "/v1/report") ||
		 !strcmp(p, "/v1/enroll") || !strcmp(p, "/metrics") || !strcmp(p, "/"))
		rf__srv_reply_error(r, 405, "method_not_allowed", NULL, "%s not allowed on %s",
				    q->method, "this path");
	else
		rf__srv_reply_error(r, 404, "not_found", NULL, "no such resource");
	if (!r->body && r->fd < 0)
		return -ENOMEM;
	if (r->status >= 500)
		atomic_fetch_add(&s->m_http_5xx, 1);
	else if (r->status >= 400)
		atomic_fetch_add(&s->m_http_4xx, 1);
	return 0;
}

void rf_server_reply_free(struct rf_server_reply *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* ---- tick: flush, gates, timestamp ---------------------------------------------------------- */

static int flush_devices(struct rf_server *s, bool heartbeats)
{
	struct rf_store_device *recs = NULL;
	char **hists = NULL;
	struct rf__srv_dev **which = NULL;
	size_t n = 0, cap = 0;
	int e = 0;

	for (size_t i = 0; i < s->capdevs && e == 0; i++) {
		struct rf__srv_dev *d = s->devtab[i];
		if (!d || !(d->flags & DEV_DIRTY || (heartbeats && d->flags & DEV_SEEN)))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			void *a = realloc(recs, nc * sizeof(*recs)), *b, *c;
			if (a)
				recs = a;
			b = realloc(hists, nc * sizeof(*hists));
			if (b)
				hists = b;
			c = realloc(which, nc * sizeof(*which));
			if (c)
				which = c;
			if (!a || !b || !c) {
				e = -ENOMEM;
				break;
			}
			cap = nc;
		}
		e = dev_record(d, s, &recs[n], &hists[n]);
		if (e == 0)
			which[n++] = d;
	}
	if (e == 0 && n) {
		e = rf_store_devices_put(s->store, recs, n);
		if (e == 0) {
			for (size_t i = 0; i < n; i++)
				which[i]->flags = 0;
			atomic_fetch_add(&s->m_flushes, 1);
			atomic_fetch_add(&s->m_flushed_rows, n);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(hists[i]);
	free(recs);
	free(hists);
	free(which);
	return e;
}

/* Aggregate every device's outcomes into health[] / base[] of each release and ring. */
/*
 * How many of each ring's devices the step being judged actually admits (bucket below the
 * ring's effective percent), so a step never waits for more healthy devices than it can have
 * (rollout.h, struct rf_rollout_health.admitted). Devices of tenants pinned to N-1 are left out:
 * they never take the newest open release. Counted on every evaluation: one SipHash per device
 * and open ring, the same order of work as the health aggregation above.
 */
static void count_admitted(struct rf_server *s, int64_t now)
{
	for (size_t i = 0; i < s->nrels; i++) {
		struct rf__srv_release *rel = &s->rels[i];
		uint32_t bp[RF_ROLLOUT_RINGS_MAX];

		for (unsigned k = 0; k < rel->sched.nrings; k++) {
			bp[k] = rf_rollout_effective_bp(&rel->sched, &rel->st, k, now);
			rel->health[k].admitted = 0;
			rel->health[k].admitted_known = true;
		}
		for (size_t j = 0; j < s->capdevs; j++) {
			const struct rf__srv_dev *d = s->devtab[j];
			int ri;

			if (!d || s->tenants[d->tenant].policy.pin == RF_ROLLOUT_PIN_N1)
				continue;
			ri = rf_rollout_ring_index(&rel->sched, dev_ring(s, d));
			if (ri < 0 || bp[ri] == 0)
				continue;
			if (rf_rollout_bucket(rel->sched.bucket_key, d->id, d->id_len) < bp[ri])
				rel->health[ri].admitted++;
		}
	}
}

static void aggregate(struct rf_server *s, int64_t now)
{
	for (size_t i = 0; i < s->nrels; i++) {
		memset(s->rels[i].health, 0, sizeof(s->rels[i].health));
		memset(s->rels[i].base, 0, sizeof(s->rels[i].base));
		s->rels[i].waiting = 0;
	}
	for (size_t i = 0; i < s->capdevs; i++) {
		struct rf__srv_dev *d = s->devtab[i];
		if (!d)
			continue;
		if (d->answer_reason == RF_ROLLOUT_R_WAITING_FIX && d->release_id) {
			struct rf__srv_release *on = rel_by_id(s, d->release_id);
			if (on && (on->st.status == RF_ROLLOUT_HALTED ||
				   on->st.status == RF_ROLLOUT_ROLLED_BACK))
				on->waiting++;
		}
		for (int k = 0; k < RF__SRV_HIST; k++) {
			const struct rf__srv_devrel *h = &d->hist[k];
			struct rf__srv_release *rel;
			int ri;

			if (!h->release || !(rel = rel_by_id(s, h->release)))
				continue;
			ri = rf_rollout_ring_index(&rel->sched, dev_ring(s, d));
			if (ri < 0 || h->intent_at < rel->resumed_at)
				continue;
			/* A device cannot check in while the server is down: after a restart every
			 * device gets a full silence window before it counts as silent. */
			int64_t seen = d->last_seen > s->started_at ? d->last_seen : s->started_at;
			struct rf_rollout_devrec rec = {
			    .intent_at = h->intent_at,
			    .healthy_at = h->healthy_at,
			    .left_at = h->left_at,
			    .crashes = h->crashes,
			    .rollbacks = h->rollbacks,
			    .rejects = h->rejects,
			    .quarantined = h->quarantined,
			    .local = h->local,
			    .obeyed = h->obeyed,
			    .alerts = h->alerts,
			};
			rf_rollout_health_add(&rel->sched.gates, &rec, seen, now, &rel->health[ri]);
		}
	}
	/* Baseline of release i in a ring: rf_rollout_baseline (the previous release that was not
	 * halted or rolled back), its health in the ring of the same name. */
	rr_rebuild(s);
	for (size_t i = 1; i < s->nrels; i++) {
		struct rf__srv_release *rel = &s->rels[i];
		int bi = rf_rollout_baseline(s->rr, s->nrels, i);
		const struct rf__srv_release *prev = bi >= 0 ? &s->rels[bi] : NULL;
		for (unsigned k = 0; prev && k < rel->sched.nrings; k++) {
			int pk = rf_rollout_ring_index(&prev->sched, rel->sched.rings[k].name);
			if (pk >= 0)
				rel->base[k] = prev->health[pk];
		}
	}
	for (size_t i = 0; i < s->nrels; i++)
		for (unsigned k = 0; k < s->rels[i].sched.nrings; k++) {
			int ri = ring_find(s, s->rels[i].sched.rings[k].name);
			s->rels[i].health[k].population = ri >= 0 ? s->rings[ri].ndevices : 0;
		}
	count_admitted(s, now);
}

static int evaluate(struct rf_server *s, int64_t now)
{
	int first_err = 0;

	aggregate(s, now);
	for (size_t i = 0; i < s->nrels; i++) {
		struct rf__srv_release *rel = &s->rels[i];
		struct rf_rollout_state ns;
		struct rf_rollout_eval ev;

		if (rel->st.status == RF_ROLLOUT_ROLLED_BACK)
			continue;
		if (rf_rollout_evaluate(&rel->sched, &rel->st, rel->health, rel->base, now, &ns,
					&ev) < 0)
			continue;
		/* A halted release is not judged: keep the evaluation that halted it (the gate's
		 * evidence) instead of an empty one. */
		if (rel->st.status != RF_ROLLOUT_HALTED)
			rel->eval = ev;
		if (!ev.changed)
			continue;
		struct rf__srv_release nr = *rel;
		nr.st = ns;
		int e = release_persist(s, &nr);
		if (e < 0) {
			if (!first_err)
				first_err = e;
			continue;
		}
		rf__srv_audit_gate(s, rel, &ev, &ns);
		rel->st = ns;
		if (ev.halted)
			atomic_fetch_add(&s->m_halts, 1);
	}
	rr_rebuild(s);
	return first_err;
}

int rf_server_tick(struct rf_server *s, bool force)
{
	int64_t now = rf__srv_now(s);
	int e, e2;

	pthread_mutex_lock(&s->lock);
	s->ticks++;
	/* Heartbeats (last seen, health counters) are written only at shutdown or with a device's
	 * next state change: the counters come again in every check-in, and after a start every
	 * device gets a full silence window (started_at), so a periodic write of every device
	 * that checked in would buy nothing but a large transaction under the lock. */
	e = flush_devices(s, force);
	e2 = evaluate(s, now);
	pthread_mutex_unlock(&s->lock);
	if (!e)
		e = e2;
	/* The timestamp: re-signed an hour before it would expire (repository writer, trust/). */
	if (s->repo_dir && (force || now - s->last_refresh >= 60)) {
		char keys[4096];
		struct rf_diag d = {0};
		s->last_refresh = now;
		snprintf(keys, sizeof(keys), "%s/keys", s->repo_dir);
		if (access(keys, R_OK) == 0) {
			int r = rf_tuf_repo_refresh(s->repo_dir, now, 3600, NULL, &d);
			if (r < 0 && !e)
				e = r;
		}
	}
	return e;
}
