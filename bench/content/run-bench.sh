#!/bin/sh
# Content benchmark driver (meson benchmark 'content'; `make bench`): compile the pack of every
# compilable process_creation rule in $RF_SHARED_DIR/sigma/rules with `ringfence content compile`,
# then run bench-content on it; first the verification time of the largest pack (every Windows
# rule against manifests/ringfence-agent-windows-1.2.0.json). Skips (77) with a message when the
# shared rules are absent; falls back to a synthetic pack of realistic shape, and says so, if the
# compiler is not available.
# usage: run-bench.sh RINGFENCE BENCH-CONTENT
set -u
rf=$1
bench=$2
out=${RF_BUILD_ROOT:-.}/bench-content
rules=${RF_SHARED_DIR:-}/sigma/rules
manifest=${RF_SOURCE_ROOT:-.}/manifests/ringfence-agent-1.1.0.json
if [ -z "${RF_SHARED_DIR:-}" ] || [ ! -d "$rules" ]; then
	echo "SKIP: shared Sigma rules not found (RF_SHARED_DIR=${RF_SHARED_DIR:-unset})"
	exit 77
fi
mkdir -p "$out"
dirs=$(find "$rules" -type d -name process_creation | sort)
echo "compiling: $rf content compile $(echo $dirs) -o $out/process_creation.pack --manifest $manifest"
rm -f "$out/process_creation.pack"
"$rf" content compile $dirs -o "$out/process_creation.pack" --manifest "$manifest" \
	2> "$out/compile.log"
rc=$?
if [ $rc -ge 2 ] || [ ! -s "$out/process_creation.pack" ]; then
	echo "ringfence content compile failed (exit $rc): $(tail -n 1 "$out/compile.log")"
	echo "falling back to a synthetic pack of 1300 rules of realistic shape"
	exec "$bench" --synthetic 1300
fi
echo "compile exit $rc; rejections logged in $out/compile.log ($(wc -l < "$out/compile.log") lines)"
# The largest pack: every Windows rule against the Windows 1.2.0 manifest; its verification time.
wmanifest=${RF_SOURCE_ROOT:-.}/manifests/ringfence-agent-windows-1.2.0.json
rm -f "$out/windows.pack"
"$rf" content compile "$rules/windows" -o "$out/windows.pack" --manifest "$wmanifest" \
	2> "$out/compile-windows.log"
if [ -s "$out/windows.pack" ]; then
	"$bench" "$out/windows.pack" --manifest "$wmanifest" --verify-only
else
	echo "largest pack: ringfence content compile failed: $(tail -n 1 "$out/compile-windows.log")"
fi
exec "$bench" "$out/process_creation.pack" --manifest "$manifest"
