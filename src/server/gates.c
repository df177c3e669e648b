/*
 * Health and gates: each tick, the per-(release, ring) health the gates read is gathered from
 * the devices and rf_rollout_evaluate() decides (advance, wait, halt). The server only gathers
 * the inputs; the decision is the rollout core's (P6: the server can slow a release, never speed
 * it).
 */
#include <string.h>


#include "server/server-internal.h"

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
			ri = rf_rollout_ring_index(&rel->sched, rf__srv_dev_ring(s, d));
			if (ri < 0 || bp[ri] == 0)
				continue;
			if (rf_rollout_bucket(rel->sched.bucket_key, d->id, d->id_len) < bp[ri])
				rel->health[ri].admitted++;
		}
	}
}

void rf__srv_aggregate(struct rf_server *s, int64_t now)
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
			struct rf__srv_release *on = rf__srv_rel_by_id(s, d->release_id);
			if (on && (on->st.status == RF_ROLLOUT_HALTED ||
				   on->st.status == RF_ROLLOUT_ROLLED_BACK))
				on->waiting++;
		}
		for (int k = 0; k < RF__SRV_HIST; k++) {
			const struct rf__srv_devrel *h = &d->hist[k];
			struct rf__srv_release *rel;
			int ri;

			if (!h->release || !(rel = rf__srv_rel_by_id(s, h->release)))
				continue;
			ri = rf_rollout_ring_index(&rel->sched, rf__srv_dev_ring(s, d));
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
	rf__srv_rr_rebuild(s);
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
			int ri = rf__srv_ring_find(s, s->rels[i].sched.rings[k].name);
			s->rels[i].health[k].population = ri >= 0 ? s->rings[ri].ndevices : 0;
		}
	count_admitted(s, now);
}

int rf__srv_evaluate(struct rf_server *s, int64_t now)
{
	int first_err = 0;

	rf__srv_aggregate(s, now);
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
		int e = rf__srv_release_persist(s, &nr);
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
	rf__srv_rr_rebuild(s);
	return first_err;
}
