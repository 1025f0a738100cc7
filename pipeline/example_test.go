package pipeline_test

import (
	"context"
	"fmt"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/pipeline"
)

// A pass-through pipeline: every delivery runs the handler, events of one
// key in order, and each accepted event is acknowledged once.
func Example() {
	h := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		return []byte("handled " + ev.ID), nil
	}
	p, err := pipeline.New(h, pipeline.WithShards(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()

	out, err := p.Do(context.Background(), &onceflow.Event{Source: "shop", ID: "order-1", Type: "order.placed"})
	fmt.Println(string(out.Result), err)

	if err := p.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(<-done, p.Stats().Acked)
	// Output:
	// handled order-1 <nil>
	// <nil> 1
}
