package pipeline

// ring is a FIFO of items with power-of-two capacity that grows by doubling
// when full. The shard's budget bounds its length, so its capacity never
// exceeds the next power of two above the shard's event limit; it never
// shrinks, so a steady stream reuses the same memory.
type ring struct {
	buf  []item
	head int // index of the oldest item
	n    int // number of items
}

func (r *ring) len() int { return r.n }

func (r *ring) push(it item) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = it
	r.n++
}

func (r *ring) grow() {
	size := max(16, 2*len(r.buf))
	buf := make([]item, size)
	for i := range r.n {
		buf[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = buf, 0
}

// popInto moves up to max items, oldest first, to the end of dst and returns
// it; the ring drops its references to them.
func (r *ring) popInto(dst []item, max int) []item {
	k := min(max, r.n)
	for range k {
		dst = append(dst, r.buf[r.head])
		r.buf[r.head] = item{}
		r.head = (r.head + 1) & (len(r.buf) - 1)
	}
	r.n -= k
	if r.n == 0 {
		r.head = 0
	}
	return dst
}
