package node_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// testWindow is a message window small enough that a test of a dozen
// messages reads most of its pages from the stored log.
const testWindow = 3

// TestMessagePages: a member pages through the history from the newest back,
// in group order, without a gap or a repeat, whether a page comes from
// memory or from the stored log (a window of 3 messages in memory), and
// across a membership change (the messages before it are sealed under keys
// the group's key ring has forgotten); more says whether older messages it
// can read exist, so a member who joined later stops at its first readable
// message, and a message from before its join ends a page without being
// shown; an unknown id and a bad limit are refused; and after a restart from
// a snapshot (which opens only the newest messages again) the pages are the
// same.
func TestMessagePages(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 31, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) {
				cfg.MessageWindow = testWindow
				cfg.SnapshotEntries, cfg.SnapshotKeep = 8, 2
			}
		}
	})
	ctx := ctxT(t, 60*time.Second)
	gi, err := c.Node(0).CreateGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	c.GroupID = gi.GroupID
	early := c.send(0, "before the join", 10*time.Second)
	code, err := c.Node(0).Invite(ctx, c.GroupID, c.Member(1).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(1).Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	const total, later = 13, 10 // node 2 joins after the first 10
	var want []string
	for k := range total {
		if k == later {
			code, err := c.Node(0).Invite(ctx, c.GroupID, c.Member(2).ID.Public().String())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Node(2).Join(ctx, code); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, fmt.Sprintf("m%d", k))
		c.send(k%2, want[k], 10*time.Second)
	}
	c.Eventually(t, 30*time.Second, "the joiners to read every message", func() bool {
		a, b := c.committed(1), c.committed(2)
		return len(a) == total && a[total-1].Text == want[total-1] && len(b) == total-later && b[len(b)-1].Text == want[total-1]
	})

	check := func(when string) {
		t.Helper()
		for i, w := range [][]string{append([]string{early.Text}, want...), want, want[later:]} {
			n := c.Node(i)
			all, err := n.Messages(c.GroupID)
			if err != nil {
				t.Fatal(err)
			}
			if got := msgTexts(all); got != strings.Join(w, " ") {
				t.Fatalf("%s, node %d lists %q, want %q", when, i, got, strings.Join(w, " "))
			}
			// Pages of 4 from the newest back.
			var pages []string
			before := ""
			for {
				p, err := n.MessagePage(c.GroupID, 4, before)
				if err != nil {
					t.Fatalf("%s, node %d, page before %q: %v", when, i, before, err)
				}
				pages = append([]string{msgTexts(p.Messages)}, pages...)
				if !p.More {
					break
				}
				if len(p.Messages) == 0 || len(pages) > len(w) {
					t.Fatalf("%s, node %d: more after %q", when, i, pages)
				}
				before = p.Messages[0].ID
			}
			if got := strings.Join(pages, " "); got != strings.Join(w, " ") {
				t.Errorf("%s, node %d pages through %q, want %q", when, i, pages, w)
			}
			if len(pages) != (len(w)+3)/4 {
				t.Errorf("%s, node %d: %d pages of 4 for %d messages", when, i, len(pages), len(w))
			}
			if len(all) < 5 {
				continue
			}
			// The page before a message of the window reaches into the log;
			// one ending at the first readable message says there is no
			// more; one before it is empty.
			for _, tc := range []struct {
				limit      int
				before     int // index in all
				want       string
				wantMore   bool
				wantErrors bool
			}{
				{limit: 2, before: len(all) - 2, want: msgTexts(all[len(all)-4 : len(all)-2]), wantMore: true},
				{limit: 0, before: len(all) - 1, want: msgTexts(all[:len(all)-1])},
				{limit: 3, before: 3, want: msgTexts(all[:3])},
				{limit: 2, before: 1, want: msgTexts(all[:1])},
				{limit: 2, before: 0, want: ""},
			} {
				p, err := n.MessagePage(c.GroupID, tc.limit, all[tc.before].ID)
				if err != nil || msgTexts(p.Messages) != tc.want || p.More != tc.wantMore {
					t.Errorf("%s, node %d, %d before %s: %q more %v, %v; want %q more %v",
						when, i, tc.limit, all[tc.before].Text, msgTexts(p.Messages), p.More, err, tc.want, tc.wantMore)
				}
			}
		}
		// The joiner cannot read the message from before its join, yet
		// it is one of the group's: the page before it is empty.
		if p, err := c.Node(1).MessagePage(c.GroupID, 5, early.ID); err != nil || len(p.Messages) != 0 || p.More {
			t.Errorf("%s, the joiner's page before a message it cannot read: %q more %v, %v", when, msgTexts(p.Messages), p.More, err)
		}
		for _, bad := range []string{"00000000000000000000000000000000", "not hex"} {
			if _, err := c.Node(1).MessagePage(c.GroupID, 5, bad); !errors.Is(err, api.ErrUnknownMessage) || !errors.Is(err, node.ErrNotFound) {
				t.Errorf("%s, page before %q: %v, want an unknown message", when, bad, err)
			}
		}
		for _, limit := range []int{-1, api.MaxPage + 1} {
			if _, err := c.Node(1).MessagePage(c.GroupID, limit, ""); !errors.Is(err, node.ErrInvalid) {
				t.Errorf("%s, limit %d: %v, want invalid", when, limit, err)
			}
		}
	}
	check("at first")
	for i := range 3 {
		c.restart(i)
	}
	var listed, want3 [3]int
	want3 = [3]int{total + 1, total, total - later}
	if err := c.Until(ctxT(t, 30*time.Second), "the restarted nodes to list every message", func() bool {
		listed = [3]int{len(c.committed(0)), len(c.committed(1)), len(c.committed(2))}
		return listed == want3
	}); err != nil {
		t.Fatalf("the nodes list %v messages, want %v: %v\n%s", listed, want3, err, c.Alerts())
	}
	for i := range 3 {
		if s := c.logStats(i); s.RestoredFrom == 0 {
			t.Fatalf("node %d restarted without a snapshot: the test does not rebuild the history from one", i)
		}
	}
	check("after a restart")
}

// TestWindowAcrossEpochsAfterRestart: a restart from a snapshot opens the
// newest messages before it again, and those of an epoch before the
// snapshot's open with the keys this node kept, whoever sent them. The
// restart first forgot other members' keys of past epochs, as an epoch
// change does, so that another member's message from before a rekey was
// left out of the window while an older one of this node's own stayed in
// it: the pages then skipped the newer message for good (found as
// TestMessagePages timing out when its snapshot fell right after a join).
func TestWindowAcrossEpochsAfterRestart(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 2, 32, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) { cfg.MessageWindow = testWindow }
		}
	})
	c.form()
	// A key header travels with the first message under a key only: the
	// window of 3 starts after it, so their messages in it open only with
	// the kept key.
	for k, from := range []int{1, 1, 0, 1} {
		c.sendCommitted(from, fmt.Sprintf("%d from node%d", k, from), 10*time.Second)
		c.converged(k + 1)
	}
	before := msgTexts(c.committed(0))
	if err := c.Node(0).Rekey(ctxT(t, 30*time.Second), c.GroupID); err != nil {
		t.Fatal(err)
	}
	// A clean stop takes its snapshot after the rekey: the restart opens
	// the window from the stored log, under the past epoch's keys; from
	// the stored board, then, without it, from the whole log.
	for _, board := range []bool{true, false} {
		c.Stop(0)
		if !board {
			if err := node.DropStoredBoard(c.Member(0).Dir, c.Member(0).ID, c.GroupID); err != nil {
				t.Fatal(err)
			}
		}
		c.start(0)
		if s := c.logStats(0); s.RestoredFrom == 0 {
			t.Fatal("node0 restarted without a snapshot: the test does not open the window again")
		}
		bs, err := node.GroupBoardStats(c.Node(0), c.GroupID)
		if err != nil || bs.Restored != board {
			t.Fatalf("restarted from the stored board: %v, %v; want %v", bs.Restored, err, board)
		}
		if got := msgTexts(c.committed(0)); got != before {
			t.Errorf("after a restart (stored board: %v) node0 lists %q, want %q", board, got, before)
		}
	}
}

func msgTexts(ms []node.Message) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Text)
	}
	return strings.Join(s, " ")
}
