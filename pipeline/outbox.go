package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/retry"
)

// OutboxStore is implemented by stores that keep outbox messages
// (dedup.Store does). WithOutbox needs it.
type OutboxStore interface {
	// PendingOutbox returns at most max committed messages not yet
	// deleted, oldest first.
	PendingOutbox(max int) ([]onceflow.OutboxEntry, error)
	// DeleteOutbox removes delivered messages.
	DeleteOutbox(seqs []uint64) error
}

// WithOutbox delivers the outbox messages handlers emit (Effects.Emit)
// after they commit: deliver is called once per message, in commit order,
// from one goroutine that Run owns, and the message is deleted from the
// store once deliver returns nil. Delivery is at least once — a crash
// between deliver and the delete delivers the message again after a
// restart — so the receiver drops repeats by Message.Key, the stable
// idempotency key.
//
// A failed delivery — deliver returned an error or panicked — is counted
// in Stats.OutboxErrors, logged (a panic's stack once per run of
// failures) and retried retryAfter later (default 1 s when zero) or at the
// next commit that emits messages. A panic does not end the process, so a
// message that makes deliver panic cannot crash every run that starts on
// the store. Messages are delivered in order, one at a time, so a message
// that deliver keeps refusing holds back every message committed after
// it: deliver should accept (and park elsewhere) a message it can never
// deliver.
//
// Messages left when the pipeline stops are delivered by the next run.
// Shutdown waits for the pending messages to be delivered, bounded by its
// context. Requires WithStore with an OutboxStore.
func WithOutbox(deliver func(ctx context.Context, m onceflow.Message) error, retryAfter time.Duration) Option {
	return optionFunc(func(c *config) error {
		if deliver == nil {
			return fmt.Errorf("pipeline: WithOutbox(nil)")
		}
		if retryAfter < 0 {
			return fmt.Errorf("pipeline: WithOutbox: negative retry delay %v", retryAfter)
		}
		if retryAfter == 0 {
			retryAfter = time.Second
		}
		c.outbox, c.outboxRetry = deliver, retryAfter
		return nil
	})
}

// outboxLoop is the outbox goroutine: it delivers pending messages whenever
// a commit wrote some (and once at start), until done is closed — then it
// delivers what is left and returns — or ctx ends.
func (p *Pipeline) outboxLoop(ctx context.Context, done <-chan struct{}) {
	st := p.cfg.store.(OutboxStore)
	finishing, stackLogged := false, false
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		err := p.deliverOutbox(ctx, st)
		if err == nil {
			stackLogged = false
		}
		if err == nil && finishing {
			return // the committer is done and everything pending is delivered
		}
		var again <-chan time.Time
		if err != nil {
			p.outboxErrors.Add(1)
			// The stack of a panic is logged once per run of failures: a
			// message that keeps failing is retried after every commit
			// too, and its stack would fill the log.
			if pe, ok := errors.AsType[*retry.PanicError](err); ok && !stackLogged {
				stackLogged = true
				p.cfg.logger.Warn("outbox delivery failed; will retry", "err", err, "stack", string(pe.Stack))
			} else {
				p.cfg.logger.Warn("outbox delivery failed; will retry", "err", err)
			}
			timer.Reset(p.cfg.outboxRetry)
			again = timer.C
		}
		doneC := done
		if finishing {
			doneC = nil // closed: wait for the retry timer instead
		}
		select {
		case <-p.outboxWake:
		case <-again:
		case <-doneC:
			finishing = true
		case <-ctx.Done():
			return
		}
		timer.Stop()
	}
}

// deliverOne calls the user's deliver function for m; a panic in it is
// returned as a failed delivery wrapping a *retry.PanicError, which holds
// the stack and whose message quotes the panic value cut to 200 bytes, so
// that it can neither flood nor forge a log line.
func (p *Pipeline) deliverOne(ctx context.Context, m onceflow.Message) error {
	err := retry.Call(func() error { return p.cfg.outbox(ctx, m) })
	if pe, ok := err.(*retry.PanicError); ok { // as Call returns it, not an error deliver returned
		return fmt.Errorf("the outbox deliver function panicked: %w", pe)
	}
	return err
}

// deliverOutbox delivers every pending message, oldest first.
func (p *Pipeline) deliverOutbox(ctx context.Context, st OutboxStore) error {
	for {
		page, err := st.PendingOutbox(256)
		if err != nil {
			return fmt.Errorf("%w: reading the outbox: %w", onceflow.ErrStorage, err)
		}
		if len(page) == 0 {
			return nil
		}
		seqs := make([]uint64, 0, len(page))
		var derr error
		for _, e := range page {
			if derr = p.deliverOne(ctx, e.Message); derr != nil {
				break
			}
			seqs = append(seqs, e.Seq)
		}
		if err := st.DeleteOutbox(seqs); err != nil {
			return fmt.Errorf("%w: deleting delivered outbox messages: %w", onceflow.ErrStorage, err)
		}
		p.outboxDelivered.Add(uint64(len(seqs)))
		if derr != nil {
			return fmt.Errorf("delivering outbox message: %w", derr)
		}
	}
}
