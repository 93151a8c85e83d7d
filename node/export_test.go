package node

import (
	"time"

	"context"
	"errors"
	"math"

	pb "go.etcd.io/raft/v3/raftpb"
)

// LogStats is what a test sees of how a group holds its log.
type LogStats struct {
	// Snapshot is the index of the latest stored snapshot (the stored
	// applied index), 0 if none.
	Snapshot uint64
	// RestoredFrom is the snapshot index this run of the group started
	// from, 0 if it applied the log from the start.
	RestoredFrom uint64
	// AppliedHere counts the entries this run of the group applied.
	AppliedHere uint64
	// Applied is the state machine's applied index, Epoch its membership
	// epoch.
	Applied, Epoch uint64
	// MemFirst is the first index of the log held in memory, FirstIndex
	// the one raft sees.
	MemFirst, FirstIndex uint64
	// MemBytes is the data of the entries held in memory, summed from the
	// memory itself.
	MemBytes int
	// StoredCommit is the commit index of the hard state on disk, which a
	// restart applies up to before it hears from any host.
	StoredCommit uint64
	// Prechecked counts the messages this run of the group delivered
	// from Readies whose entries precheck's workers checked ahead
	// (whether a worker or the group's goroutine then opened each).
	Prechecked uint64
	// OwnAhead counts this node's own messages that precheck's workers
	// were handed to open, though the node sealed them itself.
	OwnAhead uint64
	// MessageIDs counts the accepted message ids the state holds.
	MessageIDs int
}

// GroupLogStats returns the LogStats of a group on n.
func GroupLogStats(n *Node, groupID string) (LogStats, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return LogStats{}, err
	}
	var (
		s    LogStats
		lerr error
	)
	err = g.do(context.Background(), func() {
		var snap *pb.Snapshot
		snap, lerr = n.store.LoadSnapshot(g.id[:])
		s.Snapshot = snap.GetMetadata().GetIndex()
		s.RestoredFrom, s.AppliedHere, s.Applied, s.Epoch = g.restoredFrom, g.appliedHere, g.st.Applied, g.st.Epoch
		s.Prechecked, s.OwnAhead = g.prechecked, g.ownAhead
		s.MessageIDs = g.st.MsgIDs.Len()
		s.MemFirst, _ = g.storage.mem.FirstIndex()
		s.FirstIndex, _ = g.storage.FirstIndex()
		if last, _ := g.storage.mem.LastIndex(); last >= s.MemFirst {
			var ents []*pb.Entry
			if ents, lerr = g.storage.mem.Entries(s.MemFirst, last+1, math.MaxUint64); lerr != nil {
				return
			}
			for _, e := range ents {
				s.MemBytes += len(e.GetData())
			}
		}
		var hs *pb.HardState
		if hs, lerr = n.store.HardState(g.id[:]); lerr == nil {
			s.StoredCommit = hs.GetCommit()
		}
	})
	return s, errors.Join(err, lerr)
}

// PlacedByHandover reports whether n, hosting group gid, counts itself put
// in its place by a leadership handover (its campaign in this term was a
// transfer's): placement then starts settled, keeping it by hysteresis.
func PlacedByHandover(ctx context.Context, n *Node, gid string) (bool, error) {
	g, err := n.groupByText(gid)
	if err != nil {
		return false, err
	}
	var placed bool
	err = g.do(ctx, func() { placed = g.term != 0 && g.pl.transferTerm == g.term })
	return placed, err
}

// StallGroup stands the group's goroutine still, as a slow disk or an
// overloaded machine would, for twice its current election timeout, and
// returns how long it stood still.
func StallGroup(n *Node, groupID string) (time.Duration, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return 0, err
	}
	var d time.Duration
	err = g.do(context.Background(), func() {
		d = 2 * g.timing.electionTimeout()
		time.Sleep(d) // the stall under test, not a wait for a condition
	})
	return d, err
}

// SlowTurnWarnEvery is how often a group warns of slow turns at most.
const SlowTurnWarnEvery = slowTurnWarnEvery

// RestoredHold reports whether n's copy of a group, restored from a backup,
// still takes part in no election (restored.go).
func RestoredHold(n *Node, groupID string) (bool, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return false, err
	}
	var hold bool
	err = g.do(context.Background(), func() { hold = g.fromBackup })
	return hold, err
}
