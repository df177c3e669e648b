#!/bin/bash
# dist/nginx/ringfenced.conf, run for real: nginx (templated to a temp dir and free ports on
# 127.0.0.1, no root-owned paths) in front of ringfenced on the PostgreSQL server tests/lib/pg.sh
# started (RF_TEST_DB), nginx reaching it on a unix socket as in dist/, with /repo/ served by
# nginx straight from the repository directory.
# Checks: repository files come from disk byte for byte (metadata marked no-cache; dot files and
# traversal refused); operator commands and 3 real agents work through the proxy (enroll,
# check in, fetch and verify the release through /repo/, report, become last known good);
# the server counts the devices, nginx's log shows the pack fetched from /repo/. Then PostgreSQL is
# stopped and started again under it all (503 + Retry-After, honoured by a real agent).
# Every wait is bounded; everything started is stopped (tests/lib/cluster.sh).
# Usage (under pg.sh): test_nginx.sh RINGFENCE RINGFENCE_AGENT RINGFENCED
set -u
CLI=$1 AGENT=$2 SERVERBIN=$3
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
N=3
fail() {
	echo "FAIL: $*"
	echo "---- server log (tail)"; tail -20 "$W/server-1.log" 2>/dev/null
	echo "---- nginx error log (tail)"; tail -20 "$W/nginx-error.log" 2>/dev/null
	echo "---- agent 1 log (tail)"; tail -20 "$W/agent-1.log" 2>/dev/null
	exit 1
}
. "$SRC/tests/lib/cluster.sh" # rf_cluster_init, rf_instance_start, rf_nginx_start, rf_agent, ok
rf_cluster_init nginx
RF_CLUSTER_LISTEN=unix # the instance on a unix socket, as dist/ringfenced@.service runs it

"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$SRC/examples/rules" -o "$W/a.rfp" --seq 1 >/dev/null 2>&1 || fail "compile"
HA=$(sha256sum "$W/a.rfp" | cut -d' ' -f1)

rf_instance_start 1 --init --admin-token-file "$W/admin-token"
rf_nginx_start 1
ok "nginx -t accepts the templated dist/nginx/ringfenced.conf; /metrics proxied"
curl -s "$URL/instance/1/metrics" | grep -q '^ringfence_gate_leader ' ||
	fail "/instance/1/metrics does not reach instance 1's own metrics"
ok "/instance/1/metrics reaches instance 1 on its unix socket (per-instance scraping)"

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
rf_repo_readable
"$CLI" release create packs/a.rfp >/dev/null || fail "release create through nginx"
for k in $(seq $N); do rf_agent "$k" "$URL" "$TOKEN" "ngx-$k"; done
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
# The access log is buffered (dist/: flushed at least every 5 s).
for i in $(seq 100); do
	grep -q "GET /repo/targets/" "$W/nginx-access.log" 2>/dev/null &&
		grep -q "POST /v1/checkin" "$W/nginx-access.log" && break
	sleep 0.1
done
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
rf_agent "$k" "$URL" "$TOKEN" "ngx-$k"
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
