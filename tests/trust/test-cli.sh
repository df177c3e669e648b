#!/usr/bin/env bash
# The user-facing TUF commands end to end on 127.0.0.1: `ringfence repo` writes and maintains
# a repository, `ringfence-tuf-client` (the conformance protocol) verifies it, and faketime moves
# the client's clock to prove expiry (freeze attacks) on the dynamically linked program.
# Usage: test-cli.sh RINGFENCE TUF_CLIENT TUF_HTTPD
set -uo pipefail
RF=$1 CL=$2 HTTPD=$3
T=$(mktemp -d "${TMPDIR:-/tmp}/rf-tuf-cli-XXXXXX")
SRV=
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect CODE CMD...: run CMD, check its exit status
expect() {
	local want=$1; shift
	"$@" >"$T/out" 2>"$T/err"; local got=$?
	[ "$got" = "$want" ] || { cat "$T/out" "$T/err" >&2; fail "exit $got, wanted $want: $*"; }
}
# faketime preloads libfaketime ahead of the ASan runtime: tell ASan that is fine
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
export FAKETIME_DONT_FAKE_MONOTONIC=1

# --- usage and help ----------------------------------------------------------------------
expect 0 "$RF" repo --help
grep -q "ringfence repo rotate DIR ROLE" "$T/out" || fail "repo --help"
expect 2 "$RF" repo
expect 2 "$RF" repo frobnicate x
expect 2 "$RF" repo init "$T/r" --threshold 0
expect 2 "$RF" repo init "$T/r" --keytype dsa
expect 0 "$CL" --help
expect 1 "$CL"
expect 1 "$CL" --metadata-dir "$T/md" refresh                    # no --metadata-url
expect 1 "$CL" --metadata-dir "$T/md" --bogus x refresh
expect 1 "$CL" --metadata-dir "$T/md" init "$T/missing-root.json"

# --- a repository: threshold 2, ecdsa keys -------------------------------------------------
expect 0 "$RF" repo init "$T/r" --threshold 2 --keytype ecdsa --expiry targets=30d
expect 1 "$RF" repo init "$T/r"                                  # already there
n=$(find "$T/r/keys" -maxdepth 1 -name '*.pem' | wc -l)
[ "$n" = 8 ] || fail "expected 8 key files, found $n"
bad=$(find "$T/r/keys" -name '*.pem' ! -perm 600 | wc -l)
[ "$bad" = 0 ] || fail "private keys not mode 0600"
printf 'pack bytes \001\002\n' > "$T/pack.rfp"
expect 1 "$RF" repo add "$T/r" "$T/pack.rfp" --raw --name ../escape
expect 1 "$RF" repo add "$T/r" "$T/pack.rfp" --raw --name a//b
expect 1 "$RF" repo add "$T/r" "$T/pack.rfp" --raw --name ok --custom '[1]'
expect 1 "$RF" repo add "$T/r" "$T/pack.rfp" --raw --name ok --custom '{"a":1,"a":2}'
expect 2 "$RF" repo add "$T/r" "$T/missing" --raw --name ok
expect 0 "$RF" repo add "$T/r" "$T/pack.rfp" --raw --name packs/p1.rfp --custom '{"ramp":[[0,5]]}'
expect 0 "$RF" repo publish "$T/r"
grep -rq "BEGIN PRIVATE KEY" "$T/r/repository" && fail "a private key is in the served tree"

"$HTTPD" "$T/r/repository" "$T/port" 90 & SRV=$!
for _ in $(seq 50); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || fail "server did not start"
PORT=$(cat "$T/port")
M="http://127.0.0.1:$PORT/metadata/" TU="http://127.0.0.1:$PORT/targets/"

expect 0 "$CL" --metadata-dir "$T/md" init "$T/r/repository/metadata/1.root.json"
[ -f "$T/md/root.json" ] || fail "init did not write root.json"
expect 0 "$CL" --metadata-url "$M" --metadata-dir "$T/md" refresh
expect 0 "$CL" --metadata-url "$M" --metadata-dir "$T/md" --target-name packs/p1.rfp \
	--target-dir "$T/t" --target-base-url "$TU" download
cmp -s "$T/pack.rfp" "$T/t/packs%2Fp1.rfp" || fail "downloaded target differs"
expect 1 "$CL" --metadata-url "$M" --metadata-dir "$T/md" --target-name packs/none \
	--target-dir "$T/t" --target-base-url "$TU" download

# targets in order, the first failure stops with exit 1 (what came before it is kept)
rm -rf "$T/t"
expect 1 "$CL" --metadata-url "$M" --metadata-dir "$T/md" --target-name packs/p1.rfp \
	--target-name packs/none --target-name packs/p1.rfp --target-dir "$T/t" --target-base-url "$TU" download
cmp -s "$T/pack.rfp" "$T/t/packs%2Fp1.rfp" || fail "first target of a failing download missing"

# --- freeze: the same timestamp two days later is expired ---------------------------------
# (faketime works only on a dynamically linked program: the conformance protocol relies on it)
libs=$(ldd "$CL") || fail "ldd $CL failed"
# (not ldd | grep -q: under pipefail grep's early exit can fail ldd with SIGPIPE)
grep -q "libc\.so" <<<"$libs" || fail "ringfence-tuf-client is not dynamically linked"
faketime -f '+2d' "$CL" --help >/dev/null 2>&1 || fail "faketime cannot run the client"
cp -r "$T/md" "$T/md-before"
expect 1 faketime -f '+2d' "$CL" --metadata-url "$M" --metadata-dir "$T/md" refresh
grep -q "expired" "$T/err" || fail "freeze not reported as expiry: $(cat "$T/err")"
diff -r "$T/md" "$T/md-before" >/dev/null || fail "trusted metadata changed by a failed refresh"
expect 1 faketime -f '+400d' "$CL" --metadata-url "$M" --metadata-dir "$T/md" refresh

# --- the server keeps it fresh: refresh at +20h with a 12h window, client fine at +30h ------
expect 0 "$RF" repo refresh "$T/r" --within 1h
grep -q "nothing expires" "$T/out" || fail "refresh re-signed too early"
expect 0 faketime -f '+20h' "$RF" repo refresh "$T/r" --within 12h
grep -q "re-signed" "$T/out" || fail "refresh did not re-sign"
expect 0 faketime -f '+30h' "$CL" --metadata-url "$M" --metadata-dir "$T/md" refresh

# --- rotations: the client follows the root chain ----------------------------------------
expect 0 "$RF" repo rotate "$T/r" root
expect 0 "$RF" repo rotate "$T/r" targets
expect 0 "$RF" repo rotate "$T/r" timestamp
expect 2 "$RF" repo rotate "$T/r" mirror
[ -n "$(ls "$T/r/keys/retired")" ] || fail "rotated keys not retired"
rm -rf "$T/t"
expect 0 "$CL" --metadata-url "$M" --metadata-dir "$T/md" --target-name packs/p1.rfp \
	--target-dir "$T/t" --target-base-url "$TU" download
cmp -s "$T/pack.rfp" "$T/t/packs%2Fp1.rfp" || fail "target after rotation differs"
cmp -s "$T/md/root.json" "$T/r/repository/metadata/4.root.json" ||
	fail "client did not move to root v4 (three rotations)"

# --- concurrent writers (CLI and server share a repository): the flock serialises them ------
pids=()
for i in 1 2 3 4 5 6; do
	"$RF" repo add "$T/r" "$T/pack.rfp" --raw --name "par/p$i" >/dev/null 2>&1 & pids+=($!)
done
"$RF" repo refresh "$T/r" --within 400d >/dev/null 2>&1 & pids+=($!)
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent repo command failed"; done
expect 0 "$RF" repo publish "$T/r"
for i in 1 2 3 4 5 6; do
	expect 0 "$CL" --metadata-url "$M" --metadata-dir "$T/md" --target-name "par/p$i" \
		--target-dir "$T/t" --target-base-url "$TU" download
done

# --- a tampered target is refused and not stored -------------------------------------------
f=$(cd "$T/r/repository/targets/packs" && ls -- *.p1.rfp)
printf 'pack bytes \001\003\n' > "$T/r/repository/targets/packs/$f"
cmp -s "$T/r/repository/targets/packs/$f" "$T/pack.rfp" && fail "tampering did not happen"
rm -rf "$T/t"
expect 1 "$CL" --metadata-url "$M" --metadata-dir "$T/md" --target-name packs/p1.rfp \
	--target-dir "$T/t" --target-base-url "$TU" download
[ ! -e "$T/t/packs%2Fp1.rfp" ] || fail "tampered target was stored"
# --- a published target is never silently replaced by other bytes ------------------------
# (a release is identified by its target's name and hash: devices not yet on it would refuse
# new bytes under the same name). The same bytes again change nothing; --replace is explicit.
ver() { grep -o '"version": *[0-9]*' "$T/r/staged/targets.json" | grep -o '[0-9]*$'; }
v0=$(ver)
printf 'other pack bytes\n' > "$T/other.rfp"
expect 1 "$RF" repo add "$T/r" "$T/other.rfp" --raw --name packs/p1.rfp
grep -q "already exists with other bytes" "$T/err" || fail "no reason given: $(cat "$T/err")"
grep -q "new name" "$T/err" || fail "refusal does not say to use a new name: $(cat "$T/err")"
[ "$(ver)" = "$v0" ] || fail "a refused add staged a targets version"
expect 0 "$RF" repo add "$T/r" "$T/pack.rfp" --raw --name packs/p1.rfp --custom '{"ramp":[[0,5]]}'
grep -q "nothing staged" "$T/out" || fail "same bytes again: $(cat "$T/out")"
[ "$(ver)" = "$v0" ] || fail "adding the same bytes staged a targets version"
expect 0 "$RF" repo add "$T/r" "$T/other.rfp" --raw --name packs/p1.rfp --replace
[ "$(ver)" -gt "$v0" ] || fail "--replace staged nothing"
expect 0 "$RF" repo add --help
grep -q -- "--replace" "$T/out" || fail "repo add --help does not mention --replace"
echo "ok: ringfence repo + ringfence-tuf-client, faketime expiry, rotation, tampering, no silent replacement"
