//go:build unix

package testutil

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time this process has used, user and system: on a
// shared machine it measures the work a benchmark does, whatever else runs.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
