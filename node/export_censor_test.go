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
