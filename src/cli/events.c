/*
 * `ringfence events --source proc|audit|proc,audit|log:EVENT=PATH,...`: watch this host's process
 * creation (the kernel's process connector, src/agent/source_proc.h), audit records (the
 * kernel's audit read-log group, src/agent/source_audit.h) or log files (src/agent/source_log.h)
 * and print one JSON event line per exec or record on stdout, the format `ringfence content eval`
 * and ringfence-agent read. Stdout is written without blocking through a bounded queue, so a slow
 * reader costs counted drops, never memory. At the end the counters go to stderr as one JSON object
 * (seen, emitted, dropped, kernel_lost, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/source.h"
#include "cli/cli.h"
#include "common/opt.h"
#include "ringfence/limits.h"

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringfence events --source proc|audit|proc,audit|log:EVENT=PATH [--count N]\n"
	    "                        [--timeout SECONDS] [--queue BYTES]\n"
	    "\n"
	    "Print this host's events as JSON lines (one per line, the format 'ringfence\n"
	    "content eval' and 'ringfence-agent run' read), until --count events were printed,\n"
	    "--timeout seconds passed, or SIGINT/SIGTERM. Counters go to stderr at the end as\n"
	    "one JSON object: seen, emitted, dropped (no room: the reader is slow), kernel_lost\n"
	    "(the kernel could not deliver), partial and fields_lost (the process was gone\n"
	    "before /proc could be read; an audit field the event cannot carry), truncated,\n"
	    "malformed (audit records that could not be read).\n"
	    "\n"
	    "  --source proc      process creation from the kernel's process connector,\n"
	    "                     with Sysmon for Linux's fields; needs root (CAP_NET_ADMIN)\n"
	    "  --source audit     the kernel's audit records as linux_auditd events, one per\n"
	    "                     record with auditd's fields; needs CAP_AUDIT_READ; what is\n"
	    "                     recorded is up to the host's audit rules (docs/agent.md)\n"
	    "  --source log:EVENT=PATH[,log:EVENT=PATH...]\n"
	    "                     follow log files that something else writes (web server,\n"
	    "                     zeek, auth.log, cloud audit logs a shipper exports), each\n"
	    "                     line an event of type EVENT from ringfence-agent-logs-1.0.0\n"
	    "                     (docs/agent.md, The log-file source); oversize and\n"
	    "                     malformed count refused lines, reopened rotations,\n"
	    "                     repaired JSON lines kept with U+FFFD for bytes not\n"
	    "                     UTF-8 or lone surrogates\n"
	    "  --count N          stop after N events\n"
	    "  --timeout SECONDS  stop after this long\n"
	    "  --queue BYTES      room for events not yet written to stdout (default and\n"
	    "                     most 4 MiB, at least 512 KiB): past it new events are\n"
	    "                     dropped and counted, never buffered without bound\n");
}

static void print_stats(const char *source, const struct rf_source_stats *st)
{
	fprintf(stderr,
		"{\"source\":\"%s\",\"seen\":%llu,\"emitted\":%llu,\"dropped\":%llu,"
		"\"kernel_lost\":%llu,\"overruns\":%llu,\"partial\":%llu,\"fields_lost\":%llu,"
		"\"truncated\":%llu,\"table_resets\":%llu,\"malformed\":%llu,\"oversize\":%llu,"
		"\"reopened\":%llu,\"repaired\":%llu}\n",
		source, (unsigned long long)st->seen, (unsigned long long)st->emitted,
		(unsigned long long)st->dropped, (unsigned long long)st->kernel_lost,
		(unsigned long long)st->overruns, (unsigned long long)st->partial,
		(unsigned long long)st->fields_lost, (unsigned long long)st->truncated,
		(unsigned long long)st->table_resets, (unsigned long long)st->malformed,
		(unsigned long long)st->oversize, (unsigned long long)st->reopened,
		(unsigned long long)st->repaired);
}

/* Options into *count and *timeout_s. Returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, const char **ret_source, uint64_t *count,
		 uint64_t *timeout_s, uint64_t *queue)
{
	static const struct option lo[] = {
	    {"source", required_argument, NULL, 's'},  {"count", required_argument, NULL, 'n'},
	    {"timeout", required_argument, NULL, 't'}, {"queue", required_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},	       {0}};
	const char *source = NULL;
	int c;

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence events")) != -1) {
		switch (c) {
		case 's':
			source = optarg;
			break;
		case 'n':
		case 't':
			if (rf_parse_u64(optarg, c == 'n' ? count : timeout_s) < 0 ||
			    (c == 't' && *timeout_s > 365ull * 86400)) {
				fprintf(stderr, "ringfence events: --%s: '%s' is not a number\n",
					c == 'n' ? "count" : "timeout", optarg);
				return 2;
			}
			break;
		case 'q':
			if (rf_parse_u64(optarg, queue) < 0 || *queue < 2 * RF_EVENT_LINE_MAX ||
			    *queue > RF_SOURCE_QUEUE_MAX) {
				fprintf(stderr,
					"ringfence events: --queue: '%s' is not in %u..%u\n",
					optarg, 2 * RF_EVENT_LINE_MAX, RF_SOURCE_QUEUE_MAX);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc || !source) {
		fprintf(stderr, "ringfence events: %s\n\n",
			!source ? "--source is required" : "unexpected argument");
		usage(stderr);
		return 2;
	}
	struct rf_diag d = {0};
	if (rf_source_check(source, &d) < 0) {
		/* the exact reason: an unknown event type, a PATH that is not absolute, ... */
		fprintf(stderr, "ringfence events: --source: %s\n", d.first);
		return 2;
	}
	*ret_source = source;
	return -1;
}

int rf_cli_events(int argc, char **argv)
{
	struct rf_source *sp = NULL;
	struct rf_source_queue *q = NULL;
	struct rf_source_stats st;
	struct rf_diag d = {0};
	const char *source = NULL, *warn;
	int fds[RF_SOURCE_MEMBERS_MAX];
	size_t nfds;
	uint64_t count = 0, timeout_s = 0, deadline = 0, queue = RF_SOURCE_QUEUE_MAX;
	int r, flags, rc = 0;

	if ((r = parse(argc, argv, &source, &count, &timeout_s, &queue)) >= 0)
		return r;
	if ((r = rf_source_open(source, &sp, &d)) < 0) {
		fprintf(stderr, "ringfence events: %s\n", d.first[0] ? d.first : rf_strerror(r));
		return 1;
	}
	if (rf_source_queue_new((size_t)queue, &q) < 0) {
		rf_source_free(sp);
		return 1;
	}
	if ((warn = rf_source_warning(sp)))
		fprintf(stderr, "ringfence events: warning: %s\n", warn);
	nfds = rf_source_fds(sp, fds);
	struct sigaction sa = {.sa_handler = on_stop}; /* no SA_RESTART: poll returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	flags = fcntl(1, F_GETFL);
	if (flags >= 0)
		(void)fcntl(1, F_SETFL, flags | O_NONBLOCK);
	if (timeout_s)
		deadline = rf_now_mono_ns() + timeout_s * 1000000000ull;
	struct rf_source_sink sink = rf_source_queue_sink(q);
	for (;;) {
		struct pollfd pf[RF_SOURCE_MEMBERS_MAX + 1];
		uint64_t now = rf_now_mono_ns();
		int wait = -1;

		for (size_t i = 0; i < nfds; i++)
			pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
		pf[nfds] = (struct pollfd){.fd = 1, .events = POLLOUT};
		rf_source_stats(sp, &st);
		if (stop || (count && st.emitted >= count) || (deadline && now >= deadline))
			break;
		if (deadline)
			wait = (int)((deadline - now) / 1000000u) + 1;
		if (poll(pf, nfds + (rf_source_queue_len(q) ? 1 : 0), wait) < 0 && errno != EINTR) {
			rc = 1;
			break;
		}
		/* with --count, one message at a time so no more than N events are printed */
		r = rf_source_read(sp, &sink, count && count - st.emitted < 64 ? 1 : 64);
		if (r < 0) {
			fprintf(stderr, "ringfence events: %s\n", rf_strerror(r));
			rc = 1;
			break;
		}
		if (rf_source_queue_flush(q, 1) < 0) { /* the reader went away */
			rc = 1;
			break;
		}
	}
	if (flags >= 0)
		(void)fcntl(1, F_SETFL, flags);
	while (rf_source_queue_len(q) > 0 && rf_source_queue_flush(q, 1) > 0)
		;
	rf_source_stats(sp, &st);
	print_stats(source, &st);
	rf_source_queue_free(q);
	rf_source_free(sp);
	return rc;
}
