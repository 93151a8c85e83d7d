package election

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// cutOff is the best backup's campaign once a majority of the voters, this
// member among them, no longer hear the leader (Observations.CutOff): a
// campaign the others join at once, as when the leader's process is gone,
// since a leader a majority cannot hear cannot commit, and waiting out the
// others' leases would only add an election timeout to the failover. Once
// per silence (LeaderHeard) and term, and not against an election under way. It
// reports whether it campaigned.
func (p *Placer) cutOff(o Observations, d *Decision) bool {
	if o.LeaderHeard.IsZero() || o.LeaderHeard.Equal(p.cutCampaigned) && o.Term == p.cutTerm || o.VoteGranted.After(o.LeaderHeard) {
		return false
	}
	if o.Shunned[o.Self] {
		return false
	}
	// Shunned members are left out as if dead; d.Dead itself stays as it is.
	dead := maps.Clone(d.Dead)
	if dead == nil {
		dead = map[string]bool{}
	}
	for id := range o.Shunned {
		dead[id] = true
	}
	r, complete := p.rankWithout(p.lastLeader, o, dead)
	if len(r.Preference) == 0 || complete && r.Preference[0] != o.Self || !complete && firstVoter(o, p.lastLeader, o.Shunned) != o.Self {
		return false
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

// BackupRank returns this member's place among the voters that could take
// over from lost, the leader it last followed, once that leader is gone: 0 for
// the best backup (the first of the complete ranking without the leader,
// or without a complete ranking the voter that joined first, as the
// campaigns above name it), 1 for the next, and so on; dead and shunned
// voters, and those whose log is behind this member's (Observations.Behind),
// are left out, and a shunned member comes after every other. ok
// is false when this member is no voter or leads, or lost is empty.
//
// The caller names lost: the placer learns of a new leader only at its
// next step, up to a ping interval later, and a host cut off before then
// would be ranked as a live backup.
//
// A follower whose own election timer fires before the best backup's
// campaign waits this many staggers before it asks for votes (the node's
// ranked pre-votes), so that two members whose timers fire together do not
// split the vote.
func (p *Placer) BackupRank(now time.Time, o Observations, lost string) (rank int, ok bool) {
	if o.IsLeader || lost == "" {
		return 0, false
	}
	voter := map[string]bool{}
	for _, m := range o.Members {
		voter[m.ID] = m.Voter
	}
	if !voter[o.Self] {
		return 0, false
	}
	dead := Dead(now, o)
	for id := range o.Shunned {
		dead[id] = true
	}
	order := p.backups(o, lost, dead)
	for _, id := range order {
		if id == o.Self {
			return rank, true
		}
		if voter[id] && id != lost && !dead[id] && !o.Behind[id] {
			rank++
		}
	}
	return rank, true
}

// backups lists the members in the order in which they would take over from
// the lost leader: the complete ranking without it, or without one the
// voters by the order in which they joined.
func (p *Placer) backups(o Observations, lost string, dead map[string]bool) []string {
	if r, complete := p.rankWithout(lost, o, dead); complete {
		return r.Preference
	}
	ms := slices.Clone(o.Members)
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.Order, b.Order) })
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		if m.Voter && m.ID != lost && !dead[m.ID] {
			ids = append(ids, m.ID)
		}
	}
	return ids
}
