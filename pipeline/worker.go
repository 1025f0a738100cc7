package pipeline

import (
	"container/heap"
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/retry"
	"github.com/onceflow/onceflow/stage"
)

// pitem is an event with its attempt state while it waits or retries.
type pitem struct {
	item
	seqNext  uint64 // sequence ordering: the key's next sequence once this event is final
	attempts int
	first    time.Time // first attempt
	lastErr  error
}

// keyQueue holds the events of one key parked behind an event that waits
// for its next attempt: per-key order holds, and other keys of the shard
// keep flowing. items[0] is the waiting event. The shard's budget counts
// every parked event, so parking never grows beyond it.
type keyQueue struct {
	key   string
	items []pitem
	due   time.Time
	index int // in the shard's retry heap
}

// retryHeap orders waiting keys by due time.
type retryHeap []*keyQueue

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h retryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *retryHeap) Push(x any) { q := x.(*keyQueue); q.index = len(*h); *h = append(*h, q) }
func (h *retryHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return q
}

// run is the worker goroutine. Run owns it and waits for it. Each round it
// handles the keys whose retry is due, then a batch from the intake, and
// hands the results on (to the committer with a store, else acknowledges
// them itself).
func (s *shard) run(ctx context.Context) {
	if s.p.cfg.seq != nil {
		if err := s.loadHeld(); err != nil {
			s.p.fail(fmt.Errorf("pipeline: reloading held events: %w", err))
		}
		s.heldGauge.Store(int64(s.heldTotal))
		s.armRetry()
	}
	for s.next(ctx) {
		for _, ob := range s.spare {
			s.committed(ob)
		}
		clear(s.spare)
		s.work(ctx)
	}
	if ctx.Err() != nil {
		cause := abandonCause(ctx)
		s.abandon(cause)
		s.abandonParked(cause)
		s.abandonHeld(cause)
		return
	}
	if s.p.cfg.seq != nil && s.heldTotal > 0 {
		ob := s.p.getOutBatch(s)
		s.persistHeld(ob, s.p.cfg.now())
		s.finish(ctx, ob)
	}
}

// timerReady reports whether a retry or a gap timeout is due. Worker only.
func (s *shard) timerReady() bool { return s.retryReady() || s.gapsReady() }

// retryReady reports whether a waiting key is due. Worker only.
func (s *shard) retryReady() bool {
	return len(s.due) > 0 && !s.due[0].due.After(s.p.cfg.now())
}

// armRetry sets the worker's timer for the earliest retry or gap timeout.
// Worker only.
func (s *shard) armRetry() {
	s.retryTimer.Stop()
	var at time.Time
	if len(s.due) > 0 {
		at = s.due[0].due
	}
	if len(s.gaps) > 0 && (at.IsZero() || s.gaps[0].gapDue.Before(at)) {
		at = s.gaps[0].gapDue
	}
	if !at.IsZero() {
		s.retryTimer.Reset(max(at.Sub(s.p.cfg.now()), 0))
	}
	s.parkedGauge.Store(int64(s.parkedCount))
}

func (s *shard) work(ctx context.Context) {
	p := s.p
	ob := p.getOutBatch(s)
	now := p.cfg.now()
	for s.retryReady() {
		kq := heap.Pop(&s.due).(*keyQueue)
		s.resume(ctx, kq, ob, now)
	}
	for s.gapsReady() {
		ss := heap.Pop(&s.gaps).(*seqState)
		s.closeGap(ctx, ss, ob, now)
	}
	seq := p.cfg.seq != nil
	direct := p.cfg.canRunDirect()
	var bl BatchLookup
	if !seq && !p.cfg.hooks.SkipDedup {
		bl, _ = p.cfg.store.(BatchLookup)
	}
	for k, c := range s.taken {
		pre := bl != nil && s.prefetch(bl, c)
		for i := 0; i < len(c); i++ {
			if direct && len(s.parked) == 0 {
				var res []byte
				var err error
				var failed bool
				if i, res, err, failed = s.runDirect(ctx, c, i, ob, now); i == len(c) {
					break
				}
				if failed {
					pi := pitem{item: c[i], attempts: 1, first: now}
					if retry, delay := s.settle(ctx, &pi, onceflow.Identity{}, res, err, ob, now); retry {
						s.park(&pi, now.Add(delay))
					}
					continue
				}
			}
			if seq && !c[i].redrive() {
				s.sequenced(ctx, pitem{item: c[i]}, ob, now)
			} else {
				if pre {
					s.pre.at = i
				}
				s.dispatchItem(ctx, &c[i], ob, now)
				s.pre.at = -1
			}
		}
		if pre {
			clear(s.pre.outs) // keep no result alive past the chunk
		}
		clear(c)
		s.done = append(s.done, c)
		s.taken[k] = nil
	}
	s.taken = s.taken[:0]
	s.armRetry()
	s.finish(ctx, ob)
}

// prefetch asks bl for the committed outcomes of c's events, into s.pre.
// It reports false when the store failed: handle then asks it event by
// event, and reports each error on its event.
func (s *shard) prefetch(bl BatchLookup, c []item) bool {
	pr := &s.pre
	pr.ids = pr.ids[:0]
	for i := range c {
		pr.ids = append(pr.ids, c[i].ev.Identity())
	}
	n := len(c)
	pr.outs = slices.Grow(pr.outs[:0], n)[:n]
	pr.found = slices.Grow(pr.found[:0], n)[:n]
	err := bl.LookupBatch(pr.ids, pr.outs, pr.found)
	clear(pr.ids) // keep no event's strings alive
	if err != nil {
		s.p.cfg.logger.Debug("batch lookup failed; looking the chunk up event by event", "err", err)
		return false
	}
	return true
}

// dispatchItem is dispatch for an item fresh from the intake.
func (s *shard) dispatchItem(ctx context.Context, it *item, ob *outBatch, now time.Time) {
	if len(s.parked) > 0 {
		if kq := s.parked[it.ev.Key()]; kq != nil {
			kq.items = append(kq.items, pitem{item: *it})
			s.parkedCount++
			return
		}
	}
	pi := pitem{item: *it}
	if retry, delay := s.handle(ctx, &pi, ob, now); retry {
		s.park(&pi, now.Add(delay))
	}
}

// park makes pi the waiting event of its key, due at due.
func (s *shard) park(pi *pitem, due time.Time) {
	kq := &keyQueue{key: pi.ev.Key(), items: []pitem{*pi}, due: due}
	s.parked[kq.key] = kq
	s.parkedCount++
	heap.Push(&s.due, kq)
}

// dispatch hands pi to the handler, or parks it behind an earlier event of
// its key that waits for a retry.
func (s *shard) dispatch(ctx context.Context, pi pitem, ob *outBatch, now time.Time) {
	if len(s.parked) > 0 {
		if kq := s.parked[pi.ev.Key()]; kq != nil {
			kq.items = append(kq.items, pi)
			s.parkedCount++
			return
		}
	}
	if retry, delay := s.handle(ctx, &pi, ob, now); retry {
		s.park(&pi, now.Add(delay))
	}
}

// resume retries kq's waiting event, then handles the events parked behind
// it in order, until one has to wait again or the queue is empty.
func (s *shard) resume(ctx context.Context, kq *keyQueue, ob *outBatch, now time.Time) {
	for len(kq.items) > 0 {
		if retry, delay := s.handle(ctx, &kq.items[0], ob, now); retry {
			kq.due = now.Add(delay)
			heap.Push(&s.due, kq)
			return
		}
		kq.items[0] = pitem{}
		kq.items = kq.items[1:]
		s.parkedCount--
	}
	delete(s.parked, kq.key)
}

// handle runs one attempt for pi and records the result in ob, unless the
// event must wait for another attempt: then it returns true and the delay.
func (s *shard) handle(ctx context.Context, pi *pitem, ob *outBatch, now time.Time) (bool, time.Duration) {
	p := s.p
	it := pi.item
	if ctx.Err() != nil {
		ob.add(entry{it: it, kind: kindNack, err: abandonCause(ctx)})
		s.failed.Add(1)
		return false, 0
	}
	var id onceflow.Identity
	if p.cfg.store != nil {
		id = it.ev.Identity()
	}
	p.crashPoint(PointBeforeClaim)
	if p.cfg.store != nil && pi.attempts == 0 && !p.cfg.hooks.SkipDedup {
		if out, ok := s.claimed(id); ok && !(it.released() && out.Status == onceflow.StatusHeld) {
			out.Duplicate = true
			ob.addOutcome(entry{it: it, kind: kindDup}, out)
			s.nDup++
			return false, 0
		}
		var out onceflow.Outcome
		var found bool
		var err error
		if s.pre.at >= 0 {
			out, found = s.pre.outs[s.pre.at], s.pre.found[s.pre.at]
		} else {
			out, found, err = p.cfg.store.Lookup(id)
		}
		if err != nil {
			ob.add(entry{it: it, kind: kindNack, err: fmt.Errorf("%w: lookup: %w", onceflow.ErrStorage, err)})
			s.failed.Add(1)
			return false, 0
		}
		replace := (it.redrive() && out.Status == onceflow.StatusDeadLettered) || (it.released() && out.Status == onceflow.StatusHeld)
		if found && !replace {
			out.Duplicate = true
			ob.addOutcome(entry{it: it, kind: kindDup}, out)
			s.nDup++
			return false, 0
		}
	}
	if pi.attempts == 0 {
		pi.first = now
	}
	pi.attempts++
	actx, cancel := ctx, context.CancelFunc(nil)
	if p.cfg.retry != nil && p.cfg.retry.AttemptTimeout > 0 {
		actx, cancel = p.cfg.retry.AttemptContext(ctx)
	}
	var reader onceflow.StateReader
	if p.cfg.store != nil {
		reader = s.stateReader
	}
	s.fx.Reset(it.ev, reader)
	res, err := stage.Call(actx, p.h, it.ev, &s.fx)
	if cancel != nil {
		cancel()
	}
	return s.settle(ctx, pi, id, res, err, ob, now)
}

// settle records the result of pi's attempt (res, or err) in ob, unless
// the event must wait for another attempt: then it returns true and the
// delay. id is pi's identity when there is a store.
func (s *shard) settle(ctx context.Context, pi *pitem, id onceflow.Identity, res []byte, err error, ob *outBatch, now time.Time) (bool, time.Duration) {
	p := s.p
	it := pi.item
	if err == nil && p.cfg.store == nil && !s.fx.Empty() {
		err = retry.Permanent(ErrNoStore)
	}
	if err == nil {
		p.crashPoint(PointAfterHandler)
		out := onceflow.Outcome{Status: onceflow.StatusDone, Attempts: uint32(pi.attempts), FirstSeen: pi.first, Result: res}
		s.nHandled++
		if ob.direct {
			ob.bytes += it.size()
			ob.delivered++
			if p.cfg.ack != nil || it.hasWaiter() {
				p.deliverAck(&pi.item, Ack{Event: it.ev, Outcome: out})
			}
			return false, 0
		}
		rec := onceflow.Record{ID: id, Outcome: out, Redrive: it.redrive()}
		s.addEffects(&rec, ob)
		s.finished(pi, &rec, ob)
		return false, 0
	}
	pi.lastErr = err
	if ctx.Err() != nil { // stopping, not failing: redeliver, never dead-letter
		ob.add(entry{it: it, kind: kindNack, err: fmt.Errorf("%w: %w", abandonCause(ctx), err)})
		s.failed.Add(1)
		return false, 0
	}
	if p.cfg.retry == nil {
		ob.add(entry{it: it, kind: kindNack, err: err})
		s.failed.Add(1)
		return false, 0
	}
	d := p.cfg.retry.Next(pi.attempts, pi.first, p.cfg.now(), err, s.rnd)
	if d.Retry && p.cfg.budget != nil {
		d = p.cfg.budget.Admit(d, p.cfg.budgetWhen)
	}
	if d.Retry {
		s.retries.Add(1)
		return true, d.Delay
	}
	s.deadLetter(pi, it.ev.Identity(), d.Reason, err, ob, now)
	return false, 0
}

// canRunDirect reports whether the pipeline's configuration lets its
// workers take the direct path: no store, no sequence ordering, no attempt
// timeout, no test hooks.
func (c *config) canRunDirect() bool {
	return c.store == nil && c.seq == nil && (c.retry == nil || c.retry.AttemptTimeout <= 0) && c.hooks.Crash == nil
}

// runDirect handles c[i:] on the direct path while every attempt succeeds:
// what handle does for a first attempt without a store, without its
// per-event bookkeeping, and with one recover for the whole run instead of
// one per event. It returns the index reached. When an attempt fails or
// panics, it returns that event's index with failed set and the attempt's
// result, for settle to decide. A panic outside the handler (in the
// acknowledgement callback) is not the handler's and is re-raised.
func (s *shard) runDirect(ctx context.Context, c []item, from int, ob *outBatch, now time.Time) (i int, res []byte, err error, failed bool) {
	i = from
	inHandler := false
	defer func() {
		if inHandler {
			if v := recover(); v != nil {
				res, err, failed = nil, &retry.PanicError{Value: v, Stack: debug.Stack()}, true
			}
		}
	}()
	p := s.p
	h := p.h
	ack := p.cfg.ack != nil
	for ; i < len(c); i++ {
		if p.stopping.Load() {
			return i, nil, nil, false
		}
		it := &c[i]
		s.fx.Reset(it.ev, nil)
		inHandler = true
		res, err = h(ctx, it.ev, &s.fx)
		inHandler = false
		if err == nil && len(res) > onceflow.MaxResultBytes {
			err = fmt.Errorf("stage: result of %d bytes, limit %d: %w", len(res), onceflow.MaxResultBytes, onceflow.ErrResultTooLarge)
		}
		if err != nil || !s.fx.Empty() {
			return i, res, err, true
		}
		s.nHandled++
		ob.bytes += it.size()
		ob.delivered++
		if ack || it.hasWaiter() {
			p.deliverAck(it, Ack{Event: it.ev, Outcome: onceflow.Outcome{Status: onceflow.StatusDone, Attempts: 1, FirstSeen: now, Result: res}})
		}
	}
	return i, nil, nil, false
}

// finished records the final outcome rec: to commit with a store (claiming
// the identity until the commit), or to acknowledge at once without one.
func (s *shard) finished(pi *pitem, rec *onceflow.Record, ob *outBatch) {
	if s.p.cfg.store == nil {
		ob.addOutcome(entry{it: pi.item, kind: kindFinal, dl: rec.DeadLetter}, rec.Outcome)
		return
	}
	if pi.released() {
		rec.Release = true
		rec.Writes = append(rec.Writes, onceflow.StateWrite{Key: heldKey(pi.ev.Key(), pi.ev.Sequence), Delete: true})
	}
	s.commitClaimed(entry{it: pi.item, seqNext: pi.seqNext}, rec, ob)
}

// commitClaimed adds e, with its record rec, to ob for the commit, and
// claims rec's identity until then: the claim, keyed by a hash of the
// identity, points at the record in ob, which claimed checks against the
// full identity. Two identities with the same hash only cost the later one
// its in-flight duplicate answer (the store still commits its effects at
// most once).
func (s *shard) commitClaimed(e entry, rec *onceflow.Record, ob *outBatch) {
	e.idh = s.hashOf(rec.ID)
	s.pending[e.idh] = claim{ob: ob, rec: ob.addCommit(e, rec)}
}

// claimed returns the outcome of the claim on id by an event handled in
// this shard and not yet committed.
func (s *shard) claimed(id onceflow.Identity) (onceflow.Outcome, bool) {
	c, ok := s.pending[s.hashOf(id)]
	if !ok {
		return onceflow.Outcome{}, false
	}
	r := &c.ob.recs[c.rec]
	return r.Outcome, r.ID == id
}

// hashOf is p.idHash(id), remembered for the last identity asked: an
// event's claim is looked up, then made, with one hash.
func (s *shard) hashOf(id onceflow.Identity) uint64 {
	if id != s.hashID {
		s.hashID, s.hashVal = id, s.p.idHash(id)
	}
	return s.hashVal
}

// addEffects copies the handler's effects into rec and into the shard's
// overlay, so that later events of the key read them before the commit.
func (s *shard) addEffects(rec *onceflow.Record, ob *outBatch) {
	if w := s.fx.Writes(); len(w) > 0 {
		rec.Writes = append([]onceflow.StateWrite(nil), w...)
		for _, sw := range rec.Writes {
			s.overlay[string(sw.Key)] = overlayEntry{ob: ob, value: sw.Value, del: sw.Delete}
		}
	}
	if m := s.fx.Outbox(); len(m) > 0 {
		rec.Outbox = append([]onceflow.Message(nil), m...)
	}
}

// deadLetter gives up on pi: its outcome is dead-lettered, with a durable
// dead-letter record when there is a store.
func (s *shard) deadLetter(pi *pitem, id onceflow.Identity, reason string, err error, ob *outBatch, now time.Time) {
	raw := pi.ev.Raw
	if raw == nil { // built in code, and valid (Submit checked): Redrive decodes this
		raw = pi.ev.AppendJSON(nil)
	}
	dl := &onceflow.DeadLetter{
		ID:           id,
		Raw:          raw,
		Reason:       reason,
		Error:        err.Error(),
		Attempts:     uint32(pi.attempts),
		FirstAttempt: pi.first,
		LastAttempt:  now,
	}
	if pe, ok := asPanic(err); ok {
		dl.Stack = pe.Stack
		s.p.cfg.logger.Warn("handler panicked; event dead-lettered", "event", id.String(), "panic", pe.Error())
	}
	out := onceflow.Outcome{Status: onceflow.StatusDeadLettered, Attempts: uint32(pi.attempts), FirstSeen: pi.first, ErrorClass: reason}
	s.finished(pi, &onceflow.Record{ID: id, Outcome: out, DeadLetter: dl, Redrive: pi.redrive()}, ob)
	s.deadLettered.Add(1)
}

// finish hands ob on: to the committer with a store; else it acknowledges
// every entry and releases the budget at once.
func (s *shard) finish(ctx context.Context, ob *outBatch) {
	p := s.p
	if s.nHandled > 0 {
		s.handled.Add(s.nHandled)
		s.nHandled = 0
	}
	if s.nDup > 0 {
		s.duplicates.Add(s.nDup)
		s.nDup = 0
	}
	if ob.direct {
		if ob.delivered > 0 {
			s.acked.Add(uint64(ob.delivered - ob.nacked))
			s.nacked.Add(uint64(ob.nacked))
			s.release(ob.delivered, ob.bytes, nil)
		}
		p.putOutBatch(ob)
		return
	}
	if len(ob.entries) == 0 {
		p.putOutBatch(ob)
		return
	}
	s.sentSeq++
	ob.seq = s.sentSeq
	select {
	case p.commitCh <- ob:
	case <-ctx.Done():
		// The committer drains commitCh until Run closes it, so the send
		// cannot block forever; but a cancelled run must not commit this
		// batch.
		s.nackOut(ob, abandonCause(ctx))
	}
}

// abandonParked negatively acknowledges every parked event.
func (s *shard) abandonParked(cause error) {
	n, bytes := 0, 0
	for _, kq := range s.parked {
		for i := range kq.items {
			n++
			bytes += kq.items[i].size()
			s.p.deliver(&kq.items[i].item, onceflow.Outcome{}, cause)
		}
	}
	clear(s.parked)
	s.due = s.due[:0]
	s.parkedCount = 0
	s.parkedGauge.Store(0)
	if n > 0 {
		s.nacked.Add(uint64(n))
		s.failed.Add(uint64(n))
		s.release(n, bytes, nil)
	}
}

func asPanic(err error) (*retry.PanicError, bool) {
	pe, ok := err.(*retry.PanicError)
	return pe, ok
}
