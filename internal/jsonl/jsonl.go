// Package jsonl reads JSON Lines input one line at a time, with a bound on
// the length of a line that holds even for hostile input: a line longer
// than the limit is reported and skipped without ever being buffered whole,
// so memory stays at about the limit whatever the input.
//
// A line ends at "\n"; a "\r" before it is part of the terminator, as is
// a "\r" ending the input. The last line needs no terminator. Lines are
// numbered from 1, every line counts (empty ones included), and the bytes
// returned never include the terminator.
package jsonl

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	onceflow "github.com/onceflow/onceflow"
)

// ErrLineTooLong is matched by the error [Reader.Next] returns for a line
// longer than the limit. The error also matches
// [onceflow.ErrEventTooLarge], so that [onceflow.Reason] classes it as
// "event_too_large" like an event the decoder finds too large.
var ErrLineTooLong = errors.New("jsonl: line too long")

// LineTooLongError reports a line longer than the limit, which was skipped.
type LineTooLongError struct {
	Line  int64 // the line's number, from 1
	Len   int64 // the line's length in bytes, without terminator
	Limit int   // the limit in force
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("jsonl: line %d: %d bytes, limit %d: line too long", e.Line, e.Len, e.Limit)
}

// Unwrap returns ErrLineTooLong and onceflow.ErrEventTooLarge.
func (e *LineTooLongError) Unwrap() []error {
	return []error{ErrLineTooLong, onceflow.ErrEventTooLarge}
}

// Reader returns the lines of an io.Reader. Its buffer holds the limit plus
// the terminator: a Reader costs about limit bytes of memory.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	br     *bufio.Reader
	limit  int
	line   int64 // number of the last line returned
	offset int64 // bytes consumed, terminators included
	err    error // sticky: io.EOF or a read error
}

// NewReader returns a Reader of r for lines of at most limit bytes (not
// counting the terminator). It returns an error when limit is not
// positive.
func NewReader(r io.Reader, limit int) (*Reader, error) {
	if limit < 1 {
		return nil, fmt.Errorf("jsonl: NewReader: limit %d: must be positive", limit)
	}
	if limit > 1<<30 {
		return nil, fmt.Errorf("jsonl: NewReader: limit %d: must be at most 1 GiB", limit)
	}
	// The buffer holds the longest line with "\r\n"; at least 64 KiB so
	// that small limits still read in large blocks.
	return &Reader{br: bufio.NewReaderSize(r, max(limit+2, 64<<10)), limit: limit}, nil
}

// Next returns the next line and its number.
//
// The bytes are valid until the next call of Next and must not be
// modified. A line longer than the limit is skipped: Next returns its
// number and a *LineTooLongError, and the next call goes on with the line
// after it. At the end of the input Next returns io.EOF, and any other
// error of the underlying reader as it is (both sticky).
func (r *Reader) Next() (line []byte, num int64, err error) {
	if r.err != nil {
		return nil, r.line, r.err
	}
	b, err := r.br.ReadSlice('\n')
	switch {
	case err == nil:
		r.line++
		r.offset += int64(len(b))
		b = trimEOL(b[:len(b)-1])
	case errors.Is(err, bufio.ErrBufferFull):
		return r.skip(b)
	case len(b) > 0 && errors.Is(err, io.EOF):
		r.line++ // a last line without terminator
		r.offset += int64(len(b))
		b = trimEOL(b)
		r.err = io.EOF
	default:
		r.err = err
		return nil, r.line, err
	}
	if len(b) > r.limit {
		return nil, r.line, &LineTooLongError{Line: r.line, Len: int64(len(b)), Limit: r.limit}
	}
	return b, r.line, nil
}

// skip consumes the rest of a line whose first bytes, first, filled the
// buffer.
func (r *Reader) skip(first []byte) ([]byte, int64, error) {
	r.line++
	n := int64(len(first))
	r.offset += n
	var tail [2]byte // the last two bytes consumed, for "\r\n"
	note := func(b []byte) {
		for _, c := range b[max(0, len(b)-2):] {
			tail[0], tail[1] = tail[1], c
		}
	}
	note(first)
	for {
		b, err := r.br.ReadSlice('\n')
		r.offset += int64(len(b))
		n += int64(len(b))
		note(b)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == nil:
			n-- // the "\n"
			if tail[0] == '\r' {
				n--
			}
		case errors.Is(err, io.EOF):
			if tail[1] == '\r' {
				n--
			}
			r.err = io.EOF
		default:
			r.err = err
			return nil, r.line, err
		}
		return nil, r.line, &LineTooLongError{Line: r.line, Len: n, Limit: r.limit}
	}
}

// Offset returns the number of input bytes consumed so far, terminators
// included: the input's byte offset just after the last line returned or
// skipped.
func (r *Reader) Offset() int64 { return r.offset }

// trimEOL removes a "\r" ending b.
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}
