package retry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Defaults applied by [Policy.WithDefaults] to zero fields.
const (
	DefaultInitialInterval = 100 * time.Millisecond
	DefaultMultiplier      = 2.0
	DefaultMaxInterval     = 30 * time.Second
	DefaultMaxAttempts     = 5
)

// Jitter selects how a backoff cap becomes a delay.
type Jitter uint8

const (
	// FullJitter, the zero value and the default, draws each delay uniformly
	// from [0, cap] (the AWS "full jitter" scheme): retries of many events
	// that failed together spread out instead of arriving in waves.
	FullJitter Jitter = iota
	// NoJitter uses the cap itself: 100ms, 200ms, 400ms... Deterministic,
	// for tests and for callers that add their own spreading.
	NoJitter
)

// String returns "full", "none", or "jitter(N)" for an unknown value.
func (j Jitter) String() string {
	switch j {
	case FullJitter:
		return "full"
	case NoJitter:
		return "none"
	default:
		return fmt.Sprintf("jitter(%d)", uint8(j))
	}
}

// Rand is the source of jitter. *math/rand/v2.Rand satisfies it; it is not
// safe for concurrent use, so give each goroutine (each shard worker) its
// own, seeded from the pipeline's seed so that a run can be reproduced.
type Rand interface {
	// Int64N returns a uniform number in [0, n); n > 0.
	Int64N(n int64) int64
}

// Policy decides whether and when a failed attempt is retried. It is a plain
// value: copy it, compare its fields, build it literally. Zero fields take
// the defaults documented on each field (see [Policy.WithDefaults]), so the
// zero Policy is usable: 5 attempts, 100ms doubling to at most 30s, full
// jitter, no elapsed limit, no attempt timeout.
//
// A Policy never sleeps: [Policy.Next] returns how long to wait and the
// caller schedules the next attempt. Its methods are safe for concurrent use
// as long as Classify is.
type Policy struct {
	// InitialInterval is the backoff cap after the first attempt fails.
	// Zero means 100ms.
	InitialInterval time.Duration
	// Multiplier scales the cap after each further failure. Zero means 2;
	// otherwise it must be at least 1 (1 gives a constant cap).
	Multiplier float64
	// MaxInterval bounds the cap. Zero means 30s. It must not be less than
	// InitialInterval (after defaults).
	MaxInterval time.Duration
	// MaxAttempts is the total number of handler runs, the first included.
	// Zero means 5; 1 means no retry; a negative value means unlimited.
	MaxAttempts int
	// MaxElapsed bounds the time from the start of the first attempt to the
	// start of a retry: a retry that would start later is not made. Zero
	// means no limit.
	MaxElapsed time.Duration
	// AttemptTimeout bounds each attempt; the caller applies it with
	// [Policy.AttemptContext]. Zero means no timeout.
	AttemptTimeout time.Duration
	// Jitter is FullJitter (the zero value) or NoJitter.
	Jitter Jitter
	// Classify maps an attempt's error to its Class. Nil means
	// [DefaultClassify]. It must be safe for concurrent use when the Policy
	// is shared between goroutines.
	Classify func(error) Class
}

// WithDefaults returns p with every zero field replaced by its default
// (Classify becomes DefaultClassify). Fields that are set, valid or not, are
// kept; Validate reports invalid ones.
func (p Policy) WithDefaults() Policy {
	if p.InitialInterval == 0 {
		p.InitialInterval = DefaultInitialInterval
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultMultiplier
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = DefaultMaxInterval
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.Classify == nil {
		p.Classify = DefaultClassify
	}
	return p
}

// Validate reports every invalid field of p, each error naming its field:
// a negative duration, a Multiplier below 1 (other than zero) or not finite,
// an unknown Jitter, or an InitialInterval above MaxInterval once defaults
// are applied. It returns nil for a valid Policy, the zero Policy included.
//
// Callers should validate a Policy once, when it is configured. Next and
// Backoff do not validate; on an invalid Policy they still return a
// delay in [0, MaxInterval] (0 when MaxInterval is negative) and never
// panic.
func (p Policy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("retry: "+format, args...))
	}
	for _, f := range [...]struct {
		name string
		d    time.Duration
	}{
		{"InitialInterval", p.InitialInterval},
		{"MaxInterval", p.MaxInterval},
		{"MaxElapsed", p.MaxElapsed},
		{"AttemptTimeout", p.AttemptTimeout},
	} {
		if f.d < 0 {
			bad("Policy.%s is %v: must not be negative", f.name, f.d)
		}
	}
	switch m := p.Multiplier; {
	case math.IsNaN(m) || math.IsInf(m, 0):
		bad("Policy.Multiplier is %v: must be a finite number", m)
	case m != 0 && m < 1:
		bad("Policy.Multiplier is %v: must be at least 1 (or 0 for the default %v)", m, DefaultMultiplier)
	}
	if p.Jitter != FullJitter && p.Jitter != NoJitter {
		bad("Policy.Jitter is %v: must be FullJitter or NoJitter", p.Jitter)
	}
	if d := p.WithDefaults(); d.InitialInterval > 0 && d.MaxInterval > 0 && d.InitialInterval > d.MaxInterval {
		bad("Policy.InitialInterval %v exceeds Policy.MaxInterval %v", d.InitialInterval, d.MaxInterval)
	}
	return errors.Join(errs...)
}

// Backoff returns the delay cap after attempt failed attempts, before
// jitter: min(MaxInterval, InitialInterval * Multiplier^(attempt-1)), with
// defaults applied. An attempt below 1 counts as 1. It does not overflow:
// a huge attempt number gives MaxInterval.
func (p Policy) Backoff(attempt int) time.Duration {
	return p.WithDefaults().backoff(attempt)
}

// backoff is Backoff on a Policy whose defaults are applied.
func (p Policy) backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	limit := max(p.MaxInterval, 0)
	// In float64 the power saturates at +Inf instead of wrapping, so a huge
	// attempt number lands on limit; so does the NaN of an invalid
	// Multiplier.
	f := float64(p.InitialInterval) * math.Pow(p.Multiplier, float64(attempt-1))
	switch {
	case f >= float64(limit) || math.IsNaN(f):
		return limit
	case f <= 0:
		return 0
	default:
		return time.Duration(f)
	}
}

// Decision is what to do after an attempt failed.
type Decision struct {
	// Retry reports whether to run another attempt.
	Retry bool
	// Delay is how long to wait before that attempt, from the time passed
	// to Next. Zero when Retry is false.
	Delay time.Duration
	// Reason is why the retry is not made, one of ReasonPermanent,
	// ReasonPanic, ReasonMaxAttempts, ReasonMaxElapsed or ReasonBudget; it
	// is "" when Retry is true. It is the dead-letter reason of the event.
	Reason string
}

// Next decides what follows the failure err of an attempt. attempt is the
// number of attempts made so far, the failed one included (1 after the
// first; values below 1 count as 1); first is when the first attempt
// started and now is the current time, both from the caller's clock.
//
// In order:
//   - an error Classify maps to ClassPermanent (or any unknown Class) gives
//     up with ReasonPermanent, and one mapped to ClassPanic with
//     ReasonPanic;
//   - attempt >= MaxAttempts (when MaxAttempts is not negative) gives up
//     with ReasonMaxAttempts;
//   - otherwise the delay is Backoff(attempt) under NoJitter, or drawn
//     uniformly from [0, Backoff(attempt)] with rnd under FullJitter; if
//     now+delay is after first+MaxElapsed (when MaxElapsed is set) Next
//     gives up with ReasonMaxElapsed, else it returns Retry with the delay.
//
// rnd is used only under FullJitter, for exactly one draw per retry; nil
// means math/rand/v2's global source (safe, but not reproducible). Next
// never sleeps or reads a clock, and with DefaultClassify it does not
// allocate (about 150ns; BenchmarkNext).
func (p Policy) Next(attempt int, first, now time.Time, err error, rnd Rand) Decision {
	p = p.WithDefaults()
	switch p.Classify(err) {
	case ClassRetryable:
	case ClassPanic:
		return Decision{Reason: ReasonPanic}
	default:
		return Decision{Reason: ReasonPermanent}
	}
	if attempt < 1 {
		attempt = 1
	}
	if p.MaxAttempts > 0 && attempt >= p.MaxAttempts {
		return Decision{Reason: ReasonMaxAttempts}
	}
	delay := p.backoff(attempt)
	if p.Jitter == FullJitter && delay > 0 {
		delay = jitter(delay, rnd)
	}
	if p.MaxElapsed > 0 {
		// Sub saturates, so a far-apart pair cannot wrap; a clock that went
		// backwards counts as no time elapsed.
		elapsed := max(now.Sub(first), 0)
		if elapsed > p.MaxElapsed || delay > p.MaxElapsed-elapsed {
			return Decision{Reason: ReasonMaxElapsed}
		}
	}
	return Decision{Retry: true, Delay: delay}
}

// jitter draws uniformly from [0, limit]; limit > 0.
func jitter(limit time.Duration, rnd Rand) time.Duration {
	n := int64(limit)
	if n < math.MaxInt64 {
		n++ // include limit itself
	}
	if rnd == nil {
		return time.Duration(rand.Int64N(n))
	}
	return time.Duration(rnd.Int64N(n))
}

// Schedule returns the delays Next would give after attempts 1, 2, ... n,
// for a retryable error and attempts that take no time, stopping early
// where Next gives up (MaxAttempts, MaxElapsed). Under FullJitter it draws
// from rnd as Next does, so the same seed gives the same schedule; under
// NoJitter rnd is unused and may be nil. It is for documentation, tests and
// logs; the pipeline calls Next.
func (p Policy) Schedule(n int, rnd Rand) []time.Duration {
	if n <= 0 {
		return nil
	}
	p = p.WithDefaults()
	p.Classify = func(error) Class { return ClassRetryable }
	var (
		out   []time.Duration
		first time.Time
		now   = first
	)
	for attempt := 1; attempt <= n; attempt++ {
		d := p.Next(attempt, first, now, nil, rnd)
		if !d.Retry {
			break
		}
		out = append(out, d.Delay)
		now = now.Add(d.Delay)
	}
	return out
}

// AttemptContext returns the context for one attempt: ctx with
// AttemptTimeout applied when it is set, otherwise a cancelable child of
// ctx. The caller must call cancel when the attempt ends. The deadline runs
// on the runtime's clock (faked inside a testing/synctest bubble). An
// attempt that overruns ends with context.DeadlineExceeded, which
// DefaultClassify treats as retryable.
func (p Policy) AttemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.AttemptTimeout > 0 {
		return context.WithTimeout(ctx, p.AttemptTimeout)
	}
	return context.WithCancel(ctx)
}
