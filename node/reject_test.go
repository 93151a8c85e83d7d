package node_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
)

// TestBadEnvelopesRejected feeds a running member forged, replayed, foreign
// and non-member envelopes (votes included) and checks that each is rejected
// and that nothing changes: not the term, not the log, not the messages.
func TestBadEnvelopesRejected(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 9, simnet.LinkConfig{Latency: time.Millisecond})
	var mu sync.Mutex
	var captured [][]byte // batch frames sent to node 2
	c.net.SetTap(func(from, to string, frame []byte) {
		if to == c.Member(2).URL {
			mu.Lock()
			captured = append(captured, frame)
			mu.Unlock()
		}
	})
	c.form()
	c.waitVoters(3)
	c.send(0, "hello", 10*time.Second)
	c.converged(1)
	c.net.SetTap(nil)

	target := c.Node(2)
	gid, _ := crypto.ParseGroupID(c.GroupID)
	outsider, _ := identity.FromSeed(bytes.Repeat([]byte{0xee}, 32))
	member := c.Member(1).ID
	targetKey := c.Member(2).ID.Public().Sign
	before := target.Status().Groups[0]
	beforeMsgs := nodetest.Texts(c.committed(2))

	counter := uint64(time.Now().UnixNano())
	batchOf := func(signer *identity.Identity, group crypto.GroupID, msgs ...*pb.Message) []byte {
		counter++
		return signBatch(t, signer, group, targetKey, counter, msgs...)
	}
	vote := func(from *identity.Identity, term uint64) *pb.Message {
		return &pb.Message{Type: pb.MsgVote.Enum(), From: proto.Uint64(state.RaftID(from.Public().Sign)), To: proto.Uint64(state.RaftID(targetKey)),
			Term: proto.Uint64(term), LogTerm: proto.Uint64(before.Term + 100), Index: proto.Uint64(1 << 40)}
	}
	mu.Lock()
	var replayed []byte
	for _, f := range captured {
		if env, err := crypto.Verify(f); err == nil && env.Type == crypto.TypeBatch {
			replayed = f
		}
	}
	mu.Unlock()
	if replayed == nil {
		t.Fatal("captured no batch to replay")
	}
	flipped := append([]byte(nil), replayed...)
	flipped[len(flipped)/2] ^= 0x40
	otherGroup := crypto.NewGroupID()
	// A member claiming another member's raft id.
	stolen := vote(member, before.Term+5)
	stolen.From = proto.Uint64(state.RaftID(c.Member(0).ID.Public().Sign))

	cases := []struct {
		name  string
		frame []byte
	}{
		{"garbage", []byte("not an envelope at all")},
		{"empty", nil},
		{"truncated", replayed[:len(replayed)/3]},
		{"flipped byte", flipped},
		{"replay", replayed},
		{"non-member vote", batchOf(outsider, gid, vote(outsider, before.Term+5))},
		{"foreign group", batchOf(member, otherGroup, vote(member, before.Term+5))},
		{"stolen raft id", batchOf(member, gid, stolen)},
		{"wrong version", append([]byte{99}, replayed[1:]...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := target.HandleFrame(context.Background(), tc.frame); err == nil {
				t.Fatalf("%s accepted", tc.name)
			}
		})
	}
	after := target.Status()
	g := after.Groups[0]
	if g.Term != before.Term {
		t.Fatalf("term moved from %d to %d after rejected envelopes", before.Term, g.Term)
	}
	if got := nodetest.Texts(c.committed(2)); got != beforeMsgs {
		t.Fatalf("messages changed: %s -> %s", beforeMsgs, got)
	}
	total := int64(0)
	for _, v := range after.Rejected {
		total += v
	}
	if total < int64(len(cases)) {
		t.Fatalf("status counts %d rejections, want at least %d: %v", total, len(cases), after.Rejected)
	}
}
