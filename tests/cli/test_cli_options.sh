#!/usr/bin/env bash
# Option handling of every program and subcommand (common/opt.h): `--help` on each subcommand
# prints that subcommand's own usage on stdout (its synopsis, none of its siblings') and exits 0;
# an unknown option, a missing value or a value given to a flag prints exactly one line on
# stderr that names the option and points at the subcommand's --help, nothing on stdout, and
# exits 2 (1 for ringfence-tuf-client, whose conformance protocol says so); operands and
# options mix in any order and --name=value works. Needs RF_BUILD_ROOT (meson sets it).
set -uo pipefail

b=${RF_BUILD_ROOT:?RF_BUILD_ROOT not set}
rf=$b/src/cli/ringfence
agent=$b/src/agent/ringfence-agent
server=$b/src/server/ringfenced
tufc=$b/src/trust/ringfence-tuf-client
for p in "$rf" "$agent" "$server" "$tufc"; do [ -x "$p" ] || { echo "not built: $p"; exit 1; }; done
work=$(mktemp -d "${TMPDIR:-/tmp}/rf-cli-options.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# help NAME PROG WORDS... -- SIBLINGS...: `PROG WORDS... --help` prints "usage: NAME ..." first,
# mentions no sibling subcommand's "NAME-without-last-word SIBLING", exits 0, stderr empty.
help() {
	local name=$1 prog=$2 words=() sibs=() rc=0 seen=0
	shift 2
	for w in "$@"; do
		if [ "$w" = -- ]; then seen=1; elif [ $seen = 0 ]; then words+=("$w"); else sibs+=("$w"); fi
	done
	"$prog" "${words[@]}" --help >"$work/out" 2>"$work/err" || rc=$?
	if [ $rc -ne 0 ] || [ -s "$work/err" ]; then
		fail "$name --help: exit $rc, stderr: $(head -c 300 "$work/err")"
		return
	fi
	if ! head -1 "$work/out" | grep -qF -- "usage: $name"; then
		fail "$name --help: first line is not 'usage: $name ...': $(head -1 "$work/out")"
		return
	fi
	local parent=${name% *}
	for s in "${sibs[@]}"; do
		[ -n "$s" ] || continue
		if grep -qF -- "$parent $s " "$work/out" || grep -qxF -- "$parent $s" "$work/out"; then
			fail "$name --help also shows '$parent $s' (the group's usage?)"
			return
		fi
	done
	ok "$name --help"
}

# bad WANT_RC 'EXPECTED LINE' PROG ARGS...: exactly EXPECTED LINE on stderr, nothing on stdout.
bad() {
	local want=$1 line=$2 rc=0
	shift 2
	"$@" >"$work/out" 2>"$work/err" || rc=$?
	if [ $rc -ne "$want" ]; then
		fail "$*: exit $rc, want $want"
	elif [ -s "$work/out" ]; then
		fail "$*: printed on stdout: $(head -c 300 "$work/out")"
	elif [ "$(wc -l <"$work/err")" -ne 1 ] || [ "$(cat "$work/err")" != "$line" ]; then
		fail "$*: stderr is not the one line '$line':"
		sed 's/^/    /' "$work/err" | head -20
	else
		ok "$* -> $line"
	fi
}

# ---- every subcommand's own --help --------------------------------------------------------
content=(compile verify inspect eval manifest)
for s in "${content[@]}"; do
	help "ringfence content $s" "$rf" content "$s" -- "${content[@]/$s/}"
done
repo=(init add publish rotate refresh)
for s in "${repo[@]}"; do help "ringfence repo $s" "$rf" repo "$s" -- "${repo[@]/$s/}"; done
release=(create list status hold halt resume rollback)
for s in "${release[@]}"; do
	help "ringfence release $s" "$rf" release "$s" -- "${release[@]/$s/}"
done
ring=(list add delete)
for s in "${ring[@]}"; do help "ringfence ring $s" "$rf" ring "$s" -- "${ring[@]/$s/}"; done
tenant=(list show create set token)
for s in "${tenant[@]}"; do help "ringfence tenant $s" "$rf" tenant "$s" -- "${tenant[@]/$s/}"; done
help "ringfence sim" "$rf" sim --
help "ringfence demo" "$rf" demo --
agent_cmds=(run status manifest)
for s in "${agent_cmds[@]}"; do
	help "ringfence-agent $s" "$agent" "$s" -- "${agent_cmds[@]/$s/}"
done
help "ringfenced" "$server" --
for s in init refresh download; do
	help "ringfence-tuf-client --metadata" "$tufc" "$s" --
	grep -qE " $s( |\$)" "$work/out" || fail "ringfence-tuf-client $s --help does not show $s"
	others=$(grep -cE ' (init|refresh|download)( |$)' "$work/out")
	[ "$others" -eq 1 ] || fail "ringfence-tuf-client $s --help shows $others commands"
done
# The groups' own --help lists their subcommands; -h and `help` are --help.
for g in content repo release ring tenant; do
	for h in --help -h help; do
		rc=0
		"$rf" "$g" $h >"$work/out" 2>&1 || rc=$?
		if [ $rc -eq 0 ] && grep -q "usage: ringfence $g" "$work/out"; then
			ok "ringfence $g $h"
		else
			fail "ringfence $g $h: exit $rc"
		fi
	done
done

# ---- bad options: one line, try --help, exit 2 --------------------------------------------
for s in "${content[@]}"; do
	bad 2 "ringfence content $s: unknown option '--no-such' (try 'ringfence content $s --help')" \
		"$rf" content "$s" x --no-such
done
for s in "${repo[@]}"; do
	bad 2 "ringfence repo $s: unknown option '--no-such' (try 'ringfence repo $s --help')" \
		"$rf" repo "$s" --no-such x
done
for g in release ring tenant; do
	bad 2 "ringfence $g list: unknown option '-Z' (try 'ringfence $g list --help')" \
		"$rf" "$g" list -Z
done
for g in content repo release ring tenant; do
	bad 2 "ringfence $g: unknown option '--no-such' (try 'ringfence $g --help')" \
		"$rf" "$g" --no-such
done
bad 2 "ringfence: unknown option '--no-such' (try 'ringfence --help')" "$rf" --no-such
bad 2 "ringfence sim: unknown option '--no-such' (try 'ringfence sim --help')" \
	"$rf" sim x --no-such
bad 2 "ringfence demo: unknown option '--no-such' (try 'ringfence demo --help')" \
	"$rf" demo --no-such
for s in "${agent_cmds[@]}"; do
	bad 2 "ringfence-agent $s: unknown option '--no-such' (try 'ringfence-agent $s --help')" \
		"$agent" "$s" --no-such
done
bad 2 "ringfence-agent: unknown option '--no-such' (try 'ringfence-agent --help')" \
	"$agent" --no-such
bad 2 "ringfenced: unknown option '--no-such' (try 'ringfenced --help')" "$server" --no-such
bad 1 "ringfence-tuf-client: unknown option '--no-such' (try 'ringfence-tuf-client --help')" \
	"$tufc" --metadata-dir "$work/md" --no-such x refresh
# A missing value, a value for a flag, an ambiguous prefix.
bad 2 "ringfence content verify: option '--manifest' needs a value (try 'ringfence content verify --help')" \
	"$rf" content verify x.pack --manifest
bad 2 "ringfence content compile: option '-o' needs a value (try 'ringfence content compile --help')" \
	"$rf" content compile rules -o
bad 2 "ringfence content inspect: option '--json' takes no value (try 'ringfence content inspect --help')" \
	"$rf" content inspect x.pack --json=yes
bad 2 "ringfenced: option '--port-file' needs a value (try 'ringfenced --help')" \
	"$server" --db "$work/db" --port-file
bad 2 "ringfence tenant set: ambiguous option '--p' (try 'ringfence tenant set --help')" \
	"$rf" tenant set x --p 1
[ ! -e "$work/db" ] || fail "ringfenced created its database after a usage error"

# ---- options mix with operands; --name=value ------------------------------------------------
rc=0
"$rf" content manifest >"$work/m.json" || rc=$?
printf '{"event":"process_creation","Image":"C:\\\\x.exe"}\n' >"$work/ev.jsonl"
[ $rc -eq 0 ] || fail "content manifest: exit $rc"
rc=0
"$rf" content eval --manifest="$work/m.json" "$work/no-such.pack" "$work/ev.jsonl" \
	>"$work/out" 2>"$work/err" || rc=$?
if grep -q "no-such.pack" "$work/err" && [ $rc -eq 2 ]; then
	ok "--name=value and options before operands"
else
	fail "eval --manifest=M before the operands: exit $rc: $(cat "$work/err")"
fi

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
