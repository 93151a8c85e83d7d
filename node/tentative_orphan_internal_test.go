package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/raft/v3"

	"github.com/demes/demes/state"
)

// countingTentative is a tentative store in memory that counts the bytes
// its reads return.
type countingTentative struct {
	memTentative
	read int
}

func (c *countingTentative) Tentative(gid []byte) (map[string][]byte, error) {
	out, err := c.memTentative.Tentative(gid)
	for _, v := range out {
		c.read += len(v)
	}
	return out, err
}

func (c *countingTentative) TentativeOf(gid []byte, ids [][]byte) (map[string][]byte, error) {
	out, err := c.memTentative.TentativeOf(gid, ids)
	for _, v := range out {
		c.read += len(v)
	}
	return out, err
}

// TestOrphansReadOnlyTheirFrames: a host holding many tentative messages
// of others, due to be proposed (tentative_orphan.go), proposes at most
// orphanBatch of them in an upkeep, and reads those frames from the store,
// not every one it holds: a thousand of each member's, each up to
// crypto.MaxBody, read at every upkeep that had one due, is up to 64 MB a
// member, again and again, on the group's goroutine.
func TestOrphansReadOnlyTheirFrames(t *testing.T) {
	const held, size = 1000, 16 << 10
	st := &countingTentative{memTentative: memTentative{stored: map[string][]byte{}}}
	past := time.Now().Add(-time.Minute)
	g := &group{n: &Node{log: zerolog.Nop()}, tent: map[[16]byte]*heldMessage{}, tentBy: map[[32]byte]int{},
		tentPut: map[string][]byte{}, tentStore: st, tentRestored: true, st: &state.State{}, role: raft.StateLeader}
	g.pl.leaderSince = past
	for k := 0; k < held; k++ {
		var id [16]byte
		copy(id[:], fmt.Sprintf("%016d", k))
		g.tent[id] = &heldMessage{m: Message{Order: uint64(k + 1)}, author: [32]byte{1}, at: past}
		st.stored[string(id[:])] = make([]byte, size)
	}
	g.proposeOrphans(time.Now())
	if max := orphanBatch * size; st.read > max {
		t.Errorf("one upkeep read %d bytes of tentative messages from the store, for at most %d messages due (%d bytes)", st.read, orphanBatch, max)
	}
}
