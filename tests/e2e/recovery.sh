#!/bin/bash
# Recovering from a bad release, as docs/operators.md ("Recovering from a bad release") tells an
# operator, with the exact commands, against a real ringfenced and 5 real agents (issue 10):
#   1. release 1 is the only release the fleet has; every agent runs it as its last known good.
#   2. `release halt 1` is refused: 5 devices would have nowhere to go (exit 1, the count).
#   3. `release rollback 1 --force` (the reported defect: it used to leave every device told
#      `rollback` forever, and never offered a later release): devices stay, keep checking in,
#      and status counts them as waiting for a fix.
#   4. the fix, release 2, is published: every device takes it.
#   5. release 3 arrives and is halted without --force (release 2 admits everyone): every
#      device goes back to 2.
# Everything runs on 127.0.0.1 (a free port); every wait is bounded; the script stops what it
# started. Usage: recovery.sh RINGFENCE RINGFENCE_AGENT RINGFENCED
set -u
CLI=$1 AGENT=$2 SERVERBIN=$3
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read JSON"; exit 77; }
N=5
. "$SRC/tests/lib/e2e.sh"
rf_e2e_init recovery
fail() {
	echo "FAIL: $*"
	echo "---- server log (tail)"; tail -20 "$W/server.log" 2>/dev/null
	echo "---- agent 1 log (tail)"; tail -30 "$W/agent-1.log" 2>/dev/null
	exit 1
}

mkdir -p "$W/rules-b" "$W/rules-c"
cp "$SRC/examples/rules/certutil_download.yml" "$W/rules-b/"
cp "$SRC/examples/rules/mshta_remote.yml" "$W/rules-c/"
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$SRC/examples/rules" -o "$W/a.rfp" --seq 1 >/dev/null 2>&1 || fail "compile a"
"$CLI" content compile "$W/rules-b" -o "$W/b.rfp" --seq 2 >/dev/null 2>&1 || fail "compile b"
"$CLI" content compile "$W/rules-c" -o "$W/c.rfp" --seq 3 >/dev/null 2>&1 || fail "compile c"
HA=$(sha "$W/a.rfp") HB=$(sha "$W/b.rfp") HC=$(sha "$W/c.rfp")
publish() { rf_publish "$@"; } # NAME FILE RELEASE-ID: the commands of docs/operators.md, step 3a

rf_start_server
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create"
publish packs/a.rfp "$W/a.rfp" rel-a
head -3 "$SRC/examples/events/sample.jsonl" > "$W/events.jsonl"

for k in $(seq $N); do
	"$AGENT" run --server "$URL" --store "$W/store-$k" --ring canary --enroll-token "$TOKEN" \
		--device-id "rec-$k" --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
		--probation 2 --probation-events 0 --events "$W/events.jsonl" \
		--alerts "$W/alerts-$k.jsonl" >"$W/agent-$k.log" 2>&1 &
	APIDS+=($!)
done
# agents_on EXPR SECONDS: wait until EXPR (Python over the agent's status JSON s) holds on all
agents_on() {
	local deadline=$((SECONDS + $2)) k n
	while [ $SECONDS -lt $deadline ]; do
		n=0
		for k in $(seq $N); do
			kill -0 "${APIDS[$((k - 1))]}" 2>/dev/null || fail "agent $k died"
			"$AGENT" status --store "$W/store-$k" --json 2>/dev/null |
				python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if ($1) else 1)" 2>/dev/null &&
				n=$((n + 1))
		done
		[ "$n" = $N ] && return 0
		sleep 0.3
	done
	return 1
}
# rel_json ID EXPR: Python over the release's status JSON r
rel_json() {
	"$CLI" release status "$1" --json 2>/dev/null |
		python3 -c "import json,sys; r=json.load(sys.stdin); print($2)" 2>/dev/null
}
wait_rel() { # ID EXPR WANT SECONDS
	local deadline=$((SECONDS + $4))
	while [ $SECONDS -lt $deadline ]; do
		[ "$(rel_json "$1" "$2")" = "$3" ] && return 0
		sleep 0.3
	done
	return 1
}

# 1. Release 1 is everyone's only good content.
agents_on "s['last_good'] and s['last_good']['sha256'] == '$HA' and s['mode'] == 'last-good'" 90 ||
	fail "release 1 did not become every agent's last known good"
ok "release 1 is the last known good of all $N agents"

# 2. Halting it would strand them: refused, with the count, nothing changed.
out=$("$CLI" release halt 1 --reason "crashes on hosts with X" 2>&1)
rc=$?
[ $rc = 1 ] || fail "halt without --force exited $rc, want 1 ($out)"
echo "$out" | grep -q "$N devices run release 1 as their only good content" ||
	fail "halt refusal does not give the count: $out"
echo "$out" | grep -q -- "--force" || fail "halt refusal does not name --force: $out"
[ "$(rel_json 1 "r['status']")" = active ] || fail "a refused halt changed the release"
ok "halt refused: $(echo "$out" | head -1 | cut -c1-110)..."

# 3. Roll back the only release, forced: devices wait for a fix, still checking in.
out=$("$CLI" release rollback 1 --reason "crashes on hosts with X" --force --json 2>&1) ||
	fail "rollback --force: $out"
echo "$out" | python3 -c "import json,sys; r=json.load(sys.stdin); sys.exit(0 if r['stranded'] == $N else 1)" ||
	fail "rollback --force did not report $N stranded devices: $out"
wait_rel 1 "r['waiting_for_fix']" $N 30 || fail "status does not count $N devices waiting for a fix ($(rel_json 1 "r['waiting_for_fix']"))"
"$CLI" release status 1 | grep -q "waiting for a fix: $N devices" || fail "status text does not show the waiting devices"
curl -s "$URL/metrics" | grep -q "ringfence_release_waiting_for_fix{release=\"1\"} $N" ||
	fail "/metrics does not show the waiting devices"
agents_on "s['current'] and s['current']['sha256'] == '$HA'" 5 || fail "an agent left its only content"
ok "rollback --force: $N devices wait for a fix, running release 1 (status, text and /metrics agree)"

# 4. The fix: every device takes it.
publish packs/b.rfp "$W/b.rfp" rel-b
agents_on "s['last_good'] and s['last_good']['sha256'] == '$HB' and s['current']['sha256'] == '$HB'" 90 ||
	fail "the fix (release 2) did not reach every device"
wait_rel 1 "r['waiting_for_fix']" 0 30 || fail "devices still counted as waiting after the fix"
wait_rel 2 "r['rings'][0]['health']['devices']" $N 30 || fail "release 2 does not count $N devices"
ok "the fix reached all $N devices; nobody waits any more"

# 5. A release with somewhere to go back to halts without --force.
publish packs/c.rfp "$W/c.rfp" rel-c
agents_on "s['current'] and s['current']['sha256'] == '$HC'" 90 || fail "release 3 not taken"
out=$("$CLI" release halt 3 --reason "noise" --json 2>&1) || fail "halt 3 without --force: $out"
echo "$out" | python3 -c "import json,sys; r=json.load(sys.stdin); sys.exit(0 if r['stranded'] == 0 else 1)" ||
	fail "halt 3 reports stranded devices: $out"
agents_on "s['current'] and s['current']['sha256'] == '$HB'" 60 || fail "devices did not go back to release 2"
ok "halt of release 3 needed no --force; every device went back to release 2"
echo "recovery: all steps passed"
