package onceflow

import (
	"encoding/binary"
	"errors"
)

// StateReader reads committed handler state. Implementations are safe for
// concurrent use. The pipeline passes a reader that first consults writes
// of the shard's events that are handled but not yet committed.
type StateReader interface {
	// ReadState returns a copy of the value stored under the full state key
	// (see [StateKey]), and whether it exists.
	ReadState(key []byte) ([]byte, bool, error)
}

// StateWrite is one write to handler state, as committed.
type StateWrite struct {
	// Key is the full state key: [StateKey] of the partition key and the
	// handler's key.
	Key []byte
	// Value is the new value; ignored when Delete is set.
	Value []byte
	// Delete removes the key.
	Delete bool
}

// Message is one outbox message. It is stored in the same transaction as the
// outcome of the event that emitted it and delivered after the commit, at
// least once, carrying Key so that the receiver can drop repeats.
type Message struct {
	// Key is the idempotency key: [IdempotencyKey] of the emitting event's
	// identity and the step "outbox/N" for the N-th message it emitted.
	Key string
	// Topic is chosen by the handler.
	Topic string
	// Payload is the message body.
	Payload []byte
}

// ErrNoState is returned by Effects.Get when the Effects has no reader.
var ErrNoState = errors.New("onceflow: effects have no state reader")

// Effects collects what a handler writes through onceflow while it handles
// one event: state writes scoped to the event's partition key, and outbox
// messages. They commit in the same transaction as the event's outcome, or
// not at all: if the handler fails, they are discarded.
//
// State is scoped to the event's [Event.Key]: one shard owns each key, so
// read-modify-write of state needs no lock and cannot lose an update.
//
// An Effects is owned by the goroutine running the handler and must not be
// retained after the handler returns.
type Effects struct {
	id     Identity
	key    string
	reader StateReader
	writes []StateWrite
	outbox []Message
}

// Reset prepares fx for the event ev, reading committed state through r
// (which may be nil: Get then fails with ErrNoState). It keeps the
// allocated capacity.
func (fx *Effects) Reset(ev *Event, r StateReader) {
	fx.id = ev.Identity()
	fx.key = ev.Key()
	fx.reader = r
	clear(fx.writes)
	fx.writes = fx.writes[:0]
	clear(fx.outbox)
	fx.outbox = fx.outbox[:0]
}

// StateKey returns the full stored key of the handler key k under the
// partition key pk: uvarint(len(pk)) | pk | k. Since pk is never empty,
// no state key starts with a zero byte: keys that do are reserved for
// onceflow's own bookkeeping (such as events held for sequence ordering).
func StateKey(pk, k string) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(pk)+len(k))
	b = binary.AppendUvarint(b, uint64(len(pk)))
	b = append(b, pk...)
	return append(b, k...)
}

// Get returns the value of state key k as the handler would see it: its own
// writes first, then earlier events of the same key, then the store.
func (fx *Effects) Get(k string) ([]byte, bool, error) {
	full := StateKey(fx.key, k)
	for i := len(fx.writes) - 1; i >= 0; i-- {
		w := fx.writes[i]
		if string(w.Key) == string(full) {
			if w.Delete {
				return nil, false, nil
			}
			return w.Value, true, nil
		}
	}
	if fx.reader == nil {
		return nil, false, ErrNoState
	}
	return fx.reader.ReadState(full)
}

// Put sets state key k to a copy of v.
func (fx *Effects) Put(k string, v []byte) {
	fx.writes = append(fx.writes, StateWrite{Key: StateKey(fx.key, k), Value: append([]byte(nil), v...)})
}

// Delete removes state key k.
func (fx *Effects) Delete(k string) {
	fx.writes = append(fx.writes, StateWrite{Key: StateKey(fx.key, k), Delete: true})
}

// Emit adds an outbox message with a copy of payload.
func (fx *Effects) Emit(topic string, payload []byte) {
	step := "outbox/" + itoa(len(fx.outbox))
	fx.outbox = append(fx.outbox, Message{
		Key:     IdempotencyKey(fx.id, step),
		Topic:   topic,
		Payload: append([]byte(nil), payload...),
	})
}

// IdempotencyKey returns [IdempotencyKey] of the current event and step.
func (fx *Effects) IdempotencyKey(step string) string { return IdempotencyKey(fx.id, step) }

// Writes returns the state writes collected so far, in order. The slice is
// valid until the next Reset.
func (fx *Effects) Writes() []StateWrite { return fx.writes }

// Outbox returns the outbox messages collected so far, in order. The slice
// is valid until the next Reset.
func (fx *Effects) Outbox() []Message { return fx.outbox }

// Empty reports whether the handler wrote nothing.
func (fx *Effects) Empty() bool { return len(fx.writes) == 0 && len(fx.outbox) == 0 }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
