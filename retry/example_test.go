package retry_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/onceflow/onceflow/retry"
)

// A shard worker asks Next after each failure and schedules the next
// attempt itself; here the attempts take no time.
func ExamplePolicy_Next() {
	p := retry.Policy{
		InitialInterval: 100 * time.Millisecond,
		MaxInterval:     time.Second,
		MaxAttempts:     6,
		Jitter:          retry.NoJitter,
	}
	first := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	now := first
	for attempt := 1; ; attempt++ {
		err := errors.New("connection refused") // the handler failed
		d := p.Next(attempt, first, now, err, nil)
		if !d.Retry {
			fmt.Printf("attempt %d failed at +%v: dead letter, reason %s\n", attempt, now.Sub(first), d.Reason)
			break
		}
		fmt.Printf("attempt %d failed at +%v: retry in %v\n", attempt, now.Sub(first), d.Delay)
		now = now.Add(d.Delay)
	}
	// Output:
	// attempt 1 failed at +0s: retry in 100ms
	// attempt 2 failed at +100ms: retry in 200ms
	// attempt 3 failed at +300ms: retry in 400ms
	// attempt 4 failed at +700ms: retry in 800ms
	// attempt 5 failed at +1.5s: retry in 1s
	// attempt 6 failed at +2.5s: dead letter, reason max_attempts
}

// With full jitter each delay is drawn from [0, Backoff(attempt)]; the same
// seed gives the same delays.
func ExamplePolicy_Schedule() {
	p := retry.Policy{MaxAttempts: 6}
	fmt.Println(retry.Policy{MaxAttempts: 6, Jitter: retry.NoJitter}.Schedule(10, nil))
	a := p.Schedule(10, rand.New(rand.NewPCG(1, 2)))
	b := p.Schedule(10, rand.New(rand.NewPCG(1, 2)))
	fmt.Println(len(a), fmt.Sprint(a) == fmt.Sprint(b))
	// Output:
	// [100ms 200ms 400ms 800ms 1.6s]
	// 5 true
}

// A handler marks an error that retrying cannot fix; the event goes to the
// dead letters after one attempt, and the cause stays visible.
func ExamplePermanent() {
	errBadAmount := errors.New("amount is negative")
	handle := func() error {
		return retry.Permanent(fmt.Errorf("order 42: %w", errBadAmount))
	}

	err := handle()
	t0 := time.Now()
	d := retry.Policy{}.Next(1, t0, t0, err, nil)
	fmt.Println(err)
	fmt.Println(retry.IsPermanent(err), errors.Is(err, errBadAmount))
	fmt.Println(retry.DefaultClassify(err), d.Retry, d.Reason)
	// Output:
	// order 42: amount is negative
	// true true
	// permanent false permanent
}

// Call turns a handler panic into a *PanicError: dead-lettered, never
// retried, with the stack kept for the log but out of the message.
func ExampleCall() {
	err := retry.Call(func() error {
		var handlers map[string]func() error
		return handlers["missing"]() // nil func call
	})
	var pe *retry.PanicError
	fmt.Println(errors.As(err, &pe), len(pe.Stack) > 0)
	fmt.Println(err)
	fmt.Println(retry.DefaultClassify(err))
	// Output:
	// true true
	// retry: handler panic: "runtime error: invalid memory address or nil pointer dereference"
	// panic
}

// A budget shared by the shards turns a retry storm into a steady trickle:
// when it is empty, retries wait for their token (or go to the dead letters
// under WhenEmptyDeadLetter).
func ExampleBudget_Admit() {
	clock := fixedClock{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	b, err := retry.NewBudget(2, 10, clock) // 2 retries at once, then 10 per second
	if err != nil {
		fmt.Println(err)
		return
	}
	d := retry.Decision{Retry: true, Delay: 50 * time.Millisecond} // from Policy.Next
	for range 4 {
		fmt.Printf("%+v\n", b.Admit(d, retry.WhenEmptyWait))
	}
	fmt.Printf("%+v\n", b.Admit(d, retry.WhenEmptyDeadLetter))
	fmt.Printf("%+v\n", b.Stats())
	// Output:
	// {Retry:true Delay:50ms Reason:}
	// {Retry:true Delay:50ms Reason:}
	// {Retry:true Delay:100ms Reason:}
	// {Retry:true Delay:200ms Reason:}
	// {Retry:false Delay:0s Reason:budget_exhausted}
	// {Capacity:2 RefillPerSecond:10 Tokens:-2 Taken:2 Waited:2 Denied:1}
}

// fixedClock is a Clock that stands still.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }
