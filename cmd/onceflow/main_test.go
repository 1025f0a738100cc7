package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// binary is the onceflow binary built once for the end-to-end tests. It
// is built without the race detector whatever the tests run with: the
// end-to-end tests check behaviour across processes and kills, and the
// in-process tests (which call run) give the race detector the same code.
var onceflowBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "onceflow-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	onceflowBin = filepath.Join(dir, "onceflow")
	build := exec.Command("go", "build", "-o", onceflowBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building onceflow:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
