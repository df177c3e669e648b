#!/usr/bin/env bash
# CLI tests of `ringfence sim` argument errors (issue 16): a scenario or policy that is neither
# a name nor a path is refused with exit 2 and a message that says what a name may be; before
# the fix the message ended in an uninitialised path buffer ("(...)"). A name that is valid but
# absent names the file it looked for. Needs RF_BUILD_ROOT and RF_SOURCE_ROOT (meson sets both).
set -uo pipefail

rf=${RF_BUILD_ROOT:?RF_BUILD_ROOT not set}/src/cli/ringfence
[ -x "$rf" ] || { echo "not built: $rf"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/rf-cli-sim.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# expect NAME WANT_RC WANT_STDERR ARGS...: stderr must be exactly WANT_STDERR, stdout empty
expect() {
	local name=$1 want_rc=$2 want_err=$3 rc=0
	shift 3
	"$rf" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
	if [ "$rc" -ne "$want_rc" ]; then
		fail "$name: exit $rc, expected $want_rc"
	elif [ "$(cat "$work/$name.err")" != "$want_err" ]; then
		fail "$name: stderr"
		echo "    got:  $(od -c "$work/$name.err" | head -5)"
		echo "    want: $want_err"
	elif [ -s "$work/$name.out" ]; then
		fail "$name: unexpected stdout: $(head -3 "$work/$name.out")"
	else
		ok "$name"
	fi
}

bad="not a name (1-60 of a-z, 0-9, '-', '_') nor a path (with a '/' or ending in .json)"
expect bad-scenario 2 "ringfence sim: scenario 'bad name!': $bad" sim 'bad name!' --no-files
expect bad-policy 2 "ringfence sim: policy 'Bad!': $bad" \
	sim crowdstrike-2024-07-19 --policy 'Bad!' --devices 100 --no-files
long=$(printf 'a%.0s' $(seq 61))
expect long-scenario 2 "ringfence sim: scenario '$long': $bad" sim "$long" --no-files
expect absent-scenario 2 \
	"ringfence sim: scenario 'no-such-scenario': not found (${RF_SOURCE_ROOT:?}/scenarios/no-such-scenario.json)" \
	sim no-such-scenario --no-files

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo PASS
