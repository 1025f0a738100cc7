package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
)

// sink writes each group commit's new events to the output before the
// group commits: for a regular file, written and fsync'd, its new length
// then commits in the same transaction as the events' identities. On
// start the file is cut back to the committed length (see openSink), so
// after a crash no uncommitted line survives and no committed one is
// lost. For standard output and other streams only the order holds.
//
// The pipeline calls WriteBatch from its one committer goroutine.
type sink struct {
	name    string   // checkpoint name
	f       *os.File // nil for standard output
	durable bool     // a regular file: synced and cut back
	w       *bufio.Writer
	off     int64         // committed length after the last WriteBatch
	tail    []byte        // the last min(off, tailBytes) bytes of the file (durable only)
	written *atomic.Int64 // lines written, for the summary
	// time spent writing and syncing, for --timing
	writeTime, syncTime time.Duration
}

// checkpointPrefix prefixes the absolute path of an output file to name
// its checkpoint: each output file has its own committed length, so that
// a run may write to a new file after earlier runs wrote to others.
const checkpointPrefix = "out:"

// tailBytes is how much of the end of the committed part of --out its
// checkpoint checksums, so that a file replaced by another one at least as
// long is refused instead of cut.
const tailBytes = 4096

// crc32c is the checksum of the tail.
var crc32c = crc32.MakeTable(crc32.Castagnoli)

// openSink opens the output named by path ("-" for stdout) and cuts a
// regular file back to the length committed in store. A file without
// checkpoint is continued from its current length, which commits as the
// first checkpoint before anything is written.
func openSink(store *dedup.Store, path string, stdout io.Writer) (*sink, error) {
	if path == "-" {
		return &sink{name: checkpointPrefix + "-", w: bufio.NewWriterSize(stdout, 256<<10)}, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	_, err = os.Lstat(path)
	created := errors.Is(err, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	s := &sink{name: checkpointPrefix + abs, f: f, w: bufio.NewWriterSize(f, 256<<10)}
	if err := s.recover(store); err != nil {
		f.Close()
		if created {
			os.Remove(path) // leave no file that was not there
		}
		return nil, err
	}
	return s, nil
}

// syncDir fsyncs the directory holding the file named path (through any
// symbolic links), so that the file's name survives a crash. A file
// system that cannot sync a directory (EINVAL, as on some network file
// systems, or unsupported) is left to its own guarantees.
func syncDir(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("--out: syncing its directory: %w", err)
	}
	d, err := os.Open(filepath.Dir(real))
	if err != nil {
		return fmt.Errorf("--out: syncing its directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("--out: syncing its directory: %w", err)
	}
	return nil
}

// recover cuts the file back to its committed length.
func (s *sink) recover(store *dedup.Store) error {
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil // a device or pipe: written, never cut
	}
	s.durable = true
	v, ok, err := store.Checkpoint(s.name)
	if err != nil {
		return fmt.Errorf("reading the output checkpoint: %w", err)
	}
	if !ok {
		s.off = st.Size()
		if err := s.readTail(); err != nil {
			return err
		}
		// What the file holds already becomes committed: make it and its
		// name durable first, or a crash could leave the file shorter than
		// committed, or gone.
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("syncing --out: %w", err)
		}
		if err := syncDir(s.f.Name()); err != nil {
			return err
		}
		if err := s.commitCheckpoint(store); err != nil {
			return err
		}
	} else {
		if len(v) != 8 && len(v) != 12 {
			return fmt.Errorf("corrupt state: the checkpoint of --out %s has %d bytes, want 8 or 12", s.f.Name(), len(v))
		}
		s.off = int64(binary.BigEndian.Uint64(v))
		if s.off < 0 || st.Size() < s.off {
			return fmt.Errorf("corrupt state: --out %s has %d bytes, fewer than the %d the state says were committed to it; "+
				"the file was cut or replaced since: restore it, or use another --out or a fresh --state", s.f.Name(), st.Size(), s.off)
		}
		if err := s.readTail(); err != nil {
			return err
		}
		// A checkpoint of 8 bytes, from a version without the checksum,
		// is trusted as it is, and replaced at once by one with it.
		if len(v) == 8 {
			if err := s.commitCheckpoint(store); err != nil {
				return err
			}
		}
		if len(v) == 12 && crc32.Checksum(s.tail, crc32c) != binary.BigEndian.Uint32(v[8:]) {
			harm := "appending to it would continue content that onceflow did not write"
			if st.Size() > s.off {
				harm = "cutting it back would destroy what is in it"
			}
			return fmt.Errorf("corrupt state: the last %d bytes of the %d committed to --out %s are not the ones onceflow wrote; "+
				"the file was changed or replaced since, and %s: "+
				"restore it, or use another --out or a fresh --state", len(s.tail), s.off, s.f.Name(), harm)
		}
	}
	if st.Size() > s.off {
		if err := s.f.Truncate(s.off); err != nil {
			return fmt.Errorf("--out: cutting uncommitted lines: %w", err)
		}
	}
	if _, err := s.f.Seek(s.off, io.SeekStart); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

// commitCheckpoint commits the checkpoint of what the file holds now.
func (s *sink) commitCheckpoint(store *dedup.Store) error {
	err := store.Commit(&onceflow.CommitBatch{Checkpoints: []onceflow.Checkpoint{{Name: s.name, Value: s.checkpoint()}}})
	if err != nil {
		return fmt.Errorf("committing the output checkpoint: %w", err)
	}
	return nil
}

// readTail reads the last min(off, tailBytes) bytes before off into tail.
func (s *sink) readTail() error {
	n := min(s.off, tailBytes)
	s.tail = make([]byte, n, tailBytes)
	if _, err := s.f.ReadAt(s.tail, s.off-n); err != nil {
		return fmt.Errorf("--out: reading its committed end: %w", err)
	}
	return nil
}

// checkpoint returns the committed length, 8 bytes big-endian, and the
// CRC-32C of the tail, 4 bytes.
func (s *sink) checkpoint() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(s.off))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(s.tail, crc32c))
}

// keepTail updates tail with the lines of evs, just written, copying only
// the bytes that end up in it: tail never grows past tailBytes, however
// long a line is.
func (s *sink) keepTail(evs []*onceflow.Event) {
	// Only the lines that end within the last tailBytes matter: evs[from:],
	// n bytes with their newlines.
	from, n := len(evs), 0
	for from > 0 && n < tailBytes {
		from--
		n += len(evs[from].Raw) + 1
	}
	// Keep the end of the old tail that still fits before them.
	keep := max(tailBytes-n, 0)
	if k := len(s.tail) - keep; k > 0 {
		s.tail = s.tail[:copy(s.tail, s.tail[k:])]
	}
	// The first of them may start before the last tailBytes: skip its
	// first n-tailBytes bytes (fewer than its length, newline included).
	skip := max(n-tailBytes, 0)
	for _, ev := range evs[from:] {
		s.tail = append(s.tail, ev.Raw[skip:]...)
		s.tail = append(s.tail, '\n')
		skip = 0
	}
}

// Name names the checkpoint.
func (s *sink) Name() string { return s.name }

// WriteBatch writes evs' original lines, each with "\n", syncs a regular
// file and returns its new length as the checkpoint.
func (s *sink) WriteBatch(evs []*onceflow.Event) ([]byte, error) {
	start := time.Now()
	n := int64(0)
	for _, ev := range evs {
		s.w.Write(ev.Raw) // a write error sticks; Flush reports it
		s.w.WriteByte('\n')
		n += int64(len(ev.Raw)) + 1
	}
	if err := s.w.Flush(); err != nil {
		return nil, fmt.Errorf("writing --out: %w", err)
	}
	synced := time.Now()
	s.writeTime += synced.Sub(start)
	if s.durable {
		if err := s.f.Sync(); err != nil {
			return nil, fmt.Errorf("syncing --out: %w", err)
		}
	}
	s.syncTime += time.Since(synced)
	s.off += n
	if s.written != nil {
		s.written.Add(int64(len(evs)))
	}
	if !s.durable {
		return []byte{}, nil
	}
	s.keepTail(evs)
	return s.checkpoint(), nil
}

// close closes the file; standard output stays open.
func (s *sink) close() error {
	err := s.w.Flush()
	if s.f != nil {
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
