package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/retry"
)

// attemptLog records, per event id, the fake-clock offsets of its attempts.
type attemptLog struct {
	mu    sync.Mutex
	start time.Time
	at    map[string][]time.Duration
}

func newAttemptLog() *attemptLog {
	return &attemptLog{start: time.Now(), at: map[string][]time.Duration{}}
}

func (l *attemptLog) note(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at[id] = append(l.at[id], time.Since(l.start))
	return len(l.at[id])
}

func (l *attemptLog) get(id string) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.at[id]...)
}

// runSynctest runs a pipeline inside a synctest bubble, submits evs, shuts
// down, and returns the acks.
func runSynctest(t *testing.T, h func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error), evs []*onceflow.Event, opts ...pipeline.Option) []pipeline.Ack {
	t.Helper()
	var a acks
	p, err := pipeline.New(h, append([]pipeline.Option{pipeline.WithAck(a.add)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()
	for _, ev := range evs {
		if err := p.Submit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return a.all()
}

func TestRetryScheduleExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newAttemptLog()
		h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
			log.note(ev.ID)
			return nil, errBoom
		}
		pol := retry.Policy{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: time.Second, MaxAttempts: 6, Jitter: retry.NoJitter}
		got := runSynctest(t, h, []*onceflow.Event{event("k", 1)}, pipeline.WithRetry(pol))
		want := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond}
		if at := log.get("k/1"); fmt.Sprint(at) != fmt.Sprint(want) {
			t.Fatalf("attempt times %v, want %v", at, want)
		}
		if len(got) != 1 || got[0].Err != nil || got[0].Outcome.Status != onceflow.StatusDeadLettered ||
			got[0].Outcome.ErrorClass != retry.ReasonMaxAttempts || got[0].DeadLetter == nil || got[0].DeadLetter.Attempts != 6 {
			t.Fatalf("ack = %+v, want dead-lettered after 6 attempts with reason max_attempts", got)
		}
	})
}

func TestRetryJitterBoundsAndSeed(t *testing.T) {
	const seed = 42
	t.Logf("seed %d", seed)
	pol := retry.Policy{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: time.Second, MaxAttempts: 8}
	run := func() []time.Duration {
		var at []time.Duration
		synctest.Test(t, func(t *testing.T) {
			log := newAttemptLog()
			h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
				log.note(ev.ID)
				return nil, errBoom
			}
			runSynctest(t, h, []*onceflow.Event{event("k", 1)}, pipeline.WithRetry(pol), pipeline.WithSeed(seed), pipeline.WithShards(1))
			at = log.get("k/1")
		})
		return at
	}
	a, b := run(), run()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, different attempt times: %v vs %v", a, b)
	}
	if len(a) != 8 {
		t.Fatalf("%d attempts, want 8", len(a))
	}
	for i := 1; i < len(a); i++ {
		if gap, limit := a[i]-a[i-1], pol.WithDefaults().Backoff(i); gap < 0 || gap > limit {
			t.Fatalf("gap before attempt %d = %v, outside [0, %v]", i+1, gap, limit)
		}
	}
}

func TestRetryPermanentSkipsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newAttemptLog()
		h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
			log.note(ev.ID)
			return nil, retry.Permanent(errBoom)
		}
		got := runSynctest(t, h, []*onceflow.Event{event("k", 1)}, pipeline.WithRetry(retry.Policy{}))
		if n := len(log.get("k/1")); n != 1 {
			t.Fatalf("%d attempts for a permanent error, want 1", n)
		}
		if got[0].Outcome.ErrorClass != retry.ReasonPermanent || got[0].DeadLetter == nil {
			t.Fatalf("ack = %+v, want dead letter with reason permanent", got[0])
		}
	})
}

// TestRetryBudgetCapsAttemptsAcrossKeys: a budget of 3 tokens that never
// refills allows 3 retries in total over 10 failing keys; the rest are
// dead-lettered with budget_exhausted.
func TestRetryBudgetCapsAttemptsAcrossKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := retry.NewBudget(3, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		log := newAttemptLog()
		h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
			log.note(ev.ID)
			return nil, errBoom
		}
		var evs []*onceflow.Event
		for i := range 10 {
			evs = append(evs, event(fmt.Sprintf("key%d", i), 1))
		}
		p := retry.Policy{MaxAttempts: 10, Jitter: retry.NoJitter}
		got := runSynctest(t, h, evs, pipeline.WithRetry(p), pipeline.WithRetryBudget(b, retry.WhenEmptyDeadLetter), pipeline.WithShards(3))
		attempts, budgetDL := 0, 0
		for _, ev := range evs {
			attempts += len(log.get(ev.ID))
		}
		for _, a := range got {
			if a.Outcome.ErrorClass == retry.ReasonBudget {
				budgetDL++
			}
		}
		if attempts != 10+3 {
			t.Fatalf("%d attempts over 10 keys, want 13 (10 first attempts + 3 budgeted retries)", attempts)
		}
		if budgetDL == 0 {
			t.Fatalf("no event dead-lettered for budget_exhausted: %+v", got)
		}
		if st := b.Stats(); st.Taken != 3 {
			t.Fatalf("budget stats %+v, want 3 taken", st)
		}
	})
}

// TestRetryPanicBecomesDeadLetter: with a retry policy, a handler panic is
// a dead letter with reason handler_panic and a stack; the pipeline goes on.
func TestRetryPanicBecomesDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
			if ev.ID == "k/1" {
				panic("secret-free panic value")
			}
			return []byte("ok"), nil
		}
		got := runSynctest(t, h, []*onceflow.Event{event("k", 1), event("k", 2)}, pipeline.WithRetry(retry.Policy{}))
		if got[0].Outcome.ErrorClass != retry.ReasonPanic || got[0].DeadLetter == nil || len(got[0].DeadLetter.Stack) == 0 {
			t.Fatalf("panicking event ack = %+v, want handler_panic dead letter with a stack", got[0])
		}
		if got[1].Err != nil || string(got[1].Outcome.Result) != "ok" {
			t.Fatalf("next event ack = %+v, want done", got[1])
		}
	})
}

// TestRetryNoHeadOfLineBlocking: one key fails 5 times with 100 ms backoff
// while 1,000 other keys of the same shard flow; every other key completes
// before the failing key's first retry fires, and the failing key's own
// later event waits behind it (per-key order).
func TestRetryNoHeadOfLineBlocking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newAttemptLog()
		var mu sync.Mutex
		var order []string
		var lastOther time.Duration
		h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
			n := log.note(ev.ID)
			mu.Lock()
			defer mu.Unlock()
			if ev.PartitionKey == "bad" {
				order = append(order, ev.ID)
				if ev.ID == "bad/1" && n <= 5 {
					return nil, errBoom
				}
				return nil, nil
			}
			lastOther = time.Since(log.start)
			return nil, nil
		}
		evs := []*onceflow.Event{event("bad", 1), event("bad", 2)}
		for i := range 1000 {
			evs = append(evs, event(fmt.Sprintf("key%d", i), 1))
		}
		pol := retry.Policy{InitialInterval: 100 * time.Millisecond, Multiplier: 1, MaxAttempts: 10, Jitter: retry.NoJitter}
		got := runSynctest(t, h, evs, pipeline.WithRetry(pol), pipeline.WithShards(1))
		at := log.get("bad/1")
		if len(at) != 6 {
			t.Fatalf("bad/1 attempts at %v, want 6", at)
		}
		if lastOther >= at[1] {
			t.Fatalf("other keys finished at %v, not before the first retry at %v", lastOther, at[1])
		}
		if fmt.Sprint(order) != "[bad/1 bad/1 bad/1 bad/1 bad/1 bad/1 bad/2]" {
			t.Fatalf("failing key's handler order %v: bad/2 must wait behind bad/1", order)
		}
		for _, a := range got {
			if a.Err != nil || a.Outcome.Status != onceflow.StatusDone {
				t.Fatalf("ack %+v, want every event done", a)
			}
		}
	})
}

func TestRetryOptionsValidated(t *testing.T) {
	if _, err := pipeline.New(nop, pipeline.WithRetry(retry.Policy{Multiplier: 0.5})); err == nil {
		t.Fatal("WithRetry accepted Multiplier 0.5")
	}
	b, _ := retry.NewBudget(1, 1, nil)
	if _, err := pipeline.New(nop, pipeline.WithRetryBudget(b, retry.WhenEmptyWait)); err == nil {
		t.Fatal("WithRetryBudget without WithRetry accepted")
	}
}
