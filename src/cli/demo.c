/*
 * `ringfence demo`: the whole system on one machine, narrated (issue 7). It starts the real
 * ringfenced (SQLite in a temp dir, a fresh TUF repository), N real ringfence-agent processes
 * that enroll over HTTP into the rings canary, early and broad, and then drives five releases
 * through the operator API: a good one that must reach every agent, the 2024-07-19 replay (a
 * pack needing a field no agent supplies, published with the publisher's check skipped) that
 * must be rejected and halted in canary, and an unknown bug (a pack that kills the host on load,
 * through the agent's fault-injection knob) that canary must heal from without a human while
 * early and broad never see it; then, under the rapid policy's schedule (issue 14), a good
 * release timed to 50/90/100 % of the agents and a bad one that must stop at the handful of
 * crashes of the canary's first step. With --chaos it also kills ringfenced and random agents with
 * SIGKILL mid-rollout and keeps one canary host offline while the bad release is live.
 *
 * Invariants: every claim printed as "ok" is read back from real state (the server's operator
 * API, each agent's durable store and its log), never from what this program intended; any
 * broken promise makes the exit code 1. Every child runs in its own process group with
 * PR_SET_PDEATHSIG, and every exit path (including SIGINT/SIGTERM) kills all of those groups
 * and reaps them, so nothing is left running. Only 127.0.0.1 is used; every wait is bounded.
 *
 * This file holds the setup, the options and the order of the acts; demo.h lists the others.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/demo.h"
#include "common/opt.h"
#include "common/util.h"
#include "ringfence/limits.h"

static void on_signal(int sig)
{
	rf__demo_stop_signal = sig;
}

/* ---- setup --------------------------------------------------------------------------------------
 */

static void dir_of(const char *path, char *out, size_t outsz)
{
	rf__demo_pathf(out, outsz, "%s", path);
	char *s = strrchr(out, '/');
	if (s)
		*s = 0;
}

/* The programs: next to this one in the build tree (src/cli -> src/agent, src/server), next to
 * it when installed, or on PATH. */
static int find_program(const char *self_dir, const char *sub, const char *name, char *out,
			size_t outsz)
{
	const char *path = getenv("PATH");

	rf__demo_pathf(out, outsz, "%s/../%s/%s", self_dir, sub, name);
	if (access(out, X_OK) == 0)
		return 0;
	rf__demo_pathf(out, outsz, "%s/%s", self_dir, name);
	if (access(out, X_OK) == 0)
		return 0;
	while (path && *path) {
		size_t l = strcspn(path, ":");
		rf__demo_pathf(out, outsz, "%.*s/%s", (int)l, path, name);
		if (l && access(out, X_OK) == 0)
			return 0;
		path += l + (path[l] == ':');
	}
	return -ENOENT;
}

static int find_examples(const char *self_dir, char *out, size_t outsz)
{
	char dir[DEMO_PATH], probe[DEMO_PATH + 32];
	const char *env = getenv("RF_SOURCE_ROOT");

	if (env) {
		rf__demo_pathf(out, outsz, "%s/examples", env);
		return 0;
	}
	rf__demo_pathf(dir, sizeof(dir), "%s", self_dir);
	for (int up = 0; up < 6; up++) {
		rf__demo_pathf(probe, sizeof(probe), "%s/examples/rules", dir);
		if (access(probe, R_OK) == 0) {
			rf__demo_pathf(out, outsz, "%s/examples", dir);
			return 0;
		}
		size_t l = strlen(dir);
		if (l + 4 >= sizeof(dir))
			break;
		memcpy(dir + l, "/..", 4);
	}
	if (access("examples/rules", R_OK) == 0) {
		rf__demo_pathf(out, outsz, "examples");
		return 0;
	}
	/* Installed: the packages put them in the data directory. */
	rf__demo_pathf(probe, sizeof(probe), "%s/examples/rules", rf_cli_data_dir());
	if (access(probe, R_OK) == 0) {
		rf__demo_pathf(out, outsz, "%s/examples", rf_cli_data_dir());
		return 0;
	}
	return -ENOENT;
}

static int read_token(const char *path, char out[80])
{
	uint8_t *p;
	size_t n;
	int r = rf_file_read(path, 200, &p, &n);

	if (r < 0)
		return r;
	while (n && (p[n - 1] == '\n' || p[n - 1] == ' '))
		n--;
	if (n == 0 || n >= 80) {
		free(p);
		return -EBADMSG;
	}
	memcpy(out, p, n);
	out[n] = 0;
	free(p);
	return 0;
}

static const char rule_291[] =
    "title: Needs A Field This Agent Does Not Supply\n"
    "id: 3f0c2a51-5d1e-4c7e-9a55-000000000291\n"
    "description: the 2024-07-19 replay - a 21st input field the agent never supplies\n"
    "logsource:\n  category: process_creation\n  product: windows\n"
    "detection:\n  selection:\n    ChannelField21|contains: 'pipe'\n  condition: selection\n"
    "level: high\n";

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -EIO;
}

static int setup(struct demo *d)
{
	char self_dir[DEMO_PATH], path[DEMO_PATH], src[DEMO_PATH];
	ssize_t l;
	int r;

	l = readlink("/proc/self/exe", d->self, sizeof(d->self) - 1);
	if (l <= 0)
		return -errno;
	d->self[l] = 0;
	dir_of(d->self, self_dir, sizeof(self_dir));
	if (find_program(self_dir, "agent", "ringfence-agent", d->agent_bin, sizeof(d->agent_bin)) <
		0 ||
	    find_program(self_dir, "server", "ringfenced", d->server_bin, sizeof(d->server_bin)) <
		0) {
		fprintf(stderr,
			"ringfence demo: ringfence-agent and ringfenced must be next to ringfence "
			"(build tree or install) or on PATH\n");
		return -ENOENT;
	}
	char *real = find_examples(self_dir, path, sizeof(path)) < 0 ? NULL : realpath(path, NULL);
	r = real ? rf__demo_pathf(d->examples, sizeof(d->examples), "%s", real) : -ENOENT;
	free(real);
	if (r < 0) {
		fprintf(stderr,
			"ringfence demo: examples/ not found (set RF_SOURCE_ROOT to the source "
			"tree)\n");
		return -ENOENT;
	}
	if ((r = rf__demo_load_events(d)) < 0) {
		fprintf(stderr, "ringfence demo: %s/events/sample.jsonl: %s\n", d->examples,
			rf_strerror(r));
		return r;
	}
	if (strlen(d->examples) > DEMO_DIR_MAX ||
	    (d->workdir_opt && strlen(d->workdir_opt) > DEMO_DIR_MAX) ||
	    strlen(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") > DEMO_DIR_MAX - 32) {
		fprintf(stderr, "ringfence demo: paths over %d bytes are not supported\n",
			DEMO_DIR_MAX);
		return -ENAMETOOLONG;
	}
	if (d->workdir_opt) {
		rf__demo_pathf(d->work, sizeof(d->work), "%s", d->workdir_opt);
		if ((r = rf_mkdir_p(d->work, 0755)) < 0 && r != -EEXIST)
			return r;
	} else {
		const char *tmp = getenv("TMPDIR");
		rf__demo_pathf(d->work, sizeof(d->work), "%s/ringfence-demo-XXXXXX",
			       tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(d->work))
			return -errno;
	}
	rf__demo_pathf(d->repo, sizeof(d->repo), "%s/repo", d->work);
	rf__demo_pathf(d->db, sizeof(d->db), "%s/ringfenced.db", d->work);

	/* The packs: compiled from the project's example rules, by the real compiler. */
	d->pk[PACK_GOOD] = (struct pack){.target = "packs/rules-1.rfp", .release = "demo-1-good"};
	d->pk[PACK_291] = (struct pack){
	    .target = "packs/rules-2.rfp", .release = "demo-2-field21", .validator_bug = true};
	d->pk[PACK_BUG] = (struct pack){.target = "packs/rules-3.rfp", .release = "demo-3-crash"};
	d->pk[PACK_RAPID_GOOD] = (struct pack){
	    .target = "packs/rules-4.rfp", .release = "demo-4-rapid-good", .rapid = true};
	d->pk[PACK_RAPID_BAD] = (struct pack){.target = "packs/rules-5.rfp",
					      .release = "demo-5-rapid-crash",
					      .rapid = true,
					      .crashes_worker = true};
	for (int k = 0; k < NPACKS; k++)
		rf__demo_pathf(d->pk[k].file, sizeof(d->pk[k].file), "%s/rules-%d.rfp", d->work,
			       k + 1);
	char *init[] = {d->self, "repo", "init", d->repo, NULL};
	if ((r = rf__demo_run_tool(d, init, "publisher.log")) < 0)
		return r;
	rf__demo_pathf(src, sizeof(src), "%s/rules", d->examples);
	if ((r = rf__demo_compile_pack(d, src, &d->pk[PACK_GOOD], "1")) < 0)
		return r;
	rf__demo_pathf(path, sizeof(path), "%s/rules-291", d->work);
	if ((r = rf_mkdir_p(path, 0755)) < 0 && r != -EEXIST)
		return r;
	rf__demo_pathf(path, sizeof(path), "%s/rules-291/channel_field_21.yml", d->work);
	if ((r = write_file(path, rule_291)) < 0)
		return r;
	rf__demo_pathf(path, sizeof(path), "%s/rules-291", d->work);
	if ((r = rf__demo_compile_pack(d, path, &d->pk[PACK_291], "2")) < 0)
		return r;
	/* The buggy release is ordinary, valid content: the example rules as the next version. */
	if ((r = rf__demo_compile_pack(d, src, &d->pk[PACK_BUG], "3")) < 0)
		return r;
	/* Act 4's two: the example rules as the next two versions, signed with the rapid
	 * schedule; the second is the one whose load crashes the agents (demo_fleet.c). */
	if ((r = rf__demo_compile_pack(d, src, &d->pk[PACK_RAPID_GOOD], "4")) < 0 ||
	    (r = rf__demo_compile_pack(d, src, &d->pk[PACK_RAPID_BAD], "5")) < 0)
		return r;
	for (int k = 0; k < NPACKS; k++)
		for (int j = 0; j < k; j++)
			if (!strcmp(d->pk[k].hex, d->pk[j].hex))
				return -EEXIST;
	return 0;
}

static int start_fleet(struct demo *d)
{
	json_t *req, *rep = NULL;
	char path[DEMO_PATH];
	long st;
	int r;

	rf__demo_pathf(path, sizeof(path), "%s.admin-token", d->db);
	if ((r = read_token(path, d->admin)) < 0)
		return r;
	req = json_pack("{s:s, s:n, s:s, s:n}", "name", "demo", "ring", "pin", "latest", "window");
	st = rf__demo_api(d, "POST", "/v1/admin/tenants", req, &rep);
	json_decref(req);
	if (st != 201 || strlen(rf__demo_jstr(rep, "enrollment_token")) >= sizeof(d->enroll)) {
		json_decref(rep);
		return -EIO;
	}
	rf__demo_pathf(d->enroll, sizeof(d->enroll), "%s", rf__demo_jstr(rep, "enrollment_token"));
	json_decref(rep);

	/* Rings: a fifth of the fleet (at least 4) in canary, then 40 % early, the rest broad. */
	d->nring[0] = d->n / 5 > 4 ? d->n / 5 : 4;
	d->nring[1] = (d->n - d->nring[0]) * 2 / 5;
	d->nring[2] = d->n - d->nring[0] - d->nring[1];
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		char events[DEMO_PATH];
		a->ring = i < d->nring[0] ? 0 : i < d->nring[0] + d->nring[1] ? 1 : 2;
		rf__demo_pathf(a->id, sizeof(a->id), "host-%s-%04u", rf__demo_ring_names[a->ring],
			       i);
		rf__demo_pathf(a->dir, sizeof(a->dir), "%s/agents/%s", d->work, a->id);
		if ((r = rf_mkdir_p(a->dir, 0755)) < 0 && r != -EEXIST)
			return r;
		rf__demo_agent_paths(a, "events.jsonl", events, sizeof(events));
		FILE *f = fopen(events, "w");
		if (!f)
			return -errno;
		for (size_t e = 0; e < 3; e++)
			fprintf(f, "%s\n", d->events[(i + e) % d->nevents]);
		fclose(f);
	}
	for (unsigned i = 0; i < d->n && !rf__demo_stop_signal; i++) {
		if ((r = rf__demo_agent_start(d, &d->ag[i])) < 0)
			return r;
		if (i % 50 == 49)
			rf__demo_nap(d, 200);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringfence demo [--agents N] [--keep] [--seed S] [--chaos] [--poll S]\n"
	    "                      [--workdir DIR] [--quiet]\n\n"
	    "Run the whole system on this machine: ringfenced on 127.0.0.1 (SQLite in a temp "
	    "dir),\n"
	    "a fresh signed TUF repository, N real ringfence-agent processes in the rings canary,\n"
	    "early and broad, and five releases: a good one rolled out to every agent, the\n"
	    "2024-07-19 replay (a pack needing a field no agent supplies, publisher check "
	    "skipped),\n"
	    "a pack that crashes the host on load, and under the rapid policy's schedule a good\n"
	    "one timed to 50/90/100 %% of the agents and one that crashes the agents that load\n"
	    "it, stopped by the gate after a handful. Every promise is checked against the\n"
	    "server's API and the agents' stores; the summary gives per release the devices\n"
	    "exposed, crashed, healed without a human, needing a human, and the time to halt.\n\n"
	    "  --agents N     agents to run (default 100, 1..%d)\n"
	    "  --keep         leave the server and agents up after the summary, until Ctrl-C\n"
	    "  --seed S       seed for the chaos choices (default 1)\n"
	    "  --chaos        also kill -9 ringfenced and random agents mid-rollout, and keep one\n"
	    "                 canary host offline while the bad release is live\n"
	    "  --poll S       agents' check-in interval in seconds (default 2)\n"
	    "  --workdir DIR  keep everything (logs, stores, database) in DIR instead of a temp\n"
	    "                 dir that is removed at the end\n"
	    "  --quiet        fewer progress lines\n\n"
	    "exit: 0 every promise held, 1 a promise was broken, 2 usage or setup error,\n"
	    "130 interrupted\n",
	    DEMO_AGENTS_MAX);
}

static int rm_rf(const char *dir)
{
	char *argv[] = {"/bin/rm", "-rf", (char *)dir, NULL};
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	return 0;
}

int rf_cli_demo(int argc, char **argv)
{
	static const struct option lo[] = {{"agents", required_argument, NULL, 'n'},
					   {"keep", no_argument, NULL, 'k'},
					   {"seed", required_argument, NULL, 's'},
					   {"chaos", no_argument, NULL, 'c'},
					   {"poll", required_argument, NULL, 'p'},
					   {"workdir", required_argument, NULL, 'w'},
					   {"quiet", no_argument, NULL, 'q'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	struct demo d = {.n = 100, .seed = 1, .poll = 2};
	bool finished = false;
	unsigned *deaths0[NPACKS] = {0};
	struct sigaction sa = {0};
	uint64_t v;
	int c, r, rc = 2;

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence demo")) != -1) {
		switch (c) {
		case 'n':
			if (rf_parse_u64(optarg, &v) < 0 || v < 1 || v > DEMO_AGENTS_MAX) {
				fprintf(stderr, "ringfence demo: --agents: '%s' is not in 1..%d\n",
					optarg, DEMO_AGENTS_MAX);
				return 2;
			}
			d.n = (unsigned)v;
			break;
		case 's':
			if (rf_parse_u64(optarg, &v) < 0 || v > UINT32_MAX) {
				fprintf(stderr, "ringfence demo: --seed: '%s' is not a number\n",
					optarg);
				return 2;
			}
			d.seed = (unsigned)v;
			break;
		case 'p':
			if (rf_parse_u64(optarg, &v) < 0 || v < 1 || v > 60) {
				fprintf(stderr, "ringfence demo: --poll: '%s' is not in 1..60\n",
					optarg);
				return 2;
			}
			d.poll = (unsigned)v;
			break;
		case 'k':
			d.keep = true;
			break;
		case 'c':
			d.chaos = true;
			break;
		case 'q':
			d.quiet = true;
			break;
		case 'w':
			d.workdir_opt = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ringfence demo: unexpected argument '%s'\n\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (d.chaos && d.n < 8) {
		fprintf(stderr, "ringfence demo: --chaos needs at least 8 agents\n");
		return 2;
	}
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	d.t0_ms = d.last_event_ms = rf__demo_now_ms();
	d.ag = calloc(d.n, sizeof(*d.ag));
	if (!d.ag)
		goto out;

	rf__demo_act(&d, "Act 0: a publisher, a server, a fleet");
	if ((r = setup(&d)) < 0) {
		fprintf(stderr, "ringfence demo: setup failed: %s (logs in %s)\n", rf_strerror(r),
			d.work[0] ? d.work : "-");
		goto out;
	}
	rf__demo_say(&d, "Work dir %s: a fresh TUF repository (new keys), five packs compiled from",
		     d.work);
	rf__demo_say(&d, "%s/rules: %s (good), %s (needs a 21st field), %s (crashes hosts),",
		     d.examples, d.pk[0].target, d.pk[1].target, d.pk[2].target);
	rf__demo_say(&d, "%s (good) and %s (crashes agents), the last two for the rapid policy.",
		     d.pk[3].target, d.pk[4].target);
	if ((r = rf__demo_server_start(&d)) < 0) {
		fprintf(stderr,
			"ringfence demo: ringfenced did not start: %s (see %s/ringfenced.log)\n",
			rf_strerror(r), d.work);
		goto out;
	}
	rf__demo_say(&d, "ringfenced listens on %s (SQLite %s).", d.url, d.db);
	rf__demo_say(&d, "Dashboard: %s/   metrics: %s/metrics", d.url, d.url);
	if ((r = start_fleet(&d)) < 0) {
		fprintf(stderr, "ringfence demo: starting the fleet failed: %s\n", rf_strerror(r));
		goto out;
	}
	rf__demo_say(
	    &d,
	    "Started %u ringfence-agent processes (canary %u, early %u, broad %u), each with its",
	    d.n, d.nring[0], d.nring[1], d.nring[2]);
	rf__demo_say(&d,
		     "own store and event stream; they enroll over HTTP with the tenant's token.");
	rc = 1;
	if (!rf__demo_check(&d, rf__demo_wait_for(&d, 60 + d.n / 4, NULL, rf__demo_all_enrolled),
			    "all %u agents enrolled (the server's tenant record says so)", d.n))
		goto out;

	deaths0[0] = rf__demo_snapshot_deaths(&d);
	if (!rf__demo_stop_signal && rf__demo_act_good(&d)) {
		deaths0[1] = rf__demo_snapshot_deaths(&d);
		if (!rf__demo_stop_signal)
			rf__demo_act_291(&d);
		deaths0[2] = rf__demo_snapshot_deaths(&d);
		if (!rf__demo_stop_signal)
			rf__demo_act_bug(&d);
		deaths0[3] = rf__demo_snapshot_deaths(&d);
		if (!rf__demo_stop_signal && rf__demo_act_rapid(&d)) {
			deaths0[4] = rf__demo_snapshot_deaths(&d);
			if (!rf__demo_stop_signal)
				rf__demo_act_rapid_bad(&d);
		}
	}
	if (!rf__demo_stop_signal)
		rf__demo_summary(&d, deaths0);
	if (rf__demo_stop_signal)
		goto out;
	rc = d.broken ? 1 : 0;
	printf("\n%s\n",
	       d.broken ? "Some promises were BROKEN (see above)." : "Every promise held.");
	if (d.keep) {
		printf(
		    "Dashboard: %s/  (--keep: the server and agents stay up; Ctrl-C stops them)\n",
		    d.url);
		fflush(stdout);
		while (!rf__demo_stop_signal) {
			rf__demo_tick(&d);
			usleep(200000);
		}
		finished =
		    true; /* Ctrl-C is the expected end here: the exit code stays the verdict */
		printf("\nstopping ringfenced and the agents\n");
	}
out:
	if (rf__demo_stop_signal && !finished) {
		printf("\ninterrupted: stopping ringfenced and the agents\n");
		rc = 130;
	}
	rf__demo_stop_all(&d);
	fflush(stdout);
	if (d.work[0] && !d.workdir_opt) {
		if (rc == 0 || rc == 130)
			rm_rf(d.work);
		else
			printf("logs kept in %s\n", d.work);
	}
	for (int k = 0; k < NPACKS; k++)
		free(deaths0[k]);
	for (size_t i = 0; i < d.nevents; i++)
		free(d.events[i]);
	free(d.events);
	free(d.ag);
	if (d.curl)
		curl_easy_cleanup(d.curl);
	curl_global_cleanup();
	return rc;
}
