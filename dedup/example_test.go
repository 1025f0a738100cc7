package dedup_test

import (
	"fmt"
	"log"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
)

func Example() {
	s, err := dedup.NewMemory() // or dedup.Open("state.db") for a durable store
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	id := onceflow.Identity{Source: "shop/orders", ID: "order-1"}
	if _, found, _ := s.Lookup(id); !found {
		fmt.Println("first delivery: handle it")
	}
	// The handler succeeded: commit its outcome and effects together.
	err = s.Commit(&onceflow.CommitBatch{Records: []onceflow.Record{{
		ID:      id,
		Outcome: onceflow.Outcome{Status: onceflow.StatusDone, Attempts: 1, Result: []byte("shipped")},
		Writes:  []onceflow.StateWrite{{Key: onceflow.StateKey("customer-7", "orders"), Value: []byte("1")}},
	}}})
	if err != nil {
		log.Fatal(err)
	}

	// A redelivery of the same event gets the first outcome back.
	out, found, err := s.Lookup(id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(found, out.Duplicate, out.Status, string(out.Result))

	// Committing the copy anyway keeps the first outcome and drops the
	// copy's effects.
	b := &onceflow.CommitBatch{Records: []onceflow.Record{{
		ID:      id,
		Outcome: onceflow.Outcome{Status: onceflow.StatusDone, Result: []byte("shipped twice")},
		Writes:  []onceflow.StateWrite{{Key: onceflow.StateKey("customer-7", "orders"), Value: []byte("2")}},
	}}}
	if err := s.Commit(b); err != nil {
		log.Fatal(err)
	}
	v, _, _ := s.ReadState(onceflow.StateKey("customer-7", "orders"))
	fmt.Println(b.Records[0].Outcome.Duplicate, string(b.Records[0].Outcome.Result), string(v))
	// Output:
	// first delivery: handle it
	// true true done shipped
	// true shipped 1
}

// LookupBatch answers many lookups in one call, as the pipeline's workers
// ask for each chunk of events.
func ExampleStore_LookupBatch() {
	s, err := dedup.NewMemory()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	done := onceflow.Identity{Source: "shop/orders", ID: "order-1"}
	err = s.Commit(&onceflow.CommitBatch{Records: []onceflow.Record{{
		ID: done, Outcome: onceflow.Outcome{Status: onceflow.StatusDone, Attempts: 1},
	}}})
	if err != nil {
		log.Fatal(err)
	}

	ids := []onceflow.Identity{done, {Source: "shop/orders", ID: "order-2"}}
	outs := make([]onceflow.Outcome, len(ids))
	found := make([]bool, len(ids))
	if err := s.LookupBatch(ids, outs, found); err != nil {
		log.Fatal(err)
	}
	for i, id := range ids {
		fmt.Println(id.ID, found[i], outs[i].Status)
	}
	// Output:
	// order-1 true done
	// order-2 false unknown
}

// CheckOptions refuses a bad setting, such as one parsed from a flag,
// before anything is opened or created.
func ExampleCheckOptions() {
	fmt.Println(dedup.CheckOptions(dedup.WithWindow(24*time.Hour), dedup.WithCapacity(1_000_000)))
	fmt.Println(dedup.CheckOptions(dedup.WithCapacity(0)))
	// Output:
	// <nil>
	// dedup: WithCapacity(0): must be in [1, 4294967296]
}
