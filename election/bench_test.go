package election

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkRank ranks a complete latency graph of n members, the cost every
// member pays each time a latency map is committed.
func BenchmarkRank(b *testing.B) {
	for _, n := range []int{5, 50, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(uint64(n), 11))
			in := Input{Reports: map[string]map[string]float64{}}
			for i := range n {
				in.Members = append(in.Members, fmt.Sprintf("demes1member%03d", i))
			}
			for _, a := range in.Members {
				for _, p := range in.Members {
					if a != p {
						report(in.Reports, a, p, 1+rng.Float64()*200)
					}
				}
			}
			for b.Loop() {
				Rank(in)
			}
		})
	}
}
