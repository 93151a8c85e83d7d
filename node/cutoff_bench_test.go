package node_test

import (
	"slices"
	"testing"
	"time"

	"github.com/demes/demes/node/simnet"
)

// BenchmarkCutFailover cuts the host's links 20 times in a group of five
// members 1 ms apart (a LAN) with the node's default settings, timing each
// failover from the cut until another member hosts and until a message a
// survivor sends is committed; the links heal between cuts, and each cut
// waits until every member follows the host. Run it as
//
//	go test -run '^$' -bench CutFailover -benchtime 1x ./node
func BenchmarkCutFailover(b *testing.B) {
	for range b.N {
		c := newClusterWith(b, 5, 43, simnet.LinkConfig{Latency: time.Millisecond}, nil)
		c.form()
		c.waitVoters(5)
		var host, commit []time.Duration
		for range 20 {
			h := c.Host()
			if h < 0 {
				c.Eventually(b, time.Minute, "a host", func() bool { h = c.Host(); return h >= 0 })
			}
			start := time.Now()
			c.Isolate(h)
			c.Eventually(b, time.Minute, "a new host", func() bool {
				x := c.Host()
				return x >= 0 && x != h
			})
			host = append(host, time.Since(start))
			c.send((h+1)%5, "after the cut", time.Minute)
			commit = append(commit, time.Since(start))
			c.Net().Heal()
			c.waitVoters(5)
			// The next cut in the steady state: every member follows
			// the host (one that does not yet, just back, cannot tell it
			// went silent).
			c.Eventually(b, time.Minute, "every member to follow one host", c.OneHost())
		}
		for _, s := range []struct {
			name string
			d    []time.Duration
		}{{"host", host}, {"commit", commit}} {
			slices.Sort(s.d)
			b.Logf("%s: %v", s.name, s.d)
			b.ReportMetric(s.d[len(s.d)/2].Seconds(), s.name+"-s-median")
			b.ReportMetric(s.d[len(s.d)*99/100].Seconds(), s.name+"-s-p99")
			b.ReportMetric(s.d[len(s.d)-1].Seconds(), s.name+"-s-max")
		}
		c.Close()
	}
}
