package netns

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/internal/testutil"
)

const (
	// waitLong bounds a wait for the nodes to agree: elections, joins and
	// catch-up take seconds, more on two loaded cores while other packages'
	// tests run with -race.
	waitLong = 90 * time.Second
	// cliTimeout bounds one CLI command, so that a hung node fails the test
	// with its logs instead of hanging the package until go test's timeout.
	cliTimeout = 2 * time.Minute
	// pollEvery is how often a wait asks the nodes again: each question is
	// a process start, too costly for testutil's 10 ms.
	pollEvery = 250 * time.Millisecond
)

var (
	// demesBin is the demes binary TestMain built for the tests.
	demesBin string
	// ipBin and nftBin are the paths of iproute2's ip and of nft, empty
	// where the machine lacks them.
	ipBin, nftBin string
	// skipReason says why every test here skips; empty when they can run.
	skipReason string
	// hasP2P is whether the built demes has the libp2p transport (serve
	// --p2p and the relay command).
	hasP2P bool
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run builds demes once for every test, but only where the tests can run:
// a build costs half a minute that a skipping run should not pay.
func run(m *testing.M) int {
	if os.Getenv(stunEnv) != "" {
		// A STUN server the port mapping test started in a namespace.
		fmt.Fprintln(os.Stderr, "netns: STUN server:", serveSTUN())
		return 1
	}
	ipBin, nftBin = lookTool("ip"), lookTool("nft")
	switch {
	case os.Geteuid() != 0:
		skipReason = "network namespaces need root"
	case ipBin == "":
		skipReason = "iproute2's ip is not installed"
	}
	if skipReason != "" {
		return m.Run()
	}
	sweepStale()
	dir, err := os.MkdirTemp("", "demes-netns-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "netns:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	demesBin = filepath.Join(dir, "demes")
	// Without -race: the processes are the subject of these tests, not
	// their data races, and a race build runs several times slower.
	build := exec.Command("go", "build", "-o", demesBin, "github.com/demes/demes/cmd/demes")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "netns: building demes:", err)
		return 1
	}
	hasP2P = detectP2P()
	return m.Run()
}

// lookTool finds a system tool on PATH, or in the sbin directories a
// non-login root shell may leave off PATH; it returns "" when there is none.
func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// detectP2P asks the built demes whether it has the libp2p transport: the
// relay and NAT tests need serve's --p2p and --relay flags and the relay
// command, which older builds lack.
func detectP2P() bool {
	serve, _ := exec.Command(demesBin, "help", "serve").CombinedOutput()
	relay, err := exec.Command(demesBin, "help", "relay").CombinedOutput()
	return err == nil && strings.Contains(string(serve), "-p2p") &&
		strings.Contains(string(serve), "-relay") && !strings.Contains(string(relay), "unknown command")
}

// requireNetns skips t where namespaces cannot be made, and in -short runs:
// each test starts several processes and takes tens of seconds. The tests
// run in parallel once past it: each has namespaces of its own, and most of
// their time is waiting.
func requireNetns(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if testing.Short() {
		t.Skip("starts real processes in network namespaces; not in -short")
	}
}

// requireP2P skips t on a build without the libp2p transport.
func requireP2P(t *testing.T) {
	t.Helper()
	if !hasP2P {
		t.Skip("this build has no libp2p transport yet (demes serve has no --p2p, or there is no demes relay)")
	}
}

// requireNft skips t where nft is missing: the NAT routers masquerade with it.
func requireNft(t *testing.T) {
	t.Helper()
	if nftBin == "" {
		t.Skip("nft is not installed (apt-get install -y nftables): the NAT routers need it")
	}
}

// waitFor polls cond until it holds and fails t once d passes first.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := testutil.Poll(ctx, pollEvery, what, cond); err != nil {
		t.Fatalf("after %v: %v", d, err)
	}
}
