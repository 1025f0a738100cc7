package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/retry"
)

// Option configures a Pipeline. Options are applied in order by [New].
type Option interface{ apply(*config) error }

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// Ack is the acknowledgement of one accepted event, delivered exactly once
// per accepted event to the callback set with [WithAck] (and to the caller
// of [Pipeline.Do]).
type Ack struct {
	// Event is the event as submitted.
	Event *onceflow.Event
	// Outcome is the event's final outcome when Err is nil. For a duplicate
	// it is the first copy's outcome with Duplicate set.
	Outcome onceflow.Outcome
	// DeadLetter is set, with Outcome.Status StatusDeadLettered, for the
	// delivery that was dead-lettered (not for its later duplicates).
	DeadLetter *onceflow.DeadLetter
	// Released marks the final outcome of an event that was held for
	// sequence ordering: its delivery was acknowledged before, as held.
	Released bool
	// Err is nil when the outcome is final (committed, when the pipeline
	// has a store). Otherwise the event is not done — the handler failed,
	// the pipeline was cancelled or hit a fatal error — and its source
	// should deliver it again (a negative acknowledgement).
	Err error
}

// Sink receives, in the committer goroutine, the events whose handler
// succeeded in each group commit and whose outcome the store keeps (not a
// later copy of an identity committed before or earlier in the group, which
// can happen when copies of one identity carry different partition keys),
// in commit order, before the group commits.
// The checkpoint it returns (for example the byte offset of an output file
// after writing and syncing the events) is stored in the same transaction
// under the sink's name, so that after a crash the sink can cut its output
// back to the last committed checkpoint. Only pipelines with a Store accept
// a Sink.
type Sink interface {
	// Name names the checkpoint in the store.
	Name() string
	// WriteBatch writes evs durably and returns the checkpoint to commit.
	// An error is fatal for the pipeline: nothing of the group commits.
	WriteBatch(evs []*onceflow.Event) (checkpoint []byte, err error)
}

type config struct {
	shards      int
	batch       int
	linger      time.Duration
	queueEvents int
	queueBytes  int
	store       Store
	sink        Sink
	ack         func(Ack)
	groupEvents int
	groupDelay  time.Duration
	logger      *slog.Logger
	now         func() time.Time
	retry       *retry.Policy
	budget      *retry.Budget
	budgetWhen  retry.BudgetPolicy
	seed        uint64
	seeded      bool
	seq         *SequenceOptions
	hooks       Hooks
	outbox      func(context.Context, onceflow.Message) error
	outboxRetry time.Duration
}

func defaults() config {
	return config{
		shards:      4,
		batch:       64,
		linger:      100 * time.Microsecond,
		queueEvents: 64 * 1024,
		queueBytes:  32 << 20,
		groupEvents: 1000,
		groupDelay:  2 * time.Millisecond,
		logger:      slog.New(slog.DiscardHandler),
		now:         time.Now,
	}
}

// WithShards sets the number of shard workers (default 4). Events are
// routed to a worker by a hash of their key; a worker handles its events one
// at a time. On a 2-core machine more shards buy ownership and isolation
// rather than speed.
func WithShards(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > 1024 {
			return fmt.Errorf("pipeline: WithShards(%d): must be in [1, 1024]", n)
		}
		c.shards = n
		return nil
	})
}

// WithBatchSize sets the most events moved from the intake to a worker in
// one hand-off, and so the most a worker handles before it hands results on
// (default 64). Larger batches amortise synchronisation; 1 disables
// batching.
func WithBatchSize(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > 1<<16 {
			return fmt.Errorf("pipeline: WithBatchSize(%d): must be in [1, 65536]", n)
		}
		c.batch = n
		return nil
	})
}

// WithLinger sets how long a sleeping worker lets a partial batch fill
// before it is woken (default 100 µs); a full batch wakes it at once. Zero
// wakes the worker for every event, which lowers latency at low rates and
// costs throughput at high ones.
func WithLinger(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return fmt.Errorf("pipeline: WithLinger(%v): must not be negative", d)
		}
		c.linger = d
		return nil
	})
}

// WithQueueLimits bounds the events accepted but not yet acknowledged, in
// count and in bytes ([onceflow.Event.Size]); defaults 65,536 events and
// 32 MiB. The limits are split evenly across shards. When a shard is full,
// Submit blocks and TrySubmit returns ErrBackpressure; an event larger than
// a shard's byte share is accepted only when that shard is empty.
func WithQueueLimits(events, bytes int) Option {
	return optionFunc(func(c *config) error {
		if events < 1 || bytes < 1 {
			return fmt.Errorf("pipeline: WithQueueLimits(%d, %d): both must be positive", events, bytes)
		}
		c.queueEvents, c.queueBytes = events, bytes
		return nil
	})
}

// isNil reports whether v is nil or holds a nil pointer, map, slice,
// channel or function: a typed nil, such as a (*dedup.Store)(nil) from a
// failed Open, would otherwise be accepted and panic on first use.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch r := reflect.ValueOf(v); r.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func:
		return r.IsNil()
	}
	return false
}

// nilName names a nil v for an error: "nil", or "(*T)(nil)" for a typed
// nil.
func nilName(v any) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("(%T)(nil)", v)
}

// WithStore makes the pipeline deduplicate and commit through s: the first
// copy of each identity runs the handler, its outcome and effects commit
// in one group commit, and duplicates get the first outcome back. Without a
// store the pipeline is a pass-through: every delivery runs the handler,
// nothing is durable, and a handler that writes effects fails with
// ErrNoStore.
func WithStore(s Store) Option {
	return optionFunc(func(c *config) error {
		if isNil(s) {
			return fmt.Errorf("pipeline: WithStore(%s)", nilName(s))
		}
		c.store = s
		return nil
	})
}

// WithSink sets a sink written before each group commit (see [Sink]).
// Requires WithStore.
func WithSink(s Sink) Option {
	return optionFunc(func(c *config) error {
		if isNil(s) {
			return fmt.Errorf("pipeline: WithSink(%s)", nilName(s))
		}
		c.sink = s
		return nil
	})
}

// WithAck sets the acknowledgement callback, called exactly once for every
// accepted event after its result is final (see [Ack]). It is called from
// the pipeline's goroutines — the committer when there is a store, the
// shard workers otherwise — so it may run concurrently with itself; for a
// given key, calls come in submission order. It must not block for long
// and must not call Shutdown. Default: none.
func WithAck(f func(Ack)) Option {
	return optionFunc(func(c *config) error {
		c.ack = f
		return nil
	})
}

// WithGroupCommit bounds a group commit: the committer writes one store
// transaction when it holds maxEvents events or when maxDelay has passed
// since the first of them arrived, whichever comes first (defaults 1,000
// events and 2 ms).
func WithGroupCommit(maxEvents int, maxDelay time.Duration) Option {
	return optionFunc(func(c *config) error {
		if maxEvents < 1 || maxDelay <= 0 {
			return fmt.Errorf("pipeline: WithGroupCommit(%d, %v): both must be positive", maxEvents, maxDelay)
		}
		c.groupEvents, c.groupDelay = maxEvents, maxDelay
		return nil
	})
}

// WithLogger sets the logger for rare events (fatal errors, handler
// panics); default: discard. Per-event logging is at Debug level.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return fmt.Errorf("pipeline: WithLogger(nil)")
		}
		c.logger = l
		return nil
	})
}

// WithClock sets the source of time for first-seen timestamps (default
// time.Now).
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) error {
		if now == nil {
			return fmt.Errorf("pipeline: WithClock(nil)")
		}
		c.now = now
		return nil
	})
}

// WithRetry retries failed attempts in the pipeline by policy p, and
// dead-letters the event when p gives up (or the error is permanent, or the
// handler panicked): the dead-letter record is committed with the outcome
// dead_lettered, and later copies do not run the handler. While an event of
// key K waits for its next attempt, later events of K wait behind it and
// other keys keep flowing; waiting events count against the queue limits.
// Without WithRetry a failed attempt is acknowledged with its error at once
// (a negative acknowledgement: the source should redeliver).
func WithRetry(p retry.Policy) Option {
	return optionFunc(func(c *config) error {
		p = p.WithDefaults()
		if err := p.Validate(); err != nil {
			return fmt.Errorf("pipeline: WithRetry: %w", err)
		}
		c.retry = &p
		return nil
	})
}

// WithRetryBudget shares b across the shards: each retry takes a token;
// when none is left, the retry waits for the next token or the event is
// dead-lettered with reason budget_exhausted, as when says. Requires
// WithRetry. b's state is in Stats().Budget.
func WithRetryBudget(b *retry.Budget, when retry.BudgetPolicy) Option {
	return optionFunc(func(c *config) error {
		if b == nil {
			return fmt.Errorf("pipeline: WithRetryBudget(nil)")
		}
		c.budget, c.budgetWhen = b, when
		return nil
	})
}

// WithSeed seeds the per-shard random sources used for retry jitter, so a
// run's retry delays can be reproduced (default: a seed from the clock).
func WithSeed(seed uint64) Option {
	return optionFunc(func(c *config) error {
		c.seed, c.seeded = seed, true
		return nil
	})
}
