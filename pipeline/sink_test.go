package pipeline_test

import (
	"context"
	"sync"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/stage"
)

// listSink records what it is asked to write.
type listSink struct {
	mu  sync.Mutex
	ids []onceflow.Identity
}

func (s *listSink) Name() string { return "list" }
func (s *listSink) WriteBatch(evs []*onceflow.Event) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range evs {
		s.ids = append(s.ids, ev.Identity())
	}
	return []byte{byte(len(s.ids))}, nil
}
func (s *listSink) count(id onceflow.Identity) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, x := range s.ids {
		if x == id {
			n++
		}
	}
	return n
}

// twoShardKeys returns two partition keys that go to different shards of
// two.
func twoShardKeys(t *testing.T) (string, string) {
	t.Helper()
	for _, b := range []string{"b", "c", "d", "e", "f", "g", "h"} {
		if stage.Shard("a", 2) != stage.Shard(b, 2) {
			return "a", b
		}
	}
	t.Fatal("no two keys in different shards")
	return "", ""
}

// TestSinkGetsWhatTheStoreKeeps: two copies of one identity with different
// partition keys are handled in two shards; the sink receives the identity
// once, whether the copies meet in one group commit or the second commits
// after the first.
func TestSinkGetsWhatTheStoreKeeps(t *testing.T) {
	ka, kb := twoShardKeys(t)
	copyOf := func(key string) *onceflow.Event {
		return &onceflow.Event{SpecVersion: "1.0", Source: "test", ID: "same", Type: "t", PartitionKey: key}
	}
	id := onceflow.Identity{Source: "test", ID: "same"}
	for _, tc := range []struct {
		name  string
		group []pipeline.Option
		wait  bool // copy b's handler waits until copy a is acknowledged (committed)
	}{
		{name: "same group", group: []pipeline.Option{pipeline.WithGroupCommit(1000, 200*time.Millisecond)}},
		{name: "later group", group: []pipeline.Option{pipeline.WithGroupCommit(1, time.Millisecond)}, wait: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, err := dedup.NewMemory()
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			sink := &listSink{}
			var a acks
			aDone := make(chan struct{})
			var once sync.Once
			ack := func(x pipeline.Ack) {
				a.add(x)
				if x.Event.PartitionKey == ka {
					once.Do(func() { close(aDone) })
				}
			}
			h := func(ctx context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
				if tc.wait && ev.PartitionKey == kb {
					select {
					case <-aDone:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				return []byte(ev.PartitionKey), nil
			}
			opts := append([]pipeline.Option{pipeline.WithStore(store), pipeline.WithSink(sink),
				pipeline.WithShards(2), pipeline.WithAck(ack)}, tc.group...)
			p, err := pipeline.New(h, opts...)
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, p)
			if err := p.SubmitBatch(context.Background(), []*onceflow.Event{copyOf(kb), copyOf(ka), event(ka, 1), event(kb, 2)}); err != nil {
				t.Fatal(err)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if n := sink.count(id); n != 1 {
				t.Fatalf("the sink got the identity %d times, want 1 (all: %v)", n, sink.ids)
			}
			for _, other := range []*onceflow.Event{event(ka, 1), event(kb, 2)} {
				if n := sink.count(other.Identity()); n != 1 {
					t.Fatalf("the sink got %v %d times, want 1", other.Identity(), n)
				}
			}
			dups := 0
			for _, x := range a.all() {
				if x.Err != nil {
					t.Fatalf("ack of %v: %v", x.Event.Identity(), x.Err)
				}
				if x.Event.ID == "same" && x.Outcome.Duplicate {
					dups++
				}
			}
			if got := len(a.all()); got != 4 || dups != 1 {
				t.Fatalf("%d acks with %d duplicates of the shared identity; want 4 and 1", got, dups)
			}
		})
	}
}
