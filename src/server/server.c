/*
 * The ringfenced core: the working set and its lookup tables, loading it from the store,
 * dispatching requests and the periodic tick (heartbeat flush, gate evaluation, TUF timestamp
 * refresh). See server.h for the model. The rest of the server is split along its seams:
 * request.c (body and token checks), the device API (device.c: records, authentication,
 * enrolment; checkin.c: the check-in; report.c: reports and their group commit), admin.c
 * (operator API), persist.c (storage formats and the flush), gates.c (health and gates), web.c
 * (dashboard, metrics, the TUF repository).
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
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* Slot of hash h in a table of cap slots (any cap: multiply-shift, no power of two needed). */
static size_t slot_of(uint64_t h, size_t cap)
{
	__extension__ typedef unsigned __int128 u128;

	return (size_t)(((u128)h * cap) >> 64);
}

struct rf__srv_dev *rf__srv_dev_find(struct rf_server *s, const char *id, uint32_t *ret_idx)
{
	size_t n = strlen(id);

	if (!s->capdevs)
		return NULL;
	for (size_t i = slot_of(dev_hash(s, id, n), s->capdevs);;
	     i = i + 1 == s->capdevs ? 0 : i + 1) {
		uint32_t x = s->devtab[i];
		if (!x)
			return NULL;
		struct rf__srv_dev *d = rf__srv_dev_at(s, x - 1);
		if (d->id_len == n && !memcmp(s->ids + d->id_off, id, n)) {
			if (ret_idx)
				*ret_idx = x - 1;
			return d;
		}
	}
}

static void devtab_put(struct rf_server *s, uint32_t *t, size_t cap, uint32_t idx)
{
	const struct rf__srv_dev *d = rf__srv_dev_at(s, idx);
	size_t j = slot_of(dev_hash(s, s->ids + d->id_off, d->id_len), cap);

	while (t[j])
		j = j + 1 == cap ? 0 : j + 1;
	t[j] = idx + 1;
}

int rf__srv_dev_add(struct rf_server *s, const struct rf__srv_dev *nd, const char *id,
		    uint32_t *ret)
{
	size_t n = strlen(id), idx = s->ndevs;

	if (n > RF_SRV_ID_MAX || s->ndevs >= RF_SRV_DEVICES_MAX)
		return -E2BIG;
	/* Load at most 4/5, grown by a quarter: 5 to 6.25 bytes of table a device, about 3
	 * probes a lookup. While loading (ids are unique in the store) the table is built once
	 * at the end (devtab_build). */
	if (!s->loading && (s->ndevs + 1) * 5 > s->capdevs * 4) {
		size_t cap = s->capdevs ? s->capdevs + s->capdevs / 4 : 4096;
		uint32_t *t = calloc(cap, sizeof(*t));

		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < s->capdevs; i++)
			if (s->devtab[i])
				devtab_put(s, t, cap, s->devtab[i] - 1);
		free(s->devtab);
		s->devtab = t;
		s->capdevs = cap;
	}
	if (s->nids + n + 1 > s->capids) {
		/* Grown by an eighth (realloc of a large block is a remap, not a copy). */
		size_t cap = s->capids ? s->capids + s->capids / 8 : 65536;
		char *a;
		if (cap < s->nids + n + 1)
			cap = s->nids + n + 1;
		if (cap > UINT32_MAX || !(a = realloc(s->ids, cap)))
			return -ENOMEM;
		s->ids = a;
		s->capids = cap;
	}
	if ((idx >> RF__SRV_CHUNK_SHIFT) == s->nchunks) {
		struct rf__srv_dev **c = realloc(s->chunks, (s->nchunks + 1) * sizeof(*c));
		if (!c)
			return -ENOMEM;
		s->chunks = c;
		if (!(c[s->nchunks] = malloc(RF__SRV_CHUNK * sizeof(**c))))
			return -ENOMEM;
		s->nchunks++;
	}
	struct rf__srv_dev *d = rf__srv_dev_at(s, idx);
	*d = *nd;
	d->id_off = (uint32_t)s->nids;
	d->id_len = (uint8_t)n;
	memcpy(s->ids + s->nids, id, n + 1);
	s->nids += n + 1;
	s->ndevs++;
	if (!s->loading)
		devtab_put(s, s->devtab, s->capdevs, (uint32_t)idx);
	if (ret)
		*ret = (uint32_t)idx;
	return 0;
}

/* The id index of every device, built once after loading. */
static int devtab_build(struct rf_server *s)
{
	size_t cap = s->ndevs + s->ndevs / 4 + 4096;
	uint32_t *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < s->ndevs; i++)
		devtab_put(s, t, cap, (uint32_t)i);
	free(s->devtab);
	s->devtab = t;
	s->capdevs = cap;
	return 0;
}

/* ---- interned strings ----------------------------------------------------------------------- */

#define RF__SRV_STRTAB 131072u /* power of two, at least twice RF_SRV_STRINGS_MAX */

int rf__srv_intern(struct rf_server *s, const char *str, uint16_t *ret)
{
	size_t n = strlen(str), mask = RF__SRV_STRTAB - 1;

	if (!n) {
		*ret = 0;
		return 0;
	}
	size_t j = dev_hash(s, str, n) & mask;
	for (; s->strtab[j]; j = (j + 1) & mask)
		if (!strcmp(s->strs[s->strtab[j]], str)) {
			*ret = s->strtab[j];
			return 0;
		}
	if (s->nstrs > RF_SRV_STRINGS_MAX)
		return -E2BIG;
	if ((s->nstrs & (s->nstrs - 1)) == 0) { /* grow at powers of two */
		char **a = realloc(s->strs, 2 * s->nstrs * sizeof(*a));
		if (!a)
			return -ENOMEM;
		s->strs = a;
	}
	char *c = strdup(str);
	if (!c)
		return -ENOMEM;
	s->strs[s->nstrs] = c;
	s->strtab[j] = (uint16_t)s->nstrs;
	*ret = (uint16_t)s->nstrs++;
	return 0;
}

const char *rf__srv_state_name(unsigned state)
{
	return state && state < RF__SRV_STATES ? rf__srv_events[state - 1] : "enrolled";
}

int rf__srv_dev_dirty(struct rf_server *s, uint32_t idx)
{
	struct rf__srv_dev *d = rf__srv_dev_at(s, idx);

	d->flags |= DEV_DIRTY;
	if (d->flags & DEV_QUEUED)
		return 0;
	if (s->ndirty == s->capdirty) {
		size_t cap = s->capdirty ? s->capdirty * 2 : 1024;
		uint32_t *a = realloc(s->dirty, cap * sizeof(*a));
		if (!a)
			return -ENOMEM; /* flushed at shutdown, or with its next change */
		s->dirty = a;
		s->capdirty = cap;
	}
	s->dirty[s->ndirty++] = idx;
	d->flags |= DEV_QUEUED;
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
	/* Ids ascend with the array (releases are created and loaded in id order). */
	size_t lo = 0, hi = s->nrels;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->rels[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nrels && s->rels[lo].id == id ? &s->rels[lo] : NULL;
}

static const uint8_t relidx_key[16] = "ringfence-relidx";

static uint64_t tgt_hash(const char *t)
{
	return rf_rollout_siphash24(relidx_key, t, strlen(t));
}

static uint64_t sha_hash(const uint8_t sha[32])
{
	uint64_t h;

	memcpy(&h, sha, sizeof(h)); /* a SHA-256 is already uniform */
	return h;
}

/* Index rels[i] by sha256 and target (newest wins: a later insert of the same key replaces). */
static void relidx_put(struct rf_server *s, uint32_t *sha_t, uint32_t *tgt_t, size_t cap, size_t i)
{
	size_t j = slot_of(sha_hash(s->rels[i].sha), cap);

	while (sha_t[j] && memcmp(s->rels[sha_t[j] - 1].sha, s->rels[i].sha, 32))
		j = j + 1 == cap ? 0 : j + 1;
	sha_t[j] = (uint32_t)i + 1;
	j = slot_of(tgt_hash(s->rels[i].target), cap);
	while (tgt_t[j] && strcmp(s->rels[tgt_t[j] - 1].target, s->rels[i].target))
		j = j + 1 == cap ? 0 : j + 1;
	tgt_t[j] = (uint32_t)i + 1;
}

int rf__srv_release_prepare(struct rf_server *s, struct rf__srv_release *rel)
{
	if ((s->nrels + 1) * 2 > s->caprelidx) {
		size_t cap = s->caprelidx ? s->caprelidx * 2 : 64;
		uint32_t *a = calloc(cap, sizeof(*a)), *b = calloc(cap, sizeof(*b));
		if (!a || !b) {
			free(a);
			free(b);
			return -ENOMEM;
		}
		free(s->relsha);
		free(s->reltgt);
		s->relsha = a;
		s->reltgt = b;
		s->caprelidx = cap;
		for (size_t i = 0; i < s->nrels; i++)
			relidx_put(s, a, b, cap, i);
	}
	memset(rel->acc, 0, sizeof(rel->acc));
	memset(rel->on, 0, sizeof(rel->on));
	memset(rel->bhist, 0, sizeof(rel->bhist));
	memset(rel->btotal, 0, sizeof(rel->btotal));
	memset(rel->admitted, 0, sizeof(rel->admitted));
	memset(rel->abp, 0, sizeof(rel->abp));
	rel->bdone = 0;
	rel->waiting_n = 0;
	for (unsigned k = 0; k < rel->sched.nrings; k++)
		if (!(rel->bhist[k] = calloc(RF_ROLLOUT_BUCKETS, sizeof(uint32_t)))) {
			for (unsigned i = 0; i < k; i++)
				free(rel->bhist[i]);
			memset(rel->bhist, 0, sizeof(rel->bhist));
			return -ENOMEM;
		}
	return 0;
}

void rf__srv_release_commit(struct rf_server *s)
{
	relidx_put(s, s->relsha, s->reltgt, s->caprelidx, s->nrels - 1);
}

struct rf__srv_release *rf__srv_rel_by_target(struct rf_server *s, const char *t)
{
	if (!s->caprelidx)
		return NULL;
	for (size_t j = slot_of(tgt_hash(t), s->caprelidx); s->reltgt[j];
	     j = j + 1 == s->caprelidx ? 0 : j + 1)
		if (!strcmp(s->rels[s->reltgt[j] - 1].target, t))
			return &s->rels[s->reltgt[j] - 1];
	return NULL;
}

struct rf__srv_release *rf__srv_rel_by_sha(struct rf_server *s, const uint8_t sha[32])
{
	if (!s->caprelidx)
		return NULL;
	for (size_t j = slot_of(sha_hash(sha), s->caprelidx); s->relsha[j];
	     j = j + 1 == s->caprelidx ? 0 : j + 1)
		if (!memcmp(s->rels[s->relsha[j] - 1].sha, sha, 32))
			return &s->rels[s->relsha[j] - 1];
	return NULL;
}

/* A device's ring: its tenant's when the tenant policy sets one (a policy change moves every
 * device of the tenant at once), else the ring it enrolled with. */
static bool dev_moved(const struct rf__srv_tenant *t, const struct rf__srv_dev *d)
{
	return !t->moving || ((d->flags & DEV_PHASE) != 0) == (t->phase != 0);
}

const char *rf__srv_dev_ring(const struct rf_server *s, const struct rf__srv_dev *d)
{
	const struct rf__srv_tenant *t = &s->tenants[d->tenant];
	const char *tr = dev_moved(t, d) ? t->ring : t->old_ring;

	return tr[0] ? tr : s->strs[d->ring];
}

bool rf__srv_dev_pin_n1(const struct rf_server *s, const struct rf__srv_dev *d)
{
	const struct rf__srv_tenant *t = &s->tenants[d->tenant];

	return (dev_moved(t, d) ? t->policy.pin : t->old_pin) == RF_ROLLOUT_PIN_N1;
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
		if (s->ntenants >= RF_SRV_TENANTS_MAX)
			return -E2BIG;
		if (cap > RF_SRV_TENANTS_MAX)
			cap = RF_SRV_TENANTS_MAX;
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
	if (x->id <= 0 || x->id > UINT32_MAX || (s->nrels && x->id <= s->rels[s->nrels - 1].id)) {
		free(rel->custom);
		return rf_diag_report(&s->diag, -EBADMSG, "release %lld: id out of order",
				      (long long)x->id);
	}
	rel->dbstate = strdup(x->state_json);
	r = rel->dbstate ? rf__srv_release_prepare(s, rel) : -ENOMEM;
	if (r < 0) {
		free(rel->custom);
		free(rel->dbstate);
		return r;
	}
	s->nrels++;
	rf__srv_release_commit(s);
	rf__srv_rr_rebuild(s);
	return 0;
}

static int state_index(const char *name)
{
	for (unsigned i = 1; i < RF__SRV_STATES; i++)
		if (!strcmp(name, rf__srv_events[i - 1]))
			return (int)i;
	return 0;
}

int rf__srv_release_load(struct rf_server *s, const struct rf_db_release *x)
{
	return load_release(s, x);
}

int rf__srv_dev_from_record(struct rf_server *s, const struct rf_db_device *x,
			    struct rf__srv_dev *ret)
{
	struct rf__srv_dev d = {0};
	int t = rf__srv_tenant_find(s, x->tenant), r;

	if (t < 0)
		return rf_diag_report(&s->diag, -EBADMSG, "device %s: unknown tenant", x->id);
	d.tenant = (uint16_t)t;
	if ((r = rf__srv_intern(s, x->ring, &d.ring)) < 0 ||
	    (r = rf__srv_intern(s, x->agent_version, &d.agent_version)) < 0 ||
	    (r = rf__srv_intern(s, x->manifest_hash, &d.manifest)) < 0)
		return r;
	memcpy(d.cred, x->cred_hash, 32);
	d.version = x->version > 0 && x->version <= UINT32_MAX ? (uint32_t)x->version : 0;
	d.last_seen = rf__srv_t32(x->last_seen);
	d.release_id =
	    x->release_id > 0 && x->release_id <= UINT32_MAX ? (uint32_t)x->release_id : 0;
	d.state = (uint8_t)state_index(x->state);
	d.state_at = rf__srv_t32(x->state_at);
	d.crashes = x->crashes > UINT16_MAX ? UINT16_MAX : (uint16_t)x->crashes;
	d.rollbacks = x->rollbacks > UINT16_MAX ? UINT16_MAX : (uint16_t)x->rollbacks;
	d.events = x->events > UINT32_MAX ? UINT32_MAX : (uint32_t)x->events;
	d.alerts = x->alerts > UINT32_MAX ? UINT32_MAX : (uint32_t)x->alerts;
	rf__srv_hist_from_string(x->history, &d);
	*ret = d;
	return 0;
}

static int load_device(void *ud, const struct rf_db_device *x)
{
	struct rf_server *s = ud;
	struct rf__srv_dev d;
	int r = rf__srv_dev_from_record(s, x, &d);

	if (r == 0)
		r = rf__srv_dev_add(s, &d, x->id, NULL);
	if (r < 0)
		return r;
	s->tenants[d.tenant].ndevices++;
	return 0;
}

/* The admin token of a shared database (PostgreSQL): its hash lives in the database, so every
 * instance accepts the same token; a token file given to an instance must match it. */
static int admin_shared(struct rf_server *s, const struct rf_server_opts *opts,
			struct rf_diag *diag)
{
	uint8_t h[32];
	int r = opts->init ? -ENOENT : rf_db_admin_hash(s->db, h, false);

	if (r == -ENOENT && opts->admin_from_db)
		return rf_diag_report(diag, -ENOKEY,
				      "the database holds no admin token: start one instance with "
				      "--admin-token-file (or --init) first");
	if (r == -ENOENT) {
		memcpy(h, opts->admin_hash, 32);
		r = rf_db_admin_hash(s->db, h, true);
	}
	if (r < 0)
		return rf_diag_report(diag, r, "reading the admin token from the database: %s",
				      s->diag.count ? s->diag.first : rf_strerror(r));
	if (!opts->admin_from_db && CRYPTO_memcmp(h, opts->admin_hash, 32))
		return rf_diag_report(diag, -EKEYREJECTED,
				      "the admin token file does not hold the token of this "
				      "database (the one the first instance stored)");
	memcpy(s->admin_hash, h, 32);
	return 0;
}

/* The store's diag sink (struct rf_server, store_log_*): one warning line per error, at most
 * RF_SRV_STORE_LOG_BURST a window, the errors left out summarised when the next window opens.
 * Called from any thread, with or without the server's lock. */
static void store_log(void *ud, int code, const char *msg)
{
	struct rf_server *s = ud;
	int64_t now = rf__srv_now(s);
	uint64_t dropped = 0;
	bool show;

	atomic_fetch_add(&s->m_store_errors, 1);
	if (!s->log)
		return;
	pthread_mutex_lock(&s->store_log_mu);
	/* (the server's clock: a clock set back opens a new window too) */
	if (now < s->store_log_window || now - s->store_log_window >= RF_SRV_STORE_LOG_WINDOW_S ||
	    !s->store_log_lines) {
		dropped = s->store_log_dropped;
		s->store_log_window = now;
		s->store_log_lines = 0;
		s->store_log_dropped = 0;
	}
	show = s->store_log_lines < RF_SRV_STORE_LOG_BURST;
	if (show)
		s->store_log_lines++;
	else
		s->store_log_dropped++;
	if (dropped) {
		char line[128];
		snprintf(line, sizeof(line),
			 "storage: %llu more errors not logged (at most %u lines in %u s)",
			 (unsigned long long)dropped, RF_SRV_STORE_LOG_BURST,
			 RF_SRV_STORE_LOG_WINDOW_S);
		s->log(s->log_ud, 4, line);
	}
	if (show) {
		char line[RF_DIAG_MSG_MAX + 64];
		snprintf(line, sizeof(line), "storage: %s (%s)", msg, rf_strerror(code));
		s->log(s->log_ud, 4, line);
	}
	pthread_mutex_unlock(&s->store_log_mu);
}

int rf_server_new(const struct rf_server_opts *opts, struct rf_diag *diag, struct rf_server **ret)
{
	struct rf_server *s = calloc(1, sizeof(*s));
	static const struct rf_db_visitor v = {load_ring, load_tenant, load_release, load_device};
	struct rf_db *serial;
	int r;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->store_log_mu, NULL);
	pthread_cond_init(&s->wcv, NULL);
	pthread_cond_init(&s->wqcv, NULL);
	s->wq_tail = &s->wq_head;
	s->repo_fd = -1;
	s->clock = opts->clock;
	s->clock_ud = opts->clock_ud;
	s->log = opts->log;
	s->log_ud = opts->log_ud;
	s->poll_interval = opts->poll_interval_s ? opts->poll_interval_s : 300;
	memcpy(s->admin_hash, opts->admin_hash, 32);
	/* Never NULL, so "rr + first" is defined even with no release yet. */
	s->rr = calloc(1, sizeof(*s->rr));
	s->strs = calloc(1, sizeof(*s->strs));
	s->strtab = calloc(RF__SRV_STRTAB, sizeof(*s->strtab));
	if (s->strs)
		s->strs[0] = strdup("");
	s->nstrs = 1;
	if (!s->rr || !s->strs || !s->strs[0] || !s->strtab) {
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
	s->loading = true;
	r = rf_db_load(s->db, &v, s);
	s->loading = false;
	if (r == 0)
		r = devtab_build(s);
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
	/* From here on every error the store reports is logged (store_log): an operator sees why
	 * a request was answered 503. */
	s->diag.emit = store_log;
	s->diag.userdata = s;
	s->db->diag = &s->diag;
	s->db->retries = &s->m_store_retries;
	/* From here on several threads use the store: the group commit of reports and the flush
	 * write without the server's lock (dbserial.c). */
	r = rf__srv_db_serial(s->db, opts->db_path, &serial);
	if (r < 0)
		goto undo;
	s->db = serial;
	s->shared = rf_db_is_shared(s->db);
	s->leader = !s->shared; /* several instances: the lease is taken by the first tick */
	if (s->shared) {
		r = admin_shared(s, opts, diag);
		if (r < 0)
			goto undo;
	}
	s->started_at = rf__srv_now(s);
	s->hnow = s->started_at;
	r = rf__srv_index_rebuild(s);
	if (r < 0) {
		rf_diag_report(diag, r, "indexing the devices: %s", rf_strerror(r));
		goto undo;
	}
	/* The per-device outcomes came back with the devices (each device row is committed in
	 * the same transaction as every report that changed it); aggregate and judge them now,
	 * before the first request, so a status read at once shows the health the release had
	 * and not the empty aggregates of a fresh start. A halt this finds is written like any
	 * other; if writing fails, the next tick retries (as it does for every evaluation). */
	(void)rf__srv_evaluate(s, s->started_at);
	r = rf__srv_committer_start(s);
	if (r < 0) {
		rf_diag_report(diag, r, "cannot start the report committer: %s", rf_strerror(r));
		goto undo;
	}
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
	rf__srv_committer_stop(s); /* the reports queued are written first */
	if (s->db)
		(void)rf_server_tick(s, true);
	rf_db_close(s->db);
	for (size_t i = 0; i < s->nchunks; i++)
		free(s->chunks[i]);
	free(s->chunks);
	for (size_t i = 0; i < s->ntail; i++)
		free(s->tail[i]);
	free(s->tail);
	free(s->devtab);
	free(s->ids);
	for (size_t i = 0; s->strs && i < s->nstrs; i++)
		free(s->strs[i]);
	free(s->strs);
	free(s->strtab);
	free(s->dirty);
	free(s->heap);
	free(s->relsha);
	free(s->reltgt);
	for (size_t i = 0; i < s->nrels; i++) {
		free(s->rels[i].custom);
		free(s->rels[i].dbstate);
		for (unsigned k = 0; k < RF_ROLLOUT_RINGS_MAX; k++)
			free(s->rels[i].bhist[k]);
	}
	free(s->rels);
	free(s->rr);
	free(s->tenants);
	free(s->repo_dir);
	if (s->repo_fd >= 0)
		close(s->repo_fd);
	pthread_cond_destroy(&s->wcv);
	pthread_cond_destroy(&s->wqcv);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->store_log_mu);
	free(s);
}

/* ---- dispatch ------------------------------------------------------------------------------- */

size_t rf_server_body_max(const char *path)
{
	return path && !strncmp(path, "/v1/admin/", 10) ? RF_SRV_ADMIN_BODY_MAX
							: RF_SRV_DEVICE_BODY_MAX;
}

/* A reply made: counted by class; -ENOMEM when it has no content (not even the error). */
static int reply_done(struct rf_server *s, struct rf_server_reply *r)
{
	if (!r->body && r->fd < 0)
		return -ENOMEM;
	if (r->status >= 500)
		atomic_fetch_add(&s->m_http_5xx, 1);
	else if (r->status >= 400)
		atomic_fetch_add(&s->m_http_4xx, 1);
	return 0;
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
		rf__srv_handle_checkin(s, q, r);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		rf__srv_observe_checkin(s, (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
					       (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec);
	} else if (!strcmp(p, "/v1/report") && post)
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
	return reply_done(s, r);
}

int rf_server_handle_async(struct rf_server *s, const struct rf_server_request *q,
			   void (*wake)(void *ud), void *ud, struct rf_server_pending **ret_pending,
			   struct rf_server_reply *r)
{
	if (strcmp(q->path, "/v1/report") || strcmp(q->method, "POST"))
		return rf_server_handle(s, q, r);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (rf__srv_report_async(s, q, wake, ud, ret_pending, r))
		return 1;
	return reply_done(s, r);
}

int rf_server_resume(struct rf_server *s, struct rf_server_pending *p, struct rf_server_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (rf__srv_report_resume(s, p, r))
		return 1;
	return reply_done(s, r);
}

void rf_server_abandon(struct rf_server *s, struct rf_server_pending *p)
{
	rf__srv_report_abandon(s, p);
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

void rf_server_stats(struct rf_server *s, struct rf_server_stats *ret)
{
	uint64_t dev, all;

	pthread_mutex_lock(&s->lock);
	dev = (uint64_t)s->nchunks * RF__SRV_CHUNK * sizeof(struct rf__srv_dev) +
	      s->nchunks * sizeof(*s->chunks) + s->capdevs * sizeof(*s->devtab) + s->capids +
	      s->capheap * sizeof(*s->heap) + s->capdirty * sizeof(*s->dirty);
	all = dev + s->caprels * (sizeof(*s->rels) + sizeof(*s->rr)) +
	      2 * s->caprelidx * sizeof(uint32_t) + s->captenants * sizeof(*s->tenants) +
	      RF__SRV_STRTAB * sizeof(*s->strtab);
	for (size_t i = 0; i < s->nrels; i++)
		all += s->rels[i].sched.nrings * (uint64_t)RF_ROLLOUT_BUCKETS * sizeof(uint32_t) +
		       strlen(s->rels[i].custom) + 1;
	for (size_t i = 0; i < s->nstrs; i++)
		all += strlen(s->strs[i]) + 1 + sizeof(*s->strs);
	*ret = (struct rf_server_stats){s->ndevs, dev, all};
	pthread_mutex_unlock(&s->lock);
}

/* ---- tick: flush, gates, timestamp ---------------------------------------------------------- */

int rf_server_wait(struct rf_server *s, unsigned ms)
{
	uint64_t t0 = rf_now_mono_ns(), gap = (uint64_t)RF_SRV_NOTIFY_GAP_MS * 1000000u;
	int fd = s->shared ? rf_db_cluster_fd(s->db) : -1;

	/* Not within the gap of the last early read: a socket that stays readable (a closing
	 * connection) cannot make this loop spin. */
	if (fd >= 0 && t0 - s->notified_ns < gap) {
		unsigned rest = (unsigned)((s->notified_ns + gap - t0) / 1000000u) + 1;
		struct timespec ts = {0, (long)(rest < ms ? rest : ms) * 1000000L};
		if (nanosleep(&ts, NULL) < 0 || rest >= ms)
			return 0;
		ms -= rest;
	}
	if (fd < 0) {
		struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
		(void)nanosleep(&ts, NULL);
		return 0;
	}
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n = poll(&p, 1, (int)ms);
	if (n <= 0) /* the time is up, or a signal */
		return 0;
	s->notified_ns = rf_now_mono_ns();
	int e = rf__srv_cluster_poll(s, rf__srv_now(s));
	return e < 0 ? e : 1;
}

int rf_server_tick(struct rf_server *s, bool force)
{
	int64_t now = rf__srv_now(s);
	int e, e2, e3 = 0;

	/* Several instances: announcements, the gate lease, the other instances' changes. */
	if (s->shared && !force)
		e3 = rf__srv_cluster_poll(s, now);
	pthread_mutex_lock(&s->lock);
	s->ticks++;
	/* Heartbeats (last seen, health counters) are written only at shutdown or with a device's
	 * next state change: the counters come again in every check-in, and after a start every
	 * device gets a full silence window (started_at), so a periodic write of every device
	 * that checked in would buy nothing but a large transaction under the lock. */
	e = rf__srv_flush_devices(s, force);
	/* New releases' cohort buckets, a slice a tick (a few milliseconds), so creating a
	 * release never holds the lock for a pass over the fleet. */
	(void)rf__srv_buckets_fill(s, 65536);
	e2 = rf__srv_evaluate(s, now);
	pthread_mutex_unlock(&s->lock);
	if (!e)
		e = e2;
	if (!e)
		e = e3;
	/* Retention (limits.h, RF_SRV_REPORTS_RETENTION_S): a chunk of the oldest reports a
	 * minute, every tick while there is more. Several instances: the gate leader. */
	if (s->leader && (force || now >= s->purge_at)) {
		uint64_t n = 0;
		int r = rf_db_reports_purge(s->db, now - RF_SRV_REPORTS_RETENTION_S,
					    RF_SRV_REPORTS_PURGE_CHUNK, &n);
		atomic_fetch_add(&s->m_reports_purged, n);
		s->purge_at = now + (r == 0 && n == RF_SRV_REPORTS_PURGE_CHUNK ? 1 : 60);
		if (r < 0 && !e)
			e = r;
	}
	/* The timestamp: re-signed an hour before it would expire (repository writer, trust/).
	 * Several instances share one repository: only the gate leader signs. */
	if (s->repo_dir && s->leader && (force || now - s->last_refresh >= 60)) {
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
