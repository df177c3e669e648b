/*
 * Fuzz target: the event parser and the engine on untrusted events. Each input is split into
 * lines; each line is parsed and, if valid, evaluated against a small pack built once with the
 * pack builder (every op, a keyword, int and ip atoms). Nothing may crash or trip a run-time
 * check; each event gives the same alerts with the value cache (whose state carries over from
 * input to input) and without it, and the batch (by then mostly cache hits) as one at a time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "content/engine.h"
#include "content/ir.h"
#include "ringfence/content.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define A(f, t, o, fl, p)                                                                          \
	{                                                                                          \
		f, t, o, fl, (const uint8_t *)(p), sizeof(p) - 1                                   \
	}

static struct rf_engine *engine;
static struct rf_engine_scratch *scr, *nocache;

static void init(void)
{
	static const struct rf_ir_atom a[] = {
	    A("Image", RF_FT_STRING, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
	    A("CommandLine", RF_FT_STRING, RF_OP_CONTAINS, 0, "who*ami"),
	    A("CommandLine", RF_FT_STRING, RF_OP_EQ, RF_ATOM_CASED, "a?c"),
	    A("ParentImage", RF_FT_STRING, RF_OP_STARTSWITH, 0, "c:\\"),
	    A("User", RF_FT_STRING, RF_OP_NULL, 0, ""),
	    A("ProcessId", RF_FT_INT, RF_OP_EQ, 0, "4"),
	    A("Hashes", RF_FT_STRING, RF_OP_EXISTS, 0, ""),
	    {NULL, 0, RF_OP_KEYWORD, 0, (const uint8_t *)"mimikatz", 8},
	};
	static const uint32_t c1[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1),
				      RF_INSN(RF_I_AND, 0), RF_INSN(RF_I_ATOM, 7),
				      RF_INSN(RF_I_OR, 0)};
	static const uint32_t c2[] = {RF_INSN(RF_I_ATOM, 2), RF_INSN(RF_I_ATOM, 3),
				      RF_INSN(RF_I_NOT, 0),  RF_INSN(RF_I_AND, 0),
				      RF_INSN(RF_I_ATOM, 4), RF_INSN(RF_I_OR, 0)};
	static const uint32_t c3[] = {RF_INSN(RF_I_ATOM, 5), RF_INSN(RF_I_ATOM, 6),
				      RF_INSN(RF_I_OR, 0)};
	static const struct rf_ir_atom n[] = {
	    A("DestinationIp", RF_FT_IP, RF_OP_EQ, 0, "10.1.2.3"),
	    A("DestinationPort", RF_FT_INT, RF_OP_EQ, 0, "445"),
	};
	static const uint32_t c4[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1),
				      RF_INSN(RF_I_AND, 0)};
	const struct rf_ir_rule r[] = {{"f1", "F1", "high", "x", "process_creation", a, 8, c1, 5},
				       {"f2", "F2", "low", "x", "process_creation", a, 8, c2, 6},
				       {"f3", "F3", "low", "x", "process_creation", a, 8, c3, 3},
				       {"f4", "F4", "low", "x", "network_connection", n, 2, c4, 3}};
	struct rf_pack_builder *b;
	struct rf_manifest *m;
	struct rf_diag d = {0};
	uint8_t *p;
	size_t len, ml;
	const uint8_t *mb = rf_content_builtin_manifest(&ml);

	if (rf_manifest_parse(mb, ml, &m, &d) < 0 || rf_pack_builder_new(&b) < 0)
		abort();
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (rf_pack_builder_add(b, &r[i], &d) < 0)
			abort();
	if (rf_pack_builder_finish(b, 1, &p, &len) < 0 ||
	    rf_engine_load(p, len, m, &engine, &d) < 0 || rf_engine_scratch_new(engine, &scr) < 0 ||
	    rf__engine_scratch_new_cache(engine, 0, 0, 0, &nocache) < 0)
		abort();
	rf_pack_builder_free(b);
	rf_manifest_free(m);
	free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rf_event ev[RF_ENGINE_BATCH_MAX];
	const struct rf_event *evp[RF_ENGINE_BATCH_MAX];
	uint8_t *scratch;
	size_t i = 0, nb = 0;
	int singles = 0;

	if (!engine)
		init();
	/* Each line unescapes into its own part of scratch (never longer than the line), so the
	 * parsed events of a batch stay valid together. */
	scratch = malloc(size ? size : 1);
	if (!scratch)
		return 0;
	while (i < size && nb < RF_ENGINE_BATCH_MAX) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);
		size_t end = nl ? (size_t)(nl - data) : size;
		struct rf_diag d = {0};
		if (rf_event_parse(data + i, end - i, scratch + i, end - i, &ev[nb], &d) == 0) {
			struct rf_engine_stats st;
			int r = rf_engine_eval(engine, &ev[nb], scr, NULL, NULL, NULL);
			if (r < 0 && r != -E2BIG) /* -E2BIG: refused whole (a value too long) */
				abort();
			if (rf_engine_eval(engine, &ev[nb], nocache, NULL, NULL, NULL) != r)
				abort();
			singles += r < 0 ? 0 : r;
			rf_engine_scratch_stats(scr, &st);
			if (st.violations)
				abort();
			evp[nb] = &ev[nb];
			nb++;
		} else if (d.count == 0) {
			abort(); /* every rejection must say why */
		}
		i = end + 1;
	}
	/* The batch path must agree with the one-at-a-time path. */
	if (rf_engine_eval_batch(engine, evp, nb, scr, NULL, NULL, NULL) != singles)
		abort();
	free(scratch);
	return 0;
}
