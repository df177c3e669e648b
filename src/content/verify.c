/*
 * The pack loader and verifier. Design (in the manner of the BPF verifier: prove at load what
 * the interpreter relies on, report every reason for rejection):
 *
 *   Structure (rf__pack_decode, manifest-independent): the header (magic, format version,
 *   section count, reserved zero, total length equal to the input), the section table (ids in
 *   order, 4-byte aligned, inside the pack, no overlap, no trailing bytes, sizes consistent with
 *   counts, counts within limits.h), strings (contiguous, each within the string data, bounded,
 *   NUL-free valid UTF-8), fields (indices, known type, no duplicate event+name), atoms (field
 *   index or NONE for keywords, op/flags/pattern valid for the field type, int/ip literals parse,
 *   every string pattern compiles in Vectorscan), rules (string indices, code ranges contiguous
 *   and covering the code table exactly, program length) and every program (known opcodes,
 *   reserved bits zero, atom indices in range and on the rule's own event, no stack underflow,
 *   depth <= RF_RULE_STACK_MAX, exactly one result).
 *
 *   Semantics (rf_pack_check, against one manifest): every event a rule uses and every field an
 *   atom of it reads is supplied by the manifest with the same type (the check that would have
 *   stopped Channel File 291), and the Sigma logsource product a rule records, if any, is one
 *   the manifest supplies for the rule's event (a Windows rule never runs on a Linux agent).
 *
 * Cost: every byte is read a bounded number of times (strings and programs are contiguous, so no
 * range can be visited twice; duplicate strings are found with a hash table keyed per
 * verification by SipHash under a random key, so a pack's author cannot make its strings
 * collide), so time is linear in the pack size (expected, whatever the pack), and memory is a
 * fixed multiple of it. Nothing is trusted before it is checked; all
 * offset arithmetic is in 64 bits or overflow-checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <hs/hs.h>

#include "common/util.h"
#include "content/pack.h"
#include "ringfence/limits.h"

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

void rf_pack_free(struct rf_pack *pk)
{
	if (!pk)
		return;
	free(pk->arena);
	free(pk->strings);
	free(pk->fields);
	free(pk->atoms);
	free(pk->rules);
	free(pk->code);
	free(pk->corrs);
	free(pk->corr_words);
	free(pk);
}

static const char *const sec_names[] = {"?",	  "strings", "fields",	     "atoms",
					"rules", "code",    "correlations"};

/* "rule <id> "<title>"" prefix for messages. */
static const char *rule_name(const struct rf_pack *pk, uint32_t ri, char *out, size_t cap)
{
	char id[80], title[120];
	const struct rf_prule *r = &pk->rules[ri];
	const char *sid = rf__pack_str(pk, r->id), *st = rf__pack_str(pk, r->title);

	snprintf(out, cap, "rule %s \"%s\"", rf_diag_quote(id, sizeof(id), sid, strlen(sid)),
		 rf_diag_quote(title, sizeof(title), st, strlen(st)));
	return out;
}

/* A fresh key per verification from the OS. Should the entropy pool not be ready yet (early
 * boot: the call must not block an agent's start), the clocks, the process id and a stack
 * address: still different in every process and unknown when the pack was written. */
void rf__pack_table_key(uint8_t k[16])
{
	uint64_t x[2];

	if (getrandom(k, 16, GRND_NONBLOCK) == 16)
		return;
	x[0] = rf_now_mono_ns() ^ (uint64_t)(uintptr_t)k;
	x[1] = (uint64_t)rf_now_wall() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	memcpy(k, x, 16);
}

int rf__pack_canon_strings(const struct rf_pack *pk, uint32_t **ret, uint64_t *ret_probes)
{
	uint32_t ns = 16, *slots, *canon;
	uint8_t key[16];
	uint64_t probes = 0;

	while (ns < pk->n_strings * 2u)
		ns *= 2;
	slots = calloc(ns, sizeof(*slots));
	canon = calloc(pk->n_strings ? pk->n_strings : 1, sizeof(*canon));
	if (!slots || !canon) {
		free(slots);
		free(canon);
		return -ENOMEM;
	}
	rf__pack_table_key(key);
	for (uint32_t i = 0; i < pk->n_strings; i++) {
		const struct rf_pstr *si = &pk->strings[i];
		uint32_t h = (uint32_t)rf_siphash24(key, si->s, si->len) & (ns - 1);
		canon[i] = i;
		for (probes++; slots[h]; probes++) {
			uint32_t j = slots[h] - 1;
			if (pk->strings[j].len == si->len &&
			    !memcmp(pk->strings[j].s, si->s, si->len)) {
				canon[i] = j;
				break;
			}
			h = (h + 1) & (ns - 1);
		}
		if (canon[i] == i)
			slots[h] = i + 1;
	}
	free(slots);
	*ret = canon;
	if (ret_probes)
		*ret_probes = probes;
	return 0;
}

static int decode_strings(struct rf_pack *pk, const uint8_t *s, uint32_t size, uint32_t count,
			  struct rf_diag *d)
{
	uint64_t idx_size = (uint64_t)count * RF_PACK_STRENT_SIZE;
	int bad = 0;
	char q[64];

	if (idx_size > size)
		return rf_diag_report(
		    d, -EBADMSG,
		    "pack: strings section: %u entries need %llu bytes, section has %u", count,
		    (unsigned long long)idx_size, size);
	const uint8_t *data = s + idx_size;
	uint64_t data_len = size - idx_size, expect = 0;
	pk->strings = calloc(count ? count : 1, sizeof(*pk->strings));
	pk->arena = malloc(data_len + count + 1);
	if (!pk->strings || !pk->arena)
		return -ENOMEM;
	char *a = pk->arena;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t off = get32(s + (size_t)i * 8), len = get32(s + (size_t)i * 8 + 4);
		uint64_t end = (uint64_t)off + len;
		if (off != expect || end > data_len) {
			return rf_diag_report(
			    d, -EBADMSG,
			    "pack: string %u at data offset %u length %u: strings must "
			    "be contiguous within the %llu data bytes (expected offset "
			    "%llu)",
			    i, off, len, (unsigned long long)data_len, (unsigned long long)expect);
		}
		expect = end;
		if (len > RF_PACK_STRING_MAX) {
			bad = rf_diag_report(d, -E2BIG, "pack: string %u is %u bytes (limit %u)", i,
					     len, RF_PACK_STRING_MAX);
			continue;
		}
		if (!rf__pack_utf8_ok(data + off, len)) {
			bad = rf_diag_report(d, -EBADMSG,
					     "pack: string %u ('%s') is not NUL-free valid UTF-8",
					     i, rf_diag_quote(q, sizeof(q), data + off, len));
			continue;
		}
		memcpy(a, data + off, len);
		a[len] = '\0';
		pk->strings[i].s = a;
		pk->strings[i].len = len;
		a += len + 1;
	}
	if (data_len - expect > 3)
		bad = rf_diag_report(
		    d, -EBADMSG,
		    "pack: strings section has %llu unused bytes after the last string",
		    (unsigned long long)(data_len - expect));
	pk->n_strings = count;
	return bad;
}

static const char *type_name(unsigned t)
{
	return t == RF_FT_STRING ? "string" : t == RF_FT_INT ? "int" : t == RF_FT_IP ? "ip" : "?";
}

static int decode_fields(struct rf_pack *pk, const uint8_t *s, uint32_t count, struct rf_diag *d,
			 const uint32_t *canon)
{
	int bad = 0;
	uint32_t ns = 16, *slots;

	pk->fields = calloc(count ? count : 1, sizeof(*pk->fields));
	while (ns < count * 2u)
		ns *= 2;
	slots = calloc(ns, sizeof(*slots));
	if (!pk->fields || !slots) {
		free(slots);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++, s += RF_PACK_FIELD_SIZE) {
		struct rf_pfield *f = &pk->fields[i];
		f->event = get32(s);
		f->name = get32(s + 4);
		f->type = s[8];
		if (f->event >= pk->n_strings || f->name >= pk->n_strings) {
			bad = rf_diag_report(
			    d, -EBADMSG,
			    "pack: field %u: string index %u/%u out of range (%u strings)", i,
			    f->event, f->name, pk->n_strings);
			f->event = f->name = 0;
			continue;
		}
		if (s[9] || s[10] || s[11])
			bad = rf_diag_report(d, -EBADMSG, "pack: field %u: reserved bytes not zero",
					     i);
		if (f->type < RF_FT_STRING || f->type > RF_FT_IP)
			bad = rf_diag_report(d, -EBADMSG, "pack: field %u: unknown type %u", i,
					     f->type);
		if (!pk->strings[f->event].len || !pk->strings[f->name].len) {
			bad = rf_diag_report(d, -EBADMSG,
					     "pack: field %u: empty event or field name", i);
			continue;
		}
		uint32_t ce = canon[f->event], cn = canon[f->name];
		uint32_t h = (ce * 2654435761u ^ cn * 40503u) & (ns - 1);
		while (slots[h]) {
			const struct rf_pfield *g = &pk->fields[slots[h] - 1];
			if (canon[g->event] == ce && canon[g->name] == cn) {
				char q[80];
				bad = rf_diag_report(
				    d, -EBADMSG, "pack: field %u duplicates field %u (%s)", i,
				    slots[h] - 1,
				    rf_diag_quote(q, sizeof(q), pk->strings[f->name].s,
						  pk->strings[f->name].len));
				break;
			}
			h = (h + 1) & (ns - 1);
		}
		if (!slots[h])
			slots[h] = i + 1;
	}
	free(slots);
	pk->n_fields = count;
	return bad;
}

/*
 * Checks that a string pattern is accepted by Vectorscan's parser. Patterns without wildcards
 * become pure literals (every byte \xNN, at most RF_PATTERN_MAX of them), which Vectorscan always
 * accepts, so only patterns with '*' or '?' (and regular expressions) are parsed here: that keeps
 * verification linear and fast. The parser does not predict every resource limit of a full compile,
 * so the agent's load (rf_engine_load) compiles everything for real and refuses the pack if
 * anything fails, and `ringfence content verify` builds the matchers too, so the publisher sees the
 * same result.
 */
static const char *pattern_compiles(const struct rf_patom *a, const struct rf_pstr *p)
{
	char stackbuf[1024], *re = stackbuf;
	size_t cap = RF_GLOB_REGEX_MAX(p->len) + 1;
	hs_expr_info_t *info = NULL;
	hs_compile_error_t *err = NULL;
	const char *why = NULL;

	if (a->op != RF_OP_REGEX && !memchr(p->s, '*', p->len) && !memchr(p->s, '?', p->len))
		return NULL;
	if (cap > sizeof(stackbuf) && !(re = malloc(cap)))
		return "out of memory";
	if (rf__pack_glob_regex(a->op, p->s, p->len, re, cap) < 0) {
		why = "pattern too long";
	} else {
		unsigned fl = rf__pack_hs_flags(a->op, a->flags);
		if (hs_expression_info(re, fl, &info, &err) != HS_SUCCESS) {
			why = "pattern does not compile in Vectorscan";
			hs_free_compile_error(err);
		}
		free(info);
	}
	if (re != stackbuf)
		free(re);
	return why;
}

/* (event, name) -> field index + 1, keyed by canonical string indices (decode_fields has
 * rejected duplicates): lets a fieldref atom find the field its pattern names in O(1). */
struct ftable {
	uint32_t *slots, ns;
};

static int ftable_build(const struct rf_pack *pk, const uint32_t *canon, struct ftable *t)
{
	t->ns = 16;
	while (t->ns < pk->n_fields * 2u)
		t->ns *= 2;
	if (!(t->slots = calloc(t->ns, sizeof(*t->slots))))
		return -ENOMEM;
	for (uint32_t i = 0; i < pk->n_fields; i++) {
		uint32_t ce = canon[pk->fields[i].event], cn = canon[pk->fields[i].name];
		uint32_t h = (ce * 2654435761u ^ cn * 40503u) & (t->ns - 1);
		while (t->slots[h])
			h = (h + 1) & (t->ns - 1);
		t->slots[h] = i + 1;
	}
	return 0;
}

static uint32_t ftable_find(const struct rf_pack *pk, const uint32_t *canon, const struct ftable *t,
			    uint32_t ce, uint32_t cn)
{
	uint32_t h = (ce * 2654435761u ^ cn * 40503u) & (t->ns - 1);

	for (; t->slots[h]; h = (h + 1) & (t->ns - 1)) {
		const struct rf_pfield *g = &pk->fields[t->slots[h] - 1];
		if (canon[g->event] == ce && canon[g->name] == cn)
			return t->slots[h] - 1;
	}
	return RF_PACK_NONE;
}

/* A fieldref atom's other field: in the table, of the atom's own event, a string. */
static const char *resolve_fieldref(const struct rf_pack *pk, const uint32_t *canon,
				    const struct ftable *t, struct rf_patom *a)
{
	uint32_t f =
	    ftable_find(pk, canon, t, canon[pk->fields[a->field].event], canon[a->pattern]);

	if (f == RF_PACK_NONE)
		return "fieldref names a field the pack's field table lacks for the atom's event";
	if (pk->fields[f].type != RF_FT_STRING)
		return "fieldref names a field that is not a string";
	a->ref = f;
	return NULL;
}

static int decode_atoms(struct rf_pack *pk, const uint8_t *s, uint32_t count, struct rf_diag *d,
			const uint32_t *canon)
{
	struct ftable ft = {0};
	int bad = 0;

	pk->atoms = calloc(count ? count : 1, sizeof(*pk->atoms));
	if (!pk->atoms)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++, s += RF_PACK_ATOM_SIZE) {
		struct rf_patom *a = &pk->atoms[i];
		const char *why;
		a->field = get32(s);
		a->op = s[4];
		a->flags = s[5];
		a->pattern = get32(s + 8);
		a->ref = RF_PACK_NONE;
		if (get16(s + 6)) {
			bad = rf_diag_report(d, -EBADMSG, "pack: atom %u: reserved bytes not zero",
					     i);
		}
		if ((a->field != RF_PACK_NONE && a->field >= pk->n_fields) ||
		    a->pattern >= pk->n_strings) {
			bad = rf_diag_report(d, -EBADMSG,
					     "pack: atom %u: field %u or pattern %u out of range",
					     i, a->field, a->pattern);
			a->field = RF_PACK_NONE;
			a->op = 0;
			a->pattern = 0;
			continue;
		}
		const struct rf_pstr *p = &pk->strings[a->pattern];
		unsigned t = a->field == RF_PACK_NONE ? 0 : pk->fields[a->field].type;
		why = rf__pack_atom_problem(t, a->op, a->flags, (const uint8_t *)p->s, p->len);
		if (!why && a->op == RF_OP_FIELDREF) {
			if (!ft.slots && ftable_build(pk, canon, &ft) < 0)
				return -ENOMEM;
			why = resolve_fieldref(pk, canon, &ft, a);
		} else if (!why && (t == RF_FT_STRING || a->op == RF_OP_KEYWORD) &&
			   a->op != RF_OP_EXISTS && a->op != RF_OP_NULL && a->op != RF_OP_CIDR) {
			why = pattern_compiles(a, p);
		}
		if (why) {
			char q[80];
			bad = rf_diag_report(d, -EBADMSG, "pack: atom %u (op %u, pattern '%s'): %s",
					     i, a->op, rf_diag_quote(q, sizeof(q), p->s, p->len),
					     why);
			a->op = 0; /* unusable */
		}
	}
	pk->n_atoms = count;
	free(ft.slots);
	return bad;
}

static int check_program(struct rf_pack *pk, uint32_t ri, const uint32_t *canon, struct rf_diag *d)
{
	const struct rf_prule *r = &pk->rules[ri];
	uint32_t depth = 0, maxd = 0;
	int bad = 0;
	char rn[256];

	for (uint32_t k = 0; k < r->code_len; k++) {
		uint32_t in = pk->code[r->code_off + k], op = RF_INSN_OP(in), arg = RF_INSN_ARG(in);
		switch (op) {
		case RF_I_ATOM:
			if (arg >= pk->n_atoms) {
				return rf_diag_report(
				    d, -EBADMSG, "%s: insn %u: atom %u out of range (%u atoms)",
				    rule_name(pk, ri, rn, sizeof(rn)), k, arg, pk->n_atoms);
			}
			const struct rf_patom *a = &pk->atoms[arg];
			if (a->op == 0)
				bad =
				    rf_diag_report(d, -EBADMSG, "%s: insn %u: uses invalid atom %u",
						   rule_name(pk, ri, rn, sizeof(rn)), k, arg);
			else if (a->field != RF_PACK_NONE &&
				 canon[pk->fields[a->field].event] != canon[r->event])
				bad = rf_diag_report(
				    d, -EBADMSG,
				    "%s: insn %u: atom %u reads field '%s' of event '%s', "
				    "not of the rule's event",
				    rule_name(pk, ri, rn, sizeof(rn)), k, arg,
				    rf__pack_str(pk, pk->fields[a->field].name),
				    rf__pack_str(pk, pk->fields[a->field].event));
			depth++;
			break;
		case RF_I_TRUE:
		case RF_I_FALSE:
			if (arg)
				return rf_diag_report(d, -EBADMSG,
						      "%s: insn %u: reserved bits not zero",
						      rule_name(pk, ri, rn, sizeof(rn)), k);
			depth++;
			break;
		case RF_I_NOT:
		case RF_I_AND:
		case RF_I_OR:
			if (arg)
				return rf_diag_report(d, -EBADMSG,
						      "%s: insn %u: reserved bits not zero",
						      rule_name(pk, ri, rn, sizeof(rn)), k);
			if (depth < (op == RF_I_NOT ? 1u : 2u))
				return rf_diag_report(d, -EBADMSG, "%s: insn %u: stack underflow",
						      rule_name(pk, ri, rn, sizeof(rn)), k);
			if (op != RF_I_NOT)
				depth--;
			break;
		default:
			return rf_diag_report(d, -EBADMSG, "%s: insn %u: unknown opcode %u",
					      rule_name(pk, ri, rn, sizeof(rn)), k, op);
		}
		if (depth > maxd)
			maxd = depth;
		if (maxd > RF_RULE_STACK_MAX)
			return rf_diag_report(d, -EBADMSG, "%s: insn %u: stack deeper than %u",
					      rule_name(pk, ri, rn, sizeof(rn)), k,
					      RF_RULE_STACK_MAX);
	}
	if (depth != 1)
		return rf_diag_report(d, -EBADMSG,
				      "%s: program leaves %u values on the stack (1 needed)",
				      rule_name(pk, ri, rn, sizeof(rn)), depth);
	return bad;
}

static int decode_rules(struct rf_pack *pk, const uint8_t *s, uint32_t count, const uint32_t *canon,
			struct rf_diag *d)
{
	int bad = 0;
	uint64_t expect = 0;

	pk->rules = calloc(count ? count : 1, sizeof(*pk->rules));
	if (!pk->rules)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++, s += RF_PACK_RULE_SIZE) {
		struct rf_prule *r = &pk->rules[i];
		uint32_t v[8];
		for (int k = 0; k < 8; k++)
			v[k] = get32(s + k * 4);
		bool idx_ok = true;
		for (int k = 0; k < 5; k++)
			if (v[k] >= pk->n_strings)
				idx_ok = false;
		if (!idx_ok) {
			bad = rf_diag_report(
			    d, -EBADMSG, "pack: rule %u: string index out of range (%u strings)", i,
			    pk->n_strings);
			memset(v, 0, 5 * sizeof(v[0]));
			if (pk->n_strings == 0) {
				pk->n_rules = i;
				return bad;
			}
		}
		/* The last word, reserved (0) before products were recorded: product index + 1. */
		*r = (struct rf_prule){v[0], v[1], v[2], v[3], v[4], v[5], v[6], RF_PACK_NONE};
		pk->n_rules = i + 1;
		if (v[7] && (v[7] - 1 >= pk->n_strings || !pk->strings[v[7] - 1].len))
			bad = rf_diag_report(d, -EBADMSG,
					     "pack: rule %u: product string index out of range or "
					     "empty (%u strings)",
					     i, pk->n_strings);
		else if (v[7])
			r->product = v[7] - 1;
		if (idx_ok && (!pk->strings[r->id].len || !pk->strings[r->title].len ||
			       !pk->strings[r->event].len))
			bad = rf_diag_report(d, -EBADMSG, "pack: rule %u: empty id, title or event",
					     i);
		if (r->code_off != expect || r->code_len == 0 || r->code_len > RF_RULE_CODE_MAX ||
		    (uint64_t)r->code_off + r->code_len > pk->n_code) {
			char rn[256];
			bad = rf_diag_report(
			    d, r->code_len > RF_RULE_CODE_MAX ? -E2BIG : -EBADMSG,
			    "pack: %s: code range [%u, +%u) invalid: programs must be "
			    "contiguous (next at %llu), 1..%u instructions, within %u",
			    rule_name(pk, i, rn, sizeof(rn)), r->code_off, r->code_len,
			    (unsigned long long)expect, RF_RULE_CODE_MAX, pk->n_code);
			pk->n_rules = i; /* the rest cannot be located safely */
			return bad;
		}
		expect = (uint64_t)r->code_off + r->code_len;
		int rc = check_program(pk, i, canon, d);
		if (rc < 0)
			bad = rc;
	}
	if (expect != pk->n_code)
		bad = rf_diag_report(d, -EBADMSG, "pack: %llu code instructions belong to no rule",
				     (unsigned long long)(pk->n_code - expect));
	return bad;
}

int rf__pack_decode(const uint8_t *p, size_t n, struct rf_pack **ret, struct rf_diag *d)
{
	uint32_t off[RF_PACK_NSECTIONS_V2], size[RF_PACK_NSECTIONS_V2],
	    count[RF_PACK_NSECTIONS_V2];
	/* The correlations' size is checked by rf__pack_decode_corrs (records + words). */
	static const uint32_t entsz[RF_PACK_NSECTIONS_V2] = {
	    0, RF_PACK_FIELD_SIZE, RF_PACK_ATOM_SIZE, RF_PACK_RULE_SIZE, RF_PACK_INSN_SIZE, 0};
	static const uint32_t lim[RF_PACK_NSECTIONS_V2] = {
	    RF_PACK_STRINGS_MAX, RF_PACK_FIELDS_MAX, RF_PACK_ATOMS_MAX,
	    RF_PACK_RULES_MAX,	 RF_PACK_CODE_MAX,   RF_CORR_MAX};
	struct rf_pack *pk = NULL;
	uint32_t *canon = NULL;
	uint64_t prev_end;
	uint32_t nsec;
	int bad = 0, rc;

	if (n > RF_PACK_MAX)
		return rf_diag_report(d, -E2BIG, "pack: %zu bytes (limit %u)", n, RF_PACK_MAX);
	if (n < RF_PACK_PREAMBLE)
		return rf_diag_report(d, -EBADMSG,
				      "pack: %zu bytes, shorter than the %u-byte header", n,
				      RF_PACK_PREAMBLE);
	if (memcmp(p, RF_PACK_MAGIC, 4))
		return rf_diag_report(d, -EBADMSG,
				      "pack: bad magic at byte 0 (not a ringfence pack)");
	if (get16(p + 4) != RF_PACK_VERSION && get16(p + 4) != RF_PACK_VERSION_CORR)
		return rf_diag_report(
		    d, -EBADMSG,
		    "pack: format version %u at byte 4 not supported (this build reads %u and %u)",
		    get16(p + 4), RF_PACK_VERSION, RF_PACK_VERSION_CORR);
	nsec = get16(p + 4) == RF_PACK_VERSION ? RF_PACK_NSECTIONS : RF_PACK_NSECTIONS_V2;
	prev_end = RF_PACK_HEADER_SIZE + (uint64_t)nsec * RF_PACK_SECTENT_SIZE;
	if (n < prev_end)
		return rf_diag_report(d, -EBADMSG,
				      "pack: %zu bytes, shorter than the %llu-byte header", n,
				      (unsigned long long)prev_end);
	if (get16(p + 6) != nsec)
		bad = rf_diag_report(d, -EBADMSG, "pack: %u sections at byte 6 (%u expected)",
				     get16(p + 6), nsec);
	if (get32(p + 8) != n)
		bad = rf_diag_report(
		    d, -EBADMSG,
		    "pack: header total length %u at byte 8 but the pack has %zu bytes",
		    get32(p + 8), n);
	if (get32(p + 12))
		bad = rf_diag_report(d, -EBADMSG, "pack: reserved header bytes 12..15 not zero");
	for (uint32_t i = 0; i < nsec; i++) {
		const uint8_t *e = p + RF_PACK_HEADER_SIZE + i * RF_PACK_SECTENT_SIZE;
		size_t at = RF_PACK_HEADER_SIZE + i * RF_PACK_SECTENT_SIZE;
		uint32_t id = get32(e);
		off[i] = get32(e + 4);
		size[i] = get32(e + 8);
		count[i] = get32(e + 12);
		uint64_t end = (uint64_t)off[i] + size[i];
		if (id != i + 1) {
			bad = rf_diag_report(
			    d, -EBADMSG,
			    "pack: section entry %u at byte %zu has id %u (%u expected)", i, at, id,
			    i + 1);
		}
		if (off[i] % 4 || off[i] != prev_end || end > n) {
			return rf_diag_report(
			    d, -EBADMSG,
			    "pack: %s section [%u, +%u) at byte %zu: misaligned, not "
			    "right after the previous one (which ends at %llu) or past "
			    "the end (%zu)",
			    sec_names[i + 1], off[i], size[i], at, (unsigned long long)prev_end, n);
		}
		prev_end = end;
		if (count[i] > lim[i])
			return rf_diag_report(d, -E2BIG,
					      "pack: %s section has %u entries (limit %u)",
					      sec_names[i + 1], count[i], lim[i]);
		if (entsz[i] && (uint64_t)count[i] * entsz[i] != size[i])
			return rf_diag_report(
			    d, -EBADMSG,
			    "pack: %s section: %u entries of %u bytes do not fill its %u bytes",
			    sec_names[i + 1], count[i], entsz[i], size[i]);
	}
	if (prev_end != n)
		bad = rf_diag_report(d, -EBADMSG, "pack: %llu bytes after the last section",
				     (unsigned long long)(n - prev_end));
	if (bad)
		return bad;
	pk = calloc(1, sizeof(*pk));
	if (!pk)
		return -ENOMEM;
	pk->version = get16(p + 4);
	pk->seq = (uint64_t)get32(p + 16) | (uint64_t)get32(p + 20) << 32;
	pk->total_len = n;
	rc = decode_strings(pk, p + off[0], size[0], count[0], d);
	if (rc < 0)
		goto fail;
	rc = rf__pack_canon_strings(pk, &canon, NULL);
	if (rc < 0)
		goto fail;
	bad = decode_fields(pk, p + off[1], count[1], d, canon);
	if (bad == -ENOMEM)
		goto fail_bad;
	rc = decode_atoms(pk, p + off[2], count[2], d, canon);
	if (rc < 0)
		bad = rc;
	if (bad == -ENOMEM)
		goto fail_bad;
	pk->code = malloc(count[4] ? (size_t)count[4] * 4 : 4);
	if (!pk->code) {
		bad = -ENOMEM;
		goto fail_bad;
	}
	for (uint32_t i = 0; i < count[4]; i++)
		pk->code[i] = get32(p + off[4] + (size_t)i * 4);
	pk->n_code = count[4];
	rc = decode_rules(pk, p + off[3], count[3], canon, d);
	if (rc < 0)
		bad = rc;
	if (bad < 0)
		goto fail_bad;
	if (nsec == RF_PACK_NSECTIONS_V2) {
		rc = rf__pack_decode_corrs(pk, p + off[5], size[5], count[5], canon, d);
		if (rc < 0) {
			bad = rc;
			goto fail_bad;
		}
	}
	free(canon);
	*ret = pk;
	return 0;
fail_bad:
	rc = bad;
fail:
	free(canon);
	rf_pack_free(pk);
	return rc;
}

int rf_pack_open(const uint8_t *p, size_t n, struct rf_pack **ret, struct rf_diag *d)
{
	return rf__pack_decode(p, n, ret, d);
}

void rf_pack_summary(const struct rf_pack *pk, struct rf_pack_summary *ret)
{
	*ret = (struct rf_pack_summary){pk->version,  pk->seq,	   pk->total_len, pk->n_strings,
					pk->n_fields, pk->n_atoms, pk->n_rules,	  pk->n_code,
					pk->n_corr};
}

int rf_pack_rule(const struct rf_pack *pk, size_t i, struct rf_rule_info *ret)
{
	if (i >= pk->n_rules)
		return -ERANGE;
	const struct rf_prule *r = &pk->rules[i];
	*ret = (struct rf_rule_info){rf__pack_str(pk, r->id),	 rf__pack_str(pk, r->title),
				     rf__pack_str(pk, r->level), rf__pack_str(pk, r->author),
				     rf__pack_str(pk, r->event), r->code_len};
	return 0;
}

/* Report why field f, read by rule ri, does not fit m (fst: -1/-2 not supplied, > 0 the
 * manifest's type). Returns -ENOEXEC. */
static int field_problem(const struct rf_pack *pk, uint32_t ri, uint32_t f, int fst,
			 const struct rf_manifest *m, struct rf_diag *d)
{
	const char *agent = rf_manifest_agent(m), *ver = rf_manifest_version(m);
	const char *ev = rf__pack_str(pk, pk->rules[ri].event);
	const char *fname = rf__pack_str(pk, pk->fields[f].name);
	char rn[256], q[RF_NAME_MAX * 4 + 8];

	rf_diag_quote(q, sizeof(q), fname, strlen(fname));
	if (fst < 0)
		return rf_diag_report(d, -ENOEXEC,
				      "%s: field '%s' (input %u) is not supplied by %s %s "
				      "(event %s supplies %zu fields)",
				      rule_name(pk, ri, rn, sizeof(rn)), q, f + 1, agent, ver, ev,
				      rf_manifest_event_nfields(m, ev));
	return rf_diag_report(d, -ENOEXEC,
			      "%s: field '%s' (input %u) is %s in %s %s but the rule reads it as "
			      "%s",
			      rule_name(pk, ri, rn, sizeof(rn)), q, f + 1, type_name((unsigned)fst),
			      agent, ver, type_name(pk->fields[f].type));
}

int rf_pack_check(const struct rf_pack *pk, const struct rf_manifest *m, struct rf_diag *d)
{
	const char *agent = rf_manifest_agent(m), *ver = rf_manifest_version(m);
	int *fstat = NULL, bad = 0;
	uint32_t *stamp = NULL;
	char rn[256], q[RF_NAME_MAX * 4 + 8];

	/* Per field: 0 ok, -1 event missing, -2 field missing, >0 manifest type (mismatch). */
	fstat = calloc(pk->n_fields ? pk->n_fields : 1, sizeof(*fstat));
	stamp = calloc(pk->n_fields ? pk->n_fields : 1, sizeof(*stamp));
	if (!fstat || !stamp) {
		free(fstat);
		free(stamp);
		return -ENOMEM;
	}
	for (uint32_t f = 0; f < pk->n_fields; f++) {
		const char *ev = rf__pack_str(pk, pk->fields[f].event);
		int t;
		if (!rf_manifest_has_event(m, ev))
			fstat[f] = -1;
		else if ((t = rf_manifest_field_type(m, ev, rf__pack_str(pk, pk->fields[f].name))) <
			 0)
			fstat[f] = -2;
		else if (t != pk->fields[f].type)
			fstat[f] = t;
	}
	for (uint32_t ri = 0; ri < pk->n_rules; ri++) {
		const struct rf_prule *r = &pk->rules[ri];
		const char *ev = rf__pack_str(pk, r->event);
		if (!rf_manifest_has_event(m, ev)) {
			bad =
			    rf_diag_report(d, -ENOEXEC, "%s: event '%s' is not supplied by %s %s",
					   rule_name(pk, ri, rn, sizeof(rn)),
					   rf_diag_quote(q, sizeof(q), ev, strlen(ev)), agent, ver);
			continue;
		}
		for (uint32_t k = 0; k < r->code_len; k++) {
			uint32_t in = pk->code[r->code_off + k];
			if (RF_INSN_OP(in) != RF_I_ATOM)
				continue;
			const struct rf_patom *a = &pk->atoms[RF_INSN_ARG(in)];
			/* The field the atom reads, and the one a fieldref names. */
			uint32_t reads[2] = {a->field,
					     a->op == RF_OP_FIELDREF ? a->ref : RF_PACK_NONE};
			for (int j = 0; j < 2; j++) {
				uint32_t f = reads[j];
				if (f == RF_PACK_NONE || fstat[f] == 0 || stamp[f] == ri + 1)
					continue;
				stamp[f] = ri + 1;
				bad = field_problem(pk, ri, f, fstat[f], m, d);
			}
		}
		/* After its fields, so that a rule's first reason stays the field a manifest lacks. */
		const char *has = NULL, *prod = rf__pack_str(pk, r->product);
		if (r->product != RF_PACK_NONE &&
		    !rf__manifest_supplies_product(m, ev, prod, &has)) {
			char qp[RF_NAME_MAX * 4 + 8];
			bad = rf_diag_report(
			    d, -ENOEXEC,
			    "%s: logsource product '%s' is not supplied by %s %s (it supplies %s%s%s "
			    "for event %s)",
			    rule_name(pk, ri, rn, sizeof(rn)),
			    rf_diag_quote(qp, sizeof(qp), prod, strlen(prod)), agent, ver,
			    has ? "product '" : "no product", has ? has : "", has ? "'" : "", ev);
		}
	}
	free(fstat);
	free(stamp);
	if (rf__pack_check_corrs(pk, m, d) < 0)
		bad = -ENOEXEC;
	return bad;
}

int rf_pack_verify(const uint8_t *p, size_t n, const struct rf_manifest *const *ms, size_t n_ms,
		   struct rf_diag *d)
{
	struct rf_pack *pk = NULL;
	int r, first = 0;

	/* Verified against no manifest would prove nothing: refuse rather than pass vacuously. */
	if (n_ms == 0 || !ms)
		return rf_diag_report(d, -EINVAL, "pack verify: no agent manifest to verify against");
	r = rf_pack_open(p, n, &pk, d);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_ms; i++) {
		r = rf_pack_check(pk, ms[i], d);
		if (r < 0 && !first)
			first = r;
	}
	rf_pack_free(pk);
	return first;
}
