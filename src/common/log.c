/* Program logging to stderr, readable by journald (sd-daemon prefixes) and by people. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

static const char *prog = "ringfence";
static enum rf_log_level maxlevel = RF_LOG_INFO;
static int journal = -1;

void rf_log_init(const char *progname, enum rf_log_level max)
{
	prog = progname;
	maxlevel = max;
	journal = getenv("JOURNAL_STREAM") != NULL;
}

void rf_log(enum rf_log_level level, const char *fmt, ...)
{
	static const char *names[] = {"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"};
	char msg[1024];
	va_list ap;

	if (level > maxlevel)
		return;
	if (journal < 0)
		journal = getenv("JOURNAL_STREAM") != NULL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (journal)
		fprintf(stderr, "<%d>%s: %s\n", (int)level, prog, msg);
	else
		fprintf(stderr, "%s: %s: %s\n", prog, names[level], msg);
}
