package main

import (
	"runtime/debug"
	"testing"
)

func TestTuneGCLeavesTheUsersChoice(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	debug.SetGCPercent(50)
	debug.SetMemoryLimit(1 << 30)
	env := map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}
	if p, l := tuneGC(func(k string) string { return env[k] }); p != 0 || l != 0 {
		t.Errorf("with GOGC and GOMEMLIMIT set, tuneGC set %d%% and %d bytes", p, l)
	}
	if got := debug.SetGCPercent(50); got != 50 {
		t.Errorf("GC percent = %d, want the user's 50", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("memory limit = %d, want the user's 1 GiB", got)
	}

	if p, l := tuneGC(func(string) string { return "" }); p != nodeGCPercent || l != nodeMemoryLimit {
		t.Errorf("without GOGC and GOMEMLIMIT, tuneGC set %d%% and %d bytes", p, l)
	}
	if got := debug.SetGCPercent(100); got != nodeGCPercent {
		t.Errorf("GC percent = %d, want %d", got, nodeGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != nodeMemoryLimit {
		t.Errorf("memory limit = %d, want %d", got, nodeMemoryLimit)
	}
}

// TestMemoryLimitFollowsTheLiveHeap: the limit is nodeMemoryLimit for a
// small live heap, and twice the live heap once that is more, so that a
// node whose live heap nears the limit is not collected without end.
func TestMemoryLimitFollowsTheLiveHeap(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int64
	}{
		{0, nodeMemoryLimit},
		{20 << 20, nodeMemoryLimit},
		{nodeMemoryLimit / 2, nodeMemoryLimit},
		{nodeMemoryLimit, 2 * nodeMemoryLimit},
		{1 << 30, 2 << 30},
		{^uint64(0), 1 << 62},
	} {
		if got := memoryLimitFor(c.live); got != c.want {
			t.Errorf("live heap %d: limit %d, want %d", c.live, got, c.want)
		}
	}
}
