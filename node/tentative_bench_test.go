package node_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
)

// BenchmarkTentative measures issue 18's figures over HTTP on loopback:
// five members, three of them stopped. tentative-p50/p99 is how long a
// send takes to answer with its message held by the other member online
// (stored, sealed, signed, handed over and acknowledged); commit-after-s
// how long, once the three are back, until the other member lists every
// one of those messages committed. The first send after the host is lost
// waits until the group has known no host for a second (an ordinary
// failover sends nothing directly): first-ms is that one, apart.
func BenchmarkTentative(b *testing.B) {
	const msgs = 20
	var lat []time.Duration
	var back, first []time.Duration
	for k := 0; k < b.N; k++ {
		nc, err := nodetest.New(nodetest.Options{
			Size: 5, HTTP: true, Dir: b.TempDir(),
			Config: node.Config{Logger: testLogger(b), RetryInterval: 200 * time.Millisecond},
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := nc.StartAll(); err != nil {
			b.Fatal(err)
		}
		c := &cluster{Cluster: nc, t: b}
		c.form()
		c.waitVoters(5)
		c.stopMajority(0)
		var ids []string
		for m := 0; m < msgs; m++ {
			start := time.Now()
			sent := c.send(m%2, fmt.Sprint("tentative ", m), 20*time.Second)
			d := time.Since(start)
			if sent.State != node.StateTentative || sent.Delivered != 1 {
				b.Fatalf("send %d: %s, delivered to %d", m, sent.State, sent.Delivered)
			}
			if m == 0 {
				first = append(first, d)
			} else {
				lat = append(lat, d)
			}
			ids = append(ids, sent.ID)
		}
		start := time.Now()
		for _, i := range []int{2, 3, 4} {
			c.start(i)
		}
		c.Eventually(b, 60*time.Second, "every tentative message committed on node1", func() bool {
			got := c.listed(1)
			for _, id := range ids {
				if got[id].State != node.StateCommitted {
					return false
				}
			}
			return true
		})
		back = append(back, time.Since(start))
		nc.Close()
	}
	slices.Sort(lat)
	slices.Sort(back)
	slices.Sort(first)
	b.ReportMetric(float64(first[len(first)/2].Microseconds())/1000, "first-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "tentative-ms-p50")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "tentative-ms-p99")
	b.ReportMetric(back[len(back)/2].Seconds(), "commit-after-s")
}
