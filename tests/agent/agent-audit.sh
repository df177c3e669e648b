#!/bin/bash
# The audit source against the real kernel (issue 12, Linux auditd), as root:
#   setup      audit is enabled if it was not, and one temporary rule is added through
#              NETLINK_AUDIT (audit-ctl): execve/execveat by children of this script, with a key
#              of our own. At exit (trap: also on failure) the rule is deleted and the previous
#              enabled state restored, so the host's audit configuration is as we found it.
#   fields     commands run under the rule give SYSCALL (SYSCALL=execve, key, exe hex-decoded
#              from a path with a space), EXECVE (a0.., an argument with a space and one with a
#              quote decoded), PATH, CWD and PROCTITLE events with the same serial; a user-space
#              SERVICE_STOP record gives its flattened unit; every line is valid JSON with
#              exactly fields manifests/ringfence-agent-linux-1.3.0.json lists, with their types.
#   sigma      SigmaHQ-style rules written here (EXECVE a0/a1, SYSCALL with SYSCALL/key/exe,
#              SERVICE_STOP unit, keywords) compile against the manifest and fire on those
#              events through `ringfence content eval`; SigmaHQ's 53 auditd rules compile.
#   no cap     without CAP_AUDIT_READ: a clear error naming it.
#   burst      a reader that stalls and a small queue while 2,000 commands run: records are
#              dropped and counted; every command's serial is accounted for (emitted, dropped
#              or lost), never silently missing.
#   agent      ringfence-agent run --events proc,audit starts both sources in its source child
#              and still raises a process_creation alert.
# Everything runs on 127.0.0.1; every wait is bounded; the script stops what it started.
# Usage: agent-audit.sh RINGFENCE_AGENT RINGFENCED RINGFENCE AUDIT_CTL
set -u
AGENT=$1 SERVERBIN=$2 CLI=$3 ACTL=$4
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
MAN=$SRC/manifests/ringfence-agent-linux-1.3.0.json
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: the audit source needs root (CAP_AUDIT_READ, and CAP_AUDIT_CONTROL for the test's rule)"
	exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read JSON"; exit 77; }
WAS=$("$ACTL" status 2>&1) || { echo "SKIP: no kernel audit control here ($WAS)"; exit 77; }
WAS=${WAS#enabled }
[ "$WAS" = 2 ] && { echo "SKIP: the kernel's audit configuration is locked (enabled 2)"; exit 77; }

W=$(mktemp -d /tmp/rf-agent-audit-XXXXXX)
KEY=rfaudit$$x$RANDOM
MARK=$KEY-m
RULE=0
cleanup() {
	rf_source_stop
	[ "$RULE" = 1 ] && { "$ACTL" del $$ "$KEY" || echo "WARNING: could not delete audit rule $KEY"; }
	now=$("$ACTL" status 2>/dev/null)
	if [ "$now" != "enabled $WAS" ]; then
		"$ACTL" enable "$WAS" || echo "WARNING: could not restore audit enabled=$WAS"
	fi
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
. "$SRC/tests/lib/e2e.sh" # rf_start_server, ok
. "$SRC/tests/lib/source.sh" # start_events, stop_events, ev, want, fail
SOURCE=audit
probe() { /bin/true "$MARK-probe"; } # children of this script are audited under our rule

[ "$WAS" = 1 ] || "$ACTL" enable 1 || fail "cannot enable audit"
RULE=1
"$ACTL" add $$ "$KEY" || { RULE=0; fail "cannot add the temporary audit rule"; }

# ---- fields ------------------------------------------------------------------------------
mkdir -p "$W/dir with space"
cp /bin/true "$W/dir with space/tr ue"
start_events "$W/ev.jsonl"
/bin/echo "$MARK-echo" "two words" 'q"uote' >/dev/null
"$W/dir with space/tr ue" "$MARK-space"
"$ACTL" user 1131 "unit=$MARK-unit comm=\"systemd\" exe=\"/usr/lib/systemd/systemd\" hostname=? addr=? terminal=? res=success" ||
	fail "cannot send a user-space record"
/bin/true "$MARK-end"
for i in $(seq 100); do
	grep -q "$MARK-end" "$W/ev.jsonl" && grep -q "$MARK-unit" "$W/ev.jsonl" && break
	sleep 0.05
done
stop_events "$W/ev.jsonl"
python3 - "$W/ev.jsonl" "$MAN" <<'EOF' || fail "an event line is not valid or not in the manifest"
import json, sys
m = json.load(open(sys.argv[2]))
fields = {f["name"]: f["type"] for e in m["events"] if e["name"] == "linux_auditd" for f in e["fields"]}
for n, l in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    e = json.loads(l)
    assert e.pop("event") == "linux_auditd", (n, l)
    for k, v in e.items():
        if k not in fields:
            sys.exit("line %d: field %s is not in the manifest" % (n, k))
        if (fields[k] == "int") != isinstance(v, int):
            sys.exit("line %d: field %s has the wrong type" % (n, k))
EOF

SEL="e['type'] == 'EXECVE' and e.get('a1') == '$MARK-echo'"
want "EXECVE a0" "$(ev "$W/ev.jsonl" "$SEL" a0)" /bin/echo
want "EXECVE a2 (hex-encoded: a space)" "$(ev "$W/ev.jsonl" "$SEL" a2)" "two words"
want "EXECVE a3 (hex-encoded: a quote)" "$(ev "$W/ev.jsonl" "$SEL" a3)" 'q"uote'
want "EXECVE argc" "$(ev "$W/ev.jsonl" "$SEL" argc)" 4
SERIAL=$(ev "$W/ev.jsonl" "$SEL" serial)
S="e.get('serial') == $SERIAL"
want "SYSCALL SYSCALL" "$(ev "$W/ev.jsonl" "$S and e['type'] == 'SYSCALL'" SYSCALL)" execve
want "SYSCALL key" "$(ev "$W/ev.jsonl" "$S and e['type'] == 'SYSCALL'" key)" "$KEY"
want "SYSCALL exe" "$(ev "$W/ev.jsonl" "$S and e['type'] == 'SYSCALL'" exe)" "$(readlink -f /bin/echo)"
want "SYSCALL ppid" "$(ev "$W/ev.jsonl" "$S and e['type'] == 'SYSCALL'" ppid)" $$
want "SYSCALL success" "$(ev "$W/ev.jsonl" "$S and e['type'] == 'SYSCALL'" success)" yes
want "CWD" "$(ev "$W/ev.jsonl" "$S and e['type'] == 'CWD'" cwd)" "$(pwd)"
want "PATH item 0" "$(ev "$W/ev.jsonl" "$S and e['type'] == 'PATH' and e.get('item') == 0" name)" /bin/echo
want "PROCTITLE" "$(ev "$W/ev.jsonl" "$S and e['type'] == 'PROCTITLE'" proctitle)" \
	"/bin/echo $MARK-echo two words q\"uote"
want "msg" "$(ev "$W/ev.jsonl" "$SEL" msg | sed 's/^audit([0-9]*\.[0-9]*:\([0-9]*\))$/\1/')" "$SERIAL"
SEL2="e['type'] == 'SYSCALL' and e.get('exe', '').endswith('/tr ue')"
want "SYSCALL exe (hex-encoded: a space)" "$(ev "$W/ev.jsonl" "$SEL2" exe)" "$W/dir with space/tr ue"
want "SYSCALL comm" "$(ev "$W/ev.jsonl" "$SEL2" comm)" "tr ue"
want "SERVICE_STOP unit" "$(ev "$W/ev.jsonl" "e['type'] == 'SERVICE_STOP' and e.get('unit') == '$MARK-unit'" res)" success
python3 -c "import json; s = json.load(open('$W/ev.jsonl.err')); assert s['source'] == 'audit' and s['malformed'] == 0 and s['seen'] == s['emitted'] + s['dropped'], s" ||
	fail "counters: $(tail -1 "$W/ev.jsonl.err")"
ok "fields: SYSCALL, EXECVE, PATH, CWD, PROCTITLE of one command (serial $SERIAL), hex values decoded, SERVICE_STOP flattened; all in the manifest"

# ---- sigma: rules written here fire through ringfence content eval ---------------------------
mkdir -p "$W/rules"
cat >"$W/rules/execve.yml" <<EOF
title: Echo Marker From A Test
id: 6c2e8f4b-24a1-4e3d-8d2f-8b3f00000012
status: test
logsource:
  product: linux
  service: auditd
detection:
  selection:
    type: 'EXECVE'
    a0: '/bin/echo'
    a1|contains: '$MARK-echo'
    a2: 'two words'
  condition: selection
level: high
EOF
cat >"$W/rules/syscall.yml" <<EOF
title: Execution From A Directory With A Space
id: 6c2e8f4b-24a1-4e3d-8d2f-8b3f00000013
status: test
logsource:
  product: linux
  service: auditd
detection:
  selection:
    type: 'SYSCALL'
    SYSCALL:
      - 'execve'
      - 'execveat'
    key: '$KEY'
    exe|endswith: '/dir with space/tr ue'
  condition: selection
level: high
EOF
cat >"$W/rules/service.yml" <<EOF
title: Service Stopped From A Test
id: 6c2e8f4b-24a1-4e3d-8d2f-8b3f00000014
status: test
logsource:
  product: linux
  service: auditd
detection:
  selection:
    type: 'SERVICE_STOP'
    unit: '$MARK-unit'
  condition: selection
level: high
EOF
cat >"$W/rules/keywords.yml" <<EOF
title: Keywords In A Command Line
id: 6c2e8f4b-24a1-4e3d-8d2f-8b3f00000015
status: test
logsource:
  product: linux
  service: auditd
detection:
  selection:
    type: 'EXECVE'
  keywords:
    '|all':
      - '$MARK-echo'
      - 'q"uote'
  condition: selection and keywords
level: high
EOF
"$CLI" content compile "$W/rules" -o "$W/a.rfp" --manifest "$MAN" >"$W/c.out" 2>&1 ||
	fail "compile: $(cat "$W/c.out")"
"$CLI" content eval "$W/a.rfp" --manifest "$MAN" "$W/ev.jsonl" >"$W/alerts.jsonl" 2>"$W/eval.err" ||
	fail "eval: $(cat "$W/eval.err")"
for id in 12 13 14 15; do
	n=$(grep -c "6c2e8f4b-24a1-4e3d-8d2f-8b3f000000$id" "$W/alerts.jsonl")
	[ "$n" = 1 ] || fail "rule ...$id: $n alerts, want 1: $(cat "$W/alerts.jsonl")"
done
ok "sigma: 4 SigmaHQ-style auditd rules fired once each on the live events"
AUD=${RF_SHARED_DIR:-../shared}/sigma/rules/linux/auditd
if [ -d "$AUD" ]; then
	"$CLI" content compile "$AUD" -o "$W/aud.rfp" --manifest "$MAN" >"$W/aud.out" 2>&1
	grep -q "compiled 53 rules, rejected 0" "$W/aud.out" ||
		fail "SigmaHQ linux/auditd against the Linux manifest: $(tail -3 "$W/aud.out")"
	"$CLI" content eval "$W/aud.rfp" --manifest "$MAN" "$W/ev.jsonl" >/dev/null 2>"$W/aud.err" ||
		fail "the SigmaHQ auditd pack does not load: $(cat "$W/aud.err")"
	ok "SigmaHQ linux/auditd: 53 of 53 compile against the Linux manifest and load"
else
	echo "note: no SigmaHQ corpus at $AUD; the auditd rules' compile count is not checked"
fi

# ---- no CAP_AUDIT_READ --------------------------------------------------------------------
if capsh --drop=cap_audit_read -- -c true 2>/dev/null; then
	out=$(capsh --drop=cap_audit_read -- -c "'$CLI' events --source audit --count 1 --timeout 5" 2>&1)
	rc=$?
	[ $rc = 1 ] || fail "ringfence events without CAP_AUDIT_READ: exit $rc, want 1 ($out)"
	echo "$out" | grep -q CAP_AUDIT_READ || fail "the error does not name CAP_AUDIT_READ: $out"
	ok "without CAP_AUDIT_READ: '$out'"
else
	echo "note: capsh cannot drop CAP_AUDIT_READ here; the error is not checked"
fi

# ---- burst: a stalled reader, a small queue ------------------------------------------------------
N=2000
rm -f "$W/first"
"$CLI" events --source audit --queue 524288 --timeout 300 2>"$W/burst.err" \
	> >(IFS= read -r l; echo "$l" >"$W/first"; sleep 8; cat >"$W/burst.jsonl") &
EPID=$!
for i in $(seq 200); do
	/bin/true "$MARK-probe2"
	[ -s "$W/first" ] && break
	sleep 0.05
done
[ -s "$W/first" ] || fail "the stalled reader saw no first event"
FIRST=$(python3 -c "import json; print(json.load(open('$W/first'))['serial'])")
for ((i = 0; i < N; i++)); do /bin/true "$MARK-b$i"; done
for i in $(seq 600); do
	/bin/true "$MARK-end2"
	grep -q "$MARK-end2" "$W/burst.jsonl" 2>/dev/null && break
	sleep 0.1
done
grep -q "$MARK-end2" "$W/burst.jsonl" || fail "the reader never caught up"
stop_events "$W/burst"
# each command is one serial: some record of it came out, or its records were dropped (at
# least one drop each), or its serial never arrived (counted as lost by the kernel)
read -r OURS SEEN EMIT DROP LOST < <(python3 - "$W/burst.jsonl" "$W/burst.err" "$MARK" <<'EOF'
import json, sys
mark = sys.argv[3]
evs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
ours = {e["serial"] for e in evs if e["type"] == "EXECVE" and e.get("a1", "").startswith(mark + "-b")}
s = json.load(open(sys.argv[2]))
print(len(ours), s["seen"], s["emitted"], s["dropped"], s["kernel_lost"])
EOF
)
echo "burst: $N commands; $OURS with their EXECVE out; records seen $SEEN, emitted $EMIT, dropped $DROP, lost by the kernel $LOST"
[ "$DROP" -gt 0 ] || fail "a stalled reader and a 512 KiB queue dropped nothing"
[ "$SEEN" = $((EMIT + DROP)) ] || fail "seen $SEEN != emitted $EMIT + dropped $DROP"
[ "$OURS" -le "$N" ] || fail "more commands out ($OURS) than run ($N)"
[ $((OURS + DROP + LOST)) -ge "$N" ] || fail "silent loss: $OURS out + $DROP dropped + $LOST lost < $N"
ok "burst: a stalled reader cost $DROP counted drops, no silent loss"

# ---- agent: both sources in the agent's source child -----------------------------------------
cat >"$W/rules/proc-marker.yml" <<EOF
title: Marker Process From The Audit Test
id: 6c2e8f4b-24a1-4e3d-8d2f-8b3f00000016
status: test
logsource:
  category: process_creation
  product: linux
detection:
  selection:
    CommandLine|contains: '$MARK-alert'
  condition: selection
level: high
EOF
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$W/rules/proc-marker.yml" -o "$W/p.rfp" --seq 1 >/dev/null 2>&1 || fail "compile"
rf_start_server
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create"
custom='{"ringfence":{"release":"rel-p","schedule":[{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":100}]}]}}'
"$CLI" repo add "$W/repo" "$W/p.rfp" --name packs/p.rfp --custom "$custom" >/dev/null || fail "repo add"
"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish"
"$CLI" release create packs/p.rfp >/dev/null || fail "release create"
"$AGENT" run --server "$URL" --store "$W/store" --ring canary --enroll-token "$TOKEN" \
	--device-id audit-dev-1 --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
	--events proc,audit --alerts "$W/agent-alerts.jsonl" >"$W/agent.log" 2>&1 &
APID=$!
for i in $(seq 600); do
	grep -q ": loaded" "$W/agent.log" && break
	kill -0 $APID 2>/dev/null || fail "the agent exited"
	sleep 0.1
done
grep -q ": loaded" "$W/agent.log" || fail "the pack did not load"
grep -q "event source [0-9]*: process creation and audit records" "$W/agent.log" ||
	fail "no proc,audit event source in the log"
for i in $(seq 100); do
	/bin/sh -c 'sleep 0.2' "$MARK-alert"
	grep -q 6c2e8f4b-24a1-4e3d-8d2f-8b3f00000016 "$W/agent-alerts.jsonl" 2>/dev/null && break
done
grep -q 6c2e8f4b-24a1-4e3d-8d2f-8b3f00000016 "$W/agent-alerts.jsonl" 2>/dev/null ||
	fail "no alert from the marker process through --events proc,audit"
kill -TERM $APID
wait $APID || fail "the agent exited with $? on SIGTERM"
APID=
ok "agent: --events proc,audit runs both sources; a process_creation alert arrives"
