package pipeline

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	onceflow "github.com/onceflow/onceflow"
)

// entry kinds: what happens to an event of a handled batch.
const (
	kindCommit = iota // final outcome to commit (done or dead-lettered), then ack
	kindDup           // duplicate: ack with the first outcome after the group commits
	kindNack          // not done: nack once the group is decided (keeps per-key ack order)
	kindFinal         // final outcome without a store: ack at once
)

// seqNextAt is the last next sequence of a key within a group, and the
// record it commits with.
type seqNextAt struct {
	rec  int
	next uint64
}

// entry is one handled event of an outBatch: 64 bytes, since the worker
// writes every one and the committer reads it on another core. Its outcome
// lives in the batch's recs (kindCommit) or dups (kindDup).
type entry struct {
	it      item
	kind    uint8
	rec     int32 // kindCommit: index of the record in the batch's recs; kindDup: of the outcome in dups
	err     error
	dl      *onceflow.DeadLetter // the dead letter, if any
	seqNext uint64               // sequence ordering: the key's next sequence committed with rec
	idh     uint64               // kindCommit: the key of the identity's claim in the shard
}

// outBatch is one shard's handled batch on its way to the committer and,
// after the commit, back to the shard as a notice that its claims are
// committed. Pooled: the shard returns it to the pool after the notice.
type outBatch struct {
	s       *shard
	entries []entry
	// recs are the records of the kindCommit entries. The worker appends
	// to them while it fills the batch; from the hand-off to the committer
	// until the notice, nobody writes them, and the worker reads them for
	// its claims.
	recs  []onceflow.Record
	dups  []onceflow.Outcome // the outcomes of the kindDup entries
	bytes int
	// direct: no store; entries are acknowledged as they are added and
	// only counted (delivered, of which nacked).
	direct            bool
	delivered, nacked int
	// seq numbers the shard's batches sent to the committer (from 1);
	// releasedThrough is the seq of the last batch whose claims the shard
	// had released when it started this one. Together they tell the
	// committer when no more duplicates answered from a claim of an
	// earlier batch can come (see replacedOutcome).
	seq, releasedThrough uint64
}

// replacedKey and replacedOutcome: when the store answers a record as a
// duplicate (a copy of its identity with another partition key committed
// first, through another shard), the copies that the record's shard
// answered from its claim got the record's outcome before the commit, not
// the stored one. The committer keeps the stored outcome, by claim hash
// and shard, and acknowledges those copies with it, until the shard sends
// a batch started after it released the record's claim (released >= seq):
// no later batch can hold such a copy. Rare, so the map is almost always
// empty and its checks cost a length test.
type replacedKey struct {
	h     uint64
	shard int
}

type replacedOutcome struct {
	id  onceflow.Identity
	out onceflow.Outcome
	seq uint64 // the seq of the record's batch
}

// add adds an entry without an outcome: kindNack.
func (ob *outBatch) add(e entry) {
	ob.bytes += e.it.size()
	if ob.direct {
		// Without a store nothing waits for a commit: acknowledge now,
		// in handling order, and count it for the batch's release.
		ob.delivered++
		ob.nacked++
		ob.s.p.deliverEntry(&e, onceflow.Outcome{}, e.err)
		return
	}
	ob.entries = append(ob.entries, e)
}

// addOutcome adds an entry acknowledged with out: kindDup, or kindFinal
// (without a store, acknowledged at once).
func (ob *outBatch) addOutcome(e entry, out onceflow.Outcome) {
	ob.bytes += e.it.size()
	if ob.direct {
		ob.delivered++
		ob.s.p.deliverEntry(&e, out, nil)
		return
	}
	e.rec = int32(len(ob.dups))
	ob.dups = append(ob.dups, out)
	ob.entries = append(ob.entries, e)
}

// addCommit adds a kindCommit entry with a copy of its record, and returns
// the record's index in recs.
func (ob *outBatch) addCommit(e entry, rec *onceflow.Record) int32 {
	e.kind, e.rec, e.dl = kindCommit, int32(len(ob.recs)), rec.DeadLetter
	ob.recs = append(ob.recs, *rec)
	ob.add(e)
	return e.rec
}

func (p *Pipeline) getOutBatch(s *shard) *outBatch {
	ob := p.obPool.Get().(*outBatch)
	ob.s, ob.direct, ob.releasedThrough = s, p.cfg.store == nil, s.releasedThrough
	return ob
}

func (p *Pipeline) putOutBatch(ob *outBatch) {
	clear(ob.entries)
	ob.entries = ob.entries[:0]
	clear(ob.recs)
	ob.recs = ob.recs[:0]
	clear(ob.dups)
	ob.dups = ob.dups[:0]
	ob.s, ob.bytes, ob.delivered, ob.nacked, ob.seq, ob.releasedThrough = nil, 0, 0, 0, 0, 0
	p.obPool.Put(ob)
}

// shardState reads handler state through the shard's overlay of writes that
// are handled but not yet committed, then the store.
type shardState struct{ s *shard }

func (r shardState) ReadState(key []byte) ([]byte, bool, error) {
	if e, ok := r.s.overlay[string(key)]; ok {
		if e.del {
			return nil, false, nil
		}
		return append([]byte(nil), e.value...), true, nil
	}
	v, ok, err := r.s.p.cfg.store.ReadState(key)
	if err != nil {
		return nil, false, fmt.Errorf("%w: reading state: %w", onceflow.ErrStorage, err)
	}
	return v, ok, nil
}

// committed is the notice that ob's group committed: release the claims and
// overlay entries it made unless later batches replaced them.
func (s *shard) committed(ob *outBatch) {
	s.releasedThrough = max(s.releasedThrough, ob.seq)
	for i := range ob.entries {
		e := &ob.entries[i]
		if e.kind != kindCommit {
			continue
		}
		rec := &ob.recs[e.rec]
		if h := e.idh; s.pending[h].ob == ob {
			delete(s.pending, h)
		}
		if e.seqNext > 0 {
			if ss := s.seqs[e.it.ev.Key()]; ss != nil && e.seqNext > ss.committed {
				ss.committed = e.seqNext
			}
		}
		for _, w := range rec.Writes {
			if o, ok := s.overlay[string(w.Key)]; ok && o.ob == ob {
				delete(s.overlay, string(w.Key))
			}
		}
	}
	s.p.putOutBatch(ob)
}

// nackOut negatively acknowledges every event of ob and releases them.
func (s *shard) nackOut(ob *outBatch, cause error) {
	for i := range ob.entries {
		s.p.deliver(&ob.entries[i].it, onceflow.Outcome{}, cause)
	}
	n := len(ob.entries)
	s.nacked.Add(uint64(n))
	s.release(n, ob.bytes, ob)
}

// commitLoop is the committer goroutine: it groups handled batches from all
// shards into one store transaction bounded by WithGroupCommit, commits,
// then acknowledges and releases. Run owns it; it returns when commitCh is
// closed and drained.
func (p *Pipeline) commitLoop(ctx context.Context) {
	var (
		group  []*outBatch
		n      int
		timer  = time.NewTimer(time.Hour)
		timerC <-chan time.Time
		cb     onceflow.CommitBatch
		evs    []*onceflow.Event
	)
	timer.Stop()
	defer timer.Stop()
	flush := func() {
		if len(group) > 0 {
			evs = p.flush(ctx, group, &cb, evs)
		}
		clear(group)
		group, n, timerC = group[:0], 0, nil
		timer.Stop()
	}
	for {
		select {
		case ob, ok := <-p.commitCh:
			if !ok {
				flush()
				return
			}
			group = append(group, ob)
			n += len(ob.entries)
			if len(group) == 1 {
				timer.Reset(p.cfg.groupDelay)
				timerC = timer.C
			}
			if n >= p.cfg.groupEvents {
				flush()
			}
		case <-timerC:
			flush()
		}
	}
}

// flush commits one group and acknowledges it. After a fatal error or a
// cancelled run it only negatively acknowledges.
func (p *Pipeline) flush(ctx context.Context, group []*outBatch, cb *onceflow.CommitBatch, evs []*onceflow.Event) []*onceflow.Event {
	if ctx.Err() != nil {
		cause := abandonCause(ctx)
		for _, ob := range group {
			ob.s.nackOut(ob, cause)
		}
		return evs
	}
	cb.Reset()
	evs = evs[:0]
	clear(p.seqNexts)
	clear(p.sinkSeen)
	var sinkErr error
	for _, ob := range group {
		for i := range ob.entries {
			if e := &ob.entries[i]; e.kind == kindCommit {
				if e.seqNext > 0 {
					p.seqNexts[e.it.ev.Key()] = seqNextAt{rec: len(cb.Records), next: e.seqNext}
				}
				cb.Records = append(cb.Records, ob.recs[e.rec])
				if p.cfg.sink != nil && ob.recs[e.rec].Outcome.Status == onceflow.StatusDone && sinkErr == nil {
					var keep bool
					if keep, sinkErr = p.storeKeeps(&ob.recs[e.rec]); keep {
						evs = append(evs, e.it.ev)
					}
				}
			}
		}
	}
	if sinkErr != nil {
		p.fail(fmt.Errorf("pipeline: checking the sink's events against the store: %w", sinkErr))
		cause := abandonCause(ctx)
		for _, ob := range group {
			ob.s.nackOut(ob, cause)
		}
		return evs
	}
	// Each key's next sequence commits with its last outcome of the group,
	// so that after a crash every event not committed is still due.
	for key, at := range p.seqNexts {
		r := &cb.Records[at.rec]
		r.Writes = append(r.Writes[:len(r.Writes):len(r.Writes)], onceflow.StateWrite{
			Key: nextKey(key), Value: binary.BigEndian.AppendUint64(nil, at.next)})
	}
	if len(cb.Records) > 0 {
		if p.cfg.hooks.AckBeforeCommit { // mutation: acknowledged before durable
			p.ackGroup(group, nil)
			group = nil
		}
		p.crashPoint(PointBeforeCommit)
		for i := range cb.Records {
			if cb.Records[i].DeadLetter != nil || cb.Records[i].Redrive {
				p.crashPoint(PointBeforeDeadLetterCommit)
				break
			}
		}
		start := time.Now()
		err := p.commitRecords(cb, evs)
		if err != nil {
			p.fail(err)
			cause := abandonCause(ctx)
			for _, ob := range group {
				ob.s.nackOut(ob, cause)
			}
			return evs
		}
		p.commits.Add(1)
		p.committedEvents.Add(uint64(len(cb.Records)))
		p.commitNanos.Add(int64(time.Since(start)))
		p.crashPoint(PointAfterCommit)
		if p.cfg.outbox != nil && slices.ContainsFunc(cb.Records, func(r onceflow.Record) bool { return len(r.Outbox) > 0 }) {
			select {
			case p.outboxWake <- struct{}{}:
			default: // a wake-up is pending
			}
		}
		p.ackGroup(group, cb)
		return evs
	}
	p.ackGroup(group, nil)
	return evs
}

// ackGroup acknowledges every entry of a decided group and hands each
// batch back to its shard. cb, when not nil, is the group's committed
// batch, whose records hold what the store kept (a record may have turned
// out a duplicate of a copy routed through another shard), in the order of
// the group's kindCommit entries; without it, a kindCommit entry is
// acknowledged with its record as handled.
func (p *Pipeline) ackGroup(group []*outBatch, cb *onceflow.CommitBatch) {
	k := 0 // the next record of cb
	for j, ob := range group {
		if j == 1 {
			p.crashPoint(PointMidAck)
		}
		var acked, nacked uint64
		if len(p.replaced) > 0 {
			for key, r := range p.replaced {
				if key.shard == ob.s.idx && r.seq <= ob.releasedThrough {
					delete(p.replaced, key)
				}
			}
		}
		for i := range ob.entries {
			e := &ob.entries[i]
			switch e.kind {
			case kindNack:
				nacked++
				p.deliverEntry(e, onceflow.Outcome{}, e.err)
				continue
			case kindDup:
				out := ob.dups[e.rec]
				if len(p.replaced) > 0 {
					id := e.it.ev.Identity()
					if r, ok := p.replaced[replacedKey{p.idHash(id), ob.s.idx}]; ok && r.id == id {
						out = r.out
					}
				}
				p.deliverEntry(e, out, nil)
			default: // kindCommit
				r := &ob.recs[e.rec]
				if cb != nil {
					r = &cb.Records[k]
					k++
					if r.Outcome.Duplicate { // the store kept another copy's outcome
						p.replaced[replacedKey{e.idh, ob.s.idx}] = replacedOutcome{id: r.ID, out: r.Outcome, seq: ob.seq}
					}
				}
				e.dl = r.DeadLetter
				p.deliverEntry(e, r.Outcome, nil)
			}
			acked++
		}
		ob.s.acked.Add(acked)
		ob.s.nacked.Add(nacked)
		ob.s.release(len(ob.entries), ob.bytes, ob)
	}
}

// storeKeeps reports whether the store will keep r when the group commits,
// so that the sink gets exactly the events the store keeps. With one shard
// every copy of an identity meets its earlier copies' claims; with more,
// copies of one identity with different partition keys are handled in two
// shards, and the later one must not reach the sink: it is left out when
// the group already holds the identity, or the store has it (Lookup is
// authoritative here: only this goroutine commits). A redrive or a release
// replaces the stored outcome it is for, as Commit does.
func (p *Pipeline) storeKeeps(r *onceflow.Record) (bool, error) {
	if len(p.shards) == 1 {
		return true, nil
	}
	if _, dup := p.sinkSeen[r.ID]; dup {
		return false, nil
	}
	p.sinkSeen[r.ID] = struct{}{}
	out, found, err := p.cfg.store.Lookup(r.ID)
	if err != nil {
		return false, err
	}
	if !found {
		return true, nil
	}
	return (r.Redrive && out.Status == onceflow.StatusDeadLettered) || (r.Release && out.Status == onceflow.StatusHeld), nil
}

func (p *Pipeline) commitRecords(cb *onceflow.CommitBatch, evs []*onceflow.Event) error {
	if p.cfg.sink != nil {
		ckpt, err := p.cfg.sink.WriteBatch(evs)
		if err != nil {
			return fmt.Errorf("pipeline: sink %q: %w", p.cfg.sink.Name(), err)
		}
		cb.Checkpoints = append(cb.Checkpoints, onceflow.Checkpoint{Name: p.cfg.sink.Name(), Value: ckpt})
	}
	if err := p.cfg.store.Commit(cb); err != nil {
		return fmt.Errorf("pipeline: commit of %d records: %w", len(cb.Records), err)
	}
	return nil
}
