package web

import (
	"context"
	"time"

	"github.com/demes/demes/api"
)

// The fake's quota: a group whose members are over their quota has each
// new message held back in its sender's outbox, as the node holds its own
// (api.Message.Held): nobody else has it, and it goes out once the quota
// allows.

// setOverQuota holds the group's new messages back (over true), or lets
// them go: with the group's quorum, the held ones commit in order.
func (w *fakeWorld) setOverQuota(gid string, over bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.groups[gid]
	g.overQuota = over
	if !over && g.quorum {
		w.commitOutboxLocked(g)
	}
	w.notifyStatusLocked(g)
}

// holdLocked is Send for a group over its quota: m waits in n's outbox,
// held, up to wait. It is called with the world's lock held, and releases
// it.
func (n *fakeNode) holdLocked(ctx context.Context, g *fakeGroup, m api.Message, wait time.Duration) (api.Message, error) {
	m.Held = true
	m.Order = uint64(len(g.log) + len(g.outbox) + 1)
	m.Others = len(g.members) - 1
	p := &fakePending{msg: m, from: n, committed: make(chan struct{})}
	g.outbox = append(g.outbox, p)
	mm := m
	n.notifyLocked(api.Event{Kind: "message", GroupID: g.id, Message: &mm})
	n.notifyLocked(api.Event{Kind: "status", GroupID: g.id})
	n.w.mu.Unlock()
	return n.awaitCommit(ctx, g, p.committed, m, wait), nil
}
