package pipeline

import (
	"context"
	"errors"
	"fmt"

	onceflow "github.com/onceflow/onceflow"
)

// DeadLetterReader is implemented by stores that keep dead letters
// (dedup.Store does). Redrive needs it.
type DeadLetterReader interface {
	DeadLetter(id onceflow.Identity) (onceflow.DeadLetter, bool, error)
}

// ErrNotDeadLettered is returned by Redrive for an identity without a dead
// letter.
var ErrNotDeadLettered = errors.New("pipeline: no dead letter for this identity")

// Redrive re-processes the dead-lettered event id exactly once: it decodes
// the stored raw event, runs the handler (with the retry policy), and
// commits the new outcome, which replaces the dead-lettered one, in the
// same transaction that marks the dead letter redriven. It waits for that
// outcome. Redriving an event again, or concurrently, returns the outcome
// of the one redrive that ran, marked Duplicate; a redrive interrupted by a
// crash commits nothing and can simply be repeated. A redrive that fails
// again is dead-lettered again (with its new attempts).
//
// The redriven event bypasses sequence ordering: its sequence number was
// already handed on when it was dead-lettered.
func (p *Pipeline) Redrive(ctx context.Context, id onceflow.Identity) (onceflow.Outcome, error) {
	if err := ctxErr(ctx); err != nil {
		return onceflow.Outcome{}, err
	}
	r, ok := p.cfg.store.(DeadLetterReader)
	if !ok {
		return onceflow.Outcome{}, errors.New("pipeline: Redrive needs a store that keeps dead letters")
	}
	dl, found, err := r.DeadLetter(id)
	if err != nil {
		return onceflow.Outcome{}, fmt.Errorf("%w: reading dead letter: %w", onceflow.ErrStorage, err)
	}
	if !found {
		return onceflow.Outcome{}, fmt.Errorf("%w: %v", ErrNotDeadLettered, id)
	}
	if dl.Raw == nil {
		return onceflow.Outcome{}, fmt.Errorf("pipeline: dead letter %v has no raw event to redrive", id)
	}
	ev, err := p.redriveDecoder.Decode(dl.Raw)
	if err != nil {
		return onceflow.Outcome{}, fmt.Errorf("%w: dead letter %v: %w", onceflow.ErrCorrupt, id, err)
	}
	if ev.Identity() != id {
		return onceflow.Outcome{}, fmt.Errorf("%w: dead letter %v holds the event %v", onceflow.ErrCorrupt, id, ev.Identity())
	}
	w := make(chan Ack, 1)
	s := p.shards[shardOf(ev, len(p.shards))]
	if err := s.submit(ctx, newItem(ev, itemRedrive), w, true); err != nil {
		return onceflow.Outcome{}, err
	}
	select {
	case a := <-w:
		return a.Outcome, a.Err
	case <-ctx.Done():
		return onceflow.Outcome{}, ctx.Err()
	}
}
