# section.sh: sourced by the bench scripts.
#
# write_section NAME FILE: replaces the block of BENCHMARKS.md between
# "<!-- NAME:start -->" and "<!-- NAME:end -->" with the contents of FILE,
# appending the markers first when they are missing. make bench's report
# keeps such blocks as they are.
write_section() {
	local name=$1 file=$2 f=BENCHMARKS.md
	local start="<!-- $name:start -->" end="<!-- $name:end -->"
	[ -f "$f" ] || printf '# Benchmarks\n' >"$f"
	if ! grep -qF "$start" "$f"; then
		printf '\n%s\n%s\n' "$start" "$end" >>"$f"
	fi
	awk -v start="$start" -v end="$end" -v sec="$file" '
		$0 == start { print; while ((getline l < sec) > 0) print l; skip = 1; next }
		$0 == end { skip = 0 }
		!skip { print }
	' "$f" >"$f.tmp"
	mv "$f.tmp" "$f"
	echo "updated the $name section of $f" >&2
}
