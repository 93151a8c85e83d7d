package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestAddressChangeWhileRunning: a member's address changes while its node
// runs (a libp2p host gains or loses a relay slot, or its machine changes
// networks), and its old address goes dead at once. Told its new URL
// (SetURL), the node commits and announces it: every member's state shows
// the new address, and messages sent to and from it afterwards commit and
// reach everyone. First a follower moves, then the host.
func TestAddressChangeWhileRunning(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 173, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	c.send(0, "before any move", 10*time.Second)
	host := c.waitHost(-1)
	follower := (host + 1) % c.Size()
	want := 1
	for k, i := range []int{follower, host} {
		url := fmt.Sprintf("sim://node%d-moved%d", i, k)
		if err := c.Move(i, url); err != nil {
			t.Fatal(err)
		}
		if got := c.Node(i).Status().PeerURL; got != url {
			t.Fatalf("node%d's status after the move shows peer URL %q, want %q", i, got, url)
		}
		me := c.Member(i).ID.Public().String()
		c.Eventually(t, 30*time.Second, fmt.Sprintf("node%d's new address in every member's state", i), func() bool {
			for j := range c.Size() {
				g, ok := c.Status(j)
				if !ok {
					return false
				}
				found := false
				for _, m := range g.Members {
					found = found || m.PublicID == me && m.PeerURL == url
				}
				if !found {
					return false
				}
			}
			return true
		})
		// What the moved member sends and what it must receive, both
		// committed by every member: it is reached at its new address.
		other := (i + 1) % c.Size()
		from := fmt.Sprintf("from node%d after move %d", i, k)
		to := fmt.Sprintf("to node%d after move %d", i, k)
		c.send(i, from, 10*time.Second)
		c.send(other, to, 10*time.Second)
		want += 2
		ms := c.converged(want)
		for _, text := range []string{from, to} {
			if n := strings.Count(texts(ms), text); n != 1 {
				t.Fatalf("%q committed %d times, want once: %s", text, n, texts(ms))
			}
		}
	}
}

// TestServiceKeepsURLAcrossRestart: the service keeps the URL SetURL gave it
// for the node's next start (the demo's stop and start buttons), and its
// status shows it while the node is stopped too. An empty URL changes
// nothing.
func TestServiceKeepsURLAcrossRestart(t *testing.T) {
	t.Parallel()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s, err := node.NewService(node.Config{Dir: t.TempDir(), Identity: id, Name: "moving", URL: "http://old.example:7000", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const url = "http://new.example:7000"
	s.SetURL(url)
	s.SetURL("")
	if got := s.Node().URL(); got != url {
		t.Errorf("running node's URL after SetURL: %q, want %q", got, url)
	}
	if err := s.StopNode(); err != nil {
		t.Fatal(err)
	}
	if got := s.Status().PeerURL; got != url {
		t.Errorf("stopped node's status shows peer URL %q, want %q", got, url)
	}
	if err := s.StartNode(); err != nil {
		t.Fatal(err)
	}
	if got := s.Status().PeerURL; got != url {
		t.Errorf("restarted node's status shows peer URL %q, want %q", got, url)
	}
}
