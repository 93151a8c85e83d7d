package node

import (
	"context"

	"github.com/demes/demes/content"
)

// EnqueueUnstored queues c on n's group as Post does, without making it
// durable, and returns a function that reports whether it is on disk yet.
func EnqueueUnstored(ctx context.Context, n *Node, groupID string, c content.Content) (func() bool, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return nil, err
	}
	body, err := content.Encode(c)
	if err != nil {
		return nil, err
	}
	var durable chan struct{}
	var eerr error
	if err := g.do(ctx, func() { _, durable, _, _, eerr = g.enqueue(string(body)) }); err != nil {
		return nil, err
	}
	return func() bool {
		select {
		case <-durable:
			return true
		default:
			return false
		}
	}, eerr
}
