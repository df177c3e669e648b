/*
 * The simulated server's side of each release (sim-internal.h): one struct
 * rf_rollout_schedule + state per release, advanced by the real rf_rollout_evaluate() every
 * policy.evaluate_s with health counters aggregated from what the simulated devices reported,
 * the vendor's fix and the scenario's operator actions (halt, rollback). A change of a
 * release's state (a ring opens, a step, a halt) wakes exactly the devices it can affect, so
 * idle devices are never polled poll by poll.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim-internal.h"

/* ---- server ------------------------------------------------------------------------------- */

/* Ring `ring` of a release opened or stepped: wake its devices that can now take something. */
static void sweep_ring(struct sim *s, unsigned ring, uint32_t t)
{
	for (uint32_t i = s->ring_start[ring]; i < s->ring_start[ring + 1] && !s->err; i++) {
		struct dev *d = &s->d[i];
		struct rf_rollout_answer ans;
		if (!rf__sim_can_checkin(s, d) || d->t_poll <= t + s->sc->poll_s)
			continue;
		if (rf__sim_decide(s, i, d, t, &ans) < 0)
			continue;
		if (ans.action != RF_ROLLOUT_STAY)
			rf__sim_wake(s, i, t);
		else if (ans.next_change != INT64_MAX &&
			 ans.next_change - s->sc->start < s->horizon)
			rf__sim_wake(s, i, (uint32_t)(ans.next_change - s->sc->start));
	}
}

/* Release r was halted or rolled back: wake every device on it. */
static void sweep_release(struct sim *s, unsigned r, uint32_t t)
{
	for (uint32_t i = 0; i < s->n && !s->err; i++)
		if (s->d[i].rel == r)
			rf__sim_wake(s, i, t);
}

/* Release r is published: count, per ring, its devices below each bucket (one real
 * rf_rollout_bucket per device, ~20 ns; 40 KB per ring), so that the gates learn how many
 * devices a step actually admits (rf_rollout_health.admitted) in O(1) per evaluation. */
int rf__sim_build_admit(struct sim *s, unsigned r)
{
	struct srel *sr = &s->rel[r];
	uint32_t *a = calloc((size_t)s->pol->nrings * ADMIT_STRIDE, sizeof(*a));
	if (!a)
		return -ENOMEM;
	for (unsigned k = 0; k < s->pol->nrings; k++) {
		uint32_t *c = a + (size_t)k * ADMIT_STRIDE;
		for (uint32_t i = s->ring_start[k]; i < s->ring_start[k + 1]; i++) {
			uint64_t id = dev_id(s, i);
			c[rf_rollout_bucket(sr->sched.bucket_key, &id, sizeof(id)) + 1]++;
		}
		for (unsigned b = 1; b < ADMIT_STRIDE; b++)
			c[b] += c[b - 1];
	}
	sr->admit = a;
	return 0;
}

static void finish_release(struct sim *s, unsigned r)
{
	s->rel[r].finished = true;
	free(s->rel[r].admit);
	s->rel[r].admit = NULL;
}

static void fill_health(struct sim *s, unsigned r, uint32_t t, struct rf_rollout_health *out)
{
	const struct srel *sr = &s->rel[r];
	for (unsigned k = 0; k < s->pol->nrings; k++) {
		struct health_cell *c = &s->rel[r].hc[k];
		cell_sync(c, t);
		out[k] = c->h;
		out[k].exposure_s = c->exp_acc;
		double rate = s->rel[r].bad && s->sc->failure == RF_SIM_FAIL_ALERT_STORM
				  ? s->sc->alerts_per_hour
				  : s->sc->base_alerts_per_hour;
		out[k].alerts = (uint64_t)((double)c->exp_acc * rate / 3600.0);
		out[k].population = s->ring_start[k + 1] - s->ring_start[k];
		if (sr->admit) {
			/* The devices the ring's effective percent admits, as the decision sees it.
			 */
			uint32_t bp = rf_rollout_effective_bp(&sr->sched, &s->rr[r].state, (int)k,
							      s->sc->start + (int64_t)t);
			out[k].admitted = sr->admit[(size_t)k * ADMIT_STRIDE + bp];
			out[k].admitted_known = true;
		}
	}
}

static void note_halt(struct sim *s, unsigned r, uint32_t t, const char *why)
{
	if (!s->rel[r].bad)
		return;
	s->halted++;
	if (s->res->halt_s < 0) {
		s->res->halt_s = t;
		snprintf(s->res->halt_reason, sizeof(s->res->halt_reason), "%.159s", why);
	}
}

void rf__sim_evaluate(struct sim *s, uint32_t t)
{
	struct rf_rollout_health h[RF_ROLLOUT_RINGS_MAX], b[RF_ROLLOUT_RINGS_MAX];
	for (unsigned r = 1; r < s->npub && !s->err; r++) {
		struct srel *sr = &s->rel[r];
		struct rf_rollout_state *st = &s->rr[r].state;
		if (sr->finished)
			continue;
		struct rf_rollout_state old = *st;
		struct rf_rollout_eval ev;
		/* The same baseline as ringfenced: the newest older release not halted. */
		int bi = rf_rollout_baseline(s->rr, s->npub, r);
		if (bi >= 0)
			fill_health(s, (unsigned)bi, t, b);
		fill_health(s, r, t, h);
		int e = rf_rollout_evaluate(&sr->sched, &old, h, bi >= 0 ? b : NULL,
					    s->sc->start + t, st, &ev);
		if (e < 0) {
			s->err = rf_diag_report(s->diag, e, "release %u: rf_rollout_evaluate: %s",
						r, rf_strerror(e));
			return;
		}
		if (st->status != old.status &&
		    (st->status == RF_ROLLOUT_HALTED || st->status == RF_ROLLOUT_ROLLED_BACK)) {
			char why[160];
			struct rf_sim_release_outcome *o = &s->res->rel[r];
			o->gate_halted = true;
			o->metric = st->halt_metric;
			o->halt_s = (int64_t)t - sr->at;
			o->left_first_ring =
			    s->pol->nrings > 1 && old.rings[1].phase != RF_ROLLOUT_NOT_STARTED;
			snprintf(why, sizeof(why), "gate: %.150s", st->halt_reason);
			note_halt(s, r, t, why);
			finish_release(s, r);
			sweep_release(s, r, t);
			continue;
		}
		for (unsigned k = 0; k < s->pol->nrings; k++)
			if (memcmp(&st->rings[k], &old.rings[k], sizeof(old.rings[k])))
				sweep_ring(s, k, t);
	}
}

void rf__sim_vendor_fix(struct sim *s, uint32_t t)
{
	s->fixed = true;
	for (unsigned r = 1; r < s->npub; r++) {
		struct rf_rollout_state *st = &s->rr[r].state;
		if (!s->rel[r].bad || st->status == RF_ROLLOUT_ROLLED_BACK)
			continue;
		bool was_halted = st->status == RF_ROLLOUT_HALTED;
		if (rf_rollout_rollback(st, s->sc->start + t, "vendor rollback (as in reality)") <
		    0)
			continue;
		if (!was_halted)
			note_halt(s, r, t, "vendor rollback at the incident's real time");
		finish_release(s, r);
		sweep_release(s, r, t);
	}
}

/* The scenario's operator actions (halt_s, rollback_s, baseline_rollback_s): the earliest one
 * not yet carried out, or NEVER. */
uint32_t rf__sim_next_op(const struct sim *s)
{
	uint32_t t = NEVER;
	if (s->sc->baseline_rollback_s && !s->rel[0].rollback_done)
		t = s->sc->baseline_rollback_s;
	for (unsigned r = 1; r < s->nrel; r++) {
		const struct rf_sim_release_spec *x = &s->sc->releases[r - 1];
		if (x->halt_s && !s->rel[r].halt_done && x->halt_s < t)
			t = x->halt_s;
		if (x->rollback_s && !s->rel[r].rollback_done && x->rollback_s < t)
			t = x->rollback_s;
	}
	return t;
}

/* Carry out every operator action due at t, as `ringfence release halt|rollback --force`. */
void rf__sim_run_ops(struct sim *s, uint32_t t)
{
	for (unsigned r = 0; r < s->nrel && !s->err; r++) {
		uint32_t halt = r ? s->sc->releases[r - 1].halt_s : 0;
		uint32_t rb = r ? s->sc->releases[r - 1].rollback_s : s->sc->baseline_rollback_s;
		struct rf_rollout_state *st = &s->rr[r].state;
		bool acted = false;
		if (halt && !s->rel[r].halt_done && halt <= t) {
			s->rel[r].halt_done = true;
			acted =
			    rf_rollout_halt(st, s->sc->start + t, "operator halt (scenario)") == 0;
		}
		if (rb && !s->rel[r].rollback_done && rb <= t) {
			s->rel[r].rollback_done = true;
			acted |= rf_rollout_rollback(st, s->sc->start + t,
						     "operator rollback (scenario)") == 0;
		}
		if (!acted)
			continue;
		note_halt(s, r, t, "operator (scenario)");
		if (r && !s->rel[r].finished)
			finish_release(s, r);
		sweep_release(s, r, t);
	}
}
