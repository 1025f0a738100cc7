#!/usr/bin/env bash
# Rebuilds and re-measures the timing-only experiments of README.md:
# one test binary for the base commit and one per patch, run in turn
# (round after round, so that the machine's drift hits all of them
# alike), then the median of each. Usage, from the repository root:
#
#   [BASE=commit] bench/experiments/run.sh [ROUNDS] [PATCH...]
#
# BASE defaults to 31c2d12. A patch names the commit it was written
# against in a first line "base: commit" (none: 31c2d12); it may apply to
# others too, and the script stops if it does not. ROUNDS defaults to 8;
# PATCH defaults to every *.patch here written against BASE. It needs git,
# Go and awk; it builds in a temporary worktree of the base commit and
# removes it when done. About 40 s per round and binary on 2 cores.
set -euo pipefail

base=${BASE:-31c2d12} # the commit the patches apply to (BASE overrides)
here=$(cd "$(dirname "$0")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
rounds=${1:-8}
shift || true
patch_base() { b=$(sed -n '1s/^base: //p' "$1"); echo "${b:-31c2d12}"; }
if [ $# -eq 0 ]; then
	for p in "$here"/*.patch; do
		if [ "$(patch_base "$p")" = "$base" ]; then
			set -- "$@" "$p"
		fi
	done
fi

work=$(mktemp -d)
wt="$work/tree"
trap 'git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$root" worktree add --quiet --detach "$wt" "$base"

names=(base)
(cd "$wt/bench" && go test -c -o "$work/base.test" .)
for p in "$@"; do
	name=$(basename "$p" .patch)
	git -C "$wt" apply "$(cd "$(dirname "$p")" && pwd)/$(basename "$p")"
	(cd "$wt/bench" && go test -c -o "$work/$name.test" .)
	git -C "$wt" checkout --quiet -- .
	git -C "$wt" clean --quiet -fd
	names+=("$name")
done

out="$work/paired.txt"
for round in $(seq "$rounds"); do
	for name in "${names[@]}"; do
		(cd "$wt/bench" && "$work/$name.test" -test.run='^$' \
			-test.bench='^BenchmarkCompare$/^impl=(onceflow-memory|channels-baseline)$' \
			-test.count=1 -test.benchtime=10x) |
			awk -v n="$name" '/ns\/op/ { print n, $1, $3 }' >>"$out"
	done
	echo "round $round of $rounds done" >&2
done

# Medians: each binary's onceflow-memory, and the channels-baseline of
# all binaries pooled (its code is the same in every one).
median() { sort -n | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
bl=$(awk '$2 ~ /channels-baseline/ { print $3 }' "$out" | median)
bm=$(awk '$1 == "base" && $2 ~ /onceflow-memory/ { print $3 }' "$out" | median)
awk -v b="$bl" 'BEGIN { printf "channels-baseline (all binaries pooled): %.1f ms\n", b / 1e6 }'
for name in "${names[@]}"; do
	m=$(awk -v n="$name" '$1 == n && $2 ~ /onceflow-memory/ { print $3 }' "$out" | median)
	awk -v n="$name" -v m="$m" -v b="$bl" -v bm="$bm" 'BEGIN {
		printf "%-24s onceflow-memory %6.1f ms  time vs base %4.0f%%  onceflow ÷ baseline %.2f\n", n, m / 1e6, 100 * m / bm, b / m
	}'
done
cp "$out" "${PAIRED_OUT:-/dev/null}"
