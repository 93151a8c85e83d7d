package node_test

import (
	"flag"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// node, peer queue, ping and simulated delivery must stop when its test ends.
//
// The cluster tests spend their time waiting on timers (elections, pings,
// placement intervals, retries), not computing, and each has its own
// simulated network: they run all at once (t.Parallel) rather than
// GOMAXPROCS at a time, unless -test.parallel says otherwise.
//
// Their stores go to memory (/dev/shm) when TMPDIR is not set: the tests
// crash nodes inside the process, so what reaches the files is what the
// node wrote whether or not it was synced, and on a shared disk the syncs
// were much of the tests' waiting.
func TestMain(m *testing.M) {
	if os.Getenv("TMPDIR") == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			os.Setenv("TMPDIR", "/dev/shm")
		}
	}
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", "32"); err != nil {
			panic(err)
		}
	}
	goleak.VerifyTestMain(m)
}
