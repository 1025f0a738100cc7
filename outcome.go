package onceflow

import "time"

// Status is the durable state of an event identity.
type Status uint8

const (
	// StatusUnknown is the zero Status: nothing is recorded.
	StatusUnknown Status = iota
	// StatusDone: the handler succeeded and its effects are committed.
	StatusDone
	// StatusDeadLettered: the retry policy gave up, the error was
	// permanent, or the handler panicked; the event is in the dead letters.
	StatusDeadLettered
	// StatusRejected: the event was invalid at ingress (used by tools that
	// record rejects; the pipeline never stores it).
	StatusRejected
	// StatusHeld: the event arrived before its sequence was due and is held
	// durably until the gap before it is filled (sequence ordering). It is
	// replaced by the event's final outcome when it is released.
	StatusHeld
)

// String returns the lower-case name of s.
func (s Status) String() string {
	switch s {
	case StatusDone:
		return "done"
	case StatusDeadLettered:
		return "dead_lettered"
	case StatusRejected:
		return "rejected"
	case StatusHeld:
		return "held"
	default:
		return "unknown"
	}
}

// Outcome is the final result of an event, as stored for its identity and
// as handed to the acknowledgement callback.
//
// A duplicate delivery receives the outcome stored for the first copy with
// Duplicate set; the handler does not run again.
type Outcome struct {
	Status Status
	// Duplicate reports that this delivery was not the first copy: the
	// outcome is the first copy's.
	Duplicate bool
	// Attempts is how many times the handler ran for the first copy.
	Attempts uint32
	// FirstSeen is when the first copy was claimed.
	FirstSeen time.Time
	// Result is the small result the handler returned (at most
	// [MaxResultBytes]).
	Result []byte
	// ErrorClass is a stable, machine-readable class of the last error, ""
	// on success.
	ErrorClass string
}

// MaxResultBytes bounds Outcome.Result; a handler returning more fails with
// [ErrResultTooLarge].
const MaxResultBytes = 4096

// MaxIdentifierBytes is the longest source, id or partition key, in bytes,
// that onceflow accepts anywhere: a pipeline refuses an event with a longer
// one at Submit (with [ErrInvalidIdentifier]), and [WithMaxIdentifierBytes]
// cannot raise a decoder's limit above it. It keeps every identity, and
// every state key of a partition key, within the store's key size limit.
const MaxIdentifierBytes = 8192

// MaxStateKeyBytes bounds a state key as stored, [StateKey](pk, k): a
// handler that writes or deletes a longer one fails with
// [ErrStateKeyTooLarge]. It is bbolt's key size limit.
const MaxStateKeyBytes = 32768
