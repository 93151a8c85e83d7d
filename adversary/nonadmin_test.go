package adversary

import (
	"errors"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// TestNonAdminActs: M, a member but not an admin, in a group where only
// admins invite, removes another member and the admin, turns on the
// setting that lets members invite, grants itself the admin role and
// withdraws the admin's, plants an invite and revokes the admin's invite.
// (B, honest too, is the witness whose log is read.) Its own node refuses
// each through its API (ErrForbidden). Signed and proposed all the same, as
// a modified node would, as the group's host (an honest host drops such
// entries before they reach the log: TestMemberFloodsControlEntries), each
// entry is rejected by the honest members and counted, and their state is
// unchanged.
func TestNonAdminActs(t *testing.T) {
	t.Parallel()
	const c, a, b, m = 0, 1, 2, 3 // creator (admin), honest, honest (the witness), malicious
	g := newGroup(t, 4, options{})
	g.form(c, a, b, m)
	ctx := ctxT(t, 30*time.Second)
	y := outsider(t, 0x53).Public()
	if _, err := g.node(c).Invite(ctx, g.id, y.String()); err != nil {
		t.Fatal(err)
	}
	g.c.Eventually(t, 30*time.Second, "every member to list the admin's invite", func() bool {
		for _, i := range []int{c, a, b, m} {
			if invs, _ := g.node(i).Invites(g.id); len(invs) != 1 {
				return false
			}
		}
		return true
	})
	before := g.settled(c, a, b)

	// M's own node refuses, as the UI shows it.
	x := outsider(t, 0x54).Public()
	for what, err := range map[string]error{
		"remove a member":     g.node(m).Remove(ctx, g.id, g.pub(a).String()),
		"change the settings": g.node(m).SetSettings(ctx, g.id, node.GroupSettings{MembersInvite: true}),
		"make itself admin":   g.node(m).SetAdmin(ctx, g.id, g.pub(m).String(), true),
		"revoke an invite":    g.node(m).RevokeInvite(ctx, g.id, y.String()),
		"invite":              func() error { _, err := g.node(m).Invite(ctx, g.id, x.String()); return err }(),
	} {
		if !errors.Is(err, node.ErrForbidden) {
			t.Errorf("M's node let it %s: %v, want ErrForbidden", what, err)
		}
	}

	// The entries, signed and proposed by M all the same, as the host.
	g.keepHost(m, c, a, b)
	admins := g.count("only admins may", c, a, b)
	inviter := g.count("only the inviter or an admin may revoke", c, a, b)
	key := func(i int) []byte { k := g.pub(i).Sign; return k[:] }
	var tries []attempt
	for _, target := range []int{a, c} {
		tries = append(tries, attempt{"the removal of " + g.c.Member(target).Name, "only admins may remove other members",
			g.signedFresh(b, func() uint64 {
				frame := g.signBy(m, crypto.TypeRemove, &state.TargetBody{Target: key(target)})
				return g.commitConf(m, b, frame, state.Remove, state.RaftID(g.pub(target).Sign))
			})})
	}
	for _, e := range []struct {
		what, reason string
		t            crypto.Type
		body         any
	}{
		{"settings that let members invite", "only admins may change the group's settings", crypto.TypeSettings, &state.SettingsBody{MembersInvite: true}},
		{"M's grant of the admin role to itself", "only admins may change who is an admin", crypto.TypeAdmin, &state.AdminBody{Target: key(m), Admin: true}},
		{"M's withdrawal of the admin's role", "only admins may change who is an admin", crypto.TypeAdmin, &state.AdminBody{Target: key(c), Admin: false}},
		{"M's invite", "only admins may invite", crypto.TypeInvite, &state.InviteBody{Invitee: x.Bytes(), Expires: time.Now().Add(time.Hour).UnixNano()}},
		{"M's revocation of the admin's invite", "only the inviter or an admin may revoke", crypto.TypeRevoke, &state.TargetBody{Target: y.Sign[:]}},
	} {
		tries = append(tries, attempt{e.what, e.reason, g.signedFresh(b, func() uint64 { return g.commit(m, b, g.signBy(m, e.t, e.body)) })})
	}
	g.allRejected(b, tries)
	g.applied(tries[len(tries)-1].at, c, a, b)
	g.unchanged(before, c, a, b)
	g.rose(admins, 6)
	g.rose(inviter, 1)
}
