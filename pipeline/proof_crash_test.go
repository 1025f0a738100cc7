package pipeline_test

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/crashtest"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/retry"
)

// The crash harness of the proof suite. A child process (this test binary,
// re-executed, built without the race detector) replays every delivery of
// a proof stream that its durable ack log does not hold, through a
// pipeline on the bbolt store; the parent SIGKILLs it at random moments
// (TestProofCrash) or the child kills itself at a named crash point
// (TestProofCrashPoints), and restarts it on the same files until a child
// finishes. A checker process then compares the files with the stream.

// Named crash points of the matrix: the pipeline's own points, plus three
// that need a context: "mid-commit" kills the child while the store
// commits a group; "dead-letter" and "redrive" are
// PointBeforeDeadLetterCommit while dead-lettering and while redriving.
const (
	proofMidCommit  = "mid-commit"
	proofDeadLetter = "dead-letter"
	proofRedrive    = "redrive"
)

var proofPoints = []string{
	pipeline.PointBeforeClaim,
	pipeline.PointAfterHandler,
	pipeline.PointBeforeCommit,
	proofMidCommit,
	pipeline.PointAfterCommit,
	pipeline.PointMidAck,
	proofDeadLetter,
	proofRedrive,
}

// proofChildConfig is the child's configuration, passed as JSON in the
// environment.
type proofChildConfig struct {
	Dir        string
	Seed       uint64
	Events     int
	Keys       int
	HotKeys    float64
	Dup        float64
	Burst      int
	Reorder    float64
	Global     float64
	Transient  float64
	Permanent  float64
	Point      string // named crash point ("" for none)
	Hit        int    // the child kills itself at the Hit-th time it reaches Point...
	CrashLives int    // ...in each of its first CrashLives lives
	Redrive    bool   // after delivering everything, redrive every dead letter
	Mutation   string // "ack-before-commit": pipeline.Hooks.AckBeforeCommit
	// NoSync opens the store with dedup.UnsafeNoSync. A SIGKILL cannot
	// tell the difference (the page cache survives the process), so the
	// harness loses no power; it saves the fsyncs' time.
	NoSync bool
	// GroupEvents bounds a group commit (default: the pipeline's); small
	// groups make more commits, so that a point's 10th hit comes early.
	GroupEvents int
	// RedriveParallel is how many redrives run at once (default 64).
	RedriveParallel int
	// FaultRate is the commit fault rate of TestProofStoreFaultsChild.
	FaultRate float64
}

const envProofConfig = "ONCEFLOW_PROOF_CONFIG"

func (c proofChildConfig) shape() proofShape {
	return proofShape{seed: c.Seed, events: c.Events, keys: c.Keys, hotKeys: c.HotKeys, dup: c.Dup,
		burst: c.Burst, reorder: c.Reorder, global: c.Global, transient: c.Transient, permanent: c.Permanent}
}

func proofConfigFromEnv(t *testing.T) proofChildConfig {
	var c proofChildConfig
	if err := json.Unmarshal([]byte(os.Getenv(envProofConfig)), &c); err != nil {
		t.Fatalf("%s: %v", envProofConfig, err)
	}
	return c
}

// nextLife counts the child's starts in dir and returns this one's number,
// from 1.
func nextLife(t *testing.T, dir string) int {
	path := filepath.Join(dir, "lives")
	b, _ := os.ReadFile(path)
	n, _ := strconv.Atoi(string(b))
	n++
	if err := os.WriteFile(path, []byte(strconv.Itoa(n)), 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

// crashNow kills this process the way the parent does: SIGKILL, no
// deferred function, no flush.
func crashNow() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute)
}

// proofKillStore kills the process while the store commits its hit-th
// group: the kill lands inside bbolt's write or fsync, or just after.
type proofKillStore struct {
	*dedup.Store
	hit     int64
	commits atomic.Int64
	rnd     *rand.Rand
}

func (s *proofKillStore) Commit(b *onceflow.CommitBatch) error {
	if s.commits.Add(1) == s.hit {
		delay := time.Duration(s.rnd.Int64N(int64(300 * time.Microsecond)))
		go func() {
			time.Sleep(delay)
			crashNow()
		}()
	}
	return s.Store.Commit(b)
}

// TestProofCrashChild is the child of the crash harness (see the top of
// this file).
func TestProofCrashChild(t *testing.T) {
	if !crashtest.IsChild("TestProofCrashChild") {
		t.Skip("the child process of TestProofCrash and TestProofCrashPoints")
	}
	began := time.Now()
	cfg := proofConfigFromEnv(t)
	s, err := loadProofStream(cfg.shape(), filepath.Join(cfg.Dir, "stream"))
	if err != nil {
		t.Fatal(err)
	}
	life := nextLife(t, cfg.Dir)
	built := time.Since(began)
	armed := cfg.Point != "" && life <= cfg.CrashLives

	opts := []dedup.Option{dedup.WithCapacity(2 * cfg.Events)}
	if cfg.NoSync {
		opts = append(opts, dedup.UnsafeNoSync())
	}
	store, err := dedup.Open(filepath.Join(cfg.Dir, "state.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var ps pipeline.Store = store
	if armed && cfg.Point == proofMidCommit {
		ps = &proofKillStore{Store: store, hit: int64(cfg.Hit), rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(life)))}
	}
	ackPath := filepath.Join(cfg.Dir, "acks")
	acked, err := readAcks(ackPath, len(s.order))
	if err != nil {
		t.Fatal(err)
	}
	ackf, err := os.OpenFile(ackPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer ackf.Close()
	recf, err := os.OpenFile(filepath.Join(cfg.Dir, "recovered"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer recf.Close()
	firstCopy := make([]int32, cfg.Events) // event -> its first delivery
	for i := range firstCopy {
		firstCopy[i] = -1
	}
	for i, e := range s.order {
		if firstCopy[e] < 0 {
			firstCopy[e] = int32(i)
		}
	}

	const (
		phaseDeliver = iota
		phaseRedrive
	)
	var phase atomic.Int32
	var hits atomic.Int64
	hooks := pipeline.Hooks{AckBeforeCommit: cfg.Mutation == "ack-before-commit"}
	if armed && cfg.Point != proofMidCommit {
		target, want := cfg.Point, int32(phaseDeliver)
		switch cfg.Point {
		case proofDeadLetter:
			target = pipeline.PointBeforeDeadLetterCommit
		case proofRedrive:
			target, want = pipeline.PointBeforeDeadLetterCommit, phaseRedrive
		}
		hooks.Crash = func(point string) {
			if point == target && phase.Load() == want && hits.Add(1) == int64(cfg.Hit) {
				crashNow()
			}
		}
	}
	h := newProofHandler(s)
	var ackMu sync.Mutex // acks come from the committer; nacks (which return early) from the workers
	var ackErr error
	onAck := func(a pipeline.Ack) {
		if a.Err != nil || phase.Load() != phaseDeliver {
			return // not done: the source replays it
		}
		i := deliveryOf(a.Event)
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(i))
		ackMu.Lock()
		defer ackMu.Unlock()
		if _, err := ackf.Write(b[:]); err != nil && ackErr == nil {
			ackErr = err
		}
		if a.Outcome.Duplicate && int(firstCopy[s.order[i]]) == i {
			// The first copy's outcome committed in an earlier life that
			// was killed before acknowledging it: recovered from the
			// store, not run again.
			if _, err := recf.Write(b[:]); err != nil && ackErr == nil {
				ackErr = err
			}
		}
	}
	popts := []pipeline.Option{pipeline.WithStore(ps), pipeline.WithShards(4),
		pipeline.WithRetry(retry.Policy{InitialInterval: time.Millisecond, MaxInterval: 4 * time.Millisecond, MaxAttempts: 4}),
		pipeline.WithSeed(cfg.Seed + uint64(life)), pipeline.WithAck(onAck), pipeline.WithTestHooks(hooks)}
	if cfg.GroupEvents > 0 {
		popts = append(popts, pipeline.WithGroupCommit(cfg.GroupEvents, time.Millisecond))
	}
	newPipeline := func() (*pipeline.Pipeline, chan error) {
		p, err := pipeline.New(h.handle, popts...)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- p.Run(context.Background()) }()
		return p, errc
	}
	stop := func(p *pipeline.Pipeline, errc chan error) {
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}

	ctx := context.Background()
	p, errc := newPipeline()
	fmt.Printf("%s after %v (stream loaded in %v)\n", crashtest.Ready, time.Since(began), built)
	batch := make([]*onceflow.Event, 0, 256)
	for i := range s.order {
		if acked[i] {
			continue
		}
		if batch = append(batch, s.event(i)); len(batch) == cap(batch) {
			if err := p.SubmitBatch(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := p.SubmitBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	stop(p, errc)
	ps1 := p.Stats()
	if ackErr != nil {
		t.Fatal(ackErr)
	}

	if cfg.Redrive {
		// Every dead letter is redriven with the fault fixed. Redriving
		// one already redriven (in an earlier life) returns its outcome
		// as a duplicate without running the handler.
		h.fixed.Store(true)
		phase.Store(phaseRedrive)
		p, errc := newPipeline()
		var wg sync.WaitGroup
		sem := make(chan struct{}, cmp.Or(cfg.RedriveParallel, 64))
		var failures atomic.Int64
		var firstFailure atomic.Pointer[string]
		for e := range uint32(cfg.Events) {
			if s.fault[e] != faultPermanent {
				continue
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				out, err := p.Redrive(ctx, onceflow.Identity{Source: "proof", ID: s.id(e)})
				if err != nil || out.Status != onceflow.StatusDone {
					msg := fmt.Sprintf("Redrive(%s) = %+v, %v", s.id(e), out, err)
					firstFailure.CompareAndSwap(nil, &msg)
					failures.Add(1)
				}
			})
		}
		wg.Wait()
		stop(p, errc)
		if failures.Load() > 0 {
			t.Fatalf("%d redrives failed; first: %s", failures.Load(), *firstFailure.Load())
		}
	}
	if len(h.violations) > 0 {
		_ = os.WriteFile(filepath.Join(cfg.Dir, "violations"), []byte(strings.Join(h.violations, "\n")+"\n"), 0o600)
		t.Fatalf("%d per-key order violations; first: %s", len(h.violations), h.violations[0])
	}
	ds := store.Stats()
	fmt.Printf("child life %d: %d commits (%.0f events each), store commit mean %v max %v\n",
		life, ps1.Commits, ps1.EventsPerCommit(), ds.CommitMeanLatency, ds.CommitMaxLatency)
}

// TestProofCheckChild checks what a crash run left against the stream and
// prints its summary as one "SUMMARY {json}" line.
func TestProofCheckChild(t *testing.T) {
	if !crashtest.IsChild("TestProofCheckChild") {
		t.Skip("the checker process of the crash harness")
	}
	cfg := proofConfigFromEnv(t)
	s := newProofStream(cfg.shape())
	acked, err := readAcks(filepath.Join(cfg.Dir, "acks"), len(s.order))
	if err != nil {
		t.Fatal(err)
	}
	store, err := dedup.Open(filepath.Join(cfg.Dir, "state.db"), dedup.WithCapacity(2*cfg.Events))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sum := checkProof(t, s, acked, store, cfg.Redrive)
	rec, _ := os.ReadFile(filepath.Join(cfg.Dir, "recovered"))
	sum.Recovered = len(rec) / 4
	if v, err := os.ReadFile(filepath.Join(cfg.Dir, "violations")); err == nil {
		sum.OrderViolations = strings.Count(string(v), "\n")
	}
	b, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("SUMMARY " + string(b))
}

// checkProof compares what a run of stream s left in store with the
// stream: acked[i] says whether delivery i was acknowledged. Dead letters
// are expected for permanent faults, redriven when redrive is set.
// Violations are counted in the summary and logged, not failed on: the
// caller decides (a mutation check expects them).
func checkProof(t *testing.T, s *proofStream, acked []bool, store *dedup.Store, redrive bool) proofSummary {
	t.Helper()
	var sum proofSummary
	sum.Events, sum.Deliveries = s.shape.events, len(s.order)
	sum.DuplicateRate = float64(s.duplicates()) / float64(len(s.order))
	sum.ReorderRate = float64(s.reordered) / float64(len(s.order))
	report := func(counter *int, format string, args ...any) {
		*counter++
		if *counter <= 10 {
			t.Logf(format, args...)
		}
	}

	// Expected final outcome of each event: done, or dead-lettered for a
	// permanent fault that was not redriven.
	wantDead := func(e uint32) bool { return s.fault[e] == faultPermanent && !redrive }
	outcomes := make([]onceflow.Outcome, s.shape.events)
	found := make([]bool, s.shape.events)
	for e := range uint32(s.shape.events) {
		id := onceflow.Identity{Source: "proof", ID: s.id(e)}
		out, ok, err := store.Inspect(id)
		if err != nil {
			t.Fatal(err)
		}
		outcomes[e], found[e] = out, ok
		switch s.fault[e] {
		case faultTransient:
			sum.Transient++
		case faultPermanent:
			sum.Permanent++
		}
	}
	for i, e := range s.order {
		if !acked[i] {
			report(&sum.Unacked, "delivery %d (%s) never acknowledged", i, s.id(e))
			continue
		}
		if out := outcomes[e]; !found[e] || (out.Status != onceflow.StatusDone && out.Status != onceflow.StatusDeadLettered) {
			report(&sum.Lost, "delivery %d (%s) acknowledged but its outcome is %+v (found %v)", i, s.id(e), out, found[e])
		}
	}
	modelCount := make(map[string]int)
	for e := range uint32(s.shape.events) {
		want := onceflow.StatusDone
		if wantDead(e) {
			want = onceflow.StatusDeadLettered
		}
		if found[e] && outcomes[e].Status != want {
			report(&sum.ModelDiff, "%s: outcome %v, want %v", s.id(e), outcomes[e].Status, want)
		}
		v, _, err := store.ReadState(onceflow.StateKey(s.keyName(e), "n/"+s.id(e)))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(v))
		wantN := 1
		if wantDead(e) {
			wantN = 0
		}
		if n > 1 {
			sum.DupEffects += n - 1
			t.Logf("effect of %s applied %d times", s.id(e), n)
		} else if n != wantN {
			report(&sum.ModelDiff, "effect of %s applied %d times, want %d", s.id(e), n, wantN)
		}
		if !wantDead(e) {
			modelCount[s.keyName(e)]++
		}
	}
	for k := range s.shape.keys {
		key := "k" + strconv.Itoa(k)
		v, _, err := store.ReadState(onceflow.StateKey(key, "count"))
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := strconv.Atoi(string(v)); n != modelCount[key] {
			report(&sum.ModelDiff, "key %s: count %d, model %d", key, n, modelCount[key])
		}
	}
	var after onceflow.Identity
	for {
		dls, err := store.DeadLetters(after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) == 0 {
			break
		}
		for _, d := range dls {
			sum.DeadLetters++
			e, ok := eventOf(d.ID.ID)
			switch {
			case !ok || int(e) >= s.shape.events || s.fault[e] != faultPermanent:
				report(&sum.ModelDiff, "unexpected dead letter %v", d.ID)
			case d.Reason != retry.ReasonPermanent:
				report(&sum.ModelDiff, "dead letter %v: reason %q", d.ID, d.Reason)
			case redrive && d.Redriven.IsZero():
				report(&sum.ModelDiff, "dead letter %v not marked redriven", d.ID)
			}
			if !d.Redriven.IsZero() {
				sum.Redriven++
			}
		}
		after = dls[len(dls)-1].ID
	}
	if sum.DeadLetters != sum.Permanent {
		report(&sum.ModelDiff, "%d dead letters, %d permanent faults", sum.DeadLetters, sum.Permanent)
	}
	if err := store.Check(); err != nil {
		sum.CheckErrors++
		t.Logf("store check (tx.Check and records): %v", err)
	}
	return sum
}

// proofCrash runs one crash-harness run with bin and returns its summary.
// kills random SIGKILLs land at most maxDelay after the child is ready.
func proofCrash(t *testing.T, bin string, cfg proofChildConfig, kills int, maxDelay time.Duration) proofSummary {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{envProofConfig + "=" + string(js)}
	res, err := crashtest.Run(crashtest.Config{
		Child: "TestProofCrashChild", Binary: bin, Kills: kills, Seed: cfg.Seed, MaxDelay: maxDelay,
		Env: env, Timeout: crashTimeout(t), Log: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := crashtest.RunOnce(bin, "TestProofCheckChild", env, crashTimeout(t))
	if err != nil {
		t.Fatal(err)
	}
	var sum proofSummary
	for _, line := range strings.Split(out, "\n") {
		if js, ok := strings.CutPrefix(line, "SUMMARY "); ok {
			if err := json.Unmarshal([]byte(js), &sum); err != nil {
				t.Fatal(err)
			}
		}
	}
	sum.Seed, sum.Kills, sum.Starts, sum.WallSeconds = cfg.Seed, res.Kills, res.Starts, res.Wall.Seconds()
	sum.Point, sum.Hit, sum.Mutation = cfg.Point, cfg.Hit, cfg.Mutation
	return sum
}

// crashTimeout bounds one crash-harness run, or one child run to
// completion (a check, a fault run), by what is left of the test binary's
// -timeout, less a margin for the check child and the report, so that a
// run at soak scale (make soak: 10M events, -timeout=24h) is bounded by
// the timeout it was given and an overrun (or a hung child) fails with
// the harness's error and the child's output before the test binary
// panics. Without a deadline (-timeout=0) it is 12 minutes.
func crashTimeout(t *testing.T) time.Duration {
	d, ok := t.Deadline()
	if !ok {
		return 12 * time.Minute
	}
	left := time.Until(d)
	return max(left-2*time.Minute, left/2)
}

// broken reports whether sum shows a broken promise.
func (s proofSummary) broken() bool {
	return s.Lost != 0 || s.DupEffects != 0 || s.CheckErrors != 0 || s.Unacked != 0 || s.ModelDiff != 0 || s.OrderViolations != 0
}

// TestProofCrash is the crash harness at scale: PROOF_CRASH_EVENTS unique
// events (default 1,000,000; 20,000 with -short) with 20% duplicates in
// bursts, 10% local and 1% global reordering, skewed keys, 0.5% transient
// and 0.1% permanent handler failures (dead-lettered, then redriven), and
// PROOF_CRASH_KILLS SIGKILLs (default 200; 10 with -short) at random
// moments. No acknowledged event may be lost, no effect applied twice, the
// final state must equal the model, and the store must check clean.
//
// The store skips fsync (dedup.UnsafeNoSync) unless PROOF_CRASH_SYNC is
// set: a SIGKILL leaves the page cache intact, so fsync changes nothing a
// kill can show, and costs most of the run's time on a loaded disk.
func TestProofCrash(t *testing.T) {
	seed := proofSeed(t)
	events, kills := envInt(t, "PROOF_CRASH_EVENTS", 1_000_000), envInt(t, "PROOF_CRASH_KILLS", 200)
	fsync := os.Getenv("PROOF_CRASH_SYNC") != ""
	maxDelay := 100 * time.Millisecond
	if testing.Short() {
		// A short run's work takes a few hundred milliseconds: kills come
		// sooner, or the child finishes before they land.
		events, kills, maxDelay = 20_000, 10, 10*time.Millisecond
	}
	t.Logf("seed %d: %d events, %d kills, fsync %v (reproduce the schedule with ONCEFLOW_SEED=%d PROOF_CRASH_EVENTS=%d PROOF_CRASH_KILLS=%d)",
		seed, events, kills, fsync, seed, events, kills)
	bin, err := crashtest.BuildChild(t.TempDir(), ".")
	if err != nil {
		t.Fatal(err)
	}
	cfg := proofChildConfig{Dir: t.TempDir(), Seed: seed, Events: events, Keys: 1000, HotKeys: 0.3,
		Dup: 0.2, Burst: 4, Reorder: 0.1, Global: 0.01, Transient: 0.005, Permanent: 0.001, Redrive: true, NoSync: !fsync}
	sum := proofCrash(t, bin, cfg, kills, maxDelay)
	sum.Name, sum.Suite, sum.Fsync = "crash-random", "crash", ptr(fsync)
	env := ""
	if fsync {
		env = "PROOF_CRASH_SYNC=1 "
	}
	sum.Command = fmt.Sprintf("ONCEFLOW_SEED=%d PROOF_CRASH_EVENTS=%d PROOF_CRASH_KILLS=%d %sgo test -count=1 -run '^TestProofCrash$' ./pipeline",
		seed, events, kills, env)
	t.Logf("summary: %+v", sum)
	writeProofSummary(t, sum)
	if sum.broken() || sum.Events != events {
		t.Fatalf("crash run broke the promise: %+v", sum)
	}
	if sum.Kills < kills {
		t.Fatalf("only %d kills landed, want %d", sum.Kills, kills)
	}
}

// TestProofCrashPoints kills the child at every named crash point, at its
// 1st, 2nd and 10th hit, in each of its first two lives, then lets it
// finish and checks every invariant.
func TestProofCrashPoints(t *testing.T) {
	seed := proofSeed(t)
	events := envInt(t, "PROOF_POINT_EVENTS", 5_000)
	if testing.Short() {
		events = 3_000 // enough groups of 64 for a 10th hit in each of two lives
	}
	t.Logf("seed %d, %d events per run (reproduce with ONCEFLOW_SEED=%d)", seed, events, seed)
	bin, err := crashtest.BuildChild(t.TempDir(), ".")
	if err != nil {
		t.Fatal(err)
	}
	total := proofSummary{Suite: "crash-points", Fsync: ptr(true)}
	total.Name = "crash-points"
	start := time.Now()
	for _, point := range proofPoints {
		for _, hit := range []int{1, 2, 10} {
			t.Run(fmt.Sprintf("point=%s/hit=%d", point, hit), func(t *testing.T) {
				cfg := proofChildConfig{Dir: t.TempDir(), Seed: seed + uint64(hit), Events: events, Keys: 50, HotKeys: 0.3,
					Dup: 0.2, Burst: 4, Reorder: 0.1, Global: 0.01, Transient: 0.02, Permanent: 0.02,
					Point: point, Hit: hit, CrashLives: 2, Redrive: true, GroupEvents: 64, RedriveParallel: 1}
				sum := proofCrash(t, bin, cfg, 0, 0)
				if sum.broken() || sum.Events != events {
					t.Fatalf("broke the promise: %+v", sum)
				}
				if sum.Kills != cfg.CrashLives {
					t.Fatalf("%d crashes at %s, want %d", sum.Kills, point, cfg.CrashLives)
				}
				total.Runs++
				total.Events += sum.Events
				total.Deliveries += sum.Deliveries
				total.Kills += sum.Kills
				total.Starts += sum.Starts
				total.Recovered += sum.Recovered
				total.DeadLetters += sum.DeadLetters
				total.Redriven += sum.Redriven
				total.DuplicateRate, total.ReorderRate = sum.DuplicateRate, sum.ReorderRate
			})
		}
	}
	total.Seed, total.WallSeconds = seed, time.Since(start).Seconds()
	total.Command = fmt.Sprintf("ONCEFLOW_SEED=%d go test -count=1 -run '^TestProofCrashPoints$' ./pipeline", seed)
	if !t.Failed() {
		writeProofSummary(t, total)
	}
}

// TestProofCrashHarnessHasTeeth is the mutation check of the crash
// harness: with acknowledgements moved before the commit
// (Hooks.AckBeforeCommit) and a crash before the commit, the harness must
// report lost events.
func TestProofCrashHarnessHasTeeth(t *testing.T) {
	seed := proofSeed(t)
	bin, err := crashtest.BuildChild(t.TempDir(), ".")
	if err != nil {
		t.Fatal(err)
	}
	cfg := proofChildConfig{Dir: t.TempDir(), Seed: seed, Events: 5_000, Keys: 50, Dup: 0.1, Burst: 2, Reorder: 0.1,
		Point: pipeline.PointBeforeCommit, Hit: 3, CrashLives: 1, Mutation: "ack-before-commit", GroupEvents: 64}
	sum := proofCrash(t, bin, cfg, 0, 0)
	t.Logf("mutated run: %+v", sum)
	if sum.Lost == 0 {
		t.Fatalf("acknowledging before the commit and crashing lost nothing: the harness has no teeth: %+v", sum)
	}
	sum.Name, sum.Suite, sum.Fsync = "mutation-ack-before-commit", "mutation", ptr(true)
	sum.Expect = "lost > 0"
	sum.Command = fmt.Sprintf("ONCEFLOW_SEED=%d go test -count=1 -run '^TestProofCrashHarnessHasTeeth$' ./pipeline", seed)
	writeProofSummary(t, sum)
}
