package dedup_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	bolt "go.etcd.io/bbolt"
)

func openDisk(t testing.TB, path string, opts ...dedup.Option) *dedup.Store {
	t.Helper()
	s, err := dedup.Open(path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestReopenRebuilds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clk := newClock()
	opts := []dedup.Option{dedup.WithClock(clk.Now), dedup.WithWindow(8 * time.Hour)}
	s := openDisk(t, path, opts...)
	const n = 300
	var recs []onceflow.Record
	for i := range n {
		r := done(fmt.Sprint(i), fmt.Sprint("result-", i))
		r.Writes = []onceflow.StateWrite{{Key: []byte(fmt.Sprint("k", i)), Value: []byte("v")}}
		r.Outbox = []onceflow.Message{{Key: fmt.Sprint("m", i)}}
		recs = append(recs, r)
		if len(recs) == 100 {
			clk.Add(time.Hour) // spread over three slices
			commit(t, s, recs...)
			recs = nil
		}
	}
	if err := s.Commit(&onceflow.CommitBatch{Checkpoints: []onceflow.Checkpoint{{Name: "out", Value: []byte("42")}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDisk(t, path, opts...)
	st := s.Stats()
	if st.RebuildIdentities != n || st.Identities != n || len(st.Slices) != 3 {
		t.Errorf("after reopen: rebuilt %d, window %d identities in %d slices; want %d, %d, 3",
			st.RebuildIdentities, st.Identities, len(st.Slices), n, n)
	}
	if st.TotalCommits != 4 || st.Commits != 0 {
		t.Errorf("commit counters after reopen: %d total, %d; want 4, 0", st.TotalCommits, st.Commits)
	}
	t.Logf("rebuilt %d identities in %v", st.RebuildIdentities, st.RebuildDuration)
	for i := range n {
		out, ok := lookup(t, s, fmt.Sprint(i))
		if !ok || string(out.Result) != fmt.Sprint("result-", i) {
			t.Fatalf("Lookup(%d) after reopen = %+v, %v", i, out, ok)
		}
	}
	if st := s.Stats(); st.BloomNegatives != 0 || st.StoreHits != n {
		t.Errorf("lookups after reopen: %d bloom negatives, %d store hits; want 0, %d (filters rebuilt)", st.BloomNegatives, st.StoreHits, n)
	}
	if v, ok, err := s.ReadState([]byte("k7")); err != nil || !ok || string(v) != "v" {
		t.Errorf("ReadState after reopen = %q, %v, %v", v, ok, err)
	}
	if v, ok, err := s.Checkpoint("out"); err != nil || !ok || string(v) != "42" {
		t.Errorf("Checkpoint after reopen = %q, %v, %v", v, ok, err)
	}
	if p, err := s.PendingOutbox(1000); err != nil || len(p) != n {
		t.Errorf("PendingOutbox after reopen: %d entries, %v; want %d", len(p), err, n)
	}
	// A duplicate committed after reopen is still a duplicate: "5" in the
	// oldest slice (found through the older slices' filters), "250" in the
	// current one (through the rebuilt current filter, which Commit asks
	// before it reads the current slice).
	for _, id := range []string{"5", "250"} {
		if got := commit(t, s, done(id, "again")); !got[0].Outcome.Duplicate {
			t.Errorf("commit after reopen of the committed identity %s: not a duplicate", id)
		}
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestCommitFullFilterChain: with far more identities in the current slice
// than its filter is sized for, filters chain, and every identity committed
// again is still found a duplicate: Commit reads the current slice when any
// filter of the chain may hold the key.
func TestCommitFullFilterChain(t *testing.T) {
	s := openDisk(t, filepath.Join(t.TempDir(), "state.db"), dedup.WithCapacity(64), dedup.WithWindow(time.Hour))
	var recs []onceflow.Record
	for i := range 3000 {
		recs = append(recs, done(fmt.Sprint("c", i), "first"))
		if len(recs) == 500 {
			commit(t, s, recs...)
			recs = nil
		}
	}
	if st := s.Stats(); st.BloomOverflows == 0 {
		t.Fatalf("no filter chained (stats %+v): the test needs a full chain", st)
	}
	for i := range 3000 {
		recs = append(recs, done(fmt.Sprint("c", i), "again"))
	}
	for i, r := range commit(t, s, recs...) {
		if !r.Outcome.Duplicate || string(r.Outcome.Result) != "first" {
			t.Fatalf("record %d committed again: %+v; want a duplicate of the first", i, r.Outcome)
		}
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	openDisk(t, path)
	const timeout = 200 * time.Millisecond
	start := time.Now()
	s, err := dedup.Open(path, dedup.WithLockTimeout(timeout))
	elapsed := time.Since(start)
	if err == nil {
		_ = s.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, dedup.ErrLocked) || !errors.Is(err, onceflow.ErrStorage) {
		t.Errorf("second Open = %v; want ErrLocked and ErrStorage", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "state is locked by another process") || !strings.Contains(msg, path) {
		t.Errorf("error %q does not say the state is locked, or the path", msg)
	}
	if elapsed > timeout+time.Second {
		t.Errorf("second Open took %v with a timeout of %v", elapsed, timeout)
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openDisk(t, path, dedup.UnsafeNoSync())
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v; want 0600", fi.Mode().Perm())
	}
	commit(t, s, done("a", ""))
	st := s.Stats()
	if !st.UnsafeNoSync || !st.Durable || st.FileSize <= 0 {
		t.Errorf("stats: UnsafeNoSync %v, Durable %v, FileSize %d", st.UnsafeNoSync, st.Durable, st.FileSize)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	m, err := dedup.NewMemory(dedup.UnsafeNoSync())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st := m.Stats(); st.UnsafeNoSync || st.Durable || st.FileSize != 0 {
		t.Errorf("memory stats: UnsafeNoSync %v, Durable %v, FileSize %d", st.UnsafeNoSync, st.Durable, st.FileSize)
	}
}

// TestCorruptRecord damages stored bytes behind the store's back: every
// read of them must fail with ErrCorrupt, never panic.
func TestCorruptRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openDisk(t, path)
	commit(t, s, done("a", "result"), done("b", ""))
	r := done("c", "")
	r.Outbox = []onceflow.Message{{Key: "m"}}
	commit(t, s, r)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	key := ident("a").AppendKey(nil)
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			switch {
			case strings.HasPrefix(string(name), "o/"):
				v := append([]byte(nil), b.Get(key)...)
				v[len(v)/2] ^= 0x40
				return b.Put(key, v)
			case string(name) == "outbox":
				return b.ForEach(func(k, _ []byte) error { return b.Put(k, []byte{1}) })
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDisk(t, path)
	if _, ok := lookup(t, s, "b"); !ok {
		t.Error("Lookup(b), next to a corrupt record: not found")
	}
	_, _, err = s.Lookup(ident("a"))
	if !errors.Is(err, onceflow.ErrCorrupt) || !errors.Is(err, onceflow.ErrStorage) {
		t.Errorf("Lookup of a corrupt record = %v; want ErrCorrupt and ErrStorage", err)
	}
	if _, _, err := s.Inspect(ident("a")); !errors.Is(err, onceflow.ErrCorrupt) {
		t.Errorf("Inspect of a corrupt record = %v; want ErrCorrupt", err)
	}
	if err := s.Commit(&onceflow.CommitBatch{Records: []onceflow.Record{done("a", "")}}); !errors.Is(err, onceflow.ErrCorrupt) {
		t.Errorf("Commit over a corrupt record = %v; want ErrCorrupt", err)
	}
	if _, err := s.PendingOutbox(10); !errors.Is(err, onceflow.ErrCorrupt) {
		t.Errorf("PendingOutbox of a corrupt message = %v; want ErrCorrupt", err)
	}
	if err := s.Check(); !errors.Is(err, onceflow.ErrCorrupt) {
		t.Errorf("Check = %v; want ErrCorrupt", err)
	}
}

// TestReopenOtherWindow reopens a store with another slice width: the
// stored slices are remapped and nothing is forgotten early.
func TestReopenOtherWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clk := newClock()
	s := openDisk(t, path, dedup.WithClock(clk.Now), dedup.WithWindow(8*time.Hour), dedup.WithSlices(8))
	t0 := clk.Now().Truncate(4 * time.Hour)
	for i := range 8 {
		clk.Set(t0.Add(time.Duration(i) * time.Hour))
		commit(t, s, done(fmt.Sprint(i), ""))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Width 4h: each identity is remembered until 16h after the end of
	// the 4h slice holding the end of its old 1h slice.
	clk.Set(t0.Add(20*time.Hour - time.Nanosecond))
	s = openDisk(t, path, dedup.WithClock(clk.Now), dedup.WithWindow(16*time.Hour), dedup.WithSlices(4))
	st := s.Stats()
	if !st.SlicesRemapped || st.RebuildIdentities != 8 || len(st.Slices) != 2 {
		t.Errorf("after reopen: remapped %v, rebuilt %d in %d slices; want true, 8, 2",
			st.SlicesRemapped, st.RebuildIdentities, len(st.Slices))
	}
	for i := range 8 {
		if _, ok := lookup(t, s, fmt.Sprint(i)); !ok {
			t.Errorf("Lookup(%d) after the remap: not found", i)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The first 4h slice expires at 20h, the second one at 24h.
	clk.Set(t0.Add(20 * time.Hour))
	s = openDisk(t, path, dedup.WithClock(clk.Now), dedup.WithWindow(16*time.Hour), dedup.WithSlices(4))
	for i := range 8 {
		if _, ok := lookup(t, s, fmt.Sprint(i)); ok != (i >= 4) {
			t.Errorf("Lookup(%d) at 20h: found=%v; want %v", i, ok, i >= 4)
		}
	}
	if st := s.Stats(); st.SlicesRemapped || st.ExpiredSlices != 1 {
		t.Errorf("second reopen: remapped %v, expired %d; want false, 1", st.SlicesRemapped, st.ExpiredSlices)
	}
}

// TestReopenNarrowerSlices reopens with a narrower slice width while the
// current old slice still runs: its identities must stay visible.
func TestReopenNarrowerSlices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clk := newClock()
	t0 := clk.Now().Truncate(4 * time.Hour)
	clk.Set(t0.Add(time.Hour))
	s := openDisk(t, path, dedup.WithClock(clk.Now), dedup.WithWindow(16*time.Hour), dedup.WithSlices(4))
	commit(t, s, done("a", ""))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDisk(t, path, dedup.WithClock(clk.Now), dedup.WithWindow(8*time.Hour), dedup.WithSlices(8))
	if _, ok := lookup(t, s, "a"); !ok {
		t.Error("Lookup(a) after remapping to narrower slices: not found")
	}
	// Remembered for the new window after the current slice.
	clk.Set(t0.Add(10*time.Hour - time.Nanosecond))
	if _, ok := lookup(t, s, "a"); !ok {
		t.Error("Lookup(a) within the new window: not found")
	}
	clk.Set(t0.Add(10 * time.Hour))
	if _, ok := lookup(t, s, "a"); ok {
		t.Error("Lookup(a) after the new window: found")
	}
}

// TestKeyLimitsFitBolt ties the root package's limits, which the pipeline
// enforces at Submit and after a handler, to bbolt's key size: an identity
// of two maximal identifiers, and a state key of MaxStateKeyBytes, must be
// keys bbolt takes.
func TestKeyLimitsFitBolt(t *testing.T) {
	if onceflow.MaxStateKeyBytes != bolt.MaxKeySize {
		t.Errorf("MaxStateKeyBytes = %d, bbolt's MaxKeySize = %d", onceflow.MaxStateKeyBytes, bolt.MaxKeySize)
	}
	long := strings.Repeat("x", onceflow.MaxIdentifierBytes)
	key := onceflow.Identity{Source: long, ID: long}.AppendKey(nil)
	if len(key) > bolt.MaxKeySize {
		t.Errorf("an identity of two %d-byte identifiers is a %d-byte key, over bbolt's %d", onceflow.MaxIdentifierBytes, len(key), bolt.MaxKeySize)
	}
	st, err := dedup.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := &onceflow.CommitBatch{Records: []onceflow.Record{{
		ID:      onceflow.Identity{Source: long, ID: long},
		Outcome: onceflow.Outcome{Status: onceflow.StatusDone},
		Writes:  []onceflow.StateWrite{{Key: []byte(strings.Repeat("k", onceflow.MaxStateKeyBytes)), Value: []byte("v")}},
	}}}
	if err := st.Commit(b); err != nil {
		t.Fatalf("Commit at the limits = %v", err)
	}
}

// TestReadOnly checks that a read-only opener sees the store as its writer
// left it, with the writer's window whatever WithWindow says, and never
// changes the file: before ReadOnly, the CLI's stats and inspect opened
// the state for writing with the default window, and so expired
// identities that a run with a longer window still needed.
func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	past := time.Now().Add(-20 * 24 * time.Hour)
	w, err := dedup.Open(path, dedup.WithWindow(720*time.Hour), dedup.WithClock(func() time.Time { return past }))
	if err != nil {
		t.Fatal(err)
	}
	id := onceflow.Identity{Source: "s", ID: "old"}
	if err := w.Commit(&onceflow.CommitBatch{Records: []onceflow.Record{{ID: id, Outcome: onceflow.Outcome{Status: onceflow.StatusDone, Result: []byte("r")}}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// Two readers at once, both with the default 7-day window asked for.
	r1, err := dedup.Open(path, dedup.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := dedup.Open(path, dedup.ReadOnly(), dedup.WithWindow(time.Hour), dedup.WithLockTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatalf("a second read-only opener: %v", err)
	}
	for _, r := range []*dedup.Store{r1, r2} {
		if st := r.Stats(); st.Window != 720*time.Hour || st.Identities != 1 || st.ExpiredSlices != 0 {
			t.Errorf("read-only stats: window %v, %d identities, %d expired slices; want the writer's 720h, 1, 0", st.Window, st.Identities, st.ExpiredSlices)
		}
		out, found, err := r.Inspect(id)
		if err != nil || !found || string(out.Result) != "r" {
			t.Errorf("read-only Inspect = %+v, %v, %v; want the stored outcome", out, found, err)
		}
		err = r.Commit(&onceflow.CommitBatch{Records: []onceflow.Record{{ID: onceflow.Identity{Source: "s", ID: "new"}, Outcome: onceflow.Outcome{Status: onceflow.StatusDone}}}})
		if !errors.Is(err, onceflow.ErrStorage) {
			t.Errorf("read-only Commit = %v, want an error matching ErrStorage", err)
		}
	}
	// A writer waits for the readers.
	if _, err := dedup.Open(path, dedup.WithLockTimeout(100*time.Millisecond)); !errors.Is(err, dedup.ErrLocked) {
		t.Errorf("a writer while readers hold the file: %v, want ErrLocked", err)
	}
	for _, r := range []*dedup.Store{r1, r2} {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("read-only opening changed the file")
	}
	// The writer, back with its window, still finds the identity.
	w, err = dedup.Open(path, dedup.WithWindow(720*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, found, err := w.Lookup(id); err != nil || !found {
		t.Errorf("writer after the readers: Lookup = %v, %v; want found", found, err)
	}

	if _, err := dedup.Open(filepath.Join(t.TempDir(), "missing.db"), dedup.ReadOnly()); !errors.Is(err, onceflow.ErrStorage) {
		t.Errorf("ReadOnly of a missing file = %v, want an error matching ErrStorage", err)
	}
	if _, err := dedup.NewMemory(dedup.ReadOnly()); err == nil {
		t.Error("NewMemory(ReadOnly()) succeeded")
	}
}

// TestOpenDamagedFile checks that a state file cut short fails Open with an
// error matching ErrCorrupt: bbolt's walk of the pages at open crashed the
// process with SIGBUS (found by an adversarial probe of the CLI). A page
// overwritten with garbage still crashes it, inside bbolt's own goroutine
// (etcd-io/bbolt#1011): see openGuarded.
func TestOpenDamagedFile(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	st, err := dedup.Open(good, dedup.UnsafeNoSync())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		b := &onceflow.CommitBatch{}
		for j := range 500 {
			b.Records = append(b.Records, onceflow.Record{ID: onceflow.Identity{Source: "s", ID: fmt.Sprintf("%d-%d-%x", i, j, rnd.Uint64())},
				Outcome: onceflow.Outcome{Status: onceflow.StatusDone, Result: []byte("result")}})
		}
		if err := st.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	pages := 0
	for _, c := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"cut to 8 KiB", func(b []byte) []byte { return b[:8192] }},
		{"cut to 64 KiB", func(b []byte) []byte { return b[:65536] }},
		{"cut to 8 KiB plus a byte", func(b []byte) []byte { return b[:8193] }},
	} {
		pages++
		path := filepath.Join(dir, fmt.Sprintf("damaged-%d.db", pages))
		if err := os.WriteFile(path, c.damage(bytes.Clone(data)), 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := dedup.Open(path, dedup.WithLockTimeout(100*time.Millisecond))
		if err == nil {
			// bbolt may find the damage only later: Check must then.
			cerr := st.Check()
			st.Close()
			if cerr == nil {
				t.Errorf("%s: Open and Check succeeded on a damaged file", c.name)
			}
			continue
		}
		if !errors.Is(err, onceflow.ErrCorrupt) || !errors.Is(err, onceflow.ErrStorage) {
			t.Errorf("%s: Open = %v, want an error matching ErrCorrupt and ErrStorage", c.name, err)
		}
	}
}
