/*
 * The matcher cache (see cache.h): rf_engine_load_cached keeps an engine's Vectorscan databases,
 * serialised, in a file beside the pack, so that a worker restarting on the same pack (after a
 * crash, or at every agent start) skips the seconds of pattern compilation. The pack itself is
 * verified against the manifest on every load, cache or not (P1); the cache only replaces the
 * compile step, and each cached database is used only if it was compiled from exactly the
 * expressions this build would compile (engine.c compares a digest per database), so a cache
 * written by another build or for other content is never used. The file is the agent's own
 * (written atomically, never shipped); it is read as untrusted all the same: bounded in size,
 * every length checked, its SHA-256 checked before Vectorscan sees a byte.
 *
 * File layout (little-endian):
 *   0  4  magic "RFHC"         4  4  format version (1)
 *   8  32 SHA-256 of the pack  40 4  number of databases   44 4  zero
 *   48 32 SHA-256 of bytes 80..end
 *   80    per database: u32 length, u32 zero, 32-byte digest of its expressions, the bytes of
 *         hs_serialize_database
 */
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>

#include "common/util.h"
#include "content/cache.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

#define CACHE_MAGIC   "RFHC"
#define CACHE_VERSION 1u
#define CACHE_HDR     80u
#define CACHE_ENT     40u

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void free_dbs(hs_database_t **dbs, uint32_t n)
{
	if (!dbs)
		return;
	for (uint32_t i = 0; i < n; i++)
		hs_free_database(dbs[i]);
	free(dbs);
}

/* Read and check the cache for the pack with SHA-256 hash: 0 with the databases and their
 * digests, -ENOENT (no file), -ESTALE (for other content or another Vectorscan/CPU), -EBADMSG
 * (damaged), -E2BIG, -ENOMEM. */
static int cache_read(const char *path, const uint8_t hash[32], hs_database_t ***ret,
		      uint8_t (**ret_digests)[32], uint32_t *ret_n)
{
	uint8_t *buf = NULL, sum[32];
	size_t len, off = CACHE_HDR;
	hs_database_t **dbs = NULL;
	uint8_t(*dig)[32] = NULL;
	uint32_t n = 0, i;
	int r = rf_file_read(path, RF_ENGINE_CACHE_MAX, &buf, &len);

	if (r < 0)
		return r;
	r = -EBADMSG;
	if (len < CACHE_HDR || memcmp(buf, CACHE_MAGIC, 4) || get32(buf + 4) != CACHE_VERSION ||
	    get32(buf + 44) != 0)
		goto out;
	if (memcmp(buf + 8, hash, 32) != 0) {
		r = -ESTALE;
		goto out;
	}
	rf_sha256(buf + CACHE_HDR, len - CACHE_HDR, sum);
	if (memcmp(sum, buf + 48, 32) != 0)
		goto out;
	n = get32(buf + 40);
	if (n > RF_PACK_FIELDS_MAX + 1)
		goto out;
	dbs = calloc(n + 1, sizeof(*dbs));
	dig = calloc(n + 1, sizeof(*dig));
	if (!dbs || !dig) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (len - off < CACHE_ENT)
			goto out;
		uint32_t l = get32(buf + off);
		if (get32(buf + off + 4) != 0)
			goto out;
		memcpy(dig[i], buf + off + 8, 32);
		off += CACHE_ENT;
		if (l > len - off)
			goto out;
		if (hs_deserialize_database((const char *)buf + off, l, &dbs[i]) != HS_SUCCESS) {
			r = -ESTALE; /* another Vectorscan version or platform */
			goto out;
		}
		off += l;
	}
	if (off != len)
		goto out;
	*ret = dbs;
	*ret_digests = dig;
	*ret_n = n;
	dbs = NULL;
	dig = NULL;
	r = 0;
out:
	free_dbs(dbs, n);
	free(dig);
	free(buf);
	return r;
}

/* Serialise e's databases into path (atomically: a crash leaves the old file or the new). */
static int cache_write(const char *path, const uint8_t hash[32], const struct rf_engine *e)
{
	uint32_t n = rf__engine_ndbs(e);
	char **ser = calloc(n + 1, sizeof(*ser));
	size_t *sl = calloc(n + 1, sizeof(*sl)), total = CACHE_HDR;
	uint8_t *out = NULL;
	int r = -ENOMEM;

	if (!ser || !sl)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *dg;
		const hs_database_t *db = rf__engine_db(e, i, &dg);
		if (!db || !dg || hs_serialize_database(db, &ser[i], &sl[i]) != HS_SUCCESS ||
		    sl[i] > UINT32_MAX) {
			r = -EIO;
			goto out;
		}
		total += CACHE_ENT + sl[i];
	}
	if (total > RF_ENGINE_CACHE_MAX) {
		r = -E2BIG;
		goto out;
	}
	if (!(out = calloc(1, total)))
		goto out;
	memcpy(out, CACHE_MAGIC, 4);
	put32(out + 4, CACHE_VERSION);
	memcpy(out + 8, hash, 32);
	put32(out + 40, n);
	size_t off = CACHE_HDR;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *dg;
		(void)rf__engine_db(e, i, &dg);
		put32(out + off, (uint32_t)sl[i]);
		memcpy(out + off + 8, dg, 32);
		memcpy(out + off + CACHE_ENT, ser[i], sl[i]);
		off += CACHE_ENT + sl[i];
	}
	rf_sha256(out + CACHE_HDR, total - CACHE_HDR, out + 48);
	r = rf_file_write_atomic(path, out, total, 0600);
out:
	/* hs_serialize_database allocates with malloc (Vectorscan's default allocator). */
	if (ser)
		for (uint32_t i = 0; i < n; i++)
			free(ser[i]);
	free(ser);
	free(sl);
	free(out);
	return r;
}

int rf_engine_load_cached(const uint8_t *p, size_t n, const struct rf_manifest *m,
			  const char *cache_path, struct rf_engine **ret, int *ret_cache,
			  struct rf_diag *reterr)
{
	uint8_t hash[32];
	hs_database_t **dbs = NULL;
	uint8_t(*dig)[32] = NULL;
	uint32_t ndb = 0;
	struct rf_engine *e = NULL;
	int r;

	rf_sha256(p, n, hash);
	if (cache_read(cache_path, hash, &dbs, &dig, &ndb) == 0) {
		r = rf__engine_load_with(p, n, m, dbs, (const uint8_t(*)[32])dig, ndb, &e, reterr);
		free_dbs(dbs, ndb);
		free(dig);
		if (r == 0) {
			if (ret_cache)
				*ret_cache = 1;
			*ret = e;
			return 0;
		}
		if (r != -ESTALE)
			return r; /* the pack itself is refused: the same without a cache */
	}
	r = rf_engine_load(p, n, m, &e, reterr);
	if (r < 0)
		return r;
	int w = cache_write(cache_path, hash, e);
	if (ret_cache)
		*ret_cache = w;
	*ret = e;
	return 0;
}
