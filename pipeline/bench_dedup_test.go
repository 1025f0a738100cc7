package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/stage"
	bolt "go.etcd.io/bbolt"
)

// dedupBenchEvents is the stream size of BenchmarkPipeline/dedup=…: 200k by
// default, ONCEFLOW_BENCH_EVENTS (2,000,000 in make bench-durable)
// otherwise.
func dedupBenchEvents(b *testing.B) int {
	if s := os.Getenv("ONCEFLOW_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("ONCEFLOW_BENCH_EVENTS=%q", s)
		}
		return n
	}
	return 200_000
}

// dupStream is n deliveries over 1,000 keys with dup of them repeating one
// of the last 64 events; ids are random 16-hex-digit strings.
func dupStream(n int, dup float64) (evs []*onceflow.Event, unique int) {
	rnd := rand.New(rand.NewPCG(7, 7))
	evs = make([]*onceflow.Event, 0, n)
	for len(evs) < n {
		if len(evs) > 0 && rnd.Float64() < dup {
			evs = append(evs, evs[len(evs)-1-rnd.IntN(min(64, len(evs)))])
			continue
		}
		evs = append(evs, &onceflow.Event{SpecVersion: "1.0", Source: "bench", Type: "t",
			ID: fmt.Sprintf("%016x", rnd.Uint64()), PartitionKey: "k" + strconv.Itoa(rnd.IntN(1000)), Raw: make([]byte, 0)})
		unique++
	}
	return evs, unique
}

// benchmarkDedup runs BenchmarkPipeline/dedup=memory|bbolt/dup=0.1 and, in
// the same run, their baselines: impl=bbolt-raw (raw bbolt Updates of the
// same identity keys, as many per transaction as the durable pipeline's
// mean group commit, sorted, into one bucket that ends the same size) and
// impl=map-baseline (hand-written bounded channels, hash sharding, batches
// of 64, an exact per-shard map).
func benchmarkDedup(b *testing.B) {
	n := dedupBenchEvents(b)
	evs, unique := dupStream(n, 0.1)
	perCommit := 1000.0
	for _, impl := range []string{"memory", "map-baseline", "bbolt", "bbolt-raw"} {
		name := "dedup=" + impl + "/dup=0.1"
		if impl == "map-baseline" || impl == "bbolt-raw" {
			name = "impl=" + impl + "/dup=0.1"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				switch impl {
				case "memory", "bbolt":
					st := runDedupPipeline(b, impl, evs, unique)
					if impl == "bbolt" && st.Commits > 0 {
						perCommit = st.EventsPerCommit()
						b.ReportMetric(perCommit, "events/commit")
					}
				case "map-baseline":
					if got := runMapBaseline(evs, 2); got != unique {
						b.Fatalf("map baseline handled %d unique events, want %d", got, unique)
					}
				case "bbolt-raw":
					runBoltRaw(b, evs, int(perCommit+0.5))
					b.ReportMetric(perCommit, "events/commit")
				}
			}
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func runDedupPipeline(b *testing.B, impl string, evs []*onceflow.Event, unique int) pipeline.Stats {
	var store *dedup.Store
	var err error
	if impl == "memory" {
		store, err = dedup.NewMemory()
	} else {
		store, err = dedup.Open(filepath.Join(b.TempDir(), "state.db"))
	}
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	p, err := pipeline.New(nop, pipeline.WithStore(store), pipeline.WithShards(2))
	if err != nil {
		b.Fatal(err)
	}
	drainBatches(b, p, evs)
	st := p.Stats()
	if st.Handled != uint64(unique) || st.Acked != uint64(len(evs)) {
		b.Fatalf("handled %d of %d unique events, acked %d of %d", st.Handled, unique, st.Acked, len(evs))
	}
	return st
}

// runMapBaseline is the hand-written reference: the producer hashes each
// key to a shard and hands full batches of 64 over a bounded channel; each
// shard keeps an exact map of the identities it has seen and calls the
// handler for new ones. It returns the number of events handled.
func runMapBaseline(evs []*onceflow.Event, shards int) int {
	in := make([]chan []*onceflow.Event, shards)
	counts := make([]int, shards)
	var wg sync.WaitGroup
	for i := range in {
		in[i] = make(chan []*onceflow.Event, 16)
		wg.Go(func() {
			seen := make(map[onceflow.Identity]struct{})
			var fx onceflow.Effects
			for batch := range in[i] {
				for _, ev := range batch {
					id := ev.Identity()
					if _, ok := seen[id]; ok {
						continue
					}
					seen[id] = struct{}{}
					fx.Reset(ev, nil)
					_, _ = nop(context.Background(), ev, &fx)
					counts[i]++
				}
			}
		})
	}
	cur := make([][]*onceflow.Event, shards)
	for _, ev := range evs {
		i := stage.Shard(ev.Key(), shards)
		if cur[i] = append(cur[i], ev); len(cur[i]) == 64 {
			in[i] <- cur[i]
			cur[i] = make([]*onceflow.Event, 0, 64)
		}
	}
	for i := range in {
		in[i] <- cur[i]
		close(in[i])
	}
	wg.Wait()
	total := 0
	for _, c := range counts {
		total += c
	}
	return total
}

// runBoltRaw puts every unique identity key once, perTx keys per sorted
// Update, into a fresh bbolt file with dedup's options and fsync on.
func runBoltRaw(b *testing.B, evs []*onceflow.Event, perTx int) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{
		FreelistType: bolt.FreelistMapType, NoFreelistSync: true, InitialMmapSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	seen := make(map[onceflow.Identity]bool, len(evs))
	value := make([]byte, 24) // about a stored outcome record
	keys := make([][]byte, 0, perTx)
	flush := func() {
		slices.SortFunc(keys, func(x, y []byte) int { return compareBytes(x, y) })
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("o"))
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := bk.Put(k, value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		keys = keys[:0]
	}
	for _, ev := range evs {
		id := ev.Identity()
		if seen[id] {
			continue
		}
		seen[id] = true
		if keys = append(keys, id.AppendKey(nil)); len(keys) == perTx {
			flush()
		}
	}
	if len(keys) > 0 {
		flush()
	}
}

func compareBytes(x, y []byte) int {
	switch {
	case string(x) < string(y):
		return -1
	case string(x) > string(y):
		return 1
	}
	return 0
}
