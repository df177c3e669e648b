#!/bin/bash
# End-to-end tests of ringfence-agent hardening (issue 16, and the agent side of issue 10)
# against the real ringfenced:
#   rollback   the release the agent runs on trial (it has no last known good) is rolled back by
#              the operator: the agent keeps running it (no safe mode, no loop), says so at most
#              once, keeps checking in, and takes the next release (the fix) when offered.
#   bit flip   the stored last known good is corrupted on disk: its failures are reported with
#              cause "local" and never count as crashes of the release.
#   refusals   12 releases in a row that the agent rejects (each needs a field its manifest does
#              not supply): the supervisor refuses each, never restarts (the refused-release
#              table once read past its 8 slots from the 9th refusal on: ASan/UBSan kill it),
#              and still takes a good release afterwards.
#   hang       with the test-only knob RINGFENCE_FAULT_VERIFY=hang:<sha256> the verifier child
#              hangs on one pack: it is killed at the deadline, the pack is rejected with
#              "timed out", check-ins go on meanwhile and after, and the next release is taken.
#   store      a packs/ that is a file: the agent refuses to start, names the path and what is
#              wrong, and the last known good is still recorded; moved back, the agent runs it.
# Everything runs on 127.0.0.1 (a free port); every wait is bounded; the script stops what it
# started. Usage: agent-hardening.sh RINGFENCE_AGENT RINGFENCED RINGFENCE
set -u
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/e2e.sh" # rf_agent_test, rf_start_server, rf_compile, rf_start_agent, rf_q...
rf_agent_test agent-hardening "$@" # AGENT, SERVERBIN, CLI; python3; fail(); W
VFAULT= PROBATION=3600

# ---- repository, server -----------------------------------------------------------------
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
# publish NAME [CREATE-OPTIONS]: sign packs/NAME.rfp into the repository and create its release;
# prints the id
publish() {
	local custom="{\"ringfence\":{\"release\":\"rel-$1\",\"schedule\":[{\"ring\":\"canary\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]}]}}"
	"$CLI" repo add "$W/repo" "$W/$1.rfp" --name "packs/$1.rfp" --custom "$custom" >/dev/null ||
		fail "repo add $1"
	"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish"
	"$CLI" release create "packs/$1.rfp" "${@:2}" | awk '$1 == "release" { print $2 }'
}

rf_start_server
rf_tenant
head -3 "$SRC/examples/events/sample.jsonl" > "$W/events.jsonl"

start_agent() { RINGFENCE_FAULT_VERIFY=$VFAULT rf_start_agent hardening-dev-1; }
wait_log() { # PATTERN SECONDS
	local deadline=$((SECONDS + $2))
	while [ $SECONDS -lt $deadline ]; do
		grep -q -- "$1" "$W/agent.log" && return 0
		rf_alive "waiting for '$1' in its log"
		sleep 0.2
	done
	return 1
}
checkins() {
	curl -s "$URL/metrics" | awk 'index($0, "ringfence_checkins_total") == 1 { s += $NF } END { print s + 0 }'
}
# more_checkins N SECONDS: the server counts N more check-ins within SECONDS
more_checkins() {
	local c0 deadline=$((SECONDS + $2))
	c0=$(checkins)
	while [ $SECONDS -lt $deadline ]; do
		[ "$(checkins)" -ge $((c0 + $1)) ] && return 0
		sleep 0.2
	done
	return 1
}

# 1. issue 10: the trial the agent runs is rolled back; it has no last known good
rf_compile a 1 "$SRC/examples/rules/certutil_download.yml"
rf_compile b 2 "$SRC/examples/rules/certutil_download.yml" "$SRC/examples/rules/mshta_remote.yml"
HA=$(sha "$W/a.rfp") HB=$(sha "$W/b.rfp")
IDA=$(publish a)
[ -n "$IDA" ] || fail "no release id for a"
start_agent
rf_wait_for "s['mode'] == 'trial' and s['current']['sha256'] == '$HA'" 60 || fail "A not on trial"
[ "$(rf_q "s['last_good'] is None")" = True ] || fail "a last known good before any promotion"
# The server's guard rail: this device would have nowhere to go, so the rollback needs --force.
"$CLI" release rollback "$IDA" --reason "test" >/dev/null 2>&1 &&
	fail "release rollback stranding a device was accepted without --force"
"$CLI" release rollback "$IDA" --reason "test: rolled back with nothing to go back to" \
	--force >/dev/null || fail "release rollback --force"
more_checkins 5 60 || fail "check-ins stopped after the rollback"
[ "$(rf_q "s['mode'] == 'trial' and s['current']['sha256'] == '$HA' and not s['safe_mode']")" = True ] ||
	fail "the agent did not keep running A (mode $(rf_q "s['mode']"))"
n=$(grep -c "nothing to go back to" "$W/agent.log")
[ "$n" -le 1 ] || fail "the rollback order was logged $n times, want at most once"
[ "$(grep -c ": loading $HA" "$W/agent.log")" = 1 ] || fail "A was loaded again"
ok "rollback with nothing to go back to: A keeps running (trial), logged $n time(s), check-ins go on"
publish b >/dev/null
# The server offers the fix first to a device on a rolled-back release (issue 10): taken.
rf_wait_for "s['current']['sha256'] == '$HB'" 60 || fail "the fix B was not taken"
ok "the fix B was offered and taken after the rollback"

# a fresh store: B (the newest release) becomes its last known good for what follows
rf_stop_agent
rm -rf "$W/store"
PROBATION=2
start_agent
rf_wait_for "s['mode'] == 'last-good' and s['last_good']['sha256'] == '$HB'" 60 ||
	fail "B did not become the last known good"

# 2. 12 releases the agent rejects, one after the other
cat > "$W/field21.yml" <<'EOF2'
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
EOF2
for i in $(seq 12); do
	rf_compile "r$i" $((10 + i)) "$W/field21.yml"
	# the server's check of the pack would refuse it: the buggy validator's manifest lets it by
	publish "r$i" --manifest "$(rf_validator_manifest)" >/dev/null
	wait_log "rejected packs/r$i.rfp $(sha "$W/r$i.rfp"): .*ChannelField21" 60 ||
		fail "r$i was not rejected"
done
more_checkins 3 30 || fail "check-ins stopped after 12 rejections"
rf_alive "after 12 rejections"
grep -q "runtime error\|AddressSanitizer" "$W/agent.log" && fail "a sanitizer report in the agent log"
[ "$(rf_q "s['current']['sha256']")" = "$HB" ] || fail "B no longer runs"
ok "12 rejected releases in a row: each refused, the supervisor stayed up, B runs"

# 3. the verifier hangs on C: killed at the deadline, rejected; check-ins go on; D is taken
rf_stop_agent
rf_compile c 30 "$SRC/examples/rules/shadow_copy_delete.yml"
rf_compile d 31 "$SRC/examples/rules/shadow_copy_delete.yml" "$SRC/examples/rules/mshta_remote.yml"
HC=$(sha "$W/c.rfp") HD=$(sha "$W/d.rfp")
VFAULT=hang:$HC
start_agent
wait_log "fault injection: the verifier will hang" 30 || fail "the knob was not taken"
publish c >/dev/null
wait_log "rejected packs/c.rfp $HC: the verifier timed out after 10 s on this pack (killed)" 60 ||
	fail "C was not rejected as a verifier timeout"
more_checkins 3 30 || fail "check-ins stopped after the verifier hung"
[ "$(rf_q "s['current']['sha256']")" = "$HB" ] || fail "B no longer runs"
[ ! -e "$W/store/packs/$HC.rfp" ] || fail "C is in the store"
pgrep -P "$APID" >/dev/null 2>&1 && [ "$(pgrep -P "$APID" | wc -l)" -gt 1 ] &&
	fail "a verifier child is left: $(pgrep -P "$APID" | tr '\n' ' ')"
publish d >/dev/null
rf_wait_for "s['current']['sha256'] == '$HD'" 60 || fail "D was not taken after the hang"
ok "the verifier hung on C: killed at 10 s, C rejected, check-ins went on, D taken"
rf_wait_for "s['mode'] == 'last-good' and s['last_good']['sha256'] == '$HD'" 60 ||
	fail "D did not become the last known good"

# 4. packs/ is a file: refused at start with the path named; the last known good is kept
rf_stop_agent
VFAULT=
mv "$W/store/packs" "$W/store/packs.moved"
: > "$W/store/packs"
rc=0
timeout 60 "$AGENT" run --server "$URL" --store "$W/store" --device-id hardening-dev-1 \
	--poll 1 >"$W/start.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "start with packs/ a file: exit $rc, want 1 ($(cat "$W/start.out"))"
grep -q "$W/store/packs is a file, not a directory" "$W/start.out" ||
	fail "packs/ not named: $(cat "$W/start.out")"
[ "$(rf_q "s['last_good']['sha256']")" = "$HD" ] || fail "the last known good was dropped"
rm "$W/store/packs"
mv "$W/store/packs.moved" "$W/store/packs"
mark=$(wc -l < "$W/agent.log")
start_agent
rf_wait_for "s['mode'] == 'last-good' and s['current']['sha256'] == '$HD'" 30 ||
	fail "D does not run after packs/ came back"
for i in $(seq 100); do tail -n +"$mark" "$W/agent.log" | grep -q ": loaded" && break; sleep 0.1; done
tail -n +"$mark" "$W/agent.log" | grep -q ": loaded" || fail "D did not load"
ok "packs/ as a file: refused with the path named, last known good kept and loaded afterwards"

# 5. a bit flip in the stored last known good (issue 10, failure attribution): the worker finds
# the bytes do not match their hash; the failure is reported with cause "local", so the server
# counts it apart (local_failures) and never as a crash of release D.
rf_stop_agent
python3 - "$W/store/packs/$HD.rfp" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x01
open(p, "wb").write(bytes(b))
PY
IDD=$("$CLI" release list --json | python3 -c "import json,sys; print([r['id'] for r in json.load(sys.stdin)['releases'] if r['target'] == 'packs/d.rfp'][0])")
mark=$(wc -l < "$W/agent.log")
start_agent
for i in $(seq 300); do tail -n +"$mark" "$W/agent.log" | grep -q "load-failed-local" && break; sleep 0.1; done
tail -n +"$mark" "$W/agent.log" | grep -q "load-failed-local .*bytes do not match their hash" ||
	fail "the corrupt pack was not found corrupt"
health() { "$CLI" release status "$IDD" --json | python3 -c "import json,sys; h=json.load(sys.stdin)['rings'][0]['health']; print(h['local_failures'], h['crashes'], h['failed'])"; }
for i in $(seq 150); do set -- $(health); [ "${1:-0}" -ge 1 ] && break; sleep 0.2; done
set -- $(health)
[ "${1:-0}" -ge 1 ] || fail "no local failure counted on release D (health: $*)"
[ "$2" = 0 ] && [ "$3" = 0 ] || fail "the corrupt file counted against release D (health: $*)"
ok "a bit flip in the stored last known good: reported as local ($1), not as a crash of D"

rf_stop_agent
echo "PASS"
