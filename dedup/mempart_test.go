package dedup

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
)

// TestMemPartCollisions drives a partition with keys forced onto one hash
// slot: the side table keeps the index exact, and deleting the key that
// holds the slot moves a waiting key into it.
func TestMemPartCollisions(t *testing.T) {
	// The partition is given each key's hash: a, b and d are made to
	// collide on 42.
	var pt memPart
	const h = 42
	v := func(s string) []byte { return []byte(s) }
	pt.set(h, memEntry{slice: 1, key: "a", v: v("A")})
	pt.set(h, memEntry{slice: 1, key: "b", v: v("B")}) // same hash, other key
	pt.set(h+1, memEntry{slice: 2, key: "c", v: v("C")})
	for _, k := range []string{"a", "b"} {
		e, ok := pt.get(k, h)
		if !ok || string(e.v) != string(k[0]-'a'+'A') {
			t.Fatalf("get(%q) = %+v, %v", k, e, ok)
		}
	}
	if _, ok := pt.get("z", h); ok {
		t.Fatal("get of a key never set found something")
	}
	pt.set(h, memEntry{slice: 3, key: "b", v: v("B2")}) // overwrite in the side table
	if e, _ := pt.get("b", h); string(e.v) != "B2" || e.slice != 3 {
		t.Fatalf("overwritten b = %+v", e)
	}
	pt.del("a", h) // frees the slot: b moves in
	if _, ok := pt.get("a", h); ok {
		t.Fatal("a still found after del")
	}
	if pos, ok := pt.idx[h]; !ok {
		t.Fatal("slot empty after deleting its holder; want b moved in")
	} else if k, _, _ := pt.at(pos); string(k) != "b" {
		t.Fatalf("slot after deleting its holder = %q; want b moved in", k)
	}
	if len(pt.more) != 0 {
		t.Fatalf("side table keeps %d entries, want 0", len(pt.more))
	}
	pt.set(h, memEntry{slice: 1, key: "d", v: v("D")})
	pt.del("d", h) // deletes from the side table, leaves the slot
	if e, ok := pt.get("b", h); !ok || string(e.v) != "B2" {
		t.Fatalf("b after deleting d = %+v, %v", e, ok)
	}
	if e, ok := pt.get("c", h+1); !ok || string(e.v) != "C" {
		t.Fatalf("c = %+v, %v", e, ok)
	}
}

// TestMemPartCompact: deleting most outcomes compacts the partition's
// data; what is left reads back the same, and a value read before the
// compaction keeps its bytes.
func TestMemPartCompact(t *testing.T) {
	var pt memPart
	val := func(i int) []byte { return []byte(strings.Repeat(strconv.Itoa(i), 10)) }
	const n = 5000
	for i := range n {
		if err := pt.set(uint64(i), memEntry{slice: uint64(i % 3), key: "key" + strconv.Itoa(i), v: val(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Two keys that collide on one hash slot, the later in the side map.
	for _, k := range []string{"x", "y"} {
		if err := pt.set(1<<40, memEntry{slice: 7, key: k, v: []byte(k + k)}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := pt.get("key1", 1)
	kept := slices.Clone(before.v)
	full := pt.size
	for i := range n {
		if i%10 != 0 && i != 1 {
			pt.del("key"+strconv.Itoa(i), uint64(i))
		}
	}
	if pt.size >= full/2 {
		t.Fatalf("blocks hold %d bytes of %d after deleting 90%% of the outcomes: not compacted", pt.size, full)
	}
	if pt.dead > pt.size {
		t.Fatalf("dead %d > size %d after compaction", pt.dead, pt.size)
	}
	// An outcome larger than a block gets one of its own, and moves
	// with the next compaction.
	big := bytes.Repeat([]byte("B"), 3*memBlock)
	if err := pt.set(1<<41, memEntry{slice: 9, key: "big", v: big}); err != nil {
		t.Fatal(err)
	}
	pt.compact()
	if !bytes.Equal(before.v, kept) {
		t.Fatalf("a value read before compaction changed: %q, want %q", before.v, kept)
	}
	for i := range n {
		e, ok := pt.get("key"+strconv.Itoa(i), uint64(i))
		if want := i%10 == 0 || i == 1; ok != want {
			t.Fatalf("key%d found %v, want %v", i, ok, want)
		} else if ok && (!bytes.Equal(e.v, val(i)) || e.slice != uint64(i%3)) {
			t.Fatalf("key%d = slice %d %q after compaction", i, e.slice, e.v)
		}
	}
	for _, k := range []string{"x", "y"} {
		if e, ok := pt.get(k, 1<<40); !ok || string(e.v) != k+k {
			t.Fatalf("colliding key %s = %q, %v after compaction", k, e.v, ok)
		}
	}
	if e, ok := pt.get("big", 1<<41); !ok || !bytes.Equal(e.v, big) || e.slice != 9 {
		t.Fatalf("big outcome after compaction: found %v, %d bytes, slice %d", ok, len(e.v), e.slice)
	}
}

// TestMemoryPlainCommitUndo: a plain commit that meets a stored record it
// cannot decode fails, and undoes the outcomes it had already inserted.
func TestMemoryPlainCommitUndo(t *testing.T) {
	s, err := NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := onceflow.Outcome{Status: onceflow.StatusDone, Attempts: 1}
	bad := onceflow.Identity{Source: "s", ID: "bad"}
	if err := s.Commit(&onceflow.CommitBatch{Records: []onceflow.Record{{ID: bad, Outcome: done}}}); err != nil {
		t.Fatal(err)
	}
	mb := s.be.(*memBackend)
	key := string(bad.AppendKey(nil))
	e, ok := mb.peek(key)
	if !ok {
		t.Fatal("committed outcome not found")
	}
	e.v = []byte{0xff, 0xff}
	if _, _, err := mb.store(key, e); err != nil { // corrupt it
		t.Fatal(err)
	}
	// Many new identities, so that some land in partitions visited before
	// the corrupt one's.
	var recs []onceflow.Record
	for i := range 200 {
		recs = append(recs, onceflow.Record{ID: onceflow.Identity{Source: "s", ID: "new" + strconv.Itoa(i)}, Outcome: done})
	}
	recs = append(recs, onceflow.Record{ID: bad, Outcome: done})
	err = s.Commit(&onceflow.CommitBatch{Records: recs})
	if !errors.Is(err, onceflow.ErrCorrupt) {
		t.Fatalf("commit over a corrupt record = %v, want ErrCorrupt", err)
	}
	for _, r := range recs[:200] {
		if _, found, err := s.Lookup(r.ID); err != nil || found {
			t.Fatalf("after the failed commit, Lookup(%v) = found %v, %v; want not found", r.ID, found, err)
		}
	}
	if err := s.Commit(&onceflow.CommitBatch{Records: recs[:200]}); err != nil {
		t.Fatalf("commit of the new identities alone: %v", err)
	}
	for _, r := range recs[:200] {
		if _, found, err := s.Lookup(r.ID); err != nil || !found {
			t.Fatalf("Lookup(%v) = found %v, %v; want found", r.ID, found, err)
		}
	}
}

// TestSortByKey: sortByKey orders like a stable sort of the keys, for
// batches with long shared prefixes, prefixes of each other, and equal
// keys.
func TestSortByKey(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	alphabet := []string{"", "a", "ab", "abcdefghij", "\x00", "\x00\x00", "z"}
	for round := range 500 {
		var sc commitScratch
		n := 1 + rnd.IntN(40)
		prefix := strings.Repeat("s", rnd.IntN(20))
		for range n {
			k := prefix
			for range rnd.IntN(4) {
				k += alphabet[rnd.IntN(len(alphabet))]
			}
			sc.keys = append(sc.keys, []byte(k))
		}
		for i := range n {
			sc.order = append(sc.order, i)
		}
		sc.sortByKey()
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		slices.SortStableFunc(want, func(i, j int) int { return bytes.Compare(sc.keys[i], sc.keys[j]) })
		if !slices.Equal(sc.order, want) {
			t.Fatalf("round %d: keys %q: order %v, want %v", round, sc.keys, sc.order, want)
		}
	}
}

// TestMemPartDropSlice: dropping a slice forgets exactly its outcomes —
// those in the index and in the side map, with outcomes moved between
// slices by overwrites — frees its blocks for reuse, and keeps the
// partition's byte counts exact.
func TestMemPartDropSlice(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 3))
	for round := range 50 {
		var pt memPart
		model := map[string]memEntry{}                                    // key → what get must return
		hashOf := func(k string) uint64 { return uint64(len(k)%5) << 20 } // crowd keys onto few hashes
		hashBytes := func(k []byte) uint64 { return hashOf(string(k)) }
		for range 3000 {
			k := "k" + strconv.Itoa(rnd.IntN(800))
			slice := uint64(1 + rnd.IntN(3))
			v := bytes.Repeat([]byte{byte('a' + slice)}, rnd.IntN(300))
			if rnd.IntN(10) == 0 {
				pt.del(k, hashOf(k))
				delete(model, k)
				continue
			}
			if err := pt.set(hashOf(k), memEntry{slice: slice, key: k, v: v}); err != nil {
				t.Fatal(err)
			}
			model[k] = memEntry{slice: slice, v: v}
		}
		pt.dropSlice(2, hashBytes)
		for k, e := range model {
			if e.slice == 2 {
				delete(model, k)
			}
		}
		live := 0
		_ = pt.each(func(key []byte, e memEntry) error {
			want, ok := model[string(key)]
			if !ok || want.slice != e.slice || !bytes.Equal(want.v, e.v) {
				t.Fatalf("round %d: each gives %s in slice %d, model %+v, %v", round, key, e.slice, want, ok)
			}
			_, _, n := pt.at(mustFind(t, &pt, string(key), hashOf(string(key))))
			live += n
			return nil
		})
		for k, want := range model {
			e, ok := pt.get(k, hashOf(k))
			if !ok || e.slice != want.slice || !bytes.Equal(e.v, want.v) {
				t.Fatalf("round %d: get(%s) = %d %v after dropping slice 2; want slice %d", round, k, e.slice, ok, want.slice)
			}
		}
		if got := pt.size - pt.dead; got != live {
			t.Fatalf("round %d: size %d - dead %d = %d, live bytes %d", round, pt.size, pt.dead, got, live)
		}
		if _, ok := pt.sliceBlocks[2]; ok {
			t.Fatalf("round %d: slice 2 still has blocks", round)
		}
		freed := len(pt.free)
		if err := pt.set(7, memEntry{slice: 9, key: "new", v: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if freed > 0 && len(pt.free) != freed-1 {
			t.Fatalf("round %d: a new slice's block did not reuse a freed one (%d free before, %d after)", round, freed, len(pt.free))
		}
	}
}

func mustFind(t *testing.T, pt *memPart, key string, h uint64) uint64 {
	t.Helper()
	pos, ok := find(pt, key, h)
	if !ok {
		t.Fatalf("%s not found", key)
	}
	return pos
}
