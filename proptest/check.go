package proptest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/prop"
	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/retry"
	"github.com/onceflow/onceflow/stage"
)

// NewHandler builds the handler under test. proptest calls it for every
// pipeline it starts — at the beginning of a stream and after every crash,
// as a restarted process would — and once more for the model, so that
// state a handler keeps in memory is lost where a real crash would lose
// it. ext stands for the world outside onceflow (see [External]); a handler
// without outside effects ignores it.
type NewHandler func(ext *External) stage.Func

// Report sums up a Check: the seed, how many streams passed, what they
// held and what was injected, and the failure, if any.
type Report struct {
	// Seed reproduces the run: pass it back with WithSeed or ONCEFLOW_SEED.
	Seed int64
	// Streams is the number of streams that passed.
	Streams int
	// Totals over the streams that passed.
	Totals Result
	// Failure is the shrunk failing stream and what it violated; nil when
	// every stream passed.
	Failure *Failure
	// Wall is the time the check took.
	Wall time.Duration
}

// Failure is a failing stream, shrunk.
type Failure struct {
	Stream     *Stream // the smallest failing stream found
	Original   *Stream // the stream as generated
	Shrinks    int
	Violations []string
}

// Result is what one stream did and violated (see CheckStream).
type Result struct {
	// Events are distinct events; Deliveries all copies; Duplicates the
	// copies beyond the first; Reordered the events whose first copy
	// arrives right after the first copy of a later event.
	Events, Deliveries, Duplicates, Reordered int
	Transient, Permanent                      int // events with such faults
	Restarts, Cancels, CommitFaults           int // crashes, by kind
	Replays                                   int // lives that only replayed unacknowledged deliveries
	HandlerRuns                               int // calls of the handler under test
	Acks, Nacks                               int
	DuplicateAnswers                          int // acks of copies, answered with the first outcome
	// Violations lists the broken invariants; empty when the stream passed.
	Violations []string
}

// Err returns nil when r has no violation, else an error listing them.
func (r Result) Err() error {
	if len(r.Violations) == 0 {
		return nil
	}
	return errors.New("proptest: " + strings.Join(r.Violations, "; "))
}

func (r *Result) add(o Result) {
	r.Events += o.Events
	r.Deliveries += o.Deliveries
	r.Duplicates += o.Duplicates
	r.Reordered += o.Reordered
	r.Transient += o.Transient
	r.Permanent += o.Permanent
	r.Restarts += o.Restarts
	r.Cancels += o.Cancels
	r.CommitFaults += o.CommitFaults
	r.Replays += o.Replays
	r.HandlerRuns += o.HandlerRuns
	r.Acks += o.Acks
	r.Nacks += o.Nacks
	r.DuplicateAnswers += o.DuplicateAnswers
}

// seedFromEnv returns ONCEFLOW_SEED, else GOPTER_SEED, else the clock.
func seedFromEnv() (int64, error) {
	for _, name := range []string{"ONCEFLOW_SEED", "GOPTER_SEED"} {
		if s := os.Getenv(name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("proptest: %s=%q: %w", name, s, err)
			}
			return n, nil
		}
	}
	return time.Now().UnixNano(), nil
}

// Check generates streams (see Streams and Profile) and runs each through
// a pipeline with the handler newHandler builds, checking every invariant
// (see the package documentation). It returns an error describing the
// first failing stream, shrunk, with the seed that reproduces it; the
// Report is filled either way.
func Check(newHandler NewHandler, opts ...Option) (Report, error) {
	cfg, err := buildConfig(opts)
	if err != nil {
		return Report{}, err
	}
	if newHandler == nil {
		return Report{}, errors.New("proptest: nil NewHandler")
	}
	seed := cfg.seed
	if !cfg.seeded {
		if seed, err = seedFromEnv(); err != nil {
			return Report{}, err
		}
	}
	start := time.Now()
	params := gopter.DefaultTestParametersWithSeed(seed)
	params.MinSuccessfulTests = cfg.runs
	params.MaxSize = cfg.maxEvents + 1
	params.MaxShrinkCount = cfg.maxShrink
	rep := Report{Seed: seed}
	failing := false
	var lastViolations []string
	ps := gopter.NewProperties(params)
	ps.Property("effects once under duplicates, reordering, faults and crashes", prop.ForAll(
		func(s *Stream) string {
			res := checkStream(s, newHandler, cfg)
			if len(res.Violations) > 0 {
				failing, lastViolations = true, res.Violations
				return strings.Join(res.Violations, "\n")
			}
			if !failing {
				rep.Totals.add(res)
			}
			return ""
		},
		Streams(cfg.profile),
	))
	var cr captureReporter
	ps.Run(&cr)
	rep.Wall = time.Since(start)
	r := cr.result
	if r == nil {
		return rep, errors.New("proptest: gopter reported nothing")
	}
	rep.Streams = r.Succeeded
	if r.Passed() {
		return rep, nil
	}
	f := &Failure{Violations: lastViolations}
	if len(r.Args) > 0 {
		f.Stream, _ = r.Args[0].Arg.(*Stream)
		f.Original, _ = r.Args[0].OrigArg.(*Stream)
		f.Shrinks = r.Args[0].Shrinks
	}
	if r.Error != nil {
		f.Violations = append(f.Violations, fmt.Sprintf("the check panicked: %v\n%s", r.Error, r.ErrorStack))
	}
	rep.Failure = f
	return rep, f.error(seed, r.Succeeded)
}

func (f *Failure) error(seed int64, passed int) error {
	var b strings.Builder
	setup := len(f.Violations) > 0
	for _, v := range f.Violations {
		setup = setup && strings.HasPrefix(v, setupPrefix)
	}
	if setup {
		fmt.Fprintf(&b, "proptest: stream %d could not be run: a setup error, not a broken promise (seed %d; reproduce with ONCEFLOW_SEED=%d)\n", passed+1, seed, seed)
	} else {
		fmt.Fprintf(&b, "proptest: stream %d broke the promise (seed %d; reproduce with ONCEFLOW_SEED=%d)\n", passed+1, seed, seed)
	}
	for _, v := range f.Violations {
		b.WriteString("  - " + strings.ReplaceAll(v, "\n", "\n    ") + "\n")
	}
	fmt.Fprintf(&b, "shrunk stream (%d shrinks): %v", f.Shrinks, f.Stream)
	if f.Original != nil {
		fmt.Fprintf(&b, "\noriginal stream: %d events, %d deliveries, %d crashes", len(f.Original.Events), len(f.Original.Deliveries), len(f.Original.Crashes))
	}
	return errors.New(b.String())
}

type captureReporter struct{ result *gopter.TestResult }

func (c *captureReporter) ReportTestResult(_ string, r *gopter.TestResult) { c.result = r }

// CheckHandler is Check for a test: it logs the seed and the totals, and
// fails t with the shrunk stream and the violations when a stream breaks
// the promise. It returns the Report.
func CheckHandler(t testing.TB, newHandler NewHandler, opts ...Option) Report {
	t.Helper()
	rep, err := Check(newHandler, opts...)
	t.Logf("proptest: seed %d (reproduce with ONCEFLOW_SEED=%d): %d streams passed in %v: %d events, %d deliveries (%d duplicates, %d reordered), %d transient and %d permanent faults, %d restarts, %d cancels, %d failed commits",
		rep.Seed, rep.Seed, rep.Streams, rep.Wall.Round(time.Millisecond), rep.Totals.Events, rep.Totals.Deliveries, rep.Totals.Duplicates,
		rep.Totals.Reordered, rep.Totals.Transient, rep.Totals.Permanent, rep.Totals.Restarts, rep.Totals.Cancels, rep.Totals.CommitFaults)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// CheckStream runs the one stream s through the pipeline with the handler
// newHandler builds, replays every delivery not acknowledged until all are,
// and checks every invariant against the model. Options that shape the
// generation (WithRuns, WithMaxEvents, WithSeed, WithProfile, WithMaxShrinks) are
// ignored.
func CheckStream(s *Stream, newHandler NewHandler, opts ...Option) Result {
	cfg, err := buildConfig(opts)
	if err != nil {
		return Result{Violations: []string{err.Error()}}
	}
	if newHandler == nil {
		return Result{Violations: []string{"nil NewHandler"}}
	}
	return checkStream(s, newHandler, cfg)
}

// Errors the wrapper and the failing store inject.
var (
	errTransient = errors.New("proptest: injected transient failure")
	errPermanent = errors.New("proptest: injected permanent failure")
	errCommit    = errors.New("proptest: injected commit failure")
)

// retryPolicy is the pipeline's retry policy in the checks: fast, and
// enough attempts for every transient fault (at most 2 failures).
func retryPolicy() retry.Policy {
	return retry.Policy{InitialInterval: 100 * time.Microsecond, MaxInterval: time.Millisecond, MaxAttempts: 5}
}

// markerPrefix is the handler state key proptest's wrapper writes for each
// event it lets commit: finding it already set means the event's effects
// would commit twice.
const markerPrefix = "\x00proptest.applied/"

const maxReplays = 5

// setupPrefix starts a violation that is an error setting the stream up
// (a store that does not open, a handler constructor that fails), not a
// broken invariant.
const setupPrefix = "setup: "

type ackRec struct {
	delivery int
	out      onceflow.Outcome
}

// runner replays one stream.
type runner struct {
	cfg        config
	s          *Stream
	newHandler NewHandler
	res        Result
	templates  []*onceflow.Event
	ext        *External

	mem   *dedup.Store // the in-memory store, kept across lives
	dir   string       // OnDisk: the directory of the bbolt file
	store atomic.Pointer[dedup.Store]

	mu        sync.Mutex
	attempts  []int                   // per event, over all lives
	calls     []int                   // event numbers, in the order the handler was called
	delivery  map[*onceflow.Event]int // submitted event -> delivery index
	submitted map[*onceflow.Event]int // submitted event -> submission number
	lastSub   map[string]int          // per key, in this life: submission number of the last call
	acked     []bool                  // per delivery
	acks      []ackRec                // every acknowledgement
	violated  map[string]int          // violation class -> count, to keep the list short
	dupRuns   int                     // handler runs for an event already committed
	order     int                     // submissions so far
	lives     int
}

func (r *runner) violate(class, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.violateLocked(class, format, args...)
}

// violateLocked records a violation; r.mu must be held. At most 3 of a
// class are listed, then a count.
func (r *runner) violateLocked(class, format string, args ...any) {
	r.violated[class]++
	switch n := r.violated[class]; {
	case n <= 3:
		r.res.Violations = append(r.res.Violations, fmt.Sprintf(format, args...))
	case n == 4:
		r.res.Violations = append(r.res.Violations, "… more "+class)
	}
}

func checkStream(s *Stream, newHandler NewHandler, cfg config) Result {
	if s == nil || !s.valid() {
		return Result{Violations: []string{fmt.Sprintf("invalid stream: %v", s)}}
	}
	r := &runner{cfg: cfg, s: s, newHandler: newHandler, ext: NewExternal(),
		attempts: make([]int, len(s.Events)), delivery: make(map[*onceflow.Event]int),
		submitted: make(map[*onceflow.Event]int), acked: make([]bool, len(s.Deliveries)), violated: make(map[string]int)}
	r.res.Events, r.res.Deliveries = len(s.Events), len(s.Deliveries)
	r.res.Duplicates = len(s.Deliveries) - len(s.Events)
	first, prev := make([]bool, len(s.Events)), -1
	for _, e := range s.Deliveries {
		if first[e] {
			continue
		}
		first[e] = true
		if e < prev {
			r.res.Reordered++
		}
		prev = e
	}
	for _, e := range s.Events {
		switch e.Fault {
		case FailBefore, FailAfter:
			r.res.Transient++
		case Permanent:
			r.res.Permanent++
		}
	}
	for n, e := range s.Events {
		ev := &onceflow.Event{SpecVersion: "1.0", Type: "proptest.event", Data: []byte(`{"n":` + strconv.Itoa(n) + `}`)}
		if cfg.fill != nil {
			cfg.fill(ev, n)
		}
		ev.Source, ev.ID, ev.PartitionKey = "proptest", "e"+strconv.Itoa(n), "k"+strconv.Itoa(e.Key)
		r.templates = append(r.templates, ev)
	}
	if err := r.run(); err != nil {
		r.violate("setup errors", setupPrefix+"%v", err)
	}
	return r.res
}

func (r *runner) openStore() (*dedup.Store, error) {
	opts := []dedup.Option{dedup.WithCapacity(4096), dedup.WithCacheItems(256)}
	if !r.cfg.disk {
		if r.mem == nil {
			m, err := dedup.NewMemory(opts...)
			if err != nil {
				return nil, err
			}
			r.mem = m
		}
		return r.mem, nil
	}
	if r.dir == "" {
		dir, err := os.MkdirTemp(r.cfg.dir, "proptest-")
		if err != nil {
			return nil, err
		}
		r.dir = dir
	}
	return dedup.Open(r.dir+"/state.db", append(opts, dedup.UnsafeNoSync())...)
}

func (r *runner) closeStore(st *dedup.Store) error {
	if r.cfg.disk {
		return st.Close()
	}
	return nil
}

// run replays the stream life by life, then checks the final state.
func (r *runner) run() error {
	defer func() {
		if r.mem != nil {
			_ = r.mem.Close()
		}
		if r.dir != "" {
			_ = os.RemoveAll(r.dir)
		}
	}()
	next := 0
	for life := 0; ; life++ {
		var crash *Crash
		end := len(r.s.Deliveries)
		if life < len(r.s.Crashes) {
			crash = &r.s.Crashes[life]
			end = max(crash.At, next)
		}
		var todo []int
		for d := range next {
			if !r.acked[d] {
				todo = append(todo, d)
			}
		}
		if crash == nil && len(todo) > 0 && next == end {
			r.res.Replays++
		}
		for d := next; d < end; d++ {
			todo = append(todo, d)
		}
		next = end
		if crash == nil && len(todo) == 0 {
			break
		}
		if life >= len(r.s.Crashes)+maxReplays {
			for d, ok := range r.acked {
				if !ok {
					r.violate("unacknowledged deliveries", "delivery %d (e%d) never acknowledged after %d replays", d, r.s.Deliveries[d], maxReplays)
				}
			}
			break
		}
		if err := r.life(todo, crash); err != nil {
			return err
		}
	}
	st, err := r.openStore()
	if err != nil {
		return err
	}
	defer r.closeStore(st)
	return r.check(st)
}

// failingStore fails the hit-th commit of a life, before or after writing.
type failingStore struct {
	*dedup.Store
	hit     int
	after   bool
	commits int
}

func (f *failingStore) Commit(b *onceflow.CommitBatch) error {
	f.commits++ // the pipeline commits from one goroutine
	if f.commits != f.hit {
		return f.Store.Commit(b)
	}
	if f.after {
		if err := f.Store.Commit(b); err != nil {
			return err
		}
	}
	return errCommit
}

// life runs one pipeline over the deliveries todo and ends it as crash
// says (nil: a graceful Shutdown).
func (r *runner) life(todo []int, crash *Crash) error {
	st, err := r.openStore()
	if err != nil {
		return err
	}
	r.store.Store(st)
	defer func() {
		if err := r.closeStore(st); err != nil {
			r.violate("store errors", "closing the store: %v", err)
		}
	}()
	r.mu.Lock()
	r.lives++
	r.lastSub = make(map[string]int)
	r.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ps pipeline.Store = st
	var hooks pipeline.Hooks
	if crash != nil {
		switch crash.Kind {
		case Restart:
			r.res.Restarts++
		case Cancel:
			r.res.Cancels++
			var hits atomic.Int64
			point, hit := crash.Point, int64(crash.Hit)
			hooks.Crash = func(p string) {
				if p == point && hits.Add(1) == hit {
					cancel()
				}
			}
		case CommitFailsBefore, CommitFailsAfter:
			r.res.CommitFaults++
			ps = &failingStore{Store: st, hit: crash.Hit, after: crash.Kind == CommitFailsAfter}
		}
	}
	h := r.newHandler(r.ext)
	if h == nil {
		return errors.New("NewHandler returned a nil handler")
	}
	opts := []pipeline.Option{pipeline.WithStore(ps), pipeline.WithShards(r.s.Shards), pipeline.WithBatchSize(8),
		pipeline.WithGroupCommit(16, 500*time.Microsecond), pipeline.WithRetry(retryPolicy()),
		pipeline.WithSeed(uint64(r.lives)), pipeline.WithAck(r.onAck), pipeline.WithTestHooks(hooks)}
	p, err := pipeline.New(r.wrap(h), append(opts, r.cfg.pipeOpts...)...)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	for _, d := range todo {
		ev := new(onceflow.Event)
		*ev = *r.templates[r.s.Deliveries[d]]
		r.mu.Lock()
		r.delivery[ev] = d
		r.submitted[ev] = r.order
		r.order++
		r.mu.Unlock()
		if err := p.Submit(ctx, ev); err != nil {
			if !errors.Is(err, pipeline.ErrClosed) && ctx.Err() == nil {
				r.violate("submit errors", "Submit(e%d): %v", r.s.Deliveries[d], err)
			}
			break // not accepted: replayed by the next life
		}
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := p.Shutdown(sctx); err != nil {
		cancel()
		r.violate("hangs", "the pipeline did not drain in 30s: %v", err)
		select {
		case <-errc:
		case <-time.After(10 * time.Second):
			return errors.New("the pipeline did not stop after its context was cancelled")
		}
		return nil
	}
	runErr := <-errc
	switch {
	case runErr == nil:
	case crash != nil && crash.Kind == Cancel && errors.Is(runErr, context.Canceled):
	case crash != nil && (crash.Kind == CommitFailsBefore || crash.Kind == CommitFailsAfter) && errors.Is(runErr, errCommit):
	default:
		r.violate("run errors", "Run returned %v", runErr)
	}
	return nil
}

func (r *runner) onAck(a pipeline.Ack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.delivery[a.Event]
	if !ok {
		r.violateLocked("unknown acknowledgements", "acknowledgement of an event never submitted: %v", a.Event.Identity())
		return
	}
	if a.Err != nil {
		r.res.Nacks++
		return
	}
	if r.acked[d] {
		r.violateLocked("double acknowledgements", "delivery %d (e%d) acknowledged twice", d, r.s.Deliveries[d])
	}
	r.res.Acks++
	r.acked[d] = true
	r.acks = append(r.acks, ackRec{delivery: d, out: a.Outcome})
}

// wrap injects the stream's faults around the handler under test and
// checks, on every call, per-key order and that the event's effects are
// not committed already.
func (r *runner) wrap(h stage.Func) stage.Func {
	return func(ctx context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		n, err := strconv.Atoi(strings.TrimPrefix(ev.ID, "e"))
		if err != nil || n < 0 || n >= len(r.s.Events) || ev.Source != "proptest" {
			r.violate("unknown events", "the handler got an event proptest never submitted: %v", ev.Identity())
			return nil, retry.Permanent(errors.New("proptest: unknown event"))
		}
		spec := r.s.Events[n]
		r.mu.Lock()
		r.attempts[n]++
		attempt := r.attempts[n]
		sub, ok := r.submitted[ev]
		if !ok {
			r.violateLocked("unknown events", "the handler got a copy of e%d that was never submitted", n)
		} else if last, seen := r.lastSub[ev.PartitionKey]; seen && sub < last {
			r.violateLocked("per-key order", "key %s: e%d (submitted %d) handled after an event submitted %d", ev.PartitionKey, n, sub, last)
		} else {
			r.lastSub[ev.PartitionKey] = sub
		}
		r.mu.Unlock()
		if st := r.store.Load(); st != nil {
			if out, found, err := st.Inspect(ev.Identity()); err == nil && found && (out.Status == onceflow.StatusDone || out.Status == onceflow.StatusDeadLettered) {
				r.mu.Lock()
				r.dupRuns++
				r.violateLocked("duplicate effects", "duplicate effect: the handler ran again for e%d, whose outcome (%v) was already committed", n, out.Status)
				r.mu.Unlock()
			}
		}
		switch {
		case spec.Fault == FailBefore && attempt <= spec.Fails:
			return nil, errTransient
		case spec.Fault == Permanent:
			return nil, retry.Permanent(errPermanent)
		}
		r.mu.Lock()
		r.calls = append(r.calls, n)
		r.res.HandlerRuns++
		r.mu.Unlock()
		res, err := h(ctx, ev, fx)
		if err != nil {
			return res, err
		}
		if spec.Fault == FailAfter && attempt <= spec.Fails {
			return nil, errTransient
		}
		if _, found, err := fx.Get(markerPrefix + ev.ID); err != nil {
			return nil, err
		} else if found {
			r.violate("duplicate effects", "duplicate effect: the effects of e%d were about to commit a second time", n)
		}
		fx.Put(markerPrefix+ev.ID, []byte{1})
		return res, nil
	}
}
