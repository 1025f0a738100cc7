package dedup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
)

// FuzzRecordCodec checks that outcome records, dead letters and outbox
// messages survive encoding and decoding, that any flipped bit is caught,
// and that arbitrary bytes never panic a decoder: they decode, or fail
// with onceflow.ErrCorrupt. Seeds: testdata/fuzz/FuzzRecordCodec.
func FuzzRecordCodec(f *testing.F) {
	f.Add([]byte{}, byte(1), uint32(1), int64(1_900_000_000_000_000_000), "", []byte("ok"), "")
	f.Add([]byte{1, 2, 0, 0, 0, 0}, byte(2), uint32(5), int64(-1), "timeout", []byte(`{"id":"x"}`), "gave up")
	f.Fuzz(func(t *testing.T, data []byte, status byte, attempts uint32, nanos int64, class string, bin []byte, text string) {
		// Arbitrary bytes.
		if rec, err := decodeRecord(data); err != nil {
			if !errors.Is(err, onceflow.ErrCorrupt) {
				t.Fatalf("decodeRecord: %v; want ErrCorrupt", err)
			}
		} else if again, err := decodeRecord(appendRecord(nil, &rec)); err != nil || !sameRecord(again, rec) {
			// Whatever decodes re-encodes to the same record (unknown
			// fields dropped).
			t.Fatalf("re-encoded %+v decodes to %+v, %v", rec, again, err)
		}
		if _, err := decodeDeadLetter(data); err != nil && !errors.Is(err, onceflow.ErrCorrupt) {
			t.Fatalf("decodeDeadLetter: %v; want ErrCorrupt", err)
		}
		if _, err := decodeMessage(data); err != nil && !errors.Is(err, onceflow.ErrCorrupt) {
			t.Fatalf("decodeMessage: %v; want ErrCorrupt", err)
		}

		// Round trips.
		if status == 0 {
			status = 1
		}
		var at time.Time
		if nanos != 0 {
			// Also times far outside the range of Unix nanoseconds.
			at = time.Unix(nanos, nanos&(1<<29-1)).UTC()
		}
		rec := record{
			status: onceflow.Status(status), attempts: attempts,
			firstSeen: at, errorClass: class, result: bin,
		}
		enc := appendRecord([]byte("prefix"), &rec)
		got, err := decodeRecord(enc[len("prefix"):])
		if err != nil || !sameRecord(got, rec) {
			t.Fatalf("round trip of %+v = %+v, %v", rec, got, err)
		}
		if len(data) > 0 {
			body := enc[len("prefix"):]
			i := int(data[0]) % len(body)
			body[i] ^= 1 << (data[len(data)-1] % 8)
			if _, err := decodeRecord(body); !errors.Is(err, onceflow.ErrCorrupt) {
				t.Fatalf("record with a bit flipped at %d: %v; want ErrCorrupt", i, err)
			}
		}

		d := onceflow.DeadLetter{
			Raw: bin, Reason: class, Error: text, Stack: []byte(text), Attempts: attempts,
			FirstAttempt: at, LastAttempt: at.Add(time.Second), Redriven: at,
		}
		gotd, err := decodeDeadLetter(appendDeadLetter(nil, &d))
		if err != nil || !sameDeadLetter(gotd, d) {
			t.Fatalf("dead letter round trip of %+v = %+v, %v", d, gotd, err)
		}

		m := onceflow.Message{Key: class, Topic: text, Payload: bin}
		gotm, err := decodeMessage(appendMessage(nil, &m))
		if err != nil || gotm.Key != m.Key || gotm.Topic != m.Topic || !bytes.Equal(gotm.Payload, m.Payload) {
			t.Fatalf("message round trip of %+v = %+v, %v", m, gotm, err)
		}
	})
}

func sameRecord(a, b record) bool {
	return a.status == b.status && a.attempts == b.attempts && a.firstSeen.Equal(b.firstSeen) &&
		a.errorClass == b.errorClass && bytes.Equal(a.result, b.result)
}

func sameDeadLetter(a, b onceflow.DeadLetter) bool {
	return bytes.Equal(a.Raw, b.Raw) && a.Reason == b.Reason && a.Error == b.Error &&
		bytes.Equal(a.Stack, b.Stack) && a.Attempts == b.Attempts &&
		a.FirstAttempt.Equal(b.FirstAttempt) && a.LastAttempt.Equal(b.LastAttempt) && a.Redriven.Equal(b.Redriven)
}

func TestRecordFormat(t *testing.T) {
	rec := record{status: onceflow.StatusDone, attempts: 2, errorClass: "c"}
	enc := appendRecord(nil, &rec)
	// A field a later version might add (tag 100) is skipped.
	body := appendField(append([]byte(nil), enc[:len(enc)-4]...), 100, []byte("future"))
	got, err := decodeRecord(appendChecksum(body))
	if err != nil || !sameRecord(got, rec) {
		t.Fatalf("record with an unknown field = %+v, %v; want %+v", got, err, rec)
	}
	for name, b := range map[string][]byte{
		"newer version":       appendChecksum(append([]byte{recordVersion + 1}, body[1:]...)),
		"version 0":           appendChecksum(append([]byte{0}, body[1:]...)),
		"fields out of order": appendChecksum(appendField(appendField([]byte{recordVersion, 1}, 3, []byte("c")), 1, []byte{2})),
		"field too long":      appendChecksum([]byte{recordVersion, 1, 3, 9, 'c'}),
		"no status":           appendChecksum([]byte{recordVersion, 0}),
		"short":               {recordVersion, 1, 0},
		"attempts overflow":   appendChecksum(appendUvarintField([]byte{recordVersion, 1}, tagAttempts, 1<<32)),
	} {
		if _, err := decodeRecord(b); !errors.Is(err, onceflow.ErrCorrupt) {
			t.Errorf("%s: %v; want ErrCorrupt", name, err)
		}
	}
}

func appendChecksum(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, crcTable))
}
