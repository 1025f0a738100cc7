package pipeline_test

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/onceflow/onceflow/internal/crashtest"
)

// proofSummary is the JSON record a proof suite writes for RELIABILITY.md
// (when ONCEFLOW_RELIABILITY_DIR is set): the crash harness's summary plus
// the figures of the other suites. internal/reliability reads it.
type proofSummary struct {
	crashtest.Summary
	Suite           string  `json:"suite"`
	Point           string  `json:"point,omitempty"`
	Hit             int     `json:"hit,omitempty"`
	Mutation        string  `json:"mutation,omitempty"`
	Expect          string  `json:"expect,omitempty"` // what a passing run shows, for mutation checks
	Transient       int     `json:"transient_faults,omitempty"`
	Permanent       int     `json:"permanent_faults,omitempty"`
	DeadLetters     int     `json:"dead_letters,omitempty"`
	Redriven        int     `json:"redriven,omitempty"`
	OrderViolations int     `json:"order_violations"`
	ModelDiff       int     `json:"model_diff"`
	Unacked         int     `json:"unacked"`
	Injected        int     `json:"injected,omitempty"`
	InjectedBy      []kv    `json:"injected_by,omitempty"`
	Accounted       int     `json:"accounted,omitempty"`
	AccountedBy     []kv    `json:"accounted_by,omitempty"`
	Unaccounted     int     `json:"unaccounted"`
	FaultRate       float64 `json:"fault_rate,omitempty"`
	Runs            int     `json:"runs,omitempty"`
	Commands        int     `json:"commands,omitempty"`
	Restarts        int     `json:"restarts,omitempty"`
	Fsync           *bool   `json:"fsync,omitempty"` // whether the store fsync'd its commits
}

func ptr[T any](v T) *T { return &v }

type kv struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// writeProofSummary writes s to ONCEFLOW_RELIABILITY_DIR, if set.
func writeProofSummary(t *testing.T, s proofSummary) {
	t.Helper()
	dir := os.Getenv("ONCEFLOW_RELIABILITY_DIR")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, s.Name+".json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// proofSeed returns ONCEFLOW_SEED when set, else a fresh seed; tests log it.
func proofSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("ONCEFLOW_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ONCEFLOW_SEED=%q: %v", s, err)
		}
		return n
	}
	return rand.Uint64()
}

// envInt returns the integer environment variable name, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

// envFloat returns the float environment variable name, or def.
func envFloat(t *testing.T, name string, def float64) float64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return f
}
