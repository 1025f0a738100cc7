package proptest_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/proptest"
	"github.com/onceflow/onceflow/stage"
)

// Mailer is the outside system of the handler under test.
type Mailer interface {
	Send(idempotencyKey, to, body string)
}

// fakeMailer is the test's Mailer: it hands every mail to proptest's
// External, which keeps the first mail of each key as a receiver that
// honours idempotency keys would.
type fakeMailer struct{ ext *proptest.External }

func (m fakeMailer) Send(key, to, body string) { m.ext.Apply(key, []byte(to+": "+body)) }

// receipts counts each customer's orders in its state and mails a receipt.
// With keyed set it sends the mail under the event's idempotency key; else
// under a number of its own, as code that forgot about retries would.
func receipts(m Mailer, keyed bool) stage.Func {
	var mu sync.Mutex
	sent := 0
	return func(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		v, _, err := fx.Get("orders")
		if err != nil {
			return nil, err
		}
		n, _ := strconv.Atoi(string(v))
		n++
		fx.Put("orders", []byte(strconv.Itoa(n)))
		key := fx.IdempotencyKey("receipt")
		if !keyed {
			mu.Lock()
			sent++
			key = "receipt-" + strconv.Itoa(sent)
			mu.Unlock()
		}
		m.Send(key, ev.PartitionKey, "order "+ev.ID+" is your order number "+strconv.Itoa(n))
		return []byte(strconv.Itoa(n)), nil
	}
}

// A user checks a handler under duplicates, reordering, failures and
// crashes. The handler that mails under the event's idempotency key
// passes; the one that numbers its mails itself repeats a mail when a
// retry or a crash runs it again, and the check catches it (the error
// names the seed and prints the shrunk stream).
func Example() {
	correct := func(ext *proptest.External) stage.Func { return receipts(fakeMailer{ext}, true) }
	rep, err := proptest.Check(correct, proptest.WithSeed(1), proptest.WithRuns(50))
	fmt.Println("keyed receipts pass:", err == nil, "-", rep.Streams, "streams")

	broken := func(ext *proptest.External) stage.Func { return receipts(fakeMailer{ext}, false) }
	rep, err = proptest.Check(broken, proptest.WithSeed(1), proptest.WithRuns(50))
	fmt.Println("numbered receipts pass:", err == nil, "- failure reported:", rep.Failure != nil)
	// Output:
	// keyed receipts pass: true - 50 streams
	// numbered receipts pass: false - failure reported: true
}
