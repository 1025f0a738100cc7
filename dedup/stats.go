package dedup

import (
	"slices"
	"time"
)

// Stats is a snapshot of a store's counters, since it was opened unless
// noted. Taking it is cheap (atomic loads and 16 short lock holds) and
// safe concurrently with every method, also after Close.
type Stats struct {
	// Lookup tiers. Every lookup is answered by exactly one of: the Bloom
	// filters (BloomNegatives), the cache (CacheHits) or the store
	// (StoreReads, of which StoreHits found the identity).
	Lookups        uint64
	BloomNegatives uint64
	CacheHits      uint64
	StoreReads     uint64
	StoreHits      uint64
	// FalsePositiveRate is the share of store reads that found nothing:
	// (StoreReads-StoreHits)/StoreReads, 0 before any. With filters
	// (Open) these are mostly the filters' false positives: only a commit
	// adds an identity to a filter, but it does so before its
	// transaction, so a lookup during a commit, or after one that
	// failed, also reads the store and finds nothing. NewMemory has no
	// filters: every lookup is a store read, and this is the share of
	// lookups that were of new identities.
	FalsePositiveRate float64

	// Window. Slices lists the live slices, oldest first, with the
	// identities committed in each (counted from the store at open, then
	// by Commit); Identities is their sum.
	Window        time.Duration
	SliceWidth    time.Duration
	Slices        []SliceStats
	Identities    uint64
	ExpiredSlices uint64 // outcome buckets deleted because they expired

	// Bloom filters. BloomFill is the identities noted in the allocated
	// filters (those committed) over what they are sized for.
	// BloomOverflows counts filters chained because one was full: the
	// window holds more identities than WithCapacity, and memory grows to
	// keep the false-positive rate.
	BloomFilters   int
	BloomBytes     int64
	BloomFill      float64
	BloomOverflows uint64

	// Commits.
	Commits          uint64 // Commit calls that committed
	TotalCommits     uint64 // the commit counter stored in the file, across opens
	Records          uint64 // records committed
	StoredRecords    uint64 // records stored as new identities
	DuplicateRecords uint64 // records that found their identity committed
	EventsPerCommit  float64
	CommitLastLatency,
	CommitMeanLatency,
	CommitMaxLatency time.Duration

	// Open.
	RebuildIdentities uint64        // identities added to the filters at open
	RebuildDuration   time.Duration // time the rebuild took
	SlicesRemapped    bool          // the slice width changed since the file was written

	// Store. Durable is false for NewMemory; FileSize is 0 there.
	Durable      bool
	UnsafeNoSync bool
	FileSize     int64
	CacheItems   int // the cache's capacity; 0 when disabled
}

// SliceStats describes one live slice.
type SliceStats struct {
	Start      time.Time // UTC
	Identities uint64
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	_, durable := s.be.(*boltBackend)
	st := Stats{
		Window:            s.opts.window,
		SliceWidth:        s.width,
		ExpiredSlices:     s.st.expiredSlices.Load(),
		BloomFilters:      int(s.filters.count.Load()),
		BloomBytes:        s.filters.bytes.Load(),
		BloomOverflows:    s.filters.chained.Load(),
		Commits:           s.st.commits.Load(),
		TotalCommits:      s.st.totalCommits.Load(),
		Records:           s.st.records.Load(),
		StoredRecords:     s.st.stored.Load(),
		DuplicateRecords:  s.st.duplicates.Load(),
		CommitLastLatency: time.Duration(s.st.latencyLast.Load()),
		CommitMaxLatency:  time.Duration(s.st.latencyMax.Load()),
		RebuildIdentities: s.st.rebuildIDs.Load(),
		RebuildDuration:   time.Duration(s.st.rebuildTime.Load()),
		SlicesRemapped:    s.st.widthMigration.Load(),
		Durable:           durable,
		UnsafeNoSync:      s.opts.noSync && durable,
		FileSize:          s.be.size(),
		CacheItems:        s.opts.cacheItems,
	}
	st.BloomNegatives, st.CacheHits, st.StoreReads, st.StoreHits = s.filters.counters()
	st.Lookups = st.BloomNegatives + st.CacheHits + st.StoreReads
	if added, capacity := s.filters.fill(); capacity > 0 {
		st.BloomFill = float64(added) / float64(capacity)
	}
	if st.StoreReads > 0 {
		st.FalsePositiveRate = float64(st.StoreReads-st.StoreHits) / float64(st.StoreReads)
	}
	if st.Commits > 0 {
		st.EventsPerCommit = float64(st.Records) / float64(st.Commits)
		st.CommitMeanLatency = time.Duration(s.st.latencyTotal.Load() / int64(st.Commits))
	}
	low := s.low(s.maxSlice.Load())
	s.occMu.Lock()
	for slice, n := range s.occupancy {
		if slice >= low {
			st.Slices = append(st.Slices, SliceStats{Start: time.Unix(0, int64(slice)*int64(s.width)).UTC(), Identities: n})
			st.Identities += n
		}
	}
	s.occMu.Unlock()
	slices.SortFunc(st.Slices, func(a, b SliceStats) int { return a.Start.Compare(b.Start) })
	return st
}
