package node

import (
	"context"
	"time"
)

// ExpireKeysAt deletes, as if the time were at, what n's key policy no
// longer keeps at that time (keys.go), and makes a new prekey if the
// current one's secret went with them: a test's way to jump weeks ahead.
func ExpireKeysAt(n *Node, at time.Time) error {
	n.keys.expireNow(at)
	n.keys.mu.Lock()
	lost := n.keys.secrets.Secret(n.keys.current.ID) == nil
	n.keys.mu.Unlock()
	if lost {
		return n.keys.Rotate(time.Now())
	}
	return nil
}

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
