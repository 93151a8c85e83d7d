package adversary

import (
	"slices"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// BenchmarkForkDetection measures how long after a malicious host first
// sends one member a forked entry both sides of the fork have found it,
// with the default ping interval (1 s): each iteration forms a group of
// three and forks it as TestHostForksTheGroup does. It reports the median
// and the slowest (p99 of so few runs) in milliseconds, and the bytes a
// signed head adds to each ping and pong.
//
//	go test -run '^$' -bench ForkDetection -benchtime 20x ./adversary/
func BenchmarkForkDetection(b *testing.B) {
	if testing.Short() {
		b.Skip("forms a group per iteration")
	}
	var took []time.Duration
	var headBytes int
	for i := 0; i < b.N; i++ {
		g, link := forkGroupEvery(b, time.Second)
		if headBytes == 0 {
			headBytes = len(g.signBy(0, crypto.TypeHead, &state.CheckpointBody{Index: 1 << 20, Head: make([]byte, 32)}))
		}
		sent := g.forkNextChat(link, 1)
		g.send(1, "meet at noon")
		start := <-sent
		var found [3]time.Time
		g.c.Eventually(b, 60*time.Second, "both sides to find the fork", func() bool {
			for _, n := range []int{1, 2} {
				if st, ok := g.c.Status(n); ok && st.Fork != nil && found[n].IsZero() {
					found[n] = time.Now()
				}
			}
			return !found[1].IsZero() && !found[2].IsZero()
		})
		last := found[1]
		if found[2].After(last) {
			last = found[2]
		}
		took = append(took, last.Sub(start))
		g.c.Close()
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(took[len(took)/2]), "ms-median")
	b.ReportMetric(ms(took[min(len(took)-1, len(took)*99/100)]), "ms-p99")
	b.ReportMetric(float64(headBytes), "head-bytes/ping")
}
