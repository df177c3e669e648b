/*
 * The `ringfence` command: one entry point per subcommand group, each in its own file
 * (content.c, compile.c, repo.c, release.c, sim.c, demo.c). Each takes argv after the group
 * name (argv[0] is the group) and returns the process exit code: 0 ok, 1 the operation ran and
 * said no (rules rejected, pack rejected, ...), 2 usage or I/O error.
 */
#ifndef RF_CLI_H
#define RF_CLI_H

int rf_cli_content(int argc, char **argv);
int rf_cli_content_compile(int argc, char **argv); /* `ringfence content compile` */
int rf_cli_repo(int argc, char **argv);
int rf_cli_release(int argc, char **argv);
int rf_cli_ring(int argc, char **argv);
int rf_cli_tenant(int argc, char **argv);
int rf_cli_sim(int argc, char **argv);
int rf_cli_demo(int argc, char **argv);

#endif
