//go:build !unix

package testutil

import "time"

// CPUTime is unknown here (0); benchmarks then report no CPU figures.
func CPUTime() time.Duration { return 0 }
