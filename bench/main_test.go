package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test or benchmark leaves a goroutine behind.
//
// One exception, by Watermill's design: the default repository of
// middleware.Deduplicator (NewMapExpiringKeyRepository) starts a cleanup
// goroutine on context.Background() that nothing can stop, one per
// Deduplicator middleware built. It is ignored by its exact function
// name; every other goroutine, Watermill's router and gochannel ones
// included, must be gone (they are, once Router.Close and GoChannel.Close
// have returned).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, watermillLeaks()...)
}

func watermillLeaks() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/ThreeDotsLabs/watermill/message/router/middleware.(*mapExpiringKeyRepository).cleanOutLoop"),
	}
}
