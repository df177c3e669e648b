/*
 * Bulk enrolment for the scale benchmark (bench-scale.sh): writes N enrolled devices straight
 * into a stopped ringfenced's database through the server's storage interface (rf_db, the
 * same records an enrolment writes), each already healthy on one release, and writes the
 * device ids and credentials for wrk's Lua script, one fixed-width line each:
 * "<device id> <credential>\n". Enrolling a million devices over HTTP would take the
 * benchmark longer than measuring them; the check-ins it measures go through the real API.
 *
 * DB is what ringfenced's --db takes: a SQLite file, or a PostgreSQL URI (postgresql://...,
 * rf_db_open). On PostgreSQL the rows are written by this process, not by an instance: every
 * ringfenced started afterwards loads them (rf_db_load) like rows another instance wrote.
 *
 * Usage: rf-bench-enroll DB TENANT N RELEASE_ID OUT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "common/util.h"
#include "server/store.h"

#define BATCH 50000

int main(int argc, char **argv)
{
	static const char *const rings[3] = {"canary", "early", "broad"};
	struct rf_diag d = {0};
	struct rf_db *db;
	FILE *out;
	long long n, rel;
	int64_t now = (int64_t)time(NULL);

	if (argc != 6 || (n = atoll(argv[3])) <= 0 || (rel = atoll(argv[4])) <= 0) {
		fprintf(stderr, "usage: rf-bench-enroll DB TENANT N RELEASE_ID OUT\n");
		return 2;
	}
	if (rf_db_open(argv[1], 0, &d, &db) < 0) {
		char name[256];
		rf_db_pg_redact(argv[1], name, sizeof(name));
		fprintf(stderr, "rf-bench-enroll: %s: %s\n", name, d.count ? d.first : "open");
		return 1;
	}
	out = fopen(argv[5], "w");
	if (!out) {
		fprintf(stderr, "rf-bench-enroll: %s: %s\n", argv[5], strerror(errno));
		return 1;
	}
	struct rf_db_device *recs = calloc(BATCH, sizeof(*recs));
	char(*ids)[32] = calloc(BATCH, sizeof(*ids));
	char hist[160], mh[65];
	memset(mh, 'a', 64);
	mh[64] = 0;
	/* On the release for an hour, healthy after 10 minutes: a check-in answers "stay". */
	snprintf(hist, sizeof(hist), "[[%lld,%lld,%lld,0,0,0,0,0,3,0,0]]", rel,
		 (long long)(now - 3600), (long long)(now - 3000));
	for (long long i = 0; i < n; i += BATCH) {
		size_t k = 0;
		for (; k < BATCH && i + (long long)k < n; k++) {
			uint8_t raw[32];
			char cred[69] = "rfd_";
			struct rf_db_device *r = &recs[k];

			if (RAND_bytes(raw, sizeof(raw)) != 1)
				return 1;
			rf_hex_encode(raw, 32, cred + 4);
			snprintf(ids[k], sizeof(ids[k]), "dev-%07lld", i + (long long)k);
			*r = (struct rf_db_device){
			    .id = ids[k],
			    .tenant = argv[2],
			    .ring = rings[(i + (long long)k) % 3],
			    .agent_version = "0.1.0",
			    .manifest_hash = mh,
			    .enrolled_at = now - 7200,
			    .last_seen = now - 60,
			    .release_id = rel,
			    .state = "healthy",
			    .state_at = now - 3000,
			    .events = 1000,
			    .alerts = 3,
			    .history = hist,
			};
			rf_sha256(cred, strlen(cred), r->cred_hash);
			fprintf(out, "%s %s\n", ids[k], cred);
		}
		int e = rf_db_devices_put(db, recs, k);
		if (e < 0) {
			fprintf(stderr, "rf-bench-enroll: writing devices: %s\n", rf_strerror(e));
			return 1;
		}
	}
	if (fclose(out) != 0)
		return 1;
	rf_db_close(db);
	free(recs);
	free(ids);
	return 0;
}
