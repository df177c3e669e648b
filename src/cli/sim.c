/* Placeholder: replaced when this subcommand group lands. */
#include <stdio.h>

#include "cli/cli.h"

int rf_cli_sim(int argc, char **argv)
{
	fprintf(stderr, "ringfence: '%s' is not built yet\n", argv[0]);
	return 2;
}
