package dedup_test

import (
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/pipeline"
)

// Both stores satisfy the interface the pipeline consumes; dedup itself
// does not import pipeline.
var _ pipeline.Store = (*dedup.Store)(nil)
