// Command quickstart shows onceflow's promise in one screen: a stream with
// duplicates, handled by a pipeline with a dedup store, applies each
// event's effect exactly once, and every duplicate gets the first outcome.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"sync/atomic"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	store, err := dedup.NewMemory() // dedup.Open(path) for the durable bbolt store
	if err != nil {
		return err
	}
	defer store.Close()

	var runs atomic.Int64
	// The handler credits an account: state scoped to the event's key,
	// committed with the event's outcome.
	credit := func(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		runs.Add(1)
		v, _, err := fx.Get("balance")
		if err != nil {
			return nil, err
		}
		bal, _ := strconv.Atoi(string(v))
		bal += 10
		fx.Put("balance", []byte(strconv.Itoa(bal)))
		return []byte("balance=" + strconv.Itoa(bal)), nil
	}
	var dups atomic.Int64
	p, err := pipeline.New(credit, pipeline.WithStore(store), pipeline.WithShards(2),
		pipeline.WithAck(func(a pipeline.Ack) {
			if a.Err == nil && a.Outcome.Duplicate {
				dups.Add(1)
			}
		}))
	if err != nil {
		return err
	}
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	// 1,000 payments to 10 accounts, every one delivered three times.
	const payments, copies = 1000, 3
	for c := range copies {
		for i := range payments {
			ev := &onceflow.Event{SpecVersion: "1.0", Source: "bank", Type: "payment.received",
				ID: "pay-" + strconv.Itoa(i), PartitionKey: "account-" + strconv.Itoa(i%10)}
			if err := p.Submit(ctx, ev); err != nil {
				return fmt.Errorf("copy %d of %s: %w", c, ev.ID, err)
			}
		}
	}
	// A late duplicate gets the first copy's outcome back.
	late, err := p.Do(ctx, &onceflow.Event{SpecVersion: "1.0", Source: "bank", Type: "payment.received",
		ID: "pay-7", PartitionKey: "account-7"})
	if err != nil {
		return err
	}
	if err := p.Shutdown(ctx); err != nil {
		return err
	}
	if err := <-done; err != nil {
		return err
	}

	total := 0
	for a := range 10 {
		v, _, err := store.ReadState(onceflow.StateKey("account-"+strconv.Itoa(a), "balance"))
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(string(v))
		total += n
	}
	st := p.Stats()
	fmt.Printf("deliveries:        %d\n", st.Submitted)
	fmt.Printf("handler runs:      %d (one per payment)\n", runs.Load())
	fmt.Printf("duplicates:        %d (answered with the first outcome)\n", dups.Load())
	fmt.Printf("total credited:    %d (want %d)\n", total, payments*10)
	fmt.Printf("late duplicate:    %s duplicate=%v\n", late.Result, late.Duplicate)
	fmt.Printf("group commits:     %d (%.0f events each)\n", st.Commits, st.EventsPerCommit())
	if total != payments*10 || runs.Load() != payments {
		return fmt.Errorf("effects did not happen exactly once")
	}
	return nil
}
