package election

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestShortestPathsBruteForce compares Floyd–Warshall with a deliberately
// simple search over every simple path, on random small graphs.
func TestShortestPathsBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 2000 {
		n := rng.IntN(8)
		w := randomGraph(rng, n, rng.Float64())
		got := shortestPaths(w)
		for i := range n {
			for j := range n {
				want := bruteShortest(w, i, j)
				if !closeEnough(got[i][j], want) {
					t.Fatalf("iteration %d: d[%d][%d] = %v, brute force %v\nw = %v", iter, i, j, got[i][j], want, w)
				}
			}
		}
	}
}

// TestRankBruteForce checks Rank's order against scores computed with the
// brute-force shortest paths and the rules written out the long way.
func TestRankBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for iter := range 500 {
		n := 1 + rng.IntN(7)
		density := rng.Float64()
		in := Input{Reports: map[string]map[string]float64{}, Dead: map[string]bool{}}
		for i := range n {
			in.Members = append(in.Members, fmt.Sprintf("m%d", n-i)) // join order differs from id order
		}
		for _, a := range in.Members {
			if rng.IntN(5) == 0 {
				in.Dead[a] = true
			}
			for _, b := range in.Members {
				if a != b && rng.Float64() < density {
					report(in.Reports, a, b, float64(1+rng.IntN(20)))
				}
			}
		}
		r := Rank(in)

		type key struct {
			reach int
			mean  float64
			join  int
		}
		keys := map[string]key{}
		var live []string
		for _, m := range in.Members {
			if !in.Dead[m] {
				live = append(live, m)
			}
		}
		// Weights the simple way: both reports valid, take the larger.
		w := make([][]float64, len(live))
		for i, a := range live {
			w[i] = make([]float64, len(live))
			for j, b := range live {
				ab, okA := in.Reports[a][b]
				ba, okB := in.Reports[b][a]
				switch {
				case i == j:
				case okA && okB:
					w[i][j] = math.Max(ab, ba)
				default:
					w[i][j] = math.Inf(1)
				}
			}
		}
		withData := 0
		for i := range live {
			for j := range live {
				if i != j && !math.IsInf(w[i][j], 1) {
					withData++
					break
				}
			}
		}
		for i, a := range live {
			k := key{join: i}
			sum := 0.0
			for j := range live {
				if d := bruteShortest(w, i, j); i != j && !math.IsInf(d, 1) {
					k.reach++
					sum += d
				}
			}
			if k.reach > 0 {
				k.mean = sum / float64(k.reach)
			}
			keys[a] = k
			wantScore := math.Inf(1)
			if k.reach > 0 && k.reach == withData-1 {
				wantScore = k.mean
			}
			if !closeEnough(r.Score[a], wantScore) {
				t.Fatalf("iteration %d: Score[%s] = %v, want %v", iter, a, r.Score[a], wantScore)
			}
		}
		if !slices.Equal(slices.Sorted(slices.Values(r.Preference)), slices.Sorted(slices.Values(live))) {
			t.Fatalf("iteration %d: Preference %v is not the live members %v", iter, r.Preference, live)
		}
		// Each adjacent pair must be in order: more reach first (no data
		// last), then lower mean, then id on ties or join order without data.
		for p := 1; p < len(r.Preference); p++ {
			a, b := r.Preference[p-1], r.Preference[p]
			ka, kb := keys[a], keys[b]
			var ok bool
			switch {
			case ka.reach == 0 || kb.reach == 0:
				ok = kb.reach == 0 && (ka.reach > 0 || ka.join < kb.join)
			case ka.reach != kb.reach:
				ok = ka.reach > kb.reach
			case math.Abs(ka.mean-kb.mean) <= TieMillis:
				ok = a < b
			default:
				ok = ka.mean < kb.mean
			}
			if !ok {
				t.Fatalf("iteration %d: %s (%+v) before %s (%+v) in %v", iter, a, ka, b, kb, r.Preference)
			}
		}
		if r.Fallback != (withData == 0) {
			t.Fatalf("iteration %d: Fallback = %v with %d members with data", iter, r.Fallback, withData)
		}
	}
}

// randomGraph returns a symmetric weight matrix with edges present with
// probability p.
func randomGraph(rng *rand.Rand, n int, p float64) [][]float64 {
	w := make([][]float64, n)
	for i := range w {
		w[i] = make([]float64, n)
	}
	for i := range n {
		for j := i + 1; j < n; j++ {
			x := math.Inf(1)
			if rng.Float64() < p {
				x = 0.5 + rng.Float64()*100
			}
			w[i][j], w[j][i] = x, x
		}
	}
	return w
}

// bruteShortest tries every simple path from i to j.
func bruteShortest(w [][]float64, i, j int) float64 {
	if i == j {
		return 0
	}
	best := math.Inf(1)
	visited := make([]bool, len(w))
	var walk func(at int, dist float64)
	walk = func(at int, dist float64) {
		if at == j {
			best = math.Min(best, dist)
			return
		}
		visited[at] = true
		for next := range w {
			if !visited[next] && !math.IsInf(w[at][next], 1) && next != at {
				walk(next, dist+w[at][next])
			}
		}
		visited[at] = false
	}
	walk(i, 0)
	return best
}

// closeEnough compares path lengths that may have been summed in a
// different order.
func closeEnough(a, b float64) bool {
	if math.IsInf(a, 1) || math.IsInf(b, 1) {
		return a == b
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}
