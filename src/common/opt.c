/*
 * rf_getopt: getopt_long with the one-line error every program prints for a bad option (see
 * opt.h). getopt is told (leading ':') to return ':' for a missing value so the two errors
 * can be told apart; which option was wrong is read back from argv[optind - 1] and optopt.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/opt.h"

/* The long options whose names start with s[0..n): 0 unknown, 1 a unique prefix, 2+ ambiguous. */
static size_t matches(const struct option *lo, const char *s, size_t n)
{
	size_t k = 0;

	for (; lo && lo->name; lo++) {
		if (strlen(lo->name) == n && !strncmp(lo->name, s, n))
			return 1; /* an exact match is never ambiguous */
		k += !strncmp(lo->name, s, n);
	}
	return k;
}

int rf_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
	      const char *cmd)
{
	char opts[80];
	bool plus = shortopts[0] == '+';
	int c;

	snprintf(opts, sizeof(opts), "%s:%s", plus ? "+" : "", shortopts + plus);
	opterr = 0;
	c = getopt_long(argc, argv, opts, longopts, NULL);
	if (c != '?' && c != ':')
		return c;

	/* The argument that failed: getopt has moved optind past it, unless it was a short option
	 * inside a cluster (-xy), which optopt names. */
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	bool is_long = !strncmp(arg, "--", 2);
	const char *name = arg + 2, *eq = is_long ? strchr(name, '=') : NULL;
	int nl = (int)(eq ? (size_t)(eq - name) : strlen(name));
	char what[160];

	if (!is_long || (optopt && !eq && c == '?')) {
		if (c == ':')
			snprintf(what, sizeof(what), "option '-%c' needs a value", optopt);
		else
			snprintf(what, sizeof(what), "unknown option '-%c'", optopt ? optopt : '?');
	} else if (c == ':') {
		snprintf(what, sizeof(what), "option '--%.*s' needs a value", nl, name);
	} else if (eq && matches(longopts, name, (size_t)nl) == 1) {
		snprintf(what, sizeof(what), "option '--%.*s' takes no value", nl, name);
	} else if (matches(longopts, name, (size_t)nl) > 1) {
		snprintf(what, sizeof(what), "ambiguous option '--%.*s'", nl, name);
	} else {
		snprintf(what, sizeof(what), "unknown option '--%.*s'", nl, name);
	}
	fprintf(stderr, "%s: %s (try '%s --help')\n", cmd, what, cmd);
	return '?';
}
