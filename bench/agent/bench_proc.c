/*
 * bench-proc: what the process-creation source (src/agent/source_proc.h) sustains. A child
 * spawns N short processes (/bin/true) as fast as it can while this process reads the kernel's
 * process connector, enriches each exec from /proc and formats its event line into a sink that
 * keeps nothing. Prints the events seen per second, the source's CPU per event (user + system,
 * this process only), and so the rate one core could sustain; with the counters (partial events,
 * drops, kernel losses). Needs root. Usage: bench-proc [N] (default 20000; make bench runs 5000).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/source_proc.h"

extern char **environ;

static size_t room(void *ud)
{
	return (size_t)-1 / 2;
}

static void put(void *ud, const uint8_t *line, size_t n)
{
	*(uint64_t *)ud += n;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static _Noreturn void spawner(unsigned long n)
{
	char *argv[] = {"/bin/true", NULL};

	for (unsigned long i = 0; i < n; i++) {
		pid_t p;
		if (posix_spawn(&p, "/bin/true", NULL, NULL, argv, environ) == 0)
			waitpid(p, NULL, 0);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
	struct rf_source_proc *s;
	struct rf_source_stats st, st0;
	struct rf_diag d = {0};
	uint64_t bytes = 0, t0, t1, seen0;
	double c0, c1;
	pid_t child;
	int status, r;

	if ((r = rf_source_proc_open(&s, &d)) < 0) {
		printf("bench-proc: SKIP: %s\n", d.first[0] ? d.first : rf_strerror(r));
		return 77;
	}
	struct rf_source_sink sink = {.room = room, .put = put, .ud = &bytes};
	/* drain what was already queued, then measure */
	while (rf_source_proc_read(s, &sink, 1024) > 0)
		;
	rf_source_proc_stats(s, &st0);
	seen0 = st0.seen;
	t0 = rf_now_mono_ns();
	c0 = cpu_s();
	child = fork();
	if (child < 0)
		return 1;
	if (child == 0)
		spawner(n);
	for (bool done = false;;) {
		struct pollfd pf = {.fd = rf_source_proc_fd(s), .events = POLLIN};
		if (!done && waitpid(child, &status, WNOHANG) == child)
			done = true;
		if (poll(&pf, 1, done ? 200 : 50) == 0 && done)
			break; /* the spawner is gone and the socket stayed quiet */
		if (rf_source_proc_read(s, &sink, 1024) < 0)
			return 1;
	}
	t1 = rf_now_mono_ns();
	c1 = cpu_s();
	rf_source_proc_stats(s, &st);
	uint64_t ev = st.seen - seen0;
	double wall = (double)(t1 - t0) / 1e9, per = ev ? (c1 - c0) / (double)ev : 0;
	printf("command: bench-proc %lu   (%lu execs of /bin/true by posix_spawn, one at a time)\n",
	       n, n);
	printf("source_proc: %llu exec events in %.2f s: %.0f events/s observed (the spawner's "
	       "pace)\n",
	       (unsigned long long)ev, wall, (double)ev / wall);
	printf("source_proc: CPU %.1f us per event (user+system, /proc reads and formatting): one "
	       "core sustains ~%.0f events/s\n",
	       per * 1e6, per > 0 ? 1.0 / per : 0.0);
	printf("source_proc: %llu bytes of event lines (%.0f per event); partial %llu (fields "
	       "lost %llu), dropped %llu, lost by the kernel %llu\n",
	       (unsigned long long)bytes, ev ? (double)bytes / (double)ev : 0.0,
	       (unsigned long long)(st.partial - st0.partial),
	       (unsigned long long)(st.fields_lost - st0.fields_lost),
	       (unsigned long long)(st.dropped - st0.dropped),
	       (unsigned long long)(st.kernel_lost - st0.kernel_lost));
	rf_source_proc_free(s);
	return 0;
}
