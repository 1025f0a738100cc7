package onceflow

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
	// Raw is the event's original bytes; stored only for dead letters.
	Raw []byte
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
