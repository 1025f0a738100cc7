package pipeline

// Crash points: the named moments at which Hooks.Crash is called, so that a
// crash test can kill the process exactly there.
const (
	// PointBeforeClaim: a shard worker is about to look the event's
	// identity up (before it claims it).
	PointBeforeClaim = "before-claim"
	// PointAfterHandler: the handler succeeded; nothing is committed.
	PointAfterHandler = "after-handler"
	// PointBeforeCommit: the committer is about to commit a group.
	PointBeforeCommit = "before-commit"
	// PointBeforeDeadLetterCommit: the group about to commit holds a dead
	// letter (or a redrive).
	PointBeforeDeadLetterCommit = "before-dead-letter-commit"
	// PointAfterCommit: a group committed; none of it is acknowledged.
	PointAfterCommit = "after-commit"
	// PointMidAck: the committer has acknowledged part of a group.
	PointMidAck = "mid-ack"
)

// Hooks are for testing onceflow's own guarantees; they break them on
// purpose. Crash, when set, is called at each crash point (a crash test
// exits the process there). The mutation switches make the pipeline wrong
// so that a test can show that its checks catch it:
//
//   - AckBeforeCommit acknowledges each group before committing it: a crash
//     between the two loses acknowledged events.
//   - SkipDedup never looks identities up: duplicates run the handler
//     again (the store still keeps the first outcome).
//
// Never set them in production.
type Hooks struct {
	Crash           func(point string)
	AckBeforeCommit bool
	SkipDedup       bool
}

// WithTestHooks installs h (see Hooks). For tests of onceflow itself and of
// the proptest package.
func WithTestHooks(h Hooks) Option {
	return optionFunc(func(c *config) error {
		c.hooks = h
		return nil
	})
}

func (p *Pipeline) crashPoint(point string) {
	if p.cfg.hooks.Crash != nil {
		p.cfg.hooks.Crash(point)
	}
}
