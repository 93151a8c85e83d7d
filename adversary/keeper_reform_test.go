package adversary

import (
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/node"
)

// TestKeeperSuccessorRefused: a keeper reads nothing, in the group it keeps
// and in any group that continues it. When the group halts (here the host
// forked it), a rogue keeper (a node that joined with a keeper's code and
// runs its own build: its node does not refuse to re-form) starts a
// successor of its own before anyone else, without the forking host and
// with the same history as the members, where it is the creator and an
// ordinary member. Each member's node refuses the offer, since its starter
// is a keeper of the halted group, and re-forms without it; the keeper
// never holds the members' successor.
//
// Watched to fail with offerProblem's keeper check removed: node 1 joined
// the keeper's successor, and the keeper read what node 1 said there.
func TestKeeperSuccessorRefused(t *testing.T) {
	link := &forkingLink{}
	g := newGroup(t, 4, options{heads: true, tweak: map[int]func(*node.Config){
		0: func(cfg *node.Config) {
			link.inner, link.id = cfg.Link, cfg.Identity
			cfg.Link = link
		},
	}})
	link.victim = g.c.Member(2).URL
	g.form(0, 1, 2)
	ctx := ctxT(t, 60*time.Second)
	code, _, err := g.node(0).AddKeeper(ctx, g.id, g.pub(3).String(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.node(3).Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	g.waitVoters(4, 0, 1, 2, 3)
	if st, _ := g.c.Status(1); !keeperIn(st.Members, g.pub(3).String()) {
		t.Fatalf("node3 is not a keeper on node1: %+v", st.Members)
	}
	g.send(0, "hello")
	g.c.Eventually(t, 30*time.Second, "nodes 1, 2 and 3 to hear each other's heads", func() bool {
		return g.holds(1, 2) > 0 && g.holds(2, 1) > 0 && g.holds(1, 3) > 0 && g.holds(3, 1) > 0
	})
	g.forkNextChat(link, 1)
	g.send(1, "meet at noon")
	g.waitFork(1)
	g.waitFork(3)

	// The keeper re-forms first: a successor without the host.
	rk := g.reform(3, "")
	if rk.Action != api.ReformStarted || rk.Continues.Without != g.pub(0).String() {
		t.Fatalf("the keeper's reform: %+v", rk)
	}
	if o := g.offered(1, rk.GroupID); !strings.Contains(o.Problem, "keeper") {
		t.Errorf("node1 would join the keeper's successor: %+v", o)
	}
	r1 := g.reform(1, "")
	if r1.GroupID == rk.GroupID {
		g.sendIn(1, rk.GroupID, "for members only")
		g.reads(3, rk.GroupID, "for members only")
		t.Fatalf("node1 joined the keeper's successor, and the keeper reads what node1 says there: %+v", r1)
	}
	g.sendIn(1, r1.GroupID, "for members only")
	if _, ok := g.groupStatus(3, r1.GroupID); ok {
		t.Error("the keeper holds the members' successor")
	}
	if st, ok := g.groupStatus(3, rk.GroupID); ok && len(st.Members) != 1 {
		t.Errorf("the keeper's successor has %d members", len(st.Members))
	}
}

// keeperIn reports whether the member with public id is listed as a keeper.
func keeperIn(ms []api.Member, id string) bool {
	for _, m := range ms {
		if m.PublicID == id {
			return m.Keeper
		}
	}
	return false
}
