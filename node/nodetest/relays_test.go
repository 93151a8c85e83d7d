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
	"github.com/demes/demes/state"
)

// TestGroupRelayFromSettings: once an admin lists a relay in the group's
// settings and the change commits, every member's libp2p host holds a slot
// on it, its URL names a circuit address through it, and a member whose
// node follows its host's URL (as demes serve does) commits that address
// for the others, and the invites it makes name it through the relay. A
// node started again holds the slot from the stored settings.
func TestGroupRelayFromSettings(t *testing.T) {
	relay, circuit := startRelay(t, 42)

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

// TestJoinThroughInviteRelays: a group lists a relay in its settings; an
// invite made there carries it, and the invitee, which knew of no relay,
// holds a slot on it from the start of its join: the URL it joins with
// (in its join entry, what the members first reach it by) names its
// circuit address through the relay. It then chats both ways. Watched to
// fail without the invite's relays (the join entry named only the
// invitee's direct address).
func TestJoinThroughInviteRelays(t *testing.T) {
	relay, circuit := startRelay(t, 43)

	c, err := nodetest.New(nodetest.Options{Size: 2, Seed: 12, Dir: t.TempDir(), P2P: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// The invitee, in a cluster of its own: no member of the group.
	j, err := nodetest.New(nodetest.Options{Size: 1, Seed: 13, Dir: t.TempDir(), P2P: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	for _, cl := range []*nodetest.Cluster{c, j} {
		if err := cl.StartAll(); err != nil {
			t.Fatal(err)
		}
		// As demes serve does: the node's URL follows its host's.
		for i, m := range cl.Members() {
			m.Host().OnAddrsChanged(func(url string) {
				if n := cl.Node(i); n != nil {
					n.SetURL(url)
				}
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Form(ctx, nodetest.FormOptions{}); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(relay.URL(), p2p.Scheme)
	if err := c.Node(0).SetSettings(ctx, c.GroupID, node.GroupSettings{Relays: []string{addr}}); err != nil {
		t.Fatal(err)
	}
	joiner := j.Member(0)
	if joiner.Host().Reserved(relay.ID()) || strings.Contains(j.Node(0).URL(), circuit) {
		t.Fatalf("the invitee names the relay before it joins: %s", j.Node(0).URL())
	}
	code, err := c.Node(0).Invite(ctx, c.GroupID, joiner.ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	inv, err := node.ParseInvite(code)
	if err != nil || len(inv.Relays) != 1 || inv.Relays[0] != addr {
		t.Fatalf("the invite carries the relays %q (%v), want [%s]", inv.Relays, err, addr)
	}
	if _, err := j.Node(0).Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	j.GroupID = c.GroupID

	joinURL := ""
	es, err := c.Node(0).LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		env, err := crypto.Verify(e.Frame)
		if err != nil || env.Type != crypto.TypeJoin || env.Sender != joiner.ID.Public().Sign {
			continue
		}
		var b state.JoinBody
		if err := state.Decode(env.Payload, &b); err != nil {
			t.Fatal(err)
		}
		joinURL = b.URL
	}
	if !strings.Contains(joinURL, circuit) {
		t.Fatalf("the invitee joined with the URL %q, which names no circuit address through the invite's relay", joinURL)
	}

	if _, err := j.Send(ctx, 0, "hello through the invite's relay", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, 1, "welcome", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := j.Until(ctx, "the invitee to hold both messages", func() bool {
		ms, err := j.Committed(0)
		return err == nil && strings.Contains(nodetest.Texts(ms), "hello through the invite's relay") && strings.Contains(nodetest.Texts(ms), "welcome")
	}); err != nil {
		t.Fatal(err)
	}
	if !joiner.Host().Reserved(relay.ID()) {
		t.Error("the invitee let the relay go once it joined, although the group's settings list it")
	}
}

// startRelay starts a circuit relay for anyone on loopback, its key made
// from seed, and returns it with the part of a circuit address through it
// ("/p2p/ID/p2p-circuit").
func startRelay(t *testing.T, seed byte) (*p2p.Host, string) {
	t.Helper()
	key := make([]byte, 32)
	key[0] = seed
	relay, err := p2p.New(p2p.Config{Seed: key, Listen: "127.0.0.1:0", MaxFrame: crypto.MaxFrame,
		RelayFor: func([32]byte) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	return relay, "/p2p/" + relay.ID().String() + "/p2p-circuit"
}
