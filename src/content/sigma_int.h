/*
 * The Sigma compiler's internals, shared by its files (not a public API: programs use sigma.h).
 *
 *   sigma.c          the rule: header, logsource, detection and condition put together; the API
 *   sigma_yaml.c     the arena, YAML text -> tree (scalars resolved as PyYAML does), tree helpers
 *   sigma_detect.c   search identifiers: keys and their modifiers, values -> atoms and code
 *   sigma_pattern.c  value transformations: windash, UTF-16, base64/base64offset, regular
 *                    expressions, expand and its placeholders
 *   sigma_cond.c     the condition: recursive descent -> code over the identifiers' fragments
 *
 * The functions below keep inside the compiler the short names they had when it was one file;
 * the macros give them the rf__sigma_ prefix of non-static internals at link time. Include this
 * header only from the compiler's own files.
 */
#ifndef RF_CONTENT_SIGMA_INT_H
#define RF_CONTENT_SIGMA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content/ir.h"
#include "content/sigma.h"
#include "ringfence/error.h"
#include "ringfence/limits.h"

#define arena_alloc	  rf__sigma_arena_alloc
#define arena_free	  rf__sigma_arena_free
#define arena_strndup	  rf__sigma_arena_strndup
#define check_map	  rf__sigma_check_map
#define check_regex	  rf__sigma_check_regex
#define compile_condition rf__sigma_compile_condition
#define compile_ident	  rf__sigma_compile_ident
#define emit_atom	  rf__sigma_emit_atom
#define emit_base64	  rf__sigma_emit_base64
#define emit_expand	  rf__sigma_emit_expand
#define emit_value	  rf__sigma_emit_value
#define emit_windash	  rf__sigma_emit_windash
#define eq_any		  rf__sigma_eq_any
#define fail		  rf__sigma_fail
#define has_ctl		  rf__sigma_has_ctl
#define has_nul		  rf__sigma_has_nul
#define is_digit	  rf__sigma_is_digit
#define is_plain_decimal  rf__sigma_is_plain_decimal
#define join		  rf__sigma_join
#define map_get		  rf__sigma_map_get
#define oom		  rf__sigma_oom
#define qs		  rf__sigma_qs
#define scalar_is	  rf__sigma_scalar_is
#define vec_append	  rf__sigma_vec_append
#define vec_push	  rf__sigma_vec_push
#define yaml_load	  rf__sigma_yaml_load

/* ---- the arena: every string and tree node of one compile, freed at once ---------------- */

struct block {
	struct block *next;
	size_t used, cap;
	max_align_t data[];
};

struct arena {
	struct block *head;
};

/* ---- the YAML tree ------------------------------------------------------------------------ */

enum nkind { N_SCALAR = 1, N_SEQ, N_MAP };

/* How a scalar resolves (YAML 1.1 as PyYAML reads it; quoted or !!str scalars are S_STR). */
enum skind {
	S_STR = 1,
	S_NULL, /* plain "", "~", "null" */
	S_BOOL, /* plain true/false/yes/no/on/off in any case PyYAML accepts */
	S_INT,	/* plain decimal integer without leading zeros */
	S_NUMX, /* any other YAML 1.1 number: 0x1f, 017, 1_000, 1:30, 1.5, .inf: ambiguous */
};

struct node {
	enum nkind kind;
	unsigned line;	    /* 1-based line in the file, for messages */
	enum skind sk;	    /* N_SCALAR */
	bool bval;	    /* S_BOOL */
	bool plain;	    /* N_SCALAR: unquoted and untagged */
	const char *s;	    /* N_SCALAR: NUL-terminated copy */
	size_t len;	    /* N_SCALAR: length without the NUL (may hold NUL bytes) */
	struct node **kids; /* N_SEQ items; N_MAP key, value, key, value, ... */
	size_t nkids;
};

/* ---- the compiled rule -------------------------------------------------------------------- */

struct vec {
	uint32_t *v;
	size_t n, cap;
};

struct rf_sigma_rule {
	struct rf_ir_rule ir;
	const char *product; /* the logsource product, NUL-terminated in the arena, or NULL */
	struct arena arena;
	struct rf_ir_atom *atoms;
	size_t n_atoms, cap_atoms;
	struct vec code;
};

struct ident {
	const struct node *name;
	struct vec code;
};

/* Atom de-duplication: open addressing over atom indices (+1, 0 = empty). */
#define ATOM_HASH_SLOTS 4096u
_Static_assert(ATOM_HASH_SLOTS >= 2 * RF_SIGMA_ATOMS_MAX, "atom hash must stay half empty");

struct ctx {
	const char *origin;
	struct rf_diag *d;
	const struct rf_manifest *m;
	struct rf_sigma_rule *r;
	size_t nodes;
	char qid[96], qtitle[160]; /* quoted for messages; "" until known */
	const char *event;
	struct ident *ids;
	size_t nids;
	uint32_t *atom_hash;
	unsigned cond_depth;
	size_t match_steps; /* ident_match work, bounded by RF_SIGMA_MATCH_STEPS_MAX */
	const struct rf_sigma_placeholders *ph;
};

/* Placeholder values for `expand` (rf_sigma_placeholders_parse). */
struct placeholder {
	char *name;
	size_t n;
	char **vals;
	size_t *lens;
};

struct rf_sigma_placeholders {
	size_t n;
	struct placeholder *p;
};

/* ---- search identifiers ------------------------------------------------------------------ */

enum mod {
	M_CONTAINS = 1u << 0,
	M_STARTSWITH = 1u << 1,
	M_ENDSWITH = 1u << 2,
	M_ALL = 1u << 3,
	M_CASED = 1u << 4,
	M_EXISTS = 1u << 5,
	M_WINDASH = 1u << 6,
	M_RE = 1u << 7,
	M_RE_I = 1u << 8,
	M_RE_M = 1u << 9,
	M_RE_S = 1u << 10,
	M_CIDR = 1u << 11,
	M_BASE64 = 1u << 12,
	M_BASE64OFF = 1u << 13,
	M_UTF16LE = 1u << 14,
	M_UTF16BE = 1u << 15,
	M_UTF16 = 1u << 16,
	M_GT = 1u << 17,
	M_GTE = 1u << 18,
	M_LT = 1u << 19,
	M_LTE = 1u << 20,
	M_FIELDREF = 1u << 21,
	M_EXPAND = 1u << 22,
};
#define M_POSITION (M_CONTAINS | M_STARTSWITH | M_ENDSWITH)
#define M_RE_SUB   (M_RE_I | M_RE_M | M_RE_S)
#define M_B64	   (M_BASE64 | M_BASE64OFF)
#define M_UTF	   (M_UTF16LE | M_UTF16BE | M_UTF16)
#define M_NUM	   (M_GT | M_GTE | M_LT | M_LTE)

struct field_spec {
	const char *name; /* NUL-terminated, in the arena; NULL for keywords */
	char qname[96];	  /* field|mods as written, quoted for messages */
	unsigned mods;
	enum rf_ftype mtype; /* type from the manifest, 0 without one */
};

/* ---- messages (sigma.c) ------------------------------------------------------------ */

int fail(struct ctx *c, int code, const char *fmt, ...) RF_PRINTF(3, 4);
int oom(struct ctx *c);
const char *qs(char *buf, size_t sz, const struct node *n);

/* ---- the arena, the YAML tree and its helpers (sigma_yaml.c) ----------------------- */

void *arena_alloc(struct arena *a, size_t n);
char *arena_strndup(struct arena *a, const void *p, size_t n);
void arena_free(struct arena *a);
bool is_digit(char ch);
bool eq_any(const char *s, size_t n, const char *const *words);
bool is_plain_decimal(const char *s, size_t n);
int yaml_load(struct ctx *c, const uint8_t *p, size_t n, struct node **ret);
bool scalar_is(const struct node *n, const char *s);
const struct node *map_get(const struct node *m, const char *key);
int check_map(struct ctx *c, const struct node *m, const char *what);
bool has_nul(const struct node *n);
bool has_ctl(const char *s, size_t n);

/* ---- atoms, code and search identifiers (sigma_detect.c) --------------------------- */

int vec_push(struct ctx *c, struct vec *v, uint32_t insn);
int vec_append(struct ctx *c, struct vec *dst, const struct vec *src);
int join(struct ctx *c, struct vec *v, size_t i, enum rf_insn_op op);
int emit_atom(struct ctx *c, struct vec *v, const char *field, enum rf_ftype t, enum rf_atom_op op,
	      uint32_t flags, const uint8_t *p, size_t n);
int emit_value(struct ctx *c, struct vec *v, const struct field_spec *fs, const struct node *val,
	       const char *ident);
int compile_ident(struct ctx *c, struct ident *id, const struct node *val);

/* ---- value transformations (sigma_pattern.c) --------------------------------------- */

int emit_windash(struct ctx *c, struct vec *v, const struct field_spec *fs, enum rf_atom_op op,
		 uint32_t flags, const uint8_t *p, size_t n, const char *where);
int emit_base64(struct ctx *c, struct vec *v, const struct field_spec *fs, enum rf_atom_op op,
		uint32_t flags, const struct node *val, const char *where);
int check_regex(struct ctx *c, const struct node *val, uint32_t flags, const char *where);
int emit_expand(struct ctx *c, struct vec *v, const struct field_spec *fs, const struct node *val,
		const char *ident, const char *where);

/* ---- the condition (sigma_cond.c) -------------------------------------------------- */

int compile_condition(struct ctx *c, const struct node *cn, struct vec *v);

#endif
