/*
 * `ringfence-agent status`: what the store says (current, last known good, trial attempts,
 * quarantine, safe mode, reports not yet delivered), read-only, as text or JSON. It takes no
 * lock, so it works while the agent runs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "agent/agent.h"
#include "common/opt.h"

static void usage_status(FILE *f)
{
	fprintf(f, "usage: ringfence-agent status [--store DIR] [--json]\n\n"
		   "Show what the store holds: current pack, last known good, trial attempts,\n"
		   "quarantine (with reasons), safe mode, reports not yet delivered, and the\n"
		   "counters of what was not done as asked (events dropped, alerts lost, ...).\n");
}

static json_t *ref_json(const struct rf_store *st, const uint8_t *h, bool has)
{
	char hex[65];

	if (!has)
		return json_null();
	rf_hex_encode(h, 32, hex);
	return json_pack("{s:s, s:s}", "sha256", hex, "target", rf_store_pack_name(st, h));
}

int rf__agent_cmd_status(int argc, char **argv)
{
	static const struct option lo[] = {{"store", required_argument, NULL, 'd'},
					   {"json", no_argument, NULL, 'j'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	const char *dir = RF_STORE_DIR_DEFAULT;
	bool as_json = false;
	struct rf_store *st = NULL;
	struct rf_diag d = {0};
	const struct rf_guard_state *g;
	uint8_t cur[32];
	json_t *q, *o;
	int c, r;

	optind = 1;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence-agent status")) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'j':
			as_json = true;
			break;
		case 'h':
			usage_status(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		usage_status(stderr);
		return 2;
	}
	r = rf_store_open_readonly(dir, &st, &d);
	if (r < 0) {
		fprintf(stderr, "ringfence-agent status: %s\n",
			d.first[0] ? d.first : rf_strerror(r));
		return 1;
	}
	g = rf_store_guard(st);
	q = json_array();
	for (size_t i = 0; i < rf_store_quarantine_count(st); i++) {
		const struct rf_store_quarantine *e = rf_store_quarantine_at(st, i);
		char hex[65];
		rf_hex_encode(e->hash, 32, hex);
		json_array_append_new(q, json_pack("{s:s, s:s, s:I}", "sha256", hex, "reason",
						   e->reason, "time", (json_int_t)e->time));
	}
	bool has_cur = rf_guard_current(g, cur);
	o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:i, s:i, s:o, s:b, s:I, s:I, s:I}", "device_id",
		      rf_store_device_id(st), "mode", rf_guard_mode_name(g->mode), "current",
		      ref_json(st, cur, has_cur), "last_good", ref_json(st, g->lkg, g->has_lkg),
		      "trial", ref_json(st, g->trial, g->has_trial), "trial_attempts",
		      (int)g->trial_attempts, "last_good_attempts", (int)g->lkg_attempts,
		      "quarantine", q, "safe_mode", g->mode == RF_GUARD_MODE_SAFE, "crashes",
		      (json_int_t)g->crashes, "rollbacks", (json_int_t)g->rollbacks,
		      "reports_pending", (json_int_t)rf_store_report_count(st));
	json_object_set_new(o, "events_dropped", json_integer((json_int_t)rf_store_dropped(st)));
	json_object_set_new(o, "correlation_dropped",
			    json_integer((json_int_t)rf_store_corr_dropped(st)));
	json_object_set_new(o, "transit_failures",
			    json_integer((json_int_t)rf_store_transit_failures(st)));
	json_object_set_new(o, "alerts_lost", json_integer((json_int_t)rf_store_alerts_lost(st)));
	json_object_set_new(o, "time_unparsed",
			    json_integer((json_int_t)rf_store_time_unparsed(st)));
	for (int k = 0; k < RF_STORE_COUNT_N; k++)
		json_object_set_new(o, rf_store_count_name(k),
				    json_integer((json_int_t)rf_store_count(st, k)));
	if (as_json) {
		char *t = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (t)
			printf("%s\n", t);
		free(t);
	} else {
		char hex[65];
		printf("store:          %s\n", dir);
		printf("device:         %s\n",
		       rf_store_device_id(st)[0] ? rf_store_device_id(st) : "(not enrolled)");
		printf("mode:           %s%s\n", rf_guard_mode_name(g->mode),
		       g->mode == RF_GUARD_MODE_SAFE ? " (SAFE MODE: no content; still checking in)"
						     : "");
		if (has_cur) {
			rf_hex_encode(cur, 32, hex);
			printf("current:        %s %s\n", rf_store_pack_name(st, cur), hex);
		} else
			printf("current:        (none)\n");
		if (g->has_lkg) {
			rf_hex_encode(g->lkg, 32, hex);
			printf("last known good: %s %s\n", rf_store_pack_name(st, g->lkg), hex);
		} else
			printf("last known good: (none)\n");
		if (g->has_trial) {
			rf_hex_encode(g->trial, 32, hex);
			printf("trial:          %s %s, attempt %u\n",
			       rf_store_pack_name(st, g->trial), hex, g->trial_attempts);
		}
		printf("quarantine:     %zu\n", rf_store_quarantine_count(st));
		for (size_t i = 0; i < rf_store_quarantine_count(st); i++) {
			const struct rf_store_quarantine *e = rf_store_quarantine_at(st, i);
			rf_hex_encode(e->hash, 32, hex);
			printf("  %s  %s\n", hex, e->reason);
		}
		printf("crashes:        %u, rollbacks: %u\n", g->crashes, g->rollbacks);
		printf("reports queued: %zu\n", rf_store_report_count(st));
		printf("events dropped: %llu (not evaluated: lines refused as malformed or over a "
		       "size limit, a burst beyond the queue, or lost)\n",
		       (unsigned long long)rf_store_dropped(st));
		printf("correlation state dropped: %llu (groups or window entries past the caps)\n",
		       (unsigned long long)rf_store_corr_dropped(st));
		printf("delivery failures: %llu (a release's TUF metadata, hash or download did "
		       "not match; retried)\n",
		       (unsigned long long)rf_store_transit_failures(st));
		printf("alerts lost: %llu (the --alerts destination refused them: a full disk, a "
		       "closed pipe)\n",
		       (unsigned long long)rf_store_alerts_lost(st));
		printf("event times unparsed: %llu (a time field that does not parse: correlations "
		       "used the arrival time)\n",
		       (unsigned long long)rf_store_time_unparsed(st));
		printf("event times missing: %llu (matched a correlation's rule without a time "
		       "field: correlations used the arrival time)\n",
		       (unsigned long long)rf_store_count(st, RF_STORE_TIME_MISSING));
		printf("correlation events late: %llu (older than the stream's newest time by "
		       "over %u s: dropped)\n",
		       (unsigned long long)rf_store_count(st, RF_STORE_CORR_LATE),
		       (unsigned)(RF_CORR_LATE_MS / 1000));
		printf("correlation events future: %llu (later than this host's clock by over %u "
		       "s: dropped)\n",
		       (unsigned long long)rf_store_count(st, RF_STORE_CORR_FUTURE),
		       (unsigned)(RF_CORR_SKEW_MS / 1000));
		printf("correlation matches skipped: %llu (a group-by or value_count field absent, "
		       "or its values too long: not counted)\n",
		       (unsigned long long)rf_store_count(st, RF_STORE_CORR_SKIPPED));
	}
	json_decref(o);
	rf_store_free(st);
	return 0;
}