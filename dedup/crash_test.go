package dedup_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
)

// Environment of a crash child: the store file, the seed, and a file of
// identities, "P id" to commit first (deliveries not acknowledged before
// the last kill) and "A id" acknowledged ones to draw duplicates from.
const (
	envCrashPath   = "ONCEFLOW_DEDUP_CRASH_PATH"
	envCrashSeed   = "ONCEFLOW_DEDUP_CRASH_SEED"
	envCrashReplay = "ONCEFLOW_DEDUP_CRASH_REPLAY"
)

// counterKey is the state key of an identity's effect counter.
func counterKey(id string) []byte { return []byte("n/" + id) }

// TestCrash kills a committing child process at random moments and
// restarts it on the same file, at least 30 times; then every
// acknowledged identity must be stored, each effect applied exactly once
// and the file consistent.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	sd := seed(t)
	r := rand.New(rand.NewPCG(sd, 5))
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	replay := filepath.Join(dir, "replay")
	acked := make(map[string]bool)
	pending := make(map[string]bool) // sent to a commit, not acknowledged
	const rounds = 30
	deadline := time.Now().Add(40 * time.Second)
	commits, inFlight := 0, 0
	for round := range rounds {
		if time.Now().After(deadline) {
			t.Fatalf("%d rounds in 40s", round)
		}
		var lines []string
		for id := range pending {
			lines = append(lines, "P "+id)
		}
		for id := range acked {
			lines = append(lines, "A "+id)
		}
		if err := os.WriteFile(replay, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			envCrashPath+"="+path, envCrashSeed+"="+strconv.FormatUint(sd+uint64(round), 10), envCrashReplay+"="+replay)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{})
		done := make(chan []string)
		go func() {
			var got []string
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				if sc.Text() == "READY" {
					close(ready)
				}
				got = append(got, sc.Text())
			}
			done <- got
		}()
		// Most kills hit the commit loop; one in five may hit the open
		// (the filter rebuild, the expiry transaction).
		if r.IntN(5) != 0 {
			select {
			case <-ready:
			case <-time.After(20 * time.Second):
				t.Fatalf("round %d: child not ready: %s", round, stderr.String())
			}
		}
		time.Sleep(time.Duration(20+r.IntN(181)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("round %d: kill: %v", round, err)
		}
		got := <-done
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("round %d: child ended by itself (%v): %s", round, err, stderr.String())
		}
		for _, line := range got {
			kind, ids, _ := strings.Cut(line, " ")
			switch kind {
			case "P":
				for _, id := range strings.Fields(ids) {
					if !acked[id] {
						pending[id] = true
					}
				}
			case "A":
				commits++
				for _, id := range strings.Fields(ids) {
					acked[id] = true
					delete(pending, id)
				}
			}
		}
		if len(pending) > 0 {
			inFlight++
		}
	}
	t.Logf("%d rounds, %d acknowledged commits, %d identities acknowledged, %d kills with a commit in flight",
		rounds, commits, len(acked), inFlight)
	if commits < rounds {
		t.Errorf("only %d commits acknowledged in %d rounds", commits, rounds)
	}

	s := openDisk(t, path)
	if err := s.Check(); err != nil {
		t.Fatalf("Check after the kills: %v", err)
	}
	check := func(id string, mustExist bool) {
		_, ok, err := s.Inspect(ident(id))
		if err != nil {
			t.Fatalf("Inspect(%s): %v", id, err)
		}
		if !ok {
			if mustExist {
				t.Errorf("acknowledged %s: not stored", id)
			}
			return
		}
		v, _, err := s.ReadState(counterKey(id))
		if err != nil || string(v) != "1" {
			t.Errorf("effect counter of %s = %q, %v; want 1", id, v, err)
		}
	}
	for id := range acked {
		check(id, true)
	}
	for id := range pending {
		check(id, false) // committed or not, never twice
	}
}

// TestCrashChild is the child process of TestCrash: it commits batches of
// identities (a fifth of them duplicates) with an effect counter each,
// printing "P ids" before each commit and "A ids" once it is acknowledged,
// until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(envCrashPath)
	if path == "" {
		t.Skip("run by TestCrash")
	}
	sd, err := strconv.ParseUint(os.Getenv(envCrashSeed), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	replay, err := os.ReadFile(os.Getenv(envCrashReplay))
	if err != nil {
		t.Fatal(err)
	}
	var first, known []string // not acknowledged; acknowledged
	for _, line := range strings.Split(string(replay), "\n") {
		if kind, id, ok := strings.Cut(line, " "); ok && kind == "P" {
			first = append(first, id)
		} else if ok {
			known = append(known, id)
		}
	}
	r := rand.New(rand.NewPCG(sd, 6))
	s, err := dedup.Open(path, dedup.WithLockTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("READY")
	// The deliveries that were not acknowledged come first, as a source
	// redelivers them.
	for n := 0; ; n++ {
		var ids []string
		if len(first) > 0 {
			k := min(len(first), 64)
			ids, first = first[:k], first[k:]
		}
		for len(ids) < 50 {
			if len(known) > 0 && r.IntN(5) == 0 {
				ids = append(ids, known[r.IntN(len(known))])
			} else {
				ids = append(ids, fmt.Sprintf("%d-%d-%x", sd, n, r.Uint32()))
			}
		}
		// Each record increments its identity's counter as read from the
		// store and from the records before it in the batch: an effect
		// applied twice leaves 2.
		b := &onceflow.CommitBatch{}
		seen := map[string]int{}
		for _, id := range ids {
			v, _, err := s.ReadState(counterKey(id))
			if err != nil {
				t.Fatal(err)
			}
			c, _ := strconv.Atoi(string(v))
			c += seen[id]
			seen[id]++
			rec := onceflow.Record{
				ID:      ident(id),
				Outcome: onceflow.Outcome{Status: onceflow.StatusDone, Attempts: 1},
				Writes:  []onceflow.StateWrite{{Key: counterKey(id), Value: []byte(strconv.Itoa(c + 1))}},
			}
			b.Records = append(b.Records, rec)
		}
		fmt.Println("P " + strings.Join(ids, " "))
		if err := s.Commit(b); err != nil {
			t.Fatal(err)
		}
		fmt.Println("A " + strings.Join(ids, " "))
		known = append(known, ids...)
	}
}
