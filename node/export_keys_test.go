package node

import (
	"bytes"
	"context"
	"time"
)

// ExpireKeysAt deletes, as if the time were at, what n's key policy no
// longer keeps at that time (keys.go): a test's way to jump weeks ahead. A
// prekey the log names as n's may go with them; n then makes a new one by
// itself (keyBook.renewIfLost).
func ExpireKeysAt(n *Node, at time.Time) { n.keys.expireNow(at) }

// MembersWithPrekeys returns how many members of the group have a prekey in
// n's state.
func MembersWithPrekeys(n *Node, groupID string) (int, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return 0, err
	}
	k := 0
	err = g.do(context.Background(), func() {
		for _, m := range g.st.Members {
			if len(m.Prekey) > 0 {
				k++
			}
		}
	})
	return k, err
}

// IdentitySealed returns how many messages n sealed with a key header to
// identity keys rather than prekeys.
func IdentitySealed(n *Node) uint64 { return n.fig.identitySealed.Load() }

// RotatePrekey makes n start using a new prekey, as its weekly rotation
// does.
func RotatePrekey(n *Node) error { return n.keys.Rotate(time.Now()) }

// NamesPrekey reports whether n's state of the group names member's
// current prekey as member's.
func NamesPrekey(n *Node, groupID string, member *Node) (bool, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return false, err
	}
	cur := member.keys.Current()
	var ok bool
	err = g.do(context.Background(), func() {
		m := g.st.Members[member.self.Sign]
		ok = m != nil && bytes.Equal(m.Prekey, cur)
	})
	return ok, err
}

// StoredKeyLinks returns how many key link roots n's key store keeps.
func StoredKeyLinks(n *Node) int { return len(n.keys.store.List("link/")) }
