// Package proptest checks a handler against onceflow's promise under the
// conditions that break naive pipelines: duplicate deliveries (in bursts),
// local and global reordering, skewed keys, transient and permanent handler
// failures, and crashes — restarts, runs cancelled at the pipeline's named
// crash points, and commits that fail before or after writing. Put one call
// in a test of your own:
//
//	func TestHandler(t *testing.T) {
//		proptest.CheckHandler(t, func(ext *proptest.External) stage.Func {
//			return newMyHandler(fakeMailer{ext})
//		})
//	}
//
// CheckHandler generates streams with gopter ([Streams], shaped by a
// [Profile]), runs each through a real pipeline on the in-memory store
// (or on bbolt with [OnDisk]), replays every delivery that was not
// acknowledged until all are, and checks the invariants below. A failing
// stream is shrunk to a small one and printed with the seed; the seed
// (WithSeed, or ONCEFLOW_SEED in the environment) reproduces the streams and
// everything injected into them.
//
// # The invariants
//
//   - Nothing acknowledged is lost: every delivery acknowledged without an
//     error has its outcome stored (done or dead-lettered), and every
//     delivery is acknowledged in the end.
//   - No effect twice: the handler never runs again for an event whose
//     outcome is committed, and an event's transactional effects never
//     commit twice.
//   - Per-key order: within a pipeline's life, the handler sees the events
//     of a key in the order they were submitted.
//   - Duplicates are answered with the first outcome: every
//     acknowledgement of an event carries the stored outcome, and only one
//     says it is not a duplicate.
//   - The final state equals a plain model: the handler applied once per
//     event, in the order of the pipeline's committed runs, over a map —
//     with no pipeline, no store, no duplicates, failures or crashes. The
//     handler state, the outbox messages, every event's outcome and result,
//     the dead letters and the outside effects (see [External]) must be
//     equal.
//
// # What it can and cannot see
//
// The check sees what a handler writes through onceflow (state and outbox,
// through fx), what it returns, and what it does through [External].
// It catches a handler that is not idempotent where that shows: one that
// keeps state in memory instead of in fx (the memory is lost at a restart
// and kept across a retry, so the results drift from the model), and one
// that performs outside effects without a stable idempotency key (a retry
// or a crash repeats them under a new key).
//
// It cannot see effects that bypass both fx and External — a write to a
// database of your own, a file, an HTTP call to a real server — unless they
// change what the handler writes or returns. Route them through a fake
// that calls External.Apply in the test. It models a receiver that honours
// idempotency keys: effects outside onceflow are at least once, and
// External shows whether they carry what makes them effectively once, not
// whether your real receiver deduplicates.
//
// The handler must be deterministic given the event and the state it
// reads: one that writes the time or a random number fails the model
// comparison, as it should — its effects would differ between a run and
// its retry.
//
// The pipeline's goroutine scheduling is not under the seed's control: the
// seed reproduces the streams, the faults and the crash points, and a
// failure that depends on an interleaving may need a few runs to show
// again.
//
// # Cost
//
// On the 2-core development machine, 1,000 streams of up to 100 events
// (about 36,000 deliveries, 1,400 crashes) take about 2 s, 7 s under the
// race detector; the defaults (100 streams of up to 40 events) take a
// fraction of a second. Shrinking a failure runs its stream again for
// every candidate: a few hundred runs of a small stream. With OnDisk each
// crash reopens a bbolt file, about three times slower.
package proptest
