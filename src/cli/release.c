/*
 * `ringfence release|ring|tenant`: the operator's side of ringfenced's operator API
 * (docs/protocol.md, "Operator API"), over HTTP (rf_http_fetch). Each command builds one request
 * with jansson (so every string is escaped), sends it with the admin token, and prints the
 * reply: a short human summary, or the JSON with --json. Exit codes (cli.h): 0 done, 1 the
 * server refused (4xx: its error message is printed), 2 usage, I/O or server unreachable.
 * The admin token is read from --token-file (or $RINGFENCE_ADMIN_TOKEN_FILE) and never printed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/http.h"
#include "common/opt.h"
#include "common/util.h"
#include "ringfence/limits.h"

struct opts {
	const char *server;
	const char *token_file;
	bool json;
	const char *args[8]; /* positional arguments after the subcommand */
	int nargs;
	const char *reason, *ring, *pin, *window;
	const char *position;
	bool ring_null, window_null;
	bool force; /* halt/rollback even if devices would have nowhere to go */
	/* create: the agent manifests (files) the pack must verify against; none: the server's
	 * own agent manifests, at least one of which must accept it */
	const char *manifests[RF_SRV_RELEASE_MANIFESTS_MAX];
	int nmanifests;
};

/*
 * A string from the server made safe for a terminal (rf_diag_quote keeps only ASCII; an
 * operator's halt reason may be in any language): control characters (C0, DEL and C1, which
 * terminals obey as escape sequences) and backslash become \xNN / \u00NN / \\, so a reason
 * with ESC or a newline is shown, never executed, and stays on its line. Everything else (valid
 * UTF-8: jansson checked it) is kept. Returns one of four static buffers (a printf may use
 * up to four); too long a string ends in "...". --json prints the exact string instead.
 */
static const char *safe(const char *s)
{
	static char bufs[4][RF_SRV_TEXT_MAX * 6 + 8];
	static unsigned next;
	static const char hex[] = "0123456789abcdef";
	char *out = bufs[next++ % 4];
	size_t o = 0, cap = sizeof(bufs[0]);

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned c = *p;
		bool c1 = c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;

		if (o + 7 + 4 > cap) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c1) {
			memcpy(out + o, "\\u00", 4);
			out[o + 4] = hex[p[1] >> 4];
			out[o + 5] = hex[p[1] & 15];
			o += 6;
			p++;
		} else if (c < 0x20 || c == 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			if (c == '\\')
				out[o++] = '\\';
			out[o++] = (char)c;
		}
	}
	out[o] = 0;
	return out;
}

static int read_token(const struct opts *o, char tok[80])
{
	const char *f = o->token_file ? o->token_file : getenv("RINGFENCE_ADMIN_TOKEN_FILE");
	uint8_t *p;
	size_t n;
	int r;

	if (!f) {
		fprintf(stderr, "ringfence: give the admin token with --token-file FILE "
				"(ringfenced writes it next to its database)\n");
		return -EINVAL;
	}
	r = rf_file_read(f, 4096, &p, &n);
	if (r < 0) {
		fprintf(stderr, "ringfence: %s: %s\n", f, rf_strerror(r));
		return r;
	}
	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' '))
		n--;
	if (n != 68 || memcmp(p, "rfa_", 4)) {
		fprintf(stderr,
			"ringfence: %s does not hold an admin token (rfa_ + 64 hex digits)\n", f);
		free(p);
		return -EBADMSG;
	}
	memcpy(tok, p, 68);
	tok[68] = 0;
	free(p);
	return 0;
}

/* A change the server committed but could not show applied on every instance in time
 * (docs/server.md, "Several instances"): said on stderr; the exit status stays 0 (the change
 * is durable and reaches them as they catch up). */
static void warn_propagation(json_t *p)
{
	json_t *pend = json_object_get(p, "pending_instances");
	json_t *dead = json_object_get(p, "not_live_instances");
	const char *err = json_string_value(json_object_get(p, "error"));
	size_t i;
	json_t *v;

	if (!p || (json_is_true(json_object_get(p, "complete")) && !json_array_size(dead)))
		return;
	if (err)
		fprintf(stderr, "ringfence: warning: %s\n", safe(err));
	json_array_foreach(pend, i, v)
	    fprintf(stderr,
		    "ringfence: warning: instance '%s' had not applied this change yet when "
		    "answered (it is committed; that instance applies it when it catches up)\n",
		    json_is_string(v) ? safe(json_string_value(v)) : "?");
	json_array_foreach(dead, i, v)
	    fprintf(stderr,
		    "ringfence: warning: instance '%s' is not live (no heartbeat): it applies this "
		    "change when it runs again\n",
		    json_is_string(v) ? safe(json_string_value(v)) : "?");
}

/* Send one operator request; *ret is the parsed reply. Returns the exit code. */
static int call(const struct opts *o, const char *method, const char *path, json_t *body,
		json_t **ret)
{
	char tok[80], url[2048], hdr[120];
	const char *base = o->server ? o->server : getenv("RINGFENCE_SERVER");
	const char *const headers[] = {hdr, body ? "Content-Type: application/json" : NULL, NULL};
	struct rf_http_request q = {
	    .url = url, .method = method, .headers = headers, .max = RF_FILE_MAX, .timeout_s = 30};
	struct rf_http_reply rep = {0};
	struct rf_diag d = {0};
	char *text = NULL;
	int rc = 2;

	if (!base)
		base = "http://127.0.0.1:8440";
	if (read_token(o, tok) < 0) {
		json_decref(body);
		return 2;
	}
	snprintf(url, sizeof(url), "%s%s", base, path);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		q.body = text ? text : "{}";
		q.body_len = strlen(q.body);
	}
	if (rf_http_fetch(&q, &rep, &d) < 0) {
		fprintf(stderr, "ringfence: %s: %s\n", url, d.first);
		goto out;
	}
	json_t *j = json_loadb((const char *)rep.body, rep.len, 0, NULL);
	if (rep.status >= 200 && rep.status < 300 && j) {
		warn_propagation(json_object_get(j, "propagation"));
		*ret = j;
		rc = 0;
	} else {
		const char *msg =
		    json_string_value(json_object_get(json_object_get(j, "error"), "message"));
		fprintf(stderr, "ringfence: server said %ld: %s\n", rep.status,
			msg ? safe(msg) : "(no message)");
		json_decref(j);
		rc = rep.status >= 400 && rep.status < 500 ? 1 : 2;
	}
out:
	memset(tok, 0, sizeof(tok));
	memset(hdr, 0, sizeof(hdr));
	free(text);
	free(rep.body);
	json_decref(body);
	return rc;
}

static int print_json(json_t *j)
{
	char *t = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (t)
		printf("%s\n", t);
	free(t);
	json_decref(j);
	return 0;
}

static const char *S(json_t *j, const char *k)
{
	const char *v = json_string_value(json_object_get(j, k));
	return v ? v : "-";
}

/* S(j, k), safe to print (safe()). */
static const char *Q(json_t *j, const char *k)
{
	return safe(S(j, k));
}

static long long I(json_t *j, const char *k)
{
	return (long long)json_integer_value(json_object_get(j, k));
}

static void print_release(json_t *r)
{
	printf("release %lld  %s  %s  (sha256 %.16s..., %lld bytes)\n", I(r, "id"), Q(r, "target"),
	       Q(r, "status"), Q(r, "sha256"), I(r, "length"));
	if (strcmp(S(r, "halt_reason"), "") && strcmp(S(r, "halt_reason"), "-"))
		printf("  halt: %s\n", Q(r, "halt_reason"));
	if (I(r, "waiting_for_fix"))
		printf("  waiting for a fix: %lld %s it and %s nothing to go to; publish and "
		       "create a fixed release\n",
		       I(r, "waiting_for_fix"),
		       I(r, "waiting_for_fix") == 1 ? "device runs" : "devices run",
		       I(r, "waiting_for_fix") == 1 ? "has" : "have");
	if (I(r, "transit_rejections"))
		printf("  transit: %lld rejection report%s: the bytes failed delivery (hash, "
		       "signature or mirror), per ring below; not the content's fault, not judged "
		       "by the gates: check the repository and its mirrors\n",
		       I(r, "transit_rejections"), I(r, "transit_rejections") == 1 ? "" : "s");
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(r, "rings"), i, g)
	{
		json_t *h = json_object_get(g, "health"), *b = json_object_get(g, "baseline");
		json_t *gate = json_object_get(g, "gate");
		printf("  %-10s %-11s %6.2f %%  took %lld healthy %lld failed %lld (crashes %lld, "
		       "rollbacks %lld, silent %lld) | baseline failed %lld/%lld | gate %s %s "
		       "p=%.3g\n",
		       S(g, "ring"), S(g, "phase"),
		       json_number_value(json_object_get(g, "percent")), I(h, "devices"),
		       I(h, "healthy"), I(h, "failed"), I(h, "crashes"), I(h, "rollbacks"),
		       I(h, "silent"), I(b, "failed"), I(b, "devices"), S(gate, "verdict"),
		       S(gate, "metric"), json_number_value(json_object_get(gate, "p_value")));
		if (I(g, "transit_rejections"))
			printf("  %-10s transit rejections %lld\n", S(g, "ring"),
			       I(g, "transit_rejections"));
	}
}

/* The request body's size as call() sends it (compact JSON), or SIZE_MAX when it cannot be made. */
static size_t body_size(json_t *body)
{
	char *t = json_dumps(body, JSON_COMPACT);
	size_t n = t ? strlen(t) : SIZE_MAX;

	free(t);
	return n;
}

/* create --manifest FILE...: the files' JSON as the request's "manifests" (the server checks
 * that each is a manifest). The server refuses an operator request over RF_SRV_ADMIN_BODY_MAX
 * with a bare 413, and up to RF_SRV_RELEASE_MANIFESTS_MAX manifests of the larger kind do not fit
 * it: say so here, with how many of the files given fit. Returns 0, or -1 after saying why. */
static int create_manifests(const struct opts *o, json_t *body)
{
	json_t *a = json_array();
	int fit = -1;
	size_t n = 0;

	json_object_set_new(body, "manifests", a);
	for (int i = 0; i < o->nmanifests; i++) {
		json_error_t err;
		json_t *m = json_load_file(o->manifests[i], JSON_REJECT_DUPLICATES, &err);
		if (!json_is_object(m)) {
			fprintf(stderr, "ringfence release create: --manifest %s: %s\n",
				o->manifests[i], m ? "not a JSON object" : err.text);
			json_decref(m);
			return -1;
		}
		json_array_append_new(a, m);
		n = body_size(body);
		if (n > RF_SRV_ADMIN_BODY_MAX && fit < 0)
			fit = i;
	}
	if (fit >= 0) {
		fprintf(stderr,
			"ringfence release create: the request with %d manifests is %zu bytes, over "
			"the server's limit for an operator request (%u bytes, "
			"RF_SRV_ADMIN_BODY_MAX); the first %d of them fit: name only the manifests "
			"of the agent builds in your fleet\n",
			o->nmanifests, n, RF_SRV_ADMIN_BODY_MAX, fit);
		return -1;
	}
	return 0;
}

/* What release create's check of the pack said: one line per manifest, whether it accepts the
 * pack and, when it refuses it, the server's reason. */
static void print_pack(json_t *pk)
{
	size_t i;
	json_t *m;

	if (!pk)
		return;
	printf("pack verified against the %s manifests:\n",
	       !strcmp(S(pk, "manifests_from"), "request") ? "given" : "agent's");
	json_array_foreach(json_object_get(pk, "manifests"), i, m)
	{
		if (json_is_true(json_object_get(m, "accepted")))
			printf("manifest %s: accepts\n", Q(m, "manifest"));
		else
			printf("manifest %s: refuses: %s\n", Q(m, "manifest"), Q(m, "reason"));
	}
}

static const char common_help[] =
    "\ncommon options:\n"
    "  --server URL       ringfenced base URL (default $RINGFENCE_SERVER or "
    "http://127.0.0.1:8440)\n"
    "  --token-file FILE  admin token file (default $RINGFENCE_ADMIN_TOKEN_FILE)\n"
    "  --json             print the server's JSON reply\n"
    "exit: 0 done, 1 the server refused (its message is printed), 2 usage or I/O error\n";

/* A subcommand of release|ring|tenant: its name, its synopsis (after the group) and what it
 * does. The group's --help lists them all; `GROUP SUB --help` shows one. */
struct sub {
	const char *name, *synopsis, *what;
};

static void group_usage(FILE *f, const char *group, const struct sub *subs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s ringfence %s %s", i ? "      " : "usage:", group, subs[i].synopsis);
		if (subs[i].what[0] && strlen(subs[i].synopsis) <= 24)
			fprintf(f, "%*s  %s", (int)(24 - strlen(subs[i].synopsis)), "",
				subs[i].what);
		else if (subs[i].what[0])
			fprintf(f, "\n%*s%s", 34, "", subs[i].what);
		fputc('\n', f);
	}
	fputs(common_help, f);
}

static void sub_usage(FILE *f, const char *group, const struct sub *s)
{
	fprintf(f, "usage: ringfence %s %s\n", group, s->synopsis);
	if (s->what[0])
		fprintf(f, "\n%c%s.\n", s->what[0] - 'a' + 'A', s->what + 1);
	fputs(common_help, f);
}

/*
 * Parse options common to every command (argv[0] is the subcommand); operands go to o->args.
 * Returns -1 to go on, or the exit status: 0 after `--help` (or a "help" operand: the
 * subcommand's usage), 2 after a usage error (already reported).
 */
static int parse(int argc, char **argv, const char *group, const struct sub *s, struct opts *o)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
					   {"server", required_argument, NULL, 's'},
					   {"token-file", required_argument, NULL, 't'},
					   {"reason", required_argument, NULL, 'r'},
					   {"ring", required_argument, NULL, 'R'},
					   {"pin", required_argument, NULL, 'p'},
					   {"window", required_argument, NULL, 'w'},
					   {"position", required_argument, NULL, 'P'},
					   {"force", no_argument, NULL, 'f'},
					   {"manifest", required_argument, NULL, 'm'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	char cmd[64];
	int c;

	snprintf(cmd, sizeof(cmd), "ringfence %s %s", group, s->name);
	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, cmd)) != -1) {
		switch (c) {
		case 'j':
			o->json = true;
			break;
		case 's':
			o->server = optarg;
			break;
		case 't':
			o->token_file = optarg;
			break;
		case 'r':
			o->reason = optarg;
			break;
		case 'R':
			o->ring = optarg;
			break;
		case 'p':
			o->pin = optarg;
			break;
		case 'w':
			o->window = optarg;
			break;
		case 'P':
			o->position = optarg;
			break;
		case 'f':
			o->force = true;
			break;
		case 'm':
			if (o->nmanifests == RF_SRV_RELEASE_MANIFESTS_MAX) {
				fprintf(stderr, "ringfence: at most %d --manifest\n",
					RF_SRV_RELEASE_MANIFESTS_MAX);
				return 2;
			}
			o->manifests[o->nmanifests++] = optarg;
			break;
		case 'h':
			sub_usage(stdout, group, s);
			return 0;
		default:
			return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (!strcmp(argv[i], "help")) {
			sub_usage(stdout, group, s);
			return 0;
		}
		if (o->nargs == 8) {
			fprintf(stderr, "ringfence: too many arguments\n");
			return 2;
		}
		o->args[o->nargs++] = argv[i];
	}
	if (o->ring && !strcmp(o->ring, "none"))
		o->ring_null = true;
	if (o->window && !strcmp(o->window, "none"))
		o->window_null = true;
	return -1;
}

/*
 * The start every group shares (rf_cli_group_start): its usage without a subcommand or with
 * --help, then the subcommand and its options. Returns -1 to go on (*ret_cmd is the
 * subcommand's name), or the exit status.
 */
static int start(int argc, char **argv, const char *group, const struct sub *subs, size_t n,
		 void (*usage)(FILE *f), struct opts *o, const char **ret_cmd)
{
	char cmd[32];
	int i, rc;

	snprintf(cmd, sizeof(cmd), "ringfence %s", group);
	if ((rc = rf_cli_group_start(argc, argv, cmd, usage, &i)) >= 0)
		return rc;
	for (size_t k = 0; k < n; k++)
		if (!strcmp(argv[i], subs[k].name)) {
			*ret_cmd = subs[k].name;
			return parse(argc - i, argv + i, group, &subs[k], o);
		}
	fprintf(stderr, "%s: unknown command '%s' (see '%s --help')\n", cmd, argv[i], cmd);
	return 2;
}

/* An id argument that must be a release number. */
static bool release_id_ok(const char *s)
{
	uint64_t v;
	return s && rf_parse_u64(s, &v) == 0 && v > 0;
}

static const struct sub release_subs[] = {
    {"create", "create TARGET [--manifest FILE]...",
     "create a release from a published TUF target. The server reads the target's bytes from "
     "its repository and refuses (exit 1, with the reason) bytes that are not the signed ones or "
     "not a pack an agent accepts: one of the agent manifests this build embeds, or every "
     "manifest FILE given (those of the agent builds in your fleet, manifests/*.json)"},
    {"list", "list", "every release, newest first"},
    {"status", "status ID", "per ring: admitted share, health vs baseline, gate"},
    {"hold", "hold ID [--reason R]", "no new devices, no ring advances; devices on it stay"},
    {"halt", "halt ID [--reason R] [--force]",
     "stop offering it: devices on it move to a newer release, else go back, else wait for a "
     "fix; --force when devices run it as their only good content (the server says how many)"},
    {"resume", "resume ID", "continue on the signed schedule"},
    {"rollback", "rollback ID [--reason R] [--force]", "halt for good (as halt, final)"},
};

static void release_usage(FILE *f)
{
	group_usage(f, "release", release_subs, RF_ARRAY_SIZE(release_subs));
}

int rf_cli_release(int argc, char **argv)
{
	struct opts o = {0};
	const char *cmd = NULL;
	char path[256];
	json_t *j = NULL;
	int rc;

	rc = start(argc, argv, "release", release_subs, RF_ARRAY_SIZE(release_subs), release_usage,
		   &o, &cmd);
	if (rc >= 0)
		return rc;
	if (!strcmp(cmd, "create") && o.nargs == 1) {
		json_t *b = json_pack("{s:s}", "target", o.args[0]);
		if (o.nmanifests && create_manifests(&o, b) < 0) {
			json_decref(b);
			return 2;
		}
		rc = call(&o, "POST", "/v1/admin/releases", b, &j);
	} else if (o.nmanifests) {
		fprintf(stderr, "ringfence release: --manifest is for 'create' only\n");
		return 2;
	} else if (!strcmp(cmd, "list") && o.nargs == 0) {
		rc = call(&o, "GET", "/v1/admin/releases", NULL, &j);
		if (rc == 0 && !o.json) {
			size_t i;
			json_t *r;
			json_array_foreach(json_object_get(j, "releases"), i, r)
			    printf("%4lld  %-40s %-12s %s\n", I(r, "id"), Q(r, "target"),
				   Q(r, "status"), Q(r, "halt_reason"));
			json_decref(j);
			return 0;
		}
	} else if (!strcmp(cmd, "status") && o.nargs == 1 && release_id_ok(o.args[0])) {
		snprintf(path, sizeof(path), "/v1/admin/releases/%s", o.args[0]);
		rc = call(&o, "GET", path, NULL, &j);
	} else if ((!strcmp(cmd, "halt") || !strcmp(cmd, "resume") || !strcmp(cmd, "rollback") ||
		    !strcmp(cmd, "hold")) &&
		   o.nargs == 1 && release_id_ok(o.args[0])) {
		json_t *b = NULL;
		snprintf(path, sizeof(path), "/v1/admin/releases/%s/%s", o.args[0], cmd);
		if (o.reason || o.force) {
			b = json_object();
			if (o.reason)
				json_object_set_new(b, "reason", json_string(o.reason));
			if (o.force)
				json_object_set_new(b, "force", json_true());
		}
		rc = call(&o, "POST", path, b, &j);
	} else {
		fprintf(stderr, "ringfence release: bad arguments for '%s' (see --help)\n", cmd);
		return 2;
	}
	if (rc)
		return rc;
	if (o.json)
		return print_json(j);
	print_release(j);
	print_pack(json_object_get(j, "pack")); /* create's */
	json_decref(j);
	return 0;
}

static const struct sub ring_subs[] = {
    {"list", "list", ""},
    {"add", "add NAME [--position N]", "rings are ordered by position"},
    {"delete", "delete NAME", "only when no device or tenant uses it"},
};

static void ring_usage(FILE *f)
{
	group_usage(f, "ring", ring_subs, RF_ARRAY_SIZE(ring_subs));
}

int rf_cli_ring(int argc, char **argv)
{
	struct opts o = {0};
	const char *cmd = NULL;
	char path[256];
	json_t *j = NULL;
	int rc;

	rc = start(argc, argv, "ring", ring_subs, RF_ARRAY_SIZE(ring_subs), ring_usage, &o, &cmd);
	if (rc >= 0)
		return rc;
	if (!strcmp(cmd, "list") && o.nargs == 0) {
		rc = call(&o, "GET", "/v1/admin/rings", NULL, &j);
	} else if (!strcmp(cmd, "add") && o.nargs == 1) {
		json_t *b = json_pack("{s:s}", "name", o.args[0]);
		uint64_t pos;
		if (o.position) {
			if (rf_parse_u64(o.position, &pos) < 0 || pos > 1000000) {
				fprintf(stderr, "ringfence ring: --position must be a number\n");
				json_decref(b);
				return 2;
			}
			json_object_set_new(b, "position", json_integer((json_int_t)pos));
		}
		rc = call(&o, "POST", "/v1/admin/rings", b, &j);
	} else if (!strcmp(cmd, "delete") && o.nargs == 1) {
		if (strchr(o.args[0], '/') || strchr(o.args[0], '?') || strlen(o.args[0]) > 128) {
			fprintf(stderr, "ringfence ring: bad ring name\n");
			return 2;
		}
		snprintf(path, sizeof(path), "/v1/admin/rings/%s", o.args[0]);
		rc = call(&o, "DELETE", path, NULL, &j);
	} else {
		fprintf(stderr, "ringfence ring: bad arguments for '%s' (see --help)\n", cmd);
		return 2;
	}
	if (rc)
		return rc;
	if (o.json)
		return print_json(j);
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(j, "rings"), i, r) printf(
	    "%-20s position %lld, %lld devices\n", S(r, "name"), I(r, "position"), I(r, "devices"));
	json_decref(j);
	return 0;
}

/* Minutes after midnight of the HH:MM at t (in --window w): -2 not HH:MM, -1 out of range
 * (reported), else 0..1439. */
static int hhmm(const char *w, const char *t)
{
	for (int i = 0; i < 5; i++)
		if (i == 2 ? t[i] != ':' : (t[i] < '0' || t[i] > '9'))
			return -2;
	int h = (t[0] - '0') * 10 + (t[1] - '0'), m = (t[3] - '0') * 10 + (t[4] - '0');
	if (h > 23 || m > 59) {
		fprintf(stderr,
			"ringfence tenant: --window %s: %s %.2s is out of range (%s, UTC)\n", w,
			h > 23 ? "hour" : "minute", h > 23 ? t : t + 3, h > 23 ? "00-23" : "00-59");
		return -1;
	}
	return h * 60 + m;
}

/* The policy members given on the command line, as a request body. */
static int policy_body(const struct opts *o, json_t *b)
{
	if (o->ring_null)
		json_object_set_new(b, "ring", json_null());
	else if (o->ring)
		json_object_set_new(b, "ring", json_string(o->ring));
	if (o->pin)
		json_object_set_new(b, "pin", json_string(o->pin));
	if (o->window_null) {
		json_object_set_new(b, "window", json_null());
	} else if (o->window) {
		const char *w = o->window;
		int m0 = -2, m1 = -2;
		if (strlen(w) != 11 || w[5] != '-' || (m0 = hhmm(w, w)) == -2 ||
		    (m0 >= 0 && (m1 = hhmm(w, w + 6)) == -2)) {
			fprintf(stderr, "ringfence tenant: --window is HH:MM-HH:MM (UTC) or none, "
					"e.g. 22:00-04:00\n");
			return -1;
		}
		if (m0 < 0 || m1 < 0)
			return -1;
		if (m0 == m1) {
			fprintf(stderr,
				"ringfence tenant: --window %s starts and ends at the same time; "
				"give a window of at least a minute, or none for any time\n",
				w);
			return -1;
		}
		char a[6];
		memcpy(a, w, 5);
		a[5] = 0;
		json_object_set_new(b, "window", json_pack("{s:s,s:s}", "start", a, "end", w + 6));
	}
	return 0;
}

static void print_tenant(json_t *t)
{
	json_t *w = json_object_get(t, "window");
	printf("%-20s ring %s, pin %s, window %s%s%s, %lld devices\n", S(t, "name"),
	       json_is_string(json_object_get(t, "ring")) ? S(t, "ring") : "(device's own)",
	       S(t, "pin"), json_is_object(w) ? S(w, "start") : "any time",
	       json_is_object(w) ? "-" : "", json_is_object(w) ? S(w, "end") : "", I(t, "devices"));
}

static const struct sub tenant_subs[] = {
    {"list", "list", ""},
    {"show", "show NAME", ""},
    {"create", "create NAME [--ring R|none] [--pin latest|n-1] [--window HH:MM-HH:MM|none]",
     "prints the enrollment token (shown once)"},
    {"set", "set NAME [--ring R|none] [--pin latest|n-1] [--window HH:MM-HH:MM|none]", ""},
    {"token", "token NAME", "rotate the enrollment token"},
};

static void tenant_usage(FILE *f)
{
	group_usage(f, "tenant", tenant_subs, RF_ARRAY_SIZE(tenant_subs));
}

int rf_cli_tenant(int argc, char **argv)
{
	struct opts o = {0};
	const char *cmd = NULL;
	char path[256];
	json_t *j = NULL;
	int rc;

	rc = start(argc, argv, "tenant", tenant_subs, RF_ARRAY_SIZE(tenant_subs), tenant_usage, &o,
		   &cmd);
	if (rc >= 0)
		return rc;
	if (o.nargs == 1 &&
	    (strchr(o.args[0], '/') || strchr(o.args[0], '?') || strlen(o.args[0]) > 128)) {
		fprintf(stderr, "ringfence tenant: bad tenant name\n");
		return 2;
	}
	if (!strcmp(cmd, "list") && o.nargs == 0) {
		rc = call(&o, "GET", "/v1/admin/tenants", NULL, &j);
		if (rc == 0 && !o.json) {
			size_t i;
			json_t *t;
			json_array_foreach(json_object_get(j, "tenants"), i, t) print_tenant(t);
			json_decref(j);
			return 0;
		}
	} else if (!strcmp(cmd, "show") && o.nargs == 1) {
		snprintf(path, sizeof(path), "/v1/admin/tenants/%s", o.args[0]);
		rc = call(&o, "GET", path, NULL, &j);
	} else if ((!strcmp(cmd, "create") || !strcmp(cmd, "set")) && o.nargs == 1) {
		json_t *b = json_object();
		if (policy_body(&o, b) < 0) {
			json_decref(b);
			return 2;
		}
		if (!strcmp(cmd, "create")) {
			json_object_set_new(b, "name", json_string(o.args[0]));
			rc = call(&o, "POST", "/v1/admin/tenants", b, &j);
		} else {
			snprintf(path, sizeof(path), "/v1/admin/tenants/%s", o.args[0]);
			rc = call(&o, "PUT", path, b, &j);
		}
	} else if (!strcmp(cmd, "token") && o.nargs == 1) {
		snprintf(path, sizeof(path), "/v1/admin/tenants/%s/token", o.args[0]);
		rc = call(&o, "POST", path, NULL, &j);
	} else {
		fprintf(stderr, "ringfence tenant: bad arguments for '%s' (see --help)\n", cmd);
		return 2;
	}
	if (rc)
		return rc;
	if (o.json)
		return print_json(j);
	if (json_object_get(j, "pin"))
		print_tenant(j);
	if (json_object_get(j, "enrollment_token"))
		printf("enrollment token (shown once, give it to the tenant's agents): %s\n",
		       S(j, "enrollment_token"));
	json_decref(j);
	return 0;
}

/* `ringfence audit`: the server's audit trail (GET /v1/admin/audit), newest first, one page. */
static void audit_usage(FILE *f)
{
	fputs("usage: ringfence audit [--release ID] [--limit N] [--before ENTRY] [--json]\n"
	      "\n"
	      "The audit trail, newest first: every operator action (who: the admin token's id;\n"
	      "what; why) and every gate decision that changed a release (with its evidence).\n"
	      "  --release ID    only entries about release ID\n"
	      "  --limit N       entries per page (1..500, default 50)\n"
	      "  --before ENTRY  the page of entries older than entry number ENTRY (the last\n"
	      "                  line of a full page says which number to give)\n",
	      f);
	fputs(common_help, f);
}

int rf_cli_audit(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
					   {"server", required_argument, NULL, 's'},
					   {"token-file", required_argument, NULL, 't'},
					   {"release", required_argument, NULL, 'r'},
					   {"limit", required_argument, NULL, 'l'},
					   {"before", required_argument, NULL, 'b'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	struct opts o = {0};
	const char *num[3] = {NULL, NULL, NULL}; /* release, limit, before */
	static const char *const key[3] = {"release", "limit", "before"};
	char path[256];
	size_t n;
	json_t *j = NULL, *e;
	int c, rc;

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence audit")) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 's':
			o.server = optarg;
			break;
		case 't':
			o.token_file = optarg;
			break;
		case 'r':
			num[0] = optarg;
			break;
		case 'l':
			num[1] = optarg;
			break;
		case 'b':
			num[2] = optarg;
			break;
		case 'h':
			audit_usage(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringfence audit: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return 2;
	}
	n = (size_t)snprintf(path, sizeof(path), "/v1/admin/audit");
	for (int i = 0; i < 3; i++) {
		uint64_t v;
		if (!num[i])
			continue;
		if (rf_parse_u64(num[i], &v) < 0 || v == 0 || (i == 1 && v > 500)) {
			fprintf(stderr, "ringfence audit: --%s must be a number%s\n", key[i],
				i == 1 ? " from 1 to 500" : " above 0");
			return 2;
		}
		n += (size_t)snprintf(path + n, sizeof(path) - n, "%c%s=%llu",
				      strchr(path, '?') ? '&' : '?', key[i], (unsigned long long)v);
	}
	rc = call(&o, "GET", path, NULL, &j);
	if (rc)
		return rc;
	if (o.json)
		return print_json(j);
	json_array_foreach(json_object_get(j, "entries"), n, e)
	{
		printf("#%-5lld %s  %-15s %-16s", I(e, "id"), S(e, "time_utc"), S(e, "actor"),
		       S(e, "action"));
		if (I(e, "release"))
			printf(" release %lld", I(e, "release"));
		if (strcmp(S(e, "subject"), "") && strcmp(S(e, "subject"), "-"))
			printf(" '%s'", Q(e, "subject"));
		if (strcmp(S(e, "detail"), "") && strcmp(S(e, "detail"), "-"))
			printf(": %s", Q(e, "detail"));
		putchar('\n');
	}
	if (json_array_size(json_object_get(j, "entries")) == 0)
		printf("(no entries)\n");
	if (json_is_integer(json_object_get(j, "next_before")))
		printf("(older entries: ringfence audit --before %lld%s%s)\n", I(j, "next_before"),
		       num[0] ? " --release " : "", num[0] ? num[0] : "");
	json_decref(j);
	return 0;
}
