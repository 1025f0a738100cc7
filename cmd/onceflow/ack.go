package main

import (
	"errors"
	"fmt"
	"sync"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/pipeline"
)

// acker counts the pipeline's acknowledgements. It is called from the
// pipeline's committer goroutine, concurrently with the reader.
type acker struct {
	cnt      *counters
	rej      *rejects
	sequence bool

	mu    sync.Mutex
	lines map[*onceflow.Event]int64 // --order sequence: line of each event in flight
	first error                     // the first event not processed
	nacks int64
}

// submitted notes the line of ev, with --order sequence, so that an event
// the pipeline dead-letters (a sequence conflict) is reported with it.
func (a *acker) submitted(ev *onceflow.Event, line int64) {
	if !a.sequence {
		return
	}
	a.mu.Lock()
	a.lines[ev] = line
	a.mu.Unlock()
}

func (a *acker) ack(k pipeline.Ack) {
	final := !(k.Err == nil && k.Outcome.Status == onceflow.StatusHeld && !k.Outcome.Duplicate)
	var line int64
	if a.sequence {
		a.mu.Lock()
		line = a.lines[k.Event]
		if final {
			delete(a.lines, k.Event)
		}
		a.mu.Unlock()
	}
	switch {
	case k.Err != nil:
		a.mu.Lock()
		a.nacks++
		if a.first == nil {
			a.first = k.Err
		}
		a.mu.Unlock()
	case k.Outcome.Duplicate:
		a.cnt.duplicates.Add(1)
	case k.DeadLetter != nil:
		// Only --order sequence dead-letters (the handler never fails):
		// an event whose key and sequence belong to another event.
		a.cnt.rejected.Add(1)
		err := fmt.Errorf("%s: %s", k.DeadLetter.ID, k.DeadLetter.Error)
		if rerr := a.rej.addReason(line, k.DeadLetter.Reason, err); rerr != nil {
			a.mu.Lock()
			a.nacks++
			if a.first == nil {
				a.first = rerr
			}
			a.mu.Unlock()
		}
	}
}

// err reports the events that were not processed.
func (a *acker) err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.nacks == 0 {
		return nil
	}
	if errors.Is(a.first, pipeline.ErrSequenceBufferFull) {
		return fmt.Errorf("%d events could not be held for sequence ordering, the reorder buffer being full "+
			"(a gap too long before them): %w", a.nacks, a.first)
	}
	return fmt.Errorf("%d events were not processed: %w", a.nacks, a.first)
}
