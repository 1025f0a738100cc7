package proptest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/retry"
	"github.com/onceflow/onceflow/stage"
)

// The model is plain Go, no pipeline and no store: a fresh handler
// applied once per event, in the order in which the pipeline's committed
// runs happened (per key, that is the order of arrival; across crashes,
// the order of redelivery), over a map of state. Faults are applied as the
// stream says; transient ones are left out (a retry hides them).

type modelOutcome struct {
	status onceflow.Status
	result []byte
	class  string
}

type model struct {
	state    map[string][]byte
	outbox   []string // key|topic|payload
	outcomes []modelOutcome
	ext      *External
}

type mapReader map[string][]byte

func (m mapReader) ReadState(key []byte) ([]byte, bool, error) {
	v, ok := m[string(key)]
	return bytes.Clone(v), ok, nil
}

// buildModel applies the handler once per event of r's stream.
func (r *runner) buildModel() model {
	m := model{state: map[string][]byte{}, outcomes: make([]modelOutcome, len(r.s.Events)), ext: NewExternal()}
	h := r.newHandler(m.ext)
	// Order: by each event's last call in the pipeline; events never
	// called (permanent faults, or a pipeline that lost them) after.
	last := make([]int, len(r.s.Events))
	for n := range last {
		last[n] = len(r.calls) + n
	}
	for i, n := range r.calls {
		last[n] = i
	}
	order := make([]int, len(r.s.Events))
	for n := range order {
		order[n] = n
	}
	slices.SortFunc(order, func(a, b int) int { return last[a] - last[b] })
	var fx onceflow.Effects
	for _, n := range order {
		if r.s.Events[n].Fault == Permanent {
			m.outcomes[n] = modelOutcome{status: onceflow.StatusDeadLettered, class: retry.ReasonPermanent}
			continue
		}
		ev := new(onceflow.Event)
		*ev = *r.templates[n]
		fx.Reset(ev, mapReader(m.state))
		res, err := stage.Call(context.Background(), h, ev, &fx)
		if err != nil {
			now := time.Now()
			rp := retryPolicy()
			d := rp.Next(rp.MaxAttempts, now, now, err, nil)
			m.outcomes[n] = modelOutcome{status: onceflow.StatusDeadLettered, class: d.Reason}
			continue
		}
		for _, w := range fx.Writes() {
			if w.Delete {
				delete(m.state, string(w.Key))
			} else {
				m.state[string(w.Key)] = bytes.Clone(w.Value)
			}
		}
		for _, msg := range fx.Outbox() {
			m.outbox = append(m.outbox, msg.Key+"|"+msg.Topic+"|"+string(msg.Payload))
		}
		m.outcomes[n] = modelOutcome{status: onceflow.StatusDone, result: bytes.Clone(res)}
	}
	return m
}

// check compares what the stream left in st, and what was acknowledged,
// with the model.
func (r *runner) check(st *dedup.Store) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	stored := make([]onceflow.Outcome, len(r.s.Events))
	found := make([]bool, len(r.s.Events))
	for n := range r.s.Events {
		out, ok, err := st.Inspect(r.templates[n].Identity())
		if err != nil {
			return err
		}
		stored[n], found[n] = out, ok
	}
	// Nothing acknowledged is lost; duplicates are answered with the first
	// outcome; an event is answered as new at most once.
	fresh := make([]int, len(r.s.Events))
	for _, a := range r.acks {
		n := r.s.Deliveries[a.delivery]
		if !found[n] || (stored[n].Status != onceflow.StatusDone && stored[n].Status != onceflow.StatusDeadLettered) {
			r.violateLocked("lost events", "lost: delivery %d (e%d) acknowledged as %v but its outcome is not stored (%v)", a.delivery, n, a.out.Status, stored[n].Status)
			continue
		}
		if !sameOutcome(a.out, stored[n]) {
			r.violateLocked("wrong answers", "delivery %d (e%d) answered %s, the stored first outcome is %s", a.delivery, n, fmtOutcome(a.out), fmtOutcome(stored[n]))
		}
		if a.out.Duplicate {
			r.res.DuplicateAnswers++
		} else if fresh[n]++; fresh[n] > 1 {
			r.violateLocked("duplicate effects", "duplicate effect: e%d was answered as new %d times", n, fresh[n])
		}
	}
	// The final state equals the model.
	m := r.buildModel()
	for n := range r.s.Events {
		want := m.outcomes[n]
		got := stored[n]
		if !found[n] || got.Status != want.status || got.ErrorClass != want.class || !bytes.Equal(got.Result, want.result) {
			r.violateLocked("model differences", "e%d: stored outcome %s, the model's %s", n,
				fmtOutcome(got), fmtOutcome(onceflow.Outcome{Status: want.status, Result: want.result, ErrorClass: want.class}))
		}
	}
	state := map[string][]byte{}
	err := st.ScanState(nil, func(k, v []byte) error {
		if !bytes.Contains(k, []byte(markerPrefix)) {
			state[string(k)] = v
		}
		return nil
	})
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(state)+len(m.state))
	for k := range state {
		keys = append(keys, k)
	}
	for k := range m.state {
		if _, ok := state[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		got, gok := state[k]
		want, wok := m.state[k]
		if gok != wok || !bytes.Equal(got, want) {
			r.violateLocked("model differences", "state %s: stored %s, the model's %s", fmtKey(k), fmtValue(got, gok), fmtValue(want, wok))
		}
	}
	pending, err := st.PendingOutbox(1 << 30)
	if err != nil {
		return err
	}
	var outbox []string
	for _, e := range pending {
		outbox = append(outbox, e.Message.Key+"|"+e.Message.Topic+"|"+string(e.Message.Payload))
	}
	slices.Sort(outbox)
	slices.Sort(m.outbox)
	if !slices.Equal(outbox, m.outbox) {
		r.violateLocked("model differences", "outbox: %d messages stored, the model's %d; first difference: %s", len(outbox), len(m.outbox), firstDiff(outbox, m.outbox))
	}
	var dead []string
	var after onceflow.Identity
	for {
		dls, err := st.DeadLetters(after, 1000)
		if err != nil {
			return err
		}
		if len(dls) == 0 {
			break
		}
		for _, d := range dls {
			dead = append(dead, d.ID.ID+"|"+d.Reason)
		}
		after = dls[len(dls)-1].ID
	}
	var wantDead []string
	for n, o := range m.outcomes {
		if o.status == onceflow.StatusDeadLettered {
			wantDead = append(wantDead, fmt.Sprintf("e%d|%s", n, o.class))
		}
	}
	slices.Sort(dead)
	slices.Sort(wantDead)
	if !slices.Equal(dead, wantDead) {
		r.violateLocked("model differences", "dead letters %v, the model's %v", dead, wantDead)
	}
	// Effects outside the transaction: the same keys with the same effects
	// as the model's, and never two effects under one key.
	got, want := r.ext.Applied(), m.ext.Applied()
	var extra, missing []string
	for k, v := range got {
		if w, ok := want[k]; !ok {
			extra = append(extra, k)
		} else if !bytes.Equal(v, w) {
			r.violateLocked("outside effects", "outside effect under key %q was %q, the model's %q", k, v, w)
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		r.violateLocked("outside effects", "duplicate effect outside the transaction: %d effect(s) under keys the model never used, e.g. %q: a retry or a crash repeated an effect without a stable idempotency key (use fx.IdempotencyKey)", len(extra), extra[0])
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		r.violateLocked("outside effects", "%d outside effect(s) of the model never happened, e.g. %q", len(missing), missing[0])
	}
	for _, k := range r.ext.conflicted() {
		r.violateLocked("outside effects", "two different outside effects under the key %q: the handler ran twice for one event and saw different state, or it is not deterministic", k)
	}
	return nil
}

func sameOutcome(a, b onceflow.Outcome) bool {
	return a.Status == b.Status && a.Attempts == b.Attempts && a.ErrorClass == b.ErrorClass && bytes.Equal(a.Result, b.Result)
}

func fmtOutcome(o onceflow.Outcome) string {
	s := fmt.Sprintf("%v", o.Status)
	if o.Attempts > 0 {
		s += fmt.Sprintf(" after %d attempt(s)", o.Attempts)
	}
	if o.Result != nil {
		s += fmt.Sprintf(" result %q", cut(o.Result))
	}
	if o.ErrorClass != "" {
		s += " (" + o.ErrorClass + ")"
	}
	if o.Duplicate {
		s += " as a duplicate"
	}
	return s
}

// fmtKey prints a full state key (onceflow.StateKey) as key/"handler key".
func fmtKey(k string) string {
	n, w := binary.Uvarint([]byte(k))
	if w <= 0 || uint64(len(k)-w) < n {
		return fmt.Sprintf("%q", k)
	}
	return fmt.Sprintf("%s/%q", k[w:w+int(n)], k[w+int(n):])
}

func fmtValue(v []byte, ok bool) string {
	if !ok {
		return "nothing"
	}
	return fmt.Sprintf("%q", cut(v))
}

func cut(b []byte) []byte {
	if len(b) > 64 {
		return append(b[:64:64], "…"...)
	}
	return b
}

func firstDiff(a, b []string) string {
	for i := range max(len(a), len(b)) {
		switch {
		case i >= len(a):
			return fmt.Sprintf("missing %q", b[i])
		case i >= len(b):
			return fmt.Sprintf("extra %q", a[i])
		case a[i] != b[i]:
			return fmt.Sprintf("%q instead of %q", strings.ToValidUTF8(a[i], "?"), strings.ToValidUTF8(b[i], "?"))
		}
	}
	return "none"
}
