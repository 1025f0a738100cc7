package stage_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/retry"
	"github.com/onceflow/onceflow/stage"
)

func TestCallRecoversPanic(t *testing.T) {
	f := func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) { panic("kaboom") }
	var fx onceflow.Effects
	_, err := stage.Call(context.Background(), f, &onceflow.Event{Source: "s", ID: "i"}, &fx)
	var pe *retry.PanicError
	if !errors.As(err, &pe) || !strings.Contains(pe.Error(), "kaboom") || len(pe.Stack) == 0 {
		t.Fatalf("Call = %v, want a *PanicError with value and stack", err)
	}
}

func TestCallResultLimit(t *testing.T) {
	f := func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) {
		return make([]byte, onceflow.MaxResultBytes+1), nil
	}
	var fx onceflow.Effects
	if _, err := stage.Call(context.Background(), f, &onceflow.Event{}, &fx); !errors.Is(err, onceflow.ErrResultTooLarge) {
		t.Fatalf("Call = %v, want ErrResultTooLarge", err)
	}
}

func TestShardSpreadsAndIsStable(t *testing.T) {
	counts := make([]int, 8)
	for i := range 8000 {
		k := "key-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))
		s := stage.Shard(k, 8)
		if s != stage.Shard(k, 8) || s < 0 || s >= 8 {
			t.Fatalf("Shard(%q) = %d, unstable or out of range", k, s)
		}
		counts[s]++
	}
	for i, c := range counts {
		if c < 700 || c > 1300 {
			t.Fatalf("shard %d got %d of 8000 keys: %v", i, c, counts)
		}
	}
	if stage.Shard("x", 1) != 0 || stage.Shard("x", 0) != 0 {
		t.Fatal("Shard with <= 1 shard must be 0")
	}
}

func TestChainStopsAtFirstError(t *testing.T) {
	ran := 0
	a := func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) {
		ran++
		return nil, errors.New("a")
	}
	b := func(context.Context, *onceflow.Event, *onceflow.Effects) ([]byte, error) { ran++; return nil, nil }
	var fx onceflow.Effects
	if _, err := stage.Chain(a, b)(context.Background(), &onceflow.Event{}, &fx); err == nil || ran != 1 {
		t.Fatalf("Chain: err %v, %d stages ran; want a's error after 1", err, ran)
	}
	if res, err := stage.Chain()(context.Background(), &onceflow.Event{}, &fx); res != nil || err != nil {
		t.Fatal("empty Chain must be a no-op")
	}
}
