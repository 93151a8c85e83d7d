package adversary

import (
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// TestExpiredOrRevokedInvite: X holds an invite code the admin revoked; E
// was invited by M for two seconds, long past. X joins with its code and E
// asks honest members for a join challenge: each is refused and counted.
// M then proposes the joins of X and E itself, as a member whose node had
// accepted them would: the honest members reject both (no open invite; the
// invite expired by the group's clock) and count them. Neither becomes a
// member, and the honest state is unchanged.
func TestExpiredOrRevokedInvite(t *testing.T) {
	t.Parallel()
	const c, a, m, x = 0, 1, 2, 3 // creator (admin), honest, malicious, the revoked invitee
	g := newGroup(t, 4, options{})
	g.form(c, a, m)
	ctx := ctxT(t, 60*time.Second)
	if err := g.node(c).SetSettings(ctx, g.id, node.GroupSettings{MembersInvite: true}); err != nil {
		t.Fatal(err)
	}
	code, err := g.node(c).Invite(ctx, g.id, g.pub(x).String())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.node(c).RevokeInvite(ctx, g.id, code); err != nil {
		t.Fatal(err)
	}

	// E's invite, made by M (members may invite) to last two seconds: an
	// honest node makes none under a minute, but the rule is only that it
	// expire after its signing.
	e := outsider(t, 0x57)
	expires := time.Now().Add(2 * time.Second)
	invited := g.signedFresh(c, func() uint64 {
		return g.commit(m, c, g.signBy(m, crypto.TypeInvite, &state.InviteBody{Invitee: e.Public().Bytes(), Expires: expires.UnixNano()}))
	})
	if res, _ := g.outcomes(c); res[invited].Err != nil {
		t.Fatalf("E's invite was rejected (%v): the test would prove nothing", res[invited].Err)
	}
	// Once it expired, the members sign something, which moves the
	// group's clock (the lower median of their latest signing times) past
	// its expiry.
	g.c.Eventually(t, 30*time.Second, "E's invite to expire", func() bool { return time.Now().After(expires) })
	g.send(c, "after E's invite expired")
	g.send(a, "after E's invite expired, too")
	// Each send returns once committed on its sender; node C's log may
	// take a moment more to hold both.
	g.c.Eventually(t, 30*time.Second, "the group's clock in node C's log to pass the invite's expiry", func() bool {
		_, st := g.outcomes(c)
		return st.Clock() > expires.UnixNano()
	})
	before := g.settled(c, a)
	noInvite := g.count("no open invite names the joiner", c, a)
	expired := g.count("the invite expired", c, a)
	refused := g.count(refusedJoin, c, a)

	if g.tryJoin(x, code, c, a) {
		t.Fatal("X joined with a revoked invite")
	}
	for _, i := range []int{c, a} {
		if err := g.challenge(i, e); err == nil {
			t.Errorf("node%d answered the challenge of an invitee whose invite expired", i)
		}
	}
	g.rose(refused, 2)

	atX := g.commitConf(m, c, g.joinFrame(g.ident(x)), state.AddLearner, state.RaftID(g.pub(x).Sign))
	atE := g.commitConf(m, c, g.joinFrame(e), state.AddLearner, state.RaftID(e.Public().Sign))
	res, _ := g.outcomes(c)
	g.rejected(res, atX, "the join with a revoked invite", "no open invite names the joiner")
	g.rejected(res, atE, "the join with an expired invite", "the invite expired")
	g.applied(atE, c, a)
	g.unchanged(before, c, a)
	g.rose(noInvite, 1)
	g.rose(expired, 1)
	for _, i := range []int{c, a} {
		if g.isMember(i, g.pub(x)) || g.isMember(i, e.Public()) {
			t.Errorf("node%d lists X or E as a member", i)
		}
	}
}
