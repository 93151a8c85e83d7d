package netns

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestNetnsAddressChange runs three members over libp2p on two LANs joined
// by a router, with a relay on the first: ana and cai on lan1, ben on
// lan2. They form a group and chat. Then cai's laptop moves to the other
// network, as when its owner walks from one Wi-Fi to another: its
// interface goes away with its address, it is cut off for a moment (what
// it sends then waits in its outbox), and it comes up on lan2 with another
// address. Its old connections are dead without being closed (the kernel
// sends nothing from an address the machine no longer has), and its old
// address answers nobody. The others chat while it is away, and all three
// as it comes back; the test asserts what a person relies on: every member
// ends with every message exactly once, in one order; cai's new address
// (and not the old) reaches every member's state; and, the router giving a
// direct path between the LANs, every pair talks directly again, without a
// restart. Then the host moves the same way, to whichever LAN it is not
// on, and the same must hold. How long each took is logged (p2p/moved.go
// is what makes it seconds rather than the better part of a minute).
func TestNetnsAddressChange(t *testing.T) {
	requireNetns(t)
	requireP2P(t)
	t.Parallel()
	w := newTwoLANs(t)
	nodes := []*node{w.ana, w.ben, w.cai}
	formGroup(t, w.ana, w.ben, w.cai)
	waitVoters(t, nodes, len(nodes))
	var texts []string
	for _, n := range nodes {
		text := "before any move, from " + n.name
		send(t, n, text)
		texts = append(texts, text)
	}
	waitSameHistory(t, nodes, texts)
	checkLANPaths(t, nodes)

	texts = w.move(w.cai, "10.44.2.42", texts)
	host := waitOneHost(t, nodes)
	ip := "10.44.1.43"
	if w.lan[host] == "lan1" {
		ip = "10.44.2.43"
	}
	w.move(host, ip, texts)
}

// twoLANs is TestNetnsAddressChange's network: bridges lan1 (10.44.1.0/24)
// and lan2 (10.44.2.0/24), a router with a leg in each (.1 on both), a
// relay on lan1 (10.44.1.2), and the three members, each with a default
// route through the router.
type twoLANs struct {
	tp            *topo
	ana, ben, cai *node
	relayAddr     string
	lan           map[*node]string // the LAN each member is on now
	ifname        map[*node]string // its interface there
	ip            map[*node]string // its address there
	moves         int              // how many moves so far, to name interfaces
}

// newTwoLANs builds the network and starts the relay and the members.
func newTwoLANs(t *testing.T) *twoLANs {
	t.Helper()
	tp := newTopo(t)
	tp.bridge("lan1")
	tp.bridge("lan2")
	rt := tp.netns("rt")
	tp.attach(rt, "eth1", "lan1", "p-rt1", "10.44.1.1/24")
	tp.attach(rt, "eth2", "lan2", "p-rt2", "10.44.2.1/24")
	tp.forwarding(rt, true)
	r := tp.netns("relay")
	tp.attach(r, "eth0", "lan1", "p-relay", "10.44.1.2/24")
	tp.defaultRoute(r, "10.44.1.1")
	tp.forwarding(r, false)

	w := &twoLANs{tp: tp, lan: map[*node]string{}, ifname: map[*node]string{}, ip: map[*node]string{}}
	_, w.relayAddr = startRelay(t, r)
	for _, m := range []struct {
		name, lan, ip string
		to            **node
	}{
		{"ana", "lan1", "10.44.1.10", &w.ana},
		{"ben", "lan2", "10.44.2.11", &w.ben},
		{"cai", "lan1", "10.44.1.12", &w.cai},
	} {
		ns := tp.netns(m.name)
		tp.attach(ns, "eth0", m.lan, "p-"+m.name, m.ip+"/24")
		tp.defaultRoute(ns, gateway(m.lan))
		n := newNode(t, m.name, ns)
		n.start(p2pServe(w.relayAddr)...)
		*m.to = n
		w.lan[n], w.ifname[n], w.ip[n] = m.lan, "eth0", m.ip
	}
	return w
}

// gateway is the router's address on lan.
func gateway(lan string) string {
	return "10.44." + strings.TrimPrefix(lan, "lan") + ".1"
}

// move takes n off its LAN and puts it on the other one with address ip,
// with messages from every member around the move, and checks that the
// group comes back in step: it returns texts with the messages it sent.
// It logs how long after n came up again each step took.
func (w *twoLANs) move(n *node, ip string, texts []string) []string {
	t := w.tp.t
	t.Helper()
	nodes := []*node{w.ana, w.ben, w.cai}
	var others []*node
	for _, o := range nodes {
		if o != n {
			others = append(others, o)
		}
	}
	to := "lan2"
	if w.lan[n] == "lan2" {
		to = "lan1"
	}
	w.moves++
	tag := fmt.Sprintf("move %d", w.moves)
	t.Logf("%s: %s leaves %s for %s, to come back as %s", tag, n.name, w.lan[n], to, ip)

	// The interface goes, and its address and routes with it: the
	// laptop's Wi-Fi is off. Its connections stay open on both ends;
	// nothing tells the others.
	w.tp.ip("-n", n.ns, "link", "del", w.ifname[n])
	// With no network at all, n's message cannot commit: it waits in
	// its outbox (exit 3) and must commit exactly once later.
	away := fmt.Sprintf("%s while moving (%s)", n.name, tag)
	n.must(3, "send", away, "--timeout", "2s")
	texts = append(texts, away)
	// The others go on without it (two of three are a majority; if n
	// was the host, one of them takes over first).
	for _, o := range others {
		text := fmt.Sprintf("%s while %s is away (%s)", o.name, n.name, tag)
		send(t, o, text)
		texts = append(texts, text)
	}

	// It comes up on the other LAN with another address, a new
	// interface, as a new network's DHCP lease would give it.
	ifname := fmt.Sprintf("eth%d", w.moves)
	w.tp.attach(n.ns, ifname, to, fmt.Sprintf("p-%s%d", n.name, w.moves), ip+"/24")
	w.tp.defaultRoute(n.ns, gateway(to))
	old := w.ip[n]
	w.lan[n], w.ifname[n], w.ip[n] = to, ifname, ip
	back := time.Now()

	// All three send while it settles: the others commit between
	// themselves (a majority), and n's must commit once it is back.
	for _, o := range others {
		text := fmt.Sprintf("%s just after the move (%s)", o.name, tag)
		send(t, o, text)
		texts = append(texts, text)
	}
	// n may not know yet that it can reach the others again: then its
	// send says so and leaves the message in its outbox (exit 3), which
	// must commit it exactly once as well.
	text := fmt.Sprintf("%s just after the move (%s)", n.name, tag)
	start := time.Now()
	r := n.demes("send", text, "--timeout", "90s")
	switch r.code {
	case 0:
		t.Logf("%s: %q committed in %v", n.name, text, time.Since(start).Round(time.Millisecond))
	case 3:
		t.Logf("%s: %q left in the outbox after %v", n.name, text, time.Since(start).Round(time.Millisecond))
	default:
		t.Fatalf("%s: want exit 0 or 3, got %v", n.name, r)
	}
	texts = append(texts, text)
	waitSameHistory(t, nodes, texts)
	t.Logf("%s: all three in step %v after %s came up on %s", tag, time.Since(back).Round(time.Millisecond), n.name, to)

	// Its new address, and not the old, is in every member's state: the
	// others can dial it, not only answer its calls, and do not try the
	// dead address first.
	waitFor(t, waitLong, n.name+"'s new address in every member's state", func() bool {
		for _, o := range others {
			u, _ := memberField(o, n.pub, "peer_url").(string)
			if !strings.Contains(u, "/ip4/"+ip+"/") || strings.Contains(u, "/ip4/"+old+"/") {
				return false
			}
		}
		return true
	})
	t.Logf("%s: %s's new address in every member's state %v after it came up", tag, n.name, time.Since(back).Round(time.Millisecond))
	checkLANPaths(t, nodes)
	t.Logf("%s: every pair direct %v after %s came up", tag, time.Since(back).Round(time.Millisecond), n.name)

	// And the chat goes on, to and from n, over the new path.
	for _, o := range append([]*node{n}, others...) {
		text := fmt.Sprintf("%s after the move (%s)", o.name, tag)
		send(t, o, text)
		texts = append(texts, text)
	}
	waitSameHistory(t, nodes, texts)
	return texts
}
