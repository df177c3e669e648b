# Shared parts of the tests of several ringfenced on PostgreSQL behind nginx (sourced, not run;
# tests/server/test_nginx.sh, test_multi.sh): a database of the test's own on the server
# tests/lib/pg.sh started, ringfenced instances on 127.0.0.1, and nginx running
# dist/nginx/ringfenced.conf templated to a temp dir and free ports. Everything it starts is
# stopped at exit; every wait is bounded. The sourcing script sets CLI, SERVERBIN, SRC, defines
# fail(), and calls rf_cluster_init NAME first.

# rf_cluster_init NAME: skips (77) without nginx, python3, psql or pg.sh; W (the work
# directory), SPID (instance -> pid), PORT (instance -> port), APIDS (agents), NPID (nginx),
# the exit trap; DB, a new database rf_NAME_PID, and sql() to query it.
rf_cluster_init() {
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
	[ -x "$NGINX" ] || { echo "SKIP: nginx is not installed"; exit 77; }
	command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }
	command -v psql >/dev/null || { echo "SKIP: psql is needed"; exit 77; }
	[ -n "${RF_TEST_DB:-}" ] || { echo "SKIP: run under tests/lib/pg.sh"; exit 77; }
	W=$(mktemp -d "/tmp/rf-$1-XXXXXX")
	declare -gA SPID PORT
	APIDS=() NPID=
	trap rf_cluster_cleanup EXIT
	local name=rf_$1_$$
	psql "$RF_TEST_DB" -qc "CREATE DATABASE $name" >/dev/null || fail "create database"
	DB=${RF_TEST_DB/\/postgres\?//$name?}
}

rf_cluster_cleanup() {
	local p k
	for p in "${APIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ -n "$NPID" ] && kill -QUIT "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null
	for k in "${!SPID[@]}"; do
		kill -CONT "${SPID[$k]}" 2>/dev/null # a test may have stopped one
		kill -TERM "${SPID[$k]}" 2>/dev/null && wait "${SPID[$k]}" 2>/dev/null
	done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}

ok() { echo "ok: $*"; }
sql() { psql "$DB" -qAtc "$1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# rf_instance_start K [ARGS...]: ringfenced K on $DB and $W/repo, on PORT[K] (a fixed port
# survives a restart: nginx's upstream is fixed), log appended to $W/server-K.log. With
# RF_CLUSTER_LISTEN=unix, on the unix socket $W/rf-K.sock instead (as dist/ringfenced@.service:
# PORT[K] is then unix:PATH, which only nginx uses).
rf_instance_start() {
	local k=$1 i lines
	shift
	if [ "${RF_CLUSTER_LISTEN:-tcp}" = unix ]; then
		PORT[$k]=unix:$W/rf-$k.sock
		touch "$W/server-$k.log"
		lines=$(wc -l <"$W/server-$k.log")
		"$SERVERBIN" --db "$DB" "$@" --repo "$W/repo" --listen "${PORT[$k]}" \
			--poll-interval 1 --threads 2 >>"$W/server-$k.log" 2>&1 &
		SPID[$k]=$!
		for i in $(seq 300); do
			tail -n +$((lines + 1)) "$W/server-$k.log" | grep -q "listening on unix:" && break
			sleep 0.1
		done
		tail -n +$((lines + 1)) "$W/server-$k.log" | grep -q "listening on unix:" ||
			fail "ringfenced $k did not start"
		# nginx's workers run as nobody when the test runs as root (dist: group ringfence).
		[ "$(id -u)" = 0 ] && chmod o+x "$W" && chmod o+rw "$W/rf-$k.sock"
		return 0
	fi
	[ -n "${PORT[$k]:-}" ] || PORT[$k]=$(free_port)
	rm -f "$W/ready-$k"
	"$SERVERBIN" --db "$DB" "$@" --repo "$W/repo" --listen "127.0.0.1:${PORT[$k]}" \
		--port-file "$W/ready-$k" --per-ip-connections 0 --poll-interval 1 \
		--threads 2 >>"$W/server-$k.log" 2>&1 &
	SPID[$k]=$!
	for i in $(seq 300); do [ -s "$W/ready-$k" ] && return 0; sleep 0.1; done
	fail "ringfenced $k did not start"
}

# rf_nginx_start K...: nginx on a free port in front of instances K... (their PORT), the dist
# file with the test's ports and paths (listen, upstream servers, repository directory; TLS
# lines dropped) inside a main file that keeps every path in $W; its access log in
# $W/nginx-access.log (buffered as in dist/: lines reach the file within 5 s). Sets URL.
rf_nginx_start() {
	local nport upstreams="" k i
	nport=$(free_port)
	mkdir -p "$W/nginx-tmp"
	for k in "$@"; do
		case ${PORT[$k]} in
		unix:*) upstreams+="    server ${PORT[$k]} max_fails=1 fail_timeout=2s;\n" ;;
		*) upstreams+="    server 127.0.0.1:${PORT[$k]} max_fails=1 fail_timeout=2s;\n" ;;
		esac
	done
	sed -e "/^    server unix:\/run\/ringfence\//d" \
		-e "s|unix:/run/ringfence/\([0-9]\)/http.sock|unix:$W/rf-\\1.sock|" \
		-e "s|^    keepalive 64;|$upstreams    keepalive 64;|" \
		-e "s|listen 443 ssl;|listen 127.0.0.1:$nport;|" \
		-e "/ssl_certificate/d" \
		-e "s|/var/lib/ringfence/repo/|$W/repo/|g" \
		-e "s|/var/log/nginx/ringfenced.access.log|$W/nginx-access.log|" \
		"$SRC/dist/nginx/ringfenced.conf" >"$W/ringfenced.conf"
	for k in "$@"; do
		grep -q "server \(127.0.0.1:\)\?${PORT[$k]} " "$W/ringfenced.conf" || fail "templating the upstream"
	done
	cat >"$W/nginx.conf" <<CONF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx-error.log warn;
events { worker_connections 1024; }
http {
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
	URL=http://127.0.0.1:$nport
	for i in $(seq 100); do curl -s -o /dev/null "$URL/metrics" && break; sleep 0.1; done
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")" = 200 ] || fail "nginx does not proxy /metrics"
}

# rf_repo_readable: after a publish, as root, nginx's workers (nobody) may read the new files.
rf_repo_readable() {
	[ "$(id -u)" = 0 ] && chmod -R o+rX "$W/repo/repository"
	return 0
}

# rf_agent K URL TOKEN DEVICE-ID: a real agent (store, alerts and log in $W, K its number) in
# ring canary, polling every second, probation 2 s; its pid in APIDS.
rf_agent() {
	[ -s "$W/events.jsonl" ] || head -3 "$SRC/examples/events/sample.jsonl" >"$W/events.jsonl"
	"$AGENT" run --server "$2" --store "$W/store-$1" --ring canary --enroll-token "$3" \
		--device-id "$4" --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
		--probation 2 --probation-events 0 --events "$W/events.jsonl" \
		--alerts "$W/alerts-$1.jsonl" >"$W/agent-$1.log" 2>&1 &
	APIDS+=($!)
}
