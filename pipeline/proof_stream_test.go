package pipeline_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/retry"
)

// The proof suites (proof_*_test.go) share one kind of source: a
// deterministic stream of deliveries built from a seed, compact enough to
// rebuild in every restarted child process for millions of events.

// proofShape is what a proof stream is made of.
type proofShape struct {
	seed    uint64
	events  int     // unique events
	keys    int     // partition keys
	hotKeys float64 // share of events on the 1% hottest keys (key skew)
	dup     float64 // share of deliveries that are copies
	burst   int     // copies of one event come in bursts of 1..burst
	reorder float64 // share of events moved up to 16 places (local reordering)
	global  float64 // share of events swapped with one anywhere (global reordering)
	// Per-event faults, as shares of events: the handler fails the first
	// attempt of a transient event (a retry fixes it) and every attempt of
	// a permanent one (dead-lettered; fixed when redriven).
	transient, permanent float64
}

const (
	faultNone uint8 = iota
	faultTransient
	faultPermanent
)

// proofStream is the delivery list of a proofShape: order[i] is the event
// number of delivery i; copies of an event share its number.
type proofStream struct {
	shape     proofShape
	order     []uint32
	key       []uint16 // per event
	fault     []uint8  // per event
	reordered int      // deliveries moved from their place by reordering
}

func newProofStream(sh proofShape) *proofStream {
	rnd := rand.New(rand.NewPCG(sh.seed, 0x70726f6f66))
	s := &proofStream{shape: sh, key: make([]uint16, sh.events), fault: make([]uint8, sh.events)}
	hot := max(1, sh.keys/100)
	for e := range sh.events {
		if rnd.Float64() < sh.hotKeys {
			s.key[e] = uint16(rnd.IntN(hot))
		} else {
			s.key[e] = uint16(rnd.IntN(sh.keys))
		}
		switch f := rnd.Float64(); {
		case f < sh.permanent:
			s.fault[e] = faultPermanent
		case f < sh.permanent+sh.transient:
			s.fault[e] = faultTransient
		}
	}
	// Copies: a burst of 1..burst copies of a recent event follows an
	// event with probability p, chosen so that copies are a share dup of
	// all deliveries.
	meanBurst := float64(1+max(sh.burst, 1)) / 2
	p := sh.dup / (1 - sh.dup) / meanBurst
	s.order = make([]uint32, 0, int(float64(sh.events)*(1+sh.dup/(1-sh.dup)))+16)
	for e := range sh.events {
		s.order = append(s.order, uint32(e))
		for rnd.Float64() < p {
			src := s.order[max(0, len(s.order)-1-rnd.IntN(64))]
			for range 1 + rnd.IntN(max(sh.burst, 1)) {
				s.order = append(s.order, src)
			}
		}
	}
	n := len(s.order)
	before := append([]uint32(nil), s.order...)
	for i := range n {
		if rnd.Float64() < sh.reorder {
			j := min(n-1, i+1+rnd.IntN(16))
			s.order[i], s.order[j] = s.order[j], s.order[i]
		}
		if rnd.Float64() < sh.global {
			j := rnd.IntN(n)
			s.order[i], s.order[j] = s.order[j], s.order[i]
		}
	}
	for i := range n {
		if s.order[i] != before[i] {
			s.reordered++
		}
	}
	return s
}

// id is the event's id, zero-padded so that ids sort like their numbers
// (new identities then append to the store's B+trees instead of touching
// a random leaf each).
func (s *proofStream) id(e uint32) string {
	n := strconv.FormatUint(uint64(e), 10)
	return "e" + strings.Repeat("0", max(0, 9-len(n))) + n
}

func (s *proofStream) keyName(e uint32) string { return "k" + strconv.Itoa(int(s.key[e])) }

// event builds delivery i. Its Subject carries i, so that the ack callback
// knows which delivery it acknowledges; Subject is not part of the
// identity. Events that may be dead-lettered carry Raw, so that they can
// be redriven.
func (s *proofStream) event(i int) *onceflow.Event {
	e := s.order[i]
	ev := &onceflow.Event{SpecVersion: "1.0", Source: "proof", Type: "proof.v1", ID: s.id(e),
		PartitionKey: s.keyName(e), Subject: strconv.Itoa(i)}
	if s.fault[e] == faultPermanent {
		ev.Raw = ev.AppendJSON(nil)
	}
	return ev
}

// loadProofStream returns the stream of sh, read from path when a child
// saved it there before (building a stream of millions of deliveries costs
// more than reading it, in every restarted child), else built and saved.
func loadProofStream(sh proofShape, path string) (*proofStream, error) {
	if b, err := os.ReadFile(path); err == nil {
		if s, ok := decodeProofStream(sh, b); ok {
			return s, nil
		}
	}
	s := newProofStream(sh)
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(s.order)))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.reordered))
	for _, e := range s.order {
		b = binary.LittleEndian.AppendUint32(b, e)
	}
	for _, k := range s.key {
		b = binary.LittleEndian.AppendUint16(b, k)
	}
	b = append(b, s.fault...)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	return s, os.Rename(tmp, path)
}

func decodeProofStream(sh proofShape, b []byte) (*proofStream, bool) {
	if len(b) < 16 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint64(b))
	if len(b) != 16+4*n+3*sh.events {
		return nil, false
	}
	s := &proofStream{shape: sh, order: make([]uint32, n), key: make([]uint16, sh.events), fault: make([]uint8, sh.events)}
	s.reordered = int(binary.LittleEndian.Uint64(b[8:]))
	b = b[16:]
	for i := range s.order {
		s.order[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	b = b[4*n:]
	for i := range s.key {
		s.key[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	copy(s.fault, b[2*sh.events:])
	return s, true
}

// deliveryOf returns the delivery index an event of this stream carries.
func deliveryOf(ev *onceflow.Event) int {
	i, err := strconv.Atoi(ev.Subject)
	if err != nil {
		return -1
	}
	return i
}

// eventOf returns the event number of an identity of this stream.
func eventOf(id string) (uint32, bool) {
	if len(id) < 2 || id[0] != 'e' {
		return 0, false
	}
	n, err := strconv.ParseUint(id[1:], 10, 32)
	return uint32(n), err == nil
}

// uniqueDeliveries is the number of copies beyond the first.
func (s *proofStream) duplicates() int { return len(s.order) - s.shape.events }

var (
	errProofTransient = errors.New("proof: transient failure (first attempt)")
	errProofPermanent = errors.New("proof: permanent failure")
)

// proofHandler applies the transactional effects the checkers count: a
// counter per identity ("n/<id>": a second application shows as 2) and a
// counter per key ("count", compared with the model: the number of
// events of the key that are done). It fails as the event's fault says,
// and checks that a key's events reach it in delivery order within one
// process (Subject is the delivery index; the child submits in that
// order).
type proofHandler struct {
	s        *proofStream
	attempts []atomic.Uint32 // per event, in this process
	fixed    atomic.Bool     // redrive phase: permanent faults are fixed

	mu         sync.Mutex
	last       map[string]int // key -> last delivery index handled
	violations []string
}

func newProofHandler(s *proofStream) *proofHandler {
	return &proofHandler{s: s, attempts: make([]atomic.Uint32, s.shape.events), last: make(map[string]int)}
}

func (h *proofHandler) handle(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
	e, ok := eventOf(ev.ID)
	if !ok || int(e) >= len(h.attempts) {
		return nil, retry.Permanent(errors.New("proof: unknown event " + ev.ID))
	}
	attempt := h.attempts[e].Add(1)
	switch h.s.fault[e] {
	case faultTransient:
		if attempt == 1 {
			return nil, errProofTransient
		}
	case faultPermanent:
		if !h.fixed.Load() {
			return nil, retry.Permanent(errProofPermanent)
		}
	}
	if d := deliveryOf(ev); d >= 0 && !h.fixed.Load() {
		h.mu.Lock()
		if last, ok := h.last[ev.PartitionKey]; ok && d < last {
			h.violations = append(h.violations, ev.PartitionKey+": delivery "+strconv.Itoa(d)+" handled after "+strconv.Itoa(last))
		}
		h.last[ev.PartitionKey] = d
		h.mu.Unlock()
	}
	if err := bump(fx, "n/"+ev.ID); err != nil {
		return nil, err
	}
	if err := bump(fx, "count"); err != nil {
		return nil, err
	}
	return []byte("ok"), nil
}

// bump increments the decimal counter in state key k.
func bump(fx *onceflow.Effects, k string) error {
	v, _, err := fx.Get(k)
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(string(v))
	fx.Put(k, strconv.AppendInt(nil, int64(n+1), 10))
	return nil
}
