package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/node/simnet"
)

// TestPageEvents: a page of messages carries the membership changes among
// its messages (who created the group, joined, left), each in exactly one
// page as the reader pages back, in log order.
func TestPageEvents(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 201, simnet.LinkConfig{Latency: time.Millisecond})
	ctx := ctxT(t, 60*time.Second)
	g, err := c.Node(0).CreateGroup(ctx, "lines")
	if err != nil {
		t.Fatal(err)
	}
	c.GroupID = g.GroupID
	for k := 0; k < 3; k++ {
		c.send(0, fmt.Sprint("before ", k), 10*time.Second)
	}
	c.joinVia0(ctx, 1)
	for k := 0; k < 3; k++ {
		c.send(0, fmt.Sprint("middle ", k), 10*time.Second)
	}
	c.joinVia0(ctx, 2)
	if err := c.Node(2).Leave(ctx, c.GroupID); err != nil {
		t.Fatal(err)
	}
	c.send(0, "after", 10*time.Second)

	// Page back from the newest, two messages at a time, and gather the
	// lines each page carries.
	var lines []string
	seen := map[string]bool{}
	before := ""
	for {
		p, err := c.Node(0).MessagePage(c.GroupID, 2, before)
		if err != nil {
			t.Fatal(err)
		}
		// Each page's lines fall among its own messages: none before
		// its first one unless it is the oldest page.
		var page []string
		for _, ev := range p.Events {
			key := fmt.Sprintf("%s %s@%d", ev.Name, ev.Kind, ev.Index)
			if seen[key] {
				t.Errorf("%s in two pages", key)
			}
			seen[key] = true
			if p.More && len(p.Messages) > 0 && ev.Index < p.Messages[0].Index {
				t.Errorf("%s is before the page's first message (%d)", key, p.Messages[0].Index)
			}
			page = append(page, ev.Name+" "+ev.Kind)
		}
		lines = append(page, lines...)
		if !p.More || len(p.Messages) == 0 {
			break
		}
		before = p.Messages[0].ID
	}
	want := "node0 created|node1 joined|node2 joined|node2 left"
	if got := strings.Join(lines, "|"); got != want {
		t.Fatalf("lines %q, want %q", got, want)
	}
	// Every message at once: the same lines.
	all, err := c.Node(0).MessagePage(c.GroupID, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Events) != 4 || all.Events[0].Kind != api.EventCreated || all.Events[3].Kind != api.EventLeft {
		t.Fatalf("every message at once: %+v", all.Events)
	}
}

// joinVia0 has node0 invite member k, and k join with the code.
func (c *cluster) joinVia0(ctx context.Context, k int) {
	c.t.Helper()
	code, err := c.Node(0).Invite(ctx, c.GroupID, c.Member(k).ID.Public().String())
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.Node(k).Join(ctx, code); err != nil {
		c.t.Fatal(err)
	}
}
