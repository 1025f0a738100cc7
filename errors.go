package onceflow

import (
	"errors"
	"strconv"
)

// Sentinel errors shared by the packages of onceflow.
var (
	// ErrStorage wraps every error that comes from the durable store.
	ErrStorage = errors.New("onceflow: storage error")
	// ErrCorrupt reports stored bytes that do not decode.
	ErrCorrupt = errors.New("onceflow: corrupt stored record")
	// ErrResultTooLarge is returned when a handler's result exceeds
	// MaxResultBytes.
	ErrResultTooLarge = errors.New("onceflow: result too large")
)

// quoteCut quotes s with strconv.Quote after cutting it to 64 bytes, so that
// hostile input can neither flood nor forge a log line.
func quoteCut(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
