package election

import (
	"math"
	"slices"
)

// Hysteresis is how much better a candidate must be before the leader hands
// over to it. Both conditions must hold: the candidate's score is at most
// Ratio times the leader's, and at least MarginMs below it. The ratio keeps
// leadership from flapping between similar hosts on noisy measurements; the
// margin keeps it from flapping on a LAN, where a 20% difference can be a
// fraction of a millisecond and not worth an availability blip.
type Hysteresis struct {
	Ratio    float64 // candidate score <= Ratio * leader score
	MarginMs float64 // leader score - candidate score >= MarginMs
}

// DefaultHysteresis returns the hysteresis DeMeS uses: a candidate must be
// 20% and 2 ms better than the leader.
func DefaultHysteresis() Hysteresis {
	return Hysteresis{Ratio: 0.8, MarginMs: 2}
}

// ShouldTransfer returns the member the current leader should transfer
// leadership to, if any.
//
// The candidate is the first member of r.Preference that comes before the
// leader, is in voters (raft only lets voters lead), is caughtUp (raft only
// transfers to a member whose log matches the leader's, and a lagging target
// would stall the group while it catches up; caughtUp[id] should mean raft's
// progress Match for id equals the leader's last index), and has a finite score (an
// unscored member is never known to be better). Because the candidate must
// come before the leader, a series of transfers under one ranking moves
// leadership strictly forward in the preference list, so it cannot cycle.
//
// If the leader is misplaced, that is, not in r.Voters (it is dead, not a
// member, or outside the desired voter set) or without a finite score, the
// candidate is returned without further conditions. Otherwise it is returned
// only if it beats the leader by h.
//
// With no latency data (r.Fallback) no member has a score, so there is
// never a transfer: join order is only a starting point, not a reason to
// move leadership.
func ShouldTransfer(r Ranking, leader string, voters map[string]bool, caughtUp map[string]bool, h Hysteresis) (string, bool) {
	pos := slices.Index(r.Preference, leader)
	if pos < 0 {
		pos = len(r.Preference)
	}
	cand := ""
	for _, id := range r.Preference[:pos] {
		if voters[id] && caughtUp[id] && scored(r, id) {
			cand = id
			break
		}
	}
	if cand == "" {
		return "", false
	}
	if !slices.Contains(r.Voters, leader) || !scored(r, leader) {
		return cand, true
	}
	ls, cs := r.Score[leader], r.Score[cand]
	if cs <= h.Ratio*ls && ls-cs >= h.MarginMs {
		return cand, true
	}
	return "", false
}

// Complete reports whether r, the ranking of in, is complete enough for a
// host to act on without hysteresis. It is when all of these hold:
//
//   - there is latency data (r is not a [Ranking.Fallback]);
//   - every live member has a finite score, so no member is still without
//     data or outside the graph that the others form;
//   - no live member's report gives a usable RTT (see [ValidRTT]) to a
//     member that is in in.Dead.
//
// The last condition is about freshness. A member drops a peer from its
// latency map once it stops hearing from it, and then publishes the map
// again; a report that still lists a dead member was measured before that
// member went down, and its author's next map is still to come. While maps
// arrive one by one after a failure, the ranking passes through states that
// mix old and new measurements; an incomplete ranking is one of those.
func Complete(in Input, r Ranking) bool {
	if r.Fallback || len(r.Preference) == 0 {
		return false
	}
	var dead []string
	for _, id := range in.Members {
		if in.Dead[id] {
			dead = append(dead, id)
		}
	}
	for _, id := range r.Preference {
		if !scored(r, id) {
			return false
		}
		for _, d := range dead {
			if ms, ok := in.Reports[id][d]; ok && ValidRTT(ms) {
				return false
			}
		}
	}
	return true
}

// scored reports whether id has a finite score in r.
func scored(r Ranking, id string) bool {
	s, ok := r.Score[id]
	return ok && !math.IsInf(s, 0) && !math.IsNaN(s)
}

// VoterChange is one raft membership change: exactly one of Promote (make a
// learner a voter) and Demote (make a voter a learner) is set.
type VoterChange struct {
	Promote string
	Demote  string
}

// NextVoterChange returns the next single change that moves the voter set
// current towards the desired set: the first maxVoters (zero or negative
// means [DefaultMaxVoters]) live members of r.Preference, which is r.Voters
// when maxVoters equals the [Input.MaxVoters] r was ranked with.
//
// A voter counts as live when it is in r.Preference and not in dead; dead
// should be the [Input.Dead] r was ranked with, and a member dead in either
// is treated as dead. Counting unknown voters as dead errs on the side of
// fewer changes.
//
// The changes, in order of preference:
//
//  1. If current has fewer than maxVoters voters, promote the best desired
//     member that is not a voter.
//  2. Demote a voter that is not live (smallest id first), when that helps:
//     when a live member waits for a voter's place, when the set is larger
//     than maxVoters, or when the live voters alone need a smaller quorum
//     than the whole set (4 voters with one dead: 2 of 3 instead of 3 of
//     4). Otherwise the dead voter keeps its place: demoting it would let
//     the group survive no more failures, and
//     a member back from a short outage votes at once instead of waiting to
//     be promoted again (3 voters with one dead: without it, a second
//     failure before its promotion would stop the group).
//  3. If current has more than maxVoters voters, demote the worst-ranked
//     live voter that is not desired.
//  4. If a desired member is not a voter (the set is full), promote the best
//     one; step 3 demotes the displaced voter on the next call. Promoting
//     first means the group never has fewer voters than it started with.
//
// Every change keeps these invariants, and NextVoterChange returns false
// rather than break one:
//
//   - It changes one voter at a time, so raft's simple (non-joint)
//     configuration change is safe: any majority of the old set and any
//     majority of the new set intersect.
//   - The live voters of the resulting set are at least its quorum
//     (len/2 + 1), so the group can still commit after the change. If the
//     current set has no live quorum, nothing can commit and there is no
//     change at all.
//   - The leader is never demoted. If the leader is not desired, the set
//     converges to the desired set plus the leader, until [ShouldTransfer]
//     moves leadership.
//   - A change never reduces the number of live voters below
//     min(maxVoters, live members).
//   - A demotion never leaves fewer than minVoters voters: the floor the
//     group's state machine enforces (state.MinVoters), so that no single
//     member can shrink the voter set. Where a dead voter would be demoted
//     below it, the live member is promoted first (step 4) and the dead
//     voter demoted next.
//
// The caller proposes the change as one raft configuration change and calls
// again only after it is applied. Each change promotes a desired member or
// demotes an undesired one, so under a fixed ranking the calls converge in
// at most len(current) + maxVoters changes.
func NextVoterChange(r Ranking, current []string, dead map[string]bool, leader string, maxVoters, minVoters int) (VoterChange, bool) {
	return NextVoterChangeDoubting(r, current, dead, nil, leader, maxVoters, minVoters)
}

// NextVoterChangeDoubting is [NextVoterChange] with doubtful, the members
// whose last ping failed (or whose address answered that nothing listens
// there any more) but that are not dead yet: they may be gone. A doubtful
// member counts as not live where a promotion or the demotion of a live
// voter must leave a live quorum, and is not promoted; it is demoted only as
// any live member is, or once dead. (Demoting a voter that is dead never
// costs a quorum: the doubt does not hold it back.)
//
// Without the doubt, a host that had just taken over from a crashed one
// counted that one, and another that had crashed two seconds before, as
// live voters (three ping intervals had not passed), swapped voters
// towards a set of four with those two among them, and lost its quorum:
// no host until a person stepped in (TestStrandedMemberCatchesUpHTTP).
func NextVoterChangeDoubting(r Ranking, current []string, dead, doubtful map[string]bool, leader string, maxVoters, minVoters int) (VoterChange, bool) {
	if maxVoters <= 0 {
		maxVoters = DefaultMaxVoters
	}
	rank := make(map[string]int, len(r.Preference))
	for i, id := range r.Preference {
		if !dead[id] {
			rank[id] = i
		}
	}
	isLive := func(id string) bool { _, ok := rank[id]; return ok }
	// sure: live, and not in doubt; what a change may count on.
	isSure := func(id string) bool { return isLive(id) && !doubtful[id] }

	var desired []string
	isDesired := make(map[string]bool, maxVoters)
	for _, id := range r.Preference {
		if len(desired) == maxVoters {
			break
		}
		if isLive(id) {
			desired = append(desired, id)
			isDesired[id] = true
		}
	}
	liveMembers := len(rank)

	voters := make(map[string]bool, len(current))
	liveVoters, sureVoters := 0, 0
	for _, id := range current {
		if id == "" || voters[id] {
			continue
		}
		voters[id] = true
		if isLive(id) {
			liveVoters++
		}
		if isSure(id) {
			sureVoters++
		}
	}
	n := len(voters)
	if n == 0 || liveVoters < quorum(n) {
		return VoterChange{}, false
	}

	// ok checks the invariants for a change to a set of size newN with
	// newLive live voters, where before were live before it. Promotions
	// and the demotion of a live voter count the sure voters only; the
	// demotion of a voter that is not live counts every live one: it
	// leaves the members present as they are and the quorum no larger,
	// so it never costs a quorum, doubt or not.
	ok := func(newN, newLive, before int) bool {
		if newN == 0 || newLive < quorum(newN) {
			return false
		}
		return newLive >= before || newLive >= min(maxVoters, liveMembers)
	}

	var missing string // the best desired member that is not a voter, and sure
	for _, id := range desired {
		if !voters[id] && isSure(id) {
			missing = id
			break
		}
	}

	// 1. Grow towards maxVoters.
	if n < maxVoters && missing != "" && ok(n+1, sureVoters+1, sureVoters) {
		return VoterChange{Promote: missing}, true
	}

	// 2. Demote voters that are not live. Sorted ids make the choice
	// independent of the order of current.
	var notLive, extra []string
	for id := range voters {
		switch {
		case id == leader:
		case !isLive(id):
			notLive = append(notLive, id)
		case !isDesired[id]:
			extra = append(extra, id)
		}
	}
	slices.Sort(notLive)
	if missing != "" || n > maxVoters || quorum(n-len(notLive)) < quorum(n) {
		for _, id := range notLive {
			if n-1 >= minVoters && ok(n-1, liveVoters, liveVoters) {
				return VoterChange{Demote: id}, true
			}
		}
	}

	// 3. Shrink towards maxVoters, dropping the worst-ranked extra first.
	if n > maxVoters && len(extra) > 0 && n-1 >= minVoters {
		slices.SortFunc(extra, func(a, b string) int { return rank[b] - rank[a] })
		left := sureVoters
		if isSure(extra[0]) {
			left--
		}
		if ok(n-1, left, sureVoters) {
			return VoterChange{Demote: extra[0]}, true
		}
	}

	// 4. Swap: promote now, demote in step 3 next time.
	if missing != "" && ok(n+1, sureVoters+1, sureVoters) {
		return VoterChange{Promote: missing}, true
	}
	return VoterChange{}, false
}

// quorum is the number of voters a raft group of n voters needs to commit.
func quorum(n int) int { return n/2 + 1 }
