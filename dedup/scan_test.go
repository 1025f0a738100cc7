package dedup_test

import (
	"errors"
	"fmt"
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
	})
}
