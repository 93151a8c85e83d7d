package web

import (
	"context"
	"fmt"

	"github.com/demes/demes/api"
)

// Re-forming in the fake: a member of a group whose node shows a fork
// starts a successor without the host the alert names, or joins the one
// another member started (the fake has no histories to compare: every
// member's matches).

// reformStatusLocked adds what g continues, or, halted on n, its
// successors, to n's status gs.
func (w *fakeWorld) reformStatusLocked(g *fakeGroup, n *fakeNode, gs *api.GroupStatus) {
	gs.Continues = g.continues
	if g.fork[n] == nil {
		return
	}
	for _, s := range w.sortedGroupsLocked() {
		if s.continues != nil && s.continues.GroupID == g.id {
			gs.Successors = append(gs.Successors, api.SuccessorOffer{GroupID: s.id, Continues: *s.continues, Member: s.isMember(n)})
		}
	}
}

// Reform implements Backend.
func (n *fakeNode) Reform(ctx context.Context, groupID string, req api.ReformRequest) (api.ReformResult, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkLocked(); err != nil {
		return api.ReformResult{}, err
	}
	g, err := n.groupLocked(groupID)
	if err != nil {
		return api.ReformResult{}, err
	}
	f := g.fork[n]
	if f == nil {
		return api.ReformResult{}, fmt.Errorf("reform: group %q is not halted: %w", g.name, api.ErrInvalid)
	}
	for _, s := range n.w.sortedGroupsLocked() {
		if s.continues == nil || s.continues.GroupID != g.id {
			continue
		}
		action := api.ReformAlready
		if !s.isMember(n) {
			s.members = append(s.members, n)
			action = api.ReformJoined
		}
		n.w.notifyStatusLocked(s)
		n.w.notifyStatusLocked(g)
		return api.ReformResult{GroupID: s.id, Name: s.name, Action: action, Continues: *s.continues}, nil
	}
	without := f.Host
	name := "the host"
	for _, m := range g.members {
		if m.pub.String() == without {
			name = m.name
		}
	}
	s := &fakeGroup{id: randomHex(8), name: g.name, members: []*fakeNode{n}, admins: map[*fakeNode]bool{n: true}, quorum: true, term: 1,
		continues: &api.Continuation{GroupID: g.id, Name: g.name, Index: f.Index - 1, Without: without, WithoutName: name, By: n.pub.String(), ByName: n.name,
			Message: fmt.Sprintf("Continued from %q without %s, after members were shown different histories.", g.name, name)}}
	n.w.groups[s.id] = s
	n.w.notifyStatusLocked(s)
	n.w.notifyStatusLocked(g)
	return api.ReformResult{GroupID: s.id, Name: s.name, Action: api.ReformStarted, Continues: *s.continues}, nil
}
