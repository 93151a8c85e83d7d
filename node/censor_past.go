package node

import (
	"maps"
	"time"

	"go.etcd.io/raft/v3"
)

// Past suspicions (docs/PROTOCOL.md, "Censorship"): a voter that leaves a
// host's view for good while it suspects that host goes on saying so, and
// the others count a majority of such suspicions even after the view
// ended, so that a censor that hands leadership over, or falls silent,
// just before the voters count is still shunned.

// pastReport is a member's latest past suspicion, when it came, and when
// the member's pings or pongs last repeated it.
type pastReport struct {
	view      raftView
	at, heard time.Time
}

// publishPast publishes the members' past suspicions, for noteSuspicion to
// pass on only the reports that change them, and the status that counts
// them.
func (g *group) publishPast() {
	h := make(map[[32]byte]raftView, len(g.past))
	for k, p := range g.past {
		h[k] = p.view
	}
	g.heardPast.Store(&h)
	g.publish()
}

// reportsOf returns the members' suspicions that count for view v: those
// their pings or pongs repeat lately (heardSuspicions) and, over them, their
// past suspicions of v (pastOf). countSuspecting counts those of v.
func (g *group) reportsOf(v raftView, now time.Time) map[[32]byte]raftView {
	reports := g.heardSuspicions(now)
	if p := g.pastOf(v, now); len(p) > 0 {
		reports = maps.Clone(reports)
		maps.Copy(reports, p)
	}
	return reports
}

// pastOf returns the members whose past suspicion is of view v and counts:
// reported within shunFor of now, and repeated by their pings or pongs
// lately, as a suspicion must be (suspicionFresh). A voter that is up
// repeats its past suspicion for as long as it stands. Kept for shunFor
// after its voter went down, it counted with any one more suspicion: a
// victim of the host deposed it alone, again after each lapse, and once
// the term ended (or while this node's raft named no host) shunned it alone
// (TestGonePastSuspicionStopsCounting).
func (g *group) pastOf(v raftView, now time.Time) map[[32]byte]raftView {
	fresh := g.suspicionFresh()
	var out map[[32]byte]raftView
	for k, p := range g.past {
		if p.view == v && now.Sub(p.at) < shunFor && now.Sub(p.heard) < fresh {
			if out == nil {
				out = map[[32]byte]raftView{}
			}
			out[k] = v
		}
	}
	return out
}

// notePastSuspect keeps this node's suspicion of its host as a past one
// once it leaves that host's view (host is its view now), for its pings to
// carry for shunFor, and counts the voters that suspected it then.
func (g *group) notePastSuspect(host raftView, now time.Time) {
	// Left for good: a later term, or this node deposed it. Not a moment
	// without a leader in the same term (a pre-vote), after which this
	// node may follow the host again and its message commit.
	left := host.term > g.cw.host.term || g.deposed == g.cw.host
	if g.cw.suspect && g.cw.host != host && g.cw.host != g.pastSuspect && left {
		g.pastSuspect, g.pastSuspectAt = g.cw.host, now
		p := g.pastSuspect
		g.pastSuspecting.Store(&p)
		g.shunLate(now)
	}
	if host == g.pastSuspect || !g.pastSuspectAt.IsZero() && now.Sub(g.pastSuspectAt) >= shunFor {
		g.clearPastSuspect() // back in that view, its own watch says; or old
	}
	expired := false
	for k, p := range g.past {
		if now.Sub(p.at) >= shunFor {
			delete(g.past, k)
			expired = true
		}
	}
	if expired {
		g.publishPast()
	}
}

// clearPastSuspect withdraws this node's past suspicion.
func (g *group) clearPastSuspect() {
	if g.pastSuspect != (raftView{}) {
		g.pastSuspect, g.pastSuspectAt = raftView{}, time.Time{}
		g.pastSuspecting.Store(nil)
	}
}

// shunLate shuns, as checkDeposed does, the host of a view other than the
// current one that a majority of the voters suspected in it, counted only
// now from their suspicions of it, past or not, and this node's: the view
// ended before this node heard enough of them.
func (g *group) shunLate(now time.Time) {
	if me := g.st.Members[g.n.self.Sign]; me == nil || !me.Voter {
		return
	}
	cur := raftView{term: g.term, lead: g.leader}
	views := map[raftView]bool{g.pastSuspect: true}
	for _, p := range g.past {
		views[p.view] = true
	}
	voters := g.st.Voters()
	for v := range views {
		if v == cur || v.lead == raft.None {
			continue
		}
		if v.lead == g.raftID {
			// This node's own ended term: it was deposed, as
			// checkSelfDeposed would have counted in time.
			if !g.deposedRecently(now) && countSuspecting(voters, g.n.self.Sign, nil, v, g.pastOf(v, now)) >= len(voters)/2+1 {
				g.selfDeposed = now
				g.n.log.Warn().Str("group", g.id.String()).Uint64("term", v.term).
					Msg("a majority of the voters suspected this node of holding back messages when it hosted; it will not force its way back as host")
			}
			continue
		}
		if at, ok := g.shunned[v.lead]; ok && now.Sub(at) < shunFor {
			continue
		}
		var mine *raftView
		if g.pastSuspect == v {
			mine = &v
		}
		n := countSuspecting(voters, g.n.self.Sign, mine, v, g.reportsOf(v, now))
		if n < len(voters)/2+1 {
			continue
		}
		if g.shunned == nil {
			g.shunned = map[uint64]time.Time{}
		}
		g.shunned[v.lead] = now
		g.n.log.Warn().Str("group", g.id.String()).Uint64("term", v.term).Int("voters", n).
			Msg("a majority of the voters suspected an earlier host of censorship; leadership is not handed back to it")
	}
}
