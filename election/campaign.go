package election

import (
	"maps"
	"time"
)

// campaign is the follower's side of a step: the best backup's early
// campaign once its leader is lost (see [Placer]).
func (p *Placer) campaign(now time.Time, o Observations, d *Decision) {
	et := o.Intervals.ElectionTimeout
	if o.IsLeader || et <= 0 || p.lastLeader == "" || o.Leader != p.lastLeader {
		// Raft has moved on by itself: it elected someone, or this
		// member's own election timeout fired and it campaigns.
		return
	}
	self := false
	for _, m := range o.Members {
		self = self || m.ID == o.Self && m.Voter
	}
	if !self {
		return
	}
	if o.CutOff && p.cutOff(now, o, d) {
		return
	}
	pr := o.Peers[p.lastLeader]
	if pr.FailedSince.IsZero() || pr.FailedSince.Equal(p.campaigned) {
		return
	}
	gone := !pr.Gone.IsZero() && !o.LeaderHeard.After(pr.Gone) && o.Intervals.Heartbeat > 0
	// A member whose log the others' vote rule will refuse is no backup:
	// left out as if dead, as in cutOff.
	behind := o.behind()
	dead := d.Dead
	if len(behind) > 0 {
		dead = maps.Clone(dead)
		if dead == nil {
			dead = map[string]bool{}
		}
		maps.Copy(dead, behind)
	}
	r, complete := p.rankWithout(p.lastLeader, o, dead)
	switch {
	case behind[o.Self]:
		return
	case complete && r.Preference[0] != o.Self:
		return
	case !complete && !gone:
		return
	case !complete && firstVoter(o, p.lastLeader, behind) != o.Self:
		// Without a complete ranking (a new group, or members that
		// restarted and have not published their maps yet) the backup
		// of a gone leader is the longest-standing other voter, which
		// every member names alike from the committed configuration,
		// so that one candidate runs, not a split election.
		return
	}
	at := pr.FailedSince
	if !o.LeaderHeard.IsZero() && o.LeaderHeard.Before(at) {
		at = o.LeaderHeard
	}
	if o.VoteGranted.After(at) {
		// Another member's election is under way, and this one voted
		// for it: a second candidate could only split the vote. The
		// winner hands over.
		return
	}
	if gone {
		// The leader's address refuses connections and it has been
		// silent since: its process is gone, and the others' leases
		// only guard a leader that is not. Waiting them out would add
		// the election timeout to the failover, so the campaign is
		// one the others join at once, as for a handover. Two missed
		// heartbeats first, so that a refusal during a restart that
		// the leader survives (it answers again) is not taken for its
		// end.
		due := o.LeaderHeard.Add(2 * o.Intervals.Heartbeat)
		if due.Before(pr.Gone) {
			due = pr.Gone
		}
		if now.Before(due) {
			d.Wake = due
			return
		}
		p.campaigned = pr.FailedSince
		d.Campaign, d.Force = true, true
		d.Notes = append(d.Notes, "placement: the leader's process is gone and this member is the best backup; campaigning at once")
		return
	}
	at = at.Add(et + p.leaseSpread(o))
	if now.Before(at) {
		d.Wake = at
		return
	}
	p.campaigned = pr.FailedSince
	d.Campaign = true
	d.Notes = append(d.Notes, "placement: the leader is lost and this member is the best backup; campaigning")
}

// leaseSpread is how much later than this member another voter may have
// heard its leader's last heartbeat, and so stops refusing votes: the
// heartbeat went out to all at once and travels farther to some, by half
// the difference of their RTTs to the leader as the committed maps say,
// plus a fiftieth of the election timeout for the time it takes to handle.
// Without the maps it is a tenth of the election timeout (a tick, with
// raft's default ten).
func (p *Placer) leaseSpread(o Observations) time.Duration {
	et := o.Intervals.ElectionTimeout
	mine, ok := edgeRTT(o.Reports, p.lastLeader, o.Self)
	if !ok {
		return et / 10
	}
	spread := 0.0
	for _, m := range o.Members {
		if m.Voter && m.ID != o.Self && m.ID != p.lastLeader {
			theirs, ok := edgeRTT(o.Reports, p.lastLeader, m.ID)
			if !ok {
				return et / 10
			}
			spread = max(spread, (theirs-mine)/2)
		}
	}
	return time.Duration(spread*float64(time.Millisecond)) + et/50
}
