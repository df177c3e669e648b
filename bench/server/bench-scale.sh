#!/usr/bin/env bash
# ringfenced at fleet scale: one instance on SQLite with DEVICES enrolled devices beside the same
# figures at 2,000 devices, in one run, on loopback (bench/server; docs/server.md "Scale").
#
# Usage: bench-scale.sh RINGFENCED RINGFENCE RF_BENCH_ENROLL [DEVICES] [SECONDS] [CONNECTIONS]
#        (DEVICES defaults to $RF_SCALE_DEVICES, else 200000; use 1000000 for the 1 M figures)
#
# For each size, in a temp dir: a TUF repository with one release whose signed schedule admits
# every device, ringfenced --init (SQLite), a tenant and the release created through the real
# operator API, ringfenced stopped, the devices bulk-enrolled straight into its database by
# rf-bench-enroll (the records an enrolment writes, each device already healthy on the release;
# ids and credentials to a file), ringfenced started again. Then it measures:
#   start      seconds from exec to listening (loading every device and building the indexes)
#   idle CPU   the server's CPU time over IDLE_SECS seconds with no traffic, % of one core
#   check-ins  wrk posting real check-ins (each device's own credential and body, its id and
#              credential read by the Lua script from the file, devices in a random order):
#              requests/s, p50, p99 and max latency at full load
#   memory     resident memory / devices (VmRSS after the run), and the server's own count of
#              its working set (ringfenced's start-up log)
# Both servers run side by side and are loaded in alternating rounds (medians printed), so the
# machine's background load hits both sizes alike. Only 127.0.0.1 is contacted. Everything
# started here is stopped on exit.
set -euo pipefail

RINGFENCED=${1:?usage: bench-scale.sh RINGFENCED RINGFENCE RF_BENCH_ENROLL [DEVICES] [SECONDS] [CONNECTIONS]}
RINGFENCE=${2:?}
ENROLL=${3:?}
DEVICES=${4:-${RF_SCALE_DEVICES:-200000}}
SECS=${5:-10}
CONNS=${6:-64}
SMALL=${RF_SCALE_SMALL:-2000}
IDLE_SECS=${IDLE_SECS:-10}
THREADS=${WRK_THREADS:-2}

command -v wrk >/dev/null || { echo "bench-scale: wrk not installed (scripts/install-deps)"; exit 77; }

T=$(mktemp -d /tmp/rf-bench-scale-XXXXXX)
cleanup() {
	local p
	for p in "${PID[@]:-}"; do
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	rm -rf "$T"
}
trap cleanup EXIT

. "$(dirname "$0")/scale-lib.sh" # the repository, SHA, cpu_ticks, rss_kb, to_ms, HERE

declare -A PID PORT

start_rf() { # N [--init]
	local n=$1 dir=$T/n$1
	shift
	rm -f "$dir/port"
	"$RINGFENCED" "$@" --per-ip-connections 0 --listen 127.0.0.1:0 --port-file "$dir/port" \
		--db "$dir/rf.db" --repo "$T/repo" --admin-token-file "$dir/admin" \
		--threads "${RF_THREADS:-2}" 2>>"$dir/ringfenced.log" &
	PID[$n]=$!
	for _ in $(seq 3000); do [ -s "$dir/port" ] && break; sleep 0.05; done
	[ -s "$dir/port" ] || { echo "bench-scale: ringfenced did not start"; cat "$dir/ringfenced.log"; exit 1; }
	PORT[$n]=$(cat "$dir/port")
}

stop_rf() { # N
	kill -9 "${PID[$1]}" 2>/dev/null || true
	wait "${PID[$1]}" 2>/dev/null || true
	PID[$1]=
}

declare -A START LOADCPU WS IDLE RSS RATES P50S P99S MAXS

# setup N: a server with N bulk-enrolled devices, running; start time and working set.
setup() {
	local n=$1 dir=$T/n$1
	mkdir -p "$dir"
	start_rf "$n" --init
	local base=http://127.0.0.1:${PORT[$n]}
	RINGFENCE_ADMIN_TOKEN_FILE=$dir/admin RINGFENCE_SERVER=$base \
		"$RINGFENCE" release create packs/bench-1.rfp >/dev/null
	RINGFENCE_ADMIN_TOKEN_FILE=$dir/admin RINGFENCE_SERVER=$base \
		"$RINGFENCE" tenant create bench --json >/dev/null
	stop_rf "$n"
	"$ENROLL" "$dir/rf.db" bench "$n" 1 "$dir/devices.txt"
	local t0 t1
	t0=$(date +%s.%N)
	start_rf "$n"
	t1=$(date +%s.%N)
	base=http://127.0.0.1:${PORT[$n]}
	START[$n]=$(python3 -c "print('%.2f' % ($t1 - $t0))")
	LOADCPU[$n]=$(sed -n 's/.*devices in [0-9.]* s (\([0-9.]*\) s CPU).*/\1/p' "$dir/ringfenced.log" | tail -1)
	WS[$n]=$(sed -n 's/.*working set [0-9.]* MiB, \([0-9]*\) bytes a device (devices: \([0-9]*\) bytes.*/\1 (devices \2)/p' "$dir/ringfenced.log" | tail -1)
	# Sanity: a real check-in of one bulk-enrolled device answers "stay" on the release.
	local id cred
	read -r id cred <"$dir/devices.txt"
	curl -sf -H "Authorization: Bearer $cred" -H 'Content-Type: application/json' \
		-d "{\"device_id\":\"$id\",\"state\":{\"current\":{\"sha256\":\"$SHA\"}}}" \
		"$base/v1/checkin" | grep -q '"action":"stay"' ||
		{ echo "bench-scale: check-in sanity failed"; cat "$dir/ringfenced.log"; exit 1; }
}

# idle N: the periodic work alone (flush, gates, timestamp), no traffic.
idle() {
	local c0 c1
	c0=$(cpu_ticks "${PID[$1]}")
	sleep "$IDLE_SECS"
	c1=$(cpu_ticks "${PID[$1]}")
	IDLE[$1]=$(python3 -c "print('%.2f' % (($c1 - $c0) / $TCK / $IDLE_SECS * 100))")
}

# load N: one wrk round at full load.
load() {
	local n=$1 out
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s "$HERE/scale-checkin.lua" \
		"http://127.0.0.1:${PORT[$n]}/v1/checkin" -- "$T/n$n/devices.txt" "$SHA")
	if echo "$out" | grep -q "Non-2xx"; then echo "bench-scale: non-2xx:"; echo "$out"; exit 1; fi
	local rate p50 p99 max
	rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
	p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
	max=$(to_ms "$(echo "$out" | awk '$1 == "Latency" {print $4}')")
	echo "  round $2, $n devices: $rate check-ins/s  p50 $p50 ms  p99 $p99 ms  max $max ms"
	RATES[$n]="${RATES[$n]:-} $rate"
	P50S[$n]="${P50S[$n]:-} $p50"
	P99S[$n]="${P99S[$n]:-} $p99"
	MAXS[$n]="${MAXS[$n]:-} $max"
}

median() { python3 -c "import sys,statistics; print('%.2f' % statistics.median(float(x) for x in sys.argv[1:]))" $1; }

ROUNDS=${ROUNDS:-3}
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); one ringfenced on SQLite per size, threads ${RF_THREADS:-2}; wrk -t$THREADS -c$CONNS -d${SECS}s --latency, $ROUNDS alternating rounds; idle over ${IDLE_SECS}s"
setup "$SMALL"
setup "$DEVICES"
idle "$SMALL"
idle "$DEVICES"
# Both servers run side by side and are loaded in alternating rounds, so a change in the
# machine's background load hits both alike.
for round in $(seq "$ROUNDS"); do
	load "$SMALL" "$round"
	load "$DEVICES" "$round"
done
for n in "$SMALL" "$DEVICES"; do
	RSS[$n]=$(( $(rss_kb "${PID[$n]}") * 1024 / n ))
	printf "%10s devices: start %6ss (load %ss CPU)  idle CPU %5s%% of a core  %9s check-ins/s  p50 %6s ms  p99 %6s ms  max %7s ms  (medians)  RSS/device %6s B  working set/device %s B\n" \
		"$n" "${START[$n]}" "${LOADCPU[$n]}" "${IDLE[$n]}" "$(median "${RATES[$n]}")" \
		"$(median "${P50S[$n]}")" "$(median "${P99S[$n]}")" "$(median "${MAXS[$n]}")" \
		"${RSS[$n]}" "${WS[$n]}"
done
echo "rate at $DEVICES devices / rate at $SMALL: $(python3 -c "print('%.2f' % ($(median "${RATES[$DEVICES]}") / $(median "${RATES[$SMALL]}")))")x"
echo "machine load after: $(cut -d' ' -f1-3 /proc/loadavg)"
