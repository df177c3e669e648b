/*
 * ringfence-agent: the endpoint agent (docs/agent.md).
 *
 *   run       the supervisor: guard + store, the evaluation worker, check-ins
 *   status    what the store says (current, last known good, trial attempts, quarantine, safe)
 *   manifest  the agent manifest a run uses (manifests.h: chosen by its event source)
 *
 * The supervisor never loads content itself: packs are verified in a short-lived child bounded
 * in time and memory (verifier.c) and evaluated in the worker child (worker.c), so content can
 * neither kill nor stall the supervisor and its update channel (P5). Every decision about what
 * runs is the guard's (guard.c); every guard step is made durable by rf_store_apply BEFORE the
 * load it asks for (write-ahead, P4/P8).
 * Content arrives only through the TUF client (P9) and is checked against the signed schedule
 * (P6) and the run's manifest (P1) before the guard ever sees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent/agent.h"
#include "agent/source.h"
#include "common/log.h"
#include "common/opt.h"
#include "ringfence/content.h"
#include "trust/tuf.h"

#ifndef RF_VERSION
#define RF_VERSION "0.0.0"
#endif

/* ---- fault injection: kill at a store step (tests) ---------------------------------------- */

/* RINGFENCE_FAULT_KILL_AT_STEP=N: SIGKILL this process just before the N-th file-system call
 * of the store that changes something (docs/agent.md). The crash test walks N over every step
 * of a run. It bypasses no check: the call is simply never made. */
static unsigned long long kill_at_step, store_steps;

static void step_tick(void)
{
	store_steps++;
	if (kill_at_step && store_steps == kill_at_step)
		raise(SIGKILL);
}

static int k_open(void *ud, const char *p, int f, mode_t m)
{
	step_tick();
	return rf_store_ops_posix()->open(NULL, p, f, m);
}

static int k_write(void *ud, int fd, const void *p, size_t n)
{
	step_tick();
	return rf_store_ops_posix()->write(NULL, fd, p, n);
}

static int k_fsync(void *ud, int fd)
{
	step_tick();
	return rf_store_ops_posix()->fsync(NULL, fd);
}

static int k_close(void *ud, int fd)
{
	step_tick();
	return rf_store_ops_posix()->close(NULL, fd);
}

static int k_rename(void *ud, const char *a, const char *b)
{
	step_tick();
	return rf_store_ops_posix()->rename(NULL, a, b);
}

static int k_unlink(void *ud, const char *p)
{
	step_tick();
	return rf_store_ops_posix()->unlink(NULL, p);
}

static int k_mkdir(void *ud, const char *p, mode_t m)
{
	step_tick();
	return rf_store_ops_posix()->mkdir(NULL, p, m);
}

static int k_fsync_dir(void *ud, const char *p)
{
	step_tick();
	return rf_store_ops_posix()->fsync_dir(NULL, p);
}

static const struct rf_store_ops killing_ops = {
    .open = k_open,
    .write = k_write,
    .fsync = k_fsync,
    .close = k_close,
    .rename = k_rename,
    .unlink = k_unlink,
    .mkdir = k_mkdir,
    .fsync_dir = k_fsync_dir,
};

/* ---- run ---------------------------------------------------------------------------------- */

static void usage_run(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringfence-agent run --server URL [--store DIR] [--ring NAME]\n"
	    "                           [--events proc|audit|SOCKET|FILE|-] [--alerts FILE|-]\n"
	    "                           [options]\n"
	    "\n"
	    "Run the agent: check in with the server, take releases through TUF, run content on\n"
	    "trial under the crash-loop guard, evaluate events in a supervised worker.\n"
	    "\n"
	    "  --server URL          ringfenced base URL (e.g. http://127.0.0.1:8440)\n"
	    "  --store DIR           durable store (default " RF_STORE_DIR_DEFAULT ")\n"
	    "  --ring NAME           ring to ask for at enrollment, and the one whose signed\n"
	    "                        schedule a release must admit, whatever the server says\n"
	    "                        (or env RINGFENCE_RING)\n"
	    "  --events SRC          JSON event lines: FILE (followed as it grows), a FIFO, '-' "
	    "for\n"
	    "                        stdin, or unix:PATH to listen on a unix stream socket;\n"
	    "                        or 'proc': this host's process creation from the kernel\n"
	    "                        (needs root: CAP_NET_ADMIN; docs/agent.md, Event sources);\n"
	    "                        'audit': its kernel audit records (CAP_AUDIT_READ);\n"
	    "                        'proc,audit': both; or log files it follows:\n"
	    "                        'log:EVENT=PATH[,log:EVENT=PATH...]', EVENT an event\n"
	    "                        type of ringfence-agent-logs-1.0.0 (aws_cloudtrail,\n"
	    "                        linux_sshd, webserver...; docs/agent.md, The log-file\n"
	    "                        source)\n"
	    "  --alerts DST          alerts as JSON lines: FILE (appended) or '-' for stdout\n"
	    "  --manifest NAME       verify packs against this embedded manifest (default: the\n"
	    "                        one for --events: 'proc' ringfence-agent-linux-1.2.0,\n"
	    "                        'audit' and 'proc,audit' ringfence-agent-linux-1.3.0,\n"
	    "                        'log:...' ringfence-agent-logs-1.0.0, anything else\n"
	    "                        ringfence-agent-1.1.0; 'ringfence-agent\n"
	    "                        manifest --list' lists them)\n"
	    "  --device-id ID        device id (default: the store's, else /etc/machine-id)\n"
	    "  --enroll-token TOKEN  tenant enrollment token (or env RINGFENCE_ENROLL_TOKEN)\n"
	    "  --tuf-root FILE       trusted TUF root.json, installed on first start\n"
	    "  --repo-url URL        TUF repository base (default SERVER/repo)\n"
	    "  --poll SECONDS        check-in interval until the server sets one (default 300)\n"
	    "  --attempts N          loads a pack gets without surviving probation (default 3)\n"
	    "  --probation SECONDS   run time a pack must survive (default 600)\n"
	    "  --probation-events N  events it must evaluate (default 1000)\n"
	    "  -v, --verbose         debug logging\n"
	    "\n"
	    "Fault injection (tests, demo; see docs/agent.md):\n"
	    "  RINGFENCE_FAULT_CRASH_ON_LOAD=<sha256>         kill the whole agent right after\n"
	    "                                                 that pack loads\n"
	    "  RINGFENCE_FAULT_WORKER_CRASH_ON_LOAD=<sha256>  kill only the worker\n"
	    "  RINGFENCE_FAULT_KILL_AT_STEP=N                 kill the agent before its N-th\n"
	    "                                                 durable store step\n"
	    "  RINGFENCE_FAULT_VERIFY=MODE[:<sha256>]         the verifier child hangs, spins,\n"
	    "                                                 eats memory or crashes (hang, spin,\n"
	    "                                                 oom, crash) instead of verifying\n");
}

static int parse_uint_opt(const char *name, const char *v, uint64_t min, uint64_t max,
			  uint64_t *ret)
{
	uint64_t x;

	if (rf_parse_u64(v, &x) < 0 || x < min || x > max) {
		fprintf(stderr, "ringfence-agent: %s: '%s' is not a number in %llu..%llu\n", name,
			v, (unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	*ret = x;
	return 0;
}

/* RINGFENCE_FAULT_VERIFY=MODE[:SHA256] (docs/agent.md, tests only): the verifier child plays
 * MODE (hang, spin, oom, crash) instead of verifying, for every pack or only the one with that
 * hash. It can only make a pack rejected, never accepted. */
static int parse_verify_fault(struct opts *o, const char *v)
{
	char mode[16];
	const char *colon = strchr(v, ':');
	size_t ml = colon ? (size_t)(colon - v) : strlen(v);

	if (ml >= sizeof(mode))
		goto bad;
	memcpy(mode, v, ml);
	mode[ml] = 0;
	if (rf_verifier_fault_parse(mode, &o->vlim.fault) < 0)
		goto bad;
	if (colon) {
		uint8_t h[32];
		if (strlen(colon + 1) != 64 || rf_hex_decode(colon + 1, 64, h, sizeof(h)) < 0)
			goto bad;
		hex32(h, o->vfault_hash);
	}
	rf_log_warn("fault injection: the verifier will %s instead of verifying %s%s", mode,
		    colon ? "pack " : "any pack", colon ? o->vfault_hash : "");
	return 0;
bad:
	fprintf(stderr,
		"ringfence-agent: RINGFENCE_FAULT_VERIFY='%s': want hang, spin, oom or crash, "
		"optionally followed by :SHA256\n",
		v);
	return -EINVAL;
}

static void pick_device_id(struct agent *ag)
{
	uint8_t *buf = NULL;
	size_t n = 0;

	if (ag->o.device_id)
		snprintf(ag->device_id, sizeof(ag->device_id), "%s", ag->o.device_id);
	else if (rf_store_device_id(ag->st)[0])
		snprintf(ag->device_id, sizeof(ag->device_id), "%s", rf_store_device_id(ag->st));
	else if (rf_file_read("/etc/machine-id", 256, &buf, &n) == 0) {
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
			n--;
		snprintf(ag->device_id, sizeof(ag->device_id), "%.*s", (int)n, (const char *)buf);
	}
	free(buf);
	if (!ag->device_id[0] && gethostname(ag->device_id, sizeof(ag->device_id) - 1) < 0)
		ag->device_id[0] = 0;
}

/* A base URL into out without its trailing slashes ("https://cdn.example.net/ringfence/" ->
 * ".../ringfence"), so paths are joined with exactly one. Returns -ENAMETOOLONG if it does not
 * fit. */
static int base_url(const char *url, char *out, size_t cap)
{
	size_t n = strlen(url);

	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n >= cap)
		return -ENAMETOOLONG;
	memcpy(out, url, n);
	out[n] = 0;
	return 0;
}

/* An environment variable's value, NULL when unset or empty (an EnvironmentFile line "X=" is
 * "not given", not an empty token or ring). */
static const char *env_opt(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* Options of `run` into ag-> Returns -1 to go on, else the exit code (0 after --help). */
static int parse_run(int argc, char **argv, struct agent *ag)
{
	static const struct option lo[] = {
	    {"server", required_argument, NULL, 's'},
	    {"store", required_argument, NULL, 'd'},
	    {"ring", required_argument, NULL, 'r'},
	    {"events", required_argument, NULL, 'e'},
	    {"alerts", required_argument, NULL, 'a'},
	    {"manifest", required_argument, NULL, 'm'},
	    {"device-id", required_argument, NULL, 'i'},
	    {"enroll-token", required_argument, NULL, 't'},
	    {"tuf-root", required_argument, NULL, 'R'},
	    {"repo-url", required_argument, NULL, 'u'},
	    {"poll", required_argument, NULL, 'p'},
	    {"attempts", required_argument, NULL, 'n'},
	    {"probation", required_argument, NULL, 'P'},
	    {"probation-events", required_argument, NULL, 'E'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	uint64_t v;
	int c;

	rf_refused_init(&ag->refused);
	rf_transit_init(&ag->transit);
	ag->o.store = RF_STORE_DIR_DEFAULT;
	ag->o.poll = RF_AGENT_POLL_DEFAULT_S;
	ag->o.enroll_token = env_opt("RINGFENCE_ENROLL_TOKEN");
	ag->o.ring = env_opt("RINGFENCE_RING");
	rf_guard_config_default(&ag->o.gcfg);
	rf_verifier_limits_default(&ag->o.vlim);
	ag->status_fd = -1;
	optind = 1;
	while ((c = rf_getopt(argc, argv, "vh", lo, "ringfence-agent run")) != -1) {
		switch (c) {
		case 's':
			ag->o.server = optarg;
			break;
		case 'd':
			ag->o.store = optarg;
			break;
		case 'r':
			ag->o.ring = optarg;
			break;
		case 'e':
			ag->o.events = optarg;
			break;
		case 'a':
			ag->o.alerts = optarg;
			break;
		case 'm':
			ag->o.manifest = optarg;
			break;
		case 'i':
			ag->o.device_id = optarg;
			break;
		case 't':
			ag->o.enroll_token = optarg;
			break;
		case 'R':
			ag->o.tuf_root = optarg;
			break;
		case 'u':
			ag->o.repo_url = optarg;
			break;
		case 'p':
			if (parse_uint_opt("--poll", optarg, 1, RF_AGENT_POLL_MAX_S, &v) < 0)
				return 2;
			ag->o.poll = (uint32_t)v;
			break;
		case 'n':
			if (parse_uint_opt("--attempts", optarg, 1, 255, &v) < 0)
				return 2;
			ag->o.gcfg.attempt_limit = (uint8_t)v;
			break;
		case 'P':
			if (parse_uint_opt("--probation", optarg, 0, UINT32_MAX, &v) < 0)
				return 2;
			ag->o.gcfg.probation_ms = v * 1000;
			break;
		case 'E':
			if (parse_uint_opt("--probation-events", optarg, 0, UINT64_MAX, &v) < 0)
				return 2;
			ag->o.gcfg.probation_events = v;
			break;
		case 'v':
			rf_log_init("ringfence-agent", RF_LOG_DEBUG);
			break;
		case 'h':
			usage_run(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc || !ag->o.server) {
		fprintf(stderr, "ringfence-agent run: %s\n\n",
			!ag->o.server ? "--server URL is required" : "unexpected argument");
		usage_run(stderr);
		return 2;
	}
	if (base_url(ag->o.server, ag->server_url, sizeof(ag->server_url)) < 0 ||
	    (ag->o.repo_url && base_url(ag->o.repo_url, ag->repo_url, sizeof(ag->repo_url)) < 0)) {
		fprintf(stderr, "ringfence-agent run: --server or --repo-url: URL too long\n");
		return 2;
	}
	ag->o.server = ag->server_url;
	if (strncmp(ag->o.server, "http://", 7) != 0 && strncmp(ag->o.server, "https://", 8) != 0) {
		fprintf(stderr,
			"ringfence-agent run: --server must be an http:// or https:// URL\n");
		return 2;
	}
	if (ag->o.ring && !rf_checkin_id_valid(ag->o.ring, strlen(ag->o.ring))) {
		fprintf(stderr,
			"ringfence-agent run: --ring (or RINGFENCE_RING) '%s' is not a valid ring "
			"name ([A-Za-z0-9._:/-], 1..128)\n",
			ag->o.ring);
		return 2;
	}
	/* a log spec with a mistake in it is a usage error with its reason, never a file name */
	if (ag->o.events && strncmp(ag->o.events, "log:", 4) == 0) {
		struct rf_diag d = {0};
		if (rf_source_check(ag->o.events, &d) < 0) {
			fprintf(stderr, "ringfence-agent run: --events: %s\n", d.first);
			return 2;
		}
	}
	if (rf_agent_manifest_choose(ag->o.manifest, ag->o.events, &ag->manifest) < 0) {
		fprintf(stderr,
			"ringfence-agent run: --manifest %s: this build embeds no such manifest "
			"('ringfence-agent manifest --list')\n",
			ag->o.manifest);
		return 2;
	}
	if (!ag->o.repo_url && snprintf(ag->repo_url, sizeof(ag->repo_url), "%s/repo",
					ag->o.server) >= (int)sizeof(ag->repo_url)) {
		fprintf(stderr, "ringfence-agent run: --server: URL too long\n");
		return 2;
	}
	ag->o.repo_url = ag->repo_url;
	ag->poll = ag->o.poll;
	if (getrandom(&ag->rng, sizeof(ag->rng), 0) != sizeof(ag->rng) || ag->rng == 0)
		ag->rng = rf_now_mono_ns() | 1;
	return -1;
}

/* Open the store (installing the trusted TUF root on first start), settle the identity,
 * open the event source and the alerts output. Returns 0, or the exit code. */
static int start_run(struct agent *ag)
{
	struct rf_diag d = {0};
	uint64_t v;
	int r;

	if (getenv("RINGFENCE_FAULT_KILL_AT_STEP") &&
	    rf_parse_u64(getenv("RINGFENCE_FAULT_KILL_AT_STEP"), &v) == 0 && v > 0) {
		kill_at_step = v;
		rf_log_warn("fault injection: killing this process at store step %llu",
			    kill_at_step);
	}
	const char *vf = getenv("RINGFENCE_FAULT_VERIFY"); /* empty: unset, like the others */
	if (vf && *vf && parse_verify_fault(&ag->o, vf) < 0)
		return 2;
	/* the store: another agent may still be dying (its worker holds the lock for a moment) */
	for (unsigned i = 0;; i++) {
		memset(&d, 0, sizeof(d));
		r = rf_store_open_reset(ag->o.store, kill_at_step ? &killing_ops : NULL, &ag->st,
					&d);
		if (r != -EBUSY || i == 50)
			break;
		usleep(100000);
	}
	if (r < 0) {
		rf_log_error("store %s: %s", ag->o.store, d.first[0] ? d.first : rf_strerror(r));
		return 1;
	}
	if (d.count)
		rf_log_warn("store %s: %s (kept as state.json.bad; starting empty)", ag->o.store,
			    d.first);
	{
		char root_path[PATH_MAX];
		snprintf(root_path, sizeof(root_path), "%s/tuf/root.json", rf_store_dir(ag->st));
		if (access(root_path, F_OK) != 0) {
			uint8_t *p = NULL;
			size_t n;
			struct rf_diag td = {0};
			if (!ag->o.tuf_root) {
				rf_log_error("no trusted TUF root in %s: pass --tuf-root FILE once",
					     root_path);
				rf_store_free(ag->st);
				return 1;
			}
			char tuf_dir[PATH_MAX];
			snprintf(tuf_dir, sizeof(tuf_dir), "%s/tuf", rf_store_dir(ag->st));
			if ((r = rf_file_read(ag->o.tuf_root, RF_FILE_MAX, &p, &n)) < 0 ||
			    (r = rf_tuf_client_init(tuf_dir, p, n, &td)) < 0) {
				rf_log_error("--tuf-root %s: %s %s", ag->o.tuf_root, rf_strerror(r),
					     td.first);
				free(p);
				rf_store_free(ag->st);
				return 1;
			}
			free(p);
		}
	}
	{
		char cred[RF_AGENT_CREDENTIAL_MAX + 1];
		if (rf_store_credential_get(ag->st, cred, sizeof(cred)) == 0)
			snprintf(ag->credential, sizeof(ag->credential), "%s", cred);
	}
	if (!ag->credential[0] && !ag->o.enroll_token) { /* would retry enrolling for ever */
		rf_log_error("not enrolled yet (%s holds no credential) and no enrollment token: "
			     "give --enroll-token TOKEN or RINGFENCE_ENROLL_TOKEN (`ringfence "
			     "tenant create` or `ringfence tenant token` prints one)",
			     ag->o.store);
		rf_store_free(ag->st);
		return 2;
	}
	pick_device_id(ag);
	if (!rf_checkin_id_valid(ag->device_id, strlen(ag->device_id))) {
		rf_log_error("device id '%s' is not a valid identifier ([A-Za-z0-9._:/-], 1..128)",
			     ag->device_id);
		rf_store_free(ag->st);
		return 1;
	}
	/* P6: the operator's ring (--ring, RINGFENCE_RING) is the one the signed schedule is
	 * checked against, whatever ring a server gave at enrollment; without one, the server's
	 * (kept in the store) is trusted (docs/agent.md, "Which ring") */
	if (ag->o.ring) {
		snprintf(ag->ring, sizeof(ag->ring), "%s", ag->o.ring);
		if (rf_store_ring(ag->st)[0] && strcmp(rf_store_ring(ag->st), ag->o.ring) != 0)
			rf_log_warn(
			    "the server put this device in ring '%s' at enrollment, but this "
			    "agent was given ring '%s' (--ring or RINGFENCE_RING): releases "
			    "are taken only when the signed schedule admits ring '%s'",
			    rf_store_ring(ag->st), ag->o.ring, ag->o.ring);
	} else if (rf_store_ring(ag->st)[0]) {
		snprintf(ag->ring, sizeof(ag->ring), "%s", rf_store_ring(ag->st));
	}
	{
		size_t ml;
		const uint8_t *mb = ag->manifest->bytes(&ml);
		rf_sha256_hex(mb, ml, ag->manifest_hash);
	}
	ag->id = (struct rf_agent_identity){.device_id = ag->device_id,
					    .ring = ag->ring,
					    .agent_version = RF_VERSION,
					    .manifest_hash = ag->manifest_hash};
	memset(&d, 0, sizeof(d));
	if ((r = rf__agent_events_open(ag, &d)) < 0) {
		if (d.first[0])
			rf_log_error("--events: %s", d.first);
		else
			rf_log_error("--events %s: %s", ag->o.events, rf_strerror(r));
		rf_store_free(ag->st);
		return 1;
	}
	if ((r = rf__agent_alerts_open(ag)) < 0) {
		rf_log_error("--alerts %s: %s", ag->o.alerts, rf_strerror(r));
		rf_store_free(ag->st);
		return 1;
	}
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	struct agent ag;
	int r;

	memset(&ag, 0, sizeof(ag));
	if ((r = parse_run(argc, argv, &ag)) >= 0)
		return r;
	if ((r = start_run(&ag)) != 0)
		return r;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = rf__agent_supervise(&ag);
	rf_log_notice("stopping");
	if (kill_at_step)
		rf_log_notice("fault injection: %llu store steps in this run", store_steps);
	if (r == 0)
		rf__agent_shutdown(&ag);
	rf_store_free(ag.st);
	curl_global_cleanup();
	return ag.exit_code ? ag.exit_code : r;
}

static int cmd_manifest(int argc, char **argv)
{
	static const struct option lo[] = {{"events", required_argument, NULL, 'e'},
					   {"manifest", required_argument, NULL, 'm'},
					   {"list", no_argument, NULL, 'l'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	const struct rf_agent_manifest *am;
	const char *events = NULL, *name = NULL;
	bool list = false;
	size_t n;
	const uint8_t *m;
	int c;

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence-agent manifest")) != -1) {
		switch (c) {
		case 'e':
			events = optarg;
			break;
		case 'm':
			name = optarg;
			break;
		case 'l':
			list = true;
			break;
		case 'h':
			printf("usage: ringfence-agent manifest [--events SRC] [--manifest NAME] "
			       "[--list]\n\n"
			       "Print the agent manifest that 'run' with the same --events and "
			       "--manifest verifies\npacks against: the event types and fields "
			       "it supplies. --list: the manifests\nthis build embeds, with the "
			       "--events source each is the default for.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringfence-agent manifest: unexpected argument '%s'\n",
			argv[optind]);
		return 2;
	}
	if (list) {
		for (size_t i = 0; (am = rf_agent_manifest_at(i)); i++)
			printf("%-30s %s\n", am->name,
			       am->events ? am->events : "(any other --events, or none)");
		return 0;
	}
	if (rf_agent_manifest_choose(name, events, &am) < 0) {
		fprintf(stderr, "ringfence-agent manifest: --manifest %s: no such manifest\n",
			name);
		return 2;
	}
	m = am->bytes(&n);
	if (fwrite(m, 1, n, stdout) != n)
		return 1;
	if (n > 0 && m[n - 1] != '\n')
		putchar('\n');
	return 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringfence-agent COMMAND [ARGS...]\n\n"
	    "commands:\n"
	    "  run       run the agent (check-ins, content under the crash-loop guard)\n"
	    "  status    show the store: current, last known good, trial, quarantine, safe mode\n"
	    "  manifest  print the agent manifest a run verifies packs against\n"
	    "\n'ringfence-agent COMMAND --help' shows a command's usage.\n");
}

int main(int argc, char **argv)
{
	rf_log_init("ringfence-agent", RF_LOG_INFO);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("ringfence-agent %s\n", RF_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return rf__agent_cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "manifest"))
		return cmd_manifest(argc - 1, argv + 1);
	if (argv[1][0] == '-') {
		fprintf(stderr,
			"ringfence-agent: unknown option '%s' (try 'ringfence-agent --help')\n",
			argv[1]);
		return 2;
	}
	fprintf(stderr, "ringfence-agent: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
