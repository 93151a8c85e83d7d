//go:build !unix

package transcript_test

import "time"

// cpuTime is unknown here; the benchmark then reports no CPU figures.
func cpuTime() time.Duration { return 0 }
