package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/stage"
)

// benchEvents is the number of events one benchmark op submits and drains.
const benchEvents = 1 << 16

func benchStream(n, keys int) []*onceflow.Event {
	evs := make([]*onceflow.Event, n)
	for i := range evs {
		k := strconv.Itoa(i * 7919 % keys)
		evs[i] = &onceflow.Event{SpecVersion: "1.0", Source: "bench", Type: "t",
			ID: strconv.Itoa(i), PartitionKey: k, Raw: make([]byte, 0, 300)[:0]}
	}
	return evs
}

// BenchmarkPipeline measures the pass-through pipeline (no store: routing,
// batching, the handler call and the acknowledgement) against a
// hand-written baseline in the same run: bounded channels, hash sharding,
// batches handed over whole, the same no-op handler. One op submits and
// drains 65,536 events over 1,000 keys.
func BenchmarkPipeline(b *testing.B) {
	benchmarkDedup(b)
	benchmarkOrder(b)
	evs := benchStream(benchEvents, 1000)
	for _, impl := range []string{"pipeline", "pipeline-submitbatch", "baseline"} {
		for _, shards := range []int{1, 2, 4} {
			for _, batch := range []int{1, 64} {
				b.Run(fmt.Sprintf("impl=%s/shards=%d/batch=%d", impl, shards, batch), func(b *testing.B) {
					b.ReportAllocs()
					run := map[string]func(*testing.B, []*onceflow.Event, int, int){
						"pipeline": runPipeline, "pipeline-submitbatch": runPipelineBatch, "baseline": runBaseline,
					}[impl]
					for b.Loop() {
						run(b, evs, shards, batch)
					}
					b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
				})
			}
		}
	}
}

// BenchmarkPipelineOrder measures sequence ordering against arrival order
// on the same shuffled input (each event moved up to 63 places; 1,000 keys,
// sequences contiguous per key), both through the in-memory dedup store.
// Results appear as BenchmarkPipeline/order=….
func benchmarkOrder(b *testing.B) {
	const n = 1 << 16
	evs := make([]*onceflow.Event, 0, n)
	for s := 1; len(evs) < n; s++ {
		for k := 0; k < 1000 && len(evs) < n; k++ {
			key := "k" + strconv.Itoa(k)
			ev := &onceflow.Event{SpecVersion: "1.0", Source: "bench", Type: "t", PartitionKey: key,
				ID: key + "/" + strconv.Itoa(s), Sequence: uint64(s)}
			ev.Raw = ev.AppendJSON(nil)
			evs = append(evs, ev)
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range evs {
		j := i + rnd.IntN(min(64, len(evs)-i))
		evs[i], evs[j] = evs[j], evs[i]
	}
	for _, order := range []string{"arrival", "sequence"} {
		b.Run("order="+order, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				store, err := dedup.NewMemory(dedup.WithCapacity(4 * n))
				if err != nil {
					b.Fatal(err)
				}
				opts := []pipeline.Option{pipeline.WithStore(store), pipeline.WithShards(2)}
				if order == "sequence" {
					opts = append(opts, pipeline.WithSequenceOrder(pipeline.SequenceOptions{}))
				}
				p, err := pipeline.New(nop, opts...)
				if err != nil {
					b.Fatal(err)
				}
				drainBatches(b, p, evs)
				if st := p.Stats(); st.Held != 0 || st.Handled != uint64(len(evs)) {
					b.Fatalf("stats %+v: want every event handled, none held", st)
				}
				store.Close()
			}
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func runPipeline(b *testing.B, evs []*onceflow.Event, shards, batch int) {
	p, err := pipeline.New(nop, pipeline.WithShards(shards), pipeline.WithBatchSize(batch),
		pipeline.WithQueueLimits(shards*baselineQueue, 64<<20))
	if err != nil {
		b.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()
	ctx := context.Background()
	for _, ev := range evs {
		if err := p.Submit(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// runPipelineBatch submits through SubmitBatch, 64 events per call.
func runPipelineBatch(b *testing.B, evs []*onceflow.Event, shards, batch int) {
	p, err := pipeline.New(nop, pipeline.WithShards(shards), pipeline.WithBatchSize(batch),
		pipeline.WithQueueLimits(shards*baselineQueue, 64<<20))
	if err != nil {
		b.Fatal(err)
	}
	drainBatches(b, p, evs)
}

// drainBatches runs p, submits evs through SubmitBatch 64 at a time, and
// shuts p down, failing b on any error.
func drainBatches(b *testing.B, p *pipeline.Pipeline, evs []*onceflow.Event) {
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()
	ctx := context.Background()
	for i := 0; i < len(evs); i += 64 {
		if err := p.SubmitBatch(ctx, evs[i:min(i+64, len(evs))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// runBaseline is the hand-written reference: the producer hashes each key
// to a shard, fills that shard's batch, and sends full batches over a
// bounded channel to the shard's goroutine, which calls the handler on each
// event. Emptied batches come back over a second channel to be reused.
func runBaseline(b *testing.B, evs []*onceflow.Event, shards, batch int) {
	type work = []*onceflow.Event
	in := make([]chan work, shards)
	free := make([]chan work, shards)
	var wg sync.WaitGroup
	var h stage.Func = nop
	for i := range in {
		in[i] = make(chan work, 16)
		free[i] = make(chan work, 17)
		wg.Go(func() {
			var fx onceflow.Effects
			ctx := context.Background()
			for w := range in[i] {
				for _, ev := range w {
					fx.Reset(ev, nil)
					if _, err := h(ctx, ev, &fx); err != nil {
						b.Error(err)
					}
				}
				select {
				case free[i] <- w[:0]:
				default: // enough spare batches
				}
			}
		})
	}
	cur := make([]work, shards)
	take := func(i int) work {
		select {
		case w := <-free[i]:
			return w
		default:
			return make(work, 0, batch)
		}
	}
	for i := range cur {
		cur[i] = take(i)
	}
	for _, ev := range evs {
		i := stage.Shard(ev.Key(), shards)
		cur[i] = append(cur[i], ev)
		if len(cur[i]) == batch {
			in[i] <- cur[i]
			cur[i] = take(i)
		}
	}
	for i := range in {
		if len(cur[i]) > 0 {
			in[i] <- cur[i]
		}
		close(in[i])
	}
	wg.Wait()
}

// baselineQueue is the most events per shard the baseline holds between
// producer and worker (16 queued batches of 64); the pipeline benchmarks
// get the same bound.
const baselineQueue = 16 * 64
