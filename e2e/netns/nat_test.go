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
// asserted: it depends on the transport's hole punching, which needs the
// nodes to learn their public addresses first. go-libp2p v0.52.0 only
// punches from addresses it deems public (manet.IsPublicAddr), and this
// test's "internet" is a private range (10.99.0.0/24, so that no packet
// could ever mean a real host), so here the members are expected to stay
// relayed.
func TestNetnsNAT(t *testing.T) {
	requireNetns(t)
	requireNft(t)
	requireP2P(t)
	t.Parallel()
	tp := newTopo(t)
	for _, br := range []string{"inet", "lan1", "lan2"} {
		tp.bridge(br)
	}
	r := tp.netns("relay")
	tp.attach(r, "eth0", "inet", "p-relay", "10.99.0.1/24")
	tp.forwarding(r, false)

	// A home router per member: its WAN leg on the internet, its LAN leg
	// on the member's private network, forwarding between them and
	// masquerading what leaves through the WAN.
	homes := []struct{ name, wan, lan, gw, member string }{
		{"ana", "10.99.0.11/24", "lan1", "192.168.1.1", "192.168.1.10/24"},
		{"ben", "10.99.0.12/24", "lan2", "192.168.2.1", "192.168.2.10/24"},
	}
	var nodes []*node
	for _, h := range homes {
		rt := tp.netns("rt-" + h.name)
		tp.attach(rt, "wan0", "inet", "p-wan-"+h.name, h.wan)
		tp.attach(rt, "lan0", h.lan, "p-gw-"+h.name, h.gw+"/24")
		tp.forwarding(rt, true)
		tp.masquerade(rt, "wan0")
		m := tp.netns(h.name)
		tp.attach(m, "eth0", h.lan, "p-"+h.name, h.member)
		tp.defaultRoute(m, h.gw)
		nodes = append(nodes, newNode(t, h.name, m))
	}
	// The internet knows no private network: a member's packets reach the
	// other's router only as the router's own traffic, through its NAT.
	tp.unreachable(tp.prefix+"-rt-ana", "192.168.2.10")
	tp.unreachable(tp.prefix+"-rt-ben", "192.168.1.10")

	_, relayAddr := startRelay(t, r)
	ana, ben := nodes[0], nodes[1]
	ana.start(p2pServe(relayAddr)...)
	ben.start(p2pServe(relayAddr)...)

	formGroup(t, ana, ben)
	joined := time.Now()
	texts := chatBothWays(t, "after the join", ana, ben, 3)
	waitSameHistory(t, nodes, texts)

	// Both routers must have masqueraded the members' connections (to the
	// relay, at least), or the test would not be about NAT.
	for _, h := range homes {
		rt := tp.prefix + "-rt-" + h.name
		n := tp.natted(rt)
		if n == 0 {
			t.Errorf("router of %s masqueraded no connection", h.name)
		}
		t.Logf("connections the router of %s masqueraded: %d", h.name, n)
	}

	reportPunch(t, ana, ben, joined)

	// Whatever path they ended on, the chat goes on over it.
	texts = append(texts, chatBothWays(t, "after the punch window", ben, ana, 1)...)
	waitSameHistory(t, nodes, texts)
}

// reportPunch polls, for up to 30 seconds, how a and b reach each other,
// and logs whether and when (after joined) both say direct: a hole punched
// through both NATs. Every change of path is logged on the way.
func reportPunch(t *testing.T, a, b *node, joined time.Time) {
	t.Helper()
	seen := map[string]string{}
	direct := pollUntil(30*time.Second, func() bool {
		all := true
		for _, pair := range [][2]*node{{a, b}, {b, a}} {
			path := memberPath(pair[0], pair[1].pub)
			if seen[pair[0].name] != path {
				t.Logf("%s: path to %s is %q, %v after the join", pair[0].name, pair[1].name, path, time.Since(joined).Round(time.Millisecond))
				seen[pair[0].name] = path
			}
			all = all && path == "direct"
		}
		return all
	})
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
