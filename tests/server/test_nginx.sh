#!/bin/bash
# dist/nginx/ringfenced.conf, run for real: nginx (templated to a temp dir and free ports on
# 127.0.0.1, no root-owned paths) in front of ringfenced on the PostgreSQL server tests/lib/pg.sh
# started (RF_TEST_DB), with /repo/ served by nginx straight from the repository directory.
# Checks: repository files come from disk byte for byte (metadata marked no-cache; dot files and
# traversal refused); operator commands and 3 real agents work through the proxy (enroll,
# check in, fetch and verify the release through /repo/, report, become last known good);
# the server counts the devices, nginx's log shows the pack fetched from /repo/. Then PostgreSQL is
# stopped and started again under it all (503 + Retry-After, honoured by a real agent).
# Every wait is bounded; everything started is stopped.
# Usage (under pg.sh): test_nginx.sh RINGFENCE RINGFENCE_AGENT RINGFENCED
set -u
CLI=$1 AGENT=$2 SERVERBIN=$3
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "SKIP: nginx is not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }
[ -n "${RF_TEST_DB:-}" ] || { echo "SKIP: run under tests/lib/pg.sh"; exit 77; }
N=3
W=$(mktemp -d /tmp/rf-nginx-XXXXXX)
SPIDS=() APIDS=() NPID=
cleanup() {
	for p in "${APIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ -n "$NPID" ] && kill -QUIT "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null
	for p in "${SPIDS[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	echo "---- server log (tail)"; tail -20 "$W/server-1.log" 2>/dev/null
	echo "---- nginx error log (tail)"; tail -20 "$W/nginx-error.log" 2>/dev/null
	echo "---- agent 1 log (tail)"; tail -20 "$W/agent-1.log" 2>/dev/null
	exit 1
}
ok() { echo "ok: $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A database of our own on the test's PostgreSQL server.
DB_NAME=rf_nginx_$$
psql "$RF_TEST_DB" -qc "CREATE DATABASE $DB_NAME" >/dev/null || fail "create database"
DB=${RF_TEST_DB/\/postgres\?//$DB_NAME?}

"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$SRC/examples/rules" -o "$W/a.rfp" --seq 1 >/dev/null 2>&1 || fail "compile"
HA=$(sha256sum "$W/a.rfp" | cut -d' ' -f1)

# ringfenced instance(s): port 0, read back; every instance gets the same token file.
start_server() { # K [--init]
	"$SERVERBIN" --db "$DB" ${2:-} --repo "$W/repo" --listen 127.0.0.1:0 --port-file "$W/port-$1" \
		--admin-token-file "$W/admin-token" --per-ip-connections 0 --poll-interval 1 \
		--threads 2 >"$W/server-$1.log" 2>&1 &
	SPIDS+=($!)
	for i in $(seq 200); do [ -s "$W/port-$1" ] && return 0; sleep 0.1; done
	fail "ringfenced $1 did not start"
}
start_server 1 --init
PORTS=("$(cat "$W/port-1")")

# nginx: the dist file with the test's ports and paths (listen, upstream servers, repository
# directory; TLS lines dropped), inside a main file that keeps every path in $W.
NPORT=$(free_port)
mkdir -p "$W/nginx-tmp"
{
	upstreams=""
	for p in "${PORTS[@]}"; do upstreams+="    server 127.0.0.1:$p max_fails=1 fail_timeout=2s;\n"; done
	sed -e "/^    server 127\.0\.0\.1:844[0-9]/d" \
		-e "s|^    keepalive 64;|$upstreams    keepalive 64;|" \
		-e "s|listen 443 ssl;|listen 127.0.0.1:$NPORT;|" \
		-e "/ssl_certificate/d" \
		-e "s|/var/lib/ringfence/repo/|$W/repo/|g" \
		"$SRC/dist/nginx/ringfenced.conf"
} >"$W/ringfenced.conf"
grep -q "server 127.0.0.1:${PORTS[0]}" "$W/ringfenced.conf" || fail "templating the upstream"
cat >"$W/nginx.conf" <<CONF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx-error.log warn;
events { worker_connections 256; }
http {
    access_log $W/nginx-access.log;
    client_body_temp_path $W/nginx-tmp/body;
    proxy_temp_path $W/nginx-tmp/proxy;
    fastcgi_temp_path $W/nginx-tmp/fastcgi;
    uwsgi_temp_path $W/nginx-tmp/uwsgi;
    scgi_temp_path $W/nginx-tmp/scgi;
    default_type application/octet-stream;
    include $W/ringfenced.conf;
}
CONF
if [ "$(id -u)" = 0 ]; then
	# nginx's workers run as nobody: let them read the published repository (only that).
	chmod o+x "$W" "$W/repo"
	chmod -R o+rX "$W/repo/repository"
	chown -R nobody "$W/nginx-tmp"
fi
"$NGINX" -t -p "$W" -e "$W/nginx-error.log" -c "$W/nginx.conf" >"$W/nginx-t.log" 2>&1 ||
	{ cat "$W/nginx-t.log"; fail "nginx -t refused the configuration"; }
"$NGINX" -p "$W" -e "$W/nginx-error.log" -c "$W/nginx.conf" -g 'daemon off;' &
NPID=$!
URL=http://127.0.0.1:$NPORT
for i in $(seq 100); do curl -s -o /dev/null "$URL/metrics" && break; sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")" = 200 ] || fail "nginx does not proxy /metrics"
ok "nginx -t accepts the templated dist/nginx/ringfenced.conf; /metrics proxied"

# /repo/ from disk.
curl -s -D "$W/h" -o "$W/ts.json" "$URL/repo/metadata/timestamp.json" || fail "GET timestamp"
cmp -s "$W/ts.json" "$W/repo/repository/metadata/timestamp.json" || fail "timestamp.json differs from disk"
grep -qi '^Cache-Control: no-cache' "$W/h" || fail "metadata is not marked no-cache"
touch "$W/repo/repository/.secret" && chmod o+r "$W/repo/repository/.secret"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/repo/.secret")" = 404 ] || fail "dot file served"
[ "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$URL/repo/../keys/")" != 200 ] || fail "traversal"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/repo/")" = 403 ] || fail "directory listing"
ok "/repo/ served by nginx from the repository directory (no-cache metadata; no dot files, listings or traversal)"

# Operators and agents through the proxy.
export RINGFENCE_SERVER=$URL RINGFENCE_ADMIN_TOKEN_FILE=$W/admin-token
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create through nginx"
custom='{"ringfence":{"release":"rel-a","schedule":[{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":100}]}]}}'
"$CLI" repo add "$W/repo" "$W/a.rfp" --name packs/a.rfp --custom "$custom" >/dev/null || fail "repo add"
"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish"
[ "$(id -u)" = 0 ] && chmod -R o+rX "$W/repo/repository"
"$CLI" release create packs/a.rfp >/dev/null || fail "release create through nginx"
head -3 "$SRC/examples/events/sample.jsonl" >"$W/events.jsonl"
for k in $(seq $N); do
	"$AGENT" run --server "$URL" --store "$W/store-$k" --ring canary --enroll-token "$TOKEN" \
		--device-id "ngx-$k" --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
		--probation 2 --probation-events 0 --events "$W/events.jsonl" \
		--alerts "$W/alerts-$k.jsonl" >"$W/agent-$k.log" 2>&1 &
	APIDS+=($!)
done
deadline=$((SECONDS + 90))
while [ $SECONDS -lt $deadline ]; do
	n=0
	for k in $(seq $N); do
		"$AGENT" status --store "$W/store-$k" --json 2>/dev/null |
			python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if s['last_good'] and s['last_good']['sha256'] == '$HA' else 1)" 2>/dev/null &&
			n=$((n + 1))
	done
	[ $n = $N ] && break
	sleep 0.3
done
[ $n = $N ] || fail "only $n of $N agents made the release their last known good through nginx"
ok "$N agents enrolled, checked in, fetched and verified release 1 through nginx; all healthy"

# The pack came from nginx's disk, the check-ins went to ringfenced.
grep -q "GET /repo/targets/" "$W/nginx-access.log" || fail "no target fetched through nginx"
grep -q "POST /v1/checkin" "$W/nginx-access.log" || fail "no check-in through nginx"
out=$("$CLI" release status 1 --json) || fail "release status"
echo "$out" | python3 -c "import json,sys; r=json.load(sys.stdin); sys.exit(0 if r['rings'][0]['health']['devices'] == $N else 1)" ||
	fail "the server does not count $N devices on release 1: $out"
ok "the server counts $N devices on release 1"
# PostgreSQL away: writes get 503 with Retry-After through the proxy, a new agent waits at
# least that long before it asks again, devices already enrolled keep checking in (answered
# from memory); PostgreSQL back: the new agent gets in by itself, no restart of anything.
metric() { curl -s "$URL/metrics" | sed -n "s/^$1 //p"; }
"$RF_TEST_PG_SCRIPT" --ctl "$RF_TEST_PG_CTL" stop || fail "stopping PostgreSQL"
code=$(curl -s -D "$W/h503" -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
	-H 'Content-Type: application/json' -d '{"device_id":"ngx-x","agent_version":"0.1.0"}' "$URL/v1/enroll")
[ "$code" = 503 ] || fail "enrollment with PostgreSQL away: HTTP $code, want 503"
grep -qi '^Retry-After: 5' "$W/h503" || fail "the 503 has no Retry-After: 5"
c0=$(metric ringfence_checkins_total)
k=$((N + 1))
"$AGENT" run --server "$URL" --store "$W/store-$k" --ring canary --enroll-token "$TOKEN" \
	--device-id "ngx-$k" --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
	--probation 2 --probation-events 0 --events "$W/events.jsonl" \
	--alerts "$W/alerts-$k.jsonl" >"$W/agent-$k.log" 2>&1 &
APIDS+=($!)
for i in $(seq 300); do grep -q "server asked to retry after 5 s" "$W/agent-$k.log" && break; sleep 0.1; done
grep -q "server asked to retry after 5 s" "$W/agent-$k.log" || fail "the agent did not honour Retry-After"
sleep 2
c1=$(metric ringfence_checkins_total)
[ "${c1:-0}" -gt "${c0:-0}" ] || fail "no check-in answered while PostgreSQL was away ($c0 -> $c1)"
ok "PostgreSQL away: 503 + Retry-After through nginx, the agent waits 5 s, $((c1 - c0)) check-ins answered from memory"
"$RF_TEST_PG_SCRIPT" --ctl "$RF_TEST_PG_CTL" start || fail "starting PostgreSQL"
deadline=$((SECONDS + 90))
until "$AGENT" status --store "$W/store-$k" --json 2>/dev/null |
	python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if s['last_good'] and s['last_good']['sha256'] == '$HA' else 1)" 2>/dev/null; do
	[ $SECONDS -lt $deadline ] || fail "the new agent did not get in after PostgreSQL came back"
	sleep 0.3
done
ok "PostgreSQL back: the new agent enrolled and took release 1 by itself"
echo "nginx: all steps passed"
