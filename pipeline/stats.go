package pipeline

import (
	"time"

	"github.com/onceflow/onceflow/retry"
)

// Stats are counters of a pipeline since New. Counts are of deliveries
// (events as submitted), not identities.
type Stats struct {
	// Submitted counts events accepted by Submit, TrySubmit and Do.
	Submitted uint64
	// Handled counts handler runs that succeeded.
	Handled uint64
	// Failed counts events that are not done: the handler failed or
	// panicked, the store failed a lookup, or the run was abandoned.
	Failed uint64
	// Duplicates counts deliveries answered with an earlier copy's outcome.
	Duplicates uint64
	// Acked and Nacked count acknowledgements delivered without and with an
	// error.
	Acked, Nacked uint64
	// InFlight and InFlightBytes measure events accepted and not yet
	// acknowledged; QueuedEvents and QueuedBytes those of them still
	// waiting for a shard worker.
	InFlight, InFlightBytes   int64
	QueuedEvents, QueuedBytes int64
	// Commits counts group commits, CommittedEvents the records they
	// wrote, and CommitTime the total time spent in them.
	Commits, CommittedEvents uint64
	CommitTime               time.Duration
	// Retries counts attempts scheduled after a failure; DeadLettered
	// counts events given up on; Parked is the number of events waiting
	// behind (or for) a retry right now.
	Retries, DeadLettered uint64
	Parked                int64
	// Held is the number of early events held for sequence ordering right
	// now, Released the held events handed on since; GapReports counts
	// gaps the gap policy acted on, GapSkipped the sequence numbers given
	// up by GapSkip.
	Held                   int64
	Released               uint64
	GapReports, GapSkipped uint64
	// OutboxDelivered counts outbox messages delivered (and deleted);
	// OutboxErrors counts failed delivery rounds.
	OutboxDelivered, OutboxErrors uint64
	// Budget is the retry budget's state (zero without WithRetryBudget).
	Budget retry.BudgetStats
}

// EventsPerCommit returns the mean group-commit size.
func (s Stats) EventsPerCommit() float64 {
	if s.Commits == 0 {
		return 0
	}
	return float64(s.CommittedEvents) / float64(s.Commits)
}

// Stats returns a snapshot of the counters. It is safe to call at any time;
// it takes each shard's lock briefly.
func (p *Pipeline) Stats() Stats {
	var st Stats
	for _, s := range p.shards {
		s.mu.Lock()
		st.Submitted += s.submitted
		st.InFlight += int64(s.used)
		st.InFlightBytes += int64(s.usedBytes)
		st.QueuedEvents += int64(s.items.len())
		st.QueuedBytes += int64(s.queuedSize)
		s.mu.Unlock()
		st.Handled += s.handled.Load()
		st.Failed += s.failed.Load()
		st.Duplicates += s.duplicates.Load()
		st.Acked += s.acked.Load()
		st.Nacked += s.nacked.Load()
		st.Retries += s.retries.Load()
		st.DeadLettered += s.deadLettered.Load()
		st.Parked += s.parkedGauge.Load()
		st.Held += s.heldGauge.Load()
		st.Released += s.released.Load()
		st.GapReports += s.gapReports.Load()
		st.GapSkipped += s.gapSkipped.Load()
	}
	if p.cfg.budget != nil {
		st.Budget = p.cfg.budget.Stats()
	}
	st.OutboxDelivered = p.outboxDelivered.Load()
	st.OutboxErrors = p.outboxErrors.Load()
	st.Commits = p.commits.Load()
	st.CommittedEvents = p.committedEvents.Load()
	st.CommitTime = time.Duration(p.commitNanos.Load())
	return st
}
