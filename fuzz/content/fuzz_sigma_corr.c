/*
 * Fuzz target: a multi-document Sigma file with correlation rules, compiled as `ringfence content
 * compile` does (documents split, rules compiled, correlations parsed and resolved against them,
 * all packed). The pack the builder writes must load (rf_pack_open: the verifier of the
 * correlations section agrees with the builder), and the evaluator must run on it with a few
 * events without crashing. Nothing may crash, leak or disagree.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "content/ir.h"
#include "content/sigma.h"
#include "content/sigma_corr.h"
#include "ringfence/content.h"
#include "ringfence/correlate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rf_sigma_doc *docs = NULL;
	struct rf_pack_builder *b = NULL;
	struct rf_sigma_corrset *cs = NULL;
	struct rf_pack *pk = NULL;
	struct rf_corr *c = NULL;
	struct rf_diag d = {0};
	uint8_t *pack = NULL, key[16] = {0};
	size_t nd = 0, packlen = 0, added = 0, rej = 0;

	if (rf_sigma_docs(data, size, "fuzz.yml", &docs, &nd, &d) < 0)
		return 0;
	if (rf_pack_builder_new(&b) < 0 || rf_sigma_corrset_new(&cs) < 0)
		goto out;
	for (size_t i = 0; i < nd; i++) {
		if (docs[i].off > size || docs[i].len > size - docs[i].off)
			abort(); /* a document's range must lie within the file */
		if (docs[i].correlation) {
			if (rf_sigma_corrset_parse(cs, data + docs[i].off, docs[i].len, "fuzz",
						   &d) == -ENOMEM)
				goto out;
			continue;
		}
		struct rf_sigma_rule *r = NULL;
		if (rf_sigma_compile(data + docs[i].off, docs[i].len, "fuzz", NULL, &r, &d) < 0)
			continue;
		const struct rf_ir_rule *ir = rf_sigma_rule_ir(r);
		uint32_t idx = (uint32_t)rf_pack_builder_count(b);
		if (rf_pack_builder_add(b, ir, &d) == 0 &&
		    rf_sigma_corrset_rule(cs, ir->id, docs[i].name, ir->event, idx) < 0) {
			rf_sigma_rule_free(r);
			goto out;
		}
		rf_sigma_rule_free(r);
	}
	if (rf_sigma_corrset_finish(cs, b, NULL, &added, &rej, &d) < 0)
		goto out;
	if (rf_pack_builder_count(b) == 0 || rf_pack_builder_finish(b, 1, &pack, &packlen) < 0)
		goto out;
	if (rf_pack_open(pack, packlen, &pk, &d) < 0)
		abort(); /* the builder wrote a pack its own verifier refuses */
	if (rf_corr_new(pk, key, &c) == 0) {
		static const char ev[] = "{\"event\":\"process_creation\",\"User\":\"u\","
					 "\"Image\":\"x\",\"EventID\":1}";
		uint8_t scratch[sizeof(ev)];
		struct rf_event e;
		size_t rules[4] = {0, 1, 2, 3};
		struct rf_pack_summary s;
		rf_pack_summary(pk, &s);
		if (rf_event_parse((const uint8_t *)ev, sizeof(ev) - 1, scratch, sizeof(scratch),
				   &e, NULL) == 0)
			for (int64_t t = 0; t < 4; t++)
				(void)rf_corr_event(c, &e, t * 1000, rules,
						    s.n_rules < 4 ? s.n_rules : 4, NULL, NULL);
		(void)rf_corr_flush(c, NULL, NULL);
		rf_corr_free(c);
	}
out:
	rf_pack_free(pk);
	free(pack);
	rf_sigma_corrset_free(cs);
	rf_pack_builder_free(b);
	free(docs);
	return 0;
}
