package node

import (
	"context"
	"fmt"

	"github.com/demes/demes/content"
)

// PostUnchecked has n send c as a member whose node skips the checks of
// Post would (a modified client): the group's rules alone stand between
// the change and its target. It returns once c is committed.
func PostUnchecked(ctx context.Context, n *Node, groupID string, c content.Content) (Message, error) {
	body, err := content.Encode(c)
	if err != nil {
		return Message{}, err
	}
	g, err := n.groupByText(groupID)
	if err != nil {
		return Message{}, err
	}
	var (
		m    Message
		done chan struct{}
		serr error
	)
	if err := g.do(ctx, func() { m, _, done, _, serr = g.enqueue(string(body)) }); err != nil {
		return Message{}, err
	}
	if serr != nil {
		return Message{}, serr
	}
	select {
	case <-done:
		return m, nil
	case <-ctx.Done():
		return Message{}, fmt.Errorf("not committed: %w", ctx.Err())
	}
}
