package dedup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	onceflow "github.com/onceflow/onceflow"
	bolt "go.etcd.io/bbolt"
)

// Store remembers the outcome of every identity committed within its
// window, with the handler state and outbox messages committed alongside.
// It satisfies the pipeline package's Store interface.
//
// Lookup, Inspect, ReadState, Checkpoint, PendingOutbox, DeleteOutbox,
// Stats, Check and Close are safe for concurrent use. Commit is meant for
// one caller (the pipeline's committer): concurrent Commits are safe but
// run one at a time.
type Store struct {
	opts  options
	width time.Duration // of a slice: window/slices
	n     uint64        // slices: live slices are the current one and n before it

	be      backend
	filters *filterSet
	cache   *outcomeCache
	keyBufs sync.Pool // *[]byte for identity keys

	// closeMu is held for reading by every method while it runs and for
	// writing by Close, so that Close waits for them: ristretto's Close
	// must not race a Set, and bbolt's Close waits for transactions.
	closeMu sync.RWMutex
	closed  bool // closeMu must be held

	// maxSlice is the latest slice seen: the current slice never goes
	// backwards, even if the clock does.
	maxSlice atomic.Uint64

	commitMu     sync.Mutex // serializes Commit; guards the fields below
	scratch      commitScratch
	expiredBelow uint64 // slices below it were deleted from the store
	totalCommits uint64 // the stored commit counter

	occMu     sync.Mutex
	occupancy map[uint64]uint64 // slice → identities committed in it; occMu must be held

	st storeCounters
}

// storeCounters are the Stats counters outside the lookup path.
type storeCounters struct {
	commits        atomic.Uint64
	records        atomic.Uint64
	stored         atomic.Uint64
	duplicates     atomic.Uint64
	latencyTotal   atomic.Int64
	latencyLast    atomic.Int64
	latencyMax     atomic.Int64
	expiredSlices  atomic.Uint64
	totalCommits   atomic.Uint64
	rebuildIDs     atomic.Uint64
	rebuildTime    atomic.Int64
	widthMigration atomic.Bool
}

// OutboxEntry is an outbox message waiting for delivery, under the
// sequence number the store gave it at commit.
type OutboxEntry = onceflow.OutboxEntry

// Open opens (creating it if needed) the store file at path, a bbolt
// database with mode 0600, and rebuilds the Bloom filters of the live
// slices from it. An empty file (0 bytes) is a new store, as bbolt
// initialises it: that is what a crash leaves between creating the file
// and its first write, before anything was committed, and it cannot be
// told apart from a store cut to nothing by something else. A file cut
// short of the length its meta pages give fails with
// [onceflow.ErrCorrupt].
//
// Open waits at most the lock timeout (see [WithLockTimeout]) for another
// opener of the file to close it, then fails with an error matching
// [ErrLocked]. Errors from the file match [onceflow.ErrStorage]; invalid
// options return a plain error.
func Open(path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("dedup: Open: empty path (name the state file; NewMemory keeps no file)")
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	be, err := openBolt(path, &o)
	if err != nil {
		return nil, err
	}
	return newStore(o, be)
}

// NewMemory returns a store that keeps everything in memory: the same
// window and contract as [Open], without durability. A commit is atomic
// but lost with the process. It is an exact map, so it has no Bloom
// filters and no cache (WithCapacity, WithFalsePositiveRate and
// WithCacheItems do not apply).
func NewMemory(opts ...Option) (*Store, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if o.readOnly {
		return nil, errors.New("dedup: ReadOnly applies to Open, not to NewMemory")
	}
	o.exact = true
	return newStore(o, newMemBackend())
}

// CheckOptions returns the error Open and NewMemory would return for
// invalid option values in opts, or nil, without opening or creating
// anything: a command line can refuse a bad flag before it touches the
// disk. It checks values only: not the path, nor that ReadOnly suits the
// constructor.
func CheckOptions(opts ...Option) error {
	_, err := buildOptions(opts)
	return err
}

func buildOptions(opts []Option) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return o, o.validate()
}

func newStore(o options, be backend) (*Store, error) {
	s := &Store{
		opts:      o,
		width:     o.window / time.Duration(o.slices),
		n:         uint64(o.slices),
		be:        be,
		filters:   newFilterSet(o.capacity, o.slices, o.fpr),
		occupancy: make(map[uint64]uint64),
	}
	s.keyBufs.New = func() any { b := make([]byte, 0, 128); return &b }
	if o.exact {
		// The memory backend is itself an exact map: a Bloom filter or a
		// cache in front of it would only add work.
		s.filters = newFilterSet(0, o.slices, o.fpr)
		o.cacheItems = 0
	}
	cache, err := newCache(o.cacheItems)
	if err != nil {
		_ = be.close()
		return nil, fmt.Errorf("dedup: cache: %w", err)
	}
	s.cache = cache
	if err := s.init(); err != nil {
		s.cache.close()
		_ = be.close()
		return nil, err
	}
	return s, nil
}

// init checks the layout, remaps the slices if the slice width changed,
// deletes expired slices and rebuilds the filters of the live ones.
func (s *Store) init() error {
	if s.opts.readOnly {
		return s.initReadOnly()
	}
	cur := s.current()
	low := s.low(cur)
	err := s.be.update(func(tx writeTx) error {
		if v := tx.get(bucketMeta, []byte(metaVersion)); v != nil {
			if len(v) != 1 {
				return corruptf("layout version of %d bytes", len(v))
			}
			if v[0] != layoutVersion {
				return fmt.Errorf("layout version %d, this code reads %d", v[0], layoutVersion)
			}
		} else if err := tx.put(bucketMeta, []byte(metaVersion), []byte{layoutVersion}); err != nil {
			return err
		}
		if v := tx.get(bucketMeta, []byte(metaCommits)); v != nil {
			if len(v) != 8 {
				return corruptf("commit counter of %d bytes", len(v))
			}
			s.totalCommits = binary.BigEndian.Uint64(v)
		}
		var width [8]byte
		binary.BigEndian.PutUint64(width[:], uint64(s.width))
		if v := tx.get(bucketMeta, []byte(metaSliceWidth)); v != nil {
			if len(v) != 8 {
				return corruptf("slice width of %d bytes", len(v))
			}
			if old := time.Duration(binary.BigEndian.Uint64(v)); old != s.width {
				if err := remapSlices(tx, old, s.width, low, cur); err != nil {
					return err
				}
				s.st.widthMigration.Store(true)
			}
		}
		if !bytes.Equal(tx.get(bucketMeta, []byte(metaSliceWidth)), width[:]) {
			if err := tx.put(bucketMeta, []byte(metaSliceWidth), width[:]); err != nil {
				return err
			}
		}
		dropped, err := expire(tx, low)
		s.st.expiredSlices.Add(uint64(dropped))
		return err
	})
	if err != nil {
		return &storeError{op: "open", path: s.be.name(), err: err}
	}
	s.expiredBelow = low
	s.st.totalCommits.Store(s.totalCommits)
	return s.rebuild(low)
}

// initReadOnly is init for ReadOnly: it reads the layout, the commit count
// and the stored slice width, which sets the window, in a read
// transaction, then rebuilds the filters of the live slices.
func (s *Store) initReadOnly() error {
	be, ok := s.be.(*boltBackend)
	if !ok {
		return errors.New("dedup: ReadOnly needs the disk store")
	}
	err := be.db.View(func(btx *bolt.Tx) error {
		tx := &boltTx{tx: btx}
		if v := tx.get(bucketMeta, []byte(metaVersion)); v != nil && (len(v) != 1 || v[0] != layoutVersion) {
			return corruptf("layout version %x, this code reads %d", v, layoutVersion)
		}
		if v := tx.get(bucketMeta, []byte(metaCommits)); v != nil {
			if len(v) != 8 {
				return corruptf("commit counter of %d bytes", len(v))
			}
			s.totalCommits = binary.BigEndian.Uint64(v)
		}
		if v := tx.get(bucketMeta, []byte(metaSliceWidth)); v != nil {
			w := time.Duration(binary.BigEndian.Uint64(v))
			if len(v) != 8 || w <= 0 {
				return corruptf("slice width %x", v)
			}
			s.width = w
			s.opts.window = w * time.Duration(s.n)
		}
		be.fileSize.Store(btx.Size())
		return nil
	})
	if err != nil {
		return &storeError{op: "open", path: s.be.name(), err: err}
	}
	s.expiredBelow = s.low(s.current())
	s.st.totalCommits.Store(s.totalCommits)
	return s.rebuild(s.expiredBelow)
}

// rebuild fills the filters and the occupancy of the slices at or above
// low from the store.
func (s *Store) rebuild(low uint64) error {
	start := time.Now()
	var ids uint64
	err := s.be.scan(low, func(slice uint64, key []byte) error {
		s.filters.add(s.filters.part(xxhash.Sum64(key)), key, slice)
		s.occupancy[slice]++
		ids++
		return nil
	})
	if err != nil {
		return &storeError{op: "rebuild filters", path: s.be.name(), err: err}
	}
	s.st.rebuildIDs.Store(ids)
	s.st.rebuildTime.Store(int64(time.Since(start)))
	return nil
}

// remapSlices moves the outcomes of slices of width old into the slices
// of width new that hold the last instant of each old slice, so that no
// identity is forgotten earlier than the new window says, but not beyond
// the current slice cur, which lookups would not read. Slices that map
// below low have expired and are deleted. Two old slices mapping to one
// new slice merge, the first outcome of an identity winning.
func remapSlices(tx writeTx, old, width time.Duration, low, cur uint64) error {
	type kv struct{ k, v []byte }
	olds, err := tx.slices()
	if err != nil {
		return err
	}
	moved := make(map[uint64][]kv)
	var order []uint64
	for _, s := range olds {
		end := (s+1)*uint64(old) - 1 // the last nanosecond of s
		j := min(end/uint64(width), cur)
		if j >= low {
			if _, ok := moved[j]; !ok {
				order = append(order, j)
			}
			err := tx.forEachOutcome(s, func(k, v []byte) error {
				moved[j] = append(moved[j], kv{bytes.Clone(k), bytes.Clone(v)})
				return nil
			})
			if err != nil {
				return err
			}
		}
		if err := tx.deleteSlice(s); err != nil {
			return err
		}
	}
	for _, j := range order {
		for _, e := range moved[j] {
			if tx.outcome(j, e.k) != nil {
				continue
			}
			if err := tx.putOutcome(j, e.k, e.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// expire deletes the outcome buckets of the slices below low and returns
// how many it deleted.
func expire(tx writeTx, low uint64) (int, error) {
	all, err := tx.slices()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range all {
		if s >= low {
			break
		}
		if err := tx.deleteSlice(s); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// current returns the current slice: the slice of the clock's time, or
// the latest slice seen if the clock went back.
func (s *Store) current() uint64 {
	ns := s.opts.clock().UnixNano()
	var c uint64
	if ns > 0 {
		c = uint64(ns / int64(s.width))
	}
	for {
		m := s.maxSlice.Load()
		if c <= m {
			return m
		}
		if s.maxSlice.CompareAndSwap(m, c) {
			return c
		}
	}
}

// low returns the oldest live slice when cur is current.
func (s *Store) low(cur uint64) uint64 {
	if cur < s.n {
		return 0
	}
	return cur - s.n
}

// liveMask is the mask of all live slices when cur is current.
func (s *Store) liveMask(cur uint64) uint64 { return 1<<(min(s.n, cur)+1) - 1 }

func (s *Store) getKey(id onceflow.Identity) (*[]byte, []byte) {
	kb := s.keyBufs.Get().(*[]byte)
	*kb = id.AppendKey((*kb)[:0])
	return kb, *kb
}

// Lookup reports the committed outcome of id, if id was committed within
// the window, with Duplicate set: the caller holds a later copy. A
// positive answer has been confirmed against the full identity.
//
// The tiers answer in turn: the Bloom filters of the live slices (no
// I/O), the cache of recent outcomes, and the store, which reads only the
// slices whose filters said "maybe". Lookup writes nothing, not even to
// the filters (Commit adds the identities it commits). Lookup is safe for
// concurrent use.
//
// Errors: [ErrClosed]; store errors match [onceflow.ErrStorage] (and
// [onceflow.ErrCorrupt] for a record that does not decode).
func (s *Store) Lookup(id onceflow.Identity) (onceflow.Outcome, bool, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return onceflow.Outcome{}, false, ErrClosed
	}
	if mb, ok := s.be.(*memBackend); ok && s.opts.exact {
		return s.lookupMemory(mb, id)
	}
	kb, key := s.getKey(id)
	defer s.keyBufs.Put(kb)
	h := xxhash.Sum64(key)
	cur := s.current()
	p := s.filters.part(h)
	mask := s.filters.lookup(p, key, cur, int(s.n))
	if mask == 0 {
		return onceflow.Outcome{}, false, nil
	}
	if out, ok := s.cache.get(h, key, s.low(cur)); ok {
		p.cacheHits.Add(1)
		out.Duplicate = true
		return out, true, nil
	}
	p.storeReads.Add(1)
	out, found, err := s.read(h, key, cur, mask, true)
	if err != nil {
		return onceflow.Outcome{}, false, err
	}
	if found {
		p.storeHits.Add(1)
		out.Duplicate = true
		return out, true, nil
	}
	return onceflow.Outcome{}, false, nil
}

// read looks key up in the store in the slices of mask, caching a found
// outcome if cache is set.
func (s *Store) read(h uint64, key []byte, cur, mask uint64, cache bool) (onceflow.Outcome, bool, error) {
	var out onceflow.Outcome
	found, err := s.be.findOutcome(cur, mask, key, func(slice uint64, v []byte) error {
		rec, err := decodeRecord(v)
		if err != nil {
			return err
		}
		out = rec.outcome(true)
		if cache {
			s.cache.set(h, key, slice, &rec)
		}
		return nil
	})
	if err != nil {
		return onceflow.Outcome{}, false, &storeError{op: "read outcome", path: s.be.name(), err: err}
	}
	return out, found, nil
}

// lookupMemory is Lookup on the exact memory backend.
func (s *Store) lookupMemory(mb *memBackend, id onceflow.Identity) (onceflow.Outcome, bool, error) {
	cur := s.current()
	out, found, h, err := readMemory(mb, id, cur, s.liveMask(cur))
	// The memory store has no filters: its reads are counted on their
	// partitions all the same (Stats sums them).
	p := s.filters.part(h)
	p.storeReads.Add(1)
	if found {
		p.storeHits.Add(1)
	}
	return out, found, err
}

// readMemory reads id's outcome from the exact memory backend: one map
// read, with the key built on the stack and the stored value decoded after
// the read lock is released (the memory backend never changes a stored
// value). cur and mask are the current slice and the live slices. It
// also returns the key's hash.
func readMemory(mb *memBackend, id onceflow.Identity, cur, mask uint64) (onceflow.Outcome, bool, uint64, error) {
	var buf [128]byte
	key := id.AppendKey(buf[:0])
	h := xxhash.Sum64(key)
	v, ok := mb.lookup(key, h, cur, mask)
	if !ok {
		return onceflow.Outcome{}, false, h, nil
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return onceflow.Outcome{}, false, h, &storeError{op: "read outcome", path: mb.name(), err: err}
	}
	out := rec.outcome(true)
	out.Duplicate = true
	return out, true, h, nil
}

// LookupBatch is Lookup for each of ids: it sets outs[i] and found[i] as
// Lookup(ids[i]) would. On the memory store it pays once per call what
// Lookup pays per call (the close lock, the clock, the read counters); on
// the bbolt file it is Lookup in a loop. outs and found must be at least
// as long as ids (else an error matching [ErrInvalidBatch]); they are not
// kept. An error is the first Lookup error; outs and found are then
// undefined. Like Lookup it is safe for concurrent use, and each answer is
// as of some moment during the call.
func (s *Store) LookupBatch(ids []onceflow.Identity, outs []onceflow.Outcome, found []bool) error {
	if len(outs) < len(ids) || len(found) < len(ids) {
		return fmt.Errorf("%w: %d identities into %d outcomes and %d flags", ErrInvalidBatch, len(ids), len(outs), len(found))
	}
	mb, ok := s.be.(*memBackend)
	if !ok || !s.opts.exact {
		for i, id := range ids {
			var err error
			if outs[i], found[i], err = s.Lookup(id); err != nil {
				return err
			}
		}
		return nil
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	cur := s.current()
	mask := s.liveMask(cur)
	hits := uint64(0)
	for i, id := range ids {
		var err error
		if outs[i], found[i], _, err = readMemory(mb, id, cur, mask); err != nil {
			return err
		} else if found[i] {
			hits++
		}
	}
	p := &s.filters.parts[0] // one partition's counters for the batch (Stats sums them)
	p.storeReads.Add(uint64(len(ids)))
	p.storeHits.Add(hits)
	return nil
}

// Inspect returns the stored outcome of id as stored (Duplicate unset),
// reading the store only: it bypasses the filters and the cache, and
// notes nothing. It is meant for tools.
func (s *Store) Inspect(id onceflow.Identity) (onceflow.Outcome, bool, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return onceflow.Outcome{}, false, ErrClosed
	}
	kb, key := s.getKey(id)
	defer s.keyBufs.Put(kb)
	cur := s.current()
	return s.read(0, key, cur, s.liveMask(cur), false)
}

// ReadState returns a copy of the committed handler state under key (a
// full state key, see [onceflow.StateKey]) and whether it exists.
func (s *Store) ReadState(key []byte) ([]byte, bool, error) {
	return s.get(bucketState, key, "read state")
}

// Checkpoint returns the value of the checkpoint name as last committed,
// and whether one was.
func (s *Store) Checkpoint(name string) ([]byte, bool, error) {
	return s.get(bucketMeta, []byte(metaCheckpoint+name), "read checkpoint")
}

func (s *Store) get(bucket string, key []byte, op string) ([]byte, bool, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, false, ErrClosed
	}
	v, ok, err := s.be.get(bucket, key)
	if err != nil {
		return nil, false, &storeError{op: op, path: s.be.name(), err: err}
	}
	return v, ok, nil
}

// DeadLetter returns the dead letter stored for id, and whether there is
// one. Dead letters do not expire with the window: they stay, with their
// Redriven time once redriven, until the file is replaced.
func (s *Store) DeadLetter(id onceflow.Identity) (onceflow.DeadLetter, bool, error) {
	v, ok, err := s.get(bucketDead, id.AppendKey(nil), "read dead letter")
	if err != nil || !ok {
		return onceflow.DeadLetter{}, false, err
	}
	d, err := decodeDeadLetter(v)
	if err != nil {
		return onceflow.DeadLetter{}, false, &storeError{op: "read dead letter", path: s.be.name(), err: err}
	}
	d.ID = id
	return d, true, nil
}

// DeadLetters returns at most max dead letters in the order of their
// identity keys, starting after the identity after (from the first for
// the zero Identity): pass the last one returned to page on.
func (s *Store) DeadLetters(after onceflow.Identity, max int) ([]onceflow.DeadLetter, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if max < 1 {
		return nil, nil
	}
	var from []byte
	if after != (onceflow.Identity{}) {
		from = after.AppendKey(nil)
	}
	var out []onceflow.DeadLetter
	err := s.be.list(bucketDead, from, max, func(k, v []byte) error {
		id, err := onceflow.ParseIdentityKey(k)
		if err != nil {
			return fmt.Errorf("dead-letter key %x: %w", k, err)
		}
		d, err := decodeDeadLetter(v)
		if err != nil {
			return fmt.Errorf("dead letter of %v: %w", id, err)
		}
		d.ID = id
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, &storeError{op: "read dead letters", path: s.be.name(), err: err}
	}
	return out, nil
}

// PendingOutbox returns at most max outbox messages not yet deleted, in
// commit order. Delivery is at least once: a message stays pending until
// DeleteOutbox removes it, across reopens.
func (s *Store) PendingOutbox(max int) ([]OutboxEntry, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if max < 1 {
		return nil, nil
	}
	var out []OutboxEntry
	err := s.be.outbox(max, func(seq uint64, v []byte) error {
		m, err := decodeMessage(v)
		if err != nil {
			return fmt.Errorf("outbox entry %d: %w", seq, err)
		}
		out = append(out, OutboxEntry{Seq: seq, Message: m})
		return nil
	})
	if err != nil {
		return nil, &storeError{op: "read outbox", path: s.be.name(), err: err}
	}
	return out, nil
}

// DeleteOutbox deletes the outbox entries of seqs, delivered, in one
// durable transaction. Sequences not pending are ignored.
func (s *Store) DeleteOutbox(seqs []uint64) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if len(seqs) == 0 {
		return nil
	}
	if err := s.be.deleteOutbox(seqs); err != nil {
		return &storeError{op: "delete outbox", path: s.be.name(), err: err}
	}
	return nil
}

// Check verifies the store: bbolt's own consistency check (tx.Check) on
// disk, and that every stored record, outbox message and meta value
// decodes. It reads everything: use it in tests and tools.
func (s *Store) Check() error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.be.check(); err != nil {
		return &storeError{op: "check", path: s.be.name(), err: err}
	}
	return nil
}

// checkValues checks every stored value it is given by each, which calls
// fn for each key and value of a bucket (all outcome buckets for
// outcomePrefix).
func checkValues(each func(bucket string, fn func(k, v []byte) error) error) error {
	err := each(outcomePrefix, func(k, v []byte) error {
		if _, err := onceflow.ParseIdentityKey(k); err != nil {
			return fmt.Errorf("identity key %x: %w", k, err)
		}
		if _, err := decodeRecord(v); err != nil {
			return fmt.Errorf("record of %x: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = each(bucketOutbox, func(k, v []byte) error {
		if len(k) != 8 {
			return corruptf("outbox key of %d bytes", len(k))
		}
		if _, err := decodeMessage(v); err != nil {
			return fmt.Errorf("outbox entry %x: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = each(bucketDead, func(k, v []byte) error {
		if _, err := onceflow.ParseIdentityKey(k); err != nil {
			return fmt.Errorf("dead-letter key %x: %w", k, err)
		}
		if _, err := decodeDeadLetter(v); err != nil {
			return fmt.Errorf("dead letter %x: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return each(bucketMeta, func(k, v []byte) error {
		want := map[string]int{metaVersion: 1, metaCommits: 8, metaSliceWidth: 8}[string(k)]
		if want != 0 && len(v) != want {
			return corruptf("meta %q of %d bytes", k, len(v))
		}
		return nil
	})
}

// Close closes the store: it waits for the methods running, stops the
// cache's goroutines and closes the file. Later calls of any method
// return [ErrClosed]. Close is idempotent and safe for concurrent use;
// calls after the first return nil.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cache.close()
	if err := s.be.close(); err != nil {
		return &storeError{op: "close", path: s.be.name(), err: err}
	}
	return nil
}
