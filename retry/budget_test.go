package retry_test

import (
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/onceflow/onceflow/retry"
)

func TestNewBudget_invalid(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		refill   float64
		want     string
	}{
		{"zero capacity", 0, 1, "capacity is 0"},
		{"negative capacity", -5, 1, "capacity is -5"},
		{"negative refill", 1, -1, "refillPerSecond is -1"},
		{"NaN refill", 1, math.NaN(), "refillPerSecond is NaN"},
		{"Inf refill", 1, math.Inf(1), "refillPerSecond is +Inf"},
		{"refill too slow", 10, 1e-12, "73 years"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := retry.NewBudget(tt.capacity, tt.refill, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "retry: ") {
				t.Fatalf("NewBudget(%d, %v) = %v, %v; want an error containing %q", tt.capacity, tt.refill, b, err, tt.want)
			}
			if b != nil {
				t.Errorf("NewBudget returned a budget with the error")
			}
		})
	}
	for _, refill := range []float64{0, 1e-6, 0.5, 3, 1e12} {
		if _, err := retry.NewBudget(1000, refill, nil); err != nil {
			t.Errorf("NewBudget(1000, %v) = %v, want nil", refill, err)
		}
	}
}

func mustBudget(t testing.TB, capacity int, refill float64, clock retry.Clock) *retry.Budget {
	t.Helper()
	b, err := retry.NewBudget(capacity, refill, clock)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBudget_refill(t *testing.T) {
	clock := newFakeClock()
	b := mustBudget(t, 3, 10, clock) // a token every 100ms

	for i := range 3 {
		if !b.Take() {
			t.Fatalf("Take %d of a full budget of 3 = false", i+1)
		}
	}
	if b.Take() {
		t.Fatal("Take on an empty budget = true")
	}
	if got := b.NextToken(); got != 100*ms {
		t.Errorf("NextToken() = %v, want 100ms", got)
	}
	clock.Advance(60 * ms)
	if got := b.NextToken(); got != 40*ms {
		t.Errorf("NextToken() after 60ms = %v, want 40ms", got)
	}
	if got := b.Stats().Tokens; math.Abs(got-0.6) > 1e-9 {
		t.Errorf("Stats().Tokens after 60ms = %v, want 0.6", got)
	}
	if b.Take() {
		t.Error("Take before the token is due = true")
	}
	clock.Advance(40 * ms)
	if got := b.NextToken(); got != 0 {
		t.Errorf("NextToken() when due = %v, want 0", got)
	}
	if !b.Take() {
		t.Error("Take when the token is due = false")
	}
	clock.Advance(time.Hour) // refill stops at capacity
	if got := b.Stats().Tokens; got != 3 {
		t.Errorf("Stats().Tokens after an hour = %v, want 3", got)
	}
	granted := 0
	for b.Take() {
		granted++
	}
	if granted != 3 {
		t.Errorf("took %d tokens after an hour, want 3 (the capacity)", granted)
	}

	want := retry.BudgetStats{Capacity: 3, RefillPerSecond: 10, Tokens: 0, Taken: 7, Denied: 3}
	if got := b.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

// Goroutines hammering one budget while time moves: the tokens granted
// never exceed capacity + rate × elapsed, and once drained they equal it.
func TestBudget_concurrentExact(t *testing.T) {
	const (
		capacity = 50
		rate     = 200 // a token every 5ms
		workers  = 8
		takes    = 50 // per worker and round: far more than a round refills
		rounds   = 400
	)
	clock := newFakeClock()
	b := mustBudget(t, capacity, rate, clock)
	bound := func() uint64 { return capacity + uint64(clock.Elapsed()/(time.Second/rate)) }

	// Drain the full bucket first: refill time spent full would be lost (a
	// bucket holds at most capacity), and then "equal" would not hold.
	var granted, calls atomic.Uint64
	for range capacity {
		if !b.Take() {
			t.Fatal("Take on a full budget = false")
		}
		granted.Add(1)
		calls.Add(1)
	}
	for range rounds {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range takes {
					calls.Add(1)
					if b.Take() {
						granted.Add(1)
					}
				}
			})
		}
		for range 3 { // 3ms a round, in steps that race the takes
			clock.Advance(ms)
			runtime.Gosched()
		}
		wg.Wait()
		if g, limit := granted.Load(), bound(); g > limit {
			t.Fatalf("after %v: %d tokens granted, bound %d", clock.Elapsed(), g, limit)
		}
	}
	for b.Take() { // drain what the workers left
		granted.Add(1)
		calls.Add(1)
	}
	calls.Add(1) // the Take that found the budget empty

	if g, want := granted.Load(), bound(); g != want {
		t.Errorf("%d tokens granted over %v, want exactly %d", g, clock.Elapsed(), want)
	}
	s := b.Stats()
	if s.Taken != granted.Load() || s.Taken+s.Denied != calls.Load() || s.Waited != 0 {
		t.Errorf("Stats() = %+v, want Taken %d, Taken+Denied %d", s, granted.Load(), calls.Load())
	}
	if s.Tokens < 0 || s.Tokens >= 1 {
		t.Errorf("Stats().Tokens = %v after draining, want in [0, 1)", s.Tokens)
	}
}

// A rate that is not a whole number of nanoseconds per token rounds the
// interval up: tokens come a little late, never early.
func TestBudget_fractionalRate(t *testing.T) {
	clock := newFakeClock()
	b := mustBudget(t, 1, 3, clock) // a token every 333,333,333.3ns
	if !b.Take() {
		t.Fatal("Take on a full budget = false")
	}
	granted := 0
	for range 3000 {
		clock.Advance(ms)
		for b.Take() {
			granted++
		}
	}
	// 3s at 3/s: at most 9, and rounding costs at most one.
	if granted != 8 && granted != 9 {
		t.Errorf("granted %d tokens in 3s at 3/s, want 8 or 9", granted)
	}
	b = mustBudget(t, 1, 0.5, clock) // a token every 2s
	b.Take()
	if got := b.NextToken(); got != 2*time.Second {
		t.Errorf("NextToken() at 0.5/s = %v, want 2s", got)
	}
}

func TestBudget_noRefill(t *testing.T) {
	clock := newFakeClock()
	b := mustBudget(t, 2, 0, clock)
	for i := range 2 {
		if !b.Take() {
			t.Fatalf("Take %d on a budget of 2 = false", i+1)
		}
	}
	clock.Advance(24 * time.Hour)
	if b.Take() {
		t.Error("a budget without refill refilled")
	}
	if got := b.NextToken(); got != math.MaxInt64 {
		t.Errorf("NextToken() = %v, want MaxInt64 (never)", got)
	}
	retryNow := retry.Decision{Retry: true, Delay: time.Second}
	for _, when := range []retry.BudgetPolicy{retry.WhenEmptyWait, retry.WhenEmptyDeadLetter} {
		if got := b.Admit(retryNow, when); got != (retry.Decision{Reason: retry.ReasonBudget}) {
			t.Errorf("Admit(%v) on an empty budget without refill = %+v, want give up with %q", when, got, retry.ReasonBudget)
		}
	}
	want := retry.BudgetStats{Capacity: 2, Taken: 2, Denied: 3}
	if got := b.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestBudget_Admit(t *testing.T) {
	clock := newFakeClock()
	b := mustBudget(t, 2, 10, clock)
	retryIn := func(d time.Duration) retry.Decision { return retry.Decision{Retry: true, Delay: d} }

	giveUp := retry.Decision{Reason: retry.ReasonMaxAttempts}
	if got := b.Admit(giveUp, retry.WhenEmptyWait); got != giveUp {
		t.Errorf("Admit(give up) = %+v, want it unchanged", got)
	}
	if got := b.Stats().Tokens; got != 2 {
		t.Errorf("a give-up took a token: Tokens = %v", got)
	}

	// Tokens there: unchanged.
	for range 2 {
		if got := b.Admit(retryIn(time.Second), retry.WhenEmptyDeadLetter); got != retryIn(time.Second) {
			t.Errorf("Admit with tokens = %+v, want the retry unchanged", got)
		}
	}
	// Empty, dead letter.
	if got := b.Admit(retryIn(time.Second), retry.WhenEmptyDeadLetter); got != (retry.Decision{Reason: retry.ReasonBudget}) {
		t.Errorf("Admit(WhenEmptyDeadLetter) on an empty budget = %+v, want give up with %q", got, retry.ReasonBudget)
	}
	// Empty, wait: reservations queue one token interval apart, and a
	// retry that already waits longer keeps its delay.
	tests := []struct{ delay, want time.Duration }{
		{0, 100 * ms},
		{50 * ms, 200 * ms},
		{time.Second, time.Second},
		{0, 400 * ms},
	}
	for _, tt := range tests {
		if got := b.Admit(retryIn(tt.delay), retry.WhenEmptyWait); got != retryIn(tt.want) {
			t.Errorf("Admit(retry in %v, wait) = %+v, want retry in %v", tt.delay, got, tt.want)
		}
	}
	if got := b.Stats().Tokens; got != -4 {
		t.Errorf("Stats().Tokens with 4 reservations = %v, want -4", got)
	}
	if b.Take() {
		t.Error("Take while in debt = true")
	}
	if got := b.NextToken(); got != 500*ms {
		t.Errorf("NextToken() with 4 reservations = %v, want 500ms", got)
	}
	clock.Advance(500 * ms)
	if got := b.Admit(retryIn(0), retry.WhenEmptyWait); got != retryIn(0) {
		t.Errorf("Admit after the debt is paid = %+v, want retry now", got)
	}
	// An unknown policy behaves as WhenEmptyWait.
	if got := b.Admit(retryIn(0), retry.BudgetPolicy(9)); got != retryIn(100*ms) {
		t.Errorf("Admit(unknown policy) = %+v, want a wait of 100ms", got)
	}

	want := retry.BudgetStats{Capacity: 2, RefillPerSecond: 10, Tokens: -1, Taken: 3, Waited: 5, Denied: 2}
	if got := b.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestBudget_nil(t *testing.T) {
	var b *retry.Budget
	d := retry.Decision{Retry: true, Delay: time.Second}
	if !b.Take() || b.Admit(d, retry.WhenEmptyDeadLetter) != d || b.NextToken() != 0 || b.Stats() != (retry.BudgetStats{}) {
		t.Error("a nil *Budget is not an unlimited budget")
	}
}

// A clock that jumps backwards grants nothing extra and never panics.
func TestBudget_clockBackwards(t *testing.T) {
	clock := newFakeClock()
	b := mustBudget(t, 1, 1, clock)
	b.Take()
	clock.Advance(-100 * 365 * 24 * time.Hour)
	if b.Take() {
		t.Error("Take after the clock went back = true")
	}
	_ = b.NextToken()
	_ = b.Admit(retry.Decision{Retry: true}, retry.WhenEmptyWait)
	clock.Advance(200 * 365 * 24 * time.Hour)
	if !b.Take() {
		t.Error("Take a century later = false")
	}
}

// The System clock is faked inside a bubble, so a budget built with a nil
// clock refills on synctest time.
func TestBudget_systemClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBudget(t, 1, 1, nil)
		if !b.Take() || b.Take() {
			t.Fatal("a budget of 1 did not grant exactly one token")
		}
		time.Sleep(b.NextToken())
		if !b.Take() {
			t.Error("Take after sleeping NextToken() = false")
		}
	})
}

// A retry storm against a shared budget, in fake time: many events fail
// for a minute, each runs a retry loop that asks Next and then the budget.
// Retries start no faster than capacity + rate × elapsed; with
// WhenEmptyWait every event still succeeds, with WhenEmptyDeadLetter the
// ones refused go to the dead letters with ReasonBudget.
func TestBudget_storm(t *testing.T) {
	const (
		events   = 200
		capacity = 10
		rate     = 5
		outage   = time.Minute
	)
	p := retry.Policy{InitialInterval: 100 * ms, MaxInterval: 5 * time.Second, MaxAttempts: -1, Jitter: retry.NoJitter}
	for _, when := range []retry.BudgetPolicy{retry.WhenEmptyWait, retry.WhenEmptyDeadLetter} {
		t.Run("when="+when.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := mustBudget(t, capacity, rate, nil)
				start := time.Now()
				var (
					mu       sync.Mutex
					retries  []time.Duration // start times of retries, relative to start
					outcomes = map[string]int{}
					wg       sync.WaitGroup
				)
				for range events {
					wg.Go(func() {
						first := time.Now()
						reason := "done"
						for attempt := 1; ; attempt++ {
							if attempt > 1 {
								mu.Lock()
								retries = append(retries, time.Since(start))
								mu.Unlock()
							}
							if time.Since(start) >= outage {
								break
							}
							d := b.Admit(p.Next(attempt, first, time.Now(), errTransient, nil), when)
							if !d.Retry {
								reason = d.Reason
								break
							}
							time.Sleep(d.Delay)
						}
						mu.Lock()
						outcomes[reason]++
						mu.Unlock()
					})
				}
				wg.Wait()

				for i, at := range retries {
					// retries[i] started after i+1 tokens were granted.
					if limit := capacity + int(at/(time.Second/rate)); i+1 > limit {
						t.Fatalf("retry %d started at %v: more than %d tokens by then", i+1, at, limit)
					}
				}
				s := b.Stats()
				if int(s.Taken+s.Waited) != len(retries) {
					t.Errorf("Stats() = %+v, want Taken+Waited = %d retries", s, len(retries))
				}
				t.Logf("%v: %d retries, outcomes %v, stats %+v", when, len(retries), outcomes, s)
				switch when {
				case retry.WhenEmptyWait:
					if outcomes["done"] != events || s.Denied != 0 {
						t.Errorf("outcomes = %v, denied %d; want all %d done", outcomes, s.Denied, events)
					}
				case retry.WhenEmptyDeadLetter:
					if outcomes[retry.ReasonBudget] == 0 || outcomes[retry.ReasonBudget] != int(s.Denied) ||
						outcomes["done"]+outcomes[retry.ReasonBudget] != events {
						t.Errorf("outcomes = %v, denied %d; want the refused dead-lettered", outcomes, s.Denied)
					}
				}
			})
		})
	}
}
