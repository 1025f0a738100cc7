package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"
	onceflow "github.com/onceflow/onceflow"
)

// GopterParameters returns gopter parameters for runs successful tests of
// at most maxSize, seeded from GOPTER_SEED when set, and logs the seed with
// the command that reproduces a failure. Exported for the pipeline_test
// package's property tests.
func GopterParameters(t *testing.T, runs, maxSize int) *gopter.TestParameters {
	t.Helper()
	p := gopter.DefaultTestParameters()
	if s := os.Getenv("GOPTER_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("GOPTER_SEED=%q: %v", s, err)
		}
		p = gopter.DefaultTestParametersWithSeed(n)
	}
	p.MinSuccessfulTests = runs
	p.MaxSize = maxSize
	t.Logf("gopter seed %d (reproduce with GOPTER_SEED=%d go test -run '^%s$' ./pipeline)", p.Seed(), p.Seed(), t.Name())
	return p
}

// ringOp is one random operation on a chunkQueue. Its fields are exported
// for gen.Struct; each kind uses some of them.
type ringOp struct {
	Kind  int  // see the ringOp* constants
	N     int  // pushChunk: items in the chunk, 1..200
	Max   int  // pop: max, 1..300
	Pick  int  // recycle: which outstanding chunk (modulo their number)
	Reuse bool // pushChunk: start from q.take() when it has a chunk
	Spare int  // pushChunk: extra capacity of a fresh chunk, 0..8
}

const (
	ringOpPush = iota
	ringOpPushChunk
	ringOpPop
	ringOpRecycle
	ringOpTake
	ringOpKinds
)

func (o ringOp) String() string {
	switch o.Kind {
	case ringOpPush:
		return "push"
	case ringOpPushChunk:
		return fmt.Sprintf("pushChunk(n=%d reuse=%v spare=%d)", o.N, o.Reuse, o.Spare)
	case ringOpPop:
		return fmt.Sprintf("pop(max=%d)", o.Max)
	case ringOpRecycle:
		return fmt.Sprintf("recycle(%d)", o.Pick)
	default:
		return "take"
	}
}

// ringItem returns the item numbered id: a distinct event pointer and sz
// equal to id, so that either identifies it.
func ringItem(evs map[int]*onceflow.Event, id int) item {
	ev := &onceflow.Event{ID: strconv.Itoa(id)}
	evs[id] = ev
	return item{ev: ev, sz: int32(id)}
}

// ringJunk is what the test writes into reused chunks: it must never show
// up among the queued items.
var ringJunk = item{ev: &onceflow.Event{ID: "junk"}, sz: -1}

// ringQueued returns the ids of the items queued in q, oldest first,
// reading its chunks without taking them, or an error when the queue's
// bookkeeping is inconsistent.
func ringQueued(q *chunkQueue, evs map[int]*onceflow.Event) ([]int, error) {
	var ids []int
	if q.nc > len(q.ring) {
		return nil, fmt.Errorf("nc %d > ring length %d", q.nc, len(q.ring))
	}
	for i := range q.nc {
		c := q.ring[(q.head+i)&(len(q.ring)-1)]
		if len(c) == 0 {
			return nil, fmt.Errorf("queued chunk %d of %d is empty", i, q.nc)
		}
		for _, it := range c {
			id := int(it.sz)
			if it.sz < 0 || evs[id] != it.ev {
				return nil, fmt.Errorf("queued chunk %d holds a foreign item (sz %d, ev %p)", i, it.sz, it.ev)
			}
			ids = append(ids, id)
		}
	}
	if len(ids) != q.n {
		return nil, fmt.Errorf("chunks hold %d items, n = %d", len(ids), q.n)
	}
	return ids, nil
}

// popped is a chunk handed out by pop and not recycled yet, with the ids it
// held when it was handed out.
type popped struct {
	c   []item
	ids []int
}

// checkRing runs ops on a chunkQueue with the given chunkCap against a
// slice model, and returns "" or the first violation.
func checkRing(chunkCap int, ops []ringOp) string {
	q := &chunkQueue{chunkCap: chunkCap}
	evs := map[int]*onceflow.Event{}
	var model []int // queued ids, oldest first
	var out []popped
	var dst [][]item
	next := 0
	for step, op := range ops {
		fail := func(format string, args ...any) string {
			return fmt.Sprintf("chunkCap %d, step %d %v: %s", chunkCap, step, op, fmt.Sprintf(format, args...))
		}
		switch op.Kind {
		case ringOpPush:
			q.push(ringItem(evs, next))
			model = append(model, next)
			next++
		case ringOpPushChunk:
			var c []item
			if op.Reuse {
				c = q.take()
			}
			if c == nil {
				c = make([]item, 0, op.N+op.Spare)
			} else if len(c) != 0 {
				return fail("take returned a chunk of length %d, want 0", len(c))
			}
			for range op.N {
				c = append(c, ringItem(evs, next))
				model = append(model, next)
				next++
			}
			q.pushChunk(c)
		case ringOpPop:
			before, headLen := q.len(), 0
			if q.nc > 0 {
				headLen = len(q.ring[q.head])
			}
			dst = q.pop(dst[:0], op.Max)
			got := 0
			for k, c := range dst {
				if len(c) == 0 {
					return fail("pop returned an empty chunk")
				}
				ids := make([]int, len(c))
				for i, it := range c {
					ids[i] = int(it.sz)
					if it.sz < 0 || evs[ids[i]] != it.ev {
						return fail("pop returned a foreign item (sz %d)", it.sz)
					}
				}
				if len(model) < got+len(ids) || !slices.Equal(ids, model[got:got+len(ids)]) {
					return fail("pop chunk %d = %v, want the next queued %v", k, ids, model[got:min(len(model), got+len(ids))])
				}
				if k == 0 && len(c) < headLen && cap(c) != len(c) {
					return fail("split chunk has len %d cap %d, want cap == len", len(c), cap(c))
				}
				got += len(c)
				out = append(out, popped{c: c, ids: ids})
			}
			if got > op.Max {
				return fail("pop returned %d items, max %d", got, op.Max)
			}
			if before > 0 && got == 0 {
				return fail("pop returned nothing from a queue of %d", before)
			}
			model = model[got:]
		case ringOpRecycle:
			if len(out) == 0 {
				continue
			}
			k := op.Pick % len(out)
			c := out[k].c
			out = slices.Delete(out, k, k+1)
			clear(c)
			q.recycle(c)
		case ringOpTake:
			// Reuse a recycled chunk as a submitter would, filling all of
			// its capacity: that must not touch anything still queued or
			// handed out.
			c := q.take()
			if c == nil {
				continue
			}
			if len(c) != 0 {
				return fail("take returned a chunk of length %d, want 0", len(c))
			}
			for len(c) < cap(c) {
				c = append(c, ringJunk)
			}
		}
		if q.len() != len(model) {
			return fail("len() = %d, model holds %d", q.len(), len(model))
		}
		ids, err := ringQueued(q, evs)
		if err != nil {
			return fail("%v", err)
		}
		if !slices.Equal(ids, model) {
			return fail("queued %v, want %v", ids, model)
		}
		for k, p := range out {
			for i, it := range p.c {
				if int(it.sz) != p.ids[i] || evs[p.ids[i]] != it.ev {
					return fail("handed-out chunk %d changed at %d: sz %d, want %d", k, i, it.sz, p.ids[i])
				}
			}
		}
		if len(q.free) > maxFree {
			return fail("free list holds %d chunks, more than %d", len(q.free), maxFree)
		}
		if q.nc > 0 && len(q.ring)&(len(q.ring)-1) != 0 {
			return fail("ring length %d is not a power of two", len(q.ring))
		}
	}
	// Drain: what is left comes out in order.
	dst = q.pop(dst[:0], q.len())
	var rest []int
	for _, c := range dst {
		for _, it := range c {
			rest = append(rest, int(it.sz))
		}
	}
	if !slices.Equal(rest, model) || q.len() != 0 {
		return fmt.Sprintf("chunkCap %d: final drain %v (len %d after), want %v", chunkCap, rest, q.len(), model)
	}
	return ""
}

// TestChunkQueueProperty drives a chunkQueue with random pushes, chunk
// pushes (fresh or reused from take), pops, recycles and takes, and checks
// it against a slice model after every operation: exact FIFO order, len,
// pop's bounds, split chunks capped at their length, and that reusing a
// recycled chunk to its full capacity leaves queued and handed-out items
// unchanged.
func TestChunkQueueProperty(t *testing.T) {
	params := GopterParameters(t, 200, 300)
	opGen := gen.Struct(reflect.TypeFor[ringOp](), map[string]gopter.Gen{
		"Kind":  gen.IntRange(0, ringOpKinds-1),
		"N":     gen.IntRange(1, 200),
		"Max":   gen.IntRange(1, 300),
		"Pick":  gen.IntRange(0, 1<<16),
		"Reuse": gen.Bool(),
		"Spare": gen.IntRange(0, 8),
	})
	ps := gopter.NewProperties(params)
	ps.Property("chunkQueue matches a FIFO model", prop.ForAll(
		func(chunkCap int, ops []ringOp) string { return checkRing(chunkCap, ops) },
		gen.IntRange(0, 100),
		gen.SliceOf(opGen, reflect.TypeFor[ringOp]()),
	))
	var buf bytes.Buffer
	ok := ps.Run(gopter.NewFormatedReporter(true, 160, &buf))
	t.Log(buf.String())
	if !ok {
		t.Fatalf("property failed; reproduce with GOPTER_SEED=%d go test -run '^%s$' ./pipeline", params.Seed(), t.Name())
	}
}

// TestChunkQueueFixedSequence runs the property's check on a fixed long
// sequence, so that every operation kind runs many times whatever the seed.
func TestChunkQueueFixedSequence(t *testing.T) {
	var ops []ringOp
	for i := range 600 {
		ops = append(ops, ringOp{Kind: i * 7 % ringOpKinds, N: 1 + i*13%200, Max: 1 + i*31%300, Pick: i, Reuse: i%3 == 0, Spare: i % 9})
	}
	for _, chunkCap := range []int{0, 1, 2, 7, 64} {
		if msg := checkRing(chunkCap, ops); msg != "" {
			t.Fatal(msg)
		}
	}
}

func TestChunkQueueEdges(t *testing.T) {
	evs := map[int]*onceflow.Event{}
	mk := func(from, to int) []item { // items from..to-1
		var c []item
		for id := from; id < to; id++ {
			c = append(c, ringItem(evs, id))
		}
		return c
	}
	ids := func(chunks [][]item) [][]int {
		var out [][]int
		for _, c := range chunks {
			var x []int
			for _, it := range c {
				x = append(x, int(it.sz))
			}
			out = append(out, x)
		}
		return out
	}
	tests := []struct {
		name string
		run  func(t *testing.T, q *chunkQueue)
	}{
		{"pop on empty", func(t *testing.T, q *chunkQueue) {
			if got := q.pop(nil, 10); len(got) != 0 || q.len() != 0 {
				t.Fatalf("pop on a new queue = %v, len %d; want nothing, 0", ids(got), q.len())
			}
			q.push(ringItem(evs, 0))
			q.pop(nil, 1)
			if got := q.pop(nil, 10); len(got) != 0 || q.len() != 0 || q.head != 0 {
				t.Fatalf("pop on a drained queue = %v, len %d, head %d; want nothing, 0, 0", ids(got), q.len(), q.head)
			}
		}},
		{"pop max 0", func(t *testing.T, q *chunkQueue) {
			q.pushChunk(mk(0, 3))
			if got := q.pop(nil, 0); len(got) != 0 || q.len() != 3 {
				t.Fatalf("pop(0) = %v, len %d; want nothing, 3", ids(got), q.len())
			}
		}},
		{"pushChunk empty", func(t *testing.T, q *chunkQueue) {
			q.pushChunk(nil)
			q.pushChunk(make([]item, 0, 4))
			if q.len() != 0 || q.nc != 0 {
				t.Fatalf("after pushing empty chunks len %d, nc %d; want 0, 0", q.len(), q.nc)
			}
		}},
		{"pop max smaller than head chunk", func(t *testing.T, q *chunkQueue) {
			q.pushChunk(mk(0, 10))
			got := q.pop(nil, 3)
			if fmt.Sprint(ids(got)) != "[[0 1 2]]" || cap(got[0]) != 3 || q.len() != 7 {
				t.Fatalf("pop(3) = %v cap %d, len %d; want [[0 1 2]] cap 3, len 7", ids(got), cap(got[0]), q.len())
			}
			got = q.pop(nil, 4)
			if fmt.Sprint(ids(got)) != "[[3 4 5 6]]" || cap(got[0]) != 4 || q.len() != 3 {
				t.Fatalf("pop(4) = %v cap %d, len %d; want [[3 4 5 6]] cap 4, len 3", ids(got), cap(got[0]), q.len())
			}
			if got := q.pop(nil, 100); fmt.Sprint(ids(got)) != "[[7 8 9]]" || q.len() != 0 {
				t.Fatalf("pop(100) = %v, len %d; want [[7 8 9]], 0", ids(got), q.len())
			}
		}},
		{"pop does not split a later chunk", func(t *testing.T, q *chunkQueue) {
			q.pushChunk(mk(0, 3))
			q.pushChunk(mk(3, 8))
			if got := q.pop(nil, 6); fmt.Sprint(ids(got)) != "[[0 1 2]]" || q.len() != 5 {
				t.Fatalf("pop(6) = %v, len %d; want [[0 1 2]], 5", ids(got), q.len())
			}
			if got := q.pop(nil, 8); fmt.Sprint(ids(got)) != "[[3 4 5 6 7]]" {
				t.Fatalf("pop(8) = %v, want [[3 4 5 6 7]]", ids(got))
			}
		}},
		{"push after the head chunk was split", func(t *testing.T, q *chunkQueue) {
			q.chunkCap = 8
			for id := range 4 {
				q.push(ringItem(evs, id)) // one chunk, len 4 cap 8
			}
			head := q.pop(nil, 2)[0]
			q.push(ringItem(evs, 4)) // appended to the split remainder
			q.push(ringItem(evs, 5))
			if q.nc != 1 {
				t.Fatalf("%d chunks after pushes into the split remainder, want 1", q.nc)
			}
			// Recycle the handed-out part and reuse it to its full capacity.
			clear(head)
			q.recycle(head)
			c := q.take()
			for len(c) < cap(c) {
				c = append(c, ringJunk)
			}
			if got := q.pop(nil, 100); fmt.Sprint(ids(got)) != "[[2 3 4 5]]" {
				t.Fatalf("after reusing the split head, pop = %v, want [[2 3 4 5]]", ids(got))
			}
		}},
		{"push after a full head chunk was split", func(t *testing.T, q *chunkQueue) {
			q.chunkCap = 4
			for id := range 4 {
				q.push(ringItem(evs, id))
			}
			q.pop(nil, 1)
			q.push(ringItem(evs, 4)) // the remainder is full: a new chunk
			if q.nc != 2 || q.len() != 4 {
				t.Fatalf("nc %d, len %d; want 2, 4", q.nc, q.len())
			}
			if got := q.pop(nil, 100); fmt.Sprint(ids(got)) != "[[1 2 3] [4]]" {
				t.Fatalf("pop = %v, want [[1 2 3] [4]]", ids(got))
			}
		}},
		{"ring grows while wrapped", func(t *testing.T, q *chunkQueue) {
			next := 0
			for range 5 {
				q.pushChunk(mk(next, next+2))
				next += 2
			}
			q.pop(nil, 6) // head moves to 3 of 8
			for range 10 {
				q.pushChunk(mk(next, next+2)) // wraps, then grows to 16
				next += 2
			}
			var got []int
			for _, c := range q.pop(nil, q.len()) {
				for _, it := range c {
					got = append(got, int(it.sz))
				}
			}
			var want []int
			for id := 6; id < next; id++ {
				want = append(want, id)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("drained %v, want %v", got, want)
			}
		}},
		{"free list bounded", func(t *testing.T, q *chunkQueue) {
			for range 2 * maxFree {
				q.recycle(make([]item, 0, 4))
			}
			q.recycle(nil) // no capacity: not kept
			if len(q.free) != maxFree {
				t.Fatalf("free list holds %d chunks, want %d", len(q.free), maxFree)
			}
			for range maxFree {
				if q.take() == nil {
					t.Fatal("take returned nil with chunks free")
				}
			}
			if c := q.take(); c != nil {
				t.Fatalf("take on an empty free list = cap %d, want nil", cap(c))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, &chunkQueue{chunkCap: 64}) })
	}
}
