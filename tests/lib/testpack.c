/*
 * The example pack for tests (testpack.h): read once from $RF_TEST_PACK, copied with the
 * content sequence number asked for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "testpack.h"

int rf_testpack(uint64_t seq, uint8_t **ret, size_t *ret_n)
{
	const char *path = getenv("RF_TEST_PACK");
	uint8_t *p;
	size_t n;
	int r;

	if (!path || !*path)
		return -ENOENT;
	if ((r = rf_file_read(path, RF_PACK_MAX, &p, &n)) < 0)
		return r;
	if (n < 24 || memcmp(p, "RFPK", 4) != 0) {
		free(p);
		return -EBADMSG;
	}
	for (int i = 0; i < 8; i++) /* little-endian u64 at offset 16 */
		p[16 + i] = (uint8_t)(seq >> (8 * i));
	*ret = p;
	*ret_n = n;
	return 0;
}

uint64_t rf_testpack_seq(const char *name)
{
	uint64_t h = 1469598103934665603ull;

	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		h = (h ^ *c) * 1099511628211ull;
	return h;
}
