#!/bin/bash
# Events timed by their arrival do not move the clock of events that carry their own time (review
# 6-2): the worker feeds them to a second correlation evaluator with its own stream clock
# (worker.c correlate(), docs/sigma.md "Time"). Two process_creation lines without UtcTime, then
# two rundll32 events of one user timed 10 minutes ago (a log delivered late, as CloudTrail's
# is): the event_count (gte 2) correlation fires and nothing is counted late, as without the
# timeless lines. With one clock for both, the timeless lines moved it to the wall clock and the
# two timed events were dropped as late. Real ringfenced and agent on 127.0.0.1 (a free port);
# every wait is bounded. Usage: agent-corr-clock.sh RINGFENCE_AGENT RINGFENCED RINGFENCE
set -u
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/e2e.sh"
rf_agent_test agent-corr-clock "$@"

mkdir "$W/r"
cp "$SRC"/examples/rules/*.yml "$W/r/"
cat >"$W/r/corr.yml" <<'YML'
title: rundll32 from user dirs twice
id: corr-rundll32-twice
correlation:
  type: event_count
  rules: [009e985b-1569-42b5-8b38-8cdbf3ae6384]
  group-by: [User]
  timespan: 1h
  condition:
    gte: 2
generate: true
YML
"$CLI" content compile "$W/r" -o "$W/a.rfp" --seq 1 >"$W/compile.out" 2>&1 ||
	fail "compile: $(tail -3 "$W/compile.out")"
HA=$(sha256sum "$W/a.rfp" | cut -d' ' -f1)
# mk FILE WITH_TIMELESS: the events (the two timeless lines first when WITH_TIMELESS is 1)
mk() {
	python3 - "$SRC/examples/events/sample.jsonl" "$1" "$2" <<'PY'
import json, sys, datetime
good = []
for l in open(sys.argv[1]):
    try:
        good.append(json.loads(l))
    except ValueError:
        pass
out = []
if sys.argv[3] == "1":
    for k in (0, 1):
        e = dict(good[0])
        e.pop("UtcTime")
        out.append(e)
t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
for k in (5, 7):  # the sample's two rundll32 lines, one user, 10 minutes old
    e = dict(good[k])
    e["User"] = "CONTOSO\\alice"
    e["UtcTime"] = t.strftime("%Y-%m-%d %H:%M:%S.000")
    out.append(e)
open(sys.argv[2], "w").write("".join(json.dumps(e) + "\n" for e in out))
PY
}
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
rf_start_server
rf_tenant
rf_publish packs/a.rfp "$W/a.rfp" rel-a
# run NAME WITH_TIMELESS: GOT="ALERTS LATE" (correlation alerts, correlation_late)
run() {
	local i c late
	rm -rf "$W/store"
	: >"$W/events.jsonl"
	RF_AGENT_ARGS="--alerts $W/$1.alerts" rf_start_agent "dev-$1"
	rf_wait_for "s['current'] is not None and s['current']['sha256'] == '$HA'" 90 ||
		fail "$1: the pack never ran"
	mk "$W/ev" "$2"
	cat "$W/ev" >>"$W/events.jsonl"
	for i in $(seq 100); do
		grep -q '"correlation"' "$W/$1.alerts" 2>/dev/null && break
		rf_alive "$1: the correlation"
		sleep 0.1
	done
	sleep 2 # the counters reach the store
	rf_stop_agent
	c=$(grep -c '"correlation"' "$W/$1.alerts" 2>/dev/null)
	late=$("$AGENT" status --store "$W/store" --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin).get("correlation_late"))')
	GOT="${c:-0} $late"
}
run timed-only 0
[ "$GOT" = "1 0" ] || fail "timed events alone: correlation alerts and late $GOT, want 1 0"
ok "timed events 10 minutes old alone: the correlation fires, nothing late"
run with-timeless 1
[ "$GOT" = "1 0" ] ||
	fail "two timeless lines first: correlation alerts and late $GOT, want 1 0 (the timeless lines moved the timed events' clock)"
ok "two timeless lines first: the correlation still fires, nothing late"
echo "PASS"
