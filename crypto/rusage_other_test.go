//go:build !unix

package crypto

import "time"

// cpuTime is unknown here; the benchmark then reports no CPU figures.
func cpuTime() time.Duration { return 0 }
