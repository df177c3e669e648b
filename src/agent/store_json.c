/*
 * The agent store's state.json format: struct rf__store_state (store-internal.h) to text and
 * back. store.c does the durable reading and writing; nothing here touches a file.
 *
 * Format 1 is one JSON object: device_id, ring, the guard state (hashes as 64 hex digits,
 * quarantine fingerprints as 16), the target names of the packs it references, the quarantine
 * and outbox records, the report id counter and the event counters. Fields added to format 1
 * after it was first written (ring, cause, events_dropped, correlation_dropped,
 * transit_failures, alerts_lost, time_unparsed, correlation_late, correlation_future,
 * correlation_skipped, time_missing) are optional, so an older agent's state still opens; the
 * writer leaves out those counters while they are 0, and cause while it is empty. The parser trusts
 * nothing: it rejects duplicate keys, checks every type, range, string length and count against
 * the arrays it fills, and requires a guard state rf_guard_state_valid accepts, so a state it
 * accepted is one the store and the guard can use as it is, and one that serialises again (the
 * fuzz target, rf__store_state_parse, checks both).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/store-internal.h"
#include "common/util.h"
#include "ringfence/limits.h"

/* ---- writing ---------------------------------------------------------------------------- */

static json_t *hash_json(const uint8_t *h, bool has)
{
	char hex[2 * RF_GUARD_HASH_LEN + 1];

	if (!has)
		return json_null();
	rf_hex_encode(h, RF_GUARD_HASH_LEN, hex);
	return json_string(hex);
}

static json_t *state_to_json(const struct rf__store_state *s)
{
	const struct rf_guard_state *g = &s->g;
	json_t *guard, *qfp, *names, *q, *out, *root;
	char hex[2 * RF_GUARD_HASH_LEN + 1];

	qfp = json_array();
	for (unsigned i = 0; i < g->nquarantine; i++) {
		char fp[17];
		snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)g->quarantine[i]);
		json_array_append_new(qfp, json_string(fp));
	}
	guard = json_pack("{s:s, s:o, s:i, s:o, s:i, s:b, s:I, s:I, s:o, s:i}", "mode",
			  rf_guard_mode_name(g->mode), "trial", hash_json(g->trial, g->has_trial),
			  "trial_attempts", (int)g->trial_attempts, "last_good",
			  hash_json(g->lkg, g->has_lkg), "last_good_attempts", (int)g->lkg_attempts,
			  "clean", (int)g->clean, "crashes", (json_int_t)g->crashes, "rollbacks",
			  (json_int_t)g->rollbacks, "fingerprints", qfp, "fingerprint_next",
			  (int)g->qnext);
	names = json_object();
	for (unsigned i = 0; i < s->nnames; i++) {
		rf_hex_encode(s->names[i].hash, RF_GUARD_HASH_LEN, hex);
		json_object_set_new(names, hex, json_string(s->names[i].target));
	}
	q = json_array();
	for (size_t i = 0; i < s->nq; i++) {
		rf_hex_encode(s->q[i].hash, RF_GUARD_HASH_LEN, hex);
		json_array_append_new(q,
				      json_pack("{s:s, s:s, s:I}", "sha256", hex, "reason",
						s->q[i].reason, "time", (json_int_t)s->q[i].time));
	}
	out = json_array();
	for (size_t i = 0; i < s->nout; i++) {
		const struct rf_store_report *r = &s->out[i];
		json_t *x =
		    json_pack("{s:I, s:s, s:o, s:s, s:s, s:I}", "id", (json_int_t)r->id, "event",
			      r->event, "sha256", hash_json(r->hash, r->has_hash), "target",
			      r->target, "detail", r->detail, "time", (json_int_t)r->time);
		if (x && r->cause[0])
			json_object_set_new(x, "cause", json_string(r->cause));
		json_array_append_new(out, x);
	}
	root = json_pack("{s:i, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:I}", "format", 1, "device_id",
			 s->device_id, "guard", guard, "names", names, "quarantine", q, "outbox",
			 out, "next_report", (json_int_t)s->next_report, "events",
			 (json_int_t)s->events, "alerts", (json_int_t)s->alerts);
	if (root)
		json_object_set_new(root, "ring", json_string(s->ring));
	if (root && s->dropped)
		json_object_set_new(
		    root, "events_dropped",
		    json_integer((json_int_t)(s->dropped > INT64_MAX ? INT64_MAX : s->dropped)));
	if (root && s->corr_dropped)
		json_object_set_new(
		    root, "correlation_dropped",
		    json_integer(
			(json_int_t)(s->corr_dropped > INT64_MAX ? INT64_MAX : s->corr_dropped)));
	if (root && s->transit)
		json_object_set_new(
		    root, "transit_failures",
		    json_integer((json_int_t)(s->transit > INT64_MAX ? INT64_MAX : s->transit)));
	if (root && s->alerts_lost)
		json_object_set_new(
		    root, "alerts_lost",
		    json_integer(
			(json_int_t)(s->alerts_lost > INT64_MAX ? INT64_MAX : s->alerts_lost)));
	if (root && s->time_unparsed)
		json_object_set_new(
		    root, "time_unparsed",
		    json_integer(
			(json_int_t)(s->time_unparsed > INT64_MAX ? INT64_MAX : s->time_unparsed)));
	for (int c = 0; root && c < RF_STORE_COUNT_N; c++)
		if (s->counts[c])
			json_object_set_new(
			    root, rf_store_count_name(c),
			    json_integer(
				(json_int_t)(s->counts[c] > INT64_MAX ? INT64_MAX : s->counts[c])));
	return root;
}

int rf__store_state_dump(const struct rf__store_state *s, char **ret_text)
{
	json_t *root = state_to_json(s);
	char *text;

	if (!root)
		return -ENOMEM;
	text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	*ret_text = text;
	return 0;
}

/* ---- reading ---------------------------------------------------------------------------- */

static int bad(struct rf_diag *d, const char *what)
{
	return rf_diag_report(d, -EBADMSG, "state.json: %s", what);
}

static int get_hash(json_t *v, uint8_t out[RF_GUARD_HASH_LEN], bool *has)
{
	if (json_is_null(v) || !v) {
		*has = false;
		memset(out, 0, RF_GUARD_HASH_LEN);
		return 0;
	}
	if (!json_is_string(v))
		return -EBADMSG;
	*has = true;
	return rf_hex_decode(json_string_value(v), json_string_length(v), out, RF_GUARD_HASH_LEN);
}

static int get_uint(json_t *o, const char *key, uint64_t max, uint64_t *ret)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return -EBADMSG;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

static int copy_str(json_t *v, char *out, size_t outsz)
{
	if (!json_is_string(v) || json_string_length(v) >= outsz ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -EBADMSG;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int parse_guard(json_t *j, struct rf_guard_state *g, struct rf_diag *d)
{
	const char *mode;
	json_t *fp;
	uint64_t v;
	bool has;
	size_t i;
	json_t *e;

	rf_guard_init(g);
	if (!json_is_object(j) || !json_is_string(json_object_get(j, "mode")))
		return bad(d, "'guard' must be an object with a 'mode'");
	mode = json_string_value(json_object_get(j, "mode"));
	for (v = 0; v <= RF_GUARD_MODE_SAFE; v++)
		if (strcmp(mode, rf_guard_mode_name((enum rf_guard_mode)v)) == 0)
			break;
	if (v > RF_GUARD_MODE_SAFE)
		return bad(d, "guard.mode unknown");
	g->mode = (uint8_t)v;
	if (get_hash(json_object_get(j, "trial"), g->trial, &has) < 0)
		return bad(d, "guard.trial must be null or 64 hex digits");
	g->has_trial = has;
	if (get_hash(json_object_get(j, "last_good"), g->lkg, &has) < 0)
		return bad(d, "guard.last_good must be null or 64 hex digits");
	g->has_lkg = has;
	if (get_uint(j, "trial_attempts", 255, &v) < 0)
		return bad(d, "guard.trial_attempts must be 0..255");
	g->trial_attempts = (uint8_t)v;
	if (get_uint(j, "last_good_attempts", 255, &v) < 0)
		return bad(d, "guard.last_good_attempts must be 0..255");
	g->lkg_attempts = (uint8_t)v;
	if (!json_is_boolean(json_object_get(j, "clean")))
		return bad(d, "guard.clean must be a boolean");
	g->clean = json_is_true(json_object_get(j, "clean"));
	if (get_uint(j, "crashes", UINT32_MAX, &v) < 0)
		return bad(d, "guard.crashes must be 0..2^32-1");
	g->crashes = (uint32_t)v;
	if (get_uint(j, "rollbacks", UINT32_MAX, &v) < 0)
		return bad(d, "guard.rollbacks must be 0..2^32-1");
	g->rollbacks = (uint32_t)v;
	fp = json_object_get(j, "fingerprints");
	if (!json_is_array(fp) || json_array_size(fp) > RF_GUARD_QUARANTINE_MAX)
		return bad(
		    d, "guard.fingerprints must be an array of at most RF_GUARD_QUARANTINE_MAX");
	json_array_foreach(fp, i, e)
	{
		uint8_t b[8];
		if (!json_is_string(e) ||
		    rf_hex_decode(json_string_value(e), json_string_length(e), b, 8) < 0)
			return bad(d, "guard.fingerprints entries must be 16 hex digits");
		uint64_t fpv = 0;
		for (unsigned k = 0; k < 8; k++)
			fpv = fpv << 8 | b[k];
		g->quarantine[i] = fpv;
	}
	g->nquarantine = (uint8_t)json_array_size(fp);
	if (get_uint(j, "fingerprint_next", RF_GUARD_QUARANTINE_MAX - 1, &v) < 0)
		return bad(d, "guard.fingerprint_next out of range");
	g->qnext = (uint8_t)v;
	return 0;
}

int rf__store_state_load(struct rf__store_state *s, const uint8_t *p, size_t n, struct rf_diag *d)
{
	json_error_t jerr;
	json_t *root, *v, *e;
	size_t i;
	const char *key;
	int r = 0;
	uint64_t u;
	struct rf_guard_config cfg;

	root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return rf_diag_report(d, -EBADMSG, "state.json: line %d: %s", jerr.line, jerr.text);
	if (!json_is_object(root) || get_uint(root, "format", 1, &u) < 0 || u != 1) {
		r = bad(d, "not a format 1 state object");
		goto out;
	}
	if (copy_str(json_object_get(root, "device_id"), s->device_id, sizeof(s->device_id)) < 0) {
		r = bad(d, "device_id must be a string of at most 128 bytes");
		goto out;
	}
	/* "ring" came after format 1 was first written: absent means unknown */
	if (json_object_get(root, "ring") &&
	    copy_str(json_object_get(root, "ring"), s->ring, sizeof(s->ring)) < 0) {
		r = bad(d, "ring must be a string of at most 128 bytes");
		goto out;
	}
	if ((r = parse_guard(json_object_get(root, "guard"), &s->g, d)) < 0)
		goto out;
	rf_guard_config_default(&cfg);
	if (!rf_guard_state_valid(&cfg, &s->g)) {
		r = bad(d, "guard state is inconsistent");
		goto out;
	}
	v = json_object_get(root, "names");
	if (!json_is_object(v) || json_object_size(v) > NAMES_MAX) {
		r = bad(d, "names must be an object of at most 8 members");
		goto out;
	}
	s->nnames = 0;
	json_object_foreach(v, key, e)
	{
		struct rf__store_name *nm = &s->names[s->nnames];
		if (rf_hex_decode(key, strlen(key), nm->hash, RF_GUARD_HASH_LEN) < 0 ||
		    copy_str(e, nm->target, sizeof(nm->target)) < 0) {
			r = bad(d, "names: bad entry");
			goto out;
		}
		s->nnames++;
	}
	v = json_object_get(root, "quarantine");
	if (!json_is_array(v) || json_array_size(v) > RF_AGENT_QUARANTINE_MAX) {
		r = bad(d, "quarantine must be an array of at most RF_AGENT_QUARANTINE_MAX");
		goto out;
	}
	s->nq = 0;
	json_array_foreach(v, i, e)
	{
		struct rf_store_quarantine *q = &s->q[s->nq];
		bool has;
		json_int_t t;
		if (!json_is_object(e) ||
		    get_hash(json_object_get(e, "sha256"), q->hash, &has) < 0 || !has ||
		    copy_str(json_object_get(e, "reason"), q->reason, sizeof(q->reason)) < 0 ||
		    !json_is_integer(json_object_get(e, "time"))) {
			r = bad(d, "quarantine: bad entry");
			goto out;
		}
		t = json_integer_value(json_object_get(e, "time"));
		q->time = (int64_t)t;
		s->nq++;
	}
	v = json_object_get(root, "outbox");
	if (!json_is_array(v) || json_array_size(v) > RF_AGENT_OUTBOX_MAX) {
		r = bad(d, "outbox must be an array of at most RF_AGENT_OUTBOX_MAX");
		goto out;
	}
	s->nout = 0;
	json_array_foreach(v, i, e)
	{
		struct rf_store_report *rep = &s->out[s->nout];
		if (!json_is_object(e) || get_uint(e, "id", INT64_MAX, &rep->id) < 0 ||
		    copy_str(json_object_get(e, "event"), rep->event, sizeof(rep->event)) < 0 ||
		    get_hash(json_object_get(e, "sha256"), rep->hash, &rep->has_hash) < 0 ||
		    copy_str(json_object_get(e, "target"), rep->target, sizeof(rep->target)) < 0 ||
		    copy_str(json_object_get(e, "detail"), rep->detail, sizeof(rep->detail)) < 0 ||
		    !json_is_integer(json_object_get(e, "time"))) {
			r = bad(d, "outbox: bad entry");
			goto out;
		}
		rep->time = (int64_t)json_integer_value(json_object_get(e, "time"));
		rep->cause[0] = 0;
		if (json_object_get(e, "cause") &&
		    copy_str(json_object_get(e, "cause"), rep->cause, sizeof(rep->cause)) < 0) {
			r = bad(d, "outbox: bad cause");
			goto out;
		}
		s->nout++;
	}
	if (get_uint(root, "next_report", INT64_MAX, &s->next_report) < 0 ||
	    get_uint(root, "events", INT64_MAX, &s->events) < 0 ||
	    get_uint(root, "alerts", INT64_MAX, &s->alerts) < 0) {
		r = bad(d, "next_report, events and alerts must be non-negative integers");
		goto out;
	}
	if (json_object_get(root, "events_dropped") &&
	    get_uint(root, "events_dropped", INT64_MAX, &s->dropped) < 0) {
		r = bad(d, "events_dropped must be a non-negative integer");
		goto out;
	}
	if (json_object_get(root, "correlation_dropped") &&
	    get_uint(root, "correlation_dropped", INT64_MAX, &s->corr_dropped) < 0) {
		r = bad(d, "correlation_dropped must be a non-negative integer");
		goto out;
	}
	if (json_object_get(root, "transit_failures") &&
	    get_uint(root, "transit_failures", INT64_MAX, &s->transit) < 0) {
		r = bad(d, "transit_failures must be a non-negative integer");
		goto out;
	}
	if (json_object_get(root, "alerts_lost") &&
	    get_uint(root, "alerts_lost", INT64_MAX, &s->alerts_lost) < 0) {
		r = bad(d, "alerts_lost must be a non-negative integer");
		goto out;
	}
	if (json_object_get(root, "time_unparsed") &&
	    get_uint(root, "time_unparsed", INT64_MAX, &s->time_unparsed) < 0) {
		r = bad(d, "time_unparsed must be a non-negative integer");
		goto out;
	}
	for (int c = 0; c < RF_STORE_COUNT_N; c++)
		if (json_object_get(root, rf_store_count_name(c)) &&
		    get_uint(root, rf_store_count_name(c), INT64_MAX, &s->counts[c]) < 0) {
			r = bad(d, "correlation_late, correlation_future, correlation_skipped and "
				   "time_missing must be non-negative integers");
			goto out;
		}
out:
	json_decref(root);
	return r;
}

/* ---- the empty state and the fuzz target's entry ----------------------------------------- */

void rf__store_state_reset(struct rf__store_state *s)
{
	rf_guard_init(&s->g);
	s->device_id[0] = 0;
	s->ring[0] = 0;
	s->nnames = 0;
	s->nq = 0;
	s->nout = 0;
	s->next_report = 1;
	s->events = s->alerts = 0;
	s->dropped = 0;
	s->corr_dropped = 0;
	s->transit = 0;
	s->alerts_lost = 0;
	s->time_unparsed = 0;
	memset(s->counts, 0, sizeof(s->counts));
}

const char *rf_store_count_name(enum rf_store_count c)
{
	static const char *const names[RF_STORE_COUNT_N] = {
	    [RF_STORE_CORR_LATE] = "correlation_late",
	    [RF_STORE_CORR_FUTURE] = "correlation_future",
	    [RF_STORE_CORR_SKIPPED] = "correlation_skipped",
	    [RF_STORE_TIME_MISSING] = "time_missing",
	};
	return c < RF_STORE_COUNT_N ? names[c] : "?";
}

int rf__store_state_parse(const uint8_t *p, size_t n, struct rf_diag *d)
{
	struct rf__store_state *s;
	struct rf_guard_config cfg;
	int r;

	if (n > RF_AGENT_STATE_MAX)
		return -E2BIG;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rf__store_state_reset(s);
	r = rf__store_state_load(s, p, n, d);
	rf_guard_config_default(&cfg);
	/* a state that parsed is one the guard accepts, and serialises again */
	if (r == 0 && !rf_guard_state_valid(&cfg, &s->g))
		r = -EFAULT;
	if (r == 0) {
		json_t *j = state_to_json(s);
		if (!j)
			r = -ENOMEM;
		json_decref(j);
	}
	free(s);
	return r;
}
