/*
 * Speed and memory of the fleet simulator: crowdstrike-2024-07-19 over 24 simulated hours at
 * 1 M, 4 M and 8.5 M devices, under push-to-all (every device takes the release and crashes)
 * and under the default policy. Each run is a child process, so its peak RSS is its own
 * (wait4's ru_maxrss). Prints one line per run; asserts nothing about time (it depends on the
 * machine and on who else is using it).
 *
 * usage: bench-sim [DEVICES...]     (default 1000000 4000000 8500000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "sim/sim.h"

static int load(const char *rel, bool policy, void *out)
{
	char path[4096];
	const char *root = getenv("RF_SOURCE_ROOT");
	uint8_t *p = NULL;
	size_t n = 0;
	struct rf_diag d = {0};
	snprintf(path, sizeof(path), "%s/%s", root ? root : rf_sim_data_dir(), rel);
	if (!root)
		snprintf(path, sizeof(path), "%s/%s", rf_sim_data_dir(),
			 rel + strlen("scenarios/"));
	int r = rf_file_read(path, RF_SIM_FILE_MAX, &p, &n);
	if (r == 0)
		r = policy ? rf_sim_policy_parse(p, n, out, &d)
			   : rf_sim_scenario_parse(p, n, out, &d);
	free(p);
	if (r < 0)
		fprintf(stderr, "bench-sim: %s: %s\n", path, d.count ? d.first : rf_strerror(r));
	return r;
}

static int child(uint64_t devices, const char *policy)
{
	static struct rf_sim_scenario sc;
	static struct rf_sim_policy pol;
	char rel[128];
	struct rf_sim_result *res = NULL;
	struct rf_diag d = {0};
	snprintf(rel, sizeof(rel), "scenarios/policies/%s.json", policy);
	if (load("scenarios/crowdstrike-2024-07-19.json", false, &sc) < 0 ||
	    load(rel, true, &pol) < 0)
		return 2;
	struct rf_sim_options o = {.devices = devices, .seed = 1, .duration_s = 86400};
	uint64_t t0 = rf_now_mono_ns();
	int r = rf_sim_run(&sc, &pol, &o, &d, &res);
	uint64_t t1 = rf_now_mono_ns();
	if (r < 0) {
		fprintf(stderr, "bench-sim: %s\n", d.count ? d.first : rf_strerror(r));
		return 2;
	}
	printf("%-12s %9llu devices  24 h simulated  %7.2f s  %10llu events  %10llu check-ins  "
	       "crashed %llu",
	       policy, (unsigned long long)devices, (double)(t1 - t0) / 1e9,
	       (unsigned long long)res->events, (unsigned long long)res->checkins,
	       (unsigned long long)res->crashed);
	fflush(stdout);
	rf_sim_result_free(res);
	return 0;
}

int main(int argc, char **argv)
{
	static const uint64_t dflt[] = {1000000, 4000000, 8500000};
	static const char *const policies[] = {"push-to-all", "default"};
	uint64_t sizes[16];
	size_t n = 0;
	for (int i = 1; i < argc && n < 16; i++)
		if (rf_parse_u64(argv[i], &sizes[n++]) < 0 || sizes[n - 1] == 0 ||
		    sizes[n - 1] > RF_SIM_DEVICES_MAX) {
			fprintf(stderr, "usage: bench-sim [DEVICES...]\n");
			return 2;
		}
	if (n == 0) {
		memcpy(sizes, dflt, sizeof(dflt));
		n = 3;
	}
	int rc = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < 2; k++) {
			fflush(stdout);
			pid_t pid = fork();
			if (pid < 0) {
				perror("bench-sim: fork");
				return 2;
			}
			if (pid == 0)
				_exit(child(sizes[i], policies[k]));
			int st;
			struct rusage ru;
			if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
				printf("\n");
				rc = 1;
				continue;
			}
			printf("  peak RSS %6.0f MB\n", ru.ru_maxrss / 1024.0);
		}
	return rc;
}
