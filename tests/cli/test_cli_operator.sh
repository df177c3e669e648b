#!/usr/bin/env bash
# What an operator meets first on the command line (issue 15): `repo add --custom @FILE` reads
# the JSON from a file, and JSON that is not JSON says to use @FILE; `tenant --window` names an
# hour or minute out of range; `sim` says where it wrote its files (one scenario and --all);
# the chart of a run with a handful of crashed devices in a large fleet has a count panel on a
# log scale whose peaks are the timeline's; an installed `ringfence` (a copy outside the build
# tree) looks for its data in the installed data directory, not in this source tree; an agent
# that is not enrolled and has no enrollment token stops with a message instead of retrying.
# Needs RF_BUILD_ROOT and RF_SOURCE_ROOT (meson sets both).
set -uo pipefail

b=${RF_BUILD_ROOT:?RF_BUILD_ROOT not set}
src=${RF_SOURCE_ROOT:?RF_SOURCE_ROOT not set}
rf=$b/src/cli/ringfence
agent=$b/src/agent/ringfence-agent
for p in "$rf" "$agent"; do [ -x "$p" ] || { echo "not built: $p"; exit 1; }; done
work=$(mktemp -d "${TMPDIR:-/tmp}/rf-cli-operator.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
cd "$work" || exit 1

# ---- repo add --custom ------------------------------------------------------------------------
"$rf" repo init repo >/dev/null || fail "repo init"
printf 'pack bytes\n' >pack.rfp
printf '{"ringfence":{"note":"from a file"}}\n' >custom.json
if "$rf" repo add repo pack.rfp --raw --name a.rfp --custom @custom.json >out 2>err &&
	grep -q '"from a file"' repo/staged/targets.json; then
	ok "--custom @FILE is read from the file"
else
	fail "--custom @FILE: $(cat err) $(ls -R repo | head -20)"
fi
rc=0
"$rf" repo add repo pack.rfp --raw --name b.rfp --custom custom.json >out 2>err || rc=$?
if [ $rc -eq 1 ] && grep -qF -- "give --custom @custom.json" err && [ "$(wc -l <err)" -eq 1 ]; then
	ok "a file name without @ -> $(cat err)"
else
	fail "--custom FILE without @: exit $rc: $(cat err)"
fi
rc=0
"$rf" repo add repo pack.rfp --raw --name b.rfp --custom 'not json' >out 2>err || rc=$?
if [ $rc -eq 1 ] && grep -qF -- "@FILE" err && grep -qF "is not JSON" err; then
	ok "text that is not JSON -> $(cat err)"
else
	fail "--custom 'not json': exit $rc: $(cat err)"
fi
rc=0
"$rf" repo add repo pack.rfp --raw --name b.rfp --custom @missing.json >out 2>err || rc=$?
if [ $rc -eq 2 ] && grep -qF "missing.json" err; then
	ok "--custom @missing -> $(cat err)"
else
	fail "--custom @missing.json: exit $rc: $(cat err)"
fi

# ---- repo add checks the pack and the schedule before it signs --------------------------------
# Each of these used to be signed and published, and refused only by `release create`.
"$rf" content compile "$src/examples/rules" -o real.rfp --seq 1 >/dev/null 2>&1 || fail "compile"
sched() { # PERCENT [GATES]: a one-ring schedule
	printf '{"ringfence":{"release":"r-%s","schedule":[{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":%s}]}]%s}}' \
		"$1" "$1" "${2:+,\"gates\":$2}"
}
refused() { # NAME FILE CUSTOM 'EXPECTED REASON'
	local rc=0
	"$rf" repo add repo "$2" --name "$1" --custom "$3" >out 2>err || rc=$?
	if [ $rc -eq 1 ] && grep -qF -- "$4" err && grep -qF "nothing staged" err &&
		! grep -qF "\"$1\"" repo/staged/targets.json; then
		ok "$1 refused before signing -> $(cat err)"
	else
		fail "$1: exit $rc, want 1 with '$4', nothing staged: $(cat err)"
	fi
}
refused bad-pct.rfp real.rfp "$(sched 250)" "percent: 250 out of range"
refused bad-ramp.rfp real.rfp \
	'{"ringfence":{"release":"r","schedule":[{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":50},{"after":60,"percent":20}]}]}}' \
	"must be >= the previous step's"
refused bad-empty.rfp real.rfp '{"ringfence":{"release":"r","schedule":[]}}' \
	"schedule: missing or not a non-empty array"
refused bad-probation.rfp real.rfp "$(sched 100 '{"probation_s":-1}')" "gates.probation_s: -1 out of range"
refused bad-alpha.rfp real.rfp "$(sched 100 '{"alpha_pmm":500}')" 'unknown key "alpha_pmm"'
refused bad-healthy.rfp real.rfp "$(sched 100 '{"min_healty":5}')" 'unknown key "min_healty"'
printf 'twenty-two bytes, no!\n' >notpack.rfp
refused bad-notpack.rfp notpack.rfp "$(sched 100)" "is not a ringfence pack"
rc=0
"$rf" repo add repo real.rfp --name bad-nocustom.rfp >out 2>err || rc=$?
[ $rc -eq 2 ] && grep -qF -- "--custom is required" err || fail "no --custom: exit $rc: $(cat err)"
if "$rf" repo add repo real.rfp --name good.rfp --custom "$(sched 100 '{"alpha_ppm":500}')" \
	>out 2>err && grep -qF '"good.rfp"' repo/staged/targets.json; then
	ok "a pack with a valid schedule is staged"
else
	fail "valid pack and schedule refused: $(cat err)"
fi
if "$rf" repo add repo notpack.rfp --raw --name plain.bin >out 2>err; then
	ok "--raw stages a file that is not a pack"
else
	fail "--raw: $(cat err)"
fi

# ---- tenant --window --------------------------------------------------------------------------
# expect_window WINDOW 'STDERR LINE': refused before any request (the token file is absent).
expect_window() {
	local rc=0
	"$rf" tenant set t1 --window "$1" --token-file "$work/no-token" >out 2>err || rc=$?
	if [ $rc -eq 2 ] && [ "$(cat err)" = "$2" ]; then
		ok "--window $1 -> $2"
	else
		fail "--window $1: exit $rc, stderr '$(cat err)', want '$2'"
	fi
}
expect_window 25:00-26:00 "ringfence tenant: --window 25:00-26:00: hour 25 is out of range (00-23, UTC)"
expect_window 22:00-24:00 "ringfence tenant: --window 22:00-24:00: hour 24 is out of range (00-23, UTC)"
expect_window 10:75-11:00 "ringfence tenant: --window 10:75-11:00: minute 75 is out of range (00-59, UTC)"
expect_window 10:00-10:00 "ringfence tenant: --window 10:00-10:00 starts and ends at the same time; give a window of at least a minute, or none for any time"
expect_window 1000-1100 "ringfence tenant: --window is HH:MM-HH:MM (UTC) or none, e.g. 22:00-04:00"

# ---- sim says where it wrote; the count panel ---------------------------------------------------
rc=0
"$rf" sim crowdstrike-2024-07-19 --devices 20000 --out "$work/one" >out 2>err || rc=$?
if [ $rc -eq 0 ] && grep -qF "to $work/one/" out &&
	grep -qF "crowdstrike-2024-07-19--default.svg" out && [ -f one/crowdstrike-2024-07-19--default.svg ]; then
	ok "sim SCENARIO says where it wrote: $(grep -F wrote out)"
else
	fail "sim SCENARIO: exit $rc, stdout does not name $work/one/: $(tail -4 out) $(cat err)"
fi
rc=0
(mkdir rel && cd rel && "$rf" sim --all --devices 200 --duration 3600 --out rel-out) >out 2>err || rc=$?
n=$(ls rel/rel-out/*.svg 2>/dev/null | wc -l)
if [ $rc -eq 0 ] && [ "$n" -gt 2 ] && grep -qF "wrote $n timelines (.csv) and charts (.svg) to $work/rel/rel-out/" out; then
	ok "sim --all says where it wrote ($n runs, absolute path)"
else
	fail "sim --all: exit $rc, $n charts, stdout: $(tail -3 out) $(cat err)"
fi
rc=0
"$rf" sim --all --devices 200 --duration 3600 --no-files >out 2>err || rc=$?
if [ $rc -eq 0 ] && ! grep -q "^wrote" out; then ok "--no-files writes and claims nothing"; else fail "--no-files: $(tail -3 out)"; fi

# peak CSV COLUMN: the largest value in the timeline's column.
peak() { awk -F, -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
	$c > m { m = $c } END { print m + 0 }' "$1"; }
for pol in default push-to-all; do
	svg=one/crowdstrike-2024-07-19--$pol.svg csv=one/crowdstrike-2024-07-19--$pol.csv
	grep -qF "devices (log scale)" "$svg" || fail "$svg has no count panel"
	for s in crashed recovering exposed; do
		want=$(peak "$csv" "$s")
		got=$(grep -o "data-series=\"$s\" data-peak=\"[0-9]*\"" "$svg" | grep -o '[0-9]*"$' | tr -d '"')
		[ "$got" = "$want" ] || fail "$svg: $s peak label $got, timeline says $want"
	done
done
# Under ringfence's policy a few dozen of 20,000 devices are exposed: on the count panel that
# line must rise well off its axis (a tenth of the 170 px panel), not a pixel above zero.
svg=one/crowdstrike-2024-07-19--default.svg
exposed=$(peak one/crowdstrike-2024-07-19--default.csv exposed)
rise=$(awk '/devices \(log scale\)/ { p = 1 } p && /stroke="#6a4c93"/ {
	n = split($0, a, /[ "]/); lo = 1e9; hi = -1e9
	for (i = 1; i <= n; i++) if (split(a[i], xy, ",") == 2 && xy[2] ~ /^[0-9.]+$/) {
		if (xy[2] + 0 < lo) lo = xy[2] + 0; if (xy[2] + 0 > hi) hi = xy[2] + 0 }
	print hi - lo; exit }' "$svg")
if [ "$exposed" -gt 0 ] && [ "$exposed" -lt 1000 ] && awk -v r="$rise" 'BEGIN { exit !(r > 17) }'; then
	ok "$exposed exposed of 20000 rise $rise px on the count panel"
else
	fail "count panel: $exposed exposed rise ${rise:-?} px (want > 17)"
fi

# ---- an installed copy looks in the installed data directory --------------------------------------
mkdir -p inst/bin && cp "$rf" inst/bin/ringfence
"$work/inst/bin/ringfence" sim --help >out 2>&1
if grep -q "^Data directory" out && ! grep -qF "$src" out; then
	ok "outside the build tree: $(grep '^Data directory' out)"
else
	fail "a copy outside the build tree still reads the source tree: $(grep '^Data directory' out)"
fi
RINGFENCE_DATADIR="$src" "$work/inst/bin/ringfence" sim --list >out 2>&1
grep -qF "scenarios ($src/scenarios)" out && ok "RINGFENCE_DATADIR" || fail "RINGFENCE_DATADIR: $(head -2 out)"
"$rf" sim --help | grep -qF "$src/scenarios" && ok "in the build tree: the source tree's data" ||
	fail "the build tree's ringfence does not use the source tree's data"

# ---- an agent with no enrollment token stops ----------------------------------------------------
rc=0
timeout 20 env -u RINGFENCE_ENROLL_TOKEN "$agent" run --server http://127.0.0.1:9 --store "$work/st" \
	--tuf-root repo/repository/metadata/1.root.json >out 2>err || rc=$?
if [ $rc -eq 2 ] && grep -qF -- "--enroll-token" err; then
	ok "agent without a token: exit 2: $(grep -F enroll-token err)"
else
	fail "agent without a token: exit $rc (124: still retrying): $(tail -3 err)"
fi

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
