package node

import (
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// A round trip that spans a silence measures the silence, not the network
// (Karn's rule, for a ping). When a host's process is stopped, or its link
// cut with the connections held open, the pings to it wait and are all
// answered when it comes back, each a sample about as long as the silence;
// the stopped process's own pings measure its standstill the same way.
// Enough of them fill the estimator's window (a median of five tolerates
// two), and the smoothed round trip then stretched raft's ticks (fitTicks)
// and the silence that makes a host cut off (silentAfter): in `demes bench
// failover`, after a few cuts of 0.4 to 1.5 s, the members measured 260
// to 820 ms round trips on loopback, ticks of 140 to 170 ms, and every
// other cut took 1.1 to 2 s to fail over instead of 0.4 s.
//
// So a pong still shows that its member lives, but its round trip is a
// sample only if less than half of it overlaps a silence this node saw:
// the member's raft messages overdue (markSilentPeers), no pong from it for
// a ping interval and more (notePongGap), or this node's own ticks late (its
// process stood still or starved). A machine that is only loaded keeps its
// samples: a late tick of a tenth of a second inside a round trip of a
// second is the network's delay as this node lives it, and the timeouts
// must stretch with it.

// overdueHeartbeats is how many heartbeat intervals a member's raft
// messages may be overdue before this node counts it silent for its
// samples: as long as the probe of a silent host waits (gone.go), half of
// what makes a host silent (silentHeartbeats).
const overdueHeartbeats = 2

// span is an interval of time; the zero span is empty.
type span struct{ from, to time.Time }

// overlap returns how long a and b overlap.
func (a span) overlap(b span) time.Duration {
	from, to := a.from, a.to
	if b.from.After(from) {
		from = b.from
	}
	if b.to.Before(to) {
		to = b.to
	}
	return max(to.Sub(from), 0)
}

// silences are a member's recent silences of one kind, the oldest first,
// none overlapping another. A member's last silence alone is not enough:
// the pongs held through a silence do not all arrive at once. On a loaded
// machine (two cores, race-enabled tests beside it) those of a 1.8 s hold
// came over 200 to 400 ms, and a gap of a ping interval and more between
// two of them was a new silence of a few milliseconds that replaced the
// hold's; the pongs after it, in flight through the whole hold, then
// overlapped no silence and were taken as samples of up to 2 s, and with
// them the member's estimate (and the windows that scale with it, and
// raft's ticks) rose to a second and more over links of 1 ms: 15 runs of
// 24 of TestHeldHostKeepsRoundTrips failed so, four at once with three
// busy loops beside them, and none of 24 with every silence kept.
type silences []span

// add records silence x, merged with the last recorded where they overlap
// or touch (each kind is recorded in order, and a silence that goes on is
// recorded again each tick, longer), and forgets those that ended more
// than silenceMemory before now: no pong in flight through them can still
// come (a ping is abandoned after peerRequestTimeout).
func (s *silences) add(x span, now time.Time) {
	if n := len(*s); n > 0 && !x.from.After((*s)[n-1].to) {
		last := &(*s)[n-1]
		if x.from.Before(last.from) {
			last.from = x.from
		}
		if x.to.After(last.to) {
			last.to = x.to
		}
	} else {
		*s = append(*s, x)
	}
	i := 0
	for i < len(*s) && now.Sub((*s)[i].to) > silenceMemory {
		i++
	}
	*s = (*s)[i:]
}

// overlap returns how long trip overlaps the silences.
func (s silences) overlap(trip span) time.Duration {
	var d time.Duration
	for _, x := range s {
		d += trip.overlap(x)
	}
	return d
}

// noteRaftHeard records, on the group's goroutine, when each raft peer's
// messages last arrived. It runs before any message is dropped (a deposed
// host's, a halted group's): a member that sends is not silent, whatever
// this node does with what it sent.
func (g *group) noteRaftHeard(msgs []*pb.Message) {
	if len(msgs) == 0 {
		return
	}
	if g.pl.raftHeard == nil {
		g.pl.raftHeard = map[uint64]time.Time{}
	}
	now := time.Now()
	for _, m := range msgs {
		g.pl.raftHeard[m.GetFrom()] = now
	}
}

// markSilentPeers runs on every raft tick. It records the silence of the
// members whose raft messages are overdue, from when they became overdue
// to now: those that sent any within silenceMemory. That is whoever talks
// to this node every heartbeat: its host, or as host its followers,
// whatever this node's role since (a host held apart steps down while it
// waits). A member that stopped talking because another came to lead (a
// handover: this node knew the new leader within the member's overdue
// time) is not silent. Followers exchange no raft messages with each
// other, so a follower records nothing about another here (notePongGap
// does). A member not heard for silenceMemory is forgotten: it can be
// silent no longer, and departed members would pile up otherwise.
func (g *group) markSilentPeers(now time.Time) {
	for id, heard := range g.pl.raftHeard {
		if now.Sub(heard) > silenceMemory {
			delete(g.pl.raftHeard, id)
		}
	}
	for k, p := range g.pl.peers {
		m := g.st.Members[k]
		if m == nil {
			continue
		}
		heard, ok := g.pl.raftHeard[m.RaftID]
		if !ok {
			continue
		}
		due := g.overdueAfter(p)
		quiet := now.Sub(heard)
		handedOver := m.RaftID != g.leader && g.pl.leaderSince.Sub(heard) <= due && !g.pl.leaderSince.Before(heard)
		if quiet > due && quiet <= silenceMemory && !handedOver {
			p.silence.add(span{heard.Add(due), now}, now)
		}
	}
}

// overdueAfter is how long the raft messages of the member whose latency is
// p may be late before this node counts it silent: overdueHeartbeats
// heartbeats, or two of its round trips where that is longer, since a peer
// queue carries one batch per round trip (as silentAfter; without it, a
// member 160 ms away is overdue between most of its messages, and most of
// its pongs would be left out: TestFarMemberNotOverdue).
func (g *group) overdueAfter(p *peerLatency) time.Duration {
	return g.quietAfter(p, overdueHeartbeats)
}

// silenceMemory is how long after a member's last raft message this node
// still records it silent: as long as a silence whose samples it drops may
// last.
const silenceMemory = 10 * time.Second

// notePongGap runs as a pong from the member whose latency is p arrives,
// before p.lastPong moves: when no pong came from it for longer than a ping
// interval and its overdue time, it was silent to this node's pings from
// then to now. That covers the members this node exchanges no raft
// messages with (a follower's fellow followers): when one stands still,
// all the pings in flight to it are answered together, the first a ping
// interval and more after the last pong before them. A member that moved
// farther away answers a ping interval apart all the same, each pong later
// by the same amount: its round trips are samples.
func (g *group) notePongGap(p *peerLatency, now time.Time) {
	due := g.n.cfg.PingInterval + g.overdueAfter(p)
	if !p.lastPong.IsZero() && now.Sub(p.lastPong) > due {
		p.unanswered.add(span{p.lastPong.Add(due), now}, now)
	}
}

// noteStall records that this node's raft tick came late: the group's
// goroutine stood still from the last tick to now.
func (g *group) noteStall(now time.Time) {
	g.pl.stall = span{g.lastTick, now}
}

// measures reports whether the pong of sample s, from the member whose
// latency is p, measured the network: whether less than half of its round
// trip overlaps the member's recent silences (to raft, to pings) and this
// node's last stall. It runs on the group's goroutine as the pong arrives,
// which may be before the late tick of a stall that just ended is taken: a
// tick overdue now counts as a stall to now.
func (g *group) measures(s rttSample, p *peerLatency, now time.Time) bool {
	// A halted group takes no ticks (fork.go): its last tick says nothing.
	if g.fork == nil && g.tickOverdue(now) {
		g.noteStall(now)
	}
	trip := span{s.sent, now}
	blind := max(p.silence.overlap(trip), p.unanswered.overlap(trip)) + trip.overlap(g.pl.stall)
	return 2*blind < now.Sub(s.sent)
}
