package web

// The fake node as a demo node: stopped and started from its UI.

// StopNode implements Control: the node's streams end and others see it
// offline.
func (n *fakeNode) StopNode() error {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	n.stopped = true
	n.closeSubsLocked()
	for _, g := range n.w.groups {
		if g.isMember(n) {
			n.w.notifyStatusLocked(g)
		}
	}
	return nil
}

// StartNode implements Control.
func (n *fakeNode) StartNode() error {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	n.stopped = false
	for _, g := range n.w.groups {
		if g.isMember(n) {
			n.w.notifyStatusLocked(g)
		}
	}
	return nil
}

// Running implements Control.
func (n *fakeNode) Running() bool {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	return !n.stopped
}
