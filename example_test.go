package onceflow_test

import (
	"errors"
	"fmt"

	"github.com/onceflow/onceflow"
)

func ExampleDecodeEvent() {
	line := []byte(`{"specversion":"1.0","id":"42","source":"https://shop.example/orders",` +
		`"type":"com.example.order.created","time":"2026-03-01T12:30:45Z","partitionkey":"cust-7",` +
		`"sequence":"3","data":{"total":129.95}}` + "\n")
	ev, err := onceflow.DecodeEvent(line)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Identity())
	fmt.Println("type:", ev.Type)
	fmt.Println("time:", ev.Time)
	fmt.Println("key:", ev.Key(), "sequence:", ev.Sequence)
	fmt.Println("data:", string(ev.Data))
	// Output:
	// source="https://shop.example/orders" id="42"
	// type: com.example.order.created
	// time: 2026-03-01 12:30:45 +0000 UTC
	// key: cust-7 sequence: 3
	// data: {"total":129.95}
}

// Each class of bad input has a sentinel for errors.Is and a stable reason
// for dead-letter records and metrics. A forged second id is a duplicate
// member, not a silent overwrite.
func ExampleReason() {
	for _, line := range []string{
		`{"specversion":"1.0","id":"42","source":"/orders","type":"t","id":"43"}`,
		`{"specversion":"1.0","id":"42","source":"/orders","type":"t","sequence":"-1"}`,
		`{"specversion":"1.0","id":"42","source":"/orders"`,
	} {
		_, err := onceflow.DecodeEvent([]byte(line))
		fmt.Println(onceflow.Reason(err), errors.Is(err, onceflow.ErrDuplicateMember))
		fmt.Println(" ", err)
	}
	// Output:
	// duplicate_member true
	//   onceflow: field "id": duplicate member: appears more than once
	// bad_sequence false
	//   onceflow: field "sequence": bad sequence: "-1" is not a positive decimal integer without sign or leading zeros
	// malformed_json false
	//   onceflow: malformed JSON: unexpected end of input at offset 49
}

func ExampleNewDecoder() {
	d, err := onceflow.NewDecoder(onceflow.WithMaxIdentifierBytes(8))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = d.Decode([]byte(`{"specversion":"1.0","id":"a-very-long-id","source":"s","type":"t"}`))
	fmt.Println(err)
	// Output:
	// onceflow: field "id": invalid identifier: 14 bytes, limit 8
}

func ExampleIdempotencyKey() {
	// Every delivery of the event decodes to the same identity, so every
	// retry of the charge carries the same key.
	first, _ := onceflow.DecodeEvent([]byte(`{"specversion":"1.0","id":"42","source":"/orders","type":"t"}`))
	again, _ := onceflow.DecodeEvent([]byte(`{"type":"t","source":"/orders","id":"42","specversion":"1.0"}`))
	key := onceflow.IdempotencyKey(first.Identity(), "charge")
	fmt.Println(key)
	fmt.Println(key == onceflow.IdempotencyKey(again.Identity(), "charge"))
	fmt.Println(key == onceflow.IdempotencyKey(first.Identity(), "email"))
	// Output:
	// of1-072f6f7264657273343206636861726765
	// true
	// false
}
