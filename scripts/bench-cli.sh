#!/usr/bin/env bash
# bench-cli.sh: onceflow run (durable, fsync on, validating) against awk
# deduplicating the same file by (source, id) in memory (no durability, no
# validation), measured in the same invocation, rounds interleaved.
#
#   scripts/bench-cli.sh              # 1M events, 3 rounds, updates BENCHMARKS.md
#   EVENTS=200000 ROUNDS=1 UPDATE=0 scripts/bench-cli.sh
#
# Wall time and peak RSS of each command come from /usr/bin/time -v when it
# is there, else from bash's clock and the process's VmHWM. The figures go
# to the bench-cli section of BENCHMARKS.md (between its markers).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=section.sh
. scripts/section.sh

EVENTS=${EVENTS:-1000000}
DUP=${DUP:-0.2}
BAD=${BAD:-0.01}
SHUFFLE=${SHUFFLE:-1000}
ROUNDS=${ROUNDS:-3}
UPDATE=${UPDATE:-1}
BUILD=${BUILD:-build}
GO=${GO:-go}

mkdir -p "$BUILD"
BIN=$BUILD/onceflow
IN=$BUILD/bench-cli-input.jsonl
WORK=$BUILD/bench-cli
$GO build -o "$BIN" ./cmd/onceflow

AWK=awk
if command -v mawk >/dev/null; then AWK=mawk; fi
TIME=""
if [ -x /usr/bin/time ] && /usr/bin/time -v true 2>/dev/null; then TIME=/usr/bin/time; fi

GEN_ARGS=(--events "$EVENTS" --dup "$DUP" --bad "$BAD" --shuffle "$SHUFFLE" --seed 42)
if [ ! -s "$IN" ] || [ "$(cat "$IN.args" 2>/dev/null)" != "${GEN_ARGS[*]}" ]; then
	echo "generating $IN: onceflow gen ${GEN_ARGS[*]}" >&2
	"$BIN" gen "${GEN_ARGS[@]}" --out "$IN"
	echo "${GEN_ARGS[*]}" >"$IN.args"
fi
LINES=$(wc -l <"$IN")
BYTES=$(wc -c <"$IN")

# The awk baseline: the first line of each (source, id), extracted with a
# regular expression; every line is printed once per identity, bad or not.
AWK_PROG='{
	s = ""; i = ""
	if (match($0, /"source":"[^"]*"/)) s = substr($0, RSTART, RLENGTH)
	if (match($0, /"id":"[^"]*"/)) i = substr($0, RSTART, RLENGTH)
	k = s SUBSEP i
	if (!(k in seen)) { seen[k] = 1; print }
}'

rm -rf "$WORK" && mkdir -p "$WORK"
printf '%s\n' "$AWK_PROG" >"$WORK/dedup.awk"

# measure NAME CMD...: runs CMD, appends "NAME wall_seconds peak_rss_kib
# cpu_seconds" to $WORK/results (cpu: user + system, "-" when unknown).
measure() {
	local name=$1
	shift
	local t0 t1 wall rss cpu=-
	if [ -n "$TIME" ]; then
		"$TIME" -v -o "$WORK/time.txt" "$@"
		wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (j = 1; j <= n; j++) s = s * 60 + p[j]; print s}' "$WORK/time.txt")
		rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
		cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$WORK/time.txt")
	else
		t0=$(date +%s.%N)
		"$@" &
		local pid=$! hwm=0 v
		while kill -0 "$pid" 2>/dev/null; do
			v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
			[ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
			sleep 0.05
		done
		wait "$pid"
		t1=$(date +%s.%N)
		wall=$(echo "$t1 - $t0" | bc)
		rss=$hwm
	fi
	echo "$name $wall $rss $cpu" >>"$WORK/results"
}

for r in $(seq 1 "$ROUNDS"); do
	echo "round $r/$ROUNDS: awk" >&2
	measure awk sh -c "$AWK -f '$WORK/dedup.awk' '$IN' >'$WORK/awk.out'"
	echo "round $r/$ROUNDS: onceflow run" >&2
	rm -rf "$WORK/state" "$WORK/out.jsonl"
	measure onceflow "$BIN" run --state "$WORK/state" --in "$IN" --out "$WORK/out.jsonl" --rejects "$WORK/rejects.jsonl"
	du -k "$WORK/state/onceflow.db" | awk '{print $1}' >"$WORK/state.kib"
	# the summary is the last line on stderr
	sync
done
STATE_KIB=$(cat "$WORK/state.kib")

# Medians per command.
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
stat() { awk -v n="$1" -v c="$2" '$1 == n {print $c}' "$WORK/results" | median; }
AWK_WALL=$(stat awk 2)
AWK_RSS=$(stat awk 3)
OF_WALL=$(stat onceflow 2)
OF_RSS=$(stat onceflow 3)
OF_MAX_RSS=$(awk '$1 == "onceflow" {print $3}' "$WORK/results" | sort -n | tail -1)
AWK_CPU=$(stat awk 4)
OF_CPU=$(stat onceflow 4)
RATIO=$(awk -v a="$AWK_WALL" -v o="$OF_WALL" 'BEGIN {printf "%.2f", a / o}')
LIMIT_KIB=$((256 * 1024 + STATE_KIB))
WRITTEN=$(wc -l <"$WORK/out.jsonl")
AWK_LINES=$(wc -l <"$WORK/awk.out")

if awk -v r="$RATIO" 'BEGIN {exit !(r >= 1)}'; then
	VERDICT="Speed: met."
else
	VERDICT="Speed: **not met** in this run."
fi
if [ "$OF_MAX_RSS" -le "$LIMIT_KIB" ]; then VERDICT="$VERDICT Memory: met."; else VERDICT="$VERDICT Memory: **not met**."; fi

NOW=$(date -u +%Y-%m-%d)
GOV=$($GO env GOVERSION)
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)
NCPU=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
LOAD=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

REPORT=$(
	cat <<EOT
## Batch tool: \`onceflow run\` against awk (\`make bench-cli\`)

$NOW, $GOV, $NCPU × $CPU, load average $LOAD at the end. Input: \`onceflow gen ${GEN_ARGS[*]}\`,
$LINES lines, $BYTES bytes. Medians of $ROUNDS interleaved rounds, fresh state each round.

| command | wall (s) | CPU user+sys (s) | peak RSS (MiB) | output lines |
|---|---|---|---|---|
| \`$AWK\` in-memory dedup on (source, id), regex extraction; no validation, no durability | $AWK_WALL | $AWK_CPU | $((AWK_RSS / 1024)) | $AWK_LINES (bad lines included) |
| \`onceflow run\` (fsync on, strict validation, durable state) | $OF_WALL | $OF_CPU | $((OF_RSS / 1024)) (max $((OF_MAX_RSS / 1024))) | $WRITTEN |

- **awk wall / onceflow wall = $RATIO** (above 1: onceflow is faster). Target of issue 5: at least 1,
  and peak RSS under 256 MiB + the state file. $VERDICT
- onceflow peak RSS $((OF_MAX_RSS / 1024)) MiB against the bound of 256 MiB + the state file
  ($((STATE_KIB / 1024)) MiB) = $((LIMIT_KIB / 1024)) MiB.
- Ids are time-ordered (\`gen --ids ordered\`, like ULIDs or offsets). With random UUIDs
  (\`gen --ids random\`) every group commit inserts keys all over the state's B-tree: measured once
  by hand on the same machine (2026-11-27, commit 3987eca), onceflow took 12.8 s against awk's 3.7 s,
  and its peak RSS, 502 MiB, was **above** the bound of 256 + 201 MiB (bbolt holds every leaf a
  transaction touches in memory until it commits); with \`--group-events 4096\` it took 15.4 s and
  400 MiB, under its bound of 256 + 166 MiB. The store layout decides that case, not the tool.
- Where onceflow's time goes (\`onceflow run --cpuprofile F\`, 1M lines, one run of 3.9 s wall, 6.9 s of CPU):
  the committer goroutine 2.7 s (dedup \`Store.Commit\` 2.3 s: bbolt's \`Put\` of each new identity 0.8 s,
  Bloom filter adds 0.45 s, the rest bbolt's commit and the key sort; a new identity costs no \`Get\`,
  since the current slice's filter answers that it cannot be there), the shard worker 2.3 s
  (\`Store.Lookup\` 1.0 s: Bloom probes, and a bbolt read for each duplicate whose first copy is
  committed), the reader 1.4 s (the strict decoder 1.3 s). With nearly twice awk's CPU time on
  2 cores, onceflow matches awk only when its three busy goroutines get both cores: on this shared
  machine, round-to-round variation (awk alone varies by ±20 %) decides which one wins a round.
- Command: \`make bench-cli\` (\`scripts/bench-cli.sh\`; \`EVENTS\`, \`ROUNDS\` and friends override the defaults).
  Each round: \`$AWK -f dedup.awk IN > out\` then
  \`onceflow run --state S --in IN --out OUT --rejects REJ\` on a fresh S. Raw rows (name, wall s,
  peak RSS KiB, CPU s):

\`\`\`
$(cat "$WORK/results")
\`\`\`
EOT
)
echo "$REPORT"

FAIL=0
if awk -v a="$AWK_WALL" -v o="$OF_WALL" 'BEGIN {exit !(o > a)}'; then
	echo "bench-cli: onceflow ($OF_WALL s) is slower than awk ($AWK_WALL s)" >&2
	FAIL=1
fi
if [ "$OF_MAX_RSS" -gt "$LIMIT_KIB" ]; then
	echo "bench-cli: onceflow peak RSS $OF_MAX_RSS KiB is above $LIMIT_KIB KiB" >&2
	FAIL=1
fi

if [ "$UPDATE" = 1 ]; then
	printf '%s\n' "$REPORT" >"$WORK/section.md"
	write_section bench-cli "$WORK/section.md"
fi
exit $FAIL
