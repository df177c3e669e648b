/*
 * Replay driver: turns a libFuzzer harness into a plain program that runs
 * LLVMFuzzerTestOneInput once on every file named on the command line (directories are read
 * one level deep). Built when -Dfuzz=false so every saved corpus entry and past crasher runs
 * under ASan/UBSan in `meson test`.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path, unsigned *count)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int r = rf_file_read(path, RF_FUZZ_REPLAY_MAX, &buf, &n);

	if (r < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, rf_strerror(r));
		return 1;
	}
	/* Give the harness an exact-size heap copy so ASan sees reads past the end. */
	uint8_t *exact = malloc(n ? n : 1);
	if (!exact) {
		free(buf);
		return 1;
	}
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	(*count)++;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int bad = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: not found\n", argv[i]);
			bad = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i], &count);
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			char p[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", argv[i], e->d_name);
			bad |= run_file(p, &count);
		}
		if (d)
			closedir(d);
	}
	printf("replayed %u inputs\n", count);
	return bad || count == 0;
}
