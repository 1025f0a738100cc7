package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/onceflow/onceflow/retry"
)

func TestPermanent(t *testing.T) {
	if got := retry.Permanent(nil); got != nil {
		t.Errorf("Permanent(nil) = %v, want nil", got)
	}
	if retry.IsPermanent(nil) {
		t.Error("IsPermanent(nil) = true, want false")
	}

	cause := &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}
	err := retry.Permanent(cause)
	if !retry.IsPermanent(err) {
		t.Errorf("IsPermanent(Permanent(err)) = false, want true")
	}
	if got, want := err.Error(), cause.Error(); got != want {
		t.Errorf("Permanent(err).Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("errors.Is does not see through Permanent")
	}
	if pe, ok := errors.AsType[*fs.PathError](err); !ok || pe != cause {
		t.Errorf("errors.AsType[*fs.PathError] = %v, %v; want the cause", pe, ok)
	}
	if again := retry.Permanent(err); again != err {
		t.Errorf("Permanent(Permanent(err)) = %#v, want the same error %#v", again, err)
	}

	for _, wrapped := range []error{
		fmt.Errorf("handler: %w", err),
		errors.Join(errors.New("a"), fmt.Errorf("b: %w", err)),
	} {
		if !retry.IsPermanent(wrapped) {
			t.Errorf("IsPermanent(%v) = false, want true", wrapped)
		}
	}
	if retry.IsPermanent(cause) {
		t.Errorf("IsPermanent(unmarked) = true, want false")
	}
}

func TestDefaultClassify(t *testing.T) {
	panicErr := &retry.PanicError{Value: "boom"}
	tests := []struct {
		err  error
		want retry.Class
	}{
		{nil, retry.ClassRetryable},
		{errTransient, retry.ClassRetryable},
		{context.DeadlineExceeded, retry.ClassRetryable},
		{context.Canceled, retry.ClassRetryable},
		{fmt.Errorf("attempt: %w", context.Canceled), retry.ClassRetryable},
		{retry.Permanent(errTransient), retry.ClassPermanent},
		{retry.Permanent(context.Canceled), retry.ClassPermanent},
		{fmt.Errorf("x: %w", retry.Permanent(errTransient)), retry.ClassPermanent},
		{panicErr, retry.ClassPanic},
		{fmt.Errorf("handler: %w", panicErr), retry.ClassPanic},
		{retry.Permanent(panicErr), retry.ClassPanic}, // a panic is a panic
	}
	for _, tt := range tests {
		if got := retry.DefaultClassify(tt.err); got != tt.want {
			t.Errorf("DefaultClassify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// The names below are stored with events and exported as metrics: a change
// breaks users' data, so it must fail a test.
func TestStableNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{retry.ClassRetryable.String(), "retryable"},
		{retry.ClassPermanent.String(), "permanent"},
		{retry.ClassPanic.String(), "panic"},
		{retry.Class(42).String(), "class(42)"},
		{retry.FullJitter.String(), "full"},
		{retry.NoJitter.String(), "none"},
		{retry.Jitter(9).String(), "jitter(9)"},
		{retry.WhenEmptyWait.String(), "wait"},
		{retry.WhenEmptyDeadLetter.String(), "dead_letter"},
		{retry.BudgetPolicy(5).String(), "budget_policy(5)"},
		{retry.ReasonPermanent, "permanent"},
		{retry.ReasonMaxAttempts, "max_attempts"},
		{retry.ReasonMaxElapsed, "max_elapsed"},
		{retry.ReasonBudget, "budget_exhausted"},
		{retry.ReasonPanic, "handler_panic"},
		{retry.ReasonSequenceConflict, "sequence_conflict"},
		{retry.ReasonGapTimeout, "gap_timeout"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	var zero retry.Class
	if zero != retry.ClassRetryable {
		t.Errorf("zero Class = %v, want retryable", zero)
	}
}
