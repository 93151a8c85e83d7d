package node

import (
	"fmt"
	"maps"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/api"
	"github.com/demes/demes/state"
)

// Censorship (docs/PROTOCOL.md, "Censorship").
//
// A host can hold back one member's proposals while it commits everyone
// else's: raft gives a follower no way to tell a slow host from a hostile
// one. So each member watches its own messages. When one has waited longer
// than Config.CensorAfter under the same host (same term), while that host
// answers this node's pings and has committed other members' entries in
// the meantime, and the message is within this member's quota (a message
// held back by the quota is not proposed at all), this node suspects the
// host, tells its user, and says so in every ping and pong (a flag beside
// the raft view, which names the host and the term).
//
// Voters move leadership away from a host that a majority of them suspects
// in the same term: each such voter stops stepping that host's messages of
// that term and refuses its votes, so its followers' election timers run
// out and a member they do not suspect is elected. The suspicion lapses
// with the term.
//
// A member that leaves a host's view while it suspects that host (the term
// ends, or it deposed the host) goes on saying so for shunFor, as a past
// suspicion beside its raft view: the others may not have heard it in the
// term itself. A host that hands leadership over just before the voters
// count their majority, as placement may do by chance and a censor on
// purpose, is then still known for what a majority of the voters said of
// it, and not handed leadership back or voted back in (shunLate).
//
// A host that censors only a minority of the voters keeps its place: its
// victims see the alert, and the voters it serves see nothing wrong. A
// member cannot prove what it proposed to the host (the host could say it
// never got it), so one member's word does not move the others.

// censorWatch is this node's own suspicion of its host, on the group's
// goroutine.
type censorWatch struct {
	host raftView  // the host watched: its term and raft id
	from time.Time // when this node began to follow host
	// since is when this node's oldest waiting message (or change) began
	// to wait under host: the later of from and its first proposal. Not
	// when the outbox was last empty: under a steady load it never is,
	// and every member suspected an honest host CensorAfter into the load
	// (TestNoCensorshipSuspicionUnderSteadyLoad).
	since   time.Time
	otherAt time.Time // when another member's entry was last applied
	suspect bool
	// control is set while a membership or settings change this node
	// proposed (commitUntil) is not in the log yet: it is in once an
	// entry this node signed with a counter above control is applied.
	// controlAt is when it was proposed.
	control   uint64
	controlAt time.Time
}

// suspicionReport is a member's report of whether it suspects the leader of
// the raft view it sent, on its way to the group's goroutine.
type suspicionReport struct {
	key     [32]byte
	view    raftView
	suspect bool
	past    raftView // a past suspicion (pingPast); zero for none
}

const reasonDeposed = "message from a host the voters deposed"

// noteSuspicion hands a member's report (the flags of its ping or pong) to
// the group's goroutine. Safe from any goroutine; never blocks. Each
// member's latest report waits for the goroutine in its own slot: a member
// that floods pings replaces only its own, and cannot crowd out the others'
// (a shared queue dropped what did not fit, so that the honest voters'
// suspicions went stale, and no deposition formed).
func (g *group) noteSuspicion(key [32]byte, rv raftView, x pingExtra) {
	r := suspicionReport{key: key, view: rv, suspect: x.flags&pingSuspect != 0}
	if x.flags&pingPast != 0 {
		r.past = x.past
	}
	var heard raftView
	if h := g.heardPast.Load(); h != nil {
		heard = (*h)[key]
	}
	cur := g.suspected.Load()
	// News: a suspicion, one to clear, or a past suspicion (repeated, it
	// keeps counting for the view it names: see pastOf).
	if !r.suspect && (cur == nil || !(*cur)[key]) && heard == r.past && r.past.lead == raft.None {
		return // most pings
	}
	g.suspMu.Lock()
	if g.suspPending == nil {
		g.suspPending = map[[32]byte]suspicionReport{}
	}
	g.suspPending[key] = r
	g.suspMu.Unlock()
	select {
	case g.suspWake <- struct{}{}:
	default:
	}
}

// takeSuspicions records the members' reports waiting, on the group's
// goroutine.
func (g *group) takeSuspicions() {
	g.suspMu.Lock()
	pending := g.suspPending
	g.suspPending = nil
	g.suspMu.Unlock()
	for _, r := range pending {
		g.onSuspicion(r)
	}
}

// onSuspicion records a member's report, on the group's goroutine.
func (g *group) onSuspicion(r suspicionReport) {
	if r.suspect {
		g.suspicions[r.key] = r.view
		if g.suspAt == nil {
			g.suspAt = map[[32]byte]time.Time{}
		}
		g.suspAt[r.key] = time.Now()
	} else {
		delete(g.suspicions, r.key)
		delete(g.suspAt, r.key)
	}
	switch old, ok := g.past[r.key]; {
	case r.past.lead == raft.None:
		// A member without a past suspicion in its report has none any
		// more (it came back to that view, or its deposition lapsed).
		if ok {
			delete(g.past, r.key)
			g.publishPast()
		}
	case ok && old.view == r.past:
		old.heard = time.Now() // repeated: it goes on counting (pastOf)
		g.past[r.key] = old
	default:
		if g.past == nil {
			g.past = map[[32]byte]pastReport{}
		}
		now := time.Now()
		g.past[r.key] = pastReport{view: r.past, at: now, heard: now}
		g.publishPast()
	}
	g.publishSuspected()
	g.checkDeposed()
	g.checkSelfDeposed()
	g.shunLate(time.Now())
}

// publishSuspected publishes which members report a suspicion, so that the
// transport passes on only the reports that change something.
func (g *group) publishSuspected() {
	m := make(map[[32]byte]bool, len(g.suspicions))
	for k := range g.suspicions {
		m[k] = true
	}
	g.suspected.Store(&m)
}

// pingExtra is what this node's pings and pongs to member to carry after
// its raft view. Safe from any goroutine.
func (g *group) pingExtra(rv raftView, to [32]byte) pingExtra {
	x := pingExtra{statement: g.statementFrame()}
	g.ownReadMark(&x, to)
	// Only while this node follows no host, when a restored member's
	// vote for it may be asked for: a node from before the flag rejects
	// the pings that carry it.
	if v := g.view.Load(); v != nil && v.leader == 0 && v.pairWith != ([32]byte{}) && v.pairWith == to {
		x.flags |= pingPair
	}
	// The flag is about the host of the view it travels with: a suspicion
	// of an earlier host, not cleared yet, is not sent as one of this one.
	if s := g.suspecting.Load(); s != nil && *s == rv {
		x.flags |= pingSuspect
	}
	if s := g.silentView.Load(); s != nil && *s == rv {
		x.flags |= pingSilent
		if l := g.silentLog.Load(); l != nil {
			x.flags |= pingLog
			x.log = *l
			x.log.Index += g.n.logLie.Load()
		}
	}
	if p := g.pastSuspecting.Load(); p != nil && *p != rv {
		x.flags |= pingPast
		x.past = *p
	}
	return x
}

// watchCensorship updates this node's suspicion of its host. It runs at
// every upkeep.
func (g *group) watchCensorship(now time.Time) {
	// First, while this node follows no host (it deposed it, so raft
	// lost its leader here), whether the deposition still has its
	// majority.
	g.lapseDeposed(now)
	host := raftView{term: g.term, lead: g.leader}
	g.notePastSuspect(host, now)
	// A moment without a leader in the same term (a pre-vote this node
	// runs, a host gone quiet) leaves the watch of that host as it is:
	// reset, it let a host that silenced its victims now and then keep
	// them from ever suspecting it, and one that fell silent before the
	// voters counted their majority leave no past suspicion behind, and
	// be handed leadership back (TestCensorCannotEscapeBySilence).
	if host.lead == raft.None && host.term == g.cw.host.term && g.cw.host.lead != raft.None && g.fork == nil && !g.left {
		return
	}
	// The suspicion ends with the view it was of: cleared before the
	// watch is reset, which would otherwise leave it published, and
	// flagged again in every ping once this node is back in that view
	// (after a deposition lapsed), long after its message committed.
	if host.lead == raft.None || host.lead == g.raftID || g.fork != nil || g.left {
		g.setSuspect(false)
		g.cw = censorWatch{host: host}
		return
	}
	if g.cw.host != host {
		g.setSuspect(false)
		g.cw = censorWatch{host: host, from: now, control: g.cw.control, controlAt: g.cw.controlAt, otherAt: g.cw.otherAt}
	}
	var oldest time.Time
	if g.cw.control != 0 {
		oldest = g.cw.controlAt
	}
	if t := g.changes.oldest(); !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
		oldest = t
	}
	for _, p := range g.outbox {
		if !p.held && !p.proposed.IsZero() && !p.waitFrom.IsZero() && (oldest.IsZero() || p.waitFrom.Before(oldest)) {
			oldest = p.waitFrom
		}
	}
	if oldest.IsZero() {
		g.cw.since = time.Time{}
		g.setSuspect(false)
		return
	}
	g.cw.since = oldest
	if oldest.Before(g.cw.from) {
		g.cw.since = g.cw.from
	}
	due := now.Sub(g.cw.since) >= g.n.cfg.CensorAfter && g.cw.otherAt.After(g.cw.since)
	// A host that does not answer is not suspected anew (it may be cut
	// off, not censoring), but one suspected already stays so: falling
	// silent ended the suspicion, so that a censor that went quiet before
	// the voters counted left none behind (TestCensorCannotEscapeBySilence,
	// under load, where the pongs stop before raft loses the host).
	g.setSuspect(due && (g.hostAnswers(now) || g.cw.suspect))
}

// noteControlProposed records that commitUntil proposed a change signed
// after counter from, on the group's goroutine: until an entry this node
// signed after from is applied, the change counts as waiting, like a
// queued message (a host may refuse its own removal).
func (g *group) noteControlProposed(from uint64) {
	if g.cw.control == 0 {
		g.cw.control, g.cw.controlAt = from, time.Now()
	}
}

// noteApplied updates the watch for an applied entry, accepted or not:
// another member's counts as the host at work, one of this node's signed
// after a waiting change's start ends that wait.
func (g *group) noteApplied(res state.Result) {
	if res.Env == nil {
		return
	}
	if res.Env.Sender != g.n.self.Sign {
		g.cw.otherAt = time.Now()
		return
	}
	if g.cw.control != 0 && res.Env.Counter > g.cw.control {
		g.cw.control = 0
	}
	g.changes.applied(res.Env.Counter)
}

// hostAnswers reports whether the host answered this node's pings lately:
// a host this node cannot reach is not censoring it.
func (g *group) hostAnswers(now time.Time) bool {
	k, ok := g.view.Load().byRaft[g.leader]
	if !ok {
		return false
	}
	p := g.pl.peers[k]
	return p != nil && !p.lastPong.IsZero() && now.Sub(p.lastPong) < 3*g.n.cfg.PingInterval && p.lastPong.After(g.cw.since)
}

// setSuspect records this node's suspicion and tells the user when it
// changes.
func (g *group) setSuspect(on bool) {
	if g.cw.suspect == on {
		return
	}
	g.cw.suspect = on
	if on {
		h := g.cw.host
		g.suspecting.Store(&h)
	} else {
		g.suspecting.Store(nil)
	}
	if on {
		g.n.log.Warn().Str("group", g.id.String()).Uint64("term", g.cw.host.term).
			Dur("waiting", time.Since(g.cw.since)).Msg("the host has not committed this node's messages while it committed others'; suspecting it of censorship")
	}
	g.checkDeposed()
	g.publish()
	g.n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
}

// suspectingVoters counts the voters that suspect the current host in the
// current term, this node included, and how many make a majority.
func (g *group) suspectingVoters() (n, needed int) {
	voters := g.st.Voters()
	var mine *raftView
	if g.cw.suspect {
		mine = &g.cw.host
	}
	// A voter that deposed the host, and so no longer follows it, says so
	// as a past suspicion: it counts as much as its suspicion did.
	cur := raftView{term: g.term, lead: g.leader}
	return countSuspecting(voters, g.n.self.Sign, mine, cur, g.reportsOf(cur, time.Now())), len(voters)/2 + 1
}

// heardSuspicions returns the members' suspicions that their pings or pongs
// repeated lately: within three ping intervals, or CensorAfter if longer
// (what it takes to suspect in the first place). A member that went down or
// out of reach while it suspected the host stops counting then. Kept, its
// last report held a deposition for good: the deposing voter, counting it,
// never lapsed, and dropped the deposed host's vote requests while that host
// alone held the longest log, so nobody could be elected until that member
// came back (TestDepositionLapsesWithoutAGoneVoter).
func (g *group) heardSuspicions(now time.Time) map[[32]byte]raftView {
	fresh := g.suspicionFresh()
	var out map[[32]byte]raftView
	for k := range g.suspicions {
		if now.Sub(g.suspAt[k]) < fresh {
			continue
		}
		if out == nil {
			out = maps.Clone(g.suspicions)
		}
		delete(out, k)
	}
	if out == nil {
		return g.suspicions
	}
	return out
}

// suspicionFresh is how long a member's suspicion counts after its pings
// or pongs last repeated it: three ping intervals, or CensorAfter if longer.
func (g *group) suspicionFresh() time.Duration {
	return max(3*g.n.cfg.PingInterval, g.n.cfg.CensorAfter)
}

// countSuspecting counts the voters that suspect the host of view cur: self
// if mine is that view, each other voter whose latest report is. The host
// itself never counts, whatever it reported (a report from before it led
// is about its own predecessor).
func countSuspecting(voters [][32]byte, self [32]byte, mine *raftView, cur raftView, reports map[[32]byte]raftView) int {
	n := 0
	for _, k := range voters {
		switch {
		case state.RaftID(k) == cur.lead:
		case k == self:
			if mine != nil && *mine == cur {
				n++
			}
		case reports[k] == cur:
			n++
		}
	}
	return n
}

// checkDeposed deposes the current host once a majority of the voters
// suspects it in its term (this node must be a voter, and not the host).
func (g *group) checkDeposed() {
	g.lapseDeposed(time.Now())
	if g.leader == raft.None || g.leader == g.raftID || g.deposed.term >= g.term && g.deposed.lead == g.leader {
		return
	}
	if me := g.st.Members[g.n.self.Sign]; me == nil || !me.Voter {
		return
	}
	if n, needed := g.suspectingVoters(); n >= needed {
		g.deposed = raftView{term: g.term, lead: g.leader}
		g.lapsing = time.Time{}
		if g.shunned == nil {
			g.shunned = map[uint64]time.Time{}
		}
		g.shunned[g.leader] = time.Now()
		g.fig.deposed.Add(1)
		g.n.log.Warn().Str("group", g.id.String()).Uint64("term", g.term).Int("voters", n).
			Msg("a majority of the voters suspects the host of censorship; no longer following it")
		g.publish()
		g.n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
	}
}

// lapseDeposed follows the deposed host again once, for CensorAfter, fewer
// than a majority of the voters suspect it, counting this node as one that
// does: its own suspicion says nothing any more, since it drops the host's
// appends and so sees none of its messages committed. Without this, a
// deposition counted from a suspicion that soon cleared (another voter's
// messages were only slow) would outlive its majority: the other voters
// keep the host, the term does not end, and this node stays cut off from
// the group until it does. Placement still withholds handovers to that
// host (shunned).
func (g *group) lapseDeposed(now time.Time) {
	d := g.deposed
	if d.lead != raft.None && g.leader != raft.None && g.leader != d.lead && g.term > d.term {
		// Another host leads now: the deposition ends with its term.
		// Kept, it would drop the deposed member's votes for good, and
		// when that member alone holds the latest entries (the host after
		// it is gone), no other could ever be elected.
		g.deposed, g.lapsing = raftView{}, time.Time{}
		return
	}
	if d.lead == raft.None || d.term != g.term {
		g.lapsing = time.Time{}
		return
	}
	voters := g.st.Voters()
	if countSuspecting(voters, g.n.self.Sign, &d, d, g.heardSuspicions(now)) >= len(voters)/2+1 {
		g.lapsing = time.Time{}
		return
	}
	if g.lapsing.IsZero() {
		g.lapsing = now
		return
	}
	if now.Sub(g.lapsing) < g.n.cfg.CensorAfter {
		return
	}
	g.deposed, g.lapsing = raftView{}, time.Time{}
	// Nor does this node count as suspecting it any more: it follows it.
	if g.pastSuspect == d {
		g.clearPastSuspect()
	}
	g.n.log.Warn().Str("group", g.id.String()).Uint64("term", d.term).
		Msg("a majority of the voters no longer suspects the host it deposed; following it again")
	g.publish()
	g.n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
}

// dropDeposed reports whether m, a peer's raft message, comes from a host
// the voters deposed and is to be dropped: its leader messages of the term
// it was deposed in, and its requests for votes, until another host is
// elected.
func (g *group) dropDeposed(m *pb.Message) bool {
	d := g.deposed
	if d.lead == raft.None || m.GetFrom() != d.lead {
		return false
	}
	if g.leader != raft.None && g.leader != d.lead && g.term > d.term {
		g.deposed = raftView{} // another host leads now: the suspicion lapsed
		return false
	}
	switch m.GetType() {
	case pb.MsgApp, pb.MsgHeartbeat, pb.MsgSnap:
		return m.GetTerm() <= d.term
	case pb.MsgVote, pb.MsgPreVote:
		// In its term. Past it, with no host elected yet, the shun
		// decides (dropShunnedVote), which grants a longest log after
		// a while: dropped for good, and with the voter that would
		// have been elected gone, nobody could be.
		return g.term == d.term
	}
	return false
}

// censorAlert words the suspicion for the user, in view v; nil when there
// is none.
func (g *group) censorAlert(v *view) *api.CensorAlert {
	lead, d := g.leader, g.deposed
	// A voter that deposed the host drops its heartbeats, so its raft soon
	// names no host in that term: the deposition stands all the same, and
	// is what the user sees, not "0 of the 2 voters needed suspect it".
	deposed := d.lead != raft.None && d.term == g.term && (d.lead == g.leader || g.leader == raft.None)
	var n, needed int
	if deposed && g.leader == raft.None {
		voters := g.st.Voters()
		lead = d.lead
		n, needed = countSuspecting(voters, g.n.self.Sign, &d, d, g.reportsOf(d, time.Now())), len(voters)/2+1
	} else {
		n, needed = g.suspectingVoters()
	}
	if !g.cw.suspect && n == 0 && !deposed {
		return nil
	}
	a := &api.CensorAlert{Voters: n, Needed: needed, Deposed: deposed}
	host := "the host"
	if k, ok := v.byRaft[lead]; ok {
		if id, who, ok := v.memberLabel(k); ok {
			a.Host, host = id.String(), who+" (the host)"
		}
	}
	switch {
	case g.cw.suspect:
		a.Since = g.cw.since.UTC()
		a.Message = fmt.Sprintf("%s has not put what you sent (messages or changes) in the group's order for %s, while it did other members'. ", host, time.Since(g.cw.since).Round(time.Second))
	default:
		a.Message = fmt.Sprintf("Other members say %s holds back their messages. ", host)
	}
	if deposed {
		a.Message += "A majority of the voters agrees: they no longer follow it, and another member takes over."
	} else {
		a.Message += fmt.Sprintf("%d of the %d voters needed suspect it; until a majority does, it stays the host.", n, needed)
	}
	return a
}

// shunFor is how long placement does not hand leadership back to a host
// the voters deposed: a censoring host is often the best-placed member
// (that is how it became host), and would otherwise be handed leadership
// back at the next placement step and censor again. Long enough for that;
// short enough that an honest host suspected under overload gets its place
// back.
const shunFor = 10 * time.Minute

// withholdTransfer reports whether a leadership handover to the member
// with raft id to is withheld now, because this node saw the voters depose
// it within shunFor. It forgets older depositions.
func (g *group) withholdTransfer(to uint64, now time.Time) bool {
	at, ok := g.shunned[to]
	if !ok {
		return false
	}
	if now.Sub(at) >= shunFor {
		delete(g.shunned, to)
		return false
	}
	return true
}
