/*
 * Command-line options, one convention for every program (ringfence, ringfence-agent,
 * ringfenced, ringfence-tuf-client): GNU getopt_long (options and operands in any order unless
 * shortopts starts with '+', --name=value, unambiguous prefixes of long names, "--" ends the
 * options); -h/--help prints the command's own usage to stdout and exits 0 (each caller does
 * that); a bad option prints one line to stderr that names it and points at --help. For
 * programs only: it prints (library code reports through struct rf_diag).
 */
#ifndef RF_COMMON_OPT_H
#define RF_COMMON_OPT_H

#include <getopt.h>

/*
 * getopt_long(argc, argv, shortopts, longopts, NULL) with getopt's own messages off. Set
 * optind = 0 before the first call for an argv (glibc then restarts its scan, state included).
 * On an unknown or ambiguous option, a missing value, or a value given to a long option that
 * takes none, it prints one line such as
 *     CMD: unknown option '--frob' (try 'CMD --help')
 * to stderr and returns '?'; otherwise it returns what getopt_long returns (-1 at the end of the
 * options: the operands are then argv[optind..argc)). shortopts: at most 64 characters, without
 * getopt's leading ':' (a leading '+', stop at the first operand, is allowed).
 */
int rf_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
	      const char *cmd);

#endif
