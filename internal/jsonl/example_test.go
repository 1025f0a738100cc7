package jsonl_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/onceflow/onceflow/internal/jsonl"
)

// Lines are returned without their terminator; a line over the limit is
// reported and skipped, and reading goes on.
func Example() {
	in := "{\"id\":\"1\"}\r\n" + strings.Repeat("x", 40) + "\n{\"id\":\"2\"}"
	r, err := jsonl.NewReader(strings.NewReader(in), 32)
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		line, n, err := r.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, jsonl.ErrLineTooLong) {
			fmt.Println(n, "rejected:", err)
			continue
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%d %s\n", n, line)
	}
	// Output:
	// 1 {"id":"1"}
	// 2 rejected: jsonl: line 2: 40 bytes, limit 32: line too long
	// 3 {"id":"2"}
}
