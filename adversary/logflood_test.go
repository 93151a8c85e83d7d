package adversary

import (
	"crypto/rand"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// TestMemberFloodsControlEntries: a member (node2, not the host) forwards
// entries other than chat messages as fast as its node takes them: 64 KiB
// settings entries it may not sign, small checkpoints, and membership
// changes. The quotas count chat messages only, and the state machine
// refuses what the rogue may not sign, but a refused entry is still in
// every log: without the host's gate for these (node/controlgate.go) the
// log grew by megabytes in seconds. With it, what the rogue puts in the log
// stays within its allowance: 256 KiB at once (each node that hosts keeps its own, full at first)
// and 4 KiB a second, plus 64 bytes a second for each member; every entry
// counts at least 128 bytes.
func TestMemberFloodsControlEntries(t *testing.T) {
	g := newGroup(t, 3, options{})
	g.form(0, 1, 2)
	if err := g.node(0).SetSettings(ctxT(t, 30*time.Second), g.id, node.GroupSettings{BytesPerDay: state.MinBytesPerDay}); err != nil {
		t.Fatal(err)
	}
	g.send(1, "before the flood")
	first := last(g.log(0)) + 1
	start := time.Now()

	ctx := ctxT(t, 2*time.Minute)
	big := make([]byte, crypto.MaxBody-1024)
	small := make([]byte, 1024)
	rand.Read(big)
	rand.Read(small)
	var offered int
	for i := range 3000 {
		var err error
		switch {
		case i < 100:
			// Settings, which only an admin may sign: refused by
			// the state machine, and 63 KiB each.
			frame := g.signBy(2, crypto.TypeSettings, big)
			offered += len(frame)
			err = g.node(2).ProposeRaw(ctx, g.id, frame)
		case i%2 == 0:
			frame := g.signBy(2, crypto.TypeCheckpoint, small)
			offered += len(frame)
			err = g.node(2).ProposeRaw(ctx, g.id, frame)
		default:
			// raft takes one membership change at a time and turns
			// the others into empty entries: each still an entry.
			frame := g.signBy(2, crypto.TypeSettings, small[:16])
			offered += len(frame)
			err = g.node(2).ProposeConfRaw(ctx, g.id, frame, state.AddLearner, 12345)
		}
		if err != nil && ctx.Err() != nil {
			t.Fatal(err)
		}
	}
	// The rogue's own message leaves after its flood, on the same link:
	// once it commits, the host has had every proposal of the flood.
	g.send(2, "after the flood")
	end := last(g.log(0))
	elapsed := time.Since(start)

	ents, err := g.node(0).RaftEntries(g.id, first, end+1)
	if err != nil {
		t.Fatal(err)
	}
	rogue := g.pub(2).Sign
	var n, cost int
	terms := map[uint64]bool{}
	for _, e := range ents {
		terms[e.GetTerm()] = true // at most one more full allowance a new host
		data := e.GetData()
		if e.GetType() == pb.EntryNormal && len(data) > 0 {
			env, err := crypto.ParseTrusted(data)
			if err != nil || env.Sender != rogue {
				continue // an honest member's
			}
		}
		if e.GetType() != pb.EntryNormal {
			var cc pb.ConfChangeV2
			if err := proto.Unmarshal(data, &cc); err == nil && len(cc.GetContext()) > 0 {
				if env, err := crypto.ParseTrusted(cc.GetContext()); err == nil && env.Sender != rogue {
					continue
				}
			}
		}
		n++
		cost += max(len(data), 128)
	}
	allowance := len(terms)*256<<10 + int(elapsed.Seconds()*float64(4<<10+64*3))
	t.Logf("the rogue offered %d bytes in 3,000 proposals over %v; the log took %d entries of it, counted %d bytes (allowance %d)",
		offered, elapsed.Round(time.Millisecond), n, cost, allowance)
	if cost > allowance {
		t.Fatalf("the rogue grew the log by %d entries counting %d bytes in %v, beyond its allowance of %d", n, cost, elapsed.Round(time.Millisecond), allowance)
	}
}
