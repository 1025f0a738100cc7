package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/commands"
	"github.com/leanovate/gopter/gen"
	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
)

// The stateful test: gopter commands drive the real pipeline on a bbolt
// store — submit a new event, submit a copy of an earlier one, make the
// handler's next run fail, restart (Shutdown, close and reopen the file, a
// new pipeline) — and every acknowledgement is checked against a plain
// model: a map from identity to its first outcome and a count per key.
//
// The handler counts the events of each key in the key's state and returns
// "k<key>:<count>", so that an outcome shows which state it saw: lost or
// doubled state across a restart shows as a wrong result.

// statefulSUT is the system under test.
type statefulSUT struct {
	dir      string
	store    *dedup.Store
	p        *pipeline.Pipeline
	errc     chan error
	failNext atomic.Bool
	events   []*onceflow.Event // new events, in submission order
	hooks    pipeline.Hooks    // mutation switches, for the teeth check

	commands, restarts *atomic.Int64 // counters of the whole test
}

func statefulHandler(sut *statefulSUT) func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) {
	return func(_ context.Context, ev *onceflow.Event, fx *onceflow.Effects) ([]byte, error) {
		if sut.failNext.CompareAndSwap(true, false) {
			return nil, errStatefulFail
		}
		v, _, err := fx.Get("count")
		if err != nil {
			return nil, err
		}
		n, _ := strconv.Atoi(string(v))
		fx.Put("count", []byte(strconv.Itoa(n+1)))
		return []byte(ev.PartitionKey + ":" + strconv.Itoa(n+1)), nil
	}
}

var errStatefulFail = errors.New("stateful: injected handler failure")

func (sut *statefulSUT) open() error {
	st, err := dedup.Open(filepath.Join(sut.dir, "state.db"), dedup.UnsafeNoSync(), dedup.WithCapacity(1024), dedup.WithCacheItems(64))
	if err != nil {
		return err
	}
	p, err := pipeline.New(statefulHandler(sut), pipeline.WithStore(st), pipeline.WithShards(2),
		pipeline.WithGroupCommit(1, time.Millisecond), pipeline.WithLinger(0), pipeline.WithTestHooks(sut.hooks))
	if err != nil {
		_ = st.Close()
		return err
	}
	sut.store, sut.p, sut.errc = st, p, make(chan error, 1)
	go func() { sut.errc <- p.Run(context.Background()) }()
	return nil
}

func (sut *statefulSUT) close() error {
	err := sut.p.Shutdown(context.Background())
	if e := <-sut.errc; err == nil {
		err = e
	}
	if e := sut.store.Close(); err == nil {
		err = e
	}
	return err
}

// statefulModel is the model, and what the last command expects of the
// system (PostCondition receives the state after NextState, so the
// expectation lives in the state, never in the command).
type statefulModel struct {
	ids      []string
	keys     []string
	first    map[string]string // identity -> first result
	count    map[string]int    // key -> events done
	failNext bool

	expectErr, expectDup bool
	expectResult         string
}

func (m *statefulModel) clone() *statefulModel {
	c := *m
	c.ids = append([]string(nil), m.ids...)
	c.keys = append([]string(nil), m.keys...)
	c.first = make(map[string]string, len(m.first))
	for k, v := range m.first {
		c.first[k] = v
	}
	c.count = make(map[string]int, len(m.count))
	for k, v := range m.count {
		c.count[k] = v
	}
	return &c
}

// deliver is what the model expects when identity i is delivered.
func (m *statefulModel) deliver(i int) {
	id, key := m.ids[i], m.keys[i]
	m.expectErr, m.expectDup, m.expectResult = false, false, ""
	if r, ok := m.first[id]; ok {
		m.expectDup, m.expectResult = true, r // the handler does not run: failNext stays armed
		return
	}
	if m.failNext { // a failed first attempt is not "seen"
		m.failNext, m.expectErr = false, true
		return
	}
	m.count[key]++
	m.first[id] = key + ":" + strconv.Itoa(m.count[key])
	m.expectResult = m.first[id]
}

type statefulAck struct {
	out onceflow.Outcome
	err error
}

func checkAck(state commands.State, result commands.Result) *gopter.PropResult {
	m := state.(*statefulModel)
	a := result.(statefulAck)
	switch {
	case m.expectErr && a.err == nil:
		return &gopter.PropResult{Status: gopter.PropFalse, Labels: []string{fmt.Sprintf("want a failure, got %+v", a.out)}}
	case m.expectErr:
		return &gopter.PropResult{Status: gopter.PropTrue}
	case a.err != nil:
		return &gopter.PropResult{Status: gopter.PropFalse, Labels: []string{fmt.Sprintf("unexpected error %v", a.err)}}
	case a.out.Status != onceflow.StatusDone || a.out.Duplicate != m.expectDup || !bytes.Equal(a.out.Result, []byte(m.expectResult)):
		return &gopter.PropResult{Status: gopter.PropFalse, Labels: []string{fmt.Sprintf(
			"outcome %v duplicate=%v result %q, want done duplicate=%v result %q",
			a.out.Status, a.out.Duplicate, a.out.Result, m.expectDup, m.expectResult)}}
	}
	return &gopter.PropResult{Status: gopter.PropTrue}
}

func okResult(_ commands.State, result commands.Result) *gopter.PropResult {
	if result != nil {
		return &gopter.PropResult{Status: gopter.PropFalse, Labels: []string{fmt.Sprint(result)}}
	}
	return &gopter.PropResult{Status: gopter.PropTrue}
}

// submitNew submits a new event of key k<key>.
type submitNew struct{ key int }

func (c submitNew) Run(s commands.SystemUnderTest) commands.Result {
	sut := s.(*statefulSUT)
	sut.commands.Add(1)
	key := "k" + strconv.Itoa(c.key)
	ev := &onceflow.Event{SpecVersion: "1.0", Source: "stateful", Type: "t", ID: "e" + strconv.Itoa(len(sut.events)), PartitionKey: key}
	sut.events = append(sut.events, ev)
	out, err := sut.p.Do(context.Background(), ev)
	return statefulAck{out, err}
}

func (c submitNew) NextState(s commands.State) commands.State {
	m := s.(*statefulModel).clone()
	m.ids = append(m.ids, "e"+strconv.Itoa(len(m.ids)))
	m.keys = append(m.keys, "k"+strconv.Itoa(c.key))
	m.deliver(len(m.ids) - 1)
	return m
}

func (submitNew) PreCondition(commands.State) bool { return true }
func (submitNew) PostCondition(s commands.State, r commands.Result) *gopter.PropResult {
	return checkAck(s, r)
}
func (c submitNew) String() string { return fmt.Sprintf("SubmitNew(k%d)", c.key) }

// submitDup submits a copy of the n-th new event (modulo their number).
type submitDup struct{ n int }

func (c submitDup) Run(s commands.SystemUnderTest) commands.Result {
	sut := s.(*statefulSUT)
	sut.commands.Add(1)
	cp := *sut.events[c.n%len(sut.events)]
	out, err := sut.p.Do(context.Background(), &cp)
	return statefulAck{out, err}
}

func (c submitDup) NextState(s commands.State) commands.State {
	m := s.(*statefulModel).clone()
	m.deliver(c.n % len(m.ids))
	return m
}

func (submitDup) PreCondition(s commands.State) bool { return len(s.(*statefulModel).ids) > 0 }
func (submitDup) PostCondition(s commands.State, r commands.Result) *gopter.PropResult {
	return checkAck(s, r)
}
func (c submitDup) String() string { return fmt.Sprintf("SubmitDuplicate(#%d)", c.n) }

// failNext makes the handler's next run fail.
type failNext struct{}

func (failNext) Run(s commands.SystemUnderTest) commands.Result {
	sut := s.(*statefulSUT)
	sut.commands.Add(1)
	sut.failNext.Store(true)
	return nil
}

func (failNext) NextState(s commands.State) commands.State {
	m := s.(*statefulModel).clone()
	m.failNext = true
	return m
}

func (failNext) PreCondition(commands.State) bool { return true }
func (failNext) PostCondition(s commands.State, r commands.Result) *gopter.PropResult {
	return okResult(s, r)
}
func (failNext) String() string { return "FailNext" }

// restart shuts the pipeline down, closes and reopens the bbolt file, and
// starts a new pipeline.
type restart struct{}

func (restart) Run(s commands.SystemUnderTest) commands.Result {
	sut := s.(*statefulSUT)
	sut.commands.Add(1)
	sut.restarts.Add(1)
	if err := sut.close(); err != nil {
		return err
	}
	if err := sut.open(); err != nil {
		return err
	}
	return nil
}

func (restart) NextState(s commands.State) commands.State { return s }
func (restart) PreCondition(commands.State) bool          { return true }
func (restart) PostCondition(s commands.State, r commands.Result) *gopter.PropResult {
	return okResult(s, r)
}
func (restart) String() string { return "Restart" }

// TestProofStateful runs the command sequences (PROOF_STATEFUL_RUNS
// sequences, default 100, of up to 40 commands) and checks every
// acknowledgement against the model.
func TestProofStateful(t *testing.T) {
	runs := envInt(t, "PROOF_STATEFUL_RUNS", 100)
	if testing.Short() {
		runs = 20
	}
	params := parameters(t, runs)
	start := time.Now()
	ok, report, cmds, restarts := runStateful(t, params, pipeline.Hooks{})
	t.Log(report)
	if !ok {
		t.Fatalf("property failed; reproduce with GOPTER_SEED=%d PROOF_STATEFUL_RUNS=%d go test -run '^%s$' ./pipeline", params.Seed(), runs, t.Name())
	}
	var sum proofSummary
	sum.Name, sum.Suite, sum.Seed, sum.Fsync = "stateful", "properties", uint64(params.Seed()), ptr(false)
	sum.Runs, sum.Commands, sum.Restarts = runs, cmds, restarts
	sum.WallSeconds = time.Since(start).Seconds()
	sum.Command = fmt.Sprintf("GOPTER_SEED=%d PROOF_STATEFUL_RUNS=%d go test -count=1 -run '^TestProofStateful$' ./pipeline", params.Seed(), runs)
	t.Logf("%d command sequences, %d commands, %d restarts in %.1fs", sum.Runs, sum.Commands, sum.Restarts, sum.WallSeconds)
	writeProofSummary(t, sum)
}

// TestProofStatefulHasTeeth is the mutation check of the stateful test:
// with the dedup lookup disabled (Hooks.SkipDedup), a duplicate runs the
// handler again, and the model must notice.
func TestProofStatefulHasTeeth(t *testing.T) {
	params := parameters(t, 200)
	ok, report, _, _ := runStateful(t, params, pipeline.Hooks{SkipDedup: true})
	t.Log(report)
	if ok {
		t.Fatal("with the dedup lookup disabled the stateful test still passed: it has no teeth")
	}
}

// runStateful checks the command sequences with the given mutation
// switches and returns whether they passed, the report, and the commands
// and restarts run.
func runStateful(t *testing.T, params *gopter.TestParameters, hooks pipeline.Hooks) (ok bool, report string, cmds, restarts int) {
	t.Helper()
	params.MaxSize = 40
	var nCmds, nRestarts atomic.Int64
	var setupErr atomic.Pointer[error]
	proto := &commands.ProtoCommands{
		NewSystemUnderTestFunc: func(commands.State) commands.SystemUnderTest {
			dir, err := os.MkdirTemp("", "onceflow-stateful-")
			sut := &statefulSUT{dir: dir, hooks: hooks, commands: &nCmds, restarts: &nRestarts}
			if err == nil {
				err = sut.open()
			}
			if err != nil {
				setupErr.CompareAndSwap(nil, &err)
			}
			return sut
		},
		DestroySystemUnderTestFunc: func(s commands.SystemUnderTest) {
			sut := s.(*statefulSUT)
			if sut.p != nil {
				if err := sut.close(); err != nil {
					setupErr.CompareAndSwap(nil, &err)
				}
			}
			_ = os.RemoveAll(sut.dir)
		},
		InitialStateGen: gen.Const(&statefulModel{first: map[string]string{}, count: map[string]int{}}),
		GenCommandFunc: func(commands.State) gopter.Gen {
			return gen.Weighted([]gen.WeightedGen{
				{Weight: 5, Gen: gen.IntRange(0, 2).Map(func(k int) commands.Command { return submitNew{k} })},
				{Weight: 4, Gen: gen.IntRange(0, 1<<10).Map(func(n int) commands.Command { return submitDup{n} })},
				{Weight: 1, Gen: gen.Const(failNext{})},
				{Weight: 1, Gen: gen.Const(restart{})},
			})
		},
	}
	ps := gopter.NewProperties(params)
	ps.Property("acknowledgements match the model across failures and restarts", commands.Prop(proto))
	var buf bytes.Buffer
	ok = ps.Run(gopter.NewFormatedReporter(true, 160, &buf))
	if e := setupErr.Load(); e != nil {
		t.Fatal(*e)
	}
	return ok, buf.String(), int(nCmds.Load()), int(nRestarts.Load())
}
