package onceflow_test

import (
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
