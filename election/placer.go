package election

import (
	"maps"
	"slices"
	"time"
)

// Placer is the placement policy of one member for one group, as a state
// machine: the caller steps it with the time and what it observes, and
// carries out the [Decision]. It reads no clock and does no I/O, so a test
// drives it with a hand-advanced clock. The zero Placer is ready to use.
//
// Every member steps its placer: every member publishes its latency map and
// remembers which leader it followed; only the leader transfers leadership
// and changes voters.
//
// # The leader's rules
//
// Hysteresis keeps a host that placement put in its place from being moved
// by noise: such a leader is settled, and hands over only to a member that
// [ShouldTransfer] names and that has stood as the candidate for two latency
// intervals, on a ranking that has stood still (no score changed for 10
// ping intervals and two latency intervals), so that leadership moves once,
// straight to where it belongs, while the latency maps arrive one by one.
// Should the maps never stand still, a candidate that has stood long enough
// is taken anyway (see ready).
//
// A leader that raft elected on its own (the creator, or whoever timed out
// first after a failure) was not put there by placement, and neither was any
// leader for a membership it was not placed for: such a leader is unsettled.
// It hands over to the member that tops the ranking, or settles if that is
// itself, without hysteresis, since with hysteresis whoever happens to lead
// would stay even when another member is better by less than the
// hysteresis. It acts only on complete rankings (see [Complete]), and only
// once the same member has been first in every complete ranking for two
// latency intervals, again on a ranking that has stood still: after a join
// or a latency change the maps arrive one by one and the ranking passes
// through intermediate states, and a host that settled in one of them would
// be kept there by hysteresis for good. The search has a deadline (see
// settleBy); past it, once no complete ranking has come for a while, the
// leader settles for what there is.
//
// After a failure the wait is not needed. A leader that raft elected while
// the membership stayed the same replaced the leader it followed before,
// which is gone from its point of view: it timed out waiting for it. The
// committed maps of the survivors, measured among themselves, stand as they
// are; only the lost leader's place in them is stale. So the new leader
// ranks at once without the lost leader, and if that ranking is complete
// and its top beats every other member by the hysteresis, hands over to its
// top (or settles if that is itself) at its first step, instead of waiting
// for every survivor to publish again and for the top to stand. A top within
// the hysteresis of another member could be a swap that noise in the old
// maps made, and hysteresis would keep it: then, and should the lost leader
// answer a ping after all, the leader falls back to the rules above.
//
// The best backup need not even wait for raft to elect someone else first.
// A follower whose ping to its leader fails knows the leader was gone by
// then, or since it last heard from it if that was earlier; once raft's
// election timeout has passed since (and the time the heartbeat takes
// longer to reach the farthest voter, see leaseSpread), every other
// follower has stopped hearing from the leader for as long and will grant
// votes. If the
// follower is a voter and tops the complete ranking without its leader, and
// has not granted a vote to another member's election since, it campaigns
// then, once per failure, instead of leaving the election to
// whoever times out first (after a random 1 to 2 election timeouts, and a
// split vote now and then) and handing over after. If the leader was alive
// after all, raft's pre-vote finds the followers still hearing from it and
// nothing changes.
//
// A backup must also be one the others can elect: raft grants a vote only
// to a candidate whose log is at least as up to date as the voter's own,
// and a forced campaign of a backup an append behind the others is refused,
// leaving the group to raft's timers (seconds across the internet). So the
// voters report their last log entries while the leader is silent to them
// ([Observations].Logs), and a member whose log is behind another's is left
// out of the choice of the backup, as if dead.
//
// Transfers and voter changes never overlap: a transfer waits until no
// voter change has been made for two retry intervals (the target cannot
// campaign until it has applied the change, and the transfer would be
// lost), and a voter change waits out the transfer cooldown. Transfers are
// at least the transfer cooldown apart, voter changes at least a retry
// interval apart, and each voter change is one [NextVoterChange].
type Placer struct {
	ranking  Ranking
	complete bool

	lastPublish   time.Time
	lastTransfer  time.Time
	lastVoterMove time.Time

	wasLeader  bool
	lastLeader string // the last other member seen leading
	// lost is the leader this one replaced by election, ranked without at
	// once; leaderSince is when this member became leader.
	lost        string
	leaderSince time.Time
	// due is set while a handover to the top without the lost leader
	// waits only for the target to catch up.
	due bool
	// campaigned is the failure of the leader's ping this member last
	// campaigned on: once per failure. cutCampaigned and cutTerm are the
	// last time it heard the leader, and the term, when it last campaigned
	// because a majority no longer did: once per silence of a leader.
	campaigned    time.Time
	cutCampaigned time.Time
	cutTerm       uint64

	candidate      string // the hysteresis path's candidate...
	candidateSince time.Time
	settled        bool
	settleBy       time.Time // after this, settle for hysteresis anyway
	top            string    // the member first in every complete ranking...
	topSince       time.Time // ...since this time
	completeAt     time.Time // the last complete ranking while unsettled
	membership     [2]int
	// stillSince is when the scores of the ranking last changed: every
	// transfer waits for a ranking that has stood still (see ready).
	stillSince time.Time
}

// Decision is what one step of a [Placer] asks the caller to do, and what
// it decided from.
type Decision struct {
	// Ranking is the ranking of the committed maps with Dead; Complete says
	// whether it is complete (see [Complete]).
	Ranking  Ranking
	Complete bool
	// Dead is the dead set from the pong times (see [Dead]).
	Dead map[string]bool
	// Publish, when not nil, is this member's latency map to propose; the
	// caller reports a successful proposal with [Placer.Published].
	// PublishRelayed marks the peers of Publish it reaches only through a
	// relay.
	Publish        map[string]float64
	PublishRelayed map[string]bool
	// TransferTo, when not "", is the member to hand leadership to.
	TransferTo string
	// Voters, when ChangeVoters is set, is the voter change to propose.
	Voters       VoterChange
	ChangeVoters bool
	// Campaign asks the caller to start a raft election (see [Placer]).
	Campaign bool
	// Force, with Campaign, asks for an election the other voters join
	// although they heard from the leader within their election timeout
	// (raft's leadership-transfer campaign): the leader's process is gone.
	Force bool
	// Wake, when not zero, is when the caller should step again even if
	// no tick comes by then: the best backup's campaign is due.
	Wake time.Time
	// Notes explain decisions worth a debug log line.
	Notes []string
}

// Published records that this member's latency map was proposed at now, so
// that the next one waits for the latency interval.
func (p *Placer) Published(now time.Time) { p.lastPublish = now }

// Pending reports whether a [Placer.Step] now, before the next tick, could
// act sooner than the tick would on a leader: it has become leader and the
// placer has not stepped since, or it leads after an election that lost the
// previous leader and the handover to the best backup waits only for raft's
// progress to show the target caught up (see the rules on [Placer]). The
// caller may step on any event it likes (a pong, say) while it holds.
func (p *Placer) Pending(isLeader bool) bool {
	return isLeader && (!p.wasLeader || p.due)
}

// Step is one placement tick, every ping interval: it publishes this
// member's latency map if it changed materially, ranks the members, and on
// the leader decides a leadership transfer or else a voter change.
func (p *Placer) Step(now time.Time, o Observations) Decision {
	d := Decision{Dead: Dead(now, o)}
	if o.HasLeader && now.Sub(p.lastPublish) >= o.Intervals.Latency {
		// Compare with the map the log holds for this member, not with the
		// last one proposed: a proposal can be lost without an error, and
		// the committed map, which every member ranks from, would then
		// stay stale until the measurements drift again.
		cur := LatencyMap(now, o)
		relayed := RelayedMap(cur, o)
		if len(cur) > 0 && (Material(o.Reports[o.Self], cur) || pathsChanged(o.Relayed[o.Self], cur, relayed)) {
			d.Publish, d.PublishRelayed = cur, relayed
		}
	}
	in := o.input(d.Dead)
	r := Rank(in)
	if !maps.Equal(r.Score, p.ranking.Score) {
		p.stillSince = now
	}
	p.ranking = r
	p.complete = Complete(in, p.ranking)
	d.Ranking, d.Complete = p.ranking, p.complete
	p.placeLeader(now, o, &d)
	p.campaign(now, o, &d)
	return d
}

// StepVoters is the voter side alone, run more often than [Placer.Step] so
// that a new group gets its voters quickly; it ranks with the ranking of the
// last Step and the dead set of now.
func (p *Placer) StepVoters(now time.Time, o Observations) Decision {
	d := Decision{Dead: Dead(now, o), Ranking: p.ranking, Complete: p.complete}
	p.placeVoters(now, o, &d)
	return d
}

// placeLeader is the leader's side of a step: a transfer to a better host,
// or else a voter change.
func (p *Placer) placeLeader(now time.Time, o Observations, d *Decision) {
	membership := o.membership()
	switch {
	case o.IsLeader && !p.wasLeader:
		// A leader that campaigned because the previous one handed over
		// to it was placed by the ranking: it starts settled.
		p.settled = o.TransferTerm == o.Term && o.Term != 0
		p.lost, p.leaderSince, p.due = "", now, false
		if !p.settled && p.membership == membership && p.lastLeader != "" {
			p.lost = p.lastLeader
		}
		p.unsettle(now, membership, o.Intervals, "new leader", d)
	case o.IsLeader && membership != p.membership:
		p.settled, p.lost = false, ""
		p.unsettle(now, membership, o.Intervals, "membership changed", d)
	case !o.IsLeader:
		p.membership = membership
		if o.Leader != "" && o.Leader != o.Self {
			p.lastLeader = o.Leader
		}
	}
	p.wasLeader = o.IsLeader
	if !o.IsLeader {
		return
	}
	r := p.ranking
	if !p.settled && p.complete {
		if p.top == "" {
			// The first complete ranking since this leader became
			// unsettled: however long the data took to arrive, leave
			// time for a top to stand as long as ready may ask.
			p.settleBy = later(p.settleBy, now.Add(standLimit(o.Intervals)))
		}
		if top := r.Preference[0]; top != p.top {
			p.top, p.topSince = top, now
		}
		p.completeAt = now
	}
	voters, caught := map[string]bool{}, map[string]bool{}
	for _, m := range o.Members {
		voters[m.ID] = m.Voter
		caught[m.ID] = m.CaughtUp
	}
	if now.Sub(p.lastTransfer) < o.Intervals.TransferCooldown {
		p.placeVoters(now, o, d)
		return
	}
	// Never mix a transfer with a configuration change in flight.
	if now.Sub(p.lastVoterMove) < 2*o.Intervals.Retry {
		return
	}
	target, ok := "", false
	if !p.settled {
		// Only the top member, and only once it is a caught-up voter:
		// wait rather than settle for the second best, which hysteresis
		// would then keep.
		top, found := p.lostTop(o, d)
		p.due = found && top != o.Self && voters[top] && !caught[top]
		if !found && p.complete && p.ready(now, p.topSince, o.Intervals) {
			top, found = p.top, true
		}
		if found {
			if top == o.Self {
				d.Notes = append(d.Notes, "placement: this leader is the top candidate; hysteresis from now on")
				p.settled = true
			} else if voters[top] && caught[top] {
				target, ok = top, true
			}
		}
		// While complete rankings keep coming, the search goes on past
		// the deadline: a load spike or a spreading latency change that
		// outlasts it would otherwise leave the host wherever it was,
		// and hysteresis would keep it there once the maps stood still.
		// (A top that is not a caught-up voter yet is waited for too:
		// the leader promotes it, and raft's progress catches up.)
		waiting := p.top != "" && now.Sub(p.completeAt) < standLimit(o.Intervals)
		if !ok && !p.settled && now.After(p.settleBy) && !waiting {
			// No complete ranking for a while (a member that never
			// publishes, a lasting asymmetric partition): keep what
			// there is, and let hysteresis decide from the next step on.
			d.Notes = append(d.Notes, "placement: no stable complete ranking in time; hysteresis from now on")
			p.settled = true
		}
	} else {
		target, ok = ShouldTransfer(r, o.Self, voters, caught, o.Intervals.Hysteresis)
		if !ok || target != p.candidate {
			p.candidate, p.candidateSince = target, now
			ok = false
		} else if !p.ready(now, p.candidateSince, o.Intervals) {
			ok = false
		}
	}
	if ok {
		// An unsettled leader stays unsettled: if the transfer fails, it
		// tries again after the cooldown.
		p.lastTransfer = now
		d.TransferTo = target
		return
	}
	p.placeVoters(now, o, d)
}

// ready reports whether a transfer target that has stood, as the top or as
// the candidate, since since may be acted on: it must have stood for two
// latency intervals, and the ranking must have stood still (no score
// changed) for stillFor. While a latency change spreads, every member's
// smoothed RTTs take several pings to converge and each map is published
// at most once a latency interval; a member whose edges are only half-way
// there can top a ranking for longer than two latency intervals, and the
// member that will end up best, its edges shorter only once both ends have
// published, is not there yet. A host placed in such an intermediate state
// would be kept there by hysteresis when the final best is better by less
// than the hysteresis. The maps stop changing once the estimates have
// converged, so a ranking that has stood still is the settled one. Should
// the maps never stand still (a member whose RTT keeps swinging), the
// target is acted on once it has stood for standLimit anyway.
func (p *Placer) ready(now, since time.Time, iv Intervals) bool {
	stood := now.Sub(since)
	if stood < 2*iv.Latency {
		return false
	}
	return now.Sub(p.stillSince) >= stillFor(iv) || stood >= standLimit(iv)
}

// stillFor is how long no score may have changed for a ranking to count as
// still: 10 ping intervals and 2 latency intervals. An [Estimator] covers
// most of a step in 10 pings (3 for the median to turn, 87% of the rest in
// 7 more), and while it moves the map is published again whenever it
// moved materially, at most once a latency interval; later in the
// convergence those publications come further apart (the rest of the step
// shrinks, the threshold does not), so a pause of two latency intervals
// alone is no sign that the maps are done.
func stillFor(iv Intervals) time.Duration { return 10*iv.Ping + 2*iv.Latency }

// standLimit is how long a transfer target must have stood when the
// ranking does not stand still: 10 ping intervals and 4 latency intervals,
// as long as an unsettled leader's search (see unsettle). A change still
// spreading rarely keeps an intermediate top first for that long; a longer
// limit would leave placement stuck wherever it is while noise (a loaded
// machine, a jittery link) keeps republishing the maps and now and then
// puts another member first.
func standLimit(iv Intervals) time.Duration { return 10*iv.Ping + 4*iv.Latency }

// lostTop returns the top of the ranking without the leader this one
// replaced by election, if that ranking is complete and its top is clear
// of every other member by the hysteresis (see clearOf). It forgets the
// lost leader once it has answered a ping since this member became leader.
//
// The maps it ranks from were measured before the loss, and a loaded
// machine or a noisy network can swap two members that are within the
// hysteresis of each other; the host placed on the wrong one would stay
// there. A top that is not clear is left to the rules of an unsettled
// leader, which wait for the survivors' maps to stand still.
func (p *Placer) lostTop(o Observations, d *Decision) (string, bool) {
	if p.lost == "" {
		return "", false
	}
	if pr, ok := o.Peers[p.lost]; ok && pr.LastPong.After(p.leaderSince) {
		d.Notes = append(d.Notes, "placement: the previous leader answers; ranking with it again")
		p.lost = ""
		return "", false
	}
	r, ok := p.rankWithout(p.lost, o, d.Dead)
	if !ok || !clearOf(r, r.Preference[0], o.Intervals.Hysteresis) {
		return "", false
	}
	return r.Preference[0], true
}

// clearOf reports whether id's score beats that of every other scored
// member of r by h: the bar a settled host must clear to be replaced, so
// that measurement noise alone cannot swap id with a member it is chosen
// over.
func clearOf(r Ranking, id string, h Hysteresis) bool {
	if !scored(r, id) {
		return false
	}
	s := r.Score[id]
	for other := range r.Score {
		if other == id || !scored(r, other) {
			continue
		}
		if o := r.Score[other]; s > h.Ratio*o || o-s < h.MarginMs {
			return false
		}
	}
	return true
}

// rankWithout returns the ranking with lost dead as well, if that ranking
// is complete.
func (p *Placer) rankWithout(lost string, o Observations, dead map[string]bool) (Ranking, bool) {
	dead = maps.Clone(dead)
	dead[lost] = true
	// The survivors' maps were measured before the loss; what they say
	// about the lost member is all that is stale, so it is left out of
	// the freshness check of Complete.
	reports := make(map[string]map[string]float64, len(o.Reports))
	for from, rep := range o.Reports {
		if _, ok := rep[lost]; ok {
			rep = maps.Clone(rep)
			delete(rep, lost)
		}
		reports[from] = rep
	}
	in := o.input(dead)
	in.Reports = reports
	r := Rank(in)
	return r, Complete(in, r)
}

// unsettle starts (or restarts) an unsettled leader's search for its first
// placement decision; for a leader that starts settled it only clears what
// the previous term saw. The search is bounded in time: long enough to
// notice a crashed member (3 ping intervals), for every member to publish
// its map again (one latency interval, and a ping interval to notice), and
// for the top to stand for two latency intervals, with room to spare; and
// at least standLimit after the first complete ranking, as long as a top
// may have to stand when the maps never stand still.
func (p *Placer) unsettle(now time.Time, membership [2]int, iv Intervals, why string, d *Decision) {
	p.membership = membership
	// Neither path may act on what it saw before: a candidate or top from
	// an earlier term, or from before the membership changed.
	p.top, p.topSince, p.completeAt = "", time.Time{}, time.Time{}
	p.candidate, p.candidateSince = "", time.Time{}
	if p.settled {
		return
	}
	p.settleBy = now.Add(10*iv.Ping + 4*iv.Latency)
	d.Notes = append(d.Notes, "placement: unsettled ("+why+"); no hysteresis until a complete ranking has stood still")
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// placeVoters decides the next voter change towards the ranking's voters,
// if this member leads, no voter change was made in the last retry
// interval, and no transfer may be under way.
func (p *Placer) placeVoters(now time.Time, o Observations, d *Decision) {
	if !o.IsLeader || now.Sub(p.lastVoterMove) < o.Intervals.Retry {
		return
	}
	if !p.lastTransfer.IsZero() && now.Sub(p.lastTransfer) < o.Intervals.TransferCooldown {
		return
	}
	r := p.ranking
	if len(r.Preference) == 0 {
		r = Rank(o.input(d.Dead))
	}
	var current []string
	dead := maps.Clone(d.Dead)
	// The last Step's ranking may name a member that has left since
	// (StepVoters runs between Steps): never a voter to promote. The
	// state machine refuses it, but the entry is a membership change all
	// the same, which a member's log holds unapplied until it commits
	// (TestPlacerPromotesNoFormerMember).
	if dead == nil {
		dead = map[string]bool{}
	}
	members := make(map[string]bool, len(o.Members))
	for _, m := range o.Members {
		members[m.ID] = true
	}
	for _, id := range r.Preference {
		if !members[id] {
			dead[id] = true
		}
	}
	for _, m := range o.Members {
		if m.Voter {
			current = append(current, m.ID)
		} else if m.Tracked && !m.CaughtUp {
			// A learner that has not caught up is not ready to vote.
			dead[m.ID] = true
		}
	}
	slices.Sort(current)
	ch, ok := NextVoterChangeDoubting(r, current, dead, doubtful(o), o.Self, o.MaxVoters, o.MinVoters)
	if !ok {
		return
	}
	p.lastVoterMove = now
	d.Voters, d.ChangeVoters = ch, true
}

// doubtful returns the peers whose last ping failed, or whose address
// answered that nothing listens there, since their last pong: they may be
// gone, though not for three ping intervals yet (see Dead).
func doubtful(o Observations) map[string]bool {
	out := map[string]bool{}
	for id, p := range o.Peers {
		if !p.FailedSince.IsZero() || !p.Gone.IsZero() {
			out[id] = true
		}
	}
	return out
}
