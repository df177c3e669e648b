#!/bin/bash
# Crash consistency of the real ringfence-agent (issue 4 "Proof"): a fresh agent enrolls,
# takes a release through TUF, records its intent, runs it on trial and promotes it to last
# known good. A calibration run counts the durable store steps one agent process makes in
# this; then, for every step N, a fresh agent is killed (SIGKILL, RINGFENCE_FAULT_KILL_AT_STEP=N)
# just before its N-th step. After each kill the store reads and every pack it names is present
# with its hash and not quarantined; the agent restarted without the knob (a shell loop plays
# systemd) then converges: the release is the last known good and every report delivered.
# (Every step of the quarantine path is killed in tests/agent/test_store.c with the same guard
# and store code, and the real agent crash-loops into quarantine in agent-e2e.sh.)
# Usage: agent-crash.sh RINGFENCE_AGENT RINGFENCED RINGFENCE
set -u
AGENT=$1 SERVERBIN=$2 CLI=$3
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read JSON"; exit 77; }
W=$(mktemp -d /tmp/rf-agent-crash-XXXXXX)
SPID= APID=
cleanup() {
	[ -n "$APID" ] && kill -KILL "$APID" 2>/dev/null
	[ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null && { wait "$SPID"; } 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	echo "---- agent log (tail)"; tail -30 "$W/agent.log" 2>/dev/null
	"$AGENT" status --store "$W/store" 2>&1
	exit 1
}

"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$SRC/examples/rules" -o "$W/a.rfp" --seq 1 >/dev/null 2>&1
[ -s "$W/a.rfp" ] || fail "compile a"
HA=$(sha256sum "$W/a.rfp" | cut -d' ' -f1)
"$CLI" repo add "$W/repo" "$W/a.rfp" --name packs/a.rfp --custom \
	'{"ringfence":{"release":"rel-a","schedule":[{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":100}]}]}}' \
	>/dev/null || fail "repo add"
"$CLI" repo publish "$W/repo" >/dev/null || fail "publish"
"$SERVERBIN" --init --db "$W/db" --repo "$W/repo" --listen 127.0.0.1:0 --port-file "$W/port" \
	--poll-interval 1 --threads 2 >"$W/server.log" 2>&1 &
SPID=$!
for i in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
[ -s "$W/port" ] || fail "ringfenced did not start"
URL=http://127.0.0.1:$(cat "$W/port")
export RINGFENCE_SERVER=$URL RINGFENCE_ADMIN_TOKEN_FILE=$W/db.admin-token
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create"
"$CLI" release create packs/a.rfp >/dev/null || fail "release a"

cat > "$W/check.py" <<'EOF'
import hashlib, json, os, sys
store = sys.argv[1]
s = json.load(sys.stdin)
q = {e['sha256'] for e in s['quarantine']}
def pack_ok(ref):
    p = os.path.join(store, 'packs', ref['sha256'] + '.rfp')
    return os.path.exists(p) and hashlib.sha256(open(p, 'rb').read()).hexdigest() == ref['sha256']
bad = []
for k in ('last_good', 'trial'):
    if s[k] is not None:
        if not pack_ok(s[k]): bad.append(k + ' missing or corrupt')
        if s[k]['sha256'] in q: bad.append(k + ' is quarantined')
if s['trial'] is not None and s['trial_attempts'] > 3: bad.append('attempts over the limit')
print('; '.join(bad) if bad else 'ok')
EOF

start_agent() { # $1: the store step to die at ("" for none)
	RINGFENCE_FAULT_KILL_AT_STEP=$1 "$AGENT" run --server "$URL" --store "$W/store" --ring canary \
		--enroll-token "$TOKEN" --device-id crash-dev \
		--tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 --probation 1 \
		--probation-events 0 >>"$W/agent.log" 2>&1 &
	APID=$!
}
q() { "$AGENT" status --store "$W/store" --json 2>/dev/null |
	python3 -c "import json,sys; s=json.load(sys.stdin); print($1)" 2>/dev/null; }
DONE="s['mode'] == 'last-good' and s['last_good']['sha256'] == '$HA' and s['reports_pending'] == 0"
# Restart the agent whenever it dies (without the knob) until the end state; bounded in time.
converge() {
	local deadline=$((SECONDS + 60))
	while [ $SECONDS -lt $deadline ]; do
		if ! kill -0 "$APID" 2>/dev/null; then
			{ wait "$APID"; } 2>/dev/null
			sleep 0.1
			start_agent ""
		fi
		[ "$(q "$DONE")" = True ] && return 0
		sleep 0.1
	done
	return 1
}
stop_agent() {
	kill -TERM "$APID" 2>/dev/null
	for i in $(seq 100); do kill -0 "$APID" 2>/dev/null || break; sleep 0.1; done
	{ wait "$APID"; } 2>/dev/null
	APID=
}
check_store() {
	local v
	v=$("$AGENT" status --store "$W/store" --json 2>/dev/null | python3 "$W/check.py" "$W/store")
	[ "$v" = ok ] || fail "$1: ${v:-status unreadable}"
}

# Calibration: the store steps of one uninterrupted agent process in this scenario.
start_agent 1000000000
converge || fail "calibration run did not converge"
stop_agent
T=$(awk '/fault injection: [0-9]+ store steps/ { n = $5 } END { print n + 0 }' "$W/agent.log")
[ "$T" -gt 10 ] || fail "calibration counted $T store steps"
echo "walking the kill point over $T store steps"
killed=0
for n in $(seq "$T"); do
	rm -rf "$W/store"
	start_agent "$n"
	for i in $(seq 200); do kill -0 "$APID" 2>/dev/null || break; sleep 0.05; done
	if kill -0 "$APID" 2>/dev/null; then
		kill -KILL "$APID" 2>/dev/null # this run took fewer steps (timing): kill it now
	else
		killed=$((killed + 1))
	fi
	{ wait "$APID"; } 2>/dev/null
	sleep 0.05
	[ -e "$W/store/state.json" ] && check_store "after the kill at step $n"
	start_agent ""
	converge || fail "no recovery after the kill at step $n"
	stop_agent
	check_store "after recovering from step $n"
done
[ "$killed" -ge $((T * 3 / 4)) ] || fail "only $killed of $T kills landed on their step"
echo "ok: killed before each of $T store steps ($killed landed); the store was consistent after every kill and the agent recovered each time"
echo "PASS"
