/*
 * The device API: enrolment (POST /v1/enroll), the check-in (POST /v1/checkin, the hot path: its
 * body is read with the allocation-free scanner and its answer is rf_rollout_decide()) and the
 * reports (POST /v1/report: what a device did with a release, the evidence of the gates).
 *
 * A device credential authenticates one device id; a device only ever sees releases (global),
 * its own record and its tenant's policy.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/util.h"
#include "server/jscan.h"
#include "server/server-internal.h"

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
	d->hist[oldest] =
	    (struct rf__srv_devrel){.release = (uint32_t)rel, .intent_at = rf__srv_t32(now)};
	return &d->hist[oldest];
}

/*
 * After an operator resumed a release, the records taken up to the second of the resume no
 * longer count (gates.c: intent_at <= resumed_at), whatever they hold. A device that takes the
 * release again, or that stayed on it and reports about it again, starts a new record: only
 * the evidence from before the resume is dropped, never the device. The new record's clock
 * starts when it took the release again (since: now), or, for a device that never left it, at
 * the resume (since: resumed_at + 1: it has run the release ever since). Nothing is renewed in
 * the second of the resume itself (a record of that second would not count either). Returns
 * whether h was renewed.
 */
static bool hist_renew(struct rf_server *s, struct rf__srv_devrel *h, int64_t since, int64_t now)
{
	const struct rf__srv_release *rel = rf__srv_rel_by_id(s, h->release);

	if (!rel || !rel->resumed_at || h->intent_at > rel->resumed_at || now <= rel->resumed_at)
		return false;
	if (since <= rel->resumed_at)
		since = rel->resumed_at + 1;
	*h = (struct rf__srv_devrel){.release = h->release, .intent_at = rf__srv_t32(since)};
	return true;
}

/* The device took release rel at now: it leaves every other release it was on. */
static void dev_take(struct rf_server *s, struct rf__srv_dev *d, int64_t rel, int64_t now)
{
	for (int i = 0; i < RF__SRV_HIST; i++)
		if (d->hist[i].release && d->hist[i].release != rel && !d->hist[i].left_at) {
			const struct rf__srv_release *old =
			    rf__srv_rel_by_id(s, d->hist[i].release);
			d->hist[i].left_at = rf__srv_t32(now);
			/* Leaving a halted or rolled-back release for another one (the fix, or an
			 * older release) is what the server told it to do: it obeyed the halt, it
			 * did not fail (whatever it had reported before still counts). */
			if (old && (old->st.status == RF_ROLLOUT_HALTED ||
				    old->st.status == RF_ROLLOUT_ROLLED_BACK))
				d->hist[i].lqo |= RF__SRV_OBEYED;
		}
	/* Back on a release it ran before (its last known good after a rollback): on it again,
	 * with what it did on it before, unless that was before the release was resumed. */
	struct rf__srv_devrel *h = hist_get(d, rel, true, now);
	if (!hist_renew(s, h, now, now))
		h->left_at = 0;
	d->release_id = (uint32_t)rel;
}

bool rf__srv_dev_reapply(struct rf_server *s, struct rf__srv_dev *row,
			 const struct rf__srv_dev *local)
{
	bool changed = false;

	/* Same second or older: the committed row wins; the device's next check-in says it
	 * all again (a check-in's change is state it repeats every poll, unlike a report). */
	if (local->last_seen <= row->last_seen)
		return false;
	if ((local->flags & DEV_VER) &&
	    (local->agent_version != row->agent_version || local->manifest != row->manifest)) {
		row->agent_version = local->agent_version;
		row->manifest = local->manifest;
		changed = true;
	}
	if ((local->flags & DEV_TOOK) && local->release_id != row->release_id) {
		dev_take(s, row, local->release_id, local->last_seen);
		changed = true;
	}
	row->crashes = local->crashes;
	row->rollbacks = local->rollbacks;
	row->events = local->events;
	row->alerts = local->alerts;
	return changed;
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

static uint8_t sat8(unsigned v)
{
	return v > 255 ? 255 : (uint8_t)v;
}

static uint32_t sat32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void local_add(struct rf__srv_devrel *h)
{
	if ((h->lqo & RF__SRV_LOCAL_MAX) < RF__SRV_LOCAL_MAX)
		h->lqo++;
}

/* The enrolment's device record: the old one (re-enrolment: new credential, ring, version)
 * or a new one. Returns 0, or -1 with the reply written. Lock held. */
static int enroll_record(struct rf_server *s, struct rf__srv_dev *old, int t, const char *use_ring,
			 const char *ver, const char *mh, const uint8_t cred[32], int64_t now,
			 struct rf_server_reply *r, struct rf__srv_dev *nd)
{
	if (old) {
		*nd = *old;
	} else {
		memset(nd, 0, sizeof(*nd));
		nd->tenant = (uint16_t)t;
		nd->flags = s->tenants[t].phase ? DEV_PHASE : 0; /* indexed as the tenant is now */
		nd->state = 0; /* enrolled */
		nd->state_at = rf__srv_t32(now);
	}
	memcpy(nd->cred, cred, 32);
	if (rf__srv_intern(s, use_ring, &nd->ring) < 0 ||
	    (ver && rf__srv_intern(s, ver, &nd->agent_version) < 0) ||
	    (mh && rf__srv_intern(s, mh, &nd->manifest) < 0))
		return rf__srv_err(r, 503, "unavailable", NULL,
				   "the server's string table is full (%u distinct values)",
				   RF_SRV_STRINGS_MAX);
	nd->last_seen = rf__srv_t32(now);
	return 0;
}

int rf__srv_handle_enroll(struct rf_server *s, const struct rf_server_request *q,
			  struct rf_server_reply *r)
{
	const char *tok = rf__srv_bearer(q->authorization, "rfe_");
	const char *dev_id, *ring, *ver, *mh;
	uint8_t h[32];
	json_t *j = NULL;
	int t = -1, ret = -1;

	if (!tok && (!q->authorization || strncmp(q->authorization, "Bearer ", 7)))
		return rf__srv_err(r, 401, "unauthorized", NULL,
				   "enrollment needs 'Authorization: Bearer rfe_...'");
	if (!tok)
		return rf__srv_err(r, 401, "unauthorized", NULL,
				   "not an enrollment token: it is 'rfe_' and 64 hex digits, as "
				   "`ringfence tenant create` or `ringfence tenant token` printed it");
	if (rf__srv_parse_body(q, RF_SRV_DEVICE_BODY_MAX, r, &j) < 0)
		return -1;
	if (rf__srv_get_str(r, j, "device_id", S_ID, true, &dev_id) < 0 ||
	    rf__srv_get_str(r, j, "ring", S_ID, false, &ring) < 0 ||
	    rf__srv_get_str(r, j, "agent_version", S_ID, false, &ver) < 0 ||
	    rf__srv_get_str(r, j, "manifest_hash", S_HEX, false, &mh) < 0)
		goto out;
	rf__srv_hash_token(tok, h);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->ntenants; i++)
		if (!CRYPTO_memcmp(s->tenants[i].token_hash, h, 32))
			t = (int)i;
	if (t < 0) {
		rf__srv_err(r, 401, "unauthorized", NULL, "unknown enrollment token");
		goto unlock;
	}
	uint32_t idx = 0;
	struct rf__srv_dev *old;
	int tries = 0;
again:
	old = rf__srv_dev_find(s, dev_id, &idx);
	if (old) { /* its row is written below: no other write of it in flight */
		rf__srv_dev_wait(s, idx);
		old = rf__srv_dev_find(s, dev_id, &idx);
	}
	if (old && old->tenant != (uint16_t)t) {
		rf__srv_err(r, 409, "conflict", "device_id",
			    "device id is enrolled under another tenant");
		goto unlock;
	}
	if (!old && s->ndevs >= RF_SRV_DEVICES_MAX) {
		rf__srv_err(r, 503, "unavailable", NULL, "device table full");
		goto unlock;
	}
	/* The ring: the tenant's, else the requested one if it exists, else (a re-enrolment)
	 * the one it is in, else the last (broadest). A re-enrolment that names no ring never
	 * moves the device (anyone with the tenant's token can re-enrol a device id, and the
	 * device re-enrols with the ring the server gave it, protocol.md). */
	const char *use_ring = s->tenants[t].ring[0] ? s->tenants[t].ring : NULL;
	if (!use_ring && ring && rf__srv_ring_find(s, ring) >= 0)
		use_ring = ring;
	if (!use_ring && old && rf__srv_ring_find(s, rf__srv_dev_ring(s, old)) >= 0)
		use_ring = rf__srv_dev_ring(s, old);
	if (!use_ring && s->nrings)
		use_ring = s->rings[s->nrings - 1].name;
	if (!use_ring) {
		rf__srv_err(r, 409, "conflict", NULL, "the server has no rings");
		goto unlock;
	}
	char cred[69];
	struct rf__srv_dev nd;
	if (!tries && rf__srv_new_token("rfd_", cred, h) < 0) {
		rf__srv_err(r, 503, "unavailable", NULL, "no randomness");
		goto unlock;
	}
	int64_t now = rf__srv_health_advance(s, rf__srv_now(s));
	if (enroll_record(s, old, t, use_ring, ver, mh, h, now, r, &nd) < 0)
		goto unlock;
	struct rf_db_device rec;
	char *hist;
	int64_t written = 0;
	int e = rf__srv_dev_record(&nd, s, dev_id, &rec, &hist);
	if (e == 0) {
		if (!old)
			rec.enrolled_at = now;
		rec.ret_version = &written;
		e = rf_db_devices_put(s->db, &rec, 1);
		free(hist);
	}
	if (e == 0 && !written) {
		atomic_fetch_add(&s->m_dev_conflicts, 1);
		/* Compare-and-set failed: another instance enrolled or changed this device since
		 * this one read it. Read it again and enrol over what is there now. */
		if (s->shared && ++tries < RF_SRV_DEVICE_CAS_TRIES &&
		    rf__srv_cluster_fetch(s, dev_id) == 0)
			goto again;
		e = -ESTALE;
	}
	if (e < 0) {
		rf__srv_err(r, 503, "unavailable", NULL, "storage: %s",
			    e == -ESTALE ? "the device changed on another instance meanwhile"
					 : rf_strerror(e));
		goto unlock;
	}
	nd.version = (uint32_t)written;
	if (old) {
		int old_ring = rf__srv_ring_find(s, rf__srv_dev_ring(s, old));
		rf__srv_dev_unindex(s, idx);
		rf__srv_dev_buckets(s, idx, -1);
		if (old_ring >= 0)
			s->rings[old_ring].ndevices--;
		*old = nd;
		old->flags &= (uint8_t) ~(DEV_SEEN | DEV_TOOK | DEV_VER);
	} else if (rf__srv_dev_add(s, &nd, dev_id, &idx) < 0) {
		/* Durable but not in memory: the next start loads it. Tell the device to retry. */
		rf__srv_err(r, 503, "unavailable", NULL, "out of memory");
		goto unlock;
	} else {
		s->tenants[t].ndevices++;
	}
	int nr = rf__srv_ring_find(s, use_ring);
	if (nr >= 0)
		s->rings[nr].ndevices++;
	rf__srv_dev_buckets(s, idx, 1);
	rf__srv_dev_index(s, idx);
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
	const char *tok = rf__srv_bearer(q->authorization, "rfd_");

	if (!tok)
		return rf__srv_err(r, 401, "unauthorized", NULL,
				   "device requests need 'Authorization: Bearer rfd_...'");
	rf__srv_hash_token(tok, h);
	return 0;
}

/* The device dev_id (and its index) if h is its credential's hash, else NULL with the reply
 * written. Several instances on one database (cluster.c): a device this instance does not
 * know, or whose credential differs (enrolled or re-enrolled through another instance), is
 * read from the store first, and so is every device that reports (fresh: its outcomes may
 * have changed through another instance in the last second). Lock held. */
static struct rf__srv_dev *dev_auth(struct rf_server *s, const uint8_t h[32], const char *dev_id,
				    struct rf_server_reply *r, uint32_t *ret_idx, bool fresh)
{
	struct rf__srv_dev *d = rf__srv_dev_find(s, dev_id, ret_idx);

	if (s->shared && (fresh || !d || CRYPTO_memcmp(d->cred, h, 32) != 0) &&
	    rf__srv_cluster_fetch(s, dev_id) == 0)
		d = rf__srv_dev_find(s, dev_id, ret_idx);

	if (!d) {
		rf__srv_err(r, 401, "unauthorized", "device_id", "unknown device: enroll first");
		return NULL;
	}
	/* Not its current credential: revoked by a re-enrolment (perhaps not the device's own:
	 * every holder of the tenant's token can re-enrol a device id), or another device's.
	 * 401, as for an unknown credential, so that an agent enrols again (protocol.md); a 403
	 * would lock the device out for good. */
	if (CRYPTO_memcmp(d->cred, h, 32) != 0) {
		rf__srv_err(r, 401, "unauthorized", "device_id",
			    "this credential is not the current one of this device (it was "
			    "enrolled again since): enroll again");
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
	return dev_cred_hash(q, r, x->cred_h);
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
static bool checkin_own_good(struct rf_server *s, struct rf__srv_devrel *h,
			     const struct rf__srv_release *rel, const struct checkin_req *x,
			     int64_t now)
{
	uint8_t lg[32];

	if (!x->has_lg_sha || h->left_at || rf_hex_decode(x->lg_sha, 64, lg, 32) < 0 ||
	    memcmp(lg, rel->sha, 32) != 0)
		return false;
	bool changed = hist_renew(s, h, 0, now);
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
		dev_take(s, d, cur_rel->id, now);
		d->flags |= DEV_TOOK;
		(void)rf__srv_dev_dirty(s, idx);
	}
	/* Health counters are cumulative on the agent and sent in every check-in, so losing them
	 * in a crash loses nothing: they are kept in memory and written with the heartbeats (an
	 * active agent's counters change at every check-in; writing them each time would make
	 * every check-in a database write). */
	d->crashes = sat32(x->crashes);
	d->rollbacks = sat32(x->rollbacks);
	d->alerts = sat32(x->alerts);
	d->events = sat32(x->events);
	if (cur_rel) {
		struct rf__srv_devrel *h = hist_get(d, cur_rel->id, false, now);
		if (h && d->alerts > h->alerts)
			h->alerts = d->alerts;
		if (h && checkin_own_good(s, h, cur_rel, x, now))
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
	if (!dev_auth(s, x.cred_h, x.dev_id, r, &idx, false)) {
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

/* Who caused a failure report (docs/protocol.md): the content, the device (store, disk), the
 * transit (mirror, signature, hash), or the server (a halt the device obeyed). */
enum { CAUSE_CONTENT, CAUSE_LOCAL, CAUSE_TRANSIT, CAUSE_SERVER, CAUSE_COUNT_ };
static const char *const cause_names[CAUSE_COUNT_] = {"content", "local", "transit", "server"};

/* What one report does to its device: the resolved release it counts against (0 none), who
 * caused it, and the server time. */
struct report_fx {
	int ev, why;
	int64_t rel_id, now;
};

/* Apply the report fx to the device record nd (a copy; the caller installs it). */
static void report_apply(struct rf_server *s, struct rf__srv_dev *nd, const struct report_fx *f)
{
	int ev = f->ev, why = f->why;
	bool content = why == CAUSE_CONTENT;

	nd->last_seen = rf__srv_t32(f->now);
	nd->state = (uint8_t)(1 + ev);
	nd->state_at = rf__srv_t32(f->now);
	if (!f->rel_id)
		return;
	struct rf__srv_devrel *h;
	bool take = ev == EV_INTENT || ev == EV_TRIAL;
	if (take && (nd->release_id != f->rel_id || !hist_get(nd, f->rel_id, false, f->now)))
		dev_take(s, nd, f->rel_id, f->now);
	h = hist_get(nd, f->rel_id, false, f->now);
	if (!h) {
		/* A device is counted on a release, with a silence clock, once it took it (intent,
		 * trial_started, a check-in running it), or once the content failed on it (a
		 * rejection against its manifest comes before intent: the gates' evidence of a bad
		 * release, from then). Anything else about a release it never took (installed,
		 * healthy, a failure of the device, the transit or the server) is kept in the
		 * reports only: a record would count the device, and silent once it goes quiet (a
		 * mirror serving bad bytes never halts a good release, docs/protocol.md). */
		if (!content || ev == EV_INSTALLED || ev == EV_HEALTHY)
			return;
		h = hist_get(nd, f->rel_id, true, f->now);
	} else if (take) {
		(void)hist_renew(s, h, f->now, f->now);
	} else if (!h->left_at && (content || ev == EV_HEALTHY)) {
		/* Still on it since before a resume and reporting about it again. */
		(void)hist_renew(s, h, 0, f->now);
	}
	switch (ev) {
	case EV_HEALTHY:
		if (!h->healthy_at)
			h->healthy_at = rf__srv_t32(f->now);
		break;
	case EV_CRASHED:
		if (content)
			h->crashes = sat8(h->crashes + 1u);
		else if (why != CAUSE_SERVER)
			local_add(h);
		break;
	case EV_ROLLED_BACK:
		if (content)
			h->rollbacks = sat8(h->rollbacks + 1u);
		else if (why == CAUSE_SERVER)
			h->lqo |= RF__SRV_OBEYED;
		else
			local_add(h);
		if (!h->left_at)
			h->left_at = rf__srv_t32(f->now);
		break;
	case EV_REJECTED:
		if (content)
			h->rejects = sat8(h->rejects + 1u);
		else if (why != CAUSE_SERVER)
			local_add(h);
		break;
	case EV_QUARANTINED:
		if (content)
			h->lqo |= RF__SRV_QUARANTINED;
		else if (why != CAUSE_SERVER)
			local_add(h);
		break;
	default:
		break;
	}
}

/*
 * Group commit. A report is written to the store with the device state it leads to, and
 * acknowledged only after that transaction committed (P8); memory changes only then too. The
 * request that finds no batch being written takes every report waiting (its own among them, at
 * most RF_SRV_GROUP_COMMIT_MAX), writes them in one transaction WITHOUT the server's lock
 * (check-ins go on meanwhile), then applies them to memory under the lock and wakes the others;
 * reports that arrive meanwhile wait for the next batch. A device has at most one write in
 * flight (DEV_BUSY): its record is computed from memory at enqueue, and a second report, a
 * re-enrolment or the flush of that device waits or skips until the first is applied.
 */
struct rf__srv_wentry {
	struct rf__srv_wentry *next;
	struct rf_db_report rep;
	struct rf_db_device rec;
	char *hist;
	char tenant[RF_SRV_ID_MAX + 1]; /* rec.tenant: s->tenants may move while unlocked */
	struct rf__srv_dev snap, nd;	/* the device at enqueue, and with the report applied */
	uint32_t idx;
	struct report_fx fx;
	int64_t written; /* rec's new version; 0: its compare-and-set failed, nothing written */
	int e;
	bool dup, done;
};

void rf__srv_dev_wait(struct rf_server *s, uint32_t idx)
{
	while (rf__srv_dev_at(s, idx)->flags & DEV_BUSY)
		pthread_cond_wait(&s->wcv, &s->lock);
}

/* A committed entry into memory (lock held). */
static void wentry_apply(struct rf_server *s, struct rf__srv_wentry *x)
{
	struct rf__srv_dev *d = rf__srv_dev_at(s, x->idx);

	if (x->e == 0 && !x->dup) {
		rf__srv_health_advance(s, x->fx.now);
		rf__srv_dev_unindex(s, x->idx);
		if (!memcmp(d, &x->snap, sizeof(*d))) {
			/* Unchanged since enqueue: memory is exactly what was committed. */
			*d = x->nd;
			d->flags &= (uint8_t) ~(DEV_DIRTY | DEV_SEEN | DEV_TOOK | DEV_VER);
			d->version = (uint32_t)x->written;
		} else {
			if ((uint32_t)x->written > d->version)
				d->version = (uint32_t)x->written;
			/* A check-in (or another instance's row) changed it meanwhile: the report's
			 * effect on top of that, flushed with the next tick. */
			report_apply(s, d, &x->fx);
			(void)rf__srv_dev_dirty(s, x->idx);
		}
		rf__srv_dev_index(s, x->idx);
	}
	d->flags &= (uint8_t)~DEV_BUSY;
	x->done = true;
}

/* Wait until entry me (queued) is committed or failed, writing batches while no one else does.
 * Lock held (released while writing and waiting). */
static void group_commit(struct rf_server *s, struct rf__srv_wentry *me)
{
	struct rf_db_report reps[RF_SRV_GROUP_COMMIT_MAX];
	struct rf_db_device recs[RF_SRV_GROUP_COMMIT_MAX];
	bool dups[RF_SRV_GROUP_COMMIT_MAX];
	struct rf__srv_wentry *batch[RF_SRV_GROUP_COMMIT_MAX];

	while (!me->done) {
		if (s->wleader) {
			pthread_cond_wait(&s->wcv, &s->lock);
			continue;
		}
		size_t n = 0;
		s->wleader = true;
		while (s->wq_head && n < RF_SRV_GROUP_COMMIT_MAX) {
			struct rf__srv_wentry *x = s->wq_head;
			s->wq_head = x->next;
			batch[n] = x;
			reps[n] = x->rep;
			recs[n] = x->rec;
			dups[n] = false;
			n++;
		}
		if (!s->wq_head)
			s->wq_tail = &s->wq_head;
		pthread_mutex_unlock(&s->lock);
		int e = rf_db_reports_add(s->db, reps, recs, n, dups);
		pthread_mutex_lock(&s->lock);
		for (size_t i = 0; i < n; i++) {
			batch[i]->e = e == 0 && !dups[i] && !batch[i]->written ? -ESTALE : e;
			batch[i]->dup = e == 0 && dups[i];
			wentry_apply(s, batch[i]);
		}
		atomic_fetch_add(&s->m_group_commits, 1);
		s->wleader = false;
		pthread_cond_broadcast(&s->wcv);
	}
}

/* A device row read from the store outside the lock (the record's strings are only valid in the
 * visitor). */
struct dev_copy {
	struct rf_db_device rec;
	char id[RF_SRV_ID_MAX + 1], tenant[RF_SRV_ID_MAX + 1], ring[RF_SRV_ID_MAX + 1];
	char ver[RF_SRV_ID_MAX + 1], mh[RF_SRV_ID_MAX + 1], state[32];
	char *history;
	bool found;
};

static int dev_copy_visit(void *ud, const struct rf_db_device *x)
{
	struct dev_copy *c = ud;

	c->rec = *x;
	rf__srv_copy_str(c->id, sizeof(c->id), x->id);
	rf__srv_copy_str(c->tenant, sizeof(c->tenant), x->tenant);
	rf__srv_copy_str(c->ring, sizeof(c->ring), x->ring);
	rf__srv_copy_str(c->ver, sizeof(c->ver), x->agent_version);
	rf__srv_copy_str(c->mh, sizeof(c->mh), x->manifest_hash);
	rf__srv_copy_str(c->state, sizeof(c->state), x->state);
	free(c->history);
	c->history = strdup(x->history ? x->history : "");
	if (!c->history)
		return -ENOMEM;
	c->rec.id = c->id;
	c->rec.tenant = c->tenant;
	c->rec.ring = c->ring;
	c->rec.agent_version = c->ver;
	c->rec.manifest_hash = c->mh;
	c->rec.state = c->state;
	c->rec.history = c->history;
	c->found = true;
	return 0;
}

/*
 * Several instances: a device that reports is read from the store first (another instance may
 * have changed its outcomes). The read is made WITHOUT the server's lock: the device as memory
 * holds it is noted (no write of it in flight), the row read, and applied under the lock only if
 * memory did not change meanwhile (then no write of this instance came between: each marks the
 * device DEV_BUSY, which the comparison sees, so the row is at least as new as memory). Otherwise
 * (a check-in of the same device in between) dev_auth reads it again under the lock. Lock held
 * on entry and on return; returns whether the row was applied (dev_auth need not read it).
 */
static bool report_prefetch(struct rf_server *s, const char *dev_id)
{
	static const struct rf_db_visitor v = {.device = dev_copy_visit};
	struct dev_copy c = {.found = false};
	struct rf__srv_dev snap;
	uint32_t idx;
	bool known, applied = false;

	struct rf__srv_dev *d = rf__srv_dev_find(s, dev_id, &idx);
	if ((known = d != NULL)) {
		rf__srv_dev_wait(s, idx);
		snap = *rf__srv_dev_at(s, idx);
	}
	pthread_mutex_unlock(&s->lock);
	int e = rf_db_device_get(s->db, dev_id, &v, &c);
	pthread_mutex_lock(&s->lock);
	if (e == 0 && c.found) {
		d = rf__srv_dev_find(s, dev_id, &idx);
		if (known ? d && !memcmp(d, &snap, sizeof(snap)) : !d)
			applied = rf__srv_cluster_apply(s, &c.rec) == 0;
	}
	free(c.history);
	return applied;
}

int rf__srv_handle_report(struct rf_server *s, const struct rf_server_request *q,
			  struct rf_server_reply *r)
{
	const char *dev_id, *rep_id, *event, *target, *sha, *detail, *cause = NULL;
	uint64_t t = 0;
	json_t *j = NULL;
	int ev = -1, ret = -1, why = -1;

	if (rf__srv_parse_body(q, RF_SRV_DEVICE_BODY_MAX, r, &j) < 0)
		return -1;
	if (rf__srv_get_str(r, j, "device_id", S_ID, true, &dev_id) < 0 ||
	    rf__srv_get_str(r, j, "report_id", S_ID, true, &rep_id) < 0 ||
	    rf__srv_get_str(r, j, "event", S_ID, true, &event) < 0 ||
	    rf__srv_get_str(r, j, "target", S_ID, false, &target) < 0 ||
	    rf__srv_get_str(r, j, "sha256", S_HEX, false, &sha) < 0 ||
	    rf__srv_get_str(r, j, "detail", S_TEXT, false, &detail) < 0 ||
	    rf__srv_get_str(r, j, "cause", S_ID, false, &cause) < 0 ||
	    rf__srv_get_u64(r, j, "time", &t) < 0)
		goto out;
	/* Failure attribution (docs/protocol.md, Report): only the content's failures count
	 * against a release. */
	if (cause) {
		for (int i = 0; i < CAUSE_COUNT_; i++)
			if (!strcmp(cause, cause_names[i]))
				why = i;
		if (why < 0) {
			rf__srv_err(r, 400, "invalid_field", "cause",
				    "'cause' must be one of content, local, transit, server");
			goto out;
		}
	}
	for (int i = 0; i < 8; i++)
		if (!strcmp(event, rf__srv_events[i]))
			ev = i;
	if (ev < 0) {
		rf__srv_err(
		    r, 400, "invalid_field", "event",
		    "'event' must be one of installed, intent, trial_started, healthy, crashed, "
		    "rolled_back, rejected, quarantined");
		goto out;
	}
	if (t > (uint64_t)RF_ROLLOUT_TIME_MAX) {
		rf__srv_err(r, 400, "invalid_field", "time", "'time' is out of range");
		goto out;
	}

	uint8_t cred_h[32];
	if (dev_cred_hash(q, r, cred_h) < 0)
		goto out;
	pthread_mutex_lock(&s->lock);
	uint32_t idx;
	bool fresh = s->shared && !report_prefetch(s, dev_id);
	/* One write of a device in flight at a time: wait for the one before (before reading
	 * the device, from memory or, several instances, from the store). */
	if (rf__srv_dev_find(s, dev_id, &idx))
		rf__srv_dev_wait(s, idx);
	struct rf__srv_dev *d = dev_auth(s, cred_h, dev_id, r, &idx, fresh);
	if (!d)
		goto unlock;
	int tries = 0, why_given = why;
again:
	why = why_given;
	if (d->flags & DEV_BUSY) { /* fetched from the store while another write started */
		rf__srv_err(r, 503, "unavailable", NULL, "a write of this device is in flight");
		goto unlock;
	}
	int64_t now = rf__srv_health_advance(s, rf__srv_now(s));
	const struct rf__srv_release *rel = NULL;
	if (sha) {
		uint8_t b[32];
		if (rf_hex_decode(sha, 64, b, 32) == 0)
			rel = rf__srv_rel_by_sha(s, b);
	}
	if (!rel && target)
		rel = rf__srv_rel_by_target(s, target);
	if (rel && (ev == EV_ROLLED_BACK || ev == EV_QUARANTINED)) {
		const struct rf__srv_release *left = rf__srv_rel_by_id(s, release_left(d, rel->id));
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

	/* The device state the report leads to, computed on a copy: memory changes only after
	 * the store committed it. */
	struct rf__srv_wentry x = {
	    .idx = idx,
	    .fx = {.ev = ev, .why = why, .rel_id = rel ? rel->id : 0, .now = now},
	    .rep =
		{
		    .device_id = dev_id,
		    .report_id = rep_id,
		    .event = event,
		    .target = target ? target : "",
		    .sha256_hex = sha ? sha : "",
		    .release_id = rel ? rel->id : 0,
		    .time = (int64_t)t,
		    .received_at = now,
		    .detail = detail ? detail : "",
		},
	};
	x.nd = *d;
	report_apply(s, &x.nd, &x.fx);
	int e = rf__srv_dev_record(&x.nd, s, dev_id, &x.rec, &x.hist);
	if (e < 0) {
		rf__srv_err(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
		goto unlock;
	}
	rf__srv_copy_str(x.tenant, sizeof(x.tenant), x.rec.tenant);
	x.rec.tenant = x.tenant;
	x.rec.ret_version = &x.written;
	d->flags |= DEV_BUSY;
	x.snap = *d;
	*s->wq_tail = &x;
	s->wq_tail = &x.next;
	group_commit(s, &x);
	free(x.hist);
	if (x.e == -ESTALE) {
		atomic_fetch_add(&s->m_dev_conflicts, 1);
		/* Another instance wrote the device since it was read (compare-and-set): read it
		 * again and apply this report to what is there now; nothing was written. */
		if (s->shared && ++tries < RF_SRV_DEVICE_CAS_TRIES &&
		    rf__srv_cluster_fetch(s, dev_id) == 0) {
			if (rf__srv_dev_find(s, dev_id, &idx))
				rf__srv_dev_wait(s, idx);
			d = dev_auth(s, cred_h, dev_id, r, &idx, false);
			if (!d)
				goto unlock;
			goto again;
		}
	}
	if (x.e < 0) {
		rf__srv_err(r, 503, "unavailable", NULL, "storage: %s",
			    x.e == -ESTALE ? "the device changed on another instance meanwhile"
					   : rf_strerror(x.e));
		goto unlock;
	}
	if (x.dup) {
		atomic_fetch_add(&s->m_reports_dup, 1);
		rf__srv_reply_json(r, 200, json_pack("{s:b,s:b}", "recorded", 0, "duplicate", 1));
	} else {
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
