package node

import (
	pb "go.etcd.io/raft/v3/raftpb"
)

// LogFrames returns the frames of the normal entries of a group's log as n
// holds it on disk, so that tests can check what a member's keys decrypt
// in the ciphertext everyone relays, beyond what its node shows.
func LogFrames(n *Node, groupID string) ([][]byte, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return nil, err
	}
	_, log, err := n.store.LoadRaft(g.id[:])
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, e := range log {
		if e.GetType() == pb.EntryNormal && len(e.GetData()) > 0 {
			out = append(out, e.GetData())
		}
	}
	return out, nil
}
