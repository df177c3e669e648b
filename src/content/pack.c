/*
 * The pack writer (the builder declared in ir.h) and the helpers the writer and the verifier
 * share: UTF-8 validation, the per-atom rules (which op/flags/pattern a field type allows), int/ip
 * literal parsing and the glob -> regex translation. Sharing them means the writer can never emit
 * a pack its own verifier would reject for structure; the verifier still trusts nothing it reads.
 *
 * The builder interns strings, fields and atoms (hash tables over their encoded bytes) so each
 * appears once in the pack, and rewrites each rule's ATOM arguments from rule-local to pack-wide
 * atom indices. It validates a rule completely before changing any table.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>

#include "common/util.h"
#include "content/pack.h"
#include "ringfence/limits.h"

/* ---- shared checks ---------------------------------------------------------------------- */

bool rf__pack_utf8_ok(const uint8_t *s, size_t n)
{
	return n == 0 || (!memchr(s, 0, n) && rf_utf8_prefix(s, n, NULL) == n);
}

bool rf__pack_parse_int(const char *s, size_t n, int64_t *ret)
{
	size_t i = 0;
	bool neg = false;
	uint64_t v = 0, lim;

	if (n > 0 && s[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == n || n > 21)
		return false;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned dg = (unsigned)(s[i] - '0');
		if (v > (lim - dg) / 10)
			return false;
		v = v * 10 + dg;
	}
	*ret = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

bool rf__pack_parse_ip(const char *s, size_t n, uint8_t ret[16])
{
	char buf[64];
	uint8_t a[16];

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (memchr(buf, '\0', n))
		return false;
	if (inet_pton(AF_INET, buf, a) == 1) {
		memset(ret, 0, 10);
		ret[10] = ret[11] = 0xff;
		memcpy(ret + 12, a, 4);
		return true;
	}
	if (inet_pton(AF_INET6, buf, a) == 1) {
		memcpy(ret, a, 16);
		return true;
	}
	return false;
}

bool rf__pack_parse_cidr(const char *s, size_t n, uint8_t ret[16], unsigned *ret_bits)
{
	const char *slash = memchr(s, '/', n);
	size_t al, bl;
	unsigned bits = 0;
	uint8_t a[16];

	if (!slash)
		return false;
	al = (size_t)(slash - s);
	bl = n - al - 1;
	if (bl == 0 || bl > 3 || !rf__pack_parse_ip(s, al, a))
		return false;
	for (size_t i = 0; i < bl; i++) {
		char ch = slash[1 + i];
		if (ch < '0' || ch > '9' || (i == 0 && ch == '0' && bl > 1))
			return false;
		bits = bits * 10 + (unsigned)(ch - '0');
	}
	bool v4 = memchr(s, ':', al) == NULL;
	if (bits > (v4 ? 32u : 128u))
		return false;
	if (v4)
		bits += 96; /* a.b.c.d is ::ffff:a.b.c.d */
	for (unsigned i = 0; i < 16; i++) { /* clear the host bits */
		unsigned keep = bits > i * 8 ? (bits - i * 8 >= 8 ? 8 : bits - i * 8) : 0;
		a[i] &= (uint8_t)(0xff00u >> keep);
	}
	memcpy(ret, a, 16);
	*ret_bits = bits;
	return true;
}

bool rf__pack_ip_in(const uint8_t ip[16], const uint8_t net[16], unsigned bits)
{
	for (unsigned i = 0; i < 16 && bits; i++) {
		unsigned keep = bits >= 8 ? 8 : bits;
		uint8_t mask = (uint8_t)(0xff00u >> keep);
		if ((ip[i] & mask) != net[i])
			return false;
		bits -= keep;
	}
	return true;
}

const char *rf__pack_regex_problem(const uint8_t *p, size_t n)
{
	bool cls = false; /* inside [...] */

	if (n == 0)
		return "empty regular expression";
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i], nx = i + 1 < n ? p[i + 1] : 0;
		if (c == 0)
			return "NUL byte in the regular expression";
		if (c == '\\') {
			if (nx == 'Q') { /* \Q...\E is literal text */
				for (i += 2; i + 1 < n && !(p[i] == '\\' && p[i + 1] == 'E'); i++)
					;
				i++;
				continue;
			}
			if (!cls && nx >= '1' && nx <= '9')
				return "back-reference (\\1-\\9) cannot run in linear time";
			if (nx == 'g' || nx == 'k')
				return "back-reference (\\g, \\k) cannot run in linear time";
			i++;
			continue;
		}
		if (cls) {
			if (c == ']')
				cls = false;
			continue;
		}
		if (c == '[') {
			cls = true;
			if (nx == '^')
				i++;
			if (i + 1 < n && p[i + 1] == ']') /* a leading ] is literal */
				i++;
			continue;
		}
		if ((c == '*' || c == '+' || c == '?' || c == '}') && nx == '+')
			return "possessive quantifier (*+, ++, ?+, {n}+) is not supported";
		if (c != '(' || nx != '?')
			continue;
		const uint8_t *q = p + i + 2;
		size_t left = n - i - 2;
		if (left >= 1 && (q[0] == '=' || q[0] == '!'))
			return "lookahead (?= (?! cannot run in linear time";
		if (left >= 2 && q[0] == '<' && (q[1] == '=' || q[1] == '!'))
			return "lookbehind (?<= (?<! cannot run in linear time";
		if (left >= 1 && q[0] == '>')
			return "atomic group (?> is not supported";
		if (left >= 1 && q[0] == '(')
			return "conditional group (?( is not supported";
		if (left >= 1 && (q[0] == 'R' || q[0] == '&' || (q[0] >= '0' && q[0] <= '9') ||
				  q[0] == '+' || q[0] == '-'))
			return "recursion or subroutine call (?R (?1 (?& cannot run in linear time";
		if (left >= 2 && q[0] == 'P' && (q[1] == '=' || q[1] == '>'))
			return "named back-reference or subroutine (?P= (?P> cannot run in linear time";
	}
	return NULL;
}

unsigned rf__pack_hs_flags(unsigned op, unsigned flags)
{
	unsigned f = HS_FLAG_SINGLEMATCH | ((flags & RF_ATOM_CASED) ? 0 : HS_FLAG_CASELESS);

	if (op != RF_OP_REGEX)
		return f | HS_FLAG_DOTALL;
	return f | HS_FLAG_ALLOWEMPTY | ((flags & RF_ATOM_DOTALL) ? HS_FLAG_DOTALL : 0) |
	       ((flags & RF_ATOM_MULTILINE) ? HS_FLAG_MULTILINE : 0);
}

/* Unescaped '*' and '?' in a glob (the escapes as in ir.h). */
static size_t glob_wildcards(const uint8_t *p, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' && i + 1 < n &&
		    (p[i + 1] == '*' || p[i + 1] == '?' || p[i + 1] == '\\'))
			i++;
		else if (p[i] == '*' || p[i] == '?')
			w++;
	}
	return w;
}

_Static_assert(RF_CORR_WINDOW_MAX == 1024, "the message below names the value");
const char *rf__pack_corr_cond_problem(unsigned type, unsigned n_refs, uint32_t lo, uint32_t hi)
{
	if (hi != RF_CORR_NO_MAX && lo > hi)
		return "condition: no count satisfies it (empty range)";
	switch (type) {
	case RF_CORR_EVENT_COUNT:
	case RF_CORR_VALUE_COUNT:
		if (lo > RF_CORR_WINDOW_MAX || (hi != RF_CORR_NO_MAX && hi >= RF_CORR_WINDOW_MAX))
			return "condition: a count over 1024 (RF_CORR_WINDOW_MAX, the window "
			       "cap) cannot be decided exactly";
		return NULL;
	case RF_CORR_TEMPORAL:
		if (lo < 1 || lo > n_refs || (hi != RF_CORR_NO_MAX && hi > n_refs))
			return "condition: a temporal count is of the referred rules (1..their "
			       "number)";
		return NULL;
	case RF_CORR_TEMPORAL_ORDERED:
		if (lo != n_refs || hi != RF_CORR_NO_MAX)
			return "condition: temporal_ordered needs every referred rule, in order";
		return NULL;
	default:
		return "unknown correlation type";
	}
}

const char *rf__pack_atom_problem(unsigned t, unsigned op, unsigned flags, const uint8_t *pat,
				  size_t n)
{
	int64_t iv;
	uint8_t ip[16];

	unsigned bits;

	if (flags & ~RF_ATOM_FLAGS_KNOWN)
		return "unknown flag bits";
	if (op < RF_OP_EQ || op > RF_OP_MAX)
		return "unknown operator";
	if ((flags & (RF_ATOM_MULTILINE | RF_ATOM_DOTALL)) && op != RF_OP_REGEX)
		return "multiline/dotall flag on an atom that is not a regular expression";
	if (op == RF_OP_KEYWORD)
		return t != 0		    ? "keyword atom names a field"
		       : n > RF_PATTERN_MAX ? "pattern longer than RF_PATTERN_MAX (1024 bytes)"
		       : glob_wildcards(pat, n) > RF_PATTERN_WILDCARDS_MAX
			   ? "more than RF_PATTERN_WILDCARDS_MAX (64) wildcards in the pattern"
			   : NULL;
	if (t == 0)
		return "atom has no field";
	if (op == RF_OP_EXISTS || op == RF_OP_NULL)
		return n == 0 ? NULL : "exists/null atom carries a pattern";
	if (op == RF_OP_FIELDREF) {
		if (t != RF_FT_STRING)
			return "fieldref on a field that is not a string";
		if (n == 0 || n > RF_NAME_MAX)
			return "fieldref names no field (or a name over RF_NAME_MAX bytes)";
		for (size_t i = 0; i < n; i++)
			if (pat[i] <= 0x20 || pat[i] >= 0x7f || pat[i] == '"' || pat[i] == '\\')
				return "fieldref pattern is not a field name (printable ASCII)";
		return NULL;
	}
	if (n > RF_PATTERN_MAX)
		return "pattern longer than RF_PATTERN_MAX (1024 bytes)";
	if (t == RF_FT_STRING && op == RF_OP_REGEX)
		return rf__pack_regex_problem(pat, n);
	if (t == RF_FT_STRING && glob_wildcards(pat, n) > RF_PATTERN_WILDCARDS_MAX)
		return "more than RF_PATTERN_WILDCARDS_MAX (64) wildcards in the pattern";
	switch (t) {
	case RF_FT_STRING:
		if (op == RF_OP_CIDR) /* the value is parsed as an address at run time */
			return rf__pack_parse_cidr((const char *)pat, n, ip, &bits)
				   ? NULL
				   : "pattern is not an IPv4/IPv6 CIDR prefix";
		return op <= RF_OP_ENDSWITH ? NULL : "operator not allowed on a string field";
	case RF_FT_INT:
		if (op != RF_OP_EQ && (op < RF_OP_GT || op > RF_OP_LTE))
			return "only =, >, >=, <, <= are allowed on an int field";
		if (!rf__pack_parse_int((const char *)pat, n, &iv))
			return "pattern is not a decimal integer";
		return NULL;
	case RF_FT_IP:
		if (op == RF_OP_CIDR)
			return rf__pack_parse_cidr((const char *)pat, n, ip, &bits)
				   ? NULL
				   : "pattern is not an IPv4/IPv6 CIDR prefix";
		if (op != RF_OP_EQ)
			return "only equality and cidr are allowed on an ip field";
		if (!rf__pack_parse_ip((const char *)pat, n, ip))
			return "pattern is not an IPv4/IPv6 address";
		return NULL;
	default:
		return "unknown field type";
	}
}

int rf__pack_glob_regex(uint8_t op, const char *pat, size_t n, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (cap < RF_GLOB_REGEX_MAX(n))
		return -E2BIG;
	if (op == RF_OP_REGEX) { /* already a regular expression (rf__pack_regex_problem) */
		memcpy(out, pat, n);
		out[n] = '\0';
		return (int)n;
	}
	/* A contains (or keyword) glob of only '*' (or empty) matches every value, the empty one
	 * too; Vectorscan refuses an unanchored pattern that matches an empty buffer, so anchor it
	 * (same meaning: every value has a start). */
	bool only_stars = op == RF_OP_CONTAINS || op == RF_OP_KEYWORD;
	for (size_t i = 0; only_stars && i < n; i++)
		only_stars = pat[i] == '*';
	if (op == RF_OP_EQ || op == RF_OP_STARTSWITH || only_stars) {
		memcpy(out, "\\A", 2);
		o = 2;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)pat[i];
		if (c == '*') {
			out[o++] = '.';
			out[o++] = '*';
			continue;
		}
		if (c == '?') {
			out[o++] = '.';
			continue;
		}
		if (c == '\\' && i + 1 < n &&
		    (pat[i + 1] == '*' || pat[i + 1] == '?' || pat[i + 1] == '\\'))
			c = (uint8_t)pat[++i];
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 15];
	}
	if (op == RF_OP_EQ || op == RF_OP_ENDSWITH) {
		memcpy(out + o, "\\z", 2);
		o += 2;
	}
	out[o] = '\0';
	return (int)o;
}

/* ---- the builder ------------------------------------------------------------------------ */

/* Interns byte strings: items live in one buffer; a hash table maps content -> index. */
struct interner {
	uint8_t *data;
	size_t len, cap;
	uint32_t *off, *ilen; /* per item */
	uint32_t n, itemcap;
	uint32_t *slots; /* index + 1, 0 = empty */
	uint32_t nslots;
};

static void interner_free(struct interner *t)
{
	free(t->data);
	free(t->off);
	free(t->ilen);
	free(t->slots);
}

static int interner_grow_slots(struct interner *t)
{
	uint32_t ns = t->nslots ? t->nslots * 2 : 1024;
	uint32_t *s = calloc(ns, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t h =
		    rf_fnv1a32(t->data + t->off[i], t->ilen[i], RF_FNV1A32_INIT) & (ns - 1);
		while (s[h])
			h = (h + 1) & (ns - 1);
		s[h] = i + 1;
	}
	free(t->slots);
	t->slots = s;
	t->nslots = ns;
	return 0;
}

static int intern(struct interner *t, const void *p, size_t n, uint32_t limit, uint32_t *ret)
{
	uint32_t h;

	if (t->n * 2 >= t->nslots && interner_grow_slots(t) < 0)
		return -ENOMEM;
	h = rf_fnv1a32(p, n, RF_FNV1A32_INIT) & (t->nslots - 1);
	while (t->slots[h]) {
		uint32_t i = t->slots[h] - 1;
		if (t->ilen[i] == n && !memcmp(t->data + t->off[i], p, n)) {
			*ret = i;
			return 0;
		}
		h = (h + 1) & (t->nslots - 1);
	}
	if (t->n >= limit)
		return -E2BIG;
	if (t->len + n > UINT32_MAX)
		return -E2BIG;
	if (t->len + n > t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 4096;
		while (nc < t->len + n)
			nc *= 2;
		uint8_t *d = realloc(t->data, nc);
		if (!d)
			return -ENOMEM;
		t->data = d;
		t->cap = nc;
	}
	if (t->n == t->itemcap) {
		uint32_t nc = t->itemcap ? t->itemcap * 2 : 256;
		uint32_t *o = realloc(t->off, nc * sizeof(*o));
		if (!o)
			return -ENOMEM;
		t->off = o;
		uint32_t *l = realloc(t->ilen, nc * sizeof(*l));
		if (!l)
			return -ENOMEM;
		t->ilen = l;
		t->itemcap = nc;
	}
	if (n)
		memcpy(t->data + t->len, p, n);
	t->off[t->n] = (uint32_t)t->len;
	t->ilen[t->n] = (uint32_t)n;
	t->len += n;
	t->slots[h] = t->n + 1;
	*ret = t->n++;
	return 0;
}

struct rf_pack_builder {
	struct interner strings, fields, atoms;
	struct rf_prule *rules;
	size_t n_rules, cap_rules;
	uint32_t *code;
	size_t n_code, cap_code;
	uint8_t *corrs; /* serialised correlation records (RF_PACK_CORR_SIZE each) */
	size_t n_corr;
	uint32_t *cwords;
	size_t n_cwords;
};

int rf_pack_builder_new(struct rf_pack_builder **ret)
{
	struct rf_pack_builder *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	*ret = b;
	return 0;
}

void rf_pack_builder_free(struct rf_pack_builder *b)
{
	if (!b)
		return;
	interner_free(&b->strings);
	interner_free(&b->fields);
	interner_free(&b->atoms);
	free(b->rules);
	free(b->code);
	free(b->corrs);
	free(b->cwords);
	free(b);
}

size_t rf_pack_builder_count(const struct rf_pack_builder *b)
{
	return b->n_rules;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static int str_check(const char *s, const char *what, const char *rid, struct rf_diag *d)
{
	char q[80];

	if (!s)
		return rf_diag_report(d, -EINVAL, "rule '%s': %s is missing", rid, what);
	size_t n = strlen(s);
	if (n > RF_PACK_STRING_MAX)
		return rf_diag_report(d, -E2BIG, "rule '%s': %s is %zu bytes (limit %u)", rid, what,
				      n, RF_PACK_STRING_MAX);
	if (!rf__pack_utf8_ok((const uint8_t *)s, n))
		return rf_diag_report(d, -EINVAL, "rule '%s': %s '%s' is not valid UTF-8", rid,
				      what, rf_diag_quote(q, sizeof(q), s, n));
	return 0;
}

static int add_str(struct rf_pack_builder *b, const void *s, size_t n, uint32_t *ret)
{
	return intern(&b->strings, s, n, RF_PACK_STRINGS_MAX, ret);
}

int rf_pack_builder_add(struct rf_pack_builder *b, const struct rf_ir_rule *r, struct rf_diag *d)
{
	return rf_pack_builder_add_product(b, r, NULL, d);
}

int rf_pack_builder_add_product(struct rf_pack_builder *b, const struct rf_ir_rule *r,
				const char *product, struct rf_diag *d)
{
	char rid[80];
	int rc;
	uint32_t stack = 0, sid[5], prod = RF_PACK_NONE, *amap = NULL;

	if (!r || !r->id || !*r->id)
		return rf_diag_report(d, -EINVAL, "rule without an id");
	rf_diag_quote(rid, sizeof(rid), r->id, strlen(r->id));
	if ((rc = str_check(r->id, "id", rid, d)) < 0 ||
	    (rc = str_check(r->title, "title", rid, d)) < 0 ||
	    (rc = str_check(r->level ? r->level : "", "level", rid, d)) < 0 ||
	    (rc = str_check(r->author ? r->author : "", "author", rid, d)) < 0 ||
	    (rc = str_check(r->event, "event", rid, d)) < 0 ||
	    (rc = str_check(product ? product : "", "product", rid, d)) < 0)
		return rc;
	if (!*r->event)
		return rf_diag_report(d, -EINVAL, "rule '%s': event is empty", rid);
	if (r->n_code == 0 || r->n_code > RF_RULE_CODE_MAX)
		return rf_diag_report(d, r->n_code ? -E2BIG : -EINVAL,
				      "rule '%s': program has %zu instructions (1..%u allowed)",
				      rid, r->n_code, RF_RULE_CODE_MAX);
	if (r->n_atoms > RF_PACK_ATOMS_MAX || (r->n_atoms && !r->atoms) || !r->code)
		return rf_diag_report(d, -EINVAL, "rule '%s': bad atom or code arrays", rid);
	if (b->n_rules >= RF_PACK_RULES_MAX)
		return rf_diag_report(d, -E2BIG, "rule '%s': pack already has %u rules (limit)",
				      rid, RF_PACK_RULES_MAX);
	if (b->n_code + r->n_code > RF_PACK_CODE_MAX)
		return rf_diag_report(d, -E2BIG, "rule '%s': pack code over %u instructions", rid,
				      RF_PACK_CODE_MAX);
	/* Validate atoms and the program before touching any table. */
	for (size_t i = 0; i < r->n_atoms; i++) {
		const struct rf_ir_atom *a = &r->atoms[i];
		const char *why;
		if (a->op != RF_OP_KEYWORD && (rc = str_check(a->field, "field name", rid, d)) < 0)
			return rc;
		if (a->op != RF_OP_KEYWORD && !*a->field)
			return rf_diag_report(
			    d, -EINVAL, "rule '%s': atom %zu has an empty field name", rid, i);
		if (a->pattern_len > RF_PACK_STRING_MAX)
			return rf_diag_report(d, -E2BIG,
					      "rule '%s': atom %zu pattern over %u bytes", rid, i,
					      RF_PACK_STRING_MAX);
		if (a->pattern_len &&
		    (!a->pattern || !rf__pack_utf8_ok(a->pattern, a->pattern_len)))
			return rf_diag_report(d, -EINVAL,
					      "rule '%s': atom %zu pattern is not NUL-free UTF-8",
					      rid, i);
		why = rf__pack_atom_problem(a->op == RF_OP_KEYWORD ? 0 : (unsigned)a->type,
					    (unsigned)a->op, a->flags, a->pattern, a->pattern_len);
		if (why)
			return rf_diag_report(d, -EINVAL, "rule '%s': atom %zu: %s", rid, i, why);
	}
	for (size_t i = 0; i < r->n_code; i++) {
		uint32_t op = RF_INSN_OP(r->code[i]), arg = RF_INSN_ARG(r->code[i]);
		switch (op) {
		case RF_I_ATOM:
			if (arg >= r->n_atoms)
				return rf_diag_report(d, -EINVAL,
						      "rule '%s': insn %zu: atom %u out of range",
						      rid, i, arg);
			__attribute__((fallthrough));
		case RF_I_TRUE:
		case RF_I_FALSE:
			if ((op != RF_I_ATOM && arg) || ++stack > RF_RULE_STACK_MAX)
				return rf_diag_report(
				    d, -EINVAL, "rule '%s': insn %zu: bad arg or stack over %u",
				    rid, i, RF_RULE_STACK_MAX);
			break;
		case RF_I_NOT:
		case RF_I_AND:
		case RF_I_OR:
			if (arg || stack < (op == RF_I_NOT ? 1u : 2u))
				return rf_diag_report(
				    d, -EINVAL, "rule '%s': insn %zu: stack underflow", rid, i);
			stack -= op == RF_I_NOT ? 0 : 1;
			break;
		default:
			return rf_diag_report(d, -EINVAL, "rule '%s': insn %zu: unknown opcode %u",
					      rid, i, op);
		}
	}
	if (stack != 1)
		return rf_diag_report(d, -EINVAL, "rule '%s': program leaves %u values (1 needed)",
				      rid, stack);

	/* Intern. */
	const char *ss[5] = {r->id, r->title, r->level ? r->level : "", r->author ? r->author : "",
			     r->event};
	for (int i = 0; i < 5; i++)
		if ((rc = add_str(b, ss[i], strlen(ss[i]), &sid[i])) < 0)
			goto fail;
	if (product && *product && (rc = add_str(b, product, strlen(product), &prod)) < 0)
		goto fail;
	amap = calloc(r->n_atoms ? r->n_atoms : 1, sizeof(*amap));
	if (!amap) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < r->n_atoms; i++) {
		const struct rf_ir_atom *a = &r->atoms[i];
		uint8_t rec[12] = {0};
		uint32_t fidx = RF_PACK_NONE, pidx, name;
		if (a->op != RF_OP_KEYWORD) {
			if ((rc = add_str(b, a->field, strlen(a->field), &name)) < 0)
				goto fail;
			put32(rec, sid[4]);
			put32(rec + 4, name);
			rec[8] = (uint8_t)a->type;
			if ((rc = intern(&b->fields, rec, 12, RF_PACK_FIELDS_MAX, &fidx)) < 0)
				goto fail;
		}
		if ((rc = add_str(b, a->pattern_len ? a->pattern : (const uint8_t *)"",
				  a->pattern_len, &pidx)) < 0)
			goto fail;
		if (a->op == RF_OP_FIELDREF) { /* the other field must be in the table too */
			uint32_t ridx;
			memset(rec, 0, sizeof(rec));
			put32(rec, sid[4]);
			put32(rec + 4, pidx);
			rec[8] = RF_FT_STRING;
			if ((rc = intern(&b->fields, rec, 12, RF_PACK_FIELDS_MAX, &ridx)) < 0)
				goto fail;
		}
		memset(rec, 0, sizeof(rec));
		put32(rec, fidx);
		rec[4] = (uint8_t)a->op;
		rec[5] = (uint8_t)a->flags;
		put32(rec + 8, pidx);
		if ((rc = intern(&b->atoms, rec, 12, RF_PACK_ATOMS_MAX, &amap[i])) < 0)
			goto fail;
	}
	if (b->n_rules == b->cap_rules) {
		size_t nc = b->cap_rules ? b->cap_rules * 2 : 64;
		struct rf_prule *nr = realloc(b->rules, nc * sizeof(*nr));
		if (!nr) {
			rc = -ENOMEM;
			goto fail;
		}
		b->rules = nr;
		b->cap_rules = nc;
	}
	if (b->n_code + r->n_code > b->cap_code) {
		size_t nc = b->cap_code ? b->cap_code : 1024;
		while (nc < b->n_code + r->n_code)
			nc *= 2;
		uint32_t *c = realloc(b->code, nc * sizeof(*c));
		if (!c) {
			rc = -ENOMEM;
			goto fail;
		}
		b->code = c;
		b->cap_code = nc;
	}
	struct rf_prule *pr = &b->rules[b->n_rules++];
	*pr = (struct rf_prule){
	    sid[0], sid[1], sid[2], sid[3], sid[4], (uint32_t)b->n_code, (uint32_t)r->n_code, prod};
	for (size_t i = 0; i < r->n_code; i++) {
		uint32_t in = r->code[i];
		if (RF_INSN_OP(in) == RF_I_ATOM)
			in = RF_INSN(RF_I_ATOM, amap[RF_INSN_ARG(in)]);
		b->code[b->n_code++] = in;
	}
	free(amap);
	return 0;
fail:
	free(amap);
	return rf_diag_report(d, rc, "rule '%s': %s while adding to the pack", rid,
			      rf_strerror(rc));
}

size_t rf_pack_builder_corr_count(const struct rf_pack_builder *b)
{
	return b->n_corr;
}

/* Check c against the rules and correlations already in b (the verifier's rules, so a pack the
 * builder writes always loads). */
static int corr_check(const struct rf_pack_builder *b, const struct rf_ir_corr *c, const char *cid,
		      struct rf_diag *d)
{
	int rc;

	if ((rc = str_check(c->id, "id", cid, d)) < 0 ||
	    (rc = str_check(c->title, "title", cid, d)) < 0 ||
	    (rc = str_check(c->level ? c->level : "", "level", cid, d)) < 0 ||
	    (rc = str_check(c->author ? c->author : "", "author", cid, d)) < 0)
		return rc;
	if (!*c->title)
		return rf_diag_report(d, -EINVAL, "correlation '%s': empty title", cid);
	if (c->type < RF_CORR_EVENT_COUNT || c->type > RF_CORR_TEMPORAL_ORDERED ||
	    (c->flags & ~RF_CORR_F_GENERATE))
		return rf_diag_report(d, -EINVAL, "correlation '%s': unknown type or flags", cid);
	if (b->n_corr >= RF_CORR_MAX)
		return rf_diag_report(d, -E2BIG, "correlation '%s': pack already has %u (limit)",
				      cid, RF_CORR_MAX);
	if (c->n_refs == 0 || c->n_refs > RF_CORR_REFS_MAX || c->n_group > RF_CORR_GROUP_MAX ||
	    !c->refs || (c->n_group && (!c->group || !c->group_fields)))
		return rf_diag_report(d, c->n_refs ? -E2BIG : -EINVAL,
				      "correlation '%s': %zu rules (1..%u) and %zu group-by fields "
				      "(at most %u)",
				      cid, c->n_refs, RF_CORR_REFS_MAX, c->n_group, RF_CORR_GROUP_MAX);
	if (c->timespan_s == 0 || c->timespan_s > RF_CORR_TIMESPAN_MAX)
		return rf_diag_report(d, -E2BIG, "correlation '%s': timespan %u s (1..%u)", cid,
				      c->timespan_s, RF_CORR_TIMESPAN_MAX);
	if (!!c->field != (c->type == RF_CORR_VALUE_COUNT) || (c->field && !*c->field))
		return rf_diag_report(d, -EINVAL,
				      "correlation '%s': a field is needed by value_count only", cid);
	if (c->field && (rc = str_check(c->field, "field", cid, d)) < 0)
		return rc;
	const char *why = rf__pack_corr_cond_problem(c->type, c->n_refs, c->lo, c->hi);
	if (why)
		return rf_diag_report(d, -E2BIG, "correlation '%s': %s", cid, why);
	for (size_t r = 0; r < c->n_refs; r++) {
		uint32_t ref = c->refs[r];
		bool is_corr = ref & RF_CORR_REF_CORR;
		uint32_t i = ref & ~RF_CORR_REF_CORR;
		if (is_corr ? i >= b->n_corr : i >= b->n_rules)
			return rf_diag_report(d, -EINVAL,
					      "correlation '%s': reference %zu to %s %u out of "
					      "range",
					      cid, r, is_corr ? "correlation" : "rule", i);
		if (is_corr && c->type == RF_CORR_VALUE_COUNT)
			return rf_diag_report(d, -EINVAL,
					      "correlation '%s': value_count over a correlation",
					      cid);
		for (size_t k = 0; k < r; k++)
			if (c->refs[k] == ref)
				return rf_diag_report(d, -EINVAL,
						      "correlation '%s': rule referred to twice",
						      cid);
	}
	for (size_t g = 0; g < c->n_group; g++) {
		if ((rc = str_check(c->group[g], "group-by name", cid, d)) < 0)
			return rc;
		for (size_t r = 0; r < c->n_refs; r++) {
			const char *f = c->group_fields[g * c->n_refs + r];
			if ((rc = str_check(f, "group-by field", cid, d)) < 0)
				return rc;
			if (!*f || !*c->group[g])
				return rf_diag_report(d, -EINVAL,
						      "correlation '%s': empty group-by field", cid);
		}
	}
	return 0;
}

int rf_pack_builder_add_corr(struct rf_pack_builder *b, const struct rf_ir_corr *c,
			     struct rf_diag *d)
{
	char cid[80];
	uint32_t sid[5] = {0, 0, 0, 0, RF_PACK_NONE}, nw;
	int rc;

	if (!c || !c->id || !*c->id)
		return rf_diag_report(d, -EINVAL, "correlation without an id");
	rf_diag_quote(cid, sizeof(cid), c->id, strlen(c->id));
	if ((rc = corr_check(b, c, cid, d)) < 0)
		return rc;
	nw = (uint32_t)(c->n_refs + c->n_group + c->n_group * c->n_refs);
	uint8_t *nr = realloc(b->corrs, (b->n_corr + 1) * RF_PACK_CORR_SIZE);
	if (!nr)
		return -ENOMEM;
	b->corrs = nr;
	uint32_t *nwv = realloc(b->cwords, (b->n_cwords + nw) * sizeof(*nwv));
	if (!nwv)
		return -ENOMEM;
	b->cwords = nwv;
	const char *ss[5] = {c->id, c->title, c->level ? c->level : "", c->author ? c->author : "",
			     c->field};
	for (int i = 0; i < 5; i++)
		if (ss[i] && (rc = add_str(b, ss[i], strlen(ss[i]), &sid[i])) < 0)
			return rc;
	uint32_t *w = b->cwords + b->n_cwords;
	for (size_t r = 0; r < c->n_refs; r++)
		w[r] = c->refs[r];
	for (size_t g = 0; g < c->n_group; g++)
		if ((rc = add_str(b, c->group[g], strlen(c->group[g]), &w[c->n_refs + g])) < 0)
			return rc;
	for (size_t k = 0; k < c->n_group * c->n_refs; k++) {
		const char *f = c->group_fields[k];
		if ((rc = add_str(b, f, strlen(f), &w[c->n_refs + c->n_group + k])) < 0)
			return rc;
	}
	uint8_t *q = b->corrs + b->n_corr * RF_PACK_CORR_SIZE;
	memset(q, 0, RF_PACK_CORR_SIZE);
	for (int i = 0; i < 4; i++)
		put32(q + 4 * i, sid[i]);
	q[16] = (uint8_t)c->type;
	q[17] = (uint8_t)c->flags;
	q[18] = (uint8_t)c->n_refs;
	q[19] = (uint8_t)c->n_group;
	put32(q + 20, c->timespan_s);
	put32(q + 24, c->lo);
	put32(q + 28, c->hi);
	put32(q + 32, sid[4]);
	put32(q + 36, (uint32_t)b->n_cwords);
	put32(q + 40, nw);
	b->n_cwords += nw;
	b->n_corr++;
	return 0;
}

int rf_pack_builder_finish(struct rf_pack_builder *b, uint64_t seq, uint8_t **ret_buf,
			   size_t *ret_len)
{
	const struct interner *st = &b->strings;
	uint64_t sz[RF_PACK_NSECTIONS_V2], off[RF_PACK_NSECTIONS_V2], total;
	uint32_t cnt[RF_PACK_NSECTIONS_V2];
	/* Version 1 unless there are correlations: such a pack is what older builds wrote. */
	const unsigned nsec = b->n_corr ? RF_PACK_NSECTIONS_V2 : RF_PACK_NSECTIONS;
	const unsigned version = b->n_corr ? RF_PACK_VERSION_CORR : RF_PACK_VERSION;

	cnt[0] = st->n;
	sz[0] = (uint64_t)st->n * RF_PACK_STRENT_SIZE + ((st->len + 3) & ~(size_t)3);
	cnt[1] = b->fields.n;
	sz[1] = (uint64_t)b->fields.n * RF_PACK_FIELD_SIZE;
	cnt[2] = b->atoms.n;
	sz[2] = (uint64_t)b->atoms.n * RF_PACK_ATOM_SIZE;
	cnt[3] = (uint32_t)b->n_rules;
	sz[3] = (uint64_t)b->n_rules * RF_PACK_RULE_SIZE;
	cnt[4] = (uint32_t)b->n_code;
	sz[4] = (uint64_t)b->n_code * RF_PACK_INSN_SIZE;
	cnt[5] = (uint32_t)b->n_corr;
	sz[5] = (uint64_t)b->n_corr * RF_PACK_CORR_SIZE + (uint64_t)b->n_cwords * 4;
	total = RF_PACK_HEADER_SIZE + (uint64_t)nsec * RF_PACK_SECTENT_SIZE;
	for (unsigned i = 0; i < nsec; i++) {
		off[i] = total;
		total += sz[i];
	}
	if (total > RF_PACK_MAX)
		return -E2BIG;
	uint8_t *p = calloc(1, total);
	if (!p)
		return -ENOMEM;
	memcpy(p, RF_PACK_MAGIC, 4);
	p[4] = version & 0xff;
	p[5] = version >> 8;
	p[6] = (uint8_t)nsec;
	put32(p + 8, (uint32_t)total);
	put32(p + 16, (uint32_t)seq);
	put32(p + 20, (uint32_t)(seq >> 32));
	for (unsigned i = 0; i < nsec; i++) {
		uint8_t *e = p + RF_PACK_HEADER_SIZE + i * RF_PACK_SECTENT_SIZE;
		put32(e, i + 1);
		put32(e + 4, (uint32_t)off[i]);
		put32(e + 8, (uint32_t)sz[i]);
		put32(e + 12, cnt[i]);
	}
	uint8_t *q = p + off[0];
	for (uint32_t i = 0; i < st->n; i++) {
		put32(q + i * 8, st->off[i]);
		put32(q + i * 8 + 4, st->ilen[i]);
	}
	if (st->len)
		memcpy(q + (size_t)st->n * 8, st->data, st->len);
	if (b->fields.len)
		memcpy(p + off[1], b->fields.data, b->fields.len);
	if (b->atoms.len)
		memcpy(p + off[2], b->atoms.data, b->atoms.len);
	q = p + off[3];
	for (size_t i = 0; i < b->n_rules; i++, q += RF_PACK_RULE_SIZE) {
		const struct rf_prule *r = &b->rules[i];
		/* The product is stored as its string index + 1: 0 (none) is what builds before it
		 * wrote in this once reserved word. */
		uint32_t v[8] = {r->id,	   r->title,	r->level,    r->author,
				 r->event, r->code_off, r->code_len,
				 r->product == RF_PACK_NONE ? 0 : r->product + 1};
		for (int k = 0; k < 8; k++)
			put32(q + k * 4, v[k]);
	}
	q = p + off[4];
	for (size_t i = 0; i < b->n_code; i++)
		put32(q + i * 4, b->code[i]);
	if (b->n_corr) {
		q = p + off[5];
		memcpy(q, b->corrs, b->n_corr * RF_PACK_CORR_SIZE);
		q += b->n_corr * RF_PACK_CORR_SIZE;
		for (size_t i = 0; i < b->n_cwords; i++)
			put32(q + i * 4, b->cwords[i]);
	}
	*ret_buf = p;
	*ret_len = total;
	return 0;
}
