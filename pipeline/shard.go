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

// item is one accepted event waiting in a shard's intake. It is 16 bytes,
// because every item crosses from the submitter's core to the worker's: a
// Do or Redrive caller's waiter lives in the pipeline's waiter table
// instead, flagged by itemWaiter.
type item struct {
	ev    *onceflow.Event
	sz    int32 // ev.Size() at acceptance, for the byte budget
	flags uint8
}

// item flags.
const (
	itemRedrive  uint8 = 1 << iota // a dead letter being redriven
	itemReleased                   // a held event released for handling (acknowledged before as held)
	itemWaiter                     // a Do or Redrive caller waits in p.waiters
)

// maxItemSize caps an event's size as the budget counts it.
const maxItemSize = 1<<31 - 1

func newItem(ev *onceflow.Event, flags uint8) item {
	return item{ev: ev, sz: int32(min(ev.Size(), maxItemSize)), flags: flags}
}

func (it *item) size() int       { return int(it.sz) }
func (it *item) redrive() bool   { return it.flags&itemRedrive != 0 }
func (it *item) released() bool  { return it.flags&itemReleased != 0 }
func (it *item) hasWaiter() bool { return it.flags&itemWaiter != 0 }

// shard is one key-sharded worker and its intake.
//
// The intake is a queue of chunks guarded by mu, filled by Submit (one
// lock per event) or SubmitBatch (one lock per shard and call, the shard's
// share moved as one chunk) and emptied by the worker a batch of chunks at
// a time: one lock per batch, and no channel operation per event. Its length is bounded by maxEvents because every queued event also
// counts as in flight until acknowledged; so the intake, and everything
// downstream of it, never grows with the number of events submitted.
type shard struct {
	p   *Pipeline
	idx int

	mu         sync.Mutex
	items      chunkQueue // events waiting for the worker
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

	// The counters below are written by the worker and the committer, the
	// fields above by submitters under mu: keep them on separate cache
	// lines, or every counter update contends with Submit.
	_ [128]byte

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
	_            [128]byte

	// Owned by the worker goroutine.
	nHandled, nDup  uint64            // counted this round; added to handled and duplicates by finish
	hashID          onceflow.Identity // hashOf's memo
	hashVal         uint64
	taken           [][]item // chunks taken from items for this round
	done            [][]item // chunks handled, cleared, to recycle at the next round
	spare           []*outBatch
	fx              onceflow.Effects
	pending         map[uint64]claim        // by identity hash: handled, not yet committed
	sentSeq         uint64                  // the seq of the last batch sent to the committer
	releasedThrough uint64                  // the seq of the last batch whose claims are released
	pre             prefetch                // store answers for the chunk being handled
	overlay         map[string]overlayEntry // state written by pending events
	stateReader     shardState
	parked          map[string]*keyQueue // keys waiting for a retry
	parkedCount     int                  // events in parked
	due             retryHeap
	retryTimer      *time.Timer // next retry or gap timeout
	rnd             *rand.Rand
	seqs            map[string]*seqState // sequence ordering, per key
	gaps            gapHeap
	heldTotal       int // events held for sequence ordering
	heldMem         int // of which held in memory, accepted and not yet acknowledged
}

// prefetch holds the store's answers for the fresh events of one chunk,
// asked in one LookupBatch call before the chunk is handled; at is the
// index of the event being dispatched, or -1 when handle must ask the
// store itself.
type prefetch struct {
	ids   []onceflow.Identity
	outs  []onceflow.Outcome
	found []bool
	at    int
}

// claim marks an identity handled by this shard and not yet committed: a
// later copy is a duplicate that waits for this commit. Its record,
// ob.recs[rec], holds the identity and the outcome: nobody writes it until
// the batch's notice releases the claim.
type claim struct {
	ob  *outBatch
	rec int32
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
	s.items.chunkCap = max(p.cfg.batch, 64)
	s.pre.at = -1
	s.linger.Stop()
	s.retryTimer.Stop()
	if p.cfg.store != nil {
		s.pending = make(map[uint64]claim)
		s.overlay = make(map[string]overlayEntry)
		s.stateReader = shardState{s: s}
	}
	return s
}

// submit accepts it, blocking for room when block is set. w, if not nil,
// is registered as the waiter of it's acknowledgement at acceptance, under
// the shard's lock, so that waiters of one event pointer are registered in
// the order their events are accepted (and so acknowledged).
func (s *shard) submit(ctx context.Context, it item, w chan Ack, block bool) error {
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.fitsLocked(1, it.size()) {
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
	if w != nil {
		it.flags |= itemWaiter
		s.p.addWaiter(it.ev, w)
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
	s.usedBytes += it.size()
	s.queuedSize += it.size()
	s.submitted++
	s.items.push(it)
}

// acceptChunkLocked queues the items of c, of size bytes in all, and
// returns an empty slice for the caller's next share. A long share is
// handed over whole; a short one is copied into the tail chunk, so that
// small submissions do not leave the worker many small chunks. s.mu must be
// held and the budget checked.
func (s *shard) acceptChunkLocked(c []item, size int) []item {
	n := len(c)
	s.used += n
	s.usedBytes += size
	s.queuedSize += size
	s.submitted += uint64(n)
	if n >= s.items.chunkCap/2 {
		s.items.pushChunk(c)
		if c = s.items.take(); c == nil {
			c = make([]item, 0, s.items.chunkCap)
		}
		return c
	}
	for _, it := range c {
		s.items.push(it)
	}
	clear(c)
	return c[:0]
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
	chunks := s.items.pop(nil, s.items.len())
	s.queuedSize = 0
	s.mu.Unlock()
	n, bytes := 0, 0
	for _, c := range chunks {
		for i := range c {
			bytes += c[i].size()
			s.p.deliver(&c[i], onceflow.Outcome{}, cause)
		}
		n += len(c)
	}
	s.nacked.Add(uint64(n))
	s.failed.Add(uint64(n))
	if n > 0 {
		s.release(n, bytes, nil)
	}
}

// next recycles the chunks of the last round, takes the next batch of items
// into s.taken and the pending notices into s.spare. It returns false when the worker must return: intake is
// closed and drained, or ctx is done.
func (s *shard) next(ctx context.Context) bool {
	s.mu.Lock()
	for i, c := range s.done {
		s.items.recycle(c)
		s.done[i] = nil
	}
	s.done = s.done[:0]
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
	s.taken = s.items.pop(s.taken[:0], s.p.cfg.batch)
	for _, c := range s.taken {
		for i := range c {
			s.queuedSize -= c[i].size()
		}
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
