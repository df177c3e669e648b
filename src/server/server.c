/*
 * The ringfenced core: the working set and its lookup tables, loading it from the store,
 * dispatching requests and the periodic tick (heartbeat flush, gate evaluation, TUF timestamp
 * refresh). See server.h for the model. The rest of the server is split along its seams:
 * request.c (body and token checks), device.c (device API), admin.c (operator API), persist.c
 * (storage formats and the flush), gates.c (health and gates), web.c (dashboard, metrics, the
 * TUF repository).
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
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/util.h"
#include "server/server-internal.h"
#include "trust/tuf.h"

const char *const rf__srv_events[8] = {"installed", "intent",	   "trial_started", "healthy",
				       "crashed",   "rolled_back", "rejected",	    "quarantined"};

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

/* Write an error reply and return -1 (so handlers can "return rf__srv_err(...)"). */
RF_PRINTF(5, 6)
int rf__srv_err(struct rf_server_reply *r, int status, const char *code, const char *field,
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

/* ---- lookup tables -------------------------------------------------------------------------- */

static uint64_t dev_hash(struct rf_server *s, const char *id, size_t n)
{
	return rf_rollout_siphash24(s->hash_key, id, n);
}

struct rf__srv_dev *rf__srv_dev_find(struct rf_server *s, const char *id)
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

int rf__srv_dev_insert(struct rf_server *s, struct rf__srv_dev *d)
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

int rf__srv_tenant_find(struct rf_server *s, const char *name)
{
	for (size_t i = 0; i < s->ntenants; i++)
		if (!strcmp(s->tenants[i].name, name))
			return (int)i;
	return -1;
}

int rf__srv_ring_find(struct rf_server *s, const char *name)
{
	for (size_t i = 0; i < s->nrings; i++)
		if (!strcmp(s->rings[i].name, name))
			return (int)i;
	return -1;
}

struct rf__srv_release *rf__srv_rel_by_id(struct rf_server *s, int64_t id)
{
	for (size_t i = 0; i < s->nrels; i++)
		if (s->rels[i].id == id)
			return &s->rels[i];
	return NULL;
}

struct rf__srv_release *rf__srv_rel_by_target(struct rf_server *s, const char *t)
{
	for (size_t i = s->nrels; i-- > 0;)
		if (!strcmp(s->rels[i].target, t))
			return &s->rels[i];
	return NULL;
}

struct rf__srv_release *rf__srv_rel_by_sha(struct rf_server *s, const uint8_t sha[32])
{
	for (size_t i = s->nrels; i-- > 0;)
		if (!memcmp(s->rels[i].sha, sha, 32))
			return &s->rels[i];
	return NULL;
}

/* A device's ring: its tenant's when the tenant policy sets one (a policy change moves every
 * device of the tenant at once), else the ring it enrolled with. */
const char *rf__srv_dev_ring(const struct rf_server *s, const struct rf__srv_dev *d)
{
	return s->tenants[d->tenant].ring[0] ? s->tenants[d->tenant].ring : d->ring;
}

void rf__srv_recount_rings(struct rf_server *s)
{
	for (size_t i = 0; i < s->nrings; i++)
		s->rings[i].ndevices = 0;
	for (size_t i = 0; i < s->capdevs; i++) {
		int ri;
		if (s->devtab[i] &&
		    (ri = rf__srv_ring_find(s, rf__srv_dev_ring(s, s->devtab[i]))) >= 0)
			s->rings[ri].ndevices++;
	}
}

void rf__srv_rr_rebuild(struct rf_server *s)
{
	for (size_t i = 0; i < s->nrels; i++) {
		s->rr[i].schedule = &s->rels[i].sched;
		s->rr[i].state = s->rels[i].st;
	}
}

/* ---- loading -------------------------------------------------------------------------------- */

void rf__srv_policy_from(struct rf__srv_tenant *t, const char *pin, int64_t ws, int64_t we)
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

static int load_ring(void *ud, const struct rf_db_ring *x)
{
	struct rf_server *s = ud;

	if (s->nrings == RF_SRV_RINGS_MAX)
		return -E2BIG;
	rf__srv_copy_str(s->rings[s->nrings].name, sizeof(s->rings[0].name), x->name);
	s->rings[s->nrings++].position = x->position;
	return 0;
}

int rf__srv_tenant_add(struct rf_server *s, struct rf__srv_tenant **ret)
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

static int load_tenant(void *ud, const struct rf_db_tenant *x)
{
	struct rf_server *s = ud;
	struct rf__srv_tenant *t;
	int r = rf__srv_tenant_add(s, &t);

	if (r < 0)
		return r;
	rf__srv_copy_str(t->name, sizeof(t->name), x->name);
	memcpy(t->token_hash, x->token_hash, 32);
	rf__srv_copy_str(t->ring, sizeof(t->ring), x->ring);
	rf__srv_policy_from(t, x->pin, x->win_start_min, x->win_end_min);
	s->ntenants++;
	return 0;
}

int rf__srv_release_add(struct rf_server *s, struct rf__srv_release **ret)
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
		rf__srv_rr_rebuild(s);
	}
	*ret = &s->rels[s->nrels];
	memset(*ret, 0, sizeof(**ret));
	return 0;
}

static int load_release(void *ud, const struct rf_db_release *x)
{
	struct rf_server *s = ud;
	struct rf__srv_release *rel;
	int r = rf__srv_release_add(s, &rel);

	if (r < 0)
		return r;
	rel->id = x->id;
	rf__srv_copy_str(rel->target, sizeof(rel->target), x->target);
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
		r = rf__srv_state_from_json(x->state_json, rel);
	if (r < 0) {
		free(rel->custom);
		return rf_diag_report(&s->diag, -EBADMSG,
				      "release %lld: stored state does not parse",
				      (long long)x->id);
	}
	s->nrels++;
	rf__srv_rr_rebuild(s);
	return 0;
}

static int load_device(void *ud, const struct rf_db_device *x)
{
	struct rf_server *s = ud;
	struct rf__srv_dev *d;
	int t = rf__srv_tenant_find(s, x->tenant), r;

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
	rf__srv_copy_str(d->ring, sizeof(d->ring), x->ring);
	memcpy(d->cred, x->cred_hash, 32);
	rf__srv_copy_str(d->agent_version, sizeof(d->agent_version), x->agent_version);
	rf__srv_copy_str(d->manifest, sizeof(d->manifest), x->manifest_hash);
	d->enrolled_at = x->enrolled_at;
	d->last_seen = x->last_seen;
	d->release_id = x->release_id;
	rf__srv_copy_str(d->state, sizeof(d->state), x->state);
	d->state_at = x->state_at;
	d->crashes = x->crashes;
	d->rollbacks = x->rollbacks;
	d->events = x->events;
	d->alerts = x->alerts;
	rf__srv_hist_from_string(x->history, d);
	r = rf__srv_dev_insert(s, d);
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
	static const struct rf_db_visitor v = {load_ring, load_tenant, load_release, load_device};
	int r;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->repo_fd = -1;
	s->clock = opts->clock;
	s->clock_ud = opts->clock_ud;
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
	r = rf_db_open(opts->db_path, opts->init ? RF_DB_CREATE | RF_DB_EXCL : 0, diag, &s->db);
	if (r < 0)
		goto undo;
	r = rf_db_load(s->db, &v, s);
	if (r < 0) {
		if (s->diag.count && diag)
			rf_diag_report(diag, r, "%s", s->diag.first);
		else {
			char name[256];
			rf_db_pg_redact(opts->db_path, name, sizeof(name));
			rf_diag_report(diag, r, "loading %s: %s", name, rf_strerror(r));
		}
		goto undo;
	}
	s->db->diag = &s->diag;
	rf__srv_recount_rings(s);
	s->started_at = rf__srv_now(s);
	/* The per-device outcomes came back with the devices (each device row is committed in
	 * the same transaction as every report that changed it); aggregate and judge them now,
	 * before the first request, so a status read at once shows the health the release had
	 * and not the empty aggregates of a fresh start. A halt this finds is written like any
	 * other; if writing fails, the next tick retries (as it does for every evaluation). */
	(void)rf__srv_evaluate(s, s->started_at);
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
	if (s->db)
		(void)rf_server_tick(s, true);
	rf_db_close(s->db);
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
	if (!strcmp(p, "/v1/checkin") && post)
		rf__srv_handle_checkin(s, q, r);
	else if (!strcmp(p, "/v1/report") && post)
		rf__srv_handle_report(s, q, r);
	else if (!strcmp(p, "/v1/enroll") && post)
		rf__srv_handle_enroll(s, q, r);
	else if (!strncmp(p, "/v1/admin/", 10))
		rf__srv_handle_admin(s, q, p + 10, r);
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
	e = rf__srv_flush_devices(s, force);
	e2 = rf__srv_evaluate(s, now);
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
