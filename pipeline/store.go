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

// BatchLookup is an optional interface of a Store that answers many
// lookups in one call for less than as many Lookup calls (dedup.Store
// implements it). When the store has it, each worker asks it for every
// fresh event of a chunk before handling the chunk (without sequence
// ordering or the SkipDedup hook): an answer is then as old as the chunk's
// start. That changes nothing: a worker releases the claims of its
// committed events only between rounds, never within a chunk, so until
// then its claims answer for them; and the events of other shards were
// never ordered with this shard's.
//
// LookupBatch must answer exactly what Lookup would: a wrapper around a
// store that has it (to trace or to inject faults, say) must override
// both, or embed only what it means to keep. It is called concurrently by
// all the shard workers, and must not keep ids, outs or found after it
// returns. When it fails, the worker asks Lookup event by event for that
// chunk, and each event gets Lookup's own error, if any.
type BatchLookup interface {
	// LookupBatch sets outs[i] and found[i] to what Lookup(ids[i])
	// returns; outs and found are at least as long as ids. An error
	// leaves them undefined.
	LookupBatch(ids []onceflow.Identity, outs []onceflow.Outcome, found []bool) error
}
