package pipeline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	onceflow "github.com/onceflow/onceflow"
)

// Internal checks of the waiter table behind Do (see addWaiter): what the
// external tests in direct_test.go can only observe as a Do that hangs.

func waiterEvent(n string) *onceflow.Event {
	return &onceflow.Event{SpecVersion: "1.0", Source: "test", ID: "k/" + n, Type: "t", PartitionKey: "k"}
}

func waitersLeft(p *Pipeline) int {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	n := 0
	for _, ws := range p.waiters {
		n += len(ws)
	}
	return n
}

func echoHandler(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
	return []byte(ev.ID), nil
}

// TestDirectWaiterTableEmpty: refused Do calls (invalid event, context
// cancelled while waiting for room, pipeline closed) and answered ones
// (concurrent, same event pointer) leave no entry in the waiter table.
func TestDirectWaiterTableEmpty(t *testing.T) {
	p, err := New(echoHandler, WithShards(1), WithQueueLimits(1, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	bad := waiterEvent("bad")
	bad.Source = ""
	for range 100 {
		if _, err := p.Do(context.Background(), bad); !errors.Is(err, ErrInvalidEvent) {
			t.Fatalf("Do of an invalid event = %v, want ErrInvalidEvent", err)
		}
	}
	if n := waitersLeft(p); n != 0 {
		t.Fatalf("%d waiters left after refused invalid events, want 0", n)
	}

	// Not running yet: the first event holds the shard's only slot, so Do
	// waits for room until its context ends.
	if err := p.Submit(context.Background(), waiterEvent("0")); err != nil {
		t.Fatal(err)
	}
	x := waiterEvent("1")
	for range 100 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := p.Do(ctx, x); !errors.Is(err, context.Canceled) {
			t.Fatalf("Do with a cancelled context on a full shard = %v, want context.Canceled", err)
		}
	}
	if n := waitersLeft(p); n != 0 {
		t.Fatalf("%d waiters left after Do calls cancelled waiting for room, want 0", n)
	}

	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()
	var wg sync.WaitGroup
	for _, ev := range []*onceflow.Event{x, x, waiterEvent("2"), x} {
		wg.Go(func() {
			if out, err := p.Do(context.Background(), ev); err != nil || out.Status != onceflow.StatusDone {
				t.Errorf("Do %s = {Status %v}, %v; want done", ev.ID, out.Status, err)
			}
		})
	}
	wg.Wait()
	if n := waitersLeft(p); n != 0 {
		t.Fatalf("%d waiters left after answered Do calls, want 0", n)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for range 100 {
		if _, err := p.Do(context.Background(), x); !errors.Is(err, ErrClosed) {
			t.Fatalf("Do after Shutdown = %v, want ErrClosed", err)
		}
	}
	if n := waitersLeft(p); n != 0 {
		t.Fatalf("%d waiters left after Do calls refused with ErrClosed, want 0", n)
	}
}

// TestDirectWaiterOnlyAtAcceptance: a Do waiting for room in a full shard
// has no waiter registered; it gets one only as its event is accepted. (A
// waiter registered before acceptance could take the acknowledgement of a
// concurrent Do of the same event pointer accepted first, and then be
// dropped when its own Do is refused, leaving the other Do waiting for
// ever.)
func TestDirectWaiterOnlyAtAcceptance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		p, err := New(func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
			if ev.ID == "k/0" {
				<-gate
			}
			return []byte(ev.ID), nil
		}, WithShards(1), WithQueueLimits(1, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- p.Run(context.Background()) }()
		if err := p.Submit(context.Background(), waiterEvent("0")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // k/0 holds the only slot
		x := waiterEvent("1")
		type result struct {
			out onceflow.Outcome
			err error
		}
		ctxA, cancelA := context.WithCancel(context.Background())
		ra, rb := make(chan result, 1), make(chan result, 1)
		go func() { out, err := p.Do(ctxA, x); ra <- result{out, err} }()
		synctest.Wait()
		go func() { out, err := p.Do(context.Background(), x); rb <- result{out, err} }()
		synctest.Wait() // both wait for room
		if n := waitersLeft(p); n != 0 {
			t.Fatalf("%d waiters registered by Do calls still waiting for room, want 0", n)
		}
		cancelA()
		if r := <-ra; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled Do = %v, want context.Canceled", r.err)
		}
		close(gate)
		if r := <-rb; r.err != nil || r.out.Status != onceflow.StatusDone {
			t.Fatalf("remaining Do = {Status %v}, %v; want done", r.out.Status, r.err)
		}
		if n := waitersLeft(p); n != 0 {
			t.Fatalf("%d waiters left, want 0", n)
		}
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
}
