package retry

import (
	"errors"
	"fmt"
)

// Dead-letter reasons: the stable, machine-readable strings onceflow stores
// with a dead-lettered event and reports in metrics. They never change.
const (
	// ReasonPermanent: the handler's error was classified permanent.
	ReasonPermanent = "permanent"
	// ReasonMaxAttempts: Policy.MaxAttempts attempts all failed.
	ReasonMaxAttempts = "max_attempts"
	// ReasonMaxElapsed: the next retry would start after Policy.MaxElapsed.
	ReasonMaxElapsed = "max_elapsed"
	// ReasonBudget: the retry budget was empty and its policy is
	// WhenEmptyDeadLetter.
	ReasonBudget = "budget_exhausted"
	// ReasonPanic: the handler panicked (see PanicError).
	ReasonPanic = "handler_panic"
	// ReasonSequenceConflict: under sequence ordering, the event's sequence
	// number conflicts with what its key already holds (used by the
	// pipeline, not by Policy).
	ReasonSequenceConflict = "sequence_conflict"
	// ReasonGapTimeout: under sequence ordering, the gap before the event
	// was not filled in time (used by the pipeline, not by Policy).
	ReasonGapTimeout = "gap_timeout"
)

// Class is the retry class of an error, as decided by Policy.Classify.
type Class uint8

const (
	// ClassRetryable, the zero value, marks a transient failure: the
	// attempt is retried while the policy and the budget allow.
	ClassRetryable Class = iota
	// ClassPermanent marks an error that retrying cannot fix: the event is
	// dead-lettered at once with ReasonPermanent.
	ClassPermanent
	// ClassPanic marks a handler panic: the event is dead-lettered at once
	// with ReasonPanic.
	ClassPanic
)

// String returns the stable name of c: "retryable", "permanent", "panic",
// or "class(N)" for an unknown value.
func (c Class) String() string {
	switch c {
	case ClassRetryable:
		return "retryable"
	case ClassPermanent:
		return "permanent"
	case ClassPanic:
		return "panic"
	default:
		return fmt.Sprintf("class(%d)", uint8(c))
	}
}

// permanentError marks its error as not retryable. It is unexported so
// that the marker never becomes part of a caller's error vocabulary: callers
// ask IsPermanent, and errors.Is/As see through it to the cause.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as an error that must not be retried: DefaultClassify
// maps it to ClassPermanent. The result has err's message, and errors.Is
// and errors.As see err through it. Permanent(nil) is nil, and an error that
// is already permanent is returned as it is.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &permanentError{err}
}

// IsPermanent reports whether err or any error it wraps was marked by
// Permanent.
func IsPermanent(err error) bool {
	_, ok := errors.AsType[*permanentError](err)
	return ok
}

// DefaultClassify is the Classify used when a Policy leaves it nil:
//
//   - an error wrapping a *PanicError (see Call) is ClassPanic;
//   - an error marked by Permanent is ClassPermanent;
//   - everything else is ClassRetryable, nil included.
//
// context.DeadlineExceeded is retryable: it is what an attempt that overran
// Policy.AttemptTimeout returns. context.Canceled is retryable too, on
// purpose: it usually means the pipeline itself is stopping, and an event
// abandoned at shutdown must be released for redelivery, never
// dead-lettered. So a caller checks its own context before asking Next,
// and a handler that wants a cancellation of its own to be final returns
// Permanent(err).
func DefaultClassify(err error) Class {
	if _, ok := errors.AsType[*PanicError](err); ok {
		return ClassPanic
	}
	if IsPermanent(err) {
		return ClassPermanent
	}
	return ClassRetryable
}
