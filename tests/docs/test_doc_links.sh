#!/usr/bin/env bash
# The documents a user gets stand on their own: nothing in the README, docs/, the sources or
# the headers points at the design outside the repository (../shared/DESIGN.md, which nobody
# who clones the project has) instead of docs/design.md, and every relative link in the README
# and docs/ names a file that exists. Needs RF_SOURCE_ROOT (meson sets it).
set -uo pipefail

src=${RF_SOURCE_ROOT:?RF_SOURCE_ROOT not set}
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

cd "$src" || exit 1
[ -f docs/design.md ] || fail "docs/design.md is missing"
for p in 1 2 3 4 5 6 7 8 9; do
	grep -q "^- \*\*P$p " docs/design.md || fail "docs/design.md does not state promise P$p"
done
# Pointers at the design that only the development machine has.
hits=$(grep -rnE 'DESIGN\.md|\.\./shared/' README.md docs src include dist scripts meson.build \
	2>/dev/null)
[ -z "$hits" ] || fail "points outside the repository:"$'\n'"$hits"

# Relative links [text](path) and [text](path#anchor) in the README and docs/.
for f in README.md docs/*.md; do
	dir=$(dirname "$f")
	while IFS= read -r link; do
		target=${link%%#*}
		[ -n "$target" ] || continue
		case $target in http:* | https:* | mailto:* | file:*) continue ;; esac
		[ -e "$dir/$target" ] || fail "$f links to $link, which does not exist"
	done < <(grep -oE '\]\([^) ]+\)' "$f" | sed -E 's/^\]\((.*)\)$/\1/')
done

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo PASS
