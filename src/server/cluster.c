/*
 * Several ringfenced on one PostgreSQL database (docs/server.md, "Several instances"). Each
 * instance keeps its own working set in memory; the database is the one truth. This file
 * brings into memory what the other instances committed:
 *
 * - rings, tenants and releases (small tables) are re-read whole when another instance
 *   announces a change (NOTIFY after its commit, LISTENed on the control connection), when
 *   the control connection came back (announcements may have been missed), after a
 *   compare-and-set on a release's state failed, and every RF_SRV_REREAD_S seconds anyway; a
 *   new release goes through the same code as at start (rf__srv_release_load: its cohort
 *   buckets are then filled by the tick, as on the instance that created it), a changed
 *   state replaces the one in memory;
 * - device rows other instances wrote (enrolments, reports with the outcomes they led to,
 *   flushed check-in changes) are read every tick (rf_db_devices_changed, WITHOUT the server's
 *   lock: a copy of each row is kept, then applied under the lock RF_SRV_TAIL_CHUNK rows at a
 *   time, so check-ins never wait for the database's round trips or for a second's worth of
 *   another instance's writes) and replace the
 *   device in memory between rf__srv_dev_unindex and rf__srv_dev_index, so the health counts
 *   follow them exactly as they follow a local change; a device an instance has never seen is
 *   read when it checks in, before every report, and after a compare-and-set on its row's
 *   version failed (rf__srv_cluster_fetch). A row no newer than the copy in memory is skipped;
 *   a check-in change not written yet is applied again on top of a newer row
 *   (rf__srv_dev_reapply) and stays to be flushed.
 *
 * The gate lease: the instance whose control connection holds the advisory lock is the leader
 * (s->leader); only it writes what the gates decide (gates.c), with a compare-and-set on the
 * state it read and the lease's epoch as a fencing token, so a halt is written once even when
 * the lease moves, and a leader that hung and was replaced writes nothing when it resumes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server-internal.h"

#define STR_S_(x) #x
#define STR_S(x)  STR_S_(x)

/* Apply one device row another instance wrote. A row for a tenant this instance does not know
 * yet is skipped after a re-read of the tenants failed to find it (it is fetched again when
 * the device next talks to this instance). */
static int apply_device(void *ud, const struct rf_db_device *x)
{
	struct rf_server *s = ud;
	struct rf__srv_dev nd;
	uint32_t idx = 0;
	int r = rf__srv_dev_from_record(s, x, &nd);

	if (r == -EBADMSG) {
		(void)rf__srv_cluster_reread(s);
		r = rf__srv_dev_from_record(s, x, &nd);
	}
	if (r < 0)
		return r == -EBADMSG ? 0 : r;
	/* A version this instance has already (its own write, or a row read twice): nothing
	 * newer to apply, and never anything older over a newer copy. */
	struct rf__srv_dev *have = rf__srv_dev_find(s, x->id, &idx);
	if (have && nd.version <= have->version)
		return 0;
	/* A release this instance does not know yet (its announcement still on the way): read
	 * the releases first, or the device's records on it would not be counted. */
	int64_t last = s->nrels ? s->rels[s->nrels - 1].id : 0;
	bool unknown = x->release_id > last;
	for (int i = 0; i < RF__SRV_HIST; i++)
		unknown = unknown || nd.hist[i].release > last;
	if (unknown)
		(void)rf__srv_cluster_reread(s);
	(void)rf__srv_health_advance(s, rf__srv_now(s));
	struct rf__srv_dev *old = rf__srv_dev_find(s, x->id, &idx);
	if (old) {
		int ri = rf__srv_ring_find(s, rf__srv_dev_ring(s, old));
		rf__srv_dev_unindex(s, idx);
		rf__srv_dev_buckets(s, idx, -1);
		if (ri >= 0)
			s->rings[ri].ndevices--;
		if (old->tenant != nd.tenant) {
			s->tenants[old->tenant].ndevices--;
			s->tenants[nd.tenant].ndevices++;
		}
		/* Memory-only parts: its place in the id arena and the deadline heap, the phase it
		 * is indexed with, the last answer. A change a check-in here made and this instance
		 * has not written yet is applied again on top of the row when it is newer (it stays
		 * dirty: the next flush writes it by compare-and-set on the row's version); what
		 * the other instance wrote is never overwritten from the older copy. A heartbeat is
		 * kept if it is newer. */
		nd.id_off = old->id_off;
		nd.id_len = old->id_len;
		nd.hpos = old->hpos;
		nd.answer_reason = old->answer_reason;
		nd.flags = old->flags &
			   (uint8_t)(DEV_QUEUED | DEV_PHASE | DEV_FALLBACK | DEV_SEEN | DEV_BUSY);
		bool again = (old->flags & DEV_DIRTY) && rf__srv_dev_reapply(s, &nd, old);
		if (again)
			nd.flags |= (uint8_t)(old->flags & (DEV_TOOK | DEV_VER));
		if (old->last_seen > nd.last_seen)
			nd.last_seen = old->last_seen;
		*old = nd;
		if (again)
			(void)rf__srv_dev_dirty(s, idx);
	} else {
		nd.flags = s->tenants[nd.tenant].phase ? DEV_PHASE : 0;
		if (s->ndevs >= RF_SRV_DEVICES_MAX)
			return 0;
		r = rf__srv_dev_add(s, &nd, x->id, &idx);
		if (r < 0)
			return r;
		s->tenants[nd.tenant].ndevices++;
	}
	struct rf__srv_dev *d = rf__srv_dev_at(s, idx);
	int ri = rf__srv_ring_find(s, rf__srv_dev_ring(s, d));
	if (ri >= 0)
		s->rings[ri].ndevices++;
	rf__srv_dev_buckets(s, idx, 1);
	rf__srv_dev_index(s, idx);
	return 0;
}

int rf__srv_cluster_apply(struct rf_server *s, const struct rf_db_device *x)
{
	return apply_device(s, x);
}

int rf__srv_cluster_fetch(struct rf_server *s, const char *id)
{
	static const struct rf_db_visitor v = {.device = apply_device};

	return rf_db_device_get(s->db, id, &v, s);
}

/* ---- the small tables ---------------------------------------------------------------------- */

struct reread {
	struct rf_server *s;
	struct rf__srv_ring rings[RF_SRV_RINGS_MAX];
	size_t nrings;
	bool overflow;
	struct rf__srv_tenant *tenants;
	size_t ntenants, captenants;
	bool deferred; /* a tenant's change waits for a move under way (apply_tenants) */
};

static int reread_ring(void *ud, const struct rf_db_ring *x)
{
	struct reread *c = ud;

	if (c->nrings == RF_SRV_RINGS_MAX) {
		c->overflow = true;
		return 0;
	}
	struct rf__srv_ring *g = &c->rings[c->nrings++];
	rf__srv_copy_str(g->name, sizeof(g->name), x->name);
	g->position = x->position;
	int i = rf__srv_ring_find(c->s, x->name);
	g->ndevices = i >= 0 ? c->s->rings[i].ndevices : 0;
	if (i >= 0) /* counts kept as devices change (gates.c): carried, never reset */
		memcpy(g->why, c->s->rings[i].why, sizeof(g->why));
	return 0;
}

/* Tenants are applied after the load (apply_tenants): a change of ring or pin moves the
 * tenant's devices with the lock released between slices, which must not happen while the
 * store's connection is still reading the load's rows. */
static int reread_tenant(void *ud, const struct rf_db_tenant *x)
{
	struct reread *c = ud;

	if (c->ntenants == c->captenants) {
		size_t cap = c->captenants ? c->captenants * 2 : 16;
		struct rf__srv_tenant *t = realloc(c->tenants, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		c->tenants = t;
		c->captenants = cap;
	}
	struct rf__srv_tenant *t = &c->tenants[c->ntenants++];
	memset(t, 0, sizeof(*t));
	rf__srv_copy_str(t->name, sizeof(t->name), x->name);
	memcpy(t->token_hash, x->token_hash, 32);
	rf__srv_copy_str(t->ring, sizeof(t->ring), x->ring);
	rf__srv_policy_from(t, x->pin, x->win_start_min, x->win_end_min);
	return 0;
}

static int apply_tenants(struct rf_server *s, struct reread *c)
{
	for (size_t i = 0; i < c->ntenants; i++) {
		const struct rf__srv_tenant *x = &c->tenants[i];
		int ti = rf__srv_tenant_find(s, x->name);
		struct rf__srv_tenant t, *nt;

		if (ti < 0) {
			int r = rf__srv_tenant_add(s, &nt);
			if (r < 0)
				return r;
			*nt = *x;
			s->ntenants++;
			continue;
		}
		if (s->tenants[ti].moving) {
			/* A move under way here: the next re-read applies the change (not applied
			 * yet: the change counter is not marked applied meanwhile). */
			c->deferred = true;
			continue;
		}
		t = s->tenants[ti];
		memcpy(t.token_hash, x->token_hash, 32);
		memcpy(t.ring, x->ring, sizeof(t.ring));
		t.policy = x->policy;
		t.win_start_min = x->win_start_min;
		t.win_end_min = x->win_end_min;
		rf__srv_tenant_move(s, ti, &t);
	}
	return 0;
}

static int reread_release(void *ud, const struct rf_db_release *x)
{
	struct rf_server *s = ((struct reread *)ud)->s;
	struct rf__srv_release *rel = rf__srv_rel_by_id(s, x->id);

	if (!rel) {
		if (s->nrels && x->id <= s->rels[s->nrels - 1].id)
			return 0; /* cannot be placed in order (never written so) */
		int r = rf__srv_release_load(s, x);
		return r == -EBADMSG ? 0 : r;
	}
	if (rel->dbstate && !strcmp(rel->dbstate, x->state_json))
		return 0;
	struct rf__srv_release tmp = *rel;
	char *text = strdup(x->state_json);
	if (!text)
		return -ENOMEM;
	if (rf__srv_state_from_json(x->state_json, &tmp) < 0) {
		free(text);
		return 0;
	}
	/* Resumed there: records from before the resume no longer count (a recount of its
	 * devices' records: devices may have taken it here since the other instance's resume). */
	bool resumed = tmp.resumed_at != rel->resumed_at;
	int64_t now = 0;
	if (resumed) {
		now = rf__srv_health_advance(s, rf__srv_now(s));
		rf__srv_health_resumed(s, rel, tmp.resumed_at);
	}
	rel->st = tmp.st;
	rel->gen++;
	/* The status shows the counts after the resume at once, not at the next tick. */
	if (resumed)
		rf__srv_health_refresh(s, rel, now);
	free(rel->dbstate);
	rel->dbstate = text;
	return 0;
}

int rf__srv_cluster_reread(struct rf_server *s)
{
	struct reread *c = calloc(1, sizeof(*c));
	const struct rf_db_visitor v = {reread_ring, reread_tenant, reread_release, NULL};
	int r;

	if (!c)
		return -ENOMEM;
	c->s = s;
	r = rf_db_load(s->db, &v, c);
	if (r == 0 && !c->overflow) {
		memcpy(s->rings, c->rings, c->nrings * sizeof(c->rings[0]));
		s->nrings = c->nrings;
	}
	rf__srv_rr_rebuild(s);
	if (r == 0)
		r = apply_tenants(s, c);
	bool deferred = c->deferred;
	free(c->tenants);
	free(c);
	if (r == 0) {
		s->reread = deferred;
		s->last_reread = rf__srv_now(s);
	}
	return r;
}

/* ---- the tail of other instances' device rows -------------------------------------------- */

/* A device row read from the store, with its strings (the store's are valid only in the
 * visitor). */
struct rf__srv_trow {
	struct rf_db_device rec;
	char str[];
};

static int tail_copy(void *ud, const struct rf_db_device *x)
{
	struct rf_server *s = ud;
	const char *src[7] = {x->id,	x->tenant, x->ring, x->agent_version, x->manifest_hash,
			      x->state, x->history};
	size_t len[7], total = 0;

	for (int i = 0; i < 7; i++) {
		len[i] = src[i] ? strlen(src[i]) + 1 : 0;
		total += len[i];
	}
	if (s->ntail == s->captail) {
		size_t cap = s->captail ? 2 * s->captail : 1024;
		struct rf__srv_trow **t = realloc(s->tail, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		s->tail = t;
		s->captail = cap;
	}
	struct rf__srv_trow *row = malloc(sizeof(*row) + total);
	if (!row)
		return -ENOMEM;
	row->rec = *x;
	row->rec.ret_version = NULL;
	const char **dst[7] = {&row->rec.id,
			       &row->rec.tenant,
			       &row->rec.ring,
			       &row->rec.agent_version,
			       &row->rec.manifest_hash,
			       &row->rec.state,
			       &row->rec.history};
	char *p = row->str;
	for (int i = 0; i < 7; i++) {
		*dst[i] = src[i] ? p : NULL;
		if (src[i]) {
			memcpy(p, src[i], len[i]);
			p += len[i];
		}
	}
	s->tail[s->ntail++] = row;
	return 0;
}

/* Apply the rows read (lock held; let go between chunks). Rows an apply failed on (memory) stay
 * for the next tick, in order. */
static int tail_apply(struct rf_server *s)
{
	size_t i = 0;
	int e = 0;

	for (; i < s->ntail; i++) {
		if (i && i % RF_SRV_TAIL_CHUNK == 0) {
			pthread_mutex_unlock(&s->lock);
			pthread_mutex_lock(&s->lock);
		}
		e = apply_device(s, &s->tail[i]->rec);
		if (e < 0)
			break;
		free(s->tail[i]);
	}
	if (i && i < s->ntail)
		memmove(s->tail, s->tail + i, (s->ntail - i) * sizeof(*s->tail));
	s->ntail -= i;
	return e;
}

int rf__srv_cluster_poll(struct rf_server *s, int64_t now)
{
	static const struct rf_db_visitor v = {.device = tail_copy};
	unsigned changed = 0;
	bool leader = false;
	int64_t seq = 0;
	int e, e2 = 0, e5 = 0;

	/* The control connection is this thread's only (never used under the lock). */
	e = rf_db_cluster_poll(s->db, &changed, &leader, &seq);
	/* The other instances' device rows, read without the lock (s->tail is this thread's).
	 * Rows copied before a failure are applied; the store's cursor moves only when the whole
	 * read succeeded, so the next tick reads them again (applied once: versions). */
	int e3 = rf_db_devices_changed(s->db, &v, s);
	pthread_mutex_lock(&s->lock);
	if (leader != s->leader && s->log)
		s->log(
		    s->log_ud, 5,
		    leader
			? "gate leader: this instance now evaluates the gates"
			: "gate leader: lease lost (control connection down, or ended by "
			  "PostgreSQL after this instance hung); gates left to another instance");
	s->leader = leader;
	/* A change counter past what this instance applied: a change whose announcement was
	 * lost or is still on the way; re-read now rather than at the periodic re-read. */
	bool behind = e == 0 && seq > s->applied_seq;
	if (changed || behind || s->reread || now - s->last_reread >= RF_SRV_REREAD_S)
		e2 = rf__srv_cluster_reread(s);
	/* Every change counted up to seq was committed before the re-read began: applied (unless
	 * a part of it waits, s->reread). */
	if (behind && e2 == 0 && !s->reread)
		s->applied_seq = seq;
	int64_t applied = s->applied_seq;
	int e4 = tail_apply(s);
	pthread_mutex_unlock(&s->lock);
	/* Live, and how far: what a writer on another instance waits for (rf__srv_cluster_wait). */
	if (e == 0)
		e5 = rf_db_cluster_heartbeat(s->db, applied);
	return e ? e : e2 ? e2 : e3 ? e3 : e4 ? e4 : e5;
}

/* ---- an operator change reaches every live instance before it is acknowledged ------------- */

struct wait_look {
	json_t *pending, *not_live;
	size_t npending;
};

static int wait_instance(void *ud, const char *name, bool applied, bool live)
{
	struct wait_look *w = ud;

	if (applied)
		return 0;
	if (live)
		w->npending++;
	json_t *list = live ? w->pending : w->not_live;
	return json_array_append_new(list, json_string(name)) ? -ENOMEM : 0;
}

json_t *rf__srv_cluster_wait(struct rf_server *s, int64_t seq, int announced)
{
	struct wait_look w = {0};
	unsigned looks = 0, most = RF_SRV_PROPAGATE_MS / RF_SRV_PROPAGATE_POLL_MS;
	int r = announced;

	/* One instance (SQLite), or the announcement failed: no counter to wait for. */
	while (r == 0 && seq > 0) {
		json_decref(w.pending);
		json_decref(w.not_live);
		w.pending = json_array();
		w.not_live = json_array();
		w.npending = 0;
		if (!w.pending || !w.not_live) {
			r = -ENOMEM;
			break;
		}
		/* Without the server's lock: check-ins never wait for these looks (the store's
		 * mutex only, for one row an instance). */
		r = rf_db_cluster_instances(s->db, seq, wait_instance, &w);
		looks++;
		if (r < 0 || !w.npending || looks > most)
			break;
		struct timespec ts = {0, (long)RF_SRV_PROPAGATE_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (!w.pending)
		w.pending = json_array();
	if (!w.not_live)
		w.not_live = json_array();
	static const char *const why[2] = {
	    "the instances' heartbeats could not be read",
	    "the change was committed but not announced: instances re-read it within " STR_S(
		RF_SRV_REREAD_S) " s"};
	json_t *o = json_pack("{s:b,s:o,s:o}", "complete", r == 0 && !w.npending,
			      "pending_instances", w.pending, "not_live_instances", w.not_live);
	if (o && r < 0)
		json_object_set_new(o, "error", json_string(why[announced < 0]));
	return o;
}
