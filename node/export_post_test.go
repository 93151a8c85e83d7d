package node

import (
	"context"
	"encoding/hex"
	"fmt"

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

// ReissueQueued has n's group settle its queued message id as if a
// message of member by had committed under that id (idtaken.go: sent
// again under a new id). It returns the new id and whether n's stored
// outbox holds the message under it once that is done, before n's raft
// can send the proposal of the new id anywhere.
func ReissueQueued(ctx context.Context, n *Node, groupID, id string, by *Node) (newID string, stored bool, err error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return "", false, err
	}
	var derr error
	if err := g.do(ctx, func() {
		var old [16]byte
		if _, derr = hex.Decode(old[:], []byte(id)); derr != nil {
			return
		}
		p := g.outbox[old]
		if p == nil {
			derr = fmt.Errorf("message %s not queued", id)
			return
		}
		g.reissue(p, by.self.Sign, g.st.Applied)
		newID = hex.EncodeToString(p.id[:])
		var ob map[string][]byte
		ob, derr = g.n.store.Outbox(g.id[:])
		_, stored = ob[string(p.id[:])]
	}); err != nil {
		return "", false, err
	}
	return newID, stored, derr
}
