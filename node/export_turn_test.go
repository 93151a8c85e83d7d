package node

import (
	"context"
	"fmt"
)

// ServeInOneTurn has group gid's goroutine run the next k requests made of
// it (Send's, say) inside one turn, as drainWaiting runs the requests that
// wait when a turn's event is done, and then call during, still inside that
// turn: before the turn publishes the group's view and writes its Ready.
// It returns once the goroutine serves, with a channel that gets the
// turn's end (nil, or why it did not serve k requests).
func ServeInOneTurn(ctx context.Context, n *Node, gid string, k int, during func()) (<-chan error, error) {
	g, err := n.groupByText(gid)
	if err != nil {
		return nil, err
	}
	serving := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var serr error
		err := g.do(ctx, func() {
			close(serving)
			for i := range k {
				select {
				case fn := <-g.reqc:
					fn()
				case <-ctx.Done():
					serr = fmt.Errorf("served %d of %d requests: %w", i, k, ctx.Err())
					return
				}
			}
			during()
		})
		if err == nil {
			err = serr
		}
		done <- err
	}()
	select {
	case <-serving:
		return done, nil
	case err := <-done:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
