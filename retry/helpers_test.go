package retry_test

import (
	"flag"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onceflow/onceflow/retry"
)

var seedFlag = flag.Uint64("seed", 0, "seed of the randomized tests; 0 picks one from the time")

// seed returns the seed of a randomized test and logs it, so that a failure
// can be replayed with -seed.
func seed(t testing.TB) uint64 {
	t.Helper()
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed=%d)", s, s)
	return s
}

func newRand(s uint64) *rand.Rand { return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)) }

// fakeClock is a Clock that moves only when told; safe for concurrent use.
type fakeClock struct {
	base time.Time
	ns   atomic.Int64
}

var _ retry.Clock = (*fakeClock)(nil)

func newFakeClock() *fakeClock {
	return &fakeClock{base: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time          { return c.base.Add(time.Duration(c.ns.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *fakeClock) Elapsed() time.Duration  { return time.Duration(c.ns.Load()) }

// loop is the smallest retry loop a caller of Next writes: run fn, ask Next,
// sleep, again. It returns the number of attempts and the last decision
// (zero when fn succeeded). Time is the time package's, so inside a
// testing/synctest bubble hours pass in microseconds.
func loop(p retry.Policy, rnd retry.Rand, fn func() error) (attempts int, last retry.Decision) {
	first := time.Now()
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return attempt, retry.Decision{}
		}
		d := p.Next(attempt, first, time.Now(), err, rnd)
		if !d.Retry {
			return attempt, d
		}
		time.Sleep(d.Delay)
	}
}
