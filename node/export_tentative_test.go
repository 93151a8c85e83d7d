package node

import (
	"context"

	"github.com/demes/demes/crypto"
	pb "go.etcd.io/raft/v3/raftpb"
)

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

// KeepsSenderKey reports whether n's key store keeps the sender key ref of
// group gid.
func KeepsSenderKey(n *Node, gid string, ref crypto.KeyRef) bool {
	g, err := n.groupByText(gid)
	if err != nil {
		return false
	}
	return n.keys.holds(g.id, ref)
}

// TentativeRestored reports whether n's group gid has read again the
// tentative messages it stored before its start (restoreTentative).
func TentativeRestored(n *Node, gid string) bool {
	g, err := n.groupByText(gid)
	if err != nil {
		return false
	}
	var done bool
	if err := g.do(context.Background(), func() { done = g.tentRestored }); err != nil {
		return false
	}
	return done
}

// LagCommitWrites has n's writes of group gid's raft hard state keep the
// commit index on disk where it is now, as when a crash comes before the
// lazy write of a newer one (handleReady): a restart then replays the log
// only that far. Writes that must make a newer one durable
// (storeHeldCommit) still do. It lasts until n stops.
func LagCommitWrites(ctx context.Context, n *Node, gid string) error {
	g, err := n.groupByText(gid)
	if err != nil {
		return err
	}
	return g.do(ctx, func() { g.commitCap = max(g.storedCommit, 1) })
}

// WriteHardState has n write group gid's raft hard state now, as the next
// Ready that changes it would (persist), under LagCommitWrites' cap.
func WriteHardState(ctx context.Context, n *Node, gid string) error {
	g, err := n.groupByText(gid)
	if err != nil {
		return err
	}
	var werr error
	if err := g.do(ctx, func() {
		var hs *pb.HardState
		if hs, _, werr = g.storage.mem.InitialState(); werr == nil {
			werr = g.persist(hs, nil)
		}
	}); err != nil {
		return err
	}
	return werr
}
