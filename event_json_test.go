package onceflow_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
)

func TestAppendJSONRoundTrip(t *testing.T) {
	ev := &onceflow.Event{
		SpecVersion: "1.0", ID: "id-1 \"quoted\"", Source: "urn:src", Type: "t.v1",
		Time:    time.Date(2026, 11, 27, 10, 0, 0, 500, time.UTC),
		Subject: "s", DataContentType: "application/json", DataSchema: "urn:schema",
		PartitionKey: "pk\u00e9", Sequence: 42, Data: []byte(`{"a":[1,2]}`),
	}
	got, err := onceflow.DecodeEvent(ev.AppendJSON(nil))
	if err != nil {
		t.Fatalf("DecodeEvent(AppendJSON) = %v", err)
	}
	if got.ID != ev.ID || got.Source != ev.Source || got.Type != ev.Type || !got.Time.Equal(ev.Time) ||
		got.Subject != ev.Subject || got.DataContentType != ev.DataContentType || got.DataSchema != ev.DataSchema ||
		got.PartitionKey != ev.PartitionKey || got.Sequence != 42 || string(got.Data) != string(ev.Data) {
		t.Fatalf("round trip: got %+v, want %+v", got, ev)
	}
	b64 := &onceflow.Event{ID: "i", Source: "s", Type: "t", Data: []byte{0, 1, 255}, DataBase64: true}
	got, err = onceflow.DecodeEvent(b64.AppendJSON(nil))
	if err != nil || !got.DataBase64 || string(got.Data) != string(b64.Data) {
		t.Fatalf("base64 round trip: %+v, %v", got, err)
	}
	if raw := (&onceflow.Event{Raw: []byte(`{"x":1}`)}).AppendJSON(nil); string(raw) != `{"x":1}` {
		t.Fatalf("AppendJSON with Raw = %s, want Raw unchanged", raw)
	}
}

func TestValidate(t *testing.T) {
	ok := func() onceflow.Event {
		return onceflow.Event{ID: "i", Source: "s", Type: "t"}
	}
	long := strings.Repeat("x", onceflow.MaxIdentifierBytes+1)
	bad := []struct {
		name  string
		edit  func(*onceflow.Event)
		field string
		want  error
	}{
		{"no type", func(e *onceflow.Event) { e.Type = "" }, "type", onceflow.ErrMissingAttribute},
		{"no id", func(e *onceflow.Event) { e.ID = "" }, "id", onceflow.ErrMissingAttribute},
		{"specversion", func(e *onceflow.Event) { e.SpecVersion = "0.3" }, "specversion", onceflow.ErrUnsupportedVersion},
		{"data not JSON", func(e *onceflow.Event) { e.Data = []byte("hello") }, "data", onceflow.ErrMalformedJSON},
		{"data two values", func(e *onceflow.Event) { e.Data = []byte(`1, "x": 2`) }, "data", onceflow.ErrMalformedJSON},
		{"data empty", func(e *onceflow.Event) { e.Data = []byte{} }, "data", onceflow.ErrMalformedJSON},
		{"data duplicate member", func(e *onceflow.Event) { e.Data = []byte(`{"a":1,"a":2}`) }, "data", onceflow.ErrDuplicateMember},
		{"id too long", func(e *onceflow.Event) { e.ID = long }, "id", onceflow.ErrInvalidIdentifier},
		{"partition key too long", func(e *onceflow.Event) { e.PartitionKey = long }, "partitionkey", onceflow.ErrInvalidIdentifier},
		{"control character", func(e *onceflow.Event) { e.Source = "a\nb" }, "source", onceflow.ErrInvalidIdentifier},
		{"invalid UTF-8", func(e *onceflow.Event) { e.Subject = "a\xffb" }, "subject", onceflow.ErrInvalidUTF8},
		{"invalid UTF-8 id", func(e *onceflow.Event) { e.ID = "\xc3" }, "id", onceflow.ErrInvalidUTF8},
		{"time", func(e *onceflow.Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "time", onceflow.ErrBadTime},
	}
	for _, c := range bad {
		ev := ok()
		c.edit(&ev)
		err := ev.Validate()
		var de *onceflow.DecodeError
		if !errors.Is(err, c.want) || !errors.As(err, &de) || de.Field != c.field {
			t.Errorf("%s: Validate() = %v, want %v in field %q", c.name, err, c.want, c.field)
		}
	}

	good := []onceflow.Event{
		ok(),
		{SpecVersion: "1.0", ID: strings.Repeat("i", onceflow.MaxIdentifierBytes), Source: "s", Type: "t",
			PartitionKey: strings.Repeat("k", onceflow.MaxIdentifierBytes), Sequence: 7,
			Time: time.Date(2026, 11, 28, 1, 2, 3, 4, time.FixedZone("x", 3600)), Subject: "<&>é"},
		{ID: "i", Source: "s", Type: "t", Data: []byte(" \n{\"a\":[1,{\"b\":null}]}\t")},
		{ID: "i", Source: "s", Type: "t", Data: []byte{0, 0xff, 'x'}, DataBase64: true},
		{ID: "i", Source: "s", Type: "t", Data: []byte(strings.Repeat("[", 200) + strings.Repeat("]", 200))},
		{ID: "i", Source: "s", Type: "t", Raw: []byte("not JSON: Raw is ignored")},
	}
	for i, ev := range good {
		if err := ev.Validate(); err != nil {
			t.Errorf("good event %d: Validate() = %v", i, err)
		}
	}
}

// TestValidateAgreesWithDecode checks, on random events built in code, that
// Validate accepts exactly the events whose JSON encoding decodes back to
// the same attributes under the largest limits: what a pipeline relies on
// when it stores an accepted event and decodes it again.
func TestValidateAgreesWithDecode(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (a failure names its event)", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	dec, err := onceflow.NewDecoder(onceflow.WithMaxEventBytes(math.MaxInt), onceflow.WithMaxDepth(math.MaxInt),
		onceflow.WithMaxIdentifierBytes(onceflow.MaxIdentifierBytes))
	if err != nil {
		t.Fatal(err)
	}
	strs := []string{"", "a", "é", "a b", "<&>", "\x7f", "x\ny", "\t", "\xff", "\xed\xa0\x80", strings.Repeat("z", onceflow.MaxIdentifierBytes), strings.Repeat("z", onceflow.MaxIdentifierBytes+1)}
	pick := func() string {
		if rnd.IntN(3) == 0 {
			return "ok"
		}
		return strs[rnd.IntN(len(strs))]
	}
	datas := []string{"", `{"a":1}`, " [1, {\"b\":null}]\n", "hello", `{"a":1,"a":2}`, "\"\xff\"", `1 2`, `"x"`, `{"a":`, `tru`, "nul", "-0.5e3", `{"\u0061":1,"a":2}`}
	times := []time.Time{{}, time.Date(2026, 11, 28, 1, 2, 3, 456, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("s", 3601)), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("m", -5400))}
	valid := 0
	for n := range 20000 {
		ev := &onceflow.Event{SpecVersion: []string{"", "1.0", "0.3"}[rnd.IntN(3)], ID: pick(), Source: pick(), Type: pick(),
			Subject: pick(), DataContentType: pick(), DataSchema: pick(), PartitionKey: pick(),
			Time: times[rnd.IntN(len(times))], Sequence: uint64(rnd.IntN(3))}
		if d := rnd.IntN(len(datas) + 2); d < len(datas) {
			ev.Data = []byte(datas[d])
		} else if d == len(datas) {
			ev.Data, ev.DataBase64 = []byte{0, 0xff, 'x'}, true
		}
		verr := ev.Validate()
		got, derr := dec.Decode(ev.AppendJSON(nil))
		same := derr == nil && got.ID == ev.ID && got.Source == ev.Source && got.Type == ev.Type &&
			got.Subject == ev.Subject && got.DataContentType == ev.DataContentType && got.DataSchema == ev.DataSchema &&
			got.PartitionKey == ev.PartitionKey && got.Time.Equal(ev.Time) && got.Sequence == ev.Sequence &&
			string(got.Data) == strings.Trim(string(ev.Data), " \t\r\n") && (ev.Data == nil || got.DataBase64 == ev.DataBase64)
		if (verr == nil) != same {
			t.Fatalf("event %d %+v: Validate() = %v, but decoding its JSON gave %v (same attributes: %v)", n, ev, verr, derr, same)
		}
		if verr == nil {
			valid++
		}
	}
	if valid < 100 {
		t.Fatalf("only %d of 20,000 random events were valid: the generator does not reach the valid side", valid)
	}
}
