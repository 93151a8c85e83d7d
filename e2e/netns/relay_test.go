package netns

import (
	"testing"
	"time"
)

// p2pServe are the flags of a member's `demes serve` over libp2p through
// the relay at relayAddr. The HTTP listener still runs, but across these
// networks nobody can reach it.
func p2pServe(relayAddr string) []string {
	return []string{"--p2p", "0.0.0.0:7948", "--relay", relayAddr, "--listen", "0.0.0.0:7946", "--ui", "127.0.0.1:7947"}
}

// TestNetnsRelay runs two members on two networks with no route between
// them and a relay with a leg in each: the members can reach each other
// only through the relay. They form a group over libp2p and chat both
// ways; both end with every message, in the same order.
func TestNetnsRelay(t *testing.T) {
	requireNetns(t)
	requireP2P(t)
	tp := newTopo(t)
	tp.bridge("br1")
	tp.bridge("br2")
	r := tp.netns("relay")
	tp.attach(r, "eth1", "br1", "p-relay1", "10.88.1.1/24")
	tp.attach(r, "eth2", "br2", "p-relay2", "10.88.2.1/24")
	// The relay is a relay, not a router: packets from one network must
	// not pass to the other on its own.
	tp.forwarding(r, false)
	a, b := tp.netns("ana"), tp.netns("ben")
	tp.attach(a, "eth0", "br1", "p-ana", "10.88.1.10/24")
	tp.attach(b, "eth0", "br2", "p-ben", "10.88.2.10/24")
	tp.unreachable(a, "10.88.2.10")
	tp.unreachable(b, "10.88.1.10")

	_, relayAddr := startRelay(t, r)
	ana, ben := newNode(t, "ana", a), newNode(t, "ben", b)
	ana.start(p2pServe(relayAddr)...)
	ben.start(p2pServe(relayAddr)...)

	formGroup(t, ana, ben)
	nodes := []*node{ana, ben}
	texts := chatBothWays(t, "via the relay", ana, ben, 3)
	waitSameHistory(t, nodes, texts)

	// Each sees the other only through the relay, and should say so.
	for _, pair := range [][2]*node{{ana, ben}, {ben, ana}} {
		n, other := pair[0], pair[1]
		var path string
		start := time.Now()
		ok := pollUntil(30*time.Second, func() bool {
			path = memberPath(n, other.pub)
			return path != ""
		})
		switch {
		case !ok:
			t.Errorf("%s: the path to %s is still unknown after 30s, want %q", n.name, other.name, "relayed")
		case path != "relayed":
			t.Errorf("%s: the path to %s is %q; they share no network, want %q", n.name, other.name, path, "relayed")
		default:
			t.Logf("%s reaches %s %s (known %v after the chat)", n.name, other.name, path, time.Since(start).Round(time.Millisecond))
		}
	}
}
