/*
 * The agent manifests this build embeds, and which one an agent run verifies packs against
 * (P1: no content is loaded unless it verifies against the loading agent's own capabilities).
 * The capabilities are those of the event source the run reads: `--events proc` supplies the
 * fields of manifests/ringfence-agent-linux-1.2.0.json and nothing else, so a proc agent must
 * refuse a pack that needs a Windows-only field (its rule would never see that field), while
 * JSON event lines made elsewhere (a file, a socket, stdin) may carry any field of the
 * general manifest, ringfence-agent-1.1.0.json. `--manifest NAME` names one explicitly.
 *
 * The choice is one table (manifests.c): a new source or manifest version is one row there
 * and one embedded file in src/agent/meson.build.
 */
#ifndef RF_AGENT_MANIFESTS_H
#define RF_AGENT_MANIFESTS_H

#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"

struct rf_agent_manifest {
	const char *name;   /* its file name under manifests/ without ".json" */
	const char *events; /* the --events value it is the default for; NULL: every other */
	const uint8_t *(*bytes)(size_t *len); /* the embedded JSON (static, NUL-terminated) */
};

/*
 * The manifest a run uses: the one called name when name is not NULL, else the one for the
 * --events value events (NULL when the run reads no events). Returns 0 and *ret (static);
 * -ENOENT when this build embeds no manifest called name.
 */
int rf_agent_manifest_choose(const char *name, const char *events,
			     const struct rf_agent_manifest **ret) RF_WUR;

/* The i-th embedded manifest (the table's order), or NULL past the last. */
const struct rf_agent_manifest *rf_agent_manifest_at(size_t i);

#endif
