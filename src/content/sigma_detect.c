/*
 * The Sigma compiler's detection layer (see sigma_int.h for the compiler's files): a search
 * identifier (a map, a list of maps, keywords) -> a postfix fragment over atoms. Parses each key
 * into its field and modifiers, rejects contradictory modifier sets with a reason, types each
 * value (by the manifest when there is one) and emits its atoms, de-duplicated within the rule.
 * The value transformations (windash, base64, regex, expand) are in sigma_pattern.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "content/pack.h"

#include "content/sigma_int.h"

/* ---- atoms and code ---------------------------------------------------------------------- */

int vec_push(struct ctx *c, struct vec *v, uint32_t insn)
{
	if (v->n >= RF_RULE_CODE_MAX)
		return fail(c, -E2BIG, "program longer than %u instructions", RF_RULE_CODE_MAX);
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 32;
		if (cap > RF_RULE_CODE_MAX)
			cap = RF_RULE_CODE_MAX;
		uint32_t *nv = realloc(v->v, cap * sizeof(*nv));
		if (!nv)
			return oom(c);
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = insn;
	return 0;
}

int vec_append(struct ctx *c, struct vec *dst, const struct vec *src)
{
	for (size_t i = 0; i < src->n; i++) {
		int r = vec_push(c, dst, src->v[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Joining the i-th operand of an n-ary AND/OR (left fold keeps the stack shallow). */
int join(struct ctx *c, struct vec *v, size_t i, enum rf_insn_op op)
{
	return i > 0 ? vec_push(c, v, RF_INSN(op, 0)) : 0;
}

static uint32_t atom_hash(const char *field, enum rf_ftype t, enum rf_atom_op op, uint32_t flags,
			  const uint8_t *p, size_t n)
{
	const uint8_t kind[4] = {0xff, (uint8_t)t, (uint8_t)op, (uint8_t)flags};
	uint32_t h = rf_fnv1a32(field, field ? strlen(field) : 0, RF_FNV1A32_INIT);

	h = rf_fnv1a32(kind, sizeof(kind), h);
	return rf_fnv1a32(p, n, h);
}

static bool atom_same(const struct rf_ir_atom *a, const char *field, enum rf_ftype t,
		      enum rf_atom_op op, uint32_t flags, const uint8_t *p, size_t n)
{
	if (a->type != t || a->op != op || a->flags != flags || a->pattern_len != n)
		return false;
	if (!a->field != !field || (field && strcmp(a->field, field)))
		return false;
	return n == 0 || !memcmp(a->pattern, p, n);
}

/* Push ATOM(index) for this predicate, adding the atom unless the rule already has it. */
int emit_atom(struct ctx *c, struct vec *v, const char *field, enum rf_ftype t, enum rf_atom_op op,
	      uint32_t flags, const uint8_t *p, size_t n)
{
	struct rf_sigma_rule *r = c->r;
	uint32_t slot = atom_hash(field, t, op, flags, p, n) & (ATOM_HASH_SLOTS - 1);

	for (;;) {
		uint32_t idx = c->atom_hash[slot];
		if (!idx)
			break;
		if (atom_same(&r->atoms[idx - 1], field, t, op, flags, p, n))
			return vec_push(c, v, RF_INSN(RF_I_ATOM, idx - 1));
		slot = (slot + 1) & (ATOM_HASH_SLOTS - 1);
	}
	if (r->n_atoms >= RF_SIGMA_ATOMS_MAX)
		return fail(c, -E2BIG, "more than %u atoms (field predicates)", RF_SIGMA_ATOMS_MAX);
	/* The pack's own rule for atoms (limits, types), so a rule that compiles always packs. */
	const char *why =
	    rf__pack_atom_problem(op == RF_OP_KEYWORD ? 0 : (unsigned)t, op, flags, p, n);
	if (why)
		return fail(c, -E2BIG, "%s (field '%s')", why, field ? field : "keyword");
	if (r->n_atoms == r->cap_atoms) {
		size_t cap = r->cap_atoms ? 2 * r->cap_atoms : 16;
		struct rf_ir_atom *na = realloc(r->atoms, cap * sizeof(*na));
		if (!na)
			return oom(c);
		r->atoms = na;
		r->cap_atoms = cap;
	}
	r->atoms[r->n_atoms] = (struct rf_ir_atom){
	    .field = field, .type = t, .op = op, .flags = flags, .pattern = p, .pattern_len = n};
	c->atom_hash[slot] = (uint32_t)++r->n_atoms;
	return vec_push(c, v, RF_INSN(RF_I_ATOM, r->n_atoms - 1));
}

/* Modifiers of the Sigma specification (and pySigma) that ringfence does not implement yet, each
 * with the reason given to the author. */
static const struct {
	const char *name, *why;
} unsupported_mods[] = {
    {"neq", "not supported yet (write 'not' in the condition)"},
    {"minute", "time modifiers are not supported"},
    {"hour", "time modifiers are not supported"},
    {"day", "time modifiers are not supported"},
    {"week", "time modifiers are not supported"},
    {"month", "time modifiers are not supported"},
    {"year", "time modifiers are not supported"},
};

static const struct {
	const char *name;
	unsigned bit;
} known_mods[] = {
    {"contains", M_CONTAINS},
    {"startswith", M_STARTSWITH},
    {"endswith", M_ENDSWITH},
    {"all", M_ALL},
    {"cased", M_CASED},
    {"exists", M_EXISTS},
    {"windash", M_WINDASH},
    {"re", M_RE},
    {"i", M_RE_I},
    {"m", M_RE_M},
    {"s", M_RE_S},
    {"cidr", M_CIDR},
    {"base64", M_BASE64},
    {"base64offset", M_BASE64OFF},
    {"utf16le", M_UTF16LE},
    {"wide", M_UTF16LE},
    {"utf16be", M_UTF16BE},
    {"utf16", M_UTF16},
    {"gt", M_GT},
    {"gte", M_GTE},
    {"lt", M_LT},
    {"lte", M_LTE},
    {"fieldref", M_FIELDREF},
    {"expand", M_EXPAND},
};

static bool field_char_ok(char ch)
{
	return ch > 0x20 && ch < 0x7f && ch != '|';
}

/* Why a set of modifiers (in the order written: utf16* must come before base64*) is
 * contradictory or unsupported together, or NULL. Checked once per key. */
static const char *mods_problem(unsigned m, bool utf_after_b64)
{
	if ((m & M_EXISTS) && m != M_EXISTS)
		return "'exists' cannot be combined with other modifiers";
	if ((m & M_RE_SUB) && !(m & M_RE))
		return "'i', 'm' and 's' are sub-modifiers of 're' and need it";
	if ((m & M_RE) && (m & ~(M_RE | M_RE_SUB | M_ALL | M_CASED)))
		return "'re' can only be combined with 'i', 'm', 's', 'all' (a regular expression "
		       "says itself where it matches)";
	if ((m & M_RE_I) && (m & M_CASED))
		return "'re|i' (case-insensitive) contradicts 'cased'";
	if ((m & M_CIDR) && (m & ~(M_CIDR | M_ALL)))
		return "'cidr' can only be combined with 'all'";
	if (__builtin_popcount(m & M_NUM) > 1)
		return "more than one of gt, gte, lt, lte (write two selections for a range)";
	if ((m & M_NUM) && (m & ~(M_NUM | M_ALL)))
		return "gt, gte, lt and lte can only be combined with 'all'";
	if (__builtin_popcount(m & M_B64) > 1)
		return "'base64' and 'base64offset' together";
	if (__builtin_popcount(m & M_UTF) > 1)
		return "more than one of utf16le (wide), utf16be, utf16";
	if ((m & M_UTF) && !(m & M_B64))
		return "utf16le, utf16be, utf16 and wide must be followed by base64 or "
		       "base64offset "
		       "(rules match text, and UTF-16 bytes are not text)";
	if (utf_after_b64)
		return "utf16le, utf16be, utf16 and wide must come before base64/base64offset (the "
		       "value is encoded to UTF-16 first, then to Base64)";
	if ((m & M_B64) && (m & M_WINDASH))
		return "'windash' with 'base64'/'base64offset' is not supported";
	if ((m & M_EXPAND) && (m & (M_RE | M_CIDR | M_NUM | M_FIELDREF)))
		return "'expand' works on text matching: not with re, cidr, gt/gte/lt/lte or "
		       "fieldref";
	if ((m & M_FIELDREF) && (m & ~(M_FIELDREF | M_ALL | M_CASED)))
		return "'fieldref' can only be combined with 'all' and 'cased' (it compares two "
		       "whole values)";
	if ((m & M_BASE64OFF) && !(m & M_CONTAINS))
		return "'base64offset' needs 'contains' (its fragments are parts of a longer "
		       "Base64 "
		       "text: never a whole value, nor the start or the end of one)";
	return NULL;
}

static int parse_key(struct ctx *c, const struct node *key, const char *ident,
		     struct field_spec *fs)
{
	const char *s = key->s;
	size_t n = key->len, flen = 0;
	bool utf_after_b64 = false;

	qs(fs->qname, sizeof(fs->qname), key);
	while (flen < n && s[flen] != '|')
		flen++;
	for (size_t i = 0; i < flen; i++)
		if (!field_char_ok(s[i]))
			return fail(c, -EBADMSG,
				    "field name '%s' in '%s' has a character other than "
				    "printable ASCII",
				    fs->qname, ident);
	if (flen > RF_NAME_MAX)
		return fail(c, -E2BIG, "field name longer than %u bytes in '%s'", RF_NAME_MAX,
			    ident);
	fs->name = NULL;
	if (flen) {
		fs->name = arena_strndup(&c->r->arena, s, flen);
		if (!fs->name)
			return oom(c);
	}
	fs->mods = 0;
	for (size_t i = flen; i < n;) {
		size_t j = ++i;
		unsigned bit = 0;
		char qm[48];

		while (j < n && s[j] != '|')
			j++;
		const char *mname = s + i;
		size_t mlen = j - i;
		for (size_t k = 0; k < sizeof(known_mods) / sizeof(known_mods[0]); k++)
			if (strlen(known_mods[k].name) == mlen &&
			    !memcmp(known_mods[k].name, mname, mlen))
				bit = known_mods[k].bit;
		rf_diag_quote(qm, sizeof(qm), mname, mlen);
		if (!bit) {
			for (size_t k = 0;
			     k < sizeof(unsupported_mods) / sizeof(unsupported_mods[0]); k++)
				if (strlen(unsupported_mods[k].name) == mlen &&
				    !memcmp(unsupported_mods[k].name, mname, mlen))
					return fail(c, -ENOTSUP,
						    "modifier '%s' is not supported: %s (key '%s' "
						    "in '%s')",
						    qm, unsupported_mods[k].why, fs->qname, ident);
			return fail(c, -ENOTSUP, "unknown modifier '%s' (key '%s' in '%s')", qm,
				    fs->qname, ident);
		}
		if (fs->mods & bit)
			return fail(c, -EBADMSG, "modifier '%s' repeated (key '%s' in '%s')", qm,
				    fs->qname, ident);
		if ((bit & M_POSITION) && (fs->mods & M_POSITION))
			return fail(c, -EBADMSG, "conflicting modifiers (key '%s' in '%s')",
				    fs->qname, ident);
		if ((bit & M_UTF) && (fs->mods & M_B64))
			utf_after_b64 = true;
		fs->mods |= bit;
		i = j;
	}
	const char *why = mods_problem(fs->mods, utf_after_b64);
	if (why)
		return fail(c, -EBADMSG, "%s (key '%s' in '%s')", why, fs->qname, ident);
	if (!fs->name && (fs->mods & ~(M_ALL | M_CASED)))
		return fail(c, -ENOTSUP,
			    "keyword search with modifiers other than all and cased "
			    "(key '%s' in '%s')",
			    fs->qname, ident);
	fs->mtype = 0;
	if (fs->name && c->m) {
		int t = rf_manifest_field_type(c->m, c->event, fs->name);
		if (t < 0) {
			char qa[64], qv[32];
			return fail(c, -ENOENT,
				    "field '%s' is not supplied by %s %s (event %s supplies "
				    "%zu fields)",
				    fs->name,
				    rf_diag_quote(qa, sizeof(qa), rf_manifest_agent(c->m),
						  strlen(rf_manifest_agent(c->m))),
				    rf_diag_quote(qv, sizeof(qv), rf_manifest_version(c->m),
						  strlen(rf_manifest_version(c->m))),
				    c->event, rf_manifest_event_nfields(c->m, c->event));
		}
		fs->mtype = (enum rf_ftype)t;
	}
	return 0;
}

static const char *type_name(enum rf_ftype t)
{
	return t == RF_FT_INT ? "int" : t == RF_FT_IP ? "ip" : "string";
}

/* Canonical decimal text of a plain YAML integer, range-checked to int64. */
static int canon_int(struct ctx *c, const char *s, size_t n, const char *where, const uint8_t **ret,
		     size_t *ret_len)
{
	bool neg = false;
	uint64_t v = 0;
	size_t i = 0;
	char buf[24];
	char q[48];

	if (s[0] == '-' || s[0] == '+')
		neg = s[i++] == '-';
	for (; i < n; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return fail(c, -EINVAL, "integer '%s' out of range (%s)",
				    rf_diag_quote(q, sizeof(q), s, n), where);
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
		return fail(c, -EINVAL, "integer '%s' out of range (%s)",
			    rf_diag_quote(q, sizeof(q), s, n), where);
	if (v == 0)
		neg = false;
	size_t o = sizeof(buf);
	do {
		buf[--o] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		buf[--o] = '-';
	char *out = arena_strndup(&c->r->arena, buf + o, sizeof(buf) - o);
	if (!out)
		return oom(c);
	*ret = (const uint8_t *)out;
	*ret_len = sizeof(buf) - o;
	return 0;
}

/* `A|fieldref: B`: true when the event's fields A and B are both present with equal values
 * (case-insensitive unless `cased`). B must be a field of the same event, and both strings. */
static int emit_fieldref(struct ctx *c, struct vec *v, const struct field_spec *fs,
			 const struct node *val, const char *where)
{
	char qv[64];

	if (val->sk != S_STR || val->len == 0 || val->len > RF_NAME_MAX)
		return fail(c, -EBADMSG, "fieldref value '%s' is not a field name (%s)",
			    qs(qv, sizeof(qv), val), where);
	for (size_t i = 0; i < val->len; i++)
		if (!field_char_ok(val->s[i]) || val->s[i] == '"' || val->s[i] == '\\')
			return fail(c, -EBADMSG,
				    "fieldref value '%s' is not a field name (printable ASCII; %s)",
				    qs(qv, sizeof(qv), val), where);
	if (fs->mtype && fs->mtype != RF_FT_STRING)
		return fail(c, -EINVAL, "fieldref on %s field '%s' (only string fields; %s)",
			    type_name(fs->mtype), fs->name, where);
	if (c->m) {
		int t = rf_manifest_field_type(c->m, c->event, val->s);
		char qa[64], qver[32];
		if (t < 0)
			return fail(c, -ENOENT,
				    "field '%s' (referenced by fieldref) is not supplied by %s %s "
				    "(event %s supplies %zu fields; %s)",
				    qs(qv, sizeof(qv), val),
				    rf_diag_quote(qa, sizeof(qa), rf_manifest_agent(c->m),
						  strlen(rf_manifest_agent(c->m))),
				    rf_diag_quote(qver, sizeof(qver), rf_manifest_version(c->m),
						  strlen(rf_manifest_version(c->m))),
				    c->event, rf_manifest_event_nfields(c->m, c->event), where);
		if (t != RF_FT_STRING)
			return fail(c, -EINVAL,
				    "fieldref to %s field '%s' (only string fields; %s)",
				    type_name((enum rf_ftype)t), qs(qv, sizeof(qv), val), where);
	}
	return emit_atom(c, v, fs->name, RF_FT_STRING, RF_OP_FIELDREF,
			 (fs->mods & M_CASED) ? RF_ATOM_CASED : 0, (const uint8_t *)val->s,
			 val->len);
}

/* One value of a field (or keyword) entry: push its atom(s). */
int emit_value(struct ctx *c, struct vec *v, const struct field_spec *fs, const struct node *val,
	       const char *ident)
{
	char where[224], qv[64];
	enum rf_atom_op op = RF_OP_EQ;
	uint32_t flags = (fs->mods & M_CASED) ? RF_ATOM_CASED : 0;
	const uint8_t *pat;
	size_t plen;
	unsigned m = fs->mods;

	snprintf(where, sizeof(where), "key '%s' in '%s'", fs->qname, ident);
	if (val->kind != N_SCALAR)
		return fail(c, -EBADMSG, "value at line %u is not a scalar (%s)", val->line, where);
	if (m & M_CONTAINS)
		op = RF_OP_CONTAINS;
	else if (m & M_STARTSWITH)
		op = RF_OP_STARTSWITH;
	else if (m & M_ENDSWITH)
		op = RF_OP_ENDSWITH;

	switch (val->sk) {
	case S_BOOL:
		/* pySigma reads an unquoted true/false as a boolean; on a text field it matches the
		 * text the event carries ("true"/"false", any case, as Sysmon writes Initiated). */
		if (!fs->name)
			return fail(c, -EBADMSG,
				    "boolean keyword '%s' (quote it to search it as text; %s)",
				    qs(qv, sizeof(qv), val), where);
		if (m & ~(M_ALL))
			return fail(c, -EBADMSG,
				    "boolean value '%s' with a modifier (quote it to match it as "
				    "text; %s)",
				    qs(qv, sizeof(qv), val), where);
		if (fs->mtype && fs->mtype != RF_FT_STRING)
			return fail(c, -EINVAL, "boolean value on %s field '%s' (%s)",
				    type_name(fs->mtype), fs->name, where);
		pat = (const uint8_t *)(val->bval ? "true" : "false");
		return emit_atom(c, v, fs->name, RF_FT_STRING, RF_OP_EQ, 0, pat, val->bval ? 4 : 5);
	case S_NUMX:
		return fail(c, -ENOTSUP,
			    "number '%s' is not a plain decimal integer (quote it to "
			    "match it as text; %s)",
			    qs(qv, sizeof(qv), val), where);
	case S_NULL:
		if (!fs->name)
			return fail(c, -EBADMSG, "null keyword (%s)", where);
		if (m & ~M_ALL)
			return fail(c, -EBADMSG, "null value with a modifier (%s)", where);
		if (fs->mtype && fs->mtype != RF_FT_STRING)
			return fail(c, -EINVAL,
				    "null test on %s field '%s' (only string fields can "
				    "be null; %s)",
				    type_name(fs->mtype), fs->name, where);
		return emit_atom(c, v, fs->name, RF_FT_STRING, RF_OP_NULL, 0, NULL, 0);
	case S_INT:
	case S_STR:
		break;
	}
	if (m & M_EXPAND)
		return emit_expand(c, v, fs, val, ident, where);
	if (m & M_FIELDREF)
		return emit_fieldref(c, v, fs, val, where);
	if (has_nul(val))
		return fail(c, -EBADMSG, "value at line %u holds a NUL byte (%s)", val->line,
			    where);
	if (val->len > RF_SIGMA_PATTERN_MAX)
		return fail(c, -E2BIG, "value at line %u longer than %u bytes (%s)", val->line,
			    RF_SIGMA_PATTERN_MAX, where);
	pat = (const uint8_t *)val->s;
	plen = val->len;

	if (!fs->name)
		return emit_atom(c, v, NULL, RF_FT_STRING, RF_OP_KEYWORD, flags, pat, plen);

	enum rf_ftype t = fs->mtype;
	if (!t) /* no manifest: cidr means an address, gt.. and a YAML integer a number (pySigma) */
		t = (m & M_CIDR)					 ? RF_FT_IP
		    : (m & M_NUM) || (val->sk == S_INT && !(m & ~M_ALL)) ? RF_FT_INT
									 : RF_FT_STRING;
	if ((m & M_CIDR) && t == RF_FT_INT)
		return fail(c, -EINVAL,
			    "'cidr' on int field '%s' (cidr needs an ip or string field; %s)",
			    fs->name, where);
	if ((m & M_CIDR) && t == RF_FT_STRING) {
		/* A text field holding an address (Windows' IpAddress: "-" when there is none): the
		 * engine parses the value, and a value that is not an address does not match. */
		unsigned char addr[16];
		unsigned bits;
		if (!rf__pack_parse_cidr(val->s, val->len, addr, &bits))
			return fail(c, -EINVAL,
				    "value '%s' is not an IPv4/IPv6 CIDR prefix such as 10.0.0.0/8 "
				    "(%s)",
				    qs(qv, sizeof(qv), val), where);
		return emit_atom(c, v, fs->name, RF_FT_STRING, RF_OP_CIDR, 0, pat, plen);
	}
	if ((m & M_NUM) && t != RF_FT_INT)
		return fail(c, -EINVAL,
			    "gt/gte/lt/lte on %s field '%s' (they need an int field; %s)",
			    type_name(t), fs->name, where);
	switch (t) {
	case RF_FT_INT: {
		if (m & ~(M_NUM | M_ALL))
			return fail(c, -EINVAL,
				    "modifier on int field '%s' (only numbers and gt, gte, lt, "
				    "lte; %s)",
				    fs->name, where);
		if (!is_plain_decimal(val->s, val->len) || ((m & M_NUM) && val->sk != S_INT))
			return fail(c, -EINVAL,
				    "value '%s' is not an integer but field '%s' is int (%s)",
				    qs(qv, sizeof(qv), val), fs->name, where);
		int r = canon_int(c, val->s, val->len, where, &pat, &plen);
		if (r < 0)
			return r;
		op = (m & M_GT)	   ? RF_OP_GT
		     : (m & M_GTE) ? RF_OP_GTE
		     : (m & M_LT)  ? RF_OP_LT
		     : (m & M_LTE) ? RF_OP_LTE
				   : RF_OP_EQ;
		return emit_atom(c, v, fs->name, RF_FT_INT, op, 0, pat, plen);
	}
	case RF_FT_IP: {
		unsigned char addr[16];
		unsigned bits;
		if (m & M_CIDR) {
			if (!rf__pack_parse_cidr(val->s, val->len, addr, &bits))
				return fail(c, -EINVAL,
					    "value '%s' is not an IPv4/IPv6 CIDR prefix such as "
					    "10.0.0.0/8 (%s)",
					    qs(qv, sizeof(qv), val), where);
			return emit_atom(c, v, fs->name, RF_FT_IP, RF_OP_CIDR, 0, pat, plen);
		}
		if (m & ~M_ALL)
			return fail(c, -EINVAL,
				    "modifier on ip field '%s' (only exact addresses and cidr; %s)",
				    fs->name, where);
		if (inet_pton(AF_INET, val->s, addr) != 1 && inet_pton(AF_INET6, val->s, addr) != 1)
			return fail(c, -EINVAL,
				    "value '%s' is not an IP address but field '%s' is ip "
				    "(%s)",
				    qs(qv, sizeof(qv), val), fs->name, where);
		return emit_atom(c, v, fs->name, RF_FT_IP, RF_OP_EQ, 0, pat, plen);
	}
	default:
		if (m & M_RE) {
			flags = ((m & M_RE_I) ? 0 : RF_ATOM_CASED) |
				((m & M_RE_M) ? RF_ATOM_MULTILINE : 0) |
				((m & M_RE_S) ? RF_ATOM_DOTALL : 0);
			int r = check_regex(c, val, flags, where);
			if (r < 0)
				return r;
			return emit_atom(c, v, fs->name, RF_FT_STRING, RF_OP_REGEX, flags, pat,
					 plen);
		}
		if (m & M_B64)
			return emit_base64(c, v, fs, op, flags, val, where);
		if (m & M_WINDASH)
			return emit_windash(c, v, fs, op, flags, pat, plen, where);
		return emit_atom(c, v, fs->name, RF_FT_STRING, op, flags, pat, plen);
	}
}

/* One `key: value(s)` entry of a search map. */
static int emit_entry(struct ctx *c, struct vec *v, const struct node *key, const struct node *val,
		      const char *ident)
{
	struct field_spec fs;
	int r = parse_key(c, key, ident, &fs);

	if (r < 0)
		return r;
	if (fs.mods & M_EXISTS) {
		if (val->kind != N_SCALAR || val->sk != S_BOOL)
			return fail(c, -EBADMSG, "'exists' needs true or false (key '%s' in '%s')",
				    fs.qname, ident);
		if (fs.mtype && fs.mtype != RF_FT_STRING)
			return fail(c, -EINVAL, "'exists' on %s field '%s' (key '%s' in '%s')",
				    type_name(fs.mtype), fs.name, fs.qname, ident);
		r = emit_atom(c, v, fs.name, RF_FT_STRING, RF_OP_EXISTS, 0, NULL, 0);
		if (r >= 0 && !val->bval)
			r = vec_push(c, v, RF_INSN(RF_I_NOT, 0));
		return r;
	}
	if (val->kind == N_MAP)
		return fail(c, -EBADMSG, "value of '%s' in '%s' is a mapping", fs.qname, ident);
	if (val->kind == N_SCALAR)
		return emit_value(c, v, &fs, val, ident);
	if (val->nkids == 0)
		return fail(c, -EBADMSG, "empty value list (key '%s' in '%s')", fs.qname, ident);
	for (size_t i = 0; i < val->nkids; i++) {
		r = emit_value(c, v, &fs, val->kids[i], ident);
		if (r >= 0)
			r = join(c, v, i, (fs.mods & M_ALL) ? RF_I_AND : RF_I_OR);
		if (r < 0)
			return r;
	}
	return 0;
}

static int emit_map(struct ctx *c, struct vec *v, const struct node *m, const char *ident)
{
	int r = check_map(c, m, ident);

	if (r < 0)
		return r;
	if (m->nkids == 0)
		return fail(c, -EBADMSG, "search identifier '%s' has an empty mapping", ident);
	for (size_t i = 0; i + 1 < m->nkids; i += 2) {
		r = emit_entry(c, v, m->kids[i], m->kids[i + 1], ident);
		if (r >= 0)
			r = join(c, v, i / 2, RF_I_AND);
		if (r < 0)
			return r;
	}
	return 0;
}

int compile_ident(struct ctx *c, struct ident *id, const struct node *val)
{
	char ident[64];
	struct vec *v = &id->code;
	int r;

	qs(ident, sizeof(ident), id->name);
	if (val->kind == N_MAP)
		return emit_map(c, v, val, ident);
	if (val->kind == N_SCALAR) { /* a single keyword */
		struct field_spec fs = {.name = NULL};
		snprintf(fs.qname, sizeof(fs.qname), "%s", "(keywords)");
		return emit_value(c, v, &fs, val, ident);
	}
	if (val->nkids == 0)
		return fail(c, -EBADMSG, "search identifier '%s' is an empty list", ident);
	bool maps = val->kids[0]->kind == N_MAP;
	for (size_t i = 0; i < val->nkids; i++) {
		const struct node *it = val->kids[i];

		if ((it->kind == N_MAP) != maps || it->kind == N_SEQ)
			return fail(c, -EBADMSG,
				    "search identifier '%s' mixes lists, mappings and "
				    "values (line %u)",
				    ident, it->line);
		if (maps) {
			r = emit_map(c, v, it, ident);
		} else {
			struct field_spec fs = {.name = NULL};
			snprintf(fs.qname, sizeof(fs.qname), "%s", "(keywords)");
			r = emit_value(c, v, &fs, it, ident);
		}
		if (r >= 0)
			r = join(c, v, i, RF_I_OR);
		if (r < 0)
			return r;
	}
	return 0;
}
