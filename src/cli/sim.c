/*
 * `ringfence sim`: run the fleet simulator on a scenario (or all of them) under one policy or
 * under both the incident's own policy (push-to-all) and ringfence's default, print the summary
 * table, and write each run's timeline CSV and SVG chart to the output directory. Scenario and
 * policy names resolve in the data directory (RINGFENCE_SIM_DIR, else scenarios/ in
 * rf_cli_data_dir(): the installed data, or the source tree's when run from the build tree);
 * anything containing a '/' or ending in .json is a path.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/opt.h"
#include "common/util.h"
#include "sim/classify.h"
#include "sim/sim.h"
#include "sim/sweep.h"

#define MAX_SCENARIOS 64

static const char *data_dir(void)
{
	static char dir[4096];
	const char *e = getenv("RINGFENCE_SIM_DIR");

	if (e && *e)
		return e;
	snprintf(dir, sizeof(dir), "%s/scenarios", rf_cli_data_dir());
	return dir;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringfence sim SCENARIO [options]\n"
	    "       ringfence sim --all [options]\n"
	    "       ringfence sim --list\n"
	    "       ringfence sim --classify [--policy P] [--devices N] [--seeds K]\n"
	    "       ringfence sim --sweep [--devices N] [--out DIR] [--no-files]\n"
	    "\n"
	    "Replay an incident on a simulated fleet, driven by the real rollout engine and the\n"
	    "real crash-loop guard. Without --policy each scenario runs twice: under the\n"
	    "incident's own policy (push-to-all) and under ringfence's default.\n"
	    "\n"
	    "options:\n"
	    "  --policy P     policy name (push-to-all, default, ...) or a policy file\n"
	    "  --devices N    fleet size (default: the scenario's)\n"
	    "  --seed S       random seed (default 1); the same seed gives the same result\n"
	    "  --duration S   simulated seconds (default: the scenario's)\n"
	    "  --out DIR      write <scenario>--<policy>.csv and .svg there (default ./sim-out)\n"
	    "  --no-files     print the table only\n"
	    "  --no-velocity  skip the good twin (the good-50/90/99 columns)\n"
	    "  --all          every scenario in the data directory\n"
	    "  --list         list the scenarios and policies\n"
	    "  --classify     judge the gates as a classifier: a catalogue of good and bad\n"
	    "                 releases on the probabilistic-crash fleet (default 100000 devices,\n"
	    "                 6 h each), precision and recall (policies rapid and default)\n"
	    "  --seeds K      runs per catalogue case (default 3)\n"
	    "  --sweep        search policies (canary, ramp shape, bake, poll interval) on the\n"
	    "                 2024-07-19 fleet (default 100000 devices, 12 h): the Pareto\n"
	    "                 front of time to 99%% against devices crashed; DIR/sweep.svg\n"
	    "\n"
	    "Columns: devices ever exposed to a bad release, ever crashed by it, healed without a\n"
	    "person, repaired by a person, still down at the end, publish to halt, publish to\n"
	    "full recovery, longest first-crash-to-healthy of a self-healed device; good-50,\n"
	    "good-90, good-99: publish to 50/90/99%% of the fleet running a good release under\n"
	    "the same policy and fleet (the scenario's good twin).\n"
	    "Data directory: $RINGFENCE_SIM_DIR, else %s\n",
	    data_dir());
}

static bool is_path(const char *s)
{
	size_t n = strlen(s);
	return strchr(s, '/') || (n > 5 && !strcmp(s + n - 5, ".json"));
}

static bool name_ok(const char *s)
{
	if (!*s || strlen(s) > 60)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_'))
			return false;
	return true;
}

#define BAD_NAME                                                                                   \
	"not a name (1-60 of a-z, 0-9, '-', '_') nor a path (with a '/' or ending in .json)"

/* path gets the file tried, or "" when name is neither a name nor a path (-EINVAL). */
static int read_named(const char *name, const char *sub, uint8_t **ret, size_t *ret_len, char *path,
		      size_t pathsz)
{
	path[0] = 0;
	int k;

	if (is_path(name))
		k = snprintf(path, pathsz, "%s", name);
	else if (name_ok(name))
		k = snprintf(path, pathsz, "%s/%s%s.json", data_dir(), sub, name);
	else
		return -EINVAL;
	if (k < 0 || (size_t)k >= pathsz)
		return -ENAMETOOLONG;
	return rf_file_read(path, RF_SIM_FILE_MAX, ret, ret_len);
}

static int load_scenario(const char *name, struct rf_sim_scenario *ret)
{
	char path[4096];
	uint8_t *p = NULL;
	size_t n = 0;
	struct rf_diag d = {0};
	int r = read_named(name, "", &p, &n, path, sizeof(path));
	if (r < 0) {
		if (r == -EINVAL)
			fprintf(stderr, "ringfence sim: scenario '%s': %s\n", name, BAD_NAME);
		else
			fprintf(stderr, "ringfence sim: scenario '%s': %s (%s)\n", name,
				rf_strerror(r), path);
		return r;
	}
	r = rf_sim_scenario_parse(p, n, ret, &d);
	free(p);
	if (r < 0)
		fprintf(stderr, "ringfence sim: %s: %s\n", path,
			d.count ? d.first : rf_strerror(r));
	return r;
}

static int load_policy(const char *name, struct rf_sim_policy *ret)
{
	char path[4096];
	uint8_t *p = NULL;
	size_t n = 0;
	struct rf_diag d = {0};
	int r = read_named(name, "policies/", &p, &n, path, sizeof(path));
	if (r < 0) {
		if (r == -EINVAL)
			fprintf(stderr, "ringfence sim: policy '%s': %s\n", name, BAD_NAME);
		else
			fprintf(stderr, "ringfence sim: policy '%s': %s (%s)\n", name,
				rf_strerror(r), path);
		return r;
	}
	r = rf_sim_policy_parse(p, n, ret, &d);
	free(p);
	if (r < 0)
		fprintf(stderr, "ringfence sim: %s: %s\n", path,
			d.count ? d.first : rf_strerror(r));
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the *.json files in dir, sorted; caller frees each and the array. */
static int list_json(const char *dir, char ***ret, size_t *ret_n)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return -errno;
	char **v = calloc(MAX_SCENARIOS, sizeof(*v));
	size_t n = 0;
	struct dirent *e;
	if (!v) {
		closedir(dp);
		return -ENOMEM;
	}
	while ((e = readdir(dp)) && n < MAX_SCENARIOS) {
		size_t len = strlen(e->d_name);
		if (len <= 5 || strcmp(e->d_name + len - 5, ".json"))
			continue;
		v[n] = strndup(e->d_name, len - 5);
		if (v[n])
			n++;
	}
	closedir(dp);
	qsort(v, n, sizeof(*v), cmp_str);
	*ret = v;
	*ret_n = n;
	return 0;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void progress(void *ud, double done)
{
	const char *label = ud;
	int w = 40, k = (int)(done * w);
	fprintf(stderr, "\r%-40.40s [", label);
	for (int i = 0; i < w; i++)
		fputc(i < k ? '#' : ' ', stderr);
	fprintf(stderr, "] %3.0f%%", done * 100);
	if (done >= 1)
		fprintf(stderr, "\r%*s\r", 90, "");
	fflush(stderr);
}

static int write_out(const char *dir, const struct rf_sim_result *res)
{
	char path[4096];
	char *text = NULL;
	size_t len = 0;
	int r = rf_mkdir_p(dir, 0755);
	if (r < 0)
		return r;
	r = rf_sim_render_csv(res, &text, &len);
	if (r == 0) {
		snprintf(path, sizeof(path), "%s/%s--%s.csv", dir, res->scenario, res->policy);
		r = rf_file_write_atomic(path, text, len, 0644);
		free(text);
	}
	if (r == 0) {
		r = rf_sim_render_svg(res, &text, &len);
		if (r == 0) {
			snprintf(path, sizeof(path), "%s/%s--%s.svg", dir, res->scenario,
				 res->policy);
			r = rf_file_write_atomic(path, text, len, 0644);
			free(text);
		}
	}
	if (r < 0)
		fprintf(stderr, "ringfence sim: writing %s: %s\n", path, rf_strerror(r));
	return r;
}

/* Say where the files went: the directory as an absolute path, and each run's pair of files
 * (or how many there are when more than a few). */
static void print_written(const char *dir, size_t nruns, char (*stems)[200])
{
	char *abs = realpath(dir, NULL);

	if (nruns == 0) {
		free(abs);
		return;
	}
	printf("\nwrote %zu timeline%s (.csv) and chart%s (.svg) to %s/\n", nruns,
	       nruns == 1 ? "" : "s", nruns == 1 ? "" : "s", abs ? abs : dir);
	for (size_t i = 0; i < nruns && nruns <= 4; i++)
		printf("  %s.csv  %s.svg\n", stems[i], stems[i]);
	if (nruns > 4)
		printf("  <scenario>--<policy>.csv and .svg for each run above\n");
	free(abs);
}

struct run_opts {
	struct rf_sim_options o;
	const char *out;
	bool files;
	bool tty;
	bool header_done;
	size_t nnotes;
	char notes[2 * MAX_SCENARIOS][400]; /* what halted each run, printed after the table */
	size_t nwritten;
	char written[2 * MAX_SCENARIOS][200]; /* <scenario>--<policy> of each run's files */
};

static void print_notes(const struct run_opts *ro)
{
	if (ro->nnotes == 0)
		return;
	printf("\nwhat stopped each bad release first; where the fleet ends:\n");
	for (size_t i = 0; i < ro->nnotes; i++)
		printf("  %s\n", ro->notes[i]);
}

static int run_one(struct run_opts *ro, const struct rf_sim_scenario *sc,
		   const struct rf_sim_policy *pol)
{
	struct rf_diag d = {0};
	struct rf_sim_result *res = NULL;
	char label[160];
	char *row = NULL;
	size_t len = 0;

	snprintf(label, sizeof(label), "%s / %s", sc->name, pol->name);
	ro->o.progress = ro->tty ? progress : NULL;
	ro->o.userdata = label;
	int r = rf_sim_run(sc, pol, &ro->o, &d, &res);
	if (r < 0) {
		fprintf(stderr, "ringfence sim: %s: %s\n", label,
			d.count ? d.first : rf_strerror(r));
		return r;
	}
	r = rf_sim_render_summary(res, !ro->header_done, &row, &len);
	if (r == 0) {
		fwrite(row, 1, len, stdout);
		fflush(stdout);
		free(row);
		ro->header_done = true;
	}
	if (r == 0 && ro->nnotes < sizeof(ro->notes) / sizeof(ro->notes[0]))
		snprintf(ro->notes[ro->nnotes++], sizeof(ro->notes[0]),
			 "%.63s / %.63s: %.150s; at the end %llu of %llu devices run release %d", sc->name,
			 pol->name, res->halt_s >= 0 ? res->halt_reason : "nothing (never halted)",
			 (unsigned long long)res->on_final, (unsigned long long)res->devices,
			 res->final_release);
	if (r == 0 && ro->files)
		r = write_out(ro->out, res);
	if (r == 0 && ro->files && ro->nwritten < sizeof(ro->written) / sizeof(ro->written[0]))
		snprintf(ro->written[ro->nwritten++], sizeof(ro->written[0]), "%s--%s",
			 res->scenario, res->policy);
	rf_sim_result_free(res);
	return r;
}

static int run_scenario(struct run_opts *ro, const char *name, const char *policy)
{
	struct rf_sim_scenario *sc = malloc(sizeof(*sc));
	struct rf_sim_policy *pol = malloc(sizeof(*pol));
	static const char *const both[] = {"push-to-all", "default"};
	int r = -ENOMEM;

	if (!sc || !pol)
		goto out;
	r = load_scenario(name, sc);
	for (size_t k = 0; r == 0 && k < (policy ? 1 : 2); k++) {
		r = load_policy(policy ? policy : both[k], pol);
		if (r == 0)
			r = run_one(ro, sc, pol);
	}
out:
	free(sc);
	free(pol);
	return r;
}

static int list_all(void)
{
	char **v = NULL;
	size_t n = 0;
	char dir[4096];
	int r = list_json(data_dir(), &v, &n);
	if (r < 0) {
		fprintf(stderr, "ringfence sim: %s: %s\n", data_dir(), rf_strerror(r));
		return 2;
	}
	printf("scenarios (%s):\n", data_dir());
	for (size_t i = 0; i < n; i++)
		printf("  %s\n", v[i]);
	free_list(v, n);
	if (snprintf(dir, sizeof(dir), "%s/policies", data_dir()) >= (int)sizeof(dir))
		dir[0] = 0; /* a data directory path too long to name its policies: none listed */
	if (dir[0] && list_json(dir, &v, &n) == 0) {
		printf("policies (%s):\n", dir);
		for (size_t i = 0; i < n; i++)
			printf("  %s\n", v[i]);
		free_list(v, n);
	}
	return 0;
}

static int classify(struct run_opts *ro, const char *policy, unsigned seeds)
{
	static const char *const both[] = {"rapid", "default"};
	struct rf_sim_scenario *base = malloc(sizeof(*base));
	struct rf_sim_policy *pol = malloc(sizeof(*pol));
	struct rf_sim_classification *c = malloc(sizeof(*c));
	int r = -ENOMEM;
	if (!base || !pol || !c)
		goto out;
	r = load_scenario("probabilistic-crash", base);
	if (r == 0 && !ro->o.devices)
		ro->o.devices = 100000;
	for (size_t k = 0; r == 0 && k < (policy ? 1 : 2); k++) {
		struct rf_diag d = {0};
		char *text = NULL;
		size_t len = 0;
		r = load_policy(policy ? policy : both[k], pol);
		if (r == 0)
			r = rf_sim_classify(base, pol, &ro->o, seeds, &d, c);
		if (r < 0) {
			fprintf(stderr, "ringfence sim: --classify: %s\n",
				d.count ? d.first : rf_strerror(r));
			break;
		}
		r = rf_sim_render_classification(c, &text, &len);
		if (r == 0) {
			printf("%s%s", k ? "\n" : "", text);
			fflush(stdout);
			free(text);
		}
	}
out:
	free(base);
	free(pol);
	free(c);
	return r < 0 ? 2 : 0;
}

static int sweep(struct run_opts *ro)
{
	char **sn = NULL, **pn = NULL, dir[4096];
	size_t nsn = 0, npn = 0, nothers = 0;
	struct rf_sim_scenario *sc = malloc(sizeof(*sc));
	struct rf_sim_scenario *others = calloc(MAX_SCENARIOS, sizeof(*others));
	struct rf_sim_policy *base = malloc(sizeof(*base));
	struct rf_sim_policy *named = calloc(12, sizeof(*named));
	struct rf_sim_sweep *w = NULL;
	struct rf_diag d = {0};
	char *text = NULL;
	size_t len = 0;
	int r = -ENOMEM;
	if (!sc || !others || !base || !named)
		goto out;
	if (snprintf(dir, sizeof(dir), "%s/policies", data_dir()) >= (int)sizeof(dir))
		r = -ENAMETOOLONG;
	else if ((r = list_json(data_dir(), &sn, &nsn)) >= 0)
		r = list_json(dir, &pn, &npn);
	if (r < 0) {
		fprintf(stderr, "ringfence sim: %s: %s\n", data_dir(), rf_strerror(r));
		goto out;
	}
	if ((r = load_scenario("crowdstrike-2024-07-19", sc)) < 0 ||
	    (r = load_policy("rapid", base)) < 0)
		goto out;
	for (size_t k = 0; k < nsn && r == 0; k++)
		if (strcmp(sn[k], "crowdstrike-2024-07-19"))
			r = load_scenario(sn[k], &others[nothers++]);
	for (size_t k = 0; k < npn && k < 12 && r == 0; k++)
		r = load_policy(pn[k], &named[k]);
	if (r < 0)
		goto out;
	if (!ro->o.devices)
		ro->o.devices = 100000;
	ro->o.progress = ro->tty ? progress : NULL;
	ro->o.userdata = "policy sweep";
	r = rf_sim_sweep_run(sc, base, named, npn < 12 ? npn : 12, others, nothers, &ro->o, &d, &w);
	if (r < 0) {
		fprintf(stderr, "ringfence sim: --sweep: %s\n", d.count ? d.first : rf_strerror(r));
		goto out;
	}
	if ((r = rf_sim_render_sweep(w, &text, &len)) == 0) {
		fwrite(text, 1, len, stdout);
		free(text);
	}
	if (r == 0 && ro->files && (r = rf_mkdir_p(ro->out, 0755)) == 0 &&
	    (r = rf_sim_render_sweep_svg(w, &text, &len)) == 0) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/sweep.svg", ro->out);
		r = rf_file_write_atomic(path, text, len, 0644);
		free(text);
		if (r < 0)
			fprintf(stderr, "ringfence sim: writing %s: %s\n", path, rf_strerror(r));
	}
out:
	if (sn)
		free_list(sn, nsn);
	if (pn)
		free_list(pn, npn);
	free(sc);
	free(others);
	free(base);
	free(named);
	free(w);
	return r < 0 ? 2 : 0;
}

int rf_cli_sim(int argc, char **argv)
{
	static struct run_opts ro;
	ro = (struct run_opts){.o = {.seed = 1, .velocity = true}, .out = "sim-out", .files = true};
	const char *scenario = NULL, *policy = NULL;
	bool all = false, classify_mode = false, sweep_mode = false;
	unsigned seeds = 3;

	static const struct option lo[] = {
	    {"policy", required_argument, NULL, 'p'}, {"devices", required_argument, NULL, 'd'},
	    {"seed", required_argument, NULL, 's'},   {"duration", required_argument, NULL, 't'},
	    {"out", required_argument, NULL, 'o'},    {"no-files", no_argument, NULL, 'n'},
	    {"all", no_argument, NULL, 'a'},	      {"list", no_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},	      {"no-velocity", no_argument, NULL, 'V'},
	    {"classify", no_argument, NULL, 'C'},     {"seeds", required_argument, NULL, 'k'},
	    {"sweep", no_argument, NULL, 'S'},	      {0}};
	int c;

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence sim")) != -1) {
		const char *v = optarg, *a = c == 'd'	? "--devices"
					     : c == 's' ? "--seed"
							: "--duration";
		uint64_t x;
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'l':
			return list_all();
		case 'a':
			all = true;
			break;
		case 'n':
			ro.files = false;
			break;
		case 'V':
			ro.o.velocity = false;
			break;
		case 'C':
			classify_mode = true;
			break;
		case 'S':
			sweep_mode = true;
			break;
		case 'k':
			if (rf_parse_u64(v, &x) < 0 || x == 0 || x > 100) {
				fprintf(stderr, "ringfence sim: --seeds must be in [1, 100]\n");
				return 2;
			}
			seeds = (unsigned)x;
			break;
		case 'p':
			policy = v;
			break;
		case 'o':
			ro.out = v;
			break;
		case 'd':
		case 's':
		case 't':
			if (rf_parse_u64(v, &x) < 0) {
				fprintf(stderr, "ringfence sim: %s needs a whole number\n", a);
				return 2;
			}
			if (c == 'd') {
				if (x == 0 || x > RF_SIM_DEVICES_MAX) {
					fprintf(stderr,
						"ringfence sim: --devices must be in [1, %u]\n",
						RF_SIM_DEVICES_MAX);
					return 2;
				}
				ro.o.devices = x;
			} else if (c == 's') {
				ro.o.seed = x;
			} else {
				if (x < 60 || x > RF_SIM_DURATION_MAX) {
					fprintf(stderr,
						"ringfence sim: --duration must be in [60, %u]\n",
						RF_SIM_DURATION_MAX);
					return 2;
				}
				ro.o.duration_s = (uint32_t)x;
			}
			break;
		default:
			return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (!scenario) {
			scenario = argv[i];
		} else {
			fprintf(stderr, "ringfence sim: more than one scenario ('%s')\n", argv[i]);
			return 2;
		}
	}
	ro.tty = isatty(STDERR_FILENO);
	if (classify_mode && !sweep_mode && !all && !scenario)
		return classify(&ro, policy, seeds);
	if (sweep_mode && !classify_mode && !all && !scenario && !policy)
		return sweep(&ro);
	if (classify_mode || sweep_mode || all == !!scenario) {
		usage(stderr);
		return 2;
	}
	ro.tty = isatty(STDERR_FILENO);
	if (!all) {
		int r = run_scenario(&ro, scenario, policy);
		print_notes(&ro);
		print_written(ro.out, ro.nwritten, ro.written);
		return r < 0 ? 2 : 0;
	}

	char **v = NULL;
	size_t n = 0;
	int r = list_json(data_dir(), &v, &n);
	if (r < 0) {
		fprintf(stderr, "ringfence sim: %s: %s\n", data_dir(), rf_strerror(r));
		return 2;
	}
	int rc = 0;
	for (size_t k = 0; k < n; k++)
		if (run_scenario(&ro, v[k], policy) < 0)
			rc = 2;
	free_list(v, n);
	print_notes(&ro);
	print_written(ro.out, ro.nwritten, ro.written);
	return rc;
}
