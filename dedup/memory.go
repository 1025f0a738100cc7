package dedup

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	onceflow "github.com/onceflow/onceflow"
)

// memBackend keeps a Store's buckets in maps. Commits are atomic — a
// transaction buffers its writes and applies them at the end; a batch of
// plain outcomes is written partition by partition and undone if a stored
// record fails to decode (only a bug could cause that) or an outcome is
// 4 GiB or more — but not durable,
// and a concurrent lookup may see a commit's outcomes before the commit
// returns: the store writes each value once and never changes it, so what
// a lookup sees is final unless that commit fails, which is fatal to the
// pipeline.
//
// Outcomes live in memParts partitions by identity-key hash, each entry
// with its key and slice: an identity has at most one stored outcome, so
// one map read answers a lookup and one write stores an outcome. sliceSet
// holds every slice that may hold outcomes (and may hold slices whose
// outcomes have all moved or gone). Expiry reads each partition's blocks
// of the expired slices (see memPart); scans, for tools, sweep every
// partition.
type memBackend struct {
	wmu sync.Mutex // serializes writers (update, commitPlain, deleteOutbox)

	// parts hold the outcomes by identity key, split by key hash so that
	// lookups and a commit's writes rarely meet on a lock.
	parts [memParts]memPart

	mu       sync.RWMutex // guards the fields below against the apply of a writer
	sliceSet map[uint64]struct{}
	kv       map[string]map[string][]byte // state and meta
	outboxes map[uint64][]byte
	order    []uint64 // outbox sequences in ascending order, may hold deleted ones
	seq      uint64   // last outbox sequence
	closed   bool
}

func newMemBackend() *memBackend {
	return &memBackend{
		sliceSet: make(map[uint64]struct{}),
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
	m.sliceSet, m.kv, m.outboxes, m.order = nil, nil, nil, nil
	for i := range m.parts {
		pt := &m.parts[i]
		pt.mu.Lock()
		pt.idx, pt.more, pt.blocks, pt.free, pt.sliceBlocks, pt.size, pt.dead, pt.fillBlock = nil, nil, nil, nil, nil, 0, 0, 0
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
	e, ok := pt.getBytes(key, h)
	pt.mu.RUnlock()
	if !ok || e.slice > cur || cur-e.slice > 63 || mask&(1<<(cur-e.slice)) == 0 {
		return nil, false
	}
	return e.v, true
}

// memEntry is a stored outcome, its key and its slice: what set stores
// and get returns (get leaves key empty). v, from get, aliases its
// partition's data, which is never changed once written.
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
	type found struct {
		slice uint64
		key   string
	}
	var all []found
	m.mu.RLock()
	for i := range m.parts {
		pt := &m.parts[i]
		pt.mu.RLock()
		_ = pt.each(func(key []byte, e memEntry) error {
			if e.slice >= low {
				all = append(all, found{e.slice, string(key)})
			}
			return nil
		})
		pt.mu.RUnlock()
	}
	m.mu.RUnlock()
	// Slice by slice, keys in order: what the bbolt backend's buckets give.
	slices.SortFunc(all, func(a, b found) int {
		if c := cmp.Compare(a.slice, b.slice); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	for _, f := range all {
		if err := fn(f.slice, []byte(f.key)); err != nil {
			return err
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
// full key they keep. An outcome whose hash is taken by another key waits
// in more, by full key: so the index stays exact.
//
// The index holds no pointers: each outcome (its slice, key and value) is
// appended to a block of bytes, and the maps hold only its position (a
// uint64: block and offset). The garbage collector never scans the maps
// or the blocks, writing them takes no write barrier, a map slot is 16
// bytes, and blocks are never copied to grow — which makes this cheaper
// than a map of keys and value slices (BenchmarkIndex). Bytes in a block
// are written once and never changed, so a value returned by get stays
// valid after the lock is released; the blocks are compacted into new
// ones when more than half of what they hold is dead.
//
// Each block holds the outcomes of one slice (sliceBlocks), so expiring a
// slice reads only that slice's blocks, in order, and then frees them
// whole: its cost is that of the expired identities, not of the window.
type memPart struct {
	mu          sync.RWMutex
	idx         map[uint64]uint64   // key hash → position
	more        map[string]moreRef  // outcomes whose hash slot in idx holds another key
	blocks      [][]byte            // by block index; nil once freed
	free        []uint32            // indexes of freed blocks, to reuse
	sliceBlocks map[uint64][]uint32 // each slice's blocks, the one being filled last
	fillSlice   uint64              // the slice of the block filled last,
	fillBlock   uint32              // and its index plus one (0: none)
	size        int                 // bytes in blocks
	dead        int                 // of which no outcome refers to
	_           [64]byte            // keep neighbouring partitions' locks off one cache line
}

// moreRef is an outcome in a partition's side map, with the hash whose
// slot it waits for.
type moreRef struct {
	pos uint64
	h   uint64
}

// memBlock is the size of a partition's blocks; an outcome larger than a
// block gets a block of its own.
const memBlock = 64 << 10

// outcomeTooLarge is the error of a commit of an outcome (key, result and
// error class) of 4 GiB or more: a guard, since Commit refuses far smaller
// keys and results (ErrInvalidRecord, onceflow.ErrResultTooLarge) before
// they get here; only an error class could be that long.
func outcomeTooLarge(n uint64) error {
	return fmt.Errorf("%w: memory store: an outcome of %d bytes (4 GiB or more)", ErrInvalidRecord, n)
}

func (m *memBackend) partOf(h uint64) *memPart { return &m.parts[h&(memParts-1)] }

// entry returns key's stored outcome, taking its partition's read lock.
func (m *memBackend) entry(key []byte) (memEntry, bool) {
	h := xxhash.Sum64(key)
	pt := m.partOf(h)
	pt.mu.RLock()
	e, ok := pt.getBytes(key, h)
	pt.mu.RUnlock()
	return e, ok
}

// peek returns key's stored outcome without a lock: only a writer, holding
// m.wmu, may call it.
func (m *memBackend) peek(key string) (memEntry, bool) {
	h := xxhash.Sum64String(key)
	return m.partOf(h).get(key, h)
}

// at decodes the outcome at pos: its key and its entry, whose v aliases
// the block. An outcome is uvarint(slice) uvarint(len(key))
// uvarint(len(value)) key value.
func (pt *memPart) at(pos uint64) (key []byte, e memEntry, n int) {
	return outcomeAt(pt.blocks, pos)
}

// outcomeAt is at in blocks.
func outcomeAt(blocks [][]byte, pos uint64) (key []byte, e memEntry, n int) {
	b := blocks[pos>>32][uint32(pos):]
	slice, n1 := binary.Uvarint(b)
	klen, n2 := binary.Uvarint(b[n1:])
	vlen, n3 := binary.Uvarint(b[n1+n2:])
	k := n1 + n2 + n3
	v := k + int(klen)
	end := v + int(vlen)
	return b[k:v:v], memEntry{slice: slice, v: b[v:end:end]}, end
}

// find returns the position of key, of hash h. pt.mu or m.wmu must be
// held. It does not allocate.
func find[K string | []byte](pt *memPart, key K, h uint64) (uint64, bool) {
	pos, ok, _ := findSlot(pt, key, h)
	return pos, ok
}

// findSlot is find that also reports whether h's slot in the index is
// taken (by key or by another key).
func findSlot[K string | []byte](pt *memPart, key K, h uint64) (pos uint64, found, taken bool) {
	pos, taken = pt.idx[h]
	if taken {
		if k, _, _ := pt.at(pos); string(k) == string(key) {
			return pos, true, true
		}
	}
	if len(pt.more) == 0 {
		return 0, false, taken
	}
	mr, ok := pt.more[string(key)]
	return mr.pos, ok, taken
}

// get returns the outcome of key, of hash h (e.key is left empty). pt.mu
// or m.wmu must be held.
func (pt *memPart) get(key string, h uint64) (memEntry, bool) { return entryOf(pt, key, h) }

// getBytes is get for a key held in bytes.
func (pt *memPart) getBytes(key []byte, h uint64) (memEntry, bool) { return entryOf(pt, key, h) }

// entryOf is get for a key held in a string or in bytes.
func entryOf[K string | []byte](pt *memPart, key K, h uint64) (memEntry, bool) {
	pos, ok := find(pt, key, h)
	if !ok {
		return memEntry{}, false
	}
	_, e, _ := pt.at(pos)
	return e, true
}

// set stores e (whose key hashes to h), copying e.key and e.v into a
// block. pt.mu must be held for writing. It fails only for an outcome of
// 4 GiB or more, and then changes nothing.
func (pt *memPart) set(h uint64, e memEntry) error { return put(pt, h, e.key, e.slice, e.v) }

// put is set for a key held in a string or in bytes.
func put[K string | []byte](pt *memPart, h uint64, key K, slice uint64, v []byte) error {
	pos, err := appendTo(pt, slice, key, v)
	if err != nil {
		return err
	}
	if pt.idx == nil {
		pt.idx = make(map[uint64]uint64)
	}
	if old, ok := pt.idx[h]; ok {
		k, _, n := pt.at(old)
		if string(k) == string(key) {
			pt.dead += n
			pt.idx[h] = pos
			pt.compactIfSparse()
			return nil
		}
		if pt.more == nil {
			pt.more = make(map[string]moreRef)
		}
		if mr, ok := pt.more[string(key)]; ok {
			_, _, n := pt.at(mr.pos)
			pt.dead += n
		}
		pt.more[string(key)] = moreRef{pos: pos, h: h}
		pt.compactIfSparse()
		return nil
	}
	pt.idx[h] = pos
	return nil
}

// insertFree is put for a key whose hash h has no slot in the index yet
// (findSlot reported it free): it skips put's look at the slot. pt.mu must
// be held for writing.
func insertFree(pt *memPart, h uint64, key []byte, slice uint64, v []byte) error {
	pos, err := appendTo(pt, slice, key, v)
	if err != nil {
		return err
	}
	if pt.idx == nil {
		pt.idx = make(map[uint64]uint64)
	}
	pt.idx[h] = pos
	return nil
}

// appendTo writes an outcome into the block of its slice being filled,
// or a new one, and returns its position.
func appendTo[K string | []byte](pt *memPart, slice uint64, key K, v []byte) (uint64, error) {
	var hdr [3 * binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], slice)
	h += binary.PutUvarint(hdr[h:], uint64(len(key)))
	h += binary.PutUvarint(hdr[h:], uint64(len(v)))
	n := h + len(key) + len(v)
	if uint64(n) >= 1<<32 {
		return 0, outcomeTooLarge(uint64(n))
	}
	var bi uint32
	if f := pt.fillBlock; f != 0 && pt.fillSlice == slice && cap(pt.blocks[f-1])-len(pt.blocks[f-1]) >= n {
		bi = f - 1 // a commit writes one slice: no map lookup per outcome
	} else if list := pt.sliceBlocks[slice]; len(list) > 0 && cap(pt.blocks[list[len(list)-1]])-len(pt.blocks[list[len(list)-1]]) >= n {
		bi = list[len(list)-1]
	} else {
		b := make([]byte, 0, max(n, memBlock))
		if f := len(pt.free); f > 0 {
			bi = pt.free[f-1]
			pt.free = pt.free[:f-1]
			pt.blocks[bi] = b
		} else {
			bi = uint32(len(pt.blocks))
			pt.blocks = append(pt.blocks, b)
		}
		if pt.sliceBlocks == nil {
			pt.sliceBlocks = make(map[uint64][]uint32)
		}
		pt.sliceBlocks[slice] = append(pt.sliceBlocks[slice], bi)
	}
	pt.fillSlice, pt.fillBlock = slice, bi+1
	b := pt.blocks[bi]
	pos := uint64(bi)<<32 | uint64(len(b))
	pt.blocks[bi] = append(append(append(b, hdr[:h]...), key...), v...)
	pt.size += n
	return pos, nil
}

// dropSlice forgets every outcome of slice: it reads the slice's blocks in
// order, unlinks the outcomes the maps still point to, and frees the
// blocks. hash is the hash the partition's callers give for a key
// (xxhash.Sum64). pt.mu must be held for writing.
func (pt *memPart) dropSlice(slice uint64, hash func([]byte) uint64) {
	for _, bi := range pt.sliceBlocks[slice] {
		b := pt.blocks[bi]
		for off := 0; off < len(b); {
			pos := uint64(bi)<<32 | uint64(off)
			k, _, n := pt.at(pos)
			if !unlink(pt, k, hash(k), pos) {
				pt.dead -= n // already dead: it leaves with its block
			}
			off += n
		}
		pt.size -= len(b)
		pt.blocks[bi] = nil
		pt.free = append(pt.free, bi)
	}
	delete(pt.sliceBlocks, slice)
	if pt.fillSlice == slice {
		pt.fillBlock = 0
	}
}

// unlink removes key (of hash h) from the maps if they point to pos, and
// reports whether they did. It leaves the bytes to the caller.
func unlink[K string | []byte](pt *memPart, key K, h, pos uint64) bool {
	if cur, ok := pt.idx[h]; ok && cur == pos {
		delete(pt.idx, h)
		// Move an outcome waiting for this hash slot into it.
		for k, mr := range pt.more {
			if mr.h == h {
				pt.idx[h] = mr.pos
				delete(pt.more, k)
				break
			}
		}
		return true
	}
	if mr, ok := pt.more[string(key)]; ok && mr.pos == pos {
		delete(pt.more, string(key))
		return true
	}
	return false
}

// del deletes the outcome of key, of hash h. pt.mu must be held for
// writing.
func (pt *memPart) del(key string, h uint64) {
	pos, ok := find(pt, key, h)
	if !ok {
		return
	}
	_, _, n := pt.at(pos)
	unlink(pt, key, h, pos)
	pt.dead += n
	pt.compactIfSparse()
}

// compactIfSparse compacts the blocks when more than half of what they
// hold is dead.
func (pt *memPart) compactIfSparse() {
	if pt.dead > memBlock && pt.dead > pt.size/2 {
		pt.compact()
	}
}

// compact copies the live outcomes into new blocks, slice by slice as
// before. Values handed out before stay valid: they alias the old blocks,
// which are never written again.
func (pt *memPart) compact() {
	old := pt.blocks
	pt.blocks, pt.free, pt.sliceBlocks, pt.size, pt.dead, pt.fillBlock = nil, nil, nil, 0, 0, 0
	move := func(pos uint64) uint64 {
		k, e, _ := outcomeAt(old, pos)
		// Cannot fail: the outcome was stored before.
		pos, _ = appendTo(pt, e.slice, k, e.v)
		return pos
	}
	for h, pos := range pt.idx {
		pt.idx[h] = move(pos)
	}
	for k, mr := range pt.more {
		mr.pos = move(mr.pos)
		pt.more[k] = mr
	}
}

// each calls fn with every outcome of the partition and its key, which
// aliases a block. pt.mu or m.wmu must be held.
func (pt *memPart) each(fn func(key []byte, e memEntry) error) error {
	for _, pos := range pt.idx {
		k, e, _ := pt.at(pos)
		if err := fn(k, e); err != nil {
			return err
		}
	}
	for _, mr := range pt.more {
		k, e, _ := pt.at(mr.pos)
		if err := fn(k, e); err != nil {
			return err
		}
	}
	return nil
}

// store sets or, when e.v is nil, deletes key's outcome and returns what
// was there. The caller holds m.wmu; a set also needs m.mu for writing
// (it adds to sliceSet).
func (m *memBackend) store(key string, e memEntry) (memEntry, bool, error) {
	h := xxhash.Sum64String(key)
	pt := m.partOf(h)
	pt.mu.Lock()
	defer pt.mu.Unlock()
	old, had := pt.get(key, h)
	if e.v == nil {
		if had {
			pt.del(key, h)
		}
		return old, had, nil
	}
	e.key = key
	if err := pt.set(h, e); err != nil {
		return old, had, err
	}
	m.sliceSet[e.slice] = struct{}{}
	return old, had, nil
}

// dropSlices forgets every outcome stored in the slices of drop: each
// partition reads only the blocks of those slices. The caller holds m.wmu
// and m.mu for writing.
func (m *memBackend) dropSlices(drop map[uint64]bool) {
	if len(drop) == 0 {
		return
	}
	for i := range m.parts {
		pt := &m.parts[i]
		pt.mu.Lock()
		for slice := range drop {
			pt.dropSlice(slice, xxhash.Sum64)
		}
		pt.mu.Unlock()
	}
	for slice := range drop {
		delete(m.sliceSet, slice)
	}
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
	// The one way applying can fail is an outcome too large to store:
	// check first, so that the transaction applies whole or not at all.
	for k, e := range tx.puts {
		if n := uint64(len(k)+len(e.v)) + 3*binary.MaxVarintLen64; n >= 1<<32 {
			return outcomeTooLarge(n)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropSlices(tx.dropped)
	for k, e := range tx.puts {
		if _, _, err := m.store(k, e); err != nil {
			return err // cannot happen: checked above
		}
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
				err := pt.each(func(key []byte, e memEntry) error { return fn(key, e.v) })
				pt.mu.RUnlock()
				if err != nil {
					return err
				}
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
	for slice := range t.m.sliceSet {
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
	var keys []string
	for i := range t.m.parts {
		_ = t.m.parts[i].each(func(key []byte, e memEntry) error {
			if e.slice == slice {
				keys = append(keys, string(key))
			}
			return nil
		})
	}
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

// memUndo is an expired outcome commitPlain overwrote (the outcome of the
// batch's record i), to restore on failure.
type memUndo struct {
	i   int32
	old memEntry
}

// commitPlain commits a plain batch (see plainBatch) in one pass: per
// record one map read and, for a new identity, one map write, each under
// its partition's lock only, so that lookups go on during the commit. It
// fills sc.dup and sc.stored as putRecords does. Keys and values are
// copied into the partitions' data, so a batch allocates nothing but what
// the partitions grow by.
//
// A stored record that cannot be decoded (which only a bug can cause: the
// memory backend encodes every record itself) or a full partition fails
// the commit, and every write is undone.
func (m *memBackend) commitPlain(b *onceflow.CommitBatch, sc *commitScratch, cur, live, commits uint64) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if m.closed {
		return errors.New("memory store closed")
	}
	sc.undo, sc.ins = sc.undo[:0], sc.ins[:0]
	// Visit the records partition by partition (in batch order within
	// each, so that the first of equal identities is stored), taking each
	// partition's lock once.
	n := len(b.Records)
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
			key, h := sc.keys[i], sc.hashes[i]
			pos, ok, taken := findSlot(pt, key, h)
			var e memEntry
			if ok {
				_, e, _ = pt.at(pos)
			}
			if ok && e.slice <= cur && cur-e.slice <= 63 && live&(1<<(cur-e.slice)) != 0 {
				rec, err := decodeRecord(e.v)
				if err != nil {
					pt.mu.Unlock()
					return errors.Join(fmt.Errorf("stored record of %v: %w", b.Records[i].ID, err), m.undo(sc))
				}
				sc.dup[i] = true
				sc.stored[i] = rec.outcome(true)
				continue
			}
			rec := recordOf(&b.Records[i])
			sc.vals = appendRecord(sc.vals[:0], &rec)
			var err error
			if ok || taken {
				err = put(pt, h, key, cur, sc.vals) // over an expired outcome, or beside another key
			} else {
				err = insertFree(pt, h, key, cur, sc.vals)
			}
			if err != nil {
				pt.mu.Unlock()
				return errors.Join(err, m.undo(sc))
			}
			sc.ins = append(sc.ins, int32(i))
			if ok { // an expired outcome, overwritten
				sc.undo = append(sc.undo, memUndo{i: int32(i), old: e})
			}
		}
		pt.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Every outcome inserted is new to the current slice: one there would
	// have been live, a duplicate.
	if len(sc.ins) > 0 {
		m.sliceSet[cur] = struct{}{}
	}
	meta := m.kv[bucketMeta]
	if meta == nil {
		meta = make(map[string][]byte)
		m.kv[bucketMeta] = meta
	}
	meta[metaCommits] = binary.BigEndian.AppendUint64(nil, commits)
	clear(sc.undo)
	return nil
}

// undo removes what commitPlain inserted (sc.ins) and restores the expired
// outcomes it overwrote (sc.undo). Restoring cannot run out of room: the
// outcomes it restores were in the partitions before the commit.
func (m *memBackend) undo(sc *commitScratch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, i := range sc.ins {
		if _, _, err := m.store(string(sc.keys[i]), memEntry{}); err != nil {
			return err
		}
	}
	for _, u := range sc.undo {
		if _, _, err := m.store(string(sc.keys[u.i]), u.old); err != nil {
			return fmt.Errorf("undoing a failed commit: %w", err)
		}
	}
	clear(sc.undo)
	return nil
}
