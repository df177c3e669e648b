#!/usr/bin/env bash
# Check-ins per second of ringfenced against nginx serving a small static file, in one run, on
# loopback (bench/server; docs/server.md "Performance").
#
# Usage: bench-checkin.sh RINGFENCED RINGFENCE [SECONDS] [DEVICES] [CONNECTIONS]
#
# Sets up, in a temp dir: a TUF repository with one release whose signed schedule admits every
# device, a ringfenced on a free 127.0.0.1 port (SQLite in the temp dir), a tenant and DEVICES
# enrolled devices. Then wrk posts real check-ins (each device's own credential and body,
# round-robin, every device already running the release, so the answer is a real decision:
# "stay") for SECONDS, then the same wrk settings against nginx (started here with a config in
# the temp dir, on a free port, no root paths) serving a static file the size of a check-in
# reply. Prints both rates, their ratio and each server's CPU time per request; then the rate
# of durable reports (each committed before its reply). Only 127.0.0.1 is contacted.
# Everything started here is stopped on exit.
set -euo pipefail

RINGFENCED=${1:?usage: bench-checkin.sh RINGFENCED RINGFENCE [SECONDS] [DEVICES] [CONNECTIONS]}
RINGFENCE=${2:?}
SECS=${3:-5}
DEVICES=${4:-2000}
CONNS=${5:-64}
THREADS=${WRK_THREADS:-2}

command -v wrk >/dev/null || { echo "bench-checkin: wrk not installed (scripts/install-deps)"; exit 77; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench-checkin: nginx not installed (scripts/install-deps)"; exit 77; }

T=$(mktemp -d /tmp/rf-bench-server-XXXXXX)
chmod 755 "$T" # nginx workers run as an unprivileged user
RF_PID=
NG_PID=
cleanup() {
	[ -n "$RF_PID" ] && kill "$RF_PID" 2>/dev/null && wait "$RF_PID" 2>/dev/null || true
	[ -n "$NG_PID" ] && kill "$NG_PID" 2>/dev/null || true
	sleep 0.2
	rm -rf "$T"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# --- the repository and a release admitted to every device -----------------------------------
"$RINGFENCE" repo init "$T/repo" >/dev/null
# A real pack (release create verifies the target's bytes): the project's example rules.
"$RINGFENCE" content compile "$(dirname "$0")/../../examples/rules" -o "$T/pack.rfp" \
	>/dev/null 2>&1 || { echo "cannot compile the example rules" >&2; exit 1; }
"$RINGFENCE" repo add "$T/repo" "$T/pack.rfp" --name packs/bench-1.rfp --custom \
	'{"ringfence":{"release":"bench-1","schedule":[{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":100}]},{"ring":"early","not_before":0,"ramp":[{"after":0,"percent":100}]},{"ring":"broad","not_before":0,"ramp":[{"after":0,"percent":100}]}]}}' >/dev/null
"$RINGFENCE" repo publish "$T/repo" >/dev/null
SHA=$(sha256sum "$T/pack.rfp" | cut -d' ' -f1)

# --- ringfenced -------------------------------------------------------------------------------
${RF_BENCH_WRAP:-} "$RINGFENCED" --init --per-ip-connections 0 --listen 127.0.0.1:0 --port-file "$T/port" --db "$T/rf.db" --repo "$T/repo" \
	--admin-token-file "$T/admin" --threads "${RF_THREADS:-2}" 2>"$T/ringfenced.log" &
RF_PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || { echo "bench-checkin: ringfenced did not start"; cat "$T/ringfenced.log"; exit 1; }
PORT=$(cat "$T/port")
BASE=http://127.0.0.1:$PORT
export RINGFENCE_ADMIN_TOKEN_FILE=$T/admin RINGFENCE_SERVER=$BASE
"$RINGFENCE" release create packs/bench-1.rfp >/dev/null
ENROLL=$("$RINGFENCE" tenant create bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["enrollment_token"])')

# Enroll the devices (one python process, keep-alive) and write the wrk script with their
# credentials and check-in bodies.
python3 - "$PORT" "$ENROLL" "$DEVICES" "$SHA" "$T/checkin.lua" <<'PY'
import http.client, json, sys
port, tok, n, sha, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
c = http.client.HTTPConnection("127.0.0.1", port)
rows = []
for i in range(n):
    dev = "bench-%06d" % i
    c.request("POST", "/v1/enroll", json.dumps({"device_id": dev, "agent_version": "0.1.0"}),
              {"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    r = c.getresponse(); body = json.loads(r.read())
    if r.status != 201: sys.exit("enroll failed: %d %s" % (r.status, body))
    ck = {"device_id": dev, "ring": body["ring"], "agent_version": "0.1.0",
          "manifest_hash": "ab" * 32,
          "state": {"current": {"target": "packs/bench-1.rfp", "sha256": sha},
                    "last_good": {"target": "packs/bench-1.rfp", "sha256": sha},
                    "trial": None, "quarantine": [], "safe_mode": False},
          "health": {"crashes": 0, "rollbacks": 0, "events": 1000, "alerts": 3}}
    rows.append((body["credential"], json.dumps(ck, separators=(",", ":"))))
# Sanity: one real check-in answers "stay" on the release.
c.request("POST", "/v1/checkin", rows[0][1], {"Authorization": "Bearer " + rows[0][0],
          "Content-Type": "application/json"})
r = c.getresponse(); a = json.loads(r.read())
if r.status != 200 or a["action"] != "stay" or a["release"]["sha256"] != sha:
    sys.exit("check-in sanity failed: %d %s" % (r.status, a))
with open(out, "w") as f:
    f.write("local creds = {}\nlocal bodies = {}\n")
    for cred, body in rows:
        f.write("creds[#creds+1] = %s\nbodies[#bodies+1] = %s\n" % (json.dumps(cred), json.dumps(body)))
    f.write("""
-- Requests are formatted once per thread (init), so the client spends as little per request as
-- it does for nginx's static GET: the comparison measures the servers, not wrk's Lua.
local i = 0
local reqs = {}
init = function(args)
  for k = 1, #creds do
    reqs[k] = wrk.format("POST", "/v1/checkin",
      {["Authorization"] = "Bearer " .. creds[k], ["Content-Type"] = "application/json"}, bodies[k])
  end
  i = math.random(#creds)
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
response = function(status, headers, body)
  if status ~= 200 then wrk.thread:stop() end
end
""")
with open(out + ".devices", "w") as f:
    for i, (cred, body) in enumerate(rows):
        f.write("bench-%06d %s\n" % (i, cred))
with open(out + ".replylen", "w") as f:
    f.write(str(len(json.dumps(a, separators=(",", ":")))))
PY
REPLY_LEN=$(cat "$T/checkin.lua.replylen")

# --- nginx ------------------------------------------------------------------------------------
NPORT=$(free_port)
mkdir -p "$T/nginx/html" "$T/nginx/tmp"
head -c "$REPLY_LEN" /dev/zero | tr '\0' 'x' >"$T/nginx/html/checkin.json"
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes ${NGINX_WORKERS:-2};
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $T/nginx/tmp;
  proxy_temp_path $T/nginx/tmp;
  fastcgi_temp_path $T/nginx/tmp;
  uwsgi_temp_path $T/nginx/tmp;
  scgi_temp_path $T/nginx/tmp;
  server {
    listen 127.0.0.1:$NPORT;
    root $T/nginx/html;
    location / { default_type application/json; }
  }
}
EOF
"$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" &
NG_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$NPORT/checkin.json" >/dev/null && break; sleep 0.1; done

# --- measure ----------------------------------------------------------------------------------
# The machine may be shared: ringfenced and nginx are measured in alternating rounds so a change
# in background load hits both alike, and the ratio is taken per round.
rate() { awk '/Requests\/sec/ {print $2}'; }
reqs() { awk '/requests in/ {print $1}'; }
# CPU time (user + system, clock ticks) of a process and its children threads/processes: the
# servers' own cost per request, which background load does not change the way it changes
# throughput.
cpu_ticks() {
	local total=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$total"
}
NG_PIDS="$NG_PID $(pgrep -P "$NG_PID" | tr '\n' ' ')"
TCK=$(getconf CLK_TCK)
ROUNDS=${ROUNDS:-3}
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); ringfenced threads ${RF_THREADS:-2}, nginx workers ${NGINX_WORKERS:-2}; wrk -t$THREADS -c$CONNS -d${SECS}s x $ROUNDS rounds each; $DEVICES devices"
RFS=()
NGS=()
RFC=()
NGC=()
for round in $(seq "$ROUNDS"); do
	c0=$(cpu_ticks "$RF_PID")
	RF_OUT=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" -s "$T/checkin.lua" "$BASE/v1/checkin")
	c1=$(cpu_ticks "$RF_PID")
	# shellcheck disable=SC2086
	n0=$(cpu_ticks $NG_PIDS)
	NG_OUT=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$NPORT/checkin.json")
	# shellcheck disable=SC2086
	n1=$(cpu_ticks $NG_PIDS)
	RFC+=("$(python3 -c "print(($c1-$c0)/$TCK*1e6/max(1,$(echo "$RF_OUT" | reqs)))")")
	NGC+=("$(python3 -c "print(($n1-$n0)/$TCK*1e6/max(1,$(echo "$NG_OUT" | reqs)))")")
	if echo "$RF_OUT" | grep -q "Non-2xx"; then
		echo "bench-checkin: ringfenced answered non-2xx:"; echo "$RF_OUT"; exit 1
	fi
	if echo "$NG_OUT" | grep -q "Non-2xx"; then
		echo "bench-checkin: nginx answered non-2xx:"; echo "$NG_OUT"; exit 1
	fi
	echo "--- round $round: ringfenced check-ins (POST /v1/checkin, real decision)"
	echo "$RF_OUT" | sed -n '/Latency/p;/Requests\/sec/p'
	echo "--- round $round: nginx static file ($REPLY_LEN bytes)"
	echo "$NG_OUT" | sed -n '/Latency/p;/Requests\/sec/p'
	RFS+=("$(echo "$RF_OUT" | rate)")
	NGS+=("$(echo "$NG_OUT" | rate)")
done
CHECKINS=$(curl -s "$BASE/metrics" | awk '/^ringfence_checkins_total/ {print $2}')

# Durable reports: every one is committed (fsync) before it is answered; unique report ids, each
# from the next of the enrolled devices (a fleet's reports come from many devices: reports of
# one device are written one after the other, those of different devices share commits).
cat >"$T/report.lua" <<LUA
local ids, creds = {}, {}
local n, i = 0, 0
-- tid is a global: wrk's setup() sets it in each thread (a local would stay 0 in all, and the
-- threads' report ids would clash: duplicates, answered without a write).
tid = 0
setup = function(thread) tid = tid + 1; thread:set("tid", tid) end
init = function(args)
  for line in io.lines("$T/checkin.lua.devices") do
    local id, cred = line:match("^(%S+) (%S+)$")
    ids[#ids + 1] = id
    creds[#creds + 1] = cred
  end
  math.randomseed(tid)
  i = math.random(#ids)
end
request = function()
  n = n + 1
  i = i % #ids + 1
  return wrk.format("POST", "/v1/report",
    {["Authorization"] = "Bearer " .. creds[i], ["Content-Type"] = "application/json"},
    '{"device_id":"' .. ids[i] .. '","report_id":"b-' .. tid .. '-' .. n .. '","event":"installed","time":1}')
end
LUA
REP_OUT=$(wrk -t"$THREADS" -c16 -d"${SECS}s" -s "$T/report.lua" "$BASE/v1/report")
if echo "$REP_OUT" | grep -q "Non-2xx"; then
	echo "bench-checkin: reports answered non-2xx:"; echo "$REP_OUT"; exit 1
fi
REPORTS=$(echo "$REP_OUT" | rate)
# Group commit: how many reports shared a transaction (the server's own counters).
REPORTS_PER_COMMIT=$(curl -s "$BASE/metrics" | awk '/^ringfence_reports_total/ {r += $2} /^ringfence_report_commits_total/ {c = $2} END {printf "%.1f", c ? r / c : 0}')
python3 - "$CHECKINS" "${RFS[*]}" "${NGS[*]}" "${RFC[*]}" "${NGC[*]}" "$REPORTS" "$REPORTS_PER_COMMIT" <<'PY'
import statistics, sys
n = sys.argv[1]
rf = [float(x) for x in sys.argv[2].split()]
ng = [float(x) for x in sys.argv[3].split()]
rfc = [float(x) for x in sys.argv[4].split()]
ngc = [float(x) for x in sys.argv[5].split()]
ratios = [a / b for a, b in zip(rf, ng)]
print("ringfenced: median %.0f check-ins/s (rounds: %s; server counted %s check-ins)"
      % (statistics.median(rf), ", ".join("%.0f" % x for x in rf), n))
print("nginx:      median %.0f static GETs/s (rounds: %s)"
      % (statistics.median(ng), ", ".join("%.0f" % x for x in ng)))
print("ratio ringfenced/nginx: median %.2f (rounds: %s)   goal >= 1.00: %s"
      % (statistics.median(ratios), ", ".join("%.2f" % x for x in ratios),
         "met" if statistics.median(ratios) >= 1 else "NOT met"))
print("durable reports/s (POST /v1/report, each committed before its reply): %s (%s reports a commit)"
      % (sys.argv[6], sys.argv[7]))
print("goal >= 28000 check-ins/s: %s" % ("met" if statistics.median(rf) >= 28000 else "NOT met"))
print("server CPU per request (user+system, all threads): ringfenced median %.1f us, nginx median "
      "%.1f us (ratio %.2f; rounds: %s / %s)"
      % (statistics.median(rfc), statistics.median(ngc),
         statistics.median(rfc) / max(1e-9, statistics.median(ngc)),
         ", ".join("%.1f" % x for x in rfc), ", ".join("%.1f" % x for x in ngc)))
PY
