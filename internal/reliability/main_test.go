package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

const fuzzLog = `go test -run='^$' -fuzz='^FuzzDecodeEvent$' -fuzztime=10s .
fuzz: elapsed: 0s, gathering baseline coverage: 0/35 completed
fuzz: elapsed: 3s, execs: 1200 (400/sec), new interesting: 1 (total: 36)
fuzz: elapsed: 10s, execs: 75420 (7000/sec), new interesting: 7 (total: 303)
PASS
ok  	github.com/onceflow/onceflow	11.0s
go test -run='^$' -fuzz='^FuzzSequenceOrder$' -fuzztime=10s ./pipeline
fuzz: elapsed: 4s, execs: 900 (300/sec), new interesting: 2 (total: 9)
--- FAIL: FuzzSequenceOrder (4.10s)
    Failing input written to testdata/fuzz/FuzzSequenceOrder/abc
FAIL
`

func TestParseFuzzLog(t *testing.T) {
	runs, err := parseFuzzLog(strings.NewReader(fuzzLog))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Fatalf("got %d runs, want 2: %+v", len(runs), runs)
	}
	if r := runs[0]; r.target != "FuzzDecodeEvent" || r.pkg != "." || r.execs != 75420 || r.elapsed != "10s" || !r.ok || r.crasher != "" {
		t.Errorf("first run %+v", r)
	}
	if r := runs[1]; r.target != "FuzzSequenceOrder" || r.pkg != "./pipeline" || r.ok || r.crasher != "testdata/fuzz/FuzzSequenceOrder/abc" {
		t.Errorf("second run %+v", r)
	}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"crash-random.json": `{"name":"crash-random","suite":"crash","seed":7,"events":1000000,"deliveries":1278700,"kills":200,"starts":201,` +
			`"duplicate_rate":0.218,"reorder_rate":0.198,"lost":0,"duplicate_effects":0,"fsync":false,"command":"ONCEFLOW_SEED=7 go test ./pipeline"}`,
		"crash-dedup.json": `{"name":"crash-dedup","seed":9,"events":200000,"kills":50,"command":"go test -run '^TestCrashDedup$' ./pipeline"}`,
		"mutation.json":    `{"name":"mutation-ack-before-commit","suite":"mutation","mutation":"ack-before-commit","expect":"lost > 0","lost":64}`,
		"fuzz.log":         fuzzLog,
		"commit":           "abc1234\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "RELIABILITY.md")
	if err := run(dir, out, ""); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{
		"Do not edit", "commit `abc1234`",
		"| crash-random | 1,000,000 | 1,278,700 | 21.8% | 19.8% | 200 | 200 |",
		"ONCEFLOW_SEED=7 go test ./pipeline",
		"| crash-dedup |", // no suite field: the crash harness
		"| lost > 0 | 64 | 0 | yes |",
		"| FuzzSequenceOrder | ./pipeline | 4s | 900 | 2 (total: 9) | crasher: testdata/fuzz/FuzzSequenceOrder/abc |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if err := run(t.TempDir(), out, ""); err == nil {
		t.Error("an empty directory made a report")
	}
}

func TestNum(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
