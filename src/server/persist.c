/*
 * Persistence: the server's formats for what it keeps in the store (a release's rollout state
 * as JSON, a device's per-release history as text), the records written through rf_db, and the
 * heartbeat flush of device state.
 *
 * Every state change is written to the store first; memory is updated only after the store
 * returned 0 (see server.c).
 */
#include <stdlib.h>
#include <string.h>

#include "server/server-internal.h"

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

int rf__srv_state_from_json(const char *text, struct rf__srv_release *rel)
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
	rf__srv_copy_str(st.halt_reason, sizeof(st.halt_reason), reason);
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
		 * as 0 and 0; then element 12, the device's alerts_base, on the record of the
		 * release it runs (0 on the others): a record of 9 or 11 reads as 0. */
		bool cur = h->release == d->release_id && !h->left_at;
		json_array_append_new(
		    a, json_pack("[I,I,I,I,i,i,i,i,I,I,i,I]", (json_int_t)h->release,
				 (json_int_t)h->intent_at, (json_int_t)h->healthy_at,
				 (json_int_t)h->left_at, (int)h->crashes, (int)h->rollbacks,
				 (int)h->rejects, (h->lqo & RF__SRV_QUARANTINED) != 0,
				 (json_int_t)h->alerts, (json_int_t)(h->lqo & RF__SRV_LOCAL_MAX),
				 (h->lqo & RF__SRV_OBEYED) != 0,
				 (json_int_t)(cur ? d->alerts_base : 0)));
	}
	out = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return out;
}

static uint32_t sat(json_int_t v, uint32_t max)
{
	return v <= 0 ? 0 : (uint64_t)v >= max ? max : (uint32_t)v;
}

static void hist_set(struct rf__srv_dev *d, struct rf__srv_devrel *h, const json_int_t x[12])
{
	if (x[11] > 0)
		d->alerts_base = sat(x[11], UINT32_MAX);
	*h = (struct rf__srv_devrel){
	    .release = sat(x[0], UINT32_MAX),
	    .intent_at = sat(x[1], UINT32_MAX),
	    .healthy_at = sat(x[2], UINT32_MAX),
	    .left_at = sat(x[3], UINT32_MAX),
	    .crashes = (uint8_t)sat(x[4], 255),
	    .rollbacks = (uint8_t)sat(x[5], 255),
	    .rejects = (uint8_t)sat(x[6], 255),
	    .alerts = sat(x[8], UINT32_MAX),
	    .lqo = (uint8_t)(sat(x[9], RF__SRV_LOCAL_MAX) | (x[7] ? RF__SRV_QUARANTINED : 0) |
			     (x[10] ? RF__SRV_OBEYED : 0)),
	};
}

/* The compact form hist_to_string writes ("[[1,2,...],[...]]", non-negative integers, no
 * space), read without an allocation: loading a million devices at start spends most of its
 * time here otherwise. Returns false on anything else (then jansson reads it). */
static bool hist_fast(const char *p, struct rf__srv_dev *d)
{
	struct rf__srv_devrel h[RF__SRV_HIST];
	int n = 0;

	if (*p++ != '[')
		return false;
	if (*p == ']')
		return p[1] == 0;
	for (;;) {
		json_int_t x[12] = {0};
		int k = 0;
		if (*p++ != '[' || n == RF__SRV_HIST)
			return false;
		for (;;) {
			json_int_t v = 0;
			if (k == 12 || *p < '0' || *p > '9')
				return false;
			for (int digits = 0; *p >= '0' && *p <= '9'; p++)
				if (++digits > 18)
					return false;
				else
					v = v * 10 + (*p - '0');
			x[k++] = v;
			if (*p == ',') {
				p++;
				continue;
			}
			if (*p++ != ']' || (k != 12 && k != 11 && k != 9))
				return false;
			break;
		}
		hist_set(d, &h[n++], x);
		if (*p == ',') {
			p++;
			continue;
		}
		if (p[0] != ']' || p[1] != 0)
			return false;
		break;
	}
	memcpy(d->hist, h, (size_t)n * sizeof(h[0]));
	return true;
}

void rf__srv_hist_from_string(const char *text, struct rf__srv_dev *d)
{
	d->alerts_base = 0;
	if (!*text || hist_fast(text, d))
		return;
	json_t *a = json_loads(text, 0, NULL);
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
	{
		json_int_t x[12] = {0};
		if (i >= RF__SRV_HIST ||
		    (json_unpack(v, "[IIIIIIIIIIII]", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5],
				 &x[6], &x[7], &x[8], &x[9], &x[10], &x[11]) < 0 &&
		     json_unpack(v, "[IIIIIIIIIII]", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5],
				 &x[6], &x[7], &x[8], &x[9], &x[10]) < 0 &&
		     json_unpack(v, "[IIIIIIIII]", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5], &x[6],
				 &x[7], &x[8]) < 0))
			break;
		hist_set(d, &d->hist[i], x);
	}
	json_decref(a);
}

/* The store record of d (its id: id); strings point into d and s, *hist must be freed. */
int rf__srv_dev_record(const struct rf__srv_dev *d, const struct rf_server *s, const char *id,
		       struct rf_db_device *rec, char **hist)
{
	*hist = hist_to_string(d);
	if (!*hist)
		return -ENOMEM;
	*rec = (struct rf_db_device){
	    .id = id,
	    .tenant = s->tenants[d->tenant].name,
	    .ring = s->strs[d->ring],
	    .agent_version = s->strs[d->agent_version],
	    .manifest_hash = s->strs[d->manifest],
	    .enrolled_at = 0, /* kept as stored: only an enrolment sets it */
	    .last_seen = d->last_seen,
	    .release_id = d->release_id,
	    .state = rf__srv_state_name(d->state),
	    .state_at = d->state_at,
	    .crashes = d->crashes,
	    .rollbacks = d->rollbacks,
	    .events = d->events,
	    .alerts = d->alerts,
	    .history = *hist,
	    .version = d->version,
	};
	memcpy(rec->cred_hash, d->cred, 32);
	return 0;
}

int rf__srv_release_persist(struct rf_server *s, struct rf__srv_release *rel, bool gate)
{
	char *state = state_to_json(rel);
	int r;

	if (!state)
		return -ENOMEM;
	struct rf_db_release rec = {
	    .id = rel->id,
	    .target = rel->target,
	    .length = rel->length,
	    .version = rel->version,
	    .custom_json = rel->custom,
	    .created_at = rel->created_at,
	    .state_json = state,
	    /* A new release must not exist yet (""); a change must find the state it was
	     * computed from (compare-and-set: another instance may have changed it). */
	    .prev_state = rel->dbstate ? rel->dbstate : "",
	    .fenced = gate,
	};
	memcpy(rec.sha256, rel->sha, 32);
	r = rf_db_release_put(s->db, &rec);
	if (r == 0) {
		/* rel is the caller's copy: rel->dbstate (shared with the original) is freed by
		 * the caller when it installs the copy (rf__srv_release_install_state). */
		rel->dbstate = state;
		return 0;
	}
	if (r == -ESTALE)
		s->reread = true;
	free(state);
	return r;
}

void rf__srv_release_install_state(struct rf__srv_release *rel, struct rf__srv_release *nr)
{
	if (rel->dbstate != nr->dbstate)
		free(rel->dbstate);
	rel->dbstate = nr->dbstate;
}

/* Write the devices idx[0..n) (at most RF_SRV_FLUSH_CHUNK, none DEV_BUSY) in one transaction.
 * Lock held; released while the store writes (the records are copies, the devices DEV_BUSY
 * meanwhile, so no other write of them starts and a change made meanwhile marks them dirty
 * again). On failure they are queued again for the next tick. A device whose row another
 * instance wrote since this one read it (the compare-and-set on its version failed) is not
 * written: it is dirty again and its row is read again, which keeps this instance's check-in
 * change on top of it (cluster.c, apply_device) for the next tick. */
static int flush_batch(struct rf_server *s, const uint32_t *idx, size_t n)
{
	struct rf_db_device *recs = calloc(n ? n : 1, sizeof(*recs));
	char **hists = calloc(n ? n : 1, sizeof(*hists));
	/* ids and tenant names copied: the id arena and the tenant table may move while the
	 * lock is released (interned strings never move). */
	char(*names)[2][RF_SRV_ID_MAX + 1] = calloc(n ? n : 1, sizeof(*names));
	int64_t *vers = calloc(n ? n : 1, sizeof(*vers));
	uint8_t *was = calloc(n ? n : 1, sizeof(*was));
	uint32_t *stale_idx = calloc(n ? n : 1, sizeof(*stale_idx));
	size_t k = 0, stale = 0;
	int e = recs && hists && names && vers && was && stale_idx ? 0 : -ENOMEM;

	for (; k < n && e == 0; k++) {
		const struct rf__srv_dev *d = rf__srv_dev_at(s, idx[k]);
		e = rf__srv_dev_record(d, s, rf__srv_dev_id(s, d), &recs[k], &hists[k]);
		if (e < 0)
			break;
		rf__srv_copy_str(names[k][0], sizeof(names[k][0]), recs[k].id);
		rf__srv_copy_str(names[k][1], sizeof(names[k][1]), recs[k].tenant);
		recs[k].id = names[k][0];
		recs[k].tenant = names[k][1];
		recs[k].ret_version = &vers[k];
	}
	if (e == 0 && n) {
		const uint8_t pending = DEV_DIRTY | DEV_SEEN | DEV_TOOK | DEV_VER;
		for (size_t i = 0; i < n; i++) {
			struct rf__srv_dev *d = rf__srv_dev_at(s, idx[i]);
			was[i] = d->flags & pending;
			d->flags = (uint8_t)((d->flags & ~pending) | DEV_BUSY);
		}
		pthread_mutex_unlock(&s->lock);
		e = rf_db_devices_put(s->db, recs, n);
		pthread_mutex_lock(&s->lock);
		for (size_t i = 0; i < n; i++) {
			struct rf__srv_dev *d = rf__srv_dev_at(s, idx[i]);
			d->flags &= (uint8_t)~DEV_BUSY;
			if (e < 0 || !vers[i]) {
				/* not written: at the next tick, with what it had to write */
				d->flags |= was[i];
				(void)rf__srv_dev_dirty(s, idx[i]);
				if (e == 0)
					stale_idx[stale++] = idx[i];
			} else if ((uint32_t)vers[i] > d->version) {
				d->version = (uint32_t)vers[i];
			}
		}
		pthread_cond_broadcast(&s->wcv);
		if (e == 0) {
			atomic_fetch_add(&s->m_flushes, 1);
			atomic_fetch_add(&s->m_flushed_rows, n - stale);
		}
	} else if (e < 0) {
		for (size_t i = 0; i < n; i++) /* nothing written: at the next tick */
			(void)rf__srv_dev_dirty(s, idx[i]);
	}
	for (size_t i = 0; hists && i < k; i++)
		free(hists[i]);
	free(recs);
	free(hists);
	free(names);
	free(vers);
	free(was);
	if (stale)
		atomic_fetch_add(&s->m_dev_conflicts, stale);
	for (size_t i = 0; i < stale; i++)
		(void)rf__srv_cluster_fetch(s, rf__srv_dev_id(s, rf__srv_dev_at(s, stale_idx[i])));
	free(stale_idx);
	return e;
}

int rf__srv_flush_devices(struct rf_server *s, bool heartbeats)
{
	uint32_t *batch = malloc(RF_SRV_FLUSH_CHUNK * sizeof(*batch));
	size_t budget = s->ndirty, n = 0;
	int e = 0;

	if (!batch)
		return -ENOMEM;
	/* State changes: the dirty list, so the tick's work is the devices that changed, a chunk
	 * at a time (taken off the list before the lock is released: devices that change
	 * meanwhile are appended again). Only the entries there when it started: a fleet that
	 * keeps changing cannot keep one tick going. */
	while (e == 0 && budget && s->ndirty) {
		size_t take = budget < RF_SRV_FLUSH_CHUNK ? budget : RF_SRV_FLUSH_CHUNK;
		size_t busy = 0;
		if (take > s->ndirty)
			take = s->ndirty;
		budget -= take;
		n = 0;
		for (size_t i = 0; i < take; i++) {
			uint32_t x = s->dirty[--s->ndirty];
			struct rf__srv_dev *d = rf__srv_dev_at(s, x);
			d->flags &= (uint8_t)~DEV_QUEUED;
			if (!(d->flags & DEV_DIRTY))
				continue;
			if (d->flags & DEV_BUSY) /* a report's write: after it */
				batch[RF_SRV_FLUSH_CHUNK - 1 - busy++] = x;
			else
				batch[n++] = x;
		}
		/* The busy ones (at the top of batch) go back on the list. */
		for (size_t i = 0; i < busy; i++)
			(void)rf__srv_dev_dirty(s, batch[RF_SRV_FLUSH_CHUNK - 1 - i]);
		if (n)
			e = flush_batch(s, batch, n);
	}
	if (e < 0 || !heartbeats) {
		free(batch);
		return e;
	}
	/* Heartbeats (last seen, health counters): at shutdown only, a pass over the devices. */
	n = 0;
	for (size_t i = 0; i < s->ndevs && e == 0; i++) {
		if (rf__srv_dev_at(s, i)->flags & (DEV_SEEN | DEV_DIRTY) &&
		    !(rf__srv_dev_at(s, i)->flags & DEV_BUSY))
			batch[n++] = (uint32_t)i;
		if (n == RF_SRV_FLUSH_CHUNK || (i + 1 == s->ndevs && n)) {
			e = flush_batch(s, batch, n);
			n = 0;
		}
	}
	free(batch);
	return e;
}
