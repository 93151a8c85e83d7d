package main

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
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
	// nodeMemoryLimit bounds what that costs (issue 16: under 100 MB
	// resident at 1,000,000 messages): near it the collector runs as often
	// as it must to stay under it. A node of a few groups keeps 5 to 25
	// MiB live, so the limit changes nothing for it until its heap is
	// about to grow past 64 MiB. A live heap close to the limit would keep
	// the collector running, so the limit follows the live heap
	// (followLiveHeap): never under twice it, the room GOGC=100 leaves.
	nodeMemoryLimit = 64 << 20
	// liveHeapEvery is how often followLiveHeap looks at the live heap.
	liveHeapEvery = time.Second
)

// tuneGC sets the collector for a running node, unless the user chose
// otherwise with GOGC or GOMEMLIMIT (read with getenv), which the Go runtime
// has applied already. It returns the percent and limit it set, 0 for each
// left alone. When it sets the limit, a goroutine keeps it at least twice
// the live heap for as long as the process runs.
func tuneGC(getenv func(string) string) (percent int, limit int64) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(nodeGCPercent)
		percent = nodeGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(nodeMemoryLimit)
		limit = nodeMemoryLimit
		following.Do(func() { go followLiveHeap() })
	}
	return percent, limit
}

// following starts followLiveHeap once in a process.
var following sync.Once

// memoryLimitFor returns the memory limit for a live heap of live bytes:
// nodeMemoryLimit, or twice the live heap when that is more.
func memoryLimitFor(live uint64) int64 {
	return max(nodeMemoryLimit, 2*int64(min(live, 1<<61)))
}

// followLiveHeap sets the memory limit for the live heap the last
// collection found, every liveHeapEvery.
func followLiveHeap() {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := int64(nodeMemoryLimit)
	for range time.Tick(liveHeapEvery) {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // a runtime that does not say
		}
		if want := memoryLimitFor(sample[0].Value.Uint64()); want != set {
			debug.SetMemoryLimit(want)
			set = want
		}
	}
}
