package onceflow_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onceflow/onceflow"
)

// head is a valid prefix of the required attributes; tests append members
// and the closing brace.
const head = `{"specversion":"1.0","id":"e-1","source":"/orders","type":"order.created"`

func TestDecodeValid(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.UTC)
	tests := []struct {
		name string
		in   string
		want onceflow.Event // Raw is checked separately
	}{
		{
			name: "minimal",
			in:   head + `}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created"},
		},
		{
			name: "all attributes",
			in: `{"specversion":"1.0","id":"e-2","source":"https://example.com/shop","type":"com.example.order.v2",` +
				`"time":"2026-03-01T12:30:45.123456789Z","subject":"order/42","datacontenttype":"application/json",` +
				`"dataschema":"https://example.com/schemas/order/2","partitionkey":"customer-7","sequence":"18446744073709551615",` +
				`"data":{"total":12.5,"items":[{"sku":"A","qty":1}],"gift":false,"note":null}}`,
			want: onceflow.Event{
				SpecVersion: "1.0", ID: "e-2", Source: "https://example.com/shop", Type: "com.example.order.v2",
				Time: ts, Subject: "order/42", DataContentType: "application/json",
				DataSchema: "https://example.com/schemas/order/2", PartitionKey: "customer-7", Sequence: 1<<64 - 1,
				Data: []byte(`{"total":12.5,"items":[{"sku":"A","qty":1}],"gift":false,"note":null}`),
			},
		},
		{
			name: "whitespace and CRLF",
			in:   " \t{ \"specversion\" : \"1.0\" ,\n \"id\":\"e-1\", \"source\":\"/orders\",\"type\":\"order.created\", \"data\" : [ 1 , 2 ] }\r\n",
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created", Data: []byte("[ 1 , 2 ]")},
		},
		{
			name: "escapes",
			in: `{"specversion":"1\u002e0","\u0069d":"a\"b\\c\/d","source":"caf\u00e9 \ud83d\ude00","type":"t\tu",` +
				`"subject":"line\nbreak","data":"\u0000 \ud83d\ude00"}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: `a"b\c/d`, Source: "café 😀", Type: "t\tu",
				Subject: "line\nbreak", Data: []byte(`"\u0000 \ud83d\ude00"`)},
		},
		{
			name: "raw UTF-8",
			in:   `{"specversion":"1.0","id":"日本","source":"ünïcode","type":"t","data":{"k":"€ 😀 \u20ac"}}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "日本", Source: "ünïcode", Type: "t", Data: []byte(`{"k":"€ 😀 \u20ac"}`)},
		},
		{
			name: "data_base64",
			in:   head + `,"data_base64":"aGVsbG8gd29ybGQ="}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created",
				Data: []byte("hello world"), DataBase64: true},
		},
		{
			name: "empty data_base64",
			in:   head + `,"data_base64":""}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created",
				Data: []byte{}, DataBase64: true},
		},
		{
			name: "time with offset",
			in:   head + `,"time":"2026-03-01T14:30:45+02:00"}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created",
				Time: time.Date(2026, 3, 1, 12, 30, 45, 0, time.UTC)},
		},
		{
			name: "extensions",
			in: head + `,"traceparent":"00-abc-01","comexampleflag":true,"comexamplenum":-1.5e3,"ID":"not the id",` +
				`"nested":{"a":[{"b":{}}],"c":[]},"nothing":null}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created"},
		},
		{
			name: "scalar data",
			in:   head + `,"data":-0.5E+10}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created", Data: []byte("-0.5E+10")},
		},
		{
			name: "null data",
			in:   head + `,"data":null}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created", Data: []byte("null")},
		},
		{
			name: "empty optional attributes",
			in:   head + `,"subject":"","partitionkey":""}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created"},
		},
		{
			name: "same name at different levels",
			in:   head + `,"data":{"id":{"id":1},"x":[{"id":2},{"id":3}]},"x":{"x":{"x":1}}}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created",
				Data: []byte(`{"id":{"id":1},"x":[{"id":2},{"id":3}]}`)},
		},
		{
			name: "big object",
			in:   head + `,"data":` + bigObject(1000, "") + `}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created",
				Data: []byte(bigObject(1000, ""))},
		},
		{
			name: "depth at limit",
			in:   head + `,"data":` + nested(63) + `}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: "e-1", Source: "/orders", Type: "order.created", Data: []byte(nested(63))},
		},
		{
			name: "identifiers at limit",
			in: `{"specversion":"1.0","id":"` + strings.Repeat("i", 256) + `","source":"` + strings.Repeat("s", 256) +
				`","type":"t","partitionkey":"` + strings.Repeat("p", 256) + `"}`,
			want: onceflow.Event{SpecVersion: "1.0", ID: strings.Repeat("i", 256), Source: strings.Repeat("s", 256),
				Type: "t", PartitionKey: strings.Repeat("p", 256)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := []byte(tt.in)
			ev, err := onceflow.DecodeEvent(in)
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if !bytes.Equal(ev.Raw, in) {
				t.Errorf("Raw = %q, want the input", ev.Raw)
			}
			got := *ev
			got.Raw = nil
			if !got.Time.Equal(tt.want.Time) {
				t.Errorf("Time = %v, want %v", got.Time, tt.want.Time)
			}
			got.Time, tt.want.Time = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if !ev.DataBase64 && ev.Data != nil && !bytes.Contains(ev.Raw, ev.Data) {
				t.Errorf("Data %q is not a part of Raw", ev.Data)
			}
		})
	}
}

// bigObject returns a JSON object of n distinct members, plus a last member
// named dup when dup is not "".
func bigObject(n int, dup string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	if dup != "" {
		fmt.Fprintf(&b, `,%q:0`, dup)
	}
	b.WriteByte('}')
	return b.String()
}

// nested returns n nested arrays around 1, alternating with objects.
func nested(n int) string {
	var b strings.Builder
	for i := range n {
		if i%2 == 0 {
			b.WriteString(`[`)
		} else {
			b.WriteString(`{"a":`)
		}
	}
	b.WriteString("1")
	for i := n - 1; i >= 0; i-- {
		if i%2 == 0 {
			b.WriteString(`]`)
		} else {
			b.WriteString(`}`)
		}
	}
	return b.String()
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 257)
	tests := []struct {
		name  string
		in    string
		opts  []onceflow.DecodeOption
		want  error
		field string
	}{
		// malformed JSON
		{"empty", ``, nil, onceflow.ErrMalformedJSON, ""},
		{"only whitespace", " \r\n", nil, onceflow.ErrMalformedJSON, ""},
		{"array", `[` + head + `}]`, nil, onceflow.ErrMalformedJSON, ""},
		{"string", `"x"`, nil, onceflow.ErrMalformedJSON, ""},
		{"truncated", head, nil, onceflow.ErrMalformedJSON, ""},
		{"truncated in name", `{"specv`, nil, onceflow.ErrMalformedJSON, ""},
		{"truncated value", `{"id":`, nil, onceflow.ErrMalformedJSON, "id"},
		{"trailing garbage", head + `}x`, nil, onceflow.ErrMalformedJSON, ""},
		{"two objects", head + `}` + head + `}`, nil, onceflow.ErrMalformedJSON, ""},
		{"two lines", head + "}\n" + head + "}\n", nil, onceflow.ErrMalformedJSON, ""},
		{"trailing comma", head + `,}`, nil, onceflow.ErrMalformedJSON, ""},
		{"missing colon", `{"id" "a"}`, nil, onceflow.ErrMalformedJSON, ""},
		{"unquoted name", `{id:"a"}`, nil, onceflow.ErrMalformedJSON, ""},
		{"single quotes", `{'id':'a'}`, nil, onceflow.ErrMalformedJSON, ""},
		{"invalid escape", head + `,"subject":"\x"}`, nil, onceflow.ErrMalformedJSON, "subject"},
		{"short unicode escape", head + `,"subject":"\u12"}`, nil, onceflow.ErrMalformedJSON, "subject"},
		{"raw control char", head + ",\"subject\":\"a\tb\"}", nil, onceflow.ErrMalformedJSON, "subject"},
		{"bad literal", head + `,"data":tru}`, nil, onceflow.ErrMalformedJSON, "data"},
		{"leading zero", head + `,"data":01}`, nil, onceflow.ErrMalformedJSON, ""},
		{"bare minus", head + `,"data":-}`, nil, onceflow.ErrMalformedJSON, "data"},
		{"bad fraction", head + `,"data":1.}`, nil, onceflow.ErrMalformedJSON, "data"},
		{"bad exponent", head + `,"data":1e+}`, nil, onceflow.ErrMalformedJSON, "data"},
		{"unclosed array", head + `,"data":[1,2}`, nil, onceflow.ErrMalformedJSON, "data"},
		{"unclosed nested", head + `,"data":{"a":[1]}`, nil, onceflow.ErrMalformedJSON, ""},
		{"byte order mark", "\ufeff" + head + `}`, nil, onceflow.ErrMalformedJSON, ""},
		{"syntax wins over type", `{"id":5,`, nil, onceflow.ErrMalformedJSON, ""},

		// wrong types
		{"id number", `{"specversion":"1.0","id":5,"source":"s","type":"t"}`, nil, onceflow.ErrWrongType, "id"},
		{"id null", `{"specversion":"1.0","id":null,"source":"s","type":"t"}`, nil, onceflow.ErrWrongType, "id"},
		{"source object", `{"specversion":"1.0","id":"a","source":{"x":1},"type":"t"}`, nil, onceflow.ErrWrongType, "source"},
		{"type array", `{"specversion":"1.0","id":"a","source":"s","type":["t"]}`, nil, onceflow.ErrWrongType, "type"},
		{"specversion number", `{"specversion":1.0,"id":"a","source":"s","type":"t"}`, nil, onceflow.ErrWrongType, "specversion"},
		{"subject bool", head + `,"subject":true}`, nil, onceflow.ErrWrongType, "subject"},
		{"sequence number", head + `,"sequence":7}`, nil, onceflow.ErrWrongType, "sequence"},
		{"time number", head + `,"time":1700000000}`, nil, onceflow.ErrWrongType, "time"},
		{"data_base64 object", head + `,"data_base64":{}}`, nil, onceflow.ErrWrongType, "data_base64"},
		{"data_base64 invalid", head + `,"data_base64":"!!!!"}`, nil, onceflow.ErrWrongType, "data_base64"},
		{"data_base64 unpadded", head + `,"data_base64":"aGk"}`, nil, onceflow.ErrWrongType, "data_base64"},
		{"data_base64 newline", head + `,"data_base64":"aGk=\naGk="}`, nil, onceflow.ErrWrongType, "data_base64"},
		{"data and data_base64", head + `,"data":1,"data_base64":"aGk="}`, nil, onceflow.ErrWrongType, "data_base64"},

		// missing attributes
		{"no specversion", `{"id":"a","source":"s","type":"t"}`, nil, onceflow.ErrMissingAttribute, "specversion"},
		{"no id", `{"specversion":"1.0","source":"s","type":"t"}`, nil, onceflow.ErrMissingAttribute, "id"},
		{"no source", `{"specversion":"1.0","id":"a","type":"t"}`, nil, onceflow.ErrMissingAttribute, "source"},
		{"no type", `{"specversion":"1.0","id":"a","source":"s"}`, nil, onceflow.ErrMissingAttribute, "type"},
		{"empty object", `{}`, nil, onceflow.ErrMissingAttribute, "specversion"},
		{"empty id", `{"specversion":"1.0","id":"","source":"s","type":"t"}`, nil, onceflow.ErrMissingAttribute, "id"},
		{"empty source", `{"specversion":"1.0","id":"a","source":"","type":"t"}`, nil, onceflow.ErrMissingAttribute, "source"},
		{"empty type", `{"specversion":"1.0","id":"a","source":"s","type":""}`, nil, onceflow.ErrMissingAttribute, "type"},
		{"empty specversion", `{"specversion":"","id":"a","source":"s","type":"t"}`, nil, onceflow.ErrMissingAttribute, "specversion"},
		{"case variant", `{"specversion":"1.0","ID":"a","source":"s","type":"t"}`, nil, onceflow.ErrMissingAttribute, "id"},

		// too large
		{"over default", head + `,"data":"` + strings.Repeat("a", 1<<20) + `"}`, nil, onceflow.ErrEventTooLarge, ""},
		{"over option", head + `}`, []onceflow.DecodeOption{onceflow.WithMaxEventBytes(10)}, onceflow.ErrEventTooLarge, ""},
		{"garbage over limit", strings.Repeat("{", 11), []onceflow.DecodeOption{onceflow.WithMaxEventBytes(10)}, onceflow.ErrEventTooLarge, ""},

		// too deep
		{"deep arrays", head + `,"data":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, nil, onceflow.ErrTooDeep, "data"},
		{"deep unclosed", head + `,"data":` + strings.Repeat("[", 100000), nil, onceflow.ErrTooDeep, "data"},
		{"one over limit", head + `,"data":` + nested(64) + `}`, nil, onceflow.ErrTooDeep, "data"},
		{"deep extension", head + `,"ext":` + nested(100) + `}`, nil, onceflow.ErrTooDeep, "ext"},
		{"deep wrong-type id", `{"id":` + nested(100) + `}`, nil, onceflow.ErrTooDeep, "id"},
		{"option depth 1", head + `,"data":{}}`, []onceflow.DecodeOption{onceflow.WithMaxDepth(1)}, onceflow.ErrTooDeep, "data"},

		// invalid identifiers
		{"long id", `{"specversion":"1.0","id":"` + long + `","source":"s","type":"t"}`, nil, onceflow.ErrInvalidIdentifier, "id"},
		{"long source", `{"specversion":"1.0","id":"a","source":"` + long + `","type":"t"}`, nil, onceflow.ErrInvalidIdentifier, "source"},
		{"long partitionkey", head + `,"partitionkey":"` + long + `"}`, nil, onceflow.ErrInvalidIdentifier, "partitionkey"},
		{"long by escapes", `{"specversion":"1.0","id":"` + strings.Repeat(`\u00e9`, 129) + `","source":"s","type":"t"}`, nil, onceflow.ErrInvalidIdentifier, "id"},
		{"option limit", head + `}`, []onceflow.DecodeOption{onceflow.WithMaxIdentifierBytes(3)}, onceflow.ErrInvalidIdentifier, "source"},
		{"NUL in id", `{"specversion":"1.0","id":"a\u0000b","source":"s","type":"t"}`, nil, onceflow.ErrInvalidIdentifier, "id"},
		{"newline in source", `{"specversion":"1.0","id":"a","source":"s\nforged log line","type":"t"}`, nil, onceflow.ErrInvalidIdentifier, "source"},
		{"DEL in partitionkey", head + `,"partitionkey":"k\u007f"}`, nil, onceflow.ErrInvalidIdentifier, "partitionkey"},
		{"escape in id", `{"specversion":"1.0","id":"\u001b[31m","source":"s","type":"t"}`, nil, onceflow.ErrInvalidIdentifier, "id"},

		// duplicate members
		{"duplicate id", head + `,"id":"forged"}`, nil, onceflow.ErrDuplicateMember, "id"},
		{"duplicate id escaped", head + `,"\u0069d":"forged"}`, nil, onceflow.ErrDuplicateMember, "id"},
		{"duplicate source same value", head + `,"source":"/orders"}`, nil, onceflow.ErrDuplicateMember, "source"},
		{"duplicate data", head + `,"data":1,"data":2}`, nil, onceflow.ErrDuplicateMember, "data"},
		{"duplicate extension", head + `,"ext":1,"ext":2}`, nil, onceflow.ErrDuplicateMember, "ext"},
		{"duplicate in data", head + `,"data":{"a":1,"b":2,"a":3}}`, nil, onceflow.ErrDuplicateMember, "data"},
		{"duplicate deep in data", head + `,"data":[{"x":{"a":1,"\u0061":2}}]}`, nil, onceflow.ErrDuplicateMember, "data"},
		{"duplicate in big object", head + `,"data":` + bigObject(10000, "k9999") + `}`, nil, onceflow.ErrDuplicateMember, "data"},
		{"duplicate in extension", head + `,"ext":{"a":1,"a":1}}`, nil, onceflow.ErrDuplicateMember, "ext"},

		// invalid UTF-8
		{"bad byte in id", `{"specversion":"1.0","id":"a` + "\xff" + `","source":"s","type":"t"}`, nil, onceflow.ErrInvalidUTF8, "id"},
		{"bad byte in data", head + `,"data":{"k":"` + "\xc3\x28" + `"}}`, nil, onceflow.ErrInvalidUTF8, "data"},
		{"bad byte in name", head + `,"data":{"` + "\xe2\x82" + `":1}}`, nil, onceflow.ErrInvalidUTF8, "data"},
		{"UTF-8 surrogate", head + `,"subject":"` + "\xed\xa0\x80" + `"}`, nil, onceflow.ErrInvalidUTF8, "subject"},
		{"overlong", head + `,"subject":"` + "\xc0\xaf" + `"}`, nil, onceflow.ErrInvalidUTF8, "subject"},
		{"lone high surrogate", head + `,"subject":"\ud800"}`, nil, onceflow.ErrInvalidUTF8, "subject"},
		{"lone low surrogate", head + `,"data":"\udc00"}`, nil, onceflow.ErrInvalidUTF8, "data"},
		{"reversed surrogates", head + `,"data":"\ude00\ud83d"}`, nil, onceflow.ErrInvalidUTF8, "data"},
		{"high then letter", head + `,"data":"\ud83dx"}`, nil, onceflow.ErrInvalidUTF8, "data"},

		// unsupported specversion
		{"0.3", `{"specversion":"0.3","id":"a","source":"s","type":"t"}`, nil, onceflow.ErrUnsupportedVersion, "specversion"},
		{"1", `{"specversion":"1","id":"a","source":"s","type":"t"}`, nil, onceflow.ErrUnsupportedVersion, "specversion"},
		{"1.0 with space", `{"specversion":"1.0 ","id":"a","source":"s","type":"t"}`, nil, onceflow.ErrUnsupportedVersion, "specversion"},
		{"2.0", `{"specversion":"2.0","id":"a","source":"s","type":"t"}`, nil, onceflow.ErrUnsupportedVersion, "specversion"},

		// bad sequence
		{"sequence zero", head + `,"sequence":"0"}`, nil, onceflow.ErrBadSequence, "sequence"},
		{"sequence negative", head + `,"sequence":"-1"}`, nil, onceflow.ErrBadSequence, "sequence"},
		{"sequence plus", head + `,"sequence":"+1"}`, nil, onceflow.ErrBadSequence, "sequence"},
		{"sequence leading zero", head + `,"sequence":"007"}`, nil, onceflow.ErrBadSequence, "sequence"},
		{"sequence overflow", head + `,"sequence":"18446744073709551616"}`, nil, onceflow.ErrBadSequence, "sequence"},
		{"sequence very long", head + `,"sequence":"` + strings.Repeat("9", 100) + `"}`, nil, onceflow.ErrBadSequence, "sequence"},
		{"sequence empty", head + `,"sequence":""}`, nil, onceflow.ErrBadSequence, "sequence"},
		{"sequence fraction", head + `,"sequence":"1.5"}`, nil, onceflow.ErrBadSequence, "sequence"},
		{"sequence hex", head + `,"sequence":"0x10"}`, nil, onceflow.ErrBadSequence, "sequence"},

		// bad time
		{"time date only", head + `,"time":"2026-03-01"}`, nil, onceflow.ErrBadTime, "time"},
		{"time no zone", head + `,"time":"2026-03-01T12:00:00"}`, nil, onceflow.ErrBadTime, "time"},
		{"time empty", head + `,"time":""}`, nil, onceflow.ErrBadTime, "time"},
		{"time RFC 1123", head + `,"time":"Sun, 01 Mar 2026 12:00:00 GMT"}`, nil, onceflow.ErrBadTime, "time"},
		{"time hour 25", head + `,"time":"2026-03-01T25:00:00Z"}`, nil, onceflow.ErrBadTime, "time"},
		{"time unix", head + `,"time":"1700000000"}`, nil, onceflow.ErrBadTime, "time"},
	}
	reasons := map[error]string{
		onceflow.ErrMalformedJSON:      "malformed_json",
		onceflow.ErrWrongType:          "wrong_type",
		onceflow.ErrMissingAttribute:   "missing_attribute",
		onceflow.ErrEventTooLarge:      "event_too_large",
		onceflow.ErrTooDeep:            "too_deep",
		onceflow.ErrInvalidIdentifier:  "invalid_identifier",
		onceflow.ErrDuplicateMember:    "duplicate_member",
		onceflow.ErrInvalidUTF8:        "invalid_utf8",
		onceflow.ErrUnsupportedVersion: "unsupported_specversion",
		onceflow.ErrBadSequence:        "bad_sequence",
		onceflow.ErrBadTime:            "bad_time",
	}
	perClass := map[error]int{}
	for _, tt := range tests {
		perClass[tt.want]++
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := onceflow.NewDecoder(tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := d.Decode([]byte(tt.in))
			if ev != nil {
				t.Errorf("Decode returned an event with error %v", err)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if got, want := onceflow.Reason(err), reasons[tt.want]; got != want {
				t.Errorf("Reason = %q, want %q", got, want)
			}
			var de *onceflow.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err %T is not a *DecodeError", err)
			}
			if de.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", de.Field, tt.field, err)
			}
			if de.Err != tt.want {
				t.Errorf("Err = %v, want the sentinel %v", de.Err, tt.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("message of %d bytes: %.300s", len(err.Error()), err)
			}
		})
	}
	for sentinel := range reasons {
		if perClass[sentinel] < 3 {
			t.Errorf("%v: %d cases, want at least 3", sentinel, perClass[sentinel])
		}
	}
}

func TestDecodeErrorMessages(t *testing.T) {
	t.Parallel()
	const payload = "SECRET-PAYLOAD"
	long := strings.Repeat("Q", 1000)
	tests := []struct {
		in   string
		want string // the exact message, or "" to skip the comparison
	}{
		{`{"specversion":"1.0","id":"` + strings.Repeat("a", 300) + `","source":"s","type":"t","data":"` + payload + `"}`,
			`onceflow: field "id": invalid identifier: 300 bytes, limit 256`},
		{head + `,"data":{"` + payload + `":1,"` + payload + `":2}}`,
			`onceflow: field "data": duplicate member: name repeated in a nested object at offset 101`},
		{head + `,"data":"` + payload + "\xff" + `"}`,
			`onceflow: field "data": invalid UTF-8: invalid UTF-8 at offset 96`},
		{head + `,"data":[["` + payload + `"]]}`, ""}, // too deep with a small limit, below
		{head + `,"data":"` + payload + `"}x`,
			`onceflow: malformed JSON: trailing data after the object at offset 98`},
		{head + `,"data":"` + payload + `",}`, `onceflow: malformed JSON: expected member name at offset 98`},
		{head + `,"subject":"s" "x"}`, `onceflow: malformed JSON: expected ',' or '}' after member value at offset 88`},
		{head + `,"data_base64":"` + payload + `"}`, `onceflow: field "data_base64": wrong type: not valid standard base64`},
		{head + `,"` + long + `":"` + payload + `","` + long + `":1}`, ""},
		{head + `,"sequence":"-` + long + `"}`, ""},
		{head + `,"time":"` + long + `"}`, ""},
		{`{"specversion":"` + long + `","id":"a","source":"s","type":"t"}`, ""},
		{`{"specversion":"1.0","id":"` + long + "\n" + `","source":"s","type":"t"}`, ""},
		{`{"specversion":"1.0","id":"a\nb","source":"s","type":"t"}`,
			`onceflow: field "id": invalid identifier: control character U+000A at byte 1 of "a\nb"`},
		{`{"specversion":"0.3","id":"a","source":"s","type":"t"}`,
			`onceflow: field "specversion": unsupported specversion: "0.3", want "1.0"`},
		{head + `,"id":5}`, `onceflow: field "id": duplicate member: appears more than once`},
		{`{"specversion":"1.0","id":5,"source":"s","type":"t"}`, `onceflow: field "id": wrong type: got number, want string`},
		{`{"specversion":"1.0","source":"s","type":"t"}`, `onceflow: field "id": missing attribute: absent`},
		{head + `,"data":[` + strings.Repeat("1,", 1<<19) + `1]}`, `onceflow: event too large: 1048661 bytes, limit 1048576`},
	}
	d, err := onceflow.NewDecoder(onceflow.WithMaxDepth(2))
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		_, err := d.Decode([]byte(tt.in))
		if err == nil {
			t.Errorf("%d: no error", i)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, payload) {
			t.Errorf("%d: message echoes the payload: %s", i, msg)
		}
		if strings.Contains(msg, long[:65]) {
			t.Errorf("%d: message holds more than 64 bytes of a value: %.200s", i, msg)
		}
		if strings.ContainsAny(msg, "\n\r") {
			t.Errorf("%d: message has a line break: %q", i, msg)
		}
		if tt.want != "" && msg != tt.want {
			t.Errorf("%d: message\n got  %s\n want %s", i, msg, tt.want)
		}
	}
}

func TestReason(t *testing.T) {
	t.Parallel()
	_, decErr := onceflow.DecodeEvent([]byte(`{`))
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("boom"), "other"},
		{onceflow.ErrStorage, "other"},
		{decErr, "malformed_json"},
		{fmt.Errorf("ingest line 7: %w", decErr), "malformed_json"},
		{onceflow.ErrBadTime, "bad_time"},
		{&onceflow.DecodeError{Field: "x", Err: onceflow.ErrTooDeep}, "too_deep"},
	}
	for _, tt := range tests {
		if got := onceflow.Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestNewDecoderOptions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		opt  onceflow.DecodeOption
		name string
	}{
		{onceflow.WithMaxEventBytes(0), "WithMaxEventBytes"},
		{onceflow.WithMaxDepth(-1), "WithMaxDepth"},
		{onceflow.WithMaxIdentifierBytes(0), "WithMaxIdentifierBytes"},
		{onceflow.WithMaxIdentifierBytes(onceflow.MaxIdentifierBytes + 1), "WithMaxIdentifierBytes"},
	} {
		d, err := onceflow.NewDecoder(tt.opt)
		if err == nil || d != nil {
			t.Errorf("NewDecoder(%s) = %v, %v; want an error", tt.name, d, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.name) {
			t.Errorf("error %q does not name %s", err, tt.name)
		}
	}
	// The last value of an option wins; nil options are ignored.
	d, err := onceflow.NewDecoder(onceflow.WithMaxDepth(0), nil, onceflow.WithMaxDepth(3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decode([]byte(head + `,"data":[[1]]}`)); err != nil {
		t.Errorf("depth 3 under limit 3: %v", err)
	}
	if _, err := d.Decode([]byte(head + `,"data":[[[1]]]}`)); !errors.Is(err, onceflow.ErrTooDeep) {
		t.Errorf("depth 4 under limit 3: err = %v, want ErrTooDeep", err)
	}
	// An event exactly at the size limit is accepted.
	in := []byte(head + `}`)
	d, err = onceflow.NewDecoder(onceflow.WithMaxEventBytes(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decode(in); err != nil {
		t.Errorf("event at the size limit: %v", err)
	}
}

func TestDecoderZeroValue(t *testing.T) {
	t.Parallel()
	var d onceflow.Decoder
	if _, err := d.Decode([]byte(head + `}`)); err != nil {
		t.Fatalf("zero Decoder: %v", err)
	}
	in := []byte(head + `,"data":"` + strings.Repeat("a", 1<<20) + `"}`)
	if _, err := d.Decode(in); !errors.Is(err, onceflow.ErrEventTooLarge) {
		t.Errorf("zero Decoder, event over 1 MiB: err = %v, want ErrEventTooLarge", err)
	}
}

func TestDecodeCopiesInput(t *testing.T) {
	t.Parallel()
	in := []byte(head + `,"data":{"a":1}}`)
	ev, err := onceflow.DecodeEvent(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'X'
	}
	if ev.ID != "e-1" || ev.Source != "/orders" || string(ev.Data) != `{"a":1}` {
		t.Errorf("event changed with its input: %+v", ev)
	}
	if cap(ev.Data) != len(ev.Data) {
		t.Errorf("cap(Data) = %d, want %d so that appending cannot overwrite Raw", cap(ev.Data), len(ev.Data))
	}
}

func TestDecodeDeepNestingNoStackGrowth(t *testing.T) {
	t.Parallel()
	// With a huge depth limit a recursive decoder would need a deep stack;
	// this one scans iteratively.
	const n = 400000
	d, err := onceflow.NewDecoder(onceflow.WithMaxDepth(1<<30), onceflow.WithMaxEventBytes(1<<22))
	if err != nil {
		t.Fatal(err)
	}
	in := head + `,"data":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`
	if _, err := d.Decode([]byte(in)); err != nil {
		t.Errorf("%d nested arrays: %v", n, err)
	}
	in = head + `,"data":` + strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) + `}`
	if _, err := d.Decode([]byte(in)); err != nil {
		t.Errorf("%d nested objects: %v", n, err)
	}
}

func TestDecodeBigObjectIsLinear(t *testing.T) {
	t.Parallel()
	d, err := onceflow.NewDecoder(onceflow.WithMaxEventBytes(1 << 24))
	if err != nil {
		t.Fatal(err)
	}
	// fastest returns the fastest of a few decodings of data, after
	// checking that it decodes as want.
	fastest := func(data string, want error) time.Duration {
		in := []byte(head + `,"data":` + data + `}`)
		best := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			_, err := d.Decode(in)
			best = min(best, time.Since(start))
			if !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
		}
		return best
	}
	// An object of 200k members against an array of the same tokens: a
	// map costs a few times the scan, a quadratic duplicate check
	// thousands of times.
	const n = 200000
	obj := bigObject(n, "")
	arr := "[" + strings.NewReplacer(":", ",").Replace(obj[1:len(obj)-1]) + "]"
	o, a := fastest(obj, nil), fastest(arr, nil)
	t.Logf("object of %d members: %v; array of the same tokens: %v", n, o, a)
	if o > 50*a {
		t.Errorf("object of %d members: %v; array of the same tokens: %v", n, o, a)
	}
	fastest(bigObject(n, "k0"), onceflow.ErrDuplicateMember)
}

// TestDecodeAgreesWithEncodingJSON decodes random valid events and checks
// every attribute against encoding/json's reading of the same bytes.
func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	for i := range 2000 {
		attrs := map[string]string{
			"specversion": "1.0",
			"id":          randString(rng, 1+rng.IntN(40), false),
			"source":      randString(rng, 1+rng.IntN(40), false),
			"type":        randString(rng, 1+rng.IntN(40), true),
		}
		if rng.IntN(2) == 0 {
			attrs["subject"] = randString(rng, rng.IntN(40), true)
		}
		if rng.IntN(2) == 0 {
			attrs["partitionkey"] = randString(rng, 1+rng.IntN(40), false)
		}
		if rng.IntN(2) == 0 {
			attrs["sequence"] = strconv.FormatUint(1+rng.Uint64N(1<<63), 10)
		}
		obj := map[string]any{}
		for k, v := range attrs {
			obj[k] = v
		}
		obj["data"] = randValue(rng, 4)
		in, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := onceflow.DecodeEvent(in)
		if err != nil {
			t.Fatalf("%d: DecodeEvent(%s): %v", i, in, err)
		}
		got := map[string]string{"specversion": ev.SpecVersion, "id": ev.ID, "source": ev.Source, "type": ev.Type}
		if ev.Subject != "" {
			got["subject"] = ev.Subject
		}
		if ev.PartitionKey != "" {
			got["partitionkey"] = ev.PartitionKey
		}
		if ev.Sequence != 0 {
			got["sequence"] = strconv.FormatUint(ev.Sequence, 10)
		}
		if _, ok := attrs["subject"]; ok && ev.Subject == "" {
			got["subject"] = ""
		}
		if !reflect.DeepEqual(got, attrs) {
			t.Fatalf("%d: %s\n got  %q\n want %q", i, in, got, attrs)
		}
		var want, gotData any
		if err := json.Unmarshal(ev.Data, &gotData); err != nil {
			t.Fatalf("%d: Data %s: %v", i, ev.Data, err)
		}
		want = obj["data"]
		wantJSON, _ := json.Marshal(want)
		gotJSON, _ := json.Marshal(gotData)
		if !bytes.Equal(wantJSON, gotJSON) {
			t.Fatalf("%d: data\n got  %s\n want %s", i, gotJSON, wantJSON)
		}
	}
}

// randString returns a random valid UTF-8 string of n runes, with control
// characters only when ctl is set.
func randString(rng *rand.Rand, n int, ctl bool) string {
	pool := []rune("abcXYZ09 -_/.:\"\\é€😀<>&\u2028")
	if ctl {
		pool = append(pool, '\n', '\t', 0, 0x1f, 0x7f)
	}
	r := make([]rune, n)
	for i := range r {
		r[i] = pool[rng.IntN(len(pool))]
	}
	return string(r)
}

func randValue(rng *rand.Rand, depth int) any {
	k := rng.IntN(7)
	if depth == 0 {
		k %= 4
	}
	switch k {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return rng.NormFloat64() * 1e6
	case 3:
		return randString(rng, rng.IntN(20), true)
	case 4, 5:
		m := map[string]any{}
		for range rng.IntN(25) {
			m[randString(rng, rng.IntN(6), true)] = randValue(rng, depth-1)
		}
		return m
	default:
		a := make([]any, rng.IntN(6))
		for i := range a {
			a[i] = randValue(rng, depth-1)
		}
		return a
	}
}

func TestDecodeConcurrent(t *testing.T) {
	t.Parallel()
	d, err := onceflow.NewDecoder(onceflow.WithMaxDepth(8))
	if err != nil {
		t.Fatal(err)
	}
	good := []byte(head + `,"data":{"a":[1,2,3]}}`)
	bad := []byte(head + `,"data":` + nested(20) + `}`)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 500 {
				if _, err := d.Decode(good); err != nil {
					errs <- err
					return
				}
				if _, err := d.Decode(bad); !errors.Is(err, onceflow.ErrTooDeep) {
					errs <- fmt.Errorf("deep input: err = %v, want ErrTooDeep", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
