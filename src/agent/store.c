/*
 * The agent's durable store (see store.h for the layout and invariants, docs/durability.md for
 * why it is files + rename rather than SQLite).
 *
 * Write order is what makes it crash-safe: a pack file is complete and durable (temp, fsync,
 * rename, fsync of packs/) before any state.json that names it is renamed into place, and a
 * pack is unlinked only after a durable state.json stopped naming it. state.json itself is
 * replaced by rename, so a reader sees the old or the new one, never a mix. Every mutating call
 * goes through the ops table, whose default is plain POSIX.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/store.h"
#include "common/util.h"
#include "ringfence/limits.h"

#define NAMES_MAX 8 /* target names kept: trial, LKG and a candidate or two */

struct name {
	uint8_t hash[RF_GUARD_HASH_LEN];
	char target[RF_STORE_TARGET_MAX + 1];
};

struct rf_store {
	char *dir;
	const struct rf_store_ops *ops;
	int lockfd;
	bool readonly;
	struct rf_guard_state g;
	char device_id[RF_STORE_TARGET_MAX + 1];
	char ring[RF_STORE_TARGET_MAX + 1];
	struct name names[NAMES_MAX];
	unsigned nnames;
	struct rf_store_quarantine q[RF_AGENT_QUARANTINE_MAX];
	size_t nq;
	struct rf_store_report out[RF_AGENT_OUTBOX_MAX];
	size_t nout;
	uint64_t next_report;
	uint64_t events, alerts;
	uint64_t dropped; /* events the sources could not deliver (absent in older stores: 0) */
	uint64_t corr_dropped; /* correlation state dropped at its caps (absent: 0) */
	uint64_t transit;      /* releases whose delivery failed, each attempt (absent: 0) */
};

/* ---- POSIX ops -------------------------------------------------------------------------- */

static int px_open(void *ud, const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags | O_CLOEXEC, mode);
	return fd < 0 ? -errno : fd;
}

static int px_write(void *ud, int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int px_fsync(void *ud, int fd)
{
	return fsync(fd) < 0 ? -errno : 0;
}

static int px_close(void *ud, int fd)
{
	return close(fd) < 0 ? -errno : 0;
}

static int px_rename(void *ud, const char *from, const char *to)
{
	return rename(from, to) < 0 ? -errno : 0;
}

static int px_unlink(void *ud, const char *path)
{
	return unlink(path) < 0 ? -errno : 0;
}

static int px_mkdir(void *ud, const char *path, mode_t mode)
{
	return mkdir(path, mode) < 0 ? -errno : 0;
}

static int px_fsync_dir(void *ud, const char *path)
{
	return rf_dir_sync(path);
}

static const struct rf_store_ops posix_ops = {
    .open = px_open,
    .write = px_write,
    .fsync = px_fsync,
    .close = px_close,
    .rename = px_rename,
    .unlink = px_unlink,
    .mkdir = px_mkdir,
    .fsync_dir = px_fsync_dir,
};

const struct rf_store_ops *rf_store_ops_posix(void)
{
	return &posix_ops;
}

/* ---- paths and durable writes ------------------------------------------------------------ */

static int path_of(const struct rf_store *st, const char *rel, char out[PATH_MAX])
{
	int n = snprintf(out, PATH_MAX, "%s/%s", st->dir, rel);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static void pack_rel(const uint8_t hash[RF_GUARD_HASH_LEN], char out[80])
{
	char hex[2 * RF_GUARD_HASH_LEN + 1];

	rf_hex_encode(hash, RF_GUARD_HASH_LEN, hex);
	snprintf(out, 80, "packs/%s.rfp", hex);
}

/* rel (in subdir "" or "packs") := data, atomically and durably. */
static int write_atomic(struct rf_store *st, const char *rel, const char *subdir, const void *data,
			size_t len, mode_t mode)
{
	const struct rf_store_ops *o = st->ops;
	char path[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
	int fd, r, r2;

	if ((r = path_of(st, rel, path)) < 0)
		return r;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if ((r = path_of(st, subdir, dir)) < 0)
		return r;
	fd = o->open(o->userdata, tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return fd;
	r = o->write(o->userdata, fd, data, len);
	if (r == 0)
		r = o->fsync(o->userdata, fd);
	r2 = o->close(o->userdata, fd);
	if (r == 0)
		r = r2;
	if (r == 0)
		r = o->rename(o->userdata, tmp, path);
	if (r < 0) {
		o->unlink(o->userdata, tmp);
		return r;
	}
	return o->fsync_dir(o->userdata, dir);
}

/* ---- JSON state ------------------------------------------------------------------------- */

static json_t *hash_json(const uint8_t *h, bool has)
{
	char hex[2 * RF_GUARD_HASH_LEN + 1];

	if (!has)
		return json_null();
	rf_hex_encode(h, RF_GUARD_HASH_LEN, hex);
	return json_string(hex);
}

static json_t *state_to_json(const struct rf_store *st)
{
	const struct rf_guard_state *g = &st->g;
	json_t *guard, *qfp, *names, *q, *out, *root;
	char hex[2 * RF_GUARD_HASH_LEN + 1];

	qfp = json_array();
	for (unsigned i = 0; i < g->nquarantine; i++) {
		char fp[17];
		snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)g->quarantine[i]);
		json_array_append_new(qfp, json_string(fp));
	}
	guard = json_pack("{s:s, s:o, s:i, s:o, s:i, s:b, s:I, s:I, s:o, s:i}", "mode",
			  rf_guard_mode_name(g->mode), "trial", hash_json(g->trial, g->has_trial),
			  "trial_attempts", (int)g->trial_attempts, "last_good",
			  hash_json(g->lkg, g->has_lkg), "last_good_attempts", (int)g->lkg_attempts,
			  "clean", (int)g->clean, "crashes", (json_int_t)g->crashes, "rollbacks",
			  (json_int_t)g->rollbacks, "fingerprints", qfp, "fingerprint_next",
			  (int)g->qnext);
	names = json_object();
	for (unsigned i = 0; i < st->nnames; i++) {
		rf_hex_encode(st->names[i].hash, RF_GUARD_HASH_LEN, hex);
		json_object_set_new(names, hex, json_string(st->names[i].target));
	}
	q = json_array();
	for (size_t i = 0; i < st->nq; i++) {
		rf_hex_encode(st->q[i].hash, RF_GUARD_HASH_LEN, hex);
		json_array_append_new(q, json_pack("{s:s, s:s, s:I}", "sha256", hex, "reason",
						   st->q[i].reason, "time",
						   (json_int_t)st->q[i].time));
	}
	out = json_array();
	for (size_t i = 0; i < st->nout; i++) {
		const struct rf_store_report *r = &st->out[i];
		json_t *x = json_pack("{s:I, s:s, s:o, s:s, s:s, s:I}", "id", (json_int_t)r->id,
				      "event", r->event, "sha256", hash_json(r->hash, r->has_hash),
				      "target", r->target, "detail", r->detail, "time",
				      (json_int_t)r->time);
		if (x && r->cause[0])
			json_object_set_new(x, "cause", json_string(r->cause));
		json_array_append_new(out, x);
	}
	root = json_pack("{s:i, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:I}", "format", 1, "device_id",
			 st->device_id, "guard", guard, "names", names, "quarantine", q, "outbox",
			 out, "next_report", (json_int_t)st->next_report, "events",
			 (json_int_t)st->events, "alerts", (json_int_t)st->alerts);
	if (root)
		json_object_set_new(root, "ring", json_string(st->ring));
	if (root && st->dropped)
		json_object_set_new(root, "events_dropped",
				    json_integer((json_int_t)(st->dropped > INT64_MAX ? INT64_MAX
										: st->dropped)));
	if (root && st->corr_dropped)
		json_object_set_new(
		    root, "correlation_dropped",
		    json_integer((json_int_t)(st->corr_dropped > INT64_MAX ? INT64_MAX
									   : st->corr_dropped)));
	if (root && st->transit)
		json_object_set_new(
		    root, "transit_failures",
		    json_integer((json_int_t)(st->transit > INT64_MAX ? INT64_MAX : st->transit)));
	return root;
}

static int bad(struct rf_diag *d, const char *what)
{
	return rf_diag_report(d, -EBADMSG, "state.json: %s", what);
}

static int get_hash(json_t *v, uint8_t out[RF_GUARD_HASH_LEN], bool *has)
{
	if (json_is_null(v) || !v) {
		*has = false;
		memset(out, 0, RF_GUARD_HASH_LEN);
		return 0;
	}
	if (!json_is_string(v))
		return -EBADMSG;
	*has = true;
	return rf_hex_decode(json_string_value(v), json_string_length(v), out, RF_GUARD_HASH_LEN);
}

static int get_uint(json_t *o, const char *key, uint64_t max, uint64_t *ret)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return -EBADMSG;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

static int copy_str(json_t *v, char *out, size_t outsz)
{
	if (!json_is_string(v) || json_string_length(v) >= outsz ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -EBADMSG;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int parse_guard(json_t *j, struct rf_guard_state *g, struct rf_diag *d)
{
	const char *mode;
	json_t *fp;
	uint64_t v;
	bool has;
	size_t i;
	json_t *e;

	rf_guard_init(g);
	if (!json_is_object(j) || !json_is_string(json_object_get(j, "mode")))
		return bad(d, "'guard' must be an object with a 'mode'");
	mode = json_string_value(json_object_get(j, "mode"));
	for (v = 0; v <= RF_GUARD_MODE_SAFE; v++)
		if (strcmp(mode, rf_guard_mode_name((enum rf_guard_mode)v)) == 0)
			break;
	if (v > RF_GUARD_MODE_SAFE)
		return bad(d, "guard.mode unknown");
	g->mode = (uint8_t)v;
	if (get_hash(json_object_get(j, "trial"), g->trial, &has) < 0)
		return bad(d, "guard.trial must be null or 64 hex digits");
	g->has_trial = has;
	if (get_hash(json_object_get(j, "last_good"), g->lkg, &has) < 0)
		return bad(d, "guard.last_good must be null or 64 hex digits");
	g->has_lkg = has;
	if (get_uint(j, "trial_attempts", 255, &v) < 0)
		return bad(d, "guard.trial_attempts must be 0..255");
	g->trial_attempts = (uint8_t)v;
	if (get_uint(j, "last_good_attempts", 255, &v) < 0)
		return bad(d, "guard.last_good_attempts must be 0..255");
	g->lkg_attempts = (uint8_t)v;
	if (!json_is_boolean(json_object_get(j, "clean")))
		return bad(d, "guard.clean must be a boolean");
	g->clean = json_is_true(json_object_get(j, "clean"));
	if (get_uint(j, "crashes", UINT32_MAX, &v) < 0)
		return bad(d, "guard.crashes must be 0..2^32-1");
	g->crashes = (uint32_t)v;
	if (get_uint(j, "rollbacks", UINT32_MAX, &v) < 0)
		return bad(d, "guard.rollbacks must be 0..2^32-1");
	g->rollbacks = (uint32_t)v;
	fp = json_object_get(j, "fingerprints");
	if (!json_is_array(fp) || json_array_size(fp) > RF_GUARD_QUARANTINE_MAX)
		return bad(
		    d, "guard.fingerprints must be an array of at most RF_GUARD_QUARANTINE_MAX");
	json_array_foreach(fp, i, e)
	{
		uint8_t b[8];
		if (!json_is_string(e) ||
		    rf_hex_decode(json_string_value(e), json_string_length(e), b, 8) < 0)
			return bad(d, "guard.fingerprints entries must be 16 hex digits");
		uint64_t fpv = 0;
		for (unsigned k = 0; k < 8; k++)
			fpv = fpv << 8 | b[k];
		g->quarantine[i] = fpv;
	}
	g->nquarantine = (uint8_t)json_array_size(fp);
	if (get_uint(j, "fingerprint_next", RF_GUARD_QUARANTINE_MAX - 1, &v) < 0)
		return bad(d, "guard.fingerprint_next out of range");
	g->qnext = (uint8_t)v;
	return 0;
}

static int parse_state(struct rf_store *st, const uint8_t *p, size_t n, struct rf_diag *d)
{
	json_error_t jerr;
	json_t *root, *v, *e;
	size_t i;
	const char *key;
	int r = 0;
	uint64_t u;
	struct rf_guard_config cfg;

	root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return rf_diag_report(d, -EBADMSG, "state.json: line %d: %s", jerr.line, jerr.text);
	if (!json_is_object(root) || get_uint(root, "format", 1, &u) < 0 || u != 1) {
		r = bad(d, "not a format 1 state object");
		goto out;
	}
	if (copy_str(json_object_get(root, "device_id"), st->device_id, sizeof(st->device_id)) <
	    0) {
		r = bad(d, "device_id must be a string of at most 128 bytes");
		goto out;
	}
	/* "ring" came after format 1 was first written: absent means unknown */
	if (json_object_get(root, "ring") &&
	    copy_str(json_object_get(root, "ring"), st->ring, sizeof(st->ring)) < 0) {
		r = bad(d, "ring must be a string of at most 128 bytes");
		goto out;
	}
	if ((r = parse_guard(json_object_get(root, "guard"), &st->g, d)) < 0)
		goto out;
	rf_guard_config_default(&cfg);
	if (!rf_guard_state_valid(&cfg, &st->g)) {
		r = bad(d, "guard state is inconsistent");
		goto out;
	}
	v = json_object_get(root, "names");
	if (!json_is_object(v) || json_object_size(v) > NAMES_MAX) {
		r = bad(d, "names must be an object of at most 8 members");
		goto out;
	}
	st->nnames = 0;
	json_object_foreach(v, key, e)
	{
		struct name *nm = &st->names[st->nnames];
		if (rf_hex_decode(key, strlen(key), nm->hash, RF_GUARD_HASH_LEN) < 0 ||
		    copy_str(e, nm->target, sizeof(nm->target)) < 0) {
			r = bad(d, "names: bad entry");
			goto out;
		}
		st->nnames++;
	}
	v = json_object_get(root, "quarantine");
	if (!json_is_array(v) || json_array_size(v) > RF_AGENT_QUARANTINE_MAX) {
		r = bad(d, "quarantine must be an array of at most RF_AGENT_QUARANTINE_MAX");
		goto out;
	}
	st->nq = 0;
	json_array_foreach(v, i, e)
	{
		struct rf_store_quarantine *q = &st->q[st->nq];
		bool has;
		json_int_t t;
		if (!json_is_object(e) ||
		    get_hash(json_object_get(e, "sha256"), q->hash, &has) < 0 || !has ||
		    copy_str(json_object_get(e, "reason"), q->reason, sizeof(q->reason)) < 0 ||
		    !json_is_integer(json_object_get(e, "time"))) {
			r = bad(d, "quarantine: bad entry");
			goto out;
		}
		t = json_integer_value(json_object_get(e, "time"));
		q->time = (int64_t)t;
		st->nq++;
	}
	v = json_object_get(root, "outbox");
	if (!json_is_array(v) || json_array_size(v) > RF_AGENT_OUTBOX_MAX) {
		r = bad(d, "outbox must be an array of at most RF_AGENT_OUTBOX_MAX");
		goto out;
	}
	st->nout = 0;
	json_array_foreach(v, i, e)
	{
		struct rf_store_report *rep = &st->out[st->nout];
		if (!json_is_object(e) || get_uint(e, "id", INT64_MAX, &rep->id) < 0 ||
		    copy_str(json_object_get(e, "event"), rep->event, sizeof(rep->event)) < 0 ||
		    get_hash(json_object_get(e, "sha256"), rep->hash, &rep->has_hash) < 0 ||
		    copy_str(json_object_get(e, "target"), rep->target, sizeof(rep->target)) < 0 ||
		    copy_str(json_object_get(e, "detail"), rep->detail, sizeof(rep->detail)) < 0 ||
		    !json_is_integer(json_object_get(e, "time"))) {
			r = bad(d, "outbox: bad entry");
			goto out;
		}
		rep->time = (int64_t)json_integer_value(json_object_get(e, "time"));
		rep->cause[0] = 0;
		if (json_object_get(e, "cause") &&
		    copy_str(json_object_get(e, "cause"), rep->cause, sizeof(rep->cause)) < 0) {
			r = bad(d, "outbox: bad cause");
			goto out;
		}
		st->nout++;
	}
	if (get_uint(root, "next_report", INT64_MAX, &st->next_report) < 0 ||
	    get_uint(root, "events", INT64_MAX, &st->events) < 0 ||
	    get_uint(root, "alerts", INT64_MAX, &st->alerts) < 0) {
		r = bad(d, "next_report, events and alerts must be non-negative integers");
		goto out;
	}
	if (json_object_get(root, "events_dropped") &&
	    get_uint(root, "events_dropped", INT64_MAX, &st->dropped) < 0) {
		r = bad(d, "events_dropped must be a non-negative integer");
		goto out;
	}
	if (json_object_get(root, "correlation_dropped") &&
	    get_uint(root, "correlation_dropped", INT64_MAX, &st->corr_dropped) < 0) {
		r = bad(d, "correlation_dropped must be a non-negative integer");
		goto out;
	}
	if (json_object_get(root, "transit_failures") &&
	    get_uint(root, "transit_failures", INT64_MAX, &st->transit) < 0) {
		r = bad(d, "transit_failures must be a non-negative integer");
		goto out;
	}
out:
	json_decref(root);
	return r;
}

static void reset_memory(struct rf_store *st)
{
	rf_guard_init(&st->g);
	st->device_id[0] = 0;
	st->ring[0] = 0;
	st->nnames = 0;
	st->nq = 0;
	st->nout = 0;
	st->next_report = 1;
	st->events = st->alerts = 0;
	st->dropped = 0;
	st->corr_dropped = 0;
	st->transit = 0;
}

/* ---- open / close ----------------------------------------------------------------------- */

static const char *kind_name(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISREG(m))
		return "a file";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "a device";
	return "not a file";
}

/*
 * rel ("" for the store directory itself) must be absent or of the kind the store needs
 * (S_IFDIR or S_IFREG, symbolic links followed). Anything else is named with its path and what
 * it is, and nothing is changed: the operator moves it away, and the last known good recorded
 * in state.json stays (issue 16: "unknown error", and a packs/ that was a file cost the LKG).
 * 0, -ENOTDIR (want a directory), -EISDIR or -EINVAL (want a file), or the stat() error.
 */
static int check_kind(const struct rf_store *st, const char *rel, mode_t want, struct rf_diag *d)
{
	char path[PATH_MAX];
	struct stat sb;
	int r;

	if ((r = path_of(st, rel, path)) < 0)
		return rf_diag_report(d, r, "%s/%s: path too long", st->dir, rel);
	if (!*rel)
		snprintf(path, sizeof(path), "%s", st->dir);
	if (stat(path, &sb) < 0) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		return rf_diag_report(d, r, "%s: cannot inspect: %s", path, strerror(-r));
	}
	if ((sb.st_mode & S_IFMT) == want)
		return 0;
	r = want == S_IFDIR ? -ENOTDIR : S_ISDIR(sb.st_mode) ? -EISDIR : -EINVAL;
	return rf_diag_report(
	    d, r, "%s is %s, not %s: move it out of the way (nothing in the store was changed%s)",
	    path, kind_name(sb.st_mode), want == S_IFDIR ? "a directory" : "a file",
	    *rel && strcmp(rel, "state.json") != 0
		? "; the last known good recorded in state.json is kept"
		: "");
}

/* Everything the store opens is of the right kind, before anything is created or changed. */
static int check_layout(const struct rf_store *st, struct rf_diag *d)
{
	static const struct {
		const char *rel;
		mode_t want;
	} t[] = {{"", S_IFDIR},		{"lock", S_IFREG}, {"state.json", S_IFREG},
		 {"packs", S_IFDIR},	{"tuf", S_IFDIR},  {"credential", S_IFREG},
		 {"downloads", S_IFDIR}};
	int r;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if ((r = check_kind(st, t[i].rel, t[i].want, d)) < 0)
			return r;
	return 0;
}

static void remove_temps(struct rf_store *st, const char *sub)
{
	char path[PATH_MAX], f[PATH_MAX];
	DIR *dh;
	struct dirent *de;

	if (path_of(st, sub, path) < 0 || !(dh = opendir(path)))
		return;
	while ((de = readdir(dh))) {
		size_t l = strlen(de->d_name);
		if (l > 4 && strcmp(de->d_name + l - 4, ".tmp") == 0 &&
		    snprintf(f, sizeof(f), "%s/%s", path, de->d_name) < (int)sizeof(f))
			st->ops->unlink(st->ops->userdata, f);
	}
	closedir(dh);
}

static int ensure_dir(struct rf_store *st, const char *sub, const char *parent)
{
	char path[PATH_MAX], ppath[PATH_MAX];
	int r;

	if ((r = path_of(st, sub, path)) < 0 || (r = path_of(st, parent, ppath)) < 0)
		return r;
	r = st->ops->mkdir(st->ops->userdata, path, 0700);
	if (r == -EEXIST)
		return 0;
	if (r < 0)
		return r;
	return st->ops->fsync_dir(st->ops->userdata, ppath);
}

static int store_alloc(const char *dir, const struct rf_store_ops *ops, struct rf_store **ret)
{
	struct rf_store *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->dir = strdup(dir);
	if (!st->dir) {
		free(st);
		return -ENOMEM;
	}
	st->ops = ops ? ops : &posix_ops;
	st->lockfd = -1;
	reset_memory(st);
	*ret = st;
	return 0;
}

static int read_state(struct rf_store *st, struct rf_diag *d)
{
	char path[PATH_MAX];
	uint8_t *buf = NULL;
	size_t n = 0;
	int r;

	if ((r = path_of(st, "state.json", path)) < 0)
		return r;
	r = rf_file_read(path, RF_AGENT_STATE_MAX, &buf, &n);
	if (r == -ENOENT)
		return 0; /* a new store */
	if (r < 0)
		return rf_diag_report(d, r, "state.json: %s", rf_strerror(r));
	r = parse_state(st, buf, n, d);
	free(buf);
	if (r < 0)
		reset_memory(st);
	return r;
}

static int open_common(const char *dir, const struct rf_store_ops *ops, bool reset,
		       struct rf_store **ret, struct rf_diag *d)
{
	struct rf_store *st;
	char path[PATH_MAX], bad_path[PATH_MAX];
	int r;

	if (!dir || !*dir || !ret)
		return -EINVAL;
	if ((r = store_alloc(dir, ops, &st)) < 0)
		return r;
	if ((r = check_layout(st, d)) < 0)
		goto fail;
	r = rf_mkdir_p(dir, 0700);
	if (r < 0) {
		rf_diag_report(d, r, "%s: cannot create: %s", dir, rf_strerror(r));
		goto fail;
	}
	if ((r = path_of(st, "lock", path)) < 0)
		goto fail;
	st->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lockfd < 0) {
		r = -errno;
		rf_diag_report(d, r, "%s: %s", path, rf_strerror(r));
		goto fail;
	}
	if (flock(st->lockfd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		rf_diag_report(d, r, "%s: store is in use by another process", dir);
		goto fail;
	}
	if ((r = ensure_dir(st, "packs", "")) < 0 || (r = ensure_dir(st, "tuf", "")) < 0) {
		rf_diag_report(d, r, "%s: cannot create packs/ or tuf/: %s", dir, rf_strerror(r));
		goto fail;
	}
	remove_temps(st, "");
	remove_temps(st, "packs");
	r = read_state(st, d);
	if (r == -EBADMSG && reset) {
		if ((r = path_of(st, "state.json", path)) < 0 ||
		    (r = path_of(st, "state.json.bad", bad_path)) < 0)
			goto fail;
		if ((r = st->ops->rename(st->ops->userdata, path, bad_path)) < 0)
			goto fail;
		r = rf_store_commit(st);
	}
	if (r < 0)
		goto fail;
	*ret = st;
	return 0;
fail:
	rf_store_free(st);
	return r;
}

int rf_store_open(const char *dir, const struct rf_store_ops *ops, struct rf_store **ret,
		  struct rf_diag *d)
{
	return open_common(dir, ops, false, ret, d);
}

int rf_store_open_reset(const char *dir, const struct rf_store_ops *ops, struct rf_store **ret,
			struct rf_diag *d)
{
	return open_common(dir, ops, true, ret, d);
}

int rf_store_open_readonly(const char *dir, struct rf_store **ret, struct rf_diag *d)
{
	struct rf_store *st;
	struct stat sb;
	int r;

	if (!dir || !*dir || !ret)
		return -EINVAL;
	if (stat(dir, &sb) < 0)
		return rf_diag_report(d, -errno, "%s: %s", dir, rf_strerror(-errno));
	if ((r = store_alloc(dir, NULL, &st)) < 0)
		return r;
	st->readonly = true;
	r = check_kind(st, "state.json", S_IFREG, d);
	if (r == 0)
		r = read_state(st, d);
	if (r < 0) {
		rf_store_free(st);
		return r;
	}
	*ret = st;
	return 0;
}

void rf_store_free(struct rf_store *st)
{
	if (!st)
		return;
	if (st->lockfd >= 0)
		close(st->lockfd);
	free(st->dir);
	free(st);
}

const char *rf_store_dir(const struct rf_store *st)
{
	return st->dir;
}

/* ---- guard, names, packs ---------------------------------------------------------------- */

const struct rf_guard_state *rf_store_guard(const struct rf_store *st)
{
	return &st->g;
}

int rf_store_set_guard(struct rf_store *st, const struct rf_guard_state *g)
{
	struct rf_guard_config cfg;

	rf_guard_config_default(&cfg);
	if (!rf_guard_state_valid(&cfg, g))
		return -EINVAL;
	st->g = *g;
	return 0;
}

static bool referenced(const struct rf_store *st, const uint8_t *h)
{
	return (st->g.has_trial && memcmp(st->g.trial, h, RF_GUARD_HASH_LEN) == 0) ||
	       (st->g.has_lkg && memcmp(st->g.lkg, h, RF_GUARD_HASH_LEN) == 0);
}

static void name_set(struct rf_store *st, const uint8_t *h, const char *target)
{
	unsigned i;

	for (i = 0; i < st->nnames; i++)
		if (memcmp(st->names[i].hash, h, RF_GUARD_HASH_LEN) == 0)
			break;
	if (i == st->nnames) {
		if (st->nnames == NAMES_MAX) { /* drop an unreferenced name */
			for (i = 0; i < st->nnames && referenced(st, st->names[i].hash); i++)
				;
			if (i == st->nnames)
				return;
		} else {
			st->nnames++;
		}
	}
	memcpy(st->names[i].hash, h, RF_GUARD_HASH_LEN);
	snprintf(st->names[i].target, sizeof(st->names[i].target), "%s", target);
}

const char *rf_store_pack_name(const struct rf_store *st, const uint8_t hash[RF_GUARD_HASH_LEN])
{
	for (unsigned i = 0; i < st->nnames; i++)
		if (memcmp(st->names[i].hash, hash, RF_GUARD_HASH_LEN) == 0)
			return st->names[i].target;
	return "";
}

int rf_store_pack_read(const struct rf_store *st, const uint8_t hash[RF_GUARD_HASH_LEN],
		       uint8_t **ret, size_t *ret_len)
{
	char rel[80], path[PATH_MAX];
	uint8_t *buf, got[RF_GUARD_HASH_LEN];
	size_t n;
	int r;

	pack_rel(hash, rel);
	if ((r = path_of(st, rel, path)) < 0)
		return r;
	if ((r = rf_file_read(path, RF_FILE_MAX, &buf, &n)) < 0)
		return r;
	rf_sha256(buf, n, got);
	if (memcmp(got, hash, RF_GUARD_HASH_LEN) != 0) {
		free(buf);
		return -EBADMSG;
	}
	*ret = buf;
	*ret_len = n;
	return 0;
}

bool rf_store_pack_exists(const struct rf_store *st, const uint8_t hash[RF_GUARD_HASH_LEN])
{
	uint8_t *buf;
	size_t n;

	if (rf_store_pack_read(st, hash, &buf, &n) < 0)
		return false;
	free(buf);
	return true;
}

int rf_store_pack_put(struct rf_store *st, const uint8_t *p, size_t n, const char *target,
		      uint8_t ret_hash[RF_GUARD_HASH_LEN])
{
	uint8_t h[RF_GUARD_HASH_LEN];
	char rel[80];
	int r;

	if (st->readonly || !p || !target || strlen(target) > RF_STORE_TARGET_MAX)
		return -EINVAL;
	if (n > RF_FILE_MAX)
		return -E2BIG;
	rf_sha256(p, n, h);
	if (!rf_store_pack_exists(st, h)) {
		pack_rel(h, rel);
		if ((r = write_atomic(st, rel, "packs", p, n, 0600)) < 0)
			return r;
	}
	name_set(st, h, target);
	if (ret_hash)
		memcpy(ret_hash, h, RF_GUARD_HASH_LEN);
	return 0;
}

/* ---- quarantine, outbox, identity, counters ---------------------------------------------- */

bool rf_store_is_quarantined(const struct rf_store *st, const uint8_t hash[RF_GUARD_HASH_LEN])
{
	for (size_t i = 0; i < st->nq; i++)
		if (memcmp(st->q[i].hash, hash, RF_GUARD_HASH_LEN) == 0)
			return true;
	return false;
}

int rf_store_quarantine_add(struct rf_store *st, const uint8_t hash[RF_GUARD_HASH_LEN],
			    const char *reason, int64_t time)
{
	struct rf_store_quarantine *q;

	if (!reason || strlen(reason) >= sizeof(q->reason))
		return -EINVAL;
	if (rf_store_is_quarantined(st, hash))
		return 0;
	if (st->nq == RF_AGENT_QUARANTINE_MAX) {
		memmove(&st->q[0], &st->q[1], (st->nq - 1) * sizeof(st->q[0]));
		st->nq--;
	}
	q = &st->q[st->nq++];
	memcpy(q->hash, hash, RF_GUARD_HASH_LEN);
	snprintf(q->reason, sizeof(q->reason), "%s", reason);
	q->time = time;
	return 0;
}

size_t rf_store_quarantine_count(const struct rf_store *st)
{
	return st->nq;
}

const struct rf_store_quarantine *rf_store_quarantine_at(const struct rf_store *st, size_t i)
{
	return i < st->nq ? &st->q[i] : NULL;
}

int rf_store_report_cause(struct rf_store *st, uint64_t id, const char *cause)
{
	if (!cause || strlen(cause) >= sizeof(st->out[0].cause))
		return -EINVAL;
	for (size_t i = 0; i < st->nout; i++)
		if (st->out[i].id == id) {
			snprintf(st->out[i].cause, sizeof(st->out[i].cause), "%s", cause);
			return 0;
		}
	return -ENOENT;
}

int rf_store_report_add(struct rf_store *st, const char *event, const uint8_t *hash,
			const char *target, const char *detail, int64_t time, uint64_t *ret_id)
{
	struct rf_store_report *r;

	if (!event || strlen(event) >= sizeof(r->event) ||
	    (target && strlen(target) > RF_STORE_TARGET_MAX))
		return -EINVAL;
	if (st->nout == RF_AGENT_OUTBOX_MAX) {
		memmove(&st->out[0], &st->out[1], (st->nout - 1) * sizeof(st->out[0]));
		st->nout--;
	}
	r = &st->out[st->nout++];
	memset(r, 0, sizeof(*r));
	r->id = st->next_report++;
	snprintf(r->event, sizeof(r->event), "%s", event);
	if (hash) {
		memcpy(r->hash, hash, RF_GUARD_HASH_LEN);
		r->has_hash = true;
	}
	snprintf(r->target, sizeof(r->target), "%s", target ? target : "");
	snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "");
	r->time = time;
	if (ret_id)
		*ret_id = r->id;
	return 0;
}

int rf_store_report_done(struct rf_store *st, uint64_t id)
{
	for (size_t i = 0; i < st->nout; i++) {
		if (st->out[i].id == id) {
			memmove(&st->out[i], &st->out[i + 1],
				(st->nout - i - 1) * sizeof(st->out[0]));
			st->nout--;
			return 0;
		}
	}
	return -ENOENT;
}

size_t rf_store_report_count(const struct rf_store *st)
{
	return st->nout;
}

const struct rf_store_report *rf_store_report_at(const struct rf_store *st, size_t i)
{
	return i < st->nout ? &st->out[i] : NULL;
}

const char *rf_store_device_id(const struct rf_store *st)
{
	return st->device_id;
}

int rf_store_set_device_id(struct rf_store *st, const char *id)
{
	if (!id || strlen(id) > RF_STORE_TARGET_MAX)
		return -EINVAL;
	snprintf(st->device_id, sizeof(st->device_id), "%s", id);
	return 0;
}

const char *rf_store_ring(const struct rf_store *st)
{
	return st->ring;
}

int rf_store_set_ring(struct rf_store *st, const char *ring)
{
	if (!ring || strlen(ring) > RF_STORE_TARGET_MAX)
		return -EINVAL;
	snprintf(st->ring, sizeof(st->ring), "%s", ring);
	return 0;
}

int rf_store_credential_get(const struct rf_store *st, char *out, size_t outsz)
{
	char path[PATH_MAX];
	uint8_t *buf;
	size_t n;
	int r;

	if ((r = path_of(st, "credential", path)) < 0)
		return r;
	if ((r = rf_file_read(path, 4096, &buf, &n)) < 0)
		return r;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n + 1 > outsz || memchr(buf, 0, n)) {
		free(buf);
		return -E2BIG;
	}
	memcpy(out, buf, n);
	out[n] = 0;
	free(buf);
	return 0;
}

int rf_store_credential_set(struct rf_store *st, const char *cred)
{
	if (st->readonly || !cred)
		return -EINVAL;
	return write_atomic(st, "credential", "", cred, strlen(cred), 0600);
}

void rf_store_counters(const struct rf_store *st, uint64_t *ret_events, uint64_t *ret_alerts)
{
	*ret_events = st->events;
	*ret_alerts = st->alerts;
}

void rf_store_set_counters(struct rf_store *st, uint64_t events, uint64_t alerts)
{
	st->events = events;
	st->alerts = alerts;
}

uint64_t rf_store_dropped(const struct rf_store *st)
{
	return st->dropped;
}

void rf_store_add_dropped(struct rf_store *st, uint64_t n)
{
	st->dropped = n > UINT64_MAX - st->dropped ? UINT64_MAX : st->dropped + n;
}

uint64_t rf_store_corr_dropped(const struct rf_store *st)
{
	return st->corr_dropped;
}

void rf_store_add_corr_dropped(struct rf_store *st, uint64_t n)
{
	st->corr_dropped = n > UINT64_MAX - st->corr_dropped ? UINT64_MAX : st->corr_dropped + n;
}

uint64_t rf_store_transit_failures(const struct rf_store *st)
{
	return st->transit;
}

void rf_store_add_transit_failure(struct rf_store *st)
{
	if (st->transit < UINT64_MAX)
		st->transit++;
}

/* ---- commit and check ------------------------------------------------------------------- */

/* Delete packs/<hash>.rfp files the committed state no longer references, and the matcher
 * caches beside them (packs/<hash>.hsdb, written by the worker: rf_engine_load_cached). */
static void collect_garbage(struct rf_store *st)
{
	char path[PATH_MAX], f[PATH_MAX];
	DIR *dh;
	struct dirent *de;

	if (path_of(st, "packs", path) < 0 || !(dh = opendir(path)))
		return;
	while ((de = readdir(dh))) {
		uint8_t h[RF_GUARD_HASH_LEN];
		size_t l = strlen(de->d_name);

		if (!(l == 2 * RF_GUARD_HASH_LEN + 4 &&
		      !strcmp(de->d_name + 2 * RF_GUARD_HASH_LEN, ".rfp")) &&
		    !(l == 2 * RF_GUARD_HASH_LEN + 5 &&
		      !strcmp(de->d_name + 2 * RF_GUARD_HASH_LEN, ".hsdb")))
			continue;
		if (rf_hex_decode(de->d_name, 2 * RF_GUARD_HASH_LEN, h, RF_GUARD_HASH_LEN) < 0)
			continue;
		if (referenced(st, h))
			continue;
		if (snprintf(f, sizeof(f), "%s/%s", path, de->d_name) < (int)sizeof(f))
			st->ops->unlink(st->ops->userdata, f);
	}
	closedir(dh);
	/* no fsync of packs/: a crash may resurrect an unreferenced file; the next GC removes it */
}

int rf_store_commit(struct rf_store *st)
{
	json_t *root;
	char *text;
	int r;

	if (st->readonly)
		return -EROFS;
	/* keep names only for referenced packs (and at most NAMES_MAX) */
	for (unsigned i = 0; i < st->nnames;) {
		if (!referenced(st, st->names[i].hash))
			st->names[i] = st->names[--st->nnames];
		else
			i++;
	}
	root = state_to_json(st);
	if (!root)
		return -ENOMEM;
	text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	r = write_atomic(st, "state.json", "", text, strlen(text), 0600);
	free(text);
	if (r < 0)
		return r;
	collect_garbage(st);
	return 0;
}

int rf_store_check(const struct rf_store *st, struct rf_diag *d)
{
	struct rf_guard_config cfg;
	char hex[2 * RF_GUARD_HASH_LEN + 1];

	rf_guard_config_default(&cfg);
	if (!rf_guard_state_valid(&cfg, &st->g))
		return rf_diag_report(d, -EBADMSG, "guard state invalid");
	if (st->g.has_lkg) {
		rf_hex_encode(st->g.lkg, RF_GUARD_HASH_LEN, hex);
		if (!rf_store_pack_exists(st, st->g.lkg))
			return rf_diag_report(d, -EBADMSG, "last known good %s missing or corrupt",
					      hex);
		if (rf_store_is_quarantined(st, st->g.lkg))
			return rf_diag_report(d, -EBADMSG, "last known good %s is quarantined",
					      hex);
	}
	if (st->g.has_trial) {
		rf_hex_encode(st->g.trial, RF_GUARD_HASH_LEN, hex);
		if (!rf_store_pack_exists(st, st->g.trial))
			return rf_diag_report(d, -EBADMSG, "trial %s missing or corrupt", hex);
		if (rf_store_is_quarantined(st, st->g.trial))
			return rf_diag_report(d, -EBADMSG, "trial %s is quarantined", hex);
	}
	return 0;
}

int rf_store_apply(struct rf_store *st, const struct rf_guard_state *g,
		   const struct rf_guard_actions *acts, int64_t now)
{
	static const uint8_t zero[RF_GUARD_HASH_LEN];
	bool dirty = false;
	int r;

	for (unsigned i = 0; i < acts->n; i++) {
		const struct rf_guard_action *a = &acts->a[i];
		bool has = memcmp(a->hash, zero, sizeof(zero)) != 0;
		char detail[RF_STORE_DETAIL_MAX + 1];

		switch (a->type) {
		case RF_GUARD_ACT_REPORT:
			if (a->report == RF_GUARD_REPORT_CRASHED ||
			    a->report == RF_GUARD_REPORT_INTENT ||
			    a->report == RF_GUARD_REPORT_TRIAL_STARTED)
				snprintf(detail, sizeof(detail), "attempt %u/%u", a->attempt,
					 a->limit);
			else
				snprintf(detail, sizeof(detail), "%s",
					 rf_guard_reason_name(a->reason));
			uint64_t rid;
			r = rf_store_report_add(
			    st, rf_guard_report_name(a->report), has ? a->hash : NULL,
			    has ? rf_store_pack_name(st, a->hash) : "", detail, now, &rid);
			if (r < 0)
				return r;
			/* A go-back the server ordered is obeying a halt, not a failure. */
			if (a->report == RF_GUARD_REPORT_ROLLED_BACK &&
			    a->reason == RF_GUARD_REASON_SERVER)
				(void)rf_store_report_cause(st, rid, "server");
			dirty = true;
			break;
		case RF_GUARD_ACT_QUARANTINE:
			if ((r = rf_store_quarantine_add(st, a->hash,
							 rf_guard_reason_name(a->reason), now)) < 0)
				return r;
			dirty = true;
			break;
		case RF_GUARD_ACT_PERSIST:
			if ((r = rf_store_set_guard(st, g)) < 0 || (r = rf_store_commit(st)) < 0)
				return r;
			dirty = false;
			break;
		default: /* LOAD and SAFE_MODE are the caller's, after this returns */
			break;
		}
	}
	if (dirty) { /* reports and quarantine records are durable even without a state change */
		if ((r = rf_store_set_guard(st, g)) < 0 || (r = rf_store_commit(st)) < 0)
			return r;
	}
	return 0;
}

int rf__store_state_parse(const uint8_t *p, size_t n, struct rf_diag *d)
{
	struct rf_store *st;
	struct rf_guard_config cfg;
	int r;

	if (n > RF_AGENT_STATE_MAX)
		return -E2BIG;
	if ((r = store_alloc("/nonexistent", NULL, &st)) < 0)
		return r;
	r = parse_state(st, p, n, d);
	rf_guard_config_default(&cfg);
	/* a state that parsed is one the guard accepts, and serialises again */
	if (r == 0 && !rf_guard_state_valid(&cfg, &st->g))
		r = -EFAULT;
	if (r == 0) {
		json_t *j = state_to_json(st);
		if (!j)
			r = -ENOMEM;
		json_decref(j);
	}
	rf_store_free(st);
	return r;
}
