package dedup_test

import (
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
)

func TestCountAndPurgeDeadLetters(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		var recs []onceflow.Record
		for _, id := range []string{"a", "b", "c"} {
			r := done(id, "")
			r.Outcome.Status = onceflow.StatusDeadLettered
			r.DeadLetter = &onceflow.DeadLetter{Raw: []byte(`{}`), Reason: "permanent", Attempts: 1, FirstAttempt: time.Unix(1, 0)}
			recs = append(recs, r)
		}
		commit(t, s, recs...)
		redrive := done("b", "fixed")
		redrive.Redrive = true
		commit(t, s, redrive)
		total, redriven, err := s.CountDeadLetters()
		if err != nil || total != 3 || redriven != 1 {
			t.Fatalf("CountDeadLetters = %d, %d, %v; want 3, 1", total, redriven, err)
		}
		n, err := s.PurgeDeadLetters(func(d onceflow.DeadLetter) bool { return d.Redriven.IsZero() })
		if err != nil || n != 1 {
			t.Fatalf("PurgeDeadLetters(redriven) = %d, %v; want 1", n, err)
		}
		if _, ok, _ := s.DeadLetter(ident("b")); ok {
			t.Fatal("purged dead letter b still there")
		}
		if out, ok := lookup(t, s, "a"); !ok || out.Status != onceflow.StatusDeadLettered {
			t.Fatalf("identity a after purging others: %+v, %v; want still dead-lettered", out, ok)
		}
		n, err = s.PurgeDeadLetters(func(onceflow.DeadLetter) bool { return false })
		if total, _, _ := s.CountDeadLetters(); err != nil || n != 2 || total != 0 {
			t.Fatalf("purge all = %d, %v; %d left", n, err, total)
		}
		if out, ok := lookup(t, s, "a"); !ok || out.Status != onceflow.StatusDeadLettered {
			t.Fatalf("identity a after its dead letter was purged: %+v, %v; the outcome must stay", out, ok)
		}
	})
}
