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

/* Sign the pack into the TUF repository with its demo-scaled schedule and create the release. */
int rf__demo_publish(struct demo *d, struct pack *pk)
{
	char custom[1024];
	json_t *req, *rep = NULL;
	long st;
	int r;

	/* In a ring under 20 agents a partial step may admit nobody (cohort buckets) and show
	 * nothing: such rings get a single 100 % step. */
	const char *early = d->nring[1] >= 20
				? "{\"after\":0,\"percent\":50},{\"after\":6,\"percent\":100}"
				: "{\"after\":0,\"percent\":100}";
	const char *broad = d->nring[2] >= 20
				? "{\"after\":0,\"percent\":25},{\"after\":6,\"percent\":50},"
				  "{\"after\":12,\"percent\":100}"
				: "{\"after\":0,\"percent\":100}";
	rf__demo_pathf(
	    custom, sizeof(custom),
	    "{\"ringfence\":{\"release\":\"%s\",\"schedule\":["
	    "{\"ring\":\"canary\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]},"
	    "{\"ring\":\"early\",\"not_before\":0,\"ramp\":[%s]},"
	    "{\"ring\":\"broad\",\"not_before\":0,\"ramp\":[%s]}],"
	    "\"gates\":{\"probation_s\":4,\"silence_s\":30,\"min_bake_s\":5,\"min_healthy\":3}}}",
	    pk->release, early, broad);
	char *add[] = {d->self,	   "repo", "add", d->repo, pk->file, "--name", (char *)pk->target,
		       "--custom", custom, NULL};
	char *pub[] = {d->self, "repo", "publish", d->repo, NULL};
	if ((r = rf__demo_run_tool(d, add, "publisher.log")) < 0 ||
	    (r = rf__demo_run_tool(d, pub, "publisher.log")) < 0)
		return r;
	req = json_pack("{s:s}", "target", pk->target);
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
