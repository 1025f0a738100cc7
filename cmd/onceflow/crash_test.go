package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/onceflow/onceflow/dedup"
)

// TestCrashKill9 kills onceflow run with SIGKILL at random moments, at
// least 20 times, over a 500k-line input, restarting it each time on the
// same state and output, then lets it finish: the output must hold every
// new valid event of the input exactly once, and nothing else.
//
// The seed is printed; ONCEFLOW_CRASH_SEED=N reproduces a run's kill
// times (the moments also depend on the machine's speed).
func TestCrashKill9(t *testing.T) {
	lines, kills := 500_000, 20
	if testing.Short() {
		lines = 100_000
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ONCEFLOW_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ONCEFLOW_CRASH_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (ONCEFLOW_CRASH_SEED=%d reproduces it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	dir := t.TempDir()
	const limit = 4096
	in := gen(t, dir, "in.jsonl", "--events", strconv.Itoa(lines), "--dup", "0.2", "--bad", "0.01",
		"--shuffle", "1000", "--seed", strconv.FormatUint(seed%1000, 10), "--max-event-bytes", strconv.Itoa(limit))
	m := newModel()
	want, _, _ := m.add(t, readFile(t, in), limit)

	state, out := filepath.Join(dir, "state"), filepath.Join(dir, "out.jsonl")
	args := []string{"run", "--state", state, "--in", in, "--out", out, "--rejects", filepath.Join(dir, "rej.jsonl"),
		"--max-event-bytes", strconv.Itoa(limit)}
	start := time.Now()
	finished := 0
	step := time.Duration(lines) * 250 * time.Millisecond / 500_000
	ceiling := time.Duration(1 << 62) // below the time a run took to finish on its own
	killed := 0
	for attempt := 1; killed < kills; attempt++ {
		if attempt > 5*kills {
			t.Fatalf("only %d kills in %d runs: the runs finish too fast to be killed", killed, attempt-1)
		}
		// Kill moments spread further into the run as the test goes on,
		// so that kills land early and late in the input, in startup,
		// reading, writing, syncing and committing.
		maxDelay := min(20*time.Millisecond+time.Duration(attempt)*step, ceiling)
		delay := time.Duration(rng.Int64N(int64(maxDelay)))
		cmd := exec.Command(onceflowBin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		began := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			// Finished before the kill: fine, but it must have succeeded.
			if err != nil {
				t.Fatalf("run %d ended on its own with %v: %s", attempt, err, stderr.Bytes())
			}
			finished++
			ceiling = max(time.Since(began)*9/10, 10*time.Millisecond)
			continue
		case <-time.After(delay):
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err := <-done
			if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != -1) {
				t.Fatalf("run %d: %v: %s", attempt, err, stderr.Bytes())
			}
			killed++
		}
		if fi, err := os.Stat(out); err == nil {
			t.Logf("kill %2d after %-6v: --out holds %d bytes", killed, delay.Round(time.Millisecond), fi.Size())
		}
	}
	t.Logf("%d kills (%d runs finished first) in %v", killed, finished, time.Since(start).Round(time.Millisecond))

	_, stderr, code := exe(t, nil, args...)
	if code != 0 {
		t.Fatalf("final run: exit %d: %s", code, stderr)
	}
	s := lastSummary(t, stderr)
	if s.Read != int64(lines) || s.Written+s.Duplicates+s.Rejected != s.Read {
		t.Fatalf("final run: summary %+v does not add up to %d lines", s, lines)
	}

	got := splitLines(readFile(t, out))
	if len(got) != len(want) {
		t.Errorf("--out has %d lines, want %d", len(got), len(want))
	}
	slices.SortFunc(got, bytes.Compare)
	w := slices.Clone(want)
	slices.SortFunc(w, bytes.Compare)
	for i := 0; i < len(got) || i < len(w); i++ {
		switch {
		case i >= len(w):
			t.Fatalf("--out has an extra line %.100q", got[i])
		case i >= len(got):
			t.Fatalf("--out misses the line %.100q", w[i])
		case !bytes.Equal(got[i], w[i]):
			if i+1 < len(got) && bytes.Equal(got[i], got[i+1]) {
				t.Fatalf("--out has the line %.100q twice", got[i])
			}
			t.Fatalf("--out line %.100q is not %.100q: a new event is missing or a line is torn", got[i], w[i])
		}
	}

	store, err := dedup.Open(filepath.Join(state, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Check(); err != nil {
		t.Fatalf("state check: %v", err)
	}
	if st := store.Stats(); st.Identities != uint64(len(want)) {
		t.Fatalf("state holds %d identities, want %d", st.Identities, len(want))
	}
}
