package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	onceflow "github.com/onceflow/onceflow"
)

// item is one accepted event waiting in a shard's intake.
type item struct {
	ev       *onceflow.Event
	size     int
	w        chan Ack // Do's waiter; nil for Submit
	redrive  bool     // a dead letter being redriven
	released bool     // a held event released for handling (acknowledged before as held)
}

// shard is one key-sharded worker and its intake.
//
// The intake is a ring guarded by mu, filled by Submit and emptied by the
// worker up to the batch size at a time: one lock per event for the
// submitter, one per batch for the worker, and no channel operation per
// event. Its length is bounded by maxEvents because every queued event also
// counts as in flight until acknowledged; so the intake, and everything
// downstream of it, never grows with the number of events submitted.
type shard struct {
	p   *Pipeline
	idx int

	mu         sync.Mutex
	items      ring // events waiting for the worker
	queuedSize int
	notices    []*outBatch // committed batches whose claims the worker must release
	closed     bool        // intake closed: Submit refuses
	sleeping   bool        // the worker waits on wake
	used       int         // events accepted and not yet acknowledged
	usedBytes  int
	maxEvents  int
	maxBytes   int
	space      chan struct{} // closed and cleared when space frees; nil when nobody waits
	submitted  uint64

	wake chan struct{} // capacity 1: a pending wake-up for the worker
	// linger wakes a sleeping worker that has fewer than a batch of events
	// waiting, after the linger delay; armed under mu.
	linger      *time.Timer
	lingerArmed bool

	handled      atomic.Uint64
	failed       atomic.Uint64
	duplicates   atomic.Uint64
	acked        atomic.Uint64
	nacked       atomic.Uint64
	retries      atomic.Uint64
	deadLettered atomic.Uint64
	parkedGauge  atomic.Int64
	heldGauge    atomic.Int64
	released     atomic.Uint64
	gapReports   atomic.Uint64
	gapSkipped   atomic.Uint64

	// Owned by the worker goroutine.
	batch       []item
	spare       []*outBatch
	fx          onceflow.Effects
	pending     map[uint64]claim        // by identity hash: handled, not yet committed
	overlay     map[string]overlayEntry // state written by pending events
	stateReader shardState
	parked      map[string]*keyQueue // keys waiting for a retry
	parkedCount int                  // events in parked
	due         retryHeap
	retryTimer  *time.Timer // next retry or gap timeout
	rnd         *rand.Rand
	seqs        map[string]*seqState // sequence ordering, per key
	gaps        gapHeap
	heldTotal   int // events held for sequence ordering
	heldMem     int // of which held in memory, accepted and not yet acknowledged
}

// claim marks an identity handled by this shard and not yet committed: a
// later copy is a duplicate that waits for this commit.
type claim struct {
	ob      *outBatch
	outcome onceflow.Outcome
	id      onceflow.Identity
}

type overlayEntry struct {
	ob    *outBatch
	value []byte
	del   bool
}

func newShard(p *Pipeline, idx, maxEvents, maxBytes int) *shard {
	s := &shard{
		p:          p,
		idx:        idx,
		maxEvents:  maxEvents,
		maxBytes:   maxBytes,
		wake:       make(chan struct{}, 1),
		linger:     time.NewTimer(time.Hour),
		retryTimer: time.NewTimer(time.Hour),
		parked:     make(map[string]*keyQueue),
		seqs:       make(map[string]*seqState),
		rnd:        rand.New(rand.NewPCG(p.cfg.seed, uint64(idx))),
	}
	s.linger.Stop()
	s.retryTimer.Stop()
	if p.cfg.store != nil {
		s.pending = make(map[uint64]claim)
		s.overlay = make(map[string]overlayEntry)
		s.stateReader = shardState{s: s}
	}
	return s
}

func (s *shard) submit(ctx context.Context, it item, block bool) error {
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.fitsLocked(1, it.size) {
			break
		}
		if !block {
			s.mu.Unlock()
			return ErrBackpressure
		}
		if s.space == nil {
			s.space = make(chan struct{})
		}
		space := s.space
		s.mu.Unlock()
		select {
		case <-space: // closed by release or close; re-check under the lock
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	s.acceptLocked(it)
	wake := s.wakeAfterAcceptLocked()
	s.mu.Unlock()
	if wake {
		s.signal()
	}
	return nil
}

// fitsLocked reports whether n more events of size bytes fit the shard's
// budget. An oversized share fits an empty shard, so that it is never
// refused forever. s.mu must be held.
func (s *shard) fitsLocked(n, size int) bool {
	return s.used+n <= s.maxEvents && (s.usedBytes+size <= s.maxBytes || s.used == 0)
}

// acceptLocked queues it. s.mu must be held and the budget checked.
func (s *shard) acceptLocked(it item) {
	s.used++
	s.usedBytes += it.size
	s.queuedSize += it.size
	s.submitted++
	s.items.push(it)
}

// wakeAfterAcceptLocked decides whether a sleeping worker must be signalled
// now. It wakes the worker for a full batch at once; for less it arms the
// linger timer, so that a fast producer wakes the worker once per batch
// rather than once per event. s.mu must be held.
func (s *shard) wakeAfterAcceptLocked() bool {
	if !s.sleeping {
		return false
	}
	if s.items.len() >= s.p.cfg.batch || s.p.cfg.linger <= 0 {
		s.sleeping = false
		return true
	}
	if !s.lingerArmed {
		s.lingerArmed = true
		s.linger.Reset(s.p.cfg.linger)
	}
	return false
}

// signal wakes the worker; a wake-up already pending is enough.
func (s *shard) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close stops intake. The worker drains what was accepted, then returns.
func (s *shard) close() {
	s.mu.Lock()
	s.closed = true
	s.wakeSpaceLocked()
	wake := s.sleeping
	s.sleeping = false
	s.mu.Unlock()
	if wake {
		s.signal()
	}
}

// wakeSpaceLocked wakes submitters waiting for space. s.mu must be held.
func (s *shard) wakeSpaceLocked() {
	if s.space != nil {
		close(s.space)
		s.space = nil
	}
}

// release returns n acknowledged events of size bytes to the shard's budget
// and, when ob is not nil, queues it for the worker to release its claims.
func (s *shard) release(n, bytes int, ob *outBatch) {
	s.mu.Lock()
	s.used -= n
	s.usedBytes -= bytes
	s.wakeSpaceLocked()
	wake := false
	if ob != nil {
		s.notices = append(s.notices, ob)
		wake = s.sleeping
		s.sleeping = false
	}
	s.mu.Unlock()
	if wake {
		s.signal()
	}
}

// abandon closes intake and negatively acknowledges every queued event with
// cause. It is called by the worker when the run is cancelled, and by
// Shutdown before Run.
func (s *shard) abandon(cause error) {
	s.mu.Lock()
	s.closed = true
	s.wakeSpaceLocked()
	items := s.items.popInto(nil, s.items.len())
	s.queuedSize = 0
	s.mu.Unlock()
	bytes := 0
	for i := range items {
		bytes += items[i].size
		s.p.deliver(&items[i], onceflow.Outcome{}, cause)
	}
	s.nacked.Add(uint64(len(items)))
	s.failed.Add(uint64(len(items)))
	if len(items) > 0 {
		s.release(len(items), bytes, nil)
	}
}

// next takes the next batch of items into s.batch and the pending notices
// into s.spare. It returns false when the worker must return: intake is
// closed and drained, or ctx is done.
func (s *shard) next(ctx context.Context) bool {
	s.mu.Lock()
	for s.items.len() == 0 && len(s.notices) == 0 && !s.timerReady() {
		if s.closed && len(s.parked) == 0 {
			s.mu.Unlock()
			return false
		}
		s.sleeping = true
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.linger.C:
		case <-s.retryTimer.C:
		case <-ctx.Done():
			return false
		}
		s.mu.Lock()
		s.sleeping = false
		if s.lingerArmed {
			s.lingerArmed = false
			s.linger.Stop()
		}
	}
	s.spare, s.notices = s.notices, s.spare[:0]
	s.batch = s.items.popInto(s.batch[:0], s.p.cfg.batch)
	for i := range s.batch {
		s.queuedSize -= s.batch[i].size
	}
	s.mu.Unlock()
	return true
}

func abandonCause(ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrAbandoned, cause)
	}
	return fmt.Errorf("%w: pipeline failed: %w", ErrAbandoned, cause)
}
