package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
)

// exe runs the built binary with args and stdin, and returns its stdout,
// stderr and exit code.
func exe(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	cmd := exec.Command(onceflowBin, args...)
	cmd.Stdin = stdin
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running onceflow %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return o.Bytes(), e.Bytes(), code
}

// gen writes a generated stream to dir/name and returns its path.
func gen(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	_, stderr, code := exe(t, nil, append([]string{"gen", "--out", path}, args...)...)
	if code != 0 {
		t.Fatalf("gen %v: exit %d: %s", args, code, stderr)
	}
	return path
}

// lastSummary parses the last line of stderr as a run summary.
func lastSummary(t *testing.T, stderr []byte) summary {
	t.Helper()
	lines := strings.Split(strings.TrimRight(string(stderr), "\n"), "\n")
	last := lines[len(lines)-1]
	var s summary
	dec := json.NewDecoder(strings.NewReader(last))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("last line of stderr %q is not a summary: %v", last, err)
	}
	return s
}

// checkRun runs onceflow run and checks the summary and the output added
// to out against the model.
func checkRun(t *testing.T, m *model, input, state, out, rejects string, limit int, extra ...string) summary {
	t.Helper()
	before := []byte{}
	if b, err := os.ReadFile(out); err == nil {
		before = b
	}
	want, dups, rejected := m.add(t, readFile(t, input), limit)
	args := append([]string{"run", "--state", state, "--in", input, "--out", out, "--rejects", rejects,
		"--max-event-bytes", fmt.Sprint(limit)}, extra...)
	_, stderr, code := exe(t, nil, args...)
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	s := lastSummary(t, stderr)
	if s.Read != int64(m.lines) || s.Written != int64(len(want)) || s.Duplicates != int64(dups) ||
		s.Rejected != int64(rejected) || s.Held != 0 {
		t.Fatalf("summary %+v, want read %d written %d duplicates %d rejected %d held 0",
			s, m.lines, len(want), dups, rejected)
	}
	if s.Seconds < 0 || s.EventsPerSecond < 0 {
		t.Fatalf("summary %+v: negative time or rate", s)
	}
	got := readFile(t, out)
	if !bytes.HasPrefix(got, before) {
		t.Fatalf("--out: the run changed what earlier runs wrote")
	}
	checkSameLines(t, got[len(before):], want, len(extra) > 0)
	checkRejects(t, rejects, m.rejects)
	return s
}

// checkSameLines checks that got holds want's lines, in order unless
// anyOrder.
func checkSameLines(t *testing.T, got []byte, want [][]byte, anyOrder bool) {
	t.Helper()
	gotLines := splitLines(got)
	if len(gotLines) != len(want) {
		t.Fatalf("--out has %d new lines, want %d", len(gotLines), len(want))
	}
	w := slices.Clone(want)
	if anyOrder {
		slices.SortFunc(gotLines, bytes.Compare)
		slices.SortFunc(w, bytes.Compare)
	}
	for i := range w {
		if !bytes.Equal(gotLines[i], w[i]) {
			t.Fatalf("--out line %d:\n got %.120q\nwant %.120q", i+1, gotLines[i], w[i])
		}
	}
}

func splitLines(b []byte) [][]byte {
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		return append(bytes.Split(b, []byte("\n")), nil) // flags a torn last line
	}
	return bytes.Split(b[:len(b)-1], []byte("\n"))
}

// checkRejects checks the rejects file against line → reason.
func checkRejects(t *testing.T, path string, want map[int]string) {
	t.Helper()
	got := map[int]string{}
	for i, l := range splitLines(readFile(t, path)) {
		var r rejectRecord
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("--rejects line %d %q: %v", i+1, l, err)
		}
		if r.Error == "" || r.Line < 1 {
			t.Fatalf("--rejects line %d %q: no error or line", i+1, l)
		}
		got[int(r.Line)] = r.Reason
	}
	if len(got) != len(want) {
		t.Fatalf("--rejects has %d records, want %d", len(got), len(want))
	}
	for line, reason := range want {
		if got[line] != reason {
			t.Fatalf("--rejects: line %d has reason %q, want %q", line, got[line], reason)
		}
	}
}

func TestRunCountsAndRerun(t *testing.T) {
	dir := t.TempDir()
	in := gen(t, dir, "in.jsonl", "--events", "20000", "--dup", "0.25", "--bad", "0.02", "--shuffle", "100",
		"--seed", "7", "--max-event-bytes", "4096")
	state, out, rej := filepath.Join(dir, "state"), filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "rej.jsonl")
	m := newModel()
	s := checkRun(t, m, in, state, out, rej, 4096)
	if s.Written == 0 || s.Duplicates == 0 || s.Rejected == 0 {
		t.Fatalf("summary %+v: the stream should have new events, duplicates and rejects", s)
	}
	// The same command again writes nothing: every event is a duplicate.
	s = checkRun(t, m, in, state, out, rej, 4096)
	if s.Written != 0 {
		t.Fatalf("rerun wrote %d events, want 0", s.Written)
	}
}

func TestOverlappingInputWritesOnlyNewEvents(t *testing.T) {
	dir := t.TempDir()
	all := readFile(t, gen(t, dir, "all.jsonl", "--events", "10000", "--dup", "0.2", "--bad", "0.01", "--seed", "3"))
	lines := splitLines(all)
	first := filepath.Join(dir, "first.jsonl")
	second := filepath.Join(dir, "second.jsonl")
	if err := os.WriteFile(first, joinLines(lines[:6000]), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(second, joinLines(lines[4000:]), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	m := newModel()
	checkRun(t, m, first, state, filepath.Join(dir, "out1.jsonl"), filepath.Join(dir, "rej1.jsonl"), defaultMaxEventBytes)
	// A second input overlapping the first, into the same --out and into
	// a fresh one: only the new events are written.
	s := checkRun(t, m, second, state, filepath.Join(dir, "out2.jsonl"), filepath.Join(dir, "rej2.jsonl"), defaultMaxEventBytes)
	if s.Written == 0 || s.Duplicates == 0 {
		t.Fatalf("summary %+v: want both new events and duplicates", s)
	}
}

func TestRunShardsWritesEachEventOnce(t *testing.T) {
	dir := t.TempDir()
	in := gen(t, dir, "in.jsonl", "--events", "20000", "--dup", "0.3", "--bad", "0.01", "--shuffle", "500", "--seed", "11")
	// Copies of one identity with another partitionkey: they must not be
	// written twice when their keys go to different shards.
	var extra bytes.Buffer
	for _, l := range splitLines(readFile(t, in))[:3000] {
		extra.Write(bytes.Replace(l, []byte(`"partitionkey":"key-`), []byte(`"partitionkey":"other-`), 1))
		extra.WriteByte('\n')
	}
	f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(extra.Bytes()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m := newModel()
	checkRun(t, m, in, filepath.Join(dir, "state"), filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "rej.jsonl"),
		defaultMaxEventBytes, "--shards", "4")
}

func TestEveryBadInputClassIsRejectedWithItsReason(t *testing.T) {
	dir := t.TempDir()
	const limit = 2048
	in := gen(t, dir, "in.jsonl", "--events", "3000", "--bad", "0.3", "--dup", "0.1", "--seed", "5",
		"--max-event-bytes", fmt.Sprint(limit), "--sequence")
	// A few hand-made lines: CRLF, an empty line, an over-long line far
	// beyond the read buffer, and a last line without newline.
	tail := "\r\n\n" + strings.Repeat("y", 200_000) + "\n" +
		`{"specversion":"1.0","id":"tail-1","source":"s","type":"t"}` + "\r\n" +
		`{"specversion":"1.0","id":"tail-2","source":"s","type":"t"}`
	f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(tail); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m := newModel()
	checkRun(t, m, in, filepath.Join(dir, "state"), filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "rej.jsonl"), limit)
	classes := []string{"malformed_json", "wrong_type", "missing_attribute", "event_too_large", "too_deep",
		"invalid_identifier", "duplicate_member", "invalid_utf8", "unsupported_specversion", "bad_sequence", "bad_time"}
	for _, c := range classes {
		if m.reasons[c] == 0 {
			t.Errorf("no line was rejected as %s", c)
		}
	}
	if len(m.reasons) != len(classes) {
		t.Errorf("reasons %v, want exactly %v", m.reasons, classes)
	}
}

func TestStdoutOutput(t *testing.T) {
	dir := t.TempDir()
	in := gen(t, dir, "in.jsonl", "--events", "2000", "--seed", "9")
	m := newModel()
	want, _, _ := m.add(t, readFile(t, in), defaultMaxEventBytes)
	stdout, stderr, code := exe(t, nil, "run", "--state", filepath.Join(dir, "state"), "--in", in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	checkSameLines(t, stdout, want, false)
	if s := lastSummary(t, stderr); s.Written != int64(len(want)) {
		t.Fatalf("written %d, want %d", s.Written, len(want))
	}
	// From standard input, with nothing but the summary on stderr (not a
	// terminal: no progress bar).
	stdout, stderr, code = exe(t, bytes.NewReader(readFile(t, in)), "run", "--state", filepath.Join(dir, "state2"), "--in", "-", "--out", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	checkSameLines(t, stdout, want, false)
	if n := bytes.Count(stderr, []byte("\n")); n != 1 {
		t.Fatalf("stderr has %d lines, want only the summary: %s", n, stderr)
	}
}

func TestSecondRunOnLockedStateFailsFast(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	// The first run reads from a pipe kept open: it holds the state.
	first := exec.Command(onceflowBin, "run", "--state", state, "--in", "-", "--out", filepath.Join(dir, "out1.jsonl"))
	pw, err := first.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var firstErr bytes.Buffer
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	io.WriteString(pw, `{"specversion":"1.0","id":"1","source":"s","type":"t"}`+"\n")
	// Wait until the first run has the state open.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(state, stateFile)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first run did not create its state")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	_, stderr, code := exe(t, strings.NewReader(""), "run", "--state", state, "--in", "-", "--out", filepath.Join(dir, "out2.jsonl"))
	took := time.Since(start)
	if code != 1 {
		t.Fatalf("second run: exit %d, want 1: %s", code, stderr)
	}
	if !bytes.Contains(stderr, []byte("state is locked by another process")) {
		t.Fatalf("second run: stderr %q does not say the state is locked", stderr)
	}
	if took > 6*time.Second {
		t.Fatalf("second run took %v to fail, want a few seconds", took)
	}
	pw.Close()
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v: %s", err, firstErr.Bytes())
	}
	if s := lastSummary(t, firstErr.Bytes()); s.Written != 1 {
		t.Fatalf("first run: summary %+v, want 1 written", s)
	}
}

func TestOutputShorterThanCheckpointIsCorruptState(t *testing.T) {
	dir := t.TempDir()
	in := gen(t, dir, "in.jsonl", "--events", "500", "--seed", "2")
	state, out := filepath.Join(dir, "state"), filepath.Join(dir, "out.jsonl")
	if _, stderr, code := exe(t, nil, "run", "--state", state, "--in", in, "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if err := os.Truncate(out, 100); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := exe(t, nil, "run", "--state", state, "--in", in, "--out", out)
	if code != 1 || !bytes.Contains(stderr, []byte("corrupt state")) {
		t.Fatalf("exit %d, stderr %q; want 1 and corrupt state", code, stderr)
	}
	lastSummary(t, stderr)
}

// TestReplacedOutputIsRefused: an --out replaced by another file at least
// as long as the committed length is refused as corrupt state, and left as
// it is: cutting it back would destroy the other file's content.
func TestReplacedOutputIsRefused(t *testing.T) {
	for _, events := range []string{"3", "500"} { // a committed length under and over the checksummed tail
		t.Run("events="+events, func(t *testing.T) {
			dir := t.TempDir()
			in := gen(t, dir, "in.jsonl", "--events", events, "--seed", "2")
			other := gen(t, dir, "other.jsonl", "--events", "2000", "--seed", "3")
			state, out := filepath.Join(dir, "state"), filepath.Join(dir, "out.jsonl")
			if _, stderr, code := exe(t, nil, "run", "--state", state, "--in", in, "--out", out); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			replacement := readFile(t, other)
			if len(replacement) <= len(readFile(t, out)) {
				t.Fatalf("the replacement (%d bytes) must be longer than --out", len(replacement))
			}
			if err := os.Rename(other, out); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := exe(t, nil, "run", "--state", state, "--in", in, "--out", out)
			if code != 1 || !bytes.Contains(stderr, []byte("changed or replaced")) {
				t.Fatalf("exit %d, stderr %q; want 1 and changed or replaced", code, stderr)
			}
			if got := readFile(t, out); !bytes.Equal(got, replacement) {
				t.Fatalf("the replaced --out was changed: %d bytes, had %d", len(got), len(replacement))
			}
		})
	}
}

func TestUncommittedTailIsCut(t *testing.T) {
	dir := t.TempDir()
	in := gen(t, dir, "in.jsonl", "--events", "500", "--seed", "2")
	state, out := filepath.Join(dir, "state"), filepath.Join(dir, "out.jsonl")
	if _, stderr, code := exe(t, nil, "run", "--state", state, "--in", in, "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := readFile(t, out)
	// Lines written after the last commit (as by a run killed between
	// writing and committing) are cut on the next start.
	f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"torn":`)
	f.Close()
	if _, stderr, code := exe(t, nil, "run", "--state", state, "--in", in, "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := readFile(t, out); !bytes.Equal(got, want) {
		t.Fatalf("--out has %d bytes after the rerun, want the %d committed", len(got), len(want))
	}
}

func TestInspectAndStats(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	in := `{"specversion":"1.0","id":"a-1","source":"shop","type":"order.placed"}` + "\n" +
		`{"specversion":"1.0","id":"a-2","source":"shop","type":"order.placed"}` + "\n" +
		`{"specversion":"1.0","id":"a-1","source":"shop","type":"order.placed"}` + "\n"
	before := time.Now().Add(-time.Second)
	if _, stderr, code := exe(t, strings.NewReader(in), "run", "--state", state, "--in", "-", "--out", filepath.Join(dir, "out")); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	stdout, stderr, code := exe(t, nil, "inspect", "--state", state, "--source", "shop", "--id", "a-1")
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, stderr)
	}
	var rec record
	if err := json.Unmarshal(stdout, &rec); err != nil {
		t.Fatalf("inspect output %q: %v", stdout, err)
	}
	first, err := time.Parse(time.RFC3339Nano, rec.FirstSeen)
	if !rec.Found || rec.Status != "done" || rec.Source != "shop" || rec.ID != "a-1" || rec.Attempts != 1 || err != nil || first.Before(before) {
		t.Fatalf("inspect: %+v (first_seen: %v)", rec, err)
	}
	stdout, _, code = exe(t, nil, "inspect", "--state", state, "--source", "shop", "--id", "nope")
	if err := json.Unmarshal(stdout, &rec); code != 0 || err != nil || rec.Found || rec.Status != "unknown" {
		t.Fatalf("inspect of an unknown event: exit %d, %+v, %v", code, rec, err)
	}

	stdout, stderr, code = exe(t, nil, "stats", "--state", state)
	if code != 0 {
		t.Fatalf("stats: exit %d: %s", code, stderr)
	}
	var st stateStats
	if err := json.Unmarshal(stdout, &st); err != nil {
		t.Fatalf("stats output %q: %v", stdout, err)
	}
	fi, err := os.Stat(filepath.Join(state, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Identities != 2 || st.Window != "168h0m0s" || st.FileSize != fi.Size() || st.Bloom.Filters == 0 || !st.Store.Durable {
		t.Fatalf("stats: %+v (file size %d)", st, fi.Size())
	}

	for _, args := range [][]string{{"inspect", "--source", "s", "--id", "i"}, {"stats"}} {
		_, stderr, code := exe(t, nil, append(args, "--state", filepath.Join(dir, "none"))...)
		if code != 1 || !bytes.Contains(stderr, []byte("no state")) {
			t.Fatalf("%s of a missing state: exit %d, %q", args[0], code, stderr)
		}
	}
}

func TestGenIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--events", "5000", "--dup", "0.2", "--bad", "0.05", "--shuffle", "64", "--sequence", "--max-event-bytes", "1000"}
	a := readFile(t, gen(t, dir, "a", append(args, "--seed", "1")...))
	b := readFile(t, gen(t, dir, "b", append(args, "--seed", "1")...))
	c := readFile(t, gen(t, dir, "c", append(args, "--seed", "2")...))
	if !bytes.Equal(a, b) {
		t.Fatal("gen with the same seed wrote different streams")
	}
	if bytes.Equal(a, c) {
		t.Fatal("gen with another seed wrote the same stream")
	}
	var gs genSummary
	_, stderr, _ := exe(t, nil, append([]string{"gen", "--seed", "1", "--out", filepath.Join(dir, "d")}, args...)...)
	if err := json.Unmarshal(stderr, &gs); err != nil {
		t.Fatalf("gen summary %q: %v", stderr, err)
	}
	m := newModel()
	written, dups, rejected := m.add(t, a, 1000)
	if gs.Lines != 5000 || gs.Unique != int64(len(written)) || gs.Duplicates != int64(dups) || gs.Bad != int64(rejected) || gs.Bytes != int64(len(a)) {
		t.Fatalf("gen summary %+v; the stream has %d new, %d duplicates, %d bad, %d bytes", gs, len(written), dups, rejected, len(a))
	}
	// Average line length about 300 bytes, for the good lines.
	if avg := len(joinLines(written)) / len(written); avg < 250 || avg > 350 {
		t.Fatalf("average line %d bytes, want about 300", avg)
	}
	// --sequence: per key, the new events' sequences are 1..n.
	seqs := map[string][]uint64{}
	for _, l := range written {
		ev, err := onceflow.DecodeEvent(l)
		if err != nil {
			t.Fatal(err)
		}
		seqs[ev.Key()] = append(seqs[ev.Key()], ev.Sequence)
	}
	for k, s := range seqs {
		slices.Sort(s)
		for i, v := range s {
			if v != uint64(i+1) {
				t.Fatalf("key %s: sequences %v, want 1..%d", k, s, len(s))
			}
		}
	}
}

// TestInspectAndStatsOnlyRead checks that inspect and stats leave the state
// as it is, and report the window of the last run: they used to open it for
// writing with the default 7-day window, which expired what a run with a
// longer window still needed, and rewrote the file.
func TestInspectAndStatsOnlyRead(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	in := `{"specversion":"1.0","id":"a-1","source":"shop","type":"order.placed"}` + "\n"
	if _, stderr, code := exe(t, strings.NewReader(in), "run", "--state", state, "--in", "-", "--out", filepath.Join(dir, "out"), "--window", "720h"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	db := filepath.Join(state, stateFile)
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := exe(t, nil, "stats", "--state", state)
	var st stateStats
	if err := json.Unmarshal(stdout, &st); code != 0 || err != nil || st.Window != "720h0m0s" || st.Identities != 1 {
		t.Fatalf("stats: exit %d, %+v, %v, %s; want the run's window 720h and 1 identity", code, st, err, stderr)
	}
	stdout, stderr, code = exe(t, nil, "inspect", "--state", state, "--source", "shop", "--id", "a-1")
	var rec record
	if err := json.Unmarshal(stdout, &rec); code != 0 || err != nil || !rec.Found {
		t.Fatalf("inspect: exit %d, %+v, %v, %s", code, rec, err, stderr)
	}
	after, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("stats or inspect changed the state file")
	}
	if os.Geteuid() != 0 { // root ignores file modes
		if err := os.Chmod(db, 0o400); err != nil {
			t.Fatal(err)
		}
		if _, stderr, code := exe(t, nil, "stats", "--state", state); code != 0 {
			t.Fatalf("stats of a read-only state: exit %d: %s", code, stderr)
		}
	}
}

// TestInterruptWhileWaitingForInput checks that SIGINT ends a run that is
// waiting for input that does not come, from a pipe or for a FIFO to be
// opened: the run ignored it until the input closed, holding the state
// locked (found by an adversarial probe of the CLI). What it had read is
// still written by the next run.
func TestInterruptWhileWaitingForInput(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	line := `{"specversion":"1.0","id":"1","source":"s","type":"t"}` + "\n"
	for _, c := range []struct{ name, in string }{{"pipe", "-"}, {"fifo", fifo}} {
		state := filepath.Join(dir, "state-"+c.name)
		cmd := exec.Command(onceflowBin, "run", "--state", state, "--in", c.in, "--out", filepath.Join(dir, "out-"+c.name))
		pw, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if c.in == "-" {
			io.WriteString(pw, line)
			// Wait until the run has its state: it is then reading.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(filepath.Join(state, stateFile)); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: the run did not open its state", c.name)
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !bytes.Contains(stderr.Bytes(), []byte("interrupted")) {
				t.Errorf("%s: interrupted run ended with %v: %s; want exit 1 and the interrupted message", c.name, err, stderr.Bytes())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s: the run ignored SIGINT for 20s while waiting for input", c.name)
		}
		pw.Close()
		if c.in == "-" {
			out := filepath.Join(dir, "out-"+c.name)
			_, stderr, code := exe(t, strings.NewReader(line), "run", "--state", state, "--in", "-", "--out", out)
			got, err := os.ReadFile(out)
			if code != 0 || err != nil || string(got) != line {
				t.Errorf("%s: rerun after the interrupt: exit %d (%s), output %q, %v; want the event once", c.name, code, stderr, got, err)
			}
		}
	}
}
