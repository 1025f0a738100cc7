package dedup

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// WaitCache blocks until the cache has applied earlier Sets (ristretto
// applies them asynchronously).
func WaitCache(s *Store) { s.cache.wait() }

// WithUnsortedPuts writes a commit's records in batch order instead of key
// order, for BenchmarkCommit/layout=unsorted.
func WithUnsortedPuts() Option {
	return optionFunc(func(o *options) { o.unsortedPuts = true })
}

// WithFillPercent sets the FillPercent of the outcome buckets.
func WithFillPercent(f float64) Option {
	return optionFunc(func(o *options) { o.fillPercent = f })
}

// FillFilters adds perSlice synthetic identities to the filters of each
// live slice, as a full window would, without touching the store.
func FillFilters(s *Store, perSlice int) {
	cur := s.current()
	var key [16]byte
	for j := uint64(0); j <= s.n && j <= cur; j++ {
		binary.BigEndian.PutUint64(key[:8], cur-j)
		for i := range perSlice {
			binary.BigEndian.PutUint64(key[8:], uint64(i))
			s.filters.add(s.filters.part(xxhash.Sum64(key[:])), key[:], cur-j)
		}
	}
}

// TouchFilters allocates the first filter of every partition and live
// slice, which is what a full window costs in memory.
func TouchFilters(s *Store) {
	cur := s.current()
	for j := uint64(0); j <= s.n && j <= cur; j++ {
		for p := range s.filters.parts {
			s.filters.add(&s.filters.parts[p], []byte{byte(p)}, cur-j)
		}
	}
}
