package nodetest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/p2p"
)

// TestGroupRelayFromSettings: once an admin lists a relay in the group's
// settings and the change commits, every member's libp2p host holds a slot
// on it, its URL names a circuit address through it, and a member whose
// node follows its host's URL (as demes serve does) commits that address
// for the others, and the invites it makes name it through the relay. A
// node started again holds the slot from the stored settings.
func TestGroupRelayFromSettings(t *testing.T) {
	seed := make([]byte, 32)
	seed[0] = 42
	relay, err := p2p.New(p2p.Config{Seed: seed, Listen: "127.0.0.1:0", MaxFrame: crypto.MaxFrame,
		RelayFor: func([32]byte) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	circuit := "/p2p/" + relay.ID().String() + "/p2p-circuit"

	c, err := nodetest.New(nodetest.Options{Size: 2, Seed: 11, Dir: t.TempDir(), P2P: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Form(ctx, nodetest.FormOptions{}); err != nil {
		t.Fatal(err)
	}
	m1 := c.Member(1)
	for i, m := range c.Members() {
		m.Host().OnAddrsChanged(func(url string) {
			if n := c.Node(i); n != nil {
				n.SetURL(url)
			}
		})
	}
	for _, m := range c.Members() {
		if strings.Contains(m.Host().URL(), circuit) {
			t.Fatalf("%s names the relay before the settings do: %s", m.Name, m.Host().URL())
		}
	}

	addr := strings.TrimPrefix(relay.URL(), p2p.Scheme)
	if err := c.Node(0).SetSettings(ctx, c.GroupID, node.GroupSettings{Relays: []string{addr}}); err != nil {
		t.Fatal(err)
	}
	slots := func() bool {
		for _, m := range c.Members() {
			if !m.Host().Reserved(relay.ID()) || !strings.Contains(m.Host().URL(), circuit) {
				return false
			}
		}
		return true
	}
	if err := c.Until(ctx, "every member to hold a slot on the group's relay", slots); err != nil {
		t.Fatal(err)
	}
	if err := c.Until(ctx, "node0 to know node1's circuit address", func() bool {
		g, ok := c.Status(0)
		if !ok {
			return false
		}
		for _, m := range g.Members {
			if m.PublicID == m1.ID.Public().String() {
				return strings.Contains(m.PeerURL, circuit)
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	// An invite names the inviter by its URL: through the relay too.
	if err := c.Until(ctx, "node0 to follow its host's URL", func() bool { return strings.Contains(c.Node(0).URL(), circuit) }); err != nil {
		t.Fatal(err)
	}
	guest, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	code, err := c.Node(0).Invite(ctx, c.GroupID, guest.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	inv, err := node.ParseInvite(code)
	if err != nil || !strings.Contains(inv.URLs[0], circuit) {
		t.Fatalf("the invite names the inviter at %q (%v), not through the relay", inv.URLs, err)
	}
	if g, ok := c.Status(1); !ok || len(g.Settings.Relays) != 1 || g.Settings.Relays[0] != addr {
		t.Fatalf("node1's status shows the relays %q, want [%s]", g.Settings.Relays, addr)
	}

	// Down, its host lets the relay go; started again, the node finds the
	// relay in its stored settings.
	c.Crash(1)
	m1.Host().SetGroupRelays(nil)
	if m1.Host().Reserved(relay.ID()) {
		t.Fatal("the host kept the slot")
	}
	if err := c.Start(1); err != nil {
		t.Fatal(err)
	}
	if err := c.Until(ctx, "node1 to hold the slot again after a restart", slots); err != nil {
		t.Fatal(err)
	}
}
