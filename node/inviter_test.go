package node

import (
	"testing"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript/transcripttest"
)

// TestInviterAt: a joiner accepts the group it caught up with only if its
// log has an entry at the invite's index and shows the inviter a member
// there; an invite code naming a position where its signer was not a
// member (before it joined, after it left, or past the log) was not made in
// this group.
func TestInviterAt(t *testing.T) {
	alice, bob, carol := transcripttest.Identity(t, 1), transcripttest.Identity(t, 2), transcripttest.Identity(t, 3)
	g := transcripttest.New(t, transcripttest.GroupID(9), "g", alice, "alice")
	g.Add(alice, bob, "bob")
	joined := g.State.Members[bob.Public().Sign].JoinedAt
	g.Append(g.Sign(alice, crypto.TypeAddress, &state.AddressBody{URL: "sim://a"}))
	at := g.State.Applied
	g.Remove(alice, bob)
	left := g.State.Former[bob.Public().Sign].LeftAt
	g.Append(g.Sign(alice, crypto.TypeAddress, &state.AddressBody{URL: "sim://b"}))
	tests := []struct {
		name  string
		who   identity.PublicID
		index uint64
		want  bool
	}{
		{"the creator at the join", alice.Public(), joined, true},
		{"a member after its join", bob.Public(), at, true},
		{"a member at its own join", bob.Public(), joined, false},
		{"a member before its join", bob.Public(), 1, false},
		{"a former member after it left", bob.Public(), left + 1, false},
		{"past the log", alice.Public(), g.State.Applied + 5, false},
		{"never a member", carol.Public(), at, false},
	}
	for _, tc := range tests {
		_, entry := g.State.HeadAt(tc.index)
		if got := inviterAt(g.State, tc.who, tc.index, entry); got != tc.want {
			t.Errorf("%s (index %d): %v, want %v", tc.name, tc.index, got, tc.want)
		}
	}
}
