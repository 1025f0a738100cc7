package proptest_test

import (
	"context"
	"strconv"
	"sync"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/proptest"
	"github.com/onceflow/onceflow/stage"
)

// Handlers for the tests: one correct, and broken ones of each kind the
// check must catch.

// counting counts the events of each key in the key's state, emits an
// outbox message and notifies the outside world under a stable
// idempotency key: correct.
func counting(ext *proptest.External) stage.Func {
	return func(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		v, _, err := fx.Get("count")
		if err != nil {
			return nil, err
		}
		n, _ := strconv.Atoi(string(v))
		n++
		fx.Put("count", []byte(strconv.Itoa(n)))
		fx.Put("last", []byte(ev.ID))
		fx.Emit("counted", []byte(ev.PartitionKey+"="+strconv.Itoa(n)))
		ext.Apply(fx.IdempotencyKey("notify"), []byte(ev.ID+" is number "+strconv.Itoa(n)))
		return []byte(strconv.Itoa(n)), nil
	}
}

// notifyWithoutKey is counting, but it notifies under a key of its own
// making (the event's id and how many times it has notified for it), not
// fx.IdempotencyKey: a retry or a crash repeats the notification under a
// new key.
func notifyWithoutKey(ext *proptest.External) stage.Func {
	var mu sync.Mutex
	sent := map[string]int{} // by event: notifications sent
	count := counting(proptest.NewExternal())
	return func(ctx context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		res, err := count(ctx, ev, fx)
		if err != nil {
			return nil, err
		}
		// The key counts this event's notifications: a repeat gets a new
		// key. (A counter shared by all events would also make the keys
		// depend on the order the shards run in, and the failure on the
		// scheduler rather than on the seed.)
		mu.Lock()
		sent[ev.ID]++
		key := "notification-" + ev.ID + "-" + strconv.Itoa(sent[ev.ID])
		mu.Unlock()
		ext.Apply(key, []byte(ev.ID))
		return res, nil
	}
}

// countInMemory keeps the counts in a Go map instead of fx: its state is
// outside the transaction, lost at a restart and counted twice by a run
// that is retried.
func countInMemory(*proptest.External) stage.Func {
	var mu sync.Mutex
	counts := map[string]int{}
	return func(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		mu.Lock()
		counts[ev.PartitionKey]++
		n := counts[ev.PartitionKey]
		mu.Unlock()
		fx.Put("count", []byte(strconv.Itoa(n)))
		return []byte(strconv.Itoa(n)), nil
	}
}
