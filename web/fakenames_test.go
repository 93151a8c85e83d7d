package web

import (
	"strings"
	"testing"

	"github.com/demes/demes/api"
)

// The fake's stand-in for the node's shared display names (node/names.go,
// tested there): names equal once lower-cased with their white space
// collapsed are shared, among the group's members and former members.

// namesakesLocked returns the members and former members of g whose name
// another one shares.
func (g *fakeGroup) namesakesLocked() map[*fakeNode]bool {
	byName := map[string][]*fakeNode{}
	for _, n := range append(append([]*fakeNode(nil), g.members...), g.former...) {
		if f := strings.ToLower(strings.Join(strings.Fields(n.name), " ")); f != "" {
			byName[f] = append(byName[f], n)
		}
	}
	out := map[*fakeNode]bool{}
	for _, ns := range byName {
		for _, n := range ns {
			out[n] = len(ns) > 1
		}
	}
	return out
}

// markNameLocked sets m's NameShared and AuthorFingerprint as the node
// does, when its author's name is shared.
func (g *fakeGroup) markNameLocked(m *api.Message) {
	for n, shared := range g.namesakesLocked() {
		if shared && n.pub.String() == m.Author {
			m.NameShared, m.AuthorFingerprint = true, n.pub.Fingerprint()
		}
	}
}

// joinAs adds a node, known to the test as key, to group gid under the
// display name name (one another member may share, or one with controls).
func (w *fakeWorld) joinAs(t testing.TB, gid, key, name string) *fakeNode {
	n := w.addNode(t, key, 4)
	w.mu.Lock()
	n.name = name
	w.mu.Unlock()
	w.addMember(gid, n)
	return n
}
