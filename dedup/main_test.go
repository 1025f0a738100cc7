package dedup_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaks a goroutine: ristretto starts two per
// cache, which Close must stop.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
