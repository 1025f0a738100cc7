package bench

import (
	"testing"
	"time"
)

// TestImplementations runs every implementation of BenchmarkCompare once
// on a small workload and checks that each handles every unique event as
// it should (Watermill's default Deduplicator excepted: see
// TestWatermillDefaultDeduplicatorDropsUniqueEvents).
func TestImplementations(t *testing.T) {
	s := spec{Events: 20_000, Keys: compareKeys, Dup: 0.3, Payload: defaultPayload, Seed: *seedFlag}
	w := getWorkload(t, s)
	for _, impl := range []string{
		implOnceflowMemory, implOnceflowMemorySubmit, implBaseline,
		implOnceflowBolt, implBoltRaw,
		implWatermillDedup, implWatermill,
	} {
		t.Run("impl="+impl, func(t *testing.T) {
			chk := newChecker(w.unique())
			m := runOp(t, noTimer{}, impl, w.input(), chk, config{group: 500, delay: 2 * time.Millisecond})
			if m.tally.unique != w.unique() {
				t.Fatalf("handled %d unique events, want %d", m.tally.unique, w.unique())
			}
		})
	}
}
