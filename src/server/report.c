/*
 * The device API, the reports (POST /v1/report): what a device did with a release, the evidence
 * of the gates, each committed to the store before its reply (group commit).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "server/server-internal.h"

/* The release a rollback or quarantine report is about. A rollback always goes to an older
 * release, so the release left is the newest one the device took that is not older than the
 * one named: that is the named one when the report names the release left (protocol.md), and
 * the one the device was on when an agent names the release it went back to. */
static int64_t release_left(const struct rf__srv_dev *d, int64_t named)
{
	int64_t newest = named;

	for (int i = 0; i < RF__SRV_HIST; i++)
		if (d->hist[i].release > newest)
			newest = d->hist[i].release;
	return newest;
}

static uint8_t sat8(unsigned v)
{
	return v > 255 ? 255 : (uint8_t)v;
}

static void local_add(struct rf__srv_devrel *h)
{
	if ((h->lqo & RF__SRV_LOCAL_MAX) < RF__SRV_LOCAL_MAX)
		h->lqo++;
}

/* A committed transit rejection of release id by device d, in its release's per-ring count
 * (struct rf__srv_release.transit; lock held). */
static void count_transit(struct rf_server *s, int64_t id, const struct rf__srv_dev *d)
{
	struct rf__srv_release *rel = rf__srv_rel_by_id(s, id);

	if (rel) {
		int k = rf_rollout_ring_index(&rel->sched, rf__srv_dev_ring(s, d));
		rel->transit[k >= 0 ? k : RF_ROLLOUT_RINGS_MAX]++;
	}
}

/* Who caused a failure report (docs/protocol.md): the content, the device (store, disk), the
 * transit (mirror, signature, hash), or the server (a halt the device obeyed). */
enum { CAUSE_CONTENT, CAUSE_LOCAL, CAUSE_TRANSIT, CAUSE_SERVER, CAUSE_COUNT_ };
static const char *const cause_names[CAUSE_COUNT_] = {"content", "local", "transit", "server"};

/* What one report does to its device: the resolved release it counts against (0 none), who
 * caused it, and the server time. */
struct report_fx {
	int ev, why;
	int64_t rel_id, now;
};

/* Apply the report fx to the device record nd (a copy; the caller installs it). */
static void report_apply(struct rf_server *s, struct rf__srv_dev *nd, const struct report_fx *f)
{
	int ev = f->ev, why = f->why;
	bool content = why == CAUSE_CONTENT;

	nd->last_seen = rf__srv_t32(f->now);
	nd->state = (uint8_t)(1 + ev);
	nd->state_at = rf__srv_t32(f->now);
	if (!f->rel_id)
		return;
	struct rf__srv_devrel *h;
	bool take = ev == EV_INTENT || ev == EV_TRIAL;
	if (take &&
	    (nd->release_id != f->rel_id || !rf__srv_hist_get(nd, f->rel_id, false, f->now)))
		rf__srv_dev_take(s, nd, f->rel_id, f->now);
	h = rf__srv_hist_get(nd, f->rel_id, false, f->now);
	if (!h) {
		/* A device is counted on a release, with a silence clock, once it took it (intent,
		 * trial_started, a check-in running it), or once the content failed on it (a
		 * rejection against its manifest comes before intent: the gates' evidence of a bad
		 * release, from then). Anything else about a release it never took (installed,
		 * healthy, a failure of the device, the transit or the server) is kept in the
		 * reports only: a record would count the device, and silent once it goes quiet (a
		 * mirror serving bad bytes never halts a good release, docs/protocol.md). */
		if (!content || ev == EV_INSTALLED || ev == EV_HEALTHY)
			return;
		h = rf__srv_hist_get(nd, f->rel_id, true, f->now);
	} else if (take) {
		(void)rf__srv_hist_renew(s, nd, h, f->now, f->now);
	} else if (!h->left_at && (content || ev == EV_HEALTHY)) {
		/* Still on it since before a resume and reporting about it again. */
		(void)rf__srv_hist_renew(s, nd, h, 0, f->now);
	}
	switch (ev) {
	case EV_HEALTHY:
		if (!h->healthy_at)
			h->healthy_at = rf__srv_t32(f->now);
		break;
	case EV_CRASHED:
		if (content)
			h->crashes = sat8(h->crashes + 1u);
		else if (why != CAUSE_SERVER)
			local_add(h);
		break;
	case EV_ROLLED_BACK:
		if (content)
			h->rollbacks = sat8(h->rollbacks + 1u);
		else if (why == CAUSE_SERVER)
			h->lqo |= RF__SRV_OBEYED;
		else
			local_add(h);
		if (!h->left_at)
			h->left_at = rf__srv_t32(f->now);
		break;
	case EV_REJECTED:
		if (content)
			h->rejects = sat8(h->rejects + 1u);
		else if (why != CAUSE_SERVER)
			local_add(h);
		break;
	case EV_QUARANTINED:
		if (content)
			h->lqo |= RF__SRV_QUARANTINED;
		else if (why != CAUSE_SERVER)
			local_add(h);
		break;
	default:
		break;
	}
}

/*
 * Group commit. A report is written to the store with the device state it leads to, and
 * acknowledged only after that transaction committed (P8); memory changes only then too. The
 * request queues its entry and waits; the committer thread (one per server) takes every
 * report waiting (at most RF_SRV_GROUP_COMMIT_MAX), writes them in one transaction WITHOUT the
 * server's lock (check-ins go on meanwhile), then applies them to memory under the lock and
 * wakes their requests; reports that arrive meanwhile wait for the next batch. A request
 * waits either in its thread (rf_server_handle) or, through the transport
 * (rf_server_handle_async), without one: its HTTP thread goes on serving others and the wake
 * callback resumes the connection when the batch is applied. A device has at most one write in
 * flight (DEV_BUSY): its record is computed from memory at enqueue, and a second report, a
 * re-enrolment or the flush of that device waits or skips until the first is applied.
 */
struct rf__srv_wentry {
	struct rf__srv_wentry *next;
	struct rf_db_report rep;
	struct rf_db_device rec;
	char *hist;
	char tenant[RF_SRV_ID_MAX + 1]; /* rec.tenant: s->tenants may move while unlocked */
	struct rf__srv_dev snap, nd;	/* the device at enqueue, and with the report applied */
	uint32_t idx;
	struct report_fx fx;
	int64_t written; /* rec's new version; 0: its compare-and-set failed, nothing written */
	int e;
	bool dup, done;
	bool full; /* over its bound (RF_SRV_REPORTS_PER_RELEASE): nothing written */
};

/* One report request from its parse to its reply (struct rf_server_pending to the transport):
 * the parsed body (the entry's strings point into it), the entry while it is queued, and who
 * to wake when it is applied. */
struct rf_server_pending {
	json_t *j;
	const char *dev_id, *rep_id, *event, *target, *sha, *detail;
	uint64_t t;
	int ev, why_given, tries;
	uint8_t cred_h[32];
	struct rf__srv_wentry x;
	bool queued; /* x is in the queue or being written */
	bool orphan; /* the transport gave up on it: freed by the committer once applied */
	void (*wake)(void *ud);
	void *ud;
};

static void pending_free(struct rf_server_pending *p)
{
	if (!p)
		return;
	free(p->x.hist);
	json_decref(p->j);
	free(p);
}

void rf__srv_dev_wait(struct rf_server *s, uint32_t idx)
{
	while (rf__srv_dev_at(s, idx)->flags & DEV_BUSY)
		pthread_cond_wait(&s->wcv, &s->lock);
}

/* A committed entry into memory (lock held). */
static void wentry_apply(struct rf_server *s, struct rf__srv_wentry *x)
{
	struct rf__srv_dev *d = rf__srv_dev_at(s, x->idx);

	if (x->e == 0 && !x->dup) {
		rf__srv_health_advance(s, x->fx.now);
		rf__srv_dev_unindex(s, x->idx);
		if (!memcmp(d, &x->snap, sizeof(*d))) {
			/* Unchanged since enqueue: memory is exactly what was committed. */
			*d = x->nd;
			d->flags &= (uint8_t) ~(DEV_DIRTY | DEV_SEEN | DEV_TOOK | DEV_VER);
			d->version = (uint32_t)x->written;
		} else {
			if ((uint32_t)x->written > d->version)
				d->version = (uint32_t)x->written;
			/* A check-in (or another instance's row) changed it meanwhile: the report's
			 * effect on top of that, flushed with the next tick. */
			report_apply(s, d, &x->fx);
			(void)rf__srv_dev_dirty(s, x->idx);
		}
		rf__srv_dev_index(s, x->idx);
	}
	d->flags &= (uint8_t)~DEV_BUSY;
	x->done = true;
}

/* Write one batch of the queue and apply it (lock held; released while writing). */
static void write_batch(struct rf_server *s)
{
	struct rf_db_report reps[RF_SRV_GROUP_COMMIT_MAX];
	struct rf_db_device recs[RF_SRV_GROUP_COMMIT_MAX];
	bool dups[RF_SRV_GROUP_COMMIT_MAX];
	struct rf__srv_wentry *batch[RF_SRV_GROUP_COMMIT_MAX];
	size_t n = 0;

	while (s->wq_head && n < RF_SRV_GROUP_COMMIT_MAX) {
		struct rf__srv_wentry *x = s->wq_head;
		s->wq_head = x->next;
		batch[n] = x;
		reps[n] = x->rep;
		recs[n] = x->rec;
		dups[n] = false;
		n++;
	}
	if (!s->wq_head)
		s->wq_tail = &s->wq_head;
	pthread_mutex_unlock(&s->lock);
	int e = rf_db_reports_add(s->db, reps, recs, n, dups);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		struct rf__srv_wentry *x = batch[i];
		struct rf_server_pending *p =
		    (struct rf_server_pending *)((char *)x - offsetof(struct rf_server_pending, x));
		x->e = e == 0 && !dups[i] && !x->written ? -ESTALE : e;
		if (e == 0 && x->full)
			x->e = -ENOSPC;
		x->dup = e == 0 && dups[i];
		wentry_apply(s, x);
		p->queued = false;
		if (p->orphan)
			pending_free(p); /* nobody waits for the answer (the transport stopped) */
		else if (p->wake)
			p->wake(p->ud);
	}
	atomic_fetch_add(&s->m_group_commits, 1);
	pthread_cond_broadcast(&s->wcv);
}

/* The committer thread: writes batches while reports wait; at stop, the queue drained. */
static void *committer(void *arg)
{
	struct rf_server *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->wq_head && !s->wstop)
			pthread_cond_wait(&s->wqcv, &s->lock);
		if (!s->wq_head)
			break;
		write_batch(s);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int rf__srv_committer_start(struct rf_server *s)
{
	int e = pthread_create(&s->wthread, NULL, committer, s);

	if (e)
		return -e;
	s->wthread_on = true;
	return 0;
}

void rf__srv_committer_stop(struct rf_server *s)
{
	if (!s->wthread_on)
		return;
	pthread_mutex_lock(&s->lock);
	s->wstop = true;
	pthread_cond_signal(&s->wqcv);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->wthread, NULL);
	s->wthread_on = false;
}

/* A device row read from the store outside the lock (the record's strings are only valid in the
 * visitor). */
struct dev_copy {
	struct rf_db_device rec;
	char id[RF_SRV_ID_MAX + 1], tenant[RF_SRV_ID_MAX + 1], ring[RF_SRV_ID_MAX + 1];
	char ver[RF_SRV_ID_MAX + 1], mh[RF_SRV_ID_MAX + 1], state[32];
	char *history;
	bool found;
};

static int dev_copy_visit(void *ud, const struct rf_db_device *x)
{
	struct dev_copy *c = ud;

	c->rec = *x;
	rf__srv_copy_str(c->id, sizeof(c->id), x->id);
	rf__srv_copy_str(c->tenant, sizeof(c->tenant), x->tenant);
	rf__srv_copy_str(c->ring, sizeof(c->ring), x->ring);
	rf__srv_copy_str(c->ver, sizeof(c->ver), x->agent_version);
	rf__srv_copy_str(c->mh, sizeof(c->mh), x->manifest_hash);
	rf__srv_copy_str(c->state, sizeof(c->state), x->state);
	free(c->history);
	c->history = strdup(x->history ? x->history : "");
	if (!c->history)
		return -ENOMEM;
	c->rec.id = c->id;
	c->rec.tenant = c->tenant;
	c->rec.ring = c->ring;
	c->rec.agent_version = c->ver;
	c->rec.manifest_hash = c->mh;
	c->rec.state = c->state;
	c->rec.history = c->history;
	c->found = true;
	return 0;
}

/*
 * Several instances: a device that reports is read from the store first (another instance may
 * have changed its outcomes). The read is made WITHOUT the server's lock: the device as memory
 * holds it is noted (no write of it in flight), the row read, and applied under the lock only if
 * memory did not change meanwhile (then no write of this instance came between: each marks the
 * device DEV_BUSY, which the comparison sees, so the row is at least as new as memory). Otherwise
 * (a check-in of the same device in between) dev_auth reads it again under the lock. Lock held
 * on entry and on return; returns whether the row was applied (dev_auth need not read it).
 */
static bool report_prefetch(struct rf_server *s, const char *dev_id)
{
	static const struct rf_db_visitor v = {.device = dev_copy_visit};
	struct dev_copy c = {.found = false};
	struct rf__srv_dev snap;
	uint32_t idx;
	bool known, applied = false;

	struct rf__srv_dev *d = rf__srv_dev_find(s, dev_id, &idx);
	if ((known = d != NULL)) {
		rf__srv_dev_wait(s, idx);
		snap = *rf__srv_dev_at(s, idx);
	}
	pthread_mutex_unlock(&s->lock);
	int e = rf_db_device_get(s->db, dev_id, &v, &c);
	pthread_mutex_lock(&s->lock);
	if (e == 0 && c.found) {
		d = rf__srv_dev_find(s, dev_id, &idx);
		if (known ? d && !memcmp(d, &snap, sizeof(snap)) : !d)
			applied = rf__srv_cluster_apply(s, &c.rec) == 0;
	}
	free(c.history);
	return applied;
}

/* Parse a report request into a new pending p; -1 with the error reply in r. */
static int report_parse(const struct rf_server_request *q, struct rf_server_reply *r,
			struct rf_server_pending **ret)
{
	struct rf_server_pending *p = calloc(1, sizeof(*p));
	const char *cause = NULL;
	int why = -1;

	if (!p) {
		rf__srv_err(r, 503, "unavailable", NULL, "out of memory");
		return -1;
	}
	p->ev = -1;
	if (rf__srv_parse_body(q, RF_SRV_DEVICE_BODY_MAX, r, &p->j) < 0)
		goto fail;
	if (rf__srv_get_str(r, p->j, "device_id", S_ID, true, &p->dev_id) < 0 ||
	    rf__srv_get_str(r, p->j, "report_id", S_ID, true, &p->rep_id) < 0 ||
	    rf__srv_get_str(r, p->j, "event", S_ID, true, &p->event) < 0 ||
	    rf__srv_get_str(r, p->j, "target", S_ID, false, &p->target) < 0 ||
	    rf__srv_get_str(r, p->j, "sha256", S_HEX, false, &p->sha) < 0 ||
	    rf__srv_get_str(r, p->j, "detail", S_TEXT, false, &p->detail) < 0 ||
	    rf__srv_get_str(r, p->j, "cause", S_ID, false, &cause) < 0 ||
	    rf__srv_get_u64(r, p->j, "time", &p->t) < 0)
		goto fail;
	/* Failure attribution (docs/protocol.md, Report): only the content's failures count
	 * against a release. */
	if (cause) {
		for (int i = 0; i < CAUSE_COUNT_; i++)
			if (!strcmp(cause, cause_names[i]))
				why = i;
		if (why < 0) {
			rf__srv_err(r, 400, "invalid_field", "cause",
				    "'cause' must be one of content, local, transit, server");
			goto fail;
		}
	}
	p->why_given = why;
	for (int i = 0; i < 8; i++)
		if (!strcmp(p->event, rf__srv_events[i]))
			p->ev = i;
	if (p->ev < 0) {
		rf__srv_err(
		    r, 400, "invalid_field", "event",
		    "'event' must be one of installed, intent, trial_started, healthy, crashed, "
		    "rolled_back, rejected, quarantined");
		goto fail;
	}
	if (p->t > (uint64_t)RF_ROLLOUT_TIME_MAX) {
		rf__srv_err(r, 400, "invalid_field", "time", "'time' is out of range");
		goto fail;
	}
	*ret = p;
	return 0;
fail:
	pending_free(p);
	return -1;
}

/* Compute the device state the report leads to and queue it for the committer (lock held).
 * Returns 1 queued, 0 answered in r (an error). d is the authenticated device at idx. */
static int report_enqueue(struct rf_server *s, struct rf_server_pending *p, struct rf__srv_dev *d,
			  uint32_t idx, struct rf_server_reply *r)
{
	int ev = p->ev, why = p->why_given;

	if (d->flags & DEV_BUSY) { /* fetched from the store while another write started */
		rf__srv_err(r, 503, "unavailable", NULL, "a write of this device is in flight");
		return 0;
	}
	int64_t now = rf__srv_health_advance(s, rf__srv_now(s));
	const struct rf__srv_release *rel = NULL;
	if (p->sha) {
		uint8_t b[32];
		if (rf_hex_decode(p->sha, 64, b, 32) == 0)
			rel = rf__srv_rel_by_sha(s, b);
	}
	if (!rel && p->target)
		rel = rf__srv_rel_by_target(s, p->target);
	if (rel && (ev == EV_ROLLED_BACK || ev == EV_QUARANTINED)) {
		const struct rf__srv_release *left = rf__srv_rel_by_id(s, release_left(d, rel->id));
		if (left)
			rel = left;
	}
	/* An older agent does not say why it rolled back: leaving a release that is halted now
	 * is obeying the halt. */
	if (why < 0)
		why = ev == EV_ROLLED_BACK && rel &&
			      (rel->st.status == RF_ROLLOUT_HALTED ||
			       rel->st.status == RF_ROLLOUT_ROLLED_BACK)
			  ? CAUSE_SERVER
			  : CAUSE_CONTENT;

	/* The device state the report leads to, computed on a copy: memory changes only after
	 * the store committed it. */
	struct rf__srv_wentry *x = &p->x;
	free(x->hist);
	*x = (struct rf__srv_wentry){
	    .idx = idx,
	    .fx = {.ev = ev, .why = why, .rel_id = rel ? rel->id : 0, .now = now},
	    .rep =
		{
		    .device_id = p->dev_id,
		    .report_id = p->rep_id,
		    .event = p->event,
		    .target = p->target ? p->target : "",
		    .sha256_hex = p->sha ? p->sha : "",
		    .release_id = rel ? rel->id : 0,
		    .time = (int64_t)p->t,
		    .received_at = now,
		    .detail = p->detail ? p->detail : "",
		},
	};
	x->nd = *d;
	report_apply(s, &x->nd, &x->fx);
	/* The bound on the device's reports of the release (limits.h): one that changes what
	 * the gates count for the device (its records per release, the release it is on) is
	 * kept even over it, in place of the oldest; the others are refused there. */
	x->rep.limit = RF_SRV_REPORTS_PER_RELEASE;
	x->rep.keep =
	    d->release_id != x->nd.release_id || memcmp(d->hist, x->nd.hist, sizeof(d->hist));
	x->rep.ret_full = &x->full;
	int e = rf__srv_dev_record(&x->nd, s, p->dev_id, &x->rec, &x->hist);
	if (e < 0) {
		rf__srv_err(r, 503, "unavailable", NULL, "storage: %s", rf_strerror(e));
		return 0;
	}
	rf__srv_copy_str(x->tenant, sizeof(x->tenant), x->rec.tenant);
	x->rec.tenant = x->tenant;
	x->rec.ret_version = &x->written;
	d->flags |= DEV_BUSY;
	x->snap = *d;
	*s->wq_tail = x;
	s->wq_tail = &x->next;
	p->queued = true;
	pthread_cond_signal(&s->wqcv);
	return 1;
}

/* Find and authenticate the report's device (fresh: re-read from the store first, several
 * instances), waiting for a write of it in flight, and queue the report (lock held). Returns
 * as report_enqueue(). */
static int report_start(struct rf_server *s, struct rf_server_pending *p, bool fresh,
			struct rf_server_reply *r)
{
	uint32_t idx;

	/* One write of a device in flight at a time: wait for the one before (before reading
	 * the device, from memory or, several instances, from the store). */
	if (rf__srv_dev_find(s, p->dev_id, &idx))
		rf__srv_dev_wait(s, idx);
	struct rf__srv_dev *d = rf__srv_dev_auth(s, p->cred_h, p->dev_id, r, &idx, fresh);
	if (!d)
		return 0;
	return report_enqueue(s, p, d, idx, r);
}

/* The answer of an applied entry (lock held): 1 when it was queued again (another
 * instance wrote the device meanwhile: read again, applied again), else 0 with r filled. */
static int report_finish(struct rf_server *s, struct rf_server_pending *p,
			 struct rf_server_reply *r)
{
	struct rf__srv_wentry *x = &p->x;

	free(x->hist);
	x->hist = NULL;
	if (x->e == -ESTALE) {
		atomic_fetch_add(&s->m_dev_conflicts, 1);
		/* Another instance wrote the device since it was read (compare-and-set): read it
		 * again and apply this report to what is there now; nothing was written. */
		if (s->shared && ++p->tries < RF_SRV_DEVICE_CAS_TRIES &&
		    rf__srv_cluster_fetch(s, p->dev_id) == 0)
			return report_start(s, p, false, r);
	}
	if (x->e == -ENOSPC) {
		/* A permanent 4xx: the agent drops the report rather than trying it for ever
		 * (src/agent/release.c); it carried nothing the gates count. */
		atomic_fetch_add(&s->m_reports_refused, 1);
		rf__srv_err(r, 409, "report_limit", NULL,
			    "this device has %u reports of this release already; not recorded",
			    RF_SRV_REPORTS_PER_RELEASE);
		return 0;
	}
	if (x->e < 0) {
		rf__srv_err(r, 503, "unavailable", NULL, "storage: %s",
			    x->e == -ESTALE ? "the device changed on another instance meanwhile"
					    : rf_strerror(x->e));
		return 0;
	}
	if (x->dup) {
		atomic_fetch_add(&s->m_reports_dup, 1);
		rf__srv_reply_json(r, 200, json_pack("{s:b,s:b}", "recorded", 0, "duplicate", 1));
	} else {
		atomic_fetch_add(&s->m_reports[p->ev], 1);
		if (p->ev == EV_REJECTED && x->fx.why == CAUSE_TRANSIT && x->fx.rel_id)
			count_transit(s, x->fx.rel_id, rf__srv_dev_at(s, x->idx));
		rf__srv_reply_json(r, 201, json_pack("{s:b}", "recorded", 1));
	}
	return 0;
}

/* Parse, authenticate and queue a report (rf__srv_handle_report, rf__srv_report_async):
 * 1 queued (*ret the pending report; lock held on return), 0 answered in r (lock not held). */
static int report_begin(struct rf_server *s, const struct rf_server_request *q,
			struct rf_server_reply *r, struct rf_server_pending **ret)
{
	struct rf_server_pending *p;

	if (report_parse(q, r, &p) < 0)
		return 0;
	if (rf__srv_dev_cred_hash(q, r, p->cred_h) < 0) {
		pending_free(p);
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	bool fresh = s->shared && !report_prefetch(s, p->dev_id);
	if (report_start(s, p, fresh, r) == 0) {
		pthread_mutex_unlock(&s->lock);
		pending_free(p);
		return 0;
	}
	*ret = p;
	return 1;
}

int rf__srv_handle_report(struct rf_server *s, const struct rf_server_request *q,
			  struct rf_server_reply *r)
{
	struct rf_server_pending *p;

	if (report_begin(s, q, r, &p) == 0)
		return r->status < 300 ? 0 : -1;
	do {
		while (!p->x.done)
			pthread_cond_wait(&s->wcv, &s->lock);
	} while (report_finish(s, p, r));
	pthread_mutex_unlock(&s->lock);
	pending_free(p);
	return r->status < 300 ? 0 : -1;
}

int rf__srv_report_async(struct rf_server *s, const struct rf_server_request *q,
			 void (*wake)(void *ud), void *ud, struct rf_server_pending **ret_pending,
			 struct rf_server_reply *r)
{
	struct rf_server_pending *p;

	if (report_begin(s, q, r, &p) == 0)
		return 0;
	p->wake = wake;
	p->ud = ud;
	pthread_mutex_unlock(&s->lock);
	*ret_pending = p;
	return 1;
}

int rf__srv_report_resume(struct rf_server *s, struct rf_server_pending *p,
			  struct rf_server_reply *r)
{
	int queued = 0;

	pthread_mutex_lock(&s->lock);
	/* Woken only once applied; a caller that resumes early waits here, not in a loop. */
	while (p->queued)
		pthread_cond_wait(&s->wcv, &s->lock);
	queued = report_finish(s, p, r);
	pthread_mutex_unlock(&s->lock);
	if (!queued)
		pending_free(p);
	return queued;
}

void rf__srv_report_abandon(struct rf_server *s, struct rf_server_pending *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&s->lock);
	if (p->queued) {
		p->orphan = true; /* the committer frees it once applied */
		p = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	pending_free(p);
}
