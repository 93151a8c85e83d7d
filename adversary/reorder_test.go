package adversary

import (
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// TestReorderedOwnProposals: M signs an invite and then its revocation, and
// proposes them the other way round, so that the invite it took back would
// stand. A member's entries take effect only in the order it signed them:
// the revocation goes first and finds nothing to revoke, and the invite,
// signed before it, is rejected as stale and counted. A host that held an
// honest member's proposals back and committed them out of order would meet
// the same rule: the frames are the same. M proposes them as the group's
// host: an honest host drops a revocation of an invite that is not open
// (node/controlgate.go), before the state machine would see it.
func TestReorderedOwnProposals(t *testing.T) {
	t.Parallel()
	const c, a, m = 0, 1, 2 // creator (admin), honest, malicious
	g := newGroup(t, 3, options{})
	g.form(c, a, m)
	if err := g.node(c).SetSettings(ctxT(t, 30*time.Second), g.id, node.GroupSettings{MembersInvite: true}); err != nil {
		t.Fatal(err)
	}
	before := g.settled(c, a)
	counted := g.count("replayed or stale", c, a)
	g.keepHost(m, c, a)

	x := outsider(t, 0x52).Public()
	var invite []byte
	first := g.signedFresh(c, func() uint64 {
		invite = g.signBy(m, crypto.TypeInvite, &state.InviteBody{Invitee: x.Bytes(), Expires: time.Now().Add(time.Hour).UnixNano()})
		revoke := g.signBy(m, crypto.TypeRevoke, &state.TargetBody{Target: x.Sign[:]})
		return g.commit(m, c, revoke)
	})
	second := g.commit(m, c, invite)
	res, _ := g.outcomes(c)
	g.rejected(res, first, "the revocation proposed first", "no open invite to revoke")
	g.rejected(res, second, "the invite proposed after its revocation", "replayed or stale")
	g.applied(second, c, a)
	g.unchanged(before, c, a)
	g.rose(counted, 1)
}
