#!/bin/bash
# The manifest an agent run verifies packs against follows its event source (docs/agent.md,
# "Manifests"), against the real ringfenced:
#   choice     `ringfence-agent manifest --events proc` is manifests/ringfence-agent-linux-1.2.0.json
#              byte for byte, without --events the general ringfence-agent-1.1.0.json; an unknown
#              --manifest is a usage error for `manifest` and `run`.
#   run        one release W whose rule needs FileVersion (a Sysmon field only Windows events
#              carry): an agent on the Linux manifest (`--manifest ringfence-agent-linux-1.2.0`,
#              and, as root, `--events proc` with no --manifest) refuses it with the field named
#              and never stores it; an agent on events made elsewhere (a file) takes it.
# Everything runs on 127.0.0.1 (a free port); every wait is bounded; the script stops what it
# started. Usage: agent-manifest.sh RINGFENCE_AGENT RINGFENCED RINGFENCE
set -u
AGENT=$1 SERVERBIN=$2 CLI=$3
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
fail() {
	echo "FAIL: $*"
	for l in "$W"/agent-*.log; do [ -e "$l" ] && { echo "---- $l (tail)"; tail -20 "$l"; }; done
	exit 1
}
. "$SRC/tests/lib/e2e.sh" # rf_e2e_init, rf_start_server, rf_publish, sha, ok
rf_e2e_init agent-manifest

# ---- the choice, through the command ------------------------------------------------------
"$AGENT" manifest --events proc >"$W/m-proc.json" || fail "manifest --events proc"
cmp -s "$W/m-proc.json" "$SRC/manifests/ringfence-agent-linux-1.2.0.json" ||
	fail "--events proc does not choose ringfence-agent-linux-1.2.0.json"
"$AGENT" manifest >"$W/m-none.json" || fail "manifest"
cmp -s "$W/m-none.json" "$SRC/manifests/ringfence-agent-1.1.0.json" ||
	fail "no --events does not choose ringfence-agent-1.1.0.json"
"$AGENT" manifest --events proc --manifest ringfence-agent-1.1.0 >"$W/m-named.json" || fail "manifest --manifest"
cmp -s "$W/m-named.json" "$SRC/manifests/ringfence-agent-1.1.0.json" || fail "--manifest does not win over --events"
"$AGENT" manifest --list | grep -q '^ringfence-agent-linux-1.2.0 *proc$' || fail "manifest --list"
"$AGENT" manifest --manifest ringfence-agent-9.9.9 >/dev/null 2>&1
[ $? = 2 ] || fail "manifest --manifest UNKNOWN is not a usage error"
"$AGENT" run --server http://127.0.0.1:1 --manifest ringfence-agent-9.9.9 >"$W/bad.out" 2>&1
[ $? = 2 ] && grep -q 'no such manifest' "$W/bad.out" || fail "run --manifest UNKNOWN is not a usage error"
# `run --help` says which manifest each --events picks, as the table does (the 2026-12 review:
# audit and proc,audit were missing): every source `manifest --list` names appears in it
"$AGENT" run --help >"$W/run-help.txt" || fail "run --help"
for ev in audit proc,audit; do
	want=$("$AGENT" manifest --list | awk -v e="$ev" '$2 == e { print $1 }')
	[ -n "$want" ] || fail "manifest --list names no manifest for --events $ev"
	tr -s ' \n' ' ' <"$W/run-help.txt" | grep -q "'$ev'[^;]* $want" ||
		fail "run --help does not say --events $ev picks $want"
done
ok "--events proc chooses the Linux manifest, none the general one, --manifest wins, unknown refused; run --help says so for audit and proc,audit"

# ---- a release only Windows events can satisfy ---------------------------------------------
mkdir -p "$W/rules-w"
cat >"$W/rules-w/file-version.yml" <<'EOF'
title: Needs A Field Only Windows Events Carry
id: 3f0c2a51-5d1e-4c7e-9a55-0000000000f1
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    FileVersion|contains: '10.0'
  condition: selection
level: medium
EOF
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$W/rules-w" -o "$W/w.rfp" --seq 1 \
	--manifest "$SRC/manifests/ringfence-agent-1.1.0.json" >/dev/null 2>&1 || fail "compile w"
HW=$(sha "$W/w.rfp")
rf_start_server
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create"
rf_publish packs/w.rfp "$W/w.rfp" rel-w
head -3 "$SRC/examples/events/sample.jsonl" >"$W/events.jsonl"

# start_agent NAME ARGS...: an agent with its own store and device id, log $W/agent-NAME.log
start_agent() {
	local n=$1
	shift
	"$AGENT" run --server "$URL" --store "$W/store-$n" --ring canary --enroll-token "$TOKEN" \
		--device-id "dev-$n" --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
		--probation 1 --probation-events 0 --alerts "$W/alerts-$n.jsonl" "$@" \
		>>"$W/agent-$n.log" 2>&1 &
	APIDS+=($!)
}
# wait_log NAME PATTERN: the agent's log matches within 20 s
wait_log() {
	local i
	for i in $(seq 200); do grep -q -- "$2" "$W/agent-$1.log" && return 0; sleep 0.1; done
	return 1
}
current() { "$AGENT" status --store "$W/store-$1" --json 2>/dev/null |
	python3 -c "import json,sys; s=json.load(sys.stdin); print((s.get('current') or {}).get('sha256'))" 2>/dev/null; }

start_agent linux --manifest ringfence-agent-linux-1.2.0 --events "$W/events.jsonl"
start_agent general --events "$W/events.jsonl"
wait_log linux "manifest ringfence-agent-linux-1.2.0" || fail "the linux agent does not say its manifest"
wait_log linux "rejected packs/w.rfp $HW: .*FileVersion.*ringfence-agent-linux" ||
	fail "the agent on the Linux manifest did not refuse W with the field named"
[ ! -e "$W/store-linux/packs/$HW.rfp" ] || fail "W is in the Linux agent's store"
ok "the agent on the Linux manifest refuses W (FileVersion named), never stores it"
for i in $(seq 200); do [ "$(current general)" = "$HW" ] && break; sleep 0.1; done
[ "$(current general)" = "$HW" ] || fail "the agent on events from a file did not take W"
grep -q "rejected" "$W/agent-general.log" && fail "the general agent rejected something"
ok "the agent on events made elsewhere (1.1.0) takes W"

if [ "$(id -u)" = 0 ]; then
	start_agent proc --events proc
	wait_log proc "manifest ringfence-agent-linux-1.2.0" || fail "--events proc does not run on the Linux manifest"
	wait_log proc "rejected packs/w.rfp $HW: .*FileVersion" || fail "the --events proc agent did not refuse W"
	ok "an agent with --events proc (no --manifest) refuses W"
else
	echo "skip: --events proc needs root (the run with --manifest above covers the verification)"
fi
echo "PASS"
