package dedup_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// kind is one of the two stores under the contract.
type kind struct {
	name string
	// tiers: lookups go through Bloom filters and the cache (the disk
	// store); the memory store is an exact map and has neither.
	tiers bool
	// open opens a fresh store that is closed when the test ends.
	open func(t testing.TB, opts ...dedup.Option) *dedup.Store
}

var kinds = []kind{
	{"memory", false, func(t testing.TB, opts ...dedup.Option) *dedup.Store {
		t.Helper()
		s, err := dedup.NewMemory(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
	{"disk", true, func(t testing.TB, opts ...dedup.Option) *dedup.Store {
		t.Helper()
		s, err := dedup.Open(filepath.Join(t.TempDir(), "state.db"), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Check(); err != nil && !errors.Is(err, dedup.ErrClosed) {
				t.Errorf("Check at cleanup: %v", err)
			}
			_ = s.Close()
		})
		return s
	}},
}

// forEachKind runs test once per store kind.
func forEachKind(t *testing.T, test func(t *testing.T, k kind)) {
	for _, k := range kinds {
		t.Run("store="+k.name, func(t *testing.T) { test(t, k) })
	}
}

// seed returns the seed of a randomized test from ONCEFLOW_SEED or the
// time, and logs it.
func seed(t testing.TB) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("ONCEFLOW_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ONCEFLOW_SEED: %v", err)
		}
		s = n
	}
	t.Logf("seed=%d (rerun with ONCEFLOW_SEED=%d)", s, s)
	return s
}

func ident(id string) onceflow.Identity { return onceflow.Identity{Source: "test/src", ID: id} }

func done(id string, result string) onceflow.Record {
	return onceflow.Record{
		ID: ident(id),
		Outcome: onceflow.Outcome{
			Status:    onceflow.StatusDone,
			Attempts:  1,
			FirstSeen: time.Unix(1_900_000_000, 123456789),
			Result:    []byte(result),
		},
	}
}

func commit(t testing.TB, s *dedup.Store, recs ...onceflow.Record) []onceflow.Record {
	t.Helper()
	b := &onceflow.CommitBatch{Records: recs}
	if err := s.Commit(b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return b.Records
}

func lookup(t testing.TB, s *dedup.Store, id string) (onceflow.Outcome, bool) {
	t.Helper()
	out, ok, err := s.Lookup(ident(id))
	if err != nil {
		t.Fatalf("Lookup(%s): %v", id, err)
	}
	return out, ok
}

func sameOutcome(got, want onceflow.Outcome) bool {
	return got.Status == want.Status && got.Duplicate == want.Duplicate &&
		got.Attempts == want.Attempts && got.FirstSeen.Equal(want.FirstSeen) &&
		bytes.Equal(got.Result, want.Result) && got.ErrorClass == want.ErrorClass
}

func TestLookupAfterCommit(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		if _, ok := lookup(t, s, "a"); ok {
			t.Fatal("Lookup(a) before commit: found")
		}
		a := done("a", "result-a")
		dl := onceflow.Record{ID: ident("d"), Outcome: onceflow.Outcome{
			Status: onceflow.StatusDeadLettered, Attempts: 5, ErrorClass: "timeout",
		}, DeadLetter: &onceflow.DeadLetter{Raw: []byte(`{"id":"d"}`), Reason: "exhausted"}}
		commit(t, s, a, dl)

		for _, want := range []onceflow.Record{a, dl} {
			got, ok := lookup(t, s, want.ID.ID)
			w := want.Outcome
			w.Duplicate = true
			if !ok || !sameOutcome(got, w) {
				t.Errorf("Lookup(%s) = %+v, %v; want %+v, true", want.ID.ID, got, ok, w)
			}
			got, ok, err := s.Inspect(want.ID)
			if err != nil || !ok || !sameOutcome(got, want.Outcome) {
				t.Errorf("Inspect(%s) = %+v, %v, %v; want %+v, true, nil", want.ID.ID, got, ok, err, want.Outcome)
			}
		}
		// Same id, other source: another identity.
		if _, ok, _ := s.Lookup(onceflow.Identity{Source: "other", ID: "a"}); ok {
			t.Error("Lookup(other/a) found a's outcome")
		}
		// The returned result is a copy.
		got, _ := lookup(t, s, "a")
		got.Result[0] = 'X'
		if got, _ := lookup(t, s, "a"); string(got.Result) != "result-a" {
			t.Errorf("result after modifying a returned copy: %q", got.Result)
		}
	})
}

// TestLookupBatch: LookupBatch answers what Lookup answers, identity by
// identity, for committed, dead-lettered, expired and unknown identities,
// repeated ones included; it refuses result slices shorter than ids.
func TestLookupBatch(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		clk := newClock()
		const width = time.Hour
		s := k.open(t, dedup.WithClock(clk.Now), dedup.WithWindow(2*width), dedup.WithSlices(2))
		t0 := clk.Now().Truncate(width)
		clk.Set(t0)
		commit(t, s, done("old", "o"))
		clk.Set(t0.Add(width))
		dl := onceflow.Record{ID: ident("dead"), Outcome: onceflow.Outcome{Status: onceflow.StatusDeadLettered, Attempts: 3, ErrorClass: "x"},
			DeadLetter: &onceflow.DeadLetter{Raw: []byte(`{}`), Reason: "exhausted"}}
		commit(t, s, done("a", "ra"), done("b", ""), dl)
		check := func(when string) {
			t.Helper()
			var ids []onceflow.Identity
			for _, id := range []string{"a", "missing", "b", "dead", "old", "a"} {
				ids = append(ids, ident(id))
			}
			outs := make([]onceflow.Outcome, len(ids))
			found := make([]bool, len(ids))
			if err := s.LookupBatch(ids, outs, found); err != nil {
				t.Fatalf("%s: LookupBatch: %v", when, err)
			}
			if !found[0] || !found[5] || found[1] || !found[3] {
				t.Errorf("%s: found %v; want a (twice) and dead found, missing not", when, found)
			}
			for i, id := range ids {
				out, ok := lookup(t, s, id.ID)
				if found[i] != ok || !sameOutcome(outs[i], out) {
					t.Errorf("%s: LookupBatch[%d] (%s) = %+v, %v; Lookup = %+v, %v", when, i, id.ID, outs[i], found[i], out, ok)
				}
			}
		}
		check("old live")
		clk.Set(t0.Add(3 * width)) // old's slice has expired
		check("old expired")
		if err := s.LookupBatch([]onceflow.Identity{ident("a")}, nil, make([]bool, 1)); !errors.Is(err, dedup.ErrInvalidBatch) {
			t.Errorf("LookupBatch into no outcomes = %v; want ErrInvalidBatch", err)
		}
	})
}

func TestDuplicateKeepsFirst(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		key := onceflow.StateKey("pk", "count")
		first := done("a", "first")
		first.Writes = []onceflow.StateWrite{{Key: key, Value: []byte("1")}}
		first.Outbox = []onceflow.Message{{Key: "k1", Topic: "t", Payload: []byte("p1")}}
		got := commit(t, s, first)
		if got[0].Outcome.Duplicate {
			t.Fatal("first commit reported a duplicate")
		}

		// Already committed.
		second := done("a", "second")
		second.Outcome.Attempts = 7
		second.Writes = []onceflow.StateWrite{{Key: key, Value: []byte("2")}}
		second.Outbox = []onceflow.Message{{Key: "k2", Topic: "t", Payload: []byte("p2")}}
		// And twice within one commit, next to a new record.
		third := done("b", "b-first")
		third.Writes = []onceflow.StateWrite{{Key: onceflow.StateKey("pk", "b"), Value: []byte("b1")}}
		fourth := done("b", "b-second")
		fourth.Writes = []onceflow.StateWrite{{Key: onceflow.StateKey("pk", "b"), Value: []byte("b2")}}
		fourth.Outbox = []onceflow.Message{{Key: "k4", Topic: "t", Payload: []byte("p4")}}
		got = commit(t, s, second, third, fourth)

		wantA := first.Outcome
		wantA.Duplicate = true
		if !sameOutcome(got[0].Outcome, wantA) || got[0].Writes != nil || got[0].Outbox != nil {
			t.Errorf("second copy of a after commit = %+v (writes %v, outbox %v); want %+v and no effects",
				got[0].Outcome, got[0].Writes, got[0].Outbox, wantA)
		}
		if got[1].Outcome.Duplicate {
			t.Errorf("first copy of b marked duplicate")
		}
		wantB := third.Outcome
		wantB.Duplicate = true
		if !sameOutcome(got[2].Outcome, wantB) || got[2].Writes != nil {
			t.Errorf("second copy of b = %+v; want %+v", got[2].Outcome, wantB)
		}

		for key, want := range map[string]string{string(key): "1", string(onceflow.StateKey("pk", "b")): "b1"} {
			v, ok, err := s.ReadState([]byte(key))
			if err != nil || !ok || string(v) != want {
				t.Errorf("ReadState(%q) = %q, %v, %v; want %q", key, v, ok, err, want)
			}
		}
		pending, err := s.PendingOutbox(10)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 1 || pending[0].Message.Key != "k1" {
			t.Errorf("outbox = %+v; want only k1", pending)
		}
		if out, ok := lookup(t, s, "a"); !ok || string(out.Result) != "first" {
			t.Errorf("Lookup(a) = %+v, %v; want the first outcome", out, ok)
		}
		if st := s.Stats(); k.tiers && (st.BloomFill <= 0 || st.BloomFill > 1) {
			t.Errorf("BloomFill = %v", st.BloomFill)
		}
		if st := s.Stats(); st.DuplicateRecords != 2 || st.StoredRecords != 2 {
			t.Errorf("stats: %d duplicates, %d stored; want 2, 2", st.DuplicateRecords, st.StoredRecords)
		}
	})
}

func TestUncommittedStaysNotFound(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		// A claim that is released: looked up, never committed.
		for range 3 {
			if _, ok := lookup(t, s, "x"); ok {
				t.Fatal("Lookup(x) found an identity never committed")
			}
		}
		st := s.Stats()
		if !k.tiers && (st.BloomNegatives != 0 || st.StoreReads != 3 || st.StoreHits != 0) {
			t.Errorf("exact store stats after 3 lookups: %d negatives, %d reads, %d hits; want 0, 3, 0",
				st.BloomNegatives, st.StoreReads, st.StoreHits)
		}
		// Lookup writes nothing, not even to the filters: every lookup of
		// an identity never committed is a Bloom negative.
		if k.tiers && (st.BloomNegatives != 3 || st.StoreReads != 0 || st.StoreHits != 0) {
			t.Errorf("stats after 3 lookups: %d negatives, %d store reads, %d hits; want 3, 0, 0",
				st.BloomNegatives, st.StoreReads, st.StoreHits)
		}
		commit(t, s, done("x", "r"))
		if _, ok := lookup(t, s, "x"); !ok {
			t.Error("Lookup(x) after commit: not found")
		}
	})
}

func TestDeadLetters(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		clk := newClock()
		s := k.open(t, dedup.WithClock(clk.Now), dedup.WithWindow(8*time.Hour))
		at := clk.Now()
		dead := func(id string) onceflow.Record {
			return onceflow.Record{
				ID:      ident(id),
				Outcome: onceflow.Outcome{Status: onceflow.StatusDeadLettered, Attempts: 3, ErrorClass: "permanent"},
				DeadLetter: &onceflow.DeadLetter{
					ID: ident(id), Raw: []byte(`{"id":"` + id + `"}`), Reason: "permanent", Error: "boom",
					Attempts: 3, FirstAttempt: at, LastAttempt: at.Add(time.Second),
				},
			}
		}
		commit(t, s, dead("a"), dead("b"), done("c", ""))
		d, ok, err := s.DeadLetter(ident("a"))
		if err != nil || !ok || d.ID != ident("a") || d.Reason != "permanent" || d.Error != "boom" ||
			string(d.Raw) != `{"id":"a"}` || d.Attempts != 3 || !d.FirstAttempt.Equal(at) || !d.Redriven.IsZero() {
			t.Fatalf("DeadLetter(a) = %+v, %v, %v", d, ok, err)
		}
		if _, ok, _ := s.DeadLetter(ident("c")); ok {
			t.Error("DeadLetter(c) of a done identity: found")
		}

		// A redelivered copy is a duplicate of the dead-lettered outcome;
		// its dead letter is discarded.
		again := dead("a")
		again.DeadLetter.Error = "second"
		got := commit(t, s, again)
		if !got[0].Outcome.Duplicate || got[0].Outcome.Status != onceflow.StatusDeadLettered || got[0].DeadLetter != nil {
			t.Errorf("redelivered dead letter = %+v", got[0])
		}
		if d, _, _ := s.DeadLetter(ident("a")); d.Error != "boom" {
			t.Errorf("dead letter after a duplicate: error %q; want the first", d.Error)
		}

		// A redrive replaces the dead-lettered outcome once, in a later
		// slice, and marks the dead letter.
		clk.Add(2 * time.Hour)
		redrive := done("a", "redriven")
		redrive.Redrive = true
		redrive.Writes = []onceflow.StateWrite{{Key: []byte("a"), Value: []byte("effect")}}
		again = done("a", "twice")
		again.Redrive = true
		got = commit(t, s, redrive, again)
		if got[0].Outcome.Duplicate || !got[1].Outcome.Duplicate || string(got[1].Outcome.Result) != "redriven" {
			t.Errorf("redrive: %+v, then %+v; want stored, then a duplicate of it", got[0].Outcome, got[1].Outcome)
		}
		if out, ok := lookup(t, s, "a"); !ok || out.Status != onceflow.StatusDone || string(out.Result) != "redriven" {
			t.Errorf("Lookup(a) after redrive = %+v, %v", out, ok)
		}
		if v, _, _ := s.ReadState([]byte("a")); string(v) != "effect" {
			t.Errorf("state of the redrive = %q", v)
		}
		d, _, _ = s.DeadLetter(ident("a"))
		if !d.Redriven.Equal(clk.Now()) || d.Error != "boom" {
			t.Errorf("dead letter after redrive: %+v; want Redriven %v", d, clk.Now())
		}
		// A redrive of a done identity is a duplicate.
		redrive = done("c", "x")
		redrive.Redrive = true
		if got := commit(t, s, redrive); !got[0].Outcome.Duplicate {
			t.Error("redrive of a done identity: not a duplicate")
		}
		if st := s.Stats(); st.Identities != 3 {
			t.Errorf("window holds %d identities; want 3 (the redriven one moved)", st.Identities)
		}

		// Listing, in pages.
		var ids []string
		var after onceflow.Identity
		for {
			page, err := s.DeadLetters(after, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			ids = append(ids, page[0].ID.ID)
			after = page[0].ID
		}
		if fmt.Sprint(ids) != "[a b]" {
			t.Errorf("DeadLetters pages: %v; want [a b]", ids)
		}
		bad := done("x", "")
		bad.DeadLetter = &onceflow.DeadLetter{}
		if err := s.Commit(&onceflow.CommitBatch{Records: []onceflow.Record{bad}}); !errors.Is(err, dedup.ErrInvalidRecord) {
			t.Errorf("dead letter with status done: %v; want ErrInvalidRecord", err)
		}
	})
}

func TestRelease(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		held := onceflow.Record{ID: ident("h"), Outcome: onceflow.Outcome{Status: onceflow.StatusHeld}}
		commit(t, s, held)
		if out, ok := lookup(t, s, "h"); !ok || out.Status != onceflow.StatusHeld {
			t.Fatalf("Lookup(h) = %+v, %v; want held", out, ok)
		}
		dedup.WaitCache(s)
		// Without Release, a copy is a duplicate of the held outcome.
		if got := commit(t, s, done("h", "x")); !got[0].Outcome.Duplicate || got[0].Outcome.Status != onceflow.StatusHeld {
			t.Errorf("copy of a held event = %+v; want a duplicate of held", got[0].Outcome)
		}
		rel := done("h", "released")
		rel.Release = true
		rel.Outbox = []onceflow.Message{{Key: "m"}}
		if got := commit(t, s, rel); got[0].Outcome.Duplicate {
			t.Errorf("release = %+v; want stored", got[0].Outcome)
		}
		dedup.WaitCache(s)
		if out, ok := lookup(t, s, "h"); !ok || out.Status != onceflow.StatusDone || string(out.Result) != "released" {
			t.Errorf("Lookup(h) after release = %+v, %v", out, ok)
		}
		rel.Outcome.Result = []byte("again")
		if got := commit(t, s, rel); !got[0].Outcome.Duplicate {
			t.Error("second release: not a duplicate")
		}
		if p, _ := s.PendingOutbox(10); len(p) != 1 {
			t.Errorf("outbox holds %d messages; want 1", len(p))
		}
		if st := s.Stats(); st.Identities != 1 {
			t.Errorf("window holds %d identities; want 1", st.Identities)
		}
	})
}

func TestCheckpoints(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		if _, ok, err := s.Checkpoint("out"); ok || err != nil {
			t.Fatalf("Checkpoint before commit: %v, %v", ok, err)
		}
		b := &onceflow.CommitBatch{
			Records:     []onceflow.Record{done("a", "")},
			Checkpoints: []onceflow.Checkpoint{{Name: "out", Value: []byte("100")}, {Name: "empty"}},
		}
		if err := s.Commit(b); err != nil {
			t.Fatal(err)
		}
		// A batch of checkpoints only; the last of a name wins.
		b = &onceflow.CommitBatch{Checkpoints: []onceflow.Checkpoint{
			{Name: "out", Value: []byte("150")}, {Name: "out", Value: []byte("200")},
		}}
		if err := s.Commit(b); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{"out": "200", "empty": ""} {
			v, ok, err := s.Checkpoint(name)
			if err != nil || !ok || string(v) != want {
				t.Errorf("Checkpoint(%q) = %q, %v, %v; want %q, true", name, v, ok, err, want)
			}
		}
		if st := s.Stats(); st.TotalCommits != 2 || st.Commits != 2 {
			t.Errorf("commits: %d total, %d; want 2, 2", st.TotalCommits, st.Commits)
		}
	})
}

func TestState(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		ka, kb, kc := onceflow.StateKey("p", "a"), onceflow.StateKey("p", "b"), onceflow.StateKey("q", "c")
		r1 := done("1", "")
		r1.Writes = []onceflow.StateWrite{
			{Key: ka, Value: []byte("a1")}, {Key: kb, Value: []byte("b1")}, {Key: ka, Value: []byte("a2")},
		}
		r2 := done("2", "")
		r2.Writes = []onceflow.StateWrite{{Key: kc, Value: nil}, {Key: kb, Delete: true}}
		commit(t, s, r1, r2)
		for _, c := range []struct {
			key  []byte
			want string
			ok   bool
		}{{ka, "a2", true}, {kb, "", false}, {kc, "", true}} {
			v, ok, err := s.ReadState(c.key)
			if err != nil || ok != c.ok || string(v) != c.want {
				t.Errorf("ReadState(%q) = %q, %v, %v; want %q, %v", c.key, v, ok, err, c.want, c.ok)
			}
		}
		// A delete, then a write again, in later commits.
		r3 := done("3", "")
		r3.Writes = []onceflow.StateWrite{{Key: ka, Delete: true}}
		r4 := done("4", "")
		r4.Writes = []onceflow.StateWrite{{Key: kb, Value: []byte("b3")}}
		commit(t, s, r3)
		commit(t, s, r4)
		if _, ok, _ := s.ReadState(ka); ok {
			t.Error("deleted key a still there")
		}
		v, _, _ := s.ReadState(kb)
		if string(v) != "b3" {
			t.Errorf("ReadState(b) = %q; want b3", v)
		}
		v[0] = 'X' // a copy
		if v, _, _ := s.ReadState(kb); string(v) != "b3" {
			t.Errorf("ReadState(b) after modifying a copy = %q", v)
		}
	})
}

func TestOutbox(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		var want []string
		for i := range 5 {
			r := done(fmt.Sprint(i), "")
			for j := range 2 {
				m := onceflow.Message{Key: fmt.Sprintf("k%d-%d", i, j), Topic: "topic", Payload: []byte{byte(i), byte(j)}}
				r.Outbox = append(r.Outbox, m)
				want = append(want, m.Key)
			}
			commit(t, s, r)
		}
		all, err := s.PendingOutbox(100)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(want) {
			t.Fatalf("PendingOutbox: %d entries; want %d", len(all), len(want))
		}
		for i, e := range all {
			if e.Message.Key != want[i] || e.Message.Topic != "topic" || len(e.Message.Payload) != 2 {
				t.Errorf("entry %d = %+v; want key %s", i, e, want[i])
			}
			if i > 0 && e.Seq <= all[i-1].Seq {
				t.Errorf("sequence %d after %d", e.Seq, all[i-1].Seq)
			}
		}
		first, err := s.PendingOutbox(3)
		if err != nil || len(first) != 3 || first[2].Seq != all[2].Seq {
			t.Fatalf("PendingOutbox(3) = %+v, %v", first, err)
		}
		if err := s.DeleteOutbox([]uint64{all[0].Seq, all[2].Seq, 1 << 60}); err != nil {
			t.Fatal(err)
		}
		rest, err := s.PendingOutbox(100)
		if err != nil || len(rest) != len(all)-2 || rest[0].Seq != all[1].Seq || rest[1].Seq != all[3].Seq {
			t.Fatalf("after delete: %+v, %v", rest, err)
		}
		if got, _ := s.PendingOutbox(0); got != nil {
			t.Errorf("PendingOutbox(0) = %v; want nil", got)
		}
		// Sequences keep increasing after deletes.
		r := done("later", "")
		r.Outbox = []onceflow.Message{{Key: "later"}}
		commit(t, s, r)
		rest, _ = s.PendingOutbox(100)
		if last := rest[len(rest)-1]; last.Message.Key != "later" || last.Seq <= all[len(all)-1].Seq {
			t.Errorf("last entry %+v; want key later after seq %d", last, all[len(all)-1].Seq)
		}
	})
}

func TestExpiry(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		clk := newClock()
		const width = time.Hour
		s := k.open(t, dedup.WithClock(clk.Now), dedup.WithWindow(8*width), dedup.WithSlices(8))
		t0 := clk.Now().Truncate(width) // the start of slice s0
		clk.Set(t0.Add(width - time.Nanosecond))
		commit(t, s, done("old", "")) // in s0, at its last instant
		clk.Set(t0.Add(width))
		commit(t, s, done("newer", "")) // in s0+1

		// Remembered for the window: s0 is live while the current slice
		// is at most s0+8.
		clk.Set(t0.Add(9*width - time.Nanosecond))
		for _, id := range []string{"old", "newer"} {
			if _, ok := lookup(t, s, id); !ok {
				t.Errorf("Lookup(%s) in the last live instant of its slice: not found", id)
			}
		}
		if st := s.Stats(); len(st.Slices) != 2 || st.Identities != 2 {
			t.Errorf("window occupancy %+v, %d identities; want 2 slices, 2", st.Slices, st.Identities)
		}
		// One nanosecond later, s0 has expired, and only s0.
		clk.Set(t0.Add(9 * width))
		if _, ok := lookup(t, s, "old"); ok {
			t.Error("Lookup(old) after its slice expired: found")
		}
		if _, ok, _ := s.Inspect(ident("old")); ok {
			t.Error("Inspect(old) after its slice expired: found")
		}
		if _, ok := lookup(t, s, "newer"); !ok {
			t.Error("Lookup(newer) in a live slice: not found")
		}
		// A commit deletes the expired bucket; the old identity is new
		// again and gets a new outcome.
		got := commit(t, s, done("old", "again"))
		if got[0].Outcome.Duplicate {
			t.Error("commit of an expired identity: duplicate")
		}
		st := s.Stats()
		if st.ExpiredSlices != 1 {
			t.Errorf("ExpiredSlices = %d; want 1", st.ExpiredSlices)
		}
		if len(st.Slices) != 2 || st.Identities != 2 {
			t.Errorf("window occupancy %+v, %d identities; want 2 slices, 2", st.Slices, st.Identities)
		}
		if out, ok := lookup(t, s, "old"); !ok || string(out.Result) != "again" {
			t.Errorf("Lookup(old) = %+v, %v; want the new outcome", out, ok)
		}

		// The clock going back does not bring back the expired slice nor
		// forget the live ones.
		clk.Set(t0)
		if _, ok := lookup(t, s, "newer"); !ok {
			t.Error("Lookup(newer) after the clock went back: not found")
		}
		// A jump past the whole window forgets everything.
		clk.Set(t0.Add(30 * width))
		commit(t, s, done("last", ""))
		for _, id := range []string{"old", "newer"} {
			if _, ok := lookup(t, s, id); ok {
				t.Errorf("Lookup(%s) after the window: found", id)
			}
		}
		if st := s.Stats(); st.ExpiredSlices != 3 || st.Identities != 1 {
			t.Errorf("after the jump: %d expired slices, %d identities; want 3, 1", st.ExpiredSlices, st.Identities)
		}
	})
}

func TestBloomFalsePositivesConfirmed(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		r := rand.New(rand.NewPCG(seed(t), 1))
		// 10 identities per filter at a 50% target rate: overfilled
		// filters and many false positives.
		s := k.open(t, dedup.WithCapacity(8*16*10), dedup.WithFalsePositiveRate(0.5), dedup.WithCacheItems(0))
		committed := make(map[string]bool)
		var recs []onceflow.Record
		for range 2000 {
			id := strconv.FormatUint(r.Uint64(), 36)
			committed[id] = true
			recs = append(recs, done(id, ""))
		}
		commit(t, s, recs...)
		for range 5000 {
			id := strconv.FormatUint(r.Uint64(), 36)
			if _, ok := lookup(t, s, id); ok && !committed[id] {
				t.Fatalf("Lookup(%s) found an identity never committed", id)
			}
		}
		for id := range committed {
			if _, ok := lookup(t, s, id); !ok {
				t.Fatalf("Lookup(%s) of a committed identity: not found", id)
			}
		}
		st := s.Stats()
		fps := st.StoreReads - st.StoreHits
		if !k.tiers {
			return // an exact map: no filters to overfill
		}
		if fps == 0 || st.StoreHits != uint64(len(committed)) {
			t.Errorf("%d false positives, %d store hits; want some, %d", fps, st.StoreHits, len(committed))
		}
		if st.BloomOverflows == 0 {
			t.Error("BloomOverflows = 0 for overfilled filters")
		}
		t.Logf("%d lookups: %d bloom negatives, %d store reads, fp rate %.3f, %d overflows, %d filters",
			st.Lookups, st.BloomNegatives, st.StoreReads, st.FalsePositiveRate, st.BloomOverflows, st.BloomFilters)
	})
}

func TestCacheHit(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		if !k.tiers {
			t.Skip("the memory store is an exact map without a cache")
		}
		s := k.open(t)
		commit(t, s, done("a", "ra"))
		dedup.WaitCache(s)
		// A commit does not fill the cache: the first lookup reads the
		// store, which caches the outcome for the next ones.
		for i, want := range []struct{ hits, reads uint64 }{{0, 1}, {1, 1}, {2, 1}} {
			if out, ok := lookup(t, s, "a"); !ok || string(out.Result) != "ra" || !out.Duplicate {
				t.Fatalf("Lookup(a) #%d = %+v, %v", i+1, out, ok)
			}
			dedup.WaitCache(s)
			if st := s.Stats(); st.CacheHits != want.hits || st.StoreReads != want.reads {
				t.Errorf("after lookup #%d: %d cache hits, %d store reads; want %d, %d", i+1, st.CacheHits, st.StoreReads, want.hits, want.reads)
			}
		}
	})
}

func TestInvalidBatch(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		big := done("big", "")
		big.Outcome.Result = make([]byte, onceflow.MaxResultBytes+1)
		noKey := done("nokey", "")
		noKey.Writes = []onceflow.StateWrite{{Value: []byte("v")}}
		badStatus := done("s200", "")
		badStatus.Outcome.Status = 200
		noSource, noID := done("nosource", ""), done("", "")
		noSource.ID.Source = ""
		for _, c := range []struct {
			name string
			rec  onceflow.Record
			want error
		}{
			{"status unknown", onceflow.Record{ID: ident("u")}, dedup.ErrInvalidRecord},
			{"result too large", big, onceflow.ErrResultTooLarge},
			{"empty state key", noKey, dedup.ErrInvalidRecord},
			{"identity too long", done(string(make([]byte, 40000)), ""), dedup.ErrInvalidRecord},
			{"status not onceflow's", badStatus, dedup.ErrInvalidRecord},
			{"empty source", noSource, dedup.ErrInvalidRecord},
			{"empty id", noID, dedup.ErrInvalidRecord},
		} {
			b := &onceflow.CommitBatch{Records: []onceflow.Record{done("ok", ""), c.rec}}
			if err := s.Commit(b); !errors.Is(err, c.want) {
				t.Errorf("%s: Commit = %v; want %v", c.name, err, c.want)
			}
		}
		if _, ok, _ := s.Inspect(ident("ok")); ok {
			t.Error("a record of a rejected batch was committed")
		}
		if err := s.Commit(nil); err != nil {
			t.Errorf("Commit(nil) = %v", err)
		}
	})
}

func TestClosed(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		commit(t, s, done("a", ""))
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		wg.Wait()
		checks := map[string]error{}
		_, _, checks["Lookup"] = s.Lookup(ident("a"))
		_, _, checks["Inspect"] = s.Inspect(ident("a"))
		_, _, checks["ReadState"] = s.ReadState([]byte("k"))
		_, _, checks["Checkpoint"] = s.Checkpoint("c")
		checks["Commit"] = s.Commit(&onceflow.CommitBatch{Records: []onceflow.Record{done("b", "")}})
		_, checks["PendingOutbox"] = s.PendingOutbox(1)
		_, _, checks["DeadLetter"] = s.DeadLetter(ident("a"))
		_, checks["DeadLetters"] = s.DeadLetters(onceflow.Identity{}, 1)
		checks["DeleteOutbox"] = s.DeleteOutbox([]uint64{1})
		checks["Check"] = s.Check()
		for name, err := range checks {
			if !errors.Is(err, dedup.ErrClosed) {
				t.Errorf("%s after Close = %v; want ErrClosed", name, err)
			}
		}
		_ = s.Stats() // still safe
	})
}

// TestConcurrent runs lookups from several goroutines while one commits,
// then closes the store under them: run with -race.
func TestConcurrent(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t, dedup.UnsafeNoSync())
		r := rand.New(rand.NewPCG(seed(t), 2))
		const n = 400
		ids := make([]string, n)
		for i := range ids {
			ids[i] = strconv.FormatUint(r.Uint64(), 36)
		}
		var mu sync.Mutex
		acked := make(map[string]bool)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 4 {
			wg.Go(func() {
				rr := rand.New(rand.NewPCG(uint64(w), 3))
				for {
					select {
					case <-stop:
						return
					default:
					}
					id := ids[rr.IntN(n)]
					mu.Lock()
					wasAcked := acked[id]
					mu.Unlock()
					_, ok, err := s.Lookup(ident(id))
					if errors.Is(err, dedup.ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("Lookup: %v", err)
						return
					}
					if wasAcked && !ok {
						t.Errorf("Lookup(%s) of an acknowledged identity: not found", id)
						return
					}
				}
			})
		}
		for i := 0; i < n; i += 20 {
			var recs []onceflow.Record
			for _, id := range ids[i : i+20] {
				recs = append(recs, done(id, ""))
			}
			commit(t, s, recs...)
			mu.Lock()
			for _, id := range ids[i : i+20] {
				acked[id] = true
			}
			mu.Unlock()
		}
		wg.Go(func() { _ = s.Close() })
		time.Sleep(time.Millisecond)
		close(stop)
		wg.Wait()
	})
}

// TestModel compares random commits and lookups with a map.
func TestModel(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		r := rand.New(rand.NewPCG(seed(t), 4))
		s := k.open(t, dedup.UnsafeNoSync(), dedup.WithCapacity(500), dedup.WithCacheItems(50))
		model := make(map[string]string) // id → first result
		state := make(map[string]int)    // id → how often its effects were applied
		pool := make([]string, 300)
		for i := range pool {
			pool[i] = fmt.Sprintf("id-%d", i)
		}
		for round := range 60 {
			var recs []onceflow.Record
			for j := range 1 + r.IntN(30) {
				id := pool[r.IntN(len(pool))]
				rec := done(id, fmt.Sprintf("r%d.%d", round, j))
				rec.Writes = []onceflow.StateWrite{{Key: []byte(id), Value: []byte(rec.Outcome.Result)}}
				recs = append(recs, rec)
			}
			got := commit(t, s, recs...)
			for _, rec := range got {
				id := rec.ID.ID
				first, seen := model[id]
				if seen != rec.Outcome.Duplicate {
					t.Fatalf("round %d: %s duplicate=%v; model seen=%v", round, id, rec.Outcome.Duplicate, seen)
				}
				if !seen {
					model[id] = string(rec.Outcome.Result)
					state[id]++
				} else if string(rec.Outcome.Result) != first {
					t.Fatalf("round %d: %s rewritten to %q; want first %q", round, id, rec.Outcome.Result, first)
				}
			}
			if round%5 == 0 {
				dedup.WaitCache(s)
			}
			for range 40 {
				id := pool[r.IntN(len(pool))]
				out, ok := lookup(t, s, id)
				first, seen := model[id]
				if ok != seen || (ok && string(out.Result) != first) {
					t.Fatalf("round %d: Lookup(%s) = %q, %v; model %q, %v", round, id, out.Result, ok, first, seen)
				}
			}
		}
		for id, first := range model {
			v, ok, err := s.ReadState([]byte(id))
			if err != nil || !ok || string(v) != first || state[id] != 1 {
				t.Errorf("state of %s = %q, %v, %v (applied %d times); want %q once", id, v, ok, err, state[id], first)
			}
		}
		st := s.Stats()
		t.Logf("%d lookups: %d bloom negatives, %d cache hits, %d store reads (%d hits)",
			st.Lookups, st.BloomNegatives, st.CacheHits, st.StoreReads, st.StoreHits)
	})
}

func TestOptionsValidated(t *testing.T) {
	for _, opt := range []dedup.Option{
		dedup.WithWindow(0), dedup.WithSlices(0), dedup.WithSlices(64),
		dedup.WithWindow(time.Millisecond), dedup.WithClock(nil), dedup.WithCapacity(0),
		dedup.WithFalsePositiveRate(0), dedup.WithFalsePositiveRate(1), dedup.WithCacheItems(-1),
		dedup.WithLockTimeout(0), dedup.WithCapacity(math.MaxInt), dedup.WithCacheItems(math.MaxInt),
	} {
		if s, err := dedup.NewMemory(opt); err == nil {
			_ = s.Close()
			t.Errorf("NewMemory with a bad option: no error")
		}
		if err := dedup.CheckOptions(opt); err == nil {
			t.Errorf("CheckOptions with a bad option: no error")
		}
	}
	if _, err := dedup.Open(filepath.Join(t.TempDir(), "x.db"), dedup.WithSlices(0)); err == nil {
		t.Error("Open with a bad option: no error")
	}
	if err := dedup.CheckOptions(dedup.WithWindow(time.Hour), dedup.WithCapacity(1000)); err != nil {
		t.Errorf("CheckOptions with good options: %v", err)
	}
	if _, err := dedup.Open(""); err == nil || !strings.Contains(err.Error(), "empty path") {
		t.Errorf(`Open("") = %v, want an error naming the empty path`, err)
	}
}
