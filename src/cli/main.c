/* `ringfence`: a thin dispatcher to the subcommand groups in cli.h. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} groups[] = {
	{"content", rf_cli_content, "compile, verify, inspect and evaluate content packs"},
	{"repo", rf_cli_repo, "the signed TUF repository: init, add, publish, rotate, refresh"},
	{"release", rf_cli_release, "releases on a ringfenced server: create, status, halt, resume, rollback"},
	{"ring", rf_cli_ring, "rings on a ringfenced server"},
	{"tenant", rf_cli_tenant, "tenant policy on a ringfenced server"},
	{"sim", rf_cli_sim, "the fleet simulator: replay incidents, compare rollout policies"},
	{"demo", rf_cli_demo, "run the whole system on this machine"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ringfence COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		fprintf(f, "  %-8s %s\n", groups[i].name, groups[i].help);
	fprintf(f, "\n'ringfence COMMAND --help' shows a command's usage.\n");
}

int main(int argc, char **argv)
{
	rf_log_init("ringfence", RF_LOG_INFO);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("ringfence %s\n", RF_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (!strcmp(argv[1], groups[i].name))
			return groups[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "ringfence: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
