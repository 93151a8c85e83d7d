package node

import (
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// TestQueuedAction covers every decision retryInvites takes on a queued
// invite: the frame proposed as it is while it may commit, signed again
// only once an entry this node signed later has applied without it (its
// counter is then stale), and the invite dropped when it is done with.
func TestQueuedAction(t *testing.T) {
	self, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	other, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	key, invitee := self.Public().Sign, other.Public()
	now := time.Unix(1_700_000_000, 0)
	type setup struct {
		counter  uint64 // this node's highest applied counter
		admin    bool
		member   bool // the invitee is a member
		open     uint64
		notSelf  bool // this node is not a member
		it       queuedInvite
		wantName string
		want     int
	}
	live := func(mod func(*queuedInvite)) queuedInvite {
		it := queuedInvite{Invitee: invitee.Bytes(), Expires: now.Add(time.Hour).UnixNano(), Counter: 10}
		if mod != nil {
			mod(&it)
		}
		return it
	}
	cases := []setup{
		{counter: 9, admin: true, it: live(nil), want: queuePropose, wantName: "waiting frame: propose it"},
		{counter: 10, admin: true, it: live(nil), want: queueResign, wantName: "counter reached without the frame committing: sign again"},
		{counter: 12, admin: true, it: live(nil), want: queueResign, wantName: "counter passed: sign again"},
		{counter: 12, admin: true, open: 7, it: live(func(it *queuedInvite) { it.Index = 7 }), want: queueWait, wantName: "committed and open: keep it for its code"},
		{counter: 12, admin: true, it: live(func(it *queuedInvite) { it.Index = 7 }), want: queueDrop, wantName: "committed, then used or revoked: drop"},
		{counter: 12, admin: true, open: 9, it: live(func(it *queuedInvite) { it.Index = 7 }), want: queueDrop, wantName: "committed, then replaced: drop"},
		{counter: 9, admin: true, member: true, it: live(nil), want: queueDrop, wantName: "the invitee is a member: drop"},
		{counter: 9, admin: false, it: live(nil), want: queueDrop, wantName: "may no longer invite: drop"},
		{counter: 9, admin: true, notSelf: true, it: live(nil), want: queueDrop, wantName: "no longer a member: drop"},
		{counter: 9, admin: true, it: live(func(it *queuedInvite) { it.Expires = now.UnixNano() }), want: queueDrop, wantName: "expired: drop"},
		{counter: 9, admin: true, it: live(func(it *queuedInvite) { it.Revoked = true }), want: queueWait, wantName: "revoked, may still commit: watch"},
		{counter: 10, admin: true, it: live(func(it *queuedInvite) { it.Revoked = true }), want: queueDrop, wantName: "revoked, frame dead: drop"},
		{counter: 12, admin: true, open: 7, it: live(func(it *queuedInvite) { it.Revoked, it.Index = true, 7 }), want: queueRevoke, wantName: "revoked but committed: revoke in the log"},
		{counter: 12, admin: true, it: live(func(it *queuedInvite) { it.Revoked, it.Index = true, 7 }), want: queueDrop, wantName: "revoked and revoked in the log: drop"},
		{counter: 9, admin: true, it: live(func(it *queuedInvite) { it.Invitee = []byte{1, 2} }), want: queueDrop, wantName: "damaged record: drop"},
	}
	for _, c := range cases {
		st := state.New(crypto.GroupID{})
		me := &state.Member{ID: self.Public(), Admin: c.admin, Counter: c.counter}
		if !c.notSelf {
			st.Members[key] = me
		}
		if c.member {
			st.Members[invitee.Sign] = &state.Member{ID: invitee}
		}
		if c.open != 0 {
			st.Invites[invitee.Sign] = state.Invite{Invitee: invitee, Inviter: self.Public(), Index: c.open, Expires: c.it.Expires}
		}
		var selfM *state.Member
		if !c.notSelf {
			selfM = me
		}
		it := c.it
		if got := queuedAction(&it, st, selfM, key, now); got != c.want {
			t.Errorf("%s: got action %d, want %d", c.wantName, got, c.want)
		}
	}
}
