/*
 * `ringfence demo`: the fleet's plumbing. Spawning the real ringfenced and ringfence-agent
 * processes, each in its own process group with PR_SET_PDEATHSIG; supervising them (a host whose
 * agent died reboots after 0.3 s, as a machine would come back up); feeding every agent's event
 * stream; stopping and reaping everything; and the narration and promise checks every act
 * prints. Only 127.0.0.1 is used; every wait is bounded and ends on rf__demo_stop_signal.
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

volatile sig_atomic_t rf__demo_stop_signal;

const char *const rf__demo_ring_names[NRINGS] = {"canary", "early", "broad"};

/* snprintf that reports truncation as -ENAMETOOLONG (paths are checked once at setup: the
 * work dir is at most DEMO_DIR_MAX bytes, so the composed paths below always fit). */
int rf__demo_pathf(char *out, size_t outsz, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

uint64_t rf__demo_now_ms(void)
{
	return rf_now_mono_ns() / 1000000u;
}

/* ---- narration -------------------------------------------------------------------------- */

void rf__demo_say(struct demo *d, const char *fmt, ...)
{
	va_list ap;
	uint64_t t = rf__demo_now_ms() - d->t0_ms;

	printf("[%3u:%02u] ", (unsigned)(t / 60000), (unsigned)(t / 1000 % 60));
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void rf__demo_act(struct demo *d, const char *title)
{
	printf("\n== %s ==\n", title);
	fflush(stdout);
	(void)d;
}

/* A promise checked against real state: "ok" or "BROKEN" (which makes the exit code 1). */
bool rf__demo_check(struct demo *d, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("   %s ", ok ? "ok    " : "BROKEN");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!ok)
		d->broken++;
	return ok;
}

/* ---- processes --------------------------------------------------------------------------- */

/* Start argv in its own process group, output appended to logpath. extra_env: NULL or a
 * NULL-terminated list of NAME=VALUE strings that outlive the child's exec. */
static pid_t spawn(char *const argv[], const char *logpath, char *const extra_env[])
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd;

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, 0);
		fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		for (size_t i = 0; extra_env && extra_env[i]; i++)
			putenv(extra_env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	return pid;
}

void rf__demo_kill_group(pid_t pid, int sig)
{
	if (pid > 0) {
		kill(-pid, sig);
		kill(pid, sig);
	}
}

/* Wait for child pid to exit until deadline (rf__demo_now_ms; and, with by_signal, until
 * Ctrl-C); past it, kill its process group and reap it. 0 with its wait status in *ret_st
 * when it exited in time, -ETIMEDOUT when it had to be killed. */
static int wait_exit(pid_t pid, uint64_t deadline, bool by_signal, int *ret_st)
{
	int st;

	for (;;) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			*ret_st = st;
			return 0;
		}
		if ((by_signal && rf__demo_stop_signal) || rf__demo_now_ms() > deadline) {
			rf__demo_kill_group(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -ETIMEDOUT;
		}
		usleep(20000);
	}
}

/* Run a tool to completion (bounded: 120 s); 0 when it exited 0. */
int rf__demo_run_tool(struct demo *d, char *const argv[], const char *logname)
{
	char log[DEMO_PATH];
	int st, r;
	pid_t pid;

	rf__demo_pathf(log, sizeof(log), "%s/%s", d->work, logname);
	pid = spawn(argv, log, NULL);
	if (pid < 0)
		return (int)pid;
	if ((r = wait_exit(pid, rf__demo_now_ms() + 120000, true, &st)) < 0)
		return r;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

void rf__demo_agent_paths(const struct agent *a, const char *leaf, char *out, size_t outsz)
{
	rf__demo_pathf(out, outsz, "%s/%s", a->dir, leaf);
}

int rf__demo_agent_start(struct demo *d, struct agent *a)
{
	char store[DEMO_PATH], events[DEMO_PATH], alerts[DEMO_PATH], log[DEMO_PATH],
	    root[DEMO_PATH];
	char poll[16], probation[16];
	static char fault[128], fault_rapid[128], token[128];
	char *env[] = {fault, fault_rapid, token, NULL};
	pid_t pid;

	rf__demo_agent_paths(a, "store", store, sizeof(store));
	rf__demo_agent_paths(a, "events.jsonl", events, sizeof(events));
	rf__demo_agent_paths(a, "alerts.jsonl", alerts, sizeof(alerts));
	rf__demo_agent_paths(a, "agent.log", log, sizeof(log));
	rf__demo_pathf(root, sizeof(root), "%s/repository/metadata/1.root.json", d->repo);
	rf__demo_pathf(poll, sizeof(poll), "%u", d->poll);
	rf__demo_pathf(probation, sizeof(probation), "%u", 5u);
	/* The unknown bug: every host carries it; only hosts that load the bad pack hit it. */
	rf__demo_pathf(fault, sizeof(fault), "RINGFENCE_FAULT_CRASH_ON_LOAD=%s",
		       d->pk[PACK_BUG].hex);
	/* The last act's bad release crashes the agent's evaluation process (the worker) when it
	 * loads: content that crashes the process running it; the supervisor counts it. */
	rf__demo_pathf(fault_rapid, sizeof(fault_rapid), "RINGFENCE_FAULT_WORKER_CRASH_ON_LOAD=%s",
		       d->pk[PACK_RAPID_BAD].hex);
	/* The enrolment token by environment, as docs/operators.md's runbook gives it: on the
	 * command line every local user would read it in ps (/proc/PID/cmdline). */
	rf__demo_pathf(token, sizeof(token), "RINGFENCE_ENROLL_TOKEN=%s", d->enroll);
	char *argv[] = {d->agent_bin,
			"run",
			"--server",
			d->url,
			"--store",
			store,
			"--ring",
			(char *)rf__demo_ring_names[a->ring],
			"--device-id",
			a->id,
			"--tuf-root",
			root,
			"--poll",
			poll,
			"--probation",
			probation,
			"--probation-events",
			"0",
			"--events",
			events,
			"--alerts",
			alerts,
			NULL};
	pid = spawn(argv, log, env);
	if (pid < 0)
		return (int)pid;
	a->pid = pid;
	a->restart_ms = 0;
	return 0;
}

int rf__demo_server_start(struct demo *d)
{
	char listen[64], poll[16], portfile[DEMO_PATH], log[DEMO_PATH];
	uint64_t deadline;
	pid_t pid;

	if (d->port)
		rf__demo_pathf(listen, sizeof(listen), "127.0.0.1:%u", d->port);
	else
		rf__demo_pathf(listen, sizeof(listen), "127.0.0.1:0");
	rf__demo_pathf(poll, sizeof(poll), "%u", d->poll);
	rf__demo_pathf(portfile, sizeof(portfile), "%s/port", d->work);
	rf__demo_pathf(log, sizeof(log), "%s/ringfenced.log", d->work);
	unlink(portfile);
	/* The demo's own new database: created by the first start (ringfenced never creates one
	 * unasked), kept by every restart. The whole simulated fleet is on one address, 127.0.0.1:
	 * no per-address connection limit. */
	char *argv[] = {d->server_bin, "--listen",
			listen,	       "--db",
			d->db,	       "--repo",
			d->repo,       "--poll-interval",
			poll,	       "--threads",
			"2",	       "--port-file",
			portfile,      "--per-ip-connections",
			"0",	       d->server_db_created ? NULL : "--init",
			NULL};
	pid = spawn(argv, log, NULL);
	if (pid < 0)
		return (int)pid;
	d->server = pid;
	d->server_db_created = true;
	deadline = rf__demo_now_ms() + 15000;
	while (rf__demo_now_ms() < deadline && !rf__demo_stop_signal) {
		uint8_t *p = NULL;
		size_t n = 0;
		uint64_t port;

		if (waitpid(pid, NULL, WNOHANG) == pid) {
			d->server = 0;
			return -EIO;
		}
		if (rf_file_read(portfile, 64, &p, &n) == 0 && n > 0) {
			char buf[16] = {0};
			memcpy(buf, p, n < 15 ? n : 15);
			buf[strcspn(buf, "\r\n")] = 0;
			free(p);
			if (rf_parse_u64(buf, &port) == 0 && port > 0 && port < 65536) {
				d->port = (unsigned)port;
				rf__demo_pathf(d->url, sizeof(d->url), "http://127.0.0.1:%u",
					       d->port);
				return 0;
			}
		}
		free(p);
		usleep(50000);
	}
	return -ETIMEDOUT;
}

void rf__demo_stop_all(struct demo *d)
{
	uint64_t deadline;

	for (unsigned i = 0; d->ag && i < d->n; i++)
		if (d->ag[i].pid > 0)
			rf__demo_kill_group(d->ag[i].pid, SIGKILL);
	if (d->server > 0)
		rf__demo_kill_group(d->server, SIGTERM);
	deadline = rf__demo_now_ms() + 5000;
	for (unsigned i = 0; d->ag && i < d->n; i++)
		if (d->ag[i].pid > 0) {
			waitpid(d->ag[i].pid, NULL, 0);
			d->ag[i].pid = 0;
		}
	if (d->server > 0) {
		int st;
		(void)wait_exit(d->server, deadline, false, &st);
		d->server = 0;
	}
	/* Workers of killed agents die with their group; reap anything else that is ours. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* ---- the event streams -------------------------------------------------------------------- */

int rf__demo_load_events(struct demo *d)
{
	char path[DEMO_PATH];
	uint8_t *p;
	size_t n;
	int r;

	rf__demo_pathf(path, sizeof(path), "%s/events/sample.jsonl", d->examples);
	r = rf_file_read(path, 1 << 20, &p, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && p[j] != '\n')
			j++;
		if (j > i) {
			char **e = realloc(d->events, (d->nevents + 1) * sizeof(*e));
			if (e)
				d->events = e;
			if (!e || !(e[d->nevents] = strndup((const char *)p + i, j - i))) {
				free(p);
				return -ENOMEM;
			}
			d->nevents++;
		}
		i = j + 1;
	}
	free(p);
	return d->nevents ? 0 : -ENOENT;
}

/* Append one event line to every agent's stream (files the agents follow as they grow). */
static void feed_events(struct demo *d)
{
	const char *line = d->events[d->event_line++ % d->nevents];

	for (unsigned i = 0; i < d->n; i++) {
		char path[DEMO_PATH];
		FILE *f;

		rf__demo_agent_paths(&d->ag[i], "events.jsonl", path, sizeof(path));
		f = fopen(path, "a");
		if (!f)
			continue;
		fprintf(f, "%s\n", line);
		fclose(f);
	}
}

/* ---- supervision: the hosts ------------------------------------------------------------------ */

/* Reap children, reboot hosts whose agent died, feed events. Called by every wait loop. */
void rf__demo_tick(struct demo *d)
{
	int st;
	pid_t pid;
	uint64_t t = rf__demo_now_ms();

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == d->server) {
			d->server = 0;
			if (!d->server_expected_down)
				rf__demo_check(d, false, "ringfenced exited by itself (status %d)",
					       st);
			continue;
		}
		for (unsigned i = 0; i < d->n; i++) {
			struct agent *a = &d->ag[i];
			if (a->pid != pid)
				continue;
			/* The agent's own process group may hold a worker: take it down with the
			 * host. */
			rf__demo_kill_group(pid, SIGKILL);
			a->pid = 0;
			a->deaths++;
			if (!a->offline)
				a->restart_ms = t + 300; /* the host reboots */
			break;
		}
	}
	for (unsigned i = 0; i < d->n; i++) {
		struct agent *a = &d->ag[i];
		if (!a->pid && a->restart_ms && t >= a->restart_ms && !a->offline)
			if (rf__demo_agent_start(d, a) < 0)
				a->restart_ms = t + 1000;
	}
	if (t - d->last_event_ms >= 5000) {
		d->last_event_ms = t;
		feed_events(d);
	}
}

void rf__demo_nap(struct demo *d, unsigned ms)
{
	uint64_t until = rf__demo_now_ms() + ms;

	while (rf__demo_now_ms() < until && !rf__demo_stop_signal) {
		rf__demo_tick(d);
		usleep(50000);
	}
}
