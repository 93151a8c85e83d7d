package main

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/internal/testutil"
)

// startRelay runs `demes relay` on loopback until the test ends and returns
// the address it prints for serve --relay.
func startRelay(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(demesBin, "relay", "--home", filepath.Join(t.TempDir(), "relay"), "--listen", "127.0.0.1:0", "--log-level", "warn")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			select {
			case line <- s.Text():
			default:
			}
		}
	}()
	select {
	case l := <-line:
		return l
	case <-time.After(60 * time.Second):
		t.Fatal("demes relay printed no address within 60 s")
	}
	return ""
}

// TestRealProcessesOverLibp2p runs a group whose members move to libp2p:
// alice and bob listen for libp2p peers and hold a slot on a relay, carol
// still only speaks HTTP. They form a group through the CLI, chat, lose
// their host to SIGKILL, and keep one order with nothing lost: a group can
// be mid-way through its move to libp2p.
func TestRealProcessesOverLibp2p(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	relay := startRelay(t)
	if !strings.Contains(relay, "/p2p/12D3Koo") {
		t.Fatalf("demes relay printed %q, want multiaddrs ending in /p2p/ID", relay)
	}
	procs := []*serveProc{newServeProc(t, "alice"), newServeProc(t, "bob"), newServeProc(t, "carol")}
	for _, p := range procs[:2] {
		p.extra = []string{"--p2p", "127.0.0.1:0", "--relay", relay, "--port-map=false"}
	}
	for _, p := range procs {
		p.start()
	}
	for _, p := range procs[:2] {
		u := p.status().PeerURL
		if !strings.HasPrefix(u, "p2p:") || !strings.Contains(u, "/p2p-circuit/p2p/") {
			t.Fatalf("%s advertises %q, want a p2p URL with a circuit address through the relay", p.name, u)
		}
	}
	formProcGroup(t, procs, "p2p")
	waitVoters(t, procs, 3)
	for _, p := range procs {
		wantExit(t, p.demes("send", "hello from "+p.name), 0)
	}
	// Alice reaches bob over libp2p, and says so.
	testutil.Eventually(t, 30*time.Second, "alice to show bob's libp2p path", func() bool {
		for _, m := range procs[0].status().Groups[0].Members {
			if m.Name == "bob" {
				return m.Path == "direct"
			}
		}
		return false
	})
	host := waitHostProc(t, procs)
	procs[host].kill()
	survivor := procs[(host+1)%3]
	wantExit(t, survivor.demes("send", "after the host died", "--timeout", "30s"), 0)
	procs[host].start()
	var ref string
	testutil.Eventually(t, 60*time.Second, "the same 4 messages on every node", func() bool { return sameMessages(procs, 4, &ref) })
	wantEachOnce(t, ref, "hello from alice", "hello from bob", "hello from carol", "after the host died")
}
