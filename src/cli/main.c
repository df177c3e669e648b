/* `ringfence`: a thin dispatcher to the subcommand groups in cli.h. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/opt.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} groups[] = {
    {"content", rf_cli_content, "compile, verify, inspect and evaluate content packs"},
    {"repo", rf_cli_repo, "the signed TUF repository: init, add, publish, rotate, refresh"},
    {"release", rf_cli_release,
     "releases on a ringfenced server: create, status, halt, resume, rollback"},
    {"ring", rf_cli_ring, "rings on a ringfenced server"},
    {"tenant", rf_cli_tenant, "tenant policy on a ringfenced server"},
    {"audit", rf_cli_audit, "the audit trail of a ringfenced server: who did what, and why"},
    {"sim", rf_cli_sim, "the fleet simulator: replay incidents, compare rollout policies"},
    {"demo", rf_cli_demo, "run the whole system on this machine"},
    {"events", rf_cli_events, "print this host's events as JSON lines (process creation)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ringfence COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		fprintf(f, "  %-8s %s\n", groups[i].name, groups[i].help);
	fprintf(f, "\n'ringfence COMMAND --help' shows a command's usage.\n");
}

const char *rf_cli_data_dir(void)
{
	static char exe[PATH_MAX];
	const char *e = getenv("RINGFENCE_DATADIR");
	size_t n = strlen(RF_BUILD_ROOT);
	ssize_t l;

	if (e && *e)
		return e;
	/* Running from the build tree: its programs live below RF_BUILD_ROOT. */
	l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (l > 0 && (size_t)l > n && !memcmp(exe, RF_BUILD_ROOT, n) && exe[n] == '/')
		return RF_SOURCE_ROOT;
	return RF_DATADIR;
}

int rf_cli_group_start(int argc, char **argv, const char *cmd, void (*group_usage)(FILE *f),
		       int *ret_sub)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int c;

	optind = 0;
	while ((c = rf_getopt(argc, argv, "+h", lo, cmd)) != -1) {
		if (c != 'h')
			return 2;
		group_usage(stdout);
		return 0;
	}
	if (optind >= argc) {
		group_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[optind], "help")) {
		group_usage(stdout);
		return 0;
	}
	*ret_sub = optind;
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'}, {0}};
	int c;

	rf_log_init("ringfence", RF_LOG_INFO);
	/* Options before the command only ('+'): the rest of argv belongs to the command. */
	optind = 0;
	while ((c = rf_getopt(argc, argv, "+h", lo, "ringfence")) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == 'V') {
			printf("ringfence %s\n", RF_VERSION);
			return 0;
		}
		return 2;
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (!strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (!strcmp(argv[1], groups[i].name))
			return groups[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "ringfence: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
