package stage_test

import (
	"context"
	"errors"
	"fmt"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/stage"
)

// A validation step chained before the handler, tested with a slice in and
// a slice out, without a pipeline.
func ExampleChain() {
	validate := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		if ev.Type != "order.placed" {
			return nil, errors.New("unknown type")
		}
		return nil, nil
	}
	handle := func(_ context.Context, ev *onceflow.Event, _ *onceflow.Effects) ([]byte, error) {
		return []byte("ok " + ev.ID), nil
	}
	evs := []*onceflow.Event{
		{Source: "shop", ID: "1", Type: "order.placed"},
		{Source: "shop", ID: "2", Type: "order.cancelled"},
	}
	for _, r := range stage.Apply(context.Background(), stage.Chain(validate, handle), evs, nil) {
		fmt.Printf("%s: %q %v\n", r.Event.ID, r.Result, r.Err)
	}
	// Output:
	// 1: "ok 1" <nil>
	// 2: "" unknown type
}

// Shard maps a key to a worker index, the same in every process.
func ExampleShard() {
	for _, key := range []string{"customer-42", "customer-9"} {
		fmt.Println(key, stage.Shard(key, 4))
	}
	// Output:
	// customer-42 3
	// customer-9 1
}
