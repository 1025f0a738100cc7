package retry

import "time"

// Clock tells the time. Budget reads it; Policy never does (its callers pass
// times in). Inject a fake one in tests, or run the test in a
// testing/synctest bubble, where System is fake too.
type Clock interface {
	Now() time.Time
}

// System returns the clock of the time package, time.Now.
func System() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
