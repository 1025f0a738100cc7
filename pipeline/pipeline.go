package pipeline

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/stage"
)

// Errors returned by the pipeline.
var (
	// ErrClosed is returned by Submit, TrySubmit and Do once the pipeline
	// stopped taking events (Shutdown was called, Run's context was
	// cancelled, or a fatal error stopped it), and by Run after Shutdown.
	ErrClosed = errors.New("pipeline: closed")
	// ErrBackpressure is returned by TrySubmit when the event's shard is
	// full (see WithQueueLimits).
	ErrBackpressure = errors.New("pipeline: backpressure: queue full")
	// ErrNoStore fails an event whose handler wrote state or outbox
	// messages in a pipeline without a store, where they could not be
	// kept.
	ErrNoStore = errors.New("pipeline: handler wrote effects but the pipeline has no store")
	// ErrInvalidEvent is returned by Submit and its variants for an event
	// that cannot be accepted: nil, without source or id, with a source, id
	// or partition key over onceflow.MaxIdentifierBytes, built in code and
	// failing onceflow's Event.Validate with a store, or, with sequence
	// ordering, without a sequence. The error also wraps the cause (a *onceflow.DecodeError
	// naming the field where there is one).
	ErrInvalidEvent = errors.New("pipeline: invalid event")
	// ErrAlreadyRunning is returned by a second call of Run.
	ErrAlreadyRunning = errors.New("pipeline: Run called more than once")
	// ErrAbandoned is the cause in the Ack of events that were accepted
	// but not finished when Run's context was cancelled.
	ErrAbandoned = errors.New("pipeline: abandoned: run cancelled before the event was done")
)

// Pipeline routes submitted events to key-sharded workers, runs the handler
// once per identity, commits outcomes and effects, and acknowledges. See the
// package documentation for the lifecycle, the guarantees and what blocks.
//
// All methods are safe for concurrent use.
type Pipeline struct {
	cfg    config
	h      stage.Func
	shards []*shard
	// commitCh carries handled batches from the shard workers to the
	// committer. The shard workers send; Run closes it after every worker
	// has returned. Its capacity is commitChanCap.
	commitCh chan *outBatch
	obPool   sync.Pool
	scratch  sync.Pool // *submitScratch
	// heldDecoder and redriveDecoder decode held events and dead letters
	// read back from the store.
	heldDecoder, redriveDecoder *onceflow.Decoder
	hashSeed                    maphash.Seed
	seqNexts                    map[string]seqNextAt            // committer only: per group, sequence ordering
	sinkSeen                    map[onceflow.Identity]struct{}  // committer only: per group, identities sent to the sink
	replaced                    map[replacedKey]replacedOutcome // committer only: see replacedOutcome

	mu      sync.Mutex // guards started
	started bool

	// waiters are the Do and Redrive callers waiting for an
	// acknowledgement, by event; see addWaiter.
	waitMu  sync.Mutex
	waiters map[*onceflow.Event][]chan Ack

	finished  chan struct{} // closed when Run has joined everything
	runCancel atomic.Pointer[context.CancelCauseFunc]
	finish    sync.Once
	fatal     atomic.Pointer[error]
	stopping  atomic.Bool // Run's context is done

	outboxWake      chan struct{} // capacity 1: a commit wrote outbox messages
	outboxDelivered atomic.Uint64
	outboxErrors    atomic.Uint64
	commits         atomic.Uint64
	committedEvents atomic.Uint64
	commitNanos     atomic.Int64
}

// New returns a pipeline that runs h for each event. It starts no
// goroutine: Run does.
func New(h stage.Func, opts ...Option) (*Pipeline, error) {
	if h == nil {
		return nil, errors.New("pipeline: New: nil handler")
	}
	cfg := defaults()
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("pipeline: New: nil option")
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.sink != nil && cfg.store == nil {
		return nil, errors.New("pipeline: WithSink requires WithStore")
	}
	if cfg.seq != nil {
		if cfg.store == nil {
			return nil, errors.New("pipeline: WithSequenceOrder requires WithStore")
		}
		if _, ok := cfg.store.(StateScanner); !ok {
			return nil, errors.New("pipeline: WithSequenceOrder requires a store that implements StateScanner")
		}
	}
	if cfg.outbox != nil {
		if _, ok := cfg.store.(OutboxStore); !ok {
			return nil, errors.New("pipeline: WithOutbox requires WithStore with a store that keeps an outbox")
		}
	}
	if cfg.budget != nil && cfg.retry == nil {
		return nil, errors.New("pipeline: WithRetryBudget requires WithRetry")
	}
	if !cfg.seeded {
		cfg.seed = uint64(time.Now().UnixNano())
	}
	if cfg.queueEvents < cfg.shards {
		return nil, fmt.Errorf("pipeline: queue limit of %d events is less than one per shard (%d shards)", cfg.queueEvents, cfg.shards)
	}
	p := &Pipeline{
		cfg:        cfg,
		h:          h,
		shards:     make([]*shard, cfg.shards),
		commitCh:   make(chan *outBatch, commitChanCap(cfg)),
		finished:   make(chan struct{}),
		hashSeed:   maphash.MakeSeed(),
		seqNexts:   make(map[string]seqNextAt),
		sinkSeen:   make(map[onceflow.Identity]struct{}),
		replaced:   make(map[replacedKey]replacedOutcome),
		waiters:    make(map[*onceflow.Event][]chan Ack),
		outboxWake: make(chan struct{}, 1),
	}
	p.obPool.New = func() any { return new(outBatch) }
	// Held events and dead letters were valid when they were accepted;
	// they are decoded again with every limit at its maximum, so that no
	// decoder option or event built in code can make them fail.
	dec, err := onceflow.NewDecoder(onceflow.WithMaxEventBytes(math.MaxInt), onceflow.WithMaxDepth(math.MaxInt),
		onceflow.WithMaxIdentifierBytes(onceflow.MaxIdentifierBytes))
	if err != nil {
		return nil, err
	}
	p.heldDecoder, p.redriveDecoder = dec, dec
	perEvents := cfg.queueEvents / cfg.shards
	perBytes := max(cfg.queueBytes/cfg.shards, 1)
	for i := range p.shards {
		p.shards[i] = newShard(p, i, perEvents, perBytes)
	}
	return p, nil
}

// Submit accepts ev for processing, blocking while ev's shard is full. It
// returns nil once ev is accepted: the pipeline will acknowledge it exactly
// once (see WithAck). Accepting is not acknowledging: ev is done only when
// its Ack arrives. Submit returns ctx's error if ctx ends first (a
// context already done when Submit is called accepts nothing), and
// ErrClosed once the pipeline stopped taking events — also when Submit
// races Shutdown: an event is either accepted and then processed, or
// refused with an error, never lost.
//
// An invalid event is refused with an error wrapping ErrInvalidEvent. No
// source, id or partition key may exceed onceflow.MaxIdentifierBytes. With
// a store, which may keep an accepted event (a dead letter, an event held
// for sequence ordering) and decode it again, an event built in code (no
// Raw) must also pass onceflow's Event.Validate: a scan of its attributes
// and Data, as decoding costs, without allocating. A decoded event costs
// a few comparisons.
//
// Submit may be called before Run; accepted events wait for Run. ev must
// not be modified after Submit.
func (p *Pipeline) Submit(ctx context.Context, ev *onceflow.Event) error {
	return p.submit(ctx, ev, nil, true)
}

// TrySubmit is Submit without blocking: when ev's shard is full it returns
// ErrBackpressure at once.
func (p *Pipeline) TrySubmit(ev *onceflow.Event) error {
	return p.submit(context.Background(), ev, nil, false)
}

// Do submits ev and waits for its acknowledgement, returning the final
// outcome or the reason the event is not done. If ctx ends after ev was
// accepted, Do returns ctx's error but ev is still processed and
// acknowledged through WithAck. Concurrent Do calls with the same *Event
// each get one acknowledgement of that event; when one of them is a
// duplicate, which call gets the duplicate's answer is unspecified.
func (p *Pipeline) Do(ctx context.Context, ev *onceflow.Event) (onceflow.Outcome, error) {
	w := make(chan Ack, 1)
	if err := p.submit(ctx, ev, w, true); err != nil {
		return onceflow.Outcome{}, err
	}
	select {
	case a := <-w:
		return a.Outcome, a.Err
	case <-ctx.Done():
		return onceflow.Outcome{}, ctx.Err()
	}
}

func (p *Pipeline) submit(ctx context.Context, ev *onceflow.Event, w chan Ack, block bool) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if err := p.check(ev); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	s := p.shards[shardOf(ev, len(p.shards))]
	return s.submit(ctx, newItem(ev, 0), w, block)
}

// errNilContext is returned by the methods that take a context when given
// a nil one.
var errNilContext = errors.New("pipeline: nil context (use context.Background())")

// ctxErr returns errNilContext for a nil ctx, else ctx.Err(): a submission
// with a context that has already ended accepts nothing.
func ctxErr(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	return ctx.Err()
}

// check returns why ev cannot be accepted, or nil. With a store, an event
// built in code (no Raw) must be one that Validate accepts, as the pipeline
// may store it and decode it again (without a store it never does); a
// decoded event was validated by its decoder, whose
// identifier limit is at most MaxIdentifierBytes, so only a Raw set by hand
// could slip a longer identifier past Validate: the length checks catch it.
func (p *Pipeline) check(ev *onceflow.Event) error {
	switch {
	case ev == nil:
		return errors.New("nil event")
	case ev.Source == "":
		return errors.New("empty source")
	case ev.ID == "":
		return errors.New("empty id")
	case p.cfg.seq != nil && ev.Sequence == 0:
		return errors.New("sequence ordering needs a positive sequence")
	}
	for _, f := range [...]struct{ name, v string }{{"source", ev.Source}, {"id", ev.ID}, {"partitionkey", ev.PartitionKey}} {
		if len(f.v) > onceflow.MaxIdentifierBytes {
			return &onceflow.DecodeError{Field: f.name, Err: onceflow.ErrInvalidIdentifier,
				Detail: fmt.Sprintf("%d bytes, limit %d (MaxIdentifierBytes)", len(f.v), onceflow.MaxIdentifierBytes)}
		}
	}
	if ev.Raw == nil && p.cfg.store != nil {
		return ev.Validate()
	}
	return nil
}

func shardOf(ev *onceflow.Event, n int) int { return stage.Shard(ev.Key(), n) }

// idHash hashes an identity for the shards' claim maps.
func (p *Pipeline) idHash(id onceflow.Identity) uint64 {
	return maphash.String(p.hashSeed, id.Source) ^ maphash.String(p.hashSeed, id.ID)*0x9e3779b97f4a7c15
}

// Run starts the shard workers (and the committer, with a store) and blocks
// until the pipeline has stopped and every goroutine it started has
// returned. It may be called once.
//
// Run returns nil after Shutdown has drained everything accepted (also
// when Shutdown was called before Run). When ctx
// is cancelled, Run abandons work in flight — nothing uncommitted is
// acknowledged as done; every accepted event not yet acknowledged gets an
// Ack with an error wrapping ErrAbandoned — and returns ctx's error. A
// fatal error (the store failing a commit, a sink failing) stops the
// pipeline the same way and is returned.
func (p *Pipeline) Run(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return ErrAlreadyRunning
	}
	p.started = true
	p.mu.Unlock()

	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p.runCancel.Store(&cancel)
	// stopping lets the workers' direct path poll for cancellation with
	// an atomic load per event instead of ctx.Err.
	stopWatch := context.AfterFunc(rctx, func() { p.stopping.Store(true) })
	defer stopWatch()

	var workers sync.WaitGroup
	for _, s := range p.shards {
		workers.Go(func() { s.run(rctx) })
	}
	var committer sync.WaitGroup
	if p.cfg.store != nil {
		committer.Go(func() { p.commitLoop(rctx) })
	}
	var outbox sync.WaitGroup
	committed := make(chan struct{})
	if p.cfg.outbox != nil {
		outbox.Go(func() { p.outboxLoop(rctx, committed) })
	}
	workers.Wait()
	close(p.commitCh) // every sender has returned
	committer.Wait()
	close(committed) // the outbox delivers what is left, then returns
	outbox.Wait()

	var err error
	if e := p.fatal.Load(); e != nil {
		err = *e
	} else if ctx.Err() != nil {
		err = ctx.Err()
	}
	p.finish.Do(func() { close(p.finished) })
	return err
}

// Shutdown stops intake — later Submits return ErrClosed — then waits until
// everything accepted has been handled, committed and acknowledged, and
// every goroutine has returned. If ctx ends first, Shutdown returns ctx's
// error and the pipeline keeps draining; cancel Run's context to abandon the
// rest. Draining needs Run: called before Run, Shutdown stops intake and
// waits (bounded by ctx) for Run to start and drain. Shutdown may be called
// more than once and concurrently.
func (p *Pipeline) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	for _, s := range p.shards {
		s.close()
	}
	select {
	case <-p.finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fail records the first fatal error and cancels the run.
func (p *Pipeline) fail(err error) {
	if p.fatal.CompareAndSwap(nil, &err) {
		p.cfg.logger.Error("pipeline stopped by a fatal error", "err", err)
	}
	if c := p.runCancel.Load(); c != nil {
		(*c)(err)
	}
}

// deliver hands one acknowledgement to the callback and to Do's waiter.
func (p *Pipeline) deliver(it *item, out onceflow.Outcome, err error) {
	if p.cfg.ack == nil && !it.hasWaiter() {
		return // nobody to tell
	}
	p.deliverAck(it, Ack{Event: it.ev, Outcome: out, Err: err})
}

// deliverEntry acknowledges a handled entry, with its dead letter if any.
func (p *Pipeline) deliverEntry(e *entry, out onceflow.Outcome, err error) {
	if p.cfg.ack == nil && !e.it.hasWaiter() {
		return // nobody to tell
	}
	a := Ack{Event: e.it.ev, Outcome: out, Err: err, Released: e.it.released()}
	if err == nil {
		a.DeadLetter = e.dl
	}
	p.deliverAck(&e.it, a)
}

func (p *Pipeline) deliverAck(it *item, a Ack) {
	if p.cfg.ack != nil {
		p.cfg.ack(a)
	}
	if it.hasWaiter() {
		p.takeWaiter(it.ev) <- a // capacity 1, one send: never blocks
	}
}

// addWaiter registers w as the waiter for the next acknowledgement of ev
// with a waiter flag; shard.submit calls it under the shard's lock, as it
// accepts the event. Waiters of the same event pointer are answered in the
// order they were added, which is the order their events were accepted:
// equal pointers share a key and a shard, whose events are acknowledged in
// order.
func (p *Pipeline) addWaiter(ev *onceflow.Event, w chan Ack) {
	p.waitMu.Lock()
	p.waiters[ev] = append(p.waiters[ev], w)
	p.waitMu.Unlock()
}

// takeWaiter removes and returns the oldest waiter of ev. Every item
// flagged itemWaiter has one, added as it was accepted.
func (p *Pipeline) takeWaiter(ev *onceflow.Event) chan Ack {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	ws := p.waiters[ev]
	w := ws[0]
	if len(ws) == 1 {
		delete(p.waiters, ev)
	} else {
		ws[0] = nil
		p.waiters[ev] = ws[1:]
	}
	return w
}

// maxCommitChan caps the committer channel's capacity (32 KiB of
// pointers), whatever the group size.
const maxCommitChan = 4096

// commitChanCap returns the committer channel's capacity: two groups'
// worth of batches (a worker hands on about a batch of events per round,
// often fewer) plus one per shard, at most maxCommitChan. The workers then
// go on handling while the committer commits a group and gathers the next.
// With two batches per shard, the default's 8, they waited on the channel
// for part of every commit: the in-memory pipeline took 220 ms per 200k
// events against 174 ms (docs/decisions.md). Memory stays bounded by the
// shards' budgets, which count every event until its Ack, not by this
// capacity.
func commitChanCap(cfg config) int {
	perGroup := cfg.groupEvents / cfg.batch // rounded up below, without the overflow of adding first
	if cfg.groupEvents%cfg.batch != 0 {
		perGroup++
	}
	return min(2*min(perGroup, maxCommitChan)+min(cfg.shards, maxCommitChan), maxCommitChan)
}
