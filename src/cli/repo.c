/*
 * `ringfence repo`: the signed TUF repository (init, add, publish, rotate, refresh), a thin
 * shell over the trust/ repository writer (src/trust/tuf.h). Private keys stay in DIR/keys
 * (mode 0600) and are never printed. Exit status: 0 ok, 1 the operation was refused, 2 usage
 * or I/O error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"
#include "ringfence/limits.h"
#include "trust/tuf.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ringfence repo init DIR [--threshold N] [--keytype ed25519|ecdsa|rsa]\n"
	    "                          [--expiry ROLE=DURATION]...\n"
	    "       ringfence repo add DIR PACK --name NAME [--custom JSON]\n"
	    "       ringfence repo publish DIR\n"
	    "       ringfence repo rotate DIR ROLE\n"
	    "       ringfence repo refresh DIR [--within DURATION]\n\n"
	    "init     create keys (DIR/keys, mode 0600), root v1 and empty targets, published\n"
	    "add      stage a new targets version holding PACK as target NAME; --custom is a JSON\n"
	    "         object carried verbatim in the target's custom metadata\n"
	    "publish  write a new snapshot and timestamp for the staged targets\n"
	    "rotate   give ROLE (root, timestamp, snapshot, targets) new keys: a new root signed\n"
	    "         by the old and the new root keys, then re-sign and publish ROLE\n"
	    "refresh  re-sign (as new versions) the timestamp, snapshot, targets and root\n"
	    "         that expire within DURATION (default 12h)\n\n"
	    "DURATION is a number with an optional unit s, m, h or d (default s). Default expiry:\n"
	    "root 365d, targets 90d, snapshot 7d, timestamp 1d. Serve DIR/repository: clients\n"
	    "use <base>/metadata/ and <base>/targets/.\n");
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
	const char *dir = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--threshold") && v) {
			uint64_t t;
			if (rf_parse_u64(v, &t) < 0 || t < 1 || t > 16) {
				fprintf(stderr, "ringfence repo: --threshold must be 1..16\n");
				return 2;
			}
			o.threshold = (unsigned)t;
			i++;
		} else if (!strcmp(a, "--keytype") && v) {
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
			i++;
		} else if (!strcmp(a, "--expiry") && v) {
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
			i++;
		} else if (a[0] != '-' && !dir) {
			dir = a;
		} else {
			fprintf(stderr, "ringfence repo init: bad argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!dir) {
		usage(stderr);
		return 2;
	}
	int r = rf_tuf_repo_init(dir, &o, rf_now_wall(), d);
	if (r == 0)
		printf("repository created in %s (serve %s/repository)\n", dir, dir);
	return done(r);
}

static int cmd_add(int argc, char **argv, struct rf_diag *d)
{
	const char *dir = NULL, *pack = NULL, *name = NULL, *custom = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--name") && v) {
			name = v;
			i++;
		} else if (!strcmp(a, "--custom") && v) {
			custom = v;
			i++;
		} else if (a[0] != '-' && !dir) {
			dir = a;
		} else if (a[0] != '-' && !pack) {
			pack = a;
		} else {
			fprintf(stderr, "ringfence repo add: bad argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!dir || !pack || !name) {
		fprintf(stderr, "ringfence repo add: DIR, PACK and --name are required\n");
		return 2;
	}
	if ((r = rf_file_read(pack, RF_FILE_MAX, &buf, &n)) < 0) {
		fprintf(stderr, "ringfence repo add: %s: %s\n", pack, rf_strerror(r));
		return 2;
	}
	r = rf_tuf_repo_add(dir, name, buf, n, custom, rf_now_wall(), d);
	free(buf);
	if (r == 0)
		printf("staged target %s (%zu bytes); run 'ringfence repo publish %s'\n", name, n,
		       dir);
	return done(r);
}

int rf_cli_repo(int argc, char **argv)
{
	struct rf_diag d = {.emit = print_diag};
	const char *sub = argc > 1 ? argv[1] : NULL;
	int r;

	if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
		usage(sub ? stdout : stderr);
		return sub ? 0 : 2;
	}
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
	if (!strcmp(sub, "init"))
		return cmd_init(argc - 1, argv + 1, &d);
	if (!strcmp(sub, "add"))
		return cmd_add(argc - 1, argv + 1, &d);
	if (!strcmp(sub, "publish") && argc == 3) {
		r = rf_tuf_repo_publish(argv[2], rf_now_wall(), &d);
		if (r == 0)
			printf("published %s\n", argv[2]);
		return done(r);
	}
	if (!strcmp(sub, "rotate") && argc == 4) {
		enum rf_tuf_role role;
		if (rf_tuf_role_from_name(argv[3], &role) < 0) {
			fprintf(stderr,
				"ringfence repo rotate: ROLE is root, timestamp, snapshot or "
				"targets\n");
			return 2;
		}
		r = rf_tuf_repo_rotate(argv[2], role, rf_now_wall(), &d);
		if (r == 0)
			printf("rotated the %s keys of %s\n", argv[3], argv[2]);
		return done(r);
	}
	if (!strcmp(sub, "refresh") && (argc == 3 || (argc == 5 && !strcmp(argv[3], "--within")))) {
		int64_t within = 12 * 3600;
		bool changed = false;
		if (argc == 5 && parse_duration(argv[4], &within) < 0) {
			fprintf(stderr, "ringfence repo refresh: bad --within '%s'\n", argv[4]);
			return 2;
		}
		r = rf_tuf_repo_refresh(argv[2], rf_now_wall(), within, &changed, &d);
		if (r == 0)
			printf("%s\n", changed ? "re-signed" : "nothing expires within the window");
		return done(r);
	}
	fprintf(stderr, "ringfence repo: unknown subcommand or wrong arguments '%s'\n", sub);
	usage(stderr);
	return 2;
}
