/*
 * The one definition of health (docs/design.md P7): how a device's record on a release becomes that
 * release's per-ring health counts, and which release is the baseline. ringfenced sums it over
 * its devices and the fleet simulator applies it to the devices it simulates, so a gate decides
 * the same way on the same evidence in both (issue 10: they used to count with different rules
 * and the simulator always compared against release 0). Pure: no I/O, no clock, no state.
 *
 * Attribution: only failures caused by the content count against it (a crash or hang after
 * load, a rejection against the agent's manifest, the guard leaving it or quarantining it, or
 * silence after intent). Failures of the device or the transit (a corrupt store, a full disk, a
 * stale mirror, a bad signature, a hash that does not match the offer) are counted apart and
 * never halt a release; a device that left because the server told it to obeyed a halt and did
 * not fail.
 */
#include "rollout/rollout.h"

bool rf_rollout_devrec_healthy(const struct rf_rollout_gates *g, const struct rf_rollout_devrec *r)
{
	return r->healthy_at && r->healthy_at - r->intent_at >= g->probation_s;
}

bool rf_rollout_devrec_silent(const struct rf_rollout_gates *g, const struct rf_rollout_devrec *r,
			      int64_t seen, int64_t now)
{
	return !r->left_at && !r->healthy_at && rf_rollout_is_silent(g, r->intent_at, seen, now);
}

bool rf_rollout_devrec_failed(const struct rf_rollout_gates *g, const struct rf_rollout_devrec *r,
			      int64_t seen, int64_t now)
{
	return r->crashes || r->rollbacks || r->rejects || r->quarantined ||
	       rf_rollout_devrec_silent(g, r, seen, now);
}

void rf_rollout_health_apply(const struct rf_rollout_gates *g, const struct rf_rollout_devrec *r,
			     bool silent, int sign, struct rf_rollout_health *h)
{
	/* Modulo 2^64: adding then removing the same record leaves every count as it was. */
	uint64_t m = sign < 0 ? UINT64_MAX : 1;

	h->devices += m;
	h->healthy += m * rf_rollout_devrec_healthy(g, r);
	h->failed += m * (r->crashes || r->rollbacks || r->rejects || r->quarantined || silent);
	h->crashes += m * r->crashes;
	h->rollbacks += m * r->rollbacks;
	h->rejections += m * r->rejects;
	h->silent += m * silent;
	h->alerts += m * r->alerts;
	h->local_failures += m * r->local;
	h->obeyed += m * r->obeyed;
	if (r->left_at)
		h->exposure_s +=
		    m * (r->left_at > r->intent_at ? (uint64_t)(r->left_at - r->intent_at) : 0);
}

void rf_rollout_health_add(const struct rf_rollout_gates *g, const struct rf_rollout_devrec *r,
			   int64_t seen, int64_t now, struct rf_rollout_health *h)
{
	rf_rollout_health_apply(g, r, rf_rollout_devrec_silent(g, r, seen, now), 1, h);
	if (!r->left_at)
		h->exposure_s += now > r->intent_at ? (uint64_t)(now - r->intent_at) : 0;
}

int rf_rollout_baseline(const struct rf_rollout_release *releases, size_t n, size_t i)
{
	if (!releases || i >= n)
		return -1;
	for (size_t k = i; k-- > 0;)
		if (releases[k].state.status != RF_ROLLOUT_HALTED &&
		    releases[k].state.status != RF_ROLLOUT_ROLLED_BACK)
			return (int)k;
	return -1;
}
