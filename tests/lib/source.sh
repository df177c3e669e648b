# Shared by the tests of the agent's event sources against the real kernel (agent-proc.sh,
# agent-audit.sh), sourced after tests/lib/e2e.sh. The caller sets CLI (the ringfence
# program), SOURCE (`ringfence events --source` value), W (its work directory) and MARK (a
# string unique to the run), defines probe() (one action the source reports with "$MARK-probe"
# in its event) and may add to its cleanup through rf_source_stop.
EPID= SPID= APID=

# rf_source_stop: stops the events reader, the agent and the server this test started
rf_source_stop() {
	[ -n "$EPID" ] && kill -TERM "$EPID" 2>/dev/null && wait "$EPID" 2>/dev/null
	[ -n "$APID" ] && kill -TERM "$APID" 2>/dev/null && wait "$APID" 2>/dev/null
	[ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
	EPID= APID= SPID=
}

fail() {
	echo "FAIL: $*"
	[ -s "$W/agent.log" ] && { echo "---- agent log (tail)"; tail -30 "$W/agent.log"; }
	exit 1
}

# start_events OUT [ARGS]: `ringfence events --source $SOURCE ARGS` into OUT (its errors in
# OUT.err), in the background; returns once the source reported a probe (up to 200 tries)
start_events() {
	local out=$1
	shift
	"$CLI" events --source "$SOURCE" --timeout 300 "$@" >"$out" 2>"$out.err" &
	EPID=$!
	for i in $(seq 200); do
		probe
		grep -q "$MARK-probe" "$out" 2>/dev/null && return 0
		kill -0 "$EPID" 2>/dev/null || fail "ringfence events exited: $(cat "$out.err")"
		sleep 0.05
	done
	fail "ringfence events --source $SOURCE saw none of 200 probes"
}

# stop_events OUT: stops the reader start_events started; it must exit 0
stop_events() {
	kill -TERM "$EPID"
	wait "$EPID" || fail "ringfence events exited with $?: $(cat "$1.err")"
	EPID=
}

# ev FILE PYTHON-FILTER FIELD: the FIELD of the one event (e) FILTER selects in FILE (JSON
# lines); "<N events>" when FILTER does not select exactly one, "<absent>" when it lacks FIELD
ev() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
sel = [e for e in evs if eval(sys.argv[2])]
if len(sel) != 1:
    print("<%d events>" % len(sel)); sys.exit(0)
print(sel[0].get(sys.argv[3], "<absent>"))
PY
}

# want WHAT GOT WANT: fails naming WHAT unless GOT is WANT
want() {
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}
