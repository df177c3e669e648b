/*
 * The simulator's event queue: a binary min-heap of (time, device) pairs ordered by time and
 * then device index, so that events at the same second are always taken in the same order
 * (determinism). Entries are 8 bytes; the heap grows by doubling and never shrinks during a
 * run. Cancellation is lazy: the owner keeps the authoritative next-event time per device and
 * drops popped entries that no longer match it.
 */
#ifndef RF_SIM_QUEUE_H
#define RF_SIM_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rf_sim_event {
	uint32_t t;   /* seconds since the start of the run */
	uint32_t dev; /* device index; UINT32_MAX is reserved for fleet-wide (server) events */
};

struct rf_sim_queue {
	struct rf_sim_event *v;
	size_t n, cap;
};

/* Reserve room for cap entries. 0 or -ENOMEM. */
int rf__sim_queue_init(struct rf_sim_queue *q, size_t cap);
void rf__sim_queue_fini(struct rf_sim_queue *q);
/* Add an event. 0 or -ENOMEM (the queue is unchanged on failure). */
int rf__sim_queue_push(struct rf_sim_queue *q, uint32_t t, uint32_t dev);
/* Remove the earliest event into *ret. false when the queue is empty. */
bool rf__sim_queue_pop(struct rf_sim_queue *q, struct rf_sim_event *ret);
/* Earliest time in the queue, or UINT32_MAX when empty. */
uint32_t rf__sim_queue_peek_time(const struct rf_sim_queue *q);

#endif
