package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/pipeline"
)

func event(key string, n int) *onceflow.Event {
	return &onceflow.Event{SpecVersion: "1.0", Source: "test", ID: key + "/" + strconv.Itoa(n), Type: "t", PartitionKey: key}
}

// acks collects acknowledgements, safely from any goroutine.
type acks struct {
	mu   sync.Mutex
	list []pipeline.Ack
}

func (a *acks) add(x pipeline.Ack) { a.mu.Lock(); a.list = append(a.list, x); a.mu.Unlock() }
func (a *acks) all() []pipeline.Ack {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]pipeline.Ack(nil), a.list...)
}

// start runs p in the background and returns a function that shuts it down
// and returns Run's error.
func start(t *testing.T, p *pipeline.Pipeline) func() error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		return <-errc
	}
}

// memStore is a minimal Store for the pipeline's own tests: an exact map,
// committed under a mutex, with a switch to fail commits.
type memStore struct {
	mu      sync.Mutex
	records map[onceflow.Identity]onceflow.Outcome
	state   map[string][]byte
	dead    map[onceflow.Identity]onceflow.DeadLetter
	commits int
	fail    error
}

func newMemStore() *memStore {
	return &memStore{records: map[onceflow.Identity]onceflow.Outcome{}, state: map[string][]byte{},
		dead: map[onceflow.Identity]onceflow.DeadLetter{}}
}

func (m *memStore) Lookup(id onceflow.Identity) (onceflow.Outcome, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.records[id]
	return o, ok, nil
}

func (m *memStore) ReadState(key []byte) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.state[string(key)]
	return bytes.Clone(v), ok, nil
}

func (m *memStore) Commit(b *onceflow.CommitBatch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.commits++
	for i := range b.Records {
		r := &b.Records[i]
		if o, ok := m.records[r.ID]; ok && !(r.Release && o.Status == onceflow.StatusHeld) &&
			!(r.Redrive && o.Status == onceflow.StatusDeadLettered) {
			o.Duplicate = true
			r.Outcome = o
			continue
		}
		if o, ok := m.records[r.ID]; ok && r.Redrive && o.Status == onceflow.StatusDeadLettered {
			d := m.dead[r.ID]
			d.Redriven = time.Now()
			m.dead[r.ID] = d
		}
		m.records[r.ID] = r.Outcome
		if r.DeadLetter != nil {
			m.dead[r.ID] = *r.DeadLetter
		}
		for _, w := range r.Writes {
			if w.Delete {
				delete(m.state, string(w.Key))
			} else {
				m.state[string(w.Key)] = bytes.Clone(w.Value)
			}
		}
	}
	return nil
}

func (m *memStore) ScanState(prefix []byte, fn func(k, v []byte) error) error {
	m.mu.Lock()
	keys := make([]string, 0, len(m.state))
	for k := range m.state {
		if strings.HasPrefix(k, string(prefix)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = bytes.Clone(m.state[k])
	}
	m.mu.Unlock()
	for i, k := range keys {
		if err := fn([]byte(k), vals[i]); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) DeadLetter(id onceflow.Identity) (onceflow.DeadLetter, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dead[id]
	return d, ok, nil
}

var errBoom = errors.New("boom")
