#!/bin/bash
# What ringfence-agent believes of a server that is wrong or compromised, against a scripted
# fake server (fake-server.py) that serves a real signed TUF repository:
#   ring      started with --ring broad, the agent is told "401", enrolls again and the reply
#             says ring canary: it keeps checking the signed schedule against broad (opened a
#             day later than canary) and takes nothing (P6); restarted with --ring broad it
#             still refuses; restarted without --ring the server's ring is trusted (documented).
#   slash     --repo-url with a trailing slash: the agent asks for /repo/metadata/..., not //.
#   403       a check-in answered 403 "this credential does not belong to this device": the
#             agent enrolls again with its token and checks in with the new credential; when
#             every new credential is refused too, the re-enrollments are spaced by the backoff.
#   no token  the server refuses the stored credential and the agent has no enrollment token
#             (the reviewer's case: state.json truncated, kept aside): exit 2 at start, saying so.
#   messages  the status and error text of a refused check-in; a server that is down; a
#             repository without timestamp.json, named.
#   options   run --poll 0 / --attempts 0: exit 2 with the range, which excludes 0.
# Everything runs on 127.0.0.1 (free ports); every wait is bounded; the script stops what it
# started. Usage: agent-server-trust.sh RINGFENCE_AGENT RINGFENCE
set -u
AGENT=$1 CLI=$2
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "SKIP: python3 is needed for the fake server"; exit 77; }

. "$SRC/tests/lib/e2e.sh" # rf_e2e_init, ok (the fake server is SPID: stopped at exit)
rf_e2e_init agent-server-trust
fail() {
	echo "FAIL: $*"
	rf_agent_log_tail 30
	echo "---- fake server log (tail)"; tail -20 "$W/fake.log" 2>/dev/null
	exit 1
}

# ---- a signed repository: canary opens now, broad a day later --------------------------------
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
mkdir -p "$W/rules"
cp "$SRC/examples/rules/certutil_download.yml" "$W/rules/"
"$CLI" content compile "$W/rules" -o "$W/a.rfp" --seq 1 >/dev/null 2>&1 || fail "compile"
now=$(date +%s)
custom="{\"ringfence\":{\"release\":\"rel-a\",\"schedule\":[
 {\"ring\":\"canary\",\"not_before\":0,\"ramp\":[{\"after\":0,\"percent\":100}]},
 {\"ring\":\"broad\",\"not_before\":$((now + 86400)),\"ramp\":[{\"after\":0,\"percent\":100}]}]}}"
"$CLI" repo add "$W/repo" "$W/a.rfp" --name packs/a.rfp --custom "$custom" >/dev/null ||
	fail "repo add"
"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish"
HA=$(sha256sum "$W/a.rfp" | cut -d' ' -f1)
LA=$(stat -c %s "$W/a.rfp")
ROOT=$W/repo/repository/metadata/1.root.json
head -3 "$SRC/examples/events/sample.jsonl" > "$W/events.jsonl"

# config RINGS CHECKINS: what the fake server answers from now on (JSON lists), counting its
# enrollments and check-ins from 1 again
PHASE=0
config() {
	PHASE=$((PHASE + 1))
	printf '{"phase": %d, "rings": %s, "checkins": %s, "release": {"target": "packs/a.rfp", "sha256": "%s", "length": %s}}\n' \
		"$PHASE" "$1" "$2" "$HA" "$LA" > "$W/cfg.tmp" && mv "$W/cfg.tmp" "$W/cfg.json"
}
config '["broad"]' '[200]'
: > "$W/fake.log"
python3 "$SRC/tests/agent/fake-server.py" "$W/port" "$W/fake.log" "$W/repo/repository" \
	"$W/cfg.json" 2>"$W/fake.err" &
SPID=$!
for i in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
[ -s "$W/port" ] || fail "the fake server did not start: $(cat "$W/fake.err")"
FURL=http://127.0.0.1:$(cat "$W/port")

# agent STORE ARGS...: run the agent in the background (log appended to $W/agent.log)
agent() {
	local store=$1
	shift
	"$AGENT" run --server "$FURL" --store "$store" --device-id trust-dev-1 --tuf-root "$ROOT" \
		--poll 1 --probation 3600 --probation-events 0 --events "$W/events.jsonl" "$@" \
		>>"$W/agent.log" 2>&1 &
	APID=$!
}
# wait_file FILE PATTERN SECONDS [FROM-LINE]
wait_file() {
	local deadline=$((SECONDS + $3))
	while [ $SECONDS -lt $deadline ]; do
		tail -n +"${4:-1}" "$1" | grep -q -- "$2" && return 0
		sleep 0.2
	done
	return 1
}
lines() { wc -l < "$1"; }
current() { "$AGENT" status --store "$1" --json 2>/dev/null |
	python3 -c "import json,sys; s=json.load(sys.stdin); print((s['current'] or {}).get('sha256', 'none'))"; }

# ---- 1. ring: a server that moves the device to an earlier ring ------------------------------
# enrollment 1 says broad, the 3rd check-in is a 401, enrollment 2 says canary
config '["broad", "canary"]' '[200, 200, 401, 200]'
agent "$W/s1" --ring broad --enroll-token rfe_test --repo-url "$FURL/repo/"
wait_file "$W/fake.log" "^ENROLL 2 canary" 60 || fail "the agent did not enroll again after a 401"
m=$(lines "$W/agent.log")
wait_file "$W/agent.log" "offer of packs/a.rfp refused: the signed schedule does not admit this device (ring broad" 60 "$m" ||
	fail "after the server said canary, the offer was not checked against ring broad"
grep -q "server put this device in ring 'canary', but this agent was given ring 'broad'" \
	"$W/agent.log" || fail "no warning about the server's other ring"
grep -q "check-in: the server does not accept this device's credential (HTTP 401: unknown device: enroll first): enrolling again" \
	"$W/agent.log" || fail "the re-enrollment is not logged with its status"
grep -q "installed packs/a.rfp" "$W/agent.log" && fail "installed a day early (ring canary)"
ok "the server said 401 and then ring canary: the agent kept ring broad and took nothing"
# slash: the trailing slash of --repo-url is not doubled
grep -q "^GET /repo/metadata/timestamp.json 200" "$W/fake.log" ||
	fail "timestamp.json not fetched at /repo/metadata/"
grep -q "^GET /repo//" "$W/fake.log" && fail "the agent asked for a path with //"
ok "--repo-url with a trailing slash: /repo/metadata/timestamp.json"
rf_stop_agent
# restarted with --ring broad: the store says canary (the server's), the operator's ring wins
m=$(lines "$W/agent.log")
agent "$W/s1" --ring broad
wait_file "$W/agent.log" "server put this device in ring 'canary' at enrollment, but this agent was given ring 'broad'" 30 "$m" ||
	fail "no warning at start about the stored ring"
wait_file "$W/agent.log" "offer of packs/a.rfp refused: .*(ring broad" 60 "$m" ||
	fail "after a restart, the offer was not checked against ring broad"
rf_stop_agent
[ "$(current "$W/s1")" = none ] || fail "a pack runs: $(current "$W/s1")"
ok "restarted with --ring broad: still ring broad"
# restarted without --ring: the server's ring (canary, kept in the store) is trusted
m=$(lines "$W/agent.log")
agent "$W/s1"
wait_file "$W/agent.log" "installed packs/a.rfp $HA" 60 "$m" ||
	fail "without --ring the server's ring was not used"
rf_stop_agent
ok "without --ring: the server's ring canary is trusted, the release taken (documented)"

# ---- 2. 403 "this credential does not belong to this device": enroll again -------------------
config '["canary"]' '[200, 403, 200]'
: > "$W/fake.log"
m=$(lines "$W/agent.log")
agent "$W/s2" --ring canary --enroll-token rfe_test
wait_file "$W/fake.log" "^CHECKIN 3 200 rfd_0*2$" 60 ||
	fail "no check-in with the new credential after a 403"
grep -q "^ENROLL 2 " "$W/fake.log" || fail "no second enrollment"
wait_file "$W/agent.log" "HTTP 403: this credential does not belong to this device): enrolling again" 5 "$m" ||
	fail "the 403 is not logged with its status and text"
rf_stop_agent
ok "403 'not this device': enrolled again with the token, checked in with the new credential"
# every credential refused: each refusal leads to one enrollment, spaced by the backoff
config '["canary"]' '[200, 401]'
: > "$W/fake.log"
agent "$W/s3" --ring canary --enroll-token rfe_test
wait_file "$W/fake.log" "^CHECKIN 2 401" 60 || fail "no refused check-in"
sleep 6
n=$(grep -c "^ENROLL" "$W/fake.log")
rf_stop_agent
[ "$n" -ge 2 ] || fail "no re-enrollment after the 401 ($n enrollments)"
[ "$n" -le 4 ] || fail "$n enrollments within 6 s of the first refusal: not backed off"
ok "every credential refused: $n enrollments in 6 s (backed off, not a loop)"

# ---- 3. no token, and the server refuses the credential: exit 2 at start ---------------------
# the reviewer's case: state.json truncated (kept aside), the credential file left
config '["canary"]' '[401]'
: > "$W/s2/state.json"
m=$(lines "$W/agent.log")
agent "$W/s2" --ring canary
for i in $(seq 300); do kill -0 "$APID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$APID" 2>/dev/null && fail "the agent keeps running without a credential or a token"
rc=0
wait "$APID" || rc=$?
APID=
[ "$rc" = 2 ] || fail "exit $rc, want 2"
tail -n +"$m" "$W/agent.log" | grep -q "does not accept this device's credential (HTTP 401: .*) and there is no enrollment token" ||
	fail "no clear message"
ok "no enrollment token and the credential refused at start: exit 2, said so"

# ---- 4. messages -----------------------------------------------------------------------------
config '["canary"]' '[500]'
m=$(lines "$W/agent.log")
agent "$W/s4" --ring canary --enroll-token rfe_test --repo-url "$FURL/repo/nothing"
wait_file "$W/agent.log" "check-in: the server answered HTTP 500: storage: the database is away" 60 "$m" ||
	fail "a refused check-in without its status and text"
rf_stop_agent
config '["canary"]' '[200]'
m=$(lines "$W/agent.log")
agent "$W/s4" --ring canary --repo-url "$FURL/repo/nothing"
wait_file "$W/agent.log" "TUF: cannot refresh the metadata from $FURL/repo/nothing/metadata/ (for packs/a.rfp): not found: timestamp.json: download failed: HTTP 404" 60 "$m" ||
	fail "a missing timestamp.json is not named"
rf_stop_agent
# a server that is down: a port nothing listens on
DOWN=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
m=$(lines "$W/agent.log")
"$AGENT" run --server "http://127.0.0.1:$DOWN" --store "$W/s5" --device-id trust-dev-1 \
	--tuf-root "$ROOT" --enroll-token rfe_test --poll 1 >>"$W/agent.log" 2>&1 &
APID=$!
wait_file "$W/agent.log" "enroll: cannot reach the server at http://127.0.0.1:$DOWN: connection refused" 30 "$m" ||
	fail "a server that is down is not said so"
rf_stop_agent
ok "messages: HTTP 500 with its text; timestamp.json named; cannot reach the server"

# ---- 5. options ------------------------------------------------------------------------------
for o in poll attempts; do
	rc=0
	"$AGENT" run --server "$FURL" --store "$W/s6" --"$o" 0 >"$W/opt.out" 2>&1 || rc=$?
	[ "$rc" = 2 ] || fail "--$o 0: exit $rc, want 2"
	grep -q -- "--$o: '0' is not a number in 1\.\." "$W/opt.out" ||
		fail "--$o 0: no message with the range: $(cat "$W/opt.out")"
done
ok "--poll 0 and --attempts 0: exit 2, the range says 1.."
echo "PASS"
