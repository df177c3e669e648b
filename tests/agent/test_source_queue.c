/*
 * Tests of the source's bounded queue (src/agent/source_proc.h): lines go out whole and in
 * order through every wrap of the ring, room never exceeds what is free, a line that does not
 * fit is refused (the caller counts it as dropped), and a reader that would block costs
 * nothing but waiting. Run under ASan and UBSan: no byte is read or written outside the ring.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/source_proc.h"

/* Fill a 10,000-byte queue through a 4 KiB pipe with lines of varying length: each flush takes
 * only part of the queue, so the ring wraps again and again; what comes out is exactly what went
 * in. */
static void test_queue_wraps_in_order(void **unused)
{
	struct rf_source_queue *q = NULL;
	char line[200], out[8192], want[16384];
	size_t wlen = 0, olen = 0;
	int p[2];

	assert_int_equal(rf_source_queue_new(10000, &q), 0);
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
	struct rf_source_sink sink = rf_source_queue_sink(q);
	for (unsigned i = 0; i < 3000; i++) {
		int n = snprintf(
		    line, sizeof(line), "%u %.*s\n", i, (int)(i * 37 % 150),
		    "x"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		assert_int_equal(sink.room(sink.ud) + rf_source_queue_len(q), 10000);
		if (sink.room(sink.ud) < (size_t)n) { /* full: drain, then it fits */
			assert_true(rf_source_queue_flush(q, p[1]) > 0);
			ssize_t r = read(p[0], out, sizeof(out));
			assert_true(r > 0);
			assert_memory_equal(out, want, (size_t)r);
			memmove(want, want + r, wlen - (size_t)r);
			wlen -= (size_t)r;
			olen += (size_t)r;
		}
		assert_true(sink.room(sink.ud) >= (size_t)n);
		sink.put(sink.ud, (const uint8_t *)line, (size_t)n);
		memcpy(want + wlen, line, (size_t)n);
		wlen += (size_t)n;
	}
	while (rf_source_queue_len(q) > 0) {
		assert_true(rf_source_queue_flush(q, p[1]) > 0);
		ssize_t r = read(p[0], out, sizeof(out));
		assert_true(r > 0);
		assert_memory_equal(out, want, (size_t)r);
		memmove(want, want + r, wlen - (size_t)r);
		wlen -= (size_t)r;
		olen += (size_t)r;
	}
	assert_int_equal(wlen, 0);
	assert_true(olen > 100000); /* around the 10,000-byte ring more than 10 times */
	close(p[0]);
	close(p[1]);
	rf_source_queue_free(q);
}

/* A reader that never reads: the pipe fills, flush returns 0 (would block) instead of blocking
 * or failing, and the queue keeps its bytes; a line that does not fit is refused untouched. */
static void test_stalled_reader_never_blocks(void **unused)
{
	struct rf_source_queue *q = NULL;
	uint8_t line[512];
	int p[2];

	memset(line, 'a', sizeof(line));
	line[sizeof(line) - 1] = '\n';
	assert_int_equal(rf_source_queue_new(4096, &q), 0);
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	struct rf_source_sink sink = rf_source_queue_sink(q);
	long written = 0;
	for (unsigned i = 0; i < 10000; i++) {
		if (sink.room(sink.ud) >= sizeof(line))
			sink.put(sink.ud, line, sizeof(line));
		long w = rf_source_queue_flush(q, p[1]);
		assert_true(w >= 0);
		written += w;
		if (w == 0 && sink.room(sink.ud) < sizeof(line))
			break; /* pipe and queue full */
	}
	assert_true(rf_source_queue_len(q) > 4096 - sizeof(line));
	size_t before = rf_source_queue_len(q);
	sink.put(sink.ud, line, sizeof(line)); /* no room: refused, nothing changes */
	assert_int_equal(rf_source_queue_len(q), before);
	assert_int_equal(rf_source_queue_flush(q, p[1]), 0);
	assert_true(written >= 4096); /* the pipe took its share first */
	close(p[0]);
	assert_int_equal(rf_source_queue_flush(q, p[1]), -EPIPE); /* the reader is gone */
	close(p[1]);
	rf_source_queue_free(q);
}

static void test_queue_rejects_zero_capacity(void **unused)
{
	struct rf_source_queue *q = NULL;

	assert_int_equal(rf_source_queue_new(0, &q), -EINVAL);
	assert_null(q);
	rf_source_queue_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_queue_wraps_in_order),
	    cmocka_unit_test(test_stalled_reader_never_blocks),
	    cmocka_unit_test(test_queue_rejects_zero_capacity),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
