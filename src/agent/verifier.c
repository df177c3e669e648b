/*
 * The verifier child (see verifier.h for the invariants).
 *
 * The child: dies with its parent (PR_SET_PDEATHSIG), keeps only stderr and the write end of
 * its pipe, sets its rlimits, verifies, writes the first diagnostic (at most RF_DIAG_MSG_MAX
 * bytes: one pipe write that never blocks) and _exits with 0 (accepted), 1 (rejected) or 3
 * (out of memory). The address-space limit is relative to what the child inherited (read from
 * /proc/self/statm), because a sanitizer build reserves terabytes of shadow address space up
 * front; if that cannot be read the limit is applied as an absolute one (fail closed).
 *
 * The parent: reads the message without blocking, polls against the wall-clock deadline, and
 * at the deadline kills the child with SIGKILL before reaping it; it only ever calls a blocking
 * waitpid() on a child it has killed. Any failure of the child is the pack's: -ENOEXEC.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/verifier.h"
#include "common/util.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

enum { EXIT_ACCEPTED = 0, EXIT_REJECTED = 1, EXIT_NOMEM = 3, EXIT_LIMIT_FAILED = 5 };

void rf_verifier_limits_default(struct rf_verifier_limits *l)
{
	l->timeout_ms = RF_AGENT_VERIFY_TIMEOUT_MS;
	l->cpu_s = RF_AGENT_VERIFY_CPU_S;
	l->mem_bytes = RF_AGENT_VERIFY_MEM_MAX;
	l->fault = RF_VERIFIER_FAULT_NONE;
}

int rf_verifier_fault_parse(const char *s, enum rf_verifier_fault *ret)
{
	static const struct {
		const char *name;
		enum rf_verifier_fault f;
	} t[] = {{"hang", RF_VERIFIER_FAULT_HANG},
		 {"spin", RF_VERIFIER_FAULT_SPIN},
		 {"oom", RF_VERIFIER_FAULT_OOM},
		 {"crash", RF_VERIFIER_FAULT_CRASH}};

	for (size_t i = 0; s && i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(s, t[i].name) == 0) {
			*ret = t[i].f;
			return 0;
		}
	return -EINVAL;
}

/* ---- the child ----------------------------------------------------------------------------- */

/* Address space mapped now (bytes), or 0 if unknown. */
static uint64_t mapped_now(void)
{
	char buf[128];
	uint64_t pages = 0;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		if (__builtin_mul_overflow(pages, 10, &pages) ||
		    __builtin_add_overflow(pages, (uint64_t)(buf[i] - '0'), &pages))
			return 0;
	if (__builtin_mul_overflow(pages, (uint64_t)sysconf(_SC_PAGESIZE), &pages))
		return 0;
	return pages;
}

static int limit(int res, rlim_t soft, rlim_t hard)
{
	struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};

	return setrlimit(res, &rl) < 0 ? -errno : 0;
}

/* Fewer privileges than the supervisor in everything the verifier does not need. */
static int child_limits(const struct rf_verifier_limits *lim)
{
	uint64_t as = mapped_now();
	int r = 0;

	if (__builtin_add_overflow(as, lim->mem_bytes, &as))
		as = RLIM_INFINITY - 1;
	r |= limit(RLIMIT_AS, (rlim_t)as, (rlim_t)as);
	r |= limit(RLIMIT_CPU, lim->cpu_s, (rlim_t)lim->cpu_s + 1); /* SIGXCPU, then SIGKILL */
	r |= limit(RLIMIT_CORE, 0, 0);	 /* no core file of hostile bytes */
	r |= limit(RLIMIT_FSIZE, 0, 0);	 /* writes no file (the pipe is not one) */
	r |= limit(RLIMIT_NOFILE, 4, 4); /* stdin, stdout, stderr, the pipe: opens nothing */
	r |= limit(RLIMIT_NPROC, 0, 0);	 /* starts no process */
	return r;
}

static _Noreturn void play_fault(const struct rf_verifier_limits *lim)
{
	switch (lim->fault) {
	case RF_VERIFIER_FAULT_HANG:
		for (;;)
			pause();
	case RF_VERIFIER_FAULT_SPIN:
		for (volatile uint64_t i = 0;; i++)
			;
	case RF_VERIFIER_FAULT_OOM: {
		/* mmap, not malloc: a sanitizer's allocator aborts instead of returning NULL */
		const size_t chunk = 1u << 20;
		for (uint64_t total = 0; total / 2 < lim->mem_bytes; total += chunk) {
			void *m = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED)
				_exit(EXIT_NOMEM);
			memset(m, 0x5a, chunk);
		}
		_exit(EXIT_LIMIT_FAILED); /* twice the budget mapped: the limit did not hold */
	}
	default:
		raise(SIGSEGV);
		_exit(EXIT_LIMIT_FAILED);
	}
}

static _Noreturn void child(const uint8_t *p, size_t n, const uint8_t *mb, size_t ml,
			    const struct rf_verifier_limits *lim, pid_t parent, int w)
{
	struct rf_manifest *m = NULL;
	struct rf_pack *pk = NULL;
	struct rf_diag d = {0};
	int r;

	/* a crash ends the child: no inherited handler may catch it and carry on */
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL,  SIGFPE, SIGABRT,
				   SIGTERM, SIGINT, SIGCHLD, SIGPIPE};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* the supervisor died before the line above */
		_exit(EXIT_REJECTED);
	/* keep stderr (sanitizer reports) and the pipe, as fd 3 */
	if (w != 3 && (dup2(w, 3) < 0 || close(w) < 0))
		_exit(EXIT_REJECTED);
	close_range(4, ~0u, 0);
	if (child_limits(lim) < 0) {
		static const char msg[] = "the verifier could not limit itself";
		if (write(3, msg, sizeof(msg) - 1) < 0)
			_exit(EXIT_REJECTED);
		_exit(EXIT_REJECTED);
	}
	if (lim->fault != RF_VERIFIER_FAULT_NONE)
		play_fault(lim);
	r = rf_manifest_parse(mb, ml, &m, &d);
	if (r == 0)
		r = rf_pack_open(p, n, &pk, &d);
	if (r == 0)
		r = rf_pack_check(pk, m, &d);
	if (r == -ENOMEM)
		_exit(EXIT_NOMEM);
	if (r < 0 && write(3, d.first, strnlen(d.first, sizeof(d.first))) < 0)
		_exit(EXIT_REJECTED);
	_exit(r == 0 ? EXIT_ACCEPTED : EXIT_REJECTED);
}

/* ---- the parent ---------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
	return rf_now_mono_ns() / 1000000u;
}

/* Read what the child said, without blocking; past outsz-1 bytes the rest is dropped. Returns
 * true at end of file. */
static bool drain(int fd, char *out, size_t outsz, size_t *got)
{
	char sink[256];

	for (;;) {
		size_t room = outsz - 1 - *got;
		ssize_t k = room ? read(fd, out + *got, room) : read(fd, sink, sizeof(sink));
		if (k == 0)
			return true;
		if (k < 0)
			return errno != EINTR && errno != EAGAIN;
		if (room)
			*got += (size_t)k;
		out[*got] = 0;
	}
}

/* Wait for the child until the deadline; at the deadline kill it. 0 and *status when it ended
 * by itself; -ETIMEDOUT when it was killed. */
static int wait_bounded(pid_t pid, int fd, uint64_t deadline, char *out, size_t outsz, int *status)
{
	size_t got = 0;
	bool eof = false;

	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		uint64_t t;

		if (w == pid) {
			if (!eof)
				drain(fd, out, outsz, &got);
			return 0;
		}
		t = now_ms();
		if (t >= deadline)
			break;
		/* until end of file, sleep on the pipe; after it (the child exits), on nothing */
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		uint64_t left = deadline - t;
		int ms = (int)(left > 1000 ? 1000 : left);
		if (poll(&pf, eof ? 0 : 1, eof && ms > 5 ? 5 : ms) > 0 && !eof)
			eof = drain(fd, out, outsz, &got);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return -ETIMEDOUT;
}

static void seconds(char *out, size_t outsz, uint32_t ms)
{
	if (ms % 1000 == 0)
		snprintf(out, outsz, "%u s", ms / 1000);
	else
		snprintf(out, outsz, "%u ms", ms);
}

int rf_verifier_run(const uint8_t *p, size_t n, const uint8_t *m, size_t mlen,
		    const struct rf_verifier_limits *lim, char *why, size_t whysz)
{
	char t[32];
	int fds[2], status = 0, r;
	pid_t pid, self = getpid();

	if (!p || !m || !lim || !why || whysz < 2 || lim->timeout_ms == 0)
		return -EINVAL;
	why[0] = 0;
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(fds[0]);
		close(fds[1]);
		return r;
	}
	if (pid == 0) {
		close(fds[0]);
		child(p, n, m, mlen, lim, self, fds[1]);
	}
	close(fds[1]);
	r = wait_bounded(pid, fds[0], now_ms() + lim->timeout_ms, why, whysz, &status);
	close(fds[0]);
	if (r == -ETIMEDOUT) {
		seconds(t, sizeof(t), lim->timeout_ms);
		snprintf(why, whysz, "the verifier timed out after %s on this pack (killed)", t);
		return -ENOEXEC;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_ACCEPTED)
		return 0;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU)
		snprintf(why, whysz, "the verifier went over its CPU time (%u s) on this pack",
			 lim->cpu_s);
	else if (WIFSIGNALED(status))
		snprintf(why, whysz, "the verifier died (signal %d) on this pack",
			 WTERMSIG(status));
	else if (WEXITSTATUS(status) == EXIT_NOMEM)
		snprintf(why, whysz, "the verifier ran out of memory (limit %llu MiB) on this pack",
			 (unsigned long long)(lim->mem_bytes >> 20));
	else if (WEXITSTATUS(status) != EXIT_REJECTED)
		snprintf(why, whysz, "the verifier failed (exit status %d) on this pack",
			 WEXITSTATUS(status));
	else if (!why[0])
		snprintf(why, whysz, "rejected by the verifier");
	return -ENOEXEC;
}
