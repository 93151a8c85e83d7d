package nodetest

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// SetUpTestMain prepares a test binary of cluster tests; call it first in
// TestMain. Cluster tests spend their time waiting on timers (elections,
// pings, placement intervals, retries), not computing, and each cluster has
// its own simulated network, so:
//
//   - tests marked t.Parallel run four per core rather than one, unless
//     -test.parallel is given;
//   - stores go to memory (/dev/shm, where there is one) unless TMPDIR is
//     set: the tests crash nodes inside the process, so what reaches the
//     files is what a node wrote whether or not it was synced, and on a
//     shared disk the syncs were much of the tests' waiting.
func SetUpTestMain() {
	if os.Getenv("TMPDIR") == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			os.Setenv("TMPDIR", "/dev/shm")
		}
	}
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if f := flag.Lookup("test.parallel"); f != nil && !set {
		_ = f.Value.Set(strconv.Itoa(parallelTests()))
	}
}

// parallelTests is how many cluster tests run at once. They mostly wait, so
// more than one per core can; but tests that time elections and placement
// must not starve, and `go test ./...` runs other packages beside them (the
// browser tests' Chromium among them). With 32 at once on two cores, beside
// the web package, seven tests failed in four runs of `go test ./node
// ./web` (each run one or two); with 8, none in five, in about the same
// time (51 to 66 s). Under the race detector each costs several times the
// CPU, so only two per core run.
func parallelTests() int {
	if raceEnabled {
		return 2 * runtime.GOMAXPROCS(0)
	}
	return 4 * runtime.GOMAXPROCS(0)
}

// ParallelTimed marks a test whose assertions depend on timers running about
// on time (placement from pings every 100 ms, no election while a host is
// busy) as parallel, except under the race detector: there the CPU it would
// share with the other tests delays pings and heartbeats past what such a
// test tolerates, so it runs on its own, before the parallel tests.
func ParallelTimed(t *testing.T) {
	if !raceEnabled {
		t.Parallel()
	}
}
