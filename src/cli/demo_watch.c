/*
 * `ringfence demo`: what the demo reads back, never what it intended. The server's operator API
 * (release status per ring), each agent's durable store (read-only) and its log (its own words
 * about what it loaded, rejected and reported), the progress lines, and the conditions the acts
 * wait for (bounded waits that also check the signed ring order, P6, in every snapshot).
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/guard.h"
#include "agent/store.h"
#include "cli/cli.h"
#include "cli/demo.h"
#include "common/http.h"
#include "common/opt.h"
#include "common/util.h"
#include "ringfence/limits.h"

/* ---- the operator API ------------------------------------------------------------------------ */

/* One operator (or public) request. *ret gets the parsed JSON body (caller frees). Returns the
 * HTTP status, or a negative errno when the server could not be reached. */
long rf__demo_api(struct demo *d, const char *method, const char *path, json_t *body, json_t **ret)
{
	char url[DEMO_PATH], auth[128];
	const char *const headers[] = {auth, body ? "Content-Type: application/json" : NULL, NULL};
	struct rf_http_request q = {.url = url,
				    .method = method,
				    .headers = headers,
				    .max = RF_DEMO_REPLY_MAX,
				    .timeout_s = 10};
	struct rf_http_reply rep;
	char *text = NULL;
	long status;

	if (ret)
		*ret = NULL;
	if (!d->curl && !(d->curl = curl_easy_init()))
		return -ENOMEM;
	q.handle = d->curl; /* one connection for the whole demo */
	rf__demo_pathf(url, sizeof(url), "%s%s", d->url, path);
	rf__demo_pathf(auth, sizeof(auth), "Authorization: Bearer %s", d->admin);
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		q.body = text ? text : "{}";
		q.body_len = strlen(q.body);
	}
	if (rf_http_fetch(&q, &rep, NULL) < 0) {
		free(text);
		return -ECONNREFUSED;
	}
	status = rep.status;
	free(text);
	if (ret && rep.len)
		*ret = json_loadb((const char *)rep.body, rep.len, 0, NULL);
	free(rep.body);
	return status;
}

long long rf__demo_jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

const char *rf__demo_jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

json_t *rf__demo_release_get(struct demo *d, const struct pack *pk)
{
	char path[64];
	json_t *j = NULL;

	rf__demo_pathf(path, sizeof(path), "/v1/admin/releases/%lld", pk->id);
	if (rf__demo_api(d, "GET", path, NULL, &j) != 200) {
		json_decref(j);
		return NULL;
	}
	return j;
}

json_t *rf__demo_ring_of(json_t *rel, int ring)
{
	json_t *rings = json_object_get(rel, "rings"), *r;
	size_t i;

	json_array_foreach(
	    rings, i, r) if (!strcmp(rf__demo_jstr(r, "ring"), rf__demo_ring_names[ring])) return r;
	return NULL;
}

long long rf__demo_ring_health(json_t *rel, int ring, const char *k)
{
	json_t *r = rf__demo_ring_of(rel, ring);
	return r ? rf__demo_jint(json_object_get(r, "health"), k) : 0;
}

/* ---- agents' real state -----------------------------------------------------------------------
 */

void rf__demo_agent_read(struct demo *d, const struct agent *a, struct astate *s)
{
	char store[DEMO_PATH];
	struct rf_store *st = NULL;
	struct rf_diag dg = {0};
	const struct rf_guard_state *g;

	memset(s, 0, sizeof(*s));
	rf__demo_agent_paths(a, "store", store, sizeof(store));
	if (access(store, F_OK) < 0 || rf_store_open_readonly(store, &st, &dg) < 0)
		return;
	g = rf_store_guard(st);
	s->ok = true;
	s->mode = g->mode;
	s->has_cur = rf_guard_current(g, s->cur);
	s->has_lkg = g->has_lkg;
	memcpy(s->lkg, g->lkg, 32);
	for (int k = 0; k < NPACKS; k++) {
		uint8_t h[32];
		if (rf_hex_decode(d->pk[k].hex, 64, h, 32) < 0)
			continue;
		s->quarantined[k] = rf_store_is_quarantined(st, h);
		s->stored[k] = rf_store_pack_exists(st, h);
	}
	s->pending = rf_store_report_count(st);
	rf_store_free(st);
}

static bool is_pack(struct demo *d, const uint8_t h[32], int k)
{
	char hex[65];

	rf_hex_encode(h, 32, hex);
	return !strcmp(hex, d->pk[k].hex);
}

/* Settled on the newest good release (d->good): running it as its last known good. */
bool rf__demo_on_good(struct demo *d, const struct astate *s)
{
	return s->ok && s->mode == RF_GUARD_MODE_LKG && s->has_cur && is_pack(d, s->cur, d->good) &&
	       s->has_lkg && is_pack(d, s->lkg, d->good);
}

/* Occurrences of needle in the agent's log (its own words about what it did). */
unsigned rf__demo_log_count(const struct agent *a, const char *needle)
{
	char path[DEMO_PATH];
	uint8_t *p = NULL;
	size_t n = 0;
	unsigned c = 0;

	rf__demo_agent_paths(a, "agent.log", path, sizeof(path));
	if (rf_file_read(path, 64u << 20, &p, &n) < 0)
		return 0;
	for (const char *q = (const char *)p;
	     (q = memmem(q, n - (size_t)(q - (const char *)p), needle, strlen(needle))); q++)
		c++;
	free(p);
	return c;
}

unsigned rf__demo_loads_of(struct demo *d, const struct agent *a, int k)
{
	char needle[96];

	rf__demo_pathf(needle, sizeof(needle), "load trial %s", d->pk[k].hex);
	return rf__demo_log_count(a, needle);
}

/* Crashes of pack k the agent counted and reported (the guard's own record, one per attempt). */
unsigned rf__demo_crashes_of(struct demo *d, const struct agent *a, int k)
{
	char needle[96];

	rf__demo_pathf(needle, sizeof(needle), "report crashed: %s", d->pk[k].hex);
	return rf__demo_log_count(a, needle);
}

/* The agent's log names the pack at all: it was offered it and fetched (or tried to). */
bool rf__demo_saw(struct demo *d, const struct agent *a, int k)
{
	char n1[160], n2[160];

	rf__demo_pathf(n1, sizeof(n1), "installed %s", d->pk[k].target);
	rf__demo_pathf(n2, sizeof(n2), "rejected %s", d->pk[k].target);
	return rf__demo_log_count(a, n1) > 0 || rf__demo_log_count(a, n2) > 0 ||
	       rf__demo_loads_of(d, a, k) > 0;
}

/* ---- progress lines
 * -------------------------------------------------------------------------------- */

void rf__demo_show_rings(struct demo *d, struct pack *pk)
{
	json_t *rel = rf__demo_release_get(d, pk);
	char line[512];
	size_t o = 0;

	if (!rel) {
		rf__demo_say(d, "  (server not answering)");
		return;
	}
	for (int r = 0; r < NRINGS; r++) {
		json_t *ring = rf__demo_ring_of(rel, r);
		int w = snprintf(line + o, sizeof(line) - o,
				 "%s%s %s took %lld healthy %lld failed %lld", r ? " | " : "",
				 rf__demo_ring_names[r], ring ? rf__demo_jstr(ring, "phase") : "?",
				 rf__demo_ring_health(rel, r, "devices"),
				 rf__demo_ring_health(rel, r, "healthy"),
				 rf__demo_ring_health(rel, r, "failed"));
		if (w > 0 && (size_t)w < sizeof(line) - o)
			o += (size_t)w;
	}
	rf__demo_say(d, "  %s: %s  [%s]", pk->target, rf__demo_jstr(rel, "status"), line);
	json_decref(rel);
}

/* Wait until pred holds (bounded), printing the release's rings every few seconds. */
/* P6 from the server's own status: in every snapshot, a ring that has devices on the release
 * comes after a ring that completed it (a ring opens only when the one before is complete). */
static void watch_order(struct demo *d, struct pack *pk)
{
	json_t *rel = rf__demo_release_get(d, pk);

	if (!rel)
		return;
	pk->snapshots++;
	for (int r = 1; r < NRINGS; r++) {
		json_t *prev = rf__demo_ring_of(rel, r - 1);
		if (rf__demo_ring_health(rel, r, "devices") > 0 &&
		    (!prev || strcmp(rf__demo_jstr(prev, "phase"), "complete"))) {
			pk->order_breaches++;
			rf__demo_say(d, "  P6: %s has devices in %s while %s is %s", pk->target,
				     rf__demo_ring_names[r], rf__demo_ring_names[r - 1],
				     prev ? rf__demo_jstr(prev, "phase") : "?");
		}
	}
	json_decref(rel);
}

bool rf__demo_wait_for(struct demo *d, unsigned timeout_s, struct pack *pk,
		       bool (*pred)(struct demo *, struct pack *))
{
	uint64_t deadline = rf__demo_now_ms() + (uint64_t)timeout_s * 1000;

	while (!rf__demo_stop_signal) {
		rf__demo_tick(d);
		if (pk)
			watch_order(d, pk);
		if (pred(d, pk))
			return true;
		if (rf__demo_now_ms() > deadline)
			return false;
		if (pk && !d->quiet && rf__demo_now_ms() >= d->last_status_ms + 4000) {
			rf__demo_show_rings(d, pk);
			d->last_status_ms = rf__demo_now_ms();
		}
		usleep(250000);
	}
	return false;
}

bool rf__demo_watch_gate(struct demo *d, struct pack *pk, unsigned timeout_s,
			 const char *watching)
{
	bool h;

	rf__demo_say(d, "Release %lld created%s", pk->id, watching);
	h = rf__demo_wait_for(d, timeout_s, pk, rf__demo_halted);
	rf__demo_show_rings(d, pk);
	return rf__demo_check(
	    d, h, "the server halted release %lld by itself: \"%s\" (%lld s after it was created)",
	    pk->id, pk->halt_reason, pk->halted_at - pk->created_at);
}

bool rf__demo_all_enrolled(struct demo *d, struct pack *pk)
{
	json_t *t = NULL;
	bool ok;

	(void)pk;
	ok = rf__demo_api(d, "GET", "/v1/admin/tenants/demo", NULL, &t) == 200 &&
	     rf__demo_jint(t, "devices") >= (long long)d->n;
	json_decref(t);
	return ok;
}

bool rf__demo_everyone_on_good(struct demo *d, struct pack *pk)
{
	json_t *rel;
	bool ok = true;

	for (unsigned i = 0; i < d->n && ok; i++) {
		struct astate s;
		if (d->ag[i].offline)
			continue;
		rf__demo_agent_read(d, &d->ag[i], &s);
		ok = rf__demo_on_good(d, &s);
	}
	if (!ok || !(rel = rf__demo_release_get(d, pk)))
		return false;
	long long healthy = 0, want = 0;
	for (unsigned i = 0; i < d->n; i++)
		want += !d->ag[i].offline;
	for (int r = 0; r < NRINGS; r++) {
		json_t *ring = rf__demo_ring_of(rel, r);
		if (!ring || strcmp(rf__demo_jstr(ring, "phase"), "complete"))
			ok = false;
		healthy += rf__demo_ring_health(rel, r, "healthy");
	}
	/* The server's own count, so that "healthy" is its verdict after probation too (P7). */
	ok = ok && healthy >= want;
	json_decref(rel);
	return ok;
}

bool rf__demo_halted(struct demo *d, struct pack *pk)
{
	json_t *rel = rf__demo_release_get(d, pk);
	bool ok;

	if (!rel)
		return false;
	ok = !strcmp(rf__demo_jstr(rel, "status"), "halted");
	if (ok) {
		pk->halted_at = rf__demo_jint(rel, "halted_at");
		rf__demo_pathf(pk->halt_reason, sizeof(pk->halt_reason), "%s",
			       rf__demo_jstr(rel, "halt_reason"));
	}
	json_decref(rel);
	return ok;
}

/* Every canary agent that loaded the bad pack runs the good one again as its last known good,
 * and quarantined the bad one if it used up its attempts (a host the server's halt reached
 * first leaves it on the rollback order instead: a halt is not a verdict on that device). */
bool rf__demo_canary_healed(struct demo *d, struct pack *pk)
{
	(void)pk;
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		struct astate s;
		if (a->offline || !rf__demo_loads_of(d, a, PACK_BUG))
			continue;
		rf__demo_agent_read(d, a, &s);
		if (!rf__demo_on_good(d, &s) ||
		    (rf__demo_crashes_of(d, a, PACK_BUG) >= 3 && !s.quarantined[PACK_BUG]))
			return false;
	}
	return true;
}
