package pipeline_test

import (
	"context"
	"sync"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
)

// scanCommitStore makes a commit from another goroutine wait for the store
// while the pipeline's ScanState callback runs, as happens when one shard
// worker reloads held events while another shard's first events commit.
type scanCommitStore struct {
	*dedup.Store
	once    sync.Once
	started chan struct{}
}

func (s *scanCommitStore) ScanState(prefix []byte, fn func(k, v []byte) error) error {
	return s.Store.ScanState(prefix, func(k, v []byte) error {
		s.once.Do(func() {
			go func() {
				close(s.started)
				_ = s.Store.Commit(&onceflow.CommitBatch{Records: []onceflow.Record{{
					ID: onceflow.Identity{Source: "other", ID: "1"}, Outcome: onceflow.Outcome{Status: onceflow.StatusDone}}}})
			}()
			<-s.started
			time.Sleep(50 * time.Millisecond) // the commit now waits for the write lock
		})
		return fn(k, v)
	})
}

// TestProofReloadHeldDeadlock reproduces a deadlock found by
// FuzzSequenceOrder (a restart with held events and more than one shard).
// dedup.Store.ScanState calls its callback while it holds the backend's
// read lock (the memory backend's RWMutex; a bbolt read transaction, which
// holds bbolt's mmap lock); the pipeline's loadHeld callback calls
// seqFor, which calls Store.ReadState: a second read lock in the same
// goroutine. When a Commit (another shard's events) is waiting for the
// write lock in between, Go's RWMutex blocks the second read lock behind
// it and the commit behind the first: the shard worker and the committer
// wait for each other forever, and Run never returns. With bbolt the same
// happens when the commit must grow the mmap.
//
// Fixed: ScanState now calls its callback between pages, holding no lock.
func TestProofReloadHeldDeadlock(t *testing.T) {
	store, err := dedup.NewMemory(dedup.WithCacheItems(0), dedup.WithCapacity(1024))
	if err != nil {
		t.Fatal(err)
	}
	seq := pipeline.WithSequenceOrder(pipeline.SequenceOptions{})
	// First run: an early event is held durably.
	p, err := pipeline.New(nop, pipeline.WithStore(store), seq)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	if err := p.Submit(context.Background(), seqEvent("k", 2, "b")); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Second run: reloading it while a commit waits.
	ws := &scanCommitStore{Store: store, started: make(chan struct{})}
	p, err = pipeline.New(nop, pipeline.WithStore(ws), seq, pipeline.WithShards(1))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after reloading held events: %v: the shard worker (in loadHeld, ScanState -> ReadState) and the committer deadlocked", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
}
