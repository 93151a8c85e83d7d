package web

import "github.com/demes/demes/api"

// Keys in the fake: what a member's node says of the group's keys (the
// fake seals nothing). A test sets the alert of a node that lost its keys,
// and whether the members all have a prekey; the fake reports them as the
// node does: to members only.

// keysStatusLocked adds what n's node says of g's keys to n's status gs.
func (w *fakeWorld) keysStatusLocked(g *fakeGroup, n *fakeNode, gs *api.GroupStatus) {
	if !g.isMember(n) {
		return
	}
	gs.Keys = g.keys[n]
	gs.Restored = g.restored[n]
	gs.ForwardSecrecy = g.forwardSecrecy && len(g.noPrekey) == 0
	gs.NoPrekey = append([]string(nil), g.noPrekey...)
}

// setKeysAlert sets the alert n's node shows for group gid after losing
// its keys (nil: none).
func (w *fakeWorld) setKeysAlert(gid string, n *fakeNode, alert *api.KeysAlert) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.groups[gid]
	if g.keys == nil {
		g.keys = map[*fakeNode]*api.KeysAlert{}
	}
	g.keys[n] = alert
	w.notifyStatusLocked(g)
}

// setPrekeys says whether every member of group gid has a valid prekey
// (forward secrecy), and names those that have none.
func (w *fakeWorld) setPrekeys(gid string, forwardSecrecy bool, noPrekey ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.groups[gid]
	g.forwardSecrecy, g.noPrekey = forwardSecrecy, noPrekey
	w.notifyStatusLocked(g)
}

// setRestored sets what n's node says of group gid while its copy, put
// back from a backup, catches up ("": it has).
func (w *fakeWorld) setRestored(gid string, n *fakeNode, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.groups[gid]
	if g.restored == nil {
		g.restored = map[*fakeNode]string{}
	}
	g.restored[n] = text
	w.notifyStatusLocked(g)
}
