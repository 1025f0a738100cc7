package pipeline_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/crashtest"
	"github.com/onceflow/onceflow/pipeline"
)

// crashStream is the durable test source: a deterministic delivery list
// with dupRate of the deliveries repeating a recent event.
type crashStream struct {
	evs    []*onceflow.Event // deliveries, in order
	unique int
}

func newCrashStream(seed uint64, unique, keys int, dupRate float64) crashStream {
	rnd := rand.New(rand.NewPCG(seed, 3))
	cs := crashStream{unique: unique}
	for i := range unique {
		ev := &onceflow.Event{SpecVersion: "1.0", Source: "crash", Type: "t", ID: "e" + strconv.Itoa(i),
			PartitionKey: "k" + strconv.Itoa(rnd.IntN(keys))}
		cs.evs = append(cs.evs, ev)
		for rnd.Float64() < dupRate/(1-dupRate) && len(cs.evs) > 0 { // a copy of a recent event
			j := max(0, len(cs.evs)-1-rnd.IntN(64))
			cp := *cs.evs[j]
			cs.evs = append(cs.evs, &cp)
		}
	}
	return cs
}

// ackLog is the source's durable record of acknowledged deliveries: one
// little-endian uint32 delivery index per ack, appended.
func readAcks(path string, n int) ([]bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return make([]bool, n), nil
	}
	if err != nil {
		return nil, err
	}
	acked := make([]bool, n)
	for i := 0; i+4 <= len(b); i += 4 { // a torn last record is ignored
		if j := binary.LittleEndian.Uint32(b[i:]); int(j) < n {
			acked[j] = true
		}
	}
	return acked, nil
}

// effectHandler applies each event's transactional effect: a counter per
// identity, in the key's state. A second application shows as 2.
func effectHandler(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
	v, _, err := fx.Get("n/" + ev.ID)
	if err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(string(v))
	fx.Put("n/"+ev.ID, []byte(strconv.Itoa(n+1)))
	return []byte("ok"), nil
}

type crashParams struct {
	seed    uint64
	events  int
	dupRate float64
}

func crashParamsFromEnv(t *testing.T) crashParams {
	seed, err1 := strconv.ParseUint(os.Getenv("CRASH_SEED"), 10, 64)
	n, err2 := strconv.Atoi(os.Getenv("CRASH_EVENTS"))
	dup, err3 := strconv.ParseFloat(os.Getenv("CRASH_DUP"), 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("crash child environment: %v", err)
	}
	return crashParams{seed, n, dup}
}

// TestCrashChild is the child of TestCrashDedup: it replays every delivery
// the ack log does not hold through a pipeline on the bbolt store, logging
// acks, until all are acknowledged.
func TestCrashChild(t *testing.T) {
	if !crashtest.IsChild("TestCrashChild") {
		t.Skip("the child process of TestCrashDedup")
	}
	cp := crashParamsFromEnv(t)
	dir := os.Getenv("CRASH_DIR")
	cs := newCrashStream(cp.seed, cp.events, 1000, cp.dupRate)
	store, err := dedup.Open(filepath.Join(dir, "state.db"), dedup.WithCapacity(4*cp.events))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ackPath := filepath.Join(dir, "acks")
	acked, err := readAcks(ackPath, len(cs.evs))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(ackPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rf, err := os.OpenFile(filepath.Join(dir, "recovered"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	index := make(map[*onceflow.Event]uint32, len(cs.evs))
	first := make(map[uint32]bool, cs.unique) // deliveries that are an identity's first copy
	seen := make(map[string]bool, cs.unique)
	for i, ev := range cs.evs {
		index[ev] = uint32(i)
		if !seen[ev.ID] {
			seen[ev.ID], first[uint32(i)] = true, true
		}
	}
	var ackErr error
	p, err := pipeline.New(effectHandler, pipeline.WithStore(store), pipeline.WithShards(4),
		pipeline.WithAck(func(a pipeline.Ack) {
			if a.Err != nil {
				return // not done: the source replays it
			}
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], index[a.Event])
			if _, err := f.Write(b[:]); err != nil && ackErr == nil {
				ackErr = err
			}
			if a.Outcome.Duplicate && first[index[a.Event]] {
				// Its first copy committed before a crash, unacknowledged:
				// recovered from the store, not run again.
				if _, err := rf.Write(b[:]); err != nil && ackErr == nil {
					ackErr = err
				}
			}
			acked[index[a.Event]] = true
		}))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()
	fmt.Println(crashtest.Ready)
	ctx := context.Background()
	batch := make([]*onceflow.Event, 0, 256)
	for i, ev := range cs.evs {
		if acked[i] {
			continue
		}
		if batch = append(batch, ev); len(batch) == cap(batch) {
			if err := p.SubmitBatch(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := p.SubmitBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if ackErr != nil {
		t.Fatal(ackErr)
	}
	ps, ds := p.Stats(), store.Stats()
	fmt.Printf("child stats: commits %d (%.0f events each, %v in commits), store commit mean %v max %v\n",
		ps.Commits, ps.EventsPerCommit(), ps.CommitTime, ds.CommitMeanLatency, ds.CommitMaxLatency)
	for i, ok := range acked {
		if !ok {
			t.Fatalf("delivery %d not acknowledged after a full run", i)
		}
	}
}

// TestCrashDedup kills a pipeline on the bbolt store at random moments
// during a run with 20% duplicates, restarts it on the same state, replays
// every unacknowledged delivery, and checks: no acknowledged event lost, no
// transactional effect applied twice, tx.Check clean. The child (and the
// checker) run as a test binary built without the race detector.
func TestCrashDedup(t *testing.T) {
	if crashtest.IsChild("TestCrashChild") || crashtest.IsChild("TestCrashCheckChild") {
		t.Skip("parent only")
	}
	seed := uint64(rand.Int64())
	if s := os.Getenv("ONCEFLOW_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	events, kills, maxDelay := 200_000, 50, 150*time.Millisecond
	if testing.Short() {
		// A short run finishes fast: kills must land sooner.
		events, kills, maxDelay = 20_000, 10, 10*time.Millisecond
	}
	t.Logf("seed %d (reproduce the schedule with ONCEFLOW_SEED=%d), %d events, %d kills", seed, seed, events, kills)
	dir := t.TempDir()
	bin, err := crashtest.BuildChild(t.TempDir(), ".")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"CRASH_DIR=" + dir, "CRASH_SEED=" + strconv.FormatUint(seed, 10),
		"CRASH_EVENTS=" + strconv.Itoa(events), "CRASH_DUP=0.2"}
	res, err := crashtest.Run(crashtest.Config{
		Child: "TestCrashChild", Binary: bin, Kills: kills, Seed: seed, MaxDelay: maxDelay,
		Env: env, Log: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, out := runCrashChecker(t, bin, "TestCrashCheckChild", env)
	sum.Name, sum.Seed, sum.Kills, sum.Starts, sum.WallSeconds = "crash-dedup", seed, res.Kills, res.Starts, res.Wall.Seconds()
	sum.Command = fmt.Sprintf("ONCEFLOW_SEED=%d go test -run '^TestCrashDedup$' ./pipeline", seed)
	t.Logf("summary: %+v", sum)
	if err := crashtest.WriteSummary(os.Getenv("ONCEFLOW_RELIABILITY_DIR"), sum); err != nil {
		t.Fatal(err)
	}
	if sum.Events != events || sum.Lost != 0 || sum.DupEffects != 0 || sum.CheckErrors != 0 {
		t.Fatalf("crash run broke the promise: %+v\nchecker output:\n%s", sum, out)
	}
	if res.Kills < kills {
		t.Fatalf("only %d kills landed, want %d", res.Kills, kills)
	}
}

// runCrashChecker runs the checker child name to completion and returns
// the summary it printed as one "SUMMARY {json}" line, and its output.
func runCrashChecker(t *testing.T, bin, name string, env []string) (crashtest.Summary, string) {
	t.Helper()
	out, err := crashtest.RunOnce(bin, name, env, crashTimeout(t))
	if err != nil {
		t.Fatal(err)
	}
	var sum crashtest.Summary
	for _, line := range strings.Split(out, "\n") {
		if js, ok := strings.CutPrefix(line, "SUMMARY "); ok {
			if err := json.Unmarshal([]byte(js), &sum); err != nil {
				t.Fatal(err)
			}
		}
	}
	return sum, out
}

// TestCrashCheckChild checks the state a crash run left against the
// stream and prints the summary as one "SUMMARY {json}" line.
func TestCrashCheckChild(t *testing.T) {
	if !crashtest.IsChild("TestCrashCheckChild") {
		t.Skip("the checker process of TestCrashDedup")
	}
	cp := crashParamsFromEnv(t)
	dir := os.Getenv("CRASH_DIR")
	cs := newCrashStream(cp.seed, cp.events, 1000, cp.dupRate)
	acked, err := readAcks(filepath.Join(dir, "acks"), len(cs.evs))
	if err != nil {
		t.Fatal(err)
	}
	store, err := dedup.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sum := crashtest.Summary{Events: cs.unique, Deliveries: len(cs.evs), DuplicateRate: cp.dupRate}
	for i, ev := range cs.evs {
		if !acked[i] {
			sum.Lost++ // the source replays until acked: a finished run has none
			t.Errorf("delivery %d (%s) never acknowledged", i, ev.ID)
			continue
		}
		out, found, err := store.Inspect(ev.Identity())
		if err != nil {
			t.Fatal(err)
		}
		if !found || out.Status != onceflow.StatusDone {
			sum.Lost++
			t.Errorf("delivery %d (%s) acknowledged but its outcome is %+v, found %v", i, ev.ID, out, found)
		}
	}
	seen := map[string]bool{}
	for _, ev := range cs.evs {
		if seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		v, ok, err := store.ReadState(onceflow.StateKey(ev.Key(), "n/"+ev.ID))
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := strconv.Atoi(string(v)); !ok || n != 1 {
			sum.DupEffects += max(n-1, 0)
			t.Errorf("effect of %s applied %q times, want once", ev.ID, v)
		}
	}
	if err := store.Check(); err != nil {
		sum.CheckErrors++
		t.Errorf("tx.Check: %v", err)
	}
	rec, _ := os.ReadFile(filepath.Join(dir, "recovered"))
	sum.Recovered = len(rec) / 4
	b, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("SUMMARY " + string(b))
}
