package onceflow

import (
	"errors"
	"strconv"
	"strings"
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
	// ErrStateKeyTooLarge is returned when a handler writes or deletes a
	// state key whose stored form exceeds MaxStateKeyBytes.
	ErrStateKeyTooLarge = errors.New("onceflow: state key too large")
)

// Sentinel errors of the event decoder, one per class of bad input. The
// decoder returns them wrapped in a [*DecodeError]; test with errors.Is, or
// map to a stable class name with [Reason].
var (
	// ErrMalformedJSON: the input is not exactly one syntactically valid
	// JSON object: truncated, not an object, trailing data after the
	// object, an invalid escape or literal.
	ErrMalformedJSON = errors.New("onceflow: malformed JSON")
	// ErrWrongType: an attribute has the wrong JSON type (null included),
	// data_base64 is not valid base64, or both data and data_base64 are
	// present.
	ErrWrongType = errors.New("onceflow: wrong type")
	// ErrMissingAttribute: specversion, id, source or type is absent or "".
	ErrMissingAttribute = errors.New("onceflow: missing attribute")
	// ErrEventTooLarge: the input exceeds the decoder's event size limit.
	ErrEventTooLarge = errors.New("onceflow: event too large")
	// ErrTooDeep: JSON nesting exceeds the decoder's depth limit.
	ErrTooDeep = errors.New("onceflow: nesting too deep")
	// ErrInvalidIdentifier: id, source or partitionkey exceeds the
	// identifier length limit or holds a control character.
	ErrInvalidIdentifier = errors.New("onceflow: invalid identifier")
	// ErrDuplicateMember: an object, the event or one nested in its data or
	// extensions, has two members of the same name after unescaping.
	ErrDuplicateMember = errors.New("onceflow: duplicate member")
	// ErrInvalidUTF8: a string holds invalid UTF-8 or an unpaired
	// surrogate escape such as \ud800.
	ErrInvalidUTF8 = errors.New("onceflow: invalid UTF-8")
	// ErrUnsupportedVersion: specversion is not "1.0".
	ErrUnsupportedVersion = errors.New("onceflow: unsupported specversion")
	// ErrBadSequence: the sequence extension is not a decimal string of a
	// positive integer that fits 64 bits, without sign or leading zeros.
	ErrBadSequence = errors.New("onceflow: bad sequence")
	// ErrBadTime: time is not an RFC 3339 timestamp.
	ErrBadTime = errors.New("onceflow: bad time")
)

// DecodeError describes why an event was rejected. Its message names the
// field and the limit, quotes attribute values cut to 64 bytes, and never
// repeats the payload (data, data_base64 or extension values) nor member
// names found inside it.
type DecodeError struct {
	// Field is the top-level member concerned ("id", "data", an extension's
	// name), or "" when the fault concerns the event as a whole.
	Field string
	// Err is the sentinel of the fault's class, such as [ErrBadTime].
	Err error
	// Detail says what is wrong, with the limit or offset where relevant.
	Detail string
}

// Error returns a message such as
// `onceflow: field "id": invalid identifier: 300 bytes, limit 256`.
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("onceflow: ")
	if e.Field != "" {
		b.WriteString("field ")
		b.WriteString(quoteCut(e.Field))
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "onceflow: "))
	} else {
		b.WriteString("bad event")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the sentinel, for errors.Is.
func (e *DecodeError) Unwrap() error { return e.Err }

// Reason returns the stable, machine-readable class of a decoding error, for
// dead-letter records and metrics: "malformed_json", "wrong_type",
// "missing_attribute", "event_too_large", "too_deep",
// "invalid_identifier", "duplicate_member", "invalid_utf8",
// "unsupported_specversion", "bad_sequence" or "bad_time". It returns ""
// for nil and "other" for an error of none of these classes.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrMalformedJSON):
		return "malformed_json"
	case errors.Is(err, ErrWrongType):
		return "wrong_type"
	case errors.Is(err, ErrMissingAttribute):
		return "missing_attribute"
	case errors.Is(err, ErrEventTooLarge):
		return "event_too_large"
	case errors.Is(err, ErrTooDeep):
		return "too_deep"
	case errors.Is(err, ErrInvalidIdentifier):
		return "invalid_identifier"
	case errors.Is(err, ErrDuplicateMember):
		return "duplicate_member"
	case errors.Is(err, ErrInvalidUTF8):
		return "invalid_utf8"
	case errors.Is(err, ErrUnsupportedVersion):
		return "unsupported_specversion"
	case errors.Is(err, ErrBadSequence):
		return "bad_sequence"
	case errors.Is(err, ErrBadTime):
		return "bad_time"
	}
	return "other"
}

// quoteCut quotes s with strconv.Quote after cutting it to 64 bytes, so that
// hostile input can neither flood nor forge a log line.
func quoteCut(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
