/*
 * ringfence-agent's update channel: enrollment, check-ins, report delivery, and taking a
 * release. A release is fetched only through the TUF client (P9), checked against the signed
 * schedule (P6) and verified against this build's manifest in a bounded verifier child (P1)
 * before the guard ever sees it; only then is it stored and fed to the guard as a candidate.
 * Nothing here loads content: the channel works the same in safe mode (P5).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/log.h"
#include "rollout/rollout.h"
#include "trust/tuf.h"

static bool permanent_4xx(int status)
{
	return status >= 400 && status < 500 && status != 401 && status != 408 && status != 429;
}

void rf__agent_flush_reports(struct agent *ag)
{
	bool changed = false;

	if (!ag->credential[0])
		return;
	while (rf_store_report_count(ag->st) > 0) {
		const struct rf_store_report *r = rf_store_report_at(ag->st, 0);
		uint64_t id = r->id;
		char *body = NULL;
		uint8_t *reply = NULL;
		size_t n;
		int s;

		if (rf_checkin_body_report(&ag->id, r, &body) < 0)
			break;
		s = rf__agent_http_post(ag, "/v1/report", ag->credential, body, &reply, &n);
		free(body);
		free(reply);
		if (s < 0 || s >= 500 || (s >= 400 && !permanent_4xx(s))) {
			rf_log_debug("report %llu not delivered (%d); kept", (unsigned long long)id,
				     s);
			break;
		}
		if (s >= 400)
			rf_log_warn("report %llu refused by the server (HTTP %d); dropped",
				    (unsigned long long)id, s);
		else
			rf_log_info("report %llu delivered: %s %s", (unsigned long long)id,
				    r->event, r->target);
		if (rf_store_report_done(ag->st, id) < 0)
			break;
		changed = true;
	}
	if (changed && rf_store_commit(ag->st) < 0)
		rf_log_warn("store: cannot record delivered reports (they may be sent again)");
}

static int enroll(struct agent *ag)
{
	struct rf_enroll_reply er;
	struct rf_diag d = {0};
	char *body = NULL;
	uint8_t *reply = NULL;
	size_t n;
	int s, r;

	if (!ag->o.enroll_token) {
		rf_log_error("not enrolled and no enrollment token (--enroll-token or "
			     "RINGFENCE_ENROLL_TOKEN)");
		return -ENOKEY;
	}
	if ((r = rf_checkin_body_enroll(&ag->id, &body)) < 0)
		return r;
	s = rf__agent_http_post(ag, "/v1/enroll", ag->o.enroll_token, body, &reply, &n);
	free(body);
	if (s != 201 && s != 200) {
		char msg[256];
		if (s < 0) {
			rf_log_warn("enroll: cannot reach the server at %s: %s", ag->o.server,
				    ag->net_err[0] ? ag->net_err : rf_strerror(s));
			free(reply);
			return s;
		}
		rf_checkin_error_message(reply, n, msg, sizeof(msg));
		if (s == 401 || s == 403)
			rf_log_error(
			    "enrollment refused by the server (HTTP %d): %s; check the "
			    "enrollment token (`ringfence tenant token TENANT` prints a new one)",
			    s, msg);
		else
			rf_log_warn("enroll: the server answered HTTP %d: %s", s,
				    msg[0] ? msg : "(no message)");
		free(reply);
		return -EACCES;
	}
	r = rf_checkin_enroll_parse(reply, n, &er, &d);
	free(reply);
	if (r < 0) {
		rf_log_warn("enroll: %s", d.first);
		return r;
	}
	if ((r = rf_store_credential_set(ag->st, er.credential)) < 0 ||
	    (r = rf_store_set_device_id(ag->st, er.device_id)) < 0 ||
	    (er.ring[0] && (r = rf_store_set_ring(ag->st, er.ring)) < 0) ||
	    (r = rf_store_commit(ag->st)) < 0) {
		rf_log_error("store: cannot save the credential: %s", rf_strerror(r));
		return r;
	}
	snprintf(ag->credential, sizeof(ag->credential), "%s", er.credential);
	snprintf(ag->device_id, sizeof(ag->device_id), "%s", er.device_id);
	/* P6: the operator's ring is the one the signed schedule is checked against; a server
	 * that names another is not followed (docs/agent.md, "Which ring") */
	if (er.ring[0] && ag->o.ring && strcmp(er.ring, ag->o.ring) != 0)
		rf_log_warn("enroll: the server put this device in ring '%s', but this agent was "
			    "given ring '%s' (--ring or RINGFENCE_RING): releases are still taken "
			    "only when the signed schedule admits ring '%s'",
			    er.ring, ag->o.ring, ag->o.ring);
	else if (er.ring[0])
		snprintf(ag->ring, sizeof(ag->ring), "%s", er.ring);
	if (er.poll_interval)
		ag->poll = er.poll_interval;
	rf_log_notice("enrolled as %s (ring %s)", ag->device_id, ag->ring[0] ? ag->ring : "?");
	return 0;
}

/* Queue a "rejected" report of hash h with its cause; the guard's own report (its reason
 * class only) is replaced with the precise words. */
static void report_rejected(struct agent *ag, const uint8_t *h, const char *target, const char *why,
			    const char *cause)
{
	uint64_t rid;
	size_t n;

	rf__agent_feed(ag, RF_GUARD_EV_REJECTED, h, 0);
	n = rf_store_report_count(ag->st);
	if (n > 0) {
		const struct rf_store_report *last = rf_store_report_at(ag->st, n - 1);
		if (strcmp(last->event, "rejected") == 0 && last->has_hash &&
		    memcmp(last->hash, h, 32) == 0 && rf_store_report_done(ag->st, last->id) < 0)
			rf_log_debug("report queue changed under us");
	}
	if (rf_store_report_add(ag->st, "rejected", h, target, why, rf_now_wall(), &rid) < 0 ||
	    rf_store_report_cause(ag->st, rid, cause) < 0)
		rf_log_warn("store: cannot record the rejection report");
}

/* A content verdict on the pack (it fails this agent's checks: verifier, quarantine, no valid
 * signed schedule): remembered for the run (refused.h), so a repeated offer is not fetched
 * again, and reported with cause "content". */
static void reject(struct agent *ag, const uint8_t *h, const char *target, const char *why)
{
	char hex[65];

	hex32(h, hex);
	rf_log_warn("rejected %s %s: %s", target, hex, why);
	rf_refused_add(&ag->refused, h);
	report_rejected(ag, h, target, why, "content");
	if (rf_store_commit(ag->st) < 0)
		rf_log_warn("store: cannot record the rejection report");
}

static uint64_t transit_wait(void *ud, unsigned failures)
{
	struct agent *ag = ud;

	/* the check-in backoff: the first retry after about a poll interval (at most 5 s), then
	 * doubling to 15 min */
	return rf_checkin_backoff_ms(failures ? failures - 1 : 0, ag->poll, rnd(ag));
}

/* A delivery failure ("transit": TUF metadata, signatures, a hash or a download that does not
 * match): not a verdict on the pack, so a bad mirror never halts a good release (docs/protocol.md,
 * Report) and a repaired repository is taken without a restart. The release is tried again
 * after a backoff (refused.h, rf_transit); the failure is counted in the store (`status`:
 * delivery failures) at every attempt and reported to the server only when its reason changes
 * or at most every RF_AGENT_BACKOFF_MAX_S. */
static void transit_failed(struct agent *ag, const uint8_t *h, const char *target, const char *why)
{
	unsigned k;
	uint64_t w;
	char hex[65];
	bool say = rf_transit_failed(&ag->transit, h, why, now_ms(), transit_wait, ag, &k, &w);

	hex32(h, hex);
	rf_store_add_transit_failure(ag->st);
	if (say) {
		rf_log_warn(
		    "rejected %s %s: %s (delivery failure %u in a row, not a verdict on the "
		    "pack: tried again in %llu s)",
		    target, hex, why, k, (unsigned long long)(w + 999) / 1000);
		report_rejected(ag, h, target, why, "transit");
	} else {
		rf_log_info(
		    "%s %s: delivery failed again: %s (failure %u in a row: tried again in %llu s)",
		    target, hex, why, k, (unsigned long long)(w + 999) / 1000);
	}
	if (rf_store_commit(ag->st) < 0)
		rf_log_warn("store: cannot record the delivery failure");
}

static void keep_last(void *ud, int code, const char *msg)
{
	snprintf(ud, RF_DIAG_MSG_MAX, "%s", msg);
}

/* What a failed TUF refresh says: the client names the metadata file a download failed for
 * ("timestamp.json: download failed: HTTP 404"), then, for snapshot, targets and delegated
 * roles, which role it was; the last message is kept beside the first when they differ. */
static void tuf_refresh_failure(const struct rf_diag *d, const char *last, char *out, size_t cap)
{
	if (d->count > 1 && strcmp(last, d->first) != 0)
		snprintf(out, cap, "%s (%s)", last, d->first);
	else
		snprintf(out, cap, "%s", d->first[0] ? d->first : "no detail");
}

/* Fetch a release through TUF, check schedule, quarantine and manifest; hand it to the guard. */
static void take_release(struct agent *ag, const struct rf_checkin_release *rel)
{
	struct rf_tuf_client_opts to = {0};
	struct rf_tuf_client *tc = NULL;
	struct rf_tuf_target *t = NULL;
	struct rf_diag d = {0};
	char mdir[PATH_MAX], murl[1024], turl[1024], ddir[PATH_MAX], hex[65], why[512];
	char last[RF_DIAG_MSG_MAX] = "";
	char *file = NULL;
	uint8_t *p = NULL, h[32];
	size_t n = 0;
	int r;

	hex32(rel->sha256, hex);
	if (rf_refused_has(&ag->refused, rel->sha256) ||
	    rf_transit_waiting(&ag->transit, rel->sha256, now_ms()))
		return;
	if (rf_store_is_quarantined(ag->st, rel->sha256)) {
		reject(ag, rel->sha256, rel->target, "quarantined on this device");
		return;
	}
	snprintf(mdir, sizeof(mdir), "%s/tuf", rf_store_dir(ag->st));
	snprintf(ddir, sizeof(ddir), "%s/downloads", rf_store_dir(ag->st));
	snprintf(murl, sizeof(murl), "%s/metadata/", ag->o.repo_url);
	snprintf(turl, sizeof(turl), "%s/targets/", ag->o.repo_url);
	to.metadata_dir = mdir;
	to.metadata_url = murl;
	to.target_base_url = turl;
	to.now = rf_now_wall();
	d.emit = keep_last;
	d.userdata = last;
	if ((r = rf_tuf_client_new(&to, &tc, &d)) < 0 || (r = rf_tuf_client_refresh(tc, &d)) < 0) {
		char what[RF_DIAG_MSG_MAX + 64];
		tuf_refresh_failure(&d, last, what, sizeof(what));
		rf_log_warn("TUF: cannot refresh the metadata from %s (for %s): %s: %s", murl,
			    rel->target, rf_strerror(r), what);
		if (r == -EKEYREJECTED || r == -ESTALE || r == -EBADMSG)
			transit_failed(ag, rel->sha256, rel->target,
				       d.first[0] ? d.first : rf_strerror(r));
		goto out;
	}
	if ((r = rf_tuf_client_get_target(tc, rel->target, &t, &d)) < 0) {
		rf_log_warn("TUF: %s: %s (%s)", rel->target, rf_strerror(r), d.first);
		if (r == -EKEYREJECTED || r == -ESTALE || r == -EBADMSG)
			transit_failed(ag, rel->sha256, rel->target,
				       d.first[0] ? d.first : rf_strerror(r));
		goto out;
	}
	if (strcmp(t->sha256, hex) != 0) {
		transit_failed(ag, rel->sha256, rel->target,
			       "the server's hash is not the signed one");
		goto out;
	}
	/* P6: the signed schedule must admit this device now, whatever the server says */
	{
		struct rf_rollout_schedule s;
		bool ok = false;
		int64_t now = rf_now_wall();

		if (!t->custom_json ||
		    rf_rollout_schedule_parse((const uint8_t *)t->custom_json,
					      strlen(t->custom_json), &s, &d) < 0) {
			reject(ag, rel->sha256, rel->target,
			       "no valid signed schedule in the target's metadata");
			goto out;
		}
		uint32_t b = rf_rollout_bucket(s.bucket_key, ag->device_id, strlen(ag->device_id));
		if (ag->ring[0]) {
			ok = rf_rollout_schedule_admits(&s, ag->ring, b, now);
		} else {
			for (unsigned i = 0; i < s.nrings && !ok; i++)
				ok = rf_rollout_admit_time(&s, (int)i, b) <= now;
		}
		if (!ok) {
			rf_log_warn(
			    "offer of %s refused: the signed schedule does not admit this device "
			    "(ring %s, bucket %u) yet",
			    rel->target, ag->ring[0] ? ag->ring : "?", b);
			goto out; /* not a verdict on the pack: it may be taken later */
		}
	}
	if (rf_mkdir_p(ddir, 0700) < 0 ||
	    (r = rf_tuf_client_download_target(tc, t, ddir, &file, &d)) < 0) {
		rf_log_warn("TUF: download %s: %s (%s)", rel->target, rf_strerror(r), d.first);
		if (r == -EBADMSG || r == -E2BIG)
			transit_failed(ag, rel->sha256, rel->target, d.first);
		goto out;
	}
	r = rf_file_read(file, RF_FILE_MAX, &p, &n);
	unlink(file);
	if (r < 0) {
		rf_log_warn("%s: %s", file, rf_strerror(r));
		goto out;
	}
	rf_sha256(p, n, h);
	if (memcmp(h, rel->sha256, 32) != 0) {
		transit_failed(ag, rel->sha256, rel->target,
			       "downloaded bytes do not match the signed hash");
		goto out;
	}
	struct rf_verifier_limits vl = ag->o.vlim;
	if (ag->o.vfault_hash[0] && strcmp(ag->o.vfault_hash, hex) != 0)
		vl.fault = RF_VERIFIER_FAULT_NONE;
	size_t ml;
	const uint8_t *mb = ag->manifest->bytes(&ml);
	r = rf_verifier_run(p, n, mb, ml, &vl, why, sizeof(why));
	if (r == -ENOEXEC) {
		reject(ag, h, rel->target, why);
		goto out;
	}
	if (r < 0) {
		rf_log_warn("cannot run the verifier: %s", rf_strerror(r));
		goto out;
	}
	if ((r = rf_store_pack_put(ag->st, p, n, rel->target, NULL)) < 0 ||
	    (r = rf_store_report_add(ag->st, "installed", h, rel->target, "", rf_now_wall(),
				     NULL)) < 0) {
		rf_log_error("store: cannot save %s: %s", rel->target, rf_strerror(r));
		goto out;
	}
	rf_transit_forget(&ag->transit, h);
	rf_log_notice("installed %s %s (TUF-verified, manifest-verified)", rel->target, hex);
	rf__agent_feed(ag, RF_GUARD_EV_CANDIDATE, h, 0);
out:
	free(p);
	free(file);
	rf_tuf_target_free(t);
	rf_tuf_client_free(tc);
}

/* The server's rollback order. The guard abandons a trial for a distinct last known good, and
 * the release rollback_to names (if it is not what runs, nor refused here) is taken like an
 * install. With neither there is nothing to go back to (issue 10): the agent keeps running what
 * it runs (or its safe mode), keeps checking in and takes the fix when it is offered; it says
 * so once, not at every check-in that repeats the order. */
static void on_rollback(struct agent *ag, const struct rf_checkin_reply *rep)
{
	const struct rf_guard_state *g = rf_store_guard(ag->st);
	const char *why = rep->reason[0] ? rep->reason : "no reason given";
	uint8_t cur[32];
	char hex[65];
	bool has_cur = rf_guard_current(g, cur);
	bool to_lkg = g->mode == RF_GUARD_MODE_TRIAL && g->has_lkg && memcmp(g->lkg, g->trial, 32);
	bool to_named = rep->has_rollback_to &&
			!rf_refused_has(&ag->refused, rep->rollback_to.sha256) &&
			!(has_cur && memcmp(cur, rep->rollback_to.sha256, 32) == 0);

	if (!to_lkg && !to_named) {
		if (!ag->rollback_idle) {
			if (has_cur)
				hex32(cur, hex);
			rf_log_warn(
			    "server: roll back (%s), but there is nothing to go back to other "
			    "than what runs (%s%s%s): keeping it, checking in for a fix",
			    why,
			    has_cur ? rf_store_pack_name(ag->st, cur) : rf_guard_mode_name(g->mode),
			    has_cur ? " " : "", has_cur ? hex : "");
			ag->rollback_idle = true;
		}
		return;
	}
	ag->rollback_idle = false;
	rf_log_warn("server: roll back (%s) to %s", why,
		    to_lkg ? "the last known good" : rep->rollback_to.target);
	if (to_lkg)
		rf__agent_feed(ag, RF_GUARD_EV_ROLLBACK, NULL, 0);
	if (rep->has_rollback_to) {
		g = rf_store_guard(ag->st);
		if (!(rf_guard_current(g, cur) && memcmp(cur, rep->rollback_to.sha256, 32) == 0))
			take_release(ag, &rep->rollback_to);
	}
}

/* The server no longer takes this device's credential (401, or the 403 of a credential issued
 * to this device id before a later enrollment: another enrollment of the same id, a store
 * restored from a backup, a cloned machine). With the enrollment token the agent enrolls again
 * at the next check-in, which the backoff delays (it grows while enrolling or the new
 * credential keeps failing: never a tight loop). Without one it cannot get back on the update
 * channel by itself: at start-up (no check-in of this run answered yet) that is a
 * configuration error and the agent exits 2; later in a run it keeps its content running and
 * the credential, and tries it again at each backed-off check-in (a server's answer never
 * stops detection). docs/agent.md, "Credentials". */
static void credential_rejected(struct agent *ag, int status, const char *msg)
{
	if (ag->o.enroll_token) {
		rf_log_warn("check-in: the server does not accept this device's credential (HTTP "
			    "%d: %s): enrolling again with the enrollment token",
			    status, msg[0] ? msg : "no message");
		ag->credential[0] = 0;
		return;
	}
	rf_log_error("check-in: the server does not accept this device's credential (HTTP %d: "
		     "%s) and there is no enrollment token to enroll again: give "
		     "RINGFENCE_ENROLL_TOKEN (or --enroll-token) and restart the agent%s",
		     status, msg[0] ? msg : "no message",
		     ag->checked_in ? "; until then it keeps its content running and tries again"
				    : "");
	if (!ag->checked_in)
		ag->exit_code = 2;
}

void rf__agent_checkin(struct agent *ag)
{
	struct rf_checkin_reply rep;
	struct rf_diag d = {0};
	char *body = NULL;
	uint8_t *reply = NULL;
	size_t n;
	int s, r;
	uint8_t cur[32];
	const struct rf_guard_state *g;
	uint64_t wait;

	ag->retry_after_s = 0;
	if (!ag->credential[0] && enroll(ag) < 0)
		goto failed;
	rf__agent_flush_reports(ag);
	if ((r = rf_checkin_body_checkin(&ag->id, ag->st, &body)) < 0) {
		rf_log_error("check-in body: %s", rf_strerror(r));
		goto failed;
	}
	s = rf__agent_http_post(ag, "/v1/checkin", ag->credential, body, &reply, &n);
	free(body);
	if (s < 0) {
		rf_log_warn("check-in: cannot reach the server at %s: %s", ag->o.server,
			    ag->net_err[0] ? ag->net_err : rf_strerror(s));
		goto failed;
	}
	if (s != 200) {
		char msg[256];
		rf_checkin_error_message(reply, n, msg, sizeof(msg));
		if (rf_checkin_credential_rejected(s, reply, n))
			credential_rejected(ag, s, msg);
		else
			rf_log_warn("check-in: the server answered HTTP %d: %s", s,
				    msg[0] ? msg : "(no message)");
		free(reply);
		if (ag->exit_code)
			return;
		goto failed;
	}
	r = rf_checkin_reply_parse(reply, n, &rep, &d);
	free(reply);
	if (r < 0) {
		rf_log_warn("check-in reply: %s", d.first);
		goto failed;
	}
	ag->failures = 0;
	ag->checked_in = true;
	if (rep.poll_interval)
		ag->poll = rep.poll_interval;
	g = rf_store_guard(ag->st);
	bool has_cur = rf_guard_current(g, cur);
	if (rep.action != RF_CHECKIN_ROLLBACK)
		ag->rollback_idle = false;
	if (rep.action != RF_CHECKIN_STAY)
		ag->stay_reason[0] = 0;
	switch (rep.action) {
	case RF_CHECKIN_INSTALL:
		if (!(has_cur && memcmp(cur, rep.release.sha256, 32) == 0))
			take_release(ag, &rep.release);
		break;
	case RF_CHECKIN_ROLLBACK:
		on_rollback(ag, &rep);
		break;
	default: {
		/* said once per reason: "waiting-for-fix" repeats at every check-in */
		const char *why = rep.reason[0] ? rep.reason : "no reason given";
		if (strcmp(ag->stay_reason, why) != 0) {
			rf_log_info("server: stay (%s)", why);
			snprintf(ag->stay_reason, sizeof(ag->stay_reason), "%s", why);
		}
		break;
	}
	}
	rf__agent_flush_reports(ag);
	ag->next_checkin_ms = now_ms() + rf_checkin_delay_ms(ag->poll, rnd(ag));
	return;
failed:
	/* randomized exponential backoff (rf_checkin_backoff_ms) */
	wait = rf_checkin_backoff_ms(ag->failures, ag->poll, rnd(ag));
	/* A server that said when to come back (503 Retry-After: its database is away) is not
	 * asked again sooner; the backoff still grows while it keeps failing. */
	if (wait < (uint64_t)ag->retry_after_s * 1000) {
		wait = (uint64_t)ag->retry_after_s * 1000;
		rf_log_info("server asked to retry after %u s", ag->retry_after_s);
	}
	ag->next_checkin_ms = now_ms() + wait;
	ag->failures++;
	rf_log_info("next check-in in %llu ms (failure %u)",
		    (unsigned long long)(ag->next_checkin_ms - now_ms()), ag->failures);
}