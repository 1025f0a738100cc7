package pipeline

// chunkQueue is a shard's intake: a FIFO of items kept in chunks, so that
// a submitter hands over a whole share of a batch by moving one slice
// header, and the worker takes a batch by taking whole chunks, instead of
// both copying every item through a ring.
//
// Single items (Submit) are appended to the tail chunk while it has room,
// else to a new chunk of chunkCap items. The shard's budget bounds the
// number of items, and every chunk holds at least one, so the chunk ring
// and the free list never grow with the number of events submitted: the
// free list keeps at most maxFree chunks. Not safe for concurrent use: the
// shard's mutex guards it.
type chunkQueue struct {
	ring     [][]item // chunks, oldest at head; power-of-two length
	head     int
	nc       int // chunks queued
	n        int // items queued
	free     [][]item
	chunkCap int
}

// maxFree bounds the chunks a queue keeps for reuse.
const maxFree = 64

func (q *chunkQueue) len() int { return q.n }

// push appends one item.
func (q *chunkQueue) push(it item) {
	if q.nc > 0 {
		t := &q.ring[(q.head+q.nc-1)&(len(q.ring)-1)]
		if len(*t) < cap(*t) {
			*t = append(*t, it)
			q.n++
			return
		}
	}
	c := q.take()
	if c == nil {
		c = make([]item, 0, max(q.chunkCap, 1))
	}
	q.pushChunk(append(c, it))
}

// pushChunk appends the items of c, which the queue now owns.
func (q *chunkQueue) pushChunk(c []item) {
	if len(c) == 0 {
		return
	}
	if q.nc == len(q.ring) {
		ring := make([][]item, max(8, 2*len(q.ring)))
		for i := range q.nc {
			ring[i] = q.ring[(q.head+i)&(len(q.ring)-1)]
		}
		q.ring, q.head = ring, 0
	}
	q.ring[(q.head+q.nc)&(len(q.ring)-1)] = c
	q.nc++
	q.n += len(c)
}

// pop moves up to max items (at least one when the queue is not empty and
// max > 0) into dst as chunks, oldest first, and returns dst.
// A chunk longer than what remains of max is split; the part handed out is
// capped at its length, so that recycling it can never overwrite the rest.
func (q *chunkQueue) pop(dst [][]item, max int) [][]item {
	taken := 0
	for q.nc > 0 && taken < max {
		h := &q.ring[q.head]
		if l := len(*h); taken+l > max {
			if taken > 0 {
				break
			}
			dst = append(dst, (*h)[:max:max])
			*h = (*h)[max:]
			q.n -= max
			break
		}
		dst = append(dst, *h)
		taken += len(*h)
		q.n -= len(*h)
		*h = nil
		q.head = (q.head + 1) & (len(q.ring) - 1)
		q.nc--
	}
	if q.nc == 0 {
		q.head = 0
	}
	return dst
}

// recycle takes back a chunk handed out by pop, once its items are done
// and cleared (so that the free list holds no references to events).
// Chunks much larger than chunkCap (a big SubmitBatch share) are left to
// the garbage collector, so that a burst does not pin large arrays.
func (q *chunkQueue) recycle(c []item) {
	if len(q.free) < maxFree && cap(c) > 0 && cap(c) <= 4*max(q.chunkCap, 1) {
		q.free = append(q.free, c[:0])
	}
}

// take returns an empty chunk for reuse, or nil.
func (q *chunkQueue) take() []item {
	if len(q.free) == 0 {
		return nil
	}
	c := q.free[len(q.free)-1]
	q.free[len(q.free)-1] = nil
	q.free = q.free[:len(q.free)-1]
	return c
}
