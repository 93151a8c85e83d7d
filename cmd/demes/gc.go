package main

import (
	"runtime/debug"
)

const (
	// nodeGCPercent is the garbage collector's target for a running node:
	// the heap may grow to five times what is live before a collection.
	// A node's live heap is small (a few MiB for a group), so at Go's
	// default of 100 it collects every few milliseconds under load, and
	// the collector took about a tenth of its CPU; at 400 a five-node
	// group commits about 12% more messages per CPU second (docs/
	// BENCHMARKS.md, "Garbage collection").
	nodeGCPercent = 400
	// nodeMemoryLimit bounds what that costs: near it the collector runs
	// as often as it must to stay under it. It is well above what a node
	// keeps live (tens of MiB with a long history), since a live heap over
	// the limit would keep the collector running.
	nodeMemoryLimit = 1 << 30
)

// tuneGC sets the collector for a running node, unless the user chose
// otherwise with GOGC or GOMEMLIMIT (read with getenv), which the Go runtime
// has applied already. It returns the percent and limit it set, 0 for each
// left alone.
func tuneGC(getenv func(string) string) (percent int, limit int64) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(nodeGCPercent)
		percent = nodeGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(nodeMemoryLimit)
		limit = nodeMemoryLimit
	}
	return percent, limit
}
