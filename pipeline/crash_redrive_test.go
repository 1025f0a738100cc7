package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/crashtest"
	"github.com/onceflow/onceflow/pipeline"
	"github.com/onceflow/onceflow/retry"
)

func redriveEvents(n int) []*onceflow.Event {
	evs := make([]*onceflow.Event, n)
	for i := range evs {
		ev := &onceflow.Event{SpecVersion: "1.0", Source: "redrive", Type: "t", ID: "r" + strconv.Itoa(i), PartitionKey: "k" + strconv.Itoa(i%50)}
		ev.Raw = ev.AppendJSON(nil)
		evs[i] = ev
	}
	return evs
}

// TestCrashRedriveChild dead-letters N events (once), then redrives every
// dead letter not yet redriven, with many redrives in flight.
func TestCrashRedriveChild(t *testing.T) {
	if !crashtest.IsChild("TestCrashRedriveChild") {
		t.Skip("the child process of TestCrashRedrive")
	}
	dir := os.Getenv("CRASH_DIR")
	n, _ := strconv.Atoi(os.Getenv("CRASH_EVENTS"))
	store, err := dedup.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	phase := filepath.Join(dir, "dead-lettered")
	ctx := context.Background()
	if _, err := os.Stat(phase); err != nil {
		// Phase 1, not killed: every event fails permanently.
		fail := func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) {
			return nil, retry.Permanent(errors.New("broken handler"))
		}
		p, err := pipeline.New(fail, pipeline.WithStore(store), pipeline.WithRetry(retry.Policy{}))
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- p.Run(ctx) }()
		if err := p.SubmitBatch(ctx, redriveEvents(n)); err != nil {
			t.Fatal(err)
		}
		if err := p.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(phase, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Phase 2, killed at random: redrive with a fixed handler.
	p, err := pipeline.New(effectHandler, pipeline.WithStore(store), pipeline.WithShards(4), pipeline.WithRetry(retry.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	fmt.Println(crashtest.Ready)
	var todo []onceflow.Identity
	var after onceflow.Identity
	for {
		page, err := store.DeadLetters(after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, d := range page {
			if d.Redriven.IsZero() {
				todo = append(todo, d.ID)
			}
		}
		after = page[len(page)-1].ID
	}
	var wg sync.WaitGroup
	work := make(chan onceflow.Identity)
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			for id := range work {
				out, err := p.Redrive(ctx, id)
				if err == nil && out.Status != onceflow.StatusDone {
					err = fmt.Errorf("redrive of %v: outcome %+v", id, out)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for _, id := range todo {
		work <- id
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestCrashRedriveCheckChild checks that every dead letter was redriven
// exactly once.
func TestCrashRedriveCheckChild(t *testing.T) {
	if !crashtest.IsChild("TestCrashRedriveCheckChild") {
		t.Skip("the checker process of TestCrashRedrive")
	}
	dir := os.Getenv("CRASH_DIR")
	n, _ := strconv.Atoi(os.Getenv("CRASH_EVENTS"))
	store, err := dedup.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sum := crashtest.Summary{Events: n, Deliveries: n}
	for _, ev := range redriveEvents(n) {
		out, found, err := store.Inspect(ev.Identity())
		if err != nil {
			t.Fatal(err)
		}
		d, dlFound, err := store.DeadLetter(ev.Identity())
		if err != nil {
			t.Fatal(err)
		}
		if !found || out.Status != onceflow.StatusDone || !dlFound || d.Redriven.IsZero() {
			sum.Lost++
			t.Errorf("%s: outcome %+v (found %v), dead letter redriven %v (found %v)", ev.ID, out, found, d.Redriven, dlFound)
		}
		v, _, err := store.ReadState(onceflow.StateKey(ev.Key(), "n/"+ev.ID))
		if err != nil {
			t.Fatal(err)
		}
		if string(v) != "1" {
			if k, _ := strconv.Atoi(string(v)); k > 1 {
				sum.DupEffects += k - 1
			}
			t.Errorf("%s: redrive effect applied %q times, want once", ev.ID, v)
		}
	}
	if err := store.Check(); err != nil {
		sum.CheckErrors++
		t.Errorf("tx.Check: %v", err)
	}
	b, _ := json.Marshal(sum)
	fmt.Println("SUMMARY " + string(b))
}

// TestCrashRedrive redrives N dead letters while SIGKILLing the process at
// random moments; every dead letter is redriven exactly once.
func TestCrashRedrive(t *testing.T) {
	if crashtest.IsChild("TestCrashRedriveChild") || crashtest.IsChild("TestCrashRedriveCheckChild") {
		t.Skip("parent only")
	}
	seed := rand.Uint64()
	if s := os.Getenv("ONCEFLOW_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	n, kills := 4000, 20
	if testing.Short() {
		n, kills = 2000, 5
	}
	t.Logf("seed %d, %d dead letters, %d kills", seed, n, kills)
	dir := t.TempDir()
	bin, err := crashtest.BuildChild(t.TempDir(), ".")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"CRASH_DIR=" + dir, "CRASH_EVENTS=" + strconv.Itoa(n)}
	res, err := crashtest.Run(crashtest.Config{Child: "TestCrashRedriveChild", Binary: bin, Kills: kills, Seed: seed,
		MaxDelay: 25 * time.Millisecond, Env: env, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := runCrashChecker(t, bin, "TestCrashRedriveCheckChild", env)
	sum.Name, sum.Seed, sum.Kills, sum.Starts, sum.WallSeconds = "crash-redrive", seed, res.Kills, res.Starts, res.Wall.Seconds()
	sum.Command = fmt.Sprintf("ONCEFLOW_SEED=%d go test -run '^TestCrashRedrive$' ./pipeline", seed)
	t.Logf("summary: %+v", sum)
	if err := crashtest.WriteSummary(os.Getenv("ONCEFLOW_RELIABILITY_DIR"), sum); err != nil {
		t.Fatal(err)
	}
	if sum.Events != n || sum.Lost != 0 || sum.DupEffects != 0 || sum.CheckErrors != 0 {
		t.Fatalf("redrive crash run broke the promise: %+v", sum)
	}
	// A fast machine may finish the redrives before every kill lands;
	// at least one must have interrupted them.
	if res.Kills == 0 {
		t.Fatalf("no kill landed during the redrives")
	}
}
