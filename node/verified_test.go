package node

import (
	"bytes"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

// Checking entries ahead must never let through what applying them would
// refuse: only the exact bytes that passed crypto.Verify are remembered,
// once, and a forged or altered entry is left for the state machine.
func TestVerifiedFramesOnlyExactCheckedBytes(t *testing.T) {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	frame, err := crypto.Sign(id, &crypto.Envelope{Type: crypto.TypeChat, Group: crypto.GroupID{1}, Counter: 1, Payload: []byte("sealed")})
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Clone(frame)
	altered[len(altered)-1] ^= 1
	forged := bytes.Clone(frame)
	forged[40] ^= 1 // inside the signature
	entry := func(data []byte) *pb.Entry {
		return &pb.Entry{Type: pb.EntryNormal.Enum(), Index: proto.Uint64(1), Term: proto.Uint64(1), Data: data}
	}
	var c verifiedFrames
	c.check([]*pb.Message{{Type: pb.MsgApp.Enum(), Entries: []*pb.Entry{entry(forged), entry(frame), entry(nil)}}})
	if c.take(forged) != nil {
		t.Fatal("a forged entry was remembered as checked")
	}
	if c.take(altered) != nil {
		t.Fatal("altered bytes matched a checked entry")
	}
	env := c.take(frame)
	if env == nil || env.Sender != id.Public().Sign || string(env.Payload) != "sealed" {
		t.Fatalf("checked entry: got %+v", env)
	}
	if c.take(frame) != nil {
		t.Fatal("a checked entry was handed out twice")
	}
}

// Entries that never commit are never taken out: the cache stays bounded.
func TestVerifiedFramesBounded(t *testing.T) {
	var c verifiedFrames
	env := &crypto.Envelope{}
	for i := 0; i < 3*maxVerifiedFrames; i++ {
		c.add([]byte{byte(i), byte(i >> 8), byte(i >> 16)}, env)
	}
	if n := len(c.m); n > maxVerifiedFrames {
		t.Fatalf("%d entries remembered, bound %d", n, maxVerifiedFrames)
	}
	big := make([]byte, maxVerifiedBytes/4)
	for i := 0; i < 8; i++ {
		big[0] = byte(i)
		c.add(big, env)
	}
	if c.bytes > maxVerifiedBytes {
		t.Fatalf("%d bytes remembered, bound %d", c.bytes, maxVerifiedBytes)
	}
}
