/*
 * The ringfence content engine: the public API for programs that embed it (the agent, the CLI,
 * the simulator). It verifies content packs against an agent manifest and evaluates events
 * against the rules of a verified pack.
 *
 * Invariants the API guarantees (docs/design.md P1-P3):
 *   - rf_engine_load() never builds a matcher from a pack that does not verify against the
 *     manifest it is given; every pack reference is an index checked once at load.
 *   - rf_engine_eval() is bounded in steps and bytes per event (docs/engine.md gives the worst
 *     case), allocates nothing and never reads outside the event; it re-checks every index and
 *     the stack at run time and counts a violation instead of faulting.
 *   - No function prints, logs or aborts on bad input: problems go to a struct rf_diag.
 *
 * Threads: a loaded engine is read-only and may be shared; each thread needs its own scratch.
 */
#ifndef RINGFENCE_CONTENT_H
#define RINGFENCE_CONTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"
#include "ringfence/limits.h"

/* ---- agent manifests ------------------------------------------------------------------- */

/* What an agent build supplies: event types and, per event, field names and types (string,
 * int, ip). JSON: {"agent":"ringfence-agent","version":"1.1.0","events":[{"name":"...",
 * "fields":[{"name":"Image","type":"string"},...]}]}. An event may also have "logsource" (the
 * Sigma logsources it is, see rf_manifest_logsource_event) and "other_fields": "string" (see
 * rf_manifest_event_open); docs/sigma.md "Manifests". */
struct rf_manifest;

/* Parse a manifest. -EBADMSG malformed (duplicate event or field names included), -E2BIG over a
 * limit, -ENOMEM; the diagnostic names the JSON path. *ret is owned by the caller. */
int rf_manifest_parse(const uint8_t *json, size_t n, struct rf_manifest **ret,
		      struct rf_diag *reterr) RF_WUR;
void rf_manifest_free(struct rf_manifest *m);
const char *rf_manifest_agent(const struct rf_manifest *m);   /* e.g. "ringfence-agent" */
const char *rf_manifest_version(const struct rf_manifest *m); /* e.g. "1.1.0" */
/* The Sigma logsource product the agent's events come from ("windows"), from the manifest's
 * optional "product" key; NULL when the manifest names none (any product). */
const char *rf_manifest_product(const struct rf_manifest *m);

/*
 * Whether the manifest's event has "other_fields": "string" (a schemaless log: any field name a
 * rule may use, beyond the listed ones, is supplied as a string when the line carries it).
 */
bool rf_manifest_event_open(const struct rf_manifest *m, const char *event);
/*
 * The event a manifest declares for a Sigma logsource (an event's optional "logsource": one or
 * more {product, category, service} objects): an exact match of all three keys (NULL/absent
 * equals absent; names are (p, n), not NUL-terminated). Returns 1 and *ret (the manifest's
 * event name), or 0 when no event is declared for it (the compiler then derives the name).
 */
int rf_manifest_logsource_event(const struct rf_manifest *m, const char *product,
				size_t product_len, const char *category, size_t category_len,
				const char *service, size_t service_len, const char **ret);
/* Whether the event declares logsources (then only they reach it, not a derived name). */
bool rf_manifest_event_declared(const struct rf_manifest *m, const char *event);
/* The field that holds the time of event type (event, event_len) (the event's optional "time",
 * a field it supplies: "published" for Okta, "ts" for zeek), or NULL when the manifest names
 * none or has no such event. The correlation evaluator reads it first
 * (rf_corr_event_time_in). */
const char *rf_manifest_event_time(const struct rf_manifest *m, const uint8_t *event,
				   size_t event_len);

/* The manifest of the agent this build produces (manifests/ringfence-agent-1.1.0.json, embedded
 * at build time). Static bytes, never freed; *len receives the length. */
const uint8_t *rf_content_builtin_manifest(size_t *len);

/* ---- packs ------------------------------------------------------------------------------ */

/* What inspect shows about a pack; strings point into the pack object (NUL-terminated). */
struct rf_pack_summary {
	uint32_t format_version;
	uint64_t seq; /* content sequence number */
	size_t total_len, n_strings, n_fields, n_atoms, n_rules, n_code;
	size_t n_corr; /* correlation rules (format version 2; 0 in version 1) */
};

struct rf_rule_info {
	const char *id, *title, *level, *author, *event;
	size_t n_code; /* instructions in the rule's program */
};

/*
 * A pack whose structure has been verified (magic, version, sizes, section bounds and overlap,
 * every index, UTF-8 of every name, limits) but not yet checked against any manifest.
 * rf_pack_open copies the bytes; the caller may free p afterwards.
 * Returns 0, -EBADMSG malformed, -E2BIG over a limit, -ENOMEM. Every problem is reported.
 */
struct rf_pack;
int rf_pack_open(const uint8_t *p, size_t n, struct rf_pack **ret, struct rf_diag *reterr) RF_WUR;
void rf_pack_free(struct rf_pack *pk);
void rf_pack_summary(const struct rf_pack *pk, struct rf_pack_summary *ret);
/* Rule i (0 <= i < n_rules); -ERANGE otherwise. */
int rf_pack_rule(const struct rf_pack *pk, size_t i, struct rf_rule_info *ret) RF_WUR;

/*
 * Semantic verification against one manifest: every event and field the pack uses is supplied
 * with a compatible type (the 2024-07-19 "field 21" check), ops and flags are allowed for the
 * type, int/ip patterns parse, opcodes are known with reserved bits zero, each program's stack
 * discipline holds (no underflow, exactly one result, depth <= RF_RULE_STACK_MAX), and every
 * string pattern compiles in Vectorscan. Every problem is reported with the rule's id and title.
 * Returns 0, or -ENOEXEC (rejected; reterr has every reason).
 */
int rf_pack_check(const struct rf_pack *pk, const struct rf_manifest *m,
		  struct rf_diag *reterr) RF_WUR;

/*
 * Publisher side: open p and check it against every manifest in ms[0..n_ms). Returns 0 if it
 * loads on all of them, otherwise the first error (-EBADMSG/-E2BIG structure, -ENOEXEC
 * semantics); every problem against every manifest is reported. At least one manifest is
 * required: with n_ms == 0 (or ms NULL) it returns -EINVAL with a message in reterr, never a
 * vacuous 0.
 */
int rf_pack_verify(const uint8_t *p, size_t n, const struct rf_manifest *const *ms, size_t n_ms,
		   struct rf_diag *reterr) RF_WUR;

/* ---- events ----------------------------------------------------------------------------- */

/* One field of an event. name and value point into the caller's line or scratch buffer and are
 * not NUL-terminated. is_string: the JSON value was a string (else a number or boolean, whose
 * text is value). JSON null values are dropped (the field is absent). */
struct rf_event_field {
	const uint8_t *name;
	size_t name_len;
	const uint8_t *value;
	size_t value_len;
	bool is_string;
};

struct rf_event {
	const uint8_t *type; /* the "event" member, e.g. process_creation */
	size_t type_len;
	size_t n_fields;
	struct rf_event_field fields[RF_EVENT_FIELDS_MAX];
};

/*
 * Parse one JSON line {"event":"process_creation","Image":"C:\\...",...} into ev. Values must be
 * strings, numbers, booleans or null; nested objects/arrays, duplicate names, invalid JSON
 * (invalid UTF-8 included: overlong forms, surrogates, code points above U+10FFFF and truncated
 * sequences, in names and values, raw or as \u escapes with an unpaired surrogate) and lines
 * over RF_EVENT_LINE_MAX are errors. Unescaped strings are written to scratch, which must
 * hold at least n bytes; ev points into line and scratch. Returns 0, -EBADMSG (reterr says
 * why and at which byte), -E2BIG (too long / too many fields or
 * null members). Never allocates.
 */
int rf_event_parse(const uint8_t *line, size_t n, uint8_t *scratch, size_t scratch_len,
		   struct rf_event *ev, struct rf_diag *reterr) RF_WUR;

/* ---- the engine ------------------------------------------------------------------------- */

struct rf_engine;
struct rf_engine_scratch;

/*
 * Agent side: open and verify the pack against the agent's own manifest m (P1), then build the
 * matchers (per-field Vectorscan databases compiled from the verified pattern text). The engine
 * does not keep m or p. Returns 0, the codes of rf_pack_open/rf_pack_check, -ENOMEM.
 */
int rf_engine_load(const uint8_t *p, size_t n, const struct rf_manifest *m, struct rf_engine **ret,
		   struct rf_diag *reterr) RF_WUR;
/*
 * rf_engine_load, keeping the compiled matchers in the file cache_path, so that loading the same
 * pack again (a worker restarting) skips compiling its patterns. The file belongs to the agent
 * (beside the pack, never shipped); the pack is verified against m on every load exactly as by
 * rf_engine_load, and a cached database is used only if it was compiled from exactly the
 * expressions this build makes of this pack (src/content/cache.c); a cache that is missing, for
 * other content, for another Vectorscan or CPU, or damaged is ignored and rewritten (atomically).
 * *ret_cache (optional, written on success): 1 the matchers came from the cache; 0 they were
 * compiled and the cache written; a negative errno: compiled, the cache could not be written
 * (the engine works all the same). Returns as rf_engine_load.
 */
int rf_engine_load_cached(const uint8_t *p, size_t n, const struct rf_manifest *m,
			  const char *cache_path, struct rf_engine **ret, int *ret_cache,
			  struct rf_diag *reterr) RF_WUR;
void rf_engine_free(struct rf_engine *e);
const struct rf_pack *rf_engine_pack(const struct rf_engine *e);

/* Per-thread scratch for rf_engine_eval (one allocation up front, none per event). */
int rf_engine_scratch_new(const struct rf_engine *e, struct rf_engine_scratch **ret) RF_WUR;
void rf_engine_scratch_free(struct rf_engine_scratch *s);

/* Counters kept in the scratch (add them up across threads). */
struct rf_engine_stats {
	uint64_t events;     /* events evaluated */
	uint64_t unknown;    /* events of a type the manifest does not supply (no rule can match) */
	uint64_t oversize;   /* events refused whole: a value over RF_EVENT_VALUE_MAX bytes, or all
			      * values together over RF_EVENT_LINE_MAX (never matched on a cut) */
	uint64_t mistyped;   /* events with an int/ip field whose value is not of that type
			      * (its int/ip atoms are false; rf_engine_event_problems names it) */
	uint64_t atoms;	     /* atoms that matched */
	uint64_t rules_run;  /* rule programs executed (after the prefilter) */
	uint64_t matches;    /* alerts raised */
	uint64_t violations; /* run-time index/stack checks that failed (must stay 0) */
	/* The value cache (docs/engine.md "Value cache"): string values whose matchers' atoms
	 * came from the cache, values looked up and not found, values not looked up because
	 * their field's values rarely repeat (the adaptive rule's pause). Answers are the same
	 * with or without it. */
	uint64_t cache_hits, cache_misses, cache_paused;
};
void rf_engine_scratch_stats(const struct rf_engine_scratch *s, struct rf_engine_stats *ret);

/* Called once per matching rule; rule_index is the rule's position in the pack. */
typedef void (*rf_alert_fn)(void *userdata, size_t rule_index, const struct rf_rule_info *rule);

/*
 * Evaluate one event against every rule of its type; call fn for each rule that fires (in pack
 * order). Every value is matched whole. An event with a field value over RF_EVENT_VALUE_MAX bytes
 * (or all values together over RF_EVENT_LINE_MAX) is refused as a whole: no rule runs on it, it is
 * counted in stats.oversize, *ret_refused (may be NULL) is set and -E2BIG returned.
 * Returns the number of alerts (>= 0), -E2BIG refused, -EINVAL if s was made for another engine,
 * -EIO if Vectorscan failed.
 */
int rf_engine_eval(const struct rf_engine *e, const struct rf_event *ev,
		   struct rf_engine_scratch *s, rf_alert_fn fn, void *userdata,
		   bool *ret_refused) RF_WUR;

/* Called once per matching rule of a batch; event_index is the event's position in the batch. */
typedef void (*rf_batch_alert_fn)(void *userdata, size_t event_index, size_t rule_index,
				  const struct rf_rule_info *rule);

/*
 * Evaluate n <= RF_ENGINE_BATCH_MAX events at once: the same results as rf_engine_eval on each
 * in turn, faster, because each field's matcher is scanned over the whole batch while it is in
 * cache. fn is called per alert in event order, then pack order. ret_refused (may be NULL)
 * receives n flags: event i was refused as a whole (see rf_engine_eval; the other events are
 * still evaluated). Returns the total number of alerts, -EINVAL (n too large or s made for
 * another engine), -EIO.
 */
int rf_engine_eval_batch(const struct rf_engine *e, const struct rf_event *const *evs, size_t n,
			 struct rf_engine_scratch *s, rf_batch_alert_fn fn, void *userdata,
			 bool *ret_refused) RF_WUR;

/*
 * Diagnostics for one event (for `ringfence content eval`; not needed to evaluate): report to
 * reterr each reason the engine would silently ignore part of it: an event type the manifest does
 * not supply ("event type 'x' is not supplied by ringfence-agent 1.1.0"), a field value the
 * manifest types int or ip that does not parse as one, a value over RF_EVENT_VALUE_MAX. Returns
 * the number of problems reported (0 if none). Allocates nothing.
 */
int rf_engine_event_problems(const struct rf_engine *e, const struct rf_event *ev,
			     struct rf_diag *reterr);

#endif
