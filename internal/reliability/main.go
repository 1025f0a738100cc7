// Command reliability writes RELIABILITY.md from the summaries the proof
// suites leave in a directory (ONCEFLOW_RELIABILITY_DIR): one JSON file per
// run, and the output of `make fuzz` in fuzz.log. Nothing in the report is
// typed by hand: every figure comes from a run and names the command that
// reproduces it. `make reliability` runs the suites and then this command:
//
//	go run ./internal/reliability -in build/reliability -out RELIABILITY.md
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// summary is the union of the fields the suites write (see
// internal/crashtest.Summary and the proof tests' summaries); absent
// fields are zero.
type summary struct {
	Name            string  `json:"name"`
	Suite           string  `json:"suite"`
	Seed            uint64  `json:"seed"`
	Events          int     `json:"events"`
	Deliveries      int     `json:"deliveries"`
	DuplicateRate   float64 `json:"duplicate_rate"`
	ReorderRate     float64 `json:"reorder_rate"`
	Kills           int     `json:"kills"`
	Starts          int     `json:"starts"`
	Lost            int     `json:"lost"`
	DupEffects      int     `json:"duplicate_effects"`
	Recovered       int     `json:"recovered"`
	CheckErrors     int     `json:"check_errors"`
	WallSeconds     float64 `json:"wall_seconds"`
	Command         string  `json:"command"`
	Point           string  `json:"point"`
	Hit             int     `json:"hit"`
	Mutation        string  `json:"mutation"`
	Expect          string  `json:"expect"`
	Transient       int     `json:"transient_faults"`
	Permanent       int     `json:"permanent_faults"`
	DeadLetters     int     `json:"dead_letters"`
	Redriven        int     `json:"redriven"`
	OrderViolations int     `json:"order_violations"`
	ModelDiff       int     `json:"model_diff"`
	Unacked         int     `json:"unacked"`
	Injected        int     `json:"injected"`
	InjectedBy      []kv    `json:"injected_by"`
	Accounted       int     `json:"accounted"`
	AccountedBy     []kv    `json:"accounted_by"`
	Unaccounted     int     `json:"unaccounted"`
	FaultRate       float64 `json:"fault_rate"`
	Runs            int     `json:"runs"`
	Commands        int     `json:"commands"`
	Restarts        int     `json:"restarts"`
	HandlerRuns     int     `json:"handler_runs"`
	Fsync           *bool   `json:"fsync"`
	file            string
}

type kv struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// fuzzRun is one `go test -fuzz` run read from fuzz.log.
type fuzzRun struct {
	target, pkg, fuzztime string
	elapsed               string
	execs                 int64
	interesting           string
	ok                    bool
	crasher               string
}

func main() {
	in := flag.String("in", "build/reliability", "directory of the run summaries (*.json, fuzz.log)")
	out := flag.String("out", "RELIABILITY.md", "file to write")
	commit := flag.String("commit", "", "the commit the suites ran on (default: the file commit in -in, if any)")
	flag.Parse()
	if err := run(*in, *out, *commit); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
}

func run(in, out, commit string) error {
	sums, err := readSummaries(in)
	if err != nil {
		return err
	}
	if len(sums) == 0 {
		return fmt.Errorf("no summaries in %s: run the suites with ONCEFLOW_RELIABILITY_DIR set (make reliability)", in)
	}
	if commit == "" {
		if b, err := os.ReadFile(filepath.Join(in, "commit")); err == nil {
			commit = strings.TrimSpace(string(b))
		}
	}
	fuzz, err := readFuzzLog(filepath.Join(in, "fuzz.log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var b strings.Builder
	write(&b, sums, fuzz, commit)
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

func readSummaries(dir string) ([]summary, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var sums []summary
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var s summary
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		s.file = filepath.Base(f)
		if s.Name == "" {
			s.Name = strings.TrimSuffix(s.file, ".json")
		}
		if s.Suite == "" {
			s.Suite = "crash" // crashtest.Summary has no suite: the crash harness
		}
		sums = append(sums, s)
	}
	slices.SortFunc(sums, func(a, b summary) int { return cmp.Compare(a.Name, b.Name) })
	return sums, nil
}

var (
	fuzzCmd   = regexp.MustCompile(`go test .*-fuzz='?\^?(\w+)\$?'?.*-fuzztime=(\S+)\s+(\S+)\s*$`)
	fuzzStat  = regexp.MustCompile(`^fuzz: elapsed: (\S+), execs: (\d+) \(\d+/sec\), new interesting: (\d+ \(total: \d+\))`)
	fuzzCrash = regexp.MustCompile(`Failing input written to (\S+)`)
)

func readFuzzLog(path string) ([]fuzzRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseFuzzLog(f)
}

func parseFuzzLog(r io.Reader) ([]fuzzRun, error) {
	var runs []fuzzRun
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := fuzzCmd.FindStringSubmatch(line); m != nil {
			runs = append(runs, fuzzRun{target: m[1], fuzztime: m[2], pkg: m[3]})
			continue
		}
		if len(runs) == 0 {
			continue
		}
		cur := &runs[len(runs)-1]
		if m := fuzzStat.FindStringSubmatch(line); m != nil {
			cur.elapsed, cur.interesting = m[1], m[3]
			cur.execs, _ = strconv.ParseInt(m[2], 10, 64)
		}
		if m := fuzzCrash.FindStringSubmatch(line); m != nil {
			cur.crasher = m[1]
		}
		if strings.HasPrefix(line, "ok ") || line == "PASS" {
			cur.ok = true
		}
	}
	return runs, sc.Err()
}

func write(b *strings.Builder, sums []summary, fuzz []fuzzRun, commit string) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("# onceflow: reliability figures\n\n")
	p("<!-- Generated by `make reliability` (go run ./internal/reliability) from the run summaries in\n")
	p("     build/reliability/. Do not edit: rerun `make reliability`. -->\n\n")
	p("Every figure below was measured by a test of this repository and is followed by the command that\n")
	p("reproduces it (the seed fixes the stream and everything injected; the goroutine scheduling is not\n")
	p("under its control). Generated %s", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	if commit != "" {
		p(" for commit `%s`", commit)
	}
	p(", on %s/%s with %d CPUs, %s.\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())

	bySuite := map[string][]summary{}
	for _, s := range sums {
		bySuite[s.Suite] = append(bySuite[s.Suite], s)
	}

	p("## Summary\n\n")
	p("| suite | what was injected | lost | duplicate effects | other violations | wall |\n|---|---|--:|--:|--:|--:|\n")
	for _, s := range sums {
		if s.Suite == "mutation" {
			continue
		}
		p("| %s | %s | %d | %d | %d | %s |\n", s.Name, injected(s), s.Lost, s.DupEffects, others(s), secs(s.WallSeconds))
	}
	for _, f := range fuzz {
		crashers := 0
		if f.crasher != "" || !f.ok {
			crashers = 1
		}
		p("| fuzz %s | %s executions of random input | – | – | %d | %s |\n", f.target, num(f.execs), crashers, f.elapsed)
	}
	p("\nlost = acknowledged, then missing from the store; duplicate effects = a transactional effect applied\n")
	p("twice, or the handler run again for an event whose outcome was committed; other violations = events\n")
	p("never acknowledged, per-key order violations, differences from the model, store check errors,\n")
	p("unaccounted faults (and, for fuzzing, crashers).\n\n")

	if cs := bySuite["crash"]; len(cs) > 0 {
		p("## Crash harness: SIGKILL at random moments\n\n")
		p("A child process (the test binary, re-executed) replays every delivery its durable ack log does not\n")
		p("hold through a pipeline on the bbolt store; the parent kills it with SIGKILL at random moments and\n")
		p("restarts it on the same files until a child finishes; a checker then compares the store with the\n")
		p("stream and a model (per event: outcome and an effect counter that must be 1; per key: a count).\n\n")
		p("| run | events | deliveries | duplicates | reordered | kills | restarts | recovered | faults (transient/permanent) | dead letters (redriven) | lost | duplicate effects | model diff | order violations | store check errors | fsync | wall |\n")
		p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|\n")
		for _, s := range cs {
			p("| %s | %s | %s | %s | %s | %d | %d | %s | %d / %d | %d (%d) | %d | %d | %d | %d | %d | %s | %s |\n",
				s.Name, num(int64(s.Events)), num(int64(s.Deliveries)), pct(s.DuplicateRate), pct(s.ReorderRate), s.Kills,
				max(s.Starts-1, 0), num(int64(s.Recovered)), s.Transient, s.Permanent, s.DeadLetters, s.Redriven,
				s.Lost, s.DupEffects, s.ModelDiff, s.OrderViolations, s.CheckErrors, fsync(s), secs(s.WallSeconds))
		}
		p("\nReproduce:\n\n")
		for _, s := range cs {
			p("- %s (seed %d): `%s`\n", s.Name, s.Seed, s.Command)
		}
		p("\n")
	}

	if cs := bySuite["crash-points"]; len(cs) > 0 {
		p("## Crash harness: kills at named crash points\n\n")
		p("The child kills itself (SIGKILL) at the 1st, 2nd and 10th hit of each named point, in each of its\n")
		p("first two lives, then finishes; every run is checked as above. Points: before claim, after the\n")
		p("handler (before commit), before the group commit, mid group commit (while the store commits),\n")
		p("after commit before acknowledgement, mid acknowledgement, mid dead-letter write, mid redrive.\n\n")
		p("| runs | events (total) | deliveries (total) | kills | recovered | dead letters (redriven) | lost | duplicate effects | model diff | store check errors | fsync | wall |\n")
		p("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|\n")
		for _, s := range cs {
			p("| %d | %s | %s | %d | %s | %d (%d) | %d | %d | %d | %d | %s | %s |\n", s.Runs, num(int64(s.Events)), num(int64(s.Deliveries)),
				s.Kills, num(int64(s.Recovered)), s.DeadLetters, s.Redriven, s.Lost, s.DupEffects, s.ModelDiff, s.CheckErrors, fsync(s), secs(s.WallSeconds))
		}
		p("\nReproduce:\n\n")
		for _, s := range cs {
			p("- %s (seed %d): `%s`\n", s.Name, s.Seed, s.Command)
		}
		p("\n")
	}

	if cs := bySuite["faults"]; len(cs) > 0 {
		p("## Fault injection at the store boundary\n\n")
		p("The store fails commits before writing, after writing (durable but reported failed) and on sync\n")
		p("(durable or not, and the handle poisoned until reopened), and fails lookups, on a seeded schedule.\n")
		p("A commit error stops the pipeline (fatal); the test reopens the store and replays every delivery not\n")
		p("acknowledged. Every fault must end as a retry, a dead letter or a fatal stop.\n\n")
		p("| run | events | deliveries | commit fault rate | injected | accounted | unaccounted | lost | duplicate effects | model diff | restarts | fsync | wall |\n")
		p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|\n")
		for _, s := range cs {
			p("| %s | %s | %s | %s | %d (%s) | %d (%s) | %d | %d | %d | %d | %d | %s | %s |\n", s.Name, num(int64(s.Events)), num(int64(s.Deliveries)),
				pct(s.FaultRate), s.Injected, kvs(s.InjectedBy), s.Accounted, kvs(s.AccountedBy), s.Unaccounted, s.Lost, s.DupEffects,
				s.ModelDiff, s.Restarts, fsync(s), secs(s.WallSeconds))
		}
		p("\nReproduce:\n\n")
		for _, s := range cs {
			p("- %s (seed %d): `%s`\n", s.Name, s.Seed, s.Command)
		}
		p("\n")
	}

	if cs := bySuite["properties"]; len(cs) > 0 {
		p("## Properties (gopter)\n\n")
		p("`proptest.CheckHandler` generates streams with duplicates in bursts, local and global reordering,\n")
		p("skewed keys, transient and permanent handler failures and crashes (restarts, runs cancelled at crash\n")
		p("points, commits failing before or after writing), runs each through a real pipeline, and compares\n")
		p("acknowledgements, outcomes, state, outbox, dead letters and outside effects with a plain model. The\n")
		p("stateful test drives the pipeline on bbolt with gopter commands (submit, duplicate, handler\n")
		p("failure, restart) against a model.\n\n")
		p("| run | streams / sequences | events | deliveries | duplicates | reordered | faults (transient/permanent) | crashes (restarts/cancels/failed commits) | handler runs | violations | wall |\n")
		p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range cs {
			if s.Commands > 0 {
				p("| %s | %d sequences, %s commands | – | – | – | – | – | %d restarts | – | %d | %s |\n", s.Name, s.Runs, num(int64(s.Commands)), s.Restarts,
					s.Lost+s.DupEffects+others(s), secs(s.WallSeconds))
				continue
			}
			p("| %s | %d | %s | %s | %s | %s | %d / %d | %d / %d / %d | %s | %d | %s |\n", s.Name, s.Runs, num(int64(s.Events)), num(int64(s.Deliveries)),
				pct(s.DuplicateRate), pct(s.ReorderRate), s.Transient, s.Permanent, s.Restarts, s.Kills, s.Injected,
				num(int64(s.HandlerRuns)), s.Lost+s.DupEffects+others(s), secs(s.WallSeconds))
		}
		p("\nReproduce:\n\n")
		for _, s := range cs {
			p("- %s (seed %d): `%s`\n", s.Name, s.Seed, s.Command)
		}
		p("\n")
	}

	if cs := bySuite["mutation"]; len(cs) > 0 {
		p("## Mutation checks: the harness has teeth\n\n")
		p("Each suite is run once against a deliberately broken pipeline (a test-only switch in\n")
		p("`pipeline.Hooks`) and must report the breakage.\n\n")
		p("| broken on purpose | expected | reported: lost | reported: duplicate effects | caught |\n|---|---|--:|--:|:-:|\n")
		for _, s := range cs {
			caught := "no"
			if (strings.Contains(s.Expect, "lost") && s.Lost > 0) || (strings.Contains(s.Expect, "duplicate") && s.DupEffects > 0) {
				caught = "yes"
			}
			p("| %s | %s | %d | %d | %s |\n", mutationName(s.Mutation), s.Expect, s.Lost, s.DupEffects, caught)
		}
		p("\nReproduce:\n\n")
		for _, s := range cs {
			p("- %s (seed %d): `%s`\n", s.Name, s.Seed, s.Command)
		}
		p("\n")
	}

	if len(fuzz) > 0 {
		p("## Fuzzing\n\n")
		p("Each target ran for its fuzz time on top of its committed seed corpus (which also runs in every\n")
		p("`go test`); a crasher would be written to the package's testdata/fuzz and fail the run.\n\n")
		p("| target | package | time | executions | new interesting | result |\n|---|---|--:|--:|---|---|\n")
		for _, f := range fuzz {
			res := "pass"
			if f.crasher != "" {
				res = "crasher: " + f.crasher
			} else if !f.ok {
				res = "failed"
			}
			p("| %s | %s | %s | %s | %s | %s |\n", f.target, f.pkg, f.elapsed, num(f.execs), f.interesting, res)
		}
		p("\nReproduce: `go test -run='^$' -fuzz='^<target>$' -fuzztime=<time> <package>` (or `make fuzz FUZZTIME=<time>`).\n\n")
	}

	p("## What these figures do not show\n\n")
	p("- A SIGKILL is not a power loss: the kernel's page cache survives it, so the crash harness cannot tell\n")
	p("  an fsync'd commit from an unsynced one. Runs marked fsync \"no\" open the store with\n")
	p("  `dedup.UnsafeNoSync` to save the fsyncs' time; they lose no power to detect what a kill can cause.\n")
	p("  Durability against power loss rests on bbolt's commit protocol, tested upstream under dm-flakey.\n")
	p("- The seeds fix the streams, the kill schedules and the injected faults, not the goroutine\n")
	p("  interleavings: a failure that depends on one may need several runs to show again.\n")
	p("- Effects outside onceflow are at least once by design; the properties check that a handler gives them a\n")
	p("  stable idempotency key, not that a real receiver honours it.\n")
	p("- `make soak` runs the large versions (10M events and 2,000 kills with fsync, fault rates up to 20%%,\n")
	p("  20,000 property streams, an hour of fuzzing per target); its figures go to build/soak, not here.\n")
}

func injected(s summary) string {
	switch s.Suite {
	case "crash":
		parts := []string{fmt.Sprintf("%s events, %s deliveries (%s duplicates, %s reordered), %d SIGKILLs", num(int64(s.Events)),
			num(int64(s.Deliveries)), pct(s.DuplicateRate), pct(s.ReorderRate), s.Kills)}
		if s.Transient+s.Permanent > 0 {
			parts = append(parts, fmt.Sprintf("%s transient and %s permanent handler failures", num(int64(s.Transient)), num(int64(s.Permanent))))
		}
		return strings.Join(parts, ", ")
	case "crash-points":
		return fmt.Sprintf("%d runs × SIGKILL at named points (%d kills), %s events", s.Runs, s.Kills, num(int64(s.Events)))
	case "faults":
		return fmt.Sprintf("%d store faults (%s) over %s events", s.Injected, kvs(s.InjectedBy), num(int64(s.Events)))
	case "properties":
		if s.Commands > 0 {
			return fmt.Sprintf("%d command sequences (%s commands, %d restarts) on bbolt", s.Runs, num(int64(s.Commands)), s.Restarts)
		}
		return fmt.Sprintf("%s streams, %s events, %s deliveries, %s handler faults, %s crashes", num(int64(s.Runs)), num(int64(s.Events)),
			num(int64(s.Deliveries)), num(int64(s.Transient+s.Permanent)), num(int64(s.Restarts+s.Kills+s.Injected)))
	}
	return fmt.Sprintf("%s events", num(int64(s.Events)))
}

func others(s summary) int {
	return s.Unacked + s.OrderViolations + s.ModelDiff + s.CheckErrors + s.Unaccounted
}

func mutationName(m string) string {
	switch m {
	case "ack-before-commit":
		return "acknowledge before the commit (`Hooks.AckBeforeCommit`) + crash before the commit"
	case "skip-dedup":
		return "no dedup lookup (`Hooks.SkipDedup`)"
	}
	return m
}

func fsync(s summary) string {
	switch {
	case s.Fsync == nil:
		return "–"
	case *s.Fsync:
		return "yes"
	default:
		return "no"
	}
}

func kvs(list []kv) string {
	var parts []string
	for _, x := range list {
		parts = append(parts, fmt.Sprintf("%s %d", x.Name, x.Count))
	}
	return strings.Join(parts, ", ")
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

func secs(s float64) string {
	if s == 0 {
		return "–"
	}
	return (time.Duration(s * float64(time.Second))).Round(100 * time.Millisecond).String()
}

// num prints n with thousands separators.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return s
	}
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
