/*
 * `ringfence repo`: the signed TUF repository (init, add, publish, rotate, refresh), a thin
 * shell over the trust/ repository writer (src/trust/tuf.h). Private keys stay in DIR/keys
 * (mode 0600) and are never printed. Exit status: 0 ok, 1 the operation was refused, 2 usage
 * or I/O error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/opt.h"
#include "common/util.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"
#include "rollout/rollout.h"
#include "trust/tuf.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringfence repo init DIR [--threshold N] [--keytype ed25519|ecdsa|rsa]\n"
	    "                          [--expiry ROLE=DURATION]...\n"
	    "       ringfence repo add DIR PACK --name NAME --custom JSON|@FILE\n"
	    "       ringfence repo add DIR FILE --name NAME --raw [--custom JSON|@FILE]\n"
	    "                          [--replace]\n"
	    "       ringfence repo publish DIR\n"
	    "       ringfence repo rotate DIR ROLE\n"
	    "       ringfence repo refresh DIR [--within DURATION]\n\n"
	    "init     create keys (DIR/keys, mode 0600), root v1 and empty targets, published\n"
	    "add      stage a new targets version holding PACK as target NAME; --custom is its\n"
	    "         ramp schedule, a JSON object (or @FILE to read it from FILE) carried in\n"
	    "         the target's custom metadata. PACK and the schedule are checked first\n"
	    "         (nothing is signed when they fail); --raw signs any file and JSON.\n"
	    "         A target NAME with other bytes is refused (publish a fix under a new\n"
	    "         name) unless --replace; the same bytes again change nothing\n"
	    "publish  write a new snapshot and timestamp for the staged targets\n"
	    "rotate   give ROLE (root, timestamp, snapshot, targets) new keys: a new root signed\n"
	    "         by the old and the new root keys, then re-sign and publish ROLE\n"
	    "refresh  re-sign (as new versions) the timestamp, snapshot, targets and root\n"
	    "         that expire within DURATION (default 12h)\n\n"
	    "DURATION is a number with an optional unit s, m, h or d (default s). Default expiry:\n"
	    "root 365d, targets 90d, snapshot 7d, timestamp 1d. Serve DIR/repository: clients\n"
	    "use <base>/metadata/ and <base>/targets/.\n");
}

/* Each subcommand's own usage (`ringfence repo SUB --help`). */
static const struct {
	const char *name, *text;
} sub_usage[] = {
    {"init", "usage: ringfence repo init DIR [--threshold N] [--keytype ed25519|ecdsa|rsa]\n"
	     "                          [--expiry ROLE=DURATION]...\n\n"
	     "Create keys (DIR/keys, mode 0600), root v1 and empty targets, published.\n"
	     "--threshold N signatures per role (1..16, default 1); --expiry sets a role's\n"
	     "expiry (default root 365d, targets 90d, snapshot 7d, timestamp 1d). DURATION is\n"
	     "a number with an optional unit s, m, h or d (default s). Serve DIR/repository:\n"
	     "clients use <base>/metadata/ and <base>/targets/.\n"},
    {"add", "usage: ringfence repo add DIR PACK --name NAME --custom JSON|@FILE\n"
	    "       ringfence repo add DIR FILE --name NAME --raw [--custom JSON|@FILE]\n"
	    "                          [--replace]\n\n"
	    "Stage a new targets version holding PACK as target NAME; --custom is a JSON object\n"
	    "carried in the target's custom metadata (its ramp schedule: docs/rollout.md),\n"
	    "given as text or as @FILE to read it from FILE. Publishing the repository then\n"
	    "makes it visible. Before anything is signed, PACK must be a well-formed pack\n"
	    "(its structure; 'ringfence content verify' checks it against agent manifests)\n"
	    "and the schedule must pass the same check ringfenced makes when a release is\n"
	    "created; either failing is exit 1 with the reason, nothing staged. --raw stages\n"
	    "any file with any custom JSON unchecked (a plain TUF target; ringfenced releases\n"
	    "it only if its custom metadata holds a valid schedule and its bytes are a pack\n"
	    "an agent accepts: 'ringfence release create' checks both).\n\n"
	    "A release is identified by its target's name and hash: a target NAME already\n"
	    "staged or published with other bytes is refused (exit 1), since devices not yet\n"
	    "on a release of it would refuse the new bytes. Publish a fixed pack under a new\n"
	    "name; --replace replaces it anyway (only when no release uses it). Adding the\n"
	    "same bytes and custom metadata again changes nothing (exit 0).\n"},
    {"publish", "usage: ringfence repo publish DIR\n\n"
		"Write a new snapshot and timestamp for the staged targets.\n"},
    {"rotate", "usage: ringfence repo rotate DIR ROLE\n\n"
	       "Give ROLE (root, timestamp, snapshot, targets) new keys: a new root signed by\n"
	       "the old and the new root keys, then re-sign and publish ROLE.\n"},
    {"refresh", "usage: ringfence repo refresh DIR [--within DURATION]\n\n"
		"Re-sign (as new versions) the timestamp, snapshot, targets and root that\n"
		"expire within DURATION (default 12h): a number with an optional unit s, m, h\n"
		"or d (default s).\n"},
};

/* Print SUB's usage to f; returns the exit status (0 for --help on stdout, 2 for a usage
 * error on stderr). */
static int sub_help(FILE *f, const char *sub)
{
	for (size_t i = 0; i < RF_ARRAY_SIZE(sub_usage); i++)
		if (!strcmp(sub_usage[i].name, sub))
			fputs(sub_usage[i].text, f);
	return f == stdout ? 0 : 2;
}

static void print_diag(void *ud, int code, const char *msg)
{
	(void)ud;
	fprintf(stderr, "ringfence repo: %s (%s)\n", msg, rf_strerror(code));
}

static int parse_duration(const char *s, int64_t *ret)
{
	char num[32];
	size_t n = strlen(s);
	uint64_t v, mul = 1;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 'd':
		mul = 86400;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'm':
		mul = 60;
		break;
	case 's':
		break;
	default:
		n++;
	}
	num[n - 1] = '\0';
	if (rf_parse_u64(num, &v) < 0 || v == 0 || v > (uint64_t)INT64_MAX / mul / 4)
		return -EINVAL;
	*ret = (int64_t)(v * mul);
	return 0;
}

static int done(int r)
{
	if (r == 0)
		return 0;
	/* refusals of the input are 1; environment problems are 2 */
	return r == -EINVAL || r == -EEXIST || r == -EBADMSG || r == -EKEYREJECTED ? 1 : 2;
}

static int cmd_init(int argc, char **argv, struct rf_diag *d)
{
	struct rf_tuf_repo_opts o = {.keytype = RF_TUF_KEY_ED25519, .threshold = 1};
	static const struct option lo[] = {{"threshold", required_argument, NULL, 't'},
					   {"keytype", required_argument, NULL, 'k'},
					   {"expiry", required_argument, NULL, 'e'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	const char *dir = NULL;
	int c;

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence repo init")) != -1) {
		const char *v = optarg;
		switch (c) {
		case 'h':
			return sub_help(stdout, "init");
		case 't': {
			uint64_t t;
			if (rf_parse_u64(v, &t) < 0 || t < 1 || t > 16) {
				fprintf(stderr, "ringfence repo: --threshold must be 1..16\n");
				return 2;
			}
			o.threshold = (unsigned)t;
			break;
		}
		case 'k':
			if (!strcmp(v, "ed25519"))
				o.keytype = RF_TUF_KEY_ED25519;
			else if (!strcmp(v, "ecdsa"))
				o.keytype = RF_TUF_KEY_ECDSA_P256;
			else if (!strcmp(v, "rsa"))
				o.keytype = RF_TUF_KEY_RSA_PSS;
			else {
				fprintf(stderr,
					"ringfence repo: --keytype is ed25519, ecdsa or rsa\n");
				return 2;
			}
			break;
		case 'e': {
			const char *eq = strchr(v, '=');
			char role[16];
			enum rf_tuf_role ro;
			int64_t dur;
			if (!eq || (size_t)(eq - v) >= sizeof(role)) {
				fprintf(stderr, "ringfence repo: --expiry takes ROLE=DURATION\n");
				return 2;
			}
			memcpy(role, v, (size_t)(eq - v));
			role[eq - v] = '\0';
			if (rf_tuf_role_from_name(role, &ro) < 0 ||
			    parse_duration(eq + 1, &dur) < 0) {
				fprintf(stderr, "ringfence repo: bad --expiry '%s'\n", v);
				return 2;
			}
			o.expiry[ro] = dur;
			break;
		}
		default:
			return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "ringfence repo init: takes one DIR\n\n");
		return sub_help(stderr, "init");
	}
	dir = argv[optind];
	int r = rf_tuf_repo_init(dir, &o, rf_now_wall(), d);
	if (r == 0)
		printf("repository created in %s (serve %s/repository)\n", dir, dir);
	return done(r);
}

/*
 * --custom's value: JSON text, or @FILE to read it from FILE. The text must be a JSON object;
 * anything else is refused here with what to do instead (a file name given without '@' is the
 * usual mistake). *ret_text is the file's text (NUL-terminated; NULL for inline JSON).
 * Returns 0, or the exit status after an error (printed).
 */
static int read_custom(const char *arg, char **ret_text)
{
	const char *text = arg, *from = NULL;
	uint8_t *p = NULL;
	size_t n = 0;
	json_error_t e;
	int r;

	if (arg[0] == '@') {
		if ((r = rf_file_read(arg + 1, RF_FILE_MAX, &p, &n)) < 0) {
			fprintf(stderr, "ringfence repo add: --custom %s: %s\n", arg,
				rf_strerror(r));
			return 2;
		}
		if (memchr(p, 0, n)) {
			fprintf(stderr, "ringfence repo add: --custom %s: not JSON text\n", arg);
			free(p);
			return 1;
		}
		text = (const char *)p; /* rf_file_read NUL-terminates */
		from = arg + 1;
	}
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	bool object = json_is_object(j);
	json_decref(j);
	if (!object) {
		char what[160];
		if (p)
			snprintf(what, sizeof(what), "%s", from);
		else
			snprintf(what, sizeof(what), "--custom '%.40s%s'", arg,
				 strlen(arg) > 40 ? "..." : "");
		if (!j)
			fprintf(stderr, "ringfence repo add: %s is not JSON (line %d: %s)", what,
				e.line, e.text);
		else
			fprintf(stderr, "ringfence repo add: %s is JSON but not an object", what);
		if (!p && access(arg, R_OK) == 0)
			fprintf(stderr, "; to read the file, give --custom @%s\n", arg);
		else
			fprintf(stderr, "; --custom takes a JSON object, or @FILE to read one from "
					"a file\n");
		free(p);
		return 1;
	}
	*ret_text = (char *)p;
	return 0;
}

/*
 * What ringfenced will need of a release's target, checked before it is signed (a mistake
 * found after publication needs a new signed version to undo): pack bytes whose structure
 * opens (rf_pack_open: magic, version, sections, indexes; no manifest here) and a schedule
 * that the rollout engine's parser accepts, the one ringfenced runs at release create. The
 * checks that need the server's rings (which exist, their order) are made there. Returns 0, or
 * the exit status after printing why.
 */
static int check_release_target(const char *pack, const uint8_t *buf, size_t n, const char *custom)
{
	struct rf_diag d = {0};
	struct rf_pack *pk = NULL;
	struct rf_rollout_schedule *sc;
	int r = rf_pack_open(buf, n, &pk, &d);

	rf_pack_free(pk);
	if (r < 0) {
		fprintf(stderr,
			"ringfence repo add: %s is not a ringfence pack (%s); nothing staged. "
			"Compile one with 'ringfence content compile', or stage another kind of "
			"file with --raw\n",
			pack, d.count ? d.first : rf_strerror(r));
		return 1;
	}
	if (!custom) {
		fprintf(stderr, "ringfence repo add: --custom is required: a pack is released by "
				"the ramp schedule in its custom metadata (docs/rollout.md); "
				"nothing staged\n");
		return 2;
	}
	sc = malloc(sizeof(*sc));
	if (!sc) {
		fprintf(stderr, "ringfence repo add: %s\n", rf_strerror(-ENOMEM));
		return 2;
	}
	memset(&d, 0, sizeof(d));
	r = rf_rollout_schedule_parse((const uint8_t *)custom, strlen(custom), sc, &d);
	free(sc);
	if (r < 0) {
		fprintf(stderr,
			"ringfence repo add: the schedule in --custom is not valid: %s; nothing "
			"staged (format: docs/rollout.md)\n",
			d.count ? d.first : rf_strerror(r));
		return 1;
	}
	return 0;
}

static int cmd_add(int argc, char **argv, struct rf_diag *d)
{
	static const struct option lo[] = {{"name", required_argument, NULL, 'n'},
					   {"custom", required_argument, NULL, 'c'},
					   {"raw", no_argument, NULL, 'r'},
					   {"replace", no_argument, NULL, 'R'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	const char *dir, *pack, *name = NULL, *custom = NULL;
	char *custom_text = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	bool raw = false, unchanged = false;
	unsigned flags = 0;
	int r, c;

	optind = 0;
	while ((c = rf_getopt(argc, argv, "h", lo, "ringfence repo add")) != -1) {
		switch (c) {
		case 'h':
			return sub_help(stdout, "add");
		case 'n':
			name = optarg;
			break;
		case 'c':
			custom = optarg;
			break;
		case 'r':
			raw = true;
			break;
		case 'R':
			flags |= RF_TUF_ADD_REPLACE;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 2 || !name) {
		fprintf(stderr, "ringfence repo add: DIR, PACK and --name are required\n");
		return 2;
	}
	dir = argv[optind];
	pack = argv[optind + 1];
	if (custom && (r = read_custom(custom, &custom_text)) != 0)
		return r;
	if (custom_text)
		custom = custom_text;
	if ((r = rf_file_read(pack, RF_FILE_MAX, &buf, &n)) < 0) {
		fprintf(stderr, "ringfence repo add: %s: %s\n", pack, rf_strerror(r));
		return 2;
	}
	if (!raw && (r = check_release_target(pack, buf, n, custom)) != 0) {
		free(buf);
		free(custom_text);
		return r;
	}
	r = rf_tuf_repo_add_flags(dir, name, buf, n, custom, flags, rf_now_wall(), &unchanged, d);
	free(buf);
	free(custom_text);
	if (r == 0 && unchanged)
		printf("target %s already holds these bytes (%zu) and custom metadata; nothing "
		       "staged\n",
		       name, n);
	else if (r == 0)
		printf("staged target %s (%zu bytes); run 'ringfence repo publish %s'\n", name, n,
		       dir);
	return done(r);
}

/* publish DIR, rotate DIR ROLE, refresh DIR [--within DURATION]. */
static int cmd_other(int argc, char **argv, struct rf_diag *d)
{
	static const struct option lo[] = {
	    {"within", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'}, {0}};
	const char *sub = argv[0], *within_arg = NULL;
	bool refresh = !strcmp(sub, "refresh");
	char cmd[64];
	int c, r, nops = !strcmp(sub, "rotate") ? 2 : 1;

	snprintf(cmd, sizeof(cmd), "ringfence repo %s", sub);
	optind = 0;
	/* --within is refresh's only; the others take no option but --help. */
	while ((c = rf_getopt(argc, argv, "h", refresh ? lo : lo + 1, cmd)) != -1) {
		if (c == 'h')
			return sub_help(stdout, sub);
		if (c != 'w')
			return 2;
		within_arg = optarg;
	}
	if (argc - optind != nops) {
		fprintf(stderr, "ringfence repo: unknown subcommand or wrong arguments '%s'\n",
			sub);
		return sub_help(stderr, sub);
	}
	const char *dir = argv[optind];
	if (!strcmp(sub, "publish")) {
		r = rf_tuf_repo_publish(dir, rf_now_wall(), d);
		if (r == 0)
			printf("published %s\n", dir);
		return done(r);
	}
	if (!strcmp(sub, "rotate")) {
		enum rf_tuf_role role;
		if (rf_tuf_role_from_name(argv[optind + 1], &role) < 0) {
			fprintf(stderr,
				"ringfence repo rotate: ROLE is root, timestamp, snapshot or "
				"targets\n");
			return 2;
		}
		r = rf_tuf_repo_rotate(dir, role, rf_now_wall(), d);
		if (r == 0)
			printf("rotated the %s keys of %s\n", argv[optind + 1], dir);
		return done(r);
	}
	int64_t within = 12 * 3600;
	bool changed = false;
	if (within_arg && parse_duration(within_arg, &within) < 0) {
		fprintf(stderr, "ringfence repo refresh: bad --within '%s'\n", within_arg);
		return 2;
	}
	r = rf_tuf_repo_refresh(dir, rf_now_wall(), within, &changed, d);
	if (r == 0)
		printf("%s\n", changed ? "re-signed" : "nothing expires within the window");
	return done(r);
}

int rf_cli_repo(int argc, char **argv)
{
	struct rf_diag d = {.emit = print_diag};
	int i, rc = rf_cli_group_start(argc, argv, "ringfence repo", usage, &i);

	if (rc >= 0)
		return rc;
	argc -= i - 1;
	argv += i - 1;
	const char *sub = argv[1];
	if (!strcmp(sub, "init"))
		return cmd_init(argc - 1, argv + 1, &d);
	if (!strcmp(sub, "add"))
		return cmd_add(argc - 1, argv + 1, &d);
	if (!strcmp(sub, "publish") || !strcmp(sub, "rotate") || !strcmp(sub, "refresh"))
		return cmd_other(argc - 1, argv + 1, &d);
	fprintf(stderr, "ringfence repo: unknown subcommand or wrong arguments '%s'\n", sub);
	usage(stderr);
	return 2;
}
