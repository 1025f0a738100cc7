package dedup_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	bolt "go.etcd.io/bbolt"
)

// benchIdentity returns the n-th identity of a stream: a realistic
// source and a random-looking 20-character id.
func benchIdentity(stream, n uint64) onceflow.Identity {
	r := rand.New(rand.NewPCG(stream, n))
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	var id [20]byte
	for i := range id {
		id[i] = alphabet[r.IntN(len(alphabet))]
	}
	return onceflow.Identity{Source: "https://shop.example.com/orders", ID: string(id[:])}
}

func benchRecords(stream, from uint64, n int) []onceflow.Record {
	recs := make([]onceflow.Record, n)
	for i := range recs {
		recs[i] = onceflow.Record{
			ID:      benchIdentity(stream, from+uint64(i)),
			Outcome: onceflow.Outcome{Status: onceflow.StatusDone, Attempts: 1, FirstSeen: time.Unix(1_900_000_000, 0)},
		}
	}
	return recs
}

// BenchmarkDedup measures a lookup answered by each tier, with a full
// window: 9 live slices of 20,000 identities each, filters sized for
// them. The baseline tier=bbolt-raw-get is a bare bbolt View + Get of the
// same keys in the same file, in the bucket known to hold each: what a
// store-hit costs at least.
//
// go test -run '^$' -bench BenchmarkDedup -benchmem ./dedup/
func BenchmarkDedup(b *testing.B) {
	const perSlice, nSlices = 20_000, 8
	clk := newClock()
	path := filepath.Join(b.TempDir(), "state.db")
	opts := []dedup.Option{
		dedup.WithClock(clk.Now), dedup.WithWindow(nSlices * time.Hour), dedup.WithSlices(nSlices),
		dedup.WithCapacity(perSlice * nSlices), dedup.UnsafeNoSync(),
	}
	s, err := dedup.Open(path, opts...)
	if err != nil {
		b.Fatal(err)
	}
	for sl := range nSlices + 1 {
		for i := 0; i < perSlice; i += 1000 {
			commit(b, s, benchRecords(1, uint64(sl*perSlice+i), 1000)...)
		}
		if sl < nSlices {
			clk.Add(time.Hour)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	committed := func(i int) onceflow.Identity { return benchIdentity(1, uint64(i%((nSlices+1)*perSlice))) }

	// run looks up id(0), id(1), ... in s and returns the store reads
	// per lookup, which it also reports.
	run := func(b *testing.B, s *dedup.Store, id func(i int) onceflow.Identity, wantFound bool) float64 {
		b.ReportAllocs()
		i := 0
		before := s.Stats()
		start := time.Now()
		for b.Loop() {
			_, ok, err := s.Lookup(id(i))
			if err != nil || ok != wantFound {
				b.Fatalf("Lookup: %v, %v; want found=%v", ok, err, wantFound)
			}
			i++
		}
		b.ReportMetric(float64(i)/time.Since(start).Seconds(), "events/s")
		st := s.Stats()
		reads := float64(st.StoreReads-before.StoreReads) / float64(i)
		b.ReportMetric(reads, "store-reads/op")
		return reads
	}
	reopen := func(b *testing.B, more ...dedup.Option) *dedup.Store {
		s, err := dedup.Open(path, append(slices.Clone(opts), more...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}
	// classify looks each of candidates up once in s, whose cache holds
	// none of them, and splits them by what answered: the filters alone
	// (a negative), or a store read that found nothing (a false positive
	// of a filter). A tier loops over one of the lists: it must hold at
	// least 1,000 identities.
	classify := func(b *testing.B, s *dedup.Store, candidates []onceflow.Identity, falsePositives bool) []onceflow.Identity {
		var negative, falsePositive []onceflow.Identity
		for _, id := range candidates {
			before := s.Stats()
			if _, found, err := s.Lookup(id); err != nil || found {
				b.Fatalf("Lookup of a new identity: found %v, %v", found, err)
			}
			after := s.Stats()
			switch {
			case after.BloomNegatives == before.BloomNegatives+1:
				negative = append(negative, id)
			case after.StoreReads == before.StoreReads+1 && after.StoreHits == before.StoreHits:
				falsePositive = append(falsePositive, id)
			default:
				b.Fatalf("a lookup of a new identity was answered by neither the filters nor a store read: %+v, then %+v", before, after)
			}
		}
		list, name := negative, "negatives"
		if falsePositives {
			list, name = falsePositive, "false positives"
		}
		if len(list) < 1000 {
			b.Fatalf("%d candidates gave %d %s, want at least 1,000", len(candidates), len(list), name)
		}
		return list
	}
	// Identities are precomputed outside the timed loop.
	ids := func(stream uint64, n int) []onceflow.Identity {
		out := make([]onceflow.Identity, n)
		for i := range out {
			out[i] = benchIdentity(stream, uint64(i))
		}
		return out
	}
	committedIDs := make([]onceflow.Identity, (nSlices+1)*perSlice)
	for i := range committedIDs {
		committedIDs[i] = committed(i)
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(committedIDs), func(i, j int) {
		committedIDs[i], committedIDs[j] = committedIDs[j], committedIDs[i]
	})

	b.Run("tier=cache-hit", func(b *testing.B) {
		s := reopen(b)
		hot := committedIDs[:1000]
		for _, id := range hot {
			_, _, _ = s.Lookup(id) // a store hit caches the outcome
		}
		dedup.WaitCache(s)
		run(b, s, func(i int) onceflow.Identity { return hot[i%len(hot)] }, true)
		if st := s.Stats(); st.CacheHits < st.Lookups-2*uint64(len(hot)) {
			b.Errorf("%d cache hits of %d lookups", st.CacheHits, st.Lookups)
		}
	})
	b.Run("tier=store-hit", func(b *testing.B) {
		s := reopen(b, dedup.WithCacheItems(0))
		run(b, s, func(i int) onceflow.Identity { return committedIDs[i%len(committedIDs)] }, true)
	})
	b.Run("tier=store-miss", func(b *testing.B) {
		// The path of a filter's false positive: identities never
		// committed that a live slice's filter says "maybe" to, so that a
		// store read confirms they are new.
		s := reopen(b, dedup.WithCacheItems(0))
		fp := classify(b, s, ids(3, 1<<20), true)
		if reads := run(b, s, func(i int) onceflow.Identity { return fp[i%len(fp)] }, false); reads != 1 {
			b.Errorf("%.3f store reads per lookup, want 1: the filters no longer say maybe to these", reads)
		}
	})
	b.Run("tier=bbolt-raw-get", func(b *testing.B) {
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		// Each key with the name of the bucket that holds it: the floor of
		// a store read, which dedup reaches through the filters' mask.
		type kb struct{ key, bucket []byte }
		keys := make([]kb, len(committedIDs))
		err = db.View(func(tx *bolt.Tx) error {
			for i, id := range committedIDs {
				keys[i].key = id.AppendKey(nil)
				_ = tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
					if bytes.HasPrefix(name, []byte("o/")) && bk.Get(keys[i].key) != nil {
						keys[i].bucket = bytes.Clone(name)
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		start := time.Now()
		for b.Loop() {
			k := keys[i%len(keys)]
			err := db.View(func(tx *bolt.Tx) error {
				if tx.Bucket(k.bucket).Get(k.key) == nil {
					return fmt.Errorf("key %d not found", i)
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(i)/time.Since(start).Seconds(), "events/s")
	})
	b.Run("tier=bloom-negative", func(b *testing.B) {
		// New identities that every live slice's filter rules out: a
		// probe of each of the 9 filters, no store read. (A lookup does
		// not note its identity; only a commit adds to a filter.)
		s := reopen(b)
		neg := classify(b, s, ids(2, 1<<18), false)
		if reads := run(b, s, func(i int) onceflow.Identity { return neg[i%len(neg)] }, false); reads != 0 {
			b.Errorf("%.3f store reads per lookup, want 0", reads)
		}
		if st := s.Stats(); st.BloomOverflows > 0 || len(st.Slices) != nSlices+1 {
			b.Errorf("%d filter overflows, %d live slices; want 0 and %d", st.BloomOverflows, len(st.Slices), nSlices+1)
		}
	})
}

// BenchmarkCommit measures a group commit of new identities with fsync,
// into a bucket that already holds 200,000, against a bare bbolt Update
// with the same Puts (the same key bytes, values of the same size) into a
// bucket of the same size. layout=unsorted writes the keys in arrival
// order; sorted is what dedup does; sorted-fill90 also sets the bucket's
// FillPercent to 0.9. impl=interleaved makes a dedup commit and a bare one
// in each iteration, alternating which goes first, and reports their
// ratio, which holds when the load of a shared machine changes. Run with a fixed count so that every
// bucket ends the same size:
//
// go test -run '^$' -bench 'BenchmarkCommit/layout=/batch=1000$/' -benchtime 100x -benchmem ./dedup/
// go test -run '^$' -bench 'BenchmarkCommit/layout=/batch=10000$/' -benchtime 10x -benchmem ./dedup/
func BenchmarkCommit(b *testing.B) {
	type layout struct {
		name   string
		sorted bool
		fill   float64
	}
	type run struct {
		l     layout
		batch int
	}
	var runs []run
	for _, l := range []layout{{"sorted", true, 0}, {"unsorted", false, 0}, {"sorted-fill90", true, 0.9}} {
		runs = append(runs, run{l, 1000})
	}
	for _, l := range []layout{{"sorted", true, 0}, {"unsorted", false, 0}} {
		runs = append(runs, run{l, 10_000})
	}
	for _, r := range runs {
		l, batch := r.l, r.batch
		open := func(b *testing.B, impl string) func([]onceflow.Record) {
			if impl == "dedup" {
				var opts []dedup.Option
				if !l.sorted {
					opts = append(opts, dedup.WithUnsortedPuts())
				}
				if l.fill > 0 {
					opts = append(opts, dedup.WithFillPercent(l.fill))
				}
				return dedupCommitter(b, opts)
			}
			return rawCommitter(b, l.sorted, l.fill)
		}
		for _, impl := range []string{"dedup", "bbolt-raw", "interleaved"} {
			b.Run(fmt.Sprintf("layout=%s/batch=%d/impl=%s", l.name, batch, impl), func(b *testing.B) {
				var commitA, commitB func([]onceflow.Record)
				if impl == "interleaved" {
					commitA, commitB = open(b, "dedup"), open(b, "bbolt-raw")
				} else {
					commitA = open(b, impl)
				}
				b.ReportAllocs()
				n := uint64(commitPrefill)
				var inA, inB time.Duration
				timed := func(commit func([]onceflow.Record), in *time.Duration) {
					recs := benchRecords(1, n, batch)
					start := time.Now()
					commit(recs)
					*in += time.Since(start)
				}
				odd := false
				for b.Loop() {
					// Alternate which goes first: the first commit of a
					// pair measurably pays for the other's writeback.
					switch {
					case commitB == nil:
						timed(commitA, &inA)
					case odd:
						timed(commitB, &inB)
						timed(commitA, &inA)
					default:
						timed(commitA, &inA)
						timed(commitB, &inB)
					}
					odd = !odd
					n += uint64(batch)
				}
				events := float64(n - commitPrefill)
				if commitB == nil {
					b.ReportMetric(events/inA.Seconds(), "events/s")
					return
				}
				b.ReportMetric(events/inA.Seconds(), "dedup-events/s")
				b.ReportMetric(events/inB.Seconds(), "raw-events/s")
				b.ReportMetric(inB.Seconds()/inA.Seconds(), "dedup/raw")
			})
		}
	}
}

// BenchmarkCommitLayouts times commits of the same identities into three
// stores of 200,000, side by side in one loop, rotating their order: keys
// sorted (dedup's layout), unsorted, and sorted into leaves filled to 0.9.
// It reports each alternative's time over the sorted one's.
//
// go test -run '^$' -bench 'BenchmarkCommitLayouts/batch=1000$' -benchtime 90x ./dedup/
// go test -run '^$' -bench 'BenchmarkCommitLayouts/batch=10000$' -benchtime 9x ./dedup/
func BenchmarkCommitLayouts(b *testing.B) {
	for _, batch := range []int{1000, 10_000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			commits := []func([]onceflow.Record){
				dedupCommitter(b, nil),
				dedupCommitter(b, []dedup.Option{dedup.WithUnsortedPuts()}),
				dedupCommitter(b, []dedup.Option{dedup.WithFillPercent(0.9)}),
			}
			took := make([]time.Duration, len(commits))
			n := uint64(commitPrefill)
			round := 0
			for b.Loop() {
				for k := range commits {
					i := (k + round) % len(commits)
					recs := benchRecords(1, n, batch)
					start := time.Now()
					commits[i](recs)
					took[i] += time.Since(start)
				}
				n += uint64(batch)
				round++
			}
			b.ReportMetric(float64(n-commitPrefill)/took[0].Seconds(), "sorted-events/s")
			b.ReportMetric(took[1].Seconds()/took[0].Seconds(), "unsorted/sorted")
			b.ReportMetric(took[2].Seconds()/took[0].Seconds(), "fill90/sorted")
		})
	}
}

// commitPrefill is how many identities a BenchmarkCommit bucket holds
// before the measured commits.
const commitPrefill = 200_000

// dedupCommitter opens a disk store holding commitPrefill identities
// (written without fsync) and returns its commit, with fsync.
func dedupCommitter(b *testing.B, opts []dedup.Option) func([]onceflow.Record) {
	path := filepath.Join(b.TempDir(), "state.db")
	clk := newClock()
	opts = append(opts, dedup.WithClock(clk.Now))
	s, err := dedup.Open(path, append(slices.Clone(opts), dedup.UnsafeNoSync())...)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < commitPrefill; i += 1000 {
		commit(b, s, benchRecords(1, uint64(i), 1000)...)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	s, err = dedup.Open(path, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return func(recs []onceflow.Record) { commit(b, s, recs...) }
}

// rawCommitter opens a bare bbolt file holding the keys dedup's prefill
// holds and returns a commit of the same Puts, with fsync.
func rawCommitter(b *testing.B, sorted bool, fill float64) func([]onceflow.Record) {
	db := rawPrefill(b, filepath.Join(b.TempDir(), "raw.db"), commitPrefill, 1000, fill)
	val := make([]byte, 17) // the size of the record dedup stores for these
	return func(recs []onceflow.Record) {
		keys := make([][]byte, len(recs))
		for i := range recs {
			keys[i] = recs[i].ID.AppendKey(nil)
		}
		if sorted {
			slices.SortFunc(keys, bytes.Compare)
		}
		err := db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(rawBucket)
			if fill > 0 {
				bk.FillPercent = fill
			}
			for _, k := range keys {
				if err := bk.Put(k, val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

var rawBucket = []byte("o/raw")

// rawPrefill opens a bare bbolt file holding prefill identity keys, put
// without fsync in sorted batches as dedup's prefill does.
func rawPrefill(b *testing.B, path string, prefill, batch int, fill float64) *bolt.DB {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: time.Second, NoSync: true, FreelistType: bolt.FreelistMapType,
		NoFreelistSync: true, InitialMmapSize: 1 << 30,
	})
	if err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 17)
	for i := 0; i < prefill; i += batch {
		recs := benchRecords(1, uint64(i), batch)
		keys := make([][]byte, len(recs))
		for j := range recs {
			keys[j] = recs[j].ID.AppendKey(nil)
		}
		slices.SortFunc(keys, bytes.Compare)
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(rawBucket)
			if err != nil {
				return err
			}
			if fill > 0 {
				bk.FillPercent = fill
			}
			for _, k := range keys {
				if err := bk.Put(k, val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	db.NoSync = false
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// BenchmarkOpen measures opening a store whose window holds n
// identities: the Bloom filters are rebuilt from the store.
//
// go test -run '^$' -bench BenchmarkOpen -benchtime 5x ./dedup/
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("identities=%d", n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "state.db")
			clk := newClock()
			s, err := dedup.Open(path, dedup.WithClock(clk.Now), dedup.UnsafeNoSync())
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < n; i += 10_000 {
				commit(b, s, benchRecords(1, uint64(i), 10_000)...)
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			var rebuild time.Duration
			for b.Loop() {
				s, err := dedup.Open(path, dedup.WithClock(clk.Now))
				if err != nil {
					b.Fatal(err)
				}
				st := s.Stats()
				if st.RebuildIdentities != uint64(n) {
					b.Fatalf("rebuilt %d identities; want %d", st.RebuildIdentities, n)
				}
				rebuild += st.RebuildDuration
				_ = s.Close()
			}
			b.ReportMetric(float64(rebuild.Nanoseconds())/float64(b.N)/float64(n), "rebuild-ns/identity")
			b.ReportMetric(rebuild.Seconds()/float64(b.N), "rebuild-s")
		})
	}
}
