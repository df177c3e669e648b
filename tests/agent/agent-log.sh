#!/bin/bash
# The log-file source end to end (docs/agent.md, "The log-file source"), against the real
# ringfenced: `ringfence-agent run --events log:aws_cloudtrail=FILE,log:linux_sshd=FILE` runs on
# manifests/ringfence-agent-logs-1.0.0.json; a pack of two SigmaHQ-style rules compiled against it
# (an AWS CloudTrail rule on eventSource/eventName/requestParameters, SigmaHQ's own sshd keyword
# rule) is taken, and then
#   - lines that were in the files before the agent started raise nothing (it starts at the end);
#   - each matching line appended raises exactly one alert, a line that does not match none;
#   - a CloudTrail correlation counts its events at their eventTime, not at their arrival;
#   - after a rotation (rename, new file) the new file's lines alert, once each;
#   - an over-long line is refused and counted: status's events_dropped.
# Exactly once is checked with a marker: lines are read in order, so when the alert of a last
# marker line has arrived every earlier line has been evaluated. Everything runs on 127.0.0.1;
# every wait is bounded; the script stops what it started.
# Usage: agent-log.sh RINGFENCE_AGENT RINGFENCED RINGFENCE
set -u
AGENT=$1 SERVERBIN=$2 CLI=$3
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
fail() {
	echo "FAIL: $*"
	for l in "$W"/agent-*.log; do [ -e "$l" ] && { echo "---- $l (tail)"; tail -20 "$l"; }; done
	[ -e "$W/alerts.jsonl" ] && { echo "---- alerts"; cat "$W/alerts.jsonl"; }
	exit 1
}
. "$SRC/tests/lib/e2e.sh" # rf_e2e_init, rf_start_server, rf_publish, sha, ok
rf_e2e_init agent-log

SPEC="log:aws_cloudtrail=$W/ct.jsonl,log:linux_sshd=$W/auth.log"
"$AGENT" manifest --events "$SPEC" >"$W/m.json" || fail "manifest --events log:..."
cmp -s "$W/m.json" "$SRC/manifests/ringfence-agent-logs-1.0.0.json" ||
	fail "--events log:... does not choose ringfence-agent-logs-1.0.0.json"
ok "--events log:... chooses ringfence-agent-logs-1.0.0"

mkdir -p "$W/rules"
cat >"$W/rules/aws_disable_bucket_versioning.yml" <<'EOF'
title: AWS S3 Bucket Versioning Disable
id: a136ac98-b2bc-4189-a14d-f0d0388e57a7
status: test
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventSource: s3.amazonaws.com
        eventName: PutBucketVersioning
        requestParameters|contains: 'Suspended'
    condition: selection
level: medium
EOF
# SigmaHQ's rules/linux/builtin/sshd/lnx_sshd_susp_ssh.yml (its detection as published)
cat >"$W/rules/lnx_sshd_susp_ssh.yml" <<'EOF'
title: Suspicious OpenSSH Daemon Error
id: e76b413a-83d0-4b94-8e4c-85db4a5b8bdc
status: test
logsource:
    product: linux
    service: sshd
detection:
    keywords:
        - 'unexpected internal error'
        - 'unknown or unsupported key type'
        - 'invalid certificate signing key'
        - 'invalid elliptic curve value'
        - 'incorrect signature'
        - 'error in libcrypto'
        - 'unexpected bytes remain after decoding'
        - 'fatal: buffer_get_string: bad string'
        - 'Local: crc32 compensation attack'
        - 'bad client public DH value'
        - 'Corrupted MAC on input'
    condition: keywords
level: medium
EOF
# A CloudTrail correlation: its events are timed by eventTime, the manifest's "time" for
# aws_cloudtrail (review 5-2: they took their arrival time, so a batch fired it)
cat >"$W/rules/ct_login_twice.yml" <<'EOF'
title: CloudTrail console login
id: 00000000-0000-4000-8000-0000000c7001
name: ct_console_login
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventName: ConsoleLogin
    condition: selection
---
title: Two console logins in a minute
id: 00000000-0000-4000-8000-0000000c7002
correlation:
    type: event_count
    rules: [ct_console_login]
    group-by: [userIdentity.arn]
    timespan: 1m
    condition:
        gte: 2
level: low
EOF
cat >"$W/rules/marker.yml" <<'EOF'
title: Test Marker
id: 00000000-0000-4000-8000-00000000abcd
logsource:
    product: linux
    service: sshd
detection:
    keywords:
        - 'RINGFENCE-MARKER'
    condition: keywords
level: low
EOF
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$W/rules" -o "$W/p.rfp" --seq 1 \
	--manifest "$SRC/manifests/ringfence-agent-logs-1.0.0.json" >"$W/compile.out" 2>&1 ||
	{ cat "$W/compile.out"; fail "compile"; }
H=$(sha "$W/p.rfp")
rf_start_server
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create"
rf_publish packs/p.rfp "$W/p.rfp" rel-1

CT_MATCH='{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"PutBucketVersioning","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/x"},"requestParameters":{"bucketName":"b","VersioningConfiguration":{"Status":"Suspended"}},"responseElements":null}'
CT_OTHER='{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"PutBucketVersioning","requestParameters":{"bucketName":"b","VersioningConfiguration":{"Status":"Enabled"}}}'
SSH_MATCH='Dec  3 13:00:01 host sshd[4242]: error: Corrupted MAC on input. [preauth]'
SSH_OTHER='Dec  3 13:00:02 host sshd[4243]: Accepted publickey for bob from 10.0.0.1 port 22'
# before the agent: in the files, never alerted
echo "$CT_MATCH" >"$W/ct.jsonl"
echo "$SSH_MATCH" >"$W/auth.log"

"$AGENT" run --server "$URL" --store "$W/store" --ring canary --enroll-token "$TOKEN" \
	--device-id dev-log --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
	--probation 1 --probation-events 0 --alerts "$W/alerts.jsonl" --events "$SPEC" \
	>>"$W/agent-log.log" 2>&1 &
APIDS+=($!)
current() { "$AGENT" status --store "$W/store" --json 2>/dev/null |
	python3 -c "import json,sys; s=json.load(sys.stdin); print((s.get('current') or {}).get('sha256'))" 2>/dev/null; }
for i in $(seq 300); do [ "$(current)" = "$H" ] && break; sleep 0.1; done
[ "$(current)" = "$H" ] || fail "the agent did not take the pack"
grep -q "manifest ringfence-agent-logs-1.0.0" "$W/agent-log.log" || fail "the agent does not say its manifest"
ok "the agent with a log source runs on ringfence-agent-logs-1.0.0 and took the pack"

count() { grep -c "\"rule\":\"$1\"" "$W/alerts.jsonl" 2>/dev/null || true; }
# wait_marker N: the marker rule has alerted N times (20 s at most)
wait_marker() {
	local i
	for i in $(seq 200); do [ "$(count 00000000-0000-4000-8000-00000000abcd)" = "$1" ] && return 0; sleep 0.1; done
	fail "marker $1 did not alert"
}
# The worker may still be starting: append until the first marker alerts (bounded), then the
# real lines. The marker lines before the first alert are not counted.
for i in $(seq 100); do
	echo "Dec  3 13:00:00 host sshd[1]: RINGFENCE-MARKER warmup" >>"$W/auth.log"
	sleep 0.2
	[ "$(count 00000000-0000-4000-8000-00000000abcd)" != 0 ] && break
done
M=$(count 00000000-0000-4000-8000-00000000abcd)
[ "$M" != 0 ] || fail "no alert from the log source"
sleep 0.5
M=$(count 00000000-0000-4000-8000-00000000abcd)
[ "$(count a136ac98-b2bc-4189-a14d-f0d0388e57a7)" = 0 ] || fail "a CloudTrail line from before the start alerted"
[ "$(count e76b413a-83d0-4b94-8e4c-85db4a5b8bdc)" = 0 ] || fail "an sshd line from before the start alerted"
ok "lines already in the files raise nothing"

{ echo "$CT_OTHER"; echo "$CT_MATCH"; echo "$CT_OTHER"; echo "$CT_MATCH"; } >>"$W/ct.jsonl"
{ echo "$SSH_OTHER"; echo "$SSH_MATCH"; echo "$SSH_OTHER"; } >>"$W/auth.log"
sleep 0.6 # two poll periods: the CloudTrail file is read (then the marker proves the order)
echo "Dec  3 13:00:09 host sshd[9]: RINGFENCE-MARKER one" >>"$W/auth.log"
wait_marker $((M + 1))
sleep 0.6
[ "$(count a136ac98-b2bc-4189-a14d-f0d0388e57a7)" = 2 ] || fail "CloudTrail: $(count a136ac98-b2bc-4189-a14d-f0d0388e57a7) alerts, want 2"
[ "$(count e76b413a-83d0-4b94-8e4c-85db4a5b8bdc)" = 1 ] || fail "sshd: $(count e76b413a-83d0-4b94-8e4c-85db4a5b8bdc) alerts, want 1"
ok "appended lines: 2 CloudTrail and 1 sshd alert, exactly once each"

# eventTime, not arrival: two logins of x 6 minutes apart arrive together and do not fire (the
# same lines timed by their arrival fired); two of y 20 s apart fire. The times lie within the
# 5 minutes of lateness and skew around now (docs/sigma.md "Time").
ct_login() {
	printf '{"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","userIdentity":{"arn":"%s"},"eventTime":"%s"}\n' \
		"$1" "$(date -u -d "$2" '+%Y-%m-%dT%H:%M:%SZ')"
}
{ ct_login x '-3 min'; ct_login x '+3 min'; ct_login y 'now'; ct_login y '+20 sec'; } >>"$W/ct.jsonl"
sleep 0.6
echo "Dec  3 13:00:09 host sshd[9]: RINGFENCE-MARKER ct" >>"$W/auth.log"
wait_marker $((M + 2))
M=$((M + 1))
corr() { grep -c "\"correlation\":\"00000000-0000-4000-8000-0000000c7002\".*\"group\":{\"userIdentity.arn\":\"$1\"}" "$W/alerts.jsonl" || true; }
[ "$(corr y)" = 1 ] || fail "two CloudTrail logins 20 s apart: $(corr y) correlation alerts, want 1"
[ "$(corr x)" = 0 ] || fail "two CloudTrail logins 6 minutes apart (eventTime) fired: arrival time used"
ok "CloudTrail correlations are timed by eventTime (the manifest's time field), not arrival"

# rotation: rename and a new file
mv "$W/auth.log" "$W/auth.log.1"
{ echo "$SSH_MATCH"; echo "Dec  3 13:00:10 host sshd[9]: RINGFENCE-MARKER two"; } >"$W/auth.log"
wait_marker $((M + 2))
sleep 0.6
[ "$(count e76b413a-83d0-4b94-8e4c-85db4a5b8bdc)" = 2 ] || fail "after rotation: $(count e76b413a-83d0-4b94-8e4c-85db4a5b8bdc) sshd alerts, want 2"
ok "after a rotation the new file's lines alert, once each"

# an over-long line: refused whole, counted in status's events_dropped
python3 -c "print('Corrupted MAC on input ' + 'x' * (200 * 1024))" >>"$W/auth.log"
echo "Dec  3 13:00:11 host sshd[9]: RINGFENCE-MARKER three" >>"$W/auth.log"
wait_marker $((M + 3))
[ "$(count e76b413a-83d0-4b94-8e4c-85db4a5b8bdc)" = 2 ] || fail "the over-long line alerted"
dropped=0
for i in $(seq 100); do
	dropped=$("$AGENT" status --store "$W/store" --json 2>/dev/null |
		python3 -c "import json,sys; print(json.load(sys.stdin).get('events_dropped', 0))" 2>/dev/null)
	[ "${dropped:-0}" -ge 1 ] 2>/dev/null && break
	sleep 0.2
done
[ "${dropped:-0}" -ge 1 ] 2>/dev/null || fail "status does not count the refused line (events_dropped $dropped)"
grep -q "over a size limit" "$W/agent-log.log" || fail "the agent did not warn about the refused line"
ok "an over-long line is refused whole and counted (events_dropped $dropped)"
echo "PASS"
