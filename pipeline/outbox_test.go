package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
)

// TestOutboxDeliveredAfterCommit: messages emitted by a handler are
// delivered after their commit, with the stable idempotency key, at least
// once across a failed delivery and a restart; duplicates emit nothing new.
func TestOutboxDeliveredAfterCommit(t *testing.T) {
	store, err := dedup.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h := func(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		fx.Emit("mail", []byte("welcome "+ev.ID))
		return nil, nil
	}
	var mu sync.Mutex
	var got []onceflow.Message
	failFirst := true
	deliver := func(_ context.Context, m onceflow.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if failFirst {
			failFirst = false
			return errors.New("smtp down")
		}
		got = append(got, m)
		return nil
	}
	run := func(evs ...*onceflow.Event) pipeline.Stats {
		p, err := pipeline.New(h, pipeline.WithStore(store), pipeline.WithOutbox(deliver, 5*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		stop := start(t, p)
		for _, ev := range evs {
			if _, err := p.Do(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		return p.Stats()
	}
	st := run(event("k", 1), event("k", 2), event("k", 1))
	if st.OutboxErrors == 0 {
		t.Fatal("the failed delivery was not counted")
	}
	run(event("k", 2)) // a duplicate in a later run emits nothing
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("delivered %d messages, want 2: %+v", len(got), got)
	}
	for i, id := range []string{"k/1", "k/2"} {
		want := onceflow.IdempotencyKey(onceflow.Identity{Source: "test", ID: id}, "outbox/0")
		if got[i].Key != want || string(got[i].Payload) != "welcome "+id {
			t.Fatalf("message %d = %+v, want key %s", i, got[i], want)
		}
	}
	if left, _ := store.PendingOutbox(10); len(left) != 0 {
		t.Fatalf("%d messages left in the outbox", len(left))
	}
}

// TestOutboxDeliverPanics: a deliver function that panics is a failed
// delivery, retried and counted; it ends neither Run nor the process, and
// the message is delivered once deliver stops panicking.
func TestOutboxDeliverPanics(t *testing.T) {
	store, err := dedup.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h := func(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		fx.Emit("mail", []byte("welcome "+ev.ID))
		return nil, nil
	}
	var mu sync.Mutex
	var got []string
	panics := 2
	deliver := func(_ context.Context, m onceflow.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if panics > 0 {
			panics--
			panic("mail client bug")
		}
		got = append(got, string(m.Payload))
		return nil
	}
	var logged logBuffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	p, err := pipeline.New(h, pipeline.WithStore(store), pipeline.WithOutbox(deliver, time.Millisecond), pipeline.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	if _, err := p.Do(context.Background(), event("k", 1)); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run or Shutdown: %v", err)
	}
	if st := p.Stats(); st.OutboxErrors != 2 || st.OutboxDelivered != 1 {
		t.Fatalf("OutboxErrors %d, OutboxDelivered %d; want 2 and 1", st.OutboxErrors, st.OutboxDelivered)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "welcome "+event("k", 1).ID {
		t.Fatalf("delivered %q, want the one message once", got)
	}
	// Each panic is logged with its value; the first of a run of failures
	// also with the stack of the deliver function that panicked.
	var warned, stacks int
	for line := range strings.Lines(logged.String()) {
		var rec struct{ Msg, Err, Stack string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Msg != "outbox delivery failed; will retry" {
			continue
		}
		warned++
		if !strings.Contains(rec.Err, "deliver function panicked") || !strings.Contains(rec.Err, `"mail client bug"`) {
			t.Errorf("logged err %q; want the panic and its value", rec.Err)
		}
		if rec.Stack != "" {
			stacks++
			if !strings.Contains(rec.Stack, "outbox_test.go") {
				t.Errorf("logged stack %q; want the deliver function's", rec.Stack)
			}
		}
	}
	if warned != 2 || stacks != 1 {
		t.Errorf("logged %d failed deliveries and %d stacks, want 2 and 1:\n%s", warned, stacks, logged.String())
	}
}

// logBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
