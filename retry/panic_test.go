package retry_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/onceflow/onceflow/retry"
)

func TestCall_panic(t *testing.T) {
	secret := "card=4111111111111111" // in scope of the handler, not in the panic value
	err := retry.Call(func() error {
		if len(secret) > 0 {
			panic("boom: bad state")
		}
		return nil
	})
	pe, ok := errors.AsType[*retry.PanicError](err)
	if !ok {
		t.Fatalf("Call(panicking fn) = %#v, want a *PanicError", err)
	}
	if pe.Value != "boom: bad state" {
		t.Errorf("Value = %#v, want the panic value", pe.Value)
	}
	if !strings.Contains(string(pe.Stack), "TestCall_panic") {
		t.Errorf("Stack does not name the panicking function:\n%s", pe.Stack)
	}
	msg := err.Error()
	if want := `retry: handler panic: "boom: bad state"`; msg != want {
		t.Errorf("Error() = %q, want %q", msg, want)
	}
	for _, leak := range []string{secret, "goroutine ", "panic_test.go"} {
		if strings.Contains(msg, leak) {
			t.Errorf("Error() = %q contains %q", msg, leak)
		}
	}
	if got := retry.DefaultClassify(err); got != retry.ClassPanic {
		t.Errorf("DefaultClassify = %v, want panic", got)
	}
	t0 := time.Now()
	if d := (retry.Policy{}).Next(1, t0, t0, err, nil); d.Retry || d.Reason != retry.ReasonPanic {
		t.Errorf("Next = %+v, want give up with %q", d, retry.ReasonPanic)
	}
}

func TestCall_noPanic(t *testing.T) {
	if err := retry.Call(func() error { return nil }); err != nil {
		t.Errorf("Call(ok) = %v, want nil", err)
	}
	if err := retry.Call(func() error { return errTransient }); err != errTransient {
		t.Errorf("Call(fails) = %v, want %v unchanged", err, errTransient)
	}
}

func TestCall_panicValues(t *testing.T) {
	sentinel := errors.New("sentinel")

	err := retry.Call(func() error { panic(sentinel) })
	if !errors.Is(err, sentinel) {
		t.Errorf("Call(panic(err)) = %v, want errors.Is(err, sentinel)", err)
	}

	err = retry.Call(func() error {
		var s []int
		s[len(errTransient.Error())]++ // index out of range: a runtime.Error
		return nil
	})
	if _, ok := errors.AsType[runtime.Error](err); !ok {
		t.Errorf("Call(index out of range) = %v, want a runtime.Error inside", err)
	}

	err = retry.Call(func() error { panic(nil) })
	if _, ok := errors.AsType[*runtime.PanicNilError](err); !ok {
		t.Errorf("Call(panic(nil)) = %v, want a *runtime.PanicNilError inside", err)
	}

	err = retry.Call(func() error { panic(42) })
	if pe, ok := errors.AsType[*retry.PanicError](err); !ok || pe.Unwrap() != nil || err.Error() != `retry: handler panic: "42"` {
		t.Errorf("Call(panic(42)) = %v", err)
	}
}

func TestPanicError_cut(t *testing.T) {
	long := strings.Repeat("x", 150) + strings.Repeat("é", 100) + "TAIL" // é is 2 bytes; byte 200 splits one
	msg := (&retry.PanicError{Value: long}).Error()
	if strings.Contains(msg, "TAIL") || !strings.HasSuffix(msg, `"...`) {
		t.Errorf("Error() = %q, want the value cut and marked with ...", msg)
	}
	if !utf8.ValidString(msg) || strings.Contains(msg, `\x`) {
		t.Errorf("Error() = %q splits a rune", msg)
	}
	if got, want := len(msg), len(`retry: handler panic: ""...`)+200; got > want {
		t.Errorf("len(Error()) = %d, want at most %d", got, want)
	}

	forged := (&retry.PanicError{Value: "boom\nlevel=INFO msg=forged"}).Error()
	if strings.Contains(forged, "\n") {
		t.Errorf("Error() = %q contains a raw newline", forged)
	}
}
