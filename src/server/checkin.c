/*
 * The device API, the check-in (POST /v1/checkin): the hot path, one per device every poll
 * interval. Its body is read with the allocation-free scanner (jscan.h), its answer is
 * rf_rollout_decide(), and its reply is written into one buffer, with the same checks and error
 * replies as the other endpoints.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "server/jscan.h"
#include "server/server-internal.h"

static uint32_t sat32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

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
			return rf__srv_err(c->r, 400, "invalid_field", key, "'%s' is required",
					   key);
		return 0;
	}
	if (c->t[v].type != RF_J_STR)
		return rf__srv_err(c->r, 400, "invalid_field", key, "'%s' must be a string", key);
	n = rf_jstr(c->p, &c->t[v], out, RF_SRV_ID_MAX + 1);
	if (kind == S_ID && (n < 0 || !rf__srv_id_valid(out, (size_t)n)))
		return rf__srv_err(
		    c->r, 400, "invalid_field", key,
		    "'%s' must be 1..%d characters of [A-Za-z0-9._:/-], not starting with "
		    "'.' or '/'",
		    key, RF_SRV_ID_MAX);
	if (kind == S_HEX && (n != 64 || rf_hex_decode(out, 64, tmp, 32) < 0))
		return rf__srv_err(c->r, 400, "invalid_field", key, "'%s' must be 64 hex digits",
				   key);
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
		return rf__srv_err(c->r, 400, "invalid_field", key,
				   "'%s' must be an object or null", key);
	*ret = v;
	return 0;
}

static int ju64(struct jctx *c, int obj, const char *key, uint64_t *ret)
{
	int v = rf_jget(c->p, c->t, obj, key);

	if (v < 0 || c->t[v].type == RF_J_NULL)
		return 0;
	if (rf_ju64(c->p, &c->t[v], ret) < 0)
		return rf__srv_err(c->r, 400, "invalid_field", key,
				   "'%s' must be a non-negative integer", key);
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

/* A check-in request, checked: what it says about the device. */
struct checkin_req {
	char dev_id[RF_SRV_ID_MAX + 1], ver[RF_SRV_ID_MAX + 1], mh[RF_SRV_ID_MAX + 1];
	char cur_sha[RF_SRV_ID_MAX + 1], lg_sha[RF_SRV_ID_MAX + 1];
	bool has_ver, has_mh, has_cur_sha, has_lg_sha;
	uint64_t crashes, rollbacks, events, alerts;
	uint8_t cred_h[32];
};

/* What the reply needs, copied out under the lock and formatted after it is released. */
struct brief {
	bool set;
	int64_t id, version;
	uint64_t length;
	char target[RF_SRV_ID_MAX + 1], sha_hex[65];
};

struct checkin_out {
	struct rf_rollout_answer ans;
	int64_t now;
	struct brief rel, back;
	struct {
		int64_t id;
		char target[RF_SRV_ID_MAX + 1], reason[RF_ROLLOUT_REASON_MAX];
	} halted[RF_SRV_HALTED_NOTICES_MAX];
	size_t nhalted;
};

/* The body's "state" object: current, last_good, trial, quarantine, safe_mode (checked; only
 * the current and last good hashes are used). Returns 0 or -1 with the reply written. */
static int checkin_parse_state(struct jctx *c, int state, struct checkin_req *x)
{
	static const char *const sub[] = {"last_good", "trial"};
	const struct rf_jtok *toks = c->t;
	char tmp_s[RF_SRV_ID_MAX + 1];
	uint64_t attempts = 0; /* checked, not used: the agent counts its own attempts */
	int o, qa, sm, cur;
	bool has;

	if (jobj(c, state, "current", &cur) < 0 ||
	    (cur >= 0 && (jfield(c, cur, "target", S_ID, false, tmp_s, &has) < 0 ||
			  jfield(c, cur, "sha256", S_HEX, false, x->cur_sha, &x->has_cur_sha) < 0)))
		return -1;
	for (int i = 0; i < 2; i++)
		if (jobj(c, state, sub[i], &o) < 0 ||
		    (o >= 0 && (jfield(c, o, "target", S_ID, false, tmp_s, &has) < 0 ||
				jfield(c, o, "sha256", S_HEX, false, i ? tmp_s : x->lg_sha,
				       i ? &has : &x->has_lg_sha) < 0 ||
				(i == 1 && ju64(c, o, "attempts", &attempts) < 0))))
			return -1;
	qa = rf_jget(c->p, toks, state, "quarantine");
	if (qa >= 0 && toks[qa].type != RF_J_NULL) {
		if (toks[qa].type != RF_J_ARR)
			return rf__srv_err(c->r, 400, "invalid_field", "quarantine",
					   "'quarantine' must be an array");
		if (toks[qa].size > RF_SRV_QUARANTINE_MAX)
			return rf__srv_err(c->r, 400, "invalid_field", "quarantine",
					   "'quarantine' lists more than %d hashes",
					   RF_SRV_QUARANTINE_MAX);
		for (uint32_t k = (uint32_t)qa + 1; k < toks[qa].next; k = toks[k].next) {
			uint8_t tmp[32];
			if (toks[k].type != RF_J_STR || toks[k].escaped ||
			    toks[k].end - toks[k].start != 64 ||
			    rf_hex_decode((const char *)c->p + toks[k].start, 64, tmp, 32) < 0)
				return rf__srv_err(c->r, 400, "invalid_field", "quarantine",
						   "'quarantine' entries must be 64 hex digits");
		}
	}
	sm = rf_jget(c->p, toks, state, "safe_mode");
	if (sm >= 0 && toks[sm].type != RF_J_TRUE && toks[sm].type != RF_J_FALSE &&
	    toks[sm].type != RF_J_NULL)
		return rf__srv_err(c->r, 400, "invalid_field", "safe_mode",
				   "'safe_mode' must be a boolean");
	return 0;
}

/* Step 1: check the whole request (size, type, JSON, every member) and hash the credential;
 * nothing is touched. Returns 0 or -1 with the reply written. */
static int checkin_parse(const struct rf_server_request *q, struct rf_server_reply *r,
			 struct checkin_req *x)
{
	struct rf_jtok toks[RF_SRV_CHECKIN_VALUES_MAX];
	struct jctx c = {q->body, toks, r};
	char tmp_s[RF_SRV_ID_MAX + 1];
	bool has;
	int state, health;
	size_t ntok, off = 0;
	int e;

	memset(x, 0, sizeof(*x));
	if (q->body_len > RF_SRV_DEVICE_BODY_MAX)
		return rf__srv_err(r, 413, "too_large", NULL,
				   "request body of %zu bytes is over the limit of %u", q->body_len,
				   RF_SRV_DEVICE_BODY_MAX);
	if (!rf__srv_json_ctype(q->content_type))
		return rf__srv_err(r, 415, "unsupported_media_type", NULL,
				   "Content-Type must be application/json");
	e = rf_jscan(q->body, q->body_len, toks, RF_SRV_CHECKIN_VALUES_MAX, RF_SRV_JSON_DEPTH_MAX,
		     &ntok, &off);
	if (e == -ELOOP)
		return rf__srv_err(r, 400, "too_deep", NULL, "JSON nested deeper than %d levels",
				   RF_SRV_JSON_DEPTH_MAX);
	if (e == -E2BIG)
		return rf__srv_err(r, 400, "invalid_field", NULL,
				   "check-in has more than %d JSON values",
				   RF_SRV_CHECKIN_VALUES_MAX);
	if (e < 0)
		return rf__srv_err(r, 400, "malformed_json", NULL, "malformed JSON at byte %zu",
				   off);
	if (toks[0].type != RF_J_OBJ)
		return rf__srv_err(r, 400, "malformed_json", NULL,
				   "the body must be a JSON object");
	if (jfield(&c, 0, "device_id", S_ID, true, x->dev_id, &has) < 0 ||
	    jfield(&c, 0, "ring", S_ID, false, tmp_s, &has) < 0 ||
	    jfield(&c, 0, "agent_version", S_ID, false, x->ver, &x->has_ver) < 0 ||
	    jfield(&c, 0, "manifest_hash", S_HEX, false, x->mh, &x->has_mh) < 0 ||
	    jobj(&c, 0, "state", &state) < 0 || jobj(&c, 0, "health", &health) < 0)
		return -1;
	if (state >= 0 && checkin_parse_state(&c, state, x) < 0)
		return -1;
	if (health >= 0 && (ju64(&c, health, "crashes", &x->crashes) < 0 ||
			    ju64(&c, health, "rollbacks", &x->rollbacks) < 0 ||
			    ju64(&c, health, "events", &x->events) < 0 ||
			    ju64(&c, health, "alerts", &x->alerts) < 0))
		return -1;
	return rf__srv_dev_cred_hash(q, r, x->cred_h);
}

/*
 * A device that runs release rel as its own last known good (the check-in's current and
 * last_good are both rel) survived the agent's probation on it: that is the only way content
 * becomes the last known good. Such a device never reports healthy again, so after a resume
 * (which drops the evidence from before it, its healthy report among them) it would never
 * count as healthy: a device back on its last known good after the halt, or one that stayed on
 * it through a hold, and a resumed ring waiting for min_healthy for ever. Its record is renewed
 * (from the resume), and once the server has seen it on the release for probation_s since it
 * took it (or since the resume), still reporting it as its last known good, it is healthy.
 * Returns whether h changed.
 */
static bool checkin_own_good(struct rf_server *s, struct rf__srv_dev *d, struct rf__srv_devrel *h,
			     const struct rf__srv_release *rel, const struct checkin_req *x,
			     int64_t now)
{
	uint8_t lg[32];

	if (!x->has_lg_sha || h->left_at || rf_hex_decode(x->lg_sha, 64, lg, 32) < 0 ||
	    memcmp(lg, rel->sha, 32) != 0)
		return false;
	bool changed = rf__srv_hist_renew(s, d, h, 0, now);
	int64_t probation = rel->sched.gates.probation_s;
	/* Healthy already; or not counted (the second of a resume); or not seen on it for
	 * probation_s yet. A healthy report that came too early (the agent's own probation is
	 * shorter than the release's, or it was on trial across a resume) is moved to now. */
	if ((h->healthy_at && (int64_t)h->healthy_at - (int64_t)h->intent_at >= probation) ||
	    (rel->resumed_at && h->intent_at <= rel->resumed_at) ||
	    now - (int64_t)h->intent_at < probation)
		return changed;
	h->healthy_at = rf__srv_t32(now);
	return true;
}

/* Step 2 (lock held): what the check-in says about the device (seen, agent version, manifest,
 * the release it runs, its health counters). Returns the release it runs, or NULL. */
static const struct rf__srv_release *checkin_update(struct rf_server *s, uint32_t idx,
						    const struct checkin_req *x, int64_t now)
{
	struct rf__srv_dev *d = rf__srv_dev_at(s, idx);
	const struct rf__srv_release *cur_rel = NULL;
	uint16_t v;

	d->last_seen = rf__srv_t32(now);
	d->flags |= DEV_SEEN;
	/* A full string table keeps the old value in memory (limits.h RF_SRV_STRINGS_MAX). */
	if (x->has_ver && strcmp(x->ver, rf__srv_str(s, d->agent_version)) &&
	    rf__srv_intern(s, x->ver, &v) == 0) {
		d->agent_version = v;
		d->flags |= DEV_VER;
		(void)rf__srv_dev_dirty(s, idx);
	}
	if (x->has_mh && strcmp(x->mh, rf__srv_str(s, d->manifest)) &&
	    rf__srv_intern(s, x->mh, &v) == 0) {
		d->manifest = v;
		d->flags |= DEV_VER;
		(void)rf__srv_dev_dirty(s, idx);
	}
	/* Which release the device runs: by content hash (the agent's truth). */
	if (x->has_cur_sha) {
		uint8_t sha[32];
		if (rf_hex_decode(x->cur_sha, 64, sha, 32) == 0)
			cur_rel = rf__srv_rel_by_sha(s, sha);
	}
	if (cur_rel && cur_rel->id != d->release_id) {
		rf__srv_dev_take(s, d, cur_rel->id, now);
		d->flags |= DEV_TOOK;
		(void)rf__srv_dev_dirty(s, idx);
	}
	/* Health counters are cumulative on the agent and sent in every check-in, so losing them
	 * in a crash loses nothing: they are kept in memory and written with the heartbeats (an
	 * active agent's counters change at every check-in; writing them each time would make
	 * every check-in a database write). */
	d->crashes = x->crashes > UINT16_MAX ? UINT16_MAX : (uint16_t)x->crashes;
	d->rollbacks = x->rollbacks > UINT16_MAX ? UINT16_MAX : (uint16_t)x->rollbacks;
	d->alerts = sat32(x->alerts);
	d->events = sat32(x->events);
	if (cur_rel) {
		struct rf__srv_devrel *h = rf__srv_hist_get(d, cur_rel->id, false, now);
		uint32_t a = d->alerts > d->alerts_base ? d->alerts - d->alerts_base : 0;
		if (h && a > h->alerts)
			h->alerts = a;
		if (h && checkin_own_good(s, d, h, cur_rel, x, now))
			(void)rf__srv_dev_dirty(s, idx);
	}
	return cur_rel;
}

static void brief_of(struct brief *b, const struct rf__srv_release *rel)
{
	if (!rel)
		return;
	b->set = true;
	b->id = rel->id;
	b->version = rel->version;
	b->length = rel->length;
	memcpy(b->target, rel->target, sizeof(b->target));
	memcpy(b->sha_hex, rel->sha_hex, sizeof(b->sha_hex));
}

/* Step 3 (lock held): the decision, rf_rollout_decide over at most RF_ROLLOUT_DECIDE_MAX newest
 * releases, and what the reply needs copied into o. */
static int checkin_decide(struct rf_server *s, uint32_t idx, const struct checkin_req *x,
			  const struct rf__srv_release *cur_rel, struct checkin_out *o)
{
	struct rf__srv_dev *d = rf__srv_dev_at(s, idx);
	size_t first = s->nrels > RF_ROLLOUT_DECIDE_MAX ? s->nrels - RF_ROLLOUT_DECIDE_MAX : 0;
	/* A last known good other than what it runs: the device has somewhere of its own to go
	 * back to, so "roll back to your last known good" (rollback_to null) means something. */
	struct rf_rollout_device rd = {.id = rf__srv_dev_id(s, d),
				       .id_len = d->id_len,
				       .ring = rf__srv_dev_ring(s, d),
				       .current = -1,
				       .fallback = x->has_lg_sha};
	int e;

	if (x->has_lg_sha && x->has_cur_sha) {
		uint8_t a[32], b[32];
		rd.fallback = rf_hex_decode(x->lg_sha, 64, a, 32) < 0 ||
			      rf_hex_decode(x->cur_sha, 64, b, 32) < 0 || memcmp(a, b, 32) != 0;
	}
	if (cur_rel) {
		size_t i = (size_t)(cur_rel - s->rels);
		if (i >= first)
			rd.current = (int)(i - first);
	}
	e = rf_rollout_decide(&rd, &s->tenants[d->tenant].policy, s->rr + first, s->nrels - first,
			      o->now, &o->ans);
	d->flags = (uint8_t)(rd.fallback ? d->flags | DEV_FALLBACK : d->flags & ~DEV_FALLBACK);
	if (e < 0)
		return e;
	d->answer_reason = (uint8_t)o->ans.reason;
	const struct rf__srv_release *target =
	    o->ans.release >= 0 ? &s->rels[first + (size_t)o->ans.release] : NULL;
	brief_of(&o->rel, o->ans.action == RF_ROLLOUT_GO_BACK ? cur_rel : target);
	brief_of(&o->back, o->ans.action == RF_ROLLOUT_GO_BACK ? target : NULL);
	for (size_t i = s->nrels; i-- > 0 && o->nhalted < RF_SRV_HALTED_NOTICES_MAX;) {
		const struct rf__srv_release *hr = &s->rels[i];
		if (hr->st.status != RF_ROLLOUT_HALTED && hr->st.status != RF_ROLLOUT_ROLLED_BACK)
			continue;
		o->halted[o->nhalted].id = hr->id;
		memcpy(o->halted[o->nhalted].target, hr->target, sizeof(o->halted[0].target));
		memcpy(o->halted[o->nhalted].reason, hr->st.halt_reason,
		       sizeof(o->halted[0].reason));
		o->nhalted++;
	}
	return 0;
}

/* Step 4 (no lock): the reply, written into one buffer. */
static int checkin_format(struct rf_server *s, const struct checkin_out *o,
			  struct rf_server_reply *r)
{
	struct sb b = {.cap = 16384};
	const struct rf_rollout_answer *ans = &o->ans;

	b.p = malloc(b.cap);
	if (!b.p)
		return rf__srv_err(r, 503, "unavailable", NULL, "out of memory");
	const char *action = ans->action == RF_ROLLOUT_INSTALL	 ? "install"
			     : ans->action == RF_ROLLOUT_GO_BACK ? "rollback"
								 : "stay";
	sb_printf(&b, "{\"action\":\"%s\",\"reason\":\"%s\"", action,
		  rf_rollout_reason_name(ans->reason));
	const struct brief *br[2] = {&o->rel, &o->back};
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
	for (size_t i = 0; i < o->nhalted; i++) {
		sb_printf(&b, "%s{\"release\":%lld,\"target\":\"%s\",\"reason\":", i ? "," : "",
			  (long long)o->halted[i].id, o->halted[i].target);
		sb_jstr(&b, o->halted[i].reason);
		sb_printf(&b, "}");
	}
	sb_printf(&b, "],\"poll_interval\":%u,\"server_time\":%lld}", s->poll_interval,
		  (long long)o->now);
	if (b.full) {
		free(b.p);
		return rf__srv_err(r, 503, "unavailable", NULL, "reply too large");
	}
	r->status = 200;
	r->content_type = "application/json";
	r->body = b.p;
	r->len = b.n;
	return 0;
}

int rf__srv_handle_checkin(struct rf_server *s, const struct rf_server_request *q,
			   struct rf_server_reply *r)
{
	struct checkin_req x;
	struct checkin_out o;
	uint32_t idx;
	int e;

	if (checkin_parse(q, r, &x) < 0)
		return -1;
	memset(&o, 0, sizeof(o));
	pthread_mutex_lock(&s->lock);
	if (!rf__srv_dev_auth(s, x.cred_h, x.dev_id, r, &idx, false)) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	/* The device's records leave the health counts while it changes (gates.c). */
	o.now = rf__srv_health_advance(s, rf__srv_now(s));
	rf__srv_dev_unindex(s, idx);
	const struct rf__srv_release *cur_rel = checkin_update(s, idx, &x, o.now);
	e = checkin_decide(s, idx, &x, cur_rel, &o);
	rf__srv_dev_index(s, idx);
	pthread_mutex_unlock(&s->lock);
	if (e < 0)
		return rf__srv_err(r, 503, "unavailable", NULL, "decision failed: %s",
				   rf_strerror(e));
	if (checkin_format(s, &o, r) < 0)
		return -1;
	atomic_fetch_add(&s->m_checkins, 1);
	return 0;
}
