#!/usr/bin/env bash
# docs/operators.md, "A first deployment, step by step", runs: its ```sh runbook blocks are
# extracted in order and run as one bash script (errexit, pipefail, nounset) against a real
# ringfenced on 127.0.0.1 and a free port, with real agents, the build tree's programs first on
# PATH and DATA set to the source tree. The guide's own waits are bounded and fail when what
# they wait for does not happen (all agents healthy, the gate's halt, the restored server), so
# a step that no longer works, or a command whose options changed, fails this test. Also checks
# that the guide still covers every step an operator needs. Needs RF_SOURCE_ROOT and
# RF_BUILD_ROOT (meson sets both).
set -uo pipefail

src=${RF_SOURCE_ROOT:?RF_SOURCE_ROOT not set}
b=${RF_BUILD_ROOT:?RF_BUILD_ROOT not set}
for p in src/cli/ringfence src/server/ringfenced src/agent/ringfence-agent; do
	[ -x "$b/$p" ] || { echo "not built: $b/$p"; exit 1; }
done
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/rf-guide.XXXXXX")
cleanup() {
	local pg
	pg=$(cat "$work/pgid" 2>/dev/null)
	[ -z "$pg" ] || kill -TERM -- "-$pg" 2>/dev/null
	sleep 0.5
	[ -z "$pg" ] || kill -KILL -- "-$pg" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

guide=$src/docs/operators.md
awk '/^```sh runbook$/ { on = 1; print "# ---- block " ++n; next } /^```$/ { on = 0; next }
	on { print }' "$guide" >"$work/runbook.sh"
blocks=$(grep -c '^# ---- block' "$work/runbook.sh")
[ "$blocks" -ge 10 ] || { echo "FAIL: only $blocks runbook blocks in $guide"; exit 1; }
failures=0
# Every step of a first deployment is in the runbook.
for step in 'ringfence repo init' 'ringfence content compile' 'ringfence content verify' \
	'ringfenced --init' 'ringfence tenant create' 'ringfence-agent run' 'ringfence ring list' \
	'ringfence repo add' 'ringfence repo publish' 'ringfence release create' \
	'ringfence release status' 'ringfence release halt' 'ringfence release resume' \
	'--backup' 'cp backup/'; do
	grep -qF -- "$step" "$work/runbook.sh" || { echo "FAIL: the runbook has no '$step'"; failures=$((failures + 1)); }
done

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
	echo 'echo $$ >"$RF_GUIDE_PGID"'
	echo 'set -x'
	cat "$work/runbook.sh"
	echo 'echo RUNBOOK-COMPLETE'
} >"$work/run.sh"
echo "running $blocks blocks of $guide on port $port (log: below on failure)"
rc=0
(cd "$work" && RF=$work/lab PORT=$port DATA=$src AGENTS=6 RF_GUIDE_PGID=$work/pgid \
	PATH=$b/src/cli:$b/src/server:$b/src/agent:$PATH \
	timeout 900 setsid bash -euo pipefail run.sh >"$work/out" 2>&1) || rc=$?
if [ $rc -ne 0 ] || ! grep -q '^RUNBOOK-COMPLETE$' "$work/out"; then
	echo "FAIL: the runbook stopped (exit $rc); its last 60 lines:"
	tail -60 "$work/out"
	for f in "$work"/lab/server/ringfenced.log "$work"/lab/agents/1.log; do
		[ -f "$f" ] && { echo "---- $f (last 15 lines)"; tail -15 "$f"; }
	done
	failures=$((failures + 1))
else
	echo "ok: every block ran; the restored server lists:"
	grep -A4 '^+ ringfence release list' "$work/out" | tail -4
fi
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
