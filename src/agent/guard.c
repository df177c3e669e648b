/*
 * The crash-loop guard (see guard.h for the model and its invariants I1-I4).
 *
 * rf_guard_step works on a copy of the state and a local action list and writes both back only
 * on success, so a rejected input changes nothing. Every path that loads a pack goes through
 * load_trial()/load_lkg(), which count the attempt and emit PERSIST before LOAD: that is the
 * write-ahead rule, in one place. Every path on which the running pack died goes through
 * pack_failed(), which decides between another attempt, quarantine + LKG, and safe mode.
 */
#include <string.h>

#include "agent/guard.h"

#define GUARD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The simulator holds one state per simulated device, millions of them. */
_Static_assert(sizeof(struct rf_guard_state) == 168,
	       "guard state grew: check the simulator's memory");

struct ctx {
	const struct rf_guard_config *cfg;
	struct rf_guard_state s;
	struct rf_guard_actions a;
	bool overflow;
};

static struct rf_guard_action *push(struct ctx *c, enum rf_guard_action_type t)
{
	struct rf_guard_action *x;

	if (c->a.n >= RF_GUARD_ACTIONS_MAX) {
		c->overflow = true; /* cannot happen: the longest path emits 9 */
		return NULL;
	}
	x = &c->a.a[c->a.n++];
	memset(x, 0, sizeof(*x));
	x->type = t;
	x->limit = c->cfg->attempt_limit;
	return x;
}

static void report(struct ctx *c, enum rf_guard_report r, const uint8_t *hash,
		   enum rf_guard_reason why, uint8_t attempt)
{
	struct rf_guard_action *x = push(c, RF_GUARD_ACT_REPORT);

	if (!x)
		return;
	x->report = r;
	x->reason = why;
	x->attempt = attempt;
	if (hash)
		memcpy(x->hash, hash, RF_GUARD_HASH_LEN);
}

static void persist(struct ctx *c)
{
	push(c, RF_GUARD_ACT_PERSIST);
}

uint64_t rf_guard_fingerprint(const uint8_t hash[RF_GUARD_HASH_LEN])
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 8; i++)
		v = v << 8 | hash[i];
	return v;
}

bool rf_guard_is_quarantined(const struct rf_guard_state *st, const uint8_t hash[RF_GUARD_HASH_LEN])
{
	uint64_t fp = rf_guard_fingerprint(hash);
	unsigned n =
	    st->nquarantine <= RF_GUARD_QUARANTINE_MAX ? st->nquarantine : RF_GUARD_QUARANTINE_MAX;

	for (unsigned i = 0; i < n; i++)
		if (st->quarantine[i] == fp)
			return true;
	return false;
}

bool rf_guard_current(const struct rf_guard_state *st, uint8_t ret[RF_GUARD_HASH_LEN])
{
	if (st->mode == RF_GUARD_MODE_TRIAL && st->has_trial) {
		memcpy(ret, st->trial, RF_GUARD_HASH_LEN);
		return true;
	}
	if (st->mode == RF_GUARD_MODE_LKG && st->has_lkg) {
		memcpy(ret, st->lkg, RF_GUARD_HASH_LEN);
		return true;
	}
	return false;
}

/* Health counters belong to the running content: reset them when it changes (protocol.md). */
static void switch_current(struct ctx *c, const uint8_t *next)
{
	uint8_t cur[RF_GUARD_HASH_LEN];

	if (!next || !rf_guard_current(&c->s, cur) || memcmp(cur, next, RF_GUARD_HASH_LEN) != 0) {
		c->s.crashes = 0;
		c->s.rollbacks = 0;
	}
}

static void enter_safe(struct ctx *c)
{
	switch_current(c, NULL);
	c->s.mode = RF_GUARD_MODE_SAFE;
	c->s.loaded = 0;
	c->s.clean = 0;
	c->s.lkg_attempts = 0;
	persist(c);
	push(c, RF_GUARD_ACT_SAFE_MODE);
}

static void quarantine(struct ctx *c, const uint8_t hash[RF_GUARD_HASH_LEN],
		       enum rf_guard_reason why)
{
	uint64_t fp = rf_guard_fingerprint(hash);
	struct rf_guard_action *x;

	if (!rf_guard_is_quarantined(&c->s, hash)) {
		c->s.quarantine[c->s.qnext] = fp;
		c->s.qnext = (uint8_t)((c->s.qnext + 1) % RF_GUARD_QUARANTINE_MAX);
		if (c->s.nquarantine < RF_GUARD_QUARANTINE_MAX)
			c->s.nquarantine++;
	}
	/* A fingerprint collision must not leave a quarantined-looking pack loadable (I1). */
	if (c->s.has_lkg && rf_guard_fingerprint(c->s.lkg) == fp) {
		c->s.has_lkg = 0;
		c->s.lkg_attempts = 0;
		memset(c->s.lkg, 0, RF_GUARD_HASH_LEN);
	}
	x = push(c, RF_GUARD_ACT_QUARANTINE);
	if (x) {
		x->reason = why;
		memcpy(x->hash, hash, RF_GUARD_HASH_LEN);
	}
	report(c, RF_GUARD_REPORT_QUARANTINED, hash, why, 0);
}

static void load_trial(struct ctx *c)
{
	struct rf_guard_action *x;

	switch_current(c, c->s.trial);
	c->s.trial_attempts++;
	c->s.mode = RF_GUARD_MODE_TRIAL;
	c->s.loaded = 0;
	c->s.clean = 0;
	persist(c);
	x = push(c, RF_GUARD_ACT_LOAD);
	if (x) {
		x->mode = RF_GUARD_MODE_TRIAL;
		x->attempt = c->s.trial_attempts;
		memcpy(x->hash, c->s.trial, RF_GUARD_HASH_LEN);
	}
}

/* Load the LKG (or fall to safe mode); rollback: this load is a rollback to it. */
static void load_lkg(struct ctx *c, bool rollback)
{
	struct rf_guard_action *x;

	if (!c->s.has_lkg) {
		enter_safe(c);
		return;
	}
	if (c->s.lkg_attempts >= c->cfg->attempt_limit) {
		/* The LKG is given up, not quarantined: it proved itself before, and a host that
		 * loses power repeatedly looks the same as content that crashes it. If the server
		 * offers it again it comes back as a trial, whose crash loop does quarantine it. */
		report(c, RF_GUARD_REPORT_ROLLED_BACK, c->s.lkg, RF_GUARD_REASON_LKG_CRASH_LOOP, 0);
		c->s.has_lkg = 0;
		memset(c->s.lkg, 0, RF_GUARD_HASH_LEN);
		enter_safe(c);
		return;
	}
	switch_current(c, c->s.lkg);
	if (rollback && c->s.rollbacks < UINT32_MAX)
		c->s.rollbacks++;
	c->s.lkg_attempts++;
	c->s.mode = RF_GUARD_MODE_LKG;
	c->s.loaded = 0;
	c->s.clean = 0;
	persist(c);
	x = push(c, RF_GUARD_ACT_LOAD);
	if (x) {
		x->mode = RF_GUARD_MODE_LKG;
		x->attempt = c->s.lkg_attempts;
		memcpy(x->hash, c->s.lkg, RF_GUARD_HASH_LEN);
	}
}

static void drop_trial(struct ctx *c)
{
	c->s.has_trial = 0;
	c->s.trial_attempts = 0;
	memset(c->s.trial, 0, RF_GUARD_HASH_LEN);
}

/* The running (or loading) pack is gone; crashed says whether it died rather than stopped. */
static void pack_failed(struct ctx *c, bool crashed)
{
	if (c->s.mode == RF_GUARD_MODE_TRIAL) {
		if (crashed) {
			if (c->s.crashes < UINT32_MAX)
				c->s.crashes++;
			report(c, RF_GUARD_REPORT_CRASHED, c->s.trial, RF_GUARD_REASON_NONE,
			       c->s.trial_attempts);
		}
		if (c->s.trial_attempts < c->cfg->attempt_limit) {
			load_trial(c);
			return;
		}
		uint8_t h[RF_GUARD_HASH_LEN];
		memcpy(h, c->s.trial, RF_GUARD_HASH_LEN);
		quarantine(c, h, RF_GUARD_REASON_CRASH_LOOP);
		drop_trial(c);
		if (c->s.has_lkg)
			report(c, RF_GUARD_REPORT_ROLLED_BACK, c->s.lkg, RF_GUARD_REASON_CRASH_LOOP,
			       0);
		else
			report(c, RF_GUARD_REPORT_ROLLED_BACK, NULL, RF_GUARD_REASON_SAFE_MODE, 0);
		load_lkg(c, true);
		return;
	}
	if (c->s.mode == RF_GUARD_MODE_LKG) {
		if (crashed) {
			if (c->s.crashes < UINT32_MAX)
				c->s.crashes++;
			report(c, RF_GUARD_REPORT_CRASHED, c->s.lkg, RF_GUARD_REASON_NONE,
			       c->s.lkg_attempts);
		}
		load_lkg(c, false);
	}
}

static void on_boot(struct ctx *c)
{
	bool crashed = !c->s.clean;

	c->s.loaded = 0;
	c->s.run_since_ms = 0;
	c->s.run_events = 0;
	switch (c->s.mode) {
	case RF_GUARD_MODE_TRIAL:
	case RF_GUARD_MODE_LKG:
		pack_failed(c, crashed);
		break;
	case RF_GUARD_MODE_SAFE:
		push(c, RF_GUARD_ACT_SAFE_MODE);
		break;
	default:
		break;
	}
}

static void on_candidate(struct ctx *c, const uint8_t hash[RF_GUARD_HASH_LEN])
{
	if (rf_guard_is_quarantined(&c->s, hash)) {
		report(c, RF_GUARD_REPORT_REJECTED, hash, RF_GUARD_REASON_QUARANTINED, 0);
		return;
	}
	if (c->s.mode == RF_GUARD_MODE_TRIAL && memcmp(hash, c->s.trial, RF_GUARD_HASH_LEN) == 0)
		return; /* already on trial */
	if (c->s.has_lkg && memcmp(hash, c->s.lkg, RF_GUARD_HASH_LEN) == 0) {
		if (c->s.mode == RF_GUARD_MODE_TRIAL) { /* told to go back to our own LKG */
			drop_trial(c);
			report(c, RF_GUARD_REPORT_ROLLED_BACK, c->s.lkg, RF_GUARD_REASON_SERVER, 0);
			load_lkg(c, true);
		}
		return;
	}
	/* A new trial supersedes any other trial (which is not proven bad: not quarantined). */
	memcpy(c->s.trial, hash, RF_GUARD_HASH_LEN);
	c->s.has_trial = 1;
	c->s.trial_attempts = 0;
	report(c, RF_GUARD_REPORT_INTENT, hash, RF_GUARD_REASON_NONE, 1);
	load_trial(c);
}

static void on_tick(struct ctx *c, uint64_t now, uint64_t events)
{
	const struct rf_guard_config *cfg = c->cfg;

	if ((c->s.mode != RF_GUARD_MODE_TRIAL && c->s.mode != RF_GUARD_MODE_LKG) || !c->s.loaded)
		return;
	if (__builtin_add_overflow(c->s.run_events, events, &c->s.run_events))
		c->s.run_events = UINT64_MAX;
	if (now < c->s.run_since_ms || now - c->s.run_since_ms < cfg->probation_ms ||
	    c->s.run_events < cfg->probation_events)
		return;
	if (c->s.mode == RF_GUARD_MODE_TRIAL) {
		memcpy(c->s.lkg, c->s.trial, RF_GUARD_HASH_LEN);
		c->s.has_lkg = 1;
		c->s.lkg_attempts = 0;
		drop_trial(c);
		c->s.mode = RF_GUARD_MODE_LKG;
		report(c, RF_GUARD_REPORT_HEALTHY, c->s.lkg, RF_GUARD_REASON_NONE, 0);
		persist(c);
	} else if (c->s.lkg_attempts > 0) {
		c->s.lkg_attempts = 0; /* the LKG proved itself again in this run */
		persist(c);
	}
}

static void dispatch(struct ctx *c, const struct rf_guard_event *ev)
{
	bool running = c->s.mode == RF_GUARD_MODE_TRIAL || c->s.mode == RF_GUARD_MODE_LKG;

	switch (ev->type) {
	case RF_GUARD_EV_BOOT:
		on_boot(c);
		break;
	case RF_GUARD_EV_CANDIDATE:
		on_candidate(c, ev->hash);
		break;
	case RF_GUARD_EV_REJECTED:
		report(c, RF_GUARD_REPORT_REJECTED, ev->hash, RF_GUARD_REASON_VERIFY, 0);
		break;
	case RF_GUARD_EV_LOADED:
		if (!running || c->s.loaded)
			break;
		c->s.loaded = 1;
		c->s.run_since_ms = ev->now_ms;
		c->s.run_events = 0;
		if (c->s.mode == RF_GUARD_MODE_TRIAL)
			report(c, RF_GUARD_REPORT_TRIAL_STARTED, c->s.trial, RF_GUARD_REASON_NONE,
			       c->s.trial_attempts);
		break;
	case RF_GUARD_EV_LOAD_FAILED:
		if (running && !c->s.loaded)
			pack_failed(c, true);
		break;
	case RF_GUARD_EV_CRASH:
		if (running)
			pack_failed(c, true);
		break;
	case RF_GUARD_EV_TICK:
		on_tick(c, ev->now_ms, ev->events);
		break;
	case RF_GUARD_EV_ROLLBACK:
		/* Only a trial with a distinct LKG to go back to is rolled back. Without one the
		 * order is a no-op (issue 10): the trial keeps running and keeps its attempts. A
		 * halt is not a verdict on this device, where the pack runs; safe mode would trade
		 * it for no content and the server repeats the order at every check-in. The fix
		 * comes as a new CANDIDATE; a real crash loop still quarantines the trial. */
		if (c->s.mode != RF_GUARD_MODE_TRIAL || !c->s.has_lkg ||
		    memcmp(c->s.lkg, c->s.trial, RF_GUARD_HASH_LEN) == 0)
			break;
		drop_trial(c);
		report(c, RF_GUARD_REPORT_ROLLED_BACK, c->s.lkg, RF_GUARD_REASON_SERVER, 0);
		load_lkg(c, true);
		break;
	case RF_GUARD_EV_SHUTDOWN:
		if (!running)
			break;
		/* Refund only a load that completed: a pack whose load hangs until it is stopped
		 * keeps the attempt, so it cannot loop forever through clean stops. */
		if (c->s.loaded) {
			if (c->s.mode == RF_GUARD_MODE_TRIAL && c->s.trial_attempts > 0)
				c->s.trial_attempts--;
			if (c->s.mode == RF_GUARD_MODE_LKG && c->s.lkg_attempts > 0)
				c->s.lkg_attempts--;
		}
		c->s.clean = 1;
		c->s.loaded = 0;
		persist(c);
		break;
	}
}

void rf_guard_config_default(struct rf_guard_config *cfg)
{
	cfg->attempt_limit = RF_GUARD_ATTEMPTS_DEFAULT;
	cfg->probation_ms = RF_GUARD_PROBATION_MS_DEFAULT;
	cfg->probation_events = RF_GUARD_PROBATION_EVENTS_DEFAULT;
}

void rf_guard_init(struct rf_guard_state *st)
{
	memset(st, 0, sizeof(*st));
	st->mode = RF_GUARD_MODE_EMPTY;
}

bool rf_guard_state_valid(const struct rf_guard_config *cfg, const struct rf_guard_state *st)
{
	if (!st || st->mode > RF_GUARD_MODE_SAFE)
		return false;
	if (st->has_trial > 1 || st->has_lkg > 1 || st->loaded > 1 || st->clean > 1)
		return false;
	if (st->nquarantine > RF_GUARD_QUARANTINE_MAX || st->qnext >= RF_GUARD_QUARANTINE_MAX)
		return false;
	if ((st->mode == RF_GUARD_MODE_TRIAL) != (st->has_trial == 1))
		return false;
	if (st->mode == RF_GUARD_MODE_LKG && !st->has_lkg)
		return false;
	if ((st->mode == RF_GUARD_MODE_EMPTY || st->mode == RF_GUARD_MODE_SAFE) && st->has_lkg)
		return false;
	if (!st->has_trial && st->trial_attempts != 0)
		return false;
	if (st->has_lkg && rf_guard_is_quarantined(st, st->lkg))
		return false;
	if (st->has_trial && rf_guard_is_quarantined(st, st->trial))
		return false;
	(void)cfg; /* attempts above a (lowered) limit are valid: the next BOOT quarantines */
	return true;
}

int rf_guard_step(const struct rf_guard_config *cfg, struct rf_guard_state *st,
		  const struct rf_guard_event *ev, struct rf_guard_actions *ret)
{
	struct ctx c;

	if (!cfg || !st || !ev || !ret || cfg->attempt_limit == 0)
		return -EINVAL;
	if (ev->type < RF_GUARD_EV_FIRST || ev->type > RF_GUARD_EV_LAST)
		return -EINVAL;
	if (!rf_guard_state_valid(cfg, st))
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	c.s = *st;
	dispatch(&c, ev);
	if (c.overflow)
		return -E2BIG;
	*st = c.s;
	*ret = c.a;
	return 0;
}

const char *rf_guard_mode_name(enum rf_guard_mode m)
{
	static const char *const n[] = {"empty", "trial", "last-good", "safe"};

	return (unsigned)m < GUARD_ARRAY_LEN(n) ? n[m] : "?";
}

const char *rf_guard_event_name(enum rf_guard_event_type t)
{
	static const char *const n[] = {"?",	    "boot",	   "candidate", "rejected",
					"loaded",   "load-failed", "crash",	"tick",
					"rollback", "shutdown"};

	return (unsigned)t < GUARD_ARRAY_LEN(n) ? n[t] : "?";
}

const char *rf_guard_action_name(enum rf_guard_action_type t)
{
	static const char *const n[] = {"?",	   "report", "quarantine",
					"persist", "load",   "safe-mode"};

	return (unsigned)t < GUARD_ARRAY_LEN(n) ? n[t] : "?";
}

const char *rf_guard_report_name(enum rf_guard_report r)
{
	static const char *const n[] = {"?",	   "intent",	  "trial_started", "healthy",
					"crashed", "rolled_back", "rejected",	   "quarantined"};

	return (unsigned)r < GUARD_ARRAY_LEN(n) ? n[r] : "?";
}

const char *rf_guard_reason_name(enum rf_guard_reason r)
{
	static const char *const n[] = {"none",		"crash-loop",  "last-good-crash-loop",
					"verification", "quarantined", "server-rollback",
					"safe-mode"};

	return (unsigned)r < GUARD_ARRAY_LEN(n) ? n[r] : "?";
}
