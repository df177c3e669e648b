#!/bin/bash
# The agent's alerts and their counters, against the real ringfenced and the real CLI:
#   times      an event whose time field does not parse ("03/12/2026 10:00") is not taken
#              silently: the worker counts it (only when the pack has correlations: without
#              any, times are never read) and the log says so at most once a minute, with the
#              field and a sample value.
#   status     `ringfence-agent status` (text and --json) shows those times and the alerts the
#              --alerts destination refused, kept in the store across a restart; and the events
#              the correlations dropped as late or in the future, the matches without their
#              group-by field and those of events without a time (warned about once a minute).
#   rotation   a rotated --alerts FILE (renamed, a new one created; or renamed, then SIGHUP) is
#              reopened: new alerts go to the file at the path, the old file keeps the old ones,
#              none is lost, and the worker is not restarted.
#   quiet log  an upper-bounded correlation window ("fewer than 2 in 10 s") is decided as time
#              passes, with no event after it (review 4-1).
# Everything runs on 127.0.0.1 (a free port); every wait is bounded; the script stops what it
# started. Usage: agent-alerts.sh RINGFENCE_AGENT RINGFENCED RINGFENCE
set -u
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/e2e.sh" # rf_agent_test, rf_start_server, rf_compile, rf_start_agent, rf_q...
rf_agent_test agent-alerts "$@" # AGENT, SERVERBIN, CLI; python3; fail(); W

# wait_lines FILE N SECONDS: FILE has at least N lines (the agent must stay up meanwhile)
wait_lines() {
	local i
	for i in $(seq $(($3 * 10))); do
		[ "$(grep -c . "$1" 2>/dev/null || true)" -ge "$2" ] 2>/dev/null && return 0
		rf_alive "$2 lines in $1"
		sleep 0.1
	done
	return 1
}
# ev USER TIME: a certutil process_creation event of USER at TIME (the UtcTime field)
ev() {
	printf '{"event":"process_creation","Image":"C:\\\\Windows\\\\System32\\\\certutil.exe",'
	printf '"User":"%s","UtcTime":"%s"}\n' "$1" "$2"
}

cat >"$W/certutil.yml" <<'YML'
title: certutil
id: 7c0c1a52-0000-4000-8000-0000000000c1
name: certutil_rule
author: ringfence tests
level: medium
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|endswith: '\certutil.exe'
  condition: selection
YML
cat >"$W/corr.yml" <<'YML'
title: certutil twice
id: corr-certutil-twice
correlation:
  type: event_count
  rules: [certutil_rule]
  group-by: [User]
  timespan: 1m
  condition:
    gte: 2
generate: true
YML
rf_compile a 1 "$W/certutil.yml"
rf_compile b 2 "$W/certutil.yml" "$W/corr.yml"
HB=$(sha "$W/b.rfp")
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
rf_start_server
rf_tenant

# ---- times: a pack without correlations never reads them ----------------------------------
rf_publish packs/a.rfp "$W/a.rfp" rel-a
: >"$W/events.jsonl"
RF_AGENT_ARGS="--alerts $W/alerts.jsonl" rf_start_agent alerts-dev-1
rf_wait_for "s['current'] is not None" 90 || fail "pack A never ran"
{ ev bob "03/12/2026 10:00"; ev bob "03/12/2026 10:01"; } >>"$W/events.jsonl"
wait_lines "$W/alerts.jsonl" 2 60 || fail "no alerts from pack A"
sleep 1.5 # a stats report (at most once a second) would have said it
grep -q "time that does not parse" "$W/agent.log" &&
	fail "a pack without correlations read the events' times"
ok "times: a pack without correlations does not read them"

# ---- times: with correlations, unparsable times are counted and warned about once ----------
rf_publish packs/b.rfp "$W/b.rfp" rel-b
rf_wait_for "s['current'] is not None and s['current']['sha256'] == '$HB'" 90 ||
	fail "pack B never ran"
for i in $(seq 300); do [ "$(grep -c "worker .*: loaded" "$W/agent.log")" -ge 2 ] && break; sleep 0.1; done
n0=$(grep -c . "$W/alerts.jsonl")
{ ev bob "03/12/2026 10:00"; ev carol "2026-12-03 10:00:00"; ev bob '03/12/2026 \u0001'; } >>"$W/events.jsonl"
for i in $(seq 300); do grep -q "time that does not parse" "$W/agent.log" && break; rf_alive "the warning"; sleep 0.1; done
grep -q 'have a time that does not parse (e.g. UtcTime "03/12/2026 10:00"): their correlations used the arrival time instead' \
	"$W/agent.log" || fail "no warning naming the field and a sample: $(grep 'does not parse' "$W/agent.log")"
wait_lines "$W/alerts.jsonl" $((n0 + 3)) 60 || fail "pack B's alerts missing"
ev dave "yesterday" >>"$W/events.jsonl"
wait_lines "$W/alerts.jsonl" $((n0 + 4)) 60 || fail "pack B's alerts missing"
sleep 1.5
[ "$(grep -c "time that does not parse" "$W/agent.log")" = 1 ] ||
	fail "warned more than once a minute: $(grep -c "time that does not parse" "$W/agent.log")"
ok "times: unparsable times counted and warned about once a minute with the field and a sample"
rf_stop_agent
[ "$(rf_q "s['time_unparsed']")" = 3 ] ||
	fail "status --json time_unparsed is '$(rf_q "s['time_unparsed']")', want 3"
"$AGENT" status --store "$W/store" | grep -q "^event times unparsed: 3 " ||
	fail "status text: $("$AGENT" status --store "$W/store" | grep -i unparsed)"
ok "status: the unparsable times counted, kept in the store after the agent stopped"

# ---- status: alerts the --alerts destination refused -----------------------------------------
# /dev/full refuses every write (ENOSPC), as a full disk would: the log said how many, status
# did not. Two alerts of two users (no correlation fires), both lost.
{ ev ann "2026-12-03 10:00:00"; ev ben "2026-12-03 10:00:01"; } >"$W/events.jsonl"
RF_AGENT_ARGS="--alerts /dev/full" rf_start_agent alerts-dev-1
for i in $(seq 600); do
	grep -q "alerts could not be written to --alerts" "$W/agent.log" && break
	rf_alive "the lost alerts' warning"
	sleep 0.1
done
rf_wait_for "s['alerts_lost'] >= 1" 30 || fail "status --json: no alerts_lost while the agent runs"
sleep 1.5 # both reported (the worker reports at most once a second)
rf_stop_agent
[ "$(rf_q "s['alerts_lost']")" = 2 ] ||
	fail "status --json alerts_lost is '$(rf_q "s['alerts_lost']")', want 2"
"$AGENT" status --store "$W/store" | grep -q "^alerts lost: 2 " ||
	fail "status text: $("$AGENT" status --store "$W/store" | grep -i lost)"
[ "$(rf_q "s['time_unparsed']")" = 3 ] || fail "time_unparsed changed across a restart"
ok "status: alerts --alerts refused counted (text and JSON), kept after the agent stopped"

# ---- correlations' drops: late, future, no group-by field, no time (review 5-3, 5-2) ---------
# A log whose clock or time zone is wrong made its correlations dead with no word anywhere: the
# events dropped as late or in the future and the matches without their group-by field are
# counted, warned about and shown by status; a match of an event without a time is shown too.
at() { date -u -d "$1" '+%Y-%m-%d %H:%M:%S'; }
{
	ev erin "$(at '-2 min')"
	ev ivan "$(at '-1 min')"    # a second time confirms the log's clock (docs/sigma.md)
	ev frank "$(at '+1 hour')"  # a shipper writing local time as UTC, an hour ahead: future
	ev gina "$(at '-20 min')"   # 19 minutes before the log's newest time: late
	printf '{"event":"process_creation","Image":"C:\\\\x\\\\certutil.exe","UtcTime":"%s"}\n' \
		"$(at '-30 sec')"   # no User, the group-by field: skipped
	printf '{"event":"process_creation","Image":"C:\\\\x\\\\certutil.exe","User":"hank"}\n'
} >"$W/events.jsonl"
RF_AGENT_ARGS="--alerts $W/alerts.jsonl" rf_start_agent alerts-dev-1
for i in $(seq 600); do
	grep -q "correlations dropped" "$W/agent.log" && break
	rf_alive "the correlations' warning"
	sleep 0.1
done
grep -q "since the last warning correlations dropped 1 events too late (older than the log's newest time by over 300 s) and 1 in the future (past this host's clock by over 300 s: a log's clock or time zone wrong?), and did not count 1 matches without their group-by field" \
	"$W/agent.log" || fail "no warning of the correlations' drops: $(grep 'correlations dropped' "$W/agent.log")"
sleep 1.5 # a later report would have said more
rf_stop_agent
for k in correlation_late correlation_future correlation_skipped time_missing; do
	[ "$(rf_q "s['$k']")" = 1 ] || fail "status --json $k is '$(rf_q "s['$k']")', want 1"
done
st=$("$AGENT" status --store "$W/store")
for l in "^event times missing: 1 " "^correlation events late: 1 " "^correlation events future: 1 " \
	"^correlation matches skipped: 1 "; do
	grep -q "$l" <<<"$st" || fail "status text has no '$l': $(grep -i correlation <<<"$st")"
done
grep -q '"correlation_late": *1' "$W/store/state.json" || fail "state.json has no correlation_late"
ok "status: correlations' late, future, skipped and timeless events counted, warned, kept"

# ---- rotation: a rotated --alerts FILE is followed ----------------------------------------
# logrotate's default renames FILE and creates a new one: the agent wrote into the renamed file
# for ever. Now it looks once a second (and at SIGHUP), reopens the path and passes the new file
# to the worker, which is not restarted (not a crash; its correlation state kept).
rm -f "$W/alerts.jsonl"*
{ ev u1 "2026-12-03 10:00:00"; ev u2 "2026-12-03 10:00:01"; } >"$W/events.jsonl"
RF_AGENT_ARGS="--alerts $W/alerts.jsonl" rf_start_agent alerts-dev-1
wait_lines "$W/alerts.jsonl" 2 60 || fail "no alerts before the rotation"
loads=$(grep -c "worker .*: loaded" "$W/agent.log")
mv "$W/alerts.jsonl" "$W/alerts.jsonl.1"
: >"$W/alerts.jsonl" # logrotate's create
for i in $(seq 100); do grep -q "writing alerts to the new --alerts" "$W/agent.log" && break; sleep 0.1; done
grep -q "writing alerts to the new --alerts" "$W/agent.log" || fail "the rotation was not followed"
{ ev u3 "2026-12-03 10:00:02"; ev u4 "2026-12-03 10:00:03"; } >>"$W/events.jsonl"
wait_lines "$W/alerts.jsonl" 2 60 || fail "the new file at the path got no alerts"
sleep 1
[ "$(grep -c . "$W/alerts.jsonl.1")" = 2 ] || fail "the rotated file: $(grep -c . "$W/alerts.jsonl.1") alerts, want its 2"
[ "$(grep -c . "$W/alerts.jsonl")" = 2 ] || fail "the new file: $(grep -c . "$W/alerts.jsonl") alerts, want 2"
# renamed with nothing created, then SIGHUP (logrotate's postrotate): the agent makes the file
mv "$W/alerts.jsonl" "$W/alerts.jsonl.2"
kill -HUP "$APID"
for i in $(seq 100); do [ "$(grep -c "writing alerts to the new --alerts" "$W/agent.log")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c "writing alerts to the new --alerts" "$W/agent.log")" = 2 ] ||
	fail "the second rotation (rename, SIGHUP) was not followed"
ev u5 "2026-12-03 10:00:04" >>"$W/events.jsonl"
wait_lines "$W/alerts.jsonl" 1 60 || fail "no alert in the file the agent made after the rename"
sleep 1
rf_alive "after SIGHUP"
[ "$(grep -c . "$W/alerts.jsonl.2")" = 2 ] && [ "$(grep -c . "$W/alerts.jsonl")" = 1 ] &&
	[ "$(grep -c . "$W/alerts.jsonl.1")" = 2 ] || fail "alerts across the rotations: $(wc -l "$W"/alerts.jsonl*)"
[ "$(stat -c %a "$W/alerts.jsonl")" = 600 ] || fail "the file the agent made is not 0600"
[ "$(grep -c "worker .*: loaded" "$W/agent.log")" = "$loads" ] || fail "the worker was restarted"
[ "$(rf_q "s['crashes']")" = 0 ] || fail "a rotation counted as a crash"
ok "rotation: alerts go to the new file at the path (rename + create, or rename + SIGHUP); the old files keep theirs; none lost; the worker not restarted"
rf_stop_agent

# ---- quiet log: a "fewer than 2 in 10 s" window is decided without another event --------------
# The worker decided an upper-bounded window only when a later event moved the stream's clock
# (review 4-1): on a quiet log, never. bob's one certutil 20 minutes ago, then two other lines that
# move the stream's clock to 2 s short of the decision (its end + 5 min); nothing after them.
cat >"$W/few.yml" <<'YML'
title: certutil once
id: corr-certutil-few
correlation:
  type: event_count
  rules: [certutil_rule]
  group-by: [User]
  timespan: 10s
  condition:
    lt: 2
YML
rf_compile c 3 "$W/certutil.yml" "$W/few.yml"
HC=$(sha "$W/c.rfp")
rm -f "$W/alerts.jsonl"*
: >"$W/events.jsonl"
rf_publish packs/c.rfp "$W/c.rfp" rel-c
RF_AGENT_ARGS="--alerts $W/alerts.jsonl" rf_start_agent alerts-dev-1
rf_wait_for "s['current'] is not None and s['current']['sha256'] == '$HC'" 90 ||
	fail "pack C never ran"
# the lines go to pack C's worker: wait until it has loaded
for i in $(seq 300); do
	wp=$(grep -o "worker [0-9]*: loading $HC" "$W/agent.log" | tail -1 | cut -d' ' -f2)
	[ -n "$wp" ] && grep -q "worker $wp loaded" "$W/agent.log" && break
	rf_alive "pack C's worker"
	sleep 0.1
done
t0=$(($(date +%s) - 1200))
at() { date -u -d "@$1" '+%Y-%m-%d %H:%M:%S'; }
other() {
	printf '{"event":"process_creation","Image":"C:\\\\Windows\\\\notepad.exe","User":"x",'
	printf '"UtcTime":"%s"}\n' "$1"
}
{ ev bob "$(at $t0)"; other "$(at $((t0 + 240)))"; other "$(at $((t0 + 308)))"; } >>"$W/events.jsonl"
wait_lines "$W/alerts.jsonl" 1 30 ||
	fail "the quiet log's window was never decided (no alert in 30 s)"
grep -q '"correlation":"corr-certutil-few".*"count":1.*"group":{"User":"bob"}' "$W/alerts.jsonl" ||
	fail "the alert: $(cat "$W/alerts.jsonl")"
rf_alive "after the quiet log's alert"
ok "quiet log: an upper-bounded window is decided as time passes, with no event after it"
rf_stop_agent

echo "PASS"
