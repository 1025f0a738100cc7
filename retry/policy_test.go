package retry_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/onceflow/onceflow/retry"
)

var errTransient = errors.New("transient")

const ms = time.Millisecond

func TestPolicy_Backoff(t *testing.T) {
	tests := []struct {
		name string
		p    retry.Policy
		want []time.Duration // for attempts 1, 2, ...
	}{
		{"defaults", retry.Policy{}, []time.Duration{
			100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms,
			12800 * ms, 25600 * ms, 30 * time.Second, 30 * time.Second,
		}},
		{"capped", retry.Policy{MaxInterval: time.Second}, []time.Duration{
			100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second,
		}},
		{"multiplier=1.5", retry.Policy{InitialInterval: time.Second, Multiplier: 1.5}, []time.Duration{
			time.Second, 1500 * ms, 2250 * ms, 3375 * ms,
		}},
		{"multiplier=1", retry.Policy{InitialInterval: 10 * ms, Multiplier: 1}, []time.Duration{
			10 * ms, 10 * ms, 10 * ms,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := tt.p.Backoff(i + 1); got != want {
					t.Errorf("Backoff(%d) = %v, want %v", i+1, got, want)
				}
			}
		})
	}
	for _, attempt := range []int{0, -1, math.MinInt} {
		if got := (retry.Policy{}).Backoff(attempt); got != 100*ms {
			t.Errorf("Backoff(%d) = %v, want 100ms (attempts below 1 count as 1)", attempt, got)
		}
	}
}

func TestPolicy_Next_noJitter(t *testing.T) {
	p := retry.Policy{MaxInterval: time.Second, MaxAttempts: -1, Jitter: retry.NoJitter}
	first := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	now := first
	var got []time.Duration
	for attempt := 1; attempt <= 7; attempt++ {
		d := p.Next(attempt, first, now, errTransient, nil)
		if !d.Retry || d.Reason != "" {
			t.Fatalf("Next(%d) = %+v, want a retry", attempt, d)
		}
		got = append(got, d.Delay)
		now = now.Add(d.Delay)
	}
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("delays = %v, want %v", got, want)
	}
}

func TestPolicy_Next_fullJitter(t *testing.T) {
	s := seed(t)
	p := retry.Policy{MaxAttempts: -1} // FullJitter is the zero value
	first := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	draw := func(rnd retry.Rand, n int) []time.Duration {
		out := make([]time.Duration, 0, n)
		for attempt := 1; attempt <= n; attempt++ {
			d := p.Next(attempt, first, first, errTransient, rnd)
			if !d.Retry {
				t.Fatalf("Next(%d) = %+v, want a retry", attempt, d)
			}
			if limit := p.Backoff(attempt); d.Delay < 0 || d.Delay > limit {
				t.Fatalf("Next(%d).Delay = %v, want in [0, %v]", attempt, d.Delay, limit)
			}
			out = append(out, d.Delay)
		}
		return out
	}
	a := draw(newRand(s), 200)
	b := draw(newRand(s), 200)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different delays:\n%v\n%v", a, b)
	}
	if c := draw(newRand(s+1), 200); slices.Equal(a, c) {
		t.Errorf("seeds %d and %d gave the same 200 delays", s, s+1)
	}

	// The draws are uniform over [0, cap]: the mean of many is near cap/2
	// (the standard error is 0.3% of cap, the margin 5%).
	rnd := newRand(s)
	const n = 10000
	var sum float64
	for range n {
		sum += float64(p.Next(3, first, first, errTransient, rnd).Delay)
	}
	if mean, limit := sum/n, float64(p.Backoff(3)); mean < 0.45*limit || mean > 0.55*limit {
		t.Errorf("mean delay = %v, want about %v", time.Duration(mean), time.Duration(limit/2))
	}

	// Nil rnd draws from the global source: in range, not reproducible.
	for attempt := 1; attempt < 20; attempt++ {
		d := p.Next(attempt, first, first, errTransient, nil)
		if !d.Retry || d.Delay < 0 || d.Delay > p.Backoff(attempt) {
			t.Fatalf("Next(%d, nil rnd) = %+v, want a retry in [0, %v]", attempt, d, p.Backoff(attempt))
		}
	}
}

func TestPolicy_Next_giveUp(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	noJitter := retry.Policy{Jitter: retry.NoJitter}
	elapsed := retry.Policy{Jitter: retry.NoJitter, MaxAttempts: -1, MaxElapsed: time.Second}
	tests := []struct {
		name    string
		p       retry.Policy
		attempt int
		now     time.Time
		err     error
		want    retry.Decision
	}{
		{"permanent", noJitter, 1, t0, retry.Permanent(errTransient),
			retry.Decision{Reason: retry.ReasonPermanent}},
		{"permanent wrapped", noJitter, 1, t0, errors.Join(errors.New("x"), retry.Permanent(errTransient)),
			retry.Decision{Reason: retry.ReasonPermanent}},
		{"permanent beats max attempts", noJitter, 5, t0, retry.Permanent(errTransient),
			retry.Decision{Reason: retry.ReasonPermanent}},
		{"panic", noJitter, 1, t0, &retry.PanicError{Value: "boom"},
			retry.Decision{Reason: retry.ReasonPanic}},
		{"unknown class is permanent", retry.Policy{Classify: func(error) retry.Class { return 9 }}, 1, t0, errTransient,
			retry.Decision{Reason: retry.ReasonPermanent}},
		{"custom classifier", retry.Policy{Classify: func(err error) retry.Class {
			if errors.Is(err, errTransient) {
				return retry.ClassPermanent
			}
			return retry.ClassRetryable
		}}, 1, t0, errTransient, retry.Decision{Reason: retry.ReasonPermanent}},
		{"attempt 4 of 5", noJitter, 4, t0, errTransient,
			retry.Decision{Retry: true, Delay: 800 * ms}},
		{"attempt 5 of 5", noJitter, 5, t0, errTransient,
			retry.Decision{Reason: retry.ReasonMaxAttempts}},
		{"attempt 1 of 1", retry.Policy{MaxAttempts: 1}, 1, t0, errTransient,
			retry.Decision{Reason: retry.ReasonMaxAttempts}},
		{"unlimited attempts", retry.Policy{MaxAttempts: -1, Jitter: retry.NoJitter}, 1_000_000, t0, errTransient,
			retry.Decision{Retry: true, Delay: 30 * time.Second}},
		{"elapsed: ends exactly at the limit", elapsed, 3, t0.Add(600 * ms), errTransient,
			retry.Decision{Retry: true, Delay: 400 * ms}},
		{"elapsed: would pass the limit", elapsed, 3, t0.Add(601 * ms), errTransient,
			retry.Decision{Reason: retry.ReasonMaxElapsed}},
		{"elapsed: already past", elapsed, 1, t0.Add(2 * time.Second), errTransient,
			retry.Decision{Reason: retry.ReasonMaxElapsed}},
		{"elapsed: clock before first", elapsed, 1, t0.Add(-time.Hour), errTransient,
			retry.Decision{Retry: true, Delay: 100 * ms}},
		{"elapsed: far apart times", elapsed, 1, t0.AddDate(300, 0, 0), errTransient,
			retry.Decision{Reason: retry.ReasonMaxElapsed}},
		{"max attempts before max elapsed", retry.Policy{MaxElapsed: time.Nanosecond}, 5, t0.Add(time.Hour), errTransient,
			retry.Decision{Reason: retry.ReasonMaxAttempts}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.p.Next(tt.attempt, t0, tt.now, tt.err, newRand(1))
			if got != tt.want {
				t.Errorf("Next(%d, t0, t0+%v, %v) = %+v, want %+v", tt.attempt, tt.now.Sub(t0), tt.err, got, tt.want)
			}
		})
	}
}

func TestPolicy_Next_hugeAttempts(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	policies := []retry.Policy{
		{MaxAttempts: -1},
		{MaxAttempts: -1, Multiplier: 1e300, MaxInterval: math.MaxInt64},
		{MaxAttempts: -1, InitialInterval: math.MaxInt64, MaxInterval: math.MaxInt64},
		{MaxAttempts: -1, Multiplier: 1.001, MaxInterval: time.Hour}, // 1.001^1e6 is about e^1000
	}
	for _, p := range policies {
		if err := p.Validate(); err != nil {
			t.Fatalf("Validate(%+v) = %v, want nil", p, err)
		}
		limit := p.WithDefaults().MaxInterval
		for _, attempt := range []int{1e6, math.MaxInt32, math.MaxInt} {
			if got := p.Backoff(attempt); got != limit {
				t.Errorf("%+v: Backoff(%d) = %v, want %v", p, attempt, got, limit)
			}
			for _, j := range []retry.Jitter{retry.NoJitter, retry.FullJitter} {
				p.Jitter = j
				d := p.Next(attempt, t0, t0, errTransient, newRand(uint64(attempt)))
				if !d.Retry || d.Delay < 0 || d.Delay > limit || (j == retry.NoJitter && d.Delay != limit) {
					t.Errorf("%+v: Next(%d) = %+v, want a retry in [0, %v]", p, attempt, d, limit)
				}
			}
		}
	}
}

// Next never panics and stays in [0, MaxInterval] on an invalid Policy.
func TestPolicy_Next_invalidPolicy(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []retry.Policy{
		{Multiplier: math.NaN()},
		{Multiplier: math.Inf(1)},
		{Multiplier: 0.5},
		{Multiplier: -3},
		{InitialInterval: -time.Second},
		{MaxInterval: -time.Second},
		{InitialInterval: time.Hour, MaxInterval: time.Second},
		{Jitter: 7},
	} {
		p.MaxAttempts = -1
		if p.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want an error", p)
		}
		limit := max(p.WithDefaults().MaxInterval, 0)
		for _, attempt := range []int{1, 2, 50, 1e6} {
			d := p.Next(attempt, t0, t0, errTransient, newRand(2))
			if d.Delay < 0 || d.Delay > limit {
				t.Errorf("%+v: Next(%d) = %+v, want a delay in [0, %v]", p, attempt, d, limit)
			}
		}
	}
}

func TestPolicy_Validate(t *testing.T) {
	tests := []struct {
		name   string
		p      retry.Policy
		fields []string // each must appear in the error; none: valid
	}{
		{"zero", retry.Policy{}, nil},
		{"full", retry.Policy{InitialInterval: time.Second, Multiplier: 1, MaxInterval: time.Second,
			MaxAttempts: -1, MaxElapsed: time.Hour, AttemptTimeout: time.Minute, Jitter: retry.NoJitter}, nil},
		{"negative initial", retry.Policy{InitialInterval: -1}, []string{"Policy.InitialInterval"}},
		{"negative max", retry.Policy{MaxInterval: -1}, []string{"Policy.MaxInterval"}},
		{"negative elapsed", retry.Policy{MaxElapsed: -time.Second}, []string{"Policy.MaxElapsed"}},
		{"negative timeout", retry.Policy{AttemptTimeout: -time.Second}, []string{"Policy.AttemptTimeout"}},
		{"multiplier below 1", retry.Policy{Multiplier: 0.9}, []string{"Policy.Multiplier", "at least 1"}},
		{"multiplier negative", retry.Policy{Multiplier: -2}, []string{"Policy.Multiplier"}},
		{"multiplier NaN", retry.Policy{Multiplier: math.NaN()}, []string{"Policy.Multiplier", "NaN"}},
		{"multiplier Inf", retry.Policy{Multiplier: math.Inf(1)}, []string{"Policy.Multiplier", "+Inf"}},
		{"jitter unknown", retry.Policy{Jitter: 3}, []string{"Policy.Jitter", "jitter(3)"}},
		{"initial above default max", retry.Policy{InitialInterval: time.Minute}, []string{"Policy.InitialInterval 1m0s", "Policy.MaxInterval 30s"}},
		{"every bad field", retry.Policy{InitialInterval: -1, Multiplier: 0.1, MaxInterval: -1, MaxElapsed: -1, AttemptTimeout: -1, Jitter: 9},
			[]string{"Policy.InitialInterval", "Policy.Multiplier", "Policy.MaxInterval", "Policy.MaxElapsed", "Policy.AttemptTimeout", "Policy.Jitter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if len(tt.fields) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %v", tt.fields)
			}
			for _, f := range tt.fields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("Validate() = %q, want it to contain %q", err, f)
				}
			}
			if !strings.HasPrefix(err.Error(), "retry: ") {
				t.Errorf("Validate() = %q, want the prefix \"retry: \"", err)
			}
		})
	}
}

func TestPolicy_WithDefaults(t *testing.T) {
	got := retry.Policy{}.WithDefaults()
	if got.InitialInterval != 100*ms || got.Multiplier != 2 || got.MaxInterval != 30*time.Second ||
		got.MaxAttempts != 5 || got.MaxElapsed != 0 || got.AttemptTimeout != 0 ||
		got.Jitter != retry.FullJitter || got.Classify == nil {
		t.Errorf("Policy{}.WithDefaults() = %+v", got)
	}
	set := retry.Policy{InitialInterval: time.Second, Multiplier: 3, MaxInterval: time.Minute, MaxAttempts: -1}
	if got := set.WithDefaults(); got.InitialInterval != time.Second || got.Multiplier != 3 ||
		got.MaxInterval != time.Minute || got.MaxAttempts != -1 {
		t.Errorf("WithDefaults() changed set fields: %+v", got)
	}
}

func TestPolicy_Schedule(t *testing.T) {
	got := retry.Policy{Jitter: retry.NoJitter}.Schedule(100, nil)
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms} // MaxAttempts 5
	if !slices.Equal(got, want) {
		t.Errorf("Schedule(100) = %v, want %v", got, want)
	}
	p := retry.Policy{Jitter: retry.NoJitter, MaxAttempts: -1, MaxElapsed: time.Second}
	if got, want := p.Schedule(100, nil), []time.Duration{100 * ms, 200 * ms, 400 * ms}; !slices.Equal(got, want) {
		t.Errorf("Schedule with MaxElapsed 1s = %v, want %v", got, want)
	}
	if got := (retry.Policy{}).Schedule(0, nil); got != nil {
		t.Errorf("Schedule(0) = %v, want nil", got)
	}
	// A permanent classifier does not stop a schedule: it assumes retryable errors.
	perm := retry.Policy{Jitter: retry.NoJitter, Classify: func(error) retry.Class { return retry.ClassPermanent }}
	if got := perm.Schedule(3, nil); len(got) != 3 {
		t.Errorf("Schedule(3) with a permanent classifier = %v, want 3 delays", got)
	}

	s := seed(t)
	jit := retry.Policy{MaxAttempts: -1}
	a, b := jit.Schedule(50, newRand(s)), jit.Schedule(50, newRand(s))
	if !slices.Equal(a, b) || len(a) != 50 {
		t.Errorf("Schedule(50) with the same seed:\n%v\n%v", a, b)
	}
}

// A real retry loop over hours of fake time: the attempts start exactly at
// the backoff schedule, and the loop gives up where MaxElapsed says.
func TestPolicy_Next_loop(t *testing.T) {
	p := retry.Policy{
		InitialInterval: time.Second,
		MaxInterval:     10 * time.Minute,
		MaxAttempts:     -1,
		MaxElapsed:      5 * time.Hour,
		Jitter:          retry.NoJitter,
	}
	// Attempt n+1 starts 2^(n-1) s after attempt n, at most 600s later.
	want := []time.Duration{0, 1, 3, 7, 15, 31, 63, 127, 255, 511, 1023}
	for at := 1023 + 600; at <= 5*3600; at += 600 {
		want = append(want, time.Duration(at))
	}
	for i := range want {
		want[i] *= time.Second
	}
	if n, last := len(want), want[len(want)-1]; n != 39 || last != 17823*time.Second {
		t.Fatalf("test bug: want %d attempts, the last at %v", n, last)
	}

	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var got []time.Duration
		attempts, last := loop(p, nil, func() error {
			got = append(got, time.Since(start))
			return errTransient
		})
		if attempts != len(want) || last.Reason != retry.ReasonMaxElapsed {
			t.Errorf("loop = %d attempts, %+v; want %d attempts, %q", attempts, last, len(want), retry.ReasonMaxElapsed)
		}
		if !slices.Equal(got, want) {
			t.Errorf("attempt times =\n%v\nwant\n%v", got, want)
		}
		if end := time.Since(start); end != want[len(want)-1] {
			t.Errorf("loop returned after %v, want %v (no sleep after giving up)", end, want[len(want)-1])
		}
	})

	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var got []time.Duration
		attempts, last := loop(p, nil, func() error {
			got = append(got, time.Since(start))
			if len(got) < 4 {
				return errTransient
			}
			return nil
		})
		if attempts != 4 || last != (retry.Decision{}) || !slices.Equal(got, want[:4]) {
			t.Errorf("loop = %d attempts at %v, %+v; want 4 at %v, success", attempts, got, last, want[:4])
		}
	})
}

// The same seed replays the same jittered schedule in fake time.
func TestPolicy_Next_loopJitter(t *testing.T) {
	s := seed(t)
	p := retry.Policy{InitialInterval: time.Second, MaxInterval: time.Minute, MaxAttempts: 30}
	run := func() []time.Duration {
		var got []time.Duration
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			attempts, last := loop(p, newRand(s), func() error {
				got = append(got, time.Since(start))
				return errTransient
			})
			if attempts != 30 || last.Reason != retry.ReasonMaxAttempts {
				t.Errorf("loop = %d attempts, %+v; want 30, %q", attempts, last, retry.ReasonMaxAttempts)
			}
		})
		return got
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different attempt times:\n%v\n%v", a, b)
	}
	for i := 1; i < len(a); i++ {
		if gap, limit := a[i]-a[i-1], p.Backoff(i); gap < 0 || gap > limit {
			t.Errorf("gap before attempt %d = %v, want in [0, %v]", i+1, gap, limit)
		}
	}
}

func TestPolicy_AttemptContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := retry.Policy{AttemptTimeout: 5 * time.Second}
		start := time.Now()
		ctx, cancel := p.AttemptContext(t.Context())
		defer cancel()
		<-ctx.Done()
		if got := time.Since(start); got != 5*time.Second {
			t.Errorf("attempt ended after %v, want 5s", got)
		}
		err := ctx.Err()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ctx.Err() = %v, want DeadlineExceeded", err)
		}
		if got := retry.DefaultClassify(err); got != retry.ClassRetryable {
			t.Errorf("DefaultClassify(%v) = %v, want retryable", err, got)
		}
	})

	ctx, cancel := retry.Policy{}.AttemptContext(t.Context())
	if _, ok := ctx.Deadline(); ok {
		t.Error("AttemptContext without AttemptTimeout has a deadline")
	}
	cancel()
	if ctx.Err() == nil {
		t.Error("cancel did not cancel the attempt context")
	}
}

// Next does not allocate with the default classifier, with or without jitter.
func TestPolicy_Next_allocs(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rnd := newRand(1)
	wrapped := errors.Join(errTransient, errors.New("other"))
	for _, j := range []retry.Jitter{retry.NoJitter, retry.FullJitter} {
		p := retry.Policy{Jitter: j, MaxAttempts: -1, MaxElapsed: time.Hour}
		if n := testing.AllocsPerRun(100, func() { p.Next(7, t0, t0, wrapped, rnd) }); n != 0 {
			t.Errorf("Next with jitter %v: %v allocs, want 0", j, n)
		}
	}
}
