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
	var nodes []*node
	ports := map[*node]string{}
	for i, name := range []string{"ana", "ben", "cai"} {
		ns := tp.netns(name)
		ip := fmt.Sprintf("10.77.1.%d", 10+i)
		port := "p-" + name
		tp.attach(ns, "eth0", "br0", port, ip+"/24")
		n := newNode(t, name, ns)
		n.start("--listen", "0.0.0.0:7946", "--advertise", "http://"+ip+":7946", "--ui", "127.0.0.1:7947")
		nodes = append(nodes, n)
		ports[n] = port
	}

	formGroup(t, nodes[0], nodes[1:]...)
	waitVoters(t, nodes, 3)
	var texts []string
	for _, n := range nodes {
		text := "hello from " + n.name
		send(t, n, text)
		texts = append(texts, text)
	}
	waitSameHistory(t, nodes, texts)

	// The host is who every node names; wait until they agree on one, so
	// that the cut below is the host's and not a member's.
	var host *node
	waitFor(t, waitLong, "one host that every node names", func() bool {
		host = nil
		named := ""
		for i, n := range nodes {
			st := n.status()
			if len(st.Groups) != 1 || st.Groups[0].Host == "" || (i > 0 && st.Groups[0].Host != named) {
				return false
			}
			named = st.Groups[0].Host
		}
		for _, n := range nodes {
			if n.pub == named {
				host = n
			}
		}
		return host != nil
	})
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
	t.Logf("the other two committed both messages %v after the cut", time.Since(cut).Round(time.Millisecond))
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
