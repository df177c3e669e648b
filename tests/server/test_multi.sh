#!/bin/bash
# Several ringfenced on one PostgreSQL database (docs/server.md, "Several instances"), for real:
# 3 instances behind nginx (dist/nginx/ringfenced.conf templated as test_nginx.sh does) and real
# agents (RF_MULTI_AGENTS, default 50). Checks:
#  - instances 2 and 3 start without a token file: the admin token's hash comes from the database
#    (instance 1 ran --init with the file); a wrong token file is refused (exit 2);
#  - a good release rolls out through a ramp while the gate leader is killed with SIGKILL and,
#    once another instance leads, that one too: a new leader takes over each time, and every
#    agent ends on the release;
#  - health is the same whichever instance is asked (every instance counts every device healthy);
#  - an operator change on one instance shows on another (bounded wait, time printed);
#  - a bad release (a rule on a field no agent supplies: rejected) is halted by the gate exactly
#    once (one gate.halt in the audit trail), every instance shows it halted, and every agent
#    stays on the good release;
#  - no acknowledged report is lost: every report an agent logged as delivered is in the
#    database.
# Every wait is bounded; everything started is stopped.
# Usage (under pg.sh): test_multi.sh RINGFENCE RINGFENCE_AGENT RINGFENCED
set -u
CLI=$1 AGENT=$2 SERVERBIN=$3
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "SKIP: nginx is not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }
command -v psql >/dev/null || { echo "SKIP: psql is needed"; exit 77; }
[ -n "${RF_TEST_DB:-}" ] || { echo "SKIP: run under tests/lib/pg.sh"; exit 77; }
N=${RF_MULTI_AGENTS:-50}
W=$(mktemp -d /tmp/rf-multi-XXXXXX)
declare -A SPID
APIDS=() NPID=
cleanup() {
	for p in "${APIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ -n "$NPID" ] && kill -QUIT "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null
	for k in "${!SPID[@]}"; do kill -TERM "${SPID[$k]}" 2>/dev/null && wait "${SPID[$k]}" 2>/dev/null; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	for k in 1 2 3; do echo "---- server $k log (tail)"; tail -15 "$W/server-$k.log" 2>/dev/null; done
	echo "---- nginx error log (tail)"; tail -10 "$W/nginx-error.log" 2>/dev/null
	echo "---- agent 1 log (tail)"; tail -10 "$W/agent-1.log" 2>/dev/null
	exit 1
}
ok() { echo "ok: $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

DB_NAME=rf_multi_$$
psql "$RF_TEST_DB" -qc "CREATE DATABASE $DB_NAME" >/dev/null || fail "create database"
DB=${RF_TEST_DB/\/postgres\?//$DB_NAME?}
sql() { psql "$DB" -qAtc "$1"; }

"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$SRC/examples/rules" -o "$W/a.rfp" --seq 1 >/dev/null 2>&1 || fail "compile a"
mkdir -p "$W/bad"
cat >"$W/bad/field21.yml" <<'EOF'
title: Needs A Field No Agent Supplies
id: 3f0c2a51-5d1e-4c7e-9a55-000000000291
logsource: {category: process_creation, product: windows}
detection:
  selection:
    ChannelField21|contains: 'pipe'
  condition: selection
level: high
EOF
"$CLI" content compile "$W/bad" -o "$W/b.rfp" --seq 2 >/dev/null 2>&1 || fail "compile b"
HA=$(sha256sum "$W/a.rfp" | cut -d' ' -f1)

# Instances: the same ports again after a restart (nginx's upstream is fixed).
declare -A PORT
for k in 1 2 3; do PORT[$k]=$(free_port); done
start_server() { # K [ARGS...]
	local k=$1
	shift
	rm -f "$W/ready-$k"
	"$SERVERBIN" --db "$DB" "$@" --repo "$W/repo" --listen "127.0.0.1:${PORT[$k]}" \
		--port-file "$W/ready-$k" --per-ip-connections 0 --poll-interval 1 \
		--threads 2 >>"$W/server-$k.log" 2>&1 &
	SPID[$k]=$!
	for i in $(seq 300); do [ -s "$W/ready-$k" ] && return 0; sleep 0.1; done
	fail "ringfenced $k did not start"
}
start_server 1 --init --admin-token-file "$W/admin-token"
# A token file that is not the database's is refused; no file: the database's token.
echo "rfa_$(printf '0%.0s' $(seq 64))" >"$W/wrong-token"
timeout 30 "$SERVERBIN" --db "$DB" --admin-token-file "$W/wrong-token" --listen 127.0.0.1:0 \
	>"$W/wrong.log" 2>&1
rc=$?
[ $rc = 2 ] || fail "an instance with another admin token file exited $rc, want 2"
grep -q "does not hold the token of this database" "$W/wrong.log" || fail "no reason for the refusal: $(cat "$W/wrong.log")"
start_server 2
start_server 3
ok "instances 2 and 3 took the admin token from the database; a different token file is refused (exit 2)"

NPORT=$(free_port)
mkdir -p "$W/nginx-tmp"
{
	upstreams=""
	for k in 1 2 3; do upstreams+="    server 127.0.0.1:${PORT[$k]} max_fails=1 fail_timeout=2s;\n"; done
	sed -e "/^    server 127\.0\.0\.1:844[0-9]/d" \
		-e "s|^    keepalive 64;|$upstreams    keepalive 64;|" \
		-e "s|listen 443 ssl;|listen 127.0.0.1:$NPORT;|" \
		-e "/ssl_certificate/d" \
		-e "s|/var/lib/ringfence/repo/|$W/repo/|g" \
		"$SRC/dist/nginx/ringfenced.conf"
} >"$W/ringfenced.conf"
grep -q "server 127.0.0.1:${PORT[3]}" "$W/ringfenced.conf" || fail "templating the upstream"
cat >"$W/nginx.conf" <<CONF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
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
	chmod o+x "$W" "$W/repo"
	chmod -R o+rX "$W/repo/repository"
	chown -R nobody "$W/nginx-tmp"
fi
"$NGINX" -p "$W" -e "$W/nginx-error.log" -c "$W/nginx.conf" -g 'daemon off;' &
NPID=$!
URL=http://127.0.0.1:$NPORT
for i in $(seq 100); do curl -s -o /dev/null "$URL/metrics" && break; sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")" = 200 ] || fail "nginx does not proxy /metrics"

export RINGFENCE_ADMIN_TOKEN_FILE=$W/admin-token
at() { RINGFENCE_SERVER=http://127.0.0.1:${PORT[$1]} "${@:2}"; } # at K CMD...: one instance
leader_of() { curl -s --max-time 2 "http://127.0.0.1:${PORT[$1]}/metrics" | sed -n 's/^ringfence_gate_leader //p'; }
leaders() { # the instances (among the running ones) that say they lead
	local out=""
	for k in "${!SPID[@]}"; do [ "$(leader_of "$k")" = 1 ] && out+="$k "; done
	echo "$out"
}
wait_one_leader() { # -> the one leader; bounded
	local t0=$SECONDS l
	while [ $((SECONDS - t0)) -lt 30 ]; do
		l=$(leaders)
		[ "$(echo $l | wc -w)" = 1 ] && { echo $l; return 0; }
		sleep 0.2
	done
	fail "no single gate leader after 30 s (leaders: '$(leaders)')"
}
L=$(wait_one_leader)
ok "one gate leader: instance $L"

export RINGFENCE_SERVER=$URL
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create through nginx"
now=$(date +%s)
sched() { # RELEASE RAMP
	echo "{\"ringfence\":{\"release\":\"$1\",\"schedule\":[{\"ring\":\"canary\",\"not_before\":$now,\"ramp\":$2}],\"gates\":{\"probation_s\":2,\"silence_s\":60,\"min_bake_s\":3,\"min_healthy\":1,\"floor_devices\":2,\"min_events\":2,\"alpha_ppm\":200000}}}"
}
"$CLI" repo add "$W/repo" "$W/a.rfp" --name packs/a.rfp --custom "$(sched rel-a '[{"after":0,"percent":10},{"after":6,"percent":40},{"after":12,"percent":100}]')" >/dev/null || fail "repo add a"
"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish"
[ "$(id -u)" = 0 ] && chmod -R o+rX "$W/repo/repository"

head -3 "$SRC/examples/events/sample.jsonl" >"$W/events.jsonl"
t0=$SECONDS
for k in $(seq $N); do
	"$AGENT" run --server "$URL" --store "$W/store-$k" --ring canary --enroll-token "$TOKEN" \
		--device-id "m-$k" --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
		--probation 2 --probation-events 0 --events "$W/events.jsonl" \
		--alerts "$W/alerts-$k.jsonl" >"$W/agent-$k.log" 2>&1 &
	APIDS+=($!)
done
# Every agent enrolled (through whichever instance), and every instance knows every device.
count_enrolled() { sql "SELECT count(*) FROM devices"; }
deadline=$((SECONDS + 120))
until [ "$(count_enrolled)" = "$N" ]; do
	[ $SECONDS -lt $deadline ] || fail "only $(count_enrolled) of $N agents enrolled"
	sleep 0.5
done
ok "$N agents enrolled through nginx in $((SECONDS - t0)) s"

"$CLI" release create packs/a.rfp >/dev/null || fail "release create a"
rel_field() { # K ID PYEXPR: a field of release ID's status as instance K sees it
	at "$1" "$CLI" release status "$2" --json 2>/dev/null |
		python3 -c "import json,sys; r=json.load(sys.stdin); print($3)" 2>/dev/null
}
# Mid-rollout: some agents took release 1, not all. Kill the leader.
deadline=$((SECONDS + 120))
until [ "$(rel_field "$L" 1 "r['rings'][0]['health']['devices']")" -ge 1 ] 2>/dev/null; do
	[ $SECONDS -lt $deadline ] || fail "no agent took release 1"
	sleep 0.3
done
took=$(rel_field "$L" 1 "r['rings'][0]['health']['devices']")
kill -KILL "${SPID[$L]}"
wait "${SPID[$L]}" 2>/dev/null
unset "SPID[$L]"
K1=$L
t0=$SECONDS
L=$(wait_one_leader)
ok "gate leader $K1 killed (SIGKILL) with $took of $N devices on release 1; instance $L leads after $((SECONDS - t0)) s"
sleep 3
kill -KILL "${SPID[$L]}"
wait "${SPID[$L]}" 2>/dev/null
unset "SPID[$L]"
K2=$L
t0=$SECONDS
L=$(wait_one_leader)
ok "instance $K2 (leader) killed too; instance $L leads after $((SECONDS - t0)) s"

all_on() { # HASH: every agent's last known good
	local n=0
	for k in $(seq $N); do
		"$AGENT" status --store "$W/store-$k" --json 2>/dev/null |
			python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if s['last_good'] and s['last_good']['sha256'] == '$1' and s['current'] and s['current']['sha256'] == '$1' else 1)" 2>/dev/null &&
			n=$((n + 1))
	done
	echo $n
}
deadline=$((SECONDS + 240))
while :; do
	n=$(all_on "$HA")
	[ "$n" = "$N" ] && break
	[ $SECONDS -lt $deadline ] || fail "only $n of $N agents run release 1 as their last known good"
	sleep 1
done
ok "every agent ($N) runs release 1 and made it its last known good"

# The killed instances come back (no --init, no token file) and catch up from the database.
start_server "$K1"
start_server "$K2"
L=$(wait_one_leader)
healthy_everywhere() {
	for k in 1 2 3; do
		[ "$(rel_field "$k" 1 "r['rings'][0]['health']['healthy']")" = "$N" ] || return 1
	done
}
deadline=$((SECONDS + 60))
until healthy_everywhere; do
	[ $SECONDS -lt $deadline ] || fail "release 1 health differs between instances: $(for k in 1 2 3; do echo -n "$k: $(rel_field "$k" 1 "r['rings'][0]['health']") "; done)"
	sleep 0.5
done
ok "every instance counts $N devices healthy on release 1 (leader now: $L)"
# Through two changes of leader, each gate decision on release 1 was written once: the ring
# opened once, two ramp steps (10 -> 40 -> 100 %), completed once.
got=$(sql "SELECT string_agg(action || '=' || n, ' ' ORDER BY action) FROM (SELECT action, count(*) n FROM audit WHERE release_id = 1 AND actor = 'gate' GROUP BY action) x")
[ "$got" = "gate.complete=1 gate.open=1 gate.step=2" ] || fail "gate decisions on release 1: $got, want gate.complete=1 gate.open=1 gate.step=2"
ok "gate decisions on release 1 written once each through the changes of leader ($got)"

# The bad release, created on a follower; the gate (on the leader) halts it once.
F=1
[ "$F" = "$L" ] && F=2
"$CLI" repo add "$W/repo" "$W/b.rfp" --name packs/b.rfp --custom "$(sched rel-b '[{"after":0,"percent":100}]')" >/dev/null || fail "repo add b"
"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish b"
[ "$(id -u)" = 0 ] && chmod -R o+rX "$W/repo/repository"
at "$F" "$CLI" release create packs/b.rfp >/dev/null || fail "release create b on instance $F"
t0=$SECONDS
O=1
while [ "$O" = "$F" ] || [ "$O" = "$L" ]; do O=$((O + 1)); done
until [ -n "$(rel_field "$O" 2 "r['id']")" ]; do
	[ $((SECONDS - t0)) -lt 30 ] || fail "instance $O never saw release 2 created on instance $F"
	sleep 0.1
done
ok "release 2 created on instance $F is known to instance $O after about $((SECONDS - t0)) s"
deadline=$((SECONDS + 120))
until [ "$(rel_field "$L" 2 "r['status']")" = halted ]; do
	[ $SECONDS -lt $deadline ] || fail "release 2 was not halted: $(rel_field "$L" 2 "r")"
	sleep 0.5
done
reason=$(rel_field "$L" 2 "r['halt_reason']")
case $reason in gate*) ;; *) fail "release 2 halted, not by the gate: $reason" ;; esac
deadline=$((SECONDS + 30))
for k in 1 2 3; do
	until [ "$(rel_field "$k" 2 "r['status']")" = halted ]; do
		[ $SECONDS -lt $deadline ] || fail "instance $k does not show release 2 halted"
		sleep 0.2
	done
done
sleep 3 # a doubled halt would be written by now
halts=$(sql "SELECT count(*) FROM audit WHERE release_id = 2 AND action = 'gate.halt'")
[ "$halts" = 1 ] || fail "release 2 has $halts gate.halt entries in the audit trail, want 1"
ok "release 2 halted by the gate exactly once ($reason); every instance shows it halted"

# Every agent stays on release 1 (it rejected release 2 or never got it).
deadline=$((SECONDS + 60))
while :; do
	n=$(all_on "$HA")
	[ "$n" = "$N" ] && break
	[ $SECONDS -lt $deadline ] || fail "only $n of $N agents are on release 1 after the halt"
	sleep 1
done
ok "every agent ($N) is on release 1 after the halt"

# No acknowledged report lost: what the agents logged as delivered is in the database.
for p in "${APIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${APIDS[@]}"; do wait "$p" 2>/dev/null; done
APIDS=()
for k in $(seq $N); do
	sed -n 's/.*report \([0-9]*\) delivered.*/\1/p' "$W/agent-$k.log" |
		while read -r id; do printf 'm-%s\tm-%s-%06d\n' "$k" "$k" "$id"; done
done | sort -u >"$W/acked.tsv"
acked=$(wc -l <"$W/acked.tsv")
[ "$acked" -ge "$N" ] || fail "only $acked acknowledged reports in the agents' logs"
sql "SELECT device_id || E'\t' || report_id FROM reports" | sort -u >"$W/stored.tsv"
missing=$(comm -23 "$W/acked.tsv" "$W/stored.tsv" | wc -l)
[ "$missing" = 0 ] || fail "$missing acknowledged reports are not in the database: $(comm -23 "$W/acked.tsv" "$W/stored.tsv" | head -5)"
ok "all $acked reports the agents saw acknowledged are in the database"
echo "multi: all steps passed ($N agents)"
