package node

import (
	"github.com/demes/demes/transcript"
)

// LogEntries returns the committed entries of a group's log as n holds them
// on disk, as a transcript carries them, so that tests can check what a
// member's keys decrypt in the ciphertext everyone relays, beyond what its
// node shows.
func LogEntries(n *Node, groupID string) ([]transcript.Entry, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return nil, err
	}
	hs, log, err := n.store.LoadRaft(g.id[:])
	if err != nil {
		return nil, err
	}
	return transcriptEntries(max(hs.GetCommit(), g.view.Load().applied), log), nil
}
