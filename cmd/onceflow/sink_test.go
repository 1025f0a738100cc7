package main

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
)

// TestKeepTail: across batches of lines of random lengths, some far
// longer than the tail, the tail is always the last min(written, 4 KiB)
// bytes written, and never grows its buffer.
func TestKeepTail(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	s := &sink{tail: make([]byte, 0, tailBytes)}
	var all []byte
	for batch := range 300 {
		evs := make([]*onceflow.Event, rng.IntN(8))
		for i := range evs {
			n := rng.IntN(200)
			switch rng.IntN(10) {
			case 0:
				n = 0
			case 1:
				n = tailBytes - 1 + rng.IntN(3) // a line of about the tail's length
			case 2:
				n = rng.IntN(5 * tailBytes)
			}
			raw := make([]byte, n)
			for j := range raw {
				raw[j] = byte('a' + rng.IntN(26))
			}
			evs[i] = &onceflow.Event{Raw: raw}
			all = append(append(all, raw...), '\n')
		}
		s.keepTail(evs)
		want := all[len(all)-min(len(all), tailBytes):]
		if !bytes.Equal(s.tail, want) {
			t.Fatalf("batch %d (%d lines): tail has %d bytes, not the last %d written", batch, len(evs), len(s.tail), len(want))
		}
		if cap(s.tail) != tailBytes {
			t.Fatalf("batch %d: the tail's buffer grew to %d bytes", batch, cap(s.tail))
		}
	}
}

// TestOutputCheckpoint: a checkpoint of 8 bytes (a version without the
// checksum) is accepted and replaced by one with the checksum; a committed
// --out edited in place, same length, is refused and left as it is.
func TestOutputCheckpoint(t *testing.T) {
	dir := t.TempDir()
	store, err := dedup.Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	out := filepath.Join(dir, "out.jsonl")
	committed := []byte("{\"a\":1}\n{\"b\":2}\n")
	if err := os.WriteFile(out, append(committed, "{\"torn\""...), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		t.Fatal(err)
	}
	name := checkpointPrefix + abs
	legacy := binary.BigEndian.AppendUint64(nil, uint64(len(committed)))
	commit := func(v []byte) {
		t.Helper()
		if err := store.Commit(&onceflow.CommitBatch{Checkpoints: []onceflow.Checkpoint{{Name: name, Value: v}}}); err != nil {
			t.Fatal(err)
		}
	}
	commit(legacy)

	s, err := openSink(store, out, nil)
	if err != nil {
		t.Fatalf("an 8-byte checkpoint: %v", err)
	}
	if s.off != int64(len(committed)) || !bytes.Equal(s.tail, committed) {
		t.Fatalf("offset %d, tail %q; want %d and the committed lines", s.off, s.tail, len(committed))
	}
	v, err := s.WriteBatch([]*onceflow.Event{{Raw: []byte(`{"c":3}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	committed = append(committed, "{\"c\":3}\n"...)
	if len(v) != 12 || binary.BigEndian.Uint64(v) != uint64(len(committed)) ||
		binary.BigEndian.Uint32(v[8:]) != crc32.Checksum(committed, crc32c) {
		t.Fatalf("checkpoint %x; want the length %d and the CRC-32C of the file", v, len(committed))
	}
	if got := readFile(t, out); !bytes.Equal(got, committed) {
		t.Fatalf("--out holds %q, want %q (the torn line cut)", got, committed)
	}
	commit(v)

	// The same length, one byte changed.
	edited := bytes.Replace(committed, []byte(`"b":2`), []byte(`"b":9`), 1)
	if err := os.WriteFile(out, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := openSink(store, out, nil); err == nil {
		s.close()
		t.Fatal("an --out edited in place was accepted")
	} else if msg := err.Error(); !strings.Contains(msg, "changed or replaced") || !strings.Contains(msg, "appending to it") {
		t.Fatalf("error %q; want changed or replaced, and that appending would mix files", msg)
	}
	if got := readFile(t, out); !bytes.Equal(got, edited) {
		t.Fatalf("the refused --out was changed to %q", got)
	}
}
