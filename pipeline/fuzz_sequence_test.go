package pipeline_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
)

// fuzzSeq is one fuzz input decoded: the reorder buffer's limits, whether
// the pipeline restarts halfway, and the deliveries.
type fuzzSeq struct {
	shards, perKey, total int
	restart               bool
	deliveries            []fuzzDelivery
}

type fuzzDelivery struct {
	key, seq int
	conflict bool // another identity claiming the same (key, seq)
}

func (d fuzzDelivery) event() *onceflow.Event {
	key := "k" + strconv.Itoa(d.key)
	id := key + "-" + strconv.Itoa(d.seq)
	if d.conflict {
		id += "-x"
	}
	return &onceflow.Event{SpecVersion: "1.0", Source: "fuzz", Type: "t", ID: id, PartitionKey: key, Sequence: uint64(d.seq)}
}

// decodeFuzzSeq reads data: the first byte sets the shard count (1..3),
// the per-key hold limit (2..9) and the restart flag; then each pair of
// bytes (a, b) is a delivery of key a&3 at sequence b%24+1, the canonical
// event of that position unless (a>>2)&3 == 3 (a conflicting identity).
// Repeated pairs are duplicates.
func decodeFuzzSeq(data []byte) fuzzSeq {
	fs := fuzzSeq{shards: 1, perKey: 2, total: 16}
	if len(data) == 0 {
		return fs
	}
	c := data[0]
	fs.shards = 1 + int(c&3)%3
	fs.perKey = 2 + int(c>>2&7)
	fs.restart = c&0x80 != 0
	data = data[1:]
	for i := 0; i+1 < len(data) && len(fs.deliveries) < 512; i += 2 {
		a, b := data[i], data[i+1]
		fs.deliveries = append(fs.deliveries, fuzzDelivery{key: int(a & 3), seq: int(b%24) + 1, conflict: a>>2&3 == 3})
	}
	return fs
}

func encodeFuzzSeq(shards, perKey int, restart bool, ds ...fuzzDelivery) []byte {
	c := byte(shards-1) | byte(perKey-2)<<2
	if restart {
		c |= 0x80
	}
	out := []byte{c}
	for _, d := range ds {
		a := byte(d.key)
		if d.conflict {
			a |= 3 << 2
		}
		out = append(out, a, byte(d.seq-1))
	}
	return out
}

// FuzzSequenceOrder feeds deliveries (key, seq, duplicate or conflicting
// identity) into a pipeline with sequence ordering on the in-memory store,
// with a small reorder buffer, optionally restarting halfway on the same
// store. Invariants: the handler sees each key's sequence numbers 1, 2, 3…
// in order, each once; each identity runs at most once; every delivery is
// acknowledged once; the events held never exceed the per-key and total
// limits, and none is held that could have been released.
func FuzzSequenceOrder(f *testing.F) {
	d := func(key, seq int) fuzzDelivery { return fuzzDelivery{key: key, seq: seq} }
	f.Add(encodeFuzzSeq(1, 4, false, d(0, 1), d(0, 2), d(0, 3)))
	f.Add(encodeFuzzSeq(2, 2, false, d(0, 3), d(0, 2), d(0, 4), d(0, 5), d(0, 1)))
	f.Add(encodeFuzzSeq(3, 3, true, d(1, 2), d(1, 2), d(2, 1), d(1, 1), d(1, 3), d(2, 3), d(2, 2)))
	f.Add(encodeFuzzSeq(1, 2, false, d(0, 2), fuzzDelivery{key: 0, seq: 2, conflict: true}, d(0, 1), fuzzDelivery{key: 0, seq: 1, conflict: true}))
	f.Add(encodeFuzzSeq(2, 9, true, d(3, 24), d(3, 23), d(3, 22), d(3, 2), d(3, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		if msg := checkFuzzSeq(decodeFuzzSeq(data)); msg != "" {
			t.Fatal(msg)
		}
	})
}

func checkFuzzSeq(fs fuzzSeq) string {
	store, err := dedup.NewMemory(dedup.WithCacheItems(0), dedup.WithCapacity(1024))
	if err != nil {
		return err.Error()
	}
	defer store.Close()
	var mu sync.Mutex
	handled := map[string][]uint64{} // key -> sequence numbers, in handling order
	runs := map[string]int{}         // identity -> handler runs
	acks, released := 0, 0
	var violation string
	h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		runs[ev.ID]++
		seqs := handled[ev.PartitionKey]
		if want := uint64(len(seqs) + 1); ev.Sequence != want && violation == "" {
			violation = fmt.Sprintf("key %s: handled sequence %d after %v", ev.PartitionKey, ev.Sequence, seqs)
		}
		handled[ev.PartitionKey] = append(seqs, ev.Sequence)
		return nil, nil
	}
	opts := pipeline.SequenceOptions{MaxHeldPerKey: fs.perKey, MaxHeld: fs.total}
	var stats pipeline.Stats
	run := func(ds []fuzzDelivery, shards int) string {
		// A short group-commit delay and no linger: a fuzz input is a few
		// events, and the defaults would make each execution wait for them.
		p, err := pipeline.New(h, pipeline.WithStore(store), pipeline.WithShards(shards),
			pipeline.WithGroupCommit(256, 20*time.Microsecond), pipeline.WithLinger(0),
			pipeline.WithSequenceOrder(opts), pipeline.WithAck(func(a pipeline.Ack) {
				mu.Lock()
				defer mu.Unlock()
				if a.Released {
					released++
				} else {
					acks++
				}
			}))
		if err != nil {
			return err.Error()
		}
		errc := make(chan error, 1)
		go func() { errc <- p.Run(context.Background()) }()
		for _, d := range ds {
			if err := p.Submit(context.Background(), d.event()); err != nil {
				return "Submit: " + err.Error()
			}
		}
		if err := p.Shutdown(context.Background()); err != nil {
			return "Shutdown: " + err.Error()
		}
		if err := <-errc; err != nil {
			return "Run: " + err.Error()
		}
		stats = p.Stats()
		return ""
	}
	parts := [][]fuzzDelivery{fs.deliveries}
	if fs.restart {
		half := len(fs.deliveries) / 2
		parts = [][]fuzzDelivery{fs.deliveries[:half], fs.deliveries[half:]}
	}
	limit := 0 // of events held in total, by the shard counts used
	for _, part := range parts {
		shards := fs.shards
		limit = max(limit, max(fs.total/shards, 1)*shards)
		if msg := run(part, shards); msg != "" {
			return msg
		}
	}
	if violation != "" {
		return violation
	}
	for id, n := range runs {
		if n != 1 {
			return fmt.Sprintf("identity %s handled %d times", id, n)
		}
	}
	if acks != len(fs.deliveries) {
		return fmt.Sprintf("%d acknowledgements for %d deliveries", acks, len(fs.deliveries))
	}
	// What is held, per key, from the store.
	held := map[string][]uint64{}
	total := 0
	err = store.ScanState([]byte{0, 'H'}, func(k, _ []byte) error {
		n, w := binary.Uvarint(k[2:])
		rest := k[2+w:]
		if w <= 0 || uint64(len(rest)) != n+8 {
			return fmt.Errorf("held key %q malformed", k)
		}
		key := string(rest[:n])
		held[key] = append(held[key], binary.BigEndian.Uint64(rest[n:]))
		total++
		return nil
	})
	if err != nil {
		return err.Error()
	}
	if int64(total) != stats.Held {
		return fmt.Sprintf("%d events held in the store, %d by the pipeline", total, stats.Held)
	}
	if total > limit {
		return fmt.Sprintf("%d events held, limit %d", total, limit)
	}
	for key, seqs := range held {
		if len(seqs) > fs.perKey {
			return fmt.Sprintf("key %s: %d events held, limit %d", key, len(seqs), fs.perKey)
		}
		next := uint64(len(handled[key]) + 1)
		for _, q := range seqs {
			if q <= next {
				return fmt.Sprintf("key %s: sequence %d held while %d is next", key, q, next)
			}
		}
	}
	if released > acks {
		return fmt.Sprintf("%d releases for %d acknowledgements", released, acks)
	}
	return ""
}
