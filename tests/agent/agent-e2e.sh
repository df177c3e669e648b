#!/bin/bash
# End-to-end tests of ringfence-agent against the real ringfenced (issue 4 "Proof"):
#   boot loop  a pack that kills the whole agent right after it loads (the fault-injection knob,
#              the stand-in for content that crashes the host) is loaded exactly 3 times, then
#              quarantined; the agent is back on its last known good; the server received the
#              intent, crashed, quarantined and rolled_back reports.
#   safe mode  the last known good crashing too -> safe mode, still checking in; a fixed pack
#              then arrives and is taken (and becomes the last known good).
#   rejection  a pack that needs a field this agent does not supply is rejected, never loaded,
#              and reported.
#   worker     a pack that kills only the evaluation worker: the supervisor survives, counts
#              each death, quarantines the pack after 3 and runs the last known good again.
#   kill -9    the real agent is killed at random instants while a new release arrives, is
#              tried and promoted; after every kill the store's invariants hold (status reads
#              it, every pack it names is present with its hash, the last known good is not
#              quarantined) and the agent comes back up on loadable content.
# A shell loop plays systemd (Restart=always): it restarts the agent whenever it dies.
# Everything runs on 127.0.0.1 (a free port); every wait is bounded; the script stops what it
# started. Usage: agent-e2e.sh RINGFENCE_AGENT RINGFENCED RINGFENCE
set -u
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/e2e.sh" # rf_agent_test, rf_start_server, rf_compile, rf_start_agent, rf_q...
rf_agent_test agent-e2e "$@" # AGENT, SERVERBIN, CLI; python3; fail(); W
FAULT= WFAULT= RESTARTS=0

# ---- repository, packs, server ---------------------------------------------------------
mkdir -p "$W/rules-b" "$W/rules-c" "$W/rules-r"
cp "$SRC/examples/rules/certutil_download.yml" "$W/rules-b/"
cp "$SRC/examples/rules/mshta_remote.yml" "$W/rules-c/"
cat > "$W/rules-r/needs-field-21.yml" <<'EOF'
title: Needs A Field This Agent Does Not Supply
id: 3f0c2a51-5d1e-4c7e-9a55-000000000021
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    ChannelField21|contains: 'anything'
  condition: selection
level: high
EOF
# A also carries a Sigma correlation rule over the certutil rule (docs/sigma.md "Correlation
# rules"): the worker must report it like an ordinary alert.
mkdir -p "$W/rules-a-corr"
cat > "$W/rules-a-corr/mr_certutil.yml" <<'EOF'
title: Certutil Download Seen
id: e2e-certutil-burst
correlation:
  type: event_count
  rules:
    - 0f2259b6-7d86-4054-84ad-26efabae54bd
  group-by:
    - Image
  timespan: 5m
  condition:
    gte: 1
  generate: true
level: high
EOF
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$SRC/examples/rules" "$W/rules-a-corr" -o "$W/a.rfp" --seq 1 >/dev/null 2>&1
[ -s "$W/a.rfp" ] || fail "compile a"
"$CLI" content compile "$W/rules-b" -o "$W/b.rfp" --seq 2 >/dev/null 2>&1 || fail "compile b"
"$CLI" content compile "$W/rules-c" -o "$W/c.rfp" --seq 3 >/dev/null 2>&1 || fail "compile c"
"$CLI" content compile "$W/rules-r" -o "$W/r.rfp" --seq 4 >/dev/null 2>&1 || fail "compile r (no manifest: the publisher's check is skipped on purpose)"
HA=$(sha "$W/a.rfp") HB=$(sha "$W/b.rfp") HC=$(sha "$W/c.rfp") HR=$(sha "$W/r.rfp")

publish() { rf_publish "$@"; } # NAME FILE RELEASE-ID

rf_start_server
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create"
publish packs/a.rfp "$W/a.rfp" rel-a
head -3 "$SRC/examples/events/sample.jsonl" > "$W/events.jsonl"

# ---- the agent, supervised --------------------------------------------------------------
start_agent() {
	RINGFENCE_FAULT_CRASH_ON_LOAD=$FAULT RINGFENCE_FAULT_WORKER_CRASH_ON_LOAD=$WFAULT "$AGENT" run --server "$URL" --store "$W/store" \
		--ring canary --enroll-token "$TOKEN" --device-id e2e-dev-1 \
		--tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 --probation 2 \
		--probation-events 0 --events "$W/events.jsonl" --alerts "$W/alerts.jsonl" \
		>>"$W/agent.log" 2>&1 &
	APID=$!
}
status_json() { "$AGENT" status --store "$W/store" --json 2>/dev/null; }
# q EXPR: evaluate a Python expression over the status JSON (s) -> prints the value
q() { status_json | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)" 2>/dev/null; }
# supervise COND-EXPR SECONDS: restart the agent when it dies until q(COND) prints True
supervise() {
	local deadline=$((SECONDS + $2))
	while [ $SECONDS -lt $deadline ]; do
		if ! kill -0 "$APID" 2>/dev/null; then
			{ wait "$APID"; } 2>/dev/null
			RESTARTS=$((RESTARTS + 1))
			sleep 0.2
			start_agent
		fi
		[ "$(q "$1")" = True ] && return 0
		sleep 0.1
	done
	return 1
}
metric() { # the value of a /metrics sample line that starts with $1
	curl -s "$URL/metrics" | awk -v k="$1" 'index($0, k) == 1 { s += $NF } END { print s + 0 }'
}
count_loads() { grep -c "load trial $1" "$W/agent.log"; }

# 1. install -> trial -> good: A becomes the last known good
FAULT=$HB
start_agent
supervise "s['mode'] == 'last-good' and s['last_good']['sha256'] == '$HA'" 60 ||
	fail "A did not become the last known good"
[ "$RESTARTS" = 0 ] || fail "the agent died $RESTARTS times on a good pack"
grep -q '"rule":"0f2259b6' "$W/alerts.jsonl" || fail "no alert from the events file"
grep -q '"correlation":"e2e-certutil-burst".*"group":{"Image":"C:.*certutil.exe"}' \
	"$W/alerts.jsonl" || fail "no correlation alert from the events file"
ok "A installed, survived probation, is the last known good; alerts (and a correlation's) raised"

# 2. boot loop: B kills the agent at every load
publish packs/b.rfp "$W/b.rfp" rel-b
supervise "'$HB' in [e['sha256'] for e in s['quarantine']] and s['mode'] == 'last-good' and s['current']['sha256'] == '$HA'" 90 ||
	fail "B was not quarantined with A back"
[ "$(count_loads "$HB")" = 3 ] || fail "B loaded $(count_loads "$HB") times, want exactly 3"
[ "$RESTARTS" = 3 ] || fail "agent died $RESTARTS times, want 3"
# P7: the server heard "intent" before the pack that killed the agent was loaded
li=$(grep -n "delivered: intent packs/b.rfp" "$W/agent.log" | head -1 | cut -d: -f1)
ll=$(grep -n ": loading $HB" "$W/agent.log" | head -1 | cut -d: -f1)
[ -n "$li" ] && [ -n "$ll" ] && [ "$li" -lt "$ll" ] || fail "intent not delivered before the first load of B"
[ "$(q "s['quarantine'][0]['reason']")" = crash-loop ] || fail "quarantine reason"
for i in $(seq 100); do [ "$(q "s['reports_pending']")" = 0 ] && break; sleep 0.1; done
for ev in intent crashed quarantined rolled_back; do
	[ "$(metric "ringfence_reports_total{event=\"$ev\"")" -ge 1 ] || fail "server has no '$ev' report"
done
ok "B loaded exactly 3 times, quarantined (crash-loop), back on A; server got intent/crashed/quarantined/rolled_back"

# 3. safe mode: the last known good crashes too; the agent keeps checking in; a fix arrives
rf_stop_agent
RESTARTS=0
FAULT=$HA
start_agent
supervise "s['safe_mode']" 90 || fail "no safe mode after A crashed too"
[ "$(count_loads "$HA")" -ge 1 ] || true
c0=$(metric ringfence_checkins_total)
sleep 3
c1=$(metric ringfence_checkins_total)
[ "$c1" -gt "$c0" ] || fail "no check-ins in safe mode ($c0 -> $c1)"
kill -0 "$APID" 2>/dev/null || fail "the agent died in safe mode"
ok "A crash-looped too: safe mode, still checking in ($c0 -> $c1 check-ins)"
publish packs/c.rfp "$W/c.rfp" rel-c
supervise "s['mode'] == 'last-good' and s['last_good'] is not None and s['last_good']['sha256'] == '$HC'" 60 ||
	fail "the fix C was not taken out of safe mode"
ok "the fix C arrived in safe mode, was taken and is the last known good"

# 4. rejection: R needs ChannelField21, which this agent's manifest does not supply (the
# release is created with the buggy validator's manifest: the server's own check would refuse R)
RF_CREATE_OPTS="--manifest $(rf_validator_manifest)" publish packs/r.rfp "$W/r.rfp" rel-r
for i in $(seq 150); do grep -q "rejected packs/r.rfp" "$W/agent.log" && break; sleep 0.1; done
grep -q "rejected packs/r.rfp $HR: .*ChannelField21" "$W/agent.log" || fail "R not rejected with the field named"
[ "$(count_loads "$HR")" = 0 ] || fail "R was loaded"
[ ! -e "$W/store/packs/$HR.rfp" ] || fail "R is in the store"
[ "$(q "s['current']['sha256']")" = "$HC" ] || fail "current changed after the rejection"
for i in $(seq 100); do [ "$(metric 'ringfence_reports_total{event="rejected"')" -ge 1 ] && break; sleep 0.1; done
[ "$(metric 'ringfence_reports_total{event="rejected"')" -ge 1 ] || fail "server has no 'rejected' report"
ok "R rejected (field named), never loaded, reported; C still runs"

# 5. kill -9 at random instants while release D arrives, is tried and promoted
cat > "$W/check.py" <<'EOF2'
import hashlib, json, os, sys
store = sys.argv[1]
s = json.load(sys.stdin)
q = {e['sha256'] for e in s['quarantine']}
def pack_ok(ref):
    p = os.path.join(store, 'packs', ref['sha256'] + '.rfp')
    return os.path.exists(p) and hashlib.sha256(open(p, 'rb').read()).hexdigest() == ref['sha256']
bad = []
if s['last_good'] is not None:
    if not pack_ok(s['last_good']): bad.append('last good missing or corrupt')
    if s['last_good']['sha256'] in q: bad.append('last good is quarantined')
if s['trial'] is not None:
    if not pack_ok(s['trial']): bad.append('trial missing or corrupt')
    if s['trial']['sha256'] in q: bad.append('trial is quarantined')
    if s['trial_attempts'] > 3: bad.append('trial attempts over the limit')
if s['safe_mode'] and s['last_good'] is not None: bad.append('safe mode with a last good')
print('; '.join(bad) if bad else 'ok')
EOF2
rf_stop_agent
cp "$SRC/examples/rules/shadow_copy_delete.yml" "$W/rules-c/"
"$CLI" content compile "$W/rules-c" -o "$W/d.rfp" --seq 5 >/dev/null 2>&1 || fail "compile d"
HD=$(sha "$W/d.rfp")
publish packs/d.rfp "$W/d.rfp" rel-d
FAULT=
kills=0
for i in $(seq 20); do
	start_agent
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", r / 32768 * 2.5 }')"
	kill -KILL "$APID" 2>/dev/null && kills=$((kills + 1))
	{ wait "$APID"; } 2>/dev/null
	APID=
	sleep 0.1 # PR_SET_PDEATHSIG: the worker follows its supervisor
	v=$(status_json | python3 "$W/check.py" "$W/store")
	[ "$v" = ok ] || fail "after kill -9 number $i: ${v:-status unreadable}"
done
# Kills that fast look like a crash loop to the guard (it cannot tell kill -9 from a crash):
# the trial may be quarantined and the last known good given up. Whatever it decided, the
# agent must come back up consistent: running what its store says, or in safe mode and still
# checking in; and a new release must bring it back to content without a person.
mark=$(wc -l < "$W/agent.log")
start_agent
RESTARTS=0
supervise "s['mode'] in ('last-good', 'safe')" 60 || fail "no stable mode after the kills"
mode=$(q "s['mode']")
if [ "$mode" = last-good ]; then
	for i in $(seq 100); do tail -n +"$mark" "$W/agent.log" | grep -q ": loaded" && break; sleep 0.1; done
	tail -n +"$mark" "$W/agent.log" | grep -q ": loaded" || fail "the last known good did not load after the kills"
fi
ok "$kills random kill -9 of the real agent: invariants held after each; came back in mode $mode"
cp "$SRC/examples/rules/webserver_discovery.yml" "$W/rules-c/"
"$CLI" content compile "$W/rules-c" -o "$W/e.rfp" --seq 6 >/dev/null 2>&1 || fail "compile e"
HE=$(sha "$W/e.rfp")
publish packs/e.rfp "$W/e.rfp" rel-e
supervise "s['mode'] == 'last-good' and s['last_good']['sha256'] == '$HE'" 60 ||
	fail "the next release did not bring the agent back to content"
ok "the next release E was taken and is the last known good"

# 6. a pack that kills only the worker: the supervisor stays up and heals by itself
rf_stop_agent
cp "$SRC/examples/rules/schtasks_from_temp.yml" "$W/rules-c/"
"$CLI" content compile "$W/rules-c" -o "$W/f.rfp" --seq 7 >/dev/null 2>&1 || fail "compile f"
HF=$(sha "$W/f.rfp")
WFAULT=$HF
RESTARTS=0
start_agent
publish packs/f.rfp "$W/f.rfp" rel-f
supervise "'$HF' in [e['sha256'] for e in s['quarantine']] and s['mode'] == 'last-good' and s['current']['sha256'] == '$HE'" 60 ||
	fail "F (kills the worker) was not quarantined with E back"
[ "$RESTARTS" = 0 ] || fail "the supervisor died ($RESTARTS restarts) on a worker crash"
[ "$(count_loads "$HF")" = 3 ] || fail "F loaded $(count_loads "$HF") times, want exactly 3"
ok "F killed the worker 3 times: quarantined by the supervisor, which never died; E runs again"

rf_stop_agent
"$AGENT" status --store "$W/store"
echo "PASS"
