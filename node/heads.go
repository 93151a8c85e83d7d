package node

import (
	"fmt"
	"math"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
)

// The state machine keeps the transcript chain heads of recent entries and
// an anchor every state.AnchorEvery indexes (state/heads.go), not the head
// after every entry. The head through an older index, which a member far
// behind states in its pings or an old invite names, is recomputed here
// from the node's stored log: the latest kept head before it, extended with
// the entries after it (a few thousand at most), read from the store. So a
// statement about any index this node has applied is checked against the
// true head, never skipped and never a false alarm.

// headThrough returns this node's transcript chain head through index; ok
// is false when it has not applied that far, or cannot read its log there
// (after a snapshot installed from a host, which DeMeS never sends).
func (g *group) headThrough(index uint64) (head [32]byte, ok bool) {
	if head, ok := g.st.HeadThrough(index); ok || index > g.st.Applied {
		return head, ok
	}
	c, err := g.chainThrough(index)
	if err != nil {
		g.n.log.Error().Err(err).Str("group", g.id.String()).Uint64("index", index).Msg("cannot recompute the transcript head from the stored log")
		return [32]byte{}, false
	}
	return c.Head, true
}

// chainThrough recomputes the chain through index, at most the applied
// index, from the state's latest kept head before it and the stored log.
func (g *group) chainThrough(index uint64) (crypto.Chain, error) {
	c := g.st.ChainBase(index)
	for lo := c.Index + 1; lo <= index; {
		ents, err := g.storage.Entries(lo, index+1, 1<<20)
		if err != nil {
			return crypto.Chain{}, fmt.Errorf("read the log from %d for the transcript head through %d: %w", lo, index, err)
		}
		if len(ents) == 0 {
			return crypto.Chain{}, fmt.Errorf("the log has no entry at %d", lo)
		}
		for _, e := range ents {
			if f := entryFrame(e); len(f) > 0 {
				if err := c.Append(e.GetIndex(), f); err != nil {
					return crypto.Chain{}, fmt.Errorf("the transcript head through %d: %w", index, err)
				}
			}
		}
		lo += uint64(len(ents))
	}
	return c, nil
}

// hasFrameAt reports whether the log this node has applied holds an entry
// with a frame at index.
func (g *group) hasFrameAt(index uint64) bool {
	if _, ok := g.st.HeadAt(index); ok {
		return true
	}
	if from := g.st.KeepsHeadsFrom(); index == 0 || index >= from || index > g.st.Applied {
		return false // the state keeps every head there: none at index
	}
	ents, err := g.storage.Entries(index, index+1, math.MaxUint64)
	return err == nil && len(ents) == 1 && ents[0].GetIndex() == index && len(entryFrame(ents[0])) > 0
}

// entryFrame returns the signed frame a log entry carries, as the state
// machine's transcript chain sees it (see apply and applyConfEntry): a
// normal entry's data, a membership change's context, nothing for a change
// that does not decode or is not exactly one change.
func entryFrame(e *pb.Entry) []byte {
	switch e.GetType() {
	case pb.EntryNormal:
		return e.GetData()
	case pb.EntryConfChange:
		cc := &pb.ConfChange{}
		if proto.Unmarshal(e.GetData(), cc) != nil {
			return nil
		}
		return cc.GetContext()
	case pb.EntryConfChangeV2:
		cc := &pb.ConfChangeV2{}
		if proto.Unmarshal(e.GetData(), cc) != nil || len(cc.GetChanges()) != 1 {
			return nil
		}
		return cc.GetContext()
	}
	return nil
}
