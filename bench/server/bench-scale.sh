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

"$RINGFENCE" repo init "$T/repo" >/dev/null
head -c 4096 /dev/urandom >"$T/pack.rfp"
"$RINGFENCE" repo add "$T/repo" "$T/pack.rfp" --name packs/bench-1.rfp --custom \
	'{"ringfence":{"release":"bench-1","schedule":[{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":100}]},{"ring":"early","not_before":0,"ramp":[{"after":0,"percent":100}]},{"ring":"broad","not_before":0,"ramp":[{"after":0,"percent":100}]}]}}' >/dev/null
"$RINGFENCE" repo publish "$T/repo" >/dev/null
SHA=$(sha256sum "$T/pack.rfp" | cut -d' ' -f1)
TCK=$(getconf CLK_TCK)

# The wrk script: ids and credentials from a file (wrk's Lua refuses more than 65,536
# constants, so they cannot be compiled into the script), each thread a random order.
cat >"$T/scale.lua" <<EOF
local ids, creds = {}, {}
local i, step = 0, 1
-- tid is a global that wrk's setup() sets in each thread: each thread its own random start
-- (unseeded, every thread would walk the same devices in lockstep).
tid = 0
setup = function(thread) tid = tid + 1; thread:set("tid", tid) end
-- (i - 1 + step) % #ids + 1 with step coprime with #ids visits every device once a cycle.
local function gcd(a, b) while b ~= 0 do a, b = b, a % b end return a end
init = function(args)
  for line in io.lines(args[1]) do
    local id, cred = line:match("^(%S+) (%S+)$")
    ids[#ids + 1] = id
    creds[#creds + 1] = cred
  end
  math.randomseed(tid)
  i = math.random(#ids)
  -- a stride coprime with the count walks every device once per round, in a scrambled order
  step = 7919
  while gcd(#ids, step) ~= 1 do step = step + 2 end
end
local pre = '{"device_id":"'
local post = '","agent_version":"0.1.0","manifest_hash":"' .. string.rep("a", 64) ..
  '","state":{"current":{"target":"packs/bench-1.rfp","sha256":"$SHA"},' ..
  '"last_good":{"target":"packs/bench-1.rfp","sha256":"$SHA"},"trial":null,' ..
  '"quarantine":[],"safe_mode":false},"health":{"crashes":0,"rollbacks":0,"events":1000,"alerts":3}}'
request = function()
  i = (i - 1 + step) % #ids + 1
  return wrk.format("POST", "/v1/checkin",
    {["Authorization"] = "Bearer " .. creds[i], ["Content-Type"] = "application/json"},
    pre .. ids[i] .. post)
end
response = function(status, headers, body)
  if status ~= 200 then wrk.thread:stop() end
end
EOF

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
to_ms() { # wrk latency ("812.00us", "3.20ms", "1.02s") in ms
	python3 -c "import sys,re; v=sys.argv[1]; m=re.match(r'([0-9.]+)(us|ms|s|m)\$', v); f={'us':1e-3,'ms':1,'s':1e3,'m':6e4}; print('%.2f' % (float(m.group(1))*f[m.group(2)]))" "$1"
}

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
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s "$T/scale.lua" \
		"http://127.0.0.1:${PORT[$n]}/v1/checkin" -- "$T/n$n/devices.txt")
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
