package election

import "maps"

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
