package node

import "context"

// FailTentativeWrites makes n's writes of group gid's tentative messages
// fail with err, as on a disk that refuses them, and work again when err is
// nil. Reads and every other write go on as before.
func FailTentativeWrites(ctx context.Context, n *Node, gid string, err error) error {
	g, gerr := n.groupByText(gid)
	if gerr != nil {
		return gerr
	}
	return g.do(ctx, func() {
		if err == nil {
			g.tentStore = n.store
			return
		}
		g.tentStore = failingTentative{tentativeStore: n.store, err: err}
	})
}

// failingTentative is a tentative store whose writes fail with err.
type failingTentative struct {
	tentativeStore
	err error
}

func (f failingTentative) UpdateTentative([]byte, map[string][]byte, [][]byte) error {
	return f.err
}
