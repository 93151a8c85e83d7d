package state

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
)

// semantic is what an entry may change besides the transcript chain, which
// covers every entry with a frame, accepted or not.
func semantic(t *testing.T, s *State) []byte {
	t.Helper()
	c := *s
	c.Chain, c.heads, c.Applied = crypto.Chain{}, nil, 0
	b, err := c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReplayAtEveryLaterPosition is the replay attack on the state machine:
// a member copies any signed frame out of its log (an invite, a join, a
// removal, a role change, a setting, an address, a latency map, a promotion,
// a checkpoint, a chat message, and the rejected ones) and has it committed
// again at a later position. Every such replay is rejected and changes
// nothing but the chain.
func TestReplayAtEveryLaterPosition(t *testing.T) {
	w := busyWorld(t)
	// The state after each prefix of the log.
	snaps := make([][]byte, len(w.log)+1)
	s := New(w.group)
	for i, e := range w.log {
		var err error
		if snaps[i], err = s.Snapshot(); err != nil {
			t.Fatal(err)
		}
		e.apply(s)
	}
	snaps[len(w.log)], _ = s.Snapshot()
	replays := 0
	for j := 1; j <= len(w.log); j++ {
		// Replay entry i (before position j) right after the first j entries.
		for i := 0; i < j; i++ {
			e := w.log[i]
			if len(e.frame) == 0 {
				continue
			}
			st, err := Restore(w.group, snaps[j])
			if err != nil {
				t.Fatal(err)
			}
			before := semantic(t, st)
			e.index = st.Applied + 1
			r := e.apply(st)
			if r.Err == nil {
				t.Fatalf("entry %d (%v) replayed after entry %d was accepted", w.log[i].index, typeOf(e.frame), j)
			}
			if !bytes.Equal(semantic(t, st), before) {
				t.Fatalf("entry %d (%v) replayed after entry %d changed the state: %v", w.log[i].index, typeOf(e.frame), j, r.Err)
			}
			replays++
		}
	}
	t.Logf("%d replays of %d entries, all rejected", replays, len(w.log))
}

func typeOf(frame []byte) crypto.Type {
	env, err := crypto.ParseTrusted(frame)
	if err != nil {
		return 0
	}
	return env.Type
}

// TestStaleEntryOfARejoinedMember: an old leave of a member who has since
// come back does not remove it again, nor does its old join bring it back
// after a removal.
func TestStaleEntryOfARejoinedMember(t *testing.T) {
	w := newWorld(t, 3)
	w.genesis()
	w.join(1)
	w.join(2)
	b := w.ids[1]
	rb := RaftID(b.Public().Sign)
	leave := w.frame(b, crypto.TypeLeave, &struct{}{})
	w.index++
	if r := w.s.ApplyConf(w.index, rb, Remove, leave); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := w.join(1); r.Err != nil {
		t.Fatalf("rejoin: %v", r.Err)
	}
	w.index++
	wantRejected(t, w.s.ApplyConf(w.index, rb, Remove, leave), "counter")
	if w.s.Members[b.Public().Sign] == nil {
		t.Fatal("an old leave removed a member who came back")
	}
}

func TestRoles(t *testing.T) {
	w := newWorld(t, 5)
	a, b, c, d, e := w.ids[0], w.ids[1], w.ids[2], w.ids[3], w.ids[4]
	must := func(r Result) {
		t.Helper()
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	w.genesis()
	if !w.s.IsAdmin(a.Public().Sign) {
		t.Fatal("the creator is not an admin")
	}
	must(w.join(1))
	must(w.join(2))
	// By default only admins invite, set roles and settings, and remove.
	wantRejected(t, w.entry(b, crypto.TypeInvite, w.invite(d.Public().Bytes())), "only admins may invite")
	wantRejected(t, w.entry(b, crypto.TypeSettings, &SettingsBody{MembersInvite: true}), "only admins")
	wantRejected(t, w.entry(b, crypto.TypeAdmin, &AdminBody{Target: key(b), Admin: true}), "only admins")
	wantRejected(t, w.conf(b, crypto.TypeRemove, &TargetBody{Target: key(c)}, RaftID(c.Public().Sign), Remove), "only admins")
	wantRejected(t, w.entry(a, crypto.TypeAdmin, &AdminBody{Target: key(a), Admin: false}), "last admin")
	// Members may invite once an admin allows it; the invite is cancelled
	// when the setting is withdrawn.
	must(w.entry(a, crypto.TypeSettings, &SettingsBody{MembersInvite: true}))
	must(w.entry(b, crypto.TypeInvite, w.invite(d.Public().Bytes())))
	must(w.entry(a, crypto.TypeSettings, &SettingsBody{MembersInvite: false}))
	if _, ok := w.s.Invites[d.Public().Sign]; ok {
		t.Fatal("an invite outlived its inviter's right to invite")
	}
	// An admin's invite is cancelled when the admin leaves.
	must(w.entry(a, crypto.TypeAdmin, &AdminBody{Target: key(b), Admin: true}))
	must(w.entry(b, crypto.TypeInvite, w.invite(d.Public().Bytes())))
	must(w.conf(b, crypto.TypeLeave, &struct{}{}, RaftID(b.Public().Sign), Remove))
	if len(w.s.Invites) != 0 {
		t.Fatal("an invite outlived its inviter's membership")
	}
	// Revocation: by the inviter or an admin only.
	must(w.entry(a, crypto.TypeInvite, w.invite(e.Public().Bytes())))
	wantRejected(t, w.entry(c, crypto.TypeRevoke, &TargetBody{Target: key(e)}), "only the inviter or an admin")
	must(w.entry(a, crypto.TypeRevoke, &TargetBody{Target: key(e)}))
	pe := e.Public()
	wantRejected(t, w.conf(e, crypto.TypeJoin, &JoinBody{PublicID: pe.Bytes(), RaftID: RaftID(pe.Sign)}, RaftID(pe.Sign), AddLearner), "no open invite")
	// The last admin leaves: the longest-standing member becomes admin.
	must(w.conf(a, crypto.TypePromote, &TargetBody{Target: key(c), Voter: true}, RaftID(c.Public().Sign), AddVoter))
	must(w.conf(a, crypto.TypeLeave, &struct{}{}, RaftID(a.Public().Sign), Remove))
	if got := w.s.Admins(); len(got) != 1 || got[0] != c.Public().Sign {
		t.Fatalf("admins after the last one left: %x", got)
	}
}

func TestInviteExpiry(t *testing.T) {
	w := newWorld(t, 3)
	a, b, c := w.ids[0], w.ids[1], w.ids[2]
	w.genesis()
	now := time.Now()
	soon := &InviteBody{Invitee: b.Public().Bytes(), Expires: now.Add(time.Minute).UnixNano()}
	wantRejected(t, w.entry(a, crypto.TypeInvite, &InviteBody{Invitee: b.Public().Bytes(), Expires: now.Add(-time.Minute).UnixNano()}), "expiry")
	wantRejected(t, w.entry(a, crypto.TypeInvite, &InviteBody{Invitee: b.Public().Bytes(), Expires: now.Add(MaxInviteLifetime + time.Hour).UnixNano()}), "expiry")
	if r := w.entry(a, crypto.TypeInvite, soon); r.Err != nil {
		t.Fatal(r.Err)
	}
	// The group's clock passes the expiry (the creator's later entry is
	// signed two minutes on): the invite no longer admits anyone.
	w.index++
	w.ctr++
	late, err := crypto.Sign(a, &crypto.Envelope{Type: crypto.TypeAddress, Group: w.group, Counter: w.ctr, Time: now.Add(2 * time.Minute).UnixNano(), Payload: mustEncode(t, &AddressBody{URL: "http://a"})})
	if err != nil {
		t.Fatal(err)
	}
	if r := w.s.ApplyEntry(w.index, late); r.Err != nil {
		t.Fatal(r.Err)
	}
	pb := b.Public()
	wantRejected(t, w.conf(b, crypto.TypeJoin, &JoinBody{PublicID: pb.Bytes(), RaftID: RaftID(pb.Sign)}, RaftID(pb.Sign), AddLearner), "expired")
	_ = c
}

func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVoterFloor: only the host changes voters, and not even the host can
// shrink the voter set below min(3, members), so no member can make itself
// the only voter.
func TestVoterFloor(t *testing.T) {
	w := newWorld(t, 5)
	w.genesis()
	for i := 1; i < 5; i++ {
		if r := w.join(i); r.Err != nil {
			t.Fatal(r.Err)
		}
		if r := w.conf(w.ids[0], crypto.TypePromote, &TargetBody{Target: key(w.ids[i]), Voter: true}, RaftID(w.ids[i].Public().Sign), AddVoter); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	rogue := w.ids[4]
	demoteAll := func() (demoted int) {
		for i := 0; i < 4; i++ {
			r := w.conf(rogue, crypto.TypePromote, &TargetBody{Target: key(w.ids[i]), Voter: false}, RaftID(w.ids[i].Public().Sign), AddLearner)
			if r.Err == nil {
				demoted++
			}
		}
		return demoted
	}
	// A voter that is not the host changes nothing.
	if demoted := demoteAll(); demoted != 0 || len(w.s.Voters()) != 5 {
		t.Fatalf("a voter that is not the host demoted %d and left %d voters", demoted, len(w.s.Voters()))
	}
	// Become the host (an honest host's node appends no lead entry but its
	// own, so this takes being elected), then try again: the floor holds.
	if r := w.entry(rogue, crypto.TypeLead, &LeadBody{Term: 9}); r.Err != nil || w.s.Host != rogue.Public().Sign {
		t.Fatalf("lead entry: %v", r.Err)
	}
	if demoted := demoteAll(); demoted != 2 || len(w.s.Voters()) != 3 {
		t.Fatalf("the host demoted %d of 4 and left %d voters, want 2 and 3", demoted, len(w.s.Voters()))
	}
	// A learner's lead entry is refused.
	wantRejected(t, w.entry(w.ids[0], crypto.TypeLead, &LeadBody{Term: 10}), "learner")
}

// TestGenesisBoundToGroupID: the group id is the genesis's hash, so a
// genesis for another id, or with anything changed, is not this group's.
func TestGenesisBoundToGroupID(t *testing.T) {
	w := newWorld(t, 2)
	c := w.ids[0]
	other := w.genesisBody()
	other.Name = "evil twin"
	wantRejected(t, w.conf(c, crypto.TypeGenesis, other, RaftID(c.Public().Sign), AddVoter), "does not match the group id")
	short := w.genesisBody()
	short.Nonce = short.Nonce[:8]
	wantRejected(t, w.conf(c, crypto.TypeGenesis, short, RaftID(c.Public().Sign), AddVoter), "malformed genesis")
	if !w.s.Creator.IsZero() {
		t.Fatal("a rejected genesis created the group")
	}
	w.genesis()
	if !reflect.DeepEqual(w.s.Creator, c.Public()) {
		t.Fatal("the genesis of the id did not create the group")
	}
}

// TestRename: an admin renames the group; a member who is not one cannot,
// and no name that would garble a terminal or the UI is taken.
func TestRename(t *testing.T) {
	w := newWorld(t, 2)
	a, b := w.ids[0], w.ids[1]
	w.genesis()
	if r := w.join(1); r.Err != nil {
		t.Fatal(r.Err)
	}
	before := w.s.Name
	wantRejected(t, w.entry(b, crypto.TypeRename, &RenameBody{Name: "bob's now"}), "only admins")
	for _, bad := range []string{"", strings.Repeat("x", MaxNameLen+1), "two\nlines", "\x1b[31mred"} {
		wantRejected(t, w.entry(a, crypto.TypeRename, &RenameBody{Name: bad}), "group name")
	}
	// Not UTF-8: not even a CBOR text string.
	wantRejected(t, w.entry(a, crypto.TypeRename, &RenameBody{Name: string([]byte{0xff, 0xfe})}), "malformed rename")
	if w.s.Name != before {
		t.Fatalf("a refused rename changed the name to %q", w.s.Name)
	}
	if r := w.entry(a, crypto.TypeRename, &RenameBody{Name: "book club ✓"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if w.s.Name != "book club ✓" {
		t.Fatalf("name %q after the rename", w.s.Name)
	}
	// The name travels in snapshots like the rest of the state.
	snap, err := w.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Restore(w.group, snap)
	if err != nil || s2.Name != "book club ✓" {
		t.Fatalf("restored name %q, %v", s2.Name, err)
	}
}
