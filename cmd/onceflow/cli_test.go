package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These tests call run in process, so that the race detector and goleak
// see the command's goroutines.

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("in.jsonl", filepath.Join(dir, "alias.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "onceflow.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(state, "onceflow.db"), filepath.Join(dir, "dblink")); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "fresh") // never created
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "Usage:"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"run without state", []string{"run", "--in", "-"}, "--state is required"},
		{"run without in", []string{"run", "--state", state}, "--in is required"},
		{"run bad order", []string{"run", "--state", state, "--in", "-", "--order", "random"}, `--order "random"`},
		{"run bad window", []string{"run", "--state", state, "--in", "-", "--window", "0s"}, "--window 0s"},
		{"run unparsable window", []string{"run", "--state", state, "--in", "-", "--window", "soon"}, "invalid value"},
		{"run bad shards", []string{"run", "--state", state, "--in", "-", "--shards", "0"}, "--shards 0"},
		{"run unknown flag", []string{"run", "--state", state, "--in", "-", "--fast"}, "flag provided but not defined: -fast"},
		{"run extra argument", []string{"run", "--state", state, "--in", "-", "extra"}, `unexpected argument "extra"`},
		{"run same files", []string{"run", "--state", state, "--in", "x", "--out", "x"}, "--in must differ"},
		{"run same file by another name", []string{"run", "--state", state, "--in", filepath.Join(dir, "in.jsonl"),
			"--rejects", filepath.Join(dir, "alias.jsonl")}, "--in and --rejects name the same file"},
		{"out not created yet, named twice", []string{"run", "--state", state, "--in", "-", "--out", filepath.Join(dir, "new.jsonl"),
			"--rejects", dir + "/./new.jsonl"}, "--out and --rejects name the same file"},
		{"out through a linked directory", []string{"run", "--state", state, "--in", "-", "--out", filepath.Join(dir, "new.jsonl"),
			"--rejects", filepath.Join(dir, "link", "new.jsonl")}, "--out and --rejects name the same file"},
		{"rejects is the state file", []string{"run", "--state", state, "--in", "-", "--rejects", filepath.Join(state, "onceflow.db")},
			"inside the --state directory"},
		{"out in the state directory", []string{"run", "--state", state, "--in", "-", "--out", filepath.Join(state, "sub", "out.jsonl")},
			"inside the --state directory"},
		{"out is a link to the state file", []string{"run", "--state", state, "--in", "-", "--out", filepath.Join(dir, "dblink")},
			"is the state file"},
		// Values the store or the pipeline would refuse are usage errors,
		// found before the state directory is created (checked below).
		{"window too short for its slices", []string{"run", "--state", fresh, "--in", "-", "--window", "7ms"}, "--window 7ms: must be at least 8ms"},
		{"unknown unit not said too long", []string{"run", "--state", fresh, "--in", "-", "--window", "1x"}, "168h, 90m or 1h30m: time"},
		{"not a number not said too long", []string{"run", "--state", fresh, "--in", "-", "--window", "abc"}, "168h, 90m or 1h30m: time"},
		{"window too long to parse", []string{"run", "--state", fresh, "--in", "-", "--window", "9999999h"}, "too long: at most 2562047h"},
		{"capacity zero", []string{"run", "--state", fresh, "--in", "-", "--capacity", "0"}, "--capacity 0"},
		{"cache items negative", []string{"run", "--state", fresh, "--in", "-", "--cache-items", "-1"}, "--cache-items -1"},
		{"batch too large", []string{"run", "--state", fresh, "--in", "-", "--batch", "100000"}, "--batch"},
		{"chunk too large", []string{"run", "--state", fresh, "--in", "-", "--chunk", "1000000000"}, "--chunk 1000000000"},
		{"group delay zero", []string{"run", "--state", fresh, "--in", "-", "--group-delay", "0s"}, "--group-events and --group-delay"},
		{"in is a directory", []string{"run", "--state", fresh, "--in", dir}, "is a directory"},
		{"inspect without id", []string{"inspect", "--state", state, "--source", "s"}, "--source and --id are required"},
		{"stats without state", []string{"stats"}, "--state is required"},
		{"gen bad rate", []string{"gen", "--dup", "1.5"}, "--dup 1.5"},
		{"gen negative events", []string{"gen", "--events", "-1"}, "--events -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, strings.NewReader(""), &stdout, &stderr)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), "Usage:") {
				t.Fatalf("stderr %q, want it to contain %q and the usage", stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout %q, want nothing", stdout.String())
			}
			if _, err := os.Stat(fresh); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a refused command line created %s (%v)", fresh, err)
			}
		})
	}
}

// TestHelpExplainsEveryFlag checks that each command's --help names each
// of its documented flags, and the top-level help each command.
func TestHelpExplainsEveryFlag(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"run", "inspect", "stats", "gen", "Exit status"}},
		{[]string{"help"}, []string{"run", "inspect", "stats", "gen"}},
		{[]string{"run", "--help"}, []string{"--state", "--in", "--out", "--rejects", "--order", "--window", "--shards",
			"--max-event-bytes", "Crash safety", "standard output", "Exit status", "last line"}},
		{[]string{"help", "run"}, []string{"--state", "--rejects"}},
		{[]string{"inspect", "-h"}, []string{"--state", "--source", "--id"}},
		{[]string{"stats", "--help"}, []string{"--state", "file's size"}},
		{[]string{"gen", "--help"}, []string{"--events", "--dup", "--bad", "--keys", "--shuffle", "--seed", "--sequence", "--out"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(tt.args, nil, &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit %d, want 0; stderr %s", tt.args, code, stderr.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%v: help does not mention %q", tt.args, w)
			}
		}
	}
}

// TestRunInProcess runs a whole stream through run in process, twice.
func TestRunInProcess(t *testing.T) {
	dir := t.TempDir()
	var in, stderr bytes.Buffer
	if code := run([]string{"gen", "--events", "3000", "--dup", "0.3", "--bad", "0.02", "--shuffle", "32", "--max-event-bytes", "2000"},
		nil, &in, &stderr); code != exitOK {
		t.Fatalf("gen: exit %d: %s", code, stderr.String())
	}
	m := newModel()
	want, dups, rejected := m.add(t, in.Bytes(), 2000)
	args := []string{"run", "--state", filepath.Join(dir, "s"), "--in", "-", "--max-event-bytes", "2000", "--shards", "2",
		"--rejects", filepath.Join(dir, "rej")}
	var out bytes.Buffer
	stderr.Reset()
	if code := run(args, bytes.NewReader(in.Bytes()), &out, &stderr); code != exitOK {
		t.Fatalf("run: exit %d: %s", code, stderr.String())
	}
	s := lastSummary(t, stderr.Bytes())
	if s.Read != int64(m.lines) || s.Written != int64(len(want)) || s.Duplicates != int64(dups) || s.Rejected != int64(rejected) {
		t.Fatalf("summary %+v; want %d read, %d written, %d duplicates, %d rejected", s, m.lines, len(want), dups, rejected)
	}
	checkSameLines(t, out.Bytes(), want, true)
	checkRejects(t, filepath.Join(dir, "rej"), m.rejects)

	out.Reset()
	stderr.Reset()
	if code := run(args, bytes.NewReader(in.Bytes()), &out, &stderr); code != exitOK {
		t.Fatalf("rerun: exit %d: %s", code, stderr.String())
	}
	if s := lastSummary(t, stderr.Bytes()); s.Written != 0 || out.Len() != 0 {
		t.Fatalf("rerun: summary %+v, %d bytes out; want nothing written", s, out.Len())
	}
}

func TestRunIOErrorsExit1(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing input", []string{"run", "--state", filepath.Join(dir, "s1"), "--in", filepath.Join(dir, "nope")}, "input:"},
		{"unwritable out", []string{"run", "--state", filepath.Join(dir, "s2"), "--in", "-", "--out", filepath.Join(dir, "no", "such", "dir")}, "--out:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, strings.NewReader(""), &stdout, &stderr); code != exitFailure {
				t.Fatalf("exit %d, want 1: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr %q, want %q", stderr.String(), tt.want)
			}
			lastSummary(t, stderr.Bytes())
		})
	}
}
