/*
 * Tests of the Sigma compiler (src/content/sigma.c) on hand-written rules: the IR each modifier
 * and condition form produces (atoms and program, rendered as text so a failure shows both
 * sides), every rejection reason, every limit, manifest typing (the 291 check at compile time),
 * and malformed YAML (truncated at every byte, garbage), which must never crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "content/sigma.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *opname(enum rf_atom_op op)
{
	switch (op) {
	case RF_OP_EQ:
		return "eq";
	case RF_OP_CONTAINS:
		return "contains";
	case RF_OP_STARTSWITH:
		return "startswith";
	case RF_OP_ENDSWITH:
		return "endswith";
	case RF_OP_KEYWORD:
		return "keyword";
	case RF_OP_EXISTS:
		return "exists";
	case RF_OP_NULL:
		return "null";
	case RF_OP_REGEX:
		return "re";
	case RF_OP_CIDR:
		return "cidr";
	case RF_OP_GT:
		return "gt";
	case RF_OP_GTE:
		return "gte";
	case RF_OP_LT:
		return "lt";
	case RF_OP_LTE:
		return "lte";
	case RF_OP_FIELDREF:
		return "fieldref";
	}
	return "?";
}

/* "field op[/cased][:int|:ip] 'pattern'; ... | a0 a1 & ..." */
static void render(const struct rf_ir_rule *ir, char *out, size_t sz)
{
	size_t o = 0;

#define PUT(...) (o += (size_t)snprintf(out + (o < sz ? o : sz), o < sz ? sz - o : 0, __VA_ARGS__))
	for (size_t i = 0; i < ir->n_atoms; i++) {
		const struct rf_ir_atom *a = &ir->atoms[i];
		PUT("%s%s %s%s%s%s%s '%.*s'", i ? "; " : "", a->field ? a->field : "*",
		    opname(a->op), (a->flags & RF_ATOM_CASED) ? "/cased" : "",
		    (a->flags & RF_ATOM_MULTILINE) ? "/m" : "", (a->flags & RF_ATOM_DOTALL) ? "/s" : "",
		    a->type == RF_FT_INT  ? ":int"
		    : a->type == RF_FT_IP ? ":ip"
					  : "",
		    (int)a->pattern_len, (const char *)a->pattern);
	}
	PUT(" |");
	for (size_t i = 0; i < ir->n_code; i++) {
		uint32_t insn = ir->code[i];
		switch (RF_INSN_OP(insn)) {
		case RF_I_ATOM:
			PUT(" a%u", RF_INSN_ARG(insn));
			break;
		case RF_I_TRUE:
			PUT(" T");
			break;
		case RF_I_FALSE:
			PUT(" F");
			break;
		case RF_I_NOT:
			PUT(" !");
			break;
		case RF_I_AND:
			PUT(" &");
			break;
		case RF_I_OR:
			PUT(" |");
			break;
		default:
			PUT(" ?%u", RF_INSN_OP(insn));
			break;
		}
	}
#undef PUT
	assert_true(o < sz);
}

#define HEADER "title: T\nid: r1\nlogsource:\n  category: process_creation\n"

static struct rf_manifest *manifest_new(void)
{
	static const char json[] =
	    "{\"agent\":\"ringfence-agent\",\"version\":\"9.0.0\",\"events\":[{\"name\":"
	    "\"process_creation\",\"fields\":[{\"name\":\"Image\",\"type\":\"string\"},"
	    "{\"name\":\"CommandLine\",\"type\":\"string\"},{\"name\":\"ProcessId\",\"type\":"
	    "\"int\"},{\"name\":\"User\",\"type\":\"string\"},{\"name\":\"OriginalFileName\","
	    "\"type\":\"string\"},{\"name\":\"ParentImage\",\"type\":\"string\"}]},{\"name\":"
	    "\"network_connection\",\"fields\":[{\"name\":\"DestinationIp\","
	    "\"type\":\"ip\"},{\"name\":\"DestinationPort\",\"type\":\"int\"}]}]}";
	struct rf_diag d = {0};
	struct rf_manifest *m = NULL;

	assert_int_equal(rf_manifest_parse((const uint8_t *)json, strlen(json), &m, &d), 0);
	return m;
}

/* Compile src (with manifest m, may be NULL) and compare the rendered IR with want. */
static void expect_ir_m(const char *src, const struct rf_manifest *m, const char *want)
{
	struct rf_diag d = {0};
	struct rf_sigma_rule *r = NULL;
	char got[4096];
	int rc = rf_sigma_compile((const uint8_t *)src, strlen(src), "t.yml", m, &r, &d);

	if (rc != 0)
		fail_msg("compile failed (%d): %s\nrule:\n%s", rc, d.first, src);
	render(rf_sigma_rule_ir(r), got, sizeof(got));
	assert_string_equal(got, want);
	rf_sigma_rule_free(r);
}

static void expect_ir(const char *src, const char *want)
{
	expect_ir_m(src, NULL, want);
}

/* Compile src, expect code and a message containing every NULL-terminated needle. */
static void expect_reject_m(const char *src, const struct rf_manifest *m, int code, ...)
{
	struct rf_diag d = {0};
	struct rf_sigma_rule *r = NULL;
	int rc = rf_sigma_compile((const uint8_t *)src, strlen(src), "t.yml", m, &r, &d);
	va_list ap;

	if (rc != code)
		fail_msg("expected %d, got %d (%s) for:\n%s", code, rc, d.first, src);
	assert_null(r);
	assert_int_equal(d.count, 1);
	assert_int_equal(d.first_code, code);
	va_start(ap, code);
	for (const char *n; (n = va_arg(ap, const char *));)
		if (!strstr(d.first, n))
			fail_msg("message '%s' lacks '%s'", d.first, n);
	va_end(ap);
}

#define expect_reject(src, code, ...) expect_reject_m(src, NULL, code, __VA_ARGS__, NULL)

/* ---- searches and modifiers --------------------------------------------------------------- */

static void test_map_is_and_list_is_or(void **state)
{
	expect_ir(HEADER "detection:\n  sel:\n    Image: 'C:\\x.exe'\n    CommandLine: a\n"
			 "  condition: sel\n",
		  "Image eq 'C:\\x.exe'; CommandLine eq 'a' | a0 a1 &");
	expect_ir(HEADER "detection:\n  sel:\n    - Image: x\n    - CommandLine: y\n"
			 "      User: z\n  condition: sel\n",
		  "Image eq 'x'; CommandLine eq 'y'; User eq 'z' | a0 a1 a2 & |");
	expect_ir(HEADER "detection:\n  sel:\n    Image:\n      - a\n      - b\n      - c\n"
			 "  condition: sel\n",
		  "Image eq 'a'; Image eq 'b'; Image eq 'c' | a0 a1 | a2 |");
}

static void test_modifiers(void **state)
{
	expect_ir(
	    HEADER "detection:\n  s:\n    CommandLine|contains: enc\n"
		   "    Image|startswith: 'C:\\Users\\'\n    ParentImage|endswith: '\\cmd.exe'\n"
		   "  condition: s\n",
	    "CommandLine contains 'enc'; Image startswith 'C:\\Users\\'; ParentImage endswith "
	    "'\\cmd.exe' | a0 a1 & a2 &");
	/* |all turns the value list into AND; |cased sets the flag */
	expect_ir(
	    HEADER "detection:\n  s:\n    CommandLine|contains|all: [' -w hidden', ' -enc ']\n"
		   "    Image|cased: PowerShell.exe\n  condition: s\n",
	    "CommandLine contains ' -w hidden'; CommandLine contains ' -enc '; Image eq/cased "
	    "'PowerShell.exe' | a0 a1 & a2 &");
	expect_ir(HEADER "detection:\n  s:\n    CommandLine|cased|endswith: X\n  condition: s\n",
		  "CommandLine endswith/cased 'X' | a0");
}

static void test_wildcards_and_escapes_pass_through(void **state)
{
	/* ir.h's glob syntax is Sigma's: the bytes must arrive unchanged. */
	expect_ir(
	    HEADER "detection:\n  s:\n    Image: 'C:\\Windows\\*\\?.exe'\n"
		   "    CommandLine: 'a\\*b\\\\*c\\\\\\*'\n  condition: s\n",
	    "Image eq 'C:\\Windows\\*\\?.exe'; CommandLine eq 'a\\*b\\\\*c\\\\\\*' | a0 a1 &");
}

static void test_exists_null_empty(void **state)
{
	expect_ir(HEADER
		  "detection:\n  s:\n    OriginalFileName|exists: true\n"
		  "    Hashes|exists: false\n    User: null\n    Company: ''\n  condition: s\n",
		  "OriginalFileName exists ''; Hashes exists ''; User null ''; Company eq '' "
		  "| a0 a1 ! & a2 & a3 &");
	expect_ir(HEADER "detection:\n  s:\n    User: ~\n  condition: s\n", "User null '' | a0");
	expect_reject(HEADER "detection:\n  s:\n    User|exists: maybe\n  condition: s\n", -EBADMSG,
		      "'exists' needs true or false");
	expect_reject(HEADER "detection:\n  s:\n    User|exists|contains: true\n  condition: s\n",
		      -EBADMSG, "cannot be combined");
	expect_reject(HEADER "detection:\n  s:\n    User|contains: null\n  condition: s\n",
		      -EBADMSG, "null value with a modifier");
}

static void test_integers(void **state)
{
	/* Without a manifest a YAML integer is a number; quoted it is text. */
	expect_ir(HEADER "detection:\n  s:\n    ProcessId: +42\n  condition: s\n",
		  "ProcessId eq:int '42' | a0");
}

static void test_integer_values(void **state)
{
	expect_ir(
	    HEADER "detection:\n  s:\n    ProcessId: 4\n    TerminalSessionId: -0\n"
		   "    LogonId: '0'\n    Level|contains: 7\n  condition: s\n",
	    "ProcessId eq:int '4'; TerminalSessionId eq:int '0'; LogonId eq '0'; Level contains "
	    "'7' | a0 a1 & a2 & a3 &");
	expect_reject(HEADER "detection:\n  s:\n    ProcessId: 99999999999999999999\n"
			     "  condition: s\n",
		      -EINVAL, "out of range");
	/* YAML 1.1 reads these as numbers that are not what they look like: refuse, don't guess. */
	expect_reject(HEADER "detection:\n  s:\n    ProcessId: 0x10\n  condition: s\n", -ENOTSUP,
		      "not a plain decimal integer", "'0x10'");
	expect_reject(HEADER "detection:\n  s:\n    ProcessId: 017\n  condition: s\n", -ENOTSUP,
		      "not a plain decimal integer");
	expect_reject(HEADER "detection:\n  s:\n    ProcessId: 1.5\n  condition: s\n", -ENOTSUP,
		      "not a plain decimal integer");
	/* An unquoted boolean (PyYAML's reading) matches the text an event carries for it. */
	expect_ir(HEADER "detection:\n  s:\n    Signed: yes\n    Initiated: false\n  condition: s\n",
		  "Signed eq 'true'; Initiated eq 'false' | a0 a1 &");
	expect_reject(HEADER "detection:\n  s:\n    Signed|contains: yes\n  condition: s\n",
		      -EBADMSG, "boolean value 'yes' with a modifier");
	/* ...while these are strings to PyYAML too */
	expect_ir(HEADER "detection:\n  s:\n    Details|contains: 00000429\n    Ip: 10.0.0.1\n"
			 "  condition: s\n",
		  "Details contains '00000429'; Ip eq '10.0.0.1' | a0 a1 &");
}

static void test_keywords(void **state)
{
	expect_ir(HEADER "detection:\n  keywords:\n    - 'event::clear'\n    - 'event::drop'\n"
			 "  condition: keywords\n",
		  "* keyword 'event::clear'; * keyword 'event::drop' | a0 a1 |");
	expect_ir(HEADER "detection:\n  kw:\n    '|all':\n      - Oab\n      - ' -ExternalUrl '\n"
			 "  condition: kw\n",
		  "* keyword 'Oab'; * keyword ' -ExternalUrl ' | a0 a1 &");
	expect_ir(HEADER "detection:\n  kw: mimikatz\n  condition: kw\n",
		  "* keyword 'mimikatz' | a0");
	expect_reject(HEADER "detection:\n  kw:\n    '|contains': x\n  condition: kw\n", -ENOTSUP,
		      "keyword search with modifiers");
}

static void test_atoms_are_shared(void **state)
{
	expect_ir(HEADER "detection:\n  a:\n    Image|endswith: '\\x.exe'\n  b:\n"
			 "    Image|endswith: '\\x.exe'\n    User: s\n  condition: a or b\n",
		  "Image endswith '\\x.exe'; User eq 's' | a0 a0 a1 & |");
}

/* ---- conditions --------------------------------------------------------------------------- */

#define THREE  "detection:\n  a: {A: '1'}\n  b: {B: '2'}\n  c: {C: '3'}\n  condition: "
#define ATOMS3 "A eq '1'; B eq '2'; C eq '3' |"

static void test_precedence(void **state)
{
	expect_ir(HEADER THREE "a or b and not c\n", ATOMS3 " a0 a1 a2 ! & |");
	expect_ir(HEADER THREE "not a and b or c\n", ATOMS3 " a0 ! a1 & a2 |");
	expect_ir(HEADER THREE "(a or b) and c\n", ATOMS3 " a0 a1 | a2 &");
	expect_ir(HEADER THREE "not (a or not (b and c))\n", ATOMS3 " a0 a1 a2 & ! | !");
	expect_ir(HEADER THREE "a AND b Or NOT c\n", ATOMS3 " a0 a1 & a2 ! |"); /* any case */
}

static void test_quantifiers(void **state)
{
	const char *d = "detection:\n  sel_a: {A: '1'}\n  sel_b: {B: '2'}\n  _aux: {X: '9'}\n"
			"  filter: {C: '3'}\n  condition: ";
	char src[1024];

	snprintf(src, sizeof(src), HEADER "%s1 of sel_*\n", d);
	expect_ir(src, "A eq '1'; B eq '2'; X eq '9'; C eq '3' | a0 a1 |");
	snprintf(src, sizeof(src), HEADER "%sall of sel_* and not filter\n", d);
	expect_ir(src, "A eq '1'; B eq '2'; X eq '9'; C eq '3' | a0 a1 & a3 ! &");
	/* them: every identifier except those starting with '_' */
	snprintf(src, sizeof(src), HEADER "%s1 of them\n", d);
	expect_ir(src, "A eq '1'; B eq '2'; X eq '9'; C eq '3' | a0 a1 | a3 |");
	snprintf(src, sizeof(src), HEADER "%sall of them\n", d);
	expect_ir(src, "A eq '1'; B eq '2'; X eq '9'; C eq '3' | a0 a1 & a3 &");
	snprintf(src, sizeof(src), HEADER "%s1 of *a*\n", d); /* wildcards anywhere */
	expect_ir(src, "A eq '1'; B eq '2'; X eq '9'; C eq '3' | a0 a2 |");
	snprintf(src, sizeof(src), HEADER "%s1 of nothing_*\n", d);
	expect_reject(src, -EBADMSG, "matches no search identifier");
	snprintf(src, sizeof(src), HEADER "%s2 of sel_*\n", d);
	expect_reject(src, -ENOTSUP, "'2 of' is not supported");
}

static void test_condition_list_is_or(void **state)
{
	expect_ir(HEADER "detection:\n  a: {A: '1'}\n  b: {B: '2'}\n  condition:\n    - a\n"
			 "    - not b\n",
		  "A eq '1'; B eq '2' | a0 a1 ! |");
}

static void test_condition_errors(void **state)
{
	expect_reject(HEADER THREE "a and\n", -EBADMSG, "expected a search identifier",
		      "end of condition");
	expect_reject(HEADER THREE "a b\n", -EBADMSG, "expected 'and', 'or' or the end");
	expect_reject(HEADER THREE "(a or b\n", -EBADMSG, "expected ')'");
	expect_reject(HEADER THREE "a or d\n", -EBADMSG, "unknown search identifier 'd'");
	expect_reject(HEADER THREE "a | count() > 5\n", -ENOTSUP, "aggregation");
	expect_reject(HEADER "detection:\n  a: {A: '1'}\n  condition: a\n  timeframe: 5m\n",
		      -ENOTSUP, "timeframe");
	expect_reject(HEADER "detection:\n  a: {A: '1'}\n", -EBADMSG, "no 'condition'");
	expect_reject(HEADER "detection:\n  condition: a\n", -EBADMSG, "no search identifier");
}

/* ---- rejections name the rule and the construct ------------------------------------------ */

static void test_unsupported_modifiers(void **state)
{
	static const char *const mods[] = {"neq", "minute", "year"};
	char src[512], key[64];

	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		snprintf(src, sizeof(src),
			 "title: Evil Thing\nid: 4e1c-77\nlogsource: {category: process_creation}\n"
			 "detection:\n  selection:\n    CommandLine|%s: x\n"
			 "  condition: selection\n",
			 mods[i]);
		snprintf(key, sizeof(key), "modifier '%s' is not supported: ", mods[i]);
		expect_reject(src, -ENOTSUP, "t.yml: rule 4e1c-77 \"Evil Thing\": ", key,
			      "'selection'");
	}
	expect_reject(HEADER "detection:\n  s:\n    CommandLine|frobnicate: x\n  condition: s\n",
		      -ENOTSUP, "unknown modifier 'frobnicate'");
	expect_reject(HEADER "detection:\n  s:\n    CommandLine|contains|endswith: x\n"
			     "  condition: s\n",
		      -EBADMSG, "conflicting modifiers");
	expect_reject(HEADER "detection:\n  s:\n    CommandLine|all|all: [x, y]\n  condition: s\n",
		      -EBADMSG, "modifier 'all' repeated");
}

/* Contradictory or meaningless modifier combinations: each rejected with its reason. */
static void test_modifier_combinations(void **state)
{
	static const struct {
		const char *key, *why;
	} cases[] = {
	    {"CommandLine|contains|re", "'re' can only be combined with 'i', 'm', 's', 'all'"},
	    {"CommandLine|re|windash", "'re' can only be combined"},
	    {"CommandLine|i", "'i', 'm' and 's' are sub-modifiers of 're'"},
	    {"CommandLine|contains|s", "sub-modifiers of 're'"},
	    {"CommandLine|re|i|cased", "'re|i' (case-insensitive) contradicts 'cased'"},
	    {"CommandLine|cidr|contains", "'cidr' can only be combined with 'all'"},
	    {"CommandLine|gt|lt", "more than one of gt, gte, lt, lte"},
	    {"CommandLine|gte|contains", "gt, gte, lt and lte can only be combined with 'all'"},
	    {"CommandLine|base64|base64offset", "'base64' and 'base64offset' together"},
	    {"CommandLine|wide|utf16be|base64", "more than one of utf16le (wide), utf16be, utf16"},
	    {"CommandLine|utf16le|contains", "must be followed by base64 or base64offset"},
	    {"CommandLine|base64|utf16le", "must come before base64/base64offset"},
	    {"CommandLine|windash|base64", "'windash' with 'base64'/'base64offset'"},
	    {"CommandLine|exists|contains", "'exists' cannot be combined"},
	};
	char src[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(src, sizeof(src), HEADER "detection:\n  s:\n    %s: x1\n  condition: s\n",
			 cases[i].key);
		expect_reject(src, -EBADMSG, cases[i].why, cases[i].key);
	}
	/* Types: with a manifest, cidr needs an ip or a string field (whose value is parsed as an
	 * address when the event is evaluated) and gt.. an int field. */
	struct rf_manifest *m = manifest_new();
	expect_ir_m(HEADER "detection:\n  s:\n    Image|cidr: 10.0.0.0/8\n  condition: s\n", m,
		    "Image cidr '10.0.0.0/8' | a0");
	expect_reject_m(HEADER "detection:\n  s:\n    Image|cidr: 10.0.0.0/33\n  condition: s\n", m,
			-EINVAL, "not an IPv4/IPv6 CIDR prefix", NULL);
	expect_reject_m(HEADER "detection:\n  s:\n    ProcessId|cidr: 10.0.0.0/8\n  condition: s\n",
			m, -EINVAL, "'cidr' on int field 'ProcessId'", NULL);
	expect_reject_m(HEADER "detection:\n  s:\n    Image|gt: 4\n  condition: s\n", m, -EINVAL,
			"gt/gte/lt/lte on string field 'Image'", NULL);
	expect_reject_m(HEADER "detection:\n  s:\n    ProcessId|re: '4.*'\n  condition: s\n", m,
			-EINVAL, "modifier on int field 'ProcessId'", NULL);
	rf_manifest_free(m);
	expect_reject(HEADER "detection:\n  s:\n    Port|gt: '4'\n  condition: s\n", -EINVAL,
		      "value '4' is not an integer");
	expect_reject(HEADER "detection:\n  s:\n    Ip|cidr: 10.0.0.0/33\n  condition: s\n", -EINVAL,
		      "not an IPv4/IPv6 CIDR prefix");
	expect_reject(HEADER "detection:\n  s:\n    Ip|cidr: 10.0.0.1\n  condition: s\n", -EINVAL,
		      "not an IPv4/IPv6 CIDR prefix");
	expect_reject(HEADER "detection:\n  s:\n    C|base64: 'a*b'\n  condition: s\n", -EBADMSG,
		      "wildcard in a value to encode with base64");
	expect_reject(HEADER "detection:\n  s:\n    C|base64offset|contains: 'a'\n  condition: s\n",
		      -EBADMSG, "value too short for base64offset");
	expect_reject(HEADER "detection:\n  s:\n    C|windash|contains: '-a -b -c -d'\n"
			     "  condition: s\n",
		      -E2BIG, "windash value with more than 3 dashes");
}

/* The specification's own examples (sigma-appendix-modifiers.md), as the IR they compile to. */
static void test_spec_modifiers_ir(void **state)
{
	/* windash: every '-' or '/' that starts a word becomes -, /, en dash, em dash, bar. */
	expect_ir(HEADER "detection:\n  s:\n    CommandLine|windash|contains: ' -enc '\n"
			 "  condition: s\n",
		  "CommandLine contains ' -enc '; CommandLine contains ' /enc '; CommandLine "
		  "contains ' \xe2\x80\x93" "enc '; CommandLine contains ' \xe2\x80\x94" "enc '; "
		  "CommandLine contains ' \xe2\x80\x95" "enc ' | a0 a1 | a2 | a3 | a4 |");
	/* a dash inside a word (param-name) is left alone; two dashes give 25 variants */
	expect_ir(HEADER "detection:\n  s:\n    CommandLine|windash: 'x-y'\n  condition: s\n",
		  "CommandLine eq 'x-y' | a0");
	{
		struct rf_diag d = {0};
		struct rf_sigma_rule *r = NULL;
		const char *src = HEADER "detection:\n  s:\n    CommandLine|windash|contains|all:\n"
					 "      - ' -a -b'\n      - '/c'\n  condition: s\n";
		assert_int_equal(rf_sigma_compile((const uint8_t *)src, strlen(src), "t.yml", NULL,
						  &r, &d),
				 0);
		assert_int_equal(rf_sigma_rule_ir(r)->n_atoms, 25 + 5);
		rf_sigma_rule_free(r);
	}
	/* re and its sub-modifiers: case-sensitive unless i */
	expect_ir(HEADER "detection:\n  s:\n    CommandLine|re: '\\s-e(nc)?\\s'\n"
			 "    Image|re|i|m|s: '^c:.*\\.exe$'\n  condition: s\n",
		  "CommandLine re/cased '\\s-e(nc)?\\s'; Image re/m/s '^c:.*\\.exe$' | a0 a1 &");
	/* cidr, IPv4 and IPv6 (the spec's example: DestinationIp|cidr: 10.0.0.0/8) */
	expect_ir(HEADER "detection:\n  s:\n    DestinationIp|cidr:\n      - 10.0.0.0/8\n"
			 "      - 'fe80::/10'\n  condition: s\n",
		  "DestinationIp cidr:ip '10.0.0.0/8'; DestinationIp cidr:ip 'fe80::/10' | a0 a1 |");
	/* gt, gte, lt, lte */
	expect_ir(HEADER "detection:\n  s:\n    A|gt: 1\n    B|gte: -2\n    C|lt: 3\n    D|lte: +4\n"
			 "  condition: s\n",
		  "A gt:int '1'; B gte:int '-2'; C lt:int '3'; D lte:int '4' | a0 a1 & a2 & a3 &");
	/* base64; utf16le (the spec's cmd -> 63 00 6d 00 64 00), utf16be, utf16 (BOM), wide */
	expect_ir(HEADER "detection:\n  s:\n    CommandLine|base64|contains: '/bin/sh'\n"
			 "  condition: s\n",
		  "CommandLine contains 'L2Jpbi9zaA==' | a0");
	expect_ir(HEADER "detection:\n  s:\n    A|utf16le|base64: cmd\n    B|utf16be|base64: cmd\n"
			 "    C|utf16|base64: cmd\n    D|wide|base64: cmd\n  condition: s\n",
		  "A eq 'YwBtAGQA'; B eq 'AGMAbQBk'; C eq '//5jAG0AZAA='; D eq 'YwBtAGQA' | a0 a1 & "
		  "a2 & a3 &");
	/* base64offset: the three offsets, without the characters the neighbours decide */
	expect_ir(HEADER "detection:\n  s:\n    CommandLine|base64offset|contains: 'http://'\n"
			 "  condition: s\n",
		  "CommandLine contains 'aHR0cDovL'; CommandLine contains 'h0dHA6Ly'; CommandLine "
		  "contains 'odHRwOi8v' | a0 a1 | a2 |");
	expect_ir(HEADER "detection:\n  s:\n    CommandLine|wide|base64offset|contains: 'IEX'\n"
			 "  condition: s\n",
		  "CommandLine contains 'SQBFAFgA'; CommandLine contains 'kARQBYA'; CommandLine "
		  "contains 'JAEUAWA' | a0 a1 | a2 |");
	/* Escaped wildcards are encoded as the characters. */
	expect_ir(HEADER "detection:\n  s:\n    C|base64: 'a\\*'\n  condition: s\n",
		  "C eq 'YSo=' | a0");
}

/* |re: a construct that cannot run in linear time is refused at compile time, named, with the
 * rule; so is what Vectorscan cannot build. */
static void test_regex_constructs(void **state)
{
	static const struct {
		const char *re, *why;
	} cases[] = {
	    {"(a)\\\\1", "back-reference (\\1-\\9)"},
	    {"(?<n>a)\\\\k<n>", "back-reference (\\g, \\k)"},
	    {"foo(?=bar)", "lookahead"},
	    {"foo(?!bar)", "lookahead"},
	    {"(?<=foo)bar", "lookbehind"},
	    {"(?<!foo)bar", "lookbehind"},
	    {"(?>a+)b", "atomic group"},
	    {"a++b", "possessive quantifier"},
	    {"(?(1)a|b)", "conditional group"},
	    {"(a|(?R))", "recursion"},
	    {"(?P=n)", "named back-reference"},
	};
	char src[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(src, sizeof(src),
			 "title: Evil Thing\nid: 4e1c-77\nlogsource: {category: process_creation}\n"
			 "detection:\n  s:\n    CommandLine|re: \"%s\"\n  condition: s\n",
			 cases[i].re);
		expect_reject(src, -EBADMSG, "t.yml: rule 4e1c-77 \"Evil Thing\": regular expression",
			      cases[i].why);
	}
	/* Not back-references: an escaped digit in a class, \Q..\E text, an escaped paren. */
	expect_ir(HEADER "detection:\n  s:\n    C|re: '[\\1]\\Q(?=\\E\\(?=x'\n  condition: s\n",
		  "C re/cased '[\\1]\\Q(?=\\E\\(?=x' | a0");
	expect_reject(HEADER "detection:\n  s:\n    C|re: 'a{2,1}'\n  condition: s\n", -EBADMSG,
		      "is refused by Vectorscan");
	expect_reject(HEADER "detection:\n  s:\n    C|re: ''\n  condition: s\n", -EBADMSG,
		      "empty regular expression");
}

static void test_rule_level_rejections(void **state)
{
	expect_reject("title: T\nlogsource: {category: x}\ndetection: {a: {A: b}, condition: a}\n",
		      -EBADMSG, "t.yml: rule \"T\": missing required 'id'");
	expect_reject("id: r9\nlogsource: {category: x}\ndetection: {a: {A: b}, condition: a}\n",
		      -EBADMSG, "t.yml: rule r9: missing required 'title'");
	expect_reject("title: T\nid: r1\nlogsource: {product: windows}\n"
		      "detection: {a: {A: b}, condition: a}\n",
		      -ENOTSUP, "logsource names only product 'windows'");
	expect_reject("title: T\nid: r1\nlogsource: {}\ndetection: {a: {A: b}, condition: a}\n",
		      -EBADMSG, "logsource has no category, service or product");
	expect_reject("title: T\nid: r1\nlogsource: {category: Bad Name}\n"
		      "detection: {a: {A: b}, condition: a}\n",
		      -EBADMSG, "lower-case");
	expect_reject("title: T\nid: r1\ncorrelation: {type: event_count}\n", -ENOTSUP,
		      "correlation rules");
	expect_reject(HEADER "detection: {a: {A: b}, condition: a}\n---\n" HEADER
			     "detection: {a: {A: b}, condition: a}\n",
		      -ENOTSUP, "multi-document");
	expect_reject(HEADER "x: &anchor {A: b}\ndetection: {a: *anchor, condition: a}\n", -ENOTSUP,
		      "YAML aliases");
	expect_reject(HEADER "detection:\n  a:\n    <<: {A: b}\n  condition: a\n", -ENOTSUP,
		      "YAML merge keys");
	expect_reject(HEADER "level: severe\ndetection: {a: {A: b}, condition: a}\n", -EBADMSG,
		      "level 'severe'");
	expect_reject(HEADER "title: again\ndetection: {a: {A: b}, condition: a}\n", -EBADMSG,
		      "duplicate key 'title'");
	expect_reject(HEADER "detection: {a: {A: !!binary aGk=}, condition: a}\n", -ENOTSUP,
		      "YAML tag");
	expect_reject(HEADER "detection: {a: {A: \"x\\0y\"}, condition: a}\n", -EBADMSG,
		      "NUL byte");
	expect_reject(HEADER "detection: {a: {'Com mand': x}, condition: a}\n", -EBADMSG,
		      "printable ASCII");
	expect_reject(HEADER "detection: {a: [{A: b}, c], condition: a}\n", -EBADMSG, "mixes");
	expect_reject(HEADER "detection: {a: {A: []}, condition: a}\n", -EBADMSG,
		      "empty value list");
	expect_reject(HEADER "detection: {a: {A: {B: c}}, condition: a}\n", -EBADMSG,
		      "is a mapping");
	expect_reject("- just\n- a list\n", -EBADMSG, "not a YAML mapping");
	expect_reject("", -EBADMSG, "not a YAML mapping");
}

static void test_header_fields_carried(void **state)
{
	const char *src = "title: Encoded PowerShell\nid: 0b9f-1\nlevel: high\n"
			  "author:\n  - Ann\n  - Bob\nlogsource:\n  category: process_creation\n"
			  "  product: windows\ndetection: {a: {A: b}, condition: a}\n";
	struct rf_diag d = {0};
	struct rf_sigma_rule *r = NULL;

	assert_int_equal(rf_sigma_compile((const uint8_t *)src, strlen(src), NULL, NULL, &r, &d),
			 0);
	const struct rf_ir_rule *ir = rf_sigma_rule_ir(r);
	assert_string_equal(ir->id, "0b9f-1");
	assert_string_equal(ir->title, "Encoded PowerShell");
	assert_string_equal(ir->level, "high");
	assert_string_equal(ir->author, "Ann, Bob");
	assert_string_equal(ir->event, "process_creation");
	rf_sigma_rule_free(r);

	src = HEADER "detection: {a: {A: b}, condition: a}\n";
	assert_int_equal(rf_sigma_compile((const uint8_t *)src, strlen(src), NULL, NULL, &r, &d),
			 0);
	assert_string_equal(rf_sigma_rule_ir(r)->level, "");
	assert_string_equal(rf_sigma_rule_ir(r)->author, "");
	rf_sigma_rule_free(r);
}

/* ---- manifest typing: the 291 check at the author's desk --------------------------------- */

static void test_manifest(void **state)
{
	struct rf_manifest *m = manifest_new();

	expect_ir_m(HEADER "detection:\n  s:\n    ProcessId: '4'\n    Image: 5\n  condition: s\n",
		    m, "ProcessId eq:int '4'; Image eq '5' | a0 a1 &");
	expect_reject_m(HEADER
			"detection:\n  s:\n    ParentUser|contains: SYSTEM\n  condition: s\n",
			m, -ENOENT,
			"t.yml: rule r1 \"T\": field 'ParentUser' is not supplied by "
			"ringfence-agent 9.0.0 (event process_creation supplies 6 fields)",
			NULL);
	expect_reject_m("title: T\nid: r1\nlogsource: {category: pipe_created}\n"
			"detection: {a: {PipeName: x}, condition: a}\n",
			m, -ENOENT, "event 'pipe_created' is not supplied by ringfence-agent 9.0.0",
			NULL);
	expect_reject_m(HEADER "detection:\n  s:\n    ProcessId: abc\n  condition: s\n", m, -EINVAL,
			"not an integer but field 'ProcessId' is int", NULL);
	expect_reject_m(HEADER "detection:\n  s:\n    ProcessId|contains: '4'\n  condition: s\n", m,
			-EINVAL, "modifier on int field", NULL);
	expect_reject_m(HEADER "detection:\n  s:\n    ProcessId|exists: true\n  condition: s\n", m,
			-EINVAL, "'exists' on int field", NULL);
	const char *net = "title: T\nid: r1\nlogsource: {category: network_connection}\n"
			  "detection:\n  s:\n    DestinationIp: [10.1.2.3, '::1']\n"
			  "    DestinationPort: 445\n  condition: s\n";
	expect_ir_m(net, m,
		    "DestinationIp eq:ip '10.1.2.3'; DestinationIp eq:ip '::1'; "
		    "DestinationPort eq:int '445' | a0 a1 | a2 &");
	expect_reject_m("title: T\nid: r1\nlogsource: {category: network_connection}\n"
			"detection: {s: {DestinationIp|startswith: '10.'}, condition: s}\n",
			m, -EINVAL, "modifier on ip field", NULL);
	expect_reject_m("title: T\nid: r1\nlogsource: {category: network_connection}\n"
			"detection: {s: {DestinationIp: 10.0.0.*}, condition: s}\n",
			m, -EINVAL, "not an IP address", NULL);
	rf_manifest_free(m);
}

/* ---- logsources: category, product/service, and the manifest's product -------------------- */

static const char *event_of(const char *logsource, const struct rf_manifest *m)
{
	static char ev[RF_NAME_MAX + 1];
	char src[512];
	struct rf_diag d = {0};
	struct rf_sigma_rule *r = NULL;

	snprintf(src, sizeof(src), "title: T\nid: r1\nlogsource: %s\n"
		 "detection: {a: {EventID: 4624}, condition: a}\n", logsource);
	if (rf_sigma_compile((const uint8_t *)src, strlen(src), "t.yml", m, &r, &d) != 0)
		fail_msg("compile failed: %s\nrule:\n%s", d.first, src);
	snprintf(ev, sizeof(ev), "%s", rf_sigma_rule_ir(r)->event);
	rf_sigma_rule_free(r);
	return ev;
}

static void test_logsource(void **state)
{
	static const char json[] =
	    "{\"agent\":\"win\",\"version\":\"1.2.0\",\"product\":\"windows\",\"events\":["
	    "{\"name\":\"windows_security\",\"fields\":[{\"name\":\"EventID\",\"type\":"
	    "\"int\"}]},{\"name\":\"process_creation\",\"fields\":[{\"name\":\"EventID\","
	    "\"type\":\"int\"}]}]}";
	struct rf_diag d = {0};
	struct rf_manifest *m = NULL;

	/* The event type: the category, else product_service, else the service alone. */
	assert_string_equal(event_of("{category: process_creation, product: windows}", NULL),
			    "process_creation");
	assert_string_equal(event_of("{product: windows, service: security}", NULL),
			    "windows_security");
	assert_string_equal(event_of("{service: apache}", NULL), "apache");
	assert_string_equal(event_of("{product: aws, service: cloudtrail}", NULL),
			    "aws_cloudtrail");
	expect_reject("title: T\nid: r1\nlogsource: {category: application, service: audit}\n"
		      "detection: {a: {A: b}, condition: a}\n",
		      -ENOTSUP, "both category 'application' and service 'audit'");
	expect_reject("title: T\nid: r1\nlogsource: {product: Windows, service: security}\n"
		      "detection: {a: {A: b}, condition: a}\n",
		      -EBADMSG, "logsource product 'Windows' is not lower-case");

	/* A manifest naming a product refuses the rules of another, naming it. */
	assert_int_equal(rf_manifest_parse((const uint8_t *)json, strlen(json), &m, &d), 0);
	assert_string_equal(rf_manifest_product(m), "windows");
	assert_string_equal(event_of("{product: windows, service: security}", m),
			    "windows_security");
	assert_string_equal(event_of("{category: process_creation}", m), "process_creation");
	expect_reject_m("title: T\nid: r1\nlogsource: {product: linux, category: "
			"process_creation}\ndetection: {a: {EventID: 1}, condition: a}\n",
			m, -ENOENT,
			"logsource product 'linux' is not supplied by win 1.2.0 (it supplies "
			"product 'windows')",
			NULL);
	expect_reject_m("title: T\nid: r1\nlogsource: {product: windows, service: system}\n"
			"detection: {a: {EventID: 1}, condition: a}\n",
			m, -ENOENT,
			"logsource service 'system' (event 'windows_system') is not supplied by "
			"win 1.2.0",
			NULL);
	rf_manifest_free(m);

	/* Manifests before 1.2.0 name no product: any product's rules compile against them. */
	m = manifest_new();
	assert_null(rf_manifest_product(m));
	expect_ir_m("title: T\nid: r1\nlogsource: {product: linux, category: process_creation}\n"
		    "detection: {a: {Image: x}, condition: a}\n",
		    m, "Image eq 'x' | a0");
	rf_manifest_free(m);
}

/* ---- manifests: declared logsources and schemaless (open) events --------------------------- */

static struct rf_manifest *parse_m(const char *json, int want, const char *msg)
{
	struct rf_diag d = {0};
	struct rf_manifest *m = NULL;
	int rc = rf_manifest_parse((const uint8_t *)json, strlen(json), &m, &d);

	if (rc != want)
		fail_msg("manifest: %d (%s), want %d: %s", rc, d.first, want, json);
	if (msg && !strstr(d.first, msg))
		fail_msg("message '%s' lacks '%s'", d.first, msg);
	return m;
}

static void test_logsource_declared(void **state)
{
	static const char json[] =
	    "{\"agent\":\"logs\",\"version\":\"1.0.0\",\"events\":["
	    "{\"name\":\"kubernetes_audit\",\"logsource\":[{\"product\":\"kubernetes\","
	    "\"service\":\"audit\"},{\"product\":\"kubernetes\",\"category\":\"application\","
	    "\"service\":\"audit\"}],\"fields\":[],\"other_fields\":\"string\"},"
	    "{\"name\":\"linux_log\",\"logsource\":{\"product\":\"linux\"},"
	    "\"fields\":[{\"name\":\"message\",\"type\":\"string\"}]},"
	    "{\"name\":\"opencanary\",\"logsource\":{\"product\":\"opencanary\",\"category\":"
	    "\"application\"},\"fields\":[{\"name\":\"logtype\",\"type\":\"int\"}],"
	    "\"other_fields\":\"string\"},"
	    "{\"name\":\"proxy\",\"fields\":[],\"other_fields\":\"string\"}]}";
	struct rf_manifest *m;
	const char *ev = NULL;

	(void)state;
	m = parse_m(json, 0, NULL);
	assert_int_equal(rf_manifest_logsource_event(m, "linux", 5, NULL, 0, NULL, 0, &ev), 1);
	assert_string_equal(ev, "linux_log");
	assert_int_equal(rf_manifest_logsource_event(m, "linux", 5, NULL, 0, "sshd", 4, &ev), 0);
	/* A product alone, a category with a service: reachable when declared. */
	expect_ir_m("title: T\nid: r1\nlogsource: {product: linux}\n"
		    "detection: {k: [error], condition: k}\n",
		    m, "* keyword 'error' | a0");
	assert_string_equal(event_of("{product: kubernetes, service: audit}", m),
			    "kubernetes_audit");
	assert_string_equal(
	    event_of("{product: kubernetes, category: application, service: audit}", m),
	    "kubernetes_audit");
	assert_string_equal(event_of("{product: opencanary, category: application}", m),
			    "opencanary");
	/* Undeclared events are still derived; declared ones only through their logsources. */
	assert_string_equal(event_of("{category: proxy}", m), "proxy");
	expect_reject_m("title: T\nid: r1\nlogsource: {service: linux_log}\n"
			"detection: {a: {message: x}, condition: a}\n",
			m, -ENOENT, "(event 'linux_log') is not supplied by logs 1.0.0", NULL);
	expect_reject_m("title: T\nid: r1\nlogsource: {product: jvm, category: application}\n"
			"detection: {a: {message: x}, condition: a}\n",
			m, -ENOENT, "event 'application' is not supplied", NULL);
	/* Open events: any valid name is a string; listed fields keep their type; closed events
	 * supply only their list. */
	assert_int_equal(rf_manifest_field_type(m, "kubernetes_audit", "objectRef.resource"),
			 RF_FT_STRING);
	assert_int_equal(rf_manifest_field_type(m, "kubernetes_audit", "has space"), -ENOENT);
	assert_int_equal(rf_manifest_field_type(m, "opencanary", "logtype"), RF_FT_INT);
	assert_int_equal(rf_manifest_field_type(m, "linux_log", "other"), -ENOENT);
	assert_true(rf_manifest_event_open(m, "proxy"));
	assert_false(rf_manifest_event_open(m, "linux_log"));
	expect_ir_m("title: T\nid: r1\nlogsource: {product: kubernetes, service: audit}\n"
		    "detection: {a: {objectRef.resource: pods}, condition: a}\n",
		    m, "objectRef.resource eq 'pods' | a0");
	expect_reject_m("title: T\nid: r1\nlogsource: {product: linux}\n"
			"detection: {a: {Image: x}, condition: a}\n",
			m, -ENOENT, "field 'Image' is not supplied by logs 1.0.0", NULL);
	rf_manifest_free(m);

	/* Malformed declarations are refused naming the event. */
	parse_m("{\"agent\":\"a\",\"version\":\"1\",\"events\":[{\"name\":\"e\",\"fields\":[],"
		"\"other_fields\":\"int\"}]}",
		-EBADMSG, "event e: \"other_fields\" must be \"string\"");
	parse_m("{\"agent\":\"a\",\"version\":\"1\",\"events\":[{\"name\":\"e\",\"fields\":[],"
		"\"logsource\":{\"produkt\":\"x\"}}]}",
		-EBADMSG, "event e logsource: unknown key");
	parse_m("{\"agent\":\"a\",\"version\":\"1\",\"events\":[{\"name\":\"e\",\"fields\":[],"
		"\"logsource\":{}}]}",
		-EBADMSG, "event e logsource is empty");
	parse_m("{\"agent\":\"a\",\"version\":\"1\",\"events\":[{\"name\":\"e\",\"fields\":[],"
		"\"logsource\":[]}]}",
		-EBADMSG, "must be an object or an array");
	parse_m("{\"agent\":\"a\",\"version\":\"1\",\"events\":[{\"name\":\"e\",\"fields\":[],"
		"\"logsource\":{\"product\":\"a b\"}}]}",
		-EBADMSG, "is not a valid name");
}

/* ---- fieldref: one field compared with another of the same event --------------------------- */

static void test_fieldref(void **state)
{
	struct rf_manifest *m = manifest_new();

	/* The Sigma specification: "fieldref" turns the value into a reference to another field;
	 * the selection holds when the two fields of the event are equal. SigmaHQ's uses:
	 * `TargetFilename|fieldref: Image` (a process deleting its own image), `User|fieldref:
	 * ParentUser` (filter: same user), `SubjectUserName|fieldref: TargetUserName`. */
	expect_ir(HEADER "detection:\n  s:\n    TargetFilename|fieldref: Image\n  condition: s\n",
		  "TargetFilename fieldref 'Image' | a0");
	expect_ir(HEADER "detection:\n  s:\n    User|fieldref|cased: ParentUser\n  condition: s\n",
		  "User fieldref/cased 'ParentUser' | a0");
	expect_ir(HEADER "detection:\n  s:\n    User|fieldref|all: [ParentUser, Image]\n"
			 "  condition: s\n",
		  "User fieldref 'ParentUser'; User fieldref 'Image' | a0 a1 &");
	expect_ir(HEADER "detection:\n  s:\n    User|fieldref: [ParentUser, Image]\n"
			 "  condition: s\n",
		  "User fieldref 'ParentUser'; User fieldref 'Image' | a0 a1 |");
	/* Rejected with a reason. */
	expect_reject(HEADER "detection:\n  s:\n    User|fieldref|contains: Image\n  condition: s\n",
		      -EBADMSG, "'fieldref' can only be combined with 'all' and 'cased'");
	expect_reject(HEADER "detection:\n  s:\n    User|fieldref: 5\n  condition: s\n", -EBADMSG,
		      "fieldref value '5' is not a field name");
	expect_reject(HEADER "detection:\n  s:\n    User|fieldref: 'Parent User'\n  condition: s\n",
		      -EBADMSG, "is not a field name");
	expect_reject(HEADER "detection:\n  s:\n    User|fieldref: null\n  condition: s\n",
		      -EBADMSG, "null value with a modifier");
	expect_reject(HEADER "detection:\n  s:\n    '|fieldref': Image\n  condition: s\n",
		      -ENOTSUP, "keyword search with modifiers");
	/* Against a manifest: the referenced field must be supplied (the 291 check for the field
	 * the rule reads through the reference), and both must be strings. */
	expect_ir_m(HEADER "detection:\n  s:\n    User|fieldref: Image\n  condition: s\n", m,
		    "User fieldref 'Image' | a0");
	expect_reject_m(HEADER "detection:\n  s:\n    User|fieldref: ParentUser\n  condition: s\n",
			m, -ENOENT,
			"field 'ParentUser' (referenced by fieldref) is not supplied by "
			"ringfence-agent 9.0.0 (event process_creation supplies 6 fields",
			NULL);
	expect_reject_m(HEADER "detection:\n  s:\n    User|fieldref: ProcessId\n  condition: s\n",
			m, -EINVAL, "fieldref to int field 'ProcessId'", NULL);
	expect_reject_m(HEADER "detection:\n  s:\n    ProcessId|fieldref: User\n  condition: s\n",
			m, -EINVAL, "fieldref on int field 'ProcessId'", NULL);
	rf_manifest_free(m);
}

/* ---- expand: %placeholders% from a placeholders file --------------------------------------- */

static struct rf_sigma_placeholders *ph_new(const char *json)
{
	struct rf_sigma_placeholders *ph = NULL;
	struct rf_diag d = {0};

	if (rf_sigma_placeholders_parse((const uint8_t *)json, strlen(json), &ph, &d) != 0)
		fail_msg("placeholders: %s", d.first);
	return ph;
}

static void expect_ir_ph(const char *src, const struct rf_sigma_placeholders *ph, const char *want)
{
	struct rf_diag d = {0};
	struct rf_sigma_rule *r = NULL;
	char got[4096];

	if (rf_sigma_compile_with((const uint8_t *)src, strlen(src), "t.yml", NULL, ph, &r, &d))
		fail_msg("compile failed: %s\nrule:\n%s", d.first, src);
	render(rf_sigma_rule_ir(r), got, sizeof(got));
	assert_string_equal(got, want);
	rf_sigma_rule_free(r);
}

static void expect_reject_ph(const char *src, const struct rf_sigma_placeholders *ph, int code,
			     const char *want)
{
	struct rf_diag d = {0};
	struct rf_sigma_rule *r = NULL;
	int rc = rf_sigma_compile_with((const uint8_t *)src, strlen(src), "t.yml", NULL, ph, &r, &d);

	if (rc != code || !strstr(d.first, want))
		fail_msg("expected %d '%s', got %d '%s'", code, want, rc, d.first);
	assert_null(r);
}

static void test_expand(void **state)
{
	/* The Sigma specification's example: `expand` replaces %placeholder% with the values a
	 * pipeline configures for it (here the placeholders file), the alternatives OR'd. */
	struct rf_sigma_placeholders *ph =
	    ph_new("{\"admins\": [\"adm_*\", \"root\"], \"domain\": \"CORP\", \"one\": [\"x\"]}");

	expect_ir_ph(HEADER "detection:\n  s:\n    User|expand: '%admins%'\n  condition: s\n", ph,
		     "User eq 'adm_*'; User eq 'root' | a0 a1 |");
	/* The rules specification's escapes: "\\%" is a plain '%' that starts no placeholder, "\\\\"
	 * an escaped backslash (kept: the matcher reads it as one backslash). */
	expect_ir_ph(HEADER "detection:\n  s:\n    User|expand: '%domain%\\\\%admins%'\n"
			    "  condition: s\n",
		     ph, "User eq 'CORP\\\\adm_*'; User eq 'CORP\\\\root' | a0 a1 |");
	expect_ir_ph(HEADER "detection:\n  s:\n    User|expand: '%domain%\\%admins%'\n"
			    "  condition: s\n",
		     ph, "User eq 'CORP%admins%' | a0");
	expect_ir_ph(HEADER "detection:\n  s:\n    User|expand: '\\%one%%one%\\x'\n"
			    "  condition: s\n",
		     ph, "User eq '%one%x\\x' | a0");
	expect_ir_ph(HEADER "detection:\n  s:\n    User|expand|contains: '%admins%'\n"
			    "  condition: s\n",
		     ph, "User contains 'adm_*'; User contains 'root' | a0 a1 |");
	/* all: each listed value holds, each one's alternatives OR'd. */
	expect_ir_ph(HEADER "detection:\n  s:\n    User|expand|all: ['%admins%', '%one%']\n"
			    "  condition: s\n",
		     ph, "User eq 'adm_*'; User eq 'root'; User eq 'x' | a0 a1 | a2 &");
	/* A '%' that does not start a %name% is itself. */
	expect_ir_ph(HEADER "detection:\n  s:\n    User|expand: '100% %one%%'\n  condition: s\n",
		     ph, "User eq '100% x%' | a0");
	expect_reject_ph(HEADER "detection:\n  s:\n    User|expand: '%nope%'\n  condition: s\n", ph,
			 -EINVAL, "placeholder '%nope%' is not defined");
	expect_reject_ph(HEADER "detection:\n  s:\n    User|expand: '%one%'\n  condition: s\n",
			 NULL, -ENOTSUP, "'expand' needs placeholder values");
	expect_reject_ph(HEADER "detection:\n  s:\n    User|expand|re: '%one%'\n  condition: s\n",
			 ph, -EBADMSG, "'re' can only be combined");
	expect_reject_ph(HEADER "detection:\n  s:\n    User|expand|cidr: '%one%'\n  condition: s\n",
			 ph, -EBADMSG, "'cidr' can only be combined");
	rf_sigma_placeholders_free(ph);

	/* Over RF_SIGMA_EXPAND_MAX variants: 17 x 16 = 272. */
	char json[1024] = "{\"a\": [";
	for (int i = 0; i < 17; i++)
		snprintf(json + strlen(json), sizeof(json) - strlen(json), "%s\"v%d\"", i ? "," : "",
			 i);
	strcat(json, "], \"b\": [");
	for (int i = 0; i < 16; i++)
		snprintf(json + strlen(json), sizeof(json) - strlen(json), "%s\"w%d\"", i ? "," : "",
			 i);
	strcat(json, "]}");
	ph = ph_new(json);
	expect_reject_ph(HEADER "detection:\n  s:\n    User|expand: '%a%%b%'\n  condition: s\n", ph,
			 -E2BIG, "more than 256 values");
	rf_sigma_placeholders_free(ph);

	/* The placeholders file is untrusted input too. */
	static const struct {
		const char *json, *why;
		int code;
	} bad[] = {
	    {"[1]", "top level must be an object", -EBADMSG},
	    {"{\"a\": [1]}", "values must be strings", -EBADMSG},
	    {"{\"a b\": [\"x\"]}", "is not [A-Za-z0-9_.-]", -EBADMSG},
	    {"{\"a\": [\"x\"], \"a\": [\"y\"]}", "invalid JSON", -EBADMSG},
	    {"{", "invalid JSON", -EBADMSG},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rf_diag d = {0};
		ph = NULL;
		int rc = rf_sigma_placeholders_parse((const uint8_t *)bad[i].json,
						     strlen(bad[i].json), &ph, &d);
		if (rc != bad[i].code || !strstr(d.first, bad[i].why))
			fail_msg("%s: %d '%s'", bad[i].json, rc, d.first);
		assert_null(ph);
	}
}

/* ---- limits ------------------------------------------------------------------------------ */

/* A growing buffer for generated rules. */
struct buf {
	char *p;
	size_t n, cap;
};

static void bput(struct buf *b, const char *fmt, ...) RF_PRINTF(2, 3);

static void bput(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	for (;;) {
		va_start(ap, fmt);
		k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		assert_true(k >= 0);
		if (b->p && b->n + (size_t)k < b->cap)
			break;
		b->cap = (b->cap + (size_t)k + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	b->n += (size_t)k;
}

static void test_limits(void **state)
{
	struct buf b = {0};

	/* atoms */
	bput(&b, HEADER "detection:\n  s:\n    CommandLine|contains:\n");
	for (unsigned i = 0; i <= RF_SIGMA_ATOMS_MAX; i++)
		bput(&b, "      - v%u\n", i);
	bput(&b, "  condition: s\n");
	char want[64];
	snprintf(want, sizeof(want), "more than %u atoms", RF_SIGMA_ATOMS_MAX);
	expect_reject(b.p, -E2BIG, want);
	/* program length: few atoms, many references */
	b.n = 0;
	bput(&b, HEADER "detection:\n  s: {A: x}\n  condition: s");
	for (unsigned i = 0; i < RF_RULE_CODE_MAX; i++)
		bput(&b, " or s");
	bput(&b, "\n");
	expect_reject(b.p, -E2BIG, "program longer than");
	/* condition nesting */
	b.n = 0;
	bput(&b, HEADER "detection:\n  s: {A: x}\n  condition: ");
	for (unsigned i = 0; i <= RF_SIGMA_COND_DEPTH_MAX; i++)
		bput(&b, "(");
	bput(&b, "s");
	for (unsigned i = 0; i <= RF_SIGMA_COND_DEPTH_MAX; i++)
		bput(&b, ")");
	bput(&b, "\n");
	expect_reject(b.p, -E2BIG, "nested deeper than");
	b.n = 0;
	bput(&b, HEADER "detection:\n  s: {A: x}\n  condition: ");
	for (unsigned i = 0; i <= RF_SIGMA_COND_DEPTH_MAX; i++)
		bput(&b, "not ");
	bput(&b, "s\n");
	expect_reject(b.p, -E2BIG, "nested deeper than");
	/* exactly at the limit is fine */
	b.n = 0;
	bput(&b, HEADER "detection:\n  s: {A: x}\n  condition: ");
	for (unsigned i = 0; i < RF_SIGMA_COND_DEPTH_MAX; i++)
		bput(&b, "(");
	bput(&b, "s");
	for (unsigned i = 0; i < RF_SIGMA_COND_DEPTH_MAX; i++)
		bput(&b, ")");
	bput(&b, "\n");
	expect_ir(b.p, "A eq 'x' | a0");
	/* evaluation stack: a and (a and (a and ...)) pushes one bit per level */
	b.n = 0;
	bput(&b, HEADER "detection:\n  s: {A: x}\n  condition:\n");
	bput(&b, "    - s");
	for (unsigned i = 0; i < 31; i++)
		bput(&b, " and (s");
	for (unsigned i = 0; i < 31; i++)
		bput(&b, ")");
	bput(&b, "\n");
	{
		struct rf_diag d = {0};
		struct rf_sigma_rule *r = NULL;
		assert_int_equal(rf_sigma_compile((const uint8_t *)b.p, b.n, NULL, NULL, &r, &d),
				 0);
		assert_int_equal(rf_sigma_rule_ir(r)->n_code, 32 + 31);
		rf_sigma_rule_free(r);
	}
	free(b.p);
}

static void test_limits_sizes(void **state)
{
	struct buf b = {0};

	/* pattern length */
	bput(&b, HEADER "detection:\n  s:\n    A: '");
	for (unsigned i = 0; i <= RF_SIGMA_PATTERN_MAX; i++)
		bput(&b, "x");
	bput(&b, "'\n  condition: s\n");
	char want[64];
	snprintf(want, sizeof(want), "longer than %u bytes", (unsigned)RF_SIGMA_PATTERN_MAX);
	expect_reject(b.p, -E2BIG, want);
	/* YAML nesting */
	b.n = 0;
	bput(&b, HEADER "detection:\n  s: ");
	for (unsigned i = 0; i < RF_SIGMA_YAML_DEPTH_MAX; i++)
		bput(&b, "[");
	for (unsigned i = 0; i < RF_SIGMA_YAML_DEPTH_MAX; i++)
		bput(&b, "]");
	bput(&b, "\n  condition: s\n");
	expect_reject(b.p, -E2BIG, "YAML nesting deeper than");
	/* map size */
	b.n = 0;
	bput(&b, HEADER "detection:\n  s:\n");
	for (unsigned i = 0; i <= RF_SIGMA_MAP_MAX; i++)
		bput(&b, "    F%u: x\n", i);
	bput(&b, "  condition: s\n");
	snprintf(want, sizeof(want), "more than %u entries", RF_SIGMA_MAP_MAX);
	expect_reject(b.p, -E2BIG, want);
	/* identifier patterns: many costly non-matches per condition term run out of budget */
	char as[130];
	memset(as, 'a', sizeof(as));
	b.n = 0;
	bput(&b, HEADER "detection:\n");
	for (unsigned i = 0; i < 900; i++)
		bput(&b, "  %.*s%03u: {A: x}\n", 124, as, i);
	bput(&b, "  %.*sb: {A: y}\n  condition: 1 of *b", 126, as);
	for (unsigned i = 0; i < 20; i++)
		bput(&b, " or 1 of *%.*sb", 126, as);
	bput(&b, "\n");
	expect_reject(b.p, -E2BIG, "matching steps");
	/* node count */
	b.n = 0;
	bput(&b, HEADER "x: [");
	for (unsigned i = 0; i <= RF_SIGMA_NODES_MAX; i++)
		bput(&b, "1,");
	bput(&b, "]\n");
	expect_reject(b.p, -E2BIG, "YAML nodes");
	/* file size: checked before parsing */
	struct rf_diag d = {0};
	struct rf_sigma_rule *r = NULL;
	uint8_t *big = calloc(1, RF_SIGMA_FILE_MAX + 1);
	assert_non_null(big);
	assert_int_equal(rf_sigma_compile(big, RF_SIGMA_FILE_MAX + 1, "big.yml", NULL, &r, &d),
			 -E2BIG);
	assert_non_null(strstr(d.first, "big.yml: rule file larger than"));
	free(big);
	free(b.p);
}

/* ---- malformed input never crashes ------------------------------------------------------ */

static void test_truncated_at_every_byte(void **state)
{
	const char *src = "title: Suspicious 'x'\nid: 5e1c\nauthor: me\nlevel: high\n"
			  "logsource:\n  category: process_creation\ndetection:\n"
			  "  sel_a:\n    Image|endswith: ['\\a.exe', \"\\\\b.exe\"]\n"
			  "  sel_b:\n    - CommandLine|contains|all: [x, y]\n    - User: null\n"
			  "  filter: {Hashes|exists: true}\n"
			  "  condition: 1 of sel_* and not (filter or all of them)\n";
	size_t n = strlen(src), ok = 0;

	for (size_t i = 0; i <= n; i++) {
		uint8_t *p = malloc(i ? i : 1); /* exact size: ASan catches any over-read */
		struct rf_diag d = {0};
		struct rf_sigma_rule *r = NULL;

		assert_non_null(p);
		memcpy(p, src, i);
		int rc = rf_sigma_compile(p, i, "cut.yml", NULL, &r, &d);
		if (rc == 0) {
			ok++;
			rf_sigma_rule_free(r);
		} else {
			assert_true(rc < 0);
			assert_null(r);
			assert_int_equal(d.count, 1);
			assert_non_null(strstr(d.first, "cut.yml: "));
		}
		free(p);
	}
	assert_true(ok >= 1); /* at least the whole rule */
}

static void test_garbage(void **state)
{
	static const char *const inputs[] = {
	    "\xff\xfe\x00",
	    "{",
	    "[[[",
	    "a: b: c",
	    "title: [",
	    "- - - -",
	    "? ? ?",
	    "%YAML 9.9\n---\n",
	    "title: \"\\x\"",
	    "\t\tfoo",
	    "key: |\n  block\n x",
	    "!!python/object:os.system x",
	    "title: T\nid: 1\nlogsource: x\ndetection: y\n",
	    "title: T\nid: 1\nlogsource: {category: a}\ndetection: [1]\n",
	    "title: T\nid: 1\nlogsource: {category: a}\ndetection: {condition: [], a: {b: c}}\n",
	    "title: T\nid: 1\nlogsource: {category: a}\ndetection: {condition: 5, a: {b: c}}\n",
	    "title: T\nid: 1\nlogsource: {category: a}\ndetection: {condition: '', a: {b: c}}\n",
	    "title: T\nid: 1\nlogsource: {category: a}\ndetection: {condition: '()', a: {b: c}}\n",
	    "title: T\nid: 1\nlogsource: {category: a}\ndetection: {condition: 'not', a: {b: c}}\n",
	    "title: T\nid: 1\nlogsource: {category: a}\ndetection: {condition: '1 of', a: {b: "
	    "c}}\n",
	    "title: T\nid: 1\nlogsource: {category: a}\ndetection: {condition: 'all of (', a: {b: "
	    "c}}\n",
	    "title: T\nid: 1\nlogsource: {category: a}\ndetection: {? [x] : y, condition: a}\n",
	    "title: {a: b}\nid: 1\n",
	    "title: \"a\\nb\"\nid: 1\n",
	    "title: T\nid: [1]\n",
	};

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct rf_diag d = {0};
		struct rf_sigma_rule *r = NULL;
		/* sizeof-based length for the one with a NUL inside */
		size_t n = i == 0 ? 3 : strlen(inputs[i]);
		int rc = rf_sigma_compile((const uint8_t *)inputs[i], n, "g.yml", NULL, &r, &d);

		if (rc == 0)
			fail_msg("garbage %zu compiled", i);
		assert_null(r);
		assert_int_equal(d.count, 1);
	}
}

/* ---- end to end through the real engine: compile -> pack -> verify/load -> eval ------------- */

struct engine_case {
	struct rf_manifest *m;
	struct rf_engine *e;
	struct rf_engine_scratch *s;
};

static void count_alert(void *ud, size_t rule_index, const struct rf_rule_info *rule)
{
	(*(int *)ud)++;
	(void)rule_index;
	(void)rule;
}

/* Compile one rule against the test manifest and load its pack into a real engine. */
static void engine_for(struct engine_case *ec, const char *src)
{
	struct rf_diag d = {0};
	struct rf_sigma_rule *r = NULL;
	struct rf_pack_builder *b = NULL;
	uint8_t *pack = NULL;
	size_t plen;

	ec->m = manifest_new();
	if (rf_sigma_compile((const uint8_t *)src, strlen(src), "e2e.yml", ec->m, &r, &d) != 0)
		fail_msg("compile: %s\n%s", d.first, src);
	assert_int_equal(rf_pack_builder_new(&b), 0);
	assert_int_equal(rf_pack_builder_add(b, rf_sigma_rule_ir(r), &d), 0);
	assert_int_equal(rf_pack_builder_finish(b, 1, &pack, &plen), 0);
	if (rf_engine_load(pack, plen, ec->m, &ec->e, &d) != 0)
		fail_msg("load: %s", d.first);
	assert_int_equal(rf_engine_scratch_new(ec->e, &ec->s), 0);
	free(pack);
	rf_pack_builder_free(b);
	rf_sigma_rule_free(r);
}

static void engine_done(struct engine_case *ec)
{
	rf_engine_scratch_free(ec->s);
	rf_engine_free(ec->e);
	rf_manifest_free(ec->m);
}

/* Does the rule fire on this JSON event line? */
static bool fires(struct engine_case *ec, const char *json)
{
	static struct rf_event ev;
	uint8_t scratch[1024];
	struct rf_diag d = {0};
	int alerts = 0;

	assert_true(strlen(json) <= sizeof(scratch));
	if (rf_event_parse((const uint8_t *)json, strlen(json), scratch, sizeof(scratch), &ev, &d))
		fail_msg("event: %s: %s", json, d.first);
	int n = rf_engine_eval(ec->e, &ev, ec->s, count_alert, &alerts, NULL);
	assert_true(n >= 0);
	assert_int_equal(n, alerts);
	return alerts > 0;
}

#define PC "{\"event\":\"process_creation\","

/* Compile rule (header + detection) and check each event: "+{...}" must fire, "-{...}" not. */
static void semantics_h(const char *header, const char *detection, const char *const *events)
{
	struct engine_case ec = {0};
	char src[2048];

	snprintf(src, sizeof(src), "%sdetection:\n%s", header, detection);
	engine_for(&ec, src);
	for (; *events; events++) {
		bool want = (*events)[0] == '+';
		if (fires(&ec, *events + 1) != want)
			fail_msg("rule:\n%s\nevent %s: expected %s", src, *events + 1,
				 want ? "an alert" : "no alert");
	}
	engine_done(&ec);
}

static void semantics(const char *detection, const char *const *events)
{
	semantics_h(HEADER, detection, events);
}

#define NC "{\"event\":\"network_connection\","
#define NC_HEADER "title: T\nid: r1\nlogsource:\n  category: network_connection\n"

/* Every modifier of the specification through the real engine (compile, pack, verify, load,
 * evaluate), on the specification's examples. */
static void test_e2e_spec_modifiers(void **state)
{
	/* windash: -, /, en dash, em dash, horizontal bar are interchangeable at a word start */
	semantics("  s: {CommandLine|windash|contains: ' -enc '}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"powershell -enc x\"}",
					"+" PC "\"CommandLine\":\"powershell /ENC x\"}",
					"+" PC "\"CommandLine\":\"powershell \u2013enc x\"}",
					"+" PC "\"CommandLine\":\"powershell \u2014enc x\"}",
					"+" PC "\"CommandLine\":\"powershell \u2015enc x\"}",
					"-" PC "\"CommandLine\":\"powershell _enc x\"}",
					"-" PC "\"CommandLine\":\"powershell \\\\enc x\"}", NULL});
	/* re: searched anywhere, case-sensitive; i, m, s */
	semantics("  s: {CommandLine|re: '-e(nc)? [A-Za-z0-9+/=]{8,}'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"ps -enc SQBFAFgAIAA=\"}",
					"+" PC "\"CommandLine\":\"ps -e SQBFAFgAIAA\"}",
					"-" PC "\"CommandLine\":\"ps -ENC SQBFAFgAIAA=\"}",
					"-" PC "\"CommandLine\":\"ps -enc abc\"}", NULL});
	semantics("  s: {CommandLine|re|i: '-ENC\\s'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"ps -enc x\"}",
					"-" PC "\"CommandLine\":\"ps -encx\"}", NULL});
	semantics("  s: {CommandLine|re: '^b$'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"b\"}",
					"-" PC "\"CommandLine\":\"a\\nb\\nc\"}", NULL});
	semantics("  s: {CommandLine|re|m: '^b$'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"a\\nb\\nc\"}",
					"-" PC "\"CommandLine\":\"a\\nbb\\nc\"}", NULL});
	semantics("  s: {CommandLine|re: 'a.c'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"abc\"}",
					"-" PC "\"CommandLine\":\"a\\nc\"}", NULL});
	semantics("  s: {CommandLine|re|s: 'a.c'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"a\\nc\"}", NULL});
	/* base64offset|contains: 'http://' inside any Base64 text, at any of the three offsets */
	semantics("  s: {CommandLine|base64offset|contains: 'http://'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"x aHR0cDovL2V2aWwuY29t\"}",
					"+" PC "\"CommandLine\":\"x IGh0dHA6Ly9ldmlsLmNvbQ==\"}",
					"+" PC "\"CommandLine\":\"x ICBodHRwOi8vZXZpbC5jb20=\"}",
					"-" PC "\"CommandLine\":\"x aHR0cHM6Ly9ldmlsLmNvbQ==\"}", NULL});
	/* wide|base64offset: PowerShell -EncodedCommand text holding IEX */
	semantics("  s: {CommandLine|wide|base64offset|contains: 'IEX'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"-enc SQBFAFgAIAAoAA==\"}",
					"-" PC "\"CommandLine\":\"-enc SQBFAA==\"}", NULL});
	/* base64 of the whole value */
	semantics("  s: {CommandLine|base64: '/bin/sh'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"L2Jpbi9zaA==\"}",
					"-" PC "\"CommandLine\":\"x L2Jpbi9zaA==\"}", NULL});
	/* gt, gte, lt, lte on an int field */
	semantics("  s: {ProcessId|gt: 4}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"ProcessId\":5}", "-" PC "\"ProcessId\":4}",
					"-" PC "\"ProcessId\":\"x\"}", "-" PC "\"Image\":\"a\"}", NULL});
	semantics("  s: {ProcessId|gte: 4}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"ProcessId\":4}", "-" PC "\"ProcessId\":-5}", NULL});
	semantics("  s: {ProcessId|lt: 4}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"ProcessId\":-5}", "-" PC "\"ProcessId\":4}", NULL});
	semantics("  s: {ProcessId|lte: 4}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"ProcessId\":\"4\"}", "-" PC "\"ProcessId\":40}",
					NULL});
	/* cidr, IPv4 and IPv6 */
	semantics_h(NC_HEADER,
		    "  s:\n    DestinationIp|cidr:\n      - 10.0.0.0/8\n      - 'fe80::/10'\n"
		    "  condition: s\n",
		    (const char *const[]){"+" NC "\"DestinationIp\":\"10.200.3.4\"}",
					  "+" NC "\"DestinationIp\":\"::ffff:10.0.0.1\"}",
					  "+" NC "\"DestinationIp\":\"FE80::1\"}",
					  "-" NC "\"DestinationIp\":\"11.0.0.1\"}",
					  "-" NC "\"DestinationIp\":\"fec0::1\"}",
					  "-" NC "\"DestinationIp\":\"not an ip\"}", NULL});
	semantics_h(NC_HEADER, "  s: {DestinationIp|cidr: 192.168.1.77/24}\n  condition: s\n",
		    (const char *const[]){"+" NC "\"DestinationIp\":\"192.168.1.1\"}",
					  "-" NC "\"DestinationIp\":\"192.168.2.1\"}", NULL});
	semantics_h(NC_HEADER, "  s: {DestinationIp|cidr: 0.0.0.0/0}\n  condition: s\n",
		    (const char *const[]){"+" NC "\"DestinationIp\":\"1.2.3.4\"}",
					  "-" NC "\"DestinationIp\":\"::1\"}", NULL});
	/* booleans are the text the event carries; exists; null; all; cased */
	semantics("  s: {User: true}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"User\":\"true\"}", "+" PC "\"User\":true}",
					"+" PC "\"User\":\"True\"}", "-" PC "\"User\":\"false\"}",
					NULL});
	semantics("  s: {CommandLine|contains|all: [' -a', ' -b']}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"x -b -a\"}",
					"-" PC "\"CommandLine\":\"x -a\"}", NULL});
	semantics("  s: {CommandLine|windash|contains|all: [' -a', ' -b']}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"x /b -a\"}",
					"-" PC "\"CommandLine\":\"x /a\"}", NULL});
}

static void test_e2e_modifiers_and_case(void **state)
{
	semantics("  s: {CommandLine|contains: ' -enc '}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"powershell -ENC abc\"}",
					"+" PC "\"CommandLine\":\"x -enc y\"}",
					"-" PC "\"CommandLine\":\"x -encode y\"}",
					"-" PC "\"Image\":\"x -enc y\"}", NULL});
	semantics("  s: {Image|endswith: '\\cmd.exe'}\n  condition: s\n",
		  (const char *const[]){"+" PC
					"\"Image\":\"C:\\\\Windows\\\\System32\\\\CMD.EXE\"}",
					"-" PC "\"Image\":\"C:\\\\x\\\\cmd.exe.bak\"}",
					"-" PC "\"Image\":\"C:\\\\x\\\\notcmd.exe\"}", NULL});
	semantics("  s: {Image|startswith: 'C:\\Users\\'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"Image\":\"c:\\\\users\\\\bob\\\\a.exe\"}",
					"-" PC "\"Image\":\"D:\\\\Users\\\\a.exe\"}", NULL});
	/* exact match is whole-value, case-insensitive; |cased is not */
	semantics("  s: {OriginalFileName: 'psexec.c'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"OriginalFileName\":\"PsExec.C\"}",
					"-" PC "\"OriginalFileName\":\"psexec.cpp\"}", NULL});
	semantics("  s: {OriginalFileName|cased: 'psexec.c'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"OriginalFileName\":\"psexec.c\"}",
					"-" PC "\"OriginalFileName\":\"PsExec.c\"}", NULL});
	semantics("  s: {CommandLine|contains|cased: 'Invoke-'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"a Invoke-Expr\"}",
					"-" PC "\"CommandLine\":\"a invoke-expr\"}", NULL});
	/* |all: every value; plain list: any */
	semantics("  s: {CommandLine|contains|all: [comsvcs, minidump]}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"comsvcs.dll, MiniDump 1 x\"}",
					"-" PC "\"CommandLine\":\"comsvcs.dll\"}", NULL});
}

static void test_e2e_wildcards(void **state)
{
	/* Sigma: "\\*" is an escaped backslash then a wildcard ("\*" alone is a literal star) */
	semantics("  s: {Image: 'C:\\\\*\\tool?.exe'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"Image\":\"C:\\\\a\\\\b\\\\tool7.exe\"}",
					"-" PC "\"Image\":\"C:\\\\a\\\\tool.exe\"}",
					"-" PC "\"Image\":\"C:\\\\a\\\\tool77.exe\"}", NULL});
	/* \* is a literal star, \\ a literal backslash */
	semantics("  s: {CommandLine: 'a\\*b'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"a*b\"}",
					"-" PC "\"CommandLine\":\"axb\"}", NULL});
	semantics("  s: {CommandLine|endswith: 'x\\\\*'}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"CommandLine\":\"-x\\\\anything\"}",
					"-" PC "\"CommandLine\":\"-xanything\"}", NULL});
}

static void test_e2e_absent_null_exists_int(void **state)
{
	/* a predicate on an absent field is false, so its negation is true */
	semantics("  s: {User|contains: SYSTEM}\n  condition: not s\n",
		  (const char *const[]){"+" PC "\"Image\":\"a\"}",
					"-" PC "\"User\":\"NT AUTHORITY\\\\SYSTEM\"}",
					"+" PC "\"User\":\"bob\"}", NULL});
	semantics("  s: {User: null}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"Image\":\"a\"}", "+" PC "\"User\":\"\"}",
					"+" PC "\"User\":null}", "-" PC "\"User\":\"bob\"}", NULL});
	semantics(
	    "  s: {User|exists: true}\n  condition: s\n",
	    (const char *const[]){"-" PC "\"Image\":\"a\"}", "+" PC "\"User\":\"bob\"}", NULL});
	semantics(
	    "  s: {User|exists: false}\n  condition: s\n",
	    (const char *const[]){"+" PC "\"Image\":\"a\"}", "-" PC "\"User\":\"bob\"}", NULL});
	semantics("  s: {ProcessId: 4}\n  condition: s\n",
		  (const char *const[]){"+" PC "\"ProcessId\":4}", "-" PC "\"ProcessId\":44}",
					"-" PC "\"Image\":\"4\"}", NULL});
	semantics("  kw: ['sekurlsa::']\n  condition: kw\n",
		  (const char *const[]){"+" PC
					"\"CommandLine\":\"m.exe SEKURLSA::logonpasswords\"}",
					"+" PC "\"ParentImage\":\"x sekurlsa:: y\"}",
					"-" PC "\"CommandLine\":\"sekurlsa\"}", NULL});
}

static void test_e2e_conditions(void **state)
{
	const char *det = "  sel_img: {Image|endswith: '\\rundll32.exe'}\n"
			  "  sel_cli: {CommandLine|contains: 'javascript:'}\n"
			  "  filter_x: {User: 'svc'}\n"
			  "  condition: all of sel_* and not 1 of filter_*\n";

	semantics(det,
		  (const char *const[]){
		      "+" PC "\"Image\":\"C:\\\\rundll32.exe\",\"CommandLine\":\"javascript:x\"}",
		      "-" PC "\"Image\":\"C:\\\\rundll32.exe\",\"CommandLine\":\"a.dll,b\"}",
		      "-" PC "\"Image\":\"C:\\\\rundll32.exe\",\"CommandLine\":\"javascript:x\","
		      "\"User\":\"SVC\"}",
		      NULL});
	semantics("  a: {Image: a}\n  b: {User: b}\n  condition: a or b and not a\n",
		  (const char *const[]){"+" PC "\"Image\":\"a\"}", "+" PC "\"User\":\"b\"}",
					"-" PC "\"User\":\"c\"}", NULL});
	semantics("  a: {Image: a}\n  b: {User: b}\n  condition: (a or b) and not a\n",
		  (const char *const[]){"-" PC "\"Image\":\"a\"}", "+" PC "\"User\":\"b\"}", NULL});
}

static void test_e2e_cidr_on_string(void **state)
{
	/* User is a string field in the test manifest: the value is parsed as an address; text
	 * that is not one ("-", as Windows writes IpAddress when there is none) does not match. */
	static const char *const ev[] = {
	    "+" PC "\"User\":\"10.1.2.3\"}",
	    "+" PC "\"User\":\"::ffff:10.200.0.1\"}",
	    "-" PC "\"User\":\"11.1.2.3\"}",
	    "-" PC "\"User\":\"-\"}",
	    "-" PC "\"User\":\"10.1.2.3:445\"}",
	    "-" PC "\"Image\":\"10.1.2.3\"}",
	    NULL,
	};
	semantics("  s:\n    User|cidr: 10.0.0.0/8\n  condition: s\n", ev);
	static const char *const ev6[] = {
	    "+" PC "\"User\":\"fe80::1\"}",
	    "-" PC "\"User\":\"fe00::1\"}",
	    NULL,
	};
	semantics("  s:\n    User|cidr: fe80::/10\n  condition: s\n", ev6);
	/* SigmaHQ's form: `not` a private-range filter fires on text that is no address. */
	static const char *const notf[] = {
	    "+" PC "\"User\":\"-\"}",
	    "+" PC "\"User\":\"8.8.8.8\"}",
	    "-" PC "\"User\":\"192.168.1.1\"}",
	    NULL,
	};
	semantics("  filter:\n    User|cidr: [10.0.0.0/8, 192.168.0.0/16]\n  condition: not filter\n",
		  notf);
}

static void test_e2e_fieldref(void **state)
{
	/* Equal values fire, case-insensitively unless cased; either field absent: false, so
	 * `not` of it is true (the SigmaHQ filter form). */
	static const char *const same[] = {
	    "+" PC "\"User\":\"CORP\\\\ann\",\"Image\":\"corp\\\\ANN\"}",
	    "+" PC "\"User\":\"\",\"Image\":\"\"}",
	    "-" PC "\"User\":\"corp\\\\ann\",\"Image\":\"corp\\\\bob\"}",
	    "-" PC "\"User\":\"ann\",\"Image\":\"ann \"}",
	    "-" PC "\"User\":\"ann\"}",
	    "-" PC "\"Image\":\"ann\"}",
	    "-" PC "\"User\":\"ann\",\"Image\":null}",
	    NULL,
	};
	semantics("  s:\n    User|fieldref: Image\n  condition: s\n", same);
	static const char *const cased[] = {
	    "+" PC "\"User\":\"Ann\",\"Image\":\"Ann\"}",
	    "-" PC "\"User\":\"Ann\",\"Image\":\"ann\"}",
	    NULL,
	};
	semantics("  s:\n    User|fieldref|cased: Image\n  condition: s\n", cased);
	static const char *const filter[] = {
	    "+" PC "\"Image\":\"C:\\\\x\\\\cmd.exe\",\"User\":\"a\",\"ParentImage\":\"b\"}",
	    "-" PC "\"Image\":\"C:\\\\x\\\\cmd.exe\",\"User\":\"a\",\"ParentImage\":\"A\"}",
	    "+" PC "\"Image\":\"C:\\\\x\\\\cmd.exe\",\"User\":\"a\"}",
	    NULL,
	};
	semantics("  sel:\n    Image|endswith: '\\cmd.exe'\n  same:\n    User|fieldref: ParentImage\n"
		  "  condition: sel and not same\n",
		  filter);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_map_is_and_list_is_or),
	    cmocka_unit_test(test_modifiers),
	    cmocka_unit_test(test_wildcards_and_escapes_pass_through),
	    cmocka_unit_test(test_exists_null_empty),
	    cmocka_unit_test(test_integers),
	    cmocka_unit_test(test_integer_values),
	    cmocka_unit_test(test_keywords),
	    cmocka_unit_test(test_atoms_are_shared),
	    cmocka_unit_test(test_precedence),
	    cmocka_unit_test(test_quantifiers),
	    cmocka_unit_test(test_condition_list_is_or),
	    cmocka_unit_test(test_condition_errors),
	    cmocka_unit_test(test_unsupported_modifiers),
	    cmocka_unit_test(test_modifier_combinations),
	    cmocka_unit_test(test_spec_modifiers_ir),
	    cmocka_unit_test(test_regex_constructs),
	    cmocka_unit_test(test_rule_level_rejections),
	    cmocka_unit_test(test_header_fields_carried),
	    cmocka_unit_test(test_manifest),
	    cmocka_unit_test(test_logsource),
	    cmocka_unit_test(test_logsource_declared),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_limits_sizes),
	    cmocka_unit_test(test_truncated_at_every_byte),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_e2e_modifiers_and_case),
	    cmocka_unit_test(test_e2e_spec_modifiers),
	    cmocka_unit_test(test_e2e_wildcards),
	    cmocka_unit_test(test_e2e_absent_null_exists_int),
	    cmocka_unit_test(test_e2e_conditions),
	    cmocka_unit_test(test_fieldref),
	    cmocka_unit_test(test_expand),
	    cmocka_unit_test(test_e2e_fieldref),
	    cmocka_unit_test(test_e2e_cidr_on_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
