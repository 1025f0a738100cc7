package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/retry"
)

func TestRedriveExactlyOnce(t *testing.T) {
	st := newMemStore()
	var mu sync.Mutex
	broken, runs := true, 0
	h := func(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		runs++
		if broken {
			return nil, retry.Permanent(errBoom)
		}
		fx.Put("applied", []byte(ev.ID))
		return []byte("fixed"), nil
	}
	p, err := pipeline.New(h, pipeline.WithStore(st), pipeline.WithRetry(retry.Policy{MaxAttempts: 3}))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	ctx := context.Background()
	ev := event("k", 1)
	ev.Raw = ev.AppendJSON(nil)
	out, err := p.Do(ctx, ev)
	if err != nil || out.Status != onceflow.StatusDeadLettered || out.ErrorClass != retry.ReasonPermanent {
		t.Fatalf("first delivery = %+v, %v; want dead-lettered (permanent)", out, err)
	}
	// A redelivered copy does not run the handler.
	if out, err := p.Do(ctx, ev); err != nil || !out.Duplicate || out.Status != onceflow.StatusDeadLettered {
		t.Fatalf("redelivery = %+v, %v; want the dead-lettered outcome as a duplicate", out, err)
	}
	mu.Lock()
	broken = false
	mu.Unlock()
	out, err = p.Redrive(ctx, ev.Identity())
	if err != nil || out.Status != onceflow.StatusDone || string(out.Result) != "fixed" || out.Duplicate {
		t.Fatalf("Redrive = %+v, %v; want done", out, err)
	}
	out, err = p.Redrive(ctx, ev.Identity())
	if err != nil || !out.Duplicate || out.Status != onceflow.StatusDone {
		t.Fatalf("second Redrive = %+v, %v; want the first redrive's outcome as a duplicate", out, err)
	}
	if _, err := p.Redrive(ctx, onceflow.Identity{Source: "test", ID: "nope"}); !errors.Is(err, pipeline.ErrNotDeadLettered) {
		t.Fatalf("Redrive of unknown = %v, want ErrNotDeadLettered", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if runs != 2 {
		t.Fatalf("handler ran %d times, want 2 (the failed first attempt and one redrive)", runs)
	}
	if d := st.dead[ev.Identity()]; d.Redriven.IsZero() || d.Reason != retry.ReasonPermanent {
		t.Fatalf("dead letter after redrive = %+v, want Redriven set", d)
	}
	if got := string(st.state[string(onceflow.StateKey("k", "applied"))]); got != ev.ID {
		t.Fatalf("state after redrive = %q", got)
	}
}
