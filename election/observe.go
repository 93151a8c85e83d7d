package election

import "time"

// Intervals are the placement tunables a [Placer] works with. The node
// configures them; the placer only compares the times it is given with them.
type Intervals struct {
	// Ping is how often the caller pings every peer. A peer that has not
	// answered for three of them is dead (see [Dead]).
	Ping time.Duration
	// Latency is the least time between two latency maps this member
	// publishes, and the unit of the settling rules (see [Placer.Step]).
	Latency time.Duration
	// TransferCooldown is the least time between two leadership transfers,
	// and how long a transfer counts as under way.
	TransferCooldown time.Duration
	// Retry is the least time between two voter changes; a voter change
	// counts as in flight for two of them.
	Retry time.Duration
	// Hysteresis is how much better a member must be to take over from a
	// settled leader.
	Hysteresis Hysteresis
	// ElectionTimeout is raft's election timeout (its shortest: tick
	// times election ticks): how long a follower that has heard nothing
	// from its leader keeps refusing to vote for another. Zero turns off
	// the best backup's early campaign (see [Placer]).
	ElectionTimeout time.Duration
	// Heartbeat is raft's heartbeat interval. The best backup of a leader
	// whose process is gone campaigns once it has missed two heartbeats
	// (see [Placer]).
	Heartbeat time.Duration
}

// Member is one member of the group as the caller sees it at the moment of a
// step.
type Member struct {
	// ID is the member's id, as in [Input.Members].
	ID string
	// Order is the member's join order; orders are never reused, so that
	// every join raises the highest one.
	Order int
	// Voter says whether the member is a raft voter in the committed
	// configuration.
	Voter bool
	// Tracked says whether the leader's raft progress tracker has the
	// member (only meaningful on the leader).
	Tracked bool
	// CaughtUp says whether the leader's progress tracker sees the member's
	// log close enough to the commit index to vote or to take over (only
	// meaningful on the leader).
	CaughtUp bool
}

// Peer is what the caller measured of one other member: when it started
// pinging it, when the last good pong came back, and the smoothed RTT
// (see [Estimator]).
type Peer struct {
	Since    time.Time // when this member started pinging the peer
	LastPong time.Time // zero until a pong arrived
	// FailedSince is when the first ping that failed since LastPong
	// failed (no answer, or an error); zero if none has.
	FailedSince time.Time
	// Gone is when the transport last said, since LastPong, that nothing
	// listens at the peer's address any more: a refused connection (the
	// machine answered, the process is gone) or a closed libp2p
	// connection. A timeout, which a cut link gives too, is no such
	// report. Zero if there is none.
	Gone   time.Time
	RTT    float64 // milliseconds, when HasRTT
	HasRTT bool
	// Relayed says that this member reaches the peer, now, only through a
	// circuit relay.
	Relayed bool
}

// Observations is everything a [Placer] decides from: what the caller knows
// at the moment of the step. It is read, never kept or changed.
type Observations struct {
	// Self is this member's id.
	Self string
	// IsLeader says whether this member is the raft leader.
	IsLeader bool
	// HasLeader says whether this member knows a raft leader, itself or
	// another; without one it cannot publish.
	HasLeader bool
	// PreCandidate says that this member's own election timer fired and
	// its pre-vote is under way (raft's pre-candidate). Leader is then the
	// leader it followed in its term, if it knows one: the member whose
	// silence it still watches. raft starts no transfer campaign from a
	// pre-candidate, so as that leader's best backup it sends its pre-vote
	// again (see [Placer]).
	PreCandidate bool
	// Leader is the raft leader's member id, or "" when there is none or it
	// is not (yet) a member.
	Leader string
	// Term is raft's current term; TransferTerm is the term of this
	// member's last campaign that a leadership transfer started (zero if
	// none). A leader with Term == TransferTerm was put in its place by
	// placement.
	Term, TransferTerm uint64
	// LeaderHeard is when this member last heard from Leader (answered
	// its heartbeat or append); zero if not known. The best backup's
	// campaign is timed from it (see [Placer]).
	LeaderHeard time.Time
	// VoteGranted is when this member last granted another member a vote
	// or pre-vote: another election is under way.
	VoteGranted time.Time
	// CutOff says that a majority of the voters, this member among them,
	// no longer hear Leader (the caller's rule: node/cutoff.go): its best
	// backup takes over at once (see [Placer]).
	CutOff bool
	// Shunned names the members that must not take over through that
	// campaign: hosts the voters deposed lately (node/censor.go), this
	// member among them if it was. A forced campaign bypasses the leases
	// that keep a healthy host in place, and a deposed host is often the
	// best placed member.
	Shunned map[string]bool
	// Logs are the last log entries (raft term and index) the voters
	// reported while the leader was silent to them, this member's own
	// among them: what raft's vote rule will compare. A member whose
	// entry is behind another's cannot win the others' votes, so it is
	// no backup for the forced campaigns (see [Placer]). Nil, or a member
	// left out, when not known.
	Logs map[string]LogPos
	// Members lists the members in join order.
	Members []Member
	// MaxVoters is the group's voter cap (see [Input.MaxVoters]).
	MaxVoters int
	// MinVoters is the fewest voters a demotion may leave (the group's
	// rule: state.MinVoters); 0 means no floor.
	MinVoters int
	// Reports are the committed latency maps: reporter -> peer -> RTT in
	// milliseconds, between members only.
	Reports map[string]map[string]float64
	// Relayed are the committed maps' relayed marks (see [Input.Relayed]).
	Relayed map[string]map[string]bool
	// Peers maps each other member's id to what this member measured of
	// it. A member without an entry has not been pinged yet and is never
	// dead.
	Peers map[string]Peer
	// Started is when this member started placement for the group: nobody
	// is dead before it has had three ping intervals to answer.
	Started time.Time
	// Intervals are the configured tunables.
	Intervals Intervals
}

// LogPos is the last entry of a member's log: its raft term and index.
type LogPos struct {
	Term, Index uint64
}

// Behind reports whether a log ending at p is less up to date than one
// ending at q, by raft's rule for granting votes: the later last term,
// then the longer log.
func (p LogPos) Behind(q LogPos) bool {
	return p.Term < q.Term || p.Term == q.Term && p.Index < q.Index
}

// behind returns the members whose reported log (o.Logs) is behind
// another member's: raft's vote rule will refuse them, so they are left
// out of the choice of a backup. Nil when none is.
func (o *Observations) behind() map[string]bool { return LogsBehind(o.Logs) }

// LogsBehind returns the members of logs whose last entry is behind
// another's, by raft's vote rule; nil when none is.
func LogsBehind(logs map[string]LogPos) map[string]bool {
	var best LogPos
	for _, l := range logs {
		if best.Behind(l) {
			best = l
		}
	}
	var out map[string]bool
	for id, l := range logs {
		if l.Behind(best) {
			if out == nil {
				out = map[string]bool{}
			}
			out[id] = true
		}
	}
	return out
}

// input is the ranking input of o with the given dead set.
func (o *Observations) input(dead map[string]bool) Input {
	in := Input{Dead: dead, Reports: o.Reports, Relayed: o.Relayed, MaxVoters: o.MaxVoters}
	for _, m := range o.Members {
		in.Members = append(in.Members, m.ID)
	}
	return in
}

// membership sums up the member set so that a change of it shows: every
// join raises the highest join order and every leave lowers the count.
func (o *Observations) membership() [2]int {
	last := 0
	for _, m := range o.Members {
		last = max(last, m.Order)
	}
	return [2]int{len(o.Members), last}
}

// Dead returns the members that have not answered a ping for three ping
// intervals, as of now. Right after start nobody is dead yet: there was no
// time to ping. Nor is a member that just joined, until it has had as long
// to answer since this member started pinging it: counting it dead would
// leave it out of the ranking as if the ranking were complete.
func Dead(now time.Time, o Observations) map[string]bool {
	dead := map[string]bool{}
	grace := 3 * o.Intervals.Ping
	if now.Sub(o.Started) < grace {
		return dead
	}
	for _, m := range o.Members {
		if m.ID == o.Self {
			continue
		}
		p, ok := o.Peers[m.ID]
		switch {
		case !ok:
		case p.LastPong.IsZero():
			if now.Sub(p.Since) > grace {
				dead[m.ID] = true
			}
		case now.Sub(p.LastPong) > grace:
			dead[m.ID] = true
		}
	}
	return dead
}

// LatencyMap returns this member's current latency map: the smoothed RTT to
// every peer that has answered within the last three ping intervals.
func LatencyMap(now time.Time, o Observations) map[string]float64 {
	out := map[string]float64{}
	for _, m := range o.Members {
		p, ok := o.Peers[m.ID]
		if ok && m.ID != o.Self && p.HasRTT && now.Sub(p.LastPong) < 3*o.Intervals.Ping {
			out[m.ID] = p.RTT
		}
	}
	return out
}

// RelayedMap returns the peers of latency map cur that this member reaches
// only through a relay now; nil when there are none.
func RelayedMap(cur map[string]float64, o Observations) map[string]bool {
	var out map[string]bool
	for id := range cur {
		if o.Peers[id].Relayed {
			if out == nil {
				out = map[string]bool{}
			}
			out[id] = true
		}
	}
	return out
}

// pathsChanged reports whether the relayed marks of latency map cur
// differ from those the log holds for this member (prev): a peer that
// became reachable directly, or only through a relay, is worth a new map
// whatever its RTT did.
func pathsChanged(prev map[string]bool, cur map[string]float64, relayed map[string]bool) bool {
	for id := range cur {
		if prev[id] != relayed[id] {
			return true
		}
	}
	return false
}
