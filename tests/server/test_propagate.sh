#!/bin/bash
# An operator change is acknowledged only once every live instance has applied it (docs/server.md,
# "Several instances", P6: an acknowledged halt really stops the rollout), for real: 2 ringfenced
# on one PostgreSQL database, asked directly (no proxy, so the test picks the instance). Checks:
#  - a tenant created on instance 1 enrolls a device on instance 2 at once (5 tenants, each
#    enrolment sent right after the create was answered; before, 401 until 2 read the change);
#  - a release halted on instance 1 is never "install" in a check-in on instance 2 sent right
#    after the halt was answered (5 rounds of halt and resume);
#  - an instance stopped with SIGSTOP (its heartbeat still fresh) makes a change's answer name
#    it in "pending_instances" after the bounded wait, and the CLI warns; once its heartbeat is
#    stale it is named in "not_live_instances" and not waited for; resumed with SIGCONT, a
#    change reaches it again ("complete", nothing pending).
# Every wait is bounded in count; everything started is stopped.
# Usage (under pg.sh): test_propagate.sh RINGFENCE RINGFENCED
set -u
CLI=$1 SERVERBIN=$2
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
fail() {
	echo "FAIL: $*"
	for k in 1 2; do echo "---- server $k log (tail)"; tail -15 "$W/server-$k.log" 2>/dev/null; done
	exit 1
}
. "$SRC/tests/lib/cluster.sh" # rf_cluster_init, rf_instance_start, sql, ok
rf_cluster_init prop

"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$SRC/examples/rules" -o "$W/a.rfp" --seq 1 >/dev/null 2>&1 || fail "compile"
now=$(date +%s)
"$CLI" repo add "$W/repo" "$W/a.rfp" --name packs/a.rfp --custom "{\"ringfence\":{\"release\":\"rel-a\",\"schedule\":[{\"ring\":\"canary\",\"not_before\":$now,\"ramp\":[{\"after\":0,\"percent\":100}]}],\"gates\":{\"probation_s\":2,\"silence_s\":600,\"min_bake_s\":3,\"min_healthy\":1,\"floor_devices\":1,\"min_events\":1,\"alpha_ppm\":200000}}}" >/dev/null || fail "repo add"
"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish"

rf_instance_start 1 --init --admin-token-file "$W/admin-token"
rf_instance_start 2
export RINGFENCE_ADMIN_TOKEN_FILE=$W/admin-token
# Both instances have a heartbeat (their first tick) before the test's changes.
for i in $(seq 100); do [ "$(sql "SELECT count(*) FROM rf_instances")" = 2 ] && break; sleep 0.1; done
[ "$(sql "SELECT count(*) FROM rf_instances")" = 2 ] || fail "no heartbeat from both instances"
ok "both instances have a heartbeat in rf_instances"

# The races, from one process: each request is sent as soon as the previous one was answered.
cat >"$W/race.py" <<'PY'
import http.client, json, sys, time
p1, p2, admin, step = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3]).read().strip(), sys.argv[4]
c1 = http.client.HTTPConnection("127.0.0.1", p1, timeout=30)
c2 = http.client.HTTPConnection("127.0.0.1", p2, timeout=30)

def req(c, method, path, body, auth):
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"Authorization": "Bearer " + auth, "Content-Type": "application/json"})
    r = c.getresponse()
    b = r.read()
    try:
        return r.status, json.loads(b)
    except ValueError:
        return r.status, b

def out(*a):
    print(*a, flush=True)

if step == "tenants":
    bad = 0
    for k in range(5):
        st, t = req(c1, "POST", "/v1/admin/tenants", {"name": "t%d" % k, "ring": "canary"}, admin)
        if st != 201:
            out("tenant create", st, t); sys.exit(1)
        prop = t.get("propagation", {})
        st, e = req(c2, "POST", "/v1/enroll", {"device_id": "d%d" % k, "agent_version": "0.1.0"}, t["enrollment_token"])
        out("tenant t%d: created on 1 (propagation %s), enrolment on 2 -> %d" % (k, json.dumps(prop), st))
        if st != 201:
            bad += 1
        else:
            open(sys.argv[5], "a").write("d%d %s\n" % (k, e["credential"]))
    sys.exit(1 if bad else 0)

if step == "halt":
    dev, cred = open(sys.argv[5]).readline().split()
    def checkin():
        st, a = req(c2, "POST", "/v1/checkin", {"device_id": dev, "agent_version": "0.1.0"}, cred)
        if st != 200:
            out("checkin", st, a); sys.exit(1)
        return a["action"]
    bad = 0
    for rnd in range(5):
        # Instance 2 tells the device to install (bounded: its tick fills the cohort).
        for i in range(100):
            if checkin() == "install":
                break
            time.sleep(0.1)
        else:
            out("round %d: instance 2 never said install" % rnd); sys.exit(1)
        t0 = time.monotonic()
        st, h = req(c1, "POST", "/v1/admin/releases/1/halt", {"reason": "race %d" % rnd}, admin)
        ms = (time.monotonic() - t0) * 1000  # printed, never asserted
        if st != 200:
            out("halt", st, h); sys.exit(1)
        a = checkin()
        out("round %d: halted on 1 in %.0f ms (propagation %s); check-in on 2 at once -> %s"
            % (rnd, ms, json.dumps(h.get("propagation")), a))
        if a == "install":
            bad += 1
        st, h = req(c1, "POST", "/v1/admin/releases/1/resume", {}, admin)
        if st != 200:
            out("resume", st, h); sys.exit(1)
    sys.exit(1 if bad else 0)
PY

python3 "$W/race.py" "${PORT[1]}" "${PORT[2]}" "$W/admin-token" tenants "$W/creds" >"$W/tenants.log" 2>&1 ||
	{ cat "$W/tenants.log"; fail "a tenant created on instance 1 could not enroll on instance 2 at once"; }
cat "$W/tenants.log"
ok "5 tenants created on instance 1, each enrolled a device on instance 2 right after the answer"

RINGFENCE_SERVER=http://127.0.0.1:${PORT[1]} "$CLI" release create packs/a.rfp >/dev/null || fail "release create"
python3 "$W/race.py" "${PORT[1]}" "${PORT[2]}" "$W/admin-token" halt "$W/creds" >"$W/halt.log" 2>&1 ||
	{ cat "$W/halt.log"; fail "a check-in on instance 2 right after a halt on instance 1 was told to install"; }
cat "$W/halt.log"
ok "5 rounds: a check-in on instance 2 right after each halt on instance 1 was not told to install"

# Instance 2 stopped: its heartbeat is still fresh, so a change waits for it (bounded) and its
# answer names it; the CLI says so on stderr and exits 0 (the change is committed).
kill -STOP "${SPID[2]}"
out=$(RINGFENCE_SERVER=http://127.0.0.1:${PORT[1]} "$CLI" release hold 1 --reason stopped 2>"$W/hold.err") ||
	{ cat "$W/hold.err"; fail "hold with instance 2 stopped"; }
cat "$W/hold.err"
grep -q "instance '.* pid ${SPID[2]}' had not applied this change" "$W/hold.err" ||
	fail "the CLI did not name the stopped instance (pid ${SPID[2]}) as pending"
ok "with instance 2 stopped, the hold was answered after the bounded wait naming it pending (CLI warning)"
# admin_post PATH BODY: an operator request to instance 1; prints the reply's "propagation"
# member (or the whole reply when it has none).
admin_post() {
	curl -s -X POST -H "Authorization: Bearer $(cat "$W/admin-token")" \
		-H "Content-Type: application/json" -d "$2" "http://127.0.0.1:${PORT[1]}$1" |
		python3 -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps(j.get("propagation", j)))'
}
# Once its heartbeat is stale (RF_SRV_LIVE_MS), it is not live: named so, and not waited for.
prop=
for i in $(seq 40); do
	prop=$(admin_post /v1/admin/releases/1/resume '{}')
	echo "$prop" | grep -q "\"not_live_instances\": \[\"[^\"]* pid ${SPID[2]}\"\]" && break
	admin_post /v1/admin/releases/1/hold '{"reason":"again"}' >/dev/null
	sleep 0.5
done
echo "$prop" | grep -q "\"not_live_instances\": \[\"[^\"]* pid ${SPID[2]}\"\]" ||
	fail "the stopped instance was never named not live: $prop"
echo "$prop" | grep -q '"pending_instances": \[\]' || fail "a not-live instance is still waited for: $prop"
echo "propagation: $prop"
ok "with instance 2 stopped past its heartbeat's freshness, a change names it not live (after $i changes)"
kill -CONT "${SPID[2]}"
for i in $(seq 40); do
	prop=$(admin_post /v1/admin/releases/1/hold '{"reason":"back"}')
	admin_post /v1/admin/releases/1/resume '{}' >/dev/null
	[ "$prop" = '{"complete": true, "pending_instances": [], "not_live_instances": []}' ] && break
	sleep 0.5
done
[ "$prop" = '{"complete": true, "pending_instances": [], "not_live_instances": []}' ] ||
	fail "instance 2 resumed, but a change does not reach it: $prop"
ok "instance 2 resumed with SIGCONT: a change reaches every instance again"
exit 0
