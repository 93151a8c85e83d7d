package adversary

import (
	"testing"
	"time"

	"github.com/demes/demes/crypto"
)

// reasonProposalUnsealed is the host's count of forwarded chat entries it
// drops because the state machine's sender key rule would refuse them.
const reasonProposalUnsealed = "proposal under a sender key the group does not take"

// TestHostDropsProposalsTheKeyRuleRefuses: a member's forwarded proposals
// are the host's to gate (node/quota.go): an entry the state machine can
// only refuse is dropped there, not put in every member's log. The quota
// bounds the messages a member gets accepted; entries refused for their
// sealing count against no quota, so without the gate's look at the
// sealing a member could grow the log without bound: here 20 messages under
// a sender key that no header ever registered (and so no member can
// read). The rogue's own message after them must still commit.
func TestHostDropsProposalsTheKeyRuleRefuses(t *testing.T) {
	t.Parallel()
	g, epoch := rogueGroup(t)
	unregistered := crypto.NewSenderKey(g.gid, g.pub(rogue).Sign, epoch)
	const bad = 20
	for k := 0; k < bad; k++ {
		f, _ := g.sealedChatWith(rogue, unregistered, false, "unreadable")
		if err := g.node(rogue).ProposeRaw(ctxT(t, 10*time.Second), g.id, f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.node(rogue).Send(ctxT(t, 30*time.Second), g.id, "rogue's last", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	refused := func() int {
		res, _ := g.outcomes(host)
		n := 0
		for _, r := range res {
			if r.Env != nil && r.Env.Type == crypto.TypeChat && r.Env.Sender == g.pub(rogue).Sign && r.Err != nil {
				n++
			}
		}
		return n
	}
	// Each of the 20 either reached the log, refused, or was dropped by
	// the host (its proposals arrive in order, before "rogue's last").
	g.c.Eventually(t, 30*time.Second, "the host to have seen the rogue's proposals", func() bool {
		return int64(refused())+g.rejections(host, reasonProposalUnsealed) >= bad
	})
	if n := refused(); n > 0 {
		t.Errorf("the log holds %d of the rogue's entries that the state machine refused for their sender key: the host should have dropped them", n)
	}
}
