package node_test

import (
	"testing"
	"time"

	"github.com/demes/demes/content"
	"github.com/demes/demes/node"
)

// TestBoardCacheBoundedUnderChanges: a member reacting again and again to
// one message (within the window) grows no member's board in memory past
// its bound. Before, each change applied marked its id as a change in the
// board (content.Board.Apply) without counting in learnt, so only learning
// more than four windows of distinct messages emptied it: a member that
// never restarts kept the id of every change ever applied.
func TestBoardCacheBoundedUnderChanges(t *testing.T) {
	t.Parallel()
	c := newBoardCluster(t, 251)
	c.form()
	m := c.send(0, "a message reacted to again and again", 10*time.Second)
	c.shown(1, m.ID, "listed", func(m node.Message) bool { return m.ID != "" })
	const reactions = 40
	for k := range reactions {
		c.post(1, content.Content{Kind: content.Reaction, Ref: ref(t, m), Emoji: []string{"👍", "🎉"}[k%2]})
	}
	c.shown(2, m.ID, "with the last reaction", func(m node.Message) bool {
		return len(m.Reactions) == 1 && m.Reactions[0].Emoji == "🎉"
	})
	for i := range 3 {
		changes, notes, bound, err := node.BoardCacheSize(c.Node(i), c.GroupID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("node%d: the board in memory marks %d changes, holds %d notes (bound %d)", i, changes, notes, bound)
		if changes+notes > 2*bound {
			t.Errorf("node%d's board in memory marks %d changes and holds %d notes after %d reactions, want at most about %d", i, changes, notes, reactions, bound)
		}
	}
}
