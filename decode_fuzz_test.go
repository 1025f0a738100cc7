package onceflow_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/onceflow/onceflow"
)

// FuzzDecodeEvent checks that the decoder never panics, that what it
// accepts is an event within every limit and agrees with encoding/json's
// reading of the same bytes, and that what it rejects it rejects with a
// known class. The seed corpus in testdata/fuzz/FuzzDecodeEvent holds valid
// events and at least one input of each class of bad input.
//
// Each input is decoded twice: with the defaults and with small limits, so
// that the limits are reached by small inputs.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(head + `,"data":{"a":[1,"x",null]}}`))
	f.Add([]byte(head + `,"id":"forged"}`))
	small, err := onceflow.NewDecoder(
		onceflow.WithMaxEventBytes(512), onceflow.WithMaxDepth(4), onceflow.WithMaxIdentifierBytes(16))
	if err != nil {
		f.Fatal(err)
	}
	decoders := []struct {
		name               string
		d                  *onceflow.Decoder
		maxEvent, maxIdent int
	}{
		{"default", new(onceflow.Decoder), 1 << 20, 256},
		{"small", small, 512, 16},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		for _, dc := range decoders {
			ev, err := dc.d.Decode(data)
			if !bytes.Equal(data, orig) {
				t.Fatalf("%s: Decode modified its input", dc.name)
			}
			if err != nil {
				checkRejected(t, dc.name, data, dc.maxEvent, ev, err)
				continue
			}
			checkAccepted(t, dc.name, data, dc.maxIdent, ev)
		}
	})
}

func checkRejected(t *testing.T, name string, data []byte, maxEvent int, ev *onceflow.Event, err error) {
	t.Helper()
	if ev != nil {
		t.Fatalf("%s: event and error %v", name, err)
	}
	reason := onceflow.Reason(err)
	if reason == "other" || reason == "" {
		t.Fatalf("%s: Reason(%v) = %q", name, err, reason)
	}
	var de *onceflow.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("%s: error %T is not a *DecodeError", name, err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") || len(msg) > 400 {
		t.Fatalf("%s: unsafe message %q", name, msg)
	}
	if (reason == "event_too_large") != (len(data) > maxEvent) {
		t.Fatalf("%s: %d bytes, limit %d: %v", name, len(data), maxEvent, err)
	}
	// A syntax error must be one: encoding/json must reject the input too.
	// (encoding/json accepts any top-level value; a non-object is only
	// malformed here.)
	if reason == "malformed_json" && json.Valid(data) && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) {
		t.Fatalf("%s: %v, but encoding/json finds the input valid", name, err)
	}
}

func checkAccepted(t *testing.T, name string, data []byte, maxIdent int, ev *onceflow.Event) {
	t.Helper()
	if ev.SpecVersion != "1.0" || ev.ID == "" || ev.Source == "" || ev.Type == "" {
		t.Fatalf("%s: required attribute missing: %+v", name, ev)
	}
	// What Decode accepts, Validate (which ignores Raw) accepts as an event
	// built in code: a pipeline may store either and decode it again.
	if err := ev.Validate(); err != nil {
		t.Fatalf("%s: decoded event fails Validate: %v", name, err)
	}
	for _, id := range []string{ev.ID, ev.Source, ev.PartitionKey} {
		if len(id) > maxIdent {
			t.Fatalf("%s: identifier of %d bytes, limit %d", name, len(id), maxIdent)
		}
		if strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("%s: control character in identifier %q", name, id)
		}
	}
	if !bytes.Equal(ev.Raw, data) {
		t.Fatalf("%s: Raw differs from the input", name)
	}
	if !ev.DataBase64 && ev.Data != nil && (!bytes.Contains(ev.Raw, ev.Data) || !json.Valid(ev.Data)) {
		t.Fatalf("%s: Data %q is not JSON from Raw", name, ev.Data)
	}
	if !utf8.Valid(data) || !json.Valid(data) {
		t.Fatalf("%s: accepted input that is not valid UTF-8 JSON", name)
	}

	// encoding/json must read the same attributes. With no duplicate
	// members and valid UTF-8 its reading is unambiguous.
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: encoding/json: %v", name, err)
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	for _, c := range []struct{ k, got string }{
		{"specversion", ev.SpecVersion}, {"id", ev.ID}, {"source", ev.Source}, {"type", ev.Type},
		{"subject", ev.Subject}, {"datacontenttype", ev.DataContentType}, {"dataschema", ev.DataSchema},
		{"partitionkey", ev.PartitionKey},
	} {
		if want := str(c.k); c.got != want {
			t.Fatalf("%s: %s = %q, encoding/json reads %q", name, c.k, c.got, want)
		}
	}
	if seq, ok := m["sequence"].(string); ok {
		if n, err := strconv.ParseUint(seq, 10, 64); err != nil || n != ev.Sequence || n == 0 {
			t.Fatalf("%s: sequence %q decoded as %d", name, seq, ev.Sequence)
		}
	} else if ev.Sequence != 0 {
		t.Fatalf("%s: Sequence %d without a sequence attribute", name, ev.Sequence)
	}
	if ts, ok := m["time"].(string); ok {
		want, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || !want.Equal(ev.Time) {
			t.Fatalf("%s: time %q decoded as %v", name, ts, ev.Time)
		}
	}
	if b64, ok := m["data_base64"].(string); ok {
		var want []byte
		if err := json.Unmarshal([]byte(strconv.Quote(b64)), &want); err != nil || !bytes.Equal(want, ev.Data) || !ev.DataBase64 {
			t.Fatalf("%s: data_base64 %q decoded as %q (%v)", name, b64, ev.Data, err)
		}
	}
}

// TestFuzzCorpusCoversEveryClass checks that the committed seed corpus holds
// valid events and at least one input of each class of bad input, decoded
// with the small limits of FuzzDecodeEvent.
func TestFuzzCorpusCoversEveryClass(t *testing.T) {
	t.Parallel()
	small, err := onceflow.NewDecoder(
		onceflow.WithMaxEventBytes(512), onceflow.WithMaxDepth(4), onceflow.WithMaxIdentifierBytes(16))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecodeEvent", "*"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		header, body, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		lit, ok := strings.CutPrefix(body, "[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")")
		in, err := strconv.Unquote(lit)
		if header != "go test fuzz v1" || !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a one-value corpus file of []byte", name)
		}
		_, err = small.Decode([]byte(in))
		seen[onceflow.Reason(err)]++
	}
	for _, reason := range []string{"", "malformed_json", "wrong_type", "missing_attribute", "event_too_large",
		"too_deep", "invalid_identifier", "duplicate_member", "invalid_utf8", "unsupported_specversion",
		"bad_sequence", "bad_time"} {
		if seen[reason] == 0 {
			t.Errorf("no corpus input with Reason %q; have %v", reason, seen)
		}
	}
}
