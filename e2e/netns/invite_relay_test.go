package netns

import (
	"strings"
	"testing"
	"time"
)

// TestNetnsJoinThroughInviteRelay: ana and carl form a group on one
// network; ben is on another with no route to it, and a relay has a leg in
// each. Nobody runs with --relay: ana lists the relay in the group's
// settings, and invites ben. Ben's node knows of no relay but the one the
// invite carries: it holds a slot on it for its join, joins with its
// circuit address, and then chats both ways with both of them, each of
// whom reaches it only through the relay; all end with the same history.
// (It passes without the invite's relays too: the inviter's URL in the code
// names its circuit through the relay, and ben takes a slot as soon as it
// has applied the settings; nodetest.TestJoinThroughInviteRelays checks
// what the invite's relays add, the circuit in the join itself.)
func TestNetnsJoinThroughInviteRelay(t *testing.T) {
	requireNetns(t)
	requireP2P(t)
	t.Parallel()
	tp := newTopo(t)
	tp.bridge("br1")
	tp.bridge("br2")
	r := tp.netns("relay")
	tp.attach(r, "eth1", "br1", "p-relay1", "10.89.1.1/24")
	tp.attach(r, "eth2", "br2", "p-relay2", "10.89.2.1/24")
	tp.forwarding(r, false)
	a, c, b := tp.netns("ana"), tp.netns("carl"), tp.netns("ben")
	tp.attach(a, "eth0", "br1", "p-ana", "10.89.1.10/24")
	tp.attach(c, "eth0", "br1", "p-carl", "10.89.1.11/24")
	tp.attach(b, "eth0", "br2", "p-ben", "10.89.2.10/24")
	tp.unreachable(a, "10.89.2.10")
	tp.unreachable(c, "10.89.2.10")
	tp.unreachable(b, "10.89.1.10")
	tp.unreachable(b, "10.89.1.11")

	rel, _ := startRelay(t, r)
	serve := []string{"--p2p", "0.0.0.0:7948", "--listen", "0.0.0.0:7946", "--ui", "127.0.0.1:7947"}
	ana, carl, ben := newNode(t, "ana", a), newNode(t, "carl", c), newNode(t, "ben", b)
	for _, n := range []*node{ana, carl, ben} {
		n.start(serve...)
	}
	formGroup(t, ana, carl)
	ana.must(0, "group", "settings", "--relay", rel.addr)
	circuit := "/p2p-circuit"
	waitFor(t, waitLong, "ana's address to name its circuit through the group's relay", func() bool {
		url, _ := memberField(carl, ana.pub, "peer_url").(string)
		return strings.Contains(url, circuit)
	})

	code := ana.must(0, "invite", ben.pub).lastLine()
	start := time.Now()
	ben.must(0, "join", code)
	t.Logf("ben joined in %v", time.Since(start).Round(time.Millisecond))
	nodes := []*node{ana, carl, ben}
	waitVoters(t, nodes, 3)
	texts := chatBothWays(t, "joined through the invite's relay", carl, ben, 2)
	texts = append(texts, chatBothWays(t, "and with the inviter", ana, ben, 1)...)
	waitSameHistory(t, nodes, texts)
	waitPath(t, carl, ben, "relayed")
	waitPath(t, ben, ana, "relayed")
}
