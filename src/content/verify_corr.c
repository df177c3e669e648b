/*
 * The verifier of the correlations section (pack format 2; docs/pack-format.md, section 6).
 * Like the rest of verify.c it proves at load what the evaluator (correlate.c) relies on, and
 * reports every reason for rejection: each record's string indices are in range; type and flags
 * are known; a reference is a rule index below the rule count or the index of an EARLIER
 * correlation (so chains are acyclic and evaluate in pack order), never twice the same; chains
 * are at most RF_CORR_CHAIN_MAX deep; counts of refs and group-by fields, the timespan and the
 * condition are within the caps of limits.h (the condition through the builder's own rule,
 * rf__pack_corr_cond_problem); each record's words are contiguous and in order and together cover
 * the word area exactly, so no word is read twice and the cost is linear in the section. A group
 * field of a reference to a correlation must name one of that correlation's group-by entries; it
 * is resolved here to the entry's index (rf_pcorr.gmap), so the evaluator never compares names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content/pack.h"
#include "ringfence/limits.h"

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char *corr_name(const struct rf_pack *pk, uint32_t i, char *out, size_t cap)
{
	char id[80];
	const char *sid = i < pk->n_corr ? rf__pack_str(pk, pk->corrs[i].id) : "";

	snprintf(out, cap, "correlation %u '%s'", i,
		 rf_diag_quote(id, sizeof(id), sid, strlen(sid)));
	return out;
}

/* Check record i (already decoded into pk->corrs[i], words attached). */
static int check_corr(struct rf_pack *pk, uint32_t i, const uint32_t *canon, uint8_t *depth,
		      struct rf_diag *d)
{
	struct rf_pcorr *c = &pk->corrs[i];
	char cn[128];
	const char *why;
	int bad = 0;

	corr_name(pk, i, cn, sizeof(cn));
	if (c->type < RF_CORR_EVENT_COUNT || c->type > RF_CORR_TEMPORAL_ORDERED ||
	    (c->flags & ~RF_CORR_F_GENERATE))
		return rf_diag_report(d, -EBADMSG, "pack: %s: unknown type %u or flags 0x%x", cn,
				      c->type, c->flags);
	if (c->timespan_s == 0 || c->timespan_s > RF_CORR_TIMESPAN_MAX)
		bad = rf_diag_report(d, -E2BIG, "pack: %s: timespan %u s (1..%u)", cn,
				     c->timespan_s, RF_CORR_TIMESPAN_MAX);
	if ((why = rf__pack_corr_cond_problem(c->type, c->n_refs, c->lo, c->hi)))
		bad = rf_diag_report(d, -E2BIG, "pack: %s: %s", cn, why);
	if ((c->field == RF_PACK_NONE) != (c->type != RF_CORR_VALUE_COUNT) ||
	    (c->field != RF_PACK_NONE && (c->field >= pk->n_strings || !pk->strings[c->field].len)))
		bad = rf_diag_report(d, -EBADMSG,
				     "pack: %s: value field missing, empty or out of range "
				     "(required by value_count only)",
				     cn);
	depth[i] = 1;
	for (uint32_t r = 0; r < c->n_refs; r++) {
		uint32_t ref = c->refs[r], x = ref & ~RF_CORR_REF_CORR;
		bool is_corr = ref & RF_CORR_REF_CORR;
		if (is_corr ? x >= i : x >= pk->n_rules) {
			bad = rf_diag_report(
			    d, -EBADMSG, "pack: %s: reference %u to %s %u out of range (%s)", cn, r,
			    is_corr ? "correlation" : "rule", x,
			    is_corr ? "a correlation may refer only to earlier ones"
				    : "no such rule");
			continue;
		}
		for (uint32_t k = 0; k < r; k++)
			if (c->refs[k] == ref)
				bad = rf_diag_report(d, -EBADMSG, "pack: %s: reference %u repeated",
						     cn, r);
		if (is_corr && c->type == RF_CORR_VALUE_COUNT)
			bad = rf_diag_report(d, -EBADMSG,
					     "pack: %s: value_count over a correlation", cn);
		if (is_corr && depth[x] + 1 > depth[i])
			depth[i] = (uint8_t)(depth[x] + 1);
	}
	if (depth[i] > RF_CORR_CHAIN_MAX)
		bad = rf_diag_report(d, -E2BIG, "pack: %s: correlations chained %u deep (limit %u)",
				     cn, depth[i], RF_CORR_CHAIN_MAX);
	for (uint32_t g = 0; g < c->n_group; g++) {
		uint32_t gn = c->group[g];
		if (gn >= pk->n_strings || !pk->strings[gn].len) {
			bad = rf_diag_report(d, -EBADMSG, "pack: %s: group-by %u: bad name", cn, g);
			continue;
		}
		for (uint32_t r = 0; r < c->n_refs; r++) {
			uint32_t f = c->gfield[g * c->n_refs + r], ref = c->refs[r];
			if (f >= pk->n_strings || !pk->strings[f].len) {
				bad = rf_diag_report(
				    d, -EBADMSG, "pack: %s: group-by %u, reference %u: bad field",
				    cn, g, r);
				continue;
			}
			if (!(ref & RF_CORR_REF_CORR) || (ref & ~RF_CORR_REF_CORR) >= i)
				continue;
			/* A correlation's match carries its own group-by values: find which. */
			const struct rf_pcorr *in = &pk->corrs[ref & ~RF_CORR_REF_CORR];
			uint32_t k = 0;
			/* in's own names were checked, but it may have been rejected: guard. */
			while (k < in->n_group &&
			       (in->group[k] >= pk->n_strings || canon[in->group[k]] != canon[f]))
				k++;
			if (k == in->n_group)
				bad = rf_diag_report(
				    d, -EBADMSG,
				    "pack: %s: group-by '%s' reads '%s' from %s, "
				    "which does not group by it",
				    cn, rf__pack_str(pk, gn), rf__pack_str(pk, f),
				    corr_name(pk, ref & ~RF_CORR_REF_CORR, (char[128]){0}, 128));
			else
				c->gmap[g * c->n_refs + r] = (uint8_t)k;
		}
	}
	return bad;
}

int rf__pack_decode_corrs(struct rf_pack *pk, const uint8_t *p, uint32_t size, uint32_t count,
			  const uint32_t *canon, struct rf_diag *d)
{
	uint64_t rec = (uint64_t)count * RF_PACK_CORR_SIZE, expect = 0;
	uint8_t *depth = NULL;
	int bad = 0;

	if (count == 0 || rec > size || (size - rec) % 4)
		return rf_diag_report(d, -EBADMSG,
				      "pack: correlations section: %u records of %u bytes and u32 "
				      "words do not fill its %u bytes (a version 2 pack has at "
				      "least one correlation)",
				      count, RF_PACK_CORR_SIZE, size);
	pk->n_corr_words = (uint32_t)((size - rec) / 4);
	pk->corrs = calloc(count, sizeof(*pk->corrs));
	pk->corr_words = malloc(pk->n_corr_words ? (size_t)pk->n_corr_words * 4 : 4);
	depth = calloc(count, 1);
	if (!pk->corrs || !pk->corr_words || !depth) {
		free(depth);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < pk->n_corr_words; i++)
		pk->corr_words[i] = get32(p + rec + (size_t)i * 4);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *q = p + (size_t)i * RF_PACK_CORR_SIZE;
		struct rf_pcorr *c = &pk->corrs[i];
		uint32_t woff = get32(q + 36), wlen = get32(q + 40);
		char cn[128];
		*c = (struct rf_pcorr){.id = get32(q),
				       .title = get32(q + 4),
				       .level = get32(q + 8),
				       .author = get32(q + 12),
				       .type = q[16],
				       .flags = q[17],
				       .n_refs = q[18],
				       .n_group = q[19],
				       .timespan_s = get32(q + 20),
				       .lo = get32(q + 24),
				       .hi = get32(q + 28),
				       .field = get32(q + 32)};
		pk->n_corr = i + 1;
		for (int k = 0; k < 4; k++)
			if (get32(q + 4 * k) >= pk->n_strings) {
				c->id = c->title = c->level = c->author = 0;
				bad = rf_diag_report(d, -EBADMSG,
						     "pack: correlation %u: string index out of "
						     "range (%u strings)",
						     i, pk->n_strings);
				break;
			}
		corr_name(pk, i, cn, sizeof(cn));
		if (get32(q + 44))
			bad = rf_diag_report(d, -EBADMSG, "pack: %s: reserved bytes not zero", cn);
		if (c->id < pk->n_strings && c->title < pk->n_strings &&
		    (!pk->strings[c->id].len || !pk->strings[c->title].len))
			bad = rf_diag_report(d, -EBADMSG, "pack: %s: empty id or title", cn);
		if (c->n_refs == 0 || c->n_refs > RF_CORR_REFS_MAX ||
		    c->n_group > RF_CORR_GROUP_MAX) {
			bad = rf_diag_report(d, -E2BIG,
					     "pack: %s: %u references (1..%u), %u group-by fields "
					     "(at most %u)",
					     cn, c->n_refs, RF_CORR_REFS_MAX, c->n_group,
					     RF_CORR_GROUP_MAX);
			pk->n_corr = i; /* its words cannot be located safely */
			break;
		}
		uint32_t need = c->n_refs + c->n_group + (uint32_t)c->n_group * c->n_refs;
		if (woff != expect || wlen != need || (uint64_t)woff + wlen > pk->n_corr_words) {
			bad = rf_diag_report(
			    d, -EBADMSG,
			    "pack: %s: words [%u, +%u) invalid: must be contiguous "
			    "(next at %llu), %u long, within %u",
			    cn, woff, wlen, (unsigned long long)expect, need, pk->n_corr_words);
			pk->n_corr = i;
			break;
		}
		expect = (uint64_t)woff + wlen;
		c->refs = pk->corr_words + woff;
		c->group = c->refs + c->n_refs;
		c->gfield = c->group + c->n_group;
		int rc = check_corr(pk, i, canon, depth, d);
		if (rc < 0)
			bad = rc;
	}
	if (!bad && expect != pk->n_corr_words)
		bad = rf_diag_report(d, -EBADMSG, "pack: %llu correlation words belong to none",
				     (unsigned long long)(pk->n_corr_words - expect));
	free(depth);
	return bad;
}

int rf__pack_check_corrs(const struct rf_pack *pk, const struct rf_manifest *m, struct rf_diag *d)
{
	const char *agent = rf_manifest_agent(m), *ver = rf_manifest_version(m);
	int bad = 0;

	for (uint32_t i = 0; i < pk->n_corr; i++) {
		const struct rf_pcorr *c = &pk->corrs[i];
		char cn[128], q[RF_NAME_MAX * 4 + 8];
		for (uint32_t r = 0; r < c->n_refs; r++) {
			if (c->refs[r] & RF_CORR_REF_CORR)
				continue;
			const char *ev = rf__pack_str(pk, pk->rules[c->refs[r]].event);
			if (!rf_manifest_has_event(m, ev))
				continue; /* the rule itself is reported */
			for (uint32_t g = 0; g <= c->n_group; g++) {
				uint32_t f =
				    g < c->n_group ? c->gfield[g * c->n_refs + r] : c->field;
				if (f == RF_PACK_NONE)
					continue;
				const char *fn = rf__pack_str(pk, f);
				if (rf_manifest_field_type(m, ev, fn) >= 0)
					continue;
				bad = rf_diag_report(d, -ENOEXEC,
						     "%s: %s field '%s' of event %s (rule %u) is "
						     "not supplied by %s %s",
						     corr_name(pk, i, cn, sizeof(cn)),
						     g < c->n_group ? "group-by" : "value_count",
						     rf_diag_quote(q, sizeof(q), fn, strlen(fn)),
						     ev, c->refs[r], agent, ver);
			}
		}
	}
	return bad;
}
