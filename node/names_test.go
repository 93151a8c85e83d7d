package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestSharedNamesFlagged: an impostor who joins as " Alice" beside alice
// makes both of them flagged as sharing a name, in the member list, on
// their messages (a page, a search, the events) and on their membership
// lines, with their fingerprints; bob, whose name is his own, is not,
// until a member who joined as "ｂｏｂ" (full-width) and left: a former
// member's messages and lines are still shown, so its name still counts.
func TestSharedNamesFlagged(t *testing.T) {
	t.Parallel()
	names := []string{"alice", "bob", " Alice", "ｂｏｂ"}
	c := newClusterWith(t, 4, 211, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for i, n := range names {
			c.Member(i).Name = n
		}
	})
	ctx := ctxT(t, 90*time.Second)
	g, err := c.Node(0).CreateGroup(ctx, "names")
	if err != nil {
		t.Fatal(err)
	}
	c.GroupID = g.GroupID
	// The impostor's message, as node 0 tells its subscribers.
	events, stop := c.Node(0).Subscribe()
	defer stop()
	arrived := make(chan api.Message, 1)
	go func() {
		for ev := range events {
			if ev.Kind == "message" && ev.Message != nil && ev.Message.Author == c.Member(2).ID.Public().String() && ev.Message.State == node.StateCommitted {
				select {
				case arrived <- *ev.Message:
				default:
				}
			}
		}
	}()
	c.joinVia0(ctx, 1)
	c.joinVia0(ctx, 2)
	for k := 0; k < 3; k++ {
		c.sendCommitted(k, "hello from "+names[k], 10*time.Second)
	}
	fp := func(k int) string { return c.Member(k).ID.Public().Fingerprint() }
	id := func(k int) string { return c.Member(k).ID.Public().String() }
	// check waits until node 0 lists messages messages and flags the
	// members of shared, and only them, everywhere.
	check := func(messages int, shared map[int]bool) {
		t.Helper()
		want := func(author string) (bool, string) {
			for k := range names {
				if id(k) == author && shared[k] {
					return true, fp(k)
				}
			}
			return false, ""
		}
		var problems []string
		bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := c.Until(wctx, "node0 to flag the shared names", func() bool {
			problems = nil
			st := c.Node(0).Status()
			if len(st.Groups) != 1 {
				bad("%d groups", len(st.Groups))
				return false
			}
			for _, m := range st.Groups[0].Members {
				if s, _ := want(m.PublicID); m.NameShared != s {
					bad("member %q: name_shared %v", m.Name, m.NameShared)
				}
			}
			p, err := c.Node(0).MessagePage(c.GroupID, 0, "")
			if err != nil {
				t.Fatal(err)
			}
			found, err := c.Node(0).Search(ctx, c.GroupID, "hello", 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Messages) != messages || len(found) != messages {
				bad("%d messages, %d found by a search, want %d", len(p.Messages), len(found), messages)
			}
			for _, m := range append(p.Messages, found...) {
				if s, f := want(m.Author); m.NameShared != s || m.AuthorFingerprint != f {
					bad("%q by %q: name_shared %v, fingerprint %q; want %v, %q", m.Text, m.Name, m.NameShared, m.AuthorFingerprint, s, f)
				}
			}
			for _, ev := range p.Events {
				if s, f := want(ev.Member); ev.NameShared != s || ev.Fingerprint != f {
					bad("%q %s: name_shared %v, fingerprint %q; want %v, %q", ev.Name, ev.Kind, ev.NameShared, ev.Fingerprint, s, f)
				}
			}
			return len(problems) == 0
		})
		if err != nil {
			t.Fatalf("%v:\n%s", err, strings.Join(problems, "\n"))
		}
	}
	check(3, map[int]bool{0: true, 2: true})
	select {
	case m := <-arrived:
		if !m.NameShared || m.AuthorFingerprint != fp(2) {
			t.Errorf("the event of the impostor's message: name_shared %v, fingerprint %q", m.NameShared, m.AuthorFingerprint)
		}
	case <-ctx.Done():
		t.Fatal("no event of the impostor's message")
	}

	// A second bob joins, writes and leaves.
	c.joinVia0(ctx, 3)
	c.sendCommitted(3, "hello from "+names[3], 10*time.Second)
	if err := c.Node(3).Leave(ctx, c.GroupID); err != nil {
		t.Fatal(err)
	}
	check(4, map[int]bool{0: true, 1: true, 2: true, 3: true})
	// Once node 0 applied the leave, the former member is still counted.
	c.Eventually(t, 30*time.Second, "node0 to see the leave", func() bool {
		return len(c.Node(0).Status().Groups[0].Members) == 3
	})
	check(4, map[int]bool{0: true, 1: true, 2: true, 3: true})
}
