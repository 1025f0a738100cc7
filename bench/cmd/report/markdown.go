package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
)

// report holds what the markdown is made of.
type report struct {
	results, link, makefile string

	compare, sweep, durable, core *dataset
}

func (r *report) png(name string) string { return filepath.Join(r.results, name) }

// sweep dimensions of BenchmarkSweep and BenchmarkDurable.
type dim struct {
	key    string // shards, dup, window, payload, group
	values []string
	x      []float64
	impls  []string
	file   string
	chart  chart
}

func (r *report) dims() []dim {
	return []dim{
		{key: "shards", values: []string{"1", "2", "4", "8"}, x: []float64{1, 2, 4, 8},
			impls: []string{onceflowMemory, baseline}, file: "sweep-shards.png",
			chart: chart{title: "events/s vs shards (200k events, 10 % duplicates)", xlabel: "shards", ylabel: "events/s", logX: true, logY: true}},
		{key: "dup", values: []string{"0", "0.1", "0.5", "0.9"}, x: []float64{0, 0.1, 0.5, 0.9},
			impls: []string{onceflowMemory, baseline}, file: "sweep-dup.png",
			chart: chart{title: "events/s vs duplicate ratio (200k deliveries)", xlabel: "duplicate ratio", ylabel: "events/s", logY: true}},
		{key: "window", values: []string{"1M", "10M"}, x: []float64{1, 2},
			impls: []string{onceflowMemory, baseline}, file: "sweep-window.png",
			chart: chart{title: "events/s vs identities already in the window", xlabel: "window (identities held before the run)", ylabel: "events/s", logY: true,
				ticks: []plot.Tick{{Value: 1, Label: "1M"}, {Value: 2, Label: "10M"}}}},
		{key: "payload", values: []string{"64", "512", "4096"}, x: []float64{64, 512, 4096},
			impls: []string{onceflowMemory, baseline, watermillDedup}, file: "sweep-payload.png",
			chart: chart{title: "events/s vs payload (JSON data member)", xlabel: "payload bytes", ylabel: "events/s", logX: true, logY: true}},
		{key: "group", values: []string{"100", "1000", "10000"}, x: []float64{100, 1000, 10000},
			impls: []string{onceflowBolt, boltRaw}, file: "durable-group.png",
			chart: chart{title: "durable events/s vs group-commit size (fsync on)", xlabel: "events per commit (configured)", ylabel: "events/s", logX: true, logY: true}},
	}
}

func (r *report) dimData(d dim) *dataset {
	if d.key == "group" {
		return r.durable
	}
	return r.sweep
}

func dimName(d dim, v, impl string) string {
	if d.key == "group" {
		return fmt.Sprintf("Durable/group=%s/impl=%s", v, impl)
	}
	return fmt.Sprintf("Sweep/%s=%s/impl=%s", d.key, v, impl)
}

// plots writes the PNGs.
func (r *report) plots() error {
	var labels []string
	var stats []stat
	for _, impl := range impls() {
		labels = append(labels, impl)
		stats = append(stats, r.compare.stat(compareName(impl), "events/s"))
	}
	if err := saveDots(r.png("compare.png"), "BenchmarkCompare: events/s, median and min–max of the rounds", "events/s (log scale)", labels, stats); err != nil {
		return err
	}
	for _, d := range r.dims() {
		data := r.dimData(d)
		if data == nil {
			continue
		}
		if d.chart.ticks == nil {
			for i, v := range d.values {
				d.chart.ticks = append(d.chart.ticks, plot.Tick{Value: d.x[i], Label: v})
			}
		}
		var curves []curve
		for _, impl := range d.impls {
			c := curve{label: impl}
			for i, v := range d.values {
				if s := data.stat(dimName(d, v, impl), "events/s"); s.ok() {
					c.pts = append(c.pts, point{x: d.x[i], s: s})
				}
			}
			curves = append(curves, c)
		}
		if err := d.chart.save(r.png(d.file), curves); err != nil {
			return err
		}
		if d.key == "window" {
			var heap []curve
			for _, impl := range d.impls {
				c := curve{label: impl}
				for i, v := range d.values {
					if s := data.stat(dimName(d, v, impl), "heap-MiB"); s.ok() {
						c.pts = append(c.pts, point{x: d.x[i], s: s})
					}
				}
				heap = append(heap, c)
			}
			hc := chart{title: "live heap of the dedup state (runtime/metrics)", xlabel: d.chart.xlabel, ylabel: "MiB", ticks: d.chart.ticks}
			if err := hc.save(r.png("sweep-window-heap.png"), heap); err != nil {
				return err
			}
		}
	}
	return nil
}

// ---------------------------------------------------------------- formatting

func fmtNum(v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case a >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 2, 64) + " G"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + " M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + " k"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fmtStat(s stat, f func(float64) string) string {
	if !s.ok() {
		return "—"
	}
	if s.n == 1 || s.lo == s.hi {
		return f(s.med)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.med), f(s.lo), f(s.hi))
}

func fmtRatio(r ratio) string {
	return fmt.Sprintf("%s× (%s–%s)", fmtX(r.med), fmtX(r.lo), fmtX(r.hi))
}

func fmtX(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 0.1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func fmtDur(sec float64) string {
	switch {
	case sec >= 1:
		return strconv.FormatFloat(sec, 'f', 2, 64) + " s"
	case sec >= 1e-3:
		return strconv.FormatFloat(sec*1e3, 'f', 1, 64) + " ms"
	case sec >= 1e-6:
		return strconv.FormatFloat(sec*1e6, 'f', 1, 64) + " µs"
	default:
		return strconv.FormatFloat(sec*1e9, 'f', 1, 64) + " ns"
	}
}

// perEvent divides a per-op stat by the events of each op.
func perEvent(s stat, events float64) stat {
	if events == 0 {
		return stat{}
	}
	return stat{med: s.med / events, lo: s.lo / events, hi: s.hi / events, n: s.n}
}

// ---------------------------------------------------------------- markdown

func (r *report) markdown() ([]byte, error) {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	p("# onceflow benchmarks")
	p("")
	p("<!-- Generated by `make bench` (bench/cmd/report) from bench/results/*.txt. Do not edit by hand: change bench/ and run `make bench`. -->")
	p("")
	p("> **Generated file — do not edit.** `make bench` runs the benchmarks of the `bench/` module (and the core engine's), keeps the raw")
	p("> `go test -bench` output in `bench/results/`, and regenerates this file and its plots with `go run ./cmd/report`.")
	p("> Generated %s. Every ratio below compares numbers **from this one run** (interleaved rounds); absolute", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	p("> numbers from different runs or machines are not comparable (the development machines are shared and noisy).")
	p("> Sections between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers at the end are written by other make targets")
	p("> (`make bench-cli`) and kept as they are.")
	p("")

	r.targetsSection(p)
	p("## Machine")
	p("")
	for _, l := range machine(r.results) {
		p("%s", l)
	}
	p("")
	r.commandsSection(p)
	r.workloadSection(p)
	r.compareSection(p)
	r.findingSection(p)
	r.sweepSections(p)
	r.coreSection(p)
	r.profileSection(p)
	return b.Bytes(), nil
}

type printer func(format string, args ...any)

func (r *report) targetsSection(p printer) {
	p("## Targets (issue 7)")
	p("")
	p("events/s of `BenchmarkCompare`, onceflow ÷ peer: ratio of the medians, and in parentheses the range of the per-round ratios.")
	p("")
	p("| target | measured | result |")
	p("|---|---|---|")
	for _, c := range checkTargets(r.compare) {
		name := fmt.Sprintf("`%s` ≥ %s× `%s`", c.t.impl, fmtX(c.t.min), c.t.peer)
		switch {
		case !c.ok:
			p("| %s | not measured | — |", name)
		case c.pass:
			p("| %s | %s | **PASS** |", name, fmtRatio(c.r))
		default:
			p("| %s | %s | **MISS** by %s× (%s reaches %.0f %% of the target; it needs to get %s× faster) |",
				name, fmtRatio(c.r), fmtX(c.shortBy()), c.t.impl, 100*c.r.med/c.t.min, fmtX(c.shortBy()))
		}
	}
	p("")
	if slices.ContainsFunc(checkTargets(r.compare), func(c checked) bool { return c.ok && !c.pass }) {
		p("Missed targets are explained by CPU profiles in [Profiles of the missed targets](#profiles-of-the-missed-targets).")
		p("")
	}
}

func (r *report) commandsSection(p printer) {
	p("## Exact commands")
	p("")
	p("`make bench` at the repository root runs the recipe below (quoted from the Makefile's `bench` target; `$(GO)` is `go`).")
	p("Each `for` loop runs one round per iteration, so that the implementations of a benchmark alternate across rounds")
	p("(interleaved) and a slow period of the machine hits all of them; the medians and ranges below are over the rounds.")
	p("")
	p("```sh")
	for _, l := range recipe(r.makefile, "bench") {
		p("%s", l)
	}
	p("```")
	p("")
	p("To compare two runs with benchstat: `go run golang.org/x/perf/cmd/benchstat@latest old/compare.txt bench/results/compare.txt`.")
	p("One sub-benchmark alone, for example: `cd bench && go test -run='^$' -bench='^BenchmarkCompare$/^impl=onceflow-memory$/' -benchtime=3x -benchmem`.")
	p("")
}

// recipe returns the recipe lines of target in the Makefile at path, as
// the shell sees them.
func recipe(path, target string) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{"# " + err.Error()}
	}
	defer f.Close()
	var out []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, target+":") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "\t") {
			break
		}
		l := strings.TrimPrefix(strings.TrimPrefix(line, "\t"), "@")
		l = strings.ReplaceAll(l, "$$", "$")
		l = strings.ReplaceAll(l, "$(GO)", "go")
		out = append(out, l)
	}
	return out
}

func (r *report) workloadSection(p printer) {
	p("## Workload")
	p("")
	p("One op of `BenchmarkCompare` runs **200,000 deliveries over 1,000 partition keys, 10 %% of them duplicates** that repeat")
	p("one of the last 1,024 deliveries (so most duplicates arrive while their first copy is still in flight), each a")
	p("CloudEvents 1.0 JSON event (~250 bytes: id, source, type, partitionkey, a 64-byte JSON `data` member), generated")
	p("deterministically from a printed seed (`-args -seed=N` to change it). Ids are 16 random hex digits plus the")
	p("event's index, so identities arrive in random key order, as UUIDs would. Every implementation runs the same handler")
	p("(mark the event handled in a per-event counter), and every op is checked: a benchmark fails if any unique event is")
	p("lost or handled twice — except Watermill's default Deduplicator, whose loss is [the finding](#finding-watermills-default-deduplicator-drops-unique-events).")
	p("")
	p("Inside the timer: everything from building the pipeline or router to the last event handled and the pipeline shut")
	p("down. Outside: generating the workload, opening the store or database file (a fresh one per op), closing it, and the")
	p("check. `B/op` and `allocs/op` are per op (200k deliveries); the per-event columns divide by 200,000.")
	p("")
}

func (r *report) compareSection(p printer) {
	p("## BenchmarkCompare")
	p("")
	if exists(r.png("compare.png")) {
		p("![events/s per implementation](%s/compare.png)", r.link)
		p("")
	}
	p("| # | implementation | events/s | time/op | B/event | allocs/event | unique handled | what it is |")
	p("|---|---|---|---|---|---|---|---|")
	for i, impl := range impls() {
		n := compareName(impl)
		ev := r.compare.stat(n, "events/op").med
		p("| %d | `%s` | %s | %s | %s | %s | %s | %s |", i+1, impl,
			fmtStat(r.compare.stat(n, "events/s"), fmtNum),
			fmtStat(r.compare.stat(n, "sec/op"), fmtDur),
			fmtStat(perEvent(r.compare.stat(n, "B/op"), ev), fmtNum),
			fmtStat(perEvent(r.compare.stat(n, "allocs/op"), ev), fmtNum),
			fmtStat(r.compare.stat(n, "unique"), func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }),
			implNote(impl))
	}
	p("")
	s := r.compare.stat(compareName(onceflowBolt), "events/commit")
	rec := r.compare.stat(compareName(onceflowBolt), "records/commit")
	raw := r.compare.stat(compareName(boltRaw), "events/commit")
	if s.ok() {
		p("onceflow-bbolt's group commits averaged %s deliveries (%s records written) per commit; bbolt-raw, run right after it in",
			fmtStat(s, fmtNum), fmtStat(rec, fmtNum))
		p("each round, committed %s deliveries per `Update` (the rounded mean of the onceflow-bbolt run just before it).", fmtStat(raw, fmtNum))
		p("")
	}
	p("### Ratios, same run")
	p("")
	p("events/s of each onceflow implementation divided by each other implementation's: ratio of the medians (range of the per-round ratios).")
	p("")
	head := "| onceflow ÷ |"
	sep := "|---|"
	others := []string{baseline, boltRaw, watermillDedup, watermill, watermillDefault}
	for _, o := range others {
		head += " `" + o + "` |"
		sep += "---|"
	}
	p("%s", head)
	p("%s", sep)
	for _, impl := range []string{onceflowMemory, onceflowMemorySubmit, onceflowBolt} {
		row := "| `" + impl + "` |"
		for _, o := range others {
			if rt, ok := r.compare.ratio(compareName(impl), compareName(o), "events/s"); ok {
				row += " " + fmtRatio(rt) + " |"
			} else {
				row += " — |"
			}
		}
		p("%s", row)
	}
	p("")
}

func (r *report) findingSection(p printer) {
	p("## Finding: Watermill's default Deduplicator drops unique events")
	p("")
	n := compareName(watermillDefault)
	lost, pctLost, uniq := r.compare.stat(n, "lost"), r.compare.stat(n, "lost-%"), r.compare.stat(n, "unique")
	p("`middleware.Deduplicator{}` with its defaults (Watermill v1.5.1) keys each message on the **Adler-32 checksum of its")
	p("payload** (`NewMessageHasherAdler32(math.MaxInt64)`), so two different events whose payloads share a checksum are one")
	p("\"duplicate\" to it: the second is acked and never handled. Adler-32 is a poor hash for short, similar texts: its low")
	p("half is the byte sum of the payload, which varies little between events of one shape.")
	p("")
	if lost.ok() {
		whole := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
		p("On this workload (%s deliveries, %s unique events, the seed printed by the benchmark) it **lost %s unique events,",
			fmtStat(r.compare.stat(n, "events/op"), whole), fmtStat(r.compare.stat(compareName(watermillDedup), "unique"), whole),
			fmtStat(lost, whole))
		every := ""
		if lost.lo == lost.hi {
			every = fmt.Sprintf(", the same number in each of the %d rounds", lost.n)
		}
		p("%s %% of them**%s (it handled %s); the same run's id-keyed Deduplicator handled all of them.",
			fmtStat(pctLost, func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }), every,
			fmtStat(uniq, func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }))
		if rt, ok := r.compare.ratio(n, compareName(watermillDedup), "events/s"); ok {
			p("It is also slower than the id-keyed one (%s its events/s): the Adler-32 hasher copies each payload through a", fmtRatio(rt))
			p("32 KB `io.CopyN` buffer, allocated per message.")
		}
		p("")
	}
	p("The count is exact and order-independent: the map repository keeps every key for at least its one-minute window, so of")
	p("the unique events that share a checksum exactly one gets through. `TestWatermillDefaultDeduplicatorDropsUniqueEvents`")
	p("(bench/finding_test.go, part of `make test`) reproduces it: it predicts the loss from the checksums of the payloads,")
	p("runs the workload through the router, and asserts that the events lost are more than zero and exactly the predicted")
	p("number (200k events; 50k under `-race`, where Watermill is too slow to finish inside the one-minute window):")
	p("")
	p("```sh")
	p("cd bench && go test -run TestWatermillDefaultDeduplicatorDropsUniqueEvents -count=1 -v .")
	p("```")
	p("")
}

func (r *report) sweepSections(p printer) {
	p("## Sweeps")
	p("")
	p("`BenchmarkSweep` varies one dimension of the compare workload at a time; `BenchmarkDurable` varies the group-commit size.")
	p("Medians over the rounds, (min–max).")
	p("")
	for _, d := range r.dims() {
		data := r.dimData(d)
		title := map[string]string{
			"shards":  "### events/s vs shards",
			"dup":     "### events/s vs duplicate ratio",
			"window":  "### events/s and heap vs window size",
			"payload": "### events/s vs payload size",
			"group":   "### Durable throughput vs group-commit size",
		}[d.key]
		p("%s", title)
		p("")
		switch d.key {
		case "shards":
			p("`pipeline.WithShards(N)` against the baseline with N workers. On 2 cores more shards buy ownership and isolation, not speed.")
		case "dup":
			p("The share of deliveries that repeat a recent one (200k deliveries each).")
		case "window":
			p("The dedup state already holds 1M or 10M identities (committed before the timer starts: onceflow-memory's store,")
			p("`dedup.NewMemory(dedup.WithCapacity(window))`, through `Store.Commit` in batches of 10,000; the baseline's maps")
			p("directly) when the compare workload runs through it. `heap-MiB` is the live heap of that state after the run")
			p("(window plus the run's 180k identities), from `runtime/metrics` `/gc/heap/live:bytes` after `runtime.GC()`,")
			p("less the live heap before the fill. Fewer rounds (see the commands: 2 at 1M, 1 at 10M), as filling the")
			p("state is the slow part.")
		case "payload":
			p("The size of the JSON `data` member (the whole event is ~190 bytes more).")
		case "group":
			p("`pipeline.WithGroupCommit(N, 100ms)` (the delay long enough that the size closes a group) with `dedup.Open`")
			p("(fsync on every commit), against bbolt-raw writing N deliveries per `Update`. events/commit shows what each got.")
		}
		p("")
		if data == nil || !slices.ContainsFunc(d.values, func(v string) bool { return data.stat(dimName(d, v, d.impls[0]), "events/s").ok() }) {
			p("_No results: run `make bench`._")
			p("")
			continue
		}
		if exists(r.png(d.file)) {
			p("![%s](%s/%s)", strings.TrimPrefix(title, "### "), r.link, d.file)
		}
		if d.key == "window" && exists(r.png("sweep-window-heap.png")) {
			p("![live heap vs window](%s/sweep-window-heap.png)", r.link)
		}
		p("")
		head := "| " + d.key + " |"
		sep := "|---|"
		for _, impl := range d.impls {
			head += " `" + impl + "` events/s |"
			sep += "---|"
		}
		extra := []string{}
		switch d.key {
		case "window":
			for _, impl := range d.impls {
				extra = append(extra, impl)
				head += " `" + impl + "` heap MiB |"
				sep += "---|"
			}
		case "group":
			for _, impl := range d.impls {
				extra = append(extra, impl)
				head += " `" + impl + "` events/commit |"
				sep += "---|"
			}
		}
		head += " " + d.impls[0] + " ÷ " + d.impls[1] + " |"
		sep += "---|"
		p("%s", head)
		p("%s", sep)
		for _, v := range d.values {
			row := "| " + v + " |"
			for _, impl := range d.impls {
				row += " " + fmtStat(data.stat(dimName(d, v, impl), "events/s"), fmtNum) + " |"
			}
			for _, impl := range extra {
				unit := "heap-MiB"
				if d.key == "group" {
					unit = "events/commit"
				}
				row += " " + fmtStat(data.stat(dimName(d, v, impl), unit), fmtNum) + " |"
			}
			if rt, ok := data.ratio(dimName(d, v, d.impls[0]), dimName(d, v, d.impls[1]), "events/s"); ok {
				row += " " + fmtRatio(rt) + " |"
			} else {
				row += " — |"
			}
			p("%s", row)
		}
		p("")
	}
}

var pipelineName = regexp.MustCompile(`^Pipeline/impl=([^/]+)/shards=(\d+)/batch=(\d+)$`)

func (r *report) coreSection(p printer) {
	p("## Core engine benchmarks")
	p("")
	p("The core packages' own benchmarks, run by the first command of `make bench` into `bench/results/core.txt`:")
	p("`pipeline`'s `BenchmarkPipeline` (the pass-through engine against its hand-written channel baseline in the same")
	p("benchmark), the `dedup` store benchmarks, the decoder and `retry`.")
	p("")
	if r.core == nil {
		p("_No `bench/results/core.txt`: run `make bench`._")
		p("")
		return
	}
	type cfg struct{ shards, batch string }
	var cfgs []cfg
	for _, n := range r.core.names("Pipeline/") {
		if m := pipelineName.FindStringSubmatch(n); m != nil && !slices.Contains(cfgs, cfg{m[2], m[3]}) {
			cfgs = append(cfgs, cfg{m[2], m[3]})
		}
	}
	if len(cfgs) > 0 {
		p("### Pipeline vs its baseline (pass-through, no store)")
		p("")
		p("| shards | batch | pipeline events/s | pipeline-submitbatch events/s | baseline events/s | pipeline ÷ baseline | submitbatch ÷ baseline |")
		p("|---|---|---|---|---|---|---|")
		for _, c := range cfgs {
			n := func(impl string) string {
				return fmt.Sprintf("Pipeline/impl=%s/shards=%s/batch=%s", impl, c.shards, c.batch)
			}
			row := fmt.Sprintf("| %s | %s | %s | %s | %s |", c.shards, c.batch,
				fmtStat(r.core.stat(n("pipeline"), "events/s"), fmtNum),
				fmtStat(r.core.stat(n("pipeline-submitbatch"), "events/s"), fmtNum),
				fmtStat(r.core.stat(n("baseline"), "events/s"), fmtNum))
			for _, impl := range []string{"pipeline", "pipeline-submitbatch"} {
				if rt, ok := r.core.ratio(n(impl), n("baseline"), "events/s"); ok {
					row += " " + fmtRatio(rt) + " |"
				} else {
					row += " — |"
				}
			}
			p("%s", row)
		}
		p("")
		p("Each op submits and drains 65,536 events over 1,000 keys with a no-op handler. The pipeline gets the baseline's")
		p("bound on events between producer and worker (16 batches of 64 per shard, `WithQueueLimits`). The baseline's")
		p("producer fills a batch per shard and hands it over whole; `SubmitBatch` (64 events per call) is the pipeline's")
		p("API for the same hand-off, and `pipeline` submits one event per `Submit` call, a lock per event. Target of")
		p("issue 2: the pass-through pipeline at least 0.5× the baseline in the same run, at batch 64.")
		p("")
	}
	p("### All core benchmarks")
	p("")
	p("| benchmark | time/op | B/op | allocs/op | other metrics |")
	p("|---|---|---|---|---|")
	for _, n := range r.core.order {
		var other []string
		for _, u := range r.core.units(n) {
			switch u {
			case "sec/op", "B/op", "allocs/op":
				continue
			}
			other = append(other, fmt.Sprintf("%s %s", fmtStat(r.core.stat(n, u), fmtNum), u))
		}
		p("| `%s` | %s | %s | %s | %s |", n,
			fmtStat(r.core.stat(n, "sec/op"), fmtDur),
			fmtStat(r.core.stat(n, "B/op"), fmtNum),
			fmtStat(r.core.stat(n, "allocs/op"), fmtNum),
			strings.Join(other, ", "))
	}
	p("")
}

func (r *report) profileSection(p printer) {
	var missed []string
	for _, c := range checkTargets(r.compare) {
		if c.ok && !c.pass && !slices.Contains(missed, c.t.impl) {
			missed = append(missed, c.t.impl)
		}
	}
	if len(missed) == 0 {
		return
	}
	p("## Profiles of the missed targets")
	p("")
	p("For each onceflow implementation that missed a target, `make bench` reruns its compare benchmark with")
	p("`-cpuprofile` (3 ops; the profile also covers the untimed setup: workload generation, opening the store) and keeps")
	p("`go tool pprof -top` of it in `bench/results/<impl>.pprof.txt` (flat) and `<impl>.pprof-cum.txt` (cumulative).")
	p("")
	for _, impl := range missed {
		p("### %s", impl)
		p("")
		flat := readFile(filepath.Join(r.results, impl+".pprof.txt"))
		if flat == "" {
			p("_No profile in %s: run `make bench`._", r.link)
			p("")
			continue
		}
		pf := parseTop(flat)
		for _, h := range pf.header {
			if strings.HasPrefix(h, "Duration") || strings.HasPrefix(h, "Showing nodes") {
				p("- %s", strings.TrimSpace(h))
			}
		}
		p("")
		p("CPU by package (flat time summed over the functions listed):")
		p("")
		p("| package | flat | share |")
		p("|---|---|---|")
		for i, s := range pf.byPackage() {
			if i == 12 {
				break
			}
			p("| `%s` | %v | %s |", s.pkg, s.flat, pct(s.flat, pf.total))
		}
		p("")
		if cum := readFile(filepath.Join(r.results, impl+".pprof-cum.txt")); cum != "" {
			pc := parseTop(cum)
			p("Where the CPU goes, by role (cumulative time; roles overlap where marked …):")
			p("")
			p("| role | function | cum | share |")
			p("|---|---|---|---|")
			for _, rt := range roots() {
				if row, ok := pc.find(rt.fn); ok {
					p("| %s | `%s` | %v | %s |", rt.role, rt.fn, row.cum, pct(row.cum, pc.total))
				}
			}
			p("")
			p("onceflow's own functions with the most cumulative time:")
			p("")
			p("| function | cum | share |")
			p("|---|---|---|")
			for _, row := range pc.topCum(12, "github.com/onceflow/onceflow/") {
				if strings.Contains(row.fn, "/bench.") {
					continue
				}
				p("| `%s` | %v | %s |", row.fn, row.cum, pct(row.cum, pc.total))
			}
			p("")
		}
		p("<details><summary>go tool pprof -top (first 40 functions)</summary>")
		p("")
		p("```")
		for _, h := range pf.header {
			p("%s", h)
		}
		p("%s", pf.columns)
		for i, row := range pf.rows {
			if i == 40 {
				break
			}
			p("%s", row.line)
		}
		p("```")
		p("")
		p("</details>")
		p("")
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
