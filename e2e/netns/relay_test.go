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
// ways; both end with every message, in the same order. Then one loses its
// cable for a while, and its node dies and restarts; what was sent
// meanwhile commits once, through the relay, when it is back.
func TestNetnsRelay(t *testing.T) {
	requireNetns(t)
	requireP2P(t)
	t.Parallel()
	tp, rel, ana, ben, texts := relayedPair(t)
	nodes := []*node{ana, ben}
	// Each sees the other only through the relay, and should say so.
	waitPath(t, ana, ben, "relayed")
	waitPath(t, ben, ana, "relayed")

	// Ben's cable is pulled: with two voters neither can commit, so both
	// messages wait in the outboxes (exit 3). Once the cable is back both
	// commit once; a cut this short may leave the connections open, the
	// restart below does not.
	tp.setPort("p-ben", false)
	for _, n := range nodes {
		text := n.name + " while ben is offline"
		n.must(3, "send", text, "--timeout", "2s")
		texts = append(texts, text)
	}
	back := time.Now()
	tp.setPort("p-ben", true)
	waitSameHistory(t, nodes, texts)
	t.Logf("ben back through the relay, and both queued messages committed, %v after the cable was back", time.Since(back).Round(time.Millisecond))

	// Ben's node dies and starts again: its connections are gone, so it
	// must take a new slot on the relay, and ana must reach it through
	// the new circuit, before ana's queued message can commit.
	ben.kill()
	text := "ana while ben's node is down"
	ana.must(3, "send", text, "--timeout", "2s")
	texts = append(texts, text)
	restarted := time.Now()
	ben.start(p2pServe(rel.addr)...)
	waitSameHistory(t, nodes, texts)
	t.Logf("ben's restarted node caught up through the relay %v after its start", time.Since(restarted).Round(time.Millisecond))
}

// TestNetnsRelayRestart is TestNetnsRelay's start, then the relay dies and
// starts again: every circuit through it is gone, and both members must
// take new slots on it before they hear each other again.
func TestNetnsRelayRestart(t *testing.T) {
	requireNetns(t)
	requireP2P(t)
	t.Parallel()
	_, rel, ana, ben, texts := relayedPair(t)
	nodes := []*node{ana, ben}
	relayAddr := rel.addr
	// While the relay is down each one's message waits in its outbox.
	rel.kill()
	for _, n := range nodes {
		text := n.name + " while the relay is down"
		n.must(3, "send", text, "--timeout", "2s")
		texts = append(texts, text)
	}
	relayBack := time.Now()
	if again := rel.start(); again != relayAddr {
		t.Fatalf("the restarted relay prints %q, not the address the members hold, %q", again, relayAddr)
	}
	waitSameHistory(t, nodes, texts)
	t.Logf("both queued messages committed %v after the relay restarted", time.Since(relayBack).Round(time.Millisecond))
}

// relayedPair builds TestNetnsRelay's networks, starts the relay and the
// two members, ana and ben, and has them form a group and chat through the
// relay; it returns them with the texts they sent.
func relayedPair(t *testing.T) (*topo, *relay, *node, *node, []string) {
	t.Helper()
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

	rel, _ := startRelay(t, r)
	ana, ben := newNode(t, "ana", a), newNode(t, "ben", b)
	ana.start(p2pServe(rel.addr)...)
	ben.start(p2pServe(rel.addr)...)

	formGroup(t, ana, ben)
	texts := chatBothWays(t, "via the relay", ana, ben, 3)
	waitSameHistory(t, []*node{ana, ben}, texts)
	// Both vote before the tests cut them apart, so that neither commits
	// alone: a joiner whose first pings failed (before its circuit was
	// up) is promoted only once one is answered (CI once found ana still
	// the only voter, her message committed with the relay down).
	waitVoters(t, []*node{ana, ben}, 2)
	return tp, rel, ana, ben, texts
}
