package node

import (
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/identity"
)

func testPrekey(t *testing.T, now time.Time) *prekey.Prekey {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := prekey.Generate(id, now.Add(-time.Minute), prekey.DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSendLinksConfirmOnlyWhenSure: a link is used only once the group
// registered a key whose every header carried its root; until then every
// header carries the same root again, so that whichever the member opens
// first teaches it the link.
func TestSendLinksConfirmOnlyWhenSure(t *testing.T) {
	now := time.Now()
	self, bob := testPrekey(t, now), testPrekey(t, now)
	pks := []*prekey.Prekey{self, bob}
	k1 := crypto.KeyRef{Epoch: 1, ID: [crypto.KeyIDSize]byte{1}}
	k2 := crypto.KeyRef{Epoch: 1, ID: [crypto.KeyIDSize]byte{2}}
	reg := map[crypto.KeyRef]bool{}
	registered := func(k crypto.KeyRef) bool { return reg[k] }
	var s sendLinks

	// k1's second header starts a link to bob (its first went linked to
	// an older link, say): k1's registration proves nothing of it.
	rs := s.recipients(self.Owner, pks, k1, false, registered, now)
	for _, r := range rs {
		if r.Link != nil {
			t.Fatal("a link before any was started")
		}
	}
	hdrLinks := []*prekey.SendLink{}
	for _, r := range rs {
		hdrLinks = append(hdrLinks, sendLinkFor(t, r.Prekey, k1))
	}
	s.started(self.Owner, hdrLinks, k1, false)
	reg[k1] = true
	rs = s.recipients(self.Owner, pks, k2, true, registered, now)
	bobs := rs[1]
	if bobs.Link == nil || bobs.Linked {
		t.Fatalf("the link started in a later header of a registered key: %+v, want its root carried again in full", bobs)
	}
	if rs[0].Link != nil {
		t.Fatal("a link to self was kept")
	}
	// k2's first header carried it: once k2 is registered, it is used.
	reg[k2] = true
	rs = s.recipients(self.Owner, pks, crypto.KeyRef{Epoch: 1, ID: [crypto.KeyIDSize]byte{3}}, true, registered, now)
	if !rs[1].Linked || rs[1].Link != bobs.Link {
		t.Fatalf("bob's link not used once a key that carried it in every header was registered: %+v", rs[1])
	}
	// A day later it is renewed: a full stanza starts a new one.
	rs = s.recipients(self.Owner, pks, crypto.KeyRef{Epoch: 1, ID: [crypto.KeyIDSize]byte{4}}, true, registered, now.Add(linkRenewAfter+time.Minute))
	if rs[1].Link != nil {
		t.Fatalf("a link used for %v was not renewed", linkRenewAfter)
	}
	// A prekey no longer among the members' is forgotten.
	s.started(self.Owner, []*prekey.SendLink{sendLinkFor(t, bob, k2)}, k2, true)
	s.recipients(self.Owner, pks[:1], k2, false, registered, now)
	if c, p := s.counts(); c+p != 0 {
		t.Fatalf("%d links kept to prekeys no longer in use", c+p)
	}
}

// sendLinkFor starts a link to p as a header of key would.
func sendLinkFor(t *testing.T, p *prekey.Prekey, key crypto.KeyRef) *prekey.SendLink {
	t.Helper()
	_, started, err := prekey.SealKeyLinked(prekey.KeyContext{Epoch: key.Epoch, KeyID: key.ID}, &[prekey.KeySize]byte{},
		[]prekey.Recipient{{Prekey: p}}, time.Now())
	if err != nil || len(started) != 1 {
		t.Fatal(err)
	}
	return started[0]
}
