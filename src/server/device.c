/*
 * The device API, part one: a device's records (what it did on each release: hist_*, dev_take,
 * shared with the check-in and the reports), its authentication, and enrolment (POST
 * /v1/enroll). The check-in is checkin.c, the reports report.c.
 *
 * A device credential authenticates one device id; a device only ever sees releases (global),
 * its own record and its tenant's policy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/util.h"
#include "server/server-internal.h"

/* ---- device API ----------------------------------------------------------------------------- */

struct rf__srv_devrel *rf__srv_hist_get(struct rf__srv_dev *d, int64_t rel, bool create,
					int64_t now)
{
	int oldest = 0;

	for (int i = 0; i < RF__SRV_HIST; i++) {
		if (d->hist[i].release == rel)
			return &d->hist[i];
		if (d->hist[i].release < d->hist[oldest].release)
			oldest = i;
	}
	if (!create)
		return NULL;
	/* Reuse the slot of the oldest release (ids grow with time). */
	d->hist[oldest] =
	    (struct rf__srv_devrel){.release = (uint32_t)rel, .intent_at = rf__srv_t32(now)};
	return &d->hist[oldest];
}

/*
 * After an operator resumed a release, the records taken up to the second of the resume no
 * longer count (gates.c: intent_at <= resumed_at), whatever they hold. A device that takes the
 * release again, or that stayed on it and reports about it again, starts a new record: only
 * the evidence from before the resume is dropped, never the device. The new record's clock
 * starts when it took the release again (since: now), or, for a device that never left it, at
 * the resume (since: resumed_at + 1: it has run the release ever since). Nothing is renewed in
 * the second of the resume itself (a record of that second would not count either). Returns
 * whether h was renewed.
 */
bool rf__srv_hist_renew(struct rf_server *s, struct rf__srv_dev *d, struct rf__srv_devrel *h,
			int64_t since, int64_t now)
{
	const struct rf__srv_release *rel = rf__srv_rel_by_id(s, h->release);

	if (!rel || !rel->resumed_at || h->intent_at > rel->resumed_at || now <= rel->resumed_at)
		return false;
	/* Alerts count from here too. Taken again, the agent counts afresh (it resets its count
	 * when its content changes: dev_take resets the base); still on it, its count goes on:
	 * the device keeps it as the base, so the alerts from before the resume do not count
	 * again (one field for the device, not one per record: only the release it runs has
	 * a count that goes on). */
	if (!since && h->release == d->release_id && !h->left_at)
		d->alerts_base = d->alerts;
	if (since <= rel->resumed_at)
		since = rel->resumed_at + 1;
	*h = (struct rf__srv_devrel){.release = h->release, .intent_at = rf__srv_t32(since)};
	return true;
}

/* The device took release rel at now: it leaves every other release it was on. */
void rf__srv_dev_take(struct rf_server *s, struct rf__srv_dev *d, int64_t rel, int64_t now)
{
	for (int i = 0; i < RF__SRV_HIST; i++)
		if (d->hist[i].release && d->hist[i].release != rel && !d->hist[i].left_at) {
			const struct rf__srv_release *old =
			    rf__srv_rel_by_id(s, d->hist[i].release);
			d->hist[i].left_at = rf__srv_t32(now);
			/* Leaving a halted or rolled-back release for another one (the fix, or an
			 * older release) is what the server told it to do: it obeyed the halt, it
			 * did not fail (whatever it had reported before still counts). */
			if (old && (old->st.status == RF_ROLLOUT_HALTED ||
				    old->st.status == RF_ROLLOUT_ROLLED_BACK))
				d->hist[i].lqo |= RF__SRV_OBEYED;
		}
	/* Back on a release it ran before (its last known good after a rollback): on it again,
	 * with what it did on it before, unless that was before the release was resumed. */
	struct rf__srv_devrel *h = rf__srv_hist_get(d, rel, true, now);
	d->alerts_base = 0; /* the agent's count starts again on the new content */
	if (!rf__srv_hist_renew(s, d, h, now, now))
		h->left_at = 0;
	d->release_id = (uint32_t)rel;
}

bool rf__srv_dev_reapply(struct rf_server *s, struct rf__srv_dev *row,
			 const struct rf__srv_dev *local)
{
	bool changed = false;

	/* Same second or older: the committed row wins; the device's next check-in says it
	 * all again (a check-in's change is state it repeats every poll, unlike a report). */
	if (local->last_seen <= row->last_seen)
		return false;
	if ((local->flags & DEV_VER) &&
	    (local->agent_version != row->agent_version || local->manifest != row->manifest)) {
		row->agent_version = local->agent_version;
		row->manifest = local->manifest;
		changed = true;
	}
	if ((local->flags & DEV_TOOK) && local->release_id != row->release_id) {
		rf__srv_dev_take(s, row, local->release_id, local->last_seen);
		changed = true;
	}
	row->crashes = local->crashes;
	row->rollbacks = local->rollbacks;
	row->events = local->events;
	row->alerts = local->alerts;
	return changed;
}

/* Hash the device credential of a request (outside the lock: it is the costly part of
 * authentication). Returns 0, or -1 with the 401 reply written. */
int rf__srv_dev_cred_hash(const struct rf_server_request *q, struct rf_server_reply *r,
			  uint8_t h[32])
{
	const char *tok = rf__srv_bearer(q->authorization, "rfd_");

	if (!tok)
		return rf__srv_err(r, 401, "unauthorized", NULL,
				   "device requests need 'Authorization: Bearer rfd_...'");
	rf__srv_hash_token(tok, h);
	return 0;
}

/* The device dev_id (and its index) if h is its credential's hash, else NULL with the reply
 * written. Several instances on one database (cluster.c): a device this instance does not
 * know, or whose credential differs (enrolled or re-enrolled through another instance), is
 * read from the store first, and so is every device that reports (fresh: its outcomes may
 * have changed through another instance in the last second). Lock held. */
struct rf__srv_dev *rf__srv_dev_auth(struct rf_server *s, const uint8_t h[32], const char *dev_id,
				     struct rf_server_reply *r, uint32_t *ret_idx, bool fresh)
{
	struct rf__srv_dev *d = rf__srv_dev_find(s, dev_id, ret_idx);

	if (s->shared && (fresh || !d || CRYPTO_memcmp(d->cred, h, 32) != 0) &&
	    rf__srv_cluster_fetch(s, dev_id) == 0)
		d = rf__srv_dev_find(s, dev_id, ret_idx);

	if (!d) {
		rf__srv_err(r, 401, "unauthorized", "device_id", "unknown device: enroll first");
		return NULL;
	}
	/* Not its current credential: revoked by a re-enrolment (perhaps not the device's own:
	 * every holder of the tenant's token can re-enrol a device id), or another device's.
	 * 401, as for an unknown credential, so that an agent enrols again (protocol.md); a 403
	 * would lock the device out for good. */
	if (CRYPTO_memcmp(d->cred, h, 32) != 0) {
		rf__srv_err(r, 401, "unauthorized", "device_id",
			    "this credential is not the current one of this device (it was "
			    "enrolled again since): enroll again");
		return NULL;
	}
	return d;
}

/* The enrolment's device record: the old one (re-enrolment: new credential, ring, version)
 * or a new one. Returns 0, or -1 with the reply written. Lock held. */
static int enroll_record(struct rf_server *s, struct rf__srv_dev *old, int t, const char *use_ring,
			 const char *ver, const char *mh, const uint8_t cred[32], int64_t now,
			 struct rf_server_reply *r, struct rf__srv_dev *nd)
{
	if (old) {
		*nd = *old;
	} else {
		memset(nd, 0, sizeof(*nd));
		nd->tenant = (uint16_t)t;
		nd->flags = s->tenants[t].phase ? DEV_PHASE : 0; /* indexed as the tenant is now */
		nd->state = 0;					 /* enrolled */
		nd->state_at = rf__srv_t32(now);
	}
	memcpy(nd->cred, cred, 32);
	if (rf__srv_intern(s, use_ring, &nd->ring) < 0 ||
	    (ver && rf__srv_intern(s, ver, &nd->agent_version) < 0) ||
	    (mh && rf__srv_intern(s, mh, &nd->manifest) < 0))
		return rf__srv_err(r, 503, "unavailable", NULL,
				   "the server's string table is full (%u distinct values)",
				   RF_SRV_STRINGS_MAX);
	nd->last_seen = rf__srv_t32(now);
	return 0;
}

int rf__srv_handle_enroll(struct rf_server *s, const struct rf_server_request *q,
			  struct rf_server_reply *r)
{
	const char *tok = rf__srv_bearer(q->authorization, "rfe_");
	const char *dev_id, *ring, *ver, *mh;
	uint8_t h[32];
	json_t *j = NULL;
	int t = -1, ret = -1;

	if (!tok && (!q->authorization || strncmp(q->authorization, "Bearer ", 7)))
		return rf__srv_err(r, 401, "unauthorized", NULL,
				   "enrollment needs 'Authorization: Bearer rfe_...'");
	if (!tok)
		return rf__srv_err(
		    r, 401, "unauthorized", NULL,
		    "not an enrollment token: it is 'rfe_' and 64 hex digits, as "
		    "`ringfence tenant create` or `ringfence tenant token` printed it");
	if (rf__srv_parse_body(q, RF_SRV_DEVICE_BODY_MAX, r, &j) < 0)
		return -1;
	if (rf__srv_get_str(r, j, "device_id", S_ID, true, &dev_id) < 0 ||
	    rf__srv_get_str(r, j, "ring", S_ID, false, &ring) < 0 ||
	    rf__srv_get_str(r, j, "agent_version", S_ID, false, &ver) < 0 ||
	    rf__srv_get_str(r, j, "manifest_hash", S_HEX, false, &mh) < 0)
		goto out;
	rf__srv_hash_token(tok, h);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->ntenants; i++)
		if (!CRYPTO_memcmp(s->tenants[i].token_hash, h, 32))
			t = (int)i;
	if (t < 0) {
		rf__srv_err(r, 401, "unauthorized", NULL, "unknown enrollment token");
		goto unlock;
	}
	uint32_t idx = 0;
	struct rf__srv_dev *old;
	int tries = 0;
again:
	old = rf__srv_dev_find(s, dev_id, &idx);
	if (old) { /* its row is written below: no other write of it in flight */
		rf__srv_dev_wait(s, idx);
		old = rf__srv_dev_find(s, dev_id, &idx);
	}
	if (old && old->tenant != (uint16_t)t) {
		rf__srv_err(r, 409, "conflict", "device_id",
			    "device id is enrolled under another tenant");
		goto unlock;
	}
	if (!old && s->ndevs >= RF_SRV_DEVICES_MAX) {
		rf__srv_err(r, 503, "unavailable", NULL, "device table full");
		goto unlock;
	}
	/* The ring: the tenant's, else the requested one if it exists, else (a re-enrolment)
	 * the one it is in, else the last (broadest). A re-enrolment that names no ring never
	 * moves the device (anyone with the tenant's token can re-enrol a device id, and the
	 * device re-enrols with the ring the server gave it, protocol.md). */
	const char *use_ring = s->tenants[t].ring[0] ? s->tenants[t].ring : NULL;
	if (!use_ring && ring && rf__srv_ring_find(s, ring) >= 0)
		use_ring = ring;
	if (!use_ring && old && rf__srv_ring_find(s, rf__srv_dev_ring(s, old)) >= 0)
		use_ring = rf__srv_dev_ring(s, old);
	if (!use_ring && s->nrings)
		use_ring = s->rings[s->nrings - 1].name;
	if (!use_ring) {
		rf__srv_err(r, 409, "conflict", NULL, "the server has no rings");
		goto unlock;
	}
	char cred[69];
	struct rf__srv_dev nd;
	if (!tries && rf__srv_new_token("rfd_", cred, h) < 0) {
		rf__srv_err(r, 503, "unavailable", NULL, "no randomness");
		goto unlock;
	}
	int64_t now = rf__srv_health_advance(s, rf__srv_now(s));
	if (enroll_record(s, old, t, use_ring, ver, mh, h, now, r, &nd) < 0)
		goto unlock;
	struct rf_db_device rec;
	char *hist;
	int64_t written = 0;
	int e = rf__srv_dev_record(&nd, s, dev_id, &rec, &hist);
	if (e == 0) {
		if (!old)
			rec.enrolled_at = now;
		rec.ret_version = &written;
		e = rf_db_devices_put(s->db, &rec, 1);
		free(hist);
	}
	if (e == 0 && !written) {
		atomic_fetch_add(&s->m_dev_conflicts, 1);
		/* Compare-and-set failed: another instance enrolled or changed this device since
		 * this one read it. Read it again and enrol over what is there now. */
		if (s->shared && ++tries < RF_SRV_DEVICE_CAS_TRIES &&
		    rf__srv_cluster_fetch(s, dev_id) == 0)
			goto again;
		e = -ESTALE;
	}
	if (e < 0) {
		rf__srv_err(r, 503, "unavailable", NULL, "storage: %s",
			    e == -ESTALE ? "the device changed on another instance meanwhile"
					 : rf_strerror(e));
		goto unlock;
	}
	nd.version = (uint32_t)written;
	if (old) {
		int old_ring = rf__srv_ring_find(s, rf__srv_dev_ring(s, old));
		rf__srv_dev_unindex(s, idx);
		rf__srv_dev_buckets(s, idx, -1);
		if (old_ring >= 0)
			s->rings[old_ring].ndevices--;
		*old = nd;
		old->flags &= (uint8_t) ~(DEV_SEEN | DEV_TOOK | DEV_VER);
	} else if (rf__srv_dev_add(s, &nd, dev_id, &idx) < 0) {
		/* Durable but not in memory: the next start loads it. Tell the device to retry. */
		rf__srv_err(r, 503, "unavailable", NULL, "out of memory");
		goto unlock;
	} else {
		s->tenants[t].ndevices++;
	}
	int nr = rf__srv_ring_find(s, use_ring);
	if (nr >= 0)
		s->rings[nr].ndevices++;
	rf__srv_dev_buckets(s, idx, 1);
	rf__srv_dev_index(s, idx);
	atomic_fetch_add(&s->m_enrolls, 1);
	rf__srv_reply_json(r, 201,
			   json_pack("{s:s,s:s,s:s,s:s,s:i}", "device_id", dev_id, "tenant",
				     s->tenants[t].name, "ring", use_ring, "credential", cred,
				     "poll_interval", (int)s->poll_interval));
	OPENSSL_cleanse(cred, sizeof(cred));
	ret = 0;
unlock:
	pthread_mutex_unlock(&s->lock);
out:
	json_decref(j);
	return ret;
}
