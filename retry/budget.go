package retry

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// BudgetPolicy says what happens to a retry when the budget is empty.
type BudgetPolicy uint8

const (
	// WhenEmptyWait, the zero value, admits the retry on credit of the next
	// free token: Admit lengthens its delay until that token is due, so
	// waiting retries are served one per token at the refill rate, in the
	// order they asked. A budget that never refills cannot lend, and
	// dead-letters instead.
	WhenEmptyWait BudgetPolicy = iota
	// WhenEmptyDeadLetter gives the retry up with ReasonBudget.
	WhenEmptyDeadLetter
)

// String returns "wait", "dead_letter", or "budget_policy(N)".
func (w BudgetPolicy) String() string {
	switch w {
	case WhenEmptyWait:
		return "wait"
	case WhenEmptyDeadLetter:
		return "dead_letter"
	default:
		return fmt.Sprintf("budget_policy(%d)", uint8(w))
	}
}

// Bounds that keep every computation of a Budget inside int64 nanoseconds.
const (
	// maxSpan bounds clock readings relative to the budget's creation, a
	// full refill (capacity × interval), and the debt of WhenEmptyWait
	// reservations: 2^61ns, about 73 years.
	maxSpan = 1 << 61
	// never is what NextToken returns for an empty budget that never
	// refills.
	never = time.Duration(math.MaxInt64)
)

// Budget is a token bucket of retries shared by all the shards of a
// pipeline, so that a failing dependency meets a bounded retry rate instead
// of a retry storm. It starts full; each retry takes a token; tokens come
// back at a fixed rate up to the capacity. First attempts take no token.
//
// A Budget is safe for concurrent use and lock-free: each operation reads
// the clock once and updates one atomic word (a compare-and-swap loop, in
// the style of the generic cell rate algorithm). It is exact: the tokens
// due by any time t (those granted at once, and those reserved by Admit
// for a time up to t) never exceed capacity + refill rate × (t - creation).
// When the interval between tokens is not a whole number of nanoseconds,
// it is rounded up: tokens come slightly late, never early. A nil *Budget
// is an unlimited budget: Take and Admit always admit.
//
// A Budget never sleeps and starts no goroutine: NextToken and Admit say how
// long to wait, and the caller schedules.
type Budget struct {
	clock    Clock
	base     time.Time // clock reading at NewBudget; times are kept as ns since base
	capacity int64
	refill   float64 // tokens per second, as given
	interval int64   // ns per token, rounded up; 0 when refill is 0
	full     int64   // capacity × interval: the time to refill from empty

	// empty, for a refilling budget, is the time (ns since base) at which
	// the bucket held, or will hold, zero tokens, assuming unbounded refill
	// since: tokens(now) = min(capacity, (now-empty)/interval). Taking a
	// token moves it one interval later; while WhenEmptyWait reservations
	// are outstanding it is ahead of now, by their debt.
	empty atomic.Int64
	// left is the tokens left in a budget that does not refill.
	left atomic.Int64

	taken, waited, denied atomic.Uint64
}

// NewBudget returns a full budget of capacity tokens that refills at
// refillPerSecond tokens per second (fractions allowed: 0.5 is one token
// every 2s; 0 means never, so capacity is the total number of retries).
// clock is read on every operation; nil means System().
//
// It returns an error when capacity is below 1, refillPerSecond is negative
// or not finite, or a full refill would take more than 73 years.
func NewBudget(capacity int, refillPerSecond float64, clock Clock) (*Budget, error) {
	if capacity < 1 {
		return nil, fmt.Errorf("retry: NewBudget capacity is %d: must be at least 1", capacity)
	}
	if math.IsNaN(refillPerSecond) || math.IsInf(refillPerSecond, 0) || refillPerSecond < 0 {
		return nil, fmt.Errorf("retry: NewBudget refillPerSecond is %v: must be a finite number >= 0", refillPerSecond)
	}
	if clock == nil {
		clock = System()
	}
	b := &Budget{clock: clock, capacity: int64(capacity), refill: refillPerSecond}
	if refillPerSecond > 0 {
		// Round the interval up, so rounding never grants a token early.
		ival := max(math.Ceil(float64(time.Second)/refillPerSecond), 1)
		if ival*float64(capacity) > maxSpan {
			return nil, fmt.Errorf("retry: NewBudget refillPerSecond %v with capacity %d: a full refill must take less than 73 years", refillPerSecond, capacity)
		}
		b.interval = int64(ival)
		b.full = b.interval * b.capacity
		b.empty.Store(-b.full)
	} else {
		b.left.Store(b.capacity)
	}
	b.base = clock.Now()
	return b, nil
}

// now reads the clock, in ns since base, clamped to ±maxSpan.
func (b *Budget) now() int64 {
	return min(max(int64(b.clock.Now().Sub(b.base)), -maxSpan), maxSpan)
}

// take takes a token if one is there at now; otherwise it reports how long
// until one is (never for a budget that does not refill).
func (b *Budget) take(now int64) (ok bool, wait time.Duration) {
	if b.interval == 0 {
		for {
			l := b.left.Load()
			if l <= 0 {
				return false, never
			}
			if b.left.CompareAndSwap(l, l-1) {
				return true, 0
			}
		}
	}
	for {
		e := b.empty.Load()
		// A bucket cannot hold more than capacity: refill stops at full.
		next := max(e, now-b.full) + b.interval
		if next > now {
			return false, time.Duration(next - now)
		}
		if b.empty.CompareAndSwap(e, next) {
			return true, 0
		}
	}
}

// reserve takes the next token, now or on credit, and returns how long
// until it is due. It fails only for a budget that does not refill and is
// empty, or when the debt would exceed maxSpan.
func (b *Budget) reserve(now int64) (ok bool, wait time.Duration) {
	if b.interval == 0 {
		return b.take(now)
	}
	for {
		e := b.empty.Load()
		next := max(e, now-b.full) + b.interval
		w := max(next-now, 0)
		if w > maxSpan {
			return false, never
		}
		if b.empty.CompareAndSwap(e, next) {
			return true, time.Duration(w)
		}
	}
}

// Take takes one retry token and reports whether there was one. It never
// blocks.
func (b *Budget) Take() bool {
	if b == nil {
		return true
	}
	ok, _ := b.take(b.now())
	if ok {
		b.taken.Add(1)
	} else {
		b.denied.Add(1)
	}
	return ok
}

// NextToken returns how long until a token is available: 0 when one is
// now, and time.Duration(math.MaxInt64) when the budget is empty and does
// not refill. It takes nothing, so a concurrent Take may win the token.
func (b *Budget) NextToken() time.Duration {
	if b == nil {
		return 0
	}
	now := b.now()
	if b.interval == 0 {
		if b.left.Load() > 0 {
			return 0
		}
		return never
	}
	next := max(b.empty.Load(), now-b.full) + b.interval
	return time.Duration(max(next-now, 0))
}

// Admit applies the budget to d, a Decision from Policy.Next, and returns
// the decision to carry out. A decision that does not retry is returned
// unchanged and takes no token. A retry takes a token when there is one and
// is returned unchanged. When the budget is empty:
//
//   - under WhenEmptyDeadLetter, Admit returns a give-up with ReasonBudget;
//   - under WhenEmptyWait (and any unknown BudgetPolicy), it reserves the
//     next token and returns the retry with its Delay raised to when that
//     token is due, if later. A budget that does not refill gives up with
//     ReasonBudget instead.
//
// Delays count from now on the budget's clock, which should be the clock
// whose times the caller passes to Next. A reservation is not returned if the caller drops the retry: the budget
// is then poorer by one token until it refills. The wait may carry the retry
// past Policy.MaxElapsed; Next enforces MaxElapsed again when that attempt
// fails.
func (b *Budget) Admit(d Decision, when BudgetPolicy) Decision {
	if b == nil || !d.Retry {
		return d
	}
	now := b.now()
	if when == WhenEmptyDeadLetter {
		if ok, _ := b.take(now); ok {
			b.taken.Add(1)
			return d
		}
	} else if ok, wait := b.reserve(now); ok {
		if wait == 0 {
			b.taken.Add(1)
		} else {
			b.waited.Add(1)
			d.Delay = max(d.Delay, wait)
		}
		return d
	}
	b.denied.Add(1)
	return Decision{Reason: ReasonBudget}
}

// BudgetStats is a snapshot of a Budget. Each field is read atomically, the
// set is not: under concurrent use the counters may be a few operations
// apart.
type BudgetStats struct {
	// Capacity and RefillPerSecond are as given to NewBudget.
	Capacity        int
	RefillPerSecond float64
	// Tokens is the number of tokens now, fractions included (0.5: half
	// way to the next token). It is negative while WhenEmptyWait
	// reservations are outstanding: -2 means two reserved tokens are not
	// yet due.
	Tokens float64
	// Taken counts tokens granted at once, by Take or Admit.
	Taken uint64
	// Waited counts retries that Admit admitted on credit of a future
	// token (WhenEmptyWait on an empty budget).
	Waited uint64
	// Denied counts Take calls that returned false and retries that Admit
	// gave up with ReasonBudget.
	Denied uint64
}

// Stats returns the budget's state and counters. A nil *Budget returns
// zero stats.
func (b *Budget) Stats() BudgetStats {
	if b == nil {
		return BudgetStats{}
	}
	s := BudgetStats{
		Capacity:        int(b.capacity),
		RefillPerSecond: b.refill,
		Taken:           b.taken.Load(),
		Waited:          b.waited.Load(),
		Denied:          b.denied.Load(),
	}
	if b.interval == 0 {
		s.Tokens = float64(b.left.Load())
	} else {
		now := b.now()
		s.Tokens = min(float64(now-b.empty.Load())/float64(b.interval), float64(b.capacity))
	}
	return s
}
