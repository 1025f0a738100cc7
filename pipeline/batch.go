package pipeline

import (
	"context"
	"fmt"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/stage"
)

// submitScratch is SubmitBatch's per-call grouping of events by shard.
type submitScratch struct {
	byShard [][]item
	sizes   []int
	touched []int // shard indexes with events, ascending
}

// SubmitBatch accepts all of evs or none of them. It is Submit for many
// events at once, and much cheaper per event: it takes each shard's lock
// once per call instead of once per event. Events of equal key keep their
// order within evs and relative to other submissions.
//
// It blocks while any shard involved lacks room for its share of evs, and
// returns ctx's error if ctx ends first, or ErrClosed once intake stopped,
// in both cases having accepted nothing. A share larger than a shard's
// whole budget can never fit and is refused with an error wrapping
// ErrBackpressure. Every event must be valid as for Submit.
func (p *Pipeline) SubmitBatch(ctx context.Context, evs []*onceflow.Event) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if len(evs) == 0 {
		return nil
	}
	sc, _ := p.scratch.Get().(*submitScratch)
	if sc == nil {
		sc = &submitScratch{byShard: make([][]item, len(p.shards)), sizes: make([]int, len(p.shards))}
	}
	defer func() {
		for _, i := range sc.touched {
			clear(sc.byShard[i])
			sc.byShard[i] = sc.byShard[i][:0]
			sc.sizes[i] = 0
		}
		sc.touched = sc.touched[:0]
		p.scratch.Put(sc)
	}()
	for i, ev := range evs {
		if err := p.check(ev); err != nil {
			return fmt.Errorf("%w: event %d of the batch: %w", ErrInvalidEvent, i, err)
		}
		k := stage.Shard(ev.Key(), len(p.shards))
		if len(sc.byShard[k]) == 0 {
			sc.touched = append(sc.touched, k)
		}
		it := newItem(ev, 0)
		sc.byShard[k] = append(sc.byShard[k], it)
		sc.sizes[k] += it.size()
	}
	sortInts(sc.touched)
	for _, k := range sc.touched {
		if s := p.shards[k]; len(sc.byShard[k]) > s.maxEvents {
			return fmt.Errorf("%w: %d events for one shard, more than its limit of %d", ErrBackpressure, len(sc.byShard[k]), s.maxEvents)
		}
	}
	for {
		// Lock every shard involved, in index order (so that concurrent
		// SubmitBatch calls cannot deadlock), and accept only if all fit.
		var full *shard
		for _, k := range sc.touched {
			s := p.shards[k]
			s.mu.Lock()
			if s.closed {
				p.unlockShards(sc.touched, k)
				return ErrClosed
			}
			if full == nil && !s.fitsLocked(len(sc.byShard[k]), sc.sizes[k]) {
				full = s
			}
		}
		if full == nil {
			break
		}
		if full.space == nil {
			full.space = make(chan struct{})
		}
		space := full.space
		p.unlockShards(sc.touched, -1)
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, k := range sc.touched {
		s := p.shards[k]
		sc.byShard[k] = s.acceptChunkLocked(sc.byShard[k], sc.sizes[k])
		wake := s.wakeAfterAcceptLocked()
		s.mu.Unlock()
		if wake {
			s.signal()
		}
	}
	return nil
}

// unlockShards unlocks the shards of touched locked so far: all of them
// when upto is -1, else those before index upto and upto itself.
func (p *Pipeline) unlockShards(touched []int, upto int) {
	for _, k := range touched {
		p.shards[k].mu.Unlock()
		if k == upto {
			return
		}
	}
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}
