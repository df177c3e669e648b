/*
 * The fleet simulator's engine (see sim.h for the contract, docs/sim.md for the model): setup
 * of the fleet, the releases and the shared guard state, the discrete-event loop that
 * interleaves device events (devices.c) with the server's publishes, gate evaluations,
 * vendor fix and operator actions (releases.c), the timeline samples and the result.
 *
 * Invariants: events at the same second are taken in device order; all randomness comes from
 * rng.h draws keyed by device, so the result does not depend on visiting order, and the same
 * inputs give equal results.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "sim/sim-internal.h"

/* ---- setup ---------------------------------------------------------------------------------- */

static void make_hash(const struct rf_sim_scenario *sc, unsigned r, uint8_t out[32])
{
	char buf[96];
	int len = snprintf(buf, sizeof(buf), "ringfence-sim:%s:%u", sc->name, r);
	rf_sha256(buf, (size_t)len, out);
	out[0] = (uint8_t)(r & 0xff);
	out[1] = (uint8_t)(r >> 8);
}

static void make_schedule(const struct sim *s, unsigned r, struct rf_rollout_schedule *out)
{
	const struct rf_sim_policy *p = s->pol;
	memset(out, 0, sizeof(*out));
	snprintf(out->release, sizeof(out->release), "%s-%u", s->sc->name, r);
	rf_rollout_bucket_key(out->release, strlen(out->release), out->bucket_key);
	out->nrings = p->nrings;
	int64_t pub = s->sc->start + (r ? s->sc->releases[r - 1].at_s : 0);
	for (unsigned k = 0; k < p->nrings; k++) {
		struct rf_rollout_ring_schedule *rs = &out->rings[k];
		snprintf(rs->name, sizeof(rs->name), "%s", p->rings[k].name);
		if (r == 0) {
			/* The release every device already runs: complete everywhere. */
			rs->not_before = s->sc->start - 86400;
			rs->nsteps = 1;
			rs->steps[0].after = 0;
			rs->steps[0].percent_bp = 10000;
			continue;
		}
		rs->not_before = pub + p->rings[k].not_before_s;
		rs->nsteps = p->rings[k].nsteps;
		memcpy(rs->steps, p->rings[k].steps, sizeof(rs->steps[0]) * rs->nsteps);
	}
	out->gates = p->gates;
	if (!p->gates_enabled) {
		/* The incident's policy: no health gate can stop or slow the release. */
		out->gates.min_healthy = 0;
		out->gates.min_bake_s = 0;
		out->gates.min_events = UINT64_MAX;
		out->gates.floor_devices = UINT64_MAX;
		out->gates.floor_fraction = 1.0;
		out->gates.alert_floor_per_h = 1e300;
		out->gates.alpha = 0;
	}
}

static int setup(struct sim *s)
{
	const struct rf_sim_scenario *sc = s->sc;
	const struct rf_sim_policy *p = s->pol;

	s->nrel = sc->nreleases + 1;
	s->rel = calloc(s->nrel, sizeof(*s->rel));
	s->rr = calloc(s->nrel, sizeof(*s->rr));
	s->tpol = calloc(sc->tenants, sizeof(*s->tpol));
	s->d = malloc((size_t)s->n * sizeof(*s->d));
	if (!s->rel || !s->rr || !s->tpol || !s->d)
		return -ENOMEM;
	for (unsigned r = 0; r < s->nrel; r++) {
		struct srel *sr = &s->rel[r];
		make_schedule(s, r, &sr->sched);
		make_hash(sc, r, sr->hash);
		sr->bad = r > 0 && sc->releases[r - 1].bad && sc->failure != RF_SIM_FAIL_NONE;
		sr->at = r ? sc->releases[r - 1].at_s : 0;
		s->rr[r].schedule = &sr->sched;
		rf_rollout_state_init(&sr->sched, &s->rr[r].state);
	}
	/* Release 0 has been complete in every ring for a day. */
	for (unsigned k = 0; k < p->nrings; k++) {
		struct rf_rollout_ring_state *rs = &s->rr[0].state.rings[k];
		rs->phase = RF_ROLLOUT_COMPLETE;
		rs->step = 0;
		rs->opened_at = s->rel[0].sched.rings[k].not_before;
		rs->step_at = rs->opened_at;
		rs->completed_at = rs->opened_at + 1;
	}
	s->rel[0].published = true;
	s->rel[0].finished = true;
	s->npub = 1;

	for (uint32_t k = 0; k < sc->tenants; k++) {
		s->tpol[k].pin =
		    rf__sim_unit(rf__sim_draw(s->seed, k, S_TENANT, 1)) < sc->tenant_pin_n1_fraction
			? RF_ROLLOUT_PIN_N1
			: RF_ROLLOUT_PIN_N;
	}
	/* Ring k holds max(share * n, min_devices) devices (what is left, at most); the last ring
	 * takes the rest. */
	s->ring_start[0] = 0;
	for (unsigned k = 0; k < p->nrings; k++) {
		uint32_t left = s->n - s->ring_start[k];
		double want = (double)p->rings[k].share * s->n;
		uint32_t size = want >= left ? left : (uint32_t)llround(want);
		if (size < p->rings[k].min_devices)
			size = p->rings[k].min_devices;
		if (size > left || k + 1 == p->nrings)
			size = left;
		s->ring_start[k + 1] = s->ring_start[k] + size;
	}

	/* The guard state every device starts from: the baseline loaded, survived probation. */
	rf_guard_config_default(&s->gcfg);
	s->gcfg.attempt_limit = p->guard_attempt_limit;
	s->gcfg.probation_ms = (uint64_t)p->guard_probation_s * 1000;
	s->gcfg.probation_events = p->guard_probation_events;
	if (p->guard_enabled) {
		struct rf_guard_event ev = {.type = RF_GUARD_EV_CANDIDATE, .now_ms = 0};
		struct rf_guard_actions a;
		rf_guard_init(&s->gbase);
		memcpy(ev.hash, s->rel[0].hash, RF_GUARD_HASH_LEN);
		int r = rf_guard_step(&s->gcfg, &s->gbase, &ev, &a);
		ev = (struct rf_guard_event){.type = RF_GUARD_EV_LOADED, .now_ms = 0};
		if (r == 0)
			r = rf_guard_step(&s->gcfg, &s->gbase, &ev, &a);
		ev = (struct rf_guard_event){.type = RF_GUARD_EV_TICK,
					     .now_ms = s->gcfg.probation_ms + 1,
					     .events = s->gcfg.probation_events + 1};
		if (r == 0)
			r = rf_guard_step(&s->gcfg, &s->gbase, &ev, &a);
		if (r < 0 || !s->gbase.has_lkg)
			return rf_diag_report(
			    s->diag, -EINVAL,
			    "the guard did not promote the baseline pack to last known good");
		/* The run that promoted it is history: the fleet booted long ago. */
		s->gbase.run_since_ms = 0;
	}

	int r = rf__sim_queue_init(&s->q, s->horizon);
	if (r < 0)
		return r;
	memset(s->nstate, 0, sizeof(s->nstate));
	for (unsigned k = 0; k < p->nrings; k++)
		for (uint32_t i = s->ring_start[k]; i < s->ring_start[k + 1]; i++) {
			struct dev *d = &s->d[i];
			memset(d, 0, sizeof(*d));
			d->t_next = d->t_fail = d->t_boot = d->t_prob = d->t_sil = NEVER;
			d->t_intent = d->t_first = NEVER;
			d->gslot = NOSLOT;
			d->rel = 0;
			d->trel = 0;
			d->ring = (uint8_t)k;
			d->tenant = (uint16_t)rf__sim_below(draw(s, i, S_TENANT, 0), sc->tenants);
			d->state = D_UP;
			/* The fleet took release 0 long ago (intent then): what happens to a device
			 * on it is release 0's health, the baseline of the first release, counted
			 * as ringfenced counts it (rf_rollout_health_add: background crashes too).
			 */
			d->flags = F_INTENT;
			s->rel[0].hc[k].h.devices++;
			d->t_poll = rf__sim_next_slot(s, i, 0);
			d->t_bg = sc->background_crash_per_hour > 0
				      ? tadd(0, rf__sim_exp(draw(s, i, S_BG, 0),
							    3600.0 / sc->background_crash_per_hour))
				      : NEVER;
			s->rel[0].hc[k].on++;
			rf__sim_resched(s, i, d);
		}
	s->nstate[D_UP] = s->n;
	return s->err;
}

/* Devices running release r right now. */
static uint64_t on_release(const struct sim *s, unsigned r)
{
	uint64_t n = 0;
	for (unsigned k = 0; k < s->pol->nrings; k++)
		n += s->rel[r].hc[k].on;
	return n;
}

/* Record the velocity milestones of the first release passed at t (devices only move onto
 * it at device events, so checking after each is exact to the second). */
static void check_reach(struct sim *s, uint32_t t)
{
	if (s->reach_k >= RF_SIM_REACH_N || s->nrel < 2 || !s->rel[1].published)
		return;
	uint64_t on = on_release(s, 1);
	while (s->reach_k < RF_SIM_REACH_N && on >= s->reach_need[s->reach_k])
		s->res->reach_s[s->reach_k++] = (int64_t)t - s->rel[1].at;
}

static void sample(struct sim *s, uint32_t t)
{
	struct rf_sim_result *res = s->res;
	struct rf_sim_sample *x = &res->samples[res->nsamples++];
	x->t_s = t;
	x->healthy = s->nstate[D_UP];
	x->crashed = s->nstate[D_HUNG] + s->nstate[D_DOWN_WAIT] + s->nstate[D_STUCK];
	x->recovering = s->nstate[D_DOWN_AUTO];
	x->on_bad = s->on_bad;
	x->exposed = s->exposed;
	x->halted = s->halted;
	x->on_first = s->nrel > 1 ? (uint32_t)on_release(s, 1) : 0;
}

static void finish(struct sim *s)
{
	struct rf_sim_result *res = s->res;
	for (uint32_t i = 0; i < s->n; i++) {
		const struct dev *d = &s->d[i];
		if (!(d->flags & F_CRASHED))
			continue;
		res->crashed++;
		if (d->ring != 0)
			res->crashes_outside_first_ring++;
		if (d->flags & F_EPISODE)
			res->still_down++;
		else if (!(d->flags & F_HUMAN))
			res->healed_auto++;
	}
	res->final_release = -1;
	for (unsigned r = s->npub; r-- > 0;)
		if (s->rr[r].state.status != RF_ROLLOUT_HALTED &&
		    s->rr[r].state.status != RF_ROLLOUT_ROLLED_BACK) {
			res->final_release = (int)r;
			break;
		}
	for (uint32_t i = 0; i < s->n && res->final_release >= 0; i++)
		res->on_final += s->d[i].rel == (uint16_t)res->final_release;
	res->exposed = s->exposed;
	res->nreleases = s->nrel;
	for (unsigned r = 1; r < s->nrel && r < RF_SIM_RELEASES_MAX; r++) {
		struct rf_sim_release_outcome *o = &res->rel[r];
		o->bad = s->rel[r].bad;
		o->published = s->rel[r].published;
		if (!o->gate_halted) {
			o->halt_s = -1;
			o->left_first_ring =
			    o->published && s->pol->nrings > 1 &&
			    s->rr[r].state.rings[1].phase != RF_ROLLOUT_NOT_STARTED;
		}
	}
	if (res->crashed == 0)
		res->recovery_s = 0;
	else if (res->still_down == 0)
		res->recovery_s = s->last_heal;
	else
		res->recovery_s = -1;
	if (res->healed_auto == 0)
		res->max_heal_s = -1;
}

static void sim_free(struct sim *s)
{
	free(s->d);
	free(s->gslots);
	for (unsigned r = 0; s->rel && r < s->nrel; r++)
		free(s->rel[r].admit);
	free(s->rel);
	free(s->rr);
	free(s->tpol);
	rf__sim_queue_fini(&s->q);
}

static int sim_run(const struct rf_sim_scenario *sc, const struct rf_sim_policy *pol,
		   const struct rf_sim_options *opt, struct rf_diag *reterr,
		   struct rf_sim_result **ret)
{
	static const struct rf_sim_options none = {0};
	if (!opt)
		opt = &none;
	uint64_t n = opt->devices ? opt->devices : sc->devices;
	if (n == 0 || n > RF_SIM_DEVICES_MAX)
		return rf_diag_report(reterr, -EINVAL, "devices: %llu is not in [1, %u]",
				      (unsigned long long)n, RF_SIM_DEVICES_MAX);
	if (sc->nreleases == 0 || sc->nreleases >= RF_SIM_RELEASES_MAX ||
	    sc->nreleases + 1 > RF_ROLLOUT_DECIDE_MAX)
		return rf_diag_report(reterr, -EINVAL, "scenario has %u releases", sc->nreleases);
	if (pol->nrings == 0 || pol->nrings > RF_SIM_RINGS_MAX || sc->tenants == 0 ||
	    sc->tenants > 65536 || sc->poll_s == 0)
		return rf_diag_report(reterr, -EINVAL, "policy or scenario out of range");

	struct sim s = {.sc = sc, .pol = pol, .seed = opt->seed, .n = (uint32_t)n, .diag = reterr};
	s.horizon = opt->duration_s ? opt->duration_s : sc->duration_s;
	if (s.horizon > RF_SIM_DURATION_MAX)
		return rf_diag_report(reterr, -EINVAL, "duration over %u s", RF_SIM_DURATION_MAX);
	struct rf_sim_result *res = calloc(1, sizeof(*res));
	/* The timeline: a row a minute for the first FINE_S (where incidents and halts happen),
	 * then rows spread evenly over the rest, RF_SIM_TIMELINE_MAX in all. */
	const uint32_t FINE_S = 6 * 3600, fine_rows = FINE_S / 60 + 1;
	uint32_t dt = 60;
	if (s.horizon > FINE_S) {
		dt = (s.horizon - FINE_S) / (RF_SIM_TIMELINE_MAX - fine_rows - 2) + 1;
		if (dt < 60)
			dt = 60;
	}
	size_t nsamp = fine_rows + s.horizon / dt + 2;
	if (res)
		res->samples = calloc(nsamp, sizeof(*res->samples));
	if (!res || !res->samples) {
		if (res)
			free(res->samples);
		free(res);
		return -ENOMEM;
	}
	s.res = res;
	res->halt_s = res->first_crash_s = -1;
	res->max_heal_s = -1;
	for (unsigned k = 0; k < RF_SIM_REACH_N; k++) {
		res->reach_s[k] = res->good_s[k] = -1;
		s.reach_need[k] = (uint64_t)ceil(rf_sim_reach_fraction[k] * (double)n);
	}
	s.last_heal = 0;
	snprintf(res->scenario, sizeof(res->scenario), "%s", sc->name);
	snprintf(res->policy, sizeof(res->policy), "%s", pol->name);
	res->devices = n;
	res->seed = opt->seed;
	res->duration_s = s.horizon;

	int r = setup(&s);
	uint32_t next_sample = 0, next_progress = 0;
	unsigned next_pub = 1;
	s.next_eval = 0;
	while (r == 0 && !s.err) {
		uint32_t tq = rf__sim_queue_peek_time(&s.q);
		uint32_t tpub = next_pub < s.nrel ? s.rel[next_pub].at : NEVER;
		uint32_t tfix = sc->vendor_fix_s && !s.fixed ? sc->vendor_fix_s : NEVER;
		uint32_t top = rf__sim_next_op(&s);
		uint32_t tg = s.next_eval;
		tg = tpub < tg ? tpub : tg;
		tg = tfix < tg ? tfix : tg;
		tg = top < tg ? top : tg;
		uint32_t t = tq < tg ? tq : tg;
		if (t > s.horizon)
			t = s.horizon + 1;
		while (next_sample <= t && next_sample <= s.horizon) {
			sample(&s, next_sample);
			next_sample += next_sample < FINE_S ? 60 : dt;
		}
		if (opt->progress && t >= next_progress) {
			opt->progress(opt->userdata,
				      (double)(t > s.horizon ? s.horizon : t) / s.horizon);
			next_progress = t + s.horizon / 200 + 1;
		}
		if (t > s.horizon)
			break;
		if (t == tg) {
			bool changed = false;
			while (next_pub < s.nrel && s.rel[next_pub].at <= t && !s.err) {
				s.err = rf__sim_build_admit(&s, next_pub);
				s.rel[next_pub].published = true;
				s.npub = ++next_pub;
				changed = true;
			}
			if (t == tfix)
				rf__sim_vendor_fix(&s, t);
			if (t >= top)
				rf__sim_run_ops(&s, t);
			if (changed || t >= s.next_eval) {
				rf__sim_evaluate(&s, t);
				s.next_eval = t + pol->evaluate_s;
			}
			continue;
		}
		struct rf_sim_event ev;
		rf__sim_queue_pop(&s.q, &ev);
		if (s.d[ev.dev].t_next != ev.t)
			continue; /* superseded */
		rf__sim_dev_event(&s, ev.dev, ev.t);
		check_reach(&s, ev.t);
	}
	if (r == 0)
		r = s.err;
	if (r == 0) {
		if (res->nsamples == 0 || res->samples[res->nsamples - 1].t_s != s.horizon)
			sample(&s, s.horizon);
		finish(&s);
		*ret = res;
	} else {
		rf_sim_result_free(res);
	}
	sim_free(&s);
	return r;
}

const double rf_sim_reach_fraction[RF_SIM_REACH_N] = {0.50, 0.90, 0.99};

void rf_sim_good_twin(const struct rf_sim_scenario *sc, struct rf_sim_scenario *ret)
{
	*ret = *sc;
	ret->failure = RF_SIM_FAIL_NONE;
	memset(ret->releases, 0, sizeof(ret->releases));
	ret->nreleases = 1;
	ret->vendor_fix_s = 0;
	ret->baseline_rollback_s = 0;
	if (ret->duration_s < 86400)
		ret->duration_s = 86400;
}

int rf_sim_run(const struct rf_sim_scenario *sc, const struct rf_sim_policy *pol,
	       const struct rf_sim_options *opt, struct rf_diag *reterr, struct rf_sim_result **ret)
{
	struct rf_sim_result *res = NULL, *good = NULL;
	int r = sim_run(sc, pol, opt, reterr, &res);
	if (r < 0 || !opt || !opt->velocity) {
		if (r == 0)
			*ret = res;
		return r;
	}
	/* The good twin, on the same fleet, over at least a day (a slow policy needs hours). */
	struct rf_sim_scenario *twin = malloc(sizeof(*twin));
	struct rf_sim_options o = *opt;
	if (!twin) {
		rf_sim_result_free(res);
		return -ENOMEM;
	}
	rf_sim_good_twin(sc, twin);
	o.velocity = false;
	o.progress = NULL;
	/* An explicit duration holds for both runs (a short run then shows a slow policy as
	 * "never"); otherwise the twin's own, at least a day. */
	r = sim_run(twin, pol, &o, reterr, &good);
	free(twin);
	if (r < 0) {
		rf_sim_result_free(res);
		return r;
	}
	res->velocity = true;
	memcpy(res->good_s, good->reach_s, sizeof(res->good_s));
	/* The twin's timeline on the run's time grid: its latest row at or before each. */
	for (size_t i = 0, j = 0; i < res->nsamples; i++) {
		while (j + 1 < good->nsamples && good->samples[j + 1].t_s <= res->samples[i].t_s)
			j++;
		res->samples[i].good = good->nsamples ? good->samples[j].on_first : 0;
	}
	rf_sim_result_free(good);
	*ret = res;
	return 0;
}

void rf_sim_result_free(struct rf_sim_result *r)
{
	if (!r)
		return;
	free(r->samples);
	free(r);
}
