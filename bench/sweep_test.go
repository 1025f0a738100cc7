package bench

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
)

// BenchmarkSweep varies one dimension of the compare workload at a time
// and runs onceflow-memory against the channel baseline (and, for the
// payload, Watermill's router with its id Deduplicator, which copies
// payloads):
//
//   - shards=N: 1, 2, 4, 8 shards (pipeline.WithShards; the baseline's
//     worker count).
//   - dup=R: 0, 10 %, 50 %, 90 % of the deliveries duplicates.
//   - window=1M|10M: the dedup state already holds 1M or 10M identities
//     (committed before the timer starts; see benchWindow) when the
//     compare workload runs through it; heap-MiB is that state's live heap.
//   - payload=B: a JSON data member of 64, 512 or 4096 bytes.
func BenchmarkSweep(b *testing.B) {
	w := lazyWorkload(b, compareSpec(compareDup))
	for _, n := range []int{1, 2, 4, 8} {
		for _, impl := range []string{implOnceflowMemory, implBaseline} {
			b.Run(fmt.Sprintf("shards=%d/impl=%s", n, impl), func(b *testing.B) {
				benchImpl(b, impl, w().input(), config{shards: n})
			})
		}
	}
	for _, dup := range []float64{0, 0.1, 0.5, 0.9} {
		w := lazyWorkload(b, compareSpec(dup))
		for _, impl := range []string{implOnceflowMemory, implBaseline} {
			b.Run(fmt.Sprintf("dup=%g/impl=%s", dup, impl), func(b *testing.B) {
				benchImpl(b, impl, w().input(), config{})
			})
		}
	}
	for _, win := range []struct {
		name string
		n    int
	}{{"1M", 1_000_000}, {"10M", 10_000_000}} {
		for _, impl := range []string{implOnceflowMemory, implBaseline} {
			b.Run(fmt.Sprintf("window=%s/impl=%s", win.name, impl), func(b *testing.B) {
				benchWindow(b, impl, win.n)
			})
		}
	}
	for _, size := range []int{64, 512, 4096} {
		s := compareSpec(compareDup)
		s.Payload = size
		w := lazyWorkload(b, s)
		for _, impl := range []string{implOnceflowMemory, implBaseline, implWatermillDedup} {
			b.Run(fmt.Sprintf("payload=%d/impl=%s", size, impl), func(b *testing.B) {
				benchImpl(b, impl, w().input(), config{})
			})
		}
	}
}

// durableDelay is the group-commit delay of BenchmarkDurable: long enough
// that the size, not the delay, closes a group (events/commit shows what
// each run got).
const durableDelay = 100 * time.Millisecond

// BenchmarkDurable measures durable throughput against the group-commit
// size on the compare workload: onceflow-bbolt with
// pipeline.WithGroupCommit(group, 100ms) (fsync on every commit) against
// bbolt-raw writing group deliveries per Update.
func BenchmarkDurable(b *testing.B) {
	w := lazyWorkload(b, compareSpec(compareDup))
	for _, group := range []int{100, 1000, 10000} {
		for _, impl := range []string{implOnceflowBolt, implBoltRaw} {
			b.Run(fmt.Sprintf("group=%d/impl=%s", group, impl), func(b *testing.B) {
				benchImpl(b, impl, w().input(), config{group: group, delay: durableDelay})
			})
		}
	}
}

// benchWindow runs the compare workload through impl's dedup state after
// filling it, outside the timer, with window identities that the workload
// never repeats: onceflow-memory's store (dedup.NewMemory with
// WithCapacity(window)) through Store.Commit in batches of 10,000, the
// baseline's per-shard maps directly. Each op runs a new workload (seed +
// op number) so that no op repeats an earlier one's identities.
//
// heap-MiB is the live heap the state holds after the ops (window
// identities plus the ops' own, 180k per op), measured through
// runtime/metrics (/gc/heap/live:bytes) after runtime.GC(), less the live
// heap before the fill.
func benchWindow(b *testing.B, impl string, window int) {
	b.ReportAllocs()
	chk := newChecker(compareEvents)
	before := liveHeap()
	c := config{}
	switch impl {
	case implOnceflowMemory:
		c.store = newMemoryStore(b, window)
		defer c.store.Close()
		prefillStore(b, c.store, window)
	case implBaseline:
		c.seen = prefillMaps(window, compareShards)
	default:
		b.Fatalf("no window sweep for %q", impl)
	}
	var m measured
	events, op := 0, uint64(0)
	for b.Loop() {
		b.StopTimer()
		s := compareSpec(compareDup)
		s.Seed += op
		op++
		w := getWorkload(b, s)
		events = len(w.events)
		b.StartTimer()
		m = runOp(b, b, impl, w.input(), chk, c)
	}
	report(b, impl, events, m)
	heap := liveHeap()
	if heap > before {
		b.ReportMetric(float64(heap-before)/(1<<20), "heap-MiB")
	}
	runtime.KeepAlive(c)
}

// prefillStore commits n identities that no workload generates ("pf-"
// ids) into st, as done outcomes.
func prefillStore(b *testing.B, st *dedup.Store, n int) {
	b.Helper()
	var cb onceflow.CommitBatch
	now := time.Now()
	for i := 0; i < n; {
		cb.Reset()
		for ; i < n && len(cb.Records) < 10_000; i++ {
			cb.Records = append(cb.Records, onceflow.Record{
				ID:      onceflow.Identity{Source: source, ID: prefillID(i)},
				Outcome: onceflow.Outcome{Status: onceflow.StatusDone, Attempts: 1, FirstSeen: now},
			})
		}
		if err := st.Commit(&cb); err != nil {
			b.Fatal(err)
		}
	}
}

// prefillMaps returns per-shard maps holding n identities that no workload
// generates, spread evenly.
func prefillMaps(n, shards int) []map[onceflow.Identity]struct{} {
	seen := make([]map[onceflow.Identity]struct{}, shards)
	for i := range seen {
		seen[i] = make(map[onceflow.Identity]struct{})
	}
	for i := range n {
		seen[i%shards][onceflow.Identity{Source: source, ID: prefillID(i)}] = struct{}{}
	}
	return seen
}

func prefillID(i int) string { return "pf-" + strconv.FormatUint(uint64(i)*0x9e3779b97f4a7c15, 16) }
