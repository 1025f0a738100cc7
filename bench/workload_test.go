package bench

import (
	"flag"
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	onceflow "github.com/onceflow/onceflow"
)

// seedFlag seeds every workload; each benchmark and test that generates
// one logs its spec, seed included. Override with go test ... -args -seed=N.
var seedFlag = flag.Uint64("seed", 20260101, "seed of the benchmark workloads")

// The compare workload of issue 7: 200k deliveries over 1,000 keys, 10 %
// of them duplicates repeating one of the last 1,024 deliveries, each a
// CloudEvents JSON event with a 64-byte JSON data member.
const (
	compareEvents  = 200_000
	compareKeys    = 1_000
	compareDup     = 0.1
	defaultPayload = 64
	recentWindow   = 1024
	// chunk is how many events a producer hands over at once: SubmitBatch
	// size, Watermill Publish size, and the baseline's batch.
	chunk = 64
)

// spec describes a workload. Either Events (deliveries) or Unique (distinct
// identities, for the window sweep) is set.
type spec struct {
	Events  int
	Unique  int
	Keys    int
	Dup     float64
	Payload int // bytes of the JSON data member
	Seed    uint64
}

func (s spec) String() string {
	return fmt.Sprintf("events=%d unique=%d keys=%d dup=%g payload=%dB recent=%d seed=%d",
		s.Events, s.Unique, s.Keys, s.Dup, s.Payload, recentWindow, s.Seed)
}

func compareSpec(dup float64) spec {
	return spec{Events: compareEvents, Keys: compareKeys, Dup: dup, Payload: defaultPayload, Seed: *seedFlag}
}

// gen generates a workload one delivery at a time, deterministically from
// its seed. A new event gets an id made of 16 random hex digits (so that
// identities arrive in random key order, as UUIDs do) and 8 hex digits of
// its unique index (so that a handler can find its slot in a checker
// without a map); a duplicate is a fresh copy (a new *Event sharing the
// bytes) of one of the last recentWindow deliveries.
type gen struct {
	s      spec
	rng    *rand.Rand
	keys   []string
	pad    string
	recent []*onceflow.Event
	n      int      // deliveries so far
	copies []uint32 // deliveries per unique index
}

const source = "/bench/orders"

func newGen(s spec) *gen {
	g := &gen{s: s, rng: rand.New(rand.NewPCG(s.Seed, 0x6f6e6365666c6f77)), recent: make([]*onceflow.Event, 0, recentWindow)}
	g.keys = make([]string, s.Keys)
	for i := range g.keys {
		g.keys[i] = "k" + strconv.Itoa(i)
	}
	capHint := s.Events
	if s.Unique > 0 {
		capHint = s.Unique
	}
	g.copies = make([]uint32, 0, capHint)
	return g
}

// done reports whether the workload is complete.
func (g *gen) done() bool {
	if g.s.Unique > 0 {
		return len(g.copies) >= g.s.Unique
	}
	return g.n >= g.s.Events
}

// next returns the next delivery.
func (g *gen) next() *onceflow.Event {
	var ev *onceflow.Event
	if len(g.recent) > 0 && g.rng.Float64() < g.s.Dup {
		orig := g.recent[g.rng.IntN(len(g.recent))]
		cp := *orig
		ev = &cp
		g.copies[indexOf(ev)]++
	} else {
		ev = g.newEvent(len(g.copies))
		g.copies = append(g.copies, 1)
	}
	if len(g.recent) < recentWindow {
		g.recent = append(g.recent, ev)
	} else {
		g.recent[g.n%recentWindow] = ev
	}
	g.n++
	return ev
}

const hexDigits = "0123456789abcdef"

func (g *gen) newEvent(idx int) *onceflow.Event {
	var idb [25]byte
	r := g.rng.Uint64()
	for i := 15; i >= 0; i-- {
		idb[i] = hexDigits[r&15]
		r >>= 4
	}
	idb[16] = '-'
	for i, x := 24, uint32(idx); i >= 17; i-- {
		idb[i] = hexDigits[x&15]
		x >>= 4
	}
	id := string(idb[:])
	key := g.keys[g.rng.IntN(len(g.keys))]
	amount := g.rng.IntN(100000)

	raw := make([]byte, 0, 192+g.s.Payload)
	raw = append(raw, `{"specversion":"1.0","id":"`...)
	raw = append(raw, id...)
	raw = append(raw, `","source":"`+source+`","type":"com.example.order.created","partitionkey":"`...)
	raw = append(raw, key...)
	raw = append(raw, `","datacontenttype":"application/json","data":`...)
	dataStart := len(raw)
	raw = append(raw, `{"amount":`...)
	raw = strconv.AppendInt(raw, int64(amount), 10)
	raw = append(raw, `,"note":"`...)
	// pad the data member to Payload bytes: `{"amount":N,"note":"…"}`
	if pad := g.s.Payload - (len(raw) - dataStart) - 2; pad > 0 {
		if len(g.pad) < pad {
			g.pad = strings.Repeat("x", pad)
		}
		raw = append(raw, g.pad[:pad]...)
	}
	raw = append(raw, `"}`...)
	data := raw[dataStart:len(raw):len(raw)]
	raw = append(raw, '}')
	return &onceflow.Event{
		SpecVersion:     "1.0",
		ID:              id,
		Source:          source,
		Type:            "com.example.order.created",
		DataContentType: "application/json",
		PartitionKey:    key,
		Data:            data,
		Raw:             raw,
	}
}

// indexOf returns the unique index encoded in the last 8 hex digits of an
// event id made by gen. Every implementation's handler calls it, so its
// cost (a few ns) is the same everywhere.
func indexOf(ev *onceflow.Event) int { return indexOfID(ev.ID) }

func indexOfID(id string) int {
	x := 0
	for i := len(id) - 8; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9':
			x = x<<4 | int(c-'0')
		default:
			x = x<<4 | int(c-'a'+10)
		}
	}
	return x
}

// workload is a fully generated workload, built outside the timed loop.
type workload struct {
	spec   spec
	events []*onceflow.Event
	copies []uint32 // deliveries per unique index
}

// getWorkload generates the workload of s, outside any timer.
func getWorkload(tb testing.TB, s spec) *workload {
	g := newGen(s)
	w := &workload{spec: s, events: make([]*onceflow.Event, 0, s.Events)}
	for !g.done() {
		w.events = append(w.events, g.next())
	}
	w.copies = g.copies
	tb.Logf("workload: %v → %d unique identities, %d duplicates", s, len(w.copies), len(w.events)-len(w.copies))
	return w
}

// lazyWorkload returns a func that generates the workload of s on its
// first call, so that benchmarks filtered out by -bench generate nothing,
// and the sub-benchmarks of one group share one workload.
func lazyWorkload(tb testing.TB, s spec) func() *workload {
	return sync.OnceValue(func() *workload { return getWorkload(tb, s) })
}

func (w *workload) unique() int { return len(w.copies) }

// feed yields w's events in chunks of chunk events. The chunks alias
// w.events: consumers copy what they keep.
func (w *workload) feed() iter.Seq[[]*onceflow.Event] {
	return func(yield func([]*onceflow.Event) bool) {
		for i := 0; i < len(w.events); i += chunk {
			if !yield(w.events[i:min(i+chunk, len(w.events))]) {
				return
			}
		}
	}
}

// checker records how many times each unique event was handled. Handlers
// call handle from any goroutine.
type checker struct {
	counts []atomic.Uint32
}

func newChecker(unique int) *checker { return &checker{counts: make([]atomic.Uint32, unique)} }

func (c *checker) reset(unique int) {
	if cap(c.counts) < unique {
		c.counts = make([]atomic.Uint32, unique)
		return
	}
	c.counts = c.counts[:unique]
	for i := range c.counts {
		c.counts[i].Store(0)
	}
}

func (c *checker) handle(ev *onceflow.Event) { c.counts[indexOf(ev)].Add(1) }

func (c *checker) handleID(id string) { c.counts[indexOfID(id)].Add(1) }

// tally is what a run did to the unique events.
type tally struct {
	expected int // distinct events in the workload
	unique   int // distinct events handled at least once
	lost     int // distinct events never handled
	extra    int // handler runs beyond the expected ones (double handling)
	short    int // distinct events handled fewer times than expected (everyDelivery only)
	handled  int // handler runs in all
}

// expect says how many handler runs each unique event should get.
type expect int

const (
	// exactlyOnce: the implementation deduplicates.
	exactlyOnce expect = iota
	// everyDelivery: the implementation does not deduplicate (the
	// watermill-router reference): each delivery runs the handler.
	everyDelivery
)

func (c *checker) tally(copies []uint32, e expect) tally {
	t := tally{expected: len(copies)}
	for i := range copies {
		got := int(c.counts[i].Load())
		want := 1
		if e == everyDelivery {
			want = int(copies[i])
		}
		t.handled += got
		if got == 0 {
			t.lost++
		} else {
			t.unique++
		}
		if got > want {
			t.extra += got - want
		}
		if got > 0 && got < want {
			t.short++
		}
	}
	return t
}

// verify fails tb unless every unique event was handled as expected.
func (t tally) verify(tb testing.TB, name string) {
	tb.Helper()
	if t.lost != 0 || t.extra != 0 || t.short != 0 {
		tb.Fatalf("%s: handled %d of %d unique events: %d lost, %d extra handler runs (double handling), %d handled too few times",
			name, t.unique, t.expected, t.lost, t.extra, t.short)
	}
}
