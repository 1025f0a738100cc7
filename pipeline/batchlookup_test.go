package pipeline_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/pipeline"
)

// batchStore adds LookupBatch to memStore. When fail is set, every
// LookupBatch fails (the worker must fall back to Lookup); otherwise a
// Lookup call for an event of the submitted batches is counted, since the
// worker should have had its answer from LookupBatch.
type batchStore struct {
	*memStore
	fail           bool
	batches, calls atomic.Int64
}

func (b *batchStore) Lookup(id onceflow.Identity) (onceflow.Outcome, bool, error) {
	b.calls.Add(1)
	return b.memStore.Lookup(id)
}

func (b *batchStore) LookupBatch(ids []onceflow.Identity, outs []onceflow.Outcome, found []bool) error {
	b.batches.Add(1)
	if b.fail {
		return errors.New("injected LookupBatch failure")
	}
	for i, id := range ids {
		outs[i], found[i], _ = b.memStore.Lookup(id)
		outs[i].Duplicate = found[i]
	}
	return nil
}

// TestBatchLookup: with a store that has LookupBatch, the workers ask it
// for whole chunks instead of asking Lookup per event, and every guarantee
// holds: each identity is handled once, copies in the same batch, in later
// batches and after the first commit are duplicates. When LookupBatch
// fails, the workers ask Lookup event by event and nothing changes.
func TestBatchLookup(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := map[bool]string{false: "batch=ok", true: "batch=failing"}[fail]
		t.Run(name, func(t *testing.T) {
			st := &batchStore{memStore: newMemStore(), fail: fail}
			var handled atomic.Int64
			var got acks
			p, err := pipeline.New(func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) {
				handled.Add(1)
				return nil, nil
			}, pipeline.WithStore(st), pipeline.WithShards(2), pipeline.WithAck(got.add))
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, p)
			const n = 300
			var evs []*onceflow.Event
			for i := range n {
				evs = append(evs, event("k"+string(rune('a'+i%7)), i))
			}
			// The same events twice in one batch, then again: 2n duplicates.
			if err := p.SubmitBatch(context.Background(), append(append([]*onceflow.Event(nil), evs...), evs...)); err != nil {
				t.Fatal(err)
			}
			if err := p.SubmitBatch(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if h := handled.Load(); h != n {
				t.Fatalf("handler ran %d times for %d identities", h, n)
			}
			dups := 0
			for _, a := range got.all() {
				if a.Err != nil {
					t.Fatalf("nack: %v", a.Err)
				}
				if a.Outcome.Duplicate {
					dups++
				}
			}
			if len(got.all()) != 3*n || dups != 2*n {
				t.Fatalf("%d acks, %d duplicates; want %d, %d", len(got.all()), dups, 3*n, 2*n)
			}
			if st.batches.Load() == 0 {
				t.Fatal("LookupBatch never called")
			}
			if calls := st.calls.Load(); !fail && calls != 0 {
				t.Fatalf("Lookup called %d times although LookupBatch answered", calls)
			} else if fail && calls == 0 {
				t.Fatal("LookupBatch failed and Lookup was never called")
			}
		})
	}
}
