#!/usr/bin/env bash
# Crash consistency of the client's trusted state (docs/design.md P8): ringfence-tuf-client is
# killed with SIGKILL at every durable step of an update (each metadata file stored or
# deleted, the target written), in the manner of SQLite's crash tests. The test-only knob
# RF_TUF_FAULT_KILL_AT=N makes the client SIGKILL itself just before its N-th durable step, so
# every kill lands whatever the machine's speed: N walks 1, 2, ... until the client finishes.
#
# For each update (a release; key rotations of root, timestamp and snapshot with a release; a
# timestamp-only refresh) and each N, starting from the same old state:
#  - the client must die by SIGKILL (exit 137), never finish early or fail otherwise;
#  - every trusted file is byte for byte its old or its new version (root.json: any published
#    root), nothing else is in the directory (no torn or temporary file), timestamp.json and
#    snapshot.json are missing only after a new root (their 5.3.11 deletion), and the target
#    is the old or the new pack, whole;
#  - the next uninterrupted run succeeds and leaves exactly the state of an update that was
#    never interrupted.
# Usage: test-crash.sh RINGFENCE TUF_CLIENT TUF_HTTPD
set -uo pipefail
RF=$1 CL=$2 HTTPD=$3
T=$(mktemp -d "${TMPDIR:-/tmp}/rf-tuf-crash-XXXXXX")
SRV=
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$RF" repo init "$T/r" >/dev/null || fail "repo init"
echo v0 > "$T/pack"
"$RF" repo add "$T/r" "$T/pack" --raw --name packs/p.rfp >/dev/null || fail "repo add"
"$RF" repo publish "$T/r" >/dev/null || fail "publish"
"$HTTPD" "$T/r/repository" "$T/port" 170 & SRV=$!
for _ in $(seq 50); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || fail "server did not start"
P=$(cat "$T/port")
MD=$T/md TD=$T/t
ARGS=(--metadata-url "http://127.0.0.1:$P/metadata/" --metadata-dir "$MD")
DL=(--target-name packs/p.rfp --target-dir "$TD" --target-base-url "http://127.0.0.1:$P/targets/")
TARGET="$TD/packs%2Fp.rfp"
"$CL" --metadata-dir "$MD" init "$T/r/repository/metadata/1.root.json" || fail "init"
"$CL" "${ARGS[@]}" "${DL[@]}" download || fail "first download"

restore() { rm -rf "$MD" "$TD" && cp -a "$T/old.md" "$MD" && cp -a "$T/old.t" "$TD"; }

# is file $1 (name in the metadata directory) allowed after a kill?
allowed() {
	local f=$1 p
	cmp -s "$MD/$f" "$T/old.md/$f" 2>/dev/null && return 0
	cmp -s "$MD/$f" "$T/new.md/$f" 2>/dev/null && return 0
	if [ "$f" = root.json ]; then
		for p in "$T"/r/repository/metadata/[0-9]*.root.json; do
			cmp -s "$MD/$f" "$p" && return 0
		done
	fi
	return 1
}

kills=0
# update NAME: the repository has just changed; kill the client at every durable step of
# bringing the old state up to date
update() {
	local name=$1 n rc f
	restore
	"$CL" "${ARGS[@]}" "${DL[@]}" download >"$T/out" 2>&1 || { cat "$T/out"; fail "$name: uninterrupted update failed"; }
	rm -rf "$T/new.md" && cp -a "$MD" "$T/new.md"
	cmp -s "$T/pack" "$TARGET" || fail "$name: uninterrupted update did not fetch the new pack"
	for n in $(seq 1 64); do
		restore
		# (in the background, so the shell does not report the kill on stderr)
		RF_TUF_FAULT_KILL_AT=$n "$CL" "${ARGS[@]}" "${DL[@]}" download >"$T/out" 2>&1 &
		wait $! 2>/dev/null
		rc=$?
		if [ "$rc" = 0 ]; then  # finished: every step before it was a kill point
			[ "$n" -gt 1 ] || fail "$name: no durable step at all"
			echo "$name: killed at each of $((n - 1)) durable steps"
			kills=$((kills + n - 1))
			return
		fi
		[ "$rc" = 137 ] || { cat "$T/out"; fail "$name: step $n: exit $rc, not killed (137)"; }
		for f in $(ls -A "$MD"); do
			allowed "$f" || fail "$name: kill at step $n: $f is neither the old nor the new trusted file"
		done
		for f in root.json targets.json; do
			[ -e "$MD/$f" ] || fail "$name: kill at step $n: $f missing"
		done
		for f in timestamp.json snapshot.json; do
			[ -e "$MD/$f" ] || ! cmp -s "$MD/root.json" "$T/old.md/root.json" ||
				fail "$name: kill at step $n: $f missing without a new root"
		done
		cmp -s "$TARGET" "$T/old.t/packs%2Fp.rfp" || cmp -s "$TARGET" "$T/pack" ||
			fail "$name: kill at step $n: target torn"
		"$CL" "${ARGS[@]}" "${DL[@]}" download >"$T/out" 2>&1 || { cat "$T/out"; fail "$name: step $n: update after the kill failed"; }
		diff -r "$MD" "$T/new.md" >/dev/null || fail "$name: step $n: state after recovery differs from an uninterrupted update"
		cmp -s "$TARGET" "$T/pack" || fail "$name: step $n: target not the new pack after recovery"
	done
	fail "$name: client still not finished after 64 durable steps"
}

# each update starts from the state the previous one reached
snap() { rm -rf "$T/old.md" "$T/old.t" && cp -a "$MD" "$T/old.md" && cp -a "$TD" "$T/old.t"; }

# a new pack published as packs/p.rfp
release() {
	echo "$1" > "$T/pack"
	"$RF" repo add "$T/r" "$T/pack" --raw --replace --name packs/p.rfp >/dev/null || fail "add $1"
	"$RF" repo publish "$T/r" >/dev/null || fail "publish $1"
}

snap
release v1
update release

snap
for role in root timestamp snapshot root; do
	"$RF" repo rotate "$T/r" $role >/dev/null || fail "rotate $role"
done
release v2
update rotations

snap
"$RF" repo refresh "$T/r" --within 2d >/dev/null || fail "repo refresh"
update re-signed

[ "$kills" -ge 10 ] || fail "only $kills kill points: the update has fewer durable steps than expected"
echo "ok: $kills kills, one at every durable step; trusted state always old or new, recovery exact"
