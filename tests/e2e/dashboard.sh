#!/bin/bash
# The operator's view, as a person sees it (issue 15): a real ringfenced (new database, --init),
# three real agents enrolled through the real API, two releases, an operator halt; then
#   1. the dashboard loaded in headless Chromium (its script runs: it polls the server and
#      swaps the page in place) and the DOM asserted after the scripts ran: live updates, UTC
#      ISO 8601 times with "ago"/"in", what the fleet runs, why each ring waits and when it
#      opens, the operator's halt told apart from a gate's (devices that obeyed it are not
#      failed), the release timeline from the audit trail; a screenshot is kept in the build
#      directory (dashboard.png);
#   2. /metrics through `promtool check metrics`, and the families an on-call person needs;
#   3. the audit trail: `ringfence audit` and the server's log lines (journald priorities).
# Everything runs on 127.0.0.1 (a free port); every wait is bounded; the script stops what it
# started. Usage: dashboard.sh RINGFENCE RINGFENCE_AGENT RINGFENCED
set -u
CLI=$1 AGENT=$2 SERVERBIN=$3
SRC=${RF_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
OUT=${RF_BUILD_ROOT:-$PWD}
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read JSON"; exit 77; }
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "SKIP: no chromium on this machine (scripts/install-deps installs Debian's chromium)"; exit 77; }
command -v promtool >/dev/null || { echo "FAIL: promtool missing (scripts/install-deps installs Debian's prometheus)"; exit 1; }
N=3
. "$SRC/tests/lib/e2e.sh"
rf_e2e_init dashboard
fail() {
	echo "FAIL: $*"
	echo "---- server log (tail)"; tail -20 "$W/server.log" 2>/dev/null
	exit 1
}

mkdir -p "$W/rules-b"
cp "$SRC/examples/rules/certutil_download.yml" "$W/rules-b/"
"$CLI" repo init "$W/repo" >/dev/null || fail "repo init"
"$CLI" content compile "$SRC/examples/rules" -o "$W/a.rfp" --seq 1 >/dev/null 2>&1 || fail "compile a"
"$CLI" content compile "$W/rules-b" -o "$W/b.rfp" --seq 2 >/dev/null 2>&1 || fail "compile b"
LATER=$(($(date +%s) + 7200))
publish() { rf_publish "$1" "$2" "$3" "$4" "$GATES"; } # NAME FILE RELEASE-ID SCHEDULE
# Healthy after 1 s on a release; a step bakes an hour (so the canary keeps ramping).
GATES='{"probation_s":1,"min_bake_s":3600,"min_healthy":2}'
CANARY='{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":100}]}'
EARLY="{\"ring\":\"early\",\"not_before\":$LATER,\"ramp\":[{\"after\":0,\"percent\":100}]}"

# JOURNAL_STREAM: log as under systemd, with the "<N>" priority prefixes journald reads.
JOURNAL_STREAM=0:0 rf_start_server
TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
[ -n "$TOKEN" ] || fail "tenant create"
publish packs/a.rfp "$W/a.rfp" rel-a "$CANARY,$EARLY"
head -3 "$SRC/examples/events/sample.jsonl" > "$W/events.jsonl"
for k in $(seq $N); do
	"$AGENT" run --server "$URL" --store "$W/store-$k" --ring canary --enroll-token "$TOKEN" \
		--device-id "dash-$k" --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
		--probation 2 --probation-events 0 --events "$W/events.jsonl" \
		--alerts "$W/alerts-$k.jsonl" >"$W/agent-$k.log" 2>&1 &
	APIDS+=($!)
done
rel_json() { # ID EXPR: Python over the release's status JSON r
	"$CLI" release status "$1" --json 2>/dev/null |
		python3 -c "import json,sys; r=json.load(sys.stdin); print($2)" 2>/dev/null
}
wait_rel() { # ID EXPR WANT SECONDS
	local deadline=$((SECONDS + $4))
	while [ $SECONDS -lt $deadline ]; do
		[ "$(rel_json "$1" "$2")" = "$3" ] && return 0
		sleep 0.3
	done
	return 1
}
wait_rel 1 "r['rings'][0]['health']['healthy']" $N 90 ||
	fail "release 1: $N healthy canary devices expected, have $(rel_json 1 "r['rings'][0]['health']")"
ok "release 1 healthy on $N agents"
publish packs/b.rfp "$W/b.rfp" rel-b "$CANARY"
wait_rel 2 "r['rings'][0]['health']['devices']" $N 60 || fail "release 2 did not reach the agents"
"$CLI" release halt 2 --reason "rule 7 too noisy" >/dev/null || fail "halt 2"
wait_rel 2 "r['rings'][0]['health']['obeyed_halt']" $N 60 ||
	fail "the agents did not leave release 2 ($(rel_json 2 "r['rings'][0]['health']"))"
ok "release 2 halted by the operator; $N agents obeyed and went back to release 1"

# ---- 1. the dashboard in a real browser ----
# --virtual-time-budget runs the page's timers (its first poll is after 1 s, then every 5 s) and
# waits for their fetches before the DOM is dumped.
chrome() {
	timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
		--user-data-dir="$W/chrome" --window-size=1280,2400 --virtual-time-budget=12000 "$@" \
		2>>"$W/chrome.log"
}
chrome --dump-dom "$URL/" >"$W/dom.html" || fail "chromium failed: $(tail -5 "$W/chrome.log")"
chrome --screenshot="$OUT/dashboard.png" "$URL/" >/dev/null ||
	fail "chromium screenshot failed: $(tail -5 "$W/chrome.log")"
[ -s "$OUT/dashboard.png" ] || fail "no screenshot"
ok "screenshot kept: $OUT/dashboard.png"
python3 - "$W/dom.html" "$N" <<'EOF' || fail "the dashboard does not show what it should (DOM: $W/dom.html, KEEP=1 keeps it)"
import re, sys
from html.parser import HTMLParser
dom, n = open(sys.argv[1]).read(), int(sys.argv[2])

class Text(HTMLParser):
    """The visible text per element id/class context, as a person reads it."""
    def __init__(self):
        super().__init__(); self.parts = []; self.skip = 0
    def handle_starttag(self, tag, a):
        if tag in ("script", "style"): self.skip += 1
        if tag in ("td", "th", "tr", "li", "p", "h1", "h2", "h3", "br", "div"): self.parts.append(" ")
    def handle_endtag(self, tag):
        if tag in ("script", "style"): self.skip -= 1
    def handle_data(self, d):
        if not self.skip: self.parts.append(d)
def text(html):
    t = Text(); t.feed(html); return re.sub(r"\s+", " ", "".join(t.parts))
def section(rid):
    m = re.search(r'<section class="release" id="release-%d">(.*?)</section>' % rid, dom, re.S)
    assert m, "no section of release %d" % rid
    return m.group(1)
def row(sec, ring):
    m = re.search(r'<tr class="ring" data-ring="%s">(.*?)</tr>' % ring, sec, re.S)
    assert m, "no row of ring %s" % ring
    return text(m.group(1))
errors = []
def check(cond, what):
    if not cond: errors.append(what)

page = text(dom)
# Live: the script polled the server and swapped the page in place.
m = re.search(r'<span id="live" class="live" data-polls="(\d+)">([^<]*)</span>', dom)
check(m and int(m.group(1)) >= 1 and m.group(2).startswith("live: updated "),
      "the page did not update itself: %r" % (m.group(0) if m else None))
# Times: UTC ISO 8601 with "ago" / "in", never raw epoch seconds, never NaN.
check(re.search(r"Server time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \((\d+ s|\d+ min) ago\)", page),
      "server time is not ISO 8601 with 'ago'")
check("NaN" not in page and "undefined" not in page, "NaN/undefined on the page")
check(not re.search(r"\b1[6-9]\d{8}\b", page), "raw epoch seconds on the page")
# What the fleet runs now: the canary's devices all back on release 1.
fleet = re.search(r'<table class="fleet">(.*?)</table>', dom, re.S)
check(fleet, "no fleet table")
if fleet:
    ft = text(fleet.group(1))
    check("release #1" in ft, "fleet table has no release #1 column: " + ft)
    check(re.search(r"canary %d %d\b" % (n, n), ft), "fleet: canary should run release 1 on %d devices: %s" % (n, ft))
# Release 2: an operator's halt, told apart from a gate's; obeying devices are not failed.
s2 = section(2)
t2 = text(s2)
check('class="status ophalt"' in s2, "release 2 is not marked as an operator halt")
check("Halted by an operator" in t2 and "rule 7 too noisy" in t2, "release 2 halt text: " + t2[:300])
check("gate failed" not in t2 and "Halted by the" not in t2, "release 2 painted as a gate halt")
c2 = row(s2, "canary")
check(re.search(r"took %d: %d healthy, 0 failed, %d left on an operator's halt" % (n, n, n), c2)
      or re.search(r"took %d: \d+ healthy, 0 failed, %d left on an operator's halt" % (n, n), c2),
      "release 2 canary counts: " + c2)
check("stopped: halted by an operator" in c2, "release 2 canary why: " + c2)
# The grey (left on halt) segment covers the whole bar, no red.
bar = re.search(r'<svg class="bar" width="200" height="12".*?</svg>', s2, re.S).group(0)
check('width="200.0" height="12" fill="#999"' in bar and re.search(r'width="0\.0" height="12" fill="#c22"', bar),
      "release 2 bar is not all 'left on halt': " + bar)
# Its timeline: who halted it and why, and its creation.
check(re.search(r"release\.halt by admin:[0-9a-f]{8}: operator: rule 7 too noisy", t2), "timeline of release 2: " + t2[-600:])
check("release.create by admin:" in t2, "timeline lacks the creation")
# Release 1: why each ring waits, and when it opens.
s1 = section(1)
c1, e1 = row(s1, "canary"), row(s1, "early")
check(re.search(r"completes: gate waits.*bake until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in \d+ (min|h)\)", c1)
      or "complete" in c1, "release 1 canary why: " + c1)
check(re.search(r"waits for ring canary to complete; opens no earlier than \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in (1|2) h\)", e1),
      "release 1 early why: " + e1)
check(re.search(r"took %d: %d healthy, 0 failed" % (n, n), c1), "release 1 canary counts: " + c1)
check("gate.open by gate: ring canary opened" in text(s1), "release 1 timeline lacks the gate's decision")
if errors:
    print("\n".join("dashboard: " + e for e in errors)); sys.exit(1)
EOF
ok "dashboard (headless Chromium, after its scripts ran): live, ISO times, fleet, why rings wait, operator halt not failures, timeline"

# Without JavaScript the same facts are in the HTML, and it reloads itself.
curl -s "$URL/" >"$W/plain.html"
grep -q '<noscript><meta http-equiv="refresh" content="30"></noscript>' "$W/plain.html" || fail "no refresh without JavaScript"
grep -q "Halted by an operator" "$W/plain.html" || fail "the static page lacks the halt"
ok "readable without JavaScript"

# ---- 2. metrics ----
curl -s "$URL/metrics" >"$W/metrics.txt"
promtool check metrics <"$W/metrics.txt" >"$W/promtool.txt" 2>&1 || fail "promtool check metrics: $(cat "$W/promtool.txt")"
for want in 'ringfence_build_info{version="' \
	'ringfence_release_gate{release="2",ring="canary",state="halted"} 1' \
	'ringfence_release_gate_p_value{release="1",ring="canary"}' \
	'ringfence_release_halt_by_operator{release="2"} 1' \
	"ringfence_release_devices{release=\"2\",ring=\"canary\",state=\"left_on_halt\"} $N" \
	'ringfence_devices_waiting_for_fix 0' \
	'ringfence_checkin_duration_seconds_bucket{le="+Inf"}' \
	'ringfence_checkin_duration_seconds_count'; do
	grep -qF "$want" "$W/metrics.txt" || fail "/metrics lacks '$want'"
done
count=$(awk '$1 == "ringfence_checkin_duration_seconds_count" { print $2 }' "$W/metrics.txt")
[ "${count:-0}" -gt 0 ] || fail "the check-in latency histogram counted nothing"
ok "/metrics passes promtool check metrics; build info, gate state and p-value, waiting for a fix, latency histogram ($count check-ins)"

# ---- 3. the audit trail ----
out=$("$CLI" audit --release 2) || fail "ringfence audit"
echo "$out" | grep -Eq "admin:[0-9a-f]{8} +release\.halt +release 2 'packs/b\.rfp': operator: rule 7 too noisy" ||
	fail "ringfence audit --release 2: $out"
grep -Eq "^<5>ringfenced: audit #[0-9]+: admin:[0-9a-f]{8} release\.halt release 2 'packs/b\.rfp': operator: rule 7 too noisy$" "$W/server.log" ||
	fail "no journald notice line for the halt in the server log"
grep -Eq "^<5>ringfenced: audit #[0-9]+: admin:[0-9a-f]{8} tenant\.create 'acme'" "$W/server.log" ||
	fail "no line for the tenant"
grep -Eq "^<5>ringfenced: audit #[0-9]+: gate gate\.open release 1" "$W/server.log" ||
	fail "no line for the gate's decision"
! grep -q "$TOKEN" "$W/server.log" || fail "the enrollment token is in the log"
ok "audit trail: ringfence audit and one <5> line per entry in the server log"
