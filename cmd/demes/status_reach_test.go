package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/p2p"
)

// A node behind a home router: AutoNAT found its public address (the
// router's) unreachable, and peers reach it through its relay.
func Example_printStatusBehindRouter() {
	printStatus(os.Stdout, api.Status{
		PublicID: alice.String(), Name: "Alice", Running: true,
		Reachability: &api.Reachability{
			State:       api.ReachPrivate,
			Unreachable: []string{"/ip4/192.0.0.75/tcp/7948"},
			Unknown:     []string{"/ip4/192.0.0.75/udp/7948/quic-v1"},
			Relays:      []string{"/ip4/192.0.0.65/tcp/4001/p2p/12D3KooWRelay"},
		},
	})
	// Output:
	// node       Alice
	// public id  demes1dalxcaa6h89umm7t5zyc44r4x5dhemrmusgc8t34fxj70md8p72xrjw6l8znxt2p7ynu4zsv3uqrxn5tyhy7ze74dyww6zs7tjqm6dcpl05k2
	// groups     none yet (demes group create NAME, or demes join INVITE)
	// reachable from the internet: no (through relay /ip4/192.0.0.65/tcp/4001/p2p/12D3KooWRelay)
}

func TestReachText(t *testing.T) {
	relay := "/ip4/192.0.0.65/tcp/4001/p2p/12D3KooWRelay"
	for _, c := range []struct {
		name string
		r    api.Reachability
		want string
	}{
		{"public", api.Reachability{State: api.ReachPublic, Reachable: []string{"/ip4/192.0.0.66/tcp/7948"}, Unknown: []string{"/ip4/192.0.0.66/udp/7948/quic-v1"}},
			"yes, at /ip4/192.0.0.66/tcp/7948"},
		{"public, AutoNAT v1 alone", api.Reachability{State: api.ReachPublic}, "yes"},
		{"private through two relays", api.Reachability{State: api.ReachPrivate, Unreachable: []string{"/ip4/192.0.0.75/tcp/7948"}, Relays: []string{relay, "/ip4/192.0.0.67/tcp/4001/p2p/12D3KooWOther"}},
			"no (through relays " + relay + ", /ip4/192.0.0.67/tcp/4001/p2p/12D3KooWOther)"},
		{"private, no relay", api.Reachability{State: api.ReachPrivate, Unreachable: []string{"/ip4/192.0.0.75/tcp/7948"}},
			"no, and no relay holds a slot for it: members behind other routers cannot reach it (give it one with 'demes serve --relay ADDR')"},
		{"unknown on a LAN", api.Reachability{State: api.ReachUnknown},
			"not known yet (no public address of this node is known: peers on the internet tell it the address they see)"},
		{"unknown, being tested, relayed meanwhile", api.Reachability{State: api.ReachUnknown, Unknown: []string{"/ip4/192.0.0.75/tcp/7948"}, Relays: []string{relay}},
			"not known yet; meanwhile through relay " + relay},
		{"a newline in an address is indented, not a line of its own", api.Reachability{State: api.ReachPublic, Reachable: []string{"/dns4/x\nreachable from the internet: no"}},
			"yes, at /dns4/x\n reachable from the internet: no"},
	} {
		if got := reachText(c.r); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// The states p2p reports are the API's, word for word: serve passes them on
// unchanged.
func TestReachStatesMatch(t *testing.T) {
	for p, a := range map[string]string{p2p.ReachPublic: api.ReachPublic, p2p.ReachPrivate: api.ReachPrivate, p2p.ReachUnknown: api.ReachUnknown} {
		if p != a {
			t.Errorf("p2p state %q, api state %q", p, a)
		}
	}
}

// status --json keeps its fields: a node without libp2p has no
// "reachability" at all, one with libp2p has it beside the others.
func TestStatusJSONReachability(t *testing.T) {
	var plain strings.Builder
	if err := writeJSON(&plain, api.Status{PublicID: "demes1x", Groups: []api.GroupStatus{}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "reachability") {
		t.Errorf("a node without libp2p shows reachability:\n%s", plain.String())
	}
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var b strings.Builder
	if err := writeJSON(&b, api.Status{PublicID: "demes1x", Groups: []api.GroupStatus{},
		Reachability: &api.Reachability{State: api.ReachPrivate, Unreachable: []string{"/ip4/192.0.0.75/tcp/7948"}, Relays: []string{"/ip4/192.0.0.65/tcp/4001/p2p/R"}, Since: since}}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"public_id", "groups", "running", "peer_url"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("status --json lost %q:\n%s", k, b.String())
		}
	}
	r, _ := doc["reachability"].(map[string]any)
	if r["state"] != "private" || r["since"] != "2026-01-02T03:04:05Z" || len(r["relays"].([]any)) != 1 || len(r["unreachable"].([]any)) != 1 {
		t.Errorf("reachability in status --json: %v", r)
	}
}
