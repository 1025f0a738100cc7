package dedup

import (
	"bytes"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	onceflow "github.com/onceflow/onceflow"
)

// outcomeCache is the cache tier: recent identity → outcome. It is
// advisory: ristretto drops Sets under load and rejects new keys once
// full, so a miss always falls through to the store, and an entry is
// trusted only when its full identity key matches (the cache key is a
// 64-bit hash) and its slice is still live.
//
// A nil *outcomeCache is a disabled cache.
type outcomeCache struct {
	c *ristretto.Cache[uint64, *cacheEntry]
}

// cacheEntry is one cached outcome. buf holds the identity key followed by
// the result, so that an entry costs two allocations.
type cacheEntry struct {
	buf        []byte
	keyLen     int
	slice      uint64
	status     onceflow.Status
	attempts   uint32
	firstSeen  time.Time
	errorClass string
}

func newCache(items int) (*outcomeCache, error) {
	if items == 0 {
		return nil, nil
	}
	c, err := ristretto.NewCache(&ristretto.Config[uint64, *cacheEntry]{
		NumCounters: 10 * int64(items), // ristretto's advice: 10 counters per item
		MaxCost:     int64(items),      // cost 1 per item
		BufferItems: 64,
		// Without it, ~56 bytes of internal cost per item count against
		// MaxCost and a cache of n items keeps n/57.
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, err
	}
	return &outcomeCache{c: c}, nil
}

// get returns the cached outcome of key (hash h) if it is cached in a
// slice at or above low. The Result is a copy.
func (c *outcomeCache) get(h uint64, key []byte, low uint64) (onceflow.Outcome, bool) {
	if c == nil {
		return onceflow.Outcome{}, false
	}
	e, ok := c.c.Get(h)
	if !ok || e.slice < low || !bytes.Equal(e.buf[:e.keyLen], key) {
		return onceflow.Outcome{}, false
	}
	rec := record{
		status:     e.status,
		attempts:   e.attempts,
		firstSeen:  e.firstSeen,
		errorClass: e.errorClass,
	}
	if len(e.buf) > e.keyLen {
		rec.result = e.buf[e.keyLen:]
	}
	return rec.outcome(true), true
}

// set caches rec as the outcome of key (hash h), stored in slice. It
// copies key and rec.result.
func (c *outcomeCache) set(h uint64, key []byte, slice uint64, rec *record) {
	if c == nil {
		return
	}
	buf := make([]byte, 0, len(key)+len(rec.result))
	buf = append(append(buf, key...), rec.result...)
	c.c.Set(h, &cacheEntry{
		buf:        buf,
		keyLen:     len(key),
		slice:      slice,
		status:     rec.status,
		attempts:   rec.attempts,
		firstSeen:  rec.firstSeen,
		errorClass: rec.errorClass,
	}, 1)
}

// del removes the outcome of the identity with hash h.
func (c *outcomeCache) del(h uint64) {
	if c != nil {
		c.c.Del(h)
	}
}

// wait blocks until earlier sets are applied (tests and benchmarks).
func (c *outcomeCache) wait() {
	if c != nil {
		c.c.Wait()
	}
}

// close stops ristretto's goroutines. No get or set may run concurrently
// or later: ristretto's Close races Set.
func (c *outcomeCache) close() {
	if c != nil {
		c.c.Close()
	}
}
