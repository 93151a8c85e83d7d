package netns

import (
	"fmt"
	"testing"
	"time"
)

// TestNetnsStrandedMember is issue 16's scenario on six machines of one
// LAN, over the HTTP transport: a founding member (ana) is cut off (her
// cable pulled) while three newcomers join, then the other two founders go
// away for good (kill -9), one at a time, the group committing meanwhile.
// ana, cut off, sends a message, which waits in her outbox. When her cable
// is back, every member she knew is gone and every member there is one she
// never heard of: she must check the chain of membership from what she
// knew, catch up from the newcomers, and her message must commit exactly
// once, in one order everywhere. (cmd/demes TestStrandedMemberProcesses is
// the same on loopback, with ana's process stopped instead.)
func TestNetnsStrandedMember(t *testing.T) {
	requireNetns(t)
	t.Parallel()
	tp := newTopo(t)
	tp.bridge("br0")
	names := []string{"ana", "ben", "cai", "dan", "eve", "fay"}
	var nodes []*node
	ports := map[*node]string{}
	for i, name := range names {
		ns := tp.netns(name)
		ip := fmt.Sprintf("10.78.1.%d", 10+i)
		port := "p-" + name
		tp.attach(ns, "eth0", "br0", port, ip+"/24")
		n := newNode(t, name, ns)
		n.start("--listen", "0.0.0.0:7946", "--advertise", "http://"+ip+":7946", "--ui", "127.0.0.1:7947")
		nodes = append(nodes, n)
		ports[n] = port
	}
	ana, ben, cai, dan, eve, fay := nodes[0], nodes[1], nodes[2], nodes[3], nodes[4], nodes[5]
	formGroup(t, ana, ben, cai)
	// ben will invite the newcomers while ana, the creator, is away.
	ana.must(0, "admin", "add", ben.pub)
	send(t, ana, "founded")
	waitVoters(t, nodes[:3], 3)

	t.Logf("cutting ana off the LAN")
	tp.setPort(ports[ana], false)
	for _, n := range []*node{dan, eve, fay} {
		code := ben.must(0, "invite", n.pub).lastLine()
		n.must(0, "join", code)
	}
	// The other founders go away for good, one at a time, each once the
	// voters without the gone ones are a quorum in dan's view.
	survives := func(gone ...*node) func() bool {
		out := map[string]bool{}
		for _, n := range gone {
			out[n.pub] = true
		}
		return func() bool {
			all, left := 0, 0
			for _, m := range dan.members() {
				if v, _ := m["voter"].(bool); v {
					all++
					if id, _ := m["public_id"].(string); !out[id] {
						left++
					}
				}
			}
			return all > 0 && left >= all/2+1
		}
	}
	waitFor(t, waitLong, "voters that survive ana and ben going", survives(ana, ben))
	ben.kill()
	send(t, dan, "ben went away")
	waitFor(t, waitLong, "voters that survive cai going too", survives(ana, ben, cai))
	cai.kill()
	send(t, eve, "only newcomers now")
	// Cut off, ana cannot commit: her message waits in her outbox.
	ana.must(3, "send", "ana, cut off", "--timeout", "2s")

	back := time.Now()
	tp.setPort(ports[ana], true)
	// The newcomers cannot read what was sent before they joined; ana
	// lists "founded" before the rest.
	texts := []string{"ben went away", "only newcomers now", "ana, cut off"}
	waitSameHistory(t, []*node{dan, eve, fay}, texts)
	waitFor(t, waitLong, "ana to hold the same history, after what she read before", func() bool {
		mine, theirs := ana.committed(), dan.committed()
		return len(mine) == len(theirs)+1 && mine[0].Text == "founded" && historyLine(mine[1:]) == historyLine(theirs)
	})
	t.Logf("ana was back in step, her queued message committed once, %v after her cable was back", time.Since(back).Round(time.Millisecond))
	send(t, ana, "in step")
	waitSameHistory(t, []*node{dan, eve, fay}, append(texts, "in step"))
}
