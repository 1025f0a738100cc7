package jsonl_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/jsonl"
)

// result is one call of Next, for comparisons.
type result struct {
	line    string
	num     int64
	tooLong int64 // the reported length when the line was too long, else -1
}

// readAll calls Next until io.EOF or another error.
func readAll(t *testing.T, r *jsonl.Reader) ([]result, error) {
	t.Helper()
	var out []result
	for {
		b, n, err := r.Next()
		var tl *jsonl.LineTooLongError
		switch {
		case err == nil:
			out = append(out, result{line: string(b), num: n, tooLong: -1})
		case errors.As(err, &tl):
			if tl.Line != n {
				t.Fatalf("LineTooLongError.Line = %d, Next returned number %d", tl.Line, n)
			}
			out = append(out, result{num: n, tooLong: tl.Len})
		default:
			return out, err
		}
	}
}

// model splits input the way the Reader documents it.
func model(input []byte, limit int) []result {
	var out []result
	if len(input) == 0 {
		return nil
	}
	parts := bytes.Split(input, []byte("\n"))
	if len(parts[len(parts)-1]) == 0 {
		parts = parts[:len(parts)-1] // input ended with "\n"
	}
	for i, p := range parts {
		p = bytes.TrimSuffix(p, []byte("\r"))
		r := result{num: int64(i + 1), tooLong: -1}
		if len(p) > limit {
			r.tooLong = int64(len(p))
		} else {
			r.line = string(p)
		}
		out = append(out, r)
	}
	return out
}

func equal(a, b []result) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReader(t *testing.T) {
	long := strings.Repeat("x", 100_000) // longer than the 64 KiB minimum buffer
	tests := []struct {
		name  string
		in    string
		limit int
	}{
		{"empty", "", 10},
		{"one line", `{"a":1}` + "\n", 10},
		{"no final newline", "a\nb", 10},
		{"crlf", "a\r\nb\r\n", 10},
		{"cr at end of input", "a\nb\r", 10},
		{"lone cr inside", "a\rb\n", 10},
		{"empty lines", "\n\n\r\n", 10},
		{"at the limit", "0123456789\n0123456789\r\n", 10},
		{"over the limit", "0123456789x\nok\n", 10},
		{"over the limit without newline", "0123456789x", 10},
		{"long line beyond the buffer", "a\n" + long + "\nb\n", 10},
		{"long line beyond the buffer, crlf", "a\n" + long + "\r\nb", 10},
		{"long line beyond the buffer at eof", "a\n" + long, 10},
		{"long line beyond the buffer ending in cr", "a\n" + long + "\r", 10},
		{"long line under a large limit", long + "\n", 200_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, rd := range []struct {
				name string
				r    func(io.Reader) io.Reader
			}{{"plain", func(r io.Reader) io.Reader { return r }}, {"onebyte", iotest.OneByteReader}} {
				r, err := jsonl.NewReader(rd.r(strings.NewReader(tt.in)), tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAll(t, r)
				if err != io.EOF {
					t.Fatalf("%s: final error %v, want io.EOF", rd.name, err)
				}
				if want := model([]byte(tt.in), tt.limit); !equal(got, want) {
					t.Fatalf("%s: got %+v\nwant %+v", rd.name, got, want)
				}
				if r.Offset() != int64(len(tt.in)) {
					t.Fatalf("%s: Offset() = %d, want %d", rd.name, r.Offset(), len(tt.in))
				}
				if _, _, err := r.Next(); err != io.EOF {
					t.Fatalf("%s: Next after EOF: %v, want io.EOF (sticky)", rd.name, err)
				}
			}
		})
	}
}

func TestLineTooLongError(t *testing.T) {
	r, err := jsonl.NewReader(strings.NewReader("abcdef\n"), 3)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = r.Next()
	if !errors.Is(err, jsonl.ErrLineTooLong) || !errors.Is(err, onceflow.ErrEventTooLarge) {
		t.Fatalf("err = %v, want ErrLineTooLong and onceflow.ErrEventTooLarge", err)
	}
	if got, want := onceflow.Reason(err), "event_too_large"; got != want {
		t.Fatalf("Reason = %q, want %q", got, want)
	}
	if got, want := err.Error(), "jsonl: line 1: 6 bytes, limit 3: line too long"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r, err := jsonl.NewReader(io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(boom)), 10)
	if err != nil {
		t.Fatal(err)
	}
	if b, n, err := r.Next(); err != nil || string(b) != "a" || n != 1 {
		t.Fatalf("Next = %q, %d, %v; want \"a\", 1, nil", b, n, err)
	}
	for range 2 { // sticky
		if _, _, err := r.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next: %v, want %v", err, boom)
		}
	}
}

func TestReadErrorWhileSkipping(t *testing.T) {
	boom := errors.New("boom")
	in := io.MultiReader(strings.NewReader(strings.Repeat("x", 200_000)), iotest.ErrReader(boom))
	r, err := jsonl.NewReader(in, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next: %v, want %v", err, boom)
	}
}

func TestNewReaderLimits(t *testing.T) {
	for _, limit := range []int{-1, 0, 1<<30 + 1} {
		if _, err := jsonl.NewReader(strings.NewReader(""), limit); err == nil {
			t.Errorf("NewReader(limit %d): nil error, want one", limit)
		}
	}
}

// FuzzReader checks the Reader against the model on any input, limit and
// read pattern.
func FuzzReader(f *testing.F) {
	f.Add([]byte("a\nb\r\nc"), uint16(1), false)
	f.Add([]byte("\n\n\r\n\r"), uint16(0), true)
	f.Add([]byte(`{"id":"1"}`+"\n"+`{"id":"2"}`), uint16(8), false)
	f.Fuzz(func(t *testing.T, in []byte, limit uint16, oneByte bool) {
		lim := int(limit) + 1
		var src io.Reader = bytes.NewReader(in)
		if oneByte {
			src = iotest.OneByteReader(src)
		}
		r, err := jsonl.NewReader(src, lim)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, r)
		if err != io.EOF {
			t.Fatalf("final error %v, want io.EOF", err)
		}
		if want := model(in, lim); !equal(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
		if r.Offset() != int64(len(in)) {
			t.Fatalf("Offset() = %d, want %d", r.Offset(), len(in))
		}
	})
}

func BenchmarkReader(b *testing.B) {
	line := `{"specversion":"1.0","id":"ev-000000000001","source":"urn:onceflow:gen:s1","type":"com.example.gen.v1","data":{"pad":"` +
		strings.Repeat("x", 150) + `"}}` + "\n"
	in := []byte(strings.Repeat(line, 10_000))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r, _ := jsonl.NewReader(bytes.NewReader(in), 1<<20)
		for {
			if _, _, err := r.Next(); err == io.EOF {
				break
			}
		}
	}
}
