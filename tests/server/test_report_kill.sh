#!/usr/bin/env bash
# Nothing acknowledged is lost (P8) with group commit on PostgreSQL: ringfenced (8 HTTP worker
# threads, so reports of concurrent requests share transactions) takes reports from 16 devices
# at once, each device posting its next report as soon as the last was acknowledged, with
# check-ins in between; once 400 reports were acknowledged it is killed with SIGKILL at once
# (no flush, no shutdown). Then every report a client saw acknowledged must be in PostgreSQL,
# each device's row must carry the state of a report at least as new as its last acknowledged
# one, and the server must start again on that database and count the same.
# Every wait is bounded; everything started is stopped.
# Usage (under pg.sh): test_report_kill.sh RINGFENCE RINGFENCED
set -u
CLI=$1 SERVERBIN=$2
command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }
[ -n "${RF_TEST_DB:-}" ] || { echo "SKIP: run under tests/lib/pg.sh"; exit 77; }
N=16 ACKS=400
W=$(mktemp -d /tmp/rf-report-kill-XXXXXX)
SPID= LPID=
cleanup() {
	[ -n "$LPID" ] && kill -KILL "$LPID" 2>/dev/null
	[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	echo "---- server log (tail)"; tail -20 "$W/server.log" 2>/dev/null
	echo "---- load log (tail)"; tail -20 "$W/load.log" 2>/dev/null
	exit 1
}
ok() { echo "ok: $*"; }

DB_NAME=rf_kill_$$
psql "$RF_TEST_DB" -qc "CREATE DATABASE $DB_NAME" >/dev/null || fail "create database"
DB=${RF_TEST_DB/\/postgres\?//$DB_NAME?}

start_server() { # [--init]
	rm -f "$W/port"
	"$SERVERBIN" --db "$DB" ${1:-} --listen 127.0.0.1:0 --port-file "$W/port" \
		--admin-token-file "$W/admin-token" --per-ip-connections 0 --threads 8 \
		>>"$W/server.log" 2>&1 &
	SPID=$!
	for _ in $(seq 200); do [ -s "$W/port" ] && return 0; sleep 0.1; done
	fail "ringfenced did not start"
}
start_server --init
URL=http://127.0.0.1:$(cat "$W/port")
export RINGFENCE_SERVER=$URL RINGFENCE_ADMIN_TOKEN_FILE=$W/admin-token
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create"

# The load: one thread a device (enrol, then reports and check-ins back to back on one
# keep-alive connection); every acknowledged report is appended to acked.txt (flushed before
# the next request). The main thread stops the server once ACKS were acknowledged in all.
cat >"$W/load.py" <<'PY'
import http.client, json, os, signal, sys, threading, time
url_port, token, n, acks, spid, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
events = ["intent", "trial_started", "healthy", "crashed"]
lock = threading.Lock()
count = [0]
killed = threading.Event()
f = open(out, "w")

def req(c, path, body, auth):
    c.request("POST", path, json.dumps(body), {"Authorization": "Bearer " + auth, "Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read()

def device(k):
    dev = "kill-%02d" % k
    c = http.client.HTTPConnection("127.0.0.1", url_port, timeout=10)
    st, body = req(c, "/v1/enroll", {"device_id": dev, "agent_version": "0.1.0"}, token)
    if st != 201:
        print("enroll", dev, st, body, flush=True); return
    cred = json.loads(body)["credential"]
    i = 0
    while not killed.is_set():
        i += 1
        try:
            ev = events[i % 4]
            st, _ = req(c, "/v1/report", {"device_id": dev, "report_id": "r-%06d" % i, "event": ev,
                                          "target": "packs/x.rfp", "time": 1764000000 + i}, cred)
            if st not in (200, 201):
                print("report", dev, i, st, flush=True); continue
            with lock:
                f.write("%s r-%06d %s\n" % (dev, i, ev)); f.flush()
                count[0] += 1
                if count[0] == acks // 2:  # how many transactions so far (for the log)
                    try:
                        m = http.client.HTTPConnection("127.0.0.1", url_port, timeout=10)
                        m.request("GET", "/metrics")
                        for l in m.getresponse().read().decode().splitlines():
                            if l.startswith("ringfence_report_commits_total"):
                                print("after", count[0], "acknowledged reports:", l, flush=True)
                    except Exception:
                        pass
                if count[0] >= acks and not killed.is_set():
                    os.kill(spid, signal.SIGKILL)  # right after this acknowledgement
                    killed.set()
            req(c, "/v1/checkin", {"device_id": dev, "agent_version": "0.1.0"}, cred)
        except Exception:
            if killed.is_set():
                return
            time.sleep(0.05)
            c = http.client.HTTPConnection("127.0.0.1", url_port, timeout=10)

ts = [threading.Thread(target=device, args=(k,)) for k in range(n)]
for t in ts: t.start()
deadline = time.time() + 120
while not killed.is_set() and time.time() < deadline:
    time.sleep(0.05)
killed.set()
for t in ts: t.join(15)
print("acknowledged", count[0], flush=True)
PY
python3 "$W/load.py" "$(cat "$W/port")" "$TOKEN" $N $ACKS "$SPID" "$W/acked.txt" >"$W/load.log" 2>&1 &
LPID=$!
wait "$LPID" || fail "load driver failed"
LPID=
wait "$SPID" 2>/dev/null
st=$?
SPID=
[ "$st" = 137 ] || fail "ringfenced was not killed by SIGKILL (status $st)"
acked=$(wc -l <"$W/acked.txt")
[ "$acked" -ge $ACKS ] || fail "only $acked reports acknowledged before the kill"
commits=$(grep -c . "$W/acked.txt")
ok "$acked reports acknowledged by $N concurrent devices; ringfenced killed with SIGKILL right after the ${ACKS}th"
grep "^after" "$W/load.log"

# Every acknowledged report is in PostgreSQL.
psql "$DB" -Atc "SELECT device_id || ' ' || report_id FROM reports" | sort >"$W/stored.txt"
cut -d' ' -f1,2 "$W/acked.txt" | sort >"$W/acked-ids.txt"
missing=$(comm -23 "$W/acked-ids.txt" "$W/stored.txt" | wc -l)
[ "$missing" = 0 ] || fail "$missing acknowledged reports are not in PostgreSQL: $(comm -23 "$W/acked-ids.txt" "$W/stored.txt" | head -3)"
ok "all $acked acknowledged reports are in PostgreSQL ($(wc -l <"$W/stored.txt") stored)"

# Each device's row carries a report at least as new as its last acknowledged one: its state is
# the event of its newest stored report, and that report is not older than the last acked.
psql "$DB" -Atc "SELECT d.id, d.state, max(r.report_id) FROM devices d JOIN reports r ON r.device_id = d.id GROUP BY d.id, d.state" >"$W/rows.txt"
python3 - "$W/acked.txt" "$W/rows.txt" <<'PY' || fail "a device row lost an acknowledged report's state"
import sys
events = ["intent", "trial_started", "healthy", "crashed"]
last = {}
for line in open(sys.argv[1]):
    dev, rid, ev = line.split()
    last[dev] = max(last.get(dev, rid), rid)
bad = 0
for line in open(sys.argv[2]):
    dev, state, newest = line.strip().split("|")
    want = events[int(newest[2:]) % 4]
    if state != want or (dev in last and newest < last[dev]):
        print("device", dev, "row state", state, "newest stored", newest, "last acked", last.get(dev)); bad += 1
sys.exit(1 if bad else 0)
PY
ok "every device row holds the state of its newest report (none older than its last acknowledged)"

# The server starts again on that database and counts every stored report's device.
start_server
URL=http://127.0.0.1:$(cat "$W/port")
n=$(curl -s "$URL/metrics" -o /dev/null -w '%{http_code}')
[ "$n" = 200 ] || fail "ringfenced did not serve after the restart"
ok "ringfenced starts again on the database after SIGKILL"
echo "report-kill: all steps passed ($commits acknowledged)"
