package dedup_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	onceflow "github.com/onceflow/onceflow"
)

func TestScanState(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		r := done("1", "")
		for _, key := range []string{"\x00H", "\x00H\x01a", "\x00H\x02bb", "\x00I", "\x00G\xff", "\x01x"} {
			r.Writes = append(r.Writes, onceflow.StateWrite{Key: []byte(key), Value: []byte("v" + key)})
		}
		commit(t, s, r)
		var got []string
		err := s.ScanState([]byte("\x00H"), func(k, v []byte) error {
			if string(v) != "v"+string(k) {
				return fmt.Errorf("key %q has value %q", k, v)
			}
			got = append(got, string(k))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%q", got) != `["\x00H" "\x00H\x01a" "\x00H\x02bb"]` {
			t.Fatalf("ScanState(prefix) = %q", got)
		}
		stop := errors.New("stop")
		n := 0
		if err := s.ScanState(nil, func(k, v []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Fatalf("ScanState stopping: err %v after %d keys", err, n)
		}
		if err := s.ScanState(nil, nil); err == nil || !strings.Contains(err.Error(), "nil function") {
			t.Errorf("ScanState(nil fn) = %v, want an error naming the nil function", err)
		}
		if _, err := s.PurgeDeadLetters(nil); err == nil || !strings.Contains(err.Error(), "PurgeDeadLetters(nil)") {
			t.Errorf("PurgeDeadLetters(nil) = %v, want an error naming the nil function", err)
		}
	})
}

// TestScanStatePagesAndCallsOutsideLocks: more keys than a page, and a
// callback that uses the store (the pipeline reads state while reloading).
func TestScanStatePagesAndCallsOutsideLocks(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		r := done("1", "")
		for i := range 1000 {
			r.Writes = append(r.Writes, onceflow.StateWrite{Key: []byte(fmt.Sprintf("\x00H%04d", i)), Value: []byte("v")})
		}
		r.Writes = append(r.Writes, onceflow.StateWrite{Key: []byte("\x00I"), Value: []byte("v")})
		commit(t, s, r)
		n := 0
		err := s.ScanState([]byte("\x00H"), func(k, v []byte) error {
			if want := fmt.Sprintf("\x00H%04d", n); string(k) != want {
				return fmt.Errorf("key %d = %q, want %q", n, k, want)
			}
			n++
			if _, _, err := s.ReadState(k); err != nil {
				return err
			}
			if n%300 == 0 {
				commit(t, s, done(fmt.Sprintf("during-%d", n), ""))
			}
			return nil
		})
		if err != nil || n != 1000 {
			t.Fatalf("ScanState = %v after %d keys, want 1000", err, n)
		}
	})
}
