package onceflow

import "time"

// Record is one event's entry in a commit: its final outcome and the
// effects its handler wrote.
type Record struct {
	// ID is the identity the outcome is stored under.
	ID Identity
	// Outcome is stored for ID. On return from a Store's Commit, it holds
	// the outcome actually stored: when ID was already committed (a copy of
	// the same identity routed through another shard), the store keeps the
	// first outcome, discards Writes and Outbox, and sets Outcome to the
	// stored one with Duplicate true.
	Outcome Outcome
	// Writes and Outbox are the handler's transactional effects.
	Writes []StateWrite
	Outbox []Message
	// DeadLetter, when set, is stored in the dead-letter bucket in the
	// same transaction; Outcome.Status is then StatusDeadLettered.
	DeadLetter *DeadLetter
	// Redrive marks the outcome of a redriven dead letter: it replaces a
	// stored dead-lettered outcome (any other stored outcome still wins),
	// and the dead letter's Redriven time is set in the same transaction.
	Redrive bool
	// Release marks the final outcome of an event that was held for
	// sequence ordering: it replaces a stored held outcome (any other stored
	// outcome still wins).
	Release bool
}

// Checkpoint is a named value stored in the same transaction as a batch of
// records, such as the committed offset of an output file.
type Checkpoint struct {
	Name  string
	Value []byte
}

// CommitBatch is what one durable transaction writes.
type CommitBatch struct {
	Records     []Record
	Checkpoints []Checkpoint
}

// Reset empties b, keeping its capacity.
func (b *CommitBatch) Reset() {
	clear(b.Records)
	b.Records = b.Records[:0]
	clear(b.Checkpoints)
	b.Checkpoints = b.Checkpoints[:0]
}

// DeadLetter is the durable record of an event the pipeline gave up on: the
// retry policy gave up, the error was permanent, the handler panicked, or
// its sequence conflicted. It is stored in the same transaction that marks
// the identity dead-lettered, and a redelivered copy of the event does not
// run the handler again; Redrive re-processes it exactly once.
type DeadLetter struct {
	ID Identity
	// Raw is the event's original bytes, or for an event built in code its
	// encoding by [Event.AppendJSON]: what a redrive decodes.
	Raw []byte
	// Reason is a stable class: see the retry package's Reason constants.
	Reason string
	// Error is the text of the last error (for a panic, the panic value).
	// It never includes the payload unless the handler put it there.
	Error string
	// Stack is the handler's stack for a panic.
	Stack []byte
	// Attempts is how many times the handler ran.
	Attempts uint32
	// FirstAttempt and LastAttempt bound the attempts.
	FirstAttempt, LastAttempt time.Time
	// Redriven is when the event was redriven and done, zero before.
	Redriven time.Time
}

// OutboxEntry is a committed outbox message waiting for delivery, with the
// store's sequence number for it.
type OutboxEntry struct {
	Seq     uint64
	Message Message
}
