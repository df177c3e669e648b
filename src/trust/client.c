/*
 * The TUF client: the specification's detailed client workflow (v1.0.34, 5.2-5.7).
 *
 * Trusted state is the metadata directory: root.json, timestamp.json, snapshot.json,
 * targets.json and <quoted role>.json, each the exact bytes received, replaced atomically and
 * only after the new file passed every check (signatures against the trusted delegator,
 * version rules, expiry, length and hashes named by the referring metadata). A refresh reads
 * the cached timestamp and snapshot again as its rollback references (the timestamp bounds the
 * snapshot, the snapshot bounds targets and every delegated role); cached targets and delegated
 * role files are only caches. A cached file that no longer verifies against the current root
 * (e.g. after a key rotation) is ignored, and when the timestamp or snapshot keys change in a
 * root update both files are deleted (fast-forward attack recovery, 5.3.11), so nothing a
 * compromised key signed still binds. A delegated role is verified against the delegation
 * being followed each time it is reached, also when it is already loaded.
 * Role and target names only reach the file system URL-quoted (rf_tuf_quote_name: no '/',
 * never "." or ".."), so a hostile name cannot leave the directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "ringfence/limits.h"
#include "trust/tuf-internal.h"

struct loaded_role {
	char *name;
	struct rf__tuf_md *md;
};

struct rf_tuf_client {
	char *mdir, *murl, *turl;
	int64_t now;
	void (*before_durable_step)(void *ud, unsigned step, const char *what);
	void *step_ud;
	unsigned steps; /* durable steps taken (or about to be) in this client's life */
	struct rf__tuf_md *root, *timestamp, *snapshot, *targets;
	struct loaded_role *dels;
	size_t ndels;
	bool refreshed;
};

static int64_t client_now(const struct rf_tuf_client *c)
{
	return c->now ? c->now : rf_now_wall();
}

int rf_tuf_quote_name(const char *name, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	bool dots = !strcmp(name, ".") || !strcmp(name, "..");
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '~' ||
			    (*p == '.' && !dots);
		if (o + (keep ? 1 : 3) >= outsz)
			return -E2BIG;
		if (keep) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	if (o >= outsz)
		return -E2BIG;
	out[o] = '\0';
	return 0;
}

static int join(char *out, size_t outsz, const char *a, const char *b, const char *c)
{
	int n = snprintf(out, outsz, "%s%s%s", a, b, c ? c : "");
	return n < 0 || (size_t)n >= outsz ? -E2BIG : 0;
}

/* The local file of a role: DIR/<quoted name>.json */
static int role_path(const struct rf_tuf_client *c, const char *role, char *out, size_t outsz)
{
	char q[3 * RF_TUF_NAME_MAX + 1];
	int r = rf_tuf_quote_name(role, q, sizeof(q)), n;

	if (r < 0)
		return r;
	n = snprintf(out, outsz, "%s/%s.json", c->mdir, q);
	return n < 0 || (size_t)n >= outsz ? -E2BIG : 0;
}

static size_t type_max(enum rf__tuf_type t)
{
	switch (t) {
	case RF__TUF_ROOT:
		return RF_TUF_ROOT_MAX;
	case RF__TUF_TIMESTAMP:
		return RF_TUF_TIMESTAMP_MAX;
	case RF__TUF_SNAPSHOT:
		return RF_TUF_SNAPSHOT_MAX;
	case RF__TUF_TARGETS:
		return RF_TUF_TARGETS_MAX;
	}
	return RF_TUF_TIMESTAMP_MAX;
}

/* A cached file, parsed; NULL if absent or unusable (it is only a rollback reference). */
static struct rf__tuf_md *load_local(const struct rf_tuf_client *c, const char *role,
				     enum rf__tuf_type t)
{
	char path[4096];
	uint8_t *buf = NULL;
	size_t n = 0;
	struct rf__tuf_md *md = NULL;

	if (role_path(c, role, path, sizeof(path)) < 0 ||
	    rf_file_read(path, type_max(t), &buf, &n) < 0)
		return NULL;
	if (rf__tuf_md_parse(buf, n, t, &md, NULL) < 0)
		md = NULL;
	free(buf);
	return md;
}

/* Every change of the trusted state on disk goes through here first (the fault-injection hook
 * of struct rf_tuf_client_opts: crash tests stop the process at each step). */
static void durable_step(struct rf_tuf_client *c, const char *what)
{
	c->steps++;
	if (c->before_durable_step)
		c->before_durable_step(c->step_ud, c->steps, what);
}

static int persist(struct rf_tuf_client *c, const char *role, const struct rf__tuf_md *md,
		   struct rf_diag *d)
{
	char path[4096];
	int r = role_path(c, role, path, sizeof(path));

	if (r == 0) {
		durable_step(c, role);
		r = rf_file_write_atomic(path, md->raw, md->rawlen, 0644);
	}
	if (r < 0) {
		char rq[80];
		return rf_diag_report(d, r, "cannot store trusted %s metadata: %s",
				      rf_diag_quote(rq, sizeof(rq), role, strlen(role)),
				      rf_strerror(r));
	}
	return 0;
}

static void remove_local(struct rf_tuf_client *c, const char *role)
{
	char path[4096];

	if (role_path(c, role, path, sizeof(path)) < 0)
		return;
	durable_step(c, role);
	if (unlink(path) == 0) {
		int r = rf_dir_sync(c->mdir); /* best effort: the file is already gone */
		(void)r;
	}
}

static int fetch_role(const struct rf_tuf_client *c, const char *file, size_t max, uint8_t **ret,
		      size_t *ret_len, struct rf_diag *d)
{
	char url[8192];
	int r = join(url, sizeof(url), c->murl, file, NULL);

	struct rf_diag fd = {0};

	if (r < 0)
		return rf_diag_report(d, r, "%s: metadata URL too long", file);
	/* The download's own message, with the file it was for (an operator reading "HTTP 404"
	 * must know which of the repository's files is missing). */
	r = rf__tuf_fetch(url, max, ret, ret_len, d ? &fd : NULL);
	if (r < 0 && d)
		return rf_diag_report(d, r, "%s: %s", file[0] == '/' ? file + 1 : file,
				      fd.first[0] ? fd.first : rf_strerror(r));
	return r;
}

static int self_signed_root(const uint8_t *p, size_t n, struct rf__tuf_md **ret, struct rf_diag *d)
{
	struct rf__tuf_md *md = NULL;
	int r = rf__tuf_md_parse(p, n, RF__TUF_ROOT, &md, d);

	if (r == 0)
		r = rf__tuf_md_verify(&md->keys, &md->roles[RF__TUF_ROOT], md, "trusted root", d);
	if (r < 0) {
		rf__tuf_md_free(md);
		return r;
	}
	*ret = md;
	return 0;
}

int rf_tuf_client_init(const char *metadata_dir, const uint8_t *p, size_t n, struct rf_diag *d)
{
	struct rf__tuf_md *md = NULL;
	char path[4096];
	int r = self_signed_root(p, n, &md, d);

	rf__tuf_md_free(md);
	if (r < 0)
		return r;
	if (join(path, sizeof(path), metadata_dir, "/root.json", NULL) < 0)
		return -E2BIG;
	if ((r = rf_mkdir_p(metadata_dir, 0755)) < 0 ||
	    (r = rf_file_write_atomic(path, p, n, 0644)) < 0)
		return rf_diag_report(d, r, "cannot write %s: %s", path, rf_strerror(r));
	return 0;
}

static char *dup_slash(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(n + 2);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	if (n == 0 || s[n - 1] != '/')
		p[n++] = '/';
	p[n] = '\0';
	return p;
}

static void drop_session(struct rf_tuf_client *c)
{
	rf__tuf_md_free(c->timestamp);
	rf__tuf_md_free(c->snapshot);
	rf__tuf_md_free(c->targets);
	c->timestamp = c->snapshot = c->targets = NULL;
	for (size_t i = 0; i < c->ndels; i++) {
		free(c->dels[i].name);
		rf__tuf_md_free(c->dels[i].md);
	}
	free(c->dels);
	c->dels = NULL;
	c->ndels = 0;
	c->refreshed = false;
}

void rf_tuf_client_free(struct rf_tuf_client *c)
{
	if (!c)
		return;
	drop_session(c);
	rf__tuf_md_free(c->root);
	free(c->mdir);
	free(c->murl);
	free(c->turl);
	free(c);
}

int rf_tuf_client_new(const struct rf_tuf_client_opts *o, struct rf_tuf_client **ret,
		      struct rf_diag *d)
{
	struct rf_tuf_client *c;
	uint8_t *buf = NULL;
	size_t n = 0;
	char path[4096];
	int r;

	if (!o || !o->metadata_dir || !o->metadata_url)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->now = o->now;
	c->before_durable_step = o->before_durable_step;
	c->step_ud = o->step_ud;
	c->mdir = strdup(o->metadata_dir);
	c->murl = dup_slash(o->metadata_url);
	c->turl = o->target_base_url ? dup_slash(o->target_base_url) : NULL;
	if (!c->mdir || !c->murl || (o->target_base_url && !c->turl)) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = join(path, sizeof(path), c->mdir, "/root.json", NULL)) < 0)
		goto fail;
	if ((r = rf_file_read(path, RF_TUF_ROOT_MAX, &buf, &n)) < 0) {
		rf_diag_report(d, r, "no trusted root: %s: %s", path, rf_strerror(r));
		goto fail;
	}
	r = self_signed_root(buf, n, &c->root, d);
	free(buf);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	rf_tuf_client_free(c);
	return r;
}

static bool same_role_keys(const struct rf__tuf_role *a, const struct rf__tuf_role *b)
{
	if (a->threshold != b->threshold || a->nkeyids != b->nkeyids)
		return false;
	for (size_t i = 0; i < a->nkeyids; i++) {
		bool found = false;
		for (size_t j = 0; j < b->nkeyids && !found; j++)
			found = !strcmp(a->keyids[i], b->keyids[j]);
		if (!found)
			return false;
	}
	return true;
}

/* 5.3: walk the root chain N+1, N+2, ... until the server has no next version. */
static int update_root(struct rf_tuf_client *c, struct rf_diag *d)
{
	bool rotated = false;

	for (unsigned i = 0; i < RF_TUF_ROOT_ROTATIONS_MAX; i++) {
		uint64_t want = c->root->version + 1;
		char file[64], what[64];
		uint8_t *buf = NULL;
		size_t n = 0;
		struct rf__tuf_md *md = NULL;
		int r;

		snprintf(file, sizeof(file), "%llu.root.json", (unsigned long long)want);
		snprintf(what, sizeof(what), "root v%llu", (unsigned long long)want);
		r = fetch_role(c, file, RF_TUF_ROOT_MAX, &buf, &n, NULL);
		if (r == -ENOENT)
			break;
		if (r < 0)
			return rf_diag_report(d, r, "%s: %s", what, rf_strerror(r));
		r = rf__tuf_md_parse(buf, n, RF__TUF_ROOT, &md, d);
		free(buf);
		if (r < 0)
			return r;
		/* signed by a threshold of the trusted root, then of itself */
		r = rf__tuf_md_verify(&c->root->keys, &c->root->roles[RF__TUF_ROOT], md,
				      "new root (keys of the trusted root)", d);
		if (r == 0)
			r = rf__tuf_md_verify(&md->keys, &md->roles[RF__TUF_ROOT], md,
					      "new root (its own keys)", d);
		if (r == 0 && md->version != want)
			r = rf_diag_report(d, -ESTALE, "%s has version %llu", what,
					   (unsigned long long)md->version);
		if (r == 0)
			r = persist(c, "root", md, d);
		if (r < 0) {
			rf__tuf_md_free(md);
			return r;
		}
		rotated |= !same_role_keys(&c->root->roles[RF__TUF_TIMESTAMP],
					   &md->roles[RF__TUF_TIMESTAMP]) ||
			   !same_role_keys(&c->root->roles[RF__TUF_SNAPSHOT],
					   &md->roles[RF__TUF_SNAPSHOT]);
		rf__tuf_md_free(c->root);
		c->root = md;
	}
	if (rf__tuf_md_expired(c->root, client_now(c)))
		return rf_diag_report(d, -ETIMEDOUT, "root v%llu has expired (freeze attack?)",
				      (unsigned long long)c->root->version);
	if (rotated) {
		remove_local(c, "timestamp");
		remove_local(c, "snapshot");
	}
	return 0;
}

/* A cached copy of a top-level role that still verifies against the current root. */
static struct rf__tuf_md *trusted_local(const struct rf_tuf_client *c, const char *role,
					enum rf__tuf_type t, const struct rf__tuf_keyring *kr,
					const struct rf__tuf_role *ro)
{
	struct rf__tuf_md *md = load_local(c, role, t);

	if (md && rf__tuf_md_verify(kr, ro, md, role, NULL) < 0) {
		rf__tuf_md_free(md);
		md = NULL;
	}
	return md;
}

/* 5.4 */
static int update_timestamp(struct rf_tuf_client *c, struct rf_diag *d)
{
	const struct rf__tuf_role *ro = &c->root->roles[RF__TUF_TIMESTAMP];
	struct rf__tuf_md *old =
	    trusted_local(c, "timestamp", RF__TUF_TIMESTAMP, &c->root->keys, ro);
	struct rf__tuf_md *md = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	bool fresh = true;
	int r = fetch_role(c, "timestamp.json", RF_TUF_TIMESTAMP_MAX, &buf, &n, d);

	if (r == 0) {
		r = rf__tuf_md_parse(buf, n, RF__TUF_TIMESTAMP, &md, d);
		free(buf);
	}
	if (r == 0)
		r = rf__tuf_md_verify(&c->root->keys, ro, md, "timestamp", d);
	if (r == 0 && old) {
		uint64_t ov = rf__tuf_md_file(old, "snapshot.json")->version;
		uint64_t nv = rf__tuf_md_file(md, "snapshot.json")->version;
		if (md->version < old->version)
			r = rf_diag_report(
			    d, -ESTALE, "timestamp v%llu is older than trusted v%llu (rollback)",
			    (unsigned long long)md->version, (unsigned long long)old->version);
		else if (nv < ov)
			r = rf_diag_report(
			    d, -ESTALE,
			    "timestamp names snapshot v%llu, older than trusted v%llu "
			    "(rollback)",
			    (unsigned long long)nv, (unsigned long long)ov);
		else if (md->version == old->version) {
			/* nothing new: keep the trusted copy (python-tuf does the same) */
			rf__tuf_md_free(md);
			md = old;
			old = NULL;
			fresh = false;
		}
	}
	if (r == 0 && rf__tuf_md_expired(md, client_now(c)))
		r = rf_diag_report(d, -ETIMEDOUT, "timestamp v%llu has expired (freeze attack?)",
				   (unsigned long long)md->version);
	if (r == 0 && fresh)
		r = persist(c, "timestamp", md, d);
	rf__tuf_md_free(old);
	if (r < 0) {
		rf__tuf_md_free(md);
		return r;
	}
	c->timestamp = md;
	return 0;
}

/*
 * Load role (snapshot, targets or a delegated role) as the referring metadata's entry f says:
 * reuse the cached copy when it verifies and is that version, else download (consistent
 * snapshots: VERSION.NAME.json), check length and hashes, signatures by (kr, ro), version,
 * rollback against the cached copy, expiry; then store it.
 */
static int load_role(struct rf_tuf_client *c, const char *role, enum rf__tuf_type t,
		     const struct rf__tuf_file *f, const struct rf__tuf_keyring *kr,
		     const struct rf__tuf_role *ro, struct rf__tuf_md **ret, struct rf_diag *d)
{
	struct rf__tuf_md *old = trusted_local(c, role, t, kr, ro), *md = NULL;
	char q[3 * RF_TUF_NAME_MAX + 1], file[3 * RF_TUF_NAME_MAX + 64], what[RF_TUF_NAME_MAX + 32];
	/* the role's limit always holds; a length given by the referring metadata can lower it */
	size_t max = f->has_length && f->length < type_max(t) ? (size_t)f->length : type_max(t);
	size_t n = 0;
	int64_t now = client_now(c);
	uint8_t *buf = NULL;
	int r;

	{
		char rq[RF_TUF_NAME_MAX + 8];
		snprintf(what, sizeof(what), "%s metadata",
			 rf_diag_quote(rq, sizeof(rq), role, strlen(role)));
	}
	if (old && old->version == f->version && !rf__tuf_md_expired(old, now) &&
	    rf__tuf_file_check(f, old->raw, old->rawlen, what, NULL) == 0) {
		*ret = old;
		return 0;
	}
	if ((r = rf_tuf_quote_name(role, q, sizeof(q))) < 0)
		goto out;
	if (c->root->consistent_snapshot)
		snprintf(file, sizeof(file), "%llu.%s.json", (unsigned long long)f->version, q);
	else
		snprintf(file, sizeof(file), "%s.json", q);
	if ((r = fetch_role(c, file, max, &buf, &n, d)) < 0) {
		rf_diag_report(d, r, "%s: download failed", what);
		goto out;
	}
	r = rf__tuf_file_check(f, buf, n, what, d);
	if (r == 0)
		r = rf__tuf_md_parse(buf, n, t, &md, d);
	free(buf);
	if (r == 0)
		r = rf__tuf_md_verify(kr, ro, md, what, d);
	if (r == 0 && md->version != f->version)
		r = rf_diag_report(d, -ESTALE, "%s: version %llu, the referring metadata says %llu",
				   what, (unsigned long long)md->version,
				   (unsigned long long)f->version);
	/* Rollback references (5.4.3, 5.5.5): the trusted timestamp bounds the snapshot version,
	 * the trusted snapshot bounds every targets and delegated role version. A cached targets or
	 * delegated role file is only a cache, never a version floor (5.6 compares it with
	 * nothing): after a snapshot key rotation deleted the trusted snapshot (5.3.11), a
	 * fast-forwarded targets v100 must not refuse the repository's real v1. */
	if (r == 0 && t == RF__TUF_SNAPSHOT && old && md->version < old->version)
		r = rf_diag_report(d, -ESTALE, "%s: v%llu is older than trusted v%llu (rollback)",
				   what, (unsigned long long)md->version,
				   (unsigned long long)old->version);
	if (r == 0 && t == RF__TUF_SNAPSHOT && old)
		r = rf__tuf_snapshot_check(old, md, NULL, d);
	if (r == 0 && rf__tuf_md_expired(md, now))
		r = rf_diag_report(d, -ETIMEDOUT, "%s v%llu has expired (freeze attack?)", what,
				   (unsigned long long)md->version);
	if (r == 0)
		r = persist(c, role, md, d);
	if (r == 0) {
		*ret = md;
		md = NULL;
	}
out:
	rf__tuf_md_free(md);
	rf__tuf_md_free(old);
	return r;
}

int rf_tuf_client_refresh(struct rf_tuf_client *c, struct rf_diag *d)
{
	const struct rf__tuf_file *f;
	int r;

	drop_session(c);
	if ((r = update_root(c, d)) < 0 || (r = update_timestamp(c, d)) < 0)
		return r;
	f = rf__tuf_md_file(c->timestamp, "snapshot.json");
	r = load_role(c, "snapshot", RF__TUF_SNAPSHOT, f, &c->root->keys,
		      &c->root->roles[RF__TUF_SNAPSHOT], &c->snapshot, d);
	if (r < 0)
		return r;
	if (c->snapshot->version < f->version) /* cannot happen: load_role checks equality */
		return -ESTALE;
	f = rf__tuf_md_file(c->snapshot, "targets.json");
	if (!f)
		return rf_diag_report(d, -EBADMSG, "snapshot does not list targets.json");
	r = load_role(c, "targets", RF__TUF_TARGETS, f, &c->root->keys,
		      &c->root->roles[RF__TUF_TARGETS], &c->targets, d);
	if (r < 0)
		return r;
	c->refreshed = true;
	return 0;
}

/* A delegated role's metadata, loaded once per refresh. */
static int delegated(struct rf_tuf_client *c, const struct rf__tuf_md *parent,
		     const struct rf__tuf_role *ro, struct rf__tuf_md **ret, struct rf_diag *d)
{
	char file[RF_TUF_NAME_MAX + 8];
	const struct rf__tuf_file *f;
	struct loaded_role *nd;
	struct rf__tuf_md *md = NULL;
	int r;

	for (size_t i = 0; i < c->ndels; i++)
		if (!strcmp(c->dels[i].name, ro->name)) {
			/* Several roles may delegate the same name, each to its own keys: a copy
			 * loaded while following one delegator proves nothing for another, so it is
			 * verified against the delegation being followed, every time. */
			char rq[80], what[128];
			snprintf(what, sizeof(what), "'%s' metadata (delegated again)",
				 rf_diag_quote(rq, sizeof(rq), ro->name, strlen(ro->name)));
			if ((r = rf__tuf_md_verify(&parent->keys, ro, c->dels[i].md, what, d)) < 0)
				return r;
			*ret = c->dels[i].md;
			return 0;
		}
	snprintf(file, sizeof(file), "%s.json", ro->name);
	f = rf__tuf_md_file(c->snapshot, file);
	if (!f) {
		char q[80];
		return rf_diag_report(d, -ENOENT, "snapshot does not list delegated role '%s'",
				      rf_diag_quote(q, sizeof(q), ro->name, strlen(ro->name)));
	}
	if ((r = load_role(c, ro->name, RF__TUF_TARGETS, f, &parent->keys, ro, &md, d)) < 0)
		return r;
	nd = realloc(c->dels, (c->ndels + 1) * sizeof(*nd));
	if (!nd) {
		rf__tuf_md_free(md);
		return -ENOMEM;
	}
	c->dels = nd;
	c->dels[c->ndels].md = md;
	if (!(c->dels[c->ndels].name = strdup(ro->name))) {
		rf__tuf_md_free(md);
		return -ENOMEM;
	}
	c->ndels++;
	*ret = md;
	return 0;
}

void rf_tuf_target_free(struct rf_tuf_target *t)
{
	if (!t)
		return;
	free(t->path);
	free(t->custom_json);
	free(t->role);
	free(t->url_hash);
	free(t);
}

static int make_target(const struct rf__tuf_file *f, const char *role, struct rf_tuf_target **ret,
		       struct rf_diag *d)
{
	struct rf_tuf_target *t = calloc(1, sizeof(*t));
	int r = -ENOMEM;

	if (!t)
		return -ENOMEM;
	t->length = f->length;
	if (f->has_sha256)
		rf_hex_encode(f->sha256, 32, t->sha256);
	if (f->has_sha512)
		rf_hex_encode(f->sha512, 64, t->sha512);
	if (!(t->path = strdup(f->name)) || !(t->role = strdup(role)) ||
	    !(t->url_hash = strdup(f->first_hash_hex)))
		goto fail;
	if (f->custom) {
		size_t n;
		if ((r = rf__tuf_canonical(f->custom, &t->custom_json, &n, d)) < 0)
			goto fail;
	}
	*ret = t;
	return 0;
fail:
	rf_tuf_target_free(t);
	return r;
}

struct search_item {
	const struct rf__tuf_md *parent; /* NULL: the top-level targets role */
	const struct rf__tuf_role *role;
};

/* 5.7.2: pre-order depth-first search of the delegation graph, as python-tuf walks it. */
int rf_tuf_client_get_target(struct rf_tuf_client *c, const char *path, struct rf_tuf_target **ret,
			     struct rf_diag *d)
{
	struct search_item *stack = NULL;
	struct rf__tuf_role **bins = NULL; /* succinct bins met on the way (names owned here) */
	size_t nbins = 0;
	const char *visited[RF_TUF_DELEGATIONS_MAX];
	size_t nstack = 0, cap = 0, nvisited = 0;
	char q[128];
	int r = 0;

	if (!c->refreshed)
		return rf_diag_report(d, -EINVAL, "get_target before a successful refresh");
	if (!(stack = malloc(sizeof(*stack) * (cap = 16))))
		return -ENOMEM;
	stack[nstack++] = (struct search_item){NULL, NULL};
	while (nstack && nvisited < RF_TUF_DELEGATIONS_MAX) {
		struct search_item it = stack[--nstack];
		const char *name = it.role ? it.role->name : "targets";
		struct rf__tuf_md *md = c->targets;
		const struct rf__tuf_file *f;
		bool seen = false;
		size_t first;

		for (size_t i = 0; i < nvisited; i++)
			seen |= !strcmp(visited[i], name);
		if (seen)
			continue;
		if (it.role && (r = delegated(c, it.parent, it.role, &md, d)) < 0)
			goto out;
		if ((f = rf__tuf_md_file(md, path))) {
			r = make_target(f, name, ret, d);
			goto out;
		}
		visited[nvisited++] = name;
		/* the children that cover path, in order; a terminating one ends the search of
		 * everything still pending, and of its later siblings */
		first = nstack;
		for (size_t i = 0; i < md->ndels; i++) {
			const struct rf__tuf_role *ro = &md->dels[i];
			if (!rf__tuf_role_matches(ro, path))
				continue;
			if (nstack == cap) {
				struct search_item *ns = realloc(stack, sizeof(*ns) * cap * 2);
				if (!ns) {
					r = -ENOMEM;
					goto out;
				}
				stack = ns;
				cap *= 2;
			}
			stack[nstack++] = (struct search_item){md, ro};
			if (ro->terminating) {
				memmove(stack, stack + first, (nstack - first) * sizeof(*stack));
				nstack -= first;
				first = 0;
				break;
			}
		}
		if (md->succinct_bits) {
			/* one hash bin covers path; succinct roles are terminating */
			struct rf__tuf_role **nb = realloc(bins, (nbins + 1) * sizeof(*nb));
			struct rf__tuf_role *br = NULL;
			if (nb)
				bins = nb;
			if (!nb || !(br = calloc(1, sizeof(*br) + RF_TUF_NAME_MAX + 1))) {
				r = -ENOMEM;
				goto out;
			}
			bins[nbins++] = br;
			*br = md->succinct;
			br->name = (char *)(br + 1);
			if ((r = rf__tuf_succinct_bin(md, path, (char *)(br + 1),
						      RF_TUF_NAME_MAX + 1)) < 0)
				goto out;
			stack[0] = (struct search_item){md, br};
			nstack = 1;
			first = 0;
		}
		for (size_t i = first, j = nstack ? nstack - 1 : 0; i < j; i++, j--) {
			struct search_item tmp = stack[i];
			stack[i] = stack[j];
			stack[j] = tmp;
		}
	}
	r = rf_diag_report(d, -ENOENT, "no trusted metadata lists target '%s'%s",
			   rf_diag_quote(q, sizeof(q), path, strlen(path)),
			   nstack ? " (delegation search limit reached)" : "");
out:
	for (size_t i = 0; i < nbins; i++)
		free(bins[i]);
	free(bins);
	free(stack);
	return r;
}

int rf_tuf_client_download_target(struct rf_tuf_client *c, const struct rf_tuf_target *t,
				  const char *dir, char **ret_path, struct rf_diag *d)
{
	struct rf__tuf_file f = {.name = t->path, .has_length = true, .length = t->length};
	char q[3 * RF_TUF_NAME_MAX + 1], path[4096], url[8192];
	uint8_t *buf = NULL;
	size_t n = 0;
	int r;

	if (!c->turl)
		return rf_diag_report(d, -EINVAL, "no target base URL configured");
	if (t->length > RF_FILE_MAX)
		return rf_diag_report(d, -E2BIG, "target is %llu bytes, over the %u byte limit",
				      (unsigned long long)t->length, RF_FILE_MAX);
	f.has_sha256 = t->sha256[0] && rf_hex_decode(t->sha256, 64, f.sha256, 32) == 0;
	f.has_sha512 = t->sha512[0] && rf_hex_decode(t->sha512, 128, f.sha512, 64) == 0;
	if (!f.has_sha256 && !f.has_sha512)
		return rf_diag_report(d, -EBADMSG, "target has no sha256 or sha512 hash to check");
	if ((r = rf_tuf_quote_name(t->path, q, sizeof(q))) < 0 ||
	    (r = join(path, sizeof(path), dir, "/", q)) < 0)
		return rf_diag_report(d, r, "target path too long");

	/* a cached copy that still matches is kept */
	if (rf_file_read(path, (size_t)t->length, &buf, &n) == 0) {
		r = rf__tuf_file_check(&f, buf, n, "cached target", NULL);
		free(buf);
		buf = NULL;
		if (r == 0)
			goto done;
	}
	if (c->root->consistent_snapshot) {
		const char *slash = strrchr(t->path, '/');
		int dl = slash ? (int)(slash - t->path + 1) : 0;
		r = snprintf(url, sizeof(url), "%s%.*s%s.%s", c->turl, dl, t->path, t->url_hash,
			     t->path + dl) < (int)sizeof(url)
			? 0
			: -E2BIG;
	} else {
		r = join(url, sizeof(url), c->turl, t->path, NULL);
	}
	if (r < 0)
		return rf_diag_report(d, r, "target URL too long");
	if ((r = rf__tuf_fetch(url, (size_t)t->length, &buf, &n, d)) < 0)
		return r;
	r = rf__tuf_file_check(&f, buf, n, "target", d);
	if (r == 0 && (r = rf_mkdir_p(dir, 0755)) == 0) {
		durable_step(c, "target");
		r = rf_file_write_atomic(path, buf, n, 0644);
	}
	free(buf);
	if (r < 0)
		return r == -EBADMSG
			   ? r
			   : rf_diag_report(d, r, "cannot store target: %s", rf_strerror(r));
done:
	if (ret_path && !(*ret_path = strdup(path)))
		return -ENOMEM;
	return 0;
}
