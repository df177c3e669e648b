/* Placeholder: replaced when this subcommand group lands. */
#include <stdio.h>

#include "cli/cli.h"

int rf_cli_release(int argc, char **argv)
{
	fprintf(stderr, "ringfence: '%s' is not built yet\n", argv[0]);
	return 2;
}

int rf_cli_ring(int argc, char **argv)
{
	return rf_cli_release(argc, argv);
}

int rf_cli_tenant(int argc, char **argv)
{
	return rf_cli_release(argc, argv);
}
