package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/retry"
	"go.uber.org/goleak"
)

// Tests of the direct path: a pipeline without a store, where the worker
// runs a batch's handlers back to back (runDirect) and falls back to
// settle, parking and dispatch when an attempt fails.

// directSeq returns the sequence number n of an event made by event(key, n).
func directSeq(ev *onceflow.Event) int {
	n, _ := strconv.Atoi(ev.ID[strings.IndexByte(ev.ID, '/')+1:])
	return n
}

// checkDirectRetry submits 3 keys × 50 events, interleaved, with
// SubmitBatch to a one-shard pipeline with batch size 64 whose handler
// fails the first attempt of some events and panics on the first attempt
// of others, under a retry policy that retries both. It returns "" or the
// first violation.
func checkDirectRetry(interval time.Duration) string {
	const perKey = 50
	keys := []string{"a", "b", "c"}
	// Planted first-attempt failures, in the middle of batches: a/10 and
	// a/11 are consecutive (the second fails when resumed behind the
	// first), the others lie between events of other keys.
	fails := map[string]bool{"a/10": true, "a/11": true, "c/12": true, "a/30": true, "c/45": true}
	panics := map[string]bool{"b/11": true, "b/40": true}

	var mu sync.Mutex
	attempts := map[string]int{}
	calls := map[string][]int{} // key -> sequence numbers of successful calls
	h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		mu.Lock()
		attempts[ev.ID]++
		n := attempts[ev.ID]
		if n == 1 && fails[ev.ID] {
			mu.Unlock()
			return nil, errBoom
		}
		if n == 1 && panics[ev.ID] {
			mu.Unlock()
			panic("planted panic " + ev.ID)
		}
		calls[ev.PartitionKey] = append(calls[ev.PartitionKey], directSeq(ev))
		mu.Unlock()
		return []byte(ev.ID), nil
	}
	// Retry every failure, panics included, after a fixed interval.
	pol := retry.Policy{InitialInterval: interval, Multiplier: 1, MaxInterval: interval, MaxAttempts: 3, Jitter: retry.NoJitter,
		Classify: func(error) retry.Class { return retry.ClassRetryable }}
	var a acks
	p, err := pipeline.New(h, pipeline.WithShards(1), pipeline.WithBatchSize(64), pipeline.WithRetry(pol),
		pipeline.WithAck(a.add), pipeline.WithSeed(1))
	if err != nil {
		return err.Error()
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()

	var evs []*onceflow.Event
	for n := range perKey {
		for _, k := range keys {
			evs = append(evs, event(k, n))
		}
	}
	// Shares of 5 (queued item by item), 90 and 55 events (each handed
	// over as one chunk, split by the worker's batches of 64).
	for _, part := range [][]*onceflow.Event{evs[:5], evs[5:95], evs[95:]} {
		if err := p.SubmitBatch(context.Background(), part); err != nil {
			return "SubmitBatch: " + err.Error()
		}
	}
	if err := p.Shutdown(context.Background()); err != nil {
		return "Shutdown: " + err.Error()
	}
	if err := <-errc; err != nil {
		return "Run: " + err.Error()
	}

	got := a.all()
	if len(got) != len(evs) {
		return fmt.Sprintf("%d acks for %d events", len(got), len(evs))
	}
	acked := map[*onceflow.Event]int{}
	ackOrder := map[string][]int{}
	for _, x := range got {
		acked[x.Event]++
		ackOrder[x.Event.PartitionKey] = append(ackOrder[x.Event.PartitionKey], directSeq(x.Event))
		wantAttempts := uint32(1)
		if fails[x.Event.ID] || panics[x.Event.ID] {
			wantAttempts = 2
		}
		if x.Err != nil || x.Outcome.Status != onceflow.StatusDone || x.Outcome.Attempts != wantAttempts ||
			string(x.Outcome.Result) != x.Event.ID || x.DeadLetter != nil {
			return fmt.Sprintf("ack of %s = {Status %v Attempts %d Result %q Err %v}, want done after %d attempts with result %q",
				x.Event.ID, x.Outcome.Status, x.Outcome.Attempts, x.Outcome.Result, x.Err, wantAttempts, x.Event.ID)
		}
	}
	for _, ev := range evs {
		if acked[ev] != 1 {
			return fmt.Sprintf("event %s acknowledged %d times, want 1", ev.ID, acked[ev])
		}
		want := 1
		if fails[ev.ID] || panics[ev.ID] {
			want = 2
		}
		if attempts[ev.ID] != want {
			return fmt.Sprintf("event %s: %d handler attempts, want %d", ev.ID, attempts[ev.ID], want)
		}
	}
	inOrder := make([]int, perKey)
	for n := range inOrder {
		inOrder[n] = n
	}
	for _, k := range keys {
		if !slices.Equal(calls[k], inOrder) {
			return fmt.Sprintf("key %s: successful handler calls in order %v, want %v", k, calls[k], inOrder)
		}
		if !slices.Equal(ackOrder[k], inOrder) {
			return fmt.Sprintf("key %s: acks in order %v, want %v", k, ackOrder[k], inOrder)
		}
	}
	st := p.Stats()
	planted := uint64(len(fails) + len(panics))
	if st.Submitted != uint64(len(evs)) || st.Handled != uint64(len(evs)) || st.Retries != planted ||
		st.Acked != uint64(len(evs)) || st.Nacked != 0 || st.Failed != 0 || st.DeadLettered != 0 ||
		st.Parked != 0 || st.InFlight != 0 || st.QueuedEvents != 0 {
		return fmt.Sprintf("stats %+v, want Submitted = Handled = Acked = %d, Retries %d, nothing failed, parked or in flight",
			st, len(evs), planted)
	}
	return ""
}

// TestDirectRetryFailuresAndPanicsMidBatch: on the direct path, first
// attempts that fail or panic in the middle of a batch are retried; every
// event is acknowledged exactly once and done, each key's handler
// successes and acks keep submission order, and Stats count one handled
// event per event and one retry per planted failure. It runs on synctest's
// fake clock (exact, instant retries) and on the real clock with 1 ms
// retries (the checks do not depend on timing).
func TestDirectRetryFailuresAndPanicsMidBatch(t *testing.T) {
	t.Run("clock=fake", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			if msg := checkDirectRetry(10 * time.Millisecond); msg != "" {
				t.Fatal(msg)
			}
		})
	})
	t.Run("clock=real", func(t *testing.T) {
		for round := range 5 {
			if msg := checkDirectRetry(time.Millisecond); msg != "" {
				t.Fatalf("round %d: %s", round, msg)
			}
		}
	})
}

type doResult struct {
	name string
	out  onceflow.Outcome
	err  error
}

// TestDirectDoSameEventPointer: two concurrent Do calls with the same
// *Event and a third with another event of the same key, all queued behind
// a blocked event so that they are handled in one batch, all return done;
// each Do of x sees x's result. Run under synctest, a goroutine left
// behind fails the test.
func TestDirectDoSameEventPointer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var mu sync.Mutex
		runs := map[string]int{}
		h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
			if ev.ID == "k/0" {
				<-gate
			}
			mu.Lock()
			runs[ev.ID]++
			mu.Unlock()
			return []byte("result " + ev.ID), nil
		}
		p, err := pipeline.New(h, pipeline.WithShards(1))
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- p.Run(context.Background()) }()
		if err := p.Submit(context.Background(), event("k", 0)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the worker is in the handler of k/0

		x, y := event("k", 1), event("k", 2)
		results := make(chan doResult, 3)
		for _, c := range []struct {
			name string
			ev   *onceflow.Event
		}{{"x#1", x}, {"x#2", x}, {"y", y}} {
			go func() {
				out, err := p.Do(context.Background(), c.ev)
				results <- doResult{c.name, out, err}
			}()
		}
		synctest.Wait() // all three accepted and waiting
		if st := p.Stats(); st.Submitted != 4 || st.QueuedEvents != 3 {
			t.Fatalf("before release: Submitted %d, QueuedEvents %d; want 4, 3", st.Submitted, st.QueuedEvents)
		}
		close(gate)
		for range 3 {
			r := <-results
			want := "result k/1"
			if r.name == "y" {
				want = "result k/2"
			}
			if r.err != nil || r.out.Status != onceflow.StatusDone || string(r.out.Result) != want {
				t.Errorf("Do %s = {Status %v Result %q}, %v; want done with %q", r.name, r.out.Status, r.out.Result, r.err, want)
			}
		}
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if runs["k/1"] != 2 || runs["k/2"] != 1 {
			t.Fatalf("handler runs %v, want k/1 twice (no store, no dedup) and k/2 once", runs)
		}
	})
}

// TestDirectDoSameEventPointerRacing: the same three Do calls without a
// gate, racing each other and the worker, many times on the real clock. A
// Do that does not return within the guard timeout lost its ack.
func TestDirectDoSameEventPointerRacing(t *testing.T) {
	for round := range 200 {
		p, err := pipeline.New(func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
			return []byte(ev.ID), nil
		}, pipeline.WithShards(1+round%2), pipeline.WithBatchSize(1+round%3))
		if err != nil {
			t.Fatal(err)
		}
		stop := start(t, p)
		x, y := event("k", 1), event("k", 2)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for _, ev := range []*onceflow.Event{x, x, y} {
			wg.Go(func() {
				out, err := p.Do(ctx, ev)
				if err == nil && (out.Status != onceflow.StatusDone || string(out.Result) != ev.ID) {
					err = fmt.Errorf("outcome {Status %v Result %q}, want done with %q", out.Status, out.Result, ev.ID)
				}
				if err != nil {
					errs <- fmt.Errorf("Do %s: %w", ev.ID, err)
				}
			})
		}
		wg.Wait()
		cancel()
		if err := stop(); err != nil {
			t.Fatalf("round %d: Run: %v", round, err)
		}
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	goleak.VerifyNone(t)
}

// TestDirectDoRefusedLeavesNoWaiter: refused Do calls — the pipeline shut
// down (ErrClosed, before and after Run), an invalid event, a context
// cancelled while waiting for room — return at once and leave nothing
// behind: a later Do with the same event pointer gets its own outcome.
func TestDirectDoRefusedLeavesNoWaiter(t *testing.T) {
	guard := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	echo := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		return []byte(ev.ID), nil
	}
	doneWith := func(t *testing.T, p *pipeline.Pipeline, ev *onceflow.Event) {
		t.Helper()
		out, err := p.Do(guard(t), ev)
		if err != nil || out.Status != onceflow.StatusDone || string(out.Result) != ev.ID {
			t.Fatalf("Do %s = {Status %v Result %q}, %v; want done with %q", ev.ID, out.Status, out.Result, err, ev.ID)
		}
	}

	t.Run("closed after Run", func(t *testing.T) {
		p, err := pipeline.New(echo)
		if err != nil {
			t.Fatal(err)
		}
		stop := start(t, p)
		x := event("k", 1)
		doneWith(t, p, x)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		for i := range 100 {
			ev := x
			if i%2 == 1 {
				ev = event("k", 100+i)
			}
			if _, err := p.Do(guard(t), ev); !errors.Is(err, pipeline.ErrClosed) {
				t.Fatalf("Do %d after Shutdown = %v, want ErrClosed", i, err)
			}
		}
		// The same event pointer on a new pipeline is unaffected.
		p2, err := pipeline.New(echo)
		if err != nil {
			t.Fatal(err)
		}
		stop2 := start(t, p2)
		doneWith(t, p2, x)
		if err := stop2(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	})

	t.Run("closed before Run", func(t *testing.T) {
		p, err := pipeline.New(echo)
		if err != nil {
			t.Fatal(err)
		}
		expired, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.Shutdown(expired); !errors.Is(err, context.Canceled) {
			t.Fatalf("Shutdown before Run with a cancelled ctx = %v, want context.Canceled", err)
		}
		x := event("k", 1)
		for i := range 100 {
			if _, err := p.Do(guard(t), x); !errors.Is(err, pipeline.ErrClosed) {
				t.Fatalf("Do %d after Shutdown = %v, want ErrClosed", i, err)
			}
		}
		if err := p.Run(guard(t)); err != nil {
			t.Fatalf("Run after Shutdown = %v, want nil", err)
		}
	})

	t.Run("invalid event", func(t *testing.T) {
		p, err := pipeline.New(echo)
		if err != nil {
			t.Fatal(err)
		}
		stop := start(t, p)
		x := event("k", 1)
		x.Source = ""
		for i := range 100 {
			if _, err := p.Do(guard(t), x); !errors.Is(err, pipeline.ErrInvalidEvent) {
				t.Fatalf("Do %d of an event without source = %v, want ErrInvalidEvent", i, err)
			}
		}
		x.Source = "test" // now valid: its Do must get its own ack
		doneWith(t, p, x)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	})

	t.Run("cancelled while waiting for room", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			gate := make(chan struct{})
			p, err := pipeline.New(func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
				if ev.ID == "k/0" {
					<-gate
				}
				return []byte(ev.ID), nil
			}, pipeline.WithShards(1), pipeline.WithQueueLimits(1, 1<<20))
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- p.Run(context.Background()) }()
			if err := p.Submit(context.Background(), event("k", 0)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait() // k/0 holds the shard's only slot
			x := event("k", 1)
			for i := range 100 {
				ctx, cancel := context.WithCancel(context.Background())
				doErr := make(chan error, 1)
				go func() {
					_, err := p.Do(ctx, x)
					doErr <- err
				}()
				synctest.Wait() // Do waits for room
				cancel()
				if err := <-doErr; !errors.Is(err, context.Canceled) {
					t.Fatalf("Do %d cancelled while waiting for room = %v, want context.Canceled", i, err)
				}
			}
			if st := p.Stats(); st.Submitted != 1 {
				t.Fatalf("Submitted %d after refused Do calls, want 1", st.Submitted)
			}
			close(gate)
			doneWith(t, p, x)
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	})
}
