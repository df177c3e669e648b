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
AGENT=$1 SERVERBIN=$2 CLI=$3
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read JSON"; exit 77; }
fail() {
	echo "FAIL: $*"
	echo "---- agent log (tail)"; tail -40 "$W/agent.log" 2>/dev/null
	echo "---- status"; "$AGENT" status --store "$W/store" 2>&1
	exit 1
}
. "$SRC/tests/lib/e2e.sh" # rf_e2e_init, rf_start_server, rf_publish, sha, ok
rf_e2e_init agent-transit

"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
compile() { # NAME SEQ RULE-FILES...
	local name=$1 seq=$2
	shift 2
	mkdir -p "$W/rules-$name"
	cp "$@" "$W/rules-$name/"
	"$CLI" content compile "$W/rules-$name" -o "$W/$name.rfp" --seq "$seq" >/dev/null 2>&1 ||
		fail "compile $name"
}
rf_start_server
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create"
head -3 "$SRC/examples/events/sample.jsonl" > "$W/events.jsonl"

compile a 1 "$SRC/examples/rules/certutil_download.yml"
compile other 2 "$SRC/examples/rules/mshta_remote.yml"
HA=$(sha "$W/a.rfp")
CUSTOM="{\"ringfence\":{\"release\":\"rel-a\",\"schedule\":[$RF_CANARY_ALL]}}"
rf_publish packs/a.rfp "$W/a.rfp" rel-a
# the repository now signs other bytes under the live release's name
"$CLI" repo add "$W/repo" "$W/other.rfp" --name packs/a.rfp --replace --custom "$CUSTOM" >/dev/null ||
	fail "repo add other"
"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish other"

"$AGENT" run --server "$URL" --store "$W/store" --ring canary --enroll-token "$TOKEN" \
	--device-id transit-dev-1 --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
	--probation 3600 --probation-events 0 --events "$W/events.jsonl" >>"$W/agent.log" 2>&1 &
APID=$!
APIDS+=("$APID")
alive() { kill -0 "$APID" 2>/dev/null || fail "the agent died: $1"; }
q() { "$AGENT" status --store "$W/store" --json 2>/dev/null |
	python3 -c "import json,sys; s=json.load(sys.stdin); print($1)" 2>/dev/null; }
wait_for() { # COND-EXPR SECONDS
	local deadline=$((SECONDS + $2))
	while [ $SECONDS -lt $deadline ]; do
		alive "waiting for $1"
		[ "$(q "$1")" = True ] && return 0
		sleep 0.2
	done
	return 1
}

# two attempts fail (the second after its backoff), counted both times, reported once
wait_for "s['transit_failures'] >= 2" 60 || fail "no second delivery attempt"
grep -q "rejected packs/a.rfp $HA: the server's hash is not the signed one" "$W/agent.log" ||
	fail "the transit failure was not logged"
n=$(grep -c "warning: rejected packs/a.rfp" "$W/agent.log")
[ "$n" = 1 ] || fail "the same transit failure was reported $n times, want once"
[ "$(q "s['mode']")" = empty ] || fail "the agent runs something: $(q "s['mode']")"
ok "transit failure: retried with backoff, counted ($(q "s['transit_failures']")), reported once"
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
wait_for "s['current'] is not None and s['current']['sha256'] == '$HA'" 120 ||
	fail "the repaired release was not taken (mode $(q "s['mode']"))"
ok "repository repaired: release taken by the same agent process"
echo "PASS"
