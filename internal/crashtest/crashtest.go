// Package crashtest re-executes a test binary as a child process and kills
// it with SIGKILL at random moments, so that a test can check what survives
// a crash on real files. It is the portable part of bbolt's kill -9 loop:
// no root, no special filesystem.
//
// The parent calls [Run] from an ordinary test. The child is a test
// function of the same binary that returns early unless [IsChild] reports
// true; it prints [Ready] on stdout once it is doing work worth
// interrupting, and exits 0 when it has finished all of it. Run restarts the
// child after every kill, on the same files, until the child finishes.
package crashtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Ready is the line a child prints on stdout when it is ready to be killed.
const Ready = "CRASHTEST-READY"

// envChild marks a child process; its value names the child test.
const envChild = "ONCEFLOW_CRASHTEST_CHILD"

// IsChild reports whether this process is a child started by Run for the
// test named name.
func IsChild(name string) bool { return os.Getenv(envChild) == name }

// Config describes one crash run.
type Config struct {
	// Child is the name of the child test function (run with -test.run).
	Child string
	// Binary is the test binary to run as the child (default: this one,
	// os.Args[0]). See BuildChild.
	Binary string
	// Env is added to the child's environment.
	Env []string
	// Kills is the number of SIGKILLs to deliver before the child is let
	// finish.
	Kills int
	// MinDelay and MaxDelay bound the random delay between the child's
	// Ready line and the kill (defaults 0 and 100 ms).
	MinDelay, MaxDelay time.Duration
	// EarlyKills is the share of kills delivered at a random moment before
	// Ready (default 0.1), so that opening and recovery get killed too.
	EarlyKills float64
	// Seed seeds the kill schedule.
	Seed uint64
	// Timeout bounds the whole run (default 5 minutes).
	Timeout time.Duration
	// Log receives progress lines (nil: none): one every ProgressEvery
	// while Run runs, the last child's work included, and one when the
	// child finishes.
	Log func(format string, args ...any)
	// ProgressEvery is how often Run reports its progress to Log
	// (default 1 minute), so that a long run (make soak: 2,000 kills
	// over half an hour) shows how far it has got and when its last kill
	// is due.
	ProgressEvery time.Duration
}

// Result is what Run observed.
type Result struct {
	Kills    int           // SIGKILLs delivered
	Starts   int           // child processes started
	Finished bool          // the last child exited 0
	Wall     time.Duration // the whole run
}

// Run runs the child until it finishes, killing it cfg.Kills times first.
// A child that exits non-zero is an error that includes the tail of its
// stdout and its stderr. A run past cfg.Timeout is an error too: Run
// starts no child after it, and kills a child still running at it (a hung
// child included), reporting that child's output. While it runs, Run
// reports its progress to cfg.Log every cfg.ProgressEvery, from a
// goroutine that has returned when Run returns. Kills reach the child
// process only: a child that starts processes of its own must not leave
// them holding its stdout or stderr, or Run waits for them.
func Run(cfg Config) (Result, error) {
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 100 * time.Millisecond
	}
	if cfg.EarlyKills == 0 {
		cfg.EarlyKills = 0.1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.ProgressEvery == 0 {
		cfg.ProgressEvery = time.Minute
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0x6b696c6c))
	start := time.Now()
	deadline := start.Add(cfg.Timeout)

	var (
		mu  sync.Mutex // guards res against the progress goroutine
		res Result
	)
	snapshot := func() Result {
		mu.Lock()
		defer mu.Unlock()
		return res
	}
	stopProgress, progressDone := make(chan struct{}), make(chan struct{})
	go func() { // reports progress until Run returns
		defer close(progressDone)
		tick := time.NewTicker(cfg.ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case now := <-tick.C:
				r := snapshot()
				logf("crashtest: %d of %d kills, %d starts, %v so far; %s",
					r.Kills, cfg.Kills, r.Starts, now.Sub(start).Round(time.Second), pace(r.Kills, cfg.Kills, now.Sub(start)))
			}
		}
	}()
	defer func() {
		close(stopProgress)
		<-progressDone
	}()

	timeout := func(detail string) (Result, error) {
		r := snapshot()
		return r, fmt.Errorf("crashtest: timeout after %v (%d kills, %d starts; %s)%s",
			cfg.Timeout, r.Kills, r.Starts, pace(r.Kills, cfg.Kills, time.Since(start)), detail)
	}
	started := func() {
		mu.Lock()
		res.Starts++
		mu.Unlock()
	}
	for {
		if !time.Now().Before(deadline) {
			return timeout("")
		}
		kill := snapshot().Kills < cfg.Kills
		early := kill && rnd.Float64() < cfg.EarlyKills
		delay := cfg.MinDelay + time.Duration(rnd.Int64N(int64(cfg.MaxDelay-cfg.MinDelay)+1))
		killed, err := runChild(cfg, deadline, kill, early, delay, started)
		if to, ok := errors.AsType[*timedOut](err); ok {
			return timeout(to.output)
		}
		if err != nil {
			return snapshot(), err
		}
		mu.Lock()
		if killed {
			res.Kills++
			mu.Unlock()
			continue
		}
		res.Finished = true
		res.Wall = time.Since(start)
		r := res
		mu.Unlock()
		logf("crashtest: child finished after %d kills, %d starts, %v", r.Kills, r.Starts, r.Wall)
		return r, nil
	}
}

// pace says when the last of want kills is due if the kills to come take
// as long as the done ones took in elapsed.
func pace(done, want int, elapsed time.Duration) string {
	switch {
	case done >= want:
		return "every kill delivered, the child is finishing its work"
	case done == 0:
		return "no kill delivered yet"
	}
	left := time.Duration(float64(elapsed) / float64(done) * float64(want-done))
	return fmt.Sprintf("the last kill due in about %v at this pace", left.Round(time.Second))
}

// timedOut is the error of a child that Run killed at its timeout; output
// is what the child printed last.
type timedOut struct{ output string }

func (e *timedOut) Error() string { return "crashtest: child killed at the timeout" + e.output }

// killAt kills cmd's started process at deadline (the zero time: never).
// fired reports whether it tried; stop cancels the kill if it has not
// happened. A kill that comes after the process exited does nothing: the
// exit status still says how the child ended, and the callers decide from
// it first.
func killAt(cmd *exec.Cmd, deadline time.Time) (fired func() bool, stop func()) {
	if deadline.IsZero() {
		return func() bool { return false }, func() {}
	}
	var did atomic.Bool
	t := time.AfterFunc(time.Until(deadline), func() {
		did.Store(true)
		_ = cmd.Process.Kill()
	})
	return did.Load, func() { t.Stop() }
}

// killedBy reports whether the child ended by SIGKILL.
func killedBy(st *os.ProcessState) bool {
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// runChild runs the child once, delivering a SIGKILL if kill. It reports
// killed when the child died of a SIGKILL, this one or its own (a child
// may kill itself at a named crash point); a child that finished first is
// not killed. A child killed by the deadline is a *timedOut error; one
// that exits non-zero, or dies of another signal, is an error.
func runChild(cfg Config, deadline time.Time, kill, early bool, delay time.Duration, started func()) (killed bool, err error) {
	bin := cfg.Binary
	if bin == "" {
		bin = os.Args[0]
	}
	cmd := exec.Command(bin, "-test.run=^"+cfg.Child+"$", "-test.count=1", "-test.v")
	cmd.Env = append(append(os.Environ(), cfg.Env...), envChild+"="+cfg.Child)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return false, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("crashtest: start child: %w", err)
	}
	started()
	timedOutKill, stopTimer := killAt(cmd, deadline)
	defer stopTimer()
	ready := make(chan struct{})
	readDone := make(chan struct{})
	tail := &lastLines{}
	go func() { // reads until the child's stdout closes, which its death does
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		closed := false
		for sc.Scan() {
			tail.add(sc.Text())
			if !closed && strings.Contains(sc.Text(), Ready) {
				close(ready)
				closed = true
			}
		}
		if !closed {
			close(ready)
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	if kill {
		if early {
			time.Sleep(time.Duration(float64(delay) * 0.2))
		} else {
			<-ready
			time.Sleep(delay)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL) // the wait status below says whether it landed
	}
	<-readDone // all reads done before Wait closes the pipe
	err = cmd.Wait()
	switch st := cmd.ProcessState; {
	case st != nil && st.Success():
		return false, nil // finished, before any kill landed
	case st != nil && killedBy(st) && timedOutKill():
		// The deadline's kill, or ours just before it: the run is over
		// either way, and the child's last lines say where it was.
		return false, &timedOut{output: fmt.Sprintf("; the child's last lines:\nstdout tail:\n%s\nstderr:\n%s", tail, stderr.String())}
	case st != nil && killedBy(st):
		return true, nil // ours, or the child's own at a named crash point
	}
	return false, fmt.Errorf("crashtest: child failed: %v\nstdout tail:\n%s\nstderr:\n%s", err, tail, stderr.String())
}

// BuildChild compiles the test binary of the package in dir (the test's
// working directory is its package) without the race detector, into a
// temporary directory, and returns its path. The race detector slows bbolt
// tenfold and finds nothing a SIGKILL could; the parent still runs under it.
func BuildChild(tmp, dir string) (string, error) {
	bin := filepath.Join(tmp, "child.test")
	cmd := exec.Command("go", "test", "-c", "-o", bin, ".")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("crashtest: building the child: %v\n%s", err, out)
	}
	return bin, nil
}

// RunOnce runs the child test name of bin to completion with env and
// returns its stdout; a failure includes stderr. A child still running
// after timeout (0: no limit) is killed, and that is an error too; one
// that exited 0 is a success even if it was reaped after the timeout.
func RunOnce(bin, name string, env []string, timeout time.Duration) (string, error) {
	cmd := exec.Command(bin, "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(append(os.Environ(), env...), envChild+"="+name)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("crashtest: %s: start: %w", name, err)
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	fired, stop := killAt(cmd, deadline)
	defer stop()
	err := cmd.Wait()
	if err == nil {
		return stdout.String(), nil
	}
	if killedBy(cmd.ProcessState) && fired() {
		err = fmt.Errorf("killed after its timeout of %v", timeout)
	}
	return stdout.String(), fmt.Errorf("crashtest: %s: %v\nstdout:\n%s\nstderr:\n%s", name, err, stdout.String(), stderr.String())
}

type lastLines struct{ lines []string }

func (l *lastLines) add(s string) {
	l.lines = append(l.lines, s)
	if len(l.lines) > 30 {
		l.lines = l.lines[1:]
	}
}

func (l *lastLines) String() string { return strings.Join(l.lines, "\n") }

// Summary is the JSON record a crash run writes for RELIABILITY.md.
type Summary struct {
	Name          string  `json:"name"`
	Seed          uint64  `json:"seed"`
	Events        int     `json:"events"`
	Deliveries    int     `json:"deliveries"`
	DuplicateRate float64 `json:"duplicate_rate"`
	ReorderRate   float64 `json:"reorder_rate"`
	Kills         int     `json:"kills"`
	Starts        int     `json:"starts"`
	Lost          int     `json:"lost"`
	DupEffects    int     `json:"duplicate_effects"`
	Recovered     int     `json:"recovered"`
	CheckErrors   int     `json:"check_errors"`
	WallSeconds   float64 `json:"wall_seconds"`
	Command       string  `json:"command"`
}

// WriteSummary writes s as JSON to dir/name.json when dir is not empty
// (ONCEFLOW_RELIABILITY_DIR, typically), creating dir.
func WriteSummary(dir string, s Summary) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, s.Name+".json"), append(b, '\n'), 0o644)
}
