package dedup

import (
	"errors"
	"math"

	onceflow "github.com/onceflow/onceflow"
)

// CountDeadLetters returns the number of dead letters stored, and how many
// of them were redriven.
func (s *Store) CountDeadLetters() (total, redriven int, err error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return 0, 0, ErrClosed
	}
	err = s.be.list(bucketDead, nil, math.MaxInt, func(k, v []byte) error {
		d, err := decodeDeadLetter(v)
		if err != nil {
			return err
		}
		total++
		if !d.Redriven.IsZero() {
			redriven++
		}
		return nil
	})
	if err != nil {
		return 0, 0, &storeError{op: "count dead letters", path: s.be.name(), err: err}
	}
	return total, redriven, nil
}

// PurgeDeadLetters deletes, in one transaction, the dead letters for which
// keep returns false, and returns how many it deleted. A purged event's
// identity keeps its stored outcome for the window: a redelivered copy of a
// dead-lettered event still does not run the handler, and it can no longer
// be redriven. A nil keep is an error. Purge the redriven ones with
//
//	s.PurgeDeadLetters(func(d onceflow.DeadLetter) bool { return d.Redriven.IsZero() })
func (s *Store) PurgeDeadLetters(keep func(onceflow.DeadLetter) bool) (int, error) {
	if keep == nil {
		return 0, errors.New("dedup: PurgeDeadLetters(nil): pass a keep function (one that returns false deletes them all)")
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	var doomed [][]byte
	err := s.be.list(bucketDead, nil, math.MaxInt, func(k, v []byte) error {
		d, err := decodeDeadLetter(v)
		if err != nil {
			return err
		}
		if d.ID, err = onceflow.ParseIdentityKey(k); err != nil {
			return err
		}
		if !keep(d) {
			doomed = append(doomed, append([]byte(nil), k...))
		}
		return nil
	})
	if err == nil && len(doomed) > 0 {
		err = s.be.update(func(tx writeTx) error {
			for _, k := range doomed {
				if err := tx.delete(bucketDead, k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return 0, &storeError{op: "purge dead letters", path: s.be.name(), err: err}
	}
	return len(doomed), nil
}
