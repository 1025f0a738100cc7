package retry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/onceflow/onceflow/retry"
)

// BenchmarkNext measures one decision after a failure, with the baseline of
// the bare backoff cap in the same run. It must not allocate.
func BenchmarkNext(b *testing.B) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	err := errors.Join(errTransient, errors.New("wrapped"))
	rnd := newRand(1)
	b.Run("baseline=Backoff", func(b *testing.B) {
		p := retry.Policy{MaxAttempts: -1}
		b.ReportAllocs()
		attempt := 0
		for b.Loop() {
			attempt = attempt%40 + 1
			_ = p.Backoff(attempt)
		}
	})
	for _, j := range []retry.Jitter{retry.NoJitter, retry.FullJitter} {
		b.Run("jitter="+j.String(), func(b *testing.B) {
			p := retry.Policy{MaxAttempts: -1, MaxElapsed: time.Hour, Jitter: j}
			b.ReportAllocs()
			attempt := 0
			for b.Loop() {
				attempt = attempt%40 + 1
				if d := p.Next(attempt, t0, t0, err, rnd); !d.Retry {
					b.Fatal(d)
				}
			}
		})
	}
}

// BenchmarkBudget_Take measures a token taken from a budget shared by all
// goroutines (vary them with -cpu), against an uncontended baseline.
func BenchmarkBudget_Take(b *testing.B) {
	for _, shared := range []bool{false, true} {
		name := "goroutines=1"
		if shared {
			name = "goroutines=GOMAXPROCS"
		}
		b.Run(name, func(b *testing.B) {
			budget, err := retry.NewBudget(1<<20, 1e9, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			if !shared {
				for b.Loop() {
					budget.Take()
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					budget.Take()
				}
			})
		})
	}
}
