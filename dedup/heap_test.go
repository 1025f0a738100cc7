package dedup_test

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"

	"github.com/onceflow/onceflow/dedup"
)

// liveHeap returns the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestWindowHeap10M measures the heap of a full default window (10M
// identities over 8 slices: the filters of all 9 live slices) and a full
// default cache (100,000 outcomes), against the budget of 64 MiB.
//
// The filters are allocated at their full size when a slice gets its
// first identity, so the quick run (the default) touches every filter and
// fills the cache (by looking up committed identities: commits do not); ONCEFLOW_HEAVY=1 also adds 10M identities per window to
// the filters and checks that none overflows.
//
// ONCEFLOW_HEAVY=1 go test -run TestWindowHeap10M -v ./dedup/
func TestWindowHeap10M(t *testing.T) {
	const capacity, budget = 10_000_000, 64 << 20
	cacheItems := 100_000
	heavy := os.Getenv("ONCEFLOW_HEAVY") == "1"
	if raceEnabled && !heavy {
		// The race detector makes the cache fill slow and the heap
		// unrepresentative: check the mechanics on a tenth of it.
		cacheItems = 10_000
	}
	base := liveHeap()

	clk := newClock()
	// The store file is outside the Go heap (bbolt maps it).
	s, err := dedup.Open(filepath.Join(t.TempDir(), "state.db"),
		dedup.WithClock(clk.Now), dedup.WithCapacity(capacity), dedup.WithCacheItems(cacheItems), dedup.UnsafeNoSync())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	empty := liveHeap()

	if heavy {
		dedup.FillFilters(s, capacity/8)
	} else {
		dedup.TouchFilters(s)
	}
	filters := liveHeap()
	if st := s.Stats(); st.BloomOverflows != 0 {
		t.Errorf("%d filter overflows for a window filled to its capacity", st.BloomOverflows)
	} else if heavy {
		t.Logf("filters filled to %.3f of their capacity", st.BloomFill)
	}

	// Fill the cache: commit as many identities and look each up once
	// (the store read caches it), letting ristretto apply each batch
	// before the next so that none is dropped. (In the heavy run they
	// overfill the current slice: its chained filters count in the
	// cache's figure.)
	for i := 0; i < cacheItems; i += 1000 {
		recs := benchRecords(9, uint64(i), 1000)
		for j := range recs {
			recs[j].Outcome.Result = []byte(`{"ok":true}`)
		}
		commit(t, s, recs...)
		for _, r := range recs {
			if _, ok, err := s.Lookup(r.ID); err != nil || !ok {
				t.Fatalf("Lookup(%v) after its commit = %v, %v", r.ID, ok, err)
			}
		}
		dedup.WaitCache(s)
	}
	full := liveHeap()

	st := s.Stats()
	cached := 0
	for i := range 1000 {
		id := benchIdentity(9, uint64(i*cacheItems/1000))
		if _, ok, _ := s.Lookup(id); ok {
			cached++
		}
	}
	st2 := s.Stats()
	hitRatio := float64(st2.CacheHits-st.CacheHits) / 1000

	filterBytes := int64(filters) - int64(empty)
	cacheBytes := int64(full) - int64(filters)
	total := int64(full) - int64(base)
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	t.Logf("heavy=%v race=%v: filters %.1f MiB (%d filters, %d bitset bytes, %.2f B per identity of capacity), "+
		"cache %.1f MiB for %d items (%.0f B per item, %.0f%% of sampled lookups hit), empty store %.1f MiB, total %.1f MiB of %d MiB",
		heavy, raceEnabled, mib(filterBytes), st.BloomFilters, st.BloomBytes, float64(filterBytes)/capacity,
		mib(cacheBytes), cacheItems, float64(cacheBytes)/float64(cacheItems), 100*hitRatio,
		mib(int64(empty)-int64(base)), mib(total), budget>>20)
	// The budget covers everything the store holds on the heap, the
	// empty store included (ristretto's 1M counters are allocated at open).
	if total > budget && !raceEnabled {
		t.Errorf("store with full filters and cache = %.1f MiB; budget %d MiB", mib(total), budget>>20)
	}
	if heavy {
		// The false-positive rate of a full window: lookups of new
		// identities that read the store.
		const n = 100_000
		before := s.Stats()
		for i := range n {
			if _, ok, _ := s.Lookup(benchIdentity(10, uint64(i))); ok {
				t.Fatalf("a new identity was found")
			}
		}
		after := s.Stats()
		fpr := float64(after.StoreReads-before.StoreReads) / n
		t.Logf("false-positive rate of a full window: %.4f (target 0.01)", fpr)
		if fpr > 0.015 {
			t.Errorf("false-positive rate %.4f; target 0.01", fpr)
		}
	}
	if cached < 900 {
		t.Errorf("only %d of 1000 sampled committed identities found", cached)
	}
}
