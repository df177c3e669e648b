/*
 * Health and gates. The per-(release, ring) health the gates read is kept incrementally: a
 * device's records are removed from the counts before it changes (a check-in, a report, an
 * enrolment) and added back after, with rf_rollout_health_apply (the one definition of health,
 * rollout/health.c); silence after intent is found by a min-heap of deadlines (one entry per
 * device with a pending record, moved in place when the device is heard from), never by a
 * scan; the devices a step admits are a prefix sum over
 * per-ring cohort bucket counts. The tick reads these counts, so its work is proportional to
 * releases x rings and to the deadlines due, never to the fleet. rf_rollout_evaluate()
 * decides (advance, wait, halt): the server only gathers the inputs (P6: it can slow a
 * release, never speed it).
 *
 * Invariant (checked by rf__srv_health_verify, tests/server/test_health_index.c): for every
 * release and ring, the counts equal rf_rollout_health_add summed over every device's records
 * at the health clock s->hnow, as a pass over every device would compute them. s->hnow never
 * goes back (a wall clock that steps back does not un-silence anyone); a record counts when
 * its release exists, the device's ring is one of the release's, and it was taken after the
 * release was last resumed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-internal.h"

static struct rf_rollout_devrec devrec_of(const struct rf__srv_devrel *h)
{
	return (struct rf_rollout_devrec){
	    .intent_at = h->intent_at,
	    .healthy_at = h->healthy_at,
	    .left_at = h->left_at,
	    .crashes = h->crashes,
	    .rollbacks = h->rollbacks,
	    .rejects = h->rejects,
	    .quarantined = (h->lqo & RF__SRV_QUARANTINED) != 0,
	    .local = h->lqo & RF__SRV_LOCAL_MAX,
	    .obeyed = (h->lqo & RF__SRV_OBEYED) != 0,
	    .alerts = h->alerts,
	};
}

/* A device cannot check in while the server is down: after a start every device gets a full
 * silence window before it counts as silent. */
static int64_t dev_seen(const struct rf_server *s, const struct rf__srv_dev *d)
{
	return d->last_seen > s->started_at ? d->last_seen : s->started_at;
}

/* The release and ring record h counts in, or NULL. */
static struct rf__srv_release *record_rel(struct rf_server *s, const struct rf__srv_dev *d,
					  const struct rf__srv_devrel *h, int *ret_ri)
{
	struct rf__srv_release *rel;
	int ri;

	if (!h->release || !(rel = rf__srv_rel_by_id(s, h->release)))
		return NULL;
	ri = rf_rollout_ring_index(&rel->sched, rf__srv_dev_ring(s, d));
	if (ri < 0 || (rel->resumed_at && h->intent_at <= rel->resumed_at))
		return NULL;
	*ret_ri = ri;
	return rel;
}

/* Add (sign +1) or remove (-1) record h of device d (last heard from at seen), as of now. */
static void rec_contrib(struct rf_server *s, const struct rf__srv_dev *d,
			const struct rf__srv_devrel *h, int64_t seen, int sign, int64_t now)
{
	uint64_t m = sign < 0 ? UINT64_MAX : 1;
	struct rf__srv_release *rel;
	int ri;

	if (!(rel = record_rel(s, d, h, &ri)))
		return;
	struct rf_rollout_devrec rec = devrec_of(h);
	struct rf__srv_hacc *a = &rel->acc[ri];
	rf_rollout_health_apply(&rel->sched.gates, &rec,
				rf_rollout_devrec_silent(&rel->sched.gates, &rec, seen, now), sign,
				&a->h);
	if (!h->left_at) {
		a->open_n += m;
		a->open_sum += m * h->intent_at;
	}
}

/* Add (sign +1) or remove (-1) device d's records and waiting state, as of time now. */
static void dev_contrib(struct rf_server *s, const struct rf__srv_dev *d, int sign, int64_t now)
{
	uint64_t m = sign < 0 ? UINT64_MAX : 1;
	int64_t seen = dev_seen(s, d);
	const char *ring = rf__srv_dev_ring(s, d);
	int fr = rf__srv_ring_find(s, ring);

	if (fr >= 0 && d->answer_reason < RF_ROLLOUT_R_COUNT_)
		s->rings[fr].why[d->answer_reason] += m;
	if (d->release_id) {
		struct rf__srv_release *on = rf__srv_rel_by_id(s, d->release_id);
		if (on) {
			int k = rf_rollout_ring_index(&on->sched, ring);
			on->on[k >= 0 ? k : RF_ROLLOUT_RINGS_MAX] += m;
			if (d->answer_reason == RF_ROLLOUT_R_WAITING_FIX)
				on->waiting_n += m;
		}
	}
	for (int k = 0; k < RF__SRV_HIST; k++)
		rec_contrib(s, d, &d->hist[k], seen, sign, now);
}

void rf__srv_health_resumed(struct rf_server *s, struct rf__srv_release *rel, int64_t resumed_at)
{
	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			rel->resumed_at = resumed_at;
		for (size_t i = 0; i < s->ndevs; i++) {
			const struct rf__srv_dev *d = rf__srv_dev_at(s, i);
			for (int k = 0; k < RF__SRV_HIST; k++)
				if (d->hist[k].release == rel->id)
					rec_contrib(s, d, &d->hist[k], dev_seen(s, d),
						    pass ? 1 : -1, s->hnow);
		}
	}
}

/* ---- silence deadlines ---------------------------------------------------------------------- */

static void heap_set(struct rf_server *s, size_t i, struct rf__srv_deadline x)
{
	s->heap[i] = x;
	rf__srv_dev_at(s, x.dev)->hpos = (uint32_t)i + 1;
}

static void heap_sift(struct rf_server *s, size_t i)
{
	struct rf__srv_deadline x = s->heap[i];

	while (i && s->heap[(i - 1) / 2].at > x.at) {
		heap_set(s, i, s->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = l;
		if (l >= s->nheap)
			break;
		if (r < s->nheap && s->heap[r].at < s->heap[l].at)
			m = r;
		if (s->heap[m].at >= x.at)
			break;
		heap_set(s, i, s->heap[m]);
		i = m;
	}
	heap_set(s, i, x);
}

static void heap_remove(struct rf_server *s, size_t i)
{
	rf__srv_dev_at(s, s->heap[i].dev)->hpos = 0;
	if (--s->nheap == i)
		return;
	s->heap[i] = s->heap[s->nheap];
	heap_sift(s, i);
}

/* Queue (or move, or drop) device idx's next silence deadline after now: the earliest time at
 * which one of its records still pending (on the release, not yet healthy) becomes silent. */
static void dev_queue(struct rf_server *s, uint32_t idx, int64_t now)
{
	struct rf__srv_dev *d = rf__srv_dev_at(s, idx);
	int64_t seen = dev_seen(s, d), next = INT64_MAX;

	for (int k = 0; k < RF__SRV_HIST; k++) {
		const struct rf__srv_devrel *h = &d->hist[k];
		const struct rf__srv_release *rel;
		int64_t at;

		if (!h->release || h->left_at || h->healthy_at ||
		    !(rel = rf__srv_rel_by_id(s, h->release)))
			continue;
		at = (h->intent_at > seen ? h->intent_at : seen) + rel->sched.gates.silence_s;
		if (at > now && at < next)
			next = at;
	}
	if (next >= (int64_t)UINT32_MAX) {
		if (d->hpos)
			heap_remove(s, d->hpos - 1);
		return;
	}
	if (d->hpos) {
		s->heap[d->hpos - 1].at = (uint32_t)next;
		heap_sift(s, d->hpos - 1);
		return;
	}
	if (s->nheap == s->capheap) {
		size_t cap = s->capheap ? s->capheap * 2 : 1024;
		struct rf__srv_deadline *a = realloc(s->heap, cap * sizeof(*a));
		if (!a)
			return; /* not silent until its next change queues it again */
		s->heap = a;
		s->capheap = cap;
	}
	s->nheap++;
	s->heap[s->nheap - 1] = (struct rf__srv_deadline){(uint32_t)next, idx};
	heap_sift(s, s->nheap - 1);
}

int64_t rf__srv_health_advance(struct rf_server *s, int64_t now)
{
	if (now < s->hnow)
		return s->hnow;
	while (s->nheap && s->heap[0].at <= now) {
		uint32_t idx = s->heap[0].dev;
		struct rf__srv_dev *d = rf__srv_dev_at(s, idx);

		heap_remove(s, 0);
		dev_contrib(s, d, -1, s->hnow);
		dev_contrib(s, d, 1, now);
		dev_queue(s, idx, now);
	}
	s->hnow = now;
	return now;
}

void rf__srv_dev_unindex(struct rf_server *s, uint32_t idx)
{
	dev_contrib(s, rf__srv_dev_at(s, idx), -1, s->hnow);
}

void rf__srv_dev_index(struct rf_server *s, uint32_t idx)
{
	dev_contrib(s, rf__srv_dev_at(s, idx), 1, s->hnow);
	dev_queue(s, idx, s->hnow);
}

/* ---- cohort buckets: the devices a step admits ---------------------------------------------- */

static void rel_bucket(struct rf_server *s, struct rf__srv_release *rel,
		       const struct rf__srv_dev *d, int sign)
{
	uint64_t m = sign < 0 ? UINT64_MAX : 1;
	int ri;
	uint32_t b;

	if (rf__srv_dev_pin_n1(s, d))
		return; /* never takes the newest open release */
	ri = rf_rollout_ring_index(&rel->sched, rf__srv_dev_ring(s, d));
	if (ri < 0 || !rel->bhist[ri])
		return;
	b = rf_rollout_bucket(rel->sched.bucket_key, rf__srv_dev_id(s, d), d->id_len);
	rel->bhist[ri][b] += (uint32_t)m;
	rel->btotal[ri] += m;
	if (b < rel->abp[ri])
		rel->admitted[ri] += m;
}

void rf__srv_dev_buckets(struct rf_server *s, uint32_t idx, int sign)
{
	const struct rf__srv_dev *d = rf__srv_dev_at(s, idx);

	for (size_t i = 0; i < s->nrels; i++) {
		struct rf__srv_release *rel = &s->rels[i];
		if (idx < rel->bdone) {
			rel_bucket(s, rel, d, sign);
		} else if (sign > 0 && idx == rel->bdone) { /* a new device, filled up to it */
			rel_bucket(s, rel, d, 1);
			rel->bdone++;
		}
	}
}

int rf__srv_buckets_fill(struct rf_server *s, size_t budget)
{
	for (size_t i = 0; i < s->nrels && budget; i++) {
		struct rf__srv_release *rel = &s->rels[i];
		while (rel->bdone < s->ndevs && budget) {
			rel_bucket(s, rel, rf__srv_dev_at(s, rel->bdone), 1);
			rel->bdone++;
			budget--;
		}
	}
	return 0;
}

/* Admitted devices of ring k of rel at basis points bp: the prefix sum, kept for the last bp. */
static uint64_t admitted_at(struct rf__srv_release *rel, unsigned k, uint32_t bp)
{
	if (bp != rel->abp[k] && rel->bhist[k]) {
		uint64_t n = 0;
		uint32_t top = bp < RF_ROLLOUT_BUCKETS ? bp : RF_ROLLOUT_BUCKETS;
		if (top == RF_ROLLOUT_BUCKETS)
			n = rel->btotal[k];
		else
			for (uint32_t b = 0; b < top; b++)
				n += rel->bhist[k][b];
		rel->admitted[k] = n;
		rel->abp[k] = bp;
	}
	return rel->admitted[k];
}

/* ---- rebuilding ----------------------------------------------------------------------------- */

int rf__srv_index_rebuild(struct rf_server *s)
{
	for (size_t i = 0; i < s->nrings; i++) {
		s->rings[i].ndevices = 0;
		memset(s->rings[i].why, 0, sizeof(s->rings[i].why));
	}
	for (size_t i = 0; i < s->nrels; i++) {
		struct rf__srv_release *rel = &s->rels[i];
		memset(rel->acc, 0, sizeof(rel->acc));
		memset(rel->on, 0, sizeof(rel->on));
		rel->waiting_n = 0;
		for (unsigned k = 0; k < RF_ROLLOUT_RINGS_MAX; k++) {
			if (rel->bhist[k])
				memset(rel->bhist[k], 0, RF_ROLLOUT_BUCKETS * sizeof(uint32_t));
			rel->btotal[k] = rel->admitted[k] = 0;
			rel->abp[k] = 0;
		}
		rel->bdone = 0;
	}
	s->nheap = 0;
	for (size_t i = 0; i < s->ndevs; i++) {
		struct rf__srv_dev *d = rf__srv_dev_at(s, i);
		int ri = rf__srv_ring_find(s, rf__srv_dev_ring(s, d));

		if (ri >= 0)
			s->rings[ri].ndevices++;
		d->hpos = 0;
		rf__srv_dev_index(s, (uint32_t)i);
	}
	return rf__srv_buckets_fill(s, SIZE_MAX);
}

/* ---- reading the health, and the gates ------------------------------------------------------ */

/* The health of every release and ring at now from the counts (exposure, population and
 * admitted added), and the baselines. */
static void health_read(struct rf_server *s, int64_t now)
{
	for (size_t i = 0; i < s->nrels; i++) {
		struct rf__srv_release *rel = &s->rels[i];
		bool known = rel->bdone >= s->ndevs;

		memset(rel->health, 0, sizeof(rel->health));
		memset(rel->base, 0, sizeof(rel->base));
		rel->waiting =
		    rel->st.status == RF_ROLLOUT_HALTED || rel->st.status == RF_ROLLOUT_ROLLED_BACK
			? rel->waiting_n
			: 0;
		for (unsigned k = 0; k < rel->sched.nrings; k++) {
			const struct rf__srv_hacc *a = &rel->acc[k];
			struct rf_rollout_health *h = &rel->health[k];
			uint64_t open = a->open_n * (uint64_t)s->hnow - a->open_sum;
			int ri = rf__srv_ring_find(s, rel->sched.rings[k].name);

			*h = a->h;
			if ((int64_t)open > 0)
				h->exposure_s += open;
			h->population = ri >= 0 ? s->rings[ri].ndevices : 0;
			h->admitted_known = known;
			if (known)
				h->admitted = admitted_at(
				    rel, k, rf_rollout_effective_bp(&rel->sched, &rel->st, k, now));
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
}

int rf__srv_evaluate(struct rf_server *s, int64_t now)
{
	int first_err = 0;
	bool changed = false;

	rf__srv_health_advance(s, now);
	health_read(s, now);
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
		/* Several instances: only the gate leader writes what the gates decide; the others
		 * read it back from the store (cluster.c). */
		if (!ev.changed || !s->leader)
			continue;
		struct rf__srv_release nr = *rel;
		nr.st = ns;
		int e = rf__srv_release_persist(s, &nr, true);
		/* Changed by another instance, or the lease moved on since this instance took it
		 * (it hung, and another leads now): re-read, judged again next tick if still
		 * leader. */
		if (e == -ESTALE)
			continue;
		if (e < 0) {
			if (!first_err)
				first_err = e;
			continue;
		}
		rf__srv_release_install_state(rel, &nr);
		changed = true;
		rf__srv_audit_gate(s, rel, &ev, &ns);
		rel->st = ns;
		rel->gen++;
		if (ev.halted)
			atomic_fetch_add(&s->m_halts, 1);
	}
	rf__srv_rr_rebuild(s);
	if (changed && s->shared)
		(void)rf_db_cluster_notify(s->db, "config");
	return first_err;
}

/* After an operator resume (here, or read from another instance): what the status shows (the
 * health, and the gates' evaluation of the resumed release) is computed again from the counts now,
 * instead of waiting for the next tick: the figures from before the resume no longer count. Only
 * shown: the tick evaluates again and writes what the gates decide. */
void rf__srv_health_refresh(struct rf_server *s, struct rf__srv_release *rel, int64_t now)
{
	struct rf_rollout_state ns;
	struct rf_rollout_eval ev;
	int64_t id = rel->id;

	health_read(s, now);
	rel = rf__srv_rel_by_id(s, id);
	if (rel && rel->st.status != RF_ROLLOUT_HALTED &&
	    rel->st.status != RF_ROLLOUT_ROLLED_BACK &&
	    rf_rollout_evaluate(&rel->sched, &rel->st, rel->health, rel->base, now, &ns, &ev) == 0)
		rel->eval = ev;
}

/* ---- test and debug: the from-scratch recount ----------------------------------------------- */

#define CMP(f)                                                                                     \
	do {                                                                                       \
		if (got->f != want.f) {                                                            \
			snprintf(msg, n, "release %lld ring %u: %s %llu, recount %llu",            \
				 (long long)rel->id, k, #f, (unsigned long long)got->f,            \
				 (unsigned long long)want.f);                                      \
			return -EUCLEAN;                                                           \
		}                                                                                  \
	} while (0)

int rf__srv_health_verify(struct rf_server *s, char *msg, size_t n)
{
	int64_t now = s->hnow;

	health_read(s, now);
	for (size_t i = 0; i < s->nrels; i++) {
		struct rf__srv_release *rel = &s->rels[i];
		uint64_t waiting = 0;

		for (unsigned k = 0; k < rel->sched.nrings; k++) {
			struct rf_rollout_health want = {0};
			const struct rf_rollout_health *got = &rel->health[k];
			uint32_t bp = rf_rollout_effective_bp(&rel->sched, &rel->st, k, now);

			for (size_t j = 0; j < s->ndevs; j++) {
				const struct rf__srv_dev *d = rf__srv_dev_at(s, j);
				const char *ring = rf__srv_dev_ring(s, d);

				if (rf_rollout_ring_index(&rel->sched, ring) != (int)k)
					continue;
				if (!rf__srv_dev_pin_n1(s, d) &&
				    rf_rollout_bucket(rel->sched.bucket_key, rf__srv_dev_id(s, d),
						      d->id_len) < bp)
					want.admitted++;
				for (int x = 0; x < RF__SRV_HIST; x++) {
					const struct rf__srv_devrel *h = &d->hist[x];
					struct rf_rollout_devrec rec = devrec_of(h);
					if (h->release != rel->id ||
					    (rel->resumed_at && h->intent_at <= rel->resumed_at))
						continue;
					rf_rollout_health_add(&rel->sched.gates, &rec,
							      dev_seen(s, d), now, &want);
				}
			}
			CMP(devices);
			CMP(healthy);
			CMP(failed);
			CMP(crashes);
			CMP(rollbacks);
			CMP(rejections);
			CMP(silent);
			CMP(alerts);
			CMP(exposure_s);
			CMP(local_failures);
			CMP(obeyed);
			if (got->admitted_known)
				CMP(admitted);
		}
		uint64_t on[RF_ROLLOUT_RINGS_MAX + 1] = {0};
		for (size_t j = 0; j < s->ndevs; j++) {
			const struct rf__srv_dev *d = rf__srv_dev_at(s, j);
			int k = rf_rollout_ring_index(&rel->sched, rf__srv_dev_ring(s, d));
			waiting += d->answer_reason == RF_ROLLOUT_R_WAITING_FIX &&
				   d->release_id == rel->id;
			if (d->release_id == rel->id)
				on[k >= 0 ? k : RF_ROLLOUT_RINGS_MAX]++;
		}
		for (unsigned k = 0; k <= RF_ROLLOUT_RINGS_MAX; k++)
			if (rel->on[k] != on[k]) {
				snprintf(msg, n,
					 "release %lld: %llu devices on it in ring slot %u, "
					 "recount %llu",
					 (long long)rel->id, (unsigned long long)rel->on[k], k,
					 (unsigned long long)on[k]);
				return -EUCLEAN;
			}
		if (rel->st.status != RF_ROLLOUT_HALTED && rel->st.status != RF_ROLLOUT_ROLLED_BACK)
			waiting = 0;
		if (rel->waiting != waiting) {
			snprintf(msg, n, "release %lld: waiting %llu, recount %llu",
				 (long long)rel->id, (unsigned long long)rel->waiting,
				 (unsigned long long)waiting);
			return -EUCLEAN;
		}
	}
	/* The deadline heap: ordered, and each entry's device points back at it. */
	for (size_t i = 0; i < s->nheap; i++)
		if ((i && s->heap[(i - 1) / 2].at > s->heap[i].at) ||
		    rf__srv_dev_at(s, s->heap[i].dev)->hpos != i + 1) {
			snprintf(msg, n, "deadline heap entry %zu out of order or unlinked", i);
			return -EUCLEAN;
		}
	for (size_t r = 0; r < s->nrings; r++) {
		uint64_t c = 0, why[RF_ROLLOUT_R_COUNT_] = {0};
		for (size_t j = 0; j < s->ndevs; j++) {
			const struct rf__srv_dev *d = rf__srv_dev_at(s, j);
			if (strcmp(rf__srv_dev_ring(s, d), s->rings[r].name))
				continue;
			c++;
			if (d->answer_reason < RF_ROLLOUT_R_COUNT_)
				why[d->answer_reason]++;
		}
		if (memcmp(why, s->rings[r].why, sizeof(why))) {
			snprintf(msg, n, "ring %s: answer reasons differ from a recount",
				 s->rings[r].name);
			return -EUCLEAN;
		}
		if (c != s->rings[r].ndevices) {
			snprintf(msg, n, "ring %s: %llu devices, recount %llu", s->rings[r].name,
				 (unsigned long long)s->rings[r].ndevices, (unsigned long long)c);
			return -EUCLEAN;
		}
	}
	return 0;
}
