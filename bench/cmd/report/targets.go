package main

import "fmt"

// The implementations of BenchmarkCompare, in the order of the tables.
const (
	onceflowMemory       = "onceflow-memory"
	onceflowMemorySubmit = "onceflow-memory-submit"
	onceflowBolt         = "onceflow-bbolt"
	boltRaw              = "bbolt-raw"
	watermillDedup       = "watermill-router-dedup"
	watermill            = "watermill-router"
	watermillDefault     = "watermill-router-default-dedup"
	baseline             = "channels-baseline"
)

func impls() []string {
	return []string{onceflowMemory, onceflowMemorySubmit, baseline, onceflowBolt, boltRaw, watermillDedup, watermill, watermillDefault}
}

func implNote(impl string) string {
	switch impl {
	case onceflowMemory:
		return "pipeline + `dedup.NewMemory()`, 4 shards, `SubmitBatch` of 64"
	case onceflowMemorySubmit:
		return "the same, one `Submit` per event"
	case baseline:
		return "hand-written: FNV-1a sharding, 4 workers, batches of 64 over bounded channels, exact per-shard map"
	case onceflowBolt:
		return "pipeline + `dedup.Open` (bbolt, fsync on), default group commit (1,000 events / 2 ms)"
	case boltRaw:
		return "one goroutine, sorted `Get`+`Put` of the identity keys, one `Update` per group (onceflow-bbolt's mean group)"
	case watermillDedup:
		return "Watermill v1.5.1 router on gochannel + `middleware.Deduplicator` keyed on the id (metadata field)"
	case watermill:
		return "the same router, no dedup (handles every delivery)"
	case watermillDefault:
		return "router + default `Deduplicator` (Adler-32 of the payload): **loses events**, see the finding"
	}
	return ""
}

// compareName is the benchmark name of impl in BenchmarkCompare.
func compareName(impl string) string { return fmt.Sprintf("Compare/impl=%s/dup=0.1", impl) }

// target is one acceptance target of issue 7: impl's events/s at least
// min times peer's, in the same run.
type target struct {
	impl, peer string
	min        float64
}

func targets() []target {
	return []target{
		{onceflowMemory, watermillDedup, 20},
		{onceflowMemory, baseline, 0.5},
		{onceflowBolt, boltRaw, 0.8},
	}
}

type checked struct {
	t    target
	r    ratio
	ok   bool // both measured
	pass bool
}

// shortBy is how many times faster impl must get to meet the target.
func (c checked) shortBy() float64 { return c.t.min / c.r.med }

func checkTargets(d *dataset) []checked {
	var out []checked
	for _, t := range targets() {
		c := checked{t: t}
		if d != nil {
			c.r, c.ok = d.ratio(compareName(t.impl), compareName(t.peer), "events/s")
		}
		c.pass = c.ok && c.r.med >= t.min
		out = append(out, c)
	}
	return out
}
