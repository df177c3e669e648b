#!/bin/bash
# Idle cost of ringfence-agent with every compilable SigmaHQ process_creation rule loaded
# (issue 4 goals: < 32 MB resident, < 0.1 % CPU idle). Prints figures; asserts nothing.
#
# Compiles the pack from $RF_SHARED_DIR/sigma (skips if absent), publishes it in a TUF
# repository served by a real ringfenced on 127.0.0.1, runs the agent until the pack survived
# probation, then measures over WINDOW seconds (default 60): VmRSS and PSS of the supervisor
# and of the worker, and their CPU time (utime+stime from /proc). The server's poll interval is
# the default 300 s, so the window holds at most one check-in, as in production.
# Usage: idle.sh RINGFENCE_AGENT RINGFENCED RINGFENCE   (use a release build: ASan inflates RSS)
set -u
AGENT=$1 SERVERBIN=$2 CLI=$3 WINDOW=${WINDOW:-60}
SIGMA=${RF_SHARED_DIR:-/work/shared}/sigma/rules
[ -d "$SIGMA" ] || { echo "SKIP: no SigmaHQ rules at $SIGMA (set RF_SHARED_DIR)"; exit 77; }
W=$(mktemp -d /tmp/rf-agent-idle-XXXXXX)
SPID= APID=
cleanup() {
	[ -n "$APID" ] && kill -TERM "$APID" 2>/dev/null && { wait "$APID"; } 2>/dev/null
	[ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null && { wait "$SPID"; } 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
die() { echo "bench failed: $*"; tail -20 "$W/agent.log" 2>/dev/null; exit 1; }

. "$(dirname "$0")/sigma-release.sh"
rf_bench_sigma_release
mkfifo "$W/events"
"$AGENT" run --server "$RINGFENCE_SERVER" --store "$W/store" --ring canary --enroll-token "$TOKEN" \
	--device-id bench-1 --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 5 \
	--probation 2 --probation-events 0 --events "$W/events" >"$W/agent.log" 2>&1 &
APID=$!
for i in $(seq 600); do
	grep -q "report healthy" "$W/agent.log" && break
	kill -0 "$APID" 2>/dev/null || die "agent exited"
	sleep 0.1
done
grep -q "report healthy" "$W/agent.log" || die "pack not loaded in 60 s"
WPID=$(pgrep -P "$APID" | head -1)
[ -n "$WPID" ] || die "no worker"
sleep 5 # let the first check-ins settle

kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/$3"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
t0a=$(ticks "$APID") t0w=$(ticks "$WPID")
sleep "$WINDOW"
t1a=$(ticks "$APID") t1w=$(ticks "$WPID")
hz=$(getconf CLK_TCK)
rules=$(grep -o 'compiled [0-9]* rules' "$W/compile.out")
echo "agent idle with SigmaHQ process_creation: $rules, pack $(stat -c %s "$W/sigma.rfp") bytes"
printf "  supervisor  RSS %6d kB  PSS %6d kB\n" "$(kb "$APID" VmRSS status)" "$(kb "$APID" Pss smaps_rollup)"
printf "  worker      RSS %6d kB  PSS %6d kB\n" "$(kb "$WPID" VmRSS status)" "$(kb "$WPID" Pss smaps_rollup)"
printf "  total       RSS %6d kB  PSS %6d kB\n" \
	$(( $(kb "$APID" VmRSS status) + $(kb "$WPID" VmRSS status) )) \
	$(( $(kb "$APID" Pss smaps_rollup) + $(kb "$WPID" Pss smaps_rollup) ))
awk -v a=$((t1a - t0a)) -v w=$((t1w - t0w)) -v hz="$hz" -v s="$WINDOW" \
	'BEGIN { printf "  idle CPU over %d s: supervisor %.3f %%, worker %.3f %% (%d + %d ticks of 1/%d s)\n", s, 100*a/hz/s, 100*w/hz/s, a, w, hz }'
