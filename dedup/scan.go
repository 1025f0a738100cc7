package dedup

import (
	"bytes"
	"errors"
)

var errStopScan = errors.New("dedup: stop scan")

// scanPage is how many keys ScanState reads per read transaction.
const scanPage = 256

// ScanState calls fn, in key order, with a copy of every handler-state key
// and value whose key starts with prefix, until fn returns an error (which
// ScanState returns). It reads pages of up to 256 keys, each in its own
// read transaction, and calls fn between them, holding no lock: fn may use
// the store (read, or even commit). Keys committed during the scan after
// the page that would hold them are seen; the scan as a whole is not one
// snapshot. It is how the pipeline reloads the events it holds for
// sequence ordering (their keys start with a zero byte, which no
// onceflow.StateKey does). A nil fn is an error.
func (s *Store) ScanState(prefix []byte, fn func(key, value []byte) error) error {
	if fn == nil {
		return errors.New("dedup: ScanState with a nil function")
	}
	type kv struct{ k, v []byte }
	page := make([]kv, 0, scanPage+1)
	more := false // the last list filled its page: there may be more keys
	read := func(after []byte) error {
		s.closeMu.RLock()
		defer s.closeMu.RUnlock()
		if s.closed {
			return ErrClosed
		}
		page = page[:0]
		if after == nil && len(prefix) > 0 {
			// list starts after its key: the key equal to prefix, if
			// any, first.
			v, ok, err := s.be.get(bucketState, prefix)
			if err != nil {
				return &storeError{op: "scan state", path: s.be.name(), err: err}
			}
			if ok {
				page = append(page, kv{bytes.Clone(prefix), bytes.Clone(v)})
			}
			after = prefix
		}
		listed := 0
		more = false
		err := s.be.list(bucketState, after, scanPage, func(k, v []byte) error {
			listed++
			if !bytes.HasPrefix(k, prefix) {
				if bytes.Compare(k, prefix) > 0 {
					return errStopScan
				}
				return nil
			}
			page = append(page, kv{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
		if err != nil && !errors.Is(err, errStopScan) {
			return &storeError{op: "scan state", path: s.be.name(), err: err}
		}
		more = err == nil && listed == scanPage
		return nil
	}
	var after []byte
	for {
		if err := read(after); err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e.k, e.v); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		after = page[len(page)-1].k
	}
}
