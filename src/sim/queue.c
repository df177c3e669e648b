/*
 * Calendar queue for the simulator (see queue.h). A bucket's memory is released as soon as it
 * has drained, so memory follows the events pending, not the events ever scheduled.
 */
#include <errno.h>
#include <stdlib.h>

#include "sim/queue.h"

int rf__sim_queue_init(struct rf_sim_queue *q, uint32_t horizon)
{
	q->b = calloc((size_t)horizon + 1, sizeof(*q->b));
	if (!q->b)
		return -ENOMEM;
	q->horizon = horizon;
	q->cur = q->pos = q->floor = 0;
	q->sorted = false;
	q->n = 0;
	return 0;
}

void rf__sim_queue_fini(struct rf_sim_queue *q)
{
	if (q->b)
		for (size_t i = 0; i <= q->horizon; i++)
			free(q->b[i].v);
	free(q->b);
	q->b = NULL;
	q->n = 0;
}

int rf__sim_queue_push(struct rf_sim_queue *q, uint32_t t, uint32_t dev)
{
	if (t < q->floor || t > q->horizon)
		return -ERANGE;
	if (t < q->cur) {
		/* peek skipped empty seconds up to cur; t is one of them (nothing drained there).
		 */
		q->cur = t;
		q->pos = 0;
		q->sorted = false;
	}
	struct rf_sim_bucket *b = &q->b[t];
	if (b->n == b->cap) {
		uint32_t ncap = b->cap ? b->cap * 2 : 16;
		if (ncap < b->cap)
			return -ENOMEM;
		uint32_t *nv = realloc(b->v, (size_t)ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		b->v = nv;
		b->cap = ncap;
	}
	b->v[b->n++] = dev;
	q->n++;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Move cur to the first non-empty bucket (releasing drained ones). false when empty. */
static bool advance(struct rf_sim_queue *q)
{
	if (q->n == 0)
		return false;
	while (q->pos >= q->b[q->cur].n) {
		free(q->b[q->cur].v);
		q->b[q->cur] = (struct rf_sim_bucket){0};
		if (q->cur == q->horizon)
			return false;
		q->cur++;
		q->pos = 0;
		q->sorted = false;
	}
	return true;
}

bool rf__sim_queue_pop(struct rf_sim_queue *q, struct rf_sim_event *ret)
{
	if (!advance(q))
		return false;
	struct rf_sim_bucket *b = &q->b[q->cur];
	if (!q->sorted) {
		bool in_order = true;
		for (uint32_t i = 1; i < b->n && in_order; i++)
			in_order = b->v[i - 1] <= b->v[i];
		if (!in_order)
			qsort(b->v, b->n, sizeof(b->v[0]), cmp_u32);
		q->sorted = true;
		q->floor = q->cur + 1;
	}
	ret->t = q->cur;
	ret->dev = b->v[q->pos++];
	q->n--;
	return true;
}

uint32_t rf__sim_queue_peek_time(struct rf_sim_queue *q)
{
	return advance(q) ? q->cur : UINT32_MAX;
}
