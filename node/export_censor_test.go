package node

import (
	"context"
	"time"

	"github.com/demes/demes/election"
	"github.com/demes/demes/state"
)

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

// KeepHosting makes n, while it hosts group gid, never hand leadership over
// on its placement's advice, as a censor means to (with a build of its own
// that leaves the handover out); HandOver still does.
func KeepHosting(ctx context.Context, n *Node, gid string) error {
	g, err := n.groupByText(gid)
	if err != nil {
		return err
	}
	return g.do(ctx, func() { g.pl.keepHosting = true })
}

// HoldGroup blocks the goroutine of n's group gid until release is called,
// as a busy one is: reports for it wait meanwhile.
func HoldGroup(ctx context.Context, n *Node, gid string) (release func(), err error) {
	g, err := n.groupByText(gid)
	if err != nil {
		return nil, err
	}
	held, done := make(chan struct{}), make(chan struct{})
	go func() {
		_ = g.do(ctx, func() {
			close(held)
			<-done
		})
	}()
	select {
	case <-held:
	case <-ctx.Done():
		close(done)
		return nil, ctx.Err()
	}
	return func() { close(done) }, nil
}

// NoteSuspicion hands n's group gid a report of member from, as the
// transport does with a ping's flags: that it suspects the host of its
// current view (suspect), or not.
func NoteSuspicion(n *Node, gid string, from [32]byte, suspect bool) error {
	g, err := n.groupByText(gid)
	if err != nil {
		return err
	}
	var x pingExtra
	if suspect {
		x.flags = pingSuspect
	}
	g.noteSuspicion(from, g.ownView(), x)
	return nil
}

// Suspecting returns the members whose suspicion n's group gid holds, once
// it has taken the reports waiting.
func Suspecting(ctx context.Context, n *Node, gid string) ([][32]byte, error) {
	g, err := n.groupByText(gid)
	if err != nil {
		return nil, err
	}
	var out [][32]byte
	err = g.do(ctx, func() {
		g.takeSuspicions()
		for k := range g.suspicions {
			out = append(out, k)
		}
	})
	return out, err
}

// NotePastSuspicion hands n's group gid a report of member from, as the
// transport does with a ping's flags: that it suspected host, the host of
// term, when it left that view for good (it deposed that host).
func NotePastSuspicion(n *Node, gid string, from [32]byte, term uint64, host [32]byte) error {
	g, err := n.groupByText(gid)
	if err != nil {
		return err
	}
	g.noteSuspicion(from, raftView{}, pingExtra{flags: pingPast, past: raftView{term: term, lead: state.RaftID(host)}})
	return nil
}

// PastSuspicionCounts reports whether n's group gid counts member from's
// past suspicion, of the view it names, once it has taken the reports
// waiting.
func PastSuspicionCounts(ctx context.Context, n *Node, gid string, from [32]byte) (bool, error) {
	g, err := n.groupByText(gid)
	if err != nil {
		return false, err
	}
	var counts bool
	err = g.do(ctx, func() {
		g.takeSuspicions()
		if p, ok := g.past[from]; ok {
			_, counts = g.pastOf(p.view, time.Now())[from]
		}
	})
	return counts, err
}

// LostLogReport hands n's group gid the report a peer queue makes when
// member refused n's heartbeat of term as committing beyond its log, and
// returns the voter raft is handing leadership to afterwards (0: none).
func LostLogReport(ctx context.Context, n *Node, gid string, member [32]byte, term uint64) (transferee uint64, err error) {
	g, err := n.groupByText(gid)
	if err != nil {
		return 0, err
	}
	err = g.do(ctx, func() {
		g.onLostLog(member, term, time.Now())
		transferee = g.rn.Status().LeadTransferee
	})
	return transferee, err
}

// SilentLogOf returns the index of the last log entry that member from
// (its public signing key) reported to n's group gid in this silence of
// n's host, as n's choice of the backup sees it (silentLogs), and whether
// there is one: none while n still hears its host, and none from a report
// received before n last heard it.
func SilentLogOf(ctx context.Context, n *Node, gid string, from [32]byte) (index uint64, ok bool, err error) {
	g, err := n.groupByText(gid)
	if err != nil {
		return 0, false, err
	}
	err = g.do(ctx, func() {
		ids := g.memberIDs()
		var l election.LogPos
		if l, ok = g.silentLogs(time.Now(), ids)[ids[from]]; ok {
			index = l.Index
		}
	})
	return index, ok, err
}
