package nodetest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/p2p"
)

// TestP2P forms a group of three nodes on real libp2p hosts on loopback,
// commits a message on every node, and restarts a member, which keeps its
// URL and sends again; with Relayed, every member is reached at its
// circuit address only.
func TestP2P(t *testing.T) {
	for _, relayed := range []bool{false, true} {
		name := "direct"
		if relayed {
			name = "relayed"
		}
		t.Run(name, func(t *testing.T) {
			c, err := nodetest.New(nodetest.Options{Size: 3, Seed: 7, Dir: t.TempDir(), P2P: true, Relayed: relayed})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			for _, m := range c.Members() {
				if !p2p.IsURL(m.URL) || relayed != strings.Contains(m.URL, "/p2p-circuit") {
					t.Fatalf("%s advertises %q", m.Name, m.URL)
				}
			}
			if err := c.StartAll(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.Form(ctx, nodetest.FormOptions{}); err != nil {
				t.Fatal(err)
			}
			send := func(i int, text string, want int) {
				t.Helper()
				if _, err := c.Send(ctx, i, text, 10*time.Second); err != nil {
					t.Fatal(err)
				}
				if err := c.Until(ctx, "the message committed on every node", func() bool {
					_, ok := c.Converged(want)
					return ok
				}); err != nil {
					t.Fatal(err)
				}
			}
			send(0, "over libp2p", 1)
			url := c.Member(1).URL
			if err := c.Restart(1); err != nil {
				t.Fatal(err)
			}
			if c.Member(1).URL != url {
				t.Fatalf("node1's URL changed over a restart: %q, then %q", url, c.Member(1).URL)
			}
			send(1, "after a restart", 2)
			t.Logf("paths: %v", c.Paths())
		})
	}
}
