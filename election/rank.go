package election

import (
	"cmp"
	"math"
	"slices"
)

// DefaultMaxVoters is the voter count used when [Input.MaxVoters] is zero or
// negative. Five voters survive two failures while keeping each commit a
// round trip to only two other members.
const DefaultMaxVoters = 5

// MaxRTTMillis is the largest round-trip time, in milliseconds, that a report
// may carry. Larger values (a minute or more) are not measurements of a live
// link but bugs or attacks, and one of them would dominate every mean.
const MaxRTTMillis = 60_000

// TieMillis is how close two scores must be, in milliseconds, to count as
// equal. Equal scores are ordered by member id so that floating-point noise
// never decides who hosts.
const TieMillis = 1e-9

// Input is everything the ranking depends on. Every member builds it from the
// same committed log entries, so every member computes the same [Ranking].
type Input struct {
	// Members lists all members in join order. Join order is the fallback
	// order when there is no latency data, and the order of members that
	// have no data. Duplicates and empty ids are ignored.
	Members []string

	// Dead marks members known to be down. They are excluded entirely: they
	// are not candidates, their reports are ignored, and they are not among
	// the "others" a score is measured to.
	Dead map[string]bool

	// Reports maps reporter -> peer -> round-trip time in milliseconds, as
	// each member last published it. Reports from or about non-members,
	// self-reports, and values that are not positive, not finite or larger
	// than [MaxRTTMillis] are ignored.
	Reports map[string]map[string]float64

	// MaxVoters is the number of voters to choose; zero or negative means
	// [DefaultMaxVoters].
	MaxVoters int

	// Relayed maps reporter -> peer -> true when the reporter reaches the
	// peer only through a circuit relay (its reported RTT is the relayed
	// one). An edge is relayed when either endpoint says so, and a member
	// all of whose edges are relayed ranks behind every member that is
	// near as good (see [RelayedFactor]).
	Relayed map[string]map[string]bool
}

// RelayedFactor and RelayedMillis are how much worse a member reachable
// only through relays ranks than its mean RTT: its score is the mean times
// RelayedFactor plus RelayedMillis, so that it hosts only when no directly
// reachable member is within 20% and 2 ms of it (the margin of
// [DefaultHysteresis]). A relayed host puts every message of the group
// through a third machine, whose circuits are limited and end when it
// restarts; its measured RTT says nothing of that.
const (
	RelayedFactor = 1.2
	RelayedMillis = 2.0
)

// Ranking is the result of [Rank].
type Ranking struct {
	// Preference lists every live member, the best host first, then the
	// backups in order.
	Preference []string

	// Voters is the first MaxVoters entries of Preference: the desired raft
	// voter set.
	Voters []string

	// Score maps each live member to its mean shortest-path RTT, in
	// milliseconds, to the other live members that have data (at least one
	// edge); lower is better. It is +Inf when the member has no data or
	// cannot reach every other member that has data. A member in Relayed
	// scores its mean times [RelayedFactor] plus [RelayedMillis].
	Score map[string]float64

	// Reachable maps each live member to the number of other live members it
	// can reach in the graph. A member with 0 has no usable data.
	Reachable map[string]int

	// Edges is the symmetric graph the ranking used: one edge per pair of
	// live members that both reported each other, A < B, sorted by (A, B).
	Edges []Edge

	// Fallback is true when there was no usable latency data at all and
	// Preference is simply the live members in join order.
	Fallback bool

	// Relayed marks the live members all of whose edges are relayed (see
	// [Input.Relayed]); their Score carries the penalty of [RelayedFactor].
	Relayed map[string]bool
}

// Edge is one undirected edge of the latency graph.
type Edge struct {
	A, B string  // the endpoints, A < B
	RTT  float64 // milliseconds: the larger of the two endpoints' reports
}

// Rank orders the live members by latency closeness centrality. See the
// package documentation for the exact rules. Rank is a pure function of in:
// it does not depend on map iteration order, and it does not depend on the
// order of in.Members except where join order is the documented rule.
func Rank(in Input) Ranking {
	live := liveMembers(in)
	n := len(live)

	// Index the live members by id order, so that every loop below, and
	// thus every floating-point sum, runs in an order that depends only on
	// the set of members, not on how the caller listed them.
	ids := slices.Clone(live)
	slices.Sort(ids)

	w := make([][]float64, n)
	for i := range w {
		w[i] = make([]float64, n)
		for j := range w[i] {
			if i != j {
				w[i][j] = math.Inf(1)
			}
		}
	}
	var edges []Edge
	hasEdge := make([]bool, n)
	direct := make([]bool, n) // has an edge that is not relayed
	for i := range n {
		for j := i + 1; j < n; j++ {
			rtt, ok := edgeRTT(in.Reports, ids[i], ids[j])
			if !ok {
				continue
			}
			w[i][j], w[j][i] = rtt, rtt
			hasEdge[i], hasEdge[j] = true, true
			if !in.Relayed[ids[i]][ids[j]] && !in.Relayed[ids[j]][ids[i]] {
				direct[i], direct[j] = true, true
			}
			edges = append(edges, Edge{A: ids[i], B: ids[j], RTT: rtt})
		}
	}

	r := Ranking{
		Score:     make(map[string]float64, n),
		Reachable: make(map[string]int, n),
		Edges:     edges,
		Relayed:   map[string]bool{},
	}
	maxVoters := in.MaxVoters
	if maxVoters <= 0 {
		maxVoters = DefaultMaxVoters
	}

	// The members with at least one edge are the graph; the others have no
	// data and rank last. Leaving them out of everyone's "others" means a
	// member that has not published yet (or whose peers have not) does not
	// make every score +Inf and freeze placement.
	inGraph := 0
	for _, ok := range hasEdge {
		if ok {
			inGraph++
		}
	}

	d := shortestPaths(w)
	type cand struct {
		id    string
		reach int
		mean  float64 // over the reachable members only
	}
	var full, partial []cand
	noData := make(map[string]bool)
	for i, id := range ids {
		c := cand{id: id}
		sum := 0.0
		for j := range n {
			if j != i && !math.IsInf(d[i][j], 1) {
				c.reach++
				sum += d[i][j]
			}
		}
		r.Reachable[id] = c.reach
		r.Score[id] = math.Inf(1)
		if c.reach > 0 {
			c.mean = sum / float64(c.reach)
			if !direct[i] {
				r.Relayed[id] = true
				// The conversion rounds the product, so that no fused
				// multiply-add makes the score differ between machines.
				c.mean = float64(c.mean*RelayedFactor) + RelayedMillis
			}
		}
		switch {
		case c.reach == 0:
			noData[id] = true
		case c.reach == inGraph-1:
			r.Score[id] = c.mean
			full = append(full, c)
		default:
			partial = append(partial, c)
		}
	}

	// Members that reach every member with data, by mean; then members
	// that reach only part of the graph, by how many they reach and then by
	// mean over those; then members without data in join order.
	byMean := func(cs []cand) []string {
		slices.SortFunc(cs, func(a, b cand) int {
			return cmp.Or(cmp.Compare(a.mean, b.mean), cmp.Compare(a.id, b.id))
		})
		means := make([]float64, len(cs))
		out := make([]string, len(cs))
		for i, c := range cs {
			means[i], out[i] = c.mean, c.id
		}
		breakTies(means, out)
		return out
	}
	r.Preference = make([]string, 0, n)
	r.Preference = append(r.Preference, byMean(full)...)
	slices.SortStableFunc(partial, func(a, b cand) int { return cmp.Compare(b.reach, a.reach) })
	for lo := 0; lo < len(partial); {
		hi := lo + 1
		for hi < len(partial) && partial[hi].reach == partial[lo].reach {
			hi++
		}
		r.Preference = append(r.Preference, byMean(partial[lo:hi])...)
		lo = hi
	}
	for _, id := range live {
		if noData[id] {
			r.Preference = append(r.Preference, id)
		}
	}

	r.Fallback = len(edges) == 0
	r.Voters = slices.Clone(r.Preference[:min(maxVoters, n)])
	return r
}

// liveMembers returns the members of in that are not dead, in join order,
// without duplicates or empty ids.
func liveMembers(in Input) []string {
	seen := make(map[string]bool, len(in.Members))
	var live []string
	for _, id := range in.Members {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		if !in.Dead[id] {
			live = append(live, id)
		}
	}
	return live
}

// edgeRTT returns the weight of the edge between a and b: the larger of the
// two endpoints' reports, and only when both endpoints reported it.
//
// Requiring both reports is what makes under-reporting useless. Taking the
// larger value already stops a member from pulling an edge below what the
// other endpoint measured, but a one-sided report would still let a member
// claim tiny RTTs to peers that have not (yet) published anything about it.
// With both reports required, an edge can only be as short as the more
// pessimistic of the two members that measured it.
func edgeRTT(reports map[string]map[string]float64, a, b string) (float64, bool) {
	ab, okA := reports[a][b]
	ba, okB := reports[b][a]
	if !okA || !okB || !ValidRTT(ab) || !ValidRTT(ba) {
		return 0, false
	}
	return max(ab, ba), true
}

// ValidRTT reports whether ms is a usable round-trip time: positive, finite
// and at most [MaxRTTMillis].
func ValidRTT(ms float64) bool {
	// The comparisons are false for NaN, so NaN is rejected too.
	return ms > 0 && ms <= MaxRTTMillis
}

// breakTies reorders ids, already sorted by (means, id), so that runs of
// means that are each within [TieMillis] of the previous one are in id
// order. Grouping the sorted sequence into runs (rather than comparing with
// a tolerance inside the sort) keeps the order a total order: a tolerance
// comparison is not transitive and would make the result depend on the sort
// algorithm.
func breakTies(means []float64, ids []string) {
	for lo := 0; lo < len(ids); {
		hi := lo + 1
		for hi < len(ids) && means[hi]-means[hi-1] <= TieMillis {
			hi++
		}
		slices.Sort(ids[lo:hi])
		lo = hi
	}
}

// shortestPaths returns the all-pairs shortest path lengths of the graph
// with weight matrix w, where w[i][j] is +Inf when there is no edge and
// w[i][i] is 0. It is Floyd–Warshall: O(n³), about a million additions for
// the hundred members a group is expected to have, and simple enough to
// trust. It only adds and compares, so the result is bit-for-bit the same on
// every platform (no fused multiply-add can creep in).
func shortestPaths(w [][]float64) [][]float64 {
	n := len(w)
	d := make([][]float64, n)
	for i := range w {
		d[i] = slices.Clone(w[i])
	}
	for k := range n {
		dk := d[k]
		for i := range n {
			dik := d[i][k]
			if math.IsInf(dik, 1) {
				continue
			}
			di := d[i]
			for j := range n {
				if s := dik + dk[j]; s < di[j] {
					di[j] = s
				}
			}
		}
	}
	return d
}
