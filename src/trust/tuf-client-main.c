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

#include "common/util.h"
#include "ringfence/limits.h"
#include "trust/tuf.h"

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
	int i, r, rc = 1;

	if (!names)
		return 1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			free(names);
			return 0;
		}
		if (!strcmp(a, "--metadata-dir"))
			slot = &mdir;
		else if (!strcmp(a, "--metadata-url"))
			slot = &murl;
		else if (!strcmp(a, "--target-dir"))
			slot = &tdir;
		else if (!strcmp(a, "--target-base-url"))
			slot = &turl;
		else if (!strcmp(a, "--target-name"))
			slot = &names[nnames];
		else if (a[0] == '-') {
			fprintf(stderr, "ringfence-tuf-client: unknown option '%s'\n", a);
			goto usage;
		} else {
			cmd = a;
			i++;
			break;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "ringfence-tuf-client: %s needs a value\n", a);
			goto usage;
		}
		*slot = argv[++i];
		if (slot == &names[nnames])
			nnames++;
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
