package dedup

import (
	"errors"
	"fmt"
	"time"

	onceflow "github.com/onceflow/onceflow"
	berrors "go.etcd.io/bbolt/errors"
)

// Sentinel errors of the dedup package. Errors that come from the store
// itself also match [onceflow.ErrStorage], and those about undecodable
// stored bytes also match [onceflow.ErrCorrupt].
var (
	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("dedup: store closed")
	// ErrLocked is returned by Open when another process (or another Store
	// in this process) holds the file and did not release it within the
	// lock timeout. The error also names the path.
	ErrLocked = errors.New("dedup: state is locked by another process")
	// ErrInvalidRecord is returned by Commit for a batch that cannot be
	// stored — for example a record without status or with a status that
	// is not one of onceflow's, an empty Source or ID, an empty or
	// oversized key, a dead letter whose record is not dead-lettered, an
	// oversized checkpoint name; nothing of the batch is committed.
	ErrInvalidRecord = errors.New("dedup: invalid commit record")
	// ErrInvalidBatch is returned by LookupBatch when its result slices
	// are shorter than its identities.
	ErrInvalidBatch = errors.New("dedup: LookupBatch result slices shorter than its identities")
)

// storeError is an error of the durable store. It matches
// onceflow.ErrStorage and its cause.
type storeError struct {
	op   string // what was being done: "open", "commit", "lookup", ...
	path string // the file, or "memory"
	err  error
}

func (e *storeError) Error() string {
	return "dedup: " + e.op + " " + e.path + ": " + e.err.Error()
}

func (e *storeError) Unwrap() []error { return []error{onceflow.ErrStorage, e.err} }

// lockedError reports a file held by another opener.
type lockedError struct {
	path    string
	timeout time.Duration
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("%v: %s (waited %v)", ErrLocked, e.path, e.timeout)
}

func (e *lockedError) Unwrap() []error {
	return []error{ErrLocked, onceflow.ErrStorage, berrors.ErrTimeout}
}

// corruptf returns an error matching onceflow.ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{onceflow.ErrCorrupt}, args...)...)
}
