#!/bin/bash
# The agent's event input, against the real ringfenced and the real CLI (the 2026-12 review):
#   docs       docs/agent.md's Limits give the event line limit of include/ringfence/limits.h.
#   log spec   a mistake in a log:EVENT=PATH spec (an unknown event type, a relative PATH, a
#              trailing comma, one file twice for an EVENT, a directory or FIFO) is a usage error (exit 2) that says which, in `ringfence-agent run --events` and
#              `ringfence events --source`, never "not found" for the spec read as a file name.
#   unix       --events unix:PATH replaces only a stale socket: a regular file at PATH, or a
#              socket another process listens on, is refused with the reason and left as it was.
#   dropped    event lines the worker cannot evaluate (malformed JSON, a line over
#              RF_AGENT_EVENT_LINE_MAX) are counted in the store's events_dropped (`status`,
#              check-in health) and warned about, not lost silently.
#   alerts     alerts the --alerts destination refuses (a full disk) are warned about with
#              their count; every alert carries its rule's author.
#   follow     a followed --events FILE that is truncated is read again from its start; one
#              replaced at its path (rotated) is logged once.
# Everything runs on 127.0.0.1 (a free port); every wait is bounded; the script stops what it
# started. Usage: agent-events.sh RINGFENCE_AGENT RINGFENCED RINGFENCE
set -u
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/e2e.sh" # rf_agent_test, rf_start_server, rf_compile, rf_start_agent, rf_q...
rf_agent_test agent-events "$@" # AGENT, SERVERBIN, CLI; python3; fail(); W

# ---- the documented event line limit is the code's (docs/agent.md said 64 KiB) ------------
kib=$(awk '$1 == "#define" && $2 == "RF_EVENT_LINE_MAX" { gsub(/[(u]/, "", $3); print $3 * $5 / 1024 }' \
	"$SRC/include/ringfence/limits.h")
[ -n "$kib" ] && [ "$kib" -gt 0 ] || fail "cannot read RF_EVENT_LINE_MAX from limits.h"
grep -q "RF_AGENT_EVENT_LINE_MAX RF_EVENT_LINE_MAX" "$SRC/include/ringfence/limits.h" ||
	fail "RF_AGENT_EVENT_LINE_MAX is no longer RF_EVENT_LINE_MAX: fix this check"
tr '\n' ' ' <"$SRC/docs/agent.md" | grep -q "event line $kib KiB" ||
	fail "docs/agent.md (Limits) does not say 'event line $kib KiB'"
ok "docs/agent.md gives the event line limit of limits.h ($kib KiB)"

# ---- log spec: the exact reason, exit 2 ----------------------------------------------------
# run_rc WANT-RC PATTERN COMMAND...: COMMAND exits WANT-RC and says PATTERN on stderr
run_rc() {
	local want=$1 pat=$2 rc=0
	shift 2
	timeout 30 "$@" >"$W/out" 2>"$W/err" || rc=$?
	[ "$rc" = "$want" ] || fail "$*: exit $rc, want $want ($(cat "$W/err"))"
	grep -q -- "$pat" "$W/err" || fail "$*: stderr does not say '$pat': $(cat "$W/err")"
}
run_rc 2 "unknown event type 'websrver'" \
	"$AGENT" run --server http://127.0.0.1:9 --store "$W/spec-store" --events log:websrver=/var/log/x
run_rc 2 "each PATH must be absolute" \
	"$AGENT" run --server http://127.0.0.1:9 --store "$W/spec-store" --events log:webserver=relative/x
run_rc 2 "unknown event type 'websrver'" "$CLI" events --source log:websrver=/var/log/x
run_rc 2 "each PATH must be absolute" "$CLI" events --source log:webserver=relative/path
run_rc 2 "unknown event source 'nosuch'" "$CLI" events --source nosuch
# the review 4-5: a trailing comma, one file twice for an EVENT (each line was that many events:
# a count correlation fired on one), a directory or a FIFO as PATH (followed nothing, silently)
: >"$W/okta.log"
mkdir -p "$W/logdir"
rm -f "$W/fifo" && mkfifo "$W/fifo"
run_rc 2 "a PATH ends with ','" "$CLI" events --source "log:okta=$W/okta.log,"
run_rc 2 "are the same file for event okta" \
	"$CLI" events --source "log:okta=$W/okta.log,log:okta=$W/./okta.log"
run_rc 2 "are the same file for event okta" \
	"$AGENT" run --server http://127.0.0.1:9 --store "$W/spec-store" \
	--events "log:okta=$W/okta.log,log:okta=$W/okta.log"
run_rc 2 "is a directory" "$CLI" events --source "log:linux_sshd=$W/logdir"
run_rc 2 "is a directory" \
	"$AGENT" run --server http://127.0.0.1:9 --store "$W/spec-store" --events "log:linux_sshd=$W/logdir"
run_rc 2 "is not a regular file" "$CLI" events --source "log:linux_sshd=$W/fifo"
"$CLI" events --help | grep -q -- "--queue BYTES  *room for events" || fail "events --help: --queue unexplained"
ok "a mistaken log spec: exit 2 with the reason (unknown event type, relative PATH, trailing comma, a file twice, a directory, a FIFO)"

# ---- unix:PATH: only a stale socket is replaced ----------------------------------------------
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
ROOT=$W/repo/repository/metadata/1.root.json
echo "precious" > "$W/file"
run_rc 1 "is not a socket (a regular file)" "$AGENT" run --server http://127.0.0.1:9 \
	--store "$W/u-store" --tuf-root "$ROOT" --enroll-token x --events "unix:$W/file"
[ "$(cat "$W/file" 2>/dev/null)" = precious ] || fail "unix:PATH removed or changed a regular file"
mkdir "$W/dir"
run_rc 1 "is not a socket (a directory)" "$AGENT" run --server http://127.0.0.1:9 \
	--store "$W/u-store" --tuf-root "$ROOT" --enroll-token x --events "unix:$W/dir"
# a socket another process listens on: refused, still served
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
open(sys.argv[1] + ".ready", "w").close()
time.sleep(60)' "$W/live.sock" &
LPID=$!
APIDS+=("$LPID")
for i in $(seq 100); do [ -e "$W/live.sock.ready" ] && break; sleep 0.1; done
run_rc 1 "another process listens on this socket" "$AGENT" run --server http://127.0.0.1:9 \
	--store "$W/u-store" --tuf-root "$ROOT" --enroll-token x --events "unix:$W/live.sock"
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$W/live.sock" ||
	fail "the live socket was replaced"
kill "$LPID" 2>/dev/null
# a stale socket (bound, its process gone): replaced, the agent listens there
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$W/stale.sock"
[ -S "$W/stale.sock" ] || fail "no stale socket made"
"$AGENT" run --server http://127.0.0.1:9 --store "$W/u-store" --tuf-root "$ROOT" \
	--enroll-token x --events "unix:$W/stale.sock" >"$W/u.log" 2>&1 &
UPID=$!
APIDS+=("$UPID")
up=0
for i in $(seq 100); do
	python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' \
		"$W/stale.sock" 2>/dev/null && { up=1; break; }
	kill -0 "$UPID" 2>/dev/null || break
	sleep 0.1
done
[ "$up" = 1 ] || fail "the agent does not listen on the stale socket's path: $(cat "$W/u.log")"
kill -TERM "$UPID"
for i in $(seq 100); do kill -0 "$UPID" 2>/dev/null || break; sleep 0.1; done
ok "unix:PATH: a file, a directory and a live socket refused and kept; a stale socket replaced"

# ---- dropped: the worker's dropped lines reach status ------------------------------------
rf_compile a 1 "$SRC/examples/rules/certutil_download.yml"
HA=$(sha "$W/a.rfp")
rf_start_server
rf_tenant
rf_publish packs/a.rfp "$W/a.rfp" rel-a
{
	head -3 "$SRC/examples/events/sample.jsonl"
	echo 'this is not JSON'
	echo '{"event":"process_creation","Image":'
	python3 -c "print('{\"event\":\"process_creation\",\"CommandLine\":\"' + 'x' * (300 * 1024) + '\"}')"
	echo '[1, 2, 3]'
	head -1 "$SRC/examples/events/sample.jsonl"
} > "$W/events.jsonl"
rf_start_agent events-dev-1
rf_wait_for "s['events_dropped'] >= 4" 90
[ "$(rf_q "s['current']['sha256']")" = "$HA" ] || fail "A does not run"
[ "$(rf_q "s['events_dropped']")" = 4 ] ||
	fail "events_dropped is $(rf_q "s['events_dropped']"), want 4 (3 malformed, 1 over the line limit)"
# The text names refused lines, not only a burst: these 4 are malformed or over a limit.
"$AGENT" status --store "$W/store" | grep -q "^events dropped: 4 (not evaluated: lines refused as malformed or over a size limit, " ||
	fail "status text: $("$AGENT" status --store "$W/store" | grep dropped)"
grep -q "event lines not evaluated since the last warning" "$W/agent.log" ||
	fail "no warning about the dropped lines"
ok "worker: 3 malformed lines and 1 over the line limit counted in events_dropped and warned"
rf_stop_agent

# ---- alerts lost: an --alerts destination that refuses them is warned about -------------
# /dev/full refuses every write (ENOSPC), as a full disk would; the alerts were dropped with no
# word before. And every alert line carries its rule's author (the DRL licence, docs/sigma.md).
grep -h certutil "$SRC/examples/events/sample.jsonl" >"$W/events.jsonl"
[ -s "$W/events.jsonl" ] || fail "no certutil event in the examples"
rm -rf "$W/store"
RF_AGENT_ARGS="--alerts /dev/full" rf_start_agent events-dev-2
for i in $(seq 900); do
	grep -q "alerts could not be written to --alerts" "$W/agent.log" && break
	rf_alive "the lost alerts' warning"
	sleep 0.1
done
grep -q "alerts could not be written to --alerts since the last warning (No space left on device)" \
	"$W/agent.log" || fail "the lost alerts were not warned about"
rf_stop_agent
rm -rf "$W/store"
RF_AGENT_ARGS="--alerts $W/alerts.jsonl" rf_start_agent events-dev-3
for i in $(seq 300); do [ -s "$W/alerts.jsonl" ] && break; sleep 0.1; done
python3 -c '
import json, sys
a = json.loads(open(sys.argv[1]).readline())
sys.exit(0 if a.get("author") == "ringfence examples" else 1)' "$W/alerts.jsonl" ||
	fail "the alert has no author: $(head -1 "$W/alerts.jsonl")"
ok "alerts --alerts refused (ENOSPC) are warned about with their count; alerts carry the author"

# ---- a followed --events FILE truncated, then rotated ----------------------------------------
# Truncated (`: > FILE`, copytruncate), the agent read on at the old offset for ever and saw no
# new event; now it reads the file again from its start and says so. Rotated (renamed away, a
# new file at the path), it says so (it keeps reading the file it opened).
sleep 2 # every alert of the first lines written
n0=$(grep -c . "$W/alerts.jsonl")
[ "$n0" -ge 1 ] || fail "no alert before the truncation"
cp "$W/events.jsonl" "$W/events.once"
: >"$W/events.jsonl"
# the agent sees the file shorter than what it read (it looks once a second at the end)
for i in $(seq 300); do grep -q "truncated to 0 bytes" "$W/agent.log" && break; sleep 0.1; done
cat "$W/events.once" >>"$W/events.jsonl"
for i in $(seq 300); do [ "$(grep -c . "$W/alerts.jsonl")" -ge $((2 * n0)) ] && break; sleep 0.1; done
[ "$(grep -c . "$W/alerts.jsonl")" = $((2 * n0)) ] ||
	fail "after the truncation: $(grep -c . "$W/alerts.jsonl") alerts, want $((2 * n0))"
grep -q "truncated to 0 bytes below the .* read: reading it again from its start" \
	"$W/agent.log" || fail "the truncation was not logged"
mv "$W/events.jsonl" "$W/events.jsonl.1"
: >"$W/events.jsonl"
for i in $(seq 100); do grep -q "another file is at this path now" "$W/agent.log" && break; sleep 0.1; done
grep -q "another file is at this path now (rotated?)" "$W/agent.log" ||
	fail "the rotation was not logged"
[ "$(grep -c "another file is at this path now" "$W/agent.log")" = 1 ] ||
	fail "the rotation was logged more than once"
ok "--events FILE: read again from its start after a truncation; a rotation is logged once"
rf_stop_agent

echo "PASS"
