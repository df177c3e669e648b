/*
 * Sigma correlation rules, compiled (docs/sigma.md "Correlation rules"): the documents of a
 * multi-document Sigma file, and the correlation documents among them parsed and resolved
 * against the base rules (by id or name) into struct rf_ir_corr for rf_pack_builder_add_corr().
 *
 * A correlation is either compiled with its exact meaning or rejected with a named reason:
 * unknown rule reference, missing timespan, unsupported type, a cap of limits.h exceeded, a
 * reference cycle, a group-by field the manifest does not supply. Input is untrusted; every count
 * is bounded by limits.h (RF_SIGMA_FILE_MAX, RF_SIGMA_DOCS_MAX, RF_CORR_*). Nothing is printed.
 */
#ifndef RF_CONTENT_SIGMA_CORR_H
#define RF_CONTENT_SIGMA_CORR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content/ir.h"
#include "ringfence/error.h"
#include "ringfence/limits.h"

/* One YAML document of a Sigma file. */
struct rf_sigma_doc {
	size_t off, len;	    /* its bytes in the file */
	unsigned line;		    /* its first line (1-based) */
	bool correlation;	    /* it has a top-level 'correlation' key */
	char id[RF_NAME_MAX + 1];   /* its top-level 'id', "" if none (or not a short string) */
	char name[RF_NAME_MAX + 1]; /* its top-level 'name', "" if none */
};

/*
 * Split yaml[0..n) into its documents (*ret malloc'd, caller frees; *ret_n may be 0 for an empty
 * file). Returns 0, -EBADMSG (not YAML; reterr says where), -ENOTSUP (YAML aliases), -E2BIG
 * (more than RF_SIGMA_DOCS_MAX documents or RF_SIGMA_FILE_MAX bytes), -ENOMEM.
 */
int rf_sigma_docs(const uint8_t *yaml, size_t n, const char *origin, struct rf_sigma_doc **ret,
		  size_t *ret_n, struct rf_diag *reterr) RF_WUR;

/* The correlations of one compile, and the rules they may refer to. */
struct rf_sigma_corrset;
int rf_sigma_corrset_new(struct rf_sigma_corrset **ret) RF_WUR;
void rf_sigma_corrset_free(struct rf_sigma_corrset *s);

/* A base rule (id, optional name, event) added to the pack as rule_index, or rejected
 * (rule_index UINT32_MAX: a correlation referring to it is rejected, saying so). 0 or -ENOMEM. */
int rf_sigma_corrset_rule(struct rf_sigma_corrset *s, const char *id, const char *name,
			  const char *event, uint32_t rule_index) RF_WUR;

/*
 * Parse the correlation document yaml[0..n) and keep it for rf_sigma_corrset_finish. Returns 0,
 * or with one diagnostic "<origin>: correlation <id> \"<title>\": <reason>": -EBADMSG (not a
 * valid correlation: missing title, rules, timespan, condition...), -ENOTSUP (a type or construct
 * outside the supported set), -E2BIG (over a cap), -ENOMEM.
 */
int rf_sigma_corrset_parse(struct rf_sigma_corrset *s, const uint8_t *yaml, size_t n,
			   const char *origin, struct rf_diag *reterr) RF_WUR;

/*
 * Resolve every kept correlation (references by id or name, aliases, chains in dependency order)
 * and add those that resolve to b; with m, a group-by or value_count field must be supplied for
 * each referred rule's event. Each rejection is reported to reterr (-EINVAL unknown reference or
 * cycle, -ENOENT field not supplied, -E2BIG over a cap). *ret_added / *ret_rejected count them.
 * Returns 0 or -ENOMEM.
 */
int rf_sigma_corrset_finish(struct rf_sigma_corrset *s, struct rf_pack_builder *b,
			    const struct rf_manifest *m, size_t *ret_added, size_t *ret_rejected,
			    struct rf_diag *reterr) RF_WUR;

#endif
