/*
 * The refused-release set of ringfence-agent (see refused.h): a ring of full hashes. Every index
 * is taken modulo the capacity and the count saturates at it, so no sequence of offers can make
 * a lookup read past the ring (issue 16: the first version counted to 15 over 8 slots).
 */
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
