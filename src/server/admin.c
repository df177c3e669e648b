/*
 * The operator API under /v1/admin/: rings, tenants, releases (create from the TUF repository's
 * signed targets, status, hold, halt, resume, rollback). Every change is committed to the store
 * before memory changes and before the reply; a halt or rollback that would leave devices with
 * nowhere to go needs force.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/util.h"
#include "server/server-internal.h"

/* ---- operator API --------------------------------------------------------------------------- */

static bool admin_ok(struct rf_server *s, const struct rf_server_request *q,
		     struct rf_server_reply *r)
{
	const char *tok = rf__srv_bearer(q->authorization, "rfa_");
	uint8_t h[32];

	if (!tok) {
		rf__srv_err(r, 401, "unauthorized", NULL,
			    "operator requests need 'Authorization: Bearer rfa_...'");
		return false;
	}
	rf__srv_hash_token(tok, h);
	if (CRYPTO_memcmp(h, s->admin_hash, 32) != 0) {
		rf__srv_err(r, 401, "unauthorized", NULL, "wrong admin token");
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

		if (rf__srv_parse_body(q, RF_SRV_ADMIN_BODY_MAX, r, &j) < 0)
			return -1;
		if (rf__srv_get_str(r, j, "name", S_ID, true, &name) < 0 ||
		    rf__srv_get_u64(r, j, "position", &pos) < 0)
			goto done;
		if (strlen(name) >= RF_ROLLOUT_RING_NAME_MAX) {
			e = rf__srv_err(r, 400, "invalid_field", "name",
					"ring names are at most %d characters",
					RF_ROLLOUT_RING_NAME_MAX - 1);
			goto done;
		}
		if (rf__srv_ring_find(s, name) >= 0) {
			e = rf__srv_err(r, 409, "conflict", "name", "ring '%s' exists", name);
			goto done;
		}
		if (s->nrings == RF_SRV_RINGS_MAX) {
			e = rf__srv_err(r, 409, "conflict", NULL, "at most %d rings",
					RF_SRV_RINGS_MAX);
			goto done;
		}
		struct rf_db_ring rec = {name, (int64_t)pos};
		e = rf_db_ring_put(s->db, &rec);
		if (e < 0) {
			e = rf__srv_err(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
			goto done;
		}
		memset(&s->rings[s->nrings], 0, sizeof(s->rings[0]));
		rf__srv_copy_str(s->rings[s->nrings].name, sizeof(s->rings[0].name), name);
		s->rings[s->nrings++].position = (int64_t)pos;
		qsort(s->rings, s->nrings, sizeof(s->rings[0]), cmp_ring);
		rf__srv_audit(s, 5, s->actor, "ring.create", 0, name, "position %llu",
			      (unsigned long long)pos);
		e = rf__srv_reply_json(r, 201, rings_json(s));
	done:
		json_decref(j);
		return e;
	}
	if (!strcmp(q->method, "DELETE") && *rest) {
		int i = rf__srv_ring_find(s, rest), e;
		if (i < 0)
			return rf__srv_err(r, 404, "not_found", NULL, "no ring '%s'", rest);
		bool used = s->rings[i].ndevices > 0;
		for (size_t t = 0; t < s->ntenants; t++)
			used |= !strcmp(s->tenants[t].ring, rest);
		if (used)
			return rf__srv_err(r, 409, "conflict", NULL,
					   "ring '%s' is used by devices or tenants", rest);
		e = rf_db_ring_delete(s->db, rest);
		if (e < 0)
			return rf__srv_err(r, 503, "unavailable", NULL, "storage: %s",
					   rf_strerror(e));
		memmove(&s->rings[i], &s->rings[i + 1],
			(s->nrings - (size_t)i - 1) * sizeof(s->rings[0]));
		s->nrings--;
		rf__srv_audit(s, 5, s->actor, "ring.delete", 0, rest, "%s", "");
		return rf__srv_reply_json(r, 200, rings_json(s));
	}
	return rf__srv_err(r, 405, "method_not_allowed", NULL, "%s not allowed here", q->method);
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

	if (rf__srv_get_str(r, j, "ring", S_ID, false, &ring) < 0 ||
	    rf__srv_get_str(r, j, "pin", S_ID, false, &pin) < 0)
		return -1;
	if (ring && rf__srv_ring_find(s, ring) < 0)
		return rf__srv_err(r, 400, "invalid_field", "ring", "no ring '%s'", ring);
	if (ring)
		rf__srv_copy_str(t->ring, sizeof(t->ring), ring);
	else if (rv && json_is_null(rv))
		t->ring[0] = 0;
	if (pin && strcmp(pin, "latest") && strcmp(pin, "n-1"))
		return rf__srv_err(r, 400, "invalid_field", "pin",
				   "'pin' must be \"latest\" or \"n-1\"");
	*ret_pin = pin ? pin : t->policy.pin == RF_ROLLOUT_PIN_N1 ? "n-1" : "latest";
	win = json_object_get(j, "window");
	int64_t ws = t->win_start_min, we = t->win_end_min;
	if (win && json_is_null(win)) {
		ws = we = -1;
	} else if (win) {
		const char *a, *b;
		if (!json_is_object(win) || rf__srv_get_str(r, win, "start", S_ID, true, &a) < 0 ||
		    rf__srv_get_str(r, win, "end", S_ID, true, &b) < 0)
			return json_is_object(win)
				   ? -1
				   : rf__srv_err(r, 400, "invalid_field", "window",
						 "'window' must be null or "
						 "{\"start\":\"HH:MM\",\"end\":\"HH:MM\"}");
		ws = hhmm(a);
		we = hhmm(b);
		if (ws < 0 || we < 0 || ws == we)
			return rf__srv_err(r, 400, "invalid_field", "window",
					   "window start and end must be distinct HH:MM (UTC)");
	}
	rf__srv_policy_from(t, *ret_pin, ws, we);
	return 0;
}

static int tenant_store(struct rf_server *s, const struct rf__srv_tenant *t, const char *pin)
{
	struct rf_db_tenant rec = {
	    .name = t->name,
	    .ring = t->ring[0] ? t->ring : NULL,
	    .pin = pin,
	    .win_start_min = t->win_start_min,
	    .win_end_min = t->win_end_min,
	};
	memcpy(rec.token_hash, t->token_hash, 32);
	return rf_db_tenant_put(s->db, &rec);
}

/* Devices tenant_move re-indexes before it lets other requests in (a few milliseconds). */
#define MOVE_SLICE 65536

/*
 * Apply a stored change of tenant ti's policy (t) to memory: its ring or pin moves every device
 * of the tenant in the indexes (health counts, cohort buckets, ring populations). The devices
 * are moved in slices with the lock released in between (check-ins go on): until a device is
 * moved it is indexed and routed as before (struct rf__srv_tenant.moving). Lock held on entry
 * and on return.
 */
void rf__srv_tenant_move(struct rf_server *s, int ti, const struct rf__srv_tenant *t)
{
	struct rf__srv_tenant *cur = &s->tenants[ti];
	bool moves = strcmp(cur->ring, t->ring) || cur->policy.pin != t->policy.pin;
	char old_ring[RF_SRV_ID_MAX + 1];
	uint8_t old_pin = (uint8_t)cur->policy.pin, phase = cur->phase;

	memcpy(old_ring, cur->ring, sizeof(old_ring));
	*cur = *t;
	if (!moves || !cur->ndevices)
		return;
	memcpy(cur->old_ring, old_ring, sizeof(old_ring));
	cur->old_pin = old_pin;
	cur->phase = !phase;
	cur->moving = true;
	for (size_t i = 0; i < s->ndevs;) {
		for (size_t end = i + MOVE_SLICE; i < s->ndevs && i < end; i++) {
			struct rf__srv_dev *d = rf__srv_dev_at(s, i);
			int ri;

			if (d->tenant != ti ||
			    ((d->flags & DEV_PHASE) != 0) == (s->tenants[ti].phase != 0))
				continue;
			rf__srv_dev_unindex(s, (uint32_t)i);
			rf__srv_dev_buckets(s, (uint32_t)i, -1);
			if ((ri = rf__srv_ring_find(s, rf__srv_dev_ring(s, d))) >= 0)
				s->rings[ri].ndevices--;
			d->flags ^= DEV_PHASE;
			if ((ri = rf__srv_ring_find(s, rf__srv_dev_ring(s, d))) >= 0)
				s->rings[ri].ndevices++;
			rf__srv_dev_buckets(s, (uint32_t)i, 1);
			rf__srv_dev_index(s, (uint32_t)i);
		}
		if (i < s->ndevs) {
			pthread_mutex_unlock(&s->lock);
			pthread_mutex_lock(&s->lock);
		}
	}
	s->tenants[ti].moving = false;
}

static int admin_tenants(struct rf_server *s, const struct rf_server_request *q, const char *rest,
			 struct rf_server_reply *r)
{
	char name[RF_SRV_ID_MAX + 1] = "";
	const char *sub = NULL, *slash = strchr(rest, '/');
	int ti = -1, e;

	if (*rest) {
		size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
		if (!rf__srv_id_valid(rest, n))
			return rf__srv_err(r, 404, "not_found", NULL, "no such tenant");
		memcpy(name, rest, n);
		name[n] = 0;
		sub = slash ? slash + 1 : "";
		ti = rf__srv_tenant_find(s, name);
		if (ti < 0)
			return rf__srv_err(r, 404, "not_found", NULL, "no tenant '%s'", name);
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
		if (rf__srv_parse_body(q, RF_SRV_ADMIN_BODY_MAX, r, &j) < 0)
			return -1;
	}
	e = -1;
	if (!strcmp(q->method, "POST") && ti < 0) {
		const char *tname, *pin;
		char tok[69];
		struct rf__srv_tenant t = {.win_start_min = -1, .win_end_min = -1}, *nt;

		if (rf__srv_get_str(r, j, "name", S_ID, true, &tname) < 0)
			goto done;
		if (rf__srv_tenant_find(s, tname) >= 0) {
			e = rf__srv_err(r, 409, "conflict", "name", "tenant '%s' exists", tname);
			goto done;
		}
		rf__srv_copy_str(t.name, sizeof(t.name), tname);
		if (tenant_policy(s, j, &t, r, &pin) < 0)
			goto done;
		if (rf__srv_new_token("rfe_", tok, t.token_hash) < 0 ||
		    rf__srv_tenant_add(s, &nt) < 0) {
			e = rf__srv_err(r, 503, "unavailable", NULL, "out of resources");
			goto done;
		}
		e = tenant_store(s, &t, pin);
		if (e < 0) {
			e = rf__srv_err(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
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
		if (t.moving) {
			e = rf__srv_err(r, 409, "conflict", NULL,
					"tenant '%s' is being moved by a change: retry", t.name);
			goto done;
		}
		if (tenant_policy(s, j, &t, r, &pin) < 0)
			goto done;
		e = tenant_store(s, &t, pin);
		if (e < 0) {
			e = rf__srv_err(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
			goto done;
		}
		rf__srv_tenant_move(s, ti, &t);
		rf__srv_audit_tenant(s, "tenant.update", &t, pin);
		e = rf__srv_reply_json(r, 200, tenant_json(&t));
	} else if (!strcmp(q->method, "POST") && ti >= 0 && !strcmp(sub, "token")) {
		struct rf__srv_tenant t = s->tenants[ti];
		char tok[69];
		if (rf__srv_new_token("rfe_", tok, t.token_hash) < 0) {
			e = rf__srv_err(r, 503, "unavailable", NULL, "no randomness");
			goto done;
		}
		e = tenant_store(s, &t, t.policy.pin == RF_ROLLOUT_PIN_N1 ? "n-1" : "latest");
		if (e < 0) {
			e = rf__srv_err(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
			goto done;
		}
		s->tenants[ti] = t;
		rf__srv_audit_tenant(s, "tenant.token", &t, NULL);
		e = rf__srv_reply_json(
		    r, 200, json_pack("{s:s,s:s}", "name", t.name, "enrollment_token", tok));
		OPENSSL_cleanse(tok, sizeof(tok));
	} else {
		e = rf__srv_err(r, 405, "method_not_allowed", NULL, "%s not allowed here",
				q->method);
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
	uint64_t transit = 0;
	for (unsigned k = 0; k <= RF_ROLLOUT_RINGS_MAX; k++)
		transit += rel->transit[k];
	if (o) {
		json_object_set_new(o, "waiting_for_fix", json_integer((json_int_t)rel->waiting));
		json_object_set_new(o, "transit_rejections", json_integer((json_int_t)transit));
	}
	if (!full || !o)
		return o;
	json_t *rings = json_array();
	for (unsigned i = 0; i < rel->sched.nrings; i++) {
		const struct rf_rollout_health *h = &rel->health[i], *b = &rel->base[i];
		const struct rf_rollout_check *c = &rel->eval.checks[i];
		json_t *hj =
		    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "devices",
			      (json_int_t)h->devices, "healthy", (json_int_t)h->healthy, "failed",
			      (json_int_t)h->failed, "crashes", (json_int_t)h->crashes, "rollbacks",
			      (json_int_t)h->rollbacks, "rejections", (json_int_t)h->rejections,
			      "silent", (json_int_t)h->silent, "alerts", (json_int_t)h->alerts,
			      "exposure_s", (json_int_t)h->exposure_s, "local_failures",
			      (json_int_t)h->local_failures, "obeyed_halt", (json_int_t)h->obeyed);
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
		    json_pack("{s:s,s:s,s:i,s:f,s:I,s:o,s:o,s:{s:s,s:s,s:f},s:I}", "ring",
			      rel->sched.rings[i].name, "phase",
			      rf_rollout_phase_name(rel->st.rings[i].phase), "step",
			      rel->st.rings[i].step, "percent",
			      rf_rollout_effective_bp(&rel->sched, &rel->st, (int)i, now) / 100.0,
			      "not_before", (json_int_t)rel->sched.rings[i].not_before, "health",
			      hj, "baseline", bj, "gate", "verdict", verdict, "metric",
			      rf_rollout_metric_name(c->metric), "p_value", c->p_value,
			      "transit_rejections", (json_int_t)rel->transit[i]));
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
		return rf__srv_err(r, 409, "conflict", NULL,
				   "the server was started without --repo");
	snprintf(path, sizeof(path), "%s/repository/metadata/timestamp.json", s->repo_dir);
	ts = json_load_file(path, 0, NULL);
	if (!ts || json_unpack(json_object_get(json_object_get(ts, "signed"), "meta"), "{s:{s:I}}",
			       "snapshot.json", "version", &sv) < 0) {
		e = rf__srv_err(r, 409, "conflict", NULL,
				"repository has no readable timestamp.json");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/repository/metadata/%lld.snapshot.json", s->repo_dir,
		 (long long)sv);
	snap = json_load_file(path, 0, NULL);
	if (!snap || json_unpack(json_object_get(json_object_get(snap, "signed"), "meta"),
				 "{s:{s:I}}", "targets.json", "version", &tv) < 0) {
		e = rf__srv_err(r, 409, "conflict", NULL, "repository snapshot %lld unreadable",
				(long long)sv);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/repository/metadata/%lld.targets.json", s->repo_dir,
		 (long long)tv);
	tg = json_load_file(path, 0, NULL);
	t = json_object_get(json_object_get(json_object_get(tg, "signed"), "targets"), target);
	if (!t) {
		e = rf__srv_err(r, 400, "invalid_field", "target",
				"target '%s' is not published in the repository", target);
		goto out;
	}
	json_t *len = json_object_get(t, "length");
	sha = json_string_value(json_object_get(json_object_get(t, "hashes"), "sha256"));
	if (!json_is_integer(len) || json_integer_value(len) < 0 || !sha || strlen(sha) != 64 ||
	    rf_hex_decode(sha, 64, ret_sha, 32) < 0) {
		e = rf__srv_err(r, 400, "invalid_field", "target",
				"target '%s' has no length or sha256", target);
		goto out;
	}
	json_t *custom = json_object_get(t, "custom");
	if (!json_is_object(custom)) {
		e = rf__srv_err(r, 400, "invalid_field", "target",
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

/*
 * The signed schedule against this server's rings (docs/rollout.md, "Rings a schedule names"):
 * every ring it lists must exist, and they must be listed in ring order (positions
 * non-decreasing). A misspelt or missing ring would silently skip that stage (a schedule
 * naming only such rings reaches no device, while the release shows as active), and rings out
 * of order would open broad before canary. Both are publisher mistakes that only a new signed
 * schedule can fix, so release create refuses them with the reason: nothing is stored. Returns
 * 0 or -1 with the 400 reply written.
 */
static int schedule_fits_rings(struct rf_server *s, const char *target,
			       const struct rf_rollout_schedule *sc, struct rf_server_reply *r)
{
	char have[RF_SRV_RINGS_MAX * (RF_SRV_ID_MAX + 2) + 1];
	size_t n = 0;
	int prev = -1;

	have[0] = 0;
	for (size_t i = 0; i < s->nrings && n < sizeof(have); i++)
		n += (size_t)snprintf(have + n, sizeof(have) - n, "%s%s", i ? ", " : "",
				      s->rings[i].name);
	for (unsigned k = 0; k < sc->nrings; k++) {
		int ri = rf__srv_ring_find(s, sc->rings[k].name);
		if (ri < 0)
			return rf__srv_err(
			    r, 400, "invalid_field", "target",
			    "signed schedule of '%s': schedule[%u] names ring '%s', which this "
			    "server does not have (rings: %s): that stage would be skipped "
			    "without a word. Add the ring (ringfence ring add) or sign a "
			    "corrected schedule",
			    target, k, sc->rings[k].name, have);
		if (prev >= 0 && s->rings[ri].position < s->rings[prev].position)
			return rf__srv_err(
			    r, 400, "invalid_field", "target",
			    "signed schedule of '%s': schedule[%u] ring '%s' (position %lld) is "
			    "listed after '%s' (position %lld): rings must be listed in ring "
			    "order, so that each opens only after the one before it passed its "
			    "gates",
			    target, k, sc->rings[k].name, (long long)s->rings[ri].position,
			    s->rings[prev].name, (long long)s->rings[prev].position);
		prev = ri;
	}
	return 0;
}

/* What release create checked of the target's bytes before it took the lock (pack_precheck). */
struct pack_checked {
	uint8_t sha[32];
	json_t *verdicts; /* the reply's "pack" member */
};

/*
 * Release create's check of the target's bytes (packcheck.c), made before the server's lock is
 * taken: it reads the pack and runs the verifier (up to seconds for a large pack), and
 * check-ins must go on meanwhile. It reads only the repository. release_create, under the lock,
 * reads the target's signed hash again and refuses if the repository changed in between.
 * Returns 0 with *ret filled, or -1 with the error reply written.
 */
static int pack_precheck(struct rf_server *s, const struct rf_server_request *q,
			 struct rf_server_reply *r, struct pack_checked *ret)
{
	json_t *j, *custom = NULL;
	const char *target;
	uint64_t len;
	int e = -1;

	if (rf__srv_parse_body(q, RF_SRV_ADMIN_BODY_MAX, r, &j) < 0)
		return -1;
	if (rf__srv_get_str(r, j, "target", S_ID, true, &target) < 0 ||
	    repo_target(s, target, &custom, &len, ret->sha, r) < 0)
		goto out;
	e = rf__srv_pack_check(s, target, len, ret->sha, json_object_get(j, "manifests"), r,
			       &ret->verdicts);
out:
	json_decref(custom);
	json_decref(j);
	return e;
}

static int release_create(struct rf_server *s, const struct rf_server_request *q,
			  const struct pack_checked *pc, struct rf_server_reply *r)
{
	json_t *j, *custom = NULL;
	const char *target;
	struct rf_diag d = {0};
	struct rf__srv_release nr = {0}, *slot;
	int e = -1;

	if (rf__srv_parse_body(q, RF_SRV_ADMIN_BODY_MAX, r, &j) < 0)
		return -1;
	if (rf__srv_get_str(r, j, "target", S_ID, true, &target) < 0)
		goto out;
	if (rf__srv_rel_by_target(s, target)) {
		e = rf__srv_err(r, 409, "conflict", "target", "a release of '%s' exists", target);
		goto out;
	}
	if (repo_target(s, target, &custom, &nr.length, nr.sha, r) < 0)
		goto out;
	if (!pc || memcmp(pc->sha, nr.sha, 32) != 0) {
		e = rf__srv_err(r, 409, "conflict", "target",
				"target '%s' changed in the repository while its pack was checked: "
				"retry",
				target);
		goto out;
	}
	if (rf_rollout_schedule_from_json(custom, &nr.sched, &d) < 0) {
		e = rf__srv_err(r, 400, "invalid_field", "target", "signed schedule of '%s': %s",
				target, d.first);
		goto out;
	}
	if (schedule_fits_rings(s, target, &nr.sched, r) < 0)
		goto out;
	nr.custom = json_dumps(custom, JSON_COMPACT | JSON_SORT_KEYS);
	if (!nr.custom) {
		e = rf__srv_err(r, 503, "unavailable", NULL, "out of memory");
		goto out;
	}
	nr.id = s->nrels ? s->rels[s->nrels - 1].id + 1 : 1;
	rf__srv_copy_str(nr.target, sizeof(nr.target), target);
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
	if (rf__srv_release_add(s, &slot) < 0 || rf__srv_release_prepare(s, &nr) < 0) {
		free(nr.custom);
		e = rf__srv_err(r, 503, "unavailable", NULL, "out of memory");
		goto out;
	}
	e = rf__srv_release_persist(s, &nr, false);
	if (e < 0) {
		free(nr.custom);
		for (unsigned k = 0; k < RF_ROLLOUT_RINGS_MAX; k++)
			free(nr.bhist[k]);
		if (e == -EEXIST && s->shared)
			s->reread = true; /* another instance took the id or the target */
		e = e == -EEXIST
			? rf__srv_err(r, 409, "conflict", "target", "a release of '%s' exists",
				      target)
			: rf__srv_err(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
		goto out;
	}
	*slot = nr;
	s->nrels++;
	rf__srv_release_commit(s);
	rf__srv_rr_rebuild(s);
	rf__srv_audit(s, 5, s->actor, "release.create", slot->id, slot->target,
		      "release '%s' version %lld, sha256 %.16s..., %llu bytes", slot->sched.release,
		      (long long)slot->version, slot->sha_hex, (unsigned long long)slot->length);
	rf__srv_audit_gate(s, slot, &slot->eval, &slot->st); /* a ring it opened at once */
	json_t *out = rf__srv_release_json(s, slot, true);
	if (out)
		json_object_set(out, "pack", pc->verdicts);
	e = rf__srv_reply_json(r, 201, out);
out:
	json_decref(custom);
	json_decref(j);
	return e;
}

/* Devices count_stranded decides for before it lets other requests in (a few milliseconds). */
#define STRANDED_SLICE 65536

/*
 * How many devices running release id would have nowhere to go if its state became *st: the
 * rollout engine's own answer for each of them (with what each reported at its last check-in)
 * is "wait for a fix". A decision for every device on the release, so the devices are visited
 * in slices with the lock released in between (check-ins go on; the hypothetical state is
 * never visible to them). Returns 0 with *ret and the lock held, or -EAGAIN if the release
 * changed meanwhile (its state generation moved on).
 */
static int count_stranded(struct rf_server *s, int64_t id, uint32_t gen,
			  const struct rf_rollout_state *st, int64_t now, uint64_t *ret)
{
	uint64_t n = 0;

	for (size_t i = 0;;) {
		struct rf__srv_release *rel = rf__srv_rel_by_id(s, id);
		size_t first =
		    s->nrels > RF_ROLLOUT_DECIDE_MAX ? s->nrels - RF_ROLLOUT_DECIDE_MAX : 0;

		if (!rel || rel->gen != gen)
			return -EAGAIN;
		size_t idx = (size_t)(rel - s->rels);
		if (idx < first)
			break;
		struct rf_rollout_state saved = s->rr[idx].state;
		s->rr[idx].state = *st;
		for (size_t end = i + STRANDED_SLICE; i < s->ndevs && i < end; i++) {
			const struct rf__srv_dev *d = rf__srv_dev_at(s, i);
			struct rf_rollout_answer a;

			if (d->release_id != id)
				continue;
			struct rf_rollout_device rd = {.id = rf__srv_dev_id(s, d),
						       .id_len = d->id_len,
						       .ring = rf__srv_dev_ring(s, d),
						       .current = (int)(idx - first),
						       .fallback = (d->flags & DEV_FALLBACK) != 0};
			if (rf_rollout_decide(&rd, &s->tenants[d->tenant].policy, s->rr + first,
					      s->nrels - first, now, &a) == 0 &&
			    a.reason == RF_ROLLOUT_R_WAITING_FIX)
				n++;
		}
		s->rr[idx].state = saved;
		if (i >= s->ndevs)
			break;
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_lock(&s->lock);
	}
	*ret = n;
	return 0;
}

static int release_action(struct rf_server *s, const struct rf_server_request *q,
			  struct rf__srv_release *rel, const char *act, struct rf_server_reply *r)
{
	json_t *j = NULL;
	bool force = false;
	const char *reason = NULL;
	int64_t now = rf__srv_health_advance(s, rf__srv_now(s));
	struct rf__srv_release nr = *rel;
	int e;

	if (q->body_len) {
		if (rf__srv_parse_body(q, RF_SRV_ADMIN_BODY_MAX, r, &j) < 0)
			return -1;
		if (rf__srv_get_str(r, j, "reason", S_TEXT, false, &reason) < 0) {
			json_decref(j);
			return -1;
		}
		json_t *f = json_object_get(j, "force");
		if (f && !json_is_boolean(f) && !json_is_null(f)) {
			json_decref(j);
			return rf__srv_err(r, 400, "invalid_field", "force",
					   "'force' must be a boolean");
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
		return rf__srv_err(r, 404, "not_found", NULL,
				   "no action '%s' (halt, resume, rollback, hold)", act);
	}
	json_decref(j);
	if (e == -EALREADY || e == -EPERM)
		return rf__srv_err(r, 409, "conflict", NULL, "release %lld is %s: cannot %s",
				   (long long)rel->id, rf_rollout_status_name(rel->st.status), act);
	if (e < 0)
		return rf__srv_err(r, 400, "invalid_field", NULL, "%s: %s", act, rf_strerror(e));
	/* Guard rail: devices that run it as their only good content have nowhere to go. They
	 * keep running it and wait for a fix; the operator must know and say so. */
	uint64_t stranded = 0;
	if (!strcmp(act, "halt") || !strcmp(act, "rollback")) {
		int64_t id = rel->id;
		if (count_stranded(s, id, rel->gen, &nr.st, now, &stranded) < 0)
			return rf__srv_err(r, 409, "conflict", NULL,
					   "release %lld changed while counting its devices: retry",
					   (long long)id);
		rel = rf__srv_rel_by_id(s, id); /* the table may have grown meanwhile */
		if (stranded && !force)
			return rf__srv_err(
			    r, 409, "conflict", "force",
			    "%llu %s release %lld as %s only good content and would have "
			    "nowhere to go: %s would keep running it, waiting for a fix. "
			    "Publish a fixed release first, or repeat with force (CLI: "
			    "--force) to %s anyway",
			    (unsigned long long)stranded,
			    stranded == 1 ? "device runs" : "devices run", (long long)rel->id,
			    stranded == 1 ? "its" : "their", stranded == 1 ? "it" : "they", act);
	}
	e = rf__srv_release_persist(s, &nr, false);
	if (e == -ESTALE)
		return rf__srv_err(r, 409, "conflict", NULL,
				   "release %lld was changed by another instance meanwhile: retry",
				   (long long)rel->id);
	if (e < 0)
		return rf__srv_err(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
	rf__srv_release_install_state(rel, &nr);
	rel->st = nr.st;
	rel->gen++;
	/* Resumed: records from before now no longer count (gates.c counts those with intent_at
	 * after resumed_at), and the status this reply and the next show is read from the counts
	 * after the resume, as the gates will read it (not the figures from before it until the
	 * next tick). */
	if (!strcmp(act, "resume")) {
		rf__srv_health_resumed(s, rel, nr.resumed_at);
		rf__srv_health_refresh(s, rel, now);
	} else {
		rel->resumed_at = nr.resumed_at;
	}
	rf__srv_rr_rebuild(s);
	rf__srv_audit_action(s, rel, act, why, force, stranded);
	json_t *out = rf__srv_release_json(s, rel, true);
	if (out && (!strcmp(act, "halt") || !strcmp(act, "rollback")))
		json_object_set_new(out, "stranded", json_integer((json_int_t)stranded));
	return rf__srv_reply_json(r, 200, out);
}

static int admin_releases(struct rf_server *s, const struct rf_server_request *q, const char *rest,
			  const struct pack_checked *pc, struct rf_server_reply *r)
{
	if (!*rest) {
		if (!strcmp(q->method, "POST"))
			return release_create(s, q, pc, r);
		if (!strcmp(q->method, "GET")) {
			json_t *a = json_array();
			for (size_t i = s->nrels; i-- > 0;)
				json_array_append_new(a,
						      rf__srv_release_json(s, &s->rels[i], false));
			return rf__srv_reply_json(r, 200, json_pack("{s:o}", "releases", a));
		}
		return rf__srv_err(r, 405, "method_not_allowed", NULL, "%s not allowed here",
				   q->method);
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
			rel = rf__srv_rel_by_id(s, (int64_t)id);
	}
	if (!rel)
		return rf__srv_err(r, 404, "not_found", NULL, "no such release");
	if (!slash) {
		if (strcmp(q->method, "GET"))
			return rf__srv_err(r, 405, "method_not_allowed", NULL,
					   "%s not allowed here", q->method);
		return rf__srv_reply_json(r, 200, rf__srv_release_json(s, rel, true));
	}
	if (strcmp(q->method, "POST"))
		return rf__srv_err(r, 405, "method_not_allowed", NULL, "%s not allowed here",
				   q->method);
	return release_action(s, q, rel, slash + 1, r);
}

/* The reply's "propagation" member (rf__srv_cluster_wait; consumed): how far the change reached
 * the other instances, in every answer to a change, on SQLite too (one instance: complete). */
static int add_propagation(struct rf_server_reply *r, json_t *prop)
{
	json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;

	if (!prop || !json_is_object(j)) {
		json_decref(prop);
		json_decref(j);
		return prop ? 0 : -ENOMEM;
	}
	json_object_set_new(j, "propagation", prop);
	return rf__srv_reply_json(r, r->status, j);
}

int rf__srv_handle_admin(struct rf_server *s, const struct rf_server_request *q, const char *rest,
			 struct rf_server_reply *r)
{
	uint8_t who[32];
	struct pack_checked pc = {0};
	int e;

	if (!admin_ok(s, q, r))
		return -1;
	/* Release create: its target's bytes are read and verified before the lock is taken. */
	if (!strcmp(rest, "releases") && !strcmp(q->method, "POST") &&
	    pack_precheck(s, q, r, &pc) < 0)
		return -1;
	rf__srv_hash_token(rf__srv_bearer(q->authorization, "rfa_"), who);
	pthread_mutex_lock(&s->lock);
	rf__srv_set_actor(s, who); /* who the audit trail names */
	if (!strcmp(rest, "audit"))
		e = rf__srv_admin_audit(s, q, r);
	else if (!strncmp(rest, "rings", 5) && (rest[5] == 0 || rest[5] == '/'))
		e = admin_rings(s, q, rest[5] ? rest + 6 : "", r);
	else if (!strncmp(rest, "tenants", 7) && (rest[7] == 0 || rest[7] == '/'))
		e = admin_tenants(s, q, rest[7] ? rest + 8 : "", r);
	else if (!strncmp(rest, "releases", 8) && (rest[8] == 0 || rest[8] == '/'))
		e = admin_releases(s, q, rest[8] ? rest + 9 : "", &pc, r);
	else
		e = rf__srv_err(r, 404, "not_found", NULL, "no such operator resource");
	/* Several instances: the others re-read what changed (after the commit; a lost
	 * announcement is covered by the change counter their next tick reads, and by their
	 * periodic re-read). */
	bool changed = strcmp(q->method, "GET") && r->status >= 200 && r->status < 300;
	int64_t seq = 0;
	int announced = 0;
	if (changed && s->shared)
		announced = rf_db_cluster_announce(s->db, "config", &seq);
	pthread_mutex_unlock(&s->lock);
	json_decref(pc.verdicts);
	/* Acknowledged once every live instance applied it (or the bound passed: the reply says
	 * which instances had not), so a halt the operator is told of is one no instance still
	 * answers "install" for. */
	if (changed && e == 0)
		e = add_propagation(r, rf__srv_cluster_wait(s, seq, announced));
	return e;
}
