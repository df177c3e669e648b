#!/bin/bash
# The worker's batches (rf_engine_eval_batch, docs/agent.md "Evaluation") against the real
# ringfenced and the real CLI: the agent's --alerts for a file of 300 event lines (more than
# RF_ENGINE_BATCH_MAX, with malformed lines, a value over RF_EVENT_VALUE_MAX, a line over the
# line limit, CRLF and blank lines, one read ending inside a line and the rest of the file
# appended later, two correlations) are, in order, the alerts of `ringfence content eval` for the
# same file, and the same again one event at a time (RINGFENCE_WORKER_BATCH=1); the worker's
# counters (events, lines dropped) are those of one event at a time. So batching that dropped,
# reordered or duplicated an alert, or miscounted an event, fails here.
# Everything runs on 127.0.0.1 (a free port); every wait is bounded; the script stops what it
# started. Usage: agent-batch.sh RINGFENCE_AGENT RINGFENCED RINGFENCE
set -u
AGENT=$1 SERVERBIN=$2 CLI=$3
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read JSON"; exit 77; }
fail() {
	echo "FAIL: $*"
	rf_agent_log_tail 40
	exit 1
}
. "$SRC/tests/lib/e2e.sh" # rf_e2e_init, rf_start_server, rf_compile, rf_start_agent, rf_q...
rf_e2e_init agent-batch

# Two correlations (unbounded conditions only: no window waits on the wall clock, so the agent's
# alerts do not depend on how fast it reads): the rundll32 rule twice for one user in a minute,
# and the encoded PowerShell then the Office-shell rule for one user.
cat >"$W/corr-count.yml" <<'YML'
title: rundll32 from user dirs twice
id: corr-rundll32-twice
correlation:
  type: event_count
  rules: [009e985b-1569-42b5-8b38-8cdbf3ae6384]
  group-by: [User]
  timespan: 1m
  condition:
    gte: 2
generate: true
YML
cat >"$W/corr-temporal.yml" <<'YML'
title: encoded powershell and an office shell
id: corr-ps-office
correlation:
  type: temporal
  rules: [fd344508-58ff-4513-a480-9689d7960eb7, b31fed40-54ce-465b-8bc0-ecaa50d9029b]
  group-by: [User]
  timespan: 1m
generate: true
YML
rf_compile a 1 "$SRC"/examples/rules/*.yml "$W/corr-count.yml" "$W/corr-temporal.yml"
HA=$(sha "$W/a.rfp")
"$AGENT" manifest >"$W/manifest.json" || fail "agent manifest"

# The events: the examples' lines over and over with their own times moved on by a second each
# and one of three users; every 9th line malformed, CRLF and blank lines; line 100 carries a
# value over RF_EVENT_VALUE_MAX (refused whole: dropped), line 101 is over the line limit.
python3 - "$SRC/examples/events/sample.jsonl" "$W/all.jsonl" <<'PY'
import json, sys, datetime
src = [l for l in open(sys.argv[1]) if l.strip()]
good = []
for l in src:
    try:
        good.append(json.loads(l))
    except ValueError:
        pass
t0 = datetime.datetime(2026, 12, 3, 10, 0, 0)
users = ["CONTOSO\\alice", "CONTOSO\\bob", "CONTOSO\\carol"]
out = []
for k in range(300):
    if k % 9 == 4:
        out.append('{"event":"process_creation","Image": oops')
        continue
    if k == 100:
        out.append(json.dumps({"event": "process_creation", "UtcTime": "2026-12-03 09:59:00",
                               "Image": "C:\\Windows\\System32\\certutil.exe",
                               "CommandLine": "certutil -urlcache -f http://x/ " + "a" * (130 * 1024)}))
        continue
    if k == 101:
        out.append(json.dumps({"event": "process_creation", "CommandLine": "x" * (300 * 1024)}))
        continue
    e = dict(good[k % len(good)])
    e["UtcTime"] = (t0 + datetime.timedelta(seconds=k)).strftime("%Y-%m-%d %H:%M:%S.000")
    e["User"] = users[(k // 5) % 3]
    line = json.dumps(e)
    if k % 13 == 0:
        line += "\r"
    out.append(line)
    if k % 17 == 0:
        out.append("")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
[ -s "$W/all.jsonl" ] || fail "no events made"
size=$(stat -c %s "$W/all.jsonl")
[ "$size" -gt $((2 * 256 * 1024)) ] || fail "the events file ($size bytes) is not over two reads"
# the first part ends inside a line: the agent reads it, then the rest is appended
cut_at=$((size - 20000))
head -c "$cut_at" "$W/all.jsonl" >"$W/part1"
tail -c +$((cut_at + 1)) "$W/all.jsonl" >"$W/part2"
[ "$(tail -c 1 "$W/part1" | od -An -c | tr -d ' ')" != '\n' ] || fail "the cut is at a line's end"

# What content eval says for the same file: the order of rule and correlation alerts.
"$CLI" content eval "$W/a.rfp" --manifest "$W/manifest.json" "$W/all.jsonl" >"$W/eval.out" \
	2>"$W/eval.err"
python3 - "$W/eval.out" >"$W/want" <<'PY' || fail "content eval: $(tail -3 "$W/eval.err")"
import json, sys
for l in open(sys.argv[1]):
    a = json.loads(l)
    print(("rule " + a["rule"]) if "rule" in a else ("correlation " + a["correlation"]))
PY
grep -q "^correlation corr-rundll32-twice" "$W/want" || fail "content eval: no count correlation"
grep -q "^correlation corr-ps-office" "$W/want" || fail "content eval: no temporal correlation"
nwant=$(grep -c . "$W/want")
[ "$nwant" -gt 100 ] || fail "content eval gave only $nwant alerts"
events=$(grep -o '[0-9]* events' "$W/eval.err" | head -1 | cut -d' ' -f1)
[ -n "$events" ] || fail "content eval's summary: $(tail -1 "$W/eval.err")"

"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
rf_start_server
rf_tenant
rf_publish packs/a.rfp "$W/a.rfp" rel-a

# run_agent NAME: the agent on part1, then part2 appended; $W/NAME.alerts its alerts, reduced to
# $W/NAME.got as content eval's are; waits for every alert and for the counters.
run_agent() {
	local name=$1 i
	rm -rf "$W/store" "$W/$1.alerts"
	cp "$W/part1" "$W/events.jsonl"
	RF_AGENT_ARGS="--alerts $W/$name.alerts" rf_start_agent "batch-$name"
	rf_wait_for "s['current'] is not None and s['current']['sha256'] == '$HA'" 90 ||
		fail "$name: the pack never ran"
	# the first part is read (its last, cut line waits for the rest)
	for i in $(seq 600); do
		[ "$(grep -c . "$W/$name.alerts" 2>/dev/null || echo 0)" -ge $((nwant / 2)) ] && break
		rf_alive "$name: the first part's alerts"
		sleep 0.1
	done
	sleep 1
	cat "$W/part2" >>"$W/events.jsonl"
	for i in $(seq 600); do
		[ "$(grep -c . "$W/$name.alerts" 2>/dev/null || echo 0)" -ge "$nwant" ] && break
		rf_alive "$name: every alert"
		sleep 0.1
	done
	sleep 2 # an alert too many would be written by now; and the counters reported
	rf_stop_agent
	python3 - "$W/$name.alerts" >"$W/$name.got" <<'PY' || fail "$name: the alerts are not JSON lines"
import json, sys
for l in open(sys.argv[1]):
    a = json.loads(l)
    print(("rule " + a["rule"]) if "rule" in a else ("correlation " + a["correlation"]))
PY
}

# st NAME: "events alerts dropped" of the store's state.json after the run NAME
st() {
	python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(s["events"], s["alerts"], s.get("events_dropped", 0))' "$W/store/state.json"
}
# 300 lines: 33 malformed (every 9th), a value over the limit and a line over the limit dropped
want_counts="265 $nwant 35"

RINGFENCE_WORKER_BATCH=1 run_agent one
diff "$W/want" "$W/one.got" >"$W/one.diff" ||
	fail "one event at a time: the alerts differ from content eval's: $(head -20 "$W/one.diff")"
[ "$(st)" = "$want_counts" ] ||
	fail "one event at a time: events, alerts, dropped: $(st), want $want_counts"
ok "one event at a time: the $nwant alerts of content eval, in its order; counters $want_counts"
run_agent batch
diff "$W/want" "$W/batch.got" >"$W/batch.diff" ||
	fail "batches: the alerts differ from content eval's: $(head -20 "$W/batch.diff")"
[ "$(st)" = "$want_counts" ] || fail "batches: events, alerts, dropped: $(st), want $want_counts"
ok "batches: the $nwant alerts of content eval, in its order; counters $want_counts"
echo "PASS"
