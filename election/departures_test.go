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
