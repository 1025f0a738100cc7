package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"
	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/retry"
)

func seqEvent(key string, seq uint64, id string) *onceflow.Event {
	ev := &onceflow.Event{SpecVersion: "1.0", Source: "seq", ID: id, Type: "t", PartitionKey: key, Sequence: seq}
	ev.Raw = ev.AppendJSON(nil) // held events are stored as their JSON
	return ev
}

// seqRecorder records the sequence numbers the handler sees per key.
type seqRecorder struct {
	mu   sync.Mutex
	seen map[string][]uint64
	runs map[string]int // event id -> runs
}

func newSeqRecorder() *seqRecorder {
	return &seqRecorder{seen: map[string][]uint64{}, runs: map[string]int{}}
}

func (r *seqRecorder) handle(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[ev.PartitionKey] = append(r.seen[ev.PartitionKey], ev.Sequence)
	r.runs[ev.ID]++
	return nil, nil
}

// localShuffle permutes evs so that no event moves more than window-1
// places.
func localShuffle(evs []*onceflow.Event, window int, rnd *rand.Rand) {
	for i := range evs {
		j := i + rnd.IntN(min(window, len(evs)-i))
		evs[i], evs[j] = evs[j], evs[i]
	}
}

// seqStream builds keys×n contiguous events, locally shuffled within 64,
// with dupRate of them delivered again later.
func seqStream(keys, n int, dupRate float64, seed int64) []*onceflow.Event {
	rnd := rand.New(rand.NewPCG(uint64(seed), 7))
	var evs []*onceflow.Event
	for s := 1; s <= n; s++ {
		for k := range keys {
			key := "k" + strconv.Itoa(k)
			evs = append(evs, seqEvent(key, uint64(s), key+"-"+strconv.Itoa(s)))
		}
	}
	localShuffle(evs, 64, rnd)
	for i := range evs {
		if rnd.Float64() < dupRate {
			at := i + rnd.IntN(len(evs)-i)
			evs = slices.Insert(evs, at, evs[i])
		}
	}
	return evs
}

func checkSequenced(keys, n int, dupRate float64, seed int64) string {
	return checkSequencedOn(newMemStore(), keys, n, dupRate, seed)
}

func checkSequencedOn(st pipeline.Store, keys, n int, dupRate float64, seed int64) string {
	rec := newSeqRecorder()
	var a acks
	p, err := pipeline.New(rec.handle, pipeline.WithStore(st), pipeline.WithShards(1+int(uint64(seed)%4)),
		pipeline.WithSequenceOrder(pipeline.SequenceOptions{}), pipeline.WithAck(a.add))
	if err != nil {
		return err.Error()
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()
	evs := seqStream(keys, n, dupRate, seed)
	for _, ev := range evs {
		if err := p.Submit(context.Background(), ev); err != nil {
			return "Submit: " + err.Error()
		}
	}
	if err := p.Shutdown(context.Background()); err != nil {
		return "Shutdown: " + err.Error()
	}
	if err := <-errc; err != nil {
		return "Run: " + err.Error()
	}
	for k := range keys {
		key := "k" + strconv.Itoa(k)
		got := rec.seen[key]
		if len(got) != n {
			return fmt.Sprintf("key %s: handler saw %v, want 1..%d", key, got, n)
		}
		for i, s := range got {
			if s != uint64(i+1) {
				return fmt.Sprintf("key %s: handler saw %v, not in sequence order", key, got)
			}
		}
	}
	for id, r := range rec.runs {
		if r != 1 {
			return fmt.Sprintf("event %s handled %d times", id, r)
		}
	}
	for _, x := range a.all() {
		if x.Err != nil {
			return fmt.Sprintf("ack error for %s: %v", x.Event.ID, x.Err)
		}
	}
	if s := p.Stats(); s.Held != 0 {
		return fmt.Sprintf("%d events still held", s.Held)
	}
	return ""
}

// TestPropertySequenceOrder is property (a): for any permutation of per-key
// contiguous streams within a window of 64, the handler sees every key in
// sequence order and each event once.
func TestPropertySequenceOrder(t *testing.T) {
	params := parameters(t, 60)
	ps := gopter.NewProperties(params)
	ps.Property("sequence order", prop.ForAll(
		func(keys, n int, seed int64) string { return checkSequenced(keys, n, 0, seed) },
		gen.IntRange(1, 20), gen.IntRange(1, 60), gen.Int64(),
	))
	runProperties(t, params, ps)
}

// TestPropertySequenceOrderWithDuplicates is property (b): with duplicates
// mixed in, each identity is handled once, still in order.
func TestPropertySequenceOrderWithDuplicates(t *testing.T) {
	params := parameters(t, 60)
	ps := gopter.NewProperties(params)
	ps.Property("sequence order with duplicates", prop.ForAll(
		func(keys, n int, seed int64) string { return checkSequenced(keys, n, 0.2, seed) },
		gen.IntRange(1, 20), gen.IntRange(1, 60), gen.Int64(),
	))
	runProperties(t, params, ps)
}

// TestSequenceOnDedupStores runs the ordering check with duplicates on the
// real stores (the test store above is a plain map).
func TestSequenceOnDedupStores(t *testing.T) {
	seed := rand.Int64()
	t.Logf("seed %d", seed)
	mem, err := dedup.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if msg := checkSequencedOn(mem, 20, 60, 0.2, seed); msg != "" {
		t.Fatalf("memory store: %s", msg)
	}
	disk, err := dedup.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	if msg := checkSequencedOn(disk, 20, 60, 0.2, seed); msg != "" {
		t.Fatalf("disk store: %s", msg)
	}
	if err := disk.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestPropertyGapReport is property (c): with gaps that stay open past the
// timeout, GapSkip's report lists exactly the missing sequence numbers, and
// the waiting events are handed on in order.
func TestPropertyGapReport(t *testing.T) {
	params := parameters(t, 40)
	ps := gopter.NewProperties(params)
	ps.Property("gap report lists exactly the missing numbers", prop.ForAll(
		func(n int, seed int64) string {
			var msg string
			synctest.Test(t, func(t *testing.T) { msg = checkGaps(n, seed) })
			return msg
		},
		gen.IntRange(2, 80), gen.Int64(),
	))
	runProperties(t, params, ps)
}

func checkGaps(n int, seed int64) string {
	rnd := rand.New(rand.NewPCG(uint64(seed), 11))
	var evs []*onceflow.Event
	var missing []uint64
	for s := 1; s <= n; s++ {
		if rnd.IntN(4) == 0 {
			missing = append(missing, uint64(s))
			continue
		}
		evs = append(evs, seqEvent("key", uint64(s), "e"+strconv.Itoa(s)))
	}
	// Numbers missing after the last delivered event are not gaps: nothing
	// waits behind them.
	last := uint64(0)
	if len(evs) > 0 {
		last = evs[len(evs)-1].Sequence
	}
	var wantMissing []uint64
	for _, m := range missing {
		if m < last {
			wantMissing = append(wantMissing, m)
		}
	}
	localShuffle(evs, 64, rnd)
	var mu sync.Mutex
	var reported []uint64
	rec := newSeqRecorder()
	p, err := pipeline.New(rec.handle, pipeline.WithStore(newMemStore()),
		pipeline.WithSequenceOrder(pipeline.SequenceOptions{GapTimeout: time.Second, Policy: pipeline.GapSkip,
			Report: func(r pipeline.GapReport) {
				mu.Lock()
				defer mu.Unlock()
				for _, g := range r.Missing {
					for s := g.From; s <= g.To; s++ {
						reported = append(reported, s)
					}
				}
			}}))
	if err != nil {
		return err.Error()
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()
	for _, ev := range evs {
		if err := p.Submit(context.Background(), ev); err != nil {
			return err.Error()
		}
	}
	time.Sleep(time.Duration(len(wantMissing)+2) * 2 * time.Second) // fake time: every gap times out
	if err := p.Shutdown(context.Background()); err != nil {
		return err.Error()
	}
	if err := <-errc; err != nil {
		return err.Error()
	}
	slices.Sort(reported)
	if fmt.Sprint(reported) != fmt.Sprint(wantMissing) && !(len(reported) == 0 && len(wantMissing) == 0) {
		return fmt.Sprintf("reported missing %v, want %v", reported, wantMissing)
	}
	got := rec.seen["key"]
	if len(got) != len(evs) || !slices.IsSorted(got) {
		return fmt.Sprintf("handler saw %v for %d events", got, len(evs))
	}
	return ""
}

// TestSequenceHeldSurviveRestart: early events are held durably and
// released by a later run that fills the gap.
func TestSequenceHeldSurviveRestart(t *testing.T) {
	st := newMemStore()
	run := func(evs ...*onceflow.Event) (*seqRecorder, []pipeline.Ack, pipeline.Stats) {
		rec := newSeqRecorder()
		var a acks
		p, err := pipeline.New(rec.handle, pipeline.WithStore(st), pipeline.WithSequenceOrder(pipeline.SequenceOptions{}), pipeline.WithAck(a.add))
		if err != nil {
			t.Fatal(err)
		}
		stop := start(t, p)
		for _, ev := range evs {
			if err := p.Submit(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		return rec, a.all(), p.Stats()
	}
	rec, got, stats := run(seqEvent("k", 3, "c"), seqEvent("k", 2, "b"))
	if len(rec.seen["k"]) != 0 || stats.Held != 2 {
		t.Fatalf("first run: handler saw %v, held %d; want nothing handled, 2 held", rec.seen["k"], stats.Held)
	}
	for _, x := range got {
		if x.Err != nil || x.Outcome.Status != onceflow.StatusHeld {
			t.Fatalf("first run ack %+v, want held", x)
		}
	}
	rec, got, stats = run(seqEvent("k", 2, "b"), seqEvent("k", 1, "a"))
	if fmt.Sprint(rec.seen["k"]) != "[1 2 3]" || stats.Held != 0 {
		t.Fatalf("second run: handler saw %v, held %d; want [1 2 3], 0 held", rec.seen["k"], stats.Held)
	}
	released := 0
	for _, x := range got {
		if x.Released {
			released++
		}
	}
	if released != 2 {
		t.Fatalf("second run acks %+v: want 2 released", got)
	}
	// A later conflicting event for an already handled sequence.
	_, got, _ = run(seqEvent("k", 2, "other"))
	if len(got) != 1 || got[0].Outcome.ErrorClass != retry.ReasonSequenceConflict {
		t.Fatalf("conflict ack %+v, want dead letter sequence_conflict", got)
	}
}

func TestSequenceRequiresSequence(t *testing.T) {
	p, err := pipeline.New(nop, pipeline.WithStore(newMemStore()), pipeline.WithSequenceOrder(pipeline.SequenceOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.TrySubmit(event("k", 1)); err == nil {
		t.Fatal("event without sequence accepted in sequence mode")
	}
	if _, err := pipeline.New(nop, pipeline.WithSequenceOrder(pipeline.SequenceOptions{})); err == nil {
		t.Fatal("sequence mode without store accepted")
	}
	// An unknown policy is refused, and the error shows its number rather
	// than naming it "wait", the default it is not.
	_, err = pipeline.New(nop, pipeline.WithStore(newMemStore()), pipeline.WithSequenceOrder(pipeline.SequenceOptions{Policy: 7}))
	if err == nil || !strings.Contains(err.Error(), "GapPolicy(7)") {
		t.Fatalf("WithSequenceOrder(Policy: 7) = %v, want an error showing GapPolicy(7)", err)
	}
	for g, want := range map[pipeline.GapPolicy]string{pipeline.GapWait: "wait", pipeline.GapSkip: "skip", pipeline.GapDeadLetter: "dead_letter"} {
		if g.String() != want {
			t.Errorf("GapPolicy %d String = %q, want %q", uint8(g), g.String(), want)
		}
	}
}

// TestSequenceBufferFull: an early event beyond MaxHeldPerKey is refused
// with ErrSequenceBufferFull, an error naming the key, the sequence and the
// limit, and nothing else is lost: the held events are handled when the
// gap fills, and the refused one is handled when its source delivers it
// again.
func TestSequenceBufferFull(t *testing.T) {
	store, err := dedup.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var a acks
	var mu sync.Mutex
	var seen []uint64
	h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		mu.Lock()
		seen = append(seen, ev.Sequence)
		mu.Unlock()
		return nil, nil
	}
	p, err := pipeline.New(h, pipeline.WithStore(store), pipeline.WithShards(1), pipeline.WithAck(a.add),
		pipeline.WithSequenceOrder(pipeline.SequenceOptions{MaxHeldPerKey: 2}))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	ctx := context.Background()
	for _, q := range []uint64{3, 4} {
		if err := p.Submit(ctx, seqEvent("k", q, fmt.Sprint("e", q))); err != nil {
			t.Fatal(err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a held event's Do would wait for the gap
	defer cancel()
	_, err = p.Do(dctx, seqEvent("k", 5, "e5"))
	if !errors.Is(err, pipeline.ErrSequenceBufferFull) || !strings.Contains(err.Error(), `key "k", sequence 5`) || !strings.Contains(err.Error(), "limit 2, MaxHeldPerKey") {
		t.Fatalf("the third early event: %v, want ErrSequenceBufferFull naming key, sequence and limit", err)
	}
	for _, q := range []uint64{1, 2, 5} { // the gap fills; 5 is delivered again
		if _, err := p.Do(ctx, seqEvent("k", q, fmt.Sprint("e", q))); err != nil {
			t.Fatalf("sequence %d: %v", q, err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("handled sequences %v, want 1..5 once each", seen)
	}
}
