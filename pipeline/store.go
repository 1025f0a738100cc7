package pipeline

import onceflow "github.com/onceflow/onceflow"

// Store is what the pipeline needs from a deduplicating, durable store. The
// dedup package provides two: dedup.Open (bbolt on disk) and
// dedup.NewMemory. The pipeline does not import either.
//
// Lookup and ReadState are safe for concurrent use by the shard workers.
// Commit is called by one goroutine at a time (the pipeline's committer).
type Store interface {
	// Lookup reports the committed outcome of id, if any. It may answer
	// "not committed" without I/O (a Bloom negative); any positive answer
	// has been confirmed against the full identity.
	Lookup(id onceflow.Identity) (onceflow.Outcome, bool, error)
	// ReadState returns a copy of committed handler state under key.
	ReadState(key []byte) ([]byte, bool, error)
	// Commit durably writes b in one transaction (fsync'd unless the store
	// was opened unsafely) and returns only when it is durable. For each
	// record whose identity was already committed, Commit keeps the stored
	// outcome, discards the record's effects and rewrites the record's
	// Outcome to the stored one with Duplicate set. An error means nothing
	// of b may be treated as committed.
	Commit(b *onceflow.CommitBatch) error
}
