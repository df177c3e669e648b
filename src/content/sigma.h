/*
 * The Sigma rule compiler: one Sigma rule file (YAML, from anyone) -> one struct rf_ir_rule
 * (src/content/ir.h), ready for rf_pack_builder_add().
 *
 * It accepts the core of the Sigma specification listed in docs/sigma.md and rejects everything
 * else with a diagnostic naming the rule (file, id, title) and the construct, so that a rule is
 * either compiled with its exact meaning or not compiled at all: never approximated. With a
 * manifest, field types come from the manifest and a rule that needs an event or field the
 * manifest lacks is rejected here, at the author's desk, with the same message the verifier gives
 * (the 2024-07-19 "field 21" check, done as early as possible).
 *
 * Input is untrusted: every size is bounded by the Sigma limits of ringfence/limits.h; going over
 * one rejects the rule with -E2BIG. The compiler never prints, never aborts, and its time and
 * memory are linear in the file size.
 */
#ifndef RF_CONTENT_SIGMA_H
#define RF_CONTENT_SIGMA_H

#include <stddef.h>
#include <stdint.h>

#include "content/ir.h"
#include "ringfence/error.h"

struct rf_sigma_rule;

/*
 * Compile the Sigma rule in yaml[0..n) (not NUL-terminated).
 *
 * origin: a name for diagnostics (usually the file path); may be NULL.
 * m:      optional agent manifest. With it, each field's type is the manifest's (int and ip
 *         fields get numeric / address comparisons) and a rule using an event or a field the
 *         manifest does not supply is rejected. Without it, a YAML integer value is an int
 *         comparison and everything else a string comparison.
 *
 * Returns 0 and a new rule in *ret (free with rf_sigma_rule_free), or, with one diagnostic in
 * reterr of the form  "<origin>: rule <id> \"<title>\": <reason>":
 *   -EBADMSG   not valid YAML, or not a valid Sigma rule (missing id/title/detection/condition,
 *              wrong value types, condition syntax error, unknown search identifier, ...)
 *   -ENOTSUP   a valid Sigma construct outside the supported subset (a modifier such as re or
 *              windash, an aggregation, a correlation rule, several YAML documents, ...)
 *   -ENOENT    the manifest does not supply the rule's event or one of its fields
 *   -EINVAL    a value does not fit the manifest's type of its field (e.g. text on an int field)
 *   -E2BIG     over one of the Sigma limits (file, nodes, nesting, atoms, program, pattern)
 *   -ENOMEM    out of memory
 * *ret is written only on success.
 */
int rf_sigma_compile(const uint8_t *yaml, size_t n, const char *origin, const struct rf_manifest *m,
		     struct rf_sigma_rule **ret, struct rf_diag *reterr) RF_WUR;

/*
 * Placeholder values for Sigma's `expand` modifier (docs/sigma.md "Placeholders"): a JSON object
 * mapping each name to a list of values (or one value), e.g. {"admin_users": ["adm_*", "root"]}.
 * Values are Sigma strings (wildcards and escapes as in rules). Parsed with the limits of
 * ringfence/limits.h (RF_SIGMA_PLACEHOLDERS_MAX names, RF_SIGMA_EXPAND_MAX values each, names
 * of RF_NAME_MAX, values of RF_SIGMA_PATTERN_MAX bytes). Returns 0, -EBADMSG (not such an
 * object; reterr names the entry), -E2BIG, -ENOMEM. Free with rf_sigma_placeholders_free.
 */
struct rf_sigma_placeholders;
int rf_sigma_placeholders_parse(const uint8_t *json, size_t n, struct rf_sigma_placeholders **ret,
				struct rf_diag *reterr) RF_WUR;
void rf_sigma_placeholders_free(struct rf_sigma_placeholders *p);

/* rf_sigma_compile with placeholder values for `expand` (ph may be NULL: a rule using expand is
 * then rejected with -ENOTSUP, saying it needs them). Same returns, and -EINVAL for a placeholder
 * ph does not define. */
int rf_sigma_compile_with(const uint8_t *yaml, size_t n, const char *origin,
			  const struct rf_manifest *m, const struct rf_sigma_placeholders *ph,
			  struct rf_sigma_rule **ret, struct rf_diag *reterr) RF_WUR;

/* The compiled rule. Valid until rf_sigma_rule_free(r); every pointer in it is owned by r. */
const struct rf_ir_rule *rf_sigma_rule_ir(const struct rf_sigma_rule *r);
/* Its logsource product ("windows"), or NULL when it names none; owned by r. For
 * rf_pack_builder_add_product(), which records it so the verifier checks it on every agent. */
const char *rf_sigma_rule_product(const struct rf_sigma_rule *r);

/* Free a rule from rf_sigma_compile (NULL is fine). */
void rf_sigma_rule_free(struct rf_sigma_rule *r);

#endif
