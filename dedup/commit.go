package dedup

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"
	onceflow "github.com/onceflow/onceflow"
	bolt "go.etcd.io/bbolt"
)

// commitScratch is Commit's reusable working memory; commitMu must be
// held.
type commitScratch struct {
	keyBuf []byte             // the identity keys, back to back
	keys   [][]byte           // per record: its key in keyBuf
	hashes []uint64           // per record: xxhash of its key
	masks  []uint64           // per record: live slices whose filters may hold it (bit j: slice cur-j)
	order  []int              // records in the order they are written
	dup    []bool             // per record: already committed (or earlier in the batch)
	from   []uint64           // per record: the slice of the outcome it replaces, or noSlice
	stored []onceflow.Outcome // per record: the stored outcome when dup
	vals   []byte             // encoded values, back to back
	aux    []byte             // other keys written: outbox sequences, checkpoint names
	writes []onceflow.StateWrite
	undo   []memUndo // the memory backend's plain commit: expired outcomes overwritten,
	ins    []int32   // and records inserted
	sorted []sortEntry
}

// noSlice marks the absence of a slice.
const noSlice = ^uint64(0)

// maxScratch bounds the buffers a commit keeps for the next one.
const maxScratch = 16 << 20

func (sc *commitScratch) prepare(b *onceflow.CommitBatch, unsorted bool) {
	n := len(b.Records)
	sc.keyBuf = sc.keyBuf[:0]
	ends := sc.order[:0] // the end offsets first, then the order
	for i := range b.Records {
		sc.keyBuf = b.Records[i].ID.AppendKey(sc.keyBuf)
		ends = append(ends, len(sc.keyBuf))
	}
	sc.keys = slices.Grow(sc.keys[:0], n)[:n]
	sc.hashes = slices.Grow(sc.hashes[:0], n)[:n]
	start := 0
	for i, end := range ends {
		sc.keys[i] = sc.keyBuf[start:end:end]
		sc.hashes[i] = xxhash.Sum64(sc.keys[i])
		start = end
	}
	sc.order = ends[:0]
	for i := range n {
		sc.order = append(sc.order, i)
	}
	if !unsorted {
		// Sorted keys dirty adjacent leaves once each; in a big bucket,
		// random ones cost a leaf each (see doc.go, "Store layout").
		// Equal identities keep their batch order (the index breaks the
		// tie), so that the first in the batch is written and the others
		// find it; pdqsort with that tie-break is several times faster
		// than a stable sort.
		sc.sortByKey()
	}
	sc.masks = slices.Grow(sc.masks[:0], n)[:n]
	sc.dup = slices.Grow(sc.dup[:0], n)[:n]
	clear(sc.dup)
	sc.from = slices.Grow(sc.from[:0], n)[:n]
	for i := range sc.from {
		sc.from[i] = noSlice
	}
	sc.stored = slices.Grow(sc.stored[:0], n)[:n]
	sc.vals = sc.vals[:0]
	sc.aux = sc.aux[:0]
	sc.writes = sc.writes[:0]
}

// sortByKey sorts sc.order by key, equal keys in batch order. Keys of a
// batch usually share a long prefix (the source), so each record first
// gets the 8 bytes that follow the batch's common prefix as a number:
// most comparisons are then one integer comparison, and only equal
// numbers compare the keys.
func (sc *commitScratch) sortByKey() {
	n := len(sc.order)
	if n < 2 {
		return
	}
	lcp := len(sc.keys[0])
	for _, k := range sc.keys[1:] {
		lcp = min(lcp, len(k))
		for j := range lcp {
			if k[j] != sc.keys[0][j] {
				lcp = j
				break
			}
		}
	}
	sc.sorted = slices.Grow(sc.sorted[:0], n)[:n]
	for i, k := range sc.keys {
		var b [8]byte
		copy(b[:], k[lcp:])
		sc.sorted[i] = sortEntry{pre: binary.BigEndian.Uint64(b[:]), i: int32(i)}
	}
	slices.SortFunc(sc.sorted, func(x, y sortEntry) int {
		if c := cmp.Compare(x.pre, y.pre); c != 0 {
			return c
		}
		if c := bytes.Compare(sc.keys[x.i], sc.keys[y.i]); c != 0 {
			return c
		}
		return cmp.Compare(x.i, y.i)
	})
	for k, e := range sc.sorted {
		sc.order[k] = int(e.i)
	}
}

// sortEntry is a record's place in sortByKey.
type sortEntry struct {
	pre uint64 // the 8 key bytes after the batch's common prefix, zero-padded
	i   int32
}

// release drops the references to the caller's batch and oversized
// buffers.
func (sc *commitScratch) release() {
	clear(sc.stored)
	clear(sc.writes)
	clear(sc.keys)
	clear(sc.undo)
	if cap(sc.vals) > maxScratch {
		sc.vals = nil
	}
	if cap(sc.keyBuf) > maxScratch {
		sc.keyBuf = nil
	}
}

// validateBatch rejects what the store cannot write, before anything is.
func validateBatch(b *onceflow.CommitBatch) error {
	for i := range b.Records {
		r := &b.Records[i]
		switch r.Outcome.Status {
		case onceflow.StatusDone, onceflow.StatusDeadLettered, onceflow.StatusRejected, onceflow.StatusHeld:
		default:
			return fmt.Errorf("%w: record %d (%v): status %d is not one of onceflow's", ErrInvalidRecord, i, r.ID, r.Outcome.Status)
		}
		if r.ID.Source == "" || r.ID.ID == "" {
			return fmt.Errorf("%w: record %d: identity %+v has an empty source or id", ErrInvalidRecord, i, r.ID)
		}
		if r.DeadLetter != nil && r.Outcome.Status != onceflow.StatusDeadLettered {
			return fmt.Errorf("%w: record %d (%v): dead letter with status %v", ErrInvalidRecord, i, r.ID, r.Outcome.Status)
		}
		if len(r.Outcome.Result) > onceflow.MaxResultBytes {
			return fmt.Errorf("dedup: record %d (%v): %d bytes: %w", i, r.ID, len(r.Outcome.Result), onceflow.ErrResultTooLarge)
		}
		if n := binary.MaxVarintLen64 + len(r.ID.Source) + len(r.ID.ID); n > bolt.MaxKeySize {
			return fmt.Errorf("%w: record %d (%v): identity longer than %d bytes", ErrInvalidRecord, i, r.ID, bolt.MaxKeySize-binary.MaxVarintLen64)
		}
		for _, w := range r.Writes {
			if len(w.Key) == 0 || len(w.Key) > bolt.MaxKeySize {
				return fmt.Errorf("%w: record %d (%v): state key of %d bytes", ErrInvalidRecord, i, r.ID, len(w.Key))
			}
		}
	}
	for _, c := range b.Checkpoints {
		if len(metaCheckpoint)+len(c.Name) > bolt.MaxKeySize {
			return fmt.Errorf("%w: checkpoint name of %d bytes", ErrInvalidRecord, len(c.Name))
		}
	}
	return nil
}

// Commit durably writes b in one transaction (fsync'd unless the store was
// opened with [UnsafeNoSync]) and returns when it is durable.
//
// Each record's outcome is stored under its identity in the current
// slice, unless the identity is already committed within the window or
// earlier in b: then the first outcome stays, the record's Writes,
// Outbox and DeadLetter are discarded (set to nil) and its Outcome is
// rewritten to the stored one with Duplicate set. The state writes of the
// other records are applied in batch order (the last write to a key
// wins), their outbox messages are queued in batch order, their dead
// letters are stored (replacing an earlier one of the identity), the
// checkpoints are written (the last of a name wins), and the commit
// counter is bumped, all in the same transaction.
//
// A record with Redrive set replaces a stored dead-lettered outcome of its
// identity (any other stored outcome still wins): the new outcome is
// stored in the current slice, and the stored dead letter's Redriven time
// is set to the store clock's time, unless the record carries a new dead
// letter. A record with Release set likewise replaces a stored held
// outcome (sequence ordering) of its identity.
//
// An error means nothing of b was committed and b is unchanged. Errors:
// [ErrClosed]; [ErrInvalidRecord] and [onceflow.ErrResultTooLarge] for a
// batch that cannot be stored; store errors match [onceflow.ErrStorage].
//
// Commit is meant for one caller at a time; concurrent calls are safe but
// serialized. A nil or empty batch commits nothing.
func (s *Store) Commit(b *onceflow.CommitBatch) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if b == nil || len(b.Records)+len(b.Checkpoints) == 0 {
		return nil
	}
	if err := validateBatch(b); err != nil {
		return err
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	start := time.Now()
	now := s.opts.clock()
	cur := s.current()
	low := s.low(cur)
	sc := &s.scratch
	defer sc.release()
	mb, _ := s.be.(*memBackend)
	plain := mb != nil && s.opts.exact && plainBatch(b)
	// Sorting pays for bbolt's page writes; the memory backend has none.
	sc.prepare(b, s.opts.unsortedPuts || mb != nil)

	expireNow := low > s.expiredBelow
	expired := 0
	var err error
	if plain && !expireNow {
		err = mb.commitPlain(b, sc, cur, s.liveMask(cur), s.totalCommits+1)
	} else {
		err = s.commitTx(b, cur, low, now, expireNow, &expired)
	}
	if err != nil {
		return &storeError{op: "commit", path: s.be.name(), err: err}
	}

	s.totalCommits++
	stored, dups := 0, 0
	for i := range b.Records {
		r := &b.Records[i]
		if sc.dup[i] {
			r.Outcome = sc.stored[i]
			r.Outcome.Duplicate = true
			r.Writes, r.Outbox, r.DeadLetter = nil, nil, nil
			dups++
			continue
		}
		stored++
		if r.Redrive || r.Release {
			// The cache may hold the replaced outcome (a lookup
			// read it): Del is applied at once. A lookup that read
			// the old outcome before this commit and caches it after
			// the Del can leave it there until it is evicted; that
			// needs a copy of a redriven or released event looked up
			// during its commit, and gives that copy the old outcome
			// as its answer; Commit still keeps the new one, so no
			// transactional effect happens twice. (The cache had the
			// same race when commits filled it.)
			s.cache.del(sc.hashes[i])
		}
	}
	if expireNow {
		s.expiredBelow = low
		s.filters.drop(low)
		s.st.expiredSlices.Add(uint64(expired))
	}
	s.occMu.Lock()
	if expireNow {
		for slice := range s.occupancy {
			if slice < low {
				delete(s.occupancy, slice)
			}
		}
	}
	if stored > 0 {
		s.occupancy[cur] += uint64(stored)
	}
	for i, from := range sc.from {
		if from != noSlice && !sc.dup[i] && s.occupancy[from] > 0 {
			s.occupancy[from]--
		}
	}
	s.occMu.Unlock()

	d := int64(time.Since(start))
	s.st.commits.Add(1)
	s.st.totalCommits.Store(s.totalCommits)
	s.st.records.Add(uint64(len(b.Records)))
	s.st.stored.Add(uint64(stored))
	s.st.duplicates.Add(uint64(dups))
	s.st.latencyTotal.Add(d)
	s.st.latencyLast.Store(d)
	if d > s.st.latencyMax.Load() {
		s.st.latencyMax.Store(d)
	}
	return nil
}

// putRecords writes the outcomes of b's records that are new, in
// sc.order, and marks the others as duplicates.
func (s *Store) putRecords(tx writeTx, b *onceflow.CommitBatch, cur uint64) error {
	sc := &s.scratch
	for _, i := range sc.order {
		key := sc.keys[i]
		// The current slice holds the identities committed in it,
		// including those earlier in this batch (the transaction reads
		// its own writes). It is read only if its filter may hold the
		// key: a Bloom negative there is certain, since every commit adds
		// its keys (the earlier records of this batch included) first.
		// The older live slices are read only where their filters said
		// "maybe". So a new identity costs a write and no read.
		var v []byte
		at := cur
		if sc.masks[i]&1 != 0 {
			v = tx.outcome(cur, key)
		}
		for j := uint64(1); v == nil && j <= s.n && j <= cur; j++ {
			if sc.masks[i]&(1<<j) != 0 {
				v, at = tx.outcome(cur-j, key), cur-j
			}
		}
		if v != nil {
			rec, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("stored record of %v: %w", b.Records[i].ID, err)
			}
			if !replaces(&b.Records[i], rec.status) {
				sc.dup[i] = true
				sc.stored[i] = rec.outcome(true)
				continue
			}
			// A redrive or a release replaces the stored outcome, stored
			// anew in the current slice.
			if at != cur {
				if err := tx.deleteOutcome(at, key); err != nil {
					return err
				}
			}
			sc.from[i] = at
		}
		rec := recordOf(&b.Records[i])
		off := len(sc.vals)
		sc.vals = appendRecord(sc.vals, &rec)
		if err := tx.putOutcome(cur, key, sc.vals[off:len(sc.vals):len(sc.vals)]); err != nil {
			return err
		}
	}
	return nil
}

// putEffects writes the state writes, outbox messages and dead letters
// of b's records that are not duplicates.
func (s *Store) putEffects(tx writeTx, b *onceflow.CommitBatch, now time.Time) error {
	sc := &s.scratch
	for i := range b.Records {
		if !sc.dup[i] {
			sc.writes = append(sc.writes, b.Records[i].Writes...)
		}
	}
	sorted := !s.opts.unsortedPuts
	if sorted {
		// Stable: of the writes to one key, the last in batch order is
		// last in its run, and is the one applied.
		slices.SortStableFunc(sc.writes, func(a, b onceflow.StateWrite) int { return bytes.Compare(a.Key, b.Key) })
	}
	for k, w := range sc.writes {
		if sorted && k+1 < len(sc.writes) && bytes.Equal(w.Key, sc.writes[k+1].Key) {
			continue
		}
		var err error
		if w.Delete {
			err = tx.delete(bucketState, w.Key)
		} else {
			err = tx.put(bucketState, w.Key, nonNil(w.Value))
		}
		if err != nil {
			return err
		}
	}
	for i := range b.Records {
		if sc.dup[i] {
			continue
		}
		for m := range b.Records[i].Outbox {
			seq, err := tx.nextOutboxSeq()
			if err != nil {
				return err
			}
			koff := len(sc.aux)
			sc.aux = binary.BigEndian.AppendUint64(sc.aux, seq)
			voff := len(sc.vals)
			sc.vals = appendMessage(sc.vals, &b.Records[i].Outbox[m])
			if err := tx.put(bucketOutbox, sc.aux[koff:len(sc.aux):len(sc.aux)], sc.vals[voff:len(sc.vals):len(sc.vals)]); err != nil {
				return err
			}
		}
	}
	for i := range b.Records {
		r := &b.Records[i]
		if sc.dup[i] || (r.DeadLetter == nil && !r.Redrive) {
			continue
		}
		d := r.DeadLetter
		if d == nil {
			v := tx.get(bucketDead, sc.keys[i])
			if v == nil {
				continue
			}
			stored, err := decodeDeadLetter(v)
			if err != nil {
				return fmt.Errorf("dead letter of %v: %w", r.ID, err)
			}
			stored.Redriven = now
			d = &stored
		}
		off := len(sc.vals)
		sc.vals = appendDeadLetter(sc.vals, d)
		if err := tx.put(bucketDead, sc.keys[i], sc.vals[off:len(sc.vals):len(sc.vals)]); err != nil {
			return err
		}
	}
	return nil
}

// replaces reports whether r replaces a stored outcome of status stored
// instead of being its duplicate.
func replaces(r *onceflow.Record, stored onceflow.Status) bool {
	return (r.Redrive && stored == onceflow.StatusDeadLettered) ||
		(r.Release && stored == onceflow.StatusHeld)
}

// nonNil returns v, or an empty slice for nil: a transaction reading back
// a nil value it wrote would take it for a missing key.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// commitTx is Commit's general path: one backend transaction that writes
// b's records and effects, after expiring the slices below low when
// expireNow is set (the number expired goes to *expired). sc is prepared.
func (s *Store) commitTx(b *onceflow.CommitBatch, cur, low uint64, now time.Time, expireNow bool, expired *int) error {
	sc := &s.scratch
	// Note the identities in the current slice's filters before they are
	// committed: a lookup between the commit and a later add would
	// otherwise answer "never seen" for a committed identity. A filter
	// bit set for a commit that then fails costs a store read, never a
	// wrong answer.
	mb, exactMem := s.be.(*memBackend)
	exactMem = exactMem && s.opts.exact
	for _, i := range sc.order {
		if exactMem {
			// Bit 0 always: locate sees committed outcomes only, not the
			// earlier records of this batch.
			sc.masks[i] = mb.locate(sc.keys[i], cur)&s.liveMask(cur) | 1
			continue
		}
		sc.masks[i] = s.filters.commit(s.filters.part(sc.hashes[i]), sc.keys[i], cur, int(s.n))
	}

	return s.be.update(func(tx writeTx) error {
		*expired = 0
		if expireNow {
			n, err := expire(tx, low)
			if err != nil {
				return err
			}
			*expired = n
		}
		if err := s.putRecords(tx, b, cur); err != nil {
			return err
		}
		if err := s.putEffects(tx, b, now); err != nil {
			return err
		}
		for _, c := range b.Checkpoints {
			off := len(sc.aux)
			sc.aux = append(append(sc.aux, metaCheckpoint...), c.Name...)
			if err := tx.put(bucketMeta, sc.aux[off:], nonNil(c.Value)); err != nil {
				return err
			}
		}
		off := len(sc.aux)
		sc.aux = binary.BigEndian.AppendUint64(sc.aux, s.totalCommits+1)
		return tx.put(bucketMeta, []byte(metaCommits), sc.aux[off:])
	})
}
