package node

import (
	"reflect"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// TestOwnOpened: the author's node takes its own committed message from
// what sealing gave only when the committed bytes and key are exactly those
// it sealed, and then gets what opening them gives; anything else (another
// sealing of the message, another key of the same name, another author, a
// message no longer queued) is left to crypto.OpenMessage.
func TestOwnOpened(t *testing.T) {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	gid := crypto.NewGroupID()
	n := &Node{id: id}
	n.self = id.Public()
	g := &group{n: n, id: gid, outbox: map[[16]byte]*pending{}}
	key := crypto.NewSenderKey(gid, n.self.Sign, 1)
	seal := func(p *pending) *state.Chat {
		m := &crypto.Message{Group: gid, ID: p.id, Time: time.Now().UnixNano(), Body: []byte(p.text)}
		sealed, opened, err := crypto.SealOwn(id, m, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.own = newOwnSealed(key, sealed, opened)
		return &state.Chat{ID: p.id, Sender: n.self.Sign, Sealed: sealed, Epoch: key.Epoch, KeyID: key.ID}
	}
	p := &pending{id: crypto.NewMessageID(), text: "hello"}
	g.outbox[p.id] = p
	c := seal(p)

	got := g.ownOpened(c, key)
	want, err := crypto.OpenMessage(key, gid, c.Sealed, c.Sender, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("own message: got %+v, want what opening gives, %+v", got, want)
	}

	first := *c
	seal(p) // sealed again (a new epoch, a restart): the first bytes commit
	if g.ownOpened(&first, key) != nil {
		t.Error("took the opened form of another sealing of the message")
	}
	c = seal(p)
	forged := key.Clone()
	forged.Key[0] ^= 1 // same name, other key
	if g.ownOpened(c, forged) != nil {
		t.Error("took the opened form for another key of the same name")
	}
	other := *c
	other.Sender[0] ^= 1
	if g.ownOpened(&other, key) != nil {
		t.Error("took the opened form of a message of another author")
	}
	delete(g.outbox, p.id)
	if g.ownOpened(c, key) != nil {
		t.Error("took the opened form of a message no longer queued")
	}
}
