package proptest

import (
	"fmt"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/pipeline"
)

// Option configures Check, CheckHandler and CheckStream.
type Option interface{ apply(*config) error }

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	runs      int
	maxEvents int
	seed      int64
	seeded    bool
	profile   Profile
	disk      bool
	dir       string
	pipeOpts  []pipeline.Option
	fill      func(ev *onceflow.Event, n int)
	maxShrink int
}

func defaults() config {
	return config{runs: 100, maxEvents: 40, profile: DefaultProfile(), maxShrink: 200}
}

func buildConfig(opts []Option) (config, error) {
	c := defaults()
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("proptest: nil option")
		}
		if err := o.apply(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// WithRuns sets how many streams Check generates and checks (default 100).
func WithRuns(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("proptest: WithRuns(%d): must be positive", n)
		}
		c.runs = n
		return nil
	})
}

// WithMaxEvents bounds the distinct events of a generated stream (default 40).
// Streams grow from 1 event to about MaxEvents over the runs; deliveries
// are about 1/(1-duplicate share) times as many.
func WithMaxEvents(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("proptest: WithMaxEvents(%d): must be positive", n)
		}
		c.maxEvents = n
		return nil
	})
}

// WithSeed fixes the seed of the generated streams. Without it, Check takes
// the seed from the environment (ONCEFLOW_SEED, else GOPTER_SEED), else
// from the clock; either way the seed is in the Report and in every
// failure, and passing it back reproduces the streams and their faults.
func WithSeed(seed int64) Option {
	return optionFunc(func(c *config) error {
		c.seed, c.seeded = seed, true
		return nil
	})
}

// WithProfile sets the shape of the generated streams (default
// DefaultProfile()).
func WithProfile(p Profile) Option {
	return optionFunc(func(c *config) error {
		if p.Keys < 1 || p.MaxShards < 1 {
			return fmt.Errorf("proptest: WithProfile: Keys and MaxShards must be at least 1")
		}
		for _, r := range [...]struct {
			name string
			v    float64
		}{{"KeySkew", p.KeySkew}, {"Duplicates", p.Duplicates}, {"LocalReorder", p.LocalReorder},
			{"GlobalReorder", p.GlobalReorder}, {"Transient", p.Transient}, {"Permanent", p.Permanent}} {
			if !(r.v >= 0 && r.v <= 1) { // also refuses NaN
				return fmt.Errorf("proptest: WithProfile: %s is %v, a share must be in [0, 1]", r.name, r.v)
			}
		}
		if p.Duplicates == 1 {
			return fmt.Errorf("proptest: WithProfile: Duplicates is 1, but each event needs a first copy: it must be below 1")
		}
		if p.Transient+p.Permanent > 1 {
			return fmt.Errorf("proptest: WithProfile: Transient + Permanent is %v, more than every event", p.Transient+p.Permanent)
		}
		if !(p.Crashes >= 0 && p.Crashes <= 100) {
			return fmt.Errorf("proptest: WithProfile: Crashes is %v, crashes per 100 deliveries must be in [0, 100]", p.Crashes)
		}
		if p.MaxBurst < 0 {
			return fmt.Errorf("proptest: WithProfile: MaxBurst %d must not be negative", p.MaxBurst)
		}
		if p.Window < 0 {
			return fmt.Errorf("proptest: WithProfile: Window %d must not be negative", p.Window)
		}
		c.profile = p
		return nil
	})
}

// OnDisk runs the pipelines on the bbolt store (dedup.Open) in a
// temporary directory under dir ("" for the system's), closed and reopened
// at every crash, instead of the in-memory store (dedup.NewMemory), which
// is kept across crashes as if it were durable. Slower; it also checks that
// everything acknowledged survives a reopen. The file is opened with
// dedup.UnsafeNoSync: it is reopened by the same process, whose page cache
// holds every write, so fsync would cost time and show nothing.
func OnDisk(dir string) Option {
	return optionFunc(func(c *config) error {
		c.disk, c.dir = true, dir
		return nil
	})
}

// WithPipelineOptions adds options to every pipeline proptest starts for
// the stream (not to the model), after its own: to check the handler
// under a pipeline configured as in production (WithRetry, WithShards
// and WithStore are proptest's and should not be overridden). A
// pipeline.WithTestHooks here replaces the hooks proptest uses for
// Cancel crashes: those crashes then only restart the pipeline.
func WithPipelineOptions(opts ...pipeline.Option) Option {
	return optionFunc(func(c *config) error {
		c.pipeOpts = append(c.pipeOpts, opts...)
		return nil
	})
}

// WithEvent sets how an event is filled in before it is delivered: fill
// gets the event with its identity and partition key set and the event
// number n, and may set its type, subject, data and other attributes. It
// must be deterministic in n (every copy of an event must be equal) and
// must not change Source, ID or PartitionKey. Default: type
// "proptest.event", data {"n":<n>}.
func WithEvent(fill func(ev *onceflow.Event, n int)) Option {
	return optionFunc(func(c *config) error {
		if fill == nil {
			return fmt.Errorf("proptest: WithEvent(nil)")
		}
		c.fill = fill
		return nil
	})
}

// WithMaxShrinks bounds the shrinking of a failing stream (default 200 smaller
// failing streams found).
func WithMaxShrinks(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 0 {
			return fmt.Errorf("proptest: WithMaxShrinks(%d): must not be negative", n)
		}
		c.maxShrink = n
		return nil
	})
}
