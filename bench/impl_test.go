package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
	bolt "go.etcd.io/bbolt"
)

// ---------------------------------------------------------------- onceflow

// runOnceflow runs one op through a pipeline with store st and the handler
// every implementation runs (mark the event handled), using the public API
// only: New, Run, SubmitBatch (or Submit per event when perEvent), Shutdown,
// Stats, and an Ack callback that counts negative acknowledgements. It
// fails tb on any error or nack, and returns the pipeline's Stats.
func runOnceflow(tb testing.TB, feed iter.Seq[[]*onceflow.Event], chk *checker, st pipeline.Store, perEvent bool, opts ...pipeline.Option) pipeline.Stats {
	tb.Helper()
	var nacks atomic.Uint64
	var firstNack atomic.Pointer[error]
	h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		chk.handle(ev)
		return nil, nil
	}
	all := []pipeline.Option{
		pipeline.WithStore(st),
		pipeline.WithAck(func(a pipeline.Ack) {
			if a.Err != nil {
				// Copy the error before taking its address: &a.Err would
				// move every Ack to the heap, an allocation per event
				// that is the benchmark's, not onceflow's.
				err := a.Err
				nacks.Add(1)
				firstNack.CompareAndSwap(nil, &err)
			}
		}),
	}
	p, err := pipeline.New(h, append(all, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	stop := func(err error) {
		cancel()
		<-errc
		tb.Fatal(err)
	}
	for c := range feed {
		if perEvent {
			for _, ev := range c {
				if err := p.Submit(ctx, ev); err != nil {
					stop(err)
				}
			}
		} else if err := p.SubmitBatch(ctx, c); err != nil {
			stop(err)
		}
	}
	if err := p.Shutdown(ctx); err != nil {
		stop(err)
	}
	if err := <-errc; err != nil {
		tb.Fatalf("Run: %v", err)
	}
	stats := p.Stats()
	if n := nacks.Load(); n > 0 {
		tb.Fatalf("%d events nacked, the first with: %v", n, *firstNack.Load())
	}
	if stats.Acked != stats.Submitted {
		tb.Fatalf("acked %d of %d submitted events", stats.Acked, stats.Submitted)
	}
	return stats
}

// newMemoryStore is onceflow-memory's store: dedup.NewMemory with its
// default options except the capacity when capacity > 0.
func newMemoryStore(tb testing.TB, capacity int) *dedup.Store {
	tb.Helper()
	var opts []dedup.Option
	if capacity > 0 {
		opts = append(opts, dedup.WithCapacity(capacity))
	}
	st, err := dedup.NewMemory(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// newDiskStore is onceflow-bbolt's store: dedup.Open on a fresh directory
// with its default options (fsync on every commit). The returned func
// closes the store and removes the directory.
func newDiskStore(tb testing.TB) (*dedup.Store, func()) {
	tb.Helper()
	dir, err := os.MkdirTemp(tb.TempDir(), "onceflow-bbolt-")
	if err != nil {
		tb.Fatal(err)
	}
	st, err := dedup.Open(filepath.Join(dir, "dedup.db"))
	if err != nil {
		tb.Fatal(err)
	}
	return st, func() {
		if err := st.Close(); err != nil {
			tb.Error(err)
		}
		_ = os.RemoveAll(dir)
	}
}

// ---------------------------------------------------------------- Watermill

// wmDedup selects the Watermill router's deduplication.
type wmDedup int

const (
	wmNone      wmDedup = iota // router only
	wmByID                     // middleware.Deduplicator keyed on the event id (metadata field)
	wmByPayload                // middleware.Deduplicator with its defaults: Adler-32 of the payload
)

// wmIDField is the metadata field carrying the CloudEvents id, as a
// binding would map it ("ce_id" in the CloudEvents Kafka binding).
const wmIDField = "ce_id"

// wmInFlight bounds the messages published and not yet handled, so that
// the producer feels backpressure as it does with the other
// implementations (gochannel's Publish does not block by default: it
// starts a goroutine per message).
const wmInFlight = 1024

// runWatermill runs one op through Watermill v1.5.1: a router on a
// gochannel Pub/Sub, one consumer handler (mark the event handled),
// the chosen Deduplicator middleware, and an outermost middleware that
// frees one in-flight slot per message handled or dropped. The producer
// builds one message per event (UUID = event id, payload = the CloudEvents
// JSON, metadata ce_id = the id) and publishes chunks of 64. The op ends
// when every message is handled; the router and the Pub/Sub are then closed.
func runWatermill(tb testing.TB, feed iter.Seq[[]*onceflow.Event], chk *checker, d wmDedup) {
	tb.Helper()
	logger := watermill.NopLogger{}
	pubSub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: wmInFlight}, logger)
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		tb.Fatal(err)
	}
	slots := make(chan struct{}, wmInFlight)
	router.AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil {
				<-slots // a failed message is redelivered: its slot stays taken
			}
			return out, err
		}
	})
	switch d {
	case wmByID:
		dd := &middleware.Deduplicator{KeyFactory: middleware.NewMessageHasherFromMetadataField(wmIDField)}
		router.AddMiddleware(dd.Middleware)
	case wmByPayload:
		dd := &middleware.Deduplicator{} // defaults: Adler-32 of the payload, map repository, 1-minute window
		router.AddMiddleware(dd.Middleware)
	}
	const topic = "events"
	router.AddConsumerHandler("handle", topic, pubSub, func(msg *message.Message) error {
		chk.handleID(msg.UUID)
		return nil
	})
	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(context.Background()) }()
	<-router.Running()

	msgs := make([]*message.Message, 0, chunk)
	for c := range feed {
		msgs = msgs[:0]
		for _, ev := range c {
			m := message.NewMessage(ev.ID, ev.Raw)
			m.Metadata.Set(wmIDField, ev.ID)
			msgs = append(msgs, m)
			slots <- struct{}{}
		}
		if err := pubSub.Publish(topic, msgs...); err != nil {
			tb.Fatal(err)
		}
	}
	for range wmInFlight { // every slot free again: every message handled
		slots <- struct{}{}
	}
	if err := router.Close(); err != nil {
		tb.Error(err)
	}
	if err := <-runErr; err != nil {
		tb.Error(err)
	}
	if err := pubSub.Close(); err != nil {
		tb.Error(err)
	}
}

// ---------------------------------------------------------------- baseline

// runBaseline is the hand-written reference, with no library code: the
// producer hashes each event's key (FNV-1a) to one of shards workers and
// appends it to that shard's batch; a full batch of 64 goes over a bounded
// channel (16 batches) to the shard's goroutine, which owns an exact map
// of the identities it has seen and runs the handler on the first copy of
// each. Emptied batches come back over a second channel for reuse.
// seen, when not nil, holds prefilled maps, one per shard (the window
// sweep); otherwise each run starts with empty ones.
func runBaseline(feed iter.Seq[[]*onceflow.Event], chk *checker, shards int, seen []map[onceflow.Identity]struct{}) {
	type batch = []*onceflow.Event
	in := make([]chan batch, shards)
	free := make([]chan batch, shards)
	if seen == nil {
		seen = make([]map[onceflow.Identity]struct{}, shards)
		for i := range seen {
			seen[i] = make(map[onceflow.Identity]struct{})
		}
	}
	var wg sync.WaitGroup
	for i := range in {
		in[i] = make(chan batch, 16)
		free[i] = make(chan batch, 17)
		wg.Go(func() {
			seen := seen[i]
			for b := range in[i] {
				for _, ev := range b {
					id := ev.Identity()
					if _, dup := seen[id]; dup {
						continue
					}
					seen[id] = struct{}{}
					chk.handle(ev)
				}
				clear(b)
				select {
				case free[i] <- b[:0]:
				default:
				}
			}
		})
	}
	take := func(i int) batch {
		select {
		case b := <-free[i]:
			return b
		default:
			return make(batch, 0, chunk)
		}
	}
	cur := make([]batch, shards)
	for i := range cur {
		cur[i] = take(i)
	}
	for c := range feed {
		for _, ev := range c {
			i := int(fnv1a(ev.Key()) % uint64(shards))
			cur[i] = append(cur[i], ev)
			if len(cur[i]) == chunk {
				in[i] <- cur[i]
				cur[i] = take(i)
			}
		}
	}
	for i := range in {
		if len(cur[i]) > 0 {
			in[i] <- cur[i]
		}
		close(in[i])
	}
	wg.Wait()
}

func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// ---------------------------------------------------------------- raw bbolt

// openRawBolt opens a fresh bbolt file with the options dedup.Open uses
// (dedup/bolt.go: a lock timeout, the map freelist, no freelist sync, a
// 1 GiB initial mmap; fsync on). The returned func closes and removes it.
func openRawBolt(tb testing.TB) (*bolt.DB, func()) {
	tb.Helper()
	dir, err := os.MkdirTemp(tb.TempDir(), "bbolt-raw-")
	if err != nil {
		tb.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "raw.db"), 0o600, &bolt.Options{
		Timeout:         2 * time.Second,
		FreelistType:    bolt.FreelistMapType,
		NoFreelistSync:  true,
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return db, func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
		_ = os.RemoveAll(dir)
	}
}

var rawBucket = []byte("ids")

// runRawBolt is the durable floor: one goroutine, no pipeline. It cuts the
// deliveries into groups of group events in arrival order and writes each
// group in one db.Update: the identity keys (Identity.AppendKey, as
// onceflow's store) sorted, as onceflow's store sorts a commit's keys;
// for each, a Get, and when absent a Put of a 20-byte value (the size of
// onceflow's outcome record for a success with no result) and the
// handler. It returns the number of commits.
func runRawBolt(tb testing.TB, feed iter.Seq[[]*onceflow.Event], chk *checker, db *bolt.DB, group int) int {
	tb.Helper()
	type pending struct {
		key []byte
		ev  *onceflow.Event
	}
	var (
		keyBuf  []byte
		ends    []int
		evs     []*onceflow.Event
		order   []pending
		commits int
		val     [20]byte
	)
	val[0], val[1] = 1, byte(onceflow.StatusDone)
	flush := func() {
		if len(evs) == 0 {
			return
		}
		order = order[:0]
		start := 0
		for i, end := range ends {
			order = append(order, pending{key: keyBuf[start:end:end], ev: evs[i]})
			start = end
		}
		slices.SortStableFunc(order, func(a, b pending) int { return bytes.Compare(a.key, b.key) })
		binary.LittleEndian.PutUint64(val[2:], uint64(time.Now().UnixNano()))
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(rawBucket)
			if err != nil {
				return err
			}
			for _, p := range order {
				if b.Get(p.key) != nil {
					continue // a duplicate: committed before or earlier in this group
				}
				if err := b.Put(p.key, val[:]); err != nil {
					return err
				}
				chk.handle(p.ev)
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		commits++
		keyBuf, ends, evs = keyBuf[:0], ends[:0], evs[:0]
	}
	for c := range feed {
		for _, ev := range c {
			keyBuf = ev.Identity().AppendKey(keyBuf)
			ends = append(ends, len(keyBuf))
			evs = append(evs, ev)
			if len(evs) == group {
				flush()
			}
		}
	}
	flush()
	return commits
}
