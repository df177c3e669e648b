/*
 * The manifests of manifests/, loaded for the content tests (testmanifest.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/util.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"
#include "testmanifest.h"

struct rf_manifest *rf_test_manifest(const char *name)
{
	const char *root = getenv("RF_SOURCE_ROOT");
	char path[4096];
	uint8_t *buf = NULL;
	size_t n;
	struct rf_manifest *m = NULL;
	struct rf_diag d = {0};

	snprintf(path, sizeof(path), "%s/manifests/%s", root ? root : ".", name);
	assert_int_equal(rf_file_read(path, RF_MANIFEST_MAX, &buf, &n), 0);
	if (rf_manifest_parse(buf, n, &m, &d) != 0)
		fail_msg("%s: %s", path, d.first);
	free(buf);
	return m;
}
