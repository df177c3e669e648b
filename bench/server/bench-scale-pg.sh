#!/usr/bin/env bash
# ringfenced at fleet scale on PostgreSQL: 2 instances on one database behind nginx, with DEVICES
# enrolled devices beside the same figures at 2,000 devices, in one run, on loopback
# (bench/server; docs/server.md "Scale"). The SQLite half is bench-scale.sh.
#
# Run under tests/lib/pg.sh (a private PostgreSQL: initdb as an unprivileged user in a temp
# dir, a unix socket only; the meson benchmark `server-scale-pg` does that and passes the
# benchmark's settings in RF_PG_CONF; fsync and synchronous_commit stay on).
#
# Usage: pg.sh bench-scale-pg.sh RINGFENCED RINGFENCE RF_BENCH_ENROLL [DEVICES] [SECONDS] [CONNECTIONS]
#        (DEVICES defaults to $RF_SCALE_DEVICES, else 200000; use 1000000 for the 1 M figures)
#
# For each size: a database of its own, ringfenced --init on it (the tenant and the release
# created through the real operator API), stopped, the devices bulk-enrolled into PostgreSQL by
# rf-bench-enroll (ids and credentials to a file), then 2 ringfenced instances on that database
# (as dist/ringfenced@.service runs them: a unix socket, --threads at its default, one per CPU;
# RF_THREADS=N to try another) and one nginx in front of them (dist/nginx/
# ringfenced.conf templated as tests/server/test_nginx.sh does: ports, no TLS, its buffered
# access log in the temp dir; the per-address connection limit raised, every wrk connection
# comes from 127.0.0.1).
# Then it measures:
#   start      seconds from exec to listening, per instance (loading every device from PostgreSQL)
#   idle CPU   each instance's CPU time over IDLE_SECS seconds with no traffic, % of one core
#   check-ins  wrk posting real check-ins through nginx (each device's own credential and body,
#              read by the Lua script from the file, devices in a scrambled order): requests/s,
#              p50, p99 and max latency at full load, with the load average beside each round
#   core       per round, the check-ins the server core took over 10 ms and over 100 ms (its own
#              histogram: lock waits included; not the transport, the queue, or wrk's own stalls)
#   profile    the CPU each part used during each load round (both instances, nginx, PostgreSQL,
#              wrk), % of one core and microseconds a check-in: what limits the rate (wrk's
#              includes its Lua reading the device file, about a second at 1 M devices)
#   reports    one round of durable reports through nginx (each committed in PostgreSQL before
#              its reply; group commit): reports/s, p50, p99, and reports per transaction
#   memory     resident memory of each instance / devices (each instance holds every device)
# Both sizes run side by side and are loaded in alternating rounds (medians printed). Only
# 127.0.0.1 and the unix socket are contacted. Everything started here is stopped on exit.
set -euo pipefail

RINGFENCED=${1:?usage: pg.sh bench-scale-pg.sh RINGFENCED RINGFENCE RF_BENCH_ENROLL [DEVICES] [SECONDS] [CONNECTIONS]}
RINGFENCE=${2:?}
ENROLL=${3:?}
DEVICES=${4:-${RF_SCALE_DEVICES:-200000}}
SECS=${5:-10}
CONNS=${6:-64}
SMALL=${RF_SCALE_SMALL:-2000}
IDLE_SECS=${IDLE_SECS:-10}
THREADS=${WRK_THREADS:-2}
LISTEN=${RF_SCALE_LISTEN:-unix} # how nginx reaches the instances: unix sockets, or tcp
INSTANCES=2
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

command -v wrk >/dev/null || { echo "bench-scale-pg: wrk not installed (scripts/install-deps)"; exit 77; }
[ -x "$NGINX" ] || { echo "bench-scale-pg: nginx not installed"; exit 77; }
[ -n "${RF_TEST_DB:-}" ] || { echo "bench-scale-pg: run under tests/lib/pg.sh"; exit 77; }

T=$(mktemp -d /tmp/rf-bench-scale-pg-XXXXXX)
declare -A PID PORT NPID NPORT DB
cleanup() {
	local p
	for p in "${NPID[@]:-}"; do
		[ -n "$p" ] && kill -QUIT "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	for p in "${PID[@]:-}"; do
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	rm -rf "$T"
}
trap cleanup EXIT

. "$(dirname "$0")/scale-lib.sh" # the repository, SHA, cpu_ticks, rss_kb, to_ms, HERE
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU ticks of a process and its children (nginx's workers; PostgreSQL's backends).
tree_ticks() {
	local t
	t=$(cpu_ticks "$1")
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do t=$((t + $(cpu_ticks "$c"))); done
	echo "$t"
}
PG_PM=$(head -1 "$(sed -n 's/^dir=//p' "$RF_TEST_PG_CTL" | tr -d "'")/data/postmaster.pid" 2>/dev/null || echo)

start_rf() { # SIZE K [--init]
	local n=$1 k=$2 dir=$T/n$1 lines
	shift 2
	rm -f "$dir/port-$k"
	touch "$dir/ringfenced-$k.log"
	lines=$(wc -l <"$dir/ringfenced-$k.log")
	if [ "$LISTEN" = unix ]; then
		# As dist/ringfenced@.service: a unix socket for nginx on the same host.
		"$RINGFENCED" "$@" --listen "unix:$dir/rf-$k.sock" \
			--db "${DB[$n]}" --repo "$T/repo" --admin-token-file "$dir/admin" \
			--threads "${RF_THREADS:-0}" 2>>"$dir/ringfenced-$k.log" &
		PID[$n.$k]=$!
		for _ in $(seq 6000); do
			tail -n +$((lines + 1)) "$dir/ringfenced-$k.log" | grep -q "listening on" && break
			kill -0 "${PID[$n.$k]}" 2>/dev/null || break
			sleep 0.05
		done
		tail -n +$((lines + 1)) "$dir/ringfenced-$k.log" | grep -q "listening on" ||
			{ echo "bench-scale-pg: ringfenced did not start"; cat "$dir/ringfenced-$k.log"; exit 1; }
		# nginx's workers run as nobody when the benchmark runs as root.
		[ "$(id -u)" = 0 ] && chmod o+x "$T" "$dir" && chmod o+rw "$dir/rf-$k.sock"
		PORT[$n.$k]=unix:$dir/rf-$k.sock
		return 0
	fi
	"$RINGFENCED" "$@" --per-ip-connections 0 --listen 127.0.0.1:0 --port-file "$dir/port-$k" \
		--db "${DB[$n]}" --repo "$T/repo" --admin-token-file "$dir/admin" \
		--threads "${RF_THREADS:-0}" 2>>"$dir/ringfenced-$k.log" &
	PID[$n.$k]=$!
	for _ in $(seq 6000); do [ -s "$dir/port-$k" ] && break; sleep 0.05; done
	[ -s "$dir/port-$k" ] || { echo "bench-scale-pg: ringfenced did not start"; cat "$dir/ringfenced-$k.log"; exit 1; }
	PORT[$n.$k]=$(cat "$dir/port-$k")
}

# rf_curl K-KEY ARGS... PATH: curl to one instance directly (TCP port or unix socket).
rf_curl() {
	local key=$1 path=${*: -1}
	set -- "${@:2:$#-2}"
	case ${PORT[$key]} in
	unix:*) curl --unix-socket "${PORT[$key]#unix:}" "$@" "http://localhost$path" ;;
	*) curl "$@" "http://127.0.0.1:${PORT[$key]}$path" ;;
	esac
}

stop_rf() { # SIZE K
	kill -9 "${PID[$1.$2]}" 2>/dev/null || true
	wait "${PID[$1.$2]}" 2>/dev/null || true
	PID[$1.$2]=
}

# nginx in front of the instances of SIZE: dist/nginx/ringfenced.conf, templated.
start_nginx() {
	local n=$1 dir=$T/n$1 upstreams="" k
	for k in $(seq $INSTANCES); do
		case ${PORT[$n.$k]} in
		unix:*) upstreams+="    server ${PORT[$n.$k]} max_fails=1 fail_timeout=2s;\n" ;;
		*) upstreams+="    server 127.0.0.1:${PORT[$n.$k]} max_fails=1 fail_timeout=2s;\n" ;;
		esac
	done
	NPORT[$n]=$(free_port)
	mkdir -p "$dir/nginx-tmp"
	sed -e "/^    server unix:\/run\/ringfence\//d" \
		-e "s|unix:/run/ringfence/\([0-9]\)/http.sock|unix:$dir/rf-\\1.sock|" \
		-e "s|^    keepalive 64;|$upstreams    keepalive 64;|" \
		-e "s|listen 443 ssl;|listen 127.0.0.1:${NPORT[$n]};|" \
		-e "/ssl_certificate/d" \
		-e "s|limit_conn rf_per_ip 64;|limit_conn rf_per_ip 4096;|" \
		-e "s|/var/lib/ringfence/repo/|$T/repo/|g" \
		-e "s|/var/log/nginx/ringfenced.access.log|$dir/nginx-access.log|" \
		"$SRC/dist/nginx/ringfenced.conf" >"$dir/ringfenced.conf"
	cat >"$dir/nginx.conf" <<CONF
worker_processes ${NGINX_WORKERS:-2};
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path $dir/nginx-tmp/body;
    proxy_temp_path $dir/nginx-tmp/proxy;
    fastcgi_temp_path $dir/nginx-tmp/fastcgi;
    uwsgi_temp_path $dir/nginx-tmp/uwsgi;
    scgi_temp_path $dir/nginx-tmp/scgi;
    default_type application/octet-stream;
    include $dir/ringfenced.conf;
}
CONF
	[ "$(id -u)" = 0 ] && chown -R nobody "$dir/nginx-tmp"
	"$NGINX" -p "$dir" -e "$dir/nginx-error.log" -c "$dir/nginx.conf" -g 'daemon off;' &
	NPID[$n]=$!
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:${NPORT[$n]}/metrics" && return 0; sleep 0.1; done
	echo "bench-scale-pg: nginx did not start"; cat "$dir/nginx-error.log"; exit 1
}

declare -A START IDLE RSS RATES P50S P99S MAXS LOADS PROF

setup() { # SIZE: its database, devices, instances and nginx, running
	local n=$1 dir=$T/n$1 k
	mkdir -p "$dir"
	psql "$RF_TEST_DB" -qc "CREATE DATABASE rf_scale_$n" >/dev/null
	DB[$n]=${RF_TEST_DB/\/postgres\?//rf_scale_$n?}
	# The release and the tenant through the real operator API (the CLI speaks TCP: a first
	# instance on a port for this step).
	local listen=$LISTEN
	LISTEN=tcp
	start_rf "$n" 1 --init
	local base=http://127.0.0.1:${PORT[$n.1]}
	RINGFENCE_ADMIN_TOKEN_FILE=$dir/admin RINGFENCE_SERVER=$base \
		"$RINGFENCE" release create packs/bench-1.rfp >/dev/null
	RINGFENCE_ADMIN_TOKEN_FILE=$dir/admin RINGFENCE_SERVER=$base \
		"$RINGFENCE" tenant create bench --json >/dev/null
	stop_rf "$n" 1
	LISTEN=$listen
	local t0 t1
	t0=$(date +%s.%N)
	"$ENROLL" "${DB[$n]}" bench "$n" 1 "$dir/devices.txt"
	t1=$(date +%s.%N)
	echo "  $n devices bulk-enrolled into PostgreSQL in $(python3 -c "print('%.1f' % ($t1 - $t0))") s"
	psql "${DB[$n]}" -qc "VACUUM ANALYZE devices" >/dev/null
	START[$n]=""
	for k in $(seq $INSTANCES); do
		t0=$(date +%s.%N)
		start_rf "$n" "$k"
		t1=$(date +%s.%N)
		START[$n]+=" $(python3 -c "print('%.2f' % ($t1 - $t0))")"
	done
	start_nginx "$n"
	# Sanity: a real check-in through nginx answers "stay" on the release.
	local id cred
	read -r id cred <"$dir/devices.txt"
	curl -sf -H "Authorization: Bearer $cred" -H 'Content-Type: application/json' \
		-d "{\"device_id\":\"$id\",\"state\":{\"current\":{\"sha256\":\"$SHA\"}}}" \
		"http://127.0.0.1:${NPORT[$n]}/v1/checkin" | grep -q '"action":"stay"' ||
		{ echo "bench-scale-pg: check-in sanity failed"; cat "$dir"/ringfenced-*.log; exit 1; }
}

# core_lat SIZE: the server core's check-in latency histogram summed over the instances
# (ringfence_checkin_duration_seconds: the time in the core, the lock waited for included, the
# transport and the queue before it not): "count over-10ms over-100ms".
core_lat() {
	local k m tot=0 le10=0 le100=0
	for k in $(seq $INSTANCES); do
		m=$(rf_curl "$1.$k" -s /metrics)
		tot=$((tot + $(echo "$m" | awk '$1 == "ringfence_checkin_duration_seconds_count" {print $2}')))
		le10=$((le10 + $(echo "$m" | awk '$1 == "ringfence_checkin_duration_seconds_bucket{le=\"0.01\"}" {print $2}')))
		le100=$((le100 + $(echo "$m" | awk '$1 == "ringfence_checkin_duration_seconds_bucket{le=\"0.1\"}" {print $2}')))
	done
	echo "$tot $((tot - le10)) $((tot - le100))"
}

load() { # SIZE ROUND
	local n=$1 out k c0 c1 pg0 pg1 ng0 ng1 lat0 lat1
	declare -A r0 r1
	read -r -a lat0 <<<"$(core_lat "$n")"
	for k in $(seq $INSTANCES); do r0[$k]=$(cpu_ticks "${PID[$n.$k]}"); done
	ng0=$(tree_ticks "${NPID[$n]}")
	pg0=$([ -n "$PG_PM" ] && tree_ticks "$PG_PM" || echo 0)
	# wrk's own CPU: its rusage, printed by the wrapper on fd 3.
	out=$(python3 -c 'import resource,subprocess,sys
p=subprocess.run(sys.argv[1:],stdout=subprocess.PIPE,text=True); sys.stdout.write(p.stdout)
r=resource.getrusage(resource.RUSAGE_CHILDREN); sys.stdout.write("wrkcpu %.2f\n" % (r.ru_utime+r.ru_stime))' \
		wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s "$HERE/scale-checkin.lua" \
		"http://127.0.0.1:${NPORT[$n]}/v1/checkin" -- "$T/n$n/devices.txt" "$SHA")
	for k in $(seq $INSTANCES); do r1[$k]=$(cpu_ticks "${PID[$n.$k]}"); done
	ng1=$(tree_ticks "${NPID[$n]}")
	pg1=$([ -n "$PG_PM" ] && tree_ticks "$PG_PM" || echo 0)
	if echo "$out" | grep -q "Non-2xx"; then echo "bench-scale-pg: non-2xx:"; echo "$out"; exit 1; fi
	local rate p50 p99 max la wcpu prof=""
	rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
	p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
	max=$(to_ms "$(echo "$out" | awk '$1 == "Latency" {print $4}')")
	wcpu=$(echo "$out" | awk '/^wrkcpu/ {print $2}')
	la=$(cut -d' ' -f1 /proc/loadavg)
	# % of one core over the round, and microseconds of CPU per check-in.
	pct() { python3 -c "c = ($1) / $TCK; print('%.0f%% (%.1f us)' % (c / $SECS * 100, c / ($rate * $SECS) * 1e6))"; }
	for k in $(seq $INSTANCES); do prof+="ringfenced-$k $(pct "${r1[$k]} - ${r0[$k]}")  "; done
	prof+="nginx $(pct "$ng1 - $ng0")  postgres $(pct "$pg1 - $pg0")  wrk $(pct "$wcpu * $TCK")"
	read -r -a lat1 <<<"$(core_lat "$n")"
	echo "  round $2, $n devices: $rate check-ins/s  p50 $p50 ms  p99 $p99 ms  max $max ms  (load avg $la)  CPU: $prof"
	echo "           in the server core: $((lat1[0] - lat0[0])) check-ins, $((lat1[1] - lat0[1])) over 10 ms, $((lat1[2] - lat0[2])) over 100 ms"
	RATES[$n]="${RATES[$n]:-} $rate"
	P50S[$n]="${P50S[$n]:-} $p50"
	P99S[$n]="${P99S[$n]:-} $p99"
	MAXS[$n]="${MAXS[$n]:-} $max"
	LOADS[$n]="${LOADS[$n]:-} $la"
	PROF[$n]=$prof
}

median() { python3 -c "import sys,statistics; print('%.2f' % statistics.median(float(x) for x in sys.argv[1:]))" $1; }

ROUNDS=${ROUNDS:-3}
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $INSTANCES ringfenced (threads ${RF_THREADS:-one per CPU}, $LISTEN sockets) on one PostgreSQL behind nginx (${NGINX_WORKERS:-2} workers) per size; wrk -t$THREADS -c$CONNS -d${SECS}s --latency, $ROUNDS alternating rounds; idle over ${IDLE_SECS}s"
echo "PostgreSQL settings: $(echo "${RF_PG_CONF:-(pg.sh defaults)}" | tr '\n' ';')"
setup "$SMALL"
setup "$DEVICES"
# Idle: the periodic work alone (flush, gates, re-reads, the other instance's rows), no traffic.
declare -A I0
for n in "$SMALL" "$DEVICES"; do for k in $(seq $INSTANCES); do I0[$n.$k]=$(cpu_ticks "${PID[$n.$k]}"); done; done
sleep "$IDLE_SECS"
for n in "$SMALL" "$DEVICES"; do
	IDLE[$n]=""
	for k in $(seq $INSTANCES); do
		IDLE[$n]+=" $(python3 -c "print('%.2f' % (($(cpu_ticks "${PID[$n.$k]}") - ${I0[$n.$k]}) / $TCK / $IDLE_SECS * 100))")"
	done
done
for round in $(seq "$ROUNDS"); do
	load "$SMALL" "$round"
	load "$DEVICES" "$round"
done
# One round of durable reports per size (the write path: group commit on PostgreSQL).
declare -A REP
for n in "$SMALL" "$DEVICES"; do
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s "$HERE/scale-report.lua" \
		"http://127.0.0.1:${NPORT[$n]}/v1/report" -- "$T/n$n/devices.txt" "$SHA")
	if echo "$out" | grep -q "Non-2xx"; then
		echo "bench-scale-pg: reports non-2xx:"; echo "$out"
		for f in "$T/n$n"/ringfenced-*.log "$T/n$n/nginx-error.log"; do
			echo "---- $f (tail)"; tail -n 15 "$f"
		done
		exit 1
	fi
	reps=0 commits=0 retries=0 conflicts=0
	metric() { echo "$1" | awk -v k="$2" '$1 ~ "^"k {c += $2} END {print c + 0}'; }
	for k in $(seq $INSTANCES); do
		m=$(rf_curl "$n.$k" -s /metrics)
		reps=$((reps + $(metric "$m" ringfence_reports_total)))
		commits=$((commits + $(metric "$m" ringfence_report_commits_total)))
		retries=$((retries + $(metric "$m" ringfence_store_retries_total)))
		conflicts=$((conflicts + $(metric "$m" ringfence_device_conflicts_total)))
	done
	REP[$n]="$(echo "$out" | awk '/Requests\/sec/ {print $2}') reports/s  p50 $(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')") ms  p99 $(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')") ms  ($reps reports in $commits commits, $conflicts compare-and-set conflicts, $retries transactions retried; load avg $(cut -d' ' -f1 /proc/loadavg))"
done
for n in "$SMALL" "$DEVICES"; do
	RSS[$n]=""
	for k in $(seq $INSTANCES); do RSS[$n]+=" $(( $(rss_kb "${PID[$n.$k]}") * 1024 / n ))"; done
	printf "%10s devices: start%ss  idle CPU%s %% of a core  %9s check-ins/s  p50 %6s ms  p99 %6s ms  max %7s ms  (medians; load avg%s)  RSS/device%s B\n" \
		"$n" "${START[$n]}" "${IDLE[$n]}" "$(median "${RATES[$n]}")" \
		"$(median "${P50S[$n]}")" "$(median "${P99S[$n]}")" "$(median "${MAXS[$n]}")" \
		"${LOADS[$n]}" "${RSS[$n]}"
	echo "             CPU during the last round, % of one core (us a check-in): ${PROF[$n]}"
	echo "             durable reports through nginx: ${REP[$n]}"
done
echo "rate at $DEVICES devices / rate at $SMALL: $(python3 -c "print('%.2f' % ($(median "${RATES[$DEVICES]}") / $(median "${RATES[$SMALL]}")))")x"
echo "machine load after: $(cut -d' ' -f1-3 /proc/loadavg)"
