// Package pipeline is onceflow's engine: it routes submitted events to
// key-sharded workers, runs the handler once per event identity, commits
// outcomes and effects in group commits, and acknowledges each event after
// its result is final.
//
// # Guarantees
//
//   - Every event accepted by Submit, TrySubmit, SubmitBatch or Do is
//     acknowledged exactly once (see [Ack]): with its final outcome, or with
//     an error meaning "not done, deliver it again". Nothing accepted is
//     dropped silently; an event that is refused gets an error at once.
//   - Events with equal [onceflow.Event.Key] are handled one at a time, in
//     the order they were accepted; different keys run in parallel on
//     different shard workers.
//   - With a [Store] (see WithStore), the handler runs once per identity
//     (source + id): a duplicate — in flight or committed, in this run or an
//     earlier one — gets the first copy's outcome back, marked Duplicate,
//     and never re-runs the handler. The handler's state writes and outbox
//     messages commit in the same transaction as its outcome, and the Ack
//     comes only after that transaction is durable. A failed attempt
//     commits nothing and releases its claim, so a redelivery is processed.
//   - Without a store the pipeline is a pass-through: every delivery runs
//     the handler and nothing is durable.
//
// # Architecture and goroutines
//
//	Submit ──► shard intake (chunks, bounded) ──► shard worker ──► committer ──► Ack
//	           one per shard, under its mutex       one per shard    one (with a store)
//
// Run starts one worker goroutine per shard and, with a store, one
// committer goroutine; it waits for all of them before it returns, on every
// path. Events move between goroutines in batches: SubmitBatch moves each
// shard's share of its events into the intake as one chunk under one lock;
// a worker takes up to WithBatchSize events (whole chunks, the last one
// split if need be) under one lock — asking the store for all of a
// chunk's committed outcomes in one call when it implements BatchLookup —
// and sends one handled batch to the committer over a channel. The committer groups batches from all shards
// into one store transaction (WithGroupCommit),
// then acknowledges them, releases their queue budget, and hands each batch
// back to its worker, which releases the batch's claims. New creates the
// committer channel; Run closes it after every worker has returned;
// nothing else is closed by a receiver.
//
// # Caveats
//
//   - Two copies of one identity with different partition keys go to
//     different shards: the store still commits the identity's outcome and
//     effects once (the later copy's effects are discarded and it receives
//     the first outcome), but the handler may run for both.
//   - Effects outside onceflow (HTTP calls, emails) are at least once: use
//     Effects.IdempotencyKey so that the receiver can drop repeats.
//
// # Bounds and what blocks
//
// Each shard has a budget of events and bytes (WithQueueLimits divided by
// the shard count) covering every event from acceptance to its Ack. Submit
// blocks while the event's shard is full, TrySubmit returns
// ErrBackpressure, SubmitBatch blocks until all its events fit. Because the
// budget spans the whole path, no intake queue, channel or map grows with
// the number of events submitted: the intake holds at most a shard's
// budget (in chunks that each hold at least one event, and at most 64 kept
// for reuse), the committer channel at most two groups' worth of batches plus
// one per shard (so that workers go on handling while a group commits), and
// the pending-claim map, the state overlay, the parked
// retries and the early events waiting for their sequence at most the
// events in flight.
// Stats counters of handled events and duplicates are added once per batch
// a worker hands on, so a snapshot may lag an Ack by up to a batch.
// The Ack callback runs on the committer (or, without a store, on the
// worker): a slow callback slows the pipeline and, through the budget,
// blocks Submit. It must not call Submit, SubmitBatch or Do, which could
// wait for space only the callback's caller frees. A panic in the Ack
// callback (or in a Sink) is not recovered: it is a bug of the caller's, and
// the event it was told of is already committed.
//
// Handlers run on their shard's worker goroutine, one event at a time per
// shard, with a context derived from Run's: it is cancelled when Run's
// context is (or a fatal error stops the run), and, with a retry policy
// that sets AttemptTimeout, when the attempt times out. Shutdown does not
// cancel it: Shutdown and Run wait for running handlers, so a handler that
// ignores its context and never returns keeps them waiting (Shutdown is
// bounded by its own context; Run is not). A handler must not call Submit,
// SubmitBatch or Do on its own pipeline and wait for the result: that
// event may need the budget the handler holds, or queue on the handler's
// own shard behind it, so the call can wait forever.
//
// # Lifecycle
//
// The lifecycle follows net/http's Server: [Pipeline.Run] once;
// [Pipeline.Shutdown] stops intake (later submissions return ErrClosed,
// also those racing Shutdown), drains everything accepted, commits, waits
// for every goroutine; cancelling Run's context abandons the work in flight
// instead — nothing uncommitted is acknowledged as done, and each such event
// gets an Ack whose error wraps ErrAbandoned. A store commit or sink error
// is fatal: the pipeline stops the same way and Run returns the error.
//
// # Failures, retries and dead letters
//
// A handler error discards the attempt's effects. Without WithRetry the
// event is acknowledged at once with the error (its source should deliver
// it again). With WithRetry(policy) the worker schedules the next attempt
// itself, by the policy's backoff and full jitter: the event's key is
// parked — its later events wait behind it, so per-key order holds — while
// every other key of the shard keeps flowing; a per-shard heap and one
// timer resume parked keys when due. Parked events count against the
// queue limits, so a failing key means backpressure, never a drop. A
// retry.Budget shared by the shards (WithRetryBudget) caps retries across
// keys. When the policy gives up, the error is permanent (retry.Permanent)
// or the handler panicked, the event is dead-lettered: its outcome is
// StatusDeadLettered and an onceflow.DeadLetter (raw event, reason class,
// last error, attempts and times, the stack of a panic) commits in the same
// transaction. A later copy of a dead-lettered event does not run the
// handler; Redrive re-processes it exactly once. Shutdown waits for parked
// retries, bounded by its context.
//
// A handler panic is recovered on the worker as a *retry.PanicError
// holding the stack (the event's payload is never logged): without a retry
// policy the event is acknowledged with that error; with one it is
// dead-lettered with reason handler_panic. No goroutine is lost.
//
// # Sequence ordering
//
// With WithSequenceOrder, each key's events reach the handler in ascending
// CloudEvents "sequence" order, contiguous from 1. An early event waits in
// memory, accepted and unacknowledged, and is handled when the gap before
// it fills. Early events still waiting when the run drains (or when they
// fill half of their shard's budget) are committed durably with the
// outcome StatusHeld and acknowledged; a later run reloads them, and when
// their gap fills they are handled and acknowledged again with
// Ack.Released. The key's next expected sequence commits with each group,
// so a crash never skips or repeats an event. A gap open past the timeout
// is waited on, skipped with an exact report of the missing numbers, or
// dead-letters the waiting events (GapPolicy). An event whose sequence was
// already handled is a duplicate when its identity matches, and is
// dead-lettered with reason sequence_conflict otherwise.
//
// # Outbox
//
// With WithOutbox, messages handlers emit (Effects.Emit) are delivered by
// one goroutine after their commit, at least once, with a stable
// idempotency key; Shutdown waits for the pending ones.
//
// # Testing hooks
//
// WithTestHooks installs crash points and mutation switches used by
// onceflow's own crash and property tests (see Hooks). They break the
// guarantees on purpose and are never for production.
//
// # Defaults
//
// 4 shards, batches of 64 events, 100 µs linger, 65,536 events and 32 MiB
// in flight, group commits of up to 1,000 events or 2 ms, no retries.
package pipeline
