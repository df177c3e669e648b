/*
 * tuf-canon FILE: print the canonical JSON (securesystemslib flavour) of the JSON in FILE, for
 * the interop test that compares it byte for byte with @tufjs/canonical-json. Exit 1 if the
 * input is refused.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "trust/tuf.h"

int main(int argc, char **argv)
{
	struct rf_diag d = {0};
	uint8_t *buf = NULL;
	char *out = NULL;
	size_t n = 0, on = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: tuf-canon FILE\n");
		return 2;
	}
	if (rf_file_read(argv[1], 1u << 20, &buf, &n) < 0 ||
	    rf_tuf_canonicalize(buf, n, &out, &on, &d) < 0) {
		fprintf(stderr, "tuf-canon: %s\n", d.count ? d.first : "cannot read input");
		free(buf);
		return 1;
	}
	fwrite(out, 1, on, stdout);
	free(buf);
	free(out);
	return 0;
}
