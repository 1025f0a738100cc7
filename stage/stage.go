// Package stage defines a processing step, [Func], and the pure pieces the
// pipeline builds its key-sharded workers from: [Chain] to compose steps,
// [Shard] to map a key to a worker, and [Call] to run a step with panic
// recovery.
//
// A stage is synchronous and owns no goroutines: it is a function over one
// event, testable with a slice in and a slice out ([Apply]). The pipeline
// package owns every goroutine and channel and calls stages from its shard
// workers, one event at a time per key.
package stage

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/cespare/xxhash/v2"
	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/retry"
)

// Func handles one event. It runs on the shard worker that owns ev's key:
// calls for equal keys never overlap and come in order; calls for different
// keys may run in parallel.
//
// It writes transactional effects through fx (state scoped to ev.Key(), and
// outbox messages) and returns a small result (at most
// [onceflow.MaxResultBytes]) that is stored as the event's outcome. A
// non-nil error means the event is not done: its effects are discarded.
// Effects outside onceflow should carry fx.IdempotencyKey(step).
//
// A Func must not retain fx after it returns, and must not modify ev. The
// pipeline keeps the returned result slice; the Func must not modify it
// afterwards.
type Func func(ctx context.Context, ev *onceflow.Event, fx *onceflow.Effects) (result []byte, err error)

// Chain returns a Func that runs fs in order on the same event and effects,
// stopping at the first error. The result is the last stage's result. A
// validation step (for example a payload schema check) is a stage placed
// first in the chain.
func Chain(fs ...Func) Func {
	switch len(fs) {
	case 0:
		return func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) { return nil, nil }
	case 1:
		return fs[0]
	}
	fs = append([]Func(nil), fs...) // never alias the caller's slice
	return func(ctx context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		var res []byte
		for _, f := range fs {
			var err error
			if res, err = f(ctx, ev, fx); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
}

// Shard maps key to a worker index in [0, shards) with xxhash, so that equal
// keys always meet the same worker. The mapping is stable across processes
// and versions of this package. It returns 0 when shards <= 1.
func Shard(key string, shards int) int {
	if shards <= 1 {
		return 0
	}
	return int(xxhash.Sum64String(key) % uint64(shards))
}

// Call runs f on ev and fx and turns a panic into a *retry.PanicError (with
// the stack; classified as retry.ClassPanic), so that one
// bad event cannot take the worker (and every key it owns) down. A result
// larger than onceflow.MaxResultBytes is an error wrapping
// onceflow.ErrResultTooLarge. A state key written or deleted through fx
// that is longer than onceflow.MaxStateKeyBytes as stored is a permanent
// error (retry.Permanent) wrapping onceflow.ErrStateKeyTooLarge: the store
// could not commit it.
func Call(ctx context.Context, f Func, ev *onceflow.Event, fx *onceflow.Effects) (res []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, &retry.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	res, err = f(ctx, ev, fx)
	if err == nil && len(res) > onceflow.MaxResultBytes {
		return nil, fmt.Errorf("stage: result of %d bytes, limit %d: %w", len(res), onceflow.MaxResultBytes, onceflow.ErrResultTooLarge)
	}
	if err == nil && fx != nil {
		for _, w := range fx.Writes() {
			if len(w.Key) > onceflow.MaxStateKeyBytes {
				return nil, retry.Permanent(fmt.Errorf("stage: state key of %d bytes, limit %d (MaxStateKeyBytes, partition key included): %w",
					len(w.Key), onceflow.MaxStateKeyBytes, onceflow.ErrStateKeyTooLarge))
			}
		}
	}
	return res, err
}

// Result is what [Apply] returns for one event.
type Result struct {
	Event  *onceflow.Event
	Result []byte
	Err    error
	Writes []onceflow.StateWrite
	Outbox []onceflow.Message
}

// Apply runs f over evs in order, synchronously, with a fresh Effects per
// event reading state through r (which may be nil). It is how a stage is
// tested without a pipeline: a slice in, a slice out.
func Apply(ctx context.Context, f Func, evs []*onceflow.Event, r onceflow.StateReader) []Result {
	out := make([]Result, 0, len(evs))
	var fx onceflow.Effects
	for _, ev := range evs {
		fx.Reset(ev, r)
		res, err := Call(ctx, f, ev, &fx)
		out = append(out, Result{
			Event:  ev,
			Result: res,
			Err:    err,
			Writes: append([]onceflow.StateWrite(nil), fx.Writes()...),
			Outbox: append([]onceflow.Message(nil), fx.Outbox()...),
		})
	}
	return out
}
