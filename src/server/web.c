/*
 * The read-only faces of ringfenced: the dashboard (GET /: server-rendered HTML with inline SVG
 * and one inline script, no external assets), the Prometheus metrics (GET /metrics) and the TUF
 * repository (GET /repo/...).
 *
 * The dashboard is complete without JavaScript (every number is in the HTML, and a <noscript>
 * refresh reloads it every 30 s); with JavaScript it polls itself every few seconds, swaps the
 * part below the title in place and keeps the "3 min ago" texts current against the server's
 * clock (data-now), never the browser's. Times are UTC ISO 8601. Bars of devices on a release are
 * drawn against the devices that took it (a fixed denominator: a past release's bar does not
 * change as its ring grows), with the counts beside them.
 *
 * Invariants: /repo/ serves only regular files beneath DIR/repository (never DIR/keys or
 * DIR/staged): the path is checked component by component ([A-Za-z0-9._-], no empty or
 * dot-leading component) and then opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
 * so neither ".." nor a symbolic link can leave the directory. Every string that is not a
 * validated identifier is HTML-escaped on the dashboard. Metrics follow the Prometheus text
 * format 0.0.4 (every family has HELP and TYPE; `promtool check metrics` is run by the tests).
 */
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "server/server-internal.h"

#ifndef RF_VERSION
#define RF_VERSION "0.0.0"
#endif

static void html_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* Close the memstream f (which updates *buf and *len) and hand its text to r. */
static int finish(FILE *f, char **buf, size_t *len, struct rf_server_reply *r, const char *ctype)
{
	if (fclose(f) != 0 || !*buf) {
		free(*buf);
		return -ENOMEM;
	}
	r->status = 200;
	r->content_type = ctype;
	r->body = *buf;
	r->len = *len;
	return 0;
}

void rf__srv_iso8601(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "@%lld", (long long)t);
}

/* "3 min ago" / "in 2 h" for t against now (the script recomputes it the same way). */
static void ago(int64_t t, int64_t now, char out[40])
{
	int64_t d = now - t, a = d < 0 ? -d : d;
	char v[24];

	if (a < 60)
		snprintf(v, sizeof(v), "%lld s", (long long)a);
	else if (a < 3600)
		snprintf(v, sizeof(v), "%lld min", (long long)(a / 60));
	else if (a < 2 * 86400)
		snprintf(v, sizeof(v), "%lld h", (long long)(a / 3600));
	else
		snprintf(v, sizeof(v), "%lld days", (long long)(a / 86400));
	snprintf(out, 40, d >= 0 ? "%s ago" : "in %s", v);
}

/* A time as a person reads it: ISO 8601 UTC and, beside it, how long ago or how soon. */
static void time_html(FILE *f, int64_t t, int64_t now)
{
	char iso[32], rel[40];

	if (t <= 0) {
		fputs("-", f);
		return;
	}
	rf__srv_iso8601(t, iso);
	ago(t, now, rel);
	fprintf(f,
		"<time datetime=\"%s\" data-t=\"%lld\">%s <span class=\"rel\">(%s)</span></time>",
		iso, (long long)t, iso, rel);
}

static bool stopped(const struct rf__srv_release *rel)
{
	return rel->st.status == RF_ROLLOUT_HALTED || rel->st.status == RF_ROLLOUT_ROLLED_BACK;
}

static bool operator_halt(const struct rf__srv_release *rel)
{
	return rel->st.halt_metric == RF_ROLLOUT_M_OPERATOR || rel->st.halt_ring < 0;
}

/* The devices that took a release in one ring, as one stacked bar against those devices (a
 * fixed denominator): red failed (the content's doing), grey left because a halt told them to
 * (not failed), green healthy after probation, light blue still on probation. */
static void svg_outcomes(FILE *f, const struct rf_rollout_health *h)
{
	uint64_t took = h->devices, bad = h->failed < took ? h->failed : took;
	uint64_t left = h->obeyed < took - bad ? h->obeyed : took - bad;
	uint64_t ok = h->healthy < took - bad - left ? h->healthy : took - bad - left;
	double w = took ? 200.0 / (double)took : 0;

	fprintf(
	    f,
	    "<svg class=\"bar\" width=\"200\" height=\"12\" viewBox=\"0 0 200 12\" role=\"img\" "
	    "aria-label=\"%llu took it\"><rect width=\"200\" height=\"12\" fill=\"%s\"/>"
	    "<rect width=\"%.1f\" height=\"12\" fill=\"#3a3\"/>"
	    "<rect x=\"%.1f\" width=\"%.1f\" height=\"12\" fill=\"#999\"/>"
	    "<rect x=\"%.1f\" width=\"%.1f\" height=\"12\" fill=\"#c22\"/></svg>",
	    (unsigned long long)took, took ? "#9cf" : "#eee", (double)ok * w, (double)ok * w,
	    (double)left * w, (double)(ok + left) * w, (double)bad * w);
}

/* The admitted share of the ring (0..100 %, the signed schedule's scale). */
static void svg_admitted(FILE *f, double percent, bool halted)
{
	fprintf(f,
		"<svg class=\"bar\" width=\"200\" height=\"8\" viewBox=\"0 0 200 8\" role=\"img\">"
		"<rect width=\"200\" height=\"8\" fill=\"#eee\"/>"
		"<rect width=\"%.1f\" height=\"8\" fill=\"%s\"/></svg>",
		percent * 2, halted ? "#999" : "#36c");
}

/*
 * Why ring k of rel does not move, and when it can: the halt (operator or which gate), the hold,
 * the previous ring it waits for, the signed not_before, the healthy devices the gate still
 * needs, the bake time, the signed time of the next step.
 */
static void ring_why(FILE *f, const struct rf__srv_release *rel, unsigned k, int64_t now)
{
	const struct rf_rollout_ring_state *rs = &rel->st.rings[k];
	const struct rf_rollout_ring_schedule *sc = &rel->sched.rings[k];
	const struct rf_rollout_check *c = &rel->eval.checks[k];
	const struct rf_rollout_gates *g = &rel->sched.gates;

	if (stopped(rel)) {
		if (!operator_halt(rel) && rel->st.halt_ring == (int)k)
			fprintf(f, "<b class=\"gate\">the %s gate failed here</b> (p=%.3g)",
				rf_rollout_metric_name(rel->st.halt_metric), c->p_value);
		else
			fprintf(f, "stopped: %s %s",
				rel->st.status == RF_ROLLOUT_HALTED ? "halted" : "rolled back",
				operator_halt(rel) ? "by an operator" : "by a gate");
		return;
	}
	if (rel->st.status == RF_ROLLOUT_HELD) {
		fputs("held by an operator: no device newly takes it; resume to go on", f);
		return;
	}
	if (rs->phase == RF_ROLLOUT_COMPLETE) {
		fputs("complete ", f);
		time_html(f, rs->completed_at, now);
		return;
	}
	if (rs->phase == RF_ROLLOUT_NOT_STARTED) {
		if (k > 0 && rel->st.rings[k - 1].phase != RF_ROLLOUT_COMPLETE) {
			fprintf(f, "waits for ring %s to complete", rel->sched.rings[k - 1].name);
			if (sc->not_before > now) {
				fputs("; opens no earlier than ", f);
				time_html(f, sc->not_before, now);
			}
		} else if (sc->not_before > now) {
			fputs("opens ", f);
			time_html(f, sc->not_before, now);
			fputs(" (signed not_before)", f);
		} else {
			fputs("opens at the next evaluation", f);
		}
		return;
	}
	/* Ramping: the gate of the current step must pass before the next step (or completion). */
	int64_t bake = rs->step_at + g->min_bake_s, when = bake;
	bool last = rs->step + 1u >= sc->nsteps;
	if (!last) {
		int64_t signed_at = rs->opened_at + sc->steps[rs->step + 1].after;
		if (signed_at > when)
			when = signed_at;
		fprintf(f, "next step %.2f %%: ", sc->steps[rs->step + 1].percent_bp / 100.0);
	} else {
		fputs("completes: ", f);
	}
	if (c->verdict == RF_ROLLOUT_V_WAIT) {
		fputs("gate waits", f);
		if (rel->health[k].healthy < c->required_healthy)
			fprintf(f, " for healthy devices: %llu of %llu needed",
				(unsigned long long)rel->health[k].healthy,
				(unsigned long long)c->required_healthy);
		if (bake > now) {
			fputs("; bake until ", f);
			time_html(f, bake, now);
		}
	} else {
		fprintf(f, "gate %s (%s p=%.3g)",
			c->verdict == RF_ROLLOUT_V_PASS ? "passes" : "fails",
			rf_rollout_metric_name(c->metric), c->p_value);
	}
	if (when > now && when > bake) { /* the signed schedule is later than the bake */
		fputs("; signed schedule: not before ", f);
		time_html(f, when, now);
	}
}

/* What the fleet runs now: devices per ring and release, and why devices that could move did
 * not at their last check-in (maintenance window, pinned to N-1, waiting for a fix...). */
static void fleet_section(FILE *f, struct rf_server *s)
{
	enum { COLS = 6 };
	size_t ncol = 0, nr = s->nrings;
	int64_t col[COLS];
	uint64_t *per_rel = calloc(s->nrels ? s->nrels : 1, sizeof(uint64_t));
	/* [ring][COLS + older + none] and [ring][reason]; row nr: devices of no known ring */
	uint64_t(*m)[COLS + 2] = calloc(nr + 1, sizeof(*m));
	uint64_t(*why)[RF_ROLLOUT_R_COUNT_] = calloc(nr + 1, sizeof(*why));

	fputs("<h2>What the fleet runs now</h2>", f);
	if (!per_rel || !m || !why) {
		fputs("<p>(out of memory)</p>", f);
		goto out;
	}
	/* From the counts kept as devices change (gates.c): no walk over the fleet here. */
	for (size_t i = 0; i < s->nrels; i++)
		for (unsigned k = 0; k <= RF_ROLLOUT_RINGS_MAX; k++)
			per_rel[i] += s->rels[i].on[k];
	for (size_t i = s->nrels; i-- > 0 && ncol < COLS;)
		if (per_rel[i])
			col[ncol++] = (int64_t)i;
	uint64_t ringed = 0;
	for (size_t ri = 0; ri < nr; ri++) {
		uint64_t on_any = 0;
		ringed += s->rings[ri].ndevices;
		for (size_t i = 0; i < s->nrels; i++) {
			const struct rf__srv_release *rel = &s->rels[i];
			int k;
			if (!per_rel[i] ||
			    (k = rf_rollout_ring_index(&rel->sched, s->rings[ri].name)) < 0)
				continue;
			size_t c = COLS;
			for (size_t x = 0; x < ncol; x++)
				if (col[x] == (int64_t)i)
					c = x;
			m[ri][c] += rel->on[k];
			on_any += rel->on[k];
			per_rel[i] -= rel->on[k]; /* what is left: devices of no known ring */
		}
		m[ri][COLS + 1] =
		    s->rings[ri].ndevices > on_any ? s->rings[ri].ndevices - on_any : 0;
		memcpy(why[ri], s->rings[ri].why, sizeof(why[ri]));
	}
	/* Row nr: devices whose ring is not (or no longer) one of the server's rings. */
	uint64_t other_on = 0;
	for (size_t i = 0; i < s->nrels; i++) {
		size_t c = COLS;
		for (size_t x = 0; x < ncol; x++)
			if (col[x] == (int64_t)i)
				c = x;
		m[nr][c] += per_rel[i];
		other_on += per_rel[i];
	}
	if (s->ndevs > ringed + other_on)
		m[nr][COLS + 1] = s->ndevs - ringed - other_on;
	for (size_t x = 0; x < ncol; x++)
		col[x] = s->rels[col[x]].id;
	fputs("<table class=\"fleet\"><tr><th>ring</th><th>devices</th>", f);
	for (size_t k = 0; k < ncol; k++)
		fprintf(f, "<th>release #%lld</th>", (long long)col[k]);
	fputs("<th>older</th><th>none yet</th><th>at their last check-in</th></tr>", f);
	for (size_t r = 0; r <= nr; r++) {
		uint64_t tot = 0;
		for (size_t c = 0; c < COLS + 2; c++)
			tot += m[r][c];
		if (r == nr && !tot)
			continue;
		fprintf(f, "<tr><td>%s</td><td>%llu</td>", r < nr ? s->rings[r].name : "(other)",
			(unsigned long long)tot);
		for (size_t c = 0; c < ncol; c++)
			fprintf(f, "<td>%llu</td>", (unsigned long long)m[r][c]);
		fprintf(f, "<td>%llu</td><td>%llu</td><td>", (unsigned long long)m[r][COLS],
			(unsigned long long)m[r][COLS + 1]);
		static const struct {
			int reason;
			const char *text;
		} w[] = {
		    {RF_ROLLOUT_R_WAITING_FIX, "waiting for a fix"},
		    {RF_ROLLOUT_R_WINDOW, "outside their maintenance window"},
		    {RF_ROLLOUT_R_PINNED, "pinned to N-1"},
		    {RF_ROLLOUT_R_HELD, "newer release held"},
		    {RF_ROLLOUT_R_NOT_YET, "not admitted yet"},
		    {RF_ROLLOUT_R_HALTED, "told to go back (halt)"},
		    {RF_ROLLOUT_R_ROLLED_BACK, "told to go back (rollback)"},
		    {RF_ROLLOUT_R_FIX, "told to take the fix"},
		    {RF_ROLLOUT_R_NEW, "offered a new release"},
		    {RF_ROLLOUT_R_UP_TO_DATE, "up to date"},
		};
		bool any = false;
		for (size_t k = 0; k < RF_ARRAY_SIZE(w); k++)
			if (why[r][w[k].reason]) {
				fprintf(f, "%s<span class=\"%s\">%llu %s</span>", any ? ", " : "",
					w[k].reason == RF_ROLLOUT_R_WAITING_FIX ? "warn" : "",
					(unsigned long long)why[r][w[k].reason], w[k].text);
				any = true;
			}
		fputs(any ? "</td></tr>" : "-</td></tr>", f);
	}
	fputs("</table>", f);
out:
	free(per_rel);
	free(m);
	free(why);
}

struct tl {
	FILE *f;
	int64_t now;
	unsigned n;
};

static int timeline_entry(void *ud, const struct rf_db_audit *a)
{
	struct tl *t = ud;

	fputs("<li>", t->f);
	time_html(t->f, a->time, t->now);
	fprintf(t->f, " <b>%s</b> by %s", a->action, a->actor);
	if (*a->detail) {
		fputs(": ", t->f);
		html_escape(t->f, a->detail);
	}
	fputs("</li>", t->f);
	t->n++;
	return 0;
}

/* The release's history, newest first: its audit entries (who did what, the gates' decisions
 * with their evidence, kept after a rollback and across restarts); from its state when the
 * trail has none (a database written before the trail existed). */
static void timeline(FILE *f, struct rf_server *s, const struct rf__srv_release *rel, int64_t now)
{
	struct tl t = {f, now, 0};

	fputs("<details class=\"timeline\" open><summary>timeline</summary><ol>", f);
	if (rf_db_audit_list(s->db, rel->id, 0, RF_SRV_TIMELINE_MAX, timeline_entry, &t) < 0 ||
	    t.n == 0) {
		if (rel->st.halted_at) {
			fputs("<li>", f);
			time_html(f, rel->st.halted_at, now);
			fputs(" <b>halted</b>: ", f);
			html_escape(f, rel->st.halt_reason);
			fputs("</li>", f);
		}
		for (unsigned k = rel->sched.nrings; k-- > 0;) {
			const struct rf_rollout_ring_state *rs = &rel->st.rings[k];
			if (rs->completed_at) {
				fputs("<li>", f);
				time_html(f, rs->completed_at, now);
				fprintf(f, " ring %s <b>complete</b></li>",
					rel->sched.rings[k].name);
			}
			if (rs->opened_at) {
				fputs("<li>", f);
				time_html(f, rs->opened_at, now);
				fprintf(f, " ring %s <b>opened</b></li>", rel->sched.rings[k].name);
			}
		}
		fputs("<li>", f);
		time_html(f, rel->created_at, now);
		fputs(" <b>created</b></li>", f);
	}
	fputs("</ol></details>", f);
}

static void release_section(FILE *f, struct rf_server *s, const struct rf__srv_release *rel,
			    int64_t now)
{
	bool halted = stopped(rel);
	const char *cls = !halted	       ? rel->st.status == RF_ROLLOUT_HELD ? "held" : "ok"
			  : operator_halt(rel) ? "ophalt"
					       : "gatehalt";

	fprintf(f, "<section class=\"release\" id=\"release-%lld\"><h3>#%lld ", (long long)rel->id,
		(long long)rel->id);
	html_escape(f, rel->target);
	fprintf(f, " <span class=\"status %s\">%s</span></h3><p class=\"small\">created ", cls,
		rf_rollout_status_name(rel->st.status));
	time_html(f, rel->created_at, now);
	fprintf(f, ", sha256 %.16s&hellip;, %llu bytes</p>", rel->sha_hex,
		(unsigned long long)rel->length);
	if (halted) {
		const struct rf_rollout_check *c =
		    rel->st.halt_ring >= 0 ? &rel->eval.checks[rel->st.halt_ring] : NULL;
		fprintf(f, "<p class=\"%s\">", cls);
		if (operator_halt(rel))
			fputs("Halted by an operator (not a gate: devices that left it obeyed the "
			      "halt, they did not fail): ",
			      f);
		else
			fprintf(f, "Halted by the <b>%s</b> gate in ring %s (p=%.3g): ",
				rf_rollout_metric_name(rel->st.halt_metric),
				rel->sched.rings[rel->st.halt_ring].name, c ? c->p_value : 1.0);
		html_escape(f, rel->st.halt_reason);
		fputs(", ", f);
		time_html(f, rel->st.halted_at, now);
		fputs("</p>", f);
		if (rel->waiting)
			fprintf(f,
				"<p class=\"warn\">%llu %s it with nothing to go to: waiting "
				"for a fix (publish one and create a release)</p>",
				(unsigned long long)rel->waiting,
				rel->waiting == 1 ? "device runs" : "devices run");
	}
	fputs("<table><tr><th>ring</th><th>phase</th><th>admitted</th><th>devices on it</th>"
	      "<th>why it waits / when it moves</th><th>baseline failed/took</th></tr>",
	      f);
	for (unsigned k = 0; k < rel->sched.nrings; k++) {
		const struct rf_rollout_health *h = &rel->health[k], *b = &rel->base[k];
		double pct = rf_rollout_effective_bp(&rel->sched, &rel->st, (int)k, now) / 100.0;

		fprintf(f, "<tr class=\"ring\" data-ring=\"%s\"><td>%s</td><td>%s</td><td>",
			rel->sched.rings[k].name, rel->sched.rings[k].name,
			rf_rollout_phase_name(rel->st.rings[k].phase));
		svg_admitted(f, pct, halted);
		fprintf(f, " <span class=\"count\">%.2f %% of %llu</span></td><td>", pct,
			(unsigned long long)h->population);
		svg_outcomes(f, h);
		fprintf(f,
			" <span class=\"count\">took <b class=\"took\">%llu</b>: "
			"<span class=\"healthy\">%llu healthy</span>, "
			"<span class=\"%s\">%llu failed</span>, "
			"<span class=\"left\">%llu left on %s halt</span>",
			(unsigned long long)h->devices, (unsigned long long)h->healthy,
			h->failed ? "failed" : "none", (unsigned long long)h->failed,
			(unsigned long long)h->obeyed,
			halted && operator_halt(rel) ? "an operator's" : "a");
		if (h->crashes || h->rollbacks || h->rejections || h->silent || h->local_failures)
			fprintf(f,
				" (crashes %llu, rollbacks %llu, rejections %llu, silent %llu, not "
				"the content's fault %llu)",
				(unsigned long long)h->crashes, (unsigned long long)h->rollbacks,
				(unsigned long long)h->rejections, (unsigned long long)h->silent,
				(unsigned long long)h->local_failures);
		fputs("</span></td><td class=\"why\">", f);
		ring_why(f, rel, k, now);
		fprintf(f, "</td><td>%llu/%llu</td></tr>", (unsigned long long)b->failed,
			(unsigned long long)b->devices);
	}
	fputs("</table>", f);
	timeline(f, s, rel, now);
	fputs("</section>", f);
}

/* Polls the page itself (no external assets), swaps #main, keeps "ago" texts current against the
 * server's clock (body data-now), never the browser's. */
static const char dashboard_script[] =
    "<script>(function(){'use strict';var off=0,polls=0;"
    "function sync(){off=Number(document.body.dataset.now)-Date.now()/1000;}"
    "function ago(t){var d=Math.round(Date.now()/1000+off-t),a=Math.abs(d),v;"
    "if(a<60)v=a+' s';else if(a<3600)v=Math.floor(a/60)+' min';"
    "else if(a<172800)v=Math.floor(a/3600)+' h';else v=Math.floor(a/86400)+' days';"
    "return d>=0?v+' ago':'in '+v;}"
    "function tick(){var ts=document.querySelectorAll('time[data-t]');"
    "for(var i=0;i<ts.length;i++){var r=ts[i].querySelector('.rel');"
    "if(r)r.textContent='('+ago(Number(ts[i].dataset.t))+')';}}"
    "function live(t,ok){var e=document.getElementById('live');e.textContent=t;"
    "e.className=ok?'live':'offline';e.dataset.polls=polls;}"
    "function poll(){fetch(location.pathname,{cache:'no-store'}).then(function(r){"
    "if(!r.ok)throw new Error(r.status);return r.text();}).then(function(t){"
    "var d=new DOMParser().parseFromString(t,'text/html'),m=d.getElementById('main');"
    "if(!m)throw new Error('no main');document.getElementById('main').replaceWith(m);"
    "document.body.dataset.now=d.body.dataset.now;sync();polls++;tick();"
    "live('live: updated '+new Date().toISOString().slice(0,19)+'Z, every 5 s',true);"
    "}).catch(function(e){live('offline ('+e.message+'): retrying',false);});}"
    "sync();tick();live('live: updates every 5 s',true);"
    "setTimeout(poll,1000);setInterval(poll,5000);setInterval(tick,1000);})();</script>";

int rf__srv_dashboard(struct rf_server *s, struct rf_server_reply *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int64_t now = rf__srv_now(s);
	uint64_t waiting = 0;

	if (!f)
		return -ENOMEM;
	fputs("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<title>ringfence</title>"
	      "<noscript><meta http-equiv=\"refresh\" content=\"30\"></noscript>"
	      "<style>body{font:14px sans-serif;margin:2em;color:#222}"
	      "table{border-collapse:collapse;margin:.5em 0}"
	      "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;"
	      "vertical-align:top}.small{color:#666;font-size:12px}.count{font-size:12px}"
	      ".ok{color:#262}.held{color:#a60}.ophalt{color:#a60;font-weight:bold}"
	      ".gatehalt,.gate,.failed{color:#c22;font-weight:bold}.warn{color:#c22}"
	      ".healthy{color:#262}.left{color:#666}.live{color:#262}.offline{color:#c22}"
	      "section.release{border-top:2px solid #ccc;margin-top:1em}"
	      ".timeline ol{margin:.3em 0;font-size:12px}</style></head>",
	      f);
	fprintf(f,
		"<body data-now=\"%lld\"><h1>ringfence</h1>"
		"<p class=\"small\"><span id=\"live\">static page (no JavaScript): reloads every "
		"30 s</span></p><div id=\"main\">",
		(long long)now);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nrels; i++)
		if (stopped(&s->rels[i]))
			waiting += s->rels[i].waiting;
	fprintf(f,
		"<p id=\"summary\">%zu devices, %zu tenants, %zu rings, %zu releases. Server "
		"time ",
		s->ndevs, s->ntenants, s->nrings, s->nrels);
	time_html(f, now, now);
	fputs(".</p>", f);
	if (waiting)
		fprintf(
		    f,
		    "<p class=\"warn\" id=\"waiting\"><b>%llu devices are waiting for a fix</b>: "
		    "they run a halted or rolled-back release and have nothing to go to.</p>",
		    (unsigned long long)waiting);
	fleet_section(f, s);
	fputs("<h2>Releases</h2><p class=\"small\">Admitted: the share of the ring the signed "
	      "schedule and the gates admit now. Devices on it: of the devices that took it, green "
	      "healthy after probation, grey left because a halt told them to (not failures), red "
	      "failed (crashed, rolled back by their guard, rejected or silent), light blue still "
	      "on probation.</p>",
	      f);
	for (size_t i = s->nrels, shown = 0; i-- > 0 && shown < 20; shown++)
		release_section(f, s, &s->rels[i], now);
	pthread_mutex_unlock(&s->lock);
	fputs("</div>", f);
	fputs(dashboard_script, f);
	fputs("</body></html>\n", f);
	return finish(f, &buf, &len, r, "text/html; charset=utf-8");
}

/* Upper bounds (seconds) of the check-in latency histogram's buckets. */
static const double lat_bounds[RF__SRV_LAT_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
						       0.05,   0.1,   0.25,   0.5,   1.0};

void rf__srv_observe_checkin(struct rf_server *s, uint64_t ns)
{
	size_t i = 0;

	while (i < RF__SRV_LAT_BUCKETS && (double)ns / 1e9 > lat_bounds[i])
		i++;
	atomic_fetch_add(&s->m_lat[i], 1);
	atomic_fetch_add(&s->m_lat_sum_ns, ns);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
		(unsigned long long)v);
}

static const char *verdict_of(const struct rf__srv_release *rel, unsigned k)
{
	if (stopped(rel))
		return rel->st.halt_ring == (int)k ? "fail" : "halted";
	if (rel->st.rings[k].phase == RF_ROLLOUT_NOT_STARTED)
		return "none";
	switch (rel->eval.checks[k].verdict) {
	case RF_ROLLOUT_V_PASS:
		return "pass";
	case RF_ROLLOUT_V_FAIL:
		return "fail";
	default:
		return "wait";
	}
}

int rf__srv_metrics(struct rf_server *s, struct rf_server_reply *r)
{
	static const char *const verdicts[] = {"none", "wait", "pass", "fail", "halted"};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint64_t cum = 0, waiting = 0;

	if (!f)
		return -ENOMEM;
	fprintf(f,
		"# HELP ringfence_build_info Build of this ringfenced (always 1).\n"
		"# TYPE ringfence_build_info gauge\n"
		"ringfence_build_info{version=\"%s\",store_schema=\"%d\"} 1\n",
		RF_VERSION, RF_DB_SCHEMA_VERSION);
	counter(f, "ringfence_checkins_total", "Check-ins answered.", atomic_load(&s->m_checkins));
	counter(f, "ringfence_enrollments_total", "Devices enrolled.", atomic_load(&s->m_enrolls));
	fputs("# HELP ringfence_reports_total Reports recorded, by event.\n"
	      "# TYPE ringfence_reports_total counter\n",
	      f);
	for (int i = 0; i < 8; i++)
		fprintf(f, "ringfence_reports_total{event=\"%s\"} %llu\n", rf__srv_events[i],
			(unsigned long long)atomic_load(&s->m_reports[i]));
	counter(f, "ringfence_reports_duplicate_total", "Report retries recognised by id.",
		atomic_load(&s->m_reports_dup));
	counter(f, "ringfence_reports_refused_total",
		"Reports refused (409 report_limit): the device had RF_SRV_REPORTS_PER_RELEASE "
		"reports of the release already.",
		atomic_load(&s->m_reports_refused));
	counter(f, "ringfence_reports_purged_total",
		"Reports deleted by retention (received more than RF_SRV_REPORTS_RETENTION_S "
		"ago).",
		atomic_load(&s->m_reports_purged));
	fprintf(f,
		"# HELP ringfence_http_errors_total Error replies.\n"
		"# TYPE ringfence_http_errors_total counter\n"
		"ringfence_http_errors_total{class=\"4xx\"} %llu\n"
		"ringfence_http_errors_total{class=\"5xx\"} %llu\n",
		(unsigned long long)atomic_load(&s->m_http_4xx),
		(unsigned long long)atomic_load(&s->m_http_5xx));
	counter(f, "ringfence_report_commits_total",
		"Transactions that recorded reports (group commit: one for the reports of many "
		"requests).",
		atomic_load(&s->m_group_commits));
	counter(f, "ringfence_flushes_total", "Heartbeat flushes (one transaction each).",
		atomic_load(&s->m_flushes));
	counter(f, "ringfence_flushed_rows_total", "Device rows written by heartbeat flushes.",
		atomic_load(&s->m_flushed_rows));
	counter(f, "ringfence_device_conflicts_total",
		"Device writes refused because another instance wrote the row first (re-read and "
		"applied again).",
		atomic_load(&s->m_dev_conflicts));
	counter(f, "ringfence_store_errors_total",
		"Errors the storage backend reported (each logged, rate-limited).",
		atomic_load(&s->m_store_errors));
	counter(f, "ringfence_store_retries_total",
		"Write transactions run again after the database aborted them for a deadlock or a "
		"serialization failure.",
		atomic_load(&s->m_store_retries));
	counter(f, "ringfence_gate_halts_total", "Releases halted by a failed gate.",
		atomic_load(&s->m_halts));
	counter(f, "ringfence_audit_write_failures_total",
		"Audit entries that could not be stored (they were still logged).",
		atomic_load(&s->m_audit_failures));
	fputs("# HELP ringfence_checkin_duration_seconds Time to answer a check-in, in the "
	      "server core.\n# TYPE ringfence_checkin_duration_seconds histogram\n",
	      f);
	for (size_t i = 0; i <= RF__SRV_LAT_BUCKETS; i++) {
		cum += atomic_load(&s->m_lat[i]);
		if (i < RF__SRV_LAT_BUCKETS)
			fprintf(f, "ringfence_checkin_duration_seconds_bucket{le=\"%g\"} %llu\n",
				lat_bounds[i], (unsigned long long)cum);
		else
			fprintf(f, "ringfence_checkin_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
				(unsigned long long)cum);
	}
	fprintf(f,
		"ringfence_checkin_duration_seconds_sum %.9f\n"
		"ringfence_checkin_duration_seconds_count %llu\n",
		(double)atomic_load(&s->m_lat_sum_ns) / 1e9, (unsigned long long)cum);
	pthread_mutex_lock(&s->lock);
	fprintf(f,
		"# HELP ringfence_gate_leader Whether this instance evaluates the gates (1; always "
		"with SQLite; with several instances on PostgreSQL, the one holding the lease).\n"
		"# TYPE ringfence_gate_leader gauge\nringfence_gate_leader %d\n",
		s->leader ? 1 : 0);
	fputs(
	    "# HELP ringfence_devices Enrolled devices per ring.\n# TYPE ringfence_devices gauge\n",
	    f);
	for (size_t i = 0; i < s->nrings; i++)
		fprintf(f, "ringfence_devices{ring=\"%s\"} %llu\n", s->rings[i].name,
			(unsigned long long)s->rings[i].ndevices);
	fputs("# HELP ringfence_release_devices Devices per release, ring and outcome (took: "
	      "took it; left_on_halt: left it because a halt told them to, not failures).\n"
	      "# TYPE ringfence_release_devices gauge\n",
	      f);
	for (size_t i = 0; i < s->nrels; i++) {
		const struct rf__srv_release *rel = &s->rels[i];
		for (unsigned k = 0; k < rel->sched.nrings; k++) {
			const struct rf_rollout_health *h = &rel->health[k];
			const char *st[] = {"took", "healthy", "failed", "silent", "left_on_halt"};
			uint64_t v[] = {h->devices, h->healthy, h->failed, h->silent, h->obeyed};
			for (size_t m = 0; m < RF_ARRAY_SIZE(st); m++)
				fprintf(f,
					"ringfence_release_devices{release=\"%lld\",ring=\"%s\","
					"state=\"%s\"} %llu\n",
					(long long)rel->id, rel->sched.rings[k].name, st[m],
					(unsigned long long)v[m]);
		}
	}
	fputs("# HELP ringfence_release_gate Gate state per release and ring (1 for the current "
	      "state: none not open, wait, pass, fail, halted).\n"
	      "# TYPE ringfence_release_gate gauge\n",
	      f);
	for (size_t i = 0; i < s->nrels; i++) {
		const struct rf__srv_release *rel = &s->rels[i];
		for (unsigned k = 0; k < rel->sched.nrings; k++) {
			const char *v = verdict_of(rel, k);
			for (size_t m = 0; m < RF_ARRAY_SIZE(verdicts); m++)
				fprintf(f,
					"ringfence_release_gate{release=\"%lld\",ring=\"%s\","
					"state=\"%s\"} %d\n",
					(long long)rel->id, rel->sched.rings[k].name, verdicts[m],
					!strcmp(v, verdicts[m]));
		}
	}
	fputs("# HELP ringfence_release_gate_p_value Smallest one-sided p-value of the last gate "
	      "check per release and ring (1 when nothing was tested).\n"
	      "# TYPE ringfence_release_gate_p_value gauge\n",
	      f);
	for (size_t i = 0; i < s->nrels; i++) {
		const struct rf__srv_release *rel = &s->rels[i];
		for (unsigned k = 0; k < rel->sched.nrings; k++)
			fprintf(
			    f,
			    "ringfence_release_gate_p_value{release=\"%lld\",ring=\"%s\"} %.6g\n",
			    (long long)rel->id, rel->sched.rings[k].name,
			    rel->eval.checks[k].p_value);
	}
	fputs("# HELP ringfence_release_halted 1 when the release is halted or rolled back.\n"
	      "# TYPE ringfence_release_halted gauge\n",
	      f);
	for (size_t i = 0; i < s->nrels; i++)
		fprintf(f, "ringfence_release_halted{release=\"%lld\"} %d\n",
			(long long)s->rels[i].id, stopped(&s->rels[i]));
	fputs("# HELP ringfence_release_halt_by_operator 1 when a person halted or rolled back the "
	      "release, 0 when a gate did or it is not halted.\n"
	      "# TYPE ringfence_release_halt_by_operator gauge\n",
	      f);
	for (size_t i = 0; i < s->nrels; i++)
		fprintf(f, "ringfence_release_halt_by_operator{release=\"%lld\"} %d\n",
			(long long)s->rels[i].id,
			stopped(&s->rels[i]) && operator_halt(&s->rels[i]));
	fputs("# HELP ringfence_release_waiting_for_fix Devices on a halted or rolled-back release "
	      "with nothing to go to yet.\n"
	      "# TYPE ringfence_release_waiting_for_fix gauge\n",
	      f);
	for (size_t i = 0; i < s->nrels; i++) {
		fprintf(f, "ringfence_release_waiting_for_fix{release=\"%lld\"} %llu\n",
			(long long)s->rels[i].id, (unsigned long long)s->rels[i].waiting);
		if (stopped(&s->rels[i]))
			waiting += s->rels[i].waiting;
	}
	fprintf(f,
		"# HELP ringfence_devices_waiting_for_fix Devices, over every release, that run "
		"halted or rolled-back content with nothing to go to yet (publish a fix).\n"
		"# TYPE ringfence_devices_waiting_for_fix gauge\n"
		"ringfence_devices_waiting_for_fix %llu\n",
		(unsigned long long)waiting);
	pthread_mutex_unlock(&s->lock);
	return finish(f, &buf, &len, r, "text/plain; version=0.0.4; charset=utf-8");
}

static bool repo_path_ok(const char *p)
{
	size_t n = strlen(p), comp = 0;

	if (n == 0 || n > 1024)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = p[i];
		if (c == '/' || c == 0) {
			if (comp == 0)
				return false;
			comp = 0;
			continue;
		}
		if (comp == 0 && c == '.')
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
		comp++;
	}
	return true;
}

int rf__srv_repo_file(struct rf_server *s, const char *rel, struct rf_server_reply *r)
{
	struct open_how how = {
	    .flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	struct stat st;
	size_t n = strlen(rel);
	int fd;

	if (s->repo_fd < 0 || !repo_path_ok(rel))
		return rf__srv_reply_error(r, 404, "not_found", NULL, "no such repository file");
	fd = (int)syscall(SYS_openat2, s->repo_fd, rel, &how, sizeof(how));
	if (fd < 0)
		return rf__srv_reply_error(r, 404, "not_found", NULL, "no such repository file");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > RF_SRV_REPO_FILE_MAX) {
		close(fd);
		return rf__srv_reply_error(r, 404, "not_found", NULL, "no such repository file");
	}
	r->status = 200;
	r->fd = fd;
	r->fd_len = (uint64_t)st.st_size;
	r->content_type = n > 5 && !strcmp(rel + n - 5, ".json") ? "application/json"
								 : "application/octet-stream";
	return 0;
}
