package netns

import (
	"fmt"
	"testing"
	"time"
)

// TestNetnsHTTPBridge runs three members, each on its own machine on one
// LAN, over the HTTP transport: they form a group and chat; then the
// host's cable is pulled, the other two go on committing while the host's
// own message waits in its outbox, and once the cable is back the host
// catches up and its message commits once, in the same order everywhere.
func TestNetnsHTTPBridge(t *testing.T) {
	requireNetns(t)
	t.Parallel()
	tp := newTopo(t)
	tp.bridge("br0")
	nodes, ports := lanNodes(t, tp, "10.77.1", func(ip string) []string {
		return []string{"--listen", "0.0.0.0:7946", "--advertise", "http://" + ip + ":7946", "--ui", "127.0.0.1:7947"}
	})
	texts := chatOnLAN(t, nodes)
	cutHost(t, tp, nodes, ports, texts)
}

// TestNetnsP2PLAN is TestNetnsHTTPBridge over libp2p, with a relay on the
// LAN as well: the members reach each other's own addresses, so they
// should talk directly, not through the relay (checkLANPaths);
// and a host whose cable is pulled is replaced and catches up as over HTTP.
func TestNetnsP2PLAN(t *testing.T) {
	requireNetns(t)
	requireP2P(t)
	t.Parallel()
	tp := newTopo(t)
	tp.bridge("br0")
	r := tp.netns("relay")
	tp.attach(r, "eth0", "br0", "p-relay", "10.66.1.1/24")
	_, relayAddr := startRelay(t, r)
	nodes, ports := lanNodes(t, tp, "10.66.1", func(string) []string { return p2pServe(relayAddr) })
	texts := chatOnLAN(t, nodes)
	checkLANPaths(t, nodes)
	cutHost(t, tp, nodes, ports, texts)
}

// checkLANPaths waits up to 30 seconds for every member to reach every
// other directly: on one LAN no pair may stay relayed. (In about half the
// runs one pair first met through the relay; before p2p's preferDirect it
// stayed relayed, since hole punching needs public addresses.)
func checkLANPaths(t *testing.T, nodes []*node) {
	t.Helper()
	start := time.Now()
	paths := map[[2]*node]string{}
	allDirect := pollUntil(30*time.Second, func() bool {
		all := true
		for _, n := range nodes {
			for _, other := range nodes {
				if n != other {
					paths[[2]*node{n, other}] = memberPath(n, other.pub)
					all = all && paths[[2]*node{n, other}] == "direct"
				}
			}
		}
		return all
	})
	if allDirect {
		t.Logf("every pair of members talks directly (%v after asking)", time.Since(start).Round(time.Millisecond))
		return
	}
	for _, n := range nodes {
		for _, other := range nodes {
			if path := paths[[2]*node{n, other}]; n != other && path != "direct" {
				t.Errorf("not direct after 30s, though every member can reach the others' own addresses: %s reaches %s %q; %s's peer URL there: %v",
					n.name, other.name, path, other.name, memberField(n, other.pub, "peer_url"))
			}
		}
	}
}

// lanNodes starts three members, ana, ben and cai, on bridge br0 with the
// addresses net.10 to net.12, each serving with the flags serve gives for
// its address. It returns them with their bridge-side ports.
func lanNodes(t *testing.T, tp *topo, net string, serve func(ip string) []string) ([]*node, map[*node]string) {
	t.Helper()
	var nodes []*node
	ports := map[*node]string{}
	for i, name := range []string{"ana", "ben", "cai"} {
		ns := tp.netns(name)
		ip := fmt.Sprintf("%s.%d", net, 10+i)
		port := "p-" + name
		tp.attach(ns, "eth0", "br0", port, ip+"/24")
		n := newNode(t, name, ns)
		n.start(serve(ip)...)
		nodes = append(nodes, n)
		ports[n] = port
	}
	return nodes, ports
}

// chatOnLAN has the first node make a group the others join, waits until
// all are voters, and has each send a message; it returns the texts once
// every node holds them in the same order.
func chatOnLAN(t *testing.T, nodes []*node) []string {
	t.Helper()
	formGroup(t, nodes[0], nodes[1:]...)
	waitVoters(t, nodes, len(nodes))
	var texts []string
	for _, n := range nodes {
		text := "hello from " + n.name
		send(t, n, text)
		texts = append(texts, text)
	}
	waitSameHistory(t, nodes, texts)
	return texts
}

// cutHost pulls the host's cable: the others must go on committing, the
// host's own message must wait in its outbox (exit 3), and once the cable
// is back every node must hold every message once, in one order.
func cutHost(t *testing.T, tp *topo, nodes []*node, ports map[*node]string, texts []string) {
	t.Helper()
	// The host is who every node names; wait until they agree on one, so
	// that the cut below is the host's and not a member's.
	host := waitOneHost(t, nodes)
	var others []*node
	for _, n := range nodes {
		if n != host {
			others = append(others, n)
		}
	}

	t.Logf("cutting the host %s off the LAN", host.name)
	cut := time.Now()
	tp.setPort(ports[host], false)
	for _, n := range others {
		text := "while " + host.name + " is away, from " + n.name
		send(t, n, text)
		texts = append(texts, text)
	}
	t.Logf("the others committed their messages %v after the cut", time.Since(cut).Round(time.Millisecond))
	waitSameHistory(t, others, texts)
	// Cut off, the old host cannot commit: its message stays in its outbox
	// (exit 3) and must commit exactly once after the cable is back.
	lonely := "sent by " + host.name + " while cut off"
	host.must(3, "send", lonely, "--timeout", "2s")
	texts = append(texts, lonely)

	healed := time.Now()
	tp.setPort(ports[host], true)
	waitSameHistory(t, nodes, texts)
	t.Logf("%s caught up, and its queued message committed, %v after the cable was back", host.name, time.Since(healed).Round(time.Millisecond))
}
