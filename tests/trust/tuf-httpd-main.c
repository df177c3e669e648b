/*
 * tuf-httpd ROOT PORTFILE SECONDS: the trust tests' static file server as a program, for the
 * shell-driven tests (CLI, faketime, interop). Binds 127.0.0.1 on a free port, writes the port
 * to PORTFILE, and stops by itself after SECONDS (or on SIGTERM/SIGINT).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/trust/httpd.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct test_httpd *h = NULL;
	uint16_t port = 0;
	uint64_t secs;
	char buf[16];
	int n;

	if (argc != 4 || rf_parse_u64(argv[3], &secs) < 0 || secs == 0 || secs > 3600) {
		fprintf(stderr, "usage: tuf-httpd ROOT PORTFILE SECONDS(1..3600)\n");
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (test_httpd_start(argv[1], &h, &port) < 0) {
		fprintf(stderr, "tuf-httpd: cannot listen on 127.0.0.1\n");
		return 1;
	}
	n = snprintf(buf, sizeof(buf), "%u\n", port);
	if (rf_file_write_atomic(argv[2], buf, (size_t)n, 0644) < 0) {
		test_httpd_stop(h);
		return 1;
	}
	/* wall-clock bound measured with the monotonic clock so faketime'd callers don't matter */
	uint64_t end = rf_now_mono_ns() + secs * 1000000000ull;
	while (!stop && rf_now_mono_ns() < end)
		usleep(50 * 1000);
	test_httpd_stop(h);
	return 0;
}
