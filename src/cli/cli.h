/*
 * The `ringfence` command: one entry point per subcommand group, each in its own file
 * (content.c, compile.c, repo.c, release.c, sim.c, demo.c with demo_*.c). Each takes argv after the group
 * name (argv[0] is the group) and returns the process exit code: 0 ok, 1 the operation ran and
 * said no (rules rejected, pack rejected, ...), 2 usage or I/O error.
 */
#ifndef RF_CLI_H
#define RF_CLI_H

#include <stdio.h>

int rf_cli_content(int argc, char **argv);
int rf_cli_content_compile(int argc, char **argv); /* `ringfence content compile` */
int rf_cli_repo(int argc, char **argv);
int rf_cli_release(int argc, char **argv);
int rf_cli_ring(int argc, char **argv);
int rf_cli_tenant(int argc, char **argv);
int rf_cli_audit(int argc, char **argv); /* `ringfence audit`: the server's audit trail */
int rf_cli_sim(int argc, char **argv);
int rf_cli_demo(int argc, char **argv);
int rf_cli_events(int argc, char **argv); /* `ringfence events` (events.c) */

/*
 * The start every group with subcommands shares (argv[0] is the group, cmd e.g. "ringfence
 * repo"): options before the subcommand are the group's (--help, -h; a bad one is reported as
 * common/opt.h says), `help` is --help, and no subcommand prints the group's usage to stderr.
 * Returns the exit status (0 after --help, 2 after a usage error), or -1 with *ret_sub the
 * index in argv of the subcommand, whose own options follow it.
 */
int rf_cli_group_start(int argc, char **argv, const char *cmd, void (*group_usage)(FILE *f),
		       int *ret_sub);

/*
 * Where the data the commands read lives (scenarios/, scenarios/policies/, manifests/,
 * examples/): $RINGFENCE_DATADIR if set; else the source tree when this program runs from the
 * build tree it was built in (so a developer's build never reads an installed copy); else the
 * installed data directory meson was configured with (/usr/share/ringfence in the packages).
 */
const char *rf_cli_data_dir(void);

#endif
