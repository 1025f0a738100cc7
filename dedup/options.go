package dedup

import (
	"errors"
	"fmt"
	"time"
)

// An Option configures a Store opened by [Open] or [NewMemory]. The last
// option of a kind wins.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	exact       bool // the backend is an exact in-memory map: no filters, no cache
	window      time.Duration
	slices      int
	clock       func() time.Time
	capacity    int
	fpr         float64
	cacheItems  int
	lockTimeout time.Duration
	noSync      bool
	readOnly    bool
	// unsortedPuts writes a commit's records in batch order instead of key
	// order; only the benchmarks set it (export_test.go), to measure why
	// the keys are sorted.
	unsortedPuts bool
	// fillPercent of the outcome buckets; 0 keeps bbolt's default (0.5).
	// Only the benchmarks set it (export_test.go).
	fillPercent float64
}

// defaultOptions is the single place where defaults live.
func defaultOptions() options {
	return options{
		window:      7 * 24 * time.Hour,
		slices:      8,
		clock:       time.Now,
		capacity:    10_000_000,
		fpr:         0.01,
		cacheItems:  100_000,
		lockTimeout: 2 * time.Second,
	}
}

// maxSlices bounds WithSlices: the live slices of a lookup (the current one
// and the previous n) are tracked in one 64-bit mask.
const maxSlices = 63

// minSliceWidth bounds window/slices from below.
const minSliceWidth = time.Millisecond

// Upper bounds of WithCapacity and WithCacheItems: beyond them the sizes
// of the filters or of the cache's counters overflow. Memory runs out well
// before them on most machines (about 9 GiB of filters at maxCapacity).
const (
	maxCapacity   = 1 << 32
	maxCacheItems = 1 << 30
)

func (o *options) validate() error {
	switch {
	case o.window <= 0:
		return fmt.Errorf("dedup: window %v: must be positive", o.window)
	case o.slices < 1 || o.slices > maxSlices:
		return fmt.Errorf("dedup: slices %d: must be in [1, %d]", o.slices, maxSlices)
	case o.window/time.Duration(o.slices) < minSliceWidth:
		return fmt.Errorf("dedup: window %v / slices %d: a slice must be at least %v", o.window, o.slices, minSliceWidth)
	case o.clock == nil:
		return errors.New("dedup: clock is nil")
	case o.capacity < 1 || o.capacity > maxCapacity:
		return fmt.Errorf("dedup: WithCapacity(%d): must be in [1, %d]", o.capacity, maxCapacity)
	case !(o.fpr > 0 && o.fpr < 1):
		return fmt.Errorf("dedup: false-positive rate %v: must be in (0, 1)", o.fpr)
	case o.cacheItems < 0 || o.cacheItems > maxCacheItems:
		return fmt.Errorf("dedup: WithCacheItems(%d): must be in [0, %d]", o.cacheItems, maxCacheItems)
	case o.lockTimeout <= 0:
		return fmt.Errorf("dedup: lock timeout %v: must be positive", o.lockTimeout)
	}
	return nil
}

// WithWindow sets how long identities are remembered: at least d and at
// most d plus one slice (d/slices) after their commit. A duplicate that
// arrives later is processed again. Default: 7*24h.
//
// Reopening a store with another window or slice count is allowed: the
// existing slices are remapped once, at open, so that none is forgotten
// earlier than its new window says.
func WithWindow(d time.Duration) Option {
	return optionFunc(func(o *options) { o.window = d })
}

// WithSlices sets into how many time slices the window is cut, in [1, 63].
// Expiry forgets one whole slice at a time, so more slices make the window
// tighter (remembered for at most window*(1+1/n)) at the cost of one more
// Bloom filter probe per lookup and slice. Default: 8.
func WithSlices(n int) Option {
	return optionFunc(func(o *options) { o.slices = n })
}

// WithClock sets the source of time used to pick the slice of a commit
// and to expire slices. The store never lets its current slice go
// backwards: a clock stepping back keeps the latest slice seen. Default:
// time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.clock = now })
}

// WithCapacity sets how many identities one window is expected to hold:
// each slice's Bloom filters are sized for n/slices identities (spread over
// 16 partitions). More is not an error: a filter that fills up gets a fresh
// one chained behind it, counted in [Stats].BloomOverflows, so the
// false-positive rate holds at the price of memory.
//
// Memory: the filters of all slices+1 live slices are allocated at full
// size, about 2.1 bytes per identity of capacity at the default rate and
// 8 slices (1.8 bytes per slot, times 9/8): 20.3 MiB for 10M, measured
// by TestWindowHeap10M. Default: 10,000,000.
func WithCapacity(n int) Option {
	return optionFunc(func(o *options) { o.capacity = n })
}

// WithFalsePositiveRate sets the target probability, in (0, 1), that a
// lookup of an identity never seen reads the store because the Bloom
// filters said "maybe". A lookup probes the filters of every live slice,
// so each filter is sized for p/(slices+1): at p = 0.01 and 8 slices, that
// is 14.2 bits (1.8 bytes) per identity, k = 11. Halving p costs about 0.26
// bytes per identity more. Default: 0.01.
func WithFalsePositiveRate(p float64) Option {
	return optionFunc(func(o *options) { o.fpr = p })
}

// WithCacheItems sets how many recent outcomes the in-memory cache holds;
// 0 disables the cache. The cache holds the outcomes that lookups read
// from the store (not what commits write), so the second and later
// duplicates of an identity are answered without a read. It is advisory:
// a miss or a dropped entry costs a store read, never a wrong answer.
//
// Memory, measured by TestWindowHeap10M: about 270 bytes per cached item
// with a 53-byte identity key and an 11-byte result (ristretto's ~155
// bytes, the entry, the key and result), plus about 40 bytes per item of
// capacity for ristretto's 10 admission counters, allocated at open.
// 100,000 items: 26 MiB + 4 MiB. Default: 100,000.
func WithCacheItems(n int) Option {
	return optionFunc(func(o *options) { o.cacheItems = n })
}

// WithLockTimeout sets how long [Open] waits for the file lock held by
// another process (or another Store in this process) before failing with
// [ErrLocked]. Default: 2s.
func WithLockTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.lockTimeout = d })
}

// ReadOnly opens the disk store for reading only, for tools that inspect
// a store while nothing writes it (the CLI's inspect and stats). The file
// must exist; it is opened read-only and never written: no expiry, no
// remapping, no layout upgrade. Read-only openers share the file; a writer
// and the readers exclude each other, within the lock timeout. The window
// is the one the store was last written with: its stored slice width
// times the slice count ([WithWindow] is ignored), so the live identities
// are the ones its writer sees. Commit and every other write fail with an
// error matching [onceflow.ErrStorage]. [NewMemory] refuses it.
func ReadOnly() Option {
	return optionFunc(func(o *options) { o.readOnly = true })
}

// UnsafeNoSync makes the disk store skip fsync at commit. THIS IS UNSAFE:
// a commit then survives a crash of the process (the page cache survives)
// but not a crash of the machine or a power loss, after which the file may
// miss commits that were acknowledged, or be corrupt. Use it for tests and
// throwaway state only. [Stats].UnsafeNoSync reports it. No effect on
// [NewMemory].
func UnsafeNoSync() Option {
	return optionFunc(func(o *options) { o.noSync = true })
}
