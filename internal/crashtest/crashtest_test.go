package crashtest_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onceflow/onceflow/internal/crashtest"
)

// The child of these tests is this test binary itself (Config.Binary
// empty). What TestHarnessChild does is set by the environment: it counts
// its start and writes its pid in files, prints Ready, and then finishes
// after a pause, fails, or hangs. A hung child gives up after 30 s and
// exits 0, so that a harness that fails to kill it fails its test soon
// rather than at the test binary's timeout.
const (
	envDir  = "CRASHTEST_TEST_DIR"
	envMode = "CRASHTEST_TEST_MODE"
)

func TestHarnessChild(t *testing.T) {
	if !crashtest.IsChild("TestHarnessChild") {
		t.Skip("run as a child by the tests of Run")
	}
	f, err := os.OpenFile(filepath.Join(os.Getenv(envDir), "starts"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("start\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(os.Getenv(envDir), "pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	fmt.Println("working on it")
	fmt.Println(crashtest.Ready)
	switch mode := os.Getenv(envMode); mode {
	case "finish":
		time.Sleep(300 * time.Millisecond) // long enough for every kill to land first
	case "selfkill-once": // as a child does at a named crash point
		if b, err := os.ReadFile(filepath.Join(os.Getenv(envDir), "starts")); err == nil && string(b) == "start\n" {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute) // the signal lands first
		}
	case "fail":
		fmt.Fprintln(os.Stderr, "child: the store is broken")
		os.Exit(3)
	case "hang":
		time.Sleep(30 * time.Second)
	default:
		t.Fatalf("%s=%q: want finish, fail or hang", envMode, mode)
	}
}

// logLines collects what Run logs.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// gone fails t unless the child whose pid is in dir has ended.
func gone(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("child %d: signal 0 gave %v, want ESRCH: it is still running", pid, err)
	}
}

func starts(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "starts"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "start\n")
}

func TestRunKillsThenLetsTheChildFinish(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	dir := t.TempDir()
	var log logLines
	const kills = 4
	res, err := crashtest.Run(crashtest.Config{
		Child: "TestHarnessChild", Env: []string{envDir + "=" + dir, envMode + "=finish"},
		Kills: kills, MaxDelay: 20 * time.Millisecond, EarlyKills: 0.5, Seed: seed, Timeout: 2 * time.Minute,
		Log: log.logf, ProgressEvery: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Finished || res.Kills != kills || res.Starts != kills+1 || res.Wall <= 0 {
		t.Fatalf("Run = %+v, want finished after %d kills and %d starts", res, kills, kills+1)
	}
	// An early kill can land before the child has counted its start.
	if n := starts(t, dir); n < 1 || n > kills+1 {
		t.Errorf("the child counted %d starts, want 1 to %d", n, kills+1)
	}
	// Progress comes from a ticker (every 10ms here): during the kills,
	// and during the last child's 300ms of work after them.
	lines := log.all()
	var progress []string
	for _, l := range lines {
		if strings.Contains(l, " kills, ") && strings.Contains(l, "so far") {
			progress = append(progress, l)
		}
	}
	if len(progress) == 0 {
		t.Fatalf("no progress lines:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range progress {
		if !strings.Contains(l, " of 4 kills, ") {
			t.Errorf("progress line %q: want N of 4 kills", l)
		}
	}
	if last := progress[len(progress)-1]; !strings.Contains(last, "4 of 4 kills, 5 starts") || !strings.Contains(last, "every kill delivered") {
		t.Errorf("last progress line %q: want 4 of 4 kills, 5 starts, every kill delivered", last)
	}
	if end := lines[len(lines)-1]; !strings.Contains(end, "child finished after 4 kills, 5 starts") {
		t.Errorf("last log line %q: want the child finished after 4 kills, 5 starts", end)
	}
}

func TestRunCountsAChildKillingItself(t *testing.T) {
	dir := t.TempDir()
	res, err := crashtest.Run(crashtest.Config{
		Child: "TestHarnessChild", Env: []string{envDir + "=" + dir, envMode + "=selfkill-once"}, Timeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Finished || res.Kills != 1 || res.Starts != 2 || starts(t, dir) != 2 {
		t.Fatalf("Run = %+v, %d starts counted by the child; want finished after 1 kill and 2 starts", res, starts(t, dir))
	}
}

func TestRunReportsAFailingChild(t *testing.T) {
	dir := t.TempDir()
	_, err := crashtest.Run(crashtest.Config{
		Child: "TestHarnessChild", Env: []string{envDir + "=" + dir, envMode + "=fail"}, Timeout: 2 * time.Minute,
	})
	if err == nil {
		t.Fatal("Run of a failing child: no error")
	}
	for _, want := range []string{"child failed", "exit status 3", "working on it", "child: the store is broken"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestRunKillsAHungChildAtTheTimeout(t *testing.T) {
	dir := t.TempDir()
	began := time.Now()
	res, err := crashtest.Run(crashtest.Config{
		Child: "TestHarnessChild", Env: []string{envDir + "=" + dir, envMode + "=hang"}, Timeout: 2 * time.Second,
	})
	if err == nil {
		t.Fatalf("Run of a hung child: no error, %+v", res)
	}
	for _, want := range []string{"timeout after 2s", "0 kills, 1 starts", "working on it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// The child gives up after 30 s: Run must have killed it, not waited.
	if waited := time.Since(began); waited > 20*time.Second {
		t.Errorf("Run returned after %v, want soon after its 2s timeout", waited)
	}
	gone(t, dir)
	if res.Finished || starts(t, dir) != 1 {
		t.Errorf("Run = %+v and %d starts, want one unfinished start", res, starts(t, dir))
	}
}

func TestRunOnce(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		timeout time.Duration
		wantErr []string // empty: success
	}{
		{mode: "finish", timeout: time.Minute},
		{mode: "finish"}, // no limit
		{mode: "fail", timeout: time.Minute, wantErr: []string{"exit status 3", "working on it", "child: the store is broken"}},
		{mode: "hang", timeout: time.Second, wantErr: []string{"killed after its timeout of 1s", "working on it"}},
	} {
		t.Run(fmt.Sprintf("mode=%s/timeout=%v", tc.mode, tc.timeout), func(t *testing.T) {
			dir := t.TempDir()
			began := time.Now()
			out, err := crashtest.RunOnce(os.Args[0], "TestHarnessChild", []string{envDir + "=" + dir, envMode + "=" + tc.mode}, tc.timeout)
			if waited := time.Since(began); waited > 20*time.Second {
				t.Errorf("RunOnce returned after %v, want before the hung child gives up at 30 s", waited)
			}
			gone(t, dir)
			if len(tc.wantErr) == 0 {
				if err != nil || !strings.Contains(out, crashtest.Ready) {
					t.Fatalf("RunOnce = %q, %v; want the child's stdout with %s and no error", out, err, crashtest.Ready)
				}
				return
			}
			if err == nil {
				t.Fatalf("RunOnce = %q, no error; want one", out)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}
