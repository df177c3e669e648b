/*
 * ringfence-tuf-client: the TUF conformance program (the command-line protocol any TUF test
 * harness drives), a thin shell over the trust/ client API.
 *
 *   ringfence-tuf-client --metadata-dir DIR init TRUSTED_ROOT_FILE
 *   ringfence-tuf-client --metadata-url URL --metadata-dir DIR refresh
 *   ringfence-tuf-client --metadata-url URL --metadata-dir DIR --target-name P [...]
 *                        --target-dir TDIR --target-base-url TURL download
 *
 * Global flags come before the command. Exit 0 on full success, 1 on any failure (usage errors
 * included, as the protocol asks). Time comes from the system clock; the program is dynamically
 * linked so faketime can move it.
 *
 * Test only: RF_TUF_FAULT_KILL_AT=N makes the program SIGKILL itself just before the N-th
 * durable change of the trusted state (tests/trust/test-crash.sh walks N = 1, 2, ...), so a
 * crash lands at every step however fast the machine is. Never set it in production.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/opt.h"
#include "common/util.h"
#include "ringfence/limits.h"
#include "trust/tuf.h"

/* Each command's own usage (`ringfence-tuf-client CMD --help`). */
static const struct {
	const char *name, *text;
} cmd_usage[] = {
    {"init", "usage: ringfence-tuf-client --metadata-dir DIR init TRUSTED_ROOT_FILE\n\n"
	     "Copies the trusted root into DIR (no network). Exit status: 0 success, 1 any\n"
	     "failure.\n"},
    {"refresh", "usage: ringfence-tuf-client --metadata-url URL --metadata-dir DIR refresh\n\n"
		"Updates the trusted metadata in DIR from URL. Exit status: 0 success, 1 any\n"
		"failure.\n"},
    {"download",
     "usage: ringfence-tuf-client --metadata-url URL --metadata-dir DIR --target-name P\n"
     "                            [--target-name P2 ...] --target-dir TDIR\n"
     "                            --target-base-url TURL download\n\n"
     "Refreshes, then fetches and verifies each target into TDIR. Exit status: 0 success,\n"
     "1 any failure.\n"},
};

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: ringfence-tuf-client --metadata-dir DIR init TRUSTED_ROOT_FILE\n"
	       "       ringfence-tuf-client --metadata-url URL --metadata-dir DIR refresh\n"
	       "       ringfence-tuf-client --metadata-url URL --metadata-dir DIR --target-name P\n"
	       "                            [--target-name P2 ...] --target-dir TDIR\n"
	       "                            --target-base-url TURL download\n\n"
	       "init copies the trusted root into DIR (no network); refresh updates the trusted\n"
	       "metadata; download refreshes, then fetches and verifies each target into TDIR.\n"
	       "Exit status: 0 success, 1 any failure.\n");
}

static void print_diag(void *ud, int code, const char *msg)
{
	(void)ud;
	fprintf(stderr, "ringfence-tuf-client: %s (%s)\n", msg, rf_strerror(code));
}

static void kill_at_step(void *ud, unsigned step, const char *what)
{
	(void)what;
	if (step == *(const unsigned *)ud)
		raise(SIGKILL);
}

int main(int argc, char **argv)
{
	const char *mdir = NULL, *murl = NULL, *tdir = NULL, *turl = NULL, *cmd = NULL;
	const char **names = calloc((size_t)argc + 1, sizeof(*names));
	struct rf_diag d = {.emit = print_diag};
	struct rf_tuf_client *c = NULL;
	size_t nnames = 0;
	int i, r, opt, rc = 1;
	static const struct option lo[] = {{"metadata-dir", required_argument, NULL, 'd'},
					   {"metadata-url", required_argument, NULL, 'u'},
					   {"target-dir", required_argument, NULL, 'D'},
					   {"target-base-url", required_argument, NULL, 'U'},
					   {"target-name", required_argument, NULL, 'n'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};

	if (!names)
		return 1;
	/* Global flags come before the command ('+': stop at the first operand). */
	optind = 0;
	while ((opt = rf_getopt(argc, argv, "+h", lo, "ringfence-tuf-client")) != -1) {
		if (opt == 'h') {
			usage(stdout);
			free(names);
			return 0;
		}
		if (opt == 'd')
			mdir = optarg;
		else if (opt == 'u')
			murl = optarg;
		else if (opt == 'D')
			tdir = optarg;
		else if (opt == 'U')
			turl = optarg;
		else if (opt == 'n')
			names[nnames++] = optarg;
		else
			goto out; /* exit 1: the protocol's code for every failure */
	}
	i = optind;
	if (i < argc) {
		cmd = argv[i++];
		/* CMD --help: that command's usage. */
		for (int k = i; k < argc; k++)
			for (size_t u = 0; u < sizeof(cmd_usage) / sizeof(cmd_usage[0]); u++)
				if ((!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) &&
				    !strcmp(cmd, cmd_usage[u].name)) {
					fputs(cmd_usage[u].text, stdout);
					free(names);
					return 0;
				}
	}
	if (!cmd || !mdir) {
		fprintf(stderr,
			"ringfence-tuf-client: a command and --metadata-dir are required\n");
		goto usage;
	}
	if (!strcmp(cmd, "init")) {
		uint8_t *buf = NULL;
		size_t n = 0;
		if (i != argc - 1) {
			fprintf(stderr, "ringfence-tuf-client: init takes one TRUSTED_ROOT_FILE\n");
			goto usage;
		}
		r = rf_file_read(argv[i], RF_TUF_ROOT_MAX, &buf, &n);
		if (r < 0) {
			fprintf(stderr, "ringfence-tuf-client: %s: %s\n", argv[i], rf_strerror(r));
			goto out;
		}
		r = rf_tuf_client_init(mdir, buf, n, &d);
		free(buf);
		rc = r < 0;
		goto out;
	}
	if (i != argc || (strcmp(cmd, "refresh") && strcmp(cmd, "download"))) {
		fprintf(stderr, "ringfence-tuf-client: unknown command or extra arguments\n");
		goto usage;
	}
	if (!murl) {
		fprintf(stderr, "ringfence-tuf-client: %s needs --metadata-url\n", cmd);
		goto usage;
	}
	if (!strcmp(cmd, "download") && (!tdir || !turl || nnames == 0)) {
		fprintf(stderr, "ringfence-tuf-client: download needs --target-name, --target-dir "
				"and --target-base-url\n");
		goto usage;
	}
	{
		struct rf_tuf_client_opts o = {
		    .metadata_dir = mdir, .metadata_url = murl, .target_base_url = turl};
		const char *fault = getenv("RF_TUF_FAULT_KILL_AT");
		static unsigned kill_at;
		uint64_t v;
		if (fault && rf_parse_u64(fault, &v) == 0 && v > 0 && v <= UINT32_MAX) {
			kill_at = (unsigned)v;
			o.before_durable_step = kill_at_step;
			o.step_ud = &kill_at;
		}
		if ((r = rf_tuf_client_new(&o, &c, &d)) < 0 ||
		    (r = rf_tuf_client_refresh(c, &d)) < 0)
			goto out;
	}
	for (size_t k = 0; k < nnames; k++) {
		struct rf_tuf_target *t = NULL;
		r = rf_tuf_client_get_target(c, names[k], &t, &d);
		if (r == 0)
			r = rf_tuf_client_download_target(c, t, tdir, NULL, &d);
		rf_tuf_target_free(t);
		if (r < 0)
			goto out;
	}
	rc = 0;
	goto out;
usage:
	usage(stderr);
out:
	rf_tuf_client_free(c);
	free(names);
	return rc;
}
