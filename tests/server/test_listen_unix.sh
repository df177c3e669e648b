#!/bin/bash
# ringfenced --listen unix:PATH (src/server/http.c, listen_unix): the socket a proxy on the same
# host uses instead of TCP (dist/ringfenced@.service, dist/nginx/ringfenced.conf). Checks: it
# serves the device and operator API on the socket, mode 0660; a second server on the same
# socket is refused while the first serves; a socket left by a killed server is replaced at the
# next start; a clean stop removes the socket; a file that is not a socket is never replaced (it
# stays byte for byte); options that need a TCP address are refused. Every wait is bounded;
# everything started is stopped.
# Usage: test_listen_unix.sh RINGFENCED
set -u
SERVERBIN=$1
W=$(mktemp -d /tmp/rf-unix-XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "---- server log (tail)"; tail -20 "$W/server.log" 2>/dev/null; exit 1; }
ok() { echo "ok: $*"; }
SOCK=$W/rf.sock

# start [ARGS...]: ringfenced on $SOCK; waits for its "listening on" line (bounded).
start() {
	local lines
	touch "$W/server.log"
	lines=$(wc -l <"$W/server.log")
	"$SERVERBIN" --db "$W/db" --listen "unix:$SOCK" "$@" >>"$W/server.log" 2>&1 &
	PID=$!
	PIDS+=("$PID")
	for _ in $(seq 100); do
		tail -n +$((lines + 1)) "$W/server.log" | grep -q "listening on unix:$SOCK" && return 0
		kill -0 "$PID" 2>/dev/null || fail "ringfenced exited at start"
		sleep 0.1
	done
	fail "ringfenced did not start on $SOCK"
}
get() { curl -s --max-time 5 --unix-socket "$SOCK" -o "$W/body" -w '%{http_code}' "$@"; }

start --init
[ -S "$SOCK" ] || fail "no socket at $SOCK"
[ "$(stat -c %a "$SOCK")" = 660 ] || fail "socket mode $(stat -c %a "$SOCK"), want 660"
[ "$(get http://localhost/metrics)" = 200 ] || fail "GET /metrics over the socket"
grep -q '^ringfence_build_info' "$W/body" || fail "no metrics in the reply"
code=$(get -H 'Content-Type: application/json' -d '{}' http://localhost/v1/checkin)
[ "$code" = 400 ] && grep -q '"device_id"' "$W/body" || fail "check-in over the socket: HTTP $code"
TOK=$(cat "$W/db.admin-token")
code=$(get -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
	-d '{"name":"acme"}' http://localhost/v1/admin/tenants)
[ "$code" = 201 ] || fail "operator request over the socket: HTTP $code $(cat "$W/body")"
ok "device and operator API served on unix:$SOCK (mode 0660)"

# A second server on the same socket: refused, the first still serves.
FIRST=$PID
if timeout 20 "$SERVERBIN" --db "$W/db2" --init --listen "unix:$SOCK" >"$W/second.log" 2>&1; then
	fail "a second ringfenced took a socket another serves"
fi
grep -q "serves that socket" "$W/second.log" || fail "second start: $(cat "$W/second.log")"
[ ! -e "$W/db2" ] || fail "the refused start created its database"
[ "$(get http://localhost/metrics)" = 200 ] || fail "the first server stopped serving"
ok "a second ringfenced on a served socket is refused and creates nothing; the first serves on"

# Killed: the socket file stays; the next start replaces it.
kill -KILL "$FIRST" && wait "$FIRST" 2>/dev/null
[ -S "$SOCK" ] || fail "expected the killed server's socket to remain"
start
[ "$(get http://localhost/metrics)" = 200 ] || fail "restart on the stale socket"
ok "a stale socket from a killed server is replaced at the next start"

# A clean stop removes it.
kill -TERM "$PID" && wait "$PID" 2>/dev/null
[ ! -e "$SOCK" ] || fail "the socket is still there after a clean stop"
ok "a clean stop removes the socket"

# Anything else at the path is never replaced.
echo "important data" >"$SOCK"
if timeout 20 "$SERVERBIN" --db "$W/db" --listen "unix:$SOCK" >"$W/file.log" 2>&1; then
	fail "ringfenced started on a regular file"
fi
grep -q "is not a socket" "$W/file.log" || fail "regular file: $(cat "$W/file.log")"
[ "$(cat "$SOCK")" = "important data" ] || fail "the regular file was changed"
rm -f "$SOCK"
mkdir "$SOCK"
if timeout 20 "$SERVERBIN" --db "$W/db" --listen "unix:$SOCK" >"$W/dir.log" 2>&1; then
	fail "ringfenced started on a directory"
fi
[ -d "$SOCK" ] || fail "the directory was removed"
rmdir "$SOCK"
ok "a regular file or a directory at the path is refused and left as it was"

# Options for TCP addresses, and a path too long for a socket.
"$SERVERBIN" --db "$W/db" --listen "unix:$SOCK" --port-file "$W/port" >"$W/o.log" 2>&1
[ $? = 2 ] && grep -q "port-file" "$W/o.log" || fail "--port-file with unix: $(cat "$W/o.log")"
"$SERVERBIN" --db "$W/db" --listen "unix:$SOCK" --per-ip-connections 5 >"$W/o.log" 2>&1
[ $? = 2 ] && grep -q "per-ip-connections" "$W/o.log" || fail "--per-ip-connections with unix: $(cat "$W/o.log")"
long=$W/$(printf 'x%.0s' $(seq 120)).sock
"$SERVERBIN" --db "$W/db" --listen "unix:$long" >"$W/o.log" 2>&1
[ $? != 0 ] && grep -q "needs a path of 1 to 107 bytes" "$W/o.log" || fail "long path: $(cat "$W/o.log")"
[ ! -e "$SOCK" ] || fail "a refused start left a socket"
ok "--port-file, --per-ip-connections N and an over-long path are refused"
echo "listen-unix: all steps passed"
