package election

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// ranking builds a Ranking by hand: ids in preference order with their
// scores, and the first k as voters.
func ranking(k int, pairs ...any) Ranking {
	r := Ranking{Score: map[string]float64{}}
	for i := 0; i < len(pairs); i += 2 {
		id := pairs[i].(string)
		r.Preference = append(r.Preference, id)
		r.Score[id] = float64(pairs[i+1].(int))
		if pairs[i+1].(int) < 0 {
			r.Score[id] = math.Inf(1)
		}
	}
	r.Voters = r.Preference[:min(k, len(r.Preference))]
	return r
}

func set(s string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids(s) {
		m[id] = true
	}
	return m
}

func TestShouldTransfer(t *testing.T) {
	const none = ""
	tests := []struct {
		name     string
		r        Ranking
		leader   string
		voters   string
		caughtUp string
		h        Hysteresis
		want     string
	}{
		{
			name:   "leader is best",
			r:      ranking(3, "a", 10, "b", 30, "c", 40),
			leader: "a", voters: "a b c", caughtUp: "a b c",
			want: none,
		},
		{
			name:   "small improvement",
			r:      ranking(3, "b", 27, "a", 30, "c", 40),
			leader: "a", voters: "a b c", caughtUp: "a b c",
			want: none,
		},
		{
			name:   "big improvement",
			r:      ranking(3, "b", 10, "a", 30, "c", 40),
			leader: "a", voters: "a b c", caughtUp: "a b c",
			want: "b",
		},
		{
			name:   "exactly at the hysteresis",
			r:      ranking(3, "b", 8, "a", 10, "c", 40),
			leader: "a", voters: "a b c", caughtUp: "a b c",
			want: "b",
		},
		{
			// 50% better but only 1 ms: LAN jitter, not worth a blip.
			name:   "ratio without margin",
			r:      ranking(3, "b", 1, "a", 2, "c", 4),
			leader: "a", voters: "a b c", caughtUp: "a b c",
			want: none,
		},
		{
			name:   "margin without ratio",
			r:      ranking(3, "b", 90, "a", 100, "c", 400),
			leader: "a", voters: "a b c", caughtUp: "a b c",
			want: none,
		},
		{
			name:   "not caught up",
			r:      ranking(3, "b", 10, "a", 30, "c", 40),
			leader: "a", voters: "a b c", caughtUp: "a c",
			want: none,
		},
		{
			name:   "learner cannot lead",
			r:      ranking(3, "b", 10, "a", 30, "c", 40),
			leader: "a", voters: "a c", caughtUp: "a b c",
			want: none,
		},
		{
			name:   "best is a learner, next is good enough",
			r:      ranking(4, "b", 10, "d", 12, "a", 30, "c", 40),
			leader: "a", voters: "a c d", caughtUp: "a b c d",
			want: "d",
		},
		{
			name:   "never to a member behind the leader",
			r:      ranking(3, "b", 10, "a", 30, "c", 40),
			leader: "a", voters: "a c", caughtUp: "a b c",
			h:    Hysteresis{Ratio: 10, MarginMs: -100},
			want: none,
		},
		{
			name:   "leader not in preference",
			r:      ranking(3, "b", 29, "c", 30),
			leader: "a", voters: "a b c", caughtUp: "a b c",
			want: "b",
		},
		{
			name:   "leader outside the desired voters",
			r:      ranking(2, "b", 29, "c", 29, "a", 30),
			leader: "a", voters: "a b c", caughtUp: "a b c",
			want: "b",
		},
		{
			name:   "leader without a score",
			r:      ranking(3, "b", 29, "c", 30, "a", -1),
			leader: "a", voters: "a b c", caughtUp: "a b c",
			want: "b",
		},
		{
			name:   "unscored candidates are skipped",
			r:      ranking(3, "b", -1, "c", -1, "a", -1),
			leader: "a", voters: "a b c", caughtUp: "a b c",
			want: none,
		},
		{
			name:   "fallback never transfers",
			r:      Rank(Input{Members: ids("b c a")}),
			leader: "a", voters: "a b c", caughtUp: "a b c",
			want: none,
		},
		{
			name:   "no eligible candidate",
			r:      ranking(3, "b", 1, "c", 2),
			leader: "a", voters: "a", caughtUp: "a b c",
			want: none,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			if h == (Hysteresis{}) {
				h = DefaultHysteresis()
			}
			got, ok := ShouldTransfer(tt.r, tt.leader, set(tt.voters), set(tt.caughtUp), h)
			if got != tt.want || ok != (tt.want != none) {
				t.Errorf("ShouldTransfer = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}

// TestShouldTransferTerminates follows every transfer under a fixed ranking
// with no hysteresis at all and checks leadership settles rather than cycles.
func TestShouldTransferTerminates(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for iter := range 500 {
		n := 1 + rng.IntN(8)
		in := Input{Members: make([]string, n), Reports: map[string]map[string]float64{}}
		for i := range in.Members {
			in.Members[i] = fmt.Sprintf("m%d", i)
		}
		for _, a := range in.Members {
			for _, b := range in.Members {
				if a != b && rng.IntN(3) > 0 {
					report(in.Reports, a, b, float64(1+rng.IntN(3)))
				}
			}
		}
		r := Rank(in)
		voters, caughtUp := map[string]bool{}, map[string]bool{}
		for _, m := range in.Members {
			voters[m] = rng.IntN(4) > 0
			caughtUp[m] = rng.IntN(4) > 0
		}
		leader := in.Members[rng.IntN(n)]
		for step := 0; ; step++ {
			next, ok := ShouldTransfer(r, leader, voters, caughtUp, Hysteresis{Ratio: 1})
			if !ok {
				break
			}
			if step > n || next == leader {
				t.Fatalf("iteration %d: transfer %d from %s to %s in %v", iter, step, leader, next, r.Preference)
			}
			leader = next
		}
	}
}

func TestComplete(t *testing.T) {
	triangle := func() map[string]map[string]float64 { return links("a-b=10", "b-c=10", "a-c=20") }
	tests := []struct {
		name    string
		members string
		dead    string
		reports map[string]map[string]float64
		want    bool
	}{
		{name: "every member scored", members: "a b c", reports: triangle(), want: true},
		{name: "no data at all", members: "a b c", reports: nil, want: false},
		{name: "one member alone", members: "a", reports: nil, want: false},
		{
			// d joined and has not published, nor has anyone about it.
			name: "a member without data", members: "a b c d", reports: triangle(), want: false,
		},
		{
			name: "two islands", members: "a b c d", reports: links("a-b=10", "c-d=10"), want: false,
		},
		{
			// Shortest paths stand in for a missing direct edge.
			name: "a missing edge", members: "a b c", reports: links("a-b=10", "b-c=10"), want: true,
		},
		{
			// b's map still lists d, which is down: it predates the failure.
			name:    "a report from before a failure",
			members: "a b c d", dead: "d",
			reports: func() map[string]map[string]float64 {
				r := triangle()
				report(r, "b", "d", 5)
				return r
			}(),
			want: false,
		},
		{
			// The dead member's own map, and a report about it that is not
			// a usable RTT, are ignored as Rank ignores them.
			name:    "reports the ranking ignores",
			members: "a b c d", dead: "d",
			reports: func() map[string]map[string]float64 {
				r := triangle()
				report(r, "d", "a", 5)
				report(r, "b", "d", 0)
				report(r, "c", "x", 5) // x is not a member
				return r
			}(),
			want: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Members: ids(tt.members), Dead: set(tt.dead), Reports: tt.reports}
			if got := Complete(in, Rank(in)); got != tt.want {
				t.Errorf("Complete = %v; want %v (ranking %+v)", got, tt.want, Rank(in))
			}
		})
	}
}

func TestNextVoterChange(t *testing.T) {
	tests := []struct {
		name    string
		r       Ranking
		current string
		dead    string
		doubt   string
		leader  string
		max     int
		floor   int
		want    VoterChange // zero: no change
	}{
		{
			name:    "grow to max",
			r:       ranking(3, "a", 1, "b", 2, "c", 3, "d", 4),
			current: "a", leader: "a", max: 3,
			want: VoterChange{Promote: "b"},
		},
		{
			name:    "demote a dead voter",
			r:       ranking(3, "a", 1, "b", 2, "c", 3),
			current: "a b c x", dead: "x", leader: "a", max: 3,
			want: VoterChange{Demote: "x"},
		},
		{
			// With the set full, a dead voter goes before any swap.
			name:    "demote a dead voter before promoting",
			r:       ranking(3, "a", 1, "b", 2, "c", 3),
			current: "a b x", dead: "x", leader: "a", max: 3,
			want: VoterChange{Demote: "x"},
		},
		{
			// The group's floor (3 voters of 4 members): the live member
			// is promoted first, and the dead voter demoted next.
			name:    "promote before demoting at the floor",
			r:       ranking(3, "a", 1, "b", 2, "c", 3),
			current: "a b x", dead: "x", leader: "a", max: 3, floor: 3,
			want: VoterChange{Promote: "c"},
		},
		{
			name:    "demote a dead voter above the floor",
			r:       ranking(3, "a", 1, "b", 2, "c", 3),
			current: "a b c x", dead: "x", leader: "a", max: 3, floor: 3,
			want: VoterChange{Demote: "x"},
		},
		{
			// Three voters, one dead, nobody to take its place: 2 of 3
			// or 2 of 2, the group survives no more failures either way,
			// and the member votes again the moment it is back.
			name:    "keep a dead voter that nobody replaces",
			r:       ranking(3, "a", 1, "b", 2),
			current: "a b c", dead: "c", leader: "a", max: 5,
			want: VoterChange{},
		},
		{
			// Five voters, two dead: three live voters alone need 2, not 3.
			name:    "demote dead voters when the quorum shrinks",
			r:       ranking(3, "a", 1, "b", 2, "c", 3),
			current: "a b c x y", dead: "x y", leader: "a", max: 5,
			want: VoterChange{Demote: "x"},
		},
		{
			name:    "demote a voter that is not a member",
			r:       ranking(3, "a", 1, "b", 2, "c", 3),
			current: "a b c x", leader: "a", max: 3,
			want: VoterChange{Demote: "x"},
		},
		{
			name:    "swap promotes first",
			r:       ranking(3, "a", 1, "b", 2, "c", 3, "d", 4),
			current: "a b d", leader: "a", max: 3,
			want: VoterChange{Promote: "c"},
		},
		{
			name:    "then demotes the worst extra",
			r:       ranking(3, "a", 1, "b", 2, "c", 3, "d", 4, "e", 5),
			current: "a b c d e", leader: "a", max: 3,
			want: VoterChange{Demote: "e"},
		},
		{
			name:    "never demote the leader",
			r:       ranking(3, "a", 1, "b", 2, "c", 3, "d", 4),
			current: "a b c d", leader: "d", max: 3,
			want: VoterChange{},
		},
		{
			name:    "no live quorum, no change",
			r:       ranking(3, "a", 1, "b", 2, "c", 3, "d", 4),
			current: "a x y", dead: "x y", leader: "a", max: 3,
			want: VoterChange{},
		},
		{
			name:    "settled",
			r:       ranking(3, "a", 1, "b", 2, "c", 3, "d", 4),
			current: "c a b", leader: "b", max: 3,
			want: VoterChange{},
		},
		{
			// The incident of TestStrandedMemberCatchesUpHTTP: a new host
			// with two voters crashed seconds ago (x, y: not dead yet), a
			// member back (d). Counting x and y, it promoted d, then
			// demoted d and c to four voters with only a and b there.
			name:    "a doubtful voter does not count for the quorum",
			r:       ranking(5, "a", 1, "x", 2, "y", 3, "b", 4, "d", 5, "c", 6),
			current: "a b c x y", doubt: "x y", leader: "a", max: 5,
			want: VoterChange{Promote: "d"},
		},
		{
			name:    "then nothing is demoted while the doubt lasts",
			r:       ranking(5, "a", 1, "x", 2, "y", 3, "b", 4, "d", 5, "c", 6),
			current: "a b c d x y", doubt: "x y", leader: "a", max: 5,
			want: VoterChange{},
		},
		{
			// Demoting a dead voter never costs a quorum: a doubtful one
			// does not hold it back (4 voters, 2 of 3 after it).
			name:    "demote a dead voter despite a doubtful one",
			r:       ranking(5, "a", 1, "b", 2, "c", 3),
			current: "a b c d", dead: "d", doubt: "b", leader: "a", max: 5,
			want: VoterChange{Demote: "d"},
		},
		{
			name:    "a doubtful member is not promoted",
			r:       ranking(3, "a", 1, "x", 2, "b", 3),
			current: "a b", doubt: "x", leader: "a", max: 3,
			want: VoterChange{},
		},
		{
			name:    "dead leader mark is not a demotion",
			r:       ranking(3, "b", 2, "c", 3),
			current: "a b c", dead: "a", leader: "a", max: 3,
			want: VoterChange{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := NextVoterChangeDoubting(tt.r, ids(tt.current), set(tt.dead), set(tt.doubt), tt.leader, tt.max, tt.floor)
			if got != tt.want || ok != (tt.want != VoterChange{}) {
				t.Errorf("NextVoterChange = %+v, %v; want %+v", got, ok, tt.want)
			}
		})
	}
}

// TestNextVoterChangeQuorum applies the changes one at a time to random
// configurations, checks the invariants after every step, and checks the
// voter set ends as the desired voters (plus the leader if it is not one).
func TestNextVoterChangeQuorum(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for iter := range 5000 {
		n := 1 + rng.IntN(9)
		maxVoters := 1 + rng.IntN(6)
		var members []string
		dead := map[string]bool{}
		for i := range n {
			id := fmt.Sprintf("m%d", i)
			members = append(members, id)
			dead[id] = rng.IntN(10) < 3
		}
		in := Input{Members: members, Dead: dead, Reports: map[string]map[string]float64{}, MaxVoters: maxVoters}
		for _, a := range members {
			for _, b := range members {
				if a != b && rng.IntN(2) == 0 {
					report(in.Reports, a, b, float64(1+rng.IntN(50)))
				}
			}
		}
		r := Rank(in)
		if len(r.Preference) == 0 {
			continue
		}
		leader := r.Preference[rng.IntN(len(r.Preference))]
		current := []string{leader}
		for _, m := range append(slices.Clone(members), "ghost") {
			if m != leader && rng.IntN(2) == 0 {
				current = append(current, m)
			}
		}
		isLive := func(id string) bool { return slices.Contains(r.Preference, id) }
		count := func(vs []string) (live int) {
			for _, v := range vs {
				if isLive(v) {
					live++
				}
			}
			return live
		}
		startQuorum := count(current) >= quorum(len(current))
		liveMembers := len(r.Preference)
		// Half the runs with the state machine's floor on demotions.
		floor := 0
		if iter%2 == 1 {
			floor = min(3, n, maxVoters)
		}

		steps := 0
		for {
			c, ok := NextVoterChange(r, current, dead, leader, maxVoters, floor)
			if !ok {
				if c != (VoterChange{}) {
					t.Fatalf("iteration %d: no change but %+v", iter, c)
				}
				break
			}
			steps++
			if steps > n+1+maxVoters {
				t.Fatalf("iteration %d: no convergence after %d steps: %v", iter, steps, current)
			}
			before := count(current)
			var next []string
			switch {
			case c.Promote != "" && c.Demote != "":
				t.Fatalf("iteration %d: two changes at once: %+v", iter, c)
			case c.Promote != "":
				if slices.Contains(current, c.Promote) || !isLive(c.Promote) {
					t.Fatalf("iteration %d: promote %s in %v", iter, c.Promote, current)
				}
				next = append(slices.Clone(current), c.Promote)
			case c.Demote != "":
				if !slices.Contains(current, c.Demote) || c.Demote == leader {
					t.Fatalf("iteration %d: demote %s in %v (leader %s)", iter, c.Demote, current, leader)
				}
				next = slices.DeleteFunc(slices.Clone(current), func(v string) bool { return v == c.Demote })
				if len(next) < floor {
					t.Fatalf("iteration %d: demotion %v -> %v goes below the floor of %d voters", iter, current, next, floor)
				}
			default:
				t.Fatalf("iteration %d: empty change reported as a change", iter)
			}
			after := count(next)
			if after < quorum(len(next)) {
				t.Fatalf("iteration %d: %v -> %v leaves %d live voters, quorum %d", iter, current, next, after, quorum(len(next)))
			}
			if after < before && after < min(maxVoters, liveMembers) {
				t.Fatalf("iteration %d: %v -> %v drops live voters to %d", iter, current, next, after)
			}
			current = next
		}

		if !startQuorum {
			if steps > 0 {
				t.Fatalf("iteration %d: changed a configuration without a live quorum", iter)
			}
			continue
		}
		want := slices.Clone(r.Voters)
		if !slices.Contains(want, leader) {
			want = append(want, leader)
		}
		// Dead voters may keep their places, but only in a set no larger
		// than maxVoters where demoting them would not shrink the quorum
		// (and then nobody waits for a place: every wanted member is a
		// voter).
		kept := 0
		for _, v := range current {
			if !isLive(v) && v != leader {
				want = append(want, v)
				kept++
			}
		}
		if kept > 0 && len(current) > floor && (len(current) > maxVoters || quorum(len(current)-kept) < quorum(len(current))) {
			t.Fatalf("iteration %d: settled at %v keeping %d dead voters, though without them the quorum would be %d, not %d", iter, current, kept, quorum(len(current)-kept), quorum(len(current)))
		}
		slices.Sort(want)
		if got := slices.Sorted(slices.Values(current)); !slices.Equal(got, want) {
			t.Fatalf("iteration %d: settled at %v, want %v (preference %v, max %d)", iter, got, want, r.Preference, maxVoters)
		}
	}
}
