package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
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
// longer than the tail, and lines at its boundaries, the tail is always the
// last min(written, 4 KiB) bytes written, and never grows its buffer.
func TestKeepTail(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	line := func(n int) *onceflow.Event {
		raw := make([]byte, n)
		for j := range raw {
			raw[j] = byte('a' + rng.IntN(26))
		}
		return &onceflow.Event{Raw: raw}
	}
	s := &sink{tail: make([]byte, 0, tailBytes)}
	var all []byte
	write := func(what string, evs []*onceflow.Event) {
		t.Helper()
		for _, ev := range evs {
			all = append(append(all, ev.Raw...), '\n')
		}
		s.keepTail(evs)
		want := all[len(all)-min(len(all), tailBytes):]
		if !bytes.Equal(s.tail, want) {
			i := 0
			for i < min(len(s.tail), len(want)) && s.tail[i] == want[i] {
				i++
			}
			t.Fatalf("%s: tail has %d bytes, want the last %d written; they differ from byte %d", what, len(s.tail), len(want), i)
		}
		if cap(s.tail) != tailBytes {
			t.Fatalf("%s: the tail's buffer grew to %d bytes", what, cap(s.tail))
		}
	}
	// Lines at the boundaries, each after a short line so that the old
	// tail is not empty: one that fills the tail with its newline, one that
	// skips its first byte, one whose newline alone is kept.
	write("nothing", nil)
	for _, n := range []int{0, tailBytes - 1, tailBytes, tailBytes + 1} {
		write("a short line", []*onceflow.Event{line(10)})
		write(fmt.Sprintf("a line of %d bytes", n), []*onceflow.Event{line(n)})
	}
	write("only the newline of the first line kept", []*onceflow.Event{line(5), line(tailBytes - 1)})
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
			evs[i] = line(n)
		}
		write(fmt.Sprintf("batch %d (%d lines)", batch, len(evs)), evs)
	}
}

// TestOutputCheckpoint: a new --out commits an empty checkpoint; a
// checkpoint of 8 bytes (a version without the checksum) is accepted and
// replaced at once by one with the checksum; a committed --out edited in
// place is refused and left as it is, whether or not lines follow; a
// committed --out that was deleted is not created again.
func TestOutputCheckpoint(t *testing.T) {
	dir := t.TempDir()
	store, err := dedup.Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	out := filepath.Join(dir, "out.jsonl")
	abs, err := filepath.Abs(out)
	if err != nil {
		t.Fatal(err)
	}
	name := checkpointPrefix + abs
	stored := func() []byte {
		t.Helper()
		v, ok, err := store.Checkpoint(name)
		if err != nil || !ok {
			t.Fatalf("the checkpoint of --out: found %v, %v", ok, err)
		}
		return v
	}
	commit := func(v []byte) {
		t.Helper()
		if err := store.Commit(&onceflow.CommitBatch{Checkpoints: []onceflow.Checkpoint{{Name: name, Value: v}}}); err != nil {
			t.Fatal(err)
		}
	}
	wantCheckpoint := func(v, content []byte) {
		t.Helper()
		if len(v) != 12 || binary.BigEndian.Uint64(v) != uint64(len(content)) ||
			binary.BigEndian.Uint32(v[8:]) != crc32.Checksum(content, crc32c) {
			t.Fatalf("checkpoint %x; want the length %d and the CRC-32C of the file", v, len(content))
		}
	}

	// A new file.
	s, err := openSink(store, out, nil)
	if err != nil {
		t.Fatalf("a new --out: %v", err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("the new --out: %v", err)
	}
	wantCheckpoint(stored(), nil)

	// A checkpoint without the checksum.
	committed := []byte("{\"a\":1}\n{\"b\":2}\n")
	if err := os.WriteFile(out, append(committed, "{\"torn\""...), 0o644); err != nil {
		t.Fatal(err)
	}
	commit(binary.BigEndian.AppendUint64(nil, uint64(len(committed))))
	s, err = openSink(store, out, nil)
	if err != nil {
		t.Fatalf("an 8-byte checkpoint: %v", err)
	}
	if s.off != int64(len(committed)) || !bytes.Equal(s.tail, committed) {
		t.Fatalf("offset %d, tail %q; want %d and the committed lines", s.off, s.tail, len(committed))
	}
	wantCheckpoint(stored(), committed)
	v, err := s.WriteBatch([]*onceflow.Event{{Raw: []byte(`{"c":3}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	committed = append(committed, "{\"c\":3}\n"...)
	wantCheckpoint(v, committed)
	if got := readFile(t, out); !bytes.Equal(got, committed) {
		t.Fatalf("--out holds %q, want %q (the torn line cut)", got, committed)
	}
	commit(v)

	// The committed part edited in place (one byte), then with a line
	// after it too.
	edited := bytes.Replace(committed, []byte(`"b":2`), []byte(`"b":9`), 1)
	for _, c := range []struct{ content, harm string }{
		{string(edited), "appending to it would continue"},
		{string(edited) + "{\"d\":4}\n", "cutting it back would destroy"},
	} {
		if err := os.WriteFile(out, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if s, err := openSink(store, out, nil); err == nil {
			s.close()
			t.Fatalf("an --out edited in place (%d bytes) was accepted", len(c.content))
		} else if msg := err.Error(); !strings.Contains(msg, "changed or replaced") || !strings.Contains(msg, c.harm) {
			t.Fatalf("error %q; want changed or replaced, and %q", msg, c.harm)
		}
		if got := readFile(t, out); string(got) != c.content {
			t.Fatalf("the refused --out was changed to %q", got)
		}
	}

	// The committed file deleted.
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	if s, err := openSink(store, out, nil); err == nil || !strings.Contains(err.Error(), "fewer than") {
		if s != nil {
			s.close()
		}
		t.Fatalf("a deleted --out: %v, want corrupt state", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused --out was created again: %v", err)
	}
}
