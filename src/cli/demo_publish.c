/*
 * `ringfence demo`: the publisher. Packs are compiled by the real compiler (`ringfence content
 * compile`), signed into the TUF repository with a demo-scaled schedule in the target's custom
 * metadata (`ringfence repo add --custom`, `repo publish`), and created as releases through the
 * operator API, exactly as a vendor would; the schedule is signed, so the server can only slow
 * it down (P6).
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
#include "ringfence/content.h"
#include "ringfence/limits.h"

/* ---- publishing ---------------------------------------------------------------------------------
 */

int rf__demo_compile_pack(struct demo *d, const char *rules, struct pack *pk, const char *seq)
{
	uint8_t *p;
	size_t n;
	int r;
	char *argv[] = {d->self,  "content", "compile",	  (char *)rules, "-o",
			pk->file, "--seq",   (char *)seq, NULL};

	if ((r = rf__demo_run_tool(d, argv, "publisher.log")) < 0)
		return r;
	if ((r = rf_file_read(pk->file, 64u << 20, &p, &n)) < 0)
		return r;
	rf_sha256_hex(p, n, pk->hex);
	free(p);
	return 0;
}

/*
 * The rapid policy (examples/schedules/rapid.json, scenarios/policies/rapid.json, docs/sim.md)
 * scaled for the demo the way Act 1 scales the default policy: the guard's 10 minutes of
 * probation are the agents' 5 s here (the gates' probation_s 4 s), that is 1 s for 2.5 minutes,
 * so rapid's 5-minute steps are 2 s apart (10 minutes: 4 s) and its 5-minute bake is 2 s. The
 * percentages are rapid's: canary 10 % then 100 %, broad 1 % -> 10 % -> 100 %; the demo's
 * early and broad rings both take the broad ramp (the demo's fleet has three rings, rapid has
 * two). A demo ring is tiny: 1 % of 32 agents is nobody, and a step that admits fewer devices
 * than its gate waits for shows nothing. So, as rapid's canary step (10 % of at least 100
 * devices: 10 of them) expects to admit the devices its gate waits for, no step here is smaller
 * than the share expected to admit DEMO_RAPID_MIN_HEALTHY of the ring; steps raised to the
 * same percent merge. The steps go into out as JSON, and into text (may be NULL) in words.
 * Returns the first step's percent.
 */
unsigned rf__demo_rapid_ramp(int ring, unsigned ring_size, char *out, size_t outsz, char *text,
			     size_t textsz)
{
	static const unsigned canary[][2] = {{0, 10}, {2, 100}};
	static const unsigned broad[][2] = {{0, 1}, {2, 10}, {4, 100}};
	const unsigned(*steps)[2] = ring == 0 ? canary : broad;
	unsigned nsteps = ring == 0 ? 2 : 3, first = 0, last = 0;
	unsigned floor_pct =
	    ring_size ? (100 * DEMO_RAPID_MIN_HEALTHY + ring_size - 1) / ring_size : 100;
	size_t o = 0, to = 0;

	out[0] = 0;
	if (text)
		text[0] = 0;
	for (unsigned i = 0; i < nsteps; i++) {
		unsigned pct = steps[i][1] > floor_pct ? steps[i][1] : floor_pct;
		int w;

		if (pct > 100)
			pct = 100;
		if (i && pct == last)
			continue;
		w = snprintf(out + o, outsz - o, "%s{\"after\":%u,\"percent\":%u}", i ? "," : "",
			     steps[i][0], pct);
		if (w < 0 || (size_t)w >= outsz - o)
			break;
		o += (size_t)w;
		w = !text ? 0
		    : i	  ? snprintf(text + to, textsz - to, ", %u%% at %u s", pct, steps[i][0])
			  : snprintf(text + to, textsz - to, "%u%%", pct);
		if (w > 0 && (size_t)w < textsz - to)
			to += (size_t)w;
		if (!i)
			first = pct;
		last = pct;
	}
	return first;
}

/*
 * The manifest of the replay's buggy validator (2024-07-19: it believed the 21st field existed):
 * the agent's general manifest with ChannelField21 added to process_creation. Release create
 * given it as the manifests to verify against lets the 291 pack through the server's own check
 * of the pack (docs/server.md, "What release create checks"), as the validator let the file
 * through that day, so that the demo shows the agents refusing it (P1).
 */
static json_t *validator_manifest(void)
{
	size_t n, i;
	const uint8_t *b = rf_content_builtin_manifest(&n);
	json_t *m = json_loadb((const char *)b, n, 0, NULL), *ev;

	json_array_foreach(json_object_get(m, "events"), i, ev)
	{
		const char *name = json_string_value(json_object_get(ev, "name"));
		if (name && !strcmp(name, "process_creation"))
			json_array_append_new(json_object_get(ev, "fields"),
					      json_pack("{s:s,s:s}", "name", "ChannelField21",
							"type", "string"));
	}
	return m;
}

/* Sign the pack into the TUF repository with its demo-scaled schedule and create the release:
 * Act 1's (the default policy's shape) or, for pk->rapid, the rapid policy's. */
int rf__demo_publish(struct demo *d, struct pack *pk)
{
	char custom[1024], ramp[NRINGS][160];
	json_t *req, *rep = NULL;
	long st;
	int r;

	if (pk->rapid) {
		for (int i = 0; i < NRINGS; i++)
			rf__demo_rapid_ramp(i, d->nring[i], ramp[i], sizeof(ramp[i]), NULL, 0);
		rf__demo_pathf(custom, sizeof(custom),
			       "{\"ringfence\":{\"release\":\"%s\",\"schedule\":["
			       "{\"ring\":\"canary\",\"not_before\":0,\"ramp\":[%s]},"
			       "{\"ring\":\"early\",\"not_before\":0,\"ramp\":[%s]},"
			       "{\"ring\":\"broad\",\"not_before\":0,\"ramp\":[%s]}],"
			       "\"gates\":{\"probation_s\":4,\"silence_s\":30,\"min_bake_s\":%d,"
			       "\"min_healthy\":%d}}}",
			       pk->release, ramp[0], ramp[1], ramp[2], DEMO_RAPID_BAKE_S,
			       DEMO_RAPID_MIN_HEALTHY);
	} else {
		/* In a ring under 20 agents a partial step may admit nobody (cohort buckets) and
		 * show nothing: such rings get a single 100 % step. */
		const char *early =
		    d->nring[1] >= 20 ? "{\"after\":0,\"percent\":50},{\"after\":6,\"percent\":100}"
				      : "{\"after\":0,\"percent\":100}";
		const char *broad =
		    d->nring[2] >= 20 ? "{\"after\":0,\"percent\":25},{\"after\":6,\"percent\":50},"
					"{\"after\":12,\"percent\":100}"
				      : "{\"after\":0,\"percent\":100}";
		rf__demo_pathf(custom, sizeof(custom),
			       "{\"ringfence\":{\"release\":\"%s\",\"schedule\":["
			       "{\"ring\":\"canary\",\"not_before\":0,\"ramp\":[{\"after\":0,"
			       "\"percent\":100}]},"
			       "{\"ring\":\"early\",\"not_before\":0,\"ramp\":[%s]},"
			       "{\"ring\":\"broad\",\"not_before\":0,\"ramp\":[%s]}],"
			       "\"gates\":{\"probation_s\":4,\"silence_s\":30,\"min_bake_s\":5,"
			       "\"min_healthy\":3}}}",
			       pk->release, early, broad);
	}
	char *add[] = {d->self,	   "repo", "add", d->repo, pk->file, "--name", (char *)pk->target,
		       "--custom", custom, NULL};
	char *pub[] = {d->self, "repo", "publish", d->repo, NULL};
	if ((r = rf__demo_run_tool(d, add, "publisher.log")) < 0 ||
	    (r = rf__demo_run_tool(d, pub, "publisher.log")) < 0)
		return r;
	req = json_pack("{s:s}", "target", pk->target);
	if (pk->validator_bug)
		json_object_set_new(req, "manifests", json_pack("[o]", validator_manifest()));
	st = rf__demo_api(d, "POST", "/v1/admin/releases", req, &rep);
	json_decref(req);
	if (st != 201) {
		json_decref(rep);
		return -EIO;
	}
	pk->id = rf__demo_jint(rep, "id");
	pk->created_at = rf__demo_jint(rep, "created_at");
	json_decref(rep);
	return 0;
}
