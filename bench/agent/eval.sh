#!/bin/bash
# The agent's worker end to end (issue 12): events/s per core of worker CPU time for the realistic
# mix of bench-content (`bench-content --dump N`) read through `ringfence-agent run --events FILE`
# with every compilable SigmaHQ process_creation rule, alerts written to --alerts. What it costs
# from the read() to the alert line: splitting lines, parsing, evaluating, correlating, writing.
# Prints figures; asserts nothing.
#
# Compiles the pack from $RF_SHARED_DIR/sigma (skips if absent), publishes it in a TUF repository
# served by a real ringfenced on 127.0.0.1, runs the agent until the pack is loaded, then, ROUNDS
# times (default 3), alternating: the worker one event at a time (RINGFENCE_WORKER_BATCH=1), in
# batches (the default), and, when OTHER_AGENT names another ringfence-agent binary (an older
# build, for an A/B), that one. Each run restarts the agent on the same store (the matchers come
# from its cache), waits for "loaded", reads the worker's CPU time (utime+stime, /proc), appends
# the N events (EVENTS, default 200000) to a new --events file and waits until the worker's CPU
# time stops moving (an idle worker uses none) and the store counted the N events. The figure is
# N / the worker's CPU seconds; the best of the rounds is printed for each (the machine may be
# shared). Use a release build (`make bench`): ASan slows every figure down.
# Usage: eval.sh RINGFENCE_AGENT RINGFENCED RINGFENCE BENCH_CONTENT
set -u
AGENT=$1 SERVERBIN=$2 CLI=$3 BENCH=$4 N=${EVENTS:-200000} ROUNDS=${ROUNDS:-3}
SIGMA=${RF_SHARED_DIR:-/work/shared}/sigma/rules
[ -d "$SIGMA" ] || { echo "SKIP: no SigmaHQ rules at $SIGMA (set RF_SHARED_DIR)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read JSON"; exit 77; }
W=$(mktemp -d /tmp/rf-agent-eval-XXXXXX)
SPID= APID=
stop_agent() {
	[ -n "$APID" ] || return 0
	kill -TERM "$APID" 2>/dev/null
	for i in $(seq 200); do kill -0 "$APID" 2>/dev/null || break; sleep 0.1; done
	{ wait "$APID"; } 2>/dev/null
	APID=
}
cleanup() {
	stop_agent
	[ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null && { wait "$SPID"; } 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
die() { echo "bench failed: $*"; tail -20 "$W/agent.log" 2>/dev/null; exit 1; }

. "$(dirname "$0")/sigma-release.sh"
rf_bench_sigma_release
"$BENCH" --dump "$N" >"$W/mix.jsonl" || die "bench-content --dump"

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
stored_events() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"])' \
		"$W/store/state.json" 2>/dev/null || echo 0
}
# start BIN [VAR=VALUE...]: the agent BIN (with those variables in its environment) on the
# store, reading a new, empty $W/ev-$RUN.jsonl; returns once its worker said "loaded" (the first
# start: once the pack was installed and loaded).
RUN=0
start() {
	local bin=$1 loaded i
	shift
	RUN=$((RUN + 1))
	: >"$W/ev-$RUN.jsonl"
	loaded=$(grep -c "worker .*: loaded" "$W/agent.log" 2>/dev/null || true)
	env "$@" "$bin" run --server "$RINGFENCE_SERVER" --store "$W/store" --ring canary --enroll-token "$TOKEN" \
		--device-id bench-1 --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 300 \
		--probation 2 --probation-events 0 --events "$W/ev-$RUN.jsonl" --alerts "$W/alerts.jsonl" \
		>>"$W/agent.log" 2>&1 &
	APID=$!
	for i in $(seq 1200); do
		[ "$(grep -c "worker .*: loaded" "$W/agent.log")" -gt "${loaded:-0}" ] && return 0
		kill -0 "$APID" 2>/dev/null || die "agent exited"
		sleep 0.1
	done
	die "pack not loaded in 120 s"
}
# measure NAME BIN [ENV=VALUE]: one run; appends "NAME EVENTS/S" to $W/figures
measure() {
	local name=$1 bin=$2 e0 t0 t1 prev same wpid hz e1 i
	shift 2
	e0=$(stored_events)
	start "$bin" "$@"
	wpid=$(pgrep -P "$APID" | head -1)
	[ -n "$wpid" ] || die "no worker"
	sleep 1
	t0=$(ticks "$wpid")
	cat "$W/mix.jsonl" >>"$W/ev-$RUN.jsonl"
	same=0 prev=$t0
	for i in $(seq 1200); do
		sleep 0.5
		t1=$(ticks "$wpid")
		[ -n "$t1" ] || die "the worker died"
		if [ "$t1" = "$prev" ] && [ "$t1" != "$t0" ]; then
			same=$((same + 1))
			[ "$same" -ge 4 ] && break
		else
			same=0
		fi
		prev=$t1
	done
	stop_agent
	e1=$(stored_events)
	hz=$(getconf CLK_TCK)
	[ $((e1 - e0)) = "$N" ] || echo "  (run $RUN $name: the store counted $((e1 - e0)) events, not $N)"
	awk -v n="$N" -v t=$((t1 - t0)) -v hz="$hz" -v name="$name" 'BEGIN {
		printf "  %-28s %8.0f events/s of worker CPU (%d events, %.2f s CPU)\n", name, n * hz / t, n, t / hz
		printf "%s\t%.0f\n", name, n * hz / t >> "/dev/stderr" }' 2>>"$W/figures"
}

rules=$(grep -o 'compiled [0-9]* rules' "$W/compile.out")
echo "agent worker end to end with SigmaHQ process_creation: $rules; $N events of bench-content's mix ($(stat -c %s "$W/mix.jsonl") bytes)"
start "$AGENT" # the first start installs the pack and writes the matcher cache
stop_agent
for r in $(seq "$ROUNDS"); do
	echo "round $r:"
	measure "one event at a time" "$AGENT" RINGFENCE_WORKER_BATCH=1
	measure "batches of 32" "$AGENT" RINGFENCE_WORKER_BATCH=32
	[ -n "${OTHER_AGENT:-}" ] && measure "OTHER_AGENT" "$OTHER_AGENT"
done
# Per configuration the best and the median run; per round the ratio of batches to one at a time
# (and to OTHER_AGENT), whose median is the A/B least disturbed by other load on the machine.
python3 - "$W/figures" "$ROUNDS" <<'PY'
import sys, statistics
runs = {}
for line in open(sys.argv[1]):
    name, v = line.rstrip("\n").split("\t")
    runs.setdefault(name, []).append(float(v))
print("over %s rounds, events/s per core of worker CPU:" % sys.argv[2])
for name, v in sorted(runs.items()):
    print("  %-28s best %8.0f  median %8.0f" % (name, max(v), statistics.median(v)))
b = runs.get("batches of 32", [])
for other in ("one event at a time", "OTHER_AGENT"):
    o = runs.get(other, [])
    r = sorted(x / y for x, y in zip(b, o))
    if r:
        print("  batches of 32 / %-19s median %.3f (per round: %s)" %
              (other, statistics.median(r), " ".join("%.2f" % x for x in r)))
PY
