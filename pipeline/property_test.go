package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"
	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/pipeline"
)

// parameters returns gopter parameters seeded from GOPTER_SEED when set, so
// that a printed seed reproduces a failure.
func parameters(t *testing.T, runs int) *gopter.TestParameters {
	t.Helper()
	return pipeline.GopterParameters(t, runs, 600)
}

func runProperties(t *testing.T, params *gopter.TestParameters, ps *gopter.Properties) {
	t.Helper()
	var buf bytes.Buffer
	ok := ps.Run(gopter.NewFormatedReporter(true, 160, &buf))
	t.Log(buf.String())
	if !ok {
		t.Fatalf("property failed; reproduce with GOPTER_SEED=%d go test -run '^%s$' ./pipeline", params.Seed(), t.Name())
	}
}

// TestPropertyExactlyOnceInKeyOrder: for random streams (keys 1..1000,
// shards 1..8, batch sizes 1..256, 1..4 submitting goroutines), every
// accepted event is handled exactly once by the time Shutdown returns, and
// each key's events are handled in submission order.
func TestPropertyExactlyOnceInKeyOrder(t *testing.T) {
	params := parameters(t, 150)
	ps := gopter.NewProperties(params)
	ps.Property("exactly once, per-key submission order", prop.ForAll(
		func(keys []int, shards, batch, goroutines int) string {
			return checkStream(keys, shards, batch, goroutines)
		},
		gen.SliceOf(gen.IntRange(1, 1000)),
		gen.IntRange(1, 8),
		gen.IntRange(1, 256),
		gen.IntRange(1, 4),
	))
	runProperties(t, params, ps)
}

// checkStream submits one event per element of keys, spread over several
// goroutines, and returns "" when the invariants hold or a description of
// the first violation.
func checkStream(keys []int, shards, batch, goroutines int) string {
	var mu sync.Mutex
	handled := map[string]int{} // event id -> runs
	lastSeq := map[int]int{}    // key -> last handled sequence
	var violation string
	h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		var k, seq int
		fmt.Sscanf(ev.ID, "%d/%d", &k, &seq)
		mu.Lock()
		defer mu.Unlock()
		handled[ev.ID]++
		if seq != lastSeq[k]+1 && violation == "" {
			violation = fmt.Sprintf("key %d: handled seq %d after %d", k, seq, lastSeq[k])
		}
		lastSeq[k] = seq
		return nil, nil
	}
	p, err := pipeline.New(h, pipeline.WithShards(shards), pipeline.WithBatchSize(batch),
		pipeline.WithQueueLimits(max(64, shards), 1<<20))
	if err != nil {
		return err.Error()
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()

	// Per-key submission order across goroutines is defined by a per-key
	// lock held while the sequence number is taken and Submit runs.
	var keyMu [1001]sync.Mutex
	var nextSeq [1001]int
	var wg sync.WaitGroup
	submitErr := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < len(keys); i += goroutines {
				k := keys[i]
				keyMu[k].Lock()
				nextSeq[k]++
				ev := &onceflow.Event{SpecVersion: "1.0", Source: "prop", Type: "t",
					ID: fmt.Sprintf("%d/%d", k, nextSeq[k]), PartitionKey: strconv.Itoa(k)}
				err := p.Submit(context.Background(), ev)
				keyMu[k].Unlock()
				if err != nil {
					submitErr <- err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := p.Shutdown(context.Background()); err != nil {
		return "Shutdown: " + err.Error()
	}
	if err := <-errc; err != nil {
		return "Run: " + err.Error()
	}
	close(submitErr)
	for err := range submitErr {
		return "Submit: " + err.Error()
	}
	if violation != "" {
		return violation
	}
	if len(handled) != len(keys) {
		return fmt.Sprintf("%d distinct events handled, %d submitted", len(handled), len(keys))
	}
	for id, n := range handled {
		if n != 1 {
			return fmt.Sprintf("event %s handled %d times", id, n)
		}
	}
	for k := range 1001 {
		if lastSeq[k] != nextSeq[k] {
			return fmt.Sprintf("key %d: last handled %d of %d", k, lastSeq[k], nextSeq[k])
		}
	}
	return ""
}
