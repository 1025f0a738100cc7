package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/retry"
)

func nop(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) { return nil, nil }

func TestSubmitAfterShutdown(t *testing.T) {
	p, err := pipeline.New(nop)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	if err := p.Submit(context.Background(), event("k", 1)); err != nil {
		t.Fatalf("Submit before Shutdown: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := p.Submit(context.Background(), event("k", 2)); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Submit after Shutdown = %v, want ErrClosed", err)
	}
	if err := p.TrySubmit(event("k", 3)); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("TrySubmit after Shutdown = %v, want ErrClosed", err)
	}
	if _, err := p.Do(context.Background(), event("k", 4)); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Do after Shutdown = %v, want ErrClosed", err)
	}
	if err := p.Run(context.Background()); !errors.Is(err, pipeline.ErrAlreadyRunning) {
		t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
	}
}

// TestSubmitRacingShutdown: submitters race Shutdown; every Submit that
// returned nil is acknowledged exactly once, every other one got ErrClosed.
func TestSubmitRacingShutdown(t *testing.T) {
	for round := range 20 {
		var handled atomic.Int64
		var a acks
		p, err := pipeline.New(func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) {
			handled.Add(1)
			return nil, nil
		}, pipeline.WithShards(1+round%4), pipeline.WithBatchSize(1+round*7%64), pipeline.WithAck(a.add))
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- p.Run(context.Background()) }()
		var accepted atomic.Int64
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					err := p.Submit(context.Background(), event(string(rune('a'+g)), i))
					if errors.Is(err, pipeline.ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("Submit: %v", err)
						return
					}
					accepted.Add(1)
				}
			})
		}
		time.Sleep(time.Millisecond)
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if err := <-errc; err != nil {
			t.Fatalf("Run: %v", err)
		}
		got := a.all()
		if int64(len(got)) != accepted.Load() || handled.Load() != accepted.Load() {
			t.Fatalf("round %d: accepted %d, acked %d, handled %d", round, accepted.Load(), len(got), handled.Load())
		}
		seen := map[onceflow.Identity]bool{}
		for _, x := range got {
			if x.Err != nil {
				t.Fatalf("ack error: %v", x.Err)
			}
			if seen[x.Event.Identity()] {
				t.Fatalf("acked twice: %v", x.Event.Identity())
			}
			seen[x.Event.Identity()] = true
		}
	}
}

func TestShutdownExpiredContext(t *testing.T) {
	release := make(chan struct{})
	p, err := pipeline.New(func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) {
		<-release
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()
	if err := p.Submit(context.Background(), event("k", 1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with expiring ctx = %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestBackpressureByCount(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	p, err := pipeline.New(func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) {
		started <- struct{}{}
		<-release
		return nil, nil
	}, pipeline.WithShards(1), pipeline.WithQueueLimits(3, 1<<20), pipeline.WithBatchSize(1))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	for i := range 3 {
		if err := p.TrySubmit(event("k", i)); err != nil {
			t.Fatalf("TrySubmit %d: %v", i, err)
		}
	}
	<-started
	if err := p.TrySubmit(event("k", 3)); !errors.Is(err, pipeline.ErrBackpressure) {
		t.Fatalf("TrySubmit on a full queue = %v, want ErrBackpressure", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Submit(ctx, event("k", 3)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit on a full queue = %v, want it to block until DeadlineExceeded", err)
	}
	if st := p.Stats(); st.InFlight != 3 || st.Submitted != 3 {
		t.Fatalf("Stats = %+v, want 3 in flight and 3 submitted", st)
	}
	// A blocked Submit proceeds once space frees.
	done := make(chan error, 1)
	go func() { done <- p.Submit(context.Background(), event("k", 4)) }()
	select {
	case err := <-done:
		t.Fatalf("Submit returned %v while the queue was full", err)
	case <-time.After(10 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("blocked Submit = %v after space freed", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Acked != 4 || st.InFlight != 0 {
		t.Fatalf("Stats after Shutdown = %+v, want 4 acked, 0 in flight", st)
	}
}

func TestBackpressureByBytes(t *testing.T) {
	release := make(chan struct{})
	p, err := pipeline.New(func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) {
		<-release
		return nil, nil
	}, pipeline.WithShards(1), pipeline.WithQueueLimits(100, 1000))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	big := func(n int) *onceflow.Event {
		ev := event("k", n)
		ev.Raw = make([]byte, 600)
		return ev
	}
	if err := p.TrySubmit(big(1)); err != nil {
		t.Fatalf("first 600-byte event: %v", err)
	}
	if err := p.TrySubmit(big(2)); !errors.Is(err, pipeline.ErrBackpressure) {
		t.Fatalf("second 600-byte event with a 1000-byte limit = %v, want ErrBackpressure", err)
	}
	if err := p.TrySubmit(event("k", 3)); err != nil {
		t.Fatalf("small event within the byte limit: %v", err)
	}
	if st := p.Stats(); st.InFlightBytes != int64(600+event("k", 3).Size()) {
		t.Fatalf("InFlightBytes = %d", st.InFlightBytes)
	}
	close(release)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestOversizedEventAcceptedWhenEmpty: an event larger than the byte limit
// is not refused forever; it is accepted when its shard is empty.
func TestOversizedEventAcceptedWhenEmpty(t *testing.T) {
	p, err := pipeline.New(nop, pipeline.WithShards(1), pipeline.WithQueueLimits(10, 100))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	ev := event("k", 1)
	ev.Raw = make([]byte, 1000)
	if _, err := p.Do(context.Background(), ev); err != nil {
		t.Fatalf("Do(oversized) = %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestHandlerPanic: the policy is that a panic fails that event (its Ack
// carries a *retry.PanicError with the stack) and the worker goes on.
func TestHandlerPanic(t *testing.T) {
	var a acks
	p, err := pipeline.New(func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		if ev.ID == "k/1" {
			panic("bad event")
		}
		return []byte("ok"), nil
	}, pipeline.WithShards(1), pipeline.WithAck(a.add))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	for i := range 3 {
		if err := p.Submit(context.Background(), event("k", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := a.all()
	if len(got) != 3 {
		t.Fatalf("%d acks, want 3", len(got))
	}
	var pe *retry.PanicError
	if !errors.As(got[1].Err, &pe) || len(pe.Stack) == 0 {
		t.Fatalf("ack of the panicking event = %v, want a *retry.PanicError with a stack", got[1].Err)
	}
	if got[0].Err != nil || got[2].Err != nil || string(got[2].Outcome.Result) != "ok" {
		t.Fatalf("other events: %+v / %+v", got[0], got[2])
	}
	if st := p.Stats(); st.Failed != 1 || st.Handled != 2 {
		t.Fatalf("Stats = %+v, want 1 failed, 2 handled", st)
	}
}

// TestCancelAbandons: cancelling Run's ctx abandons in-flight work; every
// accepted event gets exactly one Ack, with ErrAbandoned for those not done.
func TestCancelAbandons(t *testing.T) {
	var a acks
	block := make(chan struct{})
	p, err := pipeline.New(func(ctx context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, nil
	}, pipeline.WithShards(2), pipeline.WithAck(a.add))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	for i := range 50 {
		if err := p.Submit(context.Background(), event(string(rune('a'+i%5)), i)); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	got := a.all()
	if len(got) != 50 {
		t.Fatalf("%d acks, want 50", len(got))
	}
	abandoned := 0
	for _, x := range got {
		if errors.Is(x.Err, pipeline.ErrAbandoned) {
			abandoned++
		} else if x.Err == nil {
			t.Fatalf("event %s acked as done although the handler never finished", x.Event.ID)
		}
	}
	if abandoned < 48 { // at most one in-handler event per shard fails with ctx.Err instead
		t.Fatalf("%d abandoned, want >= 48", abandoned)
	}
	if err := p.Submit(context.Background(), event("a", 99)); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Submit after cancel = %v, want ErrClosed", err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown after cancel = %v", err)
	}
	close(block)
}

func TestShutdownBeforeRun(t *testing.T) {
	var a acks
	p, err := pipeline.New(nop, pipeline.WithAck(a.add))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Submit(context.Background(), event("k", 1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown before Run = %v, want DeadlineExceeded (it waits for Run to drain)", err)
	}
	if err := p.Submit(context.Background(), event("k", 2)); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Submit after Shutdown = %v, want ErrClosed", err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatalf("Run after Shutdown = %v, want nil after draining", err)
	}
	if got := a.all(); len(got) != 1 || got[0].Err != nil {
		t.Fatalf("acks = %+v, want the accepted event done", got)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidInput(t *testing.T) {
	if _, err := pipeline.New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
	for _, o := range []pipeline.Option{
		pipeline.WithShards(0), pipeline.WithBatchSize(0), pipeline.WithQueueLimits(0, 1),
		pipeline.WithGroupCommit(0, time.Millisecond), pipeline.WithStore(nil), pipeline.WithLogger(nil),
		pipeline.WithStore((*dedup.Store)(nil)), // a typed nil, as a failed Open returns
	} {
		if _, err := pipeline.New(nop, o); err == nil {
			t.Fatalf("New with a bad option succeeded")
		}
	}
	const typed = "pipeline: WithStore((*dedup.Store)(nil))"
	if _, err := pipeline.New(nop, pipeline.WithStore((*dedup.Store)(nil))); err == nil || err.Error() != typed {
		t.Fatalf("a typed nil store: %v, want %s", err, typed)
	}
	if _, err := pipeline.New(nop, pipeline.WithShards(8), pipeline.WithQueueLimits(4, 100)); err == nil {
		t.Fatal("fewer queue slots than shards accepted")
	}
	p, err := pipeline.New(nop)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.TrySubmit(nil); !errors.Is(err, pipeline.ErrInvalidEvent) {
		t.Fatalf("TrySubmit(nil) = %v", err)
	}
	if err := p.TrySubmit(&onceflow.Event{Source: "s"}); !errors.Is(err, pipeline.ErrInvalidEvent) {
		t.Fatalf("TrySubmit(no id) = %v", err)
	}
}

func TestEffectsWithoutStoreFail(t *testing.T) {
	p, err := pipeline.New(func(_ context.Context, _ *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		fx.Put("k", []byte("v"))
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	if _, err := p.Do(context.Background(), event("k", 1)); !errors.Is(err, pipeline.ErrNoStore) {
		t.Fatalf("Do = %v, want ErrNoStore", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
