/*
 * TUF metadata: strict parsing into struct rf__tuf_md, threshold verification, expiry, file
 * entries (length and hashes) and delegation matching.
 *
 * Design: the parser is the only place that looks at the shape of untrusted JSON. It checks
 * every field the client reads - `_type`, `spec_version` (major 1), `version` >= 1, `expires`
 * in the spec's exact "YYYY-MM-DDTHH:MM:SSZ" form, keys, roles (root must name exactly root,
 * timestamp, snapshot and targets), meta and targets entries, delegations (explicit roles or
 * TAP 15 succinct hash bins) - and every count against limits.h, and reports the field that
 * failed. Unknown fields are allowed and, being
 * inside `signed`, are covered by the signatures. It then computes the canonical JSON of
 * `signed` once; signatures are checked over those bytes, never over the bytes received.
 * Threshold counting: a signature counts if its key id is listed for the role, the key is
 * usable (keys.c), it verifies, and neither its key id nor the same public key already counted;
 * unknown key ids and bad signatures are skipped, not fatal. A signature list naming one key id
 * twice is malformed (as in python-tuf), so "duplicate key ids" can never count twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "trust/tuf-internal.h"

static const char *const type_names[] = {"root", "timestamp", "snapshot", "targets"};

static int bad(struct rf_diag *d, enum rf__tuf_type t, const char *field, const char *why)
{
	return rf_diag_report(d, -EBADMSG, "%s metadata: field '%s' %s", type_names[t], field, why);
}

/* ---- time ------------------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned dd)
{
	/* Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic Gregorian calendar. */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + dd - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *ret)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*ret = v;
	return true;
}

int rf__tuf_time_parse(const char *s, int64_t *ret)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, mo, dd, h, mi, se;

	if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != 'Z')
		return -EBADMSG;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &dd) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return -EBADMSG;
	if (mo < 1 || mo > 12 || dd < 1 || dd > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
		return -EBADMSG;
	if (mo == 2 && dd == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return -EBADMSG;
	*ret = days_from_civil(y, mo, dd) * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}

void rf__tuf_time_format(int64_t t, char out[21])
{
	/* Inverse of days_from_civil (civil_from_days). */
	int64_t z = (t >= 0 ? t : t - 86399) / 86400, secs = t - z * 86400;
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned dd = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	if (y < 0 || y > 9999)
		y = y < 0 ? 0 : 9999;
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%04u-%02u-%02uT%02u:%02u:%02uZ", (unsigned)y % 10000u, m % 100u,
		 dd % 100u, (unsigned)(secs / 3600) % 100u, (unsigned)(secs / 60 % 60),
		 (unsigned)(secs % 60));
	memcpy(out, tmp, 20);
	out[20] = '\0';
}

/* ---- parsing ---------------------------------------------------------------------------- */

static bool get_u64(const json_t *v, uint64_t min, uint64_t *ret)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min)
		return false;
	*ret = (uint64_t)json_integer_value(v);
	return true;
}

static int parse_keys(const json_t *keys, struct rf__tuf_keyring *kr, enum rf__tuf_type t,
		      struct rf_diag *d)
{
	const char *keyid;
	json_t *key;
	size_t i = 0;

	if (!json_is_object(keys))
		return bad(d, t, "keys", "is not an object");
	if (json_object_size(keys) > RF_TUF_KEYS_MAX)
		return rf_diag_report(d, -E2BIG, "%s metadata: more than %u keys", type_names[t],
				      RF_TUF_KEYS_MAX);
	kr->keys = calloc(json_object_size(keys) + 1, sizeof(*kr->keys));
	if (!kr->keys)
		return -ENOMEM;
	json_object_foreach((json_t *)keys, keyid, key)
	{
		struct rf__tuf_key *k = &kr->keys[i];
		if (rf__tuf_key_from_json(key, &k->alg, &k->pkey) < 0) {
			char q[80];
			return rf_diag_report(
			    d, -EBADMSG, "%s metadata: key '%s' lacks keytype, scheme or keyval",
			    type_names[t], rf_diag_quote(q, sizeof(q), keyid, strlen(keyid)));
		}
		k->keyid = keyid;
		k->pubval =
		    json_string_value(json_object_get(json_object_get(key, "keyval"), "public"));
		kr->n = ++i;
	}
	return 0;
}

static void keyring_free(struct rf__tuf_keyring *kr)
{
	for (size_t i = 0; i < kr->n; i++)
		EVP_PKEY_free(kr->keys[i].pkey);
	free(kr->keys);
	kr->keys = NULL;
	kr->n = 0;
}

static int string_array(const json_t *a, const char ***ret, size_t *ret_n, bool unique,
			enum rf__tuf_type t, const char *field, struct rf_diag *d)
{
	size_t n = json_array_size(a);
	const char **v;

	if (!json_is_array(a))
		return bad(d, t, field, "is not an array");
	if (n > RF_TUF_KEYS_MAX)
		return rf_diag_report(d, -E2BIG, "%s metadata: '%s' has more than %u entries",
				      type_names[t], field, RF_TUF_KEYS_MAX);
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *s = json_array_get(a, i);
		if (!json_is_string(s)) {
			free(v);
			return bad(d, t, field, "holds a non-string");
		}
		v[i] = json_string_value(s);
		for (size_t j = 0; unique && j < i; j++)
			if (!strcmp(v[j], v[i])) {
				free(v);
				return bad(d, t, field, "lists the same key id twice");
			}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int parse_role(const json_t *o, struct rf__tuf_role *r, enum rf__tuf_type t,
		      struct rf_diag *d)
{
	int ret;

	if (!json_is_object(o))
		return bad(d, t, "roles", "holds a role that is not an object");
	ret = string_array(json_object_get(o, "keyids"), &r->keyids, &r->nkeyids, true, t, "keyids",
			   d);
	if (ret < 0)
		return ret;
	if (!get_u64(json_object_get(o, "threshold"), 1, &r->threshold))
		return bad(d, t, "threshold", "is not an integer >= 1");
	return 0;
}

static void role_free(struct rf__tuf_role *r)
{
	free(r->keyids);
	free(r->paths);
	free(r->prefixes);
}

static int parse_hashes(const json_t *h, struct rf__tuf_file *f, enum rf__tuf_type t,
			struct rf_diag *d)
{
	const char *alg;
	json_t *v;

	if (!json_is_object(h) || json_object_size(h) == 0)
		return bad(d, t, "hashes", "is not a non-empty object");
	json_object_foreach((json_t *)h, alg, v)
	{
		if (!json_is_string(v))
			return bad(d, t, "hashes", "holds a non-string");
		if (!f->first_hash_hex)
			f->first_hash_hex = json_string_value(v);
		if (!strcmp(alg, "sha256")) {
			if (rf_hex_decode(json_string_value(v), json_string_length(v), f->sha256,
					  32) < 0)
				return bad(d, t, "hashes.sha256", "is not 64 hex digits");
			f->has_sha256 = true;
		} else if (!strcmp(alg, "sha512")) {
			if (rf_hex_decode(json_string_value(v), json_string_length(v), f->sha512,
					  64) < 0)
				return bad(d, t, "hashes.sha512", "is not 128 hex digits");
			f->has_sha512 = true;
		}
	}
	return 0;
}

static int cmp_file_names(const void *a, const void *b)
{
	return strcmp(((const struct rf__tuf_file *)a)->name,
		      ((const struct rf__tuf_file *)b)->name);
}

static int parse_files(const json_t *o, struct rf__tuf_md *md, struct rf_diag *d)
{
	bool targets = md->type == RF__TUF_TARGETS;
	const char *field = targets ? "targets" : "meta", *name;
	json_t *e;
	size_t i = 0;
	int r;

	if (!json_is_object(o))
		return bad(d, md->type, field, "is missing or not an object");
	if (json_object_size(o) > RF_TUF_ENTRIES_MAX)
		return rf_diag_report(d, -E2BIG, "%s metadata: more than %u entries in '%s'",
				      type_names[md->type], RF_TUF_ENTRIES_MAX, field);
	if (md->type == RF__TUF_TIMESTAMP &&
	    (json_object_size(o) != 1 || !json_object_get(o, "snapshot.json")))
		return bad(d, md->type, "meta", "must hold exactly 'snapshot.json'");
	md->files = calloc(json_object_size(o) + 1, sizeof(*md->files));
	if (!md->files)
		return -ENOMEM;
	json_object_foreach((json_t *)o, name, e)
	{
		struct rf__tuf_file *f = &md->files[i];
		const json_t *len = json_object_get(e, "length"), *h = json_object_get(e, "hashes");

		if (!json_is_object(e))
			return bad(d, md->type, field, "holds an entry that is not an object");
		if (strlen(name) == 0 || strlen(name) > RF_TUF_NAME_MAX)
			return bad(d, md->type, field, "holds an empty or too long name");
		f->name = name;
		if (targets) {
			if (!get_u64(len, 0, &f->length))
				return bad(d, md->type, "length", "is not an integer >= 0");
			f->has_length = true;
			if ((r = parse_hashes(h, f, md->type, d)) < 0)
				return r;
			f->custom = json_object_get(e, "custom");
			if (f->custom && !json_is_object(f->custom))
				return bad(d, md->type, "custom", "is not an object");
		} else {
			if (!get_u64(json_object_get(e, "version"), 1, &f->version))
				return bad(d, md->type, "version", "is not an integer >= 1");
			if (len) {
				if (!get_u64(len, 1, &f->length))
					return bad(d, md->type, "length", "is not an integer >= 1");
				f->has_length = true;
			}
			if (h && (r = parse_hashes(h, f, md->type, d)) < 0)
				return r;
		}
		md->nfiles = ++i;
	}
	/* sorted by name: lookups are binary searches, and two snapshots compare in one merge */
	qsort(md->files, md->nfiles, sizeof(*md->files), cmp_file_names);
	return 0;
}

static bool top_level_name(const char *s)
{
	for (size_t i = 0; i < RF_ARRAY_SIZE(type_names); i++)
		if (!strcmp(s, type_names[i]))
			return true;
	return false;
}

static int parse_delegations(const json_t *o, struct rf__tuf_md *md, struct rf_diag *d)
{
	const json_t *roles = json_object_get(o, "roles");
	size_t n = json_array_size(roles);
	int r;

	if (!json_is_object(o))
		return bad(d, md->type, "delegations", "is not an object");
	if ((r = parse_keys(json_object_get(o, "keys"), &md->keys, md->type, d)) < 0)
		return r;
	if (json_object_get(o, "succinct_roles")) {
		/* TAP 15 hash bins: one role description stands for 2^bit_length bins */
		const json_t *sr = json_object_get(o, "succinct_roles");
		const json_t *prefix = json_object_get(sr, "name_prefix");
		uint64_t bits;
		if (roles)
			return bad(d, md->type, "delegations",
				   "has both 'roles' and 'succinct_roles'");
		if ((r = parse_role(sr, &md->succinct, md->type, d)) < 0)
			return r;
		if (!get_u64(json_object_get(sr, "bit_length"), 1, &bits) || bits > 32)
			return bad(d, md->type, "succinct_roles.bit_length", "is not in 1..32");
		if (!json_is_string(prefix) || json_string_length(prefix) == 0 ||
		    json_string_length(prefix) > RF_TUF_NAME_MAX - 16)
			return bad(d, md->type, "succinct_roles.name_prefix",
				   "is not a valid name");
		md->succinct.name = json_string_value(prefix);
		md->succinct.terminating = true;
		md->succinct_bits = (unsigned)bits;
		md->has_delegations = true;
		return 0;
	}
	if (!json_is_array(roles))
		return bad(d, md->type, "delegations.roles", "is not an array");
	if (n > RF_TUF_KEYS_MAX)
		return rf_diag_report(d, -E2BIG, "targets metadata: more than %u delegated roles",
				      RF_TUF_KEYS_MAX);
	md->has_delegations = true;
	md->dels = calloc(n + 1, sizeof(*md->dels));
	if (!md->dels)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(roles, i), *name = json_object_get(e, "name");
		const json_t *term = json_object_get(e, "terminating");
		const json_t *paths = json_object_get(e, "paths");
		const json_t *pfx = json_object_get(e, "path_hash_prefixes");
		struct rf__tuf_role *dr = &md->dels[i];

		md->ndels = i + 1;
		if (!json_is_string(name) || json_string_length(name) == 0 ||
		    json_string_length(name) > RF_TUF_NAME_MAX)
			return bad(d, md->type, "delegations.roles.name", "is not a valid name");
		dr->name = json_string_value(name);
		if (top_level_name(dr->name))
			return bad(d, md->type, "delegations.roles.name",
				   "is a top-level role name");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(md->dels[j].name, dr->name))
				return bad(d, md->type, "delegations.roles.name", "is not unique");
		if ((r = parse_role(e, dr, md->type, d)) < 0)
			return r;
		if (!json_is_boolean(term))
			return bad(d, md->type, "delegations.roles.terminating",
				   "is not a boolean");
		dr->terminating = json_is_true(term);
		if ((paths != NULL) == (pfx != NULL))
			return bad(d, md->type, "delegations.roles",
				   "needs exactly one of 'paths' and 'path_hash_prefixes'");
		if (paths)
			r = string_array(paths, &dr->paths, &dr->npaths, false, md->type, "paths",
					 d);
		else
			r = string_array(pfx, &dr->prefixes, &dr->nprefixes, false, md->type,
					 "path_hash_prefixes", d);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool spec_version_ok(const json_t *v)
{
	const char *s = json_string_value(v);
	unsigned parts = 1;

	if (!s || strncmp(s, "1.", 2) != 0)
		return false;
	for (const char *p = s + 2; *p; p++) {
		if (*p == '.') {
			if (p[-1] == '.' || !p[1])
				return false;
			parts++;
		} else if (*p < '0' || *p > '9') {
			return false;
		}
	}
	return s[2] && parts <= 2;
}

static int parse_signed(struct rf__tuf_md *md, const json_t *s, struct rf_diag *d)
{
	const json_t *type = json_object_get(s, "_type"), *ex = json_object_get(s, "expires");
	int r;

	if (!json_is_object(s))
		return bad(d, md->type, "signed", "is missing or not an object");
	if (!json_is_string(type) || strcmp(json_string_value(type), type_names[md->type]) != 0)
		return bad(d, md->type, "_type", "does not name this role");
	if (!spec_version_ok(json_object_get(s, "spec_version")))
		return bad(d, md->type, "spec_version", "is not a 1.x[.y] version");
	if (!get_u64(json_object_get(s, "version"), 1, &md->version) ||
	    md->version > (uint64_t)INT64_MAX)
		return bad(d, md->type, "version", "is not an integer >= 1");
	if (!json_is_string(ex) || rf__tuf_time_parse(json_string_value(ex), &md->expires) < 0)
		return bad(d, md->type, "expires", "is not a YYYY-MM-DDTHH:MM:SSZ time");

	switch (md->type) {
	case RF__TUF_ROOT: {
		const json_t *cs = json_object_get(s, "consistent_snapshot");
		const json_t *roles = json_object_get(s, "roles");
		if (cs && !json_is_boolean(cs))
			return bad(d, md->type, "consistent_snapshot", "is not a boolean");
		md->consistent_snapshot = json_is_true(cs);
		if ((r = parse_keys(json_object_get(s, "keys"), &md->keys, md->type, d)) < 0)
			return r;
		if (!json_is_object(roles) || json_object_size(roles) != 4)
			return bad(d, md->type, "roles",
				   "must name exactly root, timestamp, snapshot and targets");
		for (int i = 0; i < 4; i++) {
			const json_t *ro = json_object_get(roles, type_names[i]);
			if (!ro)
				return bad(
				    d, md->type, "roles",
				    "must name exactly root, timestamp, snapshot and targets");
			md->roles[i].name = type_names[i];
			if ((r = parse_role(ro, &md->roles[i], md->type, d)) < 0)
				return r;
		}
		return 0;
	}
	case RF__TUF_TIMESTAMP:
	case RF__TUF_SNAPSHOT:
		return parse_files(json_object_get(s, "meta"), md, d);
	case RF__TUF_TARGETS:
		if ((r = parse_files(json_object_get(s, "targets"), md, d)) < 0)
			return r;
		if (json_object_get(s, "delegations"))
			return parse_delegations(json_object_get(s, "delegations"), md, d);
		return 0;
	}
	return -EINVAL;
}

static int parse_signatures(struct rf__tuf_md *md, const json_t *a, struct rf_diag *d)
{
	size_t n = json_array_size(a);

	if (!json_is_array(a))
		return bad(d, md->type, "signatures", "is missing or not an array");
	if (n > RF_TUF_SIGNATURES_MAX)
		return rf_diag_report(d, -E2BIG, "%s metadata: more than %u signatures",
				      type_names[md->type], RF_TUF_SIGNATURES_MAX);
	md->sigs = calloc(n + 1, sizeof(*md->sigs));
	if (!md->sigs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(a, i), *kid = json_object_get(e, "keyid");
		const json_t *sig = json_object_get(e, "sig");
		struct rf__tuf_sig *s = &md->sigs[i];

		if (!json_is_object(e) || !json_is_string(kid) || !json_is_string(sig))
			return bad(d, md->type, "signatures",
				   "holds an entry without keyid and sig");
		s->keyid = json_string_value(kid);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(md->sigs[j].keyid, s->keyid))
				return bad(d, md->type, "signatures",
					   "has two signatures by one key id");
		md->nsigs = i + 1;
		size_t hl = json_string_length(sig);
		if (hl == 0 || hl % 2 || hl > 8192)
			continue; /* not a signature we can check: it simply does not count */
		s->sig = malloc(hl / 2);
		if (!s->sig)
			return -ENOMEM;
		if (rf_hex_decode(json_string_value(sig), hl, s->sig, hl / 2) < 0) {
			free(s->sig);
			s->sig = NULL;
			continue;
		}
		s->len = hl / 2;
	}
	return 0;
}

void rf__tuf_md_free(struct rf__tuf_md *md)
{
	if (!md)
		return;
	keyring_free(&md->keys);
	for (int i = 0; i < 4; i++)
		role_free(&md->roles[i]);
	for (size_t i = 0; i < md->ndels; i++)
		role_free(&md->dels[i]);
	role_free(&md->succinct);
	free(md->dels);
	for (size_t i = 0; i < md->nsigs; i++)
		free(md->sigs[i].sig);
	free(md->sigs);
	free(md->files);
	free(md->canon);
	free(md->raw);
	json_decref(md->doc);
	free(md);
}

int rf__tuf_md_parse(const uint8_t *p, size_t n, enum rf__tuf_type type, struct rf__tuf_md **ret,
		     struct rf_diag *d)
{
	struct rf__tuf_md *md = calloc(1, sizeof(*md));
	int r;

	if (!md)
		return -ENOMEM;
	md->type = type;
	md->raw = malloc(n ? n : 1);
	if (!md->raw) {
		r = -ENOMEM;
		goto fail;
	}
	if (n)
		memcpy(md->raw, p, n);
	md->rawlen = n;
	if ((r = rf__tuf_json_parse(p, n, &md->doc, d)) < 0)
		goto fail;
	if (!json_is_object(md->doc)) {
		r = bad(d, type, "(top level)", "is not an object");
		goto fail;
	}
	if ((r = parse_signed(md, json_object_get(md->doc, "signed"), d)) < 0)
		goto fail;
	if ((r = parse_signatures(md, json_object_get(md->doc, "signatures"), d)) < 0)
		goto fail;
	if ((r = rf__tuf_canonical(json_object_get(md->doc, "signed"), &md->canon, &md->canonlen,
				   d)) < 0)
		goto fail;
	*ret = md;
	return 0;
fail:
	rf__tuf_md_free(md);
	return r;
}

/* ---- verification ----------------------------------------------------------------------- */

static const struct rf__tuf_key *find_key(const struct rf__tuf_keyring *kr, const char *keyid)
{
	for (size_t i = 0; i < kr->n; i++)
		if (!strcmp(kr->keys[i].keyid, keyid))
			return &kr->keys[i];
	return NULL;
}

static bool role_has_keyid(const struct rf__tuf_role *r, const char *keyid)
{
	for (size_t i = 0; i < r->nkeyids; i++)
		if (!strcmp(r->keyids[i], keyid))
			return true;
	return false;
}

int rf__tuf_md_verify(const struct rf__tuf_keyring *kr, const struct rf__tuf_role *role,
		      const struct rf__tuf_md *md, const char *what, struct rf_diag *d)
{
	const struct rf__tuf_key **counted = calloc(md->nsigs + 1, sizeof(*counted));
	uint64_t n = 0;

	if (!counted)
		return -ENOMEM;
	for (size_t i = 0; i < md->nsigs; i++) {
		const struct rf__tuf_sig *s = &md->sigs[i];
		const struct rf__tuf_key *k;
		bool dup = false;

		if (!s->sig || !role_has_keyid(role, s->keyid) || !(k = find_key(kr, s->keyid)) ||
		    !k->pkey)
			continue;
		for (uint64_t j = 0; j < n; j++)
			if (counted[j] == k || (k->pubval && counted[j]->pubval &&
						!strcmp(k->pubval, counted[j]->pubval)))
				dup = true;
		if (dup)
			continue;
		if (rf__tuf_key_verify(k->alg, k->pkey, s->sig, s->len, md->canon, md->canonlen))
			counted[n++] = k;
	}
	free(counted);
	if (n >= role->threshold)
		return 0;
	return rf_diag_report(
	    d, -EKEYREJECTED, "%s: %llu valid signature(s) of role '%s', threshold is %llu", what,
	    (unsigned long long)n, role->name, (unsigned long long)role->threshold);
}

bool rf__tuf_md_expired(const struct rf__tuf_md *md, int64_t now)
{
	return now >= md->expires;
}

const struct rf__tuf_file *rf__tuf_md_file(const struct rf__tuf_md *md, const char *name)
{
	size_t lo = 0, hi = md->nfiles;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(md->files[mid].name, name);
		if (c == 0)
			return &md->files[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int rf__tuf_snapshot_check(const struct rf__tuf_md *old, const struct rf__tuf_md *md,
			   uint64_t *ret_work, struct rf_diag *d)
{
	size_t i = 0, j = 0;
	uint64_t work = 0;
	int r = 0;

	/* both lists are sorted by name (parse_files): one merge, each step a comparison */
	while (i < old->nfiles && r == 0) {
		const struct rf__tuf_file *of = &old->files[i];
		int c = j < md->nfiles ? strcmp(md->files[j].name, of->name) : 1;
		char q[80];

		work++;
		if (c < 0) { /* listed only in the new snapshot: allowed */
			j++;
			continue;
		}
		if (c > 0 || md->files[j].version < of->version)
			r = rf_diag_report(d, -ESTALE,
					   "snapshot v%llu %s '%s' (trusted: v%llu; rollback)",
					   (unsigned long long)md->version,
					   c > 0 ? "drops" : "lowers the version of",
					   rf_diag_quote(q, sizeof(q), of->name, strlen(of->name)),
					   (unsigned long long)of->version);
		i++;
		j += c == 0;
	}
	if (ret_work)
		*ret_work = work;
	return r;
}

const struct rf__tuf_role *rf__tuf_md_delegation(const struct rf__tuf_md *md, const char *name)
{
	for (size_t i = 0; i < md->ndels; i++)
		if (!strcmp(md->dels[i].name, name))
			return &md->dels[i];
	return NULL;
}

int rf__tuf_file_check(const struct rf__tuf_file *f, const uint8_t *p, size_t n, const char *what,
		       struct rf_diag *d)
{
	if (f->has_length && f->length != n)
		return rf_diag_report(d, -EBADMSG, "%s: length %zu, the metadata says %llu", what,
				      n, (unsigned long long)f->length);
	if (f->has_sha256) {
		uint8_t h[32];
		rf_sha256(p, n, h);
		if (CRYPTO_memcmp(h, f->sha256, 32) != 0)
			return rf_diag_report(d, -EBADMSG, "%s: sha256 does not match the metadata",
					      what);
	}
	if (f->has_sha512) {
		uint8_t h[64];
		SHA512(p, n, h);
		if (CRYPTO_memcmp(h, f->sha512, 64) != 0)
			return rf_diag_report(d, -EBADMSG, "%s: sha512 does not match the metadata",
					      what);
	}
	return 0;
}

/* ---- delegation matching ---------------------------------------------------------------- */

/* One bracket class at p (after '['); *end gets the byte after ']'. false if no ']'. */
static bool class_match(const char *p, char c, const char **end, bool *ret)
{
	bool neg = false, hit = false;
	const char *q = p;

	if (*q == '!') {
		neg = true;
		q++;
	}
	if (*q == ']') { /* a leading ']' is literal */
		hit |= c == ']';
		q++;
	}
	for (; *q && *q != ']'; q++) {
		if (q[1] == '-' && q[2] && q[2] != ']') {
			hit |= (unsigned char)c >= (unsigned char)q[0] &&
			       (unsigned char)c <= (unsigned char)q[2];
			q += 2;
		} else {
			hit |= c == *q;
		}
	}
	if (*q != ']')
		return false;
	*end = q + 1;
	*ret = hit != neg;
	return true;
}

bool rf__tuf_glob(const char *pat, const char *s)
{
	const char *star = NULL, *star_s = NULL;

	while (*s) {
		const char *end;
		bool m;
		if (*pat == '*') {
			star = ++pat;
			star_s = s;
			continue;
		}
		if (*s != '/' && *pat == '?') {
			pat++;
			s++;
			continue;
		}
		if (*pat == '[' && *s != '/' && class_match(pat + 1, *s, &end, &m)) {
			if (m) {
				pat = end;
				s++;
				continue;
			}
		} else if (*pat && *pat == *s &&
			   !(*pat == '[' && class_match(pat + 1, *s, &end, &m))) {
			pat++;
			s++;
			continue;
		}
		/* mismatch: let the last '*' take one more byte, never a '/' */
		if (!star || *star_s == '/')
			return false;
		pat = star;
		s = ++star_s;
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

static size_t count_char(const char *s, char c)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == c;
	return n;
}

int rf__tuf_succinct_bin(const struct rf__tuf_md *md, const char *path, char *out, size_t outsz)
{
	uint8_t h[32];
	uint32_t v;
	int n;

	rf_sha256(path, strlen(path), h);
	v = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	v = md->succinct_bits >= 32 ? v : v >> (32 - md->succinct_bits);
	n = snprintf(out, outsz, "%s-%0*x", md->succinct.name, (int)((md->succinct_bits + 3) / 4),
		     (unsigned)v);
	return n < 0 || (size_t)n >= outsz ? -E2BIG : 0;
}

bool rf__tuf_role_matches(const struct rf__tuf_role *r, const char *path)
{
	for (size_t i = 0; i < r->npaths; i++) {
		/* python-tuf: same number of '/'-separated parts, each matched on its own */
		if (count_char(r->paths[i], '/') == count_char(path, '/') &&
		    rf__tuf_glob(r->paths[i], path))
			return true;
	}
	if (r->nprefixes) {
		char hex[65];
		rf_sha256_hex(path, strlen(path), hex);
		for (size_t i = 0; i < r->nprefixes; i++)
			if (!strncmp(hex, r->prefixes[i], strlen(r->prefixes[i])))
				return true;
	}
	return false;
}
