package pipeline

import (
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/retry"
	"github.com/onceflow/onceflow/stage"
)

// GapPolicy says what happens when a gap in a key's sequence stays open
// past SequenceOptions.GapTimeout.
type GapPolicy uint8

const (
	// GapWait waits for the missing events forever (the default). Held
	// events stay durably held across restarts until the gap is filled.
	GapWait GapPolicy = iota
	// GapSkip reports the missing sequence numbers, gives them up, and
	// hands the waiting events to the handler in order. A missing event
	// that arrives later is a sequence conflict.
	GapSkip
	// GapDeadLetter reports the missing sequence numbers and dead-letters
	// the waiting events with reason gap_timeout.
	GapDeadLetter
)

func (g GapPolicy) String() string {
	switch g {
	case GapSkip:
		return "skip"
	case GapDeadLetter:
		return "dead_letter"
	case GapWait:
		return "wait"
	default:
		return fmt.Sprintf("GapPolicy(%d)", uint8(g))
	}
}

// SeqRange is an inclusive range of sequence numbers.
type SeqRange struct{ From, To uint64 }

// GapReport describes a gap that stayed open past the timeout.
type GapReport struct {
	Key string
	// Missing lists exactly the sequence numbers that never arrived,
	// between the next expected one and the last waiting event.
	Missing []SeqRange
	Policy  GapPolicy
	// Events is the number of waiting events released (GapSkip) or
	// dead-lettered (GapDeadLetter).
	Events int
}

// SequenceOptions configures ordering by the CloudEvents "sequence"
// extension (see WithSequenceOrder). Zero fields take the defaults.
type SequenceOptions struct {
	// MaxHeldPerKey bounds the early events held for one key (default
	// 1,024). An early event beyond it is not accepted for holding: its Ack
	// carries ErrSequenceBufferFull, so the source redelivers it later.
	MaxHeldPerKey int
	// MaxHeld bounds the events held in total (default 65,536, split
	// evenly over the shards), with the same consequence.
	MaxHeld int
	// GapTimeout is how long a gap may stay open before Policy applies
	// (default 1 minute; it restarts when the pipeline restarts).
	GapTimeout time.Duration
	// Policy is what happens then (default GapWait).
	Policy GapPolicy
	// Report, when set, is called from the shard worker for each gap the
	// policy acted on. It must not block.
	Report func(GapReport)
}

// Errors of sequence ordering.
var (
	// ErrSequenceConflict is the dead-letter error of an event whose
	// sequence number was already taken by another identity.
	ErrSequenceConflict = errors.New("pipeline: sequence conflict: another event already has this sequence number")
	// ErrSequenceBufferFull negatively acknowledges an early event that
	// could not be held because the reorder buffer is full.
	ErrSequenceBufferFull = errors.New("pipeline: sequence reorder buffer full")
)

// StateScanner is implemented by stores that list state keys by prefix
// (dedup.Store does). Sequence ordering needs it to reload held events when
// the pipeline starts.
type StateScanner interface {
	ScanState(prefix []byte, fn func(key, value []byte) error) error
}

// WithSequenceOrder hands each key's events to the handler in ascending
// "sequence" order, contiguous from 1 per key. Events that arrive early
// wait, unacknowledged, until the gap before them is filled; those still
// waiting when the run drains (or when they fill half of their shard's
// budget) are held durably — committed with the outcome StatusHeld and
// acknowledged — for a later run to release, which acknowledges their
// final outcome again with Ack.Released set. An event
// whose sequence was already handled is a duplicate when its identity is
// the same, and is dead-lettered with reason sequence_conflict otherwise.
// Every submitted event must carry a positive Sequence. Requires WithStore
// with a store that implements StateScanner.
func WithSequenceOrder(o SequenceOptions) Option {
	return optionFunc(func(c *config) error {
		if o.MaxHeldPerKey < 0 || o.MaxHeld < 0 || o.GapTimeout < 0 || o.Policy > GapDeadLetter {
			return fmt.Errorf("pipeline: WithSequenceOrder(%+v): negative limit or unknown policy", o)
		}
		if o.MaxHeldPerKey == 0 {
			o.MaxHeldPerKey = 1024
		}
		if o.MaxHeld == 0 {
			o.MaxHeld = 64 * 1024
		}
		if o.GapTimeout == 0 {
			o.GapTimeout = time.Minute
		}
		c.seq = &o
		return nil
	})
}

// seqState is the reorder state of one key, owned by its shard worker.
type seqState struct {
	key       string
	next      uint64 // next sequence to hand to the handler
	committed uint64 // next as last committed (once every dispatch committed, next == committed)
	held      map[uint64]pitem
	gapDue    time.Time
	gapIndex  int // in the shard's gap heap, -1 when absent
}

type gapHeap []*seqState

func (h gapHeap) Len() int           { return len(h) }
func (h gapHeap) Less(i, j int) bool { return h[i].gapDue.Before(h[j].gapDue) }
func (h gapHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].gapIndex, h[j].gapIndex = i, j
}
func (h *gapHeap) Push(x any) { q := x.(*seqState); q.gapIndex = len(*h); *h = append(*h, q) }
func (h *gapHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	old[len(old)-1] = nil
	q.gapIndex = -1
	*h = old[:len(old)-1]
	return q
}

// Reserved state keys (they start with a zero byte, which no StateKey does).
func nextKey(pk string) []byte {
	b := append([]byte{0, 'N'}, binary.AppendUvarint(nil, uint64(len(pk)))...)
	return append(b, pk...)
}

func heldKey(pk string, seq uint64) []byte {
	b := append([]byte{0, 'H'}, binary.AppendUvarint(nil, uint64(len(pk)))...)
	b = append(b, pk...)
	return binary.BigEndian.AppendUint64(b, seq)
}

var heldPrefix = []byte{0, 'H'}

func parseHeldKey(k []byte) (string, uint64, bool) {
	if len(k) < 2 || k[0] != 0 || k[1] != 'H' {
		return "", 0, false
	}
	n, w := binary.Uvarint(k[2:])
	rest := k[2:]
	if w <= 0 || uint64(len(rest)-w) != n+8 {
		return "", 0, false
	}
	rest = rest[w:]
	return string(rest[:n]), binary.BigEndian.Uint64(rest[n:]), true
}

// seqFor returns key's reorder state, reading its committed next sequence
// from the store the first time. Worker only.
func (s *shard) seqFor(key string) (*seqState, error) {
	if ss := s.seqs[key]; ss != nil {
		return ss, nil
	}
	next := uint64(1)
	v, ok, err := s.p.cfg.store.ReadState(nextKey(key))
	if err != nil {
		return nil, fmt.Errorf("%w: reading sequence state: %w", onceflow.ErrStorage, err)
	}
	if ok {
		if len(v) != 8 {
			return nil, fmt.Errorf("%w: sequence state of a key has %d bytes", onceflow.ErrCorrupt, len(v))
		}
		next = binary.BigEndian.Uint64(v)
	}
	s.evictSeqs()
	ss := &seqState{key: key, next: next, committed: next, gapIndex: -1}
	s.seqs[key] = ss
	return ss, nil
}

// evictSeqs bounds the per-key reorder state: when it holds many keys, it
// forgets those with nothing held and every dispatch committed (the store
// has their next sequence). Worker only.
func (s *shard) evictSeqs() {
	const limit = 1 << 16
	if len(s.seqs) < limit {
		return
	}
	for k, ss := range s.seqs {
		if len(ss.held) == 0 && ss.next == ss.committed && ss.gapIndex < 0 {
			delete(s.seqs, k)
		}
	}
}

// sequenced routes one arriving event by its sequence number.
func (s *shard) sequenced(ctx context.Context, pi pitem, ob *outBatch, now time.Time) {
	ev := pi.ev
	seq := ev.Sequence
	ss, err := s.seqFor(ev.Key())
	if err != nil {
		ob.add(entry{it: pi.item, kind: kindNack, err: err})
		s.failed.Add(1)
		return
	}
	switch {
	case seq == ss.next:
		ss.next++
		pi.seqNext = ss.next
		s.dispatch(ctx, pi, ob, now)
		s.releaseHeld(ctx, ss, ob, now)
	case seq < ss.next:
		s.alreadyDispatched(ctx, pi, ob, now)
	default:
		s.hold(ss, pi, ob, now)
	}
}

// alreadyDispatched classifies an event whose sequence number was already
// handed on: a copy of that event is a duplicate, another identity is a
// conflict.
func (s *shard) alreadyDispatched(ctx context.Context, pi pitem, ob *outBatch, now time.Time) {
	id := pi.ev.Identity()
	if kq := s.parked[pi.ev.Key()]; kq != nil {
		for i := range kq.items {
			if kq.items[i].ev.Identity() == id {
				// A copy of an event still retrying: it waits behind it
				// and is answered as a duplicate when its turn comes.
				kq.items = append(kq.items, pi)
				s.parkedCount++
				return
			}
		}
	}
	if out, ok := s.claimed(id); ok {
		out.Duplicate = true
		ob.addOutcome(entry{it: pi.item, kind: kindDup}, out)
		s.duplicates.Add(1)
		return
	}
	out, found, err := s.p.cfg.store.Lookup(id)
	if err != nil {
		ob.add(entry{it: pi.item, kind: kindNack, err: fmt.Errorf("%w: lookup: %w", onceflow.ErrStorage, err)})
		s.failed.Add(1)
		return
	}
	if found {
		out.Duplicate = true
		ob.addOutcome(entry{it: pi.item, kind: kindDup}, out)
		s.duplicates.Add(1)
		return
	}
	pi.first = now
	s.deadLetter(&pi, id, retry.ReasonSequenceConflict,
		fmt.Errorf("%w: key %q, sequence %d", ErrSequenceConflict, cut(pi.ev.Key()), pi.ev.Sequence), ob, now)
}

// hold keeps an early event until its turn, durably: its held record
// commits with the outcome StatusHeld, and the Ack follows the commit.
func (s *shard) hold(ss *seqState, pi pitem, ob *outBatch, now time.Time) {
	o := s.p.cfg.seq
	id := pi.ev.Identity()
	if h, ok := ss.held[pi.ev.Sequence]; ok {
		if h.ev.Identity() == id {
			ob.addOutcome(entry{it: pi.item, kind: kindDup}, onceflow.Outcome{Status: onceflow.StatusHeld, FirstSeen: h.first, Duplicate: true})
			s.duplicates.Add(1)
			return
		}
		pi.first = now
		s.deadLetter(&pi, id, retry.ReasonSequenceConflict,
			fmt.Errorf("%w: key %q, sequence %d held for another event", ErrSequenceConflict, cut(pi.ev.Key()), pi.ev.Sequence), ob, now)
		return
	}
	if shardLimit := max(o.MaxHeld/len(s.p.shards), 1); len(ss.held) >= o.MaxHeldPerKey || s.heldTotal >= shardLimit {
		ob.add(entry{it: pi.item, kind: kindNack, err: fmt.Errorf("%w: key %q, sequence %d: %d held for the key (limit %d, MaxHeldPerKey), %d in the shard (limit %d, MaxHeld / shards)",
			ErrSequenceBufferFull, cut(pi.ev.Key()), pi.ev.Sequence, len(ss.held), o.MaxHeldPerKey, s.heldTotal, shardLimit)})
		s.failed.Add(1)
		return
	}
	if _, found, err := s.p.cfg.store.Lookup(id); err != nil || found {
		// A copy of an event already held before a restart, or a store
		// error: answer it through the ordinary path.
		s.alreadyDispatched(context.Background(), pi, ob, now)
		return
	}
	// Held in memory, still in flight and unacknowledged: a gap that
	// fills during the run costs nothing more (and a crash only means the
	// source delivers it again). Only what is still held when the run
	// drains is committed as held and acknowledged (persistHeld).
	pi.first = now
	if ss.held == nil {
		ss.held = make(map[uint64]pitem)
	}
	ss.held[pi.ev.Sequence] = pi
	s.heldTotal++
	s.heldMem++
	s.heldGauge.Store(int64(s.heldTotal))
	if s.heldMem >= max(s.maxEvents/2, 1) {
		// Held events in memory use the shard's budget; before they could
		// starve the event that fills their gap, make them durable and
		// acknowledge them.
		s.persistHeld(ob, now)
	}
	if ss.gapIndex < 0 && o.Policy != GapWait {
		ss.gapDue = now.Add(o.GapTimeout)
		heap.Push(&s.gaps, ss)
	}
}

// releaseHeld hands on the held events that are now contiguous.
func (s *shard) releaseHeld(ctx context.Context, ss *seqState, ob *outBatch, now time.Time) {
	released := false
	for {
		pi, ok := ss.held[ss.next]
		if !ok {
			break
		}
		delete(ss.held, ss.next)
		s.heldTotal--
		ss.next++
		pi.seqNext = ss.next
		pi.attempts, pi.lastErr = 0, nil
		if pi.released() {
			s.reacquire(pi.size())
		} else {
			s.heldMem--
		}
		s.dispatch(ctx, pi, ob, now)
		s.released.Add(1)
		released = true
	}
	s.heldGauge.Store(int64(s.heldTotal))
	if released && ss.gapIndex >= 0 {
		heap.Remove(&s.gaps, ss.gapIndex)
		if len(ss.held) > 0 { // another gap: its clock starts now
			ss.gapDue = now.Add(s.p.cfg.seq.GapTimeout)
			heap.Push(&s.gaps, ss)
		}
	}
}

// persistHeld commits, as held, every event held in memory (accepted,
// not yet acknowledged) and acknowledges it with the outcome StatusHeld:
// called when the run drains, so that a later run can fill the gap.
func (s *shard) persistHeld(ob *outBatch, now time.Time) {
	for _, ss := range s.seqs {
		for seq, pi := range ss.held {
			if pi.released() {
				continue // already durable
			}
			val := binary.BigEndian.AppendUint64(nil, uint64(pi.first.UnixNano()))
			val = pi.ev.AppendJSON(val)
			id := pi.ev.Identity()
			out := onceflow.Outcome{Status: onceflow.StatusHeld, FirstSeen: pi.first}
			rec := onceflow.Record{ID: id, Outcome: out, Writes: []onceflow.StateWrite{{Key: heldKey(ss.key, seq), Value: val}}}
			s.commitClaimed(entry{it: pi.item}, &rec, ob)
			pi.item.flags = pi.item.flags&^itemWaiter | itemReleased
			ss.held[seq] = pi
		}
	}
	s.heldMem = 0
}

// abandonHeld negatively acknowledges the events held in memory.
func (s *shard) abandonHeld(cause error) {
	n, bytes := 0, 0
	for _, ss := range s.seqs {
		for seq, pi := range ss.held {
			if pi.released() {
				continue
			}
			n++
			bytes += pi.size()
			s.p.deliver(&pi.item, onceflow.Outcome{}, cause)
			delete(ss.held, seq)
			s.heldTotal--
			s.heldMem--
		}
	}
	s.heldGauge.Store(int64(s.heldTotal))
	if n > 0 {
		s.nacked.Add(uint64(n))
		s.failed.Add(uint64(n))
		s.release(n, bytes, nil)
	}
}

// reacquire counts a released held event in the shard's budget again: it
// was acknowledged (as held) and released from the budget before.
func (s *shard) reacquire(size int) {
	s.mu.Lock()
	s.used++
	s.usedBytes += size
	s.mu.Unlock()
}

// gapsReady reports whether a gap timeout is due. Worker only.
func (s *shard) gapsReady() bool {
	return len(s.gaps) > 0 && !s.gaps[0].gapDue.After(s.p.cfg.now())
}

// closeGap applies the gap policy to ss.
func (s *shard) closeGap(ctx context.Context, ss *seqState, ob *outBatch, now time.Time) {
	o := s.p.cfg.seq
	seqs := make([]uint64, 0, len(ss.held))
	for q := range ss.held {
		seqs = append(seqs, q)
	}
	slices.Sort(seqs)
	rep := GapReport{Key: ss.key, Policy: o.Policy, Events: len(seqs)}
	want := ss.next
	for _, q := range seqs {
		if q > want {
			rep.Missing = append(rep.Missing, SeqRange{From: want, To: q - 1})
		}
		want = q + 1
	}
	s.gapReports.Add(1)
	switch o.Policy {
	case GapSkip:
		for _, r := range rep.Missing {
			s.gapSkipped.Add(r.To - r.From + 1)
		}
		ss.next = seqs[0]
		s.releaseHeld(ctx, ss, ob, now)
		for len(ss.held) > 0 { // skip each further gap, lowest first
			ss.next = seqs[len(seqs)-len(ss.held)]
			s.releaseHeld(ctx, ss, ob, now)
		}
	case GapDeadLetter:
		for _, q := range seqs {
			pi := ss.held[q]
			delete(ss.held, q)
			s.heldTotal--
			pi.seqNext = q + 1
			if pi.released() {
				s.reacquire(pi.size())
			} else {
				s.heldMem--
			}
			s.deadLetter(&pi, pi.ev.Identity(), retry.ReasonGapTimeout,
				fmt.Errorf("pipeline: sequence gap before %d stayed open for %v", q, o.GapTimeout), ob, now)
		}
		ss.next = seqs[len(seqs)-1] + 1
		s.heldGauge.Store(int64(s.heldTotal))
	}
	if o.Report != nil {
		o.Report(rep)
	}
}

// loadHeld reloads this shard's held events from the store. Worker only,
// before the first round.
func (s *shard) loadHeld() error {
	sc, ok := s.p.cfg.store.(StateScanner)
	if !ok {
		return errors.New("pipeline: sequence ordering needs a store that implements StateScanner")
	}
	dec := s.p.heldDecoder
	now := s.p.cfg.now()
	return sc.ScanState(heldPrefix, func(k, v []byte) error {
		pk, seq, ok := parseHeldKey(k)
		if !ok || len(v) < 8 {
			return fmt.Errorf("%w: held event record", onceflow.ErrCorrupt)
		}
		if stage.Shard(pk, len(s.p.shards)) != s.idx {
			return nil
		}
		ev, err := dec.Decode(v[8:])
		if err != nil {
			return fmt.Errorf("%w: held event of key %q: %w", onceflow.ErrCorrupt, cut(pk), err)
		}
		ss, err := s.seqFor(pk)
		if err != nil {
			return err
		}
		if seq < ss.next {
			return nil // released and committed; the held record is stale
		}
		if ss.held == nil {
			ss.held = make(map[uint64]pitem)
		}
		first := time.Unix(0, int64(binary.BigEndian.Uint64(v[:8])))
		ss.held[seq] = pitem{item: newItem(ev, itemReleased), first: first}
		s.heldTotal++
		if ss.gapIndex < 0 && s.p.cfg.seq.Policy != GapWait {
			ss.gapDue = now.Add(s.p.cfg.seq.GapTimeout)
			heap.Push(&s.gaps, ss)
		}
		return nil
	})
}

func cut(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
