/*
 * Fuzz target: the Sigma compiler on untrusted YAML. Each input is compiled three times (without
 * a manifest, against the built-in one, and with placeholder values for `expand`); a rule that
 * compiles must be accepted by the pack builder and the resulting pack must pass the publisher-side
 * verifier against the built-in manifest when it was compiled against it. Nothing may crash, leak
 * or disagree.
 */
#include <stdint.h>
#include <stdlib.h>

#include "content/ir.h"
#include "content/sigma.h"
#include "ringfence/content.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rf_manifest *builtin;
static struct rf_sigma_placeholders *ph;

static void compile_and_pack(const uint8_t *data, size_t size, const struct rf_manifest *m,
			     const struct rf_sigma_placeholders *p)
{
	struct rf_sigma_rule *rule = NULL;
	struct rf_pack_builder *b = NULL;
	struct rf_diag d = {0};
	uint8_t *pack = NULL;
	size_t packlen = 0;

	if (rf_sigma_compile_with(data, size, "fuzz.yml", m, p, &rule, &d) < 0)
		return;
	if (rf_pack_builder_new(&b) < 0)
		goto out;
	/* The compiler's limits are within the builder's: a compiled rule must always pack. */
	if (rf_pack_builder_add(b, rf_sigma_rule_ir(rule), &d) < 0)
		abort();
	if (rf_pack_builder_finish(b, 1, &pack, &packlen) < 0)
		abort();
	if (m) {
		const struct rf_manifest *ms[1] = {m};
		struct rf_diag vd = {0};
		/* Compiled against m means every field resolves in m: the verifier must agree
		 * (pattern compilation may still reject exotic wildcard patterns: not a bug). */
		int r = rf_pack_verify(pack, packlen, ms, 1, &vd);
		if (r < 0 && r != -ENOEXEC)
			abort();
	}
out:
	free(pack);
	rf_pack_builder_free(b);
	rf_sigma_rule_free(rule);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!builtin) {
		size_t n;
		const uint8_t *p = rf_content_builtin_manifest(&n);
		struct rf_diag d = {0};
		if (rf_manifest_parse(p, n, &builtin, &d) < 0)
			abort();
		static const char phj[] = "{\"a\": [\"x*\", \"y\"], \"b\": \"-z\", \"c\": []}";
		if (rf_sigma_placeholders_parse((const uint8_t *)phj, sizeof(phj) - 1, &ph, &d) < 0)
			abort();
	}
	compile_and_pack(data, size, NULL, NULL);
	compile_and_pack(data, size, builtin, NULL);
	compile_and_pack(data, size, NULL, ph);
	return 0;
}
