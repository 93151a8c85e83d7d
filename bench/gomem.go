package bench

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// GoMemory is what a node's Go runtime says of its memory, from its
// Prometheus metrics (docs/METRICS.md): the part of the resident memory
// that is Go's, as opposed to mapped files.
type GoMemory struct {
	// InUse is the heap in spans with objects in them
	// (go_memstats_heap_inuse_bytes): live objects, and the garbage not
	// collected yet.
	InUse int64
	// Kept is heap memory free of objects but not returned to the
	// system (heap idle minus released): the room the collector keeps at
	// GOGC=400 to run less often.
	Kept int64
	// Stacks is the goroutines' stacks (go_memstats_stack_inuse_bytes).
	Stacks int64
}

// heapOf reads the Go memory figures of the node whose metrics listener is
// at addr; zero if addr is empty or it does not answer.
func heapOf(ctx context.Context, addr string) GoMemory {
	var m GoMemory
	if addr == "" {
		return m
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return m
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	var idle, released int64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.InUse = int64(f)
		case "go_memstats_heap_idle_bytes":
			idle = int64(f)
		case "go_memstats_heap_released_bytes":
			released = int64(f)
		case "go_memstats_stack_inuse_bytes":
			m.Stacks = int64(f)
		}
	}
	m.Kept = idle - released
	return m
}
