package dedup

import "testing"

// TestMemPartCollisions drives a partition with keys forced onto one hash
// slot: the side table keeps the index exact, and deleting the key that
// holds the slot moves a waiting key into it.
func TestMemPartCollisions(t *testing.T) {
	defer func(f func(string) uint64) { memHash = f }(memHash)
	memHash = func(k string) uint64 { // a, b and d collide
		if k == "c" {
			return 43
		}
		return 42
	}
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
	if e, ok := pt.idx[h]; !ok || e.key != "b" {
		t.Fatalf("slot after deleting its holder = %+v, %v; want b moved in", e, ok)
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
