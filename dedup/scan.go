package dedup

import (
	"bytes"
	"errors"
	"math"
)

var errStopScan = errors.New("dedup: stop scan")

// ScanState calls fn, in key order, with a copy of every handler-state key
// and value whose key starts with prefix, until fn returns an error (which
// ScanState returns). It reads one consistent snapshot. It is how the
// pipeline reloads the events it holds for sequence ordering (their keys
// start with a zero byte, which no onceflow.StateKey does).
func (s *Store) ScanState(prefix []byte, fn func(key, value []byte) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	// list starts after its key: the key equal to prefix, if any, first.
	if len(prefix) > 0 {
		v, ok, err := s.be.get(bucketState, prefix)
		if err != nil {
			return &storeError{op: "scan state", path: s.be.name(), err: err}
		}
		if ok {
			if err := fn(bytes.Clone(prefix), bytes.Clone(v)); err != nil {
				return err
			}
		}
	}
	var fnErr error
	err := s.be.list(bucketState, prefix, math.MaxInt, func(k, v []byte) error {
		if !bytes.HasPrefix(k, prefix) {
			if bytes.Compare(k, prefix) > 0 {
				return errStopScan
			}
			return nil
		}
		if err := fn(bytes.Clone(k), bytes.Clone(v)); err != nil {
			fnErr = err
			return errStopScan
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil && !errors.Is(err, errStopScan) {
		return &storeError{op: "scan state", path: s.be.name(), err: err}
	}
	return nil
}
