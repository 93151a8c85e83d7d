package election

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDeparturesKeepQuorum is the property behind "the last members standing
// keep committing" (issue 18, item 3; docs/PROTOCOL.md, "How far the voter
// set shrinks"): members go offline one at a time, in random orders, and
// after each departure the host applies NextVoterChange until it has
// nothing more to change (the group converges between two departures). As
// long as two members are online, the group keeps a live quorum, whatever
// the order; the voter set never shrinks below the state machine's floor
// of min(3, members, max voters), so one member alone never commits in a
// group that had three.
func TestDeparturesKeepQuorum(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 3))
	for iter := range 3000 {
		n := 2 + rng.IntN(8)
		maxVoters := 3 + rng.IntN(5)
		floor := min(3, n, maxVoters)
		members, reports := randomGroup(rng, n)
		dead := map[string]bool{}
		rank := func() Ranking {
			return Rank(Input{Members: members, Dead: dead, Reports: reports, MaxVoters: maxVoters})
		}
		// The group starts with its creator as the only voter and grows.
		leader := members[0]
		voters := []string{leader}
		converge := func(when string) {
			for steps := 0; ; steps++ {
				if steps > 2*n+maxVoters {
					t.Fatalf("iteration %d, %s: no convergence: voters %v", iter, when, voters)
				}
				c, ok := NextVoterChange(rank(), voters, dead, leader, maxVoters, floor)
				if !ok {
					return
				}
				switch {
				case c.Promote != "":
					voters = append(voters, c.Promote)
				case c.Demote != "":
					voters = slices.DeleteFunc(voters, func(v string) bool { return v == c.Demote })
					if len(voters) < floor {
						t.Fatalf("iteration %d, %s: demoted below the floor of %d: %v", iter, when, floor, voters)
					}
				}
			}
		}
		liveVoters := func() (live int) {
			for _, v := range voters {
				if !dead[v] {
					live++
				}
			}
			return live
		}
		converge("at the start")
		order := slices.Clone(members)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for k, gone := range order[:n-1] {
			dead[gone] = true
			online := n - k - 1
			hasQuorum := liveVoters() >= quorum(len(voters))
			if online >= 2 && !hasQuorum {
				t.Fatalf("iteration %d: %d members online (%d of %d), departures %v, but voters %v have no live quorum",
					iter, online, online, n, order[:k+1], voters)
			}
			if !hasQuorum {
				// One member left of a group that had three or more: it
				// must not commit alone, and nothing changes.
				if online == 1 && floor >= 3 && len(voters) < 3 {
					t.Fatalf("iteration %d: voters %v below three", iter, voters)
				}
				break
			}
			if dead[leader] {
				// A live voter is elected (it has a live quorum).
				for _, v := range voters {
					if !dead[v] {
						leader = v
						break
					}
				}
			}
			converge(fmt.Sprintf("after %v left", order[:k+1]))
		}
	}
}

// TestDeparturesNoticedLateKeepQuorum: the same departures, but each is
// first noticed only as doubt (a failed ping; the member is not dead until
// three ping intervals pass), the next one may come before it is, and the
// host goes on changing voters meanwhile (for a member that comes back,
// too), as a host that has just taken over from a crashed one does. No
// change may leave the voters without a quorum of members that are really
// there. Counting the doubtful as live, the same departures break a quorum
// (TestStrandedMemberCatchesUpHTTP lost its host that way: voters swapped
// towards a set with two crashed members in it), which the test checks too,
// so that it tests something.
func TestDeparturesNoticedLateKeepQuorum(t *testing.T) {
	if v := lateDepartures(true); v != "" {
		t.Fatal(v)
	}
	if lateDepartures(false) == "" {
		t.Fatal("counting doubtful members as live broke no quorum: the scenario tests nothing")
	}
}

// lateDepartures runs the random departures, with the doubt or without it,
// and returns the first change that left the voters without a quorum of
// present members ("" if none did).
func lateDepartures(withDoubt bool) string {
	rng := rand.New(rand.NewPCG(18, 4))
	for iter := range 3000 {
		n := 3 + rng.IntN(7)
		maxVoters := 3 + rng.IntN(5)
		floor := min(3, n, maxVoters)
		members, reports := randomGroup(rng, n)
		dead, gone := map[string]bool{}, map[string]bool{}
		leader := members[0]
		voters := []string{leader}
		present := func() (k int) {
			for _, v := range voters {
				if !gone[v] {
					k++
				}
			}
			return k
		}
		converge := func(doubt map[string]bool) string {
			for steps := 0; steps <= 2*n+maxVoters; steps++ {
				r := Rank(Input{Members: members, Dead: dead, Reports: reports, MaxVoters: maxVoters})
				if !withDoubt {
					doubt = nil
				}
				c, ok := NextVoterChangeDoubting(r, voters, dead, doubt, leader, maxVoters, floor)
				if !ok {
					return ""
				}
				before := present() >= quorum(len(voters))
				switch {
				case c.Promote != "":
					voters = append(voters, c.Promote)
				case c.Demote != "":
					voters = slices.DeleteFunc(voters, func(v string) bool { return v == c.Demote })
				}
				if before && present() < quorum(len(voters)) {
					return fmt.Sprintf("iteration %d: %+v left voters %v without a quorum of present members (gone %v)", iter, c, voters, gone)
				}
			}
			return ""
		}
		if v := converge(nil); v != "" {
			return v
		}
		order := slices.Clone(members)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, g := range order[:n-2] {
			gone[g] = true
			if present() < quorum(len(voters)) {
				break
			}
			if g == leader {
				for _, v := range voters {
					if !gone[v] {
						leader = v
						break
					}
				}
			}
			// Noticed as doubt first; the departures before it may not
			// be dead yet either (two crashes seconds apart).
			doubt := map[string]bool{}
			for k := range gone {
				if !dead[k] {
					doubt[k] = true
				}
			}
			if v := converge(doubt); v != "" {
				return v
			}
			// A member gone earlier may come back meanwhile, and the
			// host makes room for it among the voters.
			if back := pick(rng, dead); back != "" && rng.IntN(2) == 0 {
				delete(dead, back)
				delete(gone, back)
				if v := converge(doubt); v != "" {
					return v
				}
			}
			if rng.IntN(2) == 0 {
				continue // the next one goes before this one is dead
			}
			for k := range doubt {
				dead[k] = true
			}
			if v := converge(nil); v != "" {
				return v
			}
		}
	}
	return ""
}

// pick returns one of set's members chosen by rng, "" if it is empty.
func pick(rng *rand.Rand, set map[string]bool) string {
	var ids []string
	for id := range set {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return ""
	}
	slices.Sort(ids)
	return ids[rng.IntN(len(ids))]
}

// randomGroup returns n members, each of whom reported a random RTT of 1 to
// 80 ms to every other.
func randomGroup(rng *rand.Rand, n int) ([]string, map[string]map[string]float64) {
	var members []string
	for i := range n {
		members = append(members, fmt.Sprintf("m%d", i))
	}
	reports := map[string]map[string]float64{}
	for _, a := range members {
		for _, b := range members {
			if a != b {
				report(reports, a, b, float64(1+rng.IntN(80)))
			}
		}
	}
	return members, reports
}
