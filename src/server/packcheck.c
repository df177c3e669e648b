/*
 * Release create's check of the target's bytes (docs/server.md, "What release create checks"):
 * a release is created only for bytes an agent would load. The server reads the target's file
 * from the repository it serves (DIR/repository/targets/, the file the agents download), checks
 * its length and SHA-256 against the signed TUF target, and verifies it as a pack against agent
 * manifests with the agent's own verifier (rf_verifier_run: rf_pack_open + rf_pack_check in a
 * child process under the agent's limits, RF_AGENT_VERIFY_*), so that no pack can hang, crash or
 * exhaust the server, which is the update channel (P5). The manifests are the ones the operator
 * names (every one must accept the pack: "the manifests of my fleet"), or by default the ones
 * this build's agent embeds (src/agent/manifests.c), of which at least one must accept it: an
 * agent picks one by its event source, and the server does not know which sources the fleet
 * runs. Runs without the server's lock (check-ins go on); reads only s->repo_fd, which never
 * changes after start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/manifests.h"
#include "agent/verifier.h"
#include "common/util.h"
#include "ringfence/content.h"
#include "server/server-internal.h"

/* The target's bytes, exactly len of them and hashing to sha. 0 and *ret (malloc'd), or -1 with
 * the reply written. */
static int read_target(struct rf_server *s, const char *target, uint64_t len, const uint8_t sha[32],
		       uint8_t **ret, struct rf_server_reply *r)
{
	char rel[RF_SRV_ID_MAX + 96], hex[65];
	const char *slash = strrchr(target, '/');
	int dl = slash ? (int)(slash - target + 1) : 0;
	struct rf_server_reply f = {0};
	uint8_t got[32], *p;
	size_t n = 0;

	if (len > RF_PACK_MAX)
		return rf__srv_err(
		    r, 400, "invalid_field", "target",
		    "target '%s' is %llu bytes, over the largest pack an agent loads "
		    "(%u bytes): not a pack",
		    target, (unsigned long long)len, RF_PACK_MAX);
	rf_hex_encode(sha, 32, hex);
	/* The layout rf_tuf_repo_add writes and the agents fetch: targets/DIR/SHA256.NAME */
	snprintf(rel, sizeof(rel), "targets/%.*s%s.%s", dl, target, hex, target + dl);
	f.fd = -1;
	if (rf__srv_repo_file(s, rel, &f) < 0 || f.fd < 0) {
		rf_server_reply_free(&f);
		return rf__srv_err(r, 409, "conflict", "target",
				   "target '%s' is signed but its file (repository/%s) is missing "
				   "from the repository: agents could not download it",
				   target, rel);
	}
	p = malloc(len ? (size_t)len : 1);
	if (!p) {
		rf_server_reply_free(&f);
		return rf__srv_err(r, 503, "unavailable", NULL, "out of memory");
	}
	while (n < len) {
		ssize_t k = read(f.fd, p + n, (size_t)len - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	char extra;
	bool longer = n == len && read(f.fd, &extra, 1) == 1;
	rf_server_reply_free(&f);
	if (n != len || longer) {
		free(p);
		return rf__srv_err(r, 409, "conflict", "target",
				   "target '%s': the repository's file is %s than the %llu bytes "
				   "signed: agents would refuse it (hash mismatch)",
				   target, longer ? "longer" : "shorter", (unsigned long long)len);
	}
	rf_sha256(p, n, got);
	if (memcmp(got, sha, 32) != 0) {
		free(p);
		return rf__srv_err(r, 409, "conflict", "target",
				   "target '%s': the repository's file does not hash to the signed "
				   "sha256 %.16s...: agents would refuse it",
				   target, hex);
	}
	*ret = p;
	return 0;
}

/* One verdict: the manifest's name and, when it refused the pack, why. */
struct verdict {
	char name[RF_SRV_ID_MAX + 1];
	bool accepted;
	char why[RF_DIAG_MSG_MAX];
};

static json_t *verdicts_json(const struct verdict *v, size_t n, bool given)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o =
		    json_pack("{s:s,s:b}", "manifest", v[i].name, "accepted", v[i].accepted);
		if (o && !v[i].accepted)
			json_object_set_new(o, "reason", json_string(v[i].why));
		json_array_append_new(a, o);
	}
	return json_pack("{s:s,s:o}", "manifests_from", given ? "request" : "agent", "manifests",
			 a);
}

/* The refusal: which manifests refused and why (each distinct reason once; the verifier's
 * reasons name their manifest, and the message is cut at RF_DIAG_MSG_MAX). */
static int refuse(const char *target, const struct verdict *v, size_t n, bool given,
		  struct rf_server_reply *r)
{
	char names[RF_DIAG_MSG_MAX] = "", why[RF_DIAG_MSG_MAX] = "";
	size_t o = 0, w = 0;

	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		if (v[i].accepted)
			continue;
		if (o < sizeof(names))
			o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", o ? ", " : "",
					      v[i].name);
		for (size_t k = 0; k < i; k++)
			seen |= !v[k].accepted && !strcmp(v[k].why, v[i].why);
		if (!seen && w < sizeof(why))
			w += (size_t)snprintf(why + w, sizeof(why) - w, "%s%s", w ? "; " : "",
					      v[i].why);
	}
	if (given)
		return rf__srv_err(
		    r, 400, "invalid_field", "target",
		    "target '%s' is not a pack the manifests given accept (refused by "
		    "%s; nothing stored): %s",
		    target, names, why);
	return rf__srv_err(r, 400, "invalid_field", "target",
			   "target '%s' is not a pack any agent accepts (refused by every agent "
			   "manifest: %s; nothing stored. Compile it with 'ringfence content "
			   "compile', check it with 'ringfence content verify'): %s",
			   target, names, why);
}

int rf__srv_pack_check(struct rf_server *s, const char *target, uint64_t len, const uint8_t sha[32],
		       json_t *manifests, struct rf_server_reply *r, json_t **ret)
{
	struct rf_verifier_limits lim;
	struct verdict *v = NULL;
	size_t nv = 0, cap, accepted = 0;
	uint8_t *p = NULL;
	bool given = manifests && !json_is_null(manifests);
	int e = -1;

	if (given && (!json_is_array(manifests) || json_array_size(manifests) == 0 ||
		      json_array_size(manifests) > RF_SRV_RELEASE_MANIFESTS_MAX))
		return rf__srv_err(r, 400, "invalid_field", "manifests",
				   "'manifests' must be an array of 1 to %d agent manifests (JSON "
				   "objects, manifests/*.json)",
				   RF_SRV_RELEASE_MANIFESTS_MAX);
	if (read_target(s, target, len, sha, &p, r) < 0)
		return -1;
	cap = given ? json_array_size(manifests) : 16;
	v = calloc(cap, sizeof(*v));
	if (!v) {
		e = rf__srv_err(r, 503, "unavailable", NULL, "out of memory");
		goto out;
	}
	rf_verifier_limits_default(&lim);
	for (size_t i = 0; i < cap; i++) {
		const struct rf_agent_manifest *am = NULL;
		const uint8_t *mb;
		char *text = NULL;
		size_t ml;

		if (given) {
			struct rf_manifest *m = NULL;
			struct rf_diag d = {0};
			text = json_dumps(json_array_get(manifests, i), JSON_COMPACT);
			if (!text ||
			    rf_manifest_parse((const uint8_t *)text, strlen(text), &m, &d) < 0) {
				free(text);
				e = rf__srv_err(r, 400, "invalid_field", "manifests",
						"manifests[%zu] is not an agent manifest: %s", i,
						d.count ? d.first : "not JSON text");
				goto out;
			}
			snprintf(v[nv].name, sizeof(v[nv].name), "%s-%s", rf_manifest_agent(m),
				 rf_manifest_version(m));
			rf_manifest_free(m);
			mb = (const uint8_t *)text;
			ml = strlen(text);
		} else {
			if (!(am = rf_agent_manifest_at(i)))
				break;
			if (nv && !strcmp(v[nv - 1].name, am->name))
				continue; /* one manifest, the default of several sources */
			snprintf(v[nv].name, sizeof(v[nv].name), "%s", am->name);
			mb = am->bytes(&ml);
		}
		int vr =
		    rf_verifier_run(p, (size_t)len, mb, ml, &lim, v[nv].why, sizeof(v[nv].why));
		free(text);
		if (vr < 0 && vr != -ENOEXEC) {
			e = rf__srv_err(r, 503, "unavailable", NULL,
					"cannot start the pack verifier: %s", rf_strerror(vr));
			goto out;
		}
		v[nv].accepted = vr == 0;
		accepted += vr == 0;
		nv++;
	}
	if (given ? accepted < nv : accepted == 0) {
		e = refuse(target, v, nv, given, r);
		goto out;
	}
	*ret = verdicts_json(v, nv, given);
	e = *ret ? 0 : rf__srv_err(r, 503, "unavailable", NULL, "out of memory");
out:
	free(v);
	free(p);
	return e;
}
