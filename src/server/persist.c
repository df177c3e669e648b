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

void rf__srv_hist_from_string(const char *text, struct rf__srv_dev *d)
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
int rf__srv_dev_record(const struct rf__srv_dev *d, const struct rf_server *s,
		       struct rf_db_device *rec, char **hist)
{
	*hist = hist_to_string(d);
	if (!*hist)
		return -ENOMEM;
	*rec = (struct rf_db_device){
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

int rf__srv_release_persist(struct rf_server *s, const struct rf__srv_release *rel)
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
	};
	memcpy(rec.sha256, rel->sha, 32);
	r = rf_db_release_put(s->db, &rec);
	free(state);
	return r;
}

int rf__srv_flush_devices(struct rf_server *s, bool heartbeats)
{
	struct rf_db_device *recs = NULL;
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
		e = rf__srv_dev_record(d, s, &recs[n], &hists[n]);
		if (e == 0)
			which[n++] = d;
	}
	if (e == 0 && n) {
		e = rf_db_devices_put(s->db, recs, n);
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
