package node

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// offerFixture is a well-formed offer of a successor of group old, started
// by creator, to invitee: the payload of its TypeSuccessor envelope.
func offerFixture(t testing.TB, creator, invitee *identity.Identity, old crypto.GroupID) []byte {
	t.Helper()
	gen, err := state.Encode(&state.SuccessorGenesis{Name: "club", Creator: creator.Public().Bytes(), RaftID: state.RaftID(creator.Public().Sign),
		Nonce: bytes.Repeat([]byte{1}, 16), Continues: state.Continuation{Group: old[:], Index: 7, Head: bytes.Repeat([]byte{2}, 32), Without: invitee.Public().Bytes()}})
	if err != nil {
		t.Fatal(err)
	}
	sid := state.GroupIDOf(gen)
	genesis, err := crypto.Sign(creator, &crypto.Envelope{Type: crypto.TypeGenesis, Group: sid, Counter: 1, Time: time.Now().UnixNano(), Payload: gen})
	if err != nil {
		t.Fatal(err)
	}
	body, err := state.Encode(&inviteCode{GroupName: "club", Invitee: invitee.Public().Bytes(), Inviter: creator.Public().Bytes(),
		URLs: []string{"http://creator.invalid"}, Index: 2, Expires: time.Now().Add(time.Hour).UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	invite, err := crypto.Sign(creator, &crypto.Envelope{Type: crypto.TypeInvite, Group: sid, To: invitee.Public().Sign, Counter: 2, Time: time.Now().UnixNano(), Payload: body})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := state.Encode(&successorOffer{Genesis: genesis, Invite: invite})
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// FuzzParseOffer: an offer from a peer never panics its parser, and one it
// takes is the one encoding of what it holds: its genesis parses to the same
// successor again, and the payload encodes back to itself.
func FuzzParseOffer(f *testing.F) {
	creator, _ := identity.FromSeed(bytes.Repeat([]byte{0x71}, 32))
	invitee, _ := identity.FromSeed(bytes.Repeat([]byte{0x72}, 32))
	old := crypto.GroupID{9, 9, 9}
	f.Add(offerFixture(f, creator, invitee, old))
	f.Add([]byte{0x82, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, payload []byte) {
		env := &crypto.Envelope{Type: crypto.TypeSuccessor, Group: old, Sender: creator.Public().Sign, Payload: payload}
		o, err := parseOffer(old, invitee.Public(), env)
		if err != nil {
			return
		}
		var b successorOffer
		if err := state.Decode(payload, &b); err != nil {
			t.Fatalf("a taken offer does not decode: %v", err)
		}
		again, err := state.Encode(&b)
		if err != nil || !bytes.Equal(again, payload) {
			t.Fatalf("a taken offer is not in its one encoding")
		}
		s, err := parseSuccessor(o.succ.genesis)
		if err != nil || !reflect.DeepEqual(s, o.succ) {
			t.Fatalf("the genesis parses to %+v (%v), was %+v", s, err, o.succ)
		}
	})
}

// TestParseOffer: the fixture is taken; the same offer from another sender,
// in another group, or to another invitee is not.
func TestParseOffer(t *testing.T) {
	creator, _ := identity.FromSeed(bytes.Repeat([]byte{0x71}, 32))
	invitee, _ := identity.FromSeed(bytes.Repeat([]byte{0x72}, 32))
	other, _ := identity.FromSeed(bytes.Repeat([]byte{0x73}, 32))
	old := crypto.GroupID{9, 9, 9}
	payload := offerFixture(t, creator, invitee, old)
	env := func(sender *identity.Identity) *crypto.Envelope {
		return &crypto.Envelope{Type: crypto.TypeSuccessor, Group: old, Sender: sender.Public().Sign, Payload: payload}
	}
	if _, err := parseOffer(old, invitee.Public(), env(creator)); err != nil {
		t.Fatalf("a well-formed offer was refused: %v", err)
	}
	for what, err := range map[string]error{
		"another sender":  second(parseOffer(old, invitee.Public(), env(other))),
		"another group":   second(parseOffer(crypto.GroupID{8}, invitee.Public(), env(creator))),
		"another invitee": second(parseOffer(old, other.Public(), env(creator))),
	} {
		if err == nil {
			t.Errorf("an offer from %s was taken", what)
		}
	}
}

func second[T any](_ T, err error) error { return err }
