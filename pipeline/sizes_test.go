package pipeline

import (
	"math"
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

// TestCommitChanCap checks that the committer channel holds two groups'
// worth of full batches plus one per shard, within its cap.
func TestCommitChanCap(t *testing.T) {
	for _, c := range []struct {
		shards, batch, group int
		want                 int
	}{
		{4, 64, 1000, 2*16 + 4}, // the defaults
		{1, 1, 1, 3},
		{8, 1000, 1000, 2 + 8},
		{2, 1, 1_000_000, maxCommitChan},
		{4, 64, 1024, 2*16 + 4},
		{4, 64, math.MaxInt, maxCommitChan}, // no overflow: New panicked in makechan
		{4, 1, math.MaxInt, maxCommitChan},
	} {
		cfg := defaults()
		cfg.shards, cfg.batch, cfg.groupEvents = c.shards, c.batch, c.group
		got := commitChanCap(cfg)
		if got != c.want {
			t.Errorf("shards %d, batch %d, group %d: capacity %d, want %d", c.shards, c.batch, c.group, got, c.want)
		}
		if got < maxCommitChan && got*c.batch < 2*c.group {
			t.Errorf("shards %d, batch %d, group %d: %d batches hold fewer than two groups", c.shards, c.batch, c.group, got)
		}
	}
}
