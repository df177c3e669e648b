#!/bin/bash
# A delivery ("transit") failure is not a verdict on the pack (the 2026-12 review, P5), against
# the real ringfenced: other bytes are published under a live release's target name, so the
# agent finds the server's hash is not the signed one. It reports that once (cause transit),
# counts every attempt (`status`: transit_failures), retries with backoff without reporting
# again (`ringfence release status` shows the one transit rejection in its ring), and once the
# repository is repaired takes the release without a restart.
# Everything runs on 127.0.0.1 (a free port); every wait is bounded; the script stops what it
# started. Usage: agent-transit.sh RINGFENCE_AGENT RINGFENCED RINGFENCE
set -u
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/e2e.sh" # rf_agent_test, rf_start_server, rf_compile, rf_start_agent, rf_q...
rf_agent_test agent-transit "$@" # AGENT, SERVERBIN, CLI; python3; fail(); W

"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
rf_start_server
rf_tenant
head -3 "$SRC/examples/events/sample.jsonl" > "$W/events.jsonl"

rf_compile a 1 "$SRC/examples/rules/certutil_download.yml"
rf_compile other 2 "$SRC/examples/rules/mshta_remote.yml"
HA=$(sha "$W/a.rfp")
CUSTOM="{\"ringfence\":{\"release\":\"rel-a\",\"schedule\":[$RF_CANARY_ALL]}}"
rf_publish packs/a.rfp "$W/a.rfp" rel-a
# the repository now signs other bytes under the live release's name
"$CLI" repo add "$W/repo" "$W/other.rfp" --name packs/a.rfp --replace --custom "$CUSTOM" >/dev/null ||
	fail "repo add other"
"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish other"

rf_start_agent transit-dev-1

# two attempts fail (the second after its backoff), counted both times, reported once
rf_wait_for "s['transit_failures'] >= 2" 60 || fail "no second delivery attempt"
grep -q "rejected packs/a.rfp $HA: the server's hash is not the signed one" "$W/agent.log" ||
	fail "the transit failure was not logged"
n=$(grep -c "warning: rejected packs/a.rfp" "$W/agent.log")
[ "$n" = 1 ] || fail "the same transit failure was reported $n times, want once"
[ "$(rf_q "s['mode']")" = empty ] || fail "the agent runs something: $(rf_q "s['mode']")"
ok "transit failure: retried with backoff, counted ($(rf_q "s['transit_failures']")), reported once"
# the operator sees it in the release's status: one transit rejection, in the canary ring
for _ in $(seq 100); do
	"$CLI" release status 1 >"$W/status.out" 2>&1
	grep -q "transit rejections 1" "$W/status.out" && break
	sleep 0.1
done
grep -q "^  transit: 1 rejection report: the bytes failed delivery" "$W/status.out" &&
	grep -q "^  canary     transit rejections 1$" "$W/status.out" ||
	fail "release status does not show the transit rejection: $(cat "$W/status.out")"
ok "release status shows the transit rejection in canary"

# the repository is repaired: the agent takes the release without a restart
"$CLI" repo add "$W/repo" "$W/a.rfp" --name packs/a.rfp --replace --custom "$CUSTOM" >/dev/null ||
	fail "repo add a again"
"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish a again"
rf_wait_for "s['current'] is not None and s['current']['sha256'] == '$HA'" 120 ||
	fail "the repaired release was not taken (mode $(rf_q "s['mode']"))"
ok "repository repaired: release taken by the same agent process"
echo "PASS"
