package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	onceflow "github.com/onceflow/onceflow"
)

// checkAscending checks that each key's events in out have the sequences
// 1, 2, 3, … in order, and returns the count per key.
func checkAscending(t *testing.T, out []byte) map[string]uint64 {
	t.Helper()
	last := map[string]uint64{}
	for i, l := range splitLines(out) {
		ev, err := onceflow.DecodeEvent(l)
		if err != nil {
			t.Fatalf("--out line %d: %v", i+1, err)
		}
		if ev.Sequence != last[ev.Key()]+1 {
			t.Fatalf("--out line %d: key %q sequence %d after %d", i+1, ev.Key(), ev.Sequence, last[ev.Key()])
		}
		last[ev.Key()] = ev.Sequence
	}
	return last
}

func TestOrderSequenceIsAscendingPerKey(t *testing.T) {
	dir := t.TempDir()
	in := gen(t, dir, "in.jsonl", "--events", "20000", "--dup", "0.2", "--bad", "0.01", "--shuffle", "300",
		"--keys", "8", "--sequence", "--seed", "4", "--max-event-bytes", "4096")
	// A valid event without sequence is rejected in sequence mode.
	f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"specversion":"1.0","id":"no-seq","source":"s","type":"t","partitionkey":"key-1"}` + "\n")
	f.Close()
	m := newModel()
	want, dups, rejected := m.add(t, readFile(t, in), 4096)
	want = want[:len(want)-1] // the event without sequence
	rejected++
	out, rej := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "rej.jsonl")
	_, stderr, code := exe(t, nil, "run", "--state", filepath.Join(dir, "state"), "--in", in, "--out", out,
		"--rejects", rej, "--order", "sequence", "--max-event-bytes", "4096")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	s := lastSummary(t, stderr)
	if s.Read != int64(m.lines) || s.Written != int64(len(want)) || s.Duplicates != int64(dups) || s.Rejected != int64(rejected) || s.Held != 0 {
		t.Fatalf("summary %+v; want read %d, written %d, duplicates %d, rejected %d, held 0", s, m.lines, len(want), dups, rejected)
	}
	checkSameLines(t, readFile(t, out), want, true)
	if n := checkAscending(t, readFile(t, out)); len(n) != 8 {
		t.Fatalf("keys written: %v, want 8", n)
	}
	m.rejects[m.lines] = "missing_attribute"
	checkRejects(t, rej, m.rejects)
}

// TestOrderSequenceHoldsAcrossRuns leaves a gap in one key: the events
// after it are held in the state, counted as held, and written by a later
// run that fills the gap.
func TestOrderSequenceHoldsAcrossRuns(t *testing.T) {
	dir := t.TempDir()
	all := splitLines(readFile(t, gen(t, dir, "all.jsonl", "--events", "6000", "--dup", "0.2", "--bad", "0", "--shuffle", "50",
		"--keys", "16", "--sequence", "--seed", "8")))
	// The gap: every copy of key-3's event 10.
	var first, gap [][]byte
	held := map[string]bool{}
	for _, l := range all {
		ev, err := onceflow.DecodeEvent(l)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.Key() == "key-3" && ev.Sequence == 10:
			gap = append(gap, l)
		case ev.Key() == "key-3" && ev.Sequence > 10:
			held[ev.ID] = true
			first = append(first, l)
		default:
			first = append(first, l)
		}
	}
	if len(gap) == 0 || len(held) == 0 {
		t.Fatalf("no gap (%d lines) or nothing after it (%d)", len(gap), len(held))
	}
	in1, in2 := filepath.Join(dir, "in1.jsonl"), filepath.Join(dir, "in2.jsonl")
	os.WriteFile(in1, joinLines(first), 0o644)
	os.WriteFile(in2, joinLines(gap), 0o644)
	state, out := filepath.Join(dir, "state"), filepath.Join(dir, "out.jsonl")

	_, stderr, code := exe(t, nil, "run", "--state", state, "--in", in1, "--out", out, "--order", "sequence")
	if code != 0 {
		t.Fatalf("run 1: exit %d: %s", code, stderr)
	}
	s1 := lastSummary(t, stderr)
	if s1.Held != int64(len(held)) || s1.Read != s1.Written+s1.Duplicates+s1.Rejected+s1.Held {
		t.Fatalf("run 1: summary %+v, want %d held and counts adding up", s1, len(held))
	}
	counts := checkAscending(t, readFile(t, out))
	if counts["key-3"] != 9 {
		t.Fatalf("run 1: key-3 written up to %d, want 9", counts["key-3"])
	}
	// A held event's record says so.
	var id string
	for id = range held {
		break
	}
	stdout, _, code := exe(t, nil, "inspect", "--state", state, "--source", sourceOf(t, all, id), "--id", id)
	var rec record
	if err := json.Unmarshal(stdout, &rec); code != 0 || err != nil || rec.Status != "held" {
		t.Fatalf("inspect of a held event: exit %d, %s, %v", code, stdout, err)
	}

	_, stderr, code = exe(t, nil, "run", "--state", state, "--in", in2, "--out", out, "--order", "sequence")
	if code != 0 {
		t.Fatalf("run 2: exit %d: %s", code, stderr)
	}
	s2 := lastSummary(t, stderr)
	if s2.Held != 0 || s2.Written != int64(1+len(held)) || s2.Duplicates != int64(len(gap)-1) {
		t.Fatalf("run 2: summary %+v, want %d written (the gap and the held), %d duplicates, 0 held", s2, 1+len(held), len(gap)-1)
	}
	checkAscending(t, readFile(t, out))
	m := newModel()
	want, _, _ := m.add(t, joinLines(all), defaultMaxEventBytes)
	checkSameLines(t, readFile(t, out), want, true)
	if got := bytes.Count(readFile(t, out), []byte("\n")); got != len(want) {
		t.Fatalf("%d lines written in all, want %d", got, len(want))
	}
}

func sourceOf(t *testing.T, lines [][]byte, id string) string {
	t.Helper()
	for _, l := range lines {
		if ev, err := onceflow.DecodeEvent(l); err == nil && ev.ID == id {
			return ev.Source
		}
	}
	t.Fatalf("no event %s", id)
	return ""
}

func TestOrderSequenceNeedsOneShard(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"run", "--state", t.TempDir(), "--in", "-", "--order", "sequence", "--shards", strconv.Itoa(2)},
		bytes.NewReader(nil), &stdout, &stderr)
	if code != exitUsage || !bytes.Contains(stderr.Bytes(), []byte("--order sequence needs --shards 1")) {
		t.Fatalf("exit %d, %s", code, stderr.String())
	}
}
