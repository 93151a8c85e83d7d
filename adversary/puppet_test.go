package adversary

import (
	"testing"
	"time"

	"github.com/demes/demes/node"
)

// TestSockPuppetAfterRemoval: in a group where every member may invite, the
// malicious member M invites a second identity of its own, P, and is then
// removed by the admin. P's invite goes with M's right to invite: P's join
// through an honest member is refused and counted, P never becomes a member,
// and neither P's keys nor M's open what the members send after M's removal
// (tried on the ciphertext of an honest member's log, not only through the
// nodes).
func TestSockPuppetAfterRemoval(t *testing.T) {
	t.Parallel()
	const c, a, m, p = 0, 1, 2, 3 // creator (admin), honest, malicious, M's puppet
	g := newGroup(t, 4, options{})
	g.form(c, a, m)
	ctx := ctxT(t, 60*time.Second)
	if err := g.node(c).SetSettings(ctx, g.id, node.GroupSettings{MembersInvite: true}); err != nil {
		t.Fatal(err)
	}
	g.send(c, "before the removal")
	g.c.Eventually(t, 30*time.Second, "M to see that it may invite", func() bool {
		st, _ := g.c.Status(m)
		return st.CanInvite
	})
	code, err := g.node(m).Invite(ctx, g.id, g.pub(p).String())
	if err != nil {
		t.Fatal(err)
	}
	g.c.Eventually(t, 30*time.Second, "the honest members to list P's invite", func() bool {
		for _, i := range []int{c, a} {
			if invs, _ := g.node(i).Invites(g.id); len(invs) != 1 {
				return false
			}
		}
		return true
	})

	if err := g.node(c).Remove(ctx, g.id, g.pub(m).String()); err != nil {
		t.Fatal(err)
	}
	g.c.Eventually(t, 30*time.Second, "the honest members to see M removed", func() bool {
		return !g.isMember(c, g.pub(m)) && !g.isMember(a, g.pub(m))
	})
	before := g.settled(c, a)
	// P joins with the code M gave it, through every member it names (M
	// first, then the honest ones).
	if g.tryJoin(p, code, c, a) {
		t.Fatal("M's puppet joined after M's removal")
	}

	g.send(c, "after the removal, from the admin")
	g.send(a, "after the removal, from a member")
	g.c.Eventually(t, 30*time.Second, "both messages on node A", func() bool {
		ms, _ := g.c.Committed(a)
		return len(ms) == 3
	})
	g.unchanged(before, c, a)
	for _, i := range []int{c, a} {
		if g.isMember(i, g.pub(p)) {
			t.Errorf("node%d lists the puppet as a member", i)
		}
		if invs, _ := g.node(i).Invites(g.id); len(invs) != 0 {
			t.Errorf("node%d still lists %d open invites (the puppet's was M's)", i, len(invs))
		}
	}
	readM, readP := g.readable(a, g.ident(m)), g.readable(a, g.ident(p))
	if !readM["before the removal"] {
		t.Fatal("M's keys do not even open a message from before its removal: the check below would prove nothing")
	}
	for _, text := range []string{"after the removal, from the admin", "after the removal, from a member"} {
		if readM[text] {
			t.Errorf("the removed member's keys open %q from the log", text)
		}
		if readP[text] {
			t.Errorf("the puppet's keys open %q from the log", text)
		}
	}
	if len(readP) != 0 {
		t.Errorf("the puppet's keys open %d messages from the log", len(readP))
	}
}
