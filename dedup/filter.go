package dedup

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/bits-and-blooms/bloom/v3"
)

// numPartitions is how many independently locked sets of Bloom filters
// a store keeps. An identity belongs to the partition chosen by the top
// bits of its hash.
//
// Why not one set of filters per pipeline shard, as DESIGN.md sketches:
// the store does not know the pipeline's shard count or key function (an
// identity's shard depends on its partition key, which the store never
// sees), and a store reopened by a pipeline with another shard count must
// rebuild its filters from the stored identities alone. Partitioning by
// identity hash gives the same property that mattered (shard workers
// rarely contend on one mutex: 16 partitions for a handful of workers)
// while the store stays self-contained.
const numPartitions = 16

// filterSet is the Bloom tier: for each partition, one chain of filters
// per live time slice. bloom/v3 filters have no internal locking; every
// access to a partition's filters holds its mutex.
type filterSet struct {
	ring    uint64  // slots per partition: slices+1, the live slices
	perCap  uint    // identities per filter, before chaining
	fpr     float64 // false-positive rate of a slice's first filter
	parts   [numPartitions]partition
	chained atomic.Uint64 // filters chained because one was full
	bytes   atomic.Int64  // bytes of all filters' bitsets
	count   atomic.Int64  // filters allocated
}

// partition is one independently locked share of the filters, with the
// lookup counters of the identities that hash to it, so that concurrent
// lookups rarely write the same cache line.
type partition struct {
	mu        sync.Mutex
	slots     []slot // index: slice % ring; mu must be held
	negatives uint64 // lookups answered by the filters; mu must be held

	cacheHits  atomic.Uint64
	storeReads atomic.Uint64
	storeHits  atomic.Uint64
	_          [64]byte // keep partitions on separate cache lines
}

// slot holds the filters of one time slice. Two slices that share a slot
// are ring (= slices+1) apart, so the older one has expired.
type slot struct {
	slice uint64
	chain []*counted // nil when the slot holds nothing
}

// counted is a filter with the number of identities added to it.
type counted struct {
	f   *bloom.BloomFilter
	n   uint // identities added
	cap uint // n at which the next identity goes to a fresh filter
}

func newFilterSet(capacity, slices int, fpr float64) *filterSet {
	// A partition receives a binomial share of a slice's identities:
	// four standard deviations over the mean keep a window filled to its
	// capacity from overflowing (1.4% more memory at 10M, 8 slices).
	mean := float64(capacity) / float64(slices) / numPartitions
	fs := &filterSet{
		ring:   uint64(slices) + 1,
		perCap: uint(math.Ceil(mean + 4*math.Sqrt(mean) + 1)),
		// A lookup probes the filters of slices+1 live slices; their
		// false-positive rates add up.
		fpr: fpr / float64(slices+1),
	}
	for i := range fs.parts {
		fs.parts[i].slots = make([]slot, fs.ring)
	}
	return fs
}

// part returns the partition of an identity with hash h.
func (fs *filterSet) part(h uint64) *partition { return &fs.parts[h>>60] }

// lookup probes the live slices [cur-n, cur] for key and returns a mask
// with bit j set when slice cur-j may hold it; 0 (a Bloom negative,
// counted) when none may. It adds nothing: only commit does.
func (fs *filterSet) lookup(p *partition, key []byte, cur uint64, n int) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	mask := fs.testLocked(p, key, cur, 0, n)
	if mask == 0 {
		p.negatives++
	}
	return mask
}

// commit adds key to slice cur and returns the mask of the live slices
// [cur-n, cur] that may have held it before (bit 0: slice cur).
func (fs *filterSet) commit(p *partition, key []byte, cur uint64, n int) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	mask := fs.testLocked(p, key, cur, 1, n)
	if fs.addLocked(p, key, cur) {
		mask |= 1
	}
	return mask
}

// add adds key to slice.
func (fs *filterSet) add(p *partition, key []byte, slice uint64) {
	p.mu.Lock()
	fs.addLocked(p, key, slice)
	p.mu.Unlock()
}

// testLocked returns the mask of slices cur-j, j in [from, n], whose
// filters may hold key. p.mu must be held.
func (fs *filterSet) testLocked(p *partition, key []byte, cur uint64, from, n int) uint64 {
	var mask uint64
	for j := from; j <= n && uint64(j) <= cur; j++ {
		s := cur - uint64(j)
		sl := &p.slots[s%fs.ring]
		if sl.slice != s {
			continue
		}
		for _, c := range sl.chain {
			if c.f.Test(key) {
				mask |= 1 << j
				break
			}
		}
	}
	return mask
}

// addLocked adds key to the filters of slice and reports whether they may
// have held it before (true also for a slice that has expired, where it
// adds nothing). p.mu must be held.
func (fs *filterSet) addLocked(p *partition, key []byte, slice uint64) (maybe bool) {
	sl := &p.slots[slice%fs.ring]
	if sl.slice != slice || sl.chain == nil {
		if sl.chain != nil && sl.slice > slice {
			return true // slice is older than the slot's and has expired
		}
		fs.release(sl)
		sl.slice = slice
		sl.chain = []*counted{fs.newFilter(0)}
	}
	last := sl.chain[len(sl.chain)-1]
	for _, c := range sl.chain[:len(sl.chain)-1] {
		if c.f.Test(key) {
			return true
		}
	}
	if last.n >= last.cap {
		if last.f.Test(key) {
			return true
		}
		// Full: overfilling would raise the false-positive rate sharply
		// (15.7% at twice the capacity for a 1% filter), so chain a
		// fresh filter with half the rate of the previous one; the
		// rates of a chain then add up to at most twice the first's.
		last = fs.newFilter(len(sl.chain))
		sl.chain = append(sl.chain, last)
		fs.chained.Add(1)
	}
	if last.f.TestOrAdd(key) {
		return true
	}
	last.n++
	return false
}

// newFilter allocates the i-th filter of a slice's chain.
func (fs *filterSet) newFilter(i int) *counted {
	p := max(fs.fpr/math.Exp2(float64(i)), 1e-12)
	f := bloom.NewWithEstimates(fs.perCap, p)
	fs.bytes.Add(filterBytes(f))
	fs.count.Add(1)
	return &counted{f: f, cap: fs.perCap}
}

// release drops the filters of a slot.
func (fs *filterSet) release(sl *slot) {
	for _, c := range sl.chain {
		fs.bytes.Add(-filterBytes(c.f))
		fs.count.Add(-1)
	}
	sl.chain = nil
}

// drop releases the filters of every slice below low, so that their
// memory is freed as soon as they expire.
func (fs *filterSet) drop(low uint64) {
	for i := range fs.parts {
		p := &fs.parts[i]
		p.mu.Lock()
		for j := range p.slots {
			if sl := &p.slots[j]; sl.chain != nil && sl.slice < low {
				fs.release(sl)
			}
		}
		p.mu.Unlock()
	}
}

// filterBytes is the size of f's bitset.
func filterBytes(f *bloom.BloomFilter) int64 { return int64((f.Cap()+63)/64) * 8 }

// fill returns the identities added to the allocated filters and their
// capacity.
func (fs *filterSet) fill() (added, capacity uint64) {
	for i := range fs.parts {
		p := &fs.parts[i]
		p.mu.Lock()
		for _, sl := range p.slots {
			for _, c := range sl.chain {
				added += uint64(c.n)
				capacity += uint64(c.cap)
			}
		}
		p.mu.Unlock()
	}
	return added, capacity
}

// counters sums the lookup counters of all partitions.
func (fs *filterSet) counters() (negatives, cacheHits, storeReads, storeHits uint64) {
	for i := range fs.parts {
		p := &fs.parts[i]
		p.mu.Lock()
		negatives += p.negatives
		p.mu.Unlock()
		cacheHits += p.cacheHits.Load()
		storeReads += p.storeReads.Load()
		storeHits += p.storeHits.Load()
	}
	return negatives, cacheHits, storeReads, storeHits
}
