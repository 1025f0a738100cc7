package proptest_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/leanovate/gopter"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/proptest"
)

// envInt returns the integer environment variable name, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

// summary is the JSON record of a property run for RELIABILITY.md (the
// fields internal/reliability reads), written when
// ONCEFLOW_RELIABILITY_DIR is set.
type summary struct {
	Name          string  `json:"name"`
	Suite         string  `json:"suite"`
	Seed          int64   `json:"seed"`
	Runs          int     `json:"runs"`
	Events        int     `json:"events"`
	Deliveries    int     `json:"deliveries"`
	DuplicateRate float64 `json:"duplicate_rate"`
	ReorderRate   float64 `json:"reorder_rate"`
	Transient     int     `json:"transient_faults"`
	Permanent     int     `json:"permanent_faults"`
	Restarts      int     `json:"restarts"`
	Kills         int     `json:"kills"` // cancels at crash points
	Injected      int     `json:"injected"`
	HandlerRuns   int     `json:"handler_runs"`
	Lost          int     `json:"lost"`
	DupEffects    int     `json:"duplicate_effects"`
	ModelDiff     int     `json:"model_diff"`
	Fsync         *bool   `json:"fsync,omitempty"`
	Mutation      string  `json:"mutation,omitempty"`
	Expect        string  `json:"expect,omitempty"`
	WallSeconds   float64 `json:"wall_seconds"`
	Command       string  `json:"command"`
}

func writeSummary(t *testing.T, s summary) {
	t.Helper()
	dir := os.Getenv("ONCEFLOW_RELIABILITY_DIR")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, s.Name+".json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// scaleEnv returns the settings of the variables that scale these tests
// (PROPTEST_RUNS, PROPTEST_EVENTS, PROPTEST_DISK_RUNS) that are set, as
// "NAME=value " each, so that a summary's command reruns the same streams:
// a seed reproduces the stream at each index, and a larger run count
// reaches further.
func scaleEnv() string {
	var b strings.Builder
	for _, name := range []string{"PROPTEST_RUNS", "PROPTEST_EVENTS", "PROPTEST_DISK_RUNS"} {
		if v, ok := os.LookupEnv(name); ok {
			fmt.Fprintf(&b, "%s=%s ", name, v)
		}
	}
	return b.String()
}

func summarize(name, test string, rep proptest.Report) summary {
	tot := rep.Totals
	s := summary{Name: name, Suite: "properties", Seed: rep.Seed, Runs: rep.Streams, Events: tot.Events,
		Deliveries: tot.Deliveries, Transient: tot.Transient, Permanent: tot.Permanent, Restarts: tot.Restarts,
		Kills: tot.Cancels, Injected: tot.CommitFaults, HandlerRuns: tot.HandlerRuns, WallSeconds: rep.Wall.Seconds(),
		Command: fmt.Sprintf("ONCEFLOW_SEED=%d %sgo test -count=1 -run '^%s$' ./proptest", rep.Seed, scaleEnv(), test)}
	if tot.Deliveries > 0 {
		s.DuplicateRate = float64(tot.Duplicates) / float64(tot.Deliveries)
		s.ReorderRate = float64(tot.Reordered) / float64(tot.Deliveries)
	}
	return s
}

// TestCheckHandlerCorrect: a handler that keeps its state in fx and sends
// its outside effects with a stable idempotency key passes
// PROPTEST_RUNS streams (default 1,000) of up to PROPTEST_EVENTS events
// (default 100).
func TestCheckHandlerCorrect(t *testing.T) {
	runs, events := envInt(t, "PROPTEST_RUNS", 1000), envInt(t, "PROPTEST_EVENTS", 100)
	if testing.Short() {
		runs, events = 30, 30
	}
	rep := proptest.CheckHandler(t, counting, proptest.WithRuns(runs), proptest.WithMaxEvents(events))
	if rep.Streams != runs || rep.Totals.Duplicates == 0 || rep.Totals.Reordered == 0 || rep.Totals.Restarts+rep.Totals.Cancels == 0 ||
		rep.Totals.CommitFaults == 0 || rep.Totals.Transient == 0 || rep.Totals.Permanent == 0 {
		t.Fatalf("the streams missed a condition: %+v", rep.Totals)
	}
	writeSummary(t, summarize("properties-memory", t.Name(), rep))
}

// TestCheckHandlerOnDisk is TestCheckHandlerCorrect on the bbolt store,
// closed and reopened at every crash.
func TestCheckHandlerOnDisk(t *testing.T) {
	runs := envInt(t, "PROPTEST_DISK_RUNS", 100)
	if testing.Short() {
		runs = 10
	}
	rep := proptest.CheckHandler(t, counting, proptest.WithRuns(runs), proptest.WithMaxEvents(40), proptest.OnDisk(t.TempDir()))
	s := summarize("properties-bbolt", t.Name(), rep)
	s.Fsync = new(bool)
	writeSummary(t, s)
}

// mustFail runs Check expecting a failure, and checks that the error
// carries the seed, that the seed reproduces the same generated stream and
// a failure, and that the violations mention want.
func mustFail(t *testing.T, h proptest.NewHandler, want string, opts ...proptest.Option) proptest.Report {
	t.Helper()
	opts = append(opts, proptest.WithRuns(100), proptest.WithMaxEvents(30))
	rep, err := proptest.Check(h, opts...)
	if err == nil {
		t.Fatalf("a broken handler passed %d streams", rep.Streams)
	}
	t.Logf("the expected failure:\n%v", err)
	if !strings.Contains(err.Error(), "ONCEFLOW_SEED="+strconv.FormatInt(rep.Seed, 10)) {
		t.Errorf("the error does not carry the seed %d", rep.Seed)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("the error does not mention %q", want)
	}
	again, err2 := proptest.Check(h, append(opts, proptest.WithSeed(rep.Seed))...)
	if err2 == nil {
		t.Fatalf("seed %d did not reproduce the failure", rep.Seed)
	}
	if got, want := again.Failure.Original.String(), rep.Failure.Original.String(); got != want {
		t.Errorf("seed %d generated another failing stream:\n%s\nthe first time:\n%s", rep.Seed, got, want)
	}
	return rep
}

// TestCheckHandlerCatchesOutsideEffectsWithoutKey: a handler whose outside
// effect carries a key of its own making fails, with a seed that
// reproduces the failure.
func TestCheckHandlerCatchesOutsideEffectsWithoutKey(t *testing.T) {
	mustFail(t, notifyWithoutKey, "outside")
}

// TestCheckHandlerCatchesStateInMemory: a handler that counts in memory
// instead of in fx fails.
func TestCheckHandlerCatchesStateInMemory(t *testing.T) {
	mustFail(t, countInMemory, "the model's")
}

// TestCheckHandlerHasTeeth is the mutation check of the properties: with
// the pipeline's dedup lookup disabled (Hooks.SkipDedup), a correct
// handler fails with duplicate effects.
func TestCheckHandlerHasTeeth(t *testing.T) {
	rep := mustFail(t, counting, "duplicate effect",
		proptest.WithPipelineOptions(pipeline.WithTestHooks(pipeline.Hooks{SkipDedup: true})))
	s := summarize("mutation-skip-dedup", t.Name(), rep)
	s.Suite, s.Mutation, s.Expect = "mutation", "skip-dedup", "duplicate effects > 0"
	for _, v := range rep.Failure.Violations {
		if strings.Contains(v, "duplicate effect") {
			s.DupEffects++
		}
	}
	writeSummary(t, s)
}

// TestCheckStreamByHand replays a stream written by hand: a duplicate
// burst, a permanent fault, a failed commit and a cancel after a commit.
func TestCheckStreamByHand(t *testing.T) {
	s := &proptest.Stream{
		Events:     []proptest.EventSpec{{Key: 0}, {Key: 1, Fault: proptest.FailAfter, Fails: 2}, {Key: 0, Fault: proptest.Permanent}, {Key: 1}},
		Deliveries: []int{0, 1, 0, 0, 2, 3, 1, 3},
		Crashes: []proptest.Crash{{At: 3, Kind: proptest.CommitFailsAfter, Hit: 1},
			{At: 6, Kind: proptest.Cancel, Point: pipeline.PointAfterCommit, Hit: 1}},
		Shards: 2,
	}
	res := proptest.CheckStream(s, counting)
	if err := res.Err(); err != nil {
		t.Fatalf("%v\nstream: %v", err, s)
	}
	if res.Acks < len(s.Deliveries) || res.CommitFaults != 1 || res.Cancels != 1 {
		t.Fatalf("result %+v", res)
	}
	// An event whose first run is retried: a count kept in memory counts
	// it twice.
	retried := &proptest.Stream{Events: []proptest.EventSpec{{Key: 0, Fault: proptest.FailAfter, Fails: 1}}, Deliveries: []int{0}, Shards: 1}
	if err := proptest.CheckStream(retried, counting).Err(); err != nil {
		t.Fatal(err)
	}
	if err := proptest.CheckStream(retried, countInMemory).Err(); err == nil {
		t.Fatal("a handler counting in memory passed a stream with a retried event")
	} else {
		t.Logf("counting in memory: %v", err)
	}
}

// TestStreamsShrink: generated streams are valid and every shrink of one
// is a valid, smaller stream.
func TestStreamsShrink(t *testing.T) {
	gen := proptest.Streams(proptest.DefaultProfile())
	params := gopter.DefaultGenParameters().WithSize(40)
	params.Rng = rand.New(rand.NewSource(1))
	for range 50 {
		r := gen(params)
		v, ok := r.Retrieve()
		if !ok {
			t.Fatal("no stream generated")
		}
		s := v.(*proptest.Stream)
		if err := proptest.CheckStream(s, counting).Err(); err != nil {
			t.Fatalf("%v\nstream: %v", err, s)
		}
		shrink := r.Shrinker(s)
		for i := 0; i < 20; i++ {
			c, ok := shrink()
			if !ok {
				break
			}
			cs := c.(*proptest.Stream)
			if len(cs.Deliveries) > len(s.Deliveries) || len(cs.Events) > len(s.Events) || len(cs.Crashes) > len(s.Crashes) {
				t.Fatalf("shrink grew the stream:\n%v\nfrom\n%v", cs, s)
			}
		}
	}
}

// recordingTB is a testing.TB that records a Fatal instead of stopping
// the test, so that a test can watch CheckHandler fail.
type recordingTB struct {
	testing.TB
	fatal string
}

func (r *recordingTB) Fatal(args ...any) { r.fatal = fmt.Sprint(args...) }

// TestCheckHandlerFailsTheTest: the one call a user puts in a test fails
// that test for a broken handler, with the seed in the message, and the
// seed makes the same call fail again.
func TestCheckHandlerFailsTheTest(t *testing.T) {
	tb := &recordingTB{TB: t}
	rep := proptest.CheckHandler(tb, notifyWithoutKey, proptest.WithRuns(100), proptest.WithMaxEvents(30))
	if tb.fatal == "" {
		t.Fatal("CheckHandler passed a handler that repeats outside effects")
	}
	if !strings.Contains(tb.fatal, "ONCEFLOW_SEED="+strconv.FormatInt(rep.Seed, 10)) || !strings.Contains(tb.fatal, "shrunk stream") {
		t.Errorf("the failure lacks the seed or the shrunk stream:\n%s", tb.fatal)
	}
	t.Setenv("ONCEFLOW_SEED", strconv.FormatInt(rep.Seed, 10))
	again := &recordingTB{TB: t}
	rep2 := proptest.CheckHandler(again, notifyWithoutKey, proptest.WithRuns(100), proptest.WithMaxEvents(30))
	if again.fatal == "" || rep2.Seed != rep.Seed {
		t.Fatalf("ONCEFLOW_SEED=%d did not reproduce the failure (seed %d, failure %q)", rep.Seed, rep2.Seed, again.fatal)
	}

	ok := &recordingTB{TB: t}
	proptest.CheckHandler(ok, counting, proptest.WithRuns(50), proptest.WithMaxEvents(30))
	if ok.fatal != "" {
		t.Fatalf("CheckHandler failed a correct handler: %s", ok.fatal)
	}
}

// TestBadOptionsAndSetupErrors: a profile outside its bounds is refused
// with an error naming the field, and an error setting a stream up is
// reported as such, not as a broken promise.
func TestBadOptionsAndSetupErrors(t *testing.T) {
	for field, mod := range map[string]func(*proptest.Profile){
		"Duplicates":    func(p *proptest.Profile) { p.Duplicates = 1 },
		"KeySkew":       func(p *proptest.Profile) { p.KeySkew = -0.1 },
		"LocalReorder":  func(p *proptest.Profile) { p.LocalReorder = 1.5 },
		"Transient":     func(p *proptest.Profile) { p.Transient = math.NaN() },
		"Permanent":     func(p *proptest.Profile) { p.Transient, p.Permanent = 0.6, 0.6 },
		"Crashes":       func(p *proptest.Profile) { p.Crashes = -1 },
		"Window":        func(p *proptest.Profile) { p.Window = -1 },
		"MaxBurst":      func(p *proptest.Profile) { p.MaxBurst = -2 },
		"GlobalReorder": func(p *proptest.Profile) { p.GlobalReorder = 2 },
	} {
		p := proptest.DefaultProfile()
		mod(&p)
		_, err := proptest.Check(counting, proptest.WithProfile(p))
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("profile with a bad %s: %v, want an error naming it", field, err)
		}
		// Fields with good values are not blamed.
		if other := map[string]string{"Window": "MaxBurst", "MaxBurst": "Window"}[field]; other != "" && err != nil && strings.Contains(err.Error(), other) {
			t.Errorf("profile with a bad %s: %v, which names %s too", field, err, other)
		}
	}
	_, err := proptest.Check(counting, proptest.WithRuns(3), proptest.WithMaxEvents(5), proptest.WithMaxShrinks(0),
		proptest.WithPipelineOptions(pipeline.WithShards(-1)))
	if err == nil || !strings.Contains(err.Error(), "setup error, not a broken promise") || strings.Contains(err.Error(), "broke the promise") {
		t.Fatalf("a pipeline option that New refuses: %v, want a setup error", err)
	}
}
