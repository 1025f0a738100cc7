// Command onceflow is the batch tool of onceflow: it writes each new
// CloudEvent of a JSON Lines stream exactly once, across duplicates,
// reordering, reruns and crashes, with nothing but the binary and a state
// directory.
//
//	onceflow run     --state DIR --in FILE|- [--out FILE|-] [--rejects FILE]
//	                 [--order arrival|sequence] [--window DURATION] [--shards N]
//	                 [--max-event-bytes N]
//	onceflow inspect --state DIR --source S --id I
//	onceflow stats   --state DIR
//	onceflow gen     [--events N] [--dup RATE] [--bad RATE] [--keys K]
//	                 [--shuffle WINDOW] [--seed S] [--sequence] [--out FILE]
//
// `onceflow --help` and `onceflow COMMAND --help` explain every flag.
//
// # run
//
// run reads CloudEvents 1.0 JSON Lines, one event per line. Every new,
// valid event is written to --out as its original line (the bytes of the
// line without its "\n" or "\r\n", then "\n"). An event is new when no
// event with the same source and id was seen before, in this run or in an
// earlier run on the same --state within --window (default 7 days).
// Invalid lines — lines longer than --max-event-bytes (read without being
// buffered whole) and every class of bad input the decoder rejects — go
// to --rejects as {"line":N,"reason":"CLASS","error":"MESSAGE"}, where
// CLASS is [onceflow.Reason]'s stable name; processing continues.
//
// The tool is built on the public library only: the onceflow decoder, a
// pipeline.Pipeline whose handler does nothing, a dedup.Store in --state,
// and a pipeline.Sink that writes each group commit's new events to --out
// and fsyncs it before the group commits; the file's new length commits
// in the same bbolt transaction as the events' identities.
//
// The last line on standard error is a JSON summary:
//
//	{"read":N,"written":N,"duplicates":N,"rejected":N,"held":N,"seconds":S,"events_per_second":R}
//
// With --order arrival, read = written + duplicates + rejected, and held is
// 0. With --order sequence, held is the number of events held in the state
// at the end (by this run or an earlier one), and written also counts held
// events this run released (see below), so the figures balance only over
// a series of runs. When standard error
// is a terminal a progress bar is drawn (and cleared) above it; otherwise
// nothing else is printed on success.
//
// # Exit status
//
// 0 when the input was fully handled, rejected lines included; 1 on a
// runtime failure — I/O, a corrupt state, a state locked by another
// process (reported within about two seconds as "state is locked by
// another process"), an interrupt; 2 on a usage error, with the usage.
//
// # Crash safety
//
// After kill -9 at any moment, running the same command again yields an
// --out file in which every new valid event appears exactly once: on start
// the file is cut back to the length committed in the state, which removes
// lines written by a run that died before committing them, and those
// events, not committed either, are written again. Each output file has
// its own committed length, so a later run may write to another file. The
// state also keeps a checksum of the last 4 KiB of the committed part: a
// file shorter than its committed length, or whose committed end is not
// what onceflow wrote (cut, changed or replaced since), is reported as
// corrupt state and left as it is. A state written by a version without
// the checksum (an 8-byte committed length) is trusted on its first start
// under this version, which adds the checksum at once. An older onceflow
// refuses a state with the checksum (a checkpoint of 12 bytes) as corrupt,
// whether this version created or upgraded it: do not downgrade.
//
// # Caveats
//
// Crash safety cannot hold for --out - (standard output) or an --out that
// is not a regular file: lines written after the last commit are written
// again by the next run.
//
// onceflow owns its --out file: bytes appended to it by anything else
// are cut on the next start.
//
// onceflow owns its --state directory too. A state file emptied (cut to 0
// bytes) by something else is indistinguishable from one whose creation a
// crash interrupted, and is started afresh: the identities it held are
// forgotten, and their events are written again.
//
// With --shards above 1, events are routed to shards by id, so that all
// copies of an identity meet in one shard whatever their partitionkey; the
// output order is then the input order only among events of one id.
// --order sequence orders by key and so needs --shards 1: copies of one
// identity with different partitionkeys could otherwise be in flight in
// two shards at once.
//
// With --order sequence, early events are held in the state (and in
// memory, at most 65,536 of them) until the gap before them is filled;
// the summary's held counts them, and the run that fills the gap writes
// them, so its written may exceed what it read.
//
// inspect and stats open the state read-only (dedup.ReadOnly): they never
// write it, so they never expire anything, and they report it with the
// window of the last run. A run excludes them: they wait (at most two
// seconds) for a running run and fail if it does not finish; several of
// them may read at once.
package main
