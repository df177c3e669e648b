/*
 * Binary min-heap for the simulator (see queue.h). Keys compare as one 64-bit integer
 * (time << 32 | device), which gives the total, deterministic order in a single compare.
 */
#include <errno.h>
#include <stdlib.h>

#include "sim/queue.h"

static inline uint64_t key(const struct rf_sim_event *e)
{
	return (uint64_t)e->t << 32 | e->dev;
}

int rf__sim_queue_init(struct rf_sim_queue *q, size_t cap)
{
	if (cap < 16)
		cap = 16;
	q->v = malloc(cap * sizeof(*q->v));
	if (!q->v)
		return -ENOMEM;
	q->n = 0;
	q->cap = cap;
	return 0;
}

void rf__sim_queue_fini(struct rf_sim_queue *q)
{
	free(q->v);
	q->v = NULL;
	q->n = q->cap = 0;
}

int rf__sim_queue_push(struct rf_sim_queue *q, uint32_t t, uint32_t dev)
{
	if (q->n == q->cap) {
		size_t ncap;
		if (__builtin_mul_overflow(q->cap, 2, &ncap))
			return -ENOMEM;
		struct rf_sim_event *nv = realloc(q->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		q->v = nv;
		q->cap = ncap;
	}
	struct rf_sim_event e = {.t = t, .dev = dev};
	uint64_t k = key(&e);
	size_t i = q->n++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (key(&q->v[parent]) <= k)
			break;
		q->v[i] = q->v[parent];
		i = parent;
	}
	q->v[i] = e;
	return 0;
}

bool rf__sim_queue_pop(struct rf_sim_queue *q, struct rf_sim_event *ret)
{
	if (q->n == 0)
		return false;
	*ret = q->v[0];
	struct rf_sim_event last = q->v[--q->n];
	uint64_t k = key(&last);
	size_t i = 0, n = q->n;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && key(&q->v[c + 1]) < key(&q->v[c]))
			c++;
		if (k <= key(&q->v[c]))
			break;
		q->v[i] = q->v[c];
		i = c;
	}
	if (n > 0)
		q->v[i] = last;
	return true;
}

uint32_t rf__sim_queue_peek_time(const struct rf_sim_queue *q)
{
	return q->n ? q->v[0].t : UINT32_MAX;
}
