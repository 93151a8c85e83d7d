package election

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// links builds symmetric reports: each "a-b=ms" entry makes a report b at ms
// and b report a at ms.
func links(spec ...string) map[string]map[string]float64 {
	reports := make(map[string]map[string]float64)
	for _, s := range spec {
		var ms float64
		pair, val, _ := strings.Cut(s, "=")
		a, b, _ := strings.Cut(pair, "-")
		if _, err := fmt.Sscan(val, &ms); err != nil {
			panic(s)
		}
		report(reports, a, b, ms)
		report(reports, b, a, ms)
	}
	return reports
}

// report adds one directed report.
func report(reports map[string]map[string]float64, from, to string, ms float64) {
	if reports[from] == nil {
		reports[from] = make(map[string]float64)
	}
	reports[from][to] = ms
}

func ids(s string) []string { return strings.Fields(s) }

func TestRankPreference(t *testing.T) {
	tests := []struct {
		name     string
		in       Input
		want     []string
		fallback bool
	}{
		{
			// The center of a star is one hop from everyone.
			name: "star",
			in: Input{
				Members: ids("a b c d e"),
				Reports: links("c-a=10", "c-b=10", "c-d=10", "c-e=10",
					"a-b=20", "a-d=20", "a-e=20", "b-d=20", "b-e=20", "d-e=20"),
			},
			want: ids("c a b d e"),
		},
		{
			// A line a-b-c-d-e with only neighbours measured: the middle wins,
			// the ends lose, and equal scores (b, d) go by id.
			name: "line through shortest paths",
			in: Input{
				Members: ids("e d c b a"),
				Reports: links("a-b=10", "b-c=10", "c-d=10", "d-e=10"),
			},
			want: ids("c b d a e"),
		},
		{
			// Two sites 50 ms apart; the bigger site hosts, and within it the
			// member with the best link to the other site.
			name: "two sites",
			in: Input{
				Members: ids("x1 x2 y1 y2 y3"),
				Reports: links("x1-x2=1", "y1-y2=1", "y1-y3=1", "y2-y3=1",
					"x1-y1=50", "x1-y2=52", "x1-y3=52", "x2-y1=52", "x2-y2=52", "x2-y3=52"),
			},
			want: ids("y1 y2 y3 x1 x2"),
		},
		{
			// A direct edge that is slower than a detour is not used.
			name: "detour beats slow direct edge",
			in: Input{
				Members: ids("a b c"),
				Reports: links("a-b=5", "b-c=5", "a-c=100"),
			},
			want: ids("b a c"),
		},
		{
			// The larger report counts: a claims 1 ms to c, c measured 40.
			name: "larger report wins",
			in: Input{
				Members: ids("a b c"),
				Reports: func() map[string]map[string]float64 {
					r := links("a-b=10", "b-c=10")
					report(r, "a", "c", 1)
					report(r, "c", "a", 40)
					return r
				}(),
			},
			want: ids("b a c"),
		},
		{
			name: "no data falls back to join order",
			in: Input{
				Members: ids("m3 m1 m2"),
			},
			want:     ids("m3 m1 m2"),
			fallback: true,
		},
		{
			name: "only unusable reports fall back",
			in: Input{
				Members: ids("m3 m1 m2"),
				Reports: func() map[string]map[string]float64 {
					r := links("m1-m2=0", "m2-m3=-4", "m1-m3=60001", "m1-m1=3", "m1-zz=3")
					report(r, "m3", "m1", math.NaN())
					report(r, "m1", "m3", math.NaN())
					report(r, "m2", "m1", math.Inf(1))
					report(r, "m1", "m2", math.Inf(1))
					// One-sided reports are not edges.
					report(r, "m3", "m2", 5)
					return r
				}(),
			},
			want:     ids("m3 m1 m2"),
			fallback: true,
		},
		{
			name: "members without data rank last in join order",
			in: Input{
				Members: ids("n2 a n1 b c"),
				Reports: links("a-b=10", "b-c=10", "a-c=30"),
			},
			want: ids("b a c n2 n1"),
		},
		{
			// {a,b,c} and {d,e} do not connect: nobody reaches everyone, so
			// the bigger component comes first, each by mean.
			name: "partial reach",
			in: Input{
				Members: ids("e d c b a f"),
				Reports: links("a-b=10", "b-c=10", "a-c=30", "d-e=1"),
			},
			want: ids("b a c d e f"),
		},
		{
			// c is the hub but dead: it drops out, its reports are ignored, and
			// nothing routes through it.
			name: "dead hub",
			in: Input{
				Members: ids("a b c d"),
				Dead:    map[string]bool{"c": true},
				Reports: links("c-a=1", "c-b=1", "c-d=1", "a-b=30", "b-d=30", "a-d=70"),
			},
			want: ids("b a d"),
		},
		{
			name: "non-members are ignored",
			in: Input{
				Members: ids("a b c"),
				Reports: links("a-b=10", "b-c=10", "a-c=10", "q-c=1", "q-a=100", "q-b=100"),
			},
			want: ids("a b c"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Rank(tt.in)
			if !slices.Equal(r.Preference, tt.want) {
				t.Errorf("Preference = %v, want %v (scores %v)", r.Preference, tt.want, r.Score)
			}
			if r.Fallback != tt.fallback {
				t.Errorf("Fallback = %v, want %v", r.Fallback, tt.fallback)
			}
			for _, e := range r.Edges {
				if tt.in.Dead[e.A] || tt.in.Dead[e.B] || !slices.Contains(tt.in.Members, e.A) || !slices.Contains(tt.in.Members, e.B) {
					t.Errorf("edge %v touches a dead member or non-member", e)
				}
			}
		})
	}
}

func TestRankScores(t *testing.T) {
	// A line through shortest paths: a's distances are 10, 20, 30, 40.
	r := Rank(Input{
		Members: ids("a b c d e"),
		Reports: links("a-b=10", "b-c=10", "c-d=10", "d-e=10"),
	})
	want := map[string]float64{"a": 25, "b": 17.5, "c": 15, "d": 17.5, "e": 25}
	if !reflect.DeepEqual(r.Score, want) {
		t.Errorf("Score = %v, want %v", r.Score, want)
	}
	wantEdges := []Edge{{"a", "b", 10}, {"b", "c", 10}, {"c", "d", 10}, {"d", "e", 10}}
	if !slices.Equal(r.Edges, wantEdges) {
		t.Errorf("Edges = %v, want %v", r.Edges, wantEdges)
	}

	// Members outside the graph have no score and do not count as others.
	r = Rank(Input{
		Members: ids("a b c n"),
		Reports: links("a-b=10", "b-c=10"),
	})
	inf := math.Inf(1)
	want = map[string]float64{"a": 15, "b": 10, "c": 15, "n": inf}
	if !reflect.DeepEqual(r.Score, want) {
		t.Errorf("Score = %v, want %v", r.Score, want)
	}
	wantReach := map[string]int{"a": 2, "b": 2, "c": 2, "n": 0}
	if !reflect.DeepEqual(r.Reachable, wantReach) {
		t.Errorf("Reachable = %v, want %v", r.Reachable, wantReach)
	}

	// Partial reach: no finite scores.
	r = Rank(Input{
		Members: ids("a b c d"),
		Reports: links("a-b=10", "c-d=10"),
	})
	for id, s := range r.Score {
		if !math.IsInf(s, 1) {
			t.Errorf("Score[%s] = %v, want +Inf", id, s)
		}
	}
}

func TestRankTies(t *testing.T) {
	// Everyone is 10 ms from everyone: the order is by id, whatever the
	// join order.
	all := links("d-b=10", "d-a=10", "d-c=10", "b-a=10", "b-c=10", "a-c=10")
	for _, members := range [][]string{ids("a b c d"), ids("d c b a"), ids("c a d b")} {
		r := Rank(Input{Members: members, Reports: all})
		if want := ids("a b c d"); !slices.Equal(r.Preference, want) {
			t.Errorf("members %v: Preference = %v, want %v", members, r.Preference, want)
		}
	}

	// z is better than a and b by 2e-12 ms, which is noise: a tie.
	r := Rank(Input{
		Members: ids("z a b"),
		Reports: links("z-a=10", "z-b=10", "a-b=10.000000000004"),
	})
	if r.Score["z"] >= r.Score["a"] {
		t.Fatalf("test setup: z should be better by a hair: %v", r.Score)
	}
	if want := ids("a b z"); !slices.Equal(r.Preference, want) {
		t.Errorf("Preference = %v, want %v", r.Preference, want)
	}

	// But 1e-6 ms is a real difference.
	r = Rank(Input{
		Members: ids("z a b"),
		Reports: links("z-a=10", "z-b=10", "a-b=10.000002"),
	})
	if want := ids("z a b"); !slices.Equal(r.Preference, want) {
		t.Errorf("Preference = %v, want %v", r.Preference, want)
	}
}

// TestRankDeterministic ranks random latency matrices many times, with the
// members in a different order and the maps rebuilt (so iterated in a
// different order) each time, and checks the result never changes.
func TestRankDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 200 {
		n := 2 + rng.IntN(9)
		members := make([]string, n)
		for i := range members {
			members[i] = fmt.Sprintf("demes1m%02d", i)
		}
		type rep struct {
			from, to string
			ms       float64
		}
		var reps []rep
		for _, a := range members {
			for _, b := range members {
				if a != b && rng.Float64() < 0.8 {
					// Few distinct values, so that ties happen.
					reps = append(reps, rep{a, b, float64(1 + rng.IntN(4))})
				}
			}
		}
		build := func() Input {
			in := Input{Members: slices.Clone(members), Reports: map[string]map[string]float64{}}
			rng.Shuffle(len(in.Members), func(i, j int) { in.Members[i], in.Members[j] = in.Members[j], in.Members[i] })
			for _, i := range rng.Perm(len(reps)) {
				report(in.Reports, reps[i].from, reps[i].to, reps[i].ms)
			}
			return in
		}
		first := Rank(build())
		for range 5 {
			in := build()
			r := Rank(in)
			// Members without data are in join order by rule; compare the
			// rest.
			noData := func(r Ranking) int {
				k := len(r.Preference)
				for k > 0 && r.Reachable[r.Preference[k-1]] == 0 {
					k--
				}
				return k
			}
			k := noData(first)
			if noData(r) != k || !slices.Equal(r.Preference[:k], first.Preference[:k]) ||
				!reflect.DeepEqual(r.Score, first.Score) || !slices.Equal(r.Edges, first.Edges) {
				t.Fatalf("iteration %d: ranking changed with input order:\n%+v\n%+v", iter, first, r)
			}
		}
	}
}

// TestRankUnderReporting checks that a member claiming tiny RTTs to everyone
// does not become the host.
func TestRankUnderReporting(t *testing.T) {
	// Honestly measured, c is the center and the liar is a far leaf.
	peers := ids("a b c d")

	t.Run("others report it", func(t *testing.T) {
		reports := links("c-a=10", "c-b=10", "c-d=10", "a-b=20", "a-d=20", "b-d=20")
		for _, p := range peers {
			report(reports, "liar", p, 0.1)
			report(reports, p, "liar", 80)
		}
		r := Rank(Input{Members: ids("liar a b c d"), Reports: reports})
		if r.Preference[0] != "c" {
			t.Errorf("Preference = %v, want c first", r.Preference)
		}
		if r.Preference[len(r.Preference)-1] != "liar" {
			t.Errorf("Preference = %v, want liar last", r.Preference)
		}
	})

	t.Run("nobody reports it", func(t *testing.T) {
		reports := links("c-a=10", "c-b=10", "c-d=10", "a-b=20", "a-d=20", "b-d=20")
		for _, p := range peers {
			report(reports, "liar", p, 0.1)
		}
		r := Rank(Input{Members: ids("liar a b c d"), Reports: reports})
		if want := ids("c a b d liar"); !slices.Equal(r.Preference, want) {
			t.Errorf("Preference = %v, want %v", r.Preference, want)
		}
		if r.Reachable["liar"] != 0 {
			t.Errorf("liar has edges from one-sided reports: %v", r.Edges)
		}
	})

	t.Run("some report it", func(t *testing.T) {
		// Only a measured the liar; the liar's other claims are one-sided.
		reports := links("c-a=10", "c-b=10", "c-d=10", "a-b=20", "a-d=20", "b-d=20")
		for _, p := range peers {
			report(reports, "liar", p, 0.1)
		}
		report(reports, "a", "liar", 30)
		r := Rank(Input{Members: ids("liar a b c d"), Reports: reports})
		if r.Preference[0] != "c" || r.Preference[len(r.Preference)-1] != "liar" {
			t.Errorf("Preference = %v, want c first and liar last", r.Preference)
		}
	})
}

func TestRankVoters(t *testing.T) {
	reports := links("a-b=1", "a-c=2", "a-d=3", "a-e=4", "a-f=5", "a-g=6",
		"b-c=2", "b-d=3", "b-e=4", "b-f=5", "b-g=6")
	members := ids("g f e d c b a")
	tests := []struct {
		max  int
		want []string
	}{
		{0, ids("a b c d e")},
		{-1, ids("a b c d e")},
		{1, ids("a")},
		{3, ids("a b c")},
		{7, ids("a b c d e f g")},
		{9, ids("a b c d e f g")},
	}
	for _, tt := range tests {
		r := Rank(Input{Members: members, Reports: reports, MaxVoters: tt.max})
		if !slices.Equal(r.Voters, tt.want) {
			t.Errorf("MaxVoters %d: Voters = %v, want %v", tt.max, r.Voters, tt.want)
		}
		if !slices.Equal(r.Voters, r.Preference[:len(r.Voters)]) {
			t.Errorf("MaxVoters %d: Voters %v is not a prefix of %v", tt.max, r.Voters, r.Preference)
		}
	}
}

func TestRankEmpty(t *testing.T) {
	r := Rank(Input{})
	if len(r.Preference) != 0 || len(r.Voters) != 0 || !r.Fallback {
		t.Errorf("Rank(empty) = %+v", r)
	}
	r = Rank(Input{Members: ids("a a b"), Dead: map[string]bool{"b": true}, Reports: links("a-b=1")})
	if want := ids("a"); !slices.Equal(r.Preference, want) || !r.Fallback || !math.IsInf(r.Score["a"], 1) {
		t.Errorf("Rank(one live member) = %+v", r)
	}
}
