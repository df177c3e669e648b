/*
 * Fuzz target: TUF metadata parsing and canonical JSON (untrusted bytes from any mirror).
 * The first byte picks the role type the rest is parsed as (root, timestamp, snapshot,
 * targets); on success every accessor the client uses runs on the result (threshold
 * verification against the file's own keys, meta/target lookups, delegation matching, length
 * and hash checks, canonical form of custom metadata). The whole input is also canonicalised.
 * Invariants checked: no crash, no leak, no read out of bounds, whatever the bytes; the
 * canonical form is a fixed point of canonicalisation (when it is valid JSON).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ringfence/limits.h"
#include "trust/tuf-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rf_diag d = {0};
	struct rf__tuf_md *md = NULL;
	char *canon = NULL;
	size_t n;
	int sink = 0;

	if (rf_tuf_canonicalize(data, size, &canon, &n, &d) == 0) {
		/* canonical form is a fixed point: canonicalising it again changes nothing. (Raw
		 * control characters in strings make it invalid JSON, as in securesystemslib, so
		 * such output cannot be re-read; anything else must round-trip exactly.) */
		char *again = NULL;
		size_t n2 = 0;
		bool ctl = false;
		for (size_t i = 0; i < n; i++)
			ctl |= (unsigned char)canon[i] < 0x20;
		if (rf_tuf_canonicalize((const uint8_t *)canon, n, &again, &n2, NULL) == 0) {
			if (n2 != n || memcmp(canon, again, n) != 0)
				abort();
			free(again);
		} else if (!ctl) {
			abort();
		}
		free(canon);
	}
	if (size < 1)
		return 0;
	if (rf__tuf_md_parse(data + 1, size - 1, (enum rf__tuf_type)(data[0] % 4), &md, &d) < 0)
		return 0;
	if (md->type == RF__TUF_ROOT)
		for (int i = 0; i < 4; i++)
			sink |= rf__tuf_md_verify(&md->keys, &md->roles[i], md, "fuzz", &d);
	(void)rf__tuf_md_expired(md, 1700000000);
	(void)rf__tuf_md_file(md, "snapshot.json");
	(void)rf__tuf_md_file(md, "targets.json");
	for (size_t i = 0; i < md->nfiles; i++) {
		sink |= rf__tuf_file_check(&md->files[i], data, size, "fuzz", &d);
		if (md->files[i].custom &&
		    rf__tuf_canonical(md->files[i].custom, &canon, &n, &d) == 0)
			free(canon);
	}
	for (size_t i = 0; i < md->ndels; i++) {
		(void)rf__tuf_role_matches(&md->dels[i], "packs/a.rfp");
		(void)rf__tuf_md_delegation(md, md->dels[i].name);
		sink |= rf__tuf_md_verify(&md->keys, &md->dels[i], md, "fuzz", &d);
		for (size_t j = 0; j < md->nfiles && j < 8; j++)
			(void)rf__tuf_role_matches(&md->dels[i], md->files[j].name);
	}
	if (md->succinct_bits) {
		char bin[RF_TUF_NAME_MAX + 1];
		sink |= rf__tuf_succinct_bin(md, "packs/a.rfp", bin, sizeof(bin));
	}
	rf__tuf_md_free(md);
	(void)sink;
	return 0;
}
