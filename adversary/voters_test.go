package adversary

import (
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// TestDemoteEveryOtherVoter: M, one voter of three, signs the demotion of
// each other voter, to be the only one left and so decide alone what the
// group commits. Every demotion is rejected, and counted: first because
// only the host changes voters, then, once honest members have elected M
// as host, because a group keeps min(3, members) voters. The honest
// members still see three voters.
func TestDemoteEveryOtherVoter(t *testing.T) {
	t.Parallel()
	const c, a, m = 0, 1, 2 // creator (admin), honest, malicious
	g := newGroup(t, 3, options{})
	g.form(c, a, m)
	before := g.settled(c, a)
	notHost := g.count("signed by the host", c, a)
	counted := g.count("demotion would leave", c, a)

	demoteAll := func(reason string) {
		var at []uint64
		for _, target := range []int{c, a} {
			key := g.pub(target).Sign
			at = append(at, g.signedFresh(c, func() uint64 {
				frame := g.signBy(m, crypto.TypePromote, &state.TargetBody{Target: key[:], Voter: false})
				return g.commitConf(m, c, frame, state.AddLearner, state.RaftID(key))
			}))
		}
		res, _ := g.outcomes(c)
		for k, idx := range at {
			g.rejected(res, idx, fmt.Sprintf("M's demotion of the voter node%d", []int{c, a}[k]), reason)
		}
		g.applied(at[len(at)-1], c, a)
		g.unchanged(before, c, a)
	}
	demoteAll("signed by the host")
	g.rose(notHost, 2)
	g.makeHost(m, c, a)
	g.c.Eventually(t, 30*time.Second, "M's lead entry applied on the honest nodes", func() bool {
		for _, i := range []int{c, a} {
			if _, st := g.outcomes(i); st.Host != g.pub(m).Sign {
				return false
			}
		}
		return true
	})
	demoteAll("demotion would leave")
	for _, i := range []int{c, a} {
		if v := g.c.Voters(i); v < state.MinVoters(3, state.DefaultMaxVoters) {
			t.Errorf("node%d sees %d voters", i, v)
		}
	}
	g.rose(counted, 2)
}
