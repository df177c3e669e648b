/*
 * One store shared by several threads: struct rf_db around another one whose every call is
 * serialised by a mutex of its own (a backend is one connection and expects one caller at a
 * time, store.h). The server keeps it apart from its own lock (rf_server.lock) so that a
 * database round trip need not hold the lock that check-ins take: the group commit of reports
 * (report.c) and the chunks of the device flush (persist.c) write with this mutex only. Lock
 * order: rf_server.lock, then this one; never the other way round.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "server/server-internal.h"

struct serial_db {
	struct rf_db base;
	struct rf_db *inner;
	pthread_mutex_t mu;
	/* Several instances: a second connection for reading one device (the read before every
	 * report, report.c), so those reads do not queue behind the writes of the first. */
	struct rf_db *reader;
	pthread_mutex_t rmu;
	struct rf_db_ops ops;
};

#define INNER(b) (((struct serial_db *)(b))->inner)
#define MU(b)	 (&((struct serial_db *)(b))->mu)
/* Forward one call under the mutex. */
#define FWD(b, call)                                                                               \
	do {                                                                                       \
		struct rf_db *in_ = INNER(b);                                                      \
		pthread_mutex_lock(MU(b));                                                         \
		int r_ = in_->ops->call;                                                           \
		pthread_mutex_unlock(MU(b));                                                       \
		return r_;                                                                         \
	} while (0)

static void s_close(struct rf_db *b)
{
	struct serial_db *s = (struct serial_db *)b;

	rf_db_close(s->inner);
	rf_db_close(s->reader);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->rmu);
	free(s);
}

static int s_load(struct rf_db *b, const struct rf_db_visitor *v, void *ud)
{
	FWD(b, load(in_, v, ud));
}
static int s_ring_put(struct rf_db *b, const struct rf_db_ring *r)
{
	FWD(b, ring_put(in_, r));
}
static int s_ring_delete(struct rf_db *b, const char *name)
{
	FWD(b, ring_delete(in_, name));
}
static int s_tenant_put(struct rf_db *b, const struct rf_db_tenant *t)
{
	FWD(b, tenant_put(in_, t));
}
static int s_release_put(struct rf_db *b, const struct rf_db_release *r)
{
	FWD(b, release_put(in_, r));
}
static int s_devices_put(struct rf_db *b, const struct rf_db_device *d, size_t n)
{
	FWD(b, devices_put(in_, d, n));
}
static int s_report_add(struct rf_db *b, const struct rf_db_report *r,
			const struct rf_db_device *dev, size_t n, bool *dup)
{
	FWD(b, report_add(in_, r, dev, n, dup));
}
static int s_reports_count(struct rf_db *b, const char *id, uint64_t *ret)
{
	FWD(b, reports_count(in_, id, ret));
}
static int s_reports_purge(struct rf_db *b, int64_t before, unsigned max, uint64_t *ret)
{
	FWD(b, reports_purge(in_, before, max, ret));
}
static int s_audit_add(struct rf_db *b, const struct rf_db_audit *a, int64_t *ret_id)
{
	FWD(b, audit_add(in_, a, ret_id));
}
static int s_audit_list(struct rf_db *b, int64_t rel, int64_t before, unsigned limit,
			int (*fn)(void *ud, const struct rf_db_audit *a), void *ud)
{
	FWD(b, audit_list(in_, rel, before, limit, fn, ud));
}
static int s_admin_hash(struct rf_db *b, uint8_t hash[32], bool put)
{
	FWD(b, admin_hash(in_, hash, put));
}
static int s_device_get(struct rf_db *b, const char *id, const struct rf_db_visitor *v, void *ud)
{
	struct serial_db *s = (struct serial_db *)b;

	if (!s->reader)
		FWD(b, device_get(in_, id, v, ud));
	pthread_mutex_lock(&s->rmu);
	int r = s->reader->ops->device_get(s->reader, id, v, ud);
	pthread_mutex_unlock(&s->rmu);
	return r;
}
static int s_devices_changed(struct rf_db *b, const struct rf_db_visitor *v, void *ud)
{
	FWD(b, devices_changed(in_, v, ud));
}
static int s_notify(struct rf_db *b, const char *what, int64_t *seq)
{
	FWD(b, notify(in_, what, seq));
}
static int s_cluster_instances(struct rf_db *b, int64_t seq,
			       int (*fn)(void *ud, const char *name, bool applied, bool live),
			       void *ud)
{
	FWD(b, cluster_instances(in_, seq, fn, ud));
}
/* Not serialised: the control connection is the tick thread's only (store_pg_cluster.c), and a
 * reconnect there (seconds) must not hold up the reports. */
static int s_cluster_poll(struct rf_db *b, unsigned *changed, bool *leader, int64_t *seq)
{
	return INNER(b)->ops->cluster_poll(INNER(b), changed, leader, seq);
}
/* The control connection's too: the tick's thread only. */
static int s_cluster_heartbeat(struct rf_db *b, int64_t applied)
{
	return INNER(b)->ops->cluster_heartbeat(INNER(b), applied);
}
/* The same thread's, not serialised either. */
static int s_cluster_fd(struct rf_db *b)
{
	return INNER(b)->ops->cluster_fd(INNER(b));
}

int rf__srv_db_serial(struct rf_db *inner, const char *spec, struct rf_db **ret)
{
	struct serial_db *s = calloc(1, sizeof(*s));
	const struct rf_db_ops *o = inner->ops;

	if (!s)
		return -ENOMEM;
	s->inner = inner;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->rmu, NULL);
	/* Best effort: without it, reads share the first connection. */
	if (o->device_get && spec && rf_db_open(spec, 0, inner->diag, &s->reader) < 0)
		s->reader = NULL;
	if (s->reader)
		s->reader->retries = inner->retries;
	/* The optional calls stay NULL where the backend has none (rf_db_is_shared() and the
	 * inline wrappers of store.h look at them). */
	s->ops = (struct rf_db_ops){
	    .close = s_close,
	    .load = s_load,
	    .ring_put = s_ring_put,
	    .ring_delete = s_ring_delete,
	    .tenant_put = s_tenant_put,
	    .release_put = s_release_put,
	    .devices_put = s_devices_put,
	    .report_add = s_report_add,
	    .reports_count = s_reports_count,
	    .reports_purge = s_reports_purge,
	    .audit_add = s_audit_add,
	    .audit_list = s_audit_list,
	    .admin_hash = o->admin_hash ? s_admin_hash : NULL,
	    .device_get = o->device_get ? s_device_get : NULL,
	    .devices_changed = o->devices_changed ? s_devices_changed : NULL,
	    .notify = o->notify ? s_notify : NULL,
	    .cluster_poll = o->cluster_poll ? s_cluster_poll : NULL,
	    .cluster_fd = o->cluster_fd ? s_cluster_fd : NULL,
	    .cluster_heartbeat = o->cluster_heartbeat ? s_cluster_heartbeat : NULL,
	    .cluster_instances = o->cluster_instances ? s_cluster_instances : NULL,
	};
	s->base.ops = &s->ops;
	s->base.diag = inner->diag;
	s->base.retries = inner->retries;
	*ret = &s->base;
	return 0;
}
