package netns

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// waitVerdict bounds the wait for AutoNAT's verdict. Each peer that serves
// AutoNAT v2 dials a host back at most once every two minutes, a verdict
// takes two more answers one way than the other, and a host that asked
// while it had no such peer backs off (5 s, doubling); a member behind a
// router has two servers here (the relay and the public member) once it
// has joined.
const waitVerdict = 5 * time.Minute

// TestNetnsReachability runs TestNetnsHolePunch's two homes (masquerade and
// a home router's stateful firewall, on an internet libp2p deems public)
// with a third member, pub, on the internet itself, with no router and no
// relay. Each node's libp2p AutoNAT v2 asks its connected peers to dial
// its public addresses back: pub's listen address; for ana and ben the
// address their router's NAT gives them, which peers observe. `demes
// status --json` must come to say that pub is reachable from the internet
// (public, with its address confirmed) and that ana and ben are not
// (private, their router's address unreachable) but are reachable through
// the relay they hold a slot on; the text status says so in words. How
// long each verdict took after its node started is logged.
func TestNetnsReachability(t *testing.T) {
	requireNetns(t)
	requireNft(t)
	requireP2P(t)
	t.Parallel()
	hn := newHomeNATs(t, publicNet, true)
	ana, ben := hn.nodes[0], hn.nodes[1]
	pubNS := hn.tp.netns("pub")
	hn.tp.attach(pubNS, "eth0", "inet", "p-pub", "192.0.0.66/26")
	hn.tp.forwarding(pubNS, false)
	pub := newNode(t, "pub", pubNS)
	pub.start("--p2p", "0.0.0.0:7948", "--listen", "0.0.0.0:7946", "--ui", "127.0.0.1:7947")

	// Until it has peers that dial back, no node knows.
	for _, n := range []*node{pub, ana, ben} {
		if r := n.reachability(); r.State == "" {
			t.Fatalf("%s: status --json has no reachability, though the node runs libp2p", n.name)
		}
	}

	// pub hosts, so ana and ben connect to it directly (it is public):
	// it serves AutoNAT for them, and they for it.
	formGroup(t, pub, ana, ben)
	texts := chatBothWays(t, "reach", ana, pub, 1)
	waitSameHistory(t, []*node{pub, ana, ben}, texts)

	relayID := hn.relayAddr[strings.LastIndex(hn.relayAddr, "/p2p/")+len("/p2p/"):]
	waitReach(t, pub, "public", func(r reachDoc) bool {
		return anyHas(r.Reachable, "/ip4/192.0.0.66/")
	})
	for i, n := range []*node{ana, ben} {
		wan := "/ip4/" + hn.wans[i] + "/"
		waitReach(t, n, "private", func(r reachDoc) bool {
			return anyHas(r.Unreachable, wan) && !anyHas(r.Reachable, "/") && anyHas(r.Relays, "/p2p/"+relayID)
		})
	}

	// In words.
	checkReachText(t, pub, `(?m)^reachable from the internet: yes, at /ip4/192\.0\.0\.66/`)
	checkReachText(t, ana, `(?m)^reachable from the internet: no \(through relay /ip4/192\.0\.0\.65/tcp/4001/p2p/`+relayID+`\)$`)

	// How long AutoNAT took, from each node's log ("after" is since its
	// libp2p host started).
	for _, n := range []*node{pub, ana, ben} {
		for _, l := range n.logLines("AutoNAT:") {
			t.Logf("%s: %s", n.name, l)
		}
	}
}

// reachDoc is the reachability of `demes status --json`.
type reachDoc struct {
	State       string    `json:"state"`
	Reachable   []string  `json:"reachable"`
	Unreachable []string  `json:"unreachable"`
	Unknown     []string  `json:"unknown"`
	Relays      []string  `json:"relays"`
	Since       time.Time `json:"since"`
}

// reachability is the node's reachability from `demes status --json`, the
// zero value when there is none.
func (n *node) reachability() reachDoc {
	n.t.Helper()
	r := n.must(0, "status", "--json")
	var doc struct {
		Reachability *reachDoc `json:"reachability"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		n.t.Fatalf("%s: status --json: %v\n%s", n.name, err, r.stdout)
	}
	if doc.Reachability == nil {
		return reachDoc{}
	}
	return *doc.Reachability
}

// waitReach waits until n's status says state and ok holds for its
// reachability, logging every change on the way and how long the wait
// took.
func waitReach(t *testing.T, n *node, state string, ok func(reachDoc) bool) {
	t.Helper()
	start := time.Now()
	var last reachDoc
	seen := ""
	done := pollUntil(waitVerdict, func() bool {
		last = n.reachability()
		line := last.State + " reachable=" + strings.Join(last.Reachable, ",") + " unreachable=" + strings.Join(last.Unreachable, ",") +
			" unknown=" + strings.Join(last.Unknown, ",") + " relays=" + strings.Join(last.Relays, ",")
		if line != seen {
			t.Logf("%s: %s (%v into the wait)", n.name, line, time.Since(start).Round(time.Millisecond))
			seen = line
		}
		return last.State == state && ok(last)
	})
	if !done {
		t.Fatalf("%s: reachability not %q after %v; last %+v", n.name, state, waitVerdict, last)
	}
	t.Logf("%s: %s after %v of waiting", n.name, state, time.Since(start).Round(time.Millisecond))
}

// checkReachText fails the test unless n's text status matches re.
func checkReachText(t *testing.T, n *node, re string) {
	t.Helper()
	out := n.must(0, "status").stdout
	if !regexp.MustCompile(re).MatchString(out) {
		t.Errorf("%s: status does not match %s:\n%s", n.name, re, out)
	}
}

// anyHas says whether one of addrs contains s.
func anyHas(addrs []string, s string) bool {
	for _, a := range addrs {
		if strings.Contains(a, s) {
			return true
		}
	}
	return false
}
