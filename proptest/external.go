package proptest

import (
	"bytes"
	"slices"
	"sync"
)

// External stands for the systems a handler affects outside onceflow's
// transaction — an HTTP API, a mailer, a payment provider — in the way a
// well-behaved receiver does: it applies the first effect of each
// idempotency key and drops repeats. Give the handler under test an
// adapter that forwards its outside calls to Apply with the key the handler
// would send (normally fx.IdempotencyKey(step)).
//
// onceflow runs a handler at least once per event: a retry, or a crash
// before the commit, runs it again. Outside effects are therefore applied
// again unless they carry a stable key. proptest compares what External
// holds after a stream full of retries and crashes with what it holds after
// the model ran each event once: a handler that sends a key of its own
// making (a counter, a random id, the time) leaves extra effects and fails
// the check. Repeats of a stable key are expected and only counted.
//
// External is safe for concurrent use.
type External struct {
	mu        sync.Mutex
	applied   map[string][]byte
	calls     int
	repeats   int
	conflicts []string
}

// NewExternal returns an empty External.
func NewExternal() *External { return &External{applied: make(map[string][]byte)} }

// Apply records an effect under its idempotency key: the first effect of a
// key is applied, a repeat is dropped. A repeat carrying a different effect
// means the handler is not deterministic; it is reported as a conflict.
func (x *External) Apply(key string, effect []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.calls++
	if old, ok := x.applied[key]; ok {
		x.repeats++
		if !bytes.Equal(old, effect) && len(x.conflicts) < 10 {
			x.conflicts = append(x.conflicts, key)
		}
		return
	}
	x.applied[key] = bytes.Clone(effect)
}

// Applied returns a copy of the effects applied, by key.
func (x *External) Applied() map[string][]byte {
	x.mu.Lock()
	defer x.mu.Unlock()
	m := make(map[string][]byte, len(x.applied))
	for k, v := range x.applied {
		m[k] = bytes.Clone(v)
	}
	return m
}

// Calls returns how many times Apply was called, and how many of those
// were repeats of a key already applied.
func (x *External) Calls() (calls, repeats int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.calls, x.repeats
}

func (x *External) conflicted() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.conflicts)
}
