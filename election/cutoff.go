package election

import (
	"maps"
	"time"
)

// cutOff is the best backup's campaign once a majority of the voters, this
// member among them, no longer hear the leader (Observations.CutOff): a
// campaign the others join at once, as when the leader's process is gone,
// since a leader a majority cannot hear cannot commit, and waiting out the
// others' leases would only add an election timeout to the failover. Once
// per silence (LeaderHeard) and term, and not against an election under way. It
// reports whether it campaigned.
//
// A pre-candidate (its own election timer fired first) cannot run that
// campaign: raft starts none from there. It sends its pre-vote again
// instead, once the others' leases are over (they ignore a pre-vote until
// then, without an answer, and a pre-candidate waits out another election
// timeout before it asks again): the election is won a round trip later.
// Not sooner and not repeatedly: each pre-vote starts a new count, and the
// answers to the last one, a round trip away, would be lost.
func (p *Placer) cutOff(now time.Time, o Observations, d *Decision) bool {
	if o.LeaderHeard.IsZero() || o.LeaderHeard.Equal(p.cutCampaigned) && o.Term == p.cutTerm || o.VoteGranted.After(o.LeaderHeard) {
		return false
	}
	// Shunned members, and those whose logs the voters' vote rule will
	// refuse, are left out as if dead; d.Dead itself stays as it is.
	skip := o.behind()
	if len(o.Shunned) > 0 {
		skip = maps.Clone(skip)
		if skip == nil {
			skip = map[string]bool{}
		}
		maps.Copy(skip, o.Shunned)
	}
	if skip[o.Self] {
		return false
	}
	dead := maps.Clone(d.Dead)
	if dead == nil {
		dead = map[string]bool{}
	}
	maps.Copy(dead, skip)
	r, complete := p.rankWithout(p.lastLeader, o, dead)
	if len(r.Preference) == 0 || complete && r.Preference[0] != o.Self || !complete && firstVoter(o, p.lastLeader, skip) != o.Self {
		return false
	}
	if o.PreCandidate {
		// The last voter to hear the leader's last heartbeat heard it
		// leaseSpread later; its lease ends an election timeout after
		// that, to a tick (a heartbeat interval).
		due := o.LeaderHeard.Add(o.Intervals.ElectionTimeout + p.leaseSpread(o) + o.Intervals.Heartbeat)
		if now.Before(due) {
			d.Wake = due
			return true
		}
		p.cutCampaigned, p.cutTerm = o.LeaderHeard, o.Term
		d.Campaign = true
		d.Notes = append(d.Notes, "placement: a majority of the voters no longer hear the leader and this member, a pre-candidate, is the best backup; sending its pre-vote again, the others' leases over")
		return true
	}
	p.cutCampaigned, p.cutTerm = o.LeaderHeard, o.Term
	d.Campaign, d.Force = true, true
	d.Notes = append(d.Notes, "placement: a majority of the voters no longer hear the leader and this member is the best backup; campaigning at once")
	return true
}

// firstVoter returns the voter, other than lost and those in skip, that
// joined first.
func firstVoter(o Observations, lost string, skip map[string]bool) string {
	best, order := "", 0
	for _, m := range o.Members {
		if m.Voter && m.ID != lost && !skip[m.ID] && (best == "" || m.Order < order) {
			best, order = m.ID, m.Order
		}
	}
	return best
}
