package main

import (
	"bytes"
	"os"
	"testing"

	onceflow "github.com/onceflow/onceflow"
)

// model is what onceflow run must make of an input, worked out
// independently of the code under test: the input split at "\n", each line
// decoded, identities tracked in a map.
type model struct {
	lines    int
	newLines [][]byte                     // first copies of valid events, in input order
	newIDs   map[onceflow.Identity]int    // identity → index in newLines
	rejects  map[int]string               // line number → reason
	reasons  map[string]int               // reason → count
	byKey    map[string][]uint64          // for sequence: key → sequences of new events
	seen     map[onceflow.Identity]bool   // identities seen before this input (earlier runs)
	raw      map[onceflow.Identity][]byte // identity → first line
}

func newModel() *model {
	return &model{newIDs: map[onceflow.Identity]int{}, rejects: map[int]string{}, reasons: map[string]int{},
		byKey: map[string][]uint64{}, seen: map[onceflow.Identity]bool{}, raw: map[onceflow.Identity][]byte{}}
}

// add runs one more input (a later run on the same state) through m. It
// returns the lines that run must write.
func (m *model) add(t *testing.T, input []byte, limit int) (written [][]byte, dups, rejected int) {
	t.Helper()
	dec, err := onceflow.NewDecoder(onceflow.WithMaxEventBytes(limit))
	if err != nil {
		t.Fatal(err)
	}
	m.lines = 0
	m.rejects = map[int]string{}
	parts := bytes.Split(input, []byte("\n"))
	if len(parts[len(parts)-1]) == 0 {
		parts = parts[:len(parts)-1]
	}
	for i, line := range parts {
		m.lines++
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > limit {
			m.rejects[i+1] = "event_too_large"
			m.reasons["event_too_large"]++
			rejected++
			continue
		}
		ev, err := dec.Decode(line)
		if err != nil {
			r := onceflow.Reason(err)
			m.rejects[i+1] = r
			m.reasons[r]++
			rejected++
			continue
		}
		id := ev.Identity()
		if m.seen[id] {
			dups++
			continue
		}
		m.seen[id] = true
		m.raw[id] = line
		m.newIDs[id] = len(m.newLines)
		m.newLines = append(m.newLines, line)
		written = append(written, line)
	}
	return written, dups, rejected
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// joinLines joins lines with "\n" after each.
func joinLines(lines [][]byte) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
