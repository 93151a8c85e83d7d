package web

import "github.com/demes/demes/api"

// setReach makes n's status say r of its reachability, and tells its
// pages.
func (w *fakeWorld) setReach(n *fakeNode, r *api.Reachability) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reach == nil {
		w.reach = map[*fakeNode]*api.Reachability{}
	}
	w.reach[n] = r
	w.notifyNodeLocked(n)
}

// setPath makes from's status say that it reaches to by path ("direct",
// "relayed", or "" for not connected), and tells its pages.
func (w *fakeWorld) setPath(from, to *fakeNode, path string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.paths == nil {
		w.paths = map[[2]*fakeNode]string{}
	}
	w.paths[[2]*fakeNode{from, to}] = path
	w.notifyNodeLocked(from)
}

// notifyNodeLocked sends n a status event for each of its groups.
func (w *fakeWorld) notifyNodeLocked(n *fakeNode) {
	for _, g := range w.sortedGroupsLocked() {
		if g.isMember(n) {
			n.notifyLocked(api.Event{Kind: "status", GroupID: g.id})
		}
	}
}
