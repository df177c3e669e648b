/*
 * The host event sources by name (see source.h): a set of at most one process source and one
 * audit source, read in turn, or one log-file source (source_log.h) following its files. No
 * source is opened twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/source.h"

struct rf_source {
	struct rf_source_proc *proc;
	struct rf_source_audit *audit;
	struct rf_source_log *log;
};

/* names into the two flags; false for anything else (empty, unknown, repeated). */
static bool parse_names(const char *names, bool *ret_proc, bool *ret_audit)
{
	bool proc = false, audit = false;
	const char *p = names;

	for (;;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 4 && !memcmp(p, "proc", 4) && !proc)
			proc = true;
		else if (n == 5 && !memcmp(p, "audit", 5) && !audit)
			audit = true;
		else
			return false;
		if (!e)
			break;
		p = e + 1;
	}
	*ret_proc = proc;
	*ret_audit = audit;
	return true;
}

bool rf_source_known(const char *names)
{
	bool p, a;

	if (names && !strncmp(names, "log:", 4))
		return rf_source_log_known(names);
	return names && parse_names(names, &p, &a);
}

int rf_source_check(const char *names, struct rf_diag *reterr)
{
	bool p, a;

	if (names && !strncmp(names, "log:", 4))
		return rf_source_log_check(names, reterr);
	if (!names || !parse_names(names, &p, &a))
		return rf_diag_report(reterr, -EINVAL,
				      "unknown event source '%s' (this build has: %s)",
				      names ? names : "", RF_SOURCE_NAMES);
	return 0;
}

int rf_source_open(const char *names, struct rf_source **ret, struct rf_diag *reterr)
{
	struct rf_source *s;
	bool proc, audit;
	int r = 0;

	if (names && !strncmp(names, "log:", 4)) {
		if (!(s = calloc(1, sizeof(*s))))
			return -ENOMEM;
		if ((r = rf_source_log_open(names, &s->log, reterr)) < 0) {
			free(s);
			return r;
		}
		*ret = s;
		return 0;
	}
	if (!names || !parse_names(names, &proc, &audit))
		return rf_diag_report(reterr, -EINVAL,
				      "unknown event source '%s' (this build has: %s)",
				      names ? names : "", RF_SOURCE_NAMES);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (proc)
		r = rf_source_proc_open(&s->proc, reterr);
	if (r >= 0 && audit)
		r = rf_source_audit_open(&s->audit, reterr);
	if (r < 0) {
		rf_source_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void rf_source_free(struct rf_source *s)
{
	if (!s)
		return;
	rf_source_proc_free(s->proc);
	rf_source_audit_free(s->audit);
	rf_source_log_free(s->log);
	free(s);
}

size_t rf_source_fds(const struct rf_source *s, int *fds)
{
	size_t n = 0;

	if (s->proc)
		fds[n++] = rf_source_proc_fd(s->proc);
	if (s->audit)
		fds[n++] = rf_source_audit_fd(s->audit);
	if (s->log)
		fds[n++] = rf_source_log_fd(s->log);
	return n;
}

int rf_source_read(struct rf_source *s, const struct rf_source_sink *sink, size_t max)
{
	int a = 0, b = 0;

	if (s->log)
		return rf_source_log_read(s->log, sink, max);
	if (s->proc && (a = rf_source_proc_read(s->proc, sink, max)) < 0)
		return a;
	if (s->audit && (b = rf_source_audit_read(s->audit, sink, max)) < 0)
		return b;
	return a > INT32_MAX - b ? INT32_MAX : a + b;
}

void rf_source_stats(const struct rf_source *s, struct rf_source_stats *ret)
{
	struct rf_source_stats a = {0}, b = {0};

	if (s->log)
		rf_source_log_stats(s->log, &a);
	if (s->proc)
		rf_source_proc_stats(s->proc, &a);
	if (s->audit)
		rf_source_audit_stats(s->audit, &b);
	ret->seen = a.seen + b.seen;
	ret->emitted = a.emitted + b.emitted;
	ret->dropped = a.dropped + b.dropped;
	ret->kernel_lost = a.kernel_lost + b.kernel_lost;
	ret->overruns = a.overruns + b.overruns;
	ret->partial = a.partial + b.partial;
	ret->fields_lost = a.fields_lost + b.fields_lost;
	ret->truncated = a.truncated + b.truncated;
	ret->table_resets = a.table_resets + b.table_resets;
	ret->malformed = a.malformed + b.malformed;
	ret->oversize = a.oversize + b.oversize;
	ret->reopened = a.reopened + b.reopened;
	ret->repaired = a.repaired + b.repaired;
}

const char *rf_source_warning(const struct rf_source *s)
{
	if (s->log)
		return rf_source_log_warning(s->log);
	if (s->audit && rf_source_audit_enabled(s->audit) == 0)
		return "the kernel's audit is disabled (auditctl -s: enabled 0): no system call "
		       "records will come until it is enabled and audit rules are loaded "
		       "(docs/agent.md, The audit source)";
	return NULL;
}

const char *rf_source_describe(const struct rf_source *s)
{
	if (s->log)
		return rf_source_log_describe(s->log);
	if (s->proc && s->audit)
		return "process creation (the kernel's process connector) and audit records (the "
		       "kernel's audit read-log group)";
	if (s->audit)
		return "audit records (the kernel's audit read-log group)";
	return "process creation (the kernel's process connector)";
}
