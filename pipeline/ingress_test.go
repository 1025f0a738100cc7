package pipeline_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/retry"
	"github.com/onceflow/onceflow/stage"
)

// TestSubmitRefusesWhatTheStoreCannotKeep checks that an event the store
// could not commit, or a pipeline could not decode again, is refused at
// Submit with an error naming the field, and that the pipeline goes on:
// before, such an event was accepted and its group commit stopped the
// pipeline (an id over the store's key size), or it left a held event that
// no later run could reload (no type, data that is not JSON).
func TestSubmitRefusesWhatTheStoreCannotKeep(t *testing.T) {
	long := strings.Repeat("x", onceflow.MaxIdentifierBytes+1)
	decoded := func(ev *onceflow.Event) *onceflow.Event { ev.Raw = []byte(`{}`); return ev } // Raw set by hand
	for _, c := range []struct {
		name  string
		ev    *onceflow.Event
		field string
		want  error
	}{
		{"id too long", &onceflow.Event{Source: "s", ID: long, Type: "t"}, "id", onceflow.ErrInvalidIdentifier},
		{"decoded id too long", decoded(&onceflow.Event{Source: "s", ID: long, Type: "t"}), "id", onceflow.ErrInvalidIdentifier},
		{"partition key too long", decoded(&onceflow.Event{Source: "s", ID: "i", PartitionKey: long}), "partitionkey", onceflow.ErrInvalidIdentifier},
		{"no type", &onceflow.Event{Source: "s", ID: "i", PartitionKey: "k", Sequence: 2}, "type", onceflow.ErrMissingAttribute},
		{"data not JSON", &onceflow.Event{Source: "s", ID: "i", Type: "t", Data: []byte("hello"), Sequence: 2}, "data", onceflow.ErrMalformedJSON},
		{"control character", &onceflow.Event{Source: "s", ID: "a\nb", Type: "t"}, "id", onceflow.ErrInvalidIdentifier},
	} {
		store, err := dedup.NewMemory()
		if err != nil {
			t.Fatal(err)
		}
		p, err := pipeline.New(nop, pipeline.WithStore(store), pipeline.WithSequenceOrder(pipeline.SequenceOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		stop := start(t, p)
		// Bounded, so that an event wrongly accepted and held fails the
		// test instead of hanging it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if c.ev.Sequence == 0 {
			c.ev.Sequence = 1
		}
		for name, submit := range map[string]func() error{
			"Submit":      func() error { return p.Submit(ctx, c.ev) },
			"TrySubmit":   func() error { return p.TrySubmit(c.ev) },
			"SubmitBatch": func() error { return p.SubmitBatch(ctx, []*onceflow.Event{c.ev}) },
			"Do":          func() error { _, err := p.Do(ctx, c.ev); return err },
		} {
			err := submit()
			var de *onceflow.DecodeError
			if !errors.Is(err, pipeline.ErrInvalidEvent) || !errors.Is(err, c.want) || !errors.As(err, &de) || de.Field != c.field {
				t.Errorf("%s: %s = %v; want ErrInvalidEvent and %v in field %q", c.name, name, err, c.want, c.field)
			}
		}
		ok := seqEvent("k", 1, "fine")
		if out, err := p.Do(ctx, ok); err != nil || out.Status != onceflow.StatusDone {
			t.Errorf("%s: a valid event after the refusals = %+v, %v; want done", c.name, out, err)
		}
		cancel()
		if err := stop(); err != nil {
			t.Errorf("%s: Run = %v, want nil", c.name, err)
		}
	}
}

// TestBuiltInCodeHeldAndRedriven checks that events built in code survive
// being stored: held for sequence ordering across a restart, and
// dead-lettered then redriven. Both were stored as JSON and decoded again
// with the default identifier limit and the strict rules, which an
// accepted event could fail.
func TestBuiltInCodeHeldAndRedriven(t *testing.T) {
	store, err := dedup.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("i", onceflow.MaxIdentifierBytes) // over the decoder's default limit of 256
	held := &onceflow.Event{Source: "s", ID: id, Type: "t", PartitionKey: "k", Sequence: 2, Data: []byte(` {"a": [1]} `)}
	first := &onceflow.Event{Source: "s", ID: "one", Type: "t", PartitionKey: "k", Sequence: 1}
	rec := newSeqRecorder()
	run := func(evs ...*onceflow.Event) {
		t.Helper()
		p, err := pipeline.New(rec.handle, pipeline.WithStore(store), pipeline.WithSequenceOrder(pipeline.SequenceOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		stop := start(t, p)
		for _, ev := range evs {
			if err := p.Submit(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := stop(); err != nil {
			t.Fatalf("Run = %v", err)
		}
	}
	run(held)
	run(first)
	if got := rec.seen["k"]; len(got) != 2 || got[0] != 1 || got[1] != 2 || rec.runs[id] != 1 {
		t.Fatalf("handler saw sequences %v and the held event %d times; want [1 2] and once", got, rec.runs[id])
	}

	broken := true
	h := func(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		if broken {
			return nil, retry.Permanent(errBoom)
		}
		return ev.Data, nil
	}
	p, err := pipeline.New(h, pipeline.WithStore(store), pipeline.WithRetry(retry.Policy{MaxAttempts: 2}))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	ev := &onceflow.Event{Source: "s", ID: "dead", Type: "t", Data: []byte(`{"n":1}`)}
	if out, err := p.Do(context.Background(), ev); err != nil || out.Status != onceflow.StatusDeadLettered {
		t.Fatalf("Do = %+v, %v; want dead-lettered", out, err)
	}
	broken = false // the handler runs on the worker, after Do returned: no race
	out, err := p.Redrive(context.Background(), ev.Identity())
	if err != nil || out.Status != onceflow.StatusDone || string(out.Result) != `{"n":1}` {
		t.Fatalf("Redrive of an event built in code = %+v, %v; want done with its data", out, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestStateKeyTooLarge checks that a handler writing a state key the store
// cannot hold fails that event (permanently: dead-lettered at once), where
// before the commit failed and stopped the pipeline.
func TestStateKeyTooLarge(t *testing.T) {
	store, err := dedup.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	h := func(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		if ev.ID == "big" {
			fx.Put(strings.Repeat("k", onceflow.MaxStateKeyBytes), []byte("v"))
		}
		fx.Put("small", []byte(ev.ID))
		return nil, nil
	}
	p, err := pipeline.New(h, pipeline.WithStore(store), pipeline.WithRetry(retry.Policy{MaxAttempts: 5}))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	out, err := p.Do(context.Background(), &onceflow.Event{Source: "s", ID: "big", Type: "t"})
	if err != nil || out.Status != onceflow.StatusDeadLettered || out.ErrorClass != retry.ReasonPermanent || out.Attempts != 1 {
		t.Fatalf("Do(big key) = %+v, %v; want dead-lettered as permanent after 1 attempt", out, err)
	}
	dl, found, err := store.DeadLetter(onceflow.Identity{Source: "s", ID: "big"})
	if err != nil || !found || !strings.Contains(dl.Error, "state key") {
		t.Fatalf("dead letter = %+v, %v, %v; want one naming the state key", dl, found, err)
	}
	if out, err := p.Do(context.Background(), &onceflow.Event{Source: "s", ID: "ok", Type: "t"}); err != nil || out.Status != onceflow.StatusDone {
		t.Fatalf("Do(ok) = %+v, %v; want done", out, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// TestCopiesWithOtherPartitionKeysGetTheStoredOutcome checks that every
// copy of an identity is acknowledged with the outcome the store kept, when
// copies carry different partition keys: one copy in one shard, two in
// another, the third answered from the second's claim. Before, the third
// got the second's outcome from before the commit, which the store then
// replaced with the first's (found by an adversarial probe of the API).
func TestCopiesWithOtherPartitionKeysGetTheStoredOutcome(t *testing.T) {
	var keys [2][]string // keys by shard of 2
	for i := 0; len(keys[0]) < 1 || len(keys[1]) < 2; i++ {
		k := "k" + strconv.Itoa(i)
		if sh := stage.Shard(k, 2); len(keys[sh]) < 2 {
			keys[sh] = append(keys[sh], k)
		}
	}
	store, err := dedup.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		return []byte("ran-under-" + ev.PartitionKey), nil
	}
	var a acks
	p, err := pipeline.New(h, pipeline.WithStore(store), pipeline.WithShards(2), pipeline.WithAck(a.add))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	const rounds = 300
	for i := range rounds {
		id := "same-" + strconv.Itoa(i)
		var evs []*onceflow.Event
		for _, k := range []string{keys[0][0], keys[1][0], keys[1][1]} {
			evs = append(evs, &onceflow.Event{Source: "s", ID: id, Type: "t", PartitionKey: k})
		}
		if err := p.SubmitBatch(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := a.all()
	if len(got) != 3*rounds {
		t.Fatalf("%d acks, want %d", len(got), 3*rounds)
	}
	wrong := 0
	for _, x := range got {
		stored, found, err := store.Lookup(x.Event.Identity())
		if err != nil || !found {
			t.Fatalf("%v: stored outcome %v, %v", x.Event.Identity(), found, err)
		}
		if x.Err != nil || string(x.Outcome.Result) != string(stored.Result) {
			if wrong++; wrong <= 5 {
				t.Errorf("copy under %s of %v: acknowledged with %q (err %v), the store kept %q",
					x.Event.PartitionKey, x.Event.Identity(), x.Outcome.Result, x.Err, stored.Result)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d copies acknowledged with an outcome the store did not keep", wrong, len(got))
	}
}

// TestContextsChecked: a nil context is refused with an error that says so
// (it used to panic inside the pipeline), and a context that has already
// ended accepts nothing — the caller that gets ctx's error can rely on the
// event not being processed.
func TestContextsChecked(t *testing.T) {
	store, err := dedup.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	handled := make(chan string, 16)
	h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		handled <- ev.ID
		return nil, nil
	}
	p, err := pipeline.New(h, pipeline.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	var nilCtx context.Context
	for name, call := range map[string]func() error{
		"Run":         func() error { return p.Run(nilCtx) },
		"Shutdown":    func() error { return p.Shutdown(nilCtx) },
		"Submit":      func() error { return p.Submit(nilCtx, event("k", 1)) },
		"SubmitBatch": func() error { return p.SubmitBatch(nilCtx, []*onceflow.Event{event("k", 1)}) },
		"Do":          func() error { _, err := p.Do(nilCtx, event("k", 1)); return err },
		"Redrive": func() error {
			_, err := p.Redrive(nilCtx, onceflow.Identity{Source: "test", ID: "k/1"})
			return err
		},
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "nil context") {
			t.Errorf("%s(nil ctx) = %v, want an error naming the nil context", name, err)
		}
	}

	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Submit(done, event("k", 2)); !errors.Is(err, context.Canceled) {
		t.Errorf("Submit with an ended context = %v, want context.Canceled", err)
	}
	if err := p.SubmitBatch(done, []*onceflow.Event{event("k", 3)}); !errors.Is(err, context.Canceled) {
		t.Errorf("SubmitBatch with an ended context = %v, want context.Canceled", err)
	}
	if _, err := p.Do(done, event("k", 4)); !errors.Is(err, context.Canceled) {
		t.Errorf("Do with an ended context = %v, want context.Canceled", err)
	}
	stop := start(t, p) // Run(nil) above must not have counted as the one Run
	if _, err := p.Do(context.Background(), event("k", 5)); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	close(handled)
	var got []string
	for id := range handled {
		got = append(got, id)
	}
	if len(got) != 1 || got[0] != "k/5" {
		t.Fatalf("handled %q, want only k/5: events submitted with an ended context were processed", got)
	}
}
