/*
 * The refused-release set and the transit-failure table of ringfence-agent (see refused.h): two
 * rings of full hashes. Every index is taken modulo the capacity and the count saturates at it,
 * so no sequence of offers can make a lookup read past a ring (issue 16: the first version
 * counted to 15 over 8 slots).
 */
#include <limits.h>
#include <string.h>

#include "agent/refused.h"

void rf_refused_init(struct rf_refused *t)
{
	memset(t, 0, sizeof(*t));
}

bool rf_refused_has(const struct rf_refused *t, const uint8_t hash[32])
{
	unsigned n = t->n < RF_AGENT_REFUSED_MAX ? t->n : RF_AGENT_REFUSED_MAX;

	for (unsigned i = 0; i < n; i++)
		if (memcmp(t->hash[i], hash, 32) == 0)
			return true;
	return false;
}

void rf_refused_add(struct rf_refused *t, const uint8_t hash[32])
{
	if (rf_refused_has(t, hash))
		return;
	memcpy(t->hash[t->next % RF_AGENT_REFUSED_MAX], hash, 32);
	t->next = (t->next + 1) % RF_AGENT_REFUSED_MAX;
	if (t->n < RF_AGENT_REFUSED_MAX)
		t->n++;
}

size_t rf_refused_count(const struct rf_refused *t)
{
	return t->n;
}

void rf_transit_init(struct rf_transit *t)
{
	memset(t, 0, sizeof(*t));
}

static struct rf_transit_entry *transit_find(const struct rf_transit *t, const uint8_t hash[32])
{
	unsigned n = t->n < RF_AGENT_REFUSED_MAX ? t->n : RF_AGENT_REFUSED_MAX;

	for (unsigned i = 0; i < n; i++)
		if (memcmp(t->e[i].hash, hash, 32) == 0)
			return (struct rf_transit_entry *)&t->e[i];
	return NULL;
}

bool rf_transit_waiting(const struct rf_transit *t, const uint8_t hash[32], uint64_t now_ms)
{
	const struct rf_transit_entry *e = transit_find(t, hash);

	return e && e->failures && now_ms < e->retry_at_ms;
}

/* FNV-1a: tells one reason from another, nothing more */
static uint64_t why_print(const char *why)
{
	uint64_t h = 14695981039346656037ull;

	for (; *why; why++)
		h = (h ^ (uint8_t)*why) * 1099511628211ull;
	return h;
}

bool rf_transit_failed(struct rf_transit *t, const uint8_t hash[32], const char *why,
		       uint64_t now_ms, uint64_t (*wait_ms)(void *ud, unsigned failures), void *ud,
		       unsigned *ret_failures, uint64_t *ret_wait_ms)
{
	struct rf_transit_entry *e = transit_find(t, hash);
	uint64_t w, print = why_print(why ? why : "");
	bool report;

	if (!e) {
		e = &t->e[t->next % RF_AGENT_REFUSED_MAX];
		memset(e, 0, sizeof(*e));
		memcpy(e->hash, hash, 32);
		t->next = (t->next + 1) % RF_AGENT_REFUSED_MAX;
		if (t->n < RF_AGENT_REFUSED_MAX)
			t->n++;
	}
	if (e->failures < UINT_MAX)
		e->failures++;
	report = e->failures == 1 || e->why != print ||
		 now_ms - e->reported_at_ms >= (uint64_t)RF_AGENT_BACKOFF_MAX_S * 1000;
	if (report) {
		e->reported_at_ms = now_ms;
		e->why = print;
	}
	w = wait_ms ? wait_ms(ud, e->failures) : 0;
	e->retry_at_ms = w > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + w;
	if (ret_failures)
		*ret_failures = e->failures;
	if (ret_wait_ms)
		*ret_wait_ms = w;
	return report;
}

void rf_transit_forget(struct rf_transit *t, const uint8_t hash[32])
{
	struct rf_transit_entry *e = transit_find(t, hash);

	if (e)
		e->failures = 0;
}
