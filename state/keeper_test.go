package state

import (
	"reflect"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

// TestKeeperRules: a keeper joins by an admin's keeper invite, votes and
// keeps the log, but is no recipient of any sender key, and the state
// machine refuses every entry of its about the conversation or the
// membership: chat, invites, removals, roles, settings, renames. Only an
// admin adds a keeper, and a keeper never becomes an admin, not even as the
// longest-standing member when the last admin leaves.
func TestKeeperRules(t *testing.T) {
	w := newWorld(t, 4)
	a, b, k := w.ids[0], w.ids[1], w.ids[2]
	w.genesis()
	kp := k.Public()
	// The keeper joins before b, so that it is the longest-standing member
	// after a.
	if r := w.entry(a, crypto.TypeKeeper, w.invite(kp.Bytes())); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := w.conf(k, crypto.TypeJoin, &JoinBody{PublicID: kp.Bytes(), RaftID: RaftID(kp.Sign)}, RaftID(kp.Sign), AddLearner); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := w.join(1); r.Err != nil {
		t.Fatal(r.Err)
	}
	// Only an admin adds a keeper, even where every member may invite.
	if r := w.entry(a, crypto.TypeSettings, &SettingsBody{MembersInvite: true}); r.Err != nil {
		t.Fatal(r.Err)
	}
	wantRejected(t, w.entry(b, crypto.TypeKeeper, w.invite(w.ids[3].Public().Bytes())), "only admins may add a keeper")
	m := w.s.Members[kp.Sign]
	if m == nil || !m.Keeper {
		t.Fatalf("the keeper joined as %+v", m)
	}
	// No sender key is sealed to it.
	for _, r := range w.s.Recipients() {
		if r == kp {
			t.Fatal("the keeper is a recipient of sender keys")
		}
	}
	// A message sealed to the members and not the keeper is accepted;
	// one sealed to the keeper too is not (the header must match the
	// recipients).
	if r := w.chat(a, w.s.Recipients(), crypto.NewMessageID()); r.Err != nil {
		t.Fatalf("a message sealed to every member but the keeper: %v", r.Err)
	}
	wantRejected(t, w.chat(b, []identity.PublicID{a.Public(), b.Public(), kp}, crypto.NewMessageID()), "recipients")

	// What the keeper may not sign.
	type view struct {
		name           string
		settings       Settings
		members, msgs  int
		invites, admin int
		epoch          uint64
	}
	look := func() view {
		return view{w.s.Name, w.s.Settings, len(w.s.Members), w.s.MsgIDs.Len(), len(w.s.Invites), len(w.s.Admins()), w.s.Epoch}
	}
	before := look()
	d := w.ids[3].Public()
	now := time.Now()
	for name, r := range map[string]Result{
		"chat":     w.chat(k, w.s.Recipients(), crypto.NewMessageID()),
		"invite":   w.entry(k, crypto.TypeInvite, w.invite(d.Bytes())),
		"keeper":   w.entry(k, crypto.TypeKeeper, w.invite(d.Bytes())),
		"settings": w.entry(k, crypto.TypeSettings, &SettingsBody{}),
		"rename":   w.entry(k, crypto.TypeRename, &RenameBody{Name: "mine"}),
		"admin":    w.entry(k, crypto.TypeAdmin, &AdminBody{Target: key(k), Admin: true}),
		"remove":   w.conf(k, crypto.TypeRemove, &TargetBody{Target: key(b)}, RaftID(b.Public().Sign), Remove),
		// A prekey of its own, valid and signed by it: members would seal
		// their sender keys to it. A rekey: a new epoch on its word.
		"prekey": w.prekeyEntry(k, genPrekey(t, k, now.Add(-time.Minute)), now),
		"rekey":  w.rekeyAt(k, now),
	} {
		if r.Err == nil {
			t.Errorf("the keeper's %s entry was accepted", name)
		}
	}
	// (Each still counts against the replay rule: its counter is used.)
	if after := look(); !reflect.DeepEqual(after, before) {
		t.Fatalf("the keeper's refused entries changed the group: %+v, before %+v", after, before)
	}
	if w.s.Prekey(kp.Sign) != nil {
		t.Fatal("the keeper has a prekey")
	}
	// An admin cannot make it one.
	wantRejected(t, w.entry(a, crypto.TypeAdmin, &AdminBody{Target: key(k), Admin: true}), "a keeper cannot be an admin")
	// What it may: say where it is.
	if r := w.entry(k, crypto.TypeAddress, &AddressBody{URL: "http://keeper.example:7000"}); r.Err != nil {
		t.Fatalf("the keeper's address update: %v", r.Err)
	}
	// A keeper votes: promoted like any member.
	for _, p := range []*identity.Identity{k, b} {
		if r := w.conf(a, crypto.TypePromote, &TargetBody{Target: key(p), Voter: true}, RaftID(p.Public().Sign), AddVoter); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	// The keeper outlives both friends' admin roles without getting one:
	// when the last admin leaves, the longest-standing member that is not
	// a keeper becomes admin.
	if r := w.conf(a, crypto.TypeLeave, map[string]any{}, RaftID(a.Public().Sign), Remove); r.Err != nil {
		t.Fatal(r.Err)
	}
	if w.s.Members[kp.Sign].Admin || !w.s.Members[b.Public().Sign].Admin {
		t.Fatalf("after the last admin left: keeper admin %v, b admin %v", w.s.Members[kp.Sign].Admin, w.s.Members[b.Public().Sign].Admin)
	}
	// Keepers travel in snapshots.
	snap, err := w.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Restore(w.group, snap)
	if err != nil || !s2.Members[kp.Sign].Keeper {
		t.Fatalf("restored keeper: %v", err)
	}
}
