package nodetest

import (
	"flag"
	"os"
)

// SetUpTestMain prepares a test binary of cluster tests; call it first in
// TestMain. Cluster tests spend their time waiting on timers (elections,
// pings, placement intervals, retries), not computing, and each cluster has
// its own simulated network, so:
//
//   - tests marked t.Parallel run all at once rather than GOMAXPROCS at a
//     time, unless -test.parallel is given;
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
		_ = f.Value.Set("32")
	}
}
