/*
 * Benchmark of Sigma correlation rules (docs/sigma.md "Correlation rules"): the cost per event of
 * evaluating correlations on top of the engine, on process_creation events whose every one
 * matches a rule that feeds four correlations (event_count, value_count, temporal,
 * temporal_ordered, all grouped by User). Two runs: a few hundred users (every group stays in the
 * state), and a flood of distinct users far past RF_CORR_GROUPS_MAX (the least recently active
 * groups are dropped and counted). Prints figures; asserts nothing about time.
 * usage: bench-correlate [--events N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "content/sigma.h"
#include "content/sigma_corr.h"
#include "ringfence/content.h"
#include "ringfence/correlate.h"

static const char yaml[] =
    "title: whoami\nid: b-a\nname: cmd_a\nlogsource:\n  category: process_creation\n"
    "  product: windows\ndetection:\n  s:\n    Image|endswith: '\\whoami.exe'\n  condition: s\n"
    "---\n"
    "title: net\nid: b-b\nname: cmd_b\nlogsource:\n  category: process_creation\n"
    "  product: windows\ndetection:\n  s:\n    Image|endswith: '\\net.exe'\n  condition: s\n"
    "---\n"
    "title: ipconfig\nid: b-c\nname: cmd_c\nlogsource:\n  category: process_creation\n"
    "  product: windows\ndetection:\n  s:\n    Image|endswith: '\\ipconfig.exe'\n"
    "  condition: s\n"
    "---\n"
    "title: burst\nid: c-count\ncorrelation:\n  type: event_count\n  rules: [cmd_a, cmd_b, "
    "cmd_c]\n  group-by: [User]\n  timespan: 1m\n  condition: {gte: 50}\n"
    "---\n"
    "title: many images\nid: c-values\ncorrelation:\n  type: value_count\n  rules: [cmd_a, "
    "cmd_b, cmd_c]\n  group-by: [User]\n  timespan: 5m\n  condition: {field: CommandLine, gte: "
    "20}\n"
    "---\n"
    "title: recon\nid: c-temporal\ncorrelation:\n  type: temporal\n  rules: [cmd_a, cmd_b, "
    "cmd_c]\n  group-by: [User]\n  timespan: 5m\n"
    "---\n"
    "title: recon in order\nid: c-ordered\ncorrelation:\n  type: temporal_ordered\n  rules: "
    "[cmd_a, cmd_b, cmd_c]\n  group-by: [User]\n  timespan: 5m\n";

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

struct hits {
	size_t v[16], n;
};

static void on_rule(void *ud, size_t i, const struct rf_rule_info *r)
{
	struct hits *h = ud;
	(void)r;
	if (h->n < 16)
		h->v[h->n++] = i;
}

static unsigned long long corr_alerts;

static void on_corr(void *ud, const struct rf_corr_alert *a)
{
	(void)ud;
	(void)a;
	corr_alerts++;
}

static int build(const struct rf_manifest *m, uint8_t **pack, size_t *plen)
{
	const uint8_t *p = (const uint8_t *)yaml;
	struct rf_sigma_doc *docs = NULL;
	struct rf_pack_builder *b = NULL;
	struct rf_sigma_corrset *cs = NULL;
	struct rf_diag d = {0};
	size_t nd = 0, added = 0, rej = 0;
	int r = -1;

	if (rf_sigma_docs(p, sizeof(yaml) - 1, "bench", &docs, &nd, &d) < 0 ||
	    rf_pack_builder_new(&b) < 0 || rf_sigma_corrset_new(&cs) < 0)
		goto out;
	for (size_t i = 0; i < nd; i++) {
		if (docs[i].correlation) {
			if (rf_sigma_corrset_parse(cs, p + docs[i].off, docs[i].len, "bench", &d) <
			    0)
				goto out;
			continue;
		}
		struct rf_sigma_rule *rule = NULL;
		if (rf_sigma_compile(p + docs[i].off, docs[i].len, "bench", m, &rule, &d) < 0)
			goto out;
		uint32_t idx = (uint32_t)rf_pack_builder_count(b);
		const struct rf_ir_rule *ir = rf_sigma_rule_ir(rule);
		int rc = rf_pack_builder_add(b, ir, &d);
		if (rc == 0)
			rc = rf_sigma_corrset_rule(cs, ir->id, docs[i].name, ir->event, idx);
		rf_sigma_rule_free(rule);
		if (rc < 0)
			goto out;
	}
	if (rf_sigma_corrset_finish(cs, b, m, &added, &rej, &d) < 0 || added != 4 || rej)
		goto out;
	r = rf_pack_builder_finish(b, 1, pack, plen);
out:
	if (r < 0)
		fprintf(stderr, "bench-correlate: cannot build the pack: %s\n", d.first);
	free(docs);
	rf_sigma_corrset_free(cs);
	rf_pack_builder_free(b);
	return r;
}

static const char *const images[] = {"whoami", "net", "ipconfig"};

static void run(const struct rf_engine *e, unsigned users, size_t nevents)
{
	struct rf_engine_scratch *s = NULL;
	struct rf_corr *c = NULL;
	uint8_t key[16] = {7};
	uint8_t scratch[512];
	struct rf_event ev;
	uint64_t t_engine = 0, t_corr = 0;
	long rss0;

	if (rf_engine_scratch_new(e, &s) < 0 || rf_corr_new(rf_engine_pack(e), key, &c) < 0) {
		fprintf(stderr, "bench-correlate: out of memory\n");
		exit(1);
	}
	rss0 = maxrss_kb();
	corr_alerts = 0;
	for (size_t i = 0; i < nevents; i++) {
		char line[256];
		struct hits h = {.n = 0};
		int n = snprintf(
		    line, sizeof(line),
		    "{\"event\":\"process_creation\",\"Image\":\"C:\\\\Windows\\\\%s.exe\","
		    "\"CommandLine\":\"x %u\",\"User\":\"CORP\\\\user%u\"}",
		    images[rnd(3)], rnd(40), rnd(users));
		if (rf_event_parse((const uint8_t *)line, (size_t)n, scratch, sizeof(scratch), &ev,
				   NULL) < 0)
			exit(1);
		uint64_t t0 = cpu_ns();
		if (rf_engine_eval(e, &ev, s, on_rule, &h, NULL) < 0)
			exit(1);
		uint64_t t1 = cpu_ns();
		(void)rf_corr_event(c, &ev, (int64_t)i * 10, h.v, h.n, on_corr, NULL);
		t_corr += cpu_ns() - t1;
		t_engine += t1 - t0;
	}
	struct rf_corr_stats st;
	rf_corr_stats(c, &st);
	printf("  %u users, %zu events (every one matches a rule feeding 4 correlations): engine "
	       "%.2f us/event, correlations %.2f us/event more (%.0f events/s/core together); "
	       "%llu correlation alerts, %llu groups dropped at the cap, peak RSS growth %ld "
	       "KiB\n",
	       users, nevents, t_engine / 1e3 / (double)nevents, t_corr / 1e3 / (double)nevents,
	       (double)nevents / ((t_engine + t_corr) / 1e9), corr_alerts,
	       (unsigned long long)st.groups_dropped, maxrss_kb() - rss0);
	rf_corr_free(c);
	rf_engine_scratch_free(s);
}

int main(int argc, char **argv)
{
	size_t nevents = 1000000, mlen;
	const uint8_t *mb = rf_content_builtin_manifest(&mlen);
	struct rf_manifest *m = NULL;
	struct rf_engine *e = NULL;
	struct rf_diag d = {0};
	uint8_t *pack = NULL;
	size_t plen;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--events") && i + 1 < argc)
			nevents = strtoul(argv[++i], NULL, 10);
	if (rf_manifest_parse(mb, mlen, &m, &d) < 0 || build(m, &pack, &plen) < 0 ||
	    rf_engine_load(pack, plen, m, &e, &d) < 0) {
		fprintf(stderr, "bench-correlate: %s\n", d.first);
		return 1;
	}
	printf("correlations: 3 rules, 4 correlations (event_count, value_count, temporal, "
	       "temporal_ordered) by User\n");
	run(e, 300, nevents);
	run(e, 1000000, nevents);
	rf_engine_free(e);
	rf_manifest_free(m);
	free(pack);
	return 0;
}
