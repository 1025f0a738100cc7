package dedup

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"sync"
)

// memBackend keeps a Store's buckets in maps. Commits are atomic (a
// transaction buffers its writes and applies them at the end) but not
// durable.
type memBackend struct {
	wmu sync.Mutex // serializes writers (update, deleteOutbox)

	mu       sync.RWMutex // guards the fields below against the apply of a writer
	outcomes map[uint64]map[string][]byte
	where    map[string]uint64            // the slice of each key in outcomes: one read finds it
	kv       map[string]map[string][]byte // state and meta
	outboxes map[uint64][]byte
	order    []uint64 // outbox sequences in ascending order, may hold deleted ones
	seq      uint64   // last outbox sequence
	closed   bool
}

func newMemBackend() *memBackend {
	return &memBackend{
		outcomes: make(map[uint64]map[string][]byte),
		where:    make(map[string]uint64),
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
	m.outcomes, m.where, m.kv, m.outboxes, m.order = nil, nil, nil, nil, nil
	return nil
}

func (m *memBackend) findOutcome(cur, mask uint64, key []byte, fn func(slice uint64, v []byte) error) (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	slice, ok := m.where[string(key)]
	if !ok || slice > cur || cur-slice > 63 || mask&(1<<(cur-slice)) == 0 {
		return false, nil
	}
	return true, fn(slice, m.outcomes[slice][string(key)])
}

// locate returns the mask bit (relative to cur) of the slice holding key's
// outcome, or 0. Commit uses it, under its own lock, to read only that
// slice.
func (m *memBackend) locate(key []byte, cur uint64) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	slice, ok := m.where[string(key)]
	if !ok || slice > cur || cur-slice > 63 {
		return 0
	}
	return 1 << (cur - slice)
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
	for _, slice := range slices.Sorted(maps.Keys(m.outcomes)) {
		if slice < low {
			continue
		}
		for k := range m.outcomes[slice] {
			if err := fn(slice, []byte(k)); err != nil {
				return err
			}
		}
	}
	return nil
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
		for k := range m.outcomes[slice] {
			if m.where[k] == slice {
				delete(m.where, k)
			}
		}
		delete(m.outcomes, slice)
	}
	for slice, keys := range tx.deletes {
		for k := range keys {
			delete(m.outcomes[slice], k)
			if w, ok := m.where[k]; ok && w == slice {
				delete(m.where, k)
			}
		}
	}
	for slice, kvs := range tx.outcomes {
		b := m.outcomes[slice]
		if b == nil {
			b = make(map[string][]byte, len(kvs))
			m.outcomes[slice] = b
		}
		for k, v := range kvs {
			b[k] = v
			m.where[k] = slice
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
			for _, b := range m.outcomes {
				for k, v := range b {
					if err := fn([]byte(k), v); err != nil {
						return err
					}
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
	m        *memBackend
	outcomes map[uint64]map[string][]byte
	deletes  map[uint64]map[string]bool // outcomes deleted from the backend's buckets
	dropped  map[uint64]bool
	kv       map[string]map[string]*[]byte // nil value: deleted
	outbox   []memOutbox
	seq      uint64
}

type memOutbox struct {
	seq uint64
	v   []byte
}

func (t *memTx) outcome(slice uint64, key []byte) []byte {
	if v, ok := t.outcomes[slice][string(key)]; ok {
		return v
	}
	if t.dropped[slice] || t.deletes[slice][string(key)] {
		return nil
	}
	return t.m.outcomes[slice][string(key)]
}

func (t *memTx) putOutcome(slice uint64, key, v []byte) error {
	if t.outcomes == nil {
		t.outcomes = make(map[uint64]map[string][]byte)
	}
	b := t.outcomes[slice]
	if b == nil {
		b = make(map[string][]byte)
		t.outcomes[slice] = b
	}
	b[string(key)] = slices.Clone(v)
	delete(t.deletes[slice], string(key))
	return nil
}

func (t *memTx) deleteOutcome(slice uint64, key []byte) error {
	if t.deletes == nil {
		t.deletes = make(map[uint64]map[string]bool)
	}
	if t.deletes[slice] == nil {
		t.deletes[slice] = make(map[string]bool)
	}
	t.deletes[slice][string(key)] = true
	delete(t.outcomes[slice], string(key))
	return nil
}

func (t *memTx) slices() ([]uint64, error) {
	var out []uint64
	for slice := range t.m.outcomes {
		if !t.dropped[slice] {
			out = append(out, slice)
		}
	}
	for slice := range t.outcomes {
		if _, ok := t.m.outcomes[slice]; !ok || t.dropped[slice] {
			out = append(out, slice)
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
	delete(t.outcomes, slice)
	return nil
}

func (t *memTx) forEachOutcome(slice uint64, fn func(k, v []byte) error) error {
	for _, k := range slices.Sorted(maps.Keys(t.m.outcomes[slice])) {
		if _, ok := t.outcomes[slice][k]; ok || t.dropped[slice] || t.deletes[slice][k] {
			continue
		}
		if err := fn([]byte(k), t.m.outcomes[slice][k]); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(t.outcomes[slice])) {
		if err := fn([]byte(k), t.outcomes[slice][k]); err != nil {
			return err
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
