package netns

import (
	"os"
	"strings"
	"testing"
	"time"
)

// publicNet is the internet of the hole punching tests. go-libp2p v0.52.0
// punches holes only from addresses manet.IsPublicAddr deems public: not
// the private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, link local)
// nor those it lists as unroutable (among them the documentation and
// benchmarking ranges and 192.0.0.0/26), so TestNetnsNAT's 10.99.0.0/24
// stays relayed. 192.0.0.64/26 is public to libp2p, yet no real host has
// such an address: it lies in 192.0.0.0/24, which IANA keeps for IETF
// protocol assignments and marks not globally reachable, and none of that
// block's assignments (192.0.0.0/29, .8, .9, .10, .170, .171) is in it.
//
// And no packet can leave: these addresses exist only on veths inside the
// test's own namespaces; every bridge lives in the test's switch
// namespace, which has no link to the host's network; the relay and the
// routers have no default route, so they reach only their own networks
// (and the members' default route ends at their router); and before it
// gives any machine an address, the test checks that the host's own
// namespace has no address or route in the range (hostHasNone), and stops
// if it has.
var publicNet = internet{"192.0.0.65", "192.0.0.75", "192.0.0.76", "/26", "192.0.0.64/26"}

// TestNetnsHolePunch runs TestNetnsNAT's two members behind home routers
// (masquerade and a stateful firewall, which drops what nobody inside
// asked for) on an internet libp2p deems public. Ben joins through the
// relay, the only way to reach ana; the relayed connection makes ana's
// node start a hole punch (DCUtR), both members dial each other's public
// address at once, each router takes the other's packets for the answer to
// its own member's, and a direct connection replaces the relayed one. The
// test waits until both say so, logs how long that took after the join
// began and how long the punch itself took, and has them chat over the
// direct path: nothing lost, one order.
func TestNetnsHolePunch(t *testing.T) {
	requireNetns(t)
	requireNft(t)
	requireP2P(t)
	t.Parallel()
	hn := newHomeNATs(t, publicNet, true)
	hn.punchAndChat("hole punch", "direct")
}

// punchAndChat has ben join ana's group through the relay, waits until both
// say direct, logs how long that took (what names the punch) and the
// punches the nodes logged, and has them chat over the direct path: every
// message once, one order, both routers' NAT used, and still direct after.
func (hn *homeNATs) punchAndChat(what, tag string) {
	t := hn.tp.t
	t.Helper()
	ana, ben := hn.nodes[0], hn.nodes[1]
	began := time.Now()
	formGroup(t, ana, ben)
	took := waitDirect(t, ana, ben, began)
	t.Logf("%s: direct both ways %v after the join began", what, took.Round(time.Millisecond))
	hn.logPunches()

	texts := chatBothWays(t, tag, ana, ben, 3)
	waitSameHistory(t, hn.nodes, texts)
	hn.checkNatted()
	for _, pair := range [][2]*node{{ana, ben}, {ben, ana}} {
		if path := memberPath(pair[0], pair[1].pub); path != "direct" {
			t.Errorf("%s: the path to %s is %q after the chat, want direct", pair[0].name, pair[1].name, path)
		}
	}
}

// TestNetnsHolePunchLater starts as TestNetnsHolePunch, but at first each
// router drops what passes between its home and the other's (both still
// reach the relay), so the first punches fail: the members join and chat
// through the relay, and say they are relayed. Then the path heals, and a
// later punch (p2p's keepPunching: libp2p itself tries only when the
// relayed connection opens) gives them a direct connection; the chat goes
// on over it, with nothing lost and one order.
func TestNetnsHolePunchLater(t *testing.T) {
	requireNetns(t)
	requireNft(t)
	requireP2P(t)
	t.Parallel()
	hn := newHomeNATs(t, publicNet, true)
	ana, ben := hn.nodes[0], hn.nodes[1]
	hn.tp.cut(hn.routers[0], hn.wans[1])
	hn.tp.cut(hn.routers[1], hn.wans[0])

	formGroup(t, ana, ben)
	texts := chatBothWays(t, "relayed", ana, ben, 3)
	waitSameHistory(t, hn.nodes, texts)
	waitPath(t, ana, ben, "relayed")
	waitPath(t, ben, ana, "relayed")
	// Healed between two tries: a try that spans the heal may reach
	// libp2p's third attempt, which swaps its roles for peers older than
	// go-libp2p v0.41, so that both ends act as TLS clients on a TCP
	// connection that did open through both NATs; it fails, and the port
	// pair it leaves in TIME-WAIT (and in the routers' connection
	// tracking) fails the punches of the next minute or two. ana's node
	// logs the end of each of p2p's tries, which it starts only once
	// libp2p's own first try is over, and waits at least 10s before the
	// next.
	waitFor(t, waitLong, "ana's node to log a failed retry of the hole punch", func() bool {
		return len(ana.logLines("hole punch retry failed")) > 0
	})
	for _, n := range hn.nodes {
		if lines := n.logLines("hole punched"); len(lines) > 0 {
			t.Fatalf("%s punched a hole while the path was cut: %s", n.name, lines[0])
		}
	}

	healed := time.Now()
	for _, rt := range hn.routers {
		hn.tp.heal(rt)
	}
	took := waitDirect(t, ana, ben, healed)
	t.Logf("hole punch: direct both ways %v after the path healed", took.Round(time.Millisecond))
	hn.logPunches()

	texts = append(texts, chatBothWays(t, "direct", ben, ana, 3)...)
	waitSameHistory(t, hn.nodes, texts)
}

// waitDirect waits until a and b both say they reach each other directly
// and returns how long after since that was; it logs every change of path
// on the way, and fails the test after waitLong.
func waitDirect(t *testing.T, a, b *node, since time.Time) time.Duration {
	t.Helper()
	if direct, seen := watchDirect(t, a, b, since, waitLong); !direct {
		t.Fatalf("no direct path both ways after %v: %s reaches %s %q, %s reaches %s %q", waitLong,
			a.name, b.name, seen[a.name], b.name, a.name, seen[b.name])
	}
	return time.Since(since)
}

// logPunches logs the hole punches the members' nodes logged, each with
// how long the punch itself took ("took", in milliseconds), and fails the
// test if neither logged a successful one: a direct path that no punch
// made would mean the routers let the members in unasked.
func (hn *homeNATs) logPunches() {
	hn.tp.t.Helper()
	punched := 0
	for _, n := range hn.nodes {
		for _, l := range n.logLines("hole punch") {
			hn.tp.t.Logf("%s: %s", n.name, l)
		}
		punched += len(n.logLines("hole punched"))
	}
	if punched == 0 {
		hn.tp.t.Errorf("direct, yet neither node logged a successful hole punch")
	}
}

// logLines returns the lines of the process's log that contain s.
func (p *proc) logLines(s string) []string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// TestNetnsHolePunchQUIC is TestNetnsHolePunch over UDP: each router drops
// all TCP between the two homes, so that only a hole punched over UDP
// (QUIC) can give the members a direct path. They are given the relay's
// address as it prints it (TCP and QUIC); a node that listens on QUIC holds
// its slot over QUIC (p2p connectRelayQUIC), and so learns from the relay
// the UDP address its router's NAT gives it, which the punch starts from.
// Most home routers keep a UDP mapping for any peer (endpoint-independent
// mapping), which is why punching over UDP works more often in real life
// than the simultaneous TCP open.
func TestNetnsHolePunchQUIC(t *testing.T) {
	requireNetns(t)
	requireNft(t)
	requireP2P(t)
	t.Parallel()
	hn := newHomeNATs(t, publicNet, true)
	hn.tp.cutTCP(hn.routers[0], hn.wans[1])
	hn.tp.cutTCP(hn.routers[1], hn.wans[0])
	hn.punchAndChat("hole punch over QUIC", "direct over QUIC")
}
