package crashtest_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onceflow/onceflow/internal/crashtest"
)

// The child of these tests is this test binary itself (Config.Binary
// empty). What TestHarnessChild does is set by the environment: it counts
// its start in a file, prints Ready, and then finishes after a pause, fails,
// or hangs.
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
	fmt.Println("working on it")
	fmt.Println(crashtest.Ready)
	switch mode := os.Getenv(envMode); mode {
	case "finish":
		time.Sleep(300 * time.Millisecond) // long enough for every kill to land first
	case "fail":
		fmt.Fprintln(os.Stderr, "child: the store is broken")
		os.Exit(3)
	case "hang":
		time.Sleep(time.Hour)
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
		Log: log.logf, ProgressEvery: time.Nanosecond,
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
	lines := log.all()
	var progress []string
	for _, l := range lines {
		if strings.Contains(l, " kills, ") && strings.Contains(l, "so far") {
			progress = append(progress, l)
		}
	}
	// ProgressEvery is 1ns: one line before each start that has a kill to
	// deliver, the first with none delivered yet.
	if len(progress) != kills {
		t.Fatalf("%d progress lines, want %d:\n%s", len(progress), kills, strings.Join(lines, "\n"))
	}
	if !strings.Contains(progress[0], "0 of 4 kills") || !strings.Contains(progress[0], "no kill delivered yet") {
		t.Errorf("first progress line %q: want 0 of 4 kills and no pace yet", progress[0])
	}
	if last := progress[kills-1]; !strings.Contains(last, "3 of 4 kills") || !strings.Contains(last, "the last kill due in about") {
		t.Errorf("last progress line %q: want 3 of 4 kills and when the last is due", last)
	}
	if end := lines[len(lines)-1]; !strings.Contains(end, "child finished after 4 kills, 5 starts") {
		t.Errorf("last log line %q: want the child finished after 4 kills, 5 starts", end)
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
	// The child sleeps an hour: Run must have killed it, not waited.
	if waited := time.Since(began); waited > time.Minute {
		t.Errorf("Run returned after %v, want soon after its 2s timeout", waited)
	}
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
			if waited := time.Since(began); waited > time.Minute {
				t.Errorf("RunOnce returned after %v", waited)
			}
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
