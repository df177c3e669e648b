#!/usr/bin/env bash
# CLI tests of `ringfence content compile` and of the 2024-07-19 "21st field" case end to end
# through the commands a publisher and an agent run (compile, verify, eval), on the project's own
# example rules and events. Outputs that are stable are compared with golden files in golden/
# (RF_UPDATE_GOLDEN=1 rewrites them). Needs RF_BUILD_ROOT and RF_SOURCE_ROOT (meson sets both).
set -uo pipefail

src=${RF_SOURCE_ROOT:?RF_SOURCE_ROOT not set}
rf=${RF_BUILD_ROOT:?RF_BUILD_ROOT not set}/src/cli/ringfence
golden=$src/tests/cli/golden
[ -x "$rf" ] || { echo "not built: $rf"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/rf-cli-compile.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# t WANT_RC NAME CMD...: run CMD (stdout -> NAME.out, stderr -> NAME.err), check the exit code.
t() {
	local want=$1 name=$2 rc=0
	shift 2
	"$@" >"$name.out" 2>"$name.err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$name: exit $rc, expected $want"
		sed 's/^/    /' "$name.err" | head -20
	else
		ok "$name (exit $rc)"
	fi
}

# golden NAME FILE: compare FILE with golden/NAME (pack sizes are masked: the pack format is
# not what these tests are about).
golden() {
	sed -i -E 's/\([0-9]+ bytes, /(N bytes, /' "$2"
	if [ "${RF_UPDATE_GOLDEN:-}" = 1 ]; then
		cp "$2" "$golden/$1"
		return
	fi
	if diff -u "$golden/$1" "$2" >diff.txt; then
		ok "golden $1"
	else
		fail "golden $1 differs:"
		cat diff.txt
	fi
}

contains() { # contains NAME FILE NEEDLE
	if grep -qF -- "$3" "$2"; then ok "$1"; else fail "$1: '$3' not in $2:"; cat "$2"; fi
}

cp -r "$src/examples/rules" rules
cp -r "$src/examples/rules-needs-1.1" rules-needs-1.1
cp "$src/examples/events/sample.jsonl" events.jsonl
cp "$src/manifests/ringfence-agent-1.0.0.json" m10.json
cp "$src/manifests/ringfence-agent-1.1.0.json" m11.json

# ---- usage ---------------------------------------------------------------------------------
t 0 help "$rf" content compile --help
golden compile-help.out help.out
t 2 no-args "$rf" content compile
t 2 no-output "$rf" content compile rules
t 2 bad-option "$rf" content compile rules -o x.pack --frobnicate
t 2 bad-seq "$rf" content compile rules -o x.pack --seq -1
t 2 missing-input "$rf" content compile no-such-dir -o x.pack
t 2 missing-manifest "$rf" content compile rules -o x.pack --manifest nope.json
mkdir empty
t 2 no-rules "$rf" content compile empty -o x.pack
[ ! -e x.pack ] && ok "no pack after usage errors" || fail "a pack was written on a usage error"

# ---- the examples compile, deterministically ----------------------------------------------
t 0 examples "$rf" content compile rules -o a.pack --seq 7
contains examples-summary examples.err "compiled 14 rules, rejected 0"
t 0 examples-again "$rf" content compile rules/ -o b.pack --seq 7
cmp -s a.pack b.pack && ok "same inputs, same pack bytes" || fail "pack bytes differ between runs"
t 0 inspect "$rf" content inspect a.pack
contains inspect-seq inspect.out "content sequence 7"
t 0 verify-both "$rf" content verify a.pack --manifest m10.json --manifest m11.json

# ---- rejections: reasons on stderr, the rest compiled; --strict; atomic replacement ----------
mkdir mixed
cp rules/certutil_download.yml mixed/a_good.yml
cat >mixed/b_regex.yml <<'Y'
title: Uses a Back-Reference
id: 11111111-2222-3333-4444-555555555555
logsource: {category: process_creation}
detection:
  selection:
    CommandLine|re: '(\w+) \1'
  condition: selection
Y
printf 'title: Broken\nid: x\ndetection: [unclosed\n' >mixed/c_broken.yaml
cat >mixed/d_nocat.yml <<'Y'
title: No Category
id: 22222222-2222-3333-4444-555555555555
logsource: {product: windows}
detection: {selection: {EventID: 4624}, condition: selection}
Y
cp rules/certutil_download.yml mixed/e_same_id.yml
echo 'not yaml: [' >mixed/ignored.txt
mkdir mixed/sub && cp rules/bitsadmin_transfer.yml mixed/sub/f_nested.yml
t 1 mixed "$rf" content compile mixed -o mixed.pack
golden compile-mixed.err mixed.err
t 0 mixed-pack-verifies "$rf" content verify mixed.pack --manifest m11.json
cp a.pack keep.pack
t 1 strict "$rf" content compile mixed -o keep.pack --strict
cmp -s a.pack keep.pack && ok "--strict left the old pack untouched" || fail "--strict replaced the pack"
contains strict-msg strict.err "no pack written"

# ---- the 291 case: a rule needing ParentUser (only agent 1.1.0 supplies it) -----------------
t 0 c291-compile-1.1 "$rf" content compile rules-needs-1.1 -o p291.pack --manifest m11.json
t 0 c291-verify-1.1 "$rf" content verify p291.pack --manifest m11.json
t 1 c291-verify-1.0 "$rf" content verify p291.pack --manifest m10.json
golden verify-291.err c291-verify-1.0.err
t 1 c291-compile-1.0 "$rf" content compile rules-needs-1.1 -o p291-10.pack --manifest m10.json
golden compile-291.err c291-compile-1.0.err
[ ! -e p291-10.pack ] && ok "no pack when no rule compiled" || fail "an empty pack was written"
t 1 c291-eval-1.0 "$rf" content eval p291.pack --manifest m10.json events.jsonl
[ ! -s c291-eval-1.0.out ] && ok "no alerts from a pack that did not load" ||
	fail "eval under 1.0.0 printed alerts"
contains c291-eval-1.0-msg c291-eval-1.0.err "not loaded"
t 0 c291-eval-1.1 "$rf" content eval p291.pack --manifest m11.json events.jsonl
golden eval-291.out c291-eval-1.1.out

# ---- evaluation of the examples over the sample events --------------------------------------
t 0 eval-examples "$rf" content eval a.pack --manifest m11.json events.jsonl
golden eval-examples.out eval-examples.out
contains eval-malformed eval-examples.err "1 malformed"

# ---- expand: placeholders from --placeholders ----------------------------------------------
mkdir ph
cat > ph/admin_psexec.yml <<'EOF'
title: PsExec run by a listed admin account
id: 7d1f0b7e-2b7a-4d52-9a55-1c9f00000001
logsource: {category: process_creation, product: windows}
detection:
  selection:
    User|expand: '%domain%\\%admins%'
    Image|endswith: '\psexec.exe'
  condition: selection
EOF
printf '{"domain": ["CORP", "LAB"], "admins": ["adm_*", "root"]}\n' > placeholders.json
t 1 expand-without "$rf" content compile ph -o ph0.pack
contains expand-without-msg expand-without.err "'expand' needs placeholder values"
t 0 expand "$rf" content compile ph -o ph.pack --placeholders placeholders.json --manifest m11.json
cat > ph-events.jsonl <<'EOF'
{"event":"process_creation","User":"corp\\adm_joe","Image":"C:\\t\\PsExec.exe"}
{"event":"process_creation","User":"LAB\\root","Image":"C:\\t\\psexec.exe"}
{"event":"process_creation","User":"CORP\\joe","Image":"C:\\t\\psexec.exe"}
{"event":"process_creation","User":"HOME\\root","Image":"C:\\t\\psexec.exe"}
EOF
t 0 expand-eval "$rf" content eval ph.pack --manifest m11.json ph-events.jsonl
[ "$(grep -c 7d1f0b7e expand-eval.out)" = 2 ] && ok "expand: two of four events match" ||
	{ fail "expand: expected 2 alerts:"; cat expand-eval.out; }
printf '{"domain": "CORP"}\n' > placeholders-short.json
t 1 expand-undefined "$rf" content compile ph -o ph1.pack --placeholders placeholders-short.json
contains expand-undefined-msg expand-undefined.err "placeholder '%admins%' is not defined"
printf '{"domain": [1]}\n' > placeholders-bad.json
t 2 expand-bad-file "$rf" content compile ph -o ph2.pack --placeholders placeholders-bad.json
contains expand-bad-file-msg expand-bad-file.err "values must be strings"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
