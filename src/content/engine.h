/*
 * The engine's internal shapes, shared by its two halves: engine_build.c turns a verified pack
 * into matchers (field lookup table, per-field Vectorscan databases, numeric atoms, the
 * prefilter's trigger index) and engine.c evaluates events with them. Everything here is built
 * once at load and read-only afterwards; per-event state lives in struct rf_engine_scratch
 * (engine.c). The model and the cost bound are described at the top of engine.c.
 */
#ifndef RF_CONTENT_ENGINE_H
#define RF_CONTENT_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include <hs/hs.h>

#include "common/util.h"
#include "content/literal.h"
#include "content/pack.h"

struct fslot {		  /* one manifest field in the lookup table */
	uint32_t ev;	  /* manifest event index */
	const char *name; /* manifest field name (owned by names arena) */
	uint32_t name_len;
	int32_t pf;   /* pack field index or -1 */
	uint8_t type; /* manifest type */
};

struct numatom {
	uint32_t atom;
	uint8_t op;   /* RF_OP_EQ, RF_OP_GT.. on int fields; RF_OP_EQ, RF_OP_CIDR on ip fields */
	uint8_t bits; /* RF_OP_CIDR: prefix length (0-128) over the 16-byte address */
	int64_t iv;
	uint8_t ip[16];
};

/* The string atoms of a field go to one of these matchers, by pattern class. */
enum {
	RF_DB_CONTAINS = 0, /* literal contains: a pure-literal Vectorscan database */
	RF_DB_OTHER = 1,    /* globs with wildcards, regular expressions: a Vectorscan database */
	RF_DB_HEAVY = 2,    /* those of them that trigger rules without a factor (always scanned) */
	RF_DB_BARE = 3,	    /* those without a factor that trigger no rule: lazy, apart from the
			     * factored ones, which their factors mostly decide (engine.c unknown) */
	RF_NDB = 4,
};
/* (eq, startswith and endswith literals go to the field's literal set, matched by hashing.) */
/* A contains literal of at most RF_DIRECT_MAX bytes that triggers no rule is in no database: it
 * is searched for directly in its field's value, only when a rule that runs needs it (acls value
 * RF_DB_DIRECT; engine.c direct_eval). Short literals match at most positions of a command line,
 * and the literal database confirms every such match. */
#define RF_DB_DIRECT  (RF_NDB + 1)
#define RF_DIRECT_MAX 4

struct direct {
	uint32_t atom, field;
	uint32_t len;		   /* 1..RF_DIRECT_MAX */
	uint8_t lo[RF_DIRECT_MAX]; /* each byte and its other case (the same byte if cased or not */
	uint8_t up[RF_DIRECT_MAX]; /* a letter) */
};

struct pfield_rt {
	hs_database_t *db[RF_NDB];   /* NULL if the field has no atom of that class */
	bool lazy[RF_NDB];	     /* none of the database's atoms triggers a rule: scan it only
				      * if a rule that runs reads the field (phase 3), not for every
				      * event (phase 2) */
	struct rf_litset lits;	     /* eq/startswith/endswith literals (lits.n == 0 if none) */
	struct rf_shiftset shift;    /* the contains literals and factors instead of
				      * db[RF_DB_CONTAINS] when they are few (literal.h) */
	uint32_t num_off, num_len;   /* int/ip atoms in e->nums */
	uint32_t pres_off, pres_len; /* EXISTS atoms in e->pres */
	uint32_t null_off, null_len; /* NULL atoms in e->nulls */
	uint32_t ev;		     /* manifest event index (if ev_ok) */
	bool ev_ok;		     /* the field's event is one the manifest supplies */
};

/*
 * Rule programs as the interpreter runs them (built at load from the verified pack programs):
 * the same postfix instructions, except that a Sigma value list, ATOM (ATOM OR)* or
 * ATOM (ATOM AND)*, becomes one RF_X_ANY or RF_X_ALL instruction whose argument indexes
 * e->xlists. OR and AND are commutative and idempotent, so a list is the set of its atoms,
 * grouped by the 64-bit word of the event's bit set they live in: ANY is "some group's word
 * meets its mask", ALL "every group's word holds its whole mask", each decided at the first group
 * that settles it. A program whose top level is a conjunction c1 AND c2 AND ... ck runs as
 * c1 REQ c2 REQ ... ck (engine_build.c `split_conjuncts`): a rule that runs is almost always
 * false, and the first false conjunct ends it. The pack's programs stay what the prefilter and the
 * lazy databases are computed from.
 */
enum {
	RF_X_ANY = 0x40, /* push: some atom of list arg is true */
	RF_X_ALL = 0x41, /* push: every atom of list arg is true */
	RF_X_REQ = 0x42, /* pop: if false, the rule is false (stop); a top-level conjunct */
};

enum { RF_NEEDS_LAZY = 1, RF_NEEDS_DIRECT = 2 };

struct xrule {
	uint32_t off, len; /* its run-time program in e->xcode */
	uint32_t ev;	   /* = rule_ev */
	uint8_t needs;	   /* RF_NEEDS_LAZY if lazy_len, RF_NEEDS_DIRECT if dir_len */
};

struct xgroup {
	uint32_t word; /* < e->n_bits / 64 + 1 (the scratch's words per event) */
	uint64_t mask;
};

struct xlist {
	uint32_t goff, glen; /* groups in e->xgroups */
	uint32_t aoff, alen; /* the distinct atoms in e->xatoms (for three-valued evaluation) */
	bool lazy;	     /* some atom lives in a lazy database: may be unknown (run_rule3) */
};

struct evtype {
	char *name;
	size_t name_len;
	uint32_t always_off, always_len; /* rules without a trigger set */
	uint32_t nf_off, nf_len;	 /* pack fields of this event that have NULL atoms */
	uint32_t fr_off, fr_len;	 /* FIELDREF atoms on this event's fields, in e->frefs */
	bool open; /* manifest "other_fields": keywords also search its unlisted string fields */
};

struct rf_engine {
	struct rf_pack *pk;
	uint64_t serial;       /* unique in the process: a scratch (and its value cache) made for an
				* engine since freed is refused even if this one has the same address */
	char *agent, *version; /* the manifest's, for diagnostics */
	size_t n_ev;
	struct evtype *evs;
	struct fslot *slots;
	uint32_t nslots;
	char *names;
	struct pfield_rt *pf;
	hs_database_t *kwdb;
	struct numatom *nums;
	uint32_t *pres, *nulls, *nullfields, *always;
	uint32_t *frefs;		 /* FIELDREF atoms, grouped per event type */
	uint32_t *trig_off, *trig_rules; /* CSR: atom or factor -> rules */
	/* Factors: the longest literal of each glob with wildcards (RF_DB_OTHER), searched in the
	 * field's literal database as bit n_atoms + i; a glob cannot match a value its factor is
	 * not in, so the factor stands for the glob in trigger sets and the RF_DB_OTHER database
	 * need only be scanned when a rule that runs reads it. */
	uint32_t n_bits;  /* n_atoms + factors: the size of an event's bit set */
	uint32_t *factor; /* per atom: its factor's bit, or UINT32_MAX */
	struct {
		uint32_t atom, len; /* the glob it stands for; the literal's length */
		const char *lit;    /* in factor_arena */
	} * factors;
	char *factor_arena;
	uint8_t *acls;		       /* per atom: its class (atom_class), RF_NDB if none */
	uint32_t *rule_ev;	       /* manifest event of each rule */
	uint32_t *lazy_off, *lazy_len; /* per rule: the lazy databases it reads */
	uint32_t *lazy_fields;	       /* field * RF_NDB + database class */
	struct direct *directs;	       /* RF_DB_DIRECT atoms */
	uint32_t n_directs;
	uint32_t *didx;		     /* per atom: its index in directs, or UINT32_MAX */
	uint32_t *dir_off, *dir_len; /* per rule: the RF_DB_DIRECT atoms it reads, */
	uint32_t *dir_list;	     /* as indexes in directs */
	uint32_t *xcode;	     /* run-time programs */
	/* What phase 3 asks of every candidate rule, in one record (one cache line instead of four
	 * per-rule arrays), and of every atom in three-valued evaluation, in one byte: cachegrind
	 * on the SigmaHQ bench counted those loads among the evaluation's largest sources of L1
	 * misses. */
	struct xrule *xr; /* per rule */
	uint8_t *mayunk;  /* per atom: 1 if it may be unknown in three-valued evaluation (its
			   * class is RF_DB_DIRECT or a lazy database); unknown() is false if 0 */
	struct xlist *xlists;
	struct xgroup *xgroups;
	uint32_t *xatoms;
	uint32_t n_xcode, n_xlists, n_xatoms;
	size_t scratch_bytes;
	/* Loading from a cache (cache.c): databases to use instead of compiling, in db order
	 * (per field ascending: contains, other; then keywords); taken ones are set to NULL. */
	hs_database_t **pre;
	const uint8_t (*pre_digests)[32];
	uint32_t npre, ipre;
	uint8_t (*digests)[32]; /* of each database, in db order (make_exprs) */
	uint32_t ndigests;
};

/* rf_engine_scratch_new with a value cache of `entries` index entries over a ring of `arena`
 * bytes (docs/engine.md "Value cache"; rf_engine_scratch_new passes RF_VCACHE_ENTRIES and
 * RF_VCACHE_ARENA), its hashes and-ed with hmask (UINT64_MAX; tests pass 0 to make every value
 * collide). entries or arena 0: no value cache, every value is matched (tests compare the two,
 * the benchmark prints both). 0 or -ENOMEM. */
int rf__engine_scratch_new_cache(const struct rf_engine *e, uint32_t entries, size_t arena,
				 uint64_t hmask, struct rf_engine_scratch **ret);

static inline uint32_t slot_hash(uint32_t ev, const void *name, size_t n)
{
	return rf_fnv1a32(name, n, RF_FNV1A32_INIT ^ (ev * 2654435761u));
}

#endif
