package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"sync/atomic"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/jsonl"
	"github.com/onceflow/onceflow/pipeline"
)

const runHelp = `Usage: onceflow run --state DIR --in FILE|- [flags]

Reads CloudEvents 1.0 JSON Lines (one event per line) and writes every new,
valid event to --out exactly once, as its original line. An event is new
when no event with the same source and id was seen before, in this run or
in an earlier run on the same --state (within --window). Invalid lines go
to --rejects; processing continues.

Flags:
  --state DIR         directory of the durable state (created if missing):
                      the identities seen and the committed output offset.
                      One run at a time: a second one fails within 2s with
                      "state is locked by another process" (exit 1). Required.
  --in FILE|-         input file, or - for standard input. Required.
  --out FILE|-        output file, or - for standard output (default -).
                      The file is appended to: a run continues it. On start
                      it is cut back to the offset committed in the state,
                      which removes lines written by a run that crashed
                      before it committed them; onceflow owns the file. A
                      file shorter than that offset, or whose committed end
                      changed, is refused (corrupt state) and not touched.
  --rejects FILE      where invalid lines are reported, one JSON object per
                      line: {"line":N,"reason":"CLASS","error":"MESSAGE"},
                      N counting from 1; the file is rewritten by each run.
                      Without it rejected lines are only counted. CLASS is
                      one of malformed_json, wrong_type, missing_attribute,
                      event_too_large, too_deep, invalid_identifier,
                      duplicate_member, invalid_utf8, unsupported_specversion,
                      bad_sequence, bad_time.
  --order arrival|sequence
                      arrival (default): events are written as they arrive;
                      with one shard in input order. sequence: each key's
                      events (the key is partitionkey, or source without
                      it) are written in ascending "sequence", contiguous
                      from 1. An event that arrives before its turn is held
                      durably in the state and written when the gap before
                      it is filled, in this run or a later one (counted as
                      held until then). Lines without sequence are rejected
                      (missing_attribute); an event whose key and sequence
                      belong to another event is rejected as
                      sequence_conflict. At most 65,536 events can be held;
                      beyond that the run fails (exit 1). Needs --shards 1.
  --window DURATION   how long identities are remembered, e.g. 24h or 720h
                      (default 168h). A duplicate arriving later is
                      written again.
  --shards N          key-sharded workers (default 1). With more than one,
                      output order between events of different ids is not
                      the input order.
  --max-event-bytes N longest line accepted, in bytes (default 1048576);
                      longer lines are rejected as event_too_large without
                      being buffered whole.

Crash safety: after kill -9 at any moment, running the same command again
yields an --out file holding every new valid event exactly once: each group
of lines is written and fsync'd, then its identities and the new file
offset commit in one transaction. This cannot hold for --out - (standard
output), or any --out that is not a regular file: lines written after the
last commit are written again by the next run.

Summary: the last line on standard error is one JSON object:
  {"read":N,"written":N,"duplicates":N,"rejected":N,"held":N,
   "seconds":S,"events_per_second":R}
read counts input lines. With --order arrival, read = written +
duplicates + rejected, and held is 0. With --order sequence, held is the
number of events held in the state at the end (by this run or an earlier
one), and written also counts held events this run released, so the
figures balance only over a series of runs.
When standard error is a terminal a progress bar is drawn above it.

Exit status: 0 when the input was fully handled (rejects included), 1 on a
runtime failure (I/O, corrupt state, locked state, interrupted), 2 on a
usage error.
`

// stateFile is the name of the store inside --state.
const stateFile = "onceflow.db"

// maxHeld bounds the events held for sequence ordering.
const maxHeld = 64 * 1024

// lockTimeout bounds the wait for a state held by another process.
const lockTimeout = 2 * time.Second

// runConfig is the parsed command line of run.
type runConfig struct {
	state, in, out, rejects string
	order                   string
	window                  time.Duration
	shards                  int
	maxEventBytes           int
	// Tuning and diagnostics, not in the help. The defaults were chosen
	// on the 1M-event bench-cli stream (see BENCHMARKS.md): group
	// commits of up to 16,384 events or 100 ms keep fsyncs to a few per
	// second; shard batches of up to 8,192 events let the shard work on
	// while the committer commits (the committer channel holds two
	// groups' worth of batches plus one per shard, and the committer does
	// not read it during a commit); the outcome cache is off because a
	// batch run seldom asks for an outcome twice and the cache's upkeep
	// cost more than the store reads it saved (about 2.4 s of CPU per
	// million events).
	groupEvents int
	groupDelay  time.Duration
	chunk       int
	cpuProfile  string
	cacheItems  int
	capacity    int
	timing      bool
	batch       int
	trace       string
}

func parseRun(args []string, stdout, stderr io.Writer) (*runConfig, int, bool) {
	c := &runConfig{}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&c.state, "state", "", "")
	fs.StringVar(&c.in, "in", "", "")
	fs.StringVar(&c.out, "out", "-", "")
	fs.StringVar(&c.rejects, "rejects", "", "")
	fs.StringVar(&c.order, "order", "arrival", "")
	c.window = 7 * 24 * time.Hour
	fs.Var((*durationFlag)(&c.window), "window", "")
	fs.IntVar(&c.shards, "shards", 1, "")
	fs.IntVar(&c.maxEventBytes, "max-event-bytes", defaultMaxEventBytes, "")
	fs.IntVar(&c.groupEvents, "group-events", 16384, "")
	c.groupDelay = 100 * time.Millisecond
	fs.Var((*durationFlag)(&c.groupDelay), "group-delay", "")
	fs.IntVar(&c.chunk, "chunk", 256, "")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "")
	fs.IntVar(&c.cacheItems, "cache-items", 0, "")
	fs.IntVar(&c.capacity, "capacity", 10_000_000, "")
	fs.BoolVar(&c.timing, "timing", false, "")
	fs.IntVar(&c.batch, "batch", 8192, "")
	fs.StringVar(&c.trace, "trace", "", "")
	if code, done := parseFlags(fs, runHelp, args, stdout, stderr); done {
		return nil, code, true
	}
	if err := c.validate(); err != nil {
		return nil, reportUsage(stderr, "run", runHelp, err), true
	}
	return c, 0, false
}

// windowSlices is into how many time slices --window is cut (dedup's
// default): expiry forgets a slice at a time.
const windowSlices = 8

// durationFlag is a time.Duration flag whose parse error says what is
// wrong: the flag package's own says only "parse error".
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }

func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		// Well formed but refused: too long.
		wellFormed := regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)
		if wellFormed.MatchString(s) {
			return fmt.Errorf("too long: at most %v", time.Duration(math.MaxInt64).Truncate(time.Hour))
		}
		return fmt.Errorf("not a duration such as 168h, 90m or 1h30m: %w", err)
	}
	*d = durationFlag(v)
	return nil
}

// nopHandler is the handler of the pipelines validate builds to check
// options; it never runs.
func nopHandler(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) { return nil, nil }

func (c *runConfig) validate() error {
	switch {
	case c.state == "":
		return usagef("--state is required")
	case c.in == "":
		return usagef("--in is required")
	case c.out == "":
		return usagef("--out must not be empty (use - for standard output)")
	case c.order != "arrival" && c.order != "sequence":
		return usagef("--order %q: must be arrival or sequence", c.order)
	case c.order == "sequence" && c.shards > 1:
		// Copies of one identity with different partitionkeys would go
		// to different shards, where neither sees the other in flight.
		return usagef("--order sequence needs --shards 1")
	case c.window <= 0:
		return usagef("--window %v: must be positive", c.window)
	case c.window < windowSlices*time.Millisecond:
		// dedup's own error names slices, which the CLI does not expose.
		return usagef("--window %v: must be at least %v (it is cut into %d slices of at least 1ms)",
			c.window, windowSlices*time.Millisecond, windowSlices)
	case c.shards < 1 || c.shards > 1024:
		return usagef("--shards %d: must be in [1, 1024]", c.shards)
	case c.maxEventBytes < 1 || c.maxEventBytes > 1<<30:
		return usagef("--max-event-bytes %d: must be in [1, 1073741824]", c.maxEventBytes)
	case c.chunk < 1 || c.chunk > 1<<16:
		return usagef("--chunk %d: must be in [1, 65536]", c.chunk)
	case c.rejects != "" && c.rejects == c.out:
		return usagef("--rejects and --out name the same file")
	case c.in != "-" && (c.in == c.out || c.in == c.rejects):
		return usagef("--in must differ from --out and --rejects")
	}
	if c.in != "-" {
		if st, err := os.Stat(c.in); err == nil && st.IsDir() {
			return usagef("--in %s is a directory", c.in)
		}
	}
	// The options the store and the pipeline check again, checked here so
	// that a bad value is a usage error, before anything is created.
	for _, o := range []struct {
		flag string
		val  any
		opt  dedup.Option
	}{
		{"--window", c.window, dedup.WithWindow(c.window)},
		{"--capacity", c.capacity, dedup.WithCapacity(c.capacity)},
		{"--cache-items", c.cacheItems, dedup.WithCacheItems(c.cacheItems)},
	} {
		if err := dedup.CheckOptions(o.opt); err != nil {
			return usagef("%s %v: %v", o.flag, o.val, err)
		}
	}
	for _, o := range []struct {
		flag string
		opt  pipeline.Option
	}{
		{"--batch", pipeline.WithBatchSize(c.batch)},
		{"--group-events and --group-delay", pipeline.WithGroupCommit(c.groupEvents, c.groupDelay)},
	} {
		if _, err := pipeline.New(nopHandler, o.opt); err != nil { // New starts nothing
			return usagef("%s: %v", o.flag, err)
		}
	}
	// The same files under other names (links, relative paths, files not
	// created yet), and files inside the state directory, which onceflow
	// owns: writing --out or --rejects there would destroy the state.
	state := canonical(c.state)
	names := []struct{ flag, path string }{{"--in", c.in}, {"--out", c.out}, {"--rejects", c.rejects}}
	for i, a := range names {
		if a.path == "" || a.path == "-" {
			continue
		}
		ca := canonical(a.path)
		if rel, err := filepath.Rel(state, ca); err == nil && filepath.IsLocal(rel) {
			return usagef("%s %s is inside the --state directory %s, which onceflow owns", a.flag, a.path, c.state)
		}
		for _, b := range names[i+1:] {
			if b.path == "" || b.path == "-" {
				continue
			}
			fa, errA := os.Stat(a.path)
			fb, errB := os.Stat(b.path)
			if ca == canonical(b.path) || errA == nil && errB == nil && os.SameFile(fa, fb) {
				return usagef("%s and %s name the same file", a.flag, b.flag)
			}
		}
		if fa, err := os.Stat(a.path); err == nil {
			if fs, err := os.Stat(filepath.Join(c.state, stateFile)); err == nil && os.SameFile(fa, fs) {
				return usagef("%s %s is the state file (a link to it)", a.flag, a.path)
			}
		}
	}
	return nil
}

// canonical returns path made absolute and clean, with the symbolic links
// of its longest existing prefix resolved, so that two names of one file
// compare equal even before the file exists.
func canonical(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	rest := ""
	for p := abs; ; p = filepath.Dir(p) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		if filepath.Dir(p) == p {
			return abs
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// summary is the last line a run prints on standard error.
type summary struct {
	Read            int64   `json:"read"`
	Written         int64   `json:"written"`
	Duplicates      int64   `json:"duplicates"`
	Rejected        int64   `json:"rejected"`
	Held            int64   `json:"held"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
}

// counters are updated by the reader and the pipeline's goroutines and
// read by the progress bar.
type counters struct {
	read, rejected, written, duplicates, held atomic.Int64
}

func cmdRun(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c, code, done := parseRun(args, stdout, stderr)
	if done {
		return code
	}
	start := time.Now()
	var cnt counters
	err := c.execute(ctx, &cnt, stdin, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "onceflow run: %v\n", err)
	}
	sec := time.Since(start).Seconds()
	s := summary{
		Read:       cnt.read.Load(),
		Written:    cnt.written.Load(),
		Duplicates: cnt.duplicates.Load(),
		Rejected:   cnt.rejected.Load(),
		Held:       cnt.held.Load(),
		Seconds:    math.Round(sec*1000) / 1000,
	}
	if sec > 0 {
		s.EventsPerSecond = math.Round(float64(s.Read) / sec)
	}
	line, _ := json.Marshal(s) // a struct of numbers: cannot fail
	fmt.Fprintf(stderr, "%s\n", line)
	if err != nil {
		return exitFailure
	}
	return exitOK
}

// execute runs the pipeline over the input. It returns nil when the input
// was fully handled.
func (c *runConfig) execute(ctx context.Context, cnt *counters, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	if c.trace != "" {
		f, err := os.Create(c.trace)
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer trace.Stop()
	}

	var in io.Reader = stdin
	size := int64(-1)
	if c.in != "-" {
		f, err := openInput(ctx, c.in)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		in = f
	}
	if size < 0 {
		// A pipe, a terminal or a FIFO can block a read for ever: read
		// it so that an interrupt still ends the run.
		in = &ctxReader{ctx: ctx, r: in, res: make(chan readResult, 1)}
	}
	lines, err := jsonl.NewReader(in, c.maxEventBytes)
	if err != nil {
		return err
	}
	dec, err := onceflow.NewDecoder(onceflow.WithMaxEventBytes(c.maxEventBytes))
	if err != nil {
		return err
	}

	store, err := openState(c.state, dedup.WithWindow(c.window), dedup.WithSlices(windowSlices),
		dedup.WithCacheItems(c.cacheItems), dedup.WithCapacity(c.capacity))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the state: %w", cerr)
		}
	}()

	sink, err := openSink(store, c.out, stdout)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sink.close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing --out: %w", cerr)
		}
	}()
	sink.written = &cnt.written

	rej, err := openRejects(c.rejects)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := rej.close(); cerr != nil && err == nil {
			err = fmt.Errorf("--rejects: %w", cerr)
		}
	}()

	acks := &acker{cnt: cnt, rej: rej, sequence: c.order == "sequence"}
	opts := []pipeline.Option{
		pipeline.WithStore(store),
		pipeline.WithSink(sink),
		pipeline.WithShards(c.shards),
		pipeline.WithBatchSize(c.batch),
		pipeline.WithQueueLimits(64*1024, 64<<20),
		pipeline.WithGroupCommit(c.groupEvents, c.groupDelay),
		pipeline.WithAck(acks.ack),
	}
	if acks.sequence {
		acks.lines = make(map[*onceflow.Event]int64)
		// The total bounds the memory of held events; a per-key bound
		// below it would only fail files whose keys are few.
		opts = append(opts, pipeline.WithSequenceOrder(pipeline.SequenceOptions{MaxHeldPerKey: maxHeld, MaxHeld: maxHeld}))
	}
	p, err := pipeline.New(passThrough, opts...)
	if err != nil {
		return err
	}

	bar := newProgress(stderr, size, cnt)
	defer bar.finish()

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- p.Run(rctx) }()

	feedErr := c.feed(rctx, p, lines, dec, rej, acks, bar)
	if feedErr != nil {
		cancel() // abandon what is in flight: nothing uncommitted is kept
		if err := <-runDone; err != nil && !errors.Is(err, context.Canceled) {
			return err // the pipeline's failure is the cause
		}
		if ctx.Err() != nil {
			return interrupted(ctx.Err())
		}
		return feedErr
	}
	if err := p.Shutdown(ctx); err != nil {
		cancel()
		<-runDone
		return interrupted(err)
	}
	if err := <-runDone; err != nil {
		return interrupted(err)
	}
	cnt.held.Store(p.Stats().Held)
	if err := acks.err(); err != nil {
		return err
	}
	if c.timing {
		st := p.Stats()
		fmt.Fprintf(stderr, "timing: commits %d, commit %v (sink write %v, sync %v), events/commit %.0f\n",
			st.Commits, st.CommitTime.Round(time.Millisecond), sink.writeTime.Round(time.Millisecond),
			sink.syncTime.Round(time.Millisecond), st.EventsPerCommit())
	}
	bar.set(lines.Offset())
	return nil
}

// openInput opens the file at path for reading. Opening a FIFO blocks
// until a writer opens it; an interrupt (ctx) ends the wait, and the file,
// if it opens later, is closed.
func openInput(ctx context.Context, path string) (*os.File, error) {
	if st, err := os.Stat(path); err == nil && st.Mode()&os.ModeNamedPipe == 0 {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		return f, nil
	}
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			return nil, fmt.Errorf("input: %w", o.err)
		}
		return o.f, nil
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.f != nil {
				o.f.Close()
			}
		}()
		return nil, interrupted(ctx.Err())
	}
}

// ctxReader reads r from a goroutine per Read, so that a Read blocked on a
// pipe or a terminal returns ctx's error when ctx ends: the run is then
// interrupted, and the goroutine stays blocked until the process exits.
// The goroutine reads into a buffer of its own, never into the caller's.
// Not safe for concurrent use.
type ctxReader struct {
	ctx  context.Context
	r    io.Reader
	buf  []byte
	res  chan readResult // capacity 1
	busy bool            // a read is in flight
}

type readResult struct {
	n   int
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if !c.busy {
		if len(c.buf) < len(p) {
			c.buf = make([]byte, len(p))
		}
		buf, r, res := c.buf[:len(p)], c.r, c.res
		c.busy = true
		go func() {
			n, err := r.Read(buf)
			res <- readResult{n, err}
		}()
	}
	select {
	case r := <-c.res:
		c.busy = false
		return copy(p, c.buf[:r.n]), r.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}

// interrupted explains a cancelled run.
func interrupted(err error) error {
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted: the output holds what was committed; run the same command again to go on")
	}
	return err
}

// passThrough is the handler: the CLI writes events, it does not act on
// them, so the handler does nothing and the sink writes each first copy.
func passThrough(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) {
	return nil, nil
}

// feed reads, decodes and submits every line, rejecting invalid ones.
func (c *runConfig) feed(ctx context.Context, p *pipeline.Pipeline, lines *jsonl.Reader, dec *onceflow.Decoder, rej *rejects, acks *acker, bar *progress) error {
	cnt := acks.cnt
	const chunkBytes = 1 << 20
	chunk := make([]*onceflow.Event, 0, c.chunk)
	size := 0
	submit := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := p.SubmitBatch(ctx, chunk)
		clear(chunk)
		chunk, size = chunk[:0], 0
		if err != nil {
			return interrupted(err)
		}
		bar.set(lines.Offset())
		return nil
	}
	for {
		line, num, err := lines.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, jsonl.ErrLineTooLong) {
			return fmt.Errorf("reading %s: %w", c.inName(), err)
		}
		cnt.read.Add(1)
		var ev *onceflow.Event
		if err == nil {
			ev, err = dec.Decode(line)
		}
		if err == nil && acks.sequence && ev.Sequence == 0 {
			err = &onceflow.DecodeError{Field: "sequence", Err: onceflow.ErrMissingAttribute, Detail: "required with --order sequence"}
		}
		if err != nil {
			cnt.rejected.Add(1)
			if err := rej.add(num, err); err != nil {
				return err
			}
			continue
		}
		acks.submitted(ev, num)
		if c.shards > 1 {
			// The pipeline shards by key and finds in-flight duplicates
			// within a shard. Copies of one identity may carry different
			// partitionkeys: the sink would still get only the copy the
			// store keeps, but routing by id sends them all to one shard,
			// where a later copy meets the first one's claim and is not
			// handled at all. Only the routing changes: the line is
			// written as read.
			ev.PartitionKey = ev.ID
		}
		chunk = append(chunk, ev)
		size += len(ev.Raw)
		if len(chunk) == cap(chunk) || size >= chunkBytes {
			if err := submit(); err != nil {
				return err
			}
		}
	}
	return submit()
}

func (c *runConfig) inName() string {
	if c.in == "-" {
		return "standard input"
	}
	return c.in
}

// openState opens the store in dir, creating dir if needed.
func openState(dir string, opts ...dedup.Option) (*dedup.Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	opts = append(opts, dedup.WithLockTimeout(lockTimeout))
	store, err := dedup.Open(filepath.Join(dir, stateFile), opts...)
	if errors.Is(err, dedup.ErrLocked) {
		return nil, fmt.Errorf("state %s is locked by another process (another onceflow run, inspect or stats on it?): %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", dir, err)
	}
	return store, nil
}

// rejects writes reject records; a nil *rejects only counts. Its methods
// are safe for concurrent use.
type rejects struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

// rejectRecord is one line of --rejects.
type rejectRecord struct {
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
	Error  string `json:"error"`
}

func openRejects(path string) (*rejects, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--rejects: %w", err)
	}
	return &rejects{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// add reports line as rejected for cause, classed by onceflow.Reason.
func (r *rejects) add(line int64, cause error) error {
	return r.addReason(line, onceflow.Reason(cause), cause)
}

func (r *rejects) addReason(line int64, reason string, cause error) error {
	if r == nil {
		return nil
	}
	b, err := json.Marshal(rejectRecord{Line: line, Reason: reason, Error: cause.Error()})
	if err != nil {
		return fmt.Errorf("--rejects: %w", err)
	}
	b = append(b, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.w.Write(b); err != nil {
		return fmt.Errorf("--rejects: %w", err)
	}
	return nil
}

func (r *rejects) close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.w.Flush()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}
