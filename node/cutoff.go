package node

import (
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/election"
)

// Noticing that the host is cut off. A cut link (a pulled cable, a router
// that died, a laptop lid closed) refuses nothing: the host simply goes
// silent, and raft alone waits out its election timeout, then the other
// voters' leases (docs/PROTOCOL.md, "A host whose process is gone"). A
// follower that has not heard from its host (raft messages or a pong) for
// silentAfter says so in its pings and pongs (pingSilent, for the host of
// the raft view they carry), and pings the other voters for theirs. Once a majority of the voters, itself
// among them, say so of the same host in the same term, and no other
// election is under way, the host's best backup takes over with the
// campaign the others join at once (election.Observations.CutOff), as when
// the host's process is gone. A majority that cannot hear the host means a
// host that cannot commit: nothing a healthy host could do is interrupted,
// and it is still a raft election, which keeps raft's safety whatever the
// reports say. One member alone, wrong or lying, changes nothing: a report
// counts only with a majority's.

// silentHeartbeats is how many heartbeats of silence make a host silent.
const silentHeartbeats = 4

// lateTicks is how long, in heartbeats, a follower whose own raft tick
// came late (by more than a heartbeat) counts no host silent: its machine
// is overloaded, or its process stood still, and the silence may be its
// own (its goroutines ran late, the host's heartbeats wait unread). Raft's
// election timeout still acts. Once it has answered its host since, what
// waited is read, and a silence from then on is the host's (ownLateness).
const lateTicks = 8

// silentReport is a member's latest report that it no longer hears the host
// of view.
type silentReport struct {
	view raftView
	at   time.Time
	log  *election.LogPos // its last log entry, if the report gave it
}

// silentAfter is how long this node must not hear from its host (whose
// peer record is p, or nil) before it counts it silent: silentHeartbeats
// heartbeats, or two of its round trips to the host where that is longer (a
// peer queue carries one batch per round trip, so across a slow link the
// heartbeats come that far apart).
func (g *group) silentAfter(p *peerLatency) time.Duration {
	return g.quietAfter(p, silentHeartbeats)
}

// quietAfter is heartbeats heartbeat intervals, or two round trips to the
// member whose peer record is p (or nil) where that is longer.
func (g *group) quietAfter(p *peerLatency, heartbeats int) time.Duration {
	d := time.Duration(heartbeats) * g.timing.heartbeat()
	if p != nil {
		if ms, ok := p.est.Value(); ok {
			d = max(d, 2*time.Duration(ms*float64(time.Millisecond)))
		}
	}
	return d
}

// tickOverdue reports whether this node's raft tick is late at now: more
// than a heartbeat past its time (its goroutines ran late, or its process
// stood still).
func (g *group) tickOverdue(now time.Time) bool {
	return !g.lastTick.IsZero() && now.Sub(g.lastTick) > g.timing.Tick+g.timing.heartbeat()
}

// hostHeard returns when this node last heard from its host (whose peer
// record is p, or nil): answered its heartbeat or append, or had a pong from
// it. The pong counts because a host that is alive but slow (flooded, its
// disk busy, its machine loaded) may send its heartbeats late while it still
// answers the probe of a silent host (gone.go); a host cut off answers
// neither.
func (g *group) hostHeard(p *peerLatency) time.Time {
	heard := g.pl.leaderHeard
	if p != nil && p.lastPong.After(heard) {
		heard = p.lastPong
	}
	return heard
}

// hostPeer returns the placement record of the member with raft id lead,
// or nil.
func (g *group) hostPeer(lead uint64) *peerLatency {
	if k, _, ok := g.memberByRaft(lead); ok {
		return g.pl.peers[k]
	}
	return nil
}

// watchedHost is the host whose silence this node watches, as a raft view
// (lead 0: none): the leader it follows, or, while it follows none in the
// term in which it last followed another member, that member. Raft forgets
// a follower's leader when the follower's own election timer fires (a
// pre-candidate keeps its term: its pre-vote asks for the next) and when
// its pre-vote is refused, and the host is no less silent for that. Before,
// such a member stopped counting the silence: its pings said nothing, so
// the others could lack their majority, and as the best backup it never
// took over. In BenchmarkWAN a host cut 80 ms after its own election left
// the one follower that had its entries a pre-candidate, whose pre-vote the
// others' leases ignored; two others then split the next term's vote, and
// the group had no host for 2.57 s (docs/BENCHMARKS.md).
func (g *group) watchedHost() raftView {
	if g.leader != raft.None {
		return raftView{term: g.term, lead: g.leader}
	}
	if g.role != raft.StateLeader && g.lastHost.term == g.term {
		return g.lastHost
	}
	return raftView{}
}

// noteHost records, after each Ready, the other member this node follows
// (watchedHost); a leader follows nobody.
func (g *group) noteHost() {
	switch {
	case g.role == raft.StateLeader:
		g.lastHost = raftView{}
	case g.leader != raft.None && g.leader != g.raftID:
		g.lastHost = raftView{term: g.term, lead: g.leader}
	}
}

// hostSilence reports whether this node, not hosting, has not heard from
// its host (watchedHost) for silentAfter, and when it last heard from it.
func (g *group) hostSilence(now time.Time) (silent bool, heard time.Time) {
	host := g.watchedHost()
	if g.role == raft.StateLeader || host.lead == raft.None || g.left || g.fork != nil || g.pl.leaderHeard.IsZero() || g.ownLateness(now) {
		return false, time.Time{}
	}
	p := g.hostPeer(host.lead)
	heard = g.hostHeard(p)
	return now.Sub(heard) >= g.silentAfter(p), heard
}

// ownLateness reports whether this node's own late tick may explain its
// host's silence: it came less than lateTicks heartbeats ago, and either
// this node has not answered its host since, or its ticks came late more
// than once in a row (an overloaded machine, whose goroutines keep running
// late: the guard holds its whole time, as 684f44f meant; a late tick
// right after a standstill of an election timeout or more does not count,
// since reading what waited makes it late). A member whose process stood
// still once (a laptop asleep, a stopped process) answers its host's first
// heartbeat after it within one: when its host is cut off just then, it is
// among the majority that says so a heartbeat later, not lateTicks later. In `demes bench failover`, which cuts the new host as
// soon as the member stopped before it is back, that member kept out of
// the majority for the first 400 ms, and with three members the failover
// waited for it: 0.42 s median.
func (g *group) ownLateness(now time.Time) bool {
	return now.Before(g.lateUntil) && (g.pl.lateAgain || !g.pl.leaderHeard.After(g.pl.stall.to))
}

// watchSilence runs on every raft tick: it publishes whether this node
// counts its host silent, for its pings and pongs, and while it does, pings
// the other voters (at most once a heartbeat) so that their pongs say
// whether they hear the host. Once a majority does not, placement steps at
// once.
func (g *group) watchSilence(now time.Time) {
	if g.tickOverdue(now) {
		// Late again within lateTicks of a late tick that was no long
		// standstill (after one, the backlog makes the next ticks late).
		prev := g.pl.stall
		g.pl.lateAgain = now.Before(g.lateUntil) && prev.to.Sub(prev.from) < g.timing.electionTimeout()
		g.lateUntil = now.Add(lateTicks * g.timing.heartbeat())
		g.noteStall(now)
	}
	g.lastTick = now
	if silent, _ := g.hostSilence(now); !silent {
		if g.silentView.Load() != nil {
			g.silentView.Store(nil)
			g.silentLog.Store(nil)
		}
		return
	}
	// The log first: a ping that says silent then carries it.
	if term, index, ok := g.lastStored(); ok {
		if l := g.silentLog.Load(); l == nil || *l != (election.LogPos{Term: term, Index: index}) {
			g.silentLog.Store(&election.LogPos{Term: term, Index: index})
		}
	}
	rv := g.watchedHost()
	if cur := g.silentView.Load(); cur == nil || *cur != rv {
		g.silentView.Store(&rv)
	}
	if g.hostCutOff(now) {
		g.placementStep(now)
		return
	}
	if now.Sub(g.lastSilentPing) < g.timing.heartbeat() {
		return
	}
	g.lastSilentPing = now
	v := g.view.Load()
	g.pingMembers(v, func(k [32]byte) bool {
		m := g.st.Members[k]
		return m != nil && m.Voter && m.RaftID != rv.lead
	})
}

// noteSilent records on the group's goroutine that member k no longer
// hears the host of view rv, with its last log entry if it gave it, and
// steps placement at once if that makes a majority.
func (g *group) noteSilent(k [32]byte, rv raftView, log *election.LogPos) {
	if _, ok := g.st.Members[k]; !ok {
		return
	}
	if g.silent == nil {
		g.silent = map[[32]byte]silentReport{}
	}
	now := time.Now()
	g.silent[k] = silentReport{view: rv, at: now, log: log}
	if g.hostCutOff(now) {
		g.placementStep(now)
	}
}

// hostCutOff reports whether a majority of the voters, this node among
// them, no longer hear the current host: this node for silentAfter, the
// others by a report about the same host and term received since this node
// last heard the host.
func (g *group) hostCutOff(now time.Time) bool {
	self := g.st.Members[g.n.self.Sign]
	if self == nil || !self.Voter || g.deposedRecently(now) {
		return false
	}
	silent, heard := g.hostSilence(now)
	if !silent {
		return false
	}
	rv := g.watchedHost()
	voters, quiet := 0, 0
	for k, m := range g.st.Members {
		if !m.Voter {
			continue
		}
		voters++
		switch r, ok := g.silent[k]; {
		case k == g.n.self.Sign:
			quiet++
		case m.RaftID == rv.lead:
		case ok && r.view == rv && r.at.After(heard):
			quiet++
		}
	}
	return quiet > voters/2
}

// silentLogs returns the last log entries of the voters, as they reported
// them in this silence of the host (reports about the current host and
// term received since this node last heard it), this node's own among
// them; nil while this node hears its host. Placement leaves a voter whose
// log is behind another's out of the choice of the backup, whose
// campaign the others' votes would refuse (election.Observations.Logs).
func (g *group) silentLogs(now time.Time, ids map[[32]byte]string) map[string]election.LogPos {
	silent, heard := g.hostSilence(now)
	if !silent {
		return nil
	}
	out := map[string]election.LogPos{}
	if id, ok := ids[g.n.self.Sign]; ok {
		if term, index, ok := g.lastStored(); ok {
			out[id] = election.LogPos{Term: term, Index: index}
		}
	}
	rv := g.watchedHost()
	for k, r := range g.silent {
		m := g.st.Members[k]
		if id, ok := ids[k]; ok && m != nil && m.Voter && k != g.n.self.Sign && r.log != nil && r.view == rv && r.at.After(heard) {
			out[id] = *r.log
		}
	}
	return out
}

// memberIDs returns the members' ids as strings, by identity key.
func (g *group) memberIDs() map[[32]byte]string {
	ids := make(map[[32]byte]string, len(g.st.Members))
	for k, m := range g.st.Members {
		ids[k] = m.ID.String()
	}
	return ids
}

// A host the voters deposed for censorship (censor.go) must not come back
// through the forced campaign above: it is often the best-placed member
// (that is how it came to host), so it ranks as the best backup whenever
// its successor goes quiet, and a forced campaign bypasses the leases that
// keep a healthy host in place. Two guards, one on each side: an honest
// deposed host knows it was deposed and refrains, and the voters drop its
// vote requests before raft sees them (a refused vote would still raise
// the term and unseat the host they follow).

const reasonShunnedVote = "vote request from a host the voters deposed"

// checkSelfDeposed runs when a member's suspicion report changes: if this
// node hosts and a majority of the voters suspect it in its term, it
// remembers that it was deposed, and forces no campaign for shunFor.
func (g *group) checkSelfDeposed() {
	if g.leader != g.raftID || g.raftID == raft.None {
		return
	}
	voters := g.st.Voters()
	cur := raftView{term: g.term, lead: g.raftID}
	// A voter that deposed this node says so as a past suspicion.
	if countSuspecting(voters, g.n.self.Sign, nil, cur, g.reportsOf(cur, time.Now())) < len(voters)/2+1 {
		return
	}
	if g.selfDeposed.IsZero() || time.Since(g.selfDeposed) >= shunFor {
		g.n.log.Warn().Str("group", g.id.String()).Uint64("term", g.term).
			Msg("a majority of the voters suspect this node of holding back messages; it will not force its way back as host")
	}
	g.selfDeposed = time.Now()
}

// deposedRecently reports whether this node saw the voters depose it within
// shunFor.
func (g *group) deposedRecently(now time.Time) bool {
	return !g.selfDeposed.IsZero() && now.Sub(g.selfDeposed) < shunFor
}

// dropShunnedVote reports whether m is a vote or pre-vote request from a
// member this node saw the voters depose within shunFor, to be dropped
// before raft sees it, so that it neither wins nor raises the term: always
// in a forced (transfer) campaign; in an ordinary one unless the
// candidate's log is ahead of this node's and this node has heard from no
// host for shunnedLogAhead election timeouts. A loaded machine lets leases
// lapse now and then, and an ordinary election would otherwise hand the
// group back to the censor; but when the deposed member alone holds the
// latest entries (the host after it is gone), no other member can be
// elected, and it must be.
func (g *group) dropShunnedVote(m *pb.Message) bool {
	t := m.GetType()
	if t != pb.MsgVote && t != pb.MsgPreVote || !g.withholdTransfer(m.GetFrom(), time.Now()) {
		return false
	}
	if t == pb.MsgVote && string(m.GetContext()) == campaignTransfer {
		return true
	}
	// A log ahead of this node's may be the only one that can be elected,
	// but is granted only once this node has heard from no host for
	// shunnedLogAhead election timeouts: a log one append ahead is common
	// (this node had yet to take the host's last append), and an election
	// the deposed member wins that way would hand it the group back
	// (TestDeposedHostNotHandedBack, seen on a quiet machine); the others
	// get those timeouts to win it first.
	quiet := time.Since(g.pl.leaderHeard) >= shunnedLogAhead*g.timing.electionTimeout()
	return !quiet || !g.logBehind(m.GetLogTerm(), m.GetIndex())
}

// shunnedLogAhead is how many election timeouts a voter must have heard
// from no host before it grants a deposed member's vote request for its
// longer log (dropShunnedVote).
const shunnedLogAhead = 3

// logBehind reports whether this node's log is behind one whose last entry
// has term and index, by raft's rule for granting votes (the later last
// term, then the longer log).
func (g *group) logBehind(term, index uint64) bool {
	lastTerm, last, ok := g.lastStored()
	return ok && (term > lastTerm || term == lastTerm && index > last)
}

// aheadOf reports whether this node's log is more up to date than one whose
// last entry has term and index, by the same rule.
func (g *group) aheadOf(term, index uint64) bool {
	lastTerm, last, ok := g.lastStored()
	return ok && (lastTerm > term || lastTerm == term && last > index)
}

// lastStored returns the term and index of this node's last stored entry
// (ok false if the store cannot say). An entry raft holds but has not
// written yet is not counted: the callers err on the side of no.
func (g *group) lastStored() (term, index uint64, ok bool) {
	index, err := g.storage.LastIndex()
	if err != nil {
		return 0, 0, false
	}
	term, err = g.storage.Term(index)
	if err != nil {
		return 0, 0, false
	}
	return term, index, true
}
