package node_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
)

// nowhere is a link that reaches nobody: the fuzzed node's group has no
// other member to talk to.
type nowhere struct{}

func (nowhere) Post(context.Context, string, []byte) ([]byte, error) {
	return nil, errors.New("no network in this test")
}

// groupState is what a rejected frame must not change.
type groupState struct {
	term, committed uint64
	host, role      string
	members, queued int
	messages        string
}

func stateOf(t *testing.T, n *node.Node, gid string) groupState {
	t.Helper()
	g := n.Status().Groups[0]
	ms, err := n.Messages(gid)
	if err != nil {
		t.Fatal(err)
	}
	return groupState{term: g.Term, committed: g.Committed, host: g.Host, role: g.Role, members: len(g.Members), queued: g.Queued, messages: nodetest.Texts(ms)}
}

// FuzzHandleFrame feeds arbitrary bytes to the peer endpoint of a running
// node that is the only member and host of a group. Properties: it never
// panics; a frame is accepted only if it verifies and its signer is a member
// (here: the node itself); every rejection is counted once, under the reason
// the error names; and the group's
// state does not change.
//
//	go test ./node -run '^$' -fuzz FuzzHandleFrame -fuzztime 1m
func FuzzHandleFrame(f *testing.F) {
	self, _ := identity.FromSeed(bytes.Repeat([]byte{0x51}, 32))
	outsider, _ := identity.FromSeed(bytes.Repeat([]byte{0x52}, 32))
	n, err := node.Open(node.Config{
		Dir: f.TempDir(), Identity: self, Name: "fuzzed", URL: "sim://fuzzed", Link: nowhere{}, Logger: testLogger(f),
		// Nothing periodic: no retries, pings or checkpoints, so that the
		// group's state can only change through the frames fed to it.
		RetryInterval: time.Hour, PingInterval: time.Hour,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	gi, err := n.CreateGroup(ctxT(f, 30*time.Second), "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := n.Send(ctxT(f, 30*time.Second), gi.GroupID, "fuzz me", 10*time.Second); err != nil {
		f.Fatal(err)
	}
	gid, _ := crypto.ParseGroupID(gi.GroupID)
	me := self.Public().Sign
	raftID := state.RaftID(me)

	counter := uint64(time.Now().UnixNano())
	sign := func(id *identity.Identity, e crypto.Envelope) []byte {
		counter++
		e.Counter, e.Time = counter, time.Now().UnixNano()
		fr, err := crypto.Sign(id, &e)
		if err != nil {
			f.Fatal(err)
		}
		return fr
	}
	batch := func(id *identity.Identity, msgs ...*pb.Message) []byte {
		var items [][]byte
		for _, m := range msgs {
			b, _ := proto.Marshal(m)
			items = append(items, b)
		}
		payload, _ := crypto.EncodeBatch(items)
		return sign(id, crypto.Envelope{Type: crypto.TypeBatch, Group: gid, To: me, Payload: payload})
	}
	vote := &pb.Message{Type: pb.MsgVote.Enum(), From: proto.Uint64(state.RaftID(outsider.Public().Sign)), To: proto.Uint64(raftID), Term: proto.Uint64(99), LogTerm: proto.Uint64(99), Index: proto.Uint64(1 << 40)}
	ping := sign(self, crypto.Envelope{Type: crypto.TypePing, Group: gid, To: me, Payload: []byte("0123456789abcdef")})
	for _, seed := range [][]byte{
		nil,
		{crypto.Version},
		[]byte("not a frame"),
		ping, // accepted once (a pong), a replay afterwards
		ping[:len(ping)-1],
		batch(outsider, vote),
		batch(self), // an empty batch from the member itself: accepted, does nothing
		sign(outsider, crypto.Envelope{Type: crypto.TypeChallenge, Group: gid}),
		sign(outsider, crypto.Envelope{Type: crypto.TypeJoin, Group: gid, Payload: []byte{0x80}}),
		sign(self, crypto.Envelope{Type: crypto.TypeBatch, Group: crypto.NewGroupID(), Payload: []byte{0x80}}),
		sign(self, crypto.Envelope{Type: crypto.TypeAddress, Group: gid, To: outsider.Public().Sign, Payload: []byte{0x81, 0x60}}),
		sign(self, crypto.Envelope{Type: crypto.TypeChat, Group: gid, Payload: []byte{0x80}}),
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, frame []byte) {
		before := stateOf(t, n, gi.GroupID)
		rejected := n.Status().Rejected
		resp, err := n.HandleFrame(context.Background(), frame)
		env, verr := crypto.Verify(frame)
		if err == nil {
			if verr != nil {
				t.Fatalf("accepted a frame that does not verify (%v)", verr)
			}
			if env.Sender != me {
				t.Fatalf("accepted a %v envelope from a non-member", env.Type)
			}
			if env.Type == crypto.TypePing {
				if pong, err := crypto.Verify(resp); err != nil || pong.Type != crypto.TypePong || !bytes.Equal(pong.Payload, env.Payload) {
					t.Fatalf("a ping answered with %x (%v)", resp, err)
				}
			}
		} else if got := n.Status().Rejected[err.Error()]; got != rejected[err.Error()]+1 {
			t.Fatalf("rejection %q counted %d times", err, got-rejected[err.Error()])
		}
		if after := stateOf(t, n, gi.GroupID); after != before {
			t.Fatalf("group state changed:\n%+v\n%+v", before, after)
		}
	})
}

// FuzzHandleMemberFrame goes past the signature: each input is the type and
// payload of an envelope that a real member of the group (a learner whose
// node is down) signs, so that the fuzzer reaches the batch decoder, the raft
// checks of the transport and raft itself. For batches the payload is taken
// as one raft message, addressed from that member to the node unless raw is
// set. Properties: no panic, every rejection counted once, and no chat
// message or membership change appears (the fuzzer cannot sign one).
//
//	go test ./node -run '^$' -fuzz FuzzHandleMemberFrame -fuzztime 1m
func FuzzHandleMemberFrame(f *testing.F) {
	net := simnet.New(1, simnet.LinkConfig{})
	hostID, _ := identity.FromSeed(bytes.Repeat([]byte{0x61}, 32))
	memberID, _ := identity.FromSeed(bytes.Repeat([]byte{0x62}, 32))
	open := func(id *identity.Identity, url string) *node.Node {
		n, err := node.Open(node.Config{
			Dir: f.TempDir(), Identity: id, Name: url, URL: url, Link: net.Endpoint(url), Logger: testLogger(f),
			MaxVoters: 1, RetryInterval: time.Hour, PingInterval: time.Hour,
		})
		if err != nil {
			f.Fatal(err)
		}
		net.Register(url, n.HandleFrame)
		return n
	}
	host := open(hostID, "sim://host")
	f.Cleanup(func() { host.Close(); net.Wait() })
	ctx := ctxT(f, 60*time.Second)
	gi, err := host.CreateGroup(ctx, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	member := open(memberID, "sim://member")
	code, err := host.Invite(ctx, gi.GroupID, memberID.Public().String())
	if err != nil {
		f.Fatal(err)
	}
	if _, err := member.Join(ctx, code); err != nil {
		f.Fatal(err)
	}
	if _, err := host.Send(ctx, gi.GroupID, "fuzz me", 10*time.Second); err != nil {
		f.Fatal(err)
	}
	// The member's node goes away; its key signs what the fuzzer makes.
	net.Crash("sim://member")
	member.Close()

	gid, _ := crypto.ParseGroupID(gi.GroupID)
	hostKey := hostID.Public().Sign
	from, to := state.RaftID(memberID.Public().Sign), state.RaftID(hostKey)
	term := host.Status().Groups[0].Term
	counter := uint64(time.Now().UnixNano())
	msg := func(m *pb.Message) []byte {
		b, _ := proto.Marshal(m)
		return b
	}
	for _, seed := range []struct {
		typ     crypto.Type
		raw     bool
		payload []byte
	}{
		{crypto.TypeBatch, false, msg(&pb.Message{Type: pb.MsgHeartbeatResp.Enum(), Term: proto.Uint64(term)})},
		{crypto.TypeBatch, false, msg(&pb.Message{Type: pb.MsgAppResp.Enum(), Term: proto.Uint64(term), Index: proto.Uint64(2)})},
		{crypto.TypeBatch, false, msg(&pb.Message{Type: pb.MsgVote.Enum(), Term: proto.Uint64(term + 1), LogTerm: proto.Uint64(term), Index: proto.Uint64(100)})},
		{crypto.TypeBatch, false, msg(&pb.Message{Type: pb.MsgProp.Enum(), Entries: []*pb.Entry{{Data: []byte("not an envelope")}}})},
		{crypto.TypeBatch, true, []byte{0x0a, 0x01}},
		{crypto.TypePing, false, []byte("0123456789abcdef")},
		{crypto.TypeAddress, false, []byte{0x81, 0x60}},
		{crypto.TypeChat, false, []byte{0x80}},
		{crypto.TypeJoin, false, []byte{0x80}},
	} {
		f.Add(uint8(seed.typ), seed.raw, seed.payload)
	}

	f.Fuzz(func(t *testing.T, typ uint8, raw bool, payload []byte) {
		if crypto.Type(typ) == crypto.TypeBatch {
			m := &pb.Message{}
			if !raw && proto.Unmarshal(payload, m) == nil {
				m.From, m.To = proto.Uint64(from), proto.Uint64(to)
				payload, _ = proto.Marshal(m)
			}
			var err error
			if payload, err = crypto.EncodeBatch([][]byte{payload}); err != nil {
				return
			}
		}
		counter++
		frame, err := crypto.Sign(memberID, &crypto.Envelope{Type: crypto.Type(typ), Group: gid, To: hostKey, Counter: counter, Time: time.Now().UnixNano(), Payload: payload})
		if err != nil {
			return // not an envelope Sign makes (type 0, too large)
		}
		before := stateOf(t, host, gi.GroupID)
		rejected := host.Status().Rejected
		if _, err := host.HandleFrame(context.Background(), frame); err != nil {
			if got := host.Status().Rejected[err.Error()]; got != rejected[err.Error()]+1 {
				t.Fatalf("rejection %q counted %d times", err, got-rejected[err.Error()])
			}
		}
		after := stateOf(t, host, gi.GroupID)
		if after.messages != before.messages || after.members != before.members {
			t.Fatalf("messages or members changed:\n%+v\n%+v", before, after)
		}
	})
}
