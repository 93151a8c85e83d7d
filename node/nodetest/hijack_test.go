package nodetest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/p2p"
	"github.com/demes/demes/state"
)

// Attack: a malicious member gives as its own address a p2p URL that names
// another member's peer id, at addresses of its own choosing. Taken as its
// address, it poisons what the others' libp2p hosts know of the other
// member (they keep every address a URL lists for the peer it names, and
// dial them all, lowest port first and at most 8 at a time, whenever they
// connect to it again): ports that accept and never answer keep them from
// reaching that member for the dial timeout, 5 to 15 s, or longer. A member
// can only redirect traffic meant for itself: its announcement is refused,
// and its committed address entry is not used.
func TestAddressNamingAnotherPeerIsRefused(t *testing.T) {
	c, err := nodetest.New(nodetest.Options{Size: 3, Seed: 11, Dir: t.TempDir(), P2P: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Form(ctx, nodetest.FormOptions{}); err != nil {
		t.Fatal(err)
	}
	honest, victim, attacker := c.Member(0), c.Member(1), c.Member(2)
	pid, err := p2p.PeerID(victim.ID.Public().Sign)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing needs to listen there: the URL is refused for naming the
	// victim, whatever its addresses.
	foreign := "p2p:/ip4/127.0.0.1/tcp/20001/p2p/" + pid.String() + ",/ip4/127.0.0.1/tcp/20002/p2p/" + pid.String()

	// The address, committed: the state applies it (every build
	// agrees on the state), the honest member does not use it.
	peerURL := func() string {
		for _, g := range c.Node(0).Status().Groups {
			for _, m := range g.Members {
				if m.PublicID == attacker.ID.Public().String() {
					return m.PeerURL
				}
			}
		}
		return "?"
	}
	c.Node(2).SetURL(foreign)
	if err := c.Until(ctx, "the attacker's address entry committed at the honest member", func() bool {
		return peerURL() != attacker.URL
	}); err != nil {
		t.Fatal(err)
	}
	if u := peerURL(); strings.Contains(u, pid.String()) {
		t.Fatalf("the honest member takes %q, which names another member's peer id, as the attacker's address", u)
	}
	// The announcement, straight to the honest member over libp2p (last:
	// its counter, the clock's, is ahead of the attacker node's own, whose
	// frames the honest member then takes as replays for a while).
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	body, err := state.Encode(&state.AddressBody{URL: foreign})
	if err != nil {
		t.Fatal(err)
	}
	frame, err := crypto.Sign(attacker.ID, &crypto.Envelope{
		Type: crypto.TypeAddress, Group: gid, To: honest.ID.Public().Sign,
		Counter: uint64(time.Now().UnixNano()), Time: time.Now().UnixNano(), Payload: body,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = attacker.Host().Post(ctx, honest.URL, frame)
	var se *p2p.StatusError
	if !errors.As(err, &se) || se.Code != 403 {
		t.Fatalf("an address announcement naming another member's peer id: %v, want 403", err)
	}
	// The honest members still talk (the attacker, whose address the
	// honest member no longer has, is left out).
	c.Stop(2)
	if _, err := c.Send(ctx, 0, "still talking", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Until(ctx, "the message committed on the honest members", func() bool {
		_, ok := c.Converged(1)
		return ok
	}); err != nil {
		t.Fatal(err)
	}
}
