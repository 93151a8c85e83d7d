package web

import (
	"context"
	"fmt"

	"github.com/demes/demes/api"
)

// Receipts in the fake world: every member holds every committed message
// (the fake has no lag), and a read mark is shared with a member only when
// both people share read receipts, as the node does.

func (n *fakeNode) MarkRead(ctx context.Context, groupID, messageID string) (uint64, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkLocked(); err != nil {
		return 0, err
	}
	g, err := n.groupLocked(groupID)
	if err != nil {
		return 0, err
	}
	var idx uint64
	for _, m := range g.log {
		if m.ID == messageID {
			idx = m.Index
		}
	}
	if idx == 0 {
		return 0, fmt.Errorf("mark read: message %q is not in the group's order here: %w", messageID, api.ErrNotFound)
	}
	if n.w.reads == nil {
		n.w.reads = map[string]map[*fakeNode]uint64{}
	}
	if n.w.reads[g.id] == nil {
		n.w.reads[g.id] = map[*fakeNode]uint64{}
	}
	if idx > n.w.reads[g.id][n] {
		n.w.reads[g.id][n] = idx
		n.w.notifyStatusLocked(g)
	}
	return n.w.reads[g.id][n], nil
}

func (n *fakeNode) ReadReceipts() bool {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	return !n.w.receiptsOff[n]
}

func (n *fakeNode) SetReadReceipts(on bool) error {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkLocked(); err != nil {
		return err
	}
	if n.w.receiptsOff == nil {
		n.w.receiptsOff = map[*fakeNode]bool{}
	}
	n.w.receiptsOff[n] = !on
	for _, g := range n.w.groups {
		if g.isMember(n) {
			n.w.notifyStatusLocked(g)
		}
	}
	return nil
}

// receiptsLocked fills in member m's receipts as node n shows them.
func (w *fakeWorld) receiptsLocked(g *fakeGroup, n, m *fakeNode, mem *api.Member) {
	if !m.stopped {
		mem.HoldsThrough = uint64(len(g.log))
	}
	if m == n || (!w.receiptsOff[n] && !w.receiptsOff[m]) {
		mem.ReadThrough = w.reads[g.id][m]
	}
}

// readThrough returns how far node n has marked group gid read.
func (w *fakeWorld) readThrough(gid string, n *fakeNode) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reads[gid][n]
}
