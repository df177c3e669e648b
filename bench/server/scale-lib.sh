# Shared by the scale benchmarks (bench-scale.sh, bench-scale-pg.sh), sourced once RINGFENCE
# and the temp dir T are set: a TUF repository in $T/repo with one release whose signed
# schedule admits every device in every ring (its pack's SHA-256 in SHA), and the measuring
# helpers. The wrk scripts beside this file (scale-checkin.lua, scale-report.lua) take the
# devices file and SHA as their arguments.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

"$RINGFENCE" repo init "$T/repo" >/dev/null
# A real pack (release create verifies the target's bytes): the project's example rules.
"$RINGFENCE" content compile "$HERE/../../examples/rules" -o "$T/pack.rfp" >/dev/null 2>&1 ||
	{ echo "cannot compile the example rules" >&2; exit 1; }
"$RINGFENCE" repo add "$T/repo" "$T/pack.rfp" --name packs/bench-1.rfp --custom \
	'{"ringfence":{"release":"bench-1","schedule":[{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":100}]},{"ring":"early","not_before":0,"ramp":[{"after":0,"percent":100}]},{"ring":"broad","not_before":0,"ramp":[{"after":0,"percent":100}]}]}}' >/dev/null
"$RINGFENCE" repo publish "$T/repo" >/dev/null
SHA=$(sha256sum "$T/pack.rfp" | cut -d' ' -f1)
TCK=$(getconf CLK_TCK)

# cpu_ticks PID: its user+system CPU time in clock ticks (0 once it is gone)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# rss_kb PID: its resident memory in KiB
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# to_ms LATENCY: wrk's latency ("812.00us", "3.20ms", "1.02s") in ms
to_ms() {
	python3 -c "import sys,re; v=sys.argv[1]; m=re.match(r'([0-9.]+)(us|ms|s|m)\$', v); f={'us':1e-3,'ms':1,'s':1e3,'m':6e4}; print('%.2f' % (float(m.group(1))*f[m.group(2)]))" "$1"
}
