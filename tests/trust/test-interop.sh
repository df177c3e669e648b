#!/usr/bin/env bash
# Interop with the reference JavaScript TUF implementation, both ways, on 127.0.0.1:
#  (a) tuf-js 5.0.1 downloads and verifies a target from repositories written by
#      `ringfence repo` (ed25519, ecdsa and rsa keys), custom metadata included;
#  (b) ringfence-tuf-client verifies repositories written and signed by @tufjs/models 4.1.1
#      with every key type node can produce for it (root rotation, a delegation and succinct
#      hash bins included).
# tuf-js is installed with npm into the BUILD dir (never globally, never into the source
# tree). If npm cannot reach its registry the test is skipped (exit 77) with a message.
#  (c) canonical JSON: ours and @tufjs/canonical-json agree byte for byte on a set of vectors.
# Usage: test-interop.sh RINGFENCE TUF_CLIENT TUF_HTTPD INTEROP_JS TUF_CANON
set -uo pipefail
RF=$1 CL=$2 HTTPD=$3 JS=$4 CANON=$5
NPMDIR="${RF_BUILD_ROOT:?RF_BUILD_ROOT not set}/tuf-interop"
T=$(mktemp -d "${TMPDIR:-/tmp}/rf-tuf-interop-XXXXXX")
SRV=
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node/npm not installed"; exit 77; }

have() { # installed at exactly the pinned versions?
	node -e 'const [a,b]=[require(process.argv[1]+"/node_modules/tuf-js/package.json"),
		require(process.argv[1]+"/node_modules/@tufjs/models/package.json")];
		process.exit(a.version==="5.0.1"&&b.version==="4.1.1"?0:1)' "$NPMDIR" 2>/dev/null
}
if ! have; then
	mkdir -p "$NPMDIR"
	if ! timeout 90 npm install --prefix "$NPMDIR" --no-audit --no-fund --no-save \
		--fetch-timeout=20000 --fetch-retries=1 tuf-js@5.0.1 @tufjs/models@4.1.1 \
		>"$T/npm.log" 2>&1 || ! have; then
		echo "SKIP: npm could not install tuf-js 5.0.1 / @tufjs/models 4.1.1 (registry unreachable?)"
		tail -5 "$T/npm.log"
		exit 77
	fi
fi
export NODE_PATH="$NPMDIR/node_modules"

# (c) canonical JSON vectors (the issue's example first). Keys mixing astral-plane characters
# with U+E000..U+FFFF are left out: JavaScript sorts by UTF-16 units, securesystemslib (and we)
# by code point.
V=(
	'{"":0,"a":{"Z":-3,"\u00e9":"\u00fc\u0001\n"},"b":[1,true,null,"q\"\\x"]}'
	' { "b" : [ ] , "a" : { } , "B" : "\/" , "aa" : false } '
	'[-9007199254740991, 9007199254740991, 0, -0, "\ud83d\ude00\t\u007f"]'
	'{"keys":{"k\u00e9y":{"keyval":{"public":"-----BEGIN PUBLIC KEY-----\nMFk\n"}}},"z":"\u2028"}'
	'{"\u00e9":1,"e":2,"\u00ff":3,"\u0100":4,"~":5,"E":6,"":7}'
)
for i in "${!V[@]}"; do
	printf '%s' "${V[$i]}" > "$T/v$i.json"
	"$CANON" "$T/v$i.json" > "$T/v$i.ours" || fail "(c) vector $i refused"
	node "$JS" canon "$T/v$i.json" > "$T/v$i.js" || fail "(c) vector $i: node failed"
	cmp -s "$T/v$i.ours" "$T/v$i.js" || { od -c "$T/v$i.ours" | head; od -c "$T/v$i.js" | head;
		fail "(c) canonical JSON of vector $i differs from @tufjs/canonical-json"; }
done
echo "ok: canonical JSON identical to @tufjs/canonical-json on ${#V[@]} vectors"

"$HTTPD" "$T" "$T/port" 240 & SRV=$!
for _ in $(seq 50); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || fail "server did not start"
B="http://127.0.0.1:$(cat "$T/port")"

for kt in ed25519 ecdsa rsa; do
	# (a) ringfence repo -> tuf-js
	R="$T/rf-$kt"
	"$RF" repo init "$R" --keytype "$kt" >/dev/null || fail "repo init $kt"
	{ echo "pack for $kt"; head -c 3000 /dev/zero | tr '\0' 'p'; } > "$T/pack-$kt.rfp"
	CUSTOM='{"ramp":[{"ring":0,"start":"2030-01-01T00:00:00Z","pct":5}],"release":"r1"}'
	"$RF" repo add "$R" "$T/pack-$kt.rfp" --raw --name "packs/pack-$kt.rfp" --custom "$CUSTOM" \
		>/dev/null || fail "repo add $kt"
	"$RF" repo publish "$R" >/dev/null || fail "repo publish $kt"
	"$RF" repo rotate "$R" root >/dev/null || fail "repo rotate $kt"   # tuf-js walks 1 -> 2
	node "$JS" client "$B/rf-$kt/repository/metadata/" "$B/rf-$kt/repository/targets/" \
		"$R/repository/metadata/1.root.json" "$T/tufjs-$kt" "packs/pack-$kt.rfp" \
		"$T/pack-$kt.rfp" "$CUSTOM" || fail "(a) tuf-js rejected the $kt repository of ringfence repo"
	# tuf-js follows the repository through a new release, every key rotation and a refresh
	# that re-signs every role (same metadata dir: its cached state is the rollback reference)
	echo "second pack $kt" > "$T/pack2-$kt.rfp"
	"$RF" repo add "$R" "$T/pack2-$kt.rfp" --raw --name "packs/two.rfp" >/dev/null || fail "add 2 $kt"
	"$RF" repo publish "$R" >/dev/null || fail "publish 2 $kt"
	for role in targets snapshot timestamp root; do
		"$RF" repo rotate "$R" "$role" >/dev/null || fail "rotate $role $kt"
	done
	"$RF" repo refresh "$R" --within 400d >/dev/null || fail "refresh $kt"
	node "$JS" client "$B/rf-$kt/repository/metadata/" "$B/rf-$kt/repository/targets/" \
		"$R/repository/metadata/1.root.json" "$T/tufjs-$kt" "packs/two.rfp" \
		"$T/pack2-$kt.rfp" || fail "(a) tuf-js did not follow rotations and refresh ($kt)"
	cmp -s "$T/tufjs-$kt/md/root.json" "$R/repository/metadata/root.json" ||
		fail "(a) tuf-js does not trust the newest root ($kt)"
	# ... and tuf-js refuses it once a byte of the target is changed ('p' -> 'X')
	f=$(cd "$R/repository/targets/packs" && ls -- *".pack-$kt.rfp")
	printf 'X' | dd of="$R/repository/targets/packs/$f" bs=1 seek=100 conv=notrunc 2>/dev/null
	cmp -s "$R/repository/targets/packs/$f" "$T/pack-$kt.rfp" && fail "tampering did not happen"
	node "$JS" client "$B/rf-$kt/repository/metadata/" "$B/rf-$kt/repository/targets/" \
		"$R/repository/metadata/1.root.json" "$T/tufjs2-$kt" "packs/pack-$kt.rfp" \
		"$T/pack-$kt.rfp" 2>/dev/null && fail "(a) tuf-js accepted a tampered target"

	# (b) @tufjs/models -> ringfence-tuf-client
	W="$T/js-$kt"
	node "$JS" write "$W" "$kt" || fail "(b) @tufjs/models could not write a $kt repository"
	MD="$T/md-$kt" TD="$T/td-$kt"
	"$CL" --metadata-dir "$MD" init "$W/metadata/1.root.json" || fail "(b) init $kt"
	"$CL" --metadata-url "$B/js-$kt/metadata/" --metadata-dir "$MD" \
		--target-name file.txt --target-name dl/d.txt --target-name dl/s.txt --target-dir "$TD" \
		--target-base-url "$B/js-$kt/targets/" download ||
		fail "(b) ringfence-tuf-client rejected the $kt repository of @tufjs/models"
	cmp -s "$TD/file.txt" "$W/file.txt" || fail "(b) file.txt differs ($kt)"
	cmp -s "$TD/dl%2Fd.txt" "$W/d.txt" || fail "(b) dl/d.txt differs ($kt)"
	cmp -s "$TD/dl%2Fs.txt" "$W/s.txt" || fail "(b) dl/s.txt (succinct bin) differs ($kt)"
	[ -f "$MD/$(cat "$W/bin-name").json" ] || fail "(b) succinct bin role not stored ($kt)"
	cmp -s "$MD/root.json" "$W/metadata/2.root.json" || fail "(b) root v2 not trusted ($kt)"
	[ -f "$MD/del.json" ] || fail "(b) delegated role not stored ($kt)"
	# a timestamp signature with its first hex digit changed is refused
	sed -i -E 's/"sig": "a/"sig": "b/;t;s/"sig": "[0-9a-f]/"sig": "a/' "$W/metadata/timestamp.json"
	cmp -s "$W/metadata/timestamp.json" "$T/md-$kt/timestamp.json" && fail "signature not changed"
	rm -rf "$MD"
	"$CL" --metadata-dir "$MD" init "$W/metadata/1.root.json" || fail "(b) re-init $kt"
	"$CL" --metadata-url "$B/js-$kt/metadata/" --metadata-dir "$MD" refresh 2>/dev/null &&
		fail "(b) ringfence-tuf-client accepted a broken timestamp signature ($kt)"
	echo "ok: $kt both ways"
done
echo "ok: interop with tuf-js 5.0.1 / @tufjs/models 4.1.1 (ed25519, ecdsa, rsa)"
