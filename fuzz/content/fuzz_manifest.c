/*
 * Fuzz target: the agent manifest parser (rf_manifest_parse). Manifests come from the
 * publisher's tree (`content verify --manifest`) and from agent builds, so a bad one must be
 * rejected with a diagnostic, never crash the verifier. Each input is parsed; a rejection must
 * say why and use a documented code. An accepted manifest must describe what manifest.c
 * promises (names non-empty, at most RF_NAME_MAX bytes, NUL-free UTF-8, unique in their scope,
 * counts within limits.h, known field types), and a fixed pack built once with the pack builder
 * is checked and loaded against it: the verdict must be 0 or -ENOEXEC with a reason, and if it
 * loads, evaluating a fixed event must not trip a run-time check (the field-291 class: a pack
 * meets a manifest that supplies fewer or other fields than it uses).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "content/ir.h"
#include "content/pack.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define A(f, t, o, fl, p)                                                                          \
	{                                                                                          \
		f, t, o, fl, (const uint8_t *)(p), sizeof(p) - 1                                   \
	}

static uint8_t *pack;
static size_t pack_len;

static const char event[] =
    "{\"event\":\"process_creation\",\"Image\":\"C:\\\\Windows\\\\cmd.exe\","
    "\"CommandLine\":\"cmd /c whoami\",\"ProcessId\":4,\"DestinationIp\":\"10.1.2.3\"}";

static void init(void)
{
	static const struct rf_ir_atom a[] = {
	    A("Image", RF_FT_STRING, RF_OP_ENDSWITH, 0, "\\cmd.exe"),
	    A("CommandLine", RF_FT_STRING, RF_OP_CONTAINS, 0, "whoami"),
	    A("ProcessId", RF_FT_INT, RF_OP_EQ, 0, "4"),
	};
	static const uint32_t c1[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1),
				      RF_INSN(RF_I_AND, 0), RF_INSN(RF_I_ATOM, 2),
				      RF_INSN(RF_I_OR, 0)};
	static const struct rf_ir_atom n[] = {
	    A("DestinationIp", RF_FT_IP, RF_OP_EQ, 0, "10.1.2.3"),
	};
	static const uint32_t c2[] = {RF_INSN(RF_I_ATOM, 0)};
	const struct rf_ir_rule r[] = {{"m1", "M1", "high", "x", "process_creation", a, 3, c1, 5},
				       {"m2", "M2", "low", "x", "network_connection", n, 1, c2, 1}};
	struct rf_pack_builder *b;
	struct rf_diag d = {0};

	if (rf_pack_builder_new(&b) < 0)
		abort();
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (rf_pack_builder_add(b, &r[i], &d) < 0)
			abort();
	if (rf_pack_builder_finish(b, 1, &pack, &pack_len) < 0)
		abort();
	rf_pack_builder_free(b);
}

static bool name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n > 0 && n <= RF_NAME_MAX && rf__pack_utf8_ok((const uint8_t *)s, n);
}

/* Does m describe a well-formed set of unique (event, field, type) triples? */
static void check_invariants(const struct rf_manifest *m)
{
	size_t ne = rf__manifest_nevents(m);

	if (!name_ok(rf_manifest_agent(m)) || !name_ok(rf_manifest_version(m)) ||
	    ne > RF_MANIFEST_EVENTS_MAX)
		abort();
	for (size_t i = 0; i < ne; i++) {
		const char *ev = rf__manifest_event_name(m, i);
		size_t nf = rf__manifest_event_nfields_at(m, i);
		if (!name_ok(ev) || rf__manifest_event_index(m, ev) != (int)i ||
		    !rf_manifest_has_event(m, ev) || nf > RF_MANIFEST_FIELDS_MAX ||
		    rf_manifest_event_nfields(m, ev) != nf)
			abort();
		for (size_t j = 0; j < nf; j++) {
			const char *f = rf__manifest_field_name(m, i, j);
			enum rf_ftype t = rf__manifest_field_type_at(m, i, j);
			if (!name_ok(f) || t < RF_FT_STRING || t > RF_FT_IP)
				abort();
			/* Unique within the event: the lookup by name finds this one's type. */
			for (size_t k = 0; k < j; k++)
				if (!strcmp(rf__manifest_field_name(m, i, k), f))
					abort();
			if (rf_manifest_field_type(m, ev, f) != (int)t)
				abort();
		}
		/* Its time field, if named: a valid name the event supplies. */
		const char *tf = rf_manifest_event_time(m, (const uint8_t *)ev, strlen(ev));
		if (tf && (!name_ok(tf) || rf_manifest_field_type(m, ev, tf) < 0))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rf_manifest *m = NULL;
	struct rf_diag d = {0};
	int r;

	if (!pack)
		init();
	r = rf_manifest_parse(data, size, &m, &d);
	if (r < 0) {
		if (d.count == 0 || (r != -EBADMSG && r != -E2BIG && r != -ENOMEM))
			abort(); /* every rejection says why, with a documented code */
		return 0;
	}
	check_invariants(m);

	/* The same pack against this manifest: the publisher's check and the agent's load agree,
	 * a rejection says why, and a loaded engine evaluates an event within its checks. */
	struct rf_diag dc = {0}, dl = {0};
	const struct rf_manifest *ms[] = {m};
	struct rf_engine *e = NULL;
	struct rf_engine_scratch *s = NULL;
	int verified = rf_pack_verify(pack, pack_len, ms, 1, &dc);
	int loaded = rf_engine_load(pack, pack_len, m, &e, &dl);
	if ((verified == 0) != (loaded == 0) ||
	    (verified < 0 && (verified != -ENOEXEC || dc.count == 0)))
		abort();
	if (loaded == 0 && rf_engine_scratch_new(e, &s) == 0) {
		static struct rf_event ev;
		static uint8_t scratch[sizeof(event)];
		struct rf_engine_stats st;
		if (rf_event_parse((const uint8_t *)event, sizeof(event) - 1, scratch,
				   sizeof(scratch), &ev, &d) < 0 ||
		    rf_engine_eval(e, &ev, s, NULL, NULL, NULL) < 0)
			abort();
		rf_engine_scratch_stats(s, &st);
		if (st.violations)
			abort();
	}
	rf_engine_scratch_free(s);
	rf_engine_free(e);
	rf_manifest_free(m);
	return 0;
}
