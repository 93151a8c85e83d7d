//go:build !unix

package bench

import "time"

// processCPU is not measured on this platform.
func processCPU() time.Duration { return 0 }

// procCPU is not measured on this platform.
func procCPU(pid int) time.Duration { return 0 }
