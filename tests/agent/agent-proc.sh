#!/bin/bash
# The process-creation source against the real kernel (issue 13 "Proof"), as root:
#   fields     real commands are executed and their events checked field by field (Image,
#              CommandLine, CurrentDirectory, User, ProcessId, ParentProcessId, ParentImage,
#              ParentCommandLine, ParentUser, ProcessGuid/ParentProcessGuid, UtcTime); bytes
#              that are not UTF-8 and control characters still make valid JSON.
#   gone       processes that exit at once still yield events (ProcessId, ParentProcessId);
#              the missing fields are counted.
#   no root    without CAP_NET_ADMIN: a clear error naming the capability.
#   storm      10,000 short processes: our events seen + counted drops and losses >= processes
#              run, seen <= run, and equal when nothing was dropped; the source's memory stays
#              bounded.
#   burst      a reader that stalls and a small queue: the excess is dropped and counted.
#   e2e        an alert from a SigmaHQ-style rule written here arrives end to end through
#              `ringfence-agent run --events proc` with a real ringfenced; a storm through the
#              agent keeps its memory bounded and alerts still arrive after it.
#   manifest   manifests/ringfence-agent-linux-1.2.0.json lists exactly the supplied fields;
#              SigmaHQ's linux/process_creation rules compile against it (when ../shared has
#              them).
# Everything runs on 127.0.0.1; every wait is bounded; the script stops what it started.
# Usage: agent-proc.sh RINGFENCE_AGENT RINGFENCED RINGFENCE
set -u
AGENT=$1 SERVERBIN=$2 CLI=$3
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: the process connector needs root (CAP_NET_ADMIN); run make check as root"
	exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read JSON"; exit 77; }

W=$(mktemp -d /tmp/rf-agent-proc-XXXXXX)
cleanup() {
	rf_source_stop
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
. "$SRC/tests/lib/e2e.sh" # rf_start_server, rf_publish, sha, ok
. "$SRC/tests/lib/source.sh" # start_events, stop_events, ev, want, fail
MARK=rfproc$$x$RANDOM

SOURCE=proc
probe() { /bin/sh -c 'sleep 0.05' "$MARK-probe"; }

# ---- fields ------------------------------------------------------------------------------
mkdir -p "$W/cwd with space"
start_events "$W/ev.jsonl"
(cd "$W/cwd with space" && exec /bin/sh -c 'sleep 0.6' "$MARK-a" "two words") &
PA=$!
/bin/sh -c "/bin/sh -c 'sleep 0.6' $MARK-child; exit 0" "$MARK-sh" &
PS=$!
/bin/sh -c 'sleep 0.6; exit 0' "$MARK-bytes" $'\xff\xfe' $'tab\there' 'q"uote\back' &
PB=$!
wait $PA $PS $PB
# huge command lines of control characters (each escaped to 6 bytes): the outer one is cut at
# 32 KiB (counted), the inner one's event would pass the line limit with its parent's: it keeps
# what is sure (ProcessId, UtcTime) and counts the rest; every line stays valid JSON
BIG1=$(head -c 40000 /dev/zero | tr '\0' '\001')
BIG2=$(head -c 40000 /dev/zero | tr '\0' '\002')
/bin/sh -c '/bin/sh -c "sleep 0.6" "$0-big-inner" "$1"; exit 0' "$MARK" "$BIG2" "$BIG1" &
PBIG=$!
wait $PBIG
BAD=()
for i in $(seq 20); do /bin/true "$MARK-gone" & BAD+=($!); done
wait "${BAD[@]}"
sleep 1
stop_events "$W/ev.jsonl"
python3 -c "
import json,sys
for n,l in enumerate(open('$W/ev.jsonl', encoding='utf-8'),1):
    json.loads(l)
" || fail "an event line is not valid JSON"

SEL="e.get('ProcessId') == $PA"
want Image "$(ev "$W/ev.jsonl" "$SEL" Image)" "$(readlink -f /bin/sh)"
want CommandLine "$(ev "$W/ev.jsonl" "$SEL" CommandLine)" "/bin/sh -c sleep 0.6 $MARK-a two words"
want CurrentDirectory "$(ev "$W/ev.jsonl" "$SEL" CurrentDirectory)" "$W/cwd with space"
want User "$(ev "$W/ev.jsonl" "$SEL" User)" "$(id -un)"
want ParentProcessId "$(ev "$W/ev.jsonl" "$SEL" ParentProcessId)" "$$"
want ParentImage "$(ev "$W/ev.jsonl" "$SEL" ParentImage)" "$(readlink /proc/$$/exe)"
want ParentCommandLine "$(ev "$W/ev.jsonl" "$SEL" ParentCommandLine)" \
	"$(tr '\0' ' ' </proc/$$/cmdline | sed 's/ *$//')"
want ParentUser "$(ev "$W/ev.jsonl" "$SEL" ParentUser)" "$(id -un)"
want event "$(ev "$W/ev.jsonl" "$SEL" event)" process_creation
G=$(ev "$W/ev.jsonl" "$SEL" ProcessGuid)
[[ $G =~ ^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$ ]] || fail "ProcessGuid '$G'"
T=$(ev "$W/ev.jsonl" "$SEL" UtcTime)
[[ $T =~ ^$(date -u +%Y-)[0-9]{2}-[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}$ ]] || fail "UtcTime '$T'"
# the same parent, the same ParentProcessGuid; a child's parent GUID is its parent's own GUID
want ParentProcessGuid "$(ev "$W/ev.jsonl" "e.get('ProcessId') == $PS" ParentProcessGuid)" \
	"$(ev "$W/ev.jsonl" "$SEL" ParentProcessGuid)"
SG=$(ev "$W/ev.jsonl" "e.get('ProcessId') == $PS" ProcessGuid)
want "child's ParentProcessGuid" \
	"$(ev "$W/ev.jsonl" "e.get('CommandLine', '') == '/bin/sh -c sleep 0.6 $MARK-child'" ParentProcessGuid)" "$SG"
want "child's ParentImage" \
	"$(ev "$W/ev.jsonl" "e.get('CommandLine', '') == '/bin/sh -c sleep 0.6 $MARK-child'" ParentImage)" \
	"$(readlink -f /bin/sh)"
want "child's ParentCommandLine" \
	"$(ev "$W/ev.jsonl" "e.get('CommandLine', '') == '/bin/sh -c sleep 0.6 $MARK-child'" ParentCommandLine)" \
	"/bin/sh -c /bin/sh -c 'sleep 0.6' $MARK-child; exit 0 $MARK-sh"
want "bytes CommandLine" "$(ev "$W/ev.jsonl" "e.get('ProcessId') == $PB" CommandLine)" \
	"/bin/sh -c sleep 0.6; exit 0 $MARK-bytes "$'\xef\xbf\xbd\xef\xbf\xbd'" tab"$'\t'"here q\"uote\\back"
ok "fields: Image, CommandLine, CurrentDirectory, User, ProcessId, Parent*, GUIDs, UtcTime"
want "a 40,000-byte command line, cut" \
	"$(python3 -c "
import json
for l in open('$W/ev.jsonl', encoding='utf-8'):
    e = json.loads(l)
    if e['ProcessId'] == $PBIG: print(len(e.get('CommandLine', '')))")" 32768
[ "$(python3 -c "import json; print(json.load(open('$W/ev.jsonl.err'))['truncated'])")" -ge 1 ] ||
	fail "a cut command line was not counted"
python3 -c "
import json, sys
inner = [e for l in open('$W/ev.jsonl', encoding='utf-8') for e in [json.loads(l)]
         if e.get('ParentProcessId') == $PBIG]
sys.exit(0 if len(inner) == 1 and 'CommandLine' not in inner[0] and
         inner[0].get('Image') == sys.argv[1] else 1)" "$(readlink -f /bin/sh)" ||
	fail "the event over the line limit did not keep its other fields"
ok "huge command lines: cut at 32 KiB and counted; an event over the line limit keeps all but them"

# the Linux manifest lists exactly the fields the source supplies
python3 - "$W/ev.jsonl" "${RF_SOURCE_ROOT:-.}/manifests/ringfence-agent-linux-1.2.0.json" <<'EOF2' ||
import json, sys
seen = set()
for l in open(sys.argv[1], encoding="utf-8"):
    seen |= set(json.loads(l)) - {"event"}
m = json.load(open(sys.argv[2]))
listed = {f["name"] for e in m["events"] if e["name"] == "process_creation" for f in e["fields"]}
if seen != listed:
    print("supplied, not listed:", sorted(seen - listed), "listed, not supplied:", sorted(listed - seen))
    sys.exit(1)
EOF2
	fail "manifests/ringfence-agent-linux-1.2.0.json does not list exactly the supplied fields"
ok "the Linux manifest lists exactly the fields the source supplies"
LNX=${RF_SHARED_DIR:-../shared}/sigma/rules/linux/process_creation
if [ -d "$LNX" ]; then
	"$CLI" content compile "$LNX" -o "$W/lnx.rfp" \
		--manifest "${RF_SOURCE_ROOT:-.}/manifests/ringfence-agent-linux-1.2.0.json" >"$W/lnx.out" 2>&1
	grep -q "compiled 122 rules, rejected 0" "$W/lnx.out" ||
		fail "SigmaHQ linux/process_creation against the Linux manifest: $(tail -1 "$W/lnx.out")"
	ok "SigmaHQ linux/process_creation: 122 of 122 compile against the Linux manifest"
else
	echo "note: no SigmaHQ corpus at $LNX; the Linux rules' compile count is not checked"
fi

# gone: every /bin/true has an event with its pid and parent, whatever else was known
for p in "${BAD[@]}"; do
	want "ParentProcessId of $p" "$(ev "$W/ev.jsonl" "e.get('ProcessId') == $p" ParentProcessId)" "$$"
done
NOCMD=$(python3 -c "
import json
bad = set(int(x) for x in '${BAD[*]}'.split())
print(sum(1 for l in open('$W/ev.jsonl', encoding='utf-8')
          for e in [json.loads(l)] if e['ProcessId'] in bad and 'CommandLine' not in e))")
PARTIAL=$(python3 -c "import json; print(json.load(open('$W/ev.jsonl.err'))['partial'])")
[ "$PARTIAL" -ge "$NOCMD" ] || fail "partial $PARTIAL < $NOCMD events of ours without CommandLine"
ok "gone: 20 short processes all have events ($NOCMD without CommandLine, partial counted $PARTIAL)"

# ---- no root ------------------------------------------------------------------------------
if setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all true 2>/dev/null; then
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		"$CLI" events --source proc --count 1 2>&1)
	rc=$?
	[ $rc = 1 ] || fail "unprivileged ringfence events: exit $rc, want 1 ($out)"
	echo "$out" | grep -q CAP_NET_ADMIN || fail "unprivileged: the error does not name CAP_NET_ADMIN: $out"
	ok "without CAP_NET_ADMIN: '$out'"
else
	echo "note: setpriv cannot drop privileges here; the unprivileged error is not checked"
fi

# ---- storm ------------------------------------------------------------------------------------
N=10000
start_events "$W/storm.jsonl"
rss() { awk '/^VmRSS/ { print $2 }' /proc/$EPID/status; }
R0=$(rss)
(for ((i = 0; i < N; i++)); do /bin/true; done) &
STORM=$!
wait $STORM
# wait (bounded) until the source has caught up: a last probe shows up after the storm's events
for i in $(seq 600); do
	/bin/sh -c 'sleep 0.05' "$MARK-end"
	grep -q "$MARK-end" "$W/storm.jsonl" && break
	sleep 0.1
done
R1=$(awk '/^VmHWM/ { print $2 }' /proc/$EPID/status)
stop_events "$W/storm.jsonl"
SEEN=$(python3 -c "
import json
print(sum(1 for l in open('$W/storm.jsonl', encoding='utf-8') if json.loads(l).get('ParentProcessId') == $STORM))")
read -r DROP LOST < <(python3 -c "
import json; s = json.load(open('$W/storm.jsonl.err')); print(s['dropped'], s['kernel_lost'])")
echo "storm: $N processes, $SEEN events of ours, $DROP dropped, $LOST lost by the kernel (all processes), VmRSS ${R0} kB -> peak ${R1} kB"
[ "$SEEN" -le "$N" ] || fail "more events ($SEEN) than processes ($N)"
[ $((SEEN + DROP + LOST)) -ge "$N" ] || fail "silent loss: $SEEN seen + $DROP dropped + $LOST lost < $N"
if [ "$DROP" = 0 ] && [ "$LOST" = 0 ]; then
	[ "$SEEN" = "$N" ] || fail "nothing dropped, yet $SEEN events for $N processes"
fi
# the queue (RF_SOURCE_QUEUE_MAX, 4 MiB) and the fork table are the only buffers that grow
[ $((R1 - R0)) -lt 65536 ] || fail "the source grew by $((R1 - R0)) kB in the storm"
ok "storm: $SEEN + $DROP dropped + $LOST lost >= $N; memory bounded"

# ---- a burst beyond capacity: a reader that stalls, a small queue ---------------------------------
# The reader takes one line (proof the source is subscribed), then sleeps through a storm: the
# pipe and the 512 KiB queue fill, and what does not fit is dropped and counted, not buffered.
N2=3000
rm -f "$W/first"
"$CLI" events --source proc --queue 524288 --timeout 300 2>"$W/burst.err" \
	> >(IFS= read -r l; echo "$l" >"$W/first"; sleep 8; cat >"$W/burst.jsonl") &
EPID=$!
for i in $(seq 200); do
	/bin/sh -c 'sleep 0.05' "$MARK-probe2"
	[ -s "$W/first" ] && break
done
[ -s "$W/first" ] || fail "the stalled reader saw no first event"
(for ((i = 0; i < N2; i++)); do /bin/true; done) &
STORM2=$!
wait $STORM2
for i in $(seq 600); do
	/bin/sh -c 'sleep 0.05' "$MARK-end2"
	grep -q "$MARK-end2" "$W/burst.jsonl" 2>/dev/null && break
	sleep 0.1
done
grep -q "$MARK-end2" "$W/burst.jsonl" || fail "the reader never caught up"
stop_events "$W/burst"
SEEN2=$(python3 -c "
import json
print(sum(1 for l in open('$W/burst.jsonl', encoding='utf-8') if json.loads(l).get('ParentProcessId') == $STORM2))")
read -r DROP2 LOST2 < <(python3 -c "
import json; s = json.load(open('$W/burst.err')); print(s['dropped'], s['kernel_lost'])")
echo "burst: $N2 processes, $SEEN2 events of ours, $DROP2 dropped, $LOST2 lost by the kernel"
[ "$DROP2" -gt 0 ] || fail "a stalled reader and a 512 KiB queue dropped nothing"
[ "$SEEN2" -le "$N2" ] || fail "more events ($SEEN2) than processes ($N2)"
[ $((SEEN2 + DROP2 + LOST2)) -ge "$N2" ] ||
	fail "silent loss: $SEEN2 seen + $DROP2 dropped + $LOST2 lost < $N2"
ok "burst: a stalled reader cost $DROP2 counted drops, no silent loss"

# ---- e2e: an alert through ringfence-agent run --events proc ------------------------------------
mkdir -p "$W/rules"
cat >"$W/rules/proc-marker.yml" <<EOF
title: Marker Shell From A Test
id: 5b1e7f3a-13f0-4d2c-9c1e-7a2f00000013
status: test
logsource:
  category: process_creation
  product: linux
detection:
  selection:
    Image|endswith:
      - '/sh'
      - '/dash'
      - '/bash'
    CommandLine|contains: '$MARK-alert'
  filter:
    ParentUser: 'nobody-at-all'
  condition: selection and not filter
level: high
EOF
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$W/rules" -o "$W/p.rfp" --seq 1 >/dev/null 2>&1 || fail "compile"
rf_start_server
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create"
custom='{"ringfence":{"release":"rel-p","schedule":[{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":100}]}]}}'
"$CLI" repo add "$W/repo" "$W/p.rfp" --name packs/p.rfp --custom "$custom" >/dev/null || fail "repo add"
"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish"
"$CLI" release create packs/p.rfp >/dev/null || fail "release create"
"$AGENT" run --server "$URL" --store "$W/store" --ring canary --enroll-token "$TOKEN" \
	--device-id proc-dev-1 --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
	--events proc --alerts "$W/alerts.jsonl" >"$W/agent.log" 2>&1 &
APID=$!
for i in $(seq 600); do
	grep -q ": loaded" "$W/agent.log" && break
	kill -0 $APID 2>/dev/null || fail "the agent exited"
	sleep 0.1
done
grep -q ": loaded" "$W/agent.log" || fail "the pack did not load"
grep -q "event source [0-9]*: process creation" "$W/agent.log" || fail "no event source in the log"
for i in $(seq 100); do
	/bin/sh -c 'sleep 0.2' "$MARK-alert"
	grep -q 5b1e7f3a-13f0-4d2c-9c1e-7a2f00000013 "$W/alerts.jsonl" 2>/dev/null && break
done
grep -q 5b1e7f3a-13f0-4d2c-9c1e-7a2f00000013 "$W/alerts.jsonl" 2>/dev/null ||
	fail "no alert from the marker process"
grep -q '"title":"Marker Shell From A Test"' "$W/alerts.jsonl" || fail "alert without title"
ok "e2e: a real exec raised the rule's alert through ringfence-agent run --events proc"
# a storm through the agent: its three processes stay bounded, and it still answers
agent_rss() { # supervisor + its children (worker, event source), kB
	local t=0 p
	for p in $APID $(cat /proc/$APID/task/*/children 2>/dev/null); do
		t=$((t + $(awk '/^VmRSS/ { print $2 }' /proc/$p/status 2>/dev/null || echo 0)))
	done
	echo $t
}
A0=$(agent_rss)
C0=$(grep -c 5b1e7f3a-13f0-4d2c-9c1e-7a2f00000013 "$W/alerts.jsonl")
(for ((i = 0; i < 10000; i++)); do /bin/true; done) &
wait $!
for i in $(seq 600); do
	/bin/sh -c 'sleep 0.05' "$MARK-alert"
	[ "$(grep -c 5b1e7f3a-13f0-4d2c-9c1e-7a2f00000013 "$W/alerts.jsonl")" -gt "$C0" ] && break
done
[ "$(grep -c 5b1e7f3a-13f0-4d2c-9c1e-7a2f00000013 "$W/alerts.jsonl")" -gt "$C0" ] ||
	fail "no alert after the storm: the worker did not catch up"
A1=$(agent_rss)
echo "agent storm: 10,000 processes; supervisor + worker + source RSS ${A0} kB -> ${A1} kB"
[ $((A1 - A0)) -lt 65536 ] || fail "the agent grew by $((A1 - A0)) kB in a storm"
kill -0 $APID || fail "the agent died in the storm"
ok "agent storm: memory bounded, alerts still raised after it"
kill -TERM $APID
wait $APID || fail "the agent exited with $? on SIGTERM"
APID=
"$AGENT" status --store "$W/store" --json | python3 -c "
import json,sys; s=json.load(sys.stdin); assert 'events_dropped' in s, s" ||
	fail "status has no events_dropped"
ok "agent stopped cleanly; status reports events_dropped"
