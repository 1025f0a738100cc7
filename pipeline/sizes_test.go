package pipeline

import (
	"testing"
	"unsafe"
)

// TestHotStructSizes pins the sizes of what every event writes on one core
// and reads on another (docs/decisions.md, "Per-event structures are
// small"): a field added to one of them costs every event a cache line's
// share, so the change should be deliberate.
func TestHotStructSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"item (intake queue)", unsafe.Sizeof(item{}), 16},
		{"entry (outBatch, worker to committer)", unsafe.Sizeof(entry{}), 64},
		{"claim (pending map value)", unsafe.Sizeof(claim{}), 16},
	} {
		if c.got != c.want {
			t.Errorf("%s is %d bytes, want %d", c.name, c.got, c.want)
		}
	}
}
