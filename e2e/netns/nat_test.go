package netns

import (
	"strings"
	"testing"
	"time"
)

// TestNetnsNAT runs two members, each behind its own home router that
// masquerades onto a shared "internet" where the relay is. Neither can
// open a connection to the other's private address; they form a group
// through the relay and chat both ways, and nothing may be lost. Whether
// the two then punch a direct path through their NATs is logged, not
// asserted: go-libp2p v0.52.0 only punches from addresses it deems public
// (manet.IsPublicAddr), and this test's "internet" is a private range
// (privateNet), so here the members are expected to stay relayed, as two
// homes behind a carrier's NAT would. TestNetnsHolePunch runs the same
// homes on an internet libp2p deems public, and asserts the punch.
func TestNetnsNAT(t *testing.T) {
	requireNetns(t)
	requireNft(t)
	requireP2P(t)
	t.Parallel()
	hn := newHomeNATs(t, privateNet, false)
	ana, ben := hn.nodes[0], hn.nodes[1]
	formGroup(t, ana, ben)
	joined := time.Now()
	texts := chatBothWays(t, "after the join", ana, ben, 3)
	waitSameHistory(t, hn.nodes, texts)
	hn.checkNatted()

	reportPunch(t, ana, ben, joined)

	// Whatever path they ended on, the chat goes on over it.
	texts = append(texts, chatBothWays(t, "after the punch window", ben, ana, 1)...)
	waitSameHistory(t, hn.nodes, texts)
}

// homeNATs is the network of the NAT tests: an "internet" bridge with a
// relay and two home routers on it, and behind each router, on a private
// network of its own, one member: ana behind rt-ana, ben behind rt-ben.
type homeNATs struct {
	tp        *topo
	relay     *relay
	nodes     []*node  // ana, ben, started with the relay
	routers   []string // their routers' namespaces
	wans      []string // their routers' WAN addresses
	relayAddr string
}

// internet is the addressing of the NAT tests' internet: the relay's and
// the two routers' addresses on it, and the length of its prefix; and,
// for a range the host itself must not use, the range.
type internet struct{ relay, ana, ben, mask, keep string }

// privateNet is a private range (10.99.0.0/24, so that no packet could
// ever mean a real host). libp2p punches no holes from it.
var privateNet = internet{"10.99.0.1", "10.99.0.11", "10.99.0.12", "/24", ""}

// newHomeNATs builds the network on inet and starts the relay and both
// members. Each router forwards between its legs and
// masquerades what leaves through the WAN; with firewall it also drops
// what comes in through the WAN unless it answers a connection from
// inside, as a home router's stateful firewall does (without one, a Linux
// router answers an unsolicited TCP connection to itself with a reset).
func newHomeNATs(t *testing.T, inet internet, firewall bool) *homeNATs {
	t.Helper()

	tp := newTopo(t)
	if inet.keep != "" {
		tp.hostHasNone(inet.keep)
	}
	for _, br := range []string{"inet", "lan1", "lan2"} {
		tp.bridge(br)
	}
	r := tp.netns("relay")
	tp.attach(r, "eth0", "inet", "p-relay", inet.relay+inet.mask)
	tp.forwarding(r, false)

	hn := &homeNATs{tp: tp}
	homes := []struct{ name, wan, lan, gw, member string }{
		{"ana", inet.ana, "lan1", "192.168.1.1", "192.168.1.10/24"},
		{"ben", inet.ben, "lan2", "192.168.2.1", "192.168.2.10/24"},
	}
	for _, h := range homes {
		rt := tp.netns("rt-" + h.name)
		tp.attach(rt, "wan0", "inet", "p-wan-"+h.name, h.wan+inet.mask)
		tp.attach(rt, "lan0", h.lan, "p-gw-"+h.name, h.gw+"/24")
		tp.forwarding(rt, true)
		tp.masquerade(rt, "wan0")
		if firewall {
			tp.firewall(rt, "wan0")
		}
		m := tp.netns(h.name)
		tp.attach(m, "eth0", h.lan, "p-"+h.name, h.member)
		tp.defaultRoute(m, h.gw)
		hn.nodes = append(hn.nodes, newNode(t, h.name, m))
		hn.routers = append(hn.routers, rt)
		hn.wans = append(hn.wans, h.wan)
	}
	// The internet knows no private network: a member's packets reach the
	// other's router only as the router's own traffic, through its NAT.
	tp.unreachable(hn.routers[0], "192.168.2.10")
	tp.unreachable(hn.routers[1], "192.168.1.10")

	hn.relay, hn.relayAddr = startRelay(t, r)
	for _, n := range hn.nodes {
		n.start(p2pServe(hn.relayAddr)...)
	}
	return hn
}

// checkNatted fails the test unless both routers have masqueraded the
// members' connections (to the relay, at least): else the test would not
// be about NAT.
func (hn *homeNATs) checkNatted() {
	hn.tp.t.Helper()
	for i, rt := range hn.routers {
		n := hn.tp.natted(rt)
		if n == 0 {
			hn.tp.t.Errorf("router of %s masqueraded no connection", hn.nodes[i].name)
		}
		hn.tp.t.Logf("connections the router of %s masqueraded: %d", hn.nodes[i].name, n)
	}
}

// reportPunch polls, for up to 30 seconds, how a and b reach each other,
// and logs whether and when (after joined) both say direct: a hole punched
// through both NATs. Every change of path is logged on the way.
func reportPunch(t *testing.T, a, b *node, joined time.Time) {
	t.Helper()
	direct, seen := watchDirect(t, a, b, joined, 30*time.Second)
	switch {
	case direct:
		t.Logf("hole punch: both members reach each other directly, %v after the join", time.Since(joined).Round(time.Millisecond))
	default:
		var paths []string
		for name, path := range seen {
			paths = append(paths, name+": "+path)
		}
		t.Logf("hole punch: no direct path within 30s of polling (%s); the members stay relayed", strings.Join(paths, ", "))
	}
}

// watchDirect polls, for up to d, how a and b reach each other, logging
// every change of path with the time since since, until both say direct.
// It says whether they did, and the path each saw last, by name.
func watchDirect(t *testing.T, a, b *node, since time.Time, d time.Duration) (bool, map[string]string) {
	t.Helper()
	seen := map[string]string{}
	direct := pollUntil(d, func() bool {
		all := true
		for _, pair := range [][2]*node{{a, b}, {b, a}} {
			path := memberPath(pair[0], pair[1].pub)
			if seen[pair[0].name] != path {
				t.Logf("%s: path to %s is %q, %v on", pair[0].name, pair[1].name, path, time.Since(since).Round(time.Millisecond))
				seen[pair[0].name] = path
			}
			all = all && path == "direct"
		}
		return all
	})
	return direct, seen
}
