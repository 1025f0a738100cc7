package dedup

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// BenchmarkIndex measures what one new identity costs the memory store's
// index, against the plain map the per-shard baseline keeps: 180,000
// random identity keys (as many as BenchmarkPipeline/dedup=memory
// stores), each looked up and inserted into a map that grows from empty,
// as a commit does. key=string is a map by full key; key=hash is the
// memory backend's partitioned, hash-keyed index (memPart), lock
// included. One op fills a fresh index; ns/key is per identity.
func BenchmarkIndex(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, 180_000)
	hashes := make([]uint64, len(keys))
	for i := range keys {
		keys[i] = fmt.Sprintf("\x05bench%016x", rnd.Uint64())
		hashes[i] = xxhash.Sum64String(keys[i])
	}
	v := make([]byte, 24)
	b.Run("key=string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := make(map[string]memEntry)
			for _, k := range keys {
				if _, ok := m[k]; !ok {
					m[k] = memEntry{slice: 1, v: v}
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/key")
	})
	b.Run("key=hash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var parts [memParts]memPart
			for i, k := range keys {
				pt := &parts[hashes[i]&(memParts-1)]
				pt.mu.Lock()
				if _, ok := pt.get(k, hashes[i]); !ok {
					if err := pt.set(hashes[i], memEntry{slice: 1, key: k, v: v}); err != nil {
						b.Fatal(err)
					}
				}
				pt.mu.Unlock()
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/key")
	})
}
