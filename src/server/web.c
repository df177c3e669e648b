/*
 * The read-only faces of ringfenced: the dashboard (GET /: server-rendered HTML with inline SVG,
 * no script, no external assets), the Prometheus metrics (GET /metrics) and the TUF repository
 * (GET /repo/...).
 *
 * Invariants: /repo/ serves only regular files beneath DIR/repository (never DIR/keys or
 * DIR/staged): the path is checked component by component ([A-Za-z0-9._-], no empty or
 * dot-leading component) and then opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
 * so neither ".." nor a symbolic link can leave the directory. Every string that is not a
 * validated identifier is HTML-escaped on the dashboard.
 */
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server/server-internal.h"

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

/* A horizontal bar: admitted share of the ring (blue) and, below it, the share of the ring's
 * devices on the release that failed (red) next to those healthy after probation (green). */
static void svg_ring(FILE *f, double percent, const struct rf_rollout_health *h, bool halted)
{
	double pop = h->population ? (double)h->population : (double)(h->devices ? h->devices : 1);
	double on = h->devices / pop * 100, ok = h->healthy / pop * 100,
	       bad = h->failed / pop * 100;

	if (on > 100)
		on = 100;
	if (ok > 100)
		ok = 100;
	if (bad > 100)
		bad = 100;
	fprintf(f,
		"<svg width=\"240\" height=\"28\" viewBox=\"0 0 200 28\" role=\"img\">"
		"<rect x=\"0\" y=\"0\" width=\"200\" height=\"12\" fill=\"#eee\"/>"
		"<rect x=\"0\" y=\"0\" width=\"%.1f\" height=\"12\" fill=\"%s\"/>"
		"<rect x=\"0\" y=\"15\" width=\"200\" height=\"12\" fill=\"#eee\"/>"
		"<rect x=\"0\" y=\"15\" width=\"%.1f\" height=\"12\" fill=\"#9cf\"/>"
		"<rect x=\"0\" y=\"15\" width=\"%.1f\" height=\"12\" fill=\"#3a3\"/>"
		"<rect x=\"%.1f\" y=\"15\" width=\"%.1f\" height=\"12\" fill=\"#c22\"/>"
		"</svg>",
		percent * 2, halted ? "#999" : "#36c", on * 2, ok * 2, 200 - bad * 2, bad * 2);
}

int rf__srv_dashboard(struct rf_server *s, struct rf_server_reply *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int64_t now = rf__srv_now(s);

	if (!f)
		return -ENOMEM;
	fputs("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ringfence</title>"
	      "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}"
	      "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}"
	      ".halted{color:#c22;font-weight:bold}.small{color:#666;font-size:12px}</style>"
	      "</head><body><h1>ringfence</h1>",
	      f);
	pthread_mutex_lock(&s->lock);
	fprintf(f, "<p>%zu devices, %zu tenants, %zu rings, %zu releases. Server time %lld.</p>",
		s->ndevs, s->ntenants, s->nrings, s->nrels, (long long)now);
	fputs(
	    "<p class=\"small\">Top bar: share of the ring the signed schedule admits now. "
	    "Bottom bar: devices on the release as a share of the ring: light blue took it, green "
	    "healthy after probation, red failed (crashed, rolled back, rejected or silent).</p>",
	    f);
	fputs("<h2>Rings</h2><table><tr><th>ring</th><th>position</th><th>devices</th></tr>", f);
	for (size_t i = 0; i < s->nrings; i++)
		fprintf(f, "<tr><td>%s</td><td>%lld</td><td>%llu</td></tr>", s->rings[i].name,
			(long long)s->rings[i].position, (unsigned long long)s->rings[i].ndevices);
	fputs("</table><h2>Releases</h2>", f);
	for (size_t i = s->nrels, shown = 0; i-- > 0 && shown < 20; shown++) {
		const struct rf__srv_release *rel = &s->rels[i];
		bool halted =
		    rel->st.status == RF_ROLLOUT_HALTED || rel->st.status == RF_ROLLOUT_ROLLED_BACK;

		fprintf(f, "<h3>#%lld %s <span class=\"%s\">%s</span></h3>", (long long)rel->id,
			rel->target, halted ? "halted" : "",
			rf_rollout_status_name(rel->st.status));
		if (halted) {
			fputs("<p class=\"halted\">", f);
			html_escape(f, rel->st.halt_reason);
			fprintf(f, " (at %lld)</p>", (long long)rel->st.halted_at);
			if (rel->waiting)
				fprintf(f,
					"<p class=\"halted\">%llu devices run it with nothing to go "
					"to: waiting for a fix (publish one)</p>",
					(unsigned long long)rel->waiting);
		}
		fputs(
		    "<table><tr><th>ring</th><th>phase</th><th>admitted</th><th>progress</th>"
		    "<th>took</th><th>healthy</th><th>failed</th><th>crashes</th><th>rollbacks</th>"
		    "<th>silent</th><th>baseline failed/took</th><th>gate</th></tr>",
		    f);
		for (unsigned k = 0; k < rel->sched.nrings; k++) {
			const struct rf_rollout_health *h = &rel->health[k], *b = &rel->base[k];
			const struct rf_rollout_check *c = &rel->eval.checks[k];
			double pct =
			    rf_rollout_effective_bp(&rel->sched, &rel->st, (int)k, now) / 100.0;

			fprintf(f, "<tr><td>%s</td><td>%s</td><td>%.2f %%</td><td>",
				rel->sched.rings[k].name,
				rf_rollout_phase_name(rel->st.rings[k].phase), pct);
			svg_ring(f, pct, h, halted);
			fprintf(
			    f,
			    "</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td>"
			    "<td>%llu</td><td>%llu/%llu</td><td>%s %s p=%.3g</td></tr>",
			    (unsigned long long)h->devices, (unsigned long long)h->healthy,
			    (unsigned long long)h->failed, (unsigned long long)h->crashes,
			    (unsigned long long)h->rollbacks, (unsigned long long)h->silent,
			    (unsigned long long)b->failed, (unsigned long long)b->devices,
			    rel->st.rings[k].phase == RF_ROLLOUT_NOT_STARTED ? "-"
			    : halted && rel->st.halt_ring == (int)k	     ? "FAIL"
			    : halted					     ? "halted"
			    : c->verdict == RF_ROLLOUT_V_PASS		     ? "pass"
			    : c->verdict == RF_ROLLOUT_V_FAIL		     ? "FAIL"
									     : "wait",
			    rf_rollout_metric_name(c->metric), c->p_value);
		}
		fputs("</table>", f);
	}
	pthread_mutex_unlock(&s->lock);
	fputs("</body></html>\n", f);
	return finish(f, &buf, &len, r, "text/html; charset=utf-8");
}

int rf__srv_metrics(struct rf_server *s, struct rf_server_reply *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	fprintf(f,
		"# HELP ringfence_checkins_total Check-ins answered.\n"
		"# TYPE ringfence_checkins_total counter\nringfence_checkins_total %llu\n",
		(unsigned long long)atomic_load(&s->m_checkins));
	fprintf(f,
		"# HELP ringfence_enrollments_total Devices enrolled.\n"
		"# TYPE ringfence_enrollments_total counter\nringfence_enrollments_total %llu\n",
		(unsigned long long)atomic_load(&s->m_enrolls));
	fputs("# HELP ringfence_reports_total Reports recorded, by event.\n"
	      "# TYPE ringfence_reports_total counter\n",
	      f);
	for (int i = 0; i < 8; i++)
		fprintf(f, "ringfence_reports_total{event=\"%s\"} %llu\n", rf__srv_events[i],
			(unsigned long long)atomic_load(&s->m_reports[i]));
	fprintf(f,
		"# HELP ringfence_reports_duplicate_total Report retries recognised by id.\n"
		"# TYPE ringfence_reports_duplicate_total counter\n"
		"ringfence_reports_duplicate_total %llu\n",
		(unsigned long long)atomic_load(&s->m_reports_dup));
	fprintf(f,
		"# HELP ringfence_http_errors_total Error replies.\n"
		"# TYPE ringfence_http_errors_total counter\n"
		"ringfence_http_errors_total{class=\"4xx\"} %llu\n"
		"ringfence_http_errors_total{class=\"5xx\"} %llu\n",
		(unsigned long long)atomic_load(&s->m_http_4xx),
		(unsigned long long)atomic_load(&s->m_http_5xx));
	fprintf(f,
		"# HELP ringfence_flushes_total Heartbeat flushes and rows written.\n"
		"# TYPE ringfence_flushes_total counter\nringfence_flushes_total %llu\n"
		"# TYPE ringfence_flushed_rows_total counter\nringfence_flushed_rows_total %llu\n",
		(unsigned long long)atomic_load(&s->m_flushes),
		(unsigned long long)atomic_load(&s->m_flushed_rows));
	fprintf(f,
		"# HELP ringfence_gate_halts_total Releases halted by a failed gate.\n"
		"# TYPE ringfence_gate_halts_total counter\nringfence_gate_halts_total %llu\n",
		(unsigned long long)atomic_load(&s->m_halts));
	pthread_mutex_lock(&s->lock);
	fputs(
	    "# HELP ringfence_devices Enrolled devices per ring.\n# TYPE ringfence_devices gauge\n",
	    f);
	for (size_t i = 0; i < s->nrings; i++)
		fprintf(f, "ringfence_devices{ring=\"%s\"} %llu\n", s->rings[i].name,
			(unsigned long long)s->rings[i].ndevices);
	fputs("# HELP ringfence_release_devices Devices per release, ring and outcome.\n"
	      "# TYPE ringfence_release_devices gauge\n",
	      f);
	for (size_t i = 0; i < s->nrels; i++) {
		const struct rf__srv_release *rel = &s->rels[i];
		for (unsigned k = 0; k < rel->sched.nrings; k++) {
			const struct rf_rollout_health *h = &rel->health[k];
			const char *st[] = {"took", "healthy", "failed", "silent"};
			uint64_t v[] = {h->devices, h->healthy, h->failed, h->silent};
			for (int m = 0; m < 4; m++)
				fprintf(f,
					"ringfence_release_devices{release=\"%lld\",ring=\"%s\","
					"state=\"%s\"} %llu\n",
					(long long)rel->id, rel->sched.rings[k].name, st[m],
					(unsigned long long)v[m]);
		}
	}
	fputs("# HELP ringfence_release_halted 1 when the release is halted or rolled back.\n"
	      "# TYPE ringfence_release_halted gauge\n",
	      f);
	for (size_t i = 0; i < s->nrels; i++)
		fprintf(f, "ringfence_release_halted{release=\"%lld\"} %d\n",
			(long long)s->rels[i].id,
			s->rels[i].st.status == RF_ROLLOUT_HALTED ||
			    s->rels[i].st.status == RF_ROLLOUT_ROLLED_BACK);
	fputs("# HELP ringfence_release_waiting_for_fix Devices on a halted or rolled-back release "
	      "with nothing to go to yet.\n"
	      "# TYPE ringfence_release_waiting_for_fix gauge\n",
	      f);
	for (size_t i = 0; i < s->nrels; i++)
		fprintf(f, "ringfence_release_waiting_for_fix{release=\"%lld\"} %llu\n",
			(long long)s->rels[i].id, (unsigned long long)s->rels[i].waiting);
	pthread_mutex_unlock(&s->lock);
	return finish(f, &buf, &len, r, "text/plain; version=0.0.4");
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
