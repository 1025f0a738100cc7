package retry

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"unicode/utf8"
)

// maxPanicValue bounds the panic value quoted by PanicError.Error.
const maxPanicValue = 200

// PanicError is a panic recovered by Call from a handler (or from any
// function Call runs: the pipeline also runs an outbox deliver function
// through it). DefaultClassify maps it to ClassPanic, so a handler's event
// is dead-lettered with ReasonPanic.
type PanicError struct {
	// Value is what the handler passed to panic.
	Value any
	// Stack is the panicking goroutine's stack (runtime/debug.Stack), for
	// logs. Error leaves it out.
	Stack []byte
}

// Error returns "retry: handler panic: " and the panic value, formatted with
// %v, cut to 200 bytes and quoted, so that a hostile value can neither flood
// nor forge a log line. It contains neither the stack nor anything of the
// event but what the handler put in the panic value.
func (e *PanicError) Error() string {
	s := fmt.Sprint(e.Value)
	cut := len(s) > maxPanicValue
	if cut {
		s = s[:maxPanicValue]
		// Do not split a rune: drop the partial one at the end (at most
		// UTFMax-1 bytes).
		for range utf8.UTFMax - 1 {
			r, size := utf8.DecodeLastRuneInString(s)
			if r != utf8.RuneError || size != 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	msg := "retry: handler panic: " + strconv.Quote(s)
	if cut {
		msg += "..."
	}
	return msg
}

// Unwrap returns the panic value when it is an error (a runtime.Error such
// as a nil dereference, or a value passed to panic), so errors.Is and
// errors.As see it; otherwise nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Call runs fn and returns its error, or a *PanicError holding the value
// and stack of a panic in fn. It runs fn on the calling goroutine and does
// not recover runtime.Goexit (t.FailNow), which still unwinds the caller.
func Call(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}
