package dedup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"
	onceflow "github.com/onceflow/onceflow"
)

// memBackend keeps a Store's buckets in maps. Commits are atomic — a
// transaction buffers its writes and applies them at the end; a batch of
// plain outcomes is written partition by partition and undone if a stored
// record fails to decode (only a bug could cause that) — but not durable,
// and a concurrent lookup may see a commit's outcomes before the commit
// returns: the store writes each value once and never changes it, so what
// a lookup sees is final unless that commit fails, which is fatal to the
// pipeline.
//
// Outcomes live in memParts partitions by identity-key hash, each entry
// with its key and slice: an identity has at most one stored outcome, so
// one map read answers a lookup and one write stores an outcome. bySlice
// lists the keys stored in each slice, for expiry and scans; it may also
// list keys since moved to a later slice or deleted, which its users skip.
type memBackend struct {
	wmu sync.Mutex // serializes writers (update, commitPlain, deleteOutbox)

	// parts hold the outcomes by identity key, split by key hash so that
	// lookups and a commit's writes rarely meet on a lock.
	parts [memParts]memPart

	mu       sync.RWMutex // guards the fields below against the apply of a writer
	bySlice  map[uint64][]string
	kv       map[string]map[string][]byte // state and meta
	outboxes map[uint64][]byte
	order    []uint64 // outbox sequences in ascending order, may hold deleted ones
	seq      uint64   // last outbox sequence
	closed   bool
}

func newMemBackend() *memBackend {
	return &memBackend{
		bySlice:  make(map[uint64][]string),
		kv:       make(map[string]map[string][]byte),
		outboxes: make(map[uint64][]byte),
	}
}

func (m *memBackend) name() string { return "memory" }

func (m *memBackend) size() int64 { return 0 }

func (m *memBackend) close() error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.bySlice, m.kv, m.outboxes, m.order = nil, nil, nil, nil
	for i := range m.parts {
		pt := &m.parts[i]
		pt.mu.Lock()
		pt.idx, pt.more = nil, nil
		pt.mu.Unlock()
	}
	return nil
}

func (m *memBackend) findOutcome(cur, mask uint64, key []byte, fn func(slice uint64, v []byte) error) (bool, error) {
	e, ok := m.entry(key)
	if !ok || e.slice > cur || cur-e.slice > 63 || mask&(1<<(cur-e.slice)) == 0 {
		return false, nil
	}
	return true, fn(e.slice, e.v)
}

// lookup returns the stored outcome of key if its slice is in mask,
// relative to cur. The value is never changed once stored.
// h is the key's xxhash.
func (m *memBackend) lookup(key []byte, h, cur, mask uint64) ([]byte, bool) {
	pt := m.partOf(h)
	pt.mu.RLock()
	e, ok := pt.get(string(key), h)
	pt.mu.RUnlock()
	if !ok || e.slice > cur || cur-e.slice > 63 || mask&(1<<(cur-e.slice)) == 0 {
		return nil, false
	}
	return e.v, true
}

// moreEntry is an outcome in a partition's side map, with the hash whose
// slot it waits for.
type moreEntry struct {
	e memEntry
	h uint64
}

// memEntry is a stored outcome, its key and its slice.
type memEntry struct {
	slice uint64
	key   string
	v     []byte
}

// locate returns the mask bit (relative to cur) of the slice holding key's
// outcome, or 0. Commit uses it, under its own lock, to read only that
// slice.
func (m *memBackend) locate(key []byte, cur uint64) uint64 {
	e, ok := m.entry(key)
	if !ok || e.slice > cur || cur-e.slice > 63 {
		return 0
	}
	return 1 << (cur - e.slice)
}

func (m *memBackend) get(b string, key []byte) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.kv[b][string(key)]
	if !ok {
		return nil, false, nil
	}
	return append(make([]byte, 0, len(v)), v...), true, nil
}

func (m *memBackend) outbox(max int, fn func(seq uint64, v []byte) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, seq := range m.order {
		if n >= max {
			break
		}
		if v, ok := m.outboxes[seq]; ok {
			if err := fn(seq, v); err != nil {
				return err
			}
			n++
		}
	}
	return nil
}

func (m *memBackend) list(b string, after []byte, max int, fn func(k, v []byte) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, k := range slices.Sorted(maps.Keys(m.kv[b])) {
		if n >= max {
			break
		}
		if after != nil && k <= string(after) {
			continue
		}
		if err := fn([]byte(k), m.kv[b][k]); err != nil {
			return err
		}
		n++
	}
	return nil
}

func (m *memBackend) deleteOutbox(seqs []uint64) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, seq := range seqs {
		delete(m.outboxes, seq)
	}
	m.order = slices.DeleteFunc(m.order, func(seq uint64) bool {
		_, ok := m.outboxes[seq]
		return !ok
	})
	return nil
}

func (m *memBackend) scan(low uint64, fn func(slice uint64, key []byte) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, slice := range slices.Sorted(maps.Keys(m.bySlice)) {
		if slice < low {
			continue
		}
		for _, k := range m.bySlice[slice] {
			if e, ok := m.entry([]byte(k)); !ok || e.slice != slice {
				continue
			}
			if err := fn(slice, []byte(k)); err != nil {
				return err
			}
		}
	}
	return nil
}

// memParts is the number of outcome partitions; a power of two.
const memParts = 64

// memPart is one partition of the outcomes. Writers (holding m.wmu) change
// it under mu; they may read it without mu, since nobody else writes.
//
// Outcomes are found by the 64-bit hash of their key (which Commit and
// Lookup compute anyway, to pick the partition), and checked against the
// full key they keep. In isolation this costs what a map by full key costs
// (BenchmarkIndex: about 250 ns per new identity either way on the
// development machine, dominated by cache misses). An outcome whose hash is taken by another key waits
// in more, by full key: so the index stays exact.
type memPart struct {
	mu   sync.RWMutex
	idx  map[uint64]memEntry
	more map[string]moreEntry // outcomes whose hash slot in idx holds another key
	_    [64]byte             // keep neighbouring partitions' locks off one cache line
}

func (m *memBackend) partOf(h uint64) *memPart { return &m.parts[h&(memParts-1)] }

// entry returns key's stored outcome, taking its partition's read lock.
func (m *memBackend) entry(key []byte) (memEntry, bool) {
	h := xxhash.Sum64(key)
	pt := m.partOf(h)
	pt.mu.RLock()
	e, ok := pt.get(string(key), h)
	pt.mu.RUnlock()
	return e, ok
}

// peek returns key's stored outcome without a lock: only a writer, holding
// m.wmu, may call it.
func (m *memBackend) peek(key string) (memEntry, bool) {
	h := xxhash.Sum64String(key)
	return m.partOf(h).get(key, h)
}

// get returns the outcome of key, of hash h. pt.mu or m.wmu must be held.
func (pt *memPart) get(key string, h uint64) (memEntry, bool) {
	e, ok := pt.idx[h]
	if ok && e.key == key {
		return e, true
	}
	if len(pt.more) == 0 {
		return memEntry{}, false
	}
	me, ok := pt.more[key]
	return me.e, ok
}

// set stores e (whose key hashes to h). pt.mu must be held for writing.
func (pt *memPart) set(h uint64, e memEntry) {
	if pt.idx == nil {
		pt.idx = make(map[uint64]memEntry)
	}
	if old, ok := pt.idx[h]; ok && old.key != e.key {
		if pt.more == nil {
			pt.more = make(map[string]moreEntry)
		}
		pt.more[e.key] = moreEntry{e: e, h: h}
		return
	}
	pt.idx[h] = e
}

// del deletes the outcome of key, of hash h. pt.mu must be held for
// writing.
func (pt *memPart) del(key string, h uint64) {
	if old, ok := pt.idx[h]; ok && old.key == key {
		delete(pt.idx, h)
		// Move an outcome waiting for this hash slot into it.
		for k, me := range pt.more {
			if me.h == h {
				pt.idx[h] = me.e
				delete(pt.more, k)
				break
			}
		}
		return
	}
	delete(pt.more, key)
}

// store sets or, when e.v is nil, deletes key's outcome and returns what
// was there. The caller holds m.wmu.
func (m *memBackend) store(key string, e memEntry) (memEntry, bool) {
	h := xxhash.Sum64String(key)
	pt := m.partOf(h)
	pt.mu.Lock()
	old, had := pt.get(key, h)
	if e.v == nil {
		if had {
			pt.del(key, h)
		}
	} else {
		e.key = key
		pt.set(h, e)
	}
	pt.mu.Unlock()
	return old, had
}

// setOutcome stores v as key's outcome in slice. The caller holds m.wmu
// and m.mu for writing.
func (m *memBackend) setOutcome(key string, slice uint64, v []byte) {
	if old, ok := m.store(key, memEntry{slice: slice, v: v}); !ok || old.slice != slice {
		m.bySlice[slice] = append(m.bySlice[slice], key)
	}
}

// dropSlice forgets every outcome stored in slice. The caller holds m.wmu
// and m.mu for writing.
func (m *memBackend) dropSlice(slice uint64) {
	for _, k := range m.bySlice[slice] {
		if e, ok := m.peek(k); ok && e.slice == slice {
			m.store(k, memEntry{})
		}
	}
	delete(m.bySlice, slice)
}

func (m *memBackend) update(fn func(tx writeTx) error) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if m.closed {
		return errors.New("memory store closed")
	}
	// Only writers change the maps, and they hold wmu: the transaction
	// may read them without mu.
	tx := &memTx{m: m, seq: m.seq}
	if err := fn(tx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for slice := range tx.dropped {
		m.dropSlice(slice)
	}
	for k, e := range tx.puts {
		if e.v == nil {
			m.store(k, memEntry{})
			continue
		}
		m.setOutcome(k, e.slice, e.v)
	}
	for name, kvs := range tx.kv {
		b := m.kv[name]
		if b == nil {
			b = make(map[string][]byte, len(kvs))
			m.kv[name] = b
		}
		for k, v := range kvs {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = *v
			}
		}
	}
	for _, e := range tx.outbox {
		m.outboxes[e.seq] = e.v
		m.order = append(m.order, e.seq)
	}
	m.seq = tx.seq
	return nil
}

func (m *memBackend) check() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return checkValues(func(bucket string, fn func(k, v []byte) error) error {
		var b map[string][]byte
		switch bucket {
		case outcomePrefix:
			for i := range m.parts {
				pt := &m.parts[i]
				pt.mu.RLock()
				for _, e := range pt.idx {
					if err := fn([]byte(e.key), e.v); err != nil {
						pt.mu.RUnlock()
						return err
					}
				}
				for _, me := range pt.more {
					if err := fn([]byte(me.e.key), me.e.v); err != nil {
						pt.mu.RUnlock()
						return err
					}
				}
				pt.mu.RUnlock()
			}
			return nil
		case bucketOutbox:
			for seq, v := range m.outboxes {
				var k [8]byte
				binary.BigEndian.PutUint64(k[:], seq)
				if err := fn(k[:], v); err != nil {
					return err
				}
			}
			return nil
		default:
			b = m.kv[bucket]
		}
		for k, v := range b {
			if err := fn([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// memTx buffers a transaction's writes; reads see them first.
type memTx struct {
	m       *memBackend
	puts    map[string]memEntry // outcomes written (v nil: deleted)
	dropped map[uint64]bool
	kv      map[string]map[string]*[]byte // nil value: deleted
	outbox  []memOutbox
	seq     uint64
}

type memOutbox struct {
	seq uint64
	v   []byte
}

// view returns key's outcome as the transaction sees it.
func (t *memTx) view(key string) (memEntry, bool) {
	if e, ok := t.puts[key]; ok {
		return e, e.v != nil
	}
	e, ok := t.m.peek(key)
	if !ok || t.dropped[e.slice] {
		return memEntry{}, false
	}
	return e, true
}

func (t *memTx) outcome(slice uint64, key []byte) []byte {
	if e, ok := t.view(string(key)); ok && e.slice == slice {
		return e.v
	}
	return nil
}

func (t *memTx) putOutcome(slice uint64, key, v []byte) error {
	if t.puts == nil {
		t.puts = make(map[string]memEntry)
	}
	c := slices.Clone(v)
	if c == nil {
		c = []byte{}
	}
	t.puts[string(key)] = memEntry{slice: slice, v: c}
	return nil
}

func (t *memTx) deleteOutcome(slice uint64, key []byte) error {
	if e, ok := t.view(string(key)); ok && e.slice == slice {
		if t.puts == nil {
			t.puts = make(map[string]memEntry)
		}
		t.puts[string(key)] = memEntry{}
	}
	return nil
}

func (t *memTx) slices() ([]uint64, error) {
	var out []uint64
	for slice := range t.m.bySlice {
		if !t.dropped[slice] {
			out = append(out, slice)
		}
	}
	for _, e := range t.puts {
		if e.v != nil {
			out = append(out, e.slice)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (t *memTx) deleteSlice(slice uint64) error {
	if t.dropped == nil {
		t.dropped = make(map[uint64]bool)
	}
	t.dropped[slice] = true
	for k, e := range t.puts {
		if e.slice == slice {
			delete(t.puts, k)
		}
	}
	return nil
}

func (t *memTx) forEachOutcome(slice uint64, fn func(k, v []byte) error) error {
	keys := slices.Clone(t.m.bySlice[slice])
	for k, e := range t.puts {
		if e.slice == slice {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for _, k := range keys {
		if e, ok := t.view(k); ok && e.slice == slice {
			if err := fn([]byte(k), e.v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *memTx) get(b string, key []byte) []byte {
	if v, ok := t.kv[b][string(key)]; ok {
		if v == nil {
			return nil
		}
		return *v
	}
	return t.m.kv[b][string(key)]
}

func (t *memTx) put(b string, key, v []byte) error {
	if b == bucketOutbox {
		if len(key) != 8 {
			return errors.New("outbox key is not 8 bytes")
		}
		t.outbox = append(t.outbox, memOutbox{seq: binary.BigEndian.Uint64(key), v: slices.Clone(v)})
		return nil
	}
	c := slices.Clone(v)
	if c == nil {
		c = []byte{}
	}
	t.kvBucket(b)[string(key)] = &c
	return nil
}

func (t *memTx) delete(b string, key []byte) error {
	t.kvBucket(b)[string(key)] = nil
	return nil
}

func (t *memTx) kvBucket(b string) map[string]*[]byte {
	if t.kv == nil {
		t.kv = make(map[string]map[string]*[]byte)
	}
	m := t.kv[b]
	if m == nil {
		m = make(map[string]*[]byte)
		t.kv[b] = m
	}
	return m
}

func (t *memTx) nextOutboxSeq() (uint64, error) {
	t.seq++
	return t.seq, nil
}

// plainBatch reports whether b holds only outcomes: no effects, dead
// letters, redrives, releases or checkpoints. Such a batch is what a
// pass-through or dedup-only pipeline commits, and the memory backend
// commits it without a buffering transaction.
func plainBatch(b *onceflow.CommitBatch) bool {
	if len(b.Checkpoints) > 0 {
		return false
	}
	for i := range b.Records {
		r := &b.Records[i]
		if len(r.Writes) > 0 || len(r.Outbox) > 0 || r.DeadLetter != nil || r.Redrive || r.Release {
			return false
		}
	}
	return true
}

// memUndo is an expired outcome commitPlain overwrote, to restore on
// failure.
type memUndo struct {
	key string
	old memEntry
}

// commitPlain commits a plain batch (see plainBatch) in one pass: per
// record one map read and, for a new identity, one map write, each under
// its partition's lock only, so that lookups go on during the commit. It
// fills sc.dup and sc.stored as putRecords does. The keys of the batch
// share one string and the values one buffer, so a batch costs a few
// allocations however many records it has.
//
// A stored record that cannot be decoded (which only a bug can cause: the
// memory backend encodes every record itself) fails the commit, and every
// write is undone.
func (m *memBackend) commitPlain(b *onceflow.CommitBatch, sc *commitScratch, cur, live, commits uint64) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if m.closed {
		return errors.New("memory store closed")
	}
	keys := string(sc.keyBuf)
	size := 0
	for i := range b.Records {
		size += recordSize(&b.Records[i])
	}
	vals := make([]byte, 0, size)
	sc.undo, sc.ins = sc.undo[:0], sc.ins[:0]
	// Visit the records partition by partition (in batch order within
	// each, so that the first of equal identities is stored), taking each
	// partition's lock once.
	n := len(b.Records)
	sc.offs = slices.Grow(sc.offs[:0], n+1)[:n+1]
	for i := range n {
		sc.offs[i+1] = sc.offs[i] + len(sc.keys[i])
	}
	var counts [memParts + 1]int
	for i := range n {
		counts[sc.hashes[i]&(memParts-1)+1]++
	}
	for k := 1; k <= memParts; k++ {
		counts[k] += counts[k-1]
	}
	sc.order = slices.Grow(sc.order[:0], n)[:n]
	next := counts
	for i := range n {
		k := sc.hashes[i] & (memParts - 1)
		sc.order[next[k]] = i
		next[k]++
	}
	for k := range memParts {
		if counts[k] == counts[k+1] {
			continue
		}
		pt := &m.parts[k]
		pt.mu.Lock()
		for _, i := range sc.order[counts[k]:counts[k+1]] {
			key := keys[sc.offs[i]:sc.offs[i+1]]
			e, ok := pt.get(key, sc.hashes[i])
			if ok && e.slice <= cur && cur-e.slice <= 63 && live&(1<<(cur-e.slice)) != 0 {
				rec, err := decodeRecord(e.v)
				if err != nil {
					pt.mu.Unlock()
					m.undo(keys, sc)
					return fmt.Errorf("stored record of %v: %w", b.Records[i].ID, err)
				}
				sc.dup[i] = true
				sc.stored[i] = rec.outcome(true)
				continue
			}
			rec := recordOf(&b.Records[i])
			start := len(vals)
			vals = appendRecord(vals, &rec)
			pt.set(sc.hashes[i], memEntry{slice: cur, key: key, v: vals[start:len(vals):len(vals)]})
			sc.ins = append(sc.ins, int32(i))
			if ok { // an expired outcome, overwritten
				sc.undo = append(sc.undo, memUndo{key: key, old: e})
			}
		}
		pt.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Every outcome inserted is new to the current slice: one there would
	// have been live, a duplicate.
	list := m.bySlice[cur]
	for _, i := range sc.ins {
		list = append(list, keys[sc.offs[i]:sc.offs[i+1]])
	}
	m.bySlice[cur] = list
	meta := m.kv[bucketMeta]
	if meta == nil {
		meta = make(map[string][]byte)
		m.kv[bucketMeta] = meta
	}
	meta[metaCommits] = binary.BigEndian.AppendUint64(nil, commits)
	clear(sc.undo)
	return nil
}

// undo removes what commitPlain inserted (sc.ins, keys in keys at sc.offs)
// and restores the expired outcomes it overwrote (sc.undo).
func (m *memBackend) undo(keys string, sc *commitScratch) {
	for _, i := range sc.ins {
		m.store(keys[sc.offs[i]:sc.offs[i+1]], memEntry{})
	}
	for _, u := range sc.undo {
		m.store(u.key, u.old)
	}
}
