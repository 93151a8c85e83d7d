package node

import "context"

// ReportSuspicion hands n's group gid a report of member from, as its pings
// carry it: that it suspects the group's current host in the current term
// (suspect), or no longer does. Tests use it for a voter whose suspicion
// was momentary.
func ReportSuspicion(ctx context.Context, n *Node, gid string, from [32]byte, suspect bool) error {
	g, err := n.groupByText(gid)
	if err != nil {
		return err
	}
	return g.do(ctx, func() {
		g.onSuspicion(suspicionReport{key: from, view: raftView{term: g.term, lead: g.leader}, suspect: suspect})
	})
}

// HandOver has n, the host of group gid, hand leadership to the member
// whose public signing key is to, as placement does: tests use it for a
// host that hands over at a moment of its choosing.
func HandOver(ctx context.Context, n *Node, gid string, to [32]byte) error {
	g, err := n.groupByText(gid)
	if err != nil {
		return err
	}
	return g.do(ctx, func() {
		if m := g.st.Members[to]; m != nil {
			g.transferLeader(m.RaftID)
		}
	})
}
