package pipeline_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/pipeline"
)

// counter is a handler that counts its runs per identity and keeps a
// per-key running total in transactional state.
type counter struct {
	mu   sync.Mutex
	runs map[onceflow.Identity]int
	fail map[string]int // event id -> failures left
}

func newCounter() *counter {
	return &counter{runs: map[onceflow.Identity]int{}, fail: map[string]int{}}
}

func (c *counter) handle(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
	c.mu.Lock()
	c.runs[ev.Identity()]++
	if c.fail[ev.ID] > 0 {
		c.fail[ev.ID]--
		c.mu.Unlock()
		return nil, errBoom
	}
	c.mu.Unlock()
	v, _, err := fx.Get("total")
	if err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(string(v))
	n++
	fx.Put("total", []byte(strconv.Itoa(n)))
	return []byte("result-" + ev.ID), nil
}

func TestStoreDuplicatesGetFirstOutcome(t *testing.T) {
	st := newMemStore()
	c := newCounter()
	var a acks
	p, err := pipeline.New(c.handle, pipeline.WithStore(st), pipeline.WithShards(2), pipeline.WithAck(a.add))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	ctx := context.Background()
	// Two copies in the same batch (the second waits for the first's
	// commit), then a copy after the commit (answered from the store).
	for _, n := range []int{1, 1, 2} {
		if err := p.Submit(ctx, event("k", n)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := p.Do(ctx, event("k", 1))
	if err != nil {
		t.Fatal(err)
	}
	if !out.Duplicate || string(out.Result) != "result-k/1" || out.Status != onceflow.StatusDone {
		t.Fatalf("late duplicate outcome = %+v, want the first copy's result marked duplicate", out)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c.runs[onceflow.Identity{Source: "test", ID: "k/1"}] != 1 {
		t.Fatalf("handler ran %d times for k/1, want 1", c.runs[onceflow.Identity{Source: "test", ID: "k/1"}])
	}
	got := a.all()
	if len(got) != 4 {
		t.Fatalf("%d acks, want 4", len(got))
	}
	if got[0].Outcome.Duplicate || !got[1].Outcome.Duplicate || string(got[1].Outcome.Result) != "result-k/1" {
		t.Fatalf("in-flight duplicate: first %+v, second %+v", got[0].Outcome, got[1].Outcome)
	}
	if v := string(st.state[string(onceflow.StateKey("k", "total"))]); v != "2" {
		t.Fatalf("state total = %q, want 2 (two distinct events)", v)
	}
	if s := p.Stats(); s.Duplicates != 2 || s.Handled != 2 || s.CommittedEvents != 2 {
		t.Fatalf("Stats = %+v", s)
	}
}

// TestStoreFailedFirstAttemptIsRetried: a failed first attempt releases the
// claim, so a redelivery is processed, not dropped as a duplicate.
func TestStoreFailedFirstAttemptIsRetried(t *testing.T) {
	st := newMemStore()
	c := newCounter()
	c.fail["k/1"] = 1
	p, err := pipeline.New(c.handle, pipeline.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	ctx := context.Background()
	if _, err := p.Do(ctx, event("k", 1)); !errors.Is(err, errBoom) {
		t.Fatalf("first attempt = %v, want errBoom", err)
	}
	out, err := p.Do(ctx, event("k", 1))
	if err != nil || out.Duplicate {
		t.Fatalf("redelivery = %+v, %v; want processed, not a duplicate", out, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if v := string(st.state[string(onceflow.StateKey("k", "total"))]); v != "1" {
		t.Fatalf("state total = %q, want 1", v)
	}
}

// TestStoreStateSeesPendingWrites: an event reads the state its key's
// earlier, not yet committed, events wrote.
func TestStoreStateSeesPendingWrites(t *testing.T) {
	st := newMemStore()
	c := newCounter()
	p, err := pipeline.New(c.handle, pipeline.WithStore(st), pipeline.WithShards(3),
		pipeline.WithGroupCommit(100000, time.Hour)) // commit only at Shutdown
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	for i := range 500 {
		if err := p.Submit(context.Background(), event("key"+strconv.Itoa(i%7), i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for k := range 7 {
		n, _ := strconv.Atoi(string(st.state[string(onceflow.StateKey("key"+strconv.Itoa(k), "total"))]))
		total += n
	}
	if total != 500 {
		t.Fatalf("sum of per-key totals = %d, want 500", total)
	}
}

// TestCommitFailureIsFatal: a store that fails a commit stops the pipeline;
// nothing is acknowledged as done; Run returns the error.
func TestCommitFailureIsFatal(t *testing.T) {
	st := newMemStore()
	st.fail = errors.New("disk full")
	var a acks
	p, err := pipeline.New(nop, pipeline.WithStore(st), pipeline.WithAck(a.add))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()
	for i := range 20 {
		if err := p.Submit(context.Background(), event("k", i)); err != nil && !errors.Is(err, pipeline.ErrClosed) {
			t.Fatal(err)
		}
	}
	if err := <-errc; err == nil || !errors.Is(err, st.fail) {
		t.Fatalf("Run = %v, want the commit error", err)
	}
	for _, x := range a.all() {
		if x.Err == nil {
			t.Fatalf("event %s acknowledged as done after a failed commit", x.Event.ID)
		}
	}
	if err := p.Submit(context.Background(), event("k", 99)); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Submit after fatal = %v, want ErrClosed", err)
	}
	if s := p.Stats(); s.InFlight != 0 || s.Acked+s.Nacked != s.Submitted {
		t.Fatalf("Stats = %+v: every accepted event must be acknowledged", s)
	}
}
