package node_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/content"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestSearch: a search finds the messages whose text holds the query, case
// aside, the newest first, in memory and in the stored history older than
// the window alike, and shows them as listed (an edited text, a deleted
// message left out).
func TestSearch(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 2, 211, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for i := 0; i < 2; i++ {
			c.Member(i).Tweak = func(cfg *node.Config) { cfg.MessageWindow = 5 }
		}
	})
	c.form()
	ids := map[int]string{}
	for k := 0; k < 30; k++ {
		text := fmt.Sprint("filler ", k)
		if k%7 == 0 {
			text = fmt.Sprint("the Blue door ", k)
		}
		ids[k] = c.send(k%2, text, 10*time.Second).ID
	}
	ctx := ctxT(t, 30*time.Second)
	// Two old messages, out of the window: one edited to match, one
	// matching deleted.
	ref := func(k int) *[16]byte {
		b, _ := hex.DecodeString(ids[k])
		id := [16]byte(b)
		return &id
	}
	c.post(1, content.Content{Kind: content.Edit, Ref: ref(3), Text: "now a blue door too"})
	c.post(0, content.Content{Kind: content.Delete, Ref: ref(14)})
	got, err := c.Node(0).Search(ctx, c.GroupID, "blue DOOR", 10)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range got {
		texts = append(texts, m.Text)
	}
	want := []string{"the Blue door 28", "the Blue door 21", "the Blue door 7", "now a blue door too", "the Blue door 0"}
	if fmt.Sprint(texts) != fmt.Sprint(want) {
		t.Fatalf("search found %q, want %q (newest first, from memory and the store)", texts, want)
	}
	if got, _ := c.Node(0).Search(ctx, c.GroupID, "blue door", 2); len(got) != 2 || got[0].Text != want[0] {
		t.Fatalf("a limit of 2 gave %d results", len(got))
	}
	if got, _ := c.Node(1).Search(ctx, c.GroupID, "nothing like it", 10); len(got) != 0 {
		t.Fatalf("a search for what nobody wrote found %d", len(got))
	}
	if _, err := c.Node(0).Search(ctx, c.GroupID, "  ", 10); !errors.Is(err, node.ErrInvalid) {
		t.Fatalf("an empty search: %v", err)
	}
}
