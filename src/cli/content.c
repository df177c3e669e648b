/*
 * `ringfence content`: verify, inspect and evaluate packs, print this build's agent manifest, and
 * dispatch `compile` to the Sigma compiler (compile.c). A thin layer over include/ringfence/
 * content.h: it reads files, prints diagnostics and alerts, and maps results to exit codes
 * (0 ok, 1 the pack or some input was rejected, 2 usage or I/O error).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/opt.h"
#include "common/util.h"
#include "ringfence/content.h"
#include "ringfence/correlate.h"
#include "ringfence/limits.h"

#define MAX_MANIFESTS 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ringfence content COMMAND [ARGS...]\n\n"
		"commands:\n"
		"  compile RULE.yml|DIR... -o PACK [--manifest M] [--strict]\n"
		"                  compile Sigma rules into a pack\n"
		"  verify PACK --manifest M [--manifest M2 ...]\n"
		"                  check PACK against every agent manifest; exit 0 if it loads on "
		"all,\n"
		"                  1 if rejected (every problem on stderr), 2 usage or I/O error\n"
		"  inspect PACK [--json]\n"
		"                  show the pack's header and rules\n"
		"  eval PACK [--manifest M] [EVENTS.jsonl|-]\n"
		"                  evaluate JSON-lines events (stdin by default); alerts as JSON "
		"lines;\n"
		"                  M defaults to this build's manifest; exit 1 if PACK does not "
		"verify\n"
		"  manifest        print this build's agent manifest (JSON)\n");
}

static void print_diag(void *ud, int code, const char *msg)
{
	fprintf(stderr, "%s: %s\n", (const char *)ud, msg);
}

static int read_manifest(const char *path, struct rf_manifest **ret)
{
	uint8_t *buf = NULL;
	size_t n;
	struct rf_diag d = {.emit = print_diag, .userdata = (void *)path};
	int r = rf_file_read(path, RF_MANIFEST_MAX, &buf, &n);

	if (r < 0) {
		fprintf(stderr, "ringfence content: %s: %s\n", path, rf_strerror(r));
		return r;
	}
	r = rf_manifest_parse(buf, n, ret, &d);
	free(buf);
	return r;
}

static int read_pack(const char *path, uint8_t **buf, size_t *n)
{
	int r = rf_file_read(path, RF_PACK_MAX, buf, n);

	if (r < 0)
		fprintf(stderr, "ringfence content: %s: %s\n", path, rf_strerror(r));
	return r;
}

/* ---- verify ------------------------------------------------------------------------------ */

static int cmd_verify(int argc, char **argv)
{
	const char *pack = NULL, *mpaths[MAX_MANIFESTS];
	struct rf_manifest *ms[MAX_MANIFESTS] = {0};
	size_t nm = 0;
	uint8_t *buf = NULL;
	size_t n;
	int rc = 2, c;
	static const struct option lo[] = {
	    {"manifest", required_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'}, {0}};

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence content verify")) != -1) {
		switch (c) {
		case 'h':
			printf("usage: ringfence content verify PACK --manifest M [--manifest M2 "
			       "...]\n"
			       "Checks PACK's structure and checks it against every manifest "
			       "(events and\n"
			       "fields supplied with the right types). Exit 0 if it loads on all, "
			       "1 if\n"
			       "rejected (every problem on stderr), 2 usage or I/O error.\n");
			return 0;
		case 'm':
			if (nm == MAX_MANIFESTS) {
				fprintf(stderr, "ringfence content verify: at most %d manifests\n",
					MAX_MANIFESTS);
				return 2;
			}
			mpaths[nm++] = optarg;
			break;
		default:
			return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (!pack) {
			pack = argv[i];
		} else {
			fprintf(stderr, "ringfence content verify: one pack only\n");
			return 2;
		}
	}
	if (!pack || nm == 0) {
		fprintf(stderr,
			"usage: ringfence content verify PACK --manifest M [--manifest M2 ...]\n");
		return 2;
	}
	for (size_t i = 0; i < nm; i++)
		if (read_manifest(mpaths[i], &ms[i]) < 0)
			goto out;
	if (read_pack(pack, &buf, &n) < 0)
		goto out;
	struct rf_diag d = {.emit = print_diag, .userdata = (void *)pack};
	struct rf_pack *pk = NULL;
	int r = rf_pack_open(buf, n, &pk, &d);
	if (r < 0) {
		fprintf(stderr, "%s: rejected: %s (%u problem%s)\n", pack, rf_strerror(r), d.count,
			d.count == 1 ? "" : "s");
		rc = 1;
		goto out;
	}
	rc = 0;
	bool compiled = false;
	for (size_t i = 0; i < nm; i++) {
		unsigned before = d.count;
		r = rf_pack_check(pk, ms[i], &d);
		if (r == 0 && !compiled) {
			/* Build the matchers as the agent will: Vectorscan's full compile can
			 * refuse a pattern its parser accepted (resource limits); the publisher
			 * must see that. */
			struct rf_engine *e = NULL;
			r = rf_engine_load(buf, n, ms[i], &e, &d);
			rf_engine_free(e);
			compiled = r == 0;
		}
		if (r < 0) {
			fprintf(stderr, "%s: rejected by %s %s (%s): %u problem%s\n", pack,
				rf_manifest_agent(ms[i]), rf_manifest_version(ms[i]), mpaths[i],
				d.count - before, d.count - before == 1 ? "" : "s");
			rc = 1;
		} else {
			printf("%s: verifies against %s %s (%s)\n", pack, rf_manifest_agent(ms[i]),
			       rf_manifest_version(ms[i]), mpaths[i]);
		}
	}
	rf_pack_free(pk);
out:
	for (size_t i = 0; i < nm; i++)
		rf_manifest_free(ms[i]);
	free(buf);
	return rc;
}

/* ---- JSON output helpers ------------------------------------------------------------------ */

static void json_strn(FILE *f, const void *p, size_t n)
{
	const unsigned char *s = p;

	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* ---- inspect ----------------------------------------------------------------------------- */

static int cmd_inspect(int argc, char **argv)
{
	const char *pack = NULL;
	bool json = false;
	uint8_t *buf = NULL;
	size_t n;
	int c;
	static const struct option lo[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0}};

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence content inspect")) != -1) {
		switch (c) {
		case 'h':
			printf("usage: ringfence content inspect PACK [--json]\n"
			       "Shows the header (format version, content sequence number, table "
			       "sizes)\n"
			       "and every rule (id, title, level, author, event, program length). "
			       "Exit 1\n"
			       "if the pack's structure is invalid.\n");
			return 0;
		case 'j':
			json = true;
			break;
		default:
			return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (!pack) {
			pack = argv[i];
		} else {
			fprintf(stderr, "ringfence content inspect: one pack only\n");
			return 2;
		}
	}
	if (!pack) {
		fprintf(stderr, "usage: ringfence content inspect PACK [--json]\n");
		return 2;
	}
	if (read_pack(pack, &buf, &n) < 0)
		return 2;
	struct rf_diag d = {.emit = print_diag, .userdata = (void *)pack};
	struct rf_pack *pk = NULL;
	int r = rf_pack_open(buf, n, &pk, &d);
	free(buf);
	if (r < 0) {
		fprintf(stderr, "%s: rejected: %s\n", pack, rf_strerror(r));
		return 1;
	}
	struct rf_pack_summary s;
	rf_pack_summary(pk, &s);
	if (json)
		printf("{\"format_version\":%u,\"seq\":%llu,\"bytes\":%zu,\"strings\":%zu,"
		       "\"fields\":%zu,\"atoms\":%zu,\"instructions\":%zu,\"rules\":[",
		       s.format_version, (unsigned long long)s.seq, s.total_len, s.n_strings,
		       s.n_fields, s.n_atoms, s.n_code);
	else
		printf("pack %s\n  format version %u, content sequence %llu, %zu bytes\n"
		       "  %zu strings, %zu fields, %zu atoms, %zu rules, %zu instructions\n",
		       pack, s.format_version, (unsigned long long)s.seq, s.total_len, s.n_strings,
		       s.n_fields, s.n_atoms, s.n_rules, s.n_code);
	for (size_t i = 0; i < s.n_rules; i++) {
		struct rf_rule_info ri;
		if (rf_pack_rule(pk, i, &ri) < 0)
			break;
		if (json) {
			printf("%s{\"id\":", i ? "," : "");
			json_str(stdout, ri.id);
			printf(",\"title\":");
			json_str(stdout, ri.title);
			printf(",\"level\":");
			json_str(stdout, ri.level);
			printf(",\"author\":");
			json_str(stdout, ri.author);
			printf(",\"event\":");
			json_str(stdout, ri.event);
			printf(",\"instructions\":%zu}", ri.n_code);
		} else {
			printf("  %s [%s] %s (%s; %s; %zu insns)\n", ri.id,
			       ri.level[0] ? ri.level : "-", ri.title, ri.event,
			       ri.author[0] ? ri.author : "no author", ri.n_code);
		}
	}
	if (json && s.n_corr)
		printf("],\"correlations\":[");
	for (size_t i = 0; i < s.n_corr; i++) {
		struct rf_corr_info ci;
		if (rf_pack_corr(pk, i, &ci) < 0)
			break;
		if (json) {
			printf("%s{\"id\":", i ? "," : "");
			json_str(stdout, ci.id);
			printf(",\"title\":");
			json_str(stdout, ci.title);
			printf(",\"level\":");
			json_str(stdout, ci.level);
			printf(",\"type\":");
			json_str(stdout, ci.type);
			printf(",\"rules\":%zu,\"group_by\":%zu,\"timespan_s\":%u,\"generate\":%s}",
			       ci.n_refs, ci.n_group, ci.timespan_s, ci.generate ? "true" : "false");
		} else {
			printf("  %s [%s] %s (correlation %s of %zu rule%s, %zu group-by, %u s%s)\n",
			       ci.id, ci.level[0] ? ci.level : "-", ci.title, ci.type, ci.n_refs,
			       ci.n_refs == 1 ? "" : "s", ci.n_group, ci.timespan_s,
			       ci.generate ? ", generate" : "");
		}
	}
	if (json)
		printf("]}\n");
	rf_pack_free(pk);
	return 0;
}

/* ---- eval -------------------------------------------------------------------------------- */

/* Events are evaluated in batches (rf_engine_eval_batch): each slot owns its line and the
 * scratch its strings are unescaped into, so the events of a batch stay valid together. The
 * alerts of a batch are collected (event, rule) in event order, then printed and fed to the
 * correlations event by event. */
struct batch {
	size_t n;
	char *line[RF_ENGINE_BATCH_MAX];
	size_t cap[RF_ENGINE_BATCH_MAX];
	uint8_t *scr[RF_ENGINE_BATCH_MAX];
	size_t scrcap[RF_ENGINE_BATCH_MAX];
	unsigned long long lineno[RF_ENGINE_BATCH_MAX];
	struct rf_event ev[RF_ENGINE_BATCH_MAX];
	const struct rf_event *evp[RF_ENGINE_BATCH_MAX];
	size_t *hit_ev, *hit_rule, n_hits, cap_hits;
	bool oom;
	struct rf_corr *corr;
	int64_t time_ms;		/* the last event time seen (events without one keep it) */
	unsigned long long corr_alerts; /* correlation alerts printed */
	unsigned long long rule_alerts; /* rule alerts printed (silent rules' matches are not) */
	unsigned long long cur_line;
	unsigned long long time_unparsed; /* events whose time field did not parse */
	unsigned long long time_missing;  /* events that fed a correlation without a time field */
	const struct rf_manifest *m;	  /* the manifest: each event type's "time" field */
};

/* Read one line of in into *line (grown up to max + 1 bytes, never more, *cap its size),
 * without its newline: the bytes kept (at most max + 1; more means the line is over max), or -1
 * at the end of the input. *total is the line's whole length, however long: a line over the
 * limit is read through, never held. */
static ssize_t read_line(FILE *in, char **line, size_t *cap, size_t max, size_t *total)
{
	size_t l = 0, t = 0;
	int c;

	while ((c = getc_unlocked(in)) != EOF && c != '\n') {
		t++;
		if (l > max)
			continue; /* over the limit: counted, not kept */
		if (l == *cap) {
			size_t ncap = *cap ? *cap * 2 : 4096;
			if (ncap > max + 1)
				ncap = max + 1;
			char *nl = realloc(*line, ncap);
			if (!nl)
				return -2;
			*line = nl;
			*cap = ncap;
		}
		(*line)[l++] = (char)c;
	}
	*total = t;
	if (c == EOF && t == 0)
		return -1;
	return (ssize_t)l;
}

static void on_alert(void *ud, size_t event_index, size_t rule_index, const struct rf_rule_info *r)
{
	struct batch *b = ud;

	(void)r;
	if (b->n_hits == b->cap_hits) {
		size_t nc = b->cap_hits ? 2 * b->cap_hits : 256;
		size_t *e = realloc(b->hit_ev, nc * sizeof(*e));
		if (e)
			b->hit_ev = e;
		size_t *ru = e ? realloc(b->hit_rule, nc * sizeof(*ru)) : NULL;
		if (!e || !ru) {
			b->oom = true;
			return;
		}
		b->hit_rule = ru;
		b->cap_hits = nc;
	}
	b->hit_ev[b->n_hits] = event_index;
	b->hit_rule[b->n_hits++] = rule_index;
}

static void print_rule_alert(unsigned long long line, const struct rf_rule_info *r)
{
	printf("{\"line\":%llu,\"rule\":", line);
	json_str(stdout, r->id);
	printf(",\"title\":");
	json_str(stdout, r->title);
	printf(",\"level\":");
	json_str(stdout, r->level);
	printf(",\"author\":");
	json_str(stdout, r->author);
	printf(",\"event\":");
	json_str(stdout, r->event);
	printf("}\n");
}

static void on_corr_alert(void *ud, const struct rf_corr_alert *a)
{
	struct batch *b = ud;

	b->corr_alerts++;
	printf("{\"line\":%llu,\"correlation\":", b->cur_line);
	json_str(stdout, a->id);
	printf(",\"title\":");
	json_str(stdout, a->title);
	printf(",\"level\":");
	json_str(stdout, a->level);
	printf(",\"type\":");
	json_str(stdout, a->type);
	printf(",\"count\":%u,\"time_ms\":%lld,\"group\":{", a->count, (long long)a->time_ms);
	for (size_t g = 0; g < a->n_group; g++) {
		printf("%s", g ? "," : "");
		json_str(stdout, a->group_names[g]);
		putchar(':');
		json_strn(stdout, a->group_values[g], a->group_lens[g]);
	}
	printf("}}\n");
}

/* Event i of b has a time field that does not parse: its correlations use the last time read
 * (docs/sigma.md "Time"). Said per line, and counted for the summary. */
static void time_unparsed(struct batch *b, size_t i, const char *name)
{
	const char *field = "?";
	const uint8_t *v = NULL;
	size_t n = 0;
	char where[64], q[RF_AGENT_TIME_SAMPLE_MAX + 1];
	struct rf_diag ld = {.emit = print_diag, .userdata = where};

	b->time_unparsed++;
	if (rf_corr_event_time_field_in(
		&b->ev[i], rf_manifest_event_time(b->m, b->ev[i].type, b->ev[i].type_len), &field,
		&v, &n) < 0)
		n = 0;
	snprintf(where, sizeof(where), "%s:%llu", name, b->lineno[i]);
	rf_diag_report(&ld, -EINVAL,
		       "%s \"%s\" does not parse as a time: correlations use the previous event's "
		       "time",
		       field, rf_diag_quote(q, sizeof(q), v, n));
}

/* Evaluate the events collected in b; returns 0 or the engine's error. */
static int flush_batch(const struct rf_engine *e, struct rf_engine_scratch *s, struct batch *b,
		       const char *name)
{
	const struct rf_pack *pk = rf_engine_pack(e);
	size_t h = 0;
	int r;

	if (!b->n)
		return 0;
	/* Refused events were named when read (rf_engine_event_problems). */
	b->n_hits = 0;
	r = rf_engine_eval_batch(e, b->evp, b->n, s, on_alert, b, NULL);
	if (r < 0) {
		fprintf(stderr, "%s: evaluation failed: %s\n", name, rf_strerror(r));
		return r;
	}
	if (b->oom) {
		fprintf(stderr, "ringfence content eval: out of memory\n");
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->n; i++) {
		size_t first = h;
		while (h < b->n_hits && b->hit_ev[h] == i) {
			struct rf_rule_info ri;
			if (!rf_corr_rule_silent(b->corr, b->hit_rule[h]) &&
			    rf_pack_rule(pk, b->hit_rule[h], &ri) == 0) {
				print_rule_alert(b->lineno[i], &ri);
				b->rule_alerts++;
			}
			h++;
		}
		if (!rf_corr_count(b->corr))
			continue;
		int64_t t;
		int tr = rf_corr_event_time_in(
		    &b->ev[i], rf_manifest_event_time(b->m, b->ev[i].type, b->ev[i].type_len), &t);
		if (tr == 0)
			b->time_ms = t;
		else if (tr == -EINVAL)
			time_unparsed(b, i, name);
		else {
			/* a match of a rule some correlation uses, counted at the previous event's
			 * time (other rules' matches do not reach a correlation) */
			for (size_t k = first; k < h; k++)
				if (rf_corr_rule_used(b->corr, b->hit_rule[k])) {
					b->time_missing++;
					break;
				}
		}
		b->cur_line = b->lineno[i];
		(void)rf_corr_event(b->corr, &b->ev[i], b->time_ms, b->hit_rule + first, h - first,
				    on_corr_alert, b);
	}
	b->n = 0;
	return 0;
}

static int cmd_eval(int argc, char **argv)
{
	const char *pack = NULL, *mpath = NULL, *events = NULL;
	struct rf_manifest *m = NULL;
	struct rf_engine *e = NULL;
	struct rf_engine_scratch *s = NULL;
	uint8_t *buf = NULL;
	size_t n;
	FILE *in = NULL;
	int rc = 2, r, c;
	static struct batch b;
	static const struct option lo[] = {
	    {"manifest", required_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'}, {0}};

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence content eval")) != -1) {
		switch (c) {
		case 'h':
			printf(
			    "usage: ringfence content eval PACK [--manifest M] [EVENTS.jsonl|-]\n"
			    "Loads PACK as the agent would (verified against M, by default this "
			    "build's\n"
			    "manifest) and evaluates one JSON event per line, e.g.\n"
			    "  {\"event\":\"process_creation\",\"Image\":\"C:\\\\x.exe\",...}\n"
			    "Alerts go to stdout as JSON lines with the event's line number and "
			    "the\n"
			    "rule's id, title, level and author. A malformed line is reported on "
			    "stderr\n"
			    "and skipped. Exit 0 ok, 1 the pack does not verify, 2 usage or I/O "
			    "error.\n");
			return 0;
		case 'm':
			mpath = optarg;
			break;
		default:
			return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (!pack) {
			pack = argv[i];
		} else if (!events) {
			events = argv[i];
		} else {
			fprintf(stderr, "ringfence content eval: too many arguments\n");
			return 2;
		}
	}
	if (!pack) {
		fprintf(stderr,
			"usage: ringfence content eval PACK [--manifest M] [EVENTS.jsonl|-]\n");
		return 2;
	}
	if (mpath) {
		if (read_manifest(mpath, &m) < 0)
			goto out;
	} else {
		size_t ml;
		const uint8_t *mb = rf_content_builtin_manifest(&ml);
		struct rf_diag d = {.emit = print_diag, .userdata = (void *)"built-in manifest"};
		if (rf_manifest_parse(mb, ml, &m, &d) < 0)
			goto out;
	}
	if (read_pack(pack, &buf, &n) < 0)
		goto out;
	struct rf_diag d = {.emit = print_diag, .userdata = (void *)pack};
	r = rf_engine_load(buf, n, m, &e, &d);
	if (r < 0) {
		fprintf(stderr, "%s: not loaded: %s (%u problem%s against %s %s)\n", pack,
			rf_strerror(r), d.count, d.count == 1 ? "" : "s", rf_manifest_agent(m),
			rf_manifest_version(m));
		rc = r == -ENOMEM ? 2 : 1;
		goto out;
	}
	/* The groups' hash key: random, so no event file can make its group values collide. */
	uint8_t key[16] = {0};
	if (getrandom(key, sizeof(key), GRND_NONBLOCK) != (ssize_t)sizeof(key)) {
		uint64_t x[2] = {rf_now_mono_ns(), (uint64_t)rf_now_wall() ^ (uint64_t)getpid()};
		memcpy(key, x, sizeof(key));
	}
	if (rf_engine_scratch_new(e, &s) < 0 || rf_corr_new(rf_engine_pack(e), key, &b.corr) < 0) {
		fprintf(stderr, "ringfence content eval: out of memory\n");
		goto out;
	}
	/* Events may replay the past, never come from the future: times beyond this clock (plus
	 * RF_CORR_SKEW_MS) are dropped and counted rather than taken as the stream's time. */
	rf_corr_set_clock(b.corr, rf_now_wall() * 1000);
	b.m = m;
	in = (!events || !strcmp(events, "-")) ? stdin : fopen(events, "re");
	if (!in) {
		fprintf(stderr, "ringfence content eval: %s: cannot open\n", events);
		goto out;
	}
	const char *name = events ? events : "-";
	unsigned long long lineno = 0, bad = 0;
	ssize_t len;
	size_t whole;
	while ((len = read_line(in, &b.line[b.n], &b.cap[b.n], RF_EVENT_LINE_MAX, &whole)) >= 0) {
		char *line = b.line[b.n];
		size_t l = (size_t)len;
		lineno++;
		while (l && line[l - 1] == '\r')
			l--;
		if (l == 0)
			continue;
		char where[64];
		snprintf(where, sizeof(where), "%s:%llu", name, lineno);
		struct rf_diag ld = {.emit = print_diag, .userdata = where};
		if (l > RF_EVENT_LINE_MAX) {
			rf_diag_report(&ld, -E2BIG, "line of %zu bytes (limit %u), skipped", whole,
				       RF_EVENT_LINE_MAX);
			bad++;
			continue;
		}
		if (b.scrcap[b.n] < l) {
			uint8_t *ns = realloc(b.scr[b.n], l);
			if (!ns) {
				fprintf(stderr, "ringfence content eval: out of memory\n");
				goto out;
			}
			b.scr[b.n] = ns;
			b.scrcap[b.n] = l;
		}
		if (rf_event_parse((const uint8_t *)line, l, b.scr[b.n], b.scrcap[b.n], &b.ev[b.n],
				   &ld) < 0) {
			bad++;
			continue;
		}
		/* Name what the engine would pass over silently (counted in its stats). */
		(void)rf_engine_event_problems(e, &b.ev[b.n], &ld);
		b.lineno[b.n] = lineno;
		b.evp[b.n] = &b.ev[b.n];
		if (++b.n == RF_ENGINE_BATCH_MAX && flush_batch(e, s, &b, name) < 0)
			goto out;
	}
	if (len == -2) {
		fprintf(stderr, "ringfence content eval: out of memory\n");
		goto out;
	}
	if (flush_batch(e, s, &b, name) < 0)
		goto out;
	b.cur_line = lineno;
	(void)rf_corr_flush(b.corr, on_corr_alert, &b); /* windows still open at the end */
	if (ferror(in)) {
		fprintf(stderr, "ringfence content eval: read error\n");
		goto out;
	}
	fflush(stdout);
	struct rf_engine_stats st;
	rf_engine_scratch_stats(s, &st);
	fprintf(stderr,
		"%s: %llu lines, %llu events, %llu malformed, %llu unknown event type, %llu wrong "
		"field type, %llu refused (value over %u bytes), %llu alerts, %llu rules run, "
		"%llu violations",
		pack, lineno, (unsigned long long)st.events, bad, (unsigned long long)st.unknown,
		(unsigned long long)st.mistyped, (unsigned long long)st.oversize,
		RF_EVENT_VALUE_MAX, b.rule_alerts, (unsigned long long)st.rules_run,
		(unsigned long long)st.violations);
	/* Matches of rules only their correlations speak for (generate: false) are no alerts. */
	if (st.matches > b.rule_alerts)
		fprintf(stderr, ", %llu matches of silent rules (fed to their correlations)",
			(unsigned long long)st.matches - b.rule_alerts);
	fputc('\n', stderr);
	if (rf_corr_count(b.corr)) {
		struct rf_corr_stats cs;
		rf_corr_stats(b.corr, &cs);
		fprintf(
		    stderr,
		    "%s: %zu correlations: %llu alerts, %llu matches not counted (group-by or "
		    "value field absent), %llu groups and %llu window entries dropped at the "
		    "caps, %llu events too late and %llu in the future dropped, %llu events "
		    "with a time that does not parse and %llu matched for a correlation without a "
		    "time field (the previous event's time used)\n",
		    pack, rf_corr_count(b.corr), b.corr_alerts, (unsigned long long)cs.skipped,
		    (unsigned long long)cs.groups_dropped, (unsigned long long)cs.entries_dropped,
		    (unsigned long long)cs.late, (unsigned long long)cs.future, b.time_unparsed,
		    b.time_missing);
	}
	rc = 0;
out:
	if (in && in != stdin)
		fclose(in);
	for (size_t i = 0; i < RF_ENGINE_BATCH_MAX; i++) {
		free(b.line[i]);
		free(b.scr[i]);
	}
	free(b.hit_ev);
	free(b.hit_rule);
	rf_corr_free(b.corr);
	memset(&b, 0, sizeof(b));
	free(buf);
	rf_engine_scratch_free(s);
	rf_engine_free(e);
	rf_manifest_free(m);
	return rc;
}

/* ---- manifest ---------------------------------------------------------------------------- */

static int cmd_manifest(int argc, char **argv)
{
	size_t n;
	const uint8_t *p;
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int c;

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence content manifest")) != -1) {
		if (c != 'h')
			return 2;
		printf("usage: ringfence content manifest\n"
		       "Prints the manifest of the agent this build produces: the event types and\n"
		       "typed fields it supplies (what packs are verified against).\n");
		return 0;
	}
	if (optind < argc) {
		fprintf(stderr, "usage: ringfence content manifest\n");
		return 2;
	}
	p = rf_content_builtin_manifest(&n);
	if (fwrite(p, 1, n, stdout) != n)
		return 2;
	return 0;
}

int rf_cli_content(int argc, char **argv)
{
	int sub, rc = rf_cli_group_start(argc, argv, "ringfence content", usage, &sub);

	if (rc >= 0)
		return rc;
	argc -= sub - 1;
	argv += sub - 1;
	if (!strcmp(argv[1], "compile"))
		return rf_cli_content_compile(argc - 1, argv + 1);
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc - 1, argv + 1);
	if (!strcmp(argv[1], "inspect"))
		return cmd_inspect(argc - 1, argv + 1);
	if (!strcmp(argv[1], "eval"))
		return cmd_eval(argc - 1, argv + 1);
	if (!strcmp(argv[1], "manifest"))
		return cmd_manifest(argc - 1, argv + 1);
	fprintf(stderr, "ringfence content: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
