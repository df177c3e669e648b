/*
 * The audit trail: every operator action (release create, hold, halt, resume, rollback; rings,
 * tenants, tokens) and every gate decision that changed a release's state, stored through the
 * store (rf_db_audit_add: durable before it returns) and logged as one line with a syslog
 * priority (journald reads the "<N>" prefix ringfenced writes), and GET /v1/admin/audit.
 *
 * Invariants: an entry is written after the change it records was committed (a failed action
 * leaves no entry); if the entry itself cannot be stored the change stands (it is done and
 * acknowledged) and the log line says, at priority error, that the entry was not stored. Log
 * lines are one line: control characters of operator text are replaced by '?'. Called with
 * rf_server.lock held, like every handler that changes state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "server/server-internal.h"

/* Replace control bytes (newlines in a halt reason) so an entry stays one log line. */
static void one_line(char *p)
{
	for (; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

int rf__srv_audit(struct rf_server *s, int prio, const char *actor, const char *action,
		  int64_t release_id, const char *subject, const char *fmt, ...)
{
	char detail[RF_SRV_TEXT_MAX * 2], line[RF_SRV_TEXT_MAX * 3];
	struct rf_db_audit a = {
	    .time = rf__srv_now(s),
	    .actor = actor,
	    .action = action,
	    .release_id = release_id,
	    .subject = subject ? subject : "",
	    .detail = detail,
	};
	int64_t id = 0;
	va_list ap;
	int e;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	one_line(detail);
	e = rf_db_audit_add(s->db, &a, &id);
	if (e < 0)
		atomic_fetch_add(&s->m_audit_failures, 1);
	if (!s->log)
		return e;
	if (e < 0)
		snprintf(line, sizeof(line), "audit NOT STORED (%s): ", rf_strerror(e));
	else
		snprintf(line, sizeof(line), "audit #%lld: ", (long long)id);
	size_t n = strlen(line);
	snprintf(line + n, sizeof(line) - n, "%s %s", actor, action);
	n = strlen(line);
	if (release_id)
		snprintf(line + n, sizeof(line) - n, " release %lld", (long long)release_id);
	n = strlen(line);
	if (subject && *subject)
		snprintf(line + n, sizeof(line) - n, " '%s'", subject);
	n = strlen(line);
	if (*detail)
		snprintf(line + n, sizeof(line) - n, ": %s", detail);
	one_line(line);
	s->log(s->log_ud, e < 0 ? 3 : prio, line);
	return e;
}

void rf__srv_set_actor(struct rf_server *s, const uint8_t token_hash[32])
{
	char hex[65];

	rf_hex_encode(token_hash, 32, hex);
	snprintf(s->actor, sizeof(s->actor), "admin:%.8s", hex);
}

/* One "key=value" of a query: value as an unsigned integer. 0 found, 1 absent, -1 malformed. */
static int query_u64(const char *q, const char *key, uint64_t *ret)
{
	size_t kn = strlen(key);

	while (q && *q) {
		const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
		if ((size_t)(end - q) > kn && !strncmp(q, key, kn) && q[kn] == '=') {
			char v[24];
			size_t vn = (size_t)(end - q) - kn - 1;
			if (vn == 0 || vn >= sizeof(v))
				return -1;
			memcpy(v, q + kn + 1, vn);
			v[vn] = 0;
			return rf_parse_u64(v, ret) == 0 && *ret <= INT64_MAX ? 0 : -1;
		}
		q = amp ? amp + 1 : NULL;
	}
	return 1;
}

/* Every key of q is one of the known ones. */
static bool query_known(const char *q)
{
	static const char *const keys[] = {"release=", "before=", "limit="};

	while (q && *q) {
		bool ok = false;
		for (size_t i = 0; i < RF_ARRAY_SIZE(keys); i++)
			ok |= !strncmp(q, keys[i], strlen(keys[i]));
		if (!ok)
			return false;
		q = strchr(q, '&');
		if (q)
			q++;
	}
	return true;
}

json_t *rf__srv_audit_json(const struct rf_db_audit *a)
{
	char iso[32];

	rf__srv_iso8601(a->time, iso);
	return json_pack("{s:I,s:I,s:s,s:s,s:s,s:I,s:s,s:s}", "id", (json_int_t)a->id, "time",
			 (json_int_t)a->time, "time_utc", iso, "actor", a->actor, "action",
			 a->action, "release", (json_int_t)a->release_id, "subject", a->subject,
			 "detail", a->detail);
}

static int collect(void *ud, const struct rf_db_audit *a)
{
	json_t *o = rf__srv_audit_json(a);

	if (!o || json_array_append_new(ud, o) < 0)
		return -ENOMEM;
	return 0;
}

int rf__srv_admin_audit(struct rf_server *s, const struct rf_server_request *q,
			struct rf_server_reply *r)
{
	uint64_t release = 0, before = 0, limit = 50;
	json_t *a;
	int e;

	if (strcmp(q->method, "GET"))
		return rf__srv_reply_error(r, 405, "method_not_allowed", NULL,
					   "%s not allowed here", q->method);
	if (!query_known(q->query))
		return rf__srv_reply_error(r, 400, "invalid_field", "query",
					   "the audit trail takes release=ID, before=ID and "
					   "limit=N (1..%u)",
					   RF_SRV_AUDIT_PAGE_MAX);
	if (query_u64(q->query, "release", &release) < 0 ||
	    query_u64(q->query, "before", &before) < 0 ||
	    query_u64(q->query, "limit", &limit) < 0 || limit == 0 || limit > RF_SRV_AUDIT_PAGE_MAX)
		return rf__srv_reply_error(r, 400, "invalid_field", "query",
					   "release and before must be ids, limit 1..%u",
					   RF_SRV_AUDIT_PAGE_MAX);
	a = json_array();
	if (!a)
		return rf__srv_reply_error(r, 503, "unavailable", NULL, "out of memory");
	e = rf_db_audit_list(s->db, (int64_t)release, (int64_t)before, (unsigned)limit, collect, a);
	if (e < 0) {
		json_decref(a);
		return rf__srv_reply_error(r, 503, "unavailable", NULL, "storage: %s",
					   rf_strerror(e));
	}
	size_t n = json_array_size(a);
	json_t *next =
	    n == limit ? json_incref(json_object_get(json_array_get(a, n - 1), "id")) : json_null();
	return rf__srv_reply_json(r, 200,
				  json_pack("{s:o,s:o}", "entries", a, "next_before", next));
}

void rf__srv_audit_action(struct rf_server *s, const struct rf__srv_release *rel, const char *act,
			  const char *why, bool force, uint64_t stranded)
{
	char action[32];

	snprintf(action, sizeof(action), "release.%s", act);
	if (!strcmp(act, "resume"))
		rf__srv_audit(s, 5, s->actor, action, rel->id, rel->target,
			      "now %s (failures before now no longer count)",
			      rf_rollout_status_name(rel->st.status));
	else if (stranded)
		rf__srv_audit(s, 5, s->actor, action, rel->id, rel->target,
			      "%s; forced: %llu devices wait for a fix", why,
			      (unsigned long long)stranded);
	else
		rf__srv_audit(s, 5, s->actor, action, rel->id, rel->target, "%s%s", why,
			      force ? " (forced)" : "");
}

void rf__srv_audit_tenant(struct rf_server *s, const char *action, const struct rf__srv_tenant *t,
			  const char *pin)
{
	char hex[65];

	/* Never the token: the first 8 hex digits of its SHA-256 name it. */
	rf_hex_encode(t->token_hash, 32, hex);
	if (!pin) {
		rf__srv_audit(s, 5, s->actor, action, 0, t->name,
			      "new enrollment token %.8s (the old one no longer enrolls)", hex);
		return;
	}
	char win[32] = "none";
	if (t->win_start_min >= 0 && t->win_end_min >= 0)
		snprintf(win, sizeof(win), "%02d:%02d-%02d:%02d UTC", (int)(t->win_start_min / 60),
			 (int)(t->win_start_min % 60), (int)(t->win_end_min / 60),
			 (int)(t->win_end_min % 60));
	rf__srv_audit(s, 5, s->actor, action, 0, t->name,
		      "ring %s, pin %s, maintenance window %s, enrollment token %.8s",
		      t->ring[0] ? t->ring : "(as enrolled)", pin, win, hex);
}

void rf__srv_audit_gate(struct rf_server *s, const struct rf__srv_release *rel,
			const struct rf_rollout_eval *ev, const struct rf_rollout_state *ns)
{
	const struct rf_rollout_schedule *sc = &rel->sched;

	if (ev->halted) {
		int k = ns->halt_ring;
		const struct rf_rollout_health *h = k >= 0 ? &rel->health[k] : NULL;
		const struct rf_rollout_health *b = k >= 0 ? &rel->base[k] : NULL;
		const struct rf_rollout_check *c = k >= 0 ? &ev->checks[k] : NULL;
		if (!h) {
			rf__srv_audit(s, 4, "gate", "gate.halt", rel->id, rel->target, "%s",
				      ns->halt_reason);
			return;
		}
		/* The evidence, kept in the trail whatever happens to the release afterwards. */
		rf__srv_audit(s, 4, "gate", "gate.halt", rel->id, rel->target,
			      "ring %s, %s gate p=%.3g: failed %llu of %llu that took it (crashes "
			      "%llu, rollbacks %llu, rejections %llu, silent %llu, alerts %llu, "
			      "exposure %llu s); baseline failed %llu of %llu (crashes %llu, "
			      "exposure %llu s): %s",
			      sc->rings[k].name, rf_rollout_metric_name(ns->halt_metric),
			      c->p_value, (unsigned long long)h->failed,
			      (unsigned long long)h->devices, (unsigned long long)h->crashes,
			      (unsigned long long)h->rollbacks, (unsigned long long)h->rejections,
			      (unsigned long long)h->silent, (unsigned long long)h->alerts,
			      (unsigned long long)h->exposure_s, (unsigned long long)b->failed,
			      (unsigned long long)b->devices, (unsigned long long)b->crashes,
			      (unsigned long long)b->exposure_s, ns->halt_reason);
		return;
	}
	if (ev->opened >= 0)
		rf__srv_audit(s, 5, "gate", "gate.open", rel->id, rel->target,
			      "ring %s opened at %.2f %%", sc->rings[ev->opened].name,
			      sc->rings[ev->opened].steps[0].percent_bp / 100.0);
	if (ev->stepped >= 0) {
		int k = ev->stepped;
		rf__srv_audit(s, 5, "gate", "gate.step", rel->id, rel->target,
			      "ring %s to %.2f %%: %llu healthy of %llu needed, %s p=%.3g",
			      sc->rings[k].name,
			      sc->rings[k].steps[ns->rings[k].step].percent_bp / 100.0,
			      (unsigned long long)rel->health[k].healthy,
			      (unsigned long long)ev->checks[k].required_healthy,
			      rf_rollout_metric_name(ev->checks[k].metric), ev->checks[k].p_value);
	}
	if (ev->completed >= 0) {
		int k = ev->completed;
		rf__srv_audit(s, 5, "gate", "gate.complete", rel->id, rel->target,
			      "ring %s complete: %llu healthy of %llu needed, %s p=%.3g",
			      sc->rings[k].name, (unsigned long long)rel->health[k].healthy,
			      (unsigned long long)ev->checks[k].required_healthy,
			      rf_rollout_metric_name(ev->checks[k].metric), ev->checks[k].p_value);
	}
}
