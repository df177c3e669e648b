/*
 * The agent's durable store (see store.h for the layout and invariants, docs/durability.md for
 * why it is files + rename rather than SQLite).
 *
 * Write order is what makes it crash-safe: a pack file is complete and durable (temp, fsync,
 * rename, fsync of packs/) before any state.json that names it is renamed into place, and a
 * pack is unlinked only after a durable state.json stopped naming it. state.json itself is
 * replaced by rename, so a reader sees the old or the new one, never a mix. Every mutating call
 * goes through the ops table, whose default is plain POSIX. What state.json holds and its JSON
 * format (parsing and writing) are store_json.c's (store-internal.h): of state.json, this file
 * only reads and durably writes the bytes.
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

#include "agent/store-internal.h"
#include "common/util.h"
#include "ringfence/limits.h"

struct rf_store {
	char *dir;
	const struct rf_store_ops *ops;
	int lockfd;
	bool readonly;
	struct rf__store_state s; /* what state.json holds, as last read or changed since */
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
	rf__store_state_reset(&st->s);
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
	r = rf__store_state_load(&st->s, buf, n, d);
	free(buf);
	if (r < 0)
		rf__store_state_reset(&st->s);
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
	return &st->s.g;
}

int rf_store_set_guard(struct rf_store *st, const struct rf_guard_state *g)
{
	struct rf_guard_config cfg;

	rf_guard_config_default(&cfg);
	if (!rf_guard_state_valid(&cfg, g))
		return -EINVAL;
	st->s.g = *g;
	return 0;
}

static bool referenced(const struct rf_store *st, const uint8_t *h)
{
	return (st->s.g.has_trial && memcmp(st->s.g.trial, h, RF_GUARD_HASH_LEN) == 0) ||
	       (st->s.g.has_lkg && memcmp(st->s.g.lkg, h, RF_GUARD_HASH_LEN) == 0);
}

static void name_set(struct rf_store *st, const uint8_t *h, const char *target)
{
	unsigned i;

	for (i = 0; i < st->s.nnames; i++)
		if (memcmp(st->s.names[i].hash, h, RF_GUARD_HASH_LEN) == 0)
			break;
	if (i == st->s.nnames) {
		if (st->s.nnames == NAMES_MAX) { /* drop an unreferenced name */
			for (i = 0; i < st->s.nnames && referenced(st, st->s.names[i].hash); i++)
				;
			if (i == st->s.nnames)
				return;
		} else {
			st->s.nnames++;
		}
	}
	memcpy(st->s.names[i].hash, h, RF_GUARD_HASH_LEN);
	snprintf(st->s.names[i].target, sizeof(st->s.names[i].target), "%s", target);
}

const char *rf_store_pack_name(const struct rf_store *st, const uint8_t hash[RF_GUARD_HASH_LEN])
{
	for (unsigned i = 0; i < st->s.nnames; i++)
		if (memcmp(st->s.names[i].hash, hash, RF_GUARD_HASH_LEN) == 0)
			return st->s.names[i].target;
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
	for (size_t i = 0; i < st->s.nq; i++)
		if (memcmp(st->s.q[i].hash, hash, RF_GUARD_HASH_LEN) == 0)
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
	if (st->s.nq == RF_AGENT_QUARANTINE_MAX) {
		memmove(&st->s.q[0], &st->s.q[1], (st->s.nq - 1) * sizeof(st->s.q[0]));
		st->s.nq--;
	}
	q = &st->s.q[st->s.nq++];
	memcpy(q->hash, hash, RF_GUARD_HASH_LEN);
	snprintf(q->reason, sizeof(q->reason), "%s", reason);
	q->time = time;
	return 0;
}

size_t rf_store_quarantine_count(const struct rf_store *st)
{
	return st->s.nq;
}

const struct rf_store_quarantine *rf_store_quarantine_at(const struct rf_store *st, size_t i)
{
	return i < st->s.nq ? &st->s.q[i] : NULL;
}

int rf_store_report_cause(struct rf_store *st, uint64_t id, const char *cause)
{
	if (!cause || strlen(cause) >= sizeof(st->s.out[0].cause))
		return -EINVAL;
	for (size_t i = 0; i < st->s.nout; i++)
		if (st->s.out[i].id == id) {
			snprintf(st->s.out[i].cause, sizeof(st->s.out[i].cause), "%s", cause);
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
	if (st->s.nout == RF_AGENT_OUTBOX_MAX) {
		memmove(&st->s.out[0], &st->s.out[1], (st->s.nout - 1) * sizeof(st->s.out[0]));
		st->s.nout--;
	}
	r = &st->s.out[st->s.nout++];
	memset(r, 0, sizeof(*r));
	r->id = st->s.next_report++;
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
	for (size_t i = 0; i < st->s.nout; i++) {
		if (st->s.out[i].id == id) {
			memmove(&st->s.out[i], &st->s.out[i + 1],
				(st->s.nout - i - 1) * sizeof(st->s.out[0]));
			st->s.nout--;
			return 0;
		}
	}
	return -ENOENT;
}

size_t rf_store_report_count(const struct rf_store *st)
{
	return st->s.nout;
}

const struct rf_store_report *rf_store_report_at(const struct rf_store *st, size_t i)
{
	return i < st->s.nout ? &st->s.out[i] : NULL;
}

const char *rf_store_device_id(const struct rf_store *st)
{
	return st->s.device_id;
}

int rf_store_set_device_id(struct rf_store *st, const char *id)
{
	if (!id || strlen(id) > RF_STORE_TARGET_MAX)
		return -EINVAL;
	snprintf(st->s.device_id, sizeof(st->s.device_id), "%s", id);
	return 0;
}

const char *rf_store_ring(const struct rf_store *st)
{
	return st->s.ring;
}

int rf_store_set_ring(struct rf_store *st, const char *ring)
{
	if (!ring || strlen(ring) > RF_STORE_TARGET_MAX)
		return -EINVAL;
	snprintf(st->s.ring, sizeof(st->s.ring), "%s", ring);
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
	*ret_events = st->s.events;
	*ret_alerts = st->s.alerts;
}

void rf_store_set_counters(struct rf_store *st, uint64_t events, uint64_t alerts)
{
	st->s.events = events;
	st->s.alerts = alerts;
}

uint64_t rf_store_dropped(const struct rf_store *st)
{
	return st->s.dropped;
}

void rf_store_add_dropped(struct rf_store *st, uint64_t n)
{
	st->s.dropped = n > UINT64_MAX - st->s.dropped ? UINT64_MAX : st->s.dropped + n;
}

uint64_t rf_store_corr_dropped(const struct rf_store *st)
{
	return st->s.corr_dropped;
}

void rf_store_add_corr_dropped(struct rf_store *st, uint64_t n)
{
	st->s.corr_dropped =
	    n > UINT64_MAX - st->s.corr_dropped ? UINT64_MAX : st->s.corr_dropped + n;
}

static void add_sat(uint64_t *c, uint64_t n)
{
	*c = n > UINT64_MAX - *c ? UINT64_MAX : *c + n;
}

uint64_t rf_store_alerts_lost(const struct rf_store *st)
{
	return st->s.alerts_lost;
}

void rf_store_add_alerts_lost(struct rf_store *st, uint64_t n)
{
	add_sat(&st->s.alerts_lost, n);
}

uint64_t rf_store_time_unparsed(const struct rf_store *st)
{
	return st->s.time_unparsed;
}

void rf_store_add_time_unparsed(struct rf_store *st, uint64_t n)
{
	add_sat(&st->s.time_unparsed, n);
}

uint64_t rf_store_count(const struct rf_store *st, enum rf_store_count c)
{
	return c < RF_STORE_COUNT_N ? st->s.counts[c] : 0;
}

void rf_store_add_count(struct rf_store *st, enum rf_store_count c, uint64_t n)
{
	if (c < RF_STORE_COUNT_N)
		add_sat(&st->s.counts[c], n);
}

uint64_t rf_store_transit_failures(const struct rf_store *st)
{
	return st->s.transit;
}

void rf_store_add_transit_failure(struct rf_store *st)
{
	if (st->s.transit < UINT64_MAX)
		st->s.transit++;
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
	char *text;
	int r;

	if (st->readonly)
		return -EROFS;
	/* keep names only for referenced packs (and at most NAMES_MAX) */
	for (unsigned i = 0; i < st->s.nnames;) {
		if (!referenced(st, st->s.names[i].hash))
			st->s.names[i] = st->s.names[--st->s.nnames];
		else
			i++;
	}
	if ((r = rf__store_state_dump(&st->s, &text)) < 0)
		return r;
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
	if (!rf_guard_state_valid(&cfg, &st->s.g))
		return rf_diag_report(d, -EBADMSG, "guard state invalid");
	if (st->s.g.has_lkg) {
		rf_hex_encode(st->s.g.lkg, RF_GUARD_HASH_LEN, hex);
		if (!rf_store_pack_exists(st, st->s.g.lkg))
			return rf_diag_report(d, -EBADMSG, "last known good %s missing or corrupt",
					      hex);
		if (rf_store_is_quarantined(st, st->s.g.lkg))
			return rf_diag_report(d, -EBADMSG, "last known good %s is quarantined",
					      hex);
	}
	if (st->s.g.has_trial) {
		rf_hex_encode(st->s.g.trial, RF_GUARD_HASH_LEN, hex);
		if (!rf_store_pack_exists(st, st->s.g.trial))
			return rf_diag_report(d, -EBADMSG, "trial %s missing or corrupt", hex);
		if (rf_store_is_quarantined(st, st->s.g.trial))
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
