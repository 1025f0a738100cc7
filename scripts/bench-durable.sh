#!/usr/bin/env bash
# bench-durable.sh: the durable pipeline (dedup.Open, bbolt, fsync on)
# against raw bbolt batched puts over 2M events, the target of issue 3,
# measured in the same invocation with rounds interleaved, and written to
# the durable-2m section of BENCHMARKS.md.
#
#   scripts/bench-durable.sh                 # 2M events, 3 rounds
#   EVENTS=200000 ROUNDS=1 UPDATE=0 scripts/bench-durable.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=section.sh
. scripts/section.sh

EVENTS=${EVENTS:-2000000}
ROUNDS=${ROUNDS:-3}
UPDATE=${UPDATE:-1}
BUILD=${BUILD:-build}
GO=${GO:-go}
WORK=$BUILD/bench-durable
mkdir -p "$WORK"
$GO test -c -o "$WORK/pipeline.test" ./pipeline
: >"$WORK/raw.txt"
# One invocation per round runs both, the pipeline first: bbolt-raw then
# puts as many keys per Update as that run's mean group commit.
for r in $(seq 1 "$ROUNDS"); do
	echo "round $r/$ROUNDS" >&2
	ONCEFLOW_BENCH_EVENTS=$EVENTS "$WORK/pipeline.test" -test.run='^$' \
		-test.bench='^BenchmarkPipeline$/^(dedup=bbolt|impl=bbolt-raw)/' -test.benchtime=1x -test.benchmem -test.timeout=60m |
		grep '^Benchmark' | tee -a "$WORK/raw.txt"
done

# median NAME: the median events/s of the rows of NAME.
median() {
	grep -F "$1" "$WORK/raw.txt" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "events/s") print $i}' |
		sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'
}
# ratios: the per-round ratios dedup=bbolt / bbolt-raw, low and high.
ratios() {
	paste <(grep -F 'dedup=bbolt/' "$WORK/raw.txt" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "events/s") print $i}') \
		<(grep -F 'impl=bbolt-raw/' "$WORK/raw.txt" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "events/s") print $i}') |
		awk '{r = $1 / $2; if (NR == 1 || r < lo) lo = r; if (NR == 1 || r > hi) hi = r} END {printf "%.2f–%.2f", lo, hi}'
}
OF=$(median 'dedup=bbolt/')
RAW=$(median 'impl=bbolt-raw/')
RATIO=$(awk -v a="$OF" -v b="$RAW" 'BEGIN {printf "%.2f", a / b}')
RANGE=$(ratios)
if awk -v r="$RATIO" 'BEGIN {exit !(r >= 0.8)}'; then VERDICT="**PASS**"; else VERDICT="**MISS**"; fi

REPORT=$(
	cat <<EOT
## Durable pipeline against raw bbolt over $EVENTS events (\`make bench-durable\`)

$(date -u +%Y-%m-%d), $($GO env GOVERSION), $(getconf _NPROCESSORS_ONLN) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end.
\`BenchmarkPipeline/dedup=bbolt/dup=0.1\` (pipeline + \`dedup.Open\`, fsync on, 2 shards, \`SubmitBatch\` of 64,
default group commit) against \`BenchmarkPipeline/impl=bbolt-raw/dup=0.1\` (one goroutine, the same identity keys
sorted, as many per \`Update\` as the pipeline's mean group commit in the same process, fsync on, into one bucket
that ends the same size), $ROUNDS rounds of one op each, each round one process running both; medians:

| implementation | events/s |
|---|---|
| \`dedup=bbolt\` (onceflow, durable) | $OF |
| \`impl=bbolt-raw\` | $RAW |

- **onceflow ÷ raw bbolt = ${RATIO}×** (per-round ratios $RANGE). Target of issue 3: at least 0.8×. $VERDICT
- Command: \`make bench-durable\` (\`scripts/bench-durable.sh\`; \`EVENTS\`, \`ROUNDS\` override). Each round runs
  \`ONCEFLOW_BENCH_EVENTS=$EVENTS pipeline.test -test.run='^\$' -test.bench='^BenchmarkPipeline\$/^(dedup=bbolt|impl=bbolt-raw)/' -test.benchtime=1x -test.benchmem\`.
  Raw rows:

\`\`\`
$(cat "$WORK/raw.txt")
\`\`\`
EOT
)
echo "$REPORT"

if [ "$UPDATE" = 1 ]; then
	printf '%s\n' "$REPORT" >"$WORK/section.md"
	write_section durable-2m "$WORK/section.md"
fi
awk -v r="$RATIO" 'BEGIN {exit !(r >= 0.8)}'
