package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/crashtest"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/retry"
)

// Fault injection at the store boundary. faultStore wraps the bbolt store
// and, on a seeded schedule, fails:
//
//   - before-commit: Commit returns an error and writes nothing;
//   - after-commit: Commit writes durably, then returns an error (the
//     ambiguous outcome: durable but reported failed);
//   - sync: Commit returns an error with the batch durable or not (a coin
//     flip: after a failed fsync nobody knows), and poisons the handle:
//     every later Commit fails until the store is reopened (fsyncgate: a
//     handle whose sync failed is never trusted again);
//   - lookup: Lookup returns an error.
//
// Every fault must end as a retry (the delivery is negatively acknowledged
// and the source replays it), a dead letter, or a clean fatal stop (Run
// returns the error, everything not committed is negatively acknowledged,
// and the test reopens the store) — never as a lost acknowledged event.

const (
	injBeforeCommit = "before-commit"
	injAfterCommit  = "after-commit"
	injSync         = "sync"
	injLookup       = "lookup"
)

type injection struct {
	n       int
	kind    string
	err     error
	ids     []onceflow.Identity // the batch of a commit fault, the identity of a lookup fault
	durable bool
	how     string // how it was accounted for; "" while it is not
}

type injectedError struct {
	n    int
	kind string
}

func (e *injectedError) Error() string { return fmt.Sprintf("injected fault #%d (%s)", e.n, e.kind) }

var errPoisoned = errors.New("store handle poisoned by a failed sync: reopen it")

type faultStore struct {
	inner      *dedup.Store
	rate       float64 // commit faults per commit: before-commit; rate/2 after-commit; rate/10 sync
	lookupRate float64

	mu       sync.Mutex
	rnd      *rand.Rand
	poisoned bool
	refused  int           // commits refused because of the poison
	log      *[]*injection // shared across reopens
}

func (f *faultStore) inject(kind string, ids []onceflow.Identity) *injection {
	inj := &injection{n: len(*f.log) + 1, kind: kind, ids: ids}
	inj.err = &injectedError{n: inj.n, kind: kind}
	*f.log = append(*f.log, inj)
	return inj
}

func (f *faultStore) Lookup(id onceflow.Identity) (onceflow.Outcome, bool, error) {
	f.mu.Lock()
	fail := f.rnd.Float64() < f.lookupRate
	var inj *injection
	if fail {
		inj = f.inject(injLookup, []onceflow.Identity{id})
	}
	f.mu.Unlock()
	if fail {
		return onceflow.Outcome{}, false, inj.err
	}
	return f.inner.Lookup(id)
}

func (f *faultStore) ReadState(key []byte) ([]byte, bool, error) { return f.inner.ReadState(key) }

func (f *faultStore) Commit(b *onceflow.CommitBatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.poisoned {
		f.refused++
		return errPoisoned
	}
	ids := func() []onceflow.Identity {
		out := make([]onceflow.Identity, len(b.Records))
		for i := range b.Records {
			out[i] = b.Records[i].ID
		}
		return out
	}
	switch roll := f.rnd.Float64(); {
	case roll < f.rate:
		return f.inject(injBeforeCommit, ids()).err
	case roll < f.rate*1.5:
		inj := f.inject(injAfterCommit, ids())
		if err := f.inner.Commit(b); err != nil {
			return err
		}
		inj.durable = true
		return inj.err
	case roll < f.rate*1.6:
		inj := f.inject(injSync, ids())
		f.poisoned = true
		if f.rnd.IntN(2) == 0 {
			if err := f.inner.Commit(b); err != nil {
				return err
			}
			inj.durable = true
		}
		return inj.err
	}
	return f.inner.Commit(b)
}

// TestProofStoreFaults drives PROOF_FAULT_EVENTS events (default 200,000;
// 20,000 with -short) with duplicates, reordering and handler failures
// through a pipeline whose store fails PROOF_FAULT_RATE of its commits
// (default 1%: before-commit; half as many after-commit; a tenth as many
// sync faults) and 0.01% of its lookups. After every fatal stop the store
// is reopened and a new pipeline replays every delivery not acknowledged.
// Every injected fault must be accounted for, no acknowledged event lost,
// no effect applied twice, and the final state equal to the model.
//
// The run happens in a child process built without the race detector
// (which slows it sevenfold); TestProofStoreFaultsInProcess runs a smaller
// one in this process, under the race detector when the tests are.
func TestProofStoreFaults(t *testing.T) {
	seed := proofSeed(t)
	events := envInt(t, "PROOF_FAULT_EVENTS", 200_000)
	rate := envFloat(t, "PROOF_FAULT_RATE", 0.01)
	if testing.Short() {
		events = 20_000
	}
	t.Logf("seed %d: %d events, commit fault rate %g (reproduce the schedule with ONCEFLOW_SEED=%d PROOF_FAULT_EVENTS=%d PROOF_FAULT_RATE=%g)",
		seed, events, rate, seed, events, rate)
	bin, err := crashtest.BuildChild(t.TempDir(), ".")
	if err != nil {
		t.Fatal(err)
	}
	cfg := proofChildConfig{Dir: t.TempDir(), Seed: seed, Events: events, FaultRate: rate}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := crashtest.RunOnce(bin, "TestProofStoreFaultsChild", []string{envProofConfig + "=" + string(js)}, crashTimeout(t))
	if err != nil {
		t.Fatal(err)
	}
	var res proofSummary
	for _, line := range strings.Split(out, "\n") {
		if js, ok := strings.CutPrefix(line, "SUMMARY "); ok {
			if err := json.Unmarshal([]byte(js), &res); err != nil {
				t.Fatal(err)
			}
		}
	}
	res.Name = "store-faults"
	if rate != 0.01 {
		res.Name = fmt.Sprintf("store-faults-rate-%g", rate)
	}
	res.Command = fmt.Sprintf("ONCEFLOW_SEED=%d PROOF_FAULT_EVENTS=%d PROOF_FAULT_RATE=%g go test -count=1 -run '^TestProofStoreFaults$' ./pipeline", seed, events, rate)
	t.Logf("summary: %+v", res)
	writeProofSummary(t, res)
	if res.broken() || res.Unaccounted != 0 || res.Events != events || res.Injected == 0 {
		t.Fatalf("faults broke the promise: %+v\nchild output:\n%s", res, out)
	}
}

// TestProofStoreFaultsChild is the child of TestProofStoreFaults.
func TestProofStoreFaultsChild(t *testing.T) {
	if !crashtest.IsChild("TestProofStoreFaultsChild") {
		t.Skip("the child process of TestProofStoreFaults")
	}
	cfg := proofConfigFromEnv(t)
	res := storeFaults(t, cfg.Seed, cfg.Events, cfg.FaultRate, cfg.Dir)
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("SUMMARY " + string(b))
}

// TestProofStoreFaultsInProcess is TestProofStoreFaults at 10,000 events
// and a 5% fault rate, in the test process (under the race detector when
// the tests run with -race).
func TestProofStoreFaultsInProcess(t *testing.T) {
	seed := proofSeed(t)
	t.Logf("seed %d (reproduce with ONCEFLOW_SEED=%d)", seed, seed)
	res := storeFaults(t, seed, 10_000, 0.05, t.TempDir())
	t.Logf("summary: %+v", res)
	if res.broken() || res.Unaccounted != 0 || res.Injected == 0 {
		t.Fatalf("faults broke the promise: %+v", res)
	}
}

// storeFaults runs the fault-injection suite in dir and returns its
// summary; violations are counted there and logged.
func storeFaults(t *testing.T, seed uint64, events int, rate float64, dir string) proofSummary {
	t.Helper()
	start := time.Now()
	s := newProofStream(proofShape{seed: seed, events: events, keys: 100, hotKeys: 0.3, dup: 0.2, burst: 4,
		reorder: 0.1, global: 0.01, transient: 0.005, permanent: 0.002})
	path := filepath.Join(dir, "state.db")
	rnd := rand.New(rand.NewPCG(seed, 0x6661756c74))
	var log []*injection
	acked := make([]bool, len(s.order))
	restarts := 0
	ackedFailed := 0 // acknowledgements of events whose commit failed
	fatal, orderViolations := 0, 0
	for life := 1; ; life++ {
		if life > 10_000 {
			t.Fatalf("still %d deliveries unacknowledged after %d lives", countFalse(acked), life)
		}
		store, err := dedup.Open(path, dedup.WithCapacity(2*events))
		if err != nil {
			t.Fatal(err)
		}
		fs := &faultStore{inner: store, rate: rate, lookupRate: 0.0001, rnd: rand.New(rand.NewPCG(rnd.Uint64(), 1)), log: &log}
		firstInj := len(log)
		var mu sync.Mutex
		nacked := make(map[onceflow.Identity]bool)
		ackedNow := make(map[onceflow.Identity]bool)
		onAck := func(a pipeline.Ack) {
			mu.Lock()
			defer mu.Unlock()
			if a.Err != nil {
				nacked[a.Event.Identity()] = true
				return
			}
			ackedNow[a.Event.Identity()] = true
			acked[deliveryOf(a.Event)] = true
		}
		h := newProofHandler(s)
		p, err := pipeline.New(h.handle, pipeline.WithStore(fs), pipeline.WithShards(4),
			pipeline.WithGroupCommit(64, time.Millisecond), pipeline.WithSeed(seed+uint64(life)),
			pipeline.WithRetry(retry.Policy{InitialInterval: time.Millisecond, MaxInterval: 4 * time.Millisecond, MaxAttempts: 4}),
			pipeline.WithAck(onAck))
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- p.Run(context.Background()) }()
		ctx := context.Background()
		batch := make([]*onceflow.Event, 0, 256)
		submit := func() error {
			err := p.SubmitBatch(ctx, batch)
			batch = batch[:0]
			return err
		}
		var subErr error
		for i := range s.order {
			if acked[i] {
				continue
			}
			if batch = append(batch, s.event(i)); len(batch) == cap(batch) {
				if subErr = submit(); subErr != nil {
					break
				}
			}
		}
		if subErr == nil {
			subErr = submit()
		}
		if err := p.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		runErr := <-errc
		if subErr != nil && !errors.Is(subErr, pipeline.ErrClosed) {
			t.Fatalf("SubmitBatch: %v", subErr)
		}
		if subErr != nil && runErr == nil {
			t.Fatalf("SubmitBatch refused with %v but Run returned nil", subErr)
		}
		// Account for this life's faults: a lookup fault by the negative
		// acknowledgement of its delivery (the source replays it), a
		// commit fault by the fatal stop it caused. No event of a failed
		// commit may have been acknowledged in this life.
		for _, inj := range log[firstInj:] {
			if inj.kind == injLookup {
				if nacked[inj.ids[0]] {
					inj.how = "retry"
				}
				continue
			}
			if errors.Is(runErr, inj.err) {
				inj.how = "fatal stop"
			}
			for _, id := range inj.ids {
				if ackedNow[id] {
					ackedFailed++
					t.Logf("life %d: %v acknowledged although its commit failed (%v)", life, id, inj.err)
				}
			}
		}
		if runErr != nil {
			var ie *injectedError
			if !errors.As(runErr, &ie) {
				t.Fatalf("life %d: Run stopped by %v, not by an injected fault", life, runErr)
			}
			fatal++
		}
		orderViolations += len(h.violations)
		if fs.refused > 0 {
			t.Fatalf("life %d: the pipeline committed again after a sync error (%d refused commits)", life, fs.refused)
		}
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
		if runErr == nil && countFalse(acked) == 0 {
			restarts = life - 1
			break
		}
	}
	store, err := dedup.Open(path, dedup.WithCapacity(2*events))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	res := checkProof(t, s, acked, store, false)
	res.Suite, res.Seed, res.Fsync = "faults", seed, ptr(true)
	res.FaultRate, res.Restarts, res.OrderViolations = rate, restarts, orderViolations
	by := map[string]int{}
	how := map[string]int{}
	for _, inj := range log {
		by[inj.kind]++
		if inj.how == "" {
			res.Unaccounted++
			if res.Unaccounted <= 10 {
				t.Logf("fault %v not accounted for (%d identities, durable %v)", inj.err, len(inj.ids), inj.durable)
			}
			continue
		}
		how[inj.how]++
		res.Accounted++
	}
	if commitFaults := by[injBeforeCommit] + by[injAfterCommit] + by[injSync]; fatal != commitFaults {
		t.Logf("%d fatal stops for %d commit faults", fatal, commitFaults)
		res.Unaccounted += max(commitFaults-fatal, 1)
	}
	// An acknowledgement of an event whose commit failed is a lost event
	// in waiting: count it as lost.
	res.Lost += ackedFailed
	res.Injected = len(log)
	for _, k := range []string{injBeforeCommit, injAfterCommit, injSync, injLookup} {
		res.InjectedBy = append(res.InjectedBy, kv{k, by[k]})
	}
	for _, k := range []string{"fatal stop", "retry", "dead letter"} {
		res.AccountedBy = append(res.AccountedBy, kv{k, how[k]})
	}
	res.WallSeconds = time.Since(start).Seconds()
	return res
}

func countFalse(b []bool) int {
	n := 0
	for _, v := range b {
		if !v {
			n++
		}
	}
	return n
}
