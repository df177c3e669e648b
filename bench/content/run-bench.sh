#!/bin/sh
# Content benchmark driver (meson benchmark 'content'; `make bench`): compile the pack of every
# compilable process_creation rule in $RF_SHARED_DIR/sigma/rules with `ringfence content compile`,
# then run bench-content on it. Skips (77) with a message when the shared rules are absent; falls
# back to a synthetic pack of realistic shape, and says so, if the compiler is not available.
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
exec "$bench" "$out/process_creation.pack" --manifest "$manifest"
