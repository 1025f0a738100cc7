package proptest

import (
	"fmt"
	"math/rand"
	"slices"
	"strconv"
	"strings"

	"github.com/leanovate/gopter"
	"github.com/onceflow/onceflow/pipeline"
)

// Stream is one generated scenario: the events, the order in which their
// copies are delivered, what goes wrong while they are handled, and the
// shape of the pipeline. A Stream is plain data: print it, edit it, and
// replay it with [CheckStream].
type Stream struct {
	// Events are the distinct events: event n has the identity
	// (source "proptest", id "e<n>") and the partition key "k<Key>".
	Events []EventSpec
	// Deliveries lists event numbers in delivery order; an event delivered
	// more than once is duplicated. Every event is delivered at least once.
	Deliveries []int
	// Crashes, ordered by At, end the pipeline's life before delivery At;
	// the next life replays every delivery not acknowledged.
	Crashes []Crash
	// Shards is the pipeline's shard count.
	Shards int
}

// EventSpec is one distinct event of a Stream.
type EventSpec struct {
	Key   int
	Fault Fault
	// Fails is how many attempts a transient fault fails (1 or 2).
	Fails int
}

// Fault is what goes wrong when an event is handled. proptest injects it
// by wrapping the handler under test.
type Fault uint8

const (
	// NoFault: the handler runs as it is.
	NoFault Fault = iota
	// FailBefore: the first Fails attempts fail before the handler runs
	// (a transient error: the pipeline retries).
	FailBefore
	// FailAfter: the first Fails attempts run the handler, then fail (its
	// transactional effects are discarded; whatever it did outside the
	// transaction is done). The pipeline retries.
	FailAfter
	// Permanent: every attempt fails before the handler runs with a
	// permanent error: the event is dead-lettered.
	Permanent
)

func (f Fault) String() string {
	switch f {
	case FailBefore:
		return "fail-before"
	case FailAfter:
		return "fail-after"
	case Permanent:
		return "permanent"
	default:
		return "none"
	}
}

// CrashKind is how a pipeline's life ends.
type CrashKind uint8

const (
	// Restart: a graceful Shutdown, then a new pipeline on the same store.
	Restart CrashKind = iota
	// Cancel: Run's context is cancelled at the Hit-th time the pipeline
	// reaches the crash point Point (see pipeline.Hooks); work not
	// committed is abandoned and negatively acknowledged.
	Cancel
	// CommitFailsBefore: the Hit-th commit of the life fails without
	// writing anything; the pipeline stops with a fatal error.
	CommitFailsBefore
	// CommitFailsAfter: the Hit-th commit of the life is written, then
	// reported failed (durable but not acknowledged); the pipeline stops
	// with a fatal error.
	CommitFailsAfter
)

func (k CrashKind) String() string {
	switch k {
	case Cancel:
		return "cancel"
	case CommitFailsBefore:
		return "commit-fails-before"
	case CommitFailsAfter:
		return "commit-fails-after"
	default:
		return "restart"
	}
}

// Crash ends a life of the pipeline.
type Crash struct {
	At    int // before delivery At
	Kind  CrashKind
	Point string // Cancel only: a pipeline crash point
	Hit   int    // Cancel: the hit of Point; CommitFails*: the commit
}

func (c Crash) String() string {
	switch c.Kind {
	case Cancel:
		return fmt.Sprintf("cancel at %s#%d", c.Point, c.Hit)
	case CommitFailsBefore, CommitFailsAfter:
		return fmt.Sprintf("%s #%d", c.Kind, c.Hit)
	default:
		return "restart"
	}
}

// crashPoints returns the pipeline points a Cancel crash may pick.
func crashPoints() []string {
	return []string{pipeline.PointBeforeClaim, pipeline.PointAfterHandler, pipeline.PointBeforeCommit,
		pipeline.PointAfterCommit, pipeline.PointMidAck}
}

// Profile shapes the streams [Streams] generates. Rates are shares in
// [0, 1] (Duplicates below 1, Transient + Permanent at most 1); a zero
// field means none of it. [DefaultProfile] is what Check uses unless told
// otherwise; WithProfile refuses a profile outside these bounds.
type Profile struct {
	// Keys is the number of partition keys (at least 1).
	Keys int
	// KeySkew is the share of events put on key 0, the hot key; the rest
	// spread evenly over all keys.
	KeySkew float64
	// Duplicates is the share of deliveries that are copies of an earlier
	// event; copies come in bursts of 1 to MaxBurst.
	Duplicates float64
	MaxBurst   int
	// LocalReorder is the share of deliveries swapped with one at most
	// Window places later; GlobalReorder the share swapped with any other.
	LocalReorder  float64
	Window        int
	GlobalReorder float64
	// Transient and Permanent are the shares of events with a transient
	// fault (FailBefore or FailAfter) or a permanent one.
	Transient, Permanent float64
	// Crashes is the expected number of crashes per 100 deliveries; each
	// is a Restart, a Cancel at a random crash point, or a failing commit.
	Crashes float64
	// MaxShards bounds the generated shard count (at least 1).
	MaxShards int
}

// DefaultProfile returns the profile Check uses by default: 4 keys, 40%
// of the events on the hot key, 25% duplicates in bursts of up to 3, 20%
// local reordering within 8 places and 5% global, 10% transient and 5%
// permanent faults, 4 crashes per 100 deliveries, 1 to 4 shards.
func DefaultProfile() Profile {
	return Profile{Keys: 4, KeySkew: 0.4, Duplicates: 0.25, MaxBurst: 3, LocalReorder: 0.2, Window: 8,
		GlobalReorder: 0.05, Transient: 0.1, Permanent: 0.05, Crashes: 4, MaxShards: 4}
}

// Streams returns a generator of streams shaped by p, of up to the
// generator size in distinct events, with a shrinker that makes a failing
// stream smaller: fewer crashes, fewer deliveries, no faults, fewer keys,
// one shard.
func Streams(p Profile) gopter.Gen {
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		s := generate(p, gp.Rng, max(gp.MaxSize, 1))
		return gopter.NewGenResult(s, shrinkStream)
	}
}

func generate(p Profile, rnd *rand.Rand, size int) *Stream {
	keys := max(p.Keys, 1)
	s := &Stream{Shards: 1 + rnd.Intn(max(p.MaxShards, 1))}
	n := 1 + rnd.Intn(size)
	s.Events = make([]EventSpec, n)
	for i := range s.Events {
		e := &s.Events[i]
		if rnd.Float64() < p.KeySkew {
			e.Key = 0
		} else {
			e.Key = rnd.Intn(keys)
		}
		switch f := rnd.Float64(); {
		case f < p.Permanent:
			e.Fault = Permanent
		case f < p.Permanent+p.Transient:
			e.Fault, e.Fails = FailBefore+Fault(rnd.Intn(2)), 1+rnd.Intn(2)
		}
	}
	burst := max(p.MaxBurst, 1)
	pDup := 0.0
	if p.Duplicates > 0 && p.Duplicates < 1 {
		pDup = p.Duplicates / (1 - p.Duplicates) / (float64(1+burst) / 2)
	}
	for e := range n {
		s.Deliveries = append(s.Deliveries, e)
		for rnd.Float64() < pDup {
			src := s.Deliveries[rnd.Intn(len(s.Deliveries))]
			for range 1 + rnd.Intn(burst) {
				s.Deliveries = append(s.Deliveries, src)
			}
		}
	}
	d := s.Deliveries
	for i := range d {
		if rnd.Float64() < p.LocalReorder {
			j := min(len(d)-1, i+1+rnd.Intn(max(p.Window, 1)))
			d[i], d[j] = d[j], d[i]
		}
		if rnd.Float64() < p.GlobalReorder {
			j := rnd.Intn(len(d))
			d[i], d[j] = d[j], d[i]
		}
	}
	for at := 1; at < len(d); at++ {
		if rnd.Float64() >= p.Crashes/100 {
			continue
		}
		c := Crash{At: at, Kind: CrashKind(rnd.Intn(4))}
		switch c.Kind {
		case Cancel:
			points := crashPoints()
			c.Point, c.Hit = points[rnd.Intn(len(points))], 1+rnd.Intn(4)
		case CommitFailsBefore, CommitFailsAfter:
			c.Hit = 1 + rnd.Intn(3)
		}
		s.Crashes = append(s.Crashes, c)
	}
	return s
}

func (s *Stream) clone() *Stream {
	return &Stream{Events: slices.Clone(s.Events), Deliveries: slices.Clone(s.Deliveries),
		Crashes: slices.Clone(s.Crashes), Shards: s.Shards}
}

// valid reports whether s can be replayed: at least one event, every event
// delivered, crash positions inside the deliveries.
func (s *Stream) valid() bool {
	if len(s.Events) == 0 || s.Shards < 1 {
		return false
	}
	seen := make([]bool, len(s.Events))
	for _, e := range s.Deliveries {
		if e < 0 || e >= len(s.Events) {
			return false
		}
		seen[e] = true
	}
	for _, ok := range seen {
		if !ok {
			return false
		}
	}
	for _, c := range s.Crashes {
		if c.At < 0 || c.At > len(s.Deliveries) {
			return false
		}
	}
	return true
}

// String prints s compactly: the events with their keys and faults, then
// the deliveries with the crashes where they happen.
func (s *Stream) String() string {
	if s == nil {
		return "<nil stream>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d events, %d deliveries, %d crashes, %d shards\n  events:", len(s.Events), len(s.Deliveries), len(s.Crashes), s.Shards)
	for n, e := range s.Events {
		fmt.Fprintf(&b, " e%d(k%d", n, e.Key)
		if e.Fault == FailBefore || e.Fault == FailAfter {
			fmt.Fprintf(&b, " %s×%d", e.Fault, e.Fails)
		} else if e.Fault == Permanent {
			b.WriteString(" permanent")
		}
		b.WriteString(")")
	}
	b.WriteString("\n  deliveries:")
	c := 0
	for i, e := range s.Deliveries {
		for ; c < len(s.Crashes) && s.Crashes[c].At == i; c++ {
			fmt.Fprintf(&b, " [%s]", s.Crashes[c])
		}
		b.WriteString(" e" + strconv.Itoa(e))
	}
	for ; c < len(s.Crashes); c++ {
		fmt.Fprintf(&b, " [%s]", s.Crashes[c])
	}
	return b.String()
}

// shrinkStream proposes smaller streams, most promising first. Every
// proposal is strictly smaller in one respect and no larger in any, so
// shrinking ends.
func shrinkStream(v interface{}) gopter.Shrink {
	s := v.(*Stream)
	var steps []func() *Stream
	if len(s.Crashes) > 1 {
		steps = append(steps, func() *Stream { c := s.clone(); c.Crashes = nil; return c })
	}
	for i := range s.Crashes {
		steps = append(steps, func() *Stream {
			c := s.clone()
			c.Crashes = slices.Delete(c.Crashes, i, i+1)
			return c
		})
	}
	for size := len(s.Deliveries) / 2; size >= 1; size /= 2 {
		for from := 0; from+size <= len(s.Deliveries); from += size {
			steps = append(steps, func() *Stream { return s.withoutDeliveries(from, from+size) })
		}
	}
	for n, e := range s.Events {
		if e.Fault != NoFault {
			steps = append(steps, func() *Stream {
				c := s.clone()
				c.Events[n] = EventSpec{Key: e.Key}
				return c
			})
		}
	}
	for n, e := range s.Events {
		if e.Key != 0 {
			steps = append(steps, func() *Stream {
				c := s.clone()
				c.Events[n].Key = 0
				return c
			})
		}
	}
	if s.Shards > 1 {
		steps = append(steps, func() *Stream { c := s.clone(); c.Shards = 1; return c })
	}
	i := 0
	return func() (interface{}, bool) {
		for i < len(steps) {
			c := steps[i]()
			i++
			if c != nil && c.valid() {
				return c, true
			}
		}
		return nil, false
	}
}

// withoutDeliveries removes deliveries [from, to), drops the events no
// longer delivered (renumbering the rest) and moves the crashes after the
// cut. It returns nil when nothing would be left.
func (s *Stream) withoutDeliveries(from, to int) *Stream {
	c := s.clone()
	c.Deliveries = slices.Delete(c.Deliveries, from, to)
	if len(c.Deliveries) == 0 {
		return nil
	}
	for i := range c.Crashes {
		switch at := c.Crashes[i].At; {
		case at >= to:
			c.Crashes[i].At -= to - from
		case at > from:
			c.Crashes[i].At = from
		}
	}
	used := make([]bool, len(c.Events))
	for _, e := range c.Deliveries {
		used[e] = true
	}
	renum := make([]int, len(c.Events))
	var events []EventSpec
	for n, ok := range used {
		if ok {
			renum[n] = len(events)
			events = append(events, c.Events[n])
		}
	}
	for i, e := range c.Deliveries {
		c.Deliveries[i] = renum[e]
	}
	c.Events = events
	return c
}
