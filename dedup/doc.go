// Package dedup is onceflow's deduplicating store. It remembers the
// outcome of every event identity committed within a time window, and
// commits each event's outcome together with its handler's effects
// (state writes, outbox messages, dead letters) in one transaction.
// [Open] keeps everything in a bbolt file; [NewMemory] keeps it in memory,
// with the same contract and no durability. The memory store is an exact
// map, so it answers lookups directly: the Bloom filters and the cache
// described below exist only in front of the bbolt file, where they save
// reads. It keeps outcomes in 64 partitions, each a map keyed by the
// 64-bit hash of the identity key (entries keep the full key and are
// checked against it; an identity whose hash is taken waits in a side map
// by full key, so the index stays exact), each under its own lock, so that
// lookups proceed while a commit writes; a commit of outcomes only takes
// each partition's lock once. A [*Store] satisfies the
// pipeline package's Store interface; dedup does not import pipeline.
//
// # Guarantees
//
//   - Durable before acknowledged. Commit returns after its transaction
//     is fsync'd (unless [UnsafeNoSync]); an error means nothing of the
//     batch was written, and the batch is unchanged.
//   - The first outcome wins. An identity (source + id) committed within
//     the window keeps its first outcome. A later copy, in a later commit
//     or after the first in the same batch, is not stored: Commit rewrites its
//     record to the stored outcome with Duplicate set and discards its
//     effects. State writes, outbox messages and dead letters therefore
//     happen exactly once per identity within the window, across crashes:
//     a commit is one transaction, and a copy redelivered after a crash
//     finds the outcome its first copy committed. Two exceptions are
//     explicit in the record: Redrive replaces a dead-lettered outcome and
//     Release a held one, once.
//   - No false "seen". A positive answer of Lookup has compared the full
//     identity with a stored record. The Bloom filters and the cache only
//     save work: a hash collision or a false positive costs a store read,
//     never a dropped event.
//   - No false "new" within the window. A Lookup answered "not committed"
//     without I/O relies on filters that hold every identity committed in
//     the live slices: Commit adds identities to them before writing, and
//     Open rebuilds them from the store.
//   - A lookup is not a claim. Lookup writes nothing, not even to the
//     filters: an event whose handler failed, or whose commit did not
//     happen, is looked up as not committed again and processed.
//   - Outbox messages are kept, in commit order under increasing sequence
//     numbers, until DeleteOutbox: delivery is at least once, carrying the
//     idempotency key the handler gave each message.
//
// # Tiers
//
// Lookup asks three tiers in turn; each answers only what it can know.
//
//  1. Bloom filters (bits-and-blooms/bloom/v3), one chain per time slice
//     in each of 16 partitions chosen by the identity's hash. If no live
//     slice's filter may hold the identity, Lookup answers "not
//     committed" without I/O. Commit adds each identity to the current
//     slice's filter before it writes, and reads the current slice only
//     when that filter may have held the identity already, so that a
//     new identity costs one write and no read. The partitions are locked separately, so that
//     concurrent lookups rarely wait; they are not the pipeline's shards,
//     because the store neither knows the pipeline's shard count nor the
//     partition keys, and a store reopened under another shard count must
//     rebuild its filters from stored identities alone.
//  2. The cache (ristretto/v2) of recent outcomes: those found by a store
//     read, so that the copies after the first duplicate of a burst are
//     answered from memory. Commits do not fill it: a cache Set costs the
//     committer, the one goroutine every event waits for, about 1 µs, and
//     ristretto's own goroutine twice that, for every new identity, while
//     the store read it would save is paid only by duplicates, on the
//     worker that looks them up (decisions.md: onceflow-bbolt +17 %
//     events/s on the 10 % duplicates workload). It is advisory: ristretto drops Sets
//     under load and rejects new keys when full, so a miss falls through
//     to the store; a hit is trusted only if its full identity key matches
//     and its slice is live.
//  3. The store, which reads only the buckets of the slices whose filters
//     said "maybe" and compares the full identity key.
//
// Costs per lookup on the shared 2-vCPU development VM (BenchmarkDedup:
// 9 live slices of 20,000 identities, filters sized for them; medians of
// the 6 runs of make bench on 2026-11-28, under load, so read them as
// ratios; BENCHMARKS.md has the latest):
//
//	tier=bloom-negative   1.0 µs   0 allocs   probes 9 slices' filters, no store read
//	tier=cache-hit        1.6 µs   0 allocs   filters say "maybe", ristretto answers
//	tier=store-miss       4.3 µs  10 allocs   a filter's false positive, refuted by a store read
//	tier=store-hit        4.9 µs  10 allocs   found in bbolt (cache disabled)
//	tier=bbolt-raw-get    2.4 µs   8 allocs   baseline: bare View + Get in the right bucket
//
// (go test -run '^$' -bench BenchmarkDedup -count 6 -benchmem ./dedup/)
//
// A negative answer costs a probe of every live slice's filter, each a
// murmur3 hash and one or two cache misses (tier=bloom-negative above
// probes 9: the 8 slices of the window and the current one): more slices
// make expiry finer and lookups slower.
//
// Stats reports each tier's count, the measured false-positive rate and
// the window's occupancy.
//
// # Window and memory
//
// The window ([WithWindow], default 7 days) is cut into n slices
// ([WithSlices], default 8) of window/n each; slice index = Unix time /
// (window/n). A commit stores its identities in the bucket of the current
// slice; the live slices are the current one and the n before it, so an
// identity is remembered for at least the window and at most one slice
// longer. Expiry is exact to the slice: when the clock enters slice s,
// slice s-n-1 is forgotten by every method at once; its bucket is deleted
// (DeleteBucket) by the next commit, or at Open, and its filters are
// dropped. The current slice never goes back, even if the clock does.
// A store reopened with another slice width moves its live identities,
// once, into the new slices that keep each for at least its new window
// (Stats.SlicesRemapped).
//
// Memory is set by [WithCapacity] (identities per window, default 10M),
// [WithFalsePositiveRate] (default 1%) and [WithCacheItems] (default
// 100,000). Each slice's filters are sized for capacity/n identities at a
// rate of p/(n+1), because a lookup probes n+1 slices. A filter that fills
// up gets a fresh one chained behind it at half the rate, counted in
// Stats.BloomOverflows: more identities than the capacity cost memory,
// not accuracy. Measured with TestWindowHeap10M (runtime/metrics
// /gc/heap/live:bytes) for the defaults:
//
//	Bloom filters, 9 live slices        20.3 MiB  2.1 bytes per identity of capacity
//	cache, 100,000 outcomes             26.0 MiB  ~270 bytes per item (53-byte key, 11-byte result)
//	empty store (ristretto's counters)   4.3 MiB
//	total                               50.5 MiB  (budget: 64 MiB)
//
// With all 10M identities added (ONCEFLOW_HEAVY=1), no filter overflows
// and the measured false-positive rate of new identities is 0.94%.
// (go test -run TestWindowHeap10M -v ./dedup/; its figures are not
// representative under -race, where it checks a tenth of the cache.)
//
// Open rebuilds the filters by scanning the live buckets, about 0.4 µs
// per identity: 0.37 s for a window of 1M identities, 23 ms for 100,000
// (go test -run '^$' -bench BenchmarkOpen -benchtime 3x ./dedup/), so
// about 4 s for a full 10M window. Stats reports the
// rebuild's size and duration. (A checksummed filter snapshot written at
// Close and validated against the commit counter would avoid the scan; it
// is not written yet.)
//
// # Store layout
//
// One bbolt file: a bucket per slice for outcomes ("o/" + the 8-byte
// big-endian slice index; key: the identity key of
// [onceflow.Identity.AppendKey], value: a versioned, checksummed record of
// status, attempts, first-seen time, error class and result); "state"
// (handler state under the full state key); "outbox" (key: 8-byte
// big-endian sequence); "dead" (dead letters under the identity key);
// "meta" (layout version, slice width, commit counter, checkpoints under
// "c/" + name). The file is opened with mode 0600, the map freelist,
// NoFreelistSync (a commit does not rewrite the freelist; Open rebuilds it
// by a scan) and a 1 GiB initial mapping (address space, not memory; Open
// retries without it if the system refuses), so that lookups seldom block
// a commit that grows the file.
//
// A commit writes its identities in key order, into buckets at bbolt's
// default FillPercent (0.5). BenchmarkCommit measured the alternatives
// with fsync: 1,000 or 10,000 new random identities per commit into a
// bucket of 200,000, each commit timed next to a bare bbolt Update with
// the same Puts into a bucket of the same size (impl=interleaved; the
// events/s move with the machine's load, the ratios do not; go test -run
// '^$' -bench 'BenchmarkCommit/layout=/batch=1000$/impl=interleaved'
// -benchtime 100x ./dedup/, and batch=10000$ with -benchtime 10x):
//
//	batch   layout          dedup events/s   bare bbolt events/s   dedup/bare
//	1,000   sorted          16,470           16,691                0.99
//	1,000   unsorted        11,083           13,322                0.83
//	1,000   sorted, 0.9     11,624           11,936                0.97
//	10,000  sorted          21,438           24,616                0.87
//	10,000  unsorted        23,877           23,447                1.02
//
// Timed side by side in one loop, rotating their order
// (BenchmarkCommitLayouts, two runs), unsorted keys took 1.05-1.13x the
// time of sorted ones at 1,000 per commit and 1.16x at 10,000, and
// FillPercent 0.9 took 1.16-1.28x the time of 0.5. Random identities dirty
// about one leaf page each once the bucket has more leaves than a commit
// has keys, so the pages written and synced decide the cost; sorting
// makes the existence checks and the Puts walk the tree in order, costs
// ~0.1 ms per 1,000 keys, and pays more as a batch grows relative to the
// bucket. A fuller leaf
// helps appends but splits at the next random insert. What raises
// durable throughput is the group commit size. Over bare bbolt, dedup
// adds an existence read per identity (about 12% of a commit's CPU), the
// filter updates and the commit counter, and stays within 0.83-1.02x of
// it.
//
// # Concurrency
//
// Lookup, Inspect, ReadState, Checkpoint, DeadLetter, DeadLetters,
// PendingOutbox, DeleteOutbox, Stats, Check and Close are safe for
// concurrent use. Commit is meant for one caller, the pipeline's
// committer: concurrent calls are safe but serialized. Every method
// holds a read lock on the store's life for its duration and Close takes
// it for writing, so Close waits for running calls (ristretto's Close
// must not race a Set, nor bbolt's a transaction); afterwards every method
// returns [ErrClosed]. Close is idempotent. The store starts goroutines
// only inside ristretto, and Close stops them.
//
// Open takes an exclusive lock on the file: a second Open, from another
// process or this one, fails after [WithLockTimeout] (default 2s) with
// [ErrLocked], naming the path.
//
// # Caveats
//
//   - The file never shrinks. Expired slices free pages that later
//     commits reuse, but bbolt does not give space back: a file that once
//     held a big window stays that big. Compact offline (bbolt compact)
//     to shrink it.
//   - [UnsafeNoSync] is unsafe: commits then survive a crash of the
//     process but not of the machine, whose file may lose acknowledged
//     commits or be corrupt.
//   - A duplicate that arrives after the window is processed again: its
//     identity has been forgotten. Size the window to the redelivery
//     horizon of the sources; Stats.ExpiredSlices counts what was
//     forgotten.
//   - Dead letters do not expire with the window; they stay until
//     [Store.PurgeDeadLetters] deletes them (a purged identity keeps its
//     outcome for the window and can no longer be redriven).
//   - The clock decides expiry: a clock set far ahead forgets the whole
//     window at the next commit.
//   - A corrupt record is reported as an error matching
//     [onceflow.ErrCorrupt] by every method that reads it (Check finds
//     them all); it never panics.
package dedup
